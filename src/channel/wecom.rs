//! WeCom (企业微信) group robot: `POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…`.
//!
//! No signature: the key in the URL is the credential (hence the URL is a secret). WeCom answers
//! `{"errcode": 0, "errmsg": "ok"}` or another `errcode`:
//!
//! | errcode        | meaning                                   | outcome           |
//! |----------------|-------------------------------------------|-------------------|
//! | 0              | sent                                      | Delivered         |
//! | -1             | system busy                               | Retry             |
//! | 45009          | over 20 messages a minute                 | Throttled         |
//! | 45033          | too many concurrent calls                 | Retry             |
//! | 93000          | invalid webhook URL (bad or deleted key)  | Permanent         |
//! | anything else  | (reason carries the code and `errmsg`)    | Permanent         |
//!
//! Messages are `markdown`, whose `content` WeCom refuses over 4096 bytes; a robot takes 20
//! messages a minute, then answers 45009.

use serde_json::{Value, json};

use super::exchange::{CodeMeaning, CodeTable, Reply, classify_coded};
use super::mention::{disarm_at_signs, with_line};
use super::{
    Builtins, DigestText, Message, Outcome, ServiceLimits, check_url, check_url_credential, non_empty,
};
use crate::config::{ChannelConfig, Findings, MentionKey, Mentions};
use crate::template::Markup;
use crate::text::truncate_bytes;

/// WeCom rejects markdown `content` over 4096 bytes.
pub const MAX_CONTENT_BYTES: usize = 4096;
/// A robot accepts 20 messages a minute, then answers 45009 (no documented block: a minute).
pub const LIMITS: ServiceLimits = ServiceLimits { per_minute: Some(20), per_second: None, block_secs: 60 };
pub const MARKUP: Markup = Markup::Wecom;

/// WeCom markdown: newlines are line breaks; `<font color>` takes `info` (green), `warning`
/// (orange-red) and `comment` (grey); inline code is supported. (No `>` quote for errors: how
/// far a quote reaches is not documented, and it could swallow the next node's line.)
pub const TEMPLATE: (&str, &str) = ("builtin:wecom", "### {{ headline | md }}\n");

/// The play links and cover of `[vod] enrich`, included at the end of the built-in message; not
/// compiled (and so not included) when enrichment is off.
pub const VIDEO_TEMPLATE: (&str, &str) = (
    "builtin:video-wecom_markdown",
    r#"{% if video %}

{% if video.available %}
{{ t("Watch") }}{{ t(": ") }}{% for p in video.play_urls %}{{ p.url | link((p.definition or "") ~ " " ~ (p.format or "")) }}{% if not loop.last %} · {% endif %}{% endfor %}

{% if video.cover_url %}
{{ t("Cover") }}{{ t(": ") }}{{ video.cover_url | link(t("Cover")) }}
{% endif %}
<font color="comment">{{ t("Links valid until") }} {{ video.expires_at | time | md }}</font>
{% else %}
<font color="comment">{{ t("Play links unavailable") }}{{ t(": ") }}{{ video.reason | clip(200) | md }}</font>
{% endif %}
{% endif %}"#,
);

/// A digest in WeCom markdown (4096 bytes a message: groups and short lines).
pub const DIGEST_TEMPLATE: (&str, &str) = (
    "builtin:wecom-digest",
    r#"### {{ headline | md }}
{% for group in groups %}
<font color="{{ "warning" if group.failed else ("info" if group.ok else "comment") }}">{{ group.count }} × {% if group.failed %}{{ group.node | md }}{% if group.error_code %} {{ group.error_code | md }}{% endif %}{% if group.error_message %}{{ t(": ") }}{{ group.error_message | md }}{% endif %}{% else %}{{ group.status | status_word | md }}{% endif %}</font>
{% for item in group.items %}
> {{ (item.title or item.video_id or item.event_type) | md }} {% if item.task_id %}· {{ item.task_id | code }}{% else %}· {{ item.event_type | md }}{% endif %}

{% endfor %}
{% endfor %}"#,
);

/// What the built-in messages are made of.
const BUILTINS: Builtins = Builtins {
    markup: MARKUP,
    message: TEMPLATE,
    facts: true,
    video: Some(VIDEO_TEMPLATE),
    digest: Some(DIGEST_TEMPLATE),
    written_out: None,
};

const TABLE: CodeTable = CodeTable {
    service: "WeCom",
    code_fields: &["errcode"],
    message_fields: &["errmsg"],
    known: &[
        (-1, "system busy", CodeMeaning::Retry(None)),
        (45009, "over 20 messages a minute", CodeMeaning::Throttled),
        (45033, "too many concurrent calls", CodeMeaning::Retry(None)),
        (93000, "invalid webhook URL", CodeMeaning::Permanent),
    ],
};

