//! The central's SMTP ingress: where backup and distributed nodes deliver
//! the messages they took.
//!
//! Implicit TLS from the first byte with [`NodeTls::server_config`] (a client
//! certificate of the cluster CA is mandatory), then the client must be a
//! configured backup or distributed peer ([`super::tls::identify`]); anyone
//! else is refused and logged as a `security` event. The SMTP dialogue is
//! mailin's sans-IO state machine; this loop only moves lines, with limits:
//! lines up to [`MAX_LINE`] bytes, messages up to
//! `cluster.ingress.max_message_size` (552 beyond, and the connection is
//! closed if a client keeps sending), `max_connections` at once (more wait),
//! and `timeout` for the handshake and between lines.
//!
//! At the end of DATA the message is parsed and checked ([`wire::parse`];
//! its origin must be the authenticated peer), then stored
//! ([`Store::store_forwarded`]: temporary file, fsync, rename, row) keyed by
//! its message id, and only then answered 250. A repeated delivery of a
//! stored id is answered 250 without storing it again: at-least-once on the
//! wire, exactly-once in the store. The store announces the change, which
//! drives MWI.

use super::tls::{NodeTls, identify};
use super::wire;
use crate::config::{IngressConfig, PeerConfig, PeerRole};
use crate::store::{Store, StoreError, Stored};
use mailin::{Action, Handler, Response, SessionBuilder};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// The longest command or data line accepted (RFC 5321 allows 1000; some slack).
pub const MAX_LINE: usize = 4096;

/// The ingress, bound and ready to run.
pub struct Ingress {
    listener: TcpListener,
    shared: Arc<Shared>,
}

struct Shared {
    acceptor: tokio_rustls::TlsAcceptor,
    store: Store,
    peers: Vec<PeerConfig>,
    limits: IngressConfig,
    name: String,
    slots: Arc<tokio::sync::Semaphore>,
}

impl Ingress {
    /// Binds `listen`.
    pub async fn bind(
        listen: SocketAddr,
        tls: &NodeTls,
        peers: Vec<PeerConfig>,
        limits: IngressConfig,
        store: Store,
    ) -> Result<Ingress, String> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cluster: cannot listen for SMTP on {listen}: {e}"))?;
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config()?);
        Ok(Ingress {
            listener,
            shared: Arc::new(Shared {
                acceptor,
                store,
                peers,
                slots: Arc::new(tokio::sync::Semaphore::new(limits.max_connections)),
                limits,
                name: tls.name.clone(),
            }),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves connections until aborted.
    pub async fn run(self) {
        loop {
            // A free slot first: connections beyond the limit wait in the backlog.
            let Ok(permit) = self.shared.slots.clone().acquire_owned().await else {
                return;
            };
            let (tcp, from) = match self.listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "cluster: SMTP accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let shared = self.shared.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let _ = tcp.set_nodelay(true);
                let timeout = shared.limits.timeout;
                let tls = match tokio::time::timeout(timeout, shared.acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::warn!(target: "security", event = "cluster_tls_refused", %from, error = %e, "cluster: SMTP client refused in the TLS handshake");
                        return;
                    }
                    Err(_) => {
                        tracing::warn!(target: "security", event = "cluster_tls_refused", %from, error = "handshake timed out", "cluster: SMTP client refused in the TLS handshake");
                        return;
                    }
                };
                let peer = identify(tls.get_ref().1.peer_certificates(), &shared.peers, |r| {
                    matches!(r, PeerRole::Backup | PeerRole::Distributed)
                })
                .map(|p| p.name.clone());
                let mut tls = tls;
                match peer {
                    Ok(name) => {
                        tracing::debug!(%from, peer = %name, "cluster: SMTP peer connected");
                        if let Err(e) = session(&shared, &mut tls, from, &name).await {
                            tracing::debug!(%from, peer = %name, error = %e, "cluster: SMTP connection ended");
                        }
                    }
                    Err(why) => {
                        tracing::warn!(target: "security", event = "cluster_peer_refused", %from, reason = %why, "cluster: SMTP client is not a forwarding peer");
                        let _ = tls
                            .write_all(b"554 5.7.1 not a peer of this cluster\r\n")
                            .await;
                        let _ = tls.shutdown().await;
                    }
                }
            });
        }
    }
}

