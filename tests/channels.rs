//! Each channel against a stand-in for its service (a real HTTP server on 127.0.0.1 that checks
//! tokens and signatures with the documented formulas): delivery, rate limits, configuration
//! errors, timeouts and server errors, and that no reason ever names a secret.

mod support;

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use support::standins::{Behaviour, SLACK_RETRY_AFTER, StandIn, Verdict, WEBHOOK_RETRY_AFTER};
use vodhook::action::Action;
use vodhook::channel::{ChannelType, Outcome, Sender};
use vodhook::redact::Secret;

/// Generous: only the timeout tests are meant to time out, and they use [`SHORT_TIMEOUT`].
const TIMEOUT: Duration = Duration::from_secs(10);
const SHORT_TIMEOUT: Duration = Duration::from_millis(300);

/// A body like the one the channel's default template makes.
fn payload(kind: ChannelType) -> Value {
    let text = "## ❌ Failed: 大象.mp4\n- video: 5aa3c2b1\n- transcode: Failed (InvalidParameter)";
    match kind {
        ChannelType::Dingtalk => {
            json!({"msgtype": "markdown", "markdown": {"title": "❌ Failed", "text": text}})
        }
        ChannelType::Feishu => json!({
            "msg_type": "interactive",
            "card": {"header": {"title": {"tag": "plain_text", "content": "❌ Failed"}},
                     "elements": [{"tag": "markdown", "content": text}]}
        }),
        ChannelType::Wecom => json!({"msgtype": "markdown", "markdown": {"content": text}}),
        ChannelType::Slack => json!({
            "text": "❌ Failed: 大象.mp4",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
        }),
        ChannelType::Webhook | ChannelType::Log => json!({
            "route": "failures",
            "summary": {"status": "Failed", "title": "大象.mp4", "video_id": "5aa3c2b1"},
            "event": {"EventType": "WorkflowTaskComplete", "Status": "Failed"}
        }),
        ChannelType::Vod => json!({"Action": "SubmitWorkflowJob", "Params": {"MediaId": "5aa3c2b1"}}),
    }
}

fn action(kind: ChannelType) -> Action {
    let event = "WorkflowTaskComplete:task-7f3a";
    Action {
        key: Action::key_for(event, "failures", "ops"),
        event: event.to_owned(),
        route: "failures".to_owned(),
        channel: "ops".to_owned(),
        channel_type: kind,
        payload: payload(kind),
        brief: None,
        resolution: None,
        group: None,
    }
}

async fn send(standin: &StandIn, timeout: Duration) -> Outcome {
    Sender::new().send(&standin.channel_config("ops"), &action(standin.kind()), timeout).await
}

/// The reason of a failed outcome names no token, secret or URL of the stand-in.
fn assert_no_secrets(outcome: &Outcome, standin: &StandIn) {
    let reason = outcome.reason().unwrap_or_default();
    for secret in standin.secrets() {
        assert!(!reason.contains(&secret), "the reason `{reason}` contains the secret `{secret}`");
    }
}

async fn delivers_a_message_the_service_verifies(kind: ChannelType) {
    let standin = StandIn::start(kind).await;
    assert_eq!(send(&standin, TIMEOUT).await, Outcome::Delivered);
    assert_eq!(standin.rejected(), Vec::<String>::new());
    let received = standin.received();
    assert_eq!(received.len(), 1);
    let mut body = received[0].json.clone();
    if kind == ChannelType::Feishu {
        let signed = body.as_object_mut().unwrap();
        assert!(signed.remove("sign").is_some() && signed.remove("timestamp").is_some(), "{signed:?}");
    }
    assert_eq!(body, payload(kind));
}

/// The stand-in really checks: a wrong secret (or a wrong token, for services without one) is
/// refused, and vodhook takes the refusal as permanent.
async fn wrong_credentials_are_refused_for_good(kind: ChannelType) {
    let standin = StandIn::start(kind).await;
    let mut config = standin.channel_config("ops");
    match standin.secret() {
        Some(_) if kind == ChannelType::Webhook => {
            let other = base64::engine::general_purpose::STANDARD.encode(b"not the stand-in's secret");
            *config.service.secret_mut().expect("a signing service") =
                Some(Secret::new(format!("whsec_{other}")));
        }
        Some(_) => {
            *config.service.secret_mut().expect("a signing service") =
                Some(Secret::new("SECnot-the-stand-ins-secret"))
        }
        None => {
            let forged = "0".repeat(standin.token().len());
            let url = Secret::new(standin.url().replace(standin.token(), &forged));
            *config.service.url_mut().expect("a robot's address") = Some(url);
        }
    }
    let outcome = Sender::new().send(&config, &action(kind), TIMEOUT).await;
    assert!(matches!(outcome, Outcome::Permanent { .. }), "{outcome:?}");
    assert_eq!(standin.rejected().len(), 1);
    assert!(standin.received().is_empty());
    assert_no_secrets(&outcome, &standin);
}

