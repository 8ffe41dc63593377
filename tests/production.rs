//! vodhook on the Redis teams run in production — TLS-only with a private CA, and a 3-node Redis
//! Cluster — end to end: two `vodhook serve` processes sharing it, webhook stand-ins counting
//! messages where a user would see them, and the operator's tools (`check-redis`, `outbox list`,
//! `outbox replay`, `outbox purge`, `drain`) run as the binary.
//!
//! Every wait is a deadline that turns a hang into a failure, never a timing assertion.

mod support;

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};
use support::redis::{Ca, Redis, RedisServer, Shape};
use support::standins::{Behaviour, StandIn};
use support::{Cluster, post};
use vodhook::action::Action;
use vodhook::channel::ChannelType;

/// A `WorkflowTaskComplete` callback (the built-in successful sample) for `task_id`.
fn callback(task_id: &str) -> String {
    let mut event: Value = serde_json::from_str(vodhook::samples::SUCCEED).expect("the sample is JSON");
    event["TaskId"] = json!(task_id);
    event.to_string()
}

/// Task ids unique to this run and test.
fn task(name: &str, i: usize) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("prod-{name}-{i}-{:x}-{:x}", std::process::id(), nanos % 1_000_000_007)
}

/// A configuration: Redis, one webhook channel `hook` that every event goes to, and `extra`.
fn config(redis: &Redis, hook: &StandIn, extra: &str) -> String {
    format!(
        "{}\n{extra}\n\n{}\n\n[[routes]]\nname = \"all\"\nchannels = [\"hook\"]\n",
        redis.dedup_toml(),
        hook.channel_toml("hook")
    )
}

/// Short deadlines so that a channel that is down makes a callback queue quickly.
const QUICK: &str = "[delivery]\ncallback_deadline_ms = 1500\nattempt_timeout_ms = 1000\nbackoff_initial_ms = 50\nbackoff_max_ms = 200\n";

