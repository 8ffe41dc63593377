//! vodhook: receive ApsaraVideo VOD event callbacks, decode them fully, and turn each into
//! follow-up actions (chat messages, signed webhooks, log records).
//!
//! The pipeline runs in one direction:
//!
//! ```text
//! runtime ─▶ envelope ─▶ auth ─▶ event ─▶ route ─▶ dedup ─▶ deliver
//! ```
//!
//! Everything left of `dedup` is pure (bytes and headers in, values out, the clock passed in),
//! which is where most tests live. `dedup` and `deliver` do I/O behind small types so that a
//! real Redis or a real HTTP endpoint can stand behind them in tests.

pub mod action;
pub mod auth;
pub mod cli;
pub mod config;
pub mod dedup;
pub mod deliver;
pub mod dispatch;
pub mod envelope;
pub mod event;
pub mod handler;
pub mod outbox;
pub mod redact;
pub mod route;
pub mod runtime;
pub mod samples;
pub mod telemetry;
pub mod template;
