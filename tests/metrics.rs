//! Metrics in each platform's own format, from the real binary: Prometheus text on `[metrics]
//! listen` (parsed by `prometheus_client`'s own parser, from PyPI) with every counter equal to
//! what was sent, the per-callback log line's fields (what SLS queries read on Function
//! Compute), and the Embedded Metric Format line checked against the specification (also under
//! the Lambda emulator: `tests/lambda.rs`).

mod support;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use support::standins::StandIn;
use support::{Options, Vodhook, free_port, http_client, post, unix_now, vod_headers};
use vodhook::channel::ChannelType;

const KEY: &str = "metrics-k3y-0f3a9c";

/// The `failed` (or `succeed`) sample as task `task`.
fn event(sample: &str, task: &str) -> String {
    let mut event: Value = serde_json::from_str(sample).unwrap();
    event["TaskId"] = json!(task);
    event.to_string()
}

/// Every sample of the exposition as (name, labels) → value, read by prometheus_client.
fn parsed(exposition: &str) -> BTreeMap<(String, BTreeMap<String, String>), f64> {
    const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
samples = [[s.name, s.labels, s.value] for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples]
print(json.dumps(samples))
"#;
    let out = support::python::run(PARSE, &[], exposition);
    let samples: Vec<(String, BTreeMap<String, String>, f64)> = serde_json::from_str(&out).unwrap();
    samples.into_iter().map(|(name, labels, value)| ((name, labels), value)).collect()
}

