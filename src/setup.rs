//! From a configuration file to what serves: the one place that checks a configuration whole
//! and compiles it, once per process. `serve`, `lambda`, `plan`, `drain` and `check-config` all
//! come through here, so what `check-config` accepts is exactly what starts.
//!
//! The order: [`Config::load_with`] reads the file and checks its fields (configuration is a leaf
//! and knows nothing of channels or routes); then each channel checks its own settings
//! ([`channel::check`]); then the routes and every template are compiled into the [`Router`]
//! (templates compile here and nowhere else), and every (route, channel) pair is rendered against
//! the sample events. Every problem of every step is reported at once.

use std::path::Path;

use crate::auth::reuse::ReuseGuard;
use crate::channel;
use crate::config::{
    Config, ConfigError, ConfigSource, DedupBackend, DedupConfig, Lookup, Problem, channel_location,
};
use crate::dedup::DedupStore;
use crate::outbox::Outbox;
use crate::redact::redact_url;
use crate::route::Router;
use crate::store::{RedisConn, StoreError};

/// A checked configuration and its compiled router.
#[derive(Debug)]
pub struct Setup {
    pub config: Config,
    pub source: ConfigSource,
    /// Settings that are accepted but have no effect, channels no route uses, ...
    pub warnings: Vec<Problem>,
    pub router: Router,
}

impl Setup {
    /// [`Setup::load_with`] with the process's environment; warnings are logged.
    pub fn load(path: Option<&Path>) -> Result<Setup, ConfigError> {
        let setup = Setup::load_with(path, &|name: &str| std::env::var(name).ok())?;
        for warning in &setup.warnings {
            tracing::warn!(%warning, "configuration");
        }
        Ok(setup)
    }

    /// Reads the configuration (see [`Config::load_with`] for where from), checks it whole and
    /// compiles it; `env` looks environment variables up.
    pub fn load_with(path: Option<&Path>, env: Lookup<'_>) -> Result<Setup, ConfigError> {
        let (config, source, findings) = Config::load_with(path, env)?;
        let file = match &source {
            ConfigSource::File(file) => Some(file.clone()),
            ConfigSource::BuiltIn => None,
        };
        Setup::check(config, source, findings).map_err(|e| e.in_file(file.as_deref()))
    }

    /// [`Setup::load_with`] for configuration text (tests, embedding).
    pub fn from_toml_str(text: &str, env: Lookup<'_>) -> Result<Setup, ConfigError> {
        let (config, findings) = Config::parse(text, env)?;
        Setup::check(config, ConfigSource::BuiltIn, findings)
    }

    /// A configuration built in code, checked like a file.
    pub fn from_config(config: Config) -> Result<Setup, ConfigError> {
        let text_checks = crate::config::Findings::default();
        Setup::check(config, ConfigSource::BuiltIn, text_checks)
    }

    fn check(
        config: Config,
        source: ConfigSource,
        mut findings: crate::config::Findings,
    ) -> Result<Setup, ConfigError> {
        for (i, c) in config.channels.iter().enumerate() {
            findings.extend(channel::check(c, &channel_location(i, &c.name)));
        }
        if let Some(source) = config.report.as_ref().and_then(|r| r.template.as_deref()) {
            let sample = crate::report::Summary::default();
            for markup in [crate::template::Markup::Dingtalk, crate::template::Markup::Slack] {
                if let Err(message) =
                    crate::report::render::templated(source, &sample, Default::default(), markup)
                {
                    findings.extend_problems(vec![Problem::new("report.template", message)]);
                    break;
                }
            }
        }
        if let Some(path) = &config.store.tls_ca_file
            && let Err(message) = crate::store::connect::read_ca_file(path)
        {
            findings.extend_problems(vec![Problem::new("dedup.tls_ca_file", message)]);
        }
        let router = match Router::build(&config) {
            Ok((router, problems)) => {
                findings.extend_problems(problems);
                findings.extend_problems(router.check_samples());
                findings.extend_problems(router.overlong_holds(crate::clock::unix_now()));
                findings.warnings.extend(router.warnings());
                Some(router)
            }
            Err(err) => {
                findings.extend_problems(err.problems);
                None
            }
        };
        let warnings = findings.into_result()?;
        match router {
            Some(router) => Ok(Setup { config, source, warnings, router }),
            // Not reached: a router that did not build left its problems in the findings.
            None => Err(ConfigError::new(vec![Problem::new("", "the routes did not compile")])),
        }
    }

