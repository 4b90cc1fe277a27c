//! [`MediaSession`]: the media of one call, tying the pieces together.
//!
//! ```text
//! receive: datagram → RtpPacket → payload type? → SeqTracker (dups, loss)
//!            ├─ telephone-event → EventReceiver ─────────────→ Dtmf event
//!            └─ audio → JitterBuffer → 20 ms frames → InbandDetector → Dtmf event
//!                                                 └→ Recorder ──────→ RecordingStopped
//! send (every 20 ms while playing; a keepalive a second when silent):
//!        Player (or EventSender) → G.711 → Packetizer → caller's buffer
//! ```
//!
//! Polling contract for the driver (one task per call):
//! - each received datagram: [`MediaSession::handle_rtp`];
//! - every 20 ms while [`MediaSession::needs_pacing`], else at least every
//!   [`IDLE_POLL`]: [`MediaSession::poll_frame`] until `None`, sending what it writes; this
//!   is also where the media timeout is checked and where the jitter buffer
//!   is flushed when packets stop, so call it even when nothing is playing;
//! - after either: drain [`MediaSession::poll_event`] until `None`.
//!
//! Neither input allocates in the steady state: buffers are fixed-size and
//! owned by the session; the event queue keeps its capacity.

use super::dtmf::{Digit, EventReceiver, EventSender, InbandDetector};
use super::g711::Law;
use super::jitter::{FrameKind, JitterBuffer, Push};
use super::player::{PlayItem, Player, beep};
use super::recorder::{Recorder, RecorderConfig, Recording, StopReason};
use super::rtp::{Packetizer, RtpError, RtpPacket, RtpStats, SeqTracker, SeqVerdict};
use super::{FRAME_MS, FRAME_SAMPLES, Frame};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What was negotiated for the call, and the send stream's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaConfig {
    /// The audio codec (its static payload type is the one accepted and sent).
    pub law: Law,
    /// The telephone-event payload type, if the peer offered RFC 4733.
    pub event_pt: Option<u8>,
    /// Detect in-band DTMF tones. Turned off for the rest of the call at the
    /// first RFC 4733 event, so a peer that sends both is not heard twice.
    pub inband_dtmf: bool,
    /// Playout delay of the jitter buffer, in 20 ms frames.
    pub jitter_depth: u32,
    /// No RTP for this long raises [`MediaEvent::MediaTimeout`] (once).
    pub rtp_timeout: Option<Duration>,
    /// Our SSRC and first sequence number and timestamp (random, RFC 3550).
    pub ssrc: u32,
    pub initial_seq: u16,
    pub initial_ts: u32,
    /// What goes out while nothing plays.
    pub silence: Silence,
}

/// What the session sends while nothing is playing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Silence {
    /// One silence packet a second (keeps NAT bindings and the peer's media
    /// timeout alive); the first packet after the pause carries the marker
    /// bit (RFC 3551 §4.1). A leave-message call sends nothing 50 times a
    /// second for the length of the message.
    #[default]
    Keepalive,
    /// A silence packet every 20 ms, for peers that want a continuous stream.
    Continuous,
}

/// While nothing is sent, the driver need only call
/// [`MediaSession::poll_frame`] this often (see [`MediaSession::needs_pacing`]).
pub const IDLE_POLL: Duration = Duration::from_millis(100);

/// Missed 20 ms slots a late turn still sends (100 ms); older ones are
/// dropped (see [`MediaSession::poll_frame`]).
pub const MAX_CATCH_UP: u64 = 5;

/// Frames between keepalive packets in [`Silence::Keepalive`] (1 s).
const KEEPALIVE_FRAMES: u64 = 50;

