//! The zgossip node, sans I/O: server sessions (the generated engine), remote
//! sessions, the tuple table and the acceptance rule. Drivers feed it frames,
//! commands and the time, and carry out its [`Output`]s; `zproto_runtime::reactor`
//! does so over ZeroMQ sockets.

use std::time::{Duration, Instant};

use zproto_runtime::server::Sessions;
use zproto_runtime::throttle::Throttle;
use zproto_runtime::{Codec, Packet};

use crate::batch::first_position;
use crate::engine::{Event, Machine};
use crate::limits::{Limits, MAX_ENDPOINT};
use crate::msg::{Alive, Announce, Graft, Ihave, Prune, ZgossipMsg};
use crate::plumtree::{self, Link, FLUSH_EVERY};
use crate::remote::{Pace, Received, Remote};
use crate::server::{
    announce_of, can_send, is_replay, new_origin, offer_of, replayed, Behind, Change, Effect,
    Forwarded, Gossip, GraftRequest, Heartbeat, Lifecycle, Refusal, DEFAULT_LEASE,
};
use crate::text::Escaped;
use crate::tuples::{Accepted, Interner, Tuple, Tuples};

/// How soon a replay that a full queue refused tries again, while the peer
/// keeps taking what it is sent (doubling, up to a second, while it takes
/// nothing).
const REPLAY_RETRY: Duration = Duration::from_millis(1);

/// Settings of a node (`SET path value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `server/timeout`: how long a peer may be silent before the node
    /// checks that it is still there (0: never). Over tcp and ipc, libzmq
    /// checks with ZMTP heartbeats every quarter of it and drops a
    /// connection silent for this long; the peer's session lives exactly as
    /// long as its connection. Over inproc, the node sends the peer a PING
    /// (which zgossip remotes ignore) and drops the session if libzmq says
    /// the peer is gone. Default 10,000 ms.
    pub timeout: Duration,
    /// `remote/ping`: how often a remote session PINGs when otherwise quiet.
    /// Must stay well under the remote server's timeout (CZMQ: 1000 ms).
    pub ping_interval: Duration,
    /// `remote/resync`: least time between two synchronisations of a remote
    /// (HELLO and every tuple); doubled while they follow each other
    /// closely, up to a minute. Default 1000 ms.
    pub resync: Duration,
    /// `limits/...`: what the node accepts and queues.
    pub limits: Limits,
    /// `tuples/lease`: how long this node's tuples live without renewal
    /// (`None`, set as 0: forever, as in CZMQ). The node renews them three
    /// times per lease while it runs. Default 30,000 ms.
    pub lease: Option<Duration>,
    /// `tuples/foreign-lease`: how long an unversioned tuple (from a CZMQ
    /// node, which never renews) lives after it was last heard (`None`,
    /// set as 0: forever, as in CZMQ; the default).
    pub foreign_lease: Option<Duration>,
    /// This node's origin, the id its versioned tuples carry (never 0).
    /// `None`: a random one, drawn from the OS when the node is made. A
    /// driver that replays runs (the simulator) gives one from its seed, so
    /// that nothing in the node depends on the process it runs in.
    pub origin: Option<u64>,
    /// The wall clock this node's versions come from ([`crate::clock`]).
    /// `None`: the operating system's, read when the node is made. A
    /// driver that replays runs gives one from its simulated time.
    pub wall_clock: Option<crate::clock::WallClock>,
    /// `server/batches`: whether peers that agree batches get several
    /// tuples per message (ANNOUNCES) in replays and floods. Default on;
    /// off, this node's server agrees no batches (one ANNOUNCE a tuple).
    pub batches: bool,
    /// A deliberate defect (the simulator's checks are tested with it).
    #[doc(hidden)]
    pub mutation: Option<crate::server::Mutation>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(10_000),
            ping_interval: Duration::from_millis(300),
            resync: Duration::from_millis(1000),
            limits: Limits::default(),
            lease: Some(DEFAULT_LEASE),
            foreign_lease: None,
            origin: None,
            wall_clock: None,
            batches: true,
            mutation: None,
        }
    }
}

impl Settings {
    fn pace(&self) -> Pace {
        Pace {
            ping: self.ping_interval,
            resync: self.resync,
            slice: self.limits.slice,
            batch: self.limits.batch_budget(),
        }
    }
}

/// The settings `SET` knows, for messages.
pub const SETTINGS: &str =
    "server/timeout, server/verbose, server/batches, remote/ping, remote/resync, \
                            limits/tuples, limits/service, limits/hwm, limits/slice, \
                            tuples/lease, tuples/foreign-lease";

/// A setting that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// No such path.
    #[error("unknown setting \"{0}\" (known: {SETTINGS})")]
    UnknownPath(String),
    /// The value is not a number in the setting's range.
    #[error("setting {path}: \"{value}\" is not {expected}")]
    BadValue {
        /// The path.
        path: String,
        /// The value given.
        value: String,
        /// What the setting takes.
        expected: &'static str,
    },
}

/// A tuple the application may not announce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnounceError {
    /// Empty, or longer than the wire allows (255 bytes).
    #[error("endpoint of {0} bytes cannot be sent (1 to 255 bytes)")]
    Endpoint(usize),
    /// Longer than `limits/service`.
    #[error("service of {len} bytes is over limits/service ({limit} bytes)")]
    Service {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A new endpoint, and the node holds `limits/tuples` already.
    #[error("the node holds limits/tuples ({0}) tuples already")]
    TableFull(usize),
    /// UNPUBLISH of an endpoint the node holds no live tuple for.
    #[error("no tuple at endpoint \"{0}\" to remove")]
    Unknown(String),
}

/// Whether the application may announce this tuple under `limits`: an
/// endpoint that can be sent, a service within `limits/service`.
pub fn check_tuple(endpoint: &str, service: &str, limits: &Limits) -> Result<(), AnnounceError> {
    if endpoint.is_empty() || endpoint.len() > MAX_ENDPOINT {
        return Err(AnnounceError::Endpoint(endpoint.len()));
    }
    if service.len() > limits.service {
        return Err(AnnounceError::Service {
            len: service.len(),
            limit: limits.service,
        });
    }
    Ok(())
}

