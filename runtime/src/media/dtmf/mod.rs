//! DTMF: RFC 4733 telephone events ([`event`]) and in-band tones detected with
//! the Goertzel algorithm ([`inband`]).

pub mod event;
pub mod inband;

pub use event::{EventReceiver, EventSender, TelephoneEvent};
pub use inband::InbandDetector;

/// Where a digit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfSource {
    /// An RFC 4733 telephone-event packet.
    Rfc4733,
    /// A tone in the audio.
    InBand,
}

impl DtmfSource {
    /// A short name for logs and traces.
    pub fn as_str(self) -> &'static str {
        match self {
            DtmfSource::Rfc4733 => "rfc4733",
            DtmfSource::InBand => "inband",
        }
    }
}

/// One key press, reported once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digit {
    /// `0`-`9`, `*`, `#`, `A`-`D`.
    pub key: char,
    pub source: DtmfSource,
}

/// The RFC 4733 event code of a key (0-9, * = 10, # = 11, A-D = 12-15).
pub fn event_code(key: char) -> Option<u8> {
    match key {
        '0'..='9' => Some(key as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(key as u8 - b'A' + 12),
        'a'..='d' => Some(key as u8 - b'a' + 12),
        _ => None,
    }
}

/// The key of an RFC 4733 event code; codes above 15 (flash, tones) are not keys.
pub fn event_key(code: u8) -> Option<char> {
    match code {
        0..=9 => Some((b'0' + code) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + code - 12) as char),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_keys_round_trip() {
        for code in 0..16 {
            assert_eq!(event_code(event_key(code).unwrap()), Some(code));
        }
        assert_eq!(event_key(16), None);
        assert_eq!(event_code('x'), None);
        assert_eq!(event_code('#'), Some(11));
    }
}
