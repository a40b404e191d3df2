//! The hand-written actions of the zgossip server model
//! (`protocol/zgossip.xml`), run by the generated engine in [`crate::engine`],
//! and the acceptance rule every tuple goes through, from a session, a
//! remote or the application (`Gossip::receive`, `Gossip::publish`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use zproto_runtime::engine::SessionKey;

use crate::batch::{Batch, BATCHES};
use crate::clock::WallClock;
use crate::early::Early;
use crate::engine::{Actions, Event, Io};
use crate::limits::Limits;
use crate::msg::{
    Alive, Alives, Announce, Announces, Graft, Hello, Ihave, Ping, Pong, Prune, ZgossipMsg,
};
use crate::plumtree::{self, LazyQueue, Link, Missing, PLUMTREE};
use crate::tuples::{Accepted, Liveness, Offer, Stamp, Tuple, Tuples};

/// The extensions this node speaks (PING/PONG `extensions`): versioned
/// tuples, with leases and tombstones; Plumtree; liveness per node;
/// batches.
pub const EXTENSIONS: u32 = VERSIONED_TUPLES | PLUMTREE | LIVENESS | BATCHES;

/// Extension bit: ANNOUNCE carries origin, version, lease and flags.
pub const VERSIONED_TUPLES: u32 = 1;

/// Extension bit: liveness per node. Each node's heartbeat (ALIVE) keeps
/// all its tuples alive, instead of every tuple renewed one by one
/// (docs/zgossip.md, "Liveness"). Only with versioned tuples.
pub const LIVENESS: u32 = 4;

/// ANNOUNCE `flags` bit: a tombstone.
pub const FLAG_REMOVED: u8 = 1;
/// ANNOUNCE `flags` bit: written by an owner answering a competing write.
pub const FLAG_CONTESTED: u8 = 2;
/// ANNOUNCE `flags` bit: sent by a replay (after HELLO, a synchronisation,
/// an answer to GRAFT), where duplicates are expected; a duplicate without
/// it on an eager Plumtree link means the link is not needed (PRUNE).
pub const FLAG_REPLAY: u8 = 4;

/// `announce` marked as sent by a replay (if it carries flags at all).
pub fn replayed(mut announce: Announce) -> Announce {
    if let Some(flags) = announce.flags.as_mut() {
        *flags |= FLAG_REPLAY;
    }
    announce
}

/// Whether `announce` came from a replay (see [`FLAG_REPLAY`]).
pub fn is_replay(announce: &Announce) -> bool {
    announce.flags.is_some_and(|f| f & FLAG_REPLAY != 0)
}

/// How tuples live: this node's id, its tuples' lease, and what it gives
/// tuples that come without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    /// This node's random id, the origin of what it writes; never 0.
    pub origin: u64,
    /// How long this node's tuples live without renewal (`None`: forever);
    /// it renews them three times per lease.
    pub lease: Option<Duration>,
    /// How long an unversioned tuple (from a CZMQ node, which never renews)
    /// lives after it was last heard (`None`: forever, as in CZMQ).
    pub foreign_lease: Option<Duration>,
    /// The clock this node's versions come from, and that bounds how far
    /// ahead a peer's may be ([`crate::clock`]).
    pub clock: WallClock,
}

impl Lifecycle {
    /// How long a tombstone is kept: twice the lease, so that every copy
    /// of what it removed has expired before it goes; forever without one.
    pub fn tombstone_keep(&self) -> Option<Duration> {
        self.lease.map(|lease| lease.saturating_mul(2))
    }
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            origin: new_origin(),
            lease: Some(DEFAULT_LEASE),
            foreign_lease: None,
            clock: WallClock::system(),
        }
    }
}

/// A deliberate defect, for showing that the simulator's checks catch a
/// broken node (`zgossip simulate --mutation`). Never set it otherwise.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutation {
    /// Tombstones from peers are ignored.
    SkipTombstones,
    /// Leases from peers are ignored (tuples live forever).
    IgnoreLeases,
    /// The node never renews its own tuples.
    NoRenewal,
}

impl std::str::FromStr for Mutation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "skip-tombstones" => Ok(Mutation::SkipTombstones),
            "ignore-leases" => Ok(Mutation::IgnoreLeases),
            "no-renewal" => Ok(Mutation::NoRenewal),
            other => Err(format!(
                "unknown mutation \"{other}\" (skip-tombstones, ignore-leases, no-renewal)"
            )),
        }
    }
}

/// Most endpoints guarded at once against tombstones from origins other
/// than the live tuple's (once its owner has answered one, for a lease);
/// more are not guarded.
pub const MAX_GUARDED: usize = 4096;

/// The default lease of a node's tuples.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// A random, non-zero origin id.
pub fn new_origin() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS per process and varies per
    // instance; mix in a counter and the time for nodes in one process.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish().max(1)
}

/// A change the node must pass on to its remotes and tell the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Where the tuple is in the table.
    pub(crate) position: usize,
    /// What happened.
    pub(crate) accepted: Accepted,
    /// The tuple, as stored.
    pub(crate) tuple: Tuple,
    /// Our own tuple, written again to answer a competing write: the peer
    /// that sent that write must have it too.
    pub(crate) echo: bool,
    /// It came by a replay (an answer to GRAFT, say): passed on marked so,
    /// since a node that gets it twice must not take the link for a loop
    /// (Plumtree's PRUNE).
    pub(crate) replay: bool,
}

/// What the session actions hand the node ([`zproto_runtime::engine::Io::emit`]),
/// which takes them once the call into the session table returns, in the
/// order the actions emitted them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A tuple from a session changed the table: deliver it to the
    /// application and pass it on to the remotes.
    Accepted(Change),
    /// A tuple from a session was not stored: count it, and log it (rate
    /// limited).
    Refused(Refusal),
    /// A tuple from a session was known already (or outranked): count it.
    Duplicate,
    /// A heartbeat newer than the last of its node: pass it on to the
    /// remotes, and to the sessions too when `to_sessions` (the session
    /// that heard it did not: those of an ALIVES batch).
    Heard {
        /// The heartbeat.
        alive: Alive,
        /// Whether the sessions still need it.
        to_sessions: bool,
    },
    /// A heartbeat in our name above our last one came (forged): ours
    /// must go at once, above it.
    HeartbeatWanted,
    /// Plumtree: a session queued ids for IHAVE, to flush.
    LazyPending,
    /// A session holds tuples in its batch since `since`, to flush.
    Batching {
        /// The session.
        session: SessionKey,
        /// When it forwarded the first of them.
        since: Instant,
    },
}

