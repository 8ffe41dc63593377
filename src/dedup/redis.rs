//! The shared store on Redis, and the lazily made Redis connection the outbox shares.
//!
//! Each step of the protocol is one Lua script (one round trip, atomic on the server). Scripts
//! are sent with `EVAL`: they are a few hundred bytes, Redis caches them by hash anyway, and
//! unlike `EVALSHA` nothing has to be re-loaded after Redis restarts.
//!
//! Every script is idempotent for a given token, so a call whose connection dropped is retried
//! once on the reconnected connection (the connection manager reconnects on the failed call):
//! the first call after a Redis restart then succeeds instead of failing.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, RedisResult, ServerErrorKind};
use tokio::sync::OnceCell;

use super::{Claim, ClaimToken, DONE, StoreError, millis};
use crate::config::DedupConfig;
use crate::redact::{Secret, redact_url};

/// Dialling Redis gives up after this; a callback has 4 s in all.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// One command gives up after this.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
/// One store operation (including the retry after a dropped connection) gives up after this,
/// whatever happens below, so that a blackholed Redis costs a callback at most this much.
const OPERATION_BUDGET: Duration = Duration::from_millis(1_200);

/// A Redis connection made on first use, shared by clones, reconnecting after failures.
#[derive(Clone)]
pub(crate) struct RedisConn(Arc<Inner>);

struct Inner {
    client: redis::Client,
    manager: OnceCell<ConnectionManager>,
    /// The URL fit for messages: no password, no path.
    shown_url: String,
    /// The password (as written and decoded), to scrub from any message Redis or the client library produces.
    hidden: Vec<Secret>,
    prefix: String,
}

impl RedisConn {
    /// Checks the URL; connects nothing.
    pub(crate) fn open(c: &DedupConfig) -> Result<Self, StoreError> {
        let url = c.url.as_ref().filter(|u| !u.is_empty()).ok_or_else(|| {
            StoreError::Config("backend \"redis\" needs `url` (e.g. \"${REDIS_URL}\")".to_owned())
        })?;
        let shown_url = redact_url(url.expose());
        let mut hidden = Vec::new();
        if let Ok(parsed) = url::Url::parse(url.expose())
            && let Some(p) = parsed.password().filter(|p| !p.is_empty())
        {
            hidden.push(Secret::new(p));
        }
        let client = redis::Client::open(url.expose()).map_err(|e| {
            let reason = scrub(&e.to_string(), &hidden);
            StoreError::Config(format!("`url` {shown_url} is not a usable Redis URL: {reason}"))
        })?;
        // The credentials as the library decoded them (percent-escapes resolved) are what it
        // would ever print.
        let settings = client.get_connection_info().redis_settings();
        if let Some(p) = settings.password().filter(|p| !p.is_empty()) {
            hidden.push(Secret::new(p));
        }
        Ok(Self(Arc::new(Inner {
            client,
            manager: OnceCell::new(),
            shown_url,
            hidden,
            prefix: c.key_prefix.clone(),
        })))
    }

    /// `<prefix><name>`.
    pub(crate) fn key(&self, name: &str) -> String {
        format!("{}{name}", self.0.prefix)
    }

    /// Runs `op` on the connection (made now if this is the first use), retrying once when the
    /// connection turns out to be dead, all within [`OPERATION_BUDGET`]. `op` must be safe to
    /// run twice.
    pub(crate) async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let attempt = async {
            let conn = self.manager().await?;
            match op(conn.clone()).await {
                Err(e) if is_unreachable(&e) => op(conn).await,
                other => other,
            }
        };
        match tokio::time::timeout(OPERATION_BUDGET, attempt).await {
            Ok(result) => result.map_err(|e| self.error(&e)),
            Err(_) => Err(StoreError::Unreachable {
                url: self.0.shown_url.clone(),
                reason: format!("no answer within {} ms", OPERATION_BUDGET.as_millis()),
            }),
        }
    }

    /// The connection manager, created on first use. Creating it dials nothing: the first
    /// command does, and all concurrent first commands share that one attempt.
    async fn manager(&self) -> RedisResult<ConnectionManager> {
        let manager = self
            .0
            .manager
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    // No backoff loop inside one call: while Redis is down each call fails fast
                    // and triggers the next reconnection attempt itself.
                    .set_number_of_retries(0);
                ConnectionManager::new_lazy_with_config(self.0.client.clone(), config)
            })
            .await?;
        Ok(manager.clone())
    }

    pub(crate) fn error(&self, e: &RedisError) -> StoreError {
        let url = self.0.shown_url.clone();
        let reason = scrub(&e.to_string(), &self.0.hidden);
        if is_unreachable(e) {
            StoreError::Unreachable { url, reason }
        } else {
            StoreError::Redis { url, reason }
        }
    }
}

