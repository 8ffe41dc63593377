//! The core service: one `http::Request<Bytes>` in, one `http::Response<Bytes>` out. Every
//! runtime (Function Compute, Lambda, the local server) adapts its requests to this and makes
//! no decision of its own.
//!
//! Contract:
//! - `POST` on any path (HTTP trigger) or an event invocation (`POST /invoke` that Function
//!   Compute marks as one: [`is_event_invocation`]) → decode, act, `200` with
//!   `{"events": N, ...}`; `503` when a retryable failure is left at the deadline.
//! - Input that cannot be an event → `400` `{"error", "path"}`; too large or over a limit →
//!   `413`; a bad or missing VOD or IMS signature (when a key is configured), or a captured
//!   signature carrying a new body → `401`; other methods → `405`.
//! - `POST /initialize`, `GET /pre-stop` (FC lifecycle hooks) and `GET /healthz` → `200`.
//! - `/actions/<token>` (any method): the signed links' pages (`crate::links`), authenticated
//!   by the token; `/actions` and everything under it is reserved, `404` without `[links]`.
//! - A failed `/invoke` also carries `x-fc-status: 404`, FC's function-error signal, so FC's
//!   async retry and on-failure destination take over.

use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use serde_json::{Value, json};

use crate::auth::reuse::{ReuseGuard, Seen};
use crate::auth::{Family, KeyUsed, Verified, Verifier};
use crate::dispatch::{Dispatcher, Report};
use crate::event::{DecodeError, Delivery, Limits, Source, decode_delivery_in_full, decode_delivery_with};
use crate::links::Links;
use crate::metrics::{Rejection, Tally};
use crate::setup::{Setup, State};

/// FC's header for "the function failed" on event invocations.
pub const FC_STATUS_HEADER: &str = "x-fc-status";
/// FC's request id header.
pub const FC_REQUEST_ID_HEADER: &str = "x-fc-request-id";

/// Paths with a meaning of their own; `POST` anywhere else is an HTTP-trigger callback.
pub mod paths {
    pub const INVOKE: &str = "/invoke";
    pub const INITIALIZE: &str = "/initialize";
    pub const PRE_STOP: &str = "/pre-stop";
    pub const HEALTHZ: &str = "/healthz";
}

/// How a request reached us, which decides authentication and failure signalling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// VOD's HTTP callback (through an HTTP trigger or a Function URL): signed by VOD.
    Http,
    /// An event invocation (`POST /invoke` that FC marks as one): MNS triggers, timers, API
    /// calls. Not signed: see [`is_event_invocation`].
    Invoke,
}

/// Which runtime a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The HTTP server, running on Function Compute (proved by its environment:
    /// `runtime::server::on_function_compute`): FC marks its event invocations.
    FunctionCompute,
    /// The HTTP server anywhere else: every request is a callback from outside, signed, unless
    /// `[auth] allow_unsigned_invoke` says otherwise for `/invoke`.
    Server,
    /// Lambda: every HTTP request is a callback from outside (scheduled events never arrive as
    /// HTTP), so every one is authenticated.
    Lambda,
}

/// FC's `x-fc-control-path` header: `/invoke` on an event invocation, `/http-invoke` on an HTTP
/// trigger's request, `/initialize` on the initializer (FC's custom runtime specification:
/// "Read the x-fc-control-path header to determine whether the request is an event invocation,
/// an HTTP invocation, or an initialization call").
const FC_CONTROL_PATH_HEADER: &str = "x-fc-control-path";

/// Whether a request is an event invocation (`POST /invoke`): unsigned, a timer body drains the
/// outbox, and failures are answered with `x-fc-status: 404`. Fail closed: on Function Compute
/// only when FC itself marks it `x-fc-control-path: /invoke` (FC refuses requests whose headers
/// start with `x-fc-`, with 400 InvalidArgument, so a client cannot send that header through a
/// trigger: "Request headers cannot include custom fields starting with x-fc-"); elsewhere only
/// when the operator opted in (`allow_unsigned`). Everything else, `/invoke` included, is a
/// callback and is signed.
fn is_event_invocation(parts: &http::request::Parts, origin: Origin, allow_unsigned: bool) -> bool {
    if parts.method != Method::POST || parts.uri.path() != paths::INVOKE {
        return false;
    }
    match origin {
        Origin::FunctionCompute => parts
            .headers
            .get(FC_CONTROL_PATH_HEADER)
            .is_some_and(|v| v.as_bytes() == paths::INVOKE.as_bytes()),
        Origin::Server => allow_unsigned,
        Origin::Lambda => false,
    }
}

