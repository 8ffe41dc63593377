//! Message text: from an event to the text of a message, in the markup of the channel it goes to.
//! Text only: the channel wraps it in its service's JSON (`channel::message`), applying
//! that service's size limits.
//!
//! Every template (the built-in ones the channels in use need, and each channel's and route's
//! override) is compiled once per process, by [`Templates::compile`] at start-up; rendering an
//! event looks a compiled template up and runs it.
//!
//! Which template renders a (route, channel) pair: the route's `template`, else the channel's
//! `template`, else the channel type's built-in one.
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
//! - `locale` (`en`, `zh-CN`) and `utc_offset` (`+08:00`, or none): the channel's, else
//!   `[messages]`'s.
//! - `resolved`: true in a resolved notice (the success that resolved earlier failures, see
//!   `dispatch::resolve`), with `resolves` (the failed TaskIds) and `resolved_after_secs` (from
//!   the first failure to the success); absent otherwise.
//!
//! Filters: `md` (a value escaped for the channel's markup, on one line: use it on anything
//! from the event), `code` (an id as inline code where the markup has it), `oneline`,
//! `clip(n)` (at most `n` characters, with `…`), `marker` (a status's marker).
//!
//! For the reader's language ([`locale`]): `t("Status")` is that English text in the message's
//! locale (the English key where there is no translation); `duration_secs | duration` is a
//! duration as the locale writes it (`1m 45s`, `1分45秒`); `event_time | time` is a time in the
//! message's `utc_offset` (`2025-05-12 16:01:45 +08:00`), as VOD sent it without one;
//! `status | status_word` is `Succeed`/`Failed` in the locale (`成功`/`失败`), other statuses as
//! sent. The built-in messages are written with these, so in `en` without an offset they are
//! what they always were.

mod defaults;
pub mod digest;
mod facts;
mod headline;
pub mod locale;
mod markup;

use std::cell::OnceCell;
use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use minijinja::{Environment, State, UndefinedBehavior, context};
use serde::Serialize;
use serde_json::Value;

use crate::config::{
    ChannelConfig, Config, ConfigError, Locale, Problem, RouteConfig, UtcOffset, channel_location,
    route_location,
};
use crate::event::{DecodedTree, Event, Summary, TaskStatus};
use crate::template::digest::Digest;
use crate::text;
pub use markup::{Markup, code, escape};

/// The variables every template sees (see the module documentation).
pub const VARIABLES: [&str; 28] = [
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
    "locale",
    "utc_offset",
    "video",
    "resolved",
    "resolves",
    "resolved_after_secs",
];

/// The variables a digest template sees: the fields of a digest (`count`, `failed_count`,
/// `ok_count`, `other_count`, `marker`, `muted_by`, `groups`: each with `count`, `status`, `ok`, `failed`,
/// `node`, `error_code`, `error_message` and `items`, the briefs: `title`, `task_id`,
/// `video_id`, `status`, `event_type`, `event_time`, ...) and the channel's.
pub const DIGEST_VARIABLES: [&str; 13] = [
    "count",
    "failed_count",
    "ok_count",
    "other_count",
    "marker",
    "groups",
    "muted_by",
    "headline",
    "channel",
    "channel_type",
    "markup",
    "locale",
    "utc_offset",
];

/// A message that failed on an event (only user templates can fail: the built-in ones are
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
    /// Channel name → its `vod` call's parameters (name, compiled template), in `env`.
    params: HashMap<String, Vec<(String, Compiled)>>,
    /// Channel name → its digest template, for channels that have one (in `env`).
    digests: HashMap<String, Compiled>,
    /// The built-in digest templates, compiled into `digest_env` on the first digest.
    digest_builtins: Vec<Builtin>,
    digest_env: OnceLock<Result<Environment<'static>, String>>,
}

#[derive(Debug, Clone)]
struct Compiled {
    name: String,
    /// Whether the template reads `event`: converting the decoded tree is the costly part of
    /// a context, so it is only done for templates that use it.
    needs_event: bool,
}

