//! Mutual TLS between cluster nodes: rustls with the ring provider, TLS 1.3
//! only (both ends are vflow), and one trust anchor — the cluster CA.
//!
//! Both sides authenticate: a server presents its node certificate and
//! requires one from the client; a client verifies the server's certificate
//! against the CA *and* the peer's configured name (a DNS name in the
//! certificate), and presents its own. There is no configuration without
//! client authentication and no plaintext fallback: every constructor here
//! builds the mutual form or fails.
//!
//! After a handshake the server knows only that the client holds *some*
//! certificate of the cluster CA; [`identify`] turns that into a configured
//! peer: the certificate's subject CN names the node, the certificate must be
//! valid for that name as a DNS name too, and the name must be listed under
//! `cluster.peers` with a role allowed to use the service.

use crate::config::{ClusterTlsConfig, PeerConfig, PeerRole};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::sync::Arc;

/// This node's TLS material, checked: the CA, and a certificate signed by it
/// for this node's name with the matching key.
#[derive(Debug)]
pub struct NodeTls {
    /// This node's name (its certificate's CN and DNS name).
    pub name: String,
    roots: Arc<RootCertStore>,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

const VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// Checks the TLS files of a node at configuration time; `Err((key, why))`
/// names the `cluster.tls` key at fault.
pub fn check_files(tls: &ClusterTlsConfig, node: &str) -> Result<(), (&'static str, String)> {
    NodeTls::load(tls, node).map(|_| ())
}

impl NodeTls {
    /// Reads and checks the files; `Err((key, why))` names the `cluster.tls` key at fault.
    pub fn load(tls: &ClusterTlsConfig, node: &str) -> Result<NodeTls, (&'static str, String)> {
        let read = |key: &'static str, path: &std::path::Path| {
            std::fs::read(path).map_err(|e| {
                (
                    key,
                    format!(
                        "cannot read `{}`: {e}; `vflow cluster init` writes the CA and node certificates",
                        path.display()
                    ),
                )
            })
        };
        let ca = read("ca", &tls.ca)?;
        let cert = read("cert", &tls.cert)?;
        let key = read("key", &tls.key)?;
        NodeTls::from_pem(&ca, &cert, &key, node).map_err(|(k, why)| {
            let path = match k {
                "ca" => &tls.ca,
                "cert" => &tls.cert,
                _ => &tls.key,
            };
            (k, format!("`{}`: {why}", path.display()))
        })
    }

