//! The action pipeline behind the handler: events → routes → actions → dedup → delivery, all
//! within the request's deadline, and the outbox for what the deadline leaves undelivered.
//!
//! One action's life (see `crate::dedup` for the claim protocol):
//! 1. **claim** its idempotency key. Done already → `duplicate`. In flight in another request
//!    or instance → wait for that one to finish (polling the store) until the deadline, so a
//!    duplicate never answers "delivered" for something that may yet fail. Store unreachable
//!    → deliver anyway (a duplicate is better than a loss) and say so in the response.
//! 2. **send** within the channel's rate budget (shared by every instance with Redis: the
//!    `budget` module); retry retryable failures with jittered exponential backoff (honouring
//!    `Retry-After`) while the deadline allows. A "too fast" reply blocks the channel for the
//!    service's penalty. A chat channel whose budget is spent, or whose earlier actions wait
//!    for a digest, **holds** the action in the outbox instead (answering `200`); a digest
//!    round then sends what waits as few merged messages (`digest`), run by this request
//!    when it finds budget, and by every drain.
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
//! Actions run concurrently, at most `[delivery] max_concurrent_sends` at once: N channels cost
//! the slowest one, not the sum, and a delivery of many events does not become as many
//! simultaneous requests.

mod backoff;
pub mod budget;
mod callback;
mod digest;
mod drain;
mod group;
mod quiet;
mod report;
mod rerun;
mod resolve;
mod settle;
mod vod;

pub use rerun::{Reran, Rerun};
pub use vod::RequestScope;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::action::Action;
use crate::channel::{self, Outcome, Sender};
use crate::config::{ChannelConfig, Config};
use crate::dedup::DedupStore;
use crate::dispatch::budget::{Budgets, Mode, Take};
use crate::outbox::Outbox;
use crate::route::Router;
use crate::silence::store::SilenceStore;
use crate::store::RedisConn;

/// An attempt with less time than this left is not worth starting.
const MIN_ATTEMPT: Duration = Duration::from_millis(50);

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
    /// Held in the outbox for a digest: the channel's budget was spent (or a digest waits).
    pub held: usize,
    /// `vod` calls not made: the loop guard's `max_repeats` was reached for their video.
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped: usize,
    /// Held in the outbox while their route is muted (`mute_time_intervals`), sent when it ends.
    #[serde(skip_serializing_if = "is_zero")]
    pub muted: usize,
    /// Dropped while their route was muted (`on_mute = "drop"`, or no outbox to hold them in).
    #[serde(skip_serializing_if = "is_zero")]
    pub dropped: usize,
    /// Not sent: an active silence matches them (`vodhook silence`); marked done.
    #[serde(skip_serializing_if = "is_zero")]
    pub silenced: usize,
    /// Digest messages this request sent (of actions held by it and by others).
    #[serde(skip_serializing_if = "is_zero")]
    pub digests: usize,
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
    /// Digest messages sent, and the actions they covered (counted in `delivered` too).
    #[serde(skip_serializing_if = "is_zero")]
    pub digests: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub in_digests: usize,
    /// Dead letters removed, older than `[outbox] dead_letter_days`.
    #[serde(skip_serializing_if = "is_zero")]
    pub expired: usize,
    /// Entries moved from the keys of a version before the `{outbox}` hash tag.
    #[serde(skip_serializing_if = "is_zero")]
    pub adopted: usize,
    /// Why nothing could be drained (no outbox configured, store unreachable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
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
    /// In the outbox, waiting for a digest.
    Held,
    /// A `vod` call the loop guard stopped.
    Skipped,
    /// In the outbox until its route's mute ends.
    Muted,
    /// Dropped: its route was muted.
    Dropped,
    /// Not sent: a silence matched it.
    Silenced,
}

impl Settled {
    /// Its name among the metrics' outcomes (`metrics::names::OUTCOMES`).
    fn outcome(&self, action: &Action) -> &'static str {
        match self {
            Settled::Delivered if action.resolution.is_some() => "resolved",
            Settled::Delivered => "sent",
            Settled::Duplicate => "duplicate",
            Settled::FailedPermanently => "dead",
            Settled::LeftForRetry => "left_for_retry",
            Settled::Queued => "queued",
            Settled::InFlightElsewhere => "in_flight",
            Settled::Held if action.group.is_some() => "grouped",
            Settled::Held => "digested",
            Settled::Skipped => "skipped",
            Settled::Muted => "muted",
            Settled::Dropped => "dropped",
            Settled::Silenced => "silenced",
        }
    }
}

