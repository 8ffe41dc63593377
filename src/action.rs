//! Actions: what one event causes on one channel because one route matched it.
//!
//! An action carries everything needed to send it later, from another instance, after a
//! restart (the outbox stores it): the channel *name* (its URL and secret are looked up in the
//! configuration at send time, so no secret is ever stored) and the rendered, unsigned body
//! (signatures carry a timestamp and are made at send time).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::ChannelType;
use crate::template::Resolution;
use crate::template::digest::Brief;

/// One planned delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// Stable across VOD's retries, instances and restarts: see [`Action::key_for`].
    pub key: String,
    /// The event's identity ([`crate::event::Event::identity`]).
    pub event: String,
    pub route: String,
    pub channel: String,
    pub channel_type: ChannelType,
    /// The rendered body, before signing.
    pub payload: Value,
    /// What a digest says of the event, for channels that send digests (see the `digest`
    /// module); absent on actions made before digests, which then go on their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brief: Option<Brief>,
    /// A resolved notice (`dispatch::resolve`): the failures it resolves, of the video and
    /// workflow in `brief`; `None` for every other action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    /// The group it waits in (a route's `group_by`): sent with the group's other members as one
    /// message when the group's wait ends (`dispatch::digest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Group>,
}

/// A group of a route's events (`group_by`, `group_wait`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// `<route>|<channel>|field=value,...`: the members of one message.
    pub key: String,
    /// How long the group collects members after its first, as configured (`"30s"`).
    pub wait: crate::config::Span,
    /// For the actions a mute held (`dispatch::quiet`): the names of the time intervals that
    /// muted them, which their digest is headed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted_by: Option<String>,
}

impl Action {
    /// The idempotency key of the action that sends event `identity` to `channel` via `route`.
    pub fn key_for(identity: &str, route: &str, channel: &str) -> String {
        format!("{identity}|{route}|{channel}")
    }

    /// A compact id for the key, safe in headers and Redis keys: `msg_` + 32 hex digits of its
    /// SHA-256 (used as Standard Webhooks' `webhook-id`).
    pub fn message_id(&self) -> String {
        Self::message_id_for(&self.key)
    }

    /// [`Action::message_id`] of the action whose key is `key`.
    pub fn message_id_for(key: &str) -> String {
        let digest = Sha256::digest(key.as_bytes());
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("msg_{hex}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_is_stable_and_header_safe() {
        let action = Action {
            key: Action::key_for("WorkflowTaskComplete:t1", "failures", "ops"),
            event: "WorkflowTaskComplete:t1".into(),
            route: "failures".into(),
            channel: "ops".into(),
            channel_type: ChannelType::Log,
            payload: Value::Null,
            brief: None,
            resolution: None,
            group: None,
        };
        let id = action.message_id();
        assert_eq!(id, action.clone().message_id());
        assert_eq!(id.len(), 4 + 32);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    }
}
