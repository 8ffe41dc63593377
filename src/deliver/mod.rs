//! Delivery: one attempt to hand one action to its channel, and what the reply means.
//!
//! Each channel type has its own module that knows two things: how to turn an action into a
//! signed HTTP request (`prepare`), and what the service's reply means (`classify`). This module
//! owns what they share: the HTTP client (built lazily, because vodhook is a cold-started
//! function and most invocations of some channels never happen), the per-attempt timeout, the
//! mapping of transport failures to outcomes, and scrubbing secrets out of every reason.
//!
//! Retrying is deliberately not done here: [`Sender::send`] makes exactly one attempt and the
//! delivery engine decides from the [`Outcome`] whether and when to try again, so that one
//! deadline can govern all the channels of a request.
//!
//! Classification, in short (details in each channel's module):
//!
//! | reply                                      | outcome                                   |
//! |--------------------------------------------|-------------------------------------------|
//! | timeout, connection error                  | `Retry`                                   |
//! | HTTP 5xx                                   | `Retry`                                   |
//! | HTTP 429                                   | `Retry`, `after` from `Retry-After`       |
//! | the service's "rate limited"/"busy" codes  | `Retry` (DingTalk/WeCom: `after` 60 s)    |
//! | any other error code or 4xx                | `Permanent` (a configuration problem)     |
//!
//! Unknown error codes are permanent: a service that answered and refused the message will
//! refuse it again, and retrying would spend the 20-messages-a-minute budget of DingTalk and
//! WeCom robots that the other messages need. The reason carries the code and the service's
//! own message, so the operator sees what to fix.

pub mod dingtalk;
pub mod feishu;
pub mod log;
pub mod slack;
pub mod webhook;
pub mod wecom;

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::Value;
use sha2::Sha256;
use url::Url;

use crate::action::{Action, ChannelType};
use crate::config::ChannelConfig;
use crate::redact::redact_url;

/// What one attempt to deliver an action came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The service accepted the message.
    Delivered,
    /// Not delivered, but it may be later: timeouts, connection errors, 5xx, rate limits.
    /// `after` is the service's own hint (`Retry-After`, or its documented throttle window).
    Retry { reason: String, after: Option<Duration> },
    /// Not delivered, and sending the same message again will not change that: a configuration
    /// error (bad token, bad signature secret, missing keyword, channel gone).
    Permanent { reason: String },
}

impl Outcome {
    pub fn retry(reason: impl Into<String>) -> Self {
        Outcome::Retry { reason: reason.into(), after: None }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        Outcome::Permanent { reason: reason.into() }
    }

    /// Why it was not delivered (`None` when it was).
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Delivered => None,
            Outcome::Retry { reason, .. } | Outcome::Permanent { reason } => Some(reason),
        }
    }

    fn map_reason(self, f: impl FnOnce(String) -> String) -> Self {
        match self {
            Outcome::Delivered => Outcome::Delivered,
            Outcome::Retry { reason, after } => Outcome::Retry { reason: f(reason), after },
            Outcome::Permanent { reason } => Outcome::Permanent { reason: f(reason) },
        }
    }
}

/// Why a channel's request cannot even be built. Always a configuration problem, so the
/// action fails permanently; [`check_channel`] finds these at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("no `url` is configured")]
    MissingUrl,
    #[error("`url` is not a valid URL: {0}")]
    BadUrl(url::ParseError),
    #[error("`url` must be http or https, not `{0}`")]
    BadScheme(String),
    #[error("`secret` must be `whsec_` followed by base64 (as Standard Webhooks secrets are)")]
    BadWebhookSecret,
    #[error("header `{name}` in `headers`: {problem}")]
    BadHeader { name: String, problem: &'static str },
    #[error("{service} expects the body to be a JSON object, but the template made {found}")]
    NotAnObject { service: &'static str, found: &'static str },
    #[error("the body cannot be serialised as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Checks that actions can be sent on `channel` (URL, secret format, headers), without sending
/// anything. Meant for `check-config` and start-up validation.
pub fn check_channel(channel: &ChannelConfig) -> Result<(), ChannelError> {
    let probe = Action {
        key: "check|check|check".to_owned(),
        event: "check".to_owned(),
        route: "check".to_owned(),
        channel: channel.name.clone(),
        channel_type: channel.kind,
        payload: Value::Object(serde_json::Map::new()),
    };
    match channel.kind {
        ChannelType::Log => Ok(()),
        kind => prepare(kind, channel, &probe, Utc::now()).map(|_| ()),
    }
}

/// Sends actions. Cheap to create; the HTTP client (rustls, connection pool) is built on the
/// first send and shared by all later ones.
#[derive(Default)]
pub struct Sender {
    client: OnceLock<Result<reqwest::Client, String>>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").field("client_built", &self.client.get().is_some()).finish()
    }
}

