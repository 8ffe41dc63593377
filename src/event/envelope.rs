//! Unwraps every way a VOD event arrives into the event objects it carries.
//!
//! Detection is by shape, checked in this order, and unambiguous because VOD events always
//! carry a string `EventType` and none of the envelopes does:
//!
//! 1. an object with `EventType`: **the event itself** (HTTP callback body, MNS queue message);
//! 2. an array: a **batch** (FC 3.0's MNS queue trigger sends an array of CloudEvents); each
//!    element is unwrapped on its own;
//! 3. an object with `specversion`, or with `source`, `type` and `data`: a **CloudEvent**; its
//!    `data.messageBody` (or `data` itself when it is a string or an event) is the message;
//! 4. an object with `Message` and any of `TopicOwner`, `TopicName`, `MessageId`, `Subscriber`:
//!    an **MNS topic notification** in JSON format; `Message` is the message;
//! 5. an object with a string `body` (and usually `attrs`): an **MNS topic notification** in
//!    STREAM format with attributes; `body` is the message;
//! 6. a JSON string: a message that was encoded once more.
//!
//! A *message* is JSON text, or base64 of JSON text (the MNS SDKs encode by default), and is
//! unwrapped again. A body that is not JSON at all is tried as base64 (STREAM format, raw).
//! Envelopes nest at most [`MAX_ENVELOPES`] deep.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde_json::{Map, Value};

use super::DecodeError;
use crate::text::join_path;

/// The most envelopes one event may be wrapped in (a CloudEvent around a base64 topic
/// notification around the event is three).
pub const MAX_ENVELOPES: usize = 4;

/// An event object found in a delivery, not yet decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEvent {
    /// Where in the delivery it was found, e.g. `[1].data.messageBody`; empty for a bare event.
    pub path: String,
    pub value: Value,
}

/// What a delivery held: the events found, and the elements of a batch that could not be one.
#[derive(Debug, Default)]
pub struct Found {
    pub events: Vec<RawEvent>,
    /// One per element of a batch (an MNS trigger's CloudEvents) that is no event: reported with
    /// its path while the rest of the batch is delivered.
    pub rejected: Vec<DecodeError>,
}

/// Unwraps a delivery's bytes into the events it carries (at least one). An error when it holds
/// none; a batch's bad elements beside good ones are in [`Found::rejected`] instead.
pub fn unwrap(body: &[u8]) -> Result<Found, DecodeError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        DecodeError::new(
            "",
            format!("not valid UTF-8 (at byte {}): expected JSON text or base64 of it", e.valid_up_to()),
        )
    })?;
    if text.trim_ascii().is_empty() {
        return Err(DecodeError::new("", "empty body: expected a VOD event as JSON"));
    }
    let value = parse_message(text, "")?;
    let mut out = Found::default();
    classify(value, String::new(), 0, &mut out)?;
    if out.events.is_empty() {
        let none = || DecodeError::new("", "expected a VOD event; the delivery holds none");
        return Err(out.rejected.into_iter().next().unwrap_or_else(none));
    }
    Ok(out)
}

/// JSON text, or base64 of JSON text.
fn parse_message(text: &str, path: &str) -> Result<Value, DecodeError> {
    let json_err = match serde_json::from_str::<Value>(text) {
        Ok(value) => return Ok(value),
        Err(err) => err,
    };
    if let Some(decoded) = base64_text(text) {
        return serde_json::from_str(&decoded).map_err(|err| {
            DecodeError::new(path, format!("base64 decoded, but the result is not JSON: {}", describe(&err)))
        });
    }
    Err(DecodeError::new(
        path,
        format!("expected a VOD event as JSON (or base64 of it): {}", describe(&json_err)),
    ))
}

/// Says what went wrong in terms a user can act on.
fn describe(err: &serde_json::Error) -> String {
    match err.classify() {
        serde_json::error::Category::Eof => format!("the document ends early, truncated? ({err})"),
        _ => err.to_string(),
    }
}

/// Decodes `text` as base64 (standard or URL-safe alphabet, padded or not, line breaks
/// allowed) into UTF-8 text; `None` when it is not that.
fn base64_text(text: &str) -> Option<String> {
    let compact: String = text.split_ascii_whitespace().collect();
    if compact.is_empty() || !compact.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/-_=".contains(&b)) {
        return None;
    }
    let unpadded = compact.trim_end_matches('=');
    let bytes = STANDARD
        .decode(&compact)
        .ok()
        .or_else(|| base64::engine::general_purpose::STANDARD_NO_PAD.decode(unpadded).ok())
        .or_else(|| URL_SAFE.decode(&compact).ok())
        .or_else(|| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(unpadded).ok())?;
    String::from_utf8(bytes).ok()
}

