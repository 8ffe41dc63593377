//! Stand-ins for the services vodhook delivers to: DingTalk, Feishu, WeCom and Slack robots and
//! a Standard Webhooks receiver, each a real HTTP server on a free 127.0.0.1 port.
//!
//! Each one checks what the real service checks, with the documented formulas written out here
//! again (not vodhook's code, so a mistake there cannot hide itself): the token in the URL, the
//! signature, the timestamp's freshness (DingTalk and Feishu: within an hour; Standard Webhooks:
//! five minutes), JSON bodies. Requests that fail those checks get the service's own error
//! reply and are listed as rejected; the others get the reply of the current [`Behaviour`].
//!
//! ```ignore
//! let dingtalk = StandIn::start(ChannelType::Dingtalk).await;
//! let config = dingtalk.channel_toml("ops");      // a [[channels]] block with URL and secret
//! dingtalk.fail_next(2, Behaviour::RateLimit);    // then accept
//! ...
//! assert_eq!(dingtalk.received().len(), 1);
//! ```
//!

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use vodhook::channel::ChannelType;
use vodhook::config::ChannelConfig;

/// How a stand-in answers requests that pass its checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Accept and record the message.
    Accept,
    /// The service's rate-limit reply (DingTalk 130101, Feishu 9499, WeCom 45009, Slack and
    /// webhook HTTP 429 with `Retry-After`: [`SLACK_RETRY_AFTER`], [`WEBHOOK_RETRY_AFTER`]).
    RateLimit,
    /// A configuration error (DingTalk 310000 keyword missing, Feishu 19021, WeCom 93000, Slack
    /// 410 `channel_is_archived`, webhook 410 Gone).
    ConfigError,
    /// HTTP 503.
    ServerError,
    /// Wait this long, then accept. A request whose client hangs up meanwhile is not taken (the
    /// server drops it unanswered, unrecorded).
    Delay(Duration),
    /// Never answer (until the stand-in is dropped): drives the sender's timeout.
    Hang,
}

/// A service's rate and size limits, enforced like the real robot on what passes the checks:
/// never more than `per_window` messages in any `window` (and `per_second` in any second),
/// counted when they arrive; the request over the limit gets the service's "too fast" reply and
/// blocks the robot for `block` (every request meanwhile gets it too); a body over `max_body`
/// bytes is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_window: Option<usize>,
    pub window: Duration,
    pub per_second: Option<usize>,
    pub block: Duration,
    pub max_body: Option<usize>,
}

impl Limits {
    /// The documented limits: DingTalk 20 a minute then a 10-minute block, bodies up to 20,000
    /// bytes; WeCom 20 a minute; Feishu 100 a minute and 5 a second, bodies up to 20 KB;
    /// Slack 1 a second (429 with `Retry-After`).
    pub fn real(kind: ChannelType) -> Limits {
        let minute = Duration::from_secs(60);
        let (per_window, per_second, block, max_body) = match kind {
            ChannelType::Dingtalk => (Some(20), None, Duration::from_secs(600), Some(20_000)),
            ChannelType::Wecom => (Some(20), None, minute, None),
            ChannelType::Feishu => (Some(100), Some(5), minute, Some(20_000)),
            ChannelType::Slack => (None, Some(1), Duration::from_secs(SLACK_RETRY_AFTER), None),
            _ => (None, None, minute, None),
        };
        Limits { per_window, window: minute, per_second, block, max_body }
    }
}

/// What the limits saw: arrival times of accepted messages, and the block.
#[derive(Debug, Default)]
struct Meter {
    arrivals: VecDeque<std::time::Instant>,
    blocked_until: Option<std::time::Instant>,
}

pub const SLACK_RETRY_AFTER: u64 = 7;
pub const WEBHOOK_RETRY_AFTER: u64 = 3;

