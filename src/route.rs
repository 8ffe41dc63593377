//! Routing: from an event to the actions it causes. Pure: no I/O, no clock.
//!
//! Routes are tried in the order of the file. The first route whose matchers all pass takes
//! the event, unless it says `continue = true`, in which case later routes are tried too (as
//! in Alertmanager). Each (matching route, channel of that route) pair is one [`Action`], with
//! an idempotency key from the event's identity, the route and the channel, and its body
//! rendered by [`Templates`]. Matcher syntax and semantics: [`matcher`].

pub mod matcher;

use std::collections::HashMap;

use crate::action::Action;
use crate::config::{ChannelConfig, Config, ConfigError, Problem, RouteConfig, route_location};
use crate::event::Event;
use crate::template::{RenderError, Templates};
pub use matcher::{Field, Matcher, Op};

/// The compiled routes of one configuration. Build it once, at start-up.
#[derive(Debug)]
pub struct Router {
    routes: Vec<CompiledRoute>,
    channels: Vec<ChannelConfig>,
    templates: Templates,
}

#[derive(Debug)]
struct CompiledRoute {
    config: RouteConfig,
    matchers: Vec<Matcher>,
    /// Indexes into `Router::channels`.
    channels: Vec<usize>,
}

impl Router {
    /// Compiles matchers and templates; reports every problem (unknown channel, bad matcher,
    /// template that does not compile or render) with its location.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        Self::build(config, false)
    }

    /// [`Router::new`] for a configuration [`Config::load`] has already checked: templates are
    /// compiled but not rendered against the sample events again.
    pub fn for_checked(config: &Config) -> Result<Self, ConfigError> {
        Self::build(config, true)
    }

    fn build(config: &Config, checked: bool) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let by_name: HashMap<&str, usize> =
            config.channels.iter().enumerate().map(|(i, c)| (c.name.as_str(), i)).collect();
        let mut routes = Vec::with_capacity(config.routes.len());
        for (i, route) in config.routes.iter().enumerate() {
            let at = route_location(i, &route.name);
            let mut matchers = Vec::new();
            for (field, value) in &route.match_fields {
                match Matcher::from_pair(field, value) {
                    Ok(m) => matchers.push(m),
                    Err(message) => problems.push(Problem::new(format!("{at}.match.{field}"), message)),
                }
            }
            for (j, text) in route.matchers.iter().enumerate() {
                match Matcher::parse(text) {
                    Ok(m) => matchers.push(m),
                    Err(message) => problems.push(Problem::new(format!("{at}.matchers[{j}]"), message)),
                }
            }
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
            routes.push(CompiledRoute { config: route.clone(), matchers, channels });
        }
        let templates = match if checked { Templates::compile(config) } else { Templates::new(config) } {
            Ok(templates) => Some(templates),
            Err(err) => {
                problems.extend(err.problems);
                None
            }
        };
        match templates {
            Some(templates) if problems.is_empty() => {
                Ok(Router { routes, channels: config.channels.clone(), templates })
            }
            _ => Err(ConfigError::new(problems)),
        }
    }

    /// The actions `event` causes, in route order (and channel order within a route).
    pub fn plan(&self, event: &Event) -> Result<Vec<Action>, RenderError> {
        let mut actions = Vec::new();
        let mut prepared = None;
        for route in &self.routes {
            if !route.matchers.iter().all(|m| m.matches(event)) {
                continue;
            }
            let prepared = prepared.get_or_insert_with(|| self.templates.prepare(event));
            for &index in &route.channels {
                let channel = &self.channels[index];
                let payload = self.templates.render(channel, &route.config, prepared)?;
                actions.push(Action {
                    key: Action::key_for(prepared.identity(), &route.config.name, &channel.name),
                    event: prepared.identity().to_owned(),
                    route: route.config.name.clone(),
                    channel: channel.name.clone(),
                    channel_type: channel.kind,
                    payload,
                });
            }
            if !route.config.continue_matching {
                break;
            }
        }
        Ok(actions)
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

    /// The channel named `name` (the delivery side looks URLs and secrets up here).
    pub fn channel(&self, name: &str) -> Option<&ChannelConfig> {
        self.channels.iter().find(|c| c.name == name)
    }

    pub fn templates(&self) -> &Templates {
        &self.templates
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_router_can_be_shared_across_tasks() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<Router>();
    }

    #[test]
    fn the_builtin_config_logs_every_event() {
        let router = Router::new(&Config::builtin()).unwrap();
        for (_, event) in crate::template::sample::events() {
            let actions = router.plan(&event).unwrap();
            assert_eq!(actions.len(), 1);
            assert_eq!((actions[0].route.as_str(), actions[0].channel.as_str()), ("all", "log"));
            assert_eq!(actions[0].payload["event"], event.identity());
        }
    }
}