fn classify(value: Value, path: String, depth: usize, out: &mut Found) -> Result<(), DecodeError> {
    if depth > MAX_ENVELOPES {
        return Err(DecodeError::new(path, format!("wrapped in more than {MAX_ENVELOPES} envelopes")));
    }
    match value {
        Value::Object(map) => classify_object(map, path, depth, out),
        Value::Array(items) => {
            if items.is_empty() {
                return Err(DecodeError::new(path, "empty array: expected CloudEvents or VOD events"));
            }
            // Each element on its own: one bad message must not cost the batch's good ones (FC
            // would retry the whole batch, and give up on all of it).
            for (i, item) in items.into_iter().enumerate() {
                if let Err(err) = classify(item, format!("{path}[{i}]"), depth + 1, out) {
                    out.rejected.push(err);
                }
            }
            Ok(())
        }
        Value::String(text) => {
            let inner = parse_message(&text, &path)?;
            classify(inner, path, depth + 1, out)
        }
        other => Err(DecodeError::new(
            path,
            format!(
                "expected a VOD event (a JSON object with EventType) or an envelope, found {}",
                kind(&other)
            ),
        )),
    }
}

/// A CloudEvent: its `data.messageBody` (FC's MNS trigger), or `data` itself when that is a
/// string or an event, is the message.
fn cloud_event(
    mut map: Map<String, Value>,
    path: &str,
    depth: usize,
    out: &mut Found,
) -> Result<(), DecodeError> {
    let data_path = join_path(path, "data");
    match map.remove("data") {
        Some(Value::Object(mut data)) if !data.contains_key("EventType") => {
            match data.remove("messageBody") {
                Some(body) => message(body, join_path(&data_path, "messageBody"), depth, out),
                None => Err(DecodeError::new(
                    data_path,
                    "expected messageBody (an MNS message) in the CloudEvent's data",
                )),
            }
        }
        Some(data) => message(data, data_path, depth, out),
        None => Err(DecodeError::new(data_path, "required field is missing: a CloudEvent without data")),
    }
}

fn classify_object(
    mut map: Map<String, Value>,
    path: String,
    depth: usize,
    out: &mut Found,
) -> Result<(), DecodeError> {
    if let Some(event_type) = map.get("EventType") {
        if !event_type.is_string() {
            return Err(DecodeError::new(
                join_path(&path, "EventType"),
                format!("expected a string, found {}", kind(event_type)),
            ));
        }
        out.events.push(RawEvent { path, value: Value::Object(map) });
        return Ok(());
    }
    let is_cloud_event =
        map.contains_key("specversion") || ["source", "type", "data"].iter().all(|k| map.contains_key(*k));
    if is_cloud_event {
        return cloud_event(map, &path, depth, out);
    }
    let is_topic_json = map.contains_key("Message")
        && ["TopicOwner", "TopicName", "MessageId", "Subscriber"].iter().any(|k| map.contains_key(*k));
    if is_topic_json {
        let body = map.remove("Message").unwrap_or(Value::Null);
        return message(body, join_path(&path, "Message"), depth, out);
    }
    if let Some(Value::String(_)) = map.get("body") {
        let body = map.remove("body").unwrap_or(Value::Null);
        return message(body, join_path(&path, "body"), depth, out);
    }
    // A few keys, each cut short: enough to recognise the shape, never an echo of the input.
    let keys: Vec<String> = map.keys().take(8).map(|k| crate::text::truncate_chars(k, 40)).collect();
    Err(DecodeError::new(
        path,
        format!(
            "expected a VOD event (an object with a string EventType) or an MNS/CloudEvents envelope; found an object with keys [{}]",
            keys.join(", ")
        ),
    ))
}

/// An envelope's payload: a string (JSON or base64 of it) or, leniently, the JSON itself.
fn message(body: Value, path: String, depth: usize, out: &mut Found) -> Result<(), DecodeError> {
    match body {
        Value::String(text) => {
            let inner = parse_message(&text, &path)?;
            classify(inner, path, depth + 1, out)
        }
        Value::Object(_) | Value::Array(_) => classify(body, path, depth + 1, out),
        other => Err(DecodeError::new(
            path,
            format!("expected a message (JSON text or base64 of it), found {}", kind(&other)),
        )),
    }
}

