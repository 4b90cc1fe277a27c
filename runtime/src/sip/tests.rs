//! Endpoint scenarios on virtual time: a scripted peer sends text, the test
//! reads what the endpoint transmits and emits, and moves the clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::endpoint::*;
use super::header::NameAddr;
use super::message::{self, HeaderName, Message, Method, Request, Response};
use super::sdp::{Direction, G711};

const PEER: &str = "127.0.0.1:5062";
const US: &str = "127.0.0.1:5060";

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n";

struct Peer {
    ep: Endpoint,
    now: Instant,
    peer: SocketAddr,
    transport: Transport,
}

fn sdp_invite(call_id: &str, branch: &str, sdp: &str) -> String {
    format!(
        "INVITE sip:vm-201@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5062;branch={branch};rport\r\n\
From: \"Alice\" <sip:alice@127.0.0.1:5062>;tag=a1\r\n\
To: <sip:201@127.0.0.1>\r\n\
Call-ID: {call_id}\r\n\
CSeq: 1 INVITE\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:alice@127.0.0.1:5062>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

fn invite(call_id: &str, branch: &str) -> String {
    sdp_invite(call_id, branch, OFFER)
}

/// A request in the dialog established by [`Peer::answered`].
fn in_dialog(
    method: &str,
    call_id: &str,
    to_tag: &str,
    cseq: u32,
    branch: &str,
    extra: &str,
    body: &str,
) -> String {
    format!(
        "{method} sip:201@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5062;branch={branch}\r\n\
From: <sip:alice@127.0.0.1:5062>;tag=a1\r\n\
To: <sip:201@127.0.0.1>;tag={to_tag}\r\n\
Call-ID: {call_id}\r\n\
CSeq: {cseq} {method}\r\n\
Max-Forwards: 70\r\n{extra}\
Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn simple(method: &str, extra: &str) -> String {
    format!(
        "{method} sip:201@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-{method}\r\n\
From: <sip:alice@127.0.0.1>;tag=x\r\n\
To: <sip:201@127.0.0.1>\r\n\
Call-ID: simple-{method}\r\n\
CSeq: 1 {method}\r\n{extra}\
Content-Length: 0\r\n\r\n"
    )
}

impl Peer {
    fn new() -> Peer {
        Peer::with(Config::new(US.parse().unwrap()))
    }

    fn with(config: Config) -> Peer {
        Peer {
            ep: Endpoint::new(config),
            now: Instant::now(),
            peer: PEER.parse().unwrap(),
            transport: Transport::Udp,
        }
    }

    fn send(&mut self, text: &str) {
        self.ep
            .handle_datagram(self.now, self.transport, self.peer, text.as_bytes());
    }

    /// Everything transmitted since the last call, parsed.
    fn out(&mut self) -> Vec<Message> {
        let mut v = Vec::new();
        while let Some(t) = self.ep.poll_transmit() {
            assert_eq!(t.to, self.peer);
            assert_eq!(t.transport, self.transport);
            v.push(message::parse(&t.bytes, true).expect("we send valid SIP"));
        }
        v
    }

    fn responses(&mut self) -> Vec<Response> {
        self.out()
            .into_iter()
            .map(|m| match m {
                Message::Response(r) => r,
                Message::Request(r) => panic!("unexpected request {}", r.method),
            })
            .collect()
    }

    fn statuses(&mut self) -> Vec<u16> {
        self.responses().iter().map(|r| r.status).collect()
    }

    fn requests(&mut self) -> Vec<Request> {
        self.out()
            .into_iter()
            .filter_map(|m| match m {
                Message::Request(r) => Some(r),
                Message::Response(_) => None,
            })
            .collect()
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.ep.poll_event()).collect()
    }

    /// Moves virtual time forward, firing every timer on the way.
    fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        let mut guard = 0;
        while let Some(at) = self.ep.poll_timeout() {
            if at > target {
                break;
            }
            self.now = self.now.max(at);
            self.ep.handle_timeout(self.now);
            guard += 1;
            assert!(guard < 100_000, "timer livelock");
        }
        self.now = target;
    }

    /// INVITE → 100 → IncomingCall; returns the handle.
    fn incoming(&mut self, call_id: &str) -> CallHandle {
        self.send(&invite(call_id, &format!("z9hG4bK-{call_id}")));
        assert_eq!(self.statuses(), vec![100]);
        match self.events().as_slice() {
            [Event::IncomingCall(c)] => c.call,
            other => panic!("expected IncomingCall, got {other:?}"),
        }
    }

    /// A confirmed call: INVITE, answer, ACK. Returns (handle, our tag).
    fn answered(&mut self, call_id: &str) -> (CallHandle, String) {
        let h = self.incoming(call_id);
        self.ep
            .answer(self.now, h, "127.0.0.1:20000".parse().unwrap())
            .unwrap();
        let ok = self.responses().pop().unwrap();
        assert_eq!(ok.status, 200);
        let tag = to_tag(&ok);
        self.send(&in_dialog("ACK", call_id, &tag, 1, "z9hG4bK-ack", "", ""));
        assert_eq!(self.events(), vec![Event::CallConfirmed { call: h }]);
        (h, tag)
    }
}

fn to_tag(r: &Response) -> String {
    NameAddr::parse(r.headers.get(&HeaderName::To).unwrap())
        .unwrap()
        .tag()
        .unwrap()
        .to_string()
}

/// Answers the last request the endpoint sent, as the peer would.
fn reply_to(req: &Request, status: u16) -> String {
    let h = |n: HeaderName| req.headers.get(&n).unwrap().to_string();
    format!(
        "SIP/2.0 {status} X\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=peer\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        h(HeaderName::Via),
        h(HeaderName::From),
        h(HeaderName::To),
        h(HeaderName::CallId),
        h(HeaderName::CSeq)
    )
}

#[test]
fn invite_answer_ack() {
    let mut p = Peer::new();
    p.send(&invite("c1", "z9hG4bK-c1"));
    let r = p.responses();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, 100);
    // The top Via records where the request really came from (RFC 3581).
    let via = r[0].headers.get(&HeaderName::Via).unwrap();
    assert!(
        via.contains("received=127.0.0.1") && via.contains("rport=5062"),
        "{via}"
    );
    let Some(Event::IncomingCall(c)) = p.ep.poll_event() else {
        panic!()
    };
    assert_eq!(c.request_uri_user.as_deref(), Some("vm-201"));
    assert_eq!(c.to_user.as_deref(), Some("201"));
    assert_eq!(c.from_user.as_deref(), Some("alice"));
    assert_eq!(c.from_display.as_deref(), Some("Alice"));
    assert_eq!(c.call_id, "c1");
    assert_eq!(c.offer.codec, G711::Pcmu);
    assert_eq!(c.offer.telephone_event_pt, Some(101));
    assert_eq!(c.offer.remote_rtp, "127.0.0.1:6000".parse().unwrap());

    p.ep.answer(p.now, c.call, "127.0.0.1:20002".parse().unwrap())
        .unwrap();
    let ok = p.responses().pop().unwrap();
    assert_eq!(ok.status, 200);
    assert!(
        ok.headers
            .get(&HeaderName::Contact)
            .unwrap()
            .contains("127.0.0.1:5060")
    );
    assert!(ok.headers.get(&HeaderName::Server).is_none());
    let body = String::from_utf8(ok.body.clone()).unwrap();
    assert!(body.contains("m=audio 20002 RTP/AVP 0 101"), "{body}");
    assert_eq!(
        p.ep.answer(p.now, c.call, "127.0.0.1:1".parse().unwrap()),
        Err(CallError::InvalidState)
    );

    let tag = to_tag(&ok);
    p.send(&in_dialog("ACK", "c1", &tag, 1, "z9hG4bK-ack1", "", ""));
    assert_eq!(p.events(), vec![Event::CallConfirmed { call: c.call }]);
    // Nothing more is sent once acknowledged, and everything is cleaned up.
    p.advance(Duration::from_secs(60));
    assert!(p.out().is_empty());
    assert!(p.events().is_empty());
    assert_eq!(p.ep.transaction_count(), (0, 0));
    assert_eq!(p.ep.call_count(), 1);
}

