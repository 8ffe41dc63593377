//! Buttons and their signed links (`[links]`, `buttons`), without a browser: two `vodhook
//! serve` instances sharing a real Redis, and chat stand-ins that check each service's button
//! format. A failure's message carries a `silence` link; GET shows a page and never acts, POST
//! acts once (on any instance), and what is not a valid, live token is refused with nothing
//! done. (`tests/browser.rs` clicks the same page in Chromium.)

mod support;

use serde_json::{Value, json};
use support::redis::RedisServer;
use support::standins::StandIn;
use support::{Cluster, http_client, post};
use vodhook::channel::ChannelType;

pub const SECRET: &str = "0123456789abcdef0123456789abcdef-test";

struct Setup {
    cluster: Cluster,
    ops: StandIn,
    _redis: RedisServer,
}

async fn start() -> Setup {
    let redis = tokio::task::block_in_place(RedisServer::start);
    let ops = StandIn::start(ChannelType::Dingtalk).await;
    let config = format!(
        "[store]\nbackend = \"redis\"\nurl = \"{}\"\nkey_prefix = \"l{}:\"\n\n\
         [links]\nbase_url = \"https://vodhook.example.com\"\nsecret = \"{SECRET}\"\nsilence_for = \"2h\"\n\n{}\n\n\
         [[routes]]\nname = \"all\"\nchannels = [\"ops\"]\nbuttons = [\"silence\", \"watch\"]\n",
        redis.url(),
        std::process::id(),
        ops.channel_toml("ops"),
    );
    let cluster = Cluster::start(2, &config).await;
    Setup { cluster, ops, _redis: redis }
}

/// The `failed` sample as task `task`, titled `title`.
fn failed(task: &str, title: &str) -> String {
    let mut event: Value = serde_json::from_str(vodhook::samples::FAILED).unwrap();
    event["TaskId"] = json!(task);
    let mut input: Value = serde_json::from_str(event["TaskInput"].as_str().unwrap()).unwrap();
    input["Title"] = json!(title);
    event["TaskInput"] = json!(input.to_string());
    event.to_string()
}

/// The token of the first `silence` button of the last message the stand-in received.
fn silence_token(ops: &StandIn) -> String {
    let last = ops.received().pop().expect("a message");
    let card = &last.json["actionCard"];
    let button = card["btns"].as_array().and_then(|b| b.first()).unwrap_or_else(|| panic!("{}", last.json));
    let url = button["actionURL"].as_str().unwrap();
    url.strip_prefix("https://vodhook.example.com/actions/").unwrap_or_else(|| panic!("{url}")).to_owned()
}

async fn get(url: &str) -> (u16, http::HeaderMap, String) {
    let response = http_client().get(url).send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, headers, response.text().await.unwrap())
}

