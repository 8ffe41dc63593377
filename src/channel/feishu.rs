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
//! | 9499           | too many requests (100 a minute, 5 a second)    | Throttled  |
//! | 11232          | frequency limited                               | Throttled  |
//! | 19021          | bad signature, or timestamp over an hour off    | Permanent  |
//! | 19022          | IP not allowed                                  | Permanent  |
//! | 19024          | keyword missing                                 | Permanent  |
//! | anything else  | (reason carries the code and `msg`)             | Permanent  |
//!
//! Messages are an `interactive` card (the default: a coloured header with the headline, the
//! body in card markdown) or, with `msg_type = "post"`, rich text of plain paragraphs. Feishu
//! refuses request bodies over 20 KB, so the text is cut to [`MAX_TEXT_BYTES`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::exchange::{CodeMeaning, CodeTable, Post, Reply, classify_coded, hmac_sha256};
use super::mention::{disarm_tags, opens_feishu_at, with_line};
use super::{
    Builtins, ChannelError, DigestText, Message, Outcome, Prepared, Request, ServiceLimits, channel_secret,
    channel_url, check_signing_secret, check_url, fit, non_empty, whole,
};
use crate::action::Action;
use crate::config::{ChannelConfig, Feishu, Findings, MentionKey, Mentions, Service};
use crate::template::Markup;
use crate::text::truncate_chars;

/// Feishu custom bots refuse request bodies over 20 KB: the body, serialised, is kept within this,
/// leaving room for the `timestamp` and `sign` fields added when sending.
pub const MAX_BODY_BYTES: usize = 20_000;
/// The card header and post title are cut to this many characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Feishu documents 100 messages a minute and 5 a second per bot, answering 9499 (or 11232)
/// beyond; no documented block, so a minute.
pub const LIMITS: ServiceLimits =
    ServiceLimits { per_minute: Some(100), per_second: Some(5), block_secs: 60 };

/// The play links and cover of `[vod] enrich`, included at the end of the built-in message; not
/// compiled (and so not included) when enrichment is off.
pub(super) const VIDEO_TEMPLATE: (&str, &str) = (
    "builtin:video-lark_md",
    r#"{% if video %}

{% if video.available %}
**{{ t("Watch") }}{{ t(":") }}** {% for p in video.play_urls %}{{ p.url | link((p.definition or "") ~ " " ~ (p.format or "")) }}{% if not loop.last %} · {% endif %}{% endfor %}

{% if video.cover_url %}
**{{ t("Cover") }}{{ t(":") }}** {{ video.cover_url | link(t("Cover")) }}
{% endif %}
{{ t("Links valid until") }} {{ video.expires_at | time | md }}
{% else %}
{{ t("Play links unavailable") }}{{ t(": ") }}{{ video.reason | clip(200) | md }}
{% endif %}
{% endif %}"#,
);

/// A digest in card markdown (a `post` digest uses the same text, plain).
const DIGEST_TEMPLATE: (&str, &str) = (
    "builtin:lark-digest",
    r#"{% for group in groups %}
**{{ group.count }} × {% if group.failed %}{{ group.node | md }}{% if group.error_code %} {{ group.error_code | md }}{% endif %}{% if group.error_message %}{{ t(": ") }}{{ group.error_message | md }}{% endif %}{% else %}{{ group.status | status_word | md }}{% endif %}**
{% for item in group.items %}
{{ item.status | marker }} {{ (item.title or item.video_id or item.event_type) | md }} {% if item.task_id %}· {{ item.task_id | code }}{% else %}· {{ item.event_type | md }}{% endif %}

{% endfor %}

{% endfor %}"#,
);

/// The same digest in plain text, for `post` messages.
const POST_DIGEST_TEMPLATE: (&str, &str) = (
    "builtin:feishu-post-digest",
    r#"{% for group in groups %}
{{ group.count }} × {% if group.failed %}{{ group.node | oneline }}{% if group.error_code %} {{ group.error_code | oneline }}{% endif %}{% if group.error_message %}{{ t(": ") }}{{ group.error_message | oneline }}{% endif %}{% else %}{{ group.status | status_word | oneline }}{% endif %}

{% for item in group.items %}
{{ item.status | marker }} {{ (item.title or item.video_id or item.event_type) | oneline }} {% if item.task_id %}· {{ item.task_id | oneline }}{% else %}· {{ item.event_type | oneline }}{% endif %}

{% endfor %}
{% endfor %}"#,
);

fn is_post(channel: &ChannelConfig) -> bool {
    matches!(&channel.service, Service::Feishu(Feishu { msg_type: Some(t), .. }) if t == "post")
}

/// A card's buttons: one `button` element each, opening its URL (`behaviors: open_url`).
fn with_buttons(mut card: Value, buttons: &[super::Button]) -> Value {
    if let (false, Some(Value::Array(elements))) = (buttons.is_empty(), card.pointer_mut("/card/elements")) {
        let actions: Vec<Value> = buttons
            .iter()
            .map(|b| {
                json!({
                    "tag": "button",
                    "text": { "tag": "plain_text", "content": b.label },
                    "type": if b.kind == crate::config::ButtonKind::Watch { "primary" } else { "default" },
                    "behaviors": [{ "type": "open_url", "default_url": b.url }],
                })
            })
            .collect();
        elements.push(json!({ "tag": "action", "actions": actions }));
    }
    card
}

