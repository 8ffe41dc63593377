//! What decoding a delivery costs, beside a bare `serde_json::from_slice::<Value>` of the same
//! bytes (the floor: any decoder reads the document once). Goal: decode ≤ 2× the bare parse.
//!
//! `cargo bench --bench decode -- --measurement-time 3 --warm-up-time 1`
//!
//! For instruction counts (steady where wall time on a shared machine is not), run the bench
//! binary under callgrind with `DECODE_PROFILE=<input>/<what> DECODE_ITERS=<n>`, e.g.
//! `DECODE_PROFILE=50-nodes/decode_delivery valgrind --tool=callgrind target/release/deps/decode-*`:
//! it runs that one case `n` times (default 100) and exits.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group};
use serde_json::{Value, json};
use vodhook::event::decode_delivery;

/// The VOD documentation's own WorkflowTaskComplete example (three levels of JSON in strings).
const DOC_EXAMPLE: &[u8] = include_bytes!("../tests/fixtures/workflow-doc-example.json");

/// A WorkflowTaskComplete with `nodes` nodes, shaped like VOD's: `ActivityResults` and
/// `TaskInput` are JSON strings, each node's `Result` is a JSON string holding a
/// `MessageBody.TriggerSource` that is a JSON string again.
fn workflow_with_nodes(nodes: usize) -> Vec<u8> {
    let trigger = json!({"ActivityInstanceId": "ai-7f3a", "BizType": "ice-workflow"}).to_string();
    let activity_results: serde_json::Map<String, Value> = (0..nodes)
        .map(|i| {
            let result = json!({
                "RequestId": format!("5F3B6C2A-1D7E-4B8F-9A0C-{i:012}"),
                "EventType": "SnapshotComplete",
                "UserId": 1_234_567_890_123_456_u64,
                "MessageBody": {
                    "Status": "success",
                    "VideoId": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
                    "EventType": "SnapshotComplete",
                    "EventTime": "2025-04-01T02:29:48Z",
                    "CoverUrl": format!("https://vod.example.com/a1b2c3d4/cover-{i}.jpg"),
                    "TriggerSource": trigger,
                },
            });
            let node = json!({
                "ActivityId": "VodSnapshot",
                "ActivityInstanceId": format!("ai-snapshot-{i}"),
                "StartTime": "2025-04-01T02:29:46Z",
                "EndTime": "2025-04-01T02:29:50Z",
                "Status": if i % 10 == 9 { "Failed" } else { "Succeed" },
                "Result": result.to_string(),
            });
            (format!("VodSnapshot_{i:05x}"), node)
        })
        .collect();
    let task_input =
        json!({"Type": "Media", "Media": "a1b2c3d4", "Title": "春季发布会 🎬", "StorageLocation": "outin-1"});
    json!({
        "EventType": "WorkflowTaskComplete", "EventTime": "2025-04-01T02:33:12Z",
        "WorkflowId": "5a8a0b1c2d3e4f50", "Status": "Succeed", "VideoId": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
        "TaskId": "9f8e7d6c5b4a3928", "UserId": 1_234_567_890_123_456_u64,
        "CreateTime": "2025-04-01T02:29:43Z", "ModifiedTime": "2025-04-01T02:33:12Z",
        "FinishTime": "2025-04-01T02:33:12Z",
        "ActivityResults": Value::Object(activity_results).to_string(),
        "TaskInput": task_input.to_string(),
    })
    .to_string()
    .into_bytes()
}

/// An input: its bytes as they arrive, and its decoded tree written as plain JSON (no JSON in
/// strings), so that parsing the latter shows what building and dropping the decoded tree
/// alone costs.
struct Input {
    name: &'static str,
    body: Vec<u8>,
    decoded_plain: Vec<u8>,
}

/// The inputs, checked: they must decode as intended, or the numbers mean nothing.
fn inputs() -> [Input; 2] {
    [("doc-example", DOC_EXAMPLE.to_vec()), ("50-nodes", workflow_with_nodes(50))].map(|(name, body)| {
        let delivery = decode_delivery(&body).expect("bench input decodes");
        assert!(delivery.warnings.is_empty(), "{name}: {:?}", delivery.warnings);
        let decoded_plain = delivery.events[0].decoded().to_string().into_bytes();
        Input { name, body, decoded_plain }
    })
}

fn bench(c: &mut Criterion) {
    for input in &inputs() {
        let (body, plain) = (&input.body[..], &input.decoded_plain[..]);
        let mut group = c.benchmark_group(input.name);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function("serde_json-Value", |b| {
            b.iter(|| serde_json::from_slice::<Value>(black_box(body)).unwrap())
        });
        group.bench_function("decode_delivery", |b| b.iter(|| decode_delivery(black_box(body)).unwrap()));
        group.bench_function("decode_delivery-and-tree", |b| b.iter(|| decode_with_tree(black_box(body))));
        group.bench_function("serde_json-Value-of-decoded-tree", |b| {
            b.iter(|| serde_json::from_slice::<Value>(black_box(plain)).unwrap())
        });
        group.finish();
    }
}

/// Decodes `body` and reads its event's decoded tree, as a webhook or a template that reads
/// `event` does (a bare WorkflowTaskComplete builds it on that first read).
fn decode_with_tree(body: &[u8]) -> vodhook::event::Delivery {
    let delivery = decode_delivery(body).unwrap();
    black_box(delivery.events[0].decoded());
    delivery
}

/// `DECODE_PROFILE=<input>/<what>`: one case, a fixed number of times, for callgrind.
fn profile(case: &str) {
    let iters: usize = std::env::var("DECODE_ITERS").ok().and_then(|n| n.parse().ok()).unwrap_or(100);
    let inputs = inputs();
    let (name, what) = case.split_once('/').expect("DECODE_PROFILE=<input>/<what>");
    let input = inputs.iter().find(|i| i.name == name).expect("an input name");
    let parse = |bytes: &[u8]| drop(black_box(serde_json::from_slice::<Value>(black_box(bytes)).unwrap()));
    for _ in 0..iters {
        match what {
            "serde_json-Value" => parse(&input.body),
            "decode_delivery" => drop(black_box(decode_delivery(black_box(&input.body)).unwrap())),
            "decode_delivery-and-tree" => drop(black_box(decode_with_tree(black_box(&input.body)))),
            "serde_json-Value-of-decoded-tree" => parse(&input.decoded_plain),
            other => panic!("unknown case {other}"),
        }
    }
}

criterion_group!(benches, bench);

fn main() {
    if let Ok(case) = std::env::var("DECODE_PROFILE") {
        return profile(&case);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
