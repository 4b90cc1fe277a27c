//! Recording a message: 20 ms frames in, PCM16 out, with a maximum length,
//! stop on silence, trailing-silence trimming and a duration in milliseconds.
//!
//! A frame is *silence* when its RMS level is below `silence_level`. Speech
//! is any frame above it. The silence stop only runs after some speech; a
//! message with no speech at all is "nothing recorded"
//! ([`Recording::has_speech`] is false), whatever ended it.
//!
//! Memory: the recorder keeps only what the driver has not yet drained. The
//! trailing run of silent frames (up to a cap) and the last few frames are
//! held back — they may still be trimmed, or cut when the message ends with an
//! in-band `#` — and everything before them is *committed*: final, and
//! returned by [`Recorder::drain_into`] as little-endian PCM16 bytes ready to
//! append to a WAV file (see [`super::wav_header`]). A driver that drains
//! every second keeps a recording at a few tens of KiB per call.

use super::wav::pcm16_wav;
use super::{FRAME_MS, FRAME_SAMPLES, Frame, SAMPLE_RATE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecorderConfig {
    /// The message is cut at this length.
    pub max_ms: u32,
    /// After speech, this much continuous silence ends the message.
    pub silence_ms: Option<u32>,
    /// With no speech at all for this long, give up.
    pub no_speech_ms: Option<u32>,
    /// RMS level (linear, full scale 32767) below which a frame is silence.
    pub silence_level: u16,
}

impl Default for RecorderConfig {
    /// Two minutes, 3 s of silence ends it, 10 s without speech gives up,
    /// silence below RMS 300 (about -41 dBFS).
    fn default() -> Self {
        RecorderConfig {
            max_ms: 120_000,
            silence_ms: Some(3000),
            no_speech_ms: Some(10_000),
            silence_level: 300,
        }
    }
}

/// Why a recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    MaxLength,
    Silence,
    NoSpeech,
    /// A key ended it (usually `#`).
    Dtmf(char),
    Hangup,
    /// The driver stopped it for another reason.
    Stopped,
}

/// A finished recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    /// The samples not yet drained (the whole message if nothing was drained),
    /// trailing silence trimmed.
    pub samples: Vec<i16>,
    /// Samples in the whole message, drained ones included.
    pub total_samples: u64,
    pub duration_ms: u64,
    pub reason: StopReason,
    /// False when the message was only silence: nothing was recorded.
    pub has_speech: bool,
}

impl Recording {
    /// Appends [`Recording::samples`] as little-endian PCM16: after streaming
    /// with `drain_into`/`drain_recorded`, this is the tail of the message
    /// (held-back frames and anything not yet drained) that completes the
    /// file. The recorder is gone once finished, so draining afterwards
    /// yields nothing.
    pub fn append_pcm16_le(&self, out: &mut Vec<u8>) {
        out.reserve(self.samples.len() * 2);
        for &s in &self.samples {
            out.extend_from_slice(&s.to_le_bytes());
        }
    }

    /// The message as a WAV file; complete only if nothing was drained.
    pub fn wav(&self) -> Vec<u8> {
        pcm16_wav(&self.samples)
    }
}

/// Frames always held back, so that a `#` tone detected in-band can be cut.
const HOLDBACK_FRAMES: usize = 6;
/// Trailing silence held back for trimming, at most (3 s).
const MAX_TRIM_FRAMES: usize = 150;

#[derive(Debug)]
pub struct Recorder {
    cfg: RecorderConfig,
    buf: Vec<i16>,
    committed: usize,
    drained: u64,
    frames: u64,
    silent_run: usize,
    speech: bool,
    stopped: Option<StopReason>,
}

impl Recorder {
    pub fn new(cfg: RecorderConfig) -> Self {
        Recorder {
            cfg,
            // One second up front; drained recordings stay near this.
            buf: Vec::with_capacity(SAMPLE_RATE as usize),
            committed: 0,
            drained: 0,
            frames: 0,
            silent_run: 0,
            speech: false,
            stopped: None,
        }
    }

    /// Why the recorder stopped by itself, if it has.
    pub fn stopped(&self) -> Option<StopReason> {
        self.stopped
    }

