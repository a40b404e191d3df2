//! Ownership against a peer that forges stamps (docs/zgossip.md, "Tuple
//! lifecycle"): versions come from clocks, so no write can pin an endpoint
//! above what its owner can answer, and one too far ahead of the node's
//! clock is held until the clock catches up or refused.

use std::time::{Duration, Instant};

use zgossip::clock::{WallClock, MAX_AHEAD};
use zgossip::limits::GRACE;
use zgossip::msg::{Announce, Hello, Ping, ZgossipMsg};
use zgossip::EXTENSIONS;
use zgossip::{Codec, NodeCore, Output, Settings};

/// 2026-01-01 in milliseconds since 1970: the node's clock at `start`.
const EPOCH: u64 = 1_767_225_600_000;

fn node(start: Instant) -> NodeCore {
    NodeCore::new(
        "owner",
        Settings {
            origin: Some(42),
            wall_clock: Some(WallClock::new(start, EPOCH)),
            ..Settings::default()
        },
    )
}

/// A peer says HELLO as one of ours would, then sends `writes`
/// (endpoint, service, version, origin).
fn peer_writes(core: &mut NodeCore, writes: &[(&str, &str, u64, u64)], now: Instant) {
    let writes: Vec<_> = writes.iter().map(|&(e, s, v, o)| (e, s, v, o, 0)).collect();
    peer_sends(core, b"hostile", &writes, now);
}

/// Peer `id` says HELLO as one of ours would, then sends `writes`
/// (endpoint, service, version, origin, flags); what the node then does.
fn peer_sends(
    core: &mut NodeCore,
    id: &[u8],
    writes: &[(&str, &str, u64, u64, u8)],
    now: Instant,
) -> Vec<Output> {
    let id = id.to_vec();
    core.on_peer_connected(&id);
    let mut messages = vec![
        ZgossipMsg::from(Ping {
            extensions: Some(EXTENSIONS),
        }),
        ZgossipMsg::from(Hello),
    ];
    for &(endpoint, service, version, origin, flags) in writes {
        messages.push(
            Announce {
                endpoint: endpoint.into(),
                service: service.into(),
                origin: Some(origin),
                revision: Some(version),
                lease: Some(30_000),
                flags: Some(flags),
                ..Announce::default()
            }
            .into(),
        );
    }
    for message in messages {
        let mut frames = vec![id.clone()];
        frames.extend(message.encode().expect("encodes"));
        core.on_peer_frames(&frames, now);
    }
    core.take_outputs()
}

/// Whether the node holds `endpoint` live (not a tombstone).
fn live(core: &NodeCore, endpoint: &str, now: Instant) -> bool {
    core.tuples().get(endpoint, now).is_some_and(|t| !t.removed)
}

fn removals(outputs: &[Output]) -> usize {
    outputs
        .iter()
        .filter(|o| matches!(o, Output::Remove { .. }))
        .count()
}

