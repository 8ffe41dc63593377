//! Channels: everything vodhook knows about each service it delivers to, one file per service
//! (as Alertmanager's `notify/<receiver>/`). Each message service implements one interface,
//! `Messenger` (private to this module), in its own file:
//!
//! - `check`: what its `[[channels]]` entry must hold beyond its type's keys (run by
//!   `check-config` and at start-up; the send path uses the same rules, so the two never
//!   disagree; a key of another service is refused where the entry is read, `config::channel`);
//! - `builtins`: its built-in texts (a heading over the shared facts of `template::facts`, its
//!   play links, its digest) and the markup they are written in;
//! - `message`, `digest`: the service's JSON body around the rendered text, within its limits;
//! - `prepare`: the signed request, made at send time (signatures carry a timestamp);
//! - `classify`: what the service's reply means;
//! - `limits`: how fast its robots accept messages and how long they block when told too fast.
//!
//! This module has what they share (the outcome of an attempt, the message handed to `message`,
//! the checks common to several services), the public functions the router and dispatcher call,
//! and the one `match` from a [`ChannelType`] to its implementation (`messenger`); `vod`
//! channels have none: their actions are VOD API calls (`dispatch::vod`, `vod.rs` here for their
//! checks). The HTTP exchange itself is in [`exchange`]. Adding a service is one file with its
//! `Messenger`, one variant in `config::channel::Service` and `ChannelType` (with its keys), one
//! arm in `messenger`, and one stand-in in `tests/support/standins.rs`.
//!
//! Retrying is deliberately not done here: [`Sender::send`] makes exactly one attempt and the
//! dispatcher decides from the [`Outcome`] whether and when to try again, so that one deadline
//! can govern all the channels of a request.
//!
//! Classification, in short (details in each channel's module):
//!
//! | reply                                      | outcome                                   |
//! |--------------------------------------------|-------------------------------------------|
//! | timeout, connection error                  | `Retry`                                   |
//! | HTTP 5xx                                   | `Retry`                                   |
//! | HTTP 429 from a chat service               | `Throttled`, `after` from `Retry-After`   |
//! | HTTP 429 from a webhook receiver           | `Retry`, `after` from `Retry-After`       |
//! | the service's "too fast" codes             | `Throttled` (the channel is then blocked) |
//! | the service's "busy" codes                 | `Retry`                                   |
//! | any other error code or 4xx                | `Permanent` (a configuration problem)     |
//!
//! Unknown error codes are permanent: a service that answered and refused the message will
//! refuse it again, and retrying would spend the 20-messages-a-minute budget of DingTalk and
//! WeCom robots that the other messages need. The reason carries the code and the service's
//! own message, so the operator sees what to fix.

pub mod dingtalk;
mod exchange;
pub mod feishu;
pub mod log;
mod mention;
pub mod slack;
pub mod vod;
pub mod webhook;
pub mod wecom;

use std::borrow::Cow;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::action::Action;
pub use crate::config::ChannelType;
use crate::config::{ChannelConfig, Findings, MentionKey, Mentions, Service, http_url};
use crate::event::{Event, Summary};
use crate::redact::Scrubber;
use crate::template::Markup;
pub use exchange::Sender;
use exchange::{Post, Reply};

/// What one attempt to deliver an action came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The service accepted the message.
    Delivered,
    /// Not delivered, but it may be later: timeouts, connection errors, 5xx, rate limits.
    /// `after` is the service's own hint (`Retry-After`, or its documented throttle window).
    Retry { reason: String, after: Option<Duration> },
    /// Not delivered because the service says we send too fast (DingTalk 130101, WeCom 45009,
    /// Feishu 9499/11232, Slack 429): our budget was wrong, and the channel must be left alone
    /// for the service's penalty (`after`, its `Retry-After`, else the channel's `block_secs`).
    Throttled { reason: String, after: Option<Duration> },
    /// Not delivered, and sending the same message again will not change that: a configuration
    /// error (bad token, bad signature secret, missing keyword, channel gone).
    Permanent { reason: String },
}

