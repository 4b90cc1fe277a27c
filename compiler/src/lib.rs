//! vflow-compiler: the `.vflow` call-flow language.
//!
//! `source → syntax (pest) → AST → check → IR → interpreter`. The crate does no
//! I/O: files, the stdlib and prompts come in through [`source::World`].

pub mod actions;
pub mod bundle;
pub mod check;
pub mod diag;
pub mod exec;
pub mod interp;
pub mod ir;
pub mod jit;
pub mod source;
pub mod stdlib;
pub mod syntax;

pub use jit::engine_name;
