//! `vflow mailbox` as an administrator runs it: exit codes, the PIN policy,
//! JSON listings, deleting messages and mailboxes, unlocking.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use vflow_runtime::config::PinConfig;
use vflow_runtime::store::{NewMessage, Store};
use vflow_runtime::voicemail::pin;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vflow-cli-mailbox-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn mailbox(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vflow"))
        .arg("mailbox")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", text(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

fn store_message(data: &Path, mailbox: &str) -> String {
    let store = Store::open(data).unwrap();
    let mut rec = store
        .begin_recording(&format!("cli-{}", std::process::id()))
        .unwrap();
    rec.append(&vec![0u8; 16_000]).unwrap();
    let m = store
        .commit_message(
            rec,
            &NewMessage {
                mailbox: mailbox.into(),
                caller: "300".into(),
                caller_name: "Bob".into(),
                received_ms: 1_790_000_000_000,
                priority: "urgent".into(),
                origin_node: "n1".into(),
                call_id: "call-1".into(),
                flow_node: "leave.take".into(),
            },
        )
        .unwrap();
    m.id
}

#[test]
fn add_refuses_a_weak_pin_and_never_shows_a_hash() {
    let d = temp_dir("add");
    for weak in ["1234", "1111", "201", "12", ""] {
        let o = mailbox(&d, &["add", "201", "--pin", weak]);
        assert_eq!(o.status.code(), Some(1), "PIN {weak:?}: {}", text(&o));
        assert!(text(&o).contains("the PIN"), "{}", text(&o));
    }
    assert_eq!(
        json(&mailbox(&d, &["list", "--json"])),
        serde_json::json!([]),
        "nothing was created"
    );

    let o = mailbox(
        &d,
        &[
            "add",
            "201",
            "--name",
            "Alice",
            "--pin",
            "4826",
            "--email",
            "a@example.com",
            "--email-mode",
            "attach",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = mailbox(&d, &["add", "201"]);
    assert_eq!(o.status.code(), Some(1), "exists: {}", text(&o));
    let o = mailbox(&d, &["add", "../etc"]);
    assert_eq!(o.status.code(), Some(1), "bad id: {}", text(&o));
    let o = mailbox(&d, &["add", "202", "--email-mode", "fax"]);
    assert_eq!(o.status.code(), Some(1), "bad mode: {}", text(&o));

    let list = json(&mailbox(&d, &["list", "--json"]));
    assert_eq!(list[0]["id"], "201");
    assert_eq!(list[0]["has_pin"], true);
    assert_eq!(list[0]["email_mode"], "attach");
    for args in [
        &["list"][..],
        &["show", "201"],
        &["show", "201", "--json"],
        &["list", "--json"],
    ] {
        let out = text(&mailbox(&d, args));
        assert!(
            !out.contains("argon2") && !out.contains("4826"),
            "{args:?} shows secrets: {out}"
        );
    }
    // The hash in the database verifies the PIN given on the command line.
    let store = Store::open(&d).unwrap();
    let who = pin::Attempt::default();
    assert_eq!(
        pin::verify(&store, &PinConfig::default(), "201", "4826", 0, &who).unwrap(),
        pin::PinCheck::Valid
    );
}

#[test]
fn set_changes_fields_pin_from_stdin_and_unlocks() {
    let d = temp_dir("set");
    assert!(
        mailbox(&d, &["add", "201", "--pin", "4826"])
            .status
            .success()
    );
    let o = mailbox(
        &d,
        &[
            "set",
            "201",
            "--max-messages",
            "5",
            "--max-length",
            "90s",
            "--name",
            "Al",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let v = json(&mailbox(&d, &["show", "201", "--json"]));
    assert_eq!(
        (
            v["max_messages"].as_u64(),
            v["max_message_ms"].as_u64(),
            v["name"].as_str()
        ),
        (Some(5), Some(90_000), Some("Al"))
    );

    // Lock the mailbox with wrong PINs, as calls would.
    let store = Store::open(&d).unwrap();
    let policy = PinConfig {
        lockout_attempts: 2,
        ..PinConfig::default()
    };
    let who = pin::Attempt::default();
    let now = vflow_runtime::store::now_ms();
    pin::verify(&store, &policy, "201", "0000", now, &who).unwrap();
    assert_eq!(
        pin::verify(&store, &policy, "201", "0001", now, &who).unwrap(),
        pin::PinCheck::Locked
    );
    assert_eq!(
        json(&mailbox(&d, &["show", "201", "--json"]))["locked"],
        true
    );
    assert!(text(&mailbox(&d, &["show", "201"])).contains("locked for"));
    assert!(mailbox(&d, &["set", "201", "--unlock"]).status.success());
    assert_eq!(
        json(&mailbox(&d, &["show", "201", "--json"]))["locked"],
        false
    );

    // A new PIN from standard input.
    let mut child = Command::new(env!("CARGO_BIN_EXE_vflow"))
        .args(["mailbox", "set", "201", "--pin-stdin", "--data-dir"])
        .arg(&d)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"5937\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        pin::verify(&store, &policy, "201", "5937", now, &who).unwrap(),
        pin::PinCheck::Valid
    );

    // No PIN: remote access off; default limits back.
    assert!(
        mailbox(&d, &["set", "201", "--no-pin", "--default-limits"])
            .status
            .success()
    );
    let v = json(&mailbox(&d, &["show", "201", "--json"]));
    assert_eq!(
        (v["has_pin"].as_bool(), v["max_messages"].as_u64()),
        (Some(false), Some(100))
    );
    assert_eq!(
        mailbox(&d, &["set", "999", "--name", "x"]).status.code(),
        Some(1)
    );
}

#[test]
fn messages_are_listed_and_deleted() {
    let d = temp_dir("messages");
    assert!(mailbox(&d, &["add", "201"]).status.success());
    let id = store_message(&d, "201");
    let v = json(&mailbox(&d, &["messages", "201", "--json"]));
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(
        (
            v[0]["id"].as_str(),
            v[0]["folder"].as_str(),
            v[0]["caller"].as_str()
        ),
        (Some(id.as_str()), Some("new"), Some("300"))
    );
    assert_eq!(
        (
            v[0]["duration_ms"].as_u64(),
            v[0]["priority"].as_str(),
            v[0]["audio"].as_bool()
        ),
        (Some(1000), Some("urgent"), Some(true))
    );
    assert_eq!(
        json(&mailbox(
            &d,
            &["messages", "201", "--folder", "saved", "--json"]
        )),
        serde_json::json!([])
    );
    let human = text(&mailbox(&d, &["messages", "201"]));
    assert!(human.contains(&id) && human.contains("urgent"), "{human}");
    assert_eq!(
        mailbox(&d, &["messages", "201", "--folder", "inbox"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(mailbox(&d, &["messages", "999"]).status.code(), Some(1));

    // A mailbox with messages needs --force.
    let o = mailbox(&d, &["delete", "201"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("--force"));

    let o = mailbox(&d, &["delete", "201", "--message", "not-an-id"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let o = mailbox(&d, &["delete", "201", "--message", &id]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!d.join("messages/201").join(format!("{id}.wav")).exists());
    assert_eq!(
        json(&mailbox(&d, &["messages", "201", "--json"])),
        serde_json::json!([])
    );

    store_message(&d, "201");
    let o = mailbox(&d, &["delete", "201", "--force"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("1 message"), "{}", text(&o));
    assert_eq!(
        json(&mailbox(&d, &["list", "--json"])),
        serde_json::json!([])
    );
    assert_eq!(mailbox(&d, &["delete", "201"]).status.code(), Some(1));
}

#[test]
fn config_supplies_the_data_dir_and_the_policy() {
    let d = temp_dir("config");
    let cfg = d.join("vflow.yaml");
    std::fs::write(
        &cfg,
        format!(
            "node:\n  data_dir: {}\nvoicemail:\n  pin:\n    min_length: 6\n",
            d.join("data").display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_vflow"))
            .arg("mailbox")
            .args(args)
            .arg("--config")
            .arg(&cfg)
            .output()
            .unwrap()
    };
    let o = run(&["add", "201", "--pin", "4826"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "too short for this policy: {}",
        text(&o)
    );
    let o = run(&["add", "201", "--pin", "482613"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(d.join("data/voicemail.db").is_file());
    let o = Command::new(env!("CARGO_BIN_EXE_vflow"))
        .args(["mailbox", "list", "--config"])
        .arg(d.join("missing.yaml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