#[test]
fn ok_retransmitted_until_ack_then_stops() {
    let mut p = Peer::new();
    let h = p.incoming("c2");
    p.ep.answer(p.now, h, "127.0.0.1:20000".parse().unwrap())
        .unwrap();
    let ok = p.responses().pop().unwrap();
    // T1, then 2·T1: 500 ms and 1.5 s after the first send.
    p.advance(Duration::from_millis(499));
    assert!(p.out().is_empty());
    p.advance(Duration::from_millis(1));
    assert_eq!(p.statuses(), vec![200]);
    p.advance(Duration::from_millis(1000));
    assert_eq!(p.statuses(), vec![200]);
    p.send(&in_dialog(
        "ACK",
        "c2",
        &to_tag(&ok),
        1,
        "z9hG4bK-a",
        "",
        "",
    ));
    assert_eq!(p.events(), vec![Event::CallConfirmed { call: h }]);
    p.advance(Duration::from_secs(40));
    assert!(p.out().is_empty());
    // A retransmitted ACK is ignored.
    p.send(&in_dialog(
        "ACK",
        "c2",
        &to_tag(&ok),
        1,
        "z9hG4bK-a",
        "",
        "",
    ));
    assert!(p.events().is_empty() && p.out().is_empty());
}

#[test]
fn ok_retransmissions_are_capped_at_t2_and_no_ack_ends_the_call() {
    let mut p = Peer::new();
    let h = p.incoming("c3");
    p.ep.answer(p.now, h, "127.0.0.1:20000".parse().unwrap())
        .unwrap();
    p.out();
    p.advance(Duration::from_millis(31_999));
    // 0.5, 1.5, 3.5, 7.5, 11.5, ... 31.5 s: intervals 0.5, 1, 2, 4, 4, ...
    assert_eq!(p.statuses().len(), 10);
    assert!(p.events().is_empty());
    p.advance(Duration::from_millis(1));
    assert_eq!(
        p.events(),
        vec![Event::CallEnded {
            call: h,
            by_remote: false,
            reason: EndReason::AckTimeout
        }]
    );
    let bye = p.requests();
    assert_eq!(bye.len(), 1);
    assert_eq!(bye[0].method, Method::Bye);
    assert_eq!(bye[0].uri, "sip:alice@127.0.0.1:5062");
    assert_eq!(p.ep.call_count(), 0);
}

