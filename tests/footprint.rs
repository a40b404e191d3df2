//! What a node costs in memory, alone in its test binary (so that no other
//! test moves the process's RSS): 200 nodes on one reactor, linked in a
//! chain over inproc, each holding the chain's tuples. A node must stay
//! well under a megabyte; a bounded queue that preallocated its capacity
//! once cost 4.8 MB per node.

use std::time::{Duration, Instant};

use zgossip::{Node, Reactor, Settings};

fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc");
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .expect("VmRSS");
    kib * 1024
}

#[test]
fn a_node_costs_well_under_a_megabyte() {
    const NODES: usize = 200;
    let reactor = Reactor::start().expect("reactor");
    let before = rss();
    let mut nodes: Vec<(Node, String)> = Vec::with_capacity(NODES);
    for i in 0..NODES {
        let node = Node::on(&reactor, &format!("n{i}"), Settings::default()).expect("node");
        let endpoint = format!("inproc://footprint-{}-{i}", std::process::id());
        node.bind(&endpoint).expect("bind");
        if let Some((_, previous)) = nodes.last() {
            node.connect(previous).expect("connect");
        }
        node.announce(&format!("tcp://10.0.0.{}:{i}", i % 250), "s")
            .expect("announce");
        nodes.push((node, endpoint));
    }
    // Wait (bounded) until every node holds every tuple.
    let deadline = Instant::now() + Duration::from_secs(60);
    for (node, _) in &nodes {
        while node.status().expect("status") < NODES {
            assert!(Instant::now() < deadline, "the chain did not converge");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let per_node = rss().saturating_sub(before) / NODES as u64;
    eprintln!("{NODES} nodes: {} KB each", per_node / 1000);
    assert!(per_node < 1_000_000, "{per_node} bytes per node");
}
