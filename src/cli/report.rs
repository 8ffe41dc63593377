//! `vodhook report [--since 24h] [--json]`: the daily report's content on the command line, at
//! any time, from the counters every instance keeps in the Redis store.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::clock::unix_now;
use crate::config::{DedupBackend, Span};
use crate::outbox::Outbox;
use crate::report::{self, Ledger, Schedule, render};
use crate::setup::{Setup, State};

/// The options of `vodhook report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The configuration file (else $VODHOOK_CONFIG, else ./vodhook.toml, else the built-in one).
    #[arg(long, env = crate::config::env::CONFIG)]
    pub config: Option<PathBuf>,
    /// How far back from now (whole hours; 1h to 7d).
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    pub since: String,
    /// The report as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Prints the report of the last `--since` against the store of `setup`.
pub async fn run(args: ReportArgs, setup: Setup) -> Result<ExitCode, String> {
    let config = &setup.config;
    if config.store.backend != DedupBackend::Redis {
        return Err(
            "the report needs the redis store ([store] backend = \"redis\"): without it each server counts \
                    only its own requests, in its memory"
                .to_owned(),
        );
    }
    let span: Span = args.since.parse().map_err(|e| format!("--since {:?}: {e}", args.since))?;
    let period = i64::try_from(span.as_duration().as_secs()).unwrap_or(i64::MAX);
    let max = i64::try_from(crate::config::report::MAX_PERIOD_SECS).unwrap_or(i64::MAX);
    if !(3_600..=max).contains(&period) || period % 3_600 != 0 {
        return Err(format!("--since {:?}: whole hours from 1h to 7d", args.since));
    }
    let state = State::open(&config.store).map_err(|e| e.to_string())?;
    let redis = state.redis.ok_or("no Redis connection")?;
    let ledger = Ledger::redis(redis.clone(), Duration::from_secs(config.store.ttl_secs), span.as_duration());
    let schedule = Schedule::of(config);
    let now = unix_now();
    // Up to now: the current hour as far as it has counted.
    let until = schedule.bucket(now) + 3_600;
    let counts = Outbox::new(redis).counts().await.ok();
    let mut summary =
        report::summarize(&ledger, &schedule, until, period, counts).await.map_err(|e| e.to_string())?;
    summary.until = schedule.rfc3339(now.min(until));
    if args.json {
        println!("{}", serde_json::to_string(&summary).map_err(|e| e.to_string())?);
    } else {
        let locale = config.messages.locale;
        println!(
            "{}\n\n{}",
            render::headline(&summary, locale),
            render::text(&summary, locale, crate::template::Markup::Text)
        );
    }
    Ok(ExitCode::SUCCESS)
}
