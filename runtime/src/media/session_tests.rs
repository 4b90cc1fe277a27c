//! MediaSession tests: a simulated peer built from the same Packetizer,
//! virtual time, and generated audio.

use super::*;
use crate::media::dtmf::inband::signals;
use crate::media::dtmf::{DtmfSource, TelephoneEvent};
use crate::media::g711::ulaw_encode;
use crate::media::player::samples;
use std::sync::Arc;

const EVENT_PT: u8 = 101;

fn session(t0: Instant) -> MediaSession {
    MediaSession::new(
        MediaConfig::new(Law::Ulaw, Some(EVENT_PT), 0xABCD, 1000, 50_000),
        t0,
    )
}

fn ms(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

/// The far end: sends µ-law audio frames and telephone events.
struct Peer {
    tx: Packetizer,
    ts: u32,
    buf: [u8; 200],
}

impl Peer {
    fn new() -> Self {
        Peer {
            tx: Packetizer::new(0x5151, 7),
            ts: 1234,
            buf: [0; 200],
        }
    }

    /// The next audio packet for `pcm` (any length), advancing the timestamp.
    fn audio(&mut self, pcm: &[i16]) -> Vec<u8> {
        let payload: Vec<u8> = pcm.iter().map(|&s| ulaw_encode(s)).collect();
        let n = self
            .tx
            .write(0, self.ts, false, &payload, &mut self.buf)
            .unwrap();
        self.ts = self.ts.wrapping_add(pcm.len() as u32);
        self.buf[..n].to_vec()
    }

    fn event(&mut self, ts: u32, ev: TelephoneEvent) -> Vec<u8> {
        let n = self
            .tx
            .write(EVENT_PT, ts, false, &ev.emit(), &mut self.buf)
            .unwrap();
        self.buf[..n].to_vec()
    }
}

fn drain(s: &mut MediaSession) -> Vec<MediaEvent> {
    s.events().collect()
}

fn digits(events: &[MediaEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Dtmf(d) => Some(d.key),
            _ => None,
        })
        .collect()
}

/// Sends `pcm` as 20 ms packets, one per 20 ms of virtual time from `at_ms`.
fn send_audio(s: &mut MediaSession, peer: &mut Peer, t0: Instant, at_ms: u64, pcm: &[i16]) -> u64 {
    let mut t = at_ms;
    for chunk in pcm.chunks(FRAME_SAMPLES) {
        s.handle_rtp(ms(t0, t), &peer.audio(chunk)).unwrap();
        t += 20;
    }
    t
}

#[test]
fn playback_is_paced_packetized_and_reports_its_end() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let prompt: Vec<i16> = (0..400).map(|i| (i * 50) as i16).collect();
    s.play(samples(prompt.clone()));
    s.play_beep();
    assert!(s.is_playing());
    let mut out = [0u8; 200];
    let mut audio = vec![];
    let mut finished_at = None;
    for k in 0..15u64 {
        let n = s.poll_frame(ms(t0, k * 20), &mut out).unwrap();
        assert_eq!(n, 12 + 160);
        let p = RtpPacket::parse(&out[..n]).unwrap();
        assert_eq!(p.payload_type, 0);
        assert_eq!(p.ssrc, 0xABCD);
        assert_eq!(p.sequence, 1000 + k as u16);
        assert_eq!(p.timestamp, 50_000 + 160 * k as u32);
        assert_eq!(p.marker, k == 0);
        let mut pcm = [0i16; FRAME_SAMPLES];
        Law::Ulaw.decode(p.payload, &mut pcm);
        audio.extend_from_slice(&pcm);
        if drain(&mut s).contains(&MediaEvent::PlaybackFinished) {
            assert!(finished_at.is_none(), "reported once");
            finished_at = Some(k);
        }
    }
    // 400 + 2000 samples = 15 frames: finished while producing frame 14.
    assert_eq!(finished_at, Some(14));
    assert!(!s.is_playing());
    for (a, b) in prompt.iter().zip(&audio) {
        assert!((a - b).abs() <= (a.abs() / 16).max(8), "{a} vs {b}");
    }
    assert!(!s.needs_pacing(), "idle: no 20 ms pacing needed");
    for k in 15..20u64 {
        assert_eq!(
            s.poll_frame(ms(t0, k * 20), &mut out),
            None,
            "silence is not sent"
        );
    }
}

