//! Slack incoming webhook: `POST https://hooks.slack.com/services/T…/B…/…`.
//!
//! No signature: the URL is the credential. Slack answers with a status and a short text body
//! (`ok`, or an error name such as `channel_is_archived`):
//!
//! | status         | meaning                                                  | outcome                |
//! |----------------|----------------------------------------------------------|------------------------|
//! | 2xx            | posted                                                   | Delivered              |
//! | 429            | rate limited                                             | Throttled, `Retry-After` |
//! | 5xx            | Slack's trouble                                          | Retry                  |
//! | 403            | `invalid_token`, `action_prohibited`                     | Permanent              |
//! | 404, 410       | `no_service`, `channel_not_found`, `channel_is_archived` | Permanent              |
//! | other          | `invalid_payload`, `no_text`, …                          | Permanent              |
//!
//! Messages are Block Kit: a plain-text header (so titles show exactly as they are), the body in
//! mrkdwn sections, and the headline as the notification `text`.

use http::StatusCode;
use serde_json::{Value, json};

use super::exchange::Reply;
use super::mention::{disarm_tags, opens_slack_mention};
use super::{Builtins, DigestText, Message, Outcome, ServiceLimits, check_url, non_empty};
use crate::config::{ChannelConfig, Findings, MentionKey, Mentions};
use crate::template::{Markup, escape};
use crate::text::{CUT_MARKER, chunks, truncate_chars};

/// Slack: header blocks take 150 characters, section text 3000, a message 50 blocks.
pub const HEADER_CHARS: usize = 150;
/// Block Kit: a button's text is at most 75 characters.
const BUTTON_TEXT_CHARS: usize = 75;
const SECTION_CHARS: usize = 3000;
pub const MAX_BLOCKS: usize = 50;
/// The notification `text` (Slack truncates messages over 40,000 characters; a headline is far
/// shorter, this bounds one that is not).
pub const NOTIFICATION_CHARS: usize = 3000;
/// Slack documents about one message a second per webhook and answers 429 beyond, with a
/// `Retry-After` that says how long to stay away.
pub const LIMITS: ServiceLimits = ServiceLimits { per_minute: None, per_second: Some(1), block_secs: 60 };
pub const MARKUP: Markup = Markup::Slack;

/// The play links and cover of `[vod] enrich`, included at the end of the built-in message; not
/// compiled (and so not included) when enrichment is off.
pub const VIDEO_TEMPLATE: (&str, &str) = (
    "builtin:video-slack_mrkdwn",
    r#"{% if video %}

{% if video.available %}
*{{ t("Watch") }}{{ t(":") }}* {% for p in video.play_urls %}{{ p.url | link((p.definition or "") ~ " " ~ (p.format or "")) }}{% if not loop.last %} · {% endif %}{% endfor %}

{% if video.cover_url %}
*{{ t("Cover") }}{{ t(":") }}* {{ video.cover_url | link(t("Cover")) }}
{% endif %}
_{{ t("Links valid until") }} {{ video.expires_at | time | md }}_
{% else %}
_{{ t("Play links unavailable") }}{{ t(": ") }}{{ video.reason | clip(200) | md }}_
{% endif %}
{% endif %}"#,
);

/// A digest in mrkdwn.
pub const DIGEST_TEMPLATE: (&str, &str) = (
    "builtin:slack-digest",
    r#"{% for group in groups %}
*{{ group.count }} × {% if group.failed %}{{ group.node | md }}{% if group.error_code %} {{ group.error_code | md }}{% endif %}{% if group.error_message %}{{ t(": ") }}{{ group.error_message | md }}{% endif %}{% else %}{{ group.status | status_word | md }}{% endif %}*
{% for item in group.items %}
{{ item.status | marker }} {{ (item.title or item.video_id or item.event_type) | md }} {% if item.task_id %}· {{ item.task_id | code }}{% else %}· {{ item.event_type | md }}{% endif %}

{% endfor %}

{% endfor %}"#,
);

/// A digest's text stays within this many characters (Slack shortens longer messages).
pub const DIGEST_CHARS: usize = 12_000;

/// `body` with an `actions` block of `buttons` last, when there are any.
fn with_actions(mut body: Value, buttons: &[super::Button]) -> Value {
    if let (false, Some(Value::Array(blocks))) = (buttons.is_empty(), body.get_mut("blocks")) {
        blocks.push(actions(buttons));
    }
    body
}

/// Block Kit's `actions` block: one link button per button (`url` opens it; `action_id` is
/// required and unique within the block).
fn actions(buttons: &[super::Button]) -> Value {
    let elements: Vec<Value> = buttons
        .iter()
        .enumerate()
        .map(|(i, b)| {
            json!({
                "type": "button",
                "text": { "type": "plain_text", "text": truncate_chars(&b.label, BUTTON_TEXT_CHARS), "emoji": true },
                "url": b.url,
                "action_id": format!("vodhook-{}-{i}", b.kind.as_str()),
            })
        })
        .collect();
    json!({ "type": "actions", "elements": elements })
}

fn body(headline: &str, pieces: Vec<String>, mention_line: &str) -> Value {
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": truncate_chars(headline, HEADER_CHARS), "emoji": true },
    })];
    let mentions = Some(mention_line).filter(|l| !l.is_empty()).map(str::to_owned);
    for piece in pieces.into_iter().chain(mentions) {
        blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text": piece } }));
    }
    let notification = escape(&truncate_chars(headline, NOTIFICATION_CHARS), Markup::Slack);
    json!({ "text": notification, "blocks": blocks })
}

