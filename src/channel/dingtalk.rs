//! DingTalk custom robot (自定义机器人): `POST https://oapi.dingtalk.com/robot/send?access_token=…`.
//!
//! With "加签" (signing) enabled the robot has a secret (`SEC…`), and every request carries
//! `timestamp` (now, in milliseconds; DingTalk refuses it an hour off) and
//! `sign = urlencode(base64(HMAC-SHA256(key = secret, msg = timestamp + "\n" + secret)))` as query
//! parameters. Without a secret the robot relies on keywords or an IP allow-list, and the
//! request is sent as is.
//!
//! DingTalk answers HTTP 200 with `{"errcode": 0, "errmsg": "ok"}`, or another `errcode`:
//!
//! | errcode          | meaning                                            | outcome          |
//! |------------------|----------------------------------------------------|------------------|
//! | 0                | sent                                               | Delivered        |
//! | -1               | system busy                                        | Retry            |
//! | 130101           | over 20 messages a minute: blocked for 10 minutes  | Throttled        |
//! | 310000           | bad signature, missing keyword or IP not allowed   | Permanent        |
//! | 300001, 300005   | bad `access_token`                                 | Permanent        |
//! | anything else    | (reason carries the code and `errmsg`)             | Permanent        |
//!
//! Messages are `markdown`: DingTalk documents no size limit for the text, but its robots refuse
//! request bodies over 20,000 bytes, so the text is cut to [`MAX_TEXT_BYTES`]. A robot takes 20
//! messages a minute, then answers 130101.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::exchange::{CodeMeaning, CodeTable, Post, Reply, classify_coded, hmac_sha256};
use super::mention::{disarm_at_signs, with_line};
use super::{
    Builtins, DigestText, Message, Outcome, Prepared, Request, ServiceLimits, channel_secret, channel_url,
    check_signing_secret, check_url, check_url_credential, fit, non_empty, whole,
};
use crate::action::Action;
use crate::config::{ChannelConfig, Findings, MentionKey, Mentions};
use crate::template::Markup;
use crate::text::truncate_chars;

/// DingTalk robots refuse request bodies over 20,000 bytes ("message too long, exceed 20000
/// bytes"): the body, serialised, is kept within this.
pub const MAX_BODY_BYTES: usize = 20_000;
/// The notification title is cut to this many characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// A robot accepts 20 messages a minute; the 21st is answered 130101 and the robot is blocked
/// for 10 minutes.
pub const LIMITS: ServiceLimits = ServiceLimits { per_minute: Some(20), per_second: None, block_secs: 600 };
/// DingTalk documents headings, bold, links and lists, not inline code.
pub const MARKUP: Markup = Markup::Dingtalk;

/// DingTalk markdown. DingTalk documents headings, bold, links and lists, not code, so ids are
/// plain text; list items keep one fact per line whatever the client.
pub const TEMPLATE: (&str, &str) = ("builtin:dingtalk", "#### {{ headline | md }}\n\n");

/// The play links and cover of `[vod] enrich`, included at the end of the built-in message; not
/// compiled (and so not included) when enrichment is off.
pub const VIDEO_TEMPLATE: (&str, &str) = (
    "builtin:video-dingtalk_markdown",
    r#"{% if video %}

{% if video.available %}
{% if video.cover_url %}
!{{ video.cover_url | link(t("Cover")) }}

{% endif %}
- {{ t("Watch") }}{{ t(": ") }}{% for p in video.play_urls %}{{ p.url | link((p.definition or "") ~ " " ~ (p.format or "")) }}{% if not loop.last %} · {% endif %}{% endfor %}

- {{ t("Links valid until") }} {{ video.expires_at | time | md }}
{% else %}
- {{ t("Play links unavailable") }}{{ t(": ") }}{{ video.reason | clip(200) | md }}
{% endif %}
{% endif %}"#,
);

/// A digest in DingTalk markdown: one bold heading per group (count, and for failures the node,
/// error code and message), then one line per event.
pub const DIGEST_TEMPLATE: (&str, &str) = (
    "builtin:dingtalk-digest",
    r#"#### {{ headline | md }}
{% for group in groups %}

**{{ group.count }} × {% if group.failed %}{{ group.node | md }}{% if group.error_code %} {{ group.error_code | md }}{% endif %}{% if group.error_message %}{{ t(": ") }}{{ group.error_message | md }}{% endif %}{% else %}{{ group.status | status_word | md }}{% endif %}**

{% for item in group.items %}
- {{ item.status | marker }} {{ (item.title or item.video_id or item.event_type) | md }} {% if item.task_id %}· {{ t("Task ID") }} {{ item.task_id | code }}{% else %}· {{ item.event_type | md }}{% endif %}

{% endfor %}
{% endfor %}"#,
);

