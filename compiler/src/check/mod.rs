//! Name resolution and checks over a whole run: imports, names, actions and
//! their parameters and results, types, prompts, start points, transfer
//! permissions and the node graph.
//!
//! Invariant: `check` reports every diagnostic of every file it loads and never
//! stops at the first. A `Program` with no error diagnostics is safe to lower:
//! every name resolves, every expression is well typed, and every edge points
//! at a node, `hangup` or a declared exit.

mod body;
mod graph;
mod profile;
mod program;
pub mod transfer;

pub use program::{CheckedFile, Program};

use crate::diag::{Code, Diagnostic};
use crate::source::{FileId, World};
use crate::syntax;
use std::collections::{BTreeMap, HashMap};

/// The result of a check: the program and everything found wrong with it.
#[derive(Debug)]
pub struct Checked {
    pub program: Program,
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Checks the given root files and everything they import.
pub fn check(world: &mut dyn World, roots: &[FileId]) -> Checked {
    let mut diags = Vec::new();
    let mut program = Program::default();
    let mut index: HashMap<FileId, usize> = HashMap::new();
    let mut queue: Vec<FileId> = Vec::new();
    for &r in roots {
        if !index.contains_key(&r) {
            load(world, r, true, &mut program, &mut index, &mut diags);
            queue.push(r);
        }
    }
    // Breadth-first over imports; every file is parsed once.
    let mut i = 0;
    while i < queue.len() {
        let id = queue[i];
        i += 1;
        let imports: Vec<_> = program.files[index[&id]].ast.imports.clone();
        let mut namespaces = BTreeMap::new();
        for imp in imports {
            let target = match world.resolve_import(id, &imp.value) {
                Ok(t) => t,
                Err(e) => {
                    diags.push(
                        Diagnostic::new(Code::UnresolvedImport, id, imp.span, format!("cannot import `{}`: {}", imp.value, e.reason))
                            .label("not found")
                            .help("`std/NAME.vflow` names a stdlib file; other paths are relative to this file's directory"),
                    );
                    continue;
                }
            };
            let ns = namespace_of(&world.file(target).name);
            if let Some(prev) = namespaces.insert(ns.clone(), target) {
                if prev != target {
                    diags.push(
                        Diagnostic::new(
                            Code::DuplicateImport,
                            id,
                            imp.span,
                            format!("two imports are both named `{ns}`"),
                        )
                        .label("second file with this name")
                        .help("modules are named after their file's stem; rename one of the files"),
                    );
                }
            }
            if !index.contains_key(&target) {
                load(world, target, false, &mut program, &mut index, &mut diags);
                queue.push(target);
            }
        }
        program.files[index[&id]].namespaces = namespaces;
    }
    import_cycles(world, &program, &mut diags);

    for f in &program.files {
        let mut sink = Vec::new();
        body::check_file(world, &program, f, &mut sink);
        profile::check_profiles(f, &mut sink);
        transfer::check_patterns(f, &mut sink);
        diags.extend(sink);
    }
    body::check_start_points(&program, &mut diags);

    // Stable order: by file as loaded, then by position.
    let order: HashMap<FileId, usize> = program
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.id, i))
        .collect();
    diags.sort_by_key(|d| {
        (
            order.get(&d.file).copied().unwrap_or(usize::MAX),
            d.span.start,
            d.code,
        )
    });
    diags.dedup();
    Checked {
        program,
        diagnostics: diags,
    }
}

fn load(
    world: &mut dyn World,
    id: FileId,
    is_root: bool,
    program: &mut Program,
    index: &mut HashMap<FileId, usize>,
    diags: &mut Vec<Diagnostic>,
) {
    let text = world.file(id).text.clone();
    let (ast, d) = syntax::parse(id, &text);
    diags.extend(d);
    index.insert(id, program.files.len());
    program.files.push(CheckedFile {
        id,
        ast,
        namespaces: BTreeMap::new(),
        is_root,
    });
}

/// A file's namespace: its file name without directory and `.vflow`.
pub fn namespace_of(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    base.strip_suffix(".vflow").unwrap_or(base).to_string()
}

/// Reports each import cycle once, at the import that closes it.
fn import_cycles(world: &dyn World, program: &Program, diags: &mut Vec<Diagnostic>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        world: &dyn World,
        program: &Program,
        id: FileId,
        marks: &mut HashMap<FileId, Mark>,
        stack: &mut Vec<FileId>,
        diags: &mut Vec<Diagnostic>,
    ) {
        marks.insert(id, Mark::Open);
        stack.push(id);
        let Some(file) = program.file(id) else { return };
        for imp in &file.ast.imports {
            let ns = namespace_of(&imp.value);
            let Some(&target) = file.namespaces.get(&ns) else {
                continue;
            };
            match marks.get(&target) {
                Some(Mark::Open) => {
                    // Report at every import of the cycle, so each file shows it.
                    let at = stack.iter().position(|&f| f == target).unwrap_or(0);
                    let members: Vec<FileId> = stack[at..].to_vec();
                    let chain: Vec<String> = members
                        .iter()
                        .chain(std::iter::once(&target))
                        .map(|f| world.file(*f).name.clone())
                        .collect();
                    for (k, &from) in members.iter().enumerate() {
                        let to = members.get(k + 1).copied().unwrap_or(target);
                        let Some(f) = program.file(from) else {
                            continue;
                        };
                        let Some(edge) = f
                            .ast
                            .imports
                            .iter()
                            .find(|i| f.namespaces.get(&namespace_of(&i.value)) == Some(&to))
                        else {
                            continue;
                        };
                        diags.push(
                            Diagnostic::new(
                                Code::ImportCycle,
                                from,
                                edge.span,
                                format!("import cycle: {}", chain.join(" → ")),
                            )
                            .label("this import is part of a cycle")
                            .help("move what both files need into a third file that both import"),
                        );
                    }
                }
                Some(Mark::Done) => {}
                None => visit(world, program, target, marks, stack, diags),
            }
        }
        stack.pop();
        marks.insert(id, Mark::Done);
    }
    let mut marks = HashMap::new();
    for f in &program.files {
        if !marks.contains_key(&f.id) {
            visit(world, program, f.id, &mut marks, &mut Vec::new(), diags);
        }
    }
}