/// The error answer for a request a runtime refuses before the handler sees its body (too
/// large, unreadable). A refused event invocation still carries `x-fc-status: 404`, like any
/// other failed `/invoke`, so FC's retry and on-failure destination see it.
pub fn refusal(
    parts: &http::request::Parts,
    origin: Origin,
    status: StatusCode,
    error: &str,
) -> Response<Bytes> {
    let reason = if status == StatusCode::PAYLOAD_TOO_LARGE { Rejection::Limit } else { Rejection::Decode };
    let mut tally = Tally::default();
    tally.counts.received = 1;
    tally.rejected(reason);
    log_summary(status, &Report::default(), Instant::now(), &tally);
    crate::metrics::finish(&tally);
    let mut response = error_response(status, error, "");
    if is_event_invocation(parts, origin, false) {
        response.headers_mut().insert(FC_STATUS_HEADER, HeaderValue::from_static("404"));
    }
    response
}

/// What the handler needs of one request besides its body.
#[derive(Clone, Copy)]
struct Incoming<'a> {
    trigger: Trigger,
    headers: &'a http::HeaderMap,
    /// The invocation's credentials (Function Compute only), for VOD calls.
    credentials: Option<&'a crate::vod::Credentials>,
}

/// What handling one request to the callback endpoint came to.
struct Handled {
    response: Response<Bytes>,
    report: Report,
    /// A callback (counted in `callbacks_received`), not a timer's tick.
    callback: bool,
}

impl Handled {
    fn callback(response: Response<Bytes>, report: Report) -> Handled {
        Handled { response, report, callback: true }
    }
}

/// The service every runtime calls.
#[derive(Debug)]
pub struct App {
    verifier: Option<Verifier>,
    /// A signature carries new bodies only shortly after its first use (see `replay`).
    replay: ReuseGuard,
    signature_reuse: Duration,
    allow_unsigned_invoke: bool,
    server: crate::config::ServerConfig,
    limits: Limits,
    /// The configuration reads every event's decoded tree ([`crate::route::Router::reads_event_tree`]):
    /// decode on the full path, which builds it at once.
    tree_at_once: bool,
    callback_deadline: Duration,
    invoke_deadline: Duration,
    dispatcher: Dispatcher,
    /// The signed links' pages (`None`: no `[links]`).
    links: Option<Links>,
    /// `[metrics] namespace`: the CloudWatch namespace of the EMF lines.
    metrics_namespace: String,
    /// `[metrics] listen`, checked by check-config.
    metrics_listen: Option<std::net::SocketAddr>,
}

/// Problems that stop the service from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthConfigError),
    #[error("dedup store: {0}")]
    Store(#[from] crate::store::StoreError),
}

impl App {
    /// The service for a checked configuration. Connects to nothing: Redis is dialled on first use.
    pub fn new(setup: Setup) -> Result<Self, StartError> {
        let config = &setup.config;
        let verifier = Verifier::from_config(&config.auth)?;
        let state = State::open(&config.store)?;
        let replay = state.replay;
        if verifier.is_none() {
            tracing::warn!(
                "no VOD auth key configured: callbacks are accepted unauthenticated (set VODHOOK_AUTH_KEY and VODHOOK_CALLBACK_URL)"
            );
        }
        Ok(Self {
            verifier,
            allow_unsigned_invoke: config.auth.allow_unsigned_invoke,
            server: config.server.clone(),
            limits: Limits {
                max_events: config.server.max_events_per_delivery,
                max_nodes: config.server.max_nodes_per_event,
            },
            tree_at_once: setup.router.reads_event_tree(),
            callback_deadline: Duration::from_millis(config.delivery.callback_deadline_ms),
            invoke_deadline: Duration::from_millis(config.delivery.invoke_deadline_ms),
            replay,
            signature_reuse: Duration::from_secs(config.auth.signature_reuse_secs),
            links: config.links.as_ref().map(|c| Links::new(c, state.redis.clone(), config.store.capacity)),
            metrics_namespace: config.metrics.namespace.clone(),
            metrics_listen: config.metrics.listen.as_deref().and_then(|a| a.parse().ok()),
            dispatcher: Dispatcher::new(config, setup.router, state.dedup, state.outbox, state.redis),
        })
    }