/// The headline is cut to this: it is a notification's title (a 100,000-character video title
/// would make every channel's message too large to send).
pub const MAX_HEADLINE_CHARS: usize = 200;
/// Plain text's play links, which the facts include on a `text` channel.
const TEXT_VIDEO: &str = "builtin:video-text";
const DIGEST_HEADLINE: &str = "builtin:digest-headline";

/// A built-in template to compile: its name and source.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    pub name: &'static str,
    pub source: &'static str,
    /// A channel's built-in message is compiled for its locale (`<name>@<locale>` but in
    /// English), followed by the facts in `facts`' markup when set (see [`facts`]). Parts and
    /// digests (`None`) are compiled once for every locale: their labels are read as they render.
    pub locale: Option<Locale>,
    pub facts: Option<Markup>,
}

impl Builtin {
    /// A part or a digest: compiled once.
    pub fn shared(name: &'static str, source: &'static str) -> Builtin {
        Builtin { name, source, locale: None, facts: None }
    }

    /// The name it is compiled under.
    fn compiled_name(&self) -> std::borrow::Cow<'static, str> {
        match self.locale {
            Some(locale) => template_name(self.name, locale),
            None => std::borrow::Cow::Borrowed(self.name),
        }
    }
}

/// The name a channel's built-in message is compiled under for `locale`: its own for English,
/// `<name>@<locale>` for the others.
fn template_name(name: &'static str, locale: Locale) -> std::borrow::Cow<'static, str> {
    match locale {
        Locale::En => std::borrow::Cow::Borrowed(name),
        other => std::borrow::Cow::Owned(format!("{name}@{}", other.as_str())),
    }
}

/// The channel a message is rendered for: its settings, its markup and the name of its built-in
/// template (one of those given to [`Templates::compile`]).
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub channel: &'a ChannelConfig,
    pub markup: Markup,
    pub builtin: &'static str,
    /// The language of the message, and the offset its times are shown in (`None`: as sent).
    pub locale: Locale,
    pub utc_offset: Option<&'a UtcOffset>,
    /// What the VOD API said of the event's video (`[vod] enrich`): the template variable
    /// `video`, absent when not looked up.
    pub video: Option<&'a Value>,
    /// The built-in message written in Rust, where the channel type has it (`builtin` stays
    /// compiled: `check-config` and the tests render it).
    pub written_out: Option<WrittenOut>,
}

impl Templates {
    /// Compiles the shared built-ins, `builtins` (the built-in messages of the channels in use,
    /// each for its channel's locale, and their play links) and every template `config` sets,
    /// once. Reports every
    /// template that does not compile or names an unknown variable, with its place.
    ///
    /// `digest_builtins` (the built-in digest templates of the channels that send digests) are
    /// compiled on the first digest, not here: most processes never send one, and compiling
    /// them is a fifth of a six-channel start-up. (They are rendered by the tests, and cannot
    /// fail on an event: digests read only briefs.) A channel's own `digest_template` is
    /// compiled here, so that `check-config` reports it.
    pub fn compile(
        config: &Config,
        builtins: &[Builtin],
        digest_builtins: &[Builtin],
    ) -> Result<Self, ConfigError> {
        let mut env = environment();
        let mut problems = add_builtins(&mut env, config, builtins);
        let user = UserTemplates::compile(&mut env, config, &mut problems);
        if problems.is_empty() {
            Ok(Templates {
                env,
                routes: user.routes,
                channels: user.channels,
                params: user.params,
                digests: user.digests,
                digest_builtins: digest_builtins.to_vec(),
                digest_env: OnceLock::new(),
            })
        } else {
            Err(ConfigError::new(problems))
        }
    }

    /// Whether some template (a route's, a channel's, a `vod` call's parameter) reads `event`.
    pub fn reads_event(&self) -> bool {
        let params = self.params.values().flatten().map(|(_, c)| c);
        self.routes.values().chain(self.channels.values()).chain(params).any(|c| c.needs_event)
    }