    /// Milliseconds recorded so far.
    pub fn elapsed_ms(&self) -> u64 {
        self.frames * u64::from(FRAME_MS)
    }

    /// Adds one frame. Returns the reason when this frame ends the recording
    /// (once); frames after that are ignored.
    pub fn push(&mut self, frame: &Frame) -> Option<StopReason> {
        if self.stopped.is_some() {
            return None;
        }
        let sum: i64 = frame.iter().map(|&s| i64::from(s) * i64::from(s)).sum();
        let level = i64::from(self.cfg.silence_level);
        let silent = sum < level * level * FRAME_SAMPLES as i64;
        self.buf.extend_from_slice(frame);
        self.frames += 1;
        if silent {
            self.silent_run += 1;
        } else {
            self.speech = true;
            self.silent_run = 0;
        }
        let trim_cap = self
            .cfg
            .silence_ms
            .map_or(0, |ms| (ms / FRAME_MS) as usize)
            .max(MAX_TRIM_FRAMES);
        let held = self.silent_run.min(trim_cap).max(HOLDBACK_FRAMES) * FRAME_SAMPLES;
        self.committed = self.committed.max(self.buf.len().saturating_sub(held));

        let ms = self.elapsed_ms();
        let reason = if ms >= u64::from(self.cfg.max_ms) {
            Some(StopReason::MaxLength)
        } else if self.speech
            && self
                .cfg
                .silence_ms
                .is_some_and(|s| (self.silent_run as u64) * u64::from(FRAME_MS) >= u64::from(s))
        {
            Some(StopReason::Silence)
        } else if !self.speech && self.cfg.no_speech_ms.is_some_and(|s| ms >= u64::from(s)) {
            Some(StopReason::NoSpeech)
        } else {
            None
        };
        self.stopped = reason;
        reason
    }

    /// Committed samples waiting for [`Recorder::drain_into`]: a driver
    /// drains when this reaches a size worth a write.
    pub fn committed(&self) -> usize {
        self.committed
    }

    /// Appends the committed samples to `out` as little-endian PCM16 and
    /// forgets them. Returns the number of samples appended.
    pub fn drain_into(&mut self, out: &mut Vec<u8>) -> usize {
        let n = self.committed;
        out.reserve(n * 2);
        for &s in &self.buf[..n] {
            out.extend_from_slice(&s.to_le_bytes());
        }
        self.buf.drain(..n);
        self.drained += n as u64;
        self.committed = 0;
        n
    }

    /// Cuts up to `frames` frames off the end, but never committed ones
    /// (used to remove an in-band `#` tone).
    pub fn drop_tail(&mut self, frames: usize) {
        let keep = self
            .buf
            .len()
            .saturating_sub(frames * FRAME_SAMPLES)
            .max(self.committed);
        self.buf.truncate(keep);
    }

