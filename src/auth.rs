//! VOD's callback signature.
//!
//! VOD signs HTTP callbacks with two headers: `X-VOD-TIMESTAMP` (unix seconds) and
//! `X-VOD-SIGNATURE`, the lowercase hex MD5 of `<callback URL>|<timestamp>|<auth key>`. The body
//! is not signed, so the timestamp window is what stops replays of an old request. The URL
//! signed is the one configured in VOD, never rebuilt from the request: proxies and gateways
//! change hosts, schemes and paths on the way.

use http::HeaderMap;
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use crate::config::AuthConfig;
use crate::redact::Secret;

pub const TIMESTAMP_HEADER: &str = "x-vod-timestamp";
pub const SIGNATURE_HEADER: &str = "x-vod-signature";

/// Lowercase hex MD5 of `url|timestamp|key`: the value VOD puts in `X-VOD-SIGNATURE`.
pub fn signature(callback_url: &str, timestamp: i64, key: &str) -> String {
    let digest = Md5::digest(format!("{callback_url}|{timestamp}|{key}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a callback was refused. The messages say which check failed and never show the key
/// or the expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing X-VOD-TIMESTAMP header")]
    MissingTimestamp,
    #[error("missing X-VOD-SIGNATURE header")]
    MissingSignature,
    #[error("X-VOD-TIMESTAMP is not a unix time in seconds")]
    BadTimestamp,
    #[error("X-VOD-TIMESTAMP is {skew_secs} s away from now (more than the {max_secs} s allowed)")]
    Stale { skew_secs: i64, max_secs: u64 },
    #[error("X-VOD-SIGNATURE does not match the configured callback URL and auth key")]
    Mismatch,
}

/// Which configured key a good signature was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUsed {
    Current,
    /// The previous key (`VODHOOK_AUTH_KEY_PREVIOUS`): a rotation is still under way.
    Previous,
}

/// Checks callbacks against the configured URL and keys.
#[derive(Debug, Clone)]
pub struct Verifier {
    callback_url: String,
    key: Secret,
    previous_key: Option<Secret>,
    max_skew_secs: u64,
}

/// Start-up problems with the auth configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthConfigError {
    #[error(
        "an auth key is set but no callback URL: set VODHOOK_CALLBACK_URL (or auth.callback_url) to the URL exactly as configured in VOD"
    )]
    MissingCallbackUrl,
    #[error("auth.previous_key is set without auth.key")]
    PreviousWithoutKey,
}

impl Verifier {
    /// `Ok(None)` when no key is configured: callbacks are then accepted unauthenticated.
    pub fn from_config(config: &AuthConfig) -> Result<Option<Self>, AuthConfigError> {
        let key = config.key.clone().filter(|k| !k.is_empty());
        let previous_key = config.previous_key.clone().filter(|k| !k.is_empty());
        let Some(key) = key else {
            return match previous_key {
                Some(_) => Err(AuthConfigError::PreviousWithoutKey),
                None => Ok(None),
            };
        };
        let callback_url = config
            .callback_url
            .clone()
            .filter(|u| !u.is_empty())
            .ok_or(AuthConfigError::MissingCallbackUrl)?;
        Ok(Some(Self { callback_url, key, previous_key, max_skew_secs: config.max_skew_secs }))
    }

    /// Verifies a callback's headers at `now` (unix seconds).
    pub fn verify(&self, headers: &HeaderMap, now: i64) -> Result<KeyUsed, AuthError> {
        let timestamp = header(headers, TIMESTAMP_HEADER).ok_or(AuthError::MissingTimestamp)?;
        let given = header(headers, SIGNATURE_HEADER).ok_or(AuthError::MissingSignature)?;
        let timestamp: i64 = timestamp.trim().parse().map_err(|_| AuthError::BadTimestamp)?;
        let skew_secs = now.saturating_sub(timestamp).saturating_abs();
        if skew_secs.unsigned_abs() > self.max_skew_secs {
            return Err(AuthError::Stale { skew_secs, max_secs: self.max_skew_secs });
        }
        let given = given.trim().to_ascii_lowercase();
        let matches = |key: &Secret| {
            let expected = signature(&self.callback_url, timestamp, key.expose());
            bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
        };
        // Both keys are always checked, so timing does not tell which one is in use.
        let current = matches(&self.key);
        let previous = self.previous_key.as_ref().is_some_and(matches);
        match (current, previous) {
            (true, _) => Ok(KeyUsed::Current),
            (false, true) => Ok(KeyUsed::Previous),
            (false, false) => Err(AuthError::Mismatch),
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://www.example.com/your/callback";

    #[test]
    fn documented_vector() {
        assert_eq!(signature(URL, 1519375990, "test123"), "c72b60894140fa98920f1279219b7ed4");
    }

    fn verifier(previous: Option<&str>) -> Verifier {
        let config = AuthConfig {
            callback_url: Some(URL.into()),
            key: Some(Secret::new("test123")),
            previous_key: previous.map(Secret::new),
            max_skew_secs: 300,
            ..AuthConfig::default()
        };
        Verifier::from_config(&config).unwrap().unwrap()
    }

    fn headers(ts: &str, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(TIMESTAMP_HEADER, ts.parse().unwrap());
        h.insert(SIGNATURE_HEADER, sig.parse().unwrap());
        h
    }

    #[test]
    fn accepts_good_rejects_each_bad_case() {
        let v = verifier(None);
        let good = "c72b60894140fa98920f1279219b7ed4";
        assert_eq!(v.verify(&headers("1519375990", good), 1519375990 + 10), Ok(KeyUsed::Current));
        assert_eq!(v.verify(&headers("1519375990", &good.to_uppercase()), 1519375990), Ok(KeyUsed::Current));
        assert_eq!(v.verify(&headers("1519375990", &good[1..]), 1519375990), Err(AuthError::Mismatch));
        assert_eq!(v.verify(&headers("abc", good), 1519375990), Err(AuthError::BadTimestamp));
        assert_eq!(
            v.verify(&headers("1519375990", good), 1519375990 + 301),
            Err(AuthError::Stale { skew_secs: 301, max_secs: 300 })
        );
        assert!(v.verify(&headers("1519375990", good), 1519375990 - 301).is_err());
        assert_eq!(v.verify(&HeaderMap::new(), 0), Err(AuthError::MissingTimestamp));
        let mut only_ts = HeaderMap::new();
        only_ts.insert(TIMESTAMP_HEADER, "1".parse().unwrap());
        assert_eq!(v.verify(&only_ts, 1), Err(AuthError::MissingSignature));
    }

    #[test]
    fn previous_key_still_accepted_during_rotation() {
        let v = Verifier { key: Secret::new("new-key"), ..verifier(Some("test123")) };
        let good = "c72b60894140fa98920f1279219b7ed4";
        assert_eq!(v.verify(&headers("1519375990", good), 1519375990), Ok(KeyUsed::Previous));
    }

    #[test]
    fn errors_never_show_key_or_expected_signature() {
        let v = verifier(None);
        let err = v.verify(&headers("1519375990", "00"), 1519375990).unwrap_err().to_string();
        assert!(!err.contains("test123") && !err.contains("c72b6089"), "{err}");
    }

    #[test]
    fn key_without_url_is_a_config_error() {
        let config = AuthConfig { key: Some(Secret::new("k")), ..AuthConfig::default() };
        assert_eq!(Verifier::from_config(&config).unwrap_err(), AuthConfigError::MissingCallbackUrl);
        assert!(Verifier::from_config(&AuthConfig::default()).unwrap().is_none());
    }
}
