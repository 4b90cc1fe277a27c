//! Voicemail-to-email and the `email` action, over SMTP (lettre) through a
//! durable queue: the store's `outbox` table, kind `email`.
//!
//! What is queued, and by whom:
//! - A new message in a mailbox with an email address and mode `notify`,
//!   `attach` or `forward`: [`Store::commit_message`] queues it in the same
//!   transaction as the message row (payload `{"email", "mode"}`), so a
//!   message is never stored without its email, nor the reverse.
//! - The flow action `email` ([`queue_flow_email`]): `to`, `subject`, `body`
//!   and optionally the call's last recording (payload `{"to", "subject",
//!   "body", "attach"}`).
//!
//! Delivery ([`drain`], run by [`run`] in the server, through the shared
//! outbox loop of [`crate::outbox`]): each due entry is
//! composed from the store as it is now ([`compose`]) and handed to the
//! relay. Accepted: the entry is done; in `forward` mode the message is then
//! removed from its mailbox (done first, so a crash between the two leaves a
//! duplicate, never a loss). Refused or unreachable: the entry is retried
//! after `retry_first`, doubling up to `retry_max` ([`backoff`]); after
//! `give_up_after` it is dropped with an error in the log — the voicemail
//! itself stays in its mailbox (a `forward` message is only ever removed
//! after the relay accepted it). Housekeeping keeps a message whose email is
//! pending.
//!
//! The queue logic takes a [`Relay`], so it is tested without sockets;
//! [`Smtp`] is the real one (STARTTLS, implicit TLS or plain; optional AUTH).

use crate::config::{EmailConfig, EmailSecurity};
use crate::outbox::{self, Consumer, Policy, PrepareError};
pub use crate::outbox::{Report, Verdict};
use crate::store::{OutboxItem, Result as StoreResult, Store, StoreError};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox as Address, MultiPart, SinglePart};
use std::sync::Arc;
use std::time::Duration;

/// The outbox kind this module owns.
pub const KIND: &str = "email";

/// Template placeholders of `email.subject`.
pub const PLACEHOLDERS: &[&str] = &[
    "mailbox",
    "name",
    "caller",
    "caller_name",
    "duration",
    "date",
    "time",
];

/// An email address, `Name <addr>` or `addr`.
pub fn parse_address(s: &str) -> Result<Address, String> {
    s.trim()
        .parse::<Address>()
        .map_err(|e| format!("`{s}` is not an email address ({e})"))
}

/// Checks that a template only uses known `{placeholders}`.
pub fn check_template(t: &str) -> Result<(), String> {
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("`{t}`: a `{{` is not closed"))?;
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "`{t}`: unknown placeholder `{{{name}}}`; use {}",
                PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// Replaces `{name}` by its value; unknown names stay as written.
pub fn fill_template(t: &str, vars: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(t.len() + 32);
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match vars.iter().find(|(n, _)| *n == name) {
                    Some((_, v)) => out.push_str(v),
                    None => out.push_str(&rest[open..open + close + 2]),
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    // A subject is one line.
    out.replace(['\r', '\n'], " ")
}

/// The retry policy of email entries.
pub fn policy(cfg: &EmailConfig) -> Policy {
    Policy {
        // lettre bounds each SMTP step by `timeout`; the whole attempt gets a margin.
        timeout: cfg.timeout + Duration::from_secs(5),
        retry_first: cfg.retry_first,
        retry_max: cfg.retry_max,
        give_up_after: cfg.give_up_after,
    }
}

/// The wait before attempt `failures + 1`: `first`, doubling, at most `max`.
pub fn backoff(cfg: &EmailConfig, failures: u32) -> Duration {
    policy(cfg).backoff(failures)
}

/// The decision after the attempt that failed at `now_ms` (the entry's
/// `attempts` does not count it yet).
pub fn after_failure(cfg: &EmailConfig, item: &OutboxItem, now_ms: i64) -> Verdict {
    policy(cfg).after_failure(item, now_ms)
}

/// Everything [`compose`] needs besides the store and the entry.
#[derive(Debug, Clone)]
pub struct Context {
    pub from: Address,
    pub subject: String,
    pub tz: jiff::tz::TimeZone,
}

impl Context {
    pub fn new(cfg: &EmailConfig, tz: jiff::tz::TimeZone) -> Result<Context, String> {
        Ok(Context {
            from: parse_address(&cfg.from)?,
            subject: cfg.subject.clone(),
            tz,
        })
    }
}

/// An email ready for the relay.
#[derive(Debug, Clone)]
pub struct Composed {
    pub email: lettre::Message,
    /// `forward`: the message to remove once the relay accepted the email.
    pub forward: Option<String>,
}

/// Why an entry cannot be composed (see [`PrepareError`]).
pub type ComposeError = PrepareError;

fn wav() -> ContentType {
    ContentType::parse("audio/wav").expect("a valid literal media type")
}

fn text_part(body: String) -> SinglePart {
    SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(body)
}

fn local(ms: i64, tz: &jiff::tz::TimeZone, fmt: &str) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned_datetime(tz.clone()).strftime(fmt).to_string())
        .unwrap_or_default()
}

