//! A small jitter buffer for G.711 audio, keyed by RTP timestamp.
//!
//! Packets may carry any whole number of samples (10, 20, 30 ms …); their
//! bytes are written into 20 ms slots by timestamp, so reordered packets land
//! in place and the output is always 160-sample frames in order. A frame is
//! released once the newest data is more than `depth` frames ahead of it (the
//! playout delay); the session also flushes by wall clock when packets stop,
//! so latency stays bounded. A frame nobody wrote is released as
//! [`FrameKind::Lost`] (silence); a partly written one has silence in its gaps.
//!
//! Fixed memory: 16 slots of 160 codes each (2.5 KiB), no allocation.

use super::g711::Law;
use super::{FRAME_SAMPLES, Frame};

/// Slots in the ring: the reorder window plus the playout delay (320 ms).
pub const SLOTS: usize = 16;
/// A timestamp this far behind the playout point starts a new stream instead
/// of being dropped as late (1 s).
const RESTART_BEHIND: i64 = 8000;

/// What one released frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Audio,
    /// No packet covered this frame: it is silence.
    Lost,
}

/// What [`JitterBuffer::push`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    Stored,
    /// Entirely before the playout point: dropped.
    Late,
    /// Too far from the buffered range to store (a timestamp jump, or the end
    /// of a silence-suppressed pause). The caller flushes, calls
    /// [`JitterBuffer::restart`] and pushes again.
    Jump,
}

#[derive(Clone)]
struct Slot {
    index: u64,
    filled: u16,
    codes: [u8; FRAME_SAMPLES],
}

pub struct JitterBuffer {
    law: Law,
    depth: u64,
    slots: [Slot; SLOTS],
    started: bool,
    /// Index and RTP timestamp of the next frame to release.
    next_out: u64,
    next_ts: u32,
    /// One past the newest frame written.
    end: u64,
}

impl JitterBuffer {
    /// `depth` is the playout delay in frames, clamped to 0..=SLOTS-4 so that
    /// some reorder room always remains.
    pub fn new(law: Law, depth: u32) -> Self {
        let empty = Slot {
            index: u64::MAX,
            filled: 0,
            codes: [law.silence_code(); FRAME_SAMPLES],
        };
        JitterBuffer {
            law,
            depth: u64::from(depth).min(SLOTS as u64 - 4),
            slots: std::array::from_fn(|_| empty.clone()),
            started: false,
            next_out: 0,
            next_ts: 0,
            end: 0,
        }
    }

    pub fn law(&self) -> Law {
        self.law
    }

    /// Frames buffered and not yet released (including gaps).
    pub fn buffered(&self) -> u64 {
        self.end.saturating_sub(self.next_out)
    }

    /// Stores the payload of a packet with timestamp `ts`.
    pub fn push(&mut self, ts: u32, payload: &[u8]) -> Push {
        if !self.started {
            self.restart(ts);
        }
        let rel = ts.wrapping_sub(self.next_ts) as i32 as i64;
        let last = rel + payload.len() as i64; // one past the last sample
        if rel <= -RESTART_BEHIND {
            return Push::Jump;
        }
        if last <= 0 {
            return Push::Late;
        }
        if last > (SLOTS * FRAME_SAMPLES) as i64 {
            return Push::Jump;
        }
        // Skip the part that is already played out.
        let skip = (-rel).max(0) as usize;
        let mut pos = rel.max(0) as usize; // sample offset from next_out
        let mut src = &payload[skip..];
        while !src.is_empty() {
            let frame = self.next_out + (pos / FRAME_SAMPLES) as u64;
            let off = pos % FRAME_SAMPLES;
            let n = src.len().min(FRAME_SAMPLES - off);
            let silence = self.law.silence_code();
            let slot = &mut self.slots[(frame % SLOTS as u64) as usize];
            if slot.index != frame {
                slot.index = frame;
                slot.filled = 0;
                slot.codes.fill(silence);
            }
            slot.codes[off..off + n].copy_from_slice(&src[..n]);
            slot.filled = slot.filled.saturating_add(n as u16);
            src = &src[n..];
            pos += n;
            self.end = self.end.max(frame + 1);
        }
        Push::Stored
    }

    /// Releases the next frame if more than `depth` frames are buffered.
    pub fn pop(&mut self, out: &mut Frame) -> Option<FrameKind> {
        if self.buffered() > self.depth {
            Some(self.release(out))
        } else {
            None
        }
    }

    /// Releases the next frame whatever the depth (when packets stopped).
    pub fn flush(&mut self, out: &mut Frame) -> Option<FrameKind> {
        if self.buffered() > 0 {
            Some(self.release(out))
        } else {
            None
        }
    }

    /// Starts a new stream whose first frame has timestamp `ts`. Call after
    /// flushing; anything still buffered is discarded. Returns the number of
    /// frames between the old playout point and `ts` if `ts` is ahead of it
    /// (the length of a silence-suppressed pause), else 0.
    pub fn restart(&mut self, ts: u32) -> u64 {
        let gap = if self.started {
            let rel = ts.wrapping_sub(self.next_ts) as i32 as i64;
            (rel.max(0) as u64) / FRAME_SAMPLES as u64
        } else {
            0
        };
        self.started = true;
        self.next_ts = ts;
        self.next_out = self.end.max(self.next_out);
        self.end = self.next_out;
        gap
    }

