//! What one Plumtree peer can make a node hold (docs/zgossip.md,
//! "Plumtree"): the tuples a peer announces by IHAVE and the node awaits are
//! bounded per peer, and go with the peer; answers to its GRAFTs are paced.

use std::time::Instant;

use zgossip::limits::{GRAFT_ANSWER_BYTES, MAX_MISSING_PER_LINK};
use zgossip::msg::{Graft, Hello, Ihave, Ping, ZgossipMsg};
use zgossip::EXTENSIONS;
use zgossip::{Codec, NodeCore, Output, Settings};

/// A peer that negotiated our extensions and said HELLO.
fn join(core: &mut NodeCore, id: &[u8], now: Instant) {
    core.on_peer_connected(id);
    send(
        core,
        id,
        Ping {
            extensions: Some(EXTENSIONS),
        }
        .into(),
        now,
    );
    send(core, id, Hello.into(), now);
}

fn send(core: &mut NodeCore, id: &[u8], message: ZgossipMsg, now: Instant) {
    let mut frames = vec![id.to_vec()];
    frames.extend(message.encode().expect("encodes"));
    core.on_peer_frames(&frames, now);
    core.take_outputs();
}

/// IHAVE messages announcing `count` made-up tuples named after `prefix`.
fn ihaves(prefix: &str, count: usize) -> Vec<ZgossipMsg> {
    let mut messages = Vec::new();
    let mut records = Vec::new();
    for i in 0..count {
        let endpoint = format!("tcp://{prefix}-{i}:1");
        records.push(endpoint.len() as u8);
        records.extend_from_slice(endpoint.as_bytes());
        records.extend_from_slice(&7u64.to_be_bytes());
        records.extend_from_slice(&9u64.to_be_bytes());
        if records.len() > 1000 {
            messages.push(
                Ihave {
                    tuples: std::mem::take(&mut records),
                }
                .into(),
            );
        }
    }
    if !records.is_empty() {
        messages.push(Ihave { tuples: records }.into());
    }
    messages
}

#[test]
fn a_peer_announcing_junk_fills_only_its_share_and_takes_it_along() {
    // Before, a trickle of made-up IHAVE ids filled one list shared by all
    // peers (100,000 entries), and outlived the peer's connection.
    let now = Instant::now();
    let mut core = NodeCore::new("node", Settings::default());
    let (attacker, honest) = (b"attacker".as_slice(), b"honest".as_slice());
    join(&mut core, attacker, now);
    join(&mut core, honest, now);
    for message in ihaves("junk", 2 * MAX_MISSING_PER_LINK) {
        send(&mut core, attacker, message, now);
    }
    assert_eq!(core.stats().awaited, MAX_MISSING_PER_LINK as u64);
    for message in ihaves("real", 10) {
        send(&mut core, honest, message, now);
    }
    assert_eq!(core.stats().awaited, MAX_MISSING_PER_LINK as u64 + 10);
    core.on_peer_disconnected(attacker);
    assert_eq!(core.stats().awaited, 10, "the junk went with its peer");
}

#[test]
fn a_storm_of_grafts_from_a_peer_that_never_reads_builds_one_answers_worth() {
    // Before, every GRAFT of a reactor batch was answered in full at once
    // (up to 256 KiB each): 60 GRAFTs for every endpoint built 15 MB of
    // answers for a peer that read none of them.
    let now = Instant::now();
    let mut core = NodeCore::new("node", Settings::default());
    let service = "s".repeat(1000);
    let endpoints: Vec<String> = (0..2000).map(|i| format!("tcp://svc-{i}:1")).collect();
    for endpoint in &endpoints {
        core.announce(endpoint, &service, now).expect("announced");
    }
    core.take_outputs();
    let attacker = b"attacker".as_slice();
    join(&mut core, attacker, now);
    let mut built = 0;
    for _ in 0..60 {
        let graft = Graft {
            endpoints: endpoints.clone(),
        };
        let mut frames = vec![attacker.to_vec()];
        frames.extend(ZgossipMsg::from(graft).encode().expect("encodes"));
        core.on_peer_frames(&frames, now);
        built += answers_to(&mut core, attacker);
    }
    assert!(built > 0, "the first GRAFT is answered");
    assert!(
        built <= GRAFT_ANSWER_BYTES + 60 * 1100,
        "{built} bytes built for one burst"
    );
    // A second later the peer has earned another answer's worth.
    let later = now + std::time::Duration::from_secs(1);
    let graft = Graft { endpoints };
    let mut frames = vec![attacker.to_vec()];
    frames.extend(ZgossipMsg::from(graft).encode().expect("encodes"));
    core.on_peer_frames(&frames, later);
    let again = answers_to(&mut core, attacker);
    assert!(again > GRAFT_ANSWER_BYTES / 2, "{again}");
}

/// Bytes of the ANNOUNCEs the node has queued for peer `id`.
fn answers_to(core: &mut NodeCore, id: &[u8]) -> usize {
    core.take_outputs()
        .iter()
        .filter_map(|output| match output {
            Output::ToPeer(frames) if frames.first() == Some(id) => Some(frames.byte_len()),
            _ => None,
        })
        .sum()
}
