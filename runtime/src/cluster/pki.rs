//! The cluster's small CA (`vflow cluster init`): one self-signed CA and, per
//! node, a certificate it signs. rcgen with the ring backend (ECDSA P-256).
//!
//! A node certificate names the node twice: as its subject CN (how the
//! receiving side identifies the peer) and as a DNS subject alternative name
//! (what a connecting side verifies, as for any TLS server), plus the hosts
//! and addresses it is reached at. It is good for both server and client
//! authentication, since every node is both. Private keys are written mode
//! 0600, each file through a temporary name and a rename, so a crash leaves
//! either the old file or the new one.
//!
//! The CA's subject is fixed, so an existing CA (its key) can sign more node
//! certificates later without parsing its certificate back.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::fs;
use std::path::{Path, PathBuf};

/// The CA certificate's file name in the output directory.
pub const CA_CERT: &str = "ca.crt";
/// The CA key's file name; it stays where certificates are made, not on nodes.
pub const CA_KEY: &str = "ca.key";
/// The CA's subject common name.
pub const CA_NAME: &str = "vflow cluster CA";

/// One node to certify: its name and the hosts/addresses it is reached at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: String,
    pub hosts: Vec<String>,
    /// An operator identity (`--admin`), not a node: client authentication
    /// only, marked by [`ADMIN_OU`], accepted by the control API for deploy
    /// and status and by nothing else.
    pub admin: bool,
}

/// The subject organizational unit that marks an operator certificate.
pub const ADMIN_OU: &str = "vflow-admin";

impl NodeSpec {
    /// `NAME` or `NAME=host,host…`; without hosts: 127.0.0.1 and localhost.
    pub fn parse(s: &str) -> Result<NodeSpec, String> {
        let (name, hosts) = match s.split_once('=') {
            Some((n, h)) => (
                n.trim(),
                h.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect::<Vec<_>>(),
            ),
            None => (s.trim(), Vec::new()),
        };
        super::check_node_name(name).map_err(|why| format!("node `{name}`: {why}"))?;
        let hosts = if hosts.is_empty() {
            vec!["127.0.0.1".to_string(), "localhost".to_string()]
        } else {
            hosts
        };
        for h in &hosts {
            if h.parse::<std::net::IpAddr>().is_err() && super::check_node_name(h).is_err() {
                return Err(format!(
                    "node `{name}`: `{h}` is neither an IP address nor a DNS name"
                ));
            }
        }
        Ok(NodeSpec {
            name: name.to_string(),
            hosts,
            admin: false,
        })
    }

    /// An operator identity `NAME` (no hosts: it is never a server).
    pub fn parse_admin(s: &str) -> Result<NodeSpec, String> {
        let name = s.trim();
        super::check_node_name(name).map_err(|why| format!("admin `{name}`: {why}"))?;
        Ok(NodeSpec {
            name: name.to_string(),
            hosts: Vec::new(),
            admin: true,
        })
    }
}

/// What [`init`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// Whether a new CA was made (else the existing one signed).
    pub new_ca: bool,
    pub files: Vec<PathBuf>,
}