/// How fast a service takes messages from one robot, by its documentation, and how long it
/// refuses them after being sent too many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceLimits {
    pub per_minute: Option<u32>,
    pub per_second: Option<u32>,
    /// Seconds a "too fast" reply keeps the channel closed, when it gives no `Retry-After`.
    pub block_secs: u64,
}

impl ServiceLimits {
    /// A service without documented limits (webhooks, the log).
    pub const NONE: ServiceLimits = ServiceLimits { per_minute: None, per_second: None, block_secs: 60 };
}

impl Outcome {
    pub fn retry(reason: impl Into<String>) -> Self {
        Outcome::Retry { reason: reason.into(), after: None }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        Outcome::Permanent { reason: reason.into() }
    }

    /// Why it was not delivered (`None` when it was).
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Delivered => None,
            Outcome::Retry { reason, .. }
            | Outcome::Throttled { reason, .. }
            | Outcome::Permanent { reason } => Some(reason),
        }
    }

    fn map_reason(self, f: impl FnOnce(String) -> String) -> Self {
        match self {
            Outcome::Delivered => Outcome::Delivered,
            Outcome::Retry { reason, after } => Outcome::Retry { reason: f(reason), after },
            Outcome::Throttled { reason, after } => Outcome::Throttled { reason: f(reason), after },
            Outcome::Permanent { reason } => Outcome::Permanent { reason: f(reason) },
        }
    }
}

/// Why a channel's request cannot be built. Always a configuration problem, so the action fails
/// permanently; `check` finds the same problems at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("`url`: {0}")]
    Url(String),
    #[error("`secret` {0}")]
    Secret(String),
    #[error("header `{name}` in `headers`: {problem}")]
    BadHeader { name: String, problem: &'static str },
    #[error("{service} expects the body to be a JSON object, but the template made {found}")]
    NotAnObject { service: &'static str, found: &'static str },
    #[error("the body cannot be serialised as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// What a channel's `message` builds its body from: the rendered text and the facts of the
/// event that some bodies carry besides (the webhook document, the log record, Feishu's colour).
#[derive(Clone, Copy)]
pub struct Message<'a> {
    /// The one-line headline (`❌ VOD workflow failed: launch.mp4`), plain text.
    pub headline: &'a str,
    /// The rendered template, in the channel's markup.
    pub text: &'a str,
    pub route: &'a str,
    pub channel: &'a str,
    /// The event's identity ([`Event::identity`]).
    pub identity: &'a str,
    pub summary: &'a Summary<'a>,
    /// The status says failure.
    pub failed: bool,
    pub event: &'a Event,
    /// What the VOD API said of the video (`[vod] enrich`), when it was looked up.
    pub video: Option<&'a Value>,
    /// Who the message mentions (the channel's and the route's, as the service can write them).
    pub mentions: &'a Mentions,
    /// Set when the message is a resolved notice (webhook documents say `"kind": "resolved"`).
    pub resolution: Option<&'a crate::template::Resolution>,
    /// Links the reader can act on (`buttons`), each service writing them its own way.
    pub buttons: &'a [Button],
}

/// One button: its label (in the channel's language) and where it leads.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Button {
    pub kind: crate::config::ButtonKind,
    pub label: String,
    pub url: String,
}

/// `[label](url) · [label](url)`: buttons as a markdown line, for services (or messages) that
/// have no buttons of their own; then `line` (the mentions) after a blank line, when both are
/// there.
fn markdown_links(buttons: &[Button], line: &str) -> String {
    let links: Vec<String> = buttons.iter().map(|b| format!("[{}]({})", b.label, b.url)).collect();
    match (links.is_empty(), line.is_empty()) {
        (true, _) => line.to_owned(),
        (false, true) => links.join(" · "),
        (false, false) => format!("{}\n\n{line}", links.join(" · ")),
    }
}

