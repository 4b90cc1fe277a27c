//! The voicemail store: a SQLite database (`voicemail.db`) plus WAV files,
//! all under the data directory.
//!
//! A recording streams into `tmp/` while the caller speaks, so memory per call
//! stays small. It becomes a message only by [`Store::commit_message`]: WAV
//! header patched, file fsynced, renamed into the mailbox's folder, the folder
//! fsynced, and only then the row committed (SQLite, WAL, `synchronous=FULL`).
//! Success is reported to the flow after that commit, so an acknowledged
//! message survives `kill -9` and power loss.
//!
//! A crash can leave: partial files in `tmp/` (removed by [`Store::recover`]),
//! or a message file renamed but never committed (moved to `orphans/` and
//! reported — the caller was never told it was stored). A row whose file is
//! missing is reported too. Nothing is dropped silently. Only the server calls
//! `recover`, at start: the `vflow mailbox` tool opens the same store while the
//! server runs and must not touch files in flight.
//!
//! Layout under the data directory:
//! `voicemail.db`, `messages/<mailbox>/<uuid>.wav`,
//! `greetings/<mailbox>/<kind>-<uuid>.wav`, `recordings/<name>.wav`, `tmp/`,
//! `orphans/`.
//!
//! Schema (version [`SCHEMA_VERSION`], `PRAGMA user_version`; each migration
//! runs in one transaction, see [`MIGRATIONS`]): `mailboxes`, `greetings`,
//! `messages`, `user_vars`, `outbox`.
//!
//! Every change to a mailbox's messages is announced on [`Store::subscribe`]
//! (the mailbox id) after it is committed — the hook for MWI.

use crate::media::wav_header;
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 2;

/// Migration `i` takes the database from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 0 → 1
    "CREATE TABLE mailboxes (
        id TEXT PRIMARY KEY NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        pin_hash TEXT,                                -- argon2 PHC string; NULL: no remote access
        email TEXT NOT NULL DEFAULT '',
        email_mode TEXT NOT NULL DEFAULT 'off' CHECK (email_mode IN ('off','notify','attach','forward')),
        max_messages INTEGER,                         -- NULL: voicemail.limits.max_messages
        max_message_ms INTEGER,                       -- NULL: voicemail.limits.max_message_length
        failed_pins INTEGER NOT NULL DEFAULT 0,       -- wrong PINs in a row
        locked_until_ms INTEGER,                      -- unix ms; locked while in the future
        created_ms INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE greetings (
        mailbox TEXT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('unavailable','busy','name','temporary')),
        id TEXT NOT NULL,                             -- file greetings/<mailbox>/<kind>-<id>.wav
        active INTEGER NOT NULL CHECK (active IN (0, 1)),  -- 0: recorded, not yet activated
        duration_ms INTEGER NOT NULL,
        recorded_ms INTEGER NOT NULL,
        PRIMARY KEY (mailbox, kind, id)
    ) STRICT;
    CREATE UNIQUE INDEX greetings_one_active ON greetings(mailbox, kind) WHERE active = 1;
    CREATE TABLE messages (
        id TEXT PRIMARY KEY NOT NULL,                 -- UUID v4; file messages/<mailbox>/<id>.wav
        mailbox TEXT NOT NULL REFERENCES mailboxes(id),
        caller TEXT NOT NULL,
        caller_name TEXT NOT NULL,
        received_ms INTEGER NOT NULL,                 -- unix ms
        duration_ms INTEGER NOT NULL,
        folder TEXT NOT NULL CHECK (folder IN ('new','saved','deleted')),
        folder_since_ms INTEGER NOT NULL,             -- when it entered its folder (retention)
        priority TEXT NOT NULL CHECK (priority IN ('normal','urgent')),
        origin_node TEXT NOT NULL,                    -- the vflow node that recorded it
        call_id TEXT NOT NULL,
        flow_node TEXT NOT NULL                       -- the flow node that took it
    ) STRICT;
    CREATE INDEX messages_by_folder ON messages(mailbox, folder, received_ms);
    CREATE TABLE user_vars (
        name TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    ) STRICT;
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,                           -- 'email', later cluster replication…
        mailbox TEXT,
        message_id TEXT,
        payload TEXT NOT NULL DEFAULT '{}',           -- JSON, the consumer's own
        created_ms INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_ms INTEGER NOT NULL,
        last_error TEXT,
        done_ms INTEGER                               -- NULL while pending
    ) STRICT;
    CREATE INDEX outbox_pending ON outbox(next_attempt_ms) WHERE done_ms IS NULL;",
    // 1 → 2: where unsolicited MWI NOTIFYs go (`sip:201@192.0.2.5:5060`; '' for none).
    "ALTER TABLE mailboxes ADD COLUMN mwi TEXT NOT NULL DEFAULT '';",
];

/// The store: the database and the files. Cheap to clone; all clones share
/// one connection (SQLite serialises writers anyway). Every method blocks
/// (fsync, SQLite): call it from `spawn_blocking` in async code.
#[derive(Clone)]
pub struct Store {
    root: PathBuf,
    db: Arc<Mutex<Connection>>,
    changes: tokio::sync::broadcast::Sender<String>,
    /// Cluster: every committed message is also queued for the central (kind `forward`).
    forwarding: Arc<std::sync::atomic::AtomicBool>,
}

/// The outbox kind of a message to forward to the cluster's central.
pub const FORWARD_KIND: &str = "forward";

/// What [`Store::store_forwarded`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Stored now.
    New(Message),
    /// A message with this id was already stored (a repeated delivery): nothing changed.
    Duplicate(Message),
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// What went wrong in the store.
#[derive(Debug)]
pub enum StoreError {
    Io(io::Error),
    Db(rusqlite::Error),
    /// The database was written by a newer vflow.
    TooNew {
        found: i64,
    },
    /// No such mailbox, message or greeting.
    NotFound(String),
    /// A request the store refuses (bad name, mailbox exists…).
    Invalid(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io(e) => write!(f, "{e}"),
            StoreError::Db(e) => write!(f, "database: {e}"),
            StoreError::TooNew { found } => {
                write!(
                    f,
                    "the database has schema version {found}; this vflow knows up to {SCHEMA_VERSION}"
                )
            }
            StoreError::NotFound(what) => write!(f, "{what} not found"),
            StoreError::Invalid(what) => write!(f, "{what}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> Self {
        StoreError::Io(e)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Db(e)
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A message folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Folder {
    New,
    Saved,
    Deleted,
}

impl Folder {
    pub const ALL: [Folder; 3] = [Folder::New, Folder::Saved, Folder::Deleted];

    pub fn parse(s: &str) -> Option<Folder> {
        match s {
            "new" => Some(Folder::New),
            "saved" => Some(Folder::Saved),
            "deleted" => Some(Folder::Deleted),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Folder::New => "new",
            Folder::Saved => "saved",
            Folder::Deleted => "deleted",
        }
    }
}

impl fmt::Display for Folder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A recording being written to `tmp/`.
#[derive(Debug)]
pub struct RecordingFile {
    file: File,
    path: PathBuf,
    samples: u64,
}

/// What a new message is, apart from its audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub mailbox: String,
    pub caller: String,
    pub caller_name: String,
    /// Unix milliseconds.
    pub received_ms: i64,
    /// `normal` or `urgent`.
    pub priority: String,
    /// The vflow node (server) that recorded it.
    pub origin_node: String,
    pub call_id: String,
    /// The flow node (`unit.node`) that took it.
    pub flow_node: String,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub mailbox: String,
    pub caller: String,
    pub caller_name: String,
    pub received_ms: i64,
    pub duration_ms: u64,
    pub folder: Folder,
    pub folder_since_ms: i64,
    pub priority: String,
    pub origin_node: String,
    pub call_id: String,
    pub flow_node: String,
}

/// A stored greeting (active, or recorded and waiting for `set_greeting`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    pub mailbox: String,
    pub kind: String,
    pub id: String,
    pub active: bool,
    pub duration_ms: u64,
    pub recorded_ms: i64,
}

/// What [`Store::recover`] found and did at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Partial recordings removed from `tmp/` (no call was told they were stored).
    pub partial_removed: usize,
    /// Audio files without a row, moved to `orphans/` (paths there).
    pub orphaned: Vec<PathBuf>,
    /// Messages whose audio file is missing: (mailbox, message id).
    pub missing_audio: Vec<(String, String)>,
    /// Greetings whose audio file is missing: (mailbox, kind, id); their rows are removed.
    pub missing_greetings: Vec<(String, String, String)>,
}