impl MediaConfig {
    /// Defaults: in-band detection on, 60 ms playout delay, 30 s RTP timeout.
    pub fn new(
        law: Law,
        event_pt: Option<u8>,
        ssrc: u32,
        initial_seq: u16,
        initial_ts: u32,
    ) -> Self {
        MediaConfig {
            law,
            event_pt,
            inband_dtmf: true,
            jitter_depth: 3,
            rtp_timeout: Some(Duration::from_secs(30)),
            ssrc,
            initial_seq,
            initial_ts,
            silence: Silence::Keepalive,
        }
    }
}

/// What the session tells the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEvent {
    /// A key press, reported once (RFC 4733: at first sight of the event).
    Dtmf(Digit),
    /// The play queue ran out (not raised by [`MediaSession::stop_playback`]).
    PlaybackFinished,
    /// The recorder stopped by itself (max length, silence, no speech); fetch
    /// the message with [`MediaSession::stop_recording`].
    RecordingStopped(StopReason),
    /// No RTP for the configured timeout: the driver should end the call.
    MediaTimeout,
}

/// A pause in the received stream after which a packet with an old or
/// repeated sequence number is taken as a restarted stream, not a duplicate.
const STREAM_RESTART_GAP: Duration = Duration::from_millis(250);

/// The longest pause (silence suppression, or a stall) filled with silence in
/// a recording: 5 s. Longer jumps just restart the stream.
const MAX_GAP_FILL: u64 = 250;

pub struct MediaSession {
    cfg: MediaConfig,
    start: Instant,
    events: VecDeque<MediaEvent>,
    // Receive.
    remote_ssrc: Option<u32>,
    seq: SeqTracker,
    lost_before: u64,
    stats: RtpStats,
    jitter: JitterBuffer,
    rx_events: EventReceiver,
    inband: Option<InbandDetector>,
    /// Frames to cut from a recording that ends on the last in-band digit.
    inband_cut: Option<usize>,
    last_rx: Option<Instant>,
    last_audio: Option<Instant>,
    timed_out: bool,
    rx_frame: Frame,
    // Send.
    packetizer: Packetizer,
    player: Player,
    playing: bool,
    next_frame_index: u64,
    /// Index of the last frame sent; a gap before the next one sets its marker.
    last_sent_index: Option<u64>,
    dtmf_tx: Option<(EventSender, u32)>,
    tx_frame: Frame,
    tx_payload: [u8; FRAME_SAMPLES],
    recorder: Option<Recorder>,
}

impl MediaSession {
    pub fn new(cfg: MediaConfig, now: Instant) -> Self {
        MediaSession {
            cfg,
            start: now,
            events: VecDeque::with_capacity(8),
            remote_ssrc: None,
            seq: SeqTracker::default(),
            lost_before: 0,
            stats: RtpStats::default(),
            jitter: JitterBuffer::new(cfg.law, cfg.jitter_depth),
            rx_events: EventReceiver::default(),
            inband: cfg.inband_dtmf.then(InbandDetector::new),
            inband_cut: None,
            last_rx: None,
            last_audio: None,
            timed_out: false,
            rx_frame: [0; FRAME_SAMPLES],
            packetizer: Packetizer::new(cfg.ssrc, cfg.initial_seq),
            player: Player::new(),
            playing: false,
            next_frame_index: 0,
            last_sent_index: None,
            dtmf_tx: None,
            tx_frame: [0; FRAME_SAMPLES],
            tx_payload: [cfg.law.silence_code(); FRAME_SAMPLES],
            recorder: None,
        }
    }

    pub fn config(&self) -> &MediaConfig {
        &self.cfg
    }

    // ---- receive -----------------------------------------------------------

