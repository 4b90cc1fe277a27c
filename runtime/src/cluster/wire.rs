//! A forwarded message as MIME: what a backup or distributed node sends the
//! central's SMTP ingress, built with lettre and read back with mail-parser.
//! Sans-IO.
//!
//! The message travels as an email whose attachment is the stored WAV, byte
//! for byte, and whose `X-Vflow-*` headers carry the store row: mailbox,
//! message id (the dedup key on the central), caller and caller name, time
//! received (unix ms), duration (ms), priority, origin node, SIP Call-ID and
//! the flow node that took it. Values are percent-encoded UTF-8, so headers
//! stay ASCII and unfolded. The central trusts none of it blindly:
//! [`parse`] checks every field and the audio before anything is stored.

use crate::store::{Folder, Message, Store};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, MultiPart, SinglePart};

pub const H_MAILBOX: &str = "X-Vflow-Mailbox";
pub const H_MESSAGE_ID: &str = "X-Vflow-Message-Id";
pub const H_CALLER: &str = "X-Vflow-Caller";
pub const H_CALLER_NAME: &str = "X-Vflow-Caller-Name";
pub const H_RECEIVED: &str = "X-Vflow-Received-Ms";
pub const H_DURATION: &str = "X-Vflow-Duration-Ms";
pub const H_PRIORITY: &str = "X-Vflow-Priority";
pub const H_ORIGIN: &str = "X-Vflow-Origin";
pub const H_CALL_ID: &str = "X-Vflow-Call-Id";
pub const H_FLOW_NODE: &str = "X-Vflow-Flow-Node";

/// A forwarded message: its row as the origin stored it, and its WAV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    pub message: Message,
    pub wav: Vec<u8>,
}

/// The SMTP envelope addresses: `vflow@ORIGIN` → `MAILBOX@CENTRAL`.
pub fn envelope(
    m: &Message,
    origin: &str,
    central: &str,
) -> Result<lettre::address::Envelope, String> {
    let from = format!("vflow@{origin}")
        .parse::<lettre::Address>()
        .map_err(|e| format!("sender: {e}"))?;
    let to = format!("{}@{central}", m.mailbox)
        .parse::<lettre::Address>()
        .map_err(|e| format!("recipient: {e}"))?;
    lettre::address::Envelope::new(Some(from), vec![to]).map_err(|e| e.to_string())
}

fn header(name: &'static str, value: impl AsRef<str>) -> HeaderValue {
    HeaderValue::new(
        HeaderName::new_from_ascii_str(name),
        pct_encode(value.as_ref()),
    )
}

/// Header values are percent-encoded UTF-8 (every byte outside a small safe
/// ASCII set), so they are plain ASCII without spaces: no RFC 2047 words and
/// no folding to undo on the other side.
fn pct_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@:+=/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn pct_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The email for a stored message (`wav`: its file, byte for byte).
pub fn build(
    m: &Message,
    wav: Vec<u8>,
    origin: &str,
    central: &str,
) -> Result<lettre::Message, String> {
    let env = envelope(m, origin, central)?;
    let (from, to) = (
        env.from().cloned().ok_or("no sender")?,
        env.to().first().cloned().ok_or("no recipient")?,
    );
    let wav_type = ContentType::parse("audio/wav").map_err(|e| e.to_string())?;
    let body = format!(
        "Voicemail message {} for mailbox {}, taken by {} from {}.\r\n",
        m.id,
        m.mailbox,
        m.origin_node,
        if m.caller.is_empty() {
            "an unknown caller"
        } else {
            &m.caller
        }
    );
    let mut b = lettre::Message::builder()
        .from(lettre::message::Mailbox::new(None, from))
        .to(lettre::message::Mailbox::new(None, to))
        .subject(format!("Voicemail {} for {}", m.id, m.mailbox))
        .message_id(Some(format!("<{}@{}>", m.id, m.origin_node)))
        .user_agent("vflow".into());
    for h in [
        header(H_MAILBOX, &m.mailbox),
        header(H_MESSAGE_ID, &m.id),
        header(H_CALLER, &m.caller),
        header(H_CALLER_NAME, &m.caller_name),
        header(H_RECEIVED, m.received_ms.to_string()),
        header(H_DURATION, m.duration_ms.to_string()),
        header(H_PRIORITY, &m.priority),
        header(H_ORIGIN, &m.origin_node),
        header(H_CALL_ID, &m.call_id),
        header(H_FLOW_NODE, &m.flow_node),
    ] {
        b = b.raw_header(h);
    }
    b.multipart(
        MultiPart::mixed()
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(body),
            )
            .singlepart(Attachment::new(format!("{}.wav", m.id)).body(wav, wav_type)),
    )
    .map_err(|e| format!("cannot build the email: {e}"))
}

