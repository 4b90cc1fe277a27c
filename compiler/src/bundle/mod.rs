//! Signed flow bundles: the unit a server loads, versions, distributes,
//! activates and rolls back. docs/BUNDLE.md is the reference for the format.
//!
//! ```text
//! header   "VFLOWBND" · format version u16 LE · flags u16 LE (0) · body length u64 LE
//! body     postcard: manifest, IR (its versioned text form), prompts
//! trailer  "SIG1" · ed25519 public key (32) · signature (64) over header + body
//! ```
//!
//! Invariant: [`load`] is the only way from bundle bytes to a runnable
//! [`ir::Program`], and it returns one only after, in this order, the framing
//! is whole, the signature verifies under a *trusted* key, the body decodes
//! within [`Limits`], the manifest matches the content and the IR verifies.
//! Nothing from bytes that failed a check is ever executed. No I/O here.

mod keys;

pub use keys::{KeyError, PublicKey, SecretKey, TrustedKeys, key_id_of};

use crate::ir;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The first bytes of every bundle.
pub const MAGIC: [u8; 8] = *b"VFLOWBND";
/// The bundle format this build writes and reads. A bundle with a higher
/// version is refused as coming from a newer vflow.
pub const FORMAT_VERSION: u16 = 1;
const HEADER_LEN: usize = 8 + 2 + 2 + 8;
const SIGNATURE_MAGIC: [u8; 4] = *b"SIG1";
const TRAILER_LEN: usize = 4 + 32 + 64;

/// Upper bounds checked before and while decoding, so a bundle cannot make a
/// server allocate without bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The whole file.
    pub max_bundle_bytes: u64,
    pub max_prompts: usize,
    pub max_prompt_bytes: u64,
    /// The IR text.
    pub max_ir_bytes: u64,
    pub max_sources: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bundle_bytes: 256 << 20,
            max_prompts: 10_000,
            max_prompt_bytes: 64 << 20,
            max_ir_bytes: 64 << 20,
            max_sources: 10_000,
        }
    }
}

/// What a bundle says about itself. Part of the wire format: the field order
/// is the encoding, so any change here needs a new [`FORMAT_VERSION`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    /// Increases with every build that is deployed; a server refuses to
    /// activate a serial that is not higher than the active one (except an
    /// explicit rollback).
    pub serial: u64,
    /// Build time, seconds since the Unix epoch (UTC).
    pub created_unix: i64,
    /// The vflow version that compiled it.
    pub compiler_version: String,
    /// Every `.vflow` file compiled in, with the SHA-256 of its text.
    pub sources: Vec<SourceEntry>,
    /// The start points, in source order.
    pub start_points: Vec<StartPoint>,
    /// Every `allow_transfer` pattern of the flows: where calls may be sent.
    pub allow_transfer: Vec<String>,
    /// Every prompt carried, with the SHA-256 of its bytes.
    pub prompts: Vec<PromptEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceEntry {
    pub path: String,
    pub sha256: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartPoint {
    pub kind: String,
    pub pattern: String,
    /// The flow it enters.
    pub flow: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptEntry {
    pub name: String,
    pub sha256: [u8; 32],
    pub bytes: u64,
}

/// A prompt file carried in a bundle: its file name (`welcome.wav`) and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// A bundle's content. From [`load`], the program has passed the IR verifier.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    pub manifest: Manifest,
    pub program: ir::Program,
    pub prompts: Vec<PromptFile>,
}

/// Identity of a build: name, serial and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    pub name: String,
    pub serial: u64,
    pub created_unix: i64,
}

