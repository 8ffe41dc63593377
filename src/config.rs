//! Configuration: a TOML file (`VODHOOK_CONFIG`, default `./vodhook.toml` when present), every
//! string interpolated with `${ENV_VAR}`, then environment overrides (`VODHOOK_*`). With no file,
//! the built-in default: one `log` channel receiving every event.
//!
//! The types are the file's shape. [`Config::load`] reads, interpolates, overrides and validates
//! it; every problem found is reported at once (a user fixing a config should not have to run
//! the check once per mistake), each with where it is (`channels[2] "ops".url: ...`), and
//! never with a secret's value.

mod interpolate;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::action::ChannelType;
use crate::redact::{Secret, redact_url};
use crate::route::Router;

pub use interpolate::expand;

/// Environment variables vodhook reads. `s.yaml`, `template.yml` and the docs use these names;
/// a test checks that they agree.
pub mod env {
    /// Path of the TOML configuration file.
    pub const CONFIG: &str = "VODHOOK_CONFIG";
    /// The callback URL exactly as configured in VOD (the signed string starts with it).
    pub const CALLBACK_URL: &str = "VODHOOK_CALLBACK_URL";
    /// VOD's callback auth key.
    pub const AUTH_KEY: &str = "VODHOOK_AUTH_KEY";
    /// The previous auth key, accepted too while a rotation is under way.
    pub const AUTH_KEY_PREVIOUS: &str = "VODHOOK_AUTH_KEY_PREVIOUS";
    /// `host:port` to listen on, overriding the FC variables below.
    pub const LISTEN: &str = "VODHOOK_LISTEN";
    /// Function Compute's port variables, in order of preference.
    pub const FC_CUSTOM_LISTEN_PORT: &str = "FC_CUSTOM_LISTEN_PORT";
    pub const FC_SERVER_PORT: &str = "FC_SERVER_PORT";
    /// Set by Function Compute: listen on all interfaces.
    pub const FC_FUNCTION_NAME: &str = "FC_FUNCTION_NAME";
    /// Set by AWS Lambda: run as a Lambda function.
    pub const AWS_LAMBDA_RUNTIME_API: &str = "AWS_LAMBDA_RUNTIME_API";
    /// Log filter, `RUST_LOG` syntax.
    pub const LOG: &str = "RUST_LOG";
}

/// The default port: Function Compute's custom runtime port.
pub const DEFAULT_PORT: u16 = 9000;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub delivery: DeliveryConfig,
    #[serde(default)]
    pub dedup: DedupConfig,
    #[serde(default)]
    pub outbox: OutboxConfig,
    #[serde(default)]
    pub channels: Vec<ChannelConfig>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Largest request body accepted; larger ones get `413`.
    pub max_body_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self { max_body_bytes: 1024 * 1024 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub callback_url: Option<String>,
    pub key: Option<Secret>,
    pub previous_key: Option<Secret>,
    /// How far `X-VOD-TIMESTAMP` may be from now, either way.
    pub max_skew_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { callback_url: None, key: None, previous_key: None, max_skew_secs: 300 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Everything for one HTTP callback finishes within this (VOD gives up after 5 s).
    pub callback_deadline_ms: u64,
    /// The same for `/invoke` (FC event invocations, timers).
    pub invoke_deadline_ms: u64,
    /// One HTTP attempt to a channel.
    pub attempt_timeout_ms: u64,
    /// First retry delay; doubles each retry, with jitter.
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            callback_deadline_ms: 4_000,
            invoke_deadline_ms: 20_000,
            attempt_timeout_ms: 2_000,
            backoff_initial_ms: 100,
            backoff_max_ms: 1_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DedupBackend {
    #[default]
    Memory,
    Redis,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    pub backend: DedupBackend,
    /// `redis://...`; required with the redis backend. A secret: it may carry a password.
    pub url: Option<Secret>,
    /// How long a delivered action is remembered.
    pub ttl_secs: u64,
    /// How long a claim holds before another instance may take the action over.
    pub lease_ms: u64,
    /// The memory backend's bound on remembered keys.
    pub capacity: usize,
    /// Prefix of every Redis key vodhook writes.
    pub key_prefix: String,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            backend: DedupBackend::Memory,
            url: None,
            ttl_secs: 7 * 24 * 3600,
            lease_ms: 30_000,
            capacity: 100_000,
            key_prefix: "vodhook:".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// Delays before each retry from the outbox, like Svix's schedule.
    pub schedule_secs: Vec<u64>,
    /// After this age an item goes to the dead-letter list.
    pub max_age_secs: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self { schedule_secs: vec![5, 300, 1800, 7200, 18_000, 36_000], max_age_secs: 3 * 24 * 3600 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ChannelType,
    /// Required for every type but `log`. A secret: chat services put tokens in URLs.
    pub url: Option<Secret>,
    /// DingTalk/Feishu signing secret, or the webhook's `whsec_...` secret.
    pub secret: Option<Secret>,
    /// Extra HTTP headers (webhook).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Default template for this channel (else the channel type's built-in one).
    pub template: Option<String>,
    /// Messages per minute this instance sends at most (DingTalk and WeCom default to 20).
    pub rate_per_minute: Option<u32>,
    /// Feishu: `interactive` (default) or `post`.
    pub msg_type: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    /// Field → value; equality (status case-insensitive, title a glob).
    #[serde(default, rename = "match")]
    pub match_fields: BTreeMap<String, String>,
    /// Alertmanager-style matchers: `status!="Succeed"`, `workflow_id=~"^wf-"`, `title!~"test"`.
    #[serde(default)]
    pub matchers: Vec<String>,
    pub channels: Vec<String>,
    pub template: Option<String>,
    /// Keep matching later routes (first match wins otherwise).
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
}

/// One thing wrong with a configuration, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: `channels[2] "ops".url`, `routes[0] "failures".matchers[1]`, `line 4, column 7`.
    pub at: String,
    pub message: String,
}

impl Problem {
    pub fn new(at: impl Into<String>, message: impl Into<String>) -> Self {
        Self { at: at.into(), message: message.into() }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.at.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.at, self.message)
        }
    }
}

