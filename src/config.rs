//! Configuration: a TOML file (`VODHOOK_CONFIG`, default `./vodhook.toml` when present), every
//! string interpolated with `${ENV_VAR}`, then environment overrides (`VODHOOK_*`). With no file,
//! the built-in default: one `log` channel receiving every event.
//!
//! The types are the file's shape. [`Config::load`] reads, interpolates, overrides and validates
//! it; every problem found is reported at once (a user fixing a config should not have to run
//! the check once per mistake), each with where it is (`channels[2] "ops".url: ...`), and
//! never with a secret's value.
//!
//! ```toml
//! [auth]                          # optional: verify VOD's callback signature
//! callback_url = "https://example.com/vod"
//! key = "${VODHOOK_AUTH_KEY}"     # ${VAR}: from the environment; $${ is a literal ${
//!
//! [[channels]]
//! name = "ops"
//! type = "dingtalk"               # dingtalk | feishu | wecom | slack | webhook | log
//! url = "https://oapi.dingtalk.com/robot/send?access_token=${DINGTALK_TOKEN}"
//! secret = "${DINGTALK_SECRET}"   # DingTalk/Feishu signing secret; webhook: whsec_<base64>
//! # template = "..."              # this channel's default message (minijinja)
//! # msg_type = "post"             # feishu: interactive (card, default) or post
//! # headers = { X-Team = "vod" }  # webhook: extra headers
//!
//! [[routes]]                      # tried in order; the first match wins...
//! name = "failures"
//! match = { event_type = "WorkflowTaskComplete", status = "Failed" }
//! matchers = ['workflow_id=~"wf-live-.*"', 'title!~".*test.*"']   # Alertmanager syntax
//! channels = ["ops"]
//! continue = true                 # ...unless it says to go on
//! # template = "..."              # overrides the channels' templates for this route
//! ```
//!
//! Matchers are described in the `route::matcher` module, templates in the `template` module.

mod channel;
mod duration;
mod explain;
mod interpolate;
mod links;
mod mention;
pub mod report;
mod time_interval;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::redact::Secret;

pub use channel::{
    Address, COMMON_KEYS, ChannelConfig, ChannelType, Feishu, Log, Robot, Service, VodCall, Webhook,
    foreign_key_problem,
};
pub use duration::Span;
pub use interpolate::Lookup;
pub use links::{ButtonKind, LinksConfig, MIN_SECRET_BYTES, RERUN_CHANNEL};
pub use mention::{MentionKey, Mentions};
pub use report::{MetricsConfig, ReportConfig, TimeOfDay};
pub use time_interval::{IntervalConfig, OnMute, RangeItem, TimeIntervalConfig, TimeRangeConfig};
pub use validate::{Findings, http_url};

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
    /// Intelligent Media Services' callback auth key (`X-ICE-*` signatures).
    pub const IMS_AUTH_KEY: &str = "VODHOOK_IMS_AUTH_KEY";
    /// The previous IMS auth key.
    pub const IMS_AUTH_KEY_PREVIOUS: &str = "VODHOOK_IMS_AUTH_KEY_PREVIOUS";
    /// `host:port` to listen on, overriding the FC variables below.
    pub const LISTEN: &str = "VODHOOK_LISTEN";
    /// Function Compute's port variables, in order of preference.
    pub const FC_CUSTOM_LISTEN_PORT: &str = "FC_CUSTOM_LISTEN_PORT";
    pub const FC_SERVER_PORT: &str = "FC_SERVER_PORT";
    /// Set by Function Compute: listen on all interfaces, log JSON.
    pub const FC_FUNCTION_NAME: &str = "FC_FUNCTION_NAME";
    /// Together, proof of running on Function Compute (see `runtime::server::on_function_compute`).
    pub const FC_PROOF: [&str; 4] = [FC_FUNCTION_NAME, "FC_REGION", "FC_ACCOUNT_ID", "FC_INSTANCE_ID"];
    /// Set by AWS Lambda: run as a Lambda function.
    pub const AWS_LAMBDA_RUNTIME_API: &str = "AWS_LAMBDA_RUNTIME_API";
    /// Log filter, `RUST_LOG` syntax.
    pub const LOG: &str = "RUST_LOG";
}

/// The default port: Function Compute's custom runtime port.
pub const DEFAULT_PORT: u16 = 9000;

