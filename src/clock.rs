//! The wall clock, read in one place. The core takes "now" as an argument wherever it can, so
//! tests control time; this is what the runtimes and the outbox pass in.

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