/// What the dispatcher does with an action whose channel's rate budget is spent: the one
/// decision that `pace` acts on and `vodhook plan` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenSpent {
    /// The channel has no rate limit.
    SentAtOnce,
    /// Held in the outbox for the channel's next digest (a digest channel, with an outbox).
    HeldForDigest,
    /// Waits for budget within the deadline, then goes to the outbox.
    WaitsThenQueued,
    /// Waits for budget within the deadline, then is left for the sender's retry (no outbox).
    WaitsThenLeftForRetry,
}

impl WhenSpent {
    /// For `channel`, with or without an outbox (the redis store).
    pub fn of(channel: &ChannelConfig, has_outbox: bool) -> WhenSpent {
        let limited = crate::dispatch::budget::Limits::of(channel, Duration::ZERO).is_some();
        match (limited, has_outbox) {
            (false, _) => WhenSpent::SentAtOnce,
            (true, true) if channel::digests(channel) => WhenSpent::HeldForDigest,
            (true, true) => WhenSpent::WaitsThenQueued,
            (true, false) => WhenSpent::WaitsThenLeftForRetry,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            WhenSpent::SentAtOnce => "sent at once",
            WhenSpent::HeldForDigest => "held in the outbox for the channel's next digest",
            WhenSpent::WaitsThenQueued => "waits for budget within the deadline, then queued in the outbox",
            WhenSpent::WaitsThenLeftForRetry => {
                "waits for budget within the deadline, then left for VOD's retry (no outbox)"
            }
        }
    }
}

/// The VOD API of `[vod]`. Its endpoint was checked when the configuration was loaded (the same
/// rule), so this fails only for a configuration built around that check: then say so, and
/// every call and lookup fails as "not configured".
fn vod_api(config: &crate::config::VodConfig) -> Option<crate::vod::VodApi> {
    match crate::vod::VodApi::from_config(config) {
        Ok(api) => Some(api),
        Err(problem) => {
            tracing::error!(%problem, "the VOD API cannot be used: its calls and play-link lookups will fail");
            None
        }
    }
}

/// Timing settings, from `[delivery]`, `[store]` and `[outbox]`.
#[derive(Debug, Clone)]
struct Timing {
    attempt_timeout: Duration,
    max_concurrent_sends: usize,
    backoff_initial: Duration,
    backoff_max: Duration,
    lease: Duration,
    done_ttl: Duration,
    outbox_schedule: Vec<u64>,
    outbox_max_age: u64,
    /// How long dead letters are kept, in seconds.
    dead_letter_keep: i64,
    digest_max_actions: usize,
}

/// Runs the actions of each delivery, and drains the outbox.
pub struct Dispatcher {
    router: Router,
    channels: HashMap<String, ChannelConfig>,
    /// The channels that hold actions for digests (chat channels with `digest` on, when there
    /// is an outbox to hold them in), in configuration order.
    digest_channels: Vec<String>,
    budgets: Budgets,
    /// The VOD API (`None` when `[vod] endpoint` is not a URL: check-config says so).
    vod: Option<crate::vod::VodApi>,
    vod_config: crate::config::VodConfig,
    sender: Sender,
    dedup: DedupStore,
    outbox: Option<Outbox>,
    /// Where silences are kept (`None` without Redis: there are none).
    silences: Option<SilenceStore>,
    timing: Timing,
    /// The report's counters, and when its hours and periods fall.
    ledger: crate::report::Ledger,
    schedule: crate::report::Schedule,
    /// `[report]` (`None`: no report is sent; the counters still count for `vodhook report`).
    report: Option<crate::config::ReportConfig>,
    /// The end of the latest period whose report this instance knows is out.
    report_through: std::sync::atomic::AtomicI64,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").field("channels", &self.channels.keys()).finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// The pipeline of a checked configuration: its compiled `router`, the dedup store, the
    /// outbox and the Redis connection rate budgets are shared through (all connected on first
    /// use, never here: cold starts).
    pub fn new(
        config: &Config,
        router: Router,
        dedup: DedupStore,
        outbox: Option<Outbox>,
        redis: Option<RedisConn>,
    ) -> Self {
        let mut channels: HashMap<_, _> =
            config.channels.iter().map(|c| (c.name.clone(), c.clone())).collect();
        if let Some(links) = &config.links {
            let reruns = rerun::rerun_channel(links);
            channels.insert(reruns.name.clone(), reruns);
        }
        let holds = |c: &&ChannelConfig| WhenSpent::of(c, outbox.is_some()) == WhenSpent::HeldForDigest;
        let digest_channels = config.channels.iter().filter(holds).map(|c| c.name.clone()).collect();
        let take_lease = Duration::from_secs(config.outbox.take_lease_secs.max(1));
        let schedule = crate::report::Schedule::of(config);
        let (seen_ttl, period) = (
            Duration::from_secs(config.store.ttl_secs),
            Duration::from_secs(schedule.period_secs().unsigned_abs()),
        );
        let ledger = match &redis {
            Some(conn) => crate::report::Ledger::redis(conn.clone(), seen_ttl, period),
            None => crate::report::Ledger::memory(config.store.capacity, seen_ttl, period),
        };
        Self {
            ledger,
            schedule,
            report: config.report.clone(),
            report_through: std::sync::atomic::AtomicI64::new(i64::MIN),
            outbox: outbox.map(|o| o.with_take_lease(take_lease)),
            dedup,
            router,
            channels,
            digest_channels,
            silences: redis.clone().map(SilenceStore::new),
            budgets: Budgets::new(config, redis),
            vod: vod_api(&config.vod),
            vod_config: config.vod.clone(),
            sender: Sender::new(),
            timing: Timing {
                attempt_timeout: Duration::from_millis(config.delivery.attempt_timeout_ms),
                max_concurrent_sends: config.delivery.max_concurrent_sends.max(1),
                backoff_initial: Duration::from_millis(config.delivery.backoff_initial_ms),
                backoff_max: Duration::from_millis(config.delivery.backoff_max_ms),
                lease: Duration::from_millis(config.store.lease_ms),
                done_ttl: Duration::from_secs(config.store.ttl_secs),
                outbox_schedule: config.outbox.schedule_secs.clone(),
                outbox_max_age: config.outbox.max_age_secs,
                dead_letter_keep: i64::from(config.outbox.dead_letter_days) * 86_400,
                digest_max_actions: config.delivery.digest_max_actions.max(1),
            },
        }
    }

