//! Message rendering: from an event to the JSON body a channel's service expects.
//!
//! Every template (the built-in ones, and each channel's and route's override) is compiled
//! once, when [`Templates::new`] runs at start-up; rendering an event looks a compiled template
//! up and runs it. A template renders the message *text* (markdown for chat channels); the
//! channel type wraps it in its service's JSON (DingTalk `markdown`, a Feishu card, Slack
//! blocks...), applying that service's size limits.
//!
//! Which template renders a (route, channel) pair: the route's `template`, else the channel's
//! `template`, else the built-in default for the channel type.
//!
//! # Template variables
//! Every field of [`Summary`] (`event_type`, `status`, `ok`, `title`,
//! `video_id`, `workflow_id`, `task_id`, `event_time`, `duration_secs`, `duration`, `nodes`,
//! `failed_nodes`, and `event`, the fully decoded event), and:
//! - `marker`: ✅ succeeded, ❌ failed, ⚠️ anything else; `failed`: the status says failure;
//! - `outcome`: `succeeded`, `failed`, or the status as sent;
//! - `headline`: the one-line title (marker, what, outcome, title);
//! - `identity`: the event's identity; `route`, `channel`, `channel_type`;
//! - `markup`: `dingtalk_markdown`, `wecom_markdown`, `lark_md`, `slack_mrkdwn` or `text`.
//!
//! Filters: `md` (a value escaped for the channel's markup, on one line: use it on anything
//! from the event), `code` (an id as inline code where the markup has it), `oneline`,
//! `clip(n)` (at most `n` characters, with `…`), `marker` (a status's marker).

mod defaults;
pub mod sample;
pub mod text;

use std::cell::OnceCell;
use std::collections::{BTreeSet, HashMap};

use minijinja::{Environment, State, UndefinedBehavior, context};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::action::{Action, ChannelType};
use crate::config::{ChannelConfig, Config, ConfigError, Problem, RouteConfig};
use crate::event::{Event, Summary, TaskStatus};
use text::Markup;

/// WeCom rejects markdown `content` over 4096 bytes.
pub const WECOM_MAX_BYTES: usize = 4096;
/// DingTalk documents no markdown limit; this keeps the request well under the ~20 KB its
/// robots accept.
pub const DINGTALK_MAX_BYTES: usize = 18_000;
/// Feishu custom bots reject request bodies over 20 KB; the card around the text and the
/// signature fields need the rest.
pub const FEISHU_MAX_BYTES: usize = 18_000;
/// Slack: header blocks take 150 characters, section text 3000, a message 50 blocks.
pub const SLACK_HEADER_CHARS: usize = 150;
pub const SLACK_SECTION_CHARS: usize = 3000;
pub const SLACK_MAX_BLOCKS: usize = 50;

/// The variables every template sees (see the module documentation).
pub const VARIABLES: [&str; 22] = [
    "event_type",
    "status",
    "ok",
    "title",
    "video_id",
    "workflow_id",
    "task_id",
    "event_time",
    "duration_secs",
    "duration",
    "nodes",
    "failed_nodes",
    "event",
    "marker",
    "failed",
    "outcome",
    "headline",
    "identity",
    "route",
    "channel",
    "channel_type",
    "markup",
];

/// A template that failed on an event (only user templates can: the built-in ones are
/// rendered against sample events by the tests and by every configuration check).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("route {route:?}, channel {channel:?}: {message}")]
pub struct RenderError {
    pub route: String,
    pub channel: String,
    pub message: String,
}

/// The compiled templates of one configuration.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    /// Route name → its template, for routes that have one.
    routes: HashMap<String, Compiled>,
    /// Channel name → its template, for channels that have one.
    channels: HashMap<String, Compiled>,
}

#[derive(Debug, Clone)]
struct Compiled {
    name: String,
    /// Whether the template reads `event`: converting the decoded tree is the costly part of
    /// a context, so it is only done for templates that use it.
    needs_event: bool,
}

const HEADLINE: &str = "builtin:headline";

