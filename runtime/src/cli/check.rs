//! `vflow check`: validate flows and print every diagnostic.

use super::SourceOpts;
use crate::world::DiskWorld;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use vflow_compiler::check;
use vflow_compiler::diag::Severity;
use vflow_compiler::source::{FileId, World};

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Files or directories; directories are searched recursively for *.vflow. Default: `.`
    pub paths: Vec<PathBuf>,
    /// Output format: `human` (rendered reports) or `json` (an array with one object per diagnostic).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Treat warnings as errors (exit 1 when there are any).
    #[arg(long)]
    pub deny_warnings: bool,
    #[command(flatten)]
    pub source: SourceOpts,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

pub fn run(args: CheckArgs) -> ExitCode {
    let mut world = DiskWorld::new(args.source.stdlib.clone());
    let roots = match load_roots(&mut world, &args.paths) {
        Ok(r) => r,
        Err(msg) => {
            eprintln!("error: {msg}");
            return ExitCode::from(2);
        }
    };
    let checked = check::check(&mut world, &roots);
    let errors = checked
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = checked.diagnostics.len() - errors;
    match args.format {
        Format::Json => {
            let items: Vec<_> = checked
                .diagnostics
                .iter()
                .map(|d| d.to_json(world.file(d.file)))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&items).expect("JSON values serialize")
            );
        }
        Format::Human => {
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            for d in &checked.diagnostics {
                let w = &world;
                print!(
                    "{}",
                    d.render(world.file(d.file), |id| Some(w.file(id)), color)
                );
            }
            let files = checked.program.files.iter().filter(|f| f.is_root).count();
            eprintln!(
                "checked {files} file{}: {errors} error{}, {warnings} warning{}",
                plural(files),
                plural(errors),
                plural(warnings)
            );
        }
    }
    if errors > 0 || (args.deny_warnings && warnings > 0) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Loads every `*.vflow` under the given paths (default `.`), in a stable order.
pub fn load_roots(world: &mut DiskWorld, paths: &[PathBuf]) -> Result<Vec<FileId>, String> {
    let default = [PathBuf::from(".")];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    let mut files = Vec::new();
    for p in paths {
        let meta =
            std::fs::metadata(p).map_err(|e| format!("cannot read `{}`: {e}", p.display()))?;
        if meta.is_dir() {
            collect_vflow(p, &mut files)
                .map_err(|e| format!("cannot read directory `{}`: {e}", p.display()))?;
        } else {
            files.push(p.clone());
        }
    }
    if files.is_empty() {
        return Err(format!(
            "no .vflow files found in {}",
            paths
                .iter()
                .map(|p| format!("`{}`", p.display()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut ids = Vec::new();
    for f in files {
        let id = world
            .load(&f)
            .map_err(|e| format!("cannot read `{}`: {e}", f.display()))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

pub(crate) fn collect_vflow(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if e.file_type()?.is_dir() {
            collect_vflow(&path, out)?;
        } else if name.ends_with(".vflow") {
            out.push(path);
        }
    }
    Ok(())
}