/// `<@U…>` for users, `<!subteam^S…>` for user groups, `<!channel>` for everyone.
fn mention_line(mentions: &Mentions) -> String {
    let users = mentions.user_ids.iter().map(|id| format!("<@{id}>"));
    let groups = mentions.groups.iter().map(|id| format!("<!subteam^{id}>"));
    let all = mentions.all.then(|| "<!channel>".to_owned());
    users.chain(groups).chain(all).collect::<Vec<_>>().join(" ")
}

/// What the built-in messages are made of.
const BUILTINS: Builtins = Builtins {
    markup: MARKUP,
    // The plain-text header block shows the headline (title included) exactly as it is: the
    // text is the facts alone.
    message: ("builtin:slack", ""),
    facts: true,
    video: Some(VIDEO_TEMPLATE),
    digest: Some(DIGEST_TEMPLATE),
    written_out: None,
};

/// Slack's incoming webhook.
pub(super) struct Slack;

impl super::Messenger for Slack {
    fn check(&self, channel: &ChannelConfig, at: &str, f: &mut Findings) {
        check_url(channel, at, f);
    }
    fn builtins(&self, _: &ChannelConfig) -> &'static Builtins {
        &BUILTINS
    }
    /// A plain-text header, the body in mrkdwn sections of at most 3000 characters, and the headline
    /// as the notification text (which Slack parses as mrkdwn: escaped, so a title cannot
    /// `<!channel>` anyone). Mentions are a last section of their own, kept when the text is cut.
    fn message(&self, _: &ChannelConfig, m: &Message<'_>) -> Result<Value, String> {
        let line = mention_line(m.mentions);
        let room = MAX_BLOCKS - 1 - usize::from(!line.is_empty()) - usize::from(!m.buttons.is_empty());
        let mut pieces = chunks(non_empty(m.text)?, SECTION_CHARS);
        if pieces.len() > room {
            pieces.truncate(room);
            if let Some(last) = pieces.last_mut() {
                *last = format!("{}{}", truncate_chars(last, SECTION_CHARS - 1), CUT_MARKER);
            }
        }
        Ok(with_actions(body(m.headline, pieces, &line), m.buttons))
    }
    fn limits(&self) -> ServiceLimits {
        LIMITS
    }
    /// A digest's body, when its text fits whole: within [`DIGEST_CHARS`] and the block limit.
    fn digest(&self, _: &ChannelConfig, d: &DigestText<'_>) -> Option<Value> {
        let line = mention_line(d.mentions);
        let pieces = chunks(d.text, SECTION_CHARS);
        let room = MAX_BLOCKS - 1 - usize::from(!line.is_empty()) - usize::from(!d.buttons.is_empty());
        let fits = d.text.chars().count() <= DIGEST_CHARS && pieces.len() <= room;
        fits.then(|| with_actions(body(d.headline, pieces, &line), d.buttons))
    }
    fn classify(&self, reply: &Reply) -> Outcome {
        if reply.status.is_success() {
            return Outcome::Delivered;
        }
        if let Some(outcome) = reply.transient_or_throttled() {
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
    /// Users, user groups and the channel; Slack has no mention by mobile.
    fn mention_keys(&self) -> &'static [MentionKey] {
        &[MentionKey::UserIds, MentionKey::Groups, MentionKey::All]
    }
    /// `<@…>` and `<!…>` (links, `<https://…|label>`, are kept).
    fn disarm<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        disarm_tags(text, opens_slack_mention)
    }
    /// A section after the header.
    fn annotate(&self, _: &ChannelConfig, body: &mut Value, note: &str) {
        if let Some(Value::Array(blocks)) = body.get_mut("blocks") {
            let at = usize::from(!blocks.is_empty());
            blocks.insert(at, json!({ "type": "section", "text": { "type": "mrkdwn", "text": note } }));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::channel::Messenger as _;
    use crate::channel::test_support::*;
    use crate::config::ChannelType;

    #[test]
    fn long_bodies_are_split_into_sections() {
        let text: String = (0..400).map(|i| format!("line {i} of a long message\n")).collect();
        let slack = channel(ChannelType::Slack, "https://hooks.slack.com/services/T/B/x", None);
        let body = with_message("❌ headline", &text, |m| Slack.message(&slack, m).unwrap());
        let blocks = body["blocks"].as_array().unwrap();
        assert!(blocks.len() > 3);
        for block in &blocks[1..] {
            assert!(block["text"]["text"].as_str().unwrap().chars().count() <= SECTION_CHARS);
        }
        assert!(blocks[1]["text"]["text"].as_str().unwrap().starts_with("line 0 of"));
        assert_eq!(blocks[0]["text"]["text"], "❌ headline");
    }

    #[test]
    fn replies_are_classified_by_status() {
        assert_eq!(Slack.classify(&reply(200, "ok")), Outcome::Delivered);
        let mut limited = reply(429, "rate_limited");
        limited.retry_after = Some(Duration::from_secs(30));
        assert_eq!(
            Slack.classify(&limited),
            Outcome::Throttled {
                reason: "Slack rate limited (HTTP 429)".into(),
                after: Some(Duration::from_secs(30))
            }
        );
        assert!(matches!(Slack.classify(&reply(503, "")), Outcome::Retry { .. }));
        for (status, body) in [(403, "invalid_token"), (404, "no_service"), (410, "channel_is_archived")] {
            let outcome = Slack.classify(&reply(status, body));
            assert!(matches!(outcome, Outcome::Permanent { .. }), "{status}: {outcome:?}");
            assert!(outcome.reason().unwrap().ends_with(body), "{outcome:?}");
        }
        assert!(matches!(Slack.classify(&reply(400, "invalid_payload")), Outcome::Permanent { .. }));
    }
}
