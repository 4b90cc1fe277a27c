//! The heartbeat: whether the central answers.
//!
//! A backup or distributed node probes the central every `cluster.heartbeat`
//! with a real exchange against the SMTP ingress it forwards to — TCP, mutual
//! TLS with our client configuration (the cluster CA only, the central's name
//! checked, our certificate presented), the 220 greeting, EHLO, QUIT — bounded
//! by the heartbeat period itself (a slower answer is a miss). So "reachable"
//! means "the central's own ingress answers", not merely "the host answers
//! pings".
//!
//! Fencing: a central that completes the TLS handshake (so it holds the
//! central's certificate) and answers with any SMTP reply is alive, even if
//! that reply refuses us (e.g. `554`: this node is missing from its peers) —
//! a misconfiguration is logged as an error, never a reason for a backup to
//! take calls beside a running central. Only no answer is a miss.
//!
//! [`Tracker`] is the rule, sans-IO: `cluster.failover_after` consecutive
//! misses → unreachable; one answered probe → reachable; before either, the
//! state is unknown. [`run`] drives it and publishes every probe's result as a
//! [`CentralHealth`] on a `tokio::sync::watch` that others read (the
//! failover state machine, the forwarder's wake-up, `cluster status`).
//! Transitions are logged.

use super::tls::NodeTls;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// What is known of the central.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// No probe has decided yet (just started, fewer misses than `failover_after`).
    Unknown,
    Reachable,
    Unreachable,
}

impl Reach {
    pub fn as_str(self) -> &'static str {
        match self {
            Reach::Unknown => "unknown",
            Reach::Reachable => "reachable",
            Reach::Unreachable => "unreachable",
        }
    }
}

/// The central's health as the last probe left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CentralHealth {
    /// `state == Reachable`.
    pub reachable: bool,
    pub state: Reach,
    /// When `state` began.
    pub since: SystemTime,
    /// The last answered probe.
    pub last_ok: Option<SystemTime>,
    /// Misses since the last answered probe.
    pub consecutive_misses: u32,
    /// Why the last probe failed (empty after a success).
    pub last_error: String,
}

/// The reachability rule (sans-IO).
#[derive(Debug, Clone)]
pub struct Tracker {
    failover_after: u32,
    health: CentralHealth,
}

impl Tracker {
    pub fn new(failover_after: u32, now: SystemTime) -> Tracker {
        Tracker {
            failover_after: failover_after.max(1),
            health: CentralHealth {
                reachable: false,
                state: Reach::Unknown,
                since: now,
                last_ok: None,
                consecutive_misses: 0,
                last_error: String::new(),
            },
        }
    }

    pub fn health(&self) -> &CentralHealth {
        &self.health
    }

    /// One probe's result; the new state when it changed.
    pub fn observe(&mut self, result: Result<(), String>, now: SystemTime) -> Option<Reach> {
        let h = &mut self.health;
        let next = match result {
            Ok(()) => {
                h.consecutive_misses = 0;
                h.last_ok = Some(now);
                h.last_error.clear();
                Reach::Reachable
            }
            Err(why) => {
                h.consecutive_misses = h.consecutive_misses.saturating_add(1);
                h.last_error = why;
                if h.consecutive_misses >= self.failover_after {
                    Reach::Unreachable
                } else {
                    h.state
                }
            }
        };
        if next == h.state {
            return None;
        }
        h.state = next;
        h.reachable = next == Reach::Reachable;
        h.since = now;
        Some(next)
    }
}

/// One heartbeat's connection details.
#[derive(Clone)]
pub struct Probe {
    /// The central's SMTP ingress, `host:port`.
    pub addr: String,
    /// The central's certificate name.
    pub central: String,
    /// This node's name (the EHLO domain).
    pub origin: String,
    pub tls: Arc<rustls::ClientConfig>,
}

impl Probe {
    pub fn new(tls: &NodeTls, central: &str, addr: &str) -> Result<Probe, String> {
        Ok(Probe {
            addr: addr.to_string(),
            central: central.to_string(),
            origin: tls.name.clone(),
            tls: tls.client_config()?,
        })
    }

    /// Connect, TLS, 220, EHLO → 250, QUIT → 221, within `timeout`.
    /// `Ok(Answer::Refused)`: the central answered but refused us.
    pub async fn once(&self, timeout: Duration) -> Result<Answer, String> {
        match tokio::time::timeout(timeout, self.exchange()).await {
            Ok(Ok(())) => Ok(Answer::Accepted),
            Ok(Err(Fail::Refused(why))) => Ok(Answer::Refused(why)),
            Ok(Err(Fail::Down(why))) => Err(why),
            Err(_) => Err(format!(
                "no complete answer from {} within {} ms",
                self.addr,
                timeout.as_millis()
            )),
        }
    }

