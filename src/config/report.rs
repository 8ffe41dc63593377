//! `[metrics]` (where the counters are served, how CloudWatch names them) and `[report]` (the
//! daily report in chat).

use serde::{Deserialize, Deserializer};

use super::{Span, UtcOffset};

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where `GET /metrics` (Prometheus) is served, e.g. `"127.0.0.1:9464"`; off when unset,
    /// so counters are never exposed on the callback port by accident.
    #[serde(default)]
    pub listen: Option<String>,
    /// The CloudWatch namespace of the Embedded Metric Format lines (Lambda).
    #[serde(default = "default_namespace")]
    pub namespace: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { listen: None, namespace: default_namespace() }
    }
}

fn default_namespace() -> String {
    "vodhook".to_owned()
}

/// `[report]`: a summary of the last `period`, sent to `channels` at `at` every period.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// Chat or webhook channels, by name.
    pub channels: Vec<String>,
    /// The local time the report is due (and the period ends).
    pub at: TimeOfDay,
    /// What one report covers, and how often it is sent: whole hours, 1 h to 7 days.
    #[serde(default = "default_period")]
    pub period: Span,
    /// The offset `at` is read in; else `[messages] utc_offset`, else UTC.
    #[serde(default)]
    pub utc_offset: Option<UtcOffset>,
    /// The report's text as a minijinja template (in each channel's markup), instead of the
    /// built-in one; it sees the summary's fields, `sparkline`, `headline`, `locale`, `markup`.
    #[serde(default)]
    pub template: Option<String>,
}

/// The longest `period`: the store keeps hourly counters that long, plus a margin.
pub const MAX_PERIOD_SECS: u64 = 7 * 86_400;

fn default_period() -> Span {
    Span(std::time::Duration::from_secs(86_400))
}

/// A time of day, `HH:MM` (24-hour), as minutes after midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOfDay(pub u32);

impl std::str::FromStr for TimeOfDay {
    type Err = String;

    fn from_str(text: &str) -> Result<TimeOfDay, String> {
        let two_digits = |s: &str| {
            (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u32>().ok()).flatten()
        };
        match text.split_once(':').map(|(h, m)| (two_digits(h), two_digits(m))) {
            Some((Some(h), Some(m))) if h < 24 && m < 60 => Ok(TimeOfDay(h * 60 + m)),
            _ => Err(format!("{text:?} is not a time of day: expected HH:MM (24-hour), e.g. \"09:30\"")),
        }
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day_are_two_digit_hours_and_minutes() {
        assert_eq!("09:30".parse::<TimeOfDay>(), Ok(TimeOfDay(570)));
        assert_eq!("00:00".parse::<TimeOfDay>(), Ok(TimeOfDay(0)));
        assert_eq!("23:59".parse::<TimeOfDay>(), Ok(TimeOfDay(1439)));
        for bad in ["24:00", "9:30", "09:60", "09-30", "", "0930", "+9:30"] {
            let err = bad.parse::<TimeOfDay>().unwrap_err();
            assert!(err.contains("HH:MM"), "{bad}: {err}");
        }
    }
}
