//! The Redis connection every shared piece of state uses: the dedup store, the outbox, the
//! replay guard and the rate budgets. One lazily made connection per
//! process, to one endpoint or to a Redis Cluster, plain or over TLS ([`connect`]); one error
//! type that says what failed ([`error`]), credentials scrubbed from every message; and the
//! helpers to run Lua scripts.
//!
//! # Keys and hash slots
//!
//! On a Redis Cluster (and on Tair or ElastiCache in cluster mode, proxy or direct) every key one
//! script, transaction or pipeline touches must hash to one slot. vodhook's keys, all under
//! `key_prefix` (default `vodhook:`):
//!
//! - `<prefix>dedup:<action key>`: one key per action; each dedup script touches one key.
//! - `<prefix>sig:<family>:<signature>`: the replay guard, one key per signature and script.
//! - `<prefix>{budget:<channel>}:window`: a chat channel's rate budget, one key per channel and
//!   script (tagged so that a budget stays one key in one slot whatever else joins it later).
//! - `<prefix>cache:vodplay|<VideoId>`: what `GetPlayInfo` said of a video (plain `GET`/`SET`),
//!   and `<prefix>guard:vod|…`: a `vod` channel's repeat guard, one set per script.
//! - `<prefix>{outbox}:items`, `:due`, `:dead`, `:dead_at`: the outbox. Its scripts move an
//!   action between these keys atomically, so they share the hash tag `{outbox}` and live in one
//!   slot (on one node: the outbox is small, and what drains it is one script at a time).
//! - `<prefix>{report}:since`, `:h:<hour>`, `:seen:<event identity>`: the report's counters
//!   (`report::ledger`); one script per callback marks its events seen and counts them in their
//!   hour, so they share the tag `{report}`.
//!
//! A group of keys that a script touches together is declared in [`KEY_GROUPS`] (which
//! `vodhook check-redis` verifies) and named with [`RedisConn::tagged_key`]; a key prefix that
//! itself holds braces still gives every key of a group the same slot, since the tag is then
//! taken from the common prefix.
//!
//! Scripts are sent with `EVAL`: they are a few hundred bytes, Redis caches them by hash anyway,
//! and unlike `EVALSHA` nothing has to be re-loaded after Redis restarts or a failover. Every
//! operation given to [`RedisConn::run`] must be safe to run twice: a call whose connection
//! dropped is retried once on the reconnected connection, so the first call after a Redis restart
//! succeeds instead of failing.

pub mod connect;
pub mod error;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::{RedisError, RedisResult};
use tokio::sync::OnceCell;

pub use connect::Connection;
use connect::{Client, Timeouts};
pub use error::{Failure, StoreError};

use crate::config::DedupConfig;
use crate::redact::{Scrubber, redact_url};

/// Dialling Redis gives up after this; a callback has 4 s in all.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// One command gives up after this.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
/// One store operation (including the retry after a dropped connection) gives up after this,
/// whatever happens below, so that a blackholed Redis costs a callback at most this much.
const OPERATION_BUDGET: Duration = Duration::from_millis(1_200);
const TIMEOUTS: Timeouts = Timeouts { connect: CONNECT_TIMEOUT, response: RESPONSE_TIMEOUT };

/// The key groups whose keys one script touches together: (hash tag, key names). Each group
/// must hash to one slot on a Redis Cluster; `vodhook check-redis` checks that it does.
pub const KEY_GROUPS: &[(&str, &[&str])] = &[
    ("outbox", &["items", "due", "dead", "dead_at"]),
    ("report", &["since", "h:1764900000", "seen:WorkflowTaskComplete:t-1"]),
];

/// A Redis connection made on first use, shared by clones, reconnecting after failures.
#[derive(Clone)]
pub struct RedisConn(Arc<Inner>);

struct Inner {
    client: Client,
    connection: OnceCell<Connection>,
    /// The URL fit for messages: no password, no path.
    shown_url: String,
    /// The host the server's certificate must name.
    host: String,
    /// Hides the password (as written and as decoded) in any message Redis or the client
    /// library produces.
    hidden: Scrubber,
    prefix: String,
    cluster: bool,
    tls: bool,
}

impl RedisConn {
    /// Checks the URL and reads the CA file; connects nothing.
    pub fn open(c: &DedupConfig) -> Result<Self, StoreError> {
        let url = c.url.as_ref().filter(|u| !u.is_empty()).ok_or_else(|| {
            StoreError::Config("backend \"redis\" needs `url` (e.g. \"${REDIS_URL}\")".to_owned())
        })?;
        let shown_url = redact_url(url.expose());
        let parsed = url::Url::parse(url.expose()).ok();
        let mut passwords = Vec::new();
        if let Some(p) = parsed.as_ref().and_then(|u| u.password()).filter(|p| !p.is_empty()) {
            passwords.push(p.to_owned());
        }
        let ca_pem = match &c.tls_ca_file {
            Some(path) => Some(
                connect::read_ca_file(path).map_err(|e| StoreError::Config(format!("`tls_ca_file`: {e}")))?,
            ),
            None => None,
        };
        let client = Client::new(url.expose(), ca_pem.as_deref(), c.cluster, TIMEOUTS).map_err(|e| {
            let reason = Scrubber::exact(passwords.clone()).clean(&e.to_string());
            StoreError::Config(format!("`url` {shown_url} is not a usable Redis URL: {reason}"))
        })?;
        passwords.extend(client.password(url.expose()).filter(|p| !p.is_empty()));
        Ok(Self(Arc::new(Inner {
            client,
            connection: OnceCell::new(),
            shown_url,
            host: parsed.as_ref().and_then(|u| u.host_str()).unwrap_or_default().to_owned(),
            hidden: Scrubber::exact(passwords),
            prefix: c.key_prefix.clone(),
            cluster: c.cluster,
            tls: parsed.is_some_and(|u| u.scheme() == "rediss"),
        })))
    }