/// Everything wrong with a configuration. Its `Display` lists every problem, one per line, and
/// never shows a secret's value (messages name variables and fields, not their contents).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file, when there is one.
    pub file: Option<PathBuf>,
    pub problems: Vec<Problem>,
}

impl ConfigError {
    pub fn new(problems: Vec<Problem>) -> Self {
        Self { file: None, problems }
    }

    fn in_file(mut self, file: Option<&Path>) -> Self {
        self.file = file.map(Path::to_path_buf);
        self
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match &self.file {
            Some(file) => format!("configuration {}", file.display()),
            None => "configuration".to_owned(),
        };
        let n = self.problems.len();
        write!(f, "{what} has {n} problem{}:", if n == 1 { "" } else { "s" })?;
        for problem in &self.problems {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

/// `channels[2] "ops"`: how problems name a channel.
pub fn channel_location(index: usize, name: &str) -> String {
    format!("channels[{index}] {name:?}")
}

/// `routes[0] "failures"`: how problems name a route.
pub fn route_location(index: usize, name: &str) -> String {
    format!("routes[{index}] {name:?}")
}

/// Where the configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    File(PathBuf),
    /// No file: one `log` channel receiving every event.
    BuiltIn,
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::File(path) => write!(f, "{}", path.display()),
            ConfigSource::BuiltIn => f.write_str("built-in default (no configuration file)"),
        }
    }
}

/// The file vodhook reads when none is named.
pub const DEFAULT_FILE: &str = "vodhook.toml";

