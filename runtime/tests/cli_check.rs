//! `vflow check` as a user runs it: exit codes, human and JSON output.

use std::path::{Path, PathBuf};
use std::process::Command;

fn vflow() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vflow"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vflow-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("prompts")).unwrap();
    d
}

#[test]
fn shipped_flows_check_clean() {
    let out = vflow()
        .current_dir(repo())
        .args(["check", "flows", "stdlib", "examples"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vflow check flows stdlib examples failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn five_errors_are_all_reported_with_line_and_column() {
    let d = temp_dir("five");
    std::fs::write(d.join("prompts/hello.wav"), b"").unwrap();
    let src = "\
flow f {
  start named \"main\" -> m
  menu m { prompt \"hello.wav\" on \"1\" -> nowhere on exhausted -> bye }
  play p { prompt \"missing.wav\" on next -> bye }
  set s { $CLI = \"1\" on next -> bye }
  test t { if 1 + \"a\" on true -> bye on false -> bye }
  transfer x { to \"5555\" on busy -> bye on no_answer -> bye on failure -> bye }
  hangup bye
}
";
    let f = d.join("five.vflow");
    std::fs::write(&f, src).unwrap();
    let out = vflow()
        .args(["check", "--format", "json"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let items: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let errors: Vec<(u64, u64, String)> = items
        .iter()
        .filter(|d| d["severity"] == "error")
        .map(|d| {
            (
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
                d["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            (3, 41, "V0110".to_string()),
            (4, 19, "V0401".to_string()),
            (5, 11, "V0302".to_string()),
            (6, 15, "V0301".to_string()),
            (7, 19, "V0403".to_string()),
        ],
        "{items:#?}"
    );
    for d in &items {
        for key in [
            "file", "line", "column", "code", "severity", "message", "help",
        ] {
            assert!(d.get(key).is_some(), "missing {key} in {d}");
        }
        assert!(
            !d["help"].as_str().unwrap().is_empty(),
            "every diagnostic says how to fix it: {d}"
        );
    }
}

#[test]
fn warnings_fail_only_with_deny_warnings() {
    let d = temp_dir("warn");
    let f = d.join("w.vflow");
    // `orphan` is unreachable: a warning.
    std::fs::write(
        &f,
        "flow f {\n  start named \"w\" -> bye\n  hangup bye\n  hangup orphan\n}\n",
    )
    .unwrap();
    let out = vflow().arg("check").arg(&f).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("V0502") && text.contains("w.vflow:4:10"),
        "{text}"
    );
    let out = vflow()
        .arg("check")
        .arg("--deny-warnings")
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn usage_and_io_errors_exit_2() {
    let out = vflow()
        .args(["check", "/nonexistent/path.vflow"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/path.vflow"));
    let out = vflow().args(["check", "--format", "xml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let empty = temp_dir("empty");
    let out = vflow().arg("check").arg(&empty).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "a directory without .vflow files is a usage error"
    );
}

#[test]
fn directories_are_searched_recursively() {
    let d = temp_dir("rec");
    std::fs::create_dir_all(d.join("a/b")).unwrap();
    std::fs::write(
        d.join("a/b/deep.vflow"),
        "flow deep {\n  start named \"deep\" -> x\n  hangup x\n  bogus y\n}\n",
    )
    .unwrap();
    let out = vflow()
        .args(["check", "--format", "json"])
        .arg(&d)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let items: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        items
            .iter()
            .any(|i| i["code"] == "V0120" && i["file"].as_str().unwrap().ends_with("deep.vflow")),
        "{items:#?}"
    );
}