/// What the mailin handler collected for one DATA.
#[derive(Default)]
struct Collected {
    buf: Vec<u8>,
    size: u64,
    too_big: bool,
    /// Set at the end of DATA: the message (or too big), for the loop to answer.
    done: Option<Result<Vec<u8>, u64>>,
}

struct Collector {
    slot: Arc<Mutex<Collected>>,
    max: u64,
}

impl Collector {
    fn with<T>(&self, f: impl FnOnce(&mut Collected) -> T) -> T {
        f(&mut self.slot.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Handler for Collector {
    fn data_start(&mut self, _: &str, _: &str, _: bool, _: &[String]) -> Response {
        self.with(|c| *c = Collected::default());
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let max = self.max;
        self.with(|c| {
            c.size += buf.len() as u64;
            if c.size > max {
                // Keep reading to the end of DATA, keep nothing.
                c.too_big = true;
                c.buf = Vec::new();
            } else {
                c.buf.extend_from_slice(buf);
            }
        });
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        // Always OK to the state machine (an error would keep it in DATA);
        // the loop answers the client after storing.
        self.with(|c| {
            c.done = Some(if c.too_big {
                Err(c.size)
            } else {
                Ok(std::mem::take(&mut c.buf))
            });
        });
        mailin::response::OK
    }
}

async fn write(s: &mut (impl AsyncWrite + Unpin), r: &Response) -> std::io::Result<()> {
    s.write_all(&r.buffer()?).await?;
    s.flush().await
}

/// One SMTP session with an authenticated peer.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    stream: &mut S,
    from: SocketAddr,
    peer: &str,
) -> std::io::Result<()> {
    let slot = Arc::new(Mutex::new(Collected::default()));
    let max = shared.limits.max_message_size;
    let mut smtp = SessionBuilder::new(shared.name.clone()).build(
        from.ip(),
        Collector {
            slot: slot.clone(),
            max,
        },
    );
    let (rd, mut wr) = tokio::io::split(stream);
    let mut rd = BufReader::new(rd);
    write(&mut wr, &smtp.greeting()).await?;
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        let n = tokio::time::timeout(
            shared.limits.timeout,
            (&mut rd)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line),
        )
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "idle"))??;
        if n == 0 {
            return Ok(());
        }
        if !line.ends_with(b"\n") {
            let r = Response::custom(500, "5.5.2 line too long; closing".into());
            write(&mut wr, &r).await?;
            return Ok(());
        }
        // Someone streaming far past the limit is cut off.
        let over = slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .size
            .saturating_sub(max);
        if over > max {
            let r = Response::custom(552, "5.3.4 message far too big; closing".into());
            write(&mut wr, &r).await?;
            return Ok(());
        }
        let r = smtp.process(&line);
        let done = slot.lock().unwrap_or_else(|p| p.into_inner()).done.take();
        let reply = match done {
            Some(Ok(raw)) => accept(shared, peer, raw).await,
            Some(Err(size)) => {
                tracing::warn!(
                    peer,
                    size,
                    max,
                    "cluster: forwarded message too big; refused"
                );
                Response::custom(
                    552,
                    format!("5.3.4 message too big ({size} bytes; at most {max})"),
                )
            }
            None => r,
        };
        match reply.action {
            Action::NoReply => {}
            Action::Close => {
                write(&mut wr, &reply).await?;
                return Ok(());
            }
            Action::Reply | Action::UpgradeTls => write(&mut wr, &reply).await?,
        }
    }
}

