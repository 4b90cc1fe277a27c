//! Malformed and tortuous SIP never panics the endpoint, gets the response
//! RFC 4475 asks for (see `fixtures/sip/expected.txt`), and leaves it able to
//! answer OPTIONS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use vflow_runtime::sip::framing::{Frame, StreamFramer};
use vflow_runtime::sip::message::{self, Message};
use vflow_runtime::sip::{Config, ConnId, Endpoint, Event, Transport};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sip")
}

fn peer() -> SocketAddr {
    "127.0.0.1:5062".parse().unwrap()
}

fn endpoint() -> Endpoint {
    Endpoint::new(Config::new("127.0.0.1:5060".parse().unwrap()))
}

/// What the endpoint said: response statuses and `call` for IncomingCall.
fn outcome(ep: &mut Endpoint) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(t) = ep.poll_transmit() {
        match message::parse(&t.bytes, true) {
            Ok(Message::Response(r)) => out.push(r.status.to_string()),
            Ok(Message::Request(r)) => out.push(r.method.to_string()),
            Err(e) => panic!("we sent something unparseable: {:?}", e.error),
        }
    }
    while let Some(e) = ep.poll_event() {
        if let Event::IncomingCall(_) = e {
            out.push("call".into());
        }
    }
    out
}

const OPTIONS: &str = "OPTIONS sip:vflow@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-alive\r\n\
From: <sip:monitor@127.0.0.1>;tag=m\r\nTo: <sip:vflow@127.0.0.1>\r\n\
Call-ID: alive\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";

/// Sends an OPTIONS with a fresh branch and expects 200.
fn assert_alive(ep: &mut Endpoint, now: Instant, n: u64) {
    let req = OPTIONS.replace("z9hG4bK-alive", &format!("z9hG4bK-alive{n}"));
    ep.handle_datagram(now, Transport::Udp, peer(), req.as_bytes());
    assert_eq!(outcome(ep), vec!["200"], "OPTIONS after torture");
}

#[test]
fn rfc4475_fixtures_get_the_expected_answers() {
    let expected = std::fs::read_to_string(fixtures().join("expected.txt")).unwrap();
    let mut ep = endpoint();
    let now = Instant::now();
    let mut seen = 0;
    for line in expected.lines() {
        let line = line.split('#').next().unwrap().trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let name = words.next().unwrap();
        let want: Vec<String> = words.filter(|w| *w != "drop").map(str::to_string).collect();
        let bytes = std::fs::read(fixtures().join(format!("{name}.sip"))).unwrap();
        ep.handle_datagram(now, Transport::Udp, peer(), &bytes);
        assert_eq!(outcome(&mut ep), want, "{name}");
        seen += 1;
    }
    // Every fixture file is listed.
    let files = ["valid", "invalid"]
        .iter()
        .map(|d| std::fs::read_dir(fixtures().join(d)).unwrap().count())
        .sum::<usize>();
    assert_eq!(seen, files, "expected.txt must list every fixture");
    assert_alive(&mut ep, now, 0);
}

#[test]
fn fixtures_over_tcp_framing_never_panic() {
    let mut ep = endpoint();
    let now = Instant::now();
    for dir in ["valid", "invalid"] {
        for entry in std::fs::read_dir(fixtures().join(dir)).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            let mut framer = StreamFramer::new();
            framer.push(&bytes);
            while let Ok(Some(frame)) = framer.next_frame() {
                if let Frame::Message(m) = frame {
                    ep.handle_datagram(now, Transport::Tcp(ConnId(1)), peer(), &m);
                }
            }
            while ep.poll_transmit().is_some() {}
            while ep.poll_event().is_some() {}
        }
    }
    assert_alive(&mut ep, now, 1);
}

fn all_fixtures() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for dir in ["valid", "invalid"] {
        for entry in std::fs::read_dir(fixtures().join(dir)).unwrap() {
            v.push(std::fs::read(entry.unwrap().path()).unwrap());
        }
    }
    v.sort();
    v
}

/// A fixture with a few bytes overwritten, inserted or cut: close enough to
/// SIP to reach deep into the parser and the endpoint.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let base = all_fixtures();
    (
        0..base.len(),
        prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8),
        any::<usize>(),
    )
        .prop_map(move |(i, edits, cut)| {
            let mut m = base[i].clone();
            for (pos, byte, kind) in edits {
                if m.is_empty() {
                    break;
                }
                let p = pos % m.len();
                match kind {
                    0 => m[p] = byte,
                    1 => m.insert(p, byte),
                    _ => {
                        m.remove(p);
                    }
                }
            }
            if cut % 4 == 0 && !m.is_empty() {
                m.truncate(cut % m.len());
            }
            m
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn garbage_never_panics(datagrams in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 1..8)) {
        let mut ep = endpoint();
        let mut now = Instant::now();
        for d in &datagrams {
            ep.handle_datagram(now, Transport::Udp, peer(), d);
            now += Duration::from_millis(300);
            ep.handle_timeout(now);
            outcome(&mut ep);
        }
        assert_alive(&mut ep, now, 2);
    }

    #[test]
    fn mutated_fixtures_never_panic(msgs in prop::collection::vec(mutated(), 1..6)) {
        let mut ep = endpoint();
        let mut now = Instant::now();
        for m in &msgs {
            ep.handle_datagram(now, Transport::Udp, peer(), m);
            let mut framer = StreamFramer::new();
            framer.push(m);
            while let Ok(Some(Frame::Message(f))) = framer.next_frame() {
                ep.handle_datagram(now, Transport::Tcp(ConnId(9)), peer(), &f);
            }
            // Answer whatever call appeared, then let every timer run out.
            while let Some(e) = ep.poll_event() {
                if let Event::IncomingCall(c) = e {
                    let _ = ep.answer(now, c.call, "127.0.0.1:20000".parse().unwrap());
                }
            }
            while ep.poll_transmit().is_some() {}
            now += Duration::from_secs(40);
            ep.handle_timeout(now);
            outcome(&mut ep);
        }
        assert_alive(&mut ep, now, 3);
    }
}
