//! `vflow mailbox`: administer mailboxes and their messages in a data
//! directory (the server may be running: SQLite serialises the writers, and
//! this tool never touches recordings in flight).
//!
//! Exit codes: 0 done, 1 refused (unknown mailbox or message, PIN policy,
//! mailbox exists, mailbox not empty without `--force`), 2 usage or I/O error.

use crate::config::{Config, duration_text};
use crate::store::{Folder, Store, StoreError};
use crate::voicemail::{self, EmailMode, Mailbox, MailboxUpdate, pin};
use serde_json::json;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct MailboxArgs {
    /// The server configuration: its data directory, PIN policy and time zone.
    #[arg(
        long,
        short,
        global = true,
        value_name = "FILE",
        conflicts_with = "data_dir"
    )]
    pub config: Option<PathBuf>,
    /// The data directory, with the default policy (instead of --config).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: MailboxCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum MailboxCommand {
    /// Create a mailbox.
    Add {
        id: String,
        #[command(flatten)]
        fields: Fields,
    },
    /// Change a mailbox.
    Set {
        id: String,
        #[command(flatten)]
        fields: Fields,
        /// Remove the PIN (no remote access until one is set).
        #[arg(long, conflicts_with_all = ["pin", "pin_stdin"])]
        no_pin: bool,
        /// Clear wrong-PIN failures and any lockout.
        #[arg(long)]
        unlock: bool,
        /// Go back to the configured message limits.
        #[arg(long, conflicts_with_all = ["max_messages", "max_length"])]
        default_limits: bool,
    },
    /// List mailboxes with their message counts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one mailbox (never its PIN or hash).
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// List a mailbox's messages, oldest first.
    Messages {
        id: String,
        /// Only this folder: new, saved or deleted.
        #[arg(long)]
        folder: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Delete a mailbox (with --force if it holds messages), or one message with --message.
    Delete {
        id: String,
        /// The message's id (from `vflow mailbox messages`).
        #[arg(long, value_name = "UUID")]
        message: Option<String>,
        /// Delete a mailbox even if it holds messages.
        #[arg(long)]
        force: bool,
    },
}

#[derive(clap::Args, Debug)]
pub struct Fields {
    /// The owner's name.
    #[arg(long)]
    pub name: Option<String>,
    /// The PIN (checked against the policy, stored as an argon2 hash). Visible
    /// to other local users in the process list: prefer --pin-stdin.
    #[arg(long, conflicts_with = "pin_stdin")]
    pub pin: Option<String>,
    /// Read the PIN from the first line of standard input.
    #[arg(long)]
    pub pin_stdin: bool,
    /// Where voicemail-to-email goes.
    #[arg(long)]
    pub email: Option<String>,
    /// off, notify, attach or forward.
    #[arg(long, value_name = "MODE")]
    pub email_mode: Option<String>,
    /// Where message-waiting NOTIFYs go, e.g. `sip:201@192.0.2.5:5060` (UDP);
    /// `""` for nowhere (phones can still SUBSCRIBE).
    #[arg(long, value_name = "SIP-URI")]
    pub mwi: Option<String>,
    /// New and saved messages before the mailbox is full.
    #[arg(long, value_name = "N")]
    pub max_messages: Option<u32>,
    /// The longest message, e.g. `120s`, `3m`.
    #[arg(long, value_name = "DURATION")]
    pub max_length: Option<String>,
}

/// A refusal (exit 1) or an I/O failure (exit 2), with its message.
enum Failure {
    Refused(String),
    Io(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) | StoreError::Invalid(_) => Failure::Refused(e.to_string()),
            _ => Failure::Io(e.to_string()),
        }
    }
}

pub fn run(args: MailboxArgs) -> ExitCode {
    match run_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Refused(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(1)
        }
        Err(Failure::Io(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(2)
        }
    }
}