/// Builds the email of one outbox entry from the store as it is now.
pub fn compose(store: &Store, ctx: &Context, item: &OutboxItem) -> Result<Composed, ComposeError> {
    let payload: serde_json::Value = serde_json::from_str(&item.payload)
        .map_err(|e| ComposeError::Obsolete(format!("the payload is not JSON: {e}")))?;
    let text = |k: &str| {
        payload
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    if let Some(mode) = payload.get("mode").and_then(|v| v.as_str()) {
        let mode = super::EmailMode::parse(mode)
            .ok_or_else(|| ComposeError::Obsolete(format!("unknown email mode `{mode}`")))?;
        return compose_voicemail(store, ctx, item, &text("email"), mode);
    }
    let to = parse_address(&text("to")).map_err(ComposeError::Obsolete)?;
    let mut b = lettre::Message::builder()
        .from(ctx.from.clone())
        .to(to)
        .subject(fill_template(&text("subject"), &[]));
    b = b.user_agent("vflow".into());
    let body = text("body");
    let attach = text("attach");
    let email = if attach.is_empty() {
        b.singlepart(text_part(body))
    } else {
        // A path under the data directory, written by this server.
        let rel = std::path::Path::new(&attach);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(ComposeError::Obsolete(format!(
                "attachment `{attach}` is outside the data directory"
            )));
        }
        let bytes = std::fs::read(store.root().join(rel))
            .map_err(|e| ComposeError::Failed(format!("cannot read `{attach}`: {e}")))?;
        let name = rel
            .file_name()
            .map_or("recording.wav".into(), |n| n.to_string_lossy().into_owned());
        b.multipart(
            MultiPart::mixed()
                .singlepart(text_part(body))
                .singlepart(Attachment::new(name).body(bytes, wav())),
        )
    }
    .map_err(|e| ComposeError::Obsolete(format!("cannot build the email: {e}")))?;
    Ok(Composed {
        email,
        forward: None,
    })
}

