//! Retry delays within one request: exponential with full jitter, so instances that failed
//! together do not retry together, and never shorter than a `Retry-After` the service asked for.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The delay before retry number `retry` (0 for the first retry).
pub fn delay(retry: u32, initial: Duration, max: Duration, retry_after: Option<Duration>) -> Duration {
    let ceiling = initial.saturating_mul(2u32.saturating_pow(retry)).min(max);
    // Full jitter between half the ceiling and the ceiling: spread, yet still backing off.
    let jittered = ceiling.mul_f64(0.5 + 0.5 * unit_random());
    retry_after.map_or(jittered, |after| after.max(jittered))
}

/// A number in [0, 1): the process's random hash keys, mixed with the clock. Plenty for jitter,
/// without a dependency for it.
fn unit_random() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_jitters_and_caps() {
        let (initial, max) = (Duration::from_millis(100), Duration::from_millis(1000));
        for retry in 0..8 {
            let d = delay(retry, initial, max, None);
            let ceiling = (initial * 2u32.pow(retry)).min(max);
            assert!(d >= ceiling / 2 && d <= ceiling, "retry {retry}: {d:?} not within {ceiling:?}");
        }
    }

    #[test]
    fn honours_retry_after() {
        let d = delay(0, Duration::from_millis(100), Duration::from_secs(1), Some(Duration::from_secs(2)));
        assert_eq!(d, Duration::from_secs(2));
    }
}