/// Server-wide state: the node's tuples and what the last run learned.
#[derive(Debug, Default)]
pub struct Gossip {
    /// Every tuple the node knows.
    pub(crate) tuples: Tuples,
    /// What the node accepts.
    pub(crate) limits: Limits,
    /// Origin and leases.
    pub(crate) lifecycle: Lifecycle,
    /// Endpoints this node published and still owns, with the version of
    /// its last answer to a competing write. Ordered, so that renewals go
    /// out in the same order in every run.
    pub(crate) owned: BTreeMap<String, Owned>,
    /// Endpoints this node removed (UNPUBLISH), with the version of its
    /// tombstone, while the table keeps that tombstone.
    pub(crate) unpublished: BTreeMap<String, u64>,
    /// Plumtree: tuples heard of and not received.
    pub(crate) missing: Missing,
    /// Writes a little too far ahead of our clock, held until it catches
    /// up ([`crate::early`]).
    pub(crate) early: Early,
    /// Endpoints whose owner answered a removal by another origin (it
    /// wrote its tuple again, contested), with until when tombstones of
    /// them from origins other than the live tuple's are dropped: a peer
    /// that keeps sending forged tombstones makes a node remove the tuple
    /// once per lease, not once per tombstone. At most [`MAX_GUARDED`].
    pub(crate) guarded: BTreeMap<String, Instant>,
    /// The revision of our last heartbeat.
    pub(crate) heartbeat: u64,
    /// `server/batches 0`: agree no batches with peers.
    pub(crate) batches_off: bool,
    /// Sessions that take versioned tuples but not heartbeats: while there
    /// are any, our tuples are renewed one by one as well.
    pub(crate) renewing_sessions: usize,
    /// A deliberate defect (simulator checks only).
    pub(crate) mutation: Option<Mutation>,
}

/// An endpoint this node published and still owns.
#[derive(Debug, Clone)]
pub(crate) struct Owned {
    /// What the application wrote.
    service: Arc<str>,
    /// The version of our last write of it.
    version: u64,
    /// The version of our last answer to a competing write, while a
    /// contest goes on.
    contest: Option<u64>,
    /// We gave the endpoint up to a persistent writer with a higher
    /// origin: our claim sleeps while its tuple lives, and wakes (the next
    /// renewal writes ours again) once it has expired or been removed.
    yielded: bool,
}

/// Why a tuple was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The service is longer than `limits/service`.
    ServiceTooLong,
    /// The table holds `limits/tuples` already.
    TableFull,
    /// A peer that has not said HELLO tried to change a known tuple.
    BeforeHello,
    /// Origin 0, or a version further ahead of this node's clock than
    /// [`crate::clock::MAX_AHEAD`].
    Implausible,
}

/// Per-session state: where the replay after HELLO stands.
#[derive(Debug, Default)]
pub struct Session {
    /// Position of the next tuple to replay.
    cursor: usize,
    /// Whether a replay is under way (after HELLO, or behind); once it has
    /// finished, new tuples go by `forward` and the cursor stays where the
    /// replay ended.
    replaying: bool,
    /// Tuples sent in the current slice.
    in_slice: usize,
    /// No slice before this time (the peer's queue was full).
    resume_at: Option<Instant>,
    /// Times in a row the peer's queue was full since a replay last
    /// finished: each doubles the wait, up to [`MAX_BEHIND_WAIT`], so that
    /// a peer that never reads costs a slice a second, not a hundred.
    behind_streak: u32,
    /// Where the replay stood at the last refusal.
    behind_at: Option<usize>,
    /// The peer offered versioned tuples (a zproto-rs remote).
    versioned: bool,
    /// The peer agreed Plumtree.
    plumtree: bool,
    /// The peer agreed liveness per node (ALIVE).
    liveness: bool,
    /// The peer agreed batches (ANNOUNCES).
    batches: bool,
    /// Tuples forwarded to it, waiting for the node's `flush batch`.
    pending: Batch,
    /// The node knows of `pending` (its key is in [`Gossip::batching`]).
    flush_due: bool,
    /// The peer sent PRUNE: it gets ids in IHAVE batches, not tuples.
    lazy: bool,
    /// Ids waiting for the next IHAVE.
    queue: LazyQueue,
    /// Plumtree: the session's key, once it has sent IHAVE (what it
    /// announced is forgotten with it).
    announced: Option<zproto_runtime::engine::SessionKey>,
    /// Plumtree: what the peer may still be sent in answers to GRAFT.
    graft_budget: plumtree::GraftBudget,
}

impl Session {
    /// Whether the peer takes versioned tuples but not heartbeats: our
    /// tuples are renewed one by one for it.
    fn renews_tuples(&self) -> bool {
        self.versioned && !self.liveness
    }
}

/// What a heartbeat (ALIVE) is to this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Heartbeat {
    /// Newer than the last of its node, whose tuples we hold: kept; pass
    /// it on.
    PassOn,
    /// Already heard (by another path), or of a node we hold nothing of:
    /// dropped.
    Drop,
    /// Older than the last of its node we heard: the sender is behind,
    /// and may be on the only path to that node (which alone can answer a
    /// forged heartbeat ahead of its own): it gets ours.
    Older(Alive),
    /// In our name, above our last one: someone forged it. Ours goes at
    /// once, above it.
    Forged,
    /// Node 0, no lifetime, or a clock too far ahead of ours: refused.
    Implausible,
}

/// The longest wait before resending to a peer whose queue stays full.
const MAX_BEHIND_WAIT: Duration = Duration::from_secs(1);

