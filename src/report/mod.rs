//! The daily report: how the last period went, in chat, once per period across every instance
//! (`[report]`), and on the command line at any time (`vodhook report`).
//!
//! Counting happens on every callback (the [`ledger`]: each event once, by the hour it arrived
//! in); the schedule ([`Schedule`]) says which period a report is due for; the dispatcher sends
//! it through the usual claim, so it goes out once whoever runs when it is due (a callback, a
//! drain, the timer) — late if nothing runs for a while, never twice, never skipped.
//!
//! Hours start at `at`'s minute (with `at = "09:30"`, 09:30–10:30 is one hour), so a period
//! ends exactly at `at`: every event is in exactly one report.

pub mod ledger;
pub mod render;
pub mod summary;

use crate::config::{Config, ReportConfig};
pub use ledger::Ledger;
pub use summary::Summary;

/// When reports are due and which hour an event counts in, in the report's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Seconds east of UTC of the report's `at`.
    offset: i64,
    /// `at`, seconds after local midnight (0 without `[report]`: hours start on the hour).
    at: i64,
    /// The period, in seconds (whole hours).
    period: i64,
}

const HOUR: i64 = 3_600;
/// Periods longer than a day start on a Monday (1970-01-05 was one).
const FIRST_MONDAY: i64 = 4 * 86_400;

impl Schedule {
    /// The schedule of `config`'s `[report]`; without one, hours on the hour in `[messages]
    /// utc_offset` and a day's period (what `vodhook report` covers by default).
    pub fn of(config: &Config) -> Schedule {
        let messages_offset = config.messages.utc_offset.as_ref().map_or(0, |o| i64::from(o.seconds()));
        match &config.report {
            Some(report) => Schedule::of_report(report, messages_offset),
            None => Schedule { offset: messages_offset, at: 0, period: 86_400 },
        }
    }

    fn of_report(report: &ReportConfig, messages_offset: i64) -> Schedule {
        let offset = report.utc_offset.as_ref().map_or(messages_offset, |o| i64::from(o.seconds()));
        let period = i64::try_from(report.period.as_duration().as_secs()).unwrap_or(HOUR).max(HOUR);
        Schedule { offset, at: i64::from(report.at.0) * 60, period }
    }

    pub fn offset_secs(&self) -> i64 {
        self.offset
    }

    pub fn period_secs(&self) -> i64 {
        self.period
    }

    /// The start of the hour `t` counts in.
    pub fn bucket(&self, t: i64) -> i64 {
        t - (t + self.offset - self.at).rem_euclid(HOUR)
    }

    /// The end of the latest period that has ended by `now`: when its report was due.
    pub fn due_at(&self, now: i64) -> i64 {
        let anchor = FIRST_MONDAY + self.at;
        let local = now + self.offset;
        anchor + (local - anchor).div_euclid(self.period) * self.period - self.offset
    }

    /// The hours of the period that ends at `until`, oldest first.
    pub fn buckets_before(&self, until: i64, period: i64) -> Vec<i64> {
        let last = self.bucket(until - 1);
        let hours = (period / HOUR).max(1);
        (0..hours).rev().map(|i| last - i * HOUR).collect()
    }

    /// `t` in RFC 3339, in the report's offset.
    pub fn rfc3339(&self, t: i64) -> String {
        let offset = chrono::FixedOffset::east_opt(i32::try_from(self.offset).unwrap_or(0));
        match (chrono::DateTime::from_timestamp(t, 0), offset) {
            (Some(time), Some(offset)) => time.with_timezone(&offset).to_rfc3339(),
            _ => t.to_string(),
        }
    }
}

/// The summary of the period of `period` seconds that ends at `until`, from `ledger`, with
/// the outbox's current `queued` and `dead` when there is an outbox.
pub async fn summarize(
    ledger: &Ledger,
    schedule: &Schedule,
    until: i64,
    period: i64,
    outbox: Option<(usize, usize)>,
) -> Result<Summary, crate::store::StoreError> {
    let starts = schedule.buckets_before(until, period);
    let buckets = ledger.buckets(&starts).await?;
    let mut summary = summary::summarize(&buckets);
    summary.since = schedule.rfc3339(until - period);
    summary.until = schedule.rfc3339(until);
    summary.scope = ledger.scope();
    if let Some((queued, dead)) = outbox {
        summary.notices.queued = queued as u64;
        summary.notices.dead = dead as u64;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hh_mm: i64, offset_hours: i64, period_hours: i64) -> Schedule {
        Schedule {
            offset: offset_hours * HOUR,
            at: (hh_mm / 100) * HOUR + (hh_mm % 100) * 60,
            period: period_hours * HOUR,
        }
    }

    fn utc(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text).unwrap().timestamp()
    }

    #[test]
    fn a_daily_report_is_due_at_its_local_time_and_hours_start_at_its_minute() {
        let s = at(930, 8, 24);
        // 2026-12-05 09:29 +08:00: yesterday's 09:30 is the last due time.
        assert_eq!(s.due_at(utc("2026-12-05T01:29:00Z")), utc("2026-12-04T01:30:00Z"));
        assert_eq!(s.due_at(utc("2026-12-05T01:30:00Z")), utc("2026-12-05T01:30:00Z"));
        assert_eq!(s.bucket(utc("2026-12-05T01:29:59Z")), utc("2026-12-05T00:30:00Z"));
        assert_eq!(s.bucket(utc("2026-12-05T01:30:00Z")), utc("2026-12-05T01:30:00Z"));
        let hours = s.buckets_before(utc("2026-12-05T01:30:00Z"), 24 * HOUR);
        assert_eq!(hours.len(), 24);
        assert_eq!(hours[0], utc("2026-12-04T01:30:00Z"));
        assert_eq!(hours[23], utc("2026-12-05T00:30:00Z"));
        assert_eq!(s.rfc3339(utc("2026-12-05T01:30:00Z")), "2026-12-05T09:30:00+08:00");
    }

    #[test]
    fn a_weekly_report_is_due_on_mondays() {
        let s = at(900, 0, 24 * 7);
        // Saturday 2026-12-05: the last Monday 09:00 was 2026-11-30.
        assert_eq!(s.due_at(utc("2026-12-05T12:00:00Z")), utc("2026-11-30T09:00:00Z"));
        assert_eq!(s.due_at(utc("2026-12-07T09:00:00Z")), utc("2026-12-07T09:00:00Z"));
    }
}
