//! Bursts: many callbacks at once, spread over several `vodhook serve` processes sharing one
//! Redis, to chat robots that enforce their services' limits (stand-ins counting every request
//! over the limit, blocking the robot as DingTalk does, refusing bodies over 20,000 bytes). The
//! promise: no request over a limit, every event in exactly one accepted message, digests when
//! the budget is spent, every callback answered `200` in time.
//!
//! Windows are shortened through configuration (`rate_window_secs`) where a test is about
//! behaviour, not the numbers; the done-when test runs DingTalk's real numbers. Every wait is a
//! deadline that turns a hang into a failure, never a timing assertion.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::redis::RedisServer;
use support::standins::{Behaviour, Limits, StandIn};
use support::{Cluster, post};
use vodhook::channel::ChannelType;

/// Task ids unique to this run: letters and digits only, so they read as one word in any markup.
fn task(run: &str, i: usize) -> String {
    format!("bt{run}n{i:04}")
}

fn run_id(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{name}{:x}", (nanos % 1_000_000_007) ^ u128::from(std::process::id()))
}

/// A failed `WorkflowTaskComplete` callback (the built-in sample) for `task_id`.
fn failure(task_id: &str) -> String {
    let mut event: Value = serde_json::from_str(vodhook::samples::FAILED).expect("the sample is JSON");
    event["TaskId"] = json!(task_id);
    event.to_string()
}

/// Redis, one chat channel `robot` every event goes to, and `extra` settings.
fn config(redis: &RedisServer, robot: &StandIn, channel_extra: &str, extra: &str) -> String {
    format!(
        "[dedup]\nbackend = \"redis\"\nurl = \"{}\"\nkey_prefix = \"{}:\"\n\n{extra}\n\n{}{channel_extra}\n\n\
         [[routes]]\nname = \"all\"\nchannels = [\"robot\"]\n",
        redis.url(),
        run_id("k"),
        robot.channel_toml("robot"),
    )
}

/// How many accepted messages name each of `tasks` (a task id is one word of the message).
fn mentions(robot: &StandIn, tasks: &[String]) -> HashMap<String, usize> {
    let mut counts: HashMap<String, usize> = tasks.iter().map(|t| (t.clone(), 0)).collect();
    for request in robot.received() {
        let text = request.body.iter().map(|&b| b as char).collect::<String>();
        for word in text.split(|c: char| !c.is_ascii_alphanumeric()) {
            if let Some(n) = counts.get_mut(word) {
                *n += 1;
            }
        }
    }
    counts
}

fn count(answer: &Value, field: &str) -> u64 {
    answer.get(field).and_then(Value::as_u64).unwrap_or(0)
}

/// Sends each task's failure to instance `i % n`, `gap` apart; returns (answer, seconds taken).
async fn send_spread(cluster: &Cluster, tasks: &[String], gap: Duration) -> Vec<(u16, Value, Duration)> {
    let mut sends = Vec::new();
    for (i, t) in tasks.iter().enumerate() {
        let (url, body) = (cluster.node(i % cluster.nodes().len()).url("/"), failure(t));
        sends.push(tokio::spawn(async move {
            let started = Instant::now();
            let answer = post(&url, body, &[]).await;
            (answer.status, answer.json, started.elapsed())
        }));
        tokio::time::sleep(gap).await;
    }
    let mut answers = Vec::new();
    for send in sends {
        answers.push(send.await.expect("request task"));
    }
    answers
}

/// Runs `vodhook drain` every `every` until `done` says so or `patience` runs out; returns the
/// drain reports.
async fn drain_until(
    cluster: &Cluster,
    every: Duration,
    patience: Duration,
    done: impl Fn() -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + patience;
    let mut reports = Vec::new();
    while !done() && Instant::now() < deadline {
        let run = cluster.cli(&["drain"]).await;
        assert!(run.status.success(), "{}", run.output());
        reports.extend(run.stdout.lines().last().and_then(|l| serde_json::from_str::<Value>(l).ok()));
        tokio::time::sleep(every).await;
    }
    reports
}

