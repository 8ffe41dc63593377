//! A stand-in for the VOD OpenAPI (`https://vod.<region>.aliyuncs.com`), a real HTTP server on a
//! free 127.0.0.1 port. It re-derives every request's `ACS3-HMAC-SHA256` signature from the
//! documented algorithm, written out here again (not vodhook's code), with the AccessKey secret
//! of the id the request names; checks `x-acs-date` is within 15 minutes, the nonce is new, the
//! body's hash is the one sent, and an STS token, when the key has one, is sent and signed. It
//! answers `GetPlayInfo`, `GetVideoInfo` and `SubmitWorkflowJob` with the documented shapes
//! (numbers as strings in places, as the documentation's examples have them), and errors,
//! throttling, 500s or silence on demand.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

/// An AccessKey the stand-in knows.
#[derive(Debug, Clone)]
pub struct Key {
    pub id: String,
    pub secret: String,
    pub token: Option<String>,
}

/// How the next call is answered (after the checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The documented answer of the action.
    Normal,
    /// HTTP 400 `Throttling.User`.
    Throttling,
    /// HTTP 500 `InternalError`.
    ServerError,
    /// HTTP 404 `InvalidVideo.NotFound`.
    NotFound,
    /// Never answer.
    Hang,
    /// HTTP 200 streaming this many bytes of whitespace (never all in memory here).
    Huge(u64),
    /// HTTP 200 with an HTML page (a proxy's, say), not the API's JSON.
    Html,
}

/// One call as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Call {
    pub action: String,
    pub params: HashMap<String, String>,
    pub access_key_id: String,
    /// `None`: the signature and every check passed; else why it was refused.
    pub refused: Option<String>,
}

pub const PLAY_URL_FD: &str =
    "https://vod.example.com/sv/5a_1/video_FD.m3u8?auth_key=1733160000-0-0-9f_a&x=1";
pub const PLAY_URL_HD: &str = "https://vod.example.com/sv/5a_1/video_HD.mp4?auth_key=1733160000-0-0-b2=c";
pub const COVER_URL: &str = "https://img.example.com/snapshot/cover_00001.jpg?auth_key=1733160000-0-0-7e";

struct Shared {
    keys: Vec<Key>,
    calls: Mutex<Vec<Call>>,
    nonces: Mutex<HashSet<String>>,
    next: Mutex<VecDeque<Answer>>,
    answer: Mutex<Answer>,
    stop: watch::Receiver<bool>,
}

pub struct VodApi {
    url: String,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

impl VodApi {
    /// A stand-in that knows `keys`.
    pub async fn start(keys: Vec<Key>) -> VodApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let url = format!("http://127.0.0.1:{}", listener.local_addr().expect("address").port());
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            keys,
            calls: Mutex::default(),
            nonces: Mutex::default(),
            next: Mutex::default(),
            answer: Mutex::new(Answer::Normal),
            stop: stopped.clone(),
        });
        super::standins::serve_until(
            listener,
            axum::Router::new().fallback(handle).with_state(shared.clone()),
            stopped,
        );
        VodApi { url, shared, stop }
    }

    /// The endpoint, for `[vod] endpoint`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How every following call is answered.
    pub fn set_answer(&self, answer: Answer) {
        *lock(&self.shared.answer) = answer;
    }

    /// The next `n` calls get `answer`.
    pub fn answer_next(&self, n: usize, answer: Answer) {
        lock(&self.shared.next).extend(std::iter::repeat_n(answer, n));
    }

    pub fn calls(&self) -> Vec<Call> {
        lock(&self.shared.calls).clone()
    }

    /// The calls of `action` whose signature verified.
    pub fn verified(&self, action: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.action == action && c.refused.is_none()).collect()
    }

    pub fn refused(&self) -> Vec<String> {
        self.calls().into_iter().filter_map(|c| c.refused).collect()
    }
}

impl Drop for VodApi {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let action = header("x-acs-action");
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let verdict = verify(&shared, &method, &uri, &headers, &body);
    let access_key_id = credential_of(&header("authorization")).unwrap_or_default();
    let refused = verdict.err();
    lock(&shared.calls).push(Call {
        action: action.clone(),
        params: params.clone(),
        access_key_id,
        refused: refused.clone(),
    });
    if let Some(reason) = refused {
        return error(StatusCode::BAD_REQUEST, "SignatureDoesNotMatch", &reason);
    }
    let answer = lock(&shared.next).pop_front().unwrap_or_else(|| lock(&shared.answer).clone());
    match answer {
        Answer::Normal => normal(&action, &params),
        Answer::Throttling => {
            error(StatusCode::BAD_REQUEST, "Throttling.User", "Request was denied due to user flow control.")
        }
        Answer::ServerError => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "The request processing has failed due to some unknown error.",
        ),
        Answer::NotFound => {
            error(StatusCode::NOT_FOUND, "InvalidVideo.NotFound", "The video does not exist.")
        }
        Answer::Huge(bytes) => huge(bytes),
        Answer::Html => Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "text/html")
            .body(Body::from("<html><body>Welcome to the proxy</body></html>"))
            .expect("an HTML answer"),
        Answer::Hang => {
            let mut stop = shared.stop.clone();
            let _ = stop.wait_for(|s| *s).await;
            error(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "stopped")
        }
    }
}

/// `bytes` of spaces, produced as they are sent, 64 KiB a chunk.
fn huge(bytes: u64) -> Response {
    static CHUNK: [u8; 64 * 1024] = [b' '; 64 * 1024];
    let chunks = bytes.div_ceil(CHUNK.len() as u64);
    let stream = futures_util::stream::iter(
        (0..chunks).map(|_| Ok::<_, std::convert::Infallible>(Bytes::from_static(&CHUNK))),
    );
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .expect("a streamed answer")
}