    async fn exchange(&self) -> Result<(), Fail> {
        let down = Fail::Down;
        let tcp = TcpStream::connect(&self.addr)
            .await
            .map_err(|e| down(format!("cannot connect to {}: {e}", self.addr)))?;
        let _ = tcp.set_nodelay(true);
        let name = rustls::pki_types::ServerName::try_from(self.central.clone())
            .map_err(|e| down(format!("`{}`: {e}", self.central)))?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| down(format!("TLS with {}: {e}", self.addr)))?;
        let mut s = BufReader::new(tls);
        reply(&mut s, 220, "greeting").await?;
        s.get_mut()
            .write_all(format!("EHLO {}\r\n", self.origin).as_bytes())
            .await
            .map_err(|e| down(format!("sending EHLO: {e}")))?;
        reply(&mut s, 250, "EHLO").await?;
        s.get_mut()
            .write_all(b"QUIT\r\n")
            .await
            .map_err(|e| down(format!("sending QUIT: {e}")))?;
        reply(&mut s, 221, "QUIT").await?;
        let _ = s.get_mut().shutdown().await;
        Ok(())
    }
}

/// How the central answered a probe it completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Accepted,
    /// An SMTP reply refusing us (why, as it said it): alive, misconfigured.
    Refused(String),
}

/// Why a probe failed.
enum Fail {
    /// No (complete) answer: a miss.
    Down(String),
    /// The authenticated central answered with another reply code.
    Refused(String),
}

/// Reads one SMTP reply (its continuation lines too) and checks its code.
async fn reply<R: tokio::io::AsyncRead + Unpin>(
    r: &mut BufReader<R>,
    want: u16,
    what: &str,
) -> Result<(), Fail> {
    let down = Fail::Down;
    // A reply of more lines than this is not an SMTP ingress.
    for _ in 0..64 {
        let mut line = Vec::new();
        let n = (&mut *r)
            .take(1024)
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| down(format!("reading the {what} reply: {e}")))?;
        if n == 0 {
            return Err(down(format!(
                "the connection closed before the {what} reply"
            )));
        }
        let text = String::from_utf8_lossy(&line);
        let code = text.get(..3).and_then(|c| c.parse::<u16>().ok());
        if code != Some(want) {
            let shown = text.trim_end().chars().take(80).collect::<String>();
            return Err(match code {
                Some(c) if (400..600).contains(&c) => Fail::Refused(format!("{what}: `{shown}`")),
                _ => down(format!("{what}: expected {want}, got `{shown}`")),
            });
        }
        if text.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
    Err(down(format!("the {what} reply has too many lines")))
}

/// Probes every `every` until aborted (or every receiver is gone),
/// publishing each result on `tx` and logging transitions.
pub async fn run(
    probe: Probe,
    every: Duration,
    failover_after: u32,
    tx: watch::Sender<CentralHealth>,
) {
    let mut tracker = Tracker::new(failover_after, SystemTime::now());
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut refused = false;
    loop {
        tick.tick().await;
        let r = match probe.once(every).await {
            Ok(Answer::Accepted) => {
                refused = false;
                Ok(())
            }
            // Alive: fencing counts it as an answer; the operator must fix it.
            Ok(Answer::Refused(why)) => {
                if !refused {
                    tracing::error!(central = %probe.central, smtp = %probe.addr, answer = %why, "cluster: the central answers but refuses this node (is it among the central's `cluster.peers`?); messages stay queued here");
                }
                refused = true;
                Ok(())
            }
            Err(why) => {
                tracing::debug!(central = %probe.central, error = %why, "cluster: heartbeat missed");
                Err(why)
            }
        };
        match tracker.observe(r, SystemTime::now()) {
            Some(Reach::Reachable) => {
                tracing::info!(central = %probe.central, smtp = %probe.addr, "cluster: the central is reachable")
            }
            Some(Reach::Unreachable) => {
                let h = tracker.health();
                tracing::warn!(central = %probe.central, smtp = %probe.addr, missed = h.consecutive_misses, error = %h.last_error, "cluster: the central is unreachable")
            }
            _ => {}
        }
        if tx.send(tracker.health().clone()).is_err() {
            return;
        }
    }
}