/// The ANNOUNCE of a stored tuple, for a peer that takes versioned tuples
/// or not (then: plain, as CZMQ sends it).
pub fn announce_of(tuple: &Tuple, versioned: bool) -> Announce {
    let mut announce = Announce {
        endpoint: tuple.endpoint.to_string(),
        service: tuple.service.to_string(),
        ..Announce::default()
    };
    if let (true, Some(stamp)) = (versioned, tuple.stamp) {
        announce.origin = Some(stamp.origin);
        announce.revision = Some(stamp.version);
        announce.lease = Some(lease_ms(tuple));
        announce.flags = Some(flags_of(tuple));
    }
    announce
}

/// A stamped tuple's lease as ANNOUNCE carries it: milliseconds left, at
/// least 1 (0 means forever).
pub(crate) fn lease_ms(tuple: &Tuple) -> u32 {
    tuple.lease.map_or(0, |lease| {
        u32::try_from(lease.as_millis()).unwrap_or(u32::MAX).max(1)
    })
}

/// A stamped tuple's ANNOUNCE flags (the replay flag aside).
pub(crate) fn flags_of(tuple: &Tuple) -> u8 {
    let mut flags = 0;
    if tuple.removed {
        flags |= FLAG_REMOVED;
    }
    if tuple.contested {
        flags |= FLAG_CONTESTED;
    }
    flags
}

/// Whether a peer can take this tuple: a peer without versioned tuples
/// would store a tombstone as a new tuple; a tombstone left by expiry is
/// ours alone (every node expires a tuple on its own).
pub fn can_send(tuple: &Tuple, versioned: bool) -> bool {
    !tuple.expired && (versioned || !tuple.removed)
}

/// A received ANNOUNCE as an offer to the table; unversioned tuples get
/// `foreign_lease`.
pub fn offer_of<'a>(announce: &'a Announce, foreign_lease: Option<Duration>) -> Offer<'a> {
    match (announce.origin, announce.revision) {
        (Some(origin), Some(version)) => {
            let flags = announce.flags.unwrap_or(0);
            Offer {
                endpoint: &announce.endpoint,
                service: &announce.service,
                stamp: Some(Stamp { version, origin }),
                lease: match announce.lease {
                    None | Some(0) => None,
                    Some(ms) => Some(Duration::from_millis(ms.into())),
                },
                removed: flags & FLAG_REMOVED != 0,
                contested: flags & FLAG_CONTESTED != 0,
                replay: flags & FLAG_REPLAY != 0,
            }
        }
        _ => Offer {
            lease: foreign_lease,
            ..Offer::unversioned(&announce.endpoint, &announce.service)
        },
    }
}

impl Gossip {
    /// The acceptance rule for a tuple from a peer (docs/zgossip.md, "Tuple
    /// lifecycle"): the table's ranking, and for an endpoint this node
    /// owns, an answer to a competing write instead (or, to a persistent
    /// competitor with a higher origin, giving the endpoint up).
    /// `Ok(None)`: nothing changed (a duplicate, or outranked).
    pub(crate) fn receive(
        &mut self,
        offer: &Offer<'_>,
        now: Instant,
    ) -> Result<Option<Change>, Refusal> {
        if offer.service.len() > self.limits.service {
            return Err(Refusal::ServiceTooLong);
        }
        if let Some(stamp) = offer.stamp {
            let clock = self.lifecycle.clock;
            if clock.too_far_ahead(stamp.version, now) {
                let due = clock.acceptable_at(stamp.version, now);
                return if self.early.hold(offer, due, now) {
                    Ok(None)
                } else {
                    Err(Refusal::Implausible)
                };
            }
        }
        if let Some(mutation) = self.mutation {
            return self.receive_mutated(mutation, offer, now);
        }
        if self.guarded_against(offer, now) {
            return Ok(None);
        }
        if let Some(answer) = self.defend(offer, now) {
            return Ok(answer);
        }
        let stored = self.store(offer, false, now);
        if let Ok(Some(change)) = &stored {
            self.guard_if_restored(change, now);
        }
        stored
    }

    /// Whether `offer` is a tombstone, from an origin other than the live
    /// tuple's, of an endpoint whose owner lately answered such a removal.
    fn guarded_against(&self, offer: &Offer<'_>, now: Instant) -> bool {
        let Some(stamp) = offer.stamp.filter(|_| offer.removed) else {
            return false;
        };
        if !self
            .guarded
            .get(offer.endpoint)
            .is_some_and(|&until| until > now)
        {
            return false;
        }
        self.tuples.get(offer.endpoint, now).is_some_and(|held| {
            !held.removed && held.stamp.is_some_and(|s| s.origin != stamp.origin)
        })
    }

    /// A removed tuple came back, written by its owner answering the
    /// removal (contested): guard it against others' tombstones for a
    /// lease.
    fn guard_if_restored(&mut self, change: &Change, now: Instant) {
        let tuple = &change.tuple;
        if !(tuple.contested && !tuple.removed && matches!(change.accepted, Accepted::New(_))) {
            return;
        }
        if self.guarded.len() >= MAX_GUARDED {
            self.guarded.retain(|_, until| *until > now);
            if self.guarded.len() >= MAX_GUARDED {
                return;
            }
        }
        let lease = tuple
            .lease
            .or(self.lifecycle.lease)
            .unwrap_or(DEFAULT_LEASE);
        self.guarded.insert(tuple.endpoint.to_string(), now + lease);
    }

