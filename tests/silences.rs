//! Silences (`vodhook silence add|list|expire`): two `vodhook serve` instances sharing a real
//! Redis and a DingTalk stand-in. A silence made from the command line keeps matching actions
//! from being sent on both instances (answer `"silenced"`), lets the others through, shows in
//! `list` and `plan`, and once expired lets everything through again.

mod support;

use serde_json::{Value, json};
use support::redis::RedisServer;
use support::standins::StandIn;
use support::{Cluster, post, run_cli};
use vodhook::channel::ChannelType;

struct Setup {
    cluster: Cluster,
    ops: StandIn,
    _redis: RedisServer,
}

async fn start() -> Setup {
    let redis = tokio::task::block_in_place(RedisServer::start);
    let ops = StandIn::start(ChannelType::Dingtalk).await;
    let config = format!(
        "[store]\nbackend = \"redis\"\nurl = \"{}\"\nkey_prefix = \"s{}:\"\n\n{}\n\n\
         [[routes]]\nname = \"all\"\nchannels = [\"ops\"]\n",
        redis.url(),
        std::process::id(),
        ops.channel_toml("ops"),
    );
    let cluster = Cluster::start(2, &config).await;
    Setup { cluster, ops, _redis: redis }
}

/// The `failed` sample (its node failed with `InvalidMedia.AudioStreamMissing`) as task `task`
/// of workflow `workflow`.
fn failed(task: &str, workflow: &str) -> String {
    let mut event: Value = serde_json::from_str(vodhook::samples::FAILED).unwrap();
    event["TaskId"] = json!(task);
    event["WorkflowId"] = json!(workflow);
    event.to_string()
}

async fn send(setup: &Setup, node: usize, body: String) -> Value {
    let answer = post(&setup.cluster.node(node).url("/"), body, &[]).await;
    assert_eq!(answer.status, 200, "{}\n{}", answer.json, setup.cluster.logs());
    answer.json
}

fn sent_tasks(setup: &Setup) -> Vec<String> {
    let bodies = setup.ops.received();
    let texts: Vec<String> = bodies.iter().map(|r| String::from_utf8_lossy(&r.body).into_owned()).collect();
    ["t1", "t2", "t3", "t4", "t5", "t6"]
        .iter()
        .filter(|t| texts.iter().any(|text| text.contains(&format!("task-{t}"))))
        .map(|t| t.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silence_hushes_what_it_matches_on_every_instance_until_it_expires() {
    let setup = start().await;
    let add = setup
        .cluster
        .cli(&[
            "silence",
            "add",
            "--matcher",
            "workflow_id=\"wf-broken\"",
            "--matcher",
            "error_code=~\"InvalidMedia.*\"",
            "--for",
            "2h",
            "--comment",
            "fixing the template",
            "--author",
            "ana",
        ])
        .await;
    assert!(add.status.success(), "{}", add.output());
    let id = add.stdout.trim().to_owned();
    assert_eq!(id.len(), 32, "an id: {}", add.output());

    // Matching, on either instance: silenced, nothing sent. Another workflow: sent.
    for (node, task) in [(0, "task-t1"), (1, "task-t2")] {
        let answer = send(&setup, node, failed(task, "wf-broken")).await;
        assert_eq!(
            (answer["silenced"].as_u64(), answer["delivered"].as_u64()),
            (Some(1), Some(0)),
            "{answer}"
        );
    }
    let other = send(&setup, 1, failed("task-t3", "wf-fine")).await;
    assert_eq!(other["delivered"], 1, "{other}");
    assert_eq!(sent_tasks(&setup), ["t3"]);
    let logs = setup.cluster.logs();
    assert!(logs.contains("silenced: not sent") && logs.contains(&id), "the log names the silence:\n{logs}");

    // `list` shows it (table and JSON), `plan` names it.
    let table = setup.cluster.cli(&["silence", "list"]).await;
    assert!(table.stdout.contains(&id) && table.stdout.contains("fixing the template"), "{}", table.output());
    let listed = setup.cluster.cli(&["silence", "list", "--json"]).await.ndjson();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (&listed[0]["state"], &listed[0]["author"], &listed[0]["matchers"][0]),
        (&json!("active"), &json!("ana"), &json!("workflow_id=\"wf-broken\""))
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.json");
    std::fs::write(&file, failed("task-plan", "wf-broken")).unwrap();
    let plan = setup.cluster.cli(&["plan", file.to_str().unwrap()]).await;
    assert_eq!(plan.ndjson()[0]["silenced_by"], json!(id), "{}", plan.output());

    // Expired: sent again; gone from `list`, still in `list --expired`.
    let expire = setup.cluster.cli(&["silence", "expire", &id]).await;
    assert!(expire.status.success(), "{}", expire.output());
    let again = send(&setup, 0, failed("task-t4", "wf-broken")).await;
    assert_eq!(again["delivered"], 1, "{again}");
    assert_eq!(sent_tasks(&setup), ["t3", "t4"]);
    assert!(setup.cluster.cli(&["silence", "list", "--json"]).await.stdout.trim().is_empty());
    let expired = setup.cluster.cli(&["silence", "list", "--json", "--expired"]).await.ndjson();
    assert_eq!((expired.len(), &expired[0]["state"]), (1, &json!("expired")));
    let unknown = setup.cluster.cli(&["silence", "expire", "nope"]).await;
    assert_eq!(unknown.code(), Some(1));
    assert!(unknown.stderr.contains("no silence with id \"nope\""), "{}", unknown.stderr);

    // What is refused, with the reason.
    let refused = [
        (vec!["--matcher", "workflow_id=~\"(\"", "--for", "2h"], "--matcher \"workflow_id=~\\\"(\\\"\""),
        (vec!["--matcher", "colour=\"red\"", "--for", "2h"], "colour"),
        (vec!["--matcher", "workflow_id=~\".*\"", "--for", "2h"], "silence everything"),
        (vec!["--matcher", "workflow_id=\"wf\"", "--for", "2 hours"], "--for \"2 hours\""),
        (vec!["--matcher", "workflow_id=\"wf\"", "--for", "0s"], "at least 1s"),
    ];
    for (args, reason) in refused {
        let mut command = vec!["silence", "add", "--comment", "c"];
        command.extend(args.iter().copied());
        let run = setup.cluster.cli(&command).await;
        assert_eq!(run.code(), Some(1), "{args:?}: {}", run.output());
        assert!(run.stderr.contains(reason), "{args:?}: expected {reason:?} in {}", run.stderr);
    }
    assert_eq!(setup.cluster.cli(&["silence", "list", "--json", "--expired"]).await.ndjson().len(), 1);
}

#[test]
fn silences_need_the_redis_backend() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["silence", "list"],
        vec!["silence", "add", "--matcher", "workflow_id=\"wf\"", "--for", "1h", "--comment", "c"],
        vec!["silence", "expire", "abc"],
    ] {
        let run = run_cli(dir.path(), &args, &[]);
        assert_eq!(run.code(), Some(1), "{args:?}: {}", run.output());
        assert!(run.stderr.contains("silences need the redis backend"), "{args:?}: {}", run.stderr);
    }
}
