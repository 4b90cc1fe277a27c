//! Housekeeping: removes messages that stayed in a folder longer than the
//! folder's retention (`voicemail.retention`), row and file together (see
//! [`Store::remove_message`]), and greetings recorded but never activated.
//! A message still waiting in the outbox (email not yet handed to the relay)
//! is kept until the outbox is done with it. The server runs it every
//! `voicemail.housekeeping_every`.

use crate::config::VoicemailConfig;
use crate::store::{Folder, Result, Store};
use rusqlite::params;

/// Pending greetings older than this are removed.
pub const PENDING_GREETING_MS: i64 = 24 * 3600 * 1000;

/// What one run removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub new: usize,
    pub saved: usize,
    pub deleted: usize,
    pub pending_greetings: usize,
}

impl Report {
    pub fn total(&self) -> usize {
        self.new + self.saved + self.deleted + self.pending_greetings
    }
}

/// One housekeeping pass at `now_ms`.
pub fn run(store: &Store, cfg: &VoicemailConfig, now_ms: i64) -> Result<Report> {
    let mut report = Report::default();
    let r = &cfg.retention;
    for (folder, keep) in [
        (Folder::New, r.new),
        (Folder::Saved, r.saved),
        (Folder::Deleted, r.deleted),
    ] {
        let Some(keep) = keep else { continue };
        let cutoff = now_ms - keep.as_millis() as i64;
        let ids: Vec<String> = {
            let db = store.db();
            let mut st = db.prepare(
                "SELECT id FROM messages m WHERE folder = ?1 AND folder_since_ms <= ?2
                 AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = m.id AND o.done_ms IS NULL)",
            )?;
            st.query_map(params![folder.as_str(), cutoff], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        for id in ids {
            let m = store.remove_message(&id)?;
            tracing::info!(mailbox = %m.mailbox, message_id = %m.id, folder = %folder, "housekeeping removed a message");
            match folder {
                Folder::New => report.new += 1,
                Folder::Saved => report.saved += 1,
                Folder::Deleted => report.deleted += 1,
            }
        }
    }
    report.pending_greetings = store.remove_pending_greetings(now_ms - PENDING_GREETING_MS)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RetentionConfig;
    use crate::store::now_ms;
    use crate::voicemail::tests::{add_message, temp_store};
    use crate::voicemail::{MailboxUpdate, create_mailbox};
    use std::time::Duration;

    #[test]
    fn per_folder_retention_removes_row_and_file() {
        let (store, _dir) = temp_store("housekeeping");
        create_mailbox(&store, "201", &MailboxUpdate::default()).unwrap();
        let now = now_ms();
        let fresh_new = add_message(&store, "201", now);
        let old_new = add_message(&store, "201", now - 400 * 86_400_000);
        let saved = add_message(&store, "201", now);
        store.move_message(&saved.id, Folder::Saved).unwrap();
        let deleted = add_message(&store, "201", now);
        store.move_message(&deleted.id, Folder::Deleted).unwrap();
        let cfg = VoicemailConfig {
            retention: RetentionConfig {
                new: None,
                saved: Some(Duration::from_secs(86_400)),
                deleted: Some(Duration::from_secs(60)),
            },
            ..VoicemailConfig::default()
        };
        // Now: nothing is old enough except what `never` protects.
        assert_eq!(run(&store, &cfg, now).unwrap().total(), 0);
        // Two minutes on: the deleted one goes.
        let r = run(&store, &cfg, now + 120_000).unwrap();
        assert_eq!((r.new, r.saved, r.deleted), (0, 0, 1));
        assert!(!store.message_path("201", &deleted.id).exists());
        assert!(store.message(&deleted.id).unwrap().is_none());
        // Two days on: the saved one goes; new ones stay (`never`).
        let r = run(&store, &cfg, now + 2 * 86_400_000).unwrap();
        assert_eq!((r.new, r.saved, r.deleted), (0, 1, 0));
        assert!(store.message(&fresh_new.id).unwrap().is_some());
        assert!(store.message(&old_new.id).unwrap().is_some());
        assert!(store.message_path("201", &old_new.id).is_file());
    }

    #[test]
    fn a_message_waiting_for_email_is_kept() {
        let (store, _dir) = temp_store("housekeeping-outbox");
        create_mailbox(&store, "201", &MailboxUpdate::default()).unwrap();
        let now = now_ms();
        let m = add_message(&store, "201", now);
        store.move_message(&m.id, Folder::Deleted).unwrap();
        let job = store
            .outbox_push("email", Some("201"), Some(&m.id), "{}")
            .unwrap();
        let cfg = VoicemailConfig {
            retention: RetentionConfig {
                new: None,
                saved: None,
                deleted: Some(Duration::from_secs(1)),
            },
            ..VoicemailConfig::default()
        };
        assert_eq!(run(&store, &cfg, now + 10_000).unwrap().deleted, 0);
        store.outbox_done(job).unwrap();
        assert_eq!(run(&store, &cfg, now + 10_000).unwrap().deleted, 1);
    }

    #[test]
    fn stale_pending_greetings_go() {
        let (store, _dir) = temp_store("housekeeping-greetings");
        create_mailbox(&store, "201", &MailboxUpdate::default()).unwrap();
        let mut rec = store.begin_recording("g").unwrap();
        rec.append(&[0, 1]).unwrap();
        let id = store.commit_greeting(rec, "201", "busy").unwrap();
        let cfg = VoicemailConfig::default();
        assert_eq!(run(&store, &cfg, now_ms()).unwrap().pending_greetings, 0);
        assert_eq!(
            run(&store, &cfg, now_ms() + PENDING_GREETING_MS + 1000)
                .unwrap()
                .pending_greetings,
            1
        );
        assert!(!store.greeting_path("201", "busy", &id).exists());
    }
}