async fn confirm(url: &str) -> (u16, String) {
    let response = http_client()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn silences(setup: &Setup) -> Vec<Value> {
    setup.cluster.cli(&["silence", "list", "--json"]).await.ndjson()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silence_link_shows_a_page_acts_once_and_refuses_what_it_did_not_sign() {
    let setup = start().await;
    let title = "<script>alert(1)</script> launch.mp4";
    let answer = post(&setup.cluster.node(0).url("/"), failed("task-l1", title), &[]).await;
    assert_eq!(answer.json["delivered"], 1, "{}", answer.json);
    let token = silence_token(&setup.ops);
    let page = |node: usize| setup.cluster.node(node).url(&format!("/actions/{token}"));

    // GET never acts, however often.
    for _ in 0..100 {
        let (status, _, _) = get(&page(0)).await;
        assert_eq!(status, 200);
    }
    assert!(silences(&setup).await.is_empty(), "100 GETs made a silence");
    let (_, headers, html) = get(&page(1)).await;
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; launch.mp4"), "{html}");
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("wf-") && html.contains("<form method=\"post\">"), "{html}");
    assert_security_headers(&headers);

    // Refused, nothing done: altered, unsigned, expired, other paths, no token.
    let mut altered = token.clone().into_bytes();
    altered[5] = if altered[5] == b'x' { b'y' } else { b'x' };
    let altered = String::from_utf8(altered).unwrap();
    let expired = expired_token();
    let wrong_secret = link_signed_with("another-secret-0123456789abcdef-0123", 3_600);
    let base = setup.cluster.node(0).url("/actions");
    for (path, status) in [
        (format!("{base}/{altered}"), 403),
        (format!("{base}/{wrong_secret}"), 403),
        (format!("{base}/{}", token.split('.').next().unwrap()), 403),
        (format!("{base}/{expired}"), 410),
        (format!("{base}/{token}/more"), 404),
        (format!("{base}/"), 404),
        (base.clone(), 404),
    ] {
        let (got, headers, body) = get(&path).await;
        assert_eq!(got, status, "GET {path}: {body}");
        assert_security_headers(&headers);
        let (posted, body) = confirm(&path).await;
        assert_eq!(posted, status, "POST {path}: {body}");
        assert!(!body.contains(SECRET) && !body.contains("panicked"), "{body}");
    }
    assert!(silences(&setup).await.is_empty(), "a refused POST made a silence");

    // POST acts once, on whichever instance; a second POST says when it was done.
    let (status, done) = confirm(&page(0)).await;
    assert_eq!(status, 200, "{done}");
    let made = silences(&setup).await;
    assert_eq!(made.len(), 1, "{made:?}");
    assert!(done.contains(made[0]["id"].as_str().unwrap()), "{done}");
    assert_eq!(
        made[0]["matchers"],
        json!(["workflow_id=\"wf-6f2a0c1d9e8b4d3a\"", "error_code=\"InvalidMedia.AudioStreamMissing\""])
    );
    for node in [0, 1] {
        let (status, again) = confirm(&page(node)).await;
        assert_eq!(status, 200);
        assert!(again.contains("Already done at"), "{again}");
    }
    assert_eq!(silences(&setup).await.len(), 1);

    // The silence works: the workflow's next failure is not sent.
    let hushed = post(&setup.cluster.node(1).url("/"), failed("task-l2", "again.mp4"), &[]).await;
    assert_eq!(hushed.json["silenced"], 1, "{}", hushed.json);
}

/// A live silence link for the sample's workflow, valid for an hour, signed with `secret`.
fn link_signed_with(secret: &str, expires_in: i64) -> String {
    let link = vodhook::signed_link::Link {
        act: vodhook::signed_link::Act::Silence,
        video_id: "a1b2c3d4e5f60718293a4b5c6d7e8f90".into(),
        workflow_id: "wf-6f2a0c1d9e8b4d3a".into(),
        error_code: None,
        silence_secs: Some(60),
        title: "t".into(),
        locale: Default::default(),
        expires_at: chrono::Utc::now().timestamp() + expires_in,
    };
    link.sign(&vodhook::redact::Secret::new(secret))
}

/// A token signed with the test's secret that expired a minute ago.
fn expired_token() -> String {
    link_signed_with(SECRET, -60)
}

fn assert_security_headers(headers: &http::HeaderMap) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(header("content-security-policy").starts_with("default-src 'none'"), "{headers:?}");
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("cache-control"), "no-store");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert!(header("content-type").starts_with("text/html"), "{headers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_links_actions_is_reserved_and_not_a_callback() {
    let vodhook = tokio::task::spawn_blocking(support::Vodhook::start).await.unwrap();
    for path in ["/actions", "/actions/", "/actions/abc.def", "/actions/x/y"] {
        let (status, headers, _) = get(&vodhook.url(path)).await;
        assert_eq!(status, 404, "GET {path}");
        assert_security_headers(&headers);
        let answer = post(&vodhook.url(path), vodhook::samples::FAILED.to_owned(), &[]).await;
        assert_eq!(answer.status, 404, "POST {path} is not a callback: {}", answer.text);
    }
    // Elsewhere a POST is still a callback.
    assert_eq!(post(&vodhook.url("/actionsx"), vodhook::samples::FAILED.to_owned(), &[]).await.status, 200);
}

