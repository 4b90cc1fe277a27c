//! Data-driven checker tests over `tests/fixtures/{valid,invalid}/*.vflow`.
//!
//! - valid: each file checks with zero diagnostics;
//! - invalid: each line ending in `//~ V0110 V0503` must get exactly those codes
//!   on that line, and no other line may get any; the rendered reports are
//!   snapshotted (insta) so message, label and help changes are reviewed.
//!
//! Prompts `welcome.wav menu.wav bye.wav closed.wav hold.wav` exist beside the
//! fixtures; the embedded stdlib is available under `std/`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use vflow_compiler::check;
use vflow_compiler::source::{MemoryWorld, World};

const PROMPTS: &[&str] = &[
    "welcome.wav",
    "menu.wav",
    "bye.wav",
    "closed.wav",
    "hold.wav",
];

fn fixture_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind)
}

fn files(kind: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixture_dir(kind))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "vflow"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A world holding every fixture of the folder (for imports) and the stdlib.
fn world(kind: &str) -> MemoryWorld {
    let mut w = MemoryWorld::with_stdlib();
    for p in files(kind) {
        let name = format!("{kind}/{}", p.file_name().unwrap().to_string_lossy());
        w.add(&name, &std::fs::read_to_string(&p).unwrap());
    }
    for p in PROMPTS {
        w.add_prompt(&format!("{kind}/prompts/{p}"));
    }
    w
}

fn check_one(kind: &str, path: &Path) -> (MemoryWorld, check::Checked) {
    let mut w = world(kind);
    let id = w
        .id(&format!(
            "{kind}/{}",
            path.file_name().unwrap().to_string_lossy()
        ))
        .unwrap();
    let checked = check::check(&mut w, &[id]);
    (w, checked)
}

fn render(w: &MemoryWorld, checked: &check::Checked) -> String {
    checked
        .diagnostics
        .iter()
        .map(|d| d.render(w.file(d.file), |id| Some(w.file(id)), false))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn valid_fixtures_have_no_diagnostics() {
    let all = files("valid");
    assert!(!all.is_empty(), "no valid fixtures found");
    let mut failures = Vec::new();
    for p in &all {
        let (w, checked) = check_one("valid", p);
        if !checked.diagnostics.is_empty() {
            failures.push(format!("{}:\n{}", p.display(), render(&w, &checked)));
        }
    }
    assert!(
        failures.is_empty(),
        "valid fixtures with diagnostics:\n{}",
        failures.join("\n")
    );
}

#[test]
fn invalid_fixtures_report_the_annotated_codes() {
    let all = files("invalid");
    assert!(!all.is_empty(), "no invalid fixtures found");
    let mut failures = Vec::new();
    for p in &all {
        let text = std::fs::read_to_string(p).unwrap();
        let mut expected = BTreeSet::new();
        for (i, line) in text.lines().enumerate() {
            if let Some((_, ann)) = line.split_once("//~") {
                for code in ann.split_whitespace() {
                    expected.insert((i + 1, code.to_string()));
                }
            }
        }
        assert!(
            !expected.is_empty(),
            "{}: an invalid fixture needs at least one `//~ CODE` annotation",
            p.display()
        );
        let (w, checked) = check_one("invalid", p);
        // Only the fixture's own diagnostics count; an imported fixture is
        // checked (and annotated) as a root of its own.
        let file = checked.program.files[0].id;
        let actual: BTreeSet<(usize, String)> = checked
            .diagnostics
            .iter()
            .filter(|d| d.file == file)
            .map(|d| {
                (
                    w.file(file).line_col(d.span.start).0,
                    d.code.as_str().to_string(),
                )
            })
            .collect();
        if actual != expected {
            let missing: Vec<_> = expected.difference(&actual).collect();
            let extra: Vec<_> = actual.difference(&expected).collect();
            failures.push(format!(
                "{}\n  missing (line, code): {missing:?}\n  unexpected: {extra:?}\n{}",
                p.display(),
                render(&w, &checked)
            ));
        }
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(name, render(&w, &checked));
        });
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_code_has_an_invalid_fixture() {
    let mut seen = BTreeSet::new();
    for p in files("invalid") {
        let text = std::fs::read_to_string(&p).unwrap();
        for line in text.lines() {
            if let Some((_, ann)) = line.split_once("//~") {
                seen.extend(ann.split_whitespace().map(str::to_string));
            }
        }
    }
    let missing: Vec<&str> = vflow_compiler::diag::Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !seen.contains(*c))
        .collect();
    assert!(
        missing.is_empty(),
        "codes without an invalid fixture: {missing:?}"
    );
}
