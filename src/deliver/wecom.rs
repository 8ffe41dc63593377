//! WeCom (企业微信) group robot: `POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…`.
//!
//! No signature: the key in the URL is the credential (hence the URL is a secret). WeCom answers
//! `{"errcode": 0, "errmsg": "ok"}` or another `errcode`:
//!
//! | errcode        | meaning                                   | outcome           |
//! |----------------|-------------------------------------------|-------------------|
//! | 0              | sent                                      | Delivered         |
//! | -1             | system busy                               | Retry             |
//! | 45009          | over 20 messages a minute                 | Retry, after 60 s |
//! | 45033          | too many concurrent calls                 | Retry             |
//! | 93000          | invalid webhook URL (bad or deleted key)  | Permanent         |
//! | anything else  | (reason carries the code and `errmsg`)    | Permanent         |

use super::{ChannelError, CodeMeaning, CodeTable, Outcome, Post, Reply, channel_url, classify_coded};
use crate::action::Action;
use crate::config::ChannelConfig;

pub(crate) fn prepare(channel: &ChannelConfig, action: &Action) -> Result<Post, ChannelError> {
    Post::json(channel_url(channel)?, &action.payload)
}

const TABLE: CodeTable = CodeTable {
    service: "WeCom",
    code_fields: &["errcode"],
    message_fields: &["errmsg"],
    known: &[
        (-1, "system busy", CodeMeaning::Retry(None)),
        (45009, "over 20 messages a minute", CodeMeaning::Retry(Some(60))),
        (45033, "too many concurrent calls", CodeMeaning::Retry(None)),
        (93000, "invalid webhook URL", CodeMeaning::Permanent),
    ],
};

pub(crate) fn classify(reply: &Reply) -> Outcome {
    classify_coded(reply, &TABLE)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::action::ChannelType;
    use crate::deliver::test_support::*;

    #[test]
    fn prepare_posts_the_payload_to_the_url_with_its_key() {
        let url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k-1";
        let payload = json!({"msgtype": "markdown", "markdown": {"content": "x"}});
        let post =
            prepare(&channel(ChannelType::Wecom, url, None), &action(ChannelType::Wecom, payload.clone()))
                .unwrap();
        assert_eq!(post.url.as_str(), url);
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&post.body).unwrap(), payload);
    }

    #[test]
    fn replies_are_classified_by_errcode() {
        assert_eq!(classify(&reply(200, r#"{"errcode":0,"errmsg":"ok"}"#)), Outcome::Delivered);
        let limited = classify(&reply(200, r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#));
        assert_eq!(
            limited,
            Outcome::Retry {
                reason: "WeCom errcode 45009 (over 20 messages a minute): api freq out of limit".into(),
                after: Some(Duration::from_secs(60)),
            }
        );
        let invalid = classify(&reply(200, r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#));
        assert!(matches!(invalid, Outcome::Permanent { .. }), "{invalid:?}");
        assert!(matches!(classify(&reply(200, r#"{"errcode":40008}"#)), Outcome::Permanent { .. }));
        assert!(matches!(classify(&reply(500, "")), Outcome::Retry { .. }));
    }
}
