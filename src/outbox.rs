//! The outbox: actions still undelivered when a callback's deadline came, kept in Redis until a
//! drain (`vodhook drain`, a timer trigger) delivers them or they grow too old.
//!
//! Why it exists: VOD waits 5 s for an answer and retries only 3 times, while a chat service may
//! be down for an hour. With Redis the callback hands the action over and answers `200`; without
//! Redis there is no shared, durable place for it, so the callback answers `503` and relies on
//! VOD's retries (the documented limit of the memory backend).
//!
//! # Storage
//!
//! - `<prefix>{outbox}:items`: hash, action key → [`OutboxItem`] as JSON.
//! - `<prefix>{outbox}:due`: sorted set, action key scored by when it is next due (unix seconds).
//! - `<prefix>{outbox}:dead`: hash, action key → [`DeadLetter`] as JSON.
//! - `<prefix>{outbox}:dead_at`: sorted set, action key scored by when it was given up on: what
//!   expires after `[outbox] dead_letter_days`, and what `--since`/`--older-than` select.
//!
//! The four share the hash tag `{outbox}`: the scripts below move an action between them
//! atomically, which on a Redis Cluster needs one slot (see the `store` module). Before the tag,
//! the keys were `<prefix>outbox:items|due|dead`; [`Outbox::adopt_untagged`] moves what a
//! previous version left there.
//!
//! # Replay and purge
//!
//! [`Outbox::requeue`] puts dead letters (or waiting items) back, due now, and
//! [`Outbox::take_keys`] takes exactly those with the same lease as [`Outbox::take_due`]: a
//! replay delivers them through the same claim as every send, and two replays at once never take
//! the same item.
//!
//! # Several drainers at once
//!
//! [`Outbox::take_due`] is one Lua script: it picks the due keys and moves their score a lease
//! into the future ([`Outbox::with_take_lease`]) before returning them, so two drainers never get
//! the same item, and the items of a drainer that died come back when its lease ends. A drainer
//! that overruns its lease could meet a second one on the same item; it must therefore claim the
//! action in the dedup store before sending, like every sender (see the `dedup` module).
//!
//! # Drain loop (for the caller)
//!
//! For each taken item: claim the action in the dedup store. `AlreadyDone` → [`Outbox::complete`].
//! `InFlight` → leave it (it comes back after the take lease). `Acquired` → send; delivered →
//! complete both; retryable failure → [`next_due`] with `attempts + 1`: `At(t)` →
//! [`Outbox::reschedule`], `Dead` → [`Outbox::dead_letter`] with a loud log; then release the
//! claim.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::action::Action;
use crate::config::{DedupBackend, DedupConfig};
use crate::store::{RedisConn, StoreError, eval_keys};

/// An action waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxItem {
    /// The rendered, unsigned request; the channel's URL and secret are looked up when sending.
    pub action: Action,
    /// Failed delivery rounds so far. The callback path counts as one round, however many
    /// quick retries it made.
    pub attempts: u32,
    /// When the action was first tried (unix seconds): the schedule and the age count from it.
    pub first_seen: i64,
    /// When it is due next (unix seconds).
    pub due: i64,
    /// Why the last round failed, for `vodhook outbox list`.
    pub last_error: String,
    /// Waiting for a digest (the channel's budget was spent), not after a failure.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
}

/// An item given up on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub item: OutboxItem,
    pub reason: String,
    /// When it was given up on (unix seconds).
    pub dead_at: i64,
}

/// What to do after a failed round, from [`next_due`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try again at this time (unix seconds).
    At(i64),
    /// Too old: move it to the dead letters.
    Dead,
}