    /// What to answer a pushed write that ranks below what we hold: our
    /// newer tuple, for the sender alone. Its sender is behind, and may be
    /// on the only path to the owner: a node that holds a write its
    /// owner never saw (forged with the owner's origin and a version far
    /// ahead, say, or outranking it) would otherwise refuse the owner's
    /// renewals as stale without a word, and the owner, which alone can
    /// answer it, would never hear of it. A replay (a synchronisation,
    /// where stale copies are the rule and the other direction's replay
    /// brings the sender what it lacks) is answered only when what we hold
    /// is more than a lease ahead of it: no honest copy that old is still
    /// alive, so that is a write ahead of the clocks. The answer goes as a
    /// replay, so that two nodes never answer each other in turn.
    pub(crate) fn newer_than(&self, offer: &Offer<'_>, now: Instant) -> Option<Tuple> {
        let theirs = offer.stamp?;
        let held = self.tuples.get(offer.endpoint, now)?;
        let ours = held.stamp.filter(|&ours| ours > theirs)?;
        if offer.replay {
            let lease = self.lifecycle.lease?;
            let lease = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX);
            if ours.version.saturating_sub(theirs.version) <= lease {
                return None;
            }
        }
        Some(held)
    }

    /// A heartbeat from a peer on `link` (docs/zgossip.md, "Liveness").
    /// Tuples of its node that expired here are asked of that peer
    /// (Plumtree's GRAFT, as if it had announced them).
    pub(crate) fn heard_alive(&mut self, alive: &Alive, link: Link, now: Instant) -> Heartbeat {
        if alive.node == 0
            || alive.lifetime == 0
            || self.lifecycle.clock.too_far_ahead(alive.clock, now)
        {
            return Heartbeat::Implausible;
        }
        if alive.node == self.lifecycle.origin {
            if alive.clock > self.heartbeat {
                // Ours goes above it.
                self.heartbeat = alive.clock;
                return Heartbeat::Forged;
            }
            return Heartbeat::Drop;
        }
        let lifetime = Duration::from_millis(alive.lifetime.into());
        let mut expired = Vec::new();
        match self
            .tuples
            .alive(alive.node, alive.clock, lifetime, now, &mut expired)
        {
            Liveness::Renewed => {
                if !expired.is_empty() {
                    self.missing.ask(expired, link, &self.tuples, now);
                }
                Heartbeat::PassOn
            }
            Liveness::Older { revision, left } if !left.is_zero() => Heartbeat::Older(Alive {
                node: alive.node,
                clock: revision,
                lifetime: u32::try_from(left.as_millis()).unwrap_or(u32::MAX).max(1),
            }),
            Liveness::Older { .. } | Liveness::Stale | Liveness::Unknown => Heartbeat::Drop,
        }
    }

    /// Our heartbeat, due now (every third of our lease, or at once to
    /// answer a forged one): our own tuples live on here too. `None`
    /// without a lease (our tuples live forever).
    pub(crate) fn next_heartbeat(&mut self, now: Instant) -> Option<Alive> {
        let lease = self.lifecycle.lease?;
        let clock = self.lifecycle.clock.next_version(self.heartbeat, now);
        self.heartbeat = clock;
        let origin = self.lifecycle.origin;
        // Ours that expired here are written again by `renew`.
        self.tuples
            .alive(origin, clock, lease, now, &mut Vec::new());
        Some(Alive {
            node: origin,
            clock,
            lifetime: u32::try_from(lease.as_millis()).unwrap_or(u32::MAX).max(1),
        })
    }

    /// The liveness a synchronisation carries, after its HELLO: the last
    /// heartbeat heard of every origin whose tuples live here, ours
    /// included, each with the time it has left here (so that passing it
    /// on never lengthens a life). Without it, a peer that was cut off for
    /// less than a lease would learn who lived meanwhile only from the next
    /// heartbeats, a third of a lease later per hop, and expire live tuples
    /// first. Revisions the peer holds already stop there; a new revision
    /// made for each synchronisation would flood the cluster each time
    /// (300 nodes under churn: 377,000 ALIVEs). Ours is new only if we
    /// own tuples and the last one ran out here (we were paused past our
    /// lease); before our first, our tuples live their own lease.
    pub(crate) fn liveness_for_sync(&mut self, now: Instant) -> Vec<Alive> {
        let origin = self.lifecycle.origin;
        let mut liveness = self.tuples.liveness(now);
        let ours_live = liveness.iter().any(|&(node, _, _)| node == origin);
        if !ours_live && self.heartbeat != 0 && !self.owned.is_empty() {
            if let Some(alive) = self.next_heartbeat(now) {
                liveness.push((
                    alive.node,
                    alive.clock,
                    Duration::from_millis(alive.lifetime.into()),
                ));
            }
        }
        liveness
            .into_iter()
            .map(|(node, clock, left)| Alive {
                node,
                clock,
                lifetime: u32::try_from(left.as_millis()).unwrap_or(u32::MAX).max(1),
            })
            .collect()
    }

    /// [`Gossip::receive`] with a deliberate defect.
    fn receive_mutated(
        &mut self,
        mutation: Mutation,
        offer: &Offer<'_>,
        now: Instant,
    ) -> Result<Option<Change>, Refusal> {
        let mut offer = *offer;
        match mutation {
            Mutation::SkipTombstones if offer.removed => return Ok(None),
            Mutation::IgnoreLeases => offer.lease = None,
            _ => {}
        }
        if let Some(answer) = self.defend(&offer, now) {
            return Ok(answer);
        }
        self.store(&offer, false, now)
    }

    /// A competing write to an endpoint we own: answer it with our tuple,
    /// above it (crate::clock) and marked contested. Give the endpoint up only
    /// to a competitor that answered our answer and has the higher origin,
    /// so that two owners settle on one value and a one-off write never
    /// takes an endpoint over. A write that carries our own origin and that
    /// we never made (forged) is answered the same way, and never yielded
    /// to. What we own is answered from what we wrote, whatever the table
    /// holds now (expired during a pause, say).
    /// `Some(answer)`: the write was ours to answer (it is never stored);
    /// `None`: not ours, the table's ranking decides.
    fn defend(&mut self, offer: &Offer<'_>, now: Instant) -> Option<Option<Change>> {
        let theirs = offer.stamp?;
        let origin = self.lifecycle.origin;
        if let Some(&removed) = self.unpublished.get(offer.endpoint) {
            if let Some(answer) = self.defend_removal(offer, theirs, removed, now) {
                return Some(answer);
            }
        }
        if theirs.origin == origin && !self.owned.contains_key(offer.endpoint) {
            return self.disown(offer, theirs, now);
        }
        let owned = self.owned.get(offer.endpoint).filter(|o| !o.yielded)?;
        let held = self.tuples.stamp(offer.endpoint);
        if held.is_some_and(|s| s >= theirs)
            || theirs
                <= (Stamp {
                    version: owned.version,
                    origin,
                })
        {
            return None;
        }
        if theirs.origin != origin
            && offer.contested
            && theirs.origin > origin
            && owned.contest.is_some_and(|v| theirs.version > v)
        {
            tracing::warn!(
                endpoint = %crate::text::Escaped(offer.endpoint),
                "another node keeps writing this endpoint, with a higher origin: giving it up"
            );
            if let Some(owned) = self.owned.get_mut(offer.endpoint) {
                owned.yielded = true;
                owned.contest = None;
            }
            return None;
        }
        let version = self.lifecycle.clock.next_version(theirs.version, now);
        let service = owned.service.clone();
        if let Some(owned) = self.owned.get_mut(offer.endpoint) {
            owned.contest = Some(version);
            owned.version = version;
        }
        let answer = Offer {
            endpoint: offer.endpoint,
            service: &service,
            stamp: Some(Stamp { version, origin }),
            lease: self.lifecycle.lease,
            removed: false,
            contested: true,
            replay: false,
        };
        // Never the competing write instead, whatever happens to ours.
        Some(self.store(&answer, true, now).ok().flatten())
    }

    /// A live write in our name (our origin) of an endpoint we neither own
    /// nor hold a tombstone of, above what we hold: we never made it (a
    /// forgery), or made it and removed it long ago (a copy that outlived
    /// our tombstone). Answer it with a tombstone above it, so that it
    /// lives nowhere: only we can say what we wrote.
    fn disown(&mut self, offer: &Offer<'_>, theirs: Stamp, now: Instant) -> Option<Option<Change>> {
        if offer.removed
            || self
                .tuples
                .stamp(offer.endpoint)
                .is_some_and(|held| held >= theirs)
        {
            return None;
        }
        self.answer_with_tombstone(offer, theirs, now)
    }

    /// Remove `offer`'s endpoint in our name, above `theirs`, and keep
    /// guarding the removal while the tombstone lives.
    fn answer_with_tombstone(
        &mut self,
        offer: &Offer<'_>,
        theirs: Stamp,
        now: Instant,
    ) -> Option<Option<Change>> {
        let version = self.lifecycle.clock.next_version(theirs.version, now);
        self.unpublished.insert(offer.endpoint.to_owned(), version);
        let answer = Offer {
            endpoint: offer.endpoint,
            service: offer.service,
            stamp: Some(Stamp {
                version,
                origin: self.lifecycle.origin,
            }),
            lease: self.lifecycle.tombstone_keep(),
            removed: true,
            contested: false,
            replay: false,
        };
        Some(self.store(&answer, true, now).ok().flatten())
    }

    /// A live write of an endpoint we removed, above our tombstone: a
    /// copy that was on its way when we removed it (from a process of ours
    /// before a restart, with another origin, say). Answer it with our
    /// tombstone above it, so that the removal stands
    /// everywhere. A contested write is an owner insisting: it wins.
    fn defend_removal(
        &mut self,
        offer: &Offer<'_>,
        theirs: Stamp,
        removed: u64,
        now: Instant,
    ) -> Option<Option<Change>> {
        let origin = self.lifecycle.origin;
        let ours = self
            .tuples
            .get(offer.endpoint, now)
            .is_some_and(|t| t.removed && t.stamp.is_some_and(|s| s.origin == origin));
        if !ours {
            // Our tombstone is gone (forgotten, or someone wrote since).
            self.unpublished.remove(offer.endpoint);
            return None;
        }
        if offer.removed
            || offer.contested
            || theirs
                <= (Stamp {
                    version: removed,
                    origin,
                })
        {
            return None;
        }
        self.answer_with_tombstone(offer, theirs, now)
    }

    /// Store `offer` if it outranks what the table holds. `echo`: our own
    /// answer to a competing write.
    fn store(
        &mut self,
        offer: &Offer<'_>,
        echo: bool,
        now: Instant,
    ) -> Result<Option<Change>, Refusal> {
        let accepted = self.tuples.offer(offer, self.limits.tuples, now);
        let position = match accepted {
            Accepted::Full => return Err(Refusal::TableFull),
            Accepted::Implausible => return Err(Refusal::Implausible),
            other => match other.position() {
                Some(position) => position,
                None => return Ok(None),
            },
        };
        // What the table now holds is the offer (read back from the table
        // it would cost two cache misses into the process-wide strings).
        Ok(Some(Change {
            position,
            accepted,
            tuple: Tuple {
                endpoint: Arc::from(offer.endpoint),
                service: Arc::from(offer.service),
                stamp: offer.stamp,
                removed: offer.removed,
                contested: offer.contested,
                expired: false,
                lease: offer.lease,
            },
            echo,
            replay: false,
        }))
    }

    /// A tuple from the application: ours, versioned above what the
    /// node holds for the endpoint, or last wrote for it. `removed`:
    /// UNPUBLISH.
    pub(crate) fn publish(
        &mut self,
        endpoint: &str,
        service: Option<&str>,
        now: Instant,
    ) -> Result<Option<Change>, Refusal> {
        let held = self.tuples.get(endpoint, now);
        let written = self.owned.get(endpoint).map_or(0, |o| o.version);
        let replaced = held
            .as_ref()
            .and_then(|t| t.stamp)
            .map_or(0, |s| s.version)
            .max(written);
        let version = self.lifecycle.clock.next_version(replaced, now);
        let removed_service;
        let (service, removed, lease) = match service {
            Some(service) => {
                // A contest under way goes on (renewals included): only an
                // answer to our answer settles it.
                let owned = self
                    .owned
                    .entry(endpoint.to_owned())
                    .or_insert_with(|| Owned {
                        service: Arc::from(service),
                        version,
                        contest: None,
                        yielded: false,
                    });
                owned.yielded = false;
                self.unpublished.remove(endpoint);
                if &*owned.service != service {
                    owned.service = Arc::from(service);
                }
                owned.version = version;
                (service, false, self.lifecycle.lease)
            }
            None => {
                self.owned.remove(endpoint);
                self.unpublished.insert(endpoint.to_owned(), version);
                removed_service = held.map(|t| t.service).unwrap_or_else(|| Arc::from(""));
                (&*removed_service, true, self.lifecycle.tombstone_keep())
            }
        };
        let offer = Offer {
            endpoint,
            service,
            stamp: Some(Stamp {
                version,
                origin: self.lifecycle.origin,
            }),
            lease,
            removed,
            contested: false,
            replay: false,
        };
        self.store(&offer, false, now)
    }

    /// Renew every tuple we own: a new version, a full lease again, from
    /// what we wrote (so that a tuple that expired here, during a pause
    /// longer than its lease, comes back rather than being lost). An
    /// endpoint another owner holds is left to it while its tuple lives,
    /// and written again once it is gone (that owner died, or removed it).
    /// With `one_by_one` false (every peer takes heartbeats), a tuple the
    /// table holds as we last wrote it, live and uncontested, is left to
    /// our heartbeat and not written again.
    pub(crate) fn renew(&mut self, now: Instant, one_by_one: bool) -> Vec<Change> {
        let mut changes = Vec::new();
        let origin = self.lifecycle.origin;
        // Removals are guarded while their tombstone is kept.
        let tuples = &self.tuples;
        self.unpublished
            .retain(|endpoint, _| tuples.get(endpoint, now).is_some_and(|t| t.removed));
        let owned: Vec<(String, Arc<str>, Option<Stamp>)> = self
            .owned
            .iter()
            .map(|(e, o)| {
                let written = (!one_by_one && o.contest.is_none()).then_some(Stamp {
                    version: o.version,
                    origin,
                });
                (e.clone(), o.service.clone(), written)
            })
            .collect();
        for (endpoint, service, written) in owned {
            let held = self.tuples.get(&endpoint, now);
            if written.is_some_and(|written| {
                held.as_ref()
                    .is_some_and(|t| !t.removed && t.stamp == Some(written))
            }) {
                // Alive by our heartbeat.
                continue;
            }
            let taken =
                held.is_some_and(|t| !t.removed && t.stamp.is_some_and(|s| s.origin != origin));
            if taken {
                // Another owner's value lives: our claim sleeps.
                if let Some(owned) = self.owned.get_mut(&endpoint) {
                    owned.yielded = true;
                }
                continue;
            }
            if let Ok(Some(change)) = self.publish(&endpoint, Some(&service), now) {
                changes.push(change);
            }
        }
        changes
    }

    /// One tuple from a session: stored if it ranks above what we hold,
    /// with what to pass on, and what to answer the peer.
    fn store_announce(
        &mut self,
        session: &mut Session,
        a: &Announce,
        now: Instant,
        io: &mut Io,
    ) -> (Option<Change>, Option<ZgossipMsg>) {
        let offer = offer_of(a, self.lifecycle.foreign_lease);
        let pushed = !is_replay(a);
        match self.receive(&offer, now) {
            Ok(Some(mut change)) => {
                change.replay = !pushed;
                (Some(change), None)
            }
            Ok(None) => {
                io.emit(Effect::Duplicate);
                // Plumtree: the same write pushed to us twice, so this link
                // is off the tree (a stale version is no duplicate).
                let pushed_twice = pushed
                    && offer.stamp.is_some()
                    && self.tuples.stamp(&a.endpoint) == offer.stamp
                    && self.tuples.came_pushed(&a.endpoint);
                if let Some(newer) = self
                    .newer_than(&offer, now)
                    .filter(|t| session.versioned && can_send(t, true))
                {
                    (None, Some(replayed(announce_of(&newer, true)).into()))
                } else if pushed_twice && session.plumtree && !session.lazy {
                    session.lazy = true;
                    (None, Some(Prune.into()))
                } else {
                    (None, None)
                }
            }
            Err(refusal) => {
                io.emit(Effect::Refused(refusal));
                (None, None)
            }
        }
    }

    fn next_replayed(&self, session: &mut Session, io: &mut Io) {
        if session.in_slice >= self.limits.slice.max(1) {
            session.in_slice = 0;
            io.set_next_event(Event::Pause);
            return;
        }
        // The session table always gives the time (sans-IO: never the clock).
        let Some(now) = io.now() else {
            io.set_next_event(Event::Finished);
            return;
        };
        if session.batches {
            let budget = self.limits.batch_budget();
            let mut batch = Batch::new();
            let slice = self.limits.slice.max(1);
            while session.cursor < self.tuples.slots() && session.in_slice < slice {
                let tuple = self.tuples.at(session.cursor, now);
                match tuple.filter(|t| can_send(t, true)) {
                    Some(tuple) if !batch.push(&tuple, true, budget) => break,
                    Some(_) => session.in_slice += 1,
                    None => {}
                }
                session.cursor += 1;
            }
            if !batch.is_empty() {
                io.set_message(
                    Announces {
                        records: batch.into_records(),
                    }
                    .into(),
                );
                io.set_next_event(Event::Batch);
                return;
            }
            // A tuple too big for a batch goes alone (none is: a batch
            // holds the largest ANNOUNCE's tuple).
        }
        while session.cursor < self.tuples.slots() {
            let tuple = self.tuples.at(session.cursor, now);
            session.cursor += 1;
            let Some(tuple) = tuple.filter(|t| can_send(t, session.versioned)) else {
                continue;
            };
            session.in_slice += 1;
            io.set_message(replayed(announce_of(&tuple, session.versioned)).into());
            io.set_next_event(Event::Ok);
            return;
        }
        session.behind_streak = 0;
        session.behind_at = None;
        session.replaying = false;
        io.set_next_event(Event::Finished);
    }

    /// A change from a session: forward it to the other sessions (all of
    /// them for an answer to a competing write), and keep it for the node.
    fn forward_change(&mut self, change: Change, io: &mut Io) {
        let forwarded = Forwarded::of(&change);
        let echo = change.echo;
        io.emit(Effect::Accepted(change));
        if echo {
            io.broadcast_with(Event::Forward, forwarded);
        } else {
            // The sender has it already: no echo back to it.
            io.broadcast_to_others_with(Event::Forward, forwarded);
        }
    }
}

