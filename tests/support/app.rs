//! The core service in process, as axum's testing example calls a router: a request in,
//! `App::handle`, the response out, with no socket and no binary. Its log lines are captured (JSON,
//! as on Function Compute) by a subscriber installed for the test's thread, so tests can check
//! what a request logged; each request runs in a `request` span with its id, as the runtimes do.
//!
//! Use it from `#[tokio::test]` (the current-thread runtime: the subscriber is the thread's).

use std::io::Write;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use serde_json::Value;
use tracing::Instrument;
use vodhook::handler::{App, Origin};
use vodhook::setup::Setup;

/// One answer, with the body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

/// Captured log output.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An [`App`] with its log lines captured.
pub struct InProcess {
    pub app: App,
    logs: Captured,
    _subscriber: tracing::subscriber::DefaultGuard,
}

impl InProcess {
    /// The service for `config` (TOML text; empty for the built-in default) with `env` as its
    /// environment. Start-up's own log lines are captured too.
    pub fn new(config: &str, env: &[(&str, &str)]) -> InProcess {
        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::INFO)
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        let lookup = |name: &str| env.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned());
        let setup = Setup::from_toml_str(config, &lookup).unwrap_or_else(|e| panic!("{e}"));
        let app = App::new(setup).unwrap_or_else(|e| panic!("{e}"));
        InProcess { app, logs, _subscriber: guard }
    }

    /// Handles one request, as the FC/local server hands it over, at the real now.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: impl Into<Bytes>,
    ) -> Reply {
        self.call_as(Origin::FunctionCompute, method, path, headers, body).await
    }

    /// [`InProcess::call`] through a given runtime.
    pub async fn call_as(
        &self,
        origin: Origin,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        let mut id = None;
        for (name, value) in headers {
            if *name == "x-fc-request-id" {
                id = Some(value.clone());
            }
            request = request.header(*name, value);
        }
        let request = request.body(body.into()).expect("a valid test request");
        let span = tracing::info_span!("request", request_id = %id.unwrap_or_default());
        let now = super::unix_now();
        let response = self.app.handle(request, origin, now).instrument(span).await;
        let (parts, bytes) = response.into_parts();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text,
        }
    }

    pub async fn post(&self, path: &str, headers: &[(&str, String)], body: impl Into<Bytes>) -> Reply {
        self.call(Method::POST, path, headers, body).await
    }

    /// Every log line so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.logs.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// Every log line so far, parsed.
    pub fn lines(&self) -> Vec<Value> {
        self.text().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// The log lines of request `id` (its `x-fc-request-id`).
    pub fn lines_of(&self, id: &str) -> Vec<Value> {
        self.lines().into_iter().filter(|l| l["span"]["request_id"] == id).collect()
    }

    /// [`InProcess::lines_of`] as one text, for "names this event" checks.
    pub fn text_of(&self, id: &str) -> String {
        self.lines_of(id).iter().map(|l| format!("{l}\n")).collect()
    }
}

/// A log line's message.
pub fn message(line: &Value) -> &str {
    line["fields"]["message"].as_str().unwrap_or("")
}

/// The `{"error", "path"}` contract of every 4xx.
pub fn assert_error_body(reply: &Reply, what: &str) {
    super::client::assert_error_contract(&reply.headers, &reply.body, &reply.text, what);
}
