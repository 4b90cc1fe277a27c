//! Mailboxes on top of the [`Store`]: administration (`vflow mailbox`, the
//! YAML seed), the per-call listing that message indices refer to, PINs and
//! lockout ([`pin`]), housekeeping ([`housekeeping`]), message-waiting
//! NOTIFYs ([`mwi`]) and voicemail-to-email ([`mail`]).
//!
//! Conventions the call side relies on:
//! - A call sees a mailbox's folders as they were when it first opened it
//!   ([`Listing`]); `message_count` and every index refer to that listing for
//!   the whole call, whatever happens in the store meanwhile. A message
//!   deleted (by this call or another) is skipped by `play_message`
//!   (`failure`), and `save_message` brings it back.
//! - A new message becomes saved as soon as its audio starts playing
//!   (Asterisk marks it "old" the same way): the store and the lamp are right
//!   even when the caller hangs up mid-message, and the call's listing still
//!   has it under `new` at the same index.

pub mod housekeeping;
pub mod mail;
pub mod mwi;
pub mod pin;

use crate::config::{MailboxSeed, VoicemailConfig};
use crate::store::{Folder, Result, Store, StoreError, now_ms};
use rusqlite::{OptionalExtension, params};
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// What happens to a new message by email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailMode {
    Off,
    /// A notice without audio.
    Notify,
    /// The WAV attached; the message stays.
    Attach,
    /// The WAV attached, then the message deleted here once the relay took it.
    Forward,
}

impl EmailMode {
    pub fn parse(s: &str) -> Option<EmailMode> {
        match s {
            "off" => Some(EmailMode::Off),
            "notify" => Some(EmailMode::Notify),
            "attach" => Some(EmailMode::Attach),
            "forward" => Some(EmailMode::Forward),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EmailMode::Off => "off",
            EmailMode::Notify => "notify",
            EmailMode::Attach => "attach",
            EmailMode::Forward => "forward",
        }
    }
}

impl fmt::Display for EmailMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mailbox as stored. The PIN hash never leaves this module except to be verified.
#[derive(Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub id: String,
    pub name: String,
    pub(crate) pin_hash: Option<String>,
    pub email: String,
    pub email_mode: EmailMode,
    /// Where unsolicited MWI NOTIFYs go (`sip:201@192.0.2.5:5060`); empty: nowhere.
    pub mwi: String,
    /// `None`: the configured default.
    pub max_messages: Option<u32>,
    pub max_message_ms: Option<u64>,
    pub failed_pins: u32,
    pub locked_until_ms: Option<i64>,
    pub created_ms: i64,
}

impl fmt::Debug for Mailbox {
    // Never print the hash.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailbox")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("has_pin", &self.has_pin())
            .field("email", &self.email)
            .field("email_mode", &self.email_mode)
            .field("mwi", &self.mwi)
            .field("max_messages", &self.max_messages)
            .field("max_message_ms", &self.max_message_ms)
            .field("failed_pins", &self.failed_pins)
            .field("locked_until_ms", &self.locked_until_ms)
            .finish()
    }
}

impl Mailbox {
    pub fn has_pin(&self) -> bool {
        self.pin_hash.is_some()
    }

    /// Whether the lockout is in force at `now_ms`.
    pub fn locked_at(&self, now_ms: i64) -> bool {
        self.locked_until_ms.is_some_and(|t| t > now_ms)
    }

    /// The message limit in force.
    pub fn message_limit(&self, cfg: &VoicemailConfig) -> u32 {
        self.max_messages.unwrap_or(cfg.limits.max_messages)
    }

    /// The longest message in force, in ms.
    pub fn length_limit_ms(&self, cfg: &VoicemailConfig) -> u64 {
        self.max_message_ms
            .unwrap_or(cfg.limits.max_message_length.as_millis() as u64)
    }
}

/// Fields to set on a mailbox; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxUpdate {
    pub name: Option<String>,
    /// `Some(None)` removes the PIN (no remote access).
    pub pin_hash: Option<Option<String>>,
    pub email: Option<String>,
    pub email_mode: Option<EmailMode>,
    /// The MWI target; `Some("")` removes it.
    pub mwi: Option<String>,
    /// `Some(None)` goes back to the configured default.
    pub max_messages: Option<Option<u32>>,
    pub max_message_ms: Option<Option<u64>>,
    /// Clears the failure count and any lockout.
    pub unlock: bool,
}

