//! The daily report, end to end: two `vodhook serve` instances sharing a real Redis count 50
//! callbacks (and their redeliveries, once), `vodhook report --json` says exactly what came,
//! and once `at` has passed, drains on both instances send exactly one report to each channel
//! (a DingTalk stand-in and a webhook stand-in); a second drain sends nothing.

mod support;

use std::time::Duration;

use chrono::{Timelike, Utc};
use serde_json::{Value, json};
use support::redis::RedisServer;
use support::standins::StandIn;
use support::{Cluster, post};
use vodhook::channel::ChannelType;

/// The `failed` sample of task `task`, in workflow `workflow`, failing with `code` on `video`.
fn failure(task: &str, workflow: &str, code: &str, video: &str) -> String {
    let text = vodhook::samples::FAILED
        .replace("wf-6f2a0c1d9e8b4d3a", workflow)
        .replace("InvalidMedia.AudioStreamMissing", code)
        .replace("a1b2c3d4e5f60718293a4b5c6d7e8f90", video);
    let mut event: Value = serde_json::from_str(&text).unwrap();
    event["TaskId"] = json!(task);
    event.to_string()
}

fn success(task: &str) -> String {
    let mut event: Value = serde_json::from_str(vodhook::samples::SUCCEED).unwrap();
    event["TaskId"] = json!(task);
    event.to_string()
}

fn upload(i: usize) -> String {
    let mut event: Value =
        serde_json::from_str(&support::fixture("generic-file-upload-complete.json")).unwrap();
    event["VideoId"] = json!(format!("upload{i:04}"));
    event.to_string()
}

/// The 50 callbacks: 26 workflow successes, 12 failures (wf-a InvalidA ×5, wf-b InvalidA ×4,
/// wf-c InvalidB ×3), 12 uploads.
fn callbacks() -> Vec<String> {
    let mut bodies: Vec<String> = (0..26).map(|i| success(&format!("ok-{i}"))).collect();
    let failures = [("wf-a", "InvalidA", 5), ("wf-b", "InvalidA", 4), ("wf-c", "InvalidB", 3)];
    for (workflow, code, n) in failures {
        for i in 0..n {
            bodies.push(failure(
                &format!("{workflow}-{i}"),
                workflow,
                code,
                &format!("{workflow}-video-{i}"),
            ));
        }
    }
    bodies.extend((0..12).map(upload));
    bodies
}

