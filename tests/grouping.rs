//! Grouping (`group_by`, `group_wait`): a DingTalk stand-in and a webhook stand-in, two
//! `vodhook serve` instances sharing a real Redis (a group's members arrive on both). The events of one video within the wait go out as one
//! message per channel once the wait is over and a drain runs; two videos make two; a
//! duplicate of a member sends nothing.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::redis::RedisServer;
use support::standins::StandIn;
use support::{Cluster, fixture, post, run_cli};
use vodhook::channel::ChannelType;

struct Setup {
    cluster: Cluster,
    ops: StandIn,
    pipeline: StandIn,
    _redis: RedisServer,
}

async fn start() -> Setup {
    let redis = tokio::task::block_in_place(RedisServer::start);
    let ops = StandIn::start(ChannelType::Dingtalk).await;
    let pipeline = StandIn::start(ChannelType::Webhook).await;
    let config = format!(
        "[store]\nbackend = \"redis\"\nurl = \"{}\"\nkey_prefix = \"g{}:\"\n\n{}\n\n{}\n\n\
         [[routes]]\nname = \"per-video\"\nchannels = [\"ops\", \"pipeline\"]\ngroup_by = [\"video_id\"]\ngroup_wait = \"3s\"\n",
        redis.url(),
        std::process::id(),
        ops.channel_toml("ops"),
        pipeline.channel_toml("pipeline"),
    );
    let cluster = Cluster::start(2, &config).await;
    Setup { cluster, ops, pipeline, _redis: redis }
}

/// A transcode, a snapshot and a failed workflow of `video` (the workflow's TaskId `task`).
fn three_events(video: &str, task: &str) -> [String; 3] {
    let node = |name: &str| {
        let mut event: Value = serde_json::from_str(&fixture(name)).unwrap();
        event["VideoId"] = json!(video);
        event.to_string()
    };
    let mut workflow: Value = serde_json::from_str(vodhook::samples::FAILED).unwrap();
    workflow["VideoId"] = json!(video);
    workflow["TaskId"] = json!(task);
    [node("generic-transcode-complete.json"), node("generic-snapshot-complete.json"), workflow.to_string()]
}

async fn send(setup: &Setup, node: usize, body: &str) -> Value {
    let answer = post(&setup.cluster.node(node).url("/"), body.to_owned(), &[]).await;
    assert_eq!(answer.status, 200, "{}\n{}", answer.json, setup.cluster.logs());
    answer.json
}

async fn drain(setup: &Setup) -> Value {
    let run = setup.cluster.cli(&["drain"]).await;
    assert!(run.status.success(), "{}", run.output());
    run.stdout.lines().last().and_then(|l| serde_json::from_str(l).ok()).unwrap_or(Value::Null)
}

