//! `vodhook check-redis`: connects as the server would and checks, step by step, what a
//! production Redis must offer vodhook: a connection (TLS verified when `rediss://`), the
//! topology the configuration expects, Lua scripts, one hash slot per key group, a round-trip
//! time, and the outbox's counts. The first failing step ends the probe and is named.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::{Duration, Instant};

use redis::cluster_routing::Slot;

use crate::outbox::Outbox;
use crate::store::{Failure, KEY_GROUPS, RedisConn, eval};

/// How many PINGs the round-trip time is the median of.
const PINGS: usize = 10;

/// One step's outcome: what was found, or why it failed.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: &'static str,
    pub outcome: Result<String, String>,
}

type Check = for<'a> fn(&'a RedisConn) -> Pin<Box<dyn Future<Output = Result<String, String>> + 'a>>;

/// The steps after the connection, in order.
const CHECKS: [(&str, Check); 5] = [
    ("topology", |c| Box::pin(topology(c))),
    ("scripts", |c| Box::pin(scripts(c))),
    ("key slots", |c| Box::pin(key_slots(c))),
    ("round trip", |c| Box::pin(round_trip(c))),
    ("outbox", |c| Box::pin(outbox_counts(c))),
];

/// Runs every step, stopping at the first failure (the later ones depend on it). `ca_file` is
/// `tls_ca_file`, for the report.
pub async fn probe(conn: &RedisConn, ca_file: Option<&Path>) -> Vec<Step> {
    let mut steps = connect(conn, ca_file).await;
    if steps.iter().any(|s| s.outcome.is_err()) {
        return steps;
    }
    for (name, check) in CHECKS {
        let outcome = check(conn).await;
        let failed = outcome.is_err();
        steps.push(Step { name, outcome });
        if failed {
            break;
        }
    }
    steps
}

/// The `connect` and `tls` steps. A refused handshake or login fails as the `tls` or `auth`
/// step, so the operator knows which setting to look at.
async fn connect(conn: &RedisConn, ca_file: Option<&Path>) -> Vec<Step> {
    match conn.query::<String>(&redis::cmd("PING")).await {
        Ok(_) => {
            let tls = match (conn.is_tls(), ca_file) {
                (false, _) => "off (redis://: not encrypted)".to_owned(),
                (true, None) => format!("on, certificate verified for {:?} (public roots)", conn.host()),
                (true, Some(ca)) => format!(
                    "on, certificate verified for {:?} (public roots + {})",
                    conn.host(),
                    ca.display()
                ),
            };
            vec![
                Step { name: "connect", outcome: Ok(conn.shown_url().to_owned()) },
                Step { name: "tls", outcome: Ok(tls) },
            ]
        }
        Err(err) => {
            let name = match err.failure() {
                Some(Failure::Tls) => "tls",
                Some(Failure::Auth) => "auth",
                _ => "connect",
            };
            vec![Step { name, outcome: Err(err.to_string()) }]
        }
    }
}

/// Standalone or cluster, as the server says, against what the configuration expects.
async fn topology(conn: &RedisConn) -> Result<String, String> {
    // On a cluster, INFO goes to every primary and comes back per node.
    let info: String = if conn.is_cluster() {
        let per_node: std::collections::BTreeMap<String, String> =
            conn.query(redis::cmd("INFO").arg("server")).await.map_err(|e| e.to_string())?;
        per_node.into_values().next().unwrap_or_default()
    } else {
        conn.query(redis::cmd("INFO").arg("server")).await.map_err(|e| e.to_string())?
    };
    let mode = info_field(&info, "redis_mode").unwrap_or("standalone").to_owned();
    let version = info_field(&info, "redis_version").unwrap_or("?").to_owned();
    if !conn.is_cluster() {
        if mode == "cluster" {
            return Err("the server runs in cluster mode but `cluster = false`: set `cluster = true` \
                        (or use the cluster's proxy endpoint)"
                .to_owned());
        }
        return Ok(format!("single endpoint (redis_mode {mode}, Redis {version})"));
    }
    let nodes: String = conn.query(redis::cmd("CLUSTER").arg("NODES")).await.map_err(|e| e.to_string())?;
    let state: String = conn.query(redis::cmd("CLUSTER").arg("INFO")).await.map_err(|e| e.to_string())?;
    let (primaries, failing) = count_nodes(&nodes);
    let state = info_field(&state, "cluster_state").unwrap_or("?").to_owned();
    let total = nodes.lines().filter(|l| !l.trim().is_empty()).count();
    let summary =
        format!("cluster: {total} nodes ({primaries} primaries), cluster_state {state}, Redis {version}");
    if state != "ok" || failing > 0 {
        return Err(format!("{summary}; {failing} node(s) failing"));
    }
    Ok(summary)
}

