//! What one request did ([`Tally`]), and what the process did since it started ([`Totals`]).

use std::collections::BTreeMap;

use crate::event::{Event, TaskStatus};

/// Why a callback was refused before its events were handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rejection {
    /// The signature check failed (or the signature was replayed).
    Auth,
    /// The body is not a delivery vodhook can read.
    Decode,
    /// The body, or something in it, is over a limit.
    Limit,
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Auth => "auth",
            Rejection::Decode => "decode",
            Rejection::Limit => "limit",
        }
    }
}

/// An event's labels: `event_type`, `status`, `source`.
pub type EventLabels = (String, &'static str, &'static str);
/// An action's labels: `channel`, `route`, `outcome`.
pub type ActionLabels = (String, String, &'static str);

/// The counters, by their labels: what a request adds up and what the totals keep alike.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub received: u64,
    pub rejected: BTreeMap<Rejection, u64>,
    pub events: BTreeMap<EventLabels, u64>,
    pub actions: BTreeMap<ActionLabels, u64>,
    /// By (OpenAPI action, `ok` / `retry` / `failed`).
    pub vod_calls: BTreeMap<(String, &'static str), u64>,
    pub budget_holds: BTreeMap<String, u64>,
}

/// What one request (a callback, a drain) did: its counts and its timings, one value each.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub counts: Counts,
    /// (channel, seconds) per attempt.
    pub send_seconds: Vec<(String, f64)>,
    pub handle_seconds: Option<f64>,
}

/// Longest `event_type` label kept as it arrived; longer (or odd) ones count as `other`: the
/// label comes from the request, and must not grow the series without bound.
const MAX_EVENT_TYPE_CHARS: usize = 64;
/// The most `events` series the totals keep: event types beyond them count as `other` (a sender
/// can make up types; a scrape must not grow without bound).
pub const MAX_EVENT_SERIES: usize = 200;

impl Tally {
    pub fn rejected(&mut self, reason: Rejection) {
        *self.counts.rejected.entry(reason).or_default() += 1;
    }

    /// One event seen for the first time.
    pub fn event(&mut self, event: &Event) {
        *self.counts.events.entry(event_labels(event)).or_default() += 1;
    }

    pub fn action(&mut self, channel: &str, route: &str, outcome: &'static str) {
        *self.counts.actions.entry((channel.to_owned(), route.to_owned(), outcome)).or_default() += 1;
    }

    pub fn vod_call(&mut self, action: &str, outcome: &'static str) {
        *self.counts.vod_calls.entry((action.to_owned(), outcome)).or_default() += 1;
    }

    pub fn budget_hold(&mut self, channel: &str) {
        *self.counts.budget_holds.entry(channel.to_owned()).or_default() += 1;
    }

    pub fn send(&mut self, channel: &str, seconds: f64) {
        self.send_seconds.push((channel.to_owned(), seconds));
    }

    /// Actions with `outcome`, over every channel and route.
    pub fn actions_with(&self, outcome: &str) -> u64 {
        self.counts.actions.iter().filter(|((_, _, o), _)| *o == outcome).map(|(_, n)| n).sum()
    }
}

/// The labels of `event`: its type (as sent, when it is a plain name), status and source.
pub fn event_labels(event: &Event) -> EventLabels {
    let kind = event.event_type();
    let kind = if !kind.is_empty()
        && kind.len() <= MAX_EVENT_TYPE_CHARS
        && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    {
        kind.to_owned()
    } else {
        "other".to_owned()
    };
    (kind, status_label(event.status()), event.source().as_str())
}

/// `Succeed` / `Failed` (node events' `success` / `fail` too), `other`, or `none`.
pub fn status_label(status: Option<&str>) -> &'static str {
    match status.map(TaskStatus::parse) {
        None => "none",
        Some(TaskStatus::Succeed) => "Succeed",
        Some(TaskStatus::Failed) => "Failed",
        Some(TaskStatus::Other(_)) => "other",
    }
}

