//! End-to-end: `vflow serve` from a signed bundle, reloaded while a call is
//! in progress, driven by sipp (Debian package `sip-tester`).
//!
//! - A call that started on serial 1 finishes on serial 1's flow after
//!   `vflow reload` activated serial 2; the next call runs serial 2's flow.
//! - Serial 1's code is unloaded once no call runs on it and it is no longer
//!   kept for a rollback.
//! - A tampered bundle file is refused (exit 1, the failed check named) and
//!   the server keeps serving the serial it had; a rollback goes back one.
//!
//! Bundles and keys are made with `vflow keygen` and `vflow build`, as an
//! operator would. Every wait is bounded. Without sipp the test prints why and
//! passes, unless `CI` is set. A failing test keeps its directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::*;

/// One flow, `NAME`, at the start point `named "reload-test"`, playing the
/// one-second e2e tone `seconds` times; built into `out` with `serial`.
fn build(dir: &Path, key: &Path, name: &str, seconds: usize, serial: u64, out: &Path) {
    let src = dir.join(format!("src-{name}-{serial}"));
    std::fs::create_dir_all(src.join("prompts")).unwrap();
    std::fs::copy(
        repo().join("tests/flows/prompts/e2e-tone.wav"),
        src.join("prompts/e2e-tone.wav"),
    )
    .unwrap();
    let tones = vec!["\"e2e-tone.wav\""; seconds].join(" ");
    std::fs::write(
        src.join("reload.vflow"),
        format!(
            "// written by runtime/tests/e2e_reload.rs\nflow {name} {{\n  start named \"reload-test\" -> tone\n  play tone {{ prompt {tones}  on next -> bye }}\n  hangup bye\n}}\n"
        ),
    )
    .unwrap();
    let (code, o, e) = run(vflow()
        .arg("build")
        .arg(&src)
        .arg("-o")
        .arg(out)
        .arg("--key")
        .arg(key)
        .args(["--name", "site", "--serial", &serial.to_string()]));
    assert_eq!(code, 0, "vflow build:\n{o}{e}");
}

/// Puts `from` in place of the served bundle file the way a deployment
/// should: a copy beside it, renamed over it.
fn install(from: &Path, bundle: &Path) {
    let tmp = bundle.with_extension("vfb.new");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, bundle).unwrap();
}

/// A running `vflow serve`, killed when dropped.
struct Server {
    child: Option<Child>,
    dir: PathBuf,
    config: PathBuf,
    log: PathBuf,
    ports: Ports,
}

