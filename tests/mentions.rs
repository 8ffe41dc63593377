//! Mentions: the configured people are mentioned in every chat service's own form, exactly once
//! per message (a digest included), a cut message keeps them, and nothing an event says can
//! mention anyone. Read by `support::mentions`, the way each service reads a message.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::mentions::{read, strings};
use support::redis::RedisServer;
use support::standins::StandIn;
use support::{Cluster, Vodhook, post, run_cli};
use vodhook::channel::ChannelType;
use vodhook::setup::Setup;

const CHAT: [ChannelType; 4] =
    [ChannelType::Dingtalk, ChannelType::Wecom, ChannelType::Feishu, ChannelType::Slack];

/// What each service's channel mentions itself (only kinds it can write).
fn channel_mention(kind: ChannelType) -> &'static str {
    match kind {
        ChannelType::Dingtalk => r#"mention = { mobiles = ["13800000000"], user_ids = ["manager4711"] }"#,
        ChannelType::Wecom => r#"mention = { user_ids = ["wecom-lead"] }"#,
        ChannelType::Feishu => r#"mention = { user_ids = ["ou_lead"], all = true }"#,
        ChannelType::Slack => r#"mention = { user_ids = ["U0LEAD"], groups = ["S0VOD"] }"#,
        _ => "",
    }
}

/// Everyone a message on `kind` must mention: its channel's list and the route's `oncall01`.
fn expected(kind: ChannelType) -> Vec<&'static str> {
    let mut people = match kind {
        ChannelType::Dingtalk => vec!["mobile:13800000000", "user:manager4711", "user:oncall01"],
        ChannelType::Wecom => vec!["user:oncall01", "user:wecom-lead"],
        ChannelType::Feishu => vec!["all", "user:oncall01", "user:ou_lead"],
        ChannelType::Slack => vec!["group:S0VOD", "user:U0LEAD", "user:oncall01"],
        _ => vec![],
    };
    people.sort_unstable();
    people
}

/// Every mention form of every service, as an event's text may carry it.
const HOSTILE: &str = "@all @13800000000 @manager4711 <@oncall01> <@all> <at id=all></at> \
                       <at user_id=\"ou_lead\"></at> <at email=boss@example.com></at> <!channel> <!here> \
                       <!everyone> <@U0LEAD> <!subteam^S0VOD> `<!channel>` `@all`";

/// A failed workflow whose title, node name, error message and UserData are [`HOSTILE`].
fn hostile_failure(task: &str) -> String {
    let mut event: Value = serde_json::from_str(vodhook::samples::FAILED).unwrap();
    event["TaskId"] = json!(task);
    let mut input: Value = serde_json::from_str(event["TaskInput"].as_str().unwrap()).unwrap();
    input["Title"] = json!(HOSTILE);
    event["TaskInput"] = json!(input.to_string());
    let results =
        event["ActivityResults"].as_str().unwrap().replace("VodTranscode_a19f2", &format!("Vod {HOSTILE}"));
    let results =
        results.replace("The input file has no decodable audio stream.", &HOSTILE.replace('"', "'"));
    event["ActivityResults"] = json!(results);
    event["UserData"] = json!(HOSTILE);
    event.to_string()
}

fn failure(task: &str) -> String {
    let mut event: Value = serde_json::from_str(vodhook::samples::FAILED).unwrap();
    event["TaskId"] = json!(task);
    event.to_string()
}

/// The channels of the four stand-ins, each with its own mentions, and a route `extra_routes`
/// precede; the route `failures` adds `oncall01` (and `mobiles`, which only DingTalk writes).
fn config(robots: &[StandIn], head: &str, extra_routes: &str, channel_extra: &str) -> String {
    let mut toml = head.to_owned();
    let mut names = Vec::new();
    for robot in robots {
        let name = robot.kind().to_string();
        toml.push_str(&format!(
            "{}{}\n{channel_extra}\n\n",
            robot.channel_toml(&name),
            channel_mention(robot.kind())
        ));
        names.push(format!("{name:?}"));
    }
    let channels = names.join(", ");
    toml.push_str(extra_routes.replace("CHANNELS", &channels).as_str());
    toml.push_str(&format!(
        "[[routes]]\nname = \"failures\"\nchannels = [{channels}]\n\
         mention = {{ user_ids = [\"oncall01\"], mobiles = [\"13800000000\"] }}\n"
    ));
    toml
}

async fn robots() -> Vec<StandIn> {
    let mut robots = Vec::new();
    for kind in CHAT {
        robots.push(StandIn::start(kind).await);
    }
    robots
}

async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sorted(mut people: Vec<String>) -> Vec<String> {
    people.sort_unstable();
    people
}

