//! Message-waiting indication: RFC 3842 `message-summary` NOTIFYs.
//!
//! Two kinds of receivers: a mailbox's configured `mwi` target (a phone or
//! PBX that never subscribes; unsolicited NOTIFYs over UDP, out of dialog),
//! and phones that SUBSCRIBE (`Event: message-summary`, Request-URI user =
//! the mailbox; the SIP endpoint keeps the dialog, see
//! [`crate::sip::Endpoint::notify_subscription`]).
//!
//! The body is always computed from the store's counts at the moment it is
//! sent ([`Summary::of`]); nothing is cached. [`run`] sends it on every
//! change the store announces ([`Store::subscribe`]: message stored, played,
//! saved, deleted, removed by housekeeping or forwarded by email), to every
//! new or refreshed subscription, and every `mwi.refresh` for everything (the
//! first time at start, so lamps are right after a restart, and so are
//! changes made by `vflow mailbox` in another process).
//!
//! On a cluster node the [`crate::cluster::Duty`] decides whether this
//! node's store drives lamps at all: a backup sends them only while active
//! (the central is unreachable), a distributed node only while the central
//! is unreachable; otherwise the central's store, which receives every
//! forwarded message, owns them. While off, store changes and refreshes send
//! nothing (subscriptions are still answered, as RFC 6665 requires); turned
//! on, every lamp is sent at once (MWI is re-sent after failover).
//!
//! [`run`] does no SIP itself: it emits [`Output`]s that the server turns
//! into endpoint commands, and takes [`Input`]s from the endpoint's events.

use crate::config::MwiConfig;
use crate::sip::{SubscriptionChange, SubscriptionHandle};
use crate::store::{Folder, Result, Store};
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use tokio::sync::{broadcast, mpsc};

/// The SIP event package.
pub const PACKAGE: &str = "message-summary";
/// The body's media type (RFC 3842 §5.1).
pub const CONTENT_TYPE: &str = "application/simple-message-summary";

/// A mailbox's voice messages: new (unheard) and old (saved), with the
/// urgent ones among them. Deleted messages count for nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub new: u32,
    pub old: u32,
    pub urgent_new: u32,
    pub urgent_old: u32,
}

impl Summary {
    /// The mailbox's state in the store now.
    pub fn of(store: &Store, mailbox: &str) -> Result<Summary> {
        let mut s = Summary::default();
        for m in store.messages(mailbox, None)? {
            let urgent = m.priority == "urgent";
            match m.folder {
                Folder::New => {
                    s.new += 1;
                    s.urgent_new += u32::from(urgent);
                }
                Folder::Saved => {
                    s.old += 1;
                    s.urgent_old += u32::from(urgent);
                }
                Folder::Deleted => {}
            }
        }
        Ok(s)
    }

    /// The lamp: on while a message is unheard.
    pub fn waiting(&self) -> bool {
        self.new > 0
    }

    /// The `application/simple-message-summary` body for `account`
    /// (`sip:201@192.0.2.10`):
    ///
    /// ```text
    /// Messages-Waiting: yes
    /// Message-Account: sip:201@192.0.2.10
    /// Voice-Message: 2/1 (1/0)
    /// ```
    pub fn body(&self, account: &str) -> String {
        let mut b = String::with_capacity(96);
        let _ = write!(
            b,
            "Messages-Waiting: {}\r\nMessage-Account: {account}\r\nVoice-Message: {}/{} ({}/{})\r\n",
            if self.waiting() { "yes" } else { "no" },
            self.new,
            self.old,
            self.urgent_new,
            self.urgent_old
        );
        b
    }
}

/// The account URI of a mailbox, as phones know it.
pub fn account(mailbox: &str, host: &str) -> String {
    format!("sip:{mailbox}@{host}")
}

/// An unsolicited-NOTIFY target: `sip:201@192.0.2.5:5060` (UDP; the port
/// defaults to 5060; a host name is resolved when sending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The Request-URI of the NOTIFY.
    pub uri: String,
    pub host: String,
    pub port: u16,
}