/// DingTalk's `actionCard` with one button per link (`btns`, side by side when two or three).
fn action_card(title: &str, text: &str, buttons: &[super::Button]) -> Value {
    let btns: Vec<Value> = buttons.iter().map(|b| json!({ "title": b.label, "actionURL": b.url })).collect();
    let orientation = if (2..=3).contains(&buttons.len()) { "1" } else { "0" };
    json!({
        "msgtype": "actionCard",
        "actionCard": { "title": title, "text": text, "btnOrientation": orientation, "btns": btns },
    })
}

/// A markdown message; with mentions, DingTalk's `at` (a mention shows only when it is listed
/// there *and* written in the text as `@<mobile>` / `@<userId>`).
fn body(title: &str, text: &str, mentions: &Mentions) -> Value {
    let mut body = json!({ "msgtype": "markdown", "markdown": { "title": title, "text": text } });
    if !mentions.is_empty() {
        body["at"] = json!({
            "atMobiles": mentions.mobiles,
            "atUserIds": mentions.user_ids,
            "isAtAll": mentions.all,
        });
    }
    body
}

/// `@13800000000 @manager4711`: the text half of DingTalk's mentions (everyone: `at` alone).
fn mention_line(mentions: &Mentions) -> String {
    mentions.mobiles.iter().chain(&mentions.user_ids).map(|id| format!("@{id}")).collect::<Vec<_>>().join(" ")
}

/// The signature for `timestamp_ms`: base64, before the URL-encoding that the query adds.
pub fn sign(secret: &str, timestamp_ms: i64) -> String {
    let message = format!("{timestamp_ms}\n{secret}");
    STANDARD.encode(hmac_sha256(secret.as_bytes(), message.as_bytes()))
}

const TABLE: CodeTable = CodeTable {
    service: "DingTalk",
    code_fields: &["errcode"],
    message_fields: &["errmsg"],
    known: &[
        (-1, "system busy", CodeMeaning::Retry(None)),
        (130101, "over 20 messages a minute", CodeMeaning::Throttled),
        (310000, "bad signature, missing keyword or IP not allowed", CodeMeaning::Permanent),
        (300001, "bad access_token", CodeMeaning::Permanent),
        (300005, "bad access_token", CodeMeaning::Permanent),
    ],
};

/// What the built-in messages are made of.
const BUILTINS: Builtins = Builtins {
    markup: MARKUP,
    message: TEMPLATE,
    facts: true,
    video: Some(VIDEO_TEMPLATE),
    digest: Some(DIGEST_TEMPLATE),
    written_out: None,
};

/// DingTalk's custom robot.
pub(super) struct Dingtalk;

