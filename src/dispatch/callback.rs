//! The callback path: every action of one delivery, concurrently, within the request's deadline.
//! Each is claimed, sent with retries, and settled; what the deadline leaves undelivered goes to
//! the outbox when there is one (see the parent module for the whole life of an action).

use std::time::Instant;

use futures_util::stream::{self, StreamExt};

use super::vod::RequestScope;
use super::{Dispatcher, NotSent, Report, Settled, backoff};
use crate::action::Action;
use crate::channel::Outcome;
use crate::dedup::{Claim, ClaimToken};
use crate::event::{Delivery, Event};
use crate::outbox::{Next, OutboxItem, next_due};
use crate::silence::Active;

/// How often a duplicate checks whether the holder of an in-flight action has finished.
const IN_FLIGHT_POLL: std::time::Duration = std::time::Duration::from_millis(100);

impl Dispatcher {
    /// Runs every action of `delivery`, concurrently, within `deadline`.
    pub async fn dispatch(&self, delivery: &Delivery, deadline: Instant) -> Report {
        self.dispatch_with(delivery, deadline, RequestScope::default()).await
    }

    /// [`Dispatcher::dispatch`] with the request's `scope` (the credentials Function Compute
    /// gave the invocation, for VOD calls).
    pub async fn dispatch_with(
        &self,
        delivery: &Delivery,
        deadline: Instant,
        mut scope: RequestScope<'_>,
    ) -> Report {
        let mut report = Report { events: delivery.events.len(), ..Report::default() };
        self.videos_to_enrich(&delivery.events, &mut scope);
        let mut actions = Vec::new();
        for event in &delivery.events {
            let planned = self.with_resolved(event, self.router.decide(event)).await;
            actions.extend(planned.into_iter().map(|a| (event, a)));
        }
        report.actions = actions.len();
        let silences = if actions.is_empty() { Active::default() } else { self.active_silences().await };
        // Concurrently, but at most `max_concurrent_sends` at once: a delivery of many events must
        // not become as many simultaneous requests (sockets, memory) as it has actions.
        // (The futures are made first: a lazy map in the stream trips the compiler's Send check.)
        let (scope, silences) = (&scope, &silences);
        let runs: Vec<_> = actions
            .iter()
            .map(|(event, a)| async move {
                let result = self.run(event, a, deadline, scope, silences).await;
                let outcome = result.0.outcome(a);
                crate::metrics::record(|t| t.action(&a.channel, &a.route, outcome));
                result
            })
            .collect();
        let results: Vec<_> =
            stream::iter(runs).buffer_unordered(self.timing.max_concurrent_sends).collect().await;
        for (settled, attempts, store_down) in results {
            report.retried += attempts.saturating_sub(1) as usize;
            report.dedup_unavailable |= store_down;
            match settled {
                Settled::Delivered => report.delivered += 1,
                Settled::Duplicate => report.duplicate += 1,
                Settled::FailedPermanently => report.failed_permanently += 1,
                Settled::LeftForRetry => report.left_for_retry += 1,
                Settled::Queued => report.queued += 1,
                Settled::InFlightElsewhere => report.in_flight_elsewhere += 1,
                Settled::Held => report.held += 1,
                Settled::Skipped => report.skipped += 1,
                Settled::Muted => report.muted += 1,
                Settled::Dropped => report.dropped += 1,
                Settled::Silenced => report.silenced += 1,
            }
        }
        if report.held > 0 {
            let actions: Vec<Action> = actions.into_iter().map(|(_, a)| a).collect();
            report.digests = self.flush_held(&actions, deadline).await;
        }
        report
    }

    /// After holding actions: a digest round for each of their channels that has budget now
    /// (a held action may have joined a backlog while budget was there). Returns the digest
    /// messages sent.
    async fn flush_held(&self, actions: &[Action], deadline: Instant) -> usize {
        let mut channels: Vec<&str> =
            actions.iter().map(|a| a.channel.as_str()).filter(|c| self.holds_for_digest(c)).collect();
        channels.sort_unstable();
        channels.dedup();
        let mut sent = 0;
        for channel in channels {
            sent += self.digest_round(channel, deadline).await.messages;
        }
        sent
    }

