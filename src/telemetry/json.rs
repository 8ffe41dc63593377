//! The JSON log line, written straight from the event's values into one 4 KiB buffer.
//!
//! tracing-subscriber's own JSON formatter collects each event's fields into a map of
//! `serde_json::Value`s and re-parses the current span's fields from their JSON text on every
//! line; on the request path that was ~1.4 k instructions per field (BENCHMARKS.md, round 3).
//! This writes the same shape — `{"timestamp", "level", "fields": {...}, "target", "span":
//! {"name", ...}}` — with no intermediate values: the span's fields are copied as the JSON text
//! `JsonFields` stored when the span was created.

use std::fmt::{self, Write};

use chrono::{DateTime, Datelike, Timelike, Utc};

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
        // One buffer for the line, large enough for the `request done` line (~1 KiB) and the log
        // channel's (~2.5 KiB at most): growing one as it filled cost two reallocations a line.
        let mut line = String::with_capacity(4096);
        let meta = event.metadata();
        line.push_str("{\"timestamp\":\"");
        push_timestamp(&mut line, chrono::Utc::now());
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
        line.push_str("}\n");
        // The only write that can fail: the line, whole, to the output.
        writer.write_str(&line)
    }
}

/// Writes each field as a JSON member: numbers and booleans as themselves, everything else as
/// a string (as tracing-subscriber's formatter does).
struct Fields<'a> {
    line: &'a mut String,
    first: bool,
}

impl Fields<'_> {
    /// Writes the member's key; its value goes on right after.
    fn key(&mut self, field: &Field) -> &mut String {
        if !std::mem::take(&mut self.first) {
            self.line.push(',');
        }
        push_str(self.line, field.name());
        self.line.push(':');
        self.line
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        push_str(self.key(field), value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        push_u64(self.key(field), value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        let line = self.key(field);
        if value < 0 {
            line.push('-');
        }
        push_u64(line, value.unsigned_abs());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field).push_str(if value { "true" } else { "false" });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        let line = self.key(field);
        if value.is_finite() { push_display(line, value) } else { line.push_str("null") }
    }

    /// `Debug` (and `%`'s `Display`) values are escaped as they are written: no copy of the
    /// text first (the log channel's record is ~600 bytes).
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let line = self.key(field);
        line.push('"');
        // Writing into a `String` cannot fail; a `Debug` impl's own error leaves what it wrote.
        let _ = write!(Escaping(line), "{value:?}");
        line.push('"');
    }
}

/// Writes what it is given as the inside of a JSON string.
struct Escaping<'a>(&'a mut String);

impl Write for Escaping<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        push_escaped(self.0, text);
        Ok(())
    }
}

/// `value` in decimal, without `core::fmt` (~450 instructions a number through `write!`, and
/// the `request done` line has 23 of them).
fn push_u64(line: &mut String, mut value: u64) {
    let mut digits = [0_u8; 20]; // u64::MAX has 20
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    line.extend(digits[start..].iter().map(|&digit| char::from(digit)));
}

/// `value` as `Display` writes it (numbers here: JSON's form of them).
fn push_display(line: &mut String, value: impl fmt::Display) {
    // Writing into a `String` cannot fail: its `fmt::Write` always answers `Ok`.
    let _ = write!(line, "{value}");
}

/// `at` as `2026-12-05T11:22:56.201054Z` (RFC 3339, microseconds, UTC), digit by digit:
/// chrono's `format` interprets its pattern on every call, ~3 k instructions a line.
fn push_timestamp(line: &mut String, at: DateTime<Utc>) {
    let (date, time) = (at.date_naive(), at.time());
    let micros = time.nanosecond() % 1_000_000_000 / 1_000; // a leap second's nanos are ≥ 1e9
    push_digits(line, date.year().clamp(0, 9999).unsigned_abs(), 4);
    for (separator, value, width) in [
        ('-', date.month(), 2),
        ('-', date.day(), 2),
        ('T', time.hour(), 2),
        (':', time.minute(), 2),
        (':', time.second(), 2),
        ('.', micros, 6),
    ] {
        line.push(separator);
        push_digits(line, value, width);
    }
    line.push('Z');
}

/// `value`'s last `width` decimal digits, zero-padded.
fn push_digits(line: &mut String, value: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = value / 10_u32.pow(place) % 10;
        line.push(char::from(b'0' + digit as u8));
    }
}

/// The bytes a JSON string cannot hold as they are: `"`, `\` and the control characters.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// `text` as a JSON string: quotes, backslashes and control characters escaped. The plain runs
/// between them are copied whole (a table lookup per byte: this runs for every field of every
/// line, payloads included).
fn push_str(line: &mut String, text: &str) {
    line.push('"');
    push_escaped(line, text);
    line.push('"');
}

/// `text` escaped as the inside of a JSON string (see [`push_str`]).
fn push_escaped(line: &mut String, text: &str) {
    let mut start = 0;
    for (i, &byte) in text.as_bytes().iter().enumerate() {
        if !NEEDS_ESCAPE[usize::from(byte)] {
            continue;
        }
        line.push_str(&text[start..i]);
        match byte {
            b'"' => line.push_str("\\\""),
            b'\\' => line.push_str("\\\\"),
            b'\n' => line.push_str("\\n"),
            b'\r' => line.push_str("\\r"),
            b'\t' => line.push_str("\\t"),
            _ => push_display(line, format_args!("\\u{byte:04x}")),
        }
        start = i + 1;
    }
    line.push_str(&text[start..]);
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

    #[test]
    fn numbers_are_written_as_display_writes_them() {
        for value in [0, 7, 10, 99, 1_000_001, u64::MAX / 3, u64::MAX] {
            let mut line = String::new();
            push_u64(&mut line, value);
            assert_eq!(line, value.to_string());
        }
    }

    #[test]
    fn every_kind_of_field_is_json() {
        use tracing_subscriber::layer::SubscriberExt;

        let captured = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = captured.clone();
        let writer = move || Captured(sink.clone());
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().event_format(JsonLine).with_writer(writer));
        let shown = std::path::Path::new("a \"b\"\n");
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                unsigned = u64::MAX,
                signed = i64::MIN,
                small = -3_i64,
                flag = true,
                ratio = 0.25,
                text = "t\"1\u{1}",
                displayed = %"d\\2",
                debugged = ?shown,
                "hello"
            );
        });
        let output = String::from_utf8(captured.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(output.trim_end()).unwrap();
        assert_eq!(
            line["fields"],
            serde_json::json!({
                "message": "hello", "unsigned": u64::MAX, "signed": i64::MIN, "small": -3,
                "flag": true, "ratio": 0.25, "text": "t\"1\u{1}", "displayed": "d\\2",
                "debugged": format!("{shown:?}"),
            })
        );
    }

    /// A writer the test reads back.
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn timestamps_are_rfc3339_with_microseconds() {
        for text in
            ["2026-12-05T11:22:56.201054Z", "0999-01-02T03:04:05.000007Z", "2024-02-29T23:59:59.999999Z"]
        {
            let at: DateTime<Utc> = text.parse().unwrap();
            let mut line = String::new();
            push_timestamp(&mut line, at);
            assert_eq!(line, text);
            assert_eq!(line, at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
        }
    }
}