fn compose_voicemail(
    store: &Store,
    ctx: &Context,
    item: &OutboxItem,
    to: &str,
    mode: super::EmailMode,
) -> Result<Composed, ComposeError> {
    use super::EmailMode;
    let to = parse_address(to).map_err(ComposeError::Obsolete)?;
    let id = item
        .message_id
        .as_deref()
        .ok_or_else(|| ComposeError::Obsolete("no message id".into()))?;
    let m = store
        .message(id)?
        .ok_or_else(|| ComposeError::Obsolete(format!("message {id} is gone")))?;
    let name = super::mailbox(store, &m.mailbox)?
        .map(|b| b.name)
        .unwrap_or_default();
    let secs = m.duration_ms.div_ceil(1000);
    let duration = format!("{}:{:02}", secs / 60, secs % 60);
    let caller = if m.caller.is_empty() {
        "an unknown caller".to_string()
    } else {
        m.caller.clone()
    };
    let vars = [
        ("mailbox", m.mailbox.clone()),
        ("name", name.clone()),
        ("caller", caller.clone()),
        ("caller_name", m.caller_name.clone()),
        ("duration", duration.clone()),
        ("date", local(m.received_ms, &ctx.tz, "%Y-%m-%d")),
        ("time", local(m.received_ms, &ctx.tz, "%H:%M")),
    ];
    let mut body = format!(
        "New voicemail message for mailbox {}{}.\r\n\r\nFrom:     {}{}\r\nReceived: {}\r\nLength:   {duration}\r\n",
        m.mailbox,
        if name.is_empty() {
            String::new()
        } else {
            format!(" ({name})")
        },
        caller,
        if m.caller_name.is_empty() {
            String::new()
        } else {
            format!(" \"{}\"", m.caller_name)
        },
        local(m.received_ms, &ctx.tz, "%Y-%m-%d %H:%M %Z"),
    );
    if m.priority == "urgent" {
        body.push_str("Priority: urgent\r\n");
    }
    body.push_str(match mode {
        EmailMode::Notify | EmailMode::Off => "\r\nCall your voicemail to listen to it.\r\n",
        EmailMode::Attach => "\r\nThe recording is attached (WAV). It stays in your mailbox.\r\n",
        EmailMode::Forward => {
            "\r\nThe recording is attached (WAV). It is no longer kept in your mailbox.\r\n"
        }
    });
    body.push_str(&format!("\r\nMessage {}\r\n", m.id));
    let b = lettre::Message::builder()
        .from(ctx.from.clone())
        .to(to)
        .subject(fill_template(&ctx.subject, &vars))
        .user_agent("vflow".into());
    let email = match mode {
        EmailMode::Notify | EmailMode::Off => b.singlepart(text_part(body)),
        EmailMode::Attach | EmailMode::Forward => {
            let path = store.message_path(&m.mailbox, &m.id);
            let bytes = std::fs::read(&path).map_err(|e| {
                ComposeError::Failed(format!("cannot read {}: {e}", path.display()))
            })?;
            let file = format!(
                "voicemail-{}-{}.wav",
                m.mailbox,
                local(m.received_ms, &ctx.tz, "%Y%m%d-%H%M%S")
            );
            b.multipart(
                MultiPart::mixed()
                    .singlepart(text_part(body))
                    .singlepart(Attachment::new(file).body(bytes, wav())),
            )
        }
    }
    .map_err(|e| ComposeError::Obsolete(format!("cannot build the email: {e}")))?;
    Ok(Composed {
        email,
        forward: (mode == EmailMode::Forward).then(|| m.id.clone()),
    })
}

/// Queues an email from the `email` action. `attach`: a file under the data
/// directory, with the message it belongs to (so housekeeping keeps it).
pub fn queue_flow_email(
    store: &Store,
    to: &str,
    subject: &str,
    body: &str,
    attach: Option<(&str, Option<&str>)>,
) -> StoreResult<i64> {
    let payload = serde_json::json!({
        "to": to, "subject": subject, "body": body,
        "attach": attach.map_or("", |(p, _)| p),
    });
    store.outbox_push(
        KIND,
        None,
        attach.and_then(|(_, m)| m),
        &payload.to_string(),
    )
}

/// A failed hand-over to the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayError {
    /// A 5xx: the relay refused for good (still retried until `give_up_after`).
    pub permanent: bool,
    pub message: String,
}

/// Something that takes emails: the SMTP relay, or a test double.
pub trait Relay: Send + Sync {
    fn send(
        &self,
        email: lettre::Message,
    ) -> impl std::future::Future<Output = Result<(), RelayError>> + Send;
}

/// The configured SMTP relay.
#[derive(Clone)]
pub struct Smtp {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
}