/// A routing id in lower-case hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A peer of the node, as [`NodeCore::peers`] lists it, or as an
/// [`Output::Peer`] reports it going up or down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// A peer connected to our ROUTER, or a server we connected to.
    pub kind: PeerKind,
    /// The session's routing id in hex, or the remote's endpoint.
    pub name: String,
    /// The session's state in the server model, or the remote's
    /// synchronisation ("synchronised", "synchronising").
    pub state: &'static str,
    /// Whether it is alive. A session lives exactly as long as its peer is
    /// reachable (see docs/zgossip.md); a remote is up while its server answers its
    /// keepalive PINGs (heard from within three intervals, at least 1 s).
    pub up: bool,
    /// How long ago a remote's server last sent anything.
    pub last_heard: Option<Duration>,
}

/// Which side of a link a [`Peer`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerKind {
    /// A peer connected to our ROUTER.
    Session,
    /// A server we connected to.
    Remote,
}

/// One of a node's remotes, as [`NodeCore::connect`] returned it: the
/// driver keeps the connection (a DEALER) it opened for it, and hands its
/// frames and reconnections back under this id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RemoteId(u32);

impl RemoteId {
    /// Its position among the node's remotes, in the order they were
    /// connected (from 0): drivers that keep their connections in a `Vec`
    /// index it with this.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The remote at `index` (the in-crate drivers, the mesh and the
    /// simulator, number their links as the node numbers its remotes).
    pub(crate) fn of(index: usize) -> Self {
        Self(u32::try_from(index).unwrap_or(u32::MAX))
    }
}

impl std::fmt::Display for RemoteId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "remote {}", self.0)
    }
}

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send frames to a peer on our ROUTER (routing id first).
    ToPeer(Packet),
    /// Send frames to remote number `remote` (its DEALER).
    ToRemote {
        /// The remote, as [`NodeCore::connect`] returned it.
        remote: RemoteId,
        /// The frames.
        frames: Packet,
    },
    /// A peer went up or down (presence), for the application.
    Peer(Peer),
    /// A tuple new to this node, or a new service for a known endpoint,
    /// for the application.
    Deliver {
        /// Endpoint (tuple key).
        endpoint: String,
        /// Service (tuple value).
        service: String,
    },
    /// A tuple removed (UNPUBLISH somewhere) or expired, for the
    /// application.
    Remove {
        /// Endpoint (tuple key).
        endpoint: String,
        /// The service it had.
        service: String,
        /// Its lease ran out here (`false`: a tombstone removed it).
        expired: bool,
        /// The origin of the tombstone that removed it (`None`: its lease
        /// ran out).
        remover: Option<u64>,
    },
}

/// Counters and gauges, for STATS and for measuring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Tuples the node holds (STATUS).
    pub tuples: u64,
    /// Live server sessions.
    pub sessions: u64,
    /// Messages decoded from peers and remotes.
    pub received: u64,
    /// Messages encoded to peers and remotes.
    pub sent: u64,
    /// ANNOUNCEs received for tuples already known.
    pub duplicates: u64,
    /// Frames that failed to decode, logged and dropped.
    pub malformed: u64,
    /// Tuples from peers and remotes refused: over `limits/service`, new
    /// endpoints beyond `limits/tuples`, implausible versions, changes
    /// before HELLO.
    pub refused_tuples: u64,
    /// Tuples removed here: by a tombstone, or expired.
    pub removed: u64,
    /// Answers to competing writes of our own tuples.
    pub contests: u64,
    /// Messages a full queue refused (a peer that does not read): sent
    /// again once it has room.
    pub refused_sends: u64,
    /// Sessions ended because the peer went away.
    pub peers_gone: u64,
    /// Remote synchronisations (HELLO and every tuple) after the first:
    /// after INVALID, a reconnection, or a refused HELLO.
    pub resyncs: u64,
    /// Deliveries dropped because the application's queue was full.
    pub deliveries_dropped: u64,
    /// Plumtree: tuples heard of by IHAVE and awaited (at most
    /// [`crate::plumtree::MAX_MISSING`], and
    /// [`crate::plumtree::MAX_MISSING_PER_LINK`] per peer).
    pub awaited: u64,
    /// Writes a little too far ahead of the clock, held until it catches
    /// up (at most [`crate::early::MAX_EARLY`]).
    pub early: u64,
    /// Our heartbeats sent (ALIVE: one per third of our lease while we own
    /// tuples, passed on by every node).
    pub heartbeats_sent: u64,
    /// Heartbeats in our name above our last one (forged), each answered
    /// at once with ours.
    pub forged_heartbeats: u64,
    /// Messages received, by type ([`MESSAGE_TYPES`] order).
    pub received_by_type: [u64; MESSAGE_KINDS],
    /// Messages sent, by type ([`MESSAGE_TYPES`] order).
    pub sent_by_type: [u64; MESSAGE_KINDS],
    /// Bytes of the messages received (routing ids left out).
    pub bytes_received: u64,
    /// Bytes of the messages sent (routing ids left out).
    pub bytes_sent: u64,
}

/// The longest wait between two attempts to reach a remote's server, as
/// a node's driver sets libzmq's reconnection (`ZMQ_RECONNECT_IVL_MAX`).
pub const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// How many message types zgossip has (ids 1 to this).
pub const MESSAGE_KINDS: usize = 11;

/// zgossip's message types, in id order, as `Stats` counts them.
pub const MESSAGE_TYPES: [&str; MESSAGE_KINDS] = [
    "HELLO",
    "ANNOUNCE",
    "PING",
    "PONG",
    "INVALID",
    "IHAVE",
    "GRAFT",
    "PRUNE",
    "ALIVE",
    "ANNOUNCES",
    "ALIVES",
];

/// The index of `message`'s type in [`MESSAGE_TYPES`].
fn type_index(message: &ZgossipMsg) -> usize {
    usize::from(message.id()).clamp(1, MESSAGE_KINDS) - 1
}

fn frames_len<F: AsRef<[u8]>>(frames: &[F]) -> u64 {
    frames.iter().map(|f| f.as_ref().len() as u64).sum()
}

impl Stats {
    fn count_in<F: AsRef<[u8]>>(&mut self, message: &ZgossipMsg, frames: &[F]) {
        self.received += 1;
        self.received_by_type[type_index(message)] += 1;
        self.bytes_received += frames_len(frames);
    }

    /// `bytes`: the message's, without a routing id.
    fn count_out(&mut self, message: &ZgossipMsg, bytes: usize) {
        self.sent += 1;
        self.sent_by_type[type_index(message)] += 1;
        self.bytes_sent += bytes as u64;
    }
}