impl Templates {
    /// Compiles every template of `config`, then renders each (route, channel) pair against
    /// the [sample events](sample), so that a broken template stops start-up, not a callback.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        let templates = Self::compile(config)?;
        let problems = templates.check_samples(config);
        if problems.is_empty() { Ok(templates) } else { Err(ConfigError::new(problems)) }
    }

    /// [`Templates::new`] without rendering the sample events: for a configuration that
    /// [`Config::load`] has already checked, so a cold start does that work once, not twice.
    pub fn compile(config: &Config) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let mut env = environment();
        // Only the built-in templates of the channel types in use: compiling is most of start-up.
        let in_use = |kind: ChannelType| config.channels.iter().any(|c| c.kind == kind);
        for (kind, name, source) in [
            (None, HEADLINE, defaults::HEADLINE),
            (
                Some(ChannelType::Dingtalk),
                default_name(Markup::Dingtalk, ChannelType::Dingtalk),
                defaults::DINGTALK,
            ),
            (Some(ChannelType::Wecom), default_name(Markup::Wecom, ChannelType::Wecom), defaults::WECOM),
            (Some(ChannelType::Feishu), default_name(Markup::Lark, ChannelType::Feishu), defaults::LARK),
            (Some(ChannelType::Slack), default_name(Markup::Slack, ChannelType::Slack), defaults::SLACK),
            (Some(ChannelType::Webhook), default_name(Markup::Text, ChannelType::Webhook), defaults::TEXT),
            (Some(ChannelType::Log), default_name(Markup::Text, ChannelType::Log), defaults::LOG),
        ] {
            if kind.is_some_and(|k| !in_use(k)) {
                continue;
            }
            if let Err(err) = env.add_template(name, source) {
                problems.push(Problem::new(name, format!("built-in template does not compile: {err}")));
            }
        }
        let known: BTreeSet<String> =
            VARIABLES.iter().map(|v| v.to_string()).chain(env.globals().map(|(k, _)| k.to_owned())).collect();
        let mut compile = |name: String, source: &str, at: String| -> Option<Compiled> {
            if let Err(err) = env.add_template_owned(name.clone(), source.to_owned()) {
                problems.push(Problem::new(at, format!("template does not compile: {err}")));
                return None;
            }
            let template = env.get_template(&name).ok()?;
            let used = template.undeclared_variables(false);
            let unknown: Vec<&str> =
                used.iter().filter(|v| !known.contains(*v)).map(String::as_str).collect();
            if !unknown.is_empty() {
                let mut unknown = unknown;
                unknown.sort_unstable();
                problems.push(Problem::new(
                    at,
                    format!("unknown variable(s) {} (known: {})", unknown.join(", "), VARIABLES.join(", ")),
                ));
            }
            Some(Compiled { needs_event: used.contains("event"), name })
        };
        let mut channels = HashMap::new();
        for (i, channel) in config.channels.iter().enumerate() {
            if let Some(source) = &channel.template {
                let at = format!("{}.template", crate::config::channel_location(i, &channel.name));
                if let Some(compiled) = compile(format!("channel:{}", channel.name), source, at) {
                    channels.insert(channel.name.clone(), compiled);
                }
            }
        }
        let mut routes = HashMap::new();
        for (i, route) in config.routes.iter().enumerate() {
            if let Some(source) = &route.template {
                let at = format!("{}.template", crate::config::route_location(i, &route.name));
                if let Some(compiled) = compile(format!("route:{}", route.name), source, at) {
                    routes.insert(route.name.clone(), compiled);
                }
            }
        }
        if problems.is_empty() {
            Ok(Templates { env, routes, channels })
        } else {
            Err(ConfigError::new(problems))
        }
    }

    /// Renders every (route, channel) pair of `config` against each sample event.
    fn check_samples(&self, config: &Config) -> Vec<Problem> {
        let samples = sample::events();
        let prepared: Vec<(&str, Prepared<'_>)> =
            samples.iter().map(|(name, event)| (*name, self.prepare(event))).collect();
        let mut problems: Vec<Problem> = Vec::new();
        for (i, route) in config.routes.iter().enumerate() {
            for channel in route.channels.iter().filter_map(|n| config.channels.iter().find(|c| &c.name == n))
            {
                let at = if route.template.is_some() {
                    format!("{}.template", crate::config::route_location(i, &route.name))
                } else {
                    let j = config.channels.iter().position(|c| c.name == channel.name).unwrap_or(0);
                    let at = crate::config::channel_location(j, &channel.name);
                    if channel.template.is_some() { format!("{at}.template") } else { at }
                };
                for (sample, prepared) in &prepared {
                    if let Err(err) = self.render(channel, route, prepared) {
                        let problem = Problem::new(
                            at.clone(),
                            format!(
                                "fails to render for route {:?} on the sample {sample} event: {}",
                                route.name, err.message
                            ),
                        );
                        if !problems.contains(&problem) {
                            problems.push(problem);
                        }
                    }
                }
            }
        }
        problems
    }

    /// The JSON body for `channel` (e.g. DingTalk `{"msgtype":"markdown",...}`), unsigned.
    pub fn payload(
        &self,
        channel: &ChannelConfig,
        route: &RouteConfig,
        event: &Event,
    ) -> Result<Value, RenderError> {
        self.render(channel, route, &self.prepare(event))
    }

    /// What every rendering of `event` shares: computed once per event, however many
    /// channels it goes to.
    pub fn prepare<'e>(&self, event: &'e Event) -> Prepared<'e> {
        static NO_EVENT: Value = Value::Null;
        let summary = Summary { event: &NO_EVENT, ..event.summary() };
        let status = TaskStatus::parse(summary.status);
        let failed = status == TaskStatus::Failed;
        let outcome = match (&status, summary.status.is_empty()) {
            (TaskStatus::Succeed, _) => "succeeded".to_owned(),
            (TaskStatus::Failed, _) => "failed".to_owned(),
            (_, true) => "received".to_owned(),
            (TaskStatus::Other(raw), false) => raw.to_lowercase(),
        };
        let identity = event.identity();
        let base = minijinja::Value::from_serialize(BaseContext {
            summary: &summary,
            marker: status_marker(summary.status),
            failed,
            outcome: &outcome,
            identity: &identity,
        });
        let headline = self
            .env
            .get_template(HEADLINE)
            .and_then(|t| t.render(&base))
            .map(|h| text::one_line(h.trim()))
            .unwrap_or_else(|_| {
                format!("{} {} {outcome}", status_marker(summary.status), summary.event_type)
            });
        // Keys written out in `context!` take precedence over the spread `..base`.
        let base = context! { headline => headline.clone(), ..base };
        Prepared { event, summary, failed, identity, headline, base, tree: OnceCell::new() }
    }

    /// Renders the message for (`channel`, `route`) and wraps it in the channel's JSON.
    pub fn render(
        &self,
        channel: &ChannelConfig,
        route: &RouteConfig,
        prepared: &Prepared<'_>,
    ) -> Result<Value, RenderError> {
        let error = |message: String| RenderError {
            route: route.name.clone(),
            channel: channel.name.clone(),
            message,
        };
        let markup = markup_of(channel);
        let compiled = self.select(channel, route).map_err(error)?;
        let template = self.env.get_template(&compiled.name).map_err(|e| error(e.to_string()))?;
        let event_tree = if compiled.needs_event {
            prepared.tree.get_or_init(|| minijinja::Value::from_serialize(prepared.event.decoded())).clone()
        } else {
            minijinja::Value::UNDEFINED // falls through to the base's `none`
        };
        let ctx = context! {
            route => route.name.as_str(),
            channel => channel.name.as_str(),
            channel_type => channel.kind.as_str(),
            markup => markup.as_str(),
            event => event_tree,
            ..prepared.base.clone()
        };
        let rendered = template.render(ctx).map_err(|e| error(e.to_string()))?;
        let body = rendered.trim_matches('\n');
        let chat = !matches!(channel.kind, ChannelType::Webhook | ChannelType::Log);
        if chat && body.trim().is_empty() {
            return Err(error("the template rendered an empty message".to_owned()));
        }
        Ok(self.wrap(channel, route, prepared, markup, body))
    }

    fn select(&self, channel: &ChannelConfig, route: &RouteConfig) -> Result<Compiled, String> {
        if route.template.is_some() {
            return self.routes.get(&route.name).cloned().ok_or_else(|| {
                format!("the template of route {:?} was not compiled at start-up", route.name)
            });
        }
        if channel.template.is_some() {
            return self.channels.get(&channel.name).cloned().ok_or_else(|| {
                format!("the template of channel {:?} was not compiled at start-up", channel.name)
            });
        }
        Ok(Compiled { name: default_name(markup_of(channel), channel.kind).to_owned(), needs_event: false })
    }

    /// The service's JSON around the rendered `body`.
    fn wrap(
        &self,
        channel: &ChannelConfig,
        route: &RouteConfig,
        prepared: &Prepared<'_>,
        markup: Markup,
        body: &str,
    ) -> Value {
        let headline = prepared.headline.as_str();
        match channel.kind {
            ChannelType::Dingtalk => json!({
                "msgtype": "markdown",
                "markdown": { "title": headline, "text": text::truncate_bytes(body, DINGTALK_MAX_BYTES) },
            }),
            ChannelType::Wecom => json!({
                "msgtype": "markdown",
                "markdown": { "content": text::truncate_bytes(body, WECOM_MAX_BYTES) },
            }),
            ChannelType::Feishu if markup == Markup::Text => feishu_post(headline, body),
            ChannelType::Feishu => json!({
                "msg_type": "interactive",
                "card": {
                    "config": { "wide_screen_mode": true },
                    "header": {
                        "title": { "tag": "plain_text", "content": headline },
                        "template": if prepared.summary.ok { "green" } else if prepared.failed { "red" } else { "orange" },
                    },
                    "elements": [
                        { "tag": "markdown", "content": text::truncate_bytes(body, FEISHU_MAX_BYTES) },
                    ],
                },
            }),
            ChannelType::Slack => slack(headline, body),
            ChannelType::Webhook => webhook_document(channel, route, prepared, body),
            ChannelType::Log => log_record(route, prepared, body),
        }
    }
}

