//! The HTTP server: Function Compute's custom runtime, and the plain server.
//!
//! FC starts the process, waits for the port, then sends HTTP-trigger requests as they came
//! and event invocations as `POST /invoke`, with `x-fc-request-id` on each. On scale-in it
//! calls `GET /pre-stop` and then sends SIGTERM: we stop accepting, let in-flight requests
//! finish (bounded by [`SHUTDOWN_GRACE`]) and exit 0.
//!
//! Built on hyper directly, so that every connection has bounds an attacker on the network cannot
//! stretch (`[server]`, defaults in parentheses): the request headers must arrive within
//! `header_read_timeout_ms` (5 s), which also closes a keep-alive connection idle that long; the
//! body within `body_read_timeout_ms` (5 s) of the headers, else `408`; a `Content-Length` over
//! `max_body_bytes` is answered `413` at once, without reading the body; and at most
//! `max_connections` (1024, lowered to leave room below the descriptor limit) are open at once,
//! the oldest one that has not sent a whole request making room for a new one (see
//! [`connections`](super::connections)). VOD sends small bodies at once, so none of these slows
//! a real callback.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::connections::{Connection, Connections, Phase};
use crate::config::{DEFAULT_PORT, ServerConfig, env};
use crate::handler::{App, FC_REQUEST_ID_HEADER, Origin, paths, refusal};

/// How long in-flight requests may run after SIGTERM before the process exits anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Request headers larger than this are refused (FC itself allows 8 KB of headers).
const MAX_HEADER_BYTES: usize = 64 * 1024;

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

/// Whether the process runs on Function Compute: positive proof from its environment, because
/// running there is what lets `/invoke` skip the callback signature (see `handler`).
///
/// FC sets these variables in every instance, and the `FC_` prefix is reserved: a function's
/// own configuration cannot set them (FC's "Configure environment variables": FC_ACCOUNT_ID,
/// FC_FUNCTION_NAME, FC_REGION, FC_INSTANCE_ID among the system variables; devsapp/fc3's
/// `s local` sets the same four for its emulator, `src/subCommands/local/impl/baseLocal.ts`).
/// All four are required, so no single variable set by hand (tests set `FC_FUNCTION_NAME` for
/// JSON logs) makes a plain server trust `/invoke`. Whoever controls a plain server's environment
/// controls the server anyway.
pub fn on_function_compute(var: impl Fn(&str) -> Option<String>) -> bool {
    env::FC_PROOF.iter().all(|name| var(name).is_some_and(|v| !v.is_empty()))
}

/// Everything a connection needs.
struct Server {
    app: Arc<App>,
    origin: Origin,
    limits: ServerConfig,
    connections: Connections,
}

/// Serves until SIGTERM or Ctrl-C, then drains in-flight requests.
pub async fn serve(app: Arc<App>, addr: SocketAddr) -> std::io::Result<()> {
    let shutdown = shutdown_signal()?;
    let limits = app.server_config().clone();
    let connections = Connections::new(Connections::cap_for(limits.max_connections));
    let listener = bind(addr, limits.max_connections.max(connections.cap())).map_err(|err| {
        let hint = match err.kind() {
            std::io::ErrorKind::AddrInUse => {
                ": another process listens there; stop it, or choose another address with --listen or VODHOOK_LISTEN"
            }
            _ => "",
        };
        std::io::Error::new(err.kind(), format!("cannot listen on {addr}: {err}{hint}"))
    })?;
    let origin =
        if on_function_compute(|k| std::env::var(k).ok()) { Origin::FunctionCompute } else { Origin::Server };
    tracing::info!(addr = %listener.local_addr()?, ?origin, max_connections = connections.cap(), "vodhook listening");
    let server = Arc::new(Server { app, origin, limits, connections });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if accept(&server, stream, &stop_rx, &mut tasks) {
                        // At the cap: let the connection closed for this one release its
                        // descriptor before accepting more (at most 5 ms).
                        let released = server.connections.released();
                        let _ = tokio::time::timeout(Duration::from_millis(5), released).await;
                    }
                }
                Err(err) => refused_accept(&server, &err).await,
            },
        }
        while tasks.try_join_next().is_some() {}
    }
    drop(listener);
    tracing::info!(grace_secs = SHUTDOWN_GRACE.as_secs(), "shutting down: finishing in-flight requests");
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async { while tasks.join_next().await.is_some() {} });
    if drained.await.is_err() {
        tracing::warn!("in-flight requests still running after the grace period; exiting");
    }
    Ok(())
}