/// What the `forward` event carries: a tuple to pass on, its position in
/// the table (a replay past it sends it itself), and whether a
/// synchronisation brought it (Plumtree tells replays from news).
#[derive(Debug, Clone)]
pub(crate) struct Forwarded {
    pub(crate) tuple: Tuple,
    pub(crate) position: usize,
    pub(crate) replay: bool,
}

impl Forwarded {
    pub(crate) fn of(change: &Change) -> Self {
        Self {
            tuple: change.tuple.clone(),
            position: change.position,
            replay: change.replay,
        }
    }
}

/// What the `behind` event carries: the first position the session must
/// send again, and how long to wait before it does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Behind {
    pub(crate) position: usize,
    pub(crate) wait: Duration,
}

/// What the `ask for missing` event carries: the endpoints to ask for.
#[derive(Debug, Clone)]
pub(crate) struct GraftRequest(pub(crate) Vec<String>);

impl Actions for Gossip {
    type Session = Session;

    fn session_ended(&mut self, session: &mut Session) {
        if session.renews_tuples() {
            self.renewing_sessions = self.renewing_sessions.saturating_sub(1);
        }
        if let Some(key) = session.announced.take() {
            self.missing.forget_link(Link::Session(key));
        }
    }

    fn send_liveness(&mut self, session: &mut Session, io: &mut Io) {
        let (true, Some(now)) = (session.liveness, io.now()) else {
            return;
        };
        let alives = self.liveness_for_sync(now);
        let budget = self.limits.batch_budget();
        for message in crate::batch::alive_messages(alives, session.batches, budget) {
            io.send(message);
        }
    }