/// The whole file. [`Config::default`] is the built-in configuration (see [`Config::builtin`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// `[store]`, as written (see [`Config::store`]).
    #[serde(default, rename = "store")]
    pub(crate) store_section: Option<DedupConfig>,
    /// `[dedup]`, the older name of `[store]`, still read.
    #[serde(default, rename = "dedup")]
    pub(crate) dedup_section: Option<DedupConfig>,
    /// The shared state's store (Redis or memory): dedup claims, the outbox, the replay guard,
    /// budgets. From `[store]`, or from `[dedup]` in older files.
    #[serde(skip)]
    pub store: DedupConfig,
    /// Which of the two the file used, for the key paths of its problems.
    #[serde(skip)]
    pub store_key: StoreKey,
    #[serde(default)]
    pub outbox: OutboxConfig,
    #[serde(default)]
    pub messages: MessagesConfig,
    #[serde(default)]
    pub vod: VodConfig,
    #[serde(default)]
    pub channels: Vec<ChannelConfig>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Named time intervals, for routes' `mute_time_intervals` / `active_time_intervals`.
    #[serde(default)]
    pub time_intervals: Vec<TimeIntervalConfig>,
    /// `[links]`: signed links to vodhook's confirmation page; none without it.
    #[serde(default)]
    pub links: Option<LinksConfig>,
    /// `[metrics]`: the Prometheus listener, the CloudWatch namespace.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// `[report]`: the daily (or weekly) report in chat; none without it.
    #[serde(default)]
    pub report: Option<ReportConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config::builtin()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Largest request body accepted; larger ones get `413`.
    pub max_body_bytes: usize,
    /// A request's headers must arrive within this; it also closes keep-alive connections idle
    /// that long.
    pub header_read_timeout_ms: u64,
    /// A request's body must arrive within this of its headers, else `408`.
    pub body_read_timeout_ms: u64,
    /// Open connections at most (lowered to stay below the process's descriptor limit); at the
    /// cap the oldest one that has not sent a whole request is closed for a new one.
    pub max_connections: usize,
    /// Events one delivery may hold (VOD sends one, FC's MNS trigger at most 16); more: `413`.
    pub max_events_per_delivery: usize,
    /// Nodes one workflow event may have; an event with more is rejected (`413` when alone).
    pub max_nodes_per_event: usize,
    /// Warnings and rejected events listed in an answer (and its one log line); the rest are
    /// counted.
    pub max_reported_warnings: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            header_read_timeout_ms: 5_000,
            body_read_timeout_ms: 5_000,
            max_connections: 1024,
            max_events_per_delivery: 100,
            max_nodes_per_event: 500,
            max_reported_warnings: 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub callback_url: Option<String>,
    pub key: Option<Secret>,
    pub previous_key: Option<Secret>,
    /// IMS's auth key, for callbacks signed with `X-ICE-*` (same formula, same callback URL).
    pub ims_key: Option<Secret>,
    pub ims_previous_key: Option<Secret>,
    /// How far `X-VOD-TIMESTAMP` (or `X-ICE-TIMESTAMP`) may be from now, either way.
    pub max_skew_secs: u64,
    /// Accept unsigned `POST /invoke` (as event invocations) on a server that is not Function
    /// Compute. Off by default, and risky: anyone who can reach the server can then send events
    /// and start outbox drains. Only for a server whose `/invoke` no one else can reach.
    pub allow_unsigned_invoke: bool,
    /// For how long after its first use a signature may carry new bodies (VOD signs every
    /// callback of one second alike); after that only the bodies it came with (retries).
    pub signature_reuse_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            callback_url: None,
            key: None,
            previous_key: None,
            ims_key: None,
            ims_previous_key: None,
            max_skew_secs: 300,
            allow_unsigned_invoke: false,
            signature_reuse_secs: 10,
        }
    }
}

/// One family of callback signatures: VOD's (`X-VOD-*`) or IMS's (`X-ICE-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    Vod,
    Ims,
}

