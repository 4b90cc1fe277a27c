//! vflow-runtime: the `vflow` command line and server.
//!
//! The binary (`main.rs`) only parses arguments and calls [`cli::run`]; every
//! module lives here so that integration tests and benchmarks can reach them.

pub mod bundles;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod media;
pub mod outbox;
pub mod prompts;
pub mod routing;
pub mod server;
pub mod sip;
pub mod store;
pub mod voicemail;
pub mod world;