/// Makes (or, with `force`, replaces) the CA in `out` and certifies `nodes`
/// for `days`. An existing CA is reused to sign new nodes unless `force`; an
/// existing node certificate is never overwritten unless `force`.
pub fn init(out: &Path, nodes: &[NodeSpec], days: u32, force: bool) -> Result<Written, String> {
    let mut seen = std::collections::HashSet::new();
    for n in nodes {
        if !seen.insert(n.name.as_str()) {
            return Err(format!("node `{}` is given twice", n.name));
        }
        if n.name == "ca" {
            return Err("`ca` would overwrite the CA's own files; pick another node name".into());
        }
    }
    fs::create_dir_all(out).map_err(|e| format!("cannot create `{}`: {e}", out.display()))?;
    let ca_cert = out.join(CA_CERT);
    let ca_key = out.join(CA_KEY);
    let mut written = Written::default();
    let key = if ca_cert.exists() && !force {
        if !ca_key.exists() {
            return Err(format!(
                "`{}` exists without its key `{}`; give --force to make a new CA (every node then needs a new certificate)",
                ca_cert.display(),
                ca_key.display()
            ));
        }
        if nodes.is_empty() {
            return Err(format!(
                "a CA already exists in `{}`; give --node NAME to certify more nodes with it, or --force to replace it (every node then needs a new certificate)",
                out.display()
            ));
        }
        let pem = fs::read_to_string(&ca_key)
            .map_err(|e| format!("cannot read `{}`: {e}", ca_key.display()))?;
        KeyPair::from_pem(&pem)
            .map_err(|e| format!("`{}` is not a private key: {e}", ca_key.display()))?
    } else {
        let key = KeyPair::generate().map_err(|e| format!("cannot make a key: {e}"))?;
        let cert = ca_params(3650)
            .self_signed(&key)
            .map_err(|e| format!("cannot make the CA certificate: {e}"))?;
        write_file(&ca_key, key.serialize_pem().as_bytes(), true)?;
        write_file(&ca_cert, cert.pem().as_bytes(), false)?;
        written.new_ca = true;
        written.files.extend([ca_cert.clone(), ca_key.clone()]);
        key
    };
    let issuer = Issuer::new(ca_params(3650), &key);
    for n in nodes {
        let crt = out.join(format!("{}.crt", n.name));
        let key_path = out.join(format!("{}.key", n.name));
        if !force && !written.new_ca && (crt.exists() || key_path.exists()) {
            return Err(format!(
                "`{}` already exists; give --force to re-issue it",
                crt.display()
            ));
        }
        let node_key = KeyPair::generate().map_err(|e| format!("cannot make a key: {e}"))?;
        let cert = node_params(n, days)?
            .signed_by(&node_key, &issuer)
            .map_err(|e| format!("cannot certify `{}`: {e}", n.name))?;
        write_file(&key_path, node_key.serialize_pem().as_bytes(), true)?;
        write_file(&crt, cert.pem().as_bytes(), false)?;
        written.files.extend([crt, key_path]);
    }
    Ok(written)
}

/// Today (UTC) moved by `days`: (year, month, day).
fn date(days: i64) -> (i32, u8, u8) {
    let d = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date()
        .checked_add(jiff::Span::new().days(days))
        .unwrap_or(jiff::civil::date(2099, 1, 1));
    (i32::from(d.year()), d.month() as u8, d.day() as u8)
}

/// Sets the validity: from yesterday (clock skew between nodes) for `days`.
fn validity(p: &mut CertificateParams, days: u32) {
    let (y, m, d) = date(-1);
    p.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = date(i64::from(days));
    p.not_after = rcgen::date_time_ymd(y, m, d);
}

fn ca_params(days: u32) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    dn.push(DnType::OrganizationName, "vflow");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut p, days);
    p
}

fn node_params(n: &NodeSpec, days: u32) -> Result<CertificateParams, String> {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, n.name.as_str());
    dn.push(DnType::OrganizationName, "vflow");
    if n.admin {
        dn.push(DnType::OrganizationalUnitName, ADMIN_OU);
    }
    p.distinguished_name = dn;
    let dns = |s: &str| {
        s.to_string()
            .try_into()
            .map(SanType::DnsName)
            .map_err(|e| format!("`{s}`: {e}"))
    };
    let mut sans = vec![dns(&n.name)?];
    for h in &n.hosts {
        let san = match h.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => dns(h)?,
        };
        if !sans.contains(&san) {
            sans.push(san);
        }
    }
    p.subject_alt_names = sans;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // An operator only ever connects; a node is server and client.
    p.extended_key_usages = if n.admin {
        vec![ExtendedKeyUsagePurpose::ClientAuth]
    } else {
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ]
    };
    p.use_authority_key_identifier_extension = true;
    validity(&mut p, days);
    Ok(p)
}