    /// The gate before every single message, on the callback path and in the drain alike: take
    /// from the channel's budget, then check that an attempt still fits before `deadline`. A
    /// digest channel holds the action when the budget is spent or a digest waits; another
    /// channel waits for budget while the deadline allows.
    async fn pace(&self, channel: &str, deadline: Instant) -> Result<(), NotSent> {
        let digests = self.holds_for_digest(channel);
        let mode = if digests { Mode::Single } else { Mode::Digest };
        loop {
            let wait = match self.budgets.take(channel, mode).await {
                Take::Granted => break,
                Take::Backlog => return Err(NotSent::Hold),
                Take::Wait(wait) | Take::Blocked(wait) => wait,
            };
            if digests {
                return Err(NotSent::Hold);
            }
            if Instant::now() + wait + MIN_ATTEMPT > deadline {
                return Err(NotSent::RateLimited);
            }
            tokio::time::sleep(wait).await;
        }
        if deadline.saturating_duration_since(Instant::now()) < MIN_ATTEMPT {
            return Err(NotSent::NoTime);
        }
        Ok(())
    }

    /// Whether `channel`'s actions wait for a digest when its budget is spent.
    fn holds_for_digest(&self, channel: &str) -> bool {
        self.digest_channels.iter().any(|c| c == channel)
    }

    /// The service said "too fast": close the channel for its `Retry-After`, else its penalty.
    async fn throttled(&self, channel: &str, after: Option<std::time::Duration>) {
        if let Some(limits) = self.budgets.limits(channel) {
            self.budgets.block(channel, after.unwrap_or(limits.block)).await;
        }
    }

    /// One attempt with what is left of the deadline (bounded by the attempt timeout); run
    /// after [`Dispatcher::pace`]. A `vod` channel's action is a VOD call, signed with the
    /// credentials of `scope`.
    async fn send_before(
        &self,
        channel: &ChannelConfig,
        action: &Action,
        deadline: Instant,
        scope: &RequestScope<'_>,
    ) -> Outcome {
        let started = Instant::now();
        let timeout = deadline.saturating_duration_since(started).min(self.timing.attempt_timeout);
        if channel.call().is_some() {
            return self.call_vod(action, scope, timeout).await;
        }
        let outcome = self.sender.send(channel, action, timeout).await;
        let seconds = started.elapsed().as_secs_f64();
        crate::metrics::record(|t| t.send(&channel.name, seconds));
        outcome
    }
}

/// Why an attempt was not started.
enum NotSent {
    /// The channel's budget has nothing before the deadline.
    RateLimited,
    /// A digest channel's budget is spent (or a digest waits): hold the action for the digest.
    Hold,
    /// Less than [`MIN_ATTEMPT`] is left.
    NoTime,
}
