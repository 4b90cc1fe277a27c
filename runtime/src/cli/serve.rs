//! `vflow serve`: run the server on a configuration file or embedded defaults.

use crate::config::Config;
use crate::prompts::PromptLibrary;
use crate::server::{self, flows::FlowSet, flows::UserVars};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
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

    let source = super::SourceOpts {
        stdlib: config.flows.stdlib.clone(),
    };
    let (_world, program) = match super::ir::compile(&config.flows.paths, &source) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let kind = match config.flows.engine.as_deref() {
        Some(name) => EngineKind::from_name(name).unwrap_or(EngineKind::default_for_host()),
        None => EngineKind::default_for_host(),
    };
    let flows = match FlowSet::new(program, kind) {
        Ok(f) => Arc::new(f),
        Err(e) => {
            eprintln!("error: cannot compile the flows: {e}");
            return ExitCode::from(1);
        }
    };
    let flow_dirs = match flow_dirs(&config.flows.paths) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let prompts = match PromptLibrary::load(config.flows.stdlib.as_deref(), &flow_dirs) {
        Ok(p) => Arc::new(p),
        Err(errors) => {
            for e in &errors {
                eprintln!("error: prompt {e}");
            }
            eprintln!(
                "error: {} prompt file{} cannot be played; convert to 8 kHz mono 16-bit PCM WAV (e.g. `sox in.wav -r 8000 -c 1 -b 16 out.wav`)",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            return ExitCode::from(1);
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
    tracing::info!(units = flows.program.units.len(), entries = flows.program.entries.len(), prompts = prompts.len(), data = %config.node.data_dir.display(), "flows loaded");

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
        crate::cluster::start(&config, &store).await?;
        server::run(
            config.clone(),
            flows,
            prompts,
            store,
            vars,
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
