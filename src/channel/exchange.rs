//! The HTTP exchange every HTTP channel shares: the client (built lazily, because vodhook is a
//! cold-started function and most invocations of some channels never happen), one bounded
//! attempt, the mapping of transport failures to outcomes, and scrubbing secrets out of every
//! reason; plus the reading of "HTTP 200 with a business code" replies that several chat
//! services give.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::Value;
use sha2::Sha256;
use url::Url;

use super::{ChannelError, Outcome, Request, classify, prepare, scrubber};
use crate::action::Action;
use crate::config::ChannelConfig;
use crate::redact::{Scrubber, redact_url};
use crate::text::truncate_chars;

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
        let scrubber = scrubber(channel);
        let outcome = self.attempt(channel, action, timeout, &scrubber).await;
        // Reasons are logged: what a service put in its reply must not forge log lines either.
        outcome.map_reason(|reason| crate::text::printable(&scrubber.clean(&reason)).into_owned())
    }

    async fn attempt(
        &self,
        channel: &ChannelConfig,
        action: &Action,
        timeout: Duration,
        scrubber: &Scrubber,
    ) -> Outcome {
        if channel.kind() != action.channel_type {
            return Outcome::permanent(format!(
                "the action was made for a {} channel but channel `{}` is now a {} channel",
                action.channel_type,
                channel.name,
                channel.kind()
            ));
        }
        let post = match prepare(channel, action, Utc::now()) {
            Ok(Request::Http(post)) => post,
            Ok(Request::Local(outcome)) => return outcome,
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
            // The whole reply is scrubbed before anything is cut from it for a reason: a secret the
            // service echoed across the cut would otherwise leave its first characters behind.
            Ok(Ok(reply)) => classify(channel.kind(), &reply.scrubbed(scrubber)),
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

/// One signed HTTP POST, ready to go.
#[derive(Debug)]
pub struct Post {
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
pub struct Reply {
    pub status: StatusCode,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

impl Reply {
    /// The reply with every secret of the channel removed from its body.
    fn scrubbed(self, scrubber: &Scrubber) -> Reply {
        let text = String::from_utf8_lossy(&self.body);
        let clean = scrubber.clean(&text);
        if clean == text {
            return self;
        }
        Reply { body: Bytes::from(clean), ..self }
    }

    /// The body as a JSON object, if it is one.
    pub fn json_object(&self) -> Option<serde_json::Map<String, Value>> {
        match serde_json::from_slice(&self.body) {
            Ok(Value::Object(map)) => Some(map),
            _ => None,
        }
    }

    /// The body as text, shortened for a reason.
    pub fn text_snippet(&self) -> String {
        truncate_chars(String::from_utf8_lossy(&self.body).trim(), 200)
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

    /// [`Reply::transient`] for a chat service, whose 429 means our budget was wrong:
    /// [`Outcome::Throttled`] with its `Retry-After`.
    pub fn transient_or_throttled(&self) -> Option<Outcome> {
        match self.transient()? {
            Outcome::Retry { reason, after } if self.status == StatusCode::TOO_MANY_REQUESTS => {
                Some(Outcome::Throttled { reason, after })
            }
            other => Some(other),
        }
    }
}

async fn exchange(client: &reqwest::Client, post: Post) -> Result<Reply, reqwest::Error> {
    let mut response = client.post(post.url).headers(post.headers).body(post.body).send().await?;
    let status = response.status();
    let retry_after = retry_after(response.headers(), Utc::now());
    // A reply cut at the cap keeps its beginning, where the services put their codes.
    let body = crate::reply::read_capped(&mut response, MAX_REPLY_BYTES).await?.body;
    Ok(Reply { status, retry_after, body: Bytes::from(body) })
}

/// `Retry-After` in seconds or as an HTTP date (RFC 9110 allows both), capped at
/// [`MAX_RETRY_AFTER`].
pub(super) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
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
    crate::text::with_causes(&error.without_url())
}

pub(super) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length (long ones are hashed), so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// What a reply's business code means, for the services that answer HTTP 200 with a code.
#[derive(Debug, Clone, Copy)]
pub(super) enum CodeMeaning {
    /// Retry, after this many seconds if given.
    Retry(Option<u64>),
    /// The service says we send too fast: [`Outcome::Throttled`].
    Throttled,
    Permanent,
}

/// How to read one service's coded replies.
pub(super) struct CodeTable {
    pub service: &'static str,
    /// The field names holding the code, in order of preference (e.g. `code`, `StatusCode`).
    pub code_fields: &'static [&'static str],
    pub message_fields: &'static [&'static str],
    /// Known non-zero codes; any other is permanent.
    pub known: &'static [(i64, &'static str, CodeMeaning)],
}

/// Classifies a reply from a service that says `{"<code>": 0}` on success: 429 and 5xx first,
/// then the code (0 with a 2xx status is delivered), then the HTTP status.
pub(super) fn classify_coded(reply: &Reply, table: &CodeTable) -> Outcome {
    if let Some(outcome) = reply.transient_or_throttled() {
        return outcome.map_reason(|r| format!("{} {r}", table.service));
    }
    let body = reply.json_object();
    let field = |names: &[&str]| {
        let body = body.as_ref()?;
        names.iter().find_map(|name| body.get(*name))
    };
    let code = field(table.code_fields).and_then(Value::as_i64);
    let message = field(table.message_fields).and_then(Value::as_str).map(|m| truncate_chars(m, 200));
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
                CodeMeaning::Throttled => Outcome::Throttled { reason, after: None },
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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::config::ChannelType;

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

    /// A receiver whose error page echoes the request's bearer token just across the 200-character
    /// cut of a reason, once for each connection it gets.
    async fn echoing_receiver(token: &'static str) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = vec![0u8; 8192];
                let _ = stream.read(&mut request).await;
                let body = format!("{}{token} is not allowed", "x".repeat(190));
                let reply = format!(
                    "HTTP/1.1 401 Unauthorized\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
            }
        });
        port
    }

    #[tokio::test]
    async fn a_secret_echoed_across_the_cut_leaves_nothing_behind() {
        const TOKEN: &str = "bare-token-9f8e7d6c5b4a";
        let port = echoing_receiver(TOKEN).await;
        let mut channel = channel(ChannelType::Webhook, &format!("http://127.0.0.1:{port}/hook"), None);
        crate::channel::test_support::headers(&mut channel)
            .insert("Authorization".into(), format!("Bearer {TOKEN}"));
        let outcome = Sender::new()
            .send(&channel, &action(ChannelType::Webhook, Value::Null), Duration::from_secs(5))
            .await;
        let reason = outcome.reason().unwrap_or_default().to_owned();
        assert!(matches!(outcome, Outcome::Permanent { .. }), "{outcome:?}");
        for prefix_len in 6..=TOKEN.len() {
            assert!(
                !reason.contains(&TOKEN[..prefix_len]),
                "{} characters of the token left: {reason}",
                prefix_len
            );
        }
    }
}