#[test]
fn forged_tombstones_for_another_nodes_tuple_remove_it_once_per_lease() {
    // Before, each forged tombstone removed the tuple and the owner's
    // answer brought it back: 50 tombstones, 50 REMOVE/DELIVER flaps here
    // and downstream.
    let start = Instant::now();
    let mut core = node(start);
    let owner = 5;
    let v = EPOCH;
    peer_sends(
        &mut core,
        b"owner",
        &[("tcp://svc:1", "real", v, owner, 0)],
        start,
    );
    let out = peer_sends(
        &mut core,
        b"forger",
        &[("tcp://svc:1", "real", v + 1, 6, 1)],
        start,
    );
    assert_eq!(removals(&out), 1, "the first tombstone is taken");
    // The owner answers it (contested), and the tuple is back.
    peer_sends(
        &mut core,
        b"owner",
        &[("tcp://svc:1", "real", v + 2, owner, 2)],
        start,
    );
    assert!(live(&core, "tcp://svc:1", start));
    // Fifty more forged tombstones: none is taken while the lease runs.
    let forged: Vec<_> = (3..53)
        .map(|i| ("tcp://svc:1", "real", v + i, 6, 1))
        .collect();
    let out = peer_sends(&mut core, b"forger", &forged, start);
    assert_eq!(removals(&out), 0);
    assert!(live(&core, "tcp://svc:1", start));
    // The owner's own removal is taken at once.
    let out = peer_sends(
        &mut core,
        b"owner",
        &[("tcp://svc:1", "real", v + 60, owner, 1)],
        start,
    );
    assert_eq!(removals(&out), 1);
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

#[test]
fn a_pin_at_the_highest_version_taken_is_overwritten_by_the_owner() {
    // Before versions came from clocks, a new endpoint claimed at version
    // 2^31 (the ceiling) with origin 2^64-1 could never be written again:
    // the owner's ANNOUNCE and UNPUBLISH did nothing and said nothing.
    let start = Instant::now();
    let mut core = node(start);
    let farthest = EPOCH + ms(MAX_AHEAD);
    peer_writes(
        &mut core,
        &[("tcp://pinned:1", "pinned", farthest, u64::MAX)],
        start,
    );
    let held = core.tuples().get("tcp://pinned:1", start).expect("held");
    assert_eq!(held.service.as_ref(), "pinned");

    core.announce("tcp://pinned:1", "mine", start)
        .expect("announced");
    let held = core.tuples().get("tcp://pinned:1", start).expect("held");
    assert_eq!(held.service.as_ref(), "mine");
    let stamp = held.stamp.expect("stamped");
    assert_eq!((stamp.version, stamp.origin), (farthest + 1, 42));

    core.unpublish("tcp://pinned:1", start).expect("removed");
    assert!(
        core.tuples()
            .get("tcp://pinned:1", start)
            .expect("tombstone")
            .removed
    );
}

#[test]
fn a_write_too_far_ahead_is_held_until_the_clock_catches_up_or_refused() {
    let start = Instant::now();
    let mut core = node(start);
    let early = EPOCH + ms(MAX_AHEAD) + 2_000;
    let beyond = EPOCH + ms(MAX_AHEAD + GRACE) + 1_000;
    peer_writes(
        &mut core,
        &[
            ("tcp://early:1", "early", early, 7),
            ("tcp://beyond:1", "beyond", beyond, 7),
            ("tcp://ceiling:1", "ceiling", u64::MAX, 7),
        ],
        start,
    );
    assert!(core.tuples().get("tcp://early:1", start).is_none());
    assert_eq!(
        core.stats().refused_tuples,
        2,
        "beyond the grace and u64::MAX"
    );
    // Two seconds on, the held write is due and taken.
    let due = core.next_deadline().expect("a deadline");
    assert!(due <= start + Duration::from_secs(2), "{:?}", due - start);
    let later = start + Duration::from_secs(2);
    core.tick(later);
    let held = core.tuples().get("tcp://early:1", later).expect("taken");
    assert_eq!(held.stamp.map(|s| s.version), Some(early));
    assert!(core.tuples().get("tcp://beyond:1", later).is_none());
}

#[test]
fn a_forged_write_in_the_owners_name_is_answered_above_it() {
    // One ANNOUNCE with the owner's own origin and a newer version took
    // the endpoint, and the owner then renewed the forger's value itself.
    let start = Instant::now();
    let mut core = node(start);
    core.announce("tcp://mine:1", "real", start)
        .expect("announced");
    let forged = EPOCH + ms(MAX_AHEAD);
    peer_writes(&mut core, &[("tcp://mine:1", "forged", forged, 42)], start);
    let held = core.tuples().get("tcp://mine:1", start).expect("held");
    assert_eq!(held.service.as_ref(), "real");
    assert!(held.stamp.expect("stamped").version > forged);
    // Renewals keep the owner's value.
    let later = start + Duration::from_secs(11);
    core.tick(later);
    let held = core.tuples().get("tcp://mine:1", later).expect("held");
    assert_eq!(held.service.as_ref(), "real");
}
