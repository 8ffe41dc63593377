//! A `[[channels]]` entry: what every channel has (name, templates, pacing, language), and the
//! settings of its service as a type of their own ([`Service`], selected by `type`).
//!
//! The TOML is what users write (`type = "dingtalk"` beside `url` and `secret`); each service
//! takes its own keys and no other, so a key that belongs to another kind (`msg_type` on a
//! DingTalk channel, `action` on a chat channel) is refused, naming the kind that takes it: a
//! setting that does nothing is a mistake the user wants to hear about.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::{Locale, Mentions};
use crate::redact::Secret;

/// The kinds of channel: the `type` of a `[[channels]]` entry. What each one means lives in
/// `channel::<kind>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelType {
    Dingtalk,
    Feishu,
    Wecom,
    Slack,
    Webhook,
    Log,
    /// A VOD OpenAPI call (`action`, `params`), not a message.
    Vod,
}

impl ChannelType {
    pub const ALL: [ChannelType; 7] = [
        ChannelType::Dingtalk,
        ChannelType::Feishu,
        ChannelType::Wecom,
        ChannelType::Slack,
        ChannelType::Webhook,
        ChannelType::Log,
        ChannelType::Vod,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelType::Dingtalk => "dingtalk",
            ChannelType::Feishu => "feishu",
            ChannelType::Wecom => "wecom",
            ChannelType::Slack => "slack",
            ChannelType::Webhook => "webhook",
            ChannelType::Log => "log",
            ChannelType::Vod => "vod",
        }
    }

    /// A chat service: messages for people in a group, on a robot with a small rate budget
    /// (digests, markup, and the capabilities the later features add).
    pub fn is_chat(self) -> bool {
        matches!(self, ChannelType::Dingtalk | ChannelType::Feishu | ChannelType::Wecom | ChannelType::Slack)
    }

    /// Its actions are VOD API calls, not messages.
    pub fn makes_calls(self) -> bool {
        self == ChannelType::Vod
    }

    /// Its messages are read by people (so `[messages]` language and offset apply); the log's
    /// records are for operators' tools, and a call has no reader.
    pub fn has_readers(self) -> bool {
        self != ChannelType::Log
    }

    /// The keys of this kind's own settings (besides [`COMMON_KEYS`]).
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            ChannelType::Dingtalk => &["url", "secret", "mention"],
            ChannelType::Feishu => &["url", "secret", "msg_type", "mention"],
            ChannelType::Wecom | ChannelType::Slack => &["url", "mention"],
            ChannelType::Webhook => &["url", "secret", "headers", "max_body_bytes", "mention"],
            ChannelType::Log => &["mention"],
            ChannelType::Vod => &["action", "params", "max_repeats"],
        }
    }
}

impl std::fmt::Display for ChannelType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A chat robot's address and, where the service signs, its signing secret.
#[derive(Debug, Clone, Default)]
pub struct Robot {
    /// A secret: chat services put tokens in URLs. Required (`channel::check` says so).
    pub url: Option<Secret>,
    /// DingTalk's `SEC…` or Feishu's signing secret; unset when the robot does not sign.
    pub secret: Option<Secret>,
}

/// A robot that does not sign (WeCom, Slack): its address only.
#[derive(Debug, Clone, Default)]
pub struct Address {
    pub url: Option<Secret>,
}

/// Feishu/Lark: a robot, and the kind of message.
#[derive(Debug, Clone, Default)]
pub struct Feishu {
    pub url: Option<Secret>,
    pub secret: Option<Secret>,
    /// `interactive` (a card, the default) or `post` (rich text).
    pub msg_type: Option<String>,
}

/// A Standard Webhooks receiver.
#[derive(Debug, Clone, Default)]
pub struct Webhook {
    pub url: Option<Secret>,
    /// `whsec_<base64>`: the signing key.
    pub secret: Option<Secret>,
    /// Extra HTTP headers.
    pub headers: BTreeMap<String, String>,
    /// The largest document sent (default 256 KiB); a bigger one goes without the decoded
    /// `event`, saying so.
    pub max_body_bytes: Option<usize>,
}

