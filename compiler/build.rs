//! Embeds the stdlib (`../stdlib/*.vflow` and the names of `../stdlib/prompts/*`)
//! so that every binary carries the standard modules it was built with.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    // Read at run time: a build script binary compiled in another checkout
    // sharing the target directory would otherwise carry that checkout's path.
    let manifest = std::env::var("CARGO_MANIFEST_DIR")
        .expect("cargo sets CARGO_MANIFEST_DIR for build scripts");
    let root = Path::new(&manifest).join("../stdlib");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut sources = Vec::new();
    let mut prompts = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&root) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "vflow") {
                println!("cargo:rerun-if-changed={}", p.display());
                sources.push(p);
            }
        }
    }
    let prompt_dir = root.join("prompts");
    println!("cargo:rerun-if-changed={}", prompt_dir.display());
    if let Ok(rd) = std::fs::read_dir(&prompt_dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_file() && p.extension().is_some_and(|x| x == "wav") {
                prompts.push(p);
            }
        }
    }
    sources.sort();
    prompts.sort();
    let mut out = String::new();
    out.push_str("/// The stdlib's `.vflow` files: (file name, text).\npub static SOURCES: &[(&str, &str)] = &[\n");
    for p in &sources {
        let name = p.file_name().unwrap().to_string_lossy();
        let abs = p.canonicalize().unwrap();
        writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            abs.display().to_string()
        )
        .unwrap();
    }
    out.push_str("];\n/// The stdlib's prompts: (file name, WAV bytes).\npub static PROMPT_FILES: &[(&str, &[u8])] = &[\n");
    for p in &prompts {
        let name = p.file_name().unwrap().to_string_lossy();
        let abs = p.canonicalize().unwrap();
        writeln!(
            out,
            "    ({name:?}, include_bytes!({:?})),",
            abs.display().to_string()
        )
        .unwrap();
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("stdlib_files.rs");
    std::fs::write(dest, out).unwrap();
}
