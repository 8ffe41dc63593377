//! The replay guard against signature reuse: a captured signature cannot carry new bodies.
//!
//! VOD's signature covers the callback URL and a timestamp, not the body. Whoever sees one
//! callback's headers (a proxy's log, say) could, for the whole timestamp window (±5 min), send
//! other events with them. So the bodies seen with a signature are remembered (their SHA-256)
//! for as long as the signature is fresh: the same signature with a body seen before is VOD
//! retrying, and is accepted; with a new body it is accepted only within `[auth]
//! signature_reuse_secs` (10 s) of the signature's first use, and refused after that.
//!
//! Why not one body per signature: the signature is the same for every callback VOD sends to the
//! URL within one second (it signs `URL|timestamp|key` only), and VOD does send several events in
//! a second (a batch of tasks ending together). One body per signature would refuse those. With
//! the reuse window, a captured signature can carry forged bodies for seconds after VOD used it,
//! instead of minutes; VOD's own events of one second all arrive within it.
//!
//! Remembered in Redis when the dedup store is there (`<prefix>sig:<family>:<signature>`, one key
//! per signature, so every instance sees every signature; a single-key script, so any cluster
//! slot will do), else in this instance's memory (bounded; a forged body that lands on another
//! instance is not caught then). Redis out of reach: the signature was valid, so the callback is
//! accepted, with a warning.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::auth::Verified;
use crate::store::{RedisConn, StoreError, eval};

/// Signatures remembered at most by one instance's memory.
const MEMORY_CAPACITY: usize = 100_000;

/// What the guard makes of a body with its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Seen before with this signature (a retry), or new within the reuse window: accepted.
    SameBody,
    /// A new body for a signature first used longer ago than the reuse window: refused.
    OtherBody,
}

pub enum ReuseGuard {
    Memory(Mutex<Memory>),
    Redis(RedisConn),
}

impl std::fmt::Debug for ReuseGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReuseGuard::Memory(_) => "ReuseGuard::Memory",
            ReuseGuard::Redis(_) => "ReuseGuard::Redis",
        })
    }
}

#[derive(Default)]
pub struct Memory {
    signatures: HashMap<String, Remembered>,
    order: VecDeque<String>,
}

struct Remembered {
    first: Instant,
    expires: Instant,
    bodies: Vec<String>,
}

/// KEYS: the signature's hash (`first` = when first used, then one field per body seen).
/// ARGV: body digest, now (unix ms), reuse window (ms), expiry (s), most bodies remembered.
/// Answers 1 when the body is accepted (seen before, or new within the reuse window).
const CHECK: &str = r"
if redis.call('HSETNX', KEYS[1], 'first', ARGV[2]) == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 1 end
local first = tonumber(redis.call('HGET', KEYS[1], 'first'))
if tonumber(ARGV[2]) - first > tonumber(ARGV[3]) then return 0 end
if redis.call('HLEN', KEYS[1]) <= tonumber(ARGV[5]) then
  redis.call('HSET', KEYS[1], ARGV[1], 1)
end
return 1
";

/// Bodies remembered per signature at most (VOD sends a handful in one second).
const MAX_BODIES: usize = 1000;

impl ReuseGuard {
    pub fn memory() -> Self {
        ReuseGuard::Memory(Mutex::new(Memory::default()))
    }

    /// Checks (and remembers) `body` as a body of `verified`'s signature: remembered for `fresh`
    /// (the timestamp window both ways: after that the signature is stale anyway), new bodies
    /// taken for `reuse` after the signature's first use.
    pub async fn check(
        &self,
        verified: &Verified,
        body: &[u8],
        fresh: Duration,
        reuse: Duration,
    ) -> Result<Seen, StoreError> {
        let name = format!("sig:{}:{}", verified.family.as_str().to_ascii_lowercase(), verified.signature);
        let digest: String = Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect();
        match self {
            ReuseGuard::Memory(memory) => {
                let mut memory = memory.lock().unwrap_or_else(|p| p.into_inner());
                Ok(memory.check(name, digest, fresh, reuse))
            }
            ReuseGuard::Redis(conn) => {
                let key = conn.key(&name);
                let now_ms = chrono::Utc::now().timestamp_millis();
                let reuse_ms = u64::try_from(reuse.as_millis()).unwrap_or(u64::MAX);
                let accepted: i64 = conn
                    .run(|mut c| {
                        let cmd = eval(CHECK, &key)
                            .arg(&digest)
                            .arg(now_ms)
                            .arg(reuse_ms)
                            .arg(fresh.as_secs().max(1))
                            .arg(MAX_BODIES)
                            .to_owned();
                        async move { cmd.query_async(&mut c).await }
                    })
                    .await?;
                match accepted {
                    1 => Ok(Seen::SameBody),
                    0 => Ok(Seen::OtherBody),
                    answer => Err(StoreError::Unexpected { what: "the replay guard", answer }),
                }
            }
        }
    }
}

impl Memory {
    fn check(&mut self, name: String, digest: String, fresh: Duration, reuse: Duration) -> Seen {
        let now = Instant::now();
        if let Some(seen) = self.signatures.get_mut(&name)
            && seen.expires > now
        {
            if seen.bodies.contains(&digest) {
                return Seen::SameBody;
            }
            if now.duration_since(seen.first) > reuse {
                return Seen::OtherBody;
            }
            if seen.bodies.len() < MAX_BODIES {
                seen.bodies.push(digest);
            }
            return Seen::SameBody;
        }
        while self.signatures.len() >= MEMORY_CAPACITY {
            let Some(oldest) = self.order.pop_front() else { break };
            self.signatures.remove(&oldest);
        }
        self.order.push_back(name.clone());
        self.signatures.insert(name, Remembered { first: now, expires: now + fresh, bodies: vec![digest] });
        Seen::SameBody
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Family, KeyUsed};

    fn verified(signature: &str) -> Verified {
        Verified { family: Family::Vod, key: KeyUsed::Current, signature: signature.into() }
    }

    #[tokio::test]
    async fn a_signature_takes_new_bodies_only_shortly_after_its_first_use() {
        let guard = ReuseGuard::memory();
        let (fresh, reuse) = (Duration::from_secs(600), Duration::from_millis(200));
        let sig = verified("c72b60894140fa98920f1279219b7ed4");
        assert_eq!(guard.check(&sig, b"event A", fresh, reuse).await.unwrap(), Seen::SameBody);
        // VOD's other events of the same second: the same signature, other bodies.
        assert_eq!(guard.check(&sig, b"event B", fresh, reuse).await.unwrap(), Seen::SameBody);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(guard.check(&sig, b"event A", fresh, reuse).await.unwrap(), Seen::SameBody, "VOD's retry");
        assert_eq!(guard.check(&sig, b"event B", fresh, reuse).await.unwrap(), Seen::SameBody, "VOD's retry");
        assert_eq!(guard.check(&sig, b"forged", fresh, reuse).await.unwrap(), Seen::OtherBody);
        // An IMS signature with the same value is another key.
        let ims = Verified { family: Family::Ims, ..sig.clone() };
        assert_eq!(guard.check(&ims, b"forged", fresh, reuse).await.unwrap(), Seen::SameBody);
    }
}
