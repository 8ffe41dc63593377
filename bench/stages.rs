//! The request path's stages apart (the request-path issue's "a criterion benchmark per
//! stage"): decode (also `bench/decode.rs`, against the bare parse), route + render (the
//! actions one event causes, built-in and six-channel configurations), and the JSON log line
//! (vodhook's formatter beside tracing-subscriber's, which it replaced).
//!
//! `cargo bench --bench stages -- --measurement-time 2 --warm-up-time 1`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tracing_subscriber::fmt::format::JsonFields;
use vodhook::event::decode_delivery;
use vodhook::setup::Setup;

const SUCCEED: &[u8] = include_bytes!("../src/samples/succeed.json");
const SIX_CHANNELS: &str = include_str!("six-channels.toml");

fn decode(c: &mut Criterion) {
    c.bench_function("decode/succeed.json", |b| b.iter(|| decode_delivery(black_box(SUCCEED)).unwrap()));
}

fn route_and_render(c: &mut Criterion) {
    let event = decode_delivery(SUCCEED).unwrap().events.remove(0);
    let no_env = |_: &str| None;
    for (name, toml) in [("built-in", ""), ("six-channels", SIX_CHANNELS)] {
        let setup = if toml.is_empty() {
            Setup::from_config(vodhook::config::Config::builtin()).unwrap()
        } else {
            Setup::from_toml_str(toml, &no_env).unwrap()
        };
        c.bench_function(&format!("route+render/{name}"), |b| {
            b.iter(|| setup.router.plan(black_box(&event)).unwrap())
        });
    }
}

/// The `request done` line's shape: a span with the request id, thirty-odd fields.
fn one_line() {
    let span = tracing::info_span!("request", request_id = "1-6752f1a3-9c0e4b5d");
    let _entered = span.enter();
    tracing::info!(
        status = 200_u16,
        events = 1_u64,
        delivered = 1_u64,
        duplicate = 0_u64,
        retried = 0_u64,
        failed_permanently = 0_u64,
        left_for_retry = 0_u64,
        queued = 0_u64,
        held = 0_u64,
        digests = 0_u64,
        duration_ms = 3_u64,
        callbacks_received = 1_u64,
        callbacks_rejected = 0_u64,
        rejected_reason = "",
        events_new = 1_u64,
        actions_sent = 1_u64,
        actions_queued = 0_u64,
        actions_dead = 0_u64,
        actions_digested = 0_u64,
        actions_held = 0_u64,
        actions_silenced = 0_u64,
        actions_duplicate = 0_u64,
        vod_api_calls = 0_u64,
        vod_api_calls_failed = 0_u64,
        budget_holds = 0_u64,
        handle_seconds = 0.0031,
        "request done"
    );
}

fn log_line(c: &mut Criterion) {
    let ours = tracing_subscriber::fmt()
        .fmt_fields(JsonFields::new())
        .event_format(vodhook::telemetry::json::JsonLine)
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::with_default(ours, || c.bench_function("log-line/vodhook", |b| b.iter(one_line)));
    let theirs = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::with_default(theirs, || {
        c.bench_function("log-line/tracing-subscriber-json", |b| b.iter(one_line))
    });
}

criterion_group!(stages, decode, route_and_render, log_line);
criterion_main!(stages);