/// The log: nothing to set.
#[derive(Debug, Clone, Default)]
pub struct Log {}

/// A VOD OpenAPI call per event, not a message.
#[derive(Debug, Clone, Default)]
pub struct VodCall {
    /// The OpenAPI action (`SubmitWorkflowJob`, `UpdateVideoInfo`, ...).
    pub action: Option<String>,
    /// The call's parameters, each a template rendered per event.
    pub params: BTreeMap<String, String>,
    /// Calls of `action` for one (VideoId, WorkflowId) within the dedup TTL (1): the loop guard,
    /// so a re-run's own failure does not re-run it again.
    pub max_repeats: Option<u32>,
}

/// A channel's service with its own settings: what `type` selects.
#[derive(Debug, Clone)]
pub enum Service {
    Dingtalk(Robot),
    Feishu(Feishu),
    Wecom(Address),
    Slack(Address),
    Webhook(Webhook),
    Log(Log),
    Vod(VodCall),
}

impl Service {
    /// The service of `kind`, every setting left out.
    pub fn of(kind: ChannelType) -> Service {
        match kind {
            ChannelType::Dingtalk => Service::Dingtalk(Robot::default()),
            ChannelType::Feishu => Service::Feishu(Feishu::default()),
            ChannelType::Wecom => Service::Wecom(Address::default()),
            ChannelType::Slack => Service::Slack(Address::default()),
            ChannelType::Webhook => Service::Webhook(Webhook::default()),
            ChannelType::Log => Service::Log(Log {}),
            ChannelType::Vod => Service::Vod(VodCall::default()),
        }
    }

    pub fn kind(&self) -> ChannelType {
        match self {
            Service::Dingtalk(_) => ChannelType::Dingtalk,
            Service::Feishu(_) => ChannelType::Feishu,
            Service::Wecom(_) => ChannelType::Wecom,
            Service::Slack(_) => ChannelType::Slack,
            Service::Webhook(_) => ChannelType::Webhook,
            Service::Log(_) => ChannelType::Log,
            Service::Vod(_) => ChannelType::Vod,
        }
    }

    /// The address messages go to (`None` for the log and VOD calls, which have none).
    pub fn url_mut(&mut self) -> Option<&mut Option<Secret>> {
        match self {
            Service::Dingtalk(Robot { url, .. })
            | Service::Feishu(Feishu { url, .. })
            | Service::Wecom(Address { url })
            | Service::Slack(Address { url })
            | Service::Webhook(Webhook { url, .. }) => Some(url),
            Service::Log(_) | Service::Vod(_) => None,
        }
    }

    /// The signing secret, for the services that sign.
    pub fn secret_mut(&mut self) -> Option<&mut Option<Secret>> {
        match self {
            Service::Dingtalk(Robot { secret, .. })
            | Service::Feishu(Feishu { secret, .. })
            | Service::Webhook(Webhook { secret, .. }) => Some(secret),
            _ => None,
        }
    }
}

/// The keys every channel takes, whatever its service.
pub const COMMON_KEYS: [&str; 10] = [
    "name",
    "template",
    "rate_per_minute",
    "rate_per_second",
    "rate_window_secs",
    "block_secs",
    "digest",
    "digest_template",
    "locale",
    "utc_offset",
];

