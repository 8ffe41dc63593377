//! Alibaba Cloud's V3 request signature, `ACS3-HMAC-SHA256`, written from the documentation ("V3
//! request structure and signature"); there is no Rust SDK, and none is needed.
//!
//! ```text
//! CanonicalRequest = METHOD \n "/" \n CanonicalQueryString \n CanonicalHeaders \n SignedHeaders \n hex(sha256(body))
//! StringToSign     = "ACS3-HMAC-SHA256" \n hex(sha256(CanonicalRequest))
//! Signature        = hex(HMAC-SHA256(AccessKeySecret, StringToSign))
//! Authorization    = ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=<names>,Signature=<hex>
//! ```
//!
//! The query: parameters sorted by name, names and values percent-encoded per RFC 3986 (only
//! `A-Z a-z 0-9 - _ . ~` kept, every other byte `%XX` in upper case: a space is `%20`, `*` `%2A`,
//! `+` `%2B`), `k=v` joined by `&`; the request sends exactly the string that was signed. The
//! signed headers: `host`, every `x-acs-*`, and `content-type` when sent; names lower-cased and
//! sorted, values trimmed, each line `name:value\n`.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The algorithm's name, first in the string to sign and in `Authorization`.
pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// RFC 3986 percent-encoding: unreserved characters kept, every other byte `%XX` (upper case).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The canonical query string of `params`: encoded, sorted by encoded name (then value).
pub fn canonical_query(params: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> =
        params.iter().map(|(k, v)| (percent_encode(k), percent_encode(v))).collect();
    encoded.sort();
    encoded.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// What is signed: the method, the canonical query, the headers to sign (any case, any order)
/// and the body.
pub struct Signable<'a> {
    pub method: &'a str,
    pub query: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// The signature and the `SignedHeaders` list of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub signed_headers: String,
    /// hex(sha256(CanonicalRequest)), for tests and diagnostics.
    pub hashed_canonical_request: String,
    pub signature: String,
}

impl Signature {
    /// The `Authorization` header's value.
    pub fn authorization(&self, access_key_id: &str) -> String {
        format!(
            "{ALGORITHM} Credential={access_key_id},SignedHeaders={},Signature={}",
            self.signed_headers, self.signature
        )
    }
}

/// Signs `request` with `secret`. Only `host`, `x-acs-*` and `content-type` headers are signed.
pub fn sign(request: &Signable<'_>, secret: &str) -> Signature {
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .filter(|(k, _)| k == "host" || k == "content-type" || k.starts_with("x-acs-"))
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");
    let canonical_request = format!(
        "{}\n/\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method,
        request.query,
        sha256_hex(request.body)
    );
    let hashed_canonical_request = sha256_hex(canonical_request.as_bytes());
    let string_to_sign = format!("{ALGORITHM}\n{hashed_canonical_request}");
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key");
    mac.update(string_to_sign.as_bytes());
    let signature = hex(&mac.finalize().into_bytes());
    Signature { signed_headers, hashed_canonical_request, signature }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The documentation's fixed-value example.
    #[test]
    fn the_documented_vector() {
        let query = canonical_query(&[
            ("ImageId".into(), "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd".into()),
            ("RegionId".into(), "cn-shanghai".into()),
        ]);
        assert_eq!(query, "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai");
        let headers: Vec<(String, String)> = [
            ("host", "ecs.cn-shanghai.aliyuncs.com"),
            ("x-acs-action", "RunInstances"),
            ("x-acs-version", "2014-05-26"),
            ("x-acs-date", "2023-10-26T10:22:32Z"),
            ("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"),
            ("x-acs-content-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let signed = sign(
            &Signable { method: "POST", query: &query, headers: &headers, body: b"" },
            "YourAccessKeySecret",
        );
        assert_eq!(
            signed.hashed_canonical_request,
            "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
        );
        assert_eq!(signed.signature, "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0");
        assert_eq!(
            signed.authorization("YourAccessKeyId"),
            "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;\
             x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,\
             Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
    }

    #[test]
    fn encoding_follows_rfc_3986() {
        assert_eq!(percent_encode("a b*c+d~e_f.g-h/中"), "a%20b%2Ac%2Bd~e_f.g-h%2F%E4%B8%AD");
        assert_eq!(percent_encode(r#"{"k":1}"#), "%7B%22k%22%3A1%7D");
    }

    proptest! {
        /// Any parameters (Unicode, `*`, `~`, spaces, `+`, JSON) give a canonical query whose
        /// pairs decode back to exactly the parameters, in name order, with nothing but
        /// unreserved characters and `%XX` escapes in it.
        #[test]
        fn the_canonical_query_round_trips(params in proptest::collection::btree_map(
            "[A-Za-z][A-Za-z0-9]{0,12}",
            prop_oneof![".*", "[ *~+=&%/]{0,8}", r#"\{"[a-z]{1,4}":\[1, "x y"\]\}"#],
            0..8,
        )) {
            let pairs: Vec<(String, String)> = params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let query = canonical_query(&pairs);
            prop_assert!(query.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%=&".contains(&b)), "{}", query);
            let decoded: Vec<(String, String)> = if query.is_empty() {
                Vec::new()
            } else {
                query.split('&').map(|pair| {
                    let (k, v) = pair.split_once('=').expect("k=v");
                    (decode(k), decode(v))
                }).collect()
            };
            prop_assert_eq!(decoded, pairs);
        }
    }

    fn decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).expect("hex"));
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).expect("UTF-8")
    }
}