    fn note_liveness_batch(&mut self, session: &mut Session, batch: &mut Alives, io: &mut Io) {
        let (Some(now), Some(key), true, true) =
            (io.now(), io.session(), session.liveness, session.batches)
        else {
            return;
        };
        let Some(alives) = crate::batch::unpack_alives(&batch.records) else {
            io.emit(Effect::Refused(Refusal::Implausible));
            return;
        };
        for alive in alives {
            match self.heard_alive(&alive, Link::Session(key), now) {
                // Passed on by the node once the sessions are done, to
                // every session and remote (one message each, as any
                // heartbeat heard).
                Heartbeat::PassOn => io.emit(Effect::Heard {
                    alive,
                    to_sessions: true,
                }),
                Heartbeat::Forged => io.emit(Effect::HeartbeatWanted),
                Heartbeat::Older(newer) => io.send(newer.into()),
                Heartbeat::Implausible => io.emit(Effect::Refused(Refusal::Implausible)),
                Heartbeat::Drop => {}
            }
        }
    }

    fn get_first_tuple(&mut self, session: &mut Session, io: &mut Io) {
        session.cursor = 0;
        session.in_slice = 0;
        session.replaying = true;
        self.next_replayed(session, io);
    }

    fn start_over_unless_plain(&mut self, session: &mut Session, _hello: &mut Hello, io: &mut Io) {
        if !(session.versioned || session.plumtree) {
            io.set_exception(Event::PlainHello);
        }
    }

