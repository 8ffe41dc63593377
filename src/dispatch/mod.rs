//! The action pipeline behind the handler: events → routes → actions → dedup → delivery, all
//! within the request's deadline, and the outbox for what the deadline leaves undelivered.
//!
//! One action's life (see `crate::dedup` for the claim protocol):
//! 1. **claim** its idempotency key. Done already → `duplicate`. In flight in another request
//!    or instance → wait for that one to finish (polling the store) until the deadline, so a
//!    duplicate never answers "delivered" for something that may yet fail. Store unreachable
//!    → deliver anyway (a duplicate is better than a loss) and say so in the response.
//! 2. **send** through the channel's token bucket; retry retryable failures with jittered
//!    exponential backoff (honouring `Retry-After`) while the deadline allows.
//! 3. **settle**: delivered → mark done (TTL). Failed permanently (a configuration error) →
//!    release the claim and log loudly: a redelivery after the fix may send. Still failing at
//!    the deadline → into the outbox when Redis is configured (the callback answers `200`),
//!    otherwise `503` so VOD delivers again; the claim is released either way, so the dedup
//!    store stays the one record of what was sent.
//!
//! A drain takes due outbox items (leased, so drainers never share one) and runs each through
//! the same claim: done meanwhile (a redelivery got through) → dropped from the outbox;
//! acquired → sent, then rescheduled on the outbox's backoff or moved to the dead letters. An item
//! the channel's rate limit (or the drain's deadline) leaves unsent is not a failed round: it
//! stays as it is and comes back when its take lease ends.
//!
//! Actions run concurrently: N channels cost the slowest one, not the sum.

mod backoff;
mod ratelimit;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::action::{Action, ChannelType};
use crate::config::{ChannelConfig, Config};
use crate::dedup::{Claim, ClaimToken, DedupStore};
use crate::deliver::{Outcome, Sender};
use crate::event::{Delivery, Event};
use crate::outbox::{Next, Outbox, OutboxItem, next_due};
use crate::route::Router;
use ratelimit::TokenBucket;

/// How often a duplicate checks whether the holder of an in-flight action has finished.
const IN_FLIGHT_POLL: Duration = Duration::from_millis(100);
/// An attempt with less time than this left is not worth starting.
const MIN_ATTEMPT: Duration = Duration::from_millis(50);
/// The most outbox items one drain takes.
const DRAIN_BATCH: usize = 200;
/// DingTalk and WeCom robots accept 20 messages a minute.
const CHAT_ROBOT_RATE: u32 = 20;

/// What one delivery caused, for the response body and the request's summary log line.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub events: usize,
    pub actions: usize,
    pub delivered: usize,
    pub duplicate: usize,
    /// Extra attempts made (rate limits, timeouts, 5xx) for actions of this request.
    pub retried: usize,
    pub failed_permanently: usize,
    /// Undelivered at the deadline and not queued: the sender must deliver again.
    pub left_for_retry: usize,
    /// Undelivered at the deadline, safe in the outbox for a later drain.
    pub queued: usize,
    /// Still in flight in another request at the deadline.
    pub in_flight_elsewhere: usize,
    /// The dedup store could not be reached: delivered without duplicate protection.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dedup_unavailable: bool,
}

impl Report {
    /// Whether the sender must deliver again for nothing to be lost.
    pub fn needs_retry(&self) -> bool {
        self.left_for_retry > 0 || self.in_flight_elsewhere > 0
    }
}

/// What one drain of the outbox did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct DrainReport {
    pub taken: usize,
    pub delivered: usize,
    pub rescheduled: usize,
    pub dead_lettered: usize,
    /// Why nothing could be drained (no outbox configured, store unreachable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How one action ended within its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    Delivered,
    Duplicate,
    FailedPermanently,
    LeftForRetry,
    Queued,
    InFlightElsewhere,
}

/// Timing settings, from `[delivery]`, `[dedup]` and `[outbox]`.
#[derive(Debug, Clone)]
struct Timing {
    attempt_timeout: Duration,
    backoff_initial: Duration,
    backoff_max: Duration,
    lease: Duration,
    done_ttl: Duration,
    outbox_schedule: Vec<u64>,
    outbox_max_age: u64,
}