/// A chat service's "too fast" is `Throttled` (the channel is then blocked; `after` is its
/// `Retry-After`); a webhook receiver's 429 is an ordinary retry.
async fn rate_limits_are_reported(kind: ChannelType, after: Option<Duration>) {
    let standin = StandIn::start(kind).await;
    standin.set_behaviour(Behaviour::RateLimit);
    let outcome = send(&standin, TIMEOUT).await;
    let hint = match (&outcome, kind) {
        (Outcome::Retry { after, .. }, ChannelType::Webhook) => after,
        (
            Outcome::Throttled { after, .. },
            ChannelType::Dingtalk | ChannelType::Feishu | ChannelType::Wecom | ChannelType::Slack,
        ) => after,
        _ => panic!("{kind}: {outcome:?}"),
    };
    assert_eq!(*hint, after);
    assert!(standin.received().is_empty());
    assert!(standin.rejected().is_empty(), "{:?}", standin.rejected());
    assert_no_secrets(&outcome, &standin);
}

async fn configuration_errors_are_permanent(kind: ChannelType) {
    let standin = StandIn::start(kind).await;
    standin.set_behaviour(Behaviour::ConfigError);
    let outcome = send(&standin, TIMEOUT).await;
    assert!(matches!(outcome, Outcome::Permanent { .. }), "{outcome:?}");
    assert!(standin.rejected().is_empty(), "{:?}", standin.rejected());
    assert_no_secrets(&outcome, &standin);
}

async fn timeouts_are_retried_and_the_retry_delivers(kind: ChannelType) {
    let standin = StandIn::start(kind).await;
    standin.fail_next(1, Behaviour::Hang);
    let outcome = send(&standin, SHORT_TIMEOUT).await;
    let Outcome::Retry { reason, after: None } = &outcome else { panic!("{outcome:?}") };
    assert!(reason.starts_with("timed out after 300ms"), "{reason}");
    assert_no_secrets(&outcome, &standin);
    assert_eq!(send(&standin, TIMEOUT).await, Outcome::Delivered);
    assert_eq!(standin.received().len(), 1);
}

async fn server_errors_are_retried(kind: ChannelType) {
    let standin = StandIn::start(kind).await;
    standin.fail_next(2, Behaviour::ServerError);
    for _ in 0..2 {
        let outcome = send(&standin, TIMEOUT).await;
        assert!(matches!(outcome, Outcome::Retry { after: None, .. }), "{outcome:?}");
        assert_no_secrets(&outcome, &standin);
    }
    assert_eq!(send(&standin, TIMEOUT).await, Outcome::Delivered);
    assert_eq!(standin.requests().len(), 3);
    assert_eq!(standin.received().len(), 1);
}

macro_rules! channel_tests {
    ($module:ident, $kind:expr, rate_limit_after: $after:expr) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn delivers_a_message_the_service_verifies() {
                super::delivers_a_message_the_service_verifies($kind).await;
            }

            #[tokio::test]
            async fn wrong_credentials_are_refused_for_good() {
                super::wrong_credentials_are_refused_for_good($kind).await;
            }

            #[tokio::test]
            async fn rate_limits_are_reported() {
                super::rate_limits_are_reported($kind, $after).await;
            }

            #[tokio::test]
            async fn configuration_errors_are_permanent() {
                super::configuration_errors_are_permanent($kind).await;
            }

            #[tokio::test]
            async fn timeouts_are_retried_and_the_retry_delivers() {
                super::timeouts_are_retried_and_the_retry_delivers($kind).await;
            }

            #[tokio::test]
            async fn server_errors_are_retried() {
                super::server_errors_are_retried($kind).await;
            }
        }
    };
}

channel_tests!(dingtalk, ChannelType::Dingtalk, rate_limit_after: None);
channel_tests!(feishu, ChannelType::Feishu, rate_limit_after: None);
channel_tests!(wecom, ChannelType::Wecom, rate_limit_after: None);
channel_tests!(slack, ChannelType::Slack, rate_limit_after: Some(Duration::from_secs(SLACK_RETRY_AFTER)));
channel_tests!(webhook, ChannelType::Webhook, rate_limit_after: Some(Duration::from_secs(WEBHOOK_RETRY_AFTER)));

#[tokio::test]
async fn webhook_id_is_the_action_message_id_on_every_attempt() {
    let standin = StandIn::start(ChannelType::Webhook).await;
    standin.fail_next(1, Behaviour::ServerError);
    assert!(matches!(send(&standin, TIMEOUT).await, Outcome::Retry { .. }));
    assert_eq!(send(&standin, TIMEOUT).await, Outcome::Delivered);
    let requests = standin.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].verdict, Verdict::Answered(Behaviour::ServerError));
    let id = action(ChannelType::Webhook).message_id();
    for request in &requests {
        assert_eq!(request.headers["webhook-id"], id.as_str());
        assert!(request.headers["webhook-signature"].to_str().unwrap().starts_with("v1,"));
    }
}

