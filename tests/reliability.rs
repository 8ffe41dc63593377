//! Exactly once in effect, nothing lost — end to end, with real parts only: real `vodhook serve`
//! processes (the binary under test), a real `redis-server` on a free loopback port, and real
//! HTTP stand-ins for the channels that check signatures and can be told to fail. Messages are
//! counted where a user would see them: at the stand-ins.
//!
//! Every wait below is a deadline that turns a hang into a failure, never a timing assertion.

mod support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::Cluster;
use support::redis::RedisServer;
use support::standins::{Behaviour, StandIn};
use vodhook::channel::ChannelType;

/// Longer than any callback can take (deadline 4 s at most here): a hang fails instead.
const REQUEST_WAIT: Duration = Duration::from_secs(30);

/// A VOD `WorkflowTaskComplete` callback (the built-in successful sample) for task `task_id`.
fn callback(task_id: &str) -> String {
    let mut event: Value = serde_json::from_str(vodhook::samples::SUCCEED).expect("the sample is JSON");
    event["TaskId"] = json!(task_id);
    event.to_string()
}

/// A task id unique to this test run, so nothing is mistaken for another test's message.
fn task(name: &str) -> String {
    static RUN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let run = RUN.get_or_init(|| {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        format!("{:x}-{nanos:x}", std::process::id())
    });
    format!("rel-{name}-{run}")
}

/// A configuration: `channels` (TOML blocks), one route sending every event to `route_to`, and
/// `extra` TOML sections (`[dedup]`, `[delivery]`, `[outbox]`).
fn config(channels: &[String], route_to: &[&str], extra: &str) -> String {
    let names: Vec<String> = route_to.iter().map(|n| format!("{n:?}")).collect();
    format!(
        "{extra}\n\n{}\n\n[[routes]]\nname = \"all\"\nchannels = [{}]\n",
        channels.join("\n\n"),
        names.join(", ")
    )
}

fn redis_dedup(redis: &RedisServer) -> String {
    format!("[dedup]\nbackend = \"redis\"\nurl = \"{}\"\n", redis.url())
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(REQUEST_WAIT).build().expect("HTTP client")
}

/// POSTs `body` to `url`; the status and the JSON answer.
async fn post(client: &reqwest::Client, url: &str, body: String) -> (StatusCode, Value) {
    post_with(client, url, body, &[]).await
}

/// [`post`] with extra headers.
async fn post_with(
    client: &reqwest::Client,
    url: &str,
    body: String,
    headers: &[(&str, String)],
) -> (StatusCode, Value) {
    let mut request = client.post(url).header("content-type", "application/json").body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = response.status();
    let text = response.text().await.unwrap_or_else(|e| panic!("reading the answer from {url}: {e}"));
    let json =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("answer from {url} is not JSON ({e}): {text}"));
    (status, json)
}

/// The messages a stand-in accepted that are about `task_id`.
fn messages_about(standin: &StandIn, task_id: &str) -> usize {
    standin.received().iter().filter(|r| mentions(r, task_id)).count()
}

/// Whether a message is about `task_id`: the webhook's `details.task_id`, the DingTalk
/// markdown text.
fn mentions(request: &support::standins::Request, task_id: &str) -> bool {
    let webhook = request.json.pointer("/details/task_id").and_then(Value::as_str);
    let dingtalk = request.json.pointer("/markdown/text").and_then(Value::as_str);
    webhook.is_some_and(|id| id == task_id) || dingtalk.is_some_and(|text| text.contains(task_id))
}

fn count(body: &Value, field: &str) -> u64 {
    body.get(field).and_then(Value::as_u64).unwrap_or(0)
}

/// The outbox as `vodhook outbox list --json` prints it: one JSON object per line.
async fn outbox_list(cluster: &Cluster) -> Vec<Value> {
    let out = cluster.cli(&["outbox", "list", "--json"]).await;
    assert!(out.status.success(), "`vodhook outbox list` failed: {}\n{}", out.stdout, out.stderr);
    out.stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("outbox list line is not JSON ({e}): {l}"))
        })
        .collect()
}

/// Runs a blocking step (killing or starting Redis) without stalling the stand-ins that share
/// this runtime.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

// ---- 50 copies over two instances -------------------------------------------------------------