/// (primaries, nodes flagged as failing) in `CLUSTER NODES` output.
fn count_nodes(nodes: &str) -> (usize, usize) {
    let flags = |line: &str| line.split_whitespace().nth(2).unwrap_or("").to_owned();
    let primaries = nodes.lines().filter(|l| flags(l).split(',').any(|f| f == "master")).count();
    let failing = nodes.lines().filter(|l| flags(l).split(',').any(|f| f == "fail" || f == "fail?")).count();
    (primaries, failing)
}

/// `EVAL` on a key of the outbox: some managed offerings restrict scripts, and vodhook needs them.
async fn scripts(conn: &RedisConn) -> Result<String, String> {
    let key = conn.tagged_key("outbox", "items");
    let cmd = eval("return redis.call('EXISTS', KEYS[1])", &key);
    match conn.query::<i64>(&cmd).await {
        Ok(_) => Ok("EVAL allowed".to_owned()),
        Err(err) => Err(format!("EVAL refused (vodhook's dedup and outbox are Lua scripts): {err}")),
    }
}

/// Every key group in one slot: computed here, and on a cluster asked of the server too.
async fn key_slots(conn: &RedisConn) -> Result<String, String> {
    let mut lines = Vec::new();
    for (group, names) in KEY_GROUPS {
        let keys: Vec<String> = names.iter().map(|n| conn.tagged_key(group, n)).collect();
        let mut local: Vec<Slot> = keys.iter().map(Slot::for_key).collect();
        local.dedup();
        let mut server: Vec<u16> = Vec::new();
        if conn.is_cluster() {
            for key in &keys {
                let cmd = redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).to_owned();
                server.push(conn.query(&cmd).await.map_err(|e| e.to_string())?);
            }
            server.dedup();
        }
        if local.len() != 1 || server.len() > 1 {
            return Err(format!(
                "the {{{group}}} keys {keys:?} hash to different slots: scripts over them would fail"
            ));
        }
        let slot = server.first().map(|s| format!("slot {s}")).unwrap_or_else(|| "one slot".to_owned());
        lines.push(format!("{{{group}}} ({}) → {slot}", names.join(", ")));
    }
    Ok(format!("{}; dedup and signature keys: one key per script", lines.join("; ")))
}

/// The median of [`PINGS`] round trips.
async fn round_trip(conn: &RedisConn) -> Result<String, String> {
    let mut times: Vec<Duration> = Vec::with_capacity(PINGS);
    for _ in 0..PINGS {
        let start = Instant::now();
        conn.query::<String>(&redis::cmd("PING")).await.map_err(|e| e.to_string())?;
        times.push(start.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(format!(
        "median {:.2} ms over {PINGS} PINGs (min {:.2} ms, max {:.2} ms)",
        ms(times[PINGS / 2]),
        ms(times[0]),
        ms(times[PINGS - 1])
    ))
}

async fn outbox_counts(conn: &RedisConn) -> Result<String, String> {
    let (waiting, dead) = Outbox::new(conn.clone()).counts().await.map_err(|e| e.to_string())?;
    Ok(format!("{waiting} waiting, {dead} dead letters"))
}

/// `field:value` from `INFO` output.
fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|line| line.strip_prefix(field)?.strip_prefix(':')).map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields_and_cluster_nodes_are_read() {
        let info = "# Server\r\nredis_version:7.0.15\r\nredis_mode:cluster\r\n";
        assert_eq!(info_field(info, "redis_mode"), Some("cluster"));
        assert_eq!(info_field(info, "redis_version"), Some("7.0.15"));
        assert_eq!(info_field(info, "tcp_port"), None);
        let nodes = "a 127.0.0.1:1@2 myself,master - 0 0 1 connected 0-5460\n\
                     b 127.0.0.1:3@4 master,fail - 0 0 2 connected 5461-10922\n\
                     c 127.0.0.1:5@6 slave a 0 0 3 connected\n";
        assert_eq!(count_nodes(nodes), (2, 1));
    }
}
