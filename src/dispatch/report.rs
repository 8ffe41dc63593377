//! The report's two halves on the request path: counting each request in the ledger (one
//! store round trip), and sending the report when one is due — through the same claim as any
//! action (`report|<period end>|<channel>`), so that it goes out once across every instance,
//! whoever runs first after `at`: a callback, a drain, the timer.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::Dispatcher;
use crate::action::Action;
use crate::dedup::Claim;
use crate::event::Event;
use crate::report::{self, render};

/// How many periods back a late report reaches (the latest included): the counters are kept
/// the period plus two days, and each period costs a fresh instance one claim per channel.
pub const MAX_LATE_PERIODS: i64 = 3;

impl Dispatcher {
    /// Counts `events` (each once across redeliveries and instances) and what this request
    /// did so far, in the ledger; the new events go into the request's metrics. A store that
    /// cannot be reached counts every event as new in the metrics (a redelivery may then be
    /// counted twice: better than not at all) and nothing in the ledger.
    pub async fn count(&self, events: &[Event], now: i64) {
        let counts = crate::metrics::with_current(crate::report::ledger::tally_fields);
        let bucket = self.schedule.bucket(now);
        let fresh = match self.ledger.count(bucket, events, &counts, now).await {
            Ok(fresh) => fresh,
            Err(err) => {
                tracing::warn!(error = %err, "the report's counters are unreachable: this request is not in the report");
                vec![true; events.len()]
            }
        };
        for (event, new) in events.iter().zip(fresh) {
            if !new {
                continue;
            }
            crate::metrics::record(|t| t.event(event));
            if crate::metrics::status_label(event.status()) == "Failed" {
                // One line per failure, for log queries by workflow and error code (SLS on FC).
                tracing::info!(
                    event_type = event.event_type(),
                    workflow_id = event.workflow_id().unwrap_or_default(),
                    error_code = event.error_codes().next().unwrap_or_default(),
                    video_id = event.video_id().unwrap_or_default(),
                    "event failed"
                );
            }
        }
    }

    /// Sends the reports of the periods that have ended and that this instance does not know
    /// went out: the latest, and up to [`MAX_LATE_PERIODS`] before it that nothing sent (when
    /// nothing ran at their `at`), oldest first; none for a period that ended before anything
    /// was counted (the first report is the first `at` after vodhook first ran).
    pub async fn report_if_due(&self, now: i64, deadline: Instant) {
        let Some(config) = &self.report else { return };
        let due = self.schedule.due_at(now);
        let through = self.report_through.load(Ordering::Relaxed);
        if due <= through {
            return;
        }
        let since = match self.ledger.since().await {
            Ok(since) => since.unwrap_or(i64::MAX),
            Err(err) => {
                tracing::warn!(error = %err, "cannot tell whether a report is due: trying on the next request");
                return;
            }
        };
        for end in periods_to_report(due, through, since, self.schedule.period_secs()) {
            let mut summary = None;
            let mut all_out = true;
            for name in &config.channels {
                all_out &= self.report_to(name, end, &mut summary, deadline).await;
            }
            if !all_out {
                return; // tried again by the next request
            }
        }
        self.report_through.fetch_max(due, Ordering::Relaxed);
    }

    /// The report of the period ending at `due` on channel `name`, once; whether it is out (or
    /// safe in the outbox, or was sent by another instance). `summary` is made on first need.
    async fn report_to(
        &self,
        name: &str,
        due: i64,
        summary: &mut Option<report::Summary>,
        deadline: Instant,
    ) -> bool {
        let Some(channel) = self.channels.get(name) else { return true };
        let key = format!("report|{due}|{name}");
        let token = match self.dedup.claim(&key, self.timing.lease).await {
            Ok(Claim::Acquired(token)) => token,
            Ok(Claim::AlreadyDone) => return true,
            Ok(Claim::InFlight) | Err(_) => return false,
        };
        if summary.is_none() {
            let outbox = match &self.outbox {
                Some(outbox) => outbox.counts().await.ok(),
                None => None,
            };
            let period = self.schedule.period_secs();
            match report::summarize(&self.ledger, &self.schedule, due, period, outbox).await {
                Ok(made) => *summary = Some(made),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read the report's counters: the report waits");
                    self.release(&key, Some(&token)).await;
                    return false;
                }
            }
        }
        let Some(summary) = summary.as_ref() else { return false };
        let template = self.report.as_ref().and_then(|r| r.template.as_deref());
        let Some(payload) = render::body(channel, summary, self.router.locale_of(name), template) else {
            tracing::error!(channel = name, "the report does not fit this channel's message: not sent");
            let _ = self.complete(&key, Some(&token)).await;
            return true;
        };
        let action = Action {
            key: key.clone(),
            event: format!("report|{due}"),
            route: "report".to_owned(),
            channel: name.to_owned(),
            channel_type: channel.kind(),
            payload,
            brief: None,
            resolution: None,
            group: None,
        };
        let scope = super::RequestScope::default();
        let (settled, _, _) = self.deliver(&action, Some(&token), deadline, &scope).await;
        tracing::info!(channel = name, due, ?settled, "daily report");
        !matches!(settled, super::Settled::LeftForRetry | super::Settled::InFlightElsewhere)
    }
}

/// The ends of the periods to report, oldest first: the latest (`due`) and up to
/// [`MAX_LATE_PERIODS`] − 1 before it, except those already reported (`through`) and those
/// that ended before anything was counted (`since`).
fn periods_to_report(due: i64, through: i64, since: i64, period: i64) -> Vec<i64> {
    (0..MAX_LATE_PERIODS)
        .rev()
        .map(|late| due - late * period)
        .filter(|&end| end > through && end > since)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_reports_go_out_oldest_first_and_none_before_the_first_count() {
        let day = 86_400;
        // Nothing ran for two days: the two missed days, then today's.
        assert_eq!(periods_to_report(10 * day, 7 * day, 0, day), vec![8 * day, 9 * day, 10 * day]);
        // Further back than MAX_LATE_PERIODS is not reached.
        assert_eq!(periods_to_report(10 * day, i64::MIN, 0, day).len(), 3);
        // Counting began yesterday afternoon: yesterday's `at` had nothing to report.
        assert_eq!(periods_to_report(10 * day, i64::MIN, 9 * day + 100, day), vec![10 * day]);
        // Already out.
        assert!(periods_to_report(10 * day, 10 * day, 0, day).is_empty());
    }
}