impl std::fmt::Display for Stats {
    /// `name=value` pairs, space-separated (the STATS reply).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tuples={} sessions={} received={} sent={} duplicates={} malformed={} \
             refused_tuples={} refused_sends={} peers_gone={} resyncs={} deliveries_dropped={} \
             removed={} contests={} awaited={} early={}",
            self.tuples,
            self.sessions,
            self.received,
            self.sent,
            self.duplicates,
            self.malformed,
            self.refused_tuples,
            self.refused_sends,
            self.peers_gone,
            self.resyncs,
            self.deliveries_dropped,
            self.removed,
            self.contests,
            self.awaited,
            self.early
        )
    }
}

/// One zgossip node.
#[derive(Debug)]
pub struct NodeCore {
    name: String,
    settings: Settings,
    sessions: Sessions<Machine<Gossip>>,
    gossip: Gossip,
    remotes: Vec<Remote>,
    outputs: Vec<Output>,
    stats: Stats,
    /// Warnings about what peers send, at most ten a second each.
    warn_malformed: Throttle,
    warn_refused: Throttle,
    /// When our tuples are next renewed (while we own any).
    next_renewal: Option<Instant>,
    /// Plumtree: when ids queued for lazy links next go out.
    next_flush: Option<Instant>,
    /// Plumtree: a session queued ids for IHAVE ([`Effect::LazyPending`]).
    lazy_pending: bool,
    /// Sessions holding tuples in their batch, with since when
    /// ([`Effect::Batching`]), for [`NodeCore::flush_batches`].
    batching: Vec<(zproto_runtime::engine::SessionKey, Instant)>,
    /// Effects of a message from a peer that make the node act in turn
    /// (accepted tuples, heartbeats), taken from the sessions and not yet
    /// handled: empty but inside [`NodeCore::after_sessions`].
    to_handle: std::collections::VecDeque<Effect>,
}

impl NodeCore {
    /// A node; `name` prefixes its log lines. Its tuple strings go to an
    /// interner of its own.
    pub fn new(name: impl Into<String>, settings: Settings) -> Self {
        Self::with_interner(name, settings, Interner::new())
    }

    /// A node whose tuple strings go to `interner`, which its driver owns:
    /// nodes that share one hold one copy of each string (a swarm of
    /// thousands in one process); worlds run side by side (the simulator)
    /// each have their own, so that they share nothing.
    pub fn with_interner(name: impl Into<String>, settings: Settings, interner: Interner) -> Self {
        let mut node = Self {
            name: name.into(),
            sessions: Sessions::new(Some(settings.timeout)),
            settings,
            gossip: Gossip {
                tuples: Tuples::with_interner(interner),
                limits: settings.limits,
                lifecycle: Lifecycle {
                    origin: settings.origin.map_or_else(new_origin, |o| o.max(1)),
                    lease: settings.lease,
                    foreign_lease: settings.foreign_lease,
                    clock: settings
                        .wall_clock
                        .unwrap_or_else(crate::clock::WallClock::system),
                },
                mutation: settings.mutation,
                batches_off: !settings.batches,
                ..Gossip::default()
            },
            remotes: Vec::new(),
            outputs: Vec::new(),
            stats: Stats::default(),
            warn_malformed: Throttle::default(),
            warn_refused: Throttle::default(),
            next_renewal: None,
            next_flush: None,
            lazy_pending: false,
            batching: Vec::new(),
            to_handle: std::collections::VecDeque::new(),
        };
        node.gossip
            .missing
            .set_waits(plumtree::graft_waits(settings.lease));
        node.gossip.tuples.set_heartbeat_horizon(settings.lease);
        node
    }

    /// This node's origin: the random id its versioned tuples carry.
    pub fn origin(&self) -> u64 {
        self.gossip.lifecycle.origin
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every tuple the node knows.
    pub fn tuples(&self) -> &Tuples {
        &self.gossip.tuples
    }

    /// Live server sessions by state name, in the model's state order.
    pub fn sessions_by_state(&self) -> Vec<(&'static str, u64)> {
        use crate::engine::State;
        let mut counts: Vec<(&'static str, u64)> =
            State::ALL.iter().map(|s| (s.name(), 0)).collect();
        for state in self.sessions.states() {
            if let Some(i) = State::ALL.iter().position(|s| *s == state) {
                counts[i].1 += 1;
            }
        }
        counts
    }

    /// Every peer: the sessions of peers connected to us, then our
    /// remotes, each with whether it is up (see [`Peer`]).
    pub fn peers(&self, now: Instant) -> Vec<Peer> {
        let sessions = self.sessions.live().map(|(routing_id, state)| Peer {
            kind: PeerKind::Session,
            name: hex(routing_id),
            state: state.name(),
            up: true,
            last_heard: None,
        });
        let pace = self.settings.pace();
        let remotes = self.remotes.iter().map(|r| Peer {
            kind: PeerKind::Remote,
            name: r.endpoint().to_owned(),
            state: if r.is_synchronising() {
                "synchronising"
            } else {
                "synchronised"
            },
            up: r.is_up(pace, now),
            last_heard: r.last_heard().map(|at| now.saturating_duration_since(at)),
        });
        sessions.chain(remotes).collect()
    }

    /// Remotes (synchronised, synchronising).
    pub fn remotes_by_state(&self) -> (u64, u64) {
        let synchronising = self.remotes.iter().filter(|r| r.is_synchronising()).count() as u64;
        (self.remotes.len() as u64 - synchronising, synchronising)
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        let generations: u64 = self.remotes.iter().map(Remote::generations).sum();
        Stats {
            tuples: self.gossip.tuples.len() as u64,
            sessions: self.sessions.len() as u64,
            resyncs: generations.saturating_sub(self.remotes.len() as u64),
            awaited: self.gossip.missing.len() as u64,
            early: self.gossip.early.len() as u64,
            ..self.stats
        }
    }

    /// Current settings.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Number of live server sessions.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Log every state, event and action of the server sessions.
    pub fn set_verbose(&mut self, on: bool) {
        self.sessions.set_animate(on);
    }

    /// `SET path value`. Limits on queues and frame sizes apply to sockets
    /// opened afterwards: set them before BIND and CONNECT.
    pub fn set(&mut self, path: &str, value: &str) -> Result<(), SettingError> {
        let number = |min: u64, max: u64, expected: &'static str| {
            value
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| SettingError::BadValue {
                    path: path.to_owned(),
                    value: value.to_owned(),
                    expected,
                })
        };
        const DAY_MS: u64 = 86_400_000;
        let limits = &mut self.settings.limits;
        match path {
            "server/timeout" => {
                let ms = number(0, DAY_MS, "a number of milliseconds, at most a day")?;
                self.settings.timeout = Duration::from_millis(ms);
                self.sessions.set_timeout(Some(self.settings.timeout));
            }
            "remote/ping" => {
                let ms = number(1, 3_600_000, "a number of milliseconds from 1 to an hour")?;
                self.settings.ping_interval = Duration::from_millis(ms);
            }
            "remote/resync" => {
                let ms = number(0, 60_000, "a number of milliseconds, at most a minute")?;
                self.settings.resync = Duration::from_millis(ms);
            }
            "limits/tuples" => {
                limits.tuples =
                    number(1, u32::MAX.into(), "a count from 1 to 4294967295")? as usize;
            }
            "limits/service" => {
                limits.service = number(0, 1 << 30, "a number of bytes, at most 1 GiB")? as usize;
            }
            "limits/hwm" => {
                limits.hwm = number(1, 10_000_000, "a count from 1 to 10000000")? as u32;
            }
            "limits/slice" => {
                limits.slice = number(1, 1_000_000, "a count from 1 to 1000000")? as usize;
            }
            "tuples/lease" => {
                let ms = number(
                    0,
                    DAY_MS,
                    "a number of milliseconds, at most a day (0: forever)",
                )?;
                self.settings.lease = (ms > 0).then(|| Duration::from_millis(ms));
            }
            "tuples/foreign-lease" => {
                let ms = number(
                    0,
                    DAY_MS,
                    "a number of milliseconds, at most a day (0: forever)",
                )?;
                self.settings.foreign_lease = (ms > 0).then(|| Duration::from_millis(ms));
            }
            // Accepted for compatibility with CZMQ's engine, which has it.
            "server/verbose" => self.set_verbose(value.trim() != "0"),
            "server/batches" => {
                self.settings.batches = number(0, 1, "0 or 1")? == 1;
                self.gossip.batches_off = !self.settings.batches;
            }
            other => return Err(SettingError::UnknownPath(other.to_owned())),
        }
        self.gossip.limits = self.settings.limits;
        self.gossip
            .missing
            .set_waits(plumtree::graft_waits(self.settings.lease));
        self.gossip.lifecycle.lease = self.settings.lease;
        self.gossip
            .tuples
            .set_heartbeat_horizon(self.settings.lease);
        self.gossip.lifecycle.foreign_lease = self.settings.foreign_lease;
        Ok(())
    }