/// One event's share of every rendering: see [`Templates::prepare`].
pub struct Prepared<'e> {
    event: &'e Event,
    summary: Summary<'e>,
    failed: bool,
    identity: String,
    headline: String,
    base: minijinja::Value,
    tree: OnceCell<minijinja::Value>,
}

impl Prepared<'_> {
    /// The event's one-line headline, e.g. `❌ VOD workflow failed: launch.mp4`.
    pub fn headline(&self) -> &str {
        &self.headline
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }
}

#[derive(Serialize)]
struct BaseContext<'a> {
    #[serde(flatten)]
    summary: &'a Summary<'a>,
    marker: &'static str,
    failed: bool,
    outcome: &'a str,
    identity: &'a str,
}

/// ✅ for success, ❌ for failure, ⚠️ for anything else (a status VOD may add later).
pub fn status_marker(status: &str) -> &'static str {
    match TaskStatus::parse(status) {
        TaskStatus::Succeed => "✅",
        TaskStatus::Failed => "❌",
        TaskStatus::Other(_) => "⚠️",
    }
}

fn markup_of(channel: &ChannelConfig) -> Markup {
    match channel.kind {
        ChannelType::Dingtalk => Markup::Dingtalk,
        ChannelType::Wecom => Markup::Wecom,
        ChannelType::Feishu if channel.msg_type.as_deref() == Some("post") => Markup::Text,
        ChannelType::Feishu => Markup::Lark,
        ChannelType::Slack => Markup::Slack,
        ChannelType::Webhook | ChannelType::Log => Markup::Text,
    }
}