/// One pending (or finished) outbox entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: i64,
    pub kind: String,
    pub mailbox: Option<String>,
    pub message_id: Option<String>,
    pub payload: String,
    pub created_ms: i64,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Store {
    /// Opens (creating) the store and brings its schema up to date. Touches no
    /// files in flight: see [`Store::recover`].
    pub fn open(root: &Path) -> Result<Store> {
        for sub in ["messages", "greetings", "recordings", "tmp", "orphans"] {
            fs::create_dir_all(root.join(sub))?;
        }
        let mut conn = Connection::open(root.join("voicemail.db"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // WAL with FULL sync: every commit is on disk when it returns.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&mut conn)?;
        let (changes, _) = tokio::sync::broadcast::channel(256);
        Ok(Store {
            root: root.to_path_buf(),
            db: Arc::new(Mutex::new(conn)),
            changes,
            forwarding: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The database connection, for the voicemail modules.
    pub(crate) fn db(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding it leaves SQLite consistent (transactions roll back).
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .db()
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// Mailbox ids whose messages changed (stored, moved, removed), announced
    /// after the change is committed. Lagging receivers lose old ids: on
    /// `Lagged`, refresh every mailbox.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    pub(crate) fn changed(&self, mailbox: &str) {
        let _ = self.changes.send(mailbox.to_string());
    }

    /// Whether `name` can name a mailbox or recording on disk (no path tricks).
    pub fn valid_name(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))
            && !name.starts_with('.')
    }

    /// Cleans up after an interrupted run; the server calls it once at start,
    /// before any call. Reports everything it finds (see [`Recovery`]).
    pub fn recover(&self) -> Result<Recovery> {
        let mut report = Recovery::default();
        for e in fs::read_dir(self.root.join("tmp"))?.flatten() {
            if e.path().is_file() {
                fs::remove_file(e.path())?;
                report.partial_removed += 1;
            }
        }
        // Messages: files without rows, rows without files.
        let rows: Vec<(String, String)> = {
            let db = self.db();
            let mut st =
                db.prepare("SELECT mailbox, id FROM messages ORDER BY mailbox, received_ms")?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        let known: std::collections::HashSet<(String, String)> = rows.iter().cloned().collect();
        for dir in subdirs(&self.root.join("messages"))? {
            let mailbox = file_name(&dir);
            for f in files(&dir)? {
                let stem = f
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let is_wav = f.extension().is_some_and(|x| x == "wav");
                if !(is_wav && known.contains(&(mailbox.clone(), stem))) {
                    report.orphaned.push(self.quarantine(&f, &mailbox)?);
                }
            }
        }
        for (mailbox, id) in rows {
            if !self.message_path(&mailbox, &id).is_file() {
                report.missing_audio.push((mailbox, id));
            }
        }
        // Greetings: the same, but a greeting row without audio is useless: remove it
        // (the default greeting plays instead) and report it.
        let greetings: Vec<(String, String, String)> = {
            let db = self.db();
            let mut st = db.prepare("SELECT mailbox, kind, id FROM greetings")?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        let known: std::collections::HashSet<String> = greetings
            .iter()
            .map(|(m, k, id)| format!("{m}/{k}-{id}.wav"))
            .collect();
        for dir in subdirs(&self.root.join("greetings"))? {
            let mailbox = file_name(&dir);
            for f in files(&dir)? {
                if !known.contains(&format!("{mailbox}/{}", file_name(&f))) {
                    report.orphaned.push(self.quarantine(&f, &mailbox)?);
                }
            }
        }
        for (mailbox, kind, id) in greetings {
            if !self.greeting_path(&mailbox, &kind, &id).is_file() {
                self.db().execute(
                    "DELETE FROM greetings WHERE mailbox = ?1 AND kind = ?2 AND id = ?3",
                    params![mailbox, kind, id],
                )?;
                report.missing_greetings.push((mailbox, kind, id));
            }
        }
        Ok(report)
    }

    fn quarantine(&self, file: &Path, mailbox: &str) -> Result<PathBuf> {
        let dest = self
            .root
            .join("orphans")
            .join(format!("{mailbox}-{}", file_name(file)));
        fs::rename(file, &dest)?;
        sync_dir(&self.root.join("orphans"))?;
        Ok(dest)
    }

    /// Where a message's audio lives.
    pub fn message_path(&self, mailbox: &str, id: &str) -> PathBuf {
        self.root
            .join("messages")
            .join(mailbox)
            .join(format!("{id}.wav"))
    }

    /// Where a greeting's audio lives.
    pub fn greeting_path(&self, mailbox: &str, kind: &str, id: &str) -> PathBuf {
        self.root
            .join("greetings")
            .join(mailbox)
            .join(format!("{kind}-{id}.wav"))
    }

    /// Starts a recording in `tmp/`.
    pub fn begin_recording(&self, id: &str) -> io::Result<RecordingFile> {
        let path = self.root.join("tmp").join(format!("{id}.wav.part"));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        file.write_all(&wav_header(0))?;
        Ok(RecordingFile {
            file,
            path,
            samples: 0,
        })
    }

    /// Makes a recording a message: file fsynced and renamed into place, then
    /// the row committed. Durable when this returns `Ok`. When the mailbox has
    /// an email mode, an `email` outbox entry is committed in the same
    /// transaction (the mailer's queue) — unless this node forwards its
    /// messages to a cluster central ([`Store::set_forwarding`]): then a
    /// `forward` entry is queued instead, and the central does the email.
    /// Fails for an unknown mailbox (the recording is discarded).
    pub fn commit_message(&self, rec: RecordingFile, msg: &NewMessage) -> Result<Message> {
        if !Store::valid_name(&msg.mailbox) {
            rec.discard();
            return Err(StoreError::Invalid(format!(
                "`{}` is not a mailbox name",
                msg.mailbox
            )));
        }
        if !self.mailbox_exists(&msg.mailbox)? {
            rec.discard();
            return Err(StoreError::NotFound(format!("mailbox `{}`", msg.mailbox)));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let dir = self.root.join("messages").join(&msg.mailbox);
        fs::create_dir_all(&dir)?;
        sync_dir(&self.root.join("messages"))?;
        let duration_ms = rec.duration_ms();
        let dest = self.message_path(&msg.mailbox, &id);
        rec.finish_into(&dest)?;
        sync_dir(&dir)?;
        let m = Message {
            id,
            mailbox: msg.mailbox.clone(),
            caller: msg.caller.clone(),
            caller_name: msg.caller_name.clone(),
            received_ms: msg.received_ms,
            duration_ms,
            folder: Folder::New,
            folder_since_ms: msg.received_ms,
            priority: if msg.priority == "urgent" {
                "urgent".into()
            } else {
                "normal".into()
            },
            origin_node: msg.origin_node.clone(),
            call_id: msg.call_id.clone(),
            flow_node: msg.flow_node.clone(),
        };
        self.commit_row(&m, self.forwarding(), &dest)?;
        Ok(m)
    }

    /// The last step of storing a message whose file is durable at `dest`:
    /// its row (and a `forward` entry when `forward`) in one transaction, or
    /// no file either; then the change goes out (MWI).
    fn commit_row(&self, m: &Message, forward: bool, dest: &Path) -> Result<()> {
        let inserted = (|| -> Result<()> {
            let mut db = self.db();
            let tx = db.transaction()?;
            insert_message(&tx, m, forward)?;
            tx.commit()?;
            Ok(())
        })();
        if let Err(e) = inserted {
            // Not committed: the file must not stay without a row.
            let _ = fs::remove_file(dest);
            return Err(e);
        }
        self.changed(&m.mailbox);
        Ok(())
    }

    /// Cluster: whether every committed message is also queued for the
    /// central (a backup or distributed node). Set once at server start.
    pub fn set_forwarding(&self, on: bool) {
        self.forwarding
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn forwarding(&self) -> bool {
        self.forwarding.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Cluster central: stores a message forwarded by another node under its
    /// own id, by the same path as a local one (temporary file, fsync,
    /// rename, directory fsync, then the row, with its email entry, in one
    /// transaction). A message whose id is already stored is not stored
    /// again ([`Stored::Duplicate`]): deliveries are at-least-once, the
    /// store exactly-once. `m.id` and `m.mailbox` must be safe file names.
    pub fn store_forwarded(&self, m: &Message, wav: &[u8]) -> Result<Stored> {
        // One forwarded message at a time: two deliveries of the same id must
        // not both write its file.
        static INGEST: Mutex<()> = Mutex::new(());
        let _one = INGEST.lock().unwrap_or_else(|p| p.into_inner());
        if !Store::valid_name(&m.mailbox) || !Store::valid_name(&m.id) {
            return Err(StoreError::Invalid(format!(
                "`{}`/`{}` is not a mailbox/message name",
                m.mailbox, m.id
            )));
        }
        if let Some(old) = self.message(&m.id)? {
            return Ok(Stored::Duplicate(old));
        }
        if !self.mailbox_exists(&m.mailbox)? {
            return Err(StoreError::NotFound(format!("mailbox `{}`", m.mailbox)));
        }
        let tmp = self.root.join("tmp").join(format!("{}.wav.part", m.id));
        let dir = self.root.join("messages").join(&m.mailbox);
        fs::create_dir_all(&dir)?;
        sync_dir(&self.root.join("messages"))?;
        let dest = self.message_path(&m.mailbox, &m.id);
        let written = (|| -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            f.write_all(wav)?;
            f.sync_all()?;
            fs::rename(&tmp, &dest)?;
            sync_dir(&dir)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e.into());
        }
        let m = Message {
            folder: Folder::New,
            folder_since_ms: m.received_ms,
            ..m.clone()
        };
        self.commit_row(&m, false, &dest)?;
        Ok(Stored::New(m))
    }

    /// Cluster: the central acknowledged forward entry `entry` for message
    /// `message_id`. In one transaction the entry is done and the local
    /// message row goes (the central is the store of record); then its file.
    /// A crash before the commit leaves both, and the message is sent again
    /// (the central stores it once).
    pub fn finish_forward(&self, entry: i64, message_id: &str) -> Result<Option<Message>> {
        let m = self.message(message_id)?;
        {
            let mut db = self.db();
            let tx = db.transaction()?;
            tx.execute(
                "UPDATE outbox SET done_ms = ?2 WHERE id = ?1",
                params![entry, now_ms()],
            )?;
            tx.execute(
                "DELETE FROM outbox WHERE message_id = ?1 AND done_ms IS NULL",
                [message_id],
            )?;
            tx.execute("DELETE FROM messages WHERE id = ?1", [message_id])?;
            tx.commit()?;
        }
        if let Some(m) = &m {
            match fs::remove_file(self.message_path(&m.mailbox, &m.id)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            self.changed(&m.mailbox);
        }
        Ok(m)
    }

    /// Keeps a `record` action's recording as `recordings/<name>.wav`.
    pub fn commit_recording(&self, rec: RecordingFile, name: &str) -> io::Result<PathBuf> {
        let dest = self.root.join("recordings").join(format!("{name}.wav"));
        rec.finish_into(&dest)?;
        sync_dir(&self.root.join("recordings"))?;
        Ok(dest)
    }

    /// Keeps a recorded greeting as a pending (not yet active) one; returns its id.
    pub fn commit_greeting(&self, rec: RecordingFile, mailbox: &str, kind: &str) -> Result<String> {
        if !self.mailbox_exists(mailbox)? {
            rec.discard();
            return Err(StoreError::NotFound(format!("mailbox `{mailbox}`")));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let dir = self.root.join("greetings").join(mailbox);
        fs::create_dir_all(&dir)?;
        sync_dir(&self.root.join("greetings"))?;
        let duration_ms = rec.duration_ms();
        let dest = self.greeting_path(mailbox, kind, &id);
        rec.finish_into(&dest)?;
        sync_dir(&dir)?;
        let r = self.db().execute(
            "INSERT INTO greetings (mailbox, kind, id, active, duration_ms, recorded_ms) VALUES (?1, ?2, ?3, 0, ?4, ?5)",
            params![mailbox, kind, id, duration_ms as i64, now_ms()],
        );
        if let Err(e) = r {
            let _ = fs::remove_file(&dest);
            return Err(e.into());
        }
        Ok(id)
    }

    /// Makes greeting `id` (recorded earlier) the active one of its kind, or
    /// with `None` goes back to the default greeting. The replaced file is removed.
    pub fn activate_greeting(&self, mailbox: &str, kind: &str, id: Option<&str>) -> Result<()> {
        let old: Vec<String> = {
            let mut db = self.db();
            let tx = db.transaction()?;
            let old: Vec<String> = {
                let mut st = tx.prepare(
                    "SELECT id FROM greetings WHERE mailbox = ?1 AND kind = ?2 AND active = 1",
                )?;
                st.query_map([mailbox, kind], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?
            };
            if let Some(id) = id {
                let found = tx
                    .query_row(
                        "SELECT 1 FROM greetings WHERE mailbox = ?1 AND kind = ?2 AND id = ?3",
                        params![mailbox, kind, id],
                        |_| Ok(()),
                    )
                    .optional()?;
                if found.is_none() {
                    return Err(StoreError::NotFound(format!(
                        "greeting {id} of `{mailbox}`"
                    )));
                }
            } else if self_mailbox_missing(&tx, mailbox)? {
                return Err(StoreError::NotFound(format!("mailbox `{mailbox}`")));
            }
            tx.execute(
                "DELETE FROM greetings WHERE mailbox = ?1 AND kind = ?2 AND active = 1",
                params![mailbox, kind],
            )?;
            if let Some(id) = id {
                tx.execute(
                    "UPDATE greetings SET active = 1 WHERE mailbox = ?1 AND kind = ?2 AND id = ?3",
                    params![mailbox, kind, id],
                )?;
            }
            tx.commit()?;
            old
        };
        for o in old.iter().filter(|o| Some(o.as_str()) != id) {
            let _ = fs::remove_file(self.greeting_path(mailbox, kind, o));
        }
        Ok(())
    }

    /// The active greeting of a kind, if one is recorded.
    pub fn active_greeting(&self, mailbox: &str, kind: &str) -> Result<Option<Greeting>> {
        Ok(self
            .db()
            .query_row(
                "SELECT mailbox, kind, id, active, duration_ms, recorded_ms FROM greetings
                 WHERE mailbox = ?1 AND kind = ?2 AND active = 1",
                [mailbox, kind],
                greeting_row,
            )
            .optional()?)
    }

    /// Every greeting of a mailbox, active and pending.
    pub fn greetings(&self, mailbox: &str) -> Result<Vec<Greeting>> {
        let db = self.db();
        let mut st = db.prepare(
            "SELECT mailbox, kind, id, active, duration_ms, recorded_ms FROM greetings
             WHERE mailbox = ?1 ORDER BY kind, active DESC, recorded_ms",
        )?;
        Ok(st
            .query_map([mailbox], greeting_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// Removes greetings recorded but never activated before `before_ms`.
    pub fn remove_pending_greetings(&self, before_ms: i64) -> Result<usize> {
        let gone: Vec<(String, String, String)> = {
            let mut db = self.db();
            let tx = db.transaction()?;
            let gone: Vec<(String, String, String)> = {
                let mut st = tx.prepare(
                    "SELECT mailbox, kind, id FROM greetings WHERE active = 0 AND recorded_ms < ?1",
                )?;
                st.query_map([before_ms], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()?
            };
            tx.execute(
                "DELETE FROM greetings WHERE active = 0 AND recorded_ms < ?1",
                [before_ms],
            )?;
            tx.commit()?;
            gone
        };
        for (m, k, id) in &gone {
            let _ = fs::remove_file(self.greeting_path(m, k, id));
        }
        Ok(gone.len())
    }

    pub(crate) fn mailbox_exists(&self, mailbox: &str) -> Result<bool> {
        Ok(self
            .db()
            .query_row("SELECT 1 FROM mailboxes WHERE id = ?1", [mailbox], |_| {
                Ok(())
            })
            .optional()?
            .is_some())
    }

    /// A mailbox's messages, oldest first; only `folder`'s when given.
    pub fn messages(&self, mailbox: &str, folder: Option<Folder>) -> Result<Vec<Message>> {
        let db = self.db();
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE mailbox = ?1 AND (?2 IS NULL OR folder = ?2)
             ORDER BY received_ms, id"
        );
        let mut st = db.prepare(&sql)?;
        Ok(st
            .query_map(params![mailbox, folder.map(Folder::as_str)], message_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// One message by id.
    pub fn message(&self, id: &str) -> Result<Option<Message>> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1");
        Ok(self.db().query_row(&sql, [id], message_row).optional()?)
    }

    /// Messages per folder: (new, saved, deleted). What MWI must be derived from.
    pub fn counts(&self, mailbox: &str) -> Result<(u32, u32, u32)> {
        let db = self.db();
        let mut st =
            db.prepare("SELECT folder, COUNT(*) FROM messages WHERE mailbox = ?1 GROUP BY folder")?;
        let mut c = (0, 0, 0);
        for row in st.query_map([mailbox], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })? {
            let (f, n) = row?;
            match Folder::parse(&f) {
                Some(Folder::New) => c.0 = n as u32,
                Some(Folder::Saved) => c.1 = n as u32,
                Some(Folder::Deleted) => c.2 = n as u32,
                None => {}
            }
        }
        Ok(c)
    }

    /// Moves a message to `folder`; `Ok(false)` when it was already there.
    pub fn move_message(&self, id: &str, folder: Folder) -> Result<bool> {
        let (mailbox, changed) = {
            let db = self.db();
            let mailbox: Option<String> = db
                .query_row("SELECT mailbox FROM messages WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?;
            let Some(mailbox) = mailbox else {
                return Err(StoreError::NotFound(format!("message {id}")));
            };
            let n = db.execute(
                "UPDATE messages SET folder = ?2, folder_since_ms = ?3 WHERE id = ?1 AND folder != ?2",
                params![id, folder.as_str(), now_ms()],
            )?;
            (mailbox, n > 0)
        };
        if changed {
            self.changed(&mailbox);
        }
        Ok(changed)
    }

    /// Removes a message for good: the row is committed away first, then the
    /// file goes (a crash between leaves an orphan file that `recover` reports,
    /// never a row pointing at nothing).
    pub fn remove_message(&self, id: &str) -> Result<Message> {
        let m = self
            .message(id)?
            .ok_or_else(|| StoreError::NotFound(format!("message {id}")))?;
        {
            let mut db = self.db();
            let tx = db.transaction()?;
            tx.execute(
                "DELETE FROM outbox WHERE message_id = ?1 AND done_ms IS NULL",
                [id],
            )?;
            tx.execute("DELETE FROM messages WHERE id = ?1", [id])?;
            tx.commit()?;
        }
        match fs::remove_file(self.message_path(&m.mailbox, id)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        self.changed(&m.mailbox);
        Ok(m)
    }

    /// The audio of a message as 8 kHz samples.
    pub fn message_audio(&self, m: &Message) -> Result<crate::media::Samples> {
        let path = self.message_path(&m.mailbox, &m.id);
        let bytes = fs::read(&path)?;
        crate::media::load_prompt(&path.display().to_string(), &bytes)
            .map_err(|e| StoreError::Invalid(format!("{}: {e}", path.display())))
    }

    /// The audio of a greeting.
    pub fn greeting_audio(&self, g: &Greeting) -> Result<crate::media::Samples> {
        let path = self.greeting_path(&g.mailbox, &g.kind, &g.id);
        let bytes = fs::read(&path)?;
        crate::media::load_prompt(&path.display().to_string(), &bytes)
            .map_err(|e| StoreError::Invalid(format!("{}: {e}", path.display())))
    }

    // ---- user variables ----------------------------------------------------

    pub fn user_vars(&self) -> Result<Vec<(String, String)>> {
        let db = self.db();
        let mut st = db.prepare("SELECT name, value FROM user_vars ORDER BY name")?;
        Ok(st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?)
    }

    pub fn set_user_var(&self, name: &str, value: &str) -> Result<()> {
        self.db().execute(
            "INSERT INTO user_vars (name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            [name, value],
        )?;
        Ok(())
    }

    // ---- outbox ------------------------------------------------------------

    /// Queues work for a consumer (email, cluster); committed when this returns.
    pub fn outbox_push(
        &self,
        kind: &str,
        mailbox: Option<&str>,
        message_id: Option<&str>,
        payload: &str,
    ) -> Result<i64> {
        let db = self.db();
        let now = now_ms();
        db.execute(
            "INSERT INTO outbox (kind, mailbox, message_id, payload, created_ms, next_attempt_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![kind, mailbox, message_id, payload, now],
        )?;
        Ok(db.last_insert_rowid())
    }

    /// Pending entries of `kind` due at `now_ms`, oldest first.
    pub fn outbox_due(&self, kind: &str, now_ms: i64, limit: usize) -> Result<Vec<OutboxItem>> {
        let db = self.db();
        let mut st = db.prepare(
            "SELECT id, kind, mailbox, message_id, payload, created_ms, attempts, next_attempt_ms, last_error
             FROM outbox WHERE done_ms IS NULL AND kind = ?1 AND next_attempt_ms <= ?2 ORDER BY next_attempt_ms, id LIMIT ?3",
        )?;
        let rows = st.query_map(params![kind, now_ms, limit as i64], |r| {
            Ok(OutboxItem {
                id: r.get(0)?,
                kind: r.get(1)?,
                mailbox: r.get(2)?,
                message_id: r.get(3)?,
                payload: r.get(4)?,
                created_ms: r.get(5)?,
                attempts: r.get::<_, i64>(6)? as u32,
                next_attempt_ms: r.get(7)?,
                last_error: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Marks an entry done.
    pub fn outbox_done(&self, id: i64) -> Result<()> {
        self.db().execute(
            "UPDATE outbox SET done_ms = ?2 WHERE id = ?1",
            params![id, now_ms()],
        )?;
        Ok(())
    }

    /// Whether a message in a `forward` mailbox may go now: its voicemail
    /// email (mode `forward`) was accepted and no other outbox entry still
    /// needs it (a flow's `email attach` of it, say).
    pub fn forwarded_and_unreferenced(&self, message_id: &str) -> Result<bool> {
        let db = self.db();
        let forwarded: bool = db.query_row(
            "SELECT EXISTS(SELECT 1 FROM outbox WHERE kind = 'email' AND message_id = ?1
                 AND done_ms IS NOT NULL AND json_extract(payload, '$.mode') = 'forward')",
            [message_id],
            |r| r.get(0),
        )?;
        let pending: bool = db.query_row(
            "SELECT EXISTS(SELECT 1 FROM outbox WHERE message_id = ?1 AND done_ms IS NULL)",
            [message_id],
            |r| r.get(0),
        )?;
        Ok(forwarded && !pending)
    }

    /// Makes every pending entry of `kind` due now (the peer it waits for is
    /// back: no need to sit out the backoff). How many there are.
    pub fn outbox_due_now(&self, kind: &str) -> Result<usize> {
        let n = self.db().execute(
            "UPDATE outbox SET next_attempt_ms = ?2 WHERE done_ms IS NULL AND kind = ?1 AND next_attempt_ms > ?2",
            params![kind, now_ms()],
        )?;
        Ok(n)
    }

    /// Records a failed attempt and when to try again.
    pub fn outbox_retry(&self, id: i64, next_attempt_ms: i64, error: &str) -> Result<()> {
        self.db().execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = ?2, last_error = ?3 WHERE id = ?1",
            params![id, next_attempt_ms, error],
        )?;
        Ok(())
    }
}

/// Inserts a message row and what is queued with it: a `forward` entry on a
/// forwarding node, else the mailbox's `email` entry if it has an email mode.
fn insert_message(tx: &rusqlite::Transaction<'_>, m: &Message, forward: bool) -> Result<()> {
    tx.execute(
        "INSERT INTO messages (id, mailbox, caller, caller_name, received_ms, duration_ms, folder,
             folder_since_ms, priority, origin_node, call_id, flow_node)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'new', ?5, ?7, ?8, ?9, ?10)",
        params![
            m.id,
            m.mailbox,
            m.caller,
            m.caller_name,
            m.received_ms,
            m.duration_ms as i64,
            m.priority,
            m.origin_node,
            m.call_id,
            m.flow_node
        ],
    )?;
    if forward {
        tx.execute(
            "INSERT INTO outbox (kind, mailbox, message_id, payload, created_ms, next_attempt_ms)
             VALUES (?1, ?2, ?3, '{}', ?4, ?4)",
            params![FORWARD_KIND, m.mailbox, m.id, now_ms()],
        )?;
    } else {
        tx.execute(
            "INSERT INTO outbox (kind, mailbox, message_id, payload, created_ms, next_attempt_ms)
             SELECT 'email', id, ?2, json_object('email', email, 'mode', email_mode), ?3, ?3
             FROM mailboxes WHERE id = ?1 AND email_mode != 'off' AND email != ''",
            params![m.mailbox, m.id, now_ms()],
        )?;
    }
    Ok(())
}

fn self_mailbox_missing(tx: &rusqlite::Transaction<'_>, mailbox: &str) -> Result<bool> {
    Ok(tx
        .query_row("SELECT 1 FROM mailboxes WHERE id = ?1", [mailbox], |_| {
            Ok(())
        })
        .optional()?
        .is_none())
}

const MESSAGE_COLUMNS: &str = "id, mailbox, caller, caller_name, received_ms, duration_ms, folder, folder_since_ms, \
     priority, origin_node, call_id, flow_node";

fn message_row(r: &Row<'_>) -> rusqlite::Result<Message> {
    let folder: String = r.get(6)?;
    Ok(Message {
        id: r.get(0)?,
        mailbox: r.get(1)?,
        caller: r.get(2)?,
        caller_name: r.get(3)?,
        received_ms: r.get(4)?,
        duration_ms: r.get::<_, i64>(5)? as u64,
        folder: Folder::parse(&folder).unwrap_or(Folder::New),
        folder_since_ms: r.get(7)?,
        priority: r.get(8)?,
        origin_node: r.get(9)?,
        call_id: r.get(10)?,
        flow_node: r.get(11)?,
    })
}

fn greeting_row(r: &Row<'_>) -> rusqlite::Result<Greeting> {
    Ok(Greeting {
        mailbox: r.get(0)?,
        kind: r.get(1)?,
        id: r.get(2)?,
        active: r.get::<_, i64>(3)? == 1,
        duration_ms: r.get::<_, i64>(4)? as u64,
        recorded_ms: r.get(5)?,
    })
}

/// Brings the schema to [`SCHEMA_VERSION`], one transaction per migration.
fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew { found: version });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
        if i > 0 || version > 0 {
            tracing::info!(from = i, to = i + 1, "voicemail database migrated");
        }
    }
    Ok(())
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
        Some(
            pcm.chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect(),
        )
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

// ---- cluster settings sync ---------------------------------------------------

/// A mailbox's settings as the central holds them, PIN hash included; never
/// its lockout counters, which stay per node.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncedMailbox {
    pub id: String,
    pub name: String,
    pub pin_hash: Option<String>,
    pub email: String,
    pub email_mode: String,
    pub mwi: String,
    pub max_messages: Option<u32>,
    pub max_message_ms: Option<u64>,
}

impl fmt::Debug for SyncedMailbox {
    // Never print the hash.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncedMailbox")
            .field("id", &self.id)
            .field("has_pin", &self.pin_hash.is_some())
            .finish_non_exhaustive()
    }
}

/// An active greeting with its audio (the WAV file, byte for byte).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncedGreeting {
    pub mailbox: String,
    pub kind: String,
    pub id: String,
    pub duration_ms: u64,
    pub recorded_ms: i64,
    pub wav: Vec<u8>,
}

/// What the central sends to the other nodes: every mailbox's settings, its
/// active greetings, and the user variables.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    pub mailboxes: Vec<SyncedMailbox>,
    pub greetings: Vec<SyncedGreeting>,
    pub user_vars: Vec<(String, String)>,
}

/// What [`Store::apply_settings`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsApplied {
    pub mailboxes_created: usize,
    pub mailboxes_updated: usize,
    pub greetings_installed: usize,
    pub user_vars_set: usize,
}

const GREETING_KINDS: [&str; 4] = ["unavailable", "busy", "name", "temporary"];

impl Store {
    /// The settings a central sends: mailboxes in id order, their active
    /// greetings with audio, user variables by name.
    pub fn settings(&self) -> Result<Settings> {
        let (mailboxes, greetings, user_vars) = {
            let db = self.db();
            let mailboxes = db
                .prepare(
                    "SELECT id, name, pin_hash, email, email_mode, mwi, max_messages, max_message_ms
                     FROM mailboxes ORDER BY id",
                )?
                .query_map([], |r| {
                    Ok(SyncedMailbox {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        pin_hash: r.get(2)?,
                        email: r.get(3)?,
                        email_mode: r.get(4)?,
                        mwi: r.get(5)?,
                        max_messages: r.get::<_, Option<i64>>(6)?.map(|n| n as u32),
                        max_message_ms: r.get::<_, Option<i64>>(7)?.map(|n| n as u64),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let greetings = db
                .prepare(
                    "SELECT mailbox, kind, id, active, duration_ms, recorded_ms FROM greetings
                     WHERE active = 1 ORDER BY mailbox, kind",
                )?
                .query_map([], greeting_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let vars = db
                .prepare("SELECT name, value FROM user_vars ORDER BY name")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            (mailboxes, greetings, vars)
        };
        let mut synced = Vec::with_capacity(greetings.len());
        for g in greetings {
            let path = self.greeting_path(&g.mailbox, &g.kind, &g.id);
            let wav = fs::read(&path)
                .map_err(|e| StoreError::Invalid(format!("{}: {e}", path.display())))?;
            synced.push(SyncedGreeting {
                mailbox: g.mailbox,
                kind: g.kind,
                id: g.id,
                duration_ms: g.duration_ms,
                recorded_ms: g.recorded_ms,
                wav,
            });
        }
        Ok(Settings {
            mailboxes,
            greetings: synced,
            user_vars,
        })
    }

    /// Makes this node's settings what the central sent: mailboxes missing
    /// here are created, present ones get the central's settings (a changed
    /// PIN hash also clears this node's lockout, as `mailbox set --pin`
    /// does), each kind of active greeting becomes the central's (or none),
    /// user variables are set. Mailboxes only this node has are kept (they
    /// may hold messages not yet forwarded). Greeting audio is written first
    /// (temporary file, fsync, rename, directory fsync), then every row in
    /// one transaction; replaced greeting files are removed after it commits.
    pub fn apply_settings(&self, s: &Settings) -> Result<SettingsApplied> {
        for m in &s.mailboxes {
            if !Store::valid_name(&m.id) {
                return Err(StoreError::Invalid(format!(
                    "`{}` is not a mailbox id",
                    m.id
                )));
            }
            if !matches!(
                m.email_mode.as_str(),
                "off" | "notify" | "attach" | "forward"
            ) {
                return Err(StoreError::Invalid(format!(
                    "mailbox `{}`: unknown email mode `{}`",
                    m.id, m.email_mode
                )));
            }
        }
        for g in &s.greetings {
            if !Store::valid_name(&g.mailbox)
                || !Store::valid_name(&g.id)
                || !GREETING_KINDS.contains(&g.kind.as_str())
                || !s.mailboxes.iter().any(|m| m.id == g.mailbox)
            {
                return Err(StoreError::Invalid(format!(
                    "greeting `{}` `{}` of `{}` does not name a synced mailbox, kind and id",
                    g.id, g.kind, g.mailbox
                )));
            }
        }
        // Audio first: a row never points at a missing file.
        let mut written = Vec::new();
        for g in &s.greetings {
            let dest = self.greeting_path(&g.mailbox, &g.kind, &g.id);
            if dest.exists() {
                continue;
            }
            if let Err(e) = self.write_durably(&dest, &g.wav) {
                for p in &written {
                    let _ = fs::remove_file(p);
                }
                return Err(e.into());
            }
            written.push(dest);
        }
        let result = (|| -> Result<(SettingsApplied, Vec<PathBuf>)> {
            let mut report = SettingsApplied::default();
            let mut replaced = Vec::new();
            let mut db = self.db();
            let tx = db.transaction()?;
            for m in &s.mailboxes {
                let old: Option<Option<String>> = tx
                    .query_row(
                        "SELECT pin_hash FROM mailboxes WHERE id = ?1",
                        [&m.id],
                        |r| r.get(0),
                    )
                    .optional()?;
                match &old {
                    None => {
                        tx.execute(
                            "INSERT INTO mailboxes (id, created_ms) VALUES (?1, ?2)",
                            params![m.id, now_ms()],
                        )?;
                        report.mailboxes_created += 1;
                    }
                    Some(_) => report.mailboxes_updated += 1,
                }
                tx.execute(
                    "UPDATE mailboxes SET name = ?2, pin_hash = ?3, email = ?4, email_mode = ?5,
                     mwi = ?6, max_messages = ?7, max_message_ms = ?8 WHERE id = ?1",
                    params![
                        m.id,
                        m.name,
                        m.pin_hash,
                        m.email,
                        m.email_mode,
                        m.mwi,
                        m.max_messages.map(i64::from),
                        m.max_message_ms.map(|v| v as i64)
                    ],
                )?;
                if let Some(old) = old
                    && old != m.pin_hash
                {
                    tx.execute(
                        "UPDATE mailboxes SET failed_pins = 0, locked_until_ms = NULL WHERE id = ?1",
                        [&m.id],
                    )?;
                }
                for kind in GREETING_KINDS {
                    let want = s
                        .greetings
                        .iter()
                        .find(|g| g.mailbox == m.id && g.kind == kind);
                    let have: Option<String> = tx
                        .query_row(
                            "SELECT id FROM greetings WHERE mailbox = ?1 AND kind = ?2 AND active = 1",
                            [&m.id, kind],
                            |r| r.get(0),
                        )
                        .optional()?;
                    if have.as_deref() == want.map(|g| g.id.as_str()) {
                        continue;
                    }
                    if let Some(h) = have {
                        tx.execute(
                            "DELETE FROM greetings WHERE mailbox = ?1 AND kind = ?2 AND id = ?3",
                            params![m.id, kind, h],
                        )?;
                        replaced.push(self.greeting_path(&m.id, kind, &h));
                    }
                    if let Some(g) = want {
                        tx.execute(
                            "INSERT OR REPLACE INTO greetings (mailbox, kind, id, active, duration_ms, recorded_ms)
                             VALUES (?1, ?2, ?3, 1, ?4, ?5)",
                            params![g.mailbox, g.kind, g.id, g.duration_ms as i64, g.recorded_ms],
                        )?;
                        report.greetings_installed += 1;
                    }
                }
            }
            for (name, value) in &s.user_vars {
                let n = tx.execute(
                    "INSERT INTO user_vars (name, value) VALUES (?1, ?2)
                     ON CONFLICT(name) DO UPDATE SET value = excluded.value WHERE value <> excluded.value",
                    [name, value],
                )?;
                report.user_vars_set += n;
            }
            tx.commit()?;
            Ok((report, replaced))
        })();
        match result {
            Ok((report, replaced)) => {
                for p in replaced {
                    let _ = fs::remove_file(p);
                }
                for m in &s.mailboxes {
                    self.changed(&m.id);
                }
                Ok(report)
            }
            Err(e) => {
                for p in &written {
                    let _ = fs::remove_file(p);
                }
                Err(e)
            }
        }
    }

    /// Pending outbox entries by kind (`email`, `forward`).
    pub fn outbox_depth(&self) -> Result<Vec<(String, u64)>> {
        let db = self.db();
        let mut st = db.prepare(
            "SELECT kind, COUNT(*) FROM outbox WHERE done_ms IS NULL GROUP BY kind ORDER BY kind",
        )?;
        Ok(st
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// Writes a file under the store as messages are: a temporary file in
    /// `tmp/`, fsync, rename into place, directory fsync.
    fn write_durably(&self, dest: &Path, bytes: &[u8]) -> io::Result<()> {
        let dir = dest
            .parent()
            .ok_or_else(|| io::Error::other("no directory"))?;
        fs::create_dir_all(dir)?;
        if let Some(up) = dir.parent() {
            sync_dir(up)?;
        }
        let tmp = self
            .root
            .join("tmp")
            .join(format!("sync-{}.part", uuid::Uuid::new_v4()));
        let r = (|| {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, dest)?;
            sync_dir(dir)
        })();
        if r.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        r
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn subdirs(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    Ok(v)
}

fn files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    Ok(v)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vflow-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn with_mailbox(root: &Path, id: &str) -> Store {
        let store = Store::open(root).unwrap();
        store
            .db()
            .execute(
                "INSERT INTO mailboxes (id, created_ms) VALUES (?1, 0)",
                [id],
            )
            .unwrap();
        store
    }

    fn new_message(mailbox: &str) -> NewMessage {
        NewMessage {
            mailbox: mailbox.into(),
            caller: "300".into(),
            caller_name: String::new(),
            received_ms: 1_790_000_000_000,
            priority: "normal".into(),
            origin_node: "vflow".into(),
            call_id: "c".into(),
            flow_node: "leave.take".into(),
        }
    }

    #[test]
    fn migrations_create_every_table_and_reopen_is_idempotent() {
        let root = temp("schema");
        let store = Store::open(&root).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let tables: Vec<String> = {
            let db = store.db();
            let mut st = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").unwrap();
            st.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        assert_eq!(
            tables,
            ["greetings", "mailboxes", "messages", "outbox", "user_vars"]
        );
        drop(store);
        let store = Store::open(&root).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let root = temp("newer");
        let store = Store::open(&root).unwrap();
        store
            .db()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(store);
        match Store::open(&root) {
            Err(StoreError::TooNew { found }) => assert_eq!(found, SCHEMA_VERSION + 1),
            other => panic!("expected TooNew, got {other:?}"),
        }
    }

    #[test]
    fn the_schema_rejects_bad_folders_and_unknown_mailboxes() {
        let root = temp("checks");
        let store = with_mailbox(&root, "201");
        let db = store.db();
        let bad_folder = db.execute(
            "INSERT INTO messages VALUES ('x', '201', '', '', 0, 0, 'inbox', 0, 'normal', '', '', '')",
            [],
        );
        assert!(bad_folder.is_err());
        let no_box = db.execute(
            "INSERT INTO messages VALUES ('y', '999', '', '', 0, 0, 'new', 0, 'normal', '', '', '')",
            [],
        );
        assert!(no_box.is_err(), "foreign keys are on");
    }

    #[test]
    fn a_committed_message_is_a_valid_wav_with_a_row() {
        let root = temp("commit");
        let store = with_mailbox(&root, "201");
        let mut changes = store.subscribe();
        let mut rec = store.begin_recording("m1").unwrap();
        let pcm: Vec<u8> = (0..8000i16).flat_map(|s| (s % 100).to_le_bytes()).collect();
        rec.append(&pcm).unwrap();
        assert_eq!(rec.duration_ms(), 1000);
        let m = store.commit_message(rec, &new_message("201")).unwrap();
        assert_eq!(m.duration_ms, 1000);
        assert_eq!(m.folder, Folder::New);
        let wav = store.message_path("201", &m.id);
        let reader = hound::WavReader::open(&wav).unwrap();
        assert_eq!(reader.spec().sample_rate, 8000);
        assert_eq!(reader.duration(), 8000);
        assert_eq!(store.messages("201", None).unwrap(), vec![m.clone()]);
        assert_eq!(store.counts("201").unwrap(), (1, 0, 0));
        assert!(
            fs::read_dir(root.join("tmp")).unwrap().next().is_none(),
            "nothing left in tmp"
        );
        assert_eq!(changes.try_recv().unwrap(), "201");
        assert_eq!(store.message_audio(&m).unwrap().len(), 8000);
    }

    #[test]
    fn a_message_for_an_unknown_mailbox_is_refused_and_leaves_nothing() {
        let root = temp("unknown");
        let store = Store::open(&root).unwrap();
        let mut rec = store.begin_recording("m1").unwrap();
        rec.append(&[0, 1, 2, 3]).unwrap();
        assert!(matches!(
            store.commit_message(rec, &new_message("404")),
            Err(StoreError::NotFound(_))
        ));
        assert!(fs::read_dir(root.join("tmp")).unwrap().next().is_none());
        assert!(!root.join("messages/404").exists());
    }

    #[test]
    fn email_mode_queues_an_outbox_entry_in_the_same_commit() {
        let root = temp("outbox");
        let store = with_mailbox(&root, "201");
        store
            .db()
            .execute("UPDATE mailboxes SET email = 'a@example.com', email_mode = 'attach' WHERE id = '201'", [])
            .unwrap();
        let mut rec = store.begin_recording("m1").unwrap();
        rec.append(&[0, 1]).unwrap();
        let m = store.commit_message(rec, &new_message("201")).unwrap();
        let due = store.outbox_due("email", now_ms() + 1, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].message_id.as_deref(), Some(m.id.as_str()));
        assert!(
            due[0].payload.contains("attach") && due[0].payload.contains("a@example.com"),
            "{}",
            due[0].payload
        );
        store
            .outbox_retry(due[0].id, now_ms() + 60_000, "relay down")
            .unwrap();
        assert!(store.outbox_due("email", now_ms(), 10).unwrap().is_empty());
        let later = store.outbox_due("email", now_ms() + 61_000, 10).unwrap();
        assert_eq!(
            (later[0].attempts, later[0].last_error.as_deref()),
            (1, Some("relay down"))
        );
        store.outbox_done(due[0].id).unwrap();
        assert!(store.outbox_due("email", i64::MAX, 10).unwrap().is_empty());
    }

    #[test]
    fn a_forwarding_node_queues_a_forward_entry_instead_of_the_email() {
        let root = temp("forwarding");
        let store = with_mailbox(&root, "201");
        store
            .db()
            .execute("UPDATE mailboxes SET email = 'a@example.com', email_mode = 'attach' WHERE id = '201'", [])
            .unwrap();
        store.set_forwarding(true);
        let mut rec = store.begin_recording("m1").unwrap();
        rec.append(&[0, 1]).unwrap();
        let m = store.commit_message(rec, &new_message("201")).unwrap();
        assert!(store.outbox_due("email", i64::MAX, 10).unwrap().is_empty());
        let due = store.outbox_due(FORWARD_KIND, i64::MAX, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].message_id.as_deref(), Some(m.id.as_str()));
        // The central took it: entry done and local copy gone, together.
        let gone = store.finish_forward(due[0].id, &m.id).unwrap().unwrap();
        assert_eq!(gone.id, m.id);
        assert!(store.message(&m.id).unwrap().is_none());
        assert!(!store.message_path("201", &m.id).exists());
        assert!(
            store
                .outbox_due(FORWARD_KIND, i64::MAX, 10)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn outbox_entries_can_be_made_due_now() {
        let root = temp("due-now");
        let store = Store::open(&root).unwrap();
        let a = store
            .outbox_push(FORWARD_KIND, None, Some("a"), "{}")
            .unwrap();
        let b = store
            .outbox_push(FORWARD_KIND, None, Some("b"), "{}")
            .unwrap();
        let e = store.outbox_push("email", None, Some("c"), "{}").unwrap();
        let later = now_ms() + 3_600_000;
        for id in [a, b, e] {
            store.outbox_retry(id, later, "down").unwrap();
        }
        store.outbox_done(b).unwrap();
        assert!(
            store
                .outbox_due(FORWARD_KIND, now_ms(), 10)
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.outbox_due_now(FORWARD_KIND).unwrap(), 1);
        let due = store.outbox_due(FORWARD_KIND, now_ms(), 10).unwrap();
        assert_eq!(due.iter().map(|i| i.id).collect::<Vec<_>>(), vec![a]);
        assert_eq!(due[0].attempts, 1, "the attempt count stays");
        assert!(
            store.outbox_due("email", now_ms(), 10).unwrap().is_empty(),
            "other kinds wait"
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_forwarded_message_is_stored_once_under_its_own_id() {
        let root = temp("forwarded");
        let store = with_mailbox(&root, "201");
        store
            .db()
            .execute("UPDATE mailboxes SET email = 'a@example.com', email_mode = 'notify' WHERE id = '201'", [])
            .unwrap();
        let mut changes = store.subscribe();
        let wav = crate::media::pcm16_wav(&[1, 2, 3, 4]);
        let m = Message {
            id: "0b7c6f0e-58b4-4a53-9d0e-3c1a2b4d5e6f".into(),
            mailbox: "201".into(),
            caller: "300".into(),
            caller_name: String::new(),
            received_ms: 1_790_000_000_000,
            duration_ms: 0,
            folder: Folder::Saved,
            folder_since_ms: 0,
            priority: "normal".into(),
            origin_node: "site-1".into(),
            call_id: "c".into(),
            flow_node: "leave.take".into(),
        };
        let Stored::New(stored) = store.store_forwarded(&m, &wav).unwrap() else {
            panic!("stored the first time")
        };
        assert_eq!(stored.folder, Folder::New);
        assert_eq!(changes.try_recv().unwrap(), "201");
        assert_eq!(fs::read(store.message_path("201", &m.id)).unwrap(), wav);
        assert_eq!(
            store.outbox_due("email", i64::MAX, 10).unwrap().len(),
            1,
            "the central does the email"
        );
        assert!(matches!(
            store.store_forwarded(&m, &wav).unwrap(),
            Stored::Duplicate(_)
        ));
        assert_eq!(store.messages("201", None).unwrap().len(), 1);
        assert_eq!(store.outbox_due("email", i64::MAX, 10).unwrap().len(), 1);
        assert!(changes.try_recv().is_err(), "a duplicate changes nothing");
        let unknown = Message {
            id: "1b7c6f0e-58b4-4a53-9d0e-3c1a2b4d5e6f".into(),
            mailbox: "999".into(),
            ..m.clone()
        };
        assert!(matches!(
            store.store_forwarded(&unknown, &wav),
            Err(StoreError::NotFound(_))
        ));
        let evil = Message {
            id: "../x".into(),
            ..m
        };
        assert!(matches!(
            store.store_forwarded(&evil, &wav),
            Err(StoreError::Invalid(_))
        ));
        assert!(fs::read_dir(root.join("tmp")).unwrap().next().is_none());
    }

    #[test]
    fn folders_move_and_remove_takes_row_and_file() {
        let root = temp("folders");
        let store = with_mailbox(&root, "201");
        let mut rec = store.begin_recording("m1").unwrap();
        rec.append(&[0, 1]).unwrap();
        let m = store.commit_message(rec, &new_message("201")).unwrap();
        assert!(store.move_message(&m.id, Folder::Saved).unwrap());
        assert!(
            !store.move_message(&m.id, Folder::Saved).unwrap(),
            "already there"
        );
        assert_eq!(store.counts("201").unwrap(), (0, 1, 0));
        assert!(store.move_message(&m.id, Folder::Deleted).unwrap());
        assert_eq!(
            store.messages("201", Some(Folder::Deleted)).unwrap().len(),
            1
        );
        store.remove_message(&m.id).unwrap();
        assert!(!store.message_path("201", &m.id).exists());
        assert_eq!(store.counts("201").unwrap(), (0, 0, 0));
        assert!(matches!(
            store.move_message(&m.id, Folder::Saved),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn recover_cleans_tmp_quarantines_orphans_and_reports_missing_audio() {
        let root = temp("recover");
        let store = with_mailbox(&root, "201");
        // A partial recording, as if the process died while recording.
        let mut rec = store.begin_recording("gone").unwrap();
        rec.append(&[0, 0, 1, 0]).unwrap();
        drop(rec);
        // A file renamed into place whose row never committed.
        fs::create_dir_all(root.join("messages/201")).unwrap();
        fs::write(
            root.join("messages/201/abc.wav"),
            crate::media::pcm16_wav(&[1, 2, 3]),
        )
        .unwrap();
        // A row whose file went missing.
        let mut rec = store.begin_recording("m").unwrap();
        rec.append(&[0, 1]).unwrap();
        let kept = store.commit_message(rec, &new_message("201")).unwrap();
        let mut rec = store.begin_recording("m2").unwrap();
        rec.append(&[0, 1]).unwrap();
        let lost = store.commit_message(rec, &new_message("201")).unwrap();
        fs::remove_file(store.message_path("201", &lost.id)).unwrap();
        drop(store);

        let store = Store::open(&root).unwrap();
        let r = store.recover().unwrap();
        assert_eq!(r.partial_removed, 1);
        assert_eq!(r.orphaned, vec![root.join("orphans/201-abc.wav")]);
        assert!(r.orphaned[0].is_file(), "kept, not deleted");
        assert_eq!(r.missing_audio, vec![("201".to_string(), lost.id.clone())]);
        assert!(store.message_path("201", &kept.id).is_file());
        assert_eq!(
            store.messages("201", None).unwrap().len(),
            2,
            "the row stays, reported"
        );
        // A second recovery finds nothing new to move.
        let r = store.recover().unwrap();
        assert_eq!((r.partial_removed, r.orphaned.len()), (0, 0));
    }

    #[test]
    fn settings_from_the_central_apply_in_one_go_and_keep_local_lockouts() {
        use crate::voicemail::{self, MailboxUpdate};
        let central = with_mailbox(&temp("sync-central"), "201");
        voicemail::update_mailbox(
            &central,
            "201",
            &MailboxUpdate {
                name: Some("Alice".into()),
                pin_hash: Some(Some(crate::voicemail::pin::hash_pin("4826").unwrap())),
                email_mode: Some(voicemail::EmailMode::Notify),
                email: Some("alice@example.org".into()),
                ..Default::default()
            },
        )
        .unwrap();
        voicemail::create_mailbox(&central, "202", &MailboxUpdate::default()).unwrap();
        let mut rec = central.begin_recording("g1").unwrap();
        rec.append(&[0, 1, 0, 1]).unwrap();
        let g1 = central.commit_greeting(rec, "201", "unavailable").unwrap();
        central
            .activate_greeting("201", "unavailable", Some(&g1))
            .unwrap();
        central.set_user_var("night", "1").unwrap();
        let settings = central.settings().unwrap();
        assert_eq!(settings.mailboxes.len(), 2);
        assert_eq!(settings.greetings.len(), 1);

        // The node has 201 (locked out after wrong PINs) and a mailbox of its own.
        let node = with_mailbox(&temp("sync-node"), "201");
        voicemail::create_mailbox(&node, "999", &MailboxUpdate::default()).unwrap();
        node.db()
            .execute(
                "UPDATE mailboxes SET failed_pins = 3, locked_until_ms = 99999999999999 WHERE id = '201'",
                [],
            )
            .unwrap();
        let first = node.apply_settings(&settings).unwrap();
        assert_eq!(
            (
                first.mailboxes_created,
                first.mailboxes_updated,
                first.greetings_installed,
                first.user_vars_set
            ),
            (1, 1, 1, 1)
        );
        let m = voicemail::mailbox(&node, "201").unwrap().unwrap();
        assert_eq!(
            (m.name.as_str(), m.email.as_str()),
            ("Alice", "alice@example.org")
        );
        assert!(m.has_pin());
        assert_eq!(m.failed_pins, 0, "a new PIN hash clears the node's lockout");
        assert!(voicemail::mailbox(&node, "202").unwrap().is_some());
        assert!(
            voicemail::mailbox(&node, "999").unwrap().is_some(),
            "local mailboxes stay"
        );
        let g = node.active_greeting("201", "unavailable").unwrap().unwrap();
        assert_eq!(g.id, g1);
        assert_eq!(
            fs::read(node.greeting_path("201", "unavailable", &g1)).unwrap(),
            fs::read(central.greeting_path("201", "unavailable", &g1)).unwrap()
        );
        assert_eq!(
            node.user_vars().unwrap(),
            [("night".to_string(), "1".to_string())]
        );

        // Lockouts are per node: the same settings again leave a new lockout alone.
        node.db()
            .execute("UPDATE mailboxes SET failed_pins = 2 WHERE id = '201'", [])
            .unwrap();
        let again = node.apply_settings(&settings).unwrap();
        assert_eq!(
            (
                again.mailboxes_created,
                again.greetings_installed,
                again.user_vars_set
            ),
            (0, 0, 0)
        );
        assert_eq!(
            voicemail::mailbox(&node, "201")
                .unwrap()
                .unwrap()
                .failed_pins,
            2
        );

        // The central's greeting goes back to the default: so does the node's, file and all.
        central
            .activate_greeting("201", "unavailable", None)
            .unwrap();
        node.apply_settings(&central.settings().unwrap()).unwrap();
        assert_eq!(node.active_greeting("201", "unavailable").unwrap(), None);
        assert!(!node.greeting_path("201", "unavailable", &g1).exists());

        // Bad input changes nothing.
        let mut bad = central.settings().unwrap();
        bad.mailboxes[0].id = "../etc".into();
        assert!(node.apply_settings(&bad).is_err());
        let mut bad = central.settings().unwrap();
        bad.mailboxes[1].email_mode = "sometimes".into();
        assert!(node.apply_settings(&bad).is_err());
    }

    #[test]
    fn greetings_pending_then_active_then_default() {
        let root = temp("greetings");
        let store = with_mailbox(&root, "201");
        let mut rec = store.begin_recording("g1").unwrap();
        rec.append(&[0, 1, 0, 1]).unwrap();
        let g1 = store.commit_greeting(rec, "201", "unavailable").unwrap();
        assert_eq!(
            store.active_greeting("201", "unavailable").unwrap(),
            None,
            "pending until activated"
        );
        store
            .activate_greeting("201", "unavailable", Some(&g1))
            .unwrap();
        let active = store
            .active_greeting("201", "unavailable")
            .unwrap()
            .unwrap();
        assert_eq!(active.id, g1);
        assert_eq!(store.greeting_audio(&active).unwrap().len(), 2);
        let mut rec = store.begin_recording("g2").unwrap();
        rec.append(&[0, 1]).unwrap();
        let g2 = store.commit_greeting(rec, "201", "unavailable").unwrap();
        store
            .activate_greeting("201", "unavailable", Some(&g2))
            .unwrap();
        assert!(
            !store.greeting_path("201", "unavailable", &g1).exists(),
            "the replaced file is removed"
        );
        store.activate_greeting("201", "unavailable", None).unwrap();
        assert_eq!(store.active_greeting("201", "unavailable").unwrap(), None);
        assert!(!store.greeting_path("201", "unavailable", &g2).exists());
        assert!(
            store
                .activate_greeting("201", "busy", Some("nope"))
                .is_err()
        );
        assert!(store.activate_greeting("999", "busy", None).is_err());
    }

    #[test]
    fn user_vars_persist() {
        let root = temp("vars");
        let store = Store::open(&root).unwrap();
        store.set_user_var("count", "1").unwrap();
        store.set_user_var("count", "2").unwrap();
        drop(store);
        let store = Store::open(&root).unwrap();
        assert_eq!(
            store.user_vars().unwrap(),
            vec![("count".to_string(), "2".to_string())]
        );
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