// ---- done when ----------------------------------------------------------------------------------

/// 300 `Failed` callbacks over 60 s, spread over 4 instances with one Redis, to one DingTalk
/// robot enforcing the real limits (20 a minute, then 10 minutes blocked; bodies up to 20,000
/// bytes), `vodhook drain` every 3 s: no request over the limit, every task in exactly one
/// accepted message, every callback answered 200 in under 5 s, all out within 3 minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn done_when_a_burst_of_300_failures_reaches_one_robot_within_its_limits() {
    let redis = tokio::task::block_in_place(RedisServer::start);
    let robot = StandIn::start_limited(ChannelType::Dingtalk, Limits::real(ChannelType::Dingtalk)).await;
    let cluster = Cluster::start(4, &config(&redis, &robot, "", "")).await;
    let run = run_id("d");
    let tasks: Vec<String> = (0..300).map(|i| task(&run, i)).collect();

    let burst = Instant::now();
    let (drains, slowest) = {
        let cluster = &cluster;
        let sending = send_spread(cluster, &tasks, Duration::from_millis(200));
        let draining = async {
            // The FC timer: a drain every few seconds while the burst comes in and after.
            let mut reports = Vec::new();
            let stop = Instant::now() + Duration::from_secs(58);
            while Instant::now() < stop {
                let run = cluster.cli(&["drain"]).await;
                reports.extend(run.stdout.lines().last().and_then(|l| serde_json::from_str::<Value>(l).ok()));
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            reports
        };
        let (answers, reports) = tokio::join!(sending, draining);
        for (status, answer, took) in &answers {
            assert_eq!(*status, 200, "{answer}\n{}", cluster.logs());
            assert!(*took < Duration::from_secs(5), "answered in {took:?}: {answer}");
        }
        let held: u64 = answers.iter().map(|(_, a, _)| count(a, "held")).sum();
        assert!(held > 0, "a burst this size must hold actions for digests");
        (reports, answers.iter().map(|(_, _, took)| *took).max().unwrap_or_default())
    };
    let last_callback = Instant::now();
    let all_out = || mentions(&robot, &tasks).values().all(|n| *n >= 1);
    let more = drain_until(&cluster, Duration::from_secs(3), Duration::from_secs(180), all_out).await;
    let out_after = last_callback.elapsed();

    let counts = mentions(&robot, &tasks);
    let missing: Vec<&String> = counts.iter().filter(|(_, n)| **n == 0).map(|(t, _)| t).collect();
    let twice: Vec<&String> = counts.iter().filter(|(_, n)| **n > 1).map(|(t, _)| t).collect();
    assert!(missing.is_empty(), "{} tasks reached nobody: {missing:?}\n{}", missing.len(), cluster.logs());
    assert!(twice.is_empty(), "tasks in more than one message: {twice:?}");
    assert_eq!(robot.over_limit(), 0, "requests over the limit\n{}", cluster.logs());
    assert!(robot.rejected().is_empty(), "{:?}", robot.rejected());
    let sizes: Vec<usize> = robot.received().iter().map(|r| r.body.len()).collect();
    assert!(sizes.iter().all(|s| *s <= 20_000), "{sizes:?}");
    assert!(out_after < Duration::from_secs(180), "all out {out_after:?} after the last callback");
    let digests: u64 = drains.iter().chain(&more).map(|r| count(r, "digests")).sum();
    eprintln!(
        "burst: 300 callbacks in {:?}, slowest answer {slowest:?}; {} messages accepted ({} digests \
         sent by drains, the rest by callbacks), largest {} bytes; all out {:?} after the last callback",
        last_callback - burst,
        sizes.len(),
        digests,
        sizes.iter().max().unwrap_or(&0),
        out_after
    );
}

// ---- holding, digests, duplicates ---------------------------------------------------------------

/// A robot taking 3 messages per 10 s; vodhook told the same.
fn three_per_ten_seconds(kind: ChannelType) -> Limits {
    Limits { per_window: Some(3), window: Duration::from_secs(10), ..Limits::real(kind) }
}

