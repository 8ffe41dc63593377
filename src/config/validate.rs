//! Field checks of a loaded configuration, collecting every problem (and every warning) at once:
//! what can be said from the file alone. What a channel type requires of its settings is checked
//! by that channel (the `channel` module), and routes, matchers and templates by compiling them
//! (the `setup` module), so that the check and the running service never disagree about what is
//! valid.

use std::collections::HashMap;

use super::{
    ChannelConfig, ChannelType, Config, DedupBackend, DedupConfig, Problem, channel_location, route_location,
};

/// What is wrong (the service refuses to start) and what is merely ignored.
#[derive(Debug, Default)]
pub struct Findings {
    pub problems: Vec<Problem>,
    pub warnings: Vec<Problem>,
    /// Places whose `${VAR}` could not be interpolated: already reported, so problems found in
    /// their raw text (a `${TOKEN}` is no `whsec_` secret) would only add noise and are dropped.
    unresolved: Vec<String>,
}

impl Findings {
    pub fn problem(&mut self, at: impl Into<String>, message: impl Into<String>) {
        self.push_problem(Problem::new(at, message));
    }

    pub fn warning(&mut self, at: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Problem::new(at, message));
    }

    fn push_problem(&mut self, problem: Problem) {
        if !self.unresolved.iter().any(|place| problem.at.starts_with(place.as_str())) {
            self.problems.push(problem);
        }
    }

    /// Adds what another check found.
    pub fn extend(&mut self, other: Findings) {
        other.problems.into_iter().for_each(|p| self.push_problem(p));
        self.warnings.extend(other.warnings);
    }

    /// Adds problems found elsewhere (compiling routes and templates).
    pub fn extend_problems(&mut self, problems: Vec<Problem>) {
        problems.into_iter().for_each(|p| self.push_problem(p));
    }

    /// The warnings when nothing is wrong, else every problem.
    pub fn into_result(self) -> Result<Vec<Problem>, super::ConfigError> {
        if self.problems.is_empty() { Ok(self.warnings) } else { Err(super::ConfigError::new(self.problems)) }
    }
}

/// The field checks; `unresolved` are the interpolation failures, reported first.
pub fn validate(config: &Config, unresolved: Vec<Problem>) -> Findings {
    let mut f = Findings {
        unresolved: unresolved.iter().map(|p| p.at.clone()).collect(),
        problems: unresolved,
        warnings: Vec::new(),
    };
    server_and_delivery(config, &mut f);
    auth(config, &mut f);
    store(config, &mut f);
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, channel) in config.channels.iter().enumerate() {
        let at = channel_location(i, &channel.name);
        check_name(&channel.name, &format!("channels[{i}].name"), "channel", &mut f);
        if let Some(first) = names.insert(&channel.name, i) {
            f.problem(&at, format!("duplicate channel name (also channels[{first}])"));
        }
        rate_settings(channel, &at, &mut f);
    }
    let mut route_names: HashMap<&str, usize> = HashMap::new();
    for (i, route) in config.routes.iter().enumerate() {
        check_name(&route.name, &format!("routes[{i}].name"), "route", &mut f);
        route_settings(config, route, &route_location(i, &route.name), &mut f);
        if let Some(first) = route_names.insert(&route.name, i) {
            f.problem(route_location(i, &route.name), format!("duplicate route name (also routes[{first}])"));
        }
    }
    muting_needs_the_outbox(config, &mut f);
    if let Some(links) = &config.links {
        links_settings(links, &mut f);
    }
    metrics_settings(&config.metrics, &mut f);
    if let Some(report) = &config.report {
        report_settings(config, report, &mut f);
    }
    if config.routes.is_empty() {
        f.problem("routes", "no routes: no event would be sent anywhere (add a [[routes]] entry)");
    }
    for (i, channel) in config.channels.iter().enumerate() {
        if !config.routes.iter().any(|r| r.channels.contains(&channel.name)) {
            f.warning(channel_location(i, &channel.name), "no route sends to this channel");
        }
    }
    f
}

