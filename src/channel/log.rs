//! The `log` channel: one structured log line per action. The built-in default configuration
//! sends every event here, so a fresh deployment shows what it would deliver before any chat
//! robot is configured.

use serde_json::{Map, Value};

use chrono::{DateTime, Utc};

use super::{Message, Outcome, Prepared, ServiceLimits};
use crate::action::Action;
use crate::config::ChannelConfig;
use crate::template::Markup;
use crate::text::truncate_chars;

/// How much of the rendered payload goes into the line; a log line is a summary, and the decoded
/// event can be large.
const MAX_PAYLOAD_CHARS: usize = 2000;
pub const LIMITS: ServiceLimits = ServiceLimits::NONE;
pub const MARKUP: Markup = Markup::Text;

/// The `log` channel: one line, greppable.
pub const TEMPLATE: (&str, &str) = (
    "builtin:log",
    r#"{{ headline }}
{%- if video_id and title %} · video {{ video_id | oneline }}{% endif %}
{%- if task_id %} · task {{ task_id | oneline }}{% endif %}
{%- if duration %} · {{ duration }}{% endif %}
{%- for node in failed_nodes %}{{ " · failed: " if loop.first else ", " }}{{ node.name | oneline }}
{%- if node.error_code or node.error_message %} ({% if node.error_code %}{{ node.error_code | oneline }}{% if node.error_message %}: {% endif %}{% endif %}{{ node.error_message | clip(200) | oneline }}){% endif %}
{%- endfor %}"#,
);

/// The `log` channel's record: the rendered line and the facts to filter logs by.
pub(super) fn message(m: &Message<'_>) -> Value {
    let summary = m.summary;
    let mut record = Map::new();
    record.insert("message".into(), m.text.into());
    record.insert("event".into(), m.identity.into());
    record.insert("event_type".into(), summary.event_type.into());
    record.insert("route".into(), m.route.into());
    if !summary.status.is_empty() {
        record.insert("status".into(), summary.status.into());
    }
    record.insert("ok".into(), summary.ok.into());
    for (key, value) in [
        ("video_id", summary.video_id),
        ("workflow_id", summary.workflow_id),
        ("task_id", summary.task_id),
        ("title", summary.title),
    ] {
        if let Some(value) = value {
            record.insert(key.into(), value.into());
        }
    }
    if !summary.failed_nodes.is_empty() {
        let failed: Vec<&str> = summary.failed_nodes.iter().map(|n| n.name).collect();
        record.insert("failed_nodes".into(), failed.into());
    }
    if !m.mentions.is_empty() {
        record.insert("mentions".into(), serde_json::to_value(m.mentions).unwrap_or_default());
    }
    Value::Object(record)
}

pub(super) fn deliver(action: &Action) -> Outcome {
    tracing::info!(
        channel = %action.channel,
        route = %action.route,
        key = %action.key,
        event = %action.event,
        payload = %summary(&action.payload),
        "action"
    );
    Outcome::Delivered
}

/// A string payload as is, anything else as compact JSON; either cut to [`MAX_PAYLOAD_CHARS`].
/// (`serde_json::to_string` writes into one buffer; `Value`'s `Display` went through the
/// formatter for every piece: 3.5 k instructions more per built-in record, BENCHMARKS.md.)
fn summary(payload: &Value) -> String {
    let json;
    let text = match payload {
        Value::String(text) => text,
        other => {
            json = serde_json::to_string(other).unwrap_or_default();
            &json
        }
    };
    truncate_chars(&crate::text::printable(text), MAX_PAYLOAD_CHARS)
}

/// What the built-in message is made of (no digests: one document, one record per event).
const BUILTINS: super::Builtins =
    super::Builtins { markup: MARKUP, message: TEMPLATE, facts: false, video: None, digest: None };

/// The log: records handed over locally, never sent.
pub(super) struct Log;

impl super::Messenger for Log {
    fn builtins(&self, _: &ChannelConfig) -> &'static super::Builtins {
        &BUILTINS
    }
    fn message(&self, _: &ChannelConfig, m: &Message<'_>) -> Result<Value, String> {
        Ok(message(m))
    }
    fn prepare(&self, _: &ChannelConfig, action: &Action, _: DateTime<Utc>) -> Prepared {
        Ok(super::Request::Local(deliver(action)))
    }
    fn classify(&self, _: &super::exchange::Reply) -> Outcome {
        Outcome::Delivered
    }
    /// Records name everyone, whatever kind.
    fn mention_keys(&self) -> &'static [crate::config::MentionKey] {
        &crate::config::MentionKey::ALL
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use serde_json::json;

    use super::*;
    use crate::channel::test_support::action;
    use crate::config::ChannelType;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn one_structured_line_per_action() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::INFO)
            .finish();
        let action = action(ChannelType::Log, json!({"title": "大象.mp4", "status": "Failed"}));
        let outcome = tracing::subscriber::with_default(subscriber, || deliver(&action));
        assert_eq!(outcome, Outcome::Delivered);

        let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = output.lines().collect();
        assert_eq!(lines.len(), 1, "{output}");
        let line: Value = serde_json::from_str(lines[0]).unwrap();
        let fields = &line["fields"];
        assert_eq!(fields["channel"], "test");
        assert_eq!(fields["route"], "failures");
        assert_eq!(fields["key"], action.key.as_str());
        let payload: Value = serde_json::from_str(fields["payload"].as_str().unwrap()).unwrap();
        assert_eq!(payload, action.payload);
    }

    #[test]
    fn long_payloads_are_summarised() {
        let long = "é".repeat(5000);
        let summary = summary(&Value::String(long));
        assert_eq!(summary.chars().count(), MAX_PAYLOAD_CHARS);
        assert!(summary.ends_with('…'));
    }
}
