//! End-to-end tests of the lamp and the email: `vflow serve` on loopback, a
//! message left by sipp (tests/sipp/leave_message.xml), and receivers nobody
//! here wrote:
//! - the MWI NOTIFY is caught by a sipp UAS (tests/sipp/mwi_uas.xml), and a
//!   SUBSCRIBE from a raw UDP socket gets its own NOTIFYs;
//! - the email is received by Python's `aiosmtpd` (Debian `python3-aiosmtpd`,
//!   installed by tools/test.sh) into a Maildir, parsed back with
//!   `mail-parser`, and its WAV compared byte for byte with the stored one;
//! - with the relay down at first, the email waits in the queue and arrives
//!   once the relay is up (forward mode: only then is the message removed).
//!
//! Every wait is bounded and every child is killed on drop. Without sipp or
//! aiosmtpd a test prints why and passes, unless `CI` is set. A failing test
//! keeps its directory; `VFLOW_E2E_KEEP=1` keeps them all. The shared helpers are
//! in runtime/tests/common.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use std::time::{Duration, Instant};

use mail_parser::MimeHeaders;

mod common;
use common::*;

// ---- environment -------------------------------------------------------------

/// A Python that can run `aiosmtpd` (the Debian package installs it for
/// /usr/bin/python3, which a pyenv or venv `python3` may hide).
fn aiosmtpd_python() -> Option<&'static str> {
    ["python3", "/usr/bin/python3"].into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

// ---- ports -------------------------------------------------------------------

// ---- children ------------------------------------------------------------------

// ---- the server ----------------------------------------------------------------

/// A running `vflow serve` with its own directory, killed when dropped.
struct Server {
    proc: Proc,
    dir: PathBuf,
    ports: Ports,
}