/// VOD (and MNS, and FC's retries) may deliver one callback many times, to any instance. Fifty
/// copies at once over two processes sharing Redis: each channel gets the message once, every
/// copy is answered 200, and the answers add up (one delivery and 49 duplicates per channel).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_copies_over_two_instances_send_one_message_per_channel() {
    let redis = blocking(RedisServer::start);
    let hook = StandIn::start(ChannelType::Webhook).await;
    let ding = StandIn::start(ChannelType::Dingtalk).await;
    let toml = config(
        &[hook.channel_toml("hook"), ding.channel_toml("ding")],
        &["hook", "ding"],
        &redis_dedup(&redis),
    );
    let cluster = Cluster::start(2, &toml).await;
    let client = client();
    let task_id = task("fifty");

    let copies = (0..50).map(|i| {
        let url = cluster.node(i % 2).url("/");
        let (client, body) = (client.clone(), callback(&task_id));
        tokio::spawn(async move { post(&client, &url, body).await })
    });
    let answers = futures_util::future::join_all(copies).await;

    let (mut delivered, mut duplicate) = (0, 0);
    for answer in answers {
        let (status, body) = answer.expect("request task");
        assert_eq!(status, StatusCode::OK, "{body}\n{}", cluster.logs());
        assert_eq!(count(&body, "actions"), 2, "{body}");
        delivered += count(&body, "delivered");
        duplicate += count(&body, "duplicate");
    }
    assert_eq!(messages_about(&hook, &task_id), 1, "webhook messages\n{}", cluster.logs());
    assert_eq!(messages_about(&ding, &task_id), 1, "DingTalk messages\n{}", cluster.logs());
    assert_eq!((delivered, duplicate), (2, 98), "answers: delivered, duplicate");
    assert!(hook.rejected().is_empty() && ding.rejected().is_empty(), "bad signatures");
}

// ---- retries within the deadline ----------------------------------------------------------------

/// A channel that fails twice then accepts is retried within the callback's deadline: one
/// message, one answer 200, and every attempt carried the same `webhook-id` (so a receiver that
/// did get a "failed" attempt can drop the retry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_failing_twice_then_succeeding_sends_one_message() {
    let hook = StandIn::start(ChannelType::Webhook).await;
    let ding = StandIn::start(ChannelType::Dingtalk).await;
    hook.fail_next(2, Behaviour::ServerError);
    ding.fail_next(2, Behaviour::ServerError);
    let extra = "[delivery]\ncallback_deadline_ms = 4000\nbackoff_initial_ms = 20\nbackoff_max_ms = 200\n";
    let toml = config(&[hook.channel_toml("hook"), ding.channel_toml("ding")], &["hook", "ding"], extra);
    let cluster = Cluster::start(1, &toml).await;
    let task_id = task("twice");

    let (status, body) = post(&client(), &cluster.node(0).url("/"), callback(&task_id)).await;

    assert_eq!(status, StatusCode::OK, "{body}\n{}", cluster.logs());
    assert_eq!(count(&body, "delivered"), 2, "{body}");
    assert_eq!(count(&body, "retried"), 4, "{body}");
    assert_eq!(messages_about(&hook, &task_id), 1, "webhook messages");
    assert_eq!(messages_about(&ding, &task_id), 1, "DingTalk messages");
    let attempts = hook.requests();
    assert_eq!(attempts.len(), 3, "two failures and a success");
    let ids: std::collections::HashSet<_> =
        attempts.iter().map(|r| r.headers.get("webhook-id").cloned()).collect();
    assert_eq!(ids.len(), 1, "one webhook-id across retries: {ids:?}");
    assert_eq!(ding.requests().len(), 3, "two failures and a success");
}

// ---- the outbox -----------------------------------------------------------------------------------