/// `<@userid> <@userid>`.
fn mention_line(mentions: &Mentions) -> String {
    mentions.user_ids.iter().map(|id| format!("<@{id}>")).collect::<Vec<_>>().join(" ")
}

/// WeCom's group robot.
pub(super) struct Wecom;

impl super::Messenger for Wecom {
    fn check(&self, channel: &ChannelConfig, at: &str, f: &mut Findings) {
        check_url(channel, at, f);
        check_url_credential(channel, at, f, "key", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…");
    }
    fn builtins(&self, _: &ChannelConfig) -> &'static Builtins {
        &BUILTINS
    }
    /// `{"msgtype": "markdown", "markdown": {"content"}}`, cut to [`MAX_CONTENT_BYTES`] on a
    /// character boundary; the mention line (`<@userid>`, the only mention WeCom markdown has) is
    /// kept whole after the cut text.
    fn message(&self, _: &ChannelConfig, m: &Message<'_>) -> Result<Value, String> {
        // WeCom's markdown has no buttons: they are links, kept whole after the cut text.
        let line = super::markdown_links(m.buttons, &mention_line(m.mentions));
        let room = MAX_CONTENT_BYTES.saturating_sub(if line.is_empty() { 0 } else { line.len() + 2 });
        let content = with_line(&truncate_bytes(non_empty(m.text)?, room), &line).into_owned();
        Ok(json!({ "msgtype": "markdown", "markdown": { "content": content } }))
    }
    fn limits(&self) -> ServiceLimits {
        LIMITS
    }
    /// A digest's body, when its text fits whole within [`MAX_CONTENT_BYTES`].
    fn digest(&self, _: &ChannelConfig, d: &DigestText<'_>) -> Option<Value> {
        let content = with_line(d.text, &super::markdown_links(d.buttons, &mention_line(d.mentions)));
        (content.len() <= MAX_CONTENT_BYTES)
            .then(|| json!({ "msgtype": "markdown", "markdown": { "content": content } }))
    }
    fn classify(&self, reply: &Reply) -> Outcome {
        classify_coded(reply, &TABLE)
    }
    /// Markdown mentions users by id only: no mobiles, no everyone.
    fn mention_keys(&self) -> &'static [MentionKey] {
        &[MentionKey::UserIds]
    }
    /// `<@userid>`, and `@all` as a broadcast though markdown documents none.
    fn disarm<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        disarm_at_signs(text)
    }
    fn annotate(&self, _: &ChannelConfig, body: &mut Value, note: &str) {
        super::prepend_at(body, "/markdown/content", note);
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
    fn prepare_posts_the_payload_to_the_url_with_its_key() {
        let url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k-1";
        let payload = json!({"msgtype": "markdown", "markdown": {"content": "x"}});
        let post = prepared(
            &Wecom,
            &channel(ChannelType::Wecom, url, None),
            &action(ChannelType::Wecom, payload.clone()),
        );
        assert_eq!(post.url.as_str(), url);
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&post.body).unwrap(), payload);
    }

    #[test]
    fn content_is_cut_to_4096_bytes_on_a_char_boundary() {
        let wecom =
            channel(ChannelType::Wecom, "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", None);
        let message = |m: &Message<'_>| Wecom.message(&wecom, m);
        let body = with_message("h", &"猫".repeat(3000), |m| message(m).unwrap());
        let content = body["markdown"]["content"].as_str().unwrap();
        assert!(content.len() <= MAX_CONTENT_BYTES);
        assert!(content.len() > MAX_CONTENT_BYTES - 8);
        assert!(content.ends_with(crate::text::CUT_MARKER));
        assert!(with_message("h", " \n", message).unwrap_err().contains("empty message"));
    }

    #[test]
    fn replies_are_classified_by_errcode() {
        assert_eq!(Wecom.classify(&reply(200, r#"{"errcode":0,"errmsg":"ok"}"#)), Outcome::Delivered);
        let limited = Wecom.classify(&reply(200, r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#));
        assert_eq!(
            limited,
            Outcome::Throttled {
                reason: "WeCom errcode 45009 (over 20 messages a minute): api freq out of limit".into(),
                after: None,
            }
        );
        let invalid = Wecom.classify(&reply(200, r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#));
        assert!(matches!(invalid, Outcome::Permanent { .. }), "{invalid:?}");
        assert!(matches!(Wecom.classify(&reply(200, r#"{"errcode":40008}"#)), Outcome::Permanent { .. }));
        assert!(matches!(Wecom.classify(&reply(500, "")), Outcome::Retry { .. }));
    }
}