/// What became of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Passed the checks and was accepted (recorded in [`StandIn::received`]).
    Accepted,
    /// Passed the checks and got this behaviour's reply.
    Answered(Behaviour),
    /// Failed a check (token, signature, timestamp, body); the reason says which.
    Rejected(String),
    /// Over the service's rate limit (or while the robot is blocked for it).
    OverLimit,
}

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    /// Decoded query parameters.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The body parsed (`Null` when it is not JSON).
    pub json: Value,
    pub verdict: Verdict,
}

/// The server's side of a stand-in.
struct Shared {
    kind: ChannelType,
    token: String,
    secret: Option<String>,
    book: Mutex<Book>,
    stop: watch::Receiver<bool>,
    /// Requests being answered right now, and the most there ever were at once.
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    limits: Option<Limits>,
    meter: Mutex<Meter>,
}

/// What a stand-in was told to do and what it saw.
struct Book {
    behaviour: Behaviour,
    next: VecDeque<Behaviour>,
    requests: Vec<Request>,
}

pub struct StandIn {
    kind: ChannelType,
    url: String,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

impl StandIn {
    /// Starts a stand-in for `kind` (any type but `log`) with a fresh token and secret.
    pub async fn start(kind: ChannelType) -> StandIn {
        Self::start_with(kind, None).await
    }

    /// [`StandIn::start`], enforcing `limits` as the real service does.
    pub async fn start_limited(kind: ChannelType, limits: Limits) -> StandIn {
        Self::start_with(kind, Some(limits)).await
    }