#[test]
fn cancel_before_answer_gets_487_and_200() {
    let mut p = Peer::new();
    let h = p.incoming("c4");
    let cancel = invite("c4", "z9hG4bK-c4")
        .replace("INVITE sip", "CANCEL sip")
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    // The CANCEL has no body.
    let cancel =
        cancel.split("Content-Type").next().unwrap().to_string() + "Content-Length: 0\r\n\r\n";
    p.send(&cancel);
    let r = p.responses();
    let got: Vec<(u16, String)> = r
        .iter()
        .map(|r| {
            (
                r.status,
                r.headers.get(&HeaderName::CSeq).unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![(200, "1 CANCEL".into()), (487, "1 INVITE".into())]
    );
    // RFC 3261 §9.2: the CANCEL's 200 carries the INVITE response's To tag.
    assert_eq!(to_tag(&r[0]), to_tag(&r[1]));
    assert_eq!(p.events(), vec![Event::CallCancelled { call: h }]);
    assert_eq!(
        p.ep.answer(p.now, h, "127.0.0.1:1".parse().unwrap()),
        Err(CallError::UnknownCall)
    );
    // The 487 is retransmitted until the ACK (same branch as the INVITE).
    p.advance(Duration::from_millis(500));
    assert_eq!(p.statuses(), vec![487]);
    let ack = in_dialog("ACK", "c4", &to_tag(&r[1]), 1, "z9hG4bK-c4", "", "")
        .replace("sip:201@127.0.0.1:5060", "sip:vm-201@127.0.0.1");
    p.send(&ack);
    p.advance(Duration::from_secs(40));
    assert!(p.out().is_empty());
    assert_eq!(p.ep.transaction_count(), (0, 0));
    // A CANCEL retransmission meanwhile would get the same 200; an unknown one 481.
    p.send(&cancel.replace("z9hG4bK-c4", "z9hG4bK-other"));
    assert_eq!(p.statuses(), vec![481]);
}

#[test]
fn cancel_after_answer_gets_only_200() {
    let mut p = Peer::new();
    let h = p.incoming("c5");
    p.ep.answer(p.now, h, "127.0.0.1:20000".parse().unwrap())
        .unwrap();
    let ok = p.responses().pop().unwrap();
    let cancel = simple("CANCEL", "")
        .replace("z9hG4bK-CANCEL", "z9hG4bK-c5")
        .replace("simple-CANCEL", "c5")
        .replace("tag=x", "tag=a1")
        .replace("sip:201@127.0.0.1 SIP", "sip:vm-201@127.0.0.1 SIP");
    p.send(&cancel);
    let r = p.responses();
    assert_eq!(r.iter().map(|r| r.status).collect::<Vec<_>>(), vec![200]);
    assert_eq!(to_tag(&r[0]), to_tag(&ok));
    assert!(p.events().is_empty());
}

#[test]
fn bye_from_remote_and_unknown_dialog() {
    let mut p = Peer::new();
    let (h, tag) = p.answered("c6");
    p.send(&in_dialog("BYE", "c6", &tag, 2, "z9hG4bK-bye", "", ""));
    assert_eq!(p.statuses(), vec![200]);
    assert_eq!(
        p.events(),
        vec![Event::CallEnded {
            call: h,
            by_remote: true,
            reason: EndReason::RemoteBye
        }]
    );
    // Retransmitted BYE: the same 200 again, no second event.
    p.send(&in_dialog("BYE", "c6", &tag, 2, "z9hG4bK-bye", "", ""));
    assert_eq!(p.statuses(), vec![200]);
    assert!(p.events().is_empty());
    // A BYE for a dialog we do not know.
    p.send(&in_dialog("BYE", "nope", "zzz", 2, "z9hG4bK-bye2", "", ""));
    assert_eq!(p.statuses(), vec![481]);
}

#[test]
fn hangup_sends_bye_retransmitted_until_answered() {
    let mut p = Peer::new();
    let (h, tag) = p.answered("c7");
    p.ep.hangup(p.now, h).unwrap();
    assert_eq!(
        p.events(),
        vec![Event::CallEnded {
            call: h,
            by_remote: false,
            reason: EndReason::LocalHangup
        }]
    );
    let bye = p.requests().pop().unwrap();
    assert_eq!(bye.method, Method::Bye);
    let from = NameAddr::parse(bye.headers.get(&HeaderName::From).unwrap()).unwrap();
    assert_eq!(from.tag(), Some(tag.as_str()));
    assert_eq!(bye.headers.get(&HeaderName::CSeq), Some("1 BYE"));
    p.advance(Duration::from_millis(500));
    assert_eq!(p.requests().len(), 1, "Timer E retransmission");
    p.send(&reply_to(&bye, 200));
    p.advance(Duration::from_secs(60));
    assert!(p.out().is_empty());
    assert!(p.events().is_empty());
    assert_eq!(p.ep.hangup(p.now, h), Err(CallError::UnknownCall));
}

#[test]
fn hangup_before_ack_waits_for_the_ack() {
    let mut p = Peer::new();
    let h = p.incoming("c8");
    p.ep.answer(p.now, h, "127.0.0.1:20000".parse().unwrap())
        .unwrap();
    let ok = p.responses().pop().unwrap();
    p.ep.hangup(p.now, h).unwrap();
    assert_eq!(p.events().len(), 1);
    assert!(p.requests().is_empty());
    p.send(&in_dialog(
        "ACK",
        "c8",
        &to_tag(&ok),
        1,
        "z9hG4bK-a8",
        "",
        "",
    ));
    assert_eq!(p.requests().pop().unwrap().method, Method::Bye);
    assert!(p.events().is_empty());
}

#[test]
fn bye_timeout_is_reported() {
    let mut p = Peer::new();
    let (h, _) = p.answered("c9");
    p.ep.hangup(p.now, h).unwrap();
    p.events();
    p.advance(Duration::from_secs(32));
    assert_eq!(
        p.events(),
        vec![Event::RequestFailed {
            request: None,
            call: Some(h),
            method: Method::Bye,
            status: None
        }]
    );
    // 0.5, 1.5, 3.5, 7.5, then every 4 s up to 31.5: 11 sends in all.
    assert_eq!(p.requests().len(), 11);
}

fn refer_and_accept(p: &mut Peer, call_id: &str) -> (CallHandle, String, Request) {
    let (h, tag) = p.answered(call_id);
    assert_eq!(
        p.ep.refer(p.now, h, "not a uri"),
        Err(CallError::InvalidArgument)
    );
    p.ep.refer(p.now, h, "sip:202@pbx.example.com").unwrap();
    let refer = p.requests().pop().unwrap();
    assert_eq!(refer.method, Method::Refer);
    assert_eq!(
        refer.headers.get(&HeaderName::ReferTo),
        Some("<sip:202@pbx.example.com>")
    );
    assert_eq!(
        p.ep.refer(p.now, h, "sip:203@x"),
        Err(CallError::InvalidState)
    );
    p.send(&reply_to(&refer, 202));
    assert!(p.events().is_empty());
    (h, tag, refer)
}

fn notify(call_id: &str, tag: &str, cseq: u32, frag: &str, state: &str) -> String {
    in_dialog(
        "NOTIFY",
        call_id,
        tag,
        cseq,
        &format!("z9hG4bK-n{cseq}"),
        &format!(
            "Event: refer\r\nSubscription-State: {state}\r\nContent-Type: message/sipfrag;version=2.0\r\n"
        ),
        frag,
    )
}

#[test]
fn refer_followed_to_success() {
    let mut p = Peer::new();
    let (h, tag, _) = refer_and_accept(&mut p, "r1");
    p.send(&notify(
        "r1",
        &tag,
        2,
        "SIP/2.0 100 Trying\r\n",
        "active;expires=60",
    ));
    assert_eq!(p.statuses(), vec![200]);
    p.send(&notify(
        "r1",
        &tag,
        3,
        "SIP/2.0 180 Ringing\r\n",
        "active;expires=60",
    ));
    assert_eq!(p.statuses(), vec![200]);
    p.send(&notify(
        "r1",
        &tag,
        4,
        "SIP/2.0 200 OK\r\n",
        "terminated;reason=noresource",
    ));
    assert_eq!(p.statuses(), vec![200]);
    assert_eq!(
        p.events(),
        vec![
            Event::TransferProgress {
                call: h,
                status: 100
            },
            Event::TransferProgress {
                call: h,
                status: 180
            },
            Event::TransferResult {
                call: h,
                outcome: TransferOutcome::Succeeded
            },
        ]
    );
    // The refer deadline no longer matters.
    p.advance(Duration::from_secs(120));
    assert!(p.events().is_empty());
}

#[test]
fn refer_busy_no_answer_and_failure() {
    for (frag, outcome) in [
        ("SIP/2.0 486 Busy Here", TransferOutcome::Busy),
        ("SIP/2.0 600 Busy Everywhere", TransferOutcome::Busy),
        (
            "SIP/2.0 480 Temporarily Unavailable",
            TransferOutcome::NoAnswer,
        ),
        ("SIP/2.0 487 Request Terminated", TransferOutcome::NoAnswer),
        ("SIP/2.0 404 Not Found", TransferOutcome::Failed),
    ] {
        let mut p = Peer::new();
        let (h, tag, _) = refer_and_accept(&mut p, "r2");
        p.send(&notify("r2", &tag, 2, frag, "terminated"));
        assert_eq!(p.statuses(), vec![200]);
        assert_eq!(
            p.events(),
            vec![Event::TransferResult { call: h, outcome }],
            "{frag}"
        );
    }
}

#[test]
fn refer_timeout_and_rejection() {
    let mut p = Peer::new();
    let (h, _, _) = refer_and_accept(&mut p, "r3");
    p.advance(Duration::from_secs(59));
    assert!(p.events().is_empty());
    p.advance(Duration::from_secs(1));
    assert_eq!(
        p.events(),
        vec![Event::TransferResult {
            call: h,
            outcome: TransferOutcome::Failed
        }]
    );

    let mut p = Peer::new();
    let (h, _) = p.answered("r4");
    p.ep.refer(p.now, h, "sip:202@pbx").unwrap();
    let refer = p.requests().pop().unwrap();
    p.send(&reply_to(&refer, 603));
    assert_eq!(
        p.events(),
        vec![Event::TransferResult {
            call: h,
            outcome: TransferOutcome::Failed
        }]
    );

    // No answer at all to the REFER: Timer F.
    let mut p = Peer::new();
    let (h, _) = p.answered("r5");
    p.ep.refer(p.now, h, "sip:202@pbx").unwrap();
    p.advance(Duration::from_secs(32));
    assert_eq!(
        p.events(),
        vec![Event::TransferResult {
            call: h,
            outcome: TransferOutcome::Failed
        }]
    );
}

#[test]
fn options_and_method_errors() {
    let mut p = Peer::new();
    p.send(&simple("OPTIONS", ""));
    let r = p.responses().pop().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.headers.get(&HeaderName::Allow), Some(ALLOW));
    assert_eq!(r.headers.get(&HeaderName::Accept), Some("application/sdp"));
    p.send(&simple("REGISTER", ""));
    let r = p.responses().pop().unwrap();
    assert_eq!(r.status, 405);
    assert_eq!(r.headers.get(&HeaderName::Allow), Some(ALLOW));
    p.send(&simple("FROBNICATE", ""));
    assert_eq!(p.statuses(), vec![501]);
    p.send(&simple("OPTIONS", "Max-Forwards: 0\r\n").replace("-OPTIONS", "-mf0"));
    assert_eq!(p.statuses(), vec![483]);
    p.send(&simple("SUBSCRIBE", "Event: message-summary\r\n"));
    assert_eq!(p.statuses(), vec![489]);
    p.send(&simple("OPTIONS", "Require: 100rel\r\n").replace("-OPTIONS", "-req"));
    assert_eq!(p.statuses(), vec![420]);
    // Missing Call-ID: 400.
    p.send(
        &simple("OPTIONS", "")
            .replace("Call-ID: simple-OPTIONS\r\n", "")
            .replace("-OPTIONS", "-nocid"),
    );
    assert_eq!(p.statuses(), vec![400]);
    // CSeq method mismatch: 400.
    p.send(
        &simple("OPTIONS", "")
            .replace("1 OPTIONS", "1 INVITE")
            .replace("-OPTIONS", "-mm"),
    );
    assert_eq!(p.statuses(), vec![400]);
    // SIP/3.0: 505.
    p.send(
        &simple("OPTIONS", "")
            .replace("SIP/2.0\r\n", "SIP/3.0\r\n")
            .replace("-OPTIONS", "-v3"),
    );
    assert_eq!(p.statuses(), vec![505]);
    // Not a SIP URI: 416.
    p.send(
        &simple("OPTIONS", "")
            .replace("OPTIONS sip:201@127.0.0.1", "OPTIONS isbn:2983792873")
            .replace("-OPTIONS", "-isbn"),
    );
    assert_eq!(p.statuses(), vec![416]);
    assert!(p.events().is_empty());
}

#[test]
fn codec_mismatch_gets_488_until_ack() {
    let mut p = Peer::new();
    let sdp = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 6000 RTP/AVP 18 9\r\n";
    p.send(&sdp_invite("c10", "z9hG4bK-c10", sdp));
    let r = p.responses();
    assert_eq!(
        r.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![100, 488]
    );
    assert!(p.events().is_empty());
    p.advance(Duration::from_millis(500));
    assert_eq!(p.statuses(), vec![488]);
    // Bad SDP: 400; wrong content type: 415; no SDP: 488.
    p.send(&sdp_invite("c11", "z9hG4bK-c11", "garbage"));
    assert_eq!(p.statuses(), vec![100, 400]);
    p.send(&sdp_invite("c12", "z9hG4bK-c12", OFFER).replace("application/sdp", "text/plain"));
    assert_eq!(p.statuses(), vec![100, 415]);
    p.send(&sdp_invite("c13", "z9hG4bK-c13", ""));
    assert_eq!(p.statuses(), vec![100, 488]);
    assert!(p.events().is_empty());
}

#[test]
fn untrusted_sources_get_one_fixed_403_then_a_ban() {
    let mut cfg = Config::new(US.parse().unwrap());
    cfg.rate_limit = Some(super::guard::RateLimit {
        per_second: 1.0,
        burst: 5.0,
        ban_for: Duration::from_secs(30),
        ..Default::default()
    });
    let mut p = Peer::with(cfg);
    p.peer = "203.0.113.7:5060".parse().unwrap();
    let mut bodies = Vec::new();
    for req in [
        invite("u1", "z9hG4bK-u1"),
        simple("OPTIONS", ""),
        simple("BYE", ""),
    ] {
        p.send(&req);
        let r = p.responses();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].status, 403);
        assert_eq!(r[0].reason, "Forbidden");
        assert!(r[0].body.is_empty());
        let names: Vec<String> = r[0]
            .headers
            .iter()
            .map(|(n, _)| n.as_str().to_string())
            .collect();
        bodies.push(names);
    }
    // Same shape for every request: only the echoed headers.
    assert!(
        bodies
            .iter()
            .all(|b| *b == ["Via", "From", "To", "Call-ID", "CSeq", "Content-Length"])
    );
    assert!(p.events().is_empty());
    assert_eq!(p.ep.call_count(), 0);
    assert_eq!(p.ep.transaction_count(), (0, 0));
    // Two more fit the bucket; then the source is banned and dropped silently.
    p.send(&simple("OPTIONS", ""));
    p.send(&simple("OPTIONS", ""));
    assert_eq!(p.statuses(), vec![403, 403]);
    p.send(&simple("OPTIONS", ""));
    assert!(p.out().is_empty());
    p.advance(Duration::from_secs(20));
    p.send(&simple("OPTIONS", ""));
    assert!(p.out().is_empty(), "still banned");
    p.advance(Duration::from_secs(11));
    p.send(&simple("OPTIONS", ""));
    assert_eq!(p.statuses(), vec![403]);
}

