//! `vflow simulate`: run one call through a flow offline and print what the
//! caller would experience, one effect per line.

use super::SourceOpts;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use vflow_compiler::bundle::Limits;
use vflow_compiler::exec::{self, CallInfo, Effect, Engine, Outcome, SimHost};
use vflow_compiler::ir;
use vflow_compiler::jit;

#[derive(clap::Args, Debug)]
pub struct SimulateArgs {
    /// A .vflow file or a directory of them, or a bundle (`vflow build`; a
    /// `.vfb` file or one that starts with the bundle magic) with --trusted-key.
    pub path: PathBuf,
    /// A public key (`vflow keygen`) a bundle's signature is checked against
    /// (repeatable); required to run a bundle. With it, PATH is a bundle.
    #[arg(long = "trusted-key", value_name = "FILE")]
    pub trusted_keys: Vec<PathBuf>,
    /// The start point the call enters by, `KIND:NAME` (e.g. `leave:2001`,
    /// `auto_attendant:Reception`); the most specific pattern wins.
    #[arg(long, value_name = "KIND:NAME")]
    pub start: String,
    /// The caller's number (`$CLI`).
    #[arg(long, value_name = "N", default_value = "")]
    pub cli: String,
    /// The number dialled (`$DDI`).
    #[arg(long, value_name = "N", default_value = "")]
    pub ddi: String,
    /// The caller's display name (`$CALLER_NAME`).
    #[arg(long, value_name = "NAME", default_value = "")]
    pub caller_name: String,
    /// Why the call reached voicemail (`$REASON`): busy, no_answer, dnd, direct, unknown.
    #[arg(long, default_value = "unknown")]
    pub reason: String,
    /// The call's clock, RFC 3339 (`2026-03-02T10:00:00+01:00`); default: now.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// The server's time zone for profiles and `$TIME` (default: the offset in
    /// `--at`, else the system's).
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// Comma list of outcomes fed in order: `key:1`, `digits:1234#`, `timeout`,
    /// `busy`, `no_answer`, `hangup`, `ok`, `fail`, `recorded:5s`, `valid`,
    /// `invalid`, `locked`, `count:3`. When they run out the caller times out,
    /// then hangs up. Without a list and with a terminal, asks for each one.
    #[arg(long, value_name = "LIST")]
    pub outcomes: Option<String>,
    /// A persistent user variable before the call, `NAME=VALUE` (repeatable).
    #[arg(long = "user", value_name = "NAME=VALUE")]
    pub user: Vec<String>,
    #[arg(long, value_enum, default_value_t = SimFormat::Text)]
    pub format: SimFormat,
    /// The engine; default: the JIT where Cranelift supports the host.
    #[arg(long, value_enum)]
    pub engine: Option<EngineKind>,
    /// Run the call N times and print the total time and nodes per second to stderr.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub repeat: u64,
    #[command(flatten)]
    pub source: SourceOpts,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimFormat {
    /// One effect per line, for people.
    Text,
    /// One JSON object per effect; `"effect"` names it.
    Jsonl,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// Native code compiled by Cranelift (the interpreter where the host has no backend).
    Jit,
    /// The reference interpreter.
    Interp,
}

pub fn run(args: SimulateArgs) -> ExitCode {
    let Some((kind, name)) = args.start.split_once(':') else {
        eprintln!("error: --start takes KIND:NAME, e.g. `leave:2001`");
        return ExitCode::from(2);
    };
    let clock = match &args.at {
        Some(at) => exec::parse_clock(at, args.tz.as_deref()),
        None => match &args.tz {
            Some(tz) => jiff::tz::TimeZone::get(tz)
                .map(|z| jiff::Timestamp::now().to_zoned_datetime(z))
                .map_err(|e| format!("unknown time zone `{tz}`: {e}")),
            None => Ok(jiff::ZonedDateTime::now()),
        },
    };
    let clock = match clock {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: --at: {e}");
            return ExitCode::from(2);
        }
    };
    let outcomes = match args
        .outcomes
        .as_deref()
        .map(Outcome::parse_list)
        .transpose()
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: --outcomes: {e}");
            return ExitCode::from(2);
        }
    };
    let mut user = std::collections::BTreeMap::new();
    for u in &args.user {
        let Some((k, v)) = u.split_once('=') else {
            eprintln!("error: --user takes NAME=VALUE");
            return ExitCode::from(2);
        };
        user.insert(k.trim_start_matches("user.").to_string(), v.to_string());
    }
    let program = if !args.trusted_keys.is_empty() || crate::bundles::is_bundle_path(&args.path) {
        match load_bundle_program(&args.path, &args.trusted_keys) {
            Ok(p) => p,
            Err((code, e)) => {
                eprintln!("error: {e}");
                return code;
            }
        }
    } else {
        match super::ir::compile(std::slice::from_ref(&args.path), &args.source) {
            Ok((_world, p)) => p,
            Err(code) => return code,
        }
    };
    let call = CallInfo {
        cli: args.cli.clone(),
        ddi: args.ddi.clone(),
        caller_name: args.caller_name.clone(),
        call_id: "sim-1".into(),
        reason: args.reason.clone(),
    };
    let new_state = || exec::start(&program, kind, name, call.clone());
    let mut state = match new_state() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let kind = match args.engine {
        Some(EngineKind::Jit) => jit::EngineKind::Jit,
        Some(EngineKind::Interp) => jit::EngineKind::Interp,
        None => jit::EngineKind::default_for_host(),
    };
    let engine: Box<dyn Engine + '_> = match jit::load(&program, kind) {
        Ok(loaded) => Box::new(loaded),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut host = SimHost::new(clock.clone());
    host.user = user.clone();
    let print = |e: &Effect| match args.format {
        SimFormat::Text => println!("{}", e.to_text()),
        SimFormat::Jsonl => println!("{}", serde_json::to_string(e).expect("effects serialize")),
    };

    let interactive = outcomes.is_none() && std::io::stdin().is_terminal();
    let last = if interactive {
        interact(&*engine, &mut state, &mut host, &print)
    } else {
        let trace = exec::drive(
            &*engine,
            &mut state,
            &mut host,
            outcomes.clone().unwrap_or_default(),
            100_000,
        );
        for s in &trace {
            print(&s.effect);
        }
        trace.last().map(|s| s.effect.clone())
    };

    if args.repeat > 1 || args.repeat == 0 {
        let n = args.repeat.max(1);
        let t0 = Instant::now();
        let mut nodes = 0u64;
        for _ in 0..n {
            let Ok(mut s) = new_state() else { break };
            let mut h = SimHost::new(clock.clone());
            h.user = user.clone();
            exec::drive(
                &*engine,
                &mut s,
                &mut h,
                outcomes.clone().unwrap_or_default(),
                100_000,
            );
            nodes += s.steps;
        }
        let secs = t0.elapsed().as_secs_f64();
        eprintln!(
            "{n} runs in {:.3} ms ({:.3} µs/run): {nodes} nodes, {:.0} nodes/s [engine {}]",
            secs * 1e3,
            secs * 1e6 / n as f64,
            nodes as f64 / secs.max(1e-9),
            kind.name()
        );
    }
    match last {
        Some(Effect::Fault { .. }) => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    }
}

