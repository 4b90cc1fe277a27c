//! `vflow serve`: the tokio driver around the sans-IO SIP endpoint and the
//! per-call media sessions.
//!
//! One SIP task owns the [`sip::Endpoint`]: it reads the UDP socket and the TCP
//! connections, fires the endpoint's timers, sends what it transmits, and
//! hands events to calls. Every call is one task ([`call`]) that owns its RTP
//! socket, its [`media::MediaSession`] and its flow state, and asks the SIP task
//! to answer, hang up or transfer through a command channel. Nothing in here
//! makes protocol decisions; the sans-IO cores do.
//!
//! Beside them run housekeeping, the MWI notifier ([`crate::voicemail::mwi::run`]:
//! the SIP task passes it subscriptions and sends the NOTIFYs it asks for)
//! and, when `email.relay` is set, the mailer ([`crate::voicemail::mail::run`]).
//!
//! Flows: every call starts on the [`registry::Registry`]'s active flow set
//! and keeps it to its end; SIGHUP and the control socket
//! ([`control`], `vflow reload`) load a new set and swap it in without
//! touching calls in progress.
//!
//! Shutdown: on the signal the endpoint stops accepting (new INVITEs get 503),
//! calls in progress may finish until `shutdown.grace`, then the rest are hung
//! up — a message being recorded is stored first.

pub mod call;
pub mod control;
pub mod flows;
pub mod registry;
pub mod rtp_ports;

use crate::config::Config;
use crate::sip::{self, CallHandle, ConnId, Endpoint, Event, Transport};
use crate::store::Store;
use crate::voicemail::{mail, mwi};
use control::{ControlSocket, Reloader};
use flows::UserVars;
use registry::Registry;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};

/// What a call asks of the SIP task.
#[derive(Debug)]
pub enum SipCommand {
    Answer { call: CallHandle, rtp: SocketAddr },
    Reject { call: CallHandle, status: u16 },
    Hangup { call: CallHandle },
    Refer { call: CallHandle, target: String },
}

/// What the SIP task tells a call.
#[derive(Debug, Clone)]
pub enum CallEvent {
    Confirmed,
    /// The call is over on the SIP side (BYE, CANCEL, ACK timeout).
    Ended {
        by_remote: bool,
    },
    MediaUpdated(sip::sdp::MediaOffer),
    Transfer(sip::TransferOutcome),
}

/// Everything calls share.
pub struct Shared {
    pub config: Config,
    /// The active flow set; a call takes it once, when it starts.
    pub registry: Arc<Registry>,
    pub store: Store,
    pub vars: Arc<UserVars>,
    pub tz: jiff::tz::TimeZone,
    pub commands: mpsc::UnboundedSender<SipCommand>,
    /// Becomes true when the server is shutting down.
    pub stopping: watch::Receiver<bool>,
    /// Becomes true when calls must end now (the grace period is over).
    pub hard_stop: watch::Receiver<bool>,
    /// Free RTP ports; a call's socket gives its port back when dropped.
    pub rtp_ports: Arc<rtp_ports::RtpPorts>,
    pub active_calls: AtomicUsize,
    /// Whether email can be sent (`email.relay` is set).
    pub mail_enabled: bool,
    /// Wakes the mailer when a call queues an email.
    pub mail_wake: Arc<tokio::sync::Notify>,
}