/// With Redis, a channel still down at the callback's deadline does not make VOD retry: the
/// callback is answered 200 `queued`, the action waits in the outbox (`vodhook outbox list`),
/// and once the channel is back a drain — `vodhook drain`, or FC's timer trigger posting to
/// `/invoke` — delivers it exactly once and empties the outbox. VOD's own retry of the same
/// callback afterwards is a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_down_past_the_deadline_waits_in_the_outbox_until_a_drain() {
    let redis = blocking(RedisServer::start);
    let hook = StandIn::start(ChannelType::Webhook).await;
    hook.set_behaviour(Behaviour::Hang);
    // `schedule_secs[0] = 0`: a queued item is due at once (due = queued time + schedule[0]).
    let extra = format!(
        "{}\n[delivery]\ncallback_deadline_ms = 1500\nattempt_timeout_ms = 1000\nbackoff_initial_ms = 50\n\n\
         [outbox]\nschedule_secs = [0, 60]\n",
        redis_dedup(&redis)
    );
    let cluster = Cluster::start(1, &config(&[hook.channel_toml("hook")], &["hook"], &extra)).await;
    let client = client();
    let url = cluster.node(0).url("/");

    // 1. Down past the deadline: queued, answered 200.
    let first = task("outbox-cli");
    let (status, body) = post(&client, &url, callback(&first)).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", cluster.logs());
    assert_eq!((count(&body, "queued"), count(&body, "delivered")), (1, 0), "{body}");
    assert_eq!(messages_about(&hook, &first), 0);
    let waiting = outbox_list(&cluster).await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0]["state"], "waiting");
    assert_eq!(waiting[0]["channel"], "hook");
    assert!(waiting[0]["key"].as_str().unwrap_or("").contains(&first), "{waiting:?}");
    assert!(!waiting[0]["last_error"].as_str().unwrap_or("").is_empty(), "says why: {waiting:?}");

    // 2. Channel back; `vodhook drain` delivers it once and empties the outbox.
    hook.set_behaviour(Behaviour::Accept);
    let drained = cluster.cli(&["drain"]).await;
    assert!(drained.status.success(), "{}\n{}", drained.stdout, drained.stderr);
    let report: Value = serde_json::from_str(drained.stdout.trim()).expect("drain prints its report");
    assert_eq!((count(&report, "taken"), count(&report, "delivered")), (1, 1), "{report}");
    assert_eq!(messages_about(&hook, &first), 1);
    assert!(outbox_list(&cluster).await.is_empty(), "nothing left in the outbox");

    // A second drain finds nothing; VOD's retry of the callback is a duplicate.
    let again = cluster.cli(&["drain"]).await;
    let report: Value = serde_json::from_str(again.stdout.trim()).expect("drain prints its report");
    assert_eq!(count(&report, "taken"), 0, "{report}");
    let (status, body) = post(&client, &url, callback(&first)).await;
    assert_eq!((status, count(&body, "duplicate")), (StatusCode::OK, 1), "{body}");
    assert_eq!(messages_about(&hook, &first), 1, "no second message");

    // 3. The same through FC's timer trigger: an event invocation on /invoke.
    hook.set_behaviour(Behaviour::Hang);
    let second = task("outbox-timer");
    let (status, body) = post(&client, &url, callback(&second)).await;
    assert_eq!((status, count(&body, "queued")), (StatusCode::OK, 1), "{body}");
    assert_eq!(outbox_list(&cluster).await.len(), 1);
    hook.set_behaviour(Behaviour::Accept);
    let timer = json!({
        "triggerTime": chrono::Utc::now().to_rfc3339(),
        "triggerName": "outbox-drain",
        "payload": "{\"vodhook\":\"drain\"}",
    });
    let invocation = support::fc_event_headers("timer-1");
    let (status, report) =
        post_with(&client, &cluster.node(0).url("/invoke"), timer.to_string(), &invocation).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!((count(&report, "taken"), count(&report, "delivered")), (1, 1), "{report}");
    assert_eq!(messages_about(&hook, &second), 1);
    assert!(outbox_list(&cluster).await.is_empty(), "nothing left in the outbox");
    assert_eq!(hook.received().len(), 2, "one message per callback, nothing else");
}