#[tokio::test]
async fn webhook_sends_the_configured_headers() {
    let standin = StandIn::start(ChannelType::Webhook).await;
    let mut config = standin.channel_config("ops");
    let vodhook::config::Service::Webhook(hook) = &mut config.service else { panic!("a webhook channel") };
    hook.headers.insert("Authorization".into(), "Bearer header-secret-123".into());
    hook.headers.insert("X-Environment".into(), "staging".into());
    let outcome = Sender::new().send(&config, &action(ChannelType::Webhook), TIMEOUT).await;
    assert_eq!(outcome, Outcome::Delivered);
    let received = standin.received();
    assert_eq!(received[0].headers["authorization"], "Bearer header-secret-123");
    assert_eq!(received[0].headers["x-environment"], "staging");
}

#[tokio::test]
async fn a_slow_reply_within_the_timeout_is_delivered() {
    let standin = StandIn::start(ChannelType::Dingtalk).await;
    standin.fail_next(1, Behaviour::Delay(Duration::from_millis(50)));
    assert_eq!(send(&standin, TIMEOUT).await, Outcome::Delivered);
    assert_eq!(standin.received().len(), 1);
}

#[tokio::test]
async fn one_sender_serves_many_channels_concurrently() {
    let kinds = [
        ChannelType::Dingtalk,
        ChannelType::Feishu,
        ChannelType::Wecom,
        ChannelType::Slack,
        ChannelType::Webhook,
    ];
    let mut standins = Vec::new();
    for kind in kinds {
        standins.push(StandIn::start(kind).await);
    }
    // Shared the way the handler shares it: one client, one connection pool, all channels at once.
    let sender = std::sync::Arc::new(Sender::new());
    let mut tasks = tokio::task::JoinSet::new();
    for standin in &standins {
        let (sender, config, action) =
            (sender.clone(), standin.channel_config("ops"), action(standin.kind()));
        tasks.spawn(async move { sender.send(&config, &action, TIMEOUT).await });
    }
    while let Some(outcome) = tasks.join_next().await {
        assert_eq!(outcome.unwrap(), Outcome::Delivered);
    }
    for standin in &standins {
        assert_eq!(standin.received().len(), 1, "{}", standin.kind());
    }
}

#[tokio::test]
async fn the_log_channel_delivers_without_a_network() {
    let config: vodhook::config::ChannelConfig = toml::from_str("name = \"ops\"\ntype = \"log\"").unwrap();
    let outcome = Sender::new().send(&config, &action(ChannelType::Log), TIMEOUT).await;
    assert_eq!(outcome, Outcome::Delivered);
}

/// The stand-ins refuse signatures made with a stale timestamp, as the services do (DingTalk
/// and Feishu: an hour; Standard Webhooks: five minutes).
#[tokio::test]
async fn stand_ins_refuse_stale_signatures() {
    use vodhook::channel::{dingtalk, feishu, webhook};
    let client = reqwest::Client::new();
    let two_hours_ago = chrono::Utc::now() - chrono::Duration::hours(2);

    let standin = StandIn::start(ChannelType::Dingtalk).await;
    let ts = two_hours_ago.timestamp_millis();
    let mut url = url::Url::parse(standin.url()).unwrap();
    url.query_pairs_mut()
        .append_pair("timestamp", &ts.to_string())
        .append_pair("sign", &dingtalk::sign(standin.secret().unwrap(), ts));
    let reply = post(&client, url.as_str(), &[], payload(ChannelType::Dingtalk).to_string()).await;
    assert_eq!(reply["errcode"], 310000);
    assert_eq!(standin.rejected(), ["stale timestamp"]);

    let standin = StandIn::start(ChannelType::Feishu).await;
    let ts = two_hours_ago.timestamp();
    let mut body = payload(ChannelType::Feishu);
    body["timestamp"] = json!(ts.to_string());
    body["sign"] = json!(feishu::sign(standin.secret().unwrap(), ts));
    let reply = post(&client, standin.url(), &[], body.to_string()).await;
    assert_eq!(reply["code"], 19021);
    assert_eq!(standin.rejected().len(), 1);

    let standin = StandIn::start(ChannelType::Webhook).await;
    let ts = two_hours_ago.timestamp();
    let body = payload(ChannelType::Webhook).to_string();
    let (key, _) = webhook::signing_key(standin.secret().unwrap()).unwrap();
    let signature = webhook::sign(&key, "msg_1", ts, body.as_bytes());
    let headers = [
        ("webhook-id", "msg_1".to_owned()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", signature),
    ];
    post(&client, standin.url(), &headers, body).await;
    assert_eq!(standin.rejected(), ["stale webhook-timestamp"]);
}

async fn post(client: &reqwest::Client, url: &str, headers: &[(&str, String)], body: String) -> Value {
    let mut request = client.post(url).header("content-type", "application/json").body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let reply = request.send().await.unwrap();
    serde_json::from_slice(&reply.bytes().await.unwrap()).unwrap_or(Value::Null)
}