#[test]
fn invite_retransmission_is_absorbed() {
    let mut p = Peer::new();
    let h = p.incoming("c14");
    p.send(&invite("c14", "z9hG4bK-c14"));
    assert_eq!(p.statuses(), vec![100]);
    assert!(p.events().is_empty());
    p.ep.answer(p.now, h, "127.0.0.1:20000".parse().unwrap())
        .unwrap();
    p.out();
    p.send(&invite("c14", "z9hG4bK-c14"));
    assert_eq!(p.statuses(), vec![200]);
    assert!(p.events().is_empty());
    assert_eq!(p.ep.call_count(), 1);
}

#[test]
fn reinvite_hold_and_unhold() {
    let mut p = Peer::new();
    let (h, tag) = p.answered("c15");
    let hold = OFFER.replace("a=ptime:20\r\n", "a=ptime:20\r\na=sendonly\r\n");
    let reinvite = |cseq: u32, sdp: &str| {
        in_dialog(
            "INVITE",
            "c15",
            &tag,
            cseq,
            &format!("z9hG4bK-re{cseq}"),
            "Contact: <sip:alice@127.0.0.1:5062>\r\nContent-Type: application/sdp\r\n",
            sdp,
        )
    };
    p.send(&reinvite(2, &hold));
    let ok = p.responses().pop().unwrap();
    assert_eq!(ok.status, 200);
    let body = String::from_utf8(ok.body).unwrap();
    assert!(
        body.contains("a=recvonly") && body.contains("m=audio 20000 "),
        "{body}"
    );
    assert!(
        body.contains("o=vflow ") && body.contains(" 2 IN IP4"),
        "version bumped: {body}"
    );
    match p.events().as_slice() {
        [Event::MediaUpdated { call, offer }] => {
            assert_eq!(*call, h);
            assert_eq!(offer.direction, Direction::RecvOnly);
        }
        other => panic!("{other:?}"),
    }
    // A second re-INVITE before the ACK: 491.
    p.send(&reinvite(3, OFFER));
    assert_eq!(p.statuses(), vec![491]);
    p.send(&in_dialog("ACK", "c15", &tag, 2, "z9hG4bK-ra", "", ""));
    assert!(
        p.events().is_empty(),
        "re-INVITE ACK is not a new confirmation"
    );
    p.send(&reinvite(4, OFFER));
    let ok = p.responses().pop().unwrap();
    assert!(String::from_utf8(ok.body).unwrap().contains("a=sendrecv"));
    assert_eq!(p.events().len(), 1);
    p.send(&in_dialog("ACK", "c15", &tag, 4, "z9hG4bK-rb", "", ""));
    // No acceptable codec in a re-INVITE: 488, the call continues.
    p.send(&reinvite(
        5,
        "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 1 RTP/AVP 18\r\n",
    ));
    assert_eq!(p.statuses(), vec![488]);
    assert_eq!(p.ep.call_count(), 1);
    // An old CSeq is out of order: 500.
    p.send(&in_dialog("INFO", "c15", &tag, 3, "z9hG4bK-old", "", ""));
    assert_eq!(p.statuses(), vec![500]);
}

