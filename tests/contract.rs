//! The HTTP contract of the core service (`App::handle`), in process as axum's testing example
//! does it: every envelope on an HTTP-trigger path and on `/invoke`, callback authentication,
//! FC's hooks, methods, and the `{"error", "path"}` answer for every input that cannot be an
//! event. What needs a real process and socket (the streamed body limit, SIGTERM, FC's log
//! markers and request ids, the timer) is in `tests/server.rs`.

mod support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use support::app::{InProcess, assert_error_body, message};
use support::{fixture, fixture_bytes, unix_now, vod_headers, vod_signature};
use vodhook::handler::Origin;

fn json_ct() -> (&'static str, String) {
    ("content-type", "application/json".to_owned())
}

fn request_id(id: &str) -> (&'static str, String) {
    ("x-fc-request-id", id.to_owned())
}

/// The headers FC sends with a request to `path`: its mark on an event invocation (`/invoke`),
/// nothing on an HTTP trigger's requests here.
fn fc_marks(path: &str) -> Vec<(&'static str, String)> {
    if path == "/invoke" { vec![("x-fc-control-path", "/invoke".to_owned())] } else { vec![] }
}

// --- envelopes ---------------------------------------------------------------------------------

struct Delivery {
    name: &'static str,
    body: Vec<u8>,
    /// The identities of the events it holds (`EventType:TaskId`, ...), which the pipeline's log
    /// lines for the request name.
    identities: Vec<&'static str>,
}

fn deliveries() -> Vec<Delivery> {
    let bare = fixture_bytes("runtime-bare-event.json");
    vec![
        Delivery {
            name: "bare event",
            body: bare.clone(),
            identities: vec!["WorkflowTaskComplete:task-rt-bare-0001"],
        },
        Delivery {
            name: "base64 event (MNS STREAM, raw)",
            body: BASE64.encode(&bare).into_bytes(),
            identities: vec!["WorkflowTaskComplete:task-rt-bare-0001"],
        },
        Delivery {
            name: "FC MNS queue trigger, CloudEvents array",
            body: fixture_bytes("runtime-mns-queue-cloudevents.json"),
            identities: vec![
                "WorkflowTaskComplete:task-rt-mnsq-0001",
                "FileUploadComplete:f0e1d2c3b4a5968778695a4b3c2d1e0f:2025-04-01T02:28:55Z",
            ],
        },
        Delivery {
            name: "single CloudEvent",
            body: fixture_bytes("runtime-cloudevent-single.json"),
            identities: vec!["WorkflowTaskComplete:task-rt-ce-0001"],
        },
        Delivery {
            name: "MNS topic, JSON format, plain Message",
            body: fixture_bytes("runtime-mns-topic-json.json"),
            identities: vec!["WorkflowTaskComplete:task-rt-topic-0001"],
        },
        Delivery {
            name: "MNS topic, JSON format, base64 Message",
            body: fixture_bytes("runtime-mns-topic-json-base64.json"),
            identities: vec!["WorkflowTaskComplete:task-rt-topic-0002"],
        },
        Delivery {
            name: "MNS topic, STREAM format with attributes",
            body: fixture_bytes("runtime-mns-stream.json"),
            identities: vec!["WorkflowTaskComplete:task-rt-stream-0001"],
        },
    ]
}

#[tokio::test]
async fn every_envelope_via_http_trigger_and_invoke() {
    let vodhook = InProcess::new("", &[]);
    for (d, delivery) in deliveries().iter().enumerate() {
        // `/` and another path are HTTP-trigger calls; `/invoke` is FC's event invocation.
        for (p, path) in ["/", "/vod/callback", "/invoke"].iter().enumerate() {
            let id = format!("env-{d}-{p}");
            let what = format!("{} via POST {path}", delivery.name);
            let headers = [vec![json_ct(), request_id(&id)], fc_marks(path)].concat();
            let reply = vodhook.post(path, &headers, delivery.body.clone()).await;
            assert_eq!(reply.status, StatusCode::OK, "{what}: {}", reply.text);
            let n = delivery.identities.len();
            assert_eq!(reply.body["events"], json!(n), "{what}: {}", reply.text);
            assert!(reply.body.get("rejected").is_none(), "{what}: {}", reply.text);
            assert!(reply.headers.get("x-fc-status").is_none(), "{what}: success carries no x-fc-status");

            // The right events were decoded: the request's log lines name each of them.
            let logged = vodhook.text_of(&id);
            for identity in &delivery.identities {
                assert!(logged.contains(identity), "{what}: {identity} not in the request's logs:\n{logged}");
            }
        }
    }
}

// --- authentication ----------------------------------------------------------------------------

const KEY: &str = "k3y-9f2c61d0a4b8e7";
const OLD_KEY: &str = "old-k3y-5e1d7c3b";
/// As configured in VOD: deliberately not the address the test connects to, because the URL
/// signed is the configured one, never rebuilt from the request.
const CALLBACK_URL: &str = "https://vodhook.example.com/vod/callback";

struct AuthCase {
    name: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    status: StatusCode,
    /// What the refusal's log line (and error) must say.
    reason: &'static str,
}

fn signed(url: &str, ts: i64, key: &str) -> Vec<(&'static str, String)> {
    vod_headers(url, key, ts)
}