    /// Where `/metrics` is served (`[metrics] listen`), if anywhere.
    pub fn metrics_listen(&self) -> Option<std::net::SocketAddr> {
        self.metrics_listen
    }

    /// The `[server]` settings, for the HTTP server's limits.
    pub fn server_config(&self) -> &crate::config::ServerConfig {
        &self.server
    }

    /// Handles one request. `now` is unix seconds (passed in so tests control the clock).
    pub async fn handle(&self, request: Request<Bytes>, origin: Origin, now: i64) -> Response<Bytes> {
        let started = Instant::now();
        let (parts, body) = request.into_parts();
        let path = parts.uri.path();
        // The credentials FC hands the invocation, trusted only on FC: anywhere else the
        // `x-fc-*` headers are whatever a client sent.
        let credentials = match origin {
            Origin::FunctionCompute => crate::vod::Credentials::from_fc_headers(&parts.headers),
            Origin::Server | Origin::Lambda => None,
        };
        if let Some(rest) = link_path(path) {
            let Some(links) = &self.links else { return crate::links::not_found(crate::config::Locale::En) };
            let vod = crate::links::Vod {
                dispatcher: &self.dispatcher,
                credentials: credentials.as_ref(),
                deadline: started + self.callback_deadline,
            };
            return links.handle(&parts.method, rest, vod, now).await;
        }
        let trigger = match (&parts.method, path) {
            (&Method::GET, paths::HEALTHZ | paths::PRE_STOP) | (&Method::POST, paths::INITIALIZE) => {
                return json_response(StatusCode::OK, &json!({"status": "ok"}));
            }
            (&Method::POST, _) if is_event_invocation(&parts, origin, self.allow_unsigned_invoke) => {
                Trigger::Invoke
            }
            (&Method::POST, _) => Trigger::Http,
            _ => {
                let mut response = error_response(
                    StatusCode::METHOD_NOT_ALLOWED,
                    &format!("method {} is not allowed here: VOD callbacks are POSTed", parts.method),
                    "",
                );
                response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
                return response;
            }
        };
        let request = Incoming { trigger, headers: &parts.headers, credentials: credentials.as_ref() };
        // Boxed: the callback's future is several KB, and wrapping it in the tally's scope
        // would otherwise copy it whole a few times per request (30 k instructions, measured).
        let callback = Box::pin(self.callback(request, &body, now, started));
        let (handled, tally) = crate::metrics::scoped(callback).await;
        let mut response = self.measured(handled, tally, origin, started);
        if trigger == Trigger::Invoke && !response.status().is_success() {
            response.headers_mut().insert(FC_STATUS_HEADER, HeaderValue::from_static("404"));
            return response;
        }
        response
    }

    /// A timer's tick (FC timer trigger, Lambda EventBridge schedule): drain the outbox.
    pub async fn scheduled(&self) -> crate::dispatch::DrainReport {
        let report = self.dispatcher.drain(Instant::now() + self.invoke_deadline).await;
        tracing::info!(
            delivered = report.delivered,
            rescheduled = report.rescheduled,
            dead_lettered = report.dead_lettered,
            "outbox drained"
        );
        report
    }