    fn get_next_tuple(&mut self, session: &mut Session, io: &mut Io) {
        session.resume_at = None;
        self.next_replayed(session, io);
    }

    fn wait_to_resume(&mut self, session: &mut Session, io: &mut Io) {
        // Any event cancels a wakeup, and each event here sets it again: a
        // deadline, not a delay, so that busy traffic cannot postpone it.
        let delay = match (session.resume_at, io.now()) {
            (Some(at), Some(now)) => at.saturating_duration_since(now),
            _ => Duration::ZERO,
        };
        io.set_wakeup(delay, Event::Resume);
    }

    fn fall_behind(&mut self, session: &mut Session, io: &mut Io) {
        if let Some(&Behind { position, wait }) = io.arg::<Behind>() {
            // During a replay, from whichever comes first; after one, from
            // the first tuple missed (those before it were sent).
            session.cursor = if session.replaying {
                session.cursor.min(position)
            } else {
                position
            };
            session.replaying = true;
            session.in_slice = 0;
            // The peer took something since the last refusal: it reads,
            // only slower than we send. Try again soon; the wait grows
            // only while it takes nothing (a peer that never reads costs a
            // slice a second, one that reads gets the table at its pace).
            if session.behind_at.map_or(true, |at| session.cursor > at) {
                session.behind_streak = 0;
            }
            session.behind_at = Some(session.cursor);
            let wait = wait
                .saturating_mul(1 << session.behind_streak.min(16))
                .min(MAX_BEHIND_WAIT);
            session.behind_streak = session.behind_streak.saturating_add(1);
            session.resume_at = io.now().map(|now| now + wait);
        }
    }

    fn agree_extensions(&mut self, session: &mut Session, ping: &mut Ping, io: &mut Io) {
        let Some(offered) = ping.extensions else {
            return;
        };
        let ours = if self.batches_off {
            EXTENSIONS & !BATCHES
        } else {
            EXTENSIONS
        };
        let mut agreed = offered & ours;
        if agreed & VERSIONED_TUPLES == 0 {
            // Heartbeats keep versioned tuples alive, and batches
            // carry them: nothing else.
            agreed &= !(LIVENESS | BATCHES);
        }
        let renewed_before = session.renews_tuples();
        session.versioned = agreed & VERSIONED_TUPLES != 0;
        session.plumtree = agreed & PLUMTREE != 0;
        session.liveness = agreed & LIVENESS != 0;
        session.batches = agreed & BATCHES != 0;
        match (renewed_before, session.renews_tuples()) {
            (false, true) => self.renewing_sessions += 1,
            (true, false) => self.renewing_sessions = self.renewing_sessions.saturating_sub(1),
            _ => {}
        }
        io.set_message(
            Pong {
                extensions: Some(agreed),
            }
            .into(),
        );
    }

    fn store_tuple_if_new(&mut self, session: &mut Session, a: &mut Announce, io: &mut Io) {
        let Some(now) = io.now() else {
            return;
        };
        let (change, reply) = self.store_announce(session, a, now, io);
        if let Some(change) = change {
            self.forward_change(change, io);
        }
        if let Some(reply) = reply {
            io.send(reply);
        }
    }

    fn store_tuples_if_new(&mut self, session: &mut Session, batch: &mut Announces, io: &mut Io) {
        let Some(now) = io.now() else {
            return;
        };
        let announces = match crate::batch::unpack(&batch.records) {
            Some(announces) if session.batches => announces,
            // Not agreed, or not well formed: nothing of it is taken.
            _ => {
                io.emit(Effect::Refused(Refusal::Implausible));
                return;
            }
        };
        for a in &announces {
            let (change, reply) = self.store_announce(session, a, now, io);
            if let Some(change) = change {
                // Each tuple's `forward` carries it: one run forwards many.
                self.forward_change(change, io);
            }
            if let Some(reply) = reply {
                io.send(reply);
            }
        }
    }

