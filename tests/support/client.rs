//! Sending requests to a vodhook under test, as VOD (or FC) would.

use serde_json::Value;

use super::process::PATIENCE;
use super::vod::{unix_now, vod_headers};

/// An HTTP client for 127.0.0.1 (no proxy from the environment), with a hang guard.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(PATIENCE).build().expect("reqwest client")
}

/// vodhook's answer to one request.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    /// The body parsed as JSON (`Null` when it is not).
    pub json: Value,
    pub text: String,
}

/// POSTs `body` to `url` with `headers`.
pub async fn post(url: &str, body: impl Into<reqwest::Body>, headers: &[(&str, String)]) -> Answer {
    let mut request = http_client().post(url).header("content-type", "application/json").body(body.into());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("read the answer");
    Answer { status, headers, json: serde_json::from_str(&text).unwrap_or(Value::Null), text }
}

/// A VOD HTTP callback: `body` POSTed to `url`, signed for `callback_url` with `key` now.
pub async fn callback(url: &str, callback_url: &str, key: &str, body: &str) -> Answer {
    post(url, body.to_owned(), &vod_headers(callback_url, key, unix_now())).await
}

/// The `{"error", "path"}` contract of every 4xx: a JSON body with a non-empty `error` string
/// and a `path` string.
pub fn assert_error_contract(headers: &http::HeaderMap, body: &Value, text: &str, what: &str) {
    assert_eq!(
        headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/json"[..]),
        "{what}: content-type"
    );
    let error = body.get("error").and_then(Value::as_str);
    assert!(error.is_some_and(|e| !e.is_empty()), "{what}: no \"error\" string in {text}");
    assert!(body.get("path").is_some_and(Value::is_string), "{what}: no \"path\" string in {text}");
}