#[test]
fn tcp_has_no_retransmissions() {
    let mut p = Peer::new();
    p.transport = Transport::Tcp(ConnId(7));
    let h = p.incoming("c16");
    p.ep.answer(p.now, h, "127.0.0.1:20000".parse().unwrap())
        .unwrap();
    let ok = p.responses().pop().unwrap();
    assert!(
        ok.headers
            .get(&HeaderName::Contact)
            .unwrap()
            .contains("transport=tcp")
    );
    p.advance(Duration::from_secs(10));
    assert!(p.out().is_empty());
    p.advance(Duration::from_secs(30));
    // Still no ACK after 64·T1: the call is ended with one BYE.
    assert_eq!(p.requests().len(), 1);
    assert_eq!(p.events().len(), 1);
}

#[test]
fn diversion_and_history_info_give_the_original_target() {
    let mut p = Peer::new();
    let inv = invite("c17", "z9hG4bK-c17").replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nDiversion: <sip:202@pbx>;reason=no-answer, <sip:201@pbx>;reason=unconditional\r\n\
History-Info: <sip:203@pbx>;index=1.1, <sip:201@pbx;cause=302>;index=1\r\n",
    );
    p.send(&inv);
    p.out();
    let Some(Event::IncomingCall(c)) = p.ep.poll_event() else {
        panic!()
    };
    assert_eq!(c.diversion_user.as_deref(), Some("201"));
    assert_eq!(c.history_info_user.as_deref(), Some("201"));
}