const THREE_PER_TEN: &str = "rate_per_minute = 3\nrate_window_secs = 10\n";

/// Once the budget is spent, actions are held (the answers and `outbox list` say so), and when
/// it comes back one drain sends them as one digest; a duplicate callback of a covered event
/// sends nothing; `plan` says what would be held.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spent_budget_holds_actions_for_one_digest_and_duplicates_send_nothing() {
    let redis = tokio::task::block_in_place(RedisServer::start);
    let robot =
        StandIn::start_limited(ChannelType::Dingtalk, three_per_ten_seconds(ChannelType::Dingtalk)).await;
    let cluster = Cluster::start(2, &config(&redis, &robot, THREE_PER_TEN, "")).await;
    let run = run_id("h");
    let tasks: Vec<String> = (0..12).map(|i| task(&run, i)).collect();

    let answers = send_spread(&cluster, &tasks, Duration::from_millis(50)).await;
    let delivered: u64 = answers.iter().map(|(_, a, _)| count(a, "delivered")).sum();
    let held: u64 = answers.iter().map(|(_, a, _)| count(a, "held")).sum();
    assert!(answers.iter().all(|(s, ..)| *s == 200), "{answers:?}");
    assert_eq!((delivered, held), (3, 9), "{answers:?}");
    let held_in_logs: u64 = (0..2)
        .flat_map(|n| cluster.node(n).summaries(6))
        .map(|fields| fields["held"].as_u64().expect("the summary line says how many were held"))
        .sum();
    assert_eq!(held_in_logs, 9, "the summary lines count the held actions");

    let list = cluster.cli(&["outbox", "list"]).await;
    assert!(
        list.stdout.contains("channel robot: 9 waiting (9 held for a digest, 0 retrying)"),
        "{}",
        list.output()
    );

    let plan = cluster.cli(&["plan", &support::fixture_path("e2e-failed.json").to_string_lossy()]).await;
    let planned = plan.ndjson();
    assert_eq!(
        planned[0]["pacing"]["when_spent"], "held in the outbox for the channel's next digest",
        "{planned:?}"
    );
    assert_eq!(planned[0]["pacing"]["limits"], "3 per 10 s");

    let all_out = || mentions(&robot, &tasks).values().all(|n| *n >= 1);
    let reports = drain_until(&cluster, Duration::from_secs(1), Duration::from_secs(40), all_out).await;
    let counts = mentions(&robot, &tasks);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}\n{}", cluster.logs());
    assert_eq!(robot.received().len(), 4, "3 single messages and one digest");
    let digest = &robot.received()[3].json;
    let text = digest["markdown"]["text"].as_str().unwrap_or_default();
    assert!(text.contains("9 × "), "the digest counts the group: {text}");
    assert_eq!(reports.iter().map(|r| count(r, "in_digests")).sum::<u64>(), 9, "{reports:?}");
    assert_eq!(robot.over_limit(), 0);

    // VOD delivers a covered event again: nothing is sent.
    let again = post(&cluster.node(1).url("/"), failure(&tasks[7]), &[]).await;
    assert_eq!((again.status, count(&again.json, "duplicate")), (200, 1), "{}", again.text);
    assert_eq!(robot.received().len(), 4);
}