/// One `[[channels]]` entry.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    pub name: String,
    /// `type` and that service's own settings.
    pub service: Service,
    /// Default template for this channel (else the channel type's built-in one).
    pub template: Option<String>,
    /// Messages the channel takes in any `rate_window_secs` (60) window; the default is the
    /// service's documented limit (DingTalk, WeCom 20; Feishu 100). Shared by every instance
    /// through Redis (see the `budget` module).
    pub rate_per_minute: Option<u32>,
    /// Messages the channel takes in any one second (Feishu 5, Slack 1 by default).
    pub rate_per_second: Option<u32>,
    /// The window `rate_per_minute` is counted over, in seconds (60: leave it, except to test).
    pub rate_window_secs: Option<u32>,
    /// How long the channel is left alone after the service says "too fast" without a
    /// `Retry-After` (DingTalk 130101: 600 s, its documented block; others 60 s).
    pub block_secs: Option<u64>,
    /// Whether actions that find the budget spent wait for one merged message (default: true
    /// for chat channels; webhooks and logs send one event per request).
    pub digest: Option<bool>,
    /// The template of this channel's digests (else the type's built-in one).
    pub digest_template: Option<String>,
    /// The language of this channel's messages (else `[messages] locale`).
    pub locale: Option<Locale>,
    /// The offset this channel's times are shown in (else `[messages] utc_offset`).
    pub utc_offset: Option<super::UtcOffset>,
    /// Who this channel's messages mention (each service writes the kinds it can: checked by
    /// `channel::check`); empty when not set. Not a key of `vod` channels.
    pub mention: Mentions,
    /// The buttons its messages carry, unless the route names its own.
    pub buttons: Vec<super::ButtonKind>,
    /// Keys set on this channel that belong to another kind of channel (`msg_type` on a
    /// DingTalk channel): taken out so that the rest can be read, and refused by the channel's
    /// check with the other problems of the file, not one at a time.
    pub foreign_keys: Vec<&'static str>,
}

/// A `[[channels]]` entry as written: every key some channel takes. serde reads it with the
/// file's own deserializer (one derive, as the file's other tables); [`ChannelConfig`] then
/// sorts it into the common part and its service's settings, setting aside keys of other kinds.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    name: String,
    #[serde(rename = "type")]
    kind: ChannelType,
    url: Option<Secret>,
    secret: Option<Secret>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    max_body_bytes: Option<usize>,
    msg_type: Option<String>,
    action: Option<String>,
    #[serde(default)]
    params: BTreeMap<String, String>,
    max_repeats: Option<u32>,
    mention: Option<Mentions>,
    #[serde(default)]
    buttons: Vec<super::ButtonKind>,
    template: Option<String>,
    rate_per_minute: Option<u32>,
    rate_per_second: Option<u32>,
    rate_window_secs: Option<u32>,
    block_secs: Option<u64>,
    digest: Option<bool>,
    digest_template: Option<String>,
    locale: Option<Locale>,
    utc_offset: Option<super::UtcOffset>,
}

impl From<Written> for ChannelConfig {
    fn from(w: Written) -> ChannelConfig {
        let kind = w.kind;
        let set = [
            ("url", w.url.is_some()),
            ("secret", w.secret.is_some()),
            ("headers", !w.headers.is_empty()),
            ("max_body_bytes", w.max_body_bytes.is_some()),
            ("msg_type", w.msg_type.is_some()),
            ("action", w.action.is_some()),
            ("params", !w.params.is_empty()),
            ("max_repeats", w.max_repeats.is_some()),
            ("mention", w.mention.is_some()),
        ];
        let foreign_keys =
            set.iter().filter(|(key, on)| *on && !kind.keys().contains(key)).map(|(k, _)| *k).collect();
        let (url, secret) = (w.url, w.secret);
        let service = match kind {
            ChannelType::Dingtalk => Service::Dingtalk(Robot { url, secret }),
            ChannelType::Feishu => Service::Feishu(Feishu { url, secret, msg_type: w.msg_type }),
            ChannelType::Wecom => Service::Wecom(Address { url }),
            ChannelType::Slack => Service::Slack(Address { url }),
            ChannelType::Webhook => Service::Webhook(Webhook {
                url,
                secret,
                headers: w.headers,
                max_body_bytes: w.max_body_bytes,
            }),
            ChannelType::Log => Service::Log(Log {}),
            ChannelType::Vod => {
                Service::Vod(VodCall { action: w.action, params: w.params, max_repeats: w.max_repeats })
            }
        };
        ChannelConfig {
            name: w.name,
            service,
            template: w.template,
            rate_per_minute: w.rate_per_minute,
            rate_per_second: w.rate_per_second,
            rate_window_secs: w.rate_window_secs,
            block_secs: w.block_secs,
            digest: w.digest,
            digest_template: w.digest_template,
            locale: w.locale,
            utc_offset: w.utc_offset,
            mention: w.mention.unwrap_or_default(),
            buttons: w.buttons,
            foreign_keys,
        }
    }
}