    /// `<prefix><name>`: a key that scripts touch alone.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.0.prefix)
    }

    /// `<prefix>{<group>}:<name>`: a key of a group (see [`KEY_GROUPS`]) that scripts touch
    /// together, in the group's hash slot.
    pub fn tagged_key(&self, group: &str, name: &str) -> String {
        format!("{}{{{group}}}:{name}", self.0.prefix)
    }

    /// The URL fit for messages (no password).
    pub fn shown_url(&self) -> &str {
        &self.0.shown_url
    }

    /// The host name a TLS certificate must name.
    pub fn host(&self) -> &str {
        &self.0.host
    }

    pub fn is_cluster(&self) -> bool {
        self.0.cluster
    }

    pub fn is_tls(&self) -> bool {
        self.0.tls
    }

    /// Runs `op` on the connection (made now if this is the first use), retrying once when the
    /// connection turns out to be dead, all within [`OPERATION_BUDGET`]. `op` must be safe to
    /// run twice.
    pub async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn(Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let attempt = async {
            let conn = self.connection().await?;
            match op(conn.clone()).await {
                Err(e) if failure_is_transient(&e) => op(conn).await,
                other => other,
            }
        };
        match tokio::time::timeout(OPERATION_BUDGET, attempt).await {
            Ok(result) => result.map_err(|e| self.error(&e)),
            Err(_) => Err(StoreError::Unreachable {
                url: self.0.shown_url.clone(),
                failure: Failure::Timeout,
                reason: format!("no answer within {} ms", OPERATION_BUDGET.as_millis()),
            }),
        }
    }

    /// Runs one command (a script, usually) through [`RedisConn::run`].
    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        self.run(|mut c| async move { cmd.query_async(&mut c).await }).await
    }

    /// Runs one pipeline (all its keys in one slot) through [`RedisConn::run`].
    pub async fn query_pipe<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        self.run(|mut c| async move { pipe.query_async(&mut c).await }).await
    }

    /// The connection, made on first use and shared by all concurrent first uses. To one
    /// endpoint this dials nothing (the first command does); to a cluster it reads the slot
    /// map, and a failure leaves it to the next call to try again.
    async fn connection(&self) -> RedisResult<Connection> {
        let connection = self.0.connection.get_or_try_init(|| self.0.client.connect(TIMEOUTS)).await?;
        Ok(connection.clone())
    }

    /// `e` as a [`StoreError`] that says what kind of failure it was, password scrubbed.
    pub fn error(&self, e: &RedisError) -> StoreError {
        let url = self.0.shown_url.clone();
        let failure = error::failure_of(e);
        let reason = error::tls_reason(e, &self.0.host).unwrap_or_else(|| e.to_string());
        let reason = self.0.hidden.clean(&reason);
        if failure.is_unreachable() {
            StoreError::Unreachable { url, failure, reason }
        } else {
            StoreError::Redis { url, failure, reason }
        }
    }
}

/// Errors worth one immediate retry: the connection dropped or was refused (the manager
/// reconnects), or Redis is loading or failing over.
fn failure_is_transient(e: &RedisError) -> bool {
    !matches!(error::failure_of(e), Failure::Auth | Failure::Refused | Failure::Tls)
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
    fn every_key_of_a_group_shares_one_slot_whatever_the_prefix() {
        use redis::cluster_routing::Slot;
        for prefix in ["vodhook:", "", "team{a}:", "odd{", "}x{y"] {
            let c = DedupConfig { key_prefix: prefix.into(), ..config("redis://127.0.0.1:1/") };
            let conn = RedisConn::open(&c).unwrap();
            for (group, names) in KEY_GROUPS {
                let slots: Vec<_> = names.iter().map(|n| Slot::for_key(conn.tagged_key(group, n))).collect();
                assert!(slots.windows(2).all(|w| w[0] == w[1]), "{prefix:?} {group}: {slots:?}");
            }
        }
        let conn = RedisConn::open(&config("redis://127.0.0.1:1/")).unwrap();
        assert_eq!(conn.tagged_key("outbox", "items"), "vodhook:{outbox}:items");
    }

    #[test]
    fn messages_lose_credentials() {
        let conn = RedisConn::open(&config("redis://me:p%40ss%20word@127.0.0.1:1/")).unwrap();
        let scrubbed = conn.0.hidden.clean("auth p@ss word or p%40ss%20word failed");
        assert_eq!(scrubbed, "auth *** or *** failed");
    }
}