    /// The same from PEM text.
    pub fn from_pem(
        ca: &[u8],
        cert: &[u8],
        key: &[u8],
        node: &str,
    ) -> Result<NodeTls, (&'static str, String)> {
        let one_cert = |k: &'static str, pem: &[u8]| {
            let mut certs = CertificateDer::pem_slice_iter(pem);
            match (certs.next(), certs.next()) {
                (Some(Ok(c)), None) => Ok(c),
                (Some(Ok(_)), Some(_)) => Err((k, "holds more than one certificate".to_string())),
                (Some(Err(e)), _) => Err((k, format!("is not a PEM certificate ({e})"))),
                (None, _) => Err((k, "holds no PEM certificate".to_string())),
            }
        };
        let ca = one_cert("ca", ca)?;
        let cert = one_cert("cert", cert)?;
        let key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|e| ("key", format!("is not a PEM private key ({e})")))?;
        let mut roots = RootCertStore::empty();
        roots
            .add(ca.clone())
            .map_err(|e| ("ca", format!("is not a CA certificate ({e})")))?;
        let roots = Arc::new(roots);
        // The certificate must chain to the CA and name this node, as a peer will check.
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots.clone(), provider())
                .build()
                .map_err(|e| ("ca", format!("cannot be used as a trust anchor ({e})")))?;
        let server_name = ServerName::try_from(node.to_string())
            .map_err(|_| ("cert", format!("`{node}` is not a DNS name")))?;
        verifier
            .verify_server_cert(&cert, &[], &server_name, &[], UnixTime::now())
            .map_err(|e| {
                (
                    "cert",
                    format!(
                        "is not a valid certificate of this cluster's CA for node `{node}` ({e}); make one with `vflow cluster init --node {node}`"
                    ),
                )
            })?;
        match common_name(&cert) {
            Some(cn) if cn == node => {}
            Some(cn) => {
                return Err((
                    "cert",
                    format!("is node `{cn}`'s certificate, not `{node}`'s"),
                ));
            }
            None => return Err(("cert", "has no subject common name".to_string())),
        }
        rustls::sign::CertifiedKey::from_der(vec![cert.clone()], key.clone_key(), &provider())
            .map_err(|e| ("key", format!("does not belong to the certificate ({e})")))?;
        if is_admin(&cert) {
            return Err((
                "cert",
                "is an operator (`--admin`) certificate, not a node's".to_string(),
            ));
        }
        Ok(NodeTls {
            name: node.to_string(),
            roots,
            cert,
            key,
        })
    }

    /// An operator identity (`vflow cluster init --admin NAME`) for the
    /// control API's client side: the certificate must chain to `ca`, carry
    /// the operator mark and match `key`. Its name is its CN. Errors name the
    /// file at fault.
    pub fn load_admin(
        ca: &std::path::Path,
        cert: &std::path::Path,
        key: &std::path::Path,
    ) -> Result<NodeTls, String> {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| format!("cannot read `{}`: {e}", p.display()))
        };
        let (ca_pem, cert_pem, key_pem) = (read(ca)?, read(cert)?, read(key)?);
        let at = |p: &std::path::Path, why: String| format!("`{}`: {why}", p.display());
        let ca_der = CertificateDer::from_pem_slice(&ca_pem)
            .map_err(|e| at(ca, format!("is not a PEM certificate ({e})")))?;
        let cert_der = CertificateDer::from_pem_slice(&cert_pem)
            .map_err(|e| at(cert, format!("is not a PEM certificate ({e})")))?;
        let key_der = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| at(key, format!("is not a PEM private key ({e})")))?;
        if !is_admin(&cert_der) {
            return Err(at(
                cert,
                "is not an operator certificate; make one with `vflow cluster init --out DIR --admin NAME`".into(),
            ));
        }
        let name =
            common_name(&cert_der).ok_or_else(|| at(cert, "has no subject common name".into()))?;
        let mut roots = RootCertStore::empty();
        roots
            .add(ca_der)
            .map_err(|e| at(ca, format!("is not a CA certificate ({e})")))?;
        let roots = Arc::new(roots);
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            .build()
            .map_err(|e| at(ca, format!("cannot be used as a trust anchor ({e})")))?;
        verifier
            .verify_client_cert(&cert_der, &[], UnixTime::now())
            .map_err(|e| at(cert, format!("is not a certificate of this CA ({e})")))?;
        rustls::sign::CertifiedKey::from_der(
            vec![cert_der.clone()],
            key_der.clone_key(),
            &provider(),
        )
        .map_err(|e| at(key, format!("does not belong to the certificate ({e})")))?;
        Ok(NodeTls {
            name,
            roots,
            cert: cert_der,
            key: key_der,
        })
    }

    /// The server side: this node's certificate; a client certificate of the
    /// cluster CA is required.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, String> {
        let verifier = WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider())
            .build()
            .map_err(|e| format!("client verifier: {e}"))?;
        let cfg = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.cert.clone()], self.key.clone_key())
            .map_err(|e| format!("server certificate: {e}"))?;
        Ok(Arc::new(cfg))
    }

    /// The client side: only the cluster CA is trusted, and this node's
    /// certificate is presented.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, String> {
        let cfg = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)
            .map_err(|e| e.to_string())?
            .with_root_certificates(self.roots.clone())
            .with_client_auth_cert(vec![self.cert.clone()], self.key.clone_key())
            .map_err(|e| format!("client certificate: {e}"))?;
        Ok(Arc::new(cfg))
    }
}

/// Why an authenticated TLS client is still refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No certificate (cannot happen after a handshake with [`NodeTls::server_config`]).
    NoCertificate,
    /// The certificate has no readable subject CN.
    NoName,
    /// The certificate's CN is not valid as its DNS name too.
    NameMismatch(String),
    /// Not under `cluster.peers`.
    UnknownPeer(String),
    /// A configured peer whose role may not use this service.
    RoleNotAllowed(String, PeerRole),
    /// An operator certificate: never a node.
    Operator(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NoCertificate => write!(f, "no client certificate"),
            Refusal::NoName => write!(f, "the certificate has no subject common name"),
            Refusal::NameMismatch(n) => {
                write!(f, "the certificate's CN `{n}` is not among its DNS names")
            }
            Refusal::UnknownPeer(n) => write!(f, "node `{n}` is not a configured peer"),
            Refusal::RoleNotAllowed(n, r) => {
                write!(f, "peer `{n}` ({r:?}) may not use this service")
            }
            Refusal::Operator(n) => {
                write!(f, "`{n}` holds an operator certificate, not a node's")
            }
        }
    }
}

