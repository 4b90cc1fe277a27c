//! Running bundles from the command line: `vflow simulate` and `vflow test`
//! on a bundle equal the same on its source; `vflow serve` refuses a bundle
//! it cannot trust before it answers a call; `vflow reload` with no server.
//! (A server reloading under calls: e2e_reload.rs.)

use std::path::{Path, PathBuf};

mod common;
use common::*;

/// `examples/flows` built into `dir/examples.vfb`, signed by `dir/site.key`;
/// also a second key pair `other` that did not sign it.
fn built(dir: &Path) -> PathBuf {
    for name in ["site", "other"] {
        let (code, o, e) = run(vflow()
            .arg("keygen")
            .arg("--out")
            .arg(dir.join(format!("{name}.key"))));
        assert_eq!(code, 0, "{o}{e}");
    }
    let out = dir.join("examples.vfb");
    let (code, o, e) = run(vflow()
        .arg("build")
        .arg(repo().join("examples/flows"))
        .arg("-o")
        .arg(&out)
        .arg("--key")
        .arg(dir.join("site.key"))
        .args(["--serial", "7"]));
    assert_eq!(code, 0, "{o}{e}");
    out
}

#[test]
fn simulate_and_test_on_a_bundle_equal_them_on_its_source() {
    let d = temp_dir("same");
    let bundle = built(&d);
    let public = d.join("site.pub");
    let flows = repo().join("examples/flows");

    for (start, outcomes) in [
        ("named:Departments", "key:1,no_answer,recorded:5s"),
        ("named:Departments", "key:9,timeout,timeout,timeout"),
    ] {
        let sim = |path: &Path, keys: &[&Path]| {
            let mut c = vflow();
            c.arg("simulate").arg(path);
            for k in keys {
                c.arg("--trusted-key").arg(k);
            }
            run(c.args([
                "--start",
                start,
                "--outcomes",
                outcomes,
                "--at",
                "2026-03-02T10:00:00+01:00",
                "--format",
                "jsonl",
            ]))
        };
        let (code_src, from_source, e) = sim(&flows, &[]);
        assert_eq!(code_src, 0, "{e}");
        let (code, from_bundle, e) = sim(&bundle, &[&public]);
        assert_eq!(code, code_src, "{e}");
        assert!(from_source.lines().count() >= 2, "{from_source}");
        assert_eq!(from_bundle, from_source, "{start} {outcomes}");
    }

    // `vflow test`: the bundle in place of each test file's flows.
    let (code, source_out, e) = run(vflow().arg("test").arg(&flows));
    assert_eq!(code, 0, "{source_out}{e}");
    let (code, bundle_out, e) = run(vflow()
        .arg("test")
        .arg(&bundle)
        .arg(&flows)
        .arg("--trusted-key")
        .arg(&public));
    assert_eq!(code, 0, "{bundle_out}{e}");
    let summary = |s: &str| s.lines().last().unwrap_or("").to_string();
    assert!(
        summary(&source_out).ends_with(" passed, 0 failed"),
        "{source_out}"
    );
    assert_eq!(summary(&bundle_out), summary(&source_out));
    assert!(bundle_out.contains("testing bundle"), "{bundle_out}");

    // A test file may name the bundle as its flows.
    let tests = d.join("t");
    std::fs::create_dir_all(&tests).unwrap();
    std::fs::write(
        tests.join("b.test.yaml"),
        "flows: [../examples.vfb]\ntests:\n  - name: departments menu\n    start: named:Departments\n    outcomes: hangup\n    expect: {end: ended}\n",
    )
    .unwrap();
    let (code, o, e) = run(vflow()
        .arg("test")
        .arg(&tests)
        .arg("--trusted-key")
        .arg(&public));
    assert_eq!(code, 0, "{o}{e}");
    assert!(o.contains("1 passed, 0 failed"), "{o}");
    let (code, o, _) = run(vflow().arg("test").arg(&tests));
    assert_eq!(code, 1, "{o}");
    assert!(o.contains("FAIL") && o.contains("--trusted-key"), "{o}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_bundle_never_runs_unchecked() {
    let d = temp_dir("refuse");
    let bundle = built(&d);
    let sim = |extra: &[&std::ffi::OsStr]| {
        run(vflow().arg("simulate").arg(&bundle).args(extra).args([
            "--start",
            "named:Departments",
            "--outcomes",
            "hangup",
        ]))
    };

    // No trusted key: told what to pass, nothing runs.
    let (code, o, e) = sim(&[]);
    assert_eq!(code, 2, "{o}{e}");
    assert!(o.is_empty(), "{o}");
    assert!(e.contains("pass --trusted-key"), "{e}");
    let (code, o, e) = run(vflow()
        .arg("test")
        .arg(&bundle)
        .arg(repo().join("examples/flows")));
    assert_eq!(code, 2, "{o}{e}");
    assert!(e.contains("pass --trusted-key"), "{e}");

    // Signed by a key that is not trusted.
    let other = d.join("other.pub");
    let (code, o, e) = sim(&["--trusted-key".as_ref(), other.as_os_str()]);
    assert_eq!(code, 1, "{o}{e}");
    assert!(o.is_empty(), "{o}");
    assert!(e.contains("not trusted"), "{e}");

    // One byte changed, with a name that does not say `.vfb`: --trusted-key
    // says it is a bundle, so it is checked as one (not compiled as source).
    let mut bytes = std::fs::read(&bundle).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 0x20;
    let damaged = d.join("copy.bin");
    std::fs::write(&damaged, &bytes).unwrap();
    let public = d.join("site.pub");
    let (code, o, e) = run(vflow()
        .arg("simulate")
        .arg(&damaged)
        .arg("--trusted-key")
        .arg(&public)
        .args(["--start", "named:Departments", "--outcomes", "hangup"]));
    assert_eq!(code, 1, "{o}{e}");
    assert!(o.is_empty(), "{o}");
    assert!(
        e.contains("copy.bin") && e.contains("signature check failed"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn serve_refuses_an_untrusted_or_unconfigured_bundle() {
    let d = temp_dir("serve");
    let bundle = built(&d);
    let serve = |config: &str| {
        std::fs::write(d.join("vflow.yaml"), config).unwrap();
        run(vflow()
            .args(["serve", "--config", "vflow.yaml"])
            .current_dir(&d))
    };
    // No trusted keys: a configuration error naming file, line and key.
    let (code, _, e) = serve(&format!(
        "node:\n  data_dir: data\nflows:\n  bundle: {}\n",
        bundle.display()
    ));
    assert_eq!(code, 2, "{e}");
    assert!(
        e.contains("vflow.yaml:4") && e.contains("flows.bundle"),
        "{e}"
    );
    assert!(e.contains("trusted_keys"), "{e}");

    // Signed by a key that is not trusted: refused before answering anything
    // (port 9 is never bound; the server stops before SIP starts).
    let (code, _, e) = serve(&format!(
        "node:\n  data_dir: data\nflows:\n  bundle: {}\n  trusted_keys: [other.pub]\nsip:\n  listen: 127.0.0.1:9\n",
        bundle.display()
    ));
    assert_eq!(code, 1, "{e}");
    assert!(
        e.contains("examples.vfb") && e.contains("not trusted"),
        "{e}"
    );
    assert!(
        e.contains("security"),
        "the refusal is a security event: {e}"
    );
    assert!(!e.contains("vflow is listening"), "{e}");
    // A missing key file is named.
    let (code, _, e) = serve(&format!(
        "node:\n  data_dir: data\nflows:\n  bundle: {}\n  trusted_keys: [missing.pub]\n",
        bundle.display()
    ));
    assert_eq!(code, 1, "{e}");
    assert!(e.contains("missing.pub"), "{e}");
    // The socket of the server that did not start is gone.
    assert!(!d.join("data/control.sock").exists());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn reload_without_a_server() {
    let d = temp_dir("reload");
    std::fs::write(d.join("vflow.yaml"), "node:\n  data_dir: data\n").unwrap();
    let reload = |args: &[&str]| run(vflow().arg("reload").args(args).current_dir(&d));

    // Nothing at all there.
    let (code, o, e) = reload(&["--config", "vflow.yaml"]);
    assert_eq!(code, 2, "{o}{e}");
    assert!(o.is_empty(), "{o}");
    assert!(
        e.contains("no vflow server is running") && e.contains("data/control.sock"),
        "{e}"
    );
    assert!(e.contains("vflow serve --config vflow.yaml"), "{e}");
    // The defaults: `./var`.
    let (code, _, e) = reload(&["--rollback"]);
    assert_eq!(code, 2, "{e}");
    assert!(e.contains("var/control.sock"), "{e}");

    // A socket file left by a server that is gone.
    std::fs::create_dir_all(d.join("data")).unwrap();
    drop(std::os::unix::net::UnixListener::bind(d.join("data/control.sock")).unwrap());
    let (code, _, e) = reload(&["--config", "vflow.yaml", "--status"]);
    assert_eq!(code, 2, "{e}");
    assert!(e.contains("no vflow server is running"), "{e}");

    // Usage and configuration errors.
    let (code, _, e) = reload(&["--rollback", "--status"]);
    assert_eq!(code, 2, "{e}");
    std::fs::write(d.join("bad.yaml"), "node:\n  data_dri: x\n").unwrap();
    let (code, _, e) = reload(&["--config", "bad.yaml"]);
    assert_eq!(code, 2, "{e}");
    assert!(e.contains("bad.yaml:2") && e.contains("data_dri"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}
