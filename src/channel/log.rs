//! The `log` channel: one structured log line per action. The built-in default configuration
//! sends every event here, so a fresh deployment shows what it would deliver before any chat
//! robot is configured.

use serde_json::{Map, Value};

use chrono::{DateTime, Utc};

use super::{Message, Outcome, Prepared, ServiceLimits};
use crate::action::Action;
use crate::config::ChannelConfig;
use crate::config::Locale;
use crate::template::{self, Markup};
use crate::text::{one_line, truncate_chars};

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
        payload = summary(&action.payload).as_str(),
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

/// [`TEMPLATE`] written out: the same line, byte for byte, without a template engine (~35 k
/// instructions of a fresh callback's ~305 k went to making the context and rendering it,
/// BENCHMARKS.md, "Round 3, session 10"). The test `line_says_what_the_template_says` renders
/// both for every sample, status and locale.
fn line(prepared: &template::Prepared<'_>, locale: Locale) -> String {
    // As the template's `{% if x %}`: an empty string counts as none.
    fn given(value: Option<&str>) -> Option<&str> {
        value.filter(|value| !value.is_empty())
    }
    let summary = prepared.summary();
    let mut line = String::with_capacity(256);
    line.push_str(prepared.headline(locale));
    if let (Some(video_id), Some(_)) = (given(summary.video_id), given(summary.title)) {
        line.push_str(" · video ");
        line.push_str(&one_line(video_id));
    }
    if let Some(task_id) = given(summary.task_id) {
        line.push_str(" · task ");
        line.push_str(&one_line(task_id));
    }
    if let Some(duration) = given(summary.duration.as_deref()) {
        line.push_str(" · ");
        line.push_str(duration);
    }
    for (i, node) in summary.failed_nodes.iter().enumerate() {
        line.push_str(if i == 0 { " · failed: " } else { ", " });
        line.push_str(&one_line(node.name));
        let (code, message) = (given(node.error_code), given(node.error_message));
        if code.is_none() && message.is_none() {
            continue;
        }
        line.push_str(" (");
        if let Some(code) = code {
            line.push_str(&one_line(code));
            if message.is_some() {
                line.push_str(": ");
            }
        }
        line.push_str(&one_line(&truncate_chars(message.unwrap_or_default(), MAX_ERROR_CHARS)));
        line.push(')');
    }
    // No trimming, as `Templates::render` trims a template's text: every piece is on one line.
    line
}

/// How much of a failed node's error message the line shows (the template's `clip(200)`).
const MAX_ERROR_CHARS: usize = 200;