/// A `post`'s buttons: a last paragraph of links (`a` elements).
fn with_links(mut post: Value, buttons: &[super::Button]) -> Value {
    if let (false, Some(Value::Array(paragraphs))) =
        (buttons.is_empty(), post.pointer_mut("/content/post/zh_cn/content"))
    {
        let links: Vec<Value> =
            buttons.iter().map(|b| json!({ "tag": "a", "text": b.label, "href": b.url })).collect();
        paragraphs.push(Value::Array(links));
    }
    post
}

/// Card markdown's `<at id=ou_…></at>`, and `<at id=all></at>` for everyone.
fn card_mentions(mentions: &Mentions) -> String {
    let all = mentions.all.then_some("all");
    let ids = mentions.user_ids.iter().map(String::as_str).chain(all);
    ids.map(|id| format!("<at id={id}></at>")).collect::<Vec<_>>().join(" ")
}

fn colour(ok: bool, failed: bool) -> &'static str {
    if ok {
        "green"
    } else if failed {
        "red"
    } else {
        "orange"
    }
}

fn card(title: &str, colour: &str, text: &str) -> Value {
    json!({
        "msg_type": "interactive",
        "card": {
            "config": { "wide_screen_mode": true },
            "header": { "title": { "tag": "plain_text", "content": title }, "template": colour },
            "elements": [ { "tag": "markdown", "content": text } ],
        },
    })
}

/// What `"timestamp":"…","sign":"…"` adds to a signed body.
const SIGNATURE_BYTES: usize = 96;

/// Feishu `post`: the text as plain-text paragraphs, one per line; mentions in a last paragraph
/// of `at` elements (`user_id` `all` for everyone).
fn post(headline: &str, text: &str, mentions: &Mentions) -> Value {
    let mut paragraphs: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| json!([{ "tag": "text", "text": line }]))
        .collect();
    let all = mentions.all.then_some("all");
    let ats: Vec<Value> = mentions
        .user_ids
        .iter()
        .map(String::as_str)
        .chain(all)
        .map(|id| json!({ "tag": "at", "user_id": id }))
        .collect();
    if !ats.is_empty() {
        paragraphs.push(Value::Array(ats));
    }
    json!({
        "msg_type": "post",
        "content": { "post": { "zh_cn": { "title": headline, "content": paragraphs } } },
    })
}

/// The signature for `timestamp` (seconds).
pub fn sign(secret: &str, timestamp: i64) -> String {
    let key = format!("{timestamp}\n{secret}");
    STANDARD.encode(hmac_sha256(key.as_bytes(), b""))
}

const TABLE: CodeTable = CodeTable {
    service: "Feishu",
    code_fields: &["code", "StatusCode"],
    message_fields: &["msg", "StatusMessage"],
    known: &[
        (9499, "too many requests", CodeMeaning::Throttled),
        (11232, "frequency limited", CodeMeaning::Throttled),
        (19021, "bad signature, or timestamp over an hour off", CodeMeaning::Permanent),
        (19022, "IP not allowed", CodeMeaning::Permanent),
        (19024, "keyword missing", CodeMeaning::Permanent),
    ],
};

/// What the built-in card messages are made of.
const CARD_BUILTINS: Builtins = Builtins {
    markup: Markup::Lark,
    // The plain-text card header shows the headline (title included) in red or green: the
    // body is the facts alone.
    message: ("builtin:lark", ""),
    facts: true,
    video: Some(VIDEO_TEMPLATE),
    digest: Some(DIGEST_TEMPLATE),
    written_out: None,
};

/// What the built-in `post` messages are made of: a `post`'s own title is the headline, so its
/// text is the facts alone, in plain text (with plain text's play links).
const POST_BUILTINS: Builtins = Builtins {
    markup: Markup::Text,
    message: ("builtin:feishu-post", ""),
    facts: true,
    video: None,
    digest: Some(POST_DIGEST_TEMPLATE),
    written_out: None,
};

/// Feishu/Lark's custom bot.
pub(super) struct FeishuBot;