/// Why bundle bytes were refused: one variant per check, so operators (and
/// the cluster) can tell a damaged file from an attack from a version skew.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("not a vflow bundle: it does not start with `VFLOWBND` (build one with `vflow build`)")]
    BadMagic,
    #[error(
        "bundle format version {found} is newer than this vflow reads ({supported}); upgrade vflow on this node"
    )]
    FutureVersion { found: u16, supported: u16 },
    #[error("bad bundle header: {0}")]
    BadHeader(String),
    #[error(
        "truncated bundle: {found} bytes, the header says at least {expected}; copy the file again"
    )]
    Truncated { expected: u64, found: u64 },
    #[error("bundle too large: {size} bytes, the limit is {limit}")]
    Oversize { size: u64, limit: u64 },
    #[error("unsigned bundle: it has no signature; build it with `vflow build --key site.key`")]
    Unsigned,
    #[error("{extra} unexpected bytes after the signature; the file is damaged")]
    TrailingData { extra: u64 },
    #[error("damaged signature block (no `SIG1` marker); the file is damaged")]
    BadSignatureBlock,
    #[error(
        "no trusted keys are configured, so no bundle can be accepted; add the site's public key (`site.pub`)"
    )]
    NoTrustedKeys,
    #[error(
        "signed by key {key_id}, which is not trusted here; add its public key to the trusted keys if it is yours"
    )]
    UntrustedKey { key_id: String },
    #[error(
        "signature check failed (key {key_id}): the bundle was changed after it was signed; rebuild it or copy it again"
    )]
    BadSignature { key_id: String },
    #[error("signed bundle body does not decode: {0}")]
    Decode(String),
    #[error("bundle exceeds a limit: {0}")]
    Limit(String),
    #[error("bundle IR: {0}")]
    Ir(String),
    #[error("bundle manifest does not match its content: {0}")]
    Manifest(String),
    #[error("bundle IR fails verification at {at}: {message}")]
    IrVerify { at: String, message: String },
}

/// The body as encoded. The field order is the wire format.
#[derive(Serialize, Deserialize)]
struct Body {
    manifest: Manifest,
    /// The IR in its own versioned text form (`(vflow-ir N)`, docs/IR.md):
    /// stable and independent of the compiler's in-memory types.
    ir: String,
    prompts: Vec<WirePrompt>,
}

#[derive(Serialize, Deserialize)]
struct WirePrompt {
    name: String,
    #[serde(with = "raw_bytes")]
    bytes: Vec<u8>,
}

/// `Vec<u8>` as one length-prefixed byte string (postcard's `bytes`), not a
/// sequence of varints.
mod raw_bytes {
    use serde::{Deserializer, Serializer, de};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_bytes(V)
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Lower-case hex of a hash, for display.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of a whole bundle file: its identity in logs and the cluster.
pub fn file_hash(bytes: &[u8]) -> String {
    hex(&sha256(bytes))
}

impl Bundle {
    /// Puts a verified program, its sources (path, text) and prompts together
    /// and writes the manifest. Prompt names must be unique.
    pub fn assemble(
        info: BuildInfo,
        program: ir::Program,
        sources: &[(String, Vec<u8>)],
        prompts: Vec<PromptFile>,
    ) -> Result<Bundle, BundleError> {
        ir::verify(&program).map_err(|e| BundleError::IrVerify {
            at: e.at,
            message: e.message,
        })?;
        let mut names = std::collections::BTreeSet::new();
        for p in &prompts {
            if !names.insert(p.name.as_str()) {
                return Err(BundleError::Manifest(format!(
                    "prompt `{}` is given twice",
                    p.name
                )));
            }
        }
        let manifest = Manifest {
            name: info.name,
            serial: info.serial,
            created_unix: info.created_unix,
            compiler_version: env!("CARGO_PKG_VERSION").to_string(),
            sources: sources
                .iter()
                .map(|(path, text)| SourceEntry {
                    path: path.clone(),
                    sha256: sha256(text),
                })
                .collect(),
            start_points: start_points(&program),
            allow_transfer: allow_transfer(&program),
            prompts: prompts.iter().map(prompt_entry).collect(),
        };
        Ok(Bundle {
            manifest,
            program,
            prompts,
        })
    }

