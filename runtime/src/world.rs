//! The compiler's `World` over the file system: source files by path, `std/`
//! imports from a stdlib directory or the stdlib embedded in the binary, and
//! prompt lookup under `prompts/` beside each flow file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vflow_compiler::source::{FileId, ImportError, SourceFile, World};

/// Where a loaded file came from.
#[derive(Debug, Clone)]
enum Origin {
    Disk(PathBuf),
    /// An embedded stdlib file, by file name.
    EmbeddedStd,
}

pub struct DiskWorld {
    files: Vec<(SourceFile, Origin)>,
    /// (file name, text) → id: a stdlib file named on the command line and the
    /// embedded copy that `std/` imports resolve to are one file, not two
    /// (otherwise `vflow check flows stdlib` would hold every stdlib module twice).
    by_content: HashMap<(String, Arc<str>), FileId>,
    by_path: HashMap<PathBuf, FileId>,
    by_std: HashMap<&'static str, FileId>,
    /// A stdlib directory on disk; `None` uses the embedded stdlib.
    stdlib_dir: Option<PathBuf>,
}

impl DiskWorld {
    pub fn new(stdlib_dir: Option<PathBuf>) -> DiskWorld {
        DiskWorld {
            files: Vec::new(),
            by_content: HashMap::new(),
            by_path: HashMap::new(),
            by_std: HashMap::new(),
            stdlib_dir,
        }
    }

    /// Loads a file from disk (once); the error says what went wrong.
    pub fn load(&mut self, path: &Path) -> std::io::Result<FileId> {
        let key = path.canonicalize()?;
        if let Some(&id) = self.by_path.get(&key) {
            return Ok(id);
        }
        let text: Arc<str> = Arc::from(std::fs::read_to_string(path)?);
        let content_key = (file_name(path), text.clone());
        if let Some(&id) = self.by_content.get(&content_key) {
            self.by_path.insert(key, id);
            return Ok(id);
        }
        let id = FileId(self.files.len() as u32);
        let name = display_name(path);
        self.files
            .push((SourceFile { name, text }, Origin::Disk(key.clone())));
        self.by_path.insert(key, id);
        self.by_content.insert(content_key, id);
        Ok(id)
    }

    fn load_std(&mut self, name: &str) -> Result<FileId, ImportError> {
        if let Some(dir) = &self.stdlib_dir {
            let p = dir.join(name);
            return self.load(&p).map_err(|e| ImportError {
                reason: format!("{}: {e}", p.display()),
            });
        }
        let (static_name, text) = vflow_compiler::stdlib::SOURCES
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| ImportError {
                reason: format!("the stdlib has no file `{name}`"),
            })?;
        if let Some(&id) = self.by_std.get(static_name) {
            return Ok(id);
        }
        if let Some(&id) = self
            .by_content
            .get(&(static_name.to_string(), Arc::from(*text)))
        {
            self.by_std.insert(static_name, id);
            return Ok(id);
        }
        let id = FileId(self.files.len() as u32);
        self.files.push((
            SourceFile {
                name: format!("std/{static_name}"),
                text: Arc::from(*text),
            },
            Origin::EmbeddedStd,
        ));
        self.by_std.insert(static_name, id);
        self.by_content
            .insert((static_name.to_string(), Arc::from(*text)), id);
        Ok(id)
    }

    /// Every file loaded so far, in load order: (display name, text, the
    /// directory it lives in when it is on disk or in a stdlib directory).
    pub fn sources(&self) -> impl Iterator<Item = (&str, &str, Option<PathBuf>)> {
        self.files.iter().enumerate().map(|(i, (f, _))| {
            (
                f.name.as_str(),
                f.text.as_ref(),
                self.dir_of(FileId(i as u32)),
            )
        })
    }

    /// The directory a file lives in, if it is on disk.
    pub fn dir_of(&self, id: FileId) -> Option<PathBuf> {
        match &self.files[id.0 as usize].1 {
            Origin::Disk(p) => p.parent().map(Path::to_path_buf),
            Origin::EmbeddedStd => self.stdlib_dir.clone(),
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A path as the user should see it: relative to the working directory when possible.
fn display_name(path: &Path) -> String {
    let shown = std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            path.canonicalize()
                .ok()?
                .strip_prefix(cwd)
                .ok()
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| path.to_path_buf());
    shown.display().to_string()
}

impl World for DiskWorld {
    fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize].0
    }

    fn resolve_import(&mut self, from: FileId, path: &str) -> Result<FileId, ImportError> {
        if let Some(name) = path.strip_prefix("std/") {
            return self.load_std(name);
        }
        let Some(dir) = self.dir_of(from) else {
            // An embedded stdlib file importing a sibling.
            return self.load_std(path);
        };
        let p = dir.join(path);
        self.load(&p).map_err(|e| ImportError {
            reason: format!("{}: {e}", display_name(&p)),
        })
    }

    fn prompt_exists(&self, from: FileId, name: &str) -> bool {
        if let Some(dir) = self.dir_of(from) {
            if dir.join("prompts").join(name).is_file() {
                return true;
            }
        }
        match &self.stdlib_dir {
            Some(dir) => dir.join("prompts").join(name).is_file(),
            None => vflow_compiler::stdlib::PROMPTS.contains(&name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stdlib_file_named_on_disk_and_its_embedded_copy_are_one_file() {
        let stdlib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../stdlib");
        let mut w = DiskWorld::new(None);
        let disk = w.load(&stdlib.join("mailbox.vflow")).unwrap();
        let other = w.load(&stdlib.join("attendant.vflow")).unwrap();
        assert_eq!(w.resolve_import(other, "std/mailbox.vflow").unwrap(), disk);
    }

    #[test]
    fn relative_imports_and_prompts_resolve_beside_the_file() {
        let dir = std::env::temp_dir().join(format!("vflow-world-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("prompts")).unwrap();
        std::fs::write(dir.join("a.vflow"), "import \"b.vflow\"").unwrap();
        std::fs::write(dir.join("b.vflow"), "").unwrap();
        std::fs::write(dir.join("prompts/hi.wav"), b"").unwrap();
        let mut w = DiskWorld::new(None);
        let a = w.load(&dir.join("a.vflow")).unwrap();
        let b = w.resolve_import(a, "b.vflow").unwrap();
        assert_eq!(w.file(b).text.as_ref(), "");
        assert!(w.prompt_exists(a, "hi.wav"));
        assert!(
            w.prompt_exists(a, "beep.wav"),
            "stdlib prompts are found too"
        );
        assert!(!w.prompt_exists(a, "nope.wav"));
        assert!(
            w.resolve_import(a, "missing.vflow")
                .unwrap_err()
                .reason
                .contains("missing.vflow")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
