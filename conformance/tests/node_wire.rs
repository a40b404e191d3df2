//! The zgossip node on the wire, against raw ZeroMQ sockets standing in for
//! a CZMQ 4.2 peer: the frames it sends are the golden frames captured from
//! CZMQ, and it never sends a CZMQ server what would make it drop the
//! session (PONG, INVALID, a second HELLO on a live session).
// Needs the public models and golden frames (../shared); see shared_material.rs.
#![cfg(shared_models)]

use std::time::Duration;

use zgossip::msg::{Announce, ZgossipMsg};
use zgossip::{Codec, Node};
use zproto_conformance::golden::{self, Capture};
use zproto_runtime::reactor;

const WAIT: Duration = Duration::from_secs(10);

fn golden(label: &str) -> Vec<Vec<u8>> {
    let captures = golden::load("czmq_zgossip.frames.txt").unwrap();
    let capture: &Capture = captures
        .iter()
        .find(|c| c.label.starts_with(label))
        .unwrap();
    capture.frames.clone()
}

/// A raw ROUTER standing in for a CZMQ server; returns it and its endpoint.
fn raw_router() -> (zmq::Socket, String) {
    let router = reactor::socket(zmq::ROUTER).unwrap();
    router.set_linger(0).unwrap();
    router.set_rcvtimeo(WAIT.as_millis() as i32).unwrap();
    router.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = router.get_last_endpoint().unwrap().unwrap();
    (router, endpoint)
}

/// The next message from our node: (routing id, frames).
fn next(router: &zmq::Socket) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut frames = router.recv_multipart(0).expect("a message within the wait");
    let id = frames.remove(0);
    (id, frames)
}

/// The connection's first message from our remote: the PING that offers
/// our extensions (trailing bytes a CZMQ server ignores). Answered as a
/// CZMQ server answers it, with a plain PONG; returns the routing id.
fn answer_probe_as_czmq(router: &zmq::Socket) -> Vec<u8> {
    let (id, frames) = next(router);
    assert_eq!(
        frames,
        vec![vec![0xaa, 0xa0, 0x03, 0x01, 0, 0, 0, 15]],
        "probe"
    );
    let pong = golden("server reply to PING");
    router
        .send_multipart([vec![id.clone()], pong].concat(), 0)
        .unwrap();
    id
}

#[test]
fn a_connecting_node_sends_czmqs_exact_frames() {
    let (router, endpoint) = raw_router();
    let node = Node::new("ours").unwrap();
    node.announce("inproc://alpha-1", "service1").unwrap();
    node.connect(&endpoint).unwrap();
    // To a server that answers like CZMQ's, exactly CZMQ's frames.
    answer_probe_as_czmq(&router);
    assert_eq!(next(&router).1, golden("node->remote #1"), "HELLO");
    assert_eq!(
        next(&router).1,
        golden("node->remote #2"),
        "PUBLISH/ANNOUNCE"
    );
    assert_eq!(next(&router).1, vec![vec![0xaa, 0xa0, 0x03, 0x01]], "PING");
}

#[test]
fn our_server_replies_with_czmqs_exact_frames() {
    let node = Node::new("ours").unwrap();
    node.bind("tcp://127.0.0.1:*").unwrap();
    let dealer = reactor::socket(zmq::DEALER).unwrap();
    dealer.set_linger(0).unwrap();
    dealer.set_rcvtimeo(WAIT.as_millis() as i32).unwrap();
    dealer
        .connect(&format!("tcp://127.0.0.1:{}", node.port().unwrap()))
        .unwrap();
    dealer.send(&[0xaa, 0xa0, 0x03, 0x01][..], 0).unwrap();
    assert_eq!(
        vec![dealer.recv_bytes(0).unwrap()],
        golden("server reply to PING")
    );
    let publish = ZgossipMsg::from(Announce {
        endpoint: "k".into(),
        service: "v".into(),
        ttl: 0,
        ..Default::default()
    });
    dealer.send_multipart(publish.encode().unwrap(), 0).unwrap();
    assert_eq!(
        vec![dealer.recv_bytes(0).unwrap()],
        golden("server reply to PUBLISH before HELLO")
    );
}

