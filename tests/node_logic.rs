//! The node's gossip logic over the in-memory mesh, with simulated time:
//! CZMQ's self-test scenario, convergence of chains and late joiners,
//! keepalive past the session timeout, re-sync after a restart, garbage.

use std::time::{Duration, Instant};

use zgossip::mesh::Mesh;
use zgossip::Settings;

fn all_hold(mesh: &Mesh, nodes: &[usize], tuples: &[(&str, &str)]) -> bool {
    nodes.iter().all(|&n| {
        let node = mesh.node(n).expect("node up");
        node.tuples().len() == tuples.len()
            && tuples
                .iter()
                .all(|(e, s)| node.tuples().service(e).as_deref() == Some(*s))
    })
}

/// Let `ms` milliseconds pass in steps of 50 ms.
fn advance(mesh: &mut Mesh, now: &mut Instant, ms: u64) {
    for _ in 0..ms / 50 {
        *now += Duration::from_millis(50);
        mesh.tick(*now);
    }
}

#[test]
fn czmq_self_test_scenario() {
    let mut now = Instant::now();
    let mut mesh = Mesh::new();
    let (base, alpha, beta) = (
        mesh.add(Settings::default()),
        mesh.add(Settings::default()),
        mesh.add(Settings::default()),
    );
    mesh.connect(alpha, base, now);
    mesh.connect(beta, base, now);
    mesh.run(now);
    mesh.announce(alpha, "inproc://alpha-1", "service1", now)
        .expect("announced");
    mesh.announce(alpha, "inproc://alpha-2", "service2", now)
        .expect("announced");
    mesh.announce(beta, "inproc://beta-1", "service1", now)
        .expect("announced");
    mesh.announce(beta, "inproc://beta-2", "service2", now)
        .expect("announced");
    mesh.run(now);
    advance(&mut mesh, &mut now, 200);
    let tuples = [
        ("inproc://alpha-1", "service1"),
        ("inproc://alpha-2", "service2"),
        ("inproc://beta-1", "service1"),
        ("inproc://beta-2", "service2"),
    ];
    assert!(all_hold(&mesh, &[base, alpha, beta], &tuples));
    // Each node delivered each tuple exactly once.
    let deliveries = mesh.take_deliveries();
    assert_eq!(deliveries.len(), 12, "{deliveries:?}");
}

#[test]
fn a_chain_of_twenty_converges() {
    let now = Instant::now();
    let mut mesh = Mesh::new();
    let nodes: Vec<usize> = (0..20).map(|_| mesh.add(Settings::default())).collect();
    for pair in nodes.windows(2) {
        mesh.connect(pair[1], pair[0], now);
    }
    mesh.run(now);
    let names: Vec<(String, String)> = nodes
        .iter()
        .map(|n| (format!("tcp://10.0.0.{n}:9"), format!("svc-{n}")))
        .collect();
    for (n, (e, s)) in nodes.iter().zip(&names) {
        mesh.announce(*n, e, s, now).expect("announced");
    }
    mesh.run(now);
    let tuples: Vec<(&str, &str)> = names
        .iter()
        .map(|(e, s)| (e.as_str(), s.as_str()))
        .collect();
    assert!(all_hold(&mesh, &nodes, &tuples));
}

#[test]
fn a_late_joiner_receives_the_full_state() {
    let now = Instant::now();
    let mut mesh = Mesh::new();
    let (a, b) = (mesh.add(Settings::default()), mesh.add(Settings::default()));
    mesh.connect(b, a, now);
    mesh.announce(a, "tcp://a:1", "A", now).expect("announced");
    mesh.announce(b, "tcp://b:1", "B", now).expect("announced");
    mesh.run(now);
    let late = mesh.add(Settings::default());
    mesh.connect(late, b, now);
    mesh.run(now);
    assert!(all_hold(
        &mesh,
        &[a, b, late],
        &[("tcp://a:1", "A"), ("tcp://b:1", "B")]
    ));
}

