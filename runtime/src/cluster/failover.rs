//! The backup's role over time, as a sans-IO state machine ([`Failover`]),
//! and the task that drives it from the heartbeat ([`super::health`]) and the
//! forward outbox ([`run`]).
//!
//! - `standby` — the central answers (or nothing is known yet): the backup
//!   takes no calls (INVITE and SUBSCRIBE get 503 with Retry-After, so the
//!   PBX uses the central; OPTIONS is still answered) and sends no MWI.
//! - `active` — the central missed `failover_after` heartbeats: the backup
//!   answers calls, stores messages (each also queued for forwarding),
//!   serves collection of what it holds and sends MWI from its own store.
//! - `handing_back` — the central answers again: the forwarder is woken and
//!   drains the outbox (every message the backup took, stored once at the
//!   central by message id); the backup still answers calls (their messages
//!   are forwarded at once) but sends no MWI any more — the central's store
//!   now has the messages and its own MWI, driven by the ingress storing
//!   them, owns the lamps (the backup's store only loses messages from here
//!   on, and its "lamp off" would race the central's "lamp on").
//!   The outbox empty → `standby`; the central lost again → `active`.
//!
//! Fencing: the only way to `active` is the heartbeat declaring the central
//! unreachable, so while the central answers heartbeats the backup never
//! takes calls it should not; and `handing_back` ends only once the central
//! has every message (the outbox is empty), after which the backup holds
//! nothing and serves nothing. Calls in progress at a transition finish
//! normally; their messages are forwarded like any other.
//!
//! A distributed node has no such machine: it always takes its own calls and
//! forwards while the central is up; it sends MWI from its own store only
//! while the central is unreachable ([`Duty::distributed`]), for the same
//! reason a backup stops at hand-back.

use super::health::{CentralHealth, Reach};
use crate::store::{FORWARD_KIND, Store};
use std::time::Duration;
use tokio::sync::watch;

/// What the node does now, read by the SIP server and the MWI notifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duty {
    /// Answer new INVITEs and SUBSCRIBEs (else 503 with Retry-After).
    pub take_calls: bool,
    /// Send MWI NOTIFYs from this node's store.
    pub send_mwi: bool,
}

impl Duty {
    /// A standalone node or the central: everything, always.
    pub const FULL: Duty = Duty {
        take_calls: true,
        send_mwi: true,
    };

    /// A distributed node: always its own calls; lamps only while the central
    /// cannot do them.
    pub fn distributed(central: Reach) -> Duty {
        Duty {
            take_calls: true,
            send_mwi: central == Reach::Unreachable,
        }
    }
}

/// The backup's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Standby,
    Active,
    HandingBack,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Standby => "standby",
            State::Active => "active",
            State::HandingBack => "handing_back",
        }
    }

    pub fn duty(self) -> Duty {
        match self {
            State::Standby => Duty {
                take_calls: false,
                send_mwi: false,
            },
            State::Active => Duty::FULL,
            State::HandingBack => Duty {
                take_calls: true,
                send_mwi: false,
            },
        }
    }
}

/// The backup's state machine (sans-IO). Feed it every health change and,
/// while handing back, whether forward entries are pending.
#[derive(Debug, Clone)]
pub struct Failover {
    state: State,
}

impl Default for Failover {
    fn default() -> Self {
        Failover::new()
    }
}