fn auth_cases(now: i64) -> Vec<AuthCase> {
    let http_invoke = || ("x-fc-control-path", "/http-invoke".to_owned());
    let fc_event = || ("x-fc-control-path", "/invoke".to_owned());
    let with = |mut h: Vec<(&'static str, String)>, extra: (&'static str, String)| {
        h.push(extra);
        h
    };
    let ok = StatusCode::OK;
    let denied = StatusCode::UNAUTHORIZED;
    vec![
        AuthCase { name: "good", path: "/", headers: signed(CALLBACK_URL, now, KEY), status: ok, reason: "" },
        AuthCase {
            name: "good, uppercase hex",
            path: "/vod/callback",
            headers: vec![
                ("x-vod-timestamp", now.to_string()),
                ("x-vod-signature", vod_signature(CALLBACK_URL, now, KEY).to_uppercase()),
            ],
            status: ok,
            reason: "",
        },
        AuthCase {
            name: "good, 250 s old (inside the 300 s window)",
            path: "/",
            headers: signed(CALLBACK_URL, now - 250, KEY),
            status: ok,
            reason: "",
        },
        AuthCase {
            name: "previous key during rotation",
            path: "/",
            headers: signed(CALLBACK_URL, now, OLD_KEY),
            status: ok,
            reason: "",
        },
        AuthCase {
            name: "wrong key",
            path: "/",
            headers: signed(CALLBACK_URL, now, "not-the-key"),
            status: denied,
            reason: "does not match",
        },
        AuthCase {
            name: "signed over the request's own URL instead of the configured one",
            path: "/vod/callback",
            headers: signed("http://127.0.0.1/vod/callback", now, KEY),
            status: denied,
            reason: "does not match",
        },
        AuthCase {
            name: "signature for another timestamp",
            path: "/",
            headers: vec![
                ("x-vod-timestamp", now.to_string()),
                ("x-vod-signature", vod_signature(CALLBACK_URL, now - 1, KEY)),
            ],
            status: denied,
            reason: "does not match",
        },
        AuthCase {
            name: "stale: 400 s old",
            path: "/",
            headers: signed(CALLBACK_URL, now - 400, KEY),
            status: denied,
            reason: "away from now",
        },
        AuthCase {
            name: "stale: 400 s in the future",
            path: "/",
            headers: signed(CALLBACK_URL, now + 400, KEY),
            status: denied,
            reason: "away from now",
        },
        AuthCase {
            name: "stale, previous key",
            path: "/",
            headers: signed(CALLBACK_URL, now - 3600, OLD_KEY),
            status: denied,
            reason: "away from now",
        },
        AuthCase {
            name: "no headers",
            path: "/",
            headers: vec![],
            status: denied,
            reason: "missing X-VOD-TIMESTAMP",
        },
        AuthCase {
            name: "timestamp only",
            path: "/",
            headers: vec![("x-vod-timestamp", now.to_string())],
            status: denied,
            reason: "missing X-VOD-SIGNATURE",
        },
        AuthCase {
            name: "signature only",
            path: "/",
            headers: vec![("x-vod-signature", vod_signature(CALLBACK_URL, now, KEY))],
            status: denied,
            reason: "missing X-VOD-TIMESTAMP",
        },
        AuthCase {
            name: "empty signature",
            path: "/",
            headers: vec![("x-vod-timestamp", now.to_string()), ("x-vod-signature", String::new())],
            status: denied,
            reason: "missing X-VOD-SIGNATURE",
        },
        AuthCase {
            name: "timestamp in milliseconds",
            path: "/",
            headers: signed(CALLBACK_URL, now * 1000, KEY),
            status: denied,
            reason: "away from now",
        },
        AuthCase {
            name: "timestamp not a number",
            path: "/",
            headers: vec![
                ("x-vod-timestamp", "yesterday".to_owned()),
                ("x-vod-signature", vod_signature(CALLBACK_URL, now, KEY)),
            ],
            status: denied,
            reason: "not a unix time",
        },
        AuthCase {
            name: "/invoke marked by FC as an event invocation needs no signature",
            path: "/invoke",
            headers: vec![fc_event()],
            status: ok,
            reason: "",
        },
        AuthCase {
            name: "/invoke marked by FC ignores a wrong signature",
            path: "/invoke",
            headers: with(signed(CALLBACK_URL, now, "not-the-key"), fc_event()),
            status: ok,
            reason: "",
        },
        AuthCase {
            name: "/invoke without FC's mark, unsigned",
            path: "/invoke",
            headers: vec![],
            status: denied,
            reason: "missing X-VOD-TIMESTAMP",
        },
        AuthCase {
            name: "/invoke?x=1 without FC's mark",
            path: "/invoke?x=1",
            headers: vec![],
            status: denied,
            reason: "missing X-VOD-TIMESTAMP",
        },
        AuthCase {
            name: "/invoke as FC's HTTP trigger (x-fc-control-path), unsigned",
            path: "/invoke",
            headers: vec![http_invoke()],
            status: denied,
            reason: "missing X-VOD-TIMESTAMP",
        },
        AuthCase {
            name: "/invoke as FC's HTTP trigger, wrong key",
            path: "/invoke",
            headers: with(signed(CALLBACK_URL, now, "not-the-key"), http_invoke()),
            status: denied,
            reason: "does not match",
        },
        AuthCase {
            name: "/invoke as FC's HTTP trigger, signed",
            path: "/invoke",
            headers: with(signed(CALLBACK_URL, now, KEY), http_invoke()),
            status: ok,
            reason: "",
        },
    ]
}

