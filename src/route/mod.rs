//! Routing: from an event to the actions it causes. Pure: no I/O, no clock.
//!
//! Routes are tried in the order of the file. The first route whose matchers all pass takes
//! the event, unless it says `continue = true`, in which case later routes are tried too (as
//! in Alertmanager). Each (matching route, channel of that route) pair is one [`Action`], with
//! an idempotency key from the event's identity, the route and the channel, and its body: the
//! text rendered by [`Templates`], in the service's JSON made by [`crate::channel::message`].
//! Matcher syntax and semantics: [`matcher`].

mod button;
pub mod matcher;
mod mention;

use std::collections::HashMap;

use serde_json::Value;

use crate::action::Action;
use crate::channel::{self, Message};
use crate::config::{
    ButtonKind, ChannelConfig, Config, ConfigError, Locale, Mentions, OnMute, Problem, RouteConfig,
    UtcOffset, channel_location, route_location,
};
use crate::event::Event;
use crate::quiet::{Muted, Quiet, TimeIntervals};
use crate::template::digest::{Brief, Digest};
use crate::template::{Builtin, Prepared, RenderError, Resolution, Target, Templates, locale};
pub use matcher::Matcher;

/// The compiled routes of one configuration: built once per process, by the `setup` module.
#[derive(Debug)]
pub struct Router {
    routes: Vec<CompiledRoute>,
    channels: Vec<ChannelConfig>,
    /// Per channel (same index): the locale and `utc_offset` its messages are written in.
    languages: Vec<(Locale, Option<UtcOffset>)>,
    templates: Templates,
    /// What compiling found doubtful (see [`Router::warnings`]).
    warnings: Vec<Problem>,
    /// `[[time_intervals]]`, compiled: the routes' quiet hours.
    intervals: TimeIntervals,
    /// Signs the buttons' links (`None`: no `[links]`).
    signer: Option<crate::signed_link::Signer>,
}

/// Whether no event can match both routes: their `match` tables want different values of one
/// field (compared as `status` is, case-insensitively).
fn exclusive(a: &RouteConfig, b: &RouteConfig) -> bool {
    a.match_fields.iter().any(|(field, value)| {
        b.match_fields.get(field).is_some_and(|other| !other.eq_ignore_ascii_case(value))
    })
}

#[derive(Debug)]
struct CompiledRoute {
    config: RouteConfig,
    matchers: Vec<Matcher>,
    /// Indexes into `Router::channels`.
    channels: Vec<usize>,
    /// Per channel (same order): who the route's messages there mention.
    mentions: Vec<Mentions>,
    /// `group_by`, parsed.
    group_by: Vec<matcher::Field>,
    /// `mute_time_intervals`, `active_time_intervals`, `on_mute`.
    quiet: Quiet,
    /// Per channel (same order): the buttons its messages carry.
    buttons: Vec<Vec<ButtonKind>>,
}

