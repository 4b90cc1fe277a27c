//! One call: routing, answering, the RTP socket and media session, and the
//! flow — `resume` → perform the effect → outcome — until the call ends.
//!
//! Invariant: a message being recorded when the caller hangs up (or the
//! server stops) is committed before the task ends; the flow is told
//! `hangup` only after that.

use super::{CallEvent, Shared, SipCommand};
use crate::media::{self, Law, MediaConfig, MediaEvent, MediaSession, PlayItem, RecorderConfig, StopReason};
use crate::routing::{self, CallTarget};
use crate::sip::{self, CallHandle, IncomingCall, TransferOutcome};
use crate::store::{MessageMeta, RecordingFile, Store};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use vflow_compiler::exec::{CallInfo, Effect, Outcome, PromptItem, State};
use vflow_compiler::ir::SayMode;

pub async fn run(shared: Arc<Shared>, inc: IncomingCall, mut events: mpsc::UnboundedReceiver<CallEvent>) {
    let call = inc.call;
    let span = tracing::info_span!("call", id = %inc.call_id);
    let _enter = span.enter();
    drop(_enter);

    let target = CallTarget {
        request_user: inc.request_uri_user.clone().unwrap_or_default(),
        to_user: inc.to_user.clone().unwrap_or_default(),
        from_user: inc.from_user.clone().unwrap_or_default(),
        diverted_from: inc.diversion_user.clone().or_else(|| inc.history_info_user.clone()),
    };
    let route = routing::route(&shared.config.routing, &target, |k, n| shared.flows.has_entry(k, n));
    let info = CallInfo {
        cli: target.from_user.clone(),
        ddi: target.request_user.clone(),
        caller_name: inc.from_display.clone().unwrap_or_default(),
        call_id: inc.call_id.clone(),
        reason: if target.diverted_from.is_some() { "no_answer".into() } else { "direct".into() },
    };
    let state = super::flows::start_call(&shared.flows, route.kind, &route.name, info);
    tracing::info!(call_id = %inc.call_id, from = %target.from_user, kind = route.kind, name = %route.name, known = state.is_some(), "incoming call");

    let sock = match shared.bind_rtp().await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "no RTP port for a call; answering 503");
            let _ = shared.commands.send(SipCommand::Reject { call, status: 503 });
            return;
        }
    };
    let local_rtp = match sock.local_addr() {
        Ok(a) => SocketAddr::new(shared.config.sip.public_address.unwrap_or(a.ip()), a.port()),
        Err(_) => return,
    };
    let _ = shared.commands.send(SipCommand::Answer { call, rtp: local_rtp });
    // Wait for the ACK (media may start at once; the ACK only confirms).
    let confirmed = loop {
        match tokio::time::timeout(Duration::from_secs(40), events.recv()).await {
            Ok(Some(CallEvent::Confirmed)) => break true,
            Ok(Some(CallEvent::MediaUpdated(_))) | Ok(Some(CallEvent::Transfer(_))) => {}
            Ok(Some(CallEvent::Ended { .. })) | Ok(None) | Err(_) => break false,
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
    let mut mcfg = MediaConfig::new(law, inc.offer.telephone_event_pt, seed as u32, (seed >> 32) as u16, (seed >> 16) as u32);
    mcfg.rtp_timeout = Some(shared.config.rtp.timeout);
    let now = Instant::now();
    let mut io = CallIo {
        shared: shared.clone(),
        call,
        call_id: inc.call_id.clone(),
        caller: target.from_user.clone(),
        caller_name: inc.from_display.clone().unwrap_or_default(),
        session: MediaSession::new(mcfg, now),
        sock,
        remote: inc.offer.remote_rtp,
        tick: {
            let mut t = tokio::time::interval(Duration::from_millis(u64::from(media::FRAME_MS)));
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            t
        },
        events,
        ended: false,
        rx: vec![0u8; 2048],
        tx: [0u8; 512],
        recording: None,
        recorded_ms: 0,
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
    tracing::info!(call_id = %inc.call_id, "call finished");
}

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
    call: CallHandle,
    call_id: String,
    caller: String,
    caller_name: String,
    session: MediaSession,
    sock: UdpSocket,
    remote: SocketAddr,
    tick: tokio::time::Interval,
    events: mpsc::UnboundedReceiver<CallEvent>,
    /// The SIP side is over (BYE, CANCEL, server stop).
    ended: bool,
    rx: Vec<u8>,
    tx: [u8; 512],
    recording: Option<ActiveRecording>,
    recorded_ms: u64,
}

impl CallIo {
    async fn run_flow(&mut self, mut state: State) {
        let mut host = super::flows::CallHost { tz: self.shared.tz.clone(), vars: self.shared.vars.clone() };
        let flows = self.shared.flows.clone();
        let mut outcome = Outcome::Start;
        loop {
            let effect = flows.resume(&mut state, outcome, &mut host);
            let node = state.last_node.map(|(u, n)| {
                let unit = &flows.program.units[u as usize];
                format!("{}.{}", unit.name, unit.nodes.get(n as usize).map_or("?", |x| x.name.as_str()))
            });
            tracing::info!(call_id = %self.call_id, node = node.as_deref().unwrap_or("-"), effect = %effect.to_text(), "effect");
            outcome = match &effect {
                Effect::Hangup { prompts } => {
                    self.play_prompts(prompts, false).await;
                    return;
                }
                Effect::Fault { message, file, line } => {
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
            Effect::Play { prompts, barge_in } => match self.play_prompts(prompts, *barge_in).await {
                Heard::Done(true) => Outcome::Ok,
                Heard::Done(false) => Outcome::Fail,
                Heard::Key(k) => Outcome::Keys(k.to_string()),
                Heard::HungUp => Outcome::Hangup,
            },
            Effect::Menu { prompts, keys, timeout_ms, interdigit_ms, .. } => {
                self.collect_menu(prompts, keys, *timeout_ms, *interdigit_ms).await
            }
            Effect::Input { prompts, max_digits, terminator, timeout_ms } => {
                self.collect_input(prompts, *max_digits, terminator, *timeout_ms).await
            }
            Effect::LeaveMail { prompts, mailbox, greeting, beep, max_length_ms, review, priority } => {
                self.leave_mail(prompts, mailbox, *greeting, *beep, *max_length_ms, *review, priority, node).await
            }
            Effect::Record { prompts, recording, max_length_ms, silence_ms, beep } => {
                self.record(prompts, recording, *max_length_ms, *silence_ms, *beep).await
            }
            Effect::Transfer { prompts, target } => self.transfer(prompts, target, None, "").await,
            Effect::AssistedTransfer { prompts, target, timeout_ms, music } => {
                self.transfer(prompts, target, Some(*timeout_ms), music).await
            }
            Effect::Wait { prompts, duration_ms, music } => {
                if let Heard::HungUp = self.play_prompts(prompts, false).await {
                    return Outcome::Hangup;
                }
                let until = Instant::now() + Duration::from_millis(*duration_ms);
                self.hold(music, until).await
            }
            // The mailbox database, voicemail-to-email and text-to-speech
            // belong to the voicemail issue; until then these actions take
            // their `failure` result and say why in the log.
            Effect::VerifyPin { .. }
            | Effect::MessageCount { .. }
            | Effect::PlayMessage { .. }
            | Effect::SaveMessage { .. }
            | Effect::DeleteMessage { .. }
            | Effect::RecordGreeting { .. }
            | Effect::SetGreeting { .. }
            | Effect::SetPin { .. }
            | Effect::Email { .. } => {
                tracing::warn!(call_id = %self.call_id, action = effect.name(), "this server has no mailbox database yet; taking `failure`");
                Outcome::Fail
            }
            Effect::Hangup { .. } | Effect::Fault { .. } | Effect::Ended => Outcome::Hangup,
        }
    }

    // ---- the media loop ------------------------------------------------------

    /// Runs media until something happens or `deadline` passes.
    async fn next(&mut self, deadline: Option<tokio::time::Instant>) -> Io {
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
                        let _ = self.shared.commands.send(SipCommand::Hangup { call: self.call });
                        return Io::HungUp;
                    }
                }
            }
            let mut hard = self.shared.hard_stop.clone();
            tokio::select! {
                r = self.sock.recv_from(&mut self.rx) => {
                    if let Ok((n, _from)) = r {
                        // Malformed or foreign packets are counted by the session and ignored.
                        let _ = self.session.handle_rtp(Instant::now(), &self.rx[..n]);
                    }
                }
                _ = self.tick.tick() => {
                    if let Some(n) = self.session.poll_frame(Instant::now(), &mut self.tx) {
                        if !self.remote.ip().is_unspecified() {
                            let _ = self.sock.send_to(&self.tx[..n], self.remote).await;
                        }
                    }
                    self.stream_recording();
                }
                ev = self.events.recv() => match ev {
                    Some(CallEvent::Ended { .. }) | None => { self.ended = true; return Io::HungUp; }
                    Some(CallEvent::MediaUpdated(offer)) => self.remote = offer.remote_rtp,
                    Some(CallEvent::Transfer(o)) => return Io::Transfer(o),
                    Some(CallEvent::Confirmed) => {}
                },
                _ = hard.changed() => {
                    if *hard.borrow() {
                        self.ended = true;
                        let _ = self.shared.commands.send(SipCommand::Hangup { call: self.call });
                        return Io::HungUp;
                    }
                }
                _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                    return Io::Deadline;
                }
            }
        }
    }

    /// Moves what the recorder committed into the file, about once a second.
    fn stream_recording(&mut self) {
        let Some(active) = self.recording.as_mut() else { return };
        let mut buf = Vec::new();
        if self.session.drain_recorded(&mut buf) > 0 {
            if let Err(e) = active.file.append(&buf) {
                tracing::error!(call_id = %self.call_id, error = %e, "cannot write a recording");
            }
        }
    }

    // ---- prompts ---------------------------------------------------------------

    /// Queues prompt items; returns false if one could not be resolved.
    fn enqueue(&mut self, prompts: &[PromptItem]) -> bool {
        let mut all = true;
        let year = Some(jiff::Timestamp::now().to_zoned_datetime(self.shared.tz.clone()).year() as i32);
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
                match self.shared.prompts.get(&n) {
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
        let items: Vec<PromptItem> = names.iter().map(|n| PromptItem::File(n.to_string())).collect();
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
        let tune = (!music.is_empty()).then(|| self.shared.prompts.get(music)).flatten();
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

    async fn collect_menu(&mut self, prompts: &[PromptItem], keys: &[String], timeout_ms: u64, interdigit_ms: u64) -> Outcome {
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

    async fn collect_input(&mut self, prompts: &[PromptItem], max_digits: i64, terminator: &str, timeout_ms: u64) -> Outcome {
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
                if Some(last) == term || digits.chars().filter(|c| Some(*c) != term).count() >= max {
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
    async fn capture(&mut self, id: &str, max_ms: u64, silence_ms: Option<u32>) -> Option<(RecordingFile, StopReason)> {
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
        if let Heard::HungUp = self.play_prompts(prompts, false).await {
            return Outcome::Hangup;
        }
        if greeting {
            let mut items = vec![PromptItem::File("greet-ext.wav".into())];
            items.push(PromptItem::Say { say: SayMode::Digits, value: mailbox.to_string() });
            items.push(PromptItem::File("greet-unavailable.wav".into()));
            items.push(PromptItem::File("greet-leave.wav".into()));
            // Any key skips the greeting, as callers expect.
            if let Heard::HungUp = self.play_prompts(&items, true).await {
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
                return if self.ended { Outcome::Hangup } else { Outcome::Fail };
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
                    let meta = MessageMeta {
                        id: id.clone(),
                        mailbox: mailbox.to_string(),
                        caller: self.caller.clone(),
                        caller_name: self.caller_name.clone(),
                        received: jiff::Timestamp::now().to_zoned_datetime(self.shared.tz.clone()).timestamp().to_string(),
                        duration_ms: file.duration_ms(),
                        priority: priority.to_string(),
                        folder: "new".into(),
                        call_id: self.call_id.clone(),
                        node: node.to_string(),
                    };
                    let store = self.shared.store.clone();
                    let committed = tokio::task::spawn_blocking(move || store.commit_message(file, &meta)).await;
                    return match committed {
                        Ok(Ok(path)) => {
                            tracing::info!(call_id = %self.call_id, %mailbox, path = %path.display(), ms = self.recorded_ms, "message stored");
                            if self.ended { Outcome::Hangup } else { Outcome::Ok }
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

    async fn record(&mut self, prompts: &[PromptItem], name: &str, max_ms: u64, silence_ms: u64, beep: bool) -> Outcome {
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
        let base: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')).take(40).collect();
        let id = format!("{}-{}", sanitize(&self.call_id), if base.is_empty() { "recording".into() } else { base });
        let silence = (silence_ms > 0).then_some(silence_ms.min(u64::from(u32::MAX)) as u32);
        let Some((file, _)) = self.capture(&new_id(), max_ms, silence).await else {
            return if self.ended { Outcome::Hangup } else { Outcome::Timeout };
        };
        let ms = file.duration_ms();
        let store = self.shared.store.clone();
        let id2 = id.clone();
        match tokio::task::spawn_blocking(move || store.commit_recording(file, &id2)).await {
            Ok(Ok(path)) => {
                tracing::info!(call_id = %self.call_id, path = %path.display(), ms, "recording stored");
                if self.ended { Outcome::Hangup } else { Outcome::Recorded { ms } }
            }
            _ => Outcome::Fail,
        }
    }

    // ---- transfer ----------------------------------------------------------------

    async fn transfer(&mut self, prompts: &[PromptItem], target: &str, timeout_ms: Option<u64>, music: &str) -> Outcome {
        if let Heard::HungUp = self.play_prompts(prompts, false).await {
            return Outcome::Hangup;
        }
        if target.is_empty() || !target.chars().all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | '+')) {
            return Outcome::Fail;
        }
        let host = self.shared.config.sip.public_address.unwrap_or(self.shared.config.sip.listen.ip());
        let _ = self.shared.commands.send(SipCommand::Refer { call: self.call, target: format!("sip:{target}@{host}") });
        let deadline = timeout_ms.map(|ms| tokio::time::Instant::now() + Duration::from_millis(ms));
        let tune = (!music.is_empty()).then(|| self.shared.prompts.get(music)).flatten();
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
    s.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')).take(40).collect()
}

/// A unique, sortable id: time in microseconds and randomness.
fn new_id() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros());
    format!("{t:x}-{:08x}", super::seed() as u32)
}