#[test]
fn announcements_long_after_connecting_still_reach_everyone() {
    let mut now = Instant::now();
    let mut mesh = Mesh::new();
    let (a, b, c) = (
        mesh.add(Settings::default()),
        mesh.add(Settings::default()),
        mesh.add(Settings::default()),
    );
    mesh.connect(b, a, now);
    mesh.connect(c, a, now);
    mesh.run(now);
    // Five server timeouts of silence but for keepalives.
    advance(
        &mut mesh,
        &mut now,
        5 * Settings::default().timeout.as_millis() as u64,
    );
    assert_eq!(
        mesh.node(a).unwrap().sessions(),
        2,
        "keepalives kept both sessions"
    );
    mesh.announce(b, "tcp://b:1", "B", now).expect("announced");
    mesh.announce(a, "tcp://a:1", "A", now).expect("announced");
    mesh.run(now);
    assert!(all_hold(
        &mesh,
        &[a, b, c],
        &[("tcp://a:1", "A"), ("tcp://b:1", "B")]
    ));
}

#[test]
fn a_silent_session_lives_while_its_peer_is_there_and_ends_when_it_is_gone() {
    let mut now = Instant::now();
    let mut mesh = Mesh::new();
    let (a, b) = (mesh.add(Settings::default()), mesh.add(Settings::default()));
    // b's remote is a connected peer; "ghost" says HELLO and is gone (no
    // node has that routing id, as libzmq would report).
    mesh.connect(b, a, now);
    mesh.inject_to_server(
        a,
        vec![b"ghost".to_vec(), vec![0xaa, 0xa0, 0x01, 0x01]],
        now,
    );
    assert_eq!(mesh.node(a).unwrap().sessions(), 2);
    let timeout = Settings::default().timeout.as_millis() as u64;
    advance(&mut mesh, &mut now, timeout + 100);
    assert_eq!(
        mesh.node(a).unwrap().sessions(),
        1,
        "the ghost's session ended"
    );
    assert_eq!(mesh.node(a).unwrap().stats().peers_gone, 1);
    // b, connected, keeps its session however long it is quiet; a tuple
    // from a still reaches it.
    advance(&mut mesh, &mut now, 5 * timeout);
    assert_eq!(mesh.node(a).unwrap().sessions(), 1);
    mesh.announce(a, "tcp://a:1", "A", now).expect("announced");
    mesh.run(now);
    assert!(all_hold(&mesh, &[a, b], &[("tcp://a:1", "A")]));
}

#[test]
fn a_restarted_server_is_resynchronised_both_ways() {
    let now = Instant::now();
    let mut mesh = Mesh::new();
    let (a, b) = (mesh.add(Settings::default()), mesh.add(Settings::default()));
    mesh.connect(b, a, now);
    mesh.announce(b, "tcp://b:1", "B", now).expect("announced");
    mesh.run(now);
    mesh.stop(a);
    mesh.announce(b, "tcp://b:2", "B2", now).expect("announced");
    mesh.run(now);
    // The restart comes a while later: re-synchronisation waits out
    // `remote/resync` after the first one.
    let mut now = now + Settings::default().resync;
    mesh.restart(a, now);
    advance(&mut mesh, &mut now, 100);
    mesh.announce(a, "tcp://a:1", "A", now).expect("announced");
    mesh.run(now);
    let tuples = [("tcp://b:1", "B"), ("tcp://b:2", "B2"), ("tcp://a:1", "A")];
    assert!(all_hold(&mesh, &[a, b], &tuples));
}

#[test]
fn garbage_from_a_peer_is_dropped_and_the_node_keeps_serving() {
    let now = Instant::now();
    let mut mesh = Mesh::new();
    let (a, b) = (mesh.add(Settings::default()), mesh.add(Settings::default()));
    mesh.connect(b, a, now);
    mesh.run(now);
    for garbage in [
        vec![0xaa, 0xa0, 0x03, 0x02],
        vec![0xde, 0xad],
        vec![],
        vec![0xaa, 0xa0, 0x02, 0x01, 0x05, 0x61],
    ] {
        mesh.inject_to_server(a, vec![b"evil".to_vec(), garbage], now);
    }
    // A frame with no routing id at all.
    mesh.inject_to_server(a, vec![vec![0xaa, 0xa0, 0x03, 0x01]], now);
    assert_eq!(mesh.node(a).unwrap().stats().malformed, 5);
    mesh.announce(b, "tcp://b:1", "B", now).expect("announced");
    mesh.announce(a, "tcp://a:1", "A", now).expect("announced");
    mesh.run(now);
    assert!(all_hold(
        &mesh,
        &[a, b],
        &[("tcp://a:1", "A"), ("tcp://b:1", "B")]
    ));
}

