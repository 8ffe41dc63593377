//! The drain: outbox items that are due, each through the same claim as a callback's action (see
//! the parent module). Not sent in this drain (the channel's pacing, or no time left) is not a
//! failed round: the item stays as it is and comes back when its take lease ends.

use std::time::Instant;

use futures_util::stream::{self, StreamExt};

use super::vod::RequestScope;
use super::{Dispatcher, DrainReport, NotSent};
use crate::action::Action;
use crate::channel::Outcome;
use crate::dedup::Claim;
use crate::outbox::{Channels, Next, Outbox, OutboxItem, next_due};

/// The most outbox items one drain takes.
const DRAIN_BATCH: usize = 200;

#[derive(Debug, Clone, Copy)]
pub(super) enum Redelivered {
    Delivered,
    Rescheduled,
    DeadLettered,
}

fn no_outbox() -> DrainReport {
    DrainReport {
        error: Some("no outbox: configure [store] backend = \"redis\"".into()),
        ..DrainReport::default()
    }
}

impl Dispatcher {
    /// Delivers the outbox items that are due, within `deadline`: a digest round for each digest
    /// channel with budget, then the other channels' items one by one. First moves what an older
    /// version left under untagged keys and expires old dead letters.
    pub async fn drain(&self, deadline: Instant) -> DrainReport {
        let (report, tally) = crate::metrics::scoped(async {
            let report = self.drain_outbox(deadline).await;
            self.report_if_due(crate::clock::unix_now(), deadline).await;
            self.count(&[], crate::clock::unix_now()).await;
            report
        })
        .await;
        crate::metrics::finish(&tally);
        report
    }

    async fn drain_outbox(&self, deadline: Instant) -> DrainReport {
        let Some(outbox) = &self.outbox else {
            return no_outbox();
        };
        let now = crate::clock::unix_now();
        let mut report = self.housekeeping(outbox, now).await;
        for channel in &self.digest_channels {
            let round = self.digest_round(channel, deadline).await;
            report.digests += round.messages;
            report.in_digests += round.covered;
            report.delivered += round.covered;
            report.rescheduled += round.rescheduled;
            report.dead_lettered += round.dead_lettered;
        }
        match outbox.take_due_for(now, DRAIN_BATCH, Channels::Except(&self.digest_channels)).await {
            Ok(items) => {
                // Members of groups go out together, the rest one by one.
                let (grouped, single): (Vec<_>, Vec<_>) =
                    items.into_iter().partition(|i| i.action.group.is_some());
                if !grouped.is_empty() {
                    report.taken += grouped.len();
                    let round = self.group_round(outbox, grouped, deadline).await;
                    report.digests += round.messages;
                    report.in_digests += round.covered;
                    report.delivered += round.covered;
                    report.rescheduled += round.rescheduled;
                    report.dead_lettered += round.dead_lettered;
                }
                self.redeliver_all(outbox, single, deadline, &mut report).await;
            }
            Err(err) => report.error = Some(err.to_string()),
        }
        report
    }

    /// Delivers exactly the outbox items `keys` (a replay: they were just made due), within
    /// `deadline`, with the same lease and claim as a drain.
    pub async fn redeliver_keys(&self, keys: &[String], deadline: Instant) -> DrainReport {
        let Some(outbox) = &self.outbox else {
            return no_outbox();
        };
        let mut report = DrainReport::default();
        match outbox.take_keys(keys, crate::clock::unix_now()).await {
            Ok(items) => self.redeliver_all(outbox, items, deadline, &mut report).await,
            Err(err) => report.error = Some(err.to_string()),
        }
        report
    }

    /// What a drain does besides delivering; failures are logged, not fatal (the next drain
    /// tries again).
    async fn housekeeping(&self, outbox: &Outbox, now: i64) -> DrainReport {
        let mut report = DrainReport::default();
        match outbox.adopt_untagged(now).await {
            Ok(n) => report.adopted = n,
            Err(err) => tracing::warn!(error = %err, "could not check the outbox keys of an older version"),
        }
        match outbox.expire_dead(now.saturating_sub(self.timing.dead_letter_keep)).await {
            Ok(n) => report.expired = n,
            Err(err) => tracing::warn!(error = %err, "could not expire old dead letters"),
        }
        if report.adopted > 0 {
            tracing::info!(
                entries = report.adopted,
                "moved outbox entries of an older version to the {{outbox}} keys"
            );
        }
        report
    }

    async fn redeliver_all(
        &self,
        outbox: &Outbox,
        items: Vec<OutboxItem>,
        deadline: Instant,
        report: &mut DrainReport,
    ) {
        report.taken += items.len();
        let runs: Vec<_> = items.into_iter().map(|item| self.redeliver(outbox, item, deadline)).collect();
        let results: Vec<_> =
            stream::iter(runs).buffer_unordered(self.timing.max_concurrent_sends).collect().await;
        for result in results {
            match result {
                Redelivered::Delivered => report.delivered += 1,
                Redelivered::Rescheduled => report.rescheduled += 1,
                Redelivered::DeadLettered => report.dead_lettered += 1,
            }
        }
    }