/// One route's resolved-notice and grouping settings.
fn route_settings(config: &Config, route: &super::RouteConfig, at: &str, f: &mut Findings) {
    if route.resolve_within.is_some_and(|w| w.as_duration().is_zero()) {
        f.problem(format!("{at}.resolve_within"), "must be more than 0 (remove it for 72h)");
    }
    if !route.group_by.is_empty() && config.store.backend != DedupBackend::Redis {
        f.problem(
            format!("{at}.group_by"),
            "needs the outbox: set [store] backend = \"redis\" (a group waits there for its other events)",
        );
    }
    if route.group_wait.is_some_and(|w| w.as_duration().is_zero()) {
        f.problem(format!("{at}.group_wait"), "must be more than 0 (remove it for 30s)");
    }
    if route.group_wait.is_some() && route.group_by.is_empty() {
        f.warning(format!("{at}.group_wait"), "ignored: the route has no `group_by`");
    }
    if route.resolve_within.is_some() && !route.send_resolved {
        f.warning(format!("{at}.resolve_within"), "ignored: the route has no `send_resolved = true`");
    }
}

/// A muted action waits in the outbox; without one (the memory store) it can only be dropped.
/// That still quiets the night, so it is a warning, not a problem.
fn muting_needs_the_outbox(config: &Config, f: &mut Findings) {
    if config.store.backend == DedupBackend::Redis {
        return;
    }
    for (i, route) in config.routes.iter().enumerate() {
        let muted = !route.mute_time_intervals.is_empty() || !route.active_time_intervals.is_empty();
        if muted && route.on_mute == super::OnMute::Hold {
            f.warning(
                route_location(i, &route.name),
                "muted actions are dropped, not held: holding them needs the outbox ([store] backend = \"redis\")",
            );
        }
    }
}

/// `[metrics]`: an address to listen on, a namespace CloudWatch takes.
fn metrics_settings(metrics: &super::MetricsConfig, f: &mut Findings) {
    if let Some(listen) = &metrics.listen
        && listen.parse::<std::net::SocketAddr>().is_err()
    {
        f.problem("metrics.listen", format!("{listen:?} is not host:port (e.g. \"127.0.0.1:9464\")"));
    }
    let ns = &metrics.namespace;
    if ns.is_empty() || ns.len() > 255 || !ns.is_ascii() || ns.starts_with("AWS/") {
        f.problem(
            "metrics.namespace",
            format!(
                "{ns:?} is not a CloudWatch namespace: 1 to 255 ASCII characters, not starting with \"AWS/\""
            ),
        );
    }
}

/// `[report]`: channels that can carry it, a period of whole hours the counters cover.
fn report_settings(config: &Config, report: &super::ReportConfig, f: &mut Findings) {
    if report.channels.is_empty() {
        f.problem("report.channels", "names no channel: add the chat or webhook channels the report goes to");
    }
    for (i, name) in report.channels.iter().enumerate() {
        let at = format!("report.channels[{i}]");
        match config.channels.iter().find(|c| &c.name == name) {
            None => f.problem(at, format!("{name:?} is not a configured channel")),
            Some(c) if !c.kind().is_chat() && c.kind() != ChannelType::Webhook => f.problem(
                at,
                format!(
                    "{name:?} is a {} channel: the report goes to chat or webhook channels",
                    c.kind().as_str()
                ),
            ),
            Some(_) => {}
        }
    }
    let secs = report.period.as_duration().as_secs();
    if !secs.is_multiple_of(3_600) || !(3_600..=super::report::MAX_PERIOD_SECS).contains(&secs) {
        f.problem("report.period", "must be whole hours from 1h to 7d (\"24h\", \"7d\")");
    }
    if config.store.backend != DedupBackend::Redis {
        f.warning(
            "report",
            "without the redis store each server counts only its own requests, and `vodhook report` cannot read them",
        );
    }
}

/// `[links]`: a secret long enough to sign with, an address a browser can open, a lifetime.
fn links_settings(links: &super::LinksConfig, f: &mut Findings) {
    let bytes = links.secret.expose().len();
    if bytes < super::MIN_SECRET_BYTES {
        f.problem(
            "links.secret",
            format!(
                "is {bytes} bytes; a link secret needs at least {} (e.g. `openssl rand -hex 32`)",
                super::MIN_SECRET_BYTES
            ),
        );
    }
    if links.previous_secret.as_ref().is_some_and(|s| s.expose().len() < super::MIN_SECRET_BYTES) {
        f.problem(
            "links.previous_secret",
            format!("needs at least {} bytes, as `secret`", super::MIN_SECRET_BYTES),
        );
    }
    match url::Url::parse(&links.base_url) {
        Ok(u) if u.scheme() == "https" && u.host().is_some() => {}
        Ok(u) if u.scheme() == "http" && u.host().is_some() => f.warning(
            "links.base_url",
            "is http://: links carry their token in the URL, so use https:// anywhere but a test",
        ),
        _ => f.problem("links.base_url", "must be an http(s) URL with a host (https://vodhook.example.com)"),
    }
    if links.ttl.as_duration().as_secs() == 0 {
        f.problem("links.ttl", "must be at least 1s (72h by default)");
    }
    if links.max_reruns == 0 {
        f.problem("links.max_reruns", "must be at least 1 (remove \"rerun\" from `buttons` to offer none)");
    }
    if links.silence_for.as_duration().as_secs() == 0 {
        f.problem("links.silence_for", "must be at least 1s (2h by default)");
    }
}

