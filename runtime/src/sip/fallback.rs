//! The fallback controller (DESIGN.md §5): a node may take calls from more
//! than one PBX (`sip.pbx_peers`, in order of preference) — a main PBX and
//! the one that assumes control when it fails. Lamps must go to whichever
//! controls the node now.
//!
//! The rule, sans-IO: the active controller is the configured PBX that sent
//! the most recent INVITE, OPTIONS or SUBSCRIBE (a PBX in control keeps
//! probing or using its voicemail; one that has failed sends nothing).
//! Before any such request it is the first configured PBX. A source matches
//! a PBX by address and port; failing that, by address alone (TCP requests
//! come from an ephemeral port), the first such PBX in the list.
//!
//! An unsolicited MWI NOTIFY whose target (a mailbox's `mwi`) is one of the
//! configured PBXs goes to the active one instead, with the same user in
//! its Request-URI ([`Controller::redirect`]); a target that is no PBX (a
//! phone) is left alone. Every PBX listed is also a trusted SIP peer.

use std::net::SocketAddr;

/// One PBX the node accepts calls from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PbxPeer {
    pub name: String,
    pub addr: SocketAddr,
}

/// Which PBX controls this node now.
#[derive(Debug, Clone, Default)]
pub struct Controller {
    peers: Vec<PbxPeer>,
    /// Index into `peers`.
    active: usize,
}

impl Controller {
    pub fn new(peers: Vec<PbxPeer>) -> Controller {
        Controller { peers, active: 0 }
    }

    pub fn peers(&self) -> &[PbxPeer] {
        &self.peers
    }

    /// The active controller (`None` when no PBX is configured).
    pub fn active(&self) -> Option<&PbxPeer> {
        self.peers.get(self.active)
    }

    /// The configured PBX `from` is, by the rule in the module docs.
    fn index_of(&self, from: SocketAddr) -> Option<usize> {
        let ip = canonical(from.ip());
        self.peers
            .iter()
            .position(|p| canonical(p.addr.ip()) == ip && p.addr.port() == from.port())
            .or_else(|| self.peers.iter().position(|p| canonical(p.addr.ip()) == ip))
    }

    /// An INVITE, OPTIONS or SUBSCRIBE arrived from `from`; the new active
    /// controller when it changed.
    pub fn observe(&mut self, from: SocketAddr) -> Option<&PbxPeer> {
        let i = self.index_of(from)?;
        if i == self.active {
            return None;
        }
        self.active = i;
        self.peers.get(i)
    }

    /// Where an unsolicited NOTIFY for the target `to` / `uri` goes: to the
    /// active controller when `to` is a configured PBX (the Request-URI's
    /// user kept, its host and port the active PBX's), else unchanged.
    pub fn redirect(&self, to: SocketAddr, uri: &str) -> (SocketAddr, String) {
        let (Some(active), Some(_)) = (self.active(), self.index_of(to)) else {
            return (to, uri.to_string());
        };
        if active.addr == to {
            return (to, uri.to_string());
        }
        let user = crate::sip::header::Uri::parse(uri)
            .and_then(|u| u.user)
            .unwrap_or_default();
        let uri = if user.is_empty() {
            format!("sip:{}", active.addr)
        } else {
            format!("sip:{}@{}", escape_user(&user), active.addr)
        };
        (active.addr, uri)
    }
}

/// IPv4-mapped IPv6 as IPv4 (dual-stack sockets).
fn canonical(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    }
}

/// A URI user part back to its escaped form (RFC 3261 §25.1 `user`).
fn escape_user(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for b in user.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn two() -> Controller {
        Controller::new(vec![
            PbxPeer {
                name: "main".into(),
                addr: a("127.0.0.1:5070"),
            },
            PbxPeer {
                name: "fallback".into(),
                addr: a("127.0.0.1:5080"),
            },
        ])
    }

    #[test]
    fn the_first_pbx_until_another_sends_a_request() {
        let mut c = two();
        assert_eq!(c.active().unwrap().name, "main");
        assert_eq!(c.observe(a("127.0.0.1:5070")), None, "already active");
        assert_eq!(c.observe(a("127.0.0.1:5080")).unwrap().name, "fallback");
        assert_eq!(c.observe(a("127.0.0.1:5080")), None);
        assert_eq!(c.active().unwrap().name, "fallback");
        // The main PBX is back: its next request makes it active again.
        assert_eq!(c.observe(a("127.0.0.1:5070")).unwrap().name, "main");
    }

    #[test]
    fn other_sources_change_nothing() {
        let mut c = two();
        c.observe(a("127.0.0.1:5080"));
        assert_eq!(c.observe(a("10.0.0.9:5060")), None);
        assert_eq!(c.active().unwrap().name, "fallback");
        // Same address, unknown port (TCP): the first PBX on that address.
        let mut c = two();
        c.observe(a("127.0.0.1:5080"));
        assert_eq!(c.observe(a("127.0.0.1:40000")).unwrap().name, "main");
        // IPv4-mapped IPv6 is the same source.
        assert_eq!(
            c.observe(a("[::ffff:127.0.0.1]:5080")).unwrap().name,
            "fallback"
        );
    }

    #[test]
    fn no_pbx_configured() {
        let mut c = Controller::new(Vec::new());
        assert!(c.active().is_none());
        assert_eq!(c.observe(a("127.0.0.1:5070")), None);
        assert_eq!(
            c.redirect(a("192.0.2.5:5060"), "sip:201@192.0.2.5:5060"),
            (a("192.0.2.5:5060"), "sip:201@192.0.2.5:5060".to_string())
        );
    }

    #[test]
    fn lamps_for_a_pbx_go_to_the_active_one() {
        let mut c = two();
        let main = (a("127.0.0.1:5070"), "sip:201@127.0.0.1:5070".to_string());
        assert_eq!(c.redirect(main.0, &main.1), main, "main is active");
        c.observe(a("127.0.0.1:5080"));
        assert_eq!(
            c.redirect(main.0, &main.1),
            (a("127.0.0.1:5080"), "sip:201@127.0.0.1:5080".to_string())
        );
        // A phone is not a PBX: untouched.
        let phone = (a("192.0.2.7:5060"), "sip:201@192.0.2.7".to_string());
        assert_eq!(c.redirect(phone.0, &phone.1), phone);
        // Users that need escaping keep it.
        assert_eq!(
            c.redirect(main.0, "sip:a%20b@127.0.0.1:5070").1,
            "sip:a%20b@127.0.0.1:5080"
        );
    }
}
