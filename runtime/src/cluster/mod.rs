//! The cluster (Small Community Network, DESIGN.md §5): a central node is the
//! store of record; backup and distributed nodes take calls and forward every
//! message they store to it.
//!
//! - [`pki`]: `vflow cluster init`, the cluster CA and node certificates.
//! - [`tls`]: mutual TLS with that CA only; peers identified by certificate.
//! - [`wire`]: a message as MIME (sans-IO build and checked parse).
//! - [`forward`]: backup/distributed: the `forward` outbox drained to the central.
//! - [`ingress`]: central: the SMTP ingress that stores forwarded messages once.
//! - [`control`]: the control API (bundles, settings, status) and its push/pull work.
//! - [`http`]: HTTP/1.1 over the mutual TLS, server and client.
//! - [`health`]: backup/distributed: the heartbeat (is the central answering?).
//! - [`failover`]: the backup's standby / active / handing-back machine, and
//!   what a node does now ([`Duty`]).
//!
//! Every node-to-node connection is mutual TLS with certificates of one
//! cluster CA; there is no plaintext path. [`start`] runs what the node's
//! role needs beside the SIP server.

pub mod control;
pub mod failover;
pub mod forward;
pub mod health;
pub mod http;
pub mod ingress;
pub mod pki;
pub mod tls;
pub mod wire;

use crate::config::{Config, Role};
use crate::store::Store;
pub use failover::Duty;
use tokio::sync::watch;

/// What the cluster services publish for the rest of the node.
#[derive(Debug, Clone)]
pub struct Running {
    /// The central's health (backup and distributed nodes only).
    pub health: Option<watch::Receiver<health::CentralHealth>>,
    /// What this node does now: always [`Duty::FULL`] on a standalone node
    /// and the central; a backup's follows its [`failover`] state.
    pub duty: watch::Receiver<Duty>,
}

impl Running {
    /// A node without cluster services: every duty, always.
    pub fn standalone() -> Running {
        let (tx, duty) = watch::channel(Duty::FULL);
        // The receiver keeps the last value once the sender is gone.
        drop(tx);
        Running { health: None, duty }
    }
}

/// Starts this node's cluster services by role (nothing when standalone):
/// the central's SMTP ingress, or a backup's or distributed node's
/// forwarder (which also turns on forwarding in the store, before any call),
/// heartbeat and duty (a backup's failover state machine).
/// Tasks run on the current tokio runtime until it stops.
pub async fn start(config: &Config, store: &Store) -> std::io::Result<Running> {
    let c = &config.cluster;
    if c.role == Role::Standalone {
        return Ok(Running::standalone());
    }
    let name = c.node_name(&config.node);
    let Some(tls_files) = &c.tls else {
        return Err(std::io::Error::other(
            "cluster: no `cluster.tls` (checked by the config)",
        ));
    };
    let tls = tls::NodeTls::load(tls_files, name)
        .map_err(|(k, why)| std::io::Error::other(format!("cluster.tls.{k}: {why}")))?;
    match c.role {
        Role::Standalone => Ok(Running::standalone()),
        Role::Central => {
            let Some(listen) = c.smtp_listen else {
                return Err(std::io::Error::other(
                    "cluster: no `smtp_listen` (checked by the config)",
                ));
            };
            let ingress = ingress::Ingress::bind(
                listen,
                &tls,
                c.peers.clone(),
                c.ingress.clone(),
                store.clone(),
            )
            .await
            .map_err(std::io::Error::other)?;
            let local = ingress.local_addr()?;
            tracing::info!(node = name, role = c.role.as_str(), smtp = %local, peers = c.peers.len(), "cluster: SMTP ingress listening (mutual TLS)");
            tokio::spawn(ingress.run());
            Ok(Running::standalone())
        }
        Role::Backup | Role::Distributed => {
            let Some((central, addr)) = c
                .central()
                .and_then(|p| p.smtp.as_deref().map(|a| (p.name.as_str(), a)))
            else {
                return Err(std::io::Error::other(
                    "cluster: no central with `smtp` (checked by the config)",
                ));
            };
            let f = forward::Forwarder::new(&c.forward, &tls, central, addr)
                .map_err(std::io::Error::other)?;
            store.set_forwarding(true);
            tracing::info!(
                node = name,
                role = c.role.as_str(),
                central,
                smtp = addr,
                "cluster: forwarding every message to the central (mutual TLS)"
            );
            let wake = std::sync::Arc::new(tokio::sync::Notify::new());
            tokio::spawn(forward::run(store.clone(), f, wake.clone()));
            let probe = health::Probe::new(&tls, central, addr).map_err(std::io::Error::other)?;
            let (htx, hrx) = health::channel(c.failover_after);
            tracing::info!(
                central,
                every_ms = c.heartbeat.as_millis() as u64,
                failover_after = c.failover_after,
                "cluster: heartbeat to the central"
            );
            tokio::spawn(health::run(probe, c.heartbeat, c.failover_after, htx));
            tokio::spawn(forward::wake_on_reachable(store.clone(), hrx.clone(), wake));
            let duty = if c.role == Role::Backup {
                let (dtx, duty) = watch::channel(failover::State::Standby.duty());
                tokio::spawn(failover::run(store.clone(), hrx.clone(), dtx, c.heartbeat));
                duty
            } else {
                let (dtx, duty) = watch::channel(Duty::distributed(health::Reach::Unknown));
                tokio::spawn(failover::run_distributed(hrx.clone(), dtx));
                duty
            };
            Ok(Running {
                health: Some(hrx),
                duty,
            })
        }
    }
}

/// Whether `name` can name a node: a lowercase DNS name (it is the DNS name
/// and CN of the node's certificate), with at least one letter.
pub fn check_node_name(name: &str) -> Result<(), String> {
    let ok_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(ok_label) {
        return Err(
            "use lowercase letters, digits, `-` and `.` (a DNS name, as in its certificate)".into(),
        );
    }
    if !name.chars().any(|c| c.is_ascii_lowercase()) {
        return Err("a node name needs a letter (it must not look like an address)".into());
    }
    Ok(())
}

/// Whether `s` is `host:port` (a name, an IPv4 address or `[v6]`, and a port).
pub fn check_host_port(s: &str) -> Result<(), String> {
    let bad = || format!("`{s}` is not HOST:PORT, e.g. `127.0.0.1:2525` or `central.example:2525`");
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if port == 0 || host.is_empty() {
        return Err(bad());
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
    } else if host.contains(':') || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_and_addresses() {
        for ok in ["central", "site-2", "vm.example.org", "a1"] {
            assert!(check_node_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Central", "-a", "a-", "a..b", "10.0.0.1", "a_b", "a b"] {
            assert!(check_node_name(bad).is_err(), "{bad}");
        }
        for ok in ["127.0.0.1:2525", "central.example:25", "[::1]:2525"] {
            assert!(check_host_port(ok).is_ok(), "{ok}");
        }
        for bad in ["127.0.0.1", ":25", "host:0", "host:x", "::1:25", "a b:25"] {
            assert!(check_host_port(bad).is_err(), "{bad}");
        }
    }
}