/// When an action that has failed `attempts` rounds is due next, Svix-like: the k-th retry comes
/// `schedule_secs[0] + ... + schedule_secs[k-1]` after `first_seen` (e.g. 5 s, 5 min, 30 min,
/// 2 h, ...), the last delay repeating once the schedule runs out, until `max_age_secs` after
/// `first_seen`; an attempt that would come later is `Dead`. `attempts == 0` is due at once.
///
/// Anchored at `first_seen`, not at the last attempt, so that the function is pure and an item's
/// life is bounded exactly by `max_age_secs`; a drain that runs late catches up rather than
/// pushing every later retry back. An empty schedule means no retries: `Dead`.
pub fn next_due(first_seen: i64, attempts: u32, schedule_secs: &[u64], max_age_secs: u64) -> Next {
    let Some(&last) = schedule_secs.last() else {
        return if attempts == 0 { Next::At(first_seen) } else { Next::Dead };
    };
    let attempts = u64::from(attempts);
    let listed = attempts.min(schedule_secs.len() as u64) as usize;
    let beyond = attempts - listed as u64;
    let delay = schedule_secs[..listed]
        .iter()
        .fold(0u64, |sum, &d| sum.saturating_add(d))
        .saturating_add(beyond.saturating_mul(last));
    if delay > max_age_secs {
        return Next::Dead;
    }
    match i64::try_from(delay).ok().and_then(|d| first_seen.checked_add(d)) {
        Some(at) => Next::At(at),
        None => Next::Dead,
    }
}

/// Adds the item unless its key is already waiting (then the waiting one, with its schedule, is
/// kept). KEYS: items, due. ARGV: key, json, due.
const PUSH: &str = r"
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
  return 1
end
return 0
";

/// Picks up to `limit` keys due by `now`, leases them until `lease_until`, returns their JSON.
/// Keys without an item (removed meanwhile) are dropped. KEYS: items, due. ARGV: now, limit,
/// lease_until[, mode, channels...]. With a mode (`only` or `except`) it takes only the items
/// whose channel (read from each item's JSON) is (or is not) among the channels, looking at most
/// at 10 times `limit` due keys, so a large backlog of other channels cannot make one call slow.
const TAKE_DUE: &str = r"
local limit = tonumber(ARGV[2])
local filtered = ARGV[4] ~= nil
local only = ARGV[4] == 'only'
local wanted = {}
for i = 5, #ARGV do wanted[ARGV[i]] = true end
local function chosen(v)
  if not filtered then return true end
  local ok, item = pcall(cjson.decode, v)
  local channel = ok and type(item) == 'table' and type(item.action) == 'table' and item.action.channel
  return (channel and wanted[channel] or false) == only
