//! Rate budgets: how many messages each chat channel may still send, shared by every instance
//! and every drain, so that a burst spread over many instances never sends a robot more than its
//! service allows (DingTalk blocks a robot for 10 minutes after the 21st message in a minute).
//!
//! # The limit, read the strict way
//!
//! "20 a minute" means never more than 20 in **any** 60-second window: a sliding log of the
//! times messages were counted, not a token bucket (a bucket that refills continuously lets a
//! 21st message through 3 s after a burst of 20, and the robot is blocked). A channel may have a
//! per-second limit as well (Feishu 5, Slack 1). Every window is widened by
//! `[delivery] budget_margin_ms`: a message is counted when its budget is taken, the service
//! counts it when it arrives, a little later, and two messages may arrive in another order.
//!
//! # Where the log lives
//!
//! With the redis backend, each limited channel's budget is one sorted set,
//! `<prefix>{budget:<channel>}:window`, changed by single-key Lua scripts that read the time from
//! Redis (`TIME`), so instances whose clocks disagree still share one window, and the key's hash
//! tag keeps it valid on a Redis Cluster. Its members are the counted messages (scored by when, in
//! milliseconds) and two markers scored in the future, so no window count sees them: `#blocked`
//! (until when the service told us to stay away) and `#backlog` (actions wait for a digest: new
//! ones join them rather than overtaking them). The key expires once it says nothing any more.
//!
//! Without Redis (or while it cannot be reached) each instance keeps the same kind of window in
//! memory: pacing per instance, as before shared budgets; N instances may then send N times the
//! limit, and the README says so. After a failed call the shared budgets are left alone for
//! [`STORE_RETRY`], so an unreachable Redis costs one timeout, not one per message.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::channel::{self, ServiceLimits};
use crate::config::{ChannelConfig, Config};
use crate::store::{RedisConn, StoreError, eval, millis};

/// After the budget store failed, this instance's own windows decide for this long.
pub const STORE_RETRY: Duration = Duration::from_secs(5);

/// One channel's limits, windows widened by the margin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Messages in any `window` (`rate_per_minute`), if limited.
    pub per_window: Option<u32>,
    pub window: Duration,
    /// Messages in any `second` (`rate_per_second`), if limited.
    pub per_second: Option<u32>,
    pub second: Duration,
    /// How long a "too fast" reply without `Retry-After` closes the channel.
    pub block: Duration,
}

impl Limits {
    /// The limits of `channel`: its settings, else its service's documented ones. `None` when
    /// the channel has neither a per-minute nor a per-second limit.
    pub fn of(channel: &ChannelConfig, margin: Duration) -> Option<Limits> {
        let service: ServiceLimits = channel::service_limits(channel.kind());
        let per_window = channel.rate_per_minute.or(service.per_minute).filter(|n| *n > 0);
        let per_second = channel.rate_per_second.or(service.per_second).filter(|n| *n > 0);
        if per_window.is_none() && per_second.is_none() {
            return None;
        }
        let window_secs = channel.rate_window_secs.unwrap_or(60).max(1);
        Some(Limits {
            per_window,
            window: Duration::from_secs(u64::from(window_secs)) + margin,
            per_second,
            second: Duration::from_secs(1) + margin,
            block: Duration::from_secs(channel.block_secs.unwrap_or(service.block_secs)),
        })
    }

    /// "20 a minute, 5 a second" for logs and `plan`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(n) = self.per_window {
            let secs = self.window.as_secs();
            parts.push(if secs == 60 { format!("{n}/min") } else { format!("{n} per {secs} s") });
        }
        if let Some(n) = self.per_second {
            parts.push(format!("{n}/s"));
        }
        parts.join(", ")
    }
}

/// What taking from a budget came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Counted: send now.
    Granted,
    /// There is budget, but actions wait for a digest: join them (nothing was counted).
    Backlog,
    /// Spent: budget comes back after this long (nothing was counted).
    Wait(Duration),
    /// The service told us to stay away for this long (nothing was counted).
    Blocked(Duration),
}

impl Take {
    /// Whether a message could be counted now (for a peek: granted or backlog).
    pub fn open(self) -> bool {
        matches!(self, Take::Granted | Take::Backlog)
    }
}

/// How a take counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Count nothing; say whether one message could go now.
    Peek,
    /// One message of its own: counted unless a backlog waits (then [`Take::Backlog`]).
    Single,
    /// A digest of the backlog: counted whenever there is budget.
    Digest,
}