/// Why a forwarded email is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `s` is a UUID in its hyphenated lowercase text form (what the store makes).
fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        })
}

/// Reads and checks a forwarded email: every header present and well
/// formed, exactly one WAV attachment that the store can play, and a
/// duration that matches the audio.
pub fn parse(raw: &[u8]) -> Result<Forwarded, Invalid> {
    let bad = |s: String| Invalid(s);
    let mail = mail_parser::MessageParser::default()
        .parse(raw)
        .ok_or_else(|| bad("not a MIME message".into()))?;
    let text = |name: &str, max: usize| -> Result<String, Invalid> {
        let v = mail
            .header_raw(name)
            .ok_or_else(|| bad(format!("no {name} header")))?;
        let s = pct_decode(v.trim())
            .ok_or_else(|| bad(format!("{name} is not percent-encoded UTF-8")))?;
        if s.len() > max || s.chars().any(|c| c.is_control()) {
            return Err(bad(format!(
                "{name} is too long or holds control characters"
            )));
        }
        Ok(s)
    };
    let mailbox = text(H_MAILBOX, 64)?;
    if !Store::valid_name(&mailbox) {
        return Err(bad(format!("{H_MAILBOX} `{mailbox}` is not a mailbox id")));
    }
    let id = text(H_MESSAGE_ID, 36)?;
    if !is_uuid(&id) {
        return Err(bad(format!("{H_MESSAGE_ID} `{id}` is not a message id")));
    }
    let number = |name: &str| -> Result<i64, Invalid> {
        let s = text(name, 20)?;
        s.trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| bad(format!("{name} `{s}` is not a number")))
    };
    let received_ms = number(H_RECEIVED)?;
    let duration_ms = number(H_DURATION)? as u64;
    let priority = text(H_PRIORITY, 16)?;
    if priority != "normal" && priority != "urgent" {
        return Err(bad(format!(
            "{H_PRIORITY} `{priority}` is not normal or urgent"
        )));
    }
    let origin_node = text(H_ORIGIN, 253)?;
    if super::check_node_name(&origin_node).is_err() {
        return Err(bad(format!(
            "{H_ORIGIN} `{origin_node}` is not a node name"
        )));
    }
    let message = Message {
        id,
        mailbox,
        caller: text(H_CALLER, 256)?,
        caller_name: text(H_CALLER_NAME, 256)?,
        received_ms,
        duration_ms,
        folder: Folder::New,
        folder_since_ms: received_ms,
        priority,
        origin_node,
        call_id: text(H_CALL_ID, 256)?,
        flow_node: text(H_FLOW_NODE, 256)?,
    };
    if mail.attachment_count() != 1 {
        return Err(bad(format!(
            "{} attachments; a forwarded message has exactly one WAV",
            mail.attachment_count()
        )));
    }
    let att = mail
        .attachment(0)
        .ok_or_else(|| bad("no attachment".into()))?;
    use mail_parser::MimeHeaders;
    let is_wav = att.content_type().is_some_and(|t| {
        t.ctype() == "audio" && t.subtype().is_some_and(|s| s.eq_ignore_ascii_case("wav"))
    });
    if !is_wav {
        return Err(bad("the attachment is not audio/wav".into()));
    }
    let wav = att.contents().to_vec();
    let samples = crate::media::load_prompt(&format!("{}.wav", message.id), &wav)
        .map_err(|e| bad(format!("the WAV cannot be played: {e}")))?;
    let audio_ms = samples.len() as u64 / 8;
    if audio_ms.abs_diff(message.duration_ms) > 20 {
        return Err(bad(format!(
            "{H_DURATION} says {} ms but the audio lasts {audio_ms} ms",
            message.duration_ms
        )));
    }
    Ok(Forwarded { message, wav })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> (Message, Vec<u8>) {
        let samples: Vec<i16> = (0..8000).map(|i| ((i % 80) * 300 - 12000) as i16).collect();
        let wav = crate::media::pcm16_wav(&samples);
        let m = Message {
            id: "0b7c6f0e-58b4-4a53-9d0e-3c1a2b4d5e6f".into(),
            mailbox: "201".into(),
            caller: "300".into(),
            caller_name: "Zoë Müller \"ZM\"".into(),
            received_ms: 1_790_000_000_123,
            duration_ms: 1000,
            folder: Folder::New,
            folder_since_ms: 1_790_000_000_123,
            priority: "urgent".into(),
            origin_node: "site-1".into(),
            call_id: "a84b4c76e66710@pc33.example.org".into(),
            flow_node: "leave.take".into(),
        };
        (m, wav)
    }

    fn raw(m: &Message, wav: &[u8]) -> Vec<u8> {
        build(m, wav.to_vec(), "site-1", "central")
            .unwrap()
            .formatted()
    }

    #[test]
    fn build_then_parse_gives_the_same_row_and_the_wav_byte_for_byte() {
        let (m, wav) = sample();
        let f = parse(&raw(&m, &wav)).unwrap();
        assert_eq!(f.message, m);
        assert_eq!(f.wav, wav);
        let env = envelope(&m, "site-1", "central").unwrap();
        assert_eq!(env.to()[0].to_string(), "201@central");
    }

    #[test]
    fn every_header_is_checked() {
        let (m, wav) = sample();
        let good = String::from_utf8(raw(&m, &wav)).unwrap();
        let cases = [
            (
                format!("{H_MAILBOX}: 201"),
                format!("{H_MAILBOX}: ../etc"),
                "mailbox",
            ),
            (
                format!("{H_MESSAGE_ID}: {}", m.id),
                format!("{H_MESSAGE_ID}: 42"),
                "message id",
            ),
            (
                format!("{H_DURATION}: 1000"),
                format!("{H_DURATION}: 9000"),
                "audio lasts",
            ),
            (
                format!("{H_DURATION}: 1000"),
                format!("{H_DURATION}: -5"),
                "not a number",
            ),
            (
                format!("{H_PRIORITY}: urgent"),
                format!("{H_PRIORITY}: high"),
                "normal or urgent",
            ),
            (
                format!("{H_ORIGIN}: site-1"),
                format!("{H_ORIGIN}: Site 1"),
                "node name",
            ),
            (
                format!("{H_RECEIVED}: {}", m.received_ms),
                "X-Other: 1".to_string(),
                "no X-Vflow-Received-Ms",
            ),
        ];
        for (from, to, why) in cases {
            assert!(good.contains(&from), "{from} in\n{good}");
            let e = parse(good.replace(&from, &to).as_bytes()).unwrap_err();
            assert!(e.0.contains(why), "{to}: {e}");
        }
        // Not a WAV the store can play.
        let e = parse(&raw(&m, b"RIFF....WAVEjunk")).unwrap_err();
        assert!(e.0.contains("WAV"), "{e}");
        // No attachment at all, or garbage.
        assert!(parse(b"Subject: hi\r\n\r\nhello\r\n").is_err());
        assert!(parse(b"").is_err());
        assert!(parse(&[0xff; 300]).is_err());
    }

    #[test]
    fn percent_encoding_round_trips() {
        for s in ["", "plain", "Zoë \"ZM\" 100%", "a\r\nb", "sip:300@x;tag=1"] {
            let e = pct_encode(s);
            assert!(e.is_ascii() && !e.contains(' ') && !e.contains('\r'), "{e}");
            assert_eq!(pct_decode(&e).as_deref(), Some(s));
        }
        assert_eq!(pct_decode("%4"), None);
        assert_eq!(pct_decode("%zz"), None);
        assert_eq!(pct_decode("%FF"), None);
    }

    #[test]
    fn uuids() {
        assert!(is_uuid("0b7c6f0e-58b4-4a53-9d0e-3c1a2b4d5e6f"));
        assert!(!is_uuid("0B7C6F0E-58B4-4A53-9D0E-3C1A2B4D5E6F"));
        assert!(!is_uuid("0b7c6f0e58b44a539d0e3c1a2b4d5e6f"));
        assert!(!is_uuid("../../../../etc/passwd-aaaaaaaaaaaaaa"));
    }
}