fn default_name(markup: Markup, kind: ChannelType) -> &'static str {
    match (markup, kind) {
        (Markup::Dingtalk, _) => "builtin:dingtalk",
        (Markup::Wecom, _) => "builtin:wecom",
        (Markup::Lark, _) => "builtin:lark",
        (Markup::Slack, _) => "builtin:slack",
        (Markup::Text, ChannelType::Log) => "builtin:log",
        (Markup::Text, _) => "builtin:text",
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    // A missing detail in one event renders as nothing rather than losing the message;
    // misspelt variables are caught when the configuration is checked.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.add_filter("md", |state: &State<'_, '_>, value: minijinja::Value| {
        text::escape(&plain(&value), markup_in(state))
    });
    env.add_filter("code", |state: &State<'_, '_>, value: minijinja::Value| {
        if value.is_none() || value.is_undefined() {
            return String::new();
        }
        text::code(&plain(&value), markup_in(state))
    });
    env.add_filter("oneline", |value: minijinja::Value| text::one_line(&plain(&value)));
    env.add_filter("marker", |value: minijinja::Value| status_marker(&plain(&value)).to_owned());
    env.add_filter("clip", |value: minijinja::Value, max: usize| {
        if value.is_none() || value.is_undefined() {
            value
        } else {
            minijinja::Value::from(text::truncate_chars(&plain(&value), max))
        }
    });
    env
}

