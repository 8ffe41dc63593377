//! Resolved notices (`send_resolved`): two `vodhook serve` instances sharing one Redis, a
//! DingTalk stand-in `ops` and a Standard Webhooks stand-in `pipeline`. A failure delivered to a
//! channel is resolved there by a later success of the same video and workflow: one notice per
//! channel, once, whatever instance or how often the success arrives.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::redis::RedisServer;
use support::standins::{Behaviour, StandIn};
use support::{Cluster, post};
use vodhook::channel::ChannelType;

struct Setup {
    // Declared first: dropped (stopped) before the Redis they use.
    cluster: Cluster,
    ops: StandIn,
    pipeline: StandIn,
    _redis: RedisServer,
}

/// `failures` (send_resolved) to both channels; successes to `pipeline` only.
async fn start(send_resolved: bool) -> Setup {
    let redis = tokio::task::block_in_place(RedisServer::start);
    let ops = StandIn::start(ChannelType::Dingtalk).await;
    let pipeline = StandIn::start(ChannelType::Webhook).await;
    let config = format!(
        "[store]\nbackend = \"redis\"\nurl = \"{}\"\nkey_prefix = \"r{}:\"\n[outbox]\nschedule_secs = [0, 0, 60]\n\n{}\n\n{}\n\n\
         [[routes]]\nname = \"failures\"\nmatch = {{ status = \"Failed\" }}\nchannels = [\"ops\", \"pipeline\"]\nsend_resolved = {send_resolved}\n\n\
         [[routes]]\nname = \"successes\"\nmatch = {{ status = \"Succeed\" }}\nchannels = [\"pipeline\"]\n",
        redis.url(),
        std::process::id(),
        ops.channel_toml("ops"),
        pipeline.channel_toml("pipeline"),
    );
    let cluster = Cluster::start(2, &config).await;
    Setup { cluster, ops, pipeline, _redis: redis }
}

/// A `WorkflowTaskComplete` of `video` on workflow `wf-resolve`, at minute `minute`.
fn workflow(sample: &str, video: &str, task: &str, minute: u32) -> String {
    let mut event: Value = serde_json::from_str(sample).unwrap();
    event["VideoId"] = json!(video);
    event["WorkflowId"] = json!("wf-resolve");
    event["TaskId"] = json!(task);
    event["EventTime"] = json!(format!("2025-04-01T03:{minute:02}:00Z"));
    event.to_string()
}

fn failure(video: &str, task: &str, minute: u32) -> String {
    workflow(vodhook::samples::FAILED, video, task, minute)
}

fn success(video: &str, task: &str, minute: u32) -> String {
    workflow(vodhook::samples::SUCCEED, video, task, minute)
}

async fn send(setup: &Setup, node: usize, body: String) -> Value {
    let answer = post(&setup.cluster.node(node).url("/"), body, &[]).await;
    assert_eq!(answer.status, 200, "{}\n{}", answer.json, setup.cluster.logs());
    answer.json
}

/// The messages `standin` received that name `task`.
fn naming(standin: &StandIn, task: &str) -> Vec<Value> {
    standin
        .received()
        .into_iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains(task))
        .map(|r| r.json)
        .collect()
}

fn is_resolved_notice(message: &Value) -> bool {
    message["kind"] == "resolved"
        || message["markdown"]["title"].as_str().is_some_and(|t| t.starts_with("✅ Resolved"))
}