    fn store_tuple_if_new_endpoint(
        &mut self,
        session: &mut Session,
        a: &mut Announce,
        io: &mut Io,
    ) {
        // A versioned tuple before HELLO comes from a zproto-rs remote,
        // which sends everything again after its HELLO: this one is stale
        // (queued in a DEALER's pipe through an outage), and may be older
        // than a removal the peer is about to send. Only CZMQ's tuples,
        // never sent again, are kept.
        if a.origin.is_some() {
            return;
        }
        if self.tuples.position(&a.endpoint).is_some() {
            if self.tuples.service(&a.endpoint).as_deref() != Some(a.service.as_str()) {
                io.emit(Effect::Refused(Refusal::BeforeHello));
            }
            return;
        }
        self.store_tuple_if_new(session, a, io);
    }

    fn get_tuple_to_forward_unless_replay_sends_it(&mut self, session: &mut Session, io: &mut Io) {
        if !matches!(io.arg::<Forwarded>(), Some(f) if f.position < session.cursor) {
            io.set_exception(Event::NothingToForward);
            return;
        }
        self.get_tuple_to_forward(session, io);
    }

    fn get_tuple_to_forward(&mut self, session: &mut Session, io: &mut Io) {
        // The tuple's fields are shared: cloning it costs two reference
        // counts, and frees `io` for the sends below.
        let Some(Forwarded { tuple, replay, .. }) = io.arg::<Forwarded>().cloned() else {
            io.set_exception(Event::NothingToForward);
            return;
        };
        if session.lazy && tuple.stamp.is_some() {
            // A lazy link: the id only, in the next IHAVE.
            session.queue.push(&tuple);
            io.emit(Effect::LazyPending);
            io.set_exception(Event::NothingToForward);
        } else if session.batches && can_send(&tuple, true) {
            let budget = self.limits.batch_budget();
            for full in session.pending.add(&tuple, replay, budget) {
                io.send(full);
            }
            if let (false, Some(key), Some(now)) = (session.flush_due, io.session(), io.now()) {
                session.flush_due = true;
                io.emit(Effect::Batching {
                    session: key,
                    since: now,
                });
            }
            io.set_exception(Event::NothingToForward);
        } else if can_send(&tuple, session.versioned) {
            let announce = announce_of(&tuple, session.versioned);
            let announce = if replay { replayed(announce) } else { announce };
            io.set_message(announce.into());
        } else {
            io.set_exception(Event::NothingToForward);
        }
    }

    fn note_tuples_the_peer_has(&mut self, session: &mut Session, ihave: &mut Ihave, io: &mut Io) {
        let (Some(key), true) = (io.session(), session.plumtree) else {
            return;
        };
        let Some(now) = io.now() else {
            return;
        };
        match plumtree::unpack(&ihave.tuples) {
            Some(ids) => {
                session.announced = Some(key);
                self.missing
                    .heard(ids, Link::Session(key), &self.tuples, now);
            }
            None => io.emit(Effect::Refused(Refusal::Implausible)),
        }
    }

    fn send_tuples_asked_for(&mut self, session: &mut Session, graft: &mut Graft, io: &mut Io) {
        if !session.plumtree {
            return;
        }
        // GRAFT puts the link back on the tree.
        session.lazy = false;
        let Some(now) = io.now() else {
            return;
        };
        let versioned = session.versioned;
        let tuples = session
            .graft_budget
            .answer(&graft.endpoints, &self.tuples, now, |t| {
                can_send(t, versioned)
            });
        for tuple in tuples {
            io.send(replayed(announce_of(&tuple, session.versioned)).into());
        }
    }

    fn make_the_link_lazy(&mut self, session: &mut Session, _prune: &mut Prune, _io: &mut Io) {
        if session.plumtree {
            session.lazy = true;
        }
    }

    fn get_lazy_batch(&mut self, session: &mut Session, io: &mut Io) {
        let max = usize::try_from(self.limits.max_message()).unwrap_or(usize::MAX);
        match session.queue.take(max) {
            Some(tuples) => {
                if !session.queue.is_empty() {
                    io.emit(Effect::LazyPending);
                }
                io.set_message(Ihave { tuples }.into());
            }
            None => io.set_exception(Event::NothingToForward),
        }
    }

    fn note_liveness(&mut self, session: &mut Session, alive: &mut Alive, io: &mut Io) {
        let (Some(now), Some(key), true) = (io.now(), io.session(), session.liveness) else {
            return;
        };
        match self.heard_alive(alive, Link::Session(key), now) {
            Heartbeat::PassOn => {
                let alive = alive.clone();
                io.emit(Effect::Heard {
                    alive: alive.clone(),
                    to_sessions: false,
                });
                io.broadcast_to_others_with(Event::ForwardAlive, alive);
            }
            Heartbeat::Forged => io.emit(Effect::HeartbeatWanted),
            Heartbeat::Older(newer) => io.send(newer.into()),
            Heartbeat::Implausible => io.emit(Effect::Refused(Refusal::Implausible)),
            Heartbeat::Drop => {}
        }
    }

    fn send_pending_batch(&mut self, session: &mut Session, io: &mut Io) {
        session.flush_due = false;
        if let Some(batch) = session.pending.take() {
            io.send(batch.into());
        }
    }

    fn get_heartbeat_to_forward(&mut self, session: &mut Session, io: &mut Io) {
        match io.arg::<Alive>().cloned() {
            Some(alive) if session.liveness => io.set_message(alive.into()),
            _ => io.set_exception(Event::NothingToForward),
        }
    }

    fn get_graft(&mut self, session: &mut Session, io: &mut Io) {
        match io.arg::<GraftRequest>().cloned() {
            Some(GraftRequest(endpoints)) if session.plumtree => {
                // Asking puts the link back on the tree, both ways.
                session.lazy = false;
                io.set_message(Graft { endpoints }.into());
            }
            _ => io.set_exception(Event::NothingToForward),
        }
    }
}