/// Each chat service gets the buttons in its own form, and its stand-in (which enforces that
/// form) accepts them; Slack's blocks also pass Slack's own Block Kit models (`slack_sdk`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_service_writes_its_buttons_its_own_way() {
    let redis = tokio::task::block_in_place(RedisServer::start);
    let kinds = [
        ("ding", ChannelType::Dingtalk, ""),
        ("ding-at", ChannelType::Dingtalk, "mention = { mobiles = [\"13800000000\"] }"),
        ("card", ChannelType::Feishu, ""),
        ("post", ChannelType::Feishu, "msg_type = \"post\""),
        ("wecom", ChannelType::Wecom, ""),
        ("slack", ChannelType::Slack, ""),
        ("hook", ChannelType::Webhook, ""),
    ];
    let mut standins = Vec::new();
    let mut channels = String::new();
    for (name, kind, extra) in kinds {
        let standin = StandIn::start(kind).await;
        channels.push_str(&format!("{}\n{extra}\n\n", standin.channel_toml(name)));
        standins.push((name, standin));
    }
    let names: Vec<String> = kinds.iter().map(|(n, _, _)| format!("{n:?}")).collect();
    let config = format!(
        "[store]\nbackend = \"redis\"\nurl = \"{}\"\n\n\
         [links]\nbase_url = \"https://vodhook.example.com/\"\nsecret = \"{SECRET}\"\n\n{channels}\
         [[routes]]\nname = \"all\"\nchannels = [{}]\nbuttons = [\"silence\"]\n",
        redis.url(),
        names.join(", ")
    );
    let vodhook = tokio::task::spawn_blocking(move || support::Vodhook::serve(&config, &[])).await.unwrap();
    let answer = post(&vodhook.url("/"), failed("task-b1", "launch.mp4"), &[]).await;
    assert_eq!(answer.json["delivered"], 7, "{}\n{}", answer.json, vodhook.output());

    let body = |name: &str| -> Value {
        let (_, standin) = standins.iter().find(|(n, _)| *n == name).unwrap();
        standin
            .received()
            .pop()
            .unwrap_or_else(|| panic!("{name}: nothing accepted: {:?}", standin.requests()))
            .json
    };
    let link = "https://vodhook.example.com/actions/";
    let ding = body("ding");
    assert_eq!(ding["msgtype"], "actionCard", "{ding}");
    assert_eq!(ding["actionCard"]["btns"][0]["title"], "Silence");
    assert!(ding["actionCard"]["btns"][0]["actionURL"].as_str().unwrap().starts_with(link));
    // With a mention: markdown (an actionCard cannot mention), the button a link in the text.
    let ding_at = body("ding-at");
    assert_eq!(ding_at["msgtype"], "markdown", "{ding_at}");
    let text = ding_at["markdown"]["text"].as_str().unwrap();
    assert!(text.contains(&format!("[Silence]({link}")) && text.ends_with("@13800000000"), "{text}");
    let card = body("card");
    let action = card["card"]["elements"].as_array().unwrap().iter().find(|e| e["tag"] == "action").cloned();
    assert!(
        action.is_some_and(|a| a["actions"][0]["behaviors"][0]["default_url"]
            .as_str()
            .unwrap()
            .starts_with(link)),
        "{card}"
    );
    let post_body = body("post");
    let last = post_body
        .pointer("/content/post/zh_cn/content")
        .and_then(Value::as_array)
        .and_then(|p| p.last())
        .cloned();
    assert!(
        last.is_some_and(|p| p[0]["tag"] == "a" && p[0]["href"].as_str().unwrap().starts_with(link)),
        "{post_body}"
    );
    let wecom = body("wecom");
    assert!(wecom["markdown"]["content"].as_str().unwrap().contains(&format!("[Silence]({link}")), "{wecom}");
    let slack = body("slack");
    let actions = slack["blocks"].as_array().unwrap().last().cloned().unwrap();
    assert_eq!(
        (&actions["type"], &actions["elements"][0]["type"]),
        (&json!("actions"), &json!("button")),
        "{slack}"
    );
    assert!(actions["elements"][0]["url"].as_str().unwrap().starts_with(link));
    assert!(body("hook")["links"]["silence"].as_str().unwrap().starts_with(link));
    slack_sdk_accepts(&slack["blocks"]);
}

