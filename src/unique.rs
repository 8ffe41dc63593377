//! Unique ids: a leaf that the store (claim tokens), the VOD API client (nonces) and the budgets
//! (member ids) share, so that none of them imports another for it.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

/// 128 unpredictable bits in hex, unique across calls and instances: claim tokens, the VOD API's
/// nonces, the budgets' member ids. Made from std's randomly keyed SipHash (seeded by the OS per
/// process) over a counter and the clock: no RNG crate needed for a value that only has to be
/// unique, not secret.
pub fn hex() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let seed = (n, nanos, std::process::id());
    let a = std::collections::hash_map::RandomState::new().hash_one(seed);
    let b = std::collections::hash_map::RandomState::new().hash_one((seed, a));
    format!("{a:016x}{b:016x}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_128_bits_of_hex_and_differ() {
        let (a, b) = (super::hex(), super::hex());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