/// Waits until the current minute has at least 25 s left; the next minute's `HH:MM` (UTC) and
/// when it starts.
async fn next_minute() -> (String, i64) {
    let second = Utc::now().second();
    if second > 35 {
        tokio::time::sleep(Duration::from_secs(u64::from(61 - second))).await;
    }
    let now = Utc::now();
    let next = (now.hour() * 60 + now.minute() + 1) % 1_440;
    (format!("{:02}:{:02}", next / 60, next % 60), now.timestamp() - i64::from(now.second()) + 60)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_callbacks_one_report_per_channel_once() {
    let redis = tokio::task::block_in_place(RedisServer::start);
    let ops = StandIn::start(ChannelType::Dingtalk).await;
    let hook = StandIn::start(ChannelType::Webhook).await;
    let (at, boundary) = next_minute().await;
    // The report's own template (the built-in text is checked by the snapshots).
    let template = "custom: {{ workflows.succeeded }} succeeded · {{ workflows.failed }} failed; \
                    {% for f in failures %}{{ f.workflow_id }} {{ f.error_code }} × {{ f.count }}; {% endfor %}{{ sparkline }}";
    let config = format!(
        "[store]\nbackend = \"redis\"\nurl = \"{}\"\n\n[report]\nchannels = [\"ops\", \"hook\"]\nat = \"{at}\"\nperiod = \"1h\"\n\
         template = '{template}'\n\n{}\n\n{}\n\n[[routes]]\nname = \"failures\"\nmatch = {{ status = \"Failed\" }}\nchannels = [\"ops\"]\n",
        redis.url(),
        ops.channel_toml("ops"),
        hook.channel_toml("hook"),
    );
    let cluster = Cluster::start(2, &config).await;
    let bodies = callbacks();
    for (i, body) in bodies.iter().enumerate() {
        let answer = post(&cluster.node(i % 2).url("/"), body.clone(), &[]).await;
        assert_eq!(answer.status, 200, "{}", answer.json);
    }
    // VOD redelivers some, to the other instance: not counted again.
    for (i, body) in bodies.iter().enumerate().step_by(10) {
        post(&cluster.node((i + 1) % 2).url("/"), body.clone(), &[]).await;
    }
    assert_eq!(ops.received().len(), 12, "one message per failure");

    let report = cluster.cli(&["report", "--json"]).await;
    assert!(report.status.success(), "{}", report.output());
    let report: Value =
        serde_json::from_str(report.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {report:?}"));
    assert_eq!(report["scope"], "store");
    assert_eq!(
        report["events"],
        json!({ "WorkflowTaskComplete": 38, "FileUploadComplete": 12 }),
        "{report:#}"
    );
    assert_eq!(report["workflows"], json!({ "succeeded": 26, "failed": 12 }));
    let failures: Vec<(String, String, u64)> = report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["workflow_id"].as_str().unwrap().to_owned(),
                f["error_code"].as_str().unwrap().to_owned(),
                f["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [("wf-a", "InvalidA", 5), ("wf-b", "InvalidA", 4), ("wf-c", "InvalidB", 3)]
        .map(|(w, c, n)| (w.to_owned(), c.to_owned(), n));
    assert_eq!(failures, expected, "{report:#}");
    assert!(report["failures"][0]["example_video_id"].as_str().unwrap().starts_with("wf-a-video-"));
    assert_eq!(report["notices"]["sent"], 12, "{report:#}");
    assert_eq!(
        report["hourly_failures"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).sum::<u64>(),
        12
    );

    // Before `at`: a drain sends no report.
    assert!(cluster.cli(&["drain"]).await.status.success());
    assert_eq!(ops.received().len(), 12);
    assert!(hook.received().is_empty());

    // After `at`: drains on both instances, one report per channel.
    let wait = boundary - Utc::now().timestamp() + 1;
    tokio::time::sleep(Duration::from_secs(u64::try_from(wait).unwrap_or(0))).await;
    for _ in 0..2 {
        for node in 0..2 {
            let drained = cluster.cli(&["drain"]).await;
            assert!(drained.status.success(), "{} (instance {node})", drained.output());
        }
    }
    let received = ops.received();
    assert_eq!(received.len(), 13, "12 failures and one report:\n{received:#?}");
    let message = &received[12].json;
    let text = message.to_string();
    assert!(text.contains("vodhook report") && text.contains("custom: "), "{message:#}");
    assert!(text.contains("wf-a") && text.contains("InvalidA") && text.contains("× 5"), "{message:#}");
    assert!(text.contains("26 succeeded · 12 failed"), "{message:#}");
    let documents = hook.received();
    assert_eq!(documents.len(), 1, "{documents:#?}");
    let document = &documents[0].json;
    assert_eq!(document["type"], "vodhook.report");
    assert_eq!(document["report"]["workflows"]["failed"], 12, "{document:#}");
    assert_eq!(document["report"]["events"]["FileUploadComplete"], 12, "{document:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_the_report_command_says_what_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vodhook.toml");
    std::fs::write(
        &config,
        "[[routes]]\nname = \"all\"\nchannels = [\"log\"]\n\n[[channels]]\nname = \"log\"\ntype = \"log\"\n",
    )
    .unwrap();
    let run = support::run_cli(dir.path(), &["report", "--json", "--config", config.to_str().unwrap()], &[]);
    assert_eq!(run.code(), Some(1), "{}", run.output());
    assert!(run.stderr.contains("needs the redis store"), "{}", run.output());
}

#[test]
fn check_config_names_what_metrics_and_the_report_need() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vodhook.toml");
    let base = "[[channels]]\nname = \"log\"\ntype = \"log\"\n\n[[channels]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"https://example.com/h\"\n\n[[routes]]\nname = \"all\"\nchannels = [\"log\"]\n";
    let cases = [
        ("[metrics]\nlisten = \"localhost\"\n", "metrics.listen", "is not host:port"),
        ("[metrics]\nnamespace = \"AWS/Lambda\"\n", "metrics.namespace", "not starting with \"AWS/\""),
        ("[report]\nchannels = [\"hook\"]\nat = \"9:30\"\n", "report.at", "expected HH:MM"),
        ("[report]\nchannels = [\"hook\"]\nat = \"25:00\"\n", "report.at", "expected HH:MM"),
        (
            "[report]\nchannels = [\"hook\"]\nat = \"09:30\"\nperiod = \"90m\"\n",
            "report.period",
            "whole hours",
        ),
        ("[report]\nchannels = [\"hook\"]\nat = \"09:30\"\nperiod = \"8d\"\n", "report.period", "1h to 7d"),
        ("[report]\nchannels = [\"log\"]\nat = \"09:30\"\n", "report.channels[0]", "chat or webhook"),
        (
            "[report]\nchannels = [\"opz\"]\nat = \"09:30\"\n",
            "report.channels[0]",
            "not a configured channel",
        ),
        (
            "[report]\nchannels = [\"hook\"]\nat = \"09:30\"\ntemplate = \"{{ workflows.failed \"\n",
            "report.template",
            "syntax error",
        ),
    ];
    for (section, at, says) in cases {
        std::fs::write(&config, format!("{section}\n{base}")).unwrap();
        let run = support::run_cli(dir.path(), &["check-config", config.to_str().unwrap()], &[]);
        assert_eq!(run.code(), Some(1), "{section}: {}", run.output());
        assert!(run.output().contains(at) && run.output().contains(says), "{section}: {}", run.output());
    }
    std::fs::write(&config, format!("[report]\nchannels = [\"hook\"]\nat = \"09:30\"\n\n{base}")).unwrap();
    let run = support::run_cli(dir.path(), &["check-config", config.to_str().unwrap()], &[]);
    assert_eq!(run.code(), Some(0), "{}", run.output());
    assert!(
        run.output().contains("counts only its own requests"),
        "a warning without Redis: {}",
        run.output()
    );
}
