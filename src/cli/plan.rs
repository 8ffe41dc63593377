//! `vodhook plan`: what a delivery would cause, at an instant (`--at`, default now): each
//! action with who it mentions, its channel's pacing, and whether a mute interval or a silence
//! would keep it from being sent then.

use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;

use crate::action::Action;
use crate::config::{Config, DedupBackend, Mentions, OnMute};
use crate::event::decode_delivery;
use crate::quiet::Muted;
use crate::setup::{Setup, State};
use crate::silence::Active;
use crate::silence::store::SilenceStore;

/// `vodhook plan`: each action as a JSON line. Silences are read from the store when there is
/// one (a store that cannot be read is a warning: the plan is still printed).
pub fn plan(setup: &Setup, bytes: &[u8], at: Option<&str>) -> Result<ExitCode, String> {
    let at = match at {
        Some(text) => chrono::DateTime::parse_from_rfc3339(text)
            .map_err(|e| {
                format!("--at {text:?}: {e} (expected an RFC 3339 time, 2026-12-05T03:00:00+08:00)")
            })?
            .timestamp(),
        None => crate::clock::unix_now(),
    };
    let delivery = decode_delivery(bytes).map_err(|e| e.to_string())?;
    let silences = read_silences(&setup.config, at);
    let mut out = std::io::stdout().lock();
    for event in &delivery.events {
        let actions = setup.router.plan(event).map_err(|e| format!("{}: {e}", event.identity()))?;
        warn_twice_to_one_channel(&event.identity(), &actions);
        for action in &actions {
            let planned = Planned {
                action,
                mentions: setup.router.mentions(&action.route, &action.channel).filter(|m| !m.is_empty()),
                pacing: pacing(&setup.config, &action.channel),
                muted: setup.router.muted(&action.route, at).map(|m| MutedView::of(m, &setup.config)),
                silenced_by: silences.silencing(event, &action.route, &action.channel),
            };
            let line = serde_json::to_string(&planned).map_err(|e| e.to_string())?;
            writeln!(out, "{line}").map_err(|e| format!("stdout: {e}"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The silences active at `at`, when the store is Redis and can be read.
fn read_silences(config: &Config, at: i64) -> Active {
    if config.store.backend != DedupBackend::Redis {
        return Active::default();
    }
    let read = async {
        let redis = State::open(&config.store).map_err(|e| e.to_string())?.redis;
        let store = SilenceStore::new(redis.ok_or("no Redis connection")?);
        store.all().await.map_err(|e| e.to_string())
    };
    let all = super::tokio_runtime(false).and_then(|rt| rt.block_on(read));
    match all {
        Ok(all) => Active::at(&all, at),
        Err(err) => {
            eprintln!("warning: silences not read ({err}): the plan does not show them");
            Active::default()
        }
    }
}

/// `plan`'s warning (on stderr) when two routes send one event to the same channel.
fn warn_twice_to_one_channel(identity: &str, actions: &[Action]) {
    for (i, action) in actions.iter().enumerate() {
        if let Some(earlier) = actions[..i].iter().find(|a| a.channel == action.channel) {
            eprintln!(
                "warning: {identity} goes to channel {:?} twice, through routes {:?} and {:?}",
                action.channel, earlier.route, action.route
            );
        }
    }
}

/// One line of `plan`: the action, and what its channel's budget does with it.
#[derive(Serialize)]
struct Planned<'a> {
    #[serde(flatten)]
    action: &'a Action,
    /// Who its message mentions (written into `payload` already), when anyone.
    #[serde(skip_serializing_if = "Option::is_none")]
    mentions: Option<&'a Mentions>,
    pacing: serde_json::Value,
    /// Muted at that instant: by which intervals, and until when.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    muted: Option<MutedView>,
    /// The id of the silence that would keep it from being sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    silenced_by: Option<&'a str>,
}

/// What `plan` says of a muted action: what the dispatcher would do with it.
#[derive(Serialize)]
struct MutedView {
    muted_by: Vec<String>,
    /// When it would be sent (RFC 3339); absent when it would be dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    held_until: Option<String>,
    /// `hold`, or `drop` (the route's `on_mute`, or no outbox to hold it in).
    on_mute: OnMute,
}

impl MutedView {
    fn of(muted: Muted, config: &Config) -> MutedView {
        let outbox = config.store.backend == DedupBackend::Redis;
        let on_mute = if outbox { muted.on_mute } else { OnMute::Drop };
        let held_until = (on_mute == OnMute::Hold)
            .then(|| chrono::DateTime::from_timestamp(muted.held_until, 0).map(|t| t.to_rfc3339()))
            .flatten();
        MutedView { muted_by: muted.muted_by, held_until, on_mute }
    }
}

/// What `plan` says of a channel's pacing.
fn pacing(config: &Config, channel: &str) -> serde_json::Value {
    let Some(c) = config.channels.iter().find(|c| c.name == channel) else {
        return serde_json::Value::Null;
    };
    let margin = std::time::Duration::from_millis(config.delivery.budget_margin_ms);
    let Some(limits) = crate::dispatch::budget::Limits::of(c, margin) else {
        return serde_json::json!({ "limits": "none", "when_spent": "sent at once" });
    };
    // The dispatcher's own decision (the outbox is there exactly when the store is Redis).
    let redis = config.store.backend == DedupBackend::Redis;
    serde_json::json!({
        "limits": limits.describe(),
        "shared": if redis { "every instance (Redis)" } else { "this instance only" },
        "when_spent": crate::dispatch::WhenSpent::of(c, redis).describe(),
    })
}
