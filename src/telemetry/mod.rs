//! Logging: JSON lines on Function Compute and Lambda (both collect the output and index JSON),
//! human-readable on a terminal; filtered with `RUST_LOG` (default `info`).

pub mod json;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::JsonFields;

use crate::config::env;

/// Where log lines go. Servers log to stdout (what FC and Lambda collect); the command-line
/// tools to stderr, so their stdout stays clean for their output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Stdout,
    Stderr,
}

/// Whether we run on a cloud function platform (JSON logs) rather than for a person.
pub fn on_platform(var: impl Fn(&str) -> Option<String>) -> bool {
    [env::FC_FUNCTION_NAME, env::AWS_LAMBDA_RUNTIME_API].iter().any(|k| var(k).is_some_and(|v| !v.is_empty()))
}

/// Installs the global subscriber. Safe to call once; later calls are ignored.
pub fn init(sink: Sink) {
    let filter = EnvFilter::try_from_env(env::LOG).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = on_platform(|k| std::env::var(k).ok());
    let ansi = match sink {
        Sink::Stdout => std::io::stdout().is_terminal(),
        Sink::Stderr => std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi);
    let result = match (json, sink) {
        (true, Sink::Stdout) => builder.fmt_fields(JsonFields::new()).event_format(json::JsonLine).try_init(),
        (true, Sink::Stderr) => builder
            .fmt_fields(JsonFields::new())
            .event_format(json::JsonLine)
            .with_writer(std::io::stderr)
            .try_init(),
        (false, Sink::Stdout) => builder.compact().try_init(),
        (false, Sink::Stderr) => builder.compact().with_writer(std::io::stderr).try_init(),
    };
    // Already installed (tests, embedding): keep the existing subscriber.
    drop(result);
}