/// A rendered digest, for [`digest_message`].
#[derive(Debug, Clone, Copy)]
pub struct DigestText<'a> {
    /// Plain text (the notification title, the card header).
    pub headline: &'a str,
    /// In the channel's markup.
    pub text: &'a str,
    /// Every event it names succeeded / at least one failed (Feishu's header colour).
    pub all_ok: bool,
    pub any_failed: bool,
    /// Everyone the actions it covers mention, each once.
    pub mentions: &'a Mentions,
    /// Links the reader can act on: a silence per failed group (see `route::button`), written
    /// as each service writes a message's buttons.
    pub buttons: &'a [Button],
}

/// What [`prepare`] makes of an action: an HTTP request to send, or (the `log` channel) the
/// outcome of handing it over locally.
enum Request {
    Http(Post),
    Local(Outcome),
}

/// What [`Messenger::prepare`] answers: the request, or why the action cannot be sent.
type Prepared = Result<Request, ChannelError>;

// ---- the one interface, and the one `match` ---------------------------------------------------

/// Built-in template: (name, source).
pub type Builtin = (&'static str, &'static str);

/// A service's built-in messages and the markup they are written in: constants it states,
/// one set per kind of message it sends (Feishu has two, cards and `post`s).
pub(super) struct Builtins {
    pub markup: Markup,
    /// Its built-in message: this template, followed (when `facts`) by the facts every
    /// service's built-in message shows, written in `markup` (`template::facts`).
    pub message: Builtin,
    pub facts: bool,
    /// The play-links part of its built-in message (`[vod] enrich`), where it has its own.
    pub video: Option<Builtin>,
    /// Its built-in digest, for the services that send digests.
    pub digest: Option<Builtin>,
    /// `message` written in Rust (`template::WrittenOut`), where rendering the template would
    /// be most of what a message costs: the `log` channel's one line.
    pub written_out: Option<crate::template::WrittenOut>,
}

/// What vodhook knows of a service it sends messages to: one implementation per file. The
/// defaults are what a service without the capability does (no digests, no documented
/// limits, nothing to check beyond the common rules, a plain JSON `POST` to the channel's URL).
trait Messenger: Sync {
    /// What its settings must and must not hold, beyond what every channel is checked for.
    fn check(&self, _channel: &ChannelConfig, _at: &str, _f: &mut Findings) {}
    /// Its built-in texts for `channel`'s messages.
    fn builtins(&self, channel: &ChannelConfig) -> &'static Builtins;
    /// Its JSON body for a rendered message, within its size limits.
    fn message(&self, channel: &ChannelConfig, message: &Message<'_>) -> Result<Value, String>;
    /// Its documented rate limits for one robot.
    fn limits(&self) -> ServiceLimits {
        ServiceLimits::NONE
    }
    /// A digest's body, or `None` when the text does not fit whole (or it sends no digests).
    fn digest(&self, _channel: &ChannelConfig, _digest: &DigestText<'_>) -> Option<Value> {
        None
    }
    /// The signed request for an action, made at send time (signatures carry a timestamp).
    fn prepare(&self, channel: &ChannelConfig, action: &Action, _now: DateTime<Utc>) -> Prepared {
        Post::json(channel_url(channel)?, &action.payload).map(Request::Http)
    }
    /// What its reply means.
    fn classify(&self, reply: &Reply) -> Outcome;
    /// The kinds of mention it can write (see `config::Mentions`).
    fn mention_keys(&self) -> &'static [MentionKey] {
        &[]
    }
    /// `text` with nothing in it the service reads as a mention: the last step before its body
    /// is built, so that no event value (nor template) can mention anyone (see [`mention`]).
    /// Services whose messages no person is notified by keep the text as it is.
    fn disarm<'t>(&self, text: &'t str) -> Cow<'t, str> {
        Cow::Borrowed(text)
    }
    /// Puts `note` (one line, in its markup, disarmed) at the top of a message it made: what
    /// happened since the message was planned ("resolved since"). Webhooks and logs carry it as
    /// `resolved_since` instead (see [`annotate`]).
    fn annotate(&self, _channel: &ChannelConfig, _body: &mut Value, _note: &str) {}
}

