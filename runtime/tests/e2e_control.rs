//! End-to-end test of the cluster control API: three `vflow serve`
//! processes on loopback (central, backup, distributed `site-1`), each with
//! its own ports and data directory, certificates and an operator identity
//! from `vflow cluster init`, bundles from `vflow keygen` and `vflow build`.
//!
//! - `vflow deploy` to the central reaches every node (`cluster status`);
//! - a node that was down when a bundle was deployed pulls it when it starts;
//! - a tampered bundle, a bundle signed by an untrusted key and a client
//!   with a foreign-CA certificate are refused;
//! - a mailbox created on the central appears, with its PIN, on the others.
//!
//! Every wait is bounded (polling a condition, never timing one); children
//! are killed on drop. A failing test keeps its directory;
//! `VFLOW_E2E_KEEP=1` keeps it always.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

mod common;
use common::cluster::eventually;
use common::*;

/// The longest any one condition is waited for.
const WITHIN: Duration = Duration::from_secs(60);

/// A command's whole output (common's `run` splits it; the exit status is kept here).
fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(cmd: &mut Command) -> String {
    let o = output(cmd);
    assert!(o.status.success(), "{cmd:?} failed:\n{}", text(&o));
    text(&o)
}

/// A `vflow serve` child, killed on drop, its output in `server.log`.
struct Node {
    child: Option<Child>,
    dir: PathBuf,
    config: PathBuf,
}

impl Node {
    fn start(dir: &Path, name: &str, config: &str) -> Node {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).expect("create the node directory");
        let path = dir.join("vflow.yaml");
        std::fs::write(&path, config).expect("write the config");
        let mut node = Node {
            child: None,
            dir,
            config: path,
        };
        node.spawn();
        node
    }

    fn spawn(&mut self) {
        // Append: a restarted node keeps its earlier log.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .expect("open the log");
        let child = vflow()
            .args(["serve", "--config"])
            .arg(&self.config)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone a file handle"))
            .stderr(log)
            .spawn()
            .expect("start vflow serve");
        self.child = Some(child);
        assert!(
            self.wait_log("vflow is listening"),
            "vflow serve did not listen:\n{}",
            self.log()
        );
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        strip_ansi(&std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default())
    }

    fn wait_log(&self, needle: &str) -> bool {
        eventually(WITHIN, || self.log().contains(needle))
    }

    fn store(&self) -> vflow_runtime::store::Store {
        vflow_runtime::store::Store::open(&self.dir.join("data")).expect("open the store")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The node's configuration: it runs `bundle` (checked against `site.pub`).
fn config(d: &Path, name: &str, ports: Ports, cluster: &str) -> String {
    let (rtp_first, rtp_last) = ports.rtp();
    let pki = d.join("pki");
    format!(
        "node:\n  name: {name}\n  data_dir: data\n  time_zone: UTC\n\
         flows:\n  bundle: active.vfb\n  trusted_keys: [{key}]\n  engine: interp\n\
         sip:\n  listen: 127.0.0.1:{sip}\n\
         rtp:\n  ports: {rtp_first}-{rtp_last}\n\
         shutdown:\n  grace: 1s\n\
         cluster:\n  tls:\n    ca: {ca}\n    cert: {cert}\n    key: {tkey}\n{cluster}",
        key = d.join("site.pub").display(),
        sip = ports.sip(),
        ca = pki.join("ca.crt").display(),
        cert = pki.join(format!("{name}.crt")).display(),
        tkey = pki.join(format!("{name}.key")).display(),
    )
}

/// Operator commands against `control` with the identity in `pki`.
fn as_operator(cmd: &mut Command, pki: &Path, control: u16) {
    cmd.args(["--to", &format!("127.0.0.1:{control}")])
        .arg("--cert")
        .arg(pki.join("ops.crt"))
        .arg("--key")
        .arg(pki.join("ops.key"))
        .arg("--ca")
        .arg(pki.join("ca.crt"));
}

/// `vflow cluster status --json` as the operator: node name → (state, serial).
fn cluster_status(pki: &Path, control: u16) -> Vec<(String, String, Option<u64>)> {
    let mut cmd = vflow();
    cmd.args(["cluster", "status", "--json"]);
    as_operator(&mut cmd, pki, control);
    let o = output(&mut cmd);
    assert!(o.status.success(), "cluster status failed:\n{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("cluster status prints JSON");
    v.as_array()
        .expect("a list of nodes")
        .iter()
        .map(|n| {
            (
                n["node"].as_str().unwrap_or_default().to_string(),
                n["state"].as_str().unwrap_or_default().to_string(),
                n["status"]["bundle"]["serial"].as_u64(),
            )
        })
        .collect()
}

fn serials(pki: &Path, control: u16) -> Vec<(String, Option<u64>)> {
    cluster_status(pki, control)
        .into_iter()
        .map(|(n, _, s)| (n, s))
        .collect()
}

fn all_at(pki: &Path, control: u16, serial: u64) -> bool {
    let s = serials(pki, control);
    s.len() == 3 && s.iter().all(|(_, v)| *v == Some(serial))
}

/// A client that trusts the cluster CA but presents `foreign`'s operator
/// certificate: asks the central's status over raw rustls.
fn foreign_client(ca: &Path, foreign: &Path, port: u16) -> Result<String, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use std::io::{Read, Write};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(ca).expect("the CA"))
        .expect("a CA certificate");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![CertificateDer::from_pem_file(foreign.join("ops.crt")).expect("a certificate")],
            PrivateKeyDer::from_pem_file(foreign.join("ops.key")).expect("a key"),
        )
        .expect("a client identity");
    let conn = rustls::ClientConnection::new(
        std::sync::Arc::new(cfg),
        ServerName::try_from("127.0.0.1").expect("a name"),
    )
    .map_err(|e| e.to_string())?;
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"GET /v1/status HTTP/1.1\r\nhost: central\r\nconnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    tls.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    Ok(answer)
}