impl AuthConfig {
    /// A family's current and previous keys, by the one rule that `check-config`, `serve` and
    /// the verifier share: none without a current key; a current key that is set must not be
    /// empty (an unset `${VAR}` would otherwise turn authentication off); a previous key needs
    /// a current one (an empty previous key is none: deploy files pass "" when not rotating);
    /// any key needs the callback URL, which the signature covers.
    pub fn keys(&self, family: KeyFamily) -> Result<Option<(&Secret, Option<&Secret>)>, Problem> {
        let (name, previous_name, key, previous) = match family {
            KeyFamily::Vod => ("key", "previous_key", &self.key, &self.previous_key),
            KeyFamily::Ims => ("ims_key", "ims_previous_key", &self.ims_key, &self.ims_previous_key),
        };
        let previous = previous.as_ref().filter(|p| !p.is_empty());
        let Some(key) = key.as_ref() else {
            return match previous {
                Some(_) => {
                    Err(Problem::new(format!("auth.{previous_name}"), format!("is set without auth.{name}")))
                }
                None => Ok(None),
            };
        };
        if key.is_empty() {
            return Err(Problem::new(format!("auth.{name}"), "is empty: set a key, or remove the setting"));
        }
        if self.callback_url.as_deref().is_none_or(str::is_empty) {
            let message = format!(
                "is required with auth.{name}: the callback URL is signed (set it, or {})",
                self::env::CALLBACK_URL
            );
            return Err(Problem::new("auth.callback_url", message));
        }
        Ok(Some((key, previous)))
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
    /// Sends in flight at once for one request or drain, whatever the number of actions.
    pub max_concurrent_sends: usize,
    /// Added to every rate window (a minute becomes 60.5 s): a message is counted when its
    /// budget is taken, the service counts it when it arrives, a little later.
    pub budget_margin_ms: u64,
    /// The most waiting actions one digest round takes for a channel (the rest go in the next).
    pub digest_max_actions: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            callback_deadline_ms: 4_000,
            invoke_deadline_ms: 20_000,
            attempt_timeout_ms: 2_000,
            backoff_initial_ms: 100,
            backoff_max_ms: 1_000,
            max_concurrent_sends: 16,
            budget_margin_ms: 500,
            digest_max_actions: 500,
        }
    }
}

/// `[vod]`: the VOD OpenAPI, for play links in messages (`enrich`) and `vod` channels.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VodConfig {
    /// The region of the VOD service (`cn-shanghai`; `cn-hangzhou` is served from Shanghai).
    pub region: String,
    /// Overrides the region's endpoint (a VPC endpoint, a test's stand-in).
    pub endpoint: Option<String>,
    /// Look each successful event's video up (`GetPlayInfo`) and show its play links and cover.
    pub enrich: bool,
    /// `GetPlayInfo`'s `OutputType` (`oss` or `cdn`) and `Formats` (`mp4,m3u8`), else VOD's.
    pub output_type: Option<String>,
    pub formats: Option<String>,
    /// How long signed play URLs stay valid (`AuthTimeout`), in seconds.
    pub auth_timeout_secs: u64,
    /// The most one enrichment may take out of a callback's deadline; slower, and the message
    /// goes without links.
    pub timeout_ms: u64,
    /// The largest API answer read (its answers are a few KB); a larger one fails the call, to
    /// be retried, and is not read further.
    pub max_answer_bytes: usize,
}