/// The budget and digest settings of one channel.
fn rate_settings(channel: &ChannelConfig, at: &str, f: &mut Findings) {
    for (name, value) in [
        ("rate_per_minute", channel.rate_per_minute),
        ("rate_per_second", channel.rate_per_second),
        ("rate_window_secs", channel.rate_window_secs),
    ] {
        if value == Some(0) {
            f.problem(format!("{at}.{name}"), "must be more than 0 (remove it for the default)");
        }
    }
    if channel.block_secs == Some(0) {
        f.problem(format!("{at}.block_secs"), "must be more than 0 (remove it for the service's penalty)");
    }
    let chat = channel.kind().is_chat();
    if channel.digest == Some(true) && !chat {
        f.problem(
            format!("{at}.digest"),
            format!("{} channels send one event per request: digests are for chat channels", channel.kind()),
        );
    }
    if channel.digest_template.is_some() && (!chat || channel.digest == Some(false)) {
        f.warning(format!("{at}.digest_template"), "ignored: this channel sends no digests");
    }
}

/// `[vod]`: where the API is and how enrichment asks it.
fn vod(config: &Config, f: &mut Findings) {
    let v = &config.vod;
    if let Err(problem) = v.endpoint() {
        f.push_problem(problem);
    }
    if let Some(output) = &v.output_type
        && output != "oss"
        && output != "cdn"
    {
        f.problem("vod.output_type", "must be \"oss\" or \"cdn\"");
    }
    let sizes = [("auth_timeout_secs", v.auth_timeout_secs), ("timeout_ms", v.timeout_ms)];
    for (name, value) in sizes.into_iter().chain([("max_answer_bytes", v.max_answer_bytes as u64)]) {
        if value == 0 {
            f.problem(format!("vod.{name}"), "must be more than 0");
        }
    }
    let uses_api = v.enrich || config.channels.iter().any(|c| c.call().is_some());
    if !uses_api && (v.endpoint.is_some() || v.output_type.is_some() || v.formats.is_some()) {
        f.warning("vod", "no vod channel and `enrich` is off: the VOD API is never called");
    }
}

/// Names end up in idempotency keys (`identity|route|channel`) and log lines.
fn check_name(name: &str, at: &str, what: &str, f: &mut Findings) {
    if name.trim().is_empty() {
        f.problem(at, format!("a {what} needs a name"));
    } else if name.chars().any(|c| matches!(c, '|' | '{' | '}') || c.is_whitespace() || c.is_control()) {
        // Braces would change the hash tag of a channel's budget key on a Redis Cluster.
        f.problem(at, format!("a {what} name may not contain `|`, braces, spaces or control characters"));
    }
}