#[test]
fn idle_sends_a_keepalive_a_second_with_the_marker_after_each_gap() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let mut out = [0u8; 200];
    let mut sent = vec![];
    // Polled every 100 ms for 3 s, as the driver does while idle.
    for k in 0..30u64 {
        if let Some(n) = s.poll_frame(ms(t0, k * 100), &mut out) {
            let p = RtpPacket::parse(&out[..n]).unwrap();
            assert!(p.payload.iter().all(|&c| c == Law::Ulaw.silence_code()));
            sent.push((k, p.sequence, p.timestamp - 50_000, p.marker));
        }
    }
    assert_eq!(
        sent,
        vec![
            (0, 1000, 0, true),
            (10, 1001, 8000, true),
            (20, 1002, 16_000, true)
        ],
        "one a second, on the wall clock, consecutive sequence numbers"
    );
    // A prompt after the pause: 20 ms pacing, marker on its first packet only.
    s.play(samples(vec![1000; 480]));
    assert!(s.needs_pacing());
    let marks: Vec<bool> = (0..3u64)
        .map(|k| {
            let n = s.poll_frame(ms(t0, 3000 + k * 20), &mut out).unwrap();
            RtpPacket::parse(&out[..n]).unwrap().marker
        })
        .collect();
    assert_eq!(marks, [true, false, false]);
}

#[test]
fn continuous_silence_sends_every_frame() {
    let t0 = Instant::now();
    let mut cfg = MediaConfig::new(Law::Ulaw, Some(EVENT_PT), 0xABCD, 1000, 50_000);
    cfg.silence = Silence::Continuous;
    let mut s = MediaSession::new(cfg, t0);
    assert!(s.needs_pacing());
    let mut out = [0u8; 200];
    for k in 0..10u64 {
        let n = s.poll_frame(ms(t0, k * 20), &mut out).unwrap();
        let p = RtpPacket::parse(&out[..n]).unwrap();
        assert_eq!(p.timestamp - 50_000, 160 * k as u32);
        assert_eq!(p.marker, k == 0);
    }
}

#[test]
fn barge_in_stops_without_a_finished_event() {
    let t0 = Instant::now();
    let mut s = session(t0);
    s.play(samples(vec![1000; 8000]));
    let mut out = [0u8; 200];
    s.poll_frame(t0, &mut out);
    s.stop_playback();
    for k in 1..5 {
        s.poll_frame(ms(t0, k * 20), &mut out);
    }
    assert!(drain(&mut s).is_empty());
}

/// Every packet a turn at `t` sends: (timestamp offset, marker, first sample).
fn turn(s: &mut MediaSession, t: Instant) -> Vec<(u32, bool, i16)> {
    let mut out = [0u8; 200];
    let mut sent = vec![];
    while let Some(n) = s.poll_frame(t, &mut out) {
        let p = RtpPacket::parse(&out[..n]).unwrap();
        let mut pcm = [0i16; FRAME_SAMPLES];
        Law::Ulaw.decode(p.payload, &mut pcm);
        sent.push((p.timestamp - 50_000, p.marker, pcm[0]));
    }
    sent
}

