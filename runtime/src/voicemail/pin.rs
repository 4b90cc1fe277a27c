//! PINs: the policy, argon2 hashes, and verification with a lockout that
//! persists in the store (per mailbox, across calls and restarts).
//!
//! Every failed attempt is a structured event on the tracing target
//! `security` (mailbox, call, caller, attempts, lock); neither a PIN nor a
//! hash is ever logged or printed.

use super::{Mailbox, mailbox};
use crate::config::PinConfig;
use crate::store::{Result, Store, StoreError};
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use rusqlite::{OptionalExtension, params};
use std::fmt;

/// What `verify_pin` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinCheck {
    Valid,
    /// Wrong PIN, no such mailbox, or no PIN set (not told apart).
    Invalid,
    /// Locked after too many failures (this attempt may be the one that locked it).
    Locked,
}

/// Why the policy refuses a PIN (the text completes "the PIN …").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyViolation {
    Empty,
    NotDigits,
    TooShort(usize),
    TooLong(usize),
    RepeatedDigit,
    Sequence,
    MailboxNumber,
}

impl fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyViolation::Empty => write!(f, "is empty"),
            PolicyViolation::NotDigits => write!(f, "must be digits 0-9 only"),
            PolicyViolation::TooShort(n) => write!(f, "must have at least {n} digits"),
            PolicyViolation::TooLong(n) => write!(f, "must have at most {n} digits"),
            PolicyViolation::RepeatedDigit => write!(f, "is one digit repeated"),
            PolicyViolation::Sequence => {
                write!(f, "is an ascending or descending run (like 1234 or 9876)")
            }
            PolicyViolation::MailboxNumber => write!(f, "is the mailbox number"),
        }
    }
}

/// Checks a new PIN against the policy.
pub fn check_policy(
    p: &PinConfig,
    mailbox: &str,
    pin: &str,
) -> std::result::Result<(), PolicyViolation> {
    if pin.is_empty() {
        return Err(PolicyViolation::Empty);
    }
    if !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PolicyViolation::NotDigits);
    }
    let min = p.min_length.max(1);
    if pin.len() < min {
        return Err(PolicyViolation::TooShort(min));
    }
    if pin.len() > p.max_length {
        return Err(PolicyViolation::TooLong(p.max_length));
    }
    let d: Vec<i8> = pin.bytes().map(|b| (b - b'0') as i8).collect();
    if d.len() > 1 && d.iter().all(|x| *x == d[0]) {
        return Err(PolicyViolation::RepeatedDigit);
    }
    if d.len() > 1
        && (d.windows(2).all(|w| w[1] - w[0] == 1) || d.windows(2).all(|w| w[0] - w[1] == 1))
    {
        return Err(PolicyViolation::Sequence);
    }
    if pin == mailbox {
        return Err(PolicyViolation::MailboxNumber);
    }
    Ok(())
}

/// An argon2id PHC string for `pin`, with a random salt.
pub fn hash_pin(pin: &str) -> Result<String> {
    Argon2::default()
        .hash_password(pin.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Invalid(format!("cannot hash the PIN: {e}")))
}

/// Whether `s` is an argon2 PHC string.
pub fn is_hash(s: &str) -> bool {
    s.starts_with("$argon2") && PasswordHash::new(s).is_ok()
}

