//! Generic webhook, signed per Standard Webhooks (<https://www.standardwebhooks.com>), so that a
//! receiver can verify it with any of that specification's libraries.
//!
//! Headers: `webhook-id` (the action's [`Action::message_id`]: the same on every retry, so the
//! receiver can drop duplicates), `webhook-timestamp` (now, unix seconds) and, with a secret,
//! `webhook-signature: v1,<base64(HMAC-SHA256(key, id + "." + timestamp + "." + body))>`, where
//! the key is the base64-decoded part of the `whsec_…` secret. The configured `headers` are sent
//! too; setting one of these or `content-type` there is a configuration error.
//!
//! | reply                    | outcome                      |
//! |--------------------------|------------------------------|
//! | 2xx                      | Delivered                    |
//! | 429                      | Retry, `Retry-After`         |
//! | 408, 5xx                 | Retry                        |
//! | 410 Gone                 | Permanent (endpoint removed) |
//! | other 4xx, 3xx           | Permanent                    |
//!
//! 408 (the receiver's own timeout) is retried like our timeouts are. Redirects are not followed
//! (the signed message would go to a host nobody configured), so a 3xx is a configuration error.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::{Value, json};

use super::exchange::{Post, Reply, hmac_sha256};
use super::{
    ChannelError, Message, Outcome, Prepared, ServiceLimits, channel_secret, channel_url, check_url,
};
use crate::action::Action;
use crate::config::{ChannelConfig, Findings, Service, Webhook};
use crate::event::Summary;
use crate::template::Markup;

/// The largest document sent by default; a bigger one goes without its decoded `event`.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Room for the document without its `event`, whatever the event.
const MIN_BODY_BYTES: usize = 16 * 1024;

/// Receivers take what they take: no pacing unless the channel sets `rate_per_minute`.
pub const LIMITS: ServiceLimits = ServiceLimits::NONE;
/// The document's `summary` is plain text.
pub const MARKUP: Markup = Markup::Text;
/// The headline, then the facts in plain text (`template::facts`).
pub const TEMPLATE: (&str, &str) = ("builtin:webhook", "{{ headline }}\n");

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// The signing key inside a Standard Webhooks secret: `whsec_` then the base64 of the key. With
/// a warning when the key is shorter than the 24 bytes the specification asks for. The one rule
/// for secrets: `check-config` and the send path both use it.
pub fn signing_key(secret: &str) -> Result<(Vec<u8>, Option<String>), String> {
    let Some(encoded) = secret.strip_prefix("whsec_") else {
        return Err("must start with `whsec_` followed by the base64 key (Standard Webhooks)".to_owned());
    };
    match STANDARD.decode(encoded) {
        Ok(key) if key.is_empty() => Err("has no key after `whsec_`".to_owned()),
        Ok(key) if key.len() >= 24 => Ok((key, None)),
        Ok(key) => {
            let warning = format!(
                "the key after `whsec_` is {} bytes; Standard Webhooks asks for 24 to 64 random bytes",
                key.len()
            );
            Ok((key, Some(warning)))
        }
        Err(_) => Err("the part after `whsec_` is not valid base64".to_owned()),
    }
}

/// One configured header, checked: a valid name that vodhook does not set itself (the body's
/// type and length, and every `webhook-*` header, which Standard Webhooks reserves), and a valid
/// value. The one rule for headers: `check-config` and the send path both use it. Problems never
/// quote the value: headers carry tokens.
pub fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), &'static str> {
    let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| "is not a valid HTTP header name")?;
    let reserved = matches!(header.as_str(), "content-type" | "content-length")
        || header.as_str().starts_with("webhook-");
    if reserved {
        return Err("is set by vodhook itself and cannot be overridden");
    }
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| "the value is not a valid HTTP header value (visible ASCII only)")?;
    // Configured values are often credentials: keep them out of any debug output.
    value.set_sensitive(true);
    Ok((header, value))
}

pub(super) fn check(channel: &ChannelConfig, at: &str, f: &mut Findings) {
    check_url(channel, at, f);
    let Some(hook) = settings(channel) else { return };
    if hook.max_body_bytes.is_some_and(|max| max < MIN_BODY_BYTES) {
        f.problem(format!("{at}.max_body_bytes"), format!("must be at least {MIN_BODY_BYTES}"));
    }
    if let Some(secret) = &hook.secret {
        match signing_key(secret.expose()) {
            Ok((_, None)) => {}
            Ok((_, Some(warning))) => f.warning(format!("{at}.secret"), warning),
            Err(message) => f.problem(format!("{at}.secret"), message),
        }
    }
    for (name, value) in &hook.headers {
        if let Err(problem) = header(name, value) {
            f.problem(format!("{at}.headers.{name}"), problem);
        }
    }
}