#[test]
fn reject_and_not_accepting() {
    let mut p = Peer::new();
    let h = p.incoming("c18");
    assert_eq!(p.ep.reject(p.now, h, 200), Err(CallError::InvalidArgument));
    p.ep.reject(p.now, h, 486).unwrap();
    assert_eq!(p.statuses(), vec![486]);
    assert_eq!(
        p.events(),
        vec![Event::CallEnded {
            call: h,
            by_remote: false,
            reason: EndReason::Rejected
        }]
    );
    p.ep.set_accepting(false);
    p.send(&invite("c19", "z9hG4bK-c19"));
    assert_eq!(p.statuses(), vec![100, 503]);
}

#[test]
fn info_and_notify_hooks() {
    let mut p = Peer::new();
    let (h, tag) = p.answered("c20");
    p.send(&in_dialog(
        "INFO",
        "c20",
        &tag,
        2,
        "z9hG4bK-i",
        "Content-Type: application/dtmf-relay\r\n",
        "Signal=5\r\nDuration=160\r\n",
    ));
    assert_eq!(p.statuses(), vec![200]);
    assert!(
        matches!(p.events().as_slice(), [Event::Info { call, body, .. }] if *call == h && body.starts_with(b"Signal=5"))
    );
    // Outgoing NOTIFY (the MWI hook), in dialog and out of dialog.
    let n = Notify {
        event: "message-summary".into(),
        subscription_state: "active".into(),
        content_type: "application/simple-message-summary".into(),
        body: b"Messages-Waiting: yes\r\nVoice-Message: 2/0\r\n".to_vec(),
    };
    let id =
        p.ep.send_notify(p.now, NotifyTarget::Dialog(h), &n)
            .unwrap();
    let req = p.requests().pop().unwrap();
    assert_eq!(req.method, Method::Notify);
    assert_eq!(req.headers.get(&HeaderName::Event), Some("message-summary"));
    p.send(&reply_to(&req, 404));
    assert_eq!(
        p.events(),
        vec![Event::RequestFailed {
            request: Some(id),
            call: Some(h),
            method: Method::Notify,
            status: Some(404)
        }]
    );
    let target = NotifyTarget::OutOfDialog {
        to: p.peer,
        transport: Transport::Udp,
        uri: "sip:201@127.0.0.1:5062".into(),
    };
    p.ep.send_notify(p.now, target, &n).unwrap();
    let req = p.requests().pop().unwrap();
    assert_eq!(req.uri, "sip:201@127.0.0.1:5062");
    p.send(&reply_to(&req, 200));
    assert!(p.events().is_empty());
    assert_eq!(p.ep.transaction_count().1, 0);
}

// ---- SUBSCRIBE / NOTIFY (RFC 6665 notifier, RFC 3842 message-summary) --------

fn mwi_peer() -> Peer {
    let mut c = Config::new(US.parse().unwrap());
    c.event_packages = vec!["message-summary".into()];
    Peer::with(c)
}

fn subscribe(call_id: &str, branch: &str, to_tag: Option<&str>, cseq: u32, extra: &str) -> String {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "SUBSCRIBE sip:201@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5062;branch={branch};rport\r\n\
From: <sip:phone201@127.0.0.1>;tag=ph\r\n\
To: <sip:201@127.0.0.1>{to_tag}\r\n\
Call-ID: {call_id}\r\n\
CSeq: {cseq} SUBSCRIBE\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:phone201@127.0.0.1:5062>\r\n\
Record-Route: <sip:proxy.example;lr>\r\n\
{extra}Content-Length: 0\r\n\r\n"
    )
}

/// SUBSCRIBE → 200 with Expires and a To tag → Event::Subscription(New).
fn subscribed(p: &mut Peer, call_id: &str, expires: &str) -> (SubscriptionHandle, String) {
    p.send(&subscribe(
        call_id,
        &format!("z9hG4bK-s-{call_id}"),
        None,
        1,
        &format!("Event: message-summary;id=7\r\n{expires}"),
    ));
    let ok = p.responses().pop().unwrap();
    assert_eq!(ok.status, 200);
    let tag = to_tag(&ok);
    match p.events().as_slice() {
        [
            Event::Subscription {
                sub,
                package,
                user,
                from_user,
                change: SubscriptionChange::New,
            },
        ] => {
            assert_eq!(package, "message-summary");
            assert_eq!(user.as_deref(), Some("201"));
            assert_eq!(from_user.as_deref(), Some("phone201"));
            (*sub, tag)
        }
        other => panic!("expected a new subscription, got {other:?}"),
    }
}

const SUMMARY: &str =
    "Messages-Waiting: yes\r\nMessage-Account: sip:201@127.0.0.1\r\nVoice-Message: 1/0 (0/0)\r\n";

