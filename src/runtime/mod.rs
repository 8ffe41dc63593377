//! The runtimes: thin adapters from each platform's requests to [`crate::handler::App`].

pub mod lambda;
pub mod server;

/// Unix seconds now: the one clock the core handler is given.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