    /// What `vodhook check-config` prints: where the configuration came from, its channels (URLs
    /// redacted) and routes, and the warnings.
    pub fn report(&self) -> ConfigReport {
        let channels = self
            .config
            .channels
            .iter()
            .map(|c| match c.url() {
                Some(url) => format!("{} ({}) → {}", c.name, c.kind(), redact_url(url.expose())),
                None => format!("{} ({})", c.name, c.kind()),
            })
            .collect();
        ConfigReport {
            source: self.source.clone(),
            channels,
            routes: self.router.describe(),
            warnings: self.warnings.clone(),
        }
    }
}

/// Where vodhook keeps what instances share: the dedup store, the outbox when it is on Redis,
/// and the replay guard's signatures (all on one connection). Nothing is dialled until first use.
pub struct State {
    pub dedup: DedupStore,
    /// `None` with the memory backend: no shared place keeps undelivered actions, so a callback
    /// that cannot deliver answers `503` instead.
    pub outbox: Option<Outbox>,
    pub replay: ReuseGuard,
    /// The connection rate budgets are shared through (`None`: per-instance budgets).
    pub redis: Option<RedisConn>,
}

impl State {
    pub fn open(config: &DedupConfig) -> Result<State, StoreError> {
        match config.backend {
            DedupBackend::Memory => Ok(State {
                dedup: DedupStore::memory(config.capacity),
                outbox: None,
                replay: ReuseGuard::memory(),
                redis: None,
            }),
            DedupBackend::Redis => {
                let conn = RedisConn::open(config)?;
                Ok(State {
                    dedup: DedupStore::redis(conn.clone()),
                    outbox: Some(Outbox::new(conn.clone())),
                    replay: ReuseGuard::Redis(conn.clone()),
                    redis: Some(conn),
                })
            }
        }
    }
}

/// What `vodhook check-config` prints for a good configuration.
#[derive(Debug, Clone)]
pub struct ConfigReport {
    pub source: ConfigSource,
    /// `name (type) → https://host/…`
    pub channels: Vec<String>,
    /// `name: matchers → channels`
    pub routes: Vec<String>,
    /// Settings that are accepted but have no effect, channels no route uses, ...
    pub warnings: Vec<Problem>,
}