/// Slack's own Block Kit models (`slack_sdk`, installed into `target/venv` by ./scripts/test)
/// parse `blocks`, validate them (`to_dict` checks every nested element's limits) and give them
/// back unchanged (nothing they do not know).
fn slack_sdk_accepts(blocks: &Value) {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/python");
    let check = "import json, sys\n\
                 from slack_sdk.models.blocks import Block\n\
                 for b in json.load(sys.stdin):\n\
                 \x20   parsed = Block.parse(b).to_dict()\n\
                 \x20   assert parsed == b, (parsed, b)\n\
                 print('ok')\n";
    let mut child = std::process::Command::new(&python)
        .args(["-c", check])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{}: {e} (./scripts/test creates the venv and installs slack_sdk)", python.display())
        });
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), blocks.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "slack_sdk refused the blocks: {}\n{blocks}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_config_says_what_links_and_buttons_need() {
    let dir = tempfile::tempdir().unwrap();
    let check = |links: &str, store: &str, buttons: &str| {
        let file = dir.path().join("c.toml");
        let toml = format!(
            "{store}\n{links}\n[[channels]]\nname = \"log\"\ntype = \"log\"\n[[routes]]\nname = \"r\"\nchannels = [\"log\"]\nbuttons = {buttons}\n"
        );
        std::fs::write(&file, toml).unwrap();
        support::run_cli(dir.path(), &["check-config", file.to_str().unwrap()], &[])
    };
    let redis = "[store]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:6379/0\"";
    let good = format!("[links]\nbase_url = \"https://v.example.com\"\nsecret = \"{SECRET}\"");
    assert_eq!(check(&good, redis, "[\"silence\", \"rerun\", \"watch\"]").code(), Some(0));
    let cases = [
        (
            "[links]\nbase_url = \"https://v.example.com\"\nsecret = \"short\"",
            redis,
            "[]",
            "links.secret: is 5 bytes",
        ),
        (&good[..], "", "[\"silence\"]", "silences live in Redis"),
        ("", redis, "[\"rerun\"]", "\"rerun\" is a signed link: it needs [links]"),
        (
            "[links]\nbase_url = \"v.example.com\"\nsecret = \"0123456789abcdef0123456789abcdef\"",
            redis,
            "[]",
            "links.base_url",
        ),
        (
            "[links]\nbase_url = \"https://v.example.com\"\nsecret = \"0123456789abcdef0123456789abcdef\"\nttl = \"0s\"",
            redis,
            "[]",
            "links.ttl",
        ),
        ("", redis, "[\"applause\"]", "applause"),
    ];
    for (links, store, buttons, expected) in cases {
        let run = check(links, store, buttons);
        assert_eq!(run.code(), Some(1), "{links} {buttons}: {}", run.output());
        assert!(run.stderr.contains(expected), "expected {expected:?} in {}", run.stderr);
        assert!(!run.output().contains(SECRET), "{}", run.output());
    }
    let http = check(&good.replace("https://", "http://"), redis, "[]");
    assert_eq!(http.code(), Some(0), "{}", http.output());
    assert!(http.output().contains("links.base_url: is http://"), "{}", http.output());
}