    /// A peer's first message is about to arrive over a connection that
    /// reports its end (tcp, ipc): its session lives as long as that
    /// connection, however quiet the peer is.
    pub fn on_peer_connected(&mut self, routing_id: &[u8]) {
        if !self.sessions.contains(routing_id) {
            self.sessions.open(routing_id);
            self.session_presence(routing_id, true);
        }
    }

    /// A session began or ended: tell the application.
    fn session_presence(&mut self, routing_id: &[u8], up: bool) {
        self.outputs.push(Output::Peer(Peer {
            kind: PeerKind::Session,
            name: hex(routing_id),
            state: if up { "up" } else { "gone" },
            up,
            last_heard: None,
        }));
    }

    /// A remote's server came up or went down: tell the application.
    fn remote_presence(&mut self, index: usize, now: Instant) {
        let pace = self.settings.pace();
        let Some(remote) = self.remotes.get_mut(index) else {
            return;
        };
        if let Some(up) = remote.presence_changed(pace, now) {
            self.outputs.push(Output::Peer(Peer {
                kind: PeerKind::Remote,
                name: remote.endpoint().to_owned(),
                state: if up { "up" } else { "silent" },
                up,
                last_heard: remote
                    .last_heard()
                    .map(|at| now.saturating_duration_since(at)),
            }));
        }
    }

    /// A peer's connection is gone: forget its session.
    pub fn on_peer_disconnected(&mut self, routing_id: &[u8]) {
        if self.sessions.close(&mut self.gossip, routing_id) {
            self.stats.peers_gone += 1;
            self.session_presence(routing_id, false);
        }
    }

    /// Frames received on our ROUTER (routing id first).
    pub fn on_peer_frames<F: AsRef<[u8]>>(&mut self, frames: &[F], now: Instant) {
        match ZgossipMsg::decode_routed(frames) {
            Ok((routing_id, message)) => {
                self.stats
                    .count_in(&message, frames.get(1..).unwrap_or_default());
                let before = self.sessions.contains(routing_id);
                self.sessions
                    .handle(&mut self.gossip, routing_id, message, now);
                let after = self.sessions.contains(routing_id);
                if before != after {
                    self.session_presence(routing_id, after);
                }
                self.after_sessions(now);
            }
            Err(e) => {
                // Logged and dropped; every other session goes on.
                self.stats.malformed += 1;
                if let Some(suppressed) = self.warn_malformed.allow(now) {
                    tracing::warn!(node = %self.name, suppressed, "malformed message from a peer dropped: {e}");
                }
            }
        }
    }

    /// Frames received on remote number `remote`'s DEALER.
    pub fn on_remote_frames<F: AsRef<[u8]>>(
        &mut self,
        remote: RemoteId,
        frames: &[F],
        now: Instant,
    ) {
        let remote = remote.index();
        if remote >= self.remotes.len() {
            return;
        }
        let message = match ZgossipMsg::decode(frames) {
            Ok(message) => message,
            Err(e) => {
                self.stats.malformed += 1;
                if let Some(suppressed) = self.warn_malformed.allow(now) {
                    let endpoint = Escaped(self.remotes[remote].endpoint());
                    tracing::warn!(node = %self.name, %endpoint, suppressed, "malformed message from a remote dropped: {e}");
                }
                return;
            }
        };
        self.stats.count_in(&message, frames);
        self.remotes[remote].heard(now);
        self.remote_presence(remote, now);
        match self.remotes[remote].receive(message) {
            Received::Tuple(announce) => self.remote_tuple(remote, &announce, now),
            Received::Tuples(announces) => {
                for announce in &announces {
                    self.remote_tuple(remote, announce, now);
                }
            }
            Received::Refused => self.refused_tuple(Refusal::Implausible, now),
            Received::Ihave(records) => match plumtree::unpack(&records) {
                Some(ids) => {
                    let gossip = &mut self.gossip;
                    gossip
                        .missing
                        .heard(ids, Link::Remote(remote), &gossip.tuples, now);
                }
                None => self.refused_tuple(Refusal::Implausible, now),
            },
            Received::Graft(endpoints) => {
                // Plumtree: GRAFT puts the link back on the tree.
                self.remotes[remote].grafted();
                let versioned = self.remotes[remote].versioned();
                let messages: Vec<ZgossipMsg> = self.remotes[remote]
                    .graft_budget()
                    .answer(&endpoints, &self.gossip.tuples, now, |t| {
                        can_send(t, versioned)
                    })
                    .iter()
                    .map(|t| replayed(announce_of(t, versioned)).into())
                    .collect();
                self.send_to_remote(remote, messages);
            }
            Received::Alive(alive) => self.heard_alive(alive, remote, now),
            Received::Alives(alives) => {
                for alive in alives {
                    self.heard_alive(alive, remote, now);
                }
            }
            Received::Nothing => {}
        }
        // An INVALID or a marker's PONG may have made a generation due.
        if self.remotes[remote].next_deadline() <= now {
            self.tick_remote(remote, now);
        }
    }

