//! The runtimes: thin adapters from each platform's requests to [`crate::handler::App`].

mod connections;
pub mod lambda;
pub mod metrics;
pub mod server;