#[test]
fn subscribe_message_summary_then_notify_in_the_dialog() {
    let mut p = mwi_peer();
    let (sub, tag) = subscribed(&mut p, "sub1", "Expires: 600\r\n");
    // The 200 granted what was asked and named a Contact.
    p.send(&subscribe(
        "sub1",
        "z9hG4bK-s-sub1",
        None,
        1,
        "Event: message-summary;id=7\r\nExpires: 600\r\n",
    ));
    let again = p.responses().pop().unwrap();
    assert_eq!(again.status, 200, "a retransmission gets the same answer");
    assert_eq!(again.headers.get(&HeaderName::Expires), Some("600"));
    assert!(again.headers.get(&HeaderName::Contact).is_some());
    assert!(
        p.events().is_empty(),
        "no second subscription for a retransmission"
    );
    assert_eq!(p.ep.subscription_count(), 1);

    p.ep.notify_subscription(
        p.now,
        sub,
        "application/simple-message-summary",
        SUMMARY.as_bytes(),
    )
    .unwrap();
    let n = p.requests().pop().unwrap();
    assert_eq!(n.method, Method::Notify);
    assert_eq!(
        n.uri, "sip:phone201@127.0.0.1:5062",
        "to the subscriber's Contact"
    );
    let h = |name: HeaderName| n.headers.get(&name).unwrap().to_string();
    assert_eq!(h(HeaderName::CallId), "sub1");
    assert_eq!(h(HeaderName::Event), "message-summary;id=7");
    assert_eq!(h(HeaderName::SubscriptionState), "active;expires=600");
    assert_eq!(
        h(HeaderName::ContentType),
        "application/simple-message-summary"
    );
    assert_eq!(h(HeaderName::Route), "<sip:proxy.example;lr>");
    let from = NameAddr::parse(&h(HeaderName::From)).unwrap();
    assert_eq!(from.tag(), Some(tag.as_str()), "our tag from the 200");
    let to = NameAddr::parse(&h(HeaderName::To)).unwrap();
    assert_eq!(to.tag(), Some("ph"));
    assert_eq!(n.body, SUMMARY.as_bytes());
    p.send(&reply_to(&n, 200));
    p.advance(Duration::from_secs(40));
    assert!(p.events().is_empty());
    assert_eq!(
        p.ep.transaction_count().1,
        0,
        "the NOTIFY transaction is done"
    );
}

#[test]
fn refresh_and_unsubscribe() {
    let mut p = mwi_peer();
    let (sub, tag) = subscribed(&mut p, "sub2", "Expires: 120\r\n");
    p.ep.notify_subscription(
        p.now,
        sub,
        "application/simple-message-summary",
        SUMMARY.as_bytes(),
    )
    .unwrap();
    let n = p.requests().pop().unwrap();
    p.send(&reply_to(&n, 200));

    // A refresh before expiry: 200, a new NOTIFY asked for, the timer moves.
    p.advance(Duration::from_secs(100));
    p.send(&subscribe(
        "sub2",
        "z9hG4bK-r1",
        Some(&tag),
        2,
        "Event: message-summary;id=7\r\nExpires: 120\r\n",
    ));
    let r = p.responses().pop().unwrap();
    assert_eq!(
        (r.status, r.headers.get(&HeaderName::Expires)),
        (200, Some("120"))
    );
    assert!(matches!(
        p.events().as_slice(),
        [Event::Subscription {
            change: SubscriptionChange::Refreshed,
            ..
        }]
    ));
    p.ep.notify_subscription(
        p.now,
        sub,
        "application/simple-message-summary",
        SUMMARY.as_bytes(),
    )
    .unwrap();
    let n = p.requests().pop().unwrap();
    assert_eq!(
        n.headers.get(&HeaderName::SubscriptionState),
        Some("active;expires=120")
    );
    assert_eq!(n.headers.get(&HeaderName::CSeq), Some("2 NOTIFY"));
    p.send(&reply_to(&n, 200));
    p.advance(Duration::from_secs(100));
    assert!(
        p.events().is_empty(),
        "still alive 200 s after the start: the refresh counted"
    );

    // An old CSeq is out of order.
    p.send(&subscribe(
        "sub2",
        "z9hG4bK-r-old",
        Some(&tag),
        2,
        "Event: message-summary\r\nExpires: 120\r\n",
    ));
    assert_eq!(p.statuses(), vec![500]);

    // Un-SUBSCRIBE: 200 Expires 0, Ending, and the last NOTIFY is terminated.
    p.send(&subscribe(
        "sub2",
        "z9hG4bK-r2",
        Some(&tag),
        3,
        "Event: message-summary\r\nExpires: 0\r\n",
    ));
    let r = p.responses().pop().unwrap();
    assert_eq!(
        (r.status, r.headers.get(&HeaderName::Expires)),
        (200, Some("0"))
    );
    assert!(matches!(
        p.events().as_slice(),
        [Event::Subscription {
            change: SubscriptionChange::Ending,
            ..
        }]
    ));
    let body = "Messages-Waiting: no\r\nMessage-Account: sip:201@127.0.0.1\r\nVoice-Message: 0/1 (0/0)\r\n";
    p.ep.notify_subscription(
        p.now,
        sub,
        "application/simple-message-summary",
        body.as_bytes(),
    )
    .unwrap();
    let n = p.requests().pop().unwrap();
    assert_eq!(
        n.headers.get(&HeaderName::SubscriptionState),
        Some("terminated")
    );
    assert_eq!(n.body, body.as_bytes());
    assert_eq!(p.events(), vec![Event::SubscriptionEnded { sub }]);
    assert_eq!(p.ep.subscription_count(), 0);
    assert_eq!(
        p.ep.notify_subscription(p.now, sub, "application/simple-message-summary", b""),
        Err(CallError::UnknownCall)
    );
    // A refresh of the ended subscription: 481.
    p.send(&subscribe(
        "sub2",
        "z9hG4bK-r3",
        Some(&tag),
        4,
        "Event: message-summary\r\nExpires: 120\r\n",
    ));
    assert_eq!(p.statuses(), vec![481]);
}

#[test]
fn an_unrefreshed_subscription_times_out_with_a_terminated_notify() {
    let mut p = mwi_peer();
    let (sub, _) = subscribed(&mut p, "sub3", "Expires: 60\r\n");
    p.advance(Duration::from_secs(59));
    assert!(p.requests().is_empty());
    p.advance(Duration::from_secs(2));
    let n = p.requests().pop().expect("a NOTIFY at expiry");
    assert_eq!(
        n.headers.get(&HeaderName::SubscriptionState),
        Some("terminated;reason=timeout")
    );
    assert!(n.body.is_empty());
    assert_eq!(p.events(), vec![Event::SubscriptionEnded { sub }]);
}

