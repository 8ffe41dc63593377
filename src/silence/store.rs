//! Silences in Redis: one hash, `<prefix>{silences}` (field: the silence's id, value: its JSON),
//! so that listing them is one `HGETALL` and every instance reads the same ones. Expired
//! silences stay [`KEEP_EXPIRED_SECS`] for `silence list --expired`; whoever adds or lists
//! deletes the older ones.

use super::{KEEP_EXPIRED_SECS, MAX_SILENCES, Silence, State};
use crate::store::{RedisConn, StoreError};

/// Why a silence operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no silence with id {0:?} (see `vodhook silence list --expired`)")]
    Unknown(String),
    #[error("{0} silences are stored, the most kept: expire some first (`vodhook silence list`)")]
    Full(usize),
}

/// The silences of one store.
#[derive(Clone)]
pub struct SilenceStore {
    conn: RedisConn,
}

impl SilenceStore {
    pub fn new(conn: RedisConn) -> SilenceStore {
        SilenceStore { conn }
    }

    fn key(&self) -> String {
        self.conn.key("{silences}")
    }

    /// Every stored silence (active, pending, and expired within the last 5 days), oldest
    /// first. An entry that does not parse is skipped and logged.
    pub async fn all(&self) -> Result<Vec<Silence>, StoreError> {
        let cmd = redis::cmd("HGETALL").arg(self.key()).to_owned();
        let entries: Vec<(String, String)> = self.conn.query(&cmd).await?;
        let mut silences: Vec<Silence> = entries
            .into_iter()
            .filter_map(|(id, json)| match serde_json::from_str(&json) {
                Ok(silence) => Some(silence),
                Err(err) => {
                    tracing::warn!(silence = %id, error = %err, "a stored silence does not parse: ignored");
                    None
                }
            })
            .collect();
        silences.sort_by(|a: &Silence, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(silences)
    }

    /// Stores `silence` (after deleting those expired more than 5 days before `now`).
    pub async fn add(&self, silence: &Silence, now: i64) -> Result<(), SilenceError> {
        let kept = self.prune(now).await?;
        if kept >= MAX_SILENCES {
            return Err(SilenceError::Full(kept));
        }
        self.put(silence).await?;
        Ok(())
    }

    /// Ends the silence `id` at `now` (one already over is left as it is); returns it.
    pub async fn expire(&self, id: &str, now: i64) -> Result<Silence, SilenceError> {
        let cmd = redis::cmd("HGET").arg(self.key()).arg(id).to_owned();
        let found: Option<String> = self.conn.query(&cmd).await?;
        let mut silence: Silence = found
            .and_then(|json| serde_json::from_str(&json).ok())
            .ok_or_else(|| SilenceError::Unknown(id.to_owned()))?;
        if silence.state(now) != State::Expired {
            silence.ends_at = now;
            silence.starts_at = silence.starts_at.min(now);
            self.put(&silence).await?;
        }
        Ok(silence)
    }

    /// Deletes the silences that expired more than 5 days before `now`; returns how many are
    /// left.
    pub async fn prune(&self, now: i64) -> Result<usize, StoreError> {
        let all = self.all().await?;
        let (old, kept): (Vec<&Silence>, Vec<&Silence>) =
            all.iter().partition(|s| s.ends_at < now.saturating_sub(KEEP_EXPIRED_SECS));
        if !old.is_empty() {
            let ids: Vec<&str> = old.iter().map(|s| s.id.as_str()).collect();
            let cmd = redis::cmd("HDEL").arg(self.key()).arg(&ids).to_owned();
            self.conn.query::<i64>(&cmd).await?;
        }
        Ok(kept.len())
    }

    async fn put(&self, silence: &Silence) -> Result<(), StoreError> {
        let json = serde_json::to_string(silence).unwrap_or_default();
        let cmd = redis::cmd("HSET").arg(self.key()).arg(&silence.id).arg(json).to_owned();
        self.conn.query::<i64>(&cmd).await.map(|_| ())
    }
}