/// Listens on `addr` with a queue of `backlog` connections (`[server] max_connections`, the cap
/// before it is lowered to the descriptor limit: a queued connection holds no descriptor of
/// ours). The usual `bind` (std's, and tokio's through mio) asks for 128: a burst of connections
/// opened at once (an attacker's, or many callbacks) overflows that before the loop accepts
/// them, and the kernel drops the SYNs it has no room for, which a client sends again only a
/// second later. The kernel caps the queue at `net.core.somaxconn` (4096 on current kernels).
fn bind(addr: SocketAddr, backlog: usize) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(u32::try_from(backlog).unwrap_or(u32::MAX).max(128))
}

/// Registers the connection (closing an idle one at the cap) and serves it on its own task.
/// True when another connection was closed to make room.
fn accept(
    server: &Arc<Server>,
    stream: TcpStream,
    stop: &watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) -> bool {
    let Some(admitted) = server.connections.admit() else {
        tracing::warn!(
            max = server.connections.cap(),
            "connection refused: every connection is handling a request"
        );
        return false; // dropping the stream closes it
    };
    let _ = stream.set_nodelay(true);
    let connection = serve_connection(server.clone(), stream, admitted.id, admitted.connection, stop.clone());
    tasks.spawn(connection);
    admitted.made_room
}

/// `accept` failed: out of descriptors (close an idle connection to recover) or a passing error.
async fn refused_accept(server: &Server, err: &std::io::Error) {
    let out_of_descriptors =
        matches!(err.raw_os_error(), Some(code) if code == libc::EMFILE || code == libc::ENFILE);
    if out_of_descriptors && server.connections.evict_one() {
        tracing::warn!(error = %err, "out of file descriptors: closed the oldest idle connection");
        // Accept again as soon as a connection's task has released its descriptor (the evicted
        // one's, usually within microseconds), not after a fixed pause: while the loop waits,
        // the listen queue fills.
        let _ = tokio::time::timeout(Duration::from_millis(5), server.connections.released()).await;
    } else {
        tracing::warn!(error = %err, "accept failed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn serve_connection(
    server: Arc<Server>,
    stream: TcpStream,
    id: u64,
    connection: Arc<Connection>,
    mut stop: watch::Receiver<bool>,
) {
    let service = {
        let (server, connection) = (server.clone(), connection.clone());
        service_fn(move |request| {
            let (server, connection) = (server.clone(), connection.clone());
            async move { Ok::<_, Infallible>(handle(&server, &connection, request).await) }
        })
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(server.limits.header_read_timeout_ms))
        .max_buf_size(MAX_HEADER_BYTES.max(8192))
        .keep_alive(true);
    // In a block of its own, so that the connection (and its socket) is closed before the
    // registry hears it is gone: the accept loop may be waiting for that descriptor.
    {
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(conn);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(id, error = %err, "connection ended");
                }
            }
            () = connection.evicted() => tracing::debug!(id, "connection closed to make room for a new one"),
            () = stopped(&mut stop) => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.as_mut().await;
            }
        }
    }
    server.connections.remove(id);
}

/// Completes when the server is shutting down.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// One request: its id for the logs, the body read within its bounds, then the core handler.
async fn handle(
    server: &Server,
    connection: &Connection,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let id = request_id(server.origin, request.headers());
    let is_invoke = request.uri().path() == paths::INVOKE;
    if is_invoke {
        // FC's log markers around each event invocation.
        println!("FC Invoke Start RequestId: {id}");
    }
    let span = tracing::info_span!("request", request_id = %id);
    connection.set_phase(Phase::ReadingBody);
    let response = async {
        let (parts, body) = request.into_parts();
        let bytes = match read_body(&server.limits, &parts, body).await {
            Ok(bytes) => bytes,
            Err((status, message)) => {
                let mut response = refusal(&parts, server.origin, status, &message);
                // The body was not read to its end: the connection cannot carry another request.
                response.headers_mut().insert(header::CONNECTION, http::HeaderValue::from_static("close"));
                return response;
            }
        };
        connection.set_phase(Phase::Handling);
        let request = Request::from_parts(parts, bytes);
        server.app.handle(request, server.origin, crate::clock::unix_now()).await
    }
    .instrument(span)
    .await;
    connection.set_phase(Phase::Idle);
    if is_invoke {
        println!("FC Invoke End RequestId: {id}");
    }
    response.map(Full::new)
}