/// An outbox item whose channel is still down is tried once per drain, on the outbox's
/// schedule (each failed round counts once), and given up on — moved to the dead letters, with a
/// loud log — once the next try would come after `max_age_secs`. It is never sent meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_item_still_failing_is_rescheduled_then_dead_lettered() {
    let redis = blocking(RedisServer::start);
    let hook = StandIn::start(ChannelType::Webhook).await;
    hook.set_behaviour(Behaviour::ServerError);
    // Rounds: the callback (1), a drain due at once (2), another due at once (3); the 4th would
    // come an hour after the first, past the 10-minute max age: dead after the 3rd.
    let extra = format!(
        "{}\n[delivery]\ncallback_deadline_ms = 1500\nattempt_timeout_ms = 1000\nbackoff_initial_ms = 50\n\
         backoff_max_ms = 200\n\n[outbox]\nschedule_secs = [0, 0, 3600]\nmax_age_secs = 600\n",
        redis_dedup(&redis)
    );
    let cluster = Cluster::start(1, &config(&[hook.channel_toml("hook")], &["hook"], &extra)).await;
    let task_id = task("dead");

    let (status, body) = post(&client(), &cluster.node(0).url("/"), callback(&task_id)).await;
    assert_eq!((status, count(&body, "queued")), (StatusCode::OK, 1), "{body}\n{}", cluster.logs());
    let waiting = outbox_list(&cluster).await;
    assert_eq!((waiting.len(), count(&waiting[0], "attempts")), (1, 1), "{waiting:?}");
    let tried = hook.requests().len();

    let drained = cluster.cli(&["drain"]).await;
    let report: Value = serde_json::from_str(drained.stdout.trim()).expect("drain prints its report");
    assert_eq!(count(&report, "rescheduled"), 1, "{report}\n{}", drained.stderr);
    assert_eq!(hook.requests().len(), tried + 1, "one attempt per drain");
    let waiting = outbox_list(&cluster).await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(count(&waiting[0], "attempts"), 2, "one more failed round: {waiting:?}");
    assert!(waiting[0]["last_error"].as_str().unwrap_or("").contains("503"), "{waiting:?}");

    let drained = cluster.cli(&["drain"]).await;
    let report: Value = serde_json::from_str(drained.stdout.trim()).expect("drain prints its report");
    assert_eq!(count(&report, "dead_lettered"), 1, "{report}\n{}", drained.stderr);
    assert!(drained.stderr.contains("DEAD LETTER"), "a loud log: {}", drained.stderr);
    let listed = outbox_list(&cluster).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["state"], "dead", "{listed:?}");
    assert_eq!(listed[0].pointer("/item/item/attempts").and_then(Value::as_u64), Some(3), "{listed:?}");

    // Given up on: later drains leave it alone, and nothing was ever delivered.
    let drained = cluster.cli(&["drain"]).await;
    let report: Value = serde_json::from_str(drained.stdout.trim()).expect("drain prints its report");
    assert_eq!(count(&report, "taken"), 0, "{report}");
    assert_eq!(hook.requests().len(), tried + 2);
    assert_eq!(messages_about(&hook, &task_id), 0);
}

/// A drain paces itself by the channel's rate budget (here 1 message per 3 s, shared with the
/// callbacks that spent it; the drain has 2 s): what it cannot send in this run stays in the
/// outbox untried — it is not a failed round, and must not move the item along the schedule
/// towards the dead letters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_held_back_by_the_rate_limit_counts_no_failed_round() {
    let redis = blocking(RedisServer::start);
    let hook = StandIn::start(ChannelType::Webhook).await;
    hook.set_behaviour(Behaviour::ServerError);
    let channel = format!("{}rate_per_minute = 1\nrate_window_secs = 3\n", hook.channel_toml("hook"));
    let extra = format!(
        "{}\n[delivery]\ncallback_deadline_ms = 1500\ninvoke_deadline_ms = 2000\nattempt_timeout_ms = 1000\n\
         backoff_initial_ms = 50\nbackoff_max_ms = 200\n\n[outbox]\nschedule_secs = [0, 3600]\n",
        redis_dedup(&redis)
    );
    let cluster = Cluster::start(1, &config(&[channel], &["hook"], &extra)).await;
    let (client, url) = (client(), cluster.node(0).url("/"));
    let tasks = [task("paced-0"), task("paced-1")];
    for t in &tasks {
        let (status, body) = post(&client, &url, callback(t)).await;
        assert_eq!((status, count(&body, "queued")), (StatusCode::OK, 1), "{body}\n{}", cluster.logs());
    }
    let waiting = outbox_list(&cluster).await;
    assert_eq!(waiting.iter().map(|w| count(w, "attempts")).collect::<Vec<_>>(), [1, 1], "{waiting:?}");

    hook.set_behaviour(Behaviour::Accept);
    // The callbacks' attempts spent the budget; once their window has passed, one message fits.
    tokio::time::sleep(std::time::Duration::from_millis(3_600)).await;
    let drained = cluster.cli(&["drain"]).await;
    let report: Value = serde_json::from_str(drained.stdout.trim()).expect("drain prints its report");
    assert_eq!(
        (count(&report, "taken"), count(&report, "delivered")),
        (2, 1),
        "{report}\n{}",
        drained.stderr
    );
    assert_eq!(hook.received().len(), 1, "one message per window");
    let waiting = outbox_list(&cluster).await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(count(&waiting[0], "attempts"), 1, "held back, not failed: {waiting:?}");
    let left = waiting[0]["key"].as_str().unwrap_or("");
    let sent = tasks.iter().filter(|t| !left.contains(t.as_str())).collect::<Vec<_>>();
    assert_eq!(sent.len(), 1, "the waiting one is one of ours: {left}");
    assert_eq!(messages_about(&hook, sent[0]), 1);
}

