//! RTP packets: a checked view over received bytes ([`RtpPacket::parse`], on
//! top of rtp-rs), sequence tracking for duplicates, reordering and loss
//! ([`SeqTracker`]), and the send side ([`Packetizer`]) that writes into a
//! caller-provided buffer.
//!
//! rtp-rs parses and builds packets only (no RTCP, no jitter buffer); its
//! error types do not implement `std::error::Error`, so they are mapped onto
//! [`RtpError`] here and nowhere else.

use rtp_rs::{RtpPacketBuildError, RtpPacketBuilder, RtpReader, RtpReaderError, Seq};
use std::fmt;

/// Why a datagram was not accepted as media, or a packet could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtpError {
    /// Shorter than the 12-byte fixed header.
    TooShort { len: usize },
    /// The version field is not 2.
    Version(u8),
    /// CSRC list or header extension runs past the end of the datagram.
    HeadersTruncated { header_len: usize, len: usize },
    /// The padding count is 0 or larger than the payload.
    BadPadding(u8),
    /// A payload type that was not negotiated (comfort noise, video, …).
    PayloadType(u8),
    /// The output buffer cannot hold the packet.
    BufferTooSmall { need: usize, have: usize },
    /// rtp-rs refused to build the packet (payload type above 127).
    Build(String),
}

impl fmt::Display for RtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RtpError::TooShort { len } => write!(f, "RTP datagram of {len} bytes is too short"),
            RtpError::Version(v) => write!(f, "RTP version {v}, expected 2"),
            RtpError::HeadersTruncated { header_len, len } => {
                write!(f, "RTP headers need {header_len} bytes, datagram has {len}")
            }
            RtpError::BadPadding(n) => write!(f, "RTP padding length {n} is invalid"),
            RtpError::PayloadType(pt) => write!(f, "RTP payload type {pt} was not negotiated"),
            RtpError::BufferTooSmall { need, have } => {
                write!(f, "RTP packet needs {need} bytes, buffer has {have}")
            }
            RtpError::Build(e) => write!(f, "cannot build RTP packet: {e}"),
        }
    }
}

impl std::error::Error for RtpError {}

impl From<RtpReaderError> for RtpError {
    fn from(e: RtpReaderError) -> Self {
        match e {
            RtpReaderError::BufferTooShort(len) => RtpError::TooShort { len },
            RtpReaderError::UnsupportedVersion(v) => RtpError::Version(v),
            RtpReaderError::HeadersTruncated {
                header_len,
                buffer_len,
            } => RtpError::HeadersTruncated {
                header_len,
                len: buffer_len,
            },
            RtpReaderError::PaddingLengthInvalid(n) => RtpError::BadPadding(n),
        }
    }
}

impl From<RtpPacketBuildError> for RtpError {
    fn from(e: RtpPacketBuildError) -> Self {
        RtpError::Build(format!("{e:?}"))
    }
}

/// The fields of a received packet that the media layer uses. After
/// [`RtpPacket::parse`] succeeds every field is in bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub payload_type: u8,
    pub marker: bool,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// The payload without CSRCs, header extension or padding.
    pub payload: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// Parses and validates one datagram. Never panics, whatever the bytes.
    pub fn parse(datagram: &'a [u8]) -> Result<Self, RtpError> {
        let r = RtpReader::new(datagram)?;
        Ok(RtpPacket {
            payload_type: r.payload_type(),
            marker: r.mark(),
            sequence: u16::from(r.sequence_number()),
            timestamp: r.timestamp(),
            ssrc: r.ssrc(),
            payload: r.payload(),
        })
    }
}

/// Counters for one call's receive side. `lost` is packets never seen
/// (expected minus received, RFC 3550 A.3), so late packets count as lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtpStats {
    /// Packets accepted (audio and telephone-event), duplicates excluded.
    pub received: u64,
    pub duplicates: u64,
    /// Packets that arrived out of order but were still used.
    pub reordered: u64,
    /// Packets too old to use (behind the reorder window or already played out).
    pub late: u64,
    pub lost: u64,
    /// Datagrams that were not RTP.
    pub malformed: u64,
    /// Packets with a payload type that was not negotiated.
    pub wrong_payload_type: u64,
    /// Times the peer's SSRC changed (each restarts sequence tracking).
    pub ssrc_changes: u64,
    /// Streams restarted with the same SSRC after a pause (old sequence numbers).
    pub restarts: u64,
}

