//! HTTP/1.1 over the cluster's mutual TLS, both directions.
//!
//! Server: every accepted TCP connection goes through a tokio-rustls
//! acceptor with [`NodeTls::server_config`](super::tls::NodeTls::server_config)
//! (client certificates of the cluster CA required), then hyper serves the
//! router that `route` builds for *that* connection's client certificate —
//! so every request is attributed to the peer that holds it. There is no
//! plaintext listener.
//!
//! Client: one TCP connection per request, our client TLS config (the cluster
//! CA only, our certificate presented, the server's name checked), hyper's
//! connection API for the one request. A few requests a minute between nodes
//! do not need a pool.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ServerConfig};
use std::sync::Arc;
use std::time::Duration;

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the router for one connection from its client certificate chain.
pub type Route = Arc<dyn Fn(Option<&[CertificateDer<'static>]>) -> axum::Router + Send + Sync>;

/// Serves `listener` forever: TLS, then HTTP/1.1 with the router that
/// `route` gives for the client's certificate chain.
pub async fn serve(listener: tokio::net::TcpListener, tls: Arc<ServerConfig>, route: Route) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, from) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "control API: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let route = route.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    // A foreign CA, no certificate, not TLS at all.
                    tracing::warn!(target: "security", event = "control_tls_refused", from = %from, error = %e, "control API: TLS handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::debug!(from = %from, "control API: TLS handshake timed out");
                    return;
                }
            };
            let router = route(stream.get_ref().1.peer_certificates());
            let service = hyper_util::service::TowerToHyperService::new(router);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(from = %from, error = %e, "control API: connection ended with an error");
            }
        });
    }
}

/// A response from another node.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    /// The body as text, for error messages (cut to a line's worth).
    pub fn text(&self) -> String {
        let s = String::from_utf8_lossy(&self.body);
        let s = s.trim();
        if s.len() > 400 {
            format!("{}…", &s[..s.floor_char_boundary(400)])
        } else {
            s.to_string()
        }
    }
}

/// Asks `addr` (`host:port`; its certificate must name `server_name`) one
/// request over mutual TLS, within `timeout` altogether. Errors say which
/// step failed.
pub async fn request(
    tls: Arc<ClientConfig>,
    server_name: &str,
    addr: &str,
    method: Method,
    path_and_query: &str,
    body: Bytes,
    timeout: Duration,
) -> Result<Response, String> {
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|_| format!("`{server_name}` is not a DNS name"))?;
    let work = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {server_name} at {addr} failed: {e}"))?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP with {addr}: {e}"))?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header("host", server_name)
            .body(http_body_util::Full::new(body))
            .map_err(|e| format!("bad request: {e}"))?;
        let resp = send
            .send_request(req)
            .await
            .map_err(|e| format!("{addr}: no answer: {e}"))?;
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("{addr}: the answer broke off: {e}"))?
            .to_bytes();
        driver.abort();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "{server_name} at {addr} did not answer within {}s",
            timeout.as_secs()
        )),
    }
}

/// Reads a request body up to `limit` bytes (a larger one is refused).
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, (StatusCode, String)> {
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err((
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body is larger than {limit} bytes"),
                ))
            } else {
                Err((
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the body: {e}"),
                ))
            }
        }
    }
}