/// Takes from the sliding log. KEYS[1]: the channel's budget. ARGV: mode (0 peek, 1 single,
/// 2 digest), per_window (0: none), window_ms, per_second (0: none), second_ms, member.
/// Returns {0, ms} blocked, {1, ms} spent (wait), {2, 0} granted (or open, for a peek),
/// {3, 0} backlog.
const TAKE: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local key = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local blocked = tonumber(redis.call('ZSCORE', key, '#blocked') or '0')
if blocked > now then return {0, blocked - now} end
if blocked > 0 then redis.call('ZREM', key, '#blocked') end
local per_window, window = tonumber(ARGV[2]), tonumber(ARGV[3])
local per_second, second = tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local function wait_for(limit, span)
  local from = '(' .. (now - span)
  local n = redis.call('ZCOUNT', key, from, now)
  if n < limit then return nil end
  local frees = redis.call('ZRANGEBYSCORE', key, from, now, 'WITHSCORES', 'LIMIT', n - limit, 1)
  return math.max(1, tonumber(frees[2]) + span - now)
end
local wait = nil
if per_window > 0 then wait = wait_for(per_window, window) end
if not wait and per_second > 0 then wait = wait_for(per_second, second) end
if wait then return {1, wait} end
local backlog = redis.call('ZSCORE', key, '#backlog')
local mode = tonumber(ARGV[1])
if mode == 1 and backlog then return {3, 0} end
if mode == 0 then
  if backlog then return {3, 0} end
  return {2, 0}
end
redis.call('ZADD', key, now, now .. ':' .. ARGV[6])
if redis.call('PTTL', key) < 2 * window then redis.call('PEXPIRE', key, 2 * window) end
return {2, 0}
";

/// Closes the channel for ARGV[1] ms from now (a longer block already set is kept); ARGV[2]:
/// the window, so the key outlives the block by one. KEYS[1]: the channel's budget.
const BLOCK: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ends = now + tonumber(ARGV[1])
local current = tonumber(redis.call('ZSCORE', KEYS[1], '#blocked') or '0')
if ends > current then redis.call('ZADD', KEYS[1], ends, '#blocked') end
local ttl = math.max(ends, current) - now + tonumber(ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
";

/// Sets (ARGV[1] = 1) or clears (0) the backlog marker; ARGV[2]: the window. KEYS[1]: the
/// channel's budget.
const BACKLOG: &str = r"
if ARGV[1] == '1' then
  redis.call('ZADD', KEYS[1], 9007199254740991, '#backlog')
  if redis.call('PTTL', KEYS[1]) < 2 * tonumber(ARGV[2]) then
    redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
  end
else
  redis.call('ZREM', KEYS[1], '#backlog')
end
return 1
";

/// Every limited channel's budget: in Redis when there is one, else in this instance's memory.
pub struct Budgets {
    channels: HashMap<String, Channel>,
    redis: Option<RedisConn>,
    /// Makes every counted member unique across instances.
    instance: String,
    counter: AtomicU64,
    /// Until when the shared budgets are skipped (the store failed).
    store_down_until: Mutex<Option<Instant>>,
}

struct Channel {
    limits: Limits,
    key: Option<String>,
    local: Mutex<LocalWindow>,
}

impl std::fmt::Debug for Budgets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budgets")
            .field("channels", &self.channels.keys())
            .field("shared", &self.redis.is_some())
            .finish()
    }
}

impl Budgets {
    /// The budgets of `config`'s limited channels, shared through `redis` when given.
    pub fn new(config: &Config, redis: Option<RedisConn>) -> Self {
        let margin = Duration::from_millis(config.delivery.budget_margin_ms);
        let channels = config
            .channels
            .iter()
            .filter_map(|c| {
                let limits = Limits::of(c, margin)?;
                let key = redis.as_ref().map(|r| r.tagged_key(&format!("budget:{}", c.name), "window"));
                Some((c.name.clone(), Channel { limits, key, local: Mutex::new(LocalWindow::default()) }))
            })
            .collect();
        let instance = crate::unique::hex();
        Self { channels, redis, instance, counter: AtomicU64::new(0), store_down_until: Mutex::new(None) }
    }

    /// The limits of `channel`, `None` when it has none.
    pub fn limits(&self, channel: &str) -> Option<Limits> {
        self.channels.get(channel).map(|c| c.limits)
    }

    /// Whether the budgets are shared by every instance (in Redis).
    pub fn shared(&self) -> bool {
        self.redis.is_some()
    }

    /// Takes from `channel`'s budget. A channel without limits is always granted. When Redis
    /// cannot be reached, this instance's own window decides (and says so in the log).
    pub async fn take(&self, channel: &str, mode: Mode) -> Take {
        let Some(state) = self.channels.get(channel) else { return Take::Granted };
        if let (Some(redis), Some(key)) = (&self.redis, &state.key)
            && self.store_up()
        {
            match self.take_shared(redis, key, &state.limits, mode).await {
                Ok(take) => return take,
                Err(err) => {
                    *lock(&self.store_down_until) = Some(Instant::now() + STORE_RETRY);
                    tracing::warn!(channel, error = %err, "rate budget store unreachable: pacing this instance alone");
                }
            }
        }
        lock(&state.local).take(&state.limits, mode, Instant::now())
    }