    /// What every rendering of `event` shares: computed once per event, however many
    /// channels it goes to.
    pub fn prepare<'e>(&self, event: &'e Event) -> Prepared<'e> {
        self.prepare_with(event, None)
    }

    /// [`Templates::prepare`] for the resolved notice `resolution` that `event` (a success) is.
    pub fn prepare_resolved<'e>(&self, event: &'e Event, resolution: &Resolution) -> Prepared<'e> {
        self.prepare_with(event, Some(resolution))
    }

    fn prepare_with<'e>(&self, event: &'e Event, resolution: Option<&Resolution>) -> Prepared<'e> {
        let summary = Summary { event: DecodedTree::none(), ..event.summary() };
        let status = TaskStatus::parse(summary.status);
        let failed = status == TaskStatus::Failed;
        let outcome = match (&status, summary.status.is_empty()) {
            (TaskStatus::Succeed, _) => "succeeded".to_owned(),
            (TaskStatus::Failed, _) => "failed".to_owned(),
            (_, true) => "received".to_owned(),
            (TaskStatus::Other(raw), false) => raw.to_lowercase(),
        };
        Prepared {
            event,
            resolution: resolution.cloned(),
            summary,
            failed,
            identity: event.identity(),
            outcome,
            headlines: Default::default(),
            base: OnceCell::new(),
            tree: OnceCell::new(),
        }
    }

    /// The text of the message for (`target`, `route`), in the target's markup.
    pub fn render(
        &self,
        target: &Target<'_>,
        route: &RouteConfig,
        prepared: &Prepared<'_>,
    ) -> Result<String, RenderError> {
        let channel = target.channel;
        let own =
            self.own_template(target, route).map_err(|message| RenderError::new(route, channel, message))?;
        let compiled = match (own, target.written_out) {
            (Some(own), _) => own,
            (None, Some(write)) => return Ok(write(prepared, target.locale)),
            (None, None) => self.builtin(target),
        };
        let template = self
            .env
            .get_template(&compiled.name)
            .map_err(|e| RenderError::new(route, channel, e.to_string()))?;
        let ctx = self.context(target, route, prepared, compiled.needs_event);
        let rendered = template.render(ctx).map_err(|e| RenderError::new(route, channel, e.to_string()))?;
        Ok(rendered.trim_matches('\n').to_owned())
    }

    /// The parameters of a `vod` channel's call for (`target`, `route`): each rendered.
    pub fn render_params(
        &self,
        target: &Target<'_>,
        route: &RouteConfig,
        prepared: &Prepared<'_>,
    ) -> Result<serde_json::Map<String, Value>, RenderError> {
        let channel = target.channel;
        let mut params = serde_json::Map::new();
        let Some(compiled) = self.params.get(&channel.name) else { return Ok(params) };
        let needs_event = compiled.iter().any(|(_, c)| c.needs_event);
        let ctx = self.context(target, route, prepared, needs_event);
        for (name, c) in compiled {
            let template = self
                .env
                .get_template(&c.name)
                .map_err(|e| RenderError::new(route, channel, e.to_string()))?;
            let value = template
                .render(ctx.clone())
                .map_err(|e| RenderError::new(route, channel, format!("params.{name}: {e}")))?;
            params.insert(name.clone(), Value::String(value.trim().to_owned()));
        }
        Ok(params)
    }

    /// What a message or a call's parameters see of an event on `target`.
    fn context(
        &self,
        target: &Target<'_>,
        route: &RouteConfig,
        prepared: &Prepared<'_>,
        needs_event: bool,
    ) -> minijinja::Value {
        let channel = target.channel;
        let event_tree = if needs_event {
            prepared.tree.get_or_init(|| minijinja::Value::from_serialize(prepared.event.decoded())).clone()
        } else {
            minijinja::Value::UNDEFINED // falls through to the base's `none`
        };
        let video = target.video.map_or(minijinja::Value::UNDEFINED, minijinja::Value::from_serialize);
        context! {
            route => route.name.as_str(),
            channel => channel.name.as_str(),
            channel_type => channel.kind().as_str(),
            markup => target.markup.as_str(),
            event => event_tree,
            headline => prepared.headline(target.locale),
            locale => target.locale.as_str(),
            utc_offset => target.utc_offset.map(UtcOffset::as_str),
            utc_offset_secs => target.utc_offset.map(UtcOffset::seconds),
            video => video,
            ..prepared.base().clone()
        }
    }

    /// The headline and text of a digest for `target` (whose `builtin` names the channel's
    /// built-in digest template), in the target's markup.
    pub fn render_digest(
        &self,
        target: &Target<'_>,
        digest: &Digest<'_>,
    ) -> Result<(String, String), String> {
        let channel = target.channel;
        let base = minijinja::Value::from_serialize(digest);
        let ctx = context! {
            channel => channel.name.as_str(),
            channel_type => channel.kind().as_str(),
            markup => target.markup.as_str(),
            locale => target.locale.as_str(),
            utc_offset => target.utc_offset.map(UtcOffset::as_str),
            utc_offset_secs => target.utc_offset.map(UtcOffset::seconds),
            ..base
        };
        let builtins = self.digest_env.get_or_init(|| digest_environment(&self.digest_builtins)).as_ref()?;
        let headline = builtins
            .get_template(DIGEST_HEADLINE)
            .and_then(|t| t.render(ctx.clone()))
            .map(|h| text::truncate_chars(&text::one_line(h.trim()), MAX_HEADLINE_CHARS))
            .map_err(|e| e.to_string())?;
        let template = match self.digests.get(&channel.name) {
            Some(compiled) => self.env.get_template(&compiled.name),
            None => builtins.get_template(target.builtin),
        }
        .map_err(|e| e.to_string())?;
        let ctx = context! { headline => headline.as_str(), ..ctx };
        let rendered = template.render(ctx).map_err(|e| e.to_string())?;
        Ok((headline, rendered.trim_matches('\n').to_owned()))
    }

    /// The user's template for (`target`, `route`): the route's, else the channel's; `None`
    /// where the channel type's built-in message renders.
    fn own_template(&self, target: &Target<'_>, route: &RouteConfig) -> Result<Option<Compiled>, String> {
        let channel = target.channel;
        if route.template.is_some() {
            return self.routes.get(&route.name).cloned().map(Some).ok_or_else(|| {
                format!("the template of route {:?} was not compiled at start-up", route.name)
            });
        }
        if channel.template.is_some() {
            return self.channels.get(&channel.name).cloned().map(Some).ok_or_else(|| {
                format!("the template of channel {:?} was not compiled at start-up", channel.name)
            });
        }
        Ok(None)
    }

    /// The compiled built-in message of `target`, in its locale.
    fn builtin(&self, target: &Target<'_>) -> Compiled {
        Compiled { name: template_name(target.builtin, target.locale).into_owned(), needs_event: false }
    }
}

