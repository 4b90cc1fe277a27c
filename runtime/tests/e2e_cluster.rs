//! End-to-end tests of the cluster: two `vflow serve` processes on loopback
//! (a central and a distributed node, each with its own ports and data
//! directory), certificates from `vflow cluster init`, and sipp leaving a
//! message on the distributed node (tests/sipp/leave_message.xml). The
//! message must reach the central's store exactly once and leave the
//! distributed node; with the central down at first it waits in the
//! distributed node's outbox and is delivered once the central starts.
//!
//! Every wait is bounded and every child is killed on drop. Without sipp a
//! test prints why and passes, unless `CI` is set. A failing test keeps its
//! directory; `VFLOW_E2E_KEEP=1` keeps them all.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::cluster::{eventually, init_pki, tls};
use common::*;

/// One `vflow serve` node.
struct Node {
    proc: Proc,
    dir: PathBuf,
    ports: Ports,
}

impl Node {
    /// `cluster`: the node's `cluster:` section, indented under it.
    fn start(dir: &Path, name: &str, ports: Ports, cluster: &str) -> Node {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).expect("create the node directory");
        let (rtp_first, rtp_last) = ports.rtp();
        let root = repo();
        let config = format!(
            "# written by runtime/tests/e2e_cluster.rs\n\
             node:\n  name: {name}\n  data_dir: {data}\n  time_zone: UTC\n\
             flows:\n  paths: [{flows}, {test_flows}]\n  engine: jit\n\
             sip:\n  listen: 127.0.0.1:{sip}\n  trusted_peers: [127.0.0.0/8]\n\
             rtp:\n  ports: {rtp_first}-{rtp_last}\n  timeout: 20s\n\
             shutdown:\n  grace: 2s\n\
             voicemail:\n  mailboxes:\n    - {{id: \"201\"}}\n\
             cluster:\n{cluster}",
            data = dir.join("data").display(),
            flows = root.join("flows").display(),
            test_flows = root.join("tests/flows").display(),
            sip = ports.sip(),
        );
        let config_path = dir.join("vflow.yaml");
        std::fs::write(&config_path, config).expect("write the config");
        let proc = Proc::spawn(
            Command::new(env!("CARGO_BIN_EXE_vflow"))
                .args(["serve", "--config"])
                .arg(&config_path)
                .env("NO_COLOR", "1")
                .env_remove("RUST_LOG")
                .current_dir(&dir),
            dir.join("server.log"),
        );
        let node = Node { proc, dir, ports };
        assert!(
            node.wait_log("vflow is listening", Duration::from_secs(30)),
            "vflow serve ({name}) did not listen:\n{}",
            node.log()
        );
        node
    }

    fn log(&self) -> String {
        self.proc.output()
    }

    fn wait_log(&self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.log().contains(needle)
    }

    fn store(&self) -> vflow_runtime::store::Store {
        vflow_runtime::store::Store::open(&self.dir.join("data")).expect("open the store")
    }

    /// Messages of 201 and pending forward entries, as stored now.
    fn counts(&self) -> (usize, usize) {
        let s = self.store();
        (
            s.messages("201", None).expect("list the messages").len(),
            s.outbox_due("forward", i64::MAX, 100)
                .expect("read the outbox")
                .len(),
        )
    }

    /// sipp leaves a message of real speech in 201 (about 16 s).
    fn leave_message(&self, tag: &str) {
        let (passed, out) = run_sipp(
            &self.dir,
            self.ports,
            "leave_message.xml",
            "vm-201",
            tag,
            40,
        );
        assert!(
            passed,
            "leaving a message failed:\n{out}\n--- server ---\n{}",
            self.log()
        );
        assert!(
            self.wait_log("message stored", Duration::from_secs(5)),
            "{}",
            self.log()
        );
    }
}