/// Route `raw` writes the hostile values without any escaping filter, as a careless template
/// would; `builtin` uses the built-in messages. Neither may mention anyone but the configured.
const RAW_ROUTE: &str = "[[routes]]\nname = \"raw\"\nchannels = [CHANNELS]\ncontinue = true\n\
     mention = { user_ids = [\"oncall01\"] }\n\
     template = \"{{ title }} {% for n in nodes %}{{ n.name }} {{ n.error_message }}{% endfor %} {{ event.UserData }}\"\n\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_chat_service_mentions_the_configured_people_once_and_no_one_from_the_event() {
    let robots = robots().await;
    let vodhook = Vodhook::serve(&config(&robots, "", RAW_ROUTE, ""), &[]);
    let answer = post(&vodhook.url("/"), hostile_failure("task-hostile-1"), &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    for robot in &robots {
        wait_for(&format!("two messages on {}", robot.kind()), || robot.received().len() >= 2).await;
        for request in robot.received() {
            let found = sorted(read(robot.kind(), &request.json));
            assert_eq!(found, expected(robot.kind()), "{}: {}", robot.kind(), request.json);
        }
        // What was written is still there to read, disarmed (the raw route's message has it as
        // written; the built-in one escapes it as well).
        let text: String = robot
            .received()
            .iter()
            .flat_map(|r| strings(&r.json).concat().chars().collect::<Vec<_>>())
            .collect();
        let shown = match robot.kind() {
            ChannelType::Dingtalk | ChannelType::Wecom => {
                "＠all ＠13800000000 ＠manager4711 <＠oncall01> <＠all>"
            }
            ChannelType::Feishu => {
                "＜at id=all>＜/at> ＜at user_id=\"ou_lead\">＜/at> ＜at email=boss@example.com>"
            }
            _ => "＜!channel> ＜!here> ＜!everyone> ＜@U0LEAD> ＜!subteam^S0VOD> `＜!channel>`",
        };
        assert!(text.contains(shown), "{}: {text}", robot.kind());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_cut_to_its_size_limit_keeps_its_mentions() {
    let robots = robots().await;
    // 3,000 lines of about 60 bytes: over every service's limit.
    let huge = "[[routes]]\nname = \"huge\"\nchannels = [CHANNELS]\n\
                template = \"{% for i in range(3000) %}line {{ i }} of a long message about {{ video_id }}\\n{% endfor %}\"\n\n";
    let vodhook = Vodhook::serve(&config(&robots, "", huge, ""), &[]);
    let answer = post(&vodhook.url("/"), failure("task-huge-1"), &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    for robot in &robots {
        wait_for(&format!("the message on {}", robot.kind()), || !robot.received().is_empty()).await;
        let request = &robot.received()[0];
        assert!(strings(&request.json).concat().contains("line 0 of"), "{}", robot.kind());
        assert!(!strings(&request.json).concat().contains("line 2999 of"), "{} was not cut", robot.kind());
        let mut want = expected(robot.kind());
        want.retain(|p| *p != "user:oncall01"); // the route `huge` takes the event, and adds no one
        assert_eq!(sorted(read(robot.kind(), &request.json)), want, "{}", robot.kind());
        assert_eq!(robot.rejected(), Vec::<String>::new(), "{}", robot.kind());
    }
}

/// 30 failures held while each channel's budget (one message per 3 s) is spent: the digests
/// that carry them mention each person once per message, and every message mentions everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_digest_of_30_held_failures_mentions_each_person_once() {
    let redis = tokio::task::block_in_place(RedisServer::start);
    let robots = robots().await;
    let prefix = format!("m{}:", std::process::id());
    let head =
        format!("[store]\nbackend = \"redis\"\nurl = \"{}\"\nkey_prefix = \"{prefix}\"\n\n", redis.url());
    let pacing = "rate_per_minute = 1\nrate_window_secs = 3\nrate_per_second = 1";
    let cluster = Cluster::start(1, &config(&robots, &head, "", pacing)).await;
    let tasks: Vec<String> = (0..30).map(|i| format!("dg{}n{i:02}", std::process::id())).collect();
    for task in &tasks {
        let answer = post(&cluster.node(0).url("/"), failure(task), &[]).await;
        assert_eq!(answer.status, 200, "{}", answer.json);
    }
    let named = |robot: &StandIn| {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for request in robot.received() {
            let text = String::from_utf8_lossy(&request.body).into_owned();
            for task in tasks.iter().filter(|t| text.contains(t.as_str())) {
                *seen.entry(task.clone()).or_default() += 1;
            }
        }
        seen
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while robots.iter().any(|r| named(r).len() < tasks.len()) {
        assert!(Instant::now() < deadline, "not every task was delivered:\n{}", cluster.logs());
        let run = cluster.cli(&["drain"]).await;
        assert!(run.status.success(), "{}", run.output());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for robot in &robots {
        let received = robot.received();
        assert!(received.len() < tasks.len(), "{}: no digest ({} messages)", robot.kind(), received.len());
        assert!(named(robot).values().all(|&n| n == 1), "{}: {:?}", robot.kind(), named(robot));
        for request in received {
            assert_eq!(sorted(read(robot.kind(), &request.json)), expected(robot.kind()), "{}", robot.kind());
        }
    }
}

// ---- configuration -----------------------------------------------------------------------------

fn problems(toml: &str, env: &[(&str, &str)]) -> Vec<String> {
    let env: BTreeMap<String, String> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    match Setup::from_toml_str(toml, &|name| env.get(name).cloned()) {
        Ok(_) => Vec::new(),
        Err(err) => err.problems.iter().map(ToString::to_string).collect(),
    }
}

fn channel(kind: ChannelType, mention: &str) -> String {
    let url = match kind {
        ChannelType::Dingtalk => "https://oapi.dingtalk.com/robot/send?access_token=t",
        ChannelType::Wecom => "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
        _ => "https://example.com/hook",
    };
    format!("[[channels]]\nname = \"{kind}\"\ntype = \"{kind}\"\nurl = \"{url}\"\nmention = {mention}\n\n")
}

#[test]
fn a_mention_a_service_cannot_write_is_refused_naming_the_channel_the_key_and_what_it_takes() {
    let cases = [
        (
            ChannelType::Slack,
            "mobiles",
            "slack messages cannot mention by `mobiles`: it takes `user_ids`, `groups` and `all`",
        ),
        (
            ChannelType::Feishu,
            "mobiles",
            "feishu messages cannot mention by `mobiles`: it takes `user_ids` and `all`",
        ),
        (
            ChannelType::Wecom,
            "mobiles",
            "wecom markdown messages cannot mention by `mobiles`: it takes only `user_ids`",
        ),
        (
            ChannelType::Wecom,
            "groups",
            "wecom markdown messages cannot mention by `groups`: it takes only `user_ids`",
        ),
        (
            ChannelType::Dingtalk,
            "groups",
            "dingtalk messages cannot mention by `groups`: it takes `mobiles`, `user_ids` and `all`",
        ),
    ];
    for (kind, key, message) in cases {
        let toml = format!(
            "{}[[routes]]\nname = \"r\"\nchannels = [\"{kind}\"]\n",
            channel(kind, &format!("{{ {key} = [\"13800000000\"] }}"))
        );
        assert_eq!(problems(&toml, &[]), [format!("channels[0] \"{kind}\".mention.{key}: {message}")]);
    }
    let wecom_all = format!(
        "{}[[routes]]\nname = \"r\"\nchannels = [\"wecom\"]\n",
        channel(ChannelType::Wecom, "{ all = true }")
    );
    assert_eq!(
        problems(&wecom_all, &[]),
        [
            "channels[0] \"wecom\".mention.all: wecom markdown messages cannot mention by `all`: it takes only `user_ids`"
        ]
    );
    // A vod channel mentions no one: the key is another kind's.
    let vod = "[[channels]]\nname = \"rerun\"\ntype = \"vod\"\naction = \"SubmitWorkflowJob\"\nmention = { all = true }\n\
               [[routes]]\nname = \"r\"\nchannels = [\"rerun\"]\n";
    let found = problems(vod, &[]);
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("channels[0] \"rerun\".mention: is a setting of dingtalk, feishu")),
        "{found:?}"
    );
}

#[test]
fn a_route_mention_goes_where_it_can_and_is_refused_where_it_cannot_go_at_all() {
    let channels = format!("{}{}", channel(ChannelType::Dingtalk, "{}"), channel(ChannelType::Slack, "{}"));
    let partial = format!(
        "{channels}[[routes]]\nname = \"r\"\nchannels = [\"dingtalk\", \"slack\"]\nmention = {{ mobiles = [\"13800000000\"] }}\n"
    );
    let setup = Setup::from_toml_str(&partial, &|_| None).expect("a mobile DingTalk can write");
    let report = setup.report().to_string();
    assert!(
        report.contains(
            r#"routes[0] "r".mention.mobiles: skipped on "slack" (slack messages cannot mention by `mobiles`"#
        ),
        "{report}"
    );
    assert_eq!(setup.router.mentions("r", "dingtalk").unwrap().mobiles, ["13800000000"]);
    assert!(setup.router.mentions("r", "slack").unwrap().is_empty());

    // Neither DingTalk nor WeCom has user groups.
    let nowhere = format!(
        "{channels}{}[[routes]]\nname = \"r\"\nchannels = [\"dingtalk\", \"wecom\"]\nmention = {{ groups = [\"S1\"], user_ids = [\"u1\"] }}\n",
        channel(ChannelType::Wecom, "{}")
    );
    let found = problems(&nowhere, &[]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with(r#"routes[0] "r".mention.groups: no channel of the route can write it: "dingtalk" (dingtalk messages cannot mention by `groups`: it takes `mobiles`, `user_ids` and `all`); "wecom" (wecom markdown"#), "{found:?}");
}

#[test]
fn mention_ids_are_checked_and_may_come_from_the_environment() {
    let bad = format!(
        "{}[[routes]]\nname = \"r\"\nchannels = [\"dingtalk\"]\nmention = {{ user_ids = [\"<@all>\"] }}\n",
        channel(ChannelType::Dingtalk, r#"{ user_ids = [""], mobiles = ["call me"] }"#)
    );
    let found = problems(&bad, &[]);
    assert!(
        found.iter().any(|p| p.starts_with(r#"channels[0] "dingtalk".mention.user_ids[0]: is empty"#)),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|p| p.starts_with(r#"channels[0] "dingtalk".mention.mobiles[0]: "call me" holds ' '"#)),
        "{found:?}"
    );
    assert!(
        found.iter().any(|p| p.starts_with(r#"routes[0] "r".mention.user_ids[0]: "<@all>" holds '<'"#)),
        "{found:?}"
    );

    let from_env = format!(
        "{}[[routes]]\nname = \"r\"\nchannels = [\"slack\"]\nmention = {{ user_ids = [\"${{ONCALL}}\"] }}\n",
        channel(ChannelType::Slack, r#"{ groups = ["${VOD_TEAM}"] }"#)
    );
    let setup = Setup::from_toml_str(&from_env, &|name| {
        ["ONCALL", "VOD_TEAM"].contains(&name).then(|| format!("{name}-id"))
    })
    .expect("valid");
    let mentions = setup.router.mentions("r", "slack").unwrap();
    assert_eq!(
        (mentions.user_ids.as_slice(), mentions.groups.as_slice()),
        (&["ONCALL-id".to_owned()][..], &["VOD_TEAM-id".to_owned()][..])
    );
    assert!(problems(&from_env, &[]).iter().any(|p| p.contains("ONCALL is not set")));

    let typo = format!(
        "{}[[routes]]\nname = \"r\"\nchannels = [\"slack\"]\n",
        channel(ChannelType::Slack, r#"{ user_id = ["U1"] }"#)
    );
    let found = problems(&typo, &[]);
    assert!(
        found.iter().any(|p| p
            .starts_with(r#"channels[0] "slack".mention: unknown key `user_id`: did you mean `user_ids`?"#)),
        "{found:?}"
    );
}

#[test]
fn plan_shows_each_action_s_mentions_beside_its_payload() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "{}{}[[routes]]\nname = \"r\"\nchannels = [\"dingtalk\", \"webhook\"]\nmention = {{ user_ids = [\"oncall01\"] }}\n",
        channel(ChannelType::Dingtalk, r#"{ mobiles = ["13800000000"] }"#),
        channel(ChannelType::Webhook, "{}"),
    );
    let file = dir.path().join("vodhook.toml");
    std::fs::write(&file, toml).unwrap();
    let sample = dir.path().join("failed.json");
    std::fs::write(&sample, vodhook::samples::FAILED).unwrap();
    let run =
        run_cli(dir.path(), &["plan", "--config", file.to_str().unwrap(), sample.to_str().unwrap()], &[]);
    assert_eq!(run.code(), Some(0), "{}", run.output());
    let lines = run.ndjson();
    assert_eq!(lines.len(), 2, "{}", run.output());
    let want = json!({"mobiles": ["13800000000"], "user_ids": ["oncall01"], "groups": [], "all": false});
    assert_eq!(lines[0]["mentions"], want);
    assert_eq!(
        lines[0]["payload"]["at"],
        json!({"atMobiles": ["13800000000"], "atUserIds": ["oncall01"], "isAtAll": false})
    );
    assert!(
        lines[0]["payload"]["markdown"]["text"].as_str().unwrap().ends_with("\n\n@13800000000 @oncall01")
    );
    let webhook_wants = json!({"mobiles": [], "user_ids": ["oncall01"], "groups": [], "all": false});
    assert_eq!((&lines[1]["mentions"], &lines[1]["payload"]["mentions"]), (&webhook_wants, &webhook_wants));
}