/// Checks and stores one forwarded message; the answer to its DATA.
async fn accept(shared: &Shared, peer: &str, raw: Vec<u8>) -> Response {
    let fwd = match wire::parse(&raw) {
        Ok(f) => f,
        Err(why) => {
            tracing::warn!(peer, error = %why, "cluster: forwarded message refused");
            return Response::custom(554, format!("5.6.0 {why}"));
        }
    };
    if fwd.message.origin_node != peer {
        tracing::warn!(target: "security", event = "cluster_origin_mismatch", peer, origin = %fwd.message.origin_node, message_id = %fwd.message.id, "cluster: a peer forwarded a message in another node's name");
        return Response::custom(554, "5.7.1 the origin is not the sending node".into());
    }
    let store = shared.store.clone();
    let id = fwd.message.id.clone();
    let stored =
        tokio::task::spawn_blocking(move || store.store_forwarded(&fwd.message, &fwd.wav)).await;
    match stored {
        Ok(Ok(Stored::New(m))) => {
            tracing::info!(peer, mailbox = %m.mailbox, message_id = %m.id, duration_ms = m.duration_ms, "cluster: forwarded message stored");
            Response::custom(250, format!("2.0.0 stored {id}"))
        }
        Ok(Ok(Stored::Duplicate(m))) => {
            tracing::info!(peer, mailbox = %m.mailbox, message_id = %m.id, "cluster: forwarded message was already stored (repeated delivery)");
            Response::custom(250, format!("2.0.0 already stored {id}"))
        }
        Ok(Err(StoreError::NotFound(what))) => {
            tracing::error!(peer, message_id = %id, "cluster: forwarded message for an unknown {what}; the sender keeps it and retries");
            Response::custom(550, format!("5.1.1 {what} is unknown here"))
        }
        Ok(Err(e)) => {
            tracing::error!(peer, message_id = %id, error = %e, "cluster: cannot store a forwarded message; the sender retries");
            Response::custom(451, "4.3.0 cannot store it now".into())
        }
        Err(e) => {
            tracing::error!(peer, message_id = %id, error = %e, "cluster: storing a forwarded message panicked");
            Response::custom(451, "4.3.0 cannot store it now".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::forward::Forwarder;
    use crate::cluster::pki::tests::cluster;
    use crate::cluster::tls::tests::node;
    use crate::config::ForwardConfig;
    use crate::outbox::Consumer;
    use crate::store::{FORWARD_KIND, NewMessage};
    use crate::voicemail::tests::temp_store;
    use crate::voicemail::{MailboxUpdate, create_mailbox};
    use std::time::Duration;

    fn peers() -> Vec<PeerConfig> {
        vec![PeerConfig {
            name: "site-1".into(),
            role: PeerRole::Distributed,
            smtp: None,
            control: None,
        }]
    }

    /// A store with mailbox 201 and, when `forwarding`, a forward queue.
    fn store(name: &str, forwarding: bool) -> Store {
        let (s, dir) = temp_store(name);
        // The store outlives this helper: its directory stays behind.
        std::mem::forget(dir);
        create_mailbox(&s, "201", &MailboxUpdate::default()).unwrap();
        s.set_forwarding(forwarding);
        s
    }

    /// A message of `ms` milliseconds taken on site-1.
    fn take(store: &Store, ms: usize) -> crate::store::Message {
        let mut rec = store
            .begin_recording(&uuid::Uuid::new_v4().to_string())
            .unwrap();
        let pcm: Vec<u8> = (0..ms * 8)
            .flat_map(|i| ((i % 50) as i16 * 200).to_le_bytes())
            .collect();
        rec.append(&pcm).unwrap();
        store
            .commit_message(
                rec,
                &NewMessage {
                    mailbox: "201".into(),
                    caller: "300".into(),
                    caller_name: "Test Caller".into(),
                    received_ms: crate::store::now_ms(),
                    priority: "normal".into(),
                    origin_node: "site-1".into(),
                    call_id: "call-1".into(),
                    flow_node: "leave.take".into(),
                },
            )
            .unwrap()
    }

    async fn central(name: &str, pki: &std::path::Path, max: u64) -> (Store, SocketAddr) {
        let st = store(name, false);
        let limits = IngressConfig {
            max_message_size: max,
            max_connections: 4,
            timeout: Duration::from_secs(10),
        };
        let ingress = Ingress::bind(
            "127.0.0.1:0".parse().unwrap(),
            &node(pki, "central"),
            peers(),
            limits,
            st.clone(),
        )
        .await
        .unwrap();
        let addr = ingress.local_addr().unwrap();
        tokio::spawn(ingress.run());
        (st, addr)
    }

    fn forwarder(tls: &NodeTls, addr: SocketAddr) -> Forwarder {
        let cfg = ForwardConfig {
            timeout: Duration::from_secs(10),
            ..ForwardConfig::default()
        };
        Forwarder::new(&cfg, tls, "central", &addr.to_string()).unwrap()
    }

    #[tokio::test]
    async fn forwarded_over_mutual_tls_stored_once_and_removed_at_the_origin() {
        let pki = cluster("ingress-ok", &["central", "site-1"]);
        let (central, addr) = central("ingress-ok-central", &pki, 1 << 20).await;
        let mut changes = central.subscribe();
        let site = store("ingress-ok-site", true);
        let m = take(&site, 500);
        let wav = std::fs::read(site.message_path("201", &m.id)).unwrap();
        let f = forwarder(&node(&pki, "site-1"), addr);

        let r = crate::outbox::drain(&site, &f, i64::MAX / 2).await.unwrap();
        assert_eq!((r.sent, r.failed, r.next_due_ms), (1, 0, None));
        let got = central.messages("201", None).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, m.id);
        assert_eq!(
            (got[0].caller.as_str(), got[0].caller_name.as_str()),
            ("300", "Test Caller")
        );
        assert_eq!(got[0].origin_node, "site-1");
        assert_eq!(
            std::fs::read(central.message_path("201", &m.id)).unwrap(),
            wav
        );
        assert_eq!(changes.try_recv().unwrap(), "201", "MWI hears of it");
        assert!(
            site.message(&m.id).unwrap().is_none(),
            "the central is the store of record"
        );
        assert!(
            site.outbox_due(FORWARD_KIND, i64::MAX, 10)
                .unwrap()
                .is_empty()
        );

        // The same message delivered again (a lost 250, a crash before the
        // local commit): acknowledged, stored once.
        let item = crate::store::OutboxItem {
            id: 0,
            kind: FORWARD_KIND.into(),
            mailbox: Some("201".into()),
            message_id: Some(m.id.clone()),
            payload: "{}".into(),
            created_ms: 0,
            attempts: 0,
            next_attempt_ms: 0,
            last_error: None,
        };
        // Rebuild it from the central's own copy (same id, same bytes).
        let names = f.ctx().clone();
        for _ in 0..2 {
            let ready = Forwarder::prepare(&names, &central, &item).unwrap();
            assert_eq!(f.deliver(ready).await, Ok(m.id.clone()));
        }
        f.batch_done().await;
        assert_eq!(
            central.messages("201", None).unwrap().len(),
            1,
            "exactly once in the store"
        );
    }

    #[tokio::test]
    async fn foreign_and_unlisted_certificates_are_refused() {
        let pki = cluster("ingress-refuse", &["central", "site-1", "stranger"]);
        let foreign = cluster("ingress-refuse-foreign", &["site-1"]);
        let (central, addr) = central("ingress-refuse-central", &pki, 1 << 20).await;
        let site = store("ingress-refuse-site", true);
        let m = take(&site, 100);

        // site-1's name, but a certificate of another CA (trusting ours for the server).
        let forged = crate::cluster::tls::tests::swap_identity(
            node(&pki, "site-1"),
            node(&foreign, "site-1"),
        );
        let r = crate::outbox::drain(&site, &forwarder(&forged, addr), i64::MAX / 2)
            .await
            .unwrap();
        assert_eq!((r.sent, r.failed), (0, 1));

        // Our CA, but not a configured peer.
        let stranger = node(&pki, "stranger");
        let r = crate::outbox::drain(&site, &forwarder(&stranger, addr), i64::MAX / 2)
            .await
            .unwrap();
        assert_eq!((r.sent, r.failed), (0, 1));

        assert!(central.messages("201", None).unwrap().is_empty());
        assert!(
            site.message(&m.id).unwrap().is_some(),
            "kept, to be retried"
        );
        let pending = site.outbox_due(FORWARD_KIND, i64::MAX, 10).unwrap();
        assert_eq!(pending[0].attempts, 2);
    }

    #[tokio::test]
    async fn an_oversize_message_is_refused_and_kept() {
        let pki = cluster("ingress-big", &["central", "site-1"]);
        let (central, addr) = central("ingress-big-central", &pki, 4096).await;
        let site = store("ingress-big-site", true);
        let m = take(&site, 1000);
        let f = forwarder(&node(&pki, "site-1"), addr);
        let r = crate::outbox::drain(&site, &f, i64::MAX / 2).await.unwrap();
        assert_eq!((r.sent, r.failed), (0, 1));
        let pending = site.outbox_due(FORWARD_KIND, i64::MAX, 10).unwrap();
        let why = pending[0].last_error.clone().unwrap_or_default();
        assert!(why.contains("552") || why.contains("too big"), "{why}");
        assert!(central.messages("201", None).unwrap().is_empty());
        assert!(site.message(&m.id).unwrap().is_some());
    }

    #[tokio::test]
    async fn lines_too_long_and_bad_mime_are_refused() {
        let pki = cluster("ingress-raw", &["central", "site-1"]);
        let (central, addr) = central("ingress-raw-central", &pki, 1 << 20).await;
        let tls = node(&pki, "site-1");
        let connect = || async {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut s = tokio_rustls::TlsConnector::from(tls.client_config().unwrap())
                .connect(
                    rustls::pki_types::ServerName::try_from("central").unwrap(),
                    tcp,
                )
                .await
                .unwrap();
            let mut greeting = [0u8; 64];
            let n = s.read(&mut greeting).await.unwrap();
            assert!(greeting[..n].starts_with(b"220 "));
            s
        };
        async fn say(s: &mut (impl AsyncRead + AsyncWrite + Unpin), what: &[u8]) -> String {
            s.write_all(what).await.unwrap();
            let mut buf = vec![0u8; 512];
            let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
                .await
                .unwrap()
                .unwrap_or(0);
            String::from_utf8_lossy(&buf[..n]).into_owned()
        }
        let mut s = connect().await;
        let long = vec![b'A'; MAX_LINE + 10];
        assert!(say(&mut s, &long).await.starts_with("500"));

        let mut s = connect().await;
        assert!(say(&mut s, b"EHLO site-1\r\n").await.starts_with("250"));
        assert!(
            say(&mut s, b"MAIL FROM:<vflow@site-1>\r\n")
                .await
                .starts_with("250")
        );
        assert!(
            say(&mut s, b"RCPT TO:<201@central>\r\n")
                .await
                .starts_with("250")
        );
        assert!(say(&mut s, b"DATA\r\n").await.starts_with("354"));
        let r = say(&mut s, b"Subject: not a voicemail\r\n\r\nhello\r\n.\r\n").await;
        assert!(r.starts_with("554"), "{r}");
        // The session goes on after a refused message.
        assert!(
            say(&mut s, b"MAIL FROM:<vflow@site-1>\r\n")
                .await
                .starts_with("250")
        );
        assert!(central.messages("201", None).unwrap().is_empty());
    }

    /// Drain rate: 100 messages of 10 s (160 KB WAV each) queued on site-1,
    /// drained to the central over loopback mutual TLS. Prints the rate.
    /// `cargo test -p vflow-runtime --release --lib -- --ignored drain_rate --nocapture`
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a measurement, not a check"]
    async fn drain_rate() {
        let pki = cluster("ingress-rate", &["central", "site-1"]);
        let (central, addr) = central("ingress-rate-central", &pki, 16 << 20).await;
        let site = store("ingress-rate-site", true);
        let n = 100;
        for _ in 0..n {
            take(&site, 10_000);
        }
        let f = forwarder(&node(&pki, "site-1"), addr);
        let t0 = std::time::Instant::now();
        let mut sent = 0;
        while sent < n {
            let r = crate::outbox::drain(&site, &f, i64::MAX / 2).await.unwrap();
            assert_eq!(r.failed, 0);
            sent += r.sent;
        }
        let secs = t0.elapsed().as_secs_f64();
        assert_eq!(central.messages("201", None).unwrap().len(), n);
        println!(
            "drain rate: {n} messages of 10 s in {secs:.2} s = {:.1} messages/s ({:.1} MB/s of WAV)",
            n as f64 / secs,
            n as f64 * 160_044.0 / secs / 1e6
        );
    }

    /// An outage: `n` messages of `ms` queued on site-1 while nothing listens
    /// at the central's address (each attempt fails and waits `retry_first`),
    /// then the central's ingress starts there. The heartbeat sees it, the
    /// forwarder is woken and drains at once. The time from the ingress
    /// listening to site-1's outbox being empty.
    async fn outage(tag: &str, n: usize, ms: usize, retry_first: Duration) -> Duration {
        use crate::cluster::{forward, health};
        let pki = cluster(&format!("ingress-{tag}"), &["central", "site-1"]);
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let site = store(&format!("ingress-{tag}-site"), true);
        let tls = node(&pki, "site-1");
        let cfg = ForwardConfig {
            timeout: Duration::from_secs(10),
            retry_first,
            retry_max: retry_first,
        };
        let f = Forwarder::new(&cfg, &tls, "central", &addr.to_string()).unwrap();
        for _ in 0..n {
            take(&site, ms);
        }
        let wake = std::sync::Arc::new(tokio::sync::Notify::new());
        let fwd = tokio::spawn(forward::run(site.clone(), f, wake.clone()));
        let probe = health::Probe::new(&tls, "central", &addr.to_string()).unwrap();
        let (htx, hrx) = health::channel(2);
        let mut seen = hrx.clone();
        let hb = tokio::spawn(health::run(probe, Duration::from_millis(100), 2, htx));
        let waker = tokio::spawn(forward::wake_on_reachable(site.clone(), hrx, wake));
        // Down: every entry has failed once and waits out its backoff.
        tokio::time::timeout(Duration::from_secs(30), async {
            while seen.borrow_and_update().state != health::Reach::Unreachable {
                seen.changed().await.unwrap();
            }
            while site
                .outbox_due(FORWARD_KIND, i64::MAX, n)
                .unwrap()
                .iter()
                .any(|i| i.attempts == 0)
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the outage is seen");
        let central_store = store(&format!("ingress-{tag}-central"), false);
        let ingress = Ingress::bind(
            addr,
            &node(&pki, "central"),
            peers(),
            IngressConfig::default(),
            central_store.clone(),
        )
        .await
        .unwrap();
        let t0 = std::time::Instant::now();
        let srv = tokio::spawn(ingress.run());
        // Bounded so a broken wake-up fails instead of hanging; the backoff
        // the entries wait out is far longer than this bound.
        tokio::time::timeout(Duration::from_secs(120), async {
            while !site
                .outbox_due(FORWARD_KIND, i64::MAX, 1)
                .unwrap()
                .is_empty()
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the outbox drains once the central is back, without waiting out the backoff");
        let took = t0.elapsed();
        assert_eq!(central_store.messages("201", None).unwrap().len(), n);
        assert!(site.messages("201", None).unwrap().is_empty());
        for t in [fwd, hb, waker, srv] {
            t.abort();
        }
        took
    }

    /// The forwarder does not sit out a one-hour backoff once the central
    /// answers heartbeats again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_central_back_wakes_the_forwarder_at_once() {
        outage("wake", 3, 200, Duration::from_secs(3600)).await;
    }

    /// Drain rate after an outage: 100 messages of 10 s held on site-1, the
    /// central returns; from its ingress listening to the outbox empty
    /// (heartbeat detection included). Prints the rate.
    /// `cargo test -p vflow-runtime --release --lib -- --ignored drain_after_an_outage --nocapture`
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a measurement, not a check"]
    async fn drain_after_an_outage() {
        let n = 100;
        let took = outage("outage-rate", n, 10_000, Duration::from_secs(3600)).await;
        let secs = took.as_secs_f64();
        println!(
            "after an outage: {n} messages of 10 s drained in {secs:.2} s (heartbeat 100 ms included) = {:.1} messages/s",
            n as f64 / secs
        );
    }
}
