//! The sans-IO SIP user-agent server: transactions (RFC 3261 §17), dialogs,
//! INVITE/ACK/BYE/CANCEL/OPTIONS, REFER with NOTIFY tracking (RFC 3515),
//! the notifier side of SUBSCRIBE/NOTIFY (RFC 6665) for the event packages
//! the driver enables (`message-summary`, RFC 3842), trusted peers and
//! per-source rate limiting.
//!
//! # Driving it
//! The endpoint owns no socket and reads no clock. The driver feeds it:
//! - [`Endpoint::handle_datagram`] for every UDP datagram, and for every
//!   message framed from a TCP stream by [`super::framing::StreamFramer`];
//! - [`Endpoint::handle_timeout`] when the instant from
//!   [`Endpoint::poll_timeout`] has passed;
//! - the application commands ([`Endpoint::answer`], [`Endpoint::reject`],
//!   [`Endpoint::hangup`], [`Endpoint::refer`], [`Endpoint::send_notify`]).
//!
//! After each of those calls it drains, in this order,
//! [`Endpoint::poll_transmit`] (send each [`Transmit`]), [`Endpoint::poll_event`]
//! (hand each [`Event`] to the call engine), then re-reads
//! [`Endpoint::poll_timeout`]. Every input takes `now`; nothing inside looks
//! at a clock, so tests run on virtual time.
//!
//! # Lifecycle of a call
//! Every [`Event::IncomingCall`] is followed by exactly one terminal event for
//! that [`CallHandle`]: [`Event::CallCancelled`] or [`Event::CallEnded`].
//! After it the handle is dead and commands on it return
//! [`CallError::UnknownCall`].
//!
//! # Lifecycle of a subscription
//! A SUBSCRIBE for an enabled package is answered 200 with the granted
//! `Expires` at once; then [`Event::Subscription`] asks the application for
//! a NOTIFY with the current state ([`Endpoint::notify_subscription`]). So do
//! refreshes, and an un-SUBSCRIBE (`Expires: 0`, [`SubscriptionChange::Ending`]),
//! whose NOTIFY is the last (`terminated`). A subscription that is not
//! refreshed in time gets a bodiless `terminated;reason=timeout` NOTIFY from
//! the endpoint itself. Every subscription ends with exactly one
//! [`Event::SubscriptionEnded`]. Other packages get 489.
//!
//! # Invariants
//! - Every lookup is a hash-map access (transactions by branch, dialogs by
//!   Call-ID and local tag); timers live in one binary heap with lazy
//!   deletion: an entry fires only if its owner still expects that instant.
//! - Untrusted sources get one fixed 403 and leave no state behind.
//! - Malformed input from a peer gets a 400 (when a response can be
//!   addressed) or is dropped; it never panics.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::guard::{Admit, Cidr, Guard, RateLimit};
use super::header::{CSeq, NameAddr, Uri, Via, parse_event, parse_subscription_state};
use super::message::{
    self, HeaderName, Headers, Message, Method, ParseError, Request, Response, parse_decimal,
    reason_phrase,
};
use super::sdp::{self, MediaOffer, Sdp, SdpError};

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

/// A TCP connection, numbered by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(pub u64);

/// How a message travelled. Responses and in-dialog requests go back the
/// same way the request came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp(ConnId),
}

impl Transport {
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp(_))
    }

    fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp(_) => "TCP",
        }
    }
}

/// Bytes to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub to: SocketAddr,
    pub transport: Transport,
    pub bytes: Vec<u8>,
}

/// Our handle for one incoming call (not the SIP Call-ID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(pub u64);

/// Our handle for a request we sent with [`Endpoint::send_notify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(pub u64);

/// Our handle for one subscription we accepted (we are its notifier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionHandle(pub u64);

/// Why [`Event::Subscription`] asks for a NOTIFY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionChange {
    /// A new subscription, already answered 200.
    New,
    /// A refresh, already answered 200.
    Refreshed,
    /// `Expires: 0` (an un-SUBSCRIBE, or a one-off fetch), answered 200: the
    /// next NOTIFY is the last one (`terminated`), then the subscription ends.
    Ending,
}

/// RFC 3261 timer base values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Round-trip estimate (500 ms).
    pub t1: Duration,
    /// Longest retransmit interval for non-INVITE requests and INVITE
    /// responses (4 s).
    pub t2: Duration,
    /// Longest a message stays in the network (5 s).
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Timers {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Our SIP address as peers should reach it (Via, Contact).
    pub local_addr: SocketAddr,
    /// Sources allowed to talk to us. Everyone else gets 403.
    pub trusted: Vec<Cidr>,
    /// Per-source token bucket and ban; `None` disables limiting.
    pub rate_limit: Option<RateLimit>,
    pub timers: Timers,
    /// Longest wait for the final NOTIFY after a REFER.
    pub refer_timeout: Duration,
    /// Calls beyond this get 503.
    pub max_calls: usize,
    /// Seed for tags, branches and Call-IDs (the driver passes OS entropy).
    pub seed: u64,
    /// Event packages SUBSCRIBE may ask for (`message-summary`); others get 489.
    pub event_packages: Vec<String>,
    /// Shortest subscription accepted (shorter ones get 423 with Min-Expires).
    pub min_expires: Duration,
    /// Longest subscription granted; also the grant when no Expires is asked.
    pub max_expires: Duration,
    /// The PBXs calls come from, in order of preference (fallback
    /// controller, see [`super::fallback`]); they must also be trusted.
    pub pbx_peers: Vec<super::fallback::PbxPeer>,
}

impl Config {
    pub fn new(local_addr: SocketAddr) -> Config {
        Config {
            local_addr,
            trusted: vec![
                Cidr {
                    addr: "127.0.0.0".parse().expect("literal"),
                    prefix: 8,
                },
                Cidr {
                    addr: "::1".parse().expect("literal"),
                    prefix: 128,
                },
            ],
            rate_limit: Some(RateLimit::default()),
            timers: Timers::default(),
            refer_timeout: Duration::from_secs(60),
            max_calls: 20_000,
            seed: 0x5eed,
            event_packages: Vec::new(),
            min_expires: Duration::from_secs(60),
            max_expires: Duration::from_secs(3600),
            pbx_peers: Vec::new(),
        }
    }
}

/// A new call, reported before any final response; the 100 Trying has
/// already been sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCall {
    pub call: CallHandle,
    /// The SIP Call-ID (for traces).
    pub call_id: String,
    pub from_addr: SocketAddr,
    pub transport: Transport,
    pub request_uri_user: Option<String>,
    pub to_user: Option<String>,
    pub from_user: Option<String>,
    pub from_display: Option<String>,
    /// The original target from `Diversion` (its last entry: each
    /// redirection adds one on top).
    pub diversion_user: Option<String>,
    /// The original target from `History-Info` (the lowest index).
    pub history_info_user: Option<String>,
    /// The negotiated offer: remote RTP address, formats, the chosen G.711
    /// codec and the telephone-event payload type.
    pub offer: MediaOffer,
}

/// Outcome of a REFER, from the NOTIFY sipfrag (RFC 3515).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferOutcome {
    /// 2xx.
    Succeeded,
    /// 486 or 600.
    Busy,
    /// 408, 480 or 487.
    NoAnswer,
    /// Any other final status, a rejected REFER, or a timeout.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The peer sent BYE.
    RemoteBye,
    /// The application hung up.
    LocalHangup,
    /// The application rejected the call.
    Rejected,
    /// Our 2xx was never acknowledged (64·T1); we sent BYE.
    AckTimeout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    IncomingCall(Box<IncomingCall>),
    /// The ACK for our 200 arrived: media may flow both ways.
    CallConfirmed {
        call: CallHandle,
    },
    /// CANCEL before we answered: 487 and 200 sent. Terminal.
    CallCancelled {
        call: CallHandle,
    },
    /// A re-INVITE changed the media (hold, unhold, new address or codec);
    /// already answered with the same local RTP address.
    MediaUpdated {
        call: CallHandle,
        offer: MediaOffer,
    },
    /// Terminal.
    CallEnded {
        call: CallHandle,
        by_remote: bool,
        reason: EndReason,
    },
    /// A 1xx sipfrag for our REFER.
    TransferProgress {
        call: CallHandle,
        status: u16,
    },
    TransferResult {
        call: CallHandle,
        outcome: TransferOutcome,
    },
    /// An in-dialog INFO (e.g. `application/dtmf-relay`), already answered 200.
    Info {
        call: CallHandle,
        content_type: Option<String>,
        body: Vec<u8>,
    },
    /// A NOTIFY in a dialog for an event package other than `refer`,
    /// already answered 200 (the hook for subscriptions such as MWI).
    Notify {
        call: CallHandle,
        event: String,
        content_type: Option<String>,
        body: Vec<u8>,
    },
    /// A subscription wants a NOTIFY with the current state of `user`'s
    /// resource (the Request-URI user of the SUBSCRIBE): answer with
    /// [`Endpoint::notify_subscription`], or [`Endpoint::terminate_subscription`]
    /// when there is no such resource.
    Subscription {
        sub: SubscriptionHandle,
        package: String,
        user: Option<String>,
        from_user: Option<String>,
        change: SubscriptionChange,
    },
    /// The subscription is gone (last NOTIFY sent, expired, or a NOTIFY
    /// failed with 481, 408 or a timeout). Terminal.
    SubscriptionEnded {
        sub: SubscriptionHandle,
    },
    /// Another configured PBX sent the latest INVITE, OPTIONS or SUBSCRIBE:
    /// it controls this node now (MWI goes there; [`Endpoint::controller`]).
    ControllerChanged {
        name: String,
        addr: SocketAddr,
    },
    /// A request we sent failed: a final status ≥ 300, or `None` for a
    /// timeout (Timer F).
    RequestFailed {
        request: Option<RequestId>,
        call: Option<CallHandle>,
        method: Method,
        status: Option<u16>,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    UnknownCall,
    /// The command does not fit the call's state (e.g. `answer` twice,
    /// `refer` before the ACK or while another REFER is pending).
    InvalidState,
    /// `reject` with a status outside 300..=699, or a target that is not a URI.
    InvalidArgument,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CallError::UnknownCall => "no such call",
            CallError::InvalidState => "command not valid in the call's state",
            CallError::InvalidArgument => "invalid argument",
        })
    }
}