end
local keys = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, filtered and limit * 10 or limit)
local out = {}
for _, k in ipairs(keys) do
  if #out >= limit then break end
  local v = redis.call('HGET', KEYS[1], k)
  if not v then
    redis.call('ZREM', KEYS[2], k)
  elseif chosen(v) then
    redis.call('ZADD', KEYS[2], ARGV[3], k)
    out[#out + 1] = v
  end
end
return out
";

/// Stores the updated item if it is still waiting. KEYS: items, due. ARGV: key, json, due.
const RESCHEDULE: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
  return 1
end
return 0
";

/// Takes the listed keys (ARGV[3..]) that are waiting and due by `now`, for the take lease, like
/// [`TAKE_DUE`]. KEYS: items, due. ARGV: now, lease_until, keys...
const TAKE_KEYS: &str = r"
local out = {}
for i = 3, #ARGV do
  local k = ARGV[i]
  local due = redis.call('ZSCORE', KEYS[2], k)
  if due and tonumber(due) <= tonumber(ARGV[1]) then
    local v = redis.call('HGET', KEYS[1], k)
    if v then
      redis.call('ZADD', KEYS[2], ARGV[2], k)
      out[#out + 1] = v
    end
  end
end
return out
";

/// Moves a dead letter back to the waiting items, due now, as `json` (a fresh schedule); if the
/// action waits already, it is made due now. Returns 1 if it moved, 0 if it was not dead (taken
/// back by another replay meanwhile). KEYS: items, due, dead, dead_at. ARGV: key, json, now.
const REQUEUE_DEAD: &str = r"
if redis.call('HDEL', KEYS[3], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
";

/// Makes a waiting item due now. Returns 1 if it was waiting. KEYS: items, due. ARGV: key, now.
const REQUEUE_WAITING: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
";

/// Removes the dead letters given up on before ARGV[1] (at most ARGV[2] of them); returns how
/// many. KEYS: dead, dead_at.
const EXPIRE_DEAD: &str = r"
local keys = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1], 'LIMIT', 0, ARGV[2])
for _, k in ipairs(keys) do
  redis.call('HDEL', KEYS[1], k)
  redis.call('ZREM', KEYS[2], k)
end
return #keys
";

/// Moves what a version before the `{outbox}` hash tag left under the untagged keys into the
/// tagged ones (a standalone Redis only: those keys never worked on a cluster). Keeps whatever
/// the tagged keys already hold for the same action. KEYS: old items, old due, old dead, items,
/// due, dead, dead_at. ARGV: now. Returns how many entries moved.
const ADOPT_UNTAGGED: &str = r"
local moved = 0
local items = redis.call('HGETALL', KEYS[1])
for i = 1, #items, 2 do
  if redis.call('HSETNX', KEYS[4], items[i], items[i + 1]) == 1 then
    redis.call('ZADD', KEYS[5], redis.call('ZSCORE', KEYS[2], items[i]) or ARGV[1], items[i])
    moved = moved + 1
  end
end
local dead = redis.call('HGETALL', KEYS[3])
for i = 1, #dead, 2 do
  if redis.call('HSETNX', KEYS[6], dead[i], dead[i + 1]) == 1 then
    local ok, letter = pcall(cjson.decode, dead[i + 1])
    local at = (ok and type(letter) == 'table' and tonumber(letter.dead_at)) or tonumber(ARGV[1])
    redis.call('ZADD', KEYS[7], at, dead[i])
    moved = moved + 1
  end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return moved
";

/// The most dead letters one drain expires (the rest go in the next drains).
const EXPIRE_BATCH: usize = 1_000;

/// The outbox in Redis. Cheap to clone; connects on first use.
#[derive(Clone)]
pub struct Outbox {
    conn: RedisConn,
    items: String,
    due: String,
    dead: String,
    dead_at: String,
    take_lease_secs: i64,
}

/// Which channels' items a take is for.
#[derive(Debug, Clone, Copy)]
pub enum Channels<'a> {
    /// Only these channels' items.
    Only(&'a [String]),
    /// Every channel's but these.
    Except(&'a [String]),
}

/// Which part of the outbox an operator command acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Items waiting for delivery.
    Waiting,
    /// Dead letters.
    Dead,
}

impl Outbox {
    /// How long a taken item stays invisible to other drainers by default: a drain run on
    /// Function Compute is bounded by the invoke deadline (20 s), with room to spare.
    pub const DEFAULT_TAKE_LEASE: Duration = Duration::from_secs(60);

    /// The outbox on the Redis of `[store]`. Makes no connection. An error unless the backend
    /// is `redis`: the outbox must be shared by all instances and outlive them.
    pub fn from_config(c: &DedupConfig) -> Result<Self, StoreError> {
        if c.backend != DedupBackend::Redis {
            return Err(StoreError::Config(
                "the outbox needs backend = \"redis\" (undelivered actions must outlive the instance)"
                    .to_owned(),
            ));
        }
        Ok(Self::new(RedisConn::open(c)?))
    }

    /// The outbox on `conn` (the dedup store's connection: one per process).
    pub fn new(conn: RedisConn) -> Self {
        Self {
            items: conn.tagged_key("outbox", "items"),
            due: conn.tagged_key("outbox", "due"),
            dead: conn.tagged_key("outbox", "dead"),
            dead_at: conn.tagged_key("outbox", "dead_at"),
            conn,
            take_lease_secs: Self::DEFAULT_TAKE_LEASE.as_secs() as i64,
        }
    }

    /// Sets how long [`Outbox::take_due`] hides an item from other drainers (rounded up to whole
    /// seconds, at least 1).
    pub fn with_take_lease(mut self, lease: Duration) -> Self {
        let secs = lease.as_secs() + u64::from(lease.subsec_nanos() > 0);
        self.take_lease_secs = i64::try_from(secs.max(1)).unwrap_or(i64::MAX / 4);
        self
    }

    /// Queues `item` under its action key. Idempotent: if the key already waits, nothing
    /// changes and `false` is returned.
    pub async fn push(&self, item: &OutboxItem) -> Result<bool, StoreError> {
        let json = encode(item)?;
        let cmd = eval_keys(PUSH, &[&self.items, &self.due])
            .arg(&item.action.key)
            .arg(&json)
            .arg(item.due)
            .to_owned();
        let added: i64 = self.conn.query(&cmd).await?;
        match added {
            0 | 1 => Ok(added == 1),
            answer => Err(StoreError::Unexpected { what: "an outbox push", answer }),
        }
    }

    /// Takes up to `limit` items due by `now` (unix seconds) for this drainer alone, for the
    /// take lease. Unreadable entries are logged and skipped (they stay, for inspection).
    pub async fn take_due(&self, now: i64, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        self.take_due_for(now, limit, Channels::Except(&[])).await
    }

    /// [`Outbox::take_due`] for some channels only (digests are taken per channel).
    pub async fn take_due_for(
        &self,
        now: i64,
        limit: usize,
        channels: Channels<'_>,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let mut cmd = eval_keys(TAKE_DUE, &[&self.items, &self.due]);
        cmd.arg(now).arg(limit).arg(now.saturating_add(self.take_lease_secs));
        match channels {
            Channels::Except([]) => {}
            Channels::Only(names) => _ = cmd.arg("only").arg(names),
            Channels::Except(names) => _ = cmd.arg("except").arg(names),
        }
        let raw: Vec<String> = self.conn.query(&cmd).await?;
        Ok(raw.iter().filter_map(|json| decode_or_warn::<OutboxItem>("?", json)).collect())
    }

    /// Makes taken items that were not tried due at `due` again (a digest round ran out of
    /// budget or time); items completed meanwhile stay gone.
    pub async fn untake(&self, keys: &[&str], due: i64) -> Result<(), StoreError> {
        for chunk in keys.chunks(100) {
            let mut pipe = redis::pipe();
            for key in chunk {
                pipe.cmd("ZADD").arg(&self.due).arg("XX").arg(due).arg(*key).ignore();
            }
            self.conn.query_pipe::<()>(&pipe).await?;
        }
        Ok(())
    }

    /// Removes the items of `keys` (a digest naming them was delivered).
    pub async fn complete_all(&self, keys: &[&str]) -> Result<(), StoreError> {
        for chunk in keys.chunks(100) {
            let pipe = redis::pipe().atomic().hdel(&self.items, chunk).zrem(&self.due, chunk).to_owned();
            self.conn.query_pipe::<()>(&pipe).await?;
        }
        Ok(())
    }

    /// Records one more failed round of a taken item: `attempts + 1`, due at `next_due`, with
    /// `error`. Does nothing if the item was completed or dead-lettered meanwhile.
    pub async fn reschedule(&self, item: &OutboxItem, next_due: i64, error: &str) -> Result<(), StoreError> {
        let updated = OutboxItem {
            attempts: item.attempts.saturating_add(1),
            due: next_due,
            last_error: error.to_owned(),
            ..item.clone()
        };
        let json = encode(&updated)?;
        let cmd = eval_keys(RESCHEDULE, &[&self.items, &self.due])
            .arg(&item.action.key)
            .arg(&json)
            .arg(next_due)
            .to_owned();
        self.conn.query::<i64>(&cmd).await.map(drop)
    }

    /// Removes the item for action `key` (delivered, or found done elsewhere).
    pub async fn complete(&self, key: &str) -> Result<(), StoreError> {
        self.conn.query_pipe(redis::pipe().atomic().hdel(&self.items, key).zrem(&self.due, key)).await
    }

    /// Gives up on `item`: moves it to the dead letters with `reason`. The caller logs loudly.
    pub async fn dead_letter(&self, item: &OutboxItem, reason: &str) -> Result<(), StoreError> {
        let dead_at = chrono::Utc::now().timestamp();
        let letter = DeadLetter { item: item.clone(), reason: reason.to_owned(), dead_at };
        let json = serde_json::to_string(&letter).map_err(|e| corrupt(&item.action.key, &e))?;
        let key = &item.action.key;
        let pipe = redis::pipe()
            .atomic()
            .hdel(&self.items, key)
            .zrem(&self.due, key)
            .hset(&self.dead, key, &json)
            .zadd(&self.dead_at, key, dead_at)
            .to_owned();
        self.conn.query_pipe(&pipe).await
    }

    /// Whether action `key` waits in the outbox (then a duplicate callback may be answered `200`
    /// while another delivery holds its claim).
    pub async fn contains(&self, key: &str) -> Result<bool, StoreError> {
        self.conn.query(redis::cmd("HEXISTS").arg(&self.items).arg(key)).await
    }

    /// Everything waiting, soonest first. `due` is when it will really be tried next: a taken
    /// item shows the end of its take lease.
    pub async fn list(&self) -> Result<Vec<OutboxItem>, StoreError> {
        type Items = Vec<(String, String)>;
        type Scores = Vec<(String, f64)>;
        let pipe = redis::pipe()
            .hgetall(&self.items)
            .cmd("ZRANGE")
            .arg(&self.due)
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .to_owned();
        let (items, scores): (Items, Scores) = self.conn.query_pipe(&pipe).await?;
        let scores: std::collections::HashMap<String, f64> = scores.into_iter().collect();
        let mut out: Vec<OutboxItem> = items
            .iter()
            .filter_map(|(key, json)| {
                let mut item = decode_or_warn::<OutboxItem>(key, json)?;
                if let Some(&due) = scores.get(key) {
                    item.due = due as i64;
                }
                Some(item)
            })
            .collect();
        out.sort_by(|a, b| (a.due, &a.action.key).cmp(&(b.due, &b.action.key)));
        Ok(out)
    }

    /// Takes those of `keys` that wait and are due by `now`, for this caller alone, for the take
    /// lease: a replay's own [`Outbox::take_due`].
    pub async fn take_keys(&self, keys: &[String], now: i64) -> Result<Vec<OutboxItem>, StoreError> {
        let mut taken = Vec::new();
        // A bounded argument list per script call, so that a replay of thousands stays small.
        for chunk in keys.chunks(100) {
            let mut cmd = eval_keys(TAKE_KEYS, &[&self.items, &self.due]);
            cmd.arg(now).arg(now.saturating_add(self.take_lease_secs)).arg(chunk);
            let raw: Vec<String> = self.conn.query(&cmd).await?;
            taken.extend(raw.iter().filter_map(|json| decode_or_warn::<OutboxItem>("?", json)));
        }
        Ok(taken)
    }

    /// Puts dead letters back among the waiting items (a fresh schedule from `now`: attempts 0,
    /// first seen now), or makes waiting items due now. Returns the keys moved; a key another
    /// replay moved first is not among them.
    pub async fn requeue(&self, part: Part, keys: &[String], now: i64) -> Result<Vec<String>, StoreError> {
        let dead: std::collections::HashMap<String, DeadLetter> = match part {
            Part::Dead => {
                self.dead_letters().await?.into_iter().map(|d| (d.item.action.key.clone(), d)).collect()
            }
            Part::Waiting => Default::default(),
        };
        let mut moved = Vec::new();
        for key in keys {
            let cmd = match part {
                Part::Waiting => {
                    eval_keys(REQUEUE_WAITING, &[&self.items, &self.due]).arg(key).arg(now).to_owned()
                }
                Part::Dead => {
                    let Some(letter) = dead.get(key) else { continue };
                    let fresh = OutboxItem {
                        attempts: 0,
                        first_seen: now,
                        due: now,
                        last_error: format!("replayed; given up on before: {}", letter.reason),
                        ..letter.item.clone()
                    };
                    eval_keys(REQUEUE_DEAD, &[&self.items, &self.due, &self.dead, &self.dead_at])
                        .arg(key)
                        .arg(encode(&fresh)?)
                        .arg(now)
                        .to_owned()
                }
            };
            if self.conn.query::<i64>(&cmd).await? == 1 {
                moved.push(key.clone());
            }
        }
        Ok(moved)
    }

    /// Removes `keys` from `part` for good (`vodhook outbox purge`). Returns how many were there.
    pub async fn purge(&self, part: Part, keys: &[String]) -> Result<usize, StoreError> {
        let mut removed = 0;
        for key in keys {
            let (hash, zset) = match part {
                Part::Waiting => (&self.items, &self.due),
                Part::Dead => (&self.dead, &self.dead_at),
            };
            let pipe = redis::pipe().atomic().hdel(hash, key).zrem(zset, key).to_owned();
            let (gone, _): (usize, usize) = self.conn.query_pipe(&pipe).await?;
            removed += gone;
        }
        Ok(removed)
    }

    /// Removes the dead letters given up on before `before` (unix seconds), at most
    /// [`EXPIRE_BATCH`] per call. Returns how many.
    pub async fn expire_dead(&self, before: i64) -> Result<usize, StoreError> {
        let cmd =
            eval_keys(EXPIRE_DEAD, &[&self.dead, &self.dead_at]).arg(before).arg(EXPIRE_BATCH).to_owned();
        self.conn.query(&cmd).await
    }

    /// Moves what a version before the `{outbox}` hash tag left under `<prefix>outbox:*` into
    /// the tagged keys. Only on a single endpoint (the old keys sit in different slots, and never
    /// worked on a cluster). Returns how many entries moved.
    pub async fn adopt_untagged(&self, now: i64) -> Result<usize, StoreError> {
        if self.conn.is_cluster() {
            return Ok(0);
        }
        let old = ["outbox:items", "outbox:due", "outbox:dead"].map(|name| self.conn.key(name));
        let keys = [&old[0], &old[1], &old[2], &self.items, &self.due, &self.dead, &self.dead_at];
        let keys: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
        let cmd = eval_keys(ADOPT_UNTAGGED, &keys).arg(now).to_owned();
        self.conn.query(&cmd).await
    }

    /// How many items wait and how many dead letters are kept.
    pub async fn counts(&self) -> Result<(usize, usize), StoreError> {
        let pipe = redis::pipe().hlen(&self.items).hlen(&self.dead).to_owned();
        self.conn.query_pipe(&pipe).await
    }

    /// Everything given up on, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let raw: Vec<(String, String)> = self.conn.query(redis::cmd("HGETALL").arg(&self.dead)).await?;
        let mut out: Vec<DeadLetter> =
            raw.iter().filter_map(|(key, json)| decode_or_warn::<DeadLetter>(key, json)).collect();
        out.sort_by(|a, b| (a.dead_at, &a.item.action.key).cmp(&(b.dead_at, &b.item.action.key)));
        Ok(out)
    }
}

