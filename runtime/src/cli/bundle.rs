//! `vflow keygen`, `vflow build` and `vflow inspect`: site keys, signed
//! bundles from flow source, and what a bundle holds.

use super::SourceOpts;
use crate::bundles;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use vflow_compiler::bundle::{self, BuildInfo, Bundle, Limits, SecretKey};

#[derive(clap::Args, Debug)]
pub struct KeygenArgs {
    /// The private key file to write (PEM, mode 0600); the public key goes
    /// beside it with the extension `.pub` (`site.key` → `site.pub`).
    #[arg(long, short, value_name = "FILE", default_value = "site.key")]
    pub out: PathBuf,
    /// Replace existing key files (bundles signed with the old key stop loading
    /// wherever only the old public key is trusted).
    #[arg(long)]
    pub force: bool,
}

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// .vflow files or directories to compile (directories: every *.vflow in them).
    #[arg(value_name = "PATHS", required = true)]
    pub paths: Vec<PathBuf>,
    /// The bundle file to write.
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,
    /// The private key to sign with (from `vflow keygen`).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The bundle's serial; servers only activate a higher serial than the
    /// one they run. Default: the build time in seconds since the Unix epoch.
    #[arg(long, value_name = "N")]
    pub serial: Option<u64>,
    /// The bundle's name. Default: the output file's stem.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    #[command(flatten)]
    pub source: SourceOpts,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// The bundle file.
    #[arg(value_name = "FILE")]
    pub bundle: PathBuf,
    /// Check the signature against this public key (repeatable); exit 1 when
    /// the bundle is not signed by one of them.
    #[arg(long = "trusted-key", value_name = "FILE")]
    pub trusted_keys: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

pub fn keygen(args: KeygenArgs) -> ExitCode {
    let public_path = args.out.with_extension("pub");
    if public_path == args.out {
        eprintln!(
            "error: the key file must not end in `.pub` (the public key is written there): {}",
            args.out.display()
        );
        return ExitCode::from(2);
    }
    if !args.force {
        for p in [&args.out, &public_path] {
            if p.exists() {
                eprintln!(
                    "error: {} exists; pass --force to replace it (bundles signed with the old key will only load where the new public key is trusted)",
                    p.display()
                );
                return ExitCode::from(2);
            }
        }
    }
    let mut seed = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut seed) {
        eprintln!("error: no randomness from the operating system: {e}");
        return ExitCode::from(2);
    }
    let key = SecretKey::from_seed(seed);
    let public = key.public();
    if let Err(e) = bundles::write_atomic(&args.out, key.to_pem().as_bytes(), 0o600) {
        eprintln!("error: cannot write {}: {e}", args.out.display());
        return ExitCode::from(2);
    }
    if let Err(e) = bundles::write_atomic(&public_path, public.to_pem().as_bytes(), 0o644) {
        eprintln!("error: cannot write {}: {e}", public_path.display());
        return ExitCode::from(2);
    }
    println!(
        "wrote {} (private: keep it secret) and {} (public: give it to every server)\nkey id {}",
        args.out.display(),
        public_path.display(),
        public.key_id()
    );
    ExitCode::SUCCESS
}

pub fn build(args: BuildArgs) -> ExitCode {
    let key = match bundles::read_secret_key(&args.key) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (world, program) = match super::ir::compile(&args.paths, &args.source) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let prompts = match bundles::prompt_files(&world, args.source.stdlib.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let now = jiff::Timestamp::now().as_second();
    let name = args.name.clone().unwrap_or_else(|| {
        args.output
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "flows".into())
    });
    let info = BuildInfo {
        name,
        serial: args.serial.unwrap_or(now as u64),
        created_unix: now,
    };
    let bundle = match Bundle::assemble(info, program, &bundles::sources(&world), prompts) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let bytes = bundle.encode(&key);
    let limits = Limits::default();
    if bytes.len() as u64 > limits.max_bundle_bytes {
        eprintln!(
            "error: the bundle would be {} bytes; servers accept at most {} (fewer or smaller prompts)",
            bytes.len(),
            limits.max_bundle_bytes
        );
        return ExitCode::from(1);
    }
    if let Err(e) = bundles::write_atomic(&args.output, &bytes, 0o644) {
        eprintln!("error: cannot write {}: {e}", args.output.display());
        return ExitCode::from(2);
    }
    let m = &bundle.manifest;
    println!(
        "built {} — {} serial {}, {} source file{}, {} start point{}, {} prompt{}, {} bytes, signed by key {}",
        args.output.display(),
        m.name,
        m.serial,
        m.sources.len(),
        plural(m.sources.len()),
        m.start_points.len(),
        plural(m.start_points.len()),
        m.prompts.len(),
        plural(m.prompts.len()),
        bytes.len(),
        key.public().key_id()
    );
    ExitCode::SUCCESS
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

pub fn inspect(args: InspectArgs) -> ExitCode {
    let limits = Limits::default();
    let trusted = if args.trusted_keys.is_empty() {
        None
    } else {
        match bundles::read_trusted_keys(&args.trusted_keys) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let bytes = match bundles::read_file(&args.bundle, &limits) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let i = bundle::inspect(&bytes, trusted.as_ref(), &limits);
    match args.format {
        Format::Human => print_human(&args.bundle, &bytes, &i),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&args.bundle, &bytes, &i))
                .expect("JSON values serialize")
        ),
    }
    match &i.error {
        None => ExitCode::SUCCESS,
        Some(e) => {
            eprintln!("error: {}: {e}", args.bundle.display());
            ExitCode::from(1)
        }
    }
}