/// Runs the actions of each delivery, and drains the outbox.
pub struct Dispatcher {
    router: Router,
    channels: HashMap<String, ChannelConfig>,
    buckets: HashMap<String, TokenBucket>,
    sender: Sender,
    dedup: DedupStore,
    outbox: Option<Outbox>,
    timing: Timing,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").field("channels", &self.channels.keys()).finish_non_exhaustive()
    }
}

/// Problems building the pipeline from a configuration.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("dedup store: {0}")]
    Store(#[from] crate::dedup::StoreError),
}

impl Dispatcher {
    /// Builds everything once, at start-up; connects to nothing until first use. `config` is
    /// one [`Config::load`] has checked: its templates are not rendered against the samples again.
    pub fn new(config: &Config) -> Result<Self, DispatchError> {
        let now = Instant::now();
        let channels: HashMap<_, _> = config.channels.iter().map(|c| (c.name.clone(), c.clone())).collect();
        let buckets = config
            .channels
            .iter()
            .filter_map(|c| {
                let default =
                    matches!(c.kind, ChannelType::Dingtalk | ChannelType::Wecom).then_some(CHAT_ROBOT_RATE);
                let rate = c.rate_per_minute.or(default).filter(|r| *r > 0)?;
                Some((c.name.clone(), TokenBucket::per_minute(rate, now)))
            })
            .collect();
        let dedup = DedupStore::from_config(&config.dedup)?;
        Ok(Self {
            outbox: dedup.outbox(),
            dedup,
            router: Router::for_checked(config)?,
            channels,
            buckets,
            sender: Sender::new(),
            timing: Timing {
                attempt_timeout: Duration::from_millis(config.delivery.attempt_timeout_ms),
                backoff_initial: Duration::from_millis(config.delivery.backoff_initial_ms),
                backoff_max: Duration::from_millis(config.delivery.backoff_max_ms),
                lease: Duration::from_millis(config.dedup.lease_ms),
                done_ttl: Duration::from_secs(config.dedup.ttl_secs),
                outbox_schedule: config.outbox.schedule_secs.clone(),
                outbox_max_age: config.outbox.max_age_secs,
            },
        })
    }

    /// Whether undelivered actions can wait in an outbox (Redis configured).
    pub fn has_outbox(&self) -> bool {
        self.outbox.is_some()
    }

    /// The actions `event` causes: what `vodhook plan` prints. Pure.
    pub fn plan(&self, event: &Event) -> Result<Vec<Action>, crate::template::RenderError> {
        self.router.plan(event)
    }

