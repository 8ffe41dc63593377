//! The report's counters: one hash per hour-long bucket, shared by every instance through Redis
//! (in memory without it: that instance's own), and a "seen" mark per event so that each event
//! is counted once however often VOD delivers it.
//!
//! Keys, all tagged `{report}` (one slot on a Redis Cluster, so one script touches them all):
//! `<prefix>{report}:h:<bucket start>` (the bucket's counters, kept [`ReportConfig`]'s period
//! plus [`KEEP_MARGIN_SECS`]), `<prefix>{report}:seen:<event identity>` (kept the dedup TTL),
//! and `<prefix>{report}:since` (when vodhook first counted anything: the first report is the
//! first `at` after it). One callback costs one script: the marks, the counts and `since`.
//!
//! Fields of a bucket: `e|<EventType>` (new events), `failed` (new events whose status is
//! Failed), `w|ok` / `w|failed` (workflows), `f|<WorkflowId>|<ErrorCode>` with one example
//! VideoId in `x|<WorkflowId>|<ErrorCode>`, `a|<outcome>` (actions), `v|<Action>|ok` /
//! `v|<Action>|failed` (VOD API calls).
//!
//! [`ReportConfig`]: crate::config::ReportConfig

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::event::{Event, TaskStatus};
use crate::metrics::Tally;
use crate::store::{RedisConn, StoreError, eval_keys};

/// How much longer than the longest period a bucket is kept.
pub const KEEP_MARGIN_SECS: u64 = 2 * 86_400;
/// A bucket stops taking new `f|` fields (workflow × error code pairs) and new event types (then
/// counted as `e|other`) at this many fields: both come from the callbacks, and must not grow a
/// hash without bound.
pub const MAX_BUCKET_FIELDS: usize = 2_000;
/// The event type whose successes and failures are the report's "workflows".
const WORKFLOW_EVENT: &str = "WorkflowTaskComplete";

/// KEYS: bucket, since, seen keys. ARGV: bucket TTL, seen TTL, now, max fields, the number of
/// events, six per event (event field, `failed` or '', workflow field or '', failure field or
/// '', example field, example value), then (field, increment) pairs. Returns 1/0 per event:
/// new or seen before.
const COUNT: &str = r"
local bucket = KEYS[1]
redis.call('SET', KEYS[2], ARGV[3], 'NX')
local n = tonumber(ARGV[5])
local fresh = {}
local a = 6
for i = 1, n do
  if redis.call('SET', KEYS[i + 2], '1', 'NX', 'EX', ARGV[2]) then
    fresh[i] = 1
    if redis.call('HEXISTS', bucket, ARGV[a]) == 1 or redis.call('HLEN', bucket) < tonumber(ARGV[4]) then
      redis.call('HINCRBY', bucket, ARGV[a], 1)
    else
      redis.call('HINCRBY', bucket, 'e|other', 1)
    end
    if ARGV[a + 1] ~= '' then redis.call('HINCRBY', bucket, ARGV[a + 1], 1) end
    if ARGV[a + 2] ~= '' then redis.call('HINCRBY', bucket, ARGV[a + 2], 1) end
    if ARGV[a + 3] ~= '' and (redis.call('HEXISTS', bucket, ARGV[a + 3]) == 1
        or redis.call('HLEN', bucket) < tonumber(ARGV[4])) then
      redis.call('HINCRBY', bucket, ARGV[a + 3], 1)
      redis.call('HSETNX', bucket, ARGV[a + 4], ARGV[a + 5])
    end
  else
    fresh[i] = 0
  end
  a = a + 6
end
while a + 1 <= #ARGV do
  redis.call('HINCRBY', bucket, ARGV[a], ARGV[a + 1])
  a = a + 2
end
redis.call('EXPIRE', bucket, ARGV[1])
return fresh
";

/// What one event adds to its bucket when it is new.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EventFields {
    event: String,
    failed: bool,
    workflow: Option<&'static str>,
    /// `f|<WorkflowId>|<ErrorCode>`, its example field and the VideoId.
    failure: Option<(String, String, String)>,
}

fn fields_of(event: &Event) -> EventFields {
    let status = event.status().map(TaskStatus::parse);
    let failed = matches!(status, Some(TaskStatus::Failed));
    let workflow = match (&status, event.event_type() == WORKFLOW_EVENT) {
        (Some(TaskStatus::Succeed), true) => Some("w|ok"),
        (Some(TaskStatus::Failed), true) => Some("w|failed"),
        _ => None,
    };
    let failure = event.workflow_id().filter(|_| failed).map(|workflow_id| {
        let code = event.error_codes().next().unwrap_or_default();
        let pair = format!("{workflow_id}|{code}");
        (format!("f|{pair}"), format!("x|{pair}"), event.video_id().unwrap_or_default().to_owned())
    });
    EventFields { event: format!("e|{}", crate::metrics::event_labels(event).0), failed, workflow, failure }
}

