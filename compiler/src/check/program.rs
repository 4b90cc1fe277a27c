//! The checked program: every parsed file of a run with its resolved imports,
//! and the lookups that the checker and the lowering share.

use crate::source::FileId;
use crate::syntax::ast;
use std::collections::BTreeMap;

/// All files of one run: the roots the user named, then what they import.
#[derive(Debug, Default)]
pub struct Program {
    pub files: Vec<CheckedFile>,
}

#[derive(Debug)]
pub struct CheckedFile {
    pub id: FileId,
    pub ast: ast::File,
    /// `import "std/mailbox.vflow"` → `"mailbox"` → that file.
    pub namespaces: BTreeMap<String, FileId>,
    /// Named by the user (its flows are deployed), not only imported.
    pub is_root: bool,
}

impl Program {
    pub fn file(&self, id: FileId) -> Option<&CheckedFile> {
        self.files.iter().find(|f| f.id == id)
    }

    /// Resolves a module reference written in `from`: `name` (same file) or
    /// `ns.name` (an imported file's module).
    pub fn module(
        &self,
        from: FileId,
        ns: Option<&str>,
        name: &str,
    ) -> Option<(FileId, &ast::Module)> {
        let file = self.target_file(from, ns)?;
        file.ast
            .modules
            .iter()
            .find(|m| m.name.text == name)
            .map(|m| (file.id, m))
    }

    /// Resolves a time profile reference written in `from`, like [`Program::module`].
    pub fn profile(
        &self,
        from: FileId,
        ns: Option<&str>,
        name: &str,
    ) -> Option<(FileId, &ast::TimeProfile)> {
        let file = self.target_file(from, ns)?;
        file.ast
            .profiles
            .iter()
            .find(|p| p.name.text == name)
            .map(|p| (file.id, p))
    }

    fn target_file(&self, from: FileId, ns: Option<&str>) -> Option<&CheckedFile> {
        let here = self.file(from)?;
        match ns {
            None => Some(here),
            Some(ns) => self.file(*here.namespaces.get(ns)?),
        }
    }

    /// Every flow of the root files, with its file.
    pub fn root_flows(&self) -> impl Iterator<Item = (FileId, &ast::Flow)> {
        self.files
            .iter()
            .filter(|f| f.is_root)
            .flat_map(|f| f.ast.flows.iter().map(move |fl| (f.id, fl)))
    }
}