impl std::error::Error for CallError {}

/// Where a NOTIFY goes: into a call's dialog, or out of dialog (an
/// unsolicited RFC 3842 message-summary to a phone, for example).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyTarget {
    Dialog(CallHandle),
    OutOfDialog {
        to: SocketAddr,
        transport: Transport,
        uri: String,
    },
}

/// A NOTIFY to send (RFC 6665): the event package, Subscription-State and
/// body, e.g. `message-summary`, `active;expires=3600`,
/// `application/simple-message-summary`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    pub event: String,
    pub subscription_state: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// The methods we accept as a UAS.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, NOTIFY, INFO, SUBSCRIBE";

// ---------------------------------------------------------------------------
// Internal state
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxState {
    /// INVITE before a final response (replay the last provisional).
    Proceeding,
    /// Non-2xx final sent (INVITE: awaiting ACK; non-INVITE: absorbing).
    Completed,
    /// ACK received for a non-2xx final (Timer I).
    Confirmed,
    /// 2xx sent to an INVITE (RFC 6026): absorb retransmissions (Timer L).
    Accepted,
}

#[derive(Debug)]
struct ServerTx {
    invite: bool,
    state: TxState,
    response: Vec<u8>,
    to: SocketAddr,
    transport: Transport,
    call: Option<CallHandle>,
    /// The To tag of our responses (INVITE only), reused for the CANCEL's
    /// 200 (RFC 3261 §9.2).
    tag: Option<String>,
    interval: Duration,
    retransmit_at: Option<Instant>,
    expire_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Bye(CallHandle),
    Refer(CallHandle),
    Notify(RequestId, Option<CallHandle>),
    SubNotify(RequestId, SubscriptionHandle),
}

#[derive(Debug)]
struct ClientTx {
    purpose: Purpose,
    method: Method,
    bytes: Vec<u8>,
    to: SocketAddr,
    transport: Transport,
    interval: Duration,
    proceeding: bool,
    retransmit_at: Option<Instant>,
    timeout_at: Option<Instant>,
}

/// What the peer's request looked like, for echoing into responses.
#[derive(Debug, Clone)]
struct Echo {
    vias: Vec<String>,
    from: Option<String>,
    to: Option<String>,
    call_id: Option<String>,
    cseq: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// INVITE received, no final response yet.
    Early,
    /// 200 sent, waiting for the ACK.
    Answered,
    Confirmed,
    /// The application hung up before the ACK; BYE goes out when it comes.
    ByeOnAck,
}

