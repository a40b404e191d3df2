//! The tuple lifecycle over tcp (docs/zgossip.md, "Tuple lifecycle"): concurrent
//! writes of one endpoint converge everywhere, in chains and rings, to the
//! same value; a one-off overwrite of a node's own tuple fails everywhere;
//! a killed node's tuples expire everywhere within their lease; UNPUBLISH
//! removes a tuple everywhere, and stale copies do not bring it back.
//! Every wait is bounded and waits on the nodes' state or deliveries.

use zgossip_testkit as support;

use std::time::{Duration, Instant};

use support::{dealer, frame, Running, WAIT};
use zgossip::msg::{Announce, Hello, Ping, ZgossipMsg};
use zgossip::{Codec, Node};

const BIN: &str = env!("CARGO_BIN_EXE_zgossip");

/// A node bound to loopback tcp; its endpoint.
fn bound(name: &str) -> (Node, String) {
    let node = Node::new(name).unwrap();
    node.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = format!("tcp://127.0.0.1:{}", node.port().unwrap());
    (node, endpoint)
}

/// `n` nodes, each connected to the one before it; a ring if `ring`.
fn topology(n: usize, ring: bool) -> Vec<(Node, String)> {
    let nodes: Vec<(Node, String)> = (0..n).map(|i| bound(&format!("n{i}"))).collect();
    for i in 1..n {
        nodes[i].0.connect(&nodes[i - 1].1).unwrap();
    }
    if ring {
        nodes[0].0.connect(&nodes[n - 1].1).unwrap();
    }
    nodes
}

/// The live service of `endpoint` at `node`.
fn value(node: &Node, endpoint: &str) -> Option<String> {
    node.tuples()
        .unwrap()
        .into_iter()
        .find(|(e, _)| e == endpoint)
        .map(|(_, s)| s)
}

/// Wait (bounded) until `done` holds.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Wait until every node holds `endpoint` = `service` (or nothing).
fn wait_all(nodes: &[(Node, String)], endpoint: &str, service: Option<&str>) {
    wait_until(&format!("{endpoint} = {service:?} everywhere"), || {
        nodes
            .iter()
            .all(|(n, _)| value(n, endpoint).as_deref() == service)
    });
}

#[test]
fn concurrent_writes_of_one_endpoint_converge_in_chains_and_rings() {
    for ring in [false, true] {
        let nodes = topology(5, ring);
        let (first, last) = (&nodes[0].0, &nodes[4].0);
        for round in 0..3 {
            let endpoint = format!("tcp://shared:{round}");
            // Both at once, from the two ends.
            first
                .announce(&endpoint, &format!("first-{round}"))
                .unwrap();
            last.announce(&endpoint, &format!("last-{round}")).unwrap();
            // The higher origin keeps the endpoint: the same value on
            // every node, whatever the order the writes met in.
            let winner = if first.origin() > last.origin() {
                format!("first-{round}")
            } else {
                format!("last-{round}")
            };
            wait_all(&nodes, &endpoint, Some(&winner));
        }
        let loser = if first.origin() > last.origin() {
            last
        } else {
            first
        };
        assert!(
            loser.stats().unwrap().contests >= 3,
            "the losing owner answered each competing write before giving up"
        );
    }
}

/// A raw peer that negotiated versioned tuples, said HELLO and read the
/// replay until `endpoint`'s tuple: the socket and that ANNOUNCE.
fn versioned_peer(server: &str, endpoint: &str) -> (zmq::Socket, Announce) {
    versioned_peer_with(server, endpoint, 1)
}

/// [`versioned_peer`], offering `extensions`.
fn versioned_peer_with(server: &str, endpoint: &str, extensions: u32) -> (zmq::Socket, Announce) {
    let peer = dealer(server);
    let offer = Ping {
        extensions: Some(extensions),
    };
    peer.send(frame(offer), 0).unwrap();
    let pong = ZgossipMsg::decode(&[peer.recv_bytes(0).unwrap()]).unwrap();
    assert!(
        matches!(&pong, ZgossipMsg::Pong(p) if p.extensions == Some(extensions)),
        "{pong:?}"
    );
    peer.send(frame(Hello), 0).unwrap();
    loop {
        let message = ZgossipMsg::decode(&[peer.recv_bytes(0).expect("the replay")]).unwrap();
        if let ZgossipMsg::Announce(a) = message {
            if a.endpoint == endpoint {
                assert!(a.origin.is_some() && a.revision.is_some(), "{a:?}");
                return (peer, a);
            }
        }
    }
}

/// Everything the peer sent before this has been handled: a PING's PONG
/// comes after it.
fn round_trip(peer: &zmq::Socket) {
    peer.send(frame(Ping::default()), 0).unwrap();
    loop {
        let bytes = peer.recv_bytes(0).expect("PONG");
        if matches!(ZgossipMsg::decode(&[bytes]), Ok(ZgossipMsg::Pong(_))) {
            return;
        }
    }
}

