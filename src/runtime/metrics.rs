//! `GET /metrics` in the Prometheus text format, on an address of its own (`[metrics] listen`):
//! off unless configured, so the counters are never served on the callback port by accident.
//! Small on purpose: at most [`MAX_CONNECTIONS`] at once, headers within [`HEADER_TIMEOUT`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::metrics::prometheus;

/// Scrapers connect one or two at a time; more are closed at once.
const MAX_CONNECTIONS: usize = 16;
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds `addr` (an error when it cannot: the operator asked for it), then serves on a task of
/// its own for the process's life.
pub async fn spawn(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await.map_err(|err| {
        std::io::Error::new(err.kind(), format!("cannot listen on {addr} ([metrics] listen): {err}"))
    })?;
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, "metrics at /metrics");
    tokio::spawn(serve(listener));
    Ok(bound)
}

async fn serve(listener: TcpListener) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                tracing::warn!(error = %err, "metrics listener: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
        tokio::spawn(async move {
            let service =
                service_fn(|request: Request<Incoming>| async move { Ok::<_, Infallible>(answer(&request)) });
            let mut builder = http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
            drop(slot);
        });
    }
}

fn answer<B>(request: &Request<B>) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => {
            (StatusCode::OK, prometheus::CONTENT_TYPE, prometheus::render(&crate::metrics::totals()))
        }
        _ => (StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "GET /metrics\n".to_owned()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = http::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}
