//! Quiet hours (`time_intervals`, a route's `mute_time_intervals` / `active_time_intervals`,
//! `on_mute`): two `vodhook serve` instances sharing a real Redis, a DingTalk stand-in and a
//! webhook stand-in. The mute interval is the current minute (UTC): failures during it are held
//! (answers 200, nothing sent), then go out after the minute boundary, when a drain runs: one
//! digest headed "While muted (now)" on DingTalk, one by one on the webhook, every event once.

mod support;

use std::time::Duration;

use chrono::{Timelike, Utc};
use serde_json::{Value, json};
use support::redis::RedisServer;
use support::standins::StandIn;
use support::{Cluster, post, run_cli};
use vodhook::channel::ChannelType;

struct Setup {
    cluster: Cluster,
    ops: StandIn,
    pipeline: StandIn,
    audit: StandIn,
    /// Unix seconds at which the mute interval `now` ends.
    mute_ends: i64,
    _redis: RedisServer,
}

/// `HH:MM` of a minute of the day (`24:00` for the end of the day).
fn hhmm(minute_of_day: u32) -> String {
    format!("{:02}:{:02}", minute_of_day / 60, minute_of_day % 60)
}

/// Waits until the current minute has at least 20 s left, so that the test's callbacks all
/// land inside it; returns the minute of the day (UTC) and when it ends (Unix seconds).
async fn a_fresh_minute() -> (u32, i64) {
    let second = Utc::now().second();
    if second > 40 {
        tokio::time::sleep(Duration::from_secs(u64::from(61 - second))).await;
    }
    let now = Utc::now();
    let minute = now.hour() * 60 + now.minute();
    (minute, now.timestamp() - i64::from(now.second()) + 60)
}

/// The intervals: `now` (this minute), `elsewhen` (every day but today: never active today).
fn intervals(minute: u32) -> String {
    let today = Utc::now().format("%A").to_string().to_lowercase();
    let other_days: Vec<String> =
        ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
            .iter()
            .filter(|d| **d != today)
            .map(|d| format!("{d:?}"))
            .collect();
    format!(
        "[[time_intervals]]\nname = \"now\"\n[[time_intervals.intervals]]\n\
         times = [{{ start_time = \"{}\", end_time = \"{}\" }}]\n\n\
         [[time_intervals]]\nname = \"elsewhen\"\n[[time_intervals.intervals]]\nweekdays = [{}]\n",
        hhmm(minute),
        hhmm(minute + 1),
        other_days.join(", ")
    )
}

async fn start() -> Setup {
    let redis = tokio::task::block_in_place(RedisServer::start);
    let (ops, pipeline, audit) = (
        StandIn::start(ChannelType::Dingtalk).await,
        StandIn::start(ChannelType::Webhook).await,
        StandIn::start(ChannelType::Webhook).await,
    );
    let (minute, mute_ends) = a_fresh_minute().await;
    let config = format!(
        "[store]\nbackend = \"redis\"\nurl = \"{}\"\nkey_prefix = \"q{}:\"\n\n{}\n{}\n{}\n\
         [[channels]]\nname = \"journal\"\ntype = \"log\"\n\n{}\n\
         [[routes]]\nname = \"failures\"\nmatch = {{ status = \"Failed\" }}\nchannels = [\"ops\", \"pipeline\"]\nmute_time_intervals = [\"now\"]\ncontinue = true\n\n\
         [[routes]]\nname = \"successes\"\nmatch = {{ status = \"Succeed\" }}\nchannels = [\"ops\"]\nmute_time_intervals = [\"now\"]\non_mute = \"drop\"\n\n\
         [[routes]]\nname = \"while-now\"\nmatch = {{ status = \"Failed\" }}\nchannels = [\"audit\"]\nactive_time_intervals = [\"now\"]\ncontinue = true\n\n\
         [[routes]]\nname = \"while-elsewhen\"\nmatch = {{ status = \"Failed\" }}\nchannels = [\"journal\"]\nactive_time_intervals = [\"elsewhen\"]\n",
        redis.url(),
        std::process::id(),
        ops.channel_toml("ops"),
        pipeline.channel_toml("pipeline"),
        audit.channel_toml("audit"),
        intervals(minute),
    );
    let cluster = Cluster::start(2, &config).await;
    Setup { cluster, ops, pipeline, audit, mute_ends, _redis: redis }
}

