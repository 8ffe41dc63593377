//! Reading an HTTP reply's body up to a cap.
//!
//! Every service vodhook calls (chat robots, webhook receivers, the VOD API) is outside its
//! control, and `reqwest::Response::bytes` reads whatever it is sent: a receiver answering 1 GiB
//! would take 1 GiB of the function's memory. So replies are read chunk by chunk and never past
//! their cap; the caller decides what a reply cut at the cap means (a chat reply keeps its
//! beginning, a VOD API answer fails).

/// A reply body read up to a cap.
#[derive(Debug)]
pub struct Capped {
    /// At most the cap's bytes, from the start of the body.
    pub body: Vec<u8>,
    /// The body went on past the cap (what came after was not read).
    pub cut: bool,
}

/// Reads `response`'s body, stopping at `max_bytes`: memory stays bounded whatever the peer
/// sends. The rest is not read (dropping the response closes the connection).
pub async fn read_capped(response: &mut reqwest::Response, max_bytes: usize) -> reqwest::Result<Capped> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = max_bytes - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok(Capped { body, cut: true });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Capped { body, cut: false })
}