/// Errors that mean "Redis is not there right now" rather than "Redis said no".
fn is_unreachable(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
            )
        )
}

fn scrub(message: &str, hidden: &[Secret]) -> String {
    hidden.iter().fold(message.to_owned(), |m, s| m.replace(s.expose(), "***"))
}

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

/// The dedup store on Redis: keys `<prefix>dedup:<action key>`.
#[derive(Clone)]
pub struct RedisStore {
    conn: RedisConn,
}

impl RedisStore {
    pub(crate) fn new(conn: RedisConn) -> Self {
        Self { conn }
    }

    pub(crate) fn conn(&self) -> &RedisConn {
        &self.conn
    }

    fn key(&self, key: &str) -> String {
        self.conn.key(&format!("dedup:{key}"))
    }

    pub async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, StoreError> {
        let token = ClaimToken::new();
        let redis_key = self.key(key);
        let lease = millis(lease);
        let code: i64 = self
            .conn
            .run(|mut c| {
                let cmd = eval(CLAIM, &redis_key).arg(token.as_str()).arg(lease).arg(DONE).to_owned();
                async move { cmd.query_async(&mut c).await }
            })
            .await?;
        Ok(match code {
            1 => Claim::Acquired(token),
            2 => Claim::AlreadyDone,
            _ => Claim::InFlight,
        })
    }

    pub async fn complete(&self, key: &str, token: &ClaimToken, ttl: Duration) -> Result<(), StoreError> {
        let redis_key = self.key(key);
        let ttl = millis(ttl);
        let code: i64 = self
            .conn
            .run(|mut c| {
                let cmd = eval(COMPLETE, &redis_key).arg(token.as_str()).arg(ttl).arg(DONE).to_owned();
                async move { cmd.query_async(&mut c).await }
            })
            .await?;
        if code == 1 { Ok(()) } else { Err(StoreError::LeaseLost { key: key.to_owned() }) }
    }

    pub async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        let redis_key = self.key(key);
        let _: i64 = self
            .conn
            .run(|mut c| {
                let cmd = eval(RELEASE, &redis_key).arg(token.as_str()).to_owned();
                async move { cmd.query_async(&mut c).await }
            })
            .await?;
        Ok(())
    }
}

/// `EVAL <script> 1 <key>`, ready for the script's arguments.
pub(crate) fn eval(script: &str, key: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script).arg(1).arg(key);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DedupBackend;

    fn config(url: &str) -> DedupConfig {
        DedupConfig { backend: DedupBackend::Redis, url: Some(Secret::new(url)), ..DedupConfig::default() }
    }

    #[test]
    fn opening_connects_nothing_and_checks_the_url() {
        // Nothing listens on port 1; opening must still succeed (no connection yet).
        assert!(RedisConn::open(&config("redis://:pw@127.0.0.1:1/0")).is_ok());
        let err = RedisConn::open(&config("http://user:hunter22@example.com/")).err().map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(err.contains("not a usable Redis URL"), "{err}");
        assert!(!err.contains("hunter22"), "{err}");
    }

    #[test]
    fn messages_lose_credentials() {
        let conn = RedisConn::open(&config("redis://me:p%40ss%20word@127.0.0.1:1/")).unwrap();
        let scrubbed = scrub("auth p@ss word or p%40ss%20word failed", &conn.0.hidden);
        assert_eq!(scrubbed, "auth *** or *** failed");
    }
}