fn event(status: &str, task: &str) -> String {
    let sample = if status == "Failed" { vodhook::samples::FAILED } else { vodhook::samples::SUCCEED };
    let mut event: Value = serde_json::from_str(sample).unwrap();
    event["TaskId"] = json!(task);
    event.to_string()
}

async fn send(setup: &Setup, node: usize, body: String) -> Value {
    let answer = post(&setup.cluster.node(node).url("/"), body, &[]).await;
    assert_eq!(answer.status, 200, "{}\n{}", answer.json, setup.cluster.logs());
    answer.json
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn muted_failures_are_held_and_go_out_as_one_digest_when_the_mute_ends() {
    let setup = start().await;
    let tasks = ["task-q1", "task-q2", "task-q3"];
    for (i, task) in tasks.iter().enumerate() {
        let answer = send(&setup, i % 2, event("Failed", task)).await;
        // ops and pipeline held (mute), journal held (outside `elsewhen`), audit sent (inside `now`).
        assert_eq!((answer["muted"].as_u64(), answer["delivered"].as_u64()), (Some(3), Some(1)), "{answer}");
    }
    let dropped = send(&setup, 0, event("Succeed", "task-q-ok")).await;
    assert_eq!(dropped["dropped"], 1, "on_mute = \"drop\": {dropped}");
    assert!(
        setup.ops.received().is_empty() && setup.pipeline.received().is_empty(),
        "nothing sent while muted"
    );
    assert_eq!(setup.audit.received().len(), 3, "active_time_intervals: sent while `now` is active");

    // `plan --at` says so too, before and after the boundary.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("failed.json");
    std::fs::write(&file, event("Failed", "task-plan")).unwrap();
    let at = |secs: i64| chrono::DateTime::from_timestamp(secs, 0).unwrap().to_rfc3339();
    let during = setup.cluster.cli(&["plan", "--at", &at(setup.mute_ends - 1), file.to_str().unwrap()]).await;
    let planned: Vec<Value> = during.ndjson();
    let of =
        |lines: &[Value], channel: &str| lines.iter().find(|a| a["channel"] == channel).cloned().unwrap();
    assert_eq!(of(&planned, "ops")["muted_by"], json!(["now"]), "{}", during.output());
    assert_eq!(of(&planned, "ops")["held_until"], json!(at(setup.mute_ends)));
    assert_eq!(of(&planned, "journal")["muted_by"], json!(["not elsewhen"]));
    assert!(of(&planned, "audit").get("muted_by").is_none());
    let after = setup.cluster.cli(&["plan", "--at", &at(setup.mute_ends), file.to_str().unwrap()]).await;
    assert!(of(&after.ndjson(), "ops").get("muted_by").is_none(), "{}", after.output());
    assert_eq!(of(&after.ndjson(), "audit")["muted_by"], json!(["not now"]));

    // A drain during the mute sends nothing; one after it sends every held event once.
    let early = setup.cluster.cli(&["drain"]).await;
    assert!(setup.ops.received().is_empty(), "{}", early.output());
    let wait = setup.mute_ends - Utc::now().timestamp() + 1;
    tokio::time::sleep(Duration::from_secs(u64::try_from(wait.max(0)).unwrap())).await;
    let drain = setup.cluster.cli(&["drain"]).await;
    assert!(drain.status.success(), "{}", drain.output());
    let digests: Vec<String> =
        setup.ops.received().iter().map(|r| String::from_utf8_lossy(&r.body).into_owned()).collect();
    assert_eq!(digests.len(), 1, "one digest: {digests:#?}\n{}", drain.output());
    assert!(digests[0].contains("While muted (now): 3 events"), "{}", digests[0]);
    for task in tasks {
        assert_eq!(digests[0].matches(task).count(), 1, "{task} once in {}", digests[0]);
    }
    let documents: Vec<Value> = setup.pipeline.received().into_iter().map(|r| r.json).collect();
    assert_eq!(documents.len(), 3, "the webhook gets them one by one: {documents:#?}");
    for task in tasks {
        assert_eq!(documents.iter().filter(|d| d.to_string().contains(task)).count(), 1, "{task}");
    }
    assert!(!digests[0].contains("task-q-ok"), "a dropped action never goes out");

    // Nothing goes out twice.
    setup.cluster.cli(&["drain"]).await;
    assert_eq!((setup.ops.received().len(), setup.pipeline.received().len()), (1, 3));
}

#[test]
fn check_config_names_each_bad_interval_value_and_what_muting_needs() {
    let dir = tempfile::tempdir().unwrap();
    let check = |toml: &str| {
        let file = dir.path().join("c.toml");
        std::fs::write(&file, toml).unwrap();
        run_cli(dir.path(), &["check-config", file.to_str().unwrap()], &[])
    };
    let config = |interval: &str, route: &str| {
        format!(
            "[[time_intervals]]\nname = \"night\"\n[[time_intervals.intervals]]\n{interval}\n\n\
             [[channels]]\nname = \"log\"\ntype = \"log\"\n[[routes]]\nname = \"r\"\nchannels = [\"log\"]\n{route}\n"
        )
    };
    let refused = [
        (
            "weekdays = [\"blurgsday\"]",
            "time_intervals[0] \"night\".intervals[0].weekdays[0]: \"blurgsday\" is not a weekday",
        ),
        ("months = [\"december:january\"]", "end month january is before start month december"),
        ("months = [13]", "13"),
        ("times = [{ start_time = \"08:00\", end_time = \"07:00\" }]", "08:00"),
        ("days_of_month = [\"0\"]", "days_of_month[0]"),
        ("utc_offset = \"+08:00\"\nlocation = \"Asia/Shanghai\"", "location"),
    ];
    for (interval, expected) in refused {
        let run = check(&config(interval, "mute_time_intervals = [\"night\"]\non_mute = \"drop\""));
        assert_eq!(run.code(), Some(1), "{interval}: {}", run.output());
        assert!(run.stderr.contains(expected), "{interval}: expected {expected:?} in\n{}", run.stderr);
    }
    let undefined =
        check(&config("weekdays = [\"monday\"]", "mute_time_intervals = [\"nigth\"]\non_mute = \"drop\""));
    assert_eq!(undefined.code(), Some(1));
    assert!(undefined.stderr.contains("nigth") && undefined.stderr.contains("night"), "{}", undefined.stderr);

    // Always muted and held: an action would wait forever.
    let always = check(&config("weekdays = [\"sunday:saturday\"]", "mute_time_intervals = [\"night\"]"));
    assert_eq!(always.code(), Some(1), "{}", always.output());
    assert!(always.stderr.contains("more than 7 days"), "{}", always.stderr);

    // Held without an outbox: a warning, exit 0.
    let memory = check(&config("weekdays = [\"saturday\", \"sunday\"]", "mute_time_intervals = [\"night\"]"));
    assert_eq!(memory.code(), Some(0), "{}", memory.output());
    assert!(memory.output().contains("muted actions are dropped, not held"), "{}", memory.output());
}

#[test]
fn plan_at_evaluates_business_hours_in_their_own_offset() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "[[time_intervals]]\nname = \"business\"\n[[time_intervals.intervals]]\n\
         weekdays = [\"monday:friday\"]\ntimes = [{ start_time = \"09:00\", end_time = \"18:00\" }]\nutc_offset = \"+08:00\"\n\n\
         [[channels]]\nname = \"log\"\ntype = \"log\"\n\
         [[routes]]\nname = \"r\"\nchannels = [\"log\"]\nactive_time_intervals = [\"business\"]\non_mute = \"drop\"\n",
    )
    .unwrap();
    // Input on stdin: the `failed` sample.
    let plan_of = |at: &str| {
        let run = support::run_cli_with_input(
            dir.path(),
            &["plan", "--config", file.to_str().unwrap(), "--at", at],
            &[],
            vodhook::samples::FAILED.as_bytes(),
        );
        assert!(run.status.success(), "{}", run.output());
        run.ndjson().remove(0)
    };
    // Friday 2026-12-04 10:00 in Shanghai: inside business hours.
    assert!(plan_of("2026-12-04T02:00:00Z").get("muted_by").is_none());
    // Friday 19:00 in Shanghai (11:00 UTC): outside, dropped (on_mute = drop): no held_until.
    let evening = plan_of("2026-12-04T19:00:00+08:00");
    assert_eq!(evening["muted_by"], json!(["not business"]));
    assert_eq!(evening["on_mute"], "drop");
    assert!(evening.get("held_until").is_none());
    let bad = run_cli(dir.path(), &["plan", "--config", file.to_str().unwrap(), "--at", "tomorrow"], &[]);
    assert_eq!(bad.code(), Some(1));
    assert!(bad.stderr.contains("--at \"tomorrow\""), "{}", bad.stderr);
}
