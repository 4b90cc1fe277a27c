//! `vflow simulate`, `vflow test` and `vflow ir` as a user runs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn vflow() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vflow"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vflow-sim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("prompts")).unwrap();
    std::fs::write(d.join("prompts/welcome.wav"), b"").unwrap();
    std::fs::write(d.join("prompts/closed.wav"), b"").unwrap();
    std::fs::write(
        d.join("f.vflow"),
        r#"allow_transfer "2xxx"
time_profile open { mon..fri 09:00..17:00 }
flow f {
  start auto_attendant "Main" -> route
  var n: int = 0
  switch route { when in_profile(open) -> m  else -> closed }
  menu m { prompt "welcome.wav"  on "1" -> t  on "2" -> s  on exhausted -> bye }
  transfer t { to "2001"  on busy -> vm  on no_answer -> vm  on failure -> vm }
  set s { n = 10 / n  on next -> bye }
  leave_mail vm { mailbox "2001"  on next -> bye  on failure -> bye }
  play closed { prompt "closed.wav"  say digits $CLI  on next -> bye }
  hangup bye
}
"#,
    )
    .unwrap();
    d
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn simulate_prints_effects_as_jsonl() {
    let d = temp_dir("jsonl");
    let out = vflow()
        .current_dir(&d)
        .args([
            "simulate",
            "f.vflow",
            "--start",
            "auto_attendant:Main",
            "--at",
            "2026-03-02T10:00:00+01:00",
        ])
        .args(["--outcomes", "key:1,busy,recorded:5s", "--format", "jsonl"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["effect"], "menu");
    assert_eq!(
        lines[1],
        serde_json::json!({"effect": "transfer", "target": "2001"})
    );
    assert_eq!(lines[2]["effect"], "leave_mail");
    assert_eq!(lines[2]["mailbox"], "2001");
    assert_eq!(lines[3], serde_json::json!({"effect": "hangup"}));
    assert_eq!(lines.len(), 4);
}

#[test]
fn simulate_uses_the_clock_and_caller() {
    let d = temp_dir("clock");
    let out = vflow()
        .current_dir(&d)
        .args([
            "simulate",
            "f.vflow",
            "--start",
            "auto_attendant:Main",
            "--at",
            "2026-03-07T10:00:00+01:00",
        ])
        .args(["--cli", "0123", "--outcomes", "ok"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let s = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        s.lines().collect::<Vec<_>>(),
        [
            r#"play [closed.wav, say digits "0123"] barge_in=false"#,
            "hangup"
        ]
    );
}

#[test]
fn simulate_when_outcomes_run_out_times_out_then_hangs_up() {
    let d = temp_dir("runout");
    let out = vflow()
        .current_dir(&d)
        .args([
            "simulate",
            "f.vflow",
            "--start",
            "auto_attendant:Main",
            "--at",
            "2026-03-02T10:00:00Z",
        ])
        .args(["--outcomes", ""])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<_> = s.lines().collect();
    assert_eq!(lines.len(), 3, "{s}");
    assert!(lines[0].starts_with("menu") && lines[1].starts_with("menu"));
    assert_eq!(lines[2], "ended");
}

#[test]
fn simulate_reports_faults_with_file_and_line_and_exit_1() {
    let d = temp_dir("fault");
    let out = vflow()
        .current_dir(&d)
        .args([
            "simulate",
            "f.vflow",
            "--start",
            "auto_attendant:Main",
            "--at",
            "2026-03-02T10:00:00Z",
            "--outcomes",
            "key:2",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains(r#"fault file=f.vflow line=9 message="division by zero""#),
        "{}",
        text(&out)
    );
}

#[test]
fn simulate_usage_errors_exit_2() {
    let d = temp_dir("usage");
    for args in [
        vec!["--start", "nope"],
        vec!["--start", "leave:1"],
        vec!["--start", "auto_attendant:Main", "--outcomes", "bogus"],
        vec!["--start", "auto_attendant:Main", "--at", "yesterday"],
    ] {
        let out = vflow()
            .current_dir(&d)
            .arg("simulate")
            .arg("f.vflow")
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
    }
}

#[test]
fn test_runner_passes_fails_with_a_diff_and_reports_coverage() {
    let d = temp_dir("test");
    std::fs::write(
        d.join("f.test.yaml"),
        r#"defaults:
  start: auto_attendant:Main
  at: 2026-03-02T10:00:00Z
tests:
  - name: busy goes to voicemail
    outcomes: key:1, busy, recorded:5s
    expect:
      effects: [menu, {effect: transfer, target: 2001}, leave_mail, hangup]
      messages: ["2001"]
      final_node: bye
  - name: division by zero
    outcomes: [key:2]
    expect: { fault: division by zero, vars: { n: 0 } }
"#,
    )
    .unwrap();
    let out = vflow()
        .current_dir(&d)
        .args(["test", "--coverage"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let s = text(&out);
    assert!(s.contains("2 passed, 0 failed"), "{s}");
    assert!(s.contains("f ") && s.contains("missing: closed"), "{s}");

    std::fs::write(
        d.join("f.test.yaml"),
        "tests:\n  - name: wrong target\n    start: auto_attendant:Main\n    at: 2026-03-02T10:00:00Z\n    outcomes: key:1,ok\n    expect:\n      effects: [menu, transfer target=2002, hangup]\n",
    )
    .unwrap();
    let out = vflow().current_dir(&d).arg("test").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let s = text(&out);
    assert!(
        s.contains("- transfer target=2002") && s.contains("+ transfer target=2001"),
        "{s}"
    );

    std::fs::write(
        d.join("f.test.yaml"),
        "tests:\n  - name: typo\n    strat: x\n",
    )
    .unwrap();
    let out = vflow().current_dir(&d).arg("test").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("unknown field `strat`"),
        "{}",
        text(&out)
    );
}

#[test]
fn ir_text_round_trips_for_the_shipped_flows() {
    for dir in ["flows", "stdlib", "examples"] {
        let out = vflow()
            .current_dir(repo())
            .args(["ir", dir])
            .output()
            .unwrap();
        assert!(out.status.success(), "{dir}: {}", text(&out));
        let path = std::env::temp_dir().join(format!("vflow-ir-{dir}-{}.ir", std::process::id()));
        std::fs::write(&path, &out.stdout).unwrap();
        let back = vflow().args(["ir", "--parse"]).arg(&path).output().unwrap();
        assert!(back.status.success(), "{dir}: {}", text(&back));
        assert_eq!(back.stdout, out.stdout, "{dir}");
        let _ = std::fs::remove_file(&path);
    }
}