impl super::Messenger for FeishuBot {
    fn check(&self, channel: &ChannelConfig, at: &str, f: &mut Findings) {
        check_url(channel, at, f);
        check_signing_secret(channel, at, f);
        if let Service::Feishu(Feishu { msg_type: Some(t), .. }) = &channel.service
            && t != "interactive"
            && t != "post"
        {
            f.problem(format!("{at}.msg_type"), "must be \"interactive\" (a card) or \"post\" (rich text)");
        }
    }
    fn builtins(&self, channel: &ChannelConfig) -> &'static Builtins {
        if is_post(channel) { &POST_BUILTINS } else { &CARD_BUILTINS }
    }
    fn limits(&self) -> ServiceLimits {
        LIMITS
    }
    fn message(&self, channel: &ChannelConfig, m: &Message<'_>) -> Result<Value, String> {
        let text = non_empty(m.text)?;
        let title = truncate_chars(m.headline, MAX_TITLE_CHARS);
        let limit = MAX_BODY_BYTES - SIGNATURE_BYTES;
        if is_post(channel) {
            return Ok(fit(limit, text, |text| with_links(post(&title, text, m.mentions), m.buttons)));
        }
        let (colour, line) = (colour(m.summary.ok, m.failed), card_mentions(m.mentions));
        Ok(fit(limit, text, |text| with_buttons(card(&title, colour, &with_line(text, &line)), m.buttons)))
    }
    /// A digest's body, when its text fits whole (see `message`).
    fn digest(&self, channel: &ChannelConfig, d: &DigestText<'_>) -> Option<Value> {
        let title = truncate_chars(d.headline, MAX_TITLE_CHARS);
        let body = if is_post(channel) {
            with_links(post(&title, d.text, d.mentions), d.buttons)
        } else {
            let text = with_line(d.text, &card_mentions(d.mentions));
            with_buttons(card(&title, colour(d.all_ok, d.any_failed), &text), d.buttons)
        };
        whole(MAX_BODY_BYTES - SIGNATURE_BYTES, body)
    }
    fn prepare(&self, channel: &ChannelConfig, action: &Action, now: DateTime<Utc>) -> Prepared {
        let url = channel_url(channel)?;
        let Some(secret) = channel_secret(channel) else {
            return Post::json(url, &action.payload).map(Request::Http);
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
        Post::json(url, &Value::Object(body)).map(Request::Http)
    }
    fn classify(&self, reply: &Reply) -> Outcome {
        classify_coded(reply, &TABLE)
    }
    /// Cards and `post`s mention users (`ou_…`) and everyone; Feishu has no mention by mobile.
    fn mention_keys(&self) -> &'static [MentionKey] {
        &[MentionKey::UserIds, MentionKey::All]
    }
    /// Every `<at …>` tag, in headers and `post` text too.
    fn disarm<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        disarm_tags(text, opens_feishu_at)
    }
    /// A card's markdown, or a first paragraph of a `post`.
    fn annotate(&self, channel: &ChannelConfig, body: &mut Value, note: &str) {
        if !is_post(channel) {
            return super::prepend_at(body, "/card/elements/0/content", note);
        }
        if let Some(Value::Array(paragraphs)) = body.pointer_mut("/content/post/zh_cn/content") {
            paragraphs.insert(0, json!([{ "tag": "text", "text": note }]));
        }
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
        assert_eq!(sign("secret", 1_599_360_473), "q4jswNiMy51J5JuQV566yJat0/lQ/c+22kINzUgKsGU=");
    }

    #[test]
    fn prepare_adds_timestamp_and_sign_to_the_body() {
        let channel =
            channel(ChannelType::Feishu, "https://open.feishu.cn/open-apis/bot/v2/hook/x", Some("secret"));
        let payload = json!({"msg_type": "text", "content": {"text": "hi"}});
        let post = prepared_at(
            &FeishuBot,
            &channel,
            &action(ChannelType::Feishu, payload),
            at_millis(1_599_360_473_123),
        );
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
        let Err(error) =
            FeishuBot.prepare(&channel, &action(ChannelType::Feishu, json!("text")), at_millis(0))
        else {
            panic!("a body that is not an object is refused")
        };
        assert_eq!(
            error.to_string(),
            "Feishu expects the body to be a JSON object, but the template made a string"
        );
    }

    #[test]
    fn replies_are_classified_by_code() {
        assert_eq!(
            FeishuBot.classify(&reply(200, r#"{"code":0,"data":{},"msg":"success"}"#)),
            Outcome::Delivered
        );
        assert_eq!(
            FeishuBot.classify(&reply(200, r#"{"Extra":null,"StatusCode":0,"StatusMessage":"success"}"#)),
            Outcome::Delivered
        );
        assert_eq!(
            FeishuBot.classify(&reply(200, r#"{"code":9499,"data":{},"msg":"too many request"}"#)),
            Outcome::Throttled {
                reason: "Feishu code 9499 (too many requests): too many request".into(),
                after: None
            }
        );
        let bad_sign = FeishuBot.classify(&reply(
            200,
            r#"{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}"#,
        ));
        assert!(matches!(bad_sign, Outcome::Permanent { .. }), "{bad_sign:?}");
        // Feishu has been seen to answer parameter errors with HTTP 400 and a code.
        let outcome = FeishuBot.classify(&reply(400, r#"{"code":19002,"msg":"params error"}"#));
        assert!(outcome.reason().unwrap().contains("19002"), "{outcome:?}");
        assert!(matches!(outcome, Outcome::Permanent { .. }));
        assert!(matches!(FeishuBot.classify(&reply(503, "")), Outcome::Retry { .. }));
    }
}