#[test]
fn a_late_turn_catches_up_and_a_long_stall_leaves_a_gap() {
    let t0 = Instant::now();
    let mut s = session(t0);
    // Frame k of the prompt holds the value 100·k, so the audio order shows.
    let prompt: Vec<i16> = (0..400)
        .flat_map(|k| [(k * 100) as i16; FRAME_SAMPLES])
        .collect();
    s.play(samples(prompt));
    let level = |k: i16| crate::media::g711::ulaw_decode(ulaw_encode(k * 100));
    assert_eq!(turn(&mut s, t0), vec![(0, true, level(0))]);
    assert_eq!(turn(&mut s, ms(t0, 21)), vec![(160, false, level(1))]);
    assert_eq!(turn(&mut s, ms(t0, 22)), vec![], "nothing due twice");
    // 40 ms late: the two missed slots go at once, in order, on their timestamps.
    assert_eq!(
        turn(&mut s, ms(t0, 81)),
        vec![
            (320, false, level(2)),
            (480, false, level(3)),
            (640, false, level(4))
        ]
    );
    // A 1 s stall: the last MAX_CATCH_UP slots and this one go; the prompt
    // resumes where it was after a marked gap.
    let sent = turn(&mut s, ms(t0, 1081));
    let first = 54 - MAX_CATCH_UP as u32;
    assert_eq!(sent.len(), MAX_CATCH_UP as usize + 1);
    assert_eq!(sent[0], (first * 160, true, level(5)));
    assert_eq!(sent[5], (54 * 160, false, level(10)));
}

#[test]
fn rfc4733_digit_reported_once_and_inband_switched_off() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let mut peer = Peer::new();
    let start = 8000;
    for (i, dur) in [160u16, 320, 480, 640].iter().enumerate() {
        let end = i == 3;
        let ev = TelephoneEvent {
            event: 11,
            end,
            volume: 10,
            duration: *dur,
        };
        s.handle_rtp(ms(t0, 20 * i as u64), &peer.event(start, ev))
            .unwrap();
    }
    for _ in 0..2 {
        let ev = TelephoneEvent {
            event: 11,
            end: true,
            volume: 10,
            duration: 640,
        };
        s.handle_rtp(ms(t0, 80), &peer.event(start, ev)).unwrap();
    }
    let events = drain(&mut s);
    assert_eq!(
        events,
        vec![MediaEvent::Dtmf(Digit {
            key: '#',
            source: DtmfSource::Rfc4733
        })]
    );
    // An in-band tone afterwards is not reported: the peer does RFC 4733.
    let mut tone = vec![];
    signals::tone(&mut tone, '5', 200, 6000.0, 6000.0);
    send_audio(&mut s, &mut peer, t0, 100, &tone);
    s.poll_frame(ms(t0, 500), &mut [0; 200]);
    assert_eq!(digits(&drain(&mut s)), "");
}

#[test]
fn inband_digits_through_reordering_duplicates_and_loss() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let mut peer = Peer::new();
    let mut pcm = vec![];
    signals::silence(&mut pcm, 100);
    for key in "4#".chars() {
        signals::tone(&mut pcm, key, 120, 5000.0, 6000.0);
        signals::silence(&mut pcm, 100);
    }
    let packets: Vec<Vec<u8>> = pcm.chunks(FRAME_SAMPLES).map(|c| peer.audio(c)).collect();
    // Swap pairs, duplicate every fifth packet, drop packet 20 (in a silence).
    let mut order: Vec<usize> = (0..packets.len()).collect();
    for pair in order.chunks_mut(2) {
        pair.reverse();
    }
    let mut t = 0;
    for &i in &order {
        if i == 20 {
            continue;
        }
        s.handle_rtp(ms(t0, t), &packets[i]).unwrap();
        if i % 5 == 0 {
            s.handle_rtp(ms(t0, t), &packets[i]).unwrap();
        }
        t += 20;
    }
    s.poll_frame(ms(t0, t + 200), &mut [0; 200]);
    let events = drain(&mut s);
    assert_eq!(digits(&events), "4#");
    assert!(
        events
            .iter()
            .all(|e| matches!(e, MediaEvent::Dtmf(d) if d.source == DtmfSource::InBand))
    );
    let st = s.stats();
    assert_eq!(st.received as usize, packets.len() - 1);
    assert_eq!(
        st.duplicates as usize,
        packets.len().div_ceil(5) - 1,
        "packet 20 was dropped"
    );
    assert!(st.reordered > 10);
    assert_eq!(st.lost, 1);
}