/// The service behind a kind of channel; `None` for `vod`, whose actions are VOD API calls the
/// dispatcher makes (`dispatch::vod`), not messages.
fn messenger(kind: ChannelType) -> Option<&'static dyn Messenger> {
    match kind {
        ChannelType::Dingtalk => Some(&dingtalk::Dingtalk),
        ChannelType::Feishu => Some(&feishu::FeishuBot),
        ChannelType::Wecom => Some(&wecom::Wecom),
        ChannelType::Slack => Some(&slack::Slack),
        ChannelType::Webhook => Some(&webhook::Receiver),
        ChannelType::Log => Some(&log::Log),
        ChannelType::Vod => None,
    }
}

/// Checks `channel`'s settings for its type; `at` names it in problems (`channels[2] "ops"`).
pub fn check(channel: &ChannelConfig, at: &str) -> Findings {
    let mut f = Findings::default();
    for key in &channel.foreign_keys {
        f.problem(format!("{at}.{key}"), crate::config::foreign_key_problem(channel.kind(), key));
    }
    match messenger(channel.kind()) {
        Some(service) => service.check(channel, at, &mut f),
        None => vod::check(channel, at, &mut f),
    }
    check_mentions(channel, at, &mut f);
    f
}

/// The channel's `mention`: ids the services can hold, of kinds its service can write.
fn check_mentions(channel: &ChannelConfig, at: &str, f: &mut Findings) {
    let at = format!("{at}.mention");
    channel.mention.check(&at, f);
    let writable = mention_keys(channel);
    for key in channel.mention.keys().filter(|k| !writable.contains(k)) {
        f.problem(format!("{at}.{}", key.as_str()), cannot_mention(channel, key));
    }
}

/// Why `channel` cannot write mentions of `key`, and what it takes instead.
pub fn cannot_mention(channel: &ChannelConfig, key: MentionKey) -> String {
    let takes: Vec<&str> = mention_keys(channel).iter().map(|k| k.as_str()).collect();
    let instead = match takes.as_slice() {
        [] => "it mentions no one".to_owned(),
        [one] => format!("it takes only `{one}`"),
        [init @ .., last] => format!("it takes `{}` and `{last}`", init.join("`, `")),
    };
    format!("{} messages cannot mention by `{}`: {instead}", describe(channel), key.as_str())
}

/// The service and, where it matters to mentions, its message type.
fn describe(channel: &ChannelConfig) -> String {
    match channel.kind() {
        ChannelType::Wecom => "wecom markdown".to_owned(),
        kind => kind.to_string(),
    }
}

/// Marks a planned message (`body`, made by `channel`'s service) as resolved since it was
/// planned, by the success `task_id`: `note` at the top of a chat message (escaped for its
/// markup and disarmed like any text), `"resolved_since": task_id` in a webhook document or a log
/// record.
pub fn annotate(channel: &ChannelConfig, body: &mut Value, note: &str, task_id: &str) {
    let Some(service) = messenger(channel.kind()) else { return };
    if !channel.kind().is_chat() {
        if let Value::Object(map) = body {
            map.insert("resolved_since".to_owned(), Value::String(task_id.to_owned()));
        }
        return;
    }
    let escaped = crate::template::escape(note, service.builtins(channel).markup);
    service.annotate(channel, body, &service.disarm(&escaped));
}

/// `note` as a first line of the text at `pointer` in `body`, where there is one.
fn prepend_at(body: &mut Value, pointer: &str, note: &str) {
    if let Some(Value::String(text)) = body.pointer_mut(pointer) {
        *text = format!("{note}\n\n{text}");
    }
}

/// One document for the members of a group (`group_by`) on a channel without digests (webhooks,
/// logs): `{"kind": "group", "key", "events": [<each member's document>]}`, or `None` when it
/// is larger than the channel takes (the caller makes it smaller).
pub fn group_message(channel: &ChannelConfig, key: &str, members: &[&Value]) -> Option<Value> {
    let body = serde_json::json!({ "kind": "group", "key": key, "events": members });
    match &channel.service {
        Service::Webhook(hook) => whole(hook.max_body_bytes.unwrap_or(webhook::MAX_BODY_BYTES), body),
        // A chat channel groups through its digests; with `digest = false`, one by one.
        _ if channel.kind().is_chat() => None,
        _ => Some(body),
    }
}

