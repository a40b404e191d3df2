//! What the simulator's links assume of libzmq (docs/zgossip.md, "Correctness under
//! faults"), checked against libzmq itself over tcp loopback:
//!
//! * a DEALER whose connection is gone keeps what it is given and delivers
//!   it, in order and before anything newer, on the next connection (here,
//!   to a new ROUTER on the same port: a restarted server);
//! * a ROUTER with `ROUTER_MANDATORY` refuses a send to a peer whose
//!   connection is gone, at once (the simulator hands it back to the node
//!   as refused, peer gone).

use std::time::Duration;

/// Wait (bounded) for a monitor event of `kind` on `monitor`.
fn wait_event(monitor: &zmq::Socket, kind: zmq::SocketEvent) {
    monitor.set_rcvtimeo(10_000).expect("rcvtimeo");
    loop {
        let frames = monitor
            .recv_multipart(0)
            .expect("a monitor event within 10 s");
        let event = u16::from_le_bytes([frames[0][0], frames[0][1]]);
        if event == kind as u16 {
            return;
        }
    }
}

fn router(ctx: &zmq::Context, endpoint: &str) -> zmq::Socket {
    let router = ctx.socket(zmq::ROUTER).expect("router");
    router.set_linger(0).expect("linger");
    router.set_router_mandatory(true).expect("mandatory");
    router.set_rcvtimeo(10_000).expect("rcvtimeo");
    router.bind(endpoint).expect("bind");
    router
}

#[test]
fn a_dealer_delivers_what_it_queued_while_disconnected_first_on_the_next_connection() {
    let ctx = zmq::Context::new();
    let first = router(&ctx, "tcp://127.0.0.1:*");
    let endpoint = first.get_last_endpoint().expect("endpoint").expect("utf-8");
    let dealer = ctx.socket(zmq::DEALER).expect("dealer");
    dealer.set_linger(0).expect("linger");
    dealer.set_sndtimeo(1000).expect("sndtimeo");
    dealer
        .monitor("inproc://dealer-monitor", zmq::SocketEvent::ALL as i32)
        .expect("monitor");
    let monitor = ctx.socket(zmq::PAIR).expect("pair");
    monitor.connect("inproc://dealer-monitor").expect("monitor");
    dealer.connect(&endpoint).expect("connect");
    dealer.send("hello", 0).expect("send");
    let got = first.recv_multipart(0).expect("the first message");
    assert_eq!(got[1], b"hello");

    // The server goes away; the DEALER sees its connection end.
    drop(first);
    wait_event(&monitor, zmq::SocketEvent::DISCONNECTED);
    for message in ["stale-1", "stale-2", "stale-3"] {
        dealer.send(message, 0).expect("queued while disconnected");
    }

    // A new server on the same port (a restart): the queued messages come
    // first, in order, on the new connection.
    let second = router(&ctx, &endpoint);
    dealer.send("fresh", 0).expect("send");
    let mut got = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..4 {
        let frames = second.recv_multipart(0).expect("a message within 10 s");
        ids.push(frames[0].clone());
        got.push(String::from_utf8_lossy(&frames[1]).into_owned());
    }
    assert_eq!(got, ["stale-1", "stale-2", "stale-3", "fresh"]);
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "one connection");
}

#[test]
fn a_mandatory_router_refuses_a_send_to_a_peer_that_is_gone() {
    let ctx = zmq::Context::new();
    let server = router(&ctx, "tcp://127.0.0.1:*");
    server
        .monitor("inproc://router-monitor", zmq::SocketEvent::ALL as i32)
        .expect("monitor");
    let monitor = ctx.socket(zmq::PAIR).expect("pair");
    monitor.connect("inproc://router-monitor").expect("monitor");
    let endpoint = server
        .get_last_endpoint()
        .expect("endpoint")
        .expect("utf-8");
    let dealer = ctx.socket(zmq::DEALER).expect("dealer");
    dealer.set_linger(0).expect("linger");
    dealer.connect(&endpoint).expect("connect");
    dealer.send("hello", 0).expect("send");
    let frames = server.recv_multipart(0).expect("a message");
    let id = frames[0].clone();
    server
        .send_multipart([id.clone(), b"reply".to_vec()], 0)
        .expect("a send to a live peer");
    drop(dealer);
    wait_event(&monitor, zmq::SocketEvent::DISCONNECTED);
    // The pipe is gone once the disconnection is processed; a send may
    // race it by a moment, never for long.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match server.send_multipart([id.clone(), b"reply".to_vec()], zmq::DONTWAIT) {
            Err(zmq::Error::EHOSTUNREACH) => break,
            Ok(()) | Err(zmq::Error::EAGAIN) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "still accepted after 10 s"
                );
                std::thread::yield_now();
            }
            Err(e) => panic!("unexpected: {e}"),
        }
    }
}