#[test]
fn recording_stops_on_silence_after_speech() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let mut peer = Peer::new();
    s.start_recording(RecorderConfig {
        silence_ms: Some(2000),
        ..RecorderConfig::default()
    });
    let mut speech = signals::vowel(3000, 110.0, 150.0, 700.0, 1200.0, 8000.0);
    signals::add_noise(&mut speech, 500.0, 3);
    let mut t = send_audio(&mut s, &mut peer, t0, 0, &speech);
    let quiet = vec![0i16; 8000 * 4];
    let mut stopped_at = None;
    for chunk in quiet.chunks(FRAME_SAMPLES) {
        s.handle_rtp(ms(t0, t), &peer.audio(chunk)).unwrap();
        t += 20;
        if let Some(MediaEvent::RecordingStopped(r)) = s.poll_event() {
            stopped_at = Some((r, t));
        }
    }
    let (reason, _) = stopped_at.expect("stopped on silence");
    assert_eq!(reason, StopReason::Silence);
    let pending = s.recorded_pending();
    assert!(pending > 0, "speech is committed");
    let mut streamed = vec![];
    assert_eq!(s.drain_recorded(&mut streamed), pending);
    assert_eq!(streamed.len(), pending * 2);
    assert_eq!(s.recorded_pending(), 0);
    let rec = s.stop_recording(StopReason::Hangup).unwrap();
    assert_eq!(rec.reason, StopReason::Silence);
    assert!(rec.has_speech);
    assert!(
        (2900..=3000).contains(&rec.duration_ms),
        "{}",
        rec.duration_ms
    );
    assert_eq!(
        streamed.len() / 2 + rec.samples.len(),
        rec.total_samples as usize
    );
    assert!(!s.is_recording());
}

#[test]
fn recording_ended_by_an_inband_hash_drops_the_tone() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let mut peer = Peer::new();
    s.start_recording(RecorderConfig::default());
    let mut pcm = signals::vowel(1000, 120.0, 160.0, 600.0, 1800.0, 8000.0);
    signals::tone(&mut pcm, '#', 100, 6000.0, 6000.0);
    let mut t = 0;
    let mut rec = None;
    for chunk in pcm.chunks(FRAME_SAMPLES) {
        s.handle_rtp(ms(t0, t), &peer.audio(chunk)).unwrap();
        t += 20;
        while let Some(ev) = s.poll_event() {
            if let MediaEvent::Dtmf(Digit { key: '#', .. }) = ev {
                rec = s.stop_recording(StopReason::Dtmf('#'));
            }
        }
    }
    let rec = rec.expect("# ended it");
    assert_eq!(rec.reason, StopReason::Dtmf('#'));
    // The 1 s of speech stays; the tone (about 60 ms heard so far) is cut.
    assert!(
        (960..=1000).contains(&rec.duration_ms),
        "{}",
        rec.duration_ms
    );
}

#[test]
fn only_silence_is_nothing_recorded_and_the_jitter_tail_is_included() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let mut peer = Peer::new();
    s.start_recording(RecorderConfig::default());
    let t = send_audio(&mut s, &mut peer, t0, 0, &[3; 8000]);
    // Packets stop; the driver's tick flushes the jitter buffer.
    s.poll_frame(ms(t0, t + 200), &mut [0; 200]);
    let rec = s.stop_recording(StopReason::Hangup).unwrap();
    assert!(!rec.has_speech);
    assert_eq!(rec.reason, StopReason::Hangup);
}

#[test]
fn a_pause_in_the_stream_is_kept_as_silence_in_the_recording() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let mut peer = Peer::new();
    s.start_recording(RecorderConfig {
        silence_ms: None,
        ..RecorderConfig::default()
    });
    let loud = signals::vowel(1000, 120.0, 160.0, 600.0, 1800.0, 8000.0);
    send_audio(&mut s, &mut peer, t0, 0, &loud);
    peer.ts = peer.ts.wrapping_add(8000 * 2); // 2 s of silence suppression
    send_audio(&mut s, &mut peer, t0, 3000, &loud);
    let rec = s.stop_recording(StopReason::Hangup).unwrap();
    assert_eq!(rec.duration_ms, 4000);
}

