//! `[links]`: signed links in messages that lead to vodhook's own confirmation page
//! (`/actions/<token>`), where a person acts on an event (the `links` module serves them).

use serde::Deserialize;

use super::Span;
use crate::redact::Secret;

/// The least a link secret may be: HMAC-SHA256's block is 64 bytes, its output 32; a shorter
/// key is guessable sooner than the MAC itself.
pub const MIN_SECRET_BYTES: usize = 32;

/// The channel re-runs from links are sent through (the dispatcher adds it when `[links]` is
/// set): a name no `[[channels]]` entry can have (names have no spaces), so the outbox and its
/// commands show re-runs under it.
pub const RERUN_CHANNEL: &str = "[links] rerun";

/// `[links]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinksConfig {
    /// The function's public address (`https://vodhook.example.com`); links are
    /// `<base_url>/actions/<token>`.
    pub base_url: String,
    /// Signs every link (HMAC-SHA256); at least [`MIN_SECRET_BYTES`].
    pub secret: Secret,
    /// Still accepted when checking a link, so that rotating `secret` breaks no link in flight.
    #[serde(default)]
    pub previous_secret: Option<Secret>,
    /// How long a link works.
    #[serde(default = "default_ttl")]
    pub ttl: Span,
    /// How long a silence made from a link lasts.
    #[serde(default = "default_silence_for")]
    pub silence_for: Span,
    /// The loop guard of re-runs from links: at most this many of one (VideoId, WorkflowId)
    /// within the dedup TTL (`[store] ttl_secs`).
    #[serde(default = "default_max_reruns")]
    pub max_reruns: u32,
}

fn default_max_reruns() -> u32 {
    3
}

fn default_ttl() -> Span {
    Span(std::time::Duration::from_secs(72 * 3600))
}

fn default_silence_for() -> Span {
    Span(std::time::Duration::from_secs(2 * 3600))
}

/// A button a message can carry (`buttons = ["silence", "watch"]` on a route or a channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ButtonKind {
    /// The video's best play URL, when enrichment looked it up: a plain link.
    Watch,
    /// A signed link to a page that silences the workflow's failure (`[links] silence_for`).
    Silence,
    /// A signed link to a page that re-runs the failed workflow (`SubmitWorkflowJob`).
    Rerun,
}

impl ButtonKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ButtonKind::Watch => "watch",
            ButtonKind::Silence => "silence",
            ButtonKind::Rerun => "rerun",
        }
    }
}