fn created(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("{unix} (not a valid time)"))
}

fn print_human(path: &Path, bytes: &[u8], i: &bundle::Inspection) {
    println!("bundle     {}", path.display());
    println!("size       {} bytes", i.size);
    println!("sha256     {}", bundle::file_hash(bytes));
    if let Some(v) = i.format_version {
        println!("format     {v}");
    }
    println!("signature  {}", i.signature);
    let Some(m) = &i.manifest else {
        return;
    };
    println!("name       {}", m.name);
    println!("serial     {}", m.serial);
    println!("created    {}", created(m.created_unix));
    println!("compiler   vflow {}", m.compiler_version);
    println!("IR         {} units, {} nodes", i.units, i.nodes);
    println!("sources    {}", m.sources.len());
    for s in &m.sources {
        println!("  {}  sha256 {}", s.path, bundle::hex(&s.sha256));
    }
    println!("start points {}", m.start_points.len());
    for s in &m.start_points {
        println!("  start {} \"{}\" -> {}", s.kind, s.pattern, s.flow);
    }
    if m.allow_transfer.is_empty() {
        println!("transfers  none allowed");
    } else {
        let quoted: Vec<String> = m
            .allow_transfer
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect();
        println!("transfers  allow_transfer {}", quoted.join(" "));
    }
    let total: u64 = m.prompts.iter().map(|p| p.bytes).sum();
    println!("prompts    {} ({total} bytes)", m.prompts.len());
    for p in &m.prompts {
        println!(
            "  {}  {} bytes  sha256 {}",
            p.name,
            p.bytes,
            bundle::hex(&p.sha256)
        );
    }
}

fn to_json(path: &Path, bytes: &[u8], i: &bundle::Inspection) -> serde_json::Value {
    use bundle::SignatureStatus as S;
    let (status, key_id) = match &i.signature {
        S::Trusted { key_id } => ("trusted", Some(key_id)),
        S::Untrusted { key_id } => ("untrusted", Some(key_id)),
        S::Unchecked { key_id } => ("unchecked", Some(key_id)),
        S::Invalid { key_id } => ("invalid", Some(key_id)),
        S::Unsigned => ("unsigned", None),
        S::Unreadable => ("unreadable", None),
    };
    let manifest = i.manifest.as_ref().map(|m| {
        serde_json::json!({
            "name": m.name,
            "serial": m.serial,
            "created": created(m.created_unix),
            "compiler_version": m.compiler_version,
            "sources": m.sources.iter().map(|s| serde_json::json!({"path": s.path, "sha256": bundle::hex(&s.sha256)})).collect::<Vec<_>>(),
            "start_points": m.start_points.iter().map(|s| serde_json::json!({"kind": s.kind, "pattern": s.pattern, "flow": s.flow})).collect::<Vec<_>>(),
            "allow_transfer": m.allow_transfer,
            "prompts": m.prompts.iter().map(|p| serde_json::json!({"name": p.name, "bytes": p.bytes, "sha256": bundle::hex(&p.sha256)})).collect::<Vec<_>>(),
        })
    });
    serde_json::json!({
        "file": path.display().to_string(),
        "size": i.size,
        "sha256": bundle::file_hash(bytes),
        "format_version": i.format_version,
        "signature": {"status": status, "key_id": key_id},
        "manifest": manifest,
        "units": i.units,
        "nodes": i.nodes,
        "error": i.error.as_ref().map(|e| e.to_string()),
    })
}