#[test]
fn duplicates_stop_the_flood() {
    let now = Instant::now();
    let mut mesh = Mesh::new();
    // A ring: a -> b -> c -> a.
    let (a, b, c) = (
        mesh.add(Settings::default()),
        mesh.add(Settings::default()),
        mesh.add(Settings::default()),
    );
    mesh.connect(a, b, now);
    mesh.connect(b, c, now);
    mesh.connect(c, a, now);
    mesh.run(now);
    let before = mesh.frames_moved;
    mesh.announce(a, "tcp://a:1", "A", now).expect("announced");
    let moved = mesh.run(now);
    assert!(all_hold(&mesh, &[a, b, c], &[("tcp://a:1", "A")]));
    // Each of 3 links carries the tuple at most once each way.
    assert!(
        moved <= 6,
        "flood did not stop: {moved} frames ({before} before)"
    );
    let deliveries = mesh.take_deliveries();
    assert_eq!(
        deliveries
            .iter()
            .filter(|d| d.endpoint == "tcp://a:1")
            .count(),
        3
    );
}

#[test]
fn settings_are_checked() {
    let mut mesh = Mesh::new();
    let a = mesh.add(Settings::default());
    let node = mesh.node_mut(a).unwrap();
    node.set("server/timeout", "250").unwrap();
    assert_eq!(node.settings().timeout, Duration::from_millis(250));
    assert!(node.set("server/timeout", "soon").is_err());
    assert!(node.set("remote/ping", "0").is_err());
    assert!(node.set("server/nope", "1").is_err());
}

#[test]
fn an_announce_before_hello_is_refused_but_a_new_tuple_is_kept_and_a_known_one_never_changed() {
    let now = Instant::now();
    let mut mesh = Mesh::new();
    let (a, b) = (mesh.add(Settings::default()), mesh.add(Settings::default()));
    mesh.connect(b, a, now);
    mesh.run(now);
    // A peer with no session (as a CZMQ peer whose session expired).
    let announce = vec![
        0xaa, 0xa0, 0x02, 0x01, 0x03, b'k', b'e', b'y', 0, 0, 0, 1, b'v', 0, 0, 0, 0,
    ];
    mesh.inject_to_server(a, vec![b"stranger".to_vec(), announce], now);
    assert!(
        all_hold(&mesh, &[a, b], &[("key", "v")]),
        "stored and flooded"
    );
    assert_eq!(
        mesh.node(a).unwrap().sessions(),
        1,
        "the stranger's session ended with INVALID"
    );
    // But such a frame never changes a known tuple: anyone who reaches the
    // port could otherwise rewrite the directory with one frame.
    let rewrite = vec![
        0xaa, 0xa0, 0x02, 0x01, 0x03, b'k', b'e', b'y', 0, 0, 0, 4, b'e', b'v', b'i', b'l', 0, 0,
        0, 0,
    ];
    mesh.inject_to_server(a, vec![b"intruder".to_vec(), rewrite], now);
    assert!(
        all_hold(&mesh, &[a, b], &[("key", "v")]),
        "the known tuple stands"
    );
    assert_eq!(mesh.node(a).unwrap().stats().refused_tuples, 1);
}

#[test]
fn the_tuple_limit_refuses_new_endpoints_and_counts_them() {
    let now = Instant::now();
    let mut mesh = Mesh::new();
    let mut settings = Settings::default();
    settings.limits.tuples = 2;
    let (a, b) = (mesh.add(settings), mesh.add(Settings::default()));
    mesh.connect(b, a, now);
    for i in 0..3 {
        mesh.announce(b, &format!("tcp://b:{i}"), "B", now)
            .expect("b has no limit");
    }
    mesh.run(now);
    let node = mesh.node(a).unwrap();
    assert_eq!(node.tuples().len(), 2);
    assert_eq!(node.stats().refused_tuples, 1);
    // A new service for a known endpoint is still taken.
    mesh.announce(b, "tcp://b:0", "B2", now).expect("announced");
    mesh.run(now);
    assert_eq!(
        mesh.node(a)
            .unwrap()
            .tuples()
            .service("tcp://b:0")
            .as_deref(),
        Some("B2")
    );
    // The application is told.
    let err = mesh.announce(a, "tcp://a:1", "A", now).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the node holds limits/tuples (2) tuples already"
    );
}