#[tokio::test]
async fn callback_authentication() {
    let vodhook = InProcess::new(
        "",
        &[
            ("VODHOOK_AUTH_KEY", KEY),
            ("VODHOOK_AUTH_KEY_PREVIOUS", OLD_KEY),
            ("VODHOOK_CALLBACK_URL", CALLBACK_URL),
        ],
    );
    let body = fixture_bytes("runtime-bare-event.json");
    let now = unix_now();
    // Every signature the service could have computed for these requests: none may be logged.
    let mut never_logged = vec![KEY.to_owned(), OLD_KEY.to_owned()];
    for (i, case) in auth_cases(now).into_iter().enumerate() {
        let id = format!("auth-{i}");
        let mut headers = case.headers.clone();
        headers.push(json_ct());
        headers.push(request_id(&id));
        let timestamp = case.headers.iter().find(|(n, _)| *n == "x-vod-timestamp");
        if let Some(ts) = timestamp.and_then(|(_, ts)| ts.parse::<i64>().ok()) {
            never_logged.push(vod_signature(CALLBACK_URL, ts, KEY));
            never_logged.push(vod_signature(CALLBACK_URL, ts, OLD_KEY));
        }
        let reply = vodhook.post(case.path, &headers, body.clone()).await;
        assert_eq!(reply.status, case.status, "{}: {}", case.name, reply.text);
        if case.status == StatusCode::OK {
            assert_eq!(reply.body["events"], 1, "{}: {}", case.name, reply.text);
            continue;
        }
        assert_error_body(&reply, case.name);
        assert!(
            reply.body["error"].as_str().unwrap_or_default().contains(case.reason),
            "{}: the error should say {:?}: {}",
            case.name,
            case.reason,
            reply.text
        );
        // 401 on an HTTP-trigger call is not FC's function-error signal.
        assert!(reply.headers.get("x-fc-status").is_none(), "{}", case.name);
        let lines = vodhook.lines_of(&id);
        let refusal = lines.iter().find(|l| message(l).contains("signature check failed"));
        let refusal = refusal.unwrap_or_else(|| panic!("{}: no refusal logged: {lines:#?}", case.name));
        let reason = refusal["fields"]["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains(case.reason),
            "{}: the log should say {:?}: {refusal}",
            case.name,
            case.reason
        );
        assert_eq!(refusal["level"], "WARN", "{}", case.name);
        // It names the URL the server checked against, so it can be compared with VOD's.
        assert_eq!(refusal["fields"]["expected_callback_url"], CALLBACK_URL, "{}", case.name);
        // Nothing else happened: the refusal, then the request's summary line with no event.
        let summary = lines.iter().find(|l| message(l) == "request done").expect("a summary line");
        assert_eq!(summary["fields"]["status"], 401, "{}: {summary}", case.name);
        assert_eq!(summary["fields"]["events"], 0, "{}: {summary}", case.name);
        assert_eq!(
            lines.len(),
            2,
            "{}: a refused callback must not reach the pipeline: {lines:#?}",
            case.name
        );
    }
    let previous = vodhook.lines().into_iter().find(|l| message(l).contains("previous auth key"));
    let previous = previous.expect("a line about the previous key");
    assert_eq!(previous["span"]["request_id"], "auth-3", "logged for the rotation case: {previous}");
    let logs = vodhook.text();
    for secret in &never_logged {
        assert!(!logs.contains(secret.as_str()), "the logs show a secret or expected signature {secret:?}");
    }
    assert!(!logs.contains("unauthenticated"), "no 'unauthenticated' warning with a key set");
}

/// On a server that is not Function Compute nothing marks an event invocation: `/invoke` is a
/// callback like any other and is signed, however the request dresses up as FC's. (Before the
/// fix, every unsigned `POST /invoke` sent every action, and a timer body drained the outbox.)
#[tokio::test]
async fn on_a_plain_server_invoke_is_signed_like_any_callback() {
    let env = [("VODHOOK_AUTH_KEY", KEY), ("VODHOOK_CALLBACK_URL", CALLBACK_URL)];
    let vodhook = InProcess::new("", &env);
    let event = fixture_bytes("runtime-bare-event.json");
    let batch = fixture_bytes("runtime-mns-queue-cloudevents.json");
    let timer = fixture_bytes("runtime-fc-timer.json");
    let spoofed = vec![
        ("x-fc-control-path", "/invoke".to_owned()),
        ("x-fc-request-id", "spoofed".to_owned()),
        ("x-fc-access-key-id", "STS.spoofed".to_owned()),
    ];
    for (name, path, headers, body) in [
        ("unsigned /invoke", "/invoke", vec![], event.clone()),
        ("/invoke with a query", "/invoke?x=1", vec![], event.clone()),
        ("absolute-form /invoke", "http://vodhook.example.com/invoke", vec![], event.clone()),
        ("spoofed x-fc-* headers", "/invoke", spoofed.clone(), event.clone()),
        ("an MNS CloudEvents batch", "/invoke", spoofed.clone(), batch),
        ("a timer body", "/invoke", spoofed, timer.clone()),
    ] {
        let reply = vodhook.call_as(Origin::Server, Method::POST, path, &headers, body).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}: {}", reply.text);
        assert!(
            reply.body["error"].as_str().unwrap_or_default().contains("missing X-VOD-TIMESTAMP"),
            "{name}"
        );
    }
    assert!(!vodhook.text().contains("outbox drained"), "a drain ran unsigned:\n{}", vodhook.text());
    assert!(!vodhook.text().contains("\"action\""), "an action was sent:\n{}", vodhook.text());
    // Signed, /invoke is an HTTP callback like any other path.
    let signed = signed(CALLBACK_URL, unix_now(), KEY);
    let reply = vodhook.call_as(Origin::Server, Method::POST, "/invoke", &signed, event.clone()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);

    // The operator's explicit, documented opt-in for a server whose /invoke nobody else reaches.
    let opted_in = InProcess::new("[auth]\nallow_unsigned_invoke = true\n", &env);
    let reply = opted_in.call_as(Origin::Server, Method::POST, "/invoke", &[], event).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let reply = opted_in.call_as(Origin::Server, Method::POST, "/invoke", &[], timer).await;
    assert!(reply.body["delivered"].is_u64(), "a drain report: {}", reply.text);
}

