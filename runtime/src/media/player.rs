//! The playback queue of one call: prompts, silences and the beep, played
//! back to back as 20 ms frames for the pacing loop.
//!
//! Items are shared sample buffers, so queueing a prompt copies nothing; an
//! item that ends mid-frame is followed by the next in the same frame (no
//! gaps between the words of `say`). When the queue is empty the player
//! produces silence. Barge-in is [`Player::stop`].

use super::wav::Samples;
use super::{FRAME_SAMPLES, Frame, SAMPLE_RATE};
use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

/// Something to play.
#[derive(Debug, Clone)]
pub enum PlayItem {
    Samples(Samples),
    /// Silence of this many milliseconds.
    Silence(u32),
}

impl PlayItem {
    fn len(&self) -> usize {
        match self {
            PlayItem::Samples(s) => s.len(),
            PlayItem::Silence(ms) => (*ms as usize) * (SAMPLE_RATE as usize / 1000),
        }
    }
}

#[derive(Debug, Default)]
pub struct Player {
    queue: VecDeque<PlayItem>,
    /// Samples of the front item already played.
    pos: usize,
}

impl Player {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends to the queue.
    pub fn enqueue(&mut self, item: PlayItem) {
        self.queue.push_back(item);
    }

    /// Clears the queue (barge-in, or the flow moved on).
    pub fn stop(&mut self) {
        self.queue.clear();
        self.pos = 0;
    }

    pub fn is_idle(&self) -> bool {
        self.queue.is_empty()
    }

    /// Milliseconds of audio still queued.
    pub fn remaining_ms(&self) -> u64 {
        let samples: usize = self.queue.iter().map(PlayItem::len).sum::<usize>() - self.pos;
        samples as u64 * 1000 / u64::from(SAMPLE_RATE)
    }

    /// Fills `out` with the next 20 ms. Returns false when nothing was queued
    /// (the frame is silence); true when the frame holds queued audio, padded
    /// with silence if the queue ran out within it.
    pub fn next_frame(&mut self, out: &mut Frame) -> bool {
        if self.queue.is_empty() {
            out.fill(0);
            return false;
        }
        let mut filled = 0;
        while filled < FRAME_SAMPLES {
            let Some(item) = self.queue.front() else {
                out[filled..].fill(0);
                break;
            };
            let left = item.len() - self.pos;
            let n = left.min(FRAME_SAMPLES - filled);
            match item {
                PlayItem::Samples(s) => {
                    out[filled..filled + n].copy_from_slice(&s[self.pos..self.pos + n])
                }
                PlayItem::Silence(_) => out[filled..filled + n].fill(0),
            }
            filled += n;
            self.pos += n;
            if self.pos == item.len() {
                self.queue.pop_front();
                self.pos = 0;
            }
        }
        true
    }
}

/// The record tone: 1000 Hz for 250 ms at -6 dBFS with 10 ms fades (the same
/// tone as `stdlib/prompts/beep.wav`), generated once per process.
pub fn beep() -> Samples {
    static BEEP: OnceLock<Samples> = OnceLock::new();
    BEEP.get_or_init(|| {
        let n = SAMPLE_RATE as usize / 4;
        let fade = SAMPLE_RATE as usize / 100;
        let amp = 32767.0 * 0.5;
        (0..n)
            .map(|i| {
                let env = (i.min(n - 1 - i) as f64 / fade as f64).min(1.0);
                let t = i as f64 / SAMPLE_RATE as f64;
                (amp * env * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as i16
            })
            .collect::<Vec<_>>()
            .into()
    })
    .clone()
}

/// Convenience for tests and the driver: a prompt item from plain samples.
pub fn samples(v: Vec<i16>) -> PlayItem {
    PlayItem::Samples(Arc::from(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_play_back_to_back_and_then_silence() {
        let mut p = Player::new();
        let mut f = [0i16; FRAME_SAMPLES];
        assert!(!p.next_frame(&mut f));
        p.enqueue(samples(vec![1; 100]));
        p.enqueue(PlayItem::Silence(5)); // 40 samples
        p.enqueue(samples(vec![2; 100]));
        assert_eq!(p.remaining_ms(), 30);
        assert!(p.next_frame(&mut f));
        assert!(f[..100].iter().all(|&s| s == 1));
        assert!(f[100..140].iter().all(|&s| s == 0));
        assert!(f[140..].iter().all(|&s| s == 2));
        assert!(p.next_frame(&mut f));
        assert!(f[..80].iter().all(|&s| s == 2) && f[80..].iter().all(|&s| s == 0));
        assert!(p.is_idle());
        f.fill(9);
        assert!(!p.next_frame(&mut f));
        assert!(f.iter().all(|&s| s == 0));
    }

    #[test]
    fn stop_clears_the_queue() {
        let mut p = Player::new();
        p.enqueue(samples(vec![5; 1000]));
        let mut f = [0i16; FRAME_SAMPLES];
        p.next_frame(&mut f);
        p.stop();
        assert!(p.is_idle());
        assert!(!p.next_frame(&mut f));
        assert_eq!(f, [0; FRAME_SAMPLES]);
    }

    #[test]
    fn the_beep_is_a_250_ms_1000_hz_tone_shared_between_calls() {
        let b = beep();
        assert_eq!(b.len(), 2000);
        assert!(Arc::ptr_eq(&b, &beep()));
        assert_eq!(b[0], 0);
        let peak = b.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!((16000..=16384).contains(&peak), "{peak}");
        // 1000 Hz at 8 kHz: a period of 8 samples, so zero crossings every 4.
        let crossings = b.windows(2).filter(|w| (w[0] >= 0) != (w[1] >= 0)).count();
        assert!((495..=505).contains(&crossings), "{crossings}");
    }
}
