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
    /// Answers are read up to this (`[vod] max_answer_bytes`); a longer one fails the call.
    max_answer_bytes: usize,
    client: OnceLock<Result<reqwest::Client, String>>,
}

impl std::fmt::Debug for VodApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VodApi").field("endpoint", &self.endpoint.as_str()).finish()
    }
}

impl VodApi {
    /// The API of `[vod]`: its `endpoint`, else its `region`'s (the rule is
    /// [`VodConfig::endpoint`], which `check-config` applies too).
    pub fn from_config(config: &VodConfig) -> Result<VodApi, crate::config::Problem> {
        let endpoint = config.endpoint()?;
        let host = match (endpoint.host_str(), endpoint.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => return Err(crate::config::Problem::new("vod.endpoint", "has no host")),
        };
        Ok(VodApi { endpoint, host, max_answer_bytes: config.max_answer_bytes, client: OnceLock::new() })
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
        let exchange = async {
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
            let mut response = request.send().await.map_err(|e| CallError::Retry(describe(action, e)))?;
            let status = response.status();
            let answer = crate::reply::read_capped(&mut response, self.max_answer_bytes)
                .await
                .map_err(|e| CallError::Retry(describe(action, e)))?;
            if answer.cut {
                return Err(CallError::Retry(format!(
                    "VOD {action}: the answer is larger than vod.max_answer_bytes ({} bytes): not read",
                    self.max_answer_bytes
                )));
            }
            let json: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            if status.is_success() {
                return documented(action, json);
            }
            Err(classify(action, status, &json))
        };
        exchange.await.map_err(clean)
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
            ("x-acs-signature-nonce".into(), crate::unique::hex()),
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

/// A successful answer is the API's JSON object with its `RequestId`; anything else (an HTML
/// page from a proxy, whitespace, a bare value) did not come from the API, so the call is not
/// known to have happened: worth trying again, never counted as done.
fn documented(action: &str, json: Value) -> Result<Value, CallError> {
    match json.get("RequestId").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => Ok(json),
        _ => Err(CallError::Retry(format!(
            "VOD {action}: HTTP 200 without the API's JSON (no RequestId): not an answer of the VOD API"
        ))),
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

    fn endpoint(region: &str, endpoint: Option<&str>) -> Result<String, String> {
        let config =
            VodConfig { region: region.into(), endpoint: endpoint.map(str::to_owned), ..Default::default() };
        config.endpoint().map(|u| u.to_string()).map_err(|p| p.to_string())
    }

    #[test]
    fn hangzhou_is_served_from_shanghai() {
        assert_eq!(endpoint("cn-hangzhou", None).unwrap(), "https://vod.cn-shanghai.aliyuncs.com/");
        assert_eq!(endpoint("ap-southeast-1", None).unwrap(), "https://vod.ap-southeast-1.aliyuncs.com/");
    }

    /// Found by an outside attack: both passed check-config and sent the signed call elsewhere.
    #[test]
    fn a_region_or_endpoint_cannot_move_the_call_to_another_host() {
        let err = endpoint("cn-shanghai.evil.example/x?", None).unwrap_err();
        assert!(
            err.starts_with("vod.region: ") && err.contains("lowercase letters, digits and '-'"),
            "{err}"
        );
        assert!(endpoint("", None).unwrap_err().starts_with("vod.region: "));
        let err =
            endpoint("cn-shanghai", Some("https://vod.cn-shanghai.aliyuncs.com@127.0.0.1:1/")).unwrap_err();
        assert!(err.starts_with("vod.endpoint: ") && err.contains("user name or password"), "{err}");
        let err = endpoint("cn-shanghai", Some("https://user:hunter2pass@vod.example.com/")).unwrap_err();
        assert!(!err.contains("hunter2pass"), "{err}");
        for moved in
            ["https://vod.example.com/x", "https://vod.example.com/?a=1", "https://vod.example.com/#f"]
        {
            let err = endpoint("cn-shanghai", Some(moved)).unwrap_err();
            assert!(err.contains("no path, query or fragment"), "{moved}: {err}");
        }
        assert!(endpoint("cn-shanghai", Some("ftp://vod.example.com")).unwrap_err().contains("https://"));
        // Plain http stays allowed, for stand-ins; a trailing slash or none is the same.
        assert_eq!(endpoint("x", Some("http://127.0.0.1:8080")).unwrap(), "http://127.0.0.1:8080/");
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