/// The watch [`run`] publishes on, starting at "unknown".
pub fn channel(
    failover_after: u32,
) -> (watch::Sender<CentralHealth>, watch::Receiver<CentralHealth>) {
    watch::channel(
        Tracker::new(failover_after, SystemTime::now())
            .health()
            .clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(s)
    }

    fn miss() -> Result<(), String> {
        Err("refused".into())
    }

    #[test]
    fn unknown_until_a_success_or_enough_misses() {
        let mut k = Tracker::new(3, t(0));
        assert_eq!(k.health().state, Reach::Unknown);
        assert!(!k.health().reachable);
        assert_eq!(k.observe(miss(), t(1)), None);
        assert_eq!(k.observe(miss(), t(2)), None);
        assert_eq!(k.health().consecutive_misses, 2);
        assert_eq!(k.health().last_error, "refused");
        assert_eq!(k.observe(miss(), t(3)), Some(Reach::Unreachable));
        assert_eq!(k.health().since, t(3));
        assert_eq!(k.observe(miss(), t(4)), None);
        assert_eq!(k.health().consecutive_misses, 4);
        assert_eq!(k.health().since, t(3), "since is the transition");

        let mut k = Tracker::new(3, t(0));
        assert_eq!(k.observe(Ok(()), t(1)), Some(Reach::Reachable));
        assert!(k.health().reachable);
        assert_eq!(k.health().last_ok, Some(t(1)));
    }

    #[test]
    fn one_success_is_reachable_and_resets_the_misses() {
        let mut k = Tracker::new(3, t(0));
        k.observe(Ok(()), t(1));
        assert_eq!(k.observe(miss(), t(2)), None);
        assert_eq!(k.observe(miss(), t(3)), None);
        assert!(k.health().reachable, "two misses of three: still reachable");
        assert_eq!(k.observe(Ok(()), t(4)), None);
        assert_eq!(k.health().consecutive_misses, 0);
        assert!(k.health().last_error.is_empty());
        assert_eq!(k.health().since, t(1));
        for s in 5..7 {
            assert_eq!(k.observe(miss(), t(s)), None);
        }
        assert_eq!(k.observe(miss(), t(7)), Some(Reach::Unreachable));
        assert!(!k.health().reachable);
        assert_eq!(k.health().last_ok, Some(t(4)));
        assert_eq!(k.observe(Ok(()), t(8)), Some(Reach::Reachable));
        assert_eq!(k.health().since, t(8));
    }

    #[test]
    fn failover_after_one_and_zero() {
        let mut k = Tracker::new(1, t(0));
        assert_eq!(k.observe(miss(), t(1)), Some(Reach::Unreachable));
        // 0 would mean "unreachable without a miss": treated as 1.
        let mut k = Tracker::new(0, t(0));
        assert_eq!(k.observe(Ok(()), t(1)), Some(Reach::Reachable));
        assert_eq!(k.observe(miss(), t(2)), Some(Reach::Unreachable));
    }

    /// A real probe against the central's ingress, and against nothing.
    #[tokio::test]
    async fn probes_a_real_ingress() {
        let dir = crate::cluster::pki::tests::cluster("health", &["central", "backup", "stranger"]);
        let files = |n: &str| crate::config::ClusterTlsConfig {
            ca: dir.join("ca.crt"),
            cert: dir.join(format!("{n}.crt")),
            key: dir.join(format!("{n}.key")),
        };
        let central_tls = NodeTls::load(&files("central"), "central").unwrap();
        let backup_tls = NodeTls::load(&files("backup"), "backup").unwrap();
        let store_dir = std::env::temp_dir().join(format!("vflow-health-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&store_dir);
        let store = crate::store::Store::open(&store_dir).unwrap();
        let peers = vec![crate::config::PeerConfig {
            name: "backup".into(),
            role: crate::config::PeerRole::Backup,
            smtp: None,
            control: None,
        }];
        let ingress = super::super::ingress::Ingress::bind(
            "127.0.0.1:0".parse().unwrap(),
            &central_tls,
            peers,
            crate::config::IngressConfig::default(),
            store,
        )
        .await
        .unwrap();
        let addr = ingress.local_addr().unwrap();
        let task = tokio::spawn(ingress.run());
        let p = Probe::new(&backup_tls, "central", &addr.to_string()).unwrap();
        assert_eq!(p.once(Duration::from_secs(5)).await, Ok(Answer::Accepted));
        // A node the central does not list: refused, but the central is alive
        // (fencing: no reason to take over).
        let stranger_tls = NodeTls::load(&files("stranger"), "stranger").unwrap();
        let s = Probe::new(&stranger_tls, "central", &addr.to_string()).unwrap();
        match s.once(Duration::from_secs(5)).await {
            Ok(Answer::Refused(why)) => assert!(why.contains("554"), "{why}"),
            other => panic!("{other:?}"),
        }
        // The wrong name for the central: TLS refuses it.
        let wrong = Probe::new(&backup_tls, "backup", &addr.to_string()).unwrap();
        let e = wrong.once(Duration::from_secs(5)).await.unwrap_err();
        assert!(e.contains("TLS"), "{e}");
        task.abort();
        let _ = task.await;
        // Nothing listens any more.
        let e = p.once(Duration::from_secs(5)).await.unwrap_err();
        assert!(e.contains("cannot connect"), "{e}");
        let _ = std::fs::remove_dir_all(&store_dir);
    }
}
