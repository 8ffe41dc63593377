//! Checks a loaded configuration and collects every problem (and every warning) at once.
//!
//! Routes, matchers and templates are checked by building the real [`Router`], so the check and
//! the running service can never disagree about what is valid.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{ChannelConfig, Config, DedupBackend, Problem, channel_location, route_location};
use crate::action::ChannelType;
use crate::route::Router;

/// What is wrong (the service refuses to start) and what is merely ignored.
#[derive(Debug, Default)]
pub struct Findings {
    pub problems: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

impl Findings {
    fn problem(&mut self, at: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(at, message));
    }

    fn warning(&mut self, at: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Problem::new(at, message));
    }
}

/// Headers the webhook sender sets itself (Standard Webhooks and the body's type).
const RESERVED_HEADERS: [&str; 5] =
    ["content-type", "content-length", "webhook-id", "webhook-timestamp", "webhook-signature"];

pub fn validate(config: &Config) -> Findings {
    let mut f = Findings::default();
    server_and_delivery(config, &mut f);
    auth(config, &mut f);
    dedup(config, &mut f);
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, channel) in config.channels.iter().enumerate() {
        let at = channel_location(i, &channel.name);
        check_name(&channel.name, &format!("channels[{i}].name"), "channel", &mut f);
        if let Some(first) = names.insert(&channel.name, i) {
            f.problem(&at, format!("duplicate channel name (also channels[{first}])"));
        }
        channel_settings(channel, &at, &mut f);
    }
    let mut route_names: HashMap<&str, usize> = HashMap::new();
    for (i, route) in config.routes.iter().enumerate() {
        check_name(&route.name, &format!("routes[{i}].name"), "route", &mut f);
        if let Some(first) = route_names.insert(&route.name, i) {
            f.problem(route_location(i, &route.name), format!("duplicate route name (also routes[{first}])"));
        }
    }
    if config.routes.is_empty() {
        f.problem("routes", "no routes: no event would be sent anywhere (add a [[routes]] entry)");
    }
    for (i, channel) in config.channels.iter().enumerate() {
        if !config.routes.iter().any(|r| r.channels.contains(&channel.name)) {
            f.warning(channel_location(i, &channel.name), "no route sends to this channel");
        }
    }
    if let Err(err) = Router::new(config) {
        f.problems.extend(err.problems);
    }
    f
}

/// Names end up in idempotency keys (`identity|route|channel`) and log lines.
fn check_name(name: &str, at: &str, what: &str, f: &mut Findings) {
    if name.trim().is_empty() {
        f.problem(at, format!("a {what} needs a name"));
    } else if name.chars().any(|c| c == '|' || c.is_whitespace() || c.is_control()) {
        f.problem(at, format!("a {what} name may not contain `|`, spaces or control characters"));
    }
}

fn server_and_delivery(config: &Config, f: &mut Findings) {
    if config.server.max_body_bytes == 0 {
        f.problem("server.max_body_bytes", "must be more than 0");
    }
    let d = &config.delivery;
    for (name, value) in [
        ("callback_deadline_ms", d.callback_deadline_ms),
        ("invoke_deadline_ms", d.invoke_deadline_ms),
        ("attempt_timeout_ms", d.attempt_timeout_ms),
        ("backoff_initial_ms", d.backoff_initial_ms),
        ("backoff_max_ms", d.backoff_max_ms),
    ] {
        if value == 0 {
            f.problem(format!("delivery.{name}"), "must be more than 0");
        }
    }
    if d.backoff_initial_ms > d.backoff_max_ms {
        f.problem("delivery.backoff_initial_ms", "is larger than delivery.backoff_max_ms");
    }
    if d.callback_deadline_ms >= 5_000 {
        f.warning(
            "delivery.callback_deadline_ms",
            "VOD gives up on a callback after 5 s: a deadline of 5000 ms or more means VOD retries \
             while vodhook is still delivering",
        );
    }
    if d.attempt_timeout_ms > d.callback_deadline_ms {
        f.warning(
            "delivery.attempt_timeout_ms",
            "is longer than delivery.callback_deadline_ms, which cuts it short",
        );
    }
    if config.outbox.max_age_secs == 0 {
        f.problem("outbox.max_age_secs", "must be more than 0");
    }
}

fn auth(config: &Config, f: &mut Findings) {
    let auth = &config.auth;
    if auth.key.as_ref().is_some_and(|k| k.is_empty()) {
        f.problem("auth.key", "is empty: set a key, or remove the setting to accept unsigned callbacks");
    }
    if auth.key.is_some() && auth.callback_url.is_none() {
        f.problem(
            "auth.callback_url",
            format!(
                "is required with auth.key: VOD signs the callback URL (set it, or {})",
                super::env::CALLBACK_URL
            ),
        );
    }
    if auth.previous_key.is_some() && auth.key.is_none() {
        f.problem("auth.previous_key", "is set without auth.key");
    }
    if let Some(url) = &auth.callback_url
        && let Err(message) = http_url(url)
    {
        f.problem("auth.callback_url", message);
    }
}