impl Smtp {
    pub fn new(cfg: &EmailConfig) -> Result<Smtp, String> {
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::transport::smtp::client::{Tls, TlsParameters};
        // lettre passes its provider explicitly; installing it as the process
        // default keeps any other rustls user from panicking. Only the first
        // call installs; later ones are no-ops.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let params = || {
            TlsParameters::new(cfg.relay.clone())
                .map_err(|e| format!("TLS for `{}`: {e}", cfg.relay))
        };
        let tls = match cfg.security {
            EmailSecurity::Plain => Tls::None,
            EmailSecurity::Starttls => Tls::Required(params()?),
            EmailSecurity::Tls => Tls::Wrapper(params()?),
        };
        let mut b = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous(
            cfg.relay.clone(),
        )
        .port(cfg.port)
        .tls(tls)
        .timeout(Some(cfg.timeout));
        if let (Some(u), Some(p)) = (&cfg.user, &cfg.password) {
            b = b.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(Smtp {
            transport: b.build(),
        })
    }
}

impl Relay for Smtp {
    async fn send(&self, email: lettre::Message) -> Result<(), RelayError> {
        use lettre::AsyncTransport;
        match self.transport.send(email).await {
            Ok(_) => Ok(()),
            Err(e) => Err(RelayError {
                permanent: e.is_permanent(),
                message: e.to_string(),
            }),
        }
    }
}

/// The email consumer of the outbox.
struct Mailer<'a, R> {
    policy: Policy,
    ctx: Context,
    relay: &'a R,
}

impl<R: Relay> Consumer for Mailer<'_, R> {
    const KIND: &'static str = KIND;
    const LABEL: &'static str = "email";
    const ACCEPTED: &'static str = "accepted by the relay";
    type Ctx = Context;
    type Ready = Composed;
    /// `forward` mode: the message to remove now that the relay has it.
    type Done = Option<String>;

    fn ctx(&self) -> &Context {
        &self.ctx
    }

    fn policy(&self) -> &Policy {
        &self.policy
    }

    fn prepare(ctx: &Context, store: &Store, item: &OutboxItem) -> Result<Composed, PrepareError> {
        compose(store, ctx, item)
    }

    async fn deliver(&self, c: Composed) -> Result<Option<String>, String> {
        let forward = c.forward;
        match self.relay.send(c.email).await {
            Ok(()) => Ok(forward),
            Err(e) => Err(format!(
                "{}{}",
                if e.permanent { "refused: " } else { "" },
                e.message
            )),
        }
    }

    fn delivered(
        _: &Context,
        store: &Store,
        item: &OutboxItem,
        forward: Option<String>,
    ) -> StoreResult<()> {
        store.outbox_done(item.id)?;
        // Done first: a crash before the removal leaves a duplicate, never a loss.
        // A forwarded message goes once nothing queued still needs its audio:
        // after its forward email, or after the last email that attaches it.
        let Some(mid) = item.message_id.clone() else {
            return Ok(());
        };
        if !store.forwarded_and_unreferenced(&mid)? {
            if forward.is_some() {
                tracing::info!(message_id = %mid, "email: forwarded message kept until the other emails queued for it are sent");
            }
            return Ok(());
        }
        match store.remove_message(&mid) {
            Ok(m) => {
                tracing::info!(mailbox = %m.mailbox, message_id = %m.id, "email: forwarded message removed from the mailbox")
            }
            Err(StoreError::NotFound(_)) => {}
            Err(e) => {
                tracing::error!(error = %e, "email: cannot remove a forwarded message (it stays)")
            }
        }
        Ok(())
    }
}

/// Delivers every entry due at `now_ms` (oldest first), one at a time.
pub async fn drain<R: Relay>(
    store: &Store,
    cfg: &EmailConfig,
    ctx: &Context,
    relay: &R,
    now_ms: i64,
) -> StoreResult<Report> {
    let m = Mailer {
        policy: policy(cfg),
        ctx: ctx.clone(),
        relay,
    };
    outbox::drain(store, &m, now_ms).await
}

