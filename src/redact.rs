//! Keeping secrets out of logs and error messages: the one place that knows how.
//!
//! Secrets are held in [`Secret`], whose `Debug` and `Display` never show the value; URLs that
//! carry tokens (DingTalk's `access_token`, WeCom's `key`, Slack's path) are shown through
//! [`redact_url`]; text that may have picked a secret up (a service's reply, a Redis error) goes
//! through a [`Scrubber`] made from the secrets it could contain; and messages from the TOML
//! parser lose the values they quote ([`without_values`]).

use serde::{Deserialize, Deserializer};

/// A secret value (auth key, bot secret, webhook signing secret, a URL with a token in it).
/// Read it with [`Secret::expose`] where it is used, and nowhere else.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// A URL fit for a log line: scheme, host and port only, e.g. `https://oapi.dingtalk.com/…`.
/// Paths and queries are dropped because chat services put tokens in both.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            match u.port() {
                Some(port) => format!("{}://{host}:{port}/…", u.scheme()),
                None => format!("{}://{host}/…", u.scheme()),
            }
        }
        Err(_) => "(invalid URL)".to_owned(),
    }
}

/// Replaces known secrets in text with `***`.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    /// Longest first, so a whole URL goes before the token inside it.
    needles: Vec<String>,
}

impl Scrubber {
    /// Shorter strings than this are not treated as secrets (they would mangle ordinary words).
    pub const MIN_LEN: usize = 8;

    /// A scrubber for `secrets`; those shorter than [`Scrubber::MIN_LEN`] are skipped.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        Self::with_min_len(secrets, Self::MIN_LEN)
    }

    /// A scrubber that hides every one of `secrets`, however short (Redis passwords: a short one is
    /// still a password, and Redis' messages hold no ordinary words it could mangle).
    pub fn exact(secrets: impl IntoIterator<Item = String>) -> Self {
        Self::with_min_len(secrets, 1)
    }

    fn with_min_len(secrets: impl IntoIterator<Item = String>, min_len: usize) -> Self {
        let mut needles: Vec<String> = secrets.into_iter().filter(|n| n.len() >= min_len).collect();
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        needles.dedup();
        Scrubber { needles }
    }

    pub fn clean(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for needle in &self.needles {
            if text.contains(needle.as_str()) {
                text = text.replace(needle.as_str(), "***");
            }
        }
        text
    }
}

/// Removes the values serde quotes in its messages: `invalid type: string "x", expected u64`
/// becomes `invalid type: string, expected u64`. An unknown enum variant is shown only when it
/// looks like a word (`telegram`), not like a URL or a token put in the wrong field.
pub fn without_values(message: &str) -> String {
    static VALUE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r#"(string|integer|floating point|boolean|character|bytes) (?:"(?:[^"\\]|\\.)*"|`[^`]*`)"#,
        )
        .expect("a valid constant regex")
    });
    static VARIANT: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"unknown variant `([^`]*)`").expect("a valid constant regex")
    });
    let message = VALUE.replace_all(message, "$1");
    VARIANT
        .replace_all(&message, |caps: &regex::Captures<'_>| {
            let value = &caps[1];
            let word =
                value.len() <= 24 && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if word {
                format!("unknown variant `{value}`")
            } else {
                "unknown variant (value not shown)".to_owned()
            }
        })
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn urls_lose_path_and_query() {
        assert_eq!(
            redact_url("https://oapi.dingtalk.com/robot/send?access_token=abc"),
            "https://oapi.dingtalk.com/…"
        );
        assert_eq!(redact_url("http://127.0.0.1:8080/hooks/T000/B000/XXX"), "http://127.0.0.1:8080/…");
        assert_eq!(redact_url("not a url with token"), "(invalid URL)");
    }

    #[test]
    fn scrubbing_keeps_the_kind_drops_the_value() {
        assert_eq!(
            without_values(r#"invalid type: string "hunter2", expected u64"#),
            "invalid type: string, expected u64"
        );
        assert_eq!(
            without_values("invalid type: integer `42`, expected a string"),
            "invalid type: integer, expected a string"
        );
        assert_eq!(
            without_values("unknown field `nmae`, expected one of `name`"),
            "unknown field `nmae`, expected one of `name`"
        );
    }

    #[test]
    fn scrubbers_replace_longest_first_and_skip_short_words() {
        let scrubber = Scrubber::new([
            "https://x.example.com/t/secret-token-1".into(),
            "secret-token-1".into(),
            "short".into(),
        ]);
        assert_eq!(
            scrubber.clean("at https://x.example.com/t/secret-token-1 and secret-token-1, short"),
            "at *** and ***, short"
        );
        assert_eq!(Scrubber::exact(["pw".into()]).clean("auth pw failed"), "auth *** failed");
    }
}
