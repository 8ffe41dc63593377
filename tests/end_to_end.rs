//! End to end: the real `vodhook serve` binary, configured with all six channel types, against
//! local stand-ins for DingTalk, Feishu, WeCom, Slack and a Standard Webhooks receiver that check
//! tokens and signatures as the services do. Signed VOD callbacks go in over real sockets; what
//! the stand-ins receive, what vodhook answers and what it logs come out.
//!
//! - one Failed callback → exactly one correct message on each channel, in each service's format;
//!   the same callback again (VOD delivers at least once) → `duplicate`, nothing sent; an event
//!   no route matches → no action;
//! - one summary log line per request, with the counts of every outcome;
//! - DingTalk's and WeCom's 20-a-minute budget holds within one instance;
//! - no secret (auth key, tokens in URLs, signing secrets) in anything vodhook prints.

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sha2::{Digest, Sha256};
use support::standins::{Behaviour, StandIn};
use support::{Answer, Options, Vodhook, callback, fixture, post, run_cli, unix_now, vod_headers};
use vodhook::channel::ChannelType;

/// The callback URL as configured in VOD: what the signature covers (not where vodhook listens).
const CALLBACK_URL: &str = "https://vod-e2e.example.com/vod/callback";
const AUTH_KEY: &str = "e2e-auth-key-3b7f0c";

/// What the Failed fixture (`tests/fixtures/e2e-failed.json`) says, as a person reads it.
const TITLE: &str = "夏季发布会 Keynote – 直播回放 🎥";
const VIDEO_ID: &str = "e2e0f1a2b3c4d5e6f708192a3b4c5d6e";
const TASK_ID: &str = "e2e-task-7d1f3a90c2";
const FAILED_NODE: &str = "VodTranscode_e2e02";
const ERROR_CODE: &str = "InvalidMedia.AudioStreamMissing";
const ERROR_MESSAGE: &str = "No decodable audio stream in the source file.";
/// CreateTime 08:00:01 → FinishTime 08:04:06.
const TASK_DURATION: &str = "4m 5s";
/// The failed node ran 08:00:10 → 08:03:40; the snapshot node 08:00:02 → 08:00:09.
const FAILED_NODE_DURATION: &str = "3m 30s";
const OK_NODE: &str = "VodSnapshot_e2e01";
const OK_NODE_DURATION: &str = "7s";

/// Names of the six channels in the configurations below.
const CHANNELS: [&str; 6] = ["ding", "lark", "wecom", "slack", "hook", "audit"];

/// A stand-in for every HTTP channel type.
struct StandIns {
    ding: StandIn,
    lark: StandIn,
    wecom: StandIn,
    slack: StandIn,
    hook: StandIn,
}

impl StandIns {
    async fn start() -> StandIns {
        StandIns {
            ding: StandIn::start(ChannelType::Dingtalk).await,
            lark: StandIn::start(ChannelType::Feishu).await,
            wecom: StandIn::start(ChannelType::Wecom).await,
            slack: StandIn::start(ChannelType::Slack).await,
            hook: StandIn::start(ChannelType::Webhook).await,
        }
    }

