//! Who may talk to us: trusted peers by CIDR, and a per-source token bucket
//! with temporary bans. Both are pure data structures driven by `now`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// An IP network, `192.0.2.0/24` or `2001:db8::/32` (a bare address is a
/// host route).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // Treat IPv4-mapped IPv6 sources as IPv4 (dual-stack sockets).
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrError(pub String);

impl std::fmt::Display for CidrError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not an address or CIDR: {:?}", self.0)
    }
}

impl std::error::Error for CidrError {}

impl FromStr for Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let err = || CidrError(s.to_string());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| err())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(err)?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

/// Token-bucket limits per source IP.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimit {
    /// Sustained messages per second.
    pub per_second: f64,
    /// Bucket size (messages that may arrive at once).
    pub burst: f64,
    /// How long a source that empties its bucket is ignored.
    pub ban_for: Duration,
    /// Apply to trusted peers too (a PBX may legitimately send thousands
    /// of messages per second; off by default).
    pub limit_trusted: bool,
    /// Most sources tracked at once; beyond it new untrusted sources are
    /// dropped until the sweep frees entries.
    pub max_sources: usize,
}

impl Default for RateLimit {
    fn default() -> RateLimit {
        RateLimit {
            per_second: 20.0,
            burst: 40.0,
            ban_for: Duration::from_secs(60),
            limit_trusted: false,
            max_sources: 65_536,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    banned_until: Option<Instant>,
}

/// The verdict for one incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Trusted source: process normally.
    Trusted,
    /// Untrusted source within its rate: answer requests with 403.
    Untrusted,
    /// Drop silently (banned, over the limit, or the table is full).
    Drop,
}

#[derive(Debug)]
pub struct Guard {
    trusted: Vec<Cidr>,
    limit: Option<RateLimit>,
    buckets: HashMap<IpAddr, Bucket>,
}

impl Guard {
    pub fn new(trusted: Vec<Cidr>, limit: Option<RateLimit>) -> Guard {
        Guard {
            trusted,
            limit,
            buckets: HashMap::new(),
        }
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|c| c.contains(ip))
    }

    pub fn admit(&mut self, now: Instant, ip: IpAddr) -> Admit {
        let trusted = self.is_trusted(ip);
        let verdict = if trusted {
            Admit::Trusted
        } else {
            Admit::Untrusted
        };
        let Some(limit) = &self.limit else {
            return verdict;
        };
        if trusted && !limit.limit_trusted {
            return verdict;
        }
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= limit.max_sources {
            return if trusted { verdict } else { Admit::Drop };
        }
        let b = self.buckets.entry(ip).or_insert(Bucket {
            tokens: limit.burst,
            last: now,
            banned_until: None,
        });
        if let Some(until) = b.banned_until {
            if now < until {
                return Admit::Drop;
            }
            b.banned_until = None;
            b.tokens = limit.burst;
        }
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * limit.per_second).min(limit.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            verdict
        } else {
            b.banned_until = Some(now + limit.ban_for);
            Admit::Drop
        }
    }

    /// Forgets sources whose bucket is full again and that are not banned.
    /// O(sources); the endpoint calls it every few seconds, not per packet.
    pub fn sweep(&mut self, now: Instant) {
        let Some(limit) = &self.limit else { return };
        let refill = Duration::from_secs_f64(limit.burst / limit.per_second.max(0.001));
        self.buckets.retain(|_, b| match b.banned_until {
            Some(until) => now < until,
            None => now.saturating_duration_since(b.last) < refill,
        });
    }

    pub fn tracked_sources(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let c: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.9.9".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let host: Cidr = "::1".parse().unwrap();
        assert!(host.contains("::1".parse().unwrap()));
        assert!(!host.contains("::2".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
    }

    #[test]
    fn bucket_bans_and_recovers() {
        let limit = RateLimit {
            per_second: 1.0,
            burst: 3.0,
            ban_for: Duration::from_secs(10),
            ..RateLimit::default()
        };
        let mut g = Guard::new(vec!["127.0.0.1".parse().unwrap()], Some(limit));
        let now = Instant::now();
        let bad: IpAddr = "203.0.113.9".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(g.admit(now, bad), Admit::Untrusted);
        }
        assert_eq!(g.admit(now, bad), Admit::Drop);
        // Banned even after tokens would have refilled.
        assert_eq!(g.admit(now + Duration::from_secs(5), bad), Admit::Drop);
        assert_eq!(
            g.admit(now + Duration::from_secs(11), bad),
            Admit::Untrusted
        );
        // Trusted sources are not limited by default.
        for _ in 0..100 {
            assert_eq!(g.admit(now, "127.0.0.1".parse().unwrap()), Admit::Trusted);
        }
        g.sweep(now + Duration::from_secs(100));
        assert_eq!(g.tracked_sources(), 0);
    }
}
