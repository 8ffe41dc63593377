//! The VOD OpenAPI end to end: real `vodhook serve` processes sharing a real Redis, a DingTalk
//! stand-in, and a VOD API stand-in that re-derives every request's ACS3 signature on its own.
//! Play links in messages (`[vod] enrich`), at most one `GetPlayInfo` per video, the API down
//! costing only the links, `vod` channels calling `SubmitWorkflowJob` once per failure with
//! their loop guard, and credentials: FC's per-invocation headers on FC only, never shown.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::redis::RedisServer;
use support::standins::StandIn;
use support::vodapi::{self, Answer, Key, VodApi};
use support::{Options, Vodhook, post};
use vodhook::channel::ChannelType;

const ENV_ID: &str = "LTAI5tEnvKeyId0001";
const ENV_SECRET: &str = "env-secret-Zk3r8sQ1w";
const FC_ID: &str = "STS.NUfcTemporaryId0002";
const FC_SECRET: &str = "fc-secret-Hq7p2Lx9v";
const FC_TOKEN: &str = "CAIS-fc-sts-token-Rt5m1Wq8";

fn keys() -> Vec<Key> {
    vec![
        Key { id: ENV_ID.into(), secret: ENV_SECRET.into(), token: None },
        Key { id: FC_ID.into(), secret: FC_SECRET.into(), token: Some(FC_TOKEN.into()) },
    ]
}

fn env() -> Vec<(&'static str, &'static str)> {
    vec![("ALIBABA_CLOUD_ACCESS_KEY_ID", ENV_ID), ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ENV_SECRET)]
}

/// The headers Function Compute adds to an invocation of a function with a role.
fn fc_credentials() -> Vec<(&'static str, String)> {
    vec![
        ("x-fc-access-key-id", FC_ID.to_owned()),
        ("x-fc-access-key-secret", FC_SECRET.to_owned()),
        ("x-fc-security-token", FC_TOKEN.to_owned()),
    ]
}

fn config(redis: &RedisServer, api: &VodApi, robot: &StandIn) -> String {
    format!(
        r#"[dedup]
backend = "redis"
url = "{redis}"
key_prefix = "{prefix}:"

[vod]
endpoint = "{api}"
enrich = true
timeout_ms = 1500

{robot}

[[channels]]
name = "rerun"
type = "vod"
action = "SubmitWorkflowJob"
params = {{ WorkflowId = "{{{{ workflow_id }}}}", MediaId = "{{{{ video_id }}}}" }}

[[routes]]
name = "all"
channels = ["ding"]
continue = true

[[routes]]
name = "failures"
match = {{ status = "Failed" }}
channels = ["rerun"]
"#,
        redis = redis.url(),
        prefix = unique("vod"),
        api = api.url(),
        robot = robot.channel_toml("ding"),
    )
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{name}{:x}{:x}", std::process::id(), nanos % 1_000_000_007)
}

/// `n` instances on one configuration file, as on FC, with `ALIBABA_CLOUD_*` set.
async fn instances(n: usize, text: &str, dir: &tempfile::TempDir) -> Vec<Vodhook> {
    let path = dir.path().join("vodhook.toml");
    std::fs::write(&path, text).expect("write the configuration");
    let mut nodes = Vec::new();
    for _ in 0..n {
        let options = Options::default().config_file(&path).on_fc().envs(&env());
        nodes.push(tokio::task::spawn_blocking(move || Vodhook::start_with(options)).await.expect("start"));
    }
    nodes
}

fn event(sample: &str, task: &str, video: &str) -> String {
    let mut event: Value = serde_json::from_str(sample).expect("the sample is JSON");
    event["TaskId"] = json!(task);
    event["VideoId"] = json!(video);
    event.to_string()
}

fn text_of(request: &support::standins::Request) -> String {
    request.json["markdown"]["text"].as_str().unwrap_or_default().to_owned()
}

fn logs(nodes: &[Vodhook]) -> String {
    nodes.iter().map(|n| n.output()).collect::<Vec<_>>().join("\n")
}