/// What the built-in message is made of (no digests: one document, one record per event).
const BUILTINS: super::Builtins = super::Builtins {
    markup: MARKUP,
    message: TEMPLATE,
    facts: false,
    video: None,
    digest: None,
    written_out: Some(line),
};

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
    use crate::event::Event;

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

    /// A workflow event with `fields` and, in `ActivityResults`, one node per `(status, message
    /// body)`: nested JSON in strings, as VOD sends it.
    fn workflow(fields: Value, nodes: &[(&str, Value)]) -> Event {
        let results: serde_json::Map<String, Value> = nodes
            .iter()
            .enumerate()
            .map(|(i, (status, body))| {
                let result = json!({"EventType": "TranscodeComplete", "MessageBody": body}).to_string();
                let node = json!({"ActivityId": format!("Node{i}"), "Status": status, "Result": result});
                (format!("Node{i}_a{i}"), node)
            })
            .collect();
        let mut body = json!({"EventType": "WorkflowTaskComplete", "Status": "Failed"});
        body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        body["ActivityResults"] = Value::String(Value::Object(results).to_string());
        crate::event::decode_delivery(body.to_string().as_bytes()).unwrap().events.remove(0)
    }

    /// Every shape the line tells apart: the samples, failed nodes with a code, a message, both,
    /// neither, empty ones, a long and a multi-line message; no title, an empty TaskId, no times.
    fn events() -> Vec<Event> {
        let failed = |code: Value, message: Value| {
            ("Failed", json!({"Status": "fail", "ErrorCode": code, "ErrorMessage": message}))
        };
        let long = "an error that goes on ".repeat(20);
        let mut events: Vec<Event> = crate::samples::events().into_iter().map(|(_, e)| e).collect();
        events.extend([
            workflow(
                json!({"TaskId": "t1", "VideoId": "v1", "TaskInput": "{\"Title\": \"a\\nb.mp4\"}"}),
                &[failed(json!("E1"), json!("m1")), failed(json!("E2"), Value::Null)],
            ),
            workflow(
                json!({"TaskId": "t2", "VideoId": "v2"}),
                &[failed(Value::Null, json!(long)), failed(json!(""), json!("two\nlines")), failed(Value::Null, Value::Null)],
            ),
            workflow(
                json!({"TaskId": "", "VideoId": "v3", "TaskInput": "{\"Title\": \"\"}", "CreateTime": "2025-04-01T02:29:46Z", "FinishTime": "2025-04-01T02:31:05Z"}),
                &[("Succeed", json!({"Status": "success"})), failed(json!("E\r3"), json!(""))],
            ),
            workflow(json!({"Status": "Succeed", "TaskId": "t4 \u{202e}"}), &[]),
            workflow(json!({"Status": "Processing", "TaskId": "\nt5\n"}), &[]),
        ]);
        events
    }

    #[test]
    fn line_says_what_the_template_says() {
        use crate::config::Config;
        use crate::template::{Builtin, Resolution, Target, Templates};

        let config = Config::builtin();
        let builtins: Vec<Builtin> = Locale::ALL
            .into_iter()
            .map(|locale| Builtin { name: TEMPLATE.0, source: TEMPLATE.1, locale: Some(locale), facts: None })
            .collect();
        let templates = Templates::compile(&config, &builtins, &[]).unwrap();
        let (channel, route) = (&config.channels[0], &config.routes[0]);
        let resolution =
            Resolution { resolved: true, resolves: vec!["t0".into()], resolved_after_secs: Some(60) };
        let mut seen = Vec::new();
        for event in events() {
            for resolution in [None, Some(&resolution)] {
                let prepared = match resolution {
                    None => templates.prepare(&event),
                    Some(resolution) => templates.prepare_resolved(&event, resolution),
                };
                for locale in Locale::ALL {
                    let target = Target {
                        channel,
                        markup: MARKUP,
                        builtin: TEMPLATE.0,
                        locale,
                        utc_offset: None,
                        video: None,
                        written_out: None,
                    };
                    let rendered = templates.render(&target, route, &prepared).unwrap();
                    let written = Target { written_out: Some(line), ..target };
                    assert_eq!(templates.render(&written, route, &prepared).unwrap(), rendered);
                    seen.push(rendered);
                }
            }
        }
        assert_eq!(seen.len(), 32);
        // The events reach every branch of the template.
        for part in [
            "a b.mp4 · video v1 · task t1 · failed: Node0_a0 (E1: m1), Node1_a1 (E2)",
            "v2 · task t2 · failed: Node0_a0 (an error that goes on an error",
            "…), Node1_a1 (two lines), Node2_a2",
            "v3 · 1m 19s · failed: Node1_a1 (E 3)",
            "✅ 已恢复 · task",
            "· task t4 \\u{202e}",
        ] {
            assert!(seen.iter().any(|line| line.contains(part)), "no line has {part:?}: {seen:#?}");
        }
    }

    #[test]
    fn long_payloads_are_summarised() {
        let long = "é".repeat(5000);
        let summary = summary(&Value::String(long));
        assert_eq!(summary.chars().count(), MAX_PAYLOAD_CHARS);
        assert!(summary.ends_with('…'));
    }
}
