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

#[path = "support/e2e.rs"]
mod e2e;
#[path = "support/standins.rs"]
mod standins;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use e2e::{Answer, Server, callback, fixture, post, run_cli, unix_now, vod_headers};
use serde_json::Value;
use sha2::{Digest, Sha256};
use standins::{Behaviour, StandIn};
use vodhook::action::ChannelType;

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

async fn signed(server: &Server, body: &str) -> Answer {
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
    let server = Server::start(&config, &[]);
    let failed = fixture("e2e-failed.json");

    // The key vodhook plans for the webhook action (same code path as the server, no sending).
    let config_path = server.config_path().to_str().expect("UTF-8 path").to_owned();
    let fixture_path = e2e::fixture_path("e2e-failed.json");
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
