//! The floor for `scripts/bench`: the least a Rust HTTP function can do — a hyper server on the
//! same tokio runtime vodhook uses, reading each request body and answering `200`. vodhook's
//! cold start, throughput and memory are measured as ratios to this, so the numbers say what
//! vodhook's own work costs, not what the machine or the kernel costs.
//!
//! Listens on `VODHOOK_LISTEN` (default `127.0.0.1:9000`), like `vodhook serve`.
//! Build: `cargo build --release --example floor`.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the body, as any real handler must, so the floor pays for the bytes too.
    let read = request.into_body().collect().await.map(|b| b.to_bytes().len()).unwrap_or(0);
    let body = Bytes::from(format!("{{\"read\":{read}}}"));
    Ok(Response::new(Full::new(body)))
}

fn main() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::var("VODHOOK_LISTEN")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "127.0.0.1:9000".to_owned())
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(async move {
                let _ =
                    http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(answer)).await;
            });
        }
    })
}
