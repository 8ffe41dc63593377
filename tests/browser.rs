//! A button's link in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`, which ./scripts/test installs) driven over WebDriver by selenium
//! (`tests/browser/click.py`, from `target/venv`). Two `vodhook serve` instances share a real
//! Redis; a DingTalk stand-in receives the failure's message; the browser opens its button's link,
//! reads the page, confirms, then confirms again on the other instance and on the first: one
//! silence (and the workflow's next failure is silenced), or one correctly signed
//! `SubmitWorkflowJob` at the VOD API stand-in; "already done" after it. Each page's screenshot
//! is kept in a directory the test prints, for a person to look at.

mod support;

use std::path::Path;

use serde_json::{Value, json};
use support::redis::RedisServer;
use support::standins::StandIn;
use support::vodapi::{Key, VodApi};
use support::{Cluster, post};
use vodhook::channel::ChannelType;

const SECRET: &str = "browser-test-secret-0123456789abcdef";
const KEY_ID: &str = "LTAI5tBrowserKey0001";
const KEY_SECRET: &str = "browser-key-secret-Zk3r8";

/// Two instances, a DingTalk stand-in and the VOD API's; failures carry `button`.
struct Setup {
    cluster: Cluster,
    ops: StandIn,
    api: VodApi,
    _redis: RedisServer,
}

async fn start(button: &str) -> Setup {
    let redis = tokio::task::block_in_place(RedisServer::start);
    let ops = StandIn::start(ChannelType::Dingtalk).await;
    let api = VodApi::start(vec![Key { id: KEY_ID.into(), secret: KEY_SECRET.into(), token: None }]).await;
    let config = format!(
        "[store]\nbackend = \"redis\"\nurl = \"{}\"\n\n[vod]\nendpoint = \"{}\"\n\n\
         [links]\nbase_url = \"https://vodhook.example.com\"\nsecret = \"{SECRET}\"\nsilence_for = \"3h\"\n\n{}\n\n\
         [[routes]]\nname = \"failures\"\nmatch = {{ status = \"Failed\" }}\nchannels = [\"ops\"]\nbuttons = [\"{button}\"]\n",
        redis.url(),
        api.url(),
        ops.channel_toml("ops"),
    );
    let env = [("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID), ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", KEY_SECRET)];
    let cluster = Cluster::start_with_env(2, &config, &env).await;
    Setup { cluster, ops, api, _redis: redis }
}

/// Sends a failure, opens its button's link in Chromium on instance 0, then on instance 1,
/// then on 0 again, clicking confirm each time; the pages seen, by step.
async fn click_through(setup: &Setup) -> Vec<Value> {
    let answer = post(&setup.cluster.node(0).url("/"), failed("task-br1"), &[]).await;
    assert_eq!(answer.json["delivered"], 1, "{}", answer.json);
    let message = setup.ops.received().pop().expect("the failure's message").json;
    let url = message["actionCard"]["btns"][0]["actionURL"].as_str().unwrap_or_else(|| panic!("{message}"));
    let path = url.strip_prefix("https://vodhook.example.com").unwrap();
    let shots = tempfile::Builder::new().prefix("vodhook-browser-").tempdir().unwrap().keep();
    println!("screenshots: {}", shots.display());
    let urls = [setup.cluster.node(0).url(path), setup.cluster.node(1).url(path)];
    tokio::task::spawn_blocking(move || click(&shots, &urls)).await.unwrap()
}

fn page<'a>(pages: &'a [Value], step: &str) -> &'a Value {
    pages.iter().find(|p| p["step"] == step).unwrap_or_else(|| panic!("{step}: {pages:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_person_silences_a_failing_workflow_from_the_message_in_chromium() {
    let setup = start("silence").await;
    let pages = click_through(&setup).await;
    let confirm = page(&pages, "1-confirm");
    assert_eq!(confirm["heading"], "Silence workflow wf-6f2a0c1d9e8b4d3a", "{confirm}");
    let text = confirm["text"].as_str().unwrap();
    assert!(
        text.contains("发布会 Keynote 2025 🎬") && text.contains("InvalidMedia.AudioStreamMissing"),
        "{text}"
    );
    assert!(text.contains("3h") && text.contains("Nothing happens until you confirm"), "{text}");

    let silences = setup.cluster.cli(&["silence", "list", "--json"]).await.ndjson();
    assert_eq!(silences.len(), 1, "one click, one silence: {silences:?}");
    let id = silences[0]["id"].as_str().unwrap();
    assert_eq!(page(&pages, "1-result")["heading"], "Done");
    assert!(page(&pages, "1-result")["text"].as_str().unwrap().contains(id), "{pages:#?}");
    for step in ["1-reload", "2-result", "again-result"] {
        assert_eq!(page(&pages, step)["heading"], "Already done", "{}", page(&pages, step));
    }

    let hushed = post(&setup.cluster.node(1).url("/"), failed("task-br2"), &[]).await;
    assert_eq!(hushed.json["silenced"], 1, "{}", hushed.json);
    assert_eq!(setup.ops.received().len(), 1, "nothing sent after the silence");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_person_reruns_a_failed_workflow_from_the_message_in_chromium() {
    let setup = start("rerun").await;
    let pages = click_through(&setup).await;
    let confirm = page(&pages, "1-confirm");
    assert_eq!(confirm["heading"], "Re-run workflow wf-6f2a0c1d9e8b4d3a", "{confirm}");
    assert!(confirm["text"].as_str().unwrap().contains("发布会 Keynote 2025 🎬"), "{confirm}");

    let calls = setup.api.verified("SubmitWorkflowJob");
    assert_eq!(calls.len(), 1, "one call for three clicks on two instances: {calls:?}");
    assert_eq!(calls[0].params.get("MediaId").map(String::as_str), Some("a1b2c3d4e5f60718293a4b5c6d7e8f90"));
    assert_eq!(calls[0].params.get("WorkflowId").map(String::as_str), Some("wf-6f2a0c1d9e8b4d3a"));
    assert!(setup.api.refused().is_empty(), "{:?}", setup.api.refused());
    let result = page(&pages, "1-result");
    assert!(result["text"].as_str().unwrap().contains("RequestId stand-in-submit"), "{result}");
    for step in ["1-reload", "2-result", "again-result"] {
        assert_eq!(page(&pages, step)["heading"], "Already done", "{}", page(&pages, step));
    }
}

fn failed(task: &str) -> String {
    let mut event: Value = serde_json::from_str(vodhook::samples::FAILED).unwrap();
    event["TaskId"] = json!(task);
    event.to_string()
}

/// Runs `tests/browser/click.py` on `urls`; the pages it saw.
fn click(shots: &Path, urls: &[String]) -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("target/venv/bin/python");
    let output = std::process::Command::new(&python)
        .arg(root.join("tests/browser/click.py"))
        .arg(shots)
        .args(urls)
        .output()
        .unwrap_or_else(|e| {
            panic!("{}: {e} (./scripts/test creates the venv with selenium)", python.display())
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}