/// The kinds of mention `channel`'s messages can carry (none for `vod` channels).
pub fn mention_keys(channel: &ChannelConfig) -> &'static [MentionKey] {
    messenger(channel.kind()).map_or(&[], |service| service.mention_keys())
}

/// The built-in template of `channel` (name, source): what it says when no template is configured.
pub fn builtin_template(channel: &ChannelConfig) -> Builtin {
    messenger(channel.kind()).map_or(vod::TEMPLATE, |service| service.builtins(channel).message)
}

/// `channel`'s built-in message written in Rust, where its service has one (see [`Builtins`]).
pub fn builtin_written_out(channel: &ChannelConfig) -> Option<crate::template::WrittenOut> {
    messenger(channel.kind()).and_then(|service| service.builtins(channel).written_out)
}

/// Whether `channel`'s built-in message is followed by the shared facts (see [`Builtins`]).
pub fn builtin_has_facts(channel: &ChannelConfig) -> bool {
    messenger(channel.kind()).is_some_and(|service| service.builtins(channel).facts)
}

/// The play-links part of `channel`'s built-in message (`[vod] enrich`,
/// `builtin:video-<markup>`), which the facts include when it is compiled; `None` where plain
/// text's serves (Feishu `post`, webhooks) or there is none (logs, `vod`).
pub fn builtin_video_template(channel: &ChannelConfig) -> Option<Builtin> {
    messenger(channel.kind())?.builtins(channel).video
}

/// The markup `channel`'s messages are written in (templates see it as `markup`).
pub fn markup(channel: &ChannelConfig) -> Markup {
    messenger(channel.kind()).map_or(vod::MARKUP, |service| service.builtins(channel).markup)
}

/// The service's JSON body for `message`, unsigned. An error when the message cannot be one
/// (a chat message with no text).
pub fn message(channel: &ChannelConfig, message: &Message<'_>) -> Result<Value, String> {
    let service = messenger(channel.kind()).ok_or("vod channels make calls, not messages")?;
    let (headline, text) = (service.disarm(message.headline), service.disarm(message.text));
    service.message(channel, &Message { headline: &headline, text: &text, ..*message })
}

/// The service's documented limits for one robot.
pub fn service_limits(kind: ChannelType) -> ServiceLimits {
    messenger(kind).map_or(ServiceLimits::NONE, |service| service.limits())
}

/// Whether `channel` merges actions into digests when its budget is spent: its `digest`, else
/// true for chat services (their robots have small budgets) and false for webhooks and logs,
/// whose receivers expect one event per request.
pub fn digests(channel: &ChannelConfig) -> bool {
    channel.kind().is_chat() && channel.digest.unwrap_or(true)
}

/// The built-in digest template of a chat `channel` (name, source); `None` for webhooks and
/// logs, which send no digests.
pub fn builtin_digest_template(channel: &ChannelConfig) -> Option<Builtin> {
    messenger(channel.kind())?.builtins(channel).digest
}

/// A digest's body: the service's JSON around `text`, or `None` when the text does not fit
/// whole within the service's size limit (a digest is never cut: every event it names is
/// marked delivered, so the caller makes it smaller instead).
pub fn digest_message(channel: &ChannelConfig, digest: &DigestText<'_>) -> Option<Value> {
    if digest.text.trim().is_empty() {
        return None;
    }
    let service = messenger(channel.kind())?;
    let (headline, text) = (service.disarm(digest.headline), service.disarm(digest.text));
    service.digest(channel, &DigestText { headline: &headline, text: &text, ..*digest })
}

fn prepare(channel: &ChannelConfig, action: &Action, now: DateTime<Utc>) -> Prepared {
    match messenger(channel.kind()) {
        Some(service) => service.prepare(channel, action, now),
        None => Ok(Request::Local(Outcome::permanent("vod actions are calls made by the dispatcher"))),
    }
}

fn classify(kind: ChannelType, reply: &Reply) -> Outcome {
    messenger(kind).map_or(Outcome::Delivered, |service| service.classify(reply))
}

