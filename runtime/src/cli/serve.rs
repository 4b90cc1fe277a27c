//! `vflow serve`: run the server on a configuration file or embedded defaults.

use crate::bundles;
use crate::config::{Config, FlowsConfig};
use crate::prompts::PromptLibrary;
use crate::server::control::{BindError, ControlSocket, Reloader};
use crate::server::registry::{ActiveSet, LoadError, Origin, Registry};
use crate::server::{self, flows::FlowSet, flows::UserVars};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use vflow_compiler::bundle::Limits;
use vflow_compiler::jit::EngineKind;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The YAML configuration (see examples/single-node.yaml). Without it: a
    /// single node on 127.0.0.1:5060 running `flows/`, data under `./var`.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log filter, e.g. `info`, `debug`, `vflow_runtime=debug` (or RUST_LOG).
    #[arg(long, default_value = "info,cranelift_jit=warn,cranelift_codegen=warn")]
    pub log: String,
}

pub fn run(args: ServeArgs) -> ExitCode {
    let filter = std::env::var("RUST_LOG").unwrap_or(args.log.clone());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .try_init();
    let config = match &args.config {
        Some(p) => match Config::load(p) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };

    // First: neither the store's recovery nor anything else may touch the
    // files of a server still running on this data directory.
    if let Err(e) = std::fs::create_dir_all(&config.node.data_dir) {
        eprintln!(
            "error: cannot create the data directory {}: {e}",
            config.node.data_dir.display()
        );
        return ExitCode::from(2);
    }
    let control = match ControlSocket::bind(&config.node.data_dir) {
        Ok(c) => Some(c),
        Err(BindError::InUse(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        Err(BindError::Io(e)) => {
            tracing::warn!(error = %e, "no control socket: `vflow reload` cannot reach this server; SIGHUP still reloads");
            None
        }
    };
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let initial = match load_flows(&config.flows, color) {
        Ok(set) => set,
        Err((code, e)) => {
            if e.bundle {
                tracing::warn!(target: "security", event = "bundle_refused", reason = "load_failed", error = %e, "bundle refused at start; not serving");
            }
            eprint!("{}", e.detail);
            eprintln!("error: {}", e.message);
            return code;
        }
    };
    // Schema, recovery after a crash (reported in the log), seeded mailboxes.
    let store = match crate::voicemail::open_for_server(&config.node.data_dir, &config.voicemail) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let vars = match UserVars::open(store.clone(), &config.node.data_dir.join("user_vars.json")) {
        Ok(v) => Arc::new(v),
        Err(e) => {
            eprintln!("error: cannot read user variables: {e}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(units = initial.flows.program.units.len(), entries = initial.flows.program.entries.len(), prompts = initial.prompts.len(), data = %config.node.data_dir.display(), "flows loaded");
    let flows_config = config.flows.clone();
    let registry = match Registry::with_serial_file(
        initial,
        config.node.data_dir.join("bundle-serial"),
    ) {
        Ok(r) => r,
        Err(refusal) => {
            tracing::warn!(target: "security", event = "bundle_refused", reason = "downgrade", error = %refusal, "bundle refused at start; not serving");
            eprintln!("error: {refusal}");
            return ExitCode::from(1);
        }
    };
    let reloader = Reloader {
        registry: Arc::new(registry),
        load: Arc::new(move || load_flows(&flows_config, false).map_err(|(_, e)| e)),
    };

    let rt = if config.node.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.node.threads)
            .enable_all()
            .build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = rt.block_on(async {
        // Cluster services by role (ingress or forwarder), before any call.
        let cluster = crate::cluster::start(&config, &store).await?;
        // The control API and bundle/settings sync (control_listen, peers' control).
        crate::cluster::control::start(&config, &store, &reloader, &vars, cluster.duty.clone())
            .await?;
        server::run(
            config.clone(),
            reloader,
            control,
            store,
            vars,
            cluster.duty,
            shutdown_signal(),
        )
        .await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e} (SIP on {})", config.sip.listen);
            ExitCode::from(2)
        }
    }
}

/// Loads the flow set `cfg` names: compiles the sources, or reads and
/// verifies the bundle; then the prompts and the engine. Used at start and
/// for every reload, so both read the files as they are now.
fn load_flows(cfg: &FlowsConfig, color: bool) -> Result<ActiveSet, (ExitCode, LoadError)> {
    let kind = match cfg.engine.as_deref() {
        Some(name) => EngineKind::from_name(name).unwrap_or(EngineKind::default_for_host()),
        None => EngineKind::default_for_host(),
    };
    if let Some(file) = &cfg.bundle {
        return load_bundle(file, &cfg.trusted_keys, kind);
    }
    let failed = |code: u8, message: String| (ExitCode::from(code), LoadError::new(false, message));
    let source = super::SourceOpts {
        stdlib: cfg.stdlib.clone(),
    };
    let program = match super::ir::compile_report(&cfg.paths, &source, color) {
        Ok((_world, program)) => program,
        Err(f) => {
            return Err((
                f.code,
                LoadError {
                    bundle: false,
                    message: f.summary,
                    detail: f.diagnostics,
                },
            ));
        }
    };
    let flows = FlowSet::new(program, kind)
        .map_err(|e| failed(1, format!("cannot compile the flows: {e}")))?;
    let flow_dirs = flow_dirs(&cfg.paths).map_err(|e| failed(2, e))?;
    let prompts = PromptLibrary::load(cfg.stdlib.as_deref(), &flow_dirs)
        .map_err(|errors| (ExitCode::from(1), prompt_errors(false, &errors)))?;
    Ok(ActiveSet::new(
        flows,
        prompts,
        Origin::Source {
            paths: cfg.paths.clone(),
        },
    ))
}

/// Reads the trusted keys and the bundle file as they are now, verifies the
/// bundle (signature, then content: `bundle::load`), and compiles it. Every
/// error names the file and the check that failed.
fn load_bundle(
    file: &Path,
    trusted_keys: &[PathBuf],
    kind: EngineKind,
) -> Result<ActiveSet, (ExitCode, LoadError)> {
    let refused = |message: String| (ExitCode::from(1), LoadError::new(true, message));
    let keys = bundles::read_trusted_keys(trusted_keys).map_err(refused)?;
    let (bundle, sha256) = bundles::load_file(file, &keys, &Limits::default()).map_err(refused)?;
    let shown = file.display().to_string();
    let prompts = PromptLibrary::from_files(
        &shown,
        bundle
            .prompts
            .iter()
            .map(|p| (p.name.as_str(), p.bytes.as_slice())),
    )
    .map_err(|errors| (ExitCode::from(1), prompt_errors(true, &errors)))?;
    let flows = FlowSet::new(bundle.program, kind)
        .map_err(|e| refused(format!("{shown}: cannot compile the flows: {e}")))?;
    Ok(ActiveSet::new(
        flows,
        prompts,
        Origin::Bundle {
            file: file.to_path_buf(),
            name: bundle.manifest.name,
            serial: bundle.manifest.serial,
            sha256,
        },
    ))
}

/// Prompts that cannot be played: one line each, and what to do.
fn prompt_errors(bundle: bool, errors: &[crate::prompts::PromptLoadError]) -> LoadError {
    LoadError {
        bundle,
        message: format!(
            "{} prompt file{} cannot be played; convert to 8 kHz mono 16-bit PCM WAV (e.g. `sox in.wav -r 8000 -c 1 -b 16 out.wav`)",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        ),
        detail: errors
            .iter()
            .map(|e| format!("error: prompt {e}\n"))
            .collect(),
    }
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// The directories holding the flow files (their `prompts/` are loaded).
fn flow_dirs(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            super::check::collect_vflow(p, &mut files)
                .map_err(|e| format!("cannot read `{}`: {e}", p.display()))?;
        } else {
            files.push(p.clone());
        }
    }
    let mut dirs: Vec<PathBuf> = files
        .iter()
        .filter_map(|f| f.parent().map(|d| d.to_path_buf()))
        .collect();
    dirs.sort();
    dirs.dedup();
    Ok(dirs)
}
