//! A fresh node joining a node that holds a big table gets all of it at
//! the speed the connection takes, not a slice per timer, while the
//! server's owned tuples are kept alive (the default 30 s lease), and
//! other peers' PINGs are answered within 50 ms throughout (the join's
//! rate beside CZMQ's: `cargo bench --bench zgossip -- join`).
//!
//! The table holds 100,000 tuples here; `ZGOSSIP_JOIN_TUPLES` sets another
//! size (the figures in docs/zgossip.md: 1,000,000 in a release build,
//! `ZGOSSIP_JOIN_TUPLES=1000000 cargo test --release --test join -- --nocapture`).

use zgossip_testkit as support;

use std::time::{Duration, Instant};

use support::{dealer, frame};
use zgossip::msg::Ping;
use zgossip::Node;

fn bound(node: &Node) -> String {
    node.bind("tcp://127.0.0.1:*").expect("bind");
    format!("tcp://127.0.0.1:{}", node.port().expect("port"))
}

#[test]
fn a_fresh_node_gets_a_big_table_while_pings_are_answered() {
    let tuples: usize = std::env::var("ZGOSSIP_JOIN_TUPLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let room = (tuples + 10).to_string();
    let server = Node::new("server").expect("node");
    server.set("limits/tuples", &room).expect("set");
    let endpoint = bound(&server);
    let started = Instant::now();
    for i in 0..tuples {
        let endpoint = format!("tcp://10.{}.{}.{}:9000", i >> 16, (i >> 8) & 255, i & 255);
        server.announce(&endpoint, "svc").expect("announce");
    }
    assert_eq!(server.status().expect("status"), tuples);
    println!("loaded {tuples} tuples in {:?}", started.elapsed());

    let joiner = Node::new("joiner").expect("node");
    joiner.set("limits/tuples", &room).expect("set");
    let probe = dealer(&endpoint);
    let started = Instant::now();
    joiner.connect(&endpoint).expect("connect");
    let mut latencies = Vec::new();
    // Bounded: a join slower than this is a failure, not a measurement.
    let deadline = started + Duration::from_secs(120);
    while joiner.status().expect("status") < tuples {
        assert!(
            Instant::now() < deadline,
            "joined {} of {tuples} in {:?}",
            joiner.status().expect("status"),
            started.elapsed()
        );
        let sent = Instant::now();
        probe.send(frame(Ping::default()), 0).expect("send");
        probe.recv_bytes(0).expect("a PONG");
        latencies.push(sent.elapsed());
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = started.elapsed();
    latencies.sort();
    let worst = latencies.last().copied().unwrap_or_default();
    let p99 = latencies
        .get(latencies.len() * 99 / 100)
        .copied()
        .unwrap_or_default();
    println!(
        "joined {tuples} tuples in {took:?} ({:.0} tuples/s); PING p99 {p99:?}, worst {worst:?} over {} PINGs",
        tuples as f64 / took.as_secs_f64(),
        latencies.len()
    );
    assert!(worst < Duration::from_millis(50), "a PING waited {worst:?}");
}
