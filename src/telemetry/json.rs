//! The JSON log line, written straight from the event's values into one buffer.
//!
//! tracing-subscriber's own JSON formatter collects each event's fields into a map of
//! `serde_json::Value`s and re-parses the current span's fields from their JSON text on every
//! line; on the request path that was ~1.4 k instructions per field (BENCHMARKS.md, round 3).
//! This writes the same shape — `{"timestamp", "level", "fields": {...}, "target", "span":
//! {"name", ...}}` — with no intermediate values: the span's fields are copied as the JSON text
//! `JsonFields` stored when the span was created.

use std::fmt::{self, Write};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// One JSON object per line; see the module's comment.
pub struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = String::with_capacity(512);
        line.push_str("{\"timestamp\":\"");
        write!(line, "{}", chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ"))?;
        line.push_str("\",\"level\":\"");
        line.push_str(meta.level().as_str());
        line.push_str("\",\"fields\":{");
        event.record(&mut Fields { line: &mut line, first: true });
        line.push_str("},\"target\":");
        push_str(&mut line, meta.target());
        if let Some(span) = ctx.lookup_current() {
            line.push_str(",\"span\":{\"name\":");
            push_str(&mut line, span.name());
            let extensions = span.extensions();
            if let Some(stored) = extensions.get::<FormattedFields<N>>() {
                // `JsonFields` stores `{"k":v,...}`: its members go on after the name.
                let inner = stored.fields.trim().trim_start_matches('{').trim_end_matches('}');
                if !inner.is_empty() {
                    line.push(',');
                    line.push_str(inner);
                }
            }
            line.push('}');
        }
        line.push('}');
        writeln!(writer, "{line}")
    }
}

/// Writes each field as a JSON member: numbers and booleans as themselves, everything else as
/// a string (as tracing-subscriber's formatter does).
struct Fields<'a> {
    line: &'a mut String,
    first: bool,
}

impl Fields<'_> {
    fn key(&mut self, field: &Field) {
        if !std::mem::take(&mut self.first) {
            self.line.push(',');
        }
        push_str(self.line, field.name());
        self.line.push(':');
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        push_str(self.line, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.line.push_str(if value { "true" } else { "false" });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        if value.is_finite() {
            let _ = write!(self.line, "{value}");
        } else {
            self.line.push_str("null");
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        let text = format!("{value:?}");
        push_str(self.line, &text);
    }
}

/// `text` as a JSON string: quotes, backslashes and control characters escaped.
fn push_str(line: &mut String, text: &str) {
    line.push('"');
    let mut start = 0;
    for (i, byte) in text.bytes().enumerate() {
        let escaped = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        line.push_str(&text[start..i]);
        if escaped.is_empty() {
            let _ = write!(line, "\\u{byte:04x}");
        } else {
            line.push_str(escaped);
        }
        start = i + 1;
    }
    line.push_str(&text[start..]);
    line.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_json_says() {
        let mut line = String::new();
        push_str(&mut line, "a\"b\\c\nd\u{1}é✓");
        let parsed: String = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed, "a\"b\\c\nd\u{1}é✓");
        assert_eq!(line, r#""a\"b\\c\nd\u0001é✓""#);
    }
}
