//! The command line: the runtimes (`serve`, `lambda`) and the tools that help users set up and
//! test before deploying (`parse`, `plan`, `check-config`, `sign`, `simulate`, `drain`), and
//! operate (`check-redis`, `outbox`, `silence`).
//! With no subcommand the binary picks its runtime from the environment, so the same
//! `bootstrap` runs on Function Compute and on Lambda.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use base64::Engine;
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

mod check_redis;
mod outbox;
mod plan;
mod report;
mod silence;

use crate::auth;
use crate::clock::unix_now;
use crate::config::env;
use crate::dispatch::Dispatcher;
use crate::event::decode_delivery;
use crate::handler::App;
use crate::runtime;
use crate::samples;
use crate::setup::{Setup, State};
use crate::telemetry::{self, Sink};

#[derive(Debug, Parser)]
#[command(name = "vodhook", version, about = "ApsaraVideo VOD callbacks in, notifications out")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve HTTP (Function Compute custom runtime, or locally).
    Serve {
        /// Listen address; default from VODHOOK_LISTEN, FC_CUSTOM_LISTEN_PORT, FC_SERVER_PORT, else 127.0.0.1:9000.
        #[arg(long)]
        listen: Option<String>,
        /// The configuration file (else $VODHOOK_CONFIG, else ./vodhook.toml, else the built-in one).
        #[arg(long, env = env::CONFIG)]
        config: Option<PathBuf>,
    },
    /// Run as an AWS Lambda function (lambda_http).
    Lambda {
        /// The configuration file (else $VODHOOK_CONFIG, else ./vodhook.toml, else the built-in one).
        #[arg(long, env = env::CONFIG)]
        config: Option<PathBuf>,
    },
    /// Print each event a delivery holds, fully decoded, one JSON object per line. Sends nothing.
    Parse {
        /// The delivery as it arrived (any envelope); `-` or nothing for stdin.
        input: Option<PathBuf>,
    },
    /// Print the actions a delivery would cause (NDJSON), and whether a mute interval or a
    /// silence would keep each from being sent. Sends nothing.
    Plan {
        /// The configuration file (else $VODHOOK_CONFIG, else ./vodhook.toml, else the built-in one).
        #[arg(long, env = env::CONFIG)]
        config: Option<PathBuf>,
        /// Evaluate time intervals and silences at this instant (RFC 3339); default now.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// The delivery as it arrived (any envelope); `-` or nothing for stdin.
        input: Option<PathBuf>,
    },
    /// Load and validate a configuration; exit 1 and say what is wrong where.
    CheckConfig {
        /// The configuration file (the same as --config).
        file: Option<PathBuf>,
        /// The configuration file (else $VODHOOK_CONFIG, else ./vodhook.toml, else the built-in one).
        #[arg(long, conflicts_with = "file")]
        config: Option<PathBuf>,
        /// Print the environment variables the configuration reads (`${NAME}`), one per line, then
        /// the `VODHOOK_*` ones vodhook reads by itself, as a comment; check nothing else.
        #[arg(long)]
        print_env: bool,
    },
    /// Print the two headers VOD would send with a callback:
    /// X-VOD-SIGNATURE = md5hex("<callback URL>|<timestamp>|<auth key>").
    Sign {
        /// The callback URL exactly as configured in VOD (else `[auth] callback_url` of --config).
        #[arg(long)]
        url: Option<String>,
        /// The auth key (else `[auth] key` of --config).
        #[arg(long, env = env::AUTH_KEY, hide_env_values = true)]
        key: Option<String>,
        /// Sign for the callback URL and key this configuration checks against.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Unix seconds; default now.
        #[arg(long)]
        timestamp: Option<i64>,
    },
    /// Act as VOD: send a signed callback to a running vodhook and print the answer.
    Simulate {
        /// Where the running vodhook listens.
        #[arg(long, default_value = "http://127.0.0.1:9000/")]
        target: String,
        /// Sign with this auth key (else `[auth] key` of --config, else unsigned).
        #[arg(long, env = env::AUTH_KEY, hide_env_values = true)]
        key: Option<String>,
        /// The URL to sign (as configured in VOD); default `[auth] callback_url` of --config,
        /// else the target.
        #[arg(long, env = env::CALLBACK_URL)]
        callback_url: Option<String>,
        /// Sign for the callback URL and key this configuration (the server's) checks against.
        #[arg(long)]
        config: Option<PathBuf>,
        /// `http`: a VOD HTTP callback; `mns`: FC's MNS queue trigger (CloudEvents) to /invoke.
        #[arg(long, value_enum, default_value_t = Via::Http)]
        via: Via,
        /// A built-in realistic event.
        #[arg(long, value_enum, conflicts_with = "file")]
        example: Option<Example>,
        /// An event file to send; default the `succeed` example.
        file: Option<PathBuf>,
    },
    /// Deliver what the outbox holds and is due (what the timer trigger does).
    Drain {
        /// The configuration file (else $VODHOOK_CONFIG, else ./vodhook.toml, else the built-in one).
        #[arg(long, env = env::CONFIG)]
        config: Option<PathBuf>,
    },
    /// Check that the Redis of `[store]` is fit for vodhook: connection, TLS, topology, scripts,
    /// key slots, round trip, outbox counts. Exit 1 naming the failing step.
    CheckRedis {
        /// The configuration file (else $VODHOOK_CONFIG, else ./vodhook.toml, else the built-in one).
        #[arg(long, env = env::CONFIG)]
        config: Option<PathBuf>,
    },
    /// Inspect and operate the outbox (Redis): list, replay, purge.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// Silences (Redis): add, list, expire.
    Silence {
        #[command(subcommand)]
        command: SilenceCommand,
    },
    /// How the last day (or --since) went: events, failures by workflow and error code, notices,
    /// VOD API calls; what the daily report says ([report]), from the Redis store.
    Report(report::ReportArgs),
}

