//! End-to-end tests: `vflow serve` on loopback, driven by sipp (the Debian
//! package `sip-tester`) and by raw UDP/TCP sockets.
//!
//! Every test starts its own server process with its own SIP port, RTP port
//! range and data directory, so the tests run in parallel. Every wait is
//! bounded: sipp gets `-timeout`, and the test kills whatever outlives its
//! deadline; a guard kills the server when a test fails.
//!
//! A failing test keeps its directory (config, server log, sipp logs) and
//! prints where; `VFLOW_E2E_KEEP=1` keeps them all.
//!
//! Without sipp the sipp tests print why and pass, unless `CI` is set: then a
//! missing sipp is a failure (install it with `apt-get install sip-tester`,
//! which `tools/test.sh` does).
//!
//! The sipp scenarios are in `tests/sipp/`, the test flows (and their prompt)
//! in `tests/flows/`, next to the default flows in `flows/`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod common;
use common::*;

// ---- environment -------------------------------------------------------------

// ---- ports -------------------------------------------------------------------

// ---- the server ----------------------------------------------------------------

/// Settings that differ between tests.
struct Setup {
    trusted: &'static str,
    grace: &'static str,
    rate_limit: u32,
    /// The `voicemail.mailboxes` YAML list.
    mailboxes: &'static str,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            trusted: "[127.0.0.0/8]",
            grace: "2s",
            rate_limit: 200,
            mailboxes: "[{id: \"201\"}]",
        }
    }
}

/// A running `vflow serve`, killed when dropped.
struct Server {
    child: Option<Child>,
    dir: PathBuf,
    log: PathBuf,
    ports: Ports,
    exited: Option<ExitStatus>,
}

