//! The SIP parser, typed header views, SDP and TCP framing on arbitrary
//! bytes: no panic, and whatever parses survives a write/parse round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vflow_runtime::sip::framing::StreamFramer;
use vflow_runtime::sip::header::{CSeq, NameAddr, Uri, Via, parse_event};
use vflow_runtime::sip::message::{self, HeaderName, Message};
use vflow_runtime::sip::sdp::Sdp;

fuzz_target!(|data: &[u8]| {
    for datagram in [true, false] {
        let Ok(msg) = message::parse(data, datagram) else { continue };
        let headers = msg.headers();
        for (name, value) in headers.iter() {
            match name {
                HeaderName::Via => {
                    for v in headers.get_all(&HeaderName::Via) {
                        let _ = Via::parse(v);
                    }
                }
                HeaderName::CSeq => {
                    let _ = CSeq::parse(value);
                }
                HeaderName::Event => {
                    let _ = parse_event(value);
                }
                _ => {
                    let _ = NameAddr::parse(value);
                }
            }
        }
        if let Message::Request(r) = &msg {
            let _ = Uri::parse(&r.uri);
            if let Ok(sdp) = Sdp::parse(&r.body) {
                let _ = sdp.negotiate();
            }
        }
        // What we parsed, we can write, and it parses back the same.
        let bytes = msg.to_bytes();
        let again = message::parse(&bytes, true).expect("re-parse of written message");
        let fields = |m: &Message| -> Vec<(HeaderName, String)> {
            m.headers()
                .iter()
                .filter(|(n, _)| **n != HeaderName::ContentLength)
                .map(|(n, v)| (n.clone(), v.to_string()))
                .collect()
        };
        assert_eq!(fields(&again), fields(&msg));
        match (&again, &msg) {
            (Message::Request(a), Message::Request(b)) => {
                assert_eq!((&a.method, &a.uri, &a.body), (&b.method, &b.uri, &b.body));
            }
            (Message::Response(a), Message::Response(b)) => {
                assert_eq!((a.status, &a.body), (b.status, &b.body));
            }
            _ => panic!("request/response flipped"),
        }
    }
    let mut framer = StreamFramer::new();
    framer.push(data);
    while let Ok(Some(_)) = framer.next_frame() {}
});