const MAILBOX_COLUMNS: &str = "id, name, pin_hash, email, email_mode, max_messages, max_message_ms, failed_pins, locked_until_ms, created_ms, mwi";

fn mailbox_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Mailbox> {
    let mode: String = r.get(4)?;
    Ok(Mailbox {
        id: r.get(0)?,
        name: r.get(1)?,
        pin_hash: r.get(2)?,
        email: r.get(3)?,
        email_mode: EmailMode::parse(&mode).unwrap_or(EmailMode::Off),
        max_messages: r.get::<_, Option<i64>>(5)?.map(|n| n as u32),
        max_message_ms: r.get::<_, Option<i64>>(6)?.map(|n| n as u64),
        failed_pins: r.get::<_, i64>(7)? as u32,
        locked_until_ms: r.get(8)?,
        created_ms: r.get(9)?,
        mwi: r.get(10)?,
    })
}

/// One mailbox, if it exists.
pub fn mailbox(store: &Store, id: &str) -> Result<Option<Mailbox>> {
    let sql = format!("SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = ?1");
    Ok(store.db().query_row(&sql, [id], mailbox_row).optional()?)
}

/// Every mailbox, by id.
pub fn mailboxes(store: &Store) -> Result<Vec<Mailbox>> {
    let db = store.db();
    let mut st = db.prepare(&format!(
        "SELECT {MAILBOX_COLUMNS} FROM mailboxes ORDER BY id"
    ))?;
    Ok(st
        .query_map([], mailbox_row)?
        .collect::<rusqlite::Result<_>>()?)
}

/// Creates a mailbox; fails if the id is taken or not a valid name.
pub fn create_mailbox(store: &Store, id: &str, update: &MailboxUpdate) -> Result<Mailbox> {
    if !Store::valid_name(id) {
        return Err(StoreError::Invalid(format!(
            "`{id}` is not a mailbox id (letters, digits, `-_.+`, at most 64, not starting with `.`)"
        )));
    }
    {
        let db = store.db();
        let r = db.execute(
            "INSERT INTO mailboxes (id, created_ms) VALUES (?1, ?2)",
            params![id, now_ms()],
        );
        match r {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Err(StoreError::Invalid(format!(
                    "mailbox `{id}` exists already"
                )));
            }
            Err(e) => return Err(e.into()),
        }
    }
    update_mailbox(store, id, update)
}

/// Changes a mailbox.
pub fn update_mailbox(store: &Store, id: &str, u: &MailboxUpdate) -> Result<Mailbox> {
    {
        let mut db = store.db();
        let tx = db.transaction()?;
        let exists = tx
            .query_row("SELECT 1 FROM mailboxes WHERE id = ?1", [id], |_| Ok(()))
            .optional()?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("mailbox `{id}`")));
        }
        if let Some(name) = &u.name {
            tx.execute(
                "UPDATE mailboxes SET name = ?2 WHERE id = ?1",
                params![id, name],
            )?;
        }
        if let Some(h) = &u.pin_hash {
            // A new PIN also clears the lockout: the administrator has spoken.
            tx.execute(
                "UPDATE mailboxes SET pin_hash = ?2, failed_pins = 0, locked_until_ms = NULL WHERE id = ?1",
                params![id, h],
            )?;
        }
        if let Some(email) = &u.email {
            tx.execute(
                "UPDATE mailboxes SET email = ?2 WHERE id = ?1",
                params![id, email],
            )?;
        }
        if let Some(mode) = u.email_mode {
            tx.execute(
                "UPDATE mailboxes SET email_mode = ?2 WHERE id = ?1",
                params![id, mode.as_str()],
            )?;
        }
        if let Some(mwi) = &u.mwi {
            tx.execute(
                "UPDATE mailboxes SET mwi = ?2 WHERE id = ?1",
                params![id, mwi],
            )?;
        }
        if let Some(n) = u.max_messages {
            tx.execute(
                "UPDATE mailboxes SET max_messages = ?2 WHERE id = ?1",
                params![id, n.map(i64::from)],
            )?;
        }
        if let Some(ms) = u.max_message_ms {
            tx.execute(
                "UPDATE mailboxes SET max_message_ms = ?2 WHERE id = ?1",
                params![id, ms.map(|v| v as i64)],
            )?;
        }
        if u.unlock {
            tx.execute(
                "UPDATE mailboxes SET failed_pins = 0, locked_until_ms = NULL WHERE id = ?1",
                [id],
            )?;
        }
        tx.commit()?;
    }
    mailbox(store, id)?.ok_or_else(|| StoreError::NotFound(format!("mailbox `{id}`")))
}