    /// A tuple from remote `remote`'s server: stored and spread if it
    /// ranks above what we hold; else perhaps answered.
    fn remote_tuple(&mut self, remote: usize, announce: &Announce, now: Instant) {
        let offer = offer_of(announce, self.settings.foreign_lease);
        match self.gossip.receive(&offer, now) {
            Ok(Some(mut change)) => {
                change.replay = is_replay(announce);
                self.spread(change, Some(remote), now)
            }
            Ok(None) => {
                self.stats.duplicates += 1;
                // Plumtree: the same write pushed to us twice: this
                // link is off the tree (a stale version is not a
                // duplicate: it says nothing of the tree).
                let pushed_twice = !is_replay(announce)
                    && offer.stamp.is_some()
                    && self.gossip.tuples.stamp(&announce.endpoint) == offer.stamp
                    && self.gossip.tuples.came_pushed(&announce.endpoint);
                if let Some(newer) = self
                    .gossip
                    .newer_than(&offer, now)
                    .filter(|_| self.remotes[remote].versioned())
                {
                    let answer = replayed(announce_of(&newer, true));
                    self.send_to_remote(remote, vec![answer.into()]);
                } else if pushed_twice && self.remotes[remote].pruned() {
                    self.send_to_remote(remote, vec![Prune.into()]);
                }
            }
            Err(refusal) => self.refused_tuple(refusal, now),
        }
    }

    /// Remote number `remote`'s connection was lost and is back: the server
    /// sees a new session, so synchronise again.
    pub fn on_remote_reconnected(&mut self, remote: RemoteId, now: Instant) {
        let remote = remote.index();
        if let Some(r) = self.remotes.get_mut(remote) {
            r.reconnected();
            // What it announced on the old connection: the resync brings it.
            self.gossip.missing.forget_link(Link::Remote(remote));
            self.tick_remote(remote, now);
        }
    }

    /// `CONNECT endpoint`: open a remote session; returns its index. The
    /// driver connects a DEALER for it; the opening HELLO and the first
    /// slice of our tuples are already in the outputs.
    pub fn connect(&mut self, endpoint: &str, now: Instant) -> RemoteId {
        let mut sent = Vec::new();
        let mut remote = Remote::new(
            endpoint,
            &self.gossip.tuples,
            self.settings.pace(),
            now,
            &mut |m| sent.push(m),
        );
        // Plumtree: the first remote is on the tree, the others lazy.
        remote.set_wants_lazy(!self.remotes.is_empty());
        // Most nodes have one or two remotes: grow from one, not the four
        // a `Vec` starts with (a remote is some 300 bytes; 0.9 MB in a
        // swarm of 1,000 nodes).
        if self.remotes.len() == self.remotes.capacity() {
            self.remotes.reserve_exact(self.remotes.len().max(1));
        }
        self.remotes.push(remote);
        let index = self.remotes.len() - 1;
        self.send_to_remote(index, sent);
        RemoteId::of(index)
    }

    /// The remotes, by index.
    pub fn remotes(&self) -> &[Remote] {
        &self.remotes
    }

    /// `ANNOUNCE endpoint service`: a tuple from the application, owned by
    /// this node: versioned, leased and renewed (see docs/zgossip.md, "Tuple
    /// lifecycle"). Refused if it could not be sent (endpoint over 255
    /// bytes), is over `limits/service`, or is a new endpoint beyond
    /// `limits/tuples`.
    pub fn announce(
        &mut self,
        endpoint: &str,
        service: &str,
        now: Instant,
    ) -> Result<(), AnnounceError> {
        check_tuple(endpoint, service, &self.settings.limits)?;
        match self.gossip.publish(endpoint, Some(service), now) {
            // The service's length was checked above: only a full table.
            Err(refusal) => {
                self.refused_tuple(refusal, now);
                Err(AnnounceError::TableFull(self.settings.limits.tuples))
            }
            Ok(change) => {
                if let Some(change) = change {
                    self.spread(change, None, now);
                }
                if self.next_renewal.is_none() {
                    self.next_renewal = self.renewal_interval().map(|every| now + every);
                }
                Ok(())
            }
        }
    }

    /// `UNPUBLISH endpoint`: remove a tuple everywhere. A tombstone goes to
    /// every peer that takes versioned tuples, and stays here so that no
    /// stale copy brings the tuple back (docs/zgossip.md, "Tuple lifecycle"). If
    /// another node owns the tuple and is alive, it puts it back.
    pub fn unpublish(&mut self, endpoint: &str, now: Instant) -> Result<(), AnnounceError> {
        if self.gossip.tuples.service(endpoint).is_none() {
            return Err(AnnounceError::Unknown(endpoint.to_owned()));
        }
        match self.gossip.publish(endpoint, None, now) {
            Ok(change) => {
                if let Some(change) = change {
                    self.spread(change, None, now);
                }
                Ok(())
            }
            Err(refusal) => {
                self.refused_tuple(refusal, now);
                Err(AnnounceError::Unknown(endpoint.to_owned()))
            }
        }
    }

    /// How often our tuples are renewed: three times per lease.
    fn renewal_interval(&self) -> Option<Duration> {
        self.settings
            .lease
            .map(|lease| (lease / 3).max(Duration::from_millis(10)))
    }

    /// A stored change: if it is one, pass it to every session (each takes
    /// what it can), to every remote but the one it came from (unless it
    /// answers that one), and tell the application.
    fn spread(&mut self, change: Change, from_remote: Option<usize>, now: Instant) {
        if change.echo {
            self.stats.contests += 1;
        }
        self.sessions.broadcast_with(
            &mut self.gossip,
            Event::Forward,
            None,
            Forwarded::of(&change),
            now,
        );
        self.flush_sessions(now);
        let except = from_remote.filter(|_| !change.echo);
        self.flood(&change.tuple, change.position, except, change.replay, now);
        self.after_change(change, now);
    }