/// How much of a reply body is kept: replies are small status documents; anything longer is
/// not one we need to understand.
const MAX_REPLY_BYTES: usize = 64 * 1024;

/// `Retry-After` values beyond this are capped, so a hostile or broken server cannot make the
/// engine compute an instant that overflows.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

impl Sender {
    pub fn new() -> Self {
        Self::default()
    }

    /// One attempt: sign (timestamps are made now), POST, classify the reply. The whole
    /// exchange, reading the reply included, is bounded by `timeout`.
    ///
    /// Every reason is scrubbed of the channel's URL, secret, the tokens inside the URL, and
    /// configured header values, whatever the service echoed back.
    pub async fn send(&self, channel: &ChannelConfig, action: &Action, timeout: Duration) -> Outcome {
        let outcome = self.attempt(channel, action, timeout).await;
        let scrubber = Scrubber::for_channel(channel);
        outcome.map_reason(|reason| scrubber.clean(&reason))
    }

    async fn attempt(&self, channel: &ChannelConfig, action: &Action, timeout: Duration) -> Outcome {
        if channel.kind != action.channel_type {
            return Outcome::permanent(format!(
                "the action was made for a {} channel but channel `{}` is now a {} channel",
                action.channel_type, channel.name, channel.kind
            ));
        }
        let kind = channel.kind;
        if kind == ChannelType::Log {
            return log::deliver(action);
        }
        let post = match prepare(kind, channel, action, Utc::now()) {
            Ok(post) => post,
            Err(e) => return Outcome::permanent(format!("channel `{}`: {e}", channel.name)),
        };
        let client = match self.client() {
            Ok(client) => client,
            Err(e) => return Outcome::retry(format!("the HTTP client could not be built: {e}")),
        };
        let target = redact_url(post.url.as_str());
        match tokio::time::timeout(timeout, exchange(client, post)).await {
            Err(_) => Outcome::retry(format!("timed out after {timeout:?} waiting for {target}")),
            Ok(Err(e)) => Outcome::retry(format!("request to {target} failed: {}", describe(e))),
            Ok(Ok(reply)) => classify(kind, &reply),
        }
    }

    fn client(&self) -> Result<&reqwest::Client, &str> {
        self.client
            .get_or_init(|| {
                reqwest::Client::builder()
                    .user_agent(concat!("vodhook/", env!("CARGO_PKG_VERSION")))
                    // A redirect would carry a signed message (and webhook signature headers) to
                    // a host nobody configured; none of the services redirect.
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(describe)
            })
            .as_ref()
            .map_err(String::as_str)
    }
}

fn prepare(
    kind: ChannelType,
    channel: &ChannelConfig,
    action: &Action,
    now: DateTime<Utc>,
) -> Result<Post, ChannelError> {
    match kind {
        ChannelType::Dingtalk => dingtalk::prepare(channel, action, now),
        ChannelType::Feishu => feishu::prepare(channel, action, now),
        ChannelType::Wecom => wecom::prepare(channel, action),
        ChannelType::Slack => slack::prepare(channel, action),
        ChannelType::Webhook => webhook::prepare(channel, action, now),
        // Never reached: log actions are not HTTP requests.
        ChannelType::Log => Err(ChannelError::MissingUrl),
    }
}

fn classify(kind: ChannelType, reply: &Reply) -> Outcome {
    match kind {
        ChannelType::Dingtalk => dingtalk::classify(reply),
        ChannelType::Feishu => feishu::classify(reply),
        ChannelType::Wecom => wecom::classify(reply),
        ChannelType::Slack => slack::classify(reply),
        ChannelType::Webhook => webhook::classify(reply),
        ChannelType::Log => Outcome::Delivered,
    }
}

