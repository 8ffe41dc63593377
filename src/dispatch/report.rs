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

impl Dispatcher {
    /// Counts `events` (each once across redeliveries and instances) and what this request
    /// did so far, in the ledger; the new events go into the request's metrics. A store that
    /// cannot be reached counts every event as new in the metrics (a redelivery may then be
    /// counted twice: better than not at all) and nothing in the ledger.
    pub async fn count(&self, events: &[Event], now: i64) {
        let tally = crate::metrics::current();
        let bucket = self.schedule.bucket(now);
        let fresh = match self.ledger.count(bucket, events, &tally, now).await {
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

    /// Sends the report of the latest period that has ended, unless this instance knows it
    /// went out (or the period ended before anything was counted: the first report is the
    /// first `at` after vodhook first ran).
    pub async fn report_if_due(&self, now: i64, deadline: Instant) {
        let Some(config) = &self.report else { return };
        let due = self.schedule.due_at(now);
        if due <= self.report_through.load(Ordering::Relaxed) {
            return;
        }
        match self.ledger.since().await {
            Ok(Some(since)) if since < due => {}
            Ok(_) => {
                // Nothing counted before this period ended: nothing to report for it.
                self.report_through.fetch_max(due, Ordering::Relaxed);
                return;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot tell whether a report is due: trying on the next request");
                return;
            }
        }
        let mut summary = None;
        let mut all_out = true;
        for name in &config.channels {
            all_out &= self.report_to(name, due, &mut summary, deadline).await;
        }
        if all_out {
            self.report_through.fetch_max(due, Ordering::Relaxed);
        }
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
        let Some(payload) = render::body(channel, summary, self.router.locale_of(name)) else {
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