    /// Handles one datagram from the call's RTP socket. An `Err` is a packet
    /// that was not used (not RTP, or a payload type that was not
    /// negotiated); it is counted in [`RtpStats`] and the call goes on.
    pub fn handle_rtp(&mut self, now: Instant, datagram: &[u8]) -> Result<(), RtpError> {
        let pkt = match RtpPacket::parse(datagram) {
            Ok(p) => p,
            Err(e) => {
                self.stats.malformed += 1;
                return Err(e);
            }
        };
        let is_audio = pkt.payload_type == self.cfg.law.payload_type();
        let is_event = Some(pkt.payload_type) == self.cfg.event_pt;
        if !is_audio && !is_event {
            self.stats.wrong_payload_type += 1;
            return Err(RtpError::PayloadType(pkt.payload_type));
        }
        if self.remote_ssrc != Some(pkt.ssrc) {
            if self.remote_ssrc.is_some() {
                self.stats.ssrc_changes += 1;
                self.flush_jitter();
                self.jitter.reset();
                self.lost_before += self.seq.lost();
                self.seq = SeqTracker::default();
            }
            self.remote_ssrc = Some(pkt.ssrc);
        }
        let mut verdict = self.seq.accept(pkt.sequence);
        // A packet the tracker rejects after a pause in the stream is a peer
        // that restarted its stream (a tool replaying recorded RTP, a media
        // server switching sources with the same SSRC): follow it, rather than
        // deaf to every later key (RFC 3550 A.1 resynchronises likewise).
        let paused = self
            .last_rx
            .is_some_and(|t| now.saturating_duration_since(t) >= STREAM_RESTART_GAP);
        if paused && matches!(verdict, SeqVerdict::Duplicate | SeqVerdict::TooOld) {
            self.stats.restarts += 1;
            self.flush_jitter();
            self.jitter.reset();
            self.lost_before += self.seq.lost();
            self.seq = SeqTracker::default();
            self.rx_events = EventReceiver::default();
            verdict = self.seq.accept(pkt.sequence);
        }
        match verdict {
            SeqVerdict::Duplicate => {
                self.stats.duplicates += 1;
                return Ok(());
            }
            SeqVerdict::TooOld => {
                self.stats.late += 1;
                return Ok(());
            }
            SeqVerdict::Reordered => self.stats.reordered += 1,
            SeqVerdict::InOrder => {}
        }
        self.stats.received += 1;
        self.last_rx = Some(now);
        if is_event {
            if let Some(digit) = self.rx_events.handle(pkt.timestamp, pkt.payload) {
                // The peer does RFC 4733: stop listening for tones.
                self.inband = None;
                self.inband_cut = None;
                self.events.push_back(MediaEvent::Dtmf(digit));
            }
            return Ok(());
        }
        self.last_audio = Some(now);
        match self.jitter.push(pkt.timestamp, pkt.payload) {
            Push::Stored => {}
            Push::Late => self.stats.late += 1,
            Push::Jump => {
                self.flush_jitter();
                let gap = self.jitter.restart(pkt.timestamp);
                if gap <= MAX_GAP_FILL {
                    self.rx_frame.fill(0);
                    for _ in 0..gap {
                        self.consume(FrameKind::Lost);
                    }
                }
                // After a restart the packet is at the playout point.
                let _ = self.jitter.push(pkt.timestamp, pkt.payload);
            }
        }
        while let Some(kind) = self.jitter.pop(&mut self.rx_frame) {
            self.consume(kind);
        }
        Ok(())
    }

    /// When RTP was last received (any accepted packet), for RTP timeouts
    /// the driver may want to compute itself.
    pub fn last_media_received(&self) -> Option<Instant> {
        self.last_rx
    }

    /// Changes the RTP timeout (e.g. none while the call is on hold) and
    /// re-arms it.
    pub fn set_rtp_timeout(&mut self, timeout: Option<Duration>, now: Instant) {
        self.cfg.rtp_timeout = timeout;
        self.timed_out = false;
        self.last_rx = Some(self.last_rx.map_or(now, |t| t.max(now)));
    }

    pub fn stats(&self) -> RtpStats {
        RtpStats {
            lost: self.lost_before + self.seq.lost(),
            ..self.stats
        }
    }

    fn flush_jitter(&mut self) {
        while let Some(kind) = self.jitter.flush(&mut self.rx_frame) {
            self.consume(kind);
        }
    }