    /// A change is in: it is no longer missing; lazy ids wait for a flush;
    /// the application hears of it.
    fn after_change(&mut self, change: Change, now: Instant) {
        self.gossip
            .missing
            .received(&change.tuple.endpoint, change.tuple.stamp, now);
        self.schedule_flush(now);
        self.deliver(change);
    }

    /// Plumtree: ids wait for a lazy link; send them within [`FLUSH_EVERY`].
    fn schedule_flush(&mut self, now: Instant) {
        let queued = self.lazy_pending || self.remotes.iter().any(Remote::has_queued_ids);
        if queued && self.next_flush.is_none() {
            self.next_flush = Some(now + FLUSH_EVERY);
        }
    }

    /// Tell the application what changed.
    fn deliver(&mut self, change: Change) {
        let (endpoint, service) = (
            change.tuple.endpoint.to_string(),
            change.tuple.service.to_string(),
        );
        match change.accepted {
            Accepted::New(_) | Accepted::Changed(_) => {
                self.outputs.push(Output::Deliver { endpoint, service });
            }
            Accepted::Removed(_) => {
                self.stats.removed += 1;
                self.outputs.push(Output::Remove {
                    endpoint,
                    service,
                    expired: false,
                    remover: change.tuple.stamp.map(|s| s.origin),
                });
            }
            _ => {}
        }
    }

    fn refused_tuple(&mut self, refusal: Refusal, now: Instant) {
        self.stats.refused_tuples += 1;
        if let Some(suppressed) = self.warn_refused.allow(now) {
            let limits = self.settings.limits;
            match refusal {
                Refusal::ServiceTooLong => {
                    tracing::warn!(node = %self.name, suppressed, "tuple refused: service over limits/service ({} bytes)", limits.service)
                }
                Refusal::TableFull => {
                    tracing::warn!(node = %self.name, suppressed, "tuple refused: the node holds limits/tuples ({}) tuples", limits.tuples)
                }
                Refusal::BeforeHello => {
                    tracing::warn!(node = %self.name, suppressed, "tuple refused: a peer that has not said HELLO tried to change a known tuple")
                }
                Refusal::Implausible => {
                    tracing::warn!(node = %self.name, suppressed, "tuple refused: a version no honest node sends (origin 0, or too far ahead)")
                }
            }
        }
    }

    /// After server sessions handled a peer's message: send their
    /// messages, and act on their effects in the order they came: deliver
    /// and pass on to remotes what they accepted, pass on the heartbeats
    /// they heard.
    fn after_sessions(&mut self, now: Instant) {
        self.flush_sessions(now);
        let mut heartbeat_sent = false;
        while let Some(effect) = self.to_handle.pop_front() {
            match effect {
                Effect::Accepted(change) => {
                    if change.echo {
                        self.stats.contests += 1;
                    }
                    self.flood(&change.tuple, change.position, None, change.replay, now);
                    self.after_change(change, now);
                }
                // Heartbeats from sessions went to the other sessions
                // already, but for those of a batch.
                Effect::Heard { alive, to_sessions } => {
                    self.pass_on_alive(alive, None, to_sessions, now);
                }
                Effect::HeartbeatWanted => {
                    self.stats.forged_heartbeats += 1;
                    // One answer for every forgery in the message.
                    if !std::mem::replace(&mut heartbeat_sent, true) {
                        self.send_heartbeat(now);
                    }
                }
                effect => self.take_effect(effect, now),
            }
        }
    }

    /// Send what the sessions' runs left to send, and take their effects:
    /// those that make the node act in turn wait for
    /// [`NodeCore::after_sessions`]; the rest are noted here.
    fn flush_sessions(&mut self, now: Instant) {
        let mut effects = std::mem::take(self.sessions.effects());
        for effect in effects.drain(..) {
            self.take_effect(effect, now);
        }
        // Give the buffer back: runs allocate nothing once it has grown.
        *self.sessions.effects() = effects;
        let (outputs, stats, name) = (&mut self.outputs, &mut self.stats, &self.name);
        self.sessions.drain_outgoing(|routing_id, message| {
            match message.encode_packet_routed(routing_id) {
                Ok(frames) => {
                    stats.count_out(&message, frames.byte_len() - routing_id.len());
                    outputs.push(Output::ToPeer(frames));
                }
                Err(e) => tracing::warn!(node = %name, "cannot encode for a peer: {e}"),
            }
        });
    }

    /// Send a tuple to every remote but `except` (and those about to send
    /// it anyway, or that cannot take it): encoded at most twice (versioned
    /// and plain), copied.
    fn flood(
        &mut self,
        tuple: &Tuple,
        position: usize,
        except: Option<usize>,
        replay: bool,
        now: Instant,
    ) {
        if self.remotes.len() <= usize::from(except.is_some()) {
            return;
        }
        let mut encoded: [Option<(ZgossipMsg, Packet)>; 2] = [None, None];
        let pace = self.settings.pace();
        for index in 0..self.remotes.len() {
            let versioned = self.remotes[index].versioned();
            if Some(index) == except
                || self.remotes[index].will_send(position, now)
                || !can_send(tuple, versioned)
            {
                continue;
            }
            if self.remotes[index].is_silent(pace, now) {
                self.remotes[index].missed();
                continue;
            }
            if self.remotes[index].is_lazy() && tuple.stamp.is_some() {
                self.remotes[index].queue_id(tuple);
                continue;
            }
            if self.remotes[index].batches() {
                // Sent with the others at the next flush (or now, full).
                self.remotes[index].sent_traffic(now);
                let full = self.remotes[index].batch_flood(tuple, replay, pace);
                self.push_to_remote(index, full);
                continue;
            }
            let slot = &mut encoded[usize::from(versioned)];
            if slot.is_none() {
                let announce = announce_of(tuple, versioned);
                let message = ZgossipMsg::from(if replay { replayed(announce) } else { announce });
                match message.encode_packet() {
                    Ok(frames) => *slot = Some((message, frames)),
                    Err(e) => {
                        tracing::warn!(node = %self.name, "cannot encode for a remote: {e}");
                        continue;
                    }
                }
            }
            let Some((message, frames)) = slot.as_ref() else {
                continue;
            };
            self.remotes[index].sent_traffic(now);
            self.stats.count_out(message, frames.byte_len());
            self.outputs.push(Output::ToRemote {
                remote: RemoteId::of(index),
                frames: frames.clone(),
            });
        }
    }

    fn send_to_remote(&mut self, remote: usize, messages: Vec<ZgossipMsg>) {
        // A batch waiting goes first: nothing overtakes it.
        if let Some(batch) = self.remotes.get_mut(remote).and_then(Remote::take_flood) {
            self.push_to_remote(remote, vec![batch]);
        }
        self.push_to_remote(remote, messages);
    }

