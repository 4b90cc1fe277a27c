//! `vflow deploy` and `vflow cluster status`: an operator's client of the
//! control API (docs/CLUSTER.md), with an operator identity made by
//! `vflow cluster init --admin NAME`.
//!
//! Exit codes: 0 done; 1 refused (the reason is printed), or a node did not
//! take the bundle; 2 usage, identity or connection error.

use crate::cluster::control::{Installed, NodeView, Status};
use crate::cluster::http;
use crate::cluster::tls::NodeTls;
use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where to connect and who the operator is.
#[derive(clap::Args, Debug, Clone)]
pub struct Identity {
    /// The node's control API (`cluster.control_listen`), HOST:PORT; for
    /// `deploy`, the central.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_host_port)]
    pub to: String,
    /// The operator certificate (`vflow cluster init --admin NAME` writes NAME.crt).
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,
    /// Its private key (NAME.key).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The cluster CA certificate (ca.crt): the only one trusted.
    #[arg(long, value_name = "FILE")]
    pub ca: PathBuf,
    /// The name the node's certificate must carry; default: HOST of --to
    /// (node certificates list the hosts given to `cluster init`).
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// The longest one request may take, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,
}

fn parse_host_port(s: &str) -> Result<String, String> {
    crate::cluster::check_host_port(s)?;
    Ok(s.to_string())
}

#[derive(clap::Args, Debug)]
pub struct DeployArgs {
    /// The bundle to deploy (`vflow build … -o site.vfb`).
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    #[command(flatten)]
    pub identity: Identity,
    /// How long to wait for the central's pushes to every node, in seconds
    /// (they go on in the background after that).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub wait: u64,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub identity: Identity,
    /// Print the nodes' status as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

struct Client {
    tls: Arc<rustls::ClientConfig>,
    name: String,
    addr: String,
    timeout: Duration,
}

impl Client {
    fn new(id: &Identity) -> Result<Client, String> {
        let me = NodeTls::load_admin(&id.ca, &id.cert, &id.key)?;
        let host = id
            .to
            .rsplit_once(':')
            .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
            .unwrap_or(&id.to);
        Ok(Client {
            tls: me.client_config()?,
            name: id.node.clone().unwrap_or_else(|| host.to_string()),
            addr: id.to.clone(),
            timeout: Duration::from_secs(id.timeout.max(1)),
        })
    }