/// The vector in VOD's documentation. Its timestamp (2018) is stale at the real now, so the
/// service refuses it for staleness; the verifier accepts it at its own time (`vodhook sign`
/// prints it: `tests/cli.rs`).
#[tokio::test]
async fn documented_signature_vector() {
    const URL: &str = "https://www.example.com/your/callback";
    const EXPECTED: &str = "c72b60894140fa98920f1279219b7ed4";
    assert_eq!(vod_signature(URL, 1519375990, "test123"), EXPECTED, "the test's own formula");
    assert_eq!(vodhook::auth::signature(URL, 1519375990, "test123"), EXPECTED);

    // The verifier accepts the vector at its own time (the clock is passed in).
    let config = vodhook::config::AuthConfig {
        callback_url: Some(URL.to_owned()),
        key: Some(vodhook::redact::Secret::new("test123")),
        previous_key: None,
        max_skew_secs: 300,
        ..vodhook::config::AuthConfig::default()
    };
    let verifier = vodhook::auth::Verifier::from_config(&config).unwrap().expect("a key is set");
    let mut headers = http::HeaderMap::new();
    headers.insert("x-vod-timestamp", "1519375990".parse().unwrap());
    headers.insert("x-vod-signature", EXPECTED.parse().unwrap());
    assert_eq!(
        verifier.verify(&headers, 1519375990 + 60).map(|v| v.key),
        Ok(vodhook::auth::KeyUsed::Current)
    );
    assert!(verifier.verify(&headers, unix_now()).is_err(), "stale at the real now");

    // The service, configured like the documentation, refuses it now, for staleness.
    let vodhook = InProcess::new("", &[("VODHOOK_AUTH_KEY", "test123"), ("VODHOOK_CALLBACK_URL", URL)]);
    let headers = [
        json_ct(),
        request_id("vector"),
        ("x-vod-timestamp", "1519375990".to_owned()),
        ("x-vod-signature", EXPECTED.to_owned()),
    ];
    let reply = vodhook.post("/your/callback", &headers, fixture_bytes("runtime-bare-event.json")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    assert!(reply.body["error"].as_str().unwrap_or_default().contains("away from now"), "{}", reply.text);
    let logged = vodhook.text_of("vector");
    assert!(logged.contains("signature check failed") && logged.contains("away from now"), "{logged}");
    assert!(!vodhook.text().contains("test123"));
}

#[tokio::test]
async fn without_a_key_callbacks_are_accepted_with_one_startup_warning() {
    let vodhook = InProcess::new("", &[]);
    let reply = vodhook.post("/", &[json_ct()], fixture_bytes("runtime-bare-event.json")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let warnings = vodhook.lines().into_iter().filter(|l| message(l).contains("unauthenticated")).count();
    assert_eq!(warnings, 1, "{}", vodhook.text());
}

#[tokio::test]
async fn methods_hooks_and_error_bodies() {
    let vodhook = InProcess::new("", &[]);

    // FC's lifecycle hooks and the health check.
    for (method, path) in
        [(Method::POST, "/initialize"), (Method::GET, "/pre-stop"), (Method::GET, "/healthz")]
    {
        let reply = vodhook.call(method.clone(), path, &[], "").await;
        assert_eq!(reply.status, StatusCode::OK, "{method} {path}: {}", reply.text);
    }

    // Only POST carries callbacks.
    for (method, path) in [
        (Method::GET, "/"),
        (Method::PUT, "/"),
        (Method::DELETE, "/vod/callback"),
        (Method::PATCH, "/"),
        (Method::GET, "/invoke"),
        (Method::PUT, "/invoke"),
        (Method::GET, "/initialize"),
        (Method::POST, "/healthz/../pre-stop/x"),
    ] {
        let body = fixture_bytes("runtime-bare-event.json");
        let reply = vodhook.call(method.clone(), path, &[json_ct()], body).await;
        if method == Method::POST {
            // Any other POST path is an HTTP-trigger callback.
            assert_eq!(reply.status, StatusCode::OK, "{method} {path}: {}", reply.text);
            continue;
        }
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {}", reply.text);
        assert_eq!(reply.headers.get("allow").map(|v| v.as_bytes()), Some(&b"POST"[..]), "{method} {path}");
        assert_error_body(&reply, &format!("{method} {path}"));
    }

    // 400: the error says what and where.
    for path in ["/", "/invoke"] {
        let reply = vodhook
            .post(path, &[vec![json_ct()], fc_marks(path)].concat(), &br#"{"EventType": 5}"#[..])
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}: {}", reply.text);
        assert_error_body(&reply, path);
        assert_eq!(reply.body["path"], "EventType", "{}", reply.text);
        assert!(reply.body["error"].as_str().unwrap().contains("expected a string"), "{}", reply.text);
        let fc_status = reply.headers.get("x-fc-status").map(|v| v.as_bytes().to_vec());
        // A failed /invoke is FC's function error: its async retry and destinations take over.
        assert_eq!(fc_status, (path == "/invoke").then(|| b"404".to_vec()), "{path}: x-fc-status");
    }
}

// --- malformed requests ------------------------------------------------------------------------

struct Malformed {
    name: &'static str,
    body: Vec<u8>,
    content_type: &'static str,
    /// The error's `path` when the case pins it.
    path: Option<&'static str>,
}

fn bad(name: &'static str, body: impl Into<Vec<u8>>) -> Malformed {
    Malformed { name, body: body.into(), content_type: "application/json", path: None }
}

fn bad_at(name: &'static str, body: impl Into<Vec<u8>>, path: &'static str) -> Malformed {
    Malformed { path: Some(path), ..bad(name, body) }
}

fn nested(depth: usize, leaf: Value) -> Value {
    (0..depth).fold(leaf, |inner, _| json!({ "a": inner }))
}

fn malformed_requests() -> Vec<Malformed> {
    let event = fixture("runtime-bare-event.json");
    let ce = |data: Value| {
        json!({"id": "1", "source": "MNS-f", "specversion": "1.0", "type": "mns:Queue:SendMessage",
               "subject": "acs:mns:cn-shanghai:1:queues/q", "time": "2025-04-01T02:33:12Z", "data": data})
    };
    let topic = |message: Value| {
        json!({"TopicOwner": "1", "Message": message, "Subscriber": "1", "PublishTime": 1,
               "SubscriptionName": "s", "MessageMD5": "x", "TopicName": "t", "MessageId": "m"})
    };
    // JSON nested 70 levels deep, counting the documents held in strings, built structurally:
    // only two levels are embedded, so escaping stays linear.
    let deepest = nested(36, json!("leaf"));
    let middle = nested(30, json!({ "b": deepest.to_string() }));
    let deep_in_strings =
        json!({"EventType": "FileUploadComplete", "VideoId": "v", "Extend": middle.to_string()}).to_string();
    let mut huge_key = String::from("{\"");
    huge_key.push_str(&"k".repeat(200_000));
    huge_key.push_str("\": 1}");
    let mut envelopes = json!(event.clone());
    for _ in 0..6 {
        envelopes = json!({ "body": envelopes.to_string() });
    }
    let garbage: Vec<u8> = (0u32..600).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let with_bom = [&b"\xEF\xBB\xBF"[..], event.as_bytes()].concat();
    let form = Malformed {
        content_type: "application/x-www-form-urlencoded",
        ..bad("form-encoded body", "EventType=WorkflowTaskComplete&TaskId=t1&Status=Succeed")
    };
    let multipart = Malformed {
        content_type: "multipart/form-data; boundary=X",
        ..bad(
            "multipart body",
            format!("--X\r\nContent-Disposition: form-data; name=\"e\"\r\n\r\n{event}\r\n--X--\r\n"),
        )
    };
    let xml = Malformed {
        content_type: "application/xml",
        ..bad("XML", "<xml><EventType>WorkflowTaskComplete</EventType></xml>")
    };
    let text = Malformed { content_type: "text/plain", ..bad("plain text", "video 123 finished") };
    vec![
        bad_at("empty body", "", ""),
        bad_at("whitespace only", " \r\n\t ", ""),
        bad_at("null", "null", ""),
        bad_at("true", "true", ""),
        bad_at("a number", "42", ""),
        bad_at("a negative float", "-0.5", ""),
        bad("a number out of range", "1e999"),
        bad("a 100 000-digit number", "9".repeat(100_000)),
        bad("a JSON string of prose", "\"just a string\""),
        bad("a JSON string holding a number", "\"17\""),
        bad("not JSON at all", "not json at all"),
        xml,
        text,
        form,
        multipart,
        bad_at("invalid UTF-8", b"{\"EventType\":\"\xff\xfe\"}".to_vec(), ""),
        bad_at("Latin-1 bytes", b"{\"EventType\":\"Workflow\xe9\"}".to_vec(), ""),
        bad_at("truncated event", event.as_bytes()[..event.len() / 2].to_vec(), ""),
        bad_at("truncated in a string", r#"{"EventType":"WorkflowTaskComplete","TaskId":"t"#, ""),
        bad("trailing garbage", format!("{} trailing", event.trim_end())),
        bad_at("empty array", "[]", ""),
        bad("array of numbers", "[1, 2, 3]"),
        bad("array of junk", r#"[1, "x", null, true, {}, []]"#),
        bad("array of nulls", "[null, null]"),
        bad_at("empty object", "{}", ""),
        bad_at("EventType a number", r#"{"EventType": 5}"#, "EventType"),
        bad_at("EventType null", r#"{"EventType": null}"#, "EventType"),
        bad_at("EventType an array", r#"{"EventType": ["WorkflowTaskComplete"]}"#, "EventType"),
        bad_at("EventType an object", r#"{"EventType": {"v": "WorkflowTaskComplete"}}"#, "EventType"),
        bad_at("EventType true", r#"{"EventType": true}"#, "EventType"),
        bad_at("duplicate EventType, last a number", r#"{"EventType": "X", "EventType": 5}"#, "EventType"),
        bad_at(
            "workflow event without TaskId",
            r#"{"EventType":"WorkflowTaskComplete","Status":"Succeed"}"#,
            "TaskId",
        ),
        bad_at(
            "TaskId a number",
            r#"{"EventType":"WorkflowTaskComplete","TaskId":5,"Status":"Succeed"}"#,
            "TaskId",
        ),
        bad_at(
            "workflow event without Status",
            r#"{"EventType":"WorkflowTaskComplete","TaskId":"t"}"#,
            "Status",
        ),
        bad_at("200 nested arrays", format!("{}{}", "[".repeat(200), "]".repeat(200)), ""),
        bad_at("200 nested objects", format!("{}1{}", "{\"a\":".repeat(200), "}".repeat(200)), ""),
        bad("70 levels, JSON nested inside strings", deep_in_strings),
        bad("base64 of garbage bytes", BASE64.encode(&garbage)),
        bad("base64 of prose", BASE64.encode("hello, this is not an event")),
        bad("base64 of a number", BASE64.encode("12345")),
        bad(
            "CloudEvent without data",
            json!({"specversion": "1.0", "id": "1", "source": "s", "type": "t"}).to_string(),
        ),
        bad("CloudEvents array, one without data", json!([{"specversion": "1.0", "id": "1"}]).to_string()),
        bad_at("CloudEvent with empty data", ce(json!({})).to_string(), "data"),
        bad_at(
            "CloudEvent messageBody a number",
            ce(json!({"messageBody": 42})).to_string(),
            "data.messageBody",
        ),
        bad_at(
            "CloudEvent messageBody not base64",
            ce(json!({"messageBody": "@@@ not base64 @@@"})).to_string(),
            "data.messageBody",
        ),
        bad("CloudEvent data null", ce(Value::Null).to_string()),
        bad_at("MNS topic with a number Message", topic(json!(12345)).to_string(), "Message"),
        bad_at("MNS topic with a null Message", topic(Value::Null).to_string(), "Message"),
        bad("MNS topic with an empty Message", topic(json!("")).to_string()),
        bad("STREAM with a prose body", json!({"body": "video finished", "attrs": {}}).to_string()),
        bad("STREAM with an empty body", json!({"body": "", "attrs": {}}).to_string()),
        bad("envelopes nested 6 deep", envelopes.to_string()),
        bad("a 200 000-byte key", huge_key),
        bad_at("NUL bytes", b"\0\0\0\0".to_vec(), ""),
        bad_at("a raw NUL inside a string", b"{\"EventType\":\"A\0B\"}".to_vec(), ""),
        bad_at("a lone surrogate", r#"{"EventType":"\ud800"}"#, ""),
        bad_at("UTF-8 BOM before the event", with_bom, ""),
        bad("a timer body over the HTTP trigger", fixture_bytes("runtime-fc-timer.json")),
    ]
}

#[tokio::test]
async fn malformed_requests_get_a_4xx_and_a_json_error_never_a_5xx() {
    let vodhook = InProcess::new("", &[]);
    let cases = malformed_requests();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    for (i, case) in cases.iter().enumerate() {
        for path in ["/", "/invoke"] {
            if path == "/invoke" && case.name.contains("timer") {
                continue; // a timer body is a drain on /invoke
            }
            let what = format!("#{i} {} via {path}", case.name);
            let headers = [
                vec![("content-type", case.content_type.to_owned()), request_id(&format!("bad-{i}"))],
                fc_marks(path),
            ]
            .concat();
            let reply = vodhook.post(path, &headers, case.body.clone()).await;
            assert!(reply.status.is_client_error(), "{what}: {} {}", reply.status, reply.text);
            assert_error_body(&reply, &what);
            // Errors quote the input; a sender-controlled input must not come back in full.
            assert!(reply.text.len() <= 2048, "{what}: a {}-byte error body", reply.text.len());
            if let Some(expected) = case.path {
                assert_eq!(reply.body["path"], expected, "{what}: {}", reply.text);
            }
            if path == "/invoke" {
                assert_eq!(
                    reply.headers.get("x-fc-status").map(|v| v.as_bytes()),
                    Some(&b"404"[..]),
                    "{what}"
                );
            }
        }
    }
    let reply = vodhook.post("/", &[json_ct()], fixture_bytes("runtime-bare-event.json")).await;
    assert_eq!(reply.status, StatusCode::OK, "a good callback after the bad ones: {}", reply.text);
    let longest = vodhook.text().lines().map(str::len).max().unwrap_or(0);
    assert!(longest <= 4096, "a {longest}-byte log line: the input was echoed into the logs");
}

// --- bounds on one delivery --------------------------------------------------------------------

/// A workflow event with `task` as TaskId and `nodes` nodes, each with `end_time` as EndTime.
fn workflow_event(task: &str, nodes: usize, end_time: &str) -> Value {
    let activities: serde_json::Map<String, Value> = (0..nodes)
        .map(|i| {
            let node = json!({"ActivityId": "VodTranscode", "Status": "Succeed", "StartTime": "2025-04-01T02:29:46Z", "EndTime": end_time});
            (format!("VodTranscode_{i:05}"), node)
        })
        .collect();
    json!({
        "EventType": "WorkflowTaskComplete", "TaskId": task, "Status": "Succeed",
        "ActivityResults": Value::Object(activities).to_string(),
    })
}

fn cloud_event(message: &str) -> Value {
    json!({"specversion": "1.0", "id": "1", "source": "MNS-f", "type": "mns:Queue:SendMessage", "data": {"messageBody": message}})
}

/// One bad message in FC's MNS batch costs only itself: each bad element is reported with its
/// path, the good one is delivered. (Before, the whole batch was answered 400 and FC retried it,
/// then gave up on all of it.)
#[tokio::test]
async fn a_batchs_bad_messages_are_rejected_and_the_rest_delivered() {
    let vodhook = InProcess::new("", &[]);
    let good = workflow_event("batch-good", 1, "2025-04-01T02:30:00Z").to_string();
    let batch = json!([
        cloud_event(&good),
        cloud_event("this is not JSON"),
        cloud_event(r#"{"Video": "not a VOD event"}"#),
        cloud_event(r#"{"EventType": 5}"#),
    ]);
    let headers = [vec![json_ct(), request_id("batch")], fc_marks("/invoke")].concat();
    let reply = vodhook.post("/invoke", &headers, batch.to_string()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        (reply.body["events"].as_u64(), reply.body["delivered"].as_u64()),
        (Some(1), Some(1)),
        "{}",
        reply.text
    );
    let paths: Vec<&str> =
        reply.body["rejected"].as_array().unwrap().iter().map(|r| r["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["[1].data.messageBody", "[2].data.messageBody", "[3].data.messageBody.EventType"]);
    assert!(vodhook.text_of("batch").contains("WorkflowTaskComplete:batch-good"), "the good one was sent");
}

#[tokio::test]
async fn more_events_or_nodes_than_allowed_are_refused_with_the_numbers() {
    let vodhook = InProcess::new("[server]\nmax_events_per_delivery = 5\nmax_nodes_per_event = 50\n", &[]);
    let events: Vec<Value> =
        (0..6).map(|i| workflow_event(&format!("many-{i}"), 1, "2025-04-01T02:30:00Z")).collect();
    let reply = vodhook.post("/", &[json_ct()], Value::Array(events).to_string()).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", reply.text);
    assert_error_body(&reply, "six events");
    let error = reply.body["error"].as_str().unwrap();
    assert!(
        error.contains("6 events")
            && error.contains("at most 5")
            && error.contains("max_events_per_delivery"),
        "{error}"
    );

    let reply = vodhook
        .post("/", &[json_ct()], workflow_event("nodes", 51, "2025-04-01T02:30:00Z").to_string())
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", reply.text);
    assert_eq!(reply.body["path"], "ActivityResults");
    assert!(reply.body["error"].as_str().unwrap().contains("51 nodes; at most 50"), "{}", reply.text);
    // Beside a good event, the big one is one more rejected event.
    let pair = json!([
        workflow_event("nodes", 51, "2025-04-01T02:30:00Z"),
        workflow_event("fine", 2, "2025-04-01T02:30:00Z")
    ]);
    let reply = vodhook.post("/", &[json_ct()], pair.to_string()).await;
    assert_eq!((reply.status, reply.body["delivered"].as_u64()), (StatusCode::OK, Some(1)), "{}", reply.text);
    assert_eq!(reply.body["rejected"][0]["path"], "[0].ActivityResults");
}

/// 5 000 warnings in one body: the answer lists the first 20 and the total, the log says it in
/// one line. (Before, a 1 MiB body got a 1.6 MiB answer and 15 000 log lines.)
#[tokio::test]
async fn warnings_and_rejections_are_reported_within_bounds() {
    let vodhook = InProcess::new("[server]\nmax_nodes_per_event = 20000\n", &[]);
    let event = workflow_event("warn-many", 5_000, "not a time");
    let reply = vodhook.post("/", &[json_ct(), request_id("warn")], event.to_string()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", &reply.text[..200.min(reply.text.len())]);
    assert_eq!(reply.body["warnings"].as_array().map(Vec::len), Some(20));
    assert_eq!(reply.body["warnings_total"], 5_000);
    assert!(reply.text.len() < 16 * 1024, "a {}-byte answer", reply.text.len());
    let warn_lines = vodhook.lines_of("warn").into_iter().filter(|l| l["level"] == "WARN").count();
    assert_eq!(warn_lines, 1, "one line for all the warnings");

    let mut batch = vec![cloud_event(&workflow_event("good", 1, "2025-04-01T02:30:00Z").to_string())];
    batch.extend((0..50).map(|_| cloud_event("not json")));
    let headers = [vec![json_ct(), request_id("reject")], fc_marks("/invoke")].concat();
    let vodhook = InProcess::new("", &[]);
    let reply = vodhook.post("/invoke", &headers, Value::Array(batch).to_string()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        (reply.body["rejected"].as_array().map(Vec::len), reply.body["rejected_total"].as_u64()),
        (Some(20), Some(50))
    );
    let error_lines = vodhook.lines_of("reject").into_iter().filter(|l| l["level"] == "ERROR").count();
    assert_eq!(error_lines, 1, "one line for all the rejected events");
}

/// Twelve events to one webhook that takes its time: sent concurrently, but never more than
/// `max_concurrent_sends` at once. (Before, one request's every action was in flight at once:
/// 1000 events made 2000 outbound requests, 1732 of them simultaneous.)
#[tokio::test]
async fn sends_per_request_are_bounded() {
    use support::standins::{Behaviour, StandIn};
    let hook = StandIn::start(vodhook::channel::ChannelType::Webhook).await;
    hook.set_behaviour(Behaviour::Delay(std::time::Duration::from_millis(100)));
    let config = format!(
        "[delivery]\nmax_concurrent_sends = 3\ncallback_deadline_ms = 4000\n\n{}\n[[routes]]\nname = \"all\"\nchannels = [\"hook\"]\n",
        hook.channel_toml("hook")
    );
    let vodhook = InProcess::new(&config, &[]);
    let events: Vec<Value> =
        (0..12).map(|i| workflow_event(&format!("fan-{i}"), 1, "2025-04-01T02:30:00Z")).collect();
    let reply = vodhook.post("/", &[json_ct()], Value::Array(events).to_string()).await;
    assert_eq!(reply.body["delivered"], 12, "{}", reply.text);
    assert_eq!(hook.received().len(), 12);
    assert!(hook.peak_concurrency() <= 3, "{} sends at once", hook.peak_concurrency());
    assert!(hook.peak_concurrency() >= 2, "still concurrent: {}", hook.peak_concurrency());
}

// --- replayed signatures ------------------------------------------------------------------------

/// VOD's signature does not cover the body: captured headers could carry any event for the
/// whole timestamp window. The bodies a signature came with are remembered: VOD's retries are
/// accepted, and so are VOD's other events of the same second (they share the signature), but
/// only shortly after the signature's first use; a new body later is refused.
#[tokio::test]
async fn a_captured_signature_cannot_carry_new_bodies() {
    let config = "[auth]\nsignature_reuse_secs = 1\n";
    let vodhook =
        InProcess::new(config, &[("VODHOOK_AUTH_KEY", KEY), ("VODHOOK_CALLBACK_URL", CALLBACK_URL)]);
    let headers = [signed(CALLBACK_URL, unix_now(), KEY), vec![json_ct()]].concat();
    let first = workflow_event("replay-a", 1, "2025-04-01T02:30:00Z").to_string();
    let same_second = workflow_event("replay-b", 1, "2025-04-01T02:30:00Z").to_string();
    let forged = workflow_event("replay-forged", 1, "2025-04-01T02:30:00Z").to_string();
    let reply = vodhook.post("/", &headers, first.clone()).await;
    assert_eq!((reply.status, reply.body["delivered"].as_u64()), (StatusCode::OK, Some(1)), "{}", reply.text);
    let reply = vodhook.post("/", &headers, same_second).await;
    assert_eq!(
        (reply.status, reply.body["delivered"].as_u64()),
        (StatusCode::OK, Some(1)),
        "another event of the second: {}",
        reply.text
    );
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let reply = vodhook.post("/", &headers, first).await;
    assert_eq!(
        (reply.status, reply.body["duplicate"].as_u64()),
        (StatusCode::OK, Some(1)),
        "VOD's retry: {}",
        reply.text
    );
    let reply = vodhook.post("/", &headers, forged).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    assert!(
        reply.body["error"].as_str().unwrap().contains("used before with other bodies"),
        "{}",
        reply.text
    );
    assert!(!vodhook.text().contains("replay-forged"), "the forged event reached the pipeline");
}

/// With Redis, every instance knows every signature: the forged body is refused by another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replay_guard_is_shared_through_redis() {
    let redis = support::redis::RedisServer::start();
    let config = format!(
        "[auth]\nsignature_reuse_secs = 1\n\n[dedup]\nbackend = \"redis\"\nurl = \"{}\"\nkey_prefix = \"replay-test:\"\n",
        redis.url()
    );
    let env = [("VODHOOK_AUTH_KEY", KEY), ("VODHOOK_CALLBACK_URL", CALLBACK_URL)];
    let (one, two) = (InProcess::new(&config, &env), InProcess::new(&config, &env));
    let headers = [signed(CALLBACK_URL, unix_now(), KEY), vec![json_ct()]].concat();
    let reply =
        one.post("/", &headers, workflow_event("shared-a", 1, "2025-04-01T02:30:00Z").to_string()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let reply =
        two.post("/", &headers, workflow_event("shared-b", 1, "2025-04-01T02:30:00Z").to_string()).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
}

/// A store that answers every script with a well-formed value no script returns (`:2`): the
/// answers cannot be trusted, so the one rule for such answers applies — fail open with a
/// warning, as for a store out of reach. Before that rule a validly signed callback was refused
/// as "signature used before".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_a_store_cannot_give_fail_open_with_a_warning() {
    let liar = support::redis::LyingRedis::start(2);
    let config = format!("[dedup]\nbackend = \"redis\"\nurl = \"{}\"\n", liar.url());
    let env = [("VODHOOK_AUTH_KEY", KEY), ("VODHOOK_CALLBACK_URL", CALLBACK_URL)];
    let vodhook = InProcess::new(&config, &env);
    let headers = [signed(CALLBACK_URL, unix_now(), KEY), vec![json_ct()]].concat();
    let event = workflow_event("liar-a", 1, "2025-04-01T02:30:00Z").to_string();
    let reply = vodhook.post("/", &headers, event).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let logs = vodhook.text();
    assert!(
        logs.contains("Redis answered the replay guard with 2, which it cannot return: not trusted"),
        "{logs}"
    );
}

// --- IMS callbacks --------------------------------------------------------------------------------

const IMS_KEY: &str = "ims-k3y-4c2e8a1f";

fn ims_signed(url: &str, ts: i64, key: &str) -> Vec<(&'static str, String)> {
    vec![("x-ice-timestamp", ts.to_string()), ("x-ice-signature", vod_signature(url, ts, key))]
}

/// Both header families on one endpoint, each checked only against its own keys; the wrapped IMS
/// shape decoded to its inner event; routes telling the two sources apart.
#[tokio::test]
async fn ims_and_vod_callbacks_on_one_endpoint() {
    let config = r#"
[[channels]]
name = "vod-log"
type = "log"
template = "vod {{ identity }}"

[[channels]]
name = "ims-log"
type = "log"
template = "ims {{ identity }}"

[[routes]]
name = "from-ims"
match = { source = "ims" }
channels = ["ims-log"]

[[routes]]
name = "from-vod"
match = { source = "vod" }
channels = ["vod-log"]
"#;
    let env = [
        ("VODHOOK_AUTH_KEY", KEY),
        ("VODHOOK_IMS_AUTH_KEY", IMS_KEY),
        ("VODHOOK_CALLBACK_URL", CALLBACK_URL),
    ];
    let vodhook = InProcess::new(config, &env);
    let now = unix_now();
    let wrapped = fixture_bytes("ims-workflow-wrapped.json");
    let vod = fixture_bytes("runtime-bare-event.json");
    // Each request signed at its own second: a signature carries the bodies it came with.
    for (id, signature, body, logged) in [
        (
            "ims",
            ims_signed(CALLBACK_URL, now, IMS_KEY),
            wrapped.clone(),
            "ims WorkflowTaskComplete:ims-task-5b2c9e1f",
        ),
        (
            "ims-2",
            ims_signed(CALLBACK_URL, now - 1, IMS_KEY),
            fixture_bytes("ims-produce-media-complete.json"),
            "ims ProduceMediaComplete:job-ims-77aa",
        ),
        ("vod", signed(CALLBACK_URL, now, KEY), vod.clone(), "vod WorkflowTaskComplete:task-rt-bare-0001"),
    ] {
        let reply = vodhook.post("/", &[signature, vec![json_ct(), request_id(id)]].concat(), body).await;
        assert_eq!(
            (reply.status, reply.body["delivered"].as_u64()),
            (StatusCode::OK, Some(1)),
            "{id}: {}",
            reply.text
        );
        assert!(vodhook.text_of(id).contains(logged), "{id}: {}", vodhook.text_of(id));
    }

    for (name, headers, says) in [
        (
            "X-ICE signed with the VOD key",
            ims_signed(CALLBACK_URL, now, KEY),
            "X-ICE-SIGNATURE does not match the configured callback URL and IMS auth key",
        ),
        (
            "X-VOD signed with the IMS key",
            signed(CALLBACK_URL, now, IMS_KEY),
            "X-VOD-SIGNATURE does not match the configured callback URL and VOD auth key",
        ),
        (
            "X-ICE, stale",
            ims_signed(CALLBACK_URL, now - 900, IMS_KEY),
            "X-ICE-TIMESTAMP is more than 300 s away from now",
        ),
        ("neither family", vec![], "missing X-VOD-TIMESTAMP header (or X-ICE-TIMESTAMP"),
    ] {
        let reply = vodhook.post("/", &[headers, vec![json_ct()]].concat(), vod.clone()).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}: {}", reply.text);
        assert!(reply.body["error"].as_str().unwrap().contains(says), "{name}: {}", reply.text);
    }
    // Without an IMS key, an IMS signature is not accepted at all.
    let vod_only = InProcess::new("", &[("VODHOOK_AUTH_KEY", KEY), ("VODHOOK_CALLBACK_URL", CALLBACK_URL)]);
    let reply = vod_only
        .post("/", &[ims_signed(CALLBACK_URL, now, IMS_KEY), vec![json_ct()]].concat(), wrapped)
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    assert!(
        reply.body["error"].as_str().unwrap().contains("no IMS auth key is configured"),
        "{}",
        reply.text
    );
}