/// How many messages the stand-in accepted about each task.
fn messages_per_task(hook: &StandIn) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for request in hook.received() {
        if let Some(id) = request.json.pointer("/details/task_id").and_then(Value::as_str) {
            *counts.entry(id.to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

fn count(body: &Value, field: &str) -> u64 {
    body.get(field).and_then(Value::as_u64).unwrap_or(0)
}

/// The last stdout line of a command, as JSON (the drain and replay reports).
fn report(run: &support::CliRun) -> Value {
    let last = run.stdout.lines().last().unwrap_or("");
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{}\n{}", run.stdout, run.stderr))
}

/// Sends `tasks`' callbacks, each twice (to both instances), all at once; every answer must be
/// 200. Returns the answers.
async fn send_twice(cluster: &Cluster, tasks: &[String]) -> Vec<Value> {
    let sends = tasks.iter().enumerate().flat_map(|(i, t)| {
        [0, 1].map(|copy| {
            let url = cluster.node((i + copy) % 2).url("/");
            let body = callback(t);
            tokio::spawn(async move { post(&url, body, &[]).await })
        })
    });
    let answers = futures_util::future::join_all(sends).await;
    answers
        .into_iter()
        .map(|a| {
            let a = a.expect("request task");
            assert_eq!(a.status, 200, "{}\n{}", a.text, cluster.logs());
            a.json
        })
        .collect()
}

/// Sends each task's callback once, spread over the instances, all at once; each must be
/// answered 200 and `queued` (the channel is down).
async fn send_expecting_queued(cluster: &Cluster, tasks: &[String]) {
    let sends = tasks.iter().enumerate().map(|(i, t)| {
        let (url, body) = (cluster.node(i % cluster.nodes().len()).url("/"), callback(t));
        tokio::spawn(async move { post(&url, body, &[]).await })
    });
    for answer in futures_util::future::join_all(sends).await {
        let answer = answer.expect("request task");
        assert_eq!((answer.status, count(&answer.json, "queued")), (200, 1), "{}", answer.text);
    }
}

// ---- done when: the whole promise on TLS and on a cluster ---------------------------------------

/// Two instances on one production Redis: 30 distinct callbacks sent twice give exactly 30
/// messages; a channel down past the deadline is answered 200 and queued; once it is back,
/// `vodhook drain` delivers each exactly once; `outbox list` and `check-redis` work throughout.
async fn the_promise_holds(shape: Shape) {
    let redis = tokio::task::block_in_place(|| Redis::start(shape));
    let hook = StandIn::start(ChannelType::Webhook).await;
    let extra = format!("{QUICK}\n[outbox]\nschedule_secs = [0, 60]\n");
    let cluster = Cluster::start(2, &config(&redis, &hook, &extra)).await;

    let check = cluster.cli(&["check-redis"]).await;
    assert!(check.status.success(), "{}", check.output());

    let tasks: Vec<String> = (0..30).map(|i| task("twice", i)).collect();
    let answers = send_twice(&cluster, &tasks).await;
    let delivered: u64 = answers.iter().map(|a| count(a, "delivered")).sum();
    let duplicate: u64 = answers.iter().map(|a| count(a, "duplicate")).sum();
    assert!(answers.iter().all(|a| a.get("dedup_unavailable").is_none()), "{answers:?}");
    let per_task = messages_per_task(&hook);
    assert_eq!(per_task.len(), 30, "{per_task:?}\n{}", cluster.logs());
    assert!(per_task.values().all(|&n| n == 1), "exactly one message per task: {per_task:?}");
    assert_eq!((delivered, duplicate), (30, 30), "answers: delivered, duplicate");
    if let Some(c) = redis.cluster() {
        let spread: Vec<usize> = (0..3).map(|i| c.keys_on(i)).collect();
        assert!(spread.iter().all(|&n| n > 0), "the dedup keys landed on every node: {spread:?}");
    }

    // The channel down past the deadline: answered 200, queued; back: one drain delivers each.
    hook.set_behaviour(Behaviour::ServerError);
    let down: Vec<String> = (0..5).map(|i| task("down", i)).collect();
    send_expecting_queued(&cluster, &down).await;
    // VOD's retries, at the other instance: the outbox holds them, so 200 again.
    for (i, t) in down.iter().enumerate() {
        let answer = post(&cluster.node((i + 1) % 2).url("/"), callback(t), &[]).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    let listed = cluster.cli(&["outbox", "list", "--json"]).await.ndjson();
    assert_eq!(listed.len(), 5, "{listed:?}");
    assert!(listed.iter().all(|l| l["state"] == "waiting"), "{listed:?}");
    hook.set_behaviour(Behaviour::Accept);
    let drained = cluster.cli(&["drain"]).await;
    assert_eq!(count(&report(&drained), "delivered"), 5, "{}", drained.output());
    let again = cluster.cli(&["drain"]).await;
    assert_eq!(count(&report(&again), "taken"), 0, "{}", again.output());
    let per_task = messages_per_task(&hook);
    assert!(down.iter().all(|t| per_task.get(t) == Some(&1)), "{per_task:?}");
    assert_eq!(hook.received().len(), 35, "nothing sent twice");
    assert!(cluster.cli(&["outbox", "list", "--json"]).await.ndjson().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_tls_redis_with_a_private_ca_two_instances_keep_every_promise() {
    the_promise_holds(Shape::Tls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_redis_cluster_two_instances_keep_every_promise() {
    the_promise_holds(Shape::Cluster).await;
}

// ---- replay ------------------------------------------------------------------------------------

/// 50 dead letters, the channel back up, two `vodhook outbox replay --dead` at once: each action
/// arrives exactly once, with the `webhook-id` it had on its first attempt.
async fn two_replays_at_once_deliver_each_dead_letter_once(shape: Shape) {
    let redis = tokio::task::block_in_place(|| Redis::start(shape));
    let hook = StandIn::start(ChannelType::Webhook).await;
    hook.set_behaviour(Behaviour::ServerError);
    // The callback is round 1, a drain round 2; round 3 would come after max_age: dead.
    let extra = format!("{QUICK}\n[outbox]\nschedule_secs = [0, 3600]\nmax_age_secs = 600\n");
    let cluster = Cluster::start(2, &config(&redis, &hook, &extra)).await;
    let tasks: Vec<String> = (0..50).map(|i| task("replay", i)).collect();
    send_expecting_queued(&cluster, &tasks).await;
    let drained = cluster.cli(&["drain"]).await;
    assert_eq!(count(&report(&drained), "dead_lettered"), 50, "{}", drained.output());
    let ids_when_failing = webhook_ids(&hook);
    assert_eq!(ids_when_failing.len(), 50, "one webhook-id per action");

    // A dry run moves nothing.
    let dry = cluster.cli(&["outbox", "replay", "--dead", "--dry-run"]).await;
    assert_eq!(count(&report(&dry), "selected"), 50, "{}", dry.output());
    assert_eq!(cluster.cli(&["outbox", "list", "--json"]).await.ndjson().len(), 50);

    hook.set_behaviour(Behaviour::Accept);
    let before = hook.requests().len();
    let (a, b) = tokio::join!(
        cluster.cli(&["outbox", "replay", "--dead"]),
        cluster.cli(&["outbox", "replay", "--dead", "--since", "1h", "--channel", "hook", "--route", "all"])
    );
    assert!(a.status.success() && b.status.success(), "{}\n{}", a.output(), b.output());
    let (ra, rb) = (report(&a), report(&b));
    assert_eq!(count(&ra, "moved") + count(&rb, "moved"), 50, "each dead letter moved once: {ra} {rb}");
    assert_eq!(count(&ra, "delivered") + count(&rb, "delivered"), 50, "{ra} {rb}");
    let moved_lines = a.stdout.lines().chain(b.stdout.lines()).filter(|l| l.starts_with("moved ")).count();
    assert_eq!(moved_lines, 50, "it prints what it moved");

    let per_task = messages_per_task(&hook);
    assert!(tasks.iter().all(|t| per_task.get(t) == Some(&1)), "exactly once each: {per_task:?}");
    assert_eq!(hook.requests().len() - before, 50, "no extra attempt");
    let delivered_ids: HashMap<String, String> =
        hook.received().iter().filter_map(|r| Some((task_of(r)?, webhook_id(r)?))).collect();
    for (task, id) in &delivered_ids {
        assert_eq!(ids_when_failing.get(task), Some(id), "{task} kept its webhook-id");
    }
    let key = Action::key_for(&format!("WorkflowTaskComplete:{}", tasks[0]), "all", "hook");
    assert_eq!(delivered_ids.get(&tasks[0]), Some(&Action::message_id_for(&key)));

    // Nothing left; a third replay finds nothing to move.
    assert!(cluster.cli(&["outbox", "list", "--json"]).await.ndjson().is_empty());
    let third = cluster.cli(&["outbox", "replay", "--dead"]).await;
    assert_eq!(count(&report(&third), "moved"), 0, "{}", third.output());
}

fn task_of(request: &support::standins::Request) -> Option<String> {
    request.json.pointer("/details/task_id").and_then(Value::as_str).map(str::to_owned)
}

fn webhook_id(request: &support::standins::Request) -> Option<String> {
    request.headers.get("webhook-id").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// task id → the webhook-id of every request about it (asserting there is one per task).
fn webhook_ids(hook: &StandIn) -> HashMap<String, String> {
    let mut ids: HashMap<String, HashSet<String>> = HashMap::new();
    for request in hook.requests() {
        if let (Some(task), Some(id)) = (task_of(&request), webhook_id(&request)) {
            ids.entry(task).or_default().insert(id);
        }
    }
    ids.into_iter()
        .map(|(task, set)| {
            assert_eq!(set.len(), 1, "{task}: one webhook-id across attempts: {set:?}");
            (task, set.into_iter().next().unwrap_or_default())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_cluster_two_replays_at_once_deliver_each_dead_letter_once() {
    two_replays_at_once_deliver_each_dead_letter_once(Shape::Cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_tls_two_replays_at_once_deliver_each_dead_letter_once() {
    two_replays_at_once_deliver_each_dead_letter_once(Shape::Tls).await;
}

// ---- check-redis ------------------------------------------------------------------------------------

/// `vodhook check-redis` with `dedup_toml` as the whole configuration.
fn check_redis(dedup_toml: &str) -> support::CliRun {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("vodhook.toml");
    std::fs::write(&config, dedup_toml).expect("write the configuration");
    support::run_cli(dir.path(), &["check-redis", "--config", &config.to_string_lossy()], &[])
}

/// The line of `step` in check-redis's output.
fn line<'a>(run: &'a support::CliRun, step: &str) -> &'a str {
    run.stdout
        .lines()
        .find(|l| l.starts_with(step))
        .unwrap_or_else(|| panic!("no `{step}` line:\n{}", run.output()))
}

#[test]
fn check_redis_reports_every_step_on_plain_tls_and_cluster() {
    for shape in [Shape::Plain, Shape::Tls, Shape::Cluster] {
        let redis = Redis::start(shape);
        let run = check_redis(&redis.dedup_toml());
        assert!(run.status.success(), "{shape:?}:\n{}", run.output());
        for step in ["connect", "tls", "topology", "scripts", "key slots", "round trip", "outbox"] {
            assert!(!line(&run, step).contains("FAILED"), "{shape:?}:\n{}", run.output());
        }
        assert!(line(&run, "scripts").contains("EVAL allowed"));
        assert!(line(&run, "key slots").contains("{outbox} (items, due, dead, dead_at) →"), "{}", run.stdout);
        assert!(line(&run, "round trip").contains("median"), "{}", run.stdout);
        assert!(line(&run, "outbox").contains("0 waiting, 0 dead letters"), "{}", run.stdout);
        let (tls, topology) = (line(&run, "tls"), line(&run, "topology"));
        match shape {
            Shape::Plain => {
                assert!(tls.contains("off") && topology.contains("single endpoint"), "{}", run.stdout)
            }
            Shape::Tls => {
                assert!(tls.contains("on, certificate verified for \"localhost\" (public roots + "), "{tls}");
                assert!(topology.contains("single endpoint"), "{topology}");
            }
            Shape::Cluster => {
                assert!(topology.contains("cluster: 3 nodes (3 primaries), cluster_state ok"), "{topology}");
                assert!(
                    line(&run, "key slots").contains("→ slot "),
                    "the server confirms the slot: {}",
                    run.stdout
                );
            }
        }
        assert!(run.stdout.contains("check-redis: OK"), "{}", run.stdout);
    }
}

#[test]
fn check_redis_names_the_step_that_failed_and_exits_1() {
    // A stopped server: `connect`.
    let mut stopped = RedisServer::start_with_password("pw-not-shown-42");
    let toml = format!("[dedup]\nbackend = \"redis\"\nurl = \"{}\"\n", stopped.url());
    stopped.stop();
    let run = check_redis(&toml);
    assert_eq!(run.code(), Some(1), "{}", run.output());
    assert!(line(&run, "connect").contains("FAILED: Redis at"), "{}", run.output());
    assert!(run.stderr.contains("check-redis failed at step `connect`"), "{}", run.stderr);
    assert!(!run.output().contains("pw-not-shown-42"), "{}", run.output());

    // The public roots only, against a private CA: `tls`.
    let ca = Ca::new("private");
    let tls = RedisServer::start_tls(&ca.issue("server", &["localhost"]), &ca);
    let run = check_redis(&format!("[dedup]\nbackend = \"redis\"\nurl = \"{}\"\n", tls.url()));
    assert_eq!(run.code(), Some(1), "{}", run.output());
    assert!(line(&run, "tls").contains("not signed by a trusted CA"), "{}", run.output());
    assert!(run.stderr.contains("failed at step `tls`"), "{}", run.stderr);

    // A cluster reached as one endpoint: `topology` says what to set.
    let cluster = Redis::start(Shape::Cluster);
    let run = check_redis(&format!("[dedup]\nbackend = \"redis\"\nurl = \"{}\"\n", cluster.url()));
    assert_eq!(run.code(), Some(1), "{}", run.output());
    assert!(line(&run, "topology").contains("set `cluster = true`"), "{}", run.output());

    // Nothing to check without Redis.
    let run = check_redis("[dedup]\nbackend = \"memory\"\n");
    assert_eq!(run.code(), Some(1));
    assert!(run.stderr.contains("no Redis to check"), "{}", run.stderr);
}

// ---- purge and list ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbox_list_and_purge() {
    let redis = tokio::task::block_in_place(|| Redis::start(Shape::Cluster));
    let hook = StandIn::start(ChannelType::Webhook).await;
    hook.set_behaviour(Behaviour::ServerError);
    let extra = format!("{QUICK}\n[outbox]\nschedule_secs = [0, 3600]\nmax_age_secs = 600\n");
    let cluster = Cluster::start(1, &config(&redis, &hook, &extra)).await;
    let tasks: Vec<String> = (0..3).map(|i| task("purge", i)).collect();
    for t in &tasks {
        let answer = post(&cluster.node(0).url("/"), callback(t), &[]).await;
        assert_eq!((answer.status, count(&answer.json, "queued")), (200, 1), "{}", answer.text);
    }
    let table = cluster.cli(&["outbox", "list"]).await;
    assert!(table.stdout.contains("3 waiting, 0 dead letters"), "{}", table.output());
    assert!(
        table.stdout.contains("channel hook: 3 waiting (0 held for a digest, 3 retrying)"),
        "{}",
        table.stdout
    );
    assert!(table.stdout.lines().filter(|l| l.starts_with("  waiting  ")).count() == 3, "{}", table.stdout);

    let refused = cluster.cli(&["outbox", "purge"]).await;
    assert_eq!(refused.code(), Some(1), "waiting items need --older-than: {}", refused.output());
    assert!(refused.stderr.contains("--older-than"), "{}", refused.stderr);
    let young = cluster.cli(&["outbox", "purge", "--older-than", "1"]).await;
    assert!(young.stdout.contains("removed 0 waiting items"), "{}", young.output());

    let drained = cluster.cli(&["drain"]).await;
    assert_eq!(count(&report(&drained), "dead_lettered"), 3, "{}", drained.output());
    let dry = cluster.cli(&["outbox", "purge", "--dead", "--dry-run"]).await;
    assert!(dry.stdout.contains("would remove 3 dead letters"), "{}", dry.output());
    let purged = cluster.cli(&["outbox", "purge", "--dead"]).await;
    assert!(purged.stdout.contains("removed 3 dead letters"), "{}", purged.output());
    let table = cluster.cli(&["outbox", "list"]).await;
    assert!(table.stdout.contains("0 waiting, 0 dead letters"), "{}", table.output());
    assert_eq!(messages_per_task(&hook).len(), 0, "nothing was ever delivered");
}

/// Dead letters older than `[outbox] dead_letter_days` are removed by the drain; younger ones
/// stay. (Written with an old `dead_at`, as the days cannot be waited for.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_expires_dead_letters_older_than_dead_letter_days() {
    let redis = tokio::task::block_in_place(|| Redis::start(Shape::Plain));
    let hook = StandIn::start(ChannelType::Webhook).await;
    let cluster = Cluster::start(1, &config(&redis, &hook, "[outbox]\ndead_letter_days = 14\n")).await;
    let now = chrono::Utc::now().timestamp();
    let conn = vodhook::store::RedisConn::open(&redis.dedup_config("vodhook:")).expect("connection");
    for (name, days) in [("old", 15), ("young", 13)] {
        let letter = json!({"item": {"action": {"key": name, "event": name, "route": "all", "channel": "hook",
            "channel_type": "webhook", "payload": {}}, "attempts": 3, "first_seen": 0, "due": 0, "last_error": ""},
            "reason": "gave up", "dead_at": now - days * 86_400});
        let write = redis::pipe()
            .hset("vodhook:{outbox}:dead", name, letter.to_string())
            .zadd("vodhook:{outbox}:dead_at", name, now - days * 86_400)
            .to_owned();
        conn.run(|mut c| {
            let write = write.clone();
            async move { write.exec_async(&mut c).await }
        })
        .await
        .expect("write a dead letter");
    }
    let drained = cluster.cli(&["drain"]).await;
    assert_eq!(count(&report(&drained), "expired"), 1, "{}", drained.output());
    let listed = cluster.cli(&["outbox", "list", "--json"]).await.ndjson();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].pointer("/item/item/action/key"), Some(&json!("young")), "{listed:?}");
}

/// A cluster node killed mid-run: what is promised is what an outage of a single Redis gets —
/// every callback still answered 200 and delivered once (a duplicate is better than a loss), the
/// answers for keys on the dead node saying `dedup_unavailable`. Keys on the live nodes keep
/// their dedup until the cluster itself declares the slots down.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_node_killed_mid_run_costs_dedup_not_messages() {
    let mut redis = tokio::task::block_in_place(|| Redis::start(Shape::Cluster));
    let hook = StandIn::start(ChannelType::Webhook).await;
    let cluster = Cluster::start(2, &config(&redis, &hook, "")).await;
    let before: Vec<String> = (0..10).map(|i| task("before-kill", i)).collect();
    send_twice(&cluster, &before).await;
    assert_eq!(hook.received().len(), 10);

    let Redis::Cluster(nodes) = &mut redis else { unreachable!() };
    tokio::task::block_in_place(|| nodes.kill(1));
    let during: Vec<String> = (0..20).map(|i| task("during-kill", i)).collect();
    let sends = during.iter().enumerate().map(|(i, t)| {
        let (url, body) = (cluster.node(i % 2).url("/"), callback(t));
        tokio::spawn(async move { post(&url, body, &[]).await })
    });
    let mut unavailable = 0;
    for answer in futures_util::future::join_all(sends).await {
        let answer = answer.expect("request task");
        assert_eq!(
            (answer.status, count(&answer.json, "delivered")),
            (200, 1),
            "{}\n{}",
            answer.text,
            cluster.logs()
        );
        unavailable += usize::from(answer.json["dedup_unavailable"] == true);
    }
    let per_task = messages_per_task(&hook);
    assert!(during.iter().all(|t| per_task.get(t) == Some(&1)), "each delivered once: {per_task:?}");
    assert!(unavailable > 0, "the dead node's keys were answered dedup_unavailable");
    assert!(cluster.logs().contains("dedup store unreachable"), "and logged");
}

// ---- nothing lost to a permanent rejection -----------------------------------------------------

/// Found by a new user: a wrong DingTalk secret (`310000 sign not match`) made the message fail
/// permanently and vanish — `outbox list` showed no dead letter, so fixing the secret left
/// nothing to replay. Now the rejected message is a dead letter with the service's code and
/// message; once the configuration is fixed, `outbox replay` signs it with the new secret and
/// it arrives exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_refused_for_a_wrong_secret_is_a_dead_letter_replayed_once_fixed() {
    let redis = tokio::task::block_in_place(|| Redis::start(Shape::Plain));
    let robot = StandIn::start(ChannelType::Dingtalk).await;
    let secret = robot.secret().expect("a DingTalk signing secret").to_owned();
    let wrong = robot.channel_toml("ops").replace(&secret, "SECthis-is-not-the-robot-secret");
    let config_with = |channel: &str| {
        format!("{}\n\n{channel}\n\n[[routes]]\nname = \"all\"\nchannels = [\"ops\"]\n", redis.dedup_toml())
    };
    let cluster = Cluster::start(1, &config_with(&wrong)).await;
    let id = task("refused", 0);
    let answer = post(&cluster.node(0).url("/"), callback(&id), &[]).await;
    assert_eq!((answer.status, count(&answer.json, "failed_permanently")), (200, 1), "{}", answer.text);
    assert!(robot.received().is_empty(), "the robot accepted a badly signed message");

    let listed = cluster.cli(&["outbox", "list", "--json"]).await.ndjson();
    assert_eq!(listed.len(), 1, "one dead letter: {listed:?}");
    let shown = listed[0].to_string();
    assert!(
        shown.contains("310000") && shown.contains("sign not match"),
        "the service's code and message: {shown}"
    );
    assert!(!shown.contains(&secret), "a secret in the dead letter: {shown}");

    // The secret is fixed in the file; the replay signs with it.
    std::fs::write(cluster.config_path(), config_with(&robot.channel_toml("ops")))
        .expect("fix the configuration");
    let replayed = cluster.cli(&["outbox", "replay", "--dead"]).await;
    assert_eq!(count(&report(&replayed), "delivered"), 1, "{}", replayed.output());
    let again = cluster.cli(&["outbox", "replay", "--dead"]).await;
    assert_eq!(count(&report(&again), "moved"), 0, "{}", again.output());
    let delivered = robot.received();
    assert_eq!(delivered.len(), 1, "exactly once: {delivered:?}");
    assert!(delivered[0].json.to_string().contains(&id), "{:?}", delivered[0].json);
}

/// Without Redis there is no outbox: the error line keeps the rendered message (and never a
/// secret), so that it can be resent by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_outbox_the_refused_message_is_in_the_error_line() {
    let robot = StandIn::start(ChannelType::Dingtalk).await;
    let secret = robot.secret().expect("a DingTalk signing secret").to_owned();
    let wrong = robot.channel_toml("ops").replace(&secret, "SECthis-is-not-the-robot-secret");
    let config = format!("{wrong}\n\n[[routes]]\nname = \"all\"\nchannels = [\"ops\"]\n");
    let cluster = Cluster::start(1, &config).await;
    let id = task("refused-mem", 0);
    let answer = post(&cluster.node(0).url("/"), callback(&id), &[]).await;
    assert_eq!(count(&answer.json, "failed_permanently"), 1, "{}", answer.text);
    let logs = cluster.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("delivery failed permanently"))
        .unwrap_or_else(|| panic!("no error line:\n{logs}"));
    assert!(line.contains(&id) && line.contains("markdown") && line.contains("310000"), "{line}");
    assert!(!line.contains(&secret) && !line.contains("SECthis-is-not"), "{line}");
}