/// Done when: a Succeed callback gives a DingTalk message with the exact play and cover URLs the
/// API returned, duplicates over two instances costing one GetPlayInfo; the API down still
/// gives the message in time; the vod channel calls SubmitWorkflowJob exactly once per failure
/// and not for the re-run's own failure; every call's signature verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn done_when_links_reach_the_message_and_vod_calls_are_made_once() {
    let redis = tokio::task::block_in_place(RedisServer::start);
    let api = VodApi::start(keys()).await;
    let robot = StandIn::start(ChannelType::Dingtalk).await;
    let dir = tempfile::tempdir().unwrap();
    let nodes = instances(2, &config(&redis, &api, &robot), &dir).await;
    let fc = fc_credentials();

    // 1. A Succeed callback, delivered twice to each instance at once.
    let video = unique("v");
    let body = event(vodhook::samples::SUCCEED, &unique("t"), &video);
    let sends = (0..4).map(|i| {
        let (url, body, headers) = (nodes[i % 2].url("/"), body.clone(), fc.clone());
        tokio::spawn(async move { post(&url, body, &headers).await })
    });
    for answer in futures_util::future::join_all(sends).await {
        let answer = answer.unwrap();
        assert_eq!(answer.status, 200, "{}\n{}", answer.text, logs(&nodes));
    }
    let messages = robot.received();
    assert_eq!(messages.len(), 1, "{}", logs(&nodes));
    let text = text_of(&messages[0]);
    for url in [vodapi::PLAY_URL_FD, vodapi::PLAY_URL_HD, vodapi::COVER_URL] {
        assert!(text.contains(&format!("({url})")), "{url} missing as a link target in:\n{text}");
    }
    assert!(text.contains("![Cover]("), "the cover shows as an image: {text}");
    assert_eq!(api.verified("GetPlayInfo").len(), 1, "{:?}", api.calls());
    let call = &api.verified("GetPlayInfo")[0];
    assert_eq!(call.params.get("VideoId"), Some(&video));
    assert_eq!(call.access_key_id, FC_ID, "the invocation's credentials, on FC");

    // 2. The API hangs: the message goes in time, without links, saying so.
    api.set_answer(Answer::Hang);
    let started = Instant::now();
    let answer =
        post(&nodes[0].url("/"), event(vodhook::samples::SUCCEED, &unique("t"), &unique("v")), &fc).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(started.elapsed() < Duration::from_secs(5), "answered after {:?}", started.elapsed());
    let messages = robot.received();
    assert_eq!(messages.len(), 2);
    let text = text_of(&messages[1]);
    assert!(text.contains("Play links unavailable") && !text.contains(vodapi::PLAY_URL_FD), "{text}");
    api.set_answer(Answer::Normal);

    // 3. A failure, delivered twice to each instance: SubmitWorkflowJob exactly once.
    let failed_video = unique("f");
    let failed = event(vodhook::samples::FAILED, &unique("t"), &failed_video);
    for i in 0..4 {
        let answer = post(&nodes[i % 2].url("/"), failed.clone(), &fc).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    let submits = api.verified("SubmitWorkflowJob");
    assert_eq!(submits.len(), 1, "{:?}\n{}", api.calls(), logs(&nodes));
    assert_eq!(submits[0].params.get("MediaId"), Some(&failed_video));
    assert_eq!(submits[0].params.get("WorkflowId").map(String::as_str), Some("wf-6f2a0c1d9e8b4d3a"));

    // 4. The re-run fails too: a new TaskId for the same video and workflow. Notified, not re-run.
    let rerun_failed = event(vodhook::samples::FAILED, &unique("t"), &failed_video);
    let answer = post(&nodes[1].url("/"), rerun_failed, &fc).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json["skipped"], 1, "{}", answer.text);
    assert_eq!(api.verified("SubmitWorkflowJob").len(), 1, "the loop guard stopped the second re-run");
    assert_eq!(robot.received().len(), 4, "both failures were notified");

    // Every call's signature verified; no credential in any log line or answer.
    assert!(api.refused().is_empty(), "{:?}", api.refused());
    let output = logs(&nodes);
    for secret in [ENV_SECRET, FC_SECRET, FC_TOKEN] {
        assert!(!output.contains(secret), "{secret} in the logs");
        assert!(!answer.text.contains(secret));
    }
}

