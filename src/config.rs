//! Configuration: a TOML file (`VODHOOK_CONFIG`, default `./vodhook.toml` when present), every
//! string interpolated with `${ENV_VAR}`, then environment overrides (`VODHOOK_*`). With no file,
//! the built-in default: one `log` channel receiving every event.
//!
//! The types are the file's shape. (Loading and validation: being written.)

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::action::ChannelType;
use crate::redact::Secret;

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
