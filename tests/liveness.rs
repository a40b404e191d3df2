//! Liveness per node (docs/zgossip.md, "Liveness"): an owner's heartbeat
//! keeps all its tuples alive, so an idle cluster's traffic grows with its
//! nodes, not its tuples; tuples still go a lease after their owner; and a
//! heartbeat forged in an owner's name cannot silence the owner's own.

use std::time::{Duration, Instant};

use zgossip::clock::WallClock;
use zgossip::mesh::Mesh;
use zgossip::msg::{Alive, ZgossipMsg};
use zgossip::MESSAGE_TYPES;
use zgossip::{Codec, Settings};

/// Let `ms` milliseconds pass in steps of 100 ms.
fn advance(mesh: &mut Mesh, now: &mut Instant, ms: u64) {
    for _ in 0..ms / 100 {
        *now += Duration::from_millis(100);
        mesh.tick(*now);
    }
}

fn kind(name: &str) -> usize {
    MESSAGE_TYPES
        .iter()
        .position(|k| *k == name)
        .expect("a message type")
}

/// A ring of `nodes`, each owning `tuples`, settled.
fn ring(nodes: usize, tuples: usize, now: &mut Instant) -> Mesh {
    let mut mesh = Mesh::new();
    let settings = Settings {
        wall_clock: Some(WallClock::new(*now, 1_800_000_000_000)),
        ..Settings::default()
    };
    for _ in 0..nodes {
        mesh.add(settings);
    }
    for n in 0..nodes {
        mesh.connect(n, (n + 1) % nodes, *now);
    }
    for n in 0..nodes {
        for t in 0..tuples {
            let endpoint = format!("tcp://10.0.{n}.{t}:5555");
            mesh.announce(n, &endpoint, "svc", *now).expect("announce");
        }
    }
    mesh.run(*now);
    // The first synchronisations send every remote's table to its server.
    advance(&mut mesh, now, 15_000);
    for n in 0..nodes {
        assert_eq!(mesh.node(n).expect("up").tuples().len(), nodes * tuples);
    }
    mesh
}

/// ANNOUNCEs, ALIVEs and bytes every node sent from now on over `ms`.
fn idle_traffic(mesh: &mut Mesh, now: &mut Instant, ms: u64) -> (u64, u64, u64) {
    let count = |mesh: &Mesh| {
        (0..mesh.len()).fold((0, 0, 0), |(a, h, b), n| {
            let stats = mesh.node(n).expect("up").stats();
            (
                a + stats.sent_by_type[kind("ANNOUNCE")],
                h + stats.sent_by_type[kind("ALIVE")],
                b + stats.bytes_sent,
            )
        })
    };
    let before = count(mesh);
    advance(mesh, now, ms);
    let after = count(mesh);
    (after.0 - before.0, after.1 - before.1, after.2 - before.2)
}

#[test]
fn idle_renewal_traffic_grows_with_nodes_not_tuples() {
    let mut figures = Vec::new();
    for tuples in [10, 1_000] {
        let mut now = Instant::now();
        let mut mesh = ring(8, tuples, &mut now);
        let (announces, heartbeats, bytes) = idle_traffic(&mut mesh, &mut now, 3 * 30_000);
        // Every tuple is still held everywhere, three leases on.
        for n in 0..8 {
            assert_eq!(mesh.node(n).expect("up").tuples().len(), 8 * tuples);
        }
        println!("8 nodes x {tuples} tuples, idle 90 s: {announces} ANNOUNCEs, {heartbeats} ALIVEs, {bytes} bytes");
        assert_eq!(announces, 0, "no tuple is renewed one by one");
        // Each of 8 heartbeats per third of a lease crosses each of the
        // ring's 8 links at most once each way.
        assert!(heartbeats <= 9 * 8 * 16 + 8 * 16, "{heartbeats} heartbeats");
        figures.push(bytes);
    }
    // PINGs, PONGs and heartbeats, whatever the table holds.
    let (few, many) = (figures[0], figures[1]);
    assert!(
        many <= few + few / 10,
        "idle bytes with 100x the tuples: {many} against {few}"
    );
}

#[test]
fn a_dead_owners_tuples_go_a_lease_after_its_last_heartbeat() {
    let mut now = Instant::now();
    let mut mesh = ring(4, 10, &mut now);
    // Node 3 stops: its neighbours hear its connections end, but its
    // tuples live on elsewhere until their lease is over.
    advance(&mut mesh, &mut now, 5_000);
    mesh.stop(3);
    advance(&mut mesh, &mut now, 20_000);
    assert_eq!(mesh.node(1).expect("up").tuples().len(), 40);
    advance(&mut mesh, &mut now, 11_000);
    for n in 0..3 {
        let held = mesh.node(n).expect("up").tuples().len();
        assert_eq!(held, 30, "node {n} still holds the dead owner's tuples");
    }
}

#[test]
fn a_heartbeat_forged_ahead_in_an_owners_name_does_not_silence_the_owner() {
    let mut now = Instant::now();
    let mut mesh = ring(4, 10, &mut now);
    let victim = mesh.node(0).expect("up").origin();
    // A peer of node 2 says node 0 beat five minutes from now: every node
    // would take none of node 0's own heartbeats for five minutes, and its
    // tuples would expire a lease after the forgery.
    let forged = Alive {
        node: victim,
        clock: 1_800_000_000_000 + 2_000 + 300_000,
        lifetime: 30_000,
    };
    // On node 1's session with node 2 (the mesh's routing id for node 1's
    // remote 0), which agreed every extension.
    let session = vec![0, 0, 0, 1, 0, 0, 0, 0];
    let mut frames = vec![session];
    frames.extend(ZgossipMsg::from(forged).encode().expect("encode"));
    mesh.inject_to_server(2, frames, now);
    advance(&mut mesh, &mut now, 3 * 30_000);
    assert_eq!(mesh.node(0).expect("up").stats().forged_heartbeats, 1);
    for n in 0..4 {
        assert_eq!(
            mesh.node(n).expect("up").tuples().len(),
            40,
            "node {n} lost the owner's tuples"
        );
    }
}
