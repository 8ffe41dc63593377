//! Feishu / Lark custom bot (自定义机器人): `POST https://open.feishu.cn/open-apis/bot/v2/hook/…`.
//!
//! With "签名校验" (signature) enabled, the JSON body gets two more top-level fields:
//! `timestamp` (now, in seconds, as a string) and
//! `sign = base64(HMAC-SHA256(key = timestamp + "\n" + secret, msg = empty))`. Note the key is
//! the timestamp-and-secret string and the message is empty; several client libraries swap them,
//! which Feishu rejects with 19021.
//!
//! Feishu answers `{"code": 0, "msg": "success"}` (older bots: `{"StatusCode": 0}`):
//!
//! | code           | meaning                                         | outcome    |
//! |----------------|-------------------------------------------------|------------|
//! | 0              | sent                                            | Delivered  |
//! | 9499           | too many requests (100 a minute, 5 a second)    | Retry      |
//! | 11232          | frequency limited                               | Retry      |
//! | 19021          | bad signature, or timestamp over an hour off    | Permanent  |
//! | 19022          | IP not allowed                                  | Permanent  |
//! | 19024          | keyword missing                                 | Permanent  |
//! | anything else  | (reason carries the code and `msg`)             | Permanent  |

use chrono::{DateTime, Utc};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::{
    ChannelError, CodeMeaning, CodeTable, Outcome, Post, Reply, channel_secret, channel_url, classify_coded,
    hmac_sha256,
};
use crate::action::Action;
use crate::config::ChannelConfig;

/// The signature for `timestamp` (seconds).
pub fn sign(secret: &str, timestamp: i64) -> String {
    let key = format!("{timestamp}\n{secret}");
    STANDARD.encode(hmac_sha256(key.as_bytes(), b""))
}

pub(crate) fn prepare(
    channel: &ChannelConfig,
    action: &Action,
    now: DateTime<Utc>,
) -> Result<Post, ChannelError> {
    let url = channel_url(channel)?;
    let Some(secret) = channel_secret(channel) else {
        return Post::json(url, &action.payload);
    };
    let Value::Object(body) = &action.payload else {
        return Err(ChannelError::NotAnObject {
            service: "Feishu",
            found: crate::event::kind_of(&action.payload),
        });
    };
    let timestamp = now.timestamp();
    let mut body = body.clone();
    body.insert("timestamp".to_owned(), Value::String(timestamp.to_string()));
    body.insert("sign".to_owned(), Value::String(sign(secret, timestamp)));
    Post::json(url, &Value::Object(body))
}

const TABLE: CodeTable = CodeTable {
    service: "Feishu",
    code_fields: &["code", "StatusCode"],
    message_fields: &["msg", "StatusMessage"],
    known: &[
        (9499, "too many requests", CodeMeaning::Retry(None)),
        (11232, "frequency limited", CodeMeaning::Retry(None)),
        (19021, "bad signature, or timestamp over an hour off", CodeMeaning::Permanent),
        (19022, "IP not allowed", CodeMeaning::Permanent),
        (19024, "keyword missing", CodeMeaning::Permanent),
    ],
};

pub(crate) fn classify(reply: &Reply) -> Outcome {
    classify_coded(reply, &TABLE)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::action::ChannelType;
    use crate::deliver::test_support::*;

    #[test]
    fn sign_matches_the_documented_vector() {
        assert_eq!(sign("secret", 1_599_360_473), "q4jswNiMy51J5JuQV566yJat0/lQ/c+22kINzUgKsGU=");
    }

    #[test]
    fn prepare_adds_timestamp_and_sign_to_the_body() {
        let channel =
            channel(ChannelType::Feishu, "https://open.feishu.cn/open-apis/bot/v2/hook/x", Some("secret"));
        let payload = json!({"msg_type": "text", "content": {"text": "hi"}});
        let post =
            prepare(&channel, &action(ChannelType::Feishu, payload), at_millis(1_599_360_473_123)).unwrap();
        let body: Value = serde_json::from_slice(&post.body).unwrap();
        assert_eq!(
            body,
            json!({
                "msg_type": "text",
                "content": {"text": "hi"},
                "timestamp": "1599360473",
                "sign": "q4jswNiMy51J5JuQV566yJat0/lQ/c+22kINzUgKsGU=",
            })
        );
        assert_eq!(post.url.as_str(), "https://open.feishu.cn/open-apis/bot/v2/hook/x");
    }

    #[test]
    fn a_signed_body_must_be_an_object() {
        let channel =
            channel(ChannelType::Feishu, "https://open.feishu.cn/open-apis/bot/v2/hook/x", Some("s"));
        let error = prepare(&channel, &action(ChannelType::Feishu, json!("text")), at_millis(0)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Feishu expects the body to be a JSON object, but the template made a string"
        );
    }

    #[test]
    fn replies_are_classified_by_code() {
        assert_eq!(classify(&reply(200, r#"{"code":0,"data":{},"msg":"success"}"#)), Outcome::Delivered);
        assert_eq!(
            classify(&reply(200, r#"{"Extra":null,"StatusCode":0,"StatusMessage":"success"}"#)),
            Outcome::Delivered
        );
        assert_eq!(
            classify(&reply(200, r#"{"code":9499,"data":{},"msg":"too many request"}"#)),
            Outcome::Retry {
                reason: "Feishu code 9499 (too many requests): too many request".into(),
                after: None
            }
        );
        let bad_sign = classify(&reply(
            200,
            r#"{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}"#,
        ));
        assert!(matches!(bad_sign, Outcome::Permanent { .. }), "{bad_sign:?}");
        // Feishu has been seen to answer parameter errors with HTTP 400 and a code.
        let outcome = classify(&reply(400, r#"{"code":19002,"msg":"params error"}"#));
        assert!(outcome.reason().unwrap().contains("19002"), "{outcome:?}");
        assert!(matches!(outcome, Outcome::Permanent { .. }));
        assert!(matches!(classify(&reply(503, "")), Outcome::Retry { .. }));
    }
}
