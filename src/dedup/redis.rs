//! The shared dedup store on Redis: keys `<prefix>dedup:<action key>`, each step of the protocol
//! one Lua script on that one key (one round trip, atomic on the server, and on a Redis Cluster
//! always in one slot). Every script is idempotent for a given token, which is what
//! [`RedisConn::run`]'s retry after a dropped connection needs.

use std::time::Duration;

use super::{Claim, ClaimToken, DONE};
use crate::store::{RedisConn, StoreError, eval, millis};

/// Step 1. Returns 1 (acquired), 2 (done) or 3 (in flight). Seeing our own token again means
/// this is the retry of a call whose reply was lost: still acquired.
const CLAIM: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then return 1 end
if v == ARGV[3] then return 2 end
return 3
";

/// Step 2. Returns 1 (done) or 0 (another token holds the key: lease lost).
const COMPLETE: &str = r"
local v = redis.call('GET', KEYS[1])
if v == ARGV[3] then return 1 end
if v == ARGV[1] or v == false then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2])
  return 1
end
return 0
";

/// Step 3. Deletes the key only while it holds our token.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Admits ARGV[1] to the set KEYS[1] if it is a member already or the set has fewer than
/// ARGV[2] members; then keeps the set ARGV[3] ms. Returns 1 if admitted.
const ADMIT: &str = r"
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

/// Sets field ARGV[1] of the hash KEYS[1] to ARGV[2], then keeps the hash ARGV[3] ms.
const OPEN_PUT: &str = r"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

/// Sets KEYS[1] to ARGV[1] for ARGV[2] ms unless it is set; returns its value.
const FIRST: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
return redis.call('GET', KEYS[1])
";

/// The dedup store on Redis: keys `<prefix>dedup:<action key>` (and `<prefix>cache:<key>`,
/// `<prefix>guard:<key>` for the cache and the repeat guard, `<prefix>open:<video>|<workflow>`
/// for open failures).
#[derive(Clone)]
pub struct RedisStore {
    conn: RedisConn,
}

impl RedisStore {
    pub fn new(conn: RedisConn) -> Self {
        Self { conn }
    }

    fn key(&self, key: &str) -> String {
        self.conn.key(&format!("dedup:{key}"))
    }

    pub async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, StoreError> {
        let token = ClaimToken::new();
        let cmd = eval(CLAIM, &self.key(key)).arg(token.as_str()).arg(millis(lease)).arg(DONE).to_owned();
        let code: i64 = self.conn.query(&cmd).await?;
        match code {
            3 => Ok(Claim::InFlight),
            1 => Ok(Claim::Acquired(token)),
            2 => Ok(Claim::AlreadyDone),
            answer => Err(StoreError::Unexpected { what: "a claim", answer }),
        }
    }

    pub async fn complete(&self, key: &str, token: &ClaimToken, ttl: Duration) -> Result<(), StoreError> {
        let cmd = eval(COMPLETE, &self.key(key)).arg(token.as_str()).arg(millis(ttl)).arg(DONE).to_owned();
        let code: i64 = self.conn.query(&cmd).await?;
        match code {
            1 => Ok(()),
            0 => Err(StoreError::LeaseLost { key: key.to_owned() }),
            answer => Err(StoreError::Unexpected { what: "a completion", answer }),
        }
    }

    pub async fn cache_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let cmd = redis::cmd("GET").arg(self.conn.key(&format!("cache:{key}"))).to_owned();
        self.conn.query(&cmd).await
    }

    pub async fn cache_put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        let cmd = redis::cmd("SET")
            .arg(self.conn.key(&format!("cache:{key}")))
            .arg(value)
            .arg("PX")
            .arg(millis(ttl).max(1))
            .to_owned();
        self.conn.query::<()>(&cmd).await
    }

    pub async fn admit(&self, key: &str, member: &str, max: u32, ttl: Duration) -> Result<bool, StoreError> {
        let cmd = eval(ADMIT, &self.conn.key(&format!("guard:{key}")))
            .arg(member)
            .arg(max)
            .arg(millis(ttl).max(1))
            .to_owned();
        Ok(self.conn.query::<i64>(&cmd).await? == 1)
    }

    pub async fn open_put(
        &self,
        key: &str,
        field: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let cmd =
            eval(OPEN_PUT, &self.open_key(key)).arg(field).arg(value).arg(millis(ttl).max(1)).to_owned();
        self.conn.query::<i64>(&cmd).await.map(|_| ())
    }

    pub async fn open_get(&self, key: &str) -> Result<Vec<(String, String)>, StoreError> {
        let cmd = redis::cmd("HGETALL").arg(self.open_key(key)).to_owned();
        self.conn.query(&cmd).await
    }

    pub async fn open_close(&self, key: &str, fields: &[String]) -> Result<(), StoreError> {
        if fields.is_empty() {
            return Ok(());
        }
        let cmd = redis::cmd("HDEL").arg(self.open_key(key)).arg(fields).to_owned();
        self.conn.query::<i64>(&cmd).await.map(|_| ())
    }

    pub async fn first_value(&self, key: &str, value: &str, ttl: Duration) -> Result<String, StoreError> {
        let cmd = eval(FIRST, &self.conn.key(&format!("first:{key}")))
            .arg(value)
            .arg(millis(ttl).max(1))
            .to_owned();
        self.conn.query(&cmd).await
    }

    fn open_key(&self, key: &str) -> String {
        self.conn.key(&format!("open:{key}"))
    }

    pub async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        let cmd = eval(RELEASE, &self.key(key)).arg(token.as_str()).to_owned();
        self.conn.query::<i64>(&cmd).await.map(drop)
    }
}