/// The mailer: drains the queue whenever something is due, a message is
/// stored (the store's change announcements) or `wake` is notified (the
/// `email` action). Runs until aborted.
pub async fn run<R: Relay>(
    store: Store,
    cfg: EmailConfig,
    ctx: Context,
    relay: R,
    wake: Arc<tokio::sync::Notify>,
) {
    let m = Mailer {
        policy: policy(&cfg),
        ctx,
        relay: &relay,
    };
    outbox::run(store, m, wake).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::now_ms;
    use crate::voicemail::tests::{add_message, temp_store};
    use crate::voicemail::{EmailMode, MailboxUpdate, create_mailbox};
    use mail_parser::MimeHeaders;
    use std::sync::Mutex;

    fn cfg() -> EmailConfig {
        EmailConfig {
            relay: "127.0.0.1".into(),
            retry_first: Duration::from_secs(30),
            retry_max: Duration::from_secs(600),
            give_up_after: Some(Duration::from_secs(3600)),
            ..EmailConfig::default()
        }
    }

    fn ctx() -> Context {
        let mut c = Context::new(&cfg(), jiff::tz::TimeZone::UTC).unwrap();
        c.subject = "Voicemail for {mailbox} ({name}) from {caller}, {duration}".into();
        c
    }

    /// A relay that records what it takes, or fails.
    #[derive(Default)]
    struct Fake {
        fail: Mutex<Option<RelayError>>,
        taken: Mutex<Vec<Vec<u8>>>,
    }

    impl Relay for Fake {
        async fn send(&self, email: lettre::Message) -> Result<(), RelayError> {
            if let Some(e) = self.fail.lock().unwrap().clone() {
                return Err(e);
            }
            self.taken.lock().unwrap().push(email.formatted());
            Ok(())
        }
    }

    fn mailbox_with(store: &Store, mode: EmailMode) {
        create_mailbox(
            store,
            "201",
            &MailboxUpdate {
                name: Some("Alice".into()),
                email: Some("alice@example.com".into()),
                email_mode: Some(mode),
                ..Default::default()
            },
        )
        .unwrap();
    }

    fn parse(bytes: &[u8]) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(bytes)
            .expect("valid MIME")
    }

    #[test]
    fn templates() {
        assert!(check_template("New voicemail from {caller} for {mailbox}").is_ok());
        assert!(check_template("no placeholders").is_ok());
        assert!(check_template("{caler}").unwrap_err().contains("caler"));
        assert!(check_template("{mailbox").is_err());
        assert_eq!(
            fill_template(
                "{caller} → {mailbox} {unknown}\r\nx",
                &[("caller", "300".into()), ("mailbox", "201".into())]
            ),
            "300 → 201 {unknown}  x"
        );
        assert!(parse_address("vflow <vm@example.com>").is_ok());
        assert!(parse_address("not an address").is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_then_gives_up() {
        let c = cfg();
        let secs: Vec<u64> = (0..7).map(|n| backoff(&c, n).as_secs()).collect();
        assert_eq!(secs, vec![30, 60, 120, 240, 480, 600, 600]);
        assert_eq!(backoff(&c, u32::MAX).as_secs(), 600);
        let item = OutboxItem {
            id: 1,
            kind: KIND.into(),
            mailbox: None,
            message_id: None,
            payload: "{}".into(),
            created_ms: 1_000_000,
            attempts: 2,
            next_attempt_ms: 0,
            last_error: None,
        };
        assert_eq!(
            after_failure(&c, &item, 1_000_000 + 5_000),
            Verdict::RetryAt(1_000_000 + 5_000 + 120_000)
        );
        assert_eq!(
            after_failure(&c, &item, 1_000_000 + 3_600_000),
            Verdict::GiveUp
        );
        let forever = EmailConfig {
            give_up_after: None,
            ..cfg()
        };
        assert!(matches!(
            after_failure(&forever, &item, i64::MAX / 2),
            Verdict::RetryAt(_)
        ));
    }

    #[test]
    fn an_attach_email_carries_the_wav_byte_for_byte() {
        let (store, _dir) = temp_store("mail-attach");
        mailbox_with(&store, EmailMode::Attach);
        let m = add_message(&store, "201", 1_790_000_000_000);
        let item = store.outbox_due(KIND, i64::MAX, 10).unwrap().remove(0);
        let c = compose(&store, &ctx(), &item).unwrap();
        assert_eq!(c.forward, None);
        let bytes = c.email.formatted();
        let mail = parse(&bytes);
        assert_eq!(
            mail.subject(),
            Some("Voicemail for 201 (Alice) from 300, 0:00")
        );
        assert_eq!(
            mail.to().and_then(|a| a.first()).and_then(|a| a.address()),
            Some("alice@example.com")
        );
        assert_eq!(
            mail.from()
                .and_then(|a| a.first())
                .and_then(|a| a.address()),
            Some("voicemail@localhost")
        );
        let text = mail.body_text(0).unwrap();
        assert!(
            text.contains("mailbox 201 (Alice)")
                && text.contains("From:     300")
                && text.contains(&m.id),
            "{text}"
        );
        assert!(text.contains("2026-09-21 14:13 UTC"), "{text}");
        assert_eq!(mail.attachment_count(), 1);
        let att = mail.attachment(0).unwrap();
        assert_eq!(
            att.attachment_name(),
            Some("voicemail-201-20260921-141320.wav")
        );
        assert_eq!(
            att.content_type().map(|t| (t.ctype(), t.subtype())),
            Some(("audio", Some("wav")))
        );
        let wav = std::fs::read(store.message_path("201", &m.id)).unwrap();
        assert_eq!(
            att.contents(),
            wav.as_slice(),
            "the attachment is the stored WAV, byte for byte"
        );
    }

    #[test]
    fn a_notify_email_has_no_audio() {
        let (store, _dir) = temp_store("mail-notify");
        mailbox_with(&store, EmailMode::Notify);
        add_message(&store, "201", 1_790_000_000_000);
        let item = store.outbox_due(KIND, i64::MAX, 10).unwrap().remove(0);
        let bytes = compose(&store, &ctx(), &item).unwrap().email.formatted();
        let mail = parse(&bytes);
        assert_eq!(mail.attachment_count(), 0);
        assert!(mail.body_text(0).unwrap().contains("Call your voicemail"));
    }

    #[tokio::test]
    async fn a_forwarded_message_stays_until_a_flow_email_attaching_it_is_sent() {
        let (store, _dir) = temp_store("mail-forward-attach");
        mailbox_with(&store, EmailMode::Forward);
        let m = add_message(&store, "201", 1_790_000_000_000);
        let rel = store
            .message_path("201", &m.id)
            .strip_prefix(store.root())
            .unwrap()
            .display()
            .to_string();
        queue_flow_email(
            &store,
            "boss@example.com",
            "copy",
            "attached",
            Some((&rel, Some(&m.id))),
        )
        .unwrap();
        let relay = Fake::default();
        let r = drain(&store, &cfg(), &ctx(), &relay, i64::MAX / 2)
            .await
            .unwrap();
        // Both emails carry the audio; only then is the message gone.
        assert_eq!(r.sent, 2);
        let taken = relay.taken.lock().unwrap();
        for raw in taken.iter() {
            assert!(parse(raw).attachment(0).is_some());
        }
        assert!(store.message(&m.id).unwrap().is_none());
        assert!(!store.message_path("201", &m.id).exists());
    }

    #[tokio::test]
    async fn forward_removes_the_message_only_once_the_relay_took_it() {
        let (store, _dir) = temp_store("mail-forward");
        mailbox_with(&store, EmailMode::Forward);
        let m = add_message(&store, "201", 1_790_000_000_000);
        let wav = std::fs::read(store.message_path("201", &m.id)).unwrap();
        let relay = Fake::default();
        *relay.fail.lock().unwrap() = Some(RelayError {
            permanent: false,
            message: "421 try later".into(),
        });
        let c = cfg();

        // The relay is down: the message stays, the entry waits 30 s.
        let t0 = now_ms();
        let r = drain(&store, &c, &ctx(), &relay, t0).await.unwrap();
        assert_eq!((r.sent, r.failed), (0, 1));
        assert!(store.message(&m.id).unwrap().is_some());
        assert!(store.message_path("201", &m.id).is_file());
        let next = r.next_due_ms.unwrap();
        assert!((29_000..=31_000).contains(&(next - t0)), "{}", next - t0);
        // Not due yet: nothing happens.
        let r = drain(&store, &c, &ctx(), &relay, t0 + 1_000).await.unwrap();
        assert_eq!((r.sent, r.failed), (0, 0));
        // Down again: the wait doubles.
        let r = drain(&store, &c, &ctx(), &relay, next).await.unwrap();
        assert_eq!(r.failed, 1);
        let pending = store.outbox_due(KIND, i64::MAX, 10).unwrap();
        assert_eq!(
            (pending[0].attempts, pending[0].last_error.as_deref()),
            (2, Some("421 try later"))
        );
        assert!((59_000..=61_000).contains(&(pending[0].next_attempt_ms - now_ms())));

        // Up: accepted, then removed; the queue is empty.
        *relay.fail.lock().unwrap() = None;
        let r = drain(&store, &c, &ctx(), &relay, i64::MAX / 2)
            .await
            .unwrap();
        assert_eq!((r.sent, r.next_due_ms), (1, None));
        assert!(store.message(&m.id).unwrap().is_none());
        assert!(!store.message_path("201", &m.id).exists());
        let taken = relay.taken.lock().unwrap();
        let mail = parse(&taken[0]);
        assert_eq!(mail.attachment(0).unwrap().contents(), wav.as_slice());
        assert!(mail.body_text(0).unwrap().contains("no longer kept"));
    }

    #[tokio::test]
    async fn a_relay_failing_past_give_up_drops_the_email_not_the_message() {
        let (store, _dir) = temp_store("mail-giveup");
        mailbox_with(&store, EmailMode::Forward);
        let m = add_message(&store, "201", 1_790_000_000_000);
        let relay = Fake::default();
        *relay.fail.lock().unwrap() = Some(RelayError {
            permanent: true,
            message: "550 no such user".into(),
        });
        let c = EmailConfig {
            give_up_after: Some(Duration::from_millis(1)),
            ..cfg()
        };
        std::thread::sleep(Duration::from_millis(5));
        let r = drain(&store, &c, &ctx(), &relay, now_ms()).await.unwrap();
        assert_eq!((r.given_up, r.next_due_ms), (1, None));
        assert!(
            store.message(&m.id).unwrap().is_some(),
            "the voicemail stays"
        );
    }

    #[tokio::test]
    async fn flow_emails_with_and_without_a_recording_and_obsolete_entries() {
        let (store, root) = temp_store("mail-flow");
        create_mailbox(&store, "201", &MailboxUpdate::default()).unwrap();
        let mut rec = store.begin_recording("r").unwrap();
        rec.append(&[1, 2, 3, 4, 5, 6]).unwrap();
        let path = store.commit_recording(rec, "survey-1").unwrap();
        let rel = path
            .strip_prefix(&root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        queue_flow_email(
            &store,
            "ops@example.com",
            "Survey",
            "A comment came in.",
            Some((&rel, None)),
        )
        .unwrap();
        queue_flow_email(&store, "Ops <ops@example.com>", "Plain", "No audio.", None).unwrap();
        // A message that went away before its email: dropped, not retried.
        store
            .outbox_push(
                KIND,
                Some("201"),
                Some("gone"),
                r#"{"email":"a@example.com","mode":"attach"}"#,
            )
            .unwrap();
        let relay = Fake::default();
        let r = drain(&store, &cfg(), &ctx(), &relay, i64::MAX / 2)
            .await
            .unwrap();
        assert_eq!((r.sent, r.obsolete, r.failed), (2, 1, 0));
        let taken = relay.taken.lock().unwrap();
        let a = parse(&taken[0]);
        assert_eq!(a.subject(), Some("Survey"));
        assert_eq!(
            a.attachment(0).unwrap().contents(),
            std::fs::read(&path).unwrap().as_slice()
        );
        assert_eq!(
            a.attachment(0).unwrap().attachment_name(),
            Some("survey-1.wav")
        );
        let b = parse(&taken[1]);
        assert_eq!((b.subject(), b.attachment_count()), (Some("Plain"), 0));
        assert_eq!(
            b.body_text(0).as_deref().map(str::trim_end),
            Some("No audio.")
        );
    }
}
