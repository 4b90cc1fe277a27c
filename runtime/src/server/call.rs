//! One call: routing, answering, the RTP socket and media session, and the
//! flow — `resume` → perform the effect → outcome — until the call ends.
//!
//! Invariant: a call runs on the flow set that was active when it arrived
//! (its program and prompts) until it ends, whatever is reloaded meanwhile.
//!
//! Invariant: a message being recorded when the caller hangs up (or the
//! server stops) is committed before the task ends; the flow is told
//! `hangup` only after that.

use super::registry::ActiveSet;
use super::{CallEvent, Shared, SipCommand};
use crate::media::{
    self, Law, MediaConfig, MediaEvent, MediaSession, PlayItem, RecorderConfig, StopReason,
};
use crate::routing::{self, CallTarget};
use crate::sip::{self, CallHandle, IncomingCall, TransferOutcome};
use crate::store::{Folder, NewMessage, RecordingFile, Store};
use crate::voicemail::{self, Listing, pin};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use vflow_compiler::exec::{CallInfo, Effect, Outcome, PromptItem, State};
use vflow_compiler::ir::SayMode;

pub async fn run(
    shared: Arc<Shared>,
    inc: IncomingCall,
    mut events: mpsc::UnboundedReceiver<CallEvent>,
) {
    let call = inc.call;
    let span = tracing::info_span!("call", id = %inc.call_id);
    let _enter = span.enter();
    drop(_enter);

    let target = CallTarget {
        request_user: inc.request_uri_user.clone().unwrap_or_default(),
        to_user: inc.to_user.clone().unwrap_or_default(),
        from_user: inc.from_user.clone().unwrap_or_default(),
        diverted_from: inc
            .diversion_user
            .clone()
            .or_else(|| inc.history_info_user.clone()),
    };
    // Held to the end of the call: a reload does not change a call in progress.
    let set = shared.registry.current();
    let route = routing::route(&shared.config.routing, &target, |k, n| {
        set.flows.has_entry(k, n)
    });
    let info = CallInfo {
        cli: target.from_user.clone(),
        ddi: target.request_user.clone(),
        caller_name: inc.from_display.clone().unwrap_or_default(),
        call_id: inc.call_id.clone(),
        reason: if target.diverted_from.is_some() {
            "no_answer".into()
        } else {
            "direct".into()
        },
    };
    let reason = info.reason.clone();
    let state = super::flows::start_call(&set.flows, route.kind, &route.name, info);
    tracing::info!(call_id = %inc.call_id, from = %target.from_user, kind = route.kind, name = %route.name, known = state.is_some(), flows = %set.origin, "incoming call");

    let sock = match shared.rtp_ports.bind() {
        Ok(s) => s,
        Err(e) => {
            if let Some(refused) = shared.rtp_ports.refusal_to_report() {
                tracing::error!(error = %e, refused, "no RTP port: calls answered 503");
            }
            let _ = shared
                .commands
                .send(SipCommand::Reject { call, status: 503 });
            return;
        }
    };
    let local_rtp = match sock.local_addr() {
        Ok(a) => SocketAddr::new(shared.config.sip.public_address.unwrap_or(a.ip()), a.port()),
        Err(_) => return,
    };
    let _ = shared.commands.send(SipCommand::Answer {
        call,
        rtp: local_rtp,
    });
    // Wait for the ACK (the endpoint ends the call itself after 64·T1), or
    // for the server's hard stop.
    let mut hard = shared.hard_stop.clone();
    let confirmed = loop {
        if *hard.borrow() {
            let _ = shared.commands.send(SipCommand::Hangup { call });
            break false;
        }
        tokio::select! {
            ev = events.recv() => match ev {
                Some(CallEvent::Confirmed) => break true,
                Some(CallEvent::MediaUpdated(_)) | Some(CallEvent::Transfer(_)) => {}
                Some(CallEvent::Ended { .. }) | None => break false,
            },
            _ = hard.changed() => {}
        }
    };
    if !confirmed {
        tracing::info!(call_id = %inc.call_id, "call ended before it was confirmed");
        return;
    }

    let law = match inc.offer.codec {
        sip::sdp::G711::Pcmu => Law::Ulaw,
        sip::sdp::G711::Pcma => Law::Alaw,
    };
    let seed = super::seed();
    let mut mcfg = MediaConfig::new(
        law,
        inc.offer.telephone_event_pt,
        seed as u32,
        (seed >> 32) as u16,
        (seed >> 16) as u32,
    );
    mcfg.rtp_timeout = Some(shared.config.rtp.timeout);
    mcfg.silence = shared.config.rtp.silence;
    mcfg.inband_dtmf = shared
        .config
        .rtp
        .inband_dtmf
        .listen(inc.offer.telephone_event_pt.is_some());
    let now = Instant::now();
    let mut io = CallIo {
        shared: shared.clone(),
        set,
        call,
        call_id: inc.call_id.clone(),
        caller: target.from_user.clone(),
        caller_name: inc.from_display.clone().unwrap_or_default(),
        session: MediaSession::new(mcfg, now),
        sock,
        remote: inc.offer.remote_rtp,
        tick: Box::pin(tokio::time::sleep(Duration::ZERO)),
        events,
        ended: false,
        rx: vec![0u8; 2048],
        tx: [0u8; 512],
        recording: None,
        recorded_ms: 0,
        reason,
        listings: HashMap::new(),
        pending_greetings: HashMap::new(),
        last_recording: None,
        hard: shared.hard_stop.clone(),
        hard_open: true,
    };

    match state {
        Some(state) => io.run_flow(state).await,
        None => {
            // Unknown targets sound like known ones that have nothing to say.
            io.play_names(&["vm-goodbye.wav"], false).await;
        }
    }
    if !io.ended {
        let _ = shared.commands.send(SipCommand::Hangup { call });
        // Flush the last packets and let the BYE go.
        io.ended = true;
    }
    let rtp = io.session.stats();
    tracing::info!(
        call_id = %inc.call_id,
        rtp_received = rtp.received,
        rtp_lost = rtp.lost,
        rtp_late = rtp.late,
        "call finished"
    );
}

