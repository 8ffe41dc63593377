//! The command-line tools, run as the real binary: `plan` (what a delivery would cause, nothing
//! sent), `check-config` (every problem, with where), `parse`, `sign` (VOD's documented vector)
//! and `simulate` (acting as VOD against a running `vodhook serve`, over HTTP and as FC's MNS
//! trigger).

mod support;

use serde_json::Value;
use support::standins::StandIn;
use support::{Options, Vodhook, fixture, fixture_path, run_cli, run_cli_with_input};
use vodhook::channel::ChannelType;

const FAILED_TASK: &str = "e2e-task-7d1f3a90c2";

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write a test file");
    path.to_str().expect("UTF-8 path").to_owned()
}

fn path_of(name: &str) -> String {
    fixture_path(name).to_str().expect("UTF-8 path").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_prints_each_action_as_a_json_line_and_sends_nothing() {
    let ding = StandIn::start(ChannelType::Dingtalk).await;
    let lark = StandIn::start(ChannelType::Feishu).await;
    let wecom = StandIn::start(ChannelType::Wecom).await;
    let slack = StandIn::start(ChannelType::Slack).await;
    let hook = StandIn::start(ChannelType::Webhook).await;
    let stand_ins = [("ding", &ding), ("lark", &lark), ("wecom", &wecom), ("slack", &slack), ("hook", &hook)];
    let mut config: String = stand_ins.iter().map(|(name, s)| s.channel_toml(name) + "\n").collect();
    config.push_str(
        "[[channels]]\nname = \"audit\"\ntype = \"log\"\n\n\
         [[routes]]\nname = \"failures\"\nmatch = { status = \"Failed\" }\n\
         channels = [\"ding\", \"lark\", \"wecom\", \"slack\", \"hook\"]\ncontinue = true\n\n\
         [[routes]]\nname = \"everything\"\nchannels = [\"audit\"]\n",
    );
    let dir = scratch();
    let config = write(&dir, "e2e-plan.toml", &config);

    let run = run_cli(dir.path(), &["plan", "--config", &config, &path_of("e2e-failed.json")], &[]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    let actions = run.ndjson();
    let planned: Vec<(&str, &str, &str)> = actions
        .iter()
        .map(|a| {
            (
                a["route"].as_str().unwrap(),
                a["channel"].as_str().unwrap(),
                a["channel_type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        planned,
        [
            ("failures", "ding", "dingtalk"),
            ("failures", "lark", "feishu"),
            ("failures", "wecom", "wecom"),
            ("failures", "slack", "slack"),
            ("failures", "hook", "webhook"),
            ("everything", "audit", "log"),
        ],
        "in route order, then channel order"
    );
    for action in &actions {
        let key = action["key"].as_str().expect("key");
        assert!(key.contains(FAILED_TASK), "the key comes from the TaskId: {key}");
        assert!(action["payload"].is_object(), "{action}");
    }
    let keys: std::collections::BTreeSet<&str> = actions.iter().filter_map(|a| a["key"].as_str()).collect();
    assert_eq!(keys.len(), actions.len(), "one key per action");
    // The rendered bodies, unsigned (signatures carry a timestamp and are made at send time).
    assert_eq!(actions[0]["payload"]["msgtype"], "markdown");
    assert!(actions[0]["payload"]["markdown"]["text"].as_str().unwrap().contains(FAILED_TASK));
    assert_eq!(actions[1]["payload"]["msg_type"], "interactive");
    assert!(actions[1]["payload"].get("sign").is_none());
    assert!(actions[3]["payload"]["blocks"].is_array());
    assert_eq!(actions[4]["payload"]["details"]["task_id"], FAILED_TASK);
    assert_eq!(actions[5]["payload"]["status"], "Failed");

    // The same from stdin; a Succeed event only reaches the catch-all route.
    let from_stdin = run_cli_with_input(
        dir.path(),
        &["plan", "--config", &config, "-"],
        &[],
        fixture("e2e-failed.json").as_bytes(),
    );
    assert_eq!(from_stdin.ndjson(), actions);
    let succeed = run_cli(dir.path(), &["plan", "--config", &config, &path_of("e2e-succeed.json")], &[]);
    let succeed = succeed.ndjson();
    assert_eq!(succeed.len(), 1, "{succeed:?}");
    assert_eq!(succeed[0]["route"], "everything");

    for (name, stand_in) in stand_ins {
        assert!(stand_in.requests().is_empty(), "plan sent something to {name}");
    }
}

const GOOD_CONFIG: &str = r#"
[auth]
callback_url = "https://vod-e2e.example.com/vod/callback"
key = "${E2E_AUTH_KEY}"

[[channels]]
name = "ops"
type = "dingtalk"
url = "https://oapi.dingtalk.com/robot/send?access_token=${E2E_DING_TOKEN}"
secret = "${E2E_DING_SECRET}"

[[channels]]
name = "audit"
type = "log"

[[routes]]
name = "failures"
match = { event_type = "WorkflowTaskComplete", status = "Failed" }
channels = ["ops"]
continue = true

[[routes]]
name = "all"
channels = ["audit"]
"#;

const GOOD_ENV: &[(&str, &str)] =
    &[("E2E_AUTH_KEY", "k-e2e-1"), ("E2E_DING_TOKEN", "t0ken-e2e-1"), ("E2E_DING_SECRET", "SECe2e1")];

#[test]
fn check_config_accepts_a_good_file_and_describes_it() {
    let dir = scratch();
    let file = write(&dir, "e2e-good.toml", GOOD_CONFIG);
    let run = run_cli(dir.path(), &["check-config", &file], GOOD_ENV);
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.starts_with(&format!("configuration OK: {file}")), "{run:?}");
    assert!(run.stdout.contains("ops (dingtalk) → https://oapi.dingtalk.com/…"), "{run:?}");
    assert!(run.stdout.contains("audit (log)"), "{run:?}");
    assert!(
        run.stdout
            .contains(r#"failures: event_type="WorkflowTaskComplete", status="Failed" → ops (continue)"#),
        "{run:?}"
    );
    for (_, value) in GOOD_ENV {
        assert!(!run.output().contains(value), "{value} shown: {run:?}");
    }

    // The same file through VODHOOK_CONFIG, and no file at all (the built-in default).
    let via_env =
        run_cli(dir.path(), &["check-config"], &[GOOD_ENV, &[("VODHOOK_CONFIG", file.as_str())]].concat());
    assert_eq!((via_env.code(), via_env.stdout.as_str()), (Some(0), run.stdout.as_str()));
    let builtin = run_cli(dir.path(), &["check-config"], &[]);
    assert_eq!(builtin.code(), Some(0), "{builtin:?}");
    assert!(
        builtin.stdout.contains("built-in default") && builtin.stdout.contains("log (log)"),
        "{builtin:?}"
    );
}

/// Four kinds of mistake at once: a route naming a channel that does not exist, a variable that
/// is not set, a URL that is not one, and a template that compiles but cannot render.
const BROKEN_CONFIG: &str = r#"
[[channels]]
name = "ops"
type = "dingtalk"
url = "https://oapi.dingtalk.com/robot/send?access_token=${E2E_UNSET_TOKEN}"

[[channels]]
name = "chat"
type = "slack"
url = "hooks.slack.com/services/T0/B0/x"

[[channels]]
name = "audit"
type = "log"

[[routes]]
name = "failures"
match = { status = "Failed" }
channels = ["ops", "pager"]

[[routes]]
name = "all"
channels = ["audit", "chat"]
template = "{{ nodes | length + ' nodes' }}"
"#;

const BROKEN_PROBLEMS: [&str; 4] = [
    r#"channels[0] "ops".url: environment variable E2E_UNSET_TOKEN is not set"#,
    r#"channels[1] "chat".url: is not a valid URL"#,
    r#"routes[0] "failures".channels[1]: unknown channel "pager""#,
    r#"routes[1] "all".template: fails to render"#,
];

#[test]
fn check_config_lists_every_problem_with_where_it_is_and_exits_1() {
    let dir = scratch();
    let file = write(&dir, "e2e-broken.toml", BROKEN_CONFIG);
    let run = run_cli(dir.path(), &["check-config", &file], &[]);
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    let first = run.stderr.lines().next().unwrap_or_default();
    assert!(first.starts_with(&format!("configuration {file} has ")), "{run:?}");
    for problem in BROKEN_PROBLEMS {
        assert!(run.stderr.contains(problem), "{problem:?} missing:\n{}", run.stderr);
    }
    // A missing file is a problem too, not a fallback to the default.
    let missing = dir.path().join("nope.toml");
    let run = run_cli(dir.path(), &["check-config", missing.to_str().unwrap()], &[]);
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("nope.toml") && run.stderr.contains("cannot read"), "{run:?}");
}

/// The production-Redis settings: a CA file must hold certificates and needs `rediss://`;
/// `cluster` needs the redis backend, a TCP URL and database 0.
#[test]
fn check_config_checks_the_tls_ca_file_and_cluster_settings() {
    let dir = scratch();
    let not_pem = write(&dir, "not-a-ca.pem", "this is not a certificate\n");
    let cases = [
        (
            format!(
                "[dedup]\nbackend = \"redis\"\nurl = \"rediss://h:6380/0\"\ntls_ca_file = {:?}\n",
                dir.path().join("missing.pem")
            ),
            "dedup.tls_ca_file: cannot read",
        ),
        (
            format!("[dedup]\nbackend = \"redis\"\nurl = \"rediss://h:6380/0\"\ntls_ca_file = {not_pem:?}\n"),
            "holds no \"-----BEGIN CERTIFICATE-----\" block",
        ),
        (
            format!("[dedup]\nbackend = \"redis\"\nurl = \"redis://h:6379/0\"\ntls_ca_file = {not_pem:?}\n"),
            "dedup.tls_ca_file: needs a rediss:// URL",
        ),
        ("[dedup]\ncluster = true\n".to_owned(), "dedup.cluster: needs backend = \"redis\""),
        (
            "[dedup]\nbackend = \"redis\"\nurl = \"redis://h:6379/2\"\ncluster = true\n".to_owned(),
            "dedup.url: selects database \"2\", but a Redis Cluster has only database 0",
        ),
        ("[outbox]\ndead_letter_days = 0\n".to_owned(), "outbox.dead_letter_days: must be at least 1"),
        // Turning certificate checks off is refused here, not only when connecting.
        (
            "[dedup]\nbackend = \"redis\"\nurl = \"rediss://h:6380/0#insecure\"\n".to_owned(),
            "dedup.url: asks for TLS without certificate verification",
        ),
        (
            "[dedup]\nbackend = \"redis\"\nurl = \"rediss://h:6380/0?insecure=true\"\n".to_owned(),
            "dedup.url: asks for TLS without certificate verification",
        ),
        // A region or endpoint that would send the signed VOD call to another host.
        (
            "[vod]\nregion = \"cn-shanghai.evil.example/x?\"\n".to_owned(),
            "vod.region: \"cn-shanghai.evil.example/x?\" is not a region id",
        ),
        (
            "[vod]\nendpoint = \"https://vod.cn-shanghai.aliyuncs.com@127.0.0.1:1/\"\n".to_owned(),
            "vod.endpoint: must not carry a user name or password",
        ),
        ("[vod]\nmax_answer_bytes = 0\n".to_owned(), "vod.max_answer_bytes: must be more than 0"),
    ];
    for (toml, problem) in cases {
        let file = write(&dir, "redis.toml", &toml);
        let run = run_cli(dir.path(), &["check-config", &file], &[]);
        assert_eq!(run.code(), Some(1), "{toml}\n{run:?}");
        assert!(run.stderr.contains(problem), "{problem:?} missing for\n{toml}\n{}", run.stderr);
    }
    // A real CA certificate is accepted.
    let ca = support::redis::Ca::new("check-config CA");
    let good = format!(
        "[dedup]\nbackend = \"redis\"\nurl = \"rediss://h:6380/0\"\ntls_ca_file = {:?}\ncluster = true\n",
        ca.cert()
    );
    let run = run_cli(dir.path(), &["check-config", &write(&dir, "good.toml", &good)], &[]);
    assert!(run.status.success(), "{run:?}");
}

/// `[messages]` and per-channel `locale` / `utc_offset`: an unknown locale or a malformed
/// offset is refused, naming the place.
#[test]
fn check_config_checks_locales_and_offsets() {
    let dir = scratch();
    let channel = "[[channels]]\nname = \"ops\"\ntype = \"log\"\n";
    let cases = [
        (
            "[messages]\nlocale = \"fr\"\n".to_owned(),
            "messages.locale: \"fr\" is not one of en, zh-CN (line 2, column 10)",
        ),
        (
            "[messages]\nutc_offset = \"UTC+8\"\n".to_owned(),
            "messages.utc_offset: \"UTC+8\" is not an offset",
        ),
        ("[messages]\nutc_offset = \"+8:00\"\n".to_owned(), "expected \"Z\" or ±HH:MM"),
        (
            format!("{channel}utc_offset = \"+25:00\"\n"),
            r#"channels[0] "ops".utc_offset: "+25:00" is not an offset"#,
        ),
        (format!("{channel}locale = \"ja\"\n"), "channels[0] \"ops\".locale: \"ja\" is not one of en, zh-CN"),
    ];
    for (toml, problem) in cases {
        let file = write(&dir, "messages.toml", &toml);
        let run = run_cli(dir.path(), &["check-config", &file], &[]);
        assert_eq!(run.code(), Some(1), "{toml}\n{run:?}");
        assert!(run.stderr.contains(problem), "{problem:?} missing for\n{toml}\n{}", run.stderr);
    }
    let good = format!(
        "[messages]\nlocale = \"zh-CN\"\nutc_offset = \"+08:00\"\n{channel}locale = \"en\"\nutc_offset = \"-05:30\"\n[[routes]]\nname = \"all\"\nchannels = [\"ops\"]\n"
    );
    let run = run_cli(dir.path(), &["check-config", &write(&dir, "good.toml", &good)], &[]);
    assert!(run.status.success(), "{run:?}");
}

/// Done when: with `[messages] locale = "zh-CN"` and `utc_offset = "+08:00"`, `plan` on a
/// Failed workflow gives DingTalk, Feishu, WeCom and Slack messages in Chinese, times at +08:00.
#[test]
fn plan_shows_the_messages_in_the_readers_language_and_offset() {
    let dir = scratch();
    let channels: String = [
        ("ding", "dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=t"),
        ("lark", "feishu", "https://open.feishu.cn/open-apis/bot/v2/hook/x"),
        ("wework", "wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"),
        ("team", "slack", "https://hooks.slack.com/services/T/B/X"),
    ]
    .iter()
    .map(|(name, kind, url)| {
        format!("[[channels]]\nname = \"{name}\"\ntype = \"{kind}\"\nurl = \"{url}\"\n\n")
    })
    .collect();
    let toml = format!(
        "[messages]\nlocale = \"zh-CN\"\nutc_offset = \"+08:00\"\n\n{channels}[[routes]]\nname = \"all\"\n\
         channels = [\"ding\", \"lark\", \"wework\", \"team\"]\n"
    );
    let config = write(&dir, "zh.toml", &toml);
    let run = run_cli(dir.path(), &["plan", "--config", &config, &path_of("e2e-failed.json")], &[]);
    assert!(run.status.success(), "{run:?}");
    let actions = run.ndjson();
    assert_eq!(actions.len(), 4, "{}", run.stdout);
    for action in &actions {
        let text = action["payload"].to_string();
        for expected in ["VOD 工作流失败", "状态", "失败", "任务 ID", "耗时", "事件时间", "节点", "+08:00"]
        {
            assert!(text.contains(expected), "{}: no {expected:?} in {text}", action["channel"]);
        }
        assert!(text.contains('秒') || text.contains('分'), "a Chinese duration: {text}");
        for english in ["Status", "Duration", "Event time", "Nodes", "VOD workflow"] {
            assert!(!text.contains(english), "{}: {english:?} left in {text}", action["channel"]);
        }
    }
    // Without [messages], the same channels speak English in UTC, as before.
    let en = write(
        &dir,
        "en.toml",
        &toml.replace("[messages]\nlocale = \"zh-CN\"\nutc_offset = \"+08:00\"\n", ""),
    );
    let run = run_cli(dir.path(), &["plan", "--config", &en, &path_of("e2e-failed.json")], &[]);
    assert!(
        run.ndjson().iter().all(|a| a["payload"].to_string().contains("VOD workflow failed")),
        "{}",
        run.stdout
    );
}

#[test]
fn the_server_refuses_to_start_on_a_config_that_check_config_refuses() {
    let failure = match Vodhook::try_start_with(Options::config(BROKEN_CONFIG).envs(&[])) {
        Ok(_) => panic!("vodhook serve started on a broken configuration"),
        Err(failure) => failure,
    };
    assert_eq!(failure.status.code(), Some(1), "{failure:?}");
    for problem in BROKEN_PROBLEMS {
        assert!(failure.output().contains(problem), "{problem:?} missing:\n{}", failure.output());
    }
}

#[test]
fn parse_prints_each_decoded_event_as_a_json_line() {
    let dir = scratch();
    let run = run_cli(dir.path(), &["parse", &path_of("e2e-failed.json")], &[]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    let events = run.ndjson();
    assert_eq!(events.len(), 1);
    // JSON inside strings, decoded all the way down.
    let results = &events[0]["ActivityResults"];
    assert_eq!(
        results["VodTranscode_e2e02"]["Result"]["MessageBody"]["ErrorCode"],
        "InvalidMedia.AudioStreamMissing"
    );
    assert_eq!(events[0]["TaskInput"]["Title"], "夏季发布会 Keynote – 直播回放 🎥");

    // A batch on stdin: one line per event, in order.
    let batch = format!("[{}, {}]", fixture("e2e-failed.json"), fixture("e2e-succeed.json"));
    let run = run_cli_with_input(dir.path(), &["parse", "-"], &[], batch.as_bytes());
    assert_eq!(run.code(), Some(0), "{run:?}");
    let statuses: Vec<Value> = run.ndjson().iter().map(|e| e["Status"].clone()).collect();
    assert_eq!(statuses, ["Failed", "Succeed"]);
}

#[test]
fn parse_names_the_path_of_what_is_wrong_and_exits_1() {
    let dir = scratch();
    let run = run_cli(dir.path(), &["parse", &path_of("e2e-bad-node-status.json")], &[]);
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {run:?}");
    assert!(lines[0].contains("ActivityResults.VodTranscode_e2e02.Status"), "{run:?}");
    assert!(lines[0].contains("expected a string"), "{run:?}");

    // In a batch, the good event is still printed and the bad one named by its place.
    let batch = format!("[{}, {}]", fixture("e2e-failed.json"), fixture("e2e-bad-node-status.json"));
    let run = run_cli_with_input(dir.path(), &["parse"], &[], batch.as_bytes());
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert_eq!(run.ndjson().len(), 1);
    assert!(run.stderr.contains("[1].ActivityResults.VodTranscode_e2e02.Status"), "{run:?}");
}

#[test]
fn sign_prints_the_documented_vector() {
    let dir = scratch();
    let args = [
        "sign",
        "--url",
        "https://www.example.com/your/callback",
        "--key",
        "test123",
        "--timestamp",
        "1519375990",
    ];
    let run = run_cli(dir.path(), &args, &[]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(
        run.stdout,
        "X-VOD-TIMESTAMP: 1519375990\nX-VOD-SIGNATURE: c72b60894140fa98920f1279219b7ed4\n"
    );
}

/// `sign --config` signs for the callback URL and key the server checks against (the trap was a
/// signature for another URL, and a 401 a newcomer could not explain); `check-config --config`
/// works like every other command's `--config`.
#[test]
fn sign_and_check_config_take_the_configuration() {
    let dir = scratch();
    let file = write(
        &dir,
        "signed.toml",
        "[auth]\ncallback_url = \"https://www.example.com/your/callback\"\nkey = \"${MY_KEY}\"\n",
    );
    let args = ["sign", "--config", &file, "--timestamp", "1519375990"];
    let run = run_cli(dir.path(), &args, &[("MY_KEY", "test123")]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.ends_with("X-VOD-SIGNATURE: c72b60894140fa98920f1279219b7ed4\n"), "{run:?}");
    let run = run_cli(dir.path(), &["sign", "--timestamp", "1"], &[]);
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("no callback URL: give --url, or --config"), "{run:?}");

    let run = run_cli(dir.path(), &["check-config", "--config", &file], &[("MY_KEY", "k")]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    let run = run_cli(dir.path(), &["check-config", "--config", &path_of("nope.toml")], &[]);
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("cannot read"), "{run:?}");
    // Every argument says what it is.
    let commands =
        ["check-config", "plan", "serve", "drain", "check-redis", "sign", "simulate", "outbox list"];
    for command in commands.into_iter().chain(["outbox replay", "outbox purge", "parse"]) {
        let args: Vec<&str> = command.split(' ').chain(["--help"]).collect();
        let run = run_cli(dir.path(), &args, &[]);
        let bare: Vec<&str> = run
            .stdout
            .lines()
            .filter(|l| l.trim_start().starts_with('-') || l.trim_start().starts_with('['))
            .filter(|l| !has_help(l))
            .collect();
        assert!(bare.is_empty(), "{command}: arguments without help: {bare:?}\n{}", run.stdout);
    }
}

/// Whether an argument's line in clap's help says something besides its name, env and default.
fn has_help(line: &str) -> bool {
    let Some((_, mut rest)) = line.trim().split_once("  ") else { return false };
    for marker in ["[env: ", "[default: ", "[possible values: "] {
        if let Some(i) = rest.find(marker) {
            rest = &rest[..i];
        }
    }
    !rest.trim().is_empty()
}

/// With no server listening, `simulate` names the address, the cause and what to do.
#[test]
fn simulate_without_a_server_says_what_to_do() {
    let dir = scratch();
    let target = format!("http://127.0.0.1:{}/", support::process::free_port());
    let run = run_cli(dir.path(), &["simulate", "--target", &target], &[]);
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains(&target[..target.len() - 1]), "{run:?}");
    assert!(
        run.stderr.contains("Connection refused") && run.stderr.contains("is `vodhook serve` running"),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_acts_as_vod_against_a_running_vodhook() {
    let ding = StandIn::start(ChannelType::Dingtalk).await;
    let key = "e2e-simulate-key";
    // The callback URL VOD signs is the server's own address here, as `simulate` signs its target.
    let ops = ding.channel_toml("ops");
    // As on Function Compute: `simulate --via mns` acts as FC's MNS trigger on /invoke.
    let server = Vodhook::start_with(Options::default().on_fc().config_for(|url| {
        format!(
            "[auth]\ncallback_url = \"{url}\"\nkey = \"{key}\"\n\n{ops}\n\
             [[routes]]\nname = \"failures\"\nmatch = {{ status = \"Failed\" }}\nchannels = [\"ops\"]\n"
        )
    }));
    let target = server.url("/");
    let simulate = |extra: &[&str]| {
        let mut args = vec!["simulate", "--target", &target];
        args.extend_from_slice(extra);
        tokio::task::block_in_place(|| run_cli(server.dir(), &args, &[]))
    };

    let run = simulate(&["--key", key, "--example", "failed"]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    let (status, body) = run.stdout.split_once('\n').expect("status line, then the body");
    assert_eq!(status, "200", "{run:?}");
    let body: Value = serde_json::from_str(body.trim()).expect("JSON answer");
    assert_eq!((body["events"].as_u64(), body["delivered"].as_u64()), (Some(1), Some(1)), "{body}");
    assert_eq!(ding.received().len(), 1);
    let text = ding.received()[0].json["markdown"]["text"].as_str().unwrap_or_default().to_owned();
    assert!(text.contains("InvalidMedia.AudioStreamMissing"), "the built-in failed example: {text}");

    // As Function Compute's MNS trigger: CloudEvents to /invoke, unsigned. Same event: a duplicate.
    let run = simulate(&["--key", key, "--example", "failed", "--via", "mns"]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.starts_with("200\n"), "{run:?}");
    let body: Value = serde_json::from_str(run.stdout[4..].trim()).expect("JSON answer");
    assert_eq!((body["events"].as_u64(), body["duplicate"].as_u64()), (Some(1), Some(1)), "{body}");
    assert_eq!(ding.requests().len(), 1, "a duplicate was sent");
    assert_eq!(server.summaries(2).len(), 2);
    assert!(server.output().contains("FC Invoke Start RequestId: simulate-"), "{}", server.output());

    // A wrong key: 401, exit 1, nothing sent.
    let run = simulate(&["--key", "not-the-key", "--example", "failed"]);
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stdout.starts_with("401\n"), "{run:?}");
    assert_eq!(ding.requests().len(), 1);
    assert_eq!(server.summaries(3)[2]["status"], 401);

    // A file of the user's, signed for the URL given with --callback-url: a succeeded task,
    // which no route takes.
    let file = path_of("runtime-bare-event.json");
    let run = simulate(&["--key", key, "--callback-url", &target, &file]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.starts_with("200\n") && run.stdout.contains("\"events\":1"), "{run:?}");
    let run = simulate(&["--key", key, "--callback-url", "https://elsewhere.example.com/", &file]);
    assert!(run.stdout.starts_with("401\n"), "signed for another URL: {run:?}");
    // The 401's log line names the URL the server checked against.
    assert!(server.output().contains(&format!("expected_callback_url\":\"{target}")), "{}", server.output());
    // --config: the server's own URL and key, whatever the target.
    let config = server.config_path().to_str().unwrap().to_owned();
    let run = simulate(&["--config", &config, &file]);
    assert!(run.stdout.starts_with("200\n"), "signed for the configured URL: {run:?}");
    assert!(!server.output().contains(key), "the key was logged");
}

/// The budget and digest settings are checked like every other: where, and what was expected.
#[test]
fn check_config_checks_budget_and_digest_settings() {
    let dir = scratch();
    let config = r#"
[[channels]]
name = "ops{x}"
type = "dingtalk"
url = "https://oapi.dingtalk.com/robot/send?access_token=t"
rate_per_second = 0
block_secs = 0

[[channels]]
name = "hook"
type = "webhook"
url = "https://hooks.example.com/vod"
digest = true

[[channels]]
name = "lark"
type = "feishu"
url = "https://open.feishu.cn/open-apis/bot/v2/hook/x"
digest_template = "{{ count }} {{ no_such_thing }}"

[[routes]]
name = "all"
channels = ["ops{x}", "hook", "lark"]

[delivery]
digest_max_actions = 0
"#;
    let file = write(&dir, "e2e-budget.toml", config);
    let run = run_cli(dir.path(), &["check-config", &file], &[]);
    assert_eq!(run.code(), Some(1), "{run:?}");
    for problem in [
        "channels[0].name: a channel name may not contain `|`, braces, spaces or control characters",
        "rate_per_second: must be more than 0 (remove it for the default)",
        "block_secs: must be more than 0",
        "channels[1] \"hook\".digest: webhook channels send one event per request: digests are for chat channels",
        "channels[2] \"lark\".digest_template: unknown variable(s) no_such_thing",
        "delivery.digest_max_actions: must be more than 0",
    ] {
        assert!(run.stderr.contains(problem), "{problem:?} missing:\n{}", run.stderr);
    }
    // A digest template that compiles but cannot render on the sample events.
    let config = r#"
[[channels]]
name = "wecom"
type = "wecom"
url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"
digest_template = "{{ groups[0].items[0].title | clip(\"x\") }}"

[[routes]]
name = "all"
channels = ["wecom"]
"#;
    let file = write(&dir, "e2e-digest.toml", config);
    let run = run_cli(dir.path(), &["check-config", &file], &[]);
    assert_eq!(run.code(), Some(1), "{run:?}");
    let problem = "channels[0] \"wecom\".digest_template: the digest fails to render on the sample events";
    assert!(run.stderr.contains(problem), "{}", run.stderr);
}

/// A `vod` channel: `plan` shows the call it would make (action and rendered parameters) and
/// calls nothing; `check-config` checks the action's name and that the parameters render.
#[test]
fn plan_shows_a_vod_call_and_check_config_checks_it() {
    let dir = scratch();
    let good = r#"
[[channels]]
name = "rerun"
type = "vod"
action = "SubmitWorkflowJob"
params = { WorkflowId = "{{ workflow_id }}", MediaId = "{{ video_id }}" }

[[routes]]
name = "failures"
match = { status = "Failed" }
channels = ["rerun"]
"#;
    let file = write(&dir, "e2e-vod.toml", good);
    let run = run_cli(dir.path(), &["plan", "--config", &file, &path_of("e2e-failed.json")], &[]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    let actions = run.ndjson();
    assert_eq!(actions.len(), 1, "{run:?}");
    assert_eq!(actions[0]["payload"]["Action"], "SubmitWorkflowJob");
    let params = &actions[0]["payload"]["Params"];
    assert!(params["MediaId"].as_str().is_some_and(|v| !v.is_empty()), "{params}");
    assert!(params["WorkflowId"].as_str().is_some_and(|v| v.starts_with("wf-")), "{params}");

    let bad = good
        .replace("\"SubmitWorkflowJob\"", "\"submit-workflow\"")
        .replace("{{ video_id }}", "{{ video_id | no_such_filter }}");
    let file = write(&dir, "e2e-vod-bad.toml", &bad);
    let run = run_cli(dir.path(), &["check-config", &file], &[]);
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(
        run.stderr
            .contains("channels[0] \"rerun\".action: \"submit-workflow\" is not an OpenAPI action name"),
        "{}",
        run.stderr
    );
    let fixed_name = bad.replace("\"submit-workflow\"", "\"SubmitWorkflowJob\"");
    let file = write(&dir, "e2e-vod-params.toml", &fixed_name);
    let run = run_cli(dir.path(), &["check-config", &file], &[]);
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("params.MediaId") && run.stderr.contains("no_such_filter"), "{}", run.stderr);
}

/// A plausible value for each variable the examples read.
fn example_value(name: &str) -> &'static str {
    match name {
        "DINGTALK_SECRET" => "SECexample-signing-secret",
        "WEBHOOK_SECRET" => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "REDIS_URL" => "redis://127.0.0.1:6379/0",
        _ => "example-value",
    }
}

/// Every configuration in examples/ passes `check-config` with no warning, given the variables
/// `check-config --print-env` lists for it (and only those); the README's example is
/// examples/readme.toml, word for word.
#[test]
fn every_example_configuration_checks_with_the_variables_it_declares() {
    let dir = scratch();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let file = path.to_str().unwrap();
        let listed = run_cli(dir.path(), &["check-config", "--print-env", file], &[]);
        assert_eq!(listed.code(), Some(0), "{listed:?}");
        let names: Vec<&str> = listed.stdout.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(!names.is_empty(), "{file}: reads no variable?");
        let env: Vec<(&str, &str)> = names.iter().map(|n| (*n, example_value(n))).collect();
        let run = run_cli(dir.path(), &["check-config", file], &env);
        assert_eq!(run.code(), Some(0), "{file}: {run:?}");
        assert!(!run.stdout.contains("warning") && !run.stderr.contains("warning"), "{file}: {run:?}");
        // One variable fewer, and the server would not start: the list is complete.
        let run = run_cli(dir.path(), &["check-config", file], &env[1..]);
        assert_eq!(run.code(), Some(1), "{file} without {}: {run:?}", names[0]);
        checked += 1;
    }
    assert!(checked >= 5, "{checked} examples");
    let readme = std::fs::read_to_string(examples.join("../README.md")).unwrap();
    let example = std::fs::read_to_string(examples.join("readme.toml")).unwrap();
    assert!(readme.contains(&example), "README's configuration example differs from examples/readme.toml");
}

/// The README's own example once sent the webhook twice for a failure (`failures` with
/// `continue = true` and the catch-all both named `pipeline`): `check-config` and `plan` now warn,
/// naming both routes; routes whose `match` cannot both hold are not reported.
#[test]
fn one_event_reaching_a_channel_through_two_routes_is_a_warning() {
    let dir = scratch();
    let twice = r#"
[[channels]]
name = "pipeline"
type = "log"

[[routes]]
name = "failures"
match = { status = "Failed" }
channels = ["pipeline"]
continue = true

[[routes]]
name = "successes"
match = { status = "Succeed" }
channels = ["pipeline"]

[[routes]]
name = "everything-to-ci"
channels = ["pipeline"]
"#;
    let file = write(&dir, "twice.toml", twice);
    let run = run_cli(dir.path(), &["check-config", &file], &[]);
    assert_eq!(run.code(), Some(0), "a warning, not a problem: {run:?}");
    let warning = "routes[2] \"everything-to-ci\".channels: \"pipeline\" is also a channel of routes[0] \"failures\" (continue = true)";
    assert!(run.output().contains(warning), "{run:?}");
    assert!(
        !run.output().contains("routes[1] \"successes\".channels"),
        "Failed and Succeed cannot both hold: {run:?}"
    );
    let run = run_cli(dir.path(), &["plan", "--config", &file, &path_of("e2e-failed.json")], &[]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stderr.contains("twice, through routes \"failures\" and \"everything-to-ci\""), "{run:?}");
}

/// `$NAME` without braces is kept as it is (it may be meant): a warning says how to read the
/// variable; in a secret the name is not quoted.
#[test]
fn a_dollar_name_without_braces_is_a_warning() {
    let dir = scratch();
    let text = "[[channels]]\nname = \"ops\"\ntype = \"dingtalk\"\nurl = \"https://oapi.dingtalk.com/robot/send?access_token=$DINGTALK_TOKEN\"\nsecret = \"SEC$ecretPart\"\n[[routes]]\nname = \"r\"\nchannels = [\"ops\"]\n";
    let file = write(&dir, "dollar.toml", text);
    let run = run_cli(dir.path(), &["check-config", &file], &[]);
    let out = run.output();
    assert!(out.contains("channels[0] \"ops\".url: "), "{out}");
    assert!(out.contains("to read an environment variable, write `${NAME}`"), "{out}");
    assert!(!out.contains("ecretPart"), "part of the secret shown: {out}");
}

/// A new user's typos, all in one file: each is reported, all in one run, at its place, with
/// what was meant — none passes as "configuration OK".
#[test]
fn typos_are_caught_all_at_once_with_did_you_mean() {
    let dir = scratch();
    let shapes = r#"
[[channels]]
name = "ops"
type = "dingtalk"
url = "https://oapi.dingtalk.com/robot/send?access_token=t0k"
secert = "SECabc"

[[channels]]
name = "team"
type = "wecom"
url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"
locale = "zh-cn"

[[routes]]
name = "failures"
match = { status = "Failed" }
chanels = ["ops"]
"#;
    let file = write(&dir, "shapes.toml", shapes);
    let run = run_cli(dir.path(), &["check-config", &file], &[]);
    assert_eq!(run.code(), Some(1), "{run:?}");
    for expected in [
        "channels[0] \"ops\": unknown key `secert`: did you mean `secret`?",
        "channels[1] \"team\".locale: \"zh-cn\" is not one of en, zh-CN: did you mean \"zh-CN\"?",
        "routes[0] \"failures\": unknown key `chanels`: did you mean `channels`?",
    ] {
        assert!(run.stderr.contains(expected), "{expected:?} missing:\n{}", run.stderr);
    }
    assert!(run.stderr.contains("has 3 problems"), "{}", run.stderr);

    let values = r#"
[[channels]]
name = "ops"
type = "dingtalk"
url = "https://oapi.dingtalk.com/robot/send"
secret = "abc"

[[channels]]
name = "team"
type = "wecom"
url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"

[[routes]]
name = "failures"
match = { status = "Faild", source = "vdo" }
matchers = ['event_type="TranscodeCompleted"']
channels = ["ops", "team"]
"#;
    let file = write(&dir, "values.toml", values);
    let run = run_cli(dir.path(), &["check-config", &file], &[]);
    assert_eq!(run.code(), Some(1), "{run:?}");
    for expected in [
        "routes[0] \"failures\".match.status: \"Faild\" is not a status VOD sends: did you mean \"Failed\"?",
        "routes[0] \"failures\".match.source: \"vdo\" is not a source: did you mean \"vod\"?",
        "channels[0] \"ops\".url: has no `access_token=` in its query",
        "channels[0] \"ops\".secret: is not a DingTalk signing secret: those start with `SEC`",
        "channels[1] \"team\".url: has no `key=` in its query",
    ] {
        assert!(run.stderr.contains(expected), "{expected:?} missing:\n{}", run.stderr);
    }
    // An event type VOD does not document may be new: a warning, with the near one.
    let fixed = values
        .replace("robot/send\"", "robot/send?access_token=t\"")
        .replace("\"abc\"", "\"SECabc\"")
        .replace("send\"\n", "send?key=k\"\n")
        .replace("Faild", "Failed")
        .replace("vdo", "vod");
    let run = run_cli(dir.path(), &["check-config", &write(&dir, "fixed.toml", &fixed)], &[]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(
        run.output().contains(
            "\"TranscodeCompleted\" is not an event type VOD documents: did you mean \"TranscodeComplete\"?"
        ),
        "{run:?}"
    );
}

/// A key of another kind of channel, on each kind: refused (exit 1) at its key path, naming the
/// kinds that take it — all of them in one run, with the file's other problems.
#[test]
fn a_key_of_another_kind_is_refused_on_every_service() {
    let dir = scratch();
    let cases = [
        (
            "dingtalk",
            "url = \"https://oapi.dingtalk.com/robot/send?access_token=t\"\n",
            "msg_type = \"post\"",
            "msg_type",
            "feishu",
        ),
        (
            "feishu",
            "url = \"https://open.feishu.cn/open-apis/bot/v2/hook/x\"\n",
            "headers = { A = \"b\" }",
            "headers",
            "webhook",
        ),
        (
            "wecom",
            "url = \"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k\"\n",
            "secret = \"s\"",
            "secret",
            "dingtalk, feishu and webhook",
        ),
        (
            "slack",
            "url = \"https://hooks.slack.com/services/T/B/x\"\n",
            "action = \"SubmitWorkflowJob\"",
            "action",
            "vod",
        ),
        ("webhook", "url = \"https://ci.example.com/hook\"\n", "max_repeats = 1", "max_repeats", "vod"),
        ("log", "", "url = \"https://example.com\"", "url", "dingtalk, feishu, wecom, slack and webhook"),
        ("vod", "action = \"SubmitWorkflowJob\"\n", "max_body_bytes = 4096", "max_body_bytes", "webhook"),
    ];
    let mut text = String::new();
    let mut names = Vec::new();
    for (i, (kind, own, foreign, _, _)) in cases.iter().enumerate() {
        text.push_str(&format!("[[channels]]\nname = \"c{i}\"\ntype = \"{kind}\"\n{own}{foreign}\n\n"));
        names.push(format!("\"c{i}\""));
    }
    text.push_str(&format!("[[routes]]\nname = \"all\"\nchannels = [{}]\n", names.join(", ")));
    let run = run_cli(dir.path(), &["check-config", &write(&dir, "foreign.toml", &text)], &[]);
    assert_eq!(run.code(), Some(1), "{run:?}");
    for (i, (kind, _, _, key, owners)) in cases.iter().enumerate() {
        let expected =
            format!("channels[{i}] \"c{i}\".{key}: is a setting of {owners} channels, not of {kind} ones");
        assert!(run.stderr.contains(&expected), "{expected:?} missing:\n{}", run.stderr);
    }
}
