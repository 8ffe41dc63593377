//! The HTTP server: Function Compute's custom runtime, and the plain local server.
//!
//! FC starts the process, waits for the port, then sends HTTP-trigger requests as they came
//! and event invocations as `POST /invoke`, with `x-fc-request-id` on each. On scale-in it
//! calls `GET /pre-stop` and then sends SIGTERM: we stop accepting, let in-flight requests
//! finish (bounded by [`SHUTDOWN_GRACE`]) and exit 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::StatusCode;
use http_body_util::{BodyExt, Limited};
use tracing::Instrument;

use crate::config::{DEFAULT_PORT, env};
use crate::handler::{App, FC_REQUEST_ID_HEADER, Origin, paths, refusal};

/// How long in-flight requests may run after SIGTERM before the process exits anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Where to listen: `VODHOOK_LISTEN`, else FC's port variables on all interfaces, else
/// `127.0.0.1:9000` (all interfaces when running on FC, i.e. `FC_FUNCTION_NAME` is set).
pub fn listen_addr(var: impl Fn(&str) -> Option<String>) -> Result<SocketAddr, String> {
    if let Some(listen) = var(env::LISTEN).filter(|v| !v.is_empty()) {
        return listen
            .parse()
            .map_err(|_| format!("{}={listen:?} is not a socket address like 127.0.0.1:9000", env::LISTEN));
    }
    for name in [env::FC_CUSTOM_LISTEN_PORT, env::FC_SERVER_PORT] {
        if let Some(port) = var(name).filter(|v| !v.is_empty()) {
            let port: u16 = port.parse().map_err(|_| format!("{name}={port:?} is not a port number"))?;
            return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
        }
    }
    let on_fc = var(env::FC_FUNCTION_NAME).is_some_and(|v| !v.is_empty());
    let ip = if on_fc { [0, 0, 0, 0] } else { [127, 0, 0, 1] };
    Ok(SocketAddr::from((ip, DEFAULT_PORT)))
}

/// Serves until SIGTERM or Ctrl-C, then drains in-flight requests.
pub async fn serve(app: Arc<App>, addr: SocketAddr) -> std::io::Result<()> {
    let shutdown = shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "vodhook listening");
    let router = axum::Router::new().fallback(handle).with_state(app);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .into_future(),
    );
    shutdown.await;
    tracing::info!(grace_secs = SHUTDOWN_GRACE.as_secs(), "shutting down: finishing in-flight requests");
    let _ = stop_tx.send(());
    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(Ok(result)) => result,
        Ok(Err(join_error)) => Err(std::io::Error::other(join_error)),
        Err(_) => {
            tracing::warn!("in-flight requests still running after the grace period; exiting");
            Ok(())
        }
    }
}

/// Installs the SIGTERM and Ctrl-C handlers now and returns what completes on either. Called
/// before the port opens: FC may send SIGTERM as soon as it has seen the port, and a signal
/// that comes before its handler kills the process (default action) instead of a clean exit 0.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = interrupt.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// Request ids: FC's when it sends one, else a local counter so log lines still group.
fn request_id(headers: &http::HeaderMap) -> String {
    static LOCAL: AtomicU64 = AtomicU64::new(1);
    headers
        .get(FC_REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map_or_else(|| format!("local-{}", LOCAL.fetch_add(1, Ordering::Relaxed)), str::to_owned)
}

async fn handle(State(app): State<Arc<App>>, request: Request) -> Response {
    let id = request_id(request.headers());
    let is_invoke = request.uri().path() == paths::INVOKE;
    let span = tracing::info_span!("request", request_id = %id);
    if is_invoke {
        // FC's log markers around each event invocation.
        println!("FC Invoke Start RequestId: {id}");
    }
    let response = async {
        let (parts, body) = request.into_parts();
        let limit = app.max_body_bytes();
        let bytes = match Limited::new(body, limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(err) if err.is::<http_body_util::LengthLimitError>() => {
                tracing::warn!(limit, "request body too large");
                let message = format!("body is larger than the {limit} bytes allowed");
                return refusal(&parts, Origin::FunctionCompute, StatusCode::PAYLOAD_TOO_LARGE, &message);
            }
            Err(err) => {
                tracing::warn!(error = %err, "could not read the request body");
                let message = "could not read the request body";
                return refusal(&parts, Origin::FunctionCompute, StatusCode::BAD_REQUEST, message);
            }
        };
        app.handle(http::Request::from_parts(parts, bytes), Origin::FunctionCompute, crate::clock::unix_now())
            .await
    }
    .instrument(span)
    .await;
    if is_invoke {
        println!("FC Invoke End RequestId: {id}");
    }
    response.map(Body::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn addr(vars: &[(&str, &str)]) -> Result<SocketAddr, String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        listen_addr(|k| map.get(k).cloned())
    }

    #[test]
    fn listen_address_precedence() {
        assert_eq!(addr(&[]).unwrap().to_string(), "127.0.0.1:9000");
        assert_eq!(addr(&[("FC_FUNCTION_NAME", "f")]).unwrap().to_string(), "0.0.0.0:9000");
        assert_eq!(addr(&[("FC_SERVER_PORT", "9001")]).unwrap().to_string(), "0.0.0.0:9001");
        assert_eq!(
            addr(&[("FC_SERVER_PORT", "9001"), ("FC_CUSTOM_LISTEN_PORT", "9002")]).unwrap().to_string(),
            "0.0.0.0:9002"
        );
        assert_eq!(
            addr(&[("VODHOOK_LISTEN", "127.0.0.1:1234"), ("FC_SERVER_PORT", "9001")]).unwrap().to_string(),
            "127.0.0.1:1234"
        );
        assert!(addr(&[("FC_SERVER_PORT", "x")]).unwrap_err().contains("FC_SERVER_PORT"));
    }
}