    fn push_to_remote(&mut self, remote: usize, messages: Vec<ZgossipMsg>) {
        for message in messages {
            match message.encode_packet() {
                Ok(frames) => {
                    self.stats.count_out(&message, frames.byte_len());
                    self.outputs.push(Output::ToRemote {
                        remote: RemoteId::of(remote),
                        frames,
                    });
                }
                Err(e) => tracing::warn!(node = %self.name, "cannot encode for a remote: {e}"),
            }
        }
    }

    /// Fire due session expiries and wakeups, and what remotes have due:
    /// generations, slices of tuples, keepalives.
    pub fn tick(&mut self, now: Instant) {
        self.sessions.tick(&mut self.gossip, now);
        self.after_sessions(now);
        // Renewals before expiry: a node whose timers are late (a paused
        // process) renews its own tuples before they could expire here.
        if self.next_renewal.is_some_and(|at| at <= now) {
            if self.gossip.mutation != Some(crate::server::Mutation::NoRenewal) {
                let one_by_one = self.gossip.renewing_sessions > 0
                    || self.remotes.iter().any(Remote::renews_tuples);
                for change in self.gossip.renew(now, one_by_one) {
                    self.spread(change, None, now);
                }
                self.send_heartbeat(now);
            }
            self.next_renewal = if self.gossip.owned.is_empty() {
                None
            } else {
                self.renewal_interval().map(|every| now + every)
            };
        }
        for write in self.gossip.early.due(now) {
            match self.gossip.receive(&write.offer(), now) {
                Ok(Some(change)) => self.spread(change, None, now),
                Ok(None) => {}
                Err(refusal) => self.refused_tuple(refusal, now),
            }
        }
        self.expire(now);
        self.plumtree_tick(now);
        for index in 0..self.remotes.len() {
            if self.remotes[index].next_deadline() <= now {
                self.tick_remote(index, now);
            }
        }
    }

    /// Our heartbeat to every peer that takes it (while we own tuples).
    fn send_heartbeat(&mut self, now: Instant) {
        if self.gossip.owned.is_empty() {
            return;
        }
        if let Some(alive) = self.gossip.next_heartbeat(now) {
            self.stats.heartbeats_sent += 1;
            self.pass_on_alive(alive, None, true, now);
        }
    }

    /// A heartbeat from remote `from` (one from a session is the
    /// session's action's: [`NodeCore::after_sessions`]).
    fn heard_alive(&mut self, alive: Alive, from: usize, now: Instant) {
        match self.gossip.heard_alive(&alive, Link::Remote(from), now) {
            Heartbeat::PassOn => {
                self.pass_on_alive(alive, Some(from), true, now);
                // Tuples of its node to ask for (they expired here).
                self.schedule_flush(now);
            }
            Heartbeat::Forged => {
                self.stats.forged_heartbeats += 1;
                self.send_heartbeat(now);
            }
            Heartbeat::Older(newer) => self.send_to_remote(from, vec![newer.into()]),
            Heartbeat::Implausible => self.refused_tuple(Refusal::Implausible, now),
            Heartbeat::Drop => {}
        }
    }

    /// Pass a heartbeat on to every remote that takes it but `except`, and
    /// (`to_sessions`) to every session.
    fn pass_on_alive(
        &mut self,
        alive: Alive,
        except: Option<usize>,
        to_sessions: bool,
        now: Instant,
    ) {
        let pace = self.settings.pace();
        let mut encoded: Option<Packet> = None;
        for index in 0..self.remotes.len() {
            let remote = &self.remotes[index];
            if Some(index) == except || !remote.takes_heartbeats() || remote.is_silent(pace, now) {
                continue;
            }
            if let Some(batch) = self.remotes[index].take_flood() {
                self.push_to_remote(index, vec![batch]);
            }
            if encoded.is_none() {
                match ZgossipMsg::from(alive.clone()).encode_packet() {
                    Ok(frames) => encoded = Some(frames),
                    Err(e) => {
                        tracing::warn!(node = %self.name, "cannot encode for a remote: {e}");
                        break;
                    }
                }
            }
            let Some(frames) = encoded.as_ref() else {
                break;
            };
            self.remotes[index].sent_traffic(now);
            self.stats
                .count_out(&ZgossipMsg::from(alive.clone()), frames.byte_len());
            self.outputs.push(Output::ToRemote {
                remote: RemoteId::of(index),
                frames: frames.clone(),
            });
        }
        if to_sessions {
            self.sessions
                .broadcast_with(&mut self.gossip, Event::ForwardAlive, None, alive, now);
            self.flush_sessions(now);
        }
    }

    fn tick_remote(&mut self, index: usize, now: Instant) {
        let mut sent = Vec::new();
        let pace = self.settings.pace();
        if let Some(remote) = self.remotes.get_mut(index) {
            remote.tick(&self.gossip.tuples, pace, now, &mut |m| sent.push(m));
            // A generation carries liveness right after its HELLO, as a
            // session's replay does (`Gossip::liveness_for_sync`).
            if remote.liveness() {
                if let Some(hello) = sent.iter().position(|m| matches!(m, ZgossipMsg::Hello(_))) {
                    let alives = self.gossip.liveness_for_sync(now);
                    let messages =
                        crate::batch::alive_messages(alives, remote.batches(), pace.batch);
                    sent.splice(hello + 1..hello + 1, messages);
                }
            }
        }
        self.send_to_remote(index, sent);
        self.remote_presence(index, now);
    }

