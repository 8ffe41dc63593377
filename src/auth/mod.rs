//! Callback signatures: VOD's and IMS's, on the same endpoint.
//!
//! VOD signs HTTP callbacks with `X-VOD-TIMESTAMP` (unix seconds) and `X-VOD-SIGNATURE`, the
//! lowercase hex MD5 of `<callback URL>|<timestamp>|<auth key>`. Intelligent Media Services (the
//! engine VOD workflows run on) signs its callbacks the same way under `X-ICE-TIMESTAMP` and
//! `X-ICE-SIGNATURE`, with its own auth key. Each family is checked only against its own keys
//! (`[auth] key` / `previous_key` for VOD, `ims_key` / `ims_previous_key` for IMS): a request
//! carrying X-VOD headers is a VOD callback, else one carrying X-ICE headers an IMS callback,
//! else it is refused. The body is not signed, so the timestamp window is what stops replays of
//! an old request (and the `replay` module keeps a captured signature from carrying new bodies). The URL
//! signed is the one configured, never rebuilt from the request: proxies and gateways change
//! hosts, schemes and paths on the way.

pub(crate) mod reuse;

use http::HeaderMap;
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use crate::config::{AuthConfig, KeyFamily};
use crate::redact::Secret;

pub const TIMESTAMP_HEADER: &str = "x-vod-timestamp";
pub const SIGNATURE_HEADER: &str = "x-vod-signature";
pub const IMS_TIMESTAMP_HEADER: &str = "x-ice-timestamp";
pub const IMS_SIGNATURE_HEADER: &str = "x-ice-signature";

/// Lowercase hex MD5 of `url|timestamp|key`: the value VOD (and IMS) put in the signature header.
pub fn signature(callback_url: &str, timestamp: i64, key: &str) -> String {
    let digest = Md5::digest(format!("{callback_url}|{timestamp}|{key}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Who signed a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// ApsaraVideo VOD: `X-VOD-*`.
    Vod,
    /// Intelligent Media Services: `X-ICE-*`.
    Ims,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Vod => "VOD",
            Family::Ims => "IMS",
        }
    }

    /// The family's (timestamp, signature) header names, as written in messages.
    fn headers(self) -> (&'static str, &'static str) {
        match self {
            Family::Vod => ("X-VOD-TIMESTAMP", "X-VOD-SIGNATURE"),
            Family::Ims => ("X-ICE-TIMESTAMP", "X-ICE-SIGNATURE"),
        }
    }

    fn header_names(self) -> (&'static str, &'static str) {
        match self {
            Family::Vod => (TIMESTAMP_HEADER, SIGNATURE_HEADER),
            Family::Ims => (IMS_TIMESTAMP_HEADER, IMS_SIGNATURE_HEADER),
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a callback was refused. The messages say which family and which check failed, and never
/// show a key, the expected signature, or how far the server's clock is from the timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing X-VOD-TIMESTAMP header (or X-ICE-TIMESTAMP, for IMS callbacks)")]
    Unsigned,
    #[error("missing {} header", .0.headers().0)]
    MissingTimestamp(Family),
    #[error("missing {} header", .0.headers().1)]
    MissingSignature(Family),
    #[error("{} is not a unix time in seconds", .0.headers().0)]
    BadTimestamp(Family),
    #[error("{} is more than {max_secs} s away from now", .family.headers().0)]
    Stale { family: Family, max_secs: u64 },
    #[error("{} does not match the configured callback URL and {family} auth key", .0.headers().1, family = .0)]
    Mismatch(Family),
    #[error("a {0} signature, but no {0} auth key is configured")]
    NotConfigured(Family),
}

/// Which configured key a good signature was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUsed {
    Current,
    /// The previous key: a rotation is still under way.
    Previous,
}

/// A callback whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub family: Family,
    pub key: KeyUsed,
    /// The signature as sent (lowercase hex), for the replay guard.
    pub signature: String,
}

/// A family's keys.
#[derive(Debug, Clone)]
struct Keys {
    key: Secret,
    previous: Option<Secret>,
}

/// Checks callbacks against the configured URL and keys.
#[derive(Debug, Clone)]
pub struct Verifier {
    callback_url: String,
    vod: Option<Keys>,
    ims: Option<Keys>,
    max_skew_secs: u64,
}

/// Start-up problems with the auth configuration: the rule is `AuthConfig::keys`, the one
/// `check-config` applies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthConfigError(pub crate::config::Problem);