    /// The signed bundle file.
    pub fn encode(&self, key: &SecretKey) -> Vec<u8> {
        let body = Body {
            manifest: self.manifest.clone(),
            ir: ir::text::print(&self.program),
            prompts: self
                .prompts
                .iter()
                .map(|p| WirePrompt {
                    name: p.name.clone(),
                    bytes: p.bytes.clone(),
                })
                .collect(),
        };
        let body = postcard::to_stdvec(&body).expect("postcard encodes to a Vec without failing");
        frame_and_sign(&body, key)
    }
}

/// Header, `body`, and the signature trailer over both.
fn frame_and_sign(body: &[u8], key: &SecretKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len() + TRAILER_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(body);
    let signature = key.sign(&out);
    out.extend_from_slice(&SIGNATURE_MAGIC);
    out.extend_from_slice(&key.public().to_bytes());
    out.extend_from_slice(&signature);
    out
}

fn start_points(program: &ir::Program) -> Vec<StartPoint> {
    program
        .entries
        .iter()
        .map(|e| StartPoint {
            kind: e.kind.clone(),
            pattern: e.pattern.clone(),
            flow: program
                .units
                .get(e.unit as usize)
                .map(|u| u.name.clone())
                .unwrap_or_default(),
        })
        .collect()
}

fn allow_transfer(program: &ir::Program) -> Vec<String> {
    let set: std::collections::BTreeSet<&String> = program
        .units
        .iter()
        .flat_map(|u| u.allow_transfer.iter())
        .collect();
    set.into_iter().cloned().collect()
}

fn prompt_entry(p: &PromptFile) -> PromptEntry {
    PromptEntry {
        name: p.name.clone(),
        sha256: sha256(&p.bytes),
        bytes: p.bytes.len() as u64,
    }
}

/// The parts of a well-framed bundle.
struct Framed<'a> {
    version: u16,
    /// Header and body: what the signature covers.
    signed: &'a [u8],
    body: &'a [u8],
    key: [u8; 32],
    signature: [u8; 64],
}