/// The first grid point at or after `t`. Every call's media turns fall on
/// one 20 ms grid, so the runtime wakes once per grid point for all the
/// calls due then — 50 wake-ups a second whatever the number of calls —
/// rather than once per call turn spread over the 20 ms.
fn on_grid(t: tokio::time::Instant) -> tokio::time::Instant {
    static EPOCH: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(tokio::time::Instant::now);
    let frame = u128::from(media::FRAME_MS) * 1000;
    let points = t
        .saturating_duration_since(epoch)
        .as_micros()
        .div_ceil(frame);
    epoch + Duration::from_micros((points * frame) as u64)
}

#[cfg(test)]
#[test]
fn grid_points_are_at_or_after_and_stable() {
    let t0 = tokio::time::Instant::now();
    for ms in [0u64, 1, 7, 19, 20, 21, 39, 100, 1234] {
        let t = t0 + Duration::from_micros(ms * 1000 + 333);
        let g = on_grid(t);
        assert!(g >= t && g - t < Duration::from_millis(20), "{ms}");
        assert_eq!(on_grid(g), g, "a grid point is its own grid point");
        assert_eq!(
            on_grid(g + Duration::from_millis(20)),
            g + Duration::from_millis(20)
        );
    }
}

/// Samples of a recording written to its file at a time (0.25 s: few
/// writes, little memory held per call).
const RECORDING_PIECE: usize = media::SAMPLE_RATE as usize / 4;

/// What one step of the media loop produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Io {
    Digit(char),
    PlaybackDone,
    RecordingStopped(StopReason),
    Deadline,
    HungUp,
    Transfer(TransferOutcome),
}

/// An ongoing recording: the file it streams into and where it goes.
struct ActiveRecording {
    file: RecordingFile,
}

struct CallIo {
    shared: Arc<Shared>,
    /// The flows and prompts this call started on.
    set: Arc<ActiveSet>,
    call: CallHandle,
    call_id: String,
    caller: String,
    caller_name: String,
    session: MediaSession,
    sock: super::rtp_ports::RtpSocket,
    remote: SocketAddr,
    /// The next media turn: every 20 ms while something plays, every
    /// [`media::IDLE_POLL`] otherwise (see [`CallIo::pump_media`]).
    tick: std::pin::Pin<Box<tokio::time::Sleep>>,
    events: mpsc::UnboundedReceiver<CallEvent>,
    /// The SIP side is over (BYE, CANCEL, server stop).
    ended: bool,
    rx: Vec<u8>,
    tx: [u8; 512],
    recording: Option<ActiveRecording>,
    recorded_ms: u64,
    /// `$REASON`: picks the busy or unavailable greeting.
    reason: String,
    /// Each mailbox as this call first saw it (message indices refer to it).
    listings: HashMap<String, Listing>,
    /// Greetings recorded in this call, by (mailbox, kind), until `set_greeting`.
    pending_greetings: HashMap<(String, String), String>,
    /// The last recording this call stored (`record` or `leave_mail`), for
    /// `email attach`: its path under the data directory and its message id.
    last_recording: Option<(String, Option<String>)>,
    /// The server's hard stop; `hard_open` goes false if its sender is gone.
    hard: tokio::sync::watch::Receiver<bool>,
    hard_open: bool,
}

impl CallIo {
    async fn run_flow(&mut self, mut state: State) {
        let mut host = super::flows::CallHost {
            tz: self.shared.tz.clone(),
            vars: self.shared.vars.clone(),
        };
        let set = self.set.clone();
        let flows = &set.flows;
        let mut outcome = Outcome::Start;
        loop {
            let effect = flows.resume(&mut state, outcome, &mut host);
            let node = state.last_node.map(|(u, n)| {
                let unit = &flows.program.units[u as usize];
                format!(
                    "{}.{}",
                    unit.name,
                    unit.nodes.get(n as usize).map_or("?", |x| x.name.as_str())
                )
            });
            let shown = match &effect {
                // PINs are never logged.
                Effect::VerifyPin { mailbox, .. } | Effect::SetPin { mailbox, .. } => {
                    format!("{} mailbox={mailbox} (PIN not logged)", effect.name())
                }
                _ => effect.to_text(),
            };
            tracing::info!(call_id = %self.call_id, node = node.as_deref().unwrap_or("-"), effect = %shown, "effect");
            outcome = match &effect {
                Effect::Hangup { prompts } => {
                    self.play_prompts(prompts, false).await;
                    return;
                }
                Effect::Fault {
                    message,
                    file,
                    line,
                } => {
                    tracing::error!(call_id = %self.call_id, %file, line, %message, "flow fault; ending the call");
                    return;
                }
                Effect::Ended => return,
                other => self.perform(other, node.as_deref().unwrap_or("")).await,
            };
            if self.ended {
                // The flow hears `hangup` once, and ends.
                let last = flows.resume(&mut state, Outcome::Hangup, &mut host);
                tracing::info!(call_id = %self.call_id, effect = %last.to_text(), "caller hung up");
                return;
            }
        }
    }