#[test]
fn a_one_off_overwrite_of_an_owned_tuple_fails_everywhere() {
    let nodes = topology(3, false);
    let owner = &nodes[0].0;
    owner.announce("tcp://10.0.0.5:9000", "printer").unwrap();
    wait_all(&nodes, "tcp://10.0.0.5:9000", Some("printer"));
    let (attacker, seen) = versioned_peer(&nodes[2].1, "tcp://10.0.0.5:9000");
    // Unversioned, as a CZMQ node (or anyone) would send it: it ranks below.
    attacker
        .send(support::announce("tcp://10.0.0.5:9000", "evil-printer"), 0)
        .unwrap();
    round_trip(&attacker);
    assert_eq!(
        value(&nodes[2].0, "tcp://10.0.0.5:9000").as_deref(),
        Some("printer")
    );
    // Versioned, ahead of the owner, from the highest origin there is.
    let forged = Announce {
        service: "evil-printer".into(),
        origin: Some(u64::MAX),
        revision: seen.revision.map(|r| r + 5),
        lease: Some(60_000),
        flags: Some(0),
        ..seen
    };
    attacker.send(frame(forged), 0).unwrap();
    round_trip(&attacker);
    // The owner answers one version higher; every node ends with its value.
    wait_all(&nodes, "tcp://10.0.0.5:9000", Some("printer"));
    assert!(owner.stats().unwrap().contests >= 1);
    // The owner itself never took the forged value.
    assert!(
        owner.try_deliveries().all(|d| d.service != "evil-printer"),
        "the owner's own tuple was overwritten"
    );
}

#[test]
fn a_killed_nodes_tuples_expire_everywhere_within_their_lease() {
    const LEASE: Duration = Duration::from_millis(1500);
    let (a, a_endpoint) = bound("a");
    let (b, _) = bound("b");
    b.connect(&a_endpoint).unwrap();
    let mut x = Running::start(BIN, &["node"]);
    x.send(&format!("SET tuples/lease {}", LEASE.as_millis()));
    x.send(&format!("CONNECT {a_endpoint}"));
    x.send("ANNOUNCE tcp://x:1 doomed");
    for node in [&a, &b] {
        let d = node.recv_delivery(WAIT).expect("delivered");
        assert_eq!((d.endpoint.as_str(), d.removed), ("tcp://x:1", false));
    }
    // Renewed while its owner lives: still there after two leases.
    assert_eq!(a.recv_delivery(LEASE * 2), None);
    assert_eq!(value(&b, "tcp://x:1").as_deref(), Some("doomed"));
    x.child.kill().unwrap();
    let killed = Instant::now();
    for node in [&a, &b] {
        let d = node.recv_delivery(WAIT).expect("a removal");
        assert_eq!(
            (d.endpoint.as_str(), d.service.as_str(), d.removed),
            ("tcp://x:1", "doomed", true)
        );
        assert_eq!(node.status().unwrap(), 0);
    }
    // Within the lease of the last renewal (sent before the kill), plus
    // slack for a loaded machine.
    let took = killed.elapsed();
    eprintln!("a killed node's tuple expired everywhere {took:?} after the kill (lease {LEASE:?})");
    assert!(
        took <= LEASE + Duration::from_millis(1000),
        "expired {took:?} after the kill"
    );
}

#[test]
fn unpublish_removes_everywhere_and_stale_copies_stay_out() {
    let nodes = topology(3, false);
    let (owner, middle) = (&nodes[0].0, &nodes[1]);
    owner.announce("tcp://old:1", "retired").unwrap();
    wait_all(&nodes, "tcp://old:1", Some("retired"));
    // A peer of the middle node keeps a copy, stamp and all.
    let (stale, copy) = versioned_peer(&middle.1, "tcp://old:1");
    for (node, _) in &nodes {
        while node.try_deliveries().next().is_some() {}
    }
    owner.unpublish("tcp://old:1").unwrap();
    for (node, _) in &nodes {
        let d = node.recv_delivery(WAIT).expect("a removal");
        assert_eq!(
            (d.endpoint.as_str(), d.service.as_str(), d.removed),
            ("tcp://old:1", "retired", true)
        );
    }
    wait_all(&nodes, "tcp://old:1", None);
    // The tombstone reached the peer that takes versioned tuples.
    let tombstone = loop {
        let bytes = stale.recv_bytes(0).expect("the tombstone");
        if let Ok(ZgossipMsg::Announce(a)) = ZgossipMsg::decode(&[bytes]) {
            break a;
        }
    };
    assert_eq!(tombstone.flags, Some(1), "{tombstone:?}");
    // Stale replays, versioned and not, on this session and a new one.
    stale.send(frame(copy.clone()), 0).unwrap();
    stale
        .send(support::announce("tcp://old:1", "retired"), 0)
        .unwrap();
    round_trip(&stale);
    let late = dealer(&nodes[2].1);
    late.send(frame(Hello), 0).unwrap();
    late.send(frame(copy), 0).unwrap();
    round_trip(&late);
    for (node, _) in &nodes {
        assert_eq!(value(node, "tcp://old:1"), None);
        assert_eq!(node.recv_delivery(Duration::from_millis(200)), None);
        assert_eq!(node.status().unwrap(), 0);
    }
    // A later write brings the endpoint back: removal is not a ban.
    owner.announce("tcp://old:1", "reborn").unwrap();
    wait_all(&nodes, "tcp://old:1", Some("reborn"));
}