impl Config {
    /// Loads the configuration: the file `path`, else `$VODHOOK_CONFIG`, else `./vodhook.toml`
    /// when present, else the built-in default; then `${VAR}` interpolation, the `VODHOOK_*`
    /// overrides and validation. Warnings (settings that are ignored) are logged.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let env = |name: &str| std::env::var(name).ok();
        let (config, _, warnings) = Config::load_with(path, &env)?;
        for warning in warnings {
            tracing::warn!(%warning, "configuration");
        }
        Ok(config)
    }

    /// [`Config::load`] with the environment given as a lookup function (tests pass a map).
    /// Returns the configuration, where it came from, and warnings.
    pub fn load_with(
        path: Option<&Path>,
        env: interpolate::Lookup<'_>,
    ) -> Result<(Config, ConfigSource, Vec<Problem>), ConfigError> {
        let source = locate(path, env);
        let config = match &source {
            ConfigSource::BuiltIn => Config::from_toml_str_with_warnings("", env),
            ConfigSource::File(file) => {
                let text = std::fs::read_to_string(file).map_err(|err| {
                    ConfigError::new(vec![Problem::new("", format!("cannot read the file: {err}"))])
                        .in_file(Some(file))
                })?;
                Config::from_toml_str_with_warnings(&text, env).map_err(|e| e.in_file(Some(file)))
            }
        };
        config.map(|(config, warnings)| (config, source, warnings))
    }

    /// Parses, interpolates, overrides and validates configuration text; `env` looks up
    /// environment variables. The empty text gives the built-in default.
    pub fn from_toml_str(text: &str, env: interpolate::Lookup<'_>) -> Result<Config, ConfigError> {
        Config::from_toml_str_with_warnings(text, env).map(|(config, _)| config)
    }

    fn from_toml_str_with_warnings(
        text: &str,
        env: interpolate::Lookup<'_>,
    ) -> Result<(Config, Vec<Problem>), ConfigError> {
        let mut config: Config =
            toml::from_str(text).map_err(|err| ConfigError::new(vec![toml_problem(text, &err)]))?;
        let failed = interpolate::interpolate_config(&mut config, env);
        config.apply_env_overrides(env);
        if config.channels.is_empty() && config.routes.is_empty() {
            config.channels = Config::builtin().channels;
            config.routes = Config::builtin().routes;
        }
        let mut findings = validate::validate(&config);
        // A value whose interpolation failed was already reported; checking its raw text
        // would only add noise.
        findings.problems.retain(|p| !failed.iter().any(|f| p.at.starts_with(&f.at)));
        let mut problems = failed;
        problems.extend(findings.problems);
        if problems.is_empty() { Ok((config, findings.warnings)) } else { Err(ConfigError::new(problems)) }
    }

    /// The built-in configuration: one `log` channel named `log`, one route `all` sending it
    /// every event.
    pub fn builtin() -> Config {
        Config {
            channels: vec![ChannelConfig {
                name: "log".to_owned(),
                kind: ChannelType::Log,
                url: None,
                secret: None,
                headers: BTreeMap::new(),
                template: None,
                rate_per_minute: None,
                msg_type: None,
            }],
            routes: vec![RouteConfig {
                name: "all".to_owned(),
                match_fields: BTreeMap::new(),
                matchers: Vec::new(),
                channels: vec!["log".to_owned()],
                template: None,
                continue_matching: false,
            }],
            ..Config::default()
        }
    }

    /// `VODHOOK_CALLBACK_URL`, `VODHOOK_AUTH_KEY` and `VODHOOK_AUTH_KEY_PREVIOUS` replace
    /// `[auth]` settings when set and not empty (deployment templates often pass an empty
    /// value for "not configured").
    fn apply_env_overrides(&mut self, env: interpolate::Lookup<'_>) {
        let get = |name: &str| env(name).filter(|v| !v.is_empty());
        if let Some(url) = get(self::env::CALLBACK_URL) {
            self.auth.callback_url = Some(url);
        }
        if let Some(key) = get(self::env::AUTH_KEY) {
            self.auth.key = Some(Secret::new(key));
        }
        if let Some(key) = get(self::env::AUTH_KEY_PREVIOUS) {
            self.auth.previous_key = Some(Secret::new(key));
        }
    }
}

/// The file to read, in order of precedence.
fn locate(path: Option<&Path>, env: interpolate::Lookup<'_>) -> ConfigSource {
    if let Some(path) = path {
        return ConfigSource::File(path.to_path_buf());
    }
    if let Some(path) = env(self::env::CONFIG).filter(|p| !p.is_empty()) {
        return ConfigSource::File(PathBuf::from(path));
    }
    let default = Path::new(DEFAULT_FILE);
    if default.is_file() { ConfigSource::File(default.to_path_buf()) } else { ConfigSource::BuiltIn }
}

/// A TOML error as a problem: line and column, and serde's message with any value in it
/// removed (a secret typed into the wrong field must not be echoed). The source line, which
/// the toml crate would quote, is left out for the same reason.
fn toml_problem(text: &str, err: &toml::de::Error) -> Problem {
    let at = match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}")
        }
        None => String::new(),
    };
    Problem::new(at, scrub_values(err.message().trim()))
}

/// Removes the values serde quotes in its messages: `invalid type: string "x", expected u64`
/// becomes `invalid type: string, expected u64`.
fn scrub_values(message: &str) -> String {
    static VALUE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r#"(string|integer|floating point|boolean|character|bytes) (?:"(?:[^"\\]|\\.)*"|`[^`]*`)"#,
        )
        .expect("a valid constant regex")
    });
    VALUE.replace_all(message, "$1").into_owned()
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

/// `vodhook check-config [FILE]`: loads and validates exactly as start-up does, and describes
/// the result (secrets redacted).
pub fn check_config(path: Option<&Path>) -> Result<ConfigReport, ConfigError> {
    let env = |name: &str| std::env::var(name).ok();
    check_config_with(path, &env)
}

/// [`check_config`] with the environment given as a lookup function.
pub fn check_config_with(
    path: Option<&Path>,
    env: interpolate::Lookup<'_>,
) -> Result<ConfigReport, ConfigError> {
    let (config, source, warnings) = Config::load_with(path, env)?;
    let router = Router::new(&config).map_err(|e| match &source {
        ConfigSource::File(file) => e.in_file(Some(file)),
        ConfigSource::BuiltIn => e,
    })?;
    let channels = config
        .channels
        .iter()
        .map(|c| match &c.url {
            Some(url) => format!("{} ({}) → {}", c.name, c.kind, redact_url(url.expose())),
            None => format!("{} ({})", c.name, c.kind),
        })
        .collect();
    let routes = router.describe();
    Ok(ConfigReport { source, channels, routes, warnings })
}