// ---- what several channels share ---------------------------------------------------------------

/// The body `build` makes of `text`, within `max_bytes` once serialised: the text is cut (at a
/// character boundary, marked) until it fits. JSON escaping can double a text's size (quotes,
/// backslashes) or more (control characters), so the limit is checked on the serialised body,
/// not guessed from the text.
fn fit(max_bytes: usize, text: &str, build: impl Fn(&str) -> Value) -> Value {
    let mut budget = text.len().min(max_bytes);
    let mut body = build(&crate::text::truncate_bytes(text, budget));
    loop {
        let size = serde_json::to_vec(&body).map_or(usize::MAX, |bytes| bytes.len());
        if size <= max_bytes || budget == 0 {
            return body;
        }
        // Shrink in proportion (escaping scales the text's share of the body), a little more
        // each round, so that a few rounds always reach the limit.
        let scaled = (budget as u128 * max_bytes as u128 / size as u128) as usize;
        budget = (scaled - scaled / 16).min(budget.saturating_sub(1));
        body = build(&crate::text::truncate_bytes(text, budget));
    }
}

/// `body` when it is at most `max_bytes` serialised.
fn whole(max_bytes: usize, body: Value) -> Option<Value> {
    let size = serde_json::to_vec(&body).map_or(usize::MAX, |bytes| bytes.len());
    (size <= max_bytes).then_some(body)
}

/// Chat services refuse an empty message; say so while rendering, where the route is known.
fn non_empty(text: &str) -> Result<&str, String> {
    if text.trim().is_empty() { Err("the template rendered an empty message".to_owned()) } else { Ok(text) }
}

/// `url` is required and must be http(s).
fn check_url(channel: &ChannelConfig, at: &str, f: &mut Findings) {
    match channel.url() {
        None => f.problem(format!("{at}.url"), format!("is required for {} channels", channel.kind())),
        Some(url) => {
            if let Err(message) = http_url(url.expose()) {
                f.problem(format!("{at}.url"), message);
            }
        }
    }
}

/// A robot's URL must carry its credential in the query (`access_token` for DingTalk, `key` for
/// WeCom): without it every message is refused. The host is not checked (stand-ins, proxies);
/// the URL is never quoted (the credential lives in it).
fn check_url_credential(channel: &ChannelConfig, at: &str, f: &mut Findings, param: &str, example: &str) {
    let parsed = channel.url().and_then(|u| url::Url::parse(u.expose()).ok());
    let Some(url) = parsed.filter(|u| matches!(u.scheme(), "http" | "https")) else {
        return; // check_url reports it
    };
    if !url.query_pairs().any(|(k, v)| k == param && !v.is_empty()) {
        f.problem(
            format!("{at}.url"),
            format!("has no `{param}=` in its query: copy the robot's whole webhook address ({example})"),
        );
    }
}

/// An optional signing secret (DingTalk, Feishu): set means not empty.
fn check_signing_secret(channel: &ChannelConfig, at: &str, f: &mut Findings) {
    if channel.secret().is_some_and(|s| s.is_empty()) {
        f.problem(format!("{at}.secret"), "is empty: set the robot's signing secret, or remove the setting");
    }
}

/// The channel's URL, parsed and checked with the same rule as `check`.
fn channel_url(channel: &ChannelConfig) -> Result<url::Url, ChannelError> {
    let raw = channel
        .url()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ChannelError::Url(format!("is required for {} channels", channel.kind())))?;
    http_url(raw.expose()).map_err(ChannelError::Url)?;
    url::Url::parse(raw.expose()).map_err(|e| ChannelError::Url(format!("is not a valid URL ({e})")))
}

/// The channel's secret, when one is configured (an empty one counts as none: `${VAR}` of an
/// unset optional variable).
fn channel_secret(channel: &ChannelConfig) -> Option<&str> {
    channel.secret().map(|s| s.expose()).filter(|s| !s.is_empty())
}