    /// Ends the recording: `reason` is used unless the recorder already
    /// stopped by itself. Trailing silence is trimmed.
    pub fn finish(mut self, reason: StopReason) -> Recording {
        let reason = self.stopped.unwrap_or(reason);
        let trim = (self.silent_run * FRAME_SAMPLES).min(self.buf.len() - self.committed);
        self.buf.truncate(self.buf.len() - trim);
        let total = self.drained + self.buf.len() as u64;
        Recording {
            samples: self.buf,
            total_samples: total,
            duration_ms: total * 1000 / u64::from(SAMPLE_RATE),
            reason,
            has_speech: self.speech,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOUD: Frame = {
        let mut f = [0i16; FRAME_SAMPLES];
        let mut i = 0;
        while i < FRAME_SAMPLES {
            f[i] = if i % 2 == 0 { 3000 } else { -3000 };
            i += 1;
        }
        f
    };
    const QUIET: Frame = [40; FRAME_SAMPLES];

    fn cfg() -> RecorderConfig {
        RecorderConfig {
            max_ms: 10_000,
            silence_ms: Some(1000),
            no_speech_ms: None,
            silence_level: 300,
        }
    }

    #[test]
    fn silence_after_speech_stops_and_is_trimmed() {
        let mut r = Recorder::new(cfg());
        let mut stop = None;
        for _ in 0..25 {
            r.push(&QUIET); // 500 ms leading silence: kept
        }
        for _ in 0..100 {
            assert_eq!(r.push(&LOUD), None); // 2 s of speech
        }
        for i in 0..200 {
            if let Some(s) = r.push(&QUIET) {
                stop = Some((s, i));
                break;
            }
        }
        assert_eq!(
            stop,
            Some((StopReason::Silence, 49)),
            "after 50 frames = 1 s"
        );
        assert_eq!(r.push(&LOUD), None, "ignored once stopped");
        let rec = r.finish(StopReason::Hangup);
        assert_eq!(rec.reason, StopReason::Silence, "its own reason wins");
        assert_eq!(rec.duration_ms, 2500);
        assert!(rec.has_speech);
        assert_eq!(rec.samples.len(), 125 * FRAME_SAMPLES);
    }

    #[test]
    fn only_silence_is_nothing_recorded() {
        let mut r = Recorder::new(RecorderConfig {
            no_speech_ms: Some(2000),
            ..cfg()
        });
        let mut n = 0;
        while r.push(&QUIET).is_none() {
            n += 1;
        }
        assert_eq!(n, 99, "100 frames = 2 s");
        let rec = r.finish(StopReason::Stopped);
        assert_eq!(rec.reason, StopReason::NoSpeech);
        assert!(!rec.has_speech);
    }

    #[test]
    fn max_length_cuts_the_message() {
        let mut r = Recorder::new(RecorderConfig {
            max_ms: 1000,
            ..cfg()
        });
        let mut n = 1;
        while r.push(&LOUD).is_none() {
            n += 1;
        }
        assert_eq!(n, 50);
        let rec = r.finish(StopReason::Hangup);
        assert_eq!((rec.reason, rec.duration_ms), (StopReason::MaxLength, 1000));
        assert_eq!(load(&rec.wav()).len(), 8000);
    }

    fn load(wav: &[u8]) -> std::sync::Arc<[i16]> {
        crate::media::wav::load_prompt("rec.wav", wav).unwrap()
    }

    #[test]
    fn hangup_trims_trailing_silence_and_dtmf_tone_can_be_cut() {
        let mut r = Recorder::new(cfg());
        for _ in 0..50 {
            r.push(&LOUD);
        }
        for _ in 0..10 {
            r.push(&QUIET);
        }
        let rec = r.finish(StopReason::Hangup);
        assert_eq!((rec.reason, rec.duration_ms), (StopReason::Hangup, 1000));

        let mut r = Recorder::new(cfg());
        for _ in 0..50 {
            r.push(&LOUD);
        }
        r.drop_tail(3); // the `#` tone
        r.drop_tail(100); // never more than the held-back frames
        let rec = r.finish(StopReason::Dtmf('#'));
        assert_eq!(rec.duration_ms, 1000 - 20 * HOLDBACK_FRAMES as u64);
    }

    #[test]
    fn draining_streams_the_committed_part() {
        let mut r = Recorder::new(RecorderConfig {
            silence_ms: None,
            ..cfg()
        });
        let mut bytes = vec![];
        let mut frames = 0;
        for i in 0..300 {
            let f = if (i / 40) % 2 == 0 { LOUD } else { QUIET };
            r.push(&f);
            frames += 1;
            if i % 50 == 49 {
                r.drain_into(&mut bytes);
                assert!(
                    r.buf.len() <= (40 + HOLDBACK_FRAMES) * FRAME_SAMPLES,
                    "bounded"
                );
            }
        }
        assert_eq!(frames, 300);
        let rec = r.finish(StopReason::Dtmf('#'));
        // Frames 280..300 are silent and trimmed; all else is kept.
        assert_eq!(rec.total_samples, 280 * FRAME_SAMPLES as u64);
        assert_eq!(bytes.len() / 2 + rec.samples.len(), 280 * FRAME_SAMPLES);
        let mut wav = super::super::wav_header(rec.total_samples).to_vec();
        wav.extend_from_slice(&bytes);
        rec.append_pcm16_le(&mut wav);
        let all = load(&wav);
        assert_eq!(all.len(), 280 * FRAME_SAMPLES);
        assert_eq!(all[0], 3000);
        assert_eq!(all[40 * FRAME_SAMPLES], 40);
    }
}
