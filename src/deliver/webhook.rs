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

use super::{ChannelError, Outcome, Post, Reply, channel_secret, channel_url, hmac_sha256};
use crate::action::Action;
use crate::config::ChannelConfig;

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// The signing key inside a `whsec_<base64>` secret (the prefix is optional, as in the
/// specification's libraries).
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, ChannelError> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    match STANDARD.decode(encoded) {
        Ok(key) if !key.is_empty() => Ok(key),
        _ => Err(ChannelError::BadWebhookSecret),
    }
}

/// The `webhook-signature` value: `v1,` and the base64 HMAC of `id.timestamp.body`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut message = Vec::with_capacity(id.len() + body.len() + 24);
    message.extend_from_slice(id.as_bytes());
    message.push(b'.');
    message.extend_from_slice(timestamp.to_string().as_bytes());
    message.push(b'.');
    message.extend_from_slice(body);
    format!("v1,{}", STANDARD.encode(hmac_sha256(key, &message)))
}

pub(crate) fn prepare(
    channel: &ChannelConfig,
    action: &Action,
    now: DateTime<Utc>,
) -> Result<Post, ChannelError> {
    let key = channel_secret(channel).map(decode_secret).transpose()?;
    let mut post = Post::json(channel_url(channel)?, &action.payload)?;
    for (name, value) in &channel.headers {
        let bad = |problem| ChannelError::BadHeader { name: name.clone(), problem };
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("not a valid header name"))?;
        if post.headers.contains_key(&header) || header.as_str().starts_with("webhook-") {
            return Err(bad("vodhook sets this header itself"));
        }
        let mut value =
            HeaderValue::from_str(value).map_err(|_| bad("the value is not valid in a header"))?;
        // Configured values are often credentials: keep them out of any debug output.
        value.set_sensitive(true);
        post.headers.insert(header, value);
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

pub(crate) fn classify(reply: &Reply) -> Outcome {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::action::ChannelType;
    use crate::deliver::test_support::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn sign_matches_the_standard_webhooks_reference_vector() {
        let key = decode_secret(SECRET).unwrap();
        assert_eq!(
            sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, br#"{"test": 2432232314}"#),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        // The prefix is optional; a secret that is not base64 is refused.
        assert_eq!(decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(), key);
        assert!(decode_secret("whsec_not base64!").is_err());
        assert!(decode_secret("whsec_").is_err());
    }

    #[test]
    fn prepare_signs_exactly_the_body_it_sends() {
        let mut channel = channel(ChannelType::Webhook, "https://example.com/hooks", Some(SECRET));
        channel.headers.insert("Authorization".into(), "Bearer t0ken".into());
        let action =
            action(ChannelType::Webhook, json!({"event": {"Status": "Failed"}, "route": "failures"}));
        let post = prepare(&channel, &action, at_millis(1_614_265_330_000)).unwrap();

        let id = action.message_id();
        assert_eq!(post.headers[ID_HEADER], id.as_str());
        assert_eq!(post.headers[TIMESTAMP_HEADER], "1614265330");
        let expected = sign(&decode_secret(SECRET).unwrap(), &id, 1_614_265_330, &post.body);
        assert_eq!(post.headers[SIGNATURE_HEADER], expected.as_str());
        assert_eq!(post.headers["authorization"], "Bearer t0ken");
        assert!(post.headers["authorization"].is_sensitive());
        assert_eq!(post.headers["content-type"], "application/json");
    }

    #[test]
    fn headers_cannot_replace_the_ones_vodhook_sets() {
        for name in ["webhook-id", "Webhook-Signature", "Content-Type"] {
            let mut channel = channel(ChannelType::Webhook, "https://example.com/hooks", Some(SECRET));
            channel.headers.insert(name.into(), "forged".into());
            let error =
                prepare(&channel, &action(ChannelType::Webhook, json!({})), at_millis(0)).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("header `{name}` in `headers`: vodhook sets this header itself")
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
        channel.headers.insert("X-Token".into(), "line\nbreak-secret".into());
        let error = prepare(&channel, &action(ChannelType::Webhook, json!({})), at_millis(0)).unwrap_err();
        assert_eq!(error.to_string(), "header `X-Token` in `headers`: the value is not valid in a header");
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