impl RenderError {
    fn new(route: &RouteConfig, channel: &ChannelConfig, message: String) -> Self {
        RenderError { route: route.name.clone(), channel: channel.name.clone(), message }
    }
}

/// One event's share of every rendering: see [`Templates::prepare`].
pub struct Prepared<'e> {
    event: &'e Event,
    /// Set when this is a resolved notice.
    resolution: Option<Resolution>,
    summary: Summary<'e>,
    failed: bool,
    identity: String,
    outcome: String,
    /// The headline per locale, rendered on first use (see [`Templates::headline`]).
    headlines: [OnceCell<String>; Locale::ALL.len()],
    /// The context every template shares, made on first use: a message written out in Rust
    /// ([`WrittenOut`]) needs none, and making it is ~18 k instructions.
    base: OnceCell<minijinja::Value>,
    tree: OnceCell<minijinja::Value>,
}

impl<'e> Prepared<'e> {
    /// The event's one-line headline in `locale` (written once per event and locale), e.g.
    /// `❌ VOD workflow failed: launch.mp4`, cut to [`MAX_HEADLINE_CHARS`].
    pub fn headline(&self, locale: Locale) -> &str {
        self.headlines[locale as usize].get_or_init(|| headline::headline(self, locale))
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The event's facts (without the decoded tree: see [`Prepared::event`]).
    pub fn summary(&self) -> &Summary<'e> {
        &self.summary
    }

