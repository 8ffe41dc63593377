//! The totals in the Prometheus text exposition format (version 0.0.4), for `GET /metrics` on
//! `[metrics] listen`.

use std::fmt::Write;

use super::names;
use super::tally::{BUCKETS, Histogram, Totals};

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric family, with HELP and TYPE, even before it has a sample.
pub fn render(totals: &Totals) -> String {
    let mut out = String::with_capacity(4_096);
    let counter = |out: &mut String, name: &str, help: &str| {
        let _ = writeln!(out, "# HELP vodhook_{name}_total {help}\n# TYPE vodhook_{name}_total counter");
    };
    counter(
        &mut out,
        names::CALLBACKS_RECEIVED,
        "Requests to the callback endpoint, rejected ones included.",
    );
    sample(&mut out, names::CALLBACKS_RECEIVED, &[], totals.counts.received);
    counter(&mut out, names::CALLBACKS_REJECTED, "Callbacks refused before their events were handled.");
    for (reason, n) in &totals.counts.rejected {
        sample(&mut out, names::CALLBACKS_REJECTED, &[("reason", reason.as_str())], *n);
    }
    counter(&mut out, names::EVENTS, "Events, each once (a redelivery is not counted again).");
    for ((kind, status, source), n) in &totals.counts.events {
        sample(&mut out, names::EVENTS, &[("event_type", kind), ("status", status), ("source", source)], *n);
    }
    counter(&mut out, names::ACTIONS, "What became of each action.");
    for ((channel, route, outcome), n) in &totals.counts.actions {
        sample(&mut out, names::ACTIONS, &[("channel", channel), ("route", route), ("outcome", outcome)], *n);
    }
    counter(&mut out, names::VOD_API_CALLS, "VOD OpenAPI calls.");
    for ((action, outcome), n) in &totals.counts.vod_calls {
        sample(&mut out, names::VOD_API_CALLS, &[("action", action), ("outcome", outcome)], *n);
    }
    counter(
        &mut out,
        names::BUDGET_HOLDS,
        "Actions held for a digest: their channel's rate budget was spent.",
    );
    for (channel, n) in &totals.counts.budget_holds {
        sample(&mut out, names::BUDGET_HOLDS, &[("channel", channel)], *n);
    }
    let _ = writeln!(
        out,
        "# HELP vodhook_{0} Seconds per attempt to send to a channel.\n# TYPE vodhook_{0} histogram",
        names::SEND_SECONDS
    );
    for (channel, histogram) in &totals.send_seconds {
        buckets(&mut out, names::SEND_SECONDS, Some(("channel", channel)), histogram);
    }
    let _ = writeln!(
        out,
        "# HELP vodhook_{0} Seconds to handle one callback.\n# TYPE vodhook_{0} histogram",
        names::HANDLE_SECONDS
    );
    buckets(&mut out, names::HANDLE_SECONDS, None, &totals.handle_seconds);
    out
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    let _ = writeln!(out, "vodhook_{name}_total{} {value}", label_set(labels));
}

/// A histogram's cumulative buckets, `+Inf`, sum and count.
fn buckets(out: &mut String, name: &str, label: Option<(&str, &str)>, histogram: &Histogram) {
    let base: Vec<(&str, &str)> = label.into_iter().collect();
    let mut cumulative = 0;
    for (bound, n) in BUCKETS.iter().zip(histogram.buckets) {
        cumulative += n;
        let le = bound.to_string();
        let labels: Vec<(&str, &str)> = base.iter().copied().chain([("le", le.as_str())]).collect();
        let _ = writeln!(out, "vodhook_{name}_bucket{} {cumulative}", label_set(&labels));
    }
    let labels: Vec<(&str, &str)> = base.iter().copied().chain([("le", "+Inf")]).collect();
    let _ = writeln!(out, "vodhook_{name}_bucket{} {}", label_set(&labels), histogram.count);
    let _ = writeln!(out, "vodhook_{name}_sum{} {}", label_set(&base), histogram.sum);
    let _ = writeln!(out, "vodhook_{name}_count{} {}", label_set(&base), histogram.count);
}

/// `{a="x",b="y"}` with values escaped as the format says (`\\`, `\"`, `\n`); empty for none.
fn label_set(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
        })
        .collect();
    format!("{{{}}}", pairs.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Tally;

    #[test]
    fn label_values_are_escaped_and_buckets_cumulative() {
        let mut tally = Tally { handle_seconds: Some(0.02), ..Tally::default() };
        tally.counts.received = 2;
        tally.action("a\"b\\c", "r\nx", "sent");
        tally.send("ops", 0.003);
        tally.send("ops", 0.2);
        let mut totals = Totals::new();
        totals.add(&tally);
        let text = render(&totals);
        assert!(text.contains("vodhook_callbacks_received_total 2\n"), "{text}");
        assert!(
            text.contains(r#"vodhook_actions_total{channel="a\"b\\c",route="r\nx",outcome="sent"} 1"#),
            "{text}"
        );
        assert!(text.contains("vodhook_send_seconds_bucket{channel=\"ops\",le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("vodhook_send_seconds_bucket{channel=\"ops\",le=\"0.25\"} 2\n"), "{text}");
        assert!(text.contains("vodhook_send_seconds_bucket{channel=\"ops\",le=\"+Inf\"} 2\n"), "{text}");
        assert!(text.contains("vodhook_handle_seconds_count 1\n"), "{text}");
    }
}