fn matches(hash: &str, pin: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(h) => Argon2::default()
            .verify_password(pin.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// Who is trying, for the security log.
#[derive(Debug, Clone, Default)]
pub struct Attempt<'a> {
    pub call_id: &'a str,
    pub caller: &'a str,
}

/// Verifies a PIN. A wrong one counts towards the lockout; `attempts`
/// failures in a row (over any calls) lock the mailbox for `lockout_for`,
/// during which every PIN — right or wrong — is refused with `Locked`. A
/// right PIN resets the count. An unknown mailbox or one without a PIN is
/// `Invalid`, after the same hashing work as a real check.
pub fn verify(
    store: &Store,
    p: &PinConfig,
    id: &str,
    pin: &str,
    now_ms: i64,
    who: &Attempt<'_>,
) -> Result<PinCheck> {
    let Some(m) = mailbox(store, id)? else {
        let _ = matches(DUMMY_HASH, pin);
        tracing::warn!(target: "security", event = "pin_failed", mailbox = %id, call_id = %who.call_id, caller = %who.caller, reason = "unknown_mailbox", "PIN refused");
        return Ok(PinCheck::Invalid);
    };
    if m.locked_at(now_ms) {
        tracing::warn!(target: "security", event = "pin_refused_locked", mailbox = %id, call_id = %who.call_id, caller = %who.caller, locked_until_ms = m.locked_until_ms, "PIN refused: mailbox locked");
        return Ok(PinCheck::Locked);
    }
    let Some(hash) = m.pin_hash.as_deref() else {
        let _ = matches(DUMMY_HASH, pin);
        tracing::warn!(target: "security", event = "pin_failed", mailbox = %id, call_id = %who.call_id, caller = %who.caller, reason = "no_pin_set", "PIN refused: remote access is not configured");
        return Ok(PinCheck::Invalid);
    };
    if !pin.is_empty() && matches(hash, pin) {
        store.db().execute(
            "UPDATE mailboxes SET failed_pins = 0, locked_until_ms = NULL WHERE id = ?1",
            [id],
        )?;
        tracing::info!(target: "security", event = "pin_ok", mailbox = %id, call_id = %who.call_id, caller = %who.caller, "PIN accepted");
        return Ok(PinCheck::Valid);
    }
    record_failure(store, p, &m, now_ms, who)
}

fn record_failure(
    store: &Store,
    p: &PinConfig,
    m: &Mailbox,
    now_ms: i64,
    who: &Attempt<'_>,
) -> Result<PinCheck> {
    let mut db = store.db();
    let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let failed: Option<i64> = tx
        .query_row(
            "UPDATE mailboxes SET failed_pins = failed_pins + 1 WHERE id = ?1 RETURNING failed_pins",
            [&m.id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(failed) = failed else {
        return Ok(PinCheck::Invalid);
    };
    let lock = failed >= i64::from(p.lockout_attempts);
    let until = now_ms + p.lockout_for.as_millis() as i64;
    if lock {
        tx.execute(
            "UPDATE mailboxes SET failed_pins = 0, locked_until_ms = ?2 WHERE id = ?1",
            params![m.id, until],
        )?;
    }
    tx.commit()?;
    if lock {
        tracing::warn!(target: "security", event = "mailbox_locked", mailbox = %m.id, call_id = %who.call_id, caller = %who.caller, attempts = failed, locked_until_ms = until, "too many wrong PINs: mailbox locked");
        Ok(PinCheck::Locked)
    } else {
        tracing::warn!(target: "security", event = "pin_failed", mailbox = %m.id, call_id = %who.call_id, caller = %who.caller, attempts = failed, reason = "wrong_pin", "PIN refused");
        Ok(PinCheck::Invalid)
    }
}

/// What `set_pin` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetPin {
    Changed,
    Refused(PolicyViolation),
}

/// Changes a mailbox's PIN, subject to the policy; `NotFound` for an unknown mailbox.
pub fn set_pin(
    store: &Store,
    p: &PinConfig,
    id: &str,
    pin: &str,
    who: &Attempt<'_>,
) -> Result<SetPin> {
    if let Err(v) = check_policy(p, id, pin) {
        tracing::info!(target: "security", event = "pin_change_refused", mailbox = %id, call_id = %who.call_id, reason = %v, "new PIN refused by the policy");
        return Ok(SetPin::Refused(v));
    }
    let hash = hash_pin(pin)?;
    let n = store.db().execute(
        "UPDATE mailboxes SET pin_hash = ?2, failed_pins = 0, locked_until_ms = NULL WHERE id = ?1",
        params![id, hash],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("mailbox `{id}`")));
    }
    tracing::info!(target: "security", event = "pin_changed", mailbox = %id, call_id = %who.call_id, caller = %who.caller, "PIN changed");
    Ok(SetPin::Changed)
}

