//! `vflow cluster`: cluster administration: `init` (the cluster CA, node
//! certificates and operator identities) and `status` (every node, asked
//! through a node's control API; see cli/deploy.rs).

use crate::cluster::pki::{self, NodeSpec};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum ClusterCommand {
    /// Create the cluster CA and a certificate and key for each node (and operator).
    ///
    /// Writes DIR/ca.crt and DIR/ca.key (the CA), and DIR/NAME.crt and
    /// DIR/NAME.key for every --node. Each node needs ca.crt, its own .crt
    /// and .key (its `cluster.tls`); keep ca.key off the nodes. Private keys
    /// are written mode 0600.
    ///
    /// A node certificate carries the node name as its subject CN (how peers
    /// identify it) and as a DNS name, plus the hosts it is reached at.
    ///
    /// When DIR already holds a CA, it signs the new --node certificates and
    /// is kept; --force replaces it (every node then needs a new certificate).
    ///
    /// Example: vflow cluster init --out var/cluster/pki --node central --node backup --node site-1=10.0.0.5,site1.example.org
    Init(InitArgs),
    /// Show every node of the cluster: role, state, bundle serial, outbox, last sync.
    ///
    /// Asks the node at --to (usually the central), which reports itself and
    /// asks each peer with a `control` address; a peer that does not answer
    /// is shown `unreachable` with the reason. State: active, standby (a
    /// backup while the central runs) or unreachable. Needs an operator
    /// identity (`vflow cluster init --admin NAME`).
    ///
    /// Example: vflow cluster status --to 127.0.0.1:7443 --cert pki/ops.crt --key pki/ops.key --ca pki/ca.crt
    Status(super::deploy::StatusArgs),
}

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// The directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// A node to certify: NAME (a lowercase DNS name, as in `cluster.name`),
    /// optionally with the hosts and IP addresses it is reached at:
    /// NAME=host,host,... (default: 127.0.0.1,localhost). Repeat for each node.
    #[arg(long = "node", value_name = "NAME[=HOST,...]", value_parser = NodeSpec::parse)]
    pub nodes: Vec<NodeSpec>,
    /// An operator identity NAME: DIR/NAME.crt and DIR/NAME.key, a client
    /// certificate marked as an operator's, which the nodes' control APIs
    /// accept for `vflow deploy` and `vflow cluster status` only (never as a
    /// node). Repeat for each operator.
    #[arg(long = "admin", value_name = "NAME", value_parser = NodeSpec::parse_admin)]
    pub admins: Vec<NodeSpec>,
    /// How long node certificates are valid, in days (the CA: 10 years).
    #[arg(long, default_value_t = 825, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub days: u32,
    /// Replace an existing CA, or re-issue an existing node's certificate.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: ClusterArgs) -> ExitCode {
    match args.command {
        ClusterCommand::Init(a) => init(a),
        ClusterCommand::Status(a) => super::deploy::status(a),
    }
}

fn init(a: InitArgs) -> ExitCode {
    let all: Vec<NodeSpec> = a.nodes.iter().chain(&a.admins).cloned().collect();
    match pki::init(&a.out, &all, a.days, a.force) {
        Ok(w) => {
            if w.new_ca {
                println!("new cluster CA in {}", a.out.display());
            } else {
                println!("using the existing cluster CA in {}", a.out.display());
            }
            for f in &w.files {
                println!("  wrote {}", f.display());
            }
            if !a.admins.is_empty() {
                println!(
                    "give NAME.crt, NAME.key and ca.crt of an --admin to `vflow deploy` and `vflow cluster status` (--cert, --key, --ca)"
                );
            }
            if !a.nodes.is_empty() {
                println!(
                    "copy ca.crt, NAME.crt and NAME.key to each node (its cluster.tls); keep ca.key off the nodes"
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