/// Whatever a server answers, our remote sends only HELLO, ANNOUNCE and PING;
/// after INVALID (its session is gone) exactly one HELLO and its tuples; and
/// it ignores the left-over ttl CZMQ puts in its PUBLISHes.
#[test]
fn a_remote_sends_only_what_a_czmq_server_accepts() {
    let (router, endpoint) = raw_router();
    let node = Node::new("ours").unwrap();
    node.announce("tcp://ours:1", "mine").unwrap();
    node.connect(&endpoint).unwrap();
    answer_probe_as_czmq(&router);
    let mut sent: Vec<u8> = Vec::new();
    let mut id = Vec::new();
    for _ in 0..3 {
        let (who, frames) = next(&router);
        id = who;
        sent.push(ZgossipMsg::decode(&frames).unwrap().id());
    }
    assert_eq!(sent, [1, 2, 3], "HELLO, ANNOUNCE, PING");
    // The server answers the marker PING, then forwards a tuple with a
    // left-over ttl, then the session expires: INVALID.
    let reply = |m: ZgossipMsg| {
        let mut frames = vec![id.clone()];
        frames.extend(m.encode().unwrap());
        router.send_multipart(frames, 0).unwrap();
    };
    reply(zgossip::msg::Pong::default().into());
    reply(
        Announce {
            endpoint: "tcp://czmq:1".into(),
            service: "theirs".into(),
            ttl: 5000,
            ..Default::default()
        }
        .into(),
    );
    // Our own tuple is delivered too, as CZMQ does; then theirs.
    for wanted in [("tcp://ours:1", "mine"), ("tcp://czmq:1", "theirs")] {
        let d = node.recv_delivery(WAIT).expect("delivered");
        assert_eq!((d.endpoint.as_str(), d.service.as_str()), wanted);
    }
    reply(zgossip::msg::Invalid.into());
    // Keepalive PINGs, each answered with a PONG as a CZMQ server answers
    // them, until `remote/resync` has passed since the first generation;
    // then one HELLO, both tuples (ttl 0), the marker PING. (A server that
    // stops answering PINGs is silent, and a silent server gets nothing but
    // PINGs until it answers again.)
    let deadline = std::time::Instant::now() + WAIT;
    let mut resync = Vec::new();
    while resync.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no new generation within {WAIT:?} of INVALID"
        );
        let message = ZgossipMsg::decode(&next(&router).1).unwrap();
        if matches!(message, ZgossipMsg::Ping(_)) {
            reply(zgossip::msg::Pong::default().into());
        } else {
            resync.push(message);
        }
    }
    for _ in 0..3 {
        resync.push(ZgossipMsg::decode(&next(&router).1).unwrap());
    }
    let ids: Vec<u8> = resync.iter().map(Codec::id).collect();
    assert_eq!(ids.iter().filter(|&&i| i == 1).count(), 1, "{resync:?}");
    assert_eq!(ids.last(), Some(&3), "{resync:?}");
    for message in &resync {
        if let ZgossipMsg::Announce(a) = message {
            assert_eq!(a.ttl, 0);
            // A server that answered the probe plainly gets plain tuples.
            assert_eq!(
                (a.origin, a.revision, a.lease, a.flags),
                (None, None, None, None)
            );
        }
    }
    // Keepalives follow: PINGs only, at least three per CZMQ session timeout.
    router.set_rcvtimeo(1000).unwrap();
    reply(zgossip::msg::Pong::default().into());
    let mut pings = 0;
    while let Ok(mut frames) = router.recv_multipart(0) {
        frames.remove(0);
        let message = ZgossipMsg::decode(&frames).unwrap();
        assert!(matches!(message, ZgossipMsg::Ping(_)), "{message:?}");
        pings += 1;
        if pings == 3 {
            break;
        }
    }
    assert_eq!(pings, 3, "PINGs at least every 1000 ms / 3");
}
