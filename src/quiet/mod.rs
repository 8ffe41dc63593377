//! Quiet hours: Alertmanager's time intervals, with its meaning, and when a route's mute ends.
//!
//! An [`Interval`] is active at an instant when every field it sets matches that instant on
//! its own clock (an unset field matches all): `times` (minutes of the day, `[start, end)`),
//! `weekdays` (0 = Sunday, as Alertmanager counts), `days_of_month` (negative ones counted
//! from the month's end; ranges clamped to the month's length; a range that begins after the
//! month's last day matches nothing that month), `months`, `years`. A named group of intervals
//! is active when any of them is. A route is muted while any of its `mute_time_intervals` is
//! active, or while none of its `active_time_intervals` is.
//!
//! Alertmanager drops what a mute catches; vodhook holds it until the first instant it is no
//! longer muted ([`TimeIntervals::held_until`]). Whether an interval is active can change only
//! at a boundary of one of its time ranges or at its local midnight, so that instant is found
//! by stepping from boundary to boundary — a few steps per day, whatever the intervals.
//!
//! Clocks are fixed offsets (`utc_offset`). IANA names (`location`) would need the time-zone
//! database in the binary (chrono-tz, measured: 1.9 MB more binary, 190 KiB more
//! deploy zip, which is about all the headroom the zip has under 4 MiB),
//! so `location` is refused with that reason and the offset to write instead.

mod compile;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Timelike};
use serde::Serialize;

use crate::config::OnMute;
pub use compile::{compile, route_quiet};

/// The longest a mute may hold an action: a route whose intervals would hold one longer
/// (an interval that is always active) is refused by `check-config`.
pub const MAX_HOLD_SECS: i64 = 7 * 86_400;

/// How far ahead `check-config` looks for a mute longer than [`MAX_HOLD_SECS`].
const LOOK_AHEAD_SECS: i64 = 366 * 86_400;

/// One interval, compiled: inclusive ranges, as Alertmanager keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    /// Minutes of the day, `[start, end)`; `end` may be 1440.
    pub times: Vec<(u32, u32)>,
    /// 0 = Sunday … 6 = Saturday.
    pub weekdays: Vec<(u32, u32)>,
    pub days_of_month: Vec<(i32, i32)>,
    pub months: Vec<(u32, u32)>,
    pub years: Vec<(i32, i32)>,
    pub offset: FixedOffset,
}

impl Interval {
    /// An interval that sets nothing (active always), on `offset`'s clock.
    pub fn always(offset: FixedOffset) -> Interval {
        Interval {
            times: Vec::new(),
            weekdays: Vec::new(),
            days_of_month: Vec::new(),
            months: Vec::new(),
            years: Vec::new(),
            offset,
        }
    }

    /// Whether the interval is active at `at` (Unix seconds).
    pub fn contains(&self, at: i64) -> bool {
        self.local(at).is_some_and(|t| self.contains_local(&t))
    }

    fn local(&self, at: i64) -> Option<DateTime<FixedOffset>> {
        DateTime::from_timestamp(at, 0).map(|t| t.with_timezone(&self.offset))
    }

    fn contains_local(&self, t: &DateTime<FixedOffset>) -> bool {
        let minute = t.hour() * 60 + t.minute();
        let in_any = |ranges: &[(u32, u32)], v: u32| {
            ranges.is_empty() || ranges.iter().any(|&(a, b)| a <= v && v <= b)
        };
        let in_times = self.times.is_empty() || self.times.iter().any(|&(a, b)| a <= minute && minute < b);
        let in_years =
            self.years.is_empty() || self.years.iter().any(|&(a, b)| a <= t.year() && t.year() <= b);
        in_times
            && self.in_days_of_month(t)
            && in_any(&self.months, t.month())
            && in_any(&self.weekdays, t.weekday().num_days_from_sunday())
            && in_years
    }

    /// Alertmanager's `days_of_month`: negative days from the month's end, clamped to it.
    fn in_days_of_month(&self, t: &DateTime<FixedOffset>) -> bool {
        if self.days_of_month.is_empty() {
            return true;
        }
        let days = days_in_month(t.year(), t.month());
        let day = i64::from(t.day());
        self.days_of_month.iter().any(|&(begin, end)| {
            let resolve = |d: i32| if d < 0 { days + i64::from(d) + 1 } else { i64::from(d) };
            let (begin, end) = (resolve(begin), resolve(end));
            if begin > days {
                return false;
            }
            let (begin, end) = (begin.clamp(-days, days), end.clamp(-days, days));
            begin <= day && day <= end
        })
    }

    /// The first instant after `at` at which whether this interval is active may change: the
    /// next boundary of one of its time ranges today, else its next local midnight.
    fn next_change(&self, at: i64) -> i64 {
        let Some(t) = self.local(at) else { return i64::MAX };
        let seconds_into_day = i64::from(t.num_seconds_from_midnight());
        let midnight = at - seconds_into_day;
        let boundaries = self.times.iter().flat_map(|&(a, b)| [a, b]).map(|m| midnight + i64::from(m) * 60);
        boundaries.filter(|&b| b > at).min().unwrap_or(midnight + 86_400)
    }
}

