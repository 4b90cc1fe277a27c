//! Helpers shared by the integration tests: the `vflow` binary, where the
//! repository is, scratch directories, loud skips, and blocks of free
//! loopback ports.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod cluster;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the repository root exists")
}

/// The `vflow` binary under test, without colour or a RUST_LOG from outside.
pub fn vflow() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vflow"));
    c.env("NO_COLOR", "1").env_remove("RUST_LOG");
    c
}

/// Runs a command to its end: (exit code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("the command runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Sends `signal` (`libc::SIGTERM`, `libc::SIGHUP`, …) to a process; true
/// when it was delivered. A system call, so the tests need no `kill` binary
/// (procps is not on every fresh machine).
pub fn send_signal(pid: u32, signal: i32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) only reads its two integer arguments.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// A test directory, unique per process: removed when the test passes, kept
/// (and named on stderr) when it fails or with VFLOW_E2E_KEEP set.
pub struct Dir(pub PathBuf);

impl Dir {
    pub fn new(prefix: &str, name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("vflow-{prefix}-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("create the test directory");
        Dir(d)
    }
}

impl std::ops::Deref for Dir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Dir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for Dir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("VFLOW_E2E_KEEP").is_some() {
            eprintln!("test files kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A fresh, empty scratch directory for one test (see [`Dir`]).
pub fn temp_dir(name: &str) -> Dir {
    Dir::new("test", name)
}

/// A sipp scenario under tests/sipp/.
pub fn scenario(name: &str) -> PathBuf {
    repo().join("tests/sipp").join(name)
}

/// A loud skip (printed straight to stderr: the harness captures eprintln!),
/// or a failure when `CI` is set. Always returns false (the test cannot run).
pub fn skip(test: &str, why: &str) -> bool {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{test}: {why} and CI is set (tools/test.sh installs it)");
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED {test}: {why} (tools/test.sh installs it). Set CI=1 to make this a failure. ***\n"
    );
    false
}

/// Whether sipp can run; otherwise a loud skip, or a failure under CI.
pub fn have_sipp(test: &str) -> bool {
    let found = Command::new("sipp").arg("-v").output().is_ok();
    found || skip(test, "`sipp` is not installed (Debian package sip-tester)")
}

/// A block of loopback ports for one test: the server's SIP port, sipp's SIP
/// and media ports, spare ports for test sockets, and the server's RTP range.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    base: u16,
}

const BLOCK: u16 = 40;
const FIRST_BLOCK: u16 = 21_000;
/// Below Linux's ephemeral range (32768–60999), above vflow's default RTP range.
const BLOCKS: u32 = (32_000 - FIRST_BLOCK as u32) / BLOCK as u32;

impl Ports {
    pub fn sip(&self) -> u16 {
        self.base
    }
    pub fn sipp(&self) -> u16 {
        self.base + 2
    }
    /// sipp's media port (sipp also binds this + 2).
    pub fn sipp_media(&self) -> u16 {
        self.base + 4
    }
    /// Spare ports for sockets of the test itself: `i` in 0..10.
    pub fn spare(&self, i: u16) -> u16 {
        assert!(i < 10);
        self.base + 10 + i
    }
    pub fn rtp(&self) -> (u16, u16) {
        (self.base + 20, self.base + BLOCK - 1)
    }
    pub fn server(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.sip()))
    }

    /// A block whose every port is free now (UDP and TCP). Blocks start at a
    /// place derived from the process id and `salt` (one per test binary), so
    /// parallel tests and test processes rarely meet.
    pub fn allocate(salt: u32) -> Ports {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let start = std::process::id().wrapping_mul(97).wrapping_add(salt);
        for _ in 0..BLOCKS {
            let slot = start.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) % BLOCKS;
            let base = FIRST_BLOCK + (slot as u16) * BLOCK;
            let free = (base..base + BLOCK).all(|p| {
                UdpSocket::bind(("127.0.0.1", p)).is_ok()
                    && TcpListener::bind(("127.0.0.1", p)).is_ok()
            });
            if free {
                return Ports { base };
            }
        }
        panic!("no free block of {BLOCK} loopback ports between {FIRST_BLOCK} and 32000");
    }
}

/// The text without ANSI colour sequences (server logs are matched as text).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ params final-byte
            if chars.next() == Some('[') {
                for d in chars.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A child process killed on drop, with its output in a file.
pub struct Proc {
    child: Option<Child>,
    pub out: PathBuf,
}

impl Proc {
    pub fn spawn(cmd: &mut Command, out: PathBuf) -> Proc {
        let f = std::fs::File::create(&out).expect("create an output file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f.try_clone().expect("clone a file handle"))
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
        Proc {
            child: Some(child),
            out,
        }
    }

    pub fn output(&self) -> String {
        strip_ansi(&std::fs::read_to_string(&self.out).unwrap_or_default())
    }

    /// The exit status within `within`; killed (and `None`) past it.
    pub fn wait(&mut self, within: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let deadline = Instant::now() + within;
        loop {
            match child.try_wait() {
                Ok(Some(s)) => return Some(s),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
            }
        }
    }

    /// SIGTERM: asks for a clean shutdown (then [`Proc::wait`]).
    pub fn terminate(&self) {
        if let Some(c) = &self.child {
            send_signal(c.id(), libc::SIGTERM);
        }
    }

    /// SIGKILL (`kill -9`): no shutdown, no goodbye.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// sipp as a UAC making one call (`-m 1`) of `scenario_file` (under
/// tests/sipp/) to `service` on the server of `ports`, from the sipp ports of
/// `ports`, giving up after `timeout_s` seconds (a failure); retransmissions
/// bounded.
pub fn sipp_command(ports: Ports, scenario_file: &str, service: &str, timeout_s: u64) -> Command {
    let mut cmd = Command::new("sipp");
    cmd.arg(format!("127.0.0.1:{}", ports.sip()))
        .arg("-sf")
        .arg(scenario(scenario_file))
        .args(["-s", service, "-m", "1", "-l", "1", "-r", "1"])
        .args(["-i", "127.0.0.1", "-p", &ports.sipp().to_string()])
        .args(["-mi", "127.0.0.1", "-mp", &ports.sipp_media().to_string()])
        .args([
            "-timeout",
            &format!("{timeout_s}s"),
            "-timeout_error",
            "-nostdin",
        ])
        .args(["-max_retrans", "5"]);
    cmd
}

/// Runs one sipp UAC call (`-m 1`) of `scenario_file` (under tests/sipp/) to
/// `service` on the server of `ports`, from `dir` (sipp's log goes there as
/// `sipp-TAG.log`); whether it passed within `within` seconds, and its output.
pub fn run_sipp(
    dir: &Path,
    ports: Ports,
    scenario_file: &str,
    service: &str,
    tag: &str,
    within: u64,
) -> (bool, String) {
    let mut sipp = Proc::spawn(
        sipp_command(ports, scenario_file, service, within).current_dir(dir),
        dir.join(format!("sipp-{tag}.log")),
    );
    let status = sipp.wait(Duration::from_secs(within + 5));
    (status.is_some_and(|s| s.success()), sipp.output())
}
