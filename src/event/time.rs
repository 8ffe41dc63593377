//! VOD timestamps: UTC `yyyy-MM-ddTHH:mm:ssZ`, kept as they arrived when they do not parse.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Serialize, Serializer};

/// A timestamp from the event. The original text is always kept; `parsed` is `None` when it is
/// not a time VOD documents (a warning says so), so a broken detail never costs the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VodTime {
    pub raw: String,
    pub parsed: Option<DateTime<Utc>>,
}

impl VodTime {
    /// Parses `raw`; VOD sends `2025-04-01T02:29:50Z`, and any RFC 3339 offset is accepted.
    /// Some events (AIMediaAuditComplete, ImageUploadComplete) document their time as
    /// `yyyy-MM-ddTHH:mm:ss:SSSZ`, a colon before the milliseconds: accepted too.
    pub fn parse(raw: &str) -> Self {
        let parsed = DateTime::parse_from_rfc3339(raw).map(|t| t.with_timezone(&Utc)).ok().or_else(|| {
            NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S:%3fZ").ok().map(|t| t.and_utc())
        });
        Self { raw: raw.to_owned(), parsed }
    }

    /// Seconds from `self` to `later`, when both parsed and the order is sane.
    pub fn seconds_until(&self, later: &VodTime) -> Option<i64> {
        let secs = (later.parsed? - self.parsed?).num_seconds();
        (secs >= 0).then_some(secs)
    }
}

impl Serialize for VodTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vod_format_and_keeps_bad_text() {
        let t = VodTime::parse("2025-04-01T02:29:50Z");
        assert_eq!(t.parsed.map(|p| p.timestamp()), Some(1_743_474_590));
        let bad = VodTime::parse("yesterday");
        assert_eq!(bad.parsed, None);
        assert_eq!(bad.raw, "yesterday");
        let millis = VodTime::parse("2022-10-20T10:29:46:540Z");
        assert_eq!(millis.parsed.map(|p| p.timestamp_millis()), Some(1_666_261_786_540));
        assert_eq!(VodTime::parse("2022-10-20T10:29:46:54Z").parsed, None);
    }

    #[test]
    fn duration_needs_both_ends_in_order() {
        let a = VodTime::parse("2025-04-01T02:29:46Z");
        let b = VodTime::parse("2025-04-01T02:29:50Z");
        assert_eq!(a.seconds_until(&b), Some(4));
        assert_eq!(b.seconds_until(&a), None);
        assert_eq!(a.seconds_until(&VodTime::parse("x")), None);
    }
}
