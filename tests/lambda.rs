//! The Lambda runtime: each payload kind (API Gateway REST and HTTP APIs, ALB, Function URL)
//! through `lambda_http`'s own deserializer into the core handler; and the real binary under
//! the cargo-lambda emulator (`cargo lambda watch`), reached through its function URL.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use serde_json::{Value, json};
use support::process::wait_accepting;
use support::{Process, fixture_bytes, free_port, http_client, unix_now, vod_headers};
use vodhook::config::Config;
use vodhook::handler::App;
use vodhook::redact::Secret;
use vodhook::setup::Setup;

const KEY: &str = "lambda-k3y-7d1e93";
/// The callback URL as configured in VOD (the Function URL). Never rebuilt from the request.
const CALLBACK_URL: &str = "https://a7b3c9d2e1f0g4h5i6j7k8l9m0.lambda-url.ap-southeast-1.on.aws/";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    RestV1,
    HttpV2,
    Alb,
}

/// The fixtures: (file, the request context lambda_http must see).
const PAYLOADS: [(&str, Kind); 4] = [
    ("lambda-apigw-rest-v1.json", Kind::RestV1),
    ("lambda-apigw-http-v2.json", Kind::HttpV2),
    ("lambda-alb.json", Kind::Alb),
    // Function URLs use the HTTP API's payload format 2.0.
    ("lambda-function-url.json", Kind::HttpV2),
];

fn app(key: Option<&str>) -> App {
    let mut config = Config::default();
    config.auth.key = key.map(Secret::new);
    config.auth.callback_url = key.map(|_| CALLBACK_URL.to_owned());
    App::new(Setup::from_config(config).expect("a valid configuration")).expect("app")
}

fn payload(name: &str) -> Value {
    serde_json::from_slice(&fixture_bytes(name)).expect("fixture is JSON")
}

/// Adds headers to a payload, as the platform would have passed them.
fn with_headers(mut payload: Value, headers: &[(&str, String)]) -> Value {
    for (name, value) in headers {
        payload["headers"][*name] = json!(value);
        if payload.get("multiValueHeaders").is_some_and(Value::is_object) {
            payload["multiValueHeaders"][*name] = json!([value]);
        }
    }
    payload
}

/// Sets the request path in whichever fields the payload format keeps it.
fn with_path(mut payload: Value, path: &str) -> Value {
    for pointer in ["/path", "/rawPath", "/requestContext/http/path"] {
        if let Some(field) = payload.pointer_mut(pointer) {
            *field = json!(path);
        }
    }
    payload
}

fn with_method(mut payload: Value, method: &str) -> Value {
    for pointer in ["/httpMethod", "/requestContext/httpMethod", "/requestContext/http/method"] {
        if let Some(field) = payload.pointer_mut(pointer) {
            *field = json!(method);
        }
    }
    payload
}

fn with_body(mut payload: Value, body: &str) -> Value {
    payload["body"] = json!(body);
    payload["isBase64Encoded"] = json!(false);
    payload
}

/// Deserializes with lambda_http's own code, then calls the Lambda adapter's handler.
async fn invoke(app: &App, payload: &Value, kind: Kind) -> (u16, Value, String) {
    let request =
        lambda_http::request::from_str(&payload.to_string()).expect("lambda_http accepts the payload");
    let seen = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(_)) => Some(Kind::RestV1),
        Some(RequestContext::ApiGatewayV2(_)) => Some(Kind::HttpV2),
        Some(RequestContext::Alb(_)) => Some(Kind::Alb),
        _ => None,
    };
    assert_eq!(seen, Some(kind), "lambda_http read the payload as another kind");
    let response = vodhook::runtime::lambda::handle_http(app, request).await;
    let status = response.status().as_u16();
    let text = match response.body() {
        Body::Text(text) => text.clone(),
        Body::Binary(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        _ => String::new(),
    };
    (status, serde_json::from_str(&text).unwrap_or(Value::Null), text)
}