/// The counts a tally adds to its bucket whatever its events: actions by outcome, VOD calls.
pub fn tally_fields(tally: &Tally) -> Vec<(String, u64)> {
    let mut fields: HashMap<String, u64> = HashMap::new();
    for ((_, _, outcome), n) in &tally.counts.actions {
        *fields.entry(format!("a|{outcome}")).or_default() += n;
    }
    for ((action, outcome), n) in &tally.counts.vod_calls {
        let result = if *outcome == "ok" { "ok" } else { "failed" };
        *fields.entry(format!("v|{action}|{result}")).or_default() += n;
    }
    let mut fields: Vec<(String, u64)> = fields.into_iter().collect();
    fields.sort();
    fields
}

/// Where the counters are kept.
pub enum Ledger {
    Redis { conn: RedisConn, seen_ttl: Duration, bucket_ttl: Duration },
    Memory(Mutex<Memory>),
}

/// The counters of one instance, without Redis.
#[derive(Default)]
pub struct Memory {
    since: Option<i64>,
    buckets: HashMap<i64, HashMap<String, String>>,
    /// Event identities and when their mark ends.
    seen: HashMap<String, i64>,
    capacity: usize,
    seen_ttl: i64,
    bucket_ttl: i64,
    /// When expired marks and buckets are next dropped.
    next_sweep: i64,
}

impl Ledger {
    pub fn redis(conn: RedisConn, seen_ttl: Duration, period: Duration) -> Ledger {
        let bucket_ttl = period + Duration::from_secs(KEEP_MARGIN_SECS);
        Ledger::Redis { conn, seen_ttl, bucket_ttl }
    }

    /// Counters in this process, remembering at most `capacity` events' marks.
    pub fn memory(capacity: usize, seen_ttl: Duration, period: Duration) -> Ledger {
        Ledger::Memory(Mutex::new(Memory {
            capacity: capacity.max(1),
            seen_ttl: secs(seen_ttl),
            bucket_ttl: secs(period) + KEEP_MARGIN_SECS as i64,
            ..Memory::default()
        }))
    }

    /// Whether the counters are every instance's (Redis) or this one's.
    pub fn scope(&self) -> &'static str {
        match self {
            Ledger::Redis { .. } => "store",
            Ledger::Memory(_) => "instance",
        }
    }

    /// Counts `events` (each only the first time it is seen) and `extra` (a tally's actions and
    /// calls, [`tally_fields`]) in `bucket`; returns, per event, whether it was new.
    pub async fn count(
        &self,
        bucket: i64,
        events: &[Event],
        extra: &[(String, u64)],
        now: i64,
    ) -> Result<Vec<bool>, StoreError> {
        let fields: Vec<EventFields> = events.iter().map(fields_of).collect();
        match self {
            Ledger::Redis { conn, seen_ttl, bucket_ttl } => {
                let ttls = (secs(*bucket_ttl), secs(*seen_ttl));
                count_redis(conn, bucket, events, &fields, extra, ttls, now).await
            }
            Ledger::Memory(memory) => {
                Ok(lock(memory).count(bucket, &identities(events), &fields, extra, now))
            }
        }
    }

    /// The buckets from `first` to `last` (bucket starts, inclusive), each one's fields.
    pub async fn buckets(&self, starts: &[i64]) -> Result<Vec<HashMap<String, String>>, StoreError> {
        match self {
            Ledger::Redis { conn, .. } => {
                let mut out = Vec::with_capacity(starts.len());
                for start in starts {
                    let cmd = redis::cmd("HGETALL").arg(bucket_key(conn, *start)).to_owned();
                    out.push(conn.query(&cmd).await?);
                }
                Ok(out)
            }
            Ledger::Memory(memory) => {
                let memory = lock(memory);
                Ok(starts.iter().map(|s| memory.buckets.get(s).cloned().unwrap_or_default()).collect())
            }
        }
    }

    /// When anything was first counted (`None`: never).
    pub async fn since(&self) -> Result<Option<i64>, StoreError> {
        match self {
            Ledger::Redis { conn, .. } => {
                let cmd = redis::cmd("GET").arg(conn.tagged_key("report", "since")).to_owned();
                let since: Option<String> = conn.query(&cmd).await?;
                Ok(since.and_then(|s| s.parse().ok()))
            }
            Ledger::Memory(memory) => Ok(lock(memory).since),
        }
    }
}

fn identities(events: &[Event]) -> Vec<String> {
    events.iter().map(Event::identity).collect()
}

fn bucket_key(conn: &RedisConn, start: i64) -> String {
    conn.tagged_key("report", &format!("h:{start}"))
}