/// The `webhook-signature` value: `v1,` and the base64 HMAC of `id.timestamp.body`.
/// The webhook settings of `channel` (the functions here are called for webhook channels only).
fn settings(channel: &ChannelConfig) -> Option<&Webhook> {
    match &channel.service {
        Service::Webhook(hook) => Some(hook),
        _ => None,
    }
}

pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut message = Vec::with_capacity(id.len() + body.len() + 24);
    message.extend_from_slice(id.as_bytes());
    message.push(b'.');
    message.extend_from_slice(timestamp.to_string().as_bytes());
    message.push(b'.');
    message.extend_from_slice(body);
    format!("v1,{}", STANDARD.encode(hmac_sha256(key, &message)))
}

pub(super) fn prepare(
    channel: &ChannelConfig,
    action: &Action,
    now: DateTime<Utc>,
) -> Result<Post, ChannelError> {
    let key = match channel_secret(channel) {
        Some(secret) => Some(signing_key(secret).map_err(ChannelError::Secret)?.0),
        None => None,
    };
    let mut post = Post::json(channel_url(channel)?, &action.payload)?;
    for (name, value) in settings(channel).into_iter().flat_map(|hook| &hook.headers) {
        let (name, value) =
            header(name, value).map_err(|problem| ChannelError::BadHeader { name: name.clone(), problem })?;
        post.headers.insert(name, value);
    }
    let id = action.message_id();
    let timestamp = now.timestamp();
    if let Some(key) = key {
        let signature = sign(&key, &id, timestamp, &post.body);
        post.headers.insert(SIGNATURE_HEADER, header_value(signature));
    }
    post.headers.insert(ID_HEADER, header_value(id));
    post.headers.insert(TIMESTAMP_HEADER, header_value(timestamp.to_string()));
    Ok(post)
}

/// Ids, timestamps and signatures are ASCII letters, digits and `_,+/=`: always valid.
fn header_value(text: String) -> HeaderValue {
    HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub(super) fn classify(reply: &Reply) -> Outcome {
    let status = reply.status;
    if status.is_success() {
        return Outcome::Delivered;
    }
    if let Some(outcome) = reply.transient() {
        return outcome.map_reason(|r| format!("webhook {r}"));
    }
    match status {
        StatusCode::REQUEST_TIMEOUT => Outcome::retry("webhook receiver timed out (HTTP 408)"),
        StatusCode::GONE => Outcome::permanent("webhook endpoint is gone (HTTP 410)"),
        s if s.is_redirection() => Outcome::permanent(format!(
            "webhook answered HTTP {s}, a redirect, which vodhook does not follow: configure the final URL"
        )),
        s => Outcome::permanent(format!("webhook refused the message (HTTP {s}): {}", reply.text_snippet())),
    }
}

/// The generic webhook's document (`Content-Type: application/json`, signed per Standard
/// Webhooks by the sender):
///
/// ```json
/// {
///   "type": "WorkflowTaskComplete",          // VOD's EventType
///   "id": "msg_…",                           // = the webhook-id header; stable across retries
///   "event_id": "WorkflowTaskComplete:<TaskId>", // the event's identity
///   "timestamp": "2025-10-15T02:00:35Z",     // EventTime, as VOD sent it (null if absent)
///   "route": "failures",
///   "status": "Failed",
///   "ok": false,
///   "summary": "❌ VOD workflow failed: …",  // the rendered text (plain text by default)
///   "details": { … },                        // the template variables: title, video_id,
///                                            // workflow_id, task_id, duration, nodes[], failed_nodes[]
///   "event": { … },                          // the whole event, embedded JSON decoded
///   "kind": "event",                         // "resolved" for a resolved notice, with
///                                            // "resolves": ["<failed TaskId>", …]
///   "mentions": { "user_ids": […], … }       // only when the channel or route mentions anyone
/// }
/// ```
/// Receivers should deduplicate on `id`; VOD may deliver an event more than once.
///
/// When the document would be larger than the channel's `max_body_bytes`, `event` is `null` and
/// `event_omitted` says how large it was (the summary and details still say what happened), and
/// a warning is logged: receivers get a message, never nothing.
pub(super) fn message(channel: &ChannelConfig, m: &Message<'_>) -> Value {
    let mut document = document(m);
    let max = settings(channel).and_then(|hook| hook.max_body_bytes).unwrap_or(MAX_BODY_BYTES);
    let size = serde_json::to_vec(&document).map_or(0, |bytes| bytes.len());
    if size > max {
        tracing::warn!(
            channel = %m.channel,
            event = %crate::text::printable(m.identity),
            bytes = size,
            max,
            "webhook document over max_body_bytes: sent without the decoded event"
        );
        document["event"] = Value::Null;
        document["event_omitted"] =
            json!({ "reason": "over max_body_bytes", "document_bytes": size, "max_body_bytes": max });
    }
    document
}

fn document(m: &Message<'_>) -> Value {
    let id = Action::message_id_for(&Action::key_for(m.identity, m.route, m.channel));
    let summary = m.summary;
    let mut document = json!({
        "type": summary.event_type,
        "id": id,
        "event_id": m.identity,
        "timestamp": summary.event_time,
        "route": m.route,
        "status": summary.status,
        "ok": summary.ok,
        "summary": m.text,
        "details": details(summary),
        "event": m.event.decoded(),
    });
    if let Some(video) = m.video {
        document["video"] = video.clone();
    }
    match m.resolution {
        Some(resolution) => {
            document["kind"] = json!("resolved");
            document["resolves"] = json!(resolution.resolves);
        }
        None => document["kind"] = json!("event"),
    }
    if !m.buttons.is_empty() {
        // `{"silence": url, "watch": url}`: the links a person could act on.
        let links: serde_json::Map<String, Value> =
            m.buttons.iter().map(|b| (b.kind.as_str().to_owned(), Value::String(b.url.clone()))).collect();
        document["links"] = Value::Object(links);
    }
    if !m.mentions.is_empty() {
        // Data for the receiver to page its own way.
        document["mentions"] = serde_json::to_value(m.mentions).unwrap_or_default();
    }
    document
}

/// The summary without the decoded tree (which the document carries once, as `event`).
fn details(summary: &Summary<'_>) -> Value {
    let mut value = serde_json::to_value(summary).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.remove("event");
    }
    value
}