/// The configured peer that an authenticated TLS client is: its
/// certificate's CN, which must also be one of its DNS names, must be listed
/// in `peers` with a role that `allowed` accepts. The chain to the cluster CA
/// was verified by the handshake.
pub fn identify<'a>(
    certs: Option<&[CertificateDer<'_>]>,
    peers: &'a [PeerConfig],
    allowed: impl Fn(PeerRole) -> bool,
) -> Result<&'a PeerConfig, Refusal> {
    let cert = certs
        .and_then(|c| c.first())
        .ok_or(Refusal::NoCertificate)?;
    let name = common_name(cert).ok_or(Refusal::NoName)?;
    if is_admin(cert) {
        return Err(Refusal::Operator(name));
    }
    let parsed = rustls::server::ParsedCertificate::try_from(cert).map_err(|_| Refusal::NoName)?;
    let dns =
        ServerName::try_from(name.clone()).map_err(|_| Refusal::NameMismatch(name.clone()))?;
    rustls::client::verify_server_name(&parsed, &dns)
        .map_err(|_| Refusal::NameMismatch(name.clone()))?;
    let peer = peers
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| Refusal::UnknownPeer(name.clone()))?;
    if !allowed(peer.role) {
        return Err(Refusal::RoleNotAllowed(name, peer.role));
    }
    Ok(peer)
}

// ---- the subject CN, from DER -------------------------------------------------

/// One DER element: (tag, contents, the rest after it). Definite lengths of
/// up to four bytes; anything else is `None`.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
/// id-at-commonName, 2.5.4.3.
const CN_OID: &[u8] = &[0x55, 0x04, 0x03];

/// id-at-organizationalUnitName, 2.5.4.11.
const OU_OID: &[u8] = &[0x55, 0x04, 0x0b];

/// The subject common name of an X.509 certificate (the last CN if several).
pub fn common_name(cert: &[u8]) -> Option<String> {
    subject_attribute(cert, CN_OID)
}

/// Whether a certificate is an operator identity (`cluster init --admin`):
/// its subject's organizational unit is [`super::pki::ADMIN_OU`].
pub fn is_admin(cert: &[u8]) -> bool {
    subject_attribute(cert, OU_OID).as_deref() == Some(super::pki::ADMIN_OU)
}