impl Verifier {
    /// `Ok(None)` when no key is configured: callbacks are then accepted unauthenticated.
    pub fn from_config(config: &AuthConfig) -> Result<Option<Self>, AuthConfigError> {
        let keys = |family| {
            let pair = config.keys(family).map_err(AuthConfigError)?;
            Ok(pair.map(|(key, previous)| Keys { key: key.clone(), previous: previous.cloned() }))
        };
        let vod = keys(KeyFamily::Vod)?;
        let ims = keys(KeyFamily::Ims)?;
        match (vod.is_some() || ims.is_some(), &config.callback_url) {
            (false, _) => Ok(None),
            // `keys` refuses a key without the URL.
            (true, Some(url)) => {
                Ok(Some(Self { callback_url: url.clone(), vod, ims, max_skew_secs: config.max_skew_secs }))
            }
            (true, None) => {
                Err(AuthConfigError(crate::config::Problem::new("auth.callback_url", "is required")))
            }
        }
    }

    /// How long a signature is fresh either side of now: what the replay guard must remember.
    pub fn max_skew_secs(&self) -> u64 {
        self.max_skew_secs
    }

    /// The callback URL signatures are checked against (what VOD must be configured with).
    pub fn callback_url(&self) -> &str {
        &self.callback_url
    }