    /// One received frame (in `rx_frame`) to the detector and the recorder.
    fn consume(&mut self, kind: FrameKind) {
        if let (Some(det), FrameKind::Audio) = (&mut self.inband, kind) {
            if let Some(digit) = det.process(&self.rx_frame) {
                self.inband_cut = Some(det.tone_frames() as usize + 1);
                self.events.push_back(MediaEvent::Dtmf(digit));
            } else if let Some(cut) = &mut self.inband_cut {
                *cut += 1;
            }
        } else if let Some(cut) = &mut self.inband_cut {
            *cut += 1;
        }
        if let Some(rec) = &mut self.recorder
            && let Some(reason) = rec.push(&self.rx_frame)
        {
            self.events.push_back(MediaEvent::RecordingStopped(reason));
        }
    }

    // ---- send --------------------------------------------------------------

    /// Writes the next packet due by `now` into `out` (172 bytes suffice)
    /// and returns its length; `None` when nothing more is due. Call it in a
    /// loop until `None`, every 20 ms while [`needs_pacing`](Self::needs_pacing)
    /// and at least every [`IDLE_POLL`] otherwise: it also checks the RTP
    /// timeout and flushes the jitter buffer when packets have stopped.
    ///
    /// Each 20 ms slot of the wall clock since the session began is one frame
    /// with its own timestamp. A late turn catches up the slots it missed (a
    /// short burst, so prompts keep their pace); slots more than
    /// [`MAX_CATCH_UP`] behind are dropped, leaving a gap in the timestamps
    /// that the peer plays as silence while the prompt resumes where it was.
    /// Silence is not sent, except a keepalive a second (see [`Silence`]).
    pub fn poll_frame(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        self.check_timers(now);
        let elapsed = now.saturating_duration_since(self.start);
        let on_clock = ((elapsed.as_micros() + 10_000) / 20_000) as u64;
        self.next_frame_index = self
            .next_frame_index
            .max(on_clock.saturating_sub(MAX_CATCH_UP));
        while self.next_frame_index <= on_clock {
            let index = self.next_frame_index;
            self.next_frame_index += 1;
            if let Some(n) = self.frame(index, out) {
                self.last_sent_index = Some(index);
                return Some(n);
            }
        }
        None
    }

    /// The packet for slot `index`, if one is to be sent.
    fn frame(&mut self, index: u64, out: &mut [u8]) -> Option<usize> {
        let ts = self
            .cfg
            .initial_ts
            .wrapping_add((index as u32).wrapping_mul(FRAME_SAMPLES as u32));
        if let Some((sender, start_ts)) = &mut self.dtmf_tx {
            let start_ts = *start_ts;
            if let (Some((payload, marker)), Some(pt)) = (sender.next_packet(), self.cfg.event_pt) {
                return self
                    .packetizer
                    .write(pt, start_ts, marker, &payload, out)
                    .ok();
            }
            self.dtmf_tx = None;
        }
        let audible = self.player.next_frame(&mut self.tx_frame);
        if self.playing && self.player.is_idle() {
            self.playing = false;
            self.events.push_back(MediaEvent::PlaybackFinished);
        }
        if !audible
            && self.cfg.silence == Silence::Keepalive
            && self
                .last_sent_index
                .is_some_and(|i| index < i + KEEPALIVE_FRAMES)
        {
            return None;
        }
        let after_gap = self.last_sent_index.is_some_and(|i| index > i + 1);
        self.cfg.law.encode(&self.tx_frame, &mut self.tx_payload);
        self.packetizer
            .write(
                self.cfg.law.payload_type(),
                ts,
                after_gap,
                &self.tx_payload,
                out,
            )
            .ok()
    }

    /// True while audio or key events are queued to go out: then
    /// [`poll_frame`](Self::poll_frame) must run every 20 ms. Otherwise
    /// every [`IDLE_POLL`] is enough.
    pub fn needs_pacing(&self) -> bool {
        self.playing || self.dtmf_tx.is_some() || self.cfg.silence == Silence::Continuous
    }

