//! The server host's overhead: the zgossip server model (generated engine,
//! our actions) run by `zproto_runtime::host` with no glue, beside the same
//! model inside zgossip's hand-written node service, in the same run.
//! PING/PONG round trips, sequential and pipelined (100 in flight), over
//! inproc and ipc; best of 5, the sides taking turns. Goal: the host within
//! 10% of the hand-written glue.
//!
//! `cargo bench --bench host` (`-- --quick` for a shorter run).

use zgossip_testkit::bench as support;

// As the zgossip binary ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use support::pingpong;
use zgossip::engine::Machine;
use zgossip::Gossip;
use zgossip::Node;
use zproto_runtime::host::ServerHandle;

fn endpoint(transport: &str, who: &str, run: usize) -> String {
    match transport {
        "inproc" => format!("inproc://host-bench-{who}-{run}"),
        _ => format!(
            "ipc:///tmp/zproto-host-bench-{who}-{}-{run}.ipc",
            std::process::id()
        ),
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (count, rounds) = if quick { (2_000, 3) } else { (20_000, 5) };
    println!("zgossip's server model: the host (no glue) against zgossip's own service glue");
    println!(
        "{:<24} {:>14} {:>14} {:>8}",
        "round trips", "host", "hand-written", "ratio"
    );
    let mut run = 0;
    let mut worst: f64 = f64::MAX;
    for transport in ["inproc", "ipc"] {
        for (label, window) in [("sequential", 1), ("pipelined", 100)] {
            let (mut host_best, mut node_best) = (u128::MAX, u128::MAX);
            for _ in 0..rounds {
                run += 1;
                let host = ServerHandle::<Machine<Gossip>>::start("zgossip", Gossip::default())
                    .expect("host");
                host.set("server/timeout", "600000").expect("set");
                let at = endpoint(transport, "host", run);
                host.bind(&at).expect("bind");
                host_best = host_best.min(pingpong(&at, count, window));
                drop(host);

                let node = Node::new("bench").expect("node");
                node.set("server/timeout", "600000").expect("set");
                let at = endpoint(transport, "node", run);
                node.bind(&at).expect("bind");
                node_best = node_best.min(pingpong(&at, count, window));
            }
            let rate = |ns: u128| count as f64 * 1e9 / ns as f64;
            let ratio = rate(host_best) / rate(node_best);
            worst = worst.min(ratio);
            println!(
                "{:<24} {:>11.0} k/s {:>11.0} k/s {:>7.2}x",
                format!("{transport} {label}"),
                rate(host_best) / 1e3,
                rate(node_best) / 1e3,
                ratio
            );
        }
    }
    println!(
        "worst ratio {worst:.2}: the host is {} the 10% goal",
        if worst >= 0.9 { "within" } else { "NOT within" }
    );
}
