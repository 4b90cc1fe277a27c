//! SIP (RFC 3261) for the server: a sans-IO user-agent server core.
//!
//! - [`message`]: bytes ⇄ [`message::Message`] (hand-written, fuzzed).
//! - [`header`]: typed views (URI, name-addr, Via, CSeq, parameters).
//! - [`sdp`]: offer/answer for one G.711 audio stream.
//! - [`framing`]: splitting a TCP stream into messages.
//! - [`guard`]: trusted CIDRs, per-source token bucket and bans.
//! - [`fallback`]: which configured PBX controls the node now (MWI goes there).
//! - [`endpoint`]: transactions, dialogs and the UAS; the only stateful part.
//!
//! Architecture invariant: nothing here touches a socket, a clock or a
//! thread. The tokio driver pumps [`endpoint::Endpoint`].

pub mod endpoint;
pub mod fallback;
pub mod framing;
pub mod guard;
pub mod header;
pub mod message;
pub mod sdp;

#[cfg(test)]
mod tests;

pub use endpoint::{
    CallError, CallHandle, Config, ConnId, EndReason, Endpoint, Event, IncomingCall, Notify,
    NotifyTarget, RequestId, SubscriptionChange, SubscriptionHandle, Timers, TransferOutcome,
    Transmit, Transport,
};