fn dedup(config: &Config, f: &mut Findings) {
    let d = &config.dedup;
    match (&d.backend, &d.url) {
        (DedupBackend::Redis, None) => {
            f.problem("dedup.url", "is required with backend = \"redis\" (redis://host:6379/0)");
        }
        (DedupBackend::Redis, Some(url)) => match url::Url::parse(url.expose()) {
            Ok(u) if matches!(u.scheme(), "redis" | "rediss" | "redis+unix" | "unix") => {}
            Ok(_) => f.problem("dedup.url", "must be a redis://, rediss:// or unix:// URL"),
            Err(err) => f.problem("dedup.url", format!("is not a valid URL ({err})")),
        },
        (DedupBackend::Memory, Some(_)) => f.warning("dedup.url", "ignored: backend is \"memory\""),
        (DedupBackend::Memory, None) => {}
    }
    if d.ttl_secs == 0 {
        f.problem("dedup.ttl_secs", "must be more than 0");
    }
    if d.lease_ms == 0 {
        f.problem("dedup.lease_ms", "must be more than 0");
    }
    if d.backend == DedupBackend::Memory && d.capacity == 0 {
        f.problem("dedup.capacity", "must be more than 0");
    }
}

fn channel_settings(channel: &ChannelConfig, at: &str, f: &mut Findings) {
    let kind = channel.kind;
    match (&channel.url, kind) {
        (None, ChannelType::Log) => {}
        (Some(_), ChannelType::Log) => f.warning(format!("{at}.url"), "ignored by log channels"),
        (None, _) => f.problem(format!("{at}.url"), format!("is required for {kind} channels")),
        (Some(url), _) => {
            if let Err(message) = http_url(url.expose()) {
                f.problem(format!("{at}.url"), message);
            }
        }
    }
    match (&channel.secret, kind) {
        (Some(secret), ChannelType::Webhook) => match webhook_secret(secret.expose()) {
            Ok(None) => {}
            Ok(Some(warning)) => f.warning(format!("{at}.secret"), warning),
            Err(message) => f.problem(format!("{at}.secret"), message),
        },
        (Some(secret), ChannelType::Dingtalk | ChannelType::Feishu) if secret.is_empty() => {
            f.problem(
                format!("{at}.secret"),
                "is empty: set the robot's signing secret, or remove the setting",
            );
        }
        (Some(_), ChannelType::Wecom | ChannelType::Slack | ChannelType::Log) => {
            f.warning(format!("{at}.secret"), format!("ignored by {kind} channels"));
        }
        _ => {}
    }
    match (&channel.msg_type, kind) {
        (None, _) => {}
        (Some(t), ChannelType::Feishu) if t == "interactive" || t == "post" => {}
        (Some(_), ChannelType::Feishu) => {
            f.problem(format!("{at}.msg_type"), "must be \"interactive\" (a card) or \"post\" (rich text)")
        }
        (Some(_), _) => f.problem(format!("{at}.msg_type"), "applies to feishu channels only"),
    }
    if !channel.headers.is_empty() && kind != ChannelType::Webhook {
        f.warning(format!("{at}.headers"), format!("ignored by {kind} channels"));
    }
    for (name, value) in &channel.headers {
        let header_at = format!("{at}.headers.{name}");
        match http::HeaderName::from_bytes(name.as_bytes()) {
            Err(_) => f.problem(&header_at, "is not a valid HTTP header name"),
            Ok(header) if RESERVED_HEADERS.contains(&header.as_str()) => {
                f.problem(&header_at, "is set by vodhook itself and cannot be overridden")
            }
            Ok(_) => {}
        }
        if http::HeaderValue::from_str(value).is_err() {
            // Never quote the value: headers carry tokens.
            f.problem(&header_at, "the value is not a valid HTTP header value (visible ASCII only)");
        }
    }
    if channel.rate_per_minute == Some(0) {
        f.problem(format!("{at}.rate_per_minute"), "must be more than 0 (remove it for the default)");
    }
}

/// An absolute http(s) URL with a host. Messages never quote the URL: tokens live in them.
fn http_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|err| format!("is not a valid URL ({err})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL".to_owned());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".to_owned());
    }
    Ok(())
}

/// Standard Webhooks secrets: `whsec_` then base64 of the key. A short key works, with a
/// warning (the specification asks for 24 to 64 random bytes).
fn webhook_secret(secret: &str) -> Result<Option<String>, String> {
    let Some(encoded) = secret.strip_prefix("whsec_") else {
        return Err("must start with `whsec_` followed by the base64 key (Standard Webhooks)".to_owned());
    };
    match STANDARD.decode(encoded) {
        Ok(key) if key.len() >= 24 => Ok(None),
        Ok(key) if key.is_empty() => Err("has no key after `whsec_`".to_owned()),
        Ok(key) => Ok(Some(format!(
            "the key after `whsec_` is {} bytes; Standard Webhooks asks for 24 to 64 random bytes",
            key.len()
        ))),
        Err(_) => Err("the part after `whsec_` is not valid base64".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http() {
        assert!(http_url("https://oapi.dingtalk.com/robot/send?access_token=x").is_ok());
        assert!(http_url("http://127.0.0.1:9/x").is_ok());
        assert!(http_url("ftp://example.com").unwrap_err().contains("http"));
        assert!(http_url("SECsecretvalue").unwrap_err().contains("not a valid URL"));
        assert!(!http_url("secret-token").unwrap_err().contains("secret-token"));
    }

    #[test]
    fn webhook_secrets_are_whsec_base64() {
        assert_eq!(webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Ok(None));
        assert!(webhook_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err().contains("whsec_"));
        assert!(webhook_secret("whsec_!!!").unwrap_err().contains("base64"));
        assert!(webhook_secret("whsec_").unwrap_err().contains("no key"));
        assert!(webhook_secret("whsec_c2hvcnQ=").unwrap().unwrap().contains("5 bytes"));
    }
}
