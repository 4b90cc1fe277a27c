//! Multi-process helpers for cluster tests: child processes killed on drop,
//! test directories kept on failure, `vflow cluster init`, and `vflow serve`
//! nodes with their own ports and data directories.

use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// `vflow cluster init` for `nodes`; the PKI directory.
pub fn init_pki(dir: &Path, nodes: &[&str]) -> PathBuf {
    let pki = dir.join("pki");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vflow"));
    cmd.args(["cluster", "init", "--out"]).arg(&pki);
    for n in nodes {
        cmd.args(["--node", n]);
    }
    let out = cmd.output().expect("run vflow cluster init");
    assert!(
        out.status.success(),
        "vflow cluster init failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    pki
}

/// The `tls:` lines of a node's `cluster:` section.
pub fn tls(pki: &Path, name: &str) -> String {
    format!(
        "  tls:\n    ca: {p}/ca.crt\n    cert: {p}/{name}.crt\n    key: {p}/{name}.key\n",
        p = pki.display()
    )
}

/// Waits until `f` holds or `within` passes; whether it held.
pub fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// How a node is set up besides its `cluster:` section.
#[derive(Default, Clone)]
pub struct Extra {
    /// Appended to mailbox 201's flow mapping, e.g. `, mwi: "sip:201@…"`.
    pub mailbox: String,
    /// Top-level sections appended to the config (e.g. `mwi:` settings).
    pub sections: String,
}

/// `vflow serve --config CONFIG` in `dir`, logging to the first free
/// `server.log`, `server-2.log`, …
fn serve(dir: &Path, config: &Path) -> Proc {
    let mut n = 1;
    let mut log = dir.join("server.log");
    while log.exists() {
        n += 1;
        log = dir.join(format!("server-{n}.log"));
    }
    Proc::spawn(
        Command::new(env!("CARGO_BIN_EXE_vflow"))
            .args(["serve", "--config"])
            .arg(config)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .current_dir(dir),
        log,
    )
}

/// One `vflow serve` node.
pub struct Node {
    pub proc: Proc,
    pub dir: PathBuf,
    pub ports: Ports,
    pub name: String,
    config: PathBuf,
}

impl Node {
    /// Writes the config (`cluster`: the node's `cluster:` section, indented
    /// under it) and starts the node; returns once it listens.
    pub fn start(dir: &Path, name: &str, ports: Ports, cluster: &str, extra: &Extra) -> Node {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).expect("create the node directory");
        let (rtp_first, rtp_last) = ports.rtp();
        let root = repo();
        let config = format!(
            "# written by a runtime/tests cluster test\n\
             node:\n  name: {name}\n  data_dir: {data}\n  time_zone: UTC\n\
             flows:\n  paths: [{flows}, {test_flows}]\n  engine: jit\n\
             sip:\n  listen: 127.0.0.1:{sip}\n  trusted_peers: [127.0.0.0/8]\n\
             rtp:\n  ports: {rtp_first}-{rtp_last}\n  timeout: 20s\n\
             shutdown:\n  grace: 2s\n\
             voicemail:\n  mailboxes:\n    - {{id: \"201\"{mailbox}}}\n\
             {sections}\
             cluster:\n{cluster}",
            data = dir.join("data").display(),
            flows = root.join("flows").display(),
            test_flows = root.join("tests/flows").display(),
            sip = ports.sip(),
            mailbox = extra.mailbox,
            sections = extra.sections,
        );
        let config_path = dir.join("vflow.yaml");
        std::fs::write(&config_path, config).expect("write the config");
        let node = Node {
            proc: serve(&dir, &config_path),
            dir,
            ports,
            name: name.to_string(),
            config: config_path,
        };
        node.wait_listening();
        node
    }

    /// Starts the node again (after [`Proc::kill`]) with the same config and
    /// data; the log goes to a new file per start (`server-2.log`, …).
    pub fn restart(&mut self) {
        self.proc.kill();
        self.proc = serve(&self.dir, &self.config);
        self.wait_listening();
    }

    fn wait_listening(&self) {
        assert!(
            self.wait_log("vflow is listening", Duration::from_secs(30)),
            "vflow serve ({}) did not listen:\n{}",
            self.name,
            self.log()
        );
    }

    /// The current run's log.
    pub fn log(&self) -> String {
        self.proc.output()
    }

    pub fn wait_log(&self, needle: &str, within: Duration) -> bool {
        eventually(within, || self.log().contains(needle))
    }

    pub fn store(&self) -> vflow_runtime::store::Store {
        vflow_runtime::store::Store::open(&self.dir.join("data")).expect("open the store")
    }

    /// Messages of 201 and pending forward entries, as stored now.
    pub fn counts(&self) -> (usize, usize) {
        let s = self.store();
        (
            s.messages("201", None).expect("list the messages").len(),
            s.outbox_due("forward", i64::MAX, 100)
                .expect("read the outbox")
                .len(),
        )
    }

    /// Runs a sipp scenario against this node as a UAC (`-m 1`), its own
    /// ports from `sipp_ports`; its output and whether it passed.
    pub fn sipp(
        &self,
        scenario_file: &str,
        service: &str,
        tag: &str,
        within: u64,
    ) -> (bool, String) {
        run_sipp(&self.dir, self.ports, scenario_file, service, tag, within)
    }

    /// sipp leaves a message of real speech in 201 (about 16 s).
    pub fn leave_message(&self, tag: &str) {
        let before = self.log().matches("message stored").count();
        let (ok, out) = self.sipp("leave_message.xml", "vm-201", tag, 40);
        assert!(
            ok,
            "leaving a message on {} failed:\n{out}\n--- server ---\n{}",
            self.name,
            self.log()
        );
        assert!(
            eventually(Duration::from_secs(5), || self
                .log()
                .matches("message stored")
                .count()
                > before),
            "{}",
            self.log()
        );
    }
}
