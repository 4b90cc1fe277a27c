//! The server's prompt library: every prompt a flow can play, decoded once at
//! start and shared by all calls.
//!
//! Flows from source play the stdlib's prompts (built into the binary, or
//! `--stdlib DIR`) and those in `prompts/` beside each flow file
//! ([`PromptLibrary::load`]); flows from a bundle play the bundle's prompt
//! files, which include the stdlib's it was built with
//! ([`PromptLibrary::from_files`]). All of them
//! are decoded and validated when the flows are loaded, so a WAV in a format
//! we cannot play (anything but 8 kHz mono PCM16 or G.711) is an error at load
//! that names the file and its format — never a silent gap in a call.

use crate::media::{Samples, load_prompt};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Default)]
pub struct PromptLibrary {
    by_name: HashMap<String, Samples>,
}

/// A prompt that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptLoadError {
    pub file: String,
    pub message: String,
}

impl std::fmt::Display for PromptLoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

impl PromptLibrary {
    /// Loads the stdlib prompts (embedded, or from `stdlib_dir/prompts`), then
    /// every `*.wav` under each of `flow_dirs`' `prompts/` folder. A flow's
    /// own prompt shadows a stdlib prompt of the same name.
    pub fn load(
        stdlib_dir: Option<&Path>,
        flow_dirs: &[PathBuf],
    ) -> Result<PromptLibrary, Vec<PromptLoadError>> {
        let mut lib = PromptLibrary::default();
        let mut errors = Vec::new();
        lib.load_stdlib(stdlib_dir, &mut errors);
        for dir in flow_dirs {
            lib.load_dir(&dir.join("prompts"), &mut errors);
        }
        if errors.is_empty() {
            Ok(lib)
        } else {
            Err(errors)
        }
    }

    /// A bundle's prompts, `(file name, WAV bytes)`, validated exactly like
    /// files on disk. A bundle carries every prompt its flows can play (the
    /// stdlib's too, as it was built), so nothing else is loaded: a server
    /// plays the audio that was signed. `origin` (the bundle file) prefixes
    /// the names in errors. A name must be a plain `NAME.wav`, once.
    pub fn from_files<'a>(
        origin: &str,
        files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<PromptLibrary, Vec<PromptLoadError>> {
        let mut lib = PromptLibrary::default();
        let mut errors = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (name, bytes) in files {
            let shown = format!("{origin}: prompt `{name}`");
            let plain = !name.is_empty()
                && !name.contains(['/', '\\', '\0'])
                && name != ".."
                && name.len() > 4
                && name[name.len() - 4..].eq_ignore_ascii_case(".wav");
            if !plain {
                errors.push(PromptLoadError {
                    file: shown,
                    message: "a prompt name must be a plain file name ending in `.wav`".into(),
                });
            } else if !seen.insert(name) {
                errors.push(PromptLoadError {
                    file: shown,
                    message: "appears twice".into(),
                });
            } else {
                lib.add(&shown, name, bytes, &mut errors);
            }
        }
        if errors.is_empty() {
            Ok(lib)
        } else {
            Err(errors)
        }
    }

    fn load_stdlib(&mut self, stdlib_dir: Option<&Path>, errors: &mut Vec<PromptLoadError>) {
        match stdlib_dir {
            Some(dir) => self.load_dir(&dir.join("prompts"), errors),
            None => {
                for (name, bytes) in vflow_compiler::stdlib::PROMPT_FILES {
                    self.add(&format!("std/prompts/{name}"), name, bytes, errors);
                }
            }
        }
    }

    fn load_dir(&mut self, dir: &Path, errors: &mut Vec<PromptLoadError>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut paths: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if !p.is_file() || p.extension().is_none_or(|e| !e.eq_ignore_ascii_case("wav")) {
                continue;
            }
            let shown = p.display().to_string();
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            match std::fs::read(&p) {
                Ok(bytes) => self.add(&shown, &name, &bytes, errors),
                Err(e) => errors.push(PromptLoadError {
                    file: shown,
                    message: format!("cannot read: {e}"),
                }),
            }
        }
    }

    fn add(&mut self, shown: &str, name: &str, bytes: &[u8], errors: &mut Vec<PromptLoadError>) {
        match load_prompt(shown, bytes) {
            Ok(samples) => {
                self.by_name.insert(name.to_string(), samples);
            }
            Err(e) => errors.push(PromptLoadError {
                file: shown.to_string(),
                message: e.to_string(),
            }),
        }
    }

    /// A prompt by file name (`"welcome.wav"`).
    pub fn get(&self, name: &str) -> Option<Samples> {
        self.by_name.get(name).cloned()
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_the_stdlib_and_refuses_bad_wavs_with_their_name() {
        let lib = PromptLibrary::load(None, &[]).unwrap();
        assert!(lib.get("beep.wav").is_some());
        assert!(lib.get("digit-7.wav").is_some());

        let dir = std::env::temp_dir().join(format!("vflow-prompts-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("prompts")).unwrap();
        // 16 kHz stereo: not playable.
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 16000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(dir.join("prompts/bad.wav"), spec).unwrap();
        w.write_sample(0i16).unwrap();
        w.write_sample(0i16).unwrap();
        w.finalize().unwrap();
        let errs = PromptLibrary::load(None, std::slice::from_ref(&dir)).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].file.ends_with("bad.wav"), "{errs:?}");
        assert!(
            errs[0].message.contains("16000") || errs[0].message.contains("16 kHz"),
            "{errs:?}"
        );
    }

    fn wav(sample_rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
        let spec = hound::WavSpec {
            channels,
            sample_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut cur = std::io::Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut cur, spec).unwrap();
        for &s in samples {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        cur.into_inner()
    }

    #[test]
    fn a_bundles_prompts_are_validated_like_files() {
        let good = wav(8000, 1, &[1000; 160]);
        let lib = PromptLibrary::from_files(
            "site.vfb",
            [("welcome.wav", &good[..]), ("beep.wav", &good[..])],
        )
        .unwrap();
        assert_eq!(lib.get("welcome.wav").unwrap().len(), 160);
        // The bundle's own beep; nothing comes from outside the bundle.
        assert_eq!(lib.get("beep.wav").unwrap().len(), 160);
        assert!(lib.get("digit-7.wav").is_none());
        assert_eq!(lib.len(), 2);

        let stereo = wav(16000, 2, &[0, 0]);
        let errs = PromptLibrary::from_files(
            "site.vfb",
            [
                ("bad.wav", &stereo[..]),
                ("../x.wav", &good[..]),
                ("noext", &good[..]),
                ("welcome.wav", &good[..]),
                ("welcome.wav", &good[..]),
                ("junk.wav", &b"RIFF...."[..]),
            ],
        )
        .unwrap_err();
        let shown: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(errs.len(), 5, "{shown:#?}");
        assert!(
            shown[0].starts_with("site.vfb: prompt `bad.wav`"),
            "{shown:#?}"
        );
        assert!(shown[1].contains("plain file name"), "{shown:#?}");
        assert!(shown[2].contains("plain file name"), "{shown:#?}");
        assert!(shown[3].contains("twice"), "{shown:#?}");
        assert!(shown[4].contains("junk.wav"), "{shown:#?}");
    }
}
