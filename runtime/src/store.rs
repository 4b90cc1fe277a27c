//! Durable message files: where `leave_mail` and `record` put what callers say.
//!
//! A recording streams into `tmp/` while the caller speaks, so memory per call
//! stays small. It becomes a message only by [`Store::commit_message`]: header
//! patched, file fsynced, metadata written and fsynced, both renamed into the
//! mailbox's folder, the folder fsynced — only then is success reported to the
//! flow. At start, [`Store::open`] removes what a crash left in `tmp/` and
//! reports it.
//!
//! Layout under the data directory:
//! `messages/<mailbox>/<id>.wav` + `<id>.json`, `recordings/<call>-<name>.wav`,
//! `tmp/`.
//!
//! The mailbox database (PINs, greetings, folders, limits) is the voicemail
//! issue's; until it lands every well-formed mailbox name is accepted.

use crate::media::wav_header;
use serde::Serialize;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// A recording being written to `tmp/`.
#[derive(Debug)]
pub struct RecordingFile {
    file: File,
    path: PathBuf,
    samples: u64,
}

/// What is stored beside a message's audio.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MessageMeta {
    pub id: String,
    pub mailbox: String,
    pub caller: String,
    pub caller_name: String,
    /// RFC 3339, the server's local time.
    pub received: String,
    pub duration_ms: u64,
    pub priority: String,
    pub folder: String,
    pub call_id: String,
    pub node: String,
}

impl Store {
    /// Opens (creating) the store and cleans what an interrupted run left:
    /// returns the number of partial recordings removed.
    pub fn open(root: &Path) -> io::Result<(Store, usize)> {
        for sub in ["messages", "recordings", "tmp"] {
            fs::create_dir_all(root.join(sub))?;
        }
        let mut removed = 0;
        for e in fs::read_dir(root.join("tmp"))?.flatten() {
            if e.path().is_file() {
                fs::remove_file(e.path())?;
                removed += 1;
            }
        }
        Ok((Store { root: root.to_path_buf() }, removed))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `name` can name a mailbox or recording on disk (no path tricks).
    pub fn valid_name(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))
            && !name.starts_with('.')
    }

    /// Starts a recording in `tmp/`.
    pub fn begin_recording(&self, id: &str) -> io::Result<RecordingFile> {
        let path = self.root.join("tmp").join(format!("{id}.wav.part"));
        let mut file = OpenOptions::new().write(true).create_new(true).open(&path)?;
        file.write_all(&wav_header(0))?;
        Ok(RecordingFile { file, path, samples: 0 })
    }

    /// Makes a recording a message of `mailbox`. Durable when this returns `Ok`.
    pub fn commit_message(&self, rec: RecordingFile, meta: &MessageMeta) -> io::Result<PathBuf> {
        let dir = self.root.join("messages").join(&meta.mailbox);
        fs::create_dir_all(&dir)?;
        let json = serde_json::to_vec_pretty(meta).map_err(io::Error::other)?;
        let meta_tmp = self.root.join("tmp").join(format!("{}.json.part", meta.id));
        write_synced(&meta_tmp, &json)?;
        let wav = dir.join(format!("{}.wav", meta.id));
        rec.finish_into(&wav)?;
        fs::rename(&meta_tmp, dir.join(format!("{}.json", meta.id)))?;
        sync_dir(&dir)?;
        Ok(wav)
    }

    /// Keeps a `record` action's recording as `recordings/<name>.wav`.
    pub fn commit_recording(&self, rec: RecordingFile, name: &str) -> io::Result<PathBuf> {
        let dest = self.root.join("recordings").join(format!("{name}.wav"));
        rec.finish_into(&dest)?;
        sync_dir(&self.root.join("recordings"))?;
        Ok(dest)
    }

    /// The messages stored for a mailbox (id and metadata path), oldest first.
    pub fn messages(&self, mailbox: &str) -> io::Result<Vec<PathBuf>> {
        let dir = self.root.join("messages").join(mailbox);
        let mut v: Vec<(std::time::SystemTime, PathBuf)> = match fs::read_dir(&dir) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "wav"))
                .map(|p| (fs::metadata(&p).and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH), p))
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        v.sort();
        Ok(v.into_iter().map(|(_, p)| p).collect())
    }
}

impl RecordingFile {
    /// Appends little-endian PCM16 bytes.
    pub fn append(&mut self, pcm: &[u8]) -> io::Result<()> {
        self.file.write_all(pcm)?;
        self.samples += (pcm.len() / 2) as u64;
        Ok(())
    }

    pub fn duration_ms(&self) -> u64 {
        self.samples / 8
    }

    /// The audio written so far, for playing it back (review).
    pub fn samples(&self) -> Option<crate::media::Samples> {
        let bytes = fs::read(&self.path).ok()?;
        let pcm = bytes.get(44..)?;
        Some(pcm.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect())
    }

    /// Drops the partial file.
    pub fn discard(self) {
        let _ = fs::remove_file(&self.path);
    }

    fn finish_into(mut self, dest: &Path) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(&wav_header(self.samples))?;
        self.file.sync_all()?;
        fs::rename(&self.path, dest)
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vflow-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_committed_message_is_a_valid_wav_with_metadata() {
        let root = temp("commit");
        let (store, removed) = Store::open(&root).unwrap();
        assert_eq!(removed, 0);
        let mut rec = store.begin_recording("m1").unwrap();
        let pcm: Vec<u8> = (0..8000i16).flat_map(|s| (s % 100).to_le_bytes()).collect();
        rec.append(&pcm).unwrap();
        assert_eq!(rec.duration_ms(), 1000);
        let meta = MessageMeta {
            id: "m1".into(),
            mailbox: "201".into(),
            caller: "300".into(),
            caller_name: String::new(),
            received: "2026-11-25T10:00:00+00:00".into(),
            duration_ms: 1000,
            priority: "normal".into(),
            folder: "new".into(),
            call_id: "c".into(),
            node: "take".into(),
        };
        let wav = store.commit_message(rec, &meta).unwrap();
        let reader = hound::WavReader::open(&wav).unwrap();
        assert_eq!(reader.spec().sample_rate, 8000);
        assert_eq!(reader.duration(), 8000);
        assert!(wav.with_extension("json").is_file());
        assert_eq!(store.messages("201").unwrap(), vec![wav]);
        assert!(fs::read_dir(root.join("tmp")).unwrap().next().is_none(), "nothing left in tmp");
    }

    #[test]
    fn partial_recordings_are_cleaned_at_open() {
        let root = temp("orphan");
        let (store, _) = Store::open(&root).unwrap();
        let mut rec = store.begin_recording("gone").unwrap();
        rec.append(&[0, 0, 1, 0]).unwrap();
        drop(rec); // as if the process died
        let (_, removed) = Store::open(&root).unwrap();
        assert_eq!(removed, 1);
    }

    #[test]
    fn names() {
        assert!(Store::valid_name("201"));
        assert!(Store::valid_name("sales_vm-2"));
        assert!(!Store::valid_name("../etc"));
        assert!(!Store::valid_name("a/b"));
        assert!(!Store::valid_name(""));
        assert!(!Store::valid_name(".hidden"));
    }
}