pub use outbox::OutboxCommand;
pub use silence::SilenceCommand;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Via {
    Http,
    Mns,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Example {
    Succeed,
    Failed,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or_else(|| {
        let on_lambda = std::env::var(env::AWS_LAMBDA_RUNTIME_API).is_ok_and(|v| !v.is_empty());
        let config = std::env::var_os(env::CONFIG).map(PathBuf::from);
        if on_lambda { Command::Lambda { config } } else { Command::Serve { listen: None, config } }
    });
    match run(command) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one command. (Long: one arm per command, the CLI's table of contents.)
fn run(command: Command) -> Result<ExitCode, String> {
    // Servers log to stdout (what FC and Lambda collect); the tools to stderr, so their stdout
    // stays clean for their output.
    telemetry::init(match command {
        Command::Serve { .. } | Command::Lambda { .. } => Sink::Stdout,
        _ => Sink::Stderr,
    });
    match command {
        Command::Serve { listen, config } => serve(listen, config.as_deref()),
        Command::Lambda { config } => {
            let app = Arc::new(start_app(config.as_deref())?);
            tokio_runtime(false)?.block_on(runtime::lambda::run(app)).map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Parse { input } => parse(&read_input(input.as_deref())?),
        Command::Plan { config, at, input } => {
            let setup = load_setup(config.as_deref())?;
            plan::plan(&setup, &read_input(input.as_deref())?, at.as_deref())
        }
        Command::CheckConfig { file, config, print_env: true } => print_env(file.or(config).as_deref()),
        Command::CheckConfig { file, config, print_env: false } => {
            Ok(check_config(file.or(config).as_deref()))
        }
        Command::Drain { config } => drain(config.as_deref()),
        Command::CheckRedis { config } => {
            let setup = load_setup(config.as_deref())?;
            tokio_runtime(false)?.block_on(check_redis(&setup.config.store))
        }
        Command::Outbox { command } => {
            let setup = load_setup(command.config())?;
            tokio_runtime(false)?.block_on(outbox::run(command, setup))
        }
        Command::Silence { command } => {
            let setup = load_setup(command.config())?;
            tokio_runtime(false)?.block_on(silence::run(command, setup))
        }
        Command::Report(args) => {
            let setup = load_setup(args.config.as_deref())?;
            tokio_runtime(false)?.block_on(report::run(args, setup))
        }
        Command::Sign { url, key, config, timestamp } => {
            let (url, key) = signing(url, key, config.as_deref())?;
            let url = url.ok_or("no callback URL: give --url, or --config with [auth] callback_url")?;
            let key =
                key.ok_or("no auth key: give --key (or VODHOOK_AUTH_KEY), or --config with [auth] key")?;
            let timestamp = timestamp.unwrap_or_else(unix_now);
            println!("X-VOD-TIMESTAMP: {timestamp}");
            println!("X-VOD-SIGNATURE: {}", auth::signature(&url, timestamp, &key));
            Ok(ExitCode::SUCCESS)
        }
        Command::Simulate { target, key, callback_url, config, via, example, file } => {
            let event = match (file, example) {
                (Some(path), _) => read_input(Some(&path))?,
                (None, Some(Example::Failed)) => samples::FAILED.as_bytes().to_vec(),
                (None, _) => samples::SUCCEED.as_bytes().to_vec(),
            };
            let (callback_url, key) = signing(callback_url, key, config.as_deref())?;
            let runtime = tokio_runtime(false)?;
            runtime.block_on(simulate(&target, key.as_deref(), callback_url.as_deref(), via, event))
        }
    }
}

/// The callback URL and auth key to sign with: those given, else `[auth]` of `config` (the
/// configuration the server checks against, with the same `VODHOOK_*` overrides), so that a
/// simulated callback is signed for the URL the server expects.
fn signing(
    url: Option<String>,
    key: Option<String>,
    config: Option<&std::path::Path>,
) -> Result<(Option<String>, Option<String>), String> {
    let Some(path) = config else { return Ok((url, key)) };
    let auth = load_setup(Some(path))?.config.auth;
    let key = key.or_else(|| auth.key.map(|k| k.expose().to_owned()));
    Ok((url.or(auth.callback_url), key))
}

/// `vodhook serve`: the address from `--listen`, else the environment (see
/// [`runtime::server::listen_addr`]).
fn serve(listen: Option<String>, config: Option<&std::path::Path>) -> Result<ExitCode, String> {
    let addr = match listen {
        Some(listen) => listen.parse().map_err(|_| format!("--listen {listen:?} is not host:port"))?,
        None => runtime::server::listen_addr(|k| std::env::var(k).ok())?,
    };
    let app = Arc::new(start_app(config)?);
    let metrics = app.metrics_listen();
    let serving = async move {
        if let Some(metrics) = metrics {
            runtime::metrics::spawn(metrics).await?;
        }
        runtime::server::serve(app, addr).await
    };
    tokio_runtime(true)?.block_on(serving).map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

/// `vodhook check-config`: exactly the check start-up makes; every problem on stderr, exit 1.
fn check_config(file: Option<&std::path::Path>) -> ExitCode {
    match Setup::load_with(file, &|name: &str| std::env::var(name).ok()) {
        Ok(setup) => {
            println!("{}", setup.report());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}

/// `vodhook check-config --print-env`: what a deployment must set for this configuration.
fn print_env(file: Option<&std::path::Path>) -> Result<ExitCode, String> {
    let variables = match crate::config::locate(file, &|name: &str| std::env::var(name).ok()) {
        crate::config::ConfigSource::BuiltIn => Default::default(),
        crate::config::ConfigSource::File(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            crate::config::Config::variables_in(&text).map_err(|e| e.in_file(Some(&path)).to_string())?
        }
    };
    for name in &variables {
        println!("{name}");
    }
    let own = [
        env::CALLBACK_URL,
        env::AUTH_KEY,
        env::AUTH_KEY_PREVIOUS,
        env::IMS_AUTH_KEY,
        env::IMS_AUTH_KEY_PREVIOUS,
    ];
    println!("# read by vodhook itself when set: {} {} {}", own.join(" "), env::CONFIG, env::LOG);
    Ok(ExitCode::SUCCESS)
}

/// `vodhook drain`: what the timer trigger does, once.
fn drain(config: Option<&std::path::Path>) -> Result<ExitCode, String> {
    let setup = load_setup(config)?;
    let config = setup.config;
    let deadline = std::time::Duration::from_millis(config.delivery.invoke_deadline_ms);
    let state = State::open(&config.store).map_err(|e| e.to_string())?;
    let dispatcher = Dispatcher::new(&config, setup.router, state.dedup, state.outbox, state.redis);
    let report = tokio_runtime(false)?.block_on(dispatcher.drain(std::time::Instant::now() + deadline));
    println!("{}", serde_json::to_string(&report).map_err(|e| e.to_string())?);
    Ok(if report.error.is_some() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn start_app(config: Option<&std::path::Path>) -> Result<App, String> {
    App::new(load_setup(config)?).map_err(|e| e.to_string())
}

/// Loads and checks the configuration (see [`Setup`]): the file given, else `VODHOOK_CONFIG`,
/// else `./vodhook.toml` when present, else the built-in default.
fn load_setup(path: Option<&std::path::Path>) -> Result<Setup, String> {
    Setup::load(path).map_err(|e| e.to_string())
}

fn tokio_runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, String> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build().map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// Reads a file, or stdin for `-` or nothing.
fn read_input(path: Option<&std::path::Path>) -> Result<Vec<u8>, String> {
    match path {
        Some(p) if p.as_os_str() != "-" => std::fs::read(p).map_err(|e| format!("{}: {e}", p.display())),
        _ => {
            let mut bytes = Vec::new();
            std::io::stdin().read_to_end(&mut bytes).map_err(|e| format!("stdin: {e}"))?;
            Ok(bytes)
        }
    }
}

/// `vodhook check-redis`: every step on its own line; exit 1 naming the first that failed.
async fn check_redis(config: &crate::config::DedupConfig) -> Result<ExitCode, String> {
    if config.backend != crate::config::DedupBackend::Redis {
        return Err("no Redis to check: [store] backend is \"memory\"".to_owned());
    }
    let conn = crate::store::RedisConn::open(config).map_err(|e| e.to_string())?;
    let steps = check_redis::probe(&conn, config.tls_ca_file.as_deref()).await;
    let mut out = std::io::stdout().lock();
    let mut failed = None;
    for step in &steps {
        let line = match &step.outcome {
            Ok(found) => format!("{:<11} {found}", step.name),
            Err(why) => {
                failed = Some(step.name);
                format!("{:<11} FAILED: {why}", step.name)
            }
        };
        writeln!(out, "{line}").map_err(|e| format!("stdout: {e}"))?;
    }
    match failed {
        Some(step) => Err(format!("check-redis failed at step `{step}`")),
        None => {
            writeln!(out, "check-redis: OK").map_err(|e| format!("stdout: {e}"))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn parse(bytes: &[u8]) -> Result<ExitCode, String> {
    let delivery = decode_delivery(bytes).map_err(|e| e.to_string())?;
    for warning in &delivery.warnings {
        eprintln!("warning: {warning}");
    }
    for rejected in &delivery.rejected {
        eprintln!("error: event dropped: {rejected}");
    }
    let mut out = std::io::stdout().lock();
    for event in &delivery.events {
        let line = serde_json::to_string(event.decoded()).map_err(|e| e.to_string())?;
        writeln!(out, "{line}").map_err(|e| format!("stdout: {e}"))?;
    }
    Ok(if delivery.rejected.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Wraps `event` as Function Compute's MNS queue trigger delivers it: a CloudEvents array whose
/// `data.messageBody` is the base64 of the message, as the MNS SDKs send it.
pub fn mns_trigger_body(event: &[u8], now: i64) -> Vec<u8> {
    let time = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default().to_rfc3339();
    let message = base64::engine::general_purpose::STANDARD.encode(event);
    let cloud_event = json!({
        "id": format!("vodhook-simulate-{now}"),
        "source": "MNS-vodhook-simulate",
        "specversion": "1.0",
        "type": "mns:Queue:SendMessage",
        "datacontenttype": "application/json; charset=utf-8",
        "subject": "acs:mns:cn-shanghai:123456789:queues/vod-events",
        "time": time,
        "aliyunaccountid": "123456789",
        "aliyunpublishtime": time,
        "aliyunoriginalaccountid": "123456789",
        "aliyuneventbusname": "MNS-vodhook-simulate",
        "aliyunregionid": "cn-shanghai",
        "aliyunpublishaddr": "127.0.0.1",
        "data": {"requestId": "vodhook-simulate", "messageId": format!("{now:X}"), "messageBody": message},
    });
    json!([cloud_event]).to_string().into_bytes()
}

async fn simulate(
    target: &str,
    key: Option<&str>,
    callback_url: Option<&str>,
    via: Via,
    event: Vec<u8>,
) -> Result<ExitCode, String> {
    let now = unix_now();
    let client = reqwest::Client::new();
    let request = match via {
        Via::Http => {
            let mut request = client.post(target).header("content-type", "application/json").body(event);
            if let Some(key) = key {
                let url = callback_url.unwrap_or(target);
                request = request
                    .header(auth::TIMESTAMP_HEADER, now.to_string())
                    .header(auth::SIGNATURE_HEADER, auth::signature(url, now, key));
            }
            request
        }
        Via::Mns => {
            let mut url = url::Url::parse(target).map_err(|e| format!("--target {target:?}: {e}"))?;
            url.set_path(crate::handler::paths::INVOKE);
            url.set_query(None);
            client
                .post(url)
                .header("content-type", "application/octet-stream")
                .header(crate::handler::FC_REQUEST_ID_HEADER, format!("simulate-{now}"))
                // FC's mark on an event invocation; a vodhook on FC believes it only from FC.
                .header("x-fc-control-path", crate::handler::paths::INVOKE)
                .body(mns_trigger_body(&event, now))
        }
    };
    let response = request.send().await.map_err(|e| {
        let hint = if e.is_connect() {
            " (is `vodhook serve` running there? start it, or name its address with --target)"
        } else {
            ""
        };
        format!(
            "sending to {}: {}{hint}",
            crate::redact::redact_url(target),
            crate::text::with_causes(&e.without_url())
        )
    })?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    println!("{}", status.as_u16());
    println!("{body}");
    Ok(if status.is_success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
