//! Routing and rendering, end to end through the public API: configuration text in, actions
//! out. Events are built from VOD-shaped JSON with `decode_delivery`, as the service builds them.
//!
//! - a table of events × routes → the expected (route, channel) actions, keys included;
//! - a matrix of single rules × events → which events each rule takes;
//! - snapshots of every default template on a Succeed and a Failed event, under
//!   `tests/snapshots/` (run with `UPDATE_SNAPSHOTS=1` to rewrite them, then review the diff:
//!   it is what users see).

use std::path::PathBuf;

use serde_json::{Value, json};
use vodhook::channel::ChannelType;
use vodhook::event::{Event, decode_delivery};
use vodhook::route::Router;
use vodhook::setup::Setup;
use vodhook::template::digest::Brief;

/// A node: instance name, status, and the error code and message in its `Result`.
type Node<'a> = (&'a str, &'a str, Option<(&'a str, &'a str)>);

/// An expected action: route, channel, channel type.
type Expected<'a> = (&'a str, &'a str, ChannelType);

/// A workflow task event as VOD sends it: `ActivityResults` and `TaskInput` as JSON strings.
fn workflow(task: &str, status: &str, workflow_id: &str, title: &str, nodes: &[Node<'_>]) -> Event {
    let activity_results: serde_json::Map<String, Value> = nodes
        .iter()
        .enumerate()
        .map(|(i, (name, node_status, error))| {
            let activity_id = name.split('_').next().unwrap_or(name);
            let mut result = serde_json::json!({ "Status": if *node_status == "Succeed" { "Finished" } else { "Failed" } });
            if let Some((code, message)) = error {
                result["ErrorCode"] = Value::from(*code);
                result["ErrorMessage"] = Value::from(*message);
            }
            let node = serde_json::json!({
                "Status": node_status,
                "ActivityId": activity_id,
                "StartTime": format!("2025-10-15T01:5{i}:00Z"),
                "EndTime": format!("2025-10-15T01:5{i}:4{i}Z"),
                "Result": result,
            });
            ((*name).to_owned(), node)
        })
        .collect();
    let task_input = serde_json::json!({ "Type": "Media", "Media": "c066a789", "Title": title });
    let body = serde_json::json!({
        "EventType": "WorkflowTaskComplete",
        "EventTime": "2025-10-15T02:00:35Z",
        "WorkflowId": workflow_id,
        "Status": status,
        "VideoId": format!("v-{task}"),
        "TaskId": task,
        "ActivityResults": Value::Object(activity_results).to_string(),
        "TaskInput": task_input.to_string(),
        "CreateTime": "2025-10-15T01:50:00Z",
        "FinishTime": "2025-10-15T01:59:30Z",
        "UserId": 1234567890_u64,
    });
    decode(&body.to_string())
}

fn decode(json: &str) -> Event {
    let mut delivery = decode_delivery(json.as_bytes()).expect("test event decodes");
    assert!(delivery.rejected.is_empty());
    delivery.events.remove(0)
}

fn upload() -> Event {
    decode(
        r#"{"EventType":"FileUploadComplete","EventTime":"2025-10-15T01:49:00Z","VideoId":"v-upload","Status":"success","Size":1024}"#,
    )
}

fn no_env(_: &str) -> Option<String> {
    None
}

const CHANNELS: &str = r#"
[[channels]]
name = "ops"
type = "dingtalk"
url = "https://oapi.dingtalk.com/robot/send?access_token=t"

[[channels]]
name = "team"
type = "feishu"
url = "https://open.feishu.cn/open-apis/bot/v2/hook/x"

[[channels]]
name = "chat"
type = "slack"
url = "https://hooks.slack.com/services/T/B/X"

[[channels]]
name = "wecom"
type = "wecom"
url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"

[[channels]]
name = "hook"
type = "webhook"
url = "https://hooks.example.com/vod"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[[channels]]
name = "log"
type = "log"
"#;

const ROUTES: &str = r#"
[[routes]]
name = "test-noise"
matchers = ['title=~"(?i).*test.*"']
channels = ["log"]

[[routes]]
name = "failures"
match = { event_type = "WorkflowTaskComplete", status = "FAILED" }
channels = ["ops", "chat"]
continue = true

[[routes]]
name = "snapshot-failures"
matchers = ['failed_activity_id="VodSnapshot"']
channels = ["wecom"]

[[routes]]
name = "live"
matchers = ['workflow_id=~"wf-live-.*"', 'status!="failed"']
channels = ["team"]

[[routes]]
name = "audit"
channels = ["hook"]
"#;

fn router(routes: &str) -> Router {
    Setup::from_toml_str(&format!("{CHANNELS}{routes}"), &no_env).expect("test config is valid").router
}

#[test]
fn events_by_routes_give_the_expected_actions() {
    let router = router(ROUTES);
    let snapshot_failed = workflow(
        "t-snap",
        "Failed",
        "wf-live-1",
        "launch.mp4",
        &[
            ("VodTranscode_1", "Succeed", None),
            ("VodSnapshot_2", "Failed", Some(("InvalidParameter", "bad width"))),
        ],
    );
    let translation_failed = workflow(
        "t-trans",
        "Failed",
        "wf-live-3",
        "launch.mp4",
        &[("VideoTranslation_1", "Failed", Some(("NoAudio", "no audio track")))],
    );
    let test_failed =
        workflow("t-test", "failed", "wf-live-9", "Test upload 3.mp4", &[("VodSnapshot_2", "Failed", None)]);
    let succeeded =
        workflow("t-ok", "Succeed", "wf-live-1", "launch.mp4", &[("VodTranscode_1", "Succeed", None)]);
    let canceled = workflow("t-cancel", "Canceled", "wf-live-2", "launch.mp4", &[]);
    let other_workflow = workflow("t-other", "Succeed", "wf-batch-1", "launch.mp4", &[]);

    let table: Vec<(&str, Event, Vec<Expected<'_>>)> = vec![
        (
            "failed snapshot: failures continues, snapshot-failures stops",
            snapshot_failed,
            vec![
                ("failures", "ops", ChannelType::Dingtalk),
                ("failures", "chat", ChannelType::Slack),
                ("snapshot-failures", "wecom", ChannelType::Wecom),
            ],
        ),
        (
            "failed elsewhere: failures continues down to audit",
            translation_failed,
            vec![
                ("failures", "ops", ChannelType::Dingtalk),
                ("failures", "chat", ChannelType::Slack),
                ("audit", "hook", ChannelType::Webhook),
            ],
        ),
        (
            "a test title is swallowed by the first route",
            test_failed,
            vec![("test-noise", "log", ChannelType::Log)],
        ),
        ("live success", succeeded, vec![("live", "team", ChannelType::Feishu)]),
        ("other statuses are not failures", canceled, vec![("live", "team", ChannelType::Feishu)]),
        ("another workflow falls through", other_workflow, vec![("audit", "hook", ChannelType::Webhook)]),
        ("not a workflow event", upload(), vec![("audit", "hook", ChannelType::Webhook)]),
    ];

    for (case, event, expected) in table {
        let actions = router.plan(&event).unwrap_or_else(|e| panic!("{case}: {e}"));
        let got: Vec<Expected<'_>> =
            actions.iter().map(|a| (a.route.as_str(), a.channel.as_str(), a.channel_type)).collect();
        assert_eq!(got, expected, "{case}");
        assert_eq!(router.matching_routes(&event), dedup_routes(&expected), "{case}");
        for action in &actions {
            assert_eq!(action.event, event.identity(), "{case}");
            assert_eq!(
                action.key,
                format!("{}|{}|{}", event.identity(), action.route, action.channel),
                "{case}"
            );
            assert!(action.payload.is_object(), "{case}: {}", action.payload);
        }
    }
}

fn dedup_routes<'a>(expected: &[Expected<'a>]) -> Vec<&'a str> {
    let mut routes: Vec<&str> = expected.iter().map(|(r, _, _)| *r).collect();
    routes.dedup();
    routes
}