/// One signed HTTP POST, ready to go.
#[derive(Debug)]
pub(crate) struct Post {
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Post {
    /// A POST of `body` as JSON to `url`.
    pub fn json(url: Url, body: &Value) -> Result<Self, ChannelError> {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(Post { url, headers, body: serde_json::to_vec(body)? })
    }
}

/// The part of a reply that classification looks at.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

impl Reply {
    /// The body as a JSON object, if it is one.
    pub fn json_object(&self) -> Option<serde_json::Map<String, Value>> {
        match serde_json::from_slice(&self.body) {
            Ok(Value::Object(map)) => Some(map),
            _ => None,
        }
    }

    /// The body as text, shortened for a reason.
    pub fn text_snippet(&self) -> String {
        snippet(String::from_utf8_lossy(&self.body).trim(), 200)
    }

    /// The outcome every service shares: 429 (with its `Retry-After`) and 5xx are worth retrying.
    pub fn transient(&self) -> Option<Outcome> {
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            Some(Outcome::Retry { reason: "rate limited (HTTP 429)".to_owned(), after: self.retry_after })
        } else if self.status.is_server_error() {
            Some(Outcome::Retry { reason: format!("server error (HTTP {})", self.status), after: None })
        } else {
            None
        }
    }
}

async fn exchange(client: &reqwest::Client, post: Post) -> Result<Reply, reqwest::Error> {
    let mut response = client.post(post.url).headers(post.headers).body(post.body).send().await?;
    let status = response.status();
    let retry_after = retry_after(response.headers(), Utc::now());
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_REPLY_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_REPLY_BYTES {
            break;
        }
    }
    Ok(Reply { status, retry_after, body: Bytes::from(body) })
}

/// `Retry-After` in seconds or as an HTTP date (RFC 9110 allows both), capped at
/// [`MAX_RETRY_AFTER`].
pub(crate) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    let after = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = DateTime::parse_from_rfc2822(value).ok()?;
            (at.with_timezone(&Utc) - now).to_std().unwrap_or(Duration::ZERO)
        }
    };
    Some(after.min(MAX_RETRY_AFTER))
}

/// A transport error with its causes ("error sending request: …: Connection refused"), without
/// the URL that reqwest would otherwise print (it carries tokens).
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The URL of a channel, parsed and checked.
pub(crate) fn channel_url(channel: &ChannelConfig) -> Result<Url, ChannelError> {
    let raw = channel.url.as_ref().filter(|u| !u.is_empty()).ok_or(ChannelError::MissingUrl)?;
    let url = Url::parse(raw.expose()).map_err(ChannelError::BadUrl)?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(ChannelError::BadScheme(other.to_owned())),
    }
}

/// The channel's secret, when one is configured (an empty one counts as none: `${VAR}` of an
/// unset optional variable).
pub(crate) fn channel_secret(channel: &ChannelConfig) -> Option<&str> {
    channel.secret.as_ref().map(|s| s.expose()).filter(|s| !s.is_empty())
}

pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length (long ones are hashed), so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// At most `max` characters of `text`, cut on a character boundary.
pub(crate) fn snippet(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// What a reply's business code means, for the services that answer HTTP 200 with a code.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CodeMeaning {
    /// Retry, after this many seconds if given.
    Retry(Option<u64>),
    Permanent,
}

/// How to read one service's coded replies.
pub(crate) struct CodeTable {
    pub service: &'static str,
    /// The field names holding the code, in order of preference (e.g. `code`, `StatusCode`).
    pub code_fields: &'static [&'static str],
    pub message_fields: &'static [&'static str],
    /// Known non-zero codes; any other is permanent.
    pub known: &'static [(i64, &'static str, CodeMeaning)],
}

