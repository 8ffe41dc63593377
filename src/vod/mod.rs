//! The VOD OpenAPI (RPC style, version `2017-03-21`): `POST /` with every parameter in the query
//! string and an empty body, signed with V3 ([`sign`]). vodhook calls it for two things: play
//! links in messages (`GetPlayInfo`, [`play`]) and `vod` channels, whose actions are VOD calls
//! (`SubmitWorkflowJob`, `UpdateVideoInfo`, ...).
//!
//! Credentials ([`Credentials`]): on Function Compute, those FC hands the invocation being served
//! (`x-fc-access-key-id`, `x-fc-access-key-secret`, `x-fc-security-token`), trusted only when
//! running on FC (positive proof: the runtime's origin; a plain server's clients could send any
//! header); else the standard variables `ALIBABA_CLOUD_ACCESS_KEY_ID`,
//! `ALIBABA_CLOUD_ACCESS_KEY_SECRET`, `ALIBABA_CLOUD_SECURITY_TOKEN` (FC 3.0 sets them too). No
//! secret or token is ever logged or echoed: errors carry the API's `Code`, `Message` and
//! `RequestId`, scrubbed of both.
//!
//! Errors (`{"RequestId","HostId","Code","Message"}` with HTTP 4xx/5xx): `Throttling*`, 5xx,
//! `ServiceUnavailable`, `InternalError`, timeouts and connection errors are worth retrying;
//! anything else (`InvalidVideo.NotFound`, `Forbidden.*`, signature errors) is permanent.

pub mod play;
pub mod sign;

use std::sync::OnceLock;
use std::time::Duration;

use http::HeaderMap;
use serde_json::Value;

use crate::config::VodConfig;
use crate::redact::{Scrubber, Secret};
use sign::{Signable, canonical_query, sha256_hex};

/// The API version every call names.
pub const API_VERSION: &str = "2017-03-21";

/// An AccessKey pair, with the STS token of temporary credentials.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub access_key_secret: Secret,
    pub security_token: Option<Secret>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("sts", &self.security_token.is_some())
            .finish_non_exhaustive()
    }
}

/// The environment variables credentials come from, off FC.
pub mod env {
    pub const ACCESS_KEY_ID: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
    pub const ACCESS_KEY_SECRET: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";
    pub const SECURITY_TOKEN: &str = "ALIBABA_CLOUD_SECURITY_TOKEN";
}

impl Credentials {
    /// From `ALIBABA_CLOUD_*` (`lookup` reads a variable); `None` without an id and a secret.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Option<Credentials> {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        Some(Credentials {
            access_key_id: get(env::ACCESS_KEY_ID)?,
            access_key_secret: Secret::new(get(env::ACCESS_KEY_SECRET)?),
            security_token: get(env::SECURITY_TOKEN).map(Secret::new),
        })
    }

    /// From the `x-fc-*` headers of an invocation. Only for requests that came through Function
    /// Compute (the caller's proof): anywhere else these headers are whatever a client sent.
    pub fn from_fc_headers(headers: &HeaderMap) -> Option<Credentials> {
        let get = |name: &str| {
            headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
        };
        Some(Credentials {
            access_key_id: get("x-fc-access-key-id")?.to_owned(),
            access_key_secret: Secret::new(get("x-fc-access-key-secret")?),
            security_token: get("x-fc-security-token").map(Secret::new),
        })
    }

    fn scrubber(&self) -> Scrubber {
        let mut secrets = vec![self.access_key_secret.expose().to_owned()];
        secrets.extend(self.security_token.as_ref().map(|t| t.expose().to_owned()));
        Scrubber::new(secrets)
    }
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// Worth trying again: throttling, the service's trouble, a timeout.
    #[error("{0}")]
    Retry(String),
    /// Will fail again: a bad parameter, a missing video, no permission, a bad signature.
    #[error("{0}")]
    Permanent(String),
}

