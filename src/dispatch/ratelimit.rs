//! Per-channel token buckets: DingTalk and WeCom robots accept 20 messages a minute and answer
//! errors beyond that, so each instance paces itself instead of spending its deadline on
//! rate-limit replies. (Several instances share the service's limit; the retry path covers
//! what a bucket per instance cannot.)

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket: `capacity` messages at once, refilled at `capacity` per minute.
#[derive(Debug)]
pub struct TokenBucket {
    capacity: f64,
    per_sec: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn per_minute(capacity: u32, now: Instant) -> Self {
        let capacity = f64::from(capacity.max(1));
        Self { capacity, per_sec: capacity / 60.0, state: Mutex::new(State { tokens: capacity, last: now }) }
    }

    /// Takes a token at `now` and returns how long to wait before sending (zero when one was
    /// available). The token is reserved either way, so waiting callers queue fairly. `None`
    /// when the wait would end after `deadline`: nothing is reserved then.
    pub fn reserve(&self, now: Instant, deadline: Instant) -> Option<Duration> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let elapsed = now.saturating_duration_since(state.last).as_secs_f64();
        state.tokens = (state.tokens + elapsed * self.per_sec).min(self.capacity);
        state.last = now;
        let wait = if state.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - state.tokens) / self.per_sec)
        };
        if now + wait > deadline {
            return None;
        }
        state.tokens -= 1.0;
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_a_minute_then_one_every_three_seconds() {
        let t0 = Instant::now();
        let far = t0 + Duration::from_secs(3600);
        let bucket = TokenBucket::per_minute(20, t0);
        for _ in 0..20 {
            assert_eq!(bucket.reserve(t0, far), Some(Duration::ZERO));
        }
        assert_eq!(bucket.reserve(t0, far), Some(Duration::from_secs(3)));
        // The 22nd waits behind the 21st.
        assert_eq!(bucket.reserve(t0, far), Some(Duration::from_secs(6)));
        // Refilled after a minute.
        let later = t0 + Duration::from_secs(66);
        assert_eq!(bucket.reserve(later, far + Duration::from_secs(66)), Some(Duration::ZERO));
    }

    #[test]
    fn a_wait_past_the_deadline_reserves_nothing() {
        let t0 = Instant::now();
        let bucket = TokenBucket::per_minute(1, t0);
        assert_eq!(bucket.reserve(t0, t0), Some(Duration::ZERO));
        assert_eq!(bucket.reserve(t0, t0 + Duration::from_secs(1)), None);
        // Nothing was reserved by the refusal: the next token is still 60 s away, not 120.
        assert_eq!(bucket.reserve(t0, t0 + Duration::from_secs(61)), Some(Duration::from_secs(60)));
    }
}