    fn each(&self) -> [(&'static str, &StandIn); 5] {
        [
            ("ding", &self.ding),
            ("lark", &self.lark),
            ("wecom", &self.wecom),
            ("slack", &self.slack),
            ("hook", &self.hook),
        ]
    }

    /// `[auth]`, `extra` settings, the six channels and one route sending Failed workflow events
    /// to all of them.
    fn config(&self, extra: &str) -> String {
        let mut config =
            format!("{extra}\n[auth]\ncallback_url = \"{CALLBACK_URL}\"\nkey = \"{AUTH_KEY}\"\n\n");
        for (name, stand_in) in self.each() {
            config.push_str(&stand_in.channel_toml(name));
            config.push('\n');
        }
        config.push_str("[[channels]]\nname = \"audit\"\ntype = \"log\"\n\n");
        config.push_str(&format!(
            "[[routes]]\nname = \"failures\"\nmatch = {{ event_type = \"WorkflowTaskComplete\", status = \"Failed\" }}\n\
             channels = {CHANNELS:?}\n"
        ));
        config
    }
}

async fn signed(server: &Vodhook, body: &str) -> Answer {
    callback(&server.url("/"), CALLBACK_URL, AUTH_KEY, body).await
}

/// The counts of a response body or summary line, in a fixed order, for one-line comparisons.
fn counts(fields: &Value) -> [(&'static str, i64); 6] {
    ["events", "delivered", "duplicate", "retried", "failed_permanently", "left_for_retry"]
        .map(|name| (name, fields[name].as_i64().unwrap_or_else(|| panic!("no count {name} in {fields}"))))
}

fn expect_counts(
    events: i64,
    delivered: i64,
    duplicate: i64,
    retried: i64,
    failed_permanently: i64,
    left_for_retry: i64,
) -> [(&'static str, i64); 6] {
    [
        ("events", events),
        ("delivered", delivered),
        ("duplicate", duplicate),
        ("retried", retried),
        ("failed_permanently", failed_permanently),
        ("left_for_retry", left_for_retry),
    ]
}

/// Standard Webhooks' `webhook-id` for an action key: `msg_` + the first 16 bytes of its SHA-256
/// in hex (written out here, not taken from vodhook).
fn message_id(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("msg_{}", digest.iter().take(16).map(|b| format!("{b:02x}")).collect::<String>())
}

/// Asserts that `text` says each of `facts`.
#[track_caller]
fn assert_says(service: &str, text: &str, facts: &[&str]) {
    for fact in facts {
        assert!(text.contains(fact), "{service}: {fact:?} missing in:\n{text}");
    }
}

/// The failed node's error code and message follow the failed node on its own line, not some
/// other node's.
#[track_caller]
fn assert_error_under_failed_node(service: &str, text: &str) {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let node = lines
        .iter()
        .position(|l| l.contains(FAILED_NODE))
        .unwrap_or_else(|| panic!("{service}: no line for {FAILED_NODE}:\n{text}"));
    assert!(lines[node].contains(FAILED_NODE_DURATION), "{service}: {}", lines[node]);
    assert!(lines[node].contains("❌"), "{service}: the failed node has no failure marker: {}", lines[node]);
    let error = lines.get(node + 1).copied().unwrap_or_default();
    assert!(
        error.contains(ERROR_CODE) && error.contains(ERROR_MESSAGE),
        "{service}: the line after the failed node should carry its error:\n{text}"
    );
    let ok = lines.iter().find(|l| l.contains(OK_NODE)).unwrap_or_else(|| panic!("{service}: {text}"));
    assert!(ok.contains(OK_NODE_DURATION) && ok.contains("✅"), "{service}: {ok}");
}

/// Everything a person needs to act on the failure, in the body text of a chat message.
const BODY_FACTS: [&str; 7] =
    [VIDEO_ID, TASK_ID, FAILED_NODE, ERROR_CODE, ERROR_MESSAGE, TASK_DURATION, FAILED_NODE_DURATION];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_callback_becomes_one_correct_message_on_each_of_six_channels() {
    let stand_ins = StandIns::start().await;
    let config = stand_ins.config("");
    let server = Vodhook::serve(&config, &[]);
    let failed = fixture("e2e-failed.json");

    // The key vodhook plans for the webhook action (same code path as the server, no sending).
    let config_path = server.config_path().to_str().expect("UTF-8 path").to_owned();
    let fixture_path = support::fixture_path("e2e-failed.json");
    let plan =
        run_cli(server.dir(), &["plan", "--config", &config_path, fixture_path.to_str().unwrap()], &[]);
    assert_eq!(plan.code(), Some(0), "{plan:?}");
    let hook_key = plan
        .ndjson()
        .into_iter()
        .find(|a| a["channel"] == "hook")
        .and_then(|a| a["key"].as_str().map(str::to_owned))
        .expect("a webhook action in the plan");
    assert!(hook_key.contains(TASK_ID), "the key derives from the TaskId: {hook_key}");

    // 1. The signed Failed callback.
    let answer = signed(&server, &failed).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(counts(&answer.json), expect_counts(1, 6, 0, 0, 0, 0), "{}", answer.text);
    assert_eq!(answer.json["actions"], 6);

    for (name, stand_in) in stand_ins.each() {
        assert_eq!(stand_in.rejected(), Vec::<String>::new(), "{name}: the stand-in refused requests");
        assert_eq!(stand_in.requests().len(), 1, "{name}: exactly one request");
        assert_eq!(stand_in.received().len(), 1, "{name}: exactly one accepted message");
    }

    // DingTalk: a markdown message; its title is the notification line.
    let ding = &stand_ins.ding.received()[0].json;
    assert_eq!(ding["msgtype"], "markdown", "{ding}");
    let title = ding["markdown"]["title"].as_str().expect("markdown.title");
    assert_says("dingtalk title", title, &["❌", TITLE]);
    let text = ding["markdown"]["text"].as_str().expect("markdown.text");
    assert_says("dingtalk", text, &["❌", TITLE]);
    assert_says("dingtalk", text, &BODY_FACTS);
    assert_error_under_failed_node("dingtalk", text);

    // Feishu: an interactive card, red header with the title, the facts in a markdown element.
    let lark = &stand_ins.lark.received()[0].json;
    assert_eq!(lark["msg_type"], "interactive", "{lark}");
    let header = &lark["card"]["header"];
    assert_says("feishu header", header["title"]["content"].as_str().expect("header title"), &["❌", TITLE]);
    assert_eq!(header["template"], "red", "{lark}");
    let elements = lark["card"]["elements"].as_array().expect("card elements");
    let text: String = elements
        .iter()
        .filter(|e| e["tag"] == "markdown")
        .filter_map(|e| e["content"].as_str())
        .collect::<Vec<_>>()
        .join("\n");
    assert_says("feishu", &text, &BODY_FACTS);
    assert_error_under_failed_node("feishu", &text);

    // WeCom: markdown within its 4096-byte limit.
    let wecom = &stand_ins.wecom.received()[0].json;
    assert_eq!(wecom["msgtype"], "markdown", "{wecom}");
    let text = wecom["markdown"]["content"].as_str().expect("markdown.content");
    assert!(text.len() <= 4096);
    assert_says("wecom", text, &["❌", TITLE]);
    assert_says("wecom", text, &BODY_FACTS);
    assert_error_under_failed_node("wecom", text);

    // Slack: a notification `text`, a plain-text header block with the title, mrkdwn sections.
    let slack = &stand_ins.slack.received()[0].json;
    assert_says("slack text", slack["text"].as_str().expect("text fallback"), &["❌", TITLE]);
    let blocks = slack["blocks"].as_array().expect("blocks");
    assert_eq!(blocks[0]["type"], "header", "{slack}");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert_says("slack header", blocks[0]["text"]["text"].as_str().unwrap_or(""), &["❌", TITLE]);
    let sections: Vec<&str> = blocks[1..]
        .iter()
        .inspect(|b| assert_eq!(b["type"], "section", "{slack}"))
        .filter_map(|b| b["text"]["text"].as_str())
        .collect();
    let text = sections.join("\n");
    assert_says("slack", &text, &BODY_FACTS);
    assert_error_under_failed_node("slack", &text);

    // Webhook: the document, signed (the stand-in checked it), `webhook-id` = the action's
    // message id, and the same id in the body.
    let hook = &stand_ins.hook.received()[0];
    let id = message_id(&hook_key);
    assert_eq!(hook.headers["webhook-id"].to_str().unwrap(), id);
    let doc = &hook.json;
    assert_eq!(doc["id"], id.as_str(), "{doc}");
    assert_eq!(doc["type"], "WorkflowTaskComplete");
    assert_eq!(doc["event_id"], format!("WorkflowTaskComplete:{TASK_ID}"));
    assert_eq!(doc["route"], "failures");
    assert_eq!((doc["status"].as_str(), doc["ok"].as_bool()), (Some("Failed"), Some(false)));
    let details = &doc["details"];
    assert_eq!(details["title"], TITLE);
    assert_eq!(details["video_id"], VIDEO_ID);
    assert_eq!(details["task_id"], TASK_ID);
    assert_eq!(details["duration"], TASK_DURATION);
    let failed_nodes = details["failed_nodes"].as_array().expect("details.failed_nodes");
    assert_eq!(failed_nodes.len(), 1, "{details}");
    assert_eq!(failed_nodes[0]["name"], FAILED_NODE);
    assert_eq!(failed_nodes[0]["error_code"], ERROR_CODE);
    assert_eq!(failed_nodes[0]["error_message"], ERROR_MESSAGE);
    assert_eq!(failed_nodes[0]["duration"], FAILED_NODE_DURATION);
    let summary = doc["summary"].as_str().expect("summary text");
    assert_says("webhook summary", summary, &["❌", TITLE]);
    assert_says("webhook summary", summary, &BODY_FACTS);
    // The whole event, its embedded JSON decoded.
    assert_eq!(doc["event"]["TaskId"], TASK_ID);
    assert_eq!(
        doc["event"]["ActivityResults"][FAILED_NODE]["Result"]["MessageBody"]["ErrorCode"],
        ERROR_CODE
    );
    assert_eq!(doc["event"]["TaskInput"]["Title"], TITLE);

    // Log: one structured line for the action.
    let actions = server.wait_for_records("action", 1);
    assert_eq!(actions.len(), 1, "{}", server.output());
    let fields = &actions[0]["fields"];
    assert_eq!((fields["channel"].as_str(), fields["route"].as_str()), (Some("audit"), Some("failures")));
    let payload: Value =
        serde_json::from_str(fields["payload"].as_str().expect("payload")).expect("the payload is JSON");
    assert_eq!(payload["status"], "Failed");
    assert_eq!(payload["failed_nodes"], serde_json::json!([FAILED_NODE]));
    let line = payload["message"].as_str().expect("message");
    assert_says(
        "log",
        line,
        &["❌", TITLE, VIDEO_ID, TASK_ID, FAILED_NODE, ERROR_CODE, ERROR_MESSAGE, TASK_DURATION],
    );

    // 2. VOD delivers the same callback again: all duplicates, nothing sent.
    let again = signed(&server, &failed).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(counts(&again.json), expect_counts(1, 0, 6, 0, 0, 0), "{}", again.text);
    for (name, stand_in) in stand_ins.each() {
        assert_eq!(stand_in.requests().len(), 1, "{name}: a duplicate was sent");
    }

    // 3. A Succeed event: the only route matches Failed, so no action at all.
    let succeed = signed(&server, &fixture("e2e-succeed.json")).await;
    assert_eq!(succeed.status, 200, "{}", succeed.text);
    assert_eq!(succeed.json["actions"], 0, "{}", succeed.text);
    assert_eq!(counts(&succeed.json), expect_counts(1, 0, 0, 0, 0, 0));

    // One summary line per request, with the counts of the response.
    let summaries = server.summaries(3);
    assert_eq!(summaries.len(), 3, "{}", server.output());
    assert_eq!(counts(&summaries[0]), expect_counts(1, 6, 0, 0, 0, 0));
    assert_eq!(counts(&summaries[1]), expect_counts(1, 0, 6, 0, 0, 0));
    assert_eq!(counts(&summaries[2]), expect_counts(1, 0, 0, 0, 0, 0));
    assert!(summaries.iter().all(|s| s["duration_ms"].is_u64()), "{summaries:?}");

    // Nothing more was sent or logged as an action.
    for (name, stand_in) in stand_ins.each() {
        assert_eq!(stand_in.requests().len(), 1, "{name}");
    }
    let (status, output) = server.stop();
    assert!(status.success(), "vodhook serve exited with {status}:\n{output}");
    let action_lines = output.lines().filter(|l| l.contains(r#""message":"action""#)).count();
    assert_eq!(action_lines, 1, "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_ends_with_one_summary_line_counting_every_outcome() {
    let stand_ins = StandIns::start().await;
    // Feishu answers 503 once (retried), the webhook fails twice with 503 (retried twice),
    // WeCom says the robot's URL is wrong (a configuration error: not retried), Slack is rate
    // limited with a Retry-After beyond the deadline (the channel is blocked that long: left for
    // VOD to retry).
    stand_ins.lark.fail_next(1, Behaviour::ServerError);
    stand_ins.hook.fail_next(2, Behaviour::ServerError);
    stand_ins.wecom.set_behaviour(Behaviour::ConfigError);
    stand_ins.slack.set_behaviour(Behaviour::RateLimit);
    const {
        assert!(
            support::standins::SLACK_RETRY_AFTER * 1000 > 4000,
            "Slack's Retry-After must outlast the deadline"
        )
    };
    let server = Vodhook::serve(&stand_ins.config("[delivery]\ncallback_deadline_ms = 4000\n"), &[]);
    let failed = fixture("e2e-failed.json");

    let first = signed(&server, &failed).await;
    assert_eq!(first.status, 503, "a retryable failure is left: VOD must deliver again: {}", first.text);
    assert_eq!(counts(&first.json), expect_counts(1, 4, 0, 3, 1, 1), "{}", first.text);
    let summary = &server.summaries(1)[0];
    assert_eq!(counts(summary), expect_counts(1, 4, 0, 3, 1, 1), "{summary}");
    assert!(summary["duration_ms"].is_u64(), "{summary}");
    let loud = server.wait_for_records("delivery failed permanently (configuration error?): not retried", 1);
    assert_eq!(loud[0]["level"], "ERROR");
    assert_eq!(loud[0]["fields"]["channel"], "wecom");
    assert!(loud[0]["fields"]["reason"].as_str().unwrap_or("").contains("93000"), "{}", loud[0]);

    // VOD's retry, once Slack's Retry-After has passed (until then the channel is blocked: no
    // request goes to it): what was delivered is a duplicate, WeCom is still misconfigured,
    // Slack accepts now.
    stand_ins.slack.set_behaviour(Behaviour::Accept);
    tokio::time::sleep(std::time::Duration::from_secs(support::standins::SLACK_RETRY_AFTER)).await;
    let second = signed(&server, &failed).await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(counts(&second.json), expect_counts(1, 1, 4, 0, 1, 0), "{}", second.text);
    let summaries = server.summaries(2);
    assert_eq!(summaries.len(), 2, "one summary line per request:\n{}", server.output());
    assert_eq!(counts(&summaries[1]), expect_counts(1, 1, 4, 0, 1, 0), "{}", summaries[1]);
    // Each summary belongs to its own request.
    let ids: Vec<Value> =
        server.records_with_message("request done").iter().map(|r| r["span"]["request_id"].clone()).collect();
    assert!(ids[0].is_string() && ids[0] != ids[1], "{ids:?}");
    assert_eq!((summaries[0]["status"].as_u64(), summaries[1]["status"].as_u64()), (Some(503), Some(200)));

    // Refused requests end with a summary line too (no events): counting the lines counts requests.
    let forged = callback(&server.url("/"), CALLBACK_URL, "not-the-key", &failed).await;
    assert_eq!(forged.status, 401, "{}", forged.text);
    let garbage = signed(&server, r#"{"EventType": "WorkflowTaskComplete", "Status": "Failed"}"#).await;
    assert_eq!((garbage.status, garbage.json["path"].as_str()), (400, Some("TaskId")), "{}", garbage.text);
    let summaries = server.summaries(4);
    assert_eq!(summaries.len(), 4, "{}", server.output());
    for (summary, status) in summaries[2..].iter().zip([401, 400]) {
        assert_eq!(summary["status"], status, "{summary}");
        assert_eq!(counts(summary), expect_counts(0, 0, 0, 0, 0, 0), "{summary}");
    }

    // Each service got exactly one accepted message over both requests, WeCom none.
    for (name, accepted, requests) in
        [("ding", 1, 1), ("lark", 1, 2), ("wecom", 0, 2), ("slack", 1, 2), ("hook", 1, 3)]
    {
        let stand_in = stand_ins.each().into_iter().find(|(n, _)| *n == name).unwrap().1;
        assert_eq!(stand_in.received().len(), accepted, "{name}: accepted messages");
        assert_eq!(stand_in.requests().len(), requests, "{name}: requests");
    }
}

/// `count` distinct Failed events (TaskIds `e2e-burst-<i>`) as one delivery.
fn burst(count: usize) -> String {
    let template: Value = serde_json::from_str(&fixture("e2e-failed.json")).expect("fixture JSON");
    let events: Vec<Value> = (0..count)
        .map(|i| {
            let mut event = template.clone();
            event["TaskId"] = format!("e2e-burst-{i:02}").into();
            event
        })
        .collect();
    Value::Array(events).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dingtalk_and_wecom_get_at_most_twenty_messages_a_minute() {
    let ding = StandIn::start(ChannelType::Dingtalk).await;
    let wecom = StandIn::start(ChannelType::Wecom).await;
    // DingTalk's budget set explicitly, WeCom's by default. The deadline is shorter than the 3 s
    // a token takes to come back, so the 21st message cannot be sent within it, however slow
    // this machine is.
    let config = format!(
        "[delivery]\ncallback_deadline_ms = 2800\n\n[auth]\ncallback_url = \"{CALLBACK_URL}\"\nkey = \"{AUTH_KEY}\"\n\n\
         {}rate_per_minute = 20\n\n{}\n\
         [[routes]]\nname = \"failures\"\nmatch = {{ status = \"Failed\" }}\nchannels = [\"ding\", \"wecom\"]\n",
        ding.channel_toml("ding"),
        wecom.channel_toml("wecom"),
    );
    let server = Vodhook::serve(&config, &[]);

    let answer = signed(&server, &burst(25)).await;
    assert_eq!(answer.status, 503, "5 messages per robot wait for VOD's retry: {}", answer.text);
    assert_eq!(answer.json["actions"], 50, "{}", answer.text);
    assert_eq!(counts(&answer.json), expect_counts(25, 40, 0, 0, 0, 10), "{}", answer.text);
    for (name, stand_in) in [("dingtalk", &ding), ("wecom", &wecom)] {
        assert_eq!(stand_in.requests().len(), 20, "{name}: the rest must not be sent at all");
        assert_eq!(stand_in.received().len(), 20, "{name}: {:?}", stand_in.rejected());
    }
    // Twenty different events each, not one event twenty times.
    let tasks = |stand_in: &StandIn, field: &str| -> std::collections::BTreeSet<String> {
        stand_in
            .received()
            .iter()
            .filter_map(|r| {
                let text = r.json["markdown"][field].as_str()?;
                text.find("e2e-burst-").map(|at| text[at..at + 12].to_owned())
            })
            .collect()
    };
    assert_eq!(tasks(&ding, "text").len(), 20);
    assert_eq!(tasks(&wecom, "content").len(), 20);
    assert_eq!(counts(&server.summaries(1)[0]), expect_counts(25, 40, 0, 0, 0, 10));
    let waiting = server.wait_for_records("undelivered at the deadline: the sender must retry", 10);
    assert_eq!(waiting.len(), 10, "{}", server.output());
}

/// A `[[channels]]` block whose credentials come from the environment: the stand-in's token in
/// its URL replaced by `${token_var}`, its secret by `${secret_var}`.
fn channel_from_env(
    name: &str,
    kind: ChannelType,
    url: &str,
    token: Option<(&str, &str)>,
    secret_var: Option<&str>,
) -> String {
    let url = match token {
        Some((token, var)) => url.replace(token, &format!("${{{var}}}")),
        None => url.to_owned(),
    };
    let mut block = format!("[[channels]]\nname = \"{name}\"\ntype = \"{kind}\"\nurl = \"{url}\"\n");
    if let Some(var) = secret_var {
        block.push_str(&format!("secret = \"${{{var}}}\"\n"));
    }
    block.push('\n');
    block
}

/// Every way a secret could show up: as is, URL-encoded, base64 (standard and URL-safe), and
/// JSON-escaped.
fn forms(secret: &str) -> Vec<String> {
    let urlencoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let json = serde_json::to_string(secret).expect("JSON string");
    vec![
        secret.to_owned(),
        urlencoded.clone(),
        urlencoded.replace('+', "%20"),
        STANDARD.encode(secret),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
        json.trim_matches('"').to_owned(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_anything_vodhook_prints() {
    let s = StandIns::start().await;
    // A robot over its budget, a bot configured with the wrong secret, a receiver that is down.
    let throttled = StandIn::start(ChannelType::Dingtalk).await;
    throttled.set_behaviour(Behaviour::RateLimit);
    let misconfigured = StandIn::start(ChannelType::Feishu).await;
    let down = support::free_port();

    let auth_key = "e2e-AUTH+key/5c1d9e7a=";
    let wrong_secret = "e2e-wrong-lark-secret-0d4b6f";
    let down_token = "e2e-down-token-a8c2e4f1";
    let down_key = "e2e-down-webhook-signing-key-77";
    let down_secret = format!("whsec_{}", STANDARD.encode(down_key));
    let secret = |stand_in: &StandIn| stand_in.secret().expect("stand-in secret").to_owned();
    let env_owned: Vec<(&str, String)> = vec![
        ("E2E_AUTH_KEY", auth_key.to_owned()),
        ("E2E_DING_TOKEN", s.ding.token().to_owned()),
        ("E2E_DING_SECRET", secret(&s.ding)),
        ("E2E_LARK_TOKEN", s.lark.token().to_owned()),
        ("E2E_LARK_SECRET", secret(&s.lark)),
        ("E2E_WECOM_KEY", s.wecom.token().to_owned()),
        ("E2E_SLACK_TOKEN", s.slack.token().to_owned()),
        ("E2E_HOOK_SECRET", secret(&s.hook)),
        ("E2E_THROTTLED_TOKEN", throttled.token().to_owned()),
        ("E2E_THROTTLED_SECRET", secret(&throttled)),
        ("E2E_BROKEN_TOKEN", misconfigured.token().to_owned()),
        ("E2E_BROKEN_SECRET", wrong_secret.to_owned()),
        ("E2E_DOWN_TOKEN", down_token.to_owned()),
        ("E2E_DOWN_SECRET", down_secret.clone()),
    ];
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let channels = [
        channel_from_env(
            "ding",
            ChannelType::Dingtalk,
            s.ding.url(),
            Some((s.ding.token(), "E2E_DING_TOKEN")),
            Some("E2E_DING_SECRET"),
        ),
        channel_from_env(
            "lark",
            ChannelType::Feishu,
            s.lark.url(),
            Some((s.lark.token(), "E2E_LARK_TOKEN")),
            Some("E2E_LARK_SECRET"),
        ),
        channel_from_env(
            "wecom",
            ChannelType::Wecom,
            s.wecom.url(),
            Some((s.wecom.token(), "E2E_WECOM_KEY")),
            None,
        ),
        channel_from_env(
            "slack",
            ChannelType::Slack,
            s.slack.url(),
            Some((s.slack.token(), "E2E_SLACK_TOKEN")),
            None,
        ),
        channel_from_env("hook", ChannelType::Webhook, s.hook.url(), None, Some("E2E_HOOK_SECRET")),
        channel_from_env(
            "throttled",
            ChannelType::Dingtalk,
            throttled.url(),
            Some((throttled.token(), "E2E_THROTTLED_TOKEN")),
            Some("E2E_THROTTLED_SECRET"),
        ),
        channel_from_env(
            "broken",
            ChannelType::Feishu,
            misconfigured.url(),
            Some((misconfigured.token(), "E2E_BROKEN_TOKEN")),
            Some("E2E_BROKEN_SECRET"),
        ),
        channel_from_env(
            "down",
            ChannelType::Webhook,
            &format!("http://127.0.0.1:{down}/hooks/vod?token={down_token}"),
            Some((down_token, "E2E_DOWN_TOKEN")),
            Some("E2E_DOWN_SECRET"),
        ),
        "[[channels]]\nname = \"audit\"\ntype = \"log\"\n\n".to_owned(),
    ];
    let config = format!(
        "[delivery]\ncallback_deadline_ms = 1500\ninvoke_deadline_ms = 1500\n\n\
         [auth]\ncallback_url = \"{CALLBACK_URL}\"\nkey = \"${{E2E_AUTH_KEY}}\"\n\n{}\
         [[routes]]\nname = \"failures\"\nmatch = {{ status = \"Failed\" }}\n\
         channels = [\"ding\", \"lark\", \"wecom\", \"slack\", \"hook\", \"throttled\", \"broken\", \"down\", \"audit\"]\n",
        channels.concat()
    );
    // As on Function Compute, so that `simulate --via mns` is an event invocation.
    let server = Vodhook::start_with(Options::config(&config).envs(&env).env("RUST_LOG", "trace").on_fc());
    let failed = fixture("e2e-failed.json");
    let mut outputs: Vec<(String, String)> = Vec::new();

    // A full run: six channels delivered, one permanently failing, two left for retry.
    let answer = callback(&server.url("/"), CALLBACK_URL, auth_key, &failed).await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(
        (
            answer.json["delivered"].as_i64(),
            answer.json["failed_permanently"].as_i64(),
            answer.json["left_for_retry"].as_i64()
        ),
        (Some(6), Some(1), Some(2)),
        "{}",
        answer.text
    );
    assert_eq!(misconfigured.rejected().len(), 1, "the wrong secret was used and refused");
    assert_eq!(throttled.requests().len(), 1);
    outputs.push(("response".into(), answer.text));

    // Refused callbacks: a wrong key, a stale timestamp, no signature.
    for (what, headers) in [
        ("wrong key", vod_headers(CALLBACK_URL, "not-the-key", unix_now()).to_vec()),
        ("stale", vod_headers(CALLBACK_URL, auth_key, unix_now() - 3600).to_vec()),
        ("unsigned", vec![]),
    ] {
        let answer = post(&server.url("/"), failed.clone(), &headers).await;
        assert_eq!(answer.status, 401, "{what}: {}", answer.text);
        outputs.push((format!("{what} response"), answer.text));
    }

    // The CLI: simulate (both ways in), plan, check-config on a good and a broken file.
    let dir = server.dir().to_owned();
    let config_path = server.config_path().to_str().expect("UTF-8 path").to_owned();
    let target = server.url("/");
    let simulate = |via: &'static str| {
        let args = [
            "simulate",
            "--target",
            &target,
            "--callback-url",
            CALLBACK_URL,
            "--via",
            via,
            "--example",
            "failed",
        ];
        run_cli(&dir, &args, &[("VODHOOK_AUTH_KEY", auth_key)])
    };
    for via in ["http", "mns"] {
        let run = tokio::task::block_in_place(|| simulate(via));
        assert!(run.stdout.starts_with("503"), "simulate --via {via}: {run:?}");
        outputs.push((format!("simulate --via {via}"), run.output()));
    }
    let fixture_path = support::fixture_path("e2e-failed.json");
    let plan = run_cli(&dir, &["plan", "--config", &config_path, fixture_path.to_str().unwrap()], &env);
    assert_eq!((plan.code(), plan.ndjson().len()), (Some(0), 9), "{plan:?}");
    outputs.push(("plan".into(), plan.output()));
    let check = run_cli(&dir, &["check-config", &config_path], &env);
    assert_eq!(check.code(), Some(0), "{check:?}");
    assert!(
        check.stdout.contains(&format!(
            "ding (dingtalk) → http://{}/…",
            s.ding.url()[7..].split('/').next().unwrap()
        )),
        "{check:?}"
    );
    outputs.push(("check-config".into(), check.output()));

    // A broken configuration: credentials in the wrong places, one variable missing.
    let broken = format!(
        "[auth]\ncallback_url = \"{CALLBACK_URL}\"\nkey = \"${{E2E_AUTH_KEY}}\"\n\n\
         [[channels]]\nname = \"ding\"\ntype = \"dingtalk\"\nurl = \"not a url ${{E2E_DING_TOKEN}}\"\nsecret = \"${{E2E_DING_SECRET}}\"\n\n\
         [[channels]]\nname = \"slack\"\ntype = \"slack\"\nurl = \"ftp://hooks.example.com/services/${{E2E_SLACK_TOKEN}}\"\n\n\
         [[channels]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"https://hooks.example.com/?key=${{E2E_WECOM_KEY}}\"\nsecret = \"${{E2E_LARK_SECRET}}\"\n\n\
         [[channels]]\nname = \"lark\"\ntype = \"feishu\"\nurl = \"https://open.feishu.cn/open-apis/bot/v2/hook/${{E2E_MISSING_TOKEN}}\"\nsecret = \"${{E2E_BROKEN_SECRET}}\"\nmsg_type = \"${{E2E_HOOK_SECRET}}\"\n\n\
         [[routes]]\nname = \"all\"\nchannels = [\"ding\", \"slack\", \"hook\", \"lark\", \"nowhere\"]\n"
    );
    let broken_path = dir.join("e2e-broken.toml");
    std::fs::write(&broken_path, &broken).expect("write the broken configuration");
    let broken_path = broken_path.to_str().expect("UTF-8 path");
    let check = run_cli(&dir, &["check-config", broken_path], &env);
    assert_eq!(check.code(), Some(1), "{check:?}");
    for place in [
        r#"channels[0] "ding".url"#,
        r#"channels[1] "slack".url"#,
        r#"channels[2] "hook".secret"#,
        "E2E_MISSING_TOKEN",
        r#"channels[3] "lark".msg_type"#,
        r#"routes[0] "all".channels[4]"#,
    ] {
        assert!(check.stderr.contains(place), "{place} missing:\n{}", check.stderr);
    }
    outputs.push(("check-config (broken)".into(), check.output()));
    let refused =
        tokio::task::block_in_place(|| Vodhook::try_start_with(Options::config(&broken).envs(&env)));
    let refused = match refused {
        Ok(_) => panic!("vodhook serve started with a broken configuration"),
        Err(failure) => failure,
    };
    assert!(!refused.status.success());
    assert!(refused.output().contains("E2E_MISSING_TOKEN"), "{}", refused.output());
    outputs.push(("serve (broken)".into(), refused.output()));

    let (_, server_output) = tokio::task::block_in_place(|| server.stop());
    // The grep below has something to look at: every failure path was logged.
    for expected in [
        "request done",
        "delivery failed permanently",
        "undelivered at the deadline",
        "callback refused: signature check failed",
        "FC Invoke Start",
    ] {
        assert!(server_output.contains(expected), "{expected:?} not logged:\n{server_output}");
    }
    outputs.push(("vodhook serve".into(), server_output));

    let mut secrets: Vec<String> =
        vec![auth_key.into(), wrong_secret.into(), down_token.into(), down_secret.clone(), down_key.into()];
    secrets.extend(down_secret.strip_prefix("whsec_").map(str::to_owned));
    for stand_in in [&s.ding, &s.lark, &s.wecom, &s.slack, &s.hook, &throttled, &misconfigured] {
        secrets.extend(stand_in.secrets());
    }
    let mut leaks = Vec::new();
    for secret in &secrets {
        for form in forms(secret) {
            for (source, output) in &outputs {
                if output.contains(&form) {
                    let line = output.lines().find(|l| l.contains(&form)).unwrap_or_default();
                    leaks.push(format!("{source}: {form:?} (of {secret:?}) in: {line}"));
                }
            }
        }
    }
    assert!(leaks.is_empty(), "secrets in the output:\n{}", leaks.join("\n"));
}
