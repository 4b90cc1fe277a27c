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
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    compile_report(paths, source, color).map_err(|f| {
        eprint!("{}", f.diagnostics);
        eprintln!("error: {}", f.summary);
        f.code
    })
}

/// Why [`compile_report`] failed.
#[derive(Debug)]
pub struct CompileFailure {
    /// 1: the flows have errors; 2: unreadable input.
    pub code: ExitCode,
    /// The rendered diagnostics (empty when there are none).
    pub diagnostics: String,
    /// One line, e.g. `2 errors in the flows`.
    pub summary: String,
}

/// [`compile`], returning what it would print instead (for a server that
/// reloads its flows and answers with the reason).
pub fn compile_report(
    paths: &[PathBuf],
    source: &SourceOpts,
    color: bool,
) -> Result<(DiskWorld, ir::Program), CompileFailure> {
    let fail = |code: u8, summary: String| CompileFailure {
        code: ExitCode::from(code),
        diagnostics: String::new(),
        summary,
    };
    let mut world = DiskWorld::new(source.stdlib.clone());
    let mut roots = match super::check::load_roots(&mut world, paths) {
        Ok(r) => r,
        Err(msg) => return Err(fail(2, msg)),
    };
    add_mailbox(&mut world, &mut roots);
    let checked = check::check(&mut world, &roots);
    if checked.has_errors() {
        let mut diagnostics = String::new();
        for d in &checked.diagnostics {
            let w = &world;
            diagnostics.push_str(&d.render(world.file(d.file), |id| Some(w.file(id)), color));
        }
        let errors = checked.diagnostics.iter().filter(|d| d.is_error()).count();
        return Err(CompileFailure {
            code: ExitCode::from(1),
            diagnostics,
            summary: format!(
                "{errors} error{} in the flows",
                if errors == 1 { "" } else { "s" }
            ),
        });
    }
    let program = match ir::lower(&world, &checked.program) {
        Ok(p) => p,
        Err(e) => return Err(fail(1, e.to_string())),
    };
    if let Err(e) = ir::verify(&program) {
        return Err(fail(1, e.to_string()));
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
