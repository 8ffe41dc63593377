//! The runtimes: thin adapters from each platform's requests to [`crate::handler::App`].

pub mod lambda;
pub mod server;
