//! Link tokens: what a button asks for, signed, in the URL itself, so that any instance can
//! show the confirmation page without reading a store.
//!
//! A token is `<payload>.<mac>`, both base64url without padding: the payload is the JSON of a
//! [`Link`] (the action, its parameters, what the page shows, the expiry); the MAC is
//! HMAC-SHA256 with `[links] secret` over `vodhook-link-v1.` and the payload's text, so a token
//! made for anything else, or by an older format, never verifies. `previous_secret` is tried
//! too (rotation). The MAC is compared in constant time (`Mac::verify_slice`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::redact::Secret;

/// What a MAC covers besides the payload: the format's version.
const DOMAIN: &[u8] = b"vodhook-link-v1.";

/// The most characters of a title a link carries (and its page shows).
pub const MAX_TITLE_CHARS: usize = 100;

/// The longest token read; anything longer is refused before decoding (a real one is a few
/// hundred characters).
pub const MAX_TOKEN_CHARS: usize = 2_048;

/// What a link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Act {
    /// Make a silence for the event's workflow and error code.
    Silence,
    /// Submit the event's workflow again for its video (`SubmitWorkflowJob`).
    Rerun,
}

/// One link's content: everything the page shows and the action needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    #[serde(rename = "a")]
    pub act: Act,
    #[serde(rename = "v", default, skip_serializing_if = "String::is_empty")]
    pub video_id: String,
    #[serde(rename = "w", default, skip_serializing_if = "String::is_empty")]
    pub workflow_id: String,
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// How long the silence lasts (seconds), for [`Act::Silence`].
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub silence_secs: Option<u64>,
    /// The video's title, at most [`MAX_TITLE_CHARS`].
    #[serde(rename = "t", default)]
    pub title: String,
    /// The page's language (`en`, `zh-CN`).
    #[serde(rename = "l", default)]
    pub locale: crate::config::Locale,
    /// Unix seconds after which the link no longer works.
    #[serde(rename = "x")]
    pub expires_at: i64,
}

/// Why a token was refused. Says nothing of what is inside it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("this link is not valid (altered, cut short, or signed with another key)")]
    Invalid,
    #[error("this link expired at {0}")]
    Expired(String),
}

impl Link {
    /// The token for this link, signed with `secret`. The title is cut to [`MAX_TITLE_CHARS`].
    pub fn sign(&self, secret: &Secret) -> String {
        let mut link = self.clone();
        link.title = link.title.chars().take(MAX_TITLE_CHARS).collect();
        // A struct of strings and numbers always serializes.
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&link).unwrap_or_default());
        let mac = URL_SAFE_NO_PAD.encode(mac(secret, &payload).finalize().into_bytes());
        format!("{payload}.{mac}")
    }

    /// The link a token holds, when one of `secrets` signed it and it has not expired at `now`.
    pub fn verify(token: &str, secrets: &[&Secret], now: i64) -> Result<Link, Refused> {
        if token.len() > MAX_TOKEN_CHARS {
            return Err(Refused::Invalid);
        }
        let (payload, tag) = token.split_once('.').ok_or(Refused::Invalid)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| Refused::Invalid)?;
        if !secrets.iter().any(|secret| mac(secret, payload).verify_slice(&tag).is_ok()) {
            return Err(Refused::Invalid);
        }
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| Refused::Invalid)?;
        let link: Link = serde_json::from_slice(&json).map_err(|_| Refused::Invalid)?;
        if now >= link.expires_at {
            let at = chrono::DateTime::from_timestamp(link.expires_at, 0).map(|t| t.to_rfc3339());
            return Err(Refused::Expired(at.unwrap_or_default()));
        }
        Ok(link)
    }
}

fn mac(secret: &Secret, payload: &str) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
    mac.update(DOMAIN);
    mac.update(payload.as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Secret {
        Secret::new(s.repeat(32))
    }

    fn link() -> Link {
        Link {
            act: Act::Silence,
            video_id: "v1".into(),
            workflow_id: "wf-1".into(),
            error_code: Some("InvalidParameter".into()),
            silence_secs: Some(7200),
            title: "标题".repeat(80),
            locale: crate::config::Locale::ZhCn,
            expires_at: 2_000,
        }
    }

    #[test]
    fn a_signed_link_verifies_with_its_secret_or_the_previous_one_until_it_expires() {
        let (new, old) = (secret("n"), secret("o"));
        let token = link().sign(&old);
        let back = Link::verify(&token, &[&new, &old], 1_999).unwrap();
        assert_eq!(back.title.chars().count(), MAX_TITLE_CHARS, "the title is cut");
        assert_eq!(Link { title: link().title.chars().take(100).collect(), ..link() }, back);
        assert_eq!(Link::verify(&token, &[&new], 1_000), Err(Refused::Invalid));
        assert!(matches!(Link::verify(&token, &[&old], 2_000), Err(Refused::Expired(_))));
    }

    #[test]
    fn any_changed_byte_is_refused() {
        let key = secret("k");
        let token = link().sign(&key);
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            if altered != token {
                assert_eq!(Link::verify(&altered, &[&key], 0), Err(Refused::Invalid), "byte {i}");
            }
        }
        for bad in ["", ".", "abc", "abc.def", &"a".repeat(MAX_TOKEN_CHARS + 1)] {
            assert_eq!(Link::verify(bad, &[&key], 0), Err(Refused::Invalid), "{bad:?}");
        }
    }
}