/// A value as text; none and undefined are empty.
fn plain(value: &minijinja::Value) -> String {
    if value.is_none() || value.is_undefined() {
        return String::new();
    }
    match value.as_str() {
        Some(s) => s.to_owned(),
        None => value.to_string(),
    }
}

fn markup_in(state: &State<'_, '_>) -> Markup {
    state.lookup("markup").and_then(|m| m.as_str().map(Markup::parse)).unwrap_or(Markup::Text)
}

/// Feishu `post`: the text as plain-text paragraphs, one per line.
fn feishu_post(headline: &str, body: &str) -> Value {
    let body = text::truncate_bytes(body, FEISHU_MAX_BYTES);
    let paragraphs: Vec<Value> = body
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| json!([{ "tag": "text", "text": line }]))
        .collect();
    json!({
        "msg_type": "post",
        "content": { "post": { "zh_cn": { "title": headline, "content": paragraphs } } },
    })
}

/// Slack: a plain-text header (so titles show exactly as they are), the body in mrkdwn
/// sections of at most 3000 characters, and the headline as the notification text (which
/// Slack parses as mrkdwn: escaped, so a title cannot `<!channel>` anyone).
fn slack(headline: &str, body: &str) -> Value {
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": text::truncate_chars(headline, SLACK_HEADER_CHARS), "emoji": true },
    })];
    let mut pieces = text::chunks(body, SLACK_SECTION_CHARS);
    if pieces.len() > SLACK_MAX_BLOCKS - 1 {
        pieces.truncate(SLACK_MAX_BLOCKS - 1);
        if let Some(last) = pieces.last_mut() {
            *last = format!("{}{}", text::truncate_chars(last, SLACK_SECTION_CHARS - 1), text::CUT_MARKER);
        }
    }
    for piece in pieces {
        blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text": piece } }));
    }
    json!({ "text": text::escape(headline, Markup::Slack), "blocks": blocks })
}

/// The generic webhook's document (`Content-Type: application/json`, signed per Standard
/// Webhooks by the sender):
///
/// ```json
/// {
///   "type": "WorkflowTaskComplete",          // VOD's EventType
///   "id": "msg_…",                           // = the webhook-id header; stable across retries
///   "event_id": "WorkflowTaskComplete:<TaskId>", // the event's identity
///   "timestamp": "2025-10-15T02:00:35Z",     // EventTime, as VOD sent it (null if absent)
///   "route": "failures",
///   "status": "Failed",
///   "ok": false,
///   "summary": "❌ VOD workflow failed: …",  // the rendered text (plain text by default)
///   "details": { … },                        // the template variables: title, video_id,
///                                            // workflow_id, task_id, duration, nodes[], failed_nodes[]
///   "event": { … }                           // the whole event, embedded JSON decoded
/// }
/// ```
/// Receivers should deduplicate on `id`; VOD may deliver an event more than once.
fn webhook_document(
    channel: &ChannelConfig,
    route: &RouteConfig,
    prepared: &Prepared<'_>,
    body: &str,
) -> Value {
    let key = Action::key_for(&prepared.identity, &route.name, &channel.name);
    let id = Action {
        key,
        event: String::new(),
        route: String::new(),
        channel: String::new(),
        channel_type: ChannelType::Webhook,
        payload: Value::Null,
    }
    .message_id();
    let summary = &prepared.summary;
    json!({
        "type": summary.event_type,
        "id": id,
        "event_id": prepared.identity,
        "timestamp": summary.event_time,
        "route": route.name,
        "status": summary.status,
        "ok": summary.ok,
        "summary": body,
        "details": details(summary),
        "event": prepared.event.decoded(),
    })
}

