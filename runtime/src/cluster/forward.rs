//! The forwarder of a backup or distributed node: drains the store's
//! `forward` outbox entries (queued with each message in the same
//! transaction, see [`Store::commit_message`]) to the central's SMTP ingress,
//! through the shared outbox loop ([`crate::outbox`]: backoff, wake-ups).
//!
//! The connection is ours, the SMTP dialogue lettre's: a TCP connection,
//! then a TLS client handshake with [`super::tls::NodeTls::client_config`]
//! (cluster CA only, the central's name checked, our certificate presented),
//! handed to lettre's `AsyncSmtpConnection::connect_with_transport`, which
//! speaks EHLO / MAIL / RCPT / DATA on it. (lettre's own TLS set-up can
//! present a client certificate, but its rustls `Identity::from_pem` stores
//! the PEM text as if it were DER, so that path does not work; see
//! ARCHITECTURE.md.) One connection serves a whole drain pass and is closed
//! after it.
//!
//! An entry is done only after the central answered 250 to its DATA; then,
//! in the same transaction, the local copy goes ([`Store::finish_forward`]):
//! the central is the store of record. Failures are retried forever with
//! backoff: a message is never given up.

use super::tls::NodeTls;
use super::wire;
use crate::config::ForwardConfig;
use crate::outbox::{Consumer, Policy, PrepareError};
use crate::store::{FORWARD_KIND, OutboxItem, Result as StoreResult, Store};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream};
use lettre::transport::smtp::extension::ClientId;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// What the blocking steps need.
#[derive(Debug, Clone)]
pub struct Names {
    /// This node (the sender).
    pub origin: String,
    /// The central (its certificate's name).
    pub central: String,
}

/// A prepared forward: the envelope, the formatted email and the message id.
pub struct Ready {
    envelope: lettre::address::Envelope,
    email: Vec<u8>,
    message_id: String,
}

/// The consumer of `forward` entries.
pub struct Forwarder {
    policy: Policy,
    names: Names,
    /// The central's SMTP ingress, `host:port`.
    addr: String,
    tls: Arc<rustls::ClientConfig>,
    conn: tokio::sync::Mutex<Option<AsyncSmtpConnection>>,
}

impl Forwarder {
    pub fn new(
        cfg: &ForwardConfig,
        tls: &NodeTls,
        central: &str,
        addr: &str,
    ) -> Result<Forwarder, String> {
        Ok(Forwarder {
            policy: Policy {
                timeout: cfg.timeout,
                retry_first: cfg.retry_first,
                retry_max: cfg.retry_max,
                give_up_after: None,
            },
            names: Names {
                origin: tls.name.clone(),
                central: central.to_string(),
            },
            addr: addr.to_string(),
            tls: tls.client_config()?,
            conn: tokio::sync::Mutex::new(None),
        })
    }

    /// A new connection: TCP, TLS (mutual), then EHLO by lettre.
    async fn connect(&self) -> Result<AsyncSmtpConnection, String> {
        let tcp = TcpStream::connect(&self.addr)
            .await
            .map_err(|e| format!("cannot reach the central at {}: {e}", self.addr))?;
        let _ = tcp.set_nodelay(true);
        let name = rustls::pki_types::ServerName::try_from(self.names.central.clone())
            .map_err(|e| format!("`{}`: {e}", self.names.central))?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with the central at {}: {e}", self.addr))?;
        AsyncSmtpConnection::connect_with_transport(
            Box::new(TlsConn(tls)),
            &ClientId::Domain(self.names.origin.clone()),
        )
        .await
        .map_err(|e| format!("SMTP greeting from the central at {}: {e}", self.addr))
    }
}

impl Consumer for Forwarder {
    const KIND: &'static str = FORWARD_KIND;
    const LABEL: &'static str = "forward";
    const ACCEPTED: &'static str = "accepted by the central";
    type Ctx = Names;
    type Ready = Ready;
    type Done = String;

    fn ctx(&self) -> &Names {
        &self.names
    }

    fn policy(&self) -> &Policy {
        &self.policy
    }

    fn prepare(names: &Names, store: &Store, item: &OutboxItem) -> Result<Ready, PrepareError> {
        let id = item
            .message_id
            .as_deref()
            .ok_or_else(|| PrepareError::Obsolete("no message id".into()))?;
        let m = store
            .message(id)?
            .ok_or_else(|| PrepareError::Obsolete(format!("message {id} is gone")))?;
        let path = store.message_path(&m.mailbox, &m.id);
        let wav = std::fs::read(&path)
            .map_err(|e| PrepareError::Failed(format!("cannot read {}: {e}", path.display())))?;
        let envelope =
            wire::envelope(&m, &names.origin, &names.central).map_err(PrepareError::Obsolete)?;
        let email = wire::build(&m, wav, &names.origin, &names.central)
            .map_err(PrepareError::Obsolete)?
            .formatted();
        Ok(Ready {
            envelope,
            email,
            message_id: m.id,
        })
    }

    async fn deliver(&self, r: Ready) -> Result<String, String> {
        let mut slot = self.conn.lock().await;
        let mut conn = match slot.take() {
            Some(c) if !c.has_broken() => c,
            _ => self.connect().await?,
        };
        match conn.send(&r.envelope, &r.email).await {
            Ok(_) => {
                *slot = Some(conn);
                Ok(r.message_id)
            }
            Err(e) => {
                conn.abort().await;
                Err(format!("the central refused or failed: {e}"))
            }
        }
    }

    fn delivered(_: &Names, store: &Store, item: &OutboxItem, id: String) -> StoreResult<()> {
        if let Some(m) = store.finish_forward(item.id, &id)? {
            tracing::info!(mailbox = %m.mailbox, message_id = %m.id, "forward: the central stores it now; local copy removed");
        }
        Ok(())
    }

    async fn batch_done(&self) {
        if let Some(mut c) = self.conn.lock().await.take() {
            let _ = c.quit().await;
        }
    }
}

/// The TLS stream lettre speaks SMTP over.
struct TlsConn(tokio_rustls::client::TlsStream<TcpStream>);

impl std::fmt::Debug for TlsConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConn").finish_non_exhaustive()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TlsConn {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

/// Runs the forwarder until aborted.
pub async fn run(store: Store, f: Forwarder, wake: Arc<tokio::sync::Notify>) {
    crate::outbox::run(store, f, wake).await
}

/// Wakes the forwarder the moment the central becomes reachable: every
/// pending entry is made due at once (no sitting out a long backoff) and
/// the drain loop is notified. Runs until `health`'s sender is gone.
pub async fn wake_on_reachable(
    store: Store,
    mut health: tokio::sync::watch::Receiver<super::health::CentralHealth>,
    wake: Arc<tokio::sync::Notify>,
) {
    let mut was = health.borrow_and_update().reachable;
    while health.changed().await.is_ok() {
        let now = health.borrow_and_update().reachable;
        if now && !was {
            let s = store.clone();
            match tokio::task::spawn_blocking(move || s.outbox_due_now(FORWARD_KIND)).await {
                Ok(Ok(n)) if n > 0 => {
                    tracing::info!(pending = n, "forward: the central is back; draining now")
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "forward: cannot read the queue"),
                Err(e) => tracing::error!(error = %e, "forward: reading the queue panicked"),
            }
            wake.notify_one();
        }
        was = now;
    }
}