impl super::Messenger for Dingtalk {
    fn check(&self, channel: &ChannelConfig, at: &str, f: &mut Findings) {
        check_url(channel, at, f);
        check_url_credential(
            channel,
            at,
            f,
            "access_token",
            "https://oapi.dingtalk.com/robot/send?access_token=…",
        );
        check_signing_secret(channel, at, f);
        if channel.secret().is_some_and(|s| !s.is_empty() && !s.expose().starts_with("SEC")) {
            f.problem(
                format!("{at}.secret"),
                "is not a DingTalk signing secret: those start with `SEC` (the robot's 加签 setting shows it)",
            );
        }
    }
    fn builtins(&self, _: &ChannelConfig) -> &'static Builtins {
        &BUILTINS
    }
    fn limits(&self) -> ServiceLimits {
        LIMITS
    }
    /// `{"msgtype": "markdown", "markdown": {"title", "text"}}`: the title is what the notification
    /// shows, the text what the chat shows; the whole within [`MAX_BODY_BYTES`], the mention line
    /// kept whole when the text is cut.
    fn message(&self, _: &ChannelConfig, m: &Message<'_>) -> Result<Value, String> {
        let title = truncate_chars(m.headline, MAX_TITLE_CHARS);
        let text = non_empty(m.text)?;
        if !m.buttons.is_empty() && m.mentions.is_empty() {
            return Ok(fit(MAX_BODY_BYTES, text, |text| action_card(&title, text, m.buttons)));
        }
        // An actionCard cannot mention anyone (it has no `at`): with mentions, the buttons are
        // links at the end of the markdown, before the mention line.
        let line = super::markdown_links(m.buttons, &mention_line(m.mentions));
        Ok(fit(MAX_BODY_BYTES, text, |text| body(&title, &with_line(text, &line), m.mentions)))
    }
    /// A digest's body, when its text fits whole within [`MAX_BODY_BYTES`].
    fn digest(&self, _: &ChannelConfig, d: &DigestText<'_>) -> Option<Value> {
        let title = truncate_chars(d.headline, MAX_TITLE_CHARS);
        if !d.buttons.is_empty() && d.mentions.is_empty() {
            return whole(MAX_BODY_BYTES, action_card(&title, d.text, d.buttons));
        }
        let line = super::markdown_links(d.buttons, &mention_line(d.mentions));
        whole(MAX_BODY_BYTES, body(&title, &with_line(d.text, &line), d.mentions))
    }
    fn prepare(&self, channel: &ChannelConfig, action: &Action, now: DateTime<Utc>) -> Prepared {
        let mut url = channel_url(channel)?;
        if let Some(secret) = channel_secret(channel) {
            let timestamp = now.timestamp_millis();
            // `append_pair` form-encodes, which is the urlencode of the formula (`+` → `%2B`, …).
            url.query_pairs_mut()
                .append_pair("timestamp", &timestamp.to_string())
                .append_pair("sign", &sign(secret, timestamp));
        }
        Post::json(url, &action.payload).map(Request::Http)
    }
    fn classify(&self, reply: &Reply) -> Outcome {
        classify_coded(reply, &TABLE)
    }
    fn mention_keys(&self) -> &'static [MentionKey] {
        &[MentionKey::Mobiles, MentionKey::UserIds, MentionKey::All]
    }
    fn disarm<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        disarm_at_signs(text)
    }
    fn annotate(&self, _: &ChannelConfig, body: &mut Value, note: &str) {
        super::prepend_at(body, "/markdown/text", note);
        super::prepend_at(body, "/actionCard/text", note);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::channel::Messenger as _;
    use crate::channel::test_support::*;
    use crate::config::ChannelType;

    #[test]
    fn sign_matches_the_documented_vector() {
        let signature = sign("secret", 1_700_000_000_000);
        let encoded: String = url::form_urlencoded::byte_serialize(signature.as_bytes()).collect();
        assert_eq!(encoded, "OuzzJR5%2BxZ4%2FEYwqtNt6sMYZQMTa%2FHEGvc9miJe7XzY%3D");
    }

    #[test]
    fn prepare_appends_timestamp_and_encoded_sign_to_the_query() {
        let channel = channel(
            ChannelType::Dingtalk,
            "https://oapi.dingtalk.com/robot/send?access_token=abc",
            Some("secret"),
        );
        let payload = json!({"msgtype": "markdown", "markdown": {"title": "t", "text": "x"}});
        let action = action(ChannelType::Dingtalk, payload.clone());
        let post = prepared_at(&Dingtalk, &channel, &action, at_millis(1_700_000_000_000));
        assert_eq!(
            post.url.as_str(),
            "https://oapi.dingtalk.com/robot/send?access_token=abc&timestamp=1700000000000\
             &sign=OuzzJR5%2BxZ4%2FEYwqtNt6sMYZQMTa%2FHEGvc9miJe7XzY%3D"
        );
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&post.body).unwrap(), payload);
        assert_eq!(post.headers["content-type"], "application/json");
    }

    #[test]
    fn prepare_without_a_secret_leaves_the_url_alone() {
        let url = "https://oapi.dingtalk.com/robot/send?access_token=abc";
        let channel = channel(ChannelType::Dingtalk, url, Some(""));
        let post = prepared_at(&Dingtalk, &channel, &action(ChannelType::Dingtalk, json!({})), at_millis(0));
        assert_eq!(post.url.as_str(), url);
    }

    #[test]
    fn replies_are_classified_by_errcode() {
        assert_eq!(Dingtalk.classify(&reply(200, r#"{"errcode":0,"errmsg":"ok"}"#)), Outcome::Delivered);
        assert_eq!(
            Dingtalk.classify(&reply(
                200,
                r#"{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}"#
            )),
            Outcome::Throttled {
                reason:
                    "DingTalk errcode 130101 (over 20 messages a minute): send too fast, exceed 20 times \
                         per minute"
                        .into(),
                after: None,
            }
        );
        assert!(matches!(
            Dingtalk.classify(&reply(200, r#"{"errcode":-1,"errmsg":"busy"}"#)),
            Outcome::Retry { .. }
        ));
        for code in [310000, 300001, 300005, 400102, 123456789] {
            let body = format!(r#"{{"errcode":{code},"errmsg":"nope"}}"#);
            let outcome = Dingtalk.classify(&reply(200, &body));
            assert!(matches!(outcome, Outcome::Permanent { .. }), "{code}: {outcome:?}");
            assert!(outcome.reason().unwrap().contains(&code.to_string()));
        }
        assert!(matches!(Dingtalk.classify(&reply(502, "bad gateway")), Outcome::Retry { .. }));
        assert!(matches!(Dingtalk.classify(&reply(404, "not found")), Outcome::Permanent { .. }));
        assert!(matches!(Dingtalk.classify(&reply(200, "<html>")), Outcome::Permanent { .. }));
    }
}