async fn count_redis(
    conn: &RedisConn,
    bucket: i64,
    events: &[Event],
    fields: &[EventFields],
    extra: &[(String, u64)],
    (bucket_ttl, seen_ttl): (i64, i64),
    now: i64,
) -> Result<Vec<bool>, StoreError> {
    let mut keys = vec![bucket_key(conn, bucket), conn.tagged_key("report", "since")];
    keys.extend(events.iter().map(|e| conn.tagged_key("report", &format!("seen:{}", e.identity()))));
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let mut cmd = eval_keys(COUNT, &key_refs);
    cmd.arg(bucket_ttl.max(1)).arg(seen_ttl.max(1)).arg(now).arg(MAX_BUCKET_FIELDS).arg(events.len());
    for f in fields {
        let (failure, example, video) = f.failure.clone().unwrap_or_default();
        cmd.arg(&f.event).arg(if f.failed { "failed" } else { "" }).arg(f.workflow.unwrap_or(""));
        cmd.arg(failure).arg(example).arg(video);
    }
    for (field, n) in extra {
        cmd.arg(field).arg(*n);
    }
    let fresh: Vec<i64> = conn.query(&cmd).await?;
    Ok(fresh.into_iter().map(|n| n == 1).collect())
}

impl Memory {
    fn count(
        &mut self,
        bucket: i64,
        identities: &[String],
        fields: &[EventFields],
        extra: &[(String, u64)],
        now: i64,
    ) -> Vec<bool> {
        self.since.get_or_insert(now);
        if now >= self.next_sweep {
            // Once a minute, not per callback: a sweep walks every mark.
            self.seen.retain(|_, until| *until > now);
            self.buckets.retain(|start, _| *start + self.bucket_ttl > now);
            self.next_sweep = now + 60;
        }
        let mut fresh = Vec::with_capacity(identities.len());
        for (identity, f) in identities.iter().zip(fields) {
            if self.seen.len() >= self.capacity {
                self.forget_oldest_half();
            }
            let new = !self.seen.contains_key(identity);
            fresh.push(new);
            if !new {
                continue;
            }
            self.seen.insert(identity.clone(), now + self.seen_ttl);
            let counters = self.buckets.entry(bucket).or_default();
            let room = counters.contains_key(&f.event) || counters.len() < MAX_BUCKET_FIELDS;
            add(counters, if room { &f.event } else { "e|other" }, 1);
            if f.failed {
                add(counters, "failed", 1);
            }
            if let Some(workflow) = f.workflow {
                add(counters, workflow, 1);
            }
            if let Some((failure, example, video)) = &f.failure
                && (counters.contains_key(failure) || counters.len() < MAX_BUCKET_FIELDS)
            {
                add(counters, failure, 1);
                counters.entry(example.clone()).or_insert_with(|| video.clone());
            }
        }
        let counters = self.buckets.entry(bucket).or_default();
        for (field, n) in extra {
            add(counters, field, *n);
        }
        fresh
    }
}

impl Memory {
    /// Makes room for new marks: the half that ends first goes (a redelivery of one of those
    /// events would be counted again, which the capacity makes rare).
    fn forget_oldest_half(&mut self) {
        let mut ends: Vec<i64> = self.seen.values().copied().collect();
        ends.sort_unstable();
        let cut = ends.get(ends.len() / 2).copied().unwrap_or(i64::MAX);
        self.seen.retain(|_, until| *until > cut);
    }
}

fn add(counters: &mut HashMap<String, String>, field: &str, n: u64) {
    let value = counters.entry(field.to_owned()).or_default();
    *value = (value.parse::<u64>().unwrap_or(0) + n).to_string();
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn lock(memory: &Mutex<Memory>) -> std::sync::MutexGuard<'_, Memory> {
    memory.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, video: &str) -> Event {
        let body = format!(
            r#"{{"EventType": "{kind}", "VideoId": "{video}", "Status": "success", "EventTime": "2025-04-01T02:20:11Z"}}"#
        );
        crate::event::decode_delivery(body.as_bytes()).unwrap().events.remove(0)
    }

    fn count(memory: &mut Memory, events: &[Event], now: i64) -> Vec<bool> {
        let fields: Vec<EventFields> = events.iter().map(fields_of).collect();
        memory.count(0, &identities(events), &fields, &[("a|sent".to_owned(), 2)], now)
    }

    #[test]
    fn each_event_counts_once_and_made_up_types_do_not_grow_a_bucket() {
        let mut memory =
            Memory { capacity: 10_000, seen_ttl: 3_600, bucket_ttl: 90_000, ..Memory::default() };
        let upload = event("FileUploadComplete", "v1");
        assert_eq!(count(&mut memory, &[upload.clone(), upload.clone()], 10), vec![true, false]);
        assert_eq!(count(&mut memory, std::slice::from_ref(&upload), 20), vec![false], "a redelivery");
        let bucket = &memory.buckets[&0];
        assert_eq!(bucket["e|FileUploadComplete"], "1");
        assert_eq!(bucket["a|sent"], "4", "the actions of both requests");
        let made_up: Vec<Event> =
            (0..MAX_BUCKET_FIELDS + 10).map(|i| event(&format!("Made{i}"), "v")).collect();
        count(&mut memory, &made_up, 30);
        let bucket = &memory.buckets[&0];
        assert!(bucket.len() <= MAX_BUCKET_FIELDS + 1, "{}", bucket.len());
        assert!(bucket["e|other"].parse::<usize>().unwrap() >= 10);
        assert_eq!(memory.since, Some(10));
    }
}