/// Off Function Compute the `x-fc-*` headers are a client's, not FC's: the call is signed with
/// the environment's key, whatever the request says. Errors are retried or not by their code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fc_credential_headers_count_only_on_fc() {
    let redis = tokio::task::block_in_place(RedisServer::start);
    let api = VodApi::start(keys()).await;
    let robot = StandIn::start(ChannelType::Dingtalk).await;
    let server = tokio::task::spawn_blocking({
        let text = config(&redis, &api, &robot);
        move || Vodhook::start_with(Options::config(&text).envs(&env()).plain_logs())
    })
    .await
    .unwrap();
    let forged = vec![
        ("x-fc-access-key-id", FC_ID.to_owned()),
        ("x-fc-access-key-secret", "a-client-made-this-up".to_owned()),
    ];
    // Throttled, then a 500 (both retried within the deadline), then made.
    api.answer_next(1, Answer::Throttling);
    api.answer_next(1, Answer::ServerError);
    let answer =
        post(&server.url("/"), event(vodhook::samples::FAILED, &unique("t"), &unique("f")), &forged).await;
    assert_eq!(answer.status, 200, "{}\n{}", answer.text, server.output());
    let submits = api.verified("SubmitWorkflowJob");
    assert_eq!(submits.len(), 3, "throttled, a 500, made: {:?}", api.calls());
    assert!(submits.iter().all(|c| c.access_key_id == ENV_ID), "{submits:?}");
    // A missing video is permanent: not retried.
    api.answer_next(1, Answer::NotFound);
    let answer =
        post(&server.url("/"), event(vodhook::samples::FAILED, &unique("t"), &unique("f")), &[]).await;
    assert_eq!(answer.json["failed_permanently"], 1, "{}", answer.text);
    assert_eq!(api.verified("SubmitWorkflowJob").len(), 4);
    assert!(!server.output().contains(ENV_SECRET));
}

/// Found by an outside attack: VOD API answers were read whole. A `SubmitWorkflowJob` answering
/// 1 GiB of whitespace took the process to over 1 GiB and counted as a successful call; an HTML
/// page with a 200 did too; `GetPlayInfo` answering 1 GiB took 838 MiB. Now answers are read up
/// to `[vod] max_answer_bytes`: the calls fail (to be retried), memory stays flat, the message
/// goes out without links, and the callback is answered 200 with the call queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_or_foreign_api_answers_fail_the_call_and_cost_no_memory() {
    const GIB: u64 = 1 << 30;
    let redis = tokio::task::block_in_place(RedisServer::start);
    let api = VodApi::start(keys()).await;
    let robot = StandIn::start(ChannelType::Dingtalk).await;
    let dir = tempfile::tempdir().unwrap();
    let nodes = instances(1, &config(&redis, &api, &robot), &dir).await;
    let server = &nodes[0];
    let before = server.peak_rss_kib();
    api.set_answer(Answer::Huge(GIB));
    let started = Instant::now();
    let answer =
        post(&server.url("/"), event(vodhook::samples::FAILED, &unique("t"), &unique("huge")), &[]).await;
    assert_eq!(answer.status, 200, "{}\n{}", answer.text, server.output());
    assert!(started.elapsed() < Duration::from_secs(5), "past VOD's 5 s: {:?}", started.elapsed());
    assert_eq!(answer.json["delivered"], 1, "the DingTalk message only: {}", answer.text);
    assert_eq!(answer.json["queued"], 1, "the call is left for retry: {}", answer.text);
    assert!(server.output().contains("larger than vod.max_answer_bytes"), "{}", server.output());
    // Enrichment answered 1 GiB too: the message goes without links.
    let answer =
        post(&server.url("/"), event(vodhook::samples::SUCCEED, &unique("t"), &unique("huge")), &[]).await;
    assert_eq!((answer.status, &answer.json["delivered"]), (200, &json!(1)), "{}", answer.text);
    let message = text_of(robot.received().last().expect("the success's message"));
    assert!(!message.contains(vodapi::PLAY_URL_HD), "{message}");
    let peak_mib = server.peak_rss_kib() / 1024;
    assert!(peak_mib < 64, "peak RSS {peak_mib} MiB (it was {} MiB before the calls)", before / 1024);

    // A 200 that is not the API's JSON is no success either.
    api.set_answer(Answer::Html);
    let answer =
        post(&server.url("/"), event(vodhook::samples::FAILED, &unique("t"), &unique("html")), &[]).await;
    assert_eq!(answer.json["queued"], 1, "{}", answer.text);
    assert!(server.output().contains("HTTP 200 without the API's JSON"), "{}", server.output());
}