/// The whole body, within `max_body_bytes` and `body_read_timeout_ms`; else the refusal's status
/// and message. A declared `Content-Length` over the limit is refused without waiting for the
/// body.
async fn read_body(
    limits: &ServerConfig,
    parts: &http::request::Parts,
    mut body: Incoming,
) -> Result<Bytes, (StatusCode, String)> {
    let limit = limits.max_body_bytes;
    let too_large =
        || (StatusCode::PAYLOAD_TOO_LARGE, format!("body is larger than the {limit} bytes allowed"));
    let declared =
        parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        tracing::warn!(declared, limit, "request body too large (Content-Length)");
        drain(&mut body, limit).await;
        return Err(too_large());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_millis(limits.body_read_timeout_ms);
    let mut bytes = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(None) => return Ok(Bytes::from(bytes)),
            Ok(Some(Ok(frame))) => {
                let Ok(data) = frame.into_data() else { continue }; // trailers
                if bytes.len() + data.len() > limit {
                    tracing::warn!(limit, "request body too large");
                    drain(&mut body, limit).await;
                    return Err(too_large());
                }
                bytes.extend_from_slice(&data);
            }
            Ok(Some(Err(err))) => {
                tracing::warn!(error = %err, "could not read the request body");
                return Err((StatusCode::BAD_REQUEST, "could not read the request body".to_owned()));
            }
            Err(_) => {
                tracing::warn!(
                    timeout_ms = limits.body_read_timeout_ms,
                    "the request body did not arrive in time"
                );
                let message = format!("the body did not arrive within {} ms", limits.body_read_timeout_ms);
                return Err((StatusCode::REQUEST_TIMEOUT, message));
            }
        }
    }
}

/// Reads and drops what a client is still sending of a refused body, up to `budget` bytes and
/// only while it keeps coming, so that it reads the `413` instead of a connection reset (closing
/// a socket with unread data resets it). A client that sends nothing more is answered at once.
async fn drain(body: &mut Incoming, budget: usize) {
    const STALL: Duration = Duration::from_millis(100);
    let mut drained = 0;
    while drained < budget {
        match tokio::time::timeout(STALL, body.frame()).await {
            Ok(Some(Ok(frame))) => drained += frame.data_ref().map_or(0, Bytes::len),
            _ => return,
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

/// Request ids: FC's on Function Compute, else a local counter so log lines still group (a
/// client's `x-fc-request-id` on a plain server names nothing and is not believed).
fn request_id(origin: Origin, headers: &http::HeaderMap) -> String {
    static LOCAL: AtomicU64 = AtomicU64::new(1);
    let from_fc = match origin {
        Origin::FunctionCompute => headers.get(FC_REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()),
        Origin::Server | Origin::Lambda => None,
    };
    match from_fc.filter(|v| !v.is_empty()) {
        Some(id) => crate::text::printable(id).into_owned(),
        None => format!("local-{}", LOCAL.fetch_add(1, Ordering::Relaxed)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    fn addr(pairs: &[(&str, &str)]) -> Result<SocketAddr, String> {
        listen_addr(vars(pairs))
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

    #[test]
    fn function_compute_is_proved_by_all_of_its_variables() {
        let all = [
            ("FC_FUNCTION_NAME", "vodhook"),
            ("FC_REGION", "cn-shanghai"),
            ("FC_ACCOUNT_ID", "1234567890"),
            ("FC_INSTANCE_ID", "c-6789"),
        ];
        assert!(on_function_compute(vars(&all)));
        for missing in 0..all.len() {
            let mut some = all.to_vec();
            some.remove(missing);
            assert!(!on_function_compute(vars(&some)), "without {}", all[missing].0);
            some.insert(missing, (all[missing].0, ""));
            assert!(!on_function_compute(vars(&some)), "with an empty {}", all[missing].0);
        }
        assert!(!on_function_compute(vars(&[("FC_FUNCTION_NAME", "vodhook-test")])));
    }

    #[test]
    fn a_clients_request_id_is_believed_on_function_compute_only() {
        let mut headers = http::HeaderMap::new();
        headers.insert(FC_REQUEST_ID_HEADER, "fc-1234".parse().unwrap());
        assert_eq!(request_id(Origin::FunctionCompute, &headers), "fc-1234");
        assert!(request_id(Origin::Server, &headers).starts_with("local-"));
    }
}