/// Per-second limits hold too: Feishu (5 a second) and Slack (1 a second) with their real
/// numbers, a burst of callbacks at once: nothing over the limit, every event in one message.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn feishu_and_slack_per_second_limits_hold_in_a_burst() {
    for kind in [ChannelType::Feishu, ChannelType::Slack, ChannelType::Wecom] {
        let redis = tokio::task::block_in_place(RedisServer::start);
        let limits = match kind {
            ChannelType::Wecom => three_per_ten_seconds(kind),
            _ => Limits::real(kind),
        };
        let channel_extra = if kind == ChannelType::Wecom { THREE_PER_TEN } else { "" };
        let robot = StandIn::start_limited(kind, limits).await;
        let cluster = Cluster::start(2, &config(&redis, &robot, channel_extra, "")).await;
        let run = run_id("p");
        let tasks: Vec<String> = (0..30).map(|i| task(&run, i)).collect();
        let answers = send_spread(&cluster, &tasks, Duration::from_millis(10)).await;
        assert!(answers.iter().all(|(s, ..)| *s == 200), "{kind}: {answers:?}");
        let all_out = || mentions(&robot, &tasks).values().all(|n| *n >= 1);
        drain_until(&cluster, Duration::from_millis(700), Duration::from_secs(40), all_out).await;
        let counts = mentions(&robot, &tasks);
        assert!(counts.values().all(|n| *n == 1), "{kind}: {counts:?}\n{}", cluster.logs());
        assert_eq!(robot.over_limit(), 0, "{kind}\n{}", cluster.logs());
        assert!(robot.rejected().is_empty(), "{kind}: {:?}", robot.rejected());
        assert!(robot.received().len() < 30, "{kind}: digests, not 30 messages");
    }
}

/// A robot that takes fewer than vodhook was told (2 per 10 s, then blocked for 11 s): its first
/// "too fast" reply blocks the channel for `block_secs` on every instance (no second request
/// walks into the block), and after the block a drain sends what waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_too_fast_reply_blocks_the_channel_for_every_instance() {
    let redis = tokio::task::block_in_place(RedisServer::start);
    let limits = Limits {
        per_window: Some(2),
        window: Duration::from_secs(10),
        block: Duration::from_secs(11),
        ..Limits::real(ChannelType::Dingtalk)
    };
    let robot = StandIn::start_limited(ChannelType::Dingtalk, limits).await;
    let channel_extra = "rate_per_minute = 10\nrate_window_secs = 10\nblock_secs = 12\n";
    let cluster = Cluster::start(2, &config(&redis, &robot, channel_extra, "")).await;
    let run = run_id("b");
    let tasks: Vec<String> = (0..10).map(|i| task(&run, i)).collect();
    let answers = send_spread(&cluster, &tasks, Duration::from_millis(100)).await;
    assert!(answers.iter().all(|(s, ..)| *s == 200), "{answers:?}");
    assert_eq!(robot.over_limit(), 1, "only the request that found the limit\n{}", cluster.logs());
    let all_out = || mentions(&robot, &tasks).values().all(|n| *n >= 1);
    drain_until(&cluster, Duration::from_secs(1), Duration::from_secs(40), all_out).await;
    let counts = mentions(&robot, &tasks);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}\n{}", cluster.logs());
    assert_eq!(robot.over_limit(), 1, "nothing walked into the block\n{}", cluster.logs());
}

/// An instance killed while its digest is in flight (the robot holds the request; like a server
/// that commits only what it answers, the stand-in drops a request whose sender is gone): nothing
/// is lost — the claims and take leases run out and a drain sends the digest — and no event is in
/// two messages the robot accepted. Not tested, because no test can time it: a death after the
/// robot answered and before the actions were marked done; the `dispatch::digest` module says
/// what happens then (the digest is sent again: the one at-least-once window).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_killed_mid_digest_loses_nothing_and_sends_nothing_twice() {
    let redis = tokio::task::block_in_place(RedisServer::start);
    let robot =
        StandIn::start_limited(ChannelType::Dingtalk, three_per_ten_seconds(ChannelType::Dingtalk)).await;
    let extra = "[outbox]\ntake_lease_secs = 3\n";
    let text =
        config(&redis, &robot, THREE_PER_TEN, extra).replace("[dedup]\n", "[dedup]\nlease_ms = 3000\n");
    let mut cluster = Cluster::start(2, &text).await;
    let run = run_id("k");
    let tasks: Vec<String> = (0..8).map(|i| task(&run, i)).collect();
    // Everything to instance 0: 3 singles, 5 held.
    for t in &tasks {
        let answer = post(&cluster.node(0).url("/"), failure(t), &[]).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    assert_eq!(robot.received().len(), 3);
    // When budget is back, instance 0's next callback joins the backlog and sends the digest;
    // the robot holds that request, and instance 0 dies meanwhile.
    robot.fail_next(1, Behaviour::Delay(Duration::from_millis(1800)));
    tokio::time::sleep(Duration::from_secs(11)).await;
    let late = task(&run, 8);
    let url = cluster.node(0).url("/");
    let body = failure(&late);
    let in_flight = tokio::spawn(async move { support::http_client().post(url).body(body).send().await });
    let deadline = Instant::now() + Duration::from_secs(10);
    while robot.in_flight() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(robot.in_flight(), 1, "the digest request reached the robot\n{}", cluster.logs());
    cluster.node_mut(0).kill();
    let _ = in_flight.await;
    // The robot never answered the dead instance: it did not take the message.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        robot.received().len(),
        3,
        "{:?}",
        robot.requests().iter().map(|r| &r.verdict).collect::<Vec<_>>()
    );

    let mut all: Vec<String> = tasks.clone();
    all.push(late);
    let all_out = || mentions(&robot, &all).values().all(|n| *n >= 1);
    drain_until(&cluster, Duration::from_secs(1), Duration::from_secs(60), all_out).await;
    let counts = mentions(&robot, &all);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}\n{}", cluster.logs());
    assert_eq!(robot.over_limit(), 0);
}

