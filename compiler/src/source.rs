//! Sources and the `World`: how the compiler sees files without doing I/O.
//!
//! The compiler never touches the disk. A `World` hands it source text by
//! opaque `FileId`, resolves `import` paths and answers whether a prompt file
//! exists. The CLI implements it over the file system; tests and benchmarks use
//! [`MemoryWorld`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// An opaque handle to a source file known to a `World`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub u32);

/// A byte range in one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }
    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }
    pub fn is_empty(self) -> bool {
        self.start == self.end
    }
    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
    /// The same span moved `by` bytes to the right (for re-parsed chunks).
    pub fn shifted(self, by: usize) -> Span {
        Span {
            start: self.start + by as u32,
            end: self.end + by as u32,
        }
    }
    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

impl From<pest::Span<'_>> for Span {
    fn from(s: pest::Span<'_>) -> Span {
        Span::new(s.start(), s.end())
    }
}

/// A file's display name (as the user should see it in diagnostics) and text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: Arc<str>,
}

impl SourceFile {
    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let offset = (offset as usize).min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Why an import could not be resolved, said so the user can fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    pub reason: String,
}

/// Everything the compiler needs from outside.
pub trait World {
    /// The file behind an id this world handed out.
    fn file(&self, id: FileId) -> &SourceFile;
    /// Resolves `import "path"` written in `from`. `std/…` names the stdlib;
    /// anything else is relative to the importing file's directory.
    fn resolve_import(&mut self, from: FileId, path: &str) -> Result<FileId, ImportError>;
    /// Whether prompt `name` exists under `prompts/` beside `from`, or in the stdlib's prompts.
    fn prompt_exists(&self, from: FileId, name: &str) -> bool;
}

/// A world held in memory: files by path, with `std/` mapped to the embedded
/// stdlib unless the test supplies its own.
#[derive(Debug, Default, Clone)]
pub struct MemoryWorld {
    files: Vec<SourceFile>,
    by_path: BTreeMap<String, FileId>,
    /// Prompt paths that exist, e.g. `"flows/prompts/welcome.wav"`.
    prompts: BTreeSet<String>,
}

impl MemoryWorld {
    pub fn new() -> MemoryWorld {
        MemoryWorld::default()
    }

    /// A world that also holds the embedded stdlib under `std/`.
    pub fn with_stdlib() -> MemoryWorld {
        let mut w = MemoryWorld::new();
        for (path, text) in crate::stdlib::SOURCES {
            w.add(&format!("std/{path}"), text);
        }
        for name in crate::stdlib::PROMPTS.iter() {
            w.add_prompt(&format!("std/prompts/{name}"));
        }
        w
    }

    /// Adds (or replaces) a file; `path` uses `/` separators.
    pub fn add(&mut self, path: &str, text: &str) -> FileId {
        let file = SourceFile {
            name: path.to_string(),
            text: Arc::from(text),
        };
        if let Some(&id) = self.by_path.get(path) {
            self.files[id.0 as usize] = file;
            return id;
        }
        let id = FileId(self.files.len() as u32);
        self.files.push(file);
        self.by_path.insert(path.to_string(), id);
        id
    }

    pub fn add_prompt(&mut self, path: &str) {
        self.prompts.insert(path.to_string());
    }

    pub fn id(&self, path: &str) -> Option<FileId> {
        self.by_path.get(path).copied()
    }
}

/// The directory part of a `/`-separated path, with a trailing `/` (or empty).
fn dir_of(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..=i])
}

/// Joins `rel` onto `dir`, folding `.` and `..` segments.
pub fn join_path(dir: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for seg in rel.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

impl World for MemoryWorld {
    fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    fn resolve_import(&mut self, from: FileId, path: &str) -> Result<FileId, ImportError> {
        let full = if path.starts_with("std/") {
            path.to_string()
        } else {
            join_path(dir_of(&self.file(from).name), path)
        };
        self.id(&full).ok_or_else(|| ImportError {
            reason: format!("no file `{full}`"),
        })
    }

    fn prompt_exists(&self, from: FileId, name: &str) -> bool {
        let beside = join_path(dir_of(&self.file(from).name), &format!("prompts/{name}"));
        self.prompts.contains(&beside) || self.prompts.contains(&format!("std/prompts/{name}"))
    }
}
