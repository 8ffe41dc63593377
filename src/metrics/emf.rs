//! One CloudWatch Embedded Metric Format line per callback, for Lambda: CloudWatch Logs turns
//! it into metrics with no agent and no API call.
//!
//! The line's `_aws.CloudWatchMetrics` names every metric it carries (each a top-level member:
//! a number, or for `send_seconds` an array of at most [`MAX_VALUES`]) under `[metrics]
//! namespace`, with the dimension sets `[]` (totals) and `["event_type", "status"]`, whose
//! values are top-level members too. An action's outcome is part of the metric's name
//! (`actions_sent`, `actions_queued`, ...), as are a VOD call's (`vod_api_calls_failed`).

use serde_json::{Map, Value, json};

use super::names;
use super::tally::Tally;

/// The most values one metric carries in one line (the specification's limit).
pub const MAX_VALUES: usize = 100;
/// The most metrics one directive names (the specification's limit).
pub const MAX_METRICS: usize = 100;

/// The line for one request's `tally`, at `timestamp_ms` (Unix milliseconds).
pub fn line(tally: &Tally, namespace: &str, timestamp_ms: i64) -> String {
    let (event_type, status) = dimensions(tally);
    let mut root = Map::new();
    let mut metrics: Vec<Value> = Vec::new();
    let mut put = |root: &mut Map<String, Value>, name: String, value: Value, unit: &str| {
        if metrics.len() < MAX_METRICS {
            metrics.push(json!({ "Name": name, "Unit": unit }));
            root.insert(name, value);
        }
    };
    put(&mut root, names::CALLBACKS_RECEIVED.to_owned(), tally.counts.received.into(), "Count");
    let rejected: u64 = tally.counts.rejected.values().sum();
    put(&mut root, names::CALLBACKS_REJECTED.to_owned(), rejected.into(), "Count");
    put(&mut root, names::EVENTS.to_owned(), tally.counts.events.values().sum::<u64>().into(), "Count");
    for outcome in names::OUTCOMES {
        let n = tally.actions_with(outcome);
        if n > 0 {
            put(&mut root, format!("{}_{outcome}", names::ACTIONS), n.into(), "Count");
        }
    }
    let calls: u64 = tally.counts.vod_calls.values().sum();
    if calls > 0 {
        put(&mut root, names::VOD_API_CALLS.to_owned(), calls.into(), "Count");
        for outcome in ["ok", "retry", "failed"] {
            let n: u64 =
                tally.counts.vod_calls.iter().filter(|((_, o), _)| *o == outcome).map(|(_, n)| n).sum();
            if n > 0 {
                put(&mut root, format!("{}_{outcome}", names::VOD_API_CALLS), n.into(), "Count");
            }
        }
    }
    let holds: u64 = tally.counts.budget_holds.values().sum();
    if holds > 0 {
        put(&mut root, names::BUDGET_HOLDS.to_owned(), holds.into(), "Count");
    }
    if !tally.send_seconds.is_empty() {
        let values: Vec<f64> = tally.send_seconds.iter().take(MAX_VALUES).map(|(_, s)| *s).collect();
        put(&mut root, names::SEND_SECONDS.to_owned(), values.into(), "Seconds");
    }
    if let Some(seconds) = tally.handle_seconds {
        put(&mut root, names::HANDLE_SECONDS.to_owned(), seconds.into(), "Seconds");
    }
    root.insert("event_type".to_owned(), event_type.into());
    root.insert("status".to_owned(), status.into());
    root.insert(
        "_aws".to_owned(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [[], ["event_type", "status"]],
                "Metrics": metrics,
            }],
        }),
    );
    Value::Object(root).to_string()
}

/// The `event_type` and `status` of the request's events: theirs when they all share them,
/// `mixed` when not, `none` when it had none (a rejected request, a timer's tick).
fn dimensions(tally: &Tally) -> (String, String) {
    let mut labels = tally.counts.events.keys().map(|(kind, status, _)| (kind.as_str(), *status));
    let Some((kind, status)) = labels.next() else {
        return ("none".to_owned(), "none".to_owned());
    };
    let (mut kind, mut status) = (kind.to_owned(), status.to_owned());
    for (other_kind, other_status) in labels {
        if other_kind != kind {
            kind = "mixed".to_owned();
        }
        if other_status != status {
            status = "mixed".to_owned();
        }
    }
    (kind, status)
}
