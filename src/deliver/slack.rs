//! Slack incoming webhook: `POST https://hooks.slack.com/services/T…/B…/…`.
//!
//! No signature: the URL is the credential. Slack answers with a status and a short text body
//! (`ok`, or an error name such as `channel_is_archived`):
//!
//! | status         | meaning                                                  | outcome                |
//! |----------------|----------------------------------------------------------|------------------------|
//! | 2xx            | posted                                                   | Delivered              |
//! | 429            | rate limited                                             | Retry, `Retry-After`   |
//! | 5xx            | Slack's trouble                                          | Retry                  |
//! | 403            | `invalid_token`, `action_prohibited`                     | Permanent              |
//! | 404, 410       | `no_service`, `channel_not_found`, `channel_is_archived` | Permanent              |
//! | other          | `invalid_payload`, `no_text`, …                          | Permanent              |

use http::StatusCode;

use super::{ChannelError, Outcome, Post, Reply, channel_url};
use crate::action::Action;
use crate::config::ChannelConfig;

pub(crate) fn prepare(channel: &ChannelConfig, action: &Action) -> Result<Post, ChannelError> {
    Post::json(channel_url(channel)?, &action.payload)
}

pub(crate) fn classify(reply: &Reply) -> Outcome {
    if reply.status.is_success() {
        return Outcome::Delivered;
    }
    if let Some(outcome) = reply.transient() {
        return outcome.map_reason(|r| format!("Slack {r}"));
    }
    let meaning = match reply.status {
        StatusCode::FORBIDDEN => "the webhook's token is invalid or posting is not allowed",
        StatusCode::NOT_FOUND | StatusCode::GONE => "the webhook or its channel is gone",
        StatusCode::BAD_REQUEST => "Slack refused the message",
        _ => "unexpected status",
    };
    Outcome::permanent(format!("Slack HTTP {} ({meaning}): {}", reply.status, reply.text_snippet()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::deliver::test_support::*;

    #[test]
    fn replies_are_classified_by_status() {
        assert_eq!(classify(&reply(200, "ok")), Outcome::Delivered);
        let mut limited = reply(429, "rate_limited");
        limited.retry_after = Some(Duration::from_secs(30));
        assert_eq!(
            classify(&limited),
            Outcome::Retry {
                reason: "Slack rate limited (HTTP 429)".into(),
                after: Some(Duration::from_secs(30))
            }
        );
        assert!(matches!(classify(&reply(503, "")), Outcome::Retry { .. }));
        for (status, body) in [(403, "invalid_token"), (404, "no_service"), (410, "channel_is_archived")] {
            let outcome = classify(&reply(status, body));
            assert!(matches!(outcome, Outcome::Permanent { .. }), "{status}: {outcome:?}");
            assert!(outcome.reason().unwrap().ends_with(body), "{outcome:?}");
        }
        assert!(matches!(classify(&reply(400, "invalid_payload")), Outcome::Permanent { .. }));
    }
}