/// A rerun link whose `SubmitWorkflowJob` VOD keeps refusing with a retryable error goes the way
/// of a `vod` channel's call: retried while the page may wait, then queued in the outbox (the
/// page says so, the link is done), sent by the next drain once VOD takes calls again, exactly
/// once; a second link for the same video and workflow meets the loop guard.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rerun_vod_does_not_take_waits_in_the_outbox_and_goes_out_once() {
    use support::vodapi::{Answer, Key, VodApi};
    const KEY_ID: &str = "LTAI5tLinksKey0001";
    const KEY_SECRET: &str = "links-key-secret-Qv7w2";
    let redis = tokio::task::block_in_place(RedisServer::start);
    let ops = StandIn::start(ChannelType::Dingtalk).await;
    let api = VodApi::start(vec![Key { id: KEY_ID.into(), secret: KEY_SECRET.into(), token: None }]).await;
    let config = format!(
        "[store]\nbackend = \"redis\"\nurl = \"{}\"\n\n[vod]\nendpoint = \"{}\"\n\n\
         [delivery]\ncallback_deadline_ms = 1500\n\n[outbox]\nschedule_secs = [1]\n\n\
         [links]\nbase_url = \"https://vodhook.example.com\"\nsecret = \"{SECRET}\"\nmax_reruns = 1\n\n{}\n\n\
         [[routes]]\nname = \"failures\"\nchannels = [\"ops\"]\nbuttons = [\"rerun\"]\n",
        redis.url(),
        api.url(),
        ops.channel_toml("ops"),
    );
    let env = [("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID), ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", KEY_SECRET)];
    let cluster = Cluster::start_with_env(2, &config, &env).await;
    let rerun_link = |ops: &StandIn| {
        let last = ops.received().pop().expect("a message").json;
        let url = last["actionCard"]["btns"][0]["actionURL"].as_str().map(str::to_owned);
        url.unwrap_or_else(|| panic!("{last}")).replace("https://vodhook.example.com", "")
    };

    let answer = post(&cluster.node(0).url("/"), failed("task-q1", "launch.mp4"), &[]).await;
    assert_eq!(answer.json["delivered"], 1, "{}", answer.json);
    let path = rerun_link(&ops);
    api.set_answer(Answer::ServerError);
    let (status, page) = confirm(&cluster.node(0).url(&path)).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Re-run queued") && page.contains("vodhook outbox list"), "{page}");
    let tried = api.verified("SubmitWorkflowJob").len();
    assert!(tried >= 1, "tried before queueing: {:?}", api.calls());
    let (_, again) = confirm(&cluster.node(1).url(&path)).await;
    assert!(again.contains("Already done at") && again.contains("Re-run queued"), "{again}");
    assert_eq!(api.verified("SubmitWorkflowJob").len(), tried, "a second click calls nothing");
    let queued = cluster.cli(&["outbox", "list", "--json"]).await.ndjson();
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0]["channel"], vodhook::config::RERUN_CHANNEL, "{queued:?}");

    // VOD takes calls again: the next drain submits it, once.
    api.set_answer(Answer::Normal);
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    for _ in 0..2 {
        let drained = cluster.cli(&["drain"]).await;
        assert!(drained.status.success(), "{}", drained.output());
    }
    let calls = api.verified("SubmitWorkflowJob");
    assert_eq!(calls.len(), tried + 1, "{calls:?}");
    let last = calls.last().unwrap();
    assert_eq!(last.params.get("MediaId").map(String::as_str), Some("a1b2c3d4e5f60718293a4b5c6d7e8f90"));
    assert_eq!(last.params.get("WorkflowId").map(String::as_str), Some("wf-6f2a0c1d9e8b4d3a"));
    assert!(cluster.cli(&["outbox", "list", "--json"]).await.ndjson().is_empty());

    // Another failure of the same video and workflow: its link meets the loop guard.
    post(&cluster.node(1).url("/"), failed("task-q2", "launch.mp4"), &[]).await;
    let (status, guarded) = confirm(&cluster.node(1).url(&rerun_link(&ops))).await;
    assert_eq!(status, 200, "{guarded}");
    assert!(guarded.contains("Not re-run") && guarded.contains("max_reruns"), "{guarded}");
    assert_eq!(api.verified("SubmitWorkflowJob").len(), tried + 1, "the loop guard called nothing");
}