    fn store_up(&self) -> bool {
        lock(&self.store_down_until).is_none_or(|until| Instant::now() >= until)
    }

    async fn take_shared(
        &self,
        redis: &RedisConn,
        key: &str,
        limits: &Limits,
        mode: Mode,
    ) -> Result<Take, StoreError> {
        let member = format!("{}:{}", self.instance, self.counter.fetch_add(1, Ordering::Relaxed));
        let mode_arg = match mode {
            Mode::Peek => 0,
            Mode::Single => 1,
            Mode::Digest => 2,
        };
        let cmd = eval(TAKE, key)
            .arg(mode_arg)
            .arg(limits.per_window.unwrap_or(0))
            .arg(millis(limits.window))
            .arg(limits.per_second.unwrap_or(0))
            .arg(millis(limits.second))
            .arg(member)
            .to_owned();
        let (status, ms): (i64, u64) = redis.query(&cmd).await?;
        Ok(match status {
            0 => Take::Blocked(Duration::from_millis(ms)),
            1 => Take::Wait(Duration::from_millis(ms)),
            3 => Take::Backlog,
            _ => Take::Granted,
        })
    }

    /// The service said "too fast": no instance sends to `channel` for `penalty`.
    pub async fn block(&self, channel: &str, penalty: Duration) {
        let Some(state) = self.channels.get(channel) else { return };
        tracing::warn!(
            channel,
            penalty_secs = penalty.as_secs(),
            "the service says we sent too fast: channel blocked"
        );
        if let (Some(redis), Some(key)) = (&self.redis, &state.key) {
            let cmd = eval(BLOCK, key).arg(millis(penalty)).arg(millis(state.limits.window)).to_owned();
            match redis.query::<i64>(&cmd).await {
                Ok(_) => return,
                Err(err) => {
                    tracing::warn!(channel, error = %err, "could not share the block: this instance keeps it")
                }
            }
        }
        lock(&state.local).block(Instant::now() + penalty);
    }

    /// Says that actions of `channel` wait for a digest (`true`), or that a digest round is
    /// taking them all (`false`). A hint: the drain finds waiting actions without it.
    pub async fn set_backlog(&self, channel: &str, waiting: bool) {
        let Some(state) = self.channels.get(channel) else { return };
        let (Some(redis), Some(key)) = (&self.redis, &state.key) else { return };
        let cmd = eval(BACKLOG, key).arg(u8::from(waiting)).arg(millis(state.limits.window)).to_owned();
        if let Err(err) = redis.query::<i64>(&cmd).await {
            tracing::warn!(channel, error = %err, "could not record the digest backlog; the drain still finds it");
        }
    }
}