/// ANNOUNCEs the node sent to peer `id`, by endpoint, from its outputs.
fn announces_to(node: &mut zgossip::NodeCore, id: &[u8]) -> Vec<(String, zgossip::Output)> {
    use zgossip::msg::ZgossipMsg;
    use zgossip::{Codec, Output};
    node.take_outputs()
        .into_iter()
        .filter_map(|output| match &output {
            Output::ToPeer(frames) if frames.first() == Some(id) => {
                match frames.with_frames(1, |body| ZgossipMsg::decode(body)) {
                    Ok(ZgossipMsg::Announce(a)) => Some((a.endpoint, output)),
                    _ => None,
                }
            }
            _ => None,
        })
        .collect()
}

/// A peer whose queue was full gets what it missed once, from the first
/// tuple refused: not the tuples sent before it (the replay started from
/// where the peer's HELLO replay had ended, so they went twice: 584,000
/// duplicates in a 3,000-node inproc swarm), and a tuple that arrives
/// while the replay is under way goes once, by the replay.
#[test]
fn a_peer_that_falls_behind_gets_each_missed_tuple_once() {
    use zgossip::msg::{Hello, ZgossipMsg};
    use zgossip::{Codec, NodeCore};
    let mut now = Instant::now();
    let mut node = NodeCore::new("node", Settings::default());
    let peer = b"\x00peer".to_vec();
    node.on_peer_connected(&peer);
    let hello = ZgossipMsg::from(Hello)
        .encode_routed(&peer)
        .expect("encodes");
    node.on_peer_frames(&hello, now);
    node.take_outputs();
    for i in 0..10 {
        node.announce(&format!("tcp://t:{i}"), "s", now)
            .expect("announced");
    }
    let sent = announces_to(&mut node, &peer);
    assert_eq!(sent.len(), 10, "each tuple forwarded once");
    // The peer's queue took the first five and refused the rest.
    let refused = sent.into_iter().skip(5).map(|(_, output)| (output, false));
    node.on_refused(refused, now);
    // Meanwhile a new tuple arrives: the replay will send it.
    node.announce("tcp://t:10", "s", now).expect("announced");
    assert!(
        announces_to(&mut node, &peer).is_empty(),
        "not forwarded now"
    );
    let mut again = Vec::new();
    for _ in 0..100 {
        now += Duration::from_millis(10);
        node.tick(now);
        again.extend(announces_to(&mut node, &peer).into_iter().map(|(e, _)| e));
    }
    let expected: Vec<String> = (5..=10).map(|i| format!("tcp://t:{i}")).collect();
    assert_eq!(again, expected);
    assert_eq!(node.stats().refused_sends, 5);
}

/// Every tuple of `tuples` at node `n`.
fn holds_all(mesh: &Mesh, n: usize, tuples: &[(String, String)]) -> bool {
    let node = mesh.node(n).expect("node up");
    tuples
        .iter()
        .all(|(e, s)| node.tuples().service(e).as_deref() == Some(s.as_str()))
}

#[test]
fn a_node_whose_tree_parent_dies_keeps_every_tuple_over_its_lazy_link() {
    // Before Plumtree worked as the paper has it, a node whose tree parent
    // was killed (its other link lazy) dropped all 50 tuples at +70 s, got
    // them back at +80 s, and dropped them again at +110 s.
    let mut now = Instant::now();
    let mut mesh = Mesh::new();
    let (owner, parent, other, child) = (
        mesh.add(Settings::default()),
        mesh.add(Settings::default()),
        mesh.add(Settings::default()),
        mesh.add(Settings::default()),
    );
    mesh.connect(parent, owner, now);
    mesh.connect(other, owner, now);
    // The child's first remote is its tree link; the second goes lazy.
    mesh.connect(child, parent, now);
    mesh.connect(child, other, now);
    mesh.run(now);
    let tuples: Vec<(String, String)> = (0..50)
        .map(|i| (format!("tcp://svc-{i}:80"), format!("service-{i}")))
        .collect();
    for (endpoint, service) in &tuples {
        mesh.announce(owner, endpoint, service, now)
            .expect("announced");
    }
    advance(&mut mesh, &mut now, 1000);
    assert!(holds_all(&mesh, child, &tuples));
    mesh.stop(parent);
    // Three minutes, six leases: the owner renews, and the child must hold
    // every tuple at every step.
    for step in 0..3600 {
        advance(&mut mesh, &mut now, 50);
        assert!(
            holds_all(&mesh, child, &tuples),
            "the child lost tuples {} ms after its parent died",
            (step + 1) * 50
        );
    }
}

