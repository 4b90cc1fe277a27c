//! Media hot paths, per 20 ms frame (one call's work per tick):
//! - send: player → G.711 encode → RTP packetize into a caller buffer;
//! - receive: RTP parse → sequence tracking → jitter buffer → G.711 decode →
//!   Goertzel DTMF detection (and, in the second case, the recorder).
//!
//! `cargo bench -p vflow-runtime --bench media`

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vflow_runtime::media::{
    FRAME_SAMPLES, Law, MediaConfig, MediaSession, Packetizer, PlayItem, RecorderConfig,
};

/// A speech-like test signal: harmonics of a gliding fundamental.
fn speech(samples: usize) -> Vec<i16> {
    let mut phase = 0.0f32;
    (0..samples)
        .map(|i| {
            let f0 = 120.0 + 30.0 * ((i as f32) / 4000.0).sin();
            phase += 2.0 * std::f32::consts::PI * f0 / 8000.0;
            let v: f32 = (1..12).map(|h| (h as f32 * phase).sin() / h as f32).sum();
            (v * 6000.0) as i16
        })
        .collect()
}

fn send(c: &mut Criterion) {
    let t0 = Instant::now();
    let mut s = MediaSession::new(MediaConfig::new(Law::Ulaw, Some(101), 1, 1, 1), t0);
    let prompt: Arc<[i16]> = speech(8000 * 10).into();
    let mut out = [0u8; 200];
    let mut t = t0;
    c.bench_function("media/send: play + encode + packetize, per frame", |b| {
        b.iter(|| {
            if !s.is_playing() {
                s.play(PlayItem::Samples(prompt.clone()));
            }
            t += Duration::from_millis(20);
            black_box(s.poll_frame(t, &mut out))
        })
    });
}

/// Pre-built packets of a long µ-law stream from a peer.
fn packets(n: usize) -> Vec<Vec<u8>> {
    let pcm = speech(n * FRAME_SAMPLES);
    let mut tx = Packetizer::new(0x5151, 7);
    let mut buf = [0u8; 200];
    let mut payload = [0u8; FRAME_SAMPLES];
    pcm.chunks(FRAME_SAMPLES)
        .enumerate()
        .map(|(i, chunk)| {
            Law::Ulaw.encode(chunk, &mut payload);
            let len = tx
                .write(0, (i * FRAME_SAMPLES) as u32, false, &payload, &mut buf)
                .unwrap();
            buf[..len].to_vec()
        })
        .collect()
}

fn receive(c: &mut Criterion) {
    let stream = packets(50 * 60);
    for recording in [false, true] {
        let name = if recording {
            "media/receive: parse + jitter + decode + Goertzel + record, per frame"
        } else {
            "media/receive: parse + jitter + decode + Goertzel, per frame"
        };
        let t0 = Instant::now();
        let mut s = MediaSession::new(MediaConfig::new(Law::Ulaw, Some(101), 1, 1, 1), t0);
        let mut i = 0usize;
        let mut drained = Vec::with_capacity(64 * 1024);
        c.bench_function(name, |b| {
            b.iter(|| {
                // A new stream (new SSRC) each time the pre-built one runs
                // out would cost a flush; restart the session instead.
                if i == stream.len() {
                    i = 0;
                    s = MediaSession::new(MediaConfig::new(Law::Ulaw, Some(101), 1, 1, 1), t0);
                }
                if recording && !s.is_recording() {
                    s.start_recording(RecorderConfig {
                        max_ms: 3_600_000,
                        silence_ms: None,
                        no_speech_ms: None,
                        ..RecorderConfig::default()
                    });
                }
                let r = s.handle_rtp(t0, black_box(&stream[i]));
                i += 1;
                if recording && i.is_multiple_of(50) {
                    drained.clear();
                    s.drain_recorded(&mut drained);
                }
                black_box(r)
            })
        });
    }
}

fn codec(c: &mut Criterion) {
    let pcm = speech(FRAME_SAMPLES);
    let mut codes = [0u8; FRAME_SAMPLES];
    let mut back = [0i16; FRAME_SAMPLES];
    c.bench_function("media/g711: µ-law encode 160 samples", |b| {
        b.iter(|| Law::Ulaw.encode(black_box(&pcm), &mut codes))
    });
    c.bench_function("media/g711: µ-law decode 160 samples", |b| {
        b.iter(|| Law::Ulaw.decode(black_box(&codes), &mut back))
    });
}

criterion_group!(benches, send, receive, codec);
criterion_main!(benches);
