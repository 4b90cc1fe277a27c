//! The endpoint on a sequence of datagrams and timer ticks: no panic, and
//! it still answers OPTIONS afterwards.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use vflow_runtime::sip::message::{self, Message};
use vflow_runtime::sip::{Config, Endpoint, Event, Transport};

fuzz_target!(|data: &[u8]| {
    let mut ep = Endpoint::new(Config::new("127.0.0.1:5060".parse().unwrap()));
    let peer = "127.0.0.1:5062".parse().unwrap();
    let mut now = Instant::now();
    // Datagrams are separated by a 0xFF byte (never valid in SIP text).
    for chunk in data.split(|&b| b == 0xff) {
        ep.handle_datagram(now, Transport::Udp, peer, chunk);
        while let Some(e) = ep.poll_event() {
            if let Event::IncomingCall(c) = e {
                let _ = ep.answer(now, c.call, "127.0.0.1:20000".parse().unwrap());
            }
        }
        now += Duration::from_millis(700);
        ep.handle_timeout(now);
        while ep.poll_transmit().is_some() {}
    }
    let options = "OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-fuzz-alive\r\n\
From: <sip:m@127.0.0.1>;tag=m\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: fuzz-alive\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    ep.handle_datagram(now + Duration::from_secs(100), Transport::Udp, peer, options.as_bytes());
    let t = ep.poll_transmit().expect("OPTIONS answered");
    // Usually 200; if the input itself sent this exact request first, the
    // transaction layer replays whatever it answered then. Either way: an answer.
    assert!(matches!(message::parse(&t.bytes, true), Ok(Message::Response(_))));
});
