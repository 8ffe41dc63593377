//! Deduplication: each action is sent once in effect, although VOD delivers each callback at
//! least once and many instances run side by side.
//!
//! # Protocol
//!
//! Every sender of an action (the callback path, the outbox drain) follows the same three steps,
//! keyed by the action's idempotency key ([`crate::action::Action::key`]):
//!
//! 1. **Claim** before sending: `SET <prefix>dedup:<key> <token> NX PX <lease>` with a fresh
//!    random token. Success → [`Claim::Acquired`]: this caller, and nobody else, may send now.
//!    Finding the value `done` → [`Claim::AlreadyDone`]: sent before, answer `200`, send nothing.
//!    Finding another token → [`Claim::InFlight`]: someone is sending it right now.
//! 2. **Complete** after a successful send: atomically (one Lua script) replace the value by
//!    `done` with the long TTL (`ttl_secs`, default 7 days) — only if the value is still our
//!    token (or gone: the lease ran out and nobody took over, so marking it done is still true).
//!    If another token is there, the lease was lost and someone else may be sending a duplicate:
//!    [`StoreError::LeaseLost`], for the caller to log.
//! 3. **Release** after a failed send: delete the key, only if it still holds our token, so the
//!    next delivery (VOD's retry, the outbox drain) can claim it at once.
//!
//! **An instance that dies holding a lease** (crash, OOM, FC freezing it mid-request) neither
//! completes nor releases. Nothing is stuck: the key expires after `lease_ms`, and a delivery
//! after that claims and sends again. If the dead instance had already sent, that is a duplicate:
//! delivery is *at least once, with a duplicate window of one lease*. The lease must therefore
//! outlast one send with its retries (the callback deadline, 4 s), and should not be much
//! longer, or a crashed claim delays the retry by that much.
//!
//! **What to answer VOD on [`Claim::InFlight`]:** `503`, so that VOD retries later — unless the
//! outbox holds the action ([`crate::outbox::Outbox::contains`]), in which case `200` is safe.
//! Why: the holder of the lease may still fail or die. If we answered `200`, VOD would stop
//! retrying and, should the holder fail, nobody would ever send the action: a loss. A `503` costs
//! one more VOD delivery, which then finds `done` (answer `200`) or a free key (send). With the
//! outbox holding the action, a failure of the holder is retried from the outbox, so the
//! sender's retries are not needed.
//!
//! **The store unreachable** ([`StoreError::is_unreachable`]): the caller keeps delivering without
//! dedup, logs a warning and reports it in the response — a duplicate is better than a loss.
//!
//! # Backends
//!
//! - [`MemoryStore`] (default): per instance, bounded, in-process. Dedups VOD's retries that
//!   land on the same instance only.
//! - [`RedisStore`]: shared by all instances (ApsaraDB for Redis, ElastiCache). The connection is
//!   made on first use, never at start-up (cold starts).

mod memory;
mod redis;

use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use self::memory::MemoryStore;
pub(crate) use self::redis::RedisConn;
pub use self::redis::RedisStore;

use crate::config::{DedupBackend, DedupConfig};
use crate::outbox::Outbox;

/// The value a completed action's key holds. Tokens are hex and can never equal it.
const DONE: &str = "done";

/// A shared or per-instance memory of which actions were sent.
pub enum DedupStore {
    Memory(MemoryStore),
    Redis(RedisStore),
}

/// What [`DedupStore::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The caller holds the action until the lease ends: send it, then complete or release.
    Acquired(ClaimToken),
    /// Sent before (within the TTL): send nothing, the sender may stop retrying.
    AlreadyDone,
    /// Another delivery holds a lease on it right now: see the module doc for the answer.
    InFlight,
}

/// Proof of a claim: the random value stored under the key while the lease holds. Only its
/// holder can complete or release the claim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimToken(String);