    /// One outbox item, through the same claim as a callback's action.
    async fn redeliver(&self, outbox: &Outbox, item: OutboxItem, deadline: Instant) -> Redelivered {
        let key = item.action.key.clone();
        let token = match self.dedup.claim(&key, self.timing.lease).await {
            Ok(Claim::Acquired(token)) => Some(token),
            Ok(Claim::AlreadyDone) => {
                tracing::info!(%key, "outbox item was delivered meanwhile: dropped");
                self.forget(outbox, &key).await;
                return Redelivered::Delivered;
            }
            // Another drain or a redelivery holds it: it comes back when the take lease ends.
            Ok(Claim::InFlight) => return Redelivered::Rescheduled,
            Err(err) => {
                tracing::warn!(%key, error = %err, "dedup store unreachable: sending without duplicate protection");
                None
            }
        };
        let (channel, route) = (item.action.channel.clone(), item.action.route.clone());
        let result = self.redeliver_claimed(outbox, item, deadline).await;
        let outcome = match result {
            Redelivered::Delivered => Some("sent"),
            Redelivered::DeadLettered => Some("dead"),
            Redelivered::Rescheduled => None,
        };
        if let Some(outcome) = outcome {
            crate::metrics::record(|t| t.action(&channel, &route, outcome));
        }
        match result {
            Redelivered::Delivered => {
                self.complete(&key, token.as_ref()).await;
            }
            Redelivered::Rescheduled | Redelivered::DeadLettered => self.release(&key, token.as_ref()).await,
        }
        result
    }

    async fn redeliver_claimed(&self, outbox: &Outbox, item: OutboxItem, deadline: Instant) -> Redelivered {
        let action = &item.action;
        let Some(channel) = self.channels.get(&action.channel) else {
            let reason = format!("channel {:?} is no longer configured", action.channel);
            return self.dead_letter(outbox, item, reason).await;
        };
        // Not sent in this drain (our own pacing, or no time left) is not a failed round: the
        // item stays as it is and comes back when its take lease ends.
        match self.pace(&action.channel, deadline).await {
            Ok(()) => {}
            Err(NotSent::RateLimited) => {
                return self.held_back(action, "the channel's rate limit is used up");
            }
            Err(NotSent::Hold) => return self.held_back(action, "it waits for the channel's next digest"),
            Err(NotSent::NoTime) => return self.held_back(action, "no time left in this drain"),
        }
        // A failure resolved while it waited goes out saying so (`dispatch::resolve`).
        let marked = self.marked_if_resolved(action).await;
        let outcome = self
            .send_before(channel, marked.as_ref().unwrap_or(action), deadline, &RequestScope::default())
            .await;
        match outcome {
            Outcome::Delivered => {
                tracing::info!(key = %action.key, channel = %action.channel, attempts = item.attempts + 1, "outbox item delivered");
                self.forget(outbox, &action.key).await;
                self.after_delivery(action, Some(marked.is_some())).await;
                Redelivered::Delivered
            }
            Outcome::Permanent { reason } => self.dead_letter(outbox, item, reason).await,
            Outcome::Throttled { reason, after } => {
                self.throttled(&action.channel, after).await;
                self.failed_round(outbox, item, reason).await
            }
            Outcome::Retry { reason, .. } => self.failed_round(outbox, item, reason).await,
        }
    }

    /// A retryable failure of a taken item: rescheduled on the outbox's backoff, or dead.
    async fn failed_round(&self, outbox: &Outbox, item: OutboxItem, reason: String) -> Redelivered {
        let attempts = item.attempts + 1;
        let key = &item.action.key;
        match next_due(item.first_seen, attempts, &self.timing.outbox_schedule, self.timing.outbox_max_age) {
            Next::At(due) => {
                tracing::warn!(%key, due, attempts, error = %reason, "outbox item still failing: rescheduled");
                // `reschedule` records the failed round itself (attempts + 1): pass the item as
                // it was taken, or each failed drain would count twice.
                if let Err(err) = outbox.reschedule(&item, due, &reason).await {
                    tracing::error!(%key, error = %err, "could not reschedule; it returns when its take lease ends");
                }
                Redelivered::Rescheduled
            }
            Next::Dead => {
                let reason = format!("gave up after {attempts} attempts: {reason}");
                self.dead_letter(outbox, OutboxItem { attempts, ..item }, reason).await
            }
        }
    }

    fn held_back(&self, action: &Action, why: &str) -> Redelivered {
        tracing::info!(key = %action.key, channel = %action.channel, why, "outbox item not tried in this drain: it comes back when its take lease ends");
        Redelivered::Rescheduled
    }

    async fn forget(&self, outbox: &Outbox, key: &str) {
        if let Err(err) = outbox.complete(key).await {
            tracing::warn!(%key, error = %err, "could not remove the item from the outbox; the next drain drops it");
        }
    }

    pub(super) async fn dead_letter(&self, outbox: &Outbox, item: OutboxItem, reason: String) -> Redelivered {
        tracing::error!(
            key = %item.action.key, channel = %item.action.channel, attempts = item.attempts, %reason,
            "DEAD LETTER: outbox item will not be delivered; see `vodhook outbox list`"
        );
        if let Err(err) = outbox.dead_letter(&item, &reason).await {
            tracing::error!(key = %item.action.key, error = %err, "could not move the item to the dead-letter list");
        }
        Redelivered::DeadLettered
    }
}
