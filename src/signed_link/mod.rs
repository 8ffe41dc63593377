//! Signed links, the half that makes them: what a button's URL carries and how it is signed
//! (see [`token`]). A leaf: the router puts links in messages with it, and the link pages (the
//! `links` module, which acts through the dispatcher) read them with it.

pub mod token;

use crate::config::{LinksConfig, Locale, Span};
use crate::redact::Secret;
pub use token::{Act, Link, Refused};

/// The path prefix of link pages; reserved: nothing under it is a callback.
pub const PREFIX: &str = "/actions";

/// What makes links: the address, the current secret, how long links and silences last.
/// Cheap to clone; the router holds one to put buttons in messages.
#[derive(Clone)]
pub struct Signer {
    secret: Secret,
    base_url: String,
    ttl: Span,
    silence_for: Span,
}

impl Signer {
    /// The secret links are signed with (the pages verify with it, and with the previous one).
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    pub fn new(config: &LinksConfig) -> Signer {
        Signer {
            secret: config.secret.clone(),
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            ttl: config.ttl,
            silence_for: config.silence_for,
        }
    }

    /// The URL of a link that does `act` for a workflow's failure, valid for `[links] ttl` from
    /// `now`.
    pub fn url(&self, act: Act, of: Failure<'_>, now: i64) -> String {
        let ttl = i64::try_from(self.ttl.as_duration().as_secs()).unwrap_or(i64::MAX);
        let silence = act == Act::Silence;
        let link = Link {
            act,
            video_id: of.video_id.to_owned(),
            workflow_id: of.workflow_id.to_owned(),
            error_code: of.error_code.filter(|_| silence).map(str::to_owned),
            silence_secs: silence.then(|| self.silence_for.as_duration().as_secs()),
            title: of.title.to_owned(),
            locale: of.locale,
            expires_at: now.saturating_add(ttl),
        };
        format!("{}{PREFIX}/{}", self.base_url, link.sign(&self.secret))
    }
}

/// Names the address only: the secret stays out of every log.
impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

/// The failure a link acts on.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    pub video_id: &'a str,
    pub workflow_id: &'a str,
    pub error_code: Option<&'a str>,
    pub title: &'a str,
    pub locale: Locale,
}