impl ClaimToken {
    /// 128 unpredictable bits in hex, unique across instances. Made from std's randomly keyed
    /// SipHash (seeded by the OS per process) over a counter and the clock: no RNG crate needed
    /// for a value that only has to be unique, not secret.
    fn new() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let seed = (n, nanos, std::process::id());
        let a = std::collections::hash_map::RandomState::new().hash_one(seed);
        let b = std::collections::hash_map::RandomState::new().hash_one((seed, a));
        Self(format!("{a:016x}{b:016x}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The `[dedup]` settings cannot work (no URL, a URL that does not parse, ...).
    #[error("[dedup] configuration: {0}")]
    Config(String),
    /// Redis could not be reached or did not answer in time. Keep delivering without dedup.
    #[error("Redis at {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    /// Redis answered with an error (authentication, permissions, wrong key type, ...).
    #[error("Redis at {url} answered with an error: {reason}")]
    Redis { url: String, reason: String },
    /// The lease ran out and another delivery claimed the action before this one completed it:
    /// the action may be sent twice. Raise the lease if this happens.
    #[error("the claim on `{key}` was lost (lease expired and taken over): it may be sent twice")]
    LeaseLost { key: String },
    /// An outbox entry that does not decode (written by an incompatible version).
    #[error("outbox entry `{key}` is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
}

impl StoreError {
    /// True when the store was out of reach (connection refused or dropped, timeout, Redis
    /// loading or read-only): the caller should deliver anyway and report it.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, StoreError::Unreachable { .. })
    }
}

impl DedupStore {
    /// The store `[dedup]` asks for. Makes no connection: Redis is dialled on first use.
    pub fn from_config(c: &DedupConfig) -> Result<Self, StoreError> {
        match c.backend {
            DedupBackend::Memory => Ok(DedupStore::Memory(MemoryStore::new(c.capacity))),
            DedupBackend::Redis => Ok(DedupStore::Redis(RedisStore::new(RedisConn::open(c)?))),
        }
    }

    /// `"memory"` or `"redis"`, for logs and response bodies.
    pub fn backend_name(&self) -> &'static str {
        match self {
            DedupStore::Memory(_) => "memory",
            DedupStore::Redis(_) => "redis",
        }
    }

    /// The outbox on the same Redis connection, or `None` with the memory backend (no shared
    /// place to keep undelivered actions: the callback must then answer `503` instead).
    pub fn outbox(&self) -> Option<Outbox> {
        match self {
            DedupStore::Memory(_) => None,
            DedupStore::Redis(r) => Some(Outbox::new(r.conn().clone())),
        }
    }

    /// Step 1 of the protocol: try to take the action `key` for `lease`.
    pub async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, StoreError> {
        match self {
            DedupStore::Memory(m) => Ok(m.claim(key, lease)),
            DedupStore::Redis(r) => r.claim(key, lease).await,
        }
    }

    /// Step 2: the action was sent; remember that for `ttl`.
    pub async fn complete(&self, key: &str, token: &ClaimToken, ttl: Duration) -> Result<(), StoreError> {
        match self {
            DedupStore::Memory(m) => m.complete(key, token, ttl),
            DedupStore::Redis(r) => r.complete(key, token, ttl).await,
        }
    }

    /// Step 3: the send failed; free the action for the next delivery. A no-op when the claim is
    /// no longer ours.
    pub async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        match self {
            DedupStore::Memory(m) => {
                m.release(key, token);
                Ok(())
            }
            DedupStore::Redis(r) => r.release(key, token).await,
        }
    }
}

/// Milliseconds for `PX`: at least 1 (Redis rejects 0), at most what Redis accepts.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).clamp(1, i64::MAX as u64 / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_hex_and_never_done() {
        let tokens: std::collections::HashSet<String> = (0..10_000).map(|_| ClaimToken::new().0).collect();
        assert_eq!(tokens.len(), 10_000);
        for t in &tokens {
            assert_eq!(t.len(), 32);
            assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
            assert_ne!(t, DONE);
        }
    }

    #[test]
    fn millis_stay_in_redis_range() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_secs(2)), 2000);
        assert_eq!(millis(Duration::MAX), i64::MAX as u64 / 2);
    }

    #[test]
    fn redis_config_without_url_is_a_clear_error() {
        let c = DedupConfig { backend: DedupBackend::Redis, url: None, ..DedupConfig::default() };
        let err = DedupStore::from_config(&c).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("url"), "{err}");
    }
}