fn credential_of(authorization: &str) -> Option<String> {
    let rest = authorization.strip_prefix("ACS3-HMAC-SHA256 ")?;
    rest.split(',').find_map(|part| part.strip_prefix("Credential=")).map(str::to_owned)
}

/// The documented checks, in the documented order of the algorithm.
fn verify(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let authorization = header("authorization").ok_or("no Authorization")?;
    let rest = authorization.strip_prefix("ACS3-HMAC-SHA256 ").ok_or("not ACS3-HMAC-SHA256")?;
    let field = |name: &str| rest.split(',').find_map(|p| p.trim().strip_prefix(name)).map(str::to_owned);
    let id = field("Credential=").ok_or("no Credential")?;
    let signed_headers = field("SignedHeaders=").ok_or("no SignedHeaders")?;
    let signature = field("Signature=").ok_or("no Signature")?;
    let key = shared.keys.iter().find(|k| k.id == id).ok_or("unknown AccessKeyId")?;
    if header("x-acs-version") != Some("2017-03-21") {
        return Err("x-acs-version is not 2017-03-21".into());
    }
    let date = header("x-acs-date").ok_or("no x-acs-date")?;
    let at = chrono::NaiveDateTime::parse_from_str(date, "%Y-%m-%dT%H:%M:%SZ")
        .map_err(|_| "x-acs-date is not yyyy-MM-ddTHH:mm:ssZ")?;
    if (chrono::Utc::now().naive_utc() - at).num_seconds().abs() > 15 * 60 {
        return Err("x-acs-date is more than 15 minutes off".into());
    }
    let nonce = header("x-acs-signature-nonce").ok_or("no nonce")?.to_owned();
    if !lock(&shared.nonces).insert(nonce) {
        return Err("nonce used before".into());
    }
    let body_hash = hex(&Sha256::digest(body));
    if header("x-acs-content-sha256") != Some(body_hash.as_str()) {
        return Err("x-acs-content-sha256 is not the body's".into());
    }
    let names: Vec<&str> = signed_headers.split(';').collect();
    for required in [
        "host",
        "x-acs-action",
        "x-acs-version",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
    ] {
        if !names.contains(&required) {
            return Err(format!("{required} is not signed"));
        }
    }
    if let Some(token) = &key.token
        && (header("x-acs-security-token") != Some(token.as_str())
            || !names.contains(&"x-acs-security-token"))
    {
        return Err("the STS token is missing or not signed".into());
    }
    let canonical_headers: String =
        names.iter().map(|n| format!("{n}:{}\n", header(n).unwrap_or(""))).collect();
    // The query exactly as sent: it must already be the canonical one (sorted, RFC 3986).
    let query = uri.query().unwrap_or("");
    let canonical = format!("{method}\n/\n{query}\n{canonical_headers}\n{signed_headers}\n{body_hash}");
    let to_sign = format!("ACS3-HMAC-SHA256\n{}", hex(&Sha256::digest(canonical.as_bytes())));
    let mut mac = Hmac::<Sha256>::new_from_slice(key.secret.as_bytes()).expect("any key");
    mac.update(to_sign.as_bytes());
    if hex(&mac.finalize().into_bytes()) != signature {
        return Err("signature does not match".into());
    }
    let sorted = {
        let mut pairs: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
        pairs.sort();
        pairs.join("&")
    };
    if sorted != query {
        return Err("the query is not sorted".into());
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn normal(action: &str, params: &HashMap<String, String>) -> Response {
    let video = params.get("VideoId").or(params.get("MediaId")).cloned().unwrap_or_default();
    let body = match action {
        "GetPlayInfo" => json!({
            "RequestId": "stand-in-play",
            "VideoBase": {"VideoId": video, "Title": "猫咪日常_第3集.mp4", "CoverURL": COVER_URL, "Duration": "135.6", "Status": "Normal", "MediaType": "video"},
            "PlayInfoList": {"PlayInfo": [
                {"PlayURL": PLAY_URL_FD, "Definition": "FD", "Format": "m3u8", "Width": 640, "Height": "360", "Size": "1234567", "Bitrate": "450.5", "Duration": "135.6", "Status": "Normal"},
                {"PlayURL": PLAY_URL_HD, "Definition": "HD", "Format": "mp4", "Width": "1920", "Height": 1080, "Size": 9876543, "Bitrate": 2100, "Duration": 135.6, "Status": "Normal"}
            ]}
        }),
        "GetVideoInfo" => json!({
            "RequestId": "stand-in-info",
            "Video": {"VideoId": video, "Title": "猫咪日常_第3集.mp4", "CoverURL": COVER_URL, "Duration": "135.6", "Size": "9876543", "Status": "Normal"}
        }),
        "SubmitWorkflowJob" => json!({"RequestId": "stand-in-submit"}),
        _ => return error(StatusCode::BAD_REQUEST, "InvalidAction.NotFound", "Specified api is not found"),
    };
    reply(StatusCode::OK, body)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    reply(
        status,
        json!({"RequestId": "stand-in-error", "HostId": "vod.cn-shanghai.aliyuncs.com", "Code": code, "Message": message}),
    )
}

fn reply(status: StatusCode, body: Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("stand-in reply")
}

/// How long a test waits for a hanging call's caller to give up, at most.
pub const HANG_PATIENCE: Duration = Duration::from_secs(10);
