//! The one test harness, included by every integration test as `mod support;`: the core service
//! in process ([`app`]), processes
//! ([`process`]), the vodhook binary as a server, a cluster or a CLI run ([`vodhook`]), requests
//! to it ([`client`]), VOD's signature ([`vod`]), fixtures, a real `redis-server` ([`redis`]) and
//! stand-ins for the services vodhook delivers to ([`standins`]).
//!
//! Each test binary uses a different part of it.
#![allow(dead_code, unused_imports)]

pub mod app;
pub mod client;
pub mod emf;
pub mod fixtures;
pub mod mentions;
pub mod process;
pub mod python;
pub mod redis;
pub mod standins;
pub mod vod;
pub mod vodapi;
pub mod vodhook;

pub use client::{Answer, callback, http_client, post};
pub use fixtures::{fixture, fixture_bytes, fixture_path};
pub use process::{PATIENCE, Process, free_port, vodhook_command};
pub use vod::{unix_now, vod_headers, vod_signature};
pub use vodhook::{CliRun, Cluster, FC_ENV, Options, Vodhook, fc_event_headers, run_cli, run_cli_with_input};
