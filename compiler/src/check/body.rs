//! Per-file checks of flows and modules.
use super::{CheckedFile, Program};
use crate::diag::Diagnostic;
use crate::source::World;

pub(super) fn check_file(_world: &dyn World, _program: &Program, _file: &CheckedFile, _out: &mut Vec<Diagnostic>) {}
pub(super) fn check_start_points(_program: &Program, _out: &mut Vec<Diagnostic>) {}