#[test]
fn subscribe_errors_other_packages_brief_intervals_and_failed_notifies() {
    let mut p = mwi_peer();
    // Another package: 489 naming the one we have.
    p.send(&subscribe(
        "e1",
        "z9hG4bK-e1",
        None,
        1,
        "Event: presence\r\n",
    ));
    let r = p.responses().pop().unwrap();
    assert_eq!(r.status, 489);
    assert_eq!(
        r.headers.get(&HeaderName::AllowEvents),
        Some("message-summary")
    );
    // No Event header at all: 489 too.
    p.send(&subscribe("e2", "z9hG4bK-e2", None, 1, ""));
    assert_eq!(p.statuses(), vec![489]);
    // Too short: 423 with Min-Expires.
    p.send(&subscribe(
        "e3",
        "z9hG4bK-e3",
        None,
        1,
        "Event: message-summary\r\nExpires: 5\r\n",
    ));
    let r = p.responses().pop().unwrap();
    assert_eq!(
        (
            r.status,
            r.headers.get(&HeaderName::Other("Min-Expires".into()))
        ),
        (423, Some("60"))
    );
    // Garbage Expires: 400.
    p.send(&subscribe(
        "e4",
        "z9hG4bK-e4",
        None,
        1,
        "Event: message-summary\r\nExpires: soon\r\n",
    ));
    assert_eq!(p.statuses(), vec![400]);
    // A refresh for a dialog we never made: 481.
    p.send(&subscribe(
        "e5",
        "z9hG4bK-e5",
        Some("nope"),
        2,
        "Event: message-summary\r\n",
    ));
    assert_eq!(p.statuses(), vec![481]);
    assert!(p.events().is_empty());

    // Too long is cut to max_expires; none asked means max_expires.
    let (sub, _) = subscribed(&mut p, "e6", "Expires: 99999\r\n");
    p.ep.notify_subscription(
        p.now,
        sub,
        "application/simple-message-summary",
        SUMMARY.as_bytes(),
    )
    .unwrap();
    let n = p.requests().pop().unwrap();
    assert_eq!(
        n.headers.get(&HeaderName::SubscriptionState),
        Some("active;expires=3600")
    );
    // The subscriber says the dialog is gone: the subscription ends.
    p.send(&reply_to(&n, 481));
    let ev = p.events();
    assert!(ev.contains(&Event::SubscriptionEnded { sub }), "{ev:?}");
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::RequestFailed {
            status: Some(481),
            ..
        }
    )));
    assert_eq!(p.ep.subscription_count(), 0);

    // A subscriber that never answers: Timer F ends it too.
    let (sub, _) = subscribed(&mut p, "e7", "");
    p.ep.notify_subscription(
        p.now,
        sub,
        "application/simple-message-summary",
        SUMMARY.as_bytes(),
    )
    .unwrap();
    p.advance(Duration::from_secs(33));
    let ev = p.events();
    assert!(ev.contains(&Event::SubscriptionEnded { sub }), "{ev:?}");
    let retransmitted = p.requests();
    assert!(
        retransmitted.len() > 3,
        "the NOTIFY was retransmitted over UDP"
    );

    // An unknown mailbox: the application terminates with noresource.
    let (sub, _) = subscribed(&mut p, "e8", "");
    p.out();
    p.ep.terminate_subscription(p.now, sub, "noresource")
        .unwrap();
    let n = p.requests().pop().unwrap();
    assert_eq!(
        n.headers.get(&HeaderName::SubscriptionState),
        Some("terminated;reason=noresource")
    );
    assert_eq!(p.events(), vec![Event::SubscriptionEnded { sub }]);
    assert_eq!(
        p.ep.terminate_subscription(p.now, sub, "noresource"),
        Err(CallError::UnknownCall)
    );
}

#[test]
fn a_fetch_with_expires_zero_gets_one_terminated_notify() {
    let mut p = mwi_peer();
    p.send(&subscribe(
        "f1",
        "z9hG4bK-f1",
        None,
        1,
        "Event: message-summary\r\nExpires: 0\r\n",
    ));
    assert_eq!(p.statuses(), vec![200]);
    let sub = match p.events().as_slice() {
        [
            Event::Subscription {
                sub,
                change: SubscriptionChange::Ending,
                ..
            },
        ] => *sub,
        other => panic!("{other:?}"),
    };
    // If the application never answers, the endpoint ends it after 64·T1.
    p.advance(Duration::from_secs(33));
    let n = p.requests().pop().unwrap();
    assert_eq!(
        n.headers.get(&HeaderName::SubscriptionState),
        Some("terminated")
    );
    assert_eq!(p.events(), vec![Event::SubscriptionEnded { sub }]);
}

/// The fallback controller: the configured PBX that sent the latest INVITE,
/// OPTIONS or SUBSCRIBE controls the node; a 503 while not accepting
/// (a backup in standby) still counts, and OPTIONS is still answered.
#[test]
fn the_latest_pbx_to_send_a_request_controls_the_node() {
    use super::fallback::PbxPeer;
    let mut cfg = Config::new(US.parse().unwrap());
    cfg.pbx_peers = vec![
        PbxPeer {
            name: "main".into(),
            addr: "127.0.0.1:5070".parse().unwrap(),
        },
        PbxPeer {
            name: "fallback".into(),
            addr: PEER.parse().unwrap(),
        },
    ];
    let mut p = Peer::with(cfg);
    assert_eq!(p.ep.controller().active().unwrap().name, "main");
    p.ep.set_accepting(false);
    p.send(&simple("OPTIONS", ""));
    assert_eq!(
        p.statuses(),
        vec![200],
        "OPTIONS answered while not accepting"
    );
    assert_eq!(
        p.events(),
        vec![Event::ControllerChanged {
            name: "fallback".into(),
            addr: PEER.parse().unwrap()
        }]
    );
    p.send(&invite("fallback-1", "z9hG4bK-fb1"));
    let st = p.statuses();
    assert_eq!(st.last(), Some(&503), "{st:?}");
    assert!(p.events().is_empty(), "the same PBX again: no change");
    // A BYE or an answer to our NOTIFY is not a sign of control.
    p.peer = "127.0.0.1:5070".parse().unwrap();
    p.send(&simple("BYE", "").replace("simple-BYE", "other"));
    while p.ep.poll_transmit().is_some() {}
    assert!(p.events().is_empty());
    assert_eq!(p.ep.controller().active().unwrap().name, "fallback");
    p.send(&simple("OPTIONS", "").replace("z9hG4bK-OPTIONS", "z9hG4bK-o2"));
    while p.ep.poll_transmit().is_some() {}
    assert!(
        matches!(p.events().as_slice(), [Event::ControllerChanged { name, .. }] if name == "main")
    );
}