impl std::fmt::Display for ConfigReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "configuration OK: {}", self.source)?;
        writeln!(f, "channels:")?;
        for channel in &self.channels {
            writeln!(f, "  {channel}")?;
        }
        writeln!(f, "routes (in order; first match wins unless `continue`):")?;
        for route in &self.routes {
            writeln!(f, "  {route}")?;
        }
        for warning in &self.warnings {
            writeln!(f, "warning: {warning}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{GOOD, GOOD_ENV, env_of};

    #[test]
    fn every_problem_is_listed_with_its_place_and_no_secret() {
        let text = r#"
[dedup]
backend = "redis"

[[channels]]
name = "ops"
type = "dingtalk"

[[channels]]
name = "ops"
type = "slack"
url = "ftp://hooks.slack.com/services/${SLACK_PATH}"

[[channels]]
name = "hook"
type = "webhook"
url = "not a url ${TOKEN}"
secret = "${TOKEN}"
msg_type = "post"

[[routes]]
name = "r1"
matchers = ['titel="x"', 'status=~"("']
match = { colour = "red" }
channels = ["ops", "nowhere"]
template = "{% if %}"
"#;
        let env = env_of(&[("TOKEN", "sup3r-s3cret"), ("SLACK_PATH", "T000/B000/XXXX")]);
        let err = Setup::from_toml_str(text, &env).unwrap_err();
        let shown = err.to_string();
        for expected in [
            r#"dedup.url: is required with backend = "redis""#,
            r#"channels[0] "ops".url: is required for dingtalk channels"#,
            r#"channels[1] "ops": duplicate channel name (also channels[0])"#,
            r#"channels[1] "ops".url: must be an http:// or https:// URL"#,
            r#"channels[2] "hook".url: is not a valid URL"#,
            r#"channels[2] "hook".secret: must start with `whsec_`"#,
            r#"channels[2] "hook".msg_type: is a setting of feishu channels, not of webhook ones"#,
            r#"routes[0] "r1".match.colour: unknown field `colour`"#,
            r#"routes[0] "r1".matchers[0]: unknown field `titel`"#,
            r#"routes[0] "r1".matchers[1]: invalid regex"#,
            r#"routes[0] "r1".channels[1]: unknown channel "nowhere""#,
            r#"routes[0] "r1".template: template does not compile"#,
        ] {
            assert!(shown.contains(expected), "missing {expected:?} in:\n{shown}");
        }
        assert_eq!(shown.lines().count(), err.problems.len() + 1, "one problem per line:\n{shown}");
        assert!(!shown.contains("sup3r-s3cret") && !shown.contains("XXXX"), "{shown}");
    }

    #[test]
    fn an_unset_variable_is_reported_once_not_checked_again() {
        let env = env_of(&GOOD_ENV[..2]);
        let err = Setup::from_toml_str(GOOD, &env).unwrap_err();
        // The un-interpolated `${HOOK_SECRET}` is not also called a bad `whsec_` secret.
        assert_eq!(err.problems.len(), 3, "{err}");
    }

    #[test]
    fn check_config_describes_what_it_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vodhook.toml");
        std::fs::write(&file, GOOD).unwrap();
        let report = Setup::load_with(Some(&file), &env_of(GOOD_ENV)).unwrap().report();
        let shown = report.to_string();
        assert!(shown.contains("ops (dingtalk) → https://oapi.dingtalk.com/…"), "{shown}");
        assert!(
            shown.contains(
                r#"failures: event_type="WorkflowTaskComplete", status="failed" → ops, hook (continue)"#
            ),
            "{shown}"
        );
        assert!(shown.contains(r#"everything: title!~".*test.*" → hook"#), "{shown}");
        assert!(
            !shown.contains("tok\"en") && !shown.contains("SECabc") && !shown.contains("t0k3n"),
            "{shown}"
        );

        std::fs::write(&file, "[[channels]]\nname = \"a\"\ntype = \"slack\"\n").unwrap();
        let err = Setup::load_with(Some(&file), &env_of(&[])).unwrap_err().to_string();
        assert!(err.starts_with(&format!("configuration {} has 2 problems:", file.display())), "{err}");
    }

    #[test]
    fn a_webhook_header_vodhook_sets_fails_the_check() {
        let text = r#"
[[channels]]
name = "hook"
type = "webhook"
url = "https://hooks.example.com/vod"
headers = { webhook-version = "1" }

[[routes]]
name = "all"
channels = ["hook"]
"#;
        let err = Setup::from_toml_str(text, &env_of(&[])).unwrap_err().to_string();
        assert!(
            err.contains(
                r#"channels[0] "hook".headers.webhook-version: is set by vodhook itself and cannot be overridden"#
            ),
            "{err}"
        );
    }

    #[test]
    fn the_builtin_configuration_is_the_default_and_checks() {
        let setup = Setup::from_config(Config::default()).unwrap();
        assert_eq!(setup.router.describe(), ["all: every event → log"]);
    }
}