impl Target {
    pub fn parse(s: &str) -> std::result::Result<Target, String> {
        let bad = |why: &str| format!("`{s}` {why}; write e.g. `sip:201@192.0.2.5:5060`");
        let u = crate::sip::header::Uri::parse(s).ok_or_else(|| bad("is not a SIP URI"))?;
        if u.scheme != "sip" {
            return Err(bad("is not a `sip:` URI"));
        }
        if u.has_headers || s.contains(['<', '>', '"']) {
            return Err(bad("has headers or brackets"));
        }
        if let Some(t) = crate::sip::header::param(&u.params, "transport")
            && !t.eq_ignore_ascii_case("udp")
        {
            return Err(bad("asks for a transport other than UDP"));
        }
        if u.host.is_empty() {
            return Err(bad("has no host"));
        }
        let host = u
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        Ok(Target {
            uri: u.raw.clone(),
            host,
            port: u.port.unwrap_or(5060),
        })
    }

    /// The address to send to (DNS for a host name).
    pub async fn resolve(&self) -> std::io::Result<SocketAddr> {
        if let Ok(ip) = self.host.parse::<std::net::IpAddr>() {
            return Ok(SocketAddr::new(ip, self.port));
        }
        tokio::net::lookup_host((self.host.as_str(), self.port))
            .await?
            .next()
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "the host has no address")
            })
    }
}

/// What the SIP side tells [`run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A subscription wants the state of `user`'s mailbox.
    Subscription {
        sub: SubscriptionHandle,
        user: Option<String>,
        change: SubscriptionChange,
    },
    Ended {
        sub: SubscriptionHandle,
    },
    /// Send every lamp again (another PBX controls the node now).
    Refresh,
}

/// What [`run`] asks the SIP side to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// An out-of-dialog NOTIFY (UDP).
    Unsolicited {
        to: SocketAddr,
        uri: String,
        body: String,
    },
    /// The subscription's NOTIFY.
    Subscription {
        sub: SubscriptionHandle,
        body: String,
    },
    /// End the subscription: there is no such mailbox (`noresource`).
    Terminate {
        sub: SubscriptionHandle,
        reason: &'static str,
    },
}

/// Which mailbox each live subscription watches.
#[derive(Debug, Default)]
pub struct Subscriptions {
    by_sub: HashMap<SubscriptionHandle, String>,
}

impl Subscriptions {
    pub fn insert(&mut self, sub: SubscriptionHandle, mailbox: &str) {
        self.by_sub.insert(sub, mailbox.to_string());
    }

    pub fn remove(&mut self, sub: SubscriptionHandle) {
        self.by_sub.remove(&sub);
    }

    pub fn of(&self, mailbox: &str) -> Vec<SubscriptionHandle> {
        let mut v: Vec<_> = self
            .by_sub
            .iter()
            .filter(|(_, m)| *m == mailbox)
            .map(|(s, _)| *s)
            .collect();
        v.sort();
        v
    }

    pub fn mailboxes(&self) -> BTreeSet<String> {
        self.by_sub.values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.by_sub.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_sub.is_empty()
    }
}

/// A mailbox as the notifier needs it: its target and its summary now.
/// `None`: no such mailbox.
fn look(store: &Store, mailbox: &str) -> Result<Option<(String, Summary)>> {
    let Some(m) = super::mailbox(store, mailbox)? else {
        return Ok(None);
    };
    Ok(Some((m.mwi, Summary::of(store, mailbox)?)))
}

/// Every mailbox with a target.
fn targeted(store: &Store) -> Result<Vec<String>> {
    Ok(super::mailboxes(store)?
        .into_iter()
        .filter(|m| !m.mwi.is_empty())
        .map(|m| m.id)
        .collect())
}

/// The notifier. `host` goes into `Message-Account`. Ends when the SIP side
/// drops `input` or `output`.
pub async fn run(
    store: Store,
    cfg: MwiConfig,
    host: String,
    mut input: mpsc::UnboundedReceiver<Input>,
    output: mpsc::UnboundedSender<Output>,
    mut duty: tokio::sync::watch::Receiver<crate::cluster::Duty>,
) {
    let mut changes = store.subscribe();
    let mut on = duty.borrow_and_update().send_mwi;
    let mut duty_live = true;
    let mut subs = Subscriptions::default();
    let n = Notifier {
        store,
        host,
        output,
    };
    // The first tick is at once: lamps are right after a restart.
    let period = cfg
        .refresh
        .unwrap_or(std::time::Duration::from_secs(100 * 365 * 86_400));
    let mut refresh = tokio::time::interval(period);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = duty.changed(), if duty_live => {
                // A gone sender leaves the last duty in force.
                duty_live = changed.is_ok();
                let was = on;
                on = duty.borrow_and_update().send_mwi;
                if on && !was {
                    tracing::info!("mwi: sending lamps from this node's store");
                    if !n.everything(&subs).await {
                        return;
                    }
                } else if was && !on {
                    tracing::info!("mwi: lamps are the central's now; sending none from here");
                }
            }
            changed = changes.recv() => match changed {
                Ok(_) if !on => {}
                Ok(mailbox) => {
                    if !n.mailbox(&mailbox, &subs, true).await {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) if !on => {}
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "mwi: missed store changes; refreshing every lamp");
                    if !n.everything(&subs).await {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = refresh.tick() => {
                if on && !n.everything(&subs).await {
                    return;
                }
            }
            inp = input.recv() => match inp {
                None => return,
                Some(Input::Ended { sub }) => subs.remove(sub),
                Some(Input::Refresh) => {
                    if on && !n.everything(&subs).await {
                        return;
                    }
                }
                Some(Input::Subscription { sub, user, change }) => {
                    if !n.subscription(&mut subs, sub, user, change).await {
                        return;
                    }
                }
            },
        }
    }
}

