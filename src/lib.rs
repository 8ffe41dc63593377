//! vodhook: receive ApsaraVideo VOD event callbacks, decode them fully, and turn each into
//! follow-up actions (chat messages, signed webhooks, log records).
//!
//! A request runs in one direction:
//!
//! ```text
//! runtime ─▶ handler: auth ─▶ event (envelope, decode) ─▶ route (which actions, not rendered)
//!                     ─▶ dispatch (claim, render once via route + template, send, settle;
//!                        dedup, outbox on store) ─▶ channel
//! ```
//!
//! The signature is checked first (on the headers: VOD does not sign the body), then the body
//! is unwrapped and decoded. Everything before `dispatch` is pure (bytes and headers in, values
//! out, the clock passed in), which is where most tests live. `dispatch` and `channel` do I/O
//! behind small types so that a real Redis or a real HTTP endpoint can stand behind them in
//! tests. `setup` turns a configuration into the compiled pieces once per process.
//!
//! Most modules are public because the integration tests (`tests/`), the benches and the fuzzer
//! drive them directly (the pipeline's steps, the config types, the store, the stand-ins'
//! counterparts); the few private ones (`reply`, `text`, `unique`, and `auth::reuse`) are
//! reached only through the others, so the compiler reports what nothing uses.

pub mod action;
pub mod auth;
pub mod channel;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dedup;
pub mod dispatch;
pub mod event;
pub mod handler;
pub mod links;
pub mod metrics;
pub mod outbox;
pub mod quiet;
pub mod redact;
mod reply;
pub mod report;
pub mod route;
pub mod runtime;
pub mod samples;
pub mod setup;
pub mod signed_link;
pub mod silence;
pub mod store;
pub mod telemetry;
pub mod template;
mod text;
mod unique;
pub mod vod;