/// The summary without the decoded tree (which the document carries once, as `event`).
fn details(summary: &Summary<'_>) -> Value {
    let mut value = serde_json::to_value(summary).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.remove("event");
    }
    value
}

/// The `log` channel's record: the rendered line and the facts to filter logs by.
fn log_record(route: &RouteConfig, prepared: &Prepared<'_>, body: &str) -> Value {
    let summary = &prepared.summary;
    let mut record = Map::new();
    record.insert("message".into(), body.into());
    record.insert("event".into(), prepared.identity.clone().into());
    record.insert("event_type".into(), summary.event_type.into());
    record.insert("route".into(), route.name.clone().into());
    if !summary.status.is_empty() {
        record.insert("status".into(), summary.status.into());
    }
    record.insert("ok".into(), summary.ok.into());
    for (key, value) in [
        ("video_id", summary.video_id),
        ("workflow_id", summary.workflow_id),
        ("task_id", summary.task_id),
        ("title", summary.title),
    ] {
        if let Some(value) = value {
            record.insert(key.into(), value.into());
        }
    }
    if !summary.failed_nodes.is_empty() {
        let failed: Vec<&str> = summary.failed_nodes.iter().map(|n| n.name).collect();
        record.insert("failed_nodes".into(), failed.into());
    }
    Value::Object(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::Secret;

    fn channel(kind: ChannelType) -> ChannelConfig {
        ChannelConfig {
            name: kind.as_str().to_owned(),
            kind,
            url: Some(Secret::new("https://example.com/hook")),
            secret: None,
            headers: Default::default(),
            template: None,
            rate_per_minute: None,
            msg_type: None,
        }
    }

    fn route(template: Option<&str>) -> RouteConfig {
        RouteConfig {
            name: "r".into(),
            match_fields: Default::default(),
            matchers: vec![],
            channels: vec![],
            template: template.map(str::to_owned),
            continue_matching: false,
        }
    }

    fn config(channels: Vec<ChannelConfig>, routes: Vec<RouteConfig>) -> Config {
        Config { channels, routes, ..Config::default() }
    }

    fn failed() -> Event {
        sample::events().remove(0).1
    }

    #[test]
    fn builtins_compile_and_render_every_channel_type() {
        let every_type = config(ChannelType::ALL.map(channel).to_vec(), vec![]);
        let templates = Templates::new(&every_type).unwrap();
        for kind in ChannelType::ALL {
            for (_, event) in sample::events() {
                templates.payload(&channel(kind), &route(None), &event).unwrap();
            }
        }
    }

    #[test]
    fn route_template_beats_channel_template_beats_default() {
        let mut ch = channel(ChannelType::Wecom);
        ch.template = Some("channel says {{ status }}".into());
        let mut r = route(Some("route says {{ video_id }} via {{ channel }}"));
        r.channels = vec![ch.name.clone()];
        let templates = Templates::new(&config(vec![ch.clone()], vec![r.clone()])).unwrap();
        let event = failed();
        let body = templates.payload(&ch, &r, &event).unwrap();
        assert_eq!(body["markdown"]["content"], "route says b0e8a1c0f2d34e5f8a6b7c8d9e0f1a2b via wecom");
        let plain_route = RouteConfig { template: None, ..r };
        let body = templates.payload(&ch, &plain_route, &event).unwrap();
        assert_eq!(body["markdown"]["content"], "channel says Failed");
    }

    #[test]
    fn bad_templates_are_config_problems_with_locations() {
        let mut ch = channel(ChannelType::Slack);
        ch.template = Some("{% if %}".into());
        let mut r = route(Some("{{ titel }} {{ event.Status }}"));
        r.channels = vec![ch.name.clone()];
        let err = Templates::new(&config(vec![ch], vec![r])).unwrap_err().to_string();
        assert!(err.contains(r#"channels[0] "slack".template: template does not compile"#), "{err}");
        assert!(err.contains(r#"routes[0] "r".template: unknown variable(s) titel"#), "{err}");
    }

    #[test]
    fn render_failures_on_samples_are_reported() {
        let mut r = route(Some("{{ nodes | length + 'x' }}"));
        r.channels = vec!["log".into()];
        let err = Templates::new(&config(vec![channel(ChannelType::Log)], vec![r])).unwrap_err().to_string();
        assert!(err.contains("fails to render"), "{err}");
        let mut r = route(Some("{% if false %}x{% endif %}"));
        r.channels = vec!["slack".into()];
        let err =
            Templates::new(&config(vec![channel(ChannelType::Slack)], vec![r])).unwrap_err().to_string();
        assert!(err.contains("empty message"), "{err}");
    }

    #[test]
    fn templates_can_read_the_decoded_event() {
        let mut r = route(Some(
            "{{ event.ActivityResults.VodSnapshot_53e77.Result.ErrorCode }}/{{ event.Nope.Deeper }}",
        ));
        r.channels = vec!["log".into()];
        let ch = channel(ChannelType::Log);
        let templates = Templates::new(&config(vec![ch.clone()], vec![r.clone()])).unwrap();
        let body = templates.payload(&ch, &r, &failed()).unwrap();
        assert_eq!(body["message"], "InvalidParameter.Width/");
    }

    #[test]
    fn wecom_is_cut_to_4096_bytes_on_a_char_boundary() {
        let ch = ChannelConfig {
            template: Some("{% for i in range(3000) %}猫{% endfor %}".into()),
            ..channel(ChannelType::Wecom)
        };
        let r = RouteConfig { channels: vec![ch.name.clone()], ..route(None) };
        let templates = Templates::new(&config(vec![ch.clone()], vec![r.clone()])).unwrap();
        let body = templates.payload(&ch, &r, &failed()).unwrap();
        let content = body["markdown"]["content"].as_str().unwrap();
        assert!(content.len() <= WECOM_MAX_BYTES);
        assert!(content.len() > WECOM_MAX_BYTES - 8);
        assert!(content.ends_with(text::CUT_MARKER));
    }

    #[test]
    fn slack_splits_long_bodies_into_sections() {
        let ch = ChannelConfig {
            template: Some("{% for i in range(400) %}line {{ i }} of a long message\n{% endfor %}".into()),
            ..channel(ChannelType::Slack)
        };
        let r = RouteConfig { channels: vec![ch.name.clone()], ..route(None) };
        let templates = Templates::new(&config(vec![ch.clone()], vec![r.clone()])).unwrap();
        let body = templates.payload(&ch, &r, &failed()).unwrap();
        let blocks = body["blocks"].as_array().unwrap();
        assert!(blocks.len() > 3);
        for block in &blocks[1..] {
            assert!(block["text"]["text"].as_str().unwrap().chars().count() <= SLACK_SECTION_CHARS);
        }
        assert!(blocks[1]["text"]["text"].as_str().unwrap().starts_with("line 0 of"));
    }

    #[test]
    fn markers_cover_every_status() {
        assert_eq!(status_marker("Succeed"), "✅");
        assert_eq!(status_marker("success"), "✅");
        assert_eq!(status_marker("Failed"), "❌");
        assert_eq!(status_marker("Canceled"), "⚠️");
        assert_eq!(status_marker(""), "⚠️");
    }
}
