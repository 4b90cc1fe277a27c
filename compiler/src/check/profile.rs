//! Time profile validation.
use super::CheckedFile;
use crate::diag::Diagnostic;

pub(super) fn check_profiles(_file: &CheckedFile, _out: &mut Vec<Diagnostic>) {}