#[derive(Debug)]
struct Pending2xx {
    bytes: Vec<u8>,
    cseq: u32,
    interval: Duration,
    next: Option<Instant>,
    deadline: Instant,
    initial: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReferState {
    None,
    Pending { deadline: Instant },
    Done,
}

#[derive(Debug)]
struct Call {
    sip_call_id: String,
    local_tag: String,
    /// Our URI: the INVITE's To without tag.
    local_uri: String,
    /// The INVITE's From, with the peer's tag: our To.
    remote_from: String,
    remote_target: String,
    route_set: Vec<String>,
    peer: SocketAddr,
    transport: Transport,
    remote_cseq: u32,
    local_cseq: u32,
    phase: Phase,
    invite_key: String,
    invite_echo: Echo,
    offer_sdp: Sdp,
    media: MediaOffer,
    local_rtp: Option<SocketAddr>,
    sdp_session: u64,
    sdp_version: u64,
    last_answer: Vec<u8>,
    pending_2xx: Option<Pending2xx>,
    refer: ReferState,
}

/// A subscription we are the notifier of: the dialog the SUBSCRIBE made.
#[derive(Debug)]
struct Subscription {
    sip_call_id: String,
    local_tag: String,
    /// The SUBSCRIBE's To without tag: our From.
    local_uri: String,
    /// The SUBSCRIBE's From with the subscriber's tag: our To.
    remote_from: String,
    remote_target: String,
    route_set: Vec<String>,
    peer: SocketAddr,
    transport: Transport,
    remote_cseq: u32,
    local_cseq: u32,
    package: String,
    /// The Event header of our NOTIFYs (package and `id`).
    event: String,
    expires_at: Instant,
    /// Set once the subscription is ending: the Subscription-State of the last NOTIFY.
    ending: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TimerRef {
    Server(String),
    ServerExpire(String),
    Client(String),
    ClientTimeout(String),
    Retransmit2xx(CallHandle),
    AckTimeout(CallHandle),
    ReferTimeout(CallHandle),
    SubscriptionExpire(SubscriptionHandle),
    Sweep,
}

#[derive(Debug, PartialEq, Eq)]
struct TimerEntry {
    at: Instant,
    seq: u64,
    what: TimerRef,
}

impl Ord for TimerEntry {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap, we want the earliest first.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for TimerEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// SplitMix64: tags and branches need uniqueness, not secrecy.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// The SIP user-agent server core. See the module documentation.
#[derive(Debug)]
pub struct Endpoint {
    config: Config,
    guard: Guard,
    rng: Rng,
    next_id: u64,
    accepting: bool,
    server_txs: HashMap<String, ServerTx>,
    client_txs: HashMap<String, ClientTx>,
    calls: HashMap<CallHandle, Call>,
    /// `Call-ID \0 local tag` → call.
    dialogs: HashMap<String, CallHandle>,
    subs: HashMap<SubscriptionHandle, Subscription>,
    /// `Call-ID \0 local tag` → subscription.
    sub_dialogs: HashMap<String, SubscriptionHandle>,
    timers: BinaryHeap<TimerEntry>,
    timer_seq: u64,
    sweep_armed: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    controller: super::fallback::Controller,
}

fn dialog_key(call_id: &str, local_tag: &str) -> String {
    let mut k = String::with_capacity(call_id.len() + local_tag.len() + 1);
    k.push_str(call_id);
    k.push('\0');
    k.push_str(local_tag);
    k
}

impl Endpoint {
    pub fn new(config: Config) -> Endpoint {
        let guard = Guard::new(config.trusted.clone(), config.rate_limit.clone());
        let rng = Rng(config.seed);
        let controller = super::fallback::Controller::new(config.pbx_peers.clone());
        Endpoint {
            controller,
            config,
            guard,
            rng,
            next_id: 1,
            accepting: true,
            server_txs: HashMap::new(),
            client_txs: HashMap::new(),
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            subs: HashMap::new(),
            sub_dialogs: HashMap::new(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            sweep_armed: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Which configured PBX controls this node now.
    pub fn controller(&self) -> &super::fallback::Controller {
        &self.controller
    }

    /// Stop (or resume) accepting new calls: new INVITEs get 503. Calls in
    /// progress are unaffected (graceful shutdown).
    pub fn set_accepting(&mut self, accepting: bool) {
        self.accepting = accepting;
    }

    /// Calls that have not ended yet.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Subscriptions alive.
    pub fn subscription_count(&self) -> usize {
        self.subs.len()
    }

    /// Transactions alive (for tests and metrics).
    pub fn transaction_count(&self) -> (usize, usize) {
        (self.server_txs.len(), self.client_txs.len())
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next instant at which [`Endpoint::handle_timeout`] must be called.
    /// May be earlier than necessary (cancelled timers are removed lazily).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|t| t.at)
    }

    // -- timers -------------------------------------------------------------

    fn arm(&mut self, at: Instant, what: TimerRef) {
        self.timer_seq += 1;
        self.timers.push(TimerEntry {
            at,
            seq: self.timer_seq,
            what,
        });
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(top) = self.timers.peek() {
            if top.at > now {
                break;
            }
            let Some(entry) = self.timers.pop() else {
                break;
            };
            self.fire(now, entry.at, entry.what);
        }
    }

    fn fire(&mut self, now: Instant, at: Instant, what: TimerRef) {
        let t = self.config.timers;
        match what {
            TimerRef::Server(key) => {
                let Some(tx) = self.server_txs.get_mut(&key) else {
                    return;
                };
                if tx.retransmit_at != Some(at) || tx.state != TxState::Completed {
                    return;
                }
                self.transmits.push_back(Transmit {
                    to: tx.to,
                    transport: tx.transport,
                    bytes: tx.response.clone(),
                });
                tx.interval = (tx.interval * 2).min(t.t2);
                let next = now + tx.interval;
                tx.retransmit_at = Some(next);
                self.arm(next, TimerRef::Server(key));
            }
            TimerRef::ServerExpire(key) => {
                if self
                    .server_txs
                    .get(&key)
                    .is_some_and(|tx| tx.expire_at == Some(at))
                {
                    self.server_txs.remove(&key);
                }
            }
            TimerRef::Client(branch) => {
                let Some(tx) = self.client_txs.get_mut(&branch) else {
                    return;
                };
                if tx.retransmit_at != Some(at) {
                    return;
                }
                self.transmits.push_back(Transmit {
                    to: tx.to,
                    transport: tx.transport,
                    bytes: tx.bytes.clone(),
                });
                tx.interval = if tx.proceeding {
                    t.t2
                } else {
                    (tx.interval * 2).min(t.t2)
                };
                let next = now + tx.interval;
                tx.retransmit_at = Some(next);
                self.arm(next, TimerRef::Client(branch));
            }
            TimerRef::ClientTimeout(branch) => {
                if self
                    .client_txs
                    .get(&branch)
                    .is_some_and(|tx| tx.timeout_at == Some(at))
                    && let Some(tx) = self.client_txs.remove(&branch)
                {
                    self.client_failed(now, tx.purpose, tx.method, None);
                }
            }
            TimerRef::Retransmit2xx(h) => {
                let Some(call) = self.calls.get_mut(&h) else {
                    return;
                };
                let Some(p) = call.pending_2xx.as_mut() else {
                    return;
                };
                if p.next != Some(at) {
                    return;
                }
                self.transmits.push_back(Transmit {
                    to: call.peer,
                    transport: call.transport,
                    bytes: p.bytes.clone(),
                });
                p.interval = (p.interval * 2).min(t.t2);
                let next = now + p.interval;
                p.next = Some(next);
                self.arm(next, TimerRef::Retransmit2xx(h));
            }
            TimerRef::AckTimeout(h) => {
                let Some(call) = self.calls.get_mut(&h) else {
                    return;
                };
                let Some(p) = call.pending_2xx.as_ref() else {
                    return;
                };
                if p.deadline != at {
                    return;
                }
                let initial = p.initial;
                call.pending_2xx = None;
                let phase = call.phase;
                if initial || phase == Phase::ByeOnAck {
                    // RFC 3261 §13.3.1.4: no ACK, so end the dialog with BYE.
                    self.send_bye(now, h);
                    let ended = self.remove_call(h);
                    if ended.is_some() && phase != Phase::ByeOnAck {
                        self.events.push_back(Event::CallEnded {
                            call: h,
                            by_remote: false,
                            reason: EndReason::AckTimeout,
                        });
                    }
                }
            }
            TimerRef::ReferTimeout(h) => {
                let Some(call) = self.calls.get_mut(&h) else {
                    return;
                };
                if call.refer != (ReferState::Pending { deadline: at }) {
                    return;
                }
                call.refer = ReferState::Done;
                self.events.push_back(Event::TransferResult {
                    call: h,
                    outcome: TransferOutcome::Failed,
                });
            }
            TimerRef::SubscriptionExpire(sub) => {
                let Some(s) = self.subs.get(&sub) else { return };
                if s.expires_at != at {
                    return;
                }
                // Not refreshed (or the application never sent the last NOTIFY).
                let state = s.ending.unwrap_or("terminated;reason=timeout");
                self.send_sub_notify(now, sub, state, None);
                self.end_subscription(sub);
            }
            TimerRef::Sweep => {
                self.guard.sweep(now);
                self.sweep_armed = self.guard.tracked_sources() > 0;
                if self.sweep_armed {
                    self.arm(now + SWEEP_EVERY, TimerRef::Sweep);
                }
            }
        }
    }

    // -- input ----------------------------------------------------------------

    /// One UDP datagram, or one message framed from a TCP connection.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        transport: Transport,
        from: SocketAddr,
        bytes: &[u8],
    ) {
        let admit = self.guard.admit(now, from.ip());
        if !self.sweep_armed && self.guard.tracked_sources() > 0 {
            self.sweep_armed = true;
            self.arm(now + SWEEP_EVERY, TimerRef::Sweep);
        }
        if admit == Admit::Drop {
            return;
        }
        let datagram = !transport.is_reliable();
        let msg = message::parse(bytes, datagram);
        if admit == Admit::Untrusted {
            // One fixed answer, whatever was asked and however well-formed.
            let headers = match &msg {
                Ok(Message::Request(r)) if r.method != Method::Ack => &r.headers,
                Err(m) if m.method.as_ref().is_some_and(|m| *m != Method::Ack) => &m.headers,
                _ => return,
            };
            let echo = echo_of(headers, from, transport);
            if echo.vias.is_empty() {
                return;
            }
            let tag = self.new_tag();
            let bytes = build_response(&echo, 403, "Forbidden", Some(&tag), "", None);
            self.transmits.push_back(Transmit {
                to: from,
                transport,
                bytes,
            });
            return;
        }
        match msg {
            Ok(Message::Request(req)) => self.handle_request(now, transport, from, req),
            Ok(Message::Response(resp)) => self.handle_response(now, resp),
            Err(bad) => {
                let Some(method) = &bad.method else { return };
                if *method == Method::Ack {
                    return;
                }
                let echo = echo_of(&bad.headers, from, transport);
                if echo.vias.is_empty() {
                    return;
                }
                let (status, reason) = match bad.error {
                    ParseError::Version => (505, "Version Not Supported".to_string()),
                    e => (400, format!("Bad Request ({e})")),
                };
                let tag = self.new_tag();
                let bytes = build_response(&echo, status, &reason, Some(&tag), "", None);
                self.transmits.push_back(Transmit {
                    to: from,
                    transport,
                    bytes,
                });
            }
        }
    }

    fn handle_request(
        &mut self,
        now: Instant,
        transport: Transport,
        from: SocketAddr,
        req: Request,
    ) {
        let echo = echo_of(&req.headers, from, transport);
        if echo.vias.is_empty() {
            return; // Nowhere to address a response.
        }
        let is_ack = req.method == Method::Ack;
        // Validate the mandatory headers (RFC 3261 §8.1.1).
        let top_via = req.headers.first(&HeaderName::Via).and_then(Via::parse);
        let from_h = req.headers.get(&HeaderName::From).and_then(NameAddr::parse);
        let to_h = req.headers.get(&HeaderName::To).and_then(NameAddr::parse);
        let cseq = req.headers.get(&HeaderName::CSeq).and_then(CSeq::parse);
        let call_id = req
            .headers
            .get(&HeaderName::CallId)
            .filter(|c| !c.is_empty());
        let uri = Uri::parse(&req.uri);
        let max_forwards = match req.headers.get(&HeaderName::MaxForwards) {
            Some(v) => parse_decimal(v, 255).map(|n| n as u8),
            None => Some(70),
        };
        let single = |name: &HeaderName| req.headers.count(name) <= 1;
        let problem = if top_via.is_none() {
            Some("Bad Via")
        } else if from_h.is_none() || !single(&HeaderName::From) {
            Some("Bad From")
        } else if to_h.is_none() || !single(&HeaderName::To) {
            Some("Bad To")
        } else if call_id.is_none() || !single(&HeaderName::CallId) {
            Some("Bad Call-ID")
        } else if cseq.as_ref().is_none_or(|c| c.method != req.method) || !single(&HeaderName::CSeq)
        {
            Some("Bad CSeq")
        } else if max_forwards.is_none() {
            Some("Bad Max-Forwards")
        } else if uri.as_ref().is_none_or(|u| u.has_headers) {
            Some("Bad Request-URI")
        } else if req.method == Method::Invite
            && req
                .headers
                .get(&HeaderName::Contact)
                .is_some_and(|c| NameAddr::parse(c).is_none())
        {
            Some("Bad Contact")
        } else {
            None
        };
        if let Some(reason) = problem {
            if !is_ack {
                self.respond_stateless(from, transport, &echo, 400, reason, "");
            }
            return;
        }
        // Checked just above.
        let (
            Some(top_via),
            Some(from_h),
            Some(to_h),
            Some(cseq),
            Some(call_id),
            Some(uri),
            Some(mf),
        ) = (top_via, from_h, to_h, cseq, call_id, uri, max_forwards)
        else {
            return;
        };
        if is_ack {
            self.handle_ack(now, &top_via, &req, &to_h, call_id, cseq.seq);
            return;
        }
        let key = tx_key(&top_via, &req, &from_h, call_id, cseq.seq);
        // A retransmission: replay what we last said.
        if let Some(tx) = self.server_txs.get(&key) {
            if !tx.response.is_empty() {
                self.transmits.push_back(Transmit {
                    to: from,
                    transport,
                    bytes: tx.response.clone(),
                });
            }
            return;
        }
        if mf == 0 {
            self.respond_nontx(now, key, from, transport, &echo, 483, "");
            return;
        }
        if !uri.is_sip() {
            self.respond_nontx(now, key, from, transport, &echo, 416, "");
            return;
        }
        if req.method != Method::Cancel
            && let Some(req_ext) = req.headers.get(&HeaderName::Require)
        {
            let extra = format!("Unsupported: {req_ext}\r\n");
            if req.method == Method::Invite {
                self.respond_invite_final(now, key, from, transport, &echo, None, 420, &extra);
            } else {
                self.respond_nontx(now, key, from, transport, &echo, 420, &extra);
            }
            return;
        }
        if matches!(
            req.method,
            Method::Invite | Method::Options | Method::Subscribe
        ) && let Some(pbx) = self.controller.observe(from)
        {
            self.events.push_back(Event::ControllerChanged {
                name: pbx.name.clone(),
                addr: pbx.addr,
            });
        }
        let ctx = Ctx {
            now,
            transport,
            from,
            key,
            echo,
        };
        match req.method {
            Method::Invite => {
                if to_h.tag().is_some() {
                    self.handle_reinvite(ctx, &req, &to_h, call_id, cseq.seq);
                } else {
                    self.handle_invite(ctx, &req, &uri, &from_h, &to_h, call_id, cseq.seq);
                }
            }
            Method::Cancel => self.handle_cancel(ctx, &top_via, &req, &from_h, call_id, cseq.seq),
            Method::Bye => self.handle_bye(ctx, &to_h, call_id, cseq.seq),
            Method::Options => {
                let extra = format!("Allow: {ALLOW}\r\nAccept: application/sdp\r\n");
                self.respond_nontx(
                    ctx.now,
                    ctx.key,
                    ctx.from,
                    ctx.transport,
                    &ctx.echo,
                    200,
                    &extra,
                );
            }
            Method::Notify => self.handle_notify(ctx, &req, &to_h, call_id, cseq.seq),
            Method::Info => match self.in_dialog(&to_h, call_id, cseq.seq) {
                Ok(h) => {
                    self.respond_nontx(
                        ctx.now,
                        ctx.key,
                        ctx.from,
                        ctx.transport,
                        &ctx.echo,
                        200,
                        "",
                    );
                    self.events.push_back(Event::Info {
                        call: h,
                        content_type: req
                            .headers
                            .get(&HeaderName::ContentType)
                            .map(str::to_string),
                        body: req.body,
                    });
                }
                Err(status) => self.respond_nontx(
                    ctx.now,
                    ctx.key,
                    ctx.from,
                    ctx.transport,
                    &ctx.echo,
                    status,
                    "",
                ),
            },
            Method::Subscribe => {
                self.handle_subscribe(ctx, &req, &uri, &from_h, &to_h, call_id, cseq.seq);
            }
            Method::Other(_) => {
                let extra = format!("Allow: {ALLOW}\r\n");
                self.respond_nontx(
                    ctx.now,
                    ctx.key,
                    ctx.from,
                    ctx.transport,
                    &ctx.echo,
                    501,
                    &extra,
                );
            }
            _ => {
                let extra = format!("Allow: {ALLOW}\r\n");
                self.respond_nontx(
                    ctx.now,
                    ctx.key,
                    ctx.from,
                    ctx.transport,
                    &ctx.echo,
                    405,
                    &extra,
                );
            }
        }
    }

    /// Finds the call for an in-dialog request and checks its CSeq; the
    /// error is the status to answer with.
    fn in_dialog(&mut self, to: &NameAddr, call_id: &str, seq: u32) -> Result<CallHandle, u16> {
        let tag = to.tag().ok_or(481u16)?;
        let h = *self.dialogs.get(&dialog_key(call_id, tag)).ok_or(481u16)?;
        let call = self.calls.get_mut(&h).ok_or(481u16)?;
        // RFC 3261 §12.2.2: a lower CSeq than the last one is out of order.
        if seq <= call.remote_cseq {
            return Err(500);
        }
        call.remote_cseq = seq;
        Ok(h)
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_invite(
        &mut self,
        ctx: Ctx,
        req: &Request,
        uri: &Uri,
        from_h: &NameAddr,
        to_h: &NameAddr,
        call_id: &str,
        seq: u32,
    ) {
        let Ctx {
            now,
            transport,
            from,
            key,
            echo,
        } = ctx;
        // 100 Trying at once, before any other work (RFC 3261 §17.2.1).
        let trying = build_response(&echo, 100, "Trying", None, "", None);
        self.transmits.push_back(Transmit {
            to: from,
            transport,
            bytes: trying.clone(),
        });
        self.server_txs.insert(
            key.clone(),
            ServerTx {
                invite: true,
                state: TxState::Proceeding,
                response: trying,
                to: from,
                transport,
                call: None,
                tag: None,
                interval: self.config.timers.t1,
                retransmit_at: None,
                expire_at: None,
            },
        );
        if !self.accepting || self.calls.len() >= self.config.max_calls {
            let extra = "Retry-After: 5\r\n";
            self.respond_invite_final(now, key, from, transport, &echo, None, 503, extra);
            return;
        }
        let (offer_sdp, media) = match negotiate(&req.headers, &req.body) {
            Ok(x) => x,
            Err((status, extra)) => {
                self.respond_invite_final(now, key, from, transport, &echo, None, status, extra);
                return;
            }
        };
        let h = CallHandle(self.next_id);
        self.next_id += 1;
        let local_tag = self.new_tag();
        let (remote_target, route_set) = dialog_peer(&req.headers, &from_h);
        let sdp_session = self.rng.next() >> 1;
        if let Some(tx) = self.server_txs.get_mut(&key) {
            tx.call = Some(h);
            tx.tag = Some(local_tag.clone());
        }
        let incoming = IncomingCall {
            call: h,
            call_id: call_id.to_string(),
            from_addr: from,
            transport,
            request_uri_user: uri.user.clone(),
            to_user: to_h.uri.user.clone(),
            from_user: from_h.uri.user.clone(),
            from_display: from_h.display.clone(),
            diversion_user: req
                .headers
                .get_all(&HeaderName::Diversion)
                .filter_map(NameAddr::parse)
                .last()
                .and_then(|n| n.uri.user),
            history_info_user: original_history_target(&req.headers),
            offer: media.clone(),
        };
        self.dialogs.insert(dialog_key(call_id, &local_tag), h);
        self.calls.insert(
            h,
            Call {
                sip_call_id: call_id.to_string(),
                local_tag,
                local_uri: echo.to.clone().unwrap_or_default(),
                remote_from: echo.from.clone().unwrap_or_default(),
                remote_target,
                route_set,
                peer: from,
                transport,
                remote_cseq: seq,
                local_cseq: 0,
                phase: Phase::Early,
                invite_key: key,
                invite_echo: echo,
                offer_sdp,
                media,
                local_rtp: None,
                sdp_session,
                sdp_version: 1,
                last_answer: Vec::new(),
                pending_2xx: None,
                refer: ReferState::None,
            },
        );
        self.events
            .push_back(Event::IncomingCall(Box::new(incoming)));
    }

    fn handle_reinvite(
        &mut self,
        ctx: Ctx,
        req: &Request,
        to_h: &NameAddr,
        call_id: &str,
        seq: u32,
    ) {
        let Ctx {
            now,
            transport,
            from,
            key,
            echo,
        } = ctx;
        let h = match self.in_dialog(to_h, call_id, seq) {
            Ok(h) => h,
            Err(status) => {
                self.respond_invite_final(now, key, from, transport, &echo, None, status, "");
                return;
            }
        };
        let Some(call) = self.calls.get(&h) else {
            return;
        };
        if call.phase != Phase::Confirmed || call.pending_2xx.is_some() {
            // An earlier INVITE is still unacknowledged (RFC 3261 §14.2).
            let extra = "Retry-After: 1\r\n";
            self.respond_invite_final(now, key, from, transport, &echo, Some(h), 491, extra);
            return;
        }
        let (offer_sdp, media) = if req.body.is_empty() {
            // No offer: we repeat our last SDP as the offer; the ACK
            // carries the answer, which changes nothing we send.
            (call.offer_sdp.clone(), call.media.clone())
        } else {
            match negotiate(&req.headers, &req.body) {
                Ok(x) => x,
                Err((status, extra)) => {
                    self.respond_invite_final(
                        now,
                        key,
                        from,
                        transport,
                        &echo,
                        Some(h),
                        status,
                        extra,
                    );
                    return;
                }
            }
        };
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        let local = call.local_rtp.unwrap_or(self.config.local_addr);
        let mut answer = sdp::build_answer(
            &offer_sdp,
            &media,
            local,
            call.sdp_session,
            call.sdp_version,
        );
        if strip_origin(&answer) != strip_origin(&call.last_answer) {
            call.sdp_version += 1;
            answer = sdp::build_answer(
                &offer_sdp,
                &media,
                local,
                call.sdp_session,
                call.sdp_version,
            );
        }
        call.last_answer = answer.clone();
        let changed = media != call.media;
        call.offer_sdp = offer_sdp;
        call.media = media.clone();
        // Answer from our dialog state (the To already has our tag).
        let contact = self.contact(transport);
        let extra = format!("Contact: {contact}\r\nAllow: {ALLOW}\r\n");
        let bytes = build_response(
            &echo,
            200,
            "OK",
            None,
            &extra,
            Some(("application/sdp", &answer)),
        );
        self.send_2xx(now, h, key, from, transport, bytes, seq, false);
        if changed {
            self.events.push_back(Event::MediaUpdated {
                call: h,
                offer: media,
            });
        }
    }

    fn handle_ack(
        &mut self,
        now: Instant,
        via: &Via,
        req: &Request,
        to: &NameAddr,
        call_id: &str,
        seq: u32,
    ) {
        // ACK for a non-2xx final: same branch as the INVITE, hop by hop.
        let from_h = req.headers.get(&HeaderName::From).and_then(NameAddr::parse);
        if let Some(from_h) = from_h {
            let key = tx_key(via, req, &from_h, call_id, seq);
            if let Some(tx) = self.server_txs.get_mut(&key)
                && tx.invite
                && tx.state == TxState::Completed
            {
                tx.state = TxState::Confirmed;
                tx.retransmit_at = None;
                if tx.transport.is_reliable() {
                    self.server_txs.remove(&key);
                } else {
                    let at = now + self.config.timers.t4;
                    tx.expire_at = Some(at);
                    self.arm(at, TimerRef::ServerExpire(key));
                }
                return;
            }
        }
        // ACK for a 2xx: end to end, matched to the dialog.
        let Some(tag) = to.tag() else { return };
        let Some(&h) = self.dialogs.get(&dialog_key(call_id, tag)) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        if call.pending_2xx.as_ref().is_none_or(|p| p.cseq != seq) {
            return; // A retransmitted or stray ACK.
        }
        call.pending_2xx = None;
        match call.phase {
            Phase::Answered => {
                call.phase = Phase::Confirmed;
                self.events.push_back(Event::CallConfirmed { call: h });
            }
            Phase::ByeOnAck => {
                self.send_bye(now, h);
                self.remove_call(h);
            }
            Phase::Early | Phase::Confirmed => {}
        }
    }

    fn handle_cancel(
        &mut self,
        ctx: Ctx,
        via: &Via,
        req: &Request,
        from_h: &NameAddr,
        call_id: &str,
        seq: u32,
    ) {
        let Ctx {
            now,
            transport,
            from,
            key,
            echo,
        } = ctx;
        // The INVITE transaction has the CANCEL's branch (RFC 3261 §9.2).
        let mut invite_req = req.clone();
        invite_req.method = Method::Invite;
        let invite_key = tx_key(via, &invite_req, from_h, call_id, seq);
        let Some(tx) = self.server_txs.get(&invite_key) else {
            self.respond_nontx(now, key, from, transport, &echo, 481, "");
            return;
        };
        let call = tx.call;
        let still_proceeding = tx.state == TxState::Proceeding;
        // The same To tag as the INVITE's response (RFC 3261 §9.2).
        let tag = match tx.tag.clone() {
            Some(t) => t,
            None => self.new_tag(),
        };
        self.respond_nontx_tagged(now, key, from, transport, &echo, 200, "", &tag);
        if !still_proceeding {
            return; // Already answered or rejected: the CANCEL changes nothing.
        }
        let Some(h) = call else { return };
        let Some(c) = self.calls.get(&h) else { return };
        let invite_echo = c.invite_echo.clone();
        let (peer, tr) = (c.peer, c.transport);
        self.respond_invite_final(now, invite_key, peer, tr, &invite_echo, Some(h), 487, "");
        self.remove_call(h);
        self.events.push_back(Event::CallCancelled { call: h });
    }

    fn handle_bye(&mut self, ctx: Ctx, to_h: &NameAddr, call_id: &str, seq: u32) {
        let Ctx {
            now,
            transport,
            from,
            key,
            echo,
        } = ctx;
        let h = match self.in_dialog(to_h, call_id, seq) {
            Ok(h) => h,
            Err(status) => {
                self.respond_nontx(now, key, from, transport, &echo, status, "");
                return;
            }
        };
        self.respond_nontx(now, key, from, transport, &echo, 200, "");
        let Some(call) = self.calls.get(&h) else {
            return;
        };
        let phase = call.phase;
        if phase == Phase::Early {
            // BYE before our final response: the INVITE gets 487.
            let (k, e, p, t) = (
                call.invite_key.clone(),
                call.invite_echo.clone(),
                call.peer,
                call.transport,
            );
            self.respond_invite_final(now, k, p, t, &e, Some(h), 487, "");
        }
        self.remove_call(h);
        if phase != Phase::ByeOnAck {
            self.events.push_back(Event::CallEnded {
                call: h,
                by_remote: true,
                reason: EndReason::RemoteBye,
            });
        }
    }

    fn handle_notify(&mut self, ctx: Ctx, req: &Request, to_h: &NameAddr, call_id: &str, seq: u32) {
        let Ctx {
            now,
            transport,
            from,
            key,
            echo,
        } = ctx;
        let event = req.headers.get(&HeaderName::Event).and_then(parse_event);
        let Some((package, _)) = event else {
            self.respond_nontx(now, key, from, transport, &echo, 489, "");
            return;
        };
        let h = match self.in_dialog(to_h, call_id, seq) {
            Ok(h) => h,
            Err(status) => {
                self.respond_nontx(now, key, from, transport, &echo, status, "");
                return;
            }
        };
        if package != "refer" {
            self.respond_nontx(now, key, from, transport, &echo, 200, "");
            self.events.push_back(Event::Notify {
                call: h,
                event: package,
                content_type: req
                    .headers
                    .get(&HeaderName::ContentType)
                    .map(str::to_string),
                body: req.body.clone(),
            });
            return;
        }
        let refer = self.calls.get(&h).map_or(ReferState::None, |c| c.refer);
        if refer == ReferState::None {
            self.respond_nontx(now, key, from, transport, &echo, 481, "");
            return;
        }
        self.respond_nontx(now, key, from, transport, &echo, 200, "");
        let ReferState::Pending { .. } = refer else {
            return;
        };
        let terminated = req
            .headers
            .get(&HeaderName::SubscriptionState)
            .and_then(parse_subscription_state)
            .is_some_and(|(s, _)| s == "terminated");
        let outcome = match sipfrag_status(&req.body) {
            Some(s) if s < 200 => {
                self.events
                    .push_back(Event::TransferProgress { call: h, status: s });
                terminated.then_some(TransferOutcome::Failed)
            }
            Some(s) => Some(transfer_outcome(s)),
            None => terminated.then_some(TransferOutcome::Failed),
        };
        if let Some(outcome) = outcome
            && let Some(call) = self.calls.get_mut(&h)
        {
            call.refer = ReferState::Done;
            self.events
                .push_back(Event::TransferResult { call: h, outcome });
        }
    }

    /// SUBSCRIBE (RFC 6665 §4.2.1): a new subscription, a refresh, or an
    /// un-SUBSCRIBE. Only the enabled packages; the response goes at once, the
    /// NOTIFY when the application has the state.
    #[allow(clippy::too_many_arguments)]
    fn handle_subscribe(
        &mut self,
        ctx: Ctx,
        req: &Request,
        uri: &Uri,
        from_h: &NameAddr,
        to_h: &NameAddr,
        call_id: &str,
        seq: u32,
    ) {
        let Ctx {
            now,
            transport,
            from,
            key,
            echo,
        } = ctx;
        let event = req.headers.get(&HeaderName::Event).and_then(parse_event);
        let Some((package, params)) =
            event.filter(|(p, _)| self.config.event_packages.iter().any(|k| k == p))
        else {
            let extra = if self.config.event_packages.is_empty() {
                String::new()
            } else {
                format!(
                    "Allow-Events: {}\r\n",
                    self.config.event_packages.join(", ")
                )
            };
            self.respond_nontx(now, key, from, transport, &echo, 489, &extra);
            return;
        };
        let max = self.config.max_expires.as_secs();
        let expires = match req.headers.get(&HeaderName::Expires) {
            None => max,
            Some(v) => match parse_decimal(v, u64::from(u32::MAX)) {
                Some(n) => n.min(max),
                None => {
                    self.respond_stateless(from, transport, &echo, 400, "Bad Expires", "");
                    return;
                }
            },
        };
        let min = self.config.min_expires.as_secs();
        if expires != 0 && expires < min {
            let extra = format!("Min-Expires: {min}\r\n");
            self.respond_nontx(now, key, from, transport, &echo, 423, &extra);
            return;
        }
        let ending = (expires == 0).then_some("terminated");
        let expires_at = now + Duration::from_secs(expires);
        let contact = self.contact(transport);
        let extra = format!("Expires: {expires}\r\nContact: {contact}\r\n");
        let (sub, change) = if let Some(tag) = to_h.tag() {
            // A refresh or an un-SUBSCRIBE in an existing subscription.
            let found = self.sub_dialogs.get(&dialog_key(call_id, tag)).copied();
            let Some(sub) = found.filter(|h| self.subs.contains_key(h)) else {
                self.respond_nontx(now, key, from, transport, &echo, 481, "");
                return;
            };
            let Some(s) = self.subs.get_mut(&sub) else {
                return;
            };
            if s.package != package {
                self.respond_nontx(now, key, from, transport, &echo, 489, "");
                return;
            }
            if seq <= s.remote_cseq {
                self.respond_nontx(now, key, from, transport, &echo, 500, "");
                return;
            }
            s.remote_cseq = seq;
            if s.ending.is_some() {
                // Already ending: the refresh cannot revive it.
                self.respond_nontx(now, key, from, transport, &echo, 481, "");
                return;
            }
            self.respond_nontx(now, key, from, transport, &echo, 200, &extra);
            (
                sub,
                if ending.is_some() {
                    SubscriptionChange::Ending
                } else {
                    SubscriptionChange::Refreshed
                },
            )
        } else {
            if !self.accepting || self.subs.len() >= self.config.max_calls {
                self.respond_nontx(now, key, from, transport, &echo, 503, "Retry-After: 5\r\n");
                return;
            }
            let sub = SubscriptionHandle(self.next_id);
            self.next_id += 1;
            let local_tag = self.new_tag();
            let (remote_target, route_set) = dialog_peer(&req.headers, &from_h);
            let event = match super::header::param(&params, "id") {
                Some(id) if !id.is_empty() => format!("{package};id={id}"),
                _ => package.clone(),
            };
            self.respond_nontx_tagged(now, key, from, transport, &echo, 200, &extra, &local_tag);
            self.sub_dialogs
                .insert(dialog_key(call_id, &local_tag), sub);
            self.subs.insert(
                sub,
                Subscription {
                    sip_call_id: call_id.to_string(),
                    local_tag,
                    local_uri: strip_tag(echo.to.as_deref().unwrap_or_default()),
                    remote_from: echo.from.clone().unwrap_or_default(),
                    remote_target,
                    route_set,
                    peer: from,
                    transport,
                    remote_cseq: seq,
                    local_cseq: 0,
                    package: package.clone(),
                    event,
                    expires_at,
                    ending: None,
                },
            );
            (
                sub,
                if ending.is_some() {
                    SubscriptionChange::Ending
                } else {
                    SubscriptionChange::New
                },
            )
        };
        // The last NOTIFY is due now; if the application never sends it,
        // the endpoint does (bodiless) after 64·T1.
        let at = match ending {
            Some(_) => now + self.config.timers.t1 * 64,
            None => expires_at,
        };
        if let Some(s) = self.subs.get_mut(&sub) {
            s.ending = ending;
            s.expires_at = at;
        }
        self.arm(at, TimerRef::SubscriptionExpire(sub));
        self.events.push_back(Event::Subscription {
            sub,
            package,
            user: uri.user.clone(),
            from_user: from_h.uri.user.clone(),
            change,
        });
    }

    fn handle_response(&mut self, now: Instant, resp: Response) {
        let Some(via) = resp.headers.first(&HeaderName::Via).and_then(Via::parse) else {
            return;
        };
        let Some(branch) = via.branch() else { return };
        let cseq = resp.headers.get(&HeaderName::CSeq).and_then(CSeq::parse);
        let Some(tx) = self.client_txs.get_mut(branch) else {
            return;
        };
        if cseq.is_none_or(|c| c.method != tx.method) {
            return;
        }
        if resp.status < 200 {
            if !tx.proceeding {
                tx.proceeding = true;
                // Timer E keeps running, at T2 from now on (RFC 3261 §17.1.2.2).
            }
            return;
        }
        let branch = branch.to_string();
        let Some(tx) = self.client_txs.remove(&branch) else {
            return;
        };
        // A 2xx needs no action: for REFER the NOTIFYs tell the outcome,
        // and its deadline was armed when it was sent.
        if resp.status >= 300 {
            self.client_failed(now, tx.purpose, tx.method, Some(resp.status));
        }
    }

    fn client_failed(
        &mut self,
        _now: Instant,
        purpose: Purpose,
        method: Method,
        status: Option<u16>,
    ) {
        match purpose {
            Purpose::Refer(h) => {
                if let Some(call) = self.calls.get_mut(&h)
                    && matches!(call.refer, ReferState::Pending { .. })
                {
                    call.refer = ReferState::Done;
                    self.events.push_back(Event::TransferResult {
                        call: h,
                        outcome: TransferOutcome::Failed,
                    });
                }
            }
            Purpose::Bye(h) => {
                self.events.push_back(Event::RequestFailed {
                    request: None,
                    call: Some(h),
                    method,
                    status,
                });
            }
            Purpose::Notify(id, call) => {
                self.events.push_back(Event::RequestFailed {
                    request: Some(id),
                    call,
                    method,
                    status,
                });
            }
            Purpose::SubNotify(id, sub) => {
                self.events.push_back(Event::RequestFailed {
                    request: Some(id),
                    call: None,
                    method,
                    status,
                });
                // RFC 6665 §4.2.2: the subscriber is gone.
                if matches!(status, None | Some(408) | Some(481)) && self.subs.contains_key(&sub) {
                    self.end_subscription(sub);
                }
            }
        }
    }

    // -- commands -------------------------------------------------------------

    /// Sends 180 Ringing (optional; most callers of an IVR need not).
    pub fn ringing(&mut self, now: Instant, call: CallHandle) -> Result<(), CallError> {
        let _ = now;
        let c = self.calls.get(&call).ok_or(CallError::UnknownCall)?;
        if c.phase != Phase::Early {
            return Err(CallError::InvalidState);
        }
        let contact = self.contact(c.transport);
        let extra = format!("Contact: {contact}\r\n");
        let bytes = build_response(
            &c.invite_echo,
            180,
            "Ringing",
            Some(&c.local_tag),
            &extra,
            None,
        );
        let (to, transport, key) = (c.peer, c.transport, c.invite_key.clone());
        if let Some(tx) = self.server_txs.get_mut(&key) {
            tx.response = bytes.clone();
        }
        self.transmits.push_back(Transmit {
            to,
            transport,
            bytes,
        });
        Ok(())
    }

    /// Answers with 200 OK and our SDP answer; `local_rtp` is where we
    /// receive RTP. The 200 is retransmitted (UDP) until the ACK arrives:
    /// then [`Event::CallConfirmed`].
    pub fn answer(
        &mut self,
        now: Instant,
        call: CallHandle,
        local_rtp: SocketAddr,
    ) -> Result<(), CallError> {
        let contact = {
            let c = self.calls.get(&call).ok_or(CallError::UnknownCall)?;
            if c.phase != Phase::Early {
                return Err(CallError::InvalidState);
            }
            self.contact(c.transport)
        };
        let Some(c) = self.calls.get_mut(&call) else {
            return Err(CallError::UnknownCall);
        };
        let answer = sdp::build_answer(
            &c.offer_sdp,
            &c.media,
            local_rtp,
            c.sdp_session,
            c.sdp_version,
        );
        c.local_rtp = Some(local_rtp);
        c.last_answer = answer.clone();
        c.phase = Phase::Answered;
        let extra = format!("Contact: {contact}\r\nAllow: {ALLOW}\r\n");
        let bytes = build_response(
            &c.invite_echo,
            200,
            "OK",
            Some(&c.local_tag),
            &extra,
            Some(("application/sdp", &answer)),
        );
        let (key, peer, transport, seq) =
            (c.invite_key.clone(), c.peer, c.transport, c.remote_cseq);
        self.send_2xx(now, call, key, peer, transport, bytes, seq, true);
        Ok(())
    }

    /// Rejects an unanswered call with a final status (300..=699). Ends the
    /// call: [`Event::CallEnded`] with [`EndReason::Rejected`] follows.
    pub fn reject(&mut self, now: Instant, call: CallHandle, status: u16) -> Result<(), CallError> {
        if !(300..=699).contains(&status) {
            return Err(CallError::InvalidArgument);
        }
        let c = self.calls.get(&call).ok_or(CallError::UnknownCall)?;
        if c.phase != Phase::Early {
            return Err(CallError::InvalidState);
        }
        let (k, e, p, t) = (
            c.invite_key.clone(),
            c.invite_echo.clone(),
            c.peer,
            c.transport,
        );
        self.respond_invite_final(now, k, p, t, &e, Some(call), status, "");
        self.remove_call(call);
        self.events.push_back(Event::CallEnded {
            call,
            by_remote: false,
            reason: EndReason::Rejected,
        });
        Ok(())
    }

    /// Ends a call from our side: BYE once answered (after the ACK, as RFC
    /// 3261 §15 requires), 480 if not yet answered. [`Event::CallEnded`]
    /// with [`EndReason::LocalHangup`] follows at once.
    pub fn hangup(&mut self, now: Instant, call: CallHandle) -> Result<(), CallError> {
        let c = self.calls.get_mut(&call).ok_or(CallError::UnknownCall)?;
        match c.phase {
            Phase::Early => {
                let (k, e, p, t) = (
                    c.invite_key.clone(),
                    c.invite_echo.clone(),
                    c.peer,
                    c.transport,
                );
                self.respond_invite_final(now, k, p, t, &e, Some(call), 480, "");
                self.remove_call(call);
            }
            Phase::Answered => c.phase = Phase::ByeOnAck,
            Phase::Confirmed => {
                self.send_bye(now, call);
                self.remove_call(call);
            }
            Phase::ByeOnAck => return Err(CallError::InvalidState),
        }
        self.events.push_back(Event::CallEnded {
            call,
            by_remote: false,
            reason: EndReason::LocalHangup,
        });
        Ok(())
    }

    /// Transfers the caller (blind transfer, RFC 3515): sends REFER with
    /// `Refer-To: <target_uri>` and follows the NOTIFYs; the outcome comes as
    /// [`Event::TransferResult`]. The call stays up: hang up after success.
    pub fn refer(
        &mut self,
        now: Instant,
        call: CallHandle,
        target_uri: &str,
    ) -> Result<(), CallError> {
        if Uri::parse(target_uri).is_none() || target_uri.contains(['<', '>', '\r', '\n']) {
            return Err(CallError::InvalidArgument);
        }
        let c = self.calls.get(&call).ok_or(CallError::UnknownCall)?;
        if c.phase != Phase::Confirmed || matches!(c.refer, ReferState::Pending { .. }) {
            return Err(CallError::InvalidState);
        }
        let extra = format!(
            "Refer-To: <{target_uri}>\r\nReferred-By: {}\r\n",
            strip_tag(&c.local_uri)
        );
        self.send_in_dialog(now, call, Method::Refer, &extra, None, Purpose::Refer(call));
        let deadline = now + self.config.refer_timeout;
        if let Some(c) = self.calls.get_mut(&call) {
            c.refer = ReferState::Pending { deadline };
        }
        self.arm(deadline, TimerRef::ReferTimeout(call));
        Ok(())
    }

    /// Sends a NOTIFY (the hook for RFC 3842 message-waiting and other event
    /// packages). Failures come back as [`Event::RequestFailed`] with the
    /// returned id; success is silent.
    pub fn send_notify(
        &mut self,
        now: Instant,
        target: NotifyTarget,
        notify: &Notify,
    ) -> Result<RequestId, CallError> {
        let bad = |s: &str| s.contains(['\r', '\n']);
        if bad(&notify.event) || bad(&notify.subscription_state) || bad(&notify.content_type) {
            return Err(CallError::InvalidArgument);
        }
        let id = RequestId(self.next_id);
        self.next_id += 1;
        let extra = format!(
            "Event: {}\r\nSubscription-State: {}\r\n",
            notify.event, notify.subscription_state
        );
        let body = Some((notify.content_type.as_str(), notify.body.as_slice()));
        match target {
            NotifyTarget::Dialog(call) => {
                let c = self.calls.get(&call).ok_or(CallError::UnknownCall)?;
                if c.phase != Phase::Confirmed {
                    return Err(CallError::InvalidState);
                }
                self.send_in_dialog(
                    now,
                    call,
                    Method::Notify,
                    &extra,
                    body,
                    Purpose::Notify(id, Some(call)),
                );
            }
            NotifyTarget::OutOfDialog { to, transport, uri } => {
                if Uri::parse(&uri).is_none() || uri.contains(['<', '>', '\r', '\n']) {
                    return Err(CallError::InvalidArgument);
                }
                let branch = self.new_branch();
                let tag = self.new_tag();
                let call_id = format!("{:016x}@{}", self.rng.next(), self.config.local_addr.ip());
                let mut r = String::with_capacity(512);
                let _ = write!(
                    r,
                    "NOTIFY {uri} SIP/2.0\r\nVia: SIP/2.0/{} {};branch={branch};rport\r\nMax-Forwards: 70\r\n\
                     From: <sip:vflow@{}>;tag={tag}\r\nTo: <{uri}>\r\nCall-ID: {call_id}\r\nCSeq: 1 NOTIFY\r\n\
                     Contact: {}\r\n{extra}",
                    transport.via_name(),
                    self.config.local_addr,
                    self.config.local_addr,
                    self.contact(transport),
                );
                let bytes = finish_message(r, body);
                self.start_client(
                    now,
                    branch,
                    Method::Notify,
                    bytes,
                    to,
                    transport,
                    Purpose::Notify(id, None),
                );
            }
        }
        Ok(id)
    }

    /// Sends the NOTIFY a subscription is due (RFC 6665 §4.2.2) with the
    /// current state as its body: `Subscription-State: active;expires=N`, or
    /// `terminated` when it is ending (then it ends:
    /// [`Event::SubscriptionEnded`]). Failures come back as
    /// [`Event::RequestFailed`]; a 481, 408 or timeout also ends it.
    pub fn notify_subscription(
        &mut self,
        now: Instant,
        sub: SubscriptionHandle,
        content_type: &str,
        body: &[u8],
    ) -> Result<RequestId, CallError> {
        if content_type.is_empty() || content_type.contains(['\r', '\n']) {
            return Err(CallError::InvalidArgument);
        }
        let s = self.subs.get(&sub).ok_or(CallError::UnknownCall)?;
        let (state, last) = match s.ending {
            Some(state) => (state.to_string(), true),
            None => {
                let left = s.expires_at.saturating_duration_since(now).as_secs().max(1);
                (format!("active;expires={left}"), false)
            }
        };
        let id = self.send_sub_notify(now, sub, &state, Some((content_type, body)));
        if last {
            self.end_subscription(sub);
        }
        id.ok_or(CallError::UnknownCall)
    }

    /// Ends a subscription from our side with a bodiless NOTIFY
    /// `terminated;reason=REASON` (`noresource` for an unknown mailbox,
    /// `deactivated`, `rejected`…).
    pub fn terminate_subscription(
        &mut self,
        now: Instant,
        sub: SubscriptionHandle,
        reason: &str,
    ) -> Result<RequestId, CallError> {
        if reason.is_empty()
            || !reason
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(CallError::InvalidArgument);
        }
        if !self.subs.contains_key(&sub) {
            return Err(CallError::UnknownCall);
        }
        let id = self.send_sub_notify(now, sub, &format!("terminated;reason={reason}"), None);
        self.end_subscription(sub);
        id.ok_or(CallError::UnknownCall)
    }

    /// A NOTIFY in a subscription's dialog.
    fn send_sub_notify(
        &mut self,
        now: Instant,
        sub: SubscriptionHandle,
        state: &str,
        body: Option<(&str, &[u8])>,
    ) -> Option<RequestId> {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        let branch = self.new_branch();
        let local = self.config.local_addr;
        let s = self.subs.get_mut(&sub)?;
        s.local_cseq += 1;
        let extra = format!("Event: {}\r\nSubscription-State: {state}\r\n", s.event);
        let bytes = dialog_request(
            local,
            &branch,
            &Method::Notify,
            &DialogOut {
                remote_target: &s.remote_target,
                local_uri: &s.local_uri,
                local_tag: &s.local_tag,
                remote_from: &s.remote_from,
                call_id: &s.sip_call_id,
                cseq: s.local_cseq,
                route_set: &s.route_set,
                transport: s.transport,
            },
            &extra,
            body,
        );
        let (to, transport) = (s.peer, s.transport);
        self.start_client(
            now,
            branch,
            Method::Notify,
            bytes,
            to,
            transport,
            Purpose::SubNotify(id, sub),
        );
        Some(id)
    }

    fn end_subscription(&mut self, sub: SubscriptionHandle) {
        if let Some(s) = self.subs.remove(&sub) {
            self.sub_dialogs
                .remove(&dialog_key(&s.sip_call_id, &s.local_tag));
            self.events.push_back(Event::SubscriptionEnded { sub });
        }
    }

    // -- helpers ---------------------------------------------------------------

    fn new_tag(&mut self) -> String {
        format!("{:012x}", self.rng.next() >> 16)
    }

    fn new_branch(&mut self) -> String {
        self.next_id += 1;
        format!("z9hG4bK{:x}{:x}", self.rng.next() >> 24, self.next_id)
    }

    fn contact(&self, transport: Transport) -> String {
        match transport {
            Transport::Udp => format!("<sip:{}>", self.config.local_addr),
            Transport::Tcp(_) => format!("<sip:{};transport=tcp>", self.config.local_addr),
        }
    }

    fn remove_call(&mut self, h: CallHandle) -> Option<Call> {
        let call = self.calls.remove(&h)?;
        self.dialogs
            .remove(&dialog_key(&call.sip_call_id, &call.local_tag));
        Some(call)
    }

    fn send_bye(&mut self, now: Instant, h: CallHandle) {
        self.send_in_dialog(now, h, Method::Bye, "", None, Purpose::Bye(h));
    }

    /// Builds and sends a request inside a call's dialog (RFC 3261 §12.2.1.1).
    fn send_in_dialog(
        &mut self,
        now: Instant,
        h: CallHandle,
        method: Method,
        extra: &str,
        body: Option<(&str, &[u8])>,
        purpose: Purpose,
    ) {
        let branch = self.new_branch();
        let local = self.config.local_addr;
        let Some(c) = self.calls.get_mut(&h) else {
            return;
        };
        c.local_cseq += 1;
        let local_uri = strip_tag(&c.local_uri);
        let bytes = dialog_request(
            local,
            &branch,
            &method,
            &DialogOut {
                remote_target: &c.remote_target,
                local_uri: &local_uri,
                local_tag: &c.local_tag,
                remote_from: &c.remote_from,
                call_id: &c.sip_call_id,
                cseq: c.local_cseq,
                route_set: &c.route_set,
                transport: c.transport,
            },
            extra,
            body,
        );
        let (to, transport) = (c.peer, c.transport);
        self.start_client(now, branch, method, bytes, to, transport, purpose);
    }

    #[allow(clippy::too_many_arguments)]
    fn start_client(
        &mut self,
        now: Instant,
        branch: String,
        method: Method,
        bytes: Vec<u8>,
        to: SocketAddr,
        transport: Transport,
        purpose: Purpose,
    ) {
        let t = self.config.timers;
        self.transmits.push_back(Transmit {
            to,
            transport,
            bytes: bytes.clone(),
        });
        let retransmit_at = (!transport.is_reliable()).then(|| now + t.t1);
        let timeout_at = now + t.t1 * 64;
        if let Some(at) = retransmit_at {
            self.arm(at, TimerRef::Client(branch.clone()));
        }
        self.arm(timeout_at, TimerRef::ClientTimeout(branch.clone()));
        self.client_txs.insert(
            branch,
            ClientTx {
                purpose,
                method,
                bytes,
                to,
                transport,
                interval: t.t1,
                proceeding: false,
                retransmit_at,
                timeout_at: Some(timeout_at),
            },
        );
    }

    /// Sends a 2xx to an INVITE: the transaction moves to Accepted (absorbing
    /// INVITE retransmissions for 64·T1), and the call retransmits the 2xx
    /// over UDP until the ACK or the deadline.
    #[allow(clippy::too_many_arguments)]
    fn send_2xx(
        &mut self,
        now: Instant,
        h: CallHandle,
        key: String,
        to: SocketAddr,
        transport: Transport,
        bytes: Vec<u8>,
        cseq: u32,
        initial: bool,
    ) {
        let t = self.config.timers;
        self.transmits.push_back(Transmit {
            to,
            transport,
            bytes: bytes.clone(),
        });
        let expire = now + t.t1 * 64;
        self.server_txs.insert(
            key.clone(),
            ServerTx {
                invite: true,
                state: TxState::Accepted,
                response: bytes.clone(),
                to,
                transport,
                call: Some(h),
                tag: self.calls.get(&h).map(|c| c.local_tag.clone()),
                interval: t.t1,
                retransmit_at: None,
                expire_at: Some(expire),
            },
        );
        self.arm(expire, TimerRef::ServerExpire(key));
        let next = (!transport.is_reliable()).then(|| now + t.t1);
        if let Some(c) = self.calls.get_mut(&h) {
            c.pending_2xx = Some(Pending2xx {
                bytes,
                cseq,
                interval: t.t1,
                next,
                deadline: expire,
                initial,
            });
        }
        if let Some(at) = next {
            self.arm(at, TimerRef::Retransmit2xx(h));
        }
        self.arm(expire, TimerRef::AckTimeout(h));
    }

    /// Sends a non-2xx final response to an INVITE through its transaction:
    /// retransmitted with Timer G over UDP until the ACK, given up at Timer H.
    #[allow(clippy::too_many_arguments)]
    fn respond_invite_final(
        &mut self,
        now: Instant,
        key: String,
        to: SocketAddr,
        transport: Transport,
        echo: &Echo,
        call: Option<CallHandle>,
        status: u16,
        extra: &str,
    ) {
        let tag = match call.and_then(|h| self.calls.get(&h)) {
            Some(c) => c.local_tag.clone(),
            None => self.new_tag(),
        };
        let bytes = build_response(echo, status, reason_phrase(status), Some(&tag), extra, None);
        self.transmits.push_back(Transmit {
            to,
            transport,
            bytes: bytes.clone(),
        });
        let t = self.config.timers;
        let retransmit_at = (!transport.is_reliable()).then(|| now + t.t1);
        let expire = now + t.t1 * 64;
        self.server_txs.insert(
            key.clone(),
            ServerTx {
                invite: true,
                state: TxState::Completed,
                response: bytes,
                to,
                transport,
                call,
                tag: Some(tag),
                interval: t.t1,
                retransmit_at,
                expire_at: Some(expire),
            },
        );
        if let Some(at) = retransmit_at {
            self.arm(at, TimerRef::Server(key.clone()));
        }
        self.arm(expire, TimerRef::ServerExpire(key));
    }

    /// Sends a final response to a non-INVITE request and keeps it for
    /// retransmissions for Timer J (64·T1 over UDP, nothing over TCP).
    #[allow(clippy::too_many_arguments)]
    fn respond_nontx(
        &mut self,
        now: Instant,
        key: String,
        to: SocketAddr,
        transport: Transport,
        echo: &Echo,
        status: u16,
        extra: &str,
    ) {
        let tag = self.new_tag();
        self.respond_nontx_tagged(now, key, to, transport, echo, status, extra, &tag);
    }

    /// [`Endpoint::respond_nontx`] with a given To tag.
    #[allow(clippy::too_many_arguments)]
    fn respond_nontx_tagged(
        &mut self,
        now: Instant,
        key: String,
        to: SocketAddr,
        transport: Transport,
        echo: &Echo,
        status: u16,
        extra: &str,
        tag: &str,
    ) {
        let bytes = build_response(echo, status, reason_phrase(status), Some(tag), extra, None);
        self.transmits.push_back(Transmit {
            to,
            transport,
            bytes: bytes.clone(),
        });
        if transport.is_reliable() {
            return;
        }
        let expire = now + self.config.timers.t1 * 64;
        self.server_txs.insert(
            key.clone(),
            ServerTx {
                invite: false,
                state: TxState::Completed,
                response: bytes,
                to,
                transport,
                call: None,
                tag: None,
                interval: self.config.timers.t1,
                retransmit_at: None,
                expire_at: Some(expire),
            },
        );
        self.arm(expire, TimerRef::ServerExpire(key));
    }

    fn respond_stateless(
        &mut self,
        to: SocketAddr,
        transport: Transport,
        echo: &Echo,
        status: u16,
        reason: &str,
        extra: &str,
    ) {
        let tag = self.new_tag();
        let bytes = build_response(echo, status, reason, Some(&tag), extra, None);
        self.transmits.push_back(Transmit {
            to,
            transport,
            bytes,
        });
    }
}

/// Per-request context passed to the method handlers.
struct Ctx {
    now: Instant,
    transport: Transport,
    from: SocketAddr,
    key: String,
    echo: Echo,
}

// ---------------------------------------------------------------------------
// Free helpers
// ---------------------------------------------------------------------------

/// The server transaction key (RFC 3261 §17.2.3): the branch, sent-by and
/// method (ACK folds into INVITE); RFC 2543 peers without the magic cookie
/// are keyed by Call-ID, CSeq, From tag, top Via and Request-URI.
fn tx_key(via: &Via, req: &Request, from: &NameAddr, call_id: &str, seq: u32) -> String {
    let method = match req.method {
        Method::Ack => "INVITE",
        ref m => m.as_str(),
    };
    let port = via.port.unwrap_or(0);
    match via.rfc3261_branch() {
        Some(b) => format!("{b}\0{}:{port}\0{method}", via.host),
        None => format!(
            "2543\0{call_id}\0{seq}\0{}\0{}:{port}\0{}\0{method}",
            from.tag().unwrap_or(""),
            via.host,
            req.uri
        ),
    }
}

fn echo_of(headers: &Headers, from: SocketAddr, _transport: Transport) -> Echo {
    let mut vias: Vec<String> = headers
        .lines(&HeaderName::Via)
        .map(str::to_string)
        .collect();
    if let Some(first) = vias.first_mut() {
        // Only the first value of a comma list is the top Via.
        let top = message::split_commas(first)
            .next()
            .unwrap_or("")
            .to_string();
        let rest = first
            .get(first.find(top.as_str()).map_or(0, |i| i + top.len())..)
            .unwrap_or("");
        let rest = rest.trim_start().trim_start_matches(',').trim().to_string();
        if let Some(v) = Via::parse(&top) {
            let mut s = format!("SIP/2.0/{} {}", v.transport, v.host);
            if let Some(p) = v.port {
                let _ = write!(s, ":{p}");
            }
            for (n, val) in &v.params {
                if n == "received" || n == "rport" {
                    continue;
                }
                match val {
                    Some(val) => {
                        let _ = write!(s, ";{n}={val}");
                    }
                    None => {
                        let _ = write!(s, ";{n}");
                    }
                }
            }
            // RFC 3261 §18.2.1 and RFC 3581.
            if v.host != from.ip().to_string() || v.has_rport() {
                let _ = write!(s, ";received={}", from.ip());
            }
            if v.has_rport() {
                let _ = write!(s, ";rport={}", from.port());
            }
            if !rest.is_empty() {
                s.push_str(", ");
                s.push_str(&rest);
            }
            *first = s;
        }
    }
    let one = |n: HeaderName| headers.get(&n).map(str::to_string);
    Echo {
        vias,
        from: one(HeaderName::From),
        to: one(HeaderName::To),
        call_id: one(HeaderName::CallId),
        cseq: one(HeaderName::CSeq),
    }
}

fn has_tag(name_addr: &str) -> bool {
    match NameAddr::parse(name_addr) {
        Some(n) => n.tag().is_some(),
        None => name_addr.to_ascii_lowercase().contains(";tag="),
    }
}

fn strip_tag(name_addr: &str) -> String {
    match NameAddr::parse(name_addr) {
        Some(n) if n.tag().is_some() => {
            let mut s = String::new();
            if let Some(d) = &n.display {
                let _ = write!(s, "\"{}\" ", d.replace('\\', "\\\\").replace('"', "\\\""));
            }
            let _ = write!(s, "<{}>", n.uri.raw);
            for (k, v) in &n.params {
                if k == "tag" {
                    continue;
                }
                match v {
                    Some(v) => {
                        let _ = write!(s, ";{k}={v}");
                    }
                    None => {
                        let _ = write!(s, ";{k}");
                    }
                }
            }
            s
        }
        _ => name_addr.to_string(),
    }
}

/// Writes a response echoing Via, From, To (with `to_tag` added if it has
/// none), Call-ID and CSeq. No Server header: we say nothing about ourselves.
fn build_response(
    echo: &Echo,
    status: u16,
    reason: &str,
    to_tag: Option<&str>,
    extra: &str,
    body: Option<(&str, &[u8])>,
) -> Vec<u8> {
    let mut s = String::with_capacity(512);
    let reason: String = reason.chars().filter(|c| !c.is_control()).collect();
    let _ = write!(s, "SIP/2.0 {status} {reason}\r\n");
    for v in &echo.vias {
        let _ = write!(s, "Via: {v}\r\n");
    }
    if let Some(f) = &echo.from {
        let _ = write!(s, "From: {f}\r\n");
    }
    if let Some(t) = &echo.to {
        match to_tag {
            Some(tag) if !has_tag(t) => {
                let _ = write!(s, "To: {t};tag={tag}\r\n");
            }
            _ => {
                let _ = write!(s, "To: {t}\r\n");
            }
        }
    }
    if let Some(c) = &echo.call_id {
        let _ = write!(s, "Call-ID: {c}\r\n");
    }
    if let Some(c) = &echo.cseq {
        let _ = write!(s, "CSeq: {c}\r\n");
    }
    s.push_str(extra);
    finish_message(s, body)
}

/// The dialog state a request inside it is built from.
struct DialogOut<'a> {
    remote_target: &'a str,
    /// Our URI (name-addr) without tag.
    local_uri: &'a str,
    local_tag: &'a str,
    /// The peer's name-addr with its tag.
    remote_from: &'a str,
    call_id: &'a str,
    cseq: u32,
    route_set: &'a [String],
    transport: Transport,
}

/// A request inside a dialog (RFC 3261 §12.2.1.1).
fn dialog_request(
    local: SocketAddr,
    branch: &str,
    method: &Method,
    d: &DialogOut<'_>,
    extra: &str,
    body: Option<(&str, &[u8])>,
) -> Vec<u8> {
    let contact = match d.transport {
        Transport::Udp => format!("<sip:{local}>"),
        Transport::Tcp(_) => format!("<sip:{local};transport=tcp>"),
    };
    let mut r = String::with_capacity(512);
    let _ = write!(
        r,
        "{method} {} SIP/2.0\r\nVia: SIP/2.0/{} {local};branch={branch};rport\r\nMax-Forwards: 70\r\n\
         From: {};tag={}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} {method}\r\nContact: {contact}\r\n",
        d.remote_target,
        d.transport.via_name(),
        d.local_uri,
        d.local_tag,
        d.remote_from,
        d.call_id,
        d.cseq,
    );
    for route in d.route_set {
        let _ = write!(r, "Route: {route}\r\n");
    }
    r.push_str(extra);
    finish_message(r, body)
}

/// Appends Content-Type (with a body), Content-Length and the body.
fn finish_message(mut s: String, body: Option<(&str, &[u8])>) -> Vec<u8> {
    let body = match body {
        Some((ctype, b)) => {
            let _ = write!(s, "Content-Type: {ctype}\r\n");
            b
        }
        None => &[],
    };
    let _ = write!(s, "Content-Length: {}\r\n\r\n", body.len());
    let mut out = s.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Offer → (parsed SDP, negotiated media), or the status to answer.
fn negotiate(headers: &Headers, body: &[u8]) -> Result<(Sdp, MediaOffer), (u16, &'static str)> {
    if body.is_empty() {
        // A late offer (no SDP in the INVITE) is not supported.
        return Err((488, "Warning: 399 vflow \"SDP offer required\"\r\n"));
    }
    let ctype = headers.get(&HeaderName::ContentType).unwrap_or("");
    let mime = ctype.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/sdp") {
        return Err((415, "Accept: application/sdp\r\n"));
    }
    let sdp = Sdp::parse(body).map_err(|_| (400u16, ""))?;
    match sdp.negotiate() {
        Ok(m) => Ok((sdp, m)),
        Err(SdpError::Malformed) => Err((400, "")),
        Err(SdpError::NoAudio | SdpError::NoCodec) => {
            Err((488, "Warning: 305 vflow \"Incompatible media format\"\r\n"))
        }
    }
}

/// The user of the History-Info entry with the lowest index (the original
/// request); entries without index count in order of appearance.
fn original_history_target(headers: &Headers) -> Option<String> {
    let mut best: Option<(Vec<u32>, String)> = None;
    for (pos, entry) in headers.get_all(&HeaderName::HistoryInfo).enumerate() {
        let Some(na) = NameAddr::parse(entry) else {
            continue;
        };
        let Some(user) = na.uri.user.clone() else {
            continue;
        };
        let index: Vec<u32> = super::header::param(&na.params, "index")
            .map(|i| i.split('.').filter_map(|p| p.parse().ok()).collect())
            .filter(|v: &Vec<u32>| !v.is_empty())
            .unwrap_or_else(|| vec![u32::MAX, pos as u32]);
        if best.as_ref().is_none_or(|(b, _)| index < *b) {
            best = Some((index, user));
        }
    }
    best.map(|(_, u)| u)
}

/// The status code of a `message/sipfrag` body: `SIP/2.0 200 OK`.
fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.trim_start().lines().next()?;
    let rest = line.strip_prefix("SIP/2.0 ")?;
    let code = rest.get(..3)?;
    let n = parse_decimal(code, 699)? as u16;
    (n >= 100).then_some(n)
}

fn transfer_outcome(status: u16) -> TransferOutcome {
    match status {
        200..=299 => TransferOutcome::Succeeded,
        486 | 600 => TransferOutcome::Busy,
        408 | 480 | 487 => TransferOutcome::NoAnswer,
        _ => TransferOutcome::Failed,
    }
}

/// The SDP without its `o=` line, to tell whether an answer changed.
fn strip_origin(sdp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(sdp.len());
    for line in sdp.split(|&b| b == b'\n') {
        if !line.starts_with(b"o=") {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
    out
}

/// Where a dialog's in-dialog requests go (RFC 3261 §12.1.1): the remote
/// target from Contact (else the From URI) and the route set from
/// Record-Route, as the dialog-creating request gave them.
fn dialog_peer(headers: &Headers, from: &NameAddr) -> (String, Vec<String>) {
    let remote_target = headers
        .first(&HeaderName::Contact)
        .and_then(NameAddr::parse)
        .map(|c| c.uri.raw)
        .unwrap_or_else(|| from.uri.raw.clone());
    let route_set = headers
        .get_all(&HeaderName::RecordRoute)
        .map(str::to_string)
        .collect();
    (remote_target, route_set)
}