impl Server {
    fn start(name: &str, setup: Setup) -> Server {
        let ports = Ports::allocate(0);
        let dir = std::env::temp_dir().join(format!("vflow-e2e-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the test directory");
        let (rtp_first, rtp_last) = ports.rtp();
        let root = repo();
        let config = format!(
            "# written by runtime/tests/e2e_sipp.rs ({name})\n\
             node:\n  name: e2e-{name}\n  data_dir: {data}\n\
             flows:\n  paths: [{flows}, {test_flows}]\n  engine: jit\n\
             sip:\n  listen: 127.0.0.1:{sip}\n  trusted_peers: {trusted}\n  rate_limit: {rate}\n  ban: 10s\n\
             rtp:\n  ports: {rtp_first}-{rtp_last}\n  timeout: 20s\n\
             shutdown:\n  grace: {grace}\n\
             voicemail:\n  mailboxes: {mailboxes}\n",
            data = dir.join("data").display(),
            flows = root.join("flows").display(),
            test_flows = root.join("tests/flows").display(),
            sip = ports.sip(),
            trusted = setup.trusted,
            rate = setup.rate_limit,
            grace = setup.grace,
            mailboxes = setup.mailboxes,
        );
        let config_path = dir.join("vflow.yaml");
        std::fs::write(&config_path, config).expect("write the config");
        let log = dir.join("server.log");
        let log_file = std::fs::File::create(&log).expect("create the server log");
        let child = Command::new(env!("CARGO_BIN_EXE_vflow"))
            .args(["serve", "--config"])
            .arg(&config_path)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone a file handle"))
            .stderr(log_file)
            .spawn()
            .expect("start vflow serve");
        let mut server = Server {
            child: Some(child),
            dir,
            log,
            ports,
            exited: None,
        };
        server.wait_listening();
        server
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The server's log so far, without terminal colours.
    fn log(&self) -> String {
        strip_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.log().contains("vflow is listening") {
                return;
            }
            if !self.alive() {
                panic!(
                    "vflow serve exited ({:?}) before listening:\n{}",
                    self.exited,
                    self.log()
                );
            }
            if Instant::now() > deadline {
                panic!("vflow serve did not listen within 30 s:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the log contains `needle`; false after `within`.
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

    fn alive(&mut self) -> bool {
        if self.exited.is_some() {
            return false;
        }
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(Ok(Some(status))) => {
                self.exited = Some(status);
                false
            }
            _ => false,
        }
    }

    /// SIGTERM, without waiting.
    fn sigterm(&self) {
        assert!(
            send_signal(self.pid(), libc::SIGTERM),
            "SIGTERM to {} failed",
            self.pid()
        );
    }

    /// Waits for the process to exit, at most `within`; `None` if it did not.
    fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if !self.alive() {
                return self.exited;
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM and a graceful exit (status 0, "stopped" logged) within `within`.
    fn stop(&mut self, within: Duration) -> Duration {
        let t0 = Instant::now();
        self.sigterm();
        let status = self.wait_exit(within);
        let took = t0.elapsed();
        match status {
            Some(s) if s.success() => {}
            Some(s) => panic!("vflow serve exited with {s} after SIGTERM:\n{}", self.log()),
            None => panic!(
                "vflow serve did not exit within {within:?} of SIGTERM:\n{}",
                self.log()
            ),
        }
        assert!(
            self.log().contains("stopped"),
            "no `stopped` in the log:\n{}",
            self.log()
        );
        took
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.exited.is_none() && matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        if std::thread::panicking() || std::env::var_os("VFLOW_E2E_KEEP").is_some() {
            eprintln!("test files kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

// ---- sipp ------------------------------------------------------------------------

/// One sipp run: one call (`-m 1 -l 1`) against the server.
struct Sipp {
    child: Option<Child>,
    tag: String,
    dir: PathBuf,
    bound: Duration,
    started: Instant,
}

/// What a sipp run left behind.
struct SippResult {
    status: Option<ExitStatus>,
    /// Every SIP message sent and received (`-trace_msg`).
    messages: String,
    /// Unexpected messages and failures (`-trace_err`).
    errors: String,
    screen: String,
}

impl SippResult {
    fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    fn report(&self, server: &Server) -> String {
        format!(
            "sipp status {:?}\n--- sipp errors ---\n{}\n--- sipp screen (tail) ---\n{}\n--- SIP messages ---\n{}\n--- server log ---\n{}",
            self.status,
            self.errors,
            tail(&self.screen, 30),
            self.messages,
            server.log()
        )
    }
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

impl Sipp {
    /// Starts sipp with `scenario` calling `service` on the server;
    /// `keys` are `-key NAME VALUE` substitutions. sipp gives up after
    /// `timeout_s` seconds (`-timeout`, counted as a failure).
    fn spawn(
        server: &Server,
        tag: &str,
        scenario_name: &str,
        service: &str,
        keys: &[(&str, String)],
        timeout_s: u64,
    ) -> Sipp {
        let dir = server.dir.clone();
        let p = server.ports;
        let mut cmd = sipp_command(p, scenario_name, service, timeout_s);
        cmd.arg("-trace_err")
            .arg("-error_file")
            .arg(dir.join(format!("sipp-{tag}-errors.log")))
            .arg("-trace_msg")
            .arg("-message_file")
            .arg(dir.join(format!("sipp-{tag}-messages.log")));
        for (k, v) in keys {
            cmd.args(["-key", k, v]);
        }
        let screen = std::fs::File::create(dir.join(format!("sipp-{tag}-screen.log")))
            .expect("create the sipp screen log");
        let child = cmd
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(screen.try_clone().expect("clone a file handle"))
            .stderr(screen)
            .spawn()
            .expect("start sipp");
        Sipp {
            child: Some(child),
            tag: tag.to_string(),
            dir,
            bound: Duration::from_secs(timeout_s + 5),
            started: Instant::now(),
        }
    }

    fn run(
        server: &Server,
        tag: &str,
        scenario_name: &str,
        service: &str,
        keys: &[(&str, String)],
        timeout_s: u64,
    ) -> SippResult {
        Sipp::spawn(server, tag, scenario_name, service, keys, timeout_s).wait()
    }

    /// Waits for sipp (killing it past its bound) and collects its logs.
    fn wait(mut self) -> SippResult {
        let mut child = self.child.take().expect("sipp was started");
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if self.started.elapsed() < self.bound => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        let read = |what: &str| {
            std::fs::read_to_string(self.dir.join(format!("sipp-{}-{what}.log", self.tag)))
                .unwrap_or_default()
        };
        SippResult {
            status,
            messages: read("messages"),
            errors: read("errors"),
            screen: read("screen"),
        }
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---- raw SIP over UDP ----------------------------------------------------------

/// A SIP client on a plain UDP socket, for what sipp cannot send.
struct RawSip {
    sock: UdpSocket,
    server: SocketAddr,
    n: u32,
}

impl RawSip {
    fn new(server: SocketAddr, local_port: u16) -> RawSip {
        let sock = UdpSocket::bind(("127.0.0.1", local_port)).expect("bind a test SIP socket");
        RawSip { sock, server, n: 0 }
    }

    fn local(&self) -> SocketAddr {
        self.sock
            .local_addr()
            .expect("a bound socket has an address")
    }

    fn send(&self, bytes: &[u8]) {
        self.sock
            .send_to(bytes, self.server)
            .expect("send a datagram");
    }

    /// The next response whose Via carries `branch`, within `within`.
    fn response(&self, branch: &str, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        let mut buf = vec![0u8; 65_536];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok()?;
            match self.sock.recv_from(&mut buf) {
                Ok((n, _)) => {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if text.starts_with("SIP/2.0 ") && text.contains(branch) {
                        return Some(text);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None;
                }
                Err(_) => {}
            }
        }
    }

    fn next_branch(&mut self) -> String {
        self.n += 1;
        format!("z9hG4bK-e2e-{}-{}", std::process::id(), self.n)
    }

    /// Sends OPTIONS and returns the response's status line.
    fn options(&mut self) -> Option<String> {
        let branch = self.next_branch();
        let me = self.local();
        let msg = format!(
            "OPTIONS sip:vflow@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={branch}\r\n\
             From: <sip:monitor@{me}>;tag=opt{n}\r\nTo: <sip:vflow@{srv}>\r\nCall-ID: options-{branch}\r\n\
             CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            srv = self.server,
            n = self.n,
        );
        self.send(msg.as_bytes());
        self.response(&branch, Duration::from_secs(2))
            .map(|r| r.lines().next().unwrap_or("").to_string())
    }

    /// An INVITE to `user` with `sdp` (already CRLF-terminated lines); returns (branch, call-id, text).
    fn invite(&mut self, user: &str, sdp: &str) -> (String, String, String) {
        let branch = self.next_branch();
        let call_id = format!("call-{branch}");
        let me = self.local();
        let msg = format!(
            "INVITE sip:{user}@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={branch}\r\n\
             From: \"Raw\" <sip:300@{me}>;tag=raw{n}\r\nTo: <sip:{user}@{srv}>\r\nCall-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\nContact: <sip:300@{me}>\r\nMax-Forwards: 70\r\n\
             Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
            srv = self.server,
            n = self.n,
            len = sdp.len(),
        );
        self.send(msg.as_bytes());
        (branch, call_id, msg)
    }
}

/// The first final (non-1xx) status among responses on `sip` for `branch`.
fn final_status(sip: &RawSip, branch: &str, within: Duration) -> Option<(u16, String)> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let r = sip.response(branch, left)?;
        let status: u16 = r.get(8..11)?.parse().ok()?;
        if status >= 200 {
            return Some((status, r));
        }
    }
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The tag of a message's To header.
fn to_tag(msg: &str) -> Option<String> {
    let to = header(msg, "To")?;
    let (_, rest) = to.split_once(";tag=")?;
    Some(rest.split(';').next().unwrap_or("").trim().to_string())
}

fn sdp_offer(rtp_port: u16) -> String {
    format!(
        "v=0\r\no=raw 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {rtp_port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n"
    )
}

// ---- audio helpers -------------------------------------------------------------

/// An RTP packet as received: payload type and payload.
type RtpPacket = (u8, Vec<u8>);

/// Receives RTP on a socket until stopped (at most 60 s).
struct RtpSink {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<RtpPacket>>>,
}

impl RtpSink {
    fn listen(port: u16) -> RtpSink {
        let sock = UdpSocket::bind(("127.0.0.1", port)).expect("bind the RTP sink");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("set a read timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut packets = Vec::new();
            let mut buf = [0u8; 2048];
            let deadline = Instant::now() + Duration::from_secs(60);
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                let Ok(n) = sock.recv(&mut buf) else { continue };
                let start = 12 + 4 * usize::from(buf[0] & 0x0f);
                if n >= start && buf[0] >> 6 == 2 {
                    packets.push((buf[1] & 0x7f, buf[start..n].to_vec()));
                }
            }
            packets
        });
        RtpSink {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Vec<RtpPacket> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map(|t| t.join().expect("the RTP sink thread does not panic"))
            .unwrap_or_default()
    }
}

impl Drop for RtpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// G.711 µ-law to linear.
fn ulaw_decode(b: u8) -> i32 {
    let u = !b;
    let exp = (u >> 4) & 7;
    let mantissa = i32::from(u & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exp) - 0x84;
    if u & 0x80 != 0 { -magnitude } else { magnitude }
}

fn rms(samples: impl Iterator<Item = i32>) -> f64 {
    let (sum, n) = samples.fold((0f64, 0u32), |(s, n), x| {
        (s + f64::from(x) * f64::from(x), n + 1)
    });
    if n == 0 {
        0.0
    } else {
        (sum / f64::from(n)).sqrt()
    }
}

/// The messages stored for `mailbox`: the WAV files on disk (sorted) and
/// the rows of the voicemail database.
fn messages(server: &Server, mailbox: &str) -> (Vec<PathBuf>, Vec<vflow_runtime::store::Message>) {
    let dir = server.data().join("messages").join(mailbox);
    let mut wavs = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) == Some("wav") {
                wavs.push(p);
            }
        }
    }
    wavs.sort();
    let store = vflow_runtime::store::Store::open(&server.data()).expect("open the store");
    let rows = store.messages(mailbox, None).expect("list the messages");
    (wavs, rows)
}

/// Duration of a WAV file in seconds, checking it is what the store writes.
fn wav_seconds(path: &Path) -> f64 {
    let reader = hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("{} is not a WAV file: {e}", path.display()));
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate),
        (1, 8000),
        "{}: {spec:?}",
        path.display()
    );
    f64::from(reader.duration()) / f64::from(spec.sample_rate)
}

// ---- the tests -----------------------------------------------------------------

/// Answer, play, BYE: the caller hears the one-second tone of
/// tests/flows/answer_play.vflow as µ-law RTP, then receives the server's BYE.
#[test]
fn answer_play_and_server_hangs_up() {
    if !have_sipp("answer_play_and_server_hangs_up") {
        return;
    }
    let mut server = Server::start("answer-play", Setup::default());
    let sink_port = server.ports.spare(0);
    let sink = RtpSink::listen(sink_port);
    let run = Sipp::run(
        &server,
        "answer",
        "answer_play.xml",
        "play-tone",
        &[("rtp_port", sink_port.to_string())],
        20,
    );
    // Late packets after the BYE do not matter; give the last ones a moment.
    std::thread::sleep(Duration::from_millis(100));
    let packets = sink.finish();
    assert!(run.ok(), "{}", run.report(&server));
    assert!(
        run.messages.contains("BYE sip:"),
        "no BYE from the server\n{}",
        run.report(&server)
    );

    // The prompt is 1 s of a 440 Hz tone at about -12 dBFS: ~50 loud frames of PCMU.
    assert!(
        packets.iter().all(|(pt, _)| *pt == 0),
        "payload types: {:?}",
        packets.iter().map(|p| p.0).collect::<Vec<_>>()
    );
    assert!(
        packets.iter().all(|(_, b)| b.len() == 160),
        "ptime 20 ms = 160 samples per packet"
    );
    let loud = packets
        .iter()
        .filter(|(_, b)| rms(b.iter().map(|&x| ulaw_decode(x))) > 2000.0)
        .count();
    eprintln!("answer_play: {} RTP packets, {loud} loud", packets.len());
    assert!(
        (45..=55).contains(&loud),
        "{loud} loud frames of {} (want ~50 for a 1 s prompt)\n{}",
        packets.len(),
        server.log()
    );

    let log = server.log();
    assert!(log.contains("node=\"answer_play.tone\""), "{log}");
    assert!(log.contains("call finished"), "{log}");
    server.stop(Duration::from_secs(10));
}

/// A sipp caller nobody here wrote leaves a message of real speech.
#[test]
fn leave_a_message() {
    if !have_sipp("leave_a_message") {
        return;
    }
    let mut server = Server::start("leave", Setup::default());
    let run = Sipp::run(&server, "leave", "leave_message.xml", "vm-201", &[], 40);
    assert!(run.ok(), "{}", run.report(&server));
    assert!(
        server.wait_log("message stored", Duration::from_secs(5)),
        "{}",
        server.log()
    );

    let (wavs, jsons) = messages(&server, "201");
    assert_eq!(
        wavs.len(),
        1,
        "exactly one message WAV: {wavs:?}\n{}",
        server.log()
    );
    assert_eq!(jsons.len(), 1, "exactly one message row: {jsons:?}");
    assert_eq!(
        wavs[0].file_stem().and_then(|s| s.to_str()),
        Some(jsons[0].id.as_str()),
        "the WAV is named by the row's id"
    );
    let secs = wav_seconds(&wavs[0]);
    eprintln!("leave_a_message: {secs:.2} s stored");
    assert!(
        (4.0..=9.0).contains(&secs),
        "message lasts {secs:.2} s (want 4–9 s)\n{}",
        server.log()
    );

    let meta = &jsons[0];
    assert_eq!(meta.caller, "300", "{meta:?}");
    assert_eq!(meta.mailbox, "201", "{meta:?}");
    assert_eq!(meta.caller_name, "Test Caller", "{meta:?}");
    let ms = meta.duration_ms;
    assert!(
        (ms as f64 / 1000.0 - secs).abs() < 0.1,
        "duration_ms {ms} vs WAV {secs:.3} s"
    );
    assert!(
        !server.data().join("tmp").read_dir().unwrap().any(|_| true),
        "no partial files left in data/tmp"
    );
    server.stop(Duration::from_secs(10));
}

/// The owner collects: two messages are left, then `vmcollect-201` enters the
/// PIN with RFC 4733 keys, listens (1), saves the first (9) and deletes the
/// second (7). The store then holds one saved and one deleted message.
#[test]
fn collect_with_a_pin_save_and_delete() {
    if !have_sipp("collect_with_a_pin_save_and_delete") {
        return;
    }
    let mut server = Server::start(
        "collect",
        Setup {
            mailboxes: "[{id: \"201\", pin: \"2580\"}]",
            ..Setup::default()
        },
    );
    for i in 0..2 {
        let run = Sipp::run(
            &server,
            &format!("leave{i}"),
            "leave_message.xml",
            "vm-201",
            &[],
            40,
        );
        assert!(run.ok(), "{}", run.report(&server));
    }
    // The message is committed just after the caller's BYE is answered.
    let until = Instant::now() + Duration::from_secs(5);
    while messages(&server, "201").1.len() < 2 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        messages(&server, "201").1.len() == 2,
        "two messages stored\n{}",
        server.log()
    );
    let run = Sipp::run(
        &server,
        "collect",
        "collect_save_delete.xml",
        "vmcollect-201",
        &[],
        60,
    );
    assert!(run.ok(), "{}", run.report(&server));
    let (_, rows) = messages(&server, "201");
    let folders: Vec<_> = rows.iter().map(|r| r.folder).collect();
    use vflow_runtime::store::Folder;
    assert_eq!(rows.len(), 2, "{rows:?}\n{}", server.log());
    assert!(
        folders.contains(&Folder::Saved) && folders.contains(&Folder::Deleted),
        "one saved and one deleted: {folders:?}\n{}",
        server.log()
    );
    let log = server.log();
    assert!(log.contains("PIN accepted"), "the PIN was checked\n{log}");
    // As a word of its own: timestamps, ports and ids may hold these digits.
    assert!(
        !log.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|word| word == "2580"),
        "the PIN never appears in the log\n{log}"
    );
    server.stop(Duration::from_secs(10));
}

/// Wrong PINs over separate calls lock the mailbox: with two attempts
/// allowed, two calls with a wrong PIN lock it, and a third call with the
/// right PIN is refused as locked.
#[test]
fn lockout_after_bad_pins_over_separate_calls() {
    if !have_sipp("lockout_after_bad_pins_over_separate_calls") {
        return;
    }
    let mut server = Server::start(
        "lockout",
        Setup {
            mailboxes: "[{id: \"201\", pin: \"2580\"}]\n  pin:\n    lockout_attempts: 2\n    lockout_for: 10m",
            ..Setup::default()
        },
    );
    for i in 0..2 {
        let run = Sipp::run(
            &server,
            &format!("wrong{i}"),
            "collect_wrong_pin.xml",
            "vmcollect-201",
            &[],
            40,
        );
        assert!(run.ok(), "{}", run.report(&server));
    }
    assert!(
        server.wait_log("mailbox_locked", Duration::from_secs(5)),
        "the second wrong PIN locks the mailbox\n{}",
        server.log()
    );
    let run = Sipp::run(
        &server,
        "right",
        "collect_wrong_pin.xml",
        "vmcollect-201",
        &[],
        40,
    );
    assert!(run.ok(), "{}", run.report(&server));
    assert!(
        server.wait_log("pin_refused_locked", Duration::from_secs(5)),
        "a locked mailbox refuses every PIN\n{}",
        server.log()
    );
    server.stop(Duration::from_secs(10));
}

/// RFC 4733 DTMF "1" in a menu leads to a blind transfer: REFER to 2001, the
/// transferee reports success with a NOTIFY sipfrag, and the server hangs up
/// (tests/flows/dtmf_transfer.vflow: `next` of `transfer` is unconnected, so the
/// flow ends once the caller has left).
#[test]
fn dtmf_menu_ends_in_refer() {
    if !have_sipp("dtmf_menu_ends_in_refer") {
        return;
    }
    let mut server = Server::start("dtmf-refer", Setup::default());
    let run = Sipp::run(&server, "dtmf", "dtmf_refer.xml", "menu-transfer", &[], 20);
    assert!(run.ok(), "{}", run.report(&server));
    let refer = run
        .messages
        .split("REFER sip:")
        .nth(1)
        .expect("a REFER was received");
    let refer_to = header(refer, "Refer-To").expect("the REFER has Refer-To");
    assert!(refer_to.contains("sip:2001@"), "Refer-To: {refer_to}");

    let log = server.log();
    let menu = log
        .find("node=\"dtmf_transfer.choose\" effect=menu")
        .expect("the menu ran");
    let transfer = log
        .find("node=\"dtmf_transfer.sales\" effect=transfer target=2001")
        .expect("key 1 chose the transfer");
    assert!(menu < transfer);
    assert!(
        !log.contains("dtmf_transfer.failed"),
        "the transfer must succeed:\n{log}"
    );
    assert!(
        !log.contains("dtmf_transfer.bye"),
        "the menu must not time out:\n{log}"
    );
    assert!(
        server.wait_log("call finished", Duration::from_secs(5)),
        "{log}"
    );
    server.stop(Duration::from_secs(10));
}

/// The same menu and REFER, but the transferee reports 486 Busy Here in its
/// NOTIFY: the transfer's `busy` result leads to `failed`, which plays
/// vm-failed.wav and hangs up.
#[test]
fn dtmf_menu_refer_to_busy_destination() {
    if !have_sipp("dtmf_menu_refer_to_busy_destination") {
        return;
    }
    let mut server = Server::start("dtmf-busy", Setup::default());
    let run = Sipp::run(
        &server,
        "busy",
        "dtmf_refer_busy.xml",
        "menu-transfer",
        &[],
        20,
    );
    assert!(run.ok(), "{}", run.report(&server));
    let log = server.log();
    let transfer = log
        .find("node=\"dtmf_transfer.sales\" effect=transfer target=2001")
        .expect("key 1 chose the transfer");
    let failed = log
        .find("node=\"dtmf_transfer.failed\" effect=hangup [vm-failed.wav]")
        .unwrap_or_else(|| panic!("a busy transfer goes to `failed`:\n{log}"));
    assert!(transfer < failed);
    assert!(
        server.wait_log("call finished", Duration::from_secs(5)),
        "{log}"
    );
    server.stop(Duration::from_secs(10));
}

/// CANCEL while the call is being set up, twice: by sipp after the 100 Trying
/// (on loopback the server's 200 usually wins that race: ACK and BYE), and
/// from a raw socket right behind the INVITE (usually 487). Either outcome is
/// accepted, each with its own checks; no call may be left behind.
#[test]
fn cancel_while_ringing() {
    if !have_sipp("cancel_while_ringing") {
        return;
    }
    let mut server = Server::start("cancel", Setup::default());
    let run = Sipp::run(&server, "cancel", "cancel.xml", "vm-201", &[], 15);
    assert!(run.ok(), "{}", run.report(&server));
    let call_id = header(&run.messages, "Call-ID")
        .expect("sipp sent a Call-ID")
        .to_string();
    let cancelled = run.messages.contains("SIP/2.0 487");
    eprintln!(
        "cancel_while_ringing (sipp): {}",
        if cancelled {
            "the CANCEL won: 487"
        } else {
            "the answer won: ACK + BYE"
        }
    );
    let ended = if cancelled {
        "call ended before it was confirmed"
    } else {
        "call finished"
    };
    assert!(
        server.wait_log(
            &format!("{ended} call_id={call_id}"),
            Duration::from_secs(5)
        ),
        "expected `{ended}`\n{}",
        run.report(&server)
    );

    // The same from a raw socket, with the CANCEL right behind the INVITE.
    let mut raw = RawSip::new(server.ports.server(), server.ports.spare(0));
    let (branch, call_id, invite) = raw.invite("vm-201", &sdp_offer(server.ports.spare(1)));
    let line = |name: &str| format!("{name}: {}\r\n", header(&invite, name).unwrap());
    let uri = invite
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let cancel = format!(
        "CANCEL {uri} SIP/2.0\r\n{}{}{}{}CSeq: 1 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        line("Via"),
        line("From"),
        line("To"),
        line("Call-ID")
    );
    raw.send(cancel.as_bytes());
    let (mut cancel_status, mut cancel_tag, mut invite_final) = (None, None, None);
    let deadline = Instant::now() + Duration::from_secs(3);
    while cancel_status.is_none() || invite_final.is_none() {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        let Some(r) = raw.response(&branch, left) else {
            break;
        };
        let status: u16 = r[8..11].parse().unwrap();
        let method = header(&r, "CSeq")
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string();
        match method.as_str() {
            "CANCEL" => {
                cancel_status = Some(status);
                cancel_tag = to_tag(&r);
            }
            "INVITE" if status >= 200 => invite_final = Some((status, r)),
            _ => {}
        }
    }
    assert_eq!(
        cancel_status,
        Some(200),
        "the CANCEL's answer\n{}",
        server.log()
    );
    let (status, resp) =
        invite_final.unwrap_or_else(|| panic!("no final answer to the INVITE\n{}", server.log()));
    let to = header(&resp, "To").unwrap().to_string();
    // RFC 3261 §9.2: the CANCEL's response carries the To tag of the INVITE's
    // response (a UAC taking the last tag it saw must still reach the dialog).
    assert_eq!(
        cancel_tag,
        to_tag(&resp),
        "To tags of the CANCEL's 200 and the INVITE's {status}"
    );
    let me = raw.local();
    let from = header(&invite, "From").unwrap().to_string();
    match status {
        487 => {
            eprintln!("cancel_while_ringing (raw): the CANCEL won: 487");
            // The ACK of a non-2xx final answer belongs to the INVITE's transaction.
            let ack = format!(
                "ACK {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={branch}\r\nFrom: {from}\r\nTo: {to}\r\n\
                 Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            );
            raw.send(ack.as_bytes());
            assert!(
                server.wait_log(
                    &format!("call ended before it was confirmed call_id={call_id}"),
                    Duration::from_secs(5)
                ),
                "{}",
                server.log()
            );
        }
        200 => {
            eprintln!("cancel_while_ringing (raw): the answer won: ACK + BYE");
            let ack = format!(
                "ACK {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={branch}-ack\r\nFrom: {from}\r\nTo: {to}\r\n\
                 Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            );
            raw.send(ack.as_bytes());
            let bye_branch = raw.next_branch();
            let bye = format!(
                "BYE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={bye_branch}\r\nFrom: {from}\r\nTo: {to}\r\n\
                 Call-ID: {call_id}\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            );
            raw.send(bye.as_bytes());
            let got = final_status(&raw, &bye_branch, Duration::from_secs(3)).map(|g| g.0);
            assert_eq!(got, Some(200), "BYE after the answer won\n{}", server.log());
            assert!(
                server.wait_log(
                    &format!("call finished call_id={call_id}"),
                    Duration::from_secs(5)
                ),
                "{}",
                server.log()
            );
        }
        other => panic!(
            "the INVITE got {other}, want 487 (or 200 if the answer won)\n{resp}\n{}",
            server.log()
        ),
    }

    assert_eq!(
        raw.options().as_deref(),
        Some("SIP/2.0 200 OK"),
        "{}",
        server.log()
    );
    server.stop(Duration::from_secs(10));
    let log = server.log();
    let shutdown = log
        .lines()
        .find(|l| l.contains("shutting down"))
        .expect("a shutdown line");
    assert!(
        shutdown.contains("calls=0"),
        "a call was left: {shutdown}\n{log}"
    );
}

/// Only G.729 offered: 488, and no call reaches a flow.
#[test]
fn codec_mismatch_gets_488() {
    if !have_sipp("codec_mismatch_gets_488") {
        return;
    }
    let mut server = Server::start("codec", Setup::default());
    let run = Sipp::run(&server, "codec", "codec_mismatch.xml", "vm-201", &[], 15);
    assert!(run.ok(), "{}", run.report(&server));
    assert!(
        run.messages.contains("SIP/2.0 488"),
        "{}",
        run.report(&server)
    );
    assert!(
        !server.log().contains("incoming call"),
        "a call started:\n{}",
        server.log()
    );
    server.stop(Duration::from_secs(10));
}

/// A source outside trusted_peers gets one fixed 403 that says nothing about the server.
#[test]
fn untrusted_source_gets_403() {
    if !have_sipp("untrusted_source_gets_403") {
        return;
    }
    let mut server = Server::start(
        "untrusted",
        Setup {
            trusted: "[10.0.0.0/8]",
            ..Setup::default()
        },
    );
    let run = Sipp::run(&server, "untrusted", "untrusted.xml", "vm-201", &[], 15);
    assert!(run.ok(), "{}", run.report(&server));
    let resp = run
        .messages
        .split("SIP/2.0 403")
        .nth(1)
        .expect("a 403 was received");
    let resp = resp.split("\n\n").next().unwrap_or("");
    let names: Vec<String> = resp
        .lines()
        .skip(1)
        .filter_map(|l| {
            l.split_once(':')
                .map(|(n, _)| n.trim().to_ascii_lowercase())
        })
        .collect();
    for n in &names {
        assert!(
            ["via", "from", "to", "call-id", "cseq", "content-length"].contains(&n.as_str()),
            "the 403 must not say more than it must; it has `{n}`:\n{resp}"
        );
    }
    assert_eq!(header(resp, "Content-Length"), Some("0"), "{resp}");
    assert!(
        !server.log().contains("incoming call"),
        "a call started:\n{}",
        server.log()
    );

    // Everything else from an untrusted source gets the same answer.
    let mut raw = RawSip::new(server.ports.server(), server.ports.spare(0));
    let status = raw.options();
    assert!(
        status
            .as_deref()
            .is_some_and(|s| s.starts_with("SIP/2.0 403")),
        "OPTIONS from an untrusted source: {status:?}"
    );
    server.stop(Duration::from_secs(10));
}

/// A small deterministic generator for garbage.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Garbage datagrams, RFC 4475 torture messages, broken SDP, garbage over TCP
/// and garbage RTP into a live call: the server stays up and keeps answering.
#[test]
fn malformed_input_never_stops_the_server() {
    // Needs no sipp: raw sockets only.
    let mut server = Server::start(
        "malformed",
        Setup {
            rate_limit: 100_000,
            ..Setup::default()
        },
    );
    let ports = server.ports;
    let mut raw = RawSip::new(ports.server(), ports.spare(0));
    assert_eq!(
        raw.options().as_deref(),
        Some("SIP/2.0 200 OK"),
        "before: {}",
        server.log()
    );

    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()));
    let prefixes: [&[u8]; 6] = [
        b"",
        b"INVITE sip:vm-201@127.0.0.1 SIP/2.0\r\n",
        b"SIP/2.0 200 OK\r\n",
        b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\nContent-Length: 99999\r\n",
        b"BYE sip:a@b SIP/2.0\r\nCall-ID: \x00\xff\r\nCSeq: 99999999999999999999 BYE\r\n\r\n",
        b"\r\n\r\n",
    ];
    // 1. Random bytes, some behind plausible first lines (bounded: 600 datagrams).
    for i in 0..600 {
        let mut d = prefixes[i % prefixes.len()].to_vec();
        let n = rng.below(1400) as usize;
        d.extend(rng.bytes(n));
        raw.send(&d);
        if i % 100 == 99 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // 2. Every RFC 4475 torture message of the SIP unit tests.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sip");
    let mut torture = 0;
    for sub in ["valid", "invalid"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures.join(sub))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        for f in files {
            raw.send(&std::fs::read(&f).unwrap());
            torture += 1;
        }
    }
    assert!(torture >= 40, "the torture fixtures were found ({torture})");
    // 3. INVITEs with broken SDP: each must get a final answer, not a call.
    let bad_sdps = [
        "v=0\r\nm=audio notaport RTP/AVP 0\r\n".to_string(),
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 999.1.1.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n".to_string(),
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP\r\n".to_string(),
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 4000 RTP/AVP 31\r\n".to_string(),
        String::from_utf8_lossy(&rng.bytes(300)).into_owned(),
    ];
    for sdp in &bad_sdps {
        let (branch, _, _) = raw.invite("vm-201", sdp);
        let got = final_status(&raw, &branch, Duration::from_secs(2));
        let status = got.as_ref().map(|g| g.0);
        eprintln!(
            "malformed_input: broken SDP {:?}… → {status:?}",
            sdp.chars().take(24).collect::<String>()
        );
        assert!(
            status.is_some_and(|s| (400..500).contains(&s)),
            "an INVITE with broken SDP must be refused with 4xx, got {status:?}\nSDP: {sdp:?}\n{}",
            server.log()
        );
    }
    // 4. Garbage over TCP, then OPTIONS over a fresh TCP connection.
    {
        let mut t = TcpStream::connect(ports.server()).expect("connect over TCP");
        t.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        for _ in 0..20 {
            let n = rng.below(4000) as usize;
            if t.write_all(&rng.bytes(n)).is_err() {
                break; // the server may close a connection it cannot frame
            }
        }
    }
    {
        let mut t = TcpStream::connect(ports.server()).expect("connect over TCP");
        t.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let me = t.local_addr().unwrap();
        let msg = format!(
            "OPTIONS sip:vflow@{srv} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bK-tcp-alive\r\n\
             From: <sip:monitor@{me}>;tag=t1\r\nTo: <sip:vflow@{srv}>\r\nCall-ID: tcp-alive\r\n\
             CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            srv = ports.server()
        );
        t.write_all(msg.as_bytes()).unwrap();
        let mut buf = [0u8; 2048];
        let n = t.read(&mut buf).unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(
            text.starts_with("SIP/2.0 200"),
            "OPTIONS over TCP after garbage: {text:?}\n{}",
            server.log()
        );
    }
    // 5. A live call receiving garbage RTP keeps going and ends with BYE.
    {
        let rtp_in = UdpSocket::bind(("127.0.0.1", ports.spare(2))).unwrap();
        let mut call = RawSip::new(ports.server(), ports.spare(1));
        let (branch, call_id, _) = call.invite("vm-201", &sdp_offer(ports.spare(2)));
        let (status, ok) =
            final_status(&call, &branch, Duration::from_secs(3)).expect("an answer to the INVITE");
        assert_eq!(status, 200, "{ok}\n{}", server.log());
        let to = header(&ok, "To").unwrap().to_string();
        let m = ok
            .lines()
            .find(|l| l.starts_with("m=audio "))
            .expect("an SDP answer");
        let rtp_port: u16 = m.split_whitespace().nth(1).unwrap().parse().unwrap();
        let me = call.local();
        let srv = ports.server();
        let ack = format!(
            "ACK sip:vm-201@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={branch}-ack\r\n\
             From: \"Raw\" <sip:300@{me}>;tag=raw{n}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            n = call.n
        );
        call.send(ack.as_bytes());
        let target = SocketAddr::from(([127, 0, 0, 1], rtp_port));
        for i in 0..400u32 {
            let mut pkt = match i % 4 {
                // RTP version 2 with random fields, CSRC counts and extension lengths.
                0 => {
                    let n = 12 + rng.below(300) as usize;
                    let mut p = rng.bytes(n);
                    p[0] = 0x80 | (p[0] & 0x3f);
                    p
                }
                1 => {
                    let n = rng.below(20) as usize;
                    rng.bytes(n)
                }
                2 => {
                    // telephone-event with nonsense events and durations
                    let mut p = vec![0x80, 101, 0, i as u8, 0, 0, 0, i as u8, 1, 2, 3, 4];
                    p.extend(rng.bytes(4));
                    p
                }
                _ => rng.bytes(1500),
            };
            if i % 50 == 0 {
                pkt.truncate(1);
            }
            rtp_in.send_to(&pkt, target).unwrap();
            // Spread over ~0.8 s, while the greeting plays.
            if i % 5 == 4 {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // The call's media still flows: fresh PCMU packets keep coming — 50 a
        // second while a prompt plays, one a second (the silence keepalive)
        // if a garbage telephone-event ended the greeting and it now records.
        rtp_in.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 2048];
        while rtp_in.recv(&mut buf).is_ok() {}
        rtp_in.set_nonblocking(false).unwrap();
        rtp_in
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let (mut fresh, until) = (0, Instant::now() + Duration::from_millis(1500));
        while Instant::now() < until {
            let n = rtp_in.recv(&mut buf).unwrap_or(0);
            if n == 12 + 160 && buf[0] >> 6 == 2 && buf[1] & 0x7f == 0 {
                fresh += 1;
            }
        }
        assert!(
            fresh >= 1,
            "no RTP packet in 1.5 s after the garbage\n{}",
            server.log()
        );
        assert_eq!(
            raw.options().as_deref(),
            Some("SIP/2.0 200 OK"),
            "during a call with garbage RTP: {}",
            server.log()
        );
        let bye_branch = call.next_branch();
        let bye = format!(
            "BYE sip:vm-201@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={bye_branch}\r\n\
             From: \"Raw\" <sip:300@{me}>;tag=raw1\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 2 BYE\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        call.send(bye.as_bytes());
        let (status, resp) =
            final_status(&call, &bye_branch, Duration::from_secs(3)).expect("an answer to the BYE");
        assert_eq!(
            status,
            200,
            "BYE of the call that got garbage RTP: {resp}\n{}",
            server.log()
        );
        assert!(
            server.wait_log(
                &format!("call finished call_id={call_id}"),
                Duration::from_secs(5)
            ),
            "{}",
            server.log()
        );
    }

    assert_eq!(
        raw.options().as_deref(),
        Some("SIP/2.0 200 OK"),
        "after the barrage: {}",
        server.log()
    );
    assert!(server.alive(), "the server died:\n{}", server.log());
    assert!(!server.log().contains("panicked"), "{}", server.log());
    // Four torture INVITEs (esc01, longreq, baddate, sdp01) became calls that
    // never get an ACK (their 200s go to the fixtures' Via addresses). They
    // end at the hard stop, so the server exits soon after the grace period.
    let took = server.stop(Duration::from_secs(15));
    eprintln!("malformed_input: exit {took:.2?} after SIGTERM");
    let log = server.log();
    assert!(
        log.contains("calls=4"),
        "the four torture calls were still up at shutdown\n{log}"
    );
    assert!(log.contains("grace period over"), "{log}");
    assert!(
        took < Duration::from_secs(5),
        "exit {took:?} after SIGTERM with a 2 s grace: unconfirmed calls must end at the hard stop\n{log}"
    );
}

/// SIGTERM during a call that is leaving a message: new calls get 503, the
/// call goes on for the grace period, then the server hangs up, stores the
/// message and exits 0.
#[test]
fn graceful_shutdown_keeps_the_message() {
    if !have_sipp("graceful_shutdown_keeps_the_message") {
        return;
    }
    let grace = Duration::from_secs(2);
    let mut server = Server::start(
        "shutdown",
        Setup {
            grace: "2s",
            ..Setup::default()
        },
    );
    let sipp = Sipp::spawn(
        &server,
        "shutdown",
        "leave_message_server_bye.xml",
        "vm-201",
        &[],
        40,
    );
    let t0 = Instant::now();
    assert!(
        server.wait_log("effect=leave_mail", Duration::from_secs(5)),
        "{}",
        server.log()
    );
    // The greeting and beep take ~8.1 s and speech starts at 8.6 s: stop
    // while the caller is speaking.
    std::thread::sleep(Duration::from_millis(10_500).saturating_sub(t0.elapsed()));
    let stop_at = Instant::now();
    server.sigterm();
    assert!(
        server.wait_log("shutting down", Duration::from_secs(2)),
        "{}",
        server.log()
    );

    // A new call during the grace period is refused.
    let mut raw = RawSip::new(server.ports.server(), server.ports.spare(0));
    let (branch, _, _) = raw.invite("vm-202", &sdp_offer(server.ports.spare(1)));
    let status = final_status(&raw, &branch, Duration::from_secs(1)).map(|s| s.0);
    assert_eq!(
        status,
        Some(503),
        "an INVITE while stopping\n{}",
        server.log()
    );

    let exit = server.wait_exit(grace + Duration::from_secs(8));
    let took = stop_at.elapsed();
    let run = sipp.wait();
    assert!(
        matches!(exit, Some(s) if s.success()),
        "exit {exit:?} after {took:?}\n{}",
        run.report(&server)
    );
    assert!(
        took >= grace,
        "the server left after {took:?}, before the grace period of {grace:?}"
    );
    assert!(
        run.ok(),
        "the caller must get the server's BYE\n{}",
        run.report(&server)
    );

    let log = server.log();
    assert!(log.contains("grace period over"), "{log}");
    assert!(log.contains("message stored"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    let (wavs, jsons) = messages(&server, "201");
    assert_eq!(
        (wavs.len(), jsons.len()),
        (1, 1),
        "one message: {wavs:?} {jsons:?}\n{log}"
    );
    let secs = wav_seconds(&wavs[0]);
    eprintln!("graceful_shutdown: exit {took:.2?} after SIGTERM, {secs:.2} s stored");
    // Recording starts after the greeting and beep (~8–9 s into the call) and the
    // server hung up ~12.7 s in: a few seconds of speech, however the timing falls.
    assert!(
        (1.5..=7.0).contains(&secs),
        "message lasts {secs:.2} s\n{log}"
    );
}
