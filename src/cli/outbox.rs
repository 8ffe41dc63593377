//! `vodhook outbox list|replay|purge`: what an operator does with the outbox.
//!
//! Replay never sends by itself: it makes the selected entries due now and delivers exactly
//! those through the drain's lease and the dedup claim, so an action delivered meanwhile is not
//! sent again, two replays at once send each action once, and a webhook keeps its `webhook-id`
//! (it is derived from the action's key).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Subcommand;
use serde_json::json;

use crate::clock::unix_now;
use crate::config::env;
use crate::dispatch::Dispatcher;
use crate::outbox::{Outbox, OutboxItem, Part};
use crate::setup::{Setup, State};

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// What waits for delivery and why, and what was given up (dead letters).
    List {
        /// The configuration file (else $VODHOOK_CONFIG, else ./vodhook.toml, else the built-in one).
        #[arg(long, env = env::CONFIG)]
        config: Option<PathBuf>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Deliver dead letters (--dead) or waiting items now, through the same claim as every send:
    /// an action delivered meanwhile is not sent again. Prints what it moved.
    Replay {
        /// The configuration file (else $VODHOOK_CONFIG, else ./vodhook.toml, else the built-in one).
        #[arg(long, env = env::CONFIG)]
        config: Option<PathBuf>,
        #[command(flatten)]
        select: Select,
        /// Print what would be replayed; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove dead letters (--dead) or waiting items (then --older-than is required) for good.
    Purge {
        /// The configuration file (else $VODHOOK_CONFIG, else ./vodhook.toml, else the built-in one).
        #[arg(long, env = env::CONFIG)]
        config: Option<PathBuf>,
        /// Dead letters instead of waiting items.
        #[arg(long)]
        dead: bool,
        /// Only entries older than this many days (given up on, or first tried, that long ago).
        #[arg(long, value_name = "DAYS")]
        older_than: Option<u32>,
        /// Print what would be removed; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Which entries a replay takes.
#[derive(Debug, clap::Args)]
pub struct Select {
    /// Dead letters instead of waiting items.
    #[arg(long)]
    dead: bool,
    /// Only entries given up on (dead letters) or first tried (waiting items) at or after TIME:
    /// RFC 3339 (2026-12-02T08:00:00Z) or an age (90m, 6h, 2d).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only actions for this channel.
    #[arg(long, value_name = "NAME")]
    channel: Option<String>,
    /// Only actions of this route.
    #[arg(long, value_name = "NAME")]
    route: Option<String>,
}

impl OutboxCommand {
    pub fn config(&self) -> Option<&Path> {
        match self {
            OutboxCommand::List { config, .. }
            | OutboxCommand::Replay { config, .. }
            | OutboxCommand::Purge { config, .. } => config.as_deref(),
        }
    }
}

/// One outbox entry as the commands show and select it.
struct Entry {
    key: String,
    channel: String,
    route: String,
    /// Given up on (dead) or first tried (waiting), unix seconds.
    since: i64,
}

pub async fn run(command: OutboxCommand, setup: Setup) -> Result<ExitCode, String> {
    let state = State::open(&setup.config.store).map_err(|e| e.to_string())?;
    let Some(outbox) = state.outbox.clone() else {
        return Err("no outbox: it needs [store] backend = \"redis\"".to_owned());
    };
    let mut out = std::io::stdout().lock();
    match command {
        OutboxCommand::List { json, .. } => list(&outbox, json, &mut out).await,
        OutboxCommand::Replay { select, dry_run, .. } => {
            let dispatcher =
                Dispatcher::new(&setup.config, setup.router, state.dedup, state.outbox, state.redis);
            let deadline = Duration::from_millis(setup.config.delivery.invoke_deadline_ms);
            replay(&outbox, &dispatcher, &select, dry_run, Instant::now() + deadline, &mut out).await
        }
        OutboxCommand::Purge { dead, older_than, dry_run, .. } => {
            purge(&outbox, dead, older_than, dry_run, &mut out).await
        }
    }
}

async fn entries(outbox: &Outbox, part: Part) -> Result<Vec<Entry>, String> {
    let entry = |a: &crate::action::Action, since| Entry {
        key: a.key.clone(),
        channel: a.channel.clone(),
        route: a.route.clone(),
        since,
    };
    Ok(match part {
        Part::Waiting => outbox
            .list()
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .map(|i| entry(&i.action, i.first_seen))
            .collect(),
        Part::Dead => outbox
            .dead_letters()
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .map(|d| entry(&d.item.action, d.dead_at))
            .collect(),
    })
}

async fn list(outbox: &Outbox, json: bool, out: &mut impl Write) -> Result<ExitCode, String> {
    let waiting = outbox.list().await.map_err(|e| e.to_string())?;
    let dead = outbox.dead_letters().await.map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    if json {
        for item in &waiting {
            lines.push(
                json!({"state": "waiting", "key": item.action.key, "channel": item.action.channel,
                    "route": item.action.route, "attempts": item.attempts, "due": item.due,
                    "first_seen": item.first_seen, "last_error": item.last_error, "held": item.held})
                .to_string(),
            );
        }
    } else {
        lines.extend(waiting_by_channel(&waiting));
    }
    for letter in &dead {
        lines.push(if json {
            json!({"state": "dead", "item": letter}).to_string()
        } else {
            let item = &letter.item;
            format!(
                "dead     {}  channel={} route={} attempts={} dead_since={}  {}",
                item.action.key,
                item.action.channel,
                item.action.route,
                item.attempts,
                time(letter.dead_at),
                letter.reason
            )
        });
    }
    if !json {
        lines.push(format!("{} waiting, {} dead letters", waiting.len(), dead.len()));
    }
    for line in lines {
        writeln!(out, "{line}").map_err(|e| format!("stdout: {e}"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The waiting items as a table, grouped by channel: a heading per channel saying how many wait
/// and how many of those are held for a digest, then one line per item.
fn waiting_by_channel(waiting: &[OutboxItem]) -> Vec<String> {
    let mut channels: Vec<&str> = waiting.iter().map(|i| i.action.channel.as_str()).collect();
    channels.sort_unstable();
    channels.dedup();
    let mut lines = Vec::new();
    for channel in channels {
        let items: Vec<&OutboxItem> = waiting.iter().filter(|i| i.action.channel == channel).collect();
        let held = items.iter().filter(|i| i.held).count();
        lines.push(format!(
            "channel {channel}: {} waiting ({held} held for a digest, {} retrying)",
            items.len(),
            items.len() - held
        ));
        for item in items {
            let state = if item.held { "held   " } else { "waiting" };
            lines.push(format!(
                "  {state}  {}  route={} attempts={} due={}  {}",
                item.action.key,
                item.action.route,
                item.attempts,
                time(item.due),
                item.last_error
            ));
        }
    }
    lines
}

async fn replay(
    outbox: &Outbox,
    dispatcher: &Dispatcher,
    select: &Select,
    dry_run: bool,
    deadline: Instant,
    out: &mut impl Write,
) -> Result<ExitCode, String> {
    let now = unix_now();
    let since = select.since.as_deref().map(|t| parse_since(t, now)).transpose()?;
    let part = if select.dead { Part::Dead } else { Part::Waiting };
    let chosen: Vec<Entry> = entries(outbox, part)
        .await?
        .into_iter()
        .filter(|e| since.is_none_or(|s| e.since >= s))
        .filter(|e| select.channel.as_ref().is_none_or(|c| *c == e.channel))
        .filter(|e| select.route.as_ref().is_none_or(|r| *r == e.route))
        .collect();
    let say = |out: &mut dyn Write, verb: &str, e: &Entry| {
        writeln!(out, "{verb} {}  channel={} route={}", e.key, e.channel, e.route)
            .map_err(|e| format!("stdout: {e}"))
    };
    if dry_run {
        for e in &chosen {
            say(out, "would replay", e)?;
        }
        writeln!(out, "{}", json!({"dry_run": true, "selected": chosen.len()}))
            .map_err(|e| format!("stdout: {e}"))?;
        return Ok(ExitCode::SUCCESS);
    }
    let keys: Vec<String> = chosen.iter().map(|e| e.key.clone()).collect();
    let moved = outbox.requeue(part, &keys, now).await.map_err(|e| e.to_string())?;
    for e in chosen.iter().filter(|e| moved.contains(&e.key)) {
        say(out, "moved", e)?;
    }
    let report = dispatcher.redeliver_keys(&moved, deadline).await;
    let mut summary = serde_json::to_value(&report).map_err(|e| e.to_string())?;
    summary["selected"] = json!(chosen.len());
    summary["moved"] = json!(moved.len());
    writeln!(out, "{summary}").map_err(|e| format!("stdout: {e}"))?;
    Ok(if report.error.is_some() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

async fn purge(
    outbox: &Outbox,
    dead: bool,
    older_than: Option<u32>,
    dry_run: bool,
    out: &mut impl Write,
) -> Result<ExitCode, String> {
    if !dead && older_than.is_none() {
        return Err("purging waiting items needs --older-than DAYS (they are actions not yet delivered); \
                    --dead purges dead letters"
            .to_owned());
    }
    let part = if dead { Part::Dead } else { Part::Waiting };
    let cutoff = older_than.map(|days| unix_now().saturating_sub(i64::from(days) * 86_400));
    let chosen: Vec<Entry> =
        entries(outbox, part).await?.into_iter().filter(|e| cutoff.is_none_or(|c| e.since < c)).collect();
    let verb = if dry_run { "would remove" } else { "removed" };
    let removed = if dry_run {
        chosen.len()
    } else {
        let keys: Vec<String> = chosen.iter().map(|e| e.key.clone()).collect();
        outbox.purge(part, &keys).await.map_err(|e| e.to_string())?
    };
    for e in &chosen {
        writeln!(out, "{verb} {}  channel={} route={} since={}", e.key, e.channel, e.route, time(e.since))
            .map_err(|e| format!("stdout: {e}"))?;
    }
    let what = if dead { "dead letters" } else { "waiting items" };
    writeln!(out, "{verb} {removed} {what}").map_err(|e| format!("stdout: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

/// `--since`: an RFC 3339 time, or an age before `now` (`90m`, `6h`, `2d`, `30s`).
fn parse_since(text: &str, now: i64) -> Result<i64, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp());
    }
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => 0,
    };
    match number.parse::<i64>() {
        Ok(n) if unit_secs > 0 => Ok(now.saturating_sub(n.saturating_mul(unit_secs))),
        _ => Err(format!(
            "--since {text:?}: expected an RFC 3339 time (2026-12-02T08:00:00Z) or an age (90m, 6h, 2d)"
        )),
    }
}

fn time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_time_or_an_age() {
        let now = 1_800_086_400;
        assert_eq!(parse_since("2027-01-15T08:00:00Z", now), Ok(1_800_000_000));
        assert_eq!(parse_since("2027-01-15T16:00:00+08:00", now), Ok(1_800_000_000));
        assert_eq!(parse_since("90m", now), Ok(now - 5_400));
        assert_eq!(parse_since("2d", now), Ok(now - 172_800));
        let err = parse_since("yesterday", now).unwrap_err();
        assert!(err.contains("RFC 3339") && err.contains("yesterday"), "{err}");
        assert!(parse_since("5w", now).is_err() && parse_since("", now).is_err());
    }
}
