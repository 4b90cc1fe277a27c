//! `vflow`: the call-flow compiler's command line and the server.

use clap::Parser;
use std::process::ExitCode;
use vflow_runtime::cli;

fn main() -> ExitCode {
    // Like every Unix filter, stop quietly when the reader of our output goes
    // away (`vflow simulate … | head`) instead of panicking on EPIPE.
    // SAFETY: resetting a signal disposition to its default, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    cli::run(cli::Cli::parse())
}