    async fn start_with(kind: ChannelType, limits: Option<Limits>) -> StandIn {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let base = format!("http://127.0.0.1:{port}");
        let token = unique_hex(32);
        let (url, secret) = match kind {
            ChannelType::Dingtalk => {
                (format!("{base}/robot/send?access_token={token}"), Some(format!("SEC{}", unique_hex(32))))
            }
            ChannelType::Feishu => (format!("{base}/open-apis/bot/v2/hook/{token}"), Some(unique_hex(12))),
            ChannelType::Wecom => (format!("{base}/cgi-bin/webhook/send?key={token}"), None),
            ChannelType::Slack => (format!("{base}/services/T0VODHOOK/B0VODHOOK/{token}"), None),
            ChannelType::Webhook => (
                format!("{base}/hooks/vodhook"),
                Some(format!("whsec_{}", STANDARD.encode(&Sha256::digest(unique_hex(16).as_bytes())[..24]))),
            ),
            ChannelType::Log | ChannelType::Vod => {
                panic!("log and vod channels send no messages over HTTP: no stand-in here")
            }
        };
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            kind,
            token,
            secret,
            book: Mutex::new(Book {
                behaviour: Behaviour::Accept,
                next: VecDeque::new(),
                requests: Vec::new(),
            }),
            stop: stopped.clone(),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            limits,
            meter: Mutex::new(Meter::default()),
        });
        serve_until(listener, axum::Router::new().fallback(handle).with_state(shared.clone()), stopped);
        StandIn { kind, url, shared, stop }
    }

    /// The requests being answered right now (a delayed one counts from its arrival).
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests this stand-in was answering at once.
    pub fn peak_concurrency(&self) -> usize {
        self.shared.peak.load(Ordering::SeqCst)
    }

    pub fn kind(&self) -> ChannelType {
        self.kind
    }

    /// The full URL, token included, as it goes into a channel's configuration.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The signing secret (DingTalk `SEC…`, Feishu, webhook `whsec_…`), if the service has one.
    pub fn secret(&self) -> Option<&str> {
        self.shared.secret.as_deref()
    }

    /// The credential inside the URL (access token, key, hook path).
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// Every string that must never show up in a log line or error message.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![self.url.clone(), self.shared.token.clone()];
        if let Some(secret) = self.secret() {
            secrets.push(secret.to_owned());
            secrets.extend(secret.strip_prefix("whsec_").map(str::to_owned));
            secrets.extend(secret.strip_prefix("SEC").map(str::to_owned));
        }
        secrets
    }

    /// A `[[channels]]` block for a vodhook configuration file.
    pub fn channel_toml(&self, name: &str) -> String {
        format!("[[channels]]\n{}", self.channel_fields(name))
    }

    /// The channel configuration vodhook needs to deliver here.
    pub fn channel_config(&self, name: &str) -> ChannelConfig {
        toml::from_str(&self.channel_fields(name)).expect("stand-in channel configuration")
    }

    fn channel_fields(&self, name: &str) -> String {
        let mut fields = format!("name = \"{name}\"\ntype = \"{}\"\nurl = \"{}\"\n", self.kind, self.url);
        if let Some(secret) = self.secret() {
            fields.push_str(&format!("secret = \"{secret}\"\n"));
        }
        fields
    }

    /// How every following request is answered (once [`StandIn::fail_next`]'s are used up).
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.lock().behaviour = behaviour;
    }

    /// The next `n` requests that pass the checks get `behaviour`; then the usual one again.
    pub fn fail_next(&self, n: usize, behaviour: Behaviour) {
        self.lock().next.extend(std::iter::repeat_n(behaviour, n));
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// The accepted messages (checks passed, behaviour `Accept` or `Delay`).
    pub fn received(&self) -> Vec<Request> {
        self.requests().into_iter().filter(|r| r.verdict == Verdict::Accepted).collect()
    }

    /// The requests that came over the rate limit (or while blocked for it).
    pub fn over_limit(&self) -> usize {
        self.requests().iter().filter(|r| r.verdict == Verdict::OverLimit).count()
    }

    /// Why each rejected request was rejected.
    pub fn rejected(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter_map(|r| match r.verdict {
                Verdict::Rejected(reason) => Some(reason),
                _ => None,
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        self.shared.book.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Serves `app` on `listener` until `stopped` says so (every stand-in's server).
pub fn serve_until(listener: tokio::net::TcpListener, app: axum::Router, mut stopped: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        });
        let _ = server.await;
    });
}

impl Drop for StandIn {
    /// Stops the server and releases hanging requests.
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared.peak.fetch_max(now, Ordering::SeqCst);
    let response = answer(&shared, method, uri, headers, body).await;
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

async fn answer(shared: &Shared, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut request =
        Request { path: uri.path().to_owned(), query, headers, body, json, verdict: Verdict::Accepted };

    if let Err(refusal) = check(shared, &method, &request) {
        let (reason, reply) = *refusal;
        request.verdict = Verdict::Rejected(reason);
        shared.record(request);
        return reply;
    }
    if let Some(refusal) = shared.enforce(&request) {
        let (verdict, reply) = *refusal;
        request.verdict = verdict;
        shared.record(request);
        return reply;
    }
    let behaviour = {
        let mut state = shared.lock();
        state.next.pop_front().unwrap_or_else(|| state.behaviour.clone())
    };
    match behaviour {
        Behaviour::Accept => {}
        Behaviour::Delay(delay) => tokio::time::sleep(delay).await,
        Behaviour::Hang => {
            let mut stop = shared.stop.clone();
            let _ = stop.wait_for(|stop| *stop).await;
            request.verdict = Verdict::Answered(Behaviour::Hang);
            shared.record(request);
            return reply(StatusCode::SERVICE_UNAVAILABLE, &[], "stand-in stopped".into());
        }
        other => {
            let answer = behaviour_reply(shared.kind, &other);
            request.verdict = Verdict::Answered(other);
            shared.record(request);
            return answer;
        }
    }
    shared.record(request);
    match shared.kind {
        ChannelType::Dingtalk | ChannelType::Wecom => ok_json(json!({"errcode": 0, "errmsg": "ok"})),
        ChannelType::Feishu => ok_json(json!({"code": 0, "data": {}, "msg": "success"})),
        ChannelType::Slack => reply(StatusCode::OK, &[], "ok".into()),
        _ => reply(StatusCode::NO_CONTENT, &[], String::new()),
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, request: Request) {
        self.lock().requests.push(request);
    }

    /// The service's limits on a request that passed the checks: its size, then the block,
    /// then the windows. `None`: within them (and counted).
    fn enforce(&self, request: &Request) -> Option<Box<(Verdict, Response)>> {
        let limits = self.limits?;
        if let Some(max) = limits.max_body
            && request.body.len() > max
        {
            let reply = match self.kind {
                ChannelType::Dingtalk => ok_json(
                    json!({"errcode": 460101, "errmsg": format!("message too long, exceed {max} bytes")}),
                ),
                _ => ok_json(json!({"code": 9499, "data": {}, "msg": "request body too large"})),
            };
            return Some(Box::new((
                Verdict::Rejected(format!("body of {} bytes", request.body.len())),
                reply,
            )));
        }
        let now = std::time::Instant::now();
        let mut meter = self.meter.lock().unwrap_or_else(|e| e.into_inner());
        let blocked = meter.blocked_until.is_some_and(|until| until > now);
        let inside =
            |span: Duration| meter.arrivals.iter().filter(|t| now.duration_since(**t) < span).count();
        let over = limits.per_window.is_some_and(|n| inside(limits.window) >= n)
            || limits.per_second.is_some_and(|n| inside(Duration::from_secs(1)) >= n);
        if blocked || over {
            if !blocked {
                meter.blocked_until = Some(now + limits.block);
            }
            return Some(Box::new((Verdict::OverLimit, behaviour_reply(self.kind, &Behaviour::RateLimit))));
        }
        meter.arrivals.push_back(now);
        while meter
            .arrivals
            .front()
            .is_some_and(|t| now.duration_since(*t) > limits.window.max(Duration::from_secs(1)))
        {
            meter.arrivals.pop_front();
        }
        None
    }
}

/// Why a request was refused, and the service's reply saying so (boxed: replies are large).
type Refusal = Box<(String, Response)>;

/// The checks the real service makes, with its real error replies.
fn check(shared: &Shared, method: &Method, request: &Request) -> Result<(), Refusal> {
    if method != Method::POST {
        return Err(Box::new((
            "not a POST".into(),
            reply(StatusCode::METHOD_NOT_ALLOWED, &[], String::new()),
        )));
    }
    let json_content = request
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_content {
        return Err(Box::new((
            "content-type is not application/json".into(),
            reply(StatusCode::UNSUPPORTED_MEDIA_TYPE, &[], String::new()),
        )));
    }
    match shared.kind {
        ChannelType::Dingtalk => check_dingtalk(shared, request),
        ChannelType::Feishu => check_feishu(shared, request),
        ChannelType::Wecom => check_wecom(shared, request),
        ChannelType::Slack => check_slack(shared, request),
        ChannelType::Webhook => check_webhook(shared, request),
        ChannelType::Log | ChannelType::Vod => unreachable!("no log or vod stand-in"),
    }
}

fn query<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn hmac(key: &[u8], message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(message);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// DingTalk: `access_token` must be the robot's; with a secret, `timestamp` (ms, within an hour)
/// and `sign` = base64(HMAC-SHA256(secret, timestamp + "\n" + secret)), URL-decoded from the query.
fn check_dingtalk(shared: &Shared, request: &Request) -> Result<(), Refusal> {
    let refuse = |reason: &str, code: i64, message: &str| {
        Err(Box::new((reason.to_owned(), ok_json(json!({"errcode": code, "errmsg": message})))))
    };
    if request.path != "/robot/send" || query(request, "access_token") != Some(shared.token.as_str()) {
        return refuse("bad access_token", 300001, "token is not exist");
    }
    if let Some(secret) = &shared.secret {
        let Some(timestamp) = query(request, "timestamp").and_then(|t| t.parse::<i64>().ok()) else {
            return refuse("no timestamp", 310000, "sign not match, timestamp missing");
        };
        if (now_millis() - timestamp).abs() > 3_600_000 {
            return refuse("stale timestamp", 310000, "sign not match, timestamp is out of date");
        }
        let expected = hmac(secret.as_bytes(), format!("{timestamp}\n{secret}").as_bytes());
        if query(request, "sign") != Some(expected.as_str()) {
            return refuse("bad sign", 310000, "sign not match");
        }
    }
    if request.json.get("msgtype").and_then(Value::as_str).is_none() {
        return refuse("no msgtype", 40035, "missing parameter msgtype");
    }
    if request.json["msgtype"] == "actionCard"
        && let Err(why) = dingtalk_action_card(&request.json)
    {
        return refuse(&why, 40035, "缺少参数 actionCard");
    }
    Ok(())
}

/// DingTalk's `actionCard`: `title` and `text`, then either `singleTitle` + `singleURL` or
/// `btns` of `{title, actionURL}`; an `at` beside it is ignored by DingTalk (refused here, so
/// that a mention never silently goes missing).
fn dingtalk_action_card(body: &Value) -> Result<(), String> {
    let card = &body["actionCard"];
    let text = |v: &Value| v.as_str().is_some_and(|s| !s.is_empty());
    let link = |v: &Value| v.as_str().is_some_and(|s| s.starts_with("https://") || s.starts_with("http://"));
    if !text(&card["title"]) || !text(&card["text"]) {
        return Err("actionCard without title or text".into());
    }
    let single = text(&card["singleTitle"]) && link(&card["singleURL"]);
    let buttons = card["btns"]
        .as_array()
        .is_some_and(|b| !b.is_empty() && b.iter().all(|b| text(&b["title"]) && link(&b["actionURL"])));
    if single == buttons {
        return Err("actionCard needs singleTitle/singleURL or btns[].title/actionURL".into());
    }
    if body.get("at").is_some() {
        return Err("actionCard cannot mention (`at` is ignored)".into());
    }
    Ok(())
}

/// Feishu: the hook token in the path; with a secret, `timestamp` (seconds, within an hour) and
/// `sign` = base64(HMAC-SHA256(key = timestamp + "\n" + secret, message = empty)) in the body.
fn check_feishu(shared: &Shared, request: &Request) -> Result<(), Refusal> {
    let refuse = |reason: &str, code: i64, message: &str| {
        Err(Box::new((reason.to_owned(), ok_json(json!({"code": code, "data": {}, "msg": message})))))
    };
    if request.path != format!("/open-apis/bot/v2/hook/{}", shared.token) {
        return refuse("bad hook token", 19001, "param invalid: incoming webhook access token invalid");
    }
    if let Some(secret) = &shared.secret {
        let body = &request.json;
        let timestamp = match &body["timestamp"] {
            Value::String(text) => text.parse::<i64>().ok(),
            other => other.as_i64(),
        };
        let sign = body["sign"].as_str();
        let fresh = timestamp.is_some_and(|t| (now_millis() / 1000 - t).abs() <= 3600);
        let expected = timestamp.map(|t| hmac(format!("{t}\n{secret}").as_bytes(), b""));
        if !fresh || sign.is_none() || sign != expected.as_deref() {
            return refuse(
                "bad sign or stale timestamp",
                19021,
                "sign match fail or timestamp is not within one hour from current time",
            );
        }
    }
    if request.json.get("msg_type").and_then(Value::as_str).is_none() {
        return refuse("no msg_type", 19002, "params error, msg_type need");
    }
    if let Err(why) = feishu_buttons(&request.json) {
        return refuse(&why, 11246, "create card content failed");
    }
    Ok(())
}

/// A card's `action` elements: each action a `button` with plain-text `text` and an
/// `open_url` behaviour to an http(s) URL.
fn feishu_buttons(body: &Value) -> Result<(), String> {
    let elements = body.pointer("/card/elements").and_then(Value::as_array).cloned().unwrap_or_default();
    for element in elements.iter().filter(|e| e["tag"] == "action") {
        let actions = element["actions"].as_array().ok_or("action element without actions")?;
        for button in actions {
            let url = button.pointer("/behaviors/0/default_url").and_then(Value::as_str).unwrap_or_default();
            let ok = button["tag"] == "button"
                && button.pointer("/text/tag") == Some(&json!("plain_text"))
                && button.pointer("/text/content").and_then(Value::as_str).is_some_and(|t| !t.is_empty())
                && button.pointer("/behaviors/0/type") == Some(&json!("open_url"))
                && (url.starts_with("https://") || url.starts_with("http://"));
            if !ok {
                return Err(format!("not a link button: {button}"));
            }
        }
    }
    Ok(())
}

/// WeCom: the robot's `key` in the query.
fn check_wecom(shared: &Shared, request: &Request) -> Result<(), Refusal> {
    let refuse = |reason: &str, code: i64, message: &str| {
        Err(Box::new((reason.to_owned(), ok_json(json!({"errcode": code, "errmsg": message})))))
    };
    if request.path != "/cgi-bin/webhook/send" || query(request, "key") != Some(shared.token.as_str()) {
        return refuse("bad key", 93000, "invalid webhook url");
    }
    if request.json.get("msgtype").and_then(Value::as_str).is_none() {
        return refuse("no msgtype", 40008, "invalid message type");
    }
    Ok(())
}

/// Slack: the hook path; a body with `text` or `blocks`.
fn check_slack(shared: &Shared, request: &Request) -> Result<(), Refusal> {
    if request.path != format!("/services/T0VODHOOK/B0VODHOOK/{}", shared.token) {
        return Err(Box::new((
            "bad hook path".into(),
            reply(StatusCode::FORBIDDEN, &[], "invalid_token".into()),
        )));
    }
    if request.json.get("text").is_none() && request.json.get("blocks").is_none() {
        return Err(Box::new(("no text".into(), reply(StatusCode::BAD_REQUEST, &[], "no_text".into()))));
    }
    if let Err(why) = slack_actions(&request.json) {
        return Err(Box::new((why, reply(StatusCode::BAD_REQUEST, &[], "invalid_blocks".into()))));
    }
    Ok(())
}

/// Block Kit's `actions` blocks: at most 25 elements, each a `button` with plain-text `text` of
/// at most 75 characters, a `url` of at most 3000, and an `action_id` unique in the message.
fn slack_actions(body: &Value) -> Result<(), String> {
    let blocks = body["blocks"].as_array().cloned().unwrap_or_default();
    let mut ids = std::collections::HashSet::new();
    for block in blocks.iter().filter(|b| b["type"] == "actions") {
        let elements = block["elements"].as_array().ok_or("actions block without elements")?;
        if elements.is_empty() || elements.len() > 25 {
            return Err(format!("actions block with {} elements", elements.len()));
        }
        for button in elements {
            let text = button.pointer("/text/text").and_then(Value::as_str).unwrap_or_default();
            let url = button["url"].as_str().unwrap_or_default();
            let id = button["action_id"].as_str().unwrap_or_default();
            let ok = button["type"] == "button"
                && button.pointer("/text/type") == Some(&json!("plain_text"))
                && (1..=75).contains(&text.chars().count())
                && (1..=3000).contains(&url.len())
                && (1..=255).contains(&id.len())
                && ids.insert(id.to_owned());
            if !ok {
                return Err(format!("invalid button: {button}"));
            }
        }
    }
    Ok(())
}

/// Standard Webhooks: `webhook-id`, `webhook-timestamp` (within five minutes) and a
/// `webhook-signature` list with a `v1,` entry equal to
/// base64(HMAC-SHA256(base64-decoded secret, id + "." + timestamp + "." + body)).
fn check_webhook(shared: &Shared, request: &Request) -> Result<(), Refusal> {
    let refuse = |reason: &str| {
        Err(Box::new((reason.to_owned(), reply(StatusCode::UNAUTHORIZED, &[], reason.to_owned()))))
    };
    if request.path != "/hooks/vodhook" {
        return Err(Box::new(("unknown path".into(), reply(StatusCode::NOT_FOUND, &[], String::new()))));
    }
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(timestamp)) = (header("webhook-id"), header("webhook-timestamp")) else {
        return refuse("missing webhook-id or webhook-timestamp");
    };
    let Ok(timestamp) = timestamp.parse::<i64>() else { return refuse("bad webhook-timestamp") };
    if (now_millis() / 1000 - timestamp).abs() > 300 {
        return refuse("stale webhook-timestamp");
    }
    if let Some(secret) = &shared.secret {
        let key = STANDARD.decode(secret.trim_start_matches("whsec_")).expect("stand-in secret is base64");
        let mut message = format!("{id}.{timestamp}.").into_bytes();
        message.extend_from_slice(&request.body);
        let expected = format!("v1,{}", hmac(&key, &message));
        let signatures = header("webhook-signature").unwrap_or("");
        if !signatures.split(' ').any(|s| s == expected) {
            return refuse("no valid webhook-signature");
        }
    }
    if request.json.is_null() {
        return Err(Box::new((
            "body is not JSON".into(),
            reply(StatusCode::BAD_REQUEST, &[], String::new()),
        )));
    }
    Ok(())
}

/// Each service's own reply for a behaviour.
fn behaviour_reply(kind: ChannelType, behaviour: &Behaviour) -> Response {
    use ChannelType::*;
    match (behaviour, kind) {
        (Behaviour::RateLimit, Dingtalk) => {
            ok_json(json!({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}))
        }
        (Behaviour::RateLimit, Feishu) => {
            ok_json(json!({"code": 9499, "data": {}, "msg": "too many request"}))
        }
        (Behaviour::RateLimit, Wecom) => {
            ok_json(json!({"errcode": 45009, "errmsg": "api freq out of limit"}))
        }
        (Behaviour::RateLimit, Slack) => reply(
            StatusCode::TOO_MANY_REQUESTS,
            &[("retry-after", SLACK_RETRY_AFTER.to_string())],
            "rate_limited".into(),
        ),
        (Behaviour::RateLimit, _) => reply(
            StatusCode::TOO_MANY_REQUESTS,
            &[("retry-after", WEBHOOK_RETRY_AFTER.to_string())],
            String::new(),
        ),
        (Behaviour::ConfigError, Dingtalk) => {
            ok_json(json!({"errcode": 310000, "errmsg": "keywords not in content"}))
        }
        (Behaviour::ConfigError, Feishu) => ok_json(json!({
            "code": 19021, "data": {},
            "msg": "sign match fail or timestamp is not within one hour from current time"
        })),
        (Behaviour::ConfigError, Wecom) => {
            ok_json(json!({"errcode": 93000, "errmsg": "invalid webhook url"}))
        }
        (Behaviour::ConfigError, Slack) => reply(StatusCode::GONE, &[], "channel_is_archived".into()),
        (Behaviour::ConfigError, _) => reply(StatusCode::GONE, &[], String::new()),
        _ => reply(StatusCode::SERVICE_UNAVAILABLE, &[], "service unavailable".into()),
    }
}

fn ok_json(body: Value) -> Response {
    reply(StatusCode::OK, &[("content-type", "application/json".into())], body.to_string())
}

fn reply(status: StatusCode, headers: &[(&str, String)], body: String) -> Response {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, value);
    }
    response.body(Body::from(body)).expect("stand-in reply")
}

/// A fresh hex string (`bytes` * 2 digits), different in every call and process.
fn unique_hex(bytes: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = format!(
        "{}:{}:{:?}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
    );
    let mut out = String::new();
    let mut block = Sha256::digest(seed.as_bytes());
    while out.len() < bytes * 2 {
        out.extend(block.iter().map(|b| format!("{b:02x}")));
        block = Sha256::digest(block);
    }
    out.truncate(bytes * 2);
    out
}