/// What the built-in message is made of (no digests: one document, one record per event).
const BUILTINS: super::Builtins = super::Builtins {
    markup: MARKUP,
    message: TEMPLATE,
    facts: true,
    video: None,
    digest: None,
    written_out: None,
};

/// A Standard Webhooks receiver.
pub(super) struct Receiver;

impl super::Messenger for Receiver {
    fn check(&self, channel: &ChannelConfig, at: &str, f: &mut Findings) {
        check(channel, at, f)
    }
    fn builtins(&self, _: &ChannelConfig) -> &'static super::Builtins {
        &BUILTINS
    }
    fn message(&self, channel: &ChannelConfig, m: &Message<'_>) -> Result<Value, String> {
        Ok(message(channel, m))
    }
    fn prepare(&self, channel: &ChannelConfig, action: &Action, now: DateTime<Utc>) -> Prepared {
        prepare(channel, action, now).map(super::Request::Http)
    }
    fn classify(&self, reply: &Reply) -> Outcome {
        classify(reply)
    }
    /// Documents carry every kind, as data.
    fn mention_keys(&self) -> &'static [crate::config::MentionKey] {
        &crate::config::MentionKey::ALL
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::channel::test_support::*;
    use crate::config::ChannelType;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn sign_matches_the_standard_webhooks_reference_vector() {
        let (key, _) = signing_key(SECRET).unwrap();
        assert_eq!(
            sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, br#"{"test": 2432232314}"#),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn webhook_secrets_are_whsec_base64() {
        assert!(matches!(signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Ok((_, None))));
        assert!(signing_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err().contains("whsec_"));
        assert!(signing_key("whsec_!!!").unwrap_err().contains("base64"));
        assert!(signing_key("whsec_not base64!").unwrap_err().contains("base64"));
        assert!(signing_key("whsec_").unwrap_err().contains("no key"));
        assert!(signing_key("whsec_c2hvcnQ=").unwrap().1.unwrap().contains("5 bytes"));
    }

    /// The bug this rule fixes: `check-config` reserved five names while sending refused every
    /// `webhook-*` header, so this passed the check and then every send failed for good. Both
    /// now go through [`header`].
    #[test]
    fn check_and_send_agree_on_headers_and_secrets() {
        let cases: [(&str, &str, Option<&str>); 4] = [
            ("webhook-version", "1", None),
            ("Webhook-Signature", "forged", None),
            ("Content-Type", "text/plain", None),
            ("X-Team", "vod", Some("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")),
        ];
        for (name, value, secret) in cases {
            let mut channel =
                channel(ChannelType::Webhook, "https://example.com/hooks", secret.or(Some(SECRET)));
            headers(&mut channel).insert(name.into(), value.into());
            let checked = problems(&channel);
            let sent = prepare(&channel, &action(ChannelType::Webhook, json!({})), at_millis(0));
            assert_eq!(checked.is_empty(), sent.is_ok(), "{name}: check {checked:?}, send {sent:?}");
            assert!(!checked.is_empty(), "{name} (secret {secret:?}) must be refused");
        }
        let mut ok = channel(ChannelType::Webhook, "https://example.com/hooks", Some(SECRET));
        headers(&mut ok).insert("X-Team".into(), "vod".into());
        assert!(problems(&ok).is_empty());
        assert!(prepare(&ok, &action(ChannelType::Webhook, json!({})), at_millis(0)).is_ok());
    }

    #[test]
    fn prepare_signs_exactly_the_body_it_sends() {
        let mut channel = channel(ChannelType::Webhook, "https://example.com/hooks", Some(SECRET));
        headers(&mut channel).insert("Authorization".into(), "Bearer t0ken".into());
        let action =
            action(ChannelType::Webhook, json!({"event": {"Status": "Failed"}, "route": "failures"}));
        let post = prepare(&channel, &action, at_millis(1_614_265_330_000)).unwrap();

        let id = action.message_id();
        assert_eq!(post.headers[ID_HEADER], id.as_str());
        assert_eq!(post.headers[TIMESTAMP_HEADER], "1614265330");
        let expected = sign(&signing_key(SECRET).unwrap().0, &id, 1_614_265_330, &post.body);
        assert_eq!(post.headers[SIGNATURE_HEADER], expected.as_str());
        assert_eq!(post.headers["authorization"], "Bearer t0ken");
        assert!(post.headers["authorization"].is_sensitive());
        assert_eq!(post.headers["content-type"], "application/json");
    }

    #[test]
    fn headers_cannot_replace_the_ones_vodhook_sets() {
        for name in ["webhook-id", "Webhook-Signature", "Content-Type"] {
            let mut channel = channel(ChannelType::Webhook, "https://example.com/hooks", Some(SECRET));
            headers(&mut channel).insert(name.into(), "forged".into());
            let error =
                prepare(&channel, &action(ChannelType::Webhook, json!({})), at_millis(0)).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("header `{name}` in `headers`: is set by vodhook itself and cannot be overridden")
            );
        }
    }

    #[test]
    fn without_a_secret_the_request_is_unsigned_but_identified() {
        let channel = channel(ChannelType::Webhook, "https://example.com/hooks", None);
        let post = prepare(&channel, &action(ChannelType::Webhook, json!({})), at_millis(0)).unwrap();
        assert!(post.headers.contains_key(ID_HEADER));
        assert!(!post.headers.contains_key(SIGNATURE_HEADER));
    }

    #[test]
    fn bad_headers_are_named_but_their_values_never_shown() {
        let mut channel = channel(ChannelType::Webhook, "https://example.com/hooks", None);
        headers(&mut channel).insert("X-Token".into(), "line\nbreak-secret".into());
        let error = prepare(&channel, &action(ChannelType::Webhook, json!({})), at_millis(0)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "header `X-Token` in `headers`: the value is not a valid HTTP header value (visible ASCII only)"
        );
    }

    #[test]
    fn replies_are_classified_by_status() {
        assert_eq!(classify(&reply(204, "")), Outcome::Delivered);
        assert!(matches!(classify(&reply(429, "")), Outcome::Retry { .. }));
        assert!(matches!(classify(&reply(408, "")), Outcome::Retry { .. }));
        assert!(matches!(classify(&reply(500, "")), Outcome::Retry { .. }));
        assert_eq!(classify(&reply(410, "")), Outcome::permanent("webhook endpoint is gone (HTTP 410)"));
        assert!(matches!(classify(&reply(401, "bad signature")), Outcome::Permanent { .. }));
        assert!(matches!(classify(&reply(302, "")), Outcome::Permanent { .. }));
    }
}