/// Classifies a reply from a service that says `{"<code>": 0}` on success: 429 and 5xx first,
/// then the code (0 with a 2xx status is delivered), then the HTTP status.
pub(crate) fn classify_coded(reply: &Reply, table: &CodeTable) -> Outcome {
    if let Some(outcome) = reply.transient() {
        return outcome.map_reason(|r| format!("{} {r}", table.service));
    }
    let body = reply.json_object();
    let field = |names: &[&str]| {
        let body = body.as_ref()?;
        names.iter().find_map(|name| body.get(*name))
    };
    let code = field(table.code_fields).and_then(Value::as_i64);
    let message = field(table.message_fields).and_then(Value::as_str).map(|m| snippet(m, 200));
    let status = reply.status;
    match code {
        Some(0) if status.is_success() => Outcome::Delivered,
        Some(0) => Outcome::permanent(format!("{} answered HTTP {status}", table.service)),
        Some(code) => {
            let known = table.known.iter().find(|(known, ..)| *known == code);
            let (meaning, kind) = match known {
                Some((_, meaning, kind)) => (*meaning, *kind),
                None => ("not a code vodhook knows to be temporary", CodeMeaning::Permanent),
            };
            let reason = format!(
                "{} {} {code} ({meaning}): {}",
                table.service,
                table.code_fields[0],
                message.as_deref().unwrap_or("no message")
            );
            match kind {
                CodeMeaning::Retry(after) => Outcome::Retry { reason, after: after.map(Duration::from_secs) },
                CodeMeaning::Permanent => Outcome::permanent(reason),
            }
        }
        None if status.is_success() => Outcome::permanent(format!(
            "{} answered HTTP {status} without a `{}`; is the URL really a {} robot's?",
            table.service, table.code_fields[0], table.service
        )),
        None => Outcome::permanent(format!("{} answered HTTP {status}", table.service)),
    }
}

/// Removes a channel's secrets from text that may have picked them up: the URL, the signing
/// secret, the tokens inside the URL (query values, long path segments) and configured header
/// values (`Authorization: Bearer …`).
struct Scrubber {
    needles: Vec<String>,
}

impl Scrubber {
    /// Shorter strings than this are not treated as secrets (they would mangle ordinary words).
    const MIN_LEN: usize = 8;

    fn for_channel(channel: &ChannelConfig) -> Self {
        let mut needles = Vec::new();
        if let Some(url) = &channel.url {
            needles.push(url.expose().to_owned());
            if let Ok(parsed) = Url::parse(url.expose()) {
                needles.push(parsed.as_str().to_owned());
                needles.extend(parsed.query_pairs().map(|(_, v)| v.into_owned()));
                if let Some(query) = parsed.query() {
                    needles.extend(
                        query.split('&').filter_map(|p| p.split_once('=')).map(|(_, v)| v.to_owned()),
                    );
                }
                if let Some(segments) = parsed.path_segments() {
                    needles.extend(segments.filter(|s| s.len() >= 12).map(str::to_owned));
                }
                if let Some(password) = parsed.password() {
                    needles.push(password.to_owned());
                }
            }
        }
        if let Some(secret) = &channel.secret {
            needles.push(secret.expose().to_owned());
            if let Some(bare) = secret.expose().strip_prefix("whsec_") {
                needles.push(bare.to_owned());
            }
        }
        needles.extend(channel.headers.values().cloned());
        needles.retain(|n| n.len() >= Self::MIN_LEN);
        // Longest first, so the whole URL goes before the token inside it.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Scrubber { needles }
    }