/// A valid hash of a random-looking PIN nobody has, to spend the same time
/// on unknown mailboxes as on known ones.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$J5vVA0DqjqdsxV5eP9lYQ6XKoqGgXm5rDMb3Gk3hzjk";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voicemail::tests::temp_store;
    use crate::voicemail::{MailboxUpdate, create_mailbox};
    use std::time::Duration;

    fn policy() -> PinConfig {
        PinConfig::default()
    }

    #[test]
    fn the_policy() {
        let p = policy();
        assert_eq!(check_policy(&p, "201", ""), Err(PolicyViolation::Empty));
        assert_eq!(
            check_policy(&p, "201", "12a4"),
            Err(PolicyViolation::NotDigits)
        );
        assert_eq!(
            check_policy(&p, "201", "482"),
            Err(PolicyViolation::TooShort(4))
        );
        assert_eq!(
            check_policy(&p, "201", "4826482648264"),
            Err(PolicyViolation::TooLong(12))
        );
        assert_eq!(
            check_policy(&p, "201", "1111"),
            Err(PolicyViolation::RepeatedDigit)
        );
        assert_eq!(
            check_policy(&p, "201", "0000000"),
            Err(PolicyViolation::RepeatedDigit)
        );
        assert_eq!(
            check_policy(&p, "201", "1234"),
            Err(PolicyViolation::Sequence)
        );
        assert_eq!(
            check_policy(&p, "201", "3456789"),
            Err(PolicyViolation::Sequence)
        );
        assert_eq!(
            check_policy(&p, "201", "9876"),
            Err(PolicyViolation::Sequence)
        );
        assert_eq!(
            check_policy(&p, "2017", "2017"),
            Err(PolicyViolation::MailboxNumber)
        );
        assert_eq!(check_policy(&p, "201", "4826"), Ok(()));
        assert_eq!(
            check_policy(&p, "201", "1235"),
            Ok(()),
            "almost a run is fine"
        );
        assert_eq!(check_policy(&p, "201", "1122"), Ok(()));
        assert_eq!(
            check_policy(&p, "201", "8901"),
            Ok(()),
            "no wrap-around rule"
        );
        let short = PinConfig {
            min_length: 1,
            ..policy()
        };
        assert_eq!(
            check_policy(&short, "201", "7"),
            Ok(()),
            "one digit is neither repeated nor a run"
        );
        assert_eq!(
            check_policy(&short, "201", ""),
            Err(PolicyViolation::Empty),
            "never empty"
        );
    }

    #[test]
    fn hashes_verify_and_never_contain_the_pin() {
        let h = hash_pin("4826").unwrap();
        assert!(is_hash(&h) && h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("4826"));
        assert!(matches(&h, "4826"));
        assert!(!matches(&h, "4827"));
        assert_ne!(hash_pin("4826").unwrap(), h, "salted");
        assert!(is_hash(DUMMY_HASH));
        assert!(!is_hash("4826"));
    }

    #[test]
    fn lockout_persists_across_reopen_and_expires() {
        let (store, root) = temp_store("lockout");
        let p = PinConfig {
            lockout_attempts: 3,
            lockout_for: Duration::from_secs(600),
            ..policy()
        };
        let who = Attempt {
            call_id: "c1",
            caller: "300",
        };
        create_mailbox(
            &store,
            "201",
            &MailboxUpdate {
                pin_hash: Some(Some(hash_pin("4826").unwrap())),
                ..Default::default()
            },
        )
        .unwrap();
        let t0 = 1_000_000;
        assert_eq!(
            verify(&store, &p, "201", "0000", t0, &who).unwrap(),
            PinCheck::Invalid
        );
        assert_eq!(
            verify(&store, &p, "201", "4826", t0, &who).unwrap(),
            PinCheck::Valid,
            "a right PIN resets"
        );
        assert_eq!(
            verify(&store, &p, "201", "0000", t0, &who).unwrap(),
            PinCheck::Invalid
        );
        assert_eq!(
            verify(&store, &p, "201", "0001", t0, &who).unwrap(),
            PinCheck::Invalid
        );
        drop(store);
        // A new process (or a new call) continues the count.
        let store = Store::open(&root).unwrap();
        assert_eq!(
            verify(&store, &p, "201", "0002", t0 + 1, &who).unwrap(),
            PinCheck::Locked,
            "third failure locks"
        );
        drop(store);
        let store = Store::open(&root).unwrap();
        assert_eq!(
            verify(&store, &p, "201", "4826", t0 + 2, &who).unwrap(),
            PinCheck::Locked,
            "even the right PIN"
        );
        assert!(
            mailbox(&store, "201")
                .unwrap()
                .unwrap()
                .locked_at(t0 + 599_000)
        );
        assert_eq!(
            verify(&store, &p, "201", "4826", t0 + 601_001, &who).unwrap(),
            PinCheck::Valid,
            "expired"
        );
        // Unknown mailbox and mailbox without a PIN: invalid, and no row is created.
        assert_eq!(
            verify(&store, &p, "999", "4826", t0, &who).unwrap(),
            PinCheck::Invalid
        );
        assert!(mailbox(&store, "999").unwrap().is_none());
        create_mailbox(&store, "202", &MailboxUpdate::default()).unwrap();
        assert_eq!(
            verify(&store, &p, "202", "", t0, &who).unwrap(),
            PinCheck::Invalid
        );
        assert_eq!(
            verify(&store, &p, "201", "", t0 + 700_000, &who).unwrap(),
            PinCheck::Invalid,
            "empty never matches"
        );
    }

    #[test]
    fn set_pin_applies_the_policy_and_unlocks() {
        let (store, _dir) = temp_store("setpin");
        let p = PinConfig {
            lockout_attempts: 1,
            ..policy()
        };
        let who = Attempt::default();
        create_mailbox(&store, "201", &MailboxUpdate::default()).unwrap();
        assert_eq!(
            set_pin(&store, &p, "201", "1234", &who).unwrap(),
            SetPin::Refused(PolicyViolation::Sequence)
        );
        assert_eq!(
            set_pin(&store, &p, "201", "", &who).unwrap(),
            SetPin::Refused(PolicyViolation::Empty)
        );
        assert_eq!(
            set_pin(&store, &p, "201", "4826", &who).unwrap(),
            SetPin::Changed
        );
        assert_eq!(
            verify(&store, &p, "201", "1", 0, &who).unwrap(),
            PinCheck::Locked
        );
        assert_eq!(
            set_pin(&store, &p, "201", "5937", &who).unwrap(),
            SetPin::Changed
        );
        assert_eq!(
            verify(&store, &p, "201", "5937", 1, &who).unwrap(),
            PinCheck::Valid
        );
        assert!(matches!(
            set_pin(&store, &p, "999", "5937", &who),
            Err(StoreError::NotFound(_))
        ));
    }
}