#[test]
fn two_announcements_at_once_in_a_ring_of_three_leave_every_node_on_the_tree() {
    // In a fresh ring of three, two nodes announcing at the same moment
    // pruned links until one node had no eager link, and nothing made a
    // pruned link eager again: what was announced later reached it only by
    // IHAVE and GRAFT, each time after the GRAFT wait. A node may still
    // end with its links lazy (each got a duplicate), but the first GRAFT
    // puts it back on the tree.
    let mut now = Instant::now();
    let mut mesh = Mesh::new();
    let nodes: Vec<usize> = (0..3).map(|_| mesh.add(Settings::default())).collect();
    for i in 0..3 {
        mesh.connect(nodes[i], nodes[(i + 1) % 3], now);
    }
    mesh.run(now);
    mesh.announce(nodes[0], "tcp://a:80", "a", now)
        .expect("announced");
    mesh.announce(nodes[1], "tcp://b:80", "b", now)
        .expect("announced");
    advance(&mut mesh, &mut now, 2000);
    assert!(all_hold(
        &mesh,
        &nodes,
        &[("tcp://a:80", "a"), ("tcp://b:80", "b")]
    ));
    // One round that may need the GRAFT wait (repair)...
    for &n in &nodes {
        let endpoint = format!("tcp://repair-{n}:80");
        mesh.announce(n, &endpoint, "repair", now)
            .expect("announced");
    }
    advance(&mut mesh, &mut now, 1500);
    let repaired: Vec<(String, String)> = nodes
        .iter()
        .map(|n| (format!("tcp://repair-{n}:80"), "repair".to_string()))
        .collect();
    for &n in &nodes {
        assert!(holds_all(&mesh, n, &repaired), "node {n} not repaired");
    }
    // ...then each node announces again: pushed along the tree, every one
    // reaches every node well within the least GRAFT wait (a second).
    for &n in &nodes {
        let endpoint = format!("tcp://later-{n}:80");
        mesh.announce(n, &endpoint, "later", now)
            .expect("announced");
        advance(&mut mesh, &mut now, 100);
        for &m in &nodes {
            assert_eq!(
                mesh.node(m)
                    .expect("up")
                    .tuples()
                    .service(&endpoint)
                    .as_deref(),
                Some("later"),
                "node {m} lacks node {n}'s tuple 100 ms after it was announced"
            );
        }
    }
}

#[test]
fn a_batch_from_one_client_reaches_the_others_and_is_not_echoed() {
    let mut now = Instant::now();
    let mut mesh = Mesh::new();
    let hub = mesh.add(Settings::default());
    let clients: Vec<usize> = (0..3).map(|_| mesh.add(Settings::default())).collect();
    // The first client holds 100 tuples before it connects: its
    // synchronisation sends them to the hub in batches (ANNOUNCES).
    for t in 0..100 {
        mesh.announce(clients[0], &format!("tcp://10.0.0.{t}:1"), "svc", now)
            .expect("announced");
    }
    for &c in &clients {
        mesh.connect(c, hub, now);
    }
    mesh.run(now);
    advance(&mut mesh, &mut now, 2_000);
    let kind = |name: &str| {
        zgossip::MESSAGE_TYPES
            .iter()
            .position(|k| *k == name)
            .expect("a type")
    };
    let hub_stats = mesh.node(hub).expect("up").stats();
    assert!(
        hub_stats.received_by_type[kind("ANNOUNCES")] >= 4,
        "{hub_stats:?}"
    );
    assert_eq!(
        hub_stats.received_by_type[kind("ANNOUNCE")],
        0,
        "{hub_stats:?}"
    );
    for &c in &clients {
        assert_eq!(mesh.node(c).expect("up").tuples().len(), 100);
    }
    // The sender's own tuples did not come back to it.
    let sender = mesh.node(clients[0]).expect("up").stats();
    assert_eq!(sender.duplicates, 0, "{sender:?}");
}