impl VodConfig {
    /// Where the API is: `endpoint` when set, else the region's
    /// (`https://vod.<region>.aliyuncs.com`; `cn-hangzhou` is served from Shanghai). One rule for
    /// `check-config` and the client. A region is `[a-z0-9-]+`; an endpoint is an http(s) URL
    /// with a host and nothing else that could move the request elsewhere: no user or password
    /// (`https://vod.example.com@127.0.0.1/` goes to 127.0.0.1), no path but `/`, no query.
    /// Errors name the key and never quote an endpoint (it could carry a password).
    pub fn endpoint(&self) -> Result<url::Url, Problem> {
        let Some(raw) = &self.endpoint else {
            let region = self.region.as_str();
            if region.is_empty()
                || !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(Problem::new(
                    "vod.region",
                    format!(
                        "{:?} is not a region id: expected lowercase letters, digits and '-' (e.g. \"cn-shanghai\")",
                        crate::text::truncate_chars(region, 40)
                    ),
                ));
            }
            let region = if region == "cn-hangzhou" { "cn-shanghai" } else { region };
            let url = format!("https://vod.{region}.aliyuncs.com/");
            return url::Url::parse(&url)
                .map_err(|e| Problem::new("vod.region", format!("gives no URL ({e})")));
        };
        let bad = |message: &str| Problem::new("vod.endpoint", message.to_owned());
        let url = url::Url::parse(raw).map_err(|e| bad(&format!("is not a valid URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("must be an https:// URL (http:// for a local stand-in)"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "must not carry a user name or password (user@host sends the request to that host)",
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("has no host"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(bad(
                "must be the API's address alone (e.g. \"https://vod.cn-shanghai.aliyuncs.com\"): no path, query or fragment",
            ));
        }
        Ok(url)
    }
}

impl Default for VodConfig {
    fn default() -> Self {
        Self {
            region: "cn-shanghai".to_owned(),
            endpoint: None,
            enrich: false,
            output_type: None,
            formats: None,
            auth_timeout_secs: 3600,
            timeout_ms: 1500,
            max_answer_bytes: 64 * 1024,
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
    /// A CA certificate (PEM) to trust for a `rediss://` URL, in addition to the public roots:
    /// managed Redis such as Tair signs its certificates with its own CA.
    pub tls_ca_file: Option<PathBuf>,
    /// Redis Cluster in direct mode: the nodes are discovered from `url`. A proxy-mode cluster
    /// (one endpoint) is `false`.
    pub cluster: bool,
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
            tls_ca_file: None,
            cluster: false,
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
    /// Dead letters are removed this many days after they were given up on (by the drain).
    pub dead_letter_days: u32,
    /// How long a drain's (or digest round's) taken items stay invisible to other drainers;
    /// those of a drainer that died come back after it.
    pub take_lease_secs: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            schedule_secs: vec![5, 300, 1800, 7200, 18_000, 36_000],
            max_age_secs: 3 * 24 * 3600,
            dead_letter_days: 14,
            take_lease_secs: 60,
        }
    }
}

/// Which section the store's settings were read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreKey {
    #[default]
    Store,
    /// `[dedup]`: the older name.
    Dedup,
}

impl StoreKey {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKey::Store => "store",
            StoreKey::Dedup => "dedup",
        }
    }

    /// `store.<name>` (or `dedup.<name>`): a key path in the section the file used.
    pub fn at(self, name: &str) -> String {
        format!("{}.{name}", self.as_str())
    }
}

impl Config {
    /// Takes the store's settings from `[store]`, or from `[dedup]` with a warning; both is a
    /// problem (which one wins would be a guess).
    fn resolve_store(&mut self) -> Option<Result<Problem, Problem>> {
        match (self.store_section.take(), self.dedup_section.take()) {
            (Some(store), None) => {
                self.store = store;
                None
            }
            (None, Some(dedup)) => {
                self.store = dedup;
                self.store_key = StoreKey::Dedup;
                Some(Ok(Problem::new("dedup", "is now called [store] (still read here): rename the section")))
            }
            (Some(store), Some(_)) => {
                self.store = store;
                Some(Err(Problem::new("dedup", "and [store] are the same section: keep [store] alone")))
            }
            (None, None) => None,
        }
    }
}

/// `[messages]`: the language and time offset of every channel's messages (each channel may
/// override both).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MessagesConfig {
    pub locale: Locale,
    /// `Z` (UTC, as VOD sends times: the default) or `±HH:MM`, e.g. `+08:00` for China.
    pub utc_offset: Option<UtcOffset>,
}

/// A `utc_offset` as written (`+08:00`, what templates see) and in seconds east of UTC (what
/// times are shown in): parsed once, when the file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UtcOffset {
    text: String,
    seconds: i32,
}

impl UtcOffset {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn seconds(&self) -> i32 {
        self.seconds
    }

    /// `Z` or `+00:00`: times are shown as VOD sends them.
    pub fn is_utc(&self) -> bool {
        self.seconds == 0
    }
}

impl std::str::FromStr for UtcOffset {
    type Err = String;

    fn from_str(text: &str) -> Result<UtcOffset, String> {
        Ok(UtcOffset { seconds: parse_utc_offset(text)?, text: text.to_owned() })
    }
}

impl<'de> Deserialize<'de> for UtcOffset {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// The languages of the built-in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Locale {
    #[default]
    #[serde(rename = "en")]
    En,
    #[serde(rename = "zh-CN")]
    ZhCn,
}

impl Locale {
    pub const ALL: [Locale; 2] = [Locale::En, Locale::ZhCn];

    pub fn as_str(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::ZhCn => "zh-CN",
        }
    }
}

