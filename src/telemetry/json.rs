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
        let w = &mut line;
        let meta = event.metadata();
        w.write_str("{\"timestamp\":\"")?;
        push_timestamp(w, chrono::Utc::now())?;
        w.write_str("\",\"level\":\"")?;
        w.write_str(meta.level().as_str())?;
        w.write_str("\",\"fields\":{")?;
        let mut fields = Fields { w: &mut *w, first: true, result: Ok(()) };
        event.record(&mut fields);
        fields.result?;
        w.write_str("},\"target\":")?;
        push_str(w, meta.target())?;
        if let Some(span) = ctx.lookup_current() {
            w.write_str(",\"span\":{\"name\":")?;
            push_str(w, span.name())?;
            let extensions = span.extensions();
            if let Some(stored) = extensions.get::<FormattedFields<N>>() {
                // `JsonFields` stores `{"k":v,...}`: its members go on after the name.
                let inner = stored.fields.trim().trim_start_matches('{').trim_end_matches('}');
                if !inner.is_empty() {
                    w.write_char(',')?;
                    w.write_str(inner)?;
                }
            }
            w.write_char('}')?;
        }
        w.write_str("}\n")?;
        writer.write_str(&line)
    }
}

/// Writes each field as a JSON member: numbers and booleans as themselves, everything else as
/// a string (as tracing-subscriber's formatter does). `Visit` cannot fail, so the first write
/// error is kept in `result` for the line to return.
struct Fields<'a, W: Write> {
    w: &'a mut W,
    first: bool,
    result: fmt::Result,
}

impl<W: Write> Fields<'_, W> {
    /// Writes the member's key, then its value with `value`.
    fn member(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        let comma = if std::mem::take(&mut self.first) { "" } else { "," };
        self.result = self
            .w
            .write_str(comma)
            .and_then(|()| push_str(self.w, field.name()))
            .and_then(|()| self.w.write_char(':'))
            .and_then(|()| value(self.w));
    }
}

impl<W: Write> Visit for Fields<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |w| push_str(w, value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.member(field, |w| if value.is_finite() { write!(w, "{value}") } else { w.write_str("null") });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.member(field, |w| push_str(w, &format!("{value:?}")));
    }
}

/// `at` as `2026-12-05T11:22:56.201054Z` (RFC 3339, microseconds, UTC), digit by digit:
/// chrono's `format` interprets its pattern on every call, ~3 k instructions a line.
fn push_timestamp(w: &mut impl Write, at: DateTime<Utc>) -> fmt::Result {
    let (date, time) = (at.date_naive(), at.time());
    let micros = time.nanosecond() % 1_000_000_000 / 1_000; // a leap second's nanos are ≥ 1e9
    push_digits(w, date.year().clamp(0, 9999).unsigned_abs(), 4)?;
    for (separator, value, width) in [
        ('-', date.month(), 2),
        ('-', date.day(), 2),
        ('T', time.hour(), 2),
        (':', time.minute(), 2),
        (':', time.second(), 2),
        ('.', micros, 6),
    ] {
        w.write_char(separator)?;
        push_digits(w, value, width)?;
    }
    w.write_char('Z')
}

/// `value`'s last `width` decimal digits, zero-padded.
fn push_digits(w: &mut impl Write, value: u32, width: u32) -> fmt::Result {
    for place in (0..width).rev() {
        let digit = value / 10_u32.pow(place) % 10;
        w.write_char(char::from(b'0' + digit as u8))?;
    }
    Ok(())
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
fn push_str(w: &mut impl Write, text: &str) -> fmt::Result {
    w.write_char('"')?;
    let mut start = 0;
    for (i, &byte) in text.as_bytes().iter().enumerate() {
        if !NEEDS_ESCAPE[usize::from(byte)] {
            continue;
        }
        w.write_str(&text[start..i])?;
        match byte {
            b'"' => w.write_str("\\\"")?,
            b'\\' => w.write_str("\\\\")?,
            b'\n' => w.write_str("\\n")?,
            b'\r' => w.write_str("\\r")?,
            b'\t' => w.write_str("\\t")?,
            _ => write!(w, "\\u{byte:04x}")?,
        }
        start = i + 1;
    }
    w.write_str(&text[start..])?;
    w.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_json_says() {
        let mut line = String::new();
        push_str(&mut line, "a\"b\\c\nd\u{1}é✓").unwrap();
        let parsed: String = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed, "a\"b\\c\nd\u{1}é✓");
        assert_eq!(line, r#""a\"b\\c\nd\u0001é✓""#);
    }

    #[test]
    fn timestamps_are_rfc3339_with_microseconds() {
        for text in
            ["2026-12-05T11:22:56.201054Z", "0999-01-02T03:04:05.000007Z", "2024-02-29T23:59:59.999999Z"]
        {
            let at: DateTime<Utc> = text.parse().unwrap();
            let mut line = String::new();
            push_timestamp(&mut line, at).unwrap();
            assert_eq!(line, text);
            assert_eq!(line, at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
        }
    }
}
