//! zgossip nodes over real ZeroMQ sockets: CZMQ's self-test scenario over
//! inproc, tcp (loopback) and ipc; a chain of 20; a late joiner; garbage from
//! a peer; announcements long past the session timeout; bad endpoints.
//! Every wait is bounded and waits on deliveries, not on time.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use zgossip::{Node, Reactor, Settings};

const WAIT: Duration = Duration::from_secs(10);

/// Wait until `node` has delivered every tuple of `expected`; then its STATUS
/// must be exactly their number.
fn expect_tuples(node: &Node, expected: &[(String, String)]) {
    wait_for(node, expected);
    let distinct: BTreeSet<&(String, String)> = expected.iter().collect();
    assert_eq!(node.status().unwrap(), distinct.len());
}

/// Wait until `node` has delivered every tuple of `expected`.
fn wait_for(node: &Node, expected: &[(String, String)]) {
    let want: BTreeSet<(String, String)> = expected.iter().cloned().collect();
    let mut got = BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    while !want.is_subset(&got) {
        let left = deadline.saturating_duration_since(Instant::now());
        match node.recv_delivery(left) {
            Some(d) => {
                got.insert((d.endpoint, d.service));
            }
            None => panic!(
                "timed out: missing {:?}",
                want.difference(&got).collect::<Vec<_>>()
            ),
        }
    }
}

/// A new node `b` connects to `a` at `endpoint`; each announces a tuple and
/// both must end up with both. Returns `b` and the two tuples.
fn exchange_with_a_new_peer(a: &Node, endpoint: &str) -> (Node, Vec<(String, String)>) {
    let b = Node::new("b").unwrap();
    b.connect(endpoint).unwrap();
    a.announce("tcp://a:1", "A").unwrap();
    b.announce("tcp://b:1", "B").unwrap();
    let both = tuples(&[("tcp://a:1", "A"), ("tcp://b:1", "B")]);
    expect_tuples(a, &both);
    expect_tuples(&b, &both);
    (b, both)
}

fn tuples(names: &[(&str, &str)]) -> Vec<(String, String)> {
    names
        .iter()
        .map(|(e, s)| ((*e).to_owned(), (*s).to_owned()))
        .collect()
}

/// A fresh endpoint name per test, so tests can run in parallel.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// CZMQ's zgossip self-test: base binds; alpha and beta connect to it and
/// announce two tuples each; every node ends up with all four.
fn self_test(base_endpoint: &str) -> Vec<String> {
    let base = Node::new("base").unwrap();
    base.bind(base_endpoint).unwrap();
    let endpoint = if base_endpoint.ends_with(":*") {
        let port = base.port().unwrap();
        assert!(port > 0, "tcp port {port}");
        format!("tcp://127.0.0.1:{port}")
    } else {
        base_endpoint.to_owned()
    };
    let alpha = Node::new("alpha").unwrap();
    alpha.connect(&endpoint).unwrap();
    alpha.announce("inproc://alpha-1", "service1").unwrap();
    alpha.announce("inproc://alpha-2", "service2").unwrap();
    let beta = Node::new("beta").unwrap();
    beta.connect(&endpoint).unwrap();
    beta.announce("inproc://beta-1", "service1").unwrap();
    beta.announce("inproc://beta-2", "service2").unwrap();
    let all = tuples(&[
        ("inproc://alpha-1", "service1"),
        ("inproc://alpha-2", "service2"),
        ("inproc://beta-1", "service1"),
        ("inproc://beta-2", "service2"),
    ]);
    for node in [&base, &alpha, &beta] {
        expect_tuples(node, &all);
    }
    vec![endpoint]
}

#[test]
fn self_test_over_inproc() {
    self_test(&format!("inproc://{}", unique("base")));
}

#[test]
fn self_test_over_tcp_loopback() {
    self_test("tcp://127.0.0.1:*");
}