/// What [`SeqTracker::accept`] decided about a sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqVerdict {
    /// Newer than anything seen.
    InOrder,
    /// Older than the newest but not seen before, within the window.
    Reordered,
    Duplicate,
    /// Older than the window: cannot tell a duplicate from a very late packet.
    TooOld,
}

/// Tracks extended sequence numbers of one SSRC with a 64-packet window
/// (the RFC 3711 replay-window technique): O(1), no allocation.
#[derive(Debug, Clone, Default)]
pub struct SeqTracker {
    started: bool,
    first: u64,
    highest: u64,
    /// Bit i set: sequence `highest - i` was received.
    window: u64,
    unique: u64,
}

const WINDOW: u64 = 64;

impl SeqTracker {
    pub fn accept(&mut self, seq: u16) -> SeqVerdict {
        if !self.started {
            // Start one cycle up so that reordered packets before the first
            // one still have a non-negative extended number.
            self.started = true;
            self.first = (1 << 16) | u64::from(seq);
            self.highest = self.first;
            self.window = 1;
            self.unique = 1;
            return SeqVerdict::InOrder;
        }
        let delta = seq.wrapping_sub(self.highest as u16) as i16 as i64;
        if delta > 0 {
            let d = delta as u64;
            self.window = if d >= WINDOW {
                1
            } else {
                (self.window << d) | 1
            };
            self.highest += d;
            self.unique += 1;
            SeqVerdict::InOrder
        } else if delta == 0 {
            SeqVerdict::Duplicate
        } else {
            let age = (-delta) as u64;
            if age >= WINDOW {
                return SeqVerdict::TooOld;
            }
            if self.window & (1 << age) != 0 {
                return SeqVerdict::Duplicate;
            }
            self.window |= 1 << age;
            self.unique += 1;
            if self.highest - age < self.first {
                self.first = self.highest - age;
            }
            SeqVerdict::Reordered
        }
    }

    /// Packets expected (first to highest) but not received.
    pub fn lost(&self) -> u64 {
        if !self.started {
            return 0;
        }
        (self.highest - self.first + 1).saturating_sub(self.unique)
    }
}

/// The send side of one RTP stream: SSRC, sequence numbers and the marker bit
/// on the first packet. Timestamps are chosen by the caller (the session keeps
/// them in step with the wall clock).
#[derive(Debug, Clone)]
pub struct Packetizer {
    ssrc: u32,
    next_seq: u16,
    first: bool,
}