/// Without Redis there is nowhere durable to keep an undelivered action: the callback answers
/// 503 so that VOD delivers it again, and that retry, once the channel is back, sends the one
/// message (a further retry is a duplicate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_a_channel_down_past_the_deadline_is_answered_503_and_the_retry_sends_once() {
    let hook = StandIn::start(ChannelType::Webhook).await;
    hook.set_behaviour(Behaviour::ServerError);
    let extra = "[delivery]\ncallback_deadline_ms = 1500\nattempt_timeout_ms = 1000\nbackoff_initial_ms = 50\nbackoff_max_ms = 200\n";
    let cluster = Cluster::start(1, &config(&[hook.channel_toml("hook")], &["hook"], extra)).await;
    let (client, url, task_id) = (client(), cluster.node(0).url("/"), task("memory"));

    let (status, body) = post(&client, &url, callback(&task_id)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}\n{}", cluster.logs());
    assert_eq!((count(&body, "left_for_retry"), count(&body, "queued")), (1, 0), "{body}");
    assert!(hook.requests().len() >= 2, "retried within the deadline");
    assert_eq!(messages_about(&hook, &task_id), 0);

    hook.set_behaviour(Behaviour::Accept);
    let (status, body) = post(&client, &url, callback(&task_id)).await;
    assert_eq!((status, count(&body, "delivered")), (StatusCode::OK, 1), "{body}");
    let (status, body) = post(&client, &url, callback(&task_id)).await;
    assert_eq!((status, count(&body, "duplicate")), (StatusCode::OK, 1), "{body}");
    assert_eq!(messages_about(&hook, &task_id), 1);
}

// ---- Redis going away ---------------------------------------------------------------------------

/// Redis killed mid-run — with a request in flight, then for new ones: callbacks are still
/// answered 200 and delivered (a duplicate is better than a loss), the answer says
/// `dedup_unavailable` and a warning is logged. Redis back: dedup resumes, a repeated callback is
/// a duplicate again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_run_keeps_delivering_and_dedup_resumes_after_restart() {
    let mut redis = blocking(RedisServer::start);
    let hook = StandIn::start(ChannelType::Webhook).await;
    let cluster =
        Cluster::start(2, &config(&[hook.channel_toml("hook")], &["hook"], &redis_dedup(&redis))).await;
    let client = client();
    let urls = [cluster.node(0).url("/"), cluster.node(1).url("/")];

    // Redis up: the second copy, on the other instance, is a duplicate.
    let before = task("before");
    let (status, body) = post(&client, &urls[0], callback(&before)).await;
    assert_eq!((status, count(&body, "delivered")), (StatusCode::OK, 1), "{body}");
    let (status, body) = post(&client, &urls[1], callback(&before)).await;
    assert_eq!((status, count(&body, "duplicate")), (StatusCode::OK, 1), "{body}");

    // Killed while a request is in flight (claimed, the channel still answering): delivered all
    // the same, and the answer says that the record of it may be missing.
    hook.set_behaviour(Behaviour::Delay(Duration::from_secs(1)));
    let in_flight_task = task("in-flight");
    let in_flight = {
        let (client, url, body) = (client.clone(), urls[0].clone(), callback(&in_flight_task));
        tokio::spawn(async move { post(&client, &url, body).await })
    };
    wait_for_claims(&redis, 1).await;
    blocking(|| redis.stop());
    let (status, body) = in_flight.await.expect("request task");
    assert_eq!((status, count(&body, "delivered")), (StatusCode::OK, 1), "{body}\n{}", cluster.logs());
    assert_eq!(body["dedup_unavailable"], true, "could not be marked done: {body}");
    assert_eq!(messages_about(&hook, &in_flight_task), 1);
    hook.set_behaviour(Behaviour::Accept);

    // Down: every callback is still delivered, without duplicate protection.
    for (i, url) in urls.iter().enumerate() {
        let during = task(&format!("during-{i}"));
        let (status, body) = post(&client, url, callback(&during)).await;
        assert_eq!(status, StatusCode::OK, "{body}\n{}", cluster.logs());
        assert_eq!(count(&body, "delivered"), 1, "{body}");
        assert_eq!(body["dedup_unavailable"], true, "the answer says so: {body}");
        assert_eq!(messages_about(&hook, &during), 1);
    }
    for (i, node) in cluster.nodes().iter().enumerate() {
        let log = node.output();
        assert!(
            log.contains("WARN") && log.contains("dedup store unreachable"),
            "vodhook #{i} logged no warning:\n{log}"
        );
    }

    blocking(|| redis.restart());
    let after = task("after");
    let (status, body) = post(&client, &urls[1], callback(&after)).await;
    assert_eq!((status, count(&body, "delivered")), (StatusCode::OK, 1), "{body}\n{}", cluster.logs());
    assert!(body.get("dedup_unavailable").is_none(), "Redis is back: {body}");
    let (status, body) = post(&client, &urls[0], callback(&after)).await;
    assert_eq!((status, count(&body, "duplicate")), (StatusCode::OK, 1), "{body}\n{}", cluster.logs());
    assert_eq!(messages_about(&hook, &after), 1, "no second message after Redis came back");
    assert_eq!(messages_about(&hook, &before), 1);
}