impl Server {
    fn start(dir: &Path, bundle: &Path, public: &Path) -> Server {
        let ports = Ports::allocate(5);
        let (rtp_first, rtp_last) = ports.rtp();
        let config = dir.join("vflow.yaml");
        std::fs::write(
            &config,
            format!(
                "# written by runtime/tests/e2e_reload.rs\n\
                 node:\n  name: e2e-reload\n  data_dir: {data}\n\
                 flows:\n  bundle: {bundle}\n  trusted_keys: [{public}]\n  engine: jit\n\
                 sip:\n  listen: 127.0.0.1:{sip}\n  trusted_peers: [127.0.0.0/8]\n\
                 rtp:\n  ports: {rtp_first}-{rtp_last}\n  timeout: 20s\n\
                 shutdown:\n  grace: 2s\n",
                data = dir.join("data").display(),
                bundle = bundle.display(),
                public = public.display(),
                sip = ports.sip(),
            ),
        )
        .unwrap();
        let log = dir.join("server.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = vflow()
            .args(["serve", "--config"])
            .arg(&config)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("start vflow serve");
        let mut server = Server {
            child: Some(child),
            dir: dir.to_path_buf(),
            config,
            log,
            ports,
        };
        if !server.wait_log("vflow is listening", Duration::from_secs(30)) {
            let status = server.child.as_mut().and_then(|c| c.try_wait().ok());
            panic!(
                "vflow serve did not listen (status {status:?}):\n{}",
                server.log()
            );
        }
        server
    }

    fn log(&self) -> String {
        strip_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default())
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

    /// `vflow reload --config … ARGS`: (exit code, stdout, stderr).
    fn reload(&self, args: &[&str]) -> (i32, String, String) {
        run(vflow()
            .arg("reload")
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .current_dir(&self.dir))
    }

    /// SIGTERM, then a clean exit within 10 s.
    fn stop(&mut self) {
        let mut child = self.child.take().expect("running");
        send_signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        assert!(
            status.is_some_and(|s| s.success()),
            "vflow serve did not stop cleanly ({status:?}):\n{}",
            self.log()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() || std::env::var_os("VFLOW_E2E_KEEP").is_some() {
            eprintln!("test files kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// One sipp call to `reload-test` (tests/sipp/answer_play.xml: answer,
/// listen, take the server's BYE), from its own SIP and media ports so
/// that calls can overlap. Its Call-ID is `TAG-1`.
struct Call {
    child: Child,
    tag: String,
    dir: PathBuf,
}

impl Call {
    fn start(server: &Server, tag: &str, sip_port: u16, media_port: u16, rtp_port: u16) -> Call {
        let screen = std::fs::File::create(server.dir.join(format!("sipp-{tag}.log"))).unwrap();
        let child = Command::new("sipp")
            .arg(format!("127.0.0.1:{}", server.ports.sip()))
            .arg("-sf")
            .arg(scenario("answer_play.xml"))
            .args(["-s", "reload-test", "-m", "1", "-l", "1", "-r", "1"])
            .args(["-i", "127.0.0.1", "-p", &sip_port.to_string()])
            .args(["-mi", "127.0.0.1", "-mp", &media_port.to_string()])
            .args(["-key", "rtp_port", &rtp_port.to_string()])
            .args(["-cid_str", &format!("{tag}-%u")])
            .args(["-timeout", "30s", "-timeout_error", "-nostdin"])
            .args(["-max_retrans", "5", "-trace_err", "-error_file"])
            .arg(server.dir.join(format!("sipp-{tag}-errors.log")))
            .current_dir(&server.dir)
            .stdin(Stdio::null())
            .stdout(screen.try_clone().unwrap())
            .stderr(screen)
            .spawn()
            .expect("start sipp");
        Call {
            child,
            tag: tag.to_string(),
            dir: server.dir.clone(),
        }
    }

    fn call_id(&self) -> String {
        format!("{}-1", self.tag)
    }

    /// Waits (at most 40 s) for sipp; its status and screen.
    fn finish(mut self) -> (Option<ExitStatus>, String) {
        let deadline = Instant::now() + Duration::from_secs(40);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
            }
        };
        let screen = std::fs::read_to_string(self.dir.join(format!("sipp-{}.log", self.tag)))
            .unwrap_or_default();
        let errors =
            std::fs::read_to_string(self.dir.join(format!("sipp-{}-errors.log", self.tag)))
                .unwrap_or_default();
        (status, format!("{screen}\n--- errors ---\n{errors}"))
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The log lines of one call (its `call_id` field).
fn lines_of<'a>(log: &'a str, call_id: &str) -> Vec<(usize, &'a str)> {
    let field = format!("call_id={call_id} ");
    log.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(&field))
        .collect()
}

fn line_of(log: &str, needle: &str) -> Option<usize> {
    log.lines().position(|l| l.contains(needle))
}

#[test]
fn a_call_survives_a_reload_and_the_next_call_runs_the_new_bundle() {
    let test = "a_call_survives_a_reload_and_the_next_call_runs_the_new_bundle";
    if !have_sipp(test) {
        return;
    }
    let dir = std::env::temp_dir().join(format!("vflow-e2e-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("site.key");
    let (code, o, e) = run(vflow().arg("keygen").arg("--out").arg(&key));
    assert_eq!(code, 0, "{o}{e}");
    let public = dir.join("site.pub");

    // Serial 1: four seconds of tone (`long`); serial 2: one second (`short`);
    // serial 3: `long` again; serial 4: a copy that gets damaged.
    let b = |n: u64| dir.join(format!("built-{n}.vfb"));
    build(&dir, &key, "long", 4, 1, &b(1));
    build(&dir, &key, "short", 1, 2, &b(2));
    build(&dir, &key, "long", 4, 3, &b(3));
    build(&dir, &key, "short", 1, 4, &b(4));
    let bundle = dir.join("site.vfb");
    install(&b(1), &bundle);

    let mut server = Server::start(&dir, &bundle, &public);
    let p = server.ports;
    let (code, o, e) = server.reload(&["--status"]);
    assert_eq!(code, 0, "{o}{e}");
    assert!(o.contains("serial 1"), "{o}");

    // Call A starts on serial 1 and is playing when serial 2 arrives.
    let a = Call::start(&server, "callA", p.sipp(), p.sipp_media(), p.spare(8));
    let playing = format!("call_id={} node=\"long.tone\"", a.call_id());
    assert!(
        server.wait_log(&playing, Duration::from_secs(15)),
        "call A did not start playing:\n{}",
        server.log()
    );
    install(&b(2), &bundle);
    let (code, o, e) = server.reload(&[]);
    assert_eq!(code, 0, "vflow reload:\n{o}{e}\n{}", server.log());
    assert!(
        o.starts_with("reloaded; active: bundle `site` serial 2"),
        "{o}"
    );

    // Call B, while A still plays, runs serial 2's flow.
    let b_call = Call::start(&server, "callB", p.spare(0), p.spare(2), p.spare(9));
    let (status_b, screen_b) = b_call.finish();
    assert!(
        status_b.is_some_and(|s| s.success()),
        "call B: {status_b:?}\n{screen_b}\n{}",
        server.log()
    );
    let (status_a, screen_a) = a.finish();
    assert!(
        status_a.is_some_and(|s| s.success()),
        "call A was dropped: {status_a:?}\n{screen_a}\n{}",
        server.log()
    );

    let log = server.log();
    let swapped = line_of(&log, "event=\"flows_swapped\"").expect("a swap is logged");
    let a_lines = lines_of(&log, "callA-1");
    let b_lines = lines_of(&log, "callB-1");
    assert!(
        a_lines
            .iter()
            .any(|(_, l)| l.contains("incoming call") && l.contains("serial 1")),
        "call A started on serial 1:\n{log}"
    );
    assert!(
        a_lines
            .iter()
            .any(|(i, l)| *i > swapped && l.contains("node=\"long.bye\"")),
        "call A ended on serial 1's flow after the swap:\n{log}"
    );
    assert!(
        !a_lines.iter().any(|(_, l)| l.contains("node=\"short.")),
        "call A never ran serial 2's flow:\n{log}"
    );
    assert!(
        b_lines
            .iter()
            .any(|(_, l)| l.contains("incoming call") && l.contains("serial 2")),
        "call B started on serial 2:\n{log}"
    );
    assert!(
        b_lines
            .iter()
            .any(|(_, l)| l.contains("node=\"short.tone\""))
            && b_lines
                .iter()
                .any(|(_, l)| l.contains("node=\"short.bye\"")),
        "call B ran serial 2's flow:\n{log}"
    );
    assert!(
        !log.contains("flow set unloaded"),
        "serial 1 is kept for a rollback:\n{log}"
    );

    // Serial 3 by SIGHUP: serial 1 is no longer kept, and no call runs on it.
    install(&b(3), &bundle);
    let pid = server.child.as_ref().unwrap().id();
    assert!(send_signal(pid, libc::SIGHUP), "SIGHUP to {pid}");
    assert!(
        server.wait_log("serial 3", Duration::from_secs(20)),
        "SIGHUP reload:\n{}",
        server.log()
    );
    assert!(
        server.wait_log(
            "flow set unloaded: no call runs on it any more flows=bundle `site` serial 1",
            Duration::from_secs(10)
        ),
        "serial 1's code is freed:\n{}",
        server.log()
    );

    // A damaged serial 4 is refused; serial 3 stays and serves calls.
    let mut bytes = std::fs::read(b(4)).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(dir.join("damaged.vfb"), &bytes).unwrap();
    install(&dir.join("damaged.vfb"), &bundle);
    let (code, o, e) = server.reload(&[]);
    assert_eq!(code, 1, "a damaged bundle is refused:\n{o}{e}");
    assert!(
        e.contains("reload refused") && e.contains("signature check failed"),
        "{e}"
    );
    assert!(e.contains("still active: bundle `site` serial 3"), "{e}");
    let log = server.log();
    assert!(
        log.contains("security") && log.contains("event=\"bundle_refused\""),
        "a refused bundle is a security event:\n{log}"
    );
    let c = Call::start(&server, "callC", p.sipp(), p.sipp_media(), p.spare(8));
    let (status_c, screen_c) = c.finish();
    assert!(
        status_c.is_some_and(|s| s.success()),
        "call C: {status_c:?}\n{screen_c}\n{}",
        server.log()
    );
    let log = server.log();
    let c_lines = lines_of(&log, "callC-1");
    assert!(
        c_lines
            .iter()
            .any(|(_, l)| l.contains("incoming call") && l.contains("serial 3"))
            && c_lines.iter().any(|(_, l)| l.contains("node=\"long.bye\"")),
        "call C ran serial 3 after the refusal:\n{log}"
    );

    // Back one step, explicitly: the only way to a lower serial.
    let (code, o, e) = server.reload(&["--rollback"]);
    assert_eq!(code, 0, "{o}{e}");
    assert!(
        o.contains("rolled back; active: bundle `site` serial 2"),
        "{o}"
    );
    let (code, _, e) = server.reload(&["--rollback"]);
    assert_eq!(code, 1, "{e}");
    assert!(e.contains("no previous flow set"), "{e}");

    server.stop();
    // The control socket goes with the server.
    let (code, _, e) = server.reload(&["--status"]);
    assert_eq!(code, 2, "{e}");
    assert!(e.contains("no vflow server is running"), "{e}");
}