    async fn callback(&self, request: Incoming<'_>, body: &Bytes, now: i64, started: Instant) -> Handled {
        let Incoming { trigger, headers, credentials } = request;
        let family = match self.admit(trigger, headers, body, now).await {
            Ok(family) => family,
            Err(refusal) => {
                let reason = if refusal.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Rejection::Limit
                } else {
                    Rejection::Auth
                };
                crate::metrics::record(|t| t.rejected(reason));
                return Handled::callback(*refusal, Report::default());
            }
        };
        if trigger == Trigger::Invoke && is_timer_event(body) {
            let report = self.scheduled().await;
            let response =
                json_response(StatusCode::OK, &serde_json::to_value(report).unwrap_or(Value::Null));
            return Handled { response, report: Report::default(), callback: false };
        }
        let decode = if self.tree_at_once { decode_delivery_in_full } else { decode_delivery_with };
        let mut delivery = match decode(body, &self.limits) {
            Ok(delivery) => delivery,
            Err(err) => {
                let reason = if err.over_limit { Rejection::Limit } else { Rejection::Decode };
                crate::metrics::record(|t| t.rejected(reason));
                return Handled::callback(decode_failure(&err), Report::default());
            }
        };
        if family == Some(Family::Ims) {
            delivery.events.iter_mut().for_each(|event| event.set_source(Source::Ims));
        }
        log_decode_notes(&delivery, self.server.max_reported_warnings);
        let deadline = started
            + match trigger {
                Trigger::Http => self.callback_deadline,
                Trigger::Invoke => self.invoke_deadline,
            };
        let scope = crate::dispatch::RequestScope::new(credentials);
        let report = self.dispatcher.dispatch_with(&delivery, deadline, scope).await;
        self.dispatcher.count(&delivery.events, now).await;
        self.dispatcher.report_if_due(now, deadline).await;
        let status = if report.needs_retry() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
        let response = json_response(status, &answer(&report, &delivery, self.server.max_reported_warnings));
        Handled::callback(response, report)
    }

    /// Ends a request's metrics: its line (the log's, and EMF's on Lambda), then the totals.
    fn measured(
        &self,
        handled: Handled,
        mut tally: Tally,
        origin: Origin,
        started: Instant,
    ) -> Response<Bytes> {
        if handled.callback {
            tally.counts.received = 1;
            tally.handle_seconds = Some(started.elapsed().as_secs_f64());
        }
        log_summary(handled.response.status(), &handled.report, started, &tally);
        if origin == Origin::Lambda && handled.callback {
            let now_ms = chrono::Utc::now().timestamp_millis();
            let line = crate::metrics::emf::line(&tally, &self.metrics_namespace, now_ms);
            // Straight to stdout, whole: CloudWatch reads a log event that is the JSON alone.
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
        crate::metrics::finish(&tally);
        handled.response
    }

    /// The checks before any work: the body's size, and the signature of an HTTP callback (and
    /// that the signature comes with the body it first came with). Who signed it (`None`:
    /// unsigned, and allowed to be), or the answer to a request that fails a check.
    async fn admit(
        &self,
        trigger: Trigger,
        headers: &http::HeaderMap,
        body: &Bytes,
        now: i64,
    ) -> Result<Option<Family>, Box<Response<Bytes>>> {
        let limit = self.server.max_body_bytes;
        if body.len() > limit {
            tracing::warn!(bytes = body.len(), limit, "request body too large");
            let message = format!("body is larger than the {limit} bytes allowed");
            return Err(Box::new(error_response(StatusCode::PAYLOAD_TOO_LARGE, &message, "")));
        }
        let (Trigger::Http, Some(verifier)) = (trigger, &self.verifier) else {
            return Ok(None);
        };
        let verified = match verifier.verify(headers, now) {
            Ok(verified) => verified,
            Err(err) => {
                // The URL is what the signature covers first: a URL that differs from VOD's by a
                // byte (scheme, trailing slash, port) is the usual cause. Not a secret.
                tracing::warn!(
                    reason = %err, expected_callback_url = verifier.callback_url(),
                    compare = "md5hex(\"<callback URL>|<X-VOD-TIMESTAMP>|<auth key>\"): the URL must be the one configured in VOD, byte for byte",
                    "callback refused: signature check failed"
                );
                return Err(Box::new(error_response(StatusCode::UNAUTHORIZED, &err.to_string(), "")));
            }
        };
        if verified.key == KeyUsed::Previous {
            tracing::info!(family = %verified.family, "callback signed with the previous auth key (rotation under way)");
        }
        match self.replayed(&verified, body, verifier.max_skew_secs()).await {
            Some(refusal) => Err(Box::new(refusal)),
            None => Ok(Some(verified.family)),
        }
    }

    /// `401` when the signature was used before, with other bodies, longer ago than it may carry
    /// new ones (see `replay`).
    async fn replayed(&self, verified: &Verified, body: &Bytes, skew_secs: u64) -> Option<Response<Bytes>> {
        // Fresh for `skew` either side of its timestamp: remembered for the whole span.
        let fresh = Duration::from_secs(skew_secs.saturating_mul(2).saturating_add(1));
        match self.replay.check(verified, body, fresh, self.signature_reuse).await {
            Ok(Seen::SameBody) => None,
            Ok(Seen::OtherBody) => {
                tracing::warn!(family = %verified.family, "callback refused: its signature was used before, with other bodies");
                let message = format!(
                    "this {} signature was used before with other bodies, more than {} s ago",
                    verified.family,
                    self.signature_reuse.as_secs()
                );
                Some(error_response(StatusCode::UNAUTHORIZED, &message, ""))
            }
            Err(err) => {
                tracing::warn!(error = %err, "replay guard unreachable: the callback's signature is valid, accepted");
                None
            }
        }
    }
}