/// The VOD API at one endpoint. Cheap to create; the HTTP client is built on the first call.
pub struct VodApi {
    endpoint: url::Url,
    host: String,
    client: OnceLock<Result<reqwest::Client, String>>,
}

impl std::fmt::Debug for VodApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VodApi").field("endpoint", &self.endpoint.as_str()).finish()
    }
}

/// The endpoint of `region`: `https://vod.<region>.aliyuncs.com`, except `cn-hangzhou`, which
/// VOD serves from `vod.cn-shanghai.aliyuncs.com`.
pub fn endpoint_of(region: &str) -> String {
    let region = if region == "cn-hangzhou" { "cn-shanghai" } else { region };
    format!("https://vod.{region}.aliyuncs.com")
}

impl VodApi {
    /// The API of `[vod]`: its `endpoint`, else its `region`'s.
    pub fn from_config(config: &VodConfig) -> Result<VodApi, String> {
        let raw = config.endpoint.clone().unwrap_or_else(|| endpoint_of(&config.region));
        let endpoint =
            url::Url::parse(&raw).map_err(|e| format!("vod.endpoint {raw:?} is not a URL ({e})"))?;
        let host = match (endpoint.host_str(), endpoint.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => return Err(format!("vod.endpoint {raw:?} has no host")),
        };
        Ok(VodApi { endpoint, host, client: OnceLock::new() })
    }

    /// Calls `action` with `params`, signed with `credentials`, within `timeout`; the answer's
    /// JSON, or why it failed (scrubbed of the credentials).
    pub async fn call(
        &self,
        action: &str,
        params: &[(String, String)],
        credentials: &Credentials,
        timeout: Duration,
    ) -> Result<Value, CallError> {
        let scrubber = credentials.scrubber();
        let clean = |e: CallError| match e {
            CallError::Retry(r) => CallError::Retry(scrubber.clean(&r)),
            CallError::Permanent(r) => CallError::Permanent(scrubber.clean(&r)),
        };
        self.exchange(action, params, credentials, timeout).await.map_err(clean)
    }

    async fn exchange(
        &self,
        action: &str,
        params: &[(String, String)],
        credentials: &Credentials,
        timeout: Duration,
    ) -> Result<Value, CallError> {
        let client = self.client().map_err(|e| CallError::Permanent(e.to_owned()))?;
        let query = canonical_query(params);
        let headers = self.signed_headers(action, &query, credentials, chrono::Utc::now());
        let mut url = self.endpoint.clone();
        url.set_path("/");
        url.set_query((!query.is_empty()).then_some(query.as_str()));
        let mut request = client.post(url).timeout(timeout).body(Vec::new());
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request.send().await.map_err(|e| CallError::Retry(describe(action, e)))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| CallError::Retry(describe(action, e)))?;
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(json);
        }
        Err(classify(action, status, &json))
    }

    /// Every header of a call, `Authorization` last.
    fn signed_headers(
        &self,
        action: &str,
        query: &str,
        credentials: &Credentials,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), self.host.clone()),
            ("x-acs-action".into(), action.to_owned()),
            ("x-acs-version".into(), API_VERSION.into()),
            ("x-acs-date".into(), now.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            // Unique per request: the API refuses a nonce it has seen.
            ("x-acs-signature-nonce".into(), crate::dedup::unique_hex()),
            ("x-acs-content-sha256".into(), sha256_hex(b"")),
        ];
        if let Some(token) = &credentials.security_token {
            headers.push(("x-acs-security-token".into(), token.expose().to_owned()));
        }
        let signed = sign::sign(
            &Signable { method: "POST", query, headers: &headers, body: b"" },
            credentials.access_key_secret.expose(),
        );
        headers.push(("authorization".into(), signed.authorization(&credentials.access_key_id)));
        headers
    }

    fn client(&self) -> Result<&reqwest::Client, &str> {
        self.client
            .get_or_init(|| {
                reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .build()
                    .map_err(|e| format!("cannot build the HTTP client: {e}"))
            })
            .as_ref()
            .map_err(String::as_str)
    }
}