fn server_and_delivery(config: &Config, f: &mut Findings) {
    let server = &config.server;
    for (name, value) in [
        ("max_body_bytes", server.max_body_bytes as u64),
        ("header_read_timeout_ms", server.header_read_timeout_ms),
        ("body_read_timeout_ms", server.body_read_timeout_ms),
        ("max_connections", server.max_connections as u64),
        ("max_events_per_delivery", server.max_events_per_delivery as u64),
        ("max_nodes_per_event", server.max_nodes_per_event as u64),
    ] {
        if value == 0 {
            f.problem(format!("server.{name}"), "must be more than 0");
        }
    }
    let d = &config.delivery;
    for (name, value) in [
        ("callback_deadline_ms", d.callback_deadline_ms),
        ("invoke_deadline_ms", d.invoke_deadline_ms),
        ("attempt_timeout_ms", d.attempt_timeout_ms),
        ("backoff_initial_ms", d.backoff_initial_ms),
        ("backoff_max_ms", d.backoff_max_ms),
        ("max_concurrent_sends", d.max_concurrent_sends as u64),
        ("digest_max_actions", d.digest_max_actions as u64),
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
    if config.outbox.take_lease_secs == 0 {
        f.problem("outbox.take_lease_secs", "must be more than 0");
    }
    vod(config, f);
    if config.outbox.dead_letter_days == 0 {
        f.problem(
            "outbox.dead_letter_days",
            "must be at least 1 (`vodhook outbox purge` removes them sooner)",
        );
    }
}

fn auth(config: &Config, f: &mut Findings) {
    let auth = &config.auth;
    for family in [super::KeyFamily::Vod, super::KeyFamily::Ims] {
        if let Err(problem) = auth.keys(family) {
            f.push_problem(problem);
        }
    }
    if let Some(url) = &auth.callback_url
        && let Err(message) = http_url(url)
    {
        f.problem("auth.callback_url", message);
    }
}

fn store(config: &Config, f: &mut Findings) {
    let (d, k) = (&config.store, config.store_key);
    match (&d.backend, &d.url) {
        (DedupBackend::Redis, None) => {
            f.problem(k.at("url"), "is required with backend = \"redis\" (redis://host:6379/0)");
        }
        (DedupBackend::Redis, Some(url)) => match url::Url::parse(url.expose()) {
            Ok(u) if skips_verification(&u) => f.problem(
                k.at("url"),
                "asks for TLS without certificate verification (#insecure / insecure=...): not \
                 allowed; to trust a private CA, name it in tls_ca_file",
            ),
            Ok(u) if matches!(u.scheme(), "redis" | "rediss" | "redis+unix" | "unix") => {}
            Ok(_) => f.problem(k.at("url"), "must be a redis://, rediss:// or unix:// URL"),
            Err(err) => f.problem(k.at("url"), format!("is not a valid URL ({err})")),
        },
        (DedupBackend::Memory, Some(_)) => f.warning(k.at("url"), "ignored: backend is \"memory\""),
        (DedupBackend::Memory, None) => {}
    }
    if d.ttl_secs == 0 {
        f.problem(k.at("ttl_secs"), "must be more than 0");
    }
    if d.lease_ms == 0 {
        f.problem(k.at("lease_ms"), "must be more than 0");
    }
    if d.backend == DedupBackend::Memory && d.capacity == 0 {
        f.problem(k.at("capacity"), "must be more than 0");
    }
    redis_shape(d, k, f);
}

/// redis-rs reads `rediss://host#insecure` and `?insecure=true` as "do not check the server's
/// certificate", which would let anyone on the path read the store (and its password).
fn skips_verification(url: &url::Url) -> bool {
    url.fragment().is_some_and(|f| f.eq_ignore_ascii_case("insecure"))
        || url.query_pairs().any(|(k, _)| k.eq_ignore_ascii_case("insecure"))
}

/// `cluster` and `tls_ca_file` make sense only for some Redis URLs. (That the CA file holds a
/// certificate is checked where it is read, in the store.)
fn redis_shape(d: &DedupConfig, k: super::StoreKey, f: &mut Findings) {
    let parsed = d.url.as_ref().and_then(|u| url::Url::parse(u.expose()).ok());
    let scheme = parsed.as_ref().map(|u| u.scheme().to_owned());
    if d.cluster {
        if d.backend != DedupBackend::Redis {
            f.problem(k.at("cluster"), "needs backend = \"redis\"");
        } else if matches!(scheme.as_deref(), Some("unix" | "redis+unix")) {
            f.problem(k.at("cluster"), "needs a redis:// or rediss:// URL (a cluster is reached over TCP)");
        } else if let Some(db) = parsed.as_ref().map(|u| u.path().trim_matches('/').to_owned())
            && !db.is_empty()
            && db != "0"
        {
            f.problem(
                k.at("url"),
                format!("selects database {db:?}, but a Redis Cluster has only database 0"),
            );
        }
    }
    if d.tls_ca_file.is_some() {
        if d.backend != DedupBackend::Redis {
            f.problem(k.at("tls_ca_file"), "needs backend = \"redis\"");
        } else if scheme.is_some() && scheme.as_deref() != Some("rediss") {
            f.problem(k.at("tls_ca_file"), "needs a rediss:// URL (redis:// is not encrypted)");
        }
    }
}

/// An absolute http(s) URL with a host. Messages never quote the URL: tokens live in them.
pub fn http_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|err| format!("is not a valid URL ({err})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL".to_owned());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".to_owned());
    }
    Ok(())
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
}