fn frame<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Framed<'a>, BundleError> {
    let size = bytes.len() as u64;
    if bytes.len() < MAGIC.len() {
        return Err(if MAGIC.starts_with(bytes) && !bytes.is_empty() {
            BundleError::Truncated {
                expected: HEADER_LEN as u64,
                found: size,
            }
        } else {
            BundleError::BadMagic
        });
    }
    if bytes[..8] != MAGIC {
        return Err(BundleError::BadMagic);
    }
    if size > limits.max_bundle_bytes {
        return Err(BundleError::Oversize {
            size,
            limit: limits.max_bundle_bytes,
        });
    }
    if bytes.len() < HEADER_LEN {
        return Err(BundleError::Truncated {
            expected: HEADER_LEN as u64,
            found: size,
        });
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version > FORMAT_VERSION {
        return Err(BundleError::FutureVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if version == 0 {
        return Err(BundleError::BadHeader(
            "format version 0 does not exist".into(),
        ));
    }
    let flags = u16::from_le_bytes([bytes[10], bytes[11]]);
    if flags != 0 {
        return Err(BundleError::BadHeader(format!(
            "unknown flags {flags:#06x} (this vflow knows none)"
        )));
    }
    let body_len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let signed_len = (HEADER_LEN as u64).saturating_add(body_len);
    let whole_len = signed_len.saturating_add(TRAILER_LEN as u64);
    if signed_len > limits.max_bundle_bytes {
        return Err(BundleError::Oversize {
            size: signed_len,
            limit: limits.max_bundle_bytes,
        });
    }
    if size < signed_len {
        return Err(BundleError::Truncated {
            expected: whole_len,
            found: size,
        });
    }
    if size == signed_len {
        return Err(BundleError::Unsigned);
    }
    if size < whole_len {
        return Err(BundleError::Truncated {
            expected: whole_len,
            found: size,
        });
    }
    if size > whole_len {
        return Err(BundleError::TrailingData {
            extra: size - whole_len,
        });
    }
    let signed_len = signed_len as usize;
    let trailer = &bytes[signed_len..];
    if trailer[..4] != SIGNATURE_MAGIC {
        return Err(BundleError::BadSignatureBlock);
    }
    Ok(Framed {
        version,
        signed: &bytes[..signed_len],
        body: &bytes[HEADER_LEN..signed_len],
        key: trailer[4..36].try_into().expect("32 bytes"),
        signature: trailer[36..100].try_into().expect("64 bytes"),
    })
}

/// Checks the signature of a framed bundle against `trusted`.
fn check_signature(f: &Framed, trusted: &TrustedKeys) -> Result<(), BundleError> {
    if trusted.is_empty() {
        return Err(BundleError::NoTrustedKeys);
    }
    let key_id = key_id_of(&f.key);
    let Some(key) = trusted.find(&f.key) else {
        return Err(BundleError::UntrustedKey { key_id });
    };
    if !key.verify(f.signed, &f.signature) {
        return Err(BundleError::BadSignature { key_id });
    }
    Ok(())
}

/// Decodes a body whose signature has been checked, within the limits, and
/// checks that the manifest describes the content.
fn decode(body: &[u8], limits: &Limits) -> Result<Bundle, BundleError> {
    let (body, rest): (Body, &[u8]) =
        postcard::take_from_bytes(body).map_err(|e| BundleError::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(BundleError::Decode(format!(
            "{} bytes after the body",
            rest.len()
        )));
    }
    let m = &body.manifest;
    if body.prompts.len() > limits.max_prompts {
        return Err(BundleError::Limit(format!(
            "{} prompts, at most {} allowed",
            body.prompts.len(),
            limits.max_prompts
        )));
    }
    if let Some(p) = body
        .prompts
        .iter()
        .find(|p| p.bytes.len() as u64 > limits.max_prompt_bytes)
    {
        return Err(BundleError::Limit(format!(
            "prompt `{}` is {} bytes, at most {} allowed",
            p.name,
            p.bytes.len(),
            limits.max_prompt_bytes
        )));
    }
    if body.ir.len() as u64 > limits.max_ir_bytes {
        return Err(BundleError::Limit(format!(
            "IR is {} bytes, at most {} allowed",
            body.ir.len(),
            limits.max_ir_bytes
        )));
    }
    if m.sources.len() > limits.max_sources {
        return Err(BundleError::Limit(format!(
            "{} source files, at most {} allowed",
            m.sources.len(),
            limits.max_sources
        )));
    }
    let program = ir::text::parse(&body.ir)
        .map_err(|e| BundleError::Ir(format!("line {} of the IR text: {}", e.line, e.message)))?;
    ir::verify(&program).map_err(|e| BundleError::IrVerify {
        at: e.at,
        message: e.message,
    })?;
    let prompts: Vec<PromptFile> = body
        .prompts
        .into_iter()
        .map(|p| PromptFile {
            name: p.name,
            bytes: p.bytes,
        })
        .collect();
    let described: Vec<PromptEntry> = prompts.iter().map(prompt_entry).collect();
    if described != body.manifest.prompts {
        return Err(BundleError::Manifest(
            "the prompt list or a prompt's hash differs from the prompts carried".into(),
        ));
    }
    if start_points(&program) != body.manifest.start_points {
        return Err(BundleError::Manifest(
            "the start points differ from the IR's".into(),
        ));
    }
    if allow_transfer(&program) != body.manifest.allow_transfer {
        return Err(BundleError::Manifest(
            "the transfer allow-list differs from the IR's".into(),
        ));
    }
    Ok(Bundle {
        manifest: body.manifest,
        program,
        prompts,
    })
}

/// Loads a bundle: framing → signature under a trusted key → decode within
/// limits → manifest consistency → IR verification. The program returned is
/// safe to hand to an engine.
pub fn load(bytes: &[u8], trusted: &TrustedKeys, limits: &Limits) -> Result<Bundle, BundleError> {
    let framed = frame(bytes, limits)?;
    check_signature(&framed, trusted)?;
    decode(framed.body, limits)
}

/// Runs the decoder on a body without a signature check. Only for fuzzing
/// the decoder, which signed bundles reach; what it returns is never run.
#[doc(hidden)]
pub fn decode_unverified_for_fuzzing(body: &[u8]) -> Result<(), BundleError> {
    decode(body, &Limits::default()).map(|_| ())
}

/// What `vflow inspect` shows: as much as can be read, and the signature status.
#[derive(Debug)]
pub struct Inspection {
    pub size: u64,
    pub format_version: Option<u16>,
    pub signature: SignatureStatus,
    /// The manifest, when the signature is intact (under any key).
    pub manifest: Option<Manifest>,
    /// Counts from the content (units, nodes), when it decoded.
    pub units: usize,
    pub nodes: usize,
    /// The first check that failed, if any. With trusted keys given, an
    /// untrusted key is a failure; without them it is not.
    pub error: Option<BundleError>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureStatus {
    /// Valid, under one of the trusted keys given.
    Trusted {
        key_id: String,
    },
    /// Valid under the key the bundle names, which is not among those given.
    Untrusted {
        key_id: String,
    },
    /// Valid under the key the bundle names; no trusted keys were given to check it against.
    Unchecked {
        key_id: String,
    },
    /// Does not verify: the content changed after signing.
    Invalid {
        key_id: String,
    },
    Unsigned,
    /// The framing is broken before the signature could be read.
    Unreadable,
}

impl std::fmt::Display for SignatureStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureStatus::Trusted { key_id } => write!(f, "valid, by trusted key {key_id}"),
            SignatureStatus::Untrusted { key_id } => {
                write!(f, "valid, by key {key_id} — NOT TRUSTED")
            }
            SignatureStatus::Unchecked { key_id } => write!(
                f,
                "valid, by key {key_id} (not checked against trusted keys: pass --trusted-key)"
            ),
            SignatureStatus::Invalid { key_id } => {
                write!(f, "INVALID (key {key_id}): changed after signing")
            }
            SignatureStatus::Unsigned => f.write_str("none (unsigned)"),
            SignatureStatus::Unreadable => f.write_str("unreadable (damaged file)"),
        }
    }
}