/// Logs what decoding kept as it arrived (warnings) and the events it could not decode: one
/// line each, naming the first `max` and counting all, however many a sender packed in.
/// The rest of a path under `/actions` (reserved for link pages, with or without `[links]`).
fn link_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(crate::links::PREFIX)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

fn log_decode_notes(delivery: &Delivery, max: usize) {
    let listed = |notes: &mut dyn Iterator<Item = (&str, &str)>| -> String {
        notes
            .take(max)
            .map(|(path, message)| format!("{}: {}", clip(path), clip(message)))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if !delivery.warnings.is_empty() {
        let first = listed(&mut delivery.warnings.iter().map(|w| (w.path.as_str(), w.message.as_str())));
        tracing::warn!(count = delivery.warnings.len(), first = %first, "details of this delivery kept as they arrived");
    }
    if !delivery.rejected.is_empty() {
        let first = listed(&mut delivery.rejected.iter().map(|e| (e.path.as_str(), e.message.as_str())));
        tracing::error!(count = delivery.rejected.len(), first = %first, "events in this delivery dropped");
    }
}

/// The answer's body: the report, and the delivery's warnings and rejected events (the first
/// `max` of each, with a total when there are more).
fn answer(report: &Report, delivery: &Delivery, max: usize) -> Value {
    let mut body = serde_json::to_value(report).unwrap_or(Value::Null);
    let Value::Object(map) = &mut body else { return body };
    let warnings =
        delivery.warnings.iter().map(|w| json!({"path": clip(&w.path), "message": clip(&w.message)}));
    let rejected =
        delivery.rejected.iter().map(|e| json!({"error": clip(&e.message), "path": clip(&e.path)}));
    for (name, total, items) in [
        ("warnings", delivery.warnings.len(), warnings.take(max).collect::<Vec<_>>()),
        ("rejected", delivery.rejected.len(), rejected.take(max).collect::<Vec<_>>()),
    ] {
        if total == 0 {
            continue;
        }
        if total > items.len() {
            map.insert(format!("{name}_total"), total.into());
        }
        map.insert(name.into(), Value::Array(items));
    }
    body
}

/// FC's timer trigger: `{"triggerTime": ..., "triggerName": ..., "payload": ...}`. VOD events
/// never carry these fields, so the shape is unambiguous.
fn is_timer_event(body: &[u8]) -> bool {
    // Only an object: serde would also fill the probe from a two-element array, and FC's MNS
    // queue trigger sends exactly that (a batch of two CloudEvents), which must not be
    // mistaken for a tick and dropped.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return false;
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        trigger_time: Option<serde::de::IgnoredAny>,
        trigger_name: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Probe>(body).is_ok_and(|p| p.trigger_time.is_some() && p.trigger_name.is_some())
}

fn decode_failure(err: &DecodeError) -> Response<Bytes> {
    let (message, path) = (clip(&err.message), clip(&err.path));
    tracing::warn!(path = %path, "delivery refused: {message}");
    let status = if err.over_limit { StatusCode::PAYLOAD_TOO_LARGE } else { StatusCode::BAD_REQUEST };
    error_response(status, &message, &path)
}

/// The most of a decode message or path that goes into a response or a log line. Both quote
/// the input (key names, values), and a sender controls the input: a 200 kB key must not
/// become a 200 kB answer and log line.
const MAX_ECHO_BYTES: usize = 512;

/// Event-derived text for an answer or a log line: cut, and with line-forging characters escaped.
fn clip(text: &str) -> String {
    crate::text::truncate_bytes(&crate::text::printable(text), MAX_ECHO_BYTES)
}

/// The one line every callback ends with, refused ones included (with no events), so that
/// counting these lines counts requests.
/// The per-callback line: what the request came to, and its metrics under their names (the
/// README's "Metrics" lists them; on Function Compute, SLS queries read them).
fn log_summary(status: StatusCode, report: &Report, started: Instant, tally: &Tally) {
    let rejected = tally.counts.rejected.keys().next().map_or("", |r| r.as_str());
    let n = |outcome: &str| tally.actions_with(outcome);
    let vod_failed: u64 =
        tally.counts.vod_calls.iter().filter(|((_, o), _)| *o != "ok").map(|(_, n)| n).sum();
    tracing::info!(
        status = status.as_u16(),
        events = report.events,
        delivered = report.delivered,
        duplicate = report.duplicate,
        retried = report.retried,
        failed_permanently = report.failed_permanently,
        left_for_retry = report.left_for_retry,
        queued = report.queued,
        held = report.held,
        digests = report.digests,
        duration_ms = started.elapsed().as_millis() as u64,
        callbacks_received = tally.counts.received,
        callbacks_rejected = tally.counts.rejected.values().sum::<u64>(),
        rejected_reason = rejected,
        events_new = tally.counts.events.values().sum::<u64>(),
        actions_sent = n("sent") + n("resolved"),
        actions_queued = n("queued"),
        actions_dead = n("dead"),
        actions_digested = n("digested"),
        actions_held = n("muted") + n("grouped"),
        actions_silenced = n("silenced"),
        actions_duplicate = n("duplicate"),
        vod_api_calls = tally.counts.vod_calls.values().sum::<u64>(),
        vod_api_calls_failed = vod_failed,
        budget_holds = tally.counts.budget_holds.values().sum::<u64>(),
        handle_seconds = tally.handle_seconds.unwrap_or_default(),
        "request done"
    );
}

/// `{"error": ..., "path": ...}`: the contract for every 4xx.
pub fn error_response(status: StatusCode, error: &str, path: &str) -> Response<Bytes> {
    json_response(status, &json!({"error": error, "path": path}))
}

pub fn json_response(status: StatusCode, body: &Value) -> Response<Bytes> {
    // Into bytes directly: `to_string` goes through `Display`, a formatter call per string.
    let mut response = Response::new(Bytes::from(serde_json::to_vec(body).unwrap_or_default()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_on_a_char_boundary() {
        assert_eq!(clip("short"), "short");
        let long = format!("x{}", "é".repeat(MAX_ECHO_BYTES));
        let clipped = clip(&long);
        assert!(clipped.len() <= MAX_ECHO_BYTES, "{}", clipped.len());
        let kept = clipped.strip_suffix(crate::text::CUT_MARKER).unwrap();
        assert!(long.starts_with(kept));
        assert!(kept.len() > MAX_ECHO_BYTES - 8);
    }

    #[test]
    fn timer_probe_takes_objects_only() {
        assert!(is_timer_event(
            br#"{"triggerTime":"2025-04-01T02:33:12Z","triggerName":"drain","payload":""}"#
        ));
        assert!(!is_timer_event(br#"{"triggerName":"drain"}"#));
        // A batch of two CloudEvents (FC's MNS queue trigger) fills a struct from a sequence.
        assert!(!is_timer_event(br#"[{"id":"1"},{"id":"2"}]"#));
    }
}