#[tokio::test]
async fn every_payload_kind_reaches_the_handler() {
    let app = app(None);
    for (name, kind) in PAYLOADS {
        let (status, body, text) = invoke(&app, &payload(name), kind).await;
        assert_eq!(status, 200, "{name}: {text}");
        assert_eq!(body["events"], 1, "{name}: {text}");

        // The same payload with a body that is no event: a 400 with the error contract.
        let bad = with_body(payload(name), r#"{"EventType": 5}"#);
        let (status, body, text) = invoke(&app, &bad, kind).await;
        assert_eq!(status, 400, "{name}: {text}");
        assert_eq!(body["path"], "EventType", "{name}: {text}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{name}: {text}");

        // Other methods are refused.
        let (status, _, text) = invoke(&app, &with_method(payload(name), "GET"), kind).await;
        assert_eq!(status, 405, "{name}: {text}");
    }
    // The MNS batch through a Lambda payload: both events count.
    let batch = String::from_utf8(fixture_bytes("runtime-mns-queue-cloudevents.json")).unwrap();
    let (status, body, text) =
        invoke(&app, &with_body(payload("lambda-apigw-http-v2.json"), &batch), Kind::HttpV2).await;
    assert_eq!((status, body["events"].clone()), (200, json!(2)), "{text}");
}

#[tokio::test]
async fn lambda_requests_are_always_authenticated() {
    let app = app(Some(KEY));
    let now = unix_now();
    for (name, kind) in PAYLOADS {
        for path in ["/", "/vod/callback", "/invoke"] {
            let what = format!("{name} on {path}");
            let unsigned = with_path(payload(name), path);
            let (status, body, text) = invoke(&app, &unsigned, kind).await;
            assert_eq!(status, 401, "{what}, unsigned: {text}");
            assert!(body["error"].as_str().unwrap_or_default().contains("missing"), "{what}: {text}");
            assert!(body["path"].is_string(), "{what}: {text}");

            let wrong = with_headers(unsigned.clone(), &vod_headers(CALLBACK_URL, "not-the-key", now));
            let (status, _, text) = invoke(&app, &wrong, kind).await;
            assert_eq!(status, 401, "{what}, wrong key: {text}");

            let stale = with_headers(unsigned.clone(), &vod_headers(CALLBACK_URL, KEY, now - 900));
            let (status, _, text) = invoke(&app, &stale, kind).await;
            assert_eq!(status, 401, "{what}, stale: {text}");

            let signed = with_headers(unsigned, &vod_headers(CALLBACK_URL, KEY, now));
            let (status, body, text) = invoke(&app, &signed, kind).await;
            assert_eq!(status, 200, "{what}, signed: {text}");
            assert_eq!(body["events"], 1, "{what}: {text}");
        }
    }
    // FC's HTTP-trigger marker means nothing on Lambda either way.
    let marked = with_headers(payload("lambda-alb.json"), &[("x-fc-control-path", "/invoke".to_owned())]);
    let (status, _, text) = invoke(&app, &with_path(marked, "/invoke"), Kind::Alb).await;
    assert_eq!(status, 401, "{text}");
}

// --- the cargo-lambda emulator -----------------------------------------------------------------

/// `cargo-lambda` from `target/venv` (where ./scripts/test installs it) or from PATH.
fn cargo_lambda() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/cargo-lambda");
    if venv.is_file() {
        return Some(venv);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("cargo-lambda")).find(|p| p.is_file())
}

/// `cargo lambda watch --only-lambda-apis` on a free port on 127.0.0.1 (never FC's 9000),
/// and the `AWS_LAMBDA_RUNTIME_API` value it prints for the function to export.
fn start_emulator(cargo_lambda: &Path) -> (Process, u16, String) {
    for _ in 0..5 {
        let port = free_port();
        assert_ne!(port, 9000);
        let mut command = Command::new(cargo_lambda);
        // What `cargo lambda watch ...` runs; called directly so that no cargo process sits
        // between the test and the emulator when it is stopped.
        command
            .args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P", &port.to_string()])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("NO_COLOR", "1")
            .env_remove("AWS_LAMBDA_RUNTIME_API");
        let mut emulator = Process::spawn_group("cargo lambda watch", command);
        if !wait_accepting(&mut emulator, ([127, 0, 0, 1], port).into()) {
            let logs = emulator.logs.text();
            assert!(logs.contains("in use"), "cargo lambda watch exited:\n{logs}");
            continue;
        }
        let line =
            emulator.logs.wait_for("AWS_LAMBDA_RUNTIME_API=...", |l| l.contains("AWS_LAMBDA_RUNTIME_API="));
        let value = line
            .split("AWS_LAMBDA_RUNTIME_API=")
            .nth(1)
            .and_then(|v| v.split_whitespace().next())
            .expect("a value after AWS_LAMBDA_RUNTIME_API=")
            .to_owned();
        assert!(value.contains(&format!("127.0.0.1:{port}")), "{line}");
        return (emulator, port, value);
    }
    panic!("no free port for cargo lambda watch in 5 tries");
}

/// An EventBridge schedule (the outbox drain timer), as Lambda delivers it.
fn scheduled_event() -> Value {
    json!({
        "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2025-04-01T02:35:00Z",
        "region": "ap-southeast-1", "resources": ["arn:aws:events:ap-southeast-1:123456789012:rule/vodhook-drain"],
        "detail": {}
    })
}

