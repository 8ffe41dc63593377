//! `vodhook silence add|list|expire`: silences made from the command line, as Alertmanager's
//! `amtool silence` makes them, kept in the Redis store every instance reads.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use crate::clock::unix_now;
use crate::config::{DedupBackend, Span, env};
use crate::setup::{Setup, State};
use crate::silence::store::SilenceStore;
use crate::silence::{Silence, State as Life};

#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// Send nothing that matches every --matcher for a while; prints the silence's id.
    Add {
        /// The configuration file (else $VODHOOK_CONFIG, else ./vodhook.toml, else the built-in one).
        #[arg(long, env = env::CONFIG)]
        config: Option<PathBuf>,
        /// A matcher in the routes' syntax (`workflow_id="wf-1"`, `error_code=~"Invalid.*"`,
        /// also `route` and `channel`); repeat it: all must match.
        #[arg(long = "matcher", value_name = "MATCHER", required = true)]
        matchers: Vec<String>,
        /// How long it lasts from now (30m, 2h, 1d).
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
        /// Why (shown by `silence list`).
        #[arg(long)]
        comment: String,
        /// Who made it; default $USER.
        #[arg(long)]
        author: Option<String>,
    },
    /// The active and pending silences (with --expired, also those expired in the last 5 days).
    List {
        /// The configuration file (else $VODHOOK_CONFIG, else ./vodhook.toml, else the built-in one).
        #[arg(long, env = env::CONFIG)]
        config: Option<PathBuf>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// Also the silences that have expired (kept 5 days).
        #[arg(long)]
        expired: bool,
    },
    /// End a silence now.
    Expire {
        /// The configuration file (else $VODHOOK_CONFIG, else ./vodhook.toml, else the built-in one).
        #[arg(long, env = env::CONFIG)]
        config: Option<PathBuf>,
        /// The silence's id (from `silence add` or `silence list`).
        id: String,
    },
}

impl SilenceCommand {
    pub fn config(&self) -> Option<&Path> {
        match self {
            SilenceCommand::Add { config, .. }
            | SilenceCommand::List { config, .. }
            | SilenceCommand::Expire { config, .. } => config.as_deref(),
        }
    }
}

/// Runs one `silence` command against the store of `setup`.
pub async fn run(command: SilenceCommand, setup: Setup) -> Result<ExitCode, String> {
    if setup.config.store.backend != DedupBackend::Redis {
        return Err("silences need the redis backend: set [store] backend = \"redis\" (every instance reads them there)".to_owned());
    }
    let redis = State::open(&setup.config.store).map_err(|e| e.to_string())?.redis;
    let store = SilenceStore::new(redis.ok_or("no Redis connection")?);
    let now = unix_now();
    match command {
        SilenceCommand::Add { matchers, duration, comment, author, .. } => {
            let span: Span = duration.parse().map_err(|e| format!("--for {duration:?}: {e}"))?;
            let author =
                author.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "unknown".to_owned());
            let silence = Silence::new(&matchers, span, &author, &comment, now)?;
            store.add(&silence, now).await.map_err(|e| e.to_string())?;
            println!("{}", silence.id);
        }
        SilenceCommand::List { json, expired, .. } => {
            store.prune(now).await.map_err(|e| e.to_string())?;
            let all = store.all().await.map_err(|e| e.to_string())?;
            let shown: Vec<&Silence> =
                all.iter().filter(|s| expired || s.state(now) != Life::Expired).collect();
            print_list(&shown, now, json)?;
        }
        SilenceCommand::Expire { id, .. } => {
            let silence = store.expire(&id, now).await.map_err(|e| e.to_string())?;
            println!("expired {} (ended {})", silence.id, rfc3339(silence.ends_at));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_list(silences: &[&Silence], now: i64, json: bool) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    let mut line = |text: String| writeln!(out, "{text}").map_err(|e| format!("stdout: {e}"));
    if json {
        for silence in silences {
            let mut value = serde_json::to_value(silence).map_err(|e| e.to_string())?;
            value["state"] = serde_json::to_value(silence.state(now)).map_err(|e| e.to_string())?;
            line(value.to_string())?;
        }
        return Ok(());
    }
    line(format!(
        "{:<32}  {:<8}  {:<25}  {:<25}  {:<12}  {:<30}  MATCHERS",
        "ID", "STATE", "STARTS", "ENDS", "AUTHOR", "COMMENT"
    ))?;
    for s in silences {
        let state = serde_json::to_value(s.state(now)).ok().and_then(|v| v.as_str().map(str::to_owned));
        line(format!(
            "{:<32}  {:<8}  {:<25}  {:<25}  {:<12}  {:<30}  {}",
            s.id,
            state.unwrap_or_default(),
            rfc3339(s.starts_at),
            rfc3339(s.ends_at),
            s.author,
            crate::text::truncate_chars(&crate::text::one_line(&s.comment), 30),
            s.matchers.join(" "),
        ))?;
    }
    Ok(())
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).map(|t| t.to_rfc3339()).unwrap_or_else(|| secs.to_string())
}
