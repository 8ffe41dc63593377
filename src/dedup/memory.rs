//! The per-instance store: a bounded map behind one mutex.
//!
//! Same semantics as the Redis protocol (see the parent module), but only this instance sees
//! it. Every operation is O(1) amortised and never awaits while holding the lock.
//!
//! Bounded: at `capacity` keys, inserting evicts the oldest inserted key. Keys are inserted in
//! time order with nearly equal TTLs, so the oldest is also the first to expire (or already has);
//! evicting it early only shortens how long that action is remembered.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{Claim, ClaimToken, StoreError};

/// Per-instance dedup memory.
pub struct MemoryStore {
    capacity: usize,
    state: Mutex<State>,
    /// The cache, the repeat guard and the open failures (see the parent module), bounded by
    /// `capacity` too; boxed, as the part most processes never use.
    extras: Box<Mutex<Extras>>,
}

#[derive(Default)]
struct Extras {
    cache: HashMap<String, (String, Instant)>,
    guards: HashMap<String, (std::collections::HashSet<String>, Instant)>,
    /// Open failures (see `DedupStore::open_put`): key → (field → value, expiry).
    open: HashMap<String, (HashMap<String, String>, Instant)>,
}

#[derive(Default)]
struct State {
    entries: HashMap<Arc<str>, Entry>,
    /// Keys in insertion order, each with the `seq` of the entry it was pushed for. Entries
    /// removed or re-inserted since leave stale items here, skipped on eviction and dropped by
    /// `compact`.
    order: VecDeque<(u64, Arc<str>)>,
    next_seq: u64,
}

struct Entry {
    value: Value,
    expires: Instant,
    seq: u64,
}

enum Value {
    Held(ClaimToken),
    Done,
}

impl MemoryStore {
    /// A store remembering at most `capacity` keys (at least one).
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), state: Mutex::new(State::default()), extras: Box::default() }
    }

    /// Keys currently remembered, expired ones included until they are evicted or replaced.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn claim(&self, key: &str, lease: Duration) -> Claim {
        let now = Instant::now();
        let mut state = self.lock();
        match state.live(key, now) {
            Some(Entry { value: Value::Done, .. }) => Claim::AlreadyDone,
            Some(Entry { value: Value::Held(_), .. }) => Claim::InFlight,
            None => {
                let token = ClaimToken::new();
                state.insert(key, Value::Held(token.clone()), deadline(now, lease), self.capacity);
                Claim::Acquired(token)
            }
        }
    }

    pub fn complete(&self, key: &str, token: &ClaimToken, ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        match state.live(key, now) {
            Some(entry) => match &entry.value {
                Value::Done => Ok(()),
                Value::Held(held) if held == token => {
                    entry.value = Value::Done;
                    entry.expires = deadline(now, ttl);
                    Ok(())
                }
                Value::Held(_) => Err(StoreError::LeaseLost { key: key.to_owned() }),
            },
            // Our lease ran out and nobody took over: the action was sent, so say so.
            None => {
                state.insert(key, Value::Done, deadline(now, ttl), self.capacity);
                Ok(())
            }
        }
    }

    pub fn release(&self, key: &str, token: &ClaimToken) {
        let now = Instant::now();
        let mut state = self.lock();
        if matches!(state.live(key, now), Some(Entry { value: Value::Held(held), .. }) if held == token) {
            state.entries.remove(key);
        }
    }

    pub fn cache_get(&self, key: &str) -> Option<String> {
        let extras = self.extras();
        extras.cache.get(key).filter(|(_, expires)| *expires > Instant::now()).map(|(v, _)| v.clone())
    }

    pub fn cache_put(&self, key: &str, value: &str, ttl: Duration) {
        let now = Instant::now();
        let mut extras = self.extras();
        if extras.cache.len() >= self.capacity {
            extras.cache.retain(|_, (_, expires)| *expires > now);
        }
        if extras.cache.len() < self.capacity {
            extras.cache.insert(key.to_owned(), (value.to_owned(), deadline(now, ttl)));
        }
    }

    pub fn admit(&self, key: &str, member: &str, max: u32, ttl: Duration) -> bool {
        let now = Instant::now();
        let mut extras = self.extras();
        if extras.guards.len() >= self.capacity {
            extras.guards.retain(|_, (_, expires)| *expires > now);
        }
        let entry = extras.guards.entry(key.to_owned()).or_insert_with(|| (Default::default(), now));
        if entry.1 <= now {
            entry.0.clear();
        }
        if entry.0.contains(member) {
            return true;
        }
        if entry.0.len() >= max as usize {
            return false;
        }
        entry.0.insert(member.to_owned());
        entry.1 = deadline(now, ttl);
        true
    }

    pub fn open_put(&self, key: &str, field: &str, value: &str, ttl: Duration) {
        let now = Instant::now();
        let mut extras = self.extras();
        if extras.open.len() >= self.capacity {
            extras.open.retain(|_, (_, expires)| *expires > now);
        }
        if extras.open.len() >= self.capacity && !extras.open.contains_key(key) {
            tracing::warn!(
                capacity = self.capacity,
                "open failures at capacity: this one cannot be resolved"
            );
            return;
        }
        let entry = extras.open.entry(key.to_owned()).or_insert_with(|| (HashMap::new(), now));
        if entry.1 <= now {
            entry.0.clear();
        }
        entry.0.insert(field.to_owned(), value.to_owned());
        entry.1 = deadline(now, ttl);
    }

    pub fn open_get(&self, key: &str) -> Vec<(String, String)> {
        let extras = self.extras();
        match extras.open.get(key) {
            Some((fields, expires)) if *expires > Instant::now() => {
                fields.iter().map(|(f, v)| (f.clone(), v.clone())).collect()
            }
            _ => Vec::new(),
        }
    }

    pub fn open_close(&self, key: &str, fields: &[String]) {
        let mut extras = self.extras();
        if let Some((open, _)) = extras.open.get_mut(key) {
            for field in fields {
                open.remove(field);
            }
            if open.is_empty() {
                extras.open.remove(key);
            }
        }
    }

    fn extras(&self) -> MutexGuard<'_, Extras> {
        self.extras.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the map inconsistent in a way that
        // matters for dedup (worst case an entry is missing), so keep serving.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    /// The entry for `key` unless it has expired.
    fn live(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        self.entries.get_mut(key).filter(|e| e.expires > now)
    }

    fn insert(&mut self, key: &str, value: Value, expires: Instant, capacity: usize) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let key: Arc<str> = match self.entries.get_key_value(key) {
            Some((existing, _)) => existing.clone(),
            None => {
                while self.entries.len() >= capacity {
                    if !self.evict_oldest() {
                        break;
                    }
                }
                Arc::from(key)
            }
        };
        self.entries.insert(key.clone(), Entry { value, expires, seq });
        self.order.push_back((seq, key));
        if self.order.len() > 2 * capacity + 64 {
            self.compact();
        }
    }

    /// Removes the oldest inserted entry; false when there is none.
    fn evict_oldest(&mut self) -> bool {
        while let Some((seq, key)) = self.order.pop_front() {
            if self.entries.get(&key).is_some_and(|e| e.seq == seq) {
                self.entries.remove(&key);
                return true;
            }
        }
        false
    }

    /// Drops stale order items so that `order` stays within a constant factor of `entries`.
    fn compact(&mut self) {
        let entries = &self.entries;
        self.order.retain(|(seq, key)| entries.get(key).is_some_and(|e| e.seq == *seq));
    }
}