fn run_inner(args: MailboxArgs) -> Result<(), Failure> {
    let config = match (&args.config, &args.data_dir) {
        (Some(p), _) => Config::load(p).map_err(|e| Failure::Io(e.to_string()))?,
        (None, Some(d)) => {
            let mut c = Config::default();
            c.node.data_dir = d.clone();
            c
        }
        (None, None) => Config::default(),
    };
    let store = Store::open(&config.node.data_dir).map_err(|e| {
        Failure::Io(format!(
            "cannot open the store in `{}`: {e}",
            config.node.data_dir.display()
        ))
    })?;
    let tz = match &config.node.time_zone {
        Some(name) => jiff::tz::TimeZone::get(name).map_err(|e| Failure::Io(e.to_string()))?,
        None => jiff::tz::TimeZone::system(),
    };
    let vm = &config.voicemail;
    match args.command {
        MailboxCommand::Add { id, fields } => {
            let u = update_from(&id, &fields, vm)?;
            let m = voicemail::create_mailbox(&store, &id, &u)?;
            println!(
                "created mailbox {}{}",
                m.id,
                if m.has_pin() {
                    " (PIN set)"
                } else {
                    " (no PIN: no remote access)"
                }
            );
        }
        MailboxCommand::Set {
            id,
            fields,
            no_pin,
            unlock,
            default_limits,
        } => {
            let mut u = update_from(&id, &fields, vm)?;
            if no_pin {
                u.pin_hash = Some(None);
            }
            if default_limits {
                u.max_messages = Some(None);
                u.max_message_ms = Some(None);
            }
            u.unlock = unlock;
            let m = voicemail::update_mailbox(&store, &id, &u)?;
            println!("updated mailbox {}", m.id);
        }
        MailboxCommand::List { json } => {
            let boxes = voicemail::mailboxes(&store)?;
            let now = crate::store::now_ms();
            if json {
                let v: Vec<_> = boxes
                    .iter()
                    .map(|m| Ok(mailbox_json(m, store.counts(&m.id)?, vm, now)))
                    .collect::<Result<_, StoreError>>()?;
                println!(
                    "{}",
                    serde_json::to_string_pretty(&v).expect("JSON values serialize")
                );
            } else if boxes.is_empty() {
                println!("no mailboxes");
            } else {
                println!(
                    "{:<16} {:<20} {:>5} {:>5} {:>7}  {:<4} {:<8} STATUS",
                    "MAILBOX", "NAME", "NEW", "SAVED", "DELETED", "PIN", "EMAIL"
                );
                for m in &boxes {
                    let (n, s, d) = store.counts(&m.id)?;
                    println!(
                        "{:<16} {:<20} {:>5} {:>5} {:>7}  {:<4} {:<8} {}",
                        m.id,
                        m.name,
                        n,
                        s,
                        d,
                        if m.has_pin() { "yes" } else { "no" },
                        m.email_mode,
                        status(m, now)
                    );
                }
            }
        }
        MailboxCommand::Show { id, json } => {
            let m = voicemail::mailbox(&store, &id)?
                .ok_or_else(|| Failure::Refused(format!("mailbox `{id}` not found")))?;
            let counts = store.counts(&id)?;
            let now = crate::store::now_ms();
            let greetings = store.greetings(&id)?;
            if json {
                let mut v = mailbox_json(&m, counts, vm, now);
                v["greetings"] = greetings
                    .iter()
                    .map(|g| json!({"kind": g.kind, "active": g.active, "duration_ms": g.duration_ms}))
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&v).expect("JSON values serialize")
                );
            } else {
                println!("mailbox       {}", m.id);
                println!("name          {}", m.name);
                println!(
                    "PIN           {}",
                    if m.has_pin() {
                        "set"
                    } else {
                        "not set (no remote access)"
                    }
                );
                println!("status        {}", status(&m, now));
                println!(
                    "email         {} ({})",
                    if m.email.is_empty() { "-" } else { &m.email },
                    m.email_mode
                );
                println!(
                    "mwi           {}",
                    if m.mwi.is_empty() { "-" } else { &m.mwi }
                );
                println!(
                    "limits        {} messages{}, {} each{}",
                    m.message_limit(vm),
                    if m.max_messages.is_none() {
                        " (default)"
                    } else {
                        ""
                    },
                    voicemail::short_duration(std::time::Duration::from_millis(
                        m.length_limit_ms(vm)
                    )),
                    if m.max_message_ms.is_none() {
                        " (default)"
                    } else {
                        ""
                    }
                );
                println!(
                    "messages      {} new, {} saved, {} deleted",
                    counts.0, counts.1, counts.2
                );
                let active: Vec<&str> = greetings
                    .iter()
                    .filter(|g| g.active)
                    .map(|g| g.kind.as_str())
                    .collect();
                println!(
                    "greetings     {}",
                    if active.is_empty() {
                        "default".to_string()
                    } else {
                        active.join(", ")
                    }
                );
            }
        }
        MailboxCommand::Messages { id, folder, json } => {
            if voicemail::mailbox(&store, &id)?.is_none() {
                return Err(Failure::Refused(format!("mailbox `{id}` not found")));
            }
            let folder = match folder.as_deref() {
                Some(f) => Some(Folder::parse(f).ok_or_else(|| {
                    Failure::Refused(format!("unknown folder `{f}`; use new, saved or deleted"))
                })?),
                None => None,
            };
            let msgs = store.messages(&id, folder)?;
            if json {
                let v: Vec<_> = msgs
                    .iter()
                    .map(|m| {
                        json!({
                            "id": m.id, "folder": m.folder.as_str(), "caller": m.caller, "caller_name": m.caller_name,
                            "received": local_time(m.received_ms, &tz), "received_ms": m.received_ms,
                            "duration_ms": m.duration_ms, "priority": m.priority, "origin_node": m.origin_node,
                            "call_id": m.call_id,
                            "audio": store.message_path(&m.mailbox, &m.id).is_file(),
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&v).expect("JSON values serialize")
                );
            } else if msgs.is_empty() {
                println!("no messages");
            } else {
                println!(
                    "{:<36} {:<7} {:<19} {:>6}  {:<16} {:<6}",
                    "ID", "FOLDER", "RECEIVED", "LENGTH", "CALLER", "PRIO"
                );
                for m in &msgs {
                    let missing = if store.message_path(&m.mailbox, &m.id).is_file() {
                        ""
                    } else {
                        "  AUDIO MISSING"
                    };
                    println!(
                        "{:<36} {:<7} {:<19} {:>5}s  {:<16} {:<6}{missing}",
                        m.id,
                        m.folder.as_str(),
                        local_time(m.received_ms, &tz),
                        m.duration_ms.div_ceil(1000),
                        if m.caller.is_empty() {
                            "unknown"
                        } else {
                            &m.caller
                        },
                        m.priority
                    );
                }
            }
        }
        MailboxCommand::Delete {
            id,
            message: Some(msg),
            ..
        } => {
            let m = store.message(&msg)?.filter(|m| m.mailbox == id);
            if m.is_none() {
                return Err(Failure::Refused(format!(
                    "message {msg} not found in mailbox `{id}`"
                )));
            }
            store.remove_message(&msg)?;
            println!("deleted message {msg} of mailbox {id}");
        }
        MailboxCommand::Delete {
            id,
            message: None,
            force,
        } => {
            let (n, s, d) = store.counts(&id)?;
            if voicemail::mailbox(&store, &id)?.is_none() {
                return Err(Failure::Refused(format!("mailbox `{id}` not found")));
            }
            if n + s + d > 0 && !force {
                return Err(Failure::Refused(format!(
                    "mailbox `{id}` holds {} message{}; add --force to delete them with it",
                    n + s + d,
                    if n + s + d == 1 { "" } else { "s" }
                )));
            }
            let gone = voicemail::delete_mailbox(&store, &id)?;
            println!(
                "deleted mailbox {id} and {gone} message{}",
                if gone == 1 { "" } else { "s" }
            );
        }
    }
    Ok(())
}