fn central(dir: &Path, pki: &Path, ports: Ports, smtp: u16) -> Node {
    let node = Node::start(
        dir,
        "central",
        ports,
        &format!(
            "  role: central\n{}  smtp_listen: 127.0.0.1:{smtp}\n  peers:\n    - {{name: site-1, role: distributed}}\n",
            tls(pki, "central")
        ),
    );
    assert!(
        node.wait_log("cluster: SMTP ingress listening", Duration::from_secs(5)),
        "{}",
        node.log()
    );
    node
}

fn site(dir: &Path, pki: &Path, ports: Ports, smtp: u16) -> Node {
    Node::start(
        dir,
        "site-1",
        ports,
        &format!(
            "  role: distributed\n{}  peers:\n    - {{name: central, role: central, smtp: 127.0.0.1:{smtp}}}\n  forward:\n    retry_first: 200ms\n    retry_max: 1s\n",
            tls(pki, "site-1")
        ),
    )
}

/// A message left on the distributed node is stored on the central once,
/// with its audio, and leaves the distributed node.
#[test]
fn a_message_left_on_a_distributed_node_is_stored_once_on_the_central() {
    if !have_sipp("a_message_left_on_a_distributed_node_is_stored_once_on_the_central") {
        return;
    }
    let dir = Dir::new("e2e-cluster", "forward");
    let pki = init_pki(&dir.0, &["central", "site-1"]);
    let (cp, sp) = (Ports::allocate(311), Ports::allocate(313));
    let smtp = cp.spare(0);
    let central = central(&dir.0, &pki, cp, smtp);
    let site = site(&dir.0, &pki, sp, smtp);
    site.leave_message("forward");
    assert!(
        central.wait_log("cluster: forwarded message stored", Duration::from_secs(20)),
        "{}\n--- site-1 ---\n{}",
        central.log(),
        site.log()
    );
    assert!(
        eventually(Duration::from_secs(10), || site.counts() == (0, 0)),
        "site-1 still holds {:?} (messages, pending forwards):\n{}",
        site.counts(),
        site.log()
    );
    let store = central.store();
    let msgs = store.messages("201", None).expect("list the messages");
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    let m = &msgs[0];
    assert_eq!(m.origin_node, "site-1");
    assert!(m.duration_ms > 5_000, "{m:?}");
    let wav = std::fs::read(store.message_path("201", &m.id)).expect("the WAV");
    assert_eq!(&wav[..4], b"RIFF");
    // The central knows it by the id site-1 gave it, once.
    assert!(central.log().contains(&m.id));
    assert!(!central.log().contains("already stored"));
    // Logged after the commit that removes the local copy: wait, do not race it.
    assert!(
        site.wait_log("forward: accepted by the central", Duration::from_secs(10)),
        "{}",
        site.log()
    );
}

/// The central is down while the message is left: it waits in site-1's
/// outbox (retried with backoff), and is stored once when the central starts.
#[test]
fn with_the_central_down_the_message_waits_and_arrives_once_it_is_up() {
    if !have_sipp("with_the_central_down_the_message_waits_and_arrives_once_it_is_up") {
        return;
    }
    let dir = Dir::new("e2e-cluster", "down");
    let pki = init_pki(&dir.0, &["central", "site-1"]);
    let (cp, sp) = (Ports::allocate(317), Ports::allocate(319));
    let smtp = cp.spare(0);
    let site = site(&dir.0, &pki, sp, smtp);
    site.leave_message("down");
    assert!(
        site.wait_log(
            "forward: not delivered; will retry",
            Duration::from_secs(10)
        ),
        "{}",
        site.log()
    );
    assert_eq!(
        site.counts(),
        (1, 1),
        "held in the outbox while the central is down"
    );
    let central = central(&dir.0, &pki, cp, smtp);
    assert!(
        central.wait_log("cluster: forwarded message stored", Duration::from_secs(20)),
        "{}\n--- site-1 ---\n{}",
        central.log(),
        site.log()
    );
    assert!(
        eventually(Duration::from_secs(10), || site.counts() == (0, 0)),
        "site-1 still holds {:?}:\n{}",
        site.counts(),
        site.log()
    );
    assert_eq!(central.counts().0, 1, "exactly once on the central");
}