async fn settle() {
    // Every send of these tests happens within the callback; a little more for the stand-ins.
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_success_resolves_a_delivered_failure_once_on_each_channel_it_reached() {
    let setup = start(true).await;
    send(&setup, 0, failure("vid-one", "task-A", 0)).await;
    assert_eq!(naming(&setup.ops, "task-A").len(), 1);
    assert_eq!(naming(&setup.pipeline, "task-A").len(), 1);

    // The success on the other instance: one resolved notice on each channel, and on
    // `pipeline`, where the success is routed too, that notice is its only message.
    let answer = send(&setup, 1, success("vid-one", "task-B", 7)).await;
    assert_eq!(answer["delivered"], 2, "{answer}");
    settle().await;
    let on_ops = naming(&setup.ops, "task-B");
    assert_eq!(on_ops.len(), 1, "{on_ops:?}");
    let text = on_ops[0]["markdown"]["text"].as_str().unwrap();
    assert!(on_ops[0]["markdown"]["title"].as_str().unwrap().starts_with("✅ Resolved: "), "{}", on_ops[0]);
    assert!(text.contains("- Resolves: task-A") && text.contains("- Resolved after: 7m"), "{text}");
    let on_pipeline = naming(&setup.pipeline, "task-B");
    assert_eq!(on_pipeline.len(), 1, "{on_pipeline:?}");
    assert_eq!(
        (&on_pipeline[0]["kind"], &on_pipeline[0]["resolves"]),
        (&json!("resolved"), &json!(["task-A"]))
    );
    assert_eq!(naming(&setup.pipeline, "task-A")[0]["kind"], "event");

    // The same success again, on both instances at once: nothing more.
    let (a, b) = tokio::join!(
        send(&setup, 0, success("vid-one", "task-B", 7)),
        send(&setup, 1, success("vid-one", "task-B", 7))
    );
    assert_eq!((a["delivered"].as_u64(), b["delivered"].as_u64()), (Some(0), Some(0)), "{a} {b}");
    // And a later success of the same workflow is an ordinary event: the failure is closed.
    send(&setup, 0, success("vid-one", "task-C", 9)).await;
    settle().await;
    assert_eq!(
        setup.ops.received().len(),
        2,
        "ops got: {:?}",
        setup.ops.received().iter().map(|r| &r.json).collect::<Vec<_>>()
    );
    let later = naming(&setup.pipeline, "task-C");
    assert_eq!((later.len(), &later[0]["kind"]), (1, &json!("event")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_failures_are_resolved_in_one_notice_and_only_what_failed_is_resolved() {
    let setup = start(true).await;
    send(&setup, 0, failure("vid-two", "task-F1", 0)).await;
    send(&setup, 1, failure("vid-two", "task-F2", 3)).await;
    send(&setup, 0, success("vid-two", "task-S", 10)).await;
    settle().await;
    let notices: Vec<Value> =
        setup.ops.received().into_iter().map(|r| r.json).filter(is_resolved_notice).collect();
    assert_eq!(notices.len(), 1, "{notices:?}");
    let text = notices[0]["markdown"]["text"].as_str().unwrap();
    assert!(
        text.contains("- Resolves: task-F1, task-F2") && text.contains("- Resolved after: 10m"),
        "{text}"
    );
    let documents = naming(&setup.pipeline, "task-S");
    assert_eq!(documents.len(), 1);
    assert_eq!(documents[0]["resolves"], json!(["task-F1", "task-F2"]));

    // A success of a video that never failed: no notice, the ordinary message where routed.
    send(&setup, 1, success("vid-never", "task-N", 1)).await;
    settle().await;
    assert!(naming(&setup.ops, "task-N").is_empty());
    let ordinary = naming(&setup.pipeline, "task-N");
    assert_eq!((ordinary.len(), &ordinary[0]["kind"]), (1, &json!("event")));
}

/// A failure notice still in the outbox when its success arrives opens nothing there: no
/// resolved notice follows; it goes out later marked "resolved since" the success.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failure_still_queued_when_its_success_arrives_goes_out_marked_resolved_since() {
    let setup = start(true).await;
    setup.ops.set_behaviour(Behaviour::ServerError);
    let answer = send(&setup, 0, failure("vid-down", "task-D", 0)).await;
    assert_eq!(answer["queued"], 1, "the notice to ops waits in the outbox: {answer}");
    setup.ops.set_behaviour(Behaviour::Accept);
    send(&setup, 1, success("vid-down", "task-U", 5)).await;
    settle().await;
    assert!(setup.ops.received().is_empty(), "ops got: {:?}", setup.ops.received());
    let on_pipeline = naming(&setup.pipeline, "task-U");
    assert_eq!((on_pipeline.len(), &on_pipeline[0]["kind"]), (1, &json!("resolved")));

    let drain = setup.cluster.cli(&["drain"]).await;
    assert!(drain.status.success(), "{}", drain.output());
    let on_ops: Vec<Value> = setup.ops.received().into_iter().map(|r| r.json).collect();
    assert_eq!(on_ops.len(), 1, "{on_ops:?}");
    let text = on_ops[0]["markdown"]["text"].as_str().unwrap();
    // (A chat channel drains its queue as digests: the note names the failure it is for.)
    assert!(text.starts_with("✅ Resolved since: task-U (task-D)\n\n#### ❌ VOD workflow failed"), "{text}");
    assert!(text.contains("task-D"), "{text}");

    // Delivered resolved, it opened nothing: a later success sends ops nothing.
    send(&setup, 0, success("vid-down", "task-V", 9)).await;
    let again = setup.cluster.cli(&["drain"]).await;
    assert!(again.status.success(), "{}", again.output());
    settle().await;
    assert_eq!(
        setup.ops.received().len(),
        1,
        "{:?}",
        setup.ops.received().iter().map(|r| &r.json).collect::<Vec<_>>()
    );
}

/// A success before a failure (an earlier run) resolves nothing of it, even when the failure's
/// notice waited in the outbox: it goes out as it is and opens, and the next success resolves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_earlier_success_does_not_resolve_a_later_failure() {
    let setup = start(true).await;
    send(&setup, 0, success("vid-early", "task-E0", 0)).await;
    setup.ops.set_behaviour(Behaviour::ServerError);
    let answer = send(&setup, 1, failure("vid-early", "task-E1", 10)).await;
    assert_eq!(answer["queued"], 1, "{answer}");
    setup.ops.set_behaviour(Behaviour::Accept);
    let drain = setup.cluster.cli(&["drain"]).await;
    assert!(drain.status.success(), "{}", drain.output());
    let delivered = naming(&setup.ops, "task-E1");
    assert_eq!(delivered.len(), 1);
    assert!(
        !delivered[0]["markdown"]["text"].as_str().unwrap().contains("Resolved since"),
        "{}",
        delivered[0]
    );

    send(&setup, 0, success("vid-early", "task-E2", 20)).await;
    settle().await;
    let notices = naming(&setup.ops, "task-E2");
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0]["markdown"]["text"].as_str().unwrap().contains("- Resolves: task-E1"),
        "{}",
        notices[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_send_resolved_a_success_is_an_ordinary_event() {
    let setup = start(false).await;
    send(&setup, 0, failure("vid-off", "task-O1", 0)).await;
    send(&setup, 1, success("vid-off", "task-O2", 5)).await;
    settle().await;
    assert!(naming(&setup.ops, "task-O2").is_empty());
    let documents = naming(&setup.pipeline, "task-O2");
    assert_eq!((documents.len(), &documents[0]["kind"]), (1, &json!("event")));
    assert!(documents[0].get("resolves").is_none());
}

#[test]
fn resolve_within_is_a_duration_that_check_config_checks() {
    let route = |extra: &str| {
        format!(
            "[[channels]]\nname = \"log\"\ntype = \"log\"\n[[routes]]\nname = \"f\"\nchannels = [\"log\"]\n{extra}\n"
        )
    };
    let problems = |extra: &str| match vodhook::setup::Setup::from_toml_str(&route(extra), &|_| None) {
        Ok(setup) => setup.report().to_string(),
        Err(err) => err.to_string(),
    };
    let zero = problems("send_resolved = true\nresolve_within = \"0s\"");
    assert!(zero.contains(r#"routes[0] "f".resolve_within: must be more than 0"#), "{zero}");
    let bad = problems("send_resolved = true\nresolve_within = \"3 days\"");
    assert!(bad.contains("resolve_within") && bad.contains("is not a duration"), "{bad}");
    let unused = problems("resolve_within = \"24h\"");
    assert!(
        unused.contains(r#"routes[0] "f".resolve_within: ignored: the route has no `send_resolved = true`"#),
        "{unused}"
    );
    assert!(!problems("send_resolved = true\nresolve_within = \"24h\"").contains("resolve_within"));
}

/// A burst of re-runs succeeding on a robot whose budget is spent: the resolved notices wait
/// and go out as digests like any message — fewer messages than notices, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resolved_notices_obey_budgets_and_digests() {
    let redis = tokio::task::block_in_place(RedisServer::start);
    let ops = StandIn::start(ChannelType::Dingtalk).await;
    let config = format!(
        "[store]\nbackend = \"redis\"\nurl = \"{}\"\nkey_prefix = \"rb{}:\"\n\n{}\nrate_per_minute = 1\nrate_window_secs = 2\n\n\
         [[routes]]\nname = \"failures\"\nmatch = {{ status = \"Failed\" }}\nchannels = [\"ops\"]\nsend_resolved = true\n",
        redis.url(),
        std::process::id(),
        ops.channel_toml("ops"),
    );
    let cluster = Cluster::start(1, &config).await;
    let videos: Vec<String> = (0..6).map(|i| format!("vid-burst-{i}")).collect();
    let post_to = |body: String| {
        let url = cluster.node(0).url("/");
        async move { post(&url, body, &[]).await }
    };
    for v in &videos {
        assert_eq!(post_to(failure(v, &format!("{v}-fail"), 0)).await.status, 200);
    }
    // Every failure delivered (one alone, the rest in digests), so every one is open.
    let all_failures = || videos.iter().all(|v| !naming(&ops, &format!("{v}-fail")).is_empty());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !all_failures() {
        assert!(std::time::Instant::now() < deadline, "failures not delivered: {:?}", ops.received());
        tokio::time::sleep(Duration::from_millis(500)).await;
        drain_once(&cluster).await;
    }
    let before = ops.received().len();
    for v in &videos {
        assert_eq!(post_to(success(v, &format!("{v}-ok"), 5)).await.status, 200);
    }
    let all_resolved = || videos.iter().all(|v| !naming(&ops, &format!("{v}-ok")).is_empty());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !all_resolved() {
        assert!(std::time::Instant::now() < deadline, "notices not delivered: {:?}", ops.received());
        tokio::time::sleep(Duration::from_millis(500)).await;
        drain_once(&cluster).await;
    }
    let notices = ops.received().len() - before;
    assert!(notices < videos.len(), "{notices} messages for {} notices: no digest", videos.len());
    for v in &videos {
        assert_eq!(naming(&ops, &format!("{v}-ok")).len(), 1, "{v}");
    }
    assert_eq!(ops.rejected(), Vec::<String>::new());
}

async fn drain_once(cluster: &Cluster) {
    let run = cluster.cli(&["drain"]).await;
    assert!(run.status.success(), "{}", run.output());
}
