//! `vflow`: the call-flow compiler's command line and the server.

mod cli;
mod world;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::run(args)
}