#[test]
fn keys_are_stable_across_retries_and_distinct_across_routes() {
    let router = router(ROUTES);
    let make =
        || workflow("t-1", "Failed", "wf-live-1", "a.mp4", &[("VodSnapshot_2", "Failed", Some(("E", "m")))]);
    let first = router.plan(&make()).unwrap();
    let again = router.plan(&make()).unwrap();
    assert_eq!(first, again, "a redelivered event plans the same actions, payloads included");
    let keys: std::collections::HashSet<&str> = first.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(keys.len(), first.len());
    assert!(first.iter().all(|a| a.key.starts_with("WorkflowTaskComplete:t-1|")));
}

/// Each rule alone, against every event: which events it takes.
#[test]
fn each_matcher_takes_the_events_it_says() {
    let events: Vec<(&str, Event)> = vec![
        (
            "failed",
            workflow(
                "t-f",
                "Failed",
                "wf-live-1",
                "发布会 *终版*.mp4",
                &[("VodTranscode_1", "Succeed", None), ("VodSnapshot_2", "Failed", None)],
            ),
        ),
        (
            "succeeded",
            workflow("t-s", "Succeed", "wf-live-1", "cat_video.mov", &[("VodTranscode_1", "Succeed", None)]),
        ),
        ("lowercase", workflow("t-l", "success", "wf-batch-7", "test clip.mp4", &[])),
        ("upload", upload()),
    ];
    let rules: Vec<(&str, Vec<&str>)> = vec![
        ("", vec!["failed", "succeeded", "lowercase", "upload"]),
        (r#"match = { status = "failed" }"#, vec!["failed"]),
        (r#"match = { status = "SUCCEED" }"#, vec!["succeeded", "lowercase", "upload"]),
        (r#"matchers = ['status="success"']"#, vec!["succeeded", "lowercase", "upload"]),
        (r#"matchers = ['status=~"succe.*"']"#, vec!["succeeded", "lowercase", "upload"]),
        (r#"match = { event_type = "FileUploadComplete" }"#, vec!["upload"]),
        (r#"matchers = ['event_type!="WorkflowTaskComplete"']"#, vec!["upload"]),
        (r#"match = { title = "*.mp4" }"#, vec!["failed", "lowercase"]),
        (r#"match = { title = "发布会*" }"#, vec!["failed"]),
        (r#"match = { title = "cat?video.mov" }"#, vec!["succeeded"]),
        (r#"matchers = ['title!~".*test.*"']"#, vec!["failed", "succeeded", "upload"]),
        (r#"match = { workflow_id = "wf-live-1" }"#, vec!["failed", "succeeded"]),
        (r#"matchers = ['workflow_id=~"wf-"']"#, vec![]),
        (r#"matchers = ['workflow_id=~"wf-.*"']"#, vec!["failed", "succeeded", "lowercase"]),
        (r#"matchers = ['workflow_id!~"wf-live-\d+"']"#, vec!["lowercase", "upload"]),
        (r#"match = { video_id = "v-upload" }"#, vec!["upload"]),
        (r#"match = { activity_id = "VodTranscode" }"#, vec!["failed", "succeeded"]),
        (r#"matchers = ['activity_id!="VodSnapshot"']"#, vec!["succeeded", "lowercase", "upload"]),
        (r#"match = { failed_activity_id = "VodSnapshot" }"#, vec!["failed"]),
        (r#"matchers = ['failed_activity_id=~"Vod.*"']"#, vec!["failed"]),
        (
            r#"match = { event_type = "WorkflowTaskComplete" }
matchers = ['status!="Failed"', 'title=~".*\.mp4"']"#,
            vec!["lowercase"],
        ),
    ];
    for (rule, expected) in rules {
        let router = router(&format!("[[routes]]\nname = \"r\"\nchannels = [\"log\"]\n{rule}\n"));
        let taken: Vec<&str> = events
            .iter()
            .filter(|(_, event)| !router.plan(event).expect("renders").is_empty())
            .map(|(name, _)| *name)
            .collect();
        assert_eq!(taken, expected, "rule: {rule}");
    }
}

#[test]
fn a_broken_route_is_a_config_error_not_a_panic() {
    for (routes, expected) in [
        (
            "[[routes]]\nname = \"r\"\nchannels = [\"log\"]\nmatch = { colour = \"red\" }\n",
            "unknown field `colour`",
        ),
        ("[[routes]]\nname = \"r\"\nchannels = [\"log\"]\nmatchers = ['title=~\"[\"']\n", "invalid regex"),
        ("[[routes]]\nname = \"r\"\nchannels = [\"nope\"]\n", "unknown channel \"nope\""),
        ("[[routes]]\nname = \"r\"\nchannels = []\n", "is empty"),
    ] {
        let err = Setup::from_toml_str(&format!("{CHANNELS}{routes}"), &no_env).unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Snapshots of the default templates.

/// A failed task whose title has markdown specials and CJK, a node error with quotes, and a
/// node in a status VOD may add later.
fn snapshot_failed() -> Event {
    workflow(
        "0f5da6c2e4b8",
        "Failed",
        "wf-5c1e0b7d9a",
        "新品发布会 *终版* [v2] <cut> _draft_.mp4",
        &[
            ("VodTranscode_8d1c0", "Succeed", None),
            (
                "VodSnapshot_53e77",
                "Failed",
                Some(("InvalidParameter.Width", "The parameter \"Width\" must be between 1 and 4096.")),
            ),
            ("VodAudit_91aa2", "Skipped", None),
        ],
    )
}

fn snapshot_succeeded() -> Event {
    workflow(
        "7c3e9a1b2d4f",
        "Succeed",
        "wf-5c1e0b7d9a",
        "猫咪日常_第3集.mp4",
        &[("VodTranscode_8d1c0", "Succeed", None), ("VodSnapshot_53e77", "Succeed", None)],
    )
}

const SNAPSHOT_CHANNELS: &str = r#"
[[channels]]
name = "dingtalk"
type = "dingtalk"
url = "https://oapi.dingtalk.com/robot/send?access_token=t"

[[channels]]
name = "feishu"
type = "feishu"
url = "https://open.feishu.cn/open-apis/bot/v2/hook/x"

[[channels]]
name = "feishu-post"
type = "feishu"
msg_type = "post"
url = "https://open.feishu.cn/open-apis/bot/v2/hook/y"

[[channels]]
name = "wecom"
type = "wecom"
url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"

[[channels]]
name = "slack"
type = "slack"
url = "https://hooks.slack.com/services/T/B/X"

[[channels]]
name = "webhook"
type = "webhook"
url = "https://hooks.example.com/vod"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[[channels]]
name = "log"
type = "log"

[[routes]]
name = "all"
channels = ["dingtalk", "feishu", "feishu-post", "wecom", "slack", "webhook", "log"]
"#;

#[test]
fn default_templates_match_their_snapshots() {
    let router = Setup::from_toml_str(SNAPSHOT_CHANNELS, &no_env).expect("valid").router;
    let mut mismatches = Vec::new();
    for (case, event) in
        [("succeed", snapshot_succeeded()), ("failed", snapshot_failed()), ("upload", upload())]
    {
        let actions = router.plan(&event).expect("renders");
        assert_eq!(actions.len(), 7);
        for action in actions {
            let name = format!("{}-{case}", action.channel);
            if let Err(message) = check_snapshot(&name, &action.payload) {
                mismatches.push(message);
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}

/// The built-in messages in every locale and offset: `<channel>-<case>.<locale>[+0800].snap`
/// (English in UTC is the set above, unchanged by locales).
#[test]
fn localized_built_in_messages_match_their_snapshots() {
    let mut mismatches = Vec::new();
    for (locale, offset, suffix) in
        [("en", "+08:00", "en+0800"), ("zh-CN", "Z", "zh-CN"), ("zh-CN", "+08:00", "zh-CN+0800")]
    {
        let toml =
            format!("[messages]\nlocale = \"{locale}\"\nutc_offset = \"{offset}\"\n{SNAPSHOT_CHANNELS}");
        let router = Setup::from_toml_str(&toml, &no_env).expect("valid").router;
        for (case, event) in [("succeed", snapshot_succeeded()), ("failed", snapshot_failed())] {
            for action in router.plan(&event).expect("renders") {
                let name = format!("{}-{case}.{suffix}", action.channel);
                if let Err(message) = check_snapshot(&name, &action.payload) {
                    mismatches.push(message);
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}

/// A failure message that mentions people, per service and locale: `mention-<channel>.<locale>.snap`
/// (each channel's own list and the route's, in the service's own form).
#[test]
fn mentioned_messages_match_their_snapshots() {
    let mut channels = SNAPSHOT_CHANNELS.to_owned();
    for (channel, mention) in [
        ("dingtalk", r#"{ mobiles = ["13800000000"], user_ids = ["manager4711"] }"#),
        ("feishu", r#"{ user_ids = ["ou_7d8a6e6df7621556ce0d21922b676706"], all = true }"#),
        ("feishu-post", r#"{ user_ids = ["ou_7d8a6e6df7621556ce0d21922b676706"], all = true }"#),
        ("wecom", r#"{ user_ids = ["wangwu"] }"#),
        ("slack", r#"{ user_ids = ["U024BE7LH"], groups = ["SAZ94GDB8"], all = true }"#),
        ("webhook", r#"{ user_ids = ["oncall-team"], mobiles = ["13800000000"] }"#),
        ("log", r#"{ user_ids = ["oncall-team"] }"#),
    ] {
        let entry = format!("name = \"{channel}\"\n");
        channels = channels.replacen(&entry, &format!("{entry}mention = {mention}\n"), 1);
    }
    let channels = channels.replace(
        "channels = [\"dingtalk\", \"feishu\", \"feishu-post\", \"wecom\", \"slack\", \"webhook\", \"log\"]",
        "channels = [\"dingtalk\", \"feishu\", \"feishu-post\", \"wecom\", \"slack\", \"webhook\", \"log\"]\nmention = { user_ids = [\"oncall01\"] }",
    );
    let mut mismatches = Vec::new();
    for locale in ["en", "zh-CN"] {
        let toml = format!("[messages]\nlocale = \"{locale}\"\n{channels}");
        let router = Setup::from_toml_str(&toml, &no_env).expect("valid").router;
        let actions = router.plan(&snapshot_failed()).expect("renders");
        assert_eq!(actions.len(), 7);
        for action in actions {
            if let Err(message) =
                check_snapshot(&format!("mention-{}.{locale}", action.channel), &action.payload)
            {
                mismatches.push(message);
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}

/// A resolved notice per service and locale: `resolved-<channel>.<locale>.snap` (the success of a
/// re-run, resolving two failures, the first 1 h 5 min before it).
#[test]
fn resolved_notices_match_their_snapshots() {
    let resolution = vodhook::template::Resolution {
        resolved: true,
        resolves: vec!["task-1f0a".to_owned(), "task-2b7c".to_owned()],
        resolved_after_secs: Some(3900),
    };
    let mut mismatches = Vec::new();
    for locale in ["en", "zh-CN"] {
        // Only a route with `send_resolved` makes resolved notices (their parts are compiled for it).
        let channels =
            SNAPSHOT_CHANNELS.replace("name = \"all\"\n", "name = \"all\"\nsend_resolved = true\n");
        let toml = format!("[messages]\nlocale = \"{locale}\"\n{channels}");
        let router = Setup::from_toml_str(&toml, &no_env).expect("valid").router;
        for channel in ["dingtalk", "feishu", "feishu-post", "wecom", "slack", "webhook", "log"] {
            let event = snapshot_succeeded();
            let notice =
                router.resolved(&event, "all", channel, resolution.clone(), "k".to_owned()).expect("planned");
            let action = router.render(&event, &notice, None).expect("renders");
            if let Err(message) = check_snapshot(&format!("resolved-{channel}.{locale}"), &action.payload) {
                mismatches.push(message);
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}

/// A group's message per chat service and locale (`group_by`): the digest of its members, the
/// workflow's failure first. `group-<channel>.<locale>.snap`.
#[test]
fn grouped_messages_match_their_snapshots() {
    let mut events = vec![snapshot_failed()];
    for node in ["generic-transcode-complete.json", "generic-snapshot-complete.json"] {
        let bytes = std::fs::read(format!("{}/tests/fixtures/{node}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        events.extend(decode_delivery(&bytes).unwrap().events);
    }
    let briefs: Vec<Brief> =
        events.iter().map(|e| Brief::of(&e.summary(), e.status() == Some("Failed"))).collect();
    let refs: Vec<&Brief> = briefs.iter().collect();
    let mut mismatches = Vec::new();
    for locale in ["en", "zh-CN"] {
        let toml = format!("[messages]\nlocale = \"{locale}\"\n{SNAPSHOT_CHANNELS}");
        let router = Setup::from_toml_str(&toml, &no_env).expect("valid").router;
        for channel in ["dingtalk", "feishu", "feishu-post", "wecom", "slack"] {
            let body = router.digest(channel, &refs).expect("renders").expect("fits");
            if let Err(message) = check_snapshot(&format!("group-{channel}.{locale}"), &body) {
                mismatches.push(message);
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}

/// The snapshot text: the payload as pretty JSON, then every multi-line string in it as it
/// reads (the JSON escapes make markdown hard to review).
fn snapshot_text(payload: &Value) -> String {
    let mut out = serde_json::to_string_pretty(payload).unwrap_or_default();
    out.push('\n');
    let mut texts = Vec::new();
    collect_texts(payload, String::new(), &mut texts);
    for (path, text) in texts {
        out.push_str(&format!("\n----- {path} -----\n{text}\n"));
    }
    out
}

fn collect_texts(value: &Value, path: String, out: &mut Vec<(String, String)>) {
    match value {
        Value::String(s) if s.contains('\n') => out.push((path, s.clone())),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_texts(item, format!("{path}[{i}]"), out);
            }
        }
        // The decoded event is the test's input, not rendered text.
        Value::Object(map) => {
            for (key, item) in map {
                if path.is_empty() && key == "event" {
                    continue;
                }
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                collect_texts(item, child, out);
            }
        }
        _ => {}
    }
}

fn check_snapshot(name: &str, payload: &Value) -> Result<(), String> {
    let path: PathBuf =
        [env!("CARGO_MANIFEST_DIR"), "tests", "snapshots", &format!("{name}.snap")].iter().collect();
    let actual = snapshot_text(payload);
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    match std::fs::read_to_string(&path) {
        Ok(expected) if expected == actual => Ok(()),
        Ok(_) if update => write(&path, &actual),
        Err(_) if update => write(&path, &actual),
        Ok(expected) => Err(format!(
            "snapshot {name} differs (UPDATE_SNAPSHOTS=1 rewrites it; review the diff):\n--- expected\n{expected}\n--- actual\n{actual}"
        )),
        Err(_) => {
            Err(format!("snapshot {} is missing (UPDATE_SNAPSHOTS=1 writes it):\n{actual}", path.display()))
        }
    }
}

fn write(path: &std::path::Path, text: &str) -> Result<(), String> {
    std::fs::create_dir_all(path.parent().unwrap_or(path)).map_err(|e| e.to_string())?;
    std::fs::write(path, text).map_err(|e| e.to_string())
}

#[test]
fn channel_limits_and_shapes_hold_for_the_defaults() {
    let router = Setup::from_toml_str(SNAPSHOT_CHANNELS, &no_env).expect("valid").router;
    let actions = router.plan(&snapshot_failed()).expect("renders");
    let by_channel = |name: &str| &actions.iter().find(|a| a.channel == name).expect("action").payload;

    let dingtalk = by_channel("dingtalk");
    assert_eq!(dingtalk["msgtype"], "markdown");
    assert!(dingtalk["markdown"]["title"].as_str().unwrap().starts_with("❌ "));
    let text = dingtalk["markdown"]["text"].as_str().unwrap();
    assert!(text.contains(r"新品发布会 \*终版\* \[v2\] \<cut\> \_draft\_.mp4"), "{text}");
    assert!(text.contains("InvalidParameter.Width"));
    assert!(text.contains("⚠️ VodAudit_91aa2 · Skipped"));

    let feishu = by_channel("feishu");
    assert_eq!(feishu["msg_type"], "interactive");
    assert_eq!(feishu["card"]["header"]["template"], "red");
    // The header is plain text: the title exactly as it is.
    let header = feishu["card"]["header"]["title"]["content"].as_str().unwrap();
    assert!(header.ends_with("新品发布会 *终版* [v2] <cut> _draft_.mp4"), "{header}");

    let post = by_channel("feishu-post");
    assert_eq!(post["msg_type"], "post");
    assert!(post["content"]["post"]["zh_cn"]["content"].as_array().unwrap().len() > 5);

    let wecom = by_channel("wecom");
    assert!(wecom["markdown"]["content"].as_str().unwrap().len() <= 4096);

    let slack = by_channel("slack");
    assert_eq!(slack["blocks"][0]["type"], "header");
    let section = slack["blocks"][1]["text"]["text"].as_str().unwrap();
    assert!(section.contains("*Status:* Failed") && !section.contains("**"), "{section}");
    assert!(slack["text"].as_str().unwrap().contains("&lt;cut&gt;"), "the notification text is mrkdwn");

    let webhook = by_channel("webhook");
    let action = actions.iter().find(|a| a.channel == "webhook").unwrap();
    assert_eq!(webhook["id"], action.message_id());
    assert_eq!(webhook["type"], "WorkflowTaskComplete");
    assert_eq!(webhook["event"]["TaskInput"]["Title"], "新品发布会 *终版* [v2] <cut> _draft_.mp4");
    assert_eq!(webhook["details"]["failed_nodes"][0]["error_code"], "InvalidParameter.Width");

    let log = by_channel("log");
    assert!(!log["message"].as_str().unwrap().contains('\n'));
    assert_eq!(log["event"], "WorkflowTaskComplete:0f5da6c2e4b8");
}

/// A 100,000-character title (quotes, CJK, markup), 40 nodes whose error messages are 5,000
/// characters each: every channel's body still fits its service's limit, so the message is sent
/// (cut, and saying so) instead of refused for good. (Before, the title made a 318 KB DingTalk
/// body and a 301 KB Feishu card.)
#[test]
fn oversized_fields_stay_within_every_services_limit() {
    let title = format!("\"标题\" *x* <@all> {}", "长".repeat(100_000));
    let message = format!("\"{}\"", "错误 ".repeat(2_500));
    let names: Vec<String> = (0..40).map(|i| format!("VodTranscode_{i:02}")).collect();
    let nodes: Vec<Node<'_>> =
        names.iter().map(|n| (n.as_str(), "Failed", Some(("InvalidParameter", message.as_str())))).collect();
    let event = workflow("huge", "Failed", "wf-huge", &title, &nodes);
    // In English and in Chinese (whose characters are 3 bytes each in UTF-8: the limits that
    // count bytes must still hold).
    let zh = format!("[messages]\nlocale = \"zh-CN\"\nutc_offset = \"+08:00\"\n{SNAPSHOT_CHANNELS}");
    let routers = [SNAPSHOT_CHANNELS, zh.as_str()]
        .map(|toml| Setup::from_toml_str(toml, &no_env).expect("valid").router);
    for action in routers.iter().flat_map(|router| router.plan(&event).expect("renders")) {
        let body = &action.payload;
        let bytes = serde_json::to_vec(body).unwrap().len();
        let chars = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
        match action.channel.as_str() {
            "dingtalk" => {
                assert!(bytes <= 20_000, "dingtalk: {bytes} bytes");
                assert!(chars(&body["markdown"]["title"]) <= 200);
            }
            "feishu" | "feishu-post" => assert!(bytes <= 20_000 - 96, "{}: {bytes} bytes", action.channel),
            "wecom" => assert!(body["markdown"]["content"].as_str().unwrap().len() <= 4096),
            "slack" => {
                let blocks = body["blocks"].as_array().unwrap();
                assert!(blocks.len() <= 50);
                assert!(chars(&blocks[0]["text"]["text"]) <= 150);
                assert!(blocks[1..].iter().all(|b| chars(&b["text"]["text"]) <= 3000));
                assert!(chars(&body["text"]) <= 3000 * 5, "slack text");
            }
            "webhook" => assert!(bytes <= 256 * 1024 || body["event"].is_null(), "webhook: {bytes} bytes"),
            _ => {}
        }
        if action.channel != "log" && action.channel != "webhook" {
            assert!(body.to_string().contains('…'), "{}: cut without a mark", action.channel);
        }
    }
}

/// The events of the digest snapshots: failures of one workflow with two error codes, and a
/// success.
fn digest_events() -> Vec<Event> {
    vec![
        snapshot_failed(),
        workflow(
            "1a2b3c4d5e6f",
            "Failed",
            "wf-5c1e0b7d9a",
            "第二集.mp4",
            &[(
                "VodSnapshot_53e77",
                "Failed",
                Some(("InvalidParameter.Width", "The parameter \"Width\" must be between 1 and 4096.")),
            )],
        ),
        workflow(
            "9f8e7d6c5b4a",
            "Failed",
            "wf-5c1e0b7d9a",
            "trailer_final.mp4",
            &[("VodTranscode_8d1c0", "Failed", Some(("TranscodeFailed", "source codec unsupported")))],
        ),
        workflow(
            "0a0b0c0d0e0f",
            "Failed",
            "wf-5c1e0b7d9a",
            "第三集.mp4",
            &[(
                "VodSnapshot_53e77",
                "Failed",
                Some(("InvalidParameter.Width", "The parameter \"Width\" must be between 1 and 4096.")),
            )],
        ),
        snapshot_succeeded(),
    ]
}

/// The built-in digests of every chat channel, in English and Chinese: three events with one
/// failure in common, one with another, one success (`digest-<channel>.<locale>.snap`).
#[test]
fn built_in_digests_match_their_snapshots() {
    let events = digest_events();
    let mut mismatches = Vec::new();
    for locale in ["en", "zh-CN"] {
        let toml = format!("[messages]\nlocale = \"{locale}\"\n{SNAPSHOT_CHANNELS}");
        let router = Setup::from_toml_str(&toml, &no_env).expect("valid").router;
        for channel in ["dingtalk", "feishu", "feishu-post", "wecom", "slack"] {
            let briefs: Vec<vodhook::template::digest::Brief> = events
                .iter()
                .map(|e| {
                    let actions = router.plan(e).expect("renders");
                    let action = actions.into_iter().find(|a| a.channel == channel).expect("planned");
                    action.brief.expect("chat channels carry a brief")
                })
                .collect();
            let refs: Vec<&vodhook::template::digest::Brief> = briefs.iter().collect();
            let body = router.digest(channel, &refs).expect("renders").expect("fits");
            if let Err(message) = check_snapshot(&format!("digest-{channel}.{locale}"), &body) {
                mismatches.push(message);
            }
        }
        for channel in ["webhook", "log"] {
            let actions = router.plan(&snapshot_failed()).expect("renders");
            assert!(actions.iter().find(|a| a.channel == channel).is_some_and(|a| a.brief.is_none()));
            assert!(router.digest(channel, &[]).is_err(), "{channel} sends no digests");
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}

/// A digest is never cut: one that would not fit the service's limit whole is refused (the
/// dispatcher then sends fewer events in it), and one that fits names every event once.
#[test]
fn a_digest_fits_whole_or_not_at_all() {
    let router = Setup::from_toml_str(SNAPSHOT_CHANNELS, &no_env).expect("valid").router;
    let briefs: Vec<vodhook::template::digest::Brief> = (0..800)
        .map(|i| {
            let event = workflow(
                &format!("task{i:04}"),
                "Failed",
                "wf-1",
                &format!("video {i}.mp4"),
                &[("VodSnapshot_53e77", "Failed", Some(("InvalidParameter", "source language unsupported")))],
            );
            router.plan(&event).unwrap().into_iter().find(|a| a.channel == "dingtalk").unwrap().brief.unwrap()
        })
        .collect();
    let all: Vec<&vodhook::template::digest::Brief> = briefs.iter().collect();
    assert!(router.digest("dingtalk", &all).unwrap().is_none(), "800 events do not fit 20,000 bytes");
    let body = router.digest("dingtalk", &all[..100]).unwrap().expect("100 fit");
    assert!(serde_json::to_vec(&body).unwrap().len() <= 20_000);
    let text = body["markdown"]["text"].as_str().unwrap();
    assert!(text.contains("100 × VodSnapshot_53e77 InvalidParameter: source language unsupported"), "{text}");
    for i in 0..100 {
        assert_eq!(text.matches(&format!("task{i:04}")).count(), 1, "task{i:04} in {text}");
    }
    for channel in ["wecom", "slack", "feishu"] {
        assert!(router.digest(channel, &all).unwrap().is_none(), "{channel}");
        assert!(router.digest(channel, &all[..10]).unwrap().is_some(), "{channel}");
    }
}

/// What the VOD API said of a video, as the dispatcher hands it to templates: two streams and a
/// cover, signed URLs with `_`, `&` and `=` in them.
fn play_info() -> Value {
    serde_json::json!({
        "available": true,
        "video_id": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
        "title": "猫咪日常_第3集.mp4",
        "cover_url": "https://img.example.com/snapshot/cover_00001.jpg?auth_key=1733160000-0-0-7e&x=1",
        "status": "Normal",
        "duration_secs": 135.6,
        "play_urls": [
            {"url": "https://vod.example.com/sv/5a_1/video_FD.m3u8?auth_key=1733160000-0-0-9f_a&x=1", "definition": "FD", "format": "m3u8", "width": 640, "height": 360, "duration_secs": 135.6, "size": 1234567, "bitrate": 450.5},
            {"url": "https://vod.example.com/sv/5a_1/video_HD.mp4?auth_key=1733160000-0-0-b2=c", "definition": "HD", "format": "mp4", "width": 1920, "height": 1080, "duration_secs": 135.6, "size": 9876543, "bitrate": 2100.0}
        ],
        "expires_at": "2026-12-02T16:00:00Z"
    })
}

/// The built-in messages with play links (`[vod] enrich`), and without them when the API failed:
/// `<channel>-succeed.links.snap`, `<channel>-succeed.no-links.snap`, in English and in Chinese
/// at +08:00. Every link's URL reads back exactly (after the markup's own `&amp;` on Slack).
#[test]
fn messages_with_play_links_match_their_snapshots() {
    let video = play_info();
    let down = serde_json::json!({"available": false, "video_id": "a1b2", "reason": "VOD GetPlayInfo: the API timed out"});
    let mut mismatches = Vec::new();
    for (prefix, suffix) in
        [("", ""), ("[messages]\nlocale = \"zh-CN\"\nutc_offset = \"+08:00\"\n", ".zh-CN+0800")]
    {
        let toml = format!("[vod]\nenrich = true\n{prefix}{SNAPSHOT_CHANNELS}");
        let router = Setup::from_toml_str(&toml, &no_env).expect("valid").router;
        let event = snapshot_succeeded();
        for action in router.plan(&event).expect("renders") {
            for (case, info) in [("links", &video), ("no-links", &down)] {
                let payload = router.render(&event, &action, Some(info)).expect("renders").payload;
                if case == "links" && action.channel != "log" {
                    let text = serde_json::to_string(&payload).unwrap().replace("&amp;", "&");
                    for p in video["play_urls"].as_array().unwrap() {
                        let url = serde_json::to_string(p["url"].as_str().unwrap()).unwrap();
                        assert!(text.contains(url.trim_matches('"')), "{}: {url} in {text}", action.channel);
                    }
                }
                if let Err(message) =
                    check_snapshot(&format!("{}-succeed.{case}{suffix}", action.channel), &payload)
                {
                    mismatches.push(message);
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}

/// Held by mute intervals, a digest says so in its headline, in each locale; without them it is
/// the usual "VOD digest".
#[test]
fn a_digest_of_muted_actions_names_the_intervals() {
    for (locale, headline) in
        [("en", "❌ While muted (night): 2 events"), ("zh-CN", "❌ 静默期间 (night)：2 个事件")]
    {
        let toml = format!("[messages]\nlocale = \"{locale}\"\n{SNAPSHOT_CHANNELS}");
        let router = Setup::from_toml_str(&toml, &no_env).expect("valid").router;
        let briefs: Vec<vodhook::template::digest::Brief> = (0..2)
            .map(|i| {
                let event =
                    workflow(&format!("task{i}"), "Failed", "wf-1", "a.mp4", &[("Node", "Failed", None)]);
                router
                    .plan(&event)
                    .unwrap()
                    .into_iter()
                    .find(|a| a.channel == "slack")
                    .unwrap()
                    .brief
                    .unwrap()
            })
            .collect();
        let refs: Vec<&vodhook::template::digest::Brief> = briefs.iter().collect();
        let mention = vodhook::config::Mentions::default();
        let muted =
            router.digest_mentioning("slack", &refs, &mention, Some("night"), false).unwrap().unwrap();
        assert!(muted["text"].as_str().unwrap().starts_with(headline), "{locale}: {muted}");
        let plain = router.digest_mentioning("slack", &refs, &mention, None, false).unwrap().unwrap();
        assert!(!plain["text"].as_str().unwrap().contains("night"), "{locale}: {plain}");
    }
}

/// A digest of actions that carry a silence button carries one per failed group (workflow and
/// error code), in each service's own button form, each a valid link for that group's workflow
/// and code; without, none.
#[test]
fn digests_carry_a_silence_button_per_failed_group() {
    const SECRET: &str = "digest-buttons-secret-0123456789abcdef";
    let channels = SNAPSHOT_CHANNELS.replace("name = \"all\"\n", "name = \"all\"\nbuttons = [\"silence\"]\n");
    let toml = format!(
        "[store]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:1\"\n\n\
         [links]\nbase_url = \"https://v.example.com\"\nsecret = \"{SECRET}\"\n{channels}"
    );
    let router = Setup::from_toml_str(&toml, &no_env).expect("valid").router;
    let mut events = digest_events();
    // The same error as two of them, in another workflow: the group gets a button per workflow.
    let width = ("InvalidParameter.Width", "The parameter \"Width\" must be between 1 and 4096.");
    events.push(workflow(
        "5e5e5e5e5e5e",
        "Failed",
        "wf-0ther",
        "x.mp4",
        &[("VodSnapshot_1", "Failed", Some(width))],
    ));
    let secret = vodhook::redact::Secret::new(SECRET);
    for channel in ["dingtalk", "feishu", "feishu-post", "wecom", "slack"] {
        let briefs: Vec<vodhook::template::digest::Brief> = events
            .iter()
            .map(|e| {
                let actions = router.plan(e).expect("renders");
                actions.into_iter().find(|a| a.channel == channel).and_then(|a| a.brief).expect("a brief")
            })
            .collect();
        let refs: Vec<&vodhook::template::digest::Brief> = briefs.iter().collect();
        let mut expected: Vec<(String, String)> = briefs
            .iter()
            .filter(|b| b.failed)
            .map(|b| (b.workflow_id.clone().unwrap(), b.error_code.clone().unwrap()))
            .collect();
        expected.sort();
        expected.dedup();
        assert_eq!(expected.len(), 3, "two workflows, two error codes: {expected:?}");

        let nobody = vodhook::config::Mentions::default();
        let body = router.digest_mentioning(channel, &refs, &nobody, None, true).unwrap().expect("fits");
        let urls = button_urls(channel, &body);
        let mut linked: Vec<(String, String)> = urls
            .iter()
            .map(|url| {
                let token =
                    url.strip_prefix("https://v.example.com/actions/").unwrap_or_else(|| panic!("{url}"));
                let link = vodhook::signed_link::Link::verify(token, &[&secret], 0).expect("a valid link");
                assert_eq!(link.act, vodhook::signed_link::Act::Silence);
                (link.workflow_id, link.error_code.unwrap_or_default())
            })
            .collect();
        linked.sort();
        assert_eq!(linked, expected, "{channel}: {body:#}");

        let without = router.digest_mentioning(channel, &refs, &nobody, None, false).unwrap().unwrap();
        assert!(!without.to_string().contains("/actions/"), "{channel}: {without:#}");
    }
}

/// The URLs of a message's buttons, read from each service's own button form.
fn button_urls(channel: &str, body: &Value) -> Vec<String> {
    let strings = |values: Option<&Value>, pointer: &str| -> Vec<String> {
        let items = values.and_then(Value::as_array).unwrap_or_else(|| panic!("{channel}: {body:#}"));
        items.iter().filter_map(|v| v.pointer(pointer).and_then(Value::as_str).map(str::to_owned)).collect()
    };
    match channel {
        "dingtalk" => strings(body.pointer("/actionCard/btns"), "/actionURL"),
        "feishu" => {
            let last = body.pointer("/card/elements").and_then(Value::as_array).and_then(|e| e.last());
            assert_eq!(last.map(|e| &e["tag"]), Some(&json!("action")), "{body:#}");
            strings(last.and_then(|e| e.get("actions")), "/behaviors/0/default_url")
        }
        "feishu-post" => {
            let paragraphs = body.pointer("/content/post/zh_cn/content").and_then(Value::as_array);
            strings(paragraphs.and_then(|p| p.last()), "/href")
        }
        "slack" => {
            let last = body.pointer("/blocks").and_then(Value::as_array).and_then(|b| b.last());
            assert_eq!(last.map(|b| &b["type"]), Some(&json!("actions")), "{body:#}");
            strings(last.and_then(|b| b.get("elements")), "/url")
        }
        "wecom" => {
            let content = body.pointer("/markdown/content").and_then(Value::as_str).unwrap_or_default();
            content
                .split("](")
                .skip(1)
                .filter_map(|rest| rest.split(')').next())
                .filter(|url| url.contains("/actions/"))
                .map(str::to_owned)
                .collect()
        }
        other => panic!("no buttons on {other}"),
    }
}

/// The daily report on every chat channel and the webhook, in English and Chinese
/// (`report-<channel>.<locale>.snap`), from a fixed summary.
#[test]
fn reports_match_their_snapshots() {
    use vodhook::report::summary::{Calls, FailureGroup, Notices, Summary, Workflows};
    let summary = Summary {
        since: "2026-12-04T09:30:00+08:00".into(),
        until: "2026-12-05T09:30:00+08:00".into(),
        scope: "store",
        events: [("FileUploadComplete".to_owned(), 12), ("WorkflowTaskComplete".to_owned(), 38)].into(),
        workflows: Workflows { succeeded: 26, failed: 12 },
        failures: vec![
            FailureGroup {
                workflow_id: "wf-5c1e0b7d9a".into(),
                error_code: "InvalidParameter.Width".into(),
                count: 7,
                example_video_id: "a1b2c3d4e5f6".into(),
            },
            FailureGroup {
                workflow_id: "wf-6f2a0c1d9e8b4d3a".into(),
                error_code: "InvalidMedia.AudioStreamMissing".into(),
                count: 5,
                example_video_id: "0f5da6c2e4b8".into(),
            },
        ],
        notices: Notices { sent: 40, held: 3, digested: 2, queued: 1, dead: 0 },
        vod_api: [("SubmitWorkflowJob".to_owned(), Calls { ok: 3, failed: 1 })].into(),
        hourly_failures: vec![0, 0, 1, 0, 0, 0, 0, 2, 5, 3, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0],
    };
    let mut mismatches = Vec::new();
    for locale in ["en", "zh-CN"] {
        let toml = format!("[messages]\nlocale = \"{locale}\"\n{SNAPSHOT_CHANNELS}");
        let setup = Setup::from_toml_str(&toml, &no_env).expect("valid");
        for channel in ["dingtalk", "feishu", "feishu-post", "wecom", "slack", "webhook"] {
            let config = setup.config.channels.iter().find(|c| c.name == channel).unwrap();
            let locale = setup.router.locale_of(channel);
            let body = vodhook::report::render::body(config, &summary, locale, None).expect("fits");
            if let Err(message) = check_snapshot(&format!("report-{channel}.{}", locale.as_str()), &body) {
                mismatches.push(message);
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}
