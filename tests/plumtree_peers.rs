//! What one Plumtree peer can make a node hold (docs/zgossip.md,
//! "Plumtree"): the tuples a peer announces by IHAVE and the node awaits are
//! bounded per peer, and go with the peer.

use std::time::Instant;

use zgossip::msg::{Hello, Ihave, Ping, ZgossipMsg};
use zgossip::plumtree::MAX_MISSING_PER_LINK;
use zgossip::server::EXTENSIONS;
use zgossip::{Codec, NodeCore, Settings};

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
