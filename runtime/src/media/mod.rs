//! The media layer of a call, sans-IO: RTP in and out, G.711, DTMF, prompt
//! playback, `say`, and recording.
//!
//! Nothing here opens a socket, spawns a task or reads a clock. The driver
//! (tokio, one task per call) owns the UDP socket and a timer and pumps one
//! [`MediaSession`] per call:
//!
//! 1. every datagram from the call's RTP socket → [`MediaSession::handle_rtp`];
//! 2. every 20 ms while [`MediaSession::needs_pacing`] (something is playing),
//!    else every [`IDLE_POLL`] → [`MediaSession::poll_frame`] until `None`,
//!    sending each packet it writes;
//! 3. after either, drain [`MediaSession::poll_event`] (DTMF digits, playback
//!    finished, recording stopped, media timeout);
//! 4. while recording, now and then [`MediaSession::drain_recorded`] to stream
//!    the message to disk so memory per call stays small.
//!
//! Time comes in as `Instant`s passed by the caller. The steady state does no
//! heap allocation per packet and constant work per 20 ms frame.
//!
//! Architecture invariant: this module depends only on `std`, `rtp-rs` and
//! `hound` (the benchmark includes it by path), and never on the compiler.

pub mod dtmf;
pub mod g711;
pub mod jitter;
pub mod player;
pub mod recorder;
pub mod rtp;
pub mod say;
pub mod session;
pub mod wav;

pub use dtmf::{Digit, DtmfSource};
pub use g711::Law;
pub use player::{PlayItem, Player};
pub use recorder::{Recorder, RecorderConfig, Recording, StopReason};
pub use rtp::{Packetizer, RtpError, RtpPacket, RtpStats};
pub use say::{SayError, SayKind, say};
pub use session::{IDLE_POLL, MediaConfig, MediaEvent, MediaSession, Silence};
pub use wav::{Samples, WavError, load_prompt, pcm16_wav, wav_header};

/// Samples per second: every codec here is narrowband.
pub const SAMPLE_RATE: u32 = 8000;
/// Samples in one 20 ms frame (the packetisation time we send and pace at).
pub const FRAME_SAMPLES: usize = 160;
/// Milliseconds in one frame.
pub const FRAME_MS: u32 = 20;

/// One 20 ms frame of linear 16-bit audio.
pub type Frame = [i16; FRAME_SAMPLES];