/// The upper bounds of the histograms' buckets, in seconds.
pub const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// A Prometheus histogram: counts per bucket (not cumulative here), the sum and the count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    pub buckets: [u64; BUCKETS.len()],
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub const fn new() -> Self {
        Histogram { buckets: [0; BUCKETS.len()], sum: 0.0, count: 0 }
    }

    pub fn observe(&mut self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|&bound| seconds <= bound) {
            self.buckets[i] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }
}

impl Counts {
    pub const fn new() -> Self {
        Counts {
            received: 0,
            rejected: BTreeMap::new(),
            events: BTreeMap::new(),
            actions: BTreeMap::new(),
            vod_calls: BTreeMap::new(),
            budget_holds: BTreeMap::new(),
        }
    }

    /// Adds `other`, keeping at most [`MAX_EVENT_SERIES`] event series.
    fn add(&mut self, other: &Counts) {
        self.received += other.received;
        add_all(&mut self.rejected, &other.rejected);
        for ((kind, status, source), n) in &other.events {
            let known = self.events.contains_key(&(kind.clone(), status, source));
            let key = if known || self.events.len() < MAX_EVENT_SERIES {
                (kind.clone(), *status, *source)
            } else {
                ("other".to_owned(), *status, *source)
            };
            *self.events.entry(key).or_default() += n;
        }
        add_all(&mut self.actions, &other.actions);
        add_all(&mut self.vod_calls, &other.vod_calls);
        add_all(&mut self.budget_holds, &other.budget_holds);
    }
}

/// What the process did since it started: the counters and histograms `/metrics` serves.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub counts: Counts,
    pub send_seconds: BTreeMap<String, Histogram>,
    pub handle_seconds: Histogram,
}

impl Totals {
    pub const fn new() -> Self {
        Totals { counts: Counts::new(), send_seconds: BTreeMap::new(), handle_seconds: Histogram::new() }
    }

    pub fn add(&mut self, tally: &Tally) {
        self.counts.add(&tally.counts);
        for (channel, seconds) in &tally.send_seconds {
            self.send_seconds.entry(channel.clone()).or_default().observe(*seconds);
        }
        if let Some(seconds) = tally.handle_seconds {
            self.handle_seconds.observe(seconds);
        }
    }
}

fn add_all<K: Ord + Clone>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
    for (key, n) in from {
        *into.entry(key.clone()).or_default() += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_puts_each_observation_in_its_first_bucket() {
        let mut h = Histogram::new();
        for s in [0.001, 0.005, 0.0051, 40.0] {
            h.observe(s);
        }
        assert_eq!(h.buckets[0], 2, "≤ 0.005 twice (the bound is inclusive)");
        assert_eq!(h.buckets[1], 1);
        assert_eq!(h.buckets.iter().sum::<u64>(), 3, "40 s is over every bound: only +Inf has it");
        assert_eq!(h.count, 4);
    }

    #[test]
    fn made_up_event_types_beyond_the_cap_count_as_other() {
        let mut totals = Totals::new();
        for i in 0..MAX_EVENT_SERIES + 50 {
            let mut tally = Tally::default();
            tally.counts.events.insert((format!("Made{i}"), "none", "vod"), 1);
            totals.add(&tally);
        }
        assert_eq!(totals.counts.events.len(), MAX_EVENT_SERIES + 1, "the cap, and `other`");
        assert_eq!(totals.counts.events[&("other".to_owned(), "none", "vod")], 50);
    }

    #[test]
    fn statuses_read_as_the_two_words_and_nothing_unbounded() {
        assert_eq!(status_label(Some("success")), "Succeed");
        assert_eq!(status_label(Some("fail")), "Failed");
        assert_eq!(status_label(Some("Processing")), "other");
        assert_eq!(status_label(None), "none");
    }
}