    /// Runs every action of `delivery`, concurrently, within `deadline`.
    pub async fn dispatch(&self, delivery: &Delivery, deadline: Instant) -> Report {
        let mut report = Report { events: delivery.events.len(), ..Report::default() };
        let mut actions = Vec::new();
        for event in &delivery.events {
            match self.router.plan(event) {
                Ok(planned) => actions.extend(planned),
                Err(err) => {
                    tracing::error!(identity = %event.identity(), error = %err, "cannot render this event's messages");
                    report.failed_permanently += 1;
                }
            }
        }
        report.actions = actions.len();
        let results = futures_util::future::join_all(actions.iter().map(|a| self.run(a, deadline))).await;
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
            }
        }
        report
    }

    /// One action: claim, send, settle. Returns how it ended, the attempts made, and whether
    /// the dedup store was unreachable.
    async fn run(&self, action: &Action, deadline: Instant) -> (Settled, u32, bool) {
        loop {
            match self.dedup.claim(&action.key, self.timing.lease).await {
                Ok(Claim::Acquired(token)) => {
                    return self.deliver(action, Some(&token), deadline).await;
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
                    let (settled, attempts, _) = self.deliver(action, None, deadline).await;
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
    /// attempts made, and whether the store was unreachable when marking it done.
    async fn deliver(
        &self,
        action: &Action,
        token: Option<&ClaimToken>,
        deadline: Instant,
    ) -> (Settled, u32, bool) {
        let Some(channel) = self.channels.get(&action.channel) else {
            tracing::error!(channel = %action.channel, "action for a channel that is not configured");
            self.release(action, token).await;
            return (Settled::FailedPermanently, 0, false);
        };
        let mut attempts = 0u32;
        let mut last_error = String::new();
        loop {
            match self.pace(&action.channel, deadline).await {
                Ok(()) => {}
                Err(NotSent::RateLimited) => {
                    last_error = format!("rate limit of channel {} reached", action.channel);
                    break;
                }
                Err(NotSent::NoTime) => break,
            }
            attempts += 1;
            match self.send_before(channel, action, deadline).await {
                Outcome::Delivered => {
                    tracing::info!(key = %action.key, channel = %action.channel, route = %action.route, attempts, "delivered");
                    let store_down = !self.complete(action, token).await;
                    return (Settled::Delivered, attempts, store_down);
                }
                Outcome::Permanent { reason } => {
                    tracing::error!(
                        key = %action.key, channel = %action.channel, route = %action.route, %reason,
                        "delivery failed permanently (configuration error?): not retried"
                    );
                    self.release(action, token).await;
                    return (Settled::FailedPermanently, attempts, false);
                }
                Outcome::Retry { reason, after } => {
                    let delay = backoff::delay(
                        attempts - 1,
                        self.timing.backoff_initial,
                        self.timing.backoff_max,
                        after,
                    );
                    tracing::warn!(key = %action.key, channel = %action.channel, %reason, attempts, "delivery failed, will retry");
                    last_error = reason;
                    if Instant::now() + delay >= deadline {
                        break;
                    }
                    tokio::time::sleep(delay).await;
                }
            }
        }
        (self.leave_for_retry(action, token, attempts, last_error).await, attempts, false)
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
                let now = crate::runtime::unix_now();
                // The callback's quick retries count as one round of the outbox's schedule.
                let due = match next_due(now, 1, &self.timing.outbox_schedule, self.timing.outbox_max_age) {
                    Next::At(due) => due,
                    Next::Dead => now,
                };
                let item =
                    OutboxItem { action: action.clone(), attempts: 1, first_seen: now, due, last_error };
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
        self.release(action, token).await;
        if queued { Settled::Queued } else { Settled::LeftForRetry }
    }

    /// Marks the action done. `false` when the store could not be reached: the answer must
    /// then say `dedup_unavailable`, since a redelivery would find no record and send again.
    async fn complete(&self, action: &Action, token: Option<&ClaimToken>) -> bool {
        if let Some(token) = token
            && let Err(err) = self.dedup.complete(&action.key, token, self.timing.done_ttl).await
        {
            tracing::warn!(key = %action.key, error = %err, "could not mark the action done: a redelivery may send it again");
            return !err.is_unreachable();
        }
        true
    }

    async fn release(&self, action: &Action, token: Option<&ClaimToken>) {
        if let Some(token) = token
            && let Err(err) = self.dedup.release(&action.key, token).await
        {
            tracing::warn!(key = %action.key, error = %err, "could not release the claim: it expires with its lease");
        }
    }

    /// Delivers the outbox items that are due, within `deadline`.
    pub async fn drain(&self, deadline: Instant) -> DrainReport {
        let Some(outbox) = &self.outbox else {
            return DrainReport {
                error: Some("no outbox: configure [dedup] backend = \"redis\"".into()),
                ..DrainReport::default()
            };
        };
        let now = crate::runtime::unix_now();
        let items = match outbox.take_due(now, DRAIN_BATCH).await {
            Ok(items) => items,
            Err(err) => return DrainReport { error: Some(err.to_string()), ..DrainReport::default() },
        };
        let mut report = DrainReport { taken: items.len(), ..DrainReport::default() };
        let results = futures_util::future::join_all(
            items.into_iter().map(|item| self.redeliver(outbox, item, deadline)),
        )
        .await;
        for result in results {
            match result {
                Redelivered::Delivered => report.delivered += 1,
                Redelivered::Rescheduled => report.rescheduled += 1,
                Redelivered::DeadLettered => report.dead_lettered += 1,
            }
        }
        report
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
        let result = self.redeliver_claimed(outbox, item, deadline).await;
        match (&result, &token) {
            (Redelivered::Delivered, Some(token)) => {
                if let Err(err) = self.dedup.complete(&key, token, self.timing.done_ttl).await {
                    tracing::warn!(%key, error = %err, "could not mark the action done: a redelivery may send it again");
                }
            }
            (_, Some(token)) => {
                if let Err(err) = self.dedup.release(&key, token).await {
                    tracing::warn!(%key, error = %err, "could not release the claim: it expires with its lease");
                }
            }
            (_, None) => {}
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
            Err(NotSent::NoTime) => return self.held_back(action, "no time left in this drain"),
        }
        let outcome = self.send_before(channel, action, deadline).await;
        match outcome {
            Outcome::Delivered => {
                tracing::info!(key = %action.key, channel = %action.channel, attempts = item.attempts + 1, "outbox item delivered");
                self.forget(outbox, &action.key).await;
                Redelivered::Delivered
            }
            Outcome::Permanent { reason } => self.dead_letter(outbox, item, reason).await,
            Outcome::Retry { reason, .. } => {
                let attempts = item.attempts + 1;
                match next_due(
                    item.first_seen,
                    attempts,
                    &self.timing.outbox_schedule,
                    self.timing.outbox_max_age,
                ) {
                    Next::At(due) => {
                        tracing::warn!(key = %action.key, due, attempts, error = %reason, "outbox item still failing: rescheduled");
                        // `reschedule` records the failed round itself (attempts + 1): pass the
                        // item as it was taken, or each failed drain would count twice.
                        if let Err(err) = outbox.reschedule(&item, due, &reason).await {
                            tracing::error!(key = %item.action.key, error = %err, "could not reschedule; it returns when its take lease ends");
                        }
                        Redelivered::Rescheduled
                    }
                    Next::Dead => {
                        let reason = format!("gave up after {attempts} attempts: {reason}");
                        self.dead_letter(outbox, OutboxItem { attempts, ..item }, reason).await
                    }
                }
            }
        }
    }

    fn held_back(&self, action: &Action, why: &str) -> Redelivered {
        tracing::info!(key = %action.key, channel = %action.channel, why, "outbox item not tried in this drain: it comes back when its take lease ends");
        Redelivered::Rescheduled
    }

    /// The gate before every attempt, on the callback path and in the drain alike: wait for a
    /// token of the channel's bucket, then check that an attempt still fits before `deadline`.
    async fn pace(&self, channel: &str, deadline: Instant) -> Result<(), NotSent> {
        if let Some(bucket) = self.buckets.get(channel) {
            match bucket.reserve(Instant::now(), deadline) {
                Some(wait) if !wait.is_zero() => tokio::time::sleep(wait).await,
                Some(_) => {}
                None => return Err(NotSent::RateLimited),
            }
        }
        if deadline.saturating_duration_since(Instant::now()) < MIN_ATTEMPT {
            return Err(NotSent::NoTime);
        }
        Ok(())
    }

    /// One attempt with what is left of the deadline (bounded by the attempt timeout); run
    /// after [`Dispatcher::pace`].
    async fn send_before(&self, channel: &ChannelConfig, action: &Action, deadline: Instant) -> Outcome {
        let remaining = deadline.saturating_duration_since(Instant::now());
        self.sender.send(channel, action, remaining.min(self.timing.attempt_timeout)).await
    }

    async fn forget(&self, outbox: &Outbox, key: &str) {
        if let Err(err) = outbox.complete(key).await {
            tracing::warn!(%key, error = %err, "could not remove the item from the outbox; the next drain drops it");
        }
    }

    async fn dead_letter(&self, outbox: &Outbox, item: OutboxItem, reason: String) -> Redelivered {
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

/// Why an attempt was not started.
enum NotSent {
    /// The channel's token bucket has no token before the deadline.
    RateLimited,
    /// Less than [`MIN_ATTEMPT`] is left.
    NoTime,
}

enum Redelivered {
    Delivered,
    Rescheduled,
    DeadLettered,
}