impl Packetizer {
    /// `ssrc` and `initial_seq` should be random (RFC 3550 §5.1); the driver
    /// supplies them so this stays deterministic.
    pub fn new(ssrc: u32, initial_seq: u16) -> Self {
        Packetizer {
            ssrc,
            next_seq: initial_seq,
            first: true,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The sequence number the next packet will carry.
    pub fn next_sequence(&self) -> u16 {
        self.next_seq
    }

    /// Writes one packet into `out` and returns its length. The marker bit is
    /// set on the stream's first packet, or when `marker` asks for it (the
    /// first packet of a telephone event). The sequence number advances only
    /// on success.
    pub fn write(
        &mut self,
        payload_type: u8,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, RtpError> {
        let builder = RtpPacketBuilder::new()
            .payload_type(payload_type)
            .marked(marker || self.first)
            .sequence(Seq::from(self.next_seq))
            .timestamp(timestamp)
            .ssrc(self.ssrc)
            .payload(payload);
        let need = builder.target_length();
        if out.len() < need {
            return Err(RtpError::BufferTooSmall {
                need,
                have: out.len(),
            });
        }
        let n = builder.build_into(out)?;
        self.first = false;
        self.next_seq = self.next_seq.wrapping_add(1);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packetizer_round_trips_through_the_parser() {
        let mut p = Packetizer::new(0xDEADBEEF, 65535);
        let mut buf = [0u8; 200];
        let payload = [0x55u8; 160];
        let n = p.write(8, 1000, false, &payload, &mut buf).unwrap();
        assert_eq!(n, 172);
        let pkt = RtpPacket::parse(&buf[..n]).unwrap();
        assert_eq!(pkt.payload_type, 8);
        assert!(pkt.marker, "first packet carries the marker");
        assert_eq!(pkt.sequence, 65535);
        assert_eq!(pkt.timestamp, 1000);
        assert_eq!(pkt.ssrc, 0xDEADBEEF);
        assert_eq!(pkt.payload, &payload[..]);

        let n = p.write(8, 1160, false, &payload, &mut buf).unwrap();
        let pkt = RtpPacket::parse(&buf[..n]).unwrap();
        assert!(!pkt.marker);
        assert_eq!(pkt.sequence, 0, "sequence wraps");
    }

    #[test]
    fn packetizer_reports_a_small_buffer_and_keeps_its_sequence() {
        let mut p = Packetizer::new(1, 7);
        let mut buf = [0u8; 100];
        let err = p.write(0, 0, false, &[0; 160], &mut buf).unwrap_err();
        assert_eq!(
            err,
            RtpError::BufferTooSmall {
                need: 172,
                have: 100
            }
        );
        assert_eq!(p.next_sequence(), 7);
        assert!(matches!(
            p.write(200, 0, false, &[0; 10], &mut [0; 64]),
            Err(RtpError::Build(_))
        ));
    }

    #[test]
    fn parse_errors_are_wrapped() {
        assert_eq!(
            RtpPacket::parse(&[0x80; 5]),
            Err(RtpError::TooShort { len: 5 })
        );
        assert_eq!(RtpPacket::parse(&[0x40; 12]), Err(RtpError::Version(1)));
        // CSRC count 15 with no room for the list.
        let mut b = [0u8; 12];
        b[0] = 0x8F;
        assert!(matches!(
            RtpPacket::parse(&b),
            Err(RtpError::HeadersTruncated { .. })
        ));
        // Padding flag with a zero padding count.
        let mut b = [0u8; 13];
        b[0] = 0xA0;
        assert!(matches!(RtpPacket::parse(&b), Err(RtpError::BadPadding(0))));
        assert!(RtpError::Version(1).to_string().contains("version 1"));
    }

    #[test]
    fn parse_never_panics_on_garbage() {
        // A cheap deterministic fuzz: every length up to 40 with patterned bytes.
        let mut x: u32 = 12345;
        for _ in 0..20_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let len = (x >> 16) as usize % 40;
            let mut b = [0u8; 40];
            for (i, v) in b.iter_mut().enumerate() {
                *v = (x.rotate_left(i as u32) >> 3) as u8;
            }
            b[0] = (b[0] & 0x3F) | 0x80;
            let _ = RtpPacket::parse(&b[..len]);
        }
    }

    #[test]
    fn seq_tracker_counts_duplicates_reordering_and_loss() {
        let mut t = SeqTracker::default();
        assert_eq!(t.accept(65534), SeqVerdict::InOrder);
        assert_eq!(t.accept(65535), SeqVerdict::InOrder);
        assert_eq!(t.accept(1), SeqVerdict::InOrder); // wrapped, 0 missing
        assert_eq!(t.lost(), 1);
        assert_eq!(t.accept(0), SeqVerdict::Reordered);
        assert_eq!(t.lost(), 0);
        assert_eq!(t.accept(0), SeqVerdict::Duplicate);
        assert_eq!(t.accept(1), SeqVerdict::Duplicate);
        assert_eq!(
            t.accept(65533),
            SeqVerdict::Reordered,
            "before the first one"
        );
        assert_eq!(t.accept(200), SeqVerdict::InOrder);
        assert_eq!(t.lost(), 198);
        assert_eq!(t.accept(100), SeqVerdict::TooOld);
    }
}