struct Notifier {
    store: Store,
    host: String,
    output: mpsc::UnboundedSender<Output>,
}

impl Notifier {
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Option<T> {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "mwi: cannot read the store");
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "mwi: store work panicked");
                None
            }
        }
    }

    fn send(&self, o: Output) -> bool {
        self.output.send(o).is_ok()
    }

    /// Sends `mailbox`'s state to its target and its subscribers. False when
    /// the SIP side is gone.
    async fn mailbox(&self, mailbox: &str, subs: &Subscriptions, changed: bool) -> bool {
        let mb = mailbox.to_string();
        let Some(found) = self.blocking(move |s| look(s, &mb)).await else {
            return true;
        };
        let watchers = subs.of(mailbox);
        let Some((target, summary)) = found else {
            // Deleted: its subscribers hear so.
            for sub in watchers {
                if !self.send(Output::Terminate {
                    sub,
                    reason: "noresource",
                }) {
                    return false;
                }
            }
            return true;
        };
        let body = summary.body(&account(mailbox, &self.host));
        if changed {
            tracing::info!(%mailbox, new = summary.new, old = summary.old, target = %target, subscribers = watchers.len(), "mwi: lamp update");
        }
        if !target.is_empty() {
            match Target::parse(&target) {
                Ok(t) => match t.resolve().await {
                    Ok(to) => {
                        if !self.send(Output::Unsolicited {
                            to,
                            uri: t.uri,
                            body: body.clone(),
                        }) {
                            return false;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(%mailbox, %target, error = %e, "mwi: cannot resolve the target")
                    }
                },
                Err(e) => tracing::warn!(%mailbox, error = %e, "mwi: bad target"),
            }
        }
        for sub in watchers {
            if !self.send(Output::Subscription {
                sub,
                body: body.clone(),
            }) {
                return false;
            }
        }
        true
    }

    /// Every mailbox with a target or a subscriber.
    async fn everything(&self, subs: &Subscriptions) -> bool {
        let Some(mut all) = self.blocking(targeted).await else {
            return true;
        };
        all.extend(subs.mailboxes());
        all.sort();
        all.dedup();
        for m in all {
            if !self.mailbox(&m, subs, false).await {
                return false;
            }
        }
        true
    }

    async fn subscription(
        &self,
        subs: &mut Subscriptions,
        sub: SubscriptionHandle,
        user: Option<String>,
        change: SubscriptionChange,
    ) -> bool {
        let mailbox = user.unwrap_or_default();
        let mb = mailbox.clone();
        let found = if Store::valid_name(&mailbox) {
            match self.blocking(move |s| look(s, &mb)).await {
                Some(f) => f,
                // A store error: say nothing now; the subscriber retries.
                None => return true,
            }
        } else {
            None
        };
        let Some((_, summary)) = found else {
            tracing::info!(%mailbox, "mwi: subscription to an unknown mailbox");
            return self.send(Output::Terminate {
                sub,
                reason: "noresource",
            });
        };
        tracing::info!(%mailbox, ?change, new = summary.new, old = summary.old, "mwi: subscription");
        match change {
            SubscriptionChange::Ending => subs.remove(sub),
            SubscriptionChange::New | SubscriptionChange::Refreshed => subs.insert(sub, &mailbox),
        }
        self.send(Output::Subscription {
            sub,
            body: summary.body(&account(&mailbox, &self.host)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voicemail::tests::{add_message, temp_store};
    use crate::voicemail::{MailboxUpdate, create_mailbox, update_mailbox};
    use std::time::Duration;

    #[test]
    fn the_body_follows_rfc_3842() {
        let s = Summary {
            new: 2,
            old: 1,
            urgent_new: 1,
            urgent_old: 0,
        };
        assert_eq!(
            s.body("sip:201@192.0.2.10"),
            "Messages-Waiting: yes\r\nMessage-Account: sip:201@192.0.2.10\r\nVoice-Message: 2/1 (1/0)\r\n"
        );
        let idle = Summary {
            new: 0,
            old: 3,
            urgent_new: 0,
            urgent_old: 1,
        };
        assert!(!idle.waiting());
        assert_eq!(
            idle.body(&account("sales", "vm.example")),
            "Messages-Waiting: no\r\nMessage-Account: sip:sales@vm.example\r\nVoice-Message: 0/3 (0/1)\r\n"
        );
    }

    #[test]
    fn the_summary_counts_new_and_saved_and_urgent_not_deleted() {
        let (store, _dir) = temp_store("mwi-summary");
        create_mailbox(&store, "201", &MailboxUpdate::default()).unwrap();
        assert_eq!(Summary::of(&store, "201").unwrap(), Summary::default());
        let a = add_message(&store, "201", 1);
        let b = add_message(&store, "201", 2);
        let c = add_message(&store, "201", 3);
        store
            .db()
            .execute(
                "UPDATE messages SET priority = 'urgent' WHERE id = ?1",
                [&b.id],
            )
            .unwrap();
        store.move_message(&a.id, Folder::Saved).unwrap();
        store.move_message(&c.id, Folder::Deleted).unwrap();
        assert_eq!(
            Summary::of(&store, "201").unwrap(),
            Summary {
                new: 1,
                old: 1,
                urgent_new: 1,
                urgent_old: 0
            }
        );
    }

    #[test]
    fn targets() {
        let t = Target::parse("sip:201@192.0.2.5:5070").unwrap();
        assert_eq!(
            (t.uri.as_str(), t.host.as_str(), t.port),
            ("sip:201@192.0.2.5:5070", "192.0.2.5", 5070)
        );
        assert_eq!(Target::parse("sip:201@phone.example").unwrap().port, 5060);
        assert_eq!(
            Target::parse("sip:201@[2001:db8::1]:5062").unwrap().host,
            "2001:db8::1"
        );
        assert!(Target::parse("sip:201@192.0.2.5;transport=udp").is_ok());
        for bad in [
            "201",
            "sips:201@192.0.2.5",
            "sip:201@192.0.2.5;transport=tcp",
            "<sip:201@192.0.2.5>",
            "tel:201",
            "",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    /// The next output within a second.
    async fn next(rx: &mut mpsc::UnboundedReceiver<Output>) -> Output {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("an output in time")
            .expect("open")
    }

    #[tokio::test]
    async fn the_notifier_sends_on_start_on_change_and_to_subscribers() {
        let (store, _dir) = temp_store("mwi-run");
        create_mailbox(
            &store,
            "201",
            &MailboxUpdate {
                mwi: Some("sip:201@127.0.0.1:5999".into()),
                ..Default::default()
            },
        )
        .unwrap();
        create_mailbox(&store, "202", &MailboxUpdate::default()).unwrap();
        let (in_tx, in_rx) = mpsc::unbounded_channel();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel();
        let cfg = MwiConfig {
            refresh: None,
            ..MwiConfig::default()
        };
        let duty = crate::cluster::Running::standalone().duty;
        let task = tokio::spawn(run(
            store.clone(),
            cfg,
            "127.0.0.1".into(),
            in_rx,
            out_tx,
            duty,
        ));
        let to: SocketAddr = "127.0.0.1:5999".parse().unwrap();

        // At start: the targeted mailbox, lamp off.
        let body = |n: u32, o: u32, mb: &str| {
            Summary {
                new: n,
                old: o,
                ..Summary::default()
            }
            .body(&account(mb, "127.0.0.1"))
        };
        assert_eq!(
            next(&mut out_rx).await,
            Output::Unsolicited {
                to,
                uri: "sip:201@127.0.0.1:5999".into(),
                body: body(0, 0, "201")
            }
        );
        // A message: lamp on, from the store's counts.
        let m = tokio::task::spawn_blocking({
            let s = store.clone();
            move || add_message(&s, "201", 1)
        })
        .await
        .unwrap();
        assert_eq!(
            next(&mut out_rx).await,
            Output::Unsolicited {
                to,
                uri: "sip:201@127.0.0.1:5999".into(),
                body: body(1, 0, "201")
            }
        );
        // A subscriber to 201 gets the state at once, then every change.
        let sub = SubscriptionHandle(7);
        in_tx
            .send(Input::Subscription {
                sub,
                user: Some("201".into()),
                change: SubscriptionChange::New,
            })
            .unwrap();
        assert_eq!(
            next(&mut out_rx).await,
            Output::Subscription {
                sub,
                body: body(1, 0, "201")
            }
        );
        store.move_message(&m.id, Folder::Saved).unwrap();
        let mut got = vec![next(&mut out_rx).await, next(&mut out_rx).await];
        got.sort_by_key(|o| format!("{o:?}"));
        assert_eq!(
            got,
            vec![
                Output::Subscription {
                    sub,
                    body: body(0, 1, "201")
                },
                Output::Unsolicited {
                    to,
                    uri: "sip:201@127.0.0.1:5999".into(),
                    body: body(0, 1, "201")
                },
            ]
        );
        // An unknown mailbox: noresource.
        let stray = SubscriptionHandle(8);
        in_tx
            .send(Input::Subscription {
                sub: stray,
                user: Some("999".into()),
                change: SubscriptionChange::New,
            })
            .unwrap();
        assert_eq!(
            next(&mut out_rx).await,
            Output::Terminate {
                sub: stray,
                reason: "noresource"
            }
        );
        // 202 has neither target nor subscriber: a change there sends nothing.
        // Un-SUBSCRIBE: one last state, then 201's changes reach only its target.
        in_tx
            .send(Input::Subscription {
                sub,
                user: Some("201".into()),
                change: SubscriptionChange::Ending,
            })
            .unwrap();
        assert_eq!(
            next(&mut out_rx).await,
            Output::Subscription {
                sub,
                body: body(0, 1, "201")
            }
        );
        tokio::task::spawn_blocking({
            let s = store.clone();
            move || add_message(&s, "202", 1)
        })
        .await
        .unwrap();
        update_mailbox(
            &store,
            "201",
            &MailboxUpdate {
                name: Some("x".into()),
                ..Default::default()
            },
        )
        .unwrap();
        store.move_message(&m.id, Folder::Deleted).unwrap();
        assert_eq!(
            next(&mut out_rx).await,
            Output::Unsolicited {
                to,
                uri: "sip:201@127.0.0.1:5999".into(),
                body: body(0, 0, "201")
            }
        );
        assert!(
            out_rx.try_recv().is_err(),
            "nothing for 202, nothing for the ended subscription"
        );
        drop(in_tx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }

    /// A backup in standby or handing back sends no lamps; turned active it
    /// sends every lamp at once, then changes.
    #[tokio::test]
    async fn the_cluster_duty_turns_lamps_off_and_on() {
        use crate::cluster::Duty;
        let (store, _dir) = temp_store("mwi-duty");
        create_mailbox(
            &store,
            "201",
            &MailboxUpdate {
                mwi: Some("sip:201@127.0.0.1:5998".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let (_in_tx, in_rx) = mpsc::unbounded_channel();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel();
        let off = Duty {
            take_calls: false,
            send_mwi: false,
        };
        let (duty_tx, duty) = tokio::sync::watch::channel(off);
        let cfg = MwiConfig {
            refresh: None,
            ..MwiConfig::default()
        };
        let task = tokio::spawn(run(store.clone(), cfg, "h".into(), in_rx, out_tx, duty));
        let lamp = |n: u32| Output::Unsolicited {
            to: "127.0.0.1:5998".parse().unwrap(),
            uri: "sip:201@127.0.0.1:5998".into(),
            body: Summary {
                new: n,
                ..Summary::default()
            }
            .body(&account("201", "h")),
        };
        let add = |n| {
            let s = store.clone();
            tokio::task::spawn_blocking(move || add_message(&s, "201", n))
        };
        let m = add(1).await.unwrap();
        // Off: neither the start-up refresh nor the change sent anything.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(out_rx.try_recv().is_err());
        // Active: every lamp at once, then changes.
        duty_tx.send(Duty::FULL).unwrap();
        assert_eq!(next(&mut out_rx).await, lamp(1));
        add(2).await.unwrap();
        assert_eq!(next(&mut out_rx).await, lamp(2));
        // Handing back: the local copy leaving must not turn the lamp off.
        duty_tx
            .send(Duty {
                take_calls: true,
                send_mwi: false,
            })
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        store.remove_message(&m.id).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            out_rx.try_recv().is_err(),
            "no lamp from a backup handing back"
        );
        task.abort();
    }
}