#[test]
fn self_test_over_ipc() {
    let path = std::env::temp_dir().join(format!("{}.ipc", unique("zgossip")));
    self_test(&format!("ipc://{}", path.display()));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_chain_of_twenty_converges_on_one_reactor() {
    let reactor = Reactor::start().unwrap();
    let prefix = unique("chain");
    let nodes: Vec<Node> = (0..20)
        .map(|i| Node::on(&reactor, &format!("n{i}"), Settings::default()).unwrap())
        .collect();
    for (i, node) in nodes.iter().enumerate() {
        node.bind(&format!("inproc://{prefix}-{i}")).unwrap();
        if i > 0 {
            node.connect(&format!("inproc://{prefix}-{}", i - 1))
                .unwrap();
        }
    }
    let all: Vec<(String, String)> = (0..20)
        .map(|i| (format!("tcp://10.1.0.{i}:1"), format!("s{i}")))
        .collect();
    for (node, (e, s)) in nodes.iter().zip(&all) {
        node.announce(e, s).unwrap();
    }
    for node in &nodes {
        expect_tuples(node, &all);
    }
}

#[test]
fn a_late_joiner_receives_the_full_state() {
    let endpoint = format!("inproc://{}", unique("late"));
    let a = Node::new("a").unwrap();
    a.bind(&endpoint).unwrap();
    let (_b, both) = exchange_with_a_new_peer(&a, &endpoint);
    let late = Node::new("late").unwrap();
    late.connect(&endpoint).unwrap();
    expect_tuples(&late, &both);
}

#[test]
fn garbage_from_a_peer_does_not_stop_the_node() {
    let endpoint = format!("inproc://{}", unique("garbage"));
    let a = Node::new("a").unwrap();
    a.bind(&endpoint).unwrap();
    let evil = zproto_runtime::reactor::socket(zmq::DEALER).unwrap();
    evil.set_linger(0).unwrap();
    evil.connect(&endpoint).unwrap();
    for frame in [
        &[0xaa, 0xa0, 0x03, 0x02][..],
        &[0xff; 3],
        &[],
        &[0xaa, 0xa0, 0x02, 0x01, 0x40, 0x61],
    ] {
        evil.send(frame, 0).unwrap();
    }
    evil.send_multipart([&b"two"[..], &b"frames"[..]], 0)
        .unwrap();
    // A valid PING after the garbage is still answered.
    evil.send(&[0xaa, 0xa0, 0x03, 0x01][..], 0).unwrap();
    evil.set_rcvtimeo(WAIT.as_millis() as i32).unwrap();
    assert_eq!(
        evil.recv_bytes(0).unwrap(),
        [0xaa, 0xa0, 0x04, 0x01],
        "PONG"
    );
    assert_eq!(a.stats().unwrap().malformed, 5);

    exchange_with_a_new_peer(&a, &endpoint);
}

#[test]
fn announcements_past_the_session_timeout_still_reach_everyone() {
    let endpoint = format!("inproc://{}", unique("timeout"));
    let server = Node::new("server").unwrap();
    server.set("server/timeout", "200").unwrap();
    server.bind(&endpoint).unwrap();
    let a = Node::new("a").unwrap();
    a.set("remote/ping", "50").unwrap();
    a.connect(&endpoint).unwrap();
    let b = Node::new("b").unwrap();
    b.set("remote/ping", "50").unwrap();
    b.connect(&endpoint).unwrap();
    a.announce("tcp://a:1", "early").unwrap();
    expect_tuples(&b, &tuples(&[("tcp://a:1", "early")]));
    // Five session timeouts pass; nothing new may be delivered meanwhile.
    assert_eq!(b.recv_delivery(Duration::from_millis(1000)), None);
    a.announce("tcp://a:2", "late").unwrap();
    server.announce("tcp://server:1", "late too").unwrap();
    let all = tuples(&[
        ("tcp://a:1", "early"),
        ("tcp://a:2", "late"),
        ("tcp://server:1", "late too"),
    ]);
    wait_for(&b, &all[1..]);
    assert_eq!(b.status().unwrap(), 3);
    expect_tuples(&server, &all);
}

#[test]
fn bad_endpoints_get_clear_errors() {
    let node = Node::new("n").unwrap();
    let err = node.connect("nonsense").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("bad zgossip endpoint 'nonsense'"),
        "{err}"
    );
    let err = node.bind("tcp://256.1.1.1:5670").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("could not bind to 'tcp://256.1.1.1:5670'"),
        "{err}"
    );
    assert_eq!(node.port().unwrap(), -1);
    let err = node.set("server/timeout", "later").unwrap_err();
    assert!(
        err.to_string().contains("not a number of milliseconds"),
        "{err}"
    );
    // The node still works.
    node.bind(&format!("inproc://{}", unique("ok"))).unwrap();
    assert_eq!(node.port().unwrap(), 0);
}

#[test]
fn a_remote_resynchronises_after_its_server_restarts() {
    let server = Node::new("server").unwrap();
    server.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = format!("tcp://127.0.0.1:{}", server.port().unwrap());
    let client = Node::new("client").unwrap();
    client.connect(&endpoint).unwrap();
    client.announce("tcp://client:1", "C").unwrap();
    wait_for(&server, &tuples(&[("tcp://client:1", "C")]));
    // The server goes away and a new, empty one takes its endpoint. (Not an
    // ipc path: libzmq unlinks an ipc file when it closes the old listener,
    // possibly after the new one took the path.) libzmq closes the old
    // listener asynchronously, so the port may take a moment to be free.
    drop(server);
    let server = Node::new("server again").unwrap();
    let deadline = Instant::now() + WAIT;
    while let Err(e) = server.bind(&endpoint) {
        assert!(Instant::now() < deadline, "{e}");
        // Bounded retry while the old listener closes.
        assert_eq!(server.recv_delivery(Duration::from_millis(10)), None);
    }
    // The client reconnects, says HELLO again and re-sends its tuples...
    expect_tuples(&server, &tuples(&[("tcp://client:1", "C")]));
    // ...and hears about the new server's tuples.
    server.announce("tcp://server:1", "S").unwrap();
    wait_for(&client, &tuples(&[("tcp://server:1", "S")]));
}