    /// The status says failure.
    pub fn failed(&self) -> bool {
        self.failed
    }

    pub fn event(&self) -> &'e Event {
        self.event
    }

    /// What it resolves, when it is a resolved notice.
    pub fn resolution(&self) -> Option<&Resolution> {
        self.resolution.as_ref()
    }

    /// The context every template of this event shares (see [`BaseContext`]).
    fn base(&self) -> &minijinja::Value {
        self.base.get_or_init(|| {
            minijinja::Value::from_serialize(BaseContext {
                summary: &self.summary,
                marker: status_marker(self.summary.status),
                failed: self.failed,
                outcome: &self.outcome,
                identity: &self.identity,
                resolution: self.resolution.as_ref(),
            })
        })
    }
}

/// A built-in message written in Rust: the text its template would render for the event in the
/// locale, byte for byte (each is tested beside its template). Used where no template of the
/// user's replaces the built-in; rendering the template is most of a simple message's cost.
pub type WrittenOut = fn(&Prepared<'_>, Locale) -> String;

#[derive(Serialize)]
struct BaseContext<'a> {
    #[serde(flatten)]
    summary: &'a Summary<'a>,
    marker: &'static str,
    failed: bool,
    outcome: &'a str,
    identity: &'a str,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    resolution: Option<&'a Resolution>,
}

/// What a resolved notice adds to its success's context (see `dispatch::resolve`); kept with
/// the action, so that a re-render (play links) and the outbox keep it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Resolution {
    /// Always true: templates test `{% if resolved %}`.
    pub resolved: bool,
    /// The TaskIds of the failures resolved, first failure first.
    pub resolves: Vec<String>,
    /// From the first failure to the success, when both times are known.
    pub resolved_after_secs: Option<i64>,
}

/// ✅ for success, ❌ for failure, ⚠️ for anything else (a status VOD may add later).
pub fn status_marker(status: &str) -> &'static str {
    match TaskStatus::parse(status) {
        TaskStatus::Succeed => "✅",
        TaskStatus::Failed => "❌",
        TaskStatus::Other(_) => "⚠️",
    }
}

/// Compiles the shared built-ins and each channel's; the problems (none, unless a built-in is
/// broken).
fn add_builtins(env: &mut Environment<'static>, config: &Config, builtins: &[Builtin]) -> Vec<Problem> {
    let mut shared = Vec::new();
    // The play links are compiled only when enrichment is on (the channels' own with them, by
    // the router): compiling them is a tenth of a six-channel start-up.
    if config.vod.enrich {
        shared.push(Builtin::shared(TEXT_VIDEO, defaults::PLAIN_VIDEO));
    }
    let mut problems = Vec::new();
    for builtin in shared.iter().chain(builtins) {
        let name = builtin.compiled_name();
        if env.get_template(&name).is_ok() {
            continue; // several channels share a built-in
        }
        let compiled = match (builtin.facts, builtin.locale) {
            (Some(markup), Some(locale)) => env.add_template_owned(
                name,
                format!("{}{}", builtin.source, facts::source(markup, locale, config.sends_resolved())),
            ),
            _ => env.add_template_owned(name, builtin.source),
        };
        if let Err(err) = compiled {
            let message = format!("built-in template does not compile: {err}");
            problems.push(Problem::new(builtin.name, message));
        }
    }
    problems
}

/// The templates a configuration sets, compiled into the environment: per channel (`template`,
/// `digest_template`, a `vod` channel's `params`) and per route.
struct UserTemplates {
    channels: HashMap<String, Compiled>,
    digests: HashMap<String, Compiled>,
    params: HashMap<String, Vec<(String, Compiled)>>,
    routes: HashMap<String, Compiled>,
}