/// Writes whole or not at all (temp file, fsync, rename, directory fsync);
/// `secret`: mode 0600 from the start.
fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), String> {
    crate::bundles::write_atomic(path, bytes, if secret { 0o600 } else { 0o644 })
        .map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    pub(crate) fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vflow-pki-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    /// A CA and certificates for `nodes` in a fresh directory.
    pub(crate) fn cluster(name: &str, nodes: &[&str]) -> PathBuf {
        let d = temp(name);
        let specs: Vec<NodeSpec> = nodes.iter().map(|n| NodeSpec::parse(n).unwrap()).collect();
        init(&d, &specs, 30, false).unwrap();
        d
    }

    #[test]
    fn admin_certificates_are_marked_and_client_only() {
        let d = cluster("admin", &["central"]);
        init(&d, &[NodeSpec::parse_admin("ops").unwrap()], 30, false).unwrap();
        let der = |n: &str| {
            use rustls::pki_types::{CertificateDer, pem::PemObject};
            CertificateDer::from_pem_slice(&fs::read(d.join(format!("{n}.crt"))).unwrap()).unwrap()
        };
        assert!(crate::cluster::tls::is_admin(&der("ops")));
        assert!(!crate::cluster::tls::is_admin(&der("central")));
        let admin = crate::cluster::tls::NodeTls::load_admin(
            &d.join("ca.crt"),
            &d.join("ops.crt"),
            &d.join("ops.key"),
        )
        .unwrap();
        assert_eq!(admin.name, "ops");
        // A node certificate is not an operator identity, and vice versa.
        let e = crate::cluster::tls::NodeTls::load_admin(
            &d.join("ca.crt"),
            &d.join("central.crt"),
            &d.join("central.key"),
        )
        .unwrap_err();
        assert!(e.contains("--admin"), "{e}");
        let tls = crate::config::ClusterTlsConfig {
            ca: d.join("ca.crt"),
            cert: d.join("ops.crt"),
            key: d.join("ops.key"),
        };
        assert!(crate::cluster::tls::NodeTls::load(&tls, "ops").is_err());
    }

    #[test]
    fn node_specs() {
        assert_eq!(
            NodeSpec::parse("central").unwrap().hosts,
            ["127.0.0.1", "localhost"]
        );
        let n = NodeSpec::parse("site-1=10.0.0.5,vm1.example.org").unwrap();
        assert_eq!((n.name.as_str(), n.hosts.len()), ("site-1", 2));
        assert!(NodeSpec::parse("Site").is_err());
        assert!(NodeSpec::parse("a=not a host").is_err());
    }

    #[test]
    fn init_writes_a_ca_and_node_files_with_private_keys_0600() {
        let d = cluster("init", &["central", "site-1"]);
        for f in [
            "ca.crt",
            "ca.key",
            "central.crt",
            "central.key",
            "site-1.crt",
            "site-1.key",
        ] {
            let meta = fs::metadata(d.join(f)).unwrap();
            let mode = meta.permissions().mode() & 0o777;
            if f.ends_with(".key") {
                assert_eq!(mode, 0o600, "{f}");
            } else {
                assert_eq!(mode, 0o644, "{f}");
            }
        }
        let pem = fs::read_to_string(d.join("central.crt")).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(!d.join("central.tmp").exists());
    }

    #[test]
    fn an_existing_ca_is_kept_unless_forced_and_signs_new_nodes() {
        let d = cluster("keep", &["central"]);
        let ca = fs::read(d.join(CA_CERT)).unwrap();
        let e = init(&d, &[], 30, false).unwrap_err();
        assert!(e.contains("--force"), "{e}");
        // More nodes with the same CA.
        let w = init(&d, &[NodeSpec::parse("site-2").unwrap()], 30, false).unwrap();
        assert!(!w.new_ca);
        assert_eq!(fs::read(d.join(CA_CERT)).unwrap(), ca);
        // Not the same node twice without --force.
        let e = init(&d, &[NodeSpec::parse("central").unwrap()], 30, false).unwrap_err();
        assert!(e.contains("central.crt") && e.contains("--force"), "{e}");
        // --force: a new CA.
        let w = init(&d, &[NodeSpec::parse("central").unwrap()], 30, true).unwrap();
        assert!(w.new_ca);
        assert_ne!(fs::read(d.join(CA_CERT)).unwrap(), ca);
        assert!(init(&d, &[NodeSpec::parse("ca").unwrap()], 30, true).is_err());
    }
}