    async fn perform(&mut self, effect: &Effect, node: &str) -> Outcome {
        match effect {
            Effect::Play { prompts, barge_in } => match self.play_prompts(prompts, *barge_in).await
            {
                Heard::Done(true) => Outcome::Ok,
                Heard::Done(false) => Outcome::Fail,
                Heard::Key(k) => Outcome::Keys(k.to_string()),
                Heard::HungUp => Outcome::Hangup,
            },
            Effect::Menu {
                prompts,
                keys,
                timeout_ms,
                interdigit_ms,
                ..
            } => {
                self.collect_menu(prompts, keys, *timeout_ms, *interdigit_ms)
                    .await
            }
            Effect::Input {
                prompts,
                max_digits,
                terminator,
                timeout_ms,
            } => {
                self.collect_input(prompts, *max_digits, terminator, *timeout_ms)
                    .await
            }
            Effect::LeaveMail {
                prompts,
                mailbox,
                greeting,
                beep,
                max_length_ms,
                review,
                priority,
            } => {
                self.leave_mail(
                    prompts,
                    mailbox,
                    *greeting,
                    *beep,
                    *max_length_ms,
                    *review,
                    priority,
                    node,
                )
                .await
            }
            Effect::Record {
                prompts,
                recording,
                max_length_ms,
                silence_ms,
                beep,
            } => {
                self.record(prompts, recording, *max_length_ms, *silence_ms, *beep)
                    .await
            }
            Effect::Transfer { prompts, target } => self.transfer(prompts, target, None, "").await,
            Effect::AssistedTransfer {
                prompts,
                target,
                timeout_ms,
                music,
            } => {
                self.transfer(prompts, target, Some(*timeout_ms), music)
                    .await
            }
            Effect::Wait {
                prompts,
                duration_ms,
                music,
            } => {
                if let Heard::HungUp = self.play_prompts(prompts, false).await {
                    return Outcome::Hangup;
                }
                let until = Instant::now() + Duration::from_millis(*duration_ms);
                self.hold(music, until).await
            }
            Effect::VerifyPin { mailbox, pin } => self.verify_pin(mailbox, pin).await,
            Effect::MessageCount { mailbox, folder } => self.message_count(mailbox, folder).await,
            Effect::PlayMessage {
                prompts,
                mailbox,
                folder,
                index,
                envelope,
                barge_in,
            } => {
                self.play_message(prompts, mailbox, folder, *index, *envelope, *barge_in)
                    .await
            }
            Effect::SaveMessage {
                prompts,
                mailbox,
                folder,
                index,
            } => {
                self.move_message(prompts, mailbox, folder, *index, Folder::Saved)
                    .await
            }
            Effect::DeleteMessage {
                prompts,
                mailbox,
                folder,
                index,
            } => {
                self.move_message(prompts, mailbox, folder, *index, Folder::Deleted)
                    .await
            }
            Effect::RecordGreeting {
                prompts,
                mailbox,
                kind,
                max_length_ms,
            } => {
                self.record_greeting(prompts, mailbox, kind, *max_length_ms)
                    .await
            }
            Effect::SetGreeting {
                prompts,
                mailbox,
                kind,
                use_,
            } => self.set_greeting(prompts, mailbox, kind, use_).await,
            Effect::SetPin {
                prompts,
                mailbox,
                pin,
            } => self.set_pin(prompts, mailbox, pin).await,
            Effect::Email {
                to,
                subject,
                body,
                attach,
            } => self.email(to, subject, body, *attach).await,
            Effect::Hangup { .. } | Effect::Fault { .. } | Effect::Ended => Outcome::Hangup,
        }
    }

    // ---- the media loop ------------------------------------------------------

