//! Keeping secrets out of logs and error messages.
//!
//! Secrets are held in [`Secret`], whose `Debug` and `Display` never show the value, and URLs
//! that carry tokens (DingTalk's `access_token`, WeCom's `key`, Slack's path) are shown through
//! [`redact_url`].

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
}
