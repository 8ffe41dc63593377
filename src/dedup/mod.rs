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
//! outbox holds the action (`Outbox::contains`), in which case `200` is safe.
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

use std::hash::Hash;
use std::time::Duration;

pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;
pub use crate::store::StoreError;

use crate::store::RedisConn;

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
    fn new() -> Self {
        Self(crate::unique::hex())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl DedupStore {
    /// A per-instance store remembering at most `capacity` keys.
    pub fn memory(capacity: usize) -> Self {
        DedupStore::Memory(MemoryStore::new(capacity))
    }

    /// The shared store on `conn`.
    pub fn redis(conn: RedisConn) -> Self {
        DedupStore::Redis(RedisStore::new(conn))
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

/// Beside the claims: a small cache (what the VOD API said of a video, shared by instances so
/// that one event costs one call) and the repeat guard of `vod` channels.
impl DedupStore {
    /// The value cached under `key`, if it has not expired.
    pub async fn cache_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        match self {
            DedupStore::Memory(m) => Ok(m.cache_get(key)),
            DedupStore::Redis(r) => r.cache_get(key).await,
        }
    }

    /// Caches `value` under `key` for `ttl`.
    pub async fn cache_put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        match self {
            DedupStore::Memory(m) => {
                m.cache_put(key, value, ttl);
                Ok(())
            }
            DedupStore::Redis(r) => r.cache_put(key, value, ttl).await,
        }
    }

    /// Whether `member` may be one of the at most `max` members of the set `key` (kept for
    /// `ttl` after its last addition): `true` if it already is, or was added now.
    pub async fn admit(&self, key: &str, member: &str, max: u32, ttl: Duration) -> Result<bool, StoreError> {
        match self {
            DedupStore::Memory(m) => Ok(m.admit(key, member, max, ttl)),
            DedupStore::Redis(r) => r.admit(key, member, max, ttl).await,
        }
    }
}

impl DedupStore {
    /// The value of `key`: `value`, set now for `ttl`, unless the key holds one already (then
    /// that one). What the members of a group agree on: the group's due time, set by its first.
    pub async fn first_value(&self, key: &str, value: &str, ttl: Duration) -> Result<String, StoreError> {
        match self {
            DedupStore::Memory(m) => {
                let cache_key = format!("first:{key}");
                if let Some(found) = m.cache_get(&cache_key) {
                    return Ok(found);
                }
                m.cache_put(&cache_key, value, ttl);
                Ok(value.to_owned())
            }
            DedupStore::Redis(r) => r.first_value(key, value, ttl).await,
        }
    }
}

/// Open failures, for resolved notices (`dispatch::resolve`): per (video, workflow) a hash of
/// `<channel>|<task id>` → what the notice said, kept `ttl` after its last failure.
impl DedupStore {
    /// Records one delivered failure notice.
    pub async fn open_put(
        &self,
        key: &str,
        field: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        match self {
            DedupStore::Memory(m) => {
                m.open_put(key, field, value, ttl);
                Ok(())
            }
            DedupStore::Redis(r) => r.open_put(key, field, value, ttl).await,
        }
    }

    /// Every open failure of `key` (nothing once it expired).
    pub async fn open_get(&self, key: &str) -> Result<Vec<(String, String)>, StoreError> {
        match self {
            DedupStore::Memory(m) => Ok(m.open_get(key)),
            DedupStore::Redis(r) => r.open_get(key).await,
        }
    }

    /// Closes the failures `fields` of `key`: they were resolved.
    pub async fn open_close(&self, key: &str, fields: &[String]) -> Result<(), StoreError> {
        match self {
            DedupStore::Memory(m) => {
                m.open_close(key, fields);
                Ok(())
            }
            DedupStore::Redis(r) => r.open_close(key, fields).await,
        }
    }
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
}
