//! `[[time_intervals]]` and a route's quiet-hours keys, as written: Alertmanager's
//! `time_intervals` in TOML. The values stay text here; the `quiet` module compiles them (every
//! mistake named at its key path with the value and what is accepted) when the router is built,
//! as matchers are.

use serde::Deserialize;

/// One named group of intervals: active when any of its intervals is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeIntervalConfig {
    pub name: String,
    #[serde(default)]
    pub intervals: Vec<IntervalConfig>,
}

/// One interval: active when every field it sets matches (an unset field matches all).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntervalConfig {
    #[serde(default)]
    pub times: Vec<TimeRangeConfig>,
    /// `monday`…`sunday`, or ranges `monday:friday`.
    #[serde(default)]
    pub weekdays: Vec<RangeItem>,
    /// `1`…`31`, `-31`…`-1` (from the month's end), or ranges `"1:-1"`.
    #[serde(default)]
    pub days_of_month: Vec<RangeItem>,
    /// `january`…`december` or `1`…`12`, or ranges.
    #[serde(default)]
    pub months: Vec<RangeItem>,
    /// Years, or ranges `"2025:2027"`.
    #[serde(default)]
    pub years: Vec<RangeItem>,
    /// An IANA time-zone name: not in this build (see the `quiet` module), refused with a hint.
    pub location: Option<String>,
    /// `Z` or `±HH:MM`: this interval's clock (default `[messages] utc_offset`, else `Z`).
    pub utc_offset: Option<String>,
}

/// `{ start_time = "09:00", end_time = "17:00" }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRangeConfig {
    pub start_time: Option<String>,
    pub end_time: Option<String>,
}

/// A list item as TOML lets it be written: `"monday:friday"`, `"1:-1"`, or a bare `-1`, `2026`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum RangeItem {
    Number(i64),
    Text(String),
}

impl RangeItem {
    /// The item as text, as Alertmanager reads every item.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            RangeItem::Number(n) => n.to_string().into(),
            RangeItem::Text(text) => text.as_str().into(),
        }
    }
}

/// What a route does with an action while it is muted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnMute {
    /// Held in the outbox and sent when the mute ends (vodhook's default).
    #[default]
    Hold,
    /// Dropped, as Alertmanager does.
    Drop,
}
