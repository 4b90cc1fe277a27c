//! In-band DTMF detection with the Goertzel algorithm over 20 ms frames.
//!
//! Each frame is tested at the eight DTMF frequencies (N = 160, 50 Hz bins;
//! the Goertzel coefficient uses the exact frequency, not the nearest bin).
//! A frame holds a key when all of these hold:
//! - the strongest row and column tones are each above an absolute level
//!   (about -40 dBm0);
//! - twist: the column tone is at most 8 dB above the row tone, and at most
//!   4 dB below it (ITU-T Q.24 style limits);
//! - each is at least 8 dB above the other tones of its group;
//! - the two tones carry at least 60% of the frame's energy, which is what
//!   keeps speech, music and noise from triggering.
//!
//! A key is reported once, when two consecutive frames agree (a tone of
//! about 40 ms or more); the press ends at the first frame without it. Lost
//! frames carry no information and should not be fed to the detector.
//!
//! Cost: 8 × 160 multiply-adds per frame, no allocation.

use super::{Digit, DtmfSource};
use crate::media::{FRAME_SAMPLES, Frame, SAMPLE_RATE};

const FREQS: [f32; 8] = [697.0, 770.0, 852.0, 941.0, 1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Minimum amplitude of each tone (linear, full scale 32767): about -40 dBm0.
const MIN_AMPLITUDE: f32 = 250.0;
/// Column may exceed row by 8 dB (power ratio 6.3); row may exceed column by 4 dB (2.5).
const MAX_NORMAL_TWIST: f32 = 6.3;
const MAX_REVERSE_TWIST: f32 = 2.5;
/// Other tones of the same group must be 8 dB weaker.
const RELATIVE_PEAK: f32 = 6.3;
/// Share of the frame's energy the two tones must carry.
const MIN_TONE_SHARE: f32 = 0.6;
/// Consecutive frames that make a press (40 ms).
const MIN_FRAMES: u32 = 2;

/// Per-call in-band detector state: a few bytes.
#[derive(Debug, Clone)]
pub struct InbandDetector {
    coeffs: [f32; 8],
    candidate: Option<char>,
    run: u32,
    reported: bool,
}

impl Default for InbandDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl InbandDetector {
    pub fn new() -> Self {
        let coeffs =
            FREQS.map(|f| 2.0 * (2.0 * std::f32::consts::PI * f / SAMPLE_RATE as f32).cos());
        InbandDetector {
            coeffs,
            candidate: None,
            run: 0,
            reported: false,
        }
    }

    /// Feeds one received frame; returns a digit when a press is recognised.
    pub fn process(&mut self, frame: &Frame) -> Option<Digit> {
        let key = self.classify(frame);
        if key.is_some() && key == self.candidate {
            self.run += 1;
        } else {
            self.candidate = key;
            self.run = u32::from(key.is_some());
            self.reported = false;
        }
        if self.run >= MIN_FRAMES && !self.reported {
            self.reported = true;
            return self.candidate.map(|key| Digit {
                key,
                source: DtmfSource::InBand,
            });
        }
        None
    }

    /// Frames the current tone has lasted (0 when none): lets the recorder
    /// cut a `#` tone off the end of a message.
    pub fn tone_frames(&self) -> u32 {
        self.run
    }

    /// The key one frame holds, if any.
    fn classify(&self, frame: &Frame) -> Option<char> {
        let mut energy = 0.0f32;
        for &s in frame {
            let x = s as f32;
            energy += x * x;
        }
        let n = FRAME_SAMPLES as f32;
        // A tone of amplitude A over N samples has energy N·A²/2.
        let min_tone = n * MIN_AMPLITUDE * MIN_AMPLITUDE / 2.0;
        if energy < 2.0 * min_tone {
            return None;
        }
        let mut s1 = [0.0f32; 8];
        let mut s2 = [0.0f32; 8];
        for &s in frame {
            let x = s as f32;
            for k in 0..8 {
                let s0 = x + self.coeffs[k] * s1[k] - s2[k];
                s2[k] = s1[k];
                s1[k] = s0;
            }
        }
        // Goertzel power |X|² scaled to the tone's energy in the frame (2|X|²/N).
        let mut tone = [0.0f32; 8];
        for k in 0..8 {
            let p = s1[k] * s1[k] + s2[k] * s2[k] - self.coeffs[k] * s1[k] * s2[k];
            tone[k] = 2.0 * p / n;
        }
        let (row, row_e) = peak(&tone[..4]);
        let (col, col_e) = peak(&tone[4..]);
        if row_e < min_tone || col_e < min_tone {
            return None;
        }
        if col_e > row_e * MAX_NORMAL_TWIST || row_e > col_e * MAX_REVERSE_TWIST {
            return None;
        }
        let dominant = |group: &[f32], i: usize, e: f32| {
            group
                .iter()
                .enumerate()
                .all(|(j, &o)| j == i || o * RELATIVE_PEAK < e)
        };
        if !dominant(&tone[..4], row, row_e) || !dominant(&tone[4..], col, col_e) {
            return None;
        }
        if row_e + col_e < MIN_TONE_SHARE * energy {
            return None;
        }
        Some(KEYS[row][col])
    }
}

fn peak(v: &[f32]) -> (usize, f32) {
    let mut best = (0, v[0]);
    for (i, &e) in v.iter().enumerate().skip(1) {
        if e > best.1 {
            best = (i, e);
        }
    }
    best
}

/// Test signal generators, shared with the session tests.
#[cfg(test)]
pub(crate) mod signals {
    use std::f32::consts::PI;

    /// A deterministic xorshift noise source.
    pub struct Noise(pub u32);
    impl Noise {
        /// Uniform in -1..1.
        pub fn next(&mut self) -> f32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 17;
            self.0 ^= self.0 << 5;
            (self.0 as f32 / u32::MAX as f32) * 2.0 - 1.0
        }
    }

    /// Row and column frequencies of a key.
    pub fn key_freqs(key: char) -> (f32, f32) {
        let keys = "123A456B789C*0#D";
        let i = keys.find(key).unwrap();
        (super::FREQS[i / 4], super::FREQS[4 + i % 4])
    }

    /// Appends a DTMF tone of `ms` with per-tone amplitudes.
    pub fn tone(out: &mut Vec<i16>, key: char, ms: u32, row_amp: f32, col_amp: f32) {
        let (fr, fc) = key_freqs(key);
        let start = out.len();
        for i in 0..(ms * 8) as usize {
            let t = (start + i) as f32 / 8000.0;
            let v = row_amp * (2.0 * PI * fr * t).sin() + col_amp * (2.0 * PI * fc * t).sin();
            out.push(v as i16);
        }
    }

    pub fn silence(out: &mut Vec<i16>, ms: u32) {
        out.extend(std::iter::repeat_n(0, (ms * 8) as usize));
    }

    /// Adds uniform noise of the given peak amplitude.
    pub fn add_noise(buf: &mut [i16], amp: f32, seed: u32) {
        let mut n = Noise(seed);
        for s in buf {
            *s = (*s as f32 + amp * n.next()).clamp(-32768.0, 32767.0) as i16;
        }
    }

    /// A vowel-like signal: a glottal pulse train (f0 gliding between `f0_lo`
    /// and `f0_hi`) with 30 harmonics shaped by two formants.
    pub fn vowel(ms: u32, f0_lo: f32, f0_hi: f32, f1: f32, f2: f32, amp: f32) -> Vec<i16> {
        let n = (ms * 8) as usize;
        let mut out = Vec::with_capacity(n);
        let mut phase = 0.0f32;
        for i in 0..n {
            let frac = i as f32 / n as f32;
            let f0 = f0_lo + (f0_hi - f0_lo) * (0.5 - 0.5 * (2.0 * PI * frac * 3.0).cos());
            phase += 2.0 * PI * f0 / 8000.0;
            let mut v = 0.0;
            for h in 1..=30 {
                let f = h as f32 * f0;
                if f > 3800.0 {
                    break;
                }
                let g = 1.0 / (1.0 + ((f - f1) / 150.0).powi(2))
                    + 0.7 / (1.0 + ((f - f2) / 200.0).powi(2));
                v += g * (h as f32 * phase).sin() / h as f32;
            }
            out.push((amp * v) as i16);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::signals::*;
    use super::*;

    fn detect(samples: &[i16]) -> String {
        let mut d = InbandDetector::new();
        let mut keys = String::new();
        for chunk in samples.chunks_exact(FRAME_SAMPLES) {
            let frame: &Frame = chunk.try_into().unwrap();
            if let Some(digit) = d.process(frame) {
                assert_eq!(digit.source, DtmfSource::InBand);
                keys.push(digit.key);
            }
        }
        keys
    }

    #[test]
    fn every_key_once_at_any_alignment() {
        for (i, key) in "123A456B789C*0#D".chars().enumerate() {
            let mut s = vec![];
            silence(&mut s, 7 + 3 * i as u32); // misaligns tone and frames
            tone(&mut s, key, 100, 7000.0, 8000.0);
            silence(&mut s, 100);
            assert_eq!(detect(&s), key.to_string(), "key {key}");
        }
    }

    #[test]
    fn a_fast_sequence_of_60_ms_tones() {
        let mut s = vec![];
        silence(&mut s, 13);
        for key in "1123#".chars() {
            tone(&mut s, key, 60, 6000.0, 6000.0);
            silence(&mut s, 60);
        }
        assert_eq!(detect(&s), "1123#");
    }

    #[test]
    fn a_long_press_is_one_digit() {
        let mut s = vec![];
        tone(&mut s, '5', 1500, 5000.0, 6000.0);
        assert_eq!(detect(&s), "5");
    }

    #[test]
    fn too_short_a_tone_is_not_a_press() {
        let mut s = vec![];
        silence(&mut s, 10);
        tone(&mut s, '5', 25, 5000.0, 6000.0);
        silence(&mut s, 100);
        assert_eq!(detect(&s), "");
    }

    #[test]
    fn quiet_tones_and_noise() {
        let mut s = vec![];
        tone(&mut s, '7', 100, 400.0, 500.0);
        assert_eq!(detect(&s), "7", "about -36 dBm0 per tone still counts");
        let mut s = vec![];
        tone(&mut s, '7', 100, 60.0, 60.0);
        assert_eq!(detect(&s), "", "below the energy threshold");
        let mut s = vec![];
        silence(&mut s, 40);
        tone(&mut s, '9', 120, 4000.0, 4000.0);
        silence(&mut s, 40);
        add_noise(&mut s, 1200.0, 99); // about 13 dB SNR
        assert_eq!(detect(&s), "9", "detected through noise");
    }

    #[test]
    fn twist_limits() {
        let mut s = vec![];
        tone(&mut s, '3', 100, 1000.0, 8000.0); // column 18 dB stronger
        assert_eq!(detect(&s), "");
        let mut s = vec![];
        tone(&mut s, '3', 100, 8000.0, 3000.0); // row 8.5 dB stronger
        assert_eq!(detect(&s), "");
        let mut s = vec![];
        tone(&mut s, '3', 100, 4000.0, 8000.0); // 6 dB normal twist is fine
        assert_eq!(detect(&s), "3");
    }

    #[test]
    fn non_dtmf_signals_do_not_trigger() {
        // Noise alone.
        let mut s = vec![0i16; 8000 * 3];
        add_noise(&mut s, 12000.0, 7);
        assert_eq!(detect(&s), "", "white noise");
        // One DTMF frequency alone.
        let mut s = vec![];
        tone(&mut s, '1', 500, 8000.0, 0.0);
        assert_eq!(detect(&s), "", "a single row tone");
        // Two tones off the DTMF grid.
        let mut s = vec![];
        for i in 0..8000usize {
            let t = i as f32 / 8000.0;
            let v = 6000.0 * (2.0 * std::f32::consts::PI * 620.0 * t).sin()
                + 6000.0 * (2.0 * std::f32::consts::PI * 1100.0 * t).sin();
            s.push(v as i16);
        }
        assert_eq!(detect(&s), "", "off-grid dual tone");
        // A chirp through the whole DTMF band.
        let mut s = vec![];
        let mut ph = 0.0f32;
        for i in 0..16000usize {
            let f = 300.0 + 3000.0 * i as f32 / 16000.0;
            ph += 2.0 * std::f32::consts::PI * f / 8000.0;
            s.push((9000.0 * ph.sin()) as i16);
        }
        assert_eq!(detect(&s), "", "chirp");
        // Speech-like vowels, male and female pitch, formants near DTMF tones.
        for (lo, hi, f1, f2) in [
            (100.0, 140.0, 700.0, 1220.0),
            (110.0, 130.0, 850.0, 1350.0),
            (180.0, 260.0, 750.0, 1500.0),
            (139.0, 141.0, 697.0, 1209.0),
        ] {
            let s = vowel(2000, lo, hi, f1, f2, 9000.0);
            assert_eq!(detect(&s), "", "vowel f0 {lo}-{hi} formants {f1}/{f2}");
        }
    }
}
