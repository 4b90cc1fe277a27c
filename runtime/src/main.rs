//! `vflow`: the call-flow compiler's command line and the server.

use clap::Parser;
use std::process::ExitCode;
use vflow_runtime::cli;

fn main() -> ExitCode {
    cli::run(cli::Cli::parse())
}