/// Adds the user's template `name` to `env`; a problem at `at` when it does not compile or uses
/// a variable outside `known`.
fn compile_one(
    env: &mut Environment<'static>,
    problems: &mut Vec<Problem>,
    name: String,
    source: &str,
    at: String,
    known: &BTreeSet<String>,
) -> Option<Compiled> {
    if let Err(err) = env.add_template_owned(name.clone(), source.to_owned()) {
        problems.push(Problem::new(at, format!("template does not compile: {err}")));
        return None;
    }
    let template = env.get_template(&name).ok()?;
    let used = template.undeclared_variables(false);
    let mut unknown: Vec<&str> = used.iter().filter(|v| !known.contains(*v)).map(String::as_str).collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        let listed: Vec<&str> = known.iter().map(String::as_str).collect();
        let message = format!("unknown variable(s) {} (known: {})", unknown.join(", "), listed.join(", "));
        problems.push(Problem::new(at, message));
    }
    Some(Compiled { needs_event: used.contains("event"), name })
}

impl UserTemplates {
    fn compile(env: &mut Environment<'static>, config: &Config, problems: &mut Vec<Problem>) -> Self {
        let globals: Vec<String> = env.globals().map(|(k, _)| k.to_owned()).collect();
        let known: BTreeSet<String> =
            VARIABLES.iter().map(|v| v.to_string()).chain(globals.clone()).collect();
        let digest_known: BTreeSet<String> =
            DIGEST_VARIABLES.iter().map(|v| v.to_string()).chain(globals).collect();
        let mut compile = |name: String, source: &str, at: String, known: &BTreeSet<String>| {
            compile_one(env, problems, name, source, at, known)
        };
        let mut channels = HashMap::new();
        for (i, channel) in config.channels.iter().enumerate() {
            if let Some(source) = &channel.template {
                let at = format!("{}.template", channel_location(i, &channel.name));
                if let Some(compiled) = compile(format!("channel:{}", channel.name), source, at, &known) {
                    channels.insert(channel.name.clone(), compiled);
                }
            }
        }
        let mut digests = HashMap::new();
        for (i, channel) in config.channels.iter().enumerate() {
            if let Some(source) = &channel.digest_template {
                let at = format!("{}.digest_template", channel_location(i, &channel.name));
                if let Some(compiled) = compile(format!("digest:{}", channel.name), source, at, &digest_known)
                {
                    digests.insert(channel.name.clone(), compiled);
                }
            }
        }
        let mut params = HashMap::new();
        for (i, channel) in config.channels.iter().enumerate() {
            let mut compiled_params = Vec::new();
            for (name, source) in channel.call().into_iter().flat_map(|call| &call.params) {
                let at = format!("{}.params.{name}", channel_location(i, &channel.name));
                let template_name = format!("param:{}:{name}", channel.name);
                if let Some(compiled) = compile(template_name, source, at, &known) {
                    compiled_params.push((name.clone(), compiled));
                }
            }
            if !compiled_params.is_empty() {
                params.insert(channel.name.clone(), compiled_params);
            }
        }
        let mut routes = HashMap::new();
        for (i, route) in config.routes.iter().enumerate() {
            if let Some(source) = &route.template {
                let at = format!("{}.template", route_location(i, &route.name));
                if let Some(compiled) = compile(format!("route:{}", route.name), source, at, &known) {
                    routes.insert(route.name.clone(), compiled);
                }
            }
        }
        UserTemplates { channels, digests, params, routes }
    }
}