fn encode(item: &OutboxItem) -> Result<String, StoreError> {
    serde_json::to_string(item).map_err(|e| corrupt(&item.action.key, &e))
}

fn corrupt(key: &str, e: &serde_json::Error) -> StoreError {
    StoreError::Corrupt { key: key.to_owned(), reason: e.to_string() }
}

/// Entries written by an incompatible version must not stop the drain of all the others.
fn decode_or_warn<T: serde::de::DeserializeOwned>(key: &str, json: &str) -> Option<T> {
    match serde_json::from_str(json) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(key, error = %corrupt(key, &e), "skipping unreadable outbox entry");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVIX: [u64; 6] = [5, 300, 1800, 7200, 18_000, 36_000];
    const DAY: u64 = 86_400;

    #[test]
    fn schedule_accumulates_from_first_seen() {
        let t0 = 1_700_000_000;
        assert_eq!(next_due(t0, 0, &SVIX, DAY), Next::At(t0));
        assert_eq!(next_due(t0, 1, &SVIX, DAY), Next::At(t0 + 5));
        assert_eq!(next_due(t0, 2, &SVIX, DAY), Next::At(t0 + 305));
        assert_eq!(next_due(t0, 3, &SVIX, DAY), Next::At(t0 + 2105));
        assert_eq!(next_due(t0, 4, &SVIX, DAY), Next::At(t0 + 9305));
        assert_eq!(next_due(t0, 6, &SVIX, DAY), Next::At(t0 + 63_305));
    }

    #[test]
    fn last_delay_repeats_until_max_age() {
        let t0 = 0;
        // 63_305 + 36_000 = 99_305 > one day.
        assert_eq!(next_due(t0, 7, &SVIX, DAY), Next::Dead);
        assert_eq!(next_due(t0, 7, &SVIX, 3 * DAY), Next::At(99_305));
        assert_eq!(next_due(t0, 8, &SVIX, 3 * DAY), Next::At(135_305));
        // Exactly at max age is still allowed.
        assert_eq!(next_due(t0, 2, &SVIX, 305), Next::At(305));
        assert_eq!(next_due(t0, 2, &SVIX, 304), Next::Dead);
    }

    #[test]
    fn extremes_do_not_overflow() {
        assert_eq!(
            next_due(0, u32::MAX, &SVIX, u64::MAX),
            Next::At(i64::from(u32::MAX) * 36_000 - 36_000 * 6 + 63_305)
        );
        assert_eq!(next_due(i64::MAX - 1, 1, &SVIX, u64::MAX), Next::Dead);
        assert_eq!(next_due(0, 3, &[u64::MAX], u64::MAX), Next::Dead);
    }

    #[test]
    fn empty_schedule_means_no_retries() {
        assert_eq!(next_due(10, 0, &[], DAY), Next::At(10));
        assert_eq!(next_due(10, 1, &[], DAY), Next::Dead);
    }

    #[test]
    fn outbox_needs_redis() {
        let err = Outbox::from_config(&DedupConfig::default()).err().map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("redis"));
    }
}