/// Runs the server until `shutdown` resolves, then drains calls. SIGHUP and
/// requests on `control` (when bound) reload the flows through `reloader`.
/// `duty` (from [`crate::cluster::start`]) says whether new calls are taken
/// (else 503 with Retry-After, as while stopping) and MWI is sent now.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    config: Config,
    reloader: Reloader,
    control: Option<ControlSocket>,
    store: Store,
    vars: Arc<UserVars>,
    duty: watch::Receiver<crate::cluster::Duty>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let listen = config.sip.listen;
    // Bound here so a taken port is an error at start; registered with the
    // SIP thread's reactor there.
    let udp = if config.sip.udp {
        let s = std::net::UdpSocket::bind(listen)?;
        s.set_nonblocking(true)?;
        Some(s)
    } else {
        None
    };
    let tcp = if config.sip.tcp {
        let l = std::net::TcpListener::bind(listen)?;
        l.set_nonblocking(true)?;
        Some(l)
    } else {
        None
    };
    let local = udp
        .as_ref()
        .map(|u| u.local_addr())
        .or_else(|| tcp.as_ref().map(|t| t.local_addr()))
        .transpose()?;
    let local = local.expect("at least one transport is on (checked by the config)");
    let advertised = SocketAddr::new(
        config.sip.public_address.unwrap_or(local.ip()),
        local.port(),
    );

    let mut sip_cfg = sip::Config::new(advertised);
    sip_cfg.trusted = config.sip.trusted_peers.clone();
    // Every PBX a node takes calls from is trusted (fallback controller).
    for p in &config.sip.pbx_peers {
        let host = crate::config::Cidr {
            addr: p.addr.ip(),
            prefix: if p.addr.is_ipv4() { 32 } else { 128 },
        };
        if !sip_cfg.trusted.iter().any(|c| c.contains(p.addr.ip())) {
            sip_cfg.trusted.push(host);
        }
    }
    sip_cfg.pbx_peers = config
        .sip
        .pbx_peers
        .iter()
        .map(|p| sip::fallback::PbxPeer {
            name: p.name.clone(),
            addr: p.addr,
        })
        .collect();
    if let Some(rl) = sip_cfg.rate_limit.as_mut() {
        rl.per_second = f64::from(config.sip.rate_limit);
        rl.burst = f64::from(config.sip.rate_limit) * 2.0;
        rl.ban_for = config.sip.ban;
    }
    sip_cfg.seed = seed();
    sip_cfg.event_packages = vec![mwi::PACKAGE.to_string()];
    sip_cfg.min_expires = config.mwi.min_expires;
    sip_cfg.max_expires = config.mwi.max_expires;
    let endpoint = Endpoint::new(sip_cfg);

    let tz = match &config.node.time_zone {
        Some(name) => jiff::tz::TimeZone::get(name).map_err(std::io::Error::other)?,
        None => jiff::tz::TimeZone::system(),
    };
    let mailer = if config.email.relay.is_empty() {
        let pending = {
            let s = store.clone();
            tokio::task::spawn_blocking(move || s.outbox_due(mail::KIND, i64::MAX, 1_000)).await
        };
        if let Ok(Ok(p)) = pending.as_ref().map(|r| r.as_ref().map(Vec::len))
            && p > 0
        {
            tracing::warn!(
                pending = p,
                "emails are waiting in the queue but `email.relay` is not set; they stay queued"
            );
        }
        None
    } else {
        let relay = mail::Smtp::new(&config.email).map_err(std::io::Error::other)?;
        let ctx = mail::Context::new(&config.email, tz.clone()).map_err(std::io::Error::other)?;
        Some((relay, ctx))
    };
    let mail_wake = Arc::new(tokio::sync::Notify::new());
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let (hard_tx, hard_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        config: config.clone(),
        registry: reloader.registry.clone(),
        store,
        vars,
        tz,
        commands: cmd_tx,
        stopping: stop_rx.clone(),
        hard_stop: hard_rx,
        rtp_ports: rtp_ports::RtpPorts::new(config.sip.listen.ip(), config.rtp.ports, seed()),
        active_calls: AtomicUsize::new(0),
        mail_enabled: mailer.is_some(),
        mail_wake: mail_wake.clone(),
    });
    let sighup = tokio::spawn(control::on_sighup(reloader.clone()));
    let control_task = control.map(|c| tokio::spawn(c.serve(reloader)));
    tracing::info!(%local, udp = config.sip.udp, tcp = config.sip.tcp, engine = shared.registry.current().flows.engine_kind().name(), "vflow is listening");

    let (mwi_in, mwi_in_rx) = mpsc::unbounded_channel();
    let (mwi_out_tx, mwi_out) = mpsc::unbounded_channel();
    let host = match advertised.ip() {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        ip => ip.to_string(),
    };
    let mwi_task = tokio::spawn(mwi::run(
        shared.store.clone(),
        config.mwi.clone(),
        host,
        mwi_in_rx,
        mwi_out_tx,
        duty.clone(),
    ));
    let mail_task = mailer.map(|(relay, ctx)| {
        tracing::info!(relay = %config.email.relay, port = config.email.port, security = ?config.email.security, "email: sending through the relay");
        tokio::spawn(mail::run(shared.store.clone(), config.email.clone(), ctx, relay, mail_wake))
    });
    let driver = SipDriver {
        endpoint,
        udp: None,
        tcp_out: HashMap::new(),
        calls: HashMap::new(),
        shared: shared.clone(),
        next_conn: 0,
        mwi_in,
        calls_runtime: tokio::runtime::Handle::current(),
    };
    let (sip_quit, sip_quit_rx) = tokio::sync::oneshot::channel::<()>();
    let mut sip_task = spawn_sip_thread(
        driver,
        SipSockets { udp, tcp },
        (cmd_rx, stop_rx, duty, mwi_out),
        sip_quit_rx,
    )?;
    let housekeeping = tokio::spawn(housekeeping(shared.clone()));

    tokio::select! {
        _ = shutdown => {}
        r = &mut sip_task => {
            return match r {
                Ok(r) => r,
                Err(_) => Err(std::io::Error::other("the SIP thread stopped")),
            };
        }
    }
    tracing::info!(
        calls = shared.active_calls.load(Ordering::Relaxed),
        "shutting down: no new calls, waiting for calls in progress"
    );
    let _ = stop_tx.send(true);
    let deadline = Instant::now() + config.shutdown.grace;
    while shared.active_calls.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if shared.active_calls.load(Ordering::Relaxed) > 0 {
        tracing::warn!(
            calls = shared.active_calls.load(Ordering::Relaxed),
            "grace period over: hanging up the remaining calls"
        );
        let _ = hard_tx.send(true);
        let until = Instant::now() + Duration::from_secs(5);
        while shared.active_calls.load(Ordering::Relaxed) > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Let the BYEs go out.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = sip_quit.send(());
    let _ = sip_task.await;
    sighup.abort();
    if let Some(t) = control_task {
        // Dropping it removes the socket file: `vflow reload` sees no server.
        t.abort();
        let _ = t.await;
    }
    housekeeping.abort();
    mwi_task.abort();
    if let Some(t) = mail_task {
        // An email being handed over is retried at the next start (at least once).
        t.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// Voicemail retention, every `voicemail.housekeeping_every` (first run at start).
async fn housekeeping(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(shared.config.voicemail.housekeeping_every);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let (store, cfg) = (shared.store.clone(), shared.config.voicemail.clone());
        let now = crate::store::now_ms();
        match tokio::task::spawn_blocking(move || {
            crate::voicemail::housekeeping::run(&store, &cfg, now)
        })
        .await
        {
            Ok(Ok(r)) if r.total() > 0 => {
                tracing::info!(
                    new = r.new,
                    saved = r.saved,
                    deleted = r.deleted,
                    greetings = r.pending_greetings,
                    "housekeeping done"
                )
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "housekeeping failed"),
            Err(e) => tracing::error!(error = %e, "housekeeping panicked"),
        }
    }
}

fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// The SIP listening sockets, bound on the caller's thread.
struct SipSockets {
    udp: Option<std::net::UdpSocket>,
    tcp: Option<std::net::TcpListener>,
}

type SipInputs = (
    mpsc::UnboundedReceiver<SipCommand>,
    watch::Receiver<bool>,
    watch::Receiver<crate::cluster::Duty>,
    mpsc::UnboundedReceiver<mwi::Output>,
);

/// Runs the SIP driver on a thread of its own (a single-threaded runtime),
/// so a turn of the media of hundreds of calls never delays a SIP response
/// (RFC 3261 timers, and load bursts that would overflow the socket); call
/// tasks still run on the caller's runtime. The receiver yields the
/// driver's result when it fails or `quit` fires.
fn spawn_sip_thread(
    driver: SipDriver,
    sockets: SipSockets,
    inputs: SipInputs,
    quit: tokio::sync::oneshot::Receiver<()>,
) -> std::io::Result<tokio::sync::oneshot::Receiver<std::io::Result<()>>> {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("vflow-sip".into())
        .spawn(move || {
            let r = rt.block_on(async move {
                let mut driver = driver;
                driver.udp = sockets
                    .udp
                    .map(UdpSocket::from_std)
                    .transpose()?
                    .map(Arc::new);
                let tcp = sockets.tcp.map(TcpListener::from_std).transpose()?;
                let (commands, stopping, duty, mwi_out) = inputs;
                tokio::select! {
                    r = driver.run(tcp, commands, stopping, duty, mwi_out) => r,
                    _ = quit => Ok(()),
                }
            });
            let _ = done_tx.send(r);
        })?;
    Ok(done_rx)
}

enum TcpInput {
    Message {
        conn: ConnId,
        from: SocketAddr,
        bytes: Vec<u8>,
    },
    Closed {
        conn: ConnId,
    },
}

/// Datagrams read in one turn of the SIP loop after the one that woke it.
const UDP_BATCH: usize = 63;

struct SipDriver {
    endpoint: Endpoint,
    udp: Option<Arc<UdpSocket>>,
    tcp_out: HashMap<ConnId, mpsc::UnboundedSender<Vec<u8>>>,
    calls: HashMap<CallHandle, mpsc::UnboundedSender<CallEvent>>,
    shared: Arc<Shared>,
    next_conn: u64,
    mwi_in: mpsc::UnboundedSender<mwi::Input>,
    /// Where call tasks run (the server's runtime, not the SIP thread).
    calls_runtime: tokio::runtime::Handle,
}

impl SipDriver {
    async fn run(
        mut self,
        tcp: Option<TcpListener>,
        mut commands: mpsc::UnboundedReceiver<SipCommand>,
        mut stopping: watch::Receiver<bool>,
        mut duty: watch::Receiver<crate::cluster::Duty>,
        mut mwi_out: mpsc::UnboundedReceiver<mwi::Output>,
    ) -> std::io::Result<()> {
        let (tcp_tx, mut tcp_rx) = mpsc::unbounded_channel::<TcpInput>();
        // New calls only while not stopping and the cluster duty allows them
        // (a backup in standby answers 503 with Retry-After).
        let mut duty_live = true;
        self.endpoint
            .set_accepting(duty.borrow_and_update().take_calls);
        let mut buf = vec![0u8; 65_536];
        loop {
            let timeout = self
                .endpoint
                .poll_timeout()
                .map(tokio::time::Instant::from_std);
            let udp = self.udp.clone();
            tokio::select! {
                r = async { match &udp { Some(u) => u.recv_from(&mut buf).await, None => std::future::pending().await } } => {
                    match r {
                        Ok((n, from)) => {
                            let now = Instant::now();
                            self.endpoint.handle_datagram(now, Transport::Udp, from, &buf[..n]);
                            // Take what else is waiting before answering: one
                            // turn of this loop per burst, not per datagram.
                            if let Some(u) = &udp {
                                for _ in 0..UDP_BATCH {
                                    let Ok((n, from)) = u.try_recv_from(&mut buf) else { break };
                                    self.endpoint.handle_datagram(now, Transport::Udp, from, &buf[..n]);
                                }
                            }
                        }
                        // ICMP errors surface here on Linux; they concern one peer, not us.
                        Err(e) => tracing::debug!(error = %e, "udp receive"),
                    }
                }
                accepted = async { match &tcp { Some(l) => l.accept().await, None => std::future::pending().await } } => {
                    if let Ok((stream, from)) = accepted {
                        self.next_conn += 1;
                        let conn = ConnId(self.next_conn);
                        let (out_tx, out_rx) = mpsc::unbounded_channel();
                        self.tcp_out.insert(conn, out_tx.clone());
                        tokio::spawn(tcp_connection(stream, conn, from, tcp_tx.clone(), out_tx, out_rx));
                    }
                }
                Some(input) = tcp_rx.recv() => match input {
                    TcpInput::Message { conn, from, bytes } => self.endpoint.handle_datagram(Instant::now(), Transport::Tcp(conn), from, &bytes),
                    TcpInput::Closed { conn } => { self.tcp_out.remove(&conn); }
                },
                Some(cmd) = commands.recv() => self.command(cmd),
                Some(out) = mwi_out.recv() => self.mwi(out),
                _ = async { match timeout { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => {
                    self.endpoint.handle_timeout(Instant::now());
                }
                changed = stopping.changed() => {
                    if changed.is_ok() && *stopping.borrow() {
                        self.endpoint.set_accepting(false);
                    }
                }
                changed = duty.changed(), if duty_live => {
                    // A gone sender leaves the last duty in force.
                    duty_live = changed.is_ok();
                    let take = duty.borrow_and_update().take_calls;
                    if !*stopping.borrow() {
                        self.endpoint.set_accepting(take);
                    }
                }
            }
            self.flush().await;
        }
    }

    fn command(&mut self, cmd: SipCommand) {
        let now = Instant::now();
        let (call, r) = match cmd {
            SipCommand::Answer { call, rtp } => (call, self.endpoint.answer(now, call, rtp)),
            SipCommand::Reject { call, status } => (call, self.endpoint.reject(now, call, status)),
            SipCommand::Hangup { call } => (call, self.endpoint.hangup(now, call)),
            SipCommand::Refer { call, target } => (call, self.endpoint.refer(now, call, &target)),
        };
        if let Err(e) = r {
            tracing::debug!(call = call.0, error = %e, "sip command not applied");
            if matches!(e, sip::CallError::InvalidArgument) {
                self.send_call(call, CallEvent::Transfer(sip::TransferOutcome::Failed));
            }
        }
    }

    /// Sends a NOTIFY the MWI notifier asks for.
    fn mwi(&mut self, out: mwi::Output) {
        let now = Instant::now();
        let r = match out {
            mwi::Output::Unsolicited { to, uri, body } => {
                // A lamp for a PBX goes to the PBX in control now.
                let (to, uri) = self.endpoint.controller().redirect(to, &uri);
                if self.udp.is_none() {
                    tracing::warn!(%uri, "mwi: unsolicited NOTIFYs need UDP (sip.udp is off)");
                    return;
                }
                let notify = sip::Notify {
                    event: mwi::PACKAGE.into(),
                    subscription_state: "active".into(),
                    content_type: mwi::CONTENT_TYPE.into(),
                    body: body.into_bytes(),
                };
                self.endpoint
                    .send_notify(
                        now,
                        sip::NotifyTarget::OutOfDialog {
                            to,
                            transport: Transport::Udp,
                            uri,
                        },
                        &notify,
                    )
                    .map(|_| ())
            }
            mwi::Output::Subscription { sub, body } => self
                .endpoint
                .notify_subscription(now, sub, mwi::CONTENT_TYPE, body.as_bytes())
                .map(|_| ()),
            mwi::Output::Terminate { sub, reason } => self
                .endpoint
                .terminate_subscription(now, sub, reason)
                .map(|_| ()),
        };
        if let Err(e) = r {
            // A subscription that ended meanwhile.
            tracing::debug!(error = %e, "mwi: NOTIFY not sent");
        }
    }

    async fn flush(&mut self) {
        while let Some(t) = self.endpoint.poll_transmit() {
            match t.transport {
                Transport::Udp => {
                    if let Some(u) = &self.udp {
                        if let Err(e) = u.send_to(&t.bytes, t.to).await {
                            tracing::debug!(to = %t.to, error = %e, "udp send");
                        }
                    }
                }
                Transport::Tcp(conn) => {
                    if let Some(tx) = self.tcp_out.get(&conn) {
                        let _ = tx.send(t.bytes);
                    }
                }
            }
        }
        while let Some(ev) = self.endpoint.poll_event() {
            self.event(ev);
        }
    }

    fn send_call(&mut self, call: CallHandle, ev: CallEvent) {
        if let Some(tx) = self.calls.get(&call) {
            let _ = tx.send(ev);
        }
    }

    fn event(&mut self, ev: Event) {
        match ev {
            Event::IncomingCall(inc) => {
                let (tx, rx) = mpsc::unbounded_channel();
                self.calls.insert(inc.call, tx);
                let shared = self.shared.clone();
                shared.active_calls.fetch_add(1, Ordering::Relaxed);
                self.calls_runtime.spawn(async move {
                    let s = shared.clone();
                    call::run(s, *inc, rx).await;
                    shared.active_calls.fetch_sub(1, Ordering::Relaxed);
                });
            }
            Event::CallConfirmed { call } => self.send_call(call, CallEvent::Confirmed),
            Event::CallCancelled { call } => {
                self.send_call(call, CallEvent::Ended { by_remote: true });
                self.calls.remove(&call);
            }
            Event::CallEnded {
                call, by_remote, ..
            } => {
                self.send_call(call, CallEvent::Ended { by_remote });
                self.calls.remove(&call);
            }
            Event::MediaUpdated { call, offer } => {
                self.send_call(call, CallEvent::MediaUpdated(offer))
            }
            Event::TransferResult { call, outcome } => {
                self.send_call(call, CallEvent::Transfer(outcome))
            }
            Event::TransferProgress { .. } | Event::Info { .. } | Event::Notify { .. } => {}
            Event::Subscription {
                sub,
                package,
                user,
                change,
                ..
            } => {
                if package == mwi::PACKAGE {
                    let _ = self
                        .mwi_in
                        .send(mwi::Input::Subscription { sub, user, change });
                }
            }
            Event::SubscriptionEnded { sub } => {
                let _ = self.mwi_in.send(mwi::Input::Ended { sub });
            }
            Event::ControllerChanged { name, addr } => {
                tracing::info!(pbx = %name, %addr, "sip: this PBX controls the node now; lamps go there");
                let _ = self.mwi_in.send(mwi::Input::Refresh);
            }
            Event::RequestFailed {
                call,
                method,
                status,
                ..
            } => {
                tracing::debug!(call = ?call.map(|c| c.0), ?method, ?status, "request failed");
            }
        }
    }
}

/// Reads SIP messages from one TCP connection and writes what the endpoint sends to it.
async fn tcp_connection(
    stream: tokio::net::TcpStream,
    conn: ConnId,
    from: SocketAddr,
    to_driver: mpsc::UnboundedSender<TcpInput>,
    pong: mpsc::UnboundedSender<Vec<u8>>,
    mut out: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        while let Some(bytes) = out.recv().await {
            if wr.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let mut framer = sip::framing::StreamFramer::new();
    let mut buf = vec![0u8; 16 * 1024];
    'read: loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        framer.push(&buf[..n]);
        loop {
            match framer.next_frame() {
                Ok(Some(sip::framing::Frame::Message(bytes))) => {
                    if to_driver
                        .send(TcpInput::Message { conn, from, bytes })
                        .is_err()
                    {
                        break 'read;
                    }
                }
                // RFC 5626 keep-alive: a CRLFCRLF ping gets a CRLF pong.
                Ok(Some(sip::framing::Frame::Ping)) => {
                    let _ = pong.send(b"\r\n".to_vec());
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(%from, ?e, "closing a TCP connection that cannot be framed");
                    break 'read;
                }
            }
        }
    }
    let _ = to_driver.send(TcpInput::Closed { conn });
    writer.abort();
}