    /// The driver could not send these outputs (see
    /// [`zproto_runtime::reactor::Refused`]), each with whether its peer no
    /// longer exists (else its queue was full). A peer that is gone loses
    /// its session; anything else that was refused is sent again later.
    /// A full peer refuses every message of a drain: it falls behind once,
    /// to the first tuple it missed, however many were refused.
    pub fn on_refused(&mut self, refused: impl IntoIterator<Item = (Output, bool)>, now: Instant) {
        // Per routing id: the first position to send again.
        let mut behind: Vec<(Vec<u8>, usize)> = Vec::new();
        for (output, gone) in refused {
            match output {
                Output::ToPeer(frames) => {
                    let Some(routing_id) = frames.first() else {
                        continue;
                    };
                    if gone {
                        self.on_peer_disconnected(routing_id);
                        continue;
                    }
                    self.stats.refused_sends += 1;
                    let position = match frames.with_frames(1, |body| ZgossipMsg::decode(body)) {
                        Ok(message @ (ZgossipMsg::Announce(_) | ZgossipMsg::Announces(_))) => {
                            first_position(&message, &self.gossip.tuples)
                        }
                        // A PONG or INVALID: nothing a replay must resend.
                        Ok(_) => continue,
                        // Not ours to misread: send everything again.
                        Err(_) => None,
                    };
                    let position = position.unwrap_or(0);
                    match behind.iter_mut().find(|(id, _)| id == routing_id) {
                        Some((_, first)) => *first = (*first).min(position),
                        None => behind.push((routing_id.to_vec(), position)),
                    }
                }
                Output::ToRemote { remote, frames } => {
                    self.stats.refused_sends += 1;
                    let message = frames.with_frames(0, |body| ZgossipMsg::decode(body)).ok();
                    if let Some(r) = self.remotes.get_mut(remote.index()) {
                        r.refused(message.as_ref(), &self.gossip.tuples, now);
                    }
                }
                Output::Deliver { .. } | Output::Remove { .. } | Output::Peer(_) => {}
            }
        }
        for (routing_id, position) in behind {
            let behind = Behind {
                position,
                wait: REPLAY_RETRY,
            };
            self.sessions.send_event_with(
                &mut self.gossip,
                &routing_id,
                Event::Behind,
                behind,
                now,
            );
        }
        self.after_sessions(now);
    }

    /// Plumtree: send the ids queued for lazy links, and ask for tuples
    /// heard of and not received in time.
    fn plumtree_tick(&mut self, now: Instant) {
        let max = usize::try_from(self.settings.limits.max_message()).unwrap_or(usize::MAX);
        if self.next_flush.is_some_and(|at| at <= now) {
            self.next_flush = None;
            let pace = self.settings.pace();
            for index in 0..self.remotes.len() {
                if self.remotes[index].is_silent(pace, now) {
                    // Kept for when it answers (a generation sends the
                    // tuples anyway).
                    continue;
                }
                let mut batches = Vec::new();
                while let Some(tuples) = self.remotes[index].take_ihave(max) {
                    batches.push(Ihave { tuples }.into());
                }
                self.send_to_remote(index, batches);
            }
            // Each round, every lazy session sends one IHAVE.
            for _ in 0..1024 {
                if !std::mem::take(&mut self.lazy_pending) {
                    break;
                }
                self.sessions
                    .broadcast(&mut self.gossip, Event::FlushLazy, now);
                self.flush_sessions(now);
            }
        }
        let due = self.gossip.missing.due(&self.gossip.tuples, now);
        for (link, mut endpoints) in due {
            while !endpoints.is_empty() {
                let batch = plumtree::graft_batch(&mut endpoints, max);
                match link {
                    Link::Remote(index) => {
                        // Not before its session is open again (after a
                        // reconnection): its server would answer INVALID.
                        if self.remotes.get(index).is_some_and(Remote::can_graft) {
                            // Asking puts the link back on the tree, both ways.
                            self.remotes[index].grafted();
                            let graft = Graft { endpoints: batch };
                            self.send_to_remote(index, vec![graft.into()]);
                        }
                    }
                    Link::Session(key) => {
                        self.sessions.send_event_to_with(
                            &mut self.gossip,
                            key,
                            Event::AskForMissing,
                            GraftRequest(batch),
                            now,
                        );
                        self.flush_sessions(now);
                    }
                }
            }
        }
        self.schedule_flush(now);
    }

    /// Expire what is due: removals go to the application. Nothing is
    /// sent: every node holding the tuple expires it within its lease.
    fn expire(&mut self, now: Instant) {
        if self.gossip.tuples.next_expiry().map_or(true, |at| at > now) {
            return;
        }
        let mut removed = Vec::new();
        // What expired had a lease: no copy outlives twice the longest
        // one we know of.
        let keep = self
            .gossip
            .lifecycle
            .tombstone_keep()
            .or(Some(DEFAULT_LEASE * 2));
        self.gossip.tuples.expire(now, keep, &mut removed);
        for tuple in removed {
            self.stats.removed += 1;
            self.outputs.push(Output::Remove {
                endpoint: tuple.endpoint.to_string(),
                service: tuple.service.to_string(),
                expired: true,
                remover: None,
            });
        }
    }

    /// When [`NodeCore::tick`] next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.sessions.next_deadline(),
            self.remotes.iter().map(Remote::next_deadline).min(),
            self.gossip.tuples.next_expiry(),
            self.next_renewal,
            self.next_flush,
            self.gossip.missing.next_due(),
            self.gossip.early.next_due(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// What the driver must do, in order.
    pub fn take_outputs(&mut self) -> Vec<Output> {
        self.flush_batches();
        std::mem::take(&mut self.outputs)
    }

    /// What the driver must do, in order, keeping the queue's buffer.
    pub fn drain_outputs(&mut self) -> std::vec::Drain<'_, Output> {
        self.flush_batches();
        self.outputs.drain(..)
    }

    /// Batches: tuples flooded since the last drain go, one ANNOUNCES per
    /// link (a burst of input handled together forwards its tuples
    /// together).
    fn flush_batches(&mut self) {
        for index in 0..self.remotes.len() {
            if let Some(batch) = self.remotes[index].take_flood() {
                self.push_to_remote(index, vec![batch]);
            }
        }
        let mut batching = std::mem::take(&mut self.batching);
        let Some(&(_, last)) = batching.last() else {
            return;
        };
        for (key, since) in batching.drain(..) {
            self.sessions
                .send_event_to(&mut self.gossip, key, Event::FlushBatch, since);
        }
        // Give the buffer back (the flush queues no new batch).
        if self.batching.is_empty() {
            self.batching = batching;
        }
        self.flush_sessions(last);
    }

    /// Note an effect; those that make the node act wait for
    /// [`NodeCore::after_sessions`].
    fn take_effect(&mut self, effect: Effect, now: Instant) {
        match effect {
            Effect::Duplicate => self.stats.duplicates += 1,
            Effect::Refused(refusal) => self.refused_tuple(refusal, now),
            Effect::LazyPending => self.lazy_pending = true,
            Effect::Batching { session, since } => self.batching.push((session, since)),
            Effect::Accepted(_) | Effect::Heard { .. } | Effect::HeartbeatWanted => {
                self.to_handle.push_back(effect);
            }
        }
    }

    /// After [`NodeCore::drain_outputs`]: give back what a burst made the
    /// output queue grow (thousands of nodes on one reactor would each keep
    /// their busiest moment's capacity).
    pub fn trim_outputs(&mut self) {
        zproto_runtime::buffer::trim(&mut self.outputs);
    }
}