fn value(
    samples: &BTreeMap<(String, BTreeMap<String, String>), f64>,
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    let labels: BTreeMap<String, String> =
        labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    samples.get(&(name.to_owned(), labels)).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_and_the_log_line_count_what_happened() {
    let ops = StandIn::start(ChannelType::Dingtalk).await;
    let metrics_port = free_port();
    let channel = ops.channel_toml("ops");
    let options = Options::default().config_for(move |url| {
        format!(
            "[auth]\nkey = \"{KEY}\"\ncallback_url = \"{url}\"\n\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n\n\
             {channel}\n\n[[routes]]\nname = \"all\"\nchannels = [\"ops\"]\n"
        )
    });
    let vodhook = tokio::task::spawn_blocking(move || Vodhook::start_with(options)).await.unwrap();
    let url = vodhook.url("/");
    let signed = || vod_headers(&url, KEY, unix_now());
    let failed = vodhook::samples::FAILED;
    let succeed = vodhook::samples::SUCCEED;
    let bodies = [
        event(failed, "m1"),
        event(failed, "m2"),
        event(failed, "m3"),
        event(succeed, "m4"),
        event(succeed, "m5"),
        event(failed, "m1"), // a redelivery: not a new event, its action a duplicate
    ];
    for body in bodies {
        let answer = post(&url, body, &signed()).await;
        assert_eq!(answer.status, 200, "{}", answer.json);
    }
    let unsigned = post(&url, event(failed, "m6"), &[]).await;
    assert_eq!(unsigned.status, 401);
    let malformed = post(&url, "{\"EventType\": 5}".to_owned(), &signed()).await;
    assert_eq!(malformed.status, 400);

    // Not on the callback port; on its own.
    let on_callback_port = http_client().get(vodhook.url("/metrics")).send().await.unwrap();
    assert_ne!(on_callback_port.status().as_u16(), 200);
    let response =
        http_client().get(format!("http://127.0.0.1:{metrics_port}/metrics")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let text = response.text().await.unwrap();
    let samples = parsed(&text);

    assert_eq!(value(&samples, "vodhook_callbacks_received_total", &[]), 8.0, "{text}");
    assert_eq!(value(&samples, "vodhook_callbacks_rejected_total", &[("reason", "auth")]), 1.0, "{text}");
    assert_eq!(value(&samples, "vodhook_callbacks_rejected_total", &[("reason", "decode")]), 1.0, "{text}");
    let events = |status| {
        value(
            &samples,
            "vodhook_events_total",
            &[("event_type", "WorkflowTaskComplete"), ("status", status), ("source", "vod")],
        )
    };
    assert_eq!((events("Failed"), events("Succeed")), (3.0, 2.0), "{text}");
    let actions = |outcome| {
        value(
            &samples,
            "vodhook_actions_total",
            &[("channel", "ops"), ("route", "all"), ("outcome", outcome)],
        )
    };
    assert_eq!((actions("sent"), actions("duplicate")), (5.0, 1.0), "{text}");
    assert_eq!(ops.received().len(), 5, "what the counters say was sent, was");
    assert_eq!(value(&samples, "vodhook_send_seconds_count", &[("channel", "ops")]), 5.0, "{text}");
    assert_eq!(value(&samples, "vodhook_send_seconds_bucket", &[("channel", "ops"), ("le", "+Inf")]), 5.0);
    assert_eq!(value(&samples, "vodhook_handle_seconds_count", &[]), 8.0, "{text}");
    let handled = value(&samples, "vodhook_handle_seconds_sum", &[]);
    assert!(handled > 0.0 && handled < 30.0, "{handled}");

    // The same names as plain fields of each callback's log line (what SLS queries read).
    let lines = vodhook.summaries(8);
    let field = |name: &str| -> u64 { lines.iter().map(|l| l[name].as_u64().unwrap_or(0)).sum() };
    assert_eq!(field("callbacks_received"), 8, "{lines:#?}");
    assert_eq!(field("callbacks_rejected"), 2);
    assert_eq!(field("events_new"), 5);
    assert_eq!(field("actions_sent"), 5);
    assert_eq!(field("actions_duplicate"), 1);
    assert!(lines.iter().any(|l| l["rejected_reason"] == "auth"), "{lines:#?}");
    assert!(lines.iter().all(|l| l["handle_seconds"].as_f64().is_some()), "{lines:#?}");
    let failures = vodhook.wait_for_records("event failed", 3);
    assert_eq!(failures.len(), 3, "one line per new failure, none for the redelivery");
    assert_eq!(failures[0]["fields"]["workflow_id"], "wf-6f2a0c1d9e8b4d3a");
    assert_eq!(failures[0]["fields"]["error_code"], "InvalidMedia.AudioStreamMissing");
}

#[test]
fn an_emf_line_is_what_the_specification_says() {
    use vodhook::metrics::{Tally, emf};
    let mut tally = Tally { handle_seconds: Some(0.0123), ..Tally::default() };
    tally.counts.received = 1;
    let event: vodhook::event::Event =
        vodhook::event::decode_delivery(vodhook::samples::FAILED.as_bytes()).unwrap().events.remove(0);
    tally.event(&event);
    tally.action("ops", "all", "sent");
    tally.action("ops", "all", "queued");
    tally.vod_call("SubmitWorkflowJob", "retry");
    tally.send("ops", 0.2);
    tally.send("ops", 0.3);
    let line = emf::line(&tally, "vodhook", 1_764_900_000_000);
    support::emf::assert_valid(&line);
    let root: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(root["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[], ["event_type", "status"]]));
    assert_eq!(
        (root["event_type"].as_str(), root["status"].as_str()),
        (Some("WorkflowTaskComplete"), Some("Failed"))
    );
    assert_eq!((root["actions_sent"].as_u64(), root["actions_queued"].as_u64()), (Some(1), Some(1)));
    assert_eq!(root["vod_api_calls_retry"], 1);
    assert_eq!(root["send_seconds"], json!([0.2, 0.3]));

    // A line can name no more than 100 values of one metric.
    let mut busy = Tally::default();
    (0..250).for_each(|_| busy.send("ops", 0.01));
    let line = emf::line(&busy, "vodhook", 1_764_900_000_000);
    support::emf::assert_valid(&line);
}