impl Server {
    /// `extra`: YAML appended to the config (top-level sections); `mailbox`:
    /// the flow-style fields of mailbox 201 after its id.
    fn start(name: &str, ports: Ports, mailbox: &str, extra: &str) -> Server {
        let dir =
            std::env::temp_dir().join(format!("vflow-e2e-mail-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the test directory");
        let (rtp_first, rtp_last) = ports.rtp();
        let root = repo();
        let config = format!(
            "# written by runtime/tests/e2e_mail.rs ({name})\n\
             node:\n  name: e2e-{name}\n  data_dir: {data}\n  time_zone: UTC\n\
             flows:\n  paths: [{flows}, {test_flows}]\n  engine: jit\n\
             sip:\n  listen: 127.0.0.1:{sip}\n  trusted_peers: [127.0.0.0/8]\n\
             rtp:\n  ports: {rtp_first}-{rtp_last}\n  timeout: 20s\n\
             shutdown:\n  grace: 2s\n\
             voicemail:\n  mailboxes:\n    - {{id: \"201\"{mailbox}}}\n{extra}",
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
        let server = Server { proc, dir, ports };
        assert!(
            server.wait_log("vflow is listening", Duration::from_secs(30)),
            "vflow serve did not listen:\n{}",
            server.log()
        );
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
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

    /// sipp leaves a message of real speech in 201 (about 16 s).
    fn leave_message(&self, tag: &str) {
        let p = self.ports;
        let mut sipp = Proc::spawn(
            Command::new("sipp")
                .arg(format!("127.0.0.1:{}", p.sip()))
                .arg("-sf")
                .arg(scenario("leave_message.xml"))
                .args(["-s", "vm-201", "-m", "1", "-l", "1", "-r", "1"])
                .args(["-i", "127.0.0.1", "-p", &p.sipp().to_string()])
                .args(["-mi", "127.0.0.1", "-mp", &p.sipp_media().to_string()])
                .args([
                    "-timeout",
                    "40s",
                    "-timeout_error",
                    "-nostdin",
                    "-max_retrans",
                    "5",
                ])
                .current_dir(&self.dir),
            self.dir.join(format!("sipp-{tag}.log")),
        );
        let status = sipp.wait(Duration::from_secs(45));
        assert!(
            status.is_some_and(|s| s.success()),
            "leaving a message failed ({status:?}):\n{}\n--- server ---\n{}",
            sipp.output(),
            self.log()
        );
        assert!(
            self.wait_log("message stored", Duration::from_secs(5)),
            "{}",
            self.log()
        );
    }

    /// The one message of 201: its row and its WAV bytes.
    fn the_message(&self) -> (vflow_runtime::store::Message, Vec<u8>) {
        let store = vflow_runtime::store::Store::open(&self.data()).expect("open the store");
        let mut rows = store.messages("201", None).expect("list the messages");
        assert_eq!(rows.len(), 1, "{rows:?}");
        let m = rows.remove(0);
        let wav = std::fs::read(store.message_path("201", &m.id)).expect("read the message WAV");
        (m, wav)
    }

    fn pending_emails(&self) -> usize {
        let store = vflow_runtime::store::Store::open(&self.data()).expect("open the store");
        store
            .outbox_due("email", i64::MAX, 100)
            .expect("read the outbox")
            .len()
    }

    fn stop(mut self) {
        self.proc.terminate();
        let status = self.proc.wait(Duration::from_secs(10));
        assert!(
            status.is_some_and(|s| s.success()),
            "vflow serve did not stop cleanly ({status:?}):\n{}",
            self.log()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.proc.kill();
        if std::thread::panicking() || std::env::var_os("VFLOW_E2E_KEEP").is_some() {
            eprintln!("test files kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

// ---- receivers -------------------------------------------------------------------

/// `aiosmtpd` on loopback, delivering into a Maildir.
struct Smtpd {
    _proc: Proc,
    maildir: PathBuf,
}

impl Smtpd {
    fn start(python: &str, dir: &Path, port: u16) -> Smtpd {
        let maildir = dir.join(format!("maildir-{port}"));
        let proc = Proc::spawn(
            Command::new(python)
                .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
                .args(["-c", "aiosmtpd.handlers.Mailbox"])
                .arg(&maildir),
            dir.join(format!("aiosmtpd-{port}.log")),
        );
        // Listening?
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen on {port}:\n{}",
                proc.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Smtpd {
            _proc: proc,
            maildir,
        }
    }

    /// The raw emails received so far.
    fn received(&self) -> Vec<Vec<u8>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.maildir.join("new"))
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files.iter().filter_map(|f| std::fs::read(f).ok()).collect()
    }

    fn wait_for(&self, n: usize, within: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The NOTIFYs in a sipp `-trace_msg` log, each up to the next separator.
fn notifies(log: &str) -> Vec<String> {
    log.match_indices("NOTIFY sip:")
        .map(|(i, _)| {
            let rest = &log[i..];
            let end = rest.find("\n----").unwrap_or(rest.len());
            rest[..end].to_string()
        })
        .collect()
}

/// Checks a voicemail email against the stored message.
fn check_email(raw: &[u8], wav: &[u8], m: &vflow_runtime::store::Message) {
    let mail = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("the email parses as MIME");
    assert_eq!(mail.subject(), Some("Voicemail from 300 for 201"));
    assert_eq!(
        mail.to().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("alice@example.com")
    );
    assert_eq!(
        mail.from()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some("vm@example.com")
    );
    let text = mail.body_text(0).expect("a text part");
    assert!(
        text.contains(&m.id) && text.contains("From:     300 \"Test Caller\""),
        "{text}"
    );
    assert_eq!(mail.attachment_count(), 1);
    let att = mail.attachment(0).expect("the WAV");
    assert_eq!(
        att.content_type().map(|t| (t.ctype(), t.subtype())),
        Some(("audio", Some("wav")))
    );
    assert!(
        att.attachment_name()
            .is_some_and(|n| n.starts_with("voicemail-201-") && n.ends_with(".wav"))
    );
    assert_eq!(att.contents().len(), wav.len(), "attachment size");
    assert!(
        att.contents() == wav,
        "the attachment is the stored WAV, byte for byte"
    );
    assert_eq!(&wav[..4], b"RIFF");
}

// ---- the tests -----------------------------------------------------------------

/// The lamp: an unsolicited NOTIFY to 201's target at start (off), then one
/// when a message is left (on, 1 new); a SUBSCRIBE gets the same state in
/// its own dialog, and an un-SUBSCRIBE the last, terminated NOTIFY.
#[test]
fn mwi_notify_caught_by_sipp_and_subscribe() {
    if !have_sipp("mwi_notify_caught_by_sipp_and_subscribe") {
        return;
    }
    let ports = Ports::allocate(137);
    let uas_port = ports.spare(0);
    let dir = std::env::temp_dir().join(format!("vflow-e2e-mail-{}-mwi-uas", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a directory");
    let uas_log = dir.join("uas-messages.log");
    let _ = std::fs::remove_file(&uas_log);
    // Up before the server: it takes the NOTIFY at start and the one after the message.
    let mut uas = Proc::spawn(
        Command::new("sipp")
            .arg("-sf")
            .arg(scenario("mwi_uas.xml"))
            .args(["-i", "127.0.0.1", "-p", &uas_port.to_string(), "-m", "2"])
            .args([
                "-timeout",
                "60s",
                "-timeout_error",
                "-nostdin",
                "-trace_msg",
                "-message_file",
            ])
            .arg(&uas_log)
            .current_dir(&dir),
        dir.join("uas-screen.log"),
    );
    std::thread::sleep(Duration::from_millis(300));
    let server = Server::start(
        "mwi",
        ports,
        &format!(", mwi: \"sip:201@127.0.0.1:{uas_port}\""),
        "mwi:\n  refresh: 1h\n",
    );
    server.leave_message("mwi");
    let status = uas.wait(Duration::from_secs(20));
    let log = std::fs::read_to_string(&uas_log).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "the sipp UAS did not take two NOTIFYs ({status:?}):\n{}\n{log}\n--- server ---\n{}",
        uas.output(),
        server.log()
    );
    let n = notifies(&log);
    assert_eq!(n.len(), 2, "{log}");
    for msg in &n {
        assert!(
            msg.starts_with(&format!("NOTIFY sip:201@127.0.0.1:{uas_port} SIP/2.0")),
            "{msg}"
        );
        assert!(msg.contains("Event: message-summary"), "{msg}");
        assert!(
            msg.contains("Content-Type: application/simple-message-summary"),
            "{msg}"
        );
        assert!(msg.contains("Message-Account: sip:201@127.0.0.1"), "{msg}");
    }
    assert!(
        n[0].contains("Messages-Waiting: no") && n[0].contains("Voice-Message: 0/0 (0/0)"),
        "at start: {}",
        n[0]
    );
    assert!(
        n[1].contains("Messages-Waiting: yes") && n[1].contains("Voice-Message: 1/0 (0/0)"),
        "after the message: {}",
        n[1]
    );

    // A phone subscribes: 200 with Expires, then a NOTIFY with the counts.
    let sock = UdpSocket::bind(("127.0.0.1", ports.spare(1))).expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let me = sock.local_addr().expect("an address");
    let srv = SocketAddr::from(([127, 0, 0, 1], ports.sip()));
    let subscribe = |branch: &str, cseq: u32, to_tag: &str, expires: u32| {
        format!(
            "SUBSCRIBE sip:201@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={branch};rport\r\n\
             From: <sip:201@{me}>;tag=phone\r\nTo: <sip:201@{srv}>{to_tag}\r\nCall-ID: mwi-sub-{}\r\n\
             CSeq: {cseq} SUBSCRIBE\r\nContact: <sip:201@{me}>\r\nMax-Forwards: 70\r\n\
             Event: message-summary\r\nAccept: application/simple-message-summary\r\nExpires: {expires}\r\nContent-Length: 0\r\n\r\n",
            std::process::id()
        )
    };
    // Reads until a response to `branch` and a NOTIFY have come; answers the NOTIFY 200.
    let exchange = |msg: String, branch: &str| -> (String, String) {
        sock.send_to(msg.as_bytes(), srv).expect("send");
        let (mut resp, mut notify) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = vec![0u8; 65_536];
        while (resp.is_none() || notify.is_none()) && Instant::now() < deadline {
            let Ok((n, _)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with("SIP/2.0") && text.contains(branch) {
                resp = Some(text);
            } else if text.starts_with("NOTIFY ") {
                let h = |name: &str| {
                    text.lines()
                        .find(|l| {
                            l.to_ascii_lowercase()
                                .starts_with(&format!("{}:", name.to_ascii_lowercase()))
                        })
                        .unwrap_or("")
                        .to_string()
                };
                let ok = format!(
                    "SIP/2.0 200 OK\r\n{}\r\n{}\r\n{}\r\n{}\r\n{}\r\nContent-Length: 0\r\n\r\n",
                    h("Via"),
                    h("From"),
                    h("To"),
                    h("Call-ID"),
                    h("CSeq")
                );
                sock.send_to(ok.as_bytes(), srv).expect("send");
                notify = Some(text);
            }
        }
        (
            resp.unwrap_or_else(|| panic!("no response to SUBSCRIBE\n{}", server.log())),
            notify.unwrap_or_else(|| panic!("no NOTIFY after SUBSCRIBE\n{}", server.log())),
        )
    };
    let (ok, notify) = exchange(subscribe("z9hG4bK-sub1", 1, "", 600), "z9hG4bK-sub1");
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(ok.contains("Expires: 600"), "{ok}");
    assert!(
        notify.contains("Subscription-State: active;expires="),
        "{notify}"
    );
    assert!(
        notify.contains("Messages-Waiting: yes") && notify.contains("Voice-Message: 1/0 (0/0)"),
        "{notify}"
    );
    let tag = ok
        .lines()
        .find(|l| l.starts_with("To:"))
        .and_then(|l| l.split(";tag=").nth(1))
        .expect("a To tag")
        .trim()
        .to_string();
    // Un-SUBSCRIBE: 200 Expires 0, the last NOTIFY is terminated.
    let (ok, notify) = exchange(
        subscribe("z9hG4bK-sub2", 2, &format!(";tag={tag}"), 0),
        "z9hG4bK-sub2",
    );
    assert!(
        ok.starts_with("SIP/2.0 200") && ok.contains("Expires: 0"),
        "{ok}"
    );
    assert!(
        notify.contains("Subscription-State: terminated"),
        "{notify}"
    );
    assert!(notify.contains("Voice-Message: 1/0 (0/0)"), "{notify}");
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// attach: the email reaches a real SMTP server with the WAV intact, and
/// the message stays in the mailbox.
#[test]
fn email_with_the_wav_reaches_aiosmtpd() {
    let test = "email_with_the_wav_reaches_aiosmtpd";
    if !have_sipp(test) {
        return;
    }
    let Some(python) = aiosmtpd_python() else {
        skip(
            test,
            "Python's `aiosmtpd` is not installed (Debian package python3-aiosmtpd)",
        );
        return;
    };
    let ports = Ports::allocate(137);
    let smtp_port = ports.spare(2);
    let server = Server::start(
        "email",
        ports,
        ", email: alice@example.com, email_mode: attach",
        &format!(
            "email:\n  relay: 127.0.0.1\n  port: {smtp_port}\n  security: plain\n  from: \"Voicemail <vm@example.com>\"\n  \
             subject: \"Voicemail from {{caller}} for {{mailbox}}\"\n  retry_first: 1s\n  retry_max: 2s\n"
        ),
    );
    let smtpd = Smtpd::start(python, &server.dir, smtp_port);
    server.leave_message("email");
    let got = smtpd.wait_for(1, Duration::from_secs(20));
    assert_eq!(got.len(), 1, "one email\n{}", server.log());
    let (m, wav) = server.the_message();
    check_email(&got[0], &wav, &m);
    assert!(
        server.wait_log("email: accepted by the relay", Duration::from_secs(5)),
        "{}",
        server.log()
    );
    assert_eq!(server.pending_emails(), 0, "the queue is empty");
    server.stop();
}

/// forward, with the relay down at first: the email stays queued and is
/// retried with backoff; the message stays in the mailbox. Once the relay is
/// up the email arrives with the WAV, and only then is the message removed.
#[test]
fn a_relay_down_at_first_gets_the_email_later() {
    let test = "a_relay_down_at_first_gets_the_email_later";
    if !have_sipp(test) {
        return;
    }
    let Some(python) = aiosmtpd_python() else {
        skip(
            test,
            "Python's `aiosmtpd` is not installed (Debian package python3-aiosmtpd)",
        );
        return;
    };
    let ports = Ports::allocate(137);
    let smtp_port = ports.spare(3);
    let server = Server::start(
        "relay-down",
        ports,
        ", email: alice@example.com, email_mode: forward",
        &format!(
            "email:\n  relay: 127.0.0.1\n  port: {smtp_port}\n  security: plain\n  from: vm@example.com\n  \
             subject: \"Voicemail from {{caller}} for {{mailbox}}\"\n  timeout: 5s\n  retry_first: 1s\n  retry_max: 2s\n"
        ),
    );
    server.leave_message("relay-down");
    let (m, wav) = server.the_message();
    // Nobody listens: attempts fail, the entry stays, the message too.
    let deadline = Instant::now() + Duration::from_secs(15);
    while server
        .log()
        .matches("email: not delivered; will retry")
        .count()
        < 2
    {
        assert!(
            Instant::now() < deadline,
            "no two failed attempts:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(server.pending_emails(), 1);
    let (still, _) = server.the_message();
    assert_eq!(still.id, m.id, "the message stays while the relay is down");

    let smtpd = Smtpd::start(python, &server.dir, smtp_port);
    let got = smtpd.wait_for(1, Duration::from_secs(15));
    assert_eq!(
        got.len(),
        1,
        "the email arrives once the relay is up\n{}",
        server.log()
    );
    check_email(&got[0], &wav, &m);
    assert!(
        server.wait_log("email: forwarded message removed", Duration::from_secs(5)),
        "{}",
        server.log()
    );
    let store = vflow_runtime::store::Store::open(&server.data()).expect("open the store");
    assert!(
        store.message(&m.id).expect("read").is_none(),
        "forwarded: removed after delivery"
    );
    assert!(!store.message_path("201", &m.id).exists());
    assert_eq!(server.pending_emails(), 0);
    server.stop();
}
