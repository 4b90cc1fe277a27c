//! `vflow keygen`, `vflow build` and `vflow inspect` as an operator runs them,
//! and the damage classes a server must refuse, each with its own message.

use std::path::{Path, PathBuf};

mod common;
use common::*;

/// A key pair in `dir` named `name.key` / `name.pub`.
fn keygen(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(format!("{name}.key"));
    let (code, out, err) = run(vflow().arg("keygen").arg("--out").arg(&key));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("key id"), "{out}");
    key
}

#[test]
fn build_then_inspect_shows_the_manifest_and_a_trusted_signature() {
    let d = temp_dir("inspect");
    let key = keygen(&d, "site");
    let out = d.join("examples.vfb");
    let (code, o, e) = run(vflow()
        .arg("build")
        .arg(repo().join("examples/flows"))
        .arg("-o")
        .arg(&out)
        .arg("--key")
        .arg(&key)
        .args(["--serial", "42"]));
    assert_eq!(code, 0, "{o}{e}");
    assert!(o.contains("serial 42"), "{o}");

    let (code, o, e) = run(vflow()
        .arg("inspect")
        .arg(&out)
        .arg("--trusted-key")
        .arg(d.join("site.pub")));
    assert_eq!(code, 0, "{o}{e}");
    assert!(o.contains("valid, by trusted key"), "{o}");
    assert!(o.contains("serial     42"), "{o}");
    assert!(o.contains("name       examples"), "{o}");
    assert!(
        o.contains("start named \"Departments\" -> departments"),
        "{o}"
    );
    assert!(
        o.contains("dep-menu.wav"),
        "prompts of the flows are carried: {o}"
    );
    assert!(o.contains("beep.wav"), "stdlib prompts are carried: {o}");
    assert!(o.contains("allow_transfer \"0\""), "{o}");

    let (code, o, _) = run(vflow().arg("inspect").arg(&out).args(["--format", "json"]));
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&o).unwrap();
    assert_eq!(v["manifest"]["serial"], 42);
    assert_eq!(v["signature"]["status"], "unchecked");
}

#[test]
fn damaged_or_foreign_bundles_are_refused_saying_which_check_failed() {
    let d = temp_dir("refuse");
    let key = keygen(&d, "site");
    let other = keygen(&d, "other");
    let good = d.join("good.vfb");
    let (code, o, e) = run(vflow()
        .arg("build")
        .arg(repo().join("flows"))
        .arg("-o")
        .arg(&good)
        .arg("--key")
        .arg(&key));
    assert_eq!(code, 0, "{o}{e}");
    let bytes = std::fs::read(&good).unwrap();
    let trusted = d.join("site.pub");

    let inspect = |file: &Path| {
        run(vflow()
            .arg("inspect")
            .arg(file)
            .arg("--trusted-key")
            .arg(&trusted))
    };
    let case = |name: &str, content: &[u8], expect: &str| {
        let p = d.join(name);
        std::fs::write(&p, content).unwrap();
        let (code, o, e) = inspect(&p);
        assert_eq!(code, 1, "{name}: {o}{e}");
        assert!(e.contains(expect), "{name}: expected `{expect}` in: {e}");
    };

    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x01;
    case("flipped.vfb", &flipped, "changed after it was signed");
    case(
        "truncated.vfb",
        &bytes[..bytes.len() - 10],
        "truncated bundle",
    );
    case(
        "unsigned.vfb",
        &bytes[..bytes.len() - 100],
        "unsigned bundle",
    );
    case(
        "notabundle.vfb",
        b"hello world, definitely not a bundle",
        "not a vflow bundle",
    );
    let mut future = bytes.clone();
    future[8] = 200;
    case("future.vfb", &future, "newer than this vflow reads");

    let foreign = d.join("foreign.vfb");
    let (code, _, _) = run(vflow()
        .arg("build")
        .arg(repo().join("flows"))
        .arg("-o")
        .arg(&foreign)
        .arg("--key")
        .arg(&other));
    assert_eq!(code, 0);
    let (code, o, e) = inspect(&foreign);
    assert_eq!(code, 1, "{o}{e}");
    assert!(e.contains("not trusted"), "{e}");
    assert!(o.contains("NOT TRUSTED"), "{o}");
}

#[test]
fn keygen_refuses_to_overwrite_and_build_needs_a_real_key() {
    let d = temp_dir("keygen");
    let key = keygen(&d, "site");
    let (code, _, e) = run(vflow().arg("keygen").arg("--out").arg(&key));
    assert_eq!(code, 2);
    assert!(e.contains("--force"), "{e}");
    let (code, _, e) = run(vflow()
        .arg("build")
        .arg(repo().join("flows"))
        .arg("-o")
        .arg(d.join("x.vfb"))
        .arg("--key")
        .arg(d.join("site.pub")));
    assert_eq!(code, 2);
    assert!(e.contains("BEGIN PRIVATE KEY"), "{e}");
    assert!(!d.join("x.vfb").exists());
}