#[test]
fn media_timeout_fires_once_and_rtp_rearms_it() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let mut peer = Peer::new();
    let mut out = [0u8; 200];
    s.poll_frame(ms(t0, 29_000), &mut out);
    assert!(drain(&mut s).is_empty());
    s.handle_rtp(ms(t0, 29_500), &peer.audio(&[0; 160]))
        .unwrap();
    assert_eq!(s.last_media_received(), Some(ms(t0, 29_500)));
    s.poll_frame(ms(t0, 59_000), &mut out);
    assert!(drain(&mut s).is_empty());
    s.poll_frame(ms(t0, 59_500), &mut out);
    assert_eq!(drain(&mut s), vec![MediaEvent::MediaTimeout]);
    s.poll_frame(ms(t0, 70_000), &mut out);
    assert!(drain(&mut s).is_empty(), "once");
    s.set_rtp_timeout(None, ms(t0, 70_000));
    s.poll_frame(ms(t0, 200_000), &mut out);
    assert!(drain(&mut s).is_empty(), "off while on hold");
}

#[test]
fn bad_datagrams_are_counted_errors() {
    let t0 = Instant::now();
    let mut s = session(t0);
    assert!(matches!(
        s.handle_rtp(t0, b"hello"),
        Err(RtpError::TooShort { .. })
    ));
    assert!(s.handle_rtp(t0, &[0u8; 40]).is_err());
    let mut p = Packetizer::new(9, 9);
    let mut buf = [0u8; 64];
    let n = p.write(13, 0, false, &[0; 1], &mut buf).unwrap(); // comfort noise
    assert_eq!(s.handle_rtp(t0, &buf[..n]), Err(RtpError::PayloadType(13)));
    let st = s.stats();
    assert_eq!(
        (st.malformed, st.wrong_payload_type, st.received),
        (2, 1, 0)
    );
    assert_eq!(s.last_media_received(), None);
}

#[test]
fn a_new_ssrc_restarts_tracking() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let mut a = Peer::new();
    let mut b = Peer::new();
    b.tx = Packetizer::new(0x7777, 40_000);
    b.ts = 999_999;
    send_audio(&mut s, &mut a, t0, 0, &[100; 1600]);
    send_audio(&mut s, &mut b, t0, 200, &[100; 1600]);
    let st = s.stats();
    assert_eq!(
        (st.ssrc_changes, st.received, st.lost, st.late),
        (1, 20, 0, 0)
    );
}

#[test]
fn sending_dtmf_replaces_audio_then_resumes() {
    let t0 = Instant::now();
    let mut s = session(t0);
    s.play(samples(vec![500; 8000]));
    let mut out = [0u8; 200];
    s.poll_frame(t0, &mut out);
    assert!(s.send_dtmf('9', 60));
    let mut kinds = vec![];
    for k in 1..=8u64 {
        let n = s.poll_frame(ms(t0, k * 20), &mut out).unwrap();
        let p = RtpPacket::parse(&out[..n]).unwrap();
        if p.payload_type == EVENT_PT {
            let ev = TelephoneEvent::parse(p.payload).unwrap();
            assert_eq!((ev.event, p.timestamp), (9, 50_000 + 160));
            kinds.push(if ev.end {
                'E'
            } else if p.marker {
                'M'
            } else {
                'u'
            });
        } else {
            kinds.push('a');
        }
    }
    assert_eq!(kinds.iter().collect::<String>(), "MuEEEaaa");
    assert!(!s.send_dtmf('x', 60));
    let mut no_events = MediaSession::new(MediaConfig::new(Law::Alaw, None, 1, 1, 1), t0);
    assert!(!no_events.send_dtmf('1', 60));
}