/// Deletes a mailbox with its messages and greetings (rows first, then files).
/// Returns the number of messages removed.
pub fn delete_mailbox(store: &Store, id: &str) -> Result<usize> {
    let messages = {
        let mut db = store.db();
        let tx = db.transaction()?;
        let exists = tx
            .query_row("SELECT 1 FROM mailboxes WHERE id = ?1", [id], |_| Ok(()))
            .optional()?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("mailbox `{id}`")));
        }
        tx.execute(
            "DELETE FROM outbox WHERE mailbox = ?1 AND done_ms IS NULL",
            [id],
        )?;
        let n = tx.execute("DELETE FROM messages WHERE mailbox = ?1", [id])?;
        tx.execute("DELETE FROM greetings WHERE mailbox = ?1", [id])?;
        tx.execute("DELETE FROM mailboxes WHERE id = ?1", [id])?;
        tx.commit()?;
        n
    };
    for dir in ["messages", "greetings"] {
        let path = store.root().join(dir).join(id);
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    store.changed(id);
    Ok(messages)
}

/// Creates the configured mailboxes that do not exist yet. An existing
/// mailbox keeps its PIN (it may have been changed by phone); its name, email
/// and limits follow the YAML where the YAML sets them. Returns the ids created.
pub fn seed(store: &Store, cfg: &VoicemailConfig) -> Result<Vec<String>> {
    let mut created = Vec::new();
    for s in &cfg.mailboxes {
        let mut u = seed_update(s)?;
        if mailbox(store, &s.id)?.is_some() {
            u.pin_hash = None;
            update_mailbox(store, &s.id, &u)?;
        } else {
            create_mailbox(store, &s.id, &u)?;
            created.push(s.id.clone());
        }
    }
    Ok(created)
}

fn seed_update(s: &MailboxSeed) -> Result<MailboxUpdate> {
    let pin_hash = match (&s.pin, &s.pin_hash) {
        (Some(pin), _) => Some(Some(pin::hash_pin(pin)?)),
        (None, Some(h)) => Some(Some(h.clone())),
        (None, None) => None,
    };
    Ok(MailboxUpdate {
        name: (!s.name.is_empty()).then(|| s.name.clone()),
        pin_hash,
        email: (!s.email.is_empty()).then(|| s.email.clone()),
        email_mode: s.email_mode.as_deref().and_then(EmailMode::parse),
        mwi: (!s.mwi.is_empty()).then(|| s.mwi.clone()),
        max_messages: s.max_messages.map(Some),
        max_message_ms: s.max_message_length.map(|d| Some(d.as_millis() as u64)),
        unlock: false,
    })
}

/// Opens the store for the server: schema, recovery (reported in the log),
/// seeded mailboxes. `Err` is a message for the operator.
pub fn open_for_server(
    data_dir: &Path,
    cfg: &VoicemailConfig,
) -> std::result::Result<Store, String> {
    let store = Store::open(data_dir)
        .map_err(|e| format!("cannot open the store in `{}`: {e}", data_dir.display()))?;
    let r = store
        .recover()
        .map_err(|e| format!("cannot check the store in `{}`: {e}", data_dir.display()))?;
    if r.partial_removed > 0 {
        tracing::warn!(
            removed = r.partial_removed,
            "removed partial recordings left by an interrupted run (their calls never got a success)"
        );
    }
    for p in &r.orphaned {
        tracing::warn!(file = %p.display(), "audio without a database row (never acknowledged) moved to orphans/");
    }
    for (mailbox, id) in &r.missing_audio {
        tracing::error!(%mailbox, message_id = %id, "message audio is missing; its row is kept (see `vflow mailbox messages`)");
    }
    for (mailbox, kind, id) in &r.missing_greetings {
        tracing::error!(%mailbox, %kind, greeting_id = %id, "greeting audio is missing; the default greeting plays");
    }
    let created =
        seed(&store, cfg).map_err(|e| format!("cannot create the configured mailboxes: {e}"))?;
    if !created.is_empty() {
        tracing::info!(mailboxes = ?created, "created mailboxes from the configuration");
    }
    Ok(store)
}