fn kind(value: &Value) -> &'static str {
    super::kind_of(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn b64(s: &str) -> String {
        STANDARD.encode(s)
    }

    const EVENT: &str = r#"{"EventType":"WorkflowTaskComplete","TaskId":"t1","Status":"Succeed"}"#;

    fn one(body: &str) -> RawEvent {
        let mut found = unwrap(body.as_bytes()).unwrap();
        assert_eq!((found.events.len(), found.rejected.len()), (1, 0), "{body}");
        found.events.remove(0)
    }

    #[test]
    fn bare_event_and_base64_event() {
        assert_eq!(one(EVENT).path, "");
        assert_eq!(one(&b64(EVENT)).value["TaskId"], "t1");
    }

    #[test]
    fn cloud_events_batch_with_plain_and_base64_bodies() {
        let ce = |body: &str| {
            json!({"id": "1", "source": "MNS-f", "specversion": "1.0", "type": "mns:Queue:SendMessage",
                   "subject": "acs:mns:cn-shanghai:1:queues/q", "time": "2025-04-01T02:33:12Z",
                   "aliyunaccountid": "1", "data": {"requestId": "r", "messageId": "m", "messageBody": body}})
        };
        let batch = json!([ce(EVENT), ce(&b64(EVENT))]).to_string();
        let events = unwrap(batch.as_bytes()).unwrap().events;
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].path, "[1].data.messageBody");
        assert_eq!(one(&ce(EVENT).to_string()).path, "data.messageBody");
    }

    /// One bad message in an MNS batch is reported with its path; the others are delivered.
    #[test]
    fn a_batchs_bad_elements_are_rejected_one_by_one() {
        let ce = |body: Value| json!({"specversion": "1.0", "id": "1", "source": "s", "type": "t", "data": {"messageBody": body}});
        let batch = json!([
            ce(json!(EVENT)),
            ce(json!("not json, not base64 @@@")),
            ce(json!(r#"{"Video":"no EventType"}"#)),
            ce(json!(r#"{"EventType":5}"#)),
        ]);
        let found = unwrap(batch.to_string().as_bytes()).unwrap();
        assert_eq!(found.events.len(), 1);
        assert_eq!(found.events[0].path, "[0].data.messageBody");
        let paths: Vec<&str> = found.rejected.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["[1].data.messageBody", "[2].data.messageBody", "[3].data.messageBody.EventType"]);
    }

    #[test]
    fn mns_topic_json_and_stream_formats() {
        let topic = json!({"TopicOwner": "1", "Message": b64(EVENT), "Subscriber": "1", "PublishTime": 1,
                           "SubscriptionName": "s", "MessageMD5": "x", "TopicName": "t", "MessageId": "m"});
        assert_eq!(one(&topic.to_string()).path, "Message");
        let stream = json!({"body": EVENT, "attrs": {"Extend": "{}"}});
        assert_eq!(one(&stream.to_string()).path, "body");
    }

    #[test]
    fn errors_name_the_path() {
        let cases = [
            ("", ""),
            ("   ", ""),
            ("[]", ""),
            ("42", ""),
            ("{\"EventType\": 5}", "EventType"),
            ("{\"foo\": 1}", ""),
            ("{\"EventType\": \"X\"", ""),
            ("[{\"specversion\":\"1.0\",\"data\":{\"messageBody\":\"@@@\"}}]", "[0].data.messageBody"),
            ("{\"specversion\":\"1.0\",\"data\":{}}", "data"),
        ];
        for (body, path) in cases {
            let err = unwrap(body.as_bytes()).unwrap_err();
            assert_eq!(err.path, path, "{body}: {err}");
        }
        let err = unwrap(b"{\"EventType\": \"X\"").unwrap_err();
        assert!(err.message.contains("truncated"), "{err}");
        let err = unwrap(&[b'{', 0xff, b'}']).unwrap_err();
        assert!(err.message.contains("UTF-8"), "{err}");
    }

    #[test]
    fn envelope_nesting_is_bounded() {
        let mut body = json!(EVENT);
        for _ in 0..=MAX_ENVELOPES {
            body = json!({"body": body.to_string()});
        }
        let err = unwrap(body.to_string().as_bytes()).unwrap_err();
        assert!(err.message.contains("more than 4 envelopes"), "{err}");
    }
}
