//! The command line: one module per subcommand. Exit codes: 0 success,
//! 1 the input has problems (diagnostics, failed tests), 2 usage or I/O error.

mod bundle;
mod check;
mod cluster;
mod deploy;
mod ir;
mod mailbox;
mod reload;
mod serve;
mod simulate;
mod test;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "vflow", version = version(), about = "Declarative call flows for voicemail and IVR: compiler, simulator and server")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// `vflow --version`: the version and the engine that runs flows here.
fn version() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        format!(
            "{} (engine: {})",
            env!("CARGO_PKG_VERSION"),
            vflow_compiler::engine_name()
        )
    })
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check .vflow files and report every problem found.
    Check(check::CheckArgs),
    /// Run the server: answer SIP calls and run the flows (embedded defaults without --config).
    Serve(serve::ServeArgs),
    /// Make a running server load its flows again (or roll back) without dropping calls.
    Reload(reload::ReloadArgs),
    /// Run one call through a flow offline and print its effects.
    Simulate(simulate::SimulateArgs),
    /// Run the flow tests in *.test.yaml files.
    Test(test::TestArgs),
    /// Print the compiled IR of flows in its stable text form.
    Ir(ir::IrArgs),
    /// Create a site signing key pair (site.key private, site.pub public).
    Keygen(bundle::KeygenArgs),
    /// Compile flows into one signed bundle file for servers to load.
    Build(bundle::BuildArgs),
    /// Show what a bundle holds and whether its signature verifies.
    Inspect(bundle::InspectArgs),
    /// Administer mailboxes and messages: add, set, list, show, messages, delete.
    Mailbox(mailbox::MailboxArgs),
    /// Cluster administration: `init` (CA and certificates), `status` (every node).
    Cluster(cluster::ClusterArgs),
    /// Publish a bundle to the cluster's central, which verifies and
    /// activates it and pushes it to every node.
    ///
    /// Needs an operator identity: `vflow cluster init --out DIR --admin NAME`
    /// writes DIR/NAME.crt and DIR/NAME.key. Prints the serial now active on
    /// the central and each node's push result (the central keeps retrying a
    /// node that did not take it). Exit 1 when the central refused the bundle
    /// or a node has not taken it within --wait.
    ///
    /// Example: vflow deploy site.vfb --to 127.0.0.1:7443 --cert pki/ops.crt --key pki/ops.key --ca pki/ca.crt
    Deploy(deploy::DeployArgs),
}

/// Options shared by the commands that read flows.
#[derive(clap::Args, Debug, Clone)]
pub struct SourceOpts {
    /// Use this stdlib directory for `std/` imports instead of the one built into vflow.
    #[arg(long, env = "VFLOW_STDLIB", value_name = "DIR")]
    pub stdlib: Option<PathBuf>,
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check(a) => check::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Reload(a) => reload::run(a),
        Command::Simulate(a) => simulate::run(a),
        Command::Test(a) => test::run(a),
        Command::Ir(a) => ir::run(a),
        Command::Mailbox(a) => mailbox::run(a),
        Command::Keygen(a) => bundle::keygen(a),
        Command::Build(a) => bundle::build(a),
        Command::Inspect(a) => bundle::inspect(a),
        Command::Cluster(a) => cluster::run(a),
        Command::Deploy(a) => deploy::deploy(a),
    }
}