    /// Verifies a callback's headers at `now` (unix seconds).
    pub fn verify(&self, headers: &HeaderMap, now: i64) -> Result<Verified, AuthError> {
        let present = |family: Family| {
            let (ts, sig) = family.header_names();
            headers.contains_key(ts) || headers.contains_key(sig)
        };
        let family = if present(Family::Vod) {
            Family::Vod
        } else if present(Family::Ims) {
            Family::Ims
        } else {
            return Err(AuthError::Unsigned);
        };
        let keys = match family {
            Family::Vod => self.vod.as_ref(),
            Family::Ims => self.ims.as_ref(),
        };
        let keys = keys.ok_or(AuthError::NotConfigured(family))?;
        let (ts_name, sig_name) = family.header_names();
        let timestamp = header(headers, ts_name).ok_or(AuthError::MissingTimestamp(family))?;
        let given = header(headers, sig_name).ok_or(AuthError::MissingSignature(family))?;
        let timestamp: i64 = timestamp.trim().parse().map_err(|_| AuthError::BadTimestamp(family))?;
        if now.saturating_sub(timestamp).unsigned_abs() > self.max_skew_secs {
            return Err(AuthError::Stale { family, max_secs: self.max_skew_secs });
        }
        let given = given.trim().to_ascii_lowercase();
        let matches = |key: &Secret| {
            let expected = signature(&self.callback_url, timestamp, key.expose());
            bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
        };
        // Both keys are always checked, so timing does not tell which one is in use.
        let current = matches(&keys.key);
        let previous = keys.previous.as_ref().is_some_and(matches);
        let key = match (current, previous) {
            (true, _) => KeyUsed::Current,
            (false, true) => KeyUsed::Previous,
            (false, false) => return Err(AuthError::Mismatch(family)),
        };
        Ok(Verified { family, key, signature: given })
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://www.example.com/your/callback";
    const GOOD: &str = "c72b60894140fa98920f1279219b7ed4";

    #[test]
    fn documented_vector() {
        assert_eq!(signature(URL, 1519375990, "test123"), GOOD);
    }

    fn verifier(previous: Option<&str>, ims: Option<&str>) -> Verifier {
        let config = AuthConfig {
            callback_url: Some(URL.into()),
            key: Some(Secret::new("test123")),
            previous_key: previous.map(Secret::new),
            ims_key: ims.map(Secret::new),
            max_skew_secs: 300,
            ..AuthConfig::default()
        };
        Verifier::from_config(&config).unwrap().unwrap()
    }

    fn headers(family: Family, ts: &str, sig: &str) -> HeaderMap {
        let (ts_name, sig_name) = family.header_names();
        let mut h = HeaderMap::new();
        h.insert(ts_name, ts.parse().unwrap());
        h.insert(sig_name, sig.parse().unwrap());
        h
    }

    fn vod(ts: &str, sig: &str) -> HeaderMap {
        headers(Family::Vod, ts, sig)
    }

    #[test]
    fn accepts_good_rejects_each_bad_case() {
        let v = verifier(None, None);
        let ok = |h: &HeaderMap, now| v.verify(h, now).map(|verified| verified.key);
        assert_eq!(ok(&vod("1519375990", GOOD), 1519375990 + 10), Ok(KeyUsed::Current));
        assert_eq!(ok(&vod("1519375990", &GOOD.to_uppercase()), 1519375990), Ok(KeyUsed::Current));
        assert_eq!(ok(&vod("1519375990", &GOOD[1..]), 1519375990), Err(AuthError::Mismatch(Family::Vod)));
        assert_eq!(ok(&vod("abc", GOOD), 1519375990), Err(AuthError::BadTimestamp(Family::Vod)));
        assert_eq!(
            ok(&vod("1519375990", GOOD), 1519375990 + 301),
            Err(AuthError::Stale { family: Family::Vod, max_secs: 300 })
        );
        assert!(v.verify(&vod("1519375990", GOOD), 1519375990 - 301).is_err());
        assert_eq!(v.verify(&HeaderMap::new(), 0), Err(AuthError::Unsigned));
        let mut only_ts = HeaderMap::new();
        only_ts.insert(TIMESTAMP_HEADER, "1".parse().unwrap());
        assert_eq!(v.verify(&only_ts, 1), Err(AuthError::MissingSignature(Family::Vod)));
    }

    #[test]
    fn previous_key_still_accepted_during_rotation() {
        let v = Verifier {
            vod: Some(Keys { key: Secret::new("new-key"), previous: Some(Secret::new("test123")) }),
            ..verifier(None, None)
        };
        assert_eq!(v.verify(&vod("1519375990", GOOD), 1519375990).map(|v| v.key), Ok(KeyUsed::Previous));
    }

    /// The same formula and vector under X-ICE-*, checked only against the IMS keys.
    #[test]
    fn ims_signatures_use_their_own_headers_and_keys() {
        let ims_only = Verifier { vod: None, ..verifier(None, Some("test123")) };
        let verified = ims_only.verify(&headers(Family::Ims, "1519375990", GOOD), 1519375990).unwrap();
        assert_eq!((verified.family, verified.key), (Family::Ims, KeyUsed::Current));
        // X-VOD headers are never checked against the IMS key, nor X-ICE against the VOD key.
        assert_eq!(
            ims_only.verify(&vod("1519375990", GOOD), 1519375990),
            Err(AuthError::NotConfigured(Family::Vod))
        );
        let vod_only = verifier(None, None);
        let ims = headers(Family::Ims, "1519375990", GOOD);
        assert_eq!(vod_only.verify(&ims, 1519375990), Err(AuthError::NotConfigured(Family::Ims)));
        let both = verifier(None, Some("another-ims-key"));
        assert_eq!(both.verify(&ims, 1519375990), Err(AuthError::Mismatch(Family::Ims)));
        assert!(both.verify(&ims, 1519375990).unwrap_err().to_string().contains("X-ICE-SIGNATURE"));
    }

    #[test]
    fn errors_never_show_keys_signatures_or_the_clock_distance() {
        let v = verifier(None, None);
        let err = v.verify(&vod("1519375990", "00"), 1519375990).unwrap_err().to_string();
        assert!(!err.contains("test123") && !err.contains("c72b6089"), "{err}");
        let stale = v.verify(&vod("1519375990", GOOD), 1519375990 + 4321).unwrap_err().to_string();
        assert_eq!(stale, "X-VOD-TIMESTAMP is more than 300 s away from now");
    }

    #[test]
    fn key_without_url_is_a_config_error() {
        let config = AuthConfig { key: Some(Secret::new("k")), ..AuthConfig::default() };
        let err = Verifier::from_config(&config).unwrap_err().to_string();
        assert!(err.starts_with("auth.callback_url: is required with auth.key"), "{err}");
        let config = AuthConfig { ims_key: Some(Secret::new("k")), ..AuthConfig::default() };
        let err = Verifier::from_config(&config).unwrap_err().to_string();
        assert!(err.starts_with("auth.callback_url: is required with auth.ims_key"), "{err}");
        // The same rule as check-config: an empty key is an error, not "no key".
        let config = AuthConfig { key: Some(Secret::new("")), ..AuthConfig::default() };
        assert!(Verifier::from_config(&config).unwrap_err().to_string().starts_with("auth.key: is empty"));
        assert!(Verifier::from_config(&AuthConfig::default()).unwrap().is_none());
    }
}