    /// One action: claim, send, settle. Returns how it ended, the attempts made, and whether
    /// the dedup store was unreachable.
    async fn run(
        &self,
        event: &Event,
        action: &Action,
        deadline: Instant,
        scope: &RequestScope<'_>,
        silences: &Active,
    ) -> (Settled, u32, bool) {
        loop {
            match self.dedup.claim(&action.key, self.timing.lease).await {
                Ok(Claim::Acquired(token)) => {
                    if let Some(settled) = self.quieted(event, action, &token, silences).await {
                        return (settled, 0, false);
                    }
                    // After the claim: a duplicate whose action is done renders nothing and asks
                    // the VOD API nothing.
                    let Some(action) = self.rendered(event, action, Some(&token), scope, deadline).await
                    else {
                        return (Settled::FailedPermanently, 0, false);
                    };
                    return self.deliver(&action, Some(&token), deadline, scope).await;
                }
                Ok(Claim::AlreadyDone) => {
                    tracing::info!(key = %action.key, channel = %action.channel, "duplicate: already delivered");
                    return (Settled::Duplicate, 0, false);
                }
                Ok(Claim::InFlight) => {
                    if Instant::now() + IN_FLIGHT_POLL >= deadline {
                        // Safe to answer 200 only when the outbox holds it: the holder may yet fail.
                        if self.queued_in_outbox(&action.key).await {
                            return (Settled::Queued, 0, false);
                        }
                        tracing::warn!(key = %action.key, "still in flight elsewhere at the deadline");
                        return (Settled::InFlightElsewhere, 0, false);
                    }
                    tokio::time::sleep(IN_FLIGHT_POLL).await;
                }
                Err(err) => {
                    tracing::warn!(key = %action.key, error = %err, "dedup store unreachable: delivering without duplicate protection");
                    let Some(action) = self.rendered(event, action, None, scope, deadline).await else {
                        return (Settled::FailedPermanently, 0, true);
                    };
                    let (settled, attempts, _) = self.deliver(&action, None, deadline, scope).await;
                    return (settled, attempts, true);
                }
            }
        }
    }

    async fn queued_in_outbox(&self, key: &str) -> bool {
        match &self.outbox {
            Some(outbox) => outbox.contains(key).await.unwrap_or(false),
            None => false,
        }
    }

    /// Sends a claimed action with retries, then settles its claim. Returns how it ended, the
    /// attempts made, and whether the store was unreachable when marking it done. (Long: one
    /// loop of pace, send and outcome, kept whole so that every way out of it is in view.)
    pub(super) async fn deliver(
        &self,
        action: &Action,
        token: Option<&ClaimToken>,
        deadline: Instant,
        scope: &RequestScope<'_>,
    ) -> (Settled, u32, bool) {
        let Some(channel) = self.channels.get(&action.channel) else {
            tracing::error!(channel = %action.channel, "action for a channel that is not configured");
            self.release(&action.key, token).await;
            return (Settled::FailedPermanently, 0, false);
        };
        if channel.call().is_some() && !self.repeat_allowed(channel, action).await {
            // Done: a redelivery must not try again.
            let store_down = !self.complete(&action.key, token).await;
            return (Settled::Skipped, 0, store_down);
        }
        if let Some(group) = action.group.as_ref().filter(|_| self.outbox.is_some()) {
            return (self.hold_for_group(action, group, token).await, 0, false);
        }
        let mut attempts = 0u32;
        let mut last_error = String::new();
        loop {
            match self.pace(&action.channel, deadline).await {
                Ok(()) => {}
                Err(NotSent::RateLimited) => {
                    last_error = format!("rate limit of channel {} reached", action.channel);
                    break;
                }
                Err(NotSent::Hold) => return (self.hold(action, token).await, attempts, false),
                Err(NotSent::NoTime) => break,
            }
            attempts += 1;
            match self.send_before(channel, action, deadline, scope).await {
                Outcome::Delivered => {
                    tracing::info!(key = %action.key, channel = %action.channel, route = %action.route, attempts, "delivered");
                    let store_down = !self.complete(&action.key, token).await;
                    self.after_delivery(action, None).await;
                    return (Settled::Delivered, attempts, store_down);
                }
                Outcome::Permanent { reason } => {
                    self.keep_rejected(action, attempts, reason).await;
                    self.release(&action.key, token).await;
                    return (Settled::FailedPermanently, attempts, false);
                }
                Outcome::Throttled { reason, after } => {
                    tracing::warn!(key = %action.key, channel = %action.channel, %reason, attempts, "the service says too fast");
                    self.throttled(&action.channel, after).await;
                    last_error = reason;
                }
                Outcome::Retry { reason, after } => {
                    tracing::warn!(key = %action.key, channel = %action.channel, %reason, attempts, "delivery failed, will retry");
                    last_error = reason;
                    if !self.backed_off(attempts, after, deadline).await {
                        break;
                    }
                }
            }
        }
        (self.leave_for_retry(action, token, attempts, last_error).await, attempts, false)
    }

