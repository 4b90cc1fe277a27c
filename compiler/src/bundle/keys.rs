//! Site keys: ed25519 key pairs in standard PEM (PKCS#8 private, SPKI public),
//! so operators can read them with their usual tools, and the set of keys a
//! server trusts. No I/O here: callers read and write the files.

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// A key file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "not an ed25519 private key in PEM (expected `-----BEGIN PRIVATE KEY-----` as written by `vflow keygen`): {0}"
    )]
    BadSecret(String),
    #[error(
        "not an ed25519 public key in PEM (expected `-----BEGIN PUBLIC KEY-----` as written by `vflow keygen`): {0}"
    )]
    BadPublic(String),
}

/// The signing half of a site key. Kept out of `Debug` output.
pub struct SecretKey(SigningKey);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.public().key_id())
    }
}

impl SecretKey {
    /// A key from 32 random bytes (the caller draws them from the OS).
    pub fn from_seed(seed: [u8; 32]) -> SecretKey {
        SecretKey(SigningKey::from_bytes(&seed))
    }

    pub fn from_pem(text: &str) -> Result<SecretKey, KeyError> {
        SigningKey::from_pkcs8_pem(text.trim())
            .map(SecretKey)
            .map_err(|e| KeyError::BadSecret(e.to_string()))
    }

    pub fn to_pem(&self) -> String {
        self.0
            .to_pkcs8_pem(LineEnding::LF)
            .map(|s| s.to_string())
            .expect("an ed25519 key always encodes as PKCS#8")
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    pub(super) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

/// The verifying half of a site key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

impl PublicKey {
    pub fn from_pem(text: &str) -> Result<PublicKey, KeyError> {
        VerifyingKey::from_public_key_pem(text.trim())
            .map(PublicKey)
            .map_err(|e| KeyError::BadPublic(e.to_string()))
    }

    pub fn to_pem(&self) -> String {
        self.0
            .to_public_key_pem(LineEnding::LF)
            .expect("an ed25519 key always encodes as SPKI")
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// A short, stable name for the key: the first 8 bytes of the SHA-256 of
    /// its 32 raw bytes, in hex. Shown by `keygen`, `inspect` and errors.
    pub fn key_id(&self) -> String {
        key_id_of(&self.0.to_bytes())
    }

    pub(super) fn from_raw(bytes: &[u8; 32]) -> Option<PublicKey> {
        VerifyingKey::from_bytes(bytes).ok().map(PublicKey)
    }

    /// Strict verification (RFC 8032 with the canonical-encoding checks), so
    /// one signature has exactly one valid encoding.
    pub(super) fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        self.0.verify_strict(message, &sig).is_ok()
    }
}

/// [`PublicKey::key_id`] of raw key bytes, also for bytes that are not a valid key.
pub fn key_id_of(raw: &[u8; 32]) -> String {
    let h = Sha256::digest(raw);
    h[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The public keys whose bundles a server or tool accepts.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<PublicKey>,
}

impl TrustedKeys {
    pub fn new() -> TrustedKeys {
        TrustedKeys::default()
    }

    pub fn add(&mut self, key: PublicKey) {
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub(super) fn find(&self, raw: &[u8; 32]) -> Option<&PublicKey> {
        self.keys.iter().find(|k| &k.to_bytes() == raw)
    }
}

impl FromIterator<PublicKey> for TrustedKeys {
    fn from_iter<I: IntoIterator<Item = PublicKey>>(iter: I) -> TrustedKeys {
        let mut t = TrustedKeys::new();
        for k in iter {
            t.add(k);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_pem_and_sign() {
        let sk = SecretKey::from_seed([7; 32]);
        let pem = sk.to_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
        let back = SecretKey::from_pem(&pem).unwrap();
        assert_eq!(back.public(), sk.public());
        let pub_pem = sk.public().to_pem();
        assert!(
            pub_pem.starts_with("-----BEGIN PUBLIC KEY-----"),
            "{pub_pem}"
        );
        let pk = PublicKey::from_pem(&pub_pem).unwrap();
        let sig = sk.sign(b"hello");
        assert!(pk.verify(b"hello", &sig));
        assert!(!pk.verify(b"hellp", &sig));
        assert_eq!(pk.key_id().len(), 16);
    }

    #[test]
    fn a_public_key_is_not_a_secret_key_and_errors_say_what_was_expected() {
        let sk = SecretKey::from_seed([1; 32]);
        let e = SecretKey::from_pem(&sk.public().to_pem()).unwrap_err();
        assert!(e.to_string().contains("BEGIN PRIVATE KEY"), "{e}");
        let e = PublicKey::from_pem("garbage").unwrap_err();
        assert!(e.to_string().contains("BEGIN PUBLIC KEY"), "{e}");
    }
}
