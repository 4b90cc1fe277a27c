//! The RTP port range as a pool of free even ports.
//!
//! A call takes a port in O(1) and gives it back when its socket closes;
//! with every port taken, the next call is refused at once (503) instead of
//! trying a bind on each port of the range — which at thousands of ports
//! cost tens of milliseconds per refused call, just when the server is
//! busiest. Freed ports go to the back of the queue, so a port is reused as
//! late as possible (stray packets of an old call do not reach a new one).
//! A port some other process holds fails its bind and goes to the back too.

use crate::config::PortRange;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;

/// Binds tried for one call before giving up (ports held by other processes).
const BIND_ATTEMPTS: usize = 16;

pub struct RtpPorts {
    ip: IpAddr,
    free: Mutex<VecDeque<u16>>,
    /// Calls refused since the last report, and when that was: under
    /// overload a log line per refused call would flood the log.
    refused: Mutex<(u64, Option<std::time::Instant>)>,
}

impl RtpPorts {
    /// Every even port of `range` on `ip`, starting at a random offset so
    /// that a restarted server does not reuse the ports of the calls it just
    /// ended first.
    pub fn new(ip: IpAddr, range: PortRange, seed: u64) -> Arc<RtpPorts> {
        let first = range.first + range.first % 2;
        let mut free: VecDeque<u16> = (first..=range.last).step_by(2).collect();
        if !free.is_empty() {
            let start = (seed % free.len() as u64) as usize;
            free.rotate_left(start);
        }
        Arc::new(RtpPorts {
            ip,
            free: Mutex::new(free),
            refused: Mutex::new((0, None)),
        })
    }

    /// Counts a call refused for want of a port; returns how many to report
    /// when the last report is a second old (or there was none).
    pub fn refusal_to_report(&self) -> Option<u64> {
        let mut r = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        r.0 += 1;
        let now = std::time::Instant::now();
        if r.1
            .is_some_and(|t| now.duration_since(t) < std::time::Duration::from_secs(1))
        {
            return None;
        }
        let n = std::mem::take(&mut r.0);
        r.1 = Some(now);
        Some(n)
    }

    /// Ports not in use by a call now.
    #[cfg(test)]
    fn available(&self) -> usize {
        self.queue().len()
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<u16>> {
        self.free.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A socket on a free port; `AddrInUse` when every port is taken.
    pub fn bind(self: &Arc<Self>) -> std::io::Result<RtpSocket> {
        for _ in 0..BIND_ATTEMPTS {
            let Some(port) = self.queue().pop_front() else {
                break;
            };
            match std::net::UdpSocket::bind(SocketAddr::new(self.ip, port))
                .and_then(|s| s.set_nonblocking(true).map(|()| s))
                .and_then(UdpSocket::from_std)
            {
                Ok(socket) => {
                    return Ok(RtpSocket {
                        socket: Some(socket),
                        port,
                        pool: self.clone(),
                    });
                }
                Err(_) => self.queue().push_back(port),
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "every RTP port of the range is in use (widen `rtp.ports`)",
        ))
    }
}

/// A call's RTP socket; its port goes back to the pool when it is dropped.
pub struct RtpSocket {
    socket: Option<UdpSocket>,
    port: u16,
    pool: Arc<RtpPorts>,
}

impl std::ops::Deref for RtpSocket {
    type Target = UdpSocket;
    fn deref(&self) -> &UdpSocket {
        self.socket.as_ref().expect("present until dropped")
    }
}

impl Drop for RtpSocket {
    fn drop(&mut self) {
        // Closed first, so the next call to take the port can bind it.
        drop(self.socket.take());
        self.pool.queue().push_back(self.port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn pool(first: u16, last: u16) -> Arc<RtpPorts> {
        RtpPorts::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            PortRange { first, last },
            0,
        )
    }

    #[tokio::test]
    async fn ports_are_even_distinct_returned_on_drop_and_refused_when_gone() {
        let p = pool(41_001, 41_010); // even ports 41002..=41010: five
        assert_eq!(p.available(), 5);
        let socks: Vec<RtpSocket> = (0..5).map(|_| p.bind().unwrap()).collect();
        let mut ports: Vec<u16> = socks
            .iter()
            .map(|s| s.local_addr().unwrap().port())
            .collect();
        ports.sort();
        assert_eq!(ports, [41_002, 41_004, 41_006, 41_008, 41_010]);
        let e = p.bind().err().expect("all taken");
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
        assert!(e.to_string().contains("rtp.ports"), "{e}");
        let freed = socks[2].local_addr().unwrap().port();
        drop(socks);
        assert_eq!(p.available(), 5);
        // The freed port is bindable again (the socket closed before it came back).
        let again: Vec<RtpSocket> = (0..5).map(|_| p.bind().unwrap()).collect();
        assert!(
            again
                .iter()
                .any(|s| s.local_addr().unwrap().port() == freed)
        );
    }

    #[test]
    fn refusals_are_reported_at_most_once_a_second() {
        let p = pool(41_200, 41_200);
        assert_eq!(p.refusal_to_report(), Some(1));
        assert_eq!(p.refusal_to_report(), None);
        assert_eq!(p.refusal_to_report(), None);
        p.refused.lock().unwrap().1 =
            Some(std::time::Instant::now() - std::time::Duration::from_secs(2));
        assert_eq!(
            p.refusal_to_report(),
            Some(3),
            "the ones held back come with the next report"
        );
    }

    #[tokio::test]
    async fn a_port_held_by_another_process_is_skipped() {
        let p = pool(41_100, 41_104);
        let _other = std::net::UdpSocket::bind("127.0.0.1:41100").unwrap();
        let a = p.bind().unwrap();
        let b = p.bind().unwrap();
        let mut got = [
            a.local_addr().unwrap().port(),
            b.local_addr().unwrap().port(),
        ];
        got.sort();
        assert_eq!(got, [41_102, 41_104]);
        assert!(p.bind().is_err(), "the held port is not handed out");
        assert_eq!(p.available(), 1, "it stays in the pool for later");
    }
}
