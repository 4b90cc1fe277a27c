//! The format, the loader's checks one by one, and robustness against damage.

use super::*;
use crate::interp::tests::compile;
use proptest::prelude::*;

const FLOW: &str = r#"
allow_transfer "2xxx"
flow main {
  start leave "2*" -> hello
  play hello { prompt "hello.wav"  on next -> out }
  transfer out { to "2001"  on busy -> bye  on no_answer -> bye  on failure -> bye }
  hangup bye
}
"#;

fn key(n: u8) -> SecretKey {
    SecretKey::from_seed([n; 32])
}

fn trusted(k: &SecretKey) -> TrustedKeys {
    [k.public()].into_iter().collect()
}

fn sample() -> Bundle {
    Bundle::assemble(
        BuildInfo {
            name: "site".into(),
            serial: 7,
            created_unix: 1_790_000_000,
        },
        compile(FLOW),
        &[("t/flow.vflow".into(), FLOW.as_bytes().to_vec())],
        vec![PromptFile {
            name: "hello.wav".into(),
            bytes: b"RIFF not really a wav, the runtime validates audio".to_vec(),
        }],
    )
    .expect("assembles")
}

fn signed() -> Vec<u8> {
    sample().encode(&key(1))
}

#[test]
fn a_signed_bundle_loads_back_to_the_same_content() {
    let b = sample();
    let bytes = b.encode(&key(1));
    let back = load(&bytes, &trusted(&key(1)), &Limits::default()).expect("loads");
    assert_eq!(back, b);
    assert_eq!(back.manifest.serial, 7);
    assert_eq!(back.manifest.start_points[0].flow, "main");
    assert_eq!(back.manifest.allow_transfer, vec!["2xxx".to_string()]);
    assert_eq!(back.manifest.sources[0].sha256, sha256(FLOW.as_bytes()));
    // Deterministic: the same content and key give the same bytes.
    assert_eq!(bytes, b.encode(&key(1)));
}

#[test]
fn each_damage_class_has_its_own_error() {
    let ok = signed();
    let t = trusted(&key(1));
    let lim = Limits::default();
    let check = |bytes: &[u8]| load(bytes, &t, &lim).unwrap_err();

    assert_eq!(check(b"PK\x03\x04 a zip file"), BundleError::BadMagic);
    assert_eq!(check(b""), BundleError::BadMagic);

    let mut future = ok.clone();
    future[8] = 9;
    assert_eq!(
        check(&future),
        BundleError::FutureVersion {
            found: 9,
            supported: FORMAT_VERSION
        }
    );

    assert!(matches!(check(&ok[..5]), BundleError::Truncated { .. }));
    assert!(matches!(check(&ok[..30]), BundleError::Truncated { .. }));
    assert!(matches!(
        check(&ok[..ok.len() - 1]),
        BundleError::Truncated { .. }
    ));
    assert_eq!(check(&ok[..ok.len() - TRAILER_LEN]), BundleError::Unsigned);

    let mut trailing = ok.clone();
    trailing.push(0);
    assert_eq!(check(&trailing), BundleError::TrailingData { extra: 1 });

    let mut body_flip = ok.clone();
    body_flip[HEADER_LEN + 10] ^= 0x20;
    assert!(matches!(
        check(&body_flip),
        BundleError::BadSignature { .. }
    ));

    let mut sig_flip = ok.clone();
    let n = sig_flip.len();
    sig_flip[n - 1] ^= 1;
    assert!(matches!(check(&sig_flip), BundleError::BadSignature { .. }));

    let foreign = sample().encode(&key(2));
    assert_eq!(
        check(&foreign),
        BundleError::UntrustedKey {
            key_id: key(2).public().key_id()
        }
    );
    assert_eq!(
        load(&ok, &TrustedKeys::new(), &lim).unwrap_err(),
        BundleError::NoTrustedKeys
    );

    let small = Limits {
        max_bundle_bytes: 64,
        ..Limits::default()
    };
    assert!(matches!(
        load(&ok, &t, &small).unwrap_err(),
        BundleError::Oversize { .. }
    ));
    let few_prompts = Limits {
        max_prompts: 0,
        ..Limits::default()
    };
    assert!(matches!(
        load(&ok, &t, &few_prompts).unwrap_err(),
        BundleError::Limit(_)
    ));
}

/// A bundle whose content is properly signed but wrong inside: what a buggy
/// or hostile build tool holding the key could produce.
fn signed_body(body: &Body, k: &SecretKey) -> Vec<u8> {
    frame_and_sign(&postcard::to_stdvec(body).unwrap(), k)
}

fn body_of(b: &Bundle) -> Body {
    Body {
        manifest: b.manifest.clone(),
        ir: ir::text::print(&b.program),
        prompts: b
            .prompts
            .iter()
            .map(|p| WirePrompt {
                name: p.name.clone(),
                bytes: p.bytes.clone(),
            })
            .collect(),
    }
}