/// What a node sent to the peer with `routing_id`, decoded.
fn sent_to_peer(outputs: &[zgossip::Output], routing_id: &[u8]) -> Vec<zgossip::msg::ZgossipMsg> {
    use zgossip::Codec;
    outputs
        .iter()
        .filter_map(|o| match o {
            zgossip::Output::ToPeer(frames) if frames.first() == Some(routing_id) => {
                frames.with_frames(1, |body| zgossip::msg::ZgossipMsg::decode(body).ok())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn tuples_that_came_in_one_burst_go_on_in_one_batch() {
    use zgossip::msg::{Announce, Hello, Ping, ZgossipMsg};
    use zgossip::{Codec, NodeCore};
    let now = Instant::now();
    let mut hub = NodeCore::new("hub", Settings::default());
    let frames = |id: &[u8], message: ZgossipMsg| {
        let mut frames = vec![id.to_vec()];
        frames.extend(message.encode().expect("encode"));
        frames
    };
    // Two peers that agreed every extension, batches included.
    for id in [b"peer-a".as_slice(), b"peer-b"] {
        hub.on_peer_connected(id);
        let offer = Ping {
            extensions: Some(zgossip::EXTENSIONS),
        };
        hub.on_peer_frames(&frames(id, offer.into()), now);
        hub.on_peer_frames(&frames(id, Hello.into()), now);
    }
    hub.take_outputs();
    // Peer A pushes 20 tuples, which the driver hands over together (one
    // reactor read) before it takes the outputs.
    for i in 0..20 {
        let announce = Announce {
            endpoint: format!("tcp://10.0.0.{i}:1"),
            service: "svc".into(),
            origin: Some(7),
            revision: Some(1_000 + i),
            lease: Some(30_000),
            flags: Some(0),
            ..Announce::default()
        };
        hub.on_peer_frames(&frames(b"peer-a", announce.into()), now);
    }
    let outputs = hub.take_outputs();
    let to_b = sent_to_peer(&outputs, b"peer-b");
    let endpoints: Vec<String> = to_b
        .iter()
        .flat_map(|m| match m {
            ZgossipMsg::Announces(batch) => {
                zgossip::msg::unpack_announces(&batch.records).expect("batch")
            }
            other => panic!("not a batch: {other:?}"),
        })
        .map(|a| a.endpoint)
        .collect();
    assert_eq!(endpoints.len(), 20, "{to_b:?}");
    assert!(to_b.len() <= 2, "{} messages for 20 tuples", to_b.len());
    // None went back to their sender.
    assert!(sent_to_peer(&outputs, b"peer-a").is_empty());
}

/// A node that writes faster than its keepalive interval still hears from
/// its server (which answers PINGs only): it never takes it for silent,
/// never holds its writes back, and never sends its whole table again.
#[test]
fn a_node_writing_faster_than_it_pings_keeps_its_server_up() {
    let mut now = Instant::now();
    let mut mesh = Mesh::new();
    let (a, b) = (mesh.add(Settings::default()), mesh.add(Settings::default()));
    mesh.connect(b, a, now);
    mesh.run(now);
    let mut written = Vec::new();
    for i in 0..200 {
        now += Duration::from_millis(50);
        let endpoint = format!("tcp://b:{i}");
        mesh.announce(b, &endpoint, "B", now).expect("announced");
        written.push(endpoint);
        mesh.tick(now);
        let node = mesh.node(b).expect("node up");
        for peer in node.peers(now) {
            assert!(peer.up, "after {} ms: {peer:?}", (i + 1) * 50);
        }
    }
    assert_eq!(mesh.node(b).expect("node up").stats().resyncs, 0);
    let held = mesh.node(a).expect("node up").tuples();
    assert!(
        written
            .iter()
            .all(|e| held.service(e).as_deref() == Some("B")),
        "the server holds every write"
    );
}