/// The verified program of a bundle file, for `simulate` and `test`:
/// refused without trusted keys (nothing from an unchecked bundle runs), or
/// when any check fails (exit 1, the message names the file and the check).
pub(super) fn load_bundle_program(
    path: &Path,
    trusted_keys: &[PathBuf],
) -> Result<ir::Program, (ExitCode, String)> {
    if trusted_keys.is_empty() {
        return Err((
            ExitCode::from(2),
            format!(
                "{} is a bundle: pass --trusted-key FILE (the public key of its signer, from `vflow keygen`) so its signature can be checked; an unchecked bundle never runs",
                path.display()
            ),
        ));
    }
    let keys =
        crate::bundles::read_trusted_keys(trusted_keys).map_err(|e| (ExitCode::from(2), e))?;
    crate::bundles::load_file(path, &keys, &Limits::default())
        .map(|(bundle, _sha256)| bundle.program)
        .map_err(|e| (ExitCode::from(1), e))
}

/// Asks for each outcome on the terminal. An empty line is `timeout`, end of input `hangup`.
fn interact(
    engine: &dyn Engine,
    state: &mut exec::State,
    host: &mut SimHost,
    print: &dyn Fn(&Effect),
) -> Option<Effect> {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut effect = engine.resume(state, Outcome::Start, host);
    loop {
        print(&effect);
        if effect.is_terminal() {
            return Some(effect);
        }
        let outcome = loop {
            eprint!("outcome> ");
            let _ = std::io::stderr().flush();
            match lines.next() {
                None | Some(Err(_)) => break Outcome::Hangup,
                Some(Ok(l)) if l.trim().is_empty() => break Outcome::Timeout,
                Some(Ok(l)) => match Outcome::parse(&l) {
                    Ok(o) => break o,
                    Err(e) => eprintln!("{e}"),
                },
            }
        };
        effect = engine.resume(state, outcome, host);
    }
}