/// A string attribute of a certificate's subject (the last if several).
fn subject_attribute(cert: &[u8], wanted: &[u8]) -> Option<String> {
    let (tag, certificate, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = tlv(certificate)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    // [0] version (optional), serial, signature algorithm, issuer, validity, subject.
    let (tag, _, after) = tlv(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    for _ in 0..4 {
        rest = tlv(rest)?.2;
    }
    let (tag, mut subject, _) = tlv(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut found = None;
    while !subject.is_empty() {
        let (tag, mut rdn, next) = tlv(subject)?;
        subject = next;
        if tag != SET {
            return None;
        }
        while !rdn.is_empty() {
            let (tag, atv, next) = tlv(rdn)?;
            rdn = next;
            if tag != SEQUENCE {
                return None;
            }
            let (tag, oid, value) = tlv(atv)?;
            if tag == OID && oid == wanted {
                let (vtag, v, _) = tlv(value)?;
                // UTF8String, PrintableString, IA5String, TeletexString (as Latin-1 ASCII).
                if matches!(vtag, 0x0c | 0x13 | 0x16 | 0x14) {
                    found = Some(std::str::from_utf8(v).ok()?.to_string());
                }
            }
        }
    }
    found
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cluster::pki::tests::cluster;
    use std::path::Path;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    pub(crate) fn node(dir: &Path, name: &str) -> NodeTls {
        NodeTls::load(
            &ClusterTlsConfig {
                ca: dir.join("ca.crt"),
                cert: dir.join(format!("{name}.crt")),
                key: dir.join(format!("{name}.key")),
            },
            name,
        )
        .unwrap()
    }

    /// `a` with `b`'s certificate and key (and `a`'s trust anchor).
    pub(crate) fn swap_identity(a: NodeTls, b: NodeTls) -> NodeTls {
        NodeTls {
            cert: b.cert,
            key: b.key,
            ..a
        }
    }

    fn peers() -> Vec<PeerConfig> {
        vec![
            PeerConfig {
                name: "site-1".into(),
                role: PeerRole::Distributed,
                smtp: None,
                control: None,
            },
            PeerConfig {
                name: "backup".into(),
                role: PeerRole::Backup,
                smtp: None,
                control: None,
            },
        ]
    }

    #[test]
    fn files_are_checked_against_each_other() {
        let d = cluster("tls-files", &["central", "site-1"]);
        let foreign = cluster("tls-files-foreign", &["central"]);
        let cfg = |ca: &Path, cert: &Path, key: &Path| ClusterTlsConfig {
            ca: ca.into(),
            cert: cert.into(),
            key: key.into(),
        };
        let ok = cfg(
            &d.join("ca.crt"),
            &d.join("central.crt"),
            &d.join("central.key"),
        );
        assert_eq!(NodeTls::load(&ok, "central").unwrap().name, "central");
        // Another node's certificate.
        let (k, why) = NodeTls::load(&ok, "site-1").unwrap_err();
        assert_eq!(k, "cert", "{why}");
        // Another CA's certificate.
        let e = NodeTls::load(
            &cfg(
                &d.join("ca.crt"),
                &foreign.join("central.crt"),
                &foreign.join("central.key"),
            ),
            "central",
        )
        .unwrap_err();
        assert_eq!(e.0, "cert", "{}", e.1);
        // A key that is not the certificate's.
        let e = NodeTls::load(
            &cfg(
                &d.join("ca.crt"),
                &d.join("central.crt"),
                &d.join("site-1.key"),
            ),
            "central",
        )
        .unwrap_err();
        assert_eq!(e.0, "key", "{}", e.1);
        // Not PEM, missing.
        let e = NodeTls::load(
            &cfg(
                &d.join("central.key"),
                &d.join("central.crt"),
                &d.join("central.key"),
            ),
            "central",
        )
        .unwrap_err();
        assert_eq!(e.0, "ca", "{}", e.1);
        let e = NodeTls::load(
            &cfg(
                &d.join("ca.crt"),
                &d.join("nope.crt"),
                &d.join("central.key"),
            ),
            "central",
        )
        .unwrap_err();
        assert!(e.0 == "cert" && e.1.contains("nope.crt"), "{}", e.1);
    }

    #[test]
    fn the_common_name_is_read_and_garbage_is_none() {
        let d = cluster("tls-cn", &["site-1"]);
        let pem = std::fs::read(d.join("site-1.crt")).unwrap();
        let der = CertificateDer::from_pem_slice(&pem).unwrap();
        assert_eq!(common_name(&der).as_deref(), Some("site-1"));
        let ca = CertificateDer::from_pem_slice(&std::fs::read(d.join("ca.crt")).unwrap()).unwrap();
        assert_eq!(common_name(&ca).as_deref(), Some("vflow cluster CA"));
        for cut in [0, 1, 2, 10, 100, der.len() - 1] {
            let _ = common_name(&der[..cut]);
        }
        assert_eq!(common_name(&[]), None);
        assert_eq!(common_name(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        let mut flipped = der.to_vec();
        for i in 0..flipped.len() {
            flipped[i] ^= 0xff;
            let _ = common_name(&flipped);
            flipped[i] ^= 0xff;
        }
    }

    #[test]
    fn identify_maps_a_certificate_to_a_configured_peer() {
        let d = cluster("tls-identify", &["site-1", "stranger", "central"]);
        let der = |n: &str| {
            CertificateDer::from_pem_slice(&std::fs::read(d.join(format!("{n}.crt"))).unwrap())
                .unwrap()
        };
        let peers = peers();
        let forwarders = |r: PeerRole| matches!(r, PeerRole::Backup | PeerRole::Distributed);
        let site = [der("site-1")];
        assert_eq!(
            identify(Some(&site), &peers, forwarders).unwrap().name,
            "site-1"
        );
        let stranger = [der("stranger")];
        assert_eq!(
            identify(Some(&stranger), &peers, forwarders).unwrap_err(),
            Refusal::UnknownPeer("stranger".into())
        );
        assert_eq!(
            identify(Some(&site), &peers, |r| r == PeerRole::Backup).unwrap_err(),
            Refusal::RoleNotAllowed("site-1".into(), PeerRole::Distributed)
        );
        assert_eq!(
            identify(None, &peers, forwarders).unwrap_err(),
            Refusal::NoCertificate
        );
    }

    /// A handshake over an in-memory pipe: the server's verdict and the
    /// client's peer name as the server saw it.
    async fn handshake(
        server: Arc<ServerConfig>,
        client: Arc<ClientConfig>,
        server_name: &str,
    ) -> (Result<Option<String>, String>, Result<(), String>) {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let acceptor = tokio_rustls::TlsAcceptor::from(server);
        let connector = tokio_rustls::TlsConnector::from(client);
        let name = ServerName::try_from(server_name.to_string()).unwrap();
        let srv = async move {
            let mut s = acceptor.accept(a).await.map_err(|e| e.to_string())?;
            // TLS 1.3: the client's certificate is checked when its Finished
            // arrives; read one byte to be sure the handshake completed.
            let mut byte = [0u8; 1];
            s.read_exact(&mut byte).await.map_err(|e| e.to_string())?;
            let cn = s
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| common_name(c));
            Ok(cn)
        };
        let cli = async move {
            let mut c = connector
                .connect(name, b)
                .await
                .map_err(|e| e.to_string())?;
            c.write_all(b"x").await.map_err(|e| e.to_string())?;
            c.flush().await.map_err(|e| e.to_string())?;
            // Wait for the server to finish with us (or refuse).
            let mut buf = [0u8; 1];
            let _ = c.read(&mut buf).await;
            Ok(())
        };
        let (s, c) = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            tokio::join!(srv, cli)
        })
        .await
        .expect("the handshake ends");
        (s, c)
    }

    #[tokio::test]
    async fn mutual_tls_accepts_only_the_cluster_ca_on_both_sides() {
        let d = cluster("tls-mutual", &["central", "site-1"]);
        let foreign = cluster("tls-mutual-foreign", &["central", "site-1"]);
        let central = node(&d, "central");
        let site = node(&d, "site-1");

        // Both from the cluster CA: the server sees site-1.
        let (s, c) = handshake(
            central.server_config().unwrap(),
            site.client_config().unwrap(),
            "central",
        )
        .await;
        assert_eq!(s, Ok(Some("site-1".to_string())));
        assert_eq!(c, Ok(()));

        // A client certificate from a foreign CA: refused by the server.
        let intruder = NodeTls {
            roots: central.roots.clone(),
            ..node(&foreign, "site-1")
        };
        let (s, _) = handshake(
            central.server_config().unwrap(),
            intruder.client_config().unwrap(),
            "central",
        )
        .await;
        let e = s.unwrap_err();
        assert!(
            e.contains("UnknownIssuer") || e.contains("certificate"),
            "{e}"
        );

        // A client with no certificate at all: refused (client auth is mandatory).
        let anonymous = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)
            .unwrap()
            .with_root_certificates(central.roots.clone())
            .with_no_client_auth();
        let (s, _) = handshake(
            central.server_config().unwrap(),
            Arc::new(anonymous),
            "central",
        )
        .await;
        let e = s.unwrap_err();
        assert!(e.to_lowercase().contains("certificate"), "{e}");

        // A server with a foreign certificate: refused by our client.
        let impostor = node(&foreign, "central");
        let (_, c) = handshake(
            impostor.server_config().unwrap(),
            site.client_config().unwrap(),
            "central",
        )
        .await;
        let e = c.unwrap_err();
        assert!(
            e.contains("UnknownIssuer") || e.contains("certificate"),
            "{e}"
        );

        // The right CA but the wrong name: a client going to `central` gets site-1.
        let (_, c) = handshake(
            site.server_config().unwrap(),
            central.client_config().unwrap(),
            "central",
        )
        .await;
        let e = c.unwrap_err();
        assert!(e.contains("NotValidForName") || e.contains("name"), "{e}");
    }
}
