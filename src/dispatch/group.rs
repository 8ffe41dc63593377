//! Grouping (a route's `group_by`, `group_wait`), as Alertmanager's: the first event of a group
//! is held in the outbox until the group's wait ends (its due time, set once in the store by
//! the first member, so that every instance's members agree), the events of the same group
//! that come meanwhile join it, and when it is due the whole group goes out as one message —
//! on a chat channel a digest of its members, on a webhook one `"kind": "group"` document —
//! through the digest rounds' claim-all, send, settle (`dispatch::digest`). A group too large
//! for one message is cut into as few as fit; none is dropped. An event after the group's due
//! time starts a new group.

use super::{Dispatcher, Settled};
use crate::action::{Action, Group};
use crate::dedup::ClaimToken;
use crate::outbox::OutboxItem;

impl Dispatcher {
    /// Holds `action` in the outbox until its group is due (the callback answers `200`, the
    /// action counted `held`). Without an outbox (check-config refuses that) it is sent now.
    pub(super) async fn hold_for_group(
        &self,
        action: &Action,
        group: &Group,
        token: Option<&ClaimToken>,
    ) -> Settled {
        let now = crate::clock::unix_now();
        let wait = group.wait.as_duration();
        let proposed = now.saturating_add(i64::try_from(wait.as_secs().max(1)).unwrap_or(i64::MAX));
        // The group's due time, as its first member set it (the key lives until then).
        let due = match self
            .dedup
            .first_value(&format!("group:{}", group.key), &proposed.to_string(), wait)
            .await
        {
            Ok(found) => found.parse().unwrap_or(proposed),
            Err(err) => {
                tracing::warn!(key = %action.key, error = %err, "could not read the group's due time: it waits its own");
                proposed
            }
        };
        let why = format!("held for its group ({}) until {due}", group.wait);
        self.park(action.clone(), due, why, token, Settled::Held).await
    }

    /// Puts `action` in the outbox, due at `due` (a hold: no attempt counted), and releases its
    /// claim; `held` on success, else left for the sender's retry.
    pub(super) async fn park(
        &self,
        action: Action,
        due: i64,
        why: String,
        token: Option<&ClaimToken>,
        held: Settled,
    ) -> Settled {
        let Some(outbox) = &self.outbox else { return Settled::LeftForRetry };
        let key = action.key.clone();
        let item = OutboxItem {
            action,
            attempts: 0,
            first_seen: crate::clock::unix_now(),
            due,
            last_error: why,
            held: true,
        };
        let settled = match outbox.push(&item).await {
            Ok(_) => {
                tracing::info!(%key, channel = %item.action.channel, due, why = %item.last_error, "held in the outbox");
                held
            }
            Err(err) => {
                tracing::error!(%key, error = %err, "outbox unreachable: the sender must retry");
                Settled::LeftForRetry
            }
        };
        self.release(&key, token).await;
        settled
    }
}