impl ChannelConfig {
    /// A channel of `kind` named `name` with every optional setting left out.
    pub fn new(name: &str, kind: ChannelType) -> Self {
        Self {
            name: name.to_owned(),
            service: Service::of(kind),
            template: None,
            rate_per_minute: None,
            rate_per_second: None,
            rate_window_secs: None,
            block_secs: None,
            digest: None,
            digest_template: None,
            locale: None,
            utc_offset: None,
            mention: Mentions::default(),
            buttons: Vec::new(),
            foreign_keys: Vec::new(),
        }
    }

    pub fn kind(&self) -> ChannelType {
        self.service.kind()
    }

    /// The address messages go to, where the service has one.
    pub fn url(&self) -> Option<&Secret> {
        match &self.service {
            Service::Dingtalk(Robot { url, .. })
            | Service::Feishu(Feishu { url, .. })
            | Service::Wecom(Address { url })
            | Service::Slack(Address { url })
            | Service::Webhook(Webhook { url, .. }) => url.as_ref(),
            Service::Log(_) | Service::Vod(_) => None,
        }
    }

    /// The VOD API call this channel makes per event, when it makes calls rather than send
    /// messages (`type = "vod"`).
    pub fn call(&self) -> Option<&VodCall> {
        match &self.service {
            Service::Vod(call) => Some(call),
            _ => None,
        }
    }

    /// The signing secret, where the service signs and one is set.
    pub fn secret(&self) -> Option<&Secret> {
        match &self.service {
            Service::Dingtalk(Robot { secret, .. })
            | Service::Feishu(Feishu { secret, .. })
            | Service::Webhook(Webhook { secret, .. }) => secret.as_ref(),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for ChannelConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Written::deserialize(deserializer).map(ChannelConfig::from)
    }
}

/// What is wrong with `key` set on a `kind` channel: the kinds that take it.
pub fn foreign_key_problem(kind: ChannelType, key: &str) -> String {
    let owners: Vec<&str> =
        ChannelType::ALL.iter().filter(|k| k.keys().contains(&key)).map(|k| k.as_str()).collect();
    let owners = match owners.as_slice() {
        [init @ .., last] if !init.is_empty() => format!("{} and {last}", init.join(", ")),
        _ => owners.join(""),
    };
    format!("is a setting of {owners} channels, not of {kind} ones: remove it (or change `type`)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ChannelConfig, String> {
        toml::from_str(text).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn each_service_takes_its_own_keys() {
        let ding = parse("name = \"a\"\ntype = \"dingtalk\"\nurl = \"https://x\"\nsecret = \"SEC1\"\nrate_per_minute = 5\n").unwrap();
        assert_eq!((ding.kind(), ding.url().map(Secret::expose)), (ChannelType::Dingtalk, Some("https://x")));
        assert_eq!(ding.rate_per_minute, Some(5));
        let vod =
            parse("name = \"r\"\ntype = \"vod\"\naction = \"SubmitWorkflowJob\"\nparams = { A = \"b\" }\n")
                .unwrap();
        assert!(matches!(&vod.service, Service::Vod(call) if call.params["A"] == "b"));
        assert!(vod.url().is_none());
    }

    #[test]
    fn a_key_of_another_kind_is_set_aside_for_the_check_to_refuse() {
        let ding = parse(
            "name = \"a\"\ntype = \"dingtalk\"\nurl = \"https://x\"\nmsg_type = \"post\"\naction = \"X\"\n",
        )
        .unwrap();
        assert_eq!(ding.foreign_keys, ["msg_type", "action"]);
        assert_eq!(
            foreign_key_problem(ChannelType::Dingtalk, "msg_type"),
            "is a setting of feishu channels, not of dingtalk ones: remove it (or change `type`)"
        );
        assert!(
            foreign_key_problem(ChannelType::Wecom, "secret")
                .starts_with("is a setting of dingtalk, feishu and webhook channels")
        );
        let err = parse("name = \"a\"\ntype = \"log\"\ntemplte = \"x\"\n").unwrap_err();
        assert!(err.starts_with("unknown field `templte`, expected one of `name`, `type`, `url`"), "{err}");
    }
}