/// Hides a channel's secrets in text that may have picked them up: the URL, the signing
/// secret, the tokens inside the URL (query values, long path segments) and configured header
/// values (`Authorization: Bearer …`).
fn scrubber(channel: &ChannelConfig) -> Scrubber {
    let mut needles = Vec::new();
    if let Some(url) = channel.url() {
        needles.push(url.expose().to_owned());
        if let Ok(parsed) = url::Url::parse(url.expose()) {
            needles.push(parsed.as_str().to_owned());
            needles.extend(parsed.query_pairs().map(|(_, v)| v.into_owned()));
            if let Some(query) = parsed.query() {
                needles.extend(query.split('&').filter_map(|p| p.split_once('=')).map(|(_, v)| v.to_owned()));
            }
            if let Some(segments) = parsed.path_segments() {
                needles.extend(segments.filter(|s| s.len() >= 12).map(str::to_owned));
            }
            if let Some(password) = parsed.password() {
                needles.push(password.to_owned());
            }
        }
    }
    if let Some(secret) = channel.secret() {
        needles.push(secret.expose().to_owned());
        if let Some(bare) = secret.expose().strip_prefix("whsec_") {
            needles.push(bare.to_owned());
        }
    }
    if let Service::Webhook(hook) = &channel.service {
        for value in hook.headers.values() {
            needles.extend(header_secrets(value));
        }
    }
    Scrubber::new(needles)
}

/// A configured header value and each part of it that can be a secret on its own: the token
/// after `Bearer ` (or any scheme), and for `Basic` the decoded `user:password` and the password.
fn header_secrets(value: &str) -> Vec<String> {
    let mut secrets = vec![value.to_owned()];
    secrets.extend(value.split_whitespace().map(str::to_owned));
    if let Some(encoded) = value.trim().strip_prefix("Basic ")
        && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim())
        && let Ok(decoded) = String::from_utf8(decoded)
    {
        secrets.extend(decoded.split_once(':').map(|(_, password)| password.to_owned()));
        secrets.push(decoded);
    }
    secrets
}

#[cfg(test)]
pub(crate) mod test_support {
    use bytes::Bytes;
    use http::StatusCode;

    use super::*;
    use crate::redact::Secret;

    pub fn channel(kind: ChannelType, url: &str, secret: Option<&str>) -> ChannelConfig {
        let mut channel = ChannelConfig::new("test", kind);
        if let Some(slot) = channel.service.url_mut() {
            *slot = Some(Secret::new(url));
        }
        if let Some(slot) = channel.service.secret_mut() {
            *slot = secret.map(Secret::new);
        }
        channel
    }

    /// The `headers` of a webhook channel.
    pub fn headers(channel: &mut ChannelConfig) -> &mut std::collections::BTreeMap<String, String> {
        match &mut channel.service {
            Service::Webhook(hook) => &mut hook.headers,
            _ => panic!("not a webhook channel"),
        }
    }

    pub fn action(kind: ChannelType, payload: Value) -> Action {
        Action {
            key: Action::key_for("WorkflowTaskComplete:task-1", "failures", "test"),
            event: "WorkflowTaskComplete:task-1".to_owned(),
            route: "failures".to_owned(),
            channel: "test".to_owned(),
            channel_type: kind,
            payload,
            brief: None,
            resolution: None,
            group: None,
        }
    }

    /// The HTTP request `service` prepares for `action` on `channel` now.
    pub(in crate::channel) fn prepared(
        service: &dyn Messenger,
        channel: &ChannelConfig,
        action: &Action,
    ) -> Post {
        prepared_at(service, channel, action, Utc::now())
    }

    /// [`prepared`] at `now`.
    pub(in crate::channel) fn prepared_at(
        service: &dyn Messenger,
        channel: &ChannelConfig,
        action: &Action,
        now: DateTime<Utc>,
    ) -> Post {
        match service.prepare(channel, action, now) {
            Ok(Request::Http(post)) => post,
            Ok(Request::Local(outcome)) => panic!("not an HTTP service: {outcome:?}"),
            Err(err) => panic!("cannot prepare: {err}"),
        }
    }

