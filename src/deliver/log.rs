//! The `log` channel: one structured log line per action. The built-in default configuration
//! sends every event here, so a fresh deployment shows what it would deliver before any chat
//! robot is configured.

use serde_json::Value;

use super::{Outcome, snippet};
use crate::action::Action;

/// How much of the rendered payload goes into the line; a log line is a summary, and the decoded
/// event can be large.
const MAX_PAYLOAD_CHARS: usize = 2000;

pub(crate) fn deliver(action: &Action) -> Outcome {
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
fn summary(payload: &Value) -> String {
    match payload {
        Value::String(text) => snippet(text, MAX_PAYLOAD_CHARS),
        other => snippet(&other.to_string(), MAX_PAYLOAD_CHARS),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use serde_json::json;

    use super::*;
    use crate::action::ChannelType;
    use crate::deliver::test_support::action;

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
        assert_eq!(summary.chars().count(), MAX_PAYLOAD_CHARS + 1);
        assert!(summary.ends_with('…'));
    }
}
