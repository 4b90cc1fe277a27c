//! The standard library, embedded at build time from `stdlib/` (see build.rs).
//! `import "std/NAME.vflow"` resolves here unless the CLI is pointed at
//! another stdlib directory.

include!(concat!(env!("OUT_DIR"), "/stdlib_files.rs"));

/// The names of the stdlib's prompt files.
pub static PROMPTS: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| PROMPT_FILES.iter().map(|(n, _)| *n).collect());

/// The text of a stdlib file by name (`mailbox.vflow`).
pub fn source(name: &str) -> Option<&'static str> {
    SOURCES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}