/// A `utc_offset` in seconds east of UTC: `Z` (or `+00:00`) is 0, `+08:00` is 28,800. The error
/// says what was expected.
pub fn parse_utc_offset(text: &str) -> Result<i32, String> {
    let expected = || format!("{text:?} is not an offset: expected \"Z\" or ±HH:MM, e.g. \"+08:00\"");
    if text == "Z" {
        return Ok(0);
    }
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(expected()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(expected)?;
    let two_digits = |s: &str| {
        (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<i32>().ok()).flatten()
    };
    match (two_digits(h), two_digits(m)) {
        (Some(h), Some(m)) if h <= 14 && m < 60 => Ok(sign * (h * 3600 + m * 60)),
        _ => Err(expected()),
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
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
    /// Added to each channel's own `mention` for this route's messages, on the channels whose
    /// service can write each kind (the router resolves it).
    #[serde(default)]
    pub mention: Mentions,
    /// After a failure notice of this route is delivered, a later success of the same video and
    /// workflow sends a "resolved" notice to each channel that got it (`dispatch::resolve`).
    #[serde(default)]
    pub send_resolved: bool,
    /// How long a delivered failure stays open for a success to resolve (72h).
    #[serde(default)]
    pub resolve_within: Option<Span>,
    /// One message per group of events that agree on these fields (`video_id`, ...), after the
    /// group's first event waited `group_wait` for the others (`dispatch::digest`).
    #[serde(default)]
    pub group_by: Vec<String>,
    /// How long a group collects its events (30s).
    #[serde(default)]
    pub group_wait: Option<Span>,
    /// Held (or dropped, `on_mute`) while any of these time intervals is active.
    #[serde(default)]
    pub mute_time_intervals: Vec<String>,
    /// Held (or dropped) while none of these time intervals is active.
    #[serde(default)]
    pub active_time_intervals: Vec<String>,
    /// What a muted action becomes: held until the mute ends (default), or dropped.
    #[serde(default)]
    pub on_mute: OnMute,
    /// The buttons its messages carry (else the channel's `buttons`, else none).
    #[serde(default)]
    pub buttons: Option<Vec<ButtonKind>>,
    /// Keep matching later routes (first match wins otherwise).
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
}

impl RouteConfig {
    /// `resolve_within` when not set.
    pub const DEFAULT_RESOLVE_WITHIN: std::time::Duration = std::time::Duration::from_secs(72 * 3600);

    /// `group_wait` when not set.
    pub const DEFAULT_GROUP_WAIT: Span = Span(std::time::Duration::from_secs(30));

    /// The fields `group_by` takes: those with one value per event.
    pub const GROUP_FIELDS: [&'static str; 6] =
        ["video_id", "workflow_id", "event_type", "status", "source", "title"];

    /// How long a group of this route collects its events.
    pub fn group_wait(&self) -> Span {
        self.group_wait.unwrap_or(Self::DEFAULT_GROUP_WAIT)
    }

    /// How long a failure this route delivered stays open for a success to resolve.
    pub fn resolve_within(&self) -> std::time::Duration {
        self.resolve_within.map_or(Self::DEFAULT_RESOLVE_WITHIN, Span::as_duration)
    }
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

    /// Names the file the problems are in.
    pub fn in_file(mut self, file: Option<&Path>) -> Self {
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

/// How problems name a `[[time_intervals]]` entry: `time_intervals[0] "night"`.
pub fn interval_location(index: usize, name: &str) -> String {
    format!("time_intervals[{index}] {name:?}")
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
    /// Reads the configuration: the file `path`, else `$VODHOOK_CONFIG`, else `./vodhook.toml`
    /// when present, else the built-in default; then `${VAR}` interpolation (`env` looks
    /// variables up), the `VODHOOK_*` overrides and the field checks. Returns the configuration
    /// with what the checks found, so that the checks above this leaf (channels, routes,
    /// templates: the `setup` module) can add theirs and every problem is reported at once. An error
    /// only when there is nothing to check: an unreadable file, or text that is not TOML.
    pub fn load_with(
        path: Option<&Path>,
        env: interpolate::Lookup<'_>,
    ) -> Result<(Config, ConfigSource, Findings), ConfigError> {
        let source = locate(path, env);
        let parsed = match &source {
            ConfigSource::BuiltIn => Config::parse("", env),
            ConfigSource::File(file) => {
                let text = std::fs::read_to_string(file).map_err(|err| {
                    ConfigError::new(vec![Problem::new("", format!("cannot read the file: {err}"))])
                        .in_file(Some(file))
                })?;
                Config::parse(&text, env).map_err(|e| e.in_file(Some(file)))
            }
        };
        parsed.map(|(config, findings)| (config, source, findings))
    }

    /// Parses, interpolates, overrides and checks configuration text, and fails on any problem
    /// the field checks find. The empty text gives the built-in default.
    pub fn from_toml_str(text: &str, env: interpolate::Lookup<'_>) -> Result<Config, ConfigError> {
        let (config, findings) = Config::parse(text, env)?;
        findings.into_result().map(|_| config)
    }

    /// [`Config::load_with`] for text.
    pub fn parse(text: &str, env: interpolate::Lookup<'_>) -> Result<(Config, Findings), ConfigError> {
        let mut config: Config =
            toml::from_str(text).map_err(|err| ConfigError::new(shape_problems(text, &err)))?;
        let store_problem = config.resolve_store();
        let interpolated = interpolate::interpolate_config(&mut config, env);
        config.apply_env_overrides(env);
        if config.channels.is_empty() && config.routes.is_empty() {
            config.channels = Config::builtin().channels;
            config.routes = Config::builtin().routes;
        }
        let mut findings = validate::validate(&config, interpolated.problems);
        findings.warnings.extend(interpolated.warnings);
        match store_problem {
            Some(Ok(warning)) => findings.warnings.push(warning),
            Some(Err(problem)) => findings.problem(problem.at, problem.message),
            None => {}
        }
        Ok((config, findings))
    }

    /// The environment variables the configuration text refers to with `${NAME}` (set or not):
    /// what a deployment must provide. The `VODHOOK_*` variables the binary reads by itself are
    /// not among them ([`env`]).
    pub fn variables_in(text: &str) -> Result<std::collections::BTreeSet<String>, ConfigError> {
        let mut config: Config =
            toml::from_str(text).map_err(|err| ConfigError::new(vec![toml_problem(text, &err)]))?;
        let _ = config.resolve_store();
        Ok(interpolate::variables(&config))
    }

    /// Whether some route sends resolved notices (`send_resolved`).
    pub fn sends_resolved(&self) -> bool {
        self.routes.iter().any(|r| r.send_resolved)
    }

    /// The built-in configuration: one `log` channel named `log`, one route `all` sending it
    /// every event.
    pub fn builtin() -> Config {
        Config {
            channels: vec![ChannelConfig::new("log", ChannelType::Log)],
            routes: vec![RouteConfig {
                name: "all".to_owned(),
                channels: vec!["log".to_owned()],
                ..RouteConfig::default()
            }],
            time_intervals: Vec::new(),
            links: None,
            metrics: MetricsConfig::default(),
            report: None,
            server: ServerConfig::default(),
            auth: AuthConfig::default(),
            delivery: DeliveryConfig::default(),
            store_section: None,
            dedup_section: None,
            store: DedupConfig::default(),
            store_key: StoreKey::Store,
            outbox: OutboxConfig::default(),
            messages: MessagesConfig::default(),
            vod: VodConfig::default(),
        }
    }

    /// `VODHOOK_CALLBACK_URL`, `VODHOOK_AUTH_KEY`, `VODHOOK_AUTH_KEY_PREVIOUS` and their IMS twins replace
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
        if let Some(key) = get(self::env::IMS_AUTH_KEY) {
            self.auth.ims_key = Some(Secret::new(key));
        }
        if let Some(key) = get(self::env::IMS_AUTH_KEY_PREVIOUS) {
            self.auth.ims_previous_key = Some(Secret::new(key));
        }
    }
}

/// The file to read, in order of precedence: `path`, `$VODHOOK_CONFIG`, `./vodhook.toml`, else
/// the built-in configuration.
pub fn locate(path: Option<&Path>, env: interpolate::Lookup<'_>) -> ConfigSource {
    if let Some(path) = path {
        return ConfigSource::File(path.to_path_buf());
    }
    if let Some(path) = env(self::env::CONFIG).filter(|p| !p.is_empty()) {
        return ConfigSource::File(PathBuf::from(path));
    }
    let default = Path::new(DEFAULT_FILE);
    if default.is_file() { ConfigSource::File(default.to_path_buf()) } else { ConfigSource::BuiltIn }
}

/// Every problem of a file that does not deserialize: each section, channel and route on its own
/// (see the `explain` module), each with its line; or, for text that is not TOML at all, the
/// syntax error.
fn shape_problems(text: &str, err: &toml::de::Error) -> Vec<Problem> {
    match explain::shape_problems(text) {
        Some(problems) if !problems.is_empty() => problems,
        _ => vec![toml_problem(text, err)],
    }
}

/// `line L, column C` of the byte offset `at` in `text`.
fn line_and_column(text: &str, at: usize) -> String {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}")
}

/// A TOML error as a problem: line and column, and serde's message with any value in it
/// removed (a secret typed into the wrong field must not be echoed). The source line, which
/// the toml crate would quote, is left out for the same reason.
fn toml_problem(text: &str, err: &toml::de::Error) -> Problem {
    let at = err.span().map(|span| line_and_column(text, span.start)).unwrap_or_default();
    Problem::new(at, crate::redact::without_values(err.message().trim()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An environment of `pairs` (tests pass it where the process's environment would go).
    pub(crate) fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    /// A configuration with every kind of setting and `${VAR}`s, and [`GOOD_ENV`] to fill them.
    pub(crate) const GOOD: &str = r#"
[auth]
callback_url = "https://fc.example.com/callback"
key = "${AUTH}"

[[channels]]
name = "ops"
type = "dingtalk"
url = "https://oapi.dingtalk.com/robot/send?access_token=${DING_TOKEN}"
secret = "${DING_SECRET}"

[[channels]]
name = "hook"
type = "webhook"
url = "https://hooks.example.com/vod"
secret = "${HOOK_SECRET}"
headers = { Authorization = "Bearer ${HOOK_TOKEN}" }

[[routes]]
name = "failures"
match = { event_type = "WorkflowTaskComplete", status = "failed" }
channels = ["ops", "hook"]
continue = true

[[routes]]
name = "everything"
matchers = ['title!~".*test.*"']
channels = ["hook"]
"#;

    pub(crate) const GOOD_ENV: &[(&str, &str)] = &[
        ("AUTH", "auth-key-value"),
        ("DING_TOKEN", "tok\"en&x"),
        ("DING_SECRET", "SECabc"),
        ("HOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("HOOK_TOKEN", "t0k3n"),
    ];

    #[test]
    fn no_file_means_one_log_channel_for_everything() {
        let config = Config::from_toml_str("", &env_of(&[])).unwrap();
        assert_eq!(config.channels.len(), 1);
        assert_eq!((config.channels[0].name.as_str(), config.channels[0].kind()), ("log", ChannelType::Log));
        assert_eq!(config.routes[0].name, "all");
        assert!(config.routes[0].matchers.is_empty() && config.routes[0].match_fields.is_empty());
        let only_auth = Config::from_toml_str("[server]\nmax_body_bytes = 10\n", &env_of(&[])).unwrap();
        assert_eq!(only_auth.routes[0].channels, ["log"]);
        assert_eq!(only_auth.server.max_body_bytes, 10);
    }

    #[test]
    fn interpolates_after_parsing_so_quotes_cannot_break_the_file() {
        let config = Config::from_toml_str(GOOD, &env_of(GOOD_ENV)).unwrap();
        let url = config.channels[0].url().unwrap().expose();
        assert_eq!(url, "https://oapi.dingtalk.com/robot/send?access_token=tok\"en&x");
        let Service::Webhook(hook) = &config.channels[1].service else { panic!("a webhook") };
        assert_eq!(hook.headers["Authorization"], "Bearer t0k3n");
        assert_eq!(config.auth.key.as_ref().unwrap().expose(), "auth-key-value");
        assert!(config.routes[0].continue_matching);
    }

    #[test]
    fn environment_overrides_auth() {
        let env = env_of(&[
            ("AUTH", "from-file"),
            ("VODHOOK_AUTH_KEY", "from-env"),
            ("VODHOOK_AUTH_KEY_PREVIOUS", "old"),
            ("VODHOOK_CALLBACK_URL", "https://other.example.com/cb"),
        ]);
        let text = "[auth]\ncallback_url = \"https://a.example.com/\"\nkey = \"${AUTH}\"\n";
        let config = Config::from_toml_str(text, &env).unwrap();
        assert_eq!(config.auth.key.as_ref().unwrap().expose(), "from-env");
        assert_eq!(config.auth.previous_key.as_ref().unwrap().expose(), "old");
        assert_eq!(config.auth.callback_url.as_deref(), Some("https://other.example.com/cb"));
        // Empty values are "not set".
        let env = env_of(&[("AUTH", "from-file"), ("VODHOOK_AUTH_KEY", "")]);
        let config = Config::from_toml_str(text, &env).unwrap();
        assert_eq!(config.auth.key.as_ref().unwrap().expose(), "from-file");
    }

    #[test]
    fn a_missing_variable_names_the_variable_and_the_place() {
        let err = Config::from_toml_str(GOOD, &env_of(&GOOD_ENV[..2])).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(r#"channels[0] "ops".secret: environment variable DING_SECRET is not set"#),
            "{text}"
        );
        assert!(text.contains(r#"channels[1] "hook".secret: environment variable HOOK_SECRET is not set"#));
        assert!(
            text.contains(r#"channels[1] "hook".headers.Authorization: environment variable HOOK_TOKEN"#)
        );
        // The un-interpolated secret is not checked again (no spurious `whsec_` complaint).
        assert_eq!(err.problems.len(), 3, "{text}");
        assert!(!text.contains("tok\"en") && !text.contains("auth-key-value"));
    }

    #[test]
    fn toml_errors_give_the_line_and_hide_values() {
        let err = Config::from_toml_str("[auth]\nkey = 12345678\n", &env_of(&[])).unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains("line 2, column 7"), "{shown}");
        assert!(shown.contains("invalid type: integer, expected a string"), "{shown}");
        assert!(!shown.contains("12345678"), "{shown}");
        let err = Config::from_toml_str("[[channels]]\nname = \"a\"\ntype = \"telegram\"\n", &env_of(&[]));
        let shown = err.unwrap_err().to_string();
        // The place of a channel's problem is its key path, and the line of the key.
        assert!(
            shown.contains("channels[0] \"a\".type: \"telegram\" is not one of dingtalk")
                && shown.contains("(line 3, column 8)"),
            "{shown}"
        );
        let err = Config::from_toml_str("[[channels]]\nnmae = \"a\"\n", &env_of(&[])).unwrap_err();
        assert!(
            err.to_string().contains("channels[0]: unknown key `nmae`: did you mean `name`? (line 2"),
            "{err}"
        );
        let err = Config::from_toml_str("[auth\nkey = \"s3cr3t-value\"", &env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }

    /// `[store]` is the section's name; `[dedup]`, its older one, is read with a warning and its
    /// problems keep its name; both at once is a problem.
    #[test]
    fn the_store_section_and_its_older_name() {
        let (config, findings) = Config::parse("[store]\ncapacity = 7\n", &env_of(&[])).unwrap();
        assert_eq!((config.store.capacity, config.store_key), (7, StoreKey::Store));
        assert!(findings.warnings.is_empty() && findings.problems.is_empty(), "{findings:?}");
        let (config, findings) = Config::parse("[dedup]\ncapacity = 8\n", &env_of(&[])).unwrap();
        assert_eq!((config.store.capacity, config.store_key), (8, StoreKey::Dedup));
        assert_eq!(
            findings.warnings[0].to_string(),
            "dedup: is now called [store] (still read here): rename the section"
        );
        let err = Config::from_toml_str("[dedup]\nbackend = \"redis\"\n", &env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("dedup.url: is required"), "{err}");
        let err = Config::from_toml_str("[store]\nbackend = \"redis\"\n", &env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("store.url: is required"), "{err}");
        let err = Config::from_toml_str("[store]\n[dedup]\n", &env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("dedup: and [store] are the same section"), "{err}");
    }

    #[test]
    fn auth_needs_the_callback_url() {
        let err = Config::from_toml_str("[auth]\nkey = \"k\"\n", &env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("auth.callback_url: is required with auth.key"), "{err}");
        let err = Config::from_toml_str("[auth]\nprevious_key = \"k\"\n", &env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("auth.previous_key"), "{err}");
    }

    #[test]
    fn files_are_found_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let named = dir.path().join("named.toml");
        std::fs::write(
            &named,
            "[[channels]]\nname = \"x\"\ntype = \"log\"\n[[routes]]\nname = \"r\"\nchannels = [\"x\"]\n",
        )
        .unwrap();
        let (config, source, _) = Config::load_with(Some(&named), &env_of(&[])).unwrap();
        assert_eq!(source, ConfigSource::File(named.clone()));
        assert_eq!(config.channels[0].name, "x");

        let from_env = named.to_str().unwrap().to_owned();
        let env = move |name: &str| (name == env::CONFIG).then(|| from_env.clone());
        let (_, source, _) = Config::load_with(None, &env).unwrap();
        assert_eq!(source, ConfigSource::File(named));

        let missing = dir.path().join("missing.toml");
        let err = Config::load_with(Some(&missing), &env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("missing.toml") && err.to_string().contains("cannot read"), "{err}");
    }
}