    fn check_timers(&mut self, now: Instant) {
        if let Some(timeout) = self.cfg.rtp_timeout
            && !self.timed_out
            && now.saturating_duration_since(self.last_rx.unwrap_or(self.start)) >= timeout
        {
            self.timed_out = true;
            self.events.push_back(MediaEvent::MediaTimeout);
        }
        let hold =
            Duration::from_millis(u64::from(FRAME_MS) * (u64::from(self.cfg.jitter_depth) + 2));
        if let Some(t) = self.last_audio
            && now.saturating_duration_since(t) >= hold
        {
            self.last_audio = None;
            self.flush_jitter();
        }
    }

    /// Queues audio after whatever is playing.
    pub fn play(&mut self, item: PlayItem) {
        self.player.enqueue(item);
        self.playing = true;
    }

    /// Queues the record tone.
    pub fn play_beep(&mut self) {
        self.play(PlayItem::Samples(beep()));
    }

    /// Barge-in: drops everything queued. No `PlaybackFinished` follows.
    pub fn stop_playback(&mut self) {
        self.player.stop();
        self.playing = false;
    }

    pub fn is_playing(&self) -> bool {
        self.playing
    }

    /// Sends a key as RFC 4733 events in place of audio (playback pauses
    /// meanwhile). False if no telephone-event type was negotiated or the key
    /// is not a DTMF key.
    pub fn send_dtmf(&mut self, key: char, duration_ms: u32) -> bool {
        let (Some(_), Some(sender)) = (self.cfg.event_pt, EventSender::new(key, duration_ms))
        else {
            return false;
        };
        let ts = self
            .cfg
            .initial_ts
            .wrapping_add((self.next_frame_index as u32).wrapping_mul(FRAME_SAMPLES as u32));
        self.dtmf_tx = Some((sender, ts));
        true
    }

    // ---- recording -----------------------------------------------------------

    /// Starts recording what the caller says (replacing any recording in progress).
    pub fn start_recording(&mut self, cfg: RecorderConfig) {
        self.recorder = Some(Recorder::new(cfg));
        self.inband_cut = None;
    }

    pub fn is_recording(&self) -> bool {
        self.recorder.is_some()
    }

    /// Samples [`MediaSession::drain_recorded`] would give now (0 when not
    /// recording): lets a driver write the recording in large pieces.
    pub fn recorded_pending(&self) -> usize {
        self.recorder.as_ref().map_or(0, Recorder::committed)
    }

    /// Streams the committed part of the recording, as PCM16 LE bytes.
    pub fn drain_recorded(&mut self, out: &mut Vec<u8>) -> usize {
        self.recorder.as_mut().map_or(0, |r| r.drain_into(out))
    }

    /// Ends the recording and returns it; `reason` is used unless the
    /// recorder already stopped by itself. Audio still in the jitter buffer is
    /// included; an in-band tone that ended it (`StopReason::Dtmf`) is cut.
    ///
    /// When streaming, the returned [`Recording::samples`] are the tail of
    /// the message that was never drained: append them
    /// ([`Recording::append_pcm16_le`]) before rewriting the WAV header with
    /// [`Recording::total_samples`]. `drain_recorded` after this returns 0.
    pub fn stop_recording(&mut self, reason: StopReason) -> Option<Recording> {
        self.flush_jitter();
        let mut rec = self.recorder.take()?;
        if let (StopReason::Dtmf(_), Some(cut)) = (reason, self.inband_cut) {
            rec.drop_tail(cut);
        }
        Some(rec.finish(reason))
    }

    // ---- events ---------------------------------------------------------------

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// All pending events.
    pub fn events(&mut self) -> impl Iterator<Item = MediaEvent> + '_ {
        self.events.drain(..)
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