/// Without Redis there is no shared budget and no outbox: each instance paces itself with the
/// same sliding window, and what the window does not allow within the deadline is left to VOD's
/// retry (503).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_each_instance_paces_itself() {
    let robot =
        StandIn::start_limited(ChannelType::Dingtalk, three_per_ten_seconds(ChannelType::Dingtalk)).await;
    let text = format!(
        "[delivery]\ncallback_deadline_ms = 1500\n\n{}{THREE_PER_TEN}\n[[routes]]\nname = \"all\"\nchannels = [\"robot\"]\n",
        robot.channel_toml("robot")
    );
    let cluster = Cluster::start(1, &text).await;
    let run = run_id("m");
    let mut statuses = Vec::new();
    for i in 0..5 {
        statuses.push(post(&cluster.node(0).url("/"), failure(&task(&run, i)), &[]).await.status);
    }
    assert_eq!(statuses, [200, 200, 200, 503, 503], "{}", cluster.logs());
    assert_eq!((robot.received().len(), robot.over_limit()), (3, 0));
}

/// A digest the robot refuses with a 5xx is a failed round for each action it covers: they wait
/// on the outbox's schedule (here a minute), not due again at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_digest_reschedules_its_actions_on_the_outbox_schedule() {
    let redis = tokio::task::block_in_place(RedisServer::start);
    let robot =
        StandIn::start_limited(ChannelType::Dingtalk, three_per_ten_seconds(ChannelType::Dingtalk)).await;
    let cluster =
        Cluster::start(1, &config(&redis, &robot, THREE_PER_TEN, "[outbox]\nschedule_secs = [60]\n")).await;
    let run = run_id("r");
    let tasks: Vec<String> = (0..8).map(|i| task(&run, i)).collect();
    let answers = send_spread(&cluster, &tasks, Duration::from_millis(20)).await;
    assert_eq!(answers.iter().map(|(_, a, _)| count(a, "held")).sum::<u64>(), 5, "{answers:?}");
    tokio::time::sleep(Duration::from_millis(10_600)).await;
    robot.fail_next(1, Behaviour::ServerError);
    let drained = cluster.cli(&["drain"]).await;
    assert!(drained.status.success(), "{}", drained.output());
    let list = cluster.cli(&["outbox", "list", "--json"]).await;
    let waiting: Vec<Value> = list.ndjson().into_iter().filter(|l| l["state"] == "waiting").collect();
    assert_eq!(waiting.len(), 5, "{}", list.output());
    let now = vodhook::clock::unix_now();
    for item in &waiting {
        assert_eq!(item["attempts"], 1, "one failed round: {item}");
        assert!(item["due"].as_i64().unwrap_or(0) > now + 30, "due on the schedule, not now: {item}");
    }
}