    pub fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).expect("test status"),
            retry_after: None,
            body: Bytes::from(body.to_owned()),
        }
    }

    pub fn at_millis(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).expect("test timestamp")
    }

    /// Runs `f` with a [`Message`] of the failed sample event whose rendered text is `text`.
    pub fn with_message<T>(headline: &str, text: &str, f: impl FnOnce(&Message<'_>) -> T) -> T {
        let event = crate::samples::events().remove(0).1;
        let summary = event.summary();
        let identity = event.identity();
        let message = Message {
            headline,
            text,
            route: "failures",
            channel: "test",
            identity: &identity,
            summary: &summary,
            failed: true,
            event: &event,
            video: None,
            mentions: &Mentions::default(),
            resolution: None,
            buttons: &[],
        };
        f(&message)
    }

    /// The problems (not warnings) `check` finds, as `at: message` lines.
    pub fn problems(channel: &ChannelConfig) -> Vec<String> {
        check(channel, "c").problems.iter().map(ToString::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn scrubber_removes_url_tokens_secrets_and_header_values() {
        let mut channel = channel(
            ChannelType::Webhook,
            "https://user:pa55word-long@example.com/hooks/0123456789abcdef?token=tok-secret-value&x=1",
            Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        );
        test_support::headers(&mut channel).insert("Authorization".into(), "Bearer header-token-1".into());
        let scrubber = scrubber(&channel);
        let text = "failed: https://user:pa55word-long@example.com/hooks/0123456789abcdef?token=tok-secret-value&x=1 \
                    token tok-secret-value path 0123456789abcdef pw pa55word-long \
                    secret MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw auth Bearer header-token-1";
        let clean = scrubber.clean(text);
        for secret in [
            "tok-secret-value",
            "0123456789abcdef",
            "pa55word-long",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "header-token-1",
        ] {
            assert!(!clean.contains(secret), "{secret} left in {clean}");
        }
        // Ordinary words survive.
        assert!(clean.starts_with("failed: *** token *** path"), "{clean}");
    }

    #[test]
    fn fit_keeps_the_serialised_body_within_the_limit() {
        for text in ["a".repeat(50_000), "\"".repeat(50_000), "\u{1}".repeat(50_000), "猫".repeat(20_000)] {
            let body = fit(20_000, &text, |t| serde_json::json!({"markdown": {"text": t}}));
            let size = serde_json::to_vec(&body).unwrap().len();
            assert!(size <= 20_000, "{size} bytes");
            assert!(size > 10_000, "cut too much: {size} bytes");
        }
        let short = fit(20_000, "short", |t| serde_json::json!({"text": t}));
        assert_eq!(short["text"], "short");
    }

    #[test]
    fn header_values_are_secret_in_every_part() {
        let mut channel = channel(ChannelType::Webhook, "https://example.com/h", None);
        let headers = test_support::headers(&mut channel);
        headers.insert("Authorization".into(), "Bearer bare-token-0123456789".into());
        headers.insert("X-Basic".into(), "Basic dXNlcjpzM2NyZXQtcGFzc3dvcmQ=".into()); // user:s3cret-password
        let clean =
            scrubber(&channel).clean("echo: bare-token-0123456789 and s3cret-password, user:s3cret-password");
        assert_eq!(clean, "echo: *** and ***, ***");
    }

    #[test]
    fn every_http_channel_needs_an_http_url() {
        for kind in ChannelType::ALL.into_iter().filter(|k| !matches!(k, ChannelType::Log | ChannelType::Vod))
        {
            let missing = ChannelConfig::new("c", kind);
            assert_eq!(problems(&missing), [format!("c.url: is required for {kind} channels")]);
            let ftp = channel(kind, "ftp://example.com/x", None);
            assert_eq!(problems(&ftp), ["c.url: must be an http:// or https:// URL"]);
            let err = channel_url(&ftp).unwrap_err().to_string();
            assert_eq!(err, "`url`: must be an http:// or https:// URL", "{kind}");
        }
        let log = channel(ChannelType::Log, "", None);
        assert!(problems(&log).is_empty());
    }
}
