//! Bundles on disk: key files, trusted key sets, loading a bundle file, and
//! gathering what `vflow build` puts in one. The format and every check live
//! in `vflow_compiler::bundle`; this module only does the file I/O around it.

use crate::world::DiskWorld;
use std::io::Write;
use std::path::{Path, PathBuf};
use vflow_compiler::bundle::{self, Bundle, Limits, PromptFile, PublicKey, SecretKey, TrustedKeys};

/// Reads public key files (`site.pub`, PEM) into a trusted set; errors name the file.
pub fn read_trusted_keys(paths: &[PathBuf]) -> Result<TrustedKeys, String> {
    let mut keys = TrustedKeys::new();
    for p in paths {
        let text =
            std::fs::read_to_string(p).map_err(|e| format!("trusted key {}: {e}", p.display()))?;
        let key =
            PublicKey::from_pem(&text).map_err(|e| format!("trusted key {}: {e}", p.display()))?;
        keys.add(key);
    }
    Ok(keys)
}

/// Reads a signing key file (`site.key`, PEM).
pub fn read_secret_key(path: &Path) -> Result<SecretKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("key {}: {e}", path.display()))?;
    SecretKey::from_pem(&text).map_err(|e| format!("key {}: {e}", path.display()))
}

/// A bundle file's bytes, refusing an oversize file before reading it.
pub fn read_file(path: &Path, limits: &Limits) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > limits.max_bundle_bytes {
        return Err(format!(
            "{}: {}",
            path.display(),
            bundle::BundleError::Oversize {
                size: meta.len(),
                limit: limits.max_bundle_bytes
            }
        ));
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Loads and verifies a bundle file (see `bundle::load` for the checks). The
/// error is `FILE: what failed and what to do`. Also returns the file's SHA-256.
pub fn load_file(
    path: &Path,
    trusted: &TrustedKeys,
    limits: &Limits,
) -> Result<(Bundle, String), String> {
    let bytes = read_file(path, limits)?;
    verify_bytes(&bytes, trusted, limits).map_err(|e| format!("{}: {e}", path.display()))
}

/// Verifies a bundle's bytes (signature by a trusted key, then content:
/// `bundle::load`) and returns it with the SHA-256 of the bytes. The one
/// check both a file being loaded and bytes received from another node go
/// through.
pub fn verify_bytes(
    bytes: &[u8],
    trusted: &TrustedKeys,
    limits: &Limits,
) -> Result<(Bundle, String), String> {
    let b = bundle::load(bytes, trusted, limits).map_err(|e| e.to_string())?;
    Ok((b, bundle::file_hash(bytes)))
}

/// Whether a path names a bundle rather than flow source: the `.vfb`
/// extension, or a file that starts with the bundle magic.
pub fn is_bundle_path(path: &Path) -> bool {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("vfb"))
    {
        return true;
    }
    if !path.is_file() {
        return false;
    }
    let mut head = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok_and(|()| head == bundle::MAGIC)
}

/// The source files a compiled world holds, as (display name, text bytes).
pub fn sources(world: &DiskWorld) -> Vec<(String, Vec<u8>)> {
    world
        .sources()
        .map(|(name, text, _)| (name.to_string(), text.as_bytes().to_vec()))
        .collect()
}

/// The prompts a server running `world`'s flows can play, as files: the
/// stdlib's (embedded, or `stdlib_dir/prompts`), then every `*.wav` in the
/// `prompts/` folder beside each source file; a flow's own prompt shadows a
/// stdlib prompt of the same name. Every file must be playable audio.
pub fn prompt_files(
    world: &DiskWorld,
    stdlib_dir: Option<&Path>,
) -> Result<Vec<PromptFile>, String> {
    let mut by_name: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
    match stdlib_dir {
        Some(dir) => read_prompt_dir(&dir.join("prompts"), &mut by_name)?,
        None => {
            for (name, bytes) in vflow_compiler::stdlib::PROMPT_FILES {
                by_name.insert(name.to_string(), bytes.to_vec());
            }
        }
    }
    let mut dirs: Vec<PathBuf> = world.sources().filter_map(|(_, _, d)| d).collect();
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        if stdlib_dir.is_some_and(|s| s == d) {
            continue;
        }
        read_prompt_dir(&d.join("prompts"), &mut by_name)?;
    }
    let mut bad = Vec::new();
    for (name, bytes) in &by_name {
        if let Err(e) = crate::media::load_prompt(name, bytes) {
            bad.push(e.to_string());
        }
    }
    if !bad.is_empty() {
        return Err(format!(
            "{} prompt file{} cannot be played (convert to 8 kHz mono 16-bit PCM WAV, e.g. `sox in.wav -r 8000 -c 1 -b 16 out.wav`):\n  {}",
            bad.len(),
            if bad.len() == 1 { "" } else { "s" },
            bad.join("\n  ")
        ));
    }
    Ok(by_name
        .into_iter()
        .map(|(name, bytes)| PromptFile { name, bytes })
        .collect())
}

fn read_prompt_dir(
    dir: &Path,
    out: &mut std::collections::BTreeMap<String, Vec<u8>>,
) -> Result<(), String> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    let mut paths: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        if !p.is_file() || p.extension().is_none_or(|e| !e.eq_ignore_ascii_case("wav")) {
            continue;
        }
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        out.insert(name, bytes);
    }
    Ok(())
}

/// Writes a file so that readers see the old content or the new, never a
/// part: temp file, fsync, rename, directory fsync. `mode` for new files.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("not a file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_key_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("vflow-bundles-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("bad.pub");
        std::fs::write(&p, "not a key").unwrap();
        let e = read_trusted_keys(std::slice::from_ref(&p)).unwrap_err();
        assert!(
            e.contains("bad.pub") && e.contains("BEGIN PUBLIC KEY"),
            "{e}"
        );
        let e = read_trusted_keys(&[dir.join("missing.pub")]).unwrap_err();
        assert!(e.contains("missing.pub"), "{e}");
    }

    #[test]
    fn atomic_writes_replace_whole_files_with_the_mode_asked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("vflow-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("k");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