fn days_in_month(year: i32, month: u32) -> i64 {
    let (y, m) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    NaiveDate::from_ymd_opt(y, m, 1).and_then(|d| d.pred_opt()).map_or(31, |d| i64::from(d.day()))
}

/// Every `[[time_intervals]]` entry, compiled, by name.
#[derive(Debug, Clone, Default)]
pub struct TimeIntervals {
    named: Vec<(String, Vec<Interval>)>,
}

/// A route's quiet hours: indexes into [`TimeIntervals`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quiet {
    pub mute: Vec<usize>,
    pub active: Vec<usize>,
    pub on_mute: OnMute,
}

impl Quiet {
    pub fn is_empty(&self) -> bool {
        self.mute.is_empty() && self.active.is_empty()
    }
}

/// Why and until when a route's actions are muted at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Muted {
    /// The active mute intervals, and for `active_time_intervals` outside all of them, those
    /// names prefixed `not `.
    pub muted_by: Vec<String>,
    /// The first instant it is no longer muted (Unix seconds), at most [`MAX_HOLD_SECS`] on.
    pub held_until: i64,
    pub on_mute: OnMute,
}

impl TimeIntervals {
    pub fn new(named: Vec<(String, Vec<Interval>)>) -> TimeIntervals {
        TimeIntervals { named }
    }

    /// The index of the group `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.named.iter().position(|(n, _)| n == name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.named.iter().map(|(n, _)| n.as_str())
    }

    fn active(&self, group: usize, at: i64) -> bool {
        self.named.get(group).is_some_and(|(_, intervals)| intervals.iter().any(|i| i.contains(at)))
    }

    /// Why `quiet` mutes at `at` (empty: it does not).
    pub fn muted_by(&self, quiet: &Quiet, at: i64) -> Vec<String> {
        let name = |&g: &usize| self.named.get(g).map(|(n, _)| n.as_str()).unwrap_or_default();
        let mut by: Vec<String> =
            quiet.mute.iter().filter(|&&g| self.active(g, at)).map(|g| name(g).to_owned()).collect();
        if !quiet.active.is_empty() && !quiet.active.iter().any(|&g| self.active(g, at)) {
            by.extend(quiet.active.iter().map(|g| format!("not {}", name(g))));
        }
        by
    }

    /// Whether `quiet` mutes at `at`, why and until when.
    pub fn muted(&self, quiet: &Quiet, at: i64) -> Option<Muted> {
        let muted_by = self.muted_by(quiet, at);
        if muted_by.is_empty() {
            return None;
        }
        let held_until = self.first_unmuted(quiet, at, at.saturating_add(MAX_HOLD_SECS));
        Some(Muted { muted_by, held_until, on_mute: quiet.on_mute })
    }

    /// The first instant from `at` at which `quiet` does not mute, or `limit` when it mutes up
    /// to there. Back-to-back ranges and a weekend after a night are one stretch.
    fn first_unmuted(&self, quiet: &Quiet, at: i64, limit: i64) -> i64 {
        let mut t = at;
        while t < limit {
            if self.muted_by(quiet, t).is_empty() {
                return t;
            }
            t = self.next_change(quiet, t);
        }
        limit
    }

    /// The first instant after `at` at which one of `quiet`'s intervals may change.
    fn next_change(&self, quiet: &Quiet, at: i64) -> i64 {
        let groups = quiet.mute.iter().chain(&quiet.active).filter_map(|&g| self.named.get(g));
        groups.flat_map(|(_, intervals)| intervals).map(|i| i.next_change(at)).min().unwrap_or(i64::MAX)
    }

    /// A stretch, within a year of `from` (and the first year of each `years` range beyond
    /// it), in which `quiet` mutes for more than [`MAX_HOLD_SECS`]: its start, if any.
    pub fn overlong_mute(&self, quiet: &Quiet, from: i64) -> Option<i64> {
        let mut starts = vec![from];
        let groups = quiet.mute.iter().chain(&quiet.active).filter_map(|&g| self.named.get(g));
        for interval in groups.flat_map(|(_, intervals)| intervals) {
            for &(first, _) in &interval.years {
                let start = NaiveDate::from_ymd_opt(first, 1, 1)
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(|d| d.and_utc().timestamp() - i64::from(interval.offset.local_minus_utc()));
                starts.extend(start.filter(|&s| s > from + LOOK_AHEAD_SECS));
            }
        }
        starts.into_iter().find_map(|start| self.overlong_from(quiet, start))
    }

    fn overlong_from(&self, quiet: &Quiet, from: i64) -> Option<i64> {
        let end = from.saturating_add(LOOK_AHEAD_SECS);
        let (mut t, mut start) = (from, None);
        // Every interval may change at its local midnight, so a long stretch is looked at at
        // least once a day.
        while t < end {
            let muted = !self.muted_by(quiet, t).is_empty();
            match (muted, start) {
                (true, None) => start = Some(t),
                (_, Some(s)) if t - s > MAX_HOLD_SECS => return Some(s),
                (false, Some(_)) => start = None,
                _ => {}
            }
            t = self.next_change(quiet, t);
        }
        None
    }
}

#[cfg(test)]
mod tests;