#[test]
fn unstamped_tuples_live_forever_unless_given_a_foreign_lease() {
    let (keeper, keeper_endpoint) = bound("keeper");
    let (expirer, expirer_endpoint) = bound("expirer");
    expirer.set("tuples/foreign-lease", "400").unwrap();
    // A CZMQ-like peer: HELLO, then a plain tuple, to each node.
    let mut peers = Vec::new();
    for endpoint in [&keeper_endpoint, &expirer_endpoint] {
        let peer = dealer(endpoint);
        peer.send(frame(Hello), 0).unwrap();
        peer.send(support::announce("tcp://czmq:1", "plain"), 0)
            .unwrap();
        round_trip(&peer);
        peers.push(peer);
    }
    for node in [&keeper, &expirer] {
        let d = node.recv_delivery(WAIT).expect("delivered");
        assert_eq!((d.endpoint.as_str(), d.removed), ("tcp://czmq:1", false));
    }
    let heard = Instant::now();
    let d = expirer.recv_delivery(WAIT).expect("expired");
    assert_eq!((d.endpoint.as_str(), d.removed), ("tcp://czmq:1", true));
    let took = heard.elapsed();
    assert!(took <= Duration::from_millis(400 + 1000), "{took:?}");
    // Heard again, it is back (it was never removed by its writer).
    peers[1]
        .send(support::announce("tcp://czmq:1", "plain"), 0)
        .unwrap();
    let d = expirer.recv_delivery(WAIT).expect("back");
    assert_eq!((d.endpoint.as_str(), d.removed), ("tcp://czmq:1", false));
    // Without a foreign lease, as CZMQ: still there.
    assert_eq!(value(&keeper, "tcp://czmq:1").as_deref(), Some("plain"));
    assert_eq!(keeper.recv_delivery(Duration::from_millis(200)), None);
}

/// Plumtree messages are only for peers that agreed them: from one that did
/// not, they change nothing; a malformed IHAVE is refused and counted; a
/// GRAFT asks only for what the node holds; the node keeps serving.
#[test]
fn plumtree_messages_from_hostile_peers_change_nothing() {
    use zgossip::msg::{Graft, Ihave, Prune};
    let (node, endpoint) = bound("target");
    node.announce("tcp://mine:1", "M").unwrap();
    // Not agreed (a plain HELLO): ignored.
    let plain = dealer(&endpoint);
    plain.send(frame(Hello), 0).unwrap();
    plain.send(frame(Prune), 0).unwrap();
    plain
        .send(
            frame(Ihave {
                tuples: vec![9; 40],
            }),
            0,
        )
        .unwrap();
    plain
        .send(
            frame(Graft {
                endpoints: vec!["tcp://mine:1".into()],
            }),
            0,
        )
        .unwrap();
    plain.send(frame(Ping::default()), 0).unwrap();
    let mut announces = 0;
    loop {
        let bytes = plain.recv_bytes(0).expect("the replay, then PONG");
        match ZgossipMsg::decode(&[bytes]).unwrap() {
            ZgossipMsg::Pong(_) => break,
            ZgossipMsg::Announce(_) => announces += 1,
            other => panic!("{other:?} to a peer that did not agree Plumtree"),
        }
    }
    assert_eq!(announces, 1, "the HELLO's replay only, no GRAFT answer");
    let before = node.stats().unwrap();
    assert_eq!(before.refused_tuples, 0, "ignored, not even parsed");
    // Agreed: a malformed IHAVE is refused and counted; a GRAFT for an
    // endpoint the node does not hold answers nothing, one it holds its
    // tuple.
    let (peer, _) = versioned_peer_with(&endpoint, "tcp://mine:1", 3);
    peer.send(
        frame(Ihave {
            tuples: vec![200, 1, 2],
        }),
        0,
    )
    .unwrap();
    let graft = Graft {
        endpoints: vec!["tcp://nobody:1".into(), "tcp://mine:1".into()],
    };
    peer.send(frame(graft), 0).unwrap();
    let mut answers = Vec::new();
    peer.send(frame(Ping::default()), 0).unwrap();
    loop {
        let bytes = peer.recv_bytes(0).expect("answers, then PONG");
        match ZgossipMsg::decode(&[bytes]).unwrap() {
            ZgossipMsg::Pong(_) => break,
            ZgossipMsg::Announce(a) => answers.push(a.endpoint),
            _ => {}
        }
    }
    assert_eq!(answers, ["tcp://mine:1"]);
    assert_eq!(node.stats().unwrap().refused_tuples, 1);
    assert_eq!(node.status().unwrap(), 1);
}