/// A mailbox's folders as a call first saw them: message ids, oldest first.
/// Indices of `play_message`, `save_message`, `delete_message` refer to this.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub new: Vec<String>,
    pub saved: Vec<String>,
    pub deleted: Vec<String>,
}

impl Listing {
    /// Lists a mailbox now; `None` when it does not exist.
    pub fn take(store: &Store, mailbox: &str) -> Result<Option<Listing>> {
        if !store.mailbox_exists(mailbox)? {
            return Ok(None);
        }
        let mut l = Listing::default();
        for m in store.messages(mailbox, None)? {
            match m.folder {
                Folder::New => l.new.push(m.id),
                Folder::Saved => l.saved.push(m.id),
                Folder::Deleted => l.deleted.push(m.id),
            }
        }
        Ok(Some(l))
    }

    pub fn folder(&self, f: Folder) -> &[String] {
        match f {
            Folder::New => &self.new,
            Folder::Saved => &self.saved,
            Folder::Deleted => &self.deleted,
        }
    }

    pub fn count(&self, f: Folder) -> usize {
        self.folder(f).len()
    }

    /// The message at `index` of folder `f`.
    pub fn get(&self, f: Folder, index: i64) -> Option<&str> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.folder(f).get(i))
            .map(String::as_str)
    }
}

/// Why `leave_mail` cannot take a message now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Unknown,
    Full { held: u32, limit: u32 },
}

/// Whether `mailbox` can take a message: it exists and holds fewer new and
/// saved messages than its limit. On success: the mailbox.
pub fn can_take(
    store: &Store,
    cfg: &VoicemailConfig,
    id: &str,
) -> Result<std::result::Result<Mailbox, Refusal>> {
    let Some(m) = mailbox(store, id)? else {
        return Ok(Err(Refusal::Unknown));
    };
    let (new, saved, _) = store.counts(id)?;
    let limit = m.message_limit(cfg);
    if new + saved >= limit {
        return Ok(Err(Refusal::Full {
            held: new + saved,
            limit,
        }));
    }
    Ok(Ok(m))
}