// ---- SIGTERM ----------------------------------------------------------------------------------

/// Function Compute sends SIGTERM on scale-in, possibly mid-request. Requests in flight (the
/// channel takes ~1 s to answer) finish: answered 200, each message delivered once and marked
/// done in Redis before the process exits 0 — another instance then finds every one a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_requests_in_flight_lets_them_finish_and_exits_zero() {
    const IN_FLIGHT: usize = 4;
    let redis = blocking(RedisServer::start);
    let hook = StandIn::start(ChannelType::Webhook).await;
    hook.set_behaviour(Behaviour::Delay(Duration::from_secs(1)));
    let mut cluster =
        Cluster::start(2, &config(&[hook.channel_toml("hook")], &["hook"], &redis_dedup(&redis))).await;
    let client = client();
    let tasks: Vec<String> = (0..IN_FLIGHT).map(|i| task(&format!("sigterm-{i}"))).collect();

    let requests: Vec<_> = tasks
        .iter()
        .map(|t| {
            let (client, url, body) = (client.clone(), cluster.node(0).url("/"), callback(t));
            tokio::spawn(async move { post(&client, &url, body).await })
        })
        .collect();
    // In flight: every action claimed in Redis (a lease token, not yet `done`), i.e. inside
    // vodhook's handler, sending or about to.
    wait_for_claims(&redis, IN_FLIGHT).await;
    cluster.node_mut(0).terminate();

    for request in requests {
        let (status, body) = request.await.expect("request task");
        assert_eq!(status, StatusCode::OK, "{body}\n{}", cluster.logs());
        assert_eq!(count(&body, "delivered"), 1, "{body}");
    }
    let exit = tokio::time::timeout(Duration::from_secs(20), cluster.node_mut(0).exited())
        .await
        .unwrap_or_else(|_| panic!("vodhook #0 did not exit within 20 s:\n{}", cluster.logs()));
    assert!(exit.success(), "exit status {exit:?}; log:\n{}", cluster.node(0).output());
    assert!(cluster.node(0).output().contains("shutting down"), "{}", cluster.node(0).output());
    for t in &tasks {
        assert_eq!(messages_about(&hook, t), 1, "{t}");
    }

    hook.set_behaviour(Behaviour::Accept);
    for t in &tasks {
        let (status, body) = post(&client, &cluster.node(1).url("/"), callback(t)).await;
        assert_eq!((status, count(&body, "duplicate")), (StatusCode::OK, 1), "{t} was marked done: {body}");
    }
    assert_eq!(hook.received().len(), IN_FLIGHT, "nothing sent twice");
}

/// Waits until `n` dedup keys hold a lease token (an action claimed and not yet done).
async fn wait_for_claims(redis: &RedisServer, n: usize) {
    let client = redis::Client::open(redis.url()).expect("redis client");
    let mut conn = client.get_multiplexed_async_connection().await.expect("connect to the test Redis");
    let deadline = Instant::now() + REQUEST_WAIT;
    loop {
        let keys: Vec<String> =
            redis::cmd("KEYS").arg("vodhook:dedup:*").query_async(&mut conn).await.expect("KEYS");
        let mut claimed = 0;
        for key in &keys {
            let value: Option<String> = redis::cmd("GET").arg(key).query_async(&mut conn).await.expect("GET");
            claimed += usize::from(value.is_some_and(|v| v != "done"));
        }
        if claimed >= n {
            return;
        }
        assert!(Instant::now() < deadline, "only {claimed} of {n} actions were ever claimed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