impl Router {
    /// Compiles the matchers and every template (the built-ins of the channel types in use, and
    /// those the configuration sets) once; reports every problem (unknown channel, bad matcher,
    /// template that does not compile) with its location.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        match Router::build(config) {
            Ok((router, problems)) if problems.is_empty() => Ok(router),
            Ok((_, problems)) => Err(ConfigError::new(problems)),
            Err(err) => Err(err),
        }
    }

    /// [`Router::new`], keeping what compiled: the router without the matchers and channels that
    /// did not, and the problems. So that `check-config` can still render the sample events with
    /// it and list every problem at once. An error only when the templates do not compile.
    pub fn build(config: &Config) -> Result<(Self, Vec<Problem>), ConfigError> {
        let (mut problems, mut warnings) = (Vec::new(), Vec::new());
        let by_name: HashMap<&str, usize> =
            config.channels.iter().enumerate().map(|(i, c)| (c.name.as_str(), i)).collect();
        let mut routes = Vec::with_capacity(config.routes.len());
        let intervals = crate::quiet::compile(config, &mut problems, &mut warnings);
        for (i, route) in config.routes.iter().enumerate() {
            let at = route_location(i, &route.name);
            let matchers = compile_matchers(route, &at, &mut problems, &mut warnings);
            let channels = resolve_channels(route, &at, &by_name, &mut problems);
            let configs: Vec<&ChannelConfig> = channels.iter().map(|&c| &config.channels[c]).collect();
            let mentions = mention::resolve(route, &at, &configs, &mut problems, &mut warnings);
            let group_by = group_fields(route, &at, &mut problems);
            let quiet = crate::quiet::route_quiet(route, &at, &intervals, &mut problems, &mut warnings);
            let buttons = button::resolve(route, &at, &configs, config, &mut problems);
            let compiled = CompiledRoute {
                config: route.clone(),
                matchers,
                channels,
                mentions,
                group_by,
                quiet,
                buttons,
            };
            routes.push(compiled);
        }
        let languages: Vec<(Locale, Option<UtcOffset>)> =
            config.channels.iter().map(|c| locale::of_channel(c, &config.messages)).collect();
        let (mut builtins, mut digest_builtins) = (Vec::new(), Vec::new());
        for (c, (locale, _)) in config.channels.iter().zip(&languages) {
            let (name, source) = channel::builtin_template(c);
            let facts = channel::builtin_has_facts(c).then(|| channel::markup(c));
            builtins.push(Builtin { name, source, locale: Some(*locale), facts });
            if let Some((name, source)) = channel::builtin_video_template(c).filter(|_| config.vod.enrich) {
                builtins.push(Builtin::shared(name, source));
            }
            if let Some((name, source)) = channel::builtin_digest_template(c).filter(|_| channel::digests(c))
            {
                digest_builtins.push(Builtin::shared(name, source));
            }
        }
        match Templates::compile(config, &builtins, &digest_builtins) {
            Ok(templates) => {
                let channels = config.channels.clone();
                let signer = config.links.as_ref().map(crate::signed_link::Signer::new);
                let router = Router { routes, channels, languages, templates, warnings, intervals, signer };
                Ok((router, problems))
            }
            Err(err) => {
                problems.extend(err.problems);
                Err(ConfigError::new(problems))
            }
        }
    }

    /// Renders every (route, channel) pair whose template the configuration sets (a route's or a
    /// channel's `template`, a `vod` channel's `params`) against each sample event
    /// (`crate::samples`), so that a template that cannot render stops start-up and
    /// `check-config`, not a callback. The built-ins are not rendered here: they are the tests'
    /// (every service, every locale, snapshots), and a configuration of built-ins only (the
    /// default one) decodes no sample at start-up.
    pub fn check_samples(&self) -> Vec<Problem> {
        let user_set = |route: &CompiledRoute, channel: &ChannelConfig| {
            route.config.template.is_some() || channel.template.is_some() || channel.call().is_some()
        };
        let pairs: Vec<(usize, &CompiledRoute, usize, usize)> = self
            .routes
            .iter()
            .enumerate()
            .flat_map(|(i, route)| {
                route.channels.iter().enumerate().map(move |(slot, &index)| (i, route, slot, index))
            })
            .filter(|&(_, route, _, index)| user_set(route, &self.channels[index]))
            .collect();
        let digests = self.channels.iter().any(|c| channel::digests(c) && c.digest_template.is_some());
        if pairs.is_empty() && !digests {
            return Vec::new();
        }
        let samples = crate::samples::events();
        let prepared: Vec<(&str, Prepared<'_>)> =
            samples.iter().map(|(name, event)| (*name, self.templates.prepare(event))).collect();
        let mut problems: Vec<Problem> = Vec::new();
        for (i, route, slot, index) in pairs {
            let channel = &self.channels[index];
            let at = if route.config.template.is_some() {
                format!("{}.template", route_location(i, &route.config.name))
            } else if channel.template.is_some() {
                format!("{}.template", channel_location(index, &channel.name))
            } else {
                channel_location(index, &channel.name)
            };
            for (sample, prepared) in &prepared {
                if let Err(err) = self.payload(route, slot, prepared, None) {
                    let message = format!(
                        "fails to render for route {:?} on the sample {sample} event: {}",
                        route.config.name, err.message
                    );
                    let problem = Problem::new(at.clone(), message);
                    if !problems.contains(&problem) {
                        problems.push(problem);
                    }
                }
            }
        }
        problems.extend(self.check_digest_samples(&prepared));
        problems
    }

    /// Renders the digest of every channel with a `digest_template` for the sample events, as
    /// `check_samples` does for single messages.
    fn check_digest_samples(&self, prepared: &[(&str, Prepared<'_>)]) -> Vec<Problem> {
        let briefs: Vec<Brief> = prepared.iter().map(|(_, p)| Brief::of(p.summary(), p.failed())).collect();
        let refs: Vec<&Brief> = briefs.iter().collect();
        let mut problems = Vec::new();
        // Only the channels' own digest templates: the built-in ones are rendered by the tests,
        // and rendering them here would compile them at every start-up.
        for (index, channel) in self.channels.iter().enumerate() {
            if !channel::digests(channel) || channel.digest_template.is_none() {
                continue;
            }
            let at = format!("{}.digest_template", channel_location(index, &channel.name));
            match self.digest(&channel.name, &refs) {
                Ok(Some(_)) => {}
                Ok(None) => problems.push(Problem::new(
                    at,
                    "the digest of the two sample events is empty or too large for one message",
                )),
                Err(message) => problems.push(Problem::new(
                    at,
                    format!("the digest fails to render on the sample events: {message}"),
                )),
            }
        }
        problems
    }

    /// The body of one digest message naming `briefs` on `channel`, mentioning whom the channel
    /// itself mentions; `Ok(None)` when they do not fit in one message (or render nothing). An
    /// error names what failed to render.
    pub fn digest(&self, channel: &str, briefs: &[&Brief]) -> Result<Option<Value>, String> {
        let index = self.channel_index(channel)?;
        self.digest_mentioning(channel, briefs, &self.channels[index].mention, None, false)
    }

    /// [`Router::digest`] mentioning `mentions` (everyone the actions it covers mention), headed
    /// "While muted (`muted_by`)" when the mute intervals named there held them all, with a
    /// silence button per failed group when `silences` (some action it covers has one).
    pub fn digest_mentioning(
        &self,
        channel: &str,
        briefs: &[&Brief],
        mentions: &Mentions,
        muted_by: Option<&str>,
        silences: bool,
    ) -> Result<Option<Value>, String> {
        let index = self.channel_index(channel)?;
        let channel = &self.channels[index];
        let (builtin, _) = channel::builtin_digest_template(channel)
            .ok_or_else(|| format!("{} channels send no digests", channel.kind()))?;
        let (locale, offset) = &self.languages[index];
        let target = Target {
            channel,
            markup: channel::markup(channel),
            builtin,
            locale: *locale,
            utc_offset: offset.as_ref(),
            video: None,
            written_out: None,
        };
        let digest = Digest { muted_by, ..Digest::of(briefs) };
        let (headline, text) = self.templates.render_digest(&target, &digest)?;
        let buttons = match (&self.signer, silences) {
            (Some(signer), true) => {
                button::for_digest(&digest.groups, *locale, signer, crate::clock::unix_now())
            }
            _ => Vec::new(),
        };
        let text = channel::DigestText {
            headline: &headline,
            text: &text,
            all_ok: digest.ok_count == digest.count,
            any_failed: digest.failed_count > 0,
            mentions,
            buttons: &buttons,
        };
        Ok(channel::digest_message(channel, &text))
    }

    /// Who the messages `route` sends to `channel` mention (nobody when either is no longer
    /// configured): what `plan` shows, and what a digest of such actions mentions.
    pub fn mentions(&self, route: &str, channel: &str) -> Option<&Mentions> {
        let (route, slot) = self.slot(route, channel).ok()?;
        route.mentions.get(slot)
    }

    /// The language of `channel`'s messages (the default for one that is not configured).
    pub fn locale_of(&self, channel: &str) -> Locale {
        self.channel_index(channel).map_or_else(|_| Locale::default(), |i| self.languages[i].0)
    }

    /// Whether the messages `route` sends to `channel` carry a silence button (what their
    /// digests carry then).
    pub fn has_silence_button(&self, route: &str, channel: &str) -> bool {
        let Ok((route, slot)) = self.slot(route, channel) else { return false };
        route.buttons.get(slot).is_some_and(|kinds| kinds.contains(&ButtonKind::Silence))
    }

    /// The compiled route named `route` and the place of `channel` among its channels; an error
    /// for the render when either is no longer configured (an action from the outbox).
    fn slot(&self, route: &str, channel: &str) -> Result<(&CompiledRoute, usize), RenderError> {
        let found = self.routes.iter().find(|r| r.config.name == route).and_then(|r| {
            r.channels.iter().position(|&c| self.channels[c].name == channel).map(|slot| (r, slot))
        });
        found.ok_or_else(|| RenderError {
            route: route.to_owned(),
            channel: channel.to_owned(),
            message: "the route or channel is no longer configured".to_owned(),
        })
    }

    fn channel_index(&self, channel: &str) -> Result<usize, String> {
        self.channels
            .iter()
            .position(|c| c.name == channel)
            .ok_or_else(|| format!("channel {channel:?} is not configured"))
    }

    /// The body of the action sending `prepared`'s event to the route's channel in `slot` (an
    /// index into its `channels`); `video`: what the VOD API said of its video, when it was
    /// looked up.
    fn payload(
        &self,
        route: &CompiledRoute,
        slot: usize,
        prepared: &Prepared<'_>,
        video: Option<&Value>,
    ) -> Result<Value, RenderError> {
        let index = route.channels[slot];
        let channel = &self.channels[index];
        let (locale, offset) = &self.languages[index];
        let (locale, utc_offset) = (*locale, offset.as_ref());
        let target = Target {
            channel,
            markup: channel::markup(channel),
            builtin: channel::builtin_template(channel).0,
            locale,
            utc_offset,
            video,
            written_out: channel::builtin_written_out(channel),
        };
        if let Some(call) = channel.call() {
            let params = self.templates.render_params(&target, &route.config, prepared)?;
            return Ok(channel::vod::call(call.action.as_deref().unwrap_or_default(), params));
        }
        let text = self.templates.render(&target, &route.config, prepared)?;
        let message = Message {
            headline: prepared.headline(locale),
            text: &text,
            route: &route.config.name,
            channel: &channel.name,
            identity: prepared.identity(),
            summary: prepared.summary(),
            failed: prepared.failed(),
            event: prepared.event(),
            video,
            mentions: &route.mentions[slot],
            resolution: prepared.resolution(),
            buttons: &button::make(
                &route.buttons[slot],
                prepared.event(),
                prepared.failed() && prepared.resolution().is_none(),
                video,
                locale,
                self.signer.as_ref(),
                crate::clock::unix_now(),
            ),
        };
        channel::message(channel, &message).map_err(|message| RenderError {
            route: route.config.name.clone(),
            channel: channel.name.clone(),
            message,
        })
    }

    /// `action` (one [`Router::decide`] made for `event`) with its message rendered, with what
    /// the VOD API said of its video when it was looked up: the one render of a message.
    pub fn render(
        &self,
        event: &Event,
        action: &Action,
        video: Option<&Value>,
    ) -> Result<Action, RenderError> {
        let (route, slot) = self.slot(&action.route, &action.channel)?;
        let prepared = match &action.resolution {
            Some(resolution) => self.templates.prepare_resolved(event, resolution),
            None => self.templates.prepare(event),
        };
        let payload = self.payload(route, slot, &prepared, video)?;
        Ok(Action { payload, ..action.clone() })
    }

    /// The resolved notice on `channel` that success `event` is for the failures `resolution`
    /// names, which `route` delivered there; `key` is its idempotency key. Not yet rendered, as
    /// [`Router::decide`]'s actions are: [`Router::render`] renders it as the route would
    /// render `event` (templates see `resolved`), with the route's mentions. An error when the
    /// route or channel is no longer configured.
    pub fn resolved(
        &self,
        event: &Event,
        route: &str,
        channel: &str,
        resolution: Resolution,
        key: String,
    ) -> Result<Action, RenderError> {
        let (compiled, slot) = self.slot(route, channel)?;
        let config = &self.channels[compiled.channels[slot]];
        Ok(Action {
            key,
            event: event.identity(),
            route: route.to_owned(),
            channel: channel.to_owned(),
            channel_type: config.kind(),
            payload: Value::Null,
            brief: Some(Brief::of_event(event)),
            resolution: Some(resolution),
            group: None,
        })
    }

    /// "✅ Resolved since: <task_id>" in `channel`'s language: the note on a failure notice sent
    /// after the success that resolved it (plain text; the channel escapes it).
    pub fn resolved_since_note(&self, channel: &str, task_id: &str) -> String {
        let locale = self.channel_index(channel).map_or(Locale::En, |i| self.languages[i].0);
        format!("✅ {}{}{task_id}", locale::word(locale, "Resolved since"), locale::word(locale, ": "))
    }

    /// The longest `resolve_within` of the routes that send resolved notices.
    pub fn longest_resolve_within(&self) -> std::time::Duration {
        let routes = self.routes.iter().filter(|r| r.config.send_resolved);
        routes.map(|r| r.config.resolve_within()).max().unwrap_or(RouteConfig::DEFAULT_RESOLVE_WITHIN)
    }

    /// Whether `route`'s actions are muted at `at` (Unix seconds), why and until when; `None`
    /// when they are not (or the route is no longer configured).
    pub fn muted(&self, route: &str, at: i64) -> Option<Muted> {
        let route = self.routes.iter().find(|r| r.config.name == route)?;
        if route.quiet.is_empty() {
            return None;
        }
        self.intervals.muted(&route.quiet, at)
    }

    /// The routes that hold muted actions and whose intervals would hold one for more than
    /// [`crate::quiet::MAX_HOLD_SECS`] (an interval that is always active), looking a year
    /// ahead of `now`.
    pub fn overlong_holds(&self, now: i64) -> Vec<Problem> {
        let held = self
            .routes
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.quiet.is_empty() && r.quiet.on_mute == OnMute::Hold);
        held.filter_map(|(i, route)| {
            let start = self.intervals.overlong_mute(&route.quiet, now)?;
            let when = chrono::DateTime::from_timestamp(start, 0).map(|t| t.to_rfc3339()).unwrap_or_default();
            let message = format!(
                "its time intervals would hold an action for more than 7 days (from {when}): mute for less, or set on_mute = \"drop\""
            );
            Some(Problem::new(route_location(i, &route.config.name), message))
        })
        .collect()
    }

    /// The route named `name`'s configuration.
    pub fn route(&self, name: &str) -> Option<&RouteConfig> {
        self.routes.iter().find(|r| r.config.name == name).map(|r| &r.config)
    }

    /// Whether messages may read an event's whole decoded tree: a webhook channel sends it, a
    /// template that reads `event` renders it. The handler then has the decoder build each tree
    /// at once ([`crate::event::decode_delivery_in_full`]): building it later, on the short path,
    /// costs that path's pass on top (BENCHMARKS.md, "Round 3, session 9").
    pub fn reads_event_tree(&self) -> bool {
        self.channels.iter().any(|c| c.kind() == crate::config::ChannelType::Webhook)
            || self.templates.reads_event()
    }

    /// Whether some route sends resolved notices.
    pub fn sends_resolved(&self) -> bool {
        self.routes.iter().any(|r| r.config.send_resolved)
    }

    /// The actions `event` causes, in route order (and channel order within a route), each
    /// with its message rendered: what `vodhook plan` shows.
    pub fn plan(&self, event: &Event) -> Result<Vec<Action>, RenderError> {
        let mut actions = self.decide(event);
        if actions.is_empty() {
            return Ok(actions);
        }
        let prepared = self.templates.prepare(event);
        for action in &mut actions {
            let (route, slot) = self.slot(&action.route, &action.channel)?;
            action.payload = self.payload(route, slot, &prepared, None)?;
        }
        Ok(actions)
    }

    /// The actions `event` causes, in route order (and channel order within a route), their
    /// messages not yet rendered (`payload` is null): the dispatcher renders each once, with
    /// [`Router::render`], when it is to be sent — after its claim (a duplicate renders
    /// nothing) and after enrichment (the play links are in the one render).
    pub fn decide(&self, event: &Event) -> Vec<Action> {
        let mut actions = Vec::new();
        let (mut identity, mut brief) = (None, None);
        for route in &self.routes {
            if !route.matchers.iter().all(|m| m.matches(event)) {
                continue;
            }
            let identity = identity.get_or_insert_with(|| event.identity());
            for &index in &route.channels {
                let channel = &self.channels[index];
                // Digests say what they cover with it; a vod channel's loop guard reads its ids;
                // a failure that may be resolved is opened with them.
                let needs_brief = channel::digests(channel)
                    || channel.call().is_some()
                    || route.config.send_resolved
                    || !route.group_by.is_empty();
                actions.push(Action {
                    key: Action::key_for(identity, &route.config.name, &channel.name),
                    event: identity.clone(),
                    route: route.config.name.clone(),
                    channel: channel.name.clone(),
                    channel_type: channel.kind(),
                    payload: Value::Null,
                    brief: needs_brief.then(|| brief.get_or_insert_with(|| Brief::of_event(event)).clone()),
                    resolution: None,
                    group: group_of(route, &channel.name, event),
                });
            }
            if !route.config.continue_matching {
                break;
            }
        }
        actions
    }

    /// The names of the routes `event` matches, in order, honouring `continue` (what `plan`
    /// would use, without rendering).
    pub fn matching_routes(&self, event: &Event) -> Vec<&str> {
        let mut names = Vec::new();
        for route in &self.routes {
            if route.matchers.iter().all(|m| m.matches(event)) {
                names.push(route.config.name.as_str());
                if !route.config.continue_matching {
                    break;
                }
            }
        }
        names
    }

    /// What `check-config` warns of: matcher values VOD does not send, and [`Router::overlaps`].
    pub fn warnings(&self) -> Vec<Problem> {
        self.warnings.iter().cloned().chain(self.overlaps()).collect()
    }

    /// Where one event can reach the same channel through two routes (an earlier route with
    /// `continue = true` and a later one both naming it), as warnings: the channel then gets two
    /// messages for the event, which is rarely meant. Routes whose `match` tables give one field
    /// two different values cannot both match, and are not reported.
    fn overlaps(&self) -> Vec<Problem> {
        let mut warnings = Vec::new();
        for (i, first) in self.routes.iter().enumerate().filter(|(_, r)| r.config.continue_matching) {
            for (j, later) in self.routes.iter().enumerate().skip(i + 1) {
                if exclusive(&first.config, &later.config) {
                    continue;
                }
                for index in later.channels.iter().filter(|c| first.channels.contains(c)) {
                    warnings.push(Problem::new(
                        format!("{}.channels", route_location(j, &later.config.name)),
                        format!(
                            "{:?} is also a channel of {} (continue = true): an event both match is sent \
                             to it twice; name it in one of the two routes",
                            self.channels[*index].name,
                            route_location(i, &first.config.name)
                        ),
                    ));
                }
            }
        }
        warnings
    }

    /// One line per route: `name: matchers → channels`, for `check-config`.
    pub fn describe(&self) -> Vec<String> {
        self.routes
            .iter()
            .map(|route| {
                let matchers = if route.matchers.is_empty() {
                    "every event".to_owned()
                } else {
                    route.matchers.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                };
                let channels: Vec<&str> =
                    route.channels.iter().map(|&i| self.channels[i].name.as_str()).collect();
                let more = if route.config.continue_matching { " (continue)" } else { "" };
                format!("{}: {matchers} → {}{more}", route.config.name, channels.join(", "))
            })
            .collect()
    }
}

/// The `match` table's entries and the `matchers`, compiled; problems named by place.
/// The route's matchers; what cannot compile, or can never match, goes to `problems`, and
/// doubtful values (an event type VOD does not document) to `warnings`.
fn compile_matchers(
    route: &RouteConfig,
    at: &str,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> Vec<Matcher> {
    let table = route
        .match_fields
        .iter()
        .map(|(field, value)| (format!("{at}.match.{field}"), Matcher::from_pair(field, value)));
    let listed = route
        .matchers
        .iter()
        .enumerate()
        .map(|(j, text)| (format!("{at}.matchers[{j}]"), Matcher::parse(text)));
    let mut matchers = Vec::new();
    for (place, compiled) in table.chain(listed) {
        match compiled.and_then(|m| m.check_value().map(|warning| (m, warning))) {
            Ok((m, warning)) => {
                warnings.extend(warning.map(|w| Problem::new(place, w)));
                matchers.push(m);
            }
            Err(message) => problems.push(Problem::new(place, message)),
        }
    }
    matchers
}

/// The route's `group_by` fields; what is not a field, or can hold several values, to `problems`.
fn group_fields(route: &RouteConfig, at: &str, problems: &mut Vec<Problem>) -> Vec<matcher::Field> {
    let mut fields = Vec::new();
    for (j, name) in route.group_by.iter().enumerate() {
        let place = format!("{at}.group_by[{j}]");
        match matcher::Field::parse(name) {
            Ok(field) if !field.is_single() => problems.push(Problem::new(
                place,
                format!(
                    "`{name}` can hold several values (one per node): group by a field with one value per event ({})",
                    RouteConfig::GROUP_FIELDS.join(", ")
                ),
            )),
            Ok(field) => fields.push(field),
            Err(message) => problems.push(Problem::new(place, message)),
        }
    }
    fields
}

/// The group `event` joins on `channel` through `route` (`None` when the route does not group).
fn group_of(route: &CompiledRoute, channel: &str, event: &Event) -> Option<crate::action::Group> {
    if route.group_by.is_empty() {
        return None;
    }
    let values: Vec<String> = route
        .group_by
        .iter()
        .map(|f| format!("{}={}", f.name(), f.single_value(event).unwrap_or("")))
        .collect();
    let key = format!("{}|{channel}|{}", route.config.name, values.join(","));
    Some(crate::action::Group { key, wait: route.config.group_wait(), muted_by: None })
}

/// The route's channels as indexes into the configuration's channels.
fn resolve_channels(
    route: &RouteConfig,
    at: &str,
    by_name: &HashMap<&str, usize>,
    problems: &mut Vec<Problem>,
) -> Vec<usize> {
    if route.channels.is_empty() {
        problems.push(Problem::new(format!("{at}.channels"), "is empty: name at least one channel"));
    }
    let mut channels = Vec::with_capacity(route.channels.len());
    for (j, name) in route.channels.iter().enumerate() {
        match by_name.get(name.as_str()) {
            Some(&index) if channels.contains(&index) => problems.push(Problem::new(
                format!("{at}.channels[{j}]"),
                format!("channel {name:?} is listed twice"),
            )),
            Some(&index) => channels.push(index),
            None => {
                let mut known: Vec<&str> = by_name.keys().copied().collect();
                known.sort_unstable();
                problems.push(Problem::new(
                    format!("{at}.channels[{j}]"),
                    format!("unknown channel {name:?} (channels: {})", known.join(", ")),
                ));
            }
        }
    }
    channels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ChannelType;

    #[test]
    fn a_router_can_be_shared_across_tasks() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<Router>();
    }

    #[test]
    fn the_builtin_config_logs_every_event() {
        let router = Router::new(&Config::builtin()).unwrap();
        for (_, event) in crate::samples::events() {
            let actions = router.plan(&event).unwrap();
            assert_eq!(actions.len(), 1);
            assert_eq!((actions[0].route.as_str(), actions[0].channel.as_str()), ("all", "log"));
            assert_eq!(actions[0].payload["event"], event.identity());
        }
    }

    fn config(toml: &str) -> Config {
        Config::from_toml_str(toml, &|_| None).expect("valid test configuration")
    }

    /// A webhook or a template that reads `event` has every tree built at once.
    #[test]
    fn knows_when_messages_read_the_event_tree() {
        let reads = |toml: &str| Router::new(&config(toml)).unwrap().reads_event_tree();
        assert!(!Router::new(&Config::builtin()).unwrap().reads_event_tree());
        let log = "[[channels]]\nname = \"log\"\ntype = \"log\"\n";
        let route = |template: &str| {
            format!("{log}[[routes]]\nname = \"all\"\nchannels = [\"log\"]\ntemplate = {template:?}\n")
        };
        assert!(!reads(&route("{{ headline }} {{ task_id }}")));
        assert!(reads(&route("{{ event.TaskInput.Title }}")));
        let hook = "[[channels]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/h\"\n";
        assert!(reads(&format!("{hook}[[routes]]\nname = \"all\"\nchannels = [\"hook\"]\n")));
    }

    #[test]
    fn builtins_compile_and_render_every_channel_type() {
        let mut toml = String::new();
        for kind in ChannelType::ALL {
            toml.push_str(&format!("[[channels]]\nname = \"{kind}\"\ntype = \"{kind}\"\n"));
            if kind.keys().contains(&"url") {
                toml.push_str("url = \"https://example.com/hook\"\n");
            }
        }
        toml.push_str("[[channels]]\nname = \"post\"\ntype = \"feishu\"\nmsg_type = \"post\"\nurl = \"https://example.com/p\"\n");
        let names: Vec<String> = ChannelType::ALL.iter().map(|k| format!("\"{k}\"")).collect();
        toml.push_str(&format!("[[routes]]\nname = \"all\"\nchannels = [{}, \"post\"]\n", names.join(", ")));
        let router = Router::new(&config(&toml)).unwrap();
        assert_eq!(router.check_samples(), vec![]);
        for (_, event) in crate::samples::events() {
            assert_eq!(router.plan(&event).unwrap().len(), ChannelType::ALL.len() + 1);
        }
    }

    #[test]
    fn render_failures_on_samples_are_reported() {
        let problems_of = |channel: &str, template: &str| {
            let name = channel.split('"').nth(1).unwrap();
            let routes =
                format!("[[routes]]\nname = \"r\"\nchannels = [\"{name}\"]\ntemplate = \"{template}\"\n");
            Router::new(&config(&format!("[[channels]]\n{channel}\n{routes}"))).unwrap().check_samples()
        };
        let problems = problems_of("name = \"log\"\ntype = \"log\"", "{{ nodes | length + 'x' }}");
        assert!(problems[0].to_string().contains("fails to render"), "{problems:?}");
        let slack = "name = \"slack\"\ntype = \"slack\"\nurl = \"https://hooks.slack.com/services/x\"";
        let problems = problems_of(slack, "{% if false %}x{% endif %}");
        assert!(problems[0].to_string().contains("empty message"), "{problems:?}");
        assert!(problems[0].at.starts_with(r#"routes[0] "r".template"#), "{problems:?}");
    }
}