/// Reads what can be read of a bundle for display. Nothing is executed; the
/// manifest is decoded only when the signature verifies under the key the
/// bundle names, so tampered content is never shown as if it were real.
pub fn inspect(bytes: &[u8], trusted: Option<&TrustedKeys>, limits: &Limits) -> Inspection {
    let mut out = Inspection {
        size: bytes.len() as u64,
        format_version: None,
        signature: SignatureStatus::Unreadable,
        manifest: None,
        units: 0,
        nodes: 0,
        error: None,
    };
    let framed = match frame(bytes, limits) {
        Ok(f) => f,
        Err(e) => {
            if e == BundleError::Unsigned {
                out.signature = SignatureStatus::Unsigned;
            }
            if bytes.len() >= 10 && bytes[..8] == MAGIC {
                out.format_version = Some(u16::from_le_bytes([bytes[8], bytes[9]]));
            }
            out.error = Some(e);
            return out;
        }
    };
    out.format_version = Some(framed.version);
    let key_id = key_id_of(&framed.key);
    let intact = PublicKey::from_raw(&framed.key)
        .is_some_and(|k| k.verify(framed.signed, &framed.signature));
    if !intact {
        out.signature = SignatureStatus::Invalid {
            key_id: key_id.clone(),
        };
        out.error = Some(BundleError::BadSignature { key_id });
        return out;
    }
    out.signature = match trusted {
        None => SignatureStatus::Unchecked { key_id },
        Some(t) => match check_signature(&framed, t) {
            Ok(()) => SignatureStatus::Trusted { key_id },
            Err(e) => {
                out.error = Some(e);
                SignatureStatus::Untrusted { key_id }
            }
        },
    };
    match decode(framed.body, limits) {
        Ok(b) => {
            out.units = b.program.units.len();
            out.nodes = b.program.units.iter().map(|u| u.nodes.len()).sum();
            out.manifest = Some(b.manifest);
        }
        Err(e) => {
            // Still show the manifest when only a later check failed.
            if let Ok((body, _)) = postcard::take_from_bytes::<Body>(framed.body) {
                out.manifest = Some(body.manifest);
            }
            out.error.get_or_insert(e);
        }
    }
    out
}

#[cfg(test)]
mod tests;
