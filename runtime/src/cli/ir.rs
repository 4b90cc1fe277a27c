//! `vflow ir`: print the IR of flows in its stable text form (or JSON), and
//! the compile pipeline that `simulate` and `test` share.

use super::SourceOpts;
use crate::world::DiskWorld;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use vflow_compiler::source::{FileId, World};
use vflow_compiler::{check, ir};

#[derive(clap::Args, Debug)]
pub struct IrArgs {
    /// A .vflow file or a directory of them.
    pub path: PathBuf,
    /// `text` (the stable text form, readable back with `--parse`) or `json`.
    #[arg(long, value_enum, default_value_t = IrFormat::Text)]
    pub format: IrFormat,
    /// Read PATH as IR text instead, verify it and print it again (round trip).
    #[arg(long)]
    pub parse: bool,
    #[command(flatten)]
    pub source: SourceOpts,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrFormat {
    Text,
    Json,
}

pub fn run(args: IrArgs) -> ExitCode {
    let program = if args.parse {
        let text = match std::fs::read_to_string(&args.path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot read `{}`: {e}", args.path.display());
                return ExitCode::from(2);
            }
        };
        match ir::text::parse(&text)
            .map_err(|e| e.to_string())
            .and_then(|p| ir::verify(&p).map(|()| p).map_err(|e| e.to_string()))
        {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {}: {e}", args.path.display());
                return ExitCode::from(1);
            }
        }
    } else {
        match compile(std::slice::from_ref(&args.path), &args.source) {
            Ok((_, p)) => p,
            Err(code) => return code,
        }
    };
    match args.format {
        IrFormat::Text => print!("{}", ir::text::print(&program)),
        IrFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&program).expect("IR serializes")
        ),
    }
    ExitCode::SUCCESS
}

/// Loads, checks, lowers and verifies the flows under `paths`. On check
/// errors they are printed like `vflow check` does and the result is exit
/// code 1; unreadable input is exit code 2.
pub fn compile(
    paths: &[PathBuf],
    source: &SourceOpts,
) -> Result<(DiskWorld, ir::Program), ExitCode> {
    let mut world = DiskWorld::new(source.stdlib.clone());
    let mut roots = match super::check::load_roots(&mut world, paths) {
        Ok(r) => r,
        Err(msg) => {
            eprintln!("error: {msg}");
            return Err(ExitCode::from(2));
        }
    };
    add_mailbox(&mut world, &mut roots);
    let checked = check::check(&mut world, &roots);
    if checked.has_errors() {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        for d in &checked.diagnostics {
            let w = &world;
            eprint!(
                "{}",
                d.render(world.file(d.file), |id| Some(w.file(id)), color)
            );
        }
        let errors = checked.diagnostics.iter().filter(|d| d.is_error()).count();
        eprintln!(
            "error: {errors} error{} in the flows",
            if errors == 1 { "" } else { "s" }
        );
        return Err(ExitCode::from(1));
    }
    let program = match ir::lower(&world, &checked.program) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(ExitCode::from(1));
        }
    };
    if let Err(e) = ir::verify(&program) {
        eprintln!("error: {e}");
        return Err(ExitCode::from(1));
    }
    Ok((world, program))
}

/// `get_mail` runs `std/mailbox.vflow`'s `collect`; load that file even when
/// no flow imports it. It holds modules only, so it adds no start points.
fn add_mailbox(world: &mut DiskWorld, roots: &mut Vec<FileId>) {
    let Some(&first) = roots.first() else { return };
    let uses_get_mail = roots
        .iter()
        .any(|&r| world.file(r).text.contains("get_mail"));
    if !uses_get_mail {
        return;
    }
    if let Ok(id) = world.resolve_import(first, "std/mailbox.vflow")
        && !roots.contains(&id)
    {
        roots.push(id);
    }
}
