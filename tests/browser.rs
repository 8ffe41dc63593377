//! A button's link in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`, which ./scripts/test installs) driven over WebDriver by selenium
//! (`tests/browser/click.py`, from `target/venv`). Two `vodhook serve` instances share a real
//! Redis; a DingTalk stand-in receives the failure's message; the browser opens its `silence`
//! link, reads the page, confirms, then confirms again on the other instance and on the first:
//! one silence, "already done" after it, and the workflow's next failure is silenced. Each page's
//! screenshot is kept in a directory the test prints, for a person to look at.

mod support;

use std::path::Path;

use serde_json::{Value, json};
use support::redis::RedisServer;
use support::standins::StandIn;
use support::{Cluster, post};
use vodhook::channel::ChannelType;

const SECRET: &str = "browser-test-secret-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_person_silences_a_failing_workflow_from_the_message_in_chromium() {
    let redis = tokio::task::block_in_place(RedisServer::start);
    let ops = StandIn::start(ChannelType::Dingtalk).await;
    let config = format!(
        "[store]\nbackend = \"redis\"\nurl = \"{}\"\n\n\
         [links]\nbase_url = \"https://vodhook.example.com\"\nsecret = \"{SECRET}\"\nsilence_for = \"3h\"\n\n{}\n\n\
         [[routes]]\nname = \"failures\"\nmatch = {{ status = \"Failed\" }}\nchannels = [\"ops\"]\nbuttons = [\"silence\"]\n",
        redis.url(),
        ops.channel_toml("ops"),
    );
    let cluster = Cluster::start(2, &config).await;
    let answer = post(&cluster.node(0).url("/"), failed("task-br1"), &[]).await;
    assert_eq!(answer.json["delivered"], 1, "{}", answer.json);
    let message = ops.received().pop().expect("the failure's message").json;
    let url = message["actionCard"]["btns"][0]["actionURL"].as_str().unwrap_or_else(|| panic!("{message}"));
    let path = url.strip_prefix("https://vodhook.example.com").unwrap();

    let shots = tempfile::Builder::new().prefix("vodhook-browser-").tempdir().unwrap().keep();
    println!("screenshots: {}", shots.display());
    let urls = [cluster.node(0).url(path), cluster.node(1).url(path)];
    let pages = tokio::task::spawn_blocking(move || click(&shots, &urls)).await.unwrap();
    let page =
        |step: &str| pages.iter().find(|p| p["step"] == step).unwrap_or_else(|| panic!("{step}: {pages:#?}"));

    let confirm = page("1-confirm");
    assert_eq!(confirm["heading"], "Silence workflow wf-6f2a0c1d9e8b4d3a", "{confirm}");
    let text = confirm["text"].as_str().unwrap();
    assert!(
        text.contains("发布会 Keynote 2025 🎬") && text.contains("InvalidMedia.AudioStreamMissing"),
        "{text}"
    );
    assert!(text.contains("3h") && text.contains("Nothing happens until you confirm"), "{text}");

    let silences = cluster.cli(&["silence", "list", "--json"]).await.ndjson();
    assert_eq!(silences.len(), 1, "one click, one silence: {silences:?}");
    let id = silences[0]["id"].as_str().unwrap();
    assert_eq!(page("1-result")["heading"], "Done");
    assert!(page("1-result")["text"].as_str().unwrap().contains(id), "{}", page("1-result"));
    for step in ["2-result", "again-result"] {
        assert_eq!(page(step)["heading"], "Already done", "{}", page(step));
    }

    let hushed = post(&cluster.node(1).url("/"), failed("task-br2"), &[]).await;
    assert_eq!(hushed.json["silenced"], 1, "{}", hushed.json);
    assert_eq!(ops.received().len(), 1, "nothing sent after the silence");
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