fn lock<T>(value: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    value.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The same sliding log in this instance's memory.
#[derive(Debug, Default)]
pub struct LocalWindow {
    sent: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

impl LocalWindow {
    /// [`Budgets::take`] at `now` (there is no backlog in memory: digests need the outbox).
    pub fn take(&mut self, limits: &Limits, mode: Mode, now: Instant) -> Take {
        if let Some(until) = self.blocked_until {
            if until > now {
                return Take::Blocked(until - now);
            }
            self.blocked_until = None;
        }
        while self.sent.front().is_some_and(|t| now.saturating_duration_since(*t) >= limits.window) {
            self.sent.pop_front();
        }
        let wait = limits
            .per_window
            .and_then(|n| self.wait_for(n, limits.window, now))
            .or_else(|| limits.per_second.and_then(|n| self.wait_for(n, limits.second, now)));
        if let Some(wait) = wait {
            return Take::Wait(wait);
        }
        if mode != Mode::Peek {
            self.sent.push_back(now);
        }
        Take::Granted
    }

    /// With `limit` messages allowed in any `span`: how long until one more may go, if not now.
    /// (`sent` is in time order, so those inside `span` are its tail.)
    fn wait_for(&self, limit: u32, span: Duration, now: Instant) -> Option<Duration> {
        let inside = self.sent.iter().rev().take_while(|t| now.saturating_duration_since(**t) < span).count();
        let limit = limit as usize;
        if limit == 0 || inside < limit {
            return None;
        }
        let frees = self.sent[self.sent.len() - limit];
        Some((frees + span).saturating_duration_since(now).max(Duration::from_millis(1)))
    }

    pub fn block(&mut self, until: Instant) {
        self.blocked_until = Some(self.blocked_until.map_or(until, |current| current.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_window: Option<u32>, per_second: Option<u32>) -> Limits {
        Limits {
            per_window,
            window: Duration::from_secs(60),
            per_second,
            second: Duration::from_secs(1),
            block: Duration::from_secs(600),
        }
    }

    /// Sends as fast as the window allows for `span`, and returns the send times.
    fn send_greedily(limits: &Limits, span: Duration, step: Duration) -> Vec<Duration> {
        let t0 = Instant::now();
        let mut window = LocalWindow::default();
        let mut sent = Vec::new();
        let mut at = Duration::ZERO;
        while at < span {
            if window.take(limits, Mode::Single, t0 + at) == Take::Granted {
                sent.push(at);
            }
            at += step;
        }
        sent
    }

    /// The most sends inside any window of `span` (each send opens one).
    fn busiest(sent: &[Duration], span: Duration) -> usize {
        sent.iter()
            .map(|start| sent.iter().filter(|t| **t >= *start && **t < *start + span).count())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn never_more_than_the_limit_in_any_window() {
        let twenty = limits(Some(20), None);
        let sent = send_greedily(&twenty, Duration::from_secs(300), Duration::from_millis(250));
        assert_eq!(busiest(&sent, Duration::from_secs(60)), 20);
        // A burst of 20, then nothing until the first leaves the window (a token bucket would
        // let the 21st through 3 s later).
        assert_eq!(sent[19], Duration::from_millis(19 * 250));
        assert_eq!(sent[20], Duration::from_secs(60));
        assert_eq!(sent.len(), 100, "5 minutes at 20 a minute");
    }

    #[test]
    fn both_limits_hold_at_once() {
        let feishu = limits(Some(100), Some(5));
        let sent = send_greedily(&feishu, Duration::from_secs(120), Duration::from_millis(50));
        assert_eq!(busiest(&sent, Duration::from_secs(1)), 5);
        assert_eq!(busiest(&sent, Duration::from_secs(60)), 100);
    }

    #[test]
    fn a_wait_says_when_budget_returns_and_peeks_count_nothing() {
        let t0 = Instant::now();
        let two = limits(Some(2), None);
        let mut window = LocalWindow::default();
        assert_eq!(window.take(&two, Mode::Peek, t0), Take::Granted);
        assert_eq!(window.take(&two, Mode::Single, t0), Take::Granted);
        assert_eq!(window.take(&two, Mode::Single, t0 + Duration::from_secs(10)), Take::Granted);
        assert_eq!(
            window.take(&two, Mode::Single, t0 + Duration::from_secs(20)),
            Take::Wait(Duration::from_secs(40))
        );
        assert_eq!(window.take(&two, Mode::Single, t0 + Duration::from_secs(60)), Take::Granted);
    }

    #[test]
    fn a_block_closes_the_window_until_it_ends() {
        let t0 = Instant::now();
        let mut window = LocalWindow::default();
        let twenty = limits(Some(20), None);
        window.block(t0 + Duration::from_secs(600));
        window.block(t0 + Duration::from_secs(5)); // a shorter block does not shorten it
        assert_eq!(window.take(&twenty, Mode::Single, t0), Take::Blocked(Duration::from_secs(600)));
        assert_eq!(window.take(&twenty, Mode::Single, t0 + Duration::from_secs(600)), Take::Granted);
    }

    #[test]
    fn limits_come_from_the_service_unless_configured() {
        let margin = Duration::from_millis(500);
        let mut dingtalk = ChannelConfig::new("d", crate::config::ChannelType::Dingtalk);
        let l = Limits::of(&dingtalk, margin).unwrap();
        assert_eq!((l.per_window, l.per_second, l.block), (Some(20), None, Duration::from_secs(600)));
        assert_eq!(l.window, Duration::from_millis(60_500));
        dingtalk.rate_per_minute = Some(10);
        dingtalk.block_secs = Some(30);
        let l = Limits::of(&dingtalk, margin).unwrap();
        assert_eq!((l.per_window, l.block), (Some(10), Duration::from_secs(30)));
        let feishu =
            Limits::of(&ChannelConfig::new("f", crate::config::ChannelType::Feishu), margin).unwrap();
        assert_eq!((feishu.per_window, feishu.per_second), (Some(100), Some(5)));
        assert_eq!(feishu.describe(), "100/min, 5/s");
        let slack = Limits::of(&ChannelConfig::new("s", crate::config::ChannelType::Slack), margin).unwrap();
        assert_eq!((slack.per_window, slack.per_second), (None, Some(1)));
        assert!(Limits::of(&ChannelConfig::new("w", crate::config::ChannelType::Webhook), margin).is_none());
    }
}