/// The environment of the built-in digest templates: the digest headline and each of them.
fn digest_environment(builtins: &[Builtin]) -> Result<Environment<'static>, String> {
    let mut env = environment();
    let headline = Builtin::shared(DIGEST_HEADLINE, defaults::DIGEST_HEADLINE);
    for builtin in std::iter::once(&headline).chain(builtins) {
        if env.get_template(builtin.name).is_err() {
            env.add_template(builtin.name, builtin.source)
                .map_err(|e| format!("built-in digest template: {e}"))?;
        }
    }
    Ok(env)
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
        escape(&plain(&value), markup_in(state))
    });
    env.add_filter("code", |state: &State<'_, '_>, value: minijinja::Value| {
        if value.is_none() || value.is_undefined() {
            return String::new();
        }
        code(&plain(&value), markup_in(state))
    });
    // The key itself (no copy) where the locale has no word for it: every English label.
    env.add_function("t", |state: &State<'_, '_>, key: minijinja::Value| {
        match key.as_str().and_then(|k| locale::translated(locale_in(state), k)) {
            Some(word) => minijinja::Value::from(word),
            None => key,
        }
    });
    env.add_filter("status_word", |state: &State<'_, '_>, value: minijinja::Value| {
        locale::status_word(locale_in(state), &plain(&value))
    });
    env.add_filter("duration", |state: &State<'_, '_>, value: minijinja::Value| {
        match i64::try_from(value.clone()) {
            Ok(secs) => minijinja::Value::from(locale::duration(locale_in(state), secs)),
            Err(_) => value, // none stays none
        }
    });
    env.add_filter("time", |state: &State<'_, '_>, value: minijinja::Value| {
        if value.is_none() || value.is_undefined() {
            return value;
        }
        // The offset parsed when the configuration was read, in seconds (see `Target`).
        let offset = state.lookup("utc_offset_secs").and_then(|s| i32::try_from(s).ok());
        minijinja::Value::from(locale::time(&plain(&value), offset))
    });
    env.add_filter("oneline", |value: minijinja::Value| text::one_line(&plain(&value)));
    add_node_error(&mut env);
    env.add_filter("link", |state: &State<'_, '_>, url: minijinja::Value, label: String| {
        markup::link(&plain(&url), &label, markup_in(state))
    });
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