#[test]
fn signed_but_inconsistent_content_is_still_refused() {
    let k = key(1);
    let t = trusted(&k);
    let lim = Limits::default();
    let b = sample();

    // IR that does not verify: an edge to a node that does not exist.
    let mut bad = b.clone();
    bad.program.units[0].nodes[0].kind = ir::NodeKind::Goto(ir::Edge::Node(999));
    let e = load(&signed_body(&body_of(&bad), &k), &t, &lim).unwrap_err();
    assert!(matches!(e, BundleError::IrVerify { .. }), "{e}");

    // IR text that does not parse, and a future IR version.
    let mut body = body_of(&b);
    body.ir = "(vflow-ir 1) (flow".into();
    let e = load(&signed_body(&body, &k), &t, &lim).unwrap_err();
    assert!(matches!(e, BundleError::Ir(_)), "{e}");
    body.ir = body_of(&b).ir.replacen("(vflow-ir 1)", "(vflow-ir 2)", 1);
    let e = load(&signed_body(&body, &k), &t, &lim).unwrap_err();
    assert!(e.to_string().contains("version 2"), "{e}");

    // A prompt that differs from its manifest hash.
    let mut body = body_of(&b);
    body.prompts[0].bytes.push(0);
    let e = load(&signed_body(&body, &k), &t, &lim).unwrap_err();
    assert!(matches!(e, BundleError::Manifest(_)), "{e}");

    // A manifest whose start points lie about the IR.
    let mut body = body_of(&b);
    body.manifest.start_points[0].pattern = "*".into();
    let e = load(&signed_body(&body, &k), &t, &lim).unwrap_err();
    assert!(matches!(e, BundleError::Manifest(_)), "{e}");

    // Not postcard at all.
    let bytes = frame_and_sign(&[0xff; 40], &k);
    let e = load(&bytes, &t, &lim).unwrap_err();
    assert!(matches!(e, BundleError::Decode(_)), "{e}");
}

#[test]
fn inspect_reports_the_signature_and_never_shows_tampered_content() {
    let ok = signed();
    let lim = Limits::default();
    let i = inspect(&ok, None, &lim);
    assert!(matches!(i.signature, SignatureStatus::Unchecked { .. }));
    assert!(i.error.is_none());
    assert_eq!(i.manifest.as_ref().unwrap().name, "site");
    assert!(i.nodes >= 3);

    let i = inspect(&ok, Some(&trusted(&key(1))), &lim);
    assert!(matches!(i.signature, SignatureStatus::Trusted { .. }));
    assert!(i.error.is_none());

    let i = inspect(&ok, Some(&trusted(&key(3))), &lim);
    assert!(matches!(i.signature, SignatureStatus::Untrusted { .. }));
    assert!(matches!(i.error, Some(BundleError::UntrustedKey { .. })));
    assert!(i.manifest.is_some());

    let mut bad = ok.clone();
    bad[HEADER_LEN + 3] ^= 1;
    let i = inspect(&bad, None, &lim);
    assert!(matches!(i.signature, SignatureStatus::Invalid { .. }));
    assert!(i.manifest.is_none());

    let i = inspect(&ok[..ok.len() - TRAILER_LEN], None, &lim);
    assert_eq!(i.signature, SignatureStatus::Unsigned);
    assert_eq!(i.format_version, Some(FORMAT_VERSION));
}

#[test]
fn duplicate_prompt_names_are_refused_at_build() {
    let e = Bundle::assemble(
        BuildInfo {
            name: "x".into(),
            serial: 1,
            created_unix: 0,
        },
        compile(FLOW),
        &[],
        vec![
            PromptFile {
                name: "a.wav".into(),
                bytes: vec![],
            },
            PromptFile {
                name: "a.wav".into(),
                bytes: vec![1],
            },
        ],
    )
    .unwrap_err();
    assert!(e.to_string().contains("a.wav"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any single damage — a flipped byte anywhere, or a cut — is refused,
    /// and never panics. (A flip can only pass if it lands nowhere: it cannot.)
    #[test]
    fn damaged_bundles_are_refused_without_panicking(
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
        cut in any::<prop::sample::Index>(),
    ) {
        let ok = signed();
        let t = trusted(&key(1));
        let lim = Limits::default();
        let mut flipped = ok.clone();
        let i = at.index(flipped.len());
        flipped[i] ^= 1 << bit;
        prop_assert!(load(&flipped, &t, &lim).is_err(), "flip at {} accepted", i);
        let _ = inspect(&flipped, Some(&t), &lim);
        let n = cut.index(ok.len());
        prop_assert!(load(&ok[..n], &t, &lim).is_err());
        let _ = inspect(&ok[..n], None, &lim);
    }

    /// The decoder behind the signature never panics on arbitrary bodies.
    #[test]
    fn the_body_decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_unverified_for_fuzzing(&bytes);
    }

    /// Mutated valid bodies too (deeper into the decoder than random bytes get).
    #[test]
    fn mutated_valid_bodies_never_panic(at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut body = postcard::to_stdvec(&body_of(&sample())).unwrap();
        let i = at.index(body.len());
        body[i] = byte;
        let _ = decode_unverified_for_fuzzing(&body);
    }
}
