//! RFC 4733 telephone events: the 4-byte payload (view + repr), a receiver
//! that reports each key press once, and a sender.
//!
//! Reporting policy: a digit is reported **at first sight** of its event, not
//! at its end. That is what a menu wants (the caller hears the prompt stop as
//! soon as the key goes down), and it still works when every end packet is
//! lost. An event is identified by its RTP timestamp (the event's start,
//! RFC 4733 §2.5.1.2): updates and the three retransmitted end packets carry
//! the same timestamp and are dropped as repeats.

use super::{Digit, DtmfSource, event_key};

/// One telephone-event payload.
///
/// ```text
///  0                   1                   2                   3
/// |     event     |E|R| volume    |          duration             |
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub event: u8,
    pub end: bool,
    /// Power level in -dBm0 (0-63).
    pub volume: u8,
    /// In timestamp units (samples at 8 kHz) since the event started.
    pub duration: u16,
}

impl TelephoneEvent {
    pub const LEN: usize = 4;

    /// Parses the first four bytes of a payload (more may follow in a
    /// redundant RFC 2198 block; they are ignored). `None` if too short.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let b: &[u8; 4] = payload.get(..4)?.try_into().ok()?;
        Some(TelephoneEvent {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3F,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    pub fn emit(&self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }
}

/// Timestamps of recently reported events, enough to absorb reordered
/// retransmissions of the previous events.
const REMEMBER: usize = 4;

/// Turns telephone-event packets into digits, once per event.
#[derive(Debug, Clone, Default)]
pub struct EventReceiver {
    seen: [Option<u32>; REMEMBER],
    next: usize,
}

impl EventReceiver {
    /// Handles one telephone-event packet (`timestamp` from its RTP header).
    /// Returns the digit if this packet is the first sight of a key event.
    pub fn handle(&mut self, timestamp: u32, payload: &[u8]) -> Option<Digit> {
        let ev = TelephoneEvent::parse(payload)?;
        let key = event_key(ev.event)?;
        if self.seen.contains(&Some(timestamp)) {
            return None;
        }
        self.seen[self.next] = Some(timestamp);
        self.next = (self.next + 1) % REMEMBER;
        Some(Digit {
            key,
            source: DtmfSource::Rfc4733,
        })
    }
}

/// Sends one key as telephone events, one packet per 20 ms frame: the first
/// with the marker bit, then updates with a growing duration, then the end
/// packet three times (RFC 4733 §2.5.1.4), all with the start timestamp.
#[derive(Debug, Clone)]
pub struct EventSender {
    event: u8,
    /// Duration of the tone in samples.
    total: u16,
    /// Packets produced so far.
    sent: u16,
    end_sent: u8,
}

/// Volume of sent events: -10 dBm0, a typical key.
const SEND_VOLUME: u8 = 10;

impl EventSender {
    /// `duration_ms` is clamped to 40..=2000 ms.
    pub fn new(key: char, duration_ms: u32) -> Option<Self> {
        let event = super::event_code(key)?;
        let ms = duration_ms.clamp(40, 2000);
        Some(EventSender {
            event,
            total: (ms * 8) as u16,
            sent: 0,
            end_sent: 0,
        })
    }

    /// The payload for the next 20 ms, and whether it carries the marker bit;
    /// `None` once the last end packet has been sent.
    pub fn next_packet(&mut self) -> Option<([u8; 4], bool)> {
        if self.end_sent == 3 {
            return None;
        }
        self.sent += 1;
        let elapsed = self.sent.saturating_mul(160);
        let end = elapsed >= self.total;
        let ev = TelephoneEvent {
            event: self.event,
            end,
            volume: SEND_VOLUME,
            duration: elapsed.min(self.total),
        };
        if end {
            self.end_sent += 1;
        }
        Some((ev.emit(), self.sent == 1))
    }

    pub fn is_done(&self) -> bool {
        self.end_sent == 3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips() {
        let ev = TelephoneEvent {
            event: 11,
            end: true,
            volume: 10,
            duration: 1600,
        };
        let b = ev.emit();
        assert_eq!(b, [11, 0x8A, 0x06, 0x40]);
        assert_eq!(TelephoneEvent::parse(&b), Some(ev));
        assert_eq!(TelephoneEvent::parse(&b[..3]), None);
    }

    #[test]
    fn one_digit_per_event_despite_updates_and_three_ends() {
        let mut rx = EventReceiver::default();
        let mut tx = EventSender::new('5', 100).unwrap();
        let mut digits = vec![];
        let mut packets = 0;
        while let Some((p, marker)) = tx.next_packet() {
            assert_eq!(marker, packets == 0);
            packets += 1;
            digits.extend(rx.handle(4000, &p));
        }
        assert_eq!(
            packets,
            5 + 2,
            "5 packets of 20 ms, the end one sent 3 times"
        );
        assert_eq!(
            digits,
            vec![Digit {
                key: '5',
                source: DtmfSource::Rfc4733
            }]
        );
        assert!(tx.is_done());
        // The same key pressed again is a new event with a new timestamp.
        let again = TelephoneEvent {
            event: 5,
            end: false,
            volume: 10,
            duration: 160,
        };
        assert_eq!(rx.handle(4800, &again.emit()).map(|d| d.key), Some('5'));
    }

    #[test]
    fn only_end_packets_still_report_and_late_repeats_do_not() {
        let mut rx = EventReceiver::default();
        let end = |e| {
            TelephoneEvent {
                event: e,
                end: true,
                volume: 10,
                duration: 800,
            }
            .emit()
        };
        assert_eq!(rx.handle(100, &end(11)).map(|d| d.key), Some('#'));
        assert_eq!(rx.handle(900, &end(1)).map(|d| d.key), Some('1'));
        assert_eq!(
            rx.handle(100, &end(11)),
            None,
            "reordered repeat of the first"
        );
        assert_eq!(rx.handle(1700, &end(16)), None, "flash is not a key");
        assert_eq!(rx.handle(1800, &[1, 2]), None, "short payload");
    }
}
