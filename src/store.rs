//! The Redis connection every shared piece of state uses: the dedup store, the outbox (and, as
//! they come, rate budgets and digests). One lazily made connection per process, one error type
//! that says whether Redis was out of reach or said no, credentials scrubbed from every message,
//! and the helpers to run Lua scripts.
//!
//! Scripts are sent with `EVAL`: they are a few hundred bytes, Redis caches them by hash anyway,
//! and unlike `EVALSHA` nothing has to be re-loaded after Redis restarts. Every operation given to
//! [`RedisConn::run`] must be safe to run twice: a call whose connection dropped is retried once on
//! the reconnected connection, so the first call after a Redis restart succeeds instead of failing.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, RedisResult, ServerErrorKind};
use tokio::sync::OnceCell;

use crate::config::DedupConfig;
use crate::redact::{Scrubber, redact_url};

/// Dialling Redis gives up after this; a callback has 4 s in all.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// One command gives up after this.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
/// One store operation (including the retry after a dropped connection) gives up after this,
/// whatever happens below, so that a blackholed Redis costs a callback at most this much.
const OPERATION_BUDGET: Duration = Duration::from_millis(1_200);

/// A Redis connection made on first use, shared by clones, reconnecting after failures.
#[derive(Clone)]
pub struct RedisConn(Arc<Inner>);

struct Inner {
    client: redis::Client,
    manager: OnceCell<ConnectionManager>,
    /// The URL fit for messages: no password, no path.
    shown_url: String,
    /// Hides the password (as written and as decoded) in any message Redis or the client
    /// library produces.
    hidden: Scrubber,
    prefix: String,
}

impl RedisConn {
    /// Checks the URL; connects nothing.
    pub fn open(c: &DedupConfig) -> Result<Self, StoreError> {
        let url = c.url.as_ref().filter(|u| !u.is_empty()).ok_or_else(|| {
            StoreError::Config("backend \"redis\" needs `url` (e.g. \"${REDIS_URL}\")".to_owned())
        })?;
        let shown_url = redact_url(url.expose());
        let mut passwords = Vec::new();
        if let Ok(parsed) = url::Url::parse(url.expose())
            && let Some(p) = parsed.password().filter(|p| !p.is_empty())
        {
            passwords.push(p.to_owned());
        }
        let client = redis::Client::open(url.expose()).map_err(|e| {
            let reason = Scrubber::exact(passwords.clone()).clean(&e.to_string());
            StoreError::Config(format!("`url` {shown_url} is not a usable Redis URL: {reason}"))
        })?;
        // The credentials as the library decoded them (percent-escapes resolved) are what it
        // would ever print.
        let settings = client.get_connection_info().redis_settings();
        if let Some(p) = settings.password().filter(|p| !p.is_empty()) {
            passwords.push(p.to_owned());
        }
        let hidden = Scrubber::exact(passwords);
        Ok(Self(Arc::new(Inner {
            client,
            manager: OnceCell::new(),
            shown_url,
            hidden,
            prefix: c.key_prefix.clone(),
        })))
    }

    /// `<prefix><name>`.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.0.prefix)
    }

    /// Runs `op` on the connection (made now if this is the first use), retrying once when the
    /// connection turns out to be dead, all within [`OPERATION_BUDGET`]. `op` must be safe to
    /// run twice.
    pub async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
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

    pub fn error(&self, e: &RedisError) -> StoreError {
        let url = self.0.shown_url.clone();
        let reason = self.0.hidden.clean(&e.to_string());
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

/// Milliseconds for `PX`: at least 1 (Redis rejects 0), at most what Redis accepts.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).clamp(1, i64::MAX as u64 / 2)
}

/// `EVAL <script> 1 <key>`, ready for the script's arguments.
pub fn eval(script: &str, key: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script).arg(1).arg(key);
    cmd
}

/// `EVAL <script> <keys.len()> <keys...>`, ready for the script's arguments.
pub fn eval_keys(script: &str, keys: &[&str]) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script).arg(keys.len());
    for key in keys {
        cmd.arg(*key);
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DedupBackend;
    use crate::redact::Secret;

    fn config(url: &str) -> DedupConfig {
        DedupConfig { backend: DedupBackend::Redis, url: Some(Secret::new(url)), ..DedupConfig::default() }
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
        let err = RedisConn::open(&c).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("url"), "{err}");
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
        let scrubbed = conn.0.hidden.clean("auth p@ss word or p%40ss%20word failed");
        assert_eq!(scrubbed, "auth *** or *** failed");
    }
}