/// What the facts call as they render: the line under a failed node, in the message's markup
/// (see `markup::node_error`).
fn add_node_error(env: &mut Environment<'static>) {
    env.add_function(
        "node_error",
        |state: &State<'_, '_>, code: minijinja::Value, message: minijinja::Value| {
            markup::node_error(markup_in(state), &plain(&code), &plain(&message))
        },
    );
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

/// The message's locale (`en` for a context that has none).
fn locale_in(state: &State<'_, '_>) -> Locale {
    let name = state.lookup("locale");
    let name = name.as_ref().and_then(|l| l.as_str()).unwrap_or("en");
    Locale::ALL.into_iter().find(|l| l.as_str() == name).unwrap_or_default()
}

fn markup_in(state: &State<'_, '_>) -> Markup {
    state.lookup("markup").and_then(|m| m.as_str().map(Markup::parse)).unwrap_or(Markup::Text)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::ChannelType;
    use crate::redact::Secret;

    fn channel(kind: ChannelType) -> ChannelConfig {
        let mut channel = ChannelConfig::new(kind.as_str(), kind);
        if let Some(url) = channel.service.url_mut() {
            *url = Some(Secret::new("https://example.com/hook"));
        }
        channel
    }

    fn route(template: Option<&str>) -> RouteConfig {
        RouteConfig {
            name: "r".into(),
            match_fields: Default::default(),
            matchers: vec![],
            channels: vec![],
            template: template.map(str::to_owned),
            mention: Default::default(),
            send_resolved: false,
            resolve_within: None,
            ..RouteConfig::default()
        }
    }

    fn config(channels: Vec<ChannelConfig>, routes: Vec<RouteConfig>) -> Config {
        Config { channels, routes, ..Config::default() }
    }

    const BUILTIN: (&str, &str) = ("builtin:test", "built-in says {{ status }} in {{ markup }}");

    fn builtin() -> Builtin {
        Builtin { name: BUILTIN.0, source: BUILTIN.1, locale: Some(Locale::En), facts: None }
    }

    fn target(channel: &ChannelConfig) -> Target<'_> {
        Target {
            channel,
            markup: Markup::Wecom,
            builtin: BUILTIN.0,
            locale: Locale::En,
            utc_offset: None,
            video: None,
            written_out: None,
        }
    }

    fn render(templates: &Templates, channel: &ChannelConfig, route: &RouteConfig, event: &Event) -> String {
        templates.render(&target(channel), route, &templates.prepare(event)).unwrap()
    }

    fn failed() -> Event {
        crate::samples::events().remove(0).1
    }

    #[test]
    fn route_template_beats_channel_template_beats_builtin() {
        let mut ch = channel(ChannelType::Wecom);
        ch.template = Some("channel says {{ status }}".into());
        let mut r = route(Some("route says {{ video_id }} via {{ channel }}"));
        r.channels = vec![ch.name.clone()];
        let templates =
            Templates::compile(&config(vec![ch.clone()], vec![r.clone()]), &[builtin()], &[]).unwrap();
        let event = failed();
        assert_eq!(
            render(&templates, &ch, &r, &event),
            "route says a1b2c3d4e5f60718293a4b5c6d7e8f90 via wecom"
        );
        let plain_route = RouteConfig { template: None, ..r };
        assert_eq!(render(&templates, &ch, &plain_route, &event), "channel says Failed");
        let plain_channel = ChannelConfig { template: None, ..ch };
        assert_eq!(
            render(&templates, &plain_channel, &plain_route, &event),
            "built-in says Failed in wecom_markdown"
        );
    }

    #[test]
    fn bad_templates_are_config_problems_with_locations() {
        let mut ch = channel(ChannelType::Slack);
        ch.template = Some("{% if %}".into());
        let mut r = route(Some("{{ titel }} {{ event.Status }}"));
        r.channels = vec![ch.name.clone()];
        let err = Templates::compile(&config(vec![ch], vec![r]), &[], &[]).unwrap_err().to_string();
        assert!(err.contains(r#"channels[0] "slack".template: template does not compile"#), "{err}");
        assert!(err.contains(r#"routes[0] "r".template: unknown variable(s) titel"#), "{err}");
    }

    #[test]
    fn templates_can_read_the_decoded_event() {
        let mut r = route(Some(
            "{{ event.ActivityResults.VodTranscode_a19f2.Result.MessageBody.ErrorCode }}/{{ event.Nope.Deeper }}",
        ));
        r.channels = vec!["log".into()];
        let ch = channel(ChannelType::Log);
        let templates = Templates::compile(&config(vec![ch.clone()], vec![r.clone()]), &[], &[]).unwrap();
        assert_eq!(render(&templates, &ch, &r, &failed()), "InvalidMedia.AudioStreamMissing/");
    }

    #[test]
    fn escaping_follows_the_target_markup() {
        let r = route(Some("{{ \"*x* <y>\" | md }} {{ \"id_1\" | code }}"));
        let ch = channel(ChannelType::Slack);
        let templates = Templates::compile(&config(vec![ch.clone()], vec![r.clone()]), &[], &[]).unwrap();
        let event = failed();
        let prepared = templates.prepare(&event);
        let slack = Target {
            channel: &ch,
            markup: Markup::Slack,
            builtin: "",
            locale: Locale::En,
            utc_offset: None,
            video: None,
            written_out: None,
        };
        assert_eq!(templates.render(&slack, &r, &prepared).unwrap(), "*x* &lt;y&gt; `id_1`");
        let dingtalk = Target { markup: Markup::Dingtalk, ..slack };
        assert_eq!(templates.render(&dingtalk, &r, &prepared).unwrap(), r"\*x\* \<y\> id_1");
    }

    #[test]
    fn markers_cover_every_status() {
        assert_eq!(status_marker("Succeed"), "✅");
        assert_eq!(status_marker("success"), "✅");
        assert_eq!(status_marker("Failed"), "❌");
        assert_eq!(status_marker("Canceled"), "⚠️");
        assert_eq!(status_marker(""), "⚠️");
    }

    /// The play links are compiled only with enrichment; the facts include them only when a
    /// video was looked up (no lookup of a template that is not there at each render).
    #[test]
    fn play_links_only_with_enrichment() {
        for enrich in [false, true] {
            let mut config = config(vec![], vec![]);
            config.vod.enrich = enrich;
            let templates = Templates::compile(&config, &[], &[]).unwrap();
            assert_eq!(templates.env.get_template(TEXT_VIDEO).is_ok(), enrich);
        }
        let source = facts::source(Markup::Text, Locale::En, false);
        assert!(
            source.ends_with("{% if video %}{% include \"builtin:video-text\" ignore missing %}{% endif %}")
        );
    }
}