#[tokio::test]
async fn under_the_cargo_lambda_emulator() {
    let Some(cargo_lambda) = cargo_lambda() else {
        println!("SKIP: cargo-lambda not installed (./scripts/test installs it into target/venv)");
        return;
    };
    let (_emulator, port, runtime_api) = start_emulator(&cargo_lambda);
    let function_url = format!("http://127.0.0.1:{port}/lambda-url/vodhook/");

    // The emulator serves a function named <name> to a runtime polling `<runtime api>/<name>`;
    // the printed value itself serves its default function (`_`).
    let dir = tempfile::tempdir().expect("scratch directory");
    let mut command = support::vodhook_command(dir.path());
    // No subcommand: the binary picks Lambda because AWS_LAMBDA_RUNTIME_API is set.
    command
        .env("AWS_LAMBDA_RUNTIME_API", format!("{}/vodhook", runtime_api.trim_end_matches('/')))
        .env("AWS_LAMBDA_FUNCTION_NAME", "vodhook")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("VODHOOK_AUTH_KEY", KEY)
        .env("VODHOOK_CALLBACK_URL", &function_url)
        .env("RUST_LOG", "info");
    let mut vodhook = Process::spawn("vodhook (lambda)", command);

    let client = http_client();
    let post = |url: String, headers: Vec<(&'static str, String)>, body: Vec<u8>| {
        let mut request = client.post(url).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move {
            let response = request.send().await.expect("the emulator answers");
            let status = response.status().as_u16();
            let text = response.text().await.expect("body");
            (status, serde_json::from_str::<Value>(&text).unwrap_or(Value::Null), text)
        }
    };
    let json_ct = || ("content-type", "application/json".to_owned());
    let signed = |extra: (&'static str, String)| {
        let mut headers = vod_headers(&function_url, KEY, unix_now());
        headers.push(extra);
        headers
    };

    // A signed VOD callback to the function URL.
    let (status, body, text) =
        post(function_url.clone(), signed(json_ct()), fixture_bytes("runtime-bare-event.json")).await;
    assert_eq!(status, 200, "{text}\n{}", vodhook.logs.text());
    assert_eq!(body["events"], 1, "{text}");

    // The body as binary (the emulator base64-encodes it, as Function URLs do).
    let octets = ("content-type", "application/octet-stream".to_owned());
    let (status, body, text) =
        post(function_url.clone(), signed(octets), fixture_bytes("runtime-mns-queue-cloudevents.json")).await;
    assert_eq!((status, body["events"].clone()), (200, json!(2)), "{text}");

    // Unsigned, or signed with another key: refused, on any path, /invoke included.
    for path in ["", "invoke"] {
        let url = format!("{function_url}{path}");
        let (status, body, text) =
            post(url.clone(), vec![json_ct()], fixture_bytes("runtime-bare-event.json")).await;
        assert_eq!(status, 401, "{url}: {text}");
        assert!(body["error"].as_str().unwrap_or_default().contains("missing X-VOD-TIMESTAMP"), "{text}");
        let wrong = vod_headers(&function_url, "not-the-key", unix_now());
        let (status, _, text) = post(url.clone(), wrong, fixture_bytes("runtime-bare-event.json")).await;
        assert_eq!(status, 401, "{url}: {text}");
    }

    // A malformed callback: the 400 contract survives the trip through the emulator.
    let (status, body, text) =
        post(function_url.clone(), signed(json_ct()), b"{\"EventType\": 5}".to_vec()).await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(body["path"], "EventType", "{text}");

    // The EventBridge drain schedule, invoked directly (not an HTTP request).
    let invoke_url = format!("http://127.0.0.1:{port}/2015-03-31/functions/vodhook/invocations");
    let (status, body, text) =
        post(invoke_url, vec![json_ct()], scheduled_event().to_string().into_bytes()).await;
    assert_eq!(status, 200, "{text}");
    for field in ["delivered", "rescheduled", "dead_lettered"] {
        assert!(body[field].is_u64(), "drain report without {field}: {text}");
    }

    // Logs: JSON (Lambda collects stdout), the Lambda request id on the request's lines, and
    // neither the key nor a signature in them.
    let done = vodhook.logs.wait_for_json("request done", |l| l["fields"]["message"] == "request done");
    let request_id = done["span"]["request_id"].as_str().unwrap_or_default();
    assert!(!request_id.is_empty(), "no request id on {done}");
    let named = vodhook.logs.json().iter().any(|l| {
        l["span"]["request_id"] == request_id
            && l.to_string().contains("WorkflowTaskComplete:task-rt-bare-0001")
    });
    assert!(named, "the event is not named on its request's lines:\n{}", vodhook.logs.text());
    vodhook.logs.wait_for("signature refusal", |l| l.contains("signature check failed"));

    // Metrics: one CloudWatch Embedded Metric Format line per callback (2 accepted, 4 refused
    // signatures, 1 malformed; not the schedule's tick), each as the specification says.
    let emf: Vec<String> = vodhook
        .logs
        .text()
        .lines()
        .filter(|l| l.starts_with("{\"_aws\"") || l.contains("\"_aws\":"))
        .map(str::to_owned)
        .collect();
    assert_eq!(emf.len(), 7, "{}", vodhook.logs.text());
    for line in &emf {
        support::emf::assert_valid(line);
    }
    let metric = |name: &str| -> u64 {
        emf.iter().map(|l| serde_json::from_str::<Value>(l).unwrap()[name].as_u64().unwrap_or(0)).sum()
    };
    assert_eq!(metric("callbacks_received"), 7);
    assert_eq!(metric("callbacks_rejected"), 5);
    assert_eq!(metric("events"), 3, "the bare event and the MNS pair");
    let logs = vodhook.logs.text();
    assert!(!logs.contains(KEY), "the key is in the logs");
    assert!(vodhook.is_running(), "vodhook (lambda) exited:\n{logs}");
}