    /// Forgets the stream (a new SSRC): the next packet starts a new one.
    /// Call after flushing.
    pub fn reset(&mut self) {
        self.started = false;
        self.next_out = self.end.max(self.next_out);
        self.end = self.next_out;
    }

    fn release(&mut self, out: &mut Frame) -> FrameKind {
        let frame = self.next_out;
        let slot = &mut self.slots[(frame % SLOTS as u64) as usize];
        let kind = if slot.index == frame && slot.filled > 0 {
            self.law.decode(&slot.codes, out);
            FrameKind::Audio
        } else {
            out.fill(0);
            FrameKind::Lost
        };
        slot.index = u64::MAX;
        slot.filled = 0;
        self.next_out += 1;
        self.next_ts = self.next_ts.wrapping_add(FRAME_SAMPLES as u32);
        kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::ulaw_encode;

    /// A payload whose every sample decodes to `v` (µ-law).
    fn payload(v: i16, n: usize) -> Vec<u8> {
        vec![ulaw_encode(v); n]
    }

    fn first_sample(jb: &mut JitterBuffer) -> Option<(FrameKind, i16)> {
        let mut f = [0i16; FRAME_SAMPLES];
        jb.pop(&mut f).map(|k| (k, f[0]))
    }

    #[test]
    fn releases_in_order_after_the_playout_delay() {
        let mut jb = JitterBuffer::new(Law::Ulaw, 2);
        // Frames 0..5 with values 1000, 2000, …; 2 and 1 swapped.
        let order = [0u32, 2, 1, 3, 4];
        let mut got = vec![];
        for i in order {
            assert_eq!(
                jb.push(9000 + i * 160, &payload(1000 * (i as i16 + 1), 160)),
                Push::Stored
            );
            while let Some((k, v)) = first_sample(&mut jb) {
                assert_eq!(k, FrameKind::Audio);
                got.push(v);
            }
        }
        assert_eq!(got.len(), 3, "two of five frames held back");
        let mut f = [0; FRAME_SAMPLES];
        while jb.flush(&mut f).is_some() {
            got.push(f[0]);
        }
        let want: Vec<i16> = (1..=5)
            .map(|i| crate::media::g711::ulaw_decode(ulaw_encode(i * 1000)))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn lost_frames_are_silence_and_late_packets_are_dropped() {
        let mut jb = JitterBuffer::new(Law::Ulaw, 1);
        jb.push(0, &payload(5000, 160));
        jb.push(320, &payload(5000, 160)); // frame 1 missing
        jb.push(480, &payload(5000, 160));
        let mut kinds = vec![];
        let mut f = [0; FRAME_SAMPLES];
        while let Some(k) = jb.pop(&mut f) {
            kinds.push((k, f[0]));
        }
        assert_eq!(kinds[0].0, FrameKind::Audio);
        assert_eq!(kinds[1], (FrameKind::Lost, 0));
        assert_eq!(jb.push(160, &payload(5000, 160)), Push::Late);
    }

    #[test]
    fn ten_ms_packets_fill_one_frame_and_a_missing_half_is_silence() {
        let mut jb = JitterBuffer::new(Law::Alaw, 0);
        let a = crate::media::g711::alaw_encode(3000);
        jb.push(100, &[a; 80]);
        let mut f = [1; FRAME_SAMPLES];
        assert_eq!(
            jb.pop(&mut f),
            Some(FrameKind::Audio),
            "depth 0 releases at once"
        );
        assert!(f[..80].iter().all(|&s| s != 0) && f[80..].iter().all(|&s| s == 8));
        // A 30 ms packet spans two frames.
        jb.push(260, &[a; 240]);
        assert_eq!(jb.buffered(), 2);
    }

    #[test]
    fn far_jumps_ask_for_a_restart_and_report_the_gap() {
        let mut jb = JitterBuffer::new(Law::Ulaw, 2);
        jb.push(0, &payload(100, 160));
        assert_eq!(jb.push(8000 * 2, &payload(100, 160)), Push::Jump);
        assert_eq!(
            jb.push(0u32.wrapping_sub(9000), &payload(100, 160)),
            Push::Jump
        );
        let mut f = [0; FRAME_SAMPLES];
        while jb.flush(&mut f).is_some() {}
        assert_eq!(jb.restart(16000), 99, "2 s pause after one released frame");
        assert_eq!(jb.push(16000, &payload(100, 160)), Push::Stored);
        assert_eq!(jb.buffered(), 1);
    }

    #[test]
    fn timestamps_wrap() {
        let mut jb = JitterBuffer::new(Law::Ulaw, 0);
        let mut f = [0; FRAME_SAMPLES];
        let mut ts = u32::MAX - 200;
        for _ in 0..4 {
            assert_eq!(jb.push(ts, &payload(700, 160)), Push::Stored);
            assert_eq!(jb.pop(&mut f), Some(FrameKind::Audio));
            ts = ts.wrapping_add(160);
        }
    }
}