    /// Runs media until something happens or `deadline` passes.
    async fn next(&mut self, deadline: Option<tokio::time::Instant>) -> Io {
        // One timer per wait, not per loop turn.
        let sleep = tokio::time::sleep_until(
            deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400)),
        );
        tokio::pin!(sleep);
        loop {
            if self.ended {
                return Io::HungUp;
            }
            if let Some(ev) = self.session.poll_event() {
                match ev {
                    MediaEvent::Dtmf(d) => return Io::Digit(d.key),
                    MediaEvent::PlaybackFinished => return Io::PlaybackDone,
                    MediaEvent::RecordingStopped(r) => return Io::RecordingStopped(r),
                    MediaEvent::MediaTimeout => {
                        tracing::info!(call_id = %self.call_id, "no media: ending the call");
                        self.ended = true;
                        let _ = self
                            .shared
                            .commands
                            .send(SipCommand::Hangup { call: self.call });
                        return Io::HungUp;
                    }
                }
            }
            // A prompt queued while idle starts now, not at the next idle
            // turn. (A turn's own next deadline is never past this grid
            // point, so this does not fire again after the reset.)
            let now = tokio::time::Instant::now();
            if self.tick.deadline() > on_grid(now + self.media_period()) {
                self.tick.as_mut().reset(now);
            }
            tokio::select! {
                // The media turn first: most wake-ups are for it, and then
                // the other branches are polled once (after the turn, before
                // sleeping), not twice.
                biased;
                _ = self.tick.as_mut() => {
                    self.pump_media();
                    // A late turn is not repeated: the session sends the
                    // frames it missed at once.
                    let period = self.media_period();
                    let now = tokio::time::Instant::now();
                    let mut next = on_grid(self.tick.deadline() + period);
                    if next <= now {
                        next = on_grid(now + period);
                    }
                    self.tick.as_mut().reset(next);
                }
                ev = self.events.recv() => match ev {
                    Some(CallEvent::Ended { .. }) | None => { self.ended = true; return Io::HungUp; }
                    Some(CallEvent::MediaUpdated(offer)) => self.remote = offer.remote_rtp,
                    Some(CallEvent::Transfer(o)) => return Io::Transfer(o),
                    Some(CallEvent::Confirmed) => {}
                },
                changed = self.hard.changed(), if self.hard_open => {
                    if changed.is_err() {
                        self.hard_open = false;
                    } else if *self.hard.borrow() {
                        self.ended = true;
                        let _ = self.shared.commands.send(SipCommand::Hangup { call: self.call });
                        return Io::HungUp;
                    }
                }
                _ = &mut sleep, if deadline.is_some() => return Io::Deadline,
            }
        }
    }

    fn media_period(&self) -> Duration {
        if self.session.needs_pacing() {
            Duration::from_millis(u64::from(media::FRAME_MS))
        } else {
            media::IDLE_POLL
        }
    }

    /// One turn of the media: take every datagram that arrived, send the
    /// frame due (if any), stream the recording. One wake-up per turn per
    /// call whatever the peer sends: RTP waits in the socket for at most
    /// 20 ms while we play and 100 ms while we listen (five packets; DTMF
    /// and recording work on RTP timestamps, so batching changes nothing
    /// they see).
    fn pump_media(&mut self) {
        let now = Instant::now();
        while let Ok((n, _from)) = self.sock.try_recv_from(&mut self.rx) {
            // Malformed or foreign packets are counted by the session and ignored.
            let _ = self.session.handle_rtp(now, &self.rx[..n]);
        }
        while let Some(n) = self.session.poll_frame(now, &mut self.tx) {
            if !self.remote.ip().is_unspecified() {
                let _ = self.sock.try_send_to(&self.tx[..n], self.remote);
            }
        }
        self.stream_recording();
    }

    /// Moves what the recorder committed into the file, in pieces of a
    /// quarter second or more (a write per 12 frames, not per turn); the rest comes
    /// with the tail when the recording stops.
    fn stream_recording(&mut self) {
        let Some(active) = self.recording.as_mut() else {
            return;
        };
        if self.session.recorded_pending() < RECORDING_PIECE {
            return;
        }
        let mut piece = Vec::new();
        self.session.drain_recorded(&mut piece);
        if let Err(e) = active.file.append(&piece) {
            tracing::error!(call_id = %self.call_id, error = %e, "cannot write a recording");
        }
    }

    // ---- prompts ---------------------------------------------------------------

    /// Queues prompt items; returns false if one could not be resolved.
    fn enqueue(&mut self, prompts: &[PromptItem]) -> bool {
        let mut all = true;
        let year = Some(
            jiff::Timestamp::now()
                .to_zoned_datetime(self.shared.tz.clone())
                .year() as i32,
        );
        for item in prompts {
            let names: Vec<String> = match item {
                PromptItem::File(f) => vec![f.clone()],
                PromptItem::Say { say, value } => {
                    let kind = match say {
                        SayMode::Digits => media::SayKind::Digits,
                        SayMode::Number => media::SayKind::Number,
                        SayMode::Time => media::SayKind::Time,
                        SayMode::Date => media::SayKind::Date,
                    };
                    match media::say(kind, value, year) {
                        Ok(n) => n,
                        Err(e) => {
                            tracing::warn!(call_id = %self.call_id, error = %e, "cannot say a value");
                            all = false;
                            continue;
                        }
                    }
                }
                PromptItem::Speak { speak } => {
                    tracing::warn!(call_id = %self.call_id, text = %speak, "no text-to-speech engine is configured; skipping `speak`");
                    all = false;
                    continue;
                }
            };
            for n in names {
                match self.set.prompts.get(&n) {
                    Some(s) => self.session.play(PlayItem::Samples(s)),
                    None => {
                        tracing::warn!(call_id = %self.call_id, prompt = %n, "prompt not found; skipping it");
                        all = false;
                    }
                }
            }
        }
        all
    }

    async fn play_names(&mut self, names: &[&str], barge_in: bool) -> Heard {
        let items: Vec<PromptItem> = names
            .iter()
            .map(|n| PromptItem::File(n.to_string()))
            .collect();
        self.play_prompts(&items, barge_in).await
    }

    /// Plays prompts to the end, or until a key (with barge-in) or hang-up.
    async fn play_prompts(&mut self, prompts: &[PromptItem], barge_in: bool) -> Heard {
        let ok = self.enqueue(prompts);
        if !self.session.is_playing() {
            return Heard::Done(ok);
        }
        loop {
            match self.next(None).await {
                Io::PlaybackDone => return Heard::Done(ok),
                Io::Digit(k) if barge_in => {
                    self.session.stop_playback();
                    return Heard::Key(k);
                }
                Io::HungUp => return Heard::HungUp,
                _ => {}
            }
        }
    }

    /// Plays `music` (or silence) in a loop until `until`.
    async fn hold(&mut self, music: &str, until: Instant) -> Outcome {
        let deadline = tokio::time::Instant::from_std(until);
        let tune = (!music.is_empty())
            .then(|| self.set.prompts.get(music))
            .flatten();
        loop {
            if let Some(t) = &tune {
                if !self.session.is_playing() {
                    self.session.play(PlayItem::Samples(t.clone()));
                }
            }
            match self.next(Some(deadline)).await {
                Io::Deadline => {
                    self.session.stop_playback();
                    return Outcome::Ok;
                }
                Io::HungUp => return Outcome::Hangup,
                _ => {}
            }
        }
    }

    // ---- keys ------------------------------------------------------------------

    async fn collect_menu(
        &mut self,
        prompts: &[PromptItem],
        keys: &[String],
        timeout_ms: u64,
        interdigit_ms: u64,
    ) -> Outcome {
        let mut entered = String::new();
        match self.play_prompts(prompts, true).await {
            Heard::Key(k) => entered.push(k),
            Heard::HungUp => return Outcome::Hangup,
            Heard::Done(_) => {}
        }
        if entered.is_empty() {
            match self.digit_within(timeout_ms).await {
                Some(Ok(k)) => entered.push(k),
                Some(Err(())) => return Outcome::Hangup,
                None => return Outcome::Timeout,
            }
        }
        // A longer listed sequence may still be coming.
        while vflow_compiler::exec::key_prefix_of_longer(keys, &entered) {
            match self.digit_within(interdigit_ms).await {
                Some(Ok(k)) => entered.push(k),
                Some(Err(())) => return Outcome::Hangup,
                None => break,
            }
        }
        Outcome::Keys(entered)
    }

    async fn collect_input(
        &mut self,
        prompts: &[PromptItem],
        max_digits: i64,
        terminator: &str,
        timeout_ms: u64,
    ) -> Outcome {
        let mut digits = String::new();
        let max = max_digits.max(1) as usize;
        let term = terminator.chars().next();
        match self.play_prompts(prompts, true).await {
            Heard::Key(k) => digits.push(k),
            Heard::HungUp => return Outcome::Hangup,
            Heard::Done(_) => {}
        }
        loop {
            if let Some(last) = digits.chars().last() {
                if Some(last) == term || digits.chars().filter(|c| Some(*c) != term).count() >= max
                {
                    return Outcome::Digits(digits);
                }
            }
            match self.digit_within(timeout_ms).await {
                Some(Ok(k)) => digits.push(k),
                Some(Err(())) => return Outcome::Hangup,
                None if digits.is_empty() => return Outcome::Timeout,
                None => return Outcome::Digits(digits),
            }
        }
    }

    /// The next key within `ms`: `None` on timeout, `Err` on hang-up.
    async fn digit_within(&mut self, ms: u64) -> Option<Result<char, ()>> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        loop {
            match self.next(Some(deadline)).await {
                Io::Digit(k) => return Some(Ok(k)),
                Io::Deadline => return None,
                Io::HungUp => return Some(Err(())),
                _ => {}
            }
        }
    }

    // ---- recording ---------------------------------------------------------------

    /// Records until max length, silence, `#` or hang-up. `None`: nothing usable.
    async fn capture(
        &mut self,
        id: &str,
        max_ms: u64,
        silence_ms: Option<u32>,
    ) -> Option<(RecordingFile, StopReason)> {
        let file = match self.shared.store.begin_recording(id) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(call_id = %self.call_id, error = %e, "cannot start a recording");
                return None;
            }
        };
        self.recording = Some(ActiveRecording { file });
        self.session.start_recording(RecorderConfig {
            max_ms: max_ms.min(u64::from(u32::MAX)) as u32,
            silence_ms,
            no_speech_ms: Some(10_000.max(silence_ms.unwrap_or(0))),
            ..RecorderConfig::default()
        });
        let reason = loop {
            match self.next(None).await {
                Io::Digit('#') => break StopReason::Dtmf('#'),
                Io::RecordingStopped(r) => break r,
                Io::HungUp => break StopReason::Hangup,
                _ => {}
            }
        };
        // Whatever the recorder still held (its tail) comes with the Recording.
        let rec = self.session.stop_recording(reason);
        let mut active = self.recording.take()?;
        let mut rest = Vec::new();
        if let Some(r) = &rec {
            r.append_pcm16_le(&mut rest);
        }
        let speech = rec.as_ref().is_some_and(|r| r.has_speech);
        if let Err(e) = active.file.append(&rest) {
            tracing::error!(call_id = %self.call_id, error = %e, "cannot write a recording");
            active.file.discard();
            return None;
        }
        self.recorded_ms = active.file.duration_ms();
        if !speech || self.recorded_ms == 0 {
            active.file.discard();
            return None;
        }
        Some((active.file, reason))
    }

    #[allow(clippy::too_many_arguments)]
    async fn leave_mail(
        &mut self,
        prompts: &[PromptItem],
        mailbox: &str,
        greeting: bool,
        beep: bool,
        max_length_ms: u64,
        review: bool,
        priority: &str,
        node: &str,
    ) -> Outcome {
        if !Store::valid_name(mailbox) {
            tracing::info!(call_id = %self.call_id, %mailbox, "leave_mail: not a mailbox name");
            return Outcome::Fail;
        }
        // Unknown and full mailboxes fail before anything is played, alike.
        let (cfg, mb) = (self.shared.config.voicemail.clone(), mailbox.to_string());
        let max_length_ms = match self
            .with_store(move |s| voicemail::can_take(s, &cfg, &mb))
            .await
        {
            Some(Ok(Ok(m))) => max_length_ms.min(m.length_limit_ms(&self.shared.config.voicemail)),
            Some(Ok(Err(why))) => {
                tracing::info!(call_id = %self.call_id, %mailbox, ?why, "leave_mail: the mailbox takes no message");
                return Outcome::Fail;
            }
            Some(Err(e)) => {
                tracing::error!(call_id = %self.call_id, %mailbox, error = %e, "leave_mail: cannot read the mailbox");
                return Outcome::Fail;
            }
            None => return Outcome::Fail,
        };
        if let Heard::HungUp = self.play_prompts(prompts, false).await {
            return Outcome::Hangup;
        }
        if greeting {
            // Any key skips the greeting, as callers expect.
            if let Heard::HungUp = self.greeting(mailbox).await {
                return Outcome::Hangup;
            }
        }
        loop {
            if beep {
                self.session.play_beep();
                if let Heard::HungUp = self.play_prompts(&[], false).await {
                    return Outcome::Hangup;
                }
                while self.session.is_playing() {
                    if self.next(None).await == Io::HungUp {
                        return Outcome::Hangup;
                    }
                }
            }
            let id = new_id();
            let Some((file, reason)) = self.capture(&id, max_length_ms, Some(5000)).await else {
                return if self.ended {
                    Outcome::Hangup
                } else {
                    Outcome::Fail
                };
            };
            let hung_up = reason == StopReason::Hangup || self.ended;
            let mut choice = '1';
            if review && !hung_up {
                choice = self.review(&file).await;
            }
            match choice {
                '3' => {
                    file.discard();
                    continue;
                }
                _ => {
                    let meta = NewMessage {
                        mailbox: mailbox.to_string(),
                        caller: self.caller.clone(),
                        caller_name: self.caller_name.clone(),
                        received_ms: crate::store::now_ms(),
                        priority: priority.to_string(),
                        origin_node: self.shared.config.node.name.clone(),
                        call_id: self.call_id.clone(),
                        flow_node: node.to_string(),
                    };
                    let store = self.shared.store.clone();
                    let committed =
                        tokio::task::spawn_blocking(move || store.commit_message(file, &meta))
                            .await;
                    return match committed {
                        Ok(Ok(m)) => {
                            tracing::info!(call_id = %self.call_id, %mailbox, message_id = %m.id, ms = m.duration_ms, "message stored");
                            self.last_recording = Some((
                                format!("messages/{}/{}.wav", m.mailbox, m.id),
                                Some(m.id.clone()),
                            ));
                            if self.ended {
                                Outcome::Hangup
                            } else {
                                Outcome::Ok
                            }
                        }
                        Ok(Err(e)) => {
                            tracing::error!(call_id = %self.call_id, error = %e, "cannot store a message");
                            Outcome::Fail
                        }
                        Err(e) => {
                            tracing::error!(call_id = %self.call_id, error = %e, "storing a message panicked");
                            Outcome::Fail
                        }
                    };
                }
            }
        }
    }

    /// `1` accept, `2` listen, `3` re-record; no answer or hang-up accepts.
    async fn review(&mut self, file: &RecordingFile) -> char {
        for _ in 0..3 {
            let items = [PromptItem::File("vm-msg-review.wav".into())];
            let key = match self.play_prompts(&items, true).await {
                Heard::Key(k) => Some(k),
                Heard::HungUp => return '1',
                Heard::Done(_) => match self.digit_within(5000).await {
                    Some(Ok(k)) => Some(k),
                    Some(Err(())) => return '1',
                    None => None,
                },
            };
            match key {
                Some('2') => {
                    if let Some(samples) = file.samples() {
                        self.session.play(PlayItem::Samples(samples));
                        if let Heard::HungUp = self.play_prompts(&[], true).await {
                            return '1';
                        }
                    }
                }
                Some(k @ ('1' | '3')) => return k,
                None => return '1',
                _ => {}
            }
        }
        '1'
    }

    async fn record(
        &mut self,
        prompts: &[PromptItem],
        name: &str,
        max_ms: u64,
        silence_ms: u64,
        beep: bool,
    ) -> Outcome {
        if let Heard::HungUp = self.play_prompts(prompts, false).await {
            return Outcome::Hangup;
        }
        if beep {
            self.session.play_beep();
            while self.session.is_playing() {
                if self.next(None).await == Io::HungUp {
                    return Outcome::Hangup;
                }
            }
        }
        let base: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            .take(40)
            .collect();
        let id = format!(
            "{}-{}",
            sanitize(&self.call_id),
            if base.is_empty() {
                "recording".into()
            } else {
                base
            }
        );
        let silence = (silence_ms > 0).then_some(silence_ms.min(u64::from(u32::MAX)) as u32);
        let Some((file, _)) = self.capture(&new_id(), max_ms, silence).await else {
            return if self.ended {
                Outcome::Hangup
            } else {
                Outcome::Timeout
            };
        };
        let ms = file.duration_ms();
        let store = self.shared.store.clone();
        let id2 = id.clone();
        match tokio::task::spawn_blocking(move || store.commit_recording(file, &id2)).await {
            Ok(Ok(path)) => {
                tracing::info!(call_id = %self.call_id, path = %path.display(), ms, "recording stored");
                self.last_recording = Some((format!("recordings/{id}.wav"), None));
                if self.ended {
                    Outcome::Hangup
                } else {
                    Outcome::Recorded { ms }
                }
            }
            _ => Outcome::Fail,
        }
    }

    /// `email`: queued for the mailer (durable once this returns `next`).
    /// `failure`: no relay configured, a bad address, or `attach` with
    /// nothing recorded in this call.
    async fn email(&mut self, to: &str, subject: &str, body: &str, attach: bool) -> Outcome {
        if !self.shared.mail_enabled {
            tracing::warn!(call_id = %self.call_id, "email: no relay configured (email.relay); taking `failure`");
            return Outcome::Fail;
        }
        if let Err(why) = voicemail::mail::parse_address(to) {
            tracing::info!(call_id = %self.call_id, %why, "email: bad address; taking `failure`");
            return Outcome::Fail;
        }
        let file = match (attach, &self.last_recording) {
            (false, _) => None,
            (true, Some(r)) => Some(r.clone()),
            (true, None) => {
                tracing::info!(call_id = %self.call_id, "email: `attach` but nothing was recorded in this call; taking `failure`");
                return Outcome::Fail;
            }
        };
        let (to2, s, b) = (to.to_string(), subject.to_string(), body.to_string());
        let queued = self
            .with_store(move |st| {
                let a = file.as_ref().map(|(p, m)| (p.as_str(), m.as_deref()));
                voicemail::mail::queue_flow_email(st, &to2, &s, &b, a)
            })
            .await;
        match queued {
            Some(Ok(entry)) => {
                tracing::info!(call_id = %self.call_id, entry, %to, attach, "email queued");
                self.shared.mail_wake.notify_one();
                Outcome::Ok
            }
            Some(Err(e)) => {
                tracing::error!(call_id = %self.call_id, error = %e, "email: cannot queue");
                Outcome::Fail
            }
            None => Outcome::Fail,
        }
    }

    // ---- mailboxes -------------------------------------------------------------

    /// Runs store work (SQLite, fsync, argon2) off the async threads; `None` if it panicked.
    async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> Option<T> {
        let store = self.shared.store.clone();
        match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!(call_id = %self.call_id, error = %e, "store work panicked");
                None
            }
        }
    }

    /// The mailbox as this call first saw it (taken on first use, then kept);
    /// `None` for an unknown mailbox or a store error (logged).
    async fn listing(&mut self, mailbox: &str) -> Option<Listing> {
        if let Some(l) = self.listings.get(mailbox) {
            return Some(l.clone());
        }
        let mb = mailbox.to_string();
        match self.with_store(move |s| Listing::take(s, &mb)).await? {
            Ok(Some(l)) => {
                self.listings.insert(mailbox.to_string(), l.clone());
                Some(l)
            }
            Ok(None) => {
                tracing::info!(call_id = %self.call_id, %mailbox, "no such mailbox");
                None
            }
            Err(e) => {
                tracing::error!(call_id = %self.call_id, %mailbox, error = %e, "cannot list a mailbox");
                None
            }
        }
    }

    /// The greeting `leave_mail` plays: the mailbox's temporary greeting, else
    /// its busy or unavailable one by `$REASON`, else the default prompts
    /// (greet-ext, the recorded name or the number, greet-busy or
    /// greet-unavailable, greet-leave). With barge-in.
    async fn greeting(&mut self, mailbox: &str) -> Heard {
        let kind = if self.reason == "busy" {
            "busy"
        } else {
            "unavailable"
        };
        let mb = mailbox.to_string();
        let found = self
            .with_store(
                move |s| -> crate::store::Result<(Option<media::Samples>, Option<media::Samples>)> {
                    let audio = |k: &str| -> crate::store::Result<Option<media::Samples>> {
                        match s.active_greeting(&mb, k)? {
                            Some(g) => Ok(Some(s.greeting_audio(&g)?)),
                            None => Ok(None),
                        }
                    };
                    let own = match audio("temporary")? {
                        Some(a) => Some(a),
                        None => audio(kind)?,
                    };
                    let name = if own.is_none() { audio("name")? } else { None };
                    Ok((own, name))
                },
            )
            .await;
        let (own, name) = match found {
            Some(Ok(x)) => x,
            Some(Err(e)) => {
                tracing::warn!(call_id = %self.call_id, %mailbox, error = %e, "cannot read a greeting; playing the default");
                (None, None)
            }
            None => (None, None),
        };
        if let Some(own) = own {
            self.session.play(PlayItem::Samples(own));
            return self.play_prompts(&[], true).await;
        }
        self.enqueue(&[PromptItem::File("greet-ext.wav".into())]);
        match name {
            Some(n) => self.session.play(PlayItem::Samples(n)),
            None if mailbox.bytes().all(|b| b.is_ascii_digit()) => {
                self.enqueue(&[PromptItem::Say {
                    say: SayMode::Digits,
                    value: mailbox.to_string(),
                }]);
            }
            None => {}
        }
        let reason = if kind == "busy" {
            "greet-busy.wav"
        } else {
            "greet-unavailable.wav"
        };
        let rest = [
            PromptItem::File(reason.into()),
            PromptItem::File("greet-leave.wav".into()),
        ];
        self.play_prompts(&rest, true).await
    }

    async fn verify_pin(&mut self, mailbox: &str, pin: &str) -> Outcome {
        let cfg = self.shared.config.voicemail.pin.clone();
        let (mb, p, call_id, caller) = (
            mailbox.to_string(),
            pin.to_string(),
            self.call_id.clone(),
            self.caller.clone(),
        );
        let r = self
            .with_store(move |s| {
                let who = pin::Attempt {
                    call_id: &call_id,
                    caller: &caller,
                };
                pin::verify(s, &cfg, &mb, &p, crate::store::now_ms(), &who)
            })
            .await;
        match r {
            Some(Ok(pin::PinCheck::Valid)) => Outcome::Valid,
            Some(Ok(pin::PinCheck::Invalid)) => Outcome::Invalid,
            Some(Ok(pin::PinCheck::Locked)) => Outcome::Locked,
            Some(Err(e)) => {
                tracing::error!(call_id = %self.call_id, %mailbox, error = %e, "cannot check a PIN; refusing it");
                Outcome::Invalid
            }
            None => Outcome::Invalid,
        }
    }

    async fn message_count(&mut self, mailbox: &str, folder: &str) -> Outcome {
        let Some(f) = Folder::parse(folder) else {
            return Outcome::Fail;
        };
        match self.listing(mailbox).await {
            Some(l) => Outcome::Count(l.count(f) as i64),
            None => Outcome::Fail,
        }
    }

    /// The message at `index` of the call's listing, as the store has it now.
    async fn listed_message(
        &mut self,
        mailbox: &str,
        folder: &str,
        index: i64,
    ) -> Option<(Folder, crate::store::Message)> {
        let f = Folder::parse(folder)?;
        let id = self.listing(mailbox).await?.get(f, index)?.to_string();
        match self.with_store(move |s| s.message(&id)).await? {
            Ok(Some(m)) => Some((f, m)),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(call_id = %self.call_id, %mailbox, error = %e, "cannot read a message");
                None
            }
        }
    }

    /// "From 3 0 0 / from an unknown caller, received today / Monday March 3rd, at 9:05 AM".
    fn envelope(&self, m: &crate::store::Message) -> Vec<PromptItem> {
        let mut v = Vec::new();
        if m.priority == "urgent" {
            v.push(PromptItem::File("env-urgent.wav".into()));
        }
        if !m.caller.is_empty() && m.caller.bytes().all(|b| b.is_ascii_digit()) {
            v.push(PromptItem::File("env-from.wav".into()));
            v.push(PromptItem::Say {
                say: SayMode::Digits,
                value: m.caller.clone(),
            });
        } else {
            v.push(PromptItem::File("env-unknown.wav".into()));
        }
        if let Ok(ts) = jiff::Timestamp::from_millisecond(m.received_ms) {
            let when = ts.to_zoned_datetime(self.shared.tz.clone());
            let today = jiff::Timestamp::now()
                .to_zoned_datetime(self.shared.tz.clone())
                .date();
            v.push(PromptItem::File("env-received.wav".into()));
            if when.date() == today {
                v.push(PromptItem::File("env-today.wav".into()));
            } else if today.yesterday().is_ok_and(|y| y == when.date()) {
                v.push(PromptItem::File("env-yesterday.wav".into()));
            } else {
                v.push(PromptItem::Say {
                    say: SayMode::Date,
                    value: when.date().to_string(),
                });
            }
            v.push(PromptItem::File("env-at.wav".into()));
            v.push(PromptItem::Say {
                say: SayMode::Time,
                value: format!("{:02}:{:02}", when.hour(), when.minute()),
            });
        }
        v
    }

    /// The node's prompts, the envelope, then the audio; a new message becomes
    /// saved when its audio starts. A message deleted since the listing was
    /// taken (and not being played from `deleted`) is gone: `failure`.
    async fn play_message(
        &mut self,
        prompts: &[PromptItem],
        mailbox: &str,
        folder: &str,
        index: i64,
        envelope: bool,
        barge_in: bool,
    ) -> Outcome {
        let Some((f, m)) = self.listed_message(mailbox, folder, index).await else {
            return Outcome::Fail;
        };
        if m.folder == Folder::Deleted && f != Folder::Deleted {
            return Outcome::Fail;
        }
        let m2 = m.clone();
        let audio = match self.with_store(move |s| s.message_audio(&m2)).await {
            Some(Ok(a)) => a,
            Some(Err(e)) => {
                tracing::error!(call_id = %self.call_id, %mailbox, message_id = %m.id, error = %e, "cannot read a message's audio");
                return Outcome::Fail;
            }
            None => return Outcome::Fail,
        };
        let mut items = prompts.to_vec();
        if envelope {
            items.extend(self.envelope(&m));
        }
        match self.play_prompts(&items, barge_in).await {
            Heard::Key(k) => return Outcome::Keys(k.to_string()),
            Heard::HungUp => return Outcome::Hangup,
            Heard::Done(_) => {}
        }
        if m.folder == Folder::New {
            let id = m.id.clone();
            if let Some(Err(e)) = self
                .with_store(move |s| s.move_message(&id, Folder::Saved))
                .await
            {
                tracing::error!(call_id = %self.call_id, %mailbox, message_id = %m.id, error = %e, "cannot mark a message heard");
            }
        }
        self.session.play(PlayItem::Samples(audio));
        match self.play_prompts(&[], barge_in).await {
            Heard::Key(k) => Outcome::Keys(k.to_string()),
            Heard::HungUp => Outcome::Hangup,
            Heard::Done(_) => Outcome::Ok,
        }
    }

    /// `save_message` (also undeletes) and `delete_message` (marks; housekeeping removes).
    async fn move_message(
        &mut self,
        prompts: &[PromptItem],
        mailbox: &str,
        folder: &str,
        index: i64,
        to: Folder,
    ) -> Outcome {
        if let Heard::HungUp = self.play_prompts(prompts, false).await {
            return Outcome::Hangup;
        }
        let Some((_, m)) = self.listed_message(mailbox, folder, index).await else {
            return Outcome::Fail;
        };
        let id = m.id.clone();
        match self.with_store(move |s| s.move_message(&id, to)).await {
            Some(Ok(_)) => {
                tracing::info!(call_id = %self.call_id, %mailbox, message_id = %m.id, folder = %to, "message moved");
                Outcome::Ok
            }
            Some(Err(e)) => {
                tracing::info!(call_id = %self.call_id, %mailbox, message_id = %m.id, error = %e, "cannot move a message");
                Outcome::Fail
            }
            None => Outcome::Fail,
        }
    }

    /// Records a greeting after a beep; it waits, pending, for `set_greeting`.
    async fn record_greeting(
        &mut self,
        prompts: &[PromptItem],
        mailbox: &str,
        kind: &str,
        max_ms: u64,
    ) -> Outcome {
        if !matches!(kind, "unavailable" | "busy" | "name" | "temporary")
            || self.listing(mailbox).await.is_none()
        {
            return Outcome::Fail;
        }
        if let Heard::HungUp = self.play_prompts(prompts, false).await {
            return Outcome::Hangup;
        }
        self.session.play_beep();
        while self.session.is_playing() {
            if self.next(None).await == Io::HungUp {
                return Outcome::Hangup;
            }
        }
        let Some((file, _)) = self.capture(&new_id(), max_ms, Some(3000)).await else {
            return if self.ended {
                Outcome::Hangup
            } else {
                Outcome::Timeout
            };
        };
        let ms = file.duration_ms();
        let (mb, k) = (mailbox.to_string(), kind.to_string());
        match self
            .with_store(move |s| s.commit_greeting(file, &mb, &k))
            .await
        {
            Some(Ok(id)) => {
                tracing::info!(call_id = %self.call_id, %mailbox, %kind, ms, "greeting recorded (pending)");
                self.pending_greetings
                    .insert((mailbox.to_string(), kind.to_string()), id);
                if self.ended {
                    Outcome::Hangup
                } else {
                    Outcome::Recorded { ms }
                }
            }
            Some(Err(e)) => {
                tracing::error!(call_id = %self.call_id, %mailbox, error = %e, "cannot store a greeting");
                Outcome::Fail
            }
            None => Outcome::Fail,
        }
    }

    /// `use "recorded"`: activates the greeting this call recorded; `"default"`: the system greeting.
    async fn set_greeting(
        &mut self,
        prompts: &[PromptItem],
        mailbox: &str,
        kind: &str,
        use_: &str,
    ) -> Outcome {
        if let Heard::HungUp = self.play_prompts(prompts, false).await {
            return Outcome::Hangup;
        }
        let key = (mailbox.to_string(), kind.to_string());
        let id = match use_ {
            "recorded" => match self.pending_greetings.get(&key) {
                Some(id) => Some(id.clone()),
                None => {
                    tracing::info!(call_id = %self.call_id, %mailbox, %kind, "set_greeting: nothing recorded in this call");
                    return Outcome::Fail;
                }
            },
            "default" => None,
            _ => return Outcome::Fail,
        };
        let (mb, k, id2) = (mailbox.to_string(), kind.to_string(), id.clone());
        match self
            .with_store(move |s| s.activate_greeting(&mb, &k, id2.as_deref()))
            .await
        {
            Some(Ok(())) => {
                self.pending_greetings.remove(&key);
                tracing::info!(call_id = %self.call_id, %mailbox, %kind, recorded = id.is_some(), "greeting set");
                Outcome::Ok
            }
            Some(Err(e)) => {
                tracing::error!(call_id = %self.call_id, %mailbox, error = %e, "cannot set a greeting");
                Outcome::Fail
            }
            None => Outcome::Fail,
        }
    }

    async fn set_pin(&mut self, prompts: &[PromptItem], mailbox: &str, new_pin: &str) -> Outcome {
        if let Heard::HungUp = self.play_prompts(prompts, false).await {
            return Outcome::Hangup;
        }
        let cfg = self.shared.config.voicemail.pin.clone();
        let (mb, p, call_id, caller) = (
            mailbox.to_string(),
            new_pin.to_string(),
            self.call_id.clone(),
            self.caller.clone(),
        );
        let r = self
            .with_store(move |s| {
                pin::set_pin(
                    s,
                    &cfg,
                    &mb,
                    &p,
                    &pin::Attempt {
                        call_id: &call_id,
                        caller: &caller,
                    },
                )
            })
            .await;
        match r {
            Some(Ok(pin::SetPin::Changed)) => Outcome::Ok,
            Some(Ok(pin::SetPin::Refused(_))) => Outcome::Invalid,
            Some(Err(e)) => {
                tracing::info!(call_id = %self.call_id, %mailbox, error = %e, "cannot change a PIN");
                Outcome::Fail
            }
            None => Outcome::Fail,
        }
    }

    // ---- transfer ----------------------------------------------------------------

    async fn transfer(
        &mut self,
        prompts: &[PromptItem],
        target: &str,
        timeout_ms: Option<u64>,
        music: &str,
    ) -> Outcome {
        if let Heard::HungUp = self.play_prompts(prompts, false).await {
            return Outcome::Hangup;
        }
        if target.is_empty()
            || !target
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | '+'))
        {
            return Outcome::Fail;
        }
        let host = self
            .shared
            .config
            .sip
            .public_address
            .unwrap_or(self.shared.config.sip.listen.ip());
        let _ = self.shared.commands.send(SipCommand::Refer {
            call: self.call,
            target: format!("sip:{target}@{host}"),
        });
        let deadline = timeout_ms.map(|ms| tokio::time::Instant::now() + Duration::from_millis(ms));
        let tune = (!music.is_empty())
            .then(|| self.set.prompts.get(music))
            .flatten();
        loop {
            if let Some(t) = &tune {
                if !self.session.is_playing() {
                    self.session.play(PlayItem::Samples(t.clone()));
                }
            }
            match self.next(deadline).await {
                Io::Transfer(o) => {
                    self.session.stop_playback();
                    return match o {
                        TransferOutcome::Succeeded => Outcome::Ok,
                        TransferOutcome::Busy => Outcome::Busy,
                        TransferOutcome::NoAnswer => Outcome::NoAnswer,
                        TransferOutcome::Failed => Outcome::Fail,
                    };
                }
                Io::Deadline => {
                    self.session.stop_playback();
                    return Outcome::NoAnswer;
                }
                Io::HungUp => return Outcome::Hangup,
                _ => {}
            }
        }
    }
}

enum Heard {
    /// Played to the end; false if a prompt was missing.
    Done(bool),
    Key(char),
    HungUp,
}

fn sanitize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(40)
        .collect()
}

/// A unique, sortable id: time in microseconds and randomness.
fn new_id() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    format!("{t:x}-{:08x}", super::seed() as u32)
}