impl Failover {
    /// Starts in standby: a backup that has not yet seen the central miss
    /// its heartbeats must not take calls.
    pub fn new() -> Failover {
        Failover {
            state: State::Standby,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The central's reachability changed (or was re-reported); the new
    /// state when it changed.
    pub fn on_health(&mut self, central: Reach) -> Option<State> {
        let next = match (self.state, central) {
            (State::Standby, Reach::Unreachable) => State::Active,
            (State::Active, Reach::Reachable) => State::HandingBack,
            (State::HandingBack, Reach::Unreachable) => State::Active,
            (s, _) => s,
        };
        self.go(next)
    }

    /// Whether forward entries are pending now; ends a hand-back when none are.
    pub fn on_outbox(&mut self, pending: bool) -> Option<State> {
        let next = match (self.state, pending) {
            (State::HandingBack, false) => State::Standby,
            (s, _) => s,
        };
        self.go(next)
    }

    fn go(&mut self, next: State) -> Option<State> {
        (next != self.state).then(|| {
            self.state = next;
            next
        })
    }
}

/// Whether forward entries are pending in the store (blocking).
fn pending(store: &Store) -> Result<bool, String> {
    store
        .outbox_due(FORWARD_KIND, i64::MAX, 1)
        .map(|v| !v.is_empty())
        .map_err(|e| e.to_string())
}

/// Drives a backup's [`Failover`] until `health`'s sender is gone: every
/// health change, and while handing back every store change and every
/// `recheck`, looks at the outbox. Publishes the duty of each new state.
pub async fn run(
    store: Store,
    mut health: watch::Receiver<CentralHealth>,
    duty: watch::Sender<Duty>,
    recheck: Duration,
) {
    let mut fsm = Failover::new();
    let mut changes = store.subscribe();
    let mut tick = tokio::time::interval(recheck);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(
        state = fsm.state().as_str(),
        "cluster: backup in standby until the central misses its heartbeats"
    );
    loop {
        let mut changed = fsm.on_health(health.borrow_and_update().state);
        if let Some(s) = changed {
            announce(s, &health.borrow());
            let _ = duty.send(s.duty());
        }
        if fsm.state() == State::HandingBack {
            let s = store.clone();
            match tokio::task::spawn_blocking(move || pending(&s)).await {
                Ok(Ok(p)) => changed = fsm.on_outbox(p),
                Ok(Err(e)) => tracing::error!(error = %e, "cluster: cannot read the outbox"),
                Err(e) => tracing::error!(error = %e, "cluster: reading the outbox panicked"),
            }
            if let Some(s) = changed {
                announce(s, &health.borrow());
                let _ = duty.send(s.duty());
            }
        }
        tokio::select! {
            r = health.changed() => {
                if r.is_err() {
                    return;
                }
            }
            r = changes.recv(), if fsm.state() == State::HandingBack => {
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = r {
                    return;
                }
            }
            _ = tick.tick() => {}
        }
    }
}

fn announce(s: State, h: &CentralHealth) {
    match s {
        State::Active => tracing::warn!(
            state = s.as_str(),
            missed = h.consecutive_misses,
            "cluster: backup active: the central is unreachable; taking calls, storing messages and sending MWI here"
        ),
        State::HandingBack => tracing::info!(
            state = s.as_str(),
            "cluster: backup handing back: the central is reachable; forwarding every message taken here (MWI is the central's again)"
        ),
        State::Standby => tracing::info!(
            state = s.as_str(),
            "cluster: backup in standby: the central has every message; calls go to the central (503 here)"
        ),
    }
}

/// Drives a distributed node's duty from the central's health.
pub async fn run_distributed(
    mut health: watch::Receiver<CentralHealth>,
    duty: watch::Sender<Duty>,
) {
    loop {
        let d = Duty::distributed(health.borrow_and_update().state);
        duty.send_if_modified(|cur| {
            let changed = *cur != d;
            *cur = d;
            changed
        });
        if health.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_REACH: [Reach; 3] = [Reach::Unknown, Reach::Reachable, Reach::Unreachable];

    fn at(state: State) -> Failover {
        Failover { state }
    }

    #[test]
    fn starts_in_standby_taking_nothing() {
        let f = Failover::new();
        assert_eq!(f.state(), State::Standby);
        assert_eq!(
            f.state().duty(),
            Duty {
                take_calls: false,
                send_mwi: false
            }
        );
    }

    /// Every (state, health) pair.
    #[test]
    fn health_transitions_exhaustively() {
        let table = [
            (State::Standby, Reach::Unknown, None),
            (State::Standby, Reach::Reachable, None),
            (State::Standby, Reach::Unreachable, Some(State::Active)),
            (State::Active, Reach::Unknown, None),
            (State::Active, Reach::Reachable, Some(State::HandingBack)),
            (State::Active, Reach::Unreachable, None),
            (State::HandingBack, Reach::Unknown, None),
            (State::HandingBack, Reach::Reachable, None),
            (State::HandingBack, Reach::Unreachable, Some(State::Active)),
        ];
        for (from, reach, want) in table {
            let mut f = at(from);
            assert_eq!(f.on_health(reach), want, "{from:?} + {reach:?}");
            assert_eq!(f.state(), want.unwrap_or(from), "{from:?} + {reach:?}");
        }
    }

    /// Every (state, outbox) pair: only a hand-back with nothing pending ends.
    #[test]
    fn outbox_transitions_exhaustively() {
        for from in [State::Standby, State::Active, State::HandingBack] {
            for pending in [false, true] {
                let mut f = at(from);
                let want = (from == State::HandingBack && !pending).then_some(State::Standby);
                assert_eq!(f.on_outbox(pending), want, "{from:?} pending={pending}");
            }
        }
    }

    /// Fencing: as long as the central answers, no sequence of inputs makes
    /// a standby backup take calls.
    #[test]
    fn never_active_while_the_central_answers() {
        let mut f = Failover::new();
        for pending in [true, false, true] {
            assert_eq!(f.on_health(Reach::Reachable), None);
            assert_eq!(f.on_outbox(pending), None);
            assert_eq!(f.on_health(Reach::Unknown), None);
            assert!(!f.state().duty().take_calls);
        }
    }

    #[test]
    fn a_whole_outage() {
        let mut f = Failover::new();
        assert_eq!(f.on_health(Reach::Reachable), None);
        assert_eq!(f.on_health(Reach::Unreachable), Some(State::Active));
        assert_eq!(f.state().duty(), Duty::FULL);
        // Messages taken meanwhile.
        assert_eq!(f.on_outbox(true), None);
        assert_eq!(f.on_health(Reach::Reachable), Some(State::HandingBack));
        assert!(f.state().duty().take_calls, "still serving until drained");
        assert!(!f.state().duty().send_mwi, "the central's lamps now");
        assert_eq!(f.on_outbox(true), None);
        // The central goes away again before the drain finished.
        assert_eq!(f.on_health(Reach::Unreachable), Some(State::Active));
        assert_eq!(f.on_health(Reach::Reachable), Some(State::HandingBack));
        assert_eq!(f.on_outbox(false), Some(State::Standby));
        assert!(!f.state().duty().take_calls);
        assert_eq!(f.on_outbox(false), None);
    }

    #[test]
    fn distributed_duty() {
        for r in ALL_REACH {
            let d = Duty::distributed(r);
            assert!(d.take_calls, "{r:?}");
            assert_eq!(d.send_mwi, r == Reach::Unreachable, "{r:?}");
        }
    }

    /// The driver over a real store and a health watch: standby → active →
    /// handing back → standby once the outbox is empty.
    #[tokio::test]
    async fn the_driver_follows_health_and_the_outbox() {
        let dir = std::env::temp_dir().join(format!("vflow-failover-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir).unwrap();
        let entry = store
            .outbox_push(FORWARD_KIND, Some("201"), Some("m1"), "{}")
            .unwrap();
        let (htx, hrx) = super::super::health::channel(3);
        let (dtx, mut drx) = watch::channel(State::Standby.duty());
        let task = tokio::spawn(run(store.clone(), hrx, dtx, Duration::from_millis(20)));
        let set = |r: Reach| {
            htx.send_modify(|h| {
                h.state = r;
                h.reachable = r == Reach::Reachable;
            })
        };
        let next = async |rx: &mut watch::Receiver<Duty>| {
            tokio::time::timeout(Duration::from_secs(5), rx.changed())
                .await
                .expect("a duty change")
                .unwrap();
            *rx.borrow_and_update()
        };
        set(Reach::Reachable);
        set(Reach::Unreachable);
        assert_eq!(next(&mut drx).await, Duty::FULL);
        set(Reach::Reachable);
        assert_eq!(next(&mut drx).await, State::HandingBack.duty());
        store.outbox_done(entry).unwrap();
        assert_eq!(next(&mut drx).await, State::Standby.duty());
        task.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
