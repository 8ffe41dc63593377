//! The pages under `/actions/`: small, self-contained HTML (no script, no external resource),
//! every value escaped, and the headers that keep a token-bearing URL from leaking: no
//! referrer, no framing, no caching, no sniffing, and a policy that allows only the page's own
//! style and a form posting back to itself.

use std::sync::OnceLock;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use sha2::{Digest, Sha256};

use crate::config::Locale;
use crate::template::locale::word;

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em;color:#222}\
h1{font-size:1.3em}dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em}dt{color:#666}\
dd{margin:0;word-break:break-all}button{font-size:1em;padding:.5em 1.5em}.note{color:#666}";

/// `Content-Security-Policy`: nothing but the inline style above (by its hash) and a form
/// posting to this page.
fn content_security_policy() -> &'static str {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY.get_or_init(|| {
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
        format!("default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
    })
}

/// `text` with HTML's five special characters escaped: safe in text and in quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One page: a heading (`heading`, escaped), the given body HTML (its values escaped by the
/// caller), in `locale`.
pub fn page(status: StatusCode, locale: Locale, heading: &str, body_html: &str) -> Response<Bytes> {
    let lang = locale.as_str();
    let html = format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{title}</title><style>{STYLE}</style></head>\
         <body><h1>{title}</h1>{body_html}</body></html>",
        title = escape(heading),
    );
    let mut response = Response::new(Bytes::from(html));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(policy) = HeaderValue::from_str(content_security_policy()) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    response
}

/// A refusal: `status` with one sentence (escaped).
pub fn refusal(status: StatusCode, locale: Locale, sentence: &str) -> Response<Bytes> {
    let heading = word(locale, "This link cannot be used");
    page(status, locale, &heading, &format!("<p>{}</p>", escape(sentence)))
}

/// A definition list of `(label, value)` pairs, both escaped; empty values left out.
pub fn details(locale: Locale, rows: &[(&str, &str)]) -> String {
    let rows: String = rows
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(label, value)| format!("<dt>{}</dt><dd>{}</dd>", escape(&word(locale, label)), escape(value)))
        .collect();
    format!("<dl>{rows}</dl>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_special_character() {
        assert_eq!(
            escape("<script>alert('1')</script> & \"x\""),
            "&lt;script&gt;alert(&#39;1&#39;)&lt;/script&gt; &amp; &quot;x&quot;"
        );
    }

    #[test]
    fn every_page_carries_the_security_headers() {
        let response = refusal(StatusCode::FORBIDDEN, Locale::En, "no");
        for name in [
            "content-security-policy",
            "referrer-policy",
            "x-frame-options",
            "cache-control",
            "x-content-type-options",
        ] {
            assert!(response.headers().contains_key(name), "{name}");
        }
        let policy = response.headers()["content-security-policy"].to_str().unwrap();
        assert!(policy.starts_with("default-src 'none'; style-src 'sha256-"), "{policy}");
    }
}
