//! The bundle loader on arbitrary bytes: never a panic, never a program from
//! bytes that are not signed by the trusted key. The decoder behind the
//! signature check is fuzzed directly too, since signed input reaches it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vflow_compiler::bundle::{self, Limits, SecretKey, TrustedKeys};

fuzz_target!(|data: &[u8]| {
    let trusted: TrustedKeys = [SecretKey::from_seed([42; 32]).public()].into_iter().collect();
    let limits = Limits::default();
    // Forging an ed25519 signature is out of reach, so nothing may load.
    assert!(bundle::load(data, &trusted, &limits).is_err());
    let _ = bundle::inspect(data, Some(&trusted), &limits);
    let _ = bundle::inspect(data, None, &limits);
    let _ = bundle::decode_unverified_for_fuzzing(data);
});