    fn clean(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for needle in &self.needles {
            if text.contains(needle.as_str()) {
                text = text.replace(needle.as_str(), "***");
            }
        }
        text
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::redact::Secret;

    pub fn channel(kind: ChannelType, url: &str, secret: Option<&str>) -> ChannelConfig {
        ChannelConfig {
            name: "test".to_owned(),
            kind,
            url: Some(Secret::new(url)),
            secret: secret.map(Secret::new),
            headers: Default::default(),
            template: None,
            rate_per_minute: None,
            msg_type: None,
        }
    }

    pub fn action(kind: ChannelType, payload: Value) -> Action {
        Action {
            key: Action::key_for("WorkflowTaskComplete:task-1", "failures", "test"),
            event: "WorkflowTaskComplete:task-1".to_owned(),
            route: "failures".to_owned(),
            channel: "test".to_owned(),
            channel_type: kind,
            payload,
        }
    }

    pub fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).expect("test status"),
            retry_after: None,
            body: Bytes::from(body.to_owned()),
        }
    }

    pub fn at_millis(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).expect("test timestamp")
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates_and_caps_them() {
        let now = at_millis(1_700_000_000_000);
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers, now), None);
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static(" 7 "));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(7)));
        // 2023-11-14T22:13:20Z is `now`; 30 s later:
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("Tue, 14 Nov 2023 22:13:50 GMT"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(30)));
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("Tue, 14 Nov 2023 22:00:00 GMT"));
        assert_eq!(retry_after(&headers, now), Some(Duration::ZERO));
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("99999999999999"));
        assert_eq!(retry_after(&headers, now), Some(MAX_RETRY_AFTER));
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers, now), None);
    }

    #[test]
    fn scrubber_removes_url_tokens_secrets_and_header_values() {
        let mut channel = channel(
            ChannelType::Webhook,
            "https://user:pa55word-long@example.com/hooks/0123456789abcdef?token=tok-secret-value&x=1",
            Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        );
        channel.headers.insert("Authorization".into(), "Bearer header-token-1".into());
        let scrubber = Scrubber::for_channel(&channel);
        let text = "failed: https://user:pa55word-long@example.com/hooks/0123456789abcdef?token=tok-secret-value&x=1 \
                    token tok-secret-value path 0123456789abcdef pw pa55word-long \
                    secret MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw auth Bearer header-token-1";
        let clean = scrubber.clean(text);
        for secret in [
            "tok-secret-value",
            "0123456789abcdef",
            "pa55word-long",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "header-token-1",
        ] {
            assert!(!clean.contains(secret), "{secret} left in {clean}");
        }
        // Ordinary words survive.
        assert!(clean.starts_with("failed: *** token *** path"), "{clean}");
    }

    #[test]
    fn snippets_cut_on_character_boundaries() {
        assert_eq!(snippet("关键词不匹配", 3), "关键词…");
        assert_eq!(snippet("short", 10), "short");
    }

    #[test]
    fn check_channel_reports_configuration_problems() {
        let ok = channel(ChannelType::Dingtalk, "https://oapi.dingtalk.com/robot/send?access_token=x", None);
        assert!(check_channel(&ok).is_ok());
        let mut missing = ok.clone();
        missing.url = None;
        assert!(matches!(check_channel(&missing), Err(ChannelError::MissingUrl)));
        let ftp = channel(ChannelType::Slack, "ftp://example.com/x", None);
        assert_eq!(check_channel(&ftp).unwrap_err().to_string(), "`url` must be http or https, not `ftp`");
        let bad = channel(ChannelType::Webhook, "https://example.com/h", Some("whsec_!!!"));
        assert!(matches!(check_channel(&bad), Err(ChannelError::BadWebhookSecret)));
        let mut log = channel(ChannelType::Log, "", None);
        log.url = None;
        assert!(check_channel(&log).is_ok());
    }

    #[tokio::test]
    async fn transport_failures_are_retried_and_name_no_secret() {
        // A port nothing listens on: bind, note the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/robot/send?access_token=very-secret-token");
        let channel = channel(ChannelType::Dingtalk, &url, Some("SECsigning-secret"));
        let action = action(ChannelType::Dingtalk, serde_json::json!({"msgtype": "text"}));
        let outcome = Sender::new().send(&channel, &action, Duration::from_secs(5)).await;
        let Outcome::Retry { reason, after: None } = &outcome else { panic!("{outcome:?}") };
        assert!(reason.contains(&format!("http://127.0.0.1:{port}/…")), "{reason}");
        assert!(!reason.contains("very-secret-token") && !reason.contains("signing-secret"), "{reason}");
        assert!(reason.contains("Connection refused") || reason.contains("connect"), "{reason}");
    }

    #[tokio::test]
    async fn the_http_client_is_built_on_the_first_http_send_only() {
        let sender = Sender::new();
        assert!(sender.client.get().is_none());
        let log = channel(ChannelType::Log, "", None);
        assert_eq!(
            sender.send(&log, &action(ChannelType::Log, Value::Null), Duration::from_secs(1)).await,
            Outcome::Delivered
        );
        assert!(sender.client.get().is_none(), "a log action needs no HTTP client");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let slack = channel(ChannelType::Slack, &format!("http://127.0.0.1:{port}/services/x"), None);
        sender.send(&slack, &action(ChannelType::Slack, Value::Null), Duration::from_secs(5)).await;
        assert!(matches!(sender.client.get(), Some(Ok(_))));
    }

    #[tokio::test]
    async fn a_changed_channel_type_is_permanent() {
        let channel = channel(ChannelType::Slack, "https://hooks.slack.com/services/x", None);
        let action = action(ChannelType::Dingtalk, serde_json::json!({}));
        let outcome = Sender::new().send(&channel, &action, Duration::from_secs(1)).await;
        assert!(matches!(outcome, Outcome::Permanent { .. }), "{outcome:?}");
    }
}