fn deadline(now: Instant, d: Duration) -> Instant {
    // A TTL too large for the clock means "for as long as this process lives".
    now.checked_add(d).or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400))).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(3600);

    fn token(c: Claim) -> ClaimToken {
        match c {
            Claim::Acquired(t) => t,
            other => panic!("expected Acquired, got {other:?}"),
        }
    }

    #[test]
    fn claim_complete_release() {
        let m = MemoryStore::new(10);
        let t = token(m.claim("a", LONG));
        assert_eq!(m.claim("a", LONG), Claim::InFlight);
        m.release("a", &t);
        let t = token(m.claim("a", LONG));
        m.complete("a", &t, LONG).unwrap();
        assert_eq!(m.claim("a", LONG), Claim::AlreadyDone);
        // Completing twice (a retried call) is fine.
        m.complete("a", &t, LONG).unwrap();
    }

    #[test]
    fn only_the_holder_releases_or_completes() {
        let m = MemoryStore::new(10);
        let t = token(m.claim("a", LONG));
        let stranger = ClaimToken::new();
        m.release("a", &stranger);
        assert_eq!(m.claim("a", LONG), Claim::InFlight);
        assert!(matches!(m.complete("a", &stranger, LONG), Err(StoreError::LeaseLost { .. })));
        m.complete("a", &t, LONG).unwrap();
    }

    #[test]
    fn expired_lease_can_be_claimed_and_the_late_holder_loses_it() {
        let m = MemoryStore::new(10);
        let first = token(m.claim("a", Duration::ZERO));
        let second = token(m.claim("a", LONG));
        assert!(matches!(m.complete("a", &first, LONG), Err(StoreError::LeaseLost { .. })));
        m.release("a", &first);
        assert_eq!(m.claim("a", LONG), Claim::InFlight);
        m.complete("a", &second, LONG).unwrap();
    }

    #[test]
    fn completing_after_expiry_with_no_taker_marks_done() {
        let m = MemoryStore::new(10);
        let t = token(m.claim("a", Duration::ZERO));
        m.complete("a", &t, LONG).unwrap();
        assert_eq!(m.claim("a", LONG), Claim::AlreadyDone);
    }

    #[test]
    fn done_expires_after_ttl() {
        let m = MemoryStore::new(10);
        let t = token(m.claim("a", LONG));
        m.complete("a", &t, Duration::ZERO).unwrap();
        assert!(matches!(m.claim("a", LONG), Claim::Acquired(_)));
    }

    #[test]
    fn bounded_evicting_the_oldest() {
        let m = MemoryStore::new(3);
        for k in ["a", "b", "c", "d"] {
            let t = token(m.claim(k, LONG));
            m.complete(k, &t, LONG).unwrap();
        }
        assert_eq!(m.len(), 3);
        assert!(matches!(m.claim("a", LONG), Claim::Acquired(_)), "oldest evicted");
        assert_eq!(m.claim("c", LONG), Claim::AlreadyDone);
        assert_eq!(m.claim("d", LONG), Claim::AlreadyDone);
    }

    #[test]
    fn churn_keeps_the_order_queue_bounded() {
        let m = MemoryStore::new(8);
        for i in 0..10_000 {
            let key = format!("k{}", i % 5);
            if let Claim::Acquired(t) = m.claim(&key, LONG) {
                m.release(&key, &t);
            }
        }
        let state = m.lock();
        assert!(state.order.len() <= 2 * 8 + 64, "{}", state.order.len());
        assert!(state.entries.len() <= 8);
    }
}