/// What an error answer means (see the module documentation).
fn classify(action: &str, status: http::StatusCode, json: &Value) -> CallError {
    let field = |name: &str| json.get(name).and_then(Value::as_str).unwrap_or("");
    let code = field("Code");
    let reason = format!(
        "VOD {action}: HTTP {status} {code}: {} (RequestId {})",
        crate::text::truncate_chars(field("Message"), 300),
        field("RequestId")
    );
    let reason = crate::text::printable(&reason).into_owned();
    let retry = status.is_server_error()
        || code.starts_with("Throttling")
        || matches!(code, "ServiceUnavailable" | "ServiceUnAvailable" | "InternalError");
    if retry { CallError::Retry(reason) } else { CallError::Permanent(reason) }
}

fn describe(action: &str, error: reqwest::Error) -> String {
    let kind = if error.is_timeout() { "timed out" } else { "could not be reached" };
    format!("VOD {action}: the API {kind}: {}", crate::text::with_causes(&error.without_url()))
}

/// A number the API sends as a number or a string (its own examples quote `Size`, `Width`).
pub fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hangzhou_is_served_from_shanghai() {
        assert_eq!(endpoint_of("cn-hangzhou"), "https://vod.cn-shanghai.aliyuncs.com");
        assert_eq!(endpoint_of("ap-southeast-1"), "https://vod.ap-southeast-1.aliyuncs.com");
    }

    #[test]
    fn errors_are_retried_or_not_by_code_and_status() {
        let err = |status: u16, code: &str| {
            classify(
                "GetPlayInfo",
                http::StatusCode::from_u16(status).unwrap(),
                &serde_json::json!({"Code": code, "Message": "m", "RequestId": "r"}),
            )
        };
        assert!(matches!(err(400, "Throttling.User"), CallError::Retry(_)));
        assert!(matches!(err(503, "ServiceUnavailable"), CallError::Retry(_)));
        assert!(matches!(err(500, "InternalError"), CallError::Retry(_)));
        assert!(matches!(err(404, "InvalidVideo.NotFound"), CallError::Permanent(_)));
        assert!(matches!(err(403, "Forbidden.RAM"), CallError::Permanent(_)));
        assert!(matches!(err(400, "SignatureDoesNotMatch"), CallError::Permanent(_)));
        assert_eq!(
            err(404, "InvalidVideo.NotFound").to_string(),
            "VOD GetPlayInfo: HTTP 404 Not Found InvalidVideo.NotFound: m (RequestId r)"
        );
    }

    #[test]
    fn numbers_come_as_numbers_or_strings() {
        assert_eq!(number(&serde_json::json!(1280)), Some(1280.0));
        assert_eq!(number(&serde_json::json!("1280")), Some(1280.0));
        assert_eq!(number(&serde_json::json!("9.5")), Some(9.5));
        assert_eq!(number(&serde_json::json!("x")), None);
    }

    #[test]
    fn fc_credentials_come_from_the_headers_and_never_show() {
        let mut headers = HeaderMap::new();
        headers.insert("x-fc-access-key-id", "STS.id".parse().unwrap());
        headers.insert("x-fc-access-key-secret", "fc-secret-123".parse().unwrap());
        headers.insert("x-fc-security-token", "fc-token-456".parse().unwrap());
        let creds = Credentials::from_fc_headers(&headers).unwrap();
        assert_eq!(creds.access_key_id, "STS.id");
        let shown = format!("{creds:?}");
        assert!(!shown.contains("fc-secret-123") && !shown.contains("fc-token-456"), "{shown}");
        let env = |k: &str| match k {
            env::ACCESS_KEY_ID => Some("LTAI".to_owned()),
            env::ACCESS_KEY_SECRET => Some("s".to_owned()),
            _ => None,
        };
        assert!(Credentials::from_env(env).is_some_and(|c| c.security_token.is_none()));
        assert!(Credentials::from_env(|_| None).is_none());
    }
}
