//! Durations written as Alertmanager writes them (`"30s"`, `"2h"`, `"1h30m"`, `"1d"`): the one
//! spelling of every duration key added from round 3 on (`group_wait`, `resolve_within`,
//! `silence_for`, `[links] ttl`, ...). The older `*_secs` and `*_ms` keys keep their integers.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A configured duration; parsed when the file is read, so a bad one is a configuration error
/// naming its key, never a surprise later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Span(pub Duration);

impl Span {
    pub fn as_duration(self) -> Duration {
        self.0
    }
}

impl std::str::FromStr for Span {
    type Err = String;

    /// One or more `<integer><unit>` with the units `ms`, `s`, `m`, `h`, `d` (24 h) and `w`
    /// (7 d), largest first (`"1h30m"`), as Prometheus and Alertmanager accept them.
    fn from_str(text: &str) -> Result<Span, String> {
        const UNITS: [(&str, u64); 6] =
            [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000), ("w", 604_800_000)];
        let expected = || {
            format!("{text:?} is not a duration: expected e.g. \"30s\", \"5m\", \"2h\", \"1h30m\", \"1d\"")
        };
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(expected());
        }
        let (mut total_ms, mut last_unit) = (0u64, u64::MAX);
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            let number: u64 = rest[..digits].parse().map_err(|_| expected())?;
            rest = &rest[digits..];
            // `ms` before `m`: the longer unit name first.
            let (name, ms) = UNITS
                .iter()
                .filter(|(name, _)| rest.starts_with(name))
                .max_by_key(|(name, _)| name.len())
                .ok_or_else(expected)?;
            if *ms >= last_unit {
                return Err(format!("{text:?}: write the units largest first, each once (e.g. \"1h30m\")"));
            }
            last_unit = *ms;
            rest = &rest[name.len()..];
            total_ms = number.checked_mul(*ms).and_then(|v| total_ms.checked_add(v)).ok_or_else(expected)?;
        }
        Ok(Span(Duration::from_millis(total_ms)))
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ms = u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 {
            return f.write_str("0s");
        }
        for (name, unit) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
            if ms >= unit {
                write!(f, "{}{name}", ms / unit)?;
                ms %= unit;
            }
        }
        Ok(())
    }
}

/// Written as it is read (`"30s"`, `"1h30m"`): `plan` shows spans so.
impl serde::Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Duration, String> {
        text.parse::<Span>().map(Span::as_duration)
    }

    #[test]
    fn alertmanager_spellings() {
        assert_eq!(parse("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("72h").unwrap(), Duration::from_secs(72 * 3600));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("1w").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn mistakes_say_what_is_expected() {
        for bad in ["", "30", "h", "2 h", "1.5h", "30x", "-5s", "99999999999999999999d"] {
            assert!(parse(bad).unwrap_err().contains("is not a duration"), "{bad:?}");
        }
        assert!(parse("30m1h").unwrap_err().contains("largest first"));
        assert!(parse("1m1m").unwrap_err().contains("largest first"));
    }

    #[test]
    fn shown_as_written() {
        for text in ["30s", "2h", "1h30m", "1d", "500ms", "1d2h3m4s5ms"] {
            assert_eq!(text.parse::<Span>().unwrap().to_string(), text);
        }
    }
}