/// Poll `node`'s peers until `done` holds, at most [`WAIT`].
fn peers_when(node: &Node, done: impl Fn(&[zgossip::Peer]) -> bool) -> Vec<zgossip::Peer> {
    let deadline = Instant::now() + WAIT;
    loop {
        let peers = node.peers().unwrap();
        if done(&peers) {
            return peers;
        }
        assert!(Instant::now() < deadline, "timed out; peers: {peers:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Presence: a node lists its sessions and remotes, up while the peer is
/// there; a remote whose server is gone goes down within a second or so.
#[test]
fn peers_are_listed_up_and_go_down_when_gone() {
    use zgossip::PeerKind;
    let a = Node::new("a").unwrap();
    a.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = format!("tcp://127.0.0.1:{}", a.port().unwrap());
    let (b, _) = exchange_with_a_new_peer(&a, &endpoint);
    let at_b = peers_when(&b, |p| p.iter().any(|p| p.state == "synchronised"));
    assert_eq!(at_b.len(), 1, "{at_b:?}");
    assert_eq!(at_b[0].kind, PeerKind::Remote);
    assert_eq!(at_b[0].name, endpoint);
    assert!(at_b[0].up, "{at_b:?}");
    let at_a = a.peers().unwrap();
    assert_eq!(at_a.len(), 1, "{at_a:?}");
    assert_eq!(at_a[0].kind, PeerKind::Session);
    assert_eq!(at_a[0].state, "connected");
    assert!(at_a[0].up);
    // The server goes away: b's remote goes down once it has heard
    // nothing for a second (its PINGs go unanswered).
    drop(a);
    let down = peers_when(&b, |p| p.iter().all(|p| !p.up));
    let silent = down[0].last_heard.expect("heard before");
    assert!(
        silent >= Duration::from_secs(1),
        "down after {silent:?} of silence"
    );
}

/// CURVE: a secured node admits the peers on its allow-list, and no one
/// else: a stranger with its own key, and a NULL peer, are refused in the
/// handshake, and no tuple of theirs arrives.
#[test]
fn a_curve_node_admits_only_allowed_keys() {
    use zgossip::cert::Certificate;
    use zgossip::Security;
    let (server_cert, friend_cert, stranger_cert) = (
        Certificate::generate().unwrap(),
        Certificate::generate().unwrap(),
        Certificate::generate().unwrap(),
    );
    let server = Node::new("server").unwrap();
    server
        .secure(Security {
            cert: server_cert.clone(),
            allowed: Some(vec![friend_cert.public.clone()]),
            domain: None,
        })
        .unwrap();
    server.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = format!("tcp://127.0.0.1:{}", server.port().unwrap());
    server.announce("tcp://server:1", "S").unwrap();

    // A raw CURVE client with an unknown key: no answer to its HELLO.
    let raw = zproto_runtime::reactor::socket(zmq::DEALER).unwrap();
    raw.set_linger(0).unwrap();
    raw.set_rcvtimeo(1000).unwrap();
    let keys = zmq::CurveKeyPair::new().unwrap();
    raw.set_curve_serverkey(server_cert.public.as_bytes())
        .unwrap();
    raw.set_curve_publickey(&keys.public_key).unwrap();
    raw.set_curve_secretkey(&keys.secret_key).unwrap();
    raw.connect(&endpoint).unwrap();
    raw.send(&[0xaa, 0xa0, 0x01, 0x01][..], zmq::DONTWAIT).ok();
    assert!(raw.recv_bytes(0).is_err(), "a refused client got an answer");

    // Strangers: our node with its own key, and a NULL node.
    let stranger = Node::new("stranger").unwrap();
    stranger
        .secure(Security {
            cert: stranger_cert,
            allowed: Some(vec![]),
            domain: None,
        })
        .unwrap();
    stranger
        .connect_curve(&endpoint, &server_cert.public)
        .unwrap();
    stranger.announce("tcp://evil:1", "evil").unwrap();
    let plain = Node::new("plain").unwrap();
    plain.connect(&endpoint).unwrap();
    plain.announce("tcp://evil:2", "evil").unwrap();

    // The friend gets through, both ways.
    let friend = Node::new("friend").unwrap();
    friend
        .secure(Security {
            cert: friend_cert,
            allowed: Some(vec![]),
            domain: None,
        })
        .unwrap();
    friend
        .connect_curve(&endpoint, &server_cert.public)
        .unwrap();
    friend.announce("tcp://friend:1", "F").unwrap();
    let both = tuples(&[("tcp://server:1", "S"), ("tcp://friend:1", "F")]);
    wait_for(&server, &both[1..]);
    wait_for(&friend, &both[..1]);
    server.announce("tcp://server:2", "S2").unwrap();
    wait_for(&friend, &tuples(&[("tcp://server:2", "S2")]));

    let held: Vec<String> = server
        .tuples()
        .unwrap()
        .into_iter()
        .map(|(e, _)| e)
        .collect();
    assert_eq!(held, ["tcp://friend:1", "tcp://server:1", "tcp://server:2"]);
    assert_eq!(server.stats().unwrap().sessions, 1, "the friend only");
    assert!(stranger.peers().unwrap().iter().all(|p| !p.up));
    assert!(plain.peers().unwrap().iter().all(|p| !p.up));
}