fn texts(standin: &StandIn) -> Vec<String> {
    standin.received().iter().map(|r| String::from_utf8_lossy(&r.body).into_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_message_per_video_after_the_wait() {
    let setup = start().await;
    let (v1, v2) = ("vid0group0one", "vid0group0two");
    let (one, two) = (three_events(v1, "task-g1"), three_events(v2, "task-g2"));
    for (i, (a, b)) in one.iter().zip(&two).enumerate() {
        let (answer_a, answer_b) = (send(&setup, i % 2, a).await, send(&setup, (i + 1) % 2, b).await);
        assert_eq!(
            (answer_a["held"].as_u64(), answer_b["held"].as_u64()),
            (Some(2), Some(2)),
            "{answer_a} {answer_b}"
        );
    }
    // Within the wait, a drain sends nothing.
    let early = drain(&setup).await;
    assert!(setup.ops.received().is_empty() && setup.pipeline.received().is_empty(), "{early}");

    tokio::time::sleep(Duration::from_millis(3500)).await;
    let report = drain(&setup).await;
    let ops = texts(&setup.ops);
    assert_eq!(ops.len(), 2, "{report}\n{ops:#?}");
    for (video, task) in [(v1, "task-g1"), (v2, "task-g2")] {
        let message: Vec<&String> = ops.iter().filter(|t| t.contains(task)).collect();
        assert_eq!(message.len(), 1, "{ops:#?}");
        // The three events, each a line of the digest.
        assert_eq!(message[0].matches(" · Task ID ").count(), 1, "{}", message[0]);
        assert!(
            message[0].contains("· TranscodeComplete") && message[0].contains("· SnapshotComplete"),
            "{}",
            message[0]
        );
        let other = if video == v1 { "task-g2" } else { "task-g1" };
        assert!(!message[0].contains(other), "{}", message[0]);
    }
    let documents: Vec<Value> = setup.pipeline.received().into_iter().map(|r| r.json).collect();
    assert_eq!(documents.len(), 2, "{documents:#?}");
    for document in &documents {
        assert_eq!(document["kind"], "group");
        let events = document["events"].as_array().unwrap();
        assert_eq!(events.len(), 3, "{document}");
        assert_eq!(events[0]["type"], "WorkflowTaskComplete", "the workflow's event first: {document}");
        let video = events[0]["details"]["video_id"].clone();
        assert!(events.iter().all(|e| e["details"]["video_id"] == video), "{document}");
        assert_eq!(
            document["key"],
            json!(format!("per-video|pipeline|video_id={}", video.as_str().unwrap()))
        );
    }

    // A duplicate of a member after its group was sent: nothing.
    let again = send(&setup, 1, &one[2]).await;
    assert_eq!(again["duplicate"], 2, "{again}");
    drain(&setup).await;
    assert_eq!((setup.ops.received().len(), setup.pipeline.received().len()), (2, 2));

    // A new event of the video after its group went out starts a new group.
    let mut later: Value = serde_json::from_str(&one[2]).unwrap();
    later["TaskId"] = json!("task-g3");
    assert_eq!(send(&setup, 0, &later.to_string()).await["held"], 2);
}

#[test]
fn check_config_and_plan_say_what_grouping_needs_and_does() {
    let dir = tempfile::tempdir().unwrap();
    let route = |extra: &str| {
        format!(
            "[[channels]]\nname = \"log\"\ntype = \"log\"\n[[routes]]\nname = \"g\"\nchannels = [\"log\"]\n{extra}\n"
        )
    };
    let check = |toml: String| {
        let file = dir.path().join("c.toml");
        std::fs::write(&file, toml).unwrap();
        run_cli(dir.path(), &["check-config", file.to_str().unwrap()], &[])
    };
    let memory = check(route("group_by = [\"video_id\"]"));
    assert_eq!(memory.code(), Some(1));
    assert!(
        memory.stderr.contains(r#"routes[0] "g".group_by: needs the outbox: set [store] backend = "redis""#),
        "{}",
        memory.output()
    );
    let node_field = check(route("group_by = [\"activity_id\"]"));
    assert!(
        node_field.stderr.contains(r#"routes[0] "g".group_by[0]: `activity_id` can hold several values"#),
        "{}",
        node_field.output()
    );
    let zero = check(route("group_by = [\"video_id\"]\ngroup_wait = \"0s\""));
    assert!(zero.stderr.contains(r#"routes[0] "g".group_wait: must be more than 0"#), "{}", zero.output());

    let redis = "[store]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:1\"\n";
    let file = dir.path().join("plan.toml");
    std::fs::write(
        &file,
        format!("{redis}{}", route("group_by = [\"video_id\", \"status\"]\ngroup_wait = \"45s\"")),
    )
    .unwrap();
    let sample = dir.path().join("failed.json");
    std::fs::write(&sample, vodhook::samples::FAILED).unwrap();
    let plan =
        run_cli(dir.path(), &["plan", "--config", file.to_str().unwrap(), sample.to_str().unwrap()], &[]);
    assert_eq!(plan.code(), Some(0), "{}", plan.output());
    let action = &plan.ndjson()[0];
    assert_eq!(
        action["group"],
        json!({"key": "g|log|video_id=a1b2c3d4e5f60718293a4b5c6d7e8f90,status=Failed", "wait": "45s"})
    );
}