/// `30d`, `2h`, `90s` for listings.
pub fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 86_400 && s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else if s >= 3600 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s >= 60 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A store in a fresh directory, and the directory: removed when the
    /// guard drops after a passing test, kept when the test failed. Bind
    /// the guard (`_dir`, not `_`) so it lives as long as the store.
    pub(crate) fn temp_store(name: &str) -> (Store, TempDir) {
        let d = std::env::temp_dir().join(format!("vflow-vm-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        (Store::open(&d).unwrap(), TempDir(d))
    }

    pub(crate) struct TempDir(std::path::PathBuf);

    impl std::ops::Deref for TempDir {
        type Target = std::path::Path;
        fn deref(&self) -> &std::path::Path {
            &self.0
        }
    }

    impl AsRef<std::path::Path> for TempDir {
        fn as_ref(&self) -> &std::path::Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    pub(crate) fn add_message(
        store: &Store,
        mailbox: &str,
        received_ms: i64,
    ) -> crate::store::Message {
        let mut rec = store
            .begin_recording(&uuid::Uuid::new_v4().to_string())
            .unwrap();
        rec.append(&[1, 0, 2, 0]).unwrap();
        store
            .commit_message(
                rec,
                &crate::store::NewMessage {
                    mailbox: mailbox.into(),
                    caller: "300".into(),
                    caller_name: String::new(),
                    received_ms,
                    priority: "normal".into(),
                    origin_node: "vflow".into(),
                    call_id: "c".into(),
                    flow_node: "f.n".into(),
                },
            )
            .unwrap()
    }

    #[test]
    fn create_update_delete() {
        let (store, root) = temp_store("crud");
        let u = MailboxUpdate {
            name: Some("Alice".into()),
            email: Some("a@example.com".into()),
            ..Default::default()
        };
        let m = create_mailbox(&store, "201", &u).unwrap();
        assert_eq!(
            (m.name.as_str(), m.email_mode, m.has_pin()),
            ("Alice", EmailMode::Off, false)
        );
        assert!(create_mailbox(&store, "201", &u).is_err(), "taken");
        assert!(create_mailbox(&store, "../x", &u).is_err(), "bad id");
        let m = update_mailbox(
            &store,
            "201",
            &MailboxUpdate {
                email_mode: Some(EmailMode::Attach),
                max_messages: Some(Some(2)),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((m.email_mode, m.max_messages), (EmailMode::Attach, Some(2)));
        assert!(!format!("{m:?}").contains("argon2"));
        add_message(&store, "201", 1);
        assert!(root.join("messages/201").is_dir());
        assert_eq!(delete_mailbox(&store, "201").unwrap(), 1);
        assert!(!root.join("messages/201").exists());
        assert!(mailbox(&store, "201").unwrap().is_none());
        assert!(matches!(
            delete_mailbox(&store, "201"),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn full_and_unknown_mailboxes_refuse() {
        let (store, _dir) = temp_store("full");
        let cfg = VoicemailConfig::default();
        assert_eq!(
            can_take(&store, &cfg, "201").unwrap(),
            Err(Refusal::Unknown)
        );
        create_mailbox(
            &store,
            "201",
            &MailboxUpdate {
                max_messages: Some(Some(2)),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(can_take(&store, &cfg, "201").unwrap().is_ok());
        let a = add_message(&store, "201", 1);
        add_message(&store, "201", 2);
        assert_eq!(
            can_take(&store, &cfg, "201").unwrap(),
            Err(Refusal::Full { held: 2, limit: 2 })
        );
        // Deleted messages do not count.
        store.move_message(&a.id, Folder::Deleted).unwrap();
        assert!(can_take(&store, &cfg, "201").unwrap().is_ok());
    }

    #[test]
    fn a_listing_is_stable_while_the_store_changes() {
        let (store, _dir) = temp_store("listing");
        create_mailbox(&store, "201", &MailboxUpdate::default()).unwrap();
        let a = add_message(&store, "201", 10);
        let b = add_message(&store, "201", 20);
        let l = Listing::take(&store, "201").unwrap().unwrap();
        assert_eq!(l.new, vec![a.id.clone(), b.id.clone()]);
        store.move_message(&a.id, Folder::Saved).unwrap();
        add_message(&store, "201", 30);
        assert_eq!(l.get(Folder::New, 0), Some(a.id.as_str()));
        assert_eq!(l.get(Folder::New, 2), None);
        assert_eq!(l.get(Folder::New, -1), None);
        assert!(Listing::take(&store, "999").unwrap().is_none());
    }

    #[test]
    fn seeding_creates_once_and_never_overwrites_a_pin() {
        let (store, _dir) = temp_store("seed");
        let mut cfg = VoicemailConfig::default();
        cfg.mailboxes.push(MailboxSeed {
            id: "201".into(),
            name: "Alice".into(),
            pin: Some("4826".into()),
            pin_hash: None,
            email: String::new(),
            email_mode: Some("notify".into()),
            mwi: "sip:201@192.0.2.5:5060".into(),
            max_messages: None,
            max_message_length: Some(Duration::from_secs(60)),
        });
        assert_eq!(seed(&store, &cfg).unwrap(), vec!["201".to_string()]);
        let m = mailbox(&store, "201").unwrap().unwrap();
        assert_eq!(
            (m.email_mode, m.max_message_ms, m.mwi.as_str()),
            (EmailMode::Notify, Some(60_000), "sip:201@192.0.2.5:5060")
        );
        let hash = m.pin_hash.clone().unwrap();
        cfg.mailboxes[0].pin = Some("9157".into());
        cfg.mailboxes[0].name = "Alice B".into();
        assert!(seed(&store, &cfg).unwrap().is_empty());
        let m = mailbox(&store, "201").unwrap().unwrap();
        assert_eq!(m.pin_hash.unwrap(), hash);
        assert_eq!(m.name, "Alice B");
    }
}