#[test]
fn steady_state_does_not_grow() {
    // Many frames in and out; the only heap use is the prompt Arc and the
    // recorder, whose buffer stays bounded when drained.
    let t0 = Instant::now();
    let mut s = session(t0);
    let mut peer = Peer::new();
    let prompt: Arc<[i16]> = Arc::from(vec![700i16; 8000 * 60]);
    s.play(PlayItem::Samples(prompt.clone()));
    s.start_recording(RecorderConfig {
        max_ms: 600_000,
        silence_ms: None,
        ..RecorderConfig::default()
    });
    let speech = signals::vowel(1000, 120.0, 160.0, 600.0, 1800.0, 8000.0);
    let mut bytes = Vec::new();
    let mut out = [0u8; 200];
    for sec in 0..30u64 {
        send_audio(&mut s, &mut peer, t0, sec * 1000, &speech);
        for k in 0..50 {
            s.poll_frame(ms(t0, sec * 1000 + k * 20), &mut out).unwrap();
        }
        bytes.clear();
        s.drain_recorded(&mut bytes);
        assert!(
            bytes.len() <= 2 * 8000 + 2 * 160 * 8,
            "one second at a time"
        );
    }
    assert_eq!(
        Arc::strong_count(&prompt),
        2,
        "queued by reference, not copied"
    );
    assert!(s.events.capacity() <= 8);
}

#[test]
fn hostile_input_never_panics() {
    // Deterministic fuzz: garbage, valid headers with random fields and
    // payload sizes (0..3000 bytes), both negotiated payload types, SSRC
    // flips, interleaved with ticks and recording.
    let t0 = Instant::now();
    let mut s = session(t0);
    s.start_recording(RecorderConfig::default());
    let mut rng = signals::Noise(0x9E37_79B9);
    let mut r = move || (rng.next() * 2_147_483_647.0) as i64 as u32;
    let mut buf = vec![0u8; 3100];
    let mut out = [0u8; 200];
    for i in 0..20_000u64 {
        let len = (r() % 3100) as usize;
        for b in buf.iter_mut().take(len) {
            *b = r() as u8;
        }
        if len >= 12 && r() % 4 != 0 {
            buf[0] = 0x80 | (buf[0] & 0x0F) * u8::from(r() % 8 == 0);
            buf[1] = match r() % 3 {
                0 => 0,
                1 => EVENT_PT,
                _ => buf[1],
            } | (buf[1] & 0x80);
            if r() % 2 == 0 {
                buf[8..12].copy_from_slice(&[0, 0, 0, (r() % 2) as u8]);
            }
        }
        let _ = s.handle_rtp(ms(t0, i * 7), &buf[..len]);
        if i % 3 == 0 {
            s.poll_frame(ms(t0, i * 7), &mut out);
        }
        if i % 5000 == 0 {
            let _ = s.stop_recording(StopReason::Stopped);
            s.start_recording(RecorderConfig::default());
        }
        while s.poll_event().is_some() {}
    }
    assert!(s.stats().malformed > 0 && s.stats().received > 0);
}

/// sipp's recorded DTMF pcaps replay the same SSRC with sequence numbers and
/// timestamps that repeat or go backwards between keys: after a pause the
/// stream is followed as restarted, so every key is heard.
#[test]
fn replayed_event_streams_after_a_pause_are_all_heard() {
    let t0 = Instant::now();
    let mut s = session(t0);
    // One key: packets with sequence numbers from `seq`, one event timestamp.
    let key = |s: &mut MediaSession, at: u64, seq: u16, ts: u32, event: u8| {
        let mut tx = Packetizer::new(0x5151, seq);
        let mut buf = [0u8; 64];
        for i in 0..4u16 {
            let ev = TelephoneEvent {
                event,
                end: i == 3,
                volume: 10,
                duration: 160 * (i + 1),
            };
            let n = tx.write(EVENT_PT, ts, false, &ev.emit(), &mut buf).unwrap();
            s.handle_rtp(ms(t0, at + 20 * u64::from(i)), &buf[..n])
                .unwrap();
        }
    };
    key(&mut s, 0, 8042, 23200, 2); // "2"
    key(&mut s, 1000, 7984, 13280, 1); // "1": older sequence numbers
    key(&mut s, 2000, 7984, 13280, 1); // "1" again: the very same packets
    assert_eq!(digits(&drain(&mut s)), "211");
    // Without a pause the same packets are duplicates, reported once.
    key(&mut s, 2100, 7984, 13280, 1);
    assert_eq!(digits(&drain(&mut s)), "");
    // "1" after "2" is within the reorder window (61 back); only the exact
    // replay needed a restart.
    assert_eq!(s.stats().restarts, 1);
}