    async fn ask(&self, method: Method, path: &str, body: Bytes) -> Result<http::Response, String> {
        http::request(
            self.tls.clone(),
            &self.name,
            &self.addr,
            method,
            path,
            body,
            self.timeout,
        )
        .await
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

pub fn deploy(a: DeployArgs) -> ExitCode {
    let bytes =
        match crate::bundles::read_file(&a.bundle, &vflow_compiler::bundle::Limits::default()) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
    let client = match Client::new(&a.identity) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    rt.block_on(async {
        let r = match client
            .ask(Method::PUT, "/v1/bundle", Bytes::from(bytes))
            .await
        {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        if r.status != StatusCode::OK {
            eprintln!(
                "error: {} refused the bundle ({}): {}",
                client.addr,
                r.status,
                r.text()
            );
            return ExitCode::from(1);
        }
        let installed: Installed = match serde_json::from_slice(&r.body) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("error: unreadable answer from {}: {e}", client.addr);
                return ExitCode::from(2);
            }
        };
        println!(
            "central {}: serial {} {}",
            client.addr,
            installed.serial,
            if installed.unchanged {
                "already active"
            } else {
                "active"
            }
        );
        // The central pushes in the background; wait for every node's result.
        let until = Instant::now() + Duration::from_secs(a.wait);
        let pushes = loop {
            let status = match client.ask(Method::GET, "/v1/status", Bytes::new()).await {
                Ok(r) if r.status == StatusCode::OK => {
                    serde_json::from_slice::<Status>(&r.body).ok()
                }
                _ => None,
            };
            let pushes = status.map(|s| s.pushes).unwrap_or_default();
            // Every node has an answer for this serial (taken or why not).
            let settled = pushes.iter().all(|p| p.serial == installed.serial);
            if settled || Instant::now() >= until {
                break pushes;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let mut failed = 0;
        if pushes.is_empty() {
            println!("no node has a `control` address at the central: nothing pushed");
        }
        for p in &pushes {
            if p.serial == installed.serial && p.ok {
                println!("  {}: serial {} {}", p.peer, p.serial, p.result);
            } else {
                failed += 1;
                let why = if p.serial == installed.serial {
                    p.result.clone()
                } else {
                    "not pushed yet".to_string()
                };
                println!(
                    "  {}: NOT taken: {why} (the central keeps retrying)",
                    p.peer
                );
            }
        }
        if failed > 0 {
            eprintln!(
                "error: {failed} node(s) do not run serial {} yet; see `vflow cluster status`",
                installed.serial
            );
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    })
}

pub fn status(a: StatusArgs) -> ExitCode {
    let client = match Client::new(&a.identity) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let rows: Vec<NodeView> =
        match rt.block_on(client.ask(Method::GET, "/v1/cluster", Bytes::new())) {
            Ok(r) if r.status == StatusCode::OK => match serde_json::from_slice(&r.body) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("error: unreadable answer from {}: {e}", client.addr);
                    return ExitCode::from(2);
                }
            },
            Ok(r) => {
                eprintln!("error: {} ({}): {}", client.addr, r.status, r.text());
                return ExitCode::from(1);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
    if a.json {
        match serde_json::to_string_pretty(&rows) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
        return ExitCode::SUCCESS;
    }
    print!("{}", table(&rows, crate::store::now_ms() / 1000));
    ExitCode::SUCCESS
}

/// The status table: node, role, state, bundle serial, outbox, last sync.
fn table(rows: &[NodeView], now_unix: i64) -> String {
    let mut lines = vec![[
        "NODE".to_string(),
        "ROLE".into(),
        "STATE".into(),
        "SERIAL".into(),
        "OUTBOX".into(),
        "LAST SYNC".into(),
    ]];
    for r in rows {
        let s = r.status.as_ref();
        let serial = match s {
            Some(s) => match &s.bundle {
                Some(b) => b.serial.to_string(),
                None => "source".into(),
            },
            None => "-".into(),
        };
        let outbox = match s {
            Some(s) if s.outbox.is_empty() => "0".to_string(),
            Some(s) => s
                .outbox
                .iter()
                .map(|(k, n)| format!("{k}:{n}"))
                .collect::<Vec<_>>()
                .join(" "),
            None => "-".into(),
        };
        let sync = match s {
            Some(s) if s.role == "central" => "(central)".to_string(),
            Some(s) => match s.last_sync_unix {
                Some(t) => format!("{}s ago", (now_unix - t).max(0)),
                None => "never".into(),
            },
            None => r.error.clone().unwrap_or_default(),
        };
        lines.push([
            r.node.clone(),
            r.role.clone(),
            r.state.clone(),
            serial,
            outbox,
            sync,
        ]);
    }
    let mut width = [0usize; 6];
    for l in &lines {
        for (i, c) in l.iter().enumerate().take(5) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for l in &lines {
        for (i, c) in l.iter().enumerate() {
            if i < 5 {
                out.push_str(&format!("{c:<w$}  ", w = width[i]));
            } else {
                out.push_str(c);
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::control::BundleInfo;

    #[test]
    fn the_status_table_shows_each_node_and_unreachable_ones() {
        let st = |role: &str, serial: u64, sync: Option<i64>| Status {
            node: "n".into(),
            role: role.into(),
            state: "active".into(),
            bundle: Some(BundleInfo {
                name: "site".into(),
                serial,
                sha256: "ab".into(),
            }),
            source: None,
            outbox: [("forward".to_string(), 2)].into_iter().collect(),
            last_sync_unix: sync,
            central_reachable: None,
            sync_error: None,
            settings_version: None,
            pushes: vec![],
        };
        let rows = vec![
            NodeView {
                node: "central".into(),
                role: "central".into(),
                state: "active".into(),
                status: Some(st("central", 7, None)),
                error: None,
            },
            NodeView {
                node: "site-1".into(),
                role: "distributed".into(),
                state: "active".into(),
                status: Some(st("distributed", 7, Some(990))),
                error: None,
            },
            NodeView {
                node: "backup".into(),
                role: "backup".into(),
                state: "unreachable".into(),
                status: None,
                error: Some("cannot connect".into()),
            },
        ];
        let t = table(&rows, 1000);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("NODE"), "{t}");
        assert!(
            lines[1].contains("central")
                && lines[1].contains(" 7 ")
                && lines[1].contains("forward:2"),
            "{t}"
        );
        assert!(
            lines[2].contains("site-1") && lines[2].contains("10s ago"),
            "{t}"
        );
        assert!(
            lines[3].contains("unreachable") && lines[3].contains("cannot connect"),
            "{t}"
        );
    }
}
