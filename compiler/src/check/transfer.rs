//! `allow_transfer` patterns.
use super::CheckedFile;
use crate::diag::Diagnostic;

pub(super) fn check_patterns(_file: &CheckedFile, _out: &mut Vec<Diagnostic>) {}