fn update_from(
    id: &str,
    f: &Fields,
    vm: &crate::config::VoicemailConfig,
) -> Result<MailboxUpdate, Failure> {
    let pin_text = if f.pin_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::Io(format!("cannot read the PIN: {e}")))?;
        Some(line.trim().to_string())
    } else {
        f.pin.clone()
    };
    let pin_hash = match pin_text {
        Some(p) => {
            pin::check_policy(&vm.pin, id, &p)
                .map_err(|v| Failure::Refused(format!("the PIN {v}")))?;
            Some(Some(pin::hash_pin(&p)?))
        }
        None => None,
    };
    let email_mode = match &f.email_mode {
        Some(m) => Some(EmailMode::parse(m).ok_or_else(|| {
            Failure::Refused(format!(
                "unknown email mode `{m}`; use off, notify, attach or forward"
            ))
        })?),
        None => None,
    };
    let max_message_ms = match &f.max_length {
        Some(s) => {
            let d = duration_text::parse(s).map_err(Failure::Refused)?;
            if d.as_millis() < 1000 {
                return Err(Failure::Refused("--max-length must be at least 1s".into()));
            }
            Some(Some(d.as_millis() as u64))
        }
        None => None,
    };
    if f.max_messages == Some(0) {
        return Err(Failure::Refused("--max-messages must be at least 1".into()));
    }
    if let Some(Err(why)) = f
        .mwi
        .as_deref()
        .filter(|m| !m.is_empty())
        .map(voicemail::mwi::Target::parse)
    {
        return Err(Failure::Refused(format!("--mwi {why}")));
    }
    Ok(MailboxUpdate {
        name: f.name.clone(),
        pin_hash,
        email: f.email.clone(),
        email_mode,
        mwi: f.mwi.clone(),
        max_messages: f.max_messages.map(Some),
        max_message_ms,
        unlock: false,
    })
}

fn status(m: &Mailbox, now: i64) -> String {
    if m.locked_at(now) {
        format!(
            "locked for {}s more",
            (m.locked_until_ms.unwrap_or(now) - now + 999) / 1000
        )
    } else if m.failed_pins > 0 {
        format!(
            "{} wrong PIN{}",
            m.failed_pins,
            if m.failed_pins == 1 { "" } else { "s" }
        )
    } else {
        "ok".into()
    }
}

fn mailbox_json(
    m: &Mailbox,
    (n, s, d): (u32, u32, u32),
    vm: &crate::config::VoicemailConfig,
    now: i64,
) -> serde_json::Value {
    json!({
        "id": m.id, "name": m.name, "has_pin": m.has_pin(), "email": m.email, "email_mode": m.email_mode.as_str(), "mwi": m.mwi,
        "max_messages": m.message_limit(vm), "max_message_ms": m.length_limit_ms(vm),
        "failed_pins": m.failed_pins, "locked": m.locked_at(now),
        "new": n, "saved": s, "deleted": d,
    })
}

fn local_time(ms: i64, tz: &jiff::tz::TimeZone) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t
            .to_zoned_datetime(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => ms.to_string(),
    }
}