    /// Waits the backoff before attempt `attempts + 1` (the service's `after` when it gave one);
    /// false, without waiting, when the deadline comes first.
    pub(super) async fn backed_off(
        &self,
        attempts: u32,
        after: Option<std::time::Duration>,
        deadline: Instant,
    ) -> bool {
        let delay = backoff::delay(attempts - 1, self.timing.backoff_initial, self.timing.backoff_max, after);
        if Instant::now() + delay >= deadline {
            return false;
        }
        tokio::time::sleep(delay).await;
        true
    }

    /// The service refused the message for good (a bad secret or token, a malformed body, a
    /// robot gone): sending it again unchanged would fail again, but the message must not be
    /// lost — the fix is usually in the configuration, and signing happens at send time, so
    /// once it is fixed the same message goes through. With an outbox it becomes a dead letter
    /// (`vodhook outbox list`, `outbox replay`); without one, the error line carries the rendered
    /// body, so that it can be resent by hand. Neither holds a secret: the URL and the signing
    /// secret are added when sending.
    async fn keep_rejected(&self, action: &Action, attempts: u32, reason: String) {
        let Some(outbox) = &self.outbox else {
            tracing::error!(
                key = %action.key, channel = %action.channel, route = %action.route, %reason,
                body = %action.payload, kept = "only in this line: there is no outbox (redis) to keep it",
                "delivery failed permanently (configuration error?): not retried"
            );
            return;
        };
        let now = crate::clock::unix_now();
        let item = OutboxItem {
            action: action.clone(),
            attempts,
            first_seen: now,
            due: now,
            last_error: reason.clone(),
            held: false,
        };
        let reason = format!("refused by the service: {reason}");
        let _ = self.dead_letter(outbox, item, reason).await;
    }

    /// The channel's budget is spent (or a digest waits): into the outbox, due now, for the
    /// next digest round; the claim is released (the round claims it again). Without room in
    /// the outbox, the sender must retry.
    async fn hold(&self, action: &Action, token: Option<&ClaimToken>) -> Settled {
        let (Some(outbox), Some(_)) = (&self.outbox, &action.brief) else {
            // No brief (nothing a digest could say): an ordinary wait for budget.
            let reason = format!("rate limit of channel {} reached", action.channel);
            return self.leave_for_retry(action, token, 0, reason).await;
        };
        let now = crate::clock::unix_now();
        let item = OutboxItem {
            action: action.clone(),
            attempts: 0,
            first_seen: now,
            due: now,
            last_error: format!("held for a digest: the budget of channel {} is spent", action.channel),
            held: true,
        };
        let settled = match outbox.push(&item).await {
            Ok(_) => {
                tracing::info!(key = %action.key, channel = %action.channel, "budget spent: held for a digest");
                crate::metrics::record(|t| t.budget_hold(&action.channel));
                // After the push: a digest round clears the mark before it takes, so it either
                // takes this item or leaves the mark for the next one.
                self.budgets.set_backlog(&action.channel, true).await;
                Settled::Held
            }
            Err(err) => {
                tracing::error!(key = %action.key, error = %err, "outbox unreachable: the sender must retry");
                Settled::LeftForRetry
            }
        };
        self.release(&action.key, token).await;
        settled
    }

    /// The deadline came first: queue in the outbox when there is one; release the claim.
    async fn leave_for_retry(
        &self,
        action: &Action,
        token: Option<&ClaimToken>,
        attempts: u32,
        last_error: String,
    ) -> Settled {
        let queued = match &self.outbox {
            Some(outbox) => {
                let now = crate::clock::unix_now();
                // The callback's quick retries count as one round of the outbox's schedule.
                let due = match next_due(now, 1, &self.timing.outbox_schedule, self.timing.outbox_max_age) {
                    Next::At(due) => due,
                    Next::Dead => now,
                };
                let item = OutboxItem {
                    action: action.clone(),
                    attempts: 1,
                    first_seen: now,
                    due,
                    last_error,
                    held: false,
                };
                match outbox.push(&item).await {
                    Ok(_) => {
                        tracing::warn!(key = %action.key, channel = %action.channel, due, attempts, "undelivered at the deadline: queued in the outbox");
                        true
                    }
                    Err(err) => {
                        tracing::error!(key = %action.key, error = %err, "outbox unreachable: the sender must retry");
                        false
                    }
                }
            }
            None => {
                tracing::warn!(key = %action.key, channel = %action.channel, attempts, "undelivered at the deadline: the sender must retry");
                false
            }
        };
        self.release(&action.key, token).await;
        if queued { Settled::Queued } else { Settled::LeftForRetry }
    }
}