#[test]
fn deploy_pull_refusals_and_settings_sync_across_three_nodes() {
    let d = Dir::new("e2e-control", "three");
    let d = d.0.as_path();
    let pki = d.join("pki");
    let foreign = d.join("foreign");
    ok(vflow().args(["cluster", "init", "--out"]).arg(&pki).args([
        "--node", "central", "--node", "backup", "--node", "site-1", "--admin", "ops",
    ]));
    ok(vflow()
        .args(["cluster", "init", "--out"])
        .arg(&foreign)
        .args(["--node", "central", "--admin", "ops"]));
    ok(vflow().args(["keygen", "--out"]).arg(d.join("site.key")));
    ok(vflow().args(["keygen", "--out"]).arg(d.join("other.key")));
    let flows = repo().join("flows");
    let build = |serial: u64, key: &str| {
        let out = d.join(format!("s{serial}-{key}.vfb"));
        ok(vflow()
            .arg("build")
            .arg(&flows)
            .arg("-o")
            .arg(&out)
            .arg("--key")
            .arg(d.join(format!("{key}.key")))
            .args(["--serial", &serial.to_string(), "--name", "site"]));
        out
    };
    let s1 = build(1, "site");
    let s2 = build(2, "site");
    let s3 = build(3, "site");
    let s4 = build(4, "site");
    let untrusted = build(10, "other");

    // Ports: SIP/RTP per node; the central's SMTP and every control API.
    let (pc, pb, ps) = (
        Ports::allocate(71),
        Ports::allocate(72),
        Ports::allocate(73),
    );
    let (c_ctl, b_ctl, s_ctl, smtp) = (pc.spare(0), pb.spare(0), ps.spare(0), pc.spare(1));
    for (n, p) in [("central", pc), ("backup", pb), ("site-1", ps)] {
        let _ = p;
        std::fs::create_dir_all(d.join(n)).unwrap();
        std::fs::copy(&s1, d.join(n).join("active.vfb")).unwrap();
    }
    let central_cfg = config(
        d,
        "central",
        pc,
        &format!(
            "  role: central\n  smtp_listen: 127.0.0.1:{smtp}\n  control_listen: 127.0.0.1:{c_ctl}\n\
             \x20 control:\n    retry_first: 1h\n    retry_max: 1h\n\
             \x20 peers:\n    - {{name: backup, role: backup, control: 127.0.0.1:{b_ctl}}}\n\
             \x20   - {{name: site-1, role: distributed, control: 127.0.0.1:{s_ctl}}}\n"
        ),
    );
    let node_cfg = |name: &str, role: &str, p: Ports, ctl: u16| {
        config(
            d,
            name,
            p,
            &format!(
                "  role: {role}\n  control_listen: 127.0.0.1:{ctl}\n  control:\n    pull_every: 1s\n\
                 \x20 peers:\n    - {{name: central, role: central, smtp: 127.0.0.1:{smtp}, control: 127.0.0.1:{c_ctl}}}\n"
            ),
        )
    };
    let central = Node::start(d, "central", &central_cfg);
    let _backup = Node::start(d, "backup", &node_cfg("backup", "backup", pb, b_ctl));
    let mut site = Node::start(d, "site-1", &node_cfg("site-1", "distributed", ps, s_ctl));
    assert!(
        eventually(WITHIN, || all_at(&pki, c_ctl, 1)),
        "{:?}",
        serials(&pki, c_ctl)
    );

    // Deploy once: the central activates it and pushes it to both nodes.
    let mut deploy = vflow();
    deploy.arg("deploy").arg(&s2);
    as_operator(&mut deploy, &pki, c_ctl);
    let out = ok(&mut deploy);
    assert!(out.contains("serial 2 active"), "{out}");
    assert!(
        out.contains("backup: serial 2") && out.contains("site-1: serial 2"),
        "{out}"
    );
    assert!(
        eventually(WITHIN, || all_at(&pki, c_ctl, 2)),
        "{:?}",
        serials(&pki, c_ctl)
    );
    let table = {
        let mut cmd = vflow();
        cmd.args(["cluster", "status"]);
        as_operator(&mut cmd, &pki, c_ctl);
        ok(&mut cmd)
    };
    assert!(table.starts_with("NODE"), "{table}");
    for n in ["central", "backup", "site-1"] {
        assert!(
            table.lines().any(|l| l.starts_with(n) && l.contains(" 2 ")),
            "{n}:\n{table}"
        );
    }
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("backup") && l.contains("standby")),
        "{table}"
    );

    // site-1 is down for the next deploy: the push fails (and the central
    // would retry only in an hour); when it starts again it pulls serial 3.
    site.stop();
    let mut deploy = vflow();
    deploy.arg("deploy").arg(&s3);
    as_operator(&mut deploy, &pki, c_ctl);
    let o = output(&mut deploy);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("backup: serial 3"), "{out}");
    assert!(out.contains("site-1: NOT taken"), "{out}");
    let down = cluster_status(&pki, c_ctl);
    assert!(
        down.iter()
            .any(|(n, s, _)| n == "site-1" && s == "unreachable"),
        "{down:?}"
    );
    site.spawn();
    assert!(
        site.wait_log("bundle pulled from the central"),
        "{}",
        site.log()
    );
    assert!(
        eventually(WITHIN, || all_at(&pki, c_ctl, 3)),
        "{:?}",
        serials(&pki, c_ctl)
    );

    // A tampered bundle: refused by the central's own check, nothing changes.
    let mut bytes = std::fs::read(&s4).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    let tampered = d.join("tampered.vfb");
    std::fs::write(&tampered, bytes).unwrap();
    let mut deploy = vflow();
    deploy.arg("deploy").arg(&tampered);
    as_operator(&mut deploy, &pki, c_ctl);
    let o = output(&mut deploy);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("422"), "{}", text(&o));
    // Signed by a key no node trusts.
    let mut deploy = vflow();
    deploy.arg("deploy").arg(&untrusted);
    as_operator(&mut deploy, &pki, c_ctl);
    let o = output(&mut deploy);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("422"), "{}", text(&o));
    assert!(
        central.wait_log("event=\"bundle_refused\"") || central.log().contains("bundle_refused")
    );
    assert!(all_at(&pki, c_ctl, 3), "{:?}", serials(&pki, c_ctl));

    // A client whose certificate is from another CA: the TLS handshake is refused.
    let mut deploy = vflow();
    deploy
        .arg("deploy")
        .arg(&s4)
        .args(["--to", &format!("127.0.0.1:{c_ctl}")])
        .arg("--cert")
        .arg(foreign.join("ops.crt"))
        .arg("--key")
        .arg(foreign.join("ops.key"))
        .arg("--ca")
        .arg(pki.join("ca.crt"));
    let o = output(&mut deploy);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("not a certificate of this CA"),
        "{}",
        text(&o)
    );
    // The CLI refuses it before connecting; a client that presents it anyway
    // is refused by the central's TLS handshake.
    let e = foreign_client(&pki.join("ca.crt"), &foreign, c_ctl).unwrap_err();
    assert!(
        e.to_lowercase().contains("certificate") || e.contains("alert"),
        "{e}"
    );
    assert!(central.wait_log("control_tls_refused"), "{}", central.log());
    // A node may not deploy to the central: only operators may.
    let mut deploy = vflow();
    deploy
        .arg("deploy")
        .arg(&s4)
        .args(["--to", &format!("127.0.0.1:{c_ctl}")])
        .arg("--cert")
        .arg(pki.join("backup.crt"))
        .arg("--key")
        .arg(pki.join("backup.key"))
        .arg("--ca")
        .arg(pki.join("ca.crt"));
    let o = output(&mut deploy);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--admin"), "{}", text(&o));
    assert!(all_at(&pki, c_ctl, 3), "{:?}", serials(&pki, c_ctl));

    // Settings: a mailbox with a PIN made on the central appears on both nodes.
    ok(vflow()
        .args(["mailbox", "--data-dir"])
        .arg(central.dir.join("data"))
        .args(["add", "301", "--name", "Carol", "--pin", "731946"]));
    for n in ["backup", "site-1"] {
        let data = d.join(n);
        let found = eventually(WITHIN, || {
            let s = vflow_runtime::store::Store::open(&data.join("data")).expect("open the store");
            vflow_runtime::voicemail::mailbox(&s, "301")
                .ok()
                .flatten()
                .is_some_and(|m| m.name == "Carol" && m.has_pin())
        });
        assert!(found, "mailbox 301 did not reach {n}");
    }
    let _ = site.store();
}
