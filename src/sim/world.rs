//! The simulated world: processes running [`NodeCore`]s, and links that
//! behave as libzmq's DEALER-to-ROUTER connections over tcp do (docs/zgossip.md,
//! "Correctness under faults"):
//!
//! * a connection carries messages in order, each after the link's latency
//!   (plus a per-message jitter if the schedule has it);
//! * while a link is cut, or one of its processes is stopped, what is sent
//!   waits in the kernel's buffers and arrives in order once the link
//!   carries again, if the connection survived;
//! * ZMTP heartbeats end a connection that carried nothing for
//!   `server/timeout`: what waited in its buffers is lost, the server's
//!   session ends (`on_peer_disconnected`), and the DEALER reconnects with
//!   libzmq's backoff (100 ms, doubling up to 5 s);
//! * a DEALER without a connection keeps what it is given in its pipe (up
//!   to the high-water mark; past it, the send is refused) and delivers it
//!   on the next connection, before anything newer: stale keepalives and
//!   all;
//! * a ROUTER refuses a send to a connection that is gone (ROUTER_MANDATORY)
//!   and to one whose queue holds the high-water mark;
//! * a killed process loses its state and its DEALERs' pipes; its peers see
//!   its connections end at once (the kernel resets them), or by heartbeat
//!   if the link is cut;
//! * a stopped process runs nothing: no timer, no message. When it
//!   continues, its timers are late and its peers may have dropped its
//!   connections;
//! * every process has its own clock, drifting and jumping forward.
//!
//! Time is a count of nanoseconds from the run's start; each node sees it
//! through its own clock as an `Instant` from one base, so nothing depends
//! on when the run happens.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use smallvec::SmallVec;
use zproto_runtime::Packet;

use super::rng::Rng;
use super::schedule::Attack;
use crate::clock::WallClock;
use crate::msg::{Alive, Announce, Graft, Hello, Ihave, Ping, ZgossipMsg};
use crate::node::{NodeCore, Output, RemoteId, Settings};
use crate::server::{EXTENSIONS, FLAG_REMOVED};
use zproto_runtime::Codec;

/// libzmq's first reconnection interval (`ZMQ_RECONNECT_IVL`).
pub const RECONNECT_IVL: Duration = Duration::from_millis(100);
/// The longest (`ZMQ_RECONNECT_IVL_MAX`, as the node's driver sets it).
pub const RECONNECT_MAX: Duration = crate::node::RECONNECT_MAX;
/// How long a slow reader takes per message.
pub const SLOW_READ: Duration = Duration::from_millis(5);

/// A direction on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// DEALER to ROUTER.
    ToServer,
    /// ROUTER to DEALER.
    ToClient,
}

impl Dir {
    fn index(self) -> usize {
        match self {
            Dir::ToServer => 0,
            Dir::ToClient => 1,
        }
    }
}

/// Something the world observed, for the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A node's application was told of a tuple.
    Deliver {
        /// When.
        at: Duration,
        /// The node.
        node: usize,
        /// Endpoint.
        endpoint: String,
        /// Service.
        service: String,
    },
    /// A node's application was told a tuple is gone.
    Remove {
        /// When.
        at: Duration,
        /// The node.
        node: usize,
        /// Endpoint.
        endpoint: String,
        /// Its lease ran out (else a tombstone removed it).
        expired: bool,
        /// The origin of the tombstone that removed it.
        remover: Option<u64>,
    },
}

#[derive(Debug)]
enum Event {
    /// A node's timers are due (if it is still incarnation `incarnation`).
    Timer { node: usize, incarnation: u32 },
    /// A message arrives at one end of a link.
    Arrive {
        link: usize,
        dir: Dir,
        epoch: u32,
        seq: u64,
        packet: Packet,
    },
    /// Heartbeats of connection `epoch` check whether it carried anything.
    Heartbeat { link: usize, epoch: u32 },
    /// The DEALER tries to connect.
    Reconnect { link: usize, attempt: u64 },
    /// The client's driver learns that connection `epoch` is up.
    Reconnected { link: usize, epoch: u32 },
    /// The schedule's next action.
    Planned(usize),
}

struct Scheduled {
    at: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// A process.
struct Process {
    core: Option<NodeCore>,
    /// Starts of this process so far: events of an earlier one are stale.
    incarnation: u32,
    paused: bool,
    slow: bool,
    drift_ppm: i64,
    jump_ns: u64,
    /// The timer event queued, if any.
    timer_at: Option<u64>,
    /// Remote index → link, for this incarnation.
    remotes: Vec<usize>,
    /// Sessions whose connections ended while the process was stopped:
    /// its driver hears of them when it continues.
    gone_while_paused: Vec<Vec<u8>>,
}

/// A DEALER-to-ROUTER link and its current connection.
struct Link {
    client: usize,
    server: usize,
    /// The client's remote index for it, in the client's incarnation.
    remote: RemoteId,
    cut: bool,
    /// Connection number: routing ids and messages carry it.
    epoch: u32,
    connected: bool,
    /// Whether this DEALER has connected before (the driver hears of
    /// reconnections only).
    connected_once: bool,
    /// Since when nothing can pass (cut, or an end stopped or dead).
    blocked_since: Option<u64>,
    /// The process at one end was killed while the link was cut: its
    /// host's kernel resets the connection as soon as anything reaches it
    /// again (a restarted process there knows nothing of it).
    end_killed: bool,
    /// The DEALER's pipe while it has no connection.
    pipe: VecDeque<Packet>,
    /// Messages held in the connection's buffers while blocked, by send
    /// order.
    stalled: [BTreeMap<u64, Packet>; 2],
    in_flight: [usize; 2],
    last_arrival: [u64; 2],
    latency: u64,
    backoff: Duration,
    reconnect_attempt: u64,
}

impl Link {
    fn queued(&self, dir: Dir) -> usize {
        self.in_flight[dir.index()] + self.stalled[dir.index()].len()
    }
}

/// A 64-bit FNV-1a digest of everything a run delivered.
#[derive(Debug, Clone, Copy)]
pub struct Digest(u64);

impl Default for Digest {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Digest {
    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn number(&mut self, n: u64) {
        self.bytes(&n.to_le_bytes());
    }

    /// The digest.
    pub fn value(self) -> u64 {
        self.0
    }
}

/// Counters of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Events processed.
    pub events: u64,
    /// Messages that arrived.
    pub delivered: u64,
    /// Messages lost with a connection.
    pub lost: u64,
    /// Sends refused (full queue, or a connection gone).
    pub refused: u64,
    /// Connections made (first ones and reconnections).
    pub connections: u64,
}

/// The simulated processes and network.
pub struct World {
    base: Instant,
    /// The tuple strings of this world's nodes, shared with no other
    /// world (runs on other threads).
    interner: crate::tuples::Interner,
    now: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    processes: Vec<Process>,
    links: Vec<Link>,
    settings: Settings,
    /// Nodes with settings of their own (a deliberately broken node).
    own_settings: Vec<Option<Settings>>,
    rng: Rng,
    jitter: bool,
    seed: u64,
    digest: Digest,
    counts: Counts,
    seen: Vec<Seen>,
    trace: Option<Vec<String>>,
}

/// Where every simulated host's wall clock starts: 2026-01-01 00:00:00
/// UTC, in milliseconds since 1970.
pub const SIM_EPOCH_MS: u64 = 1_767_225_600_000;

/// A write a hostile peer made in an owner's name.
#[derive(Debug, Clone)]
pub struct Forgery {
    /// The endpoint.
    pub endpoint: String,
    /// The process (node, incarnation) whose origin it carries, if it was
    /// running (or stopped).
    pub owner: Option<(usize, u32)>,
    /// Until when it may live where its owner cannot answer it.
    pub until: Duration,
}

/// The lease a hostile peer's writes claim.
const FORGED_LEASE: Duration = Duration::from_secs(60);

/// The endpoint a hostile peer pins (a new endpoint at the highest version
/// and origin).
pub const PINNED: &str = "tcp://pinned:1";

/// The start of a hostile peer's routing id (no link has this number).
const HOSTILE: [u8; 4] = [0xff; 4];

/// The routing id of a link's connection: link and epoch.
fn routing_id(link: usize, epoch: u32) -> [u8; 8] {
    let mut id = [0; 8];
    id[..4].copy_from_slice(&(link as u32).to_be_bytes());
    id[4..].copy_from_slice(&epoch.to_be_bytes());
    id
}

fn parse_routing_id(id: &[u8]) -> Option<(usize, u32)> {
    let link = u32::from_be_bytes(id.get(0..4)?.try_into().ok()?) as usize;
    let epoch = u32::from_be_bytes(id.get(4..8)?.try_into().ok()?);
    Some((link, epoch))
}

impl World {
    /// A world of `nodes` processes (none started), linked as `links`
    /// (client, server).
    pub fn new(
        seed: u64,
        nodes: usize,
        links: &[(usize, usize)],
        settings: Settings,
        drift_ppm: &[i32],
        jitter: bool,
        trace: bool,
    ) -> Self {
        let mut rng = Rng::new(seed ^ 0x5157_4f52_4c44);
        let processes = (0..nodes)
            .map(|n| Process {
                core: None,
                incarnation: 0,
                paused: false,
                slow: false,
                drift_ppm: drift_ppm.get(n).copied().unwrap_or(0).into(),
                jump_ns: 0,
                timer_at: None,
                remotes: Vec::new(),
                gone_while_paused: Vec::new(),
            })
            .collect();
        let links = links
            .iter()
            .map(|&(client, server)| Link {
                client,
                server,
                remote: RemoteId::of(0),
                cut: false,
                epoch: 0,
                connected: false,
                connected_once: false,
                blocked_since: None,
                end_killed: false,
                pipe: VecDeque::new(),
                stalled: [BTreeMap::new(), BTreeMap::new()],
                in_flight: [0, 0],
                last_arrival: [0, 0],
                latency: rng.between(500_000, 3_000_000),
                backoff: RECONNECT_IVL,
                reconnect_attempt: 0,
            })
            .collect();
        Self {
            base: Instant::now(),
            interner: crate::tuples::Interner::new(),
            now: 0,
            queue: BinaryHeap::new(),
            seq: 0,
            processes,
            links,
            settings,
            own_settings: vec![None; nodes],
            rng,
            jitter,
            seed,
            digest: Digest::default(),
            counts: Counts::default(),
            seen: Vec::new(),
            trace: trace.then(Vec::new),
        }
    }

    /// Give node `node` settings of its own, from its next start on.
    pub fn set_settings(&mut self, node: usize, settings: Settings) {
        if let Some(own) = self.own_settings.get_mut(node) {
            *own = Some(settings);
        }
    }

    /// Simulated time since the start.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.now)
    }

    /// The digest so far.
    pub fn digest(&self) -> u64 {
        self.digest.value()
    }

    /// Counters so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The trace, if kept.
    pub fn take_trace(&mut self) -> Vec<String> {
        self.trace.take().unwrap_or_default()
    }

    /// What the applications were told since the last call.
    pub fn take_seen(&mut self) -> Vec<Seen> {
        std::mem::take(&mut self.seen)
    }

    /// Node `node`'s core, if its process is alive.
    pub fn core(&self, node: usize) -> Option<&NodeCore> {
        self.processes.get(node).and_then(|p| p.core.as_ref())
    }

    /// Whether node `node`'s process is alive and running.
    pub fn is_running(&self, node: usize) -> bool {
        self.processes
            .get(node)
            .is_some_and(|p| p.core.is_some() && !p.paused)
    }

    /// Whether node `node`'s process is alive (running or stopped).
    pub fn is_alive(&self, node: usize) -> bool {
        self.processes.get(node).is_some_and(|p| p.core.is_some())
    }

    /// Node `node`'s current incarnation (starts so far).
    pub fn incarnation(&self, node: usize) -> u32 {
        self.processes.get(node).map_or(0, |p| p.incarnation)
    }

    /// Number of nodes.
    pub fn nodes(&self) -> usize {
        self.processes.len()
    }

    fn trace(&mut self, line: impl FnOnce() -> String) {
        if let Some(trace) = self.trace.as_mut() {
            let t = Duration::from_nanos(self.now);
            trace.push(format!("{:>10.3} ms  {}", t.as_secs_f64() * 1000.0, line()));
        }
    }

    fn push(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            event,
        }));
    }

    /// Queue the schedule's action number `index` at `at`.
    pub fn plan(&mut self, at: Duration, index: usize) {
        self.push(at.as_nanos() as u64, Event::Planned(index));
    }

    /// The node's clock at the current time.
    fn clock(&self, node: usize) -> Instant {
        let p = &self.processes[node];
        let t = i128::from(self.now);
        let local = t + t * i128::from(p.drift_ppm) / 1_000_000 + i128::from(p.jump_ns);
        self.base + Duration::from_nanos(local.max(0) as u64)
    }

    /// The origin of incarnation `incarnation` of `node`, from the seed.
    fn origin(&self, node: usize, incarnation: u32) -> u64 {
        Rng::new(self.seed ^ ((node as u64) << 32) ^ u64::from(incarnation))
            .next_u64()
            .max(1)
    }

    /// Whether `origin` is that of a process of this world (a hostile
    /// peer's forgeries carry others).
    pub fn is_a_process_origin(&self, origin: u64) -> bool {
        self.processes.iter().enumerate().any(|(node, p)| {
            (1..=p.incarnation).any(|incarnation| self.origin(node, incarnation) == origin)
        })
    }

    /// The node's wall clock (milliseconds since 1970) at the current
    /// time: [`SIM_EPOCH_MS`] when its monotonic clock reads `base`, so
    /// that a restarted process goes on from where its host's clock was.
    fn wall_ms(&self, node: usize) -> u64 {
        self.wall_clock().millis(self.clock(node))
    }

    /// The wall clock every node of this world reads through its own
    /// monotonic clock.
    fn wall_clock(&self) -> WallClock {
        WallClock::new(self.base, SIM_EPOCH_MS)
    }

    /// The simulated time at which the node's clock reads `at`.
    fn when(&self, node: usize, at: Instant) -> u64 {
        let p = &self.processes[node];
        let local = at.saturating_duration_since(self.base).as_nanos() as i128;
        let local = local - i128::from(p.jump_ns);
        let t = (local * 1_000_000 + (1_000_000 + i128::from(p.drift_ppm)) - 1)
            / (1_000_000 + i128::from(p.drift_ppm));
        (t.max(0) as u64).max(self.now)
    }

    /// Start node `node`: a new process with an origin from the seed. It
    /// connects to its servers; peers connected to it reconnect.
    pub fn start(&mut self, node: usize) {
        if self.processes[node].core.is_some() {
            return;
        }
        let incarnation = self.processes[node].incarnation + 1;
        let origin = self.origin(node, incarnation);
        let settings = Settings {
            origin: Some(origin),
            wall_clock: Some(self.wall_clock()),
            ..self.own_settings[node].unwrap_or(self.settings)
        };
        let p = &mut self.processes[node];
        p.incarnation = incarnation;
        p.core = Some(NodeCore::with_interner(
            format!("node-{node}"),
            settings,
            self.interner.clone(),
        ));
        p.paused = false;
        p.remotes.clear();
        p.gone_while_paused.clear();
        p.timer_at = None;
        self.trace(|| {
            format!("node {node} starts (incarnation {incarnation}, origin {origin:016x})")
        });
        let clock = self.clock(node);
        for l in 0..self.links.len() {
            if self.links[l].client != node {
                continue;
            }
            let link = &mut self.links[l];
            link.pipe.clear();
            link.connected_once = false;
            link.backoff = RECONNECT_IVL;
            let endpoint = format!("sim://{}", link.server);
            let Some(core) = self.processes[node].core.as_mut() else {
                return;
            };
            let remote = core.connect(&endpoint, clock);
            self.processes[node].remotes.push(l);
            self.links[l].remote = remote;
            self.try_connect(l);
        }
        for l in 0..self.links.len() {
            self.update_link(l);
        }
        self.collect(node);
    }

    /// Kill node `node`'s process.
    pub fn crash(&mut self, node: usize) {
        if self.processes[node].core.take().is_none() {
            return;
        }
        self.trace(|| format!("node {node} killed"));
        let p = &mut self.processes[node];
        p.paused = false;
        p.timer_at = None;
        p.remotes.clear();
        for l in 0..self.links.len() {
            let link = &self.links[l];
            if link.client != node && link.server != node {
                continue;
            }
            if link.client == node {
                self.links[l].pipe.clear();
            }
            // The kernel resets its connections; over a cut link, the
            // peer finds out by heartbeat, or by the reset once the link
            // heals.
            if self.links[l].connected {
                if self.links[l].cut {
                    self.links[l].end_killed = true;
                } else {
                    self.drop_connection(l, "its process was killed");
                }
            }
            self.update_link(l);
        }
    }

    /// Stop node `node`'s process (SIGSTOP).
    pub fn pause(&mut self, node: usize) {
        let p = &mut self.processes[node];
        if p.core.is_none() || p.paused {
            return;
        }
        p.paused = true;
        self.trace(|| format!("node {node} stopped"));
        for l in 0..self.links.len() {
            self.update_link(l);
        }
    }

    /// Continue node `node`'s process (SIGCONT): its timers are due.
    pub fn resume(&mut self, node: usize) {
        let p = &mut self.processes[node];
        if p.core.is_none() || !p.paused {
            return;
        }
        p.paused = false;
        let gone = std::mem::take(&mut p.gone_while_paused);
        self.trace(|| format!("node {node} continues"));
        if let Some(core) = self.processes[node].core.as_mut() {
            for routing_id in gone {
                core.on_peer_disconnected(&routing_id);
            }
        }
        for l in 0..self.links.len() {
            self.update_link(l);
        }
        self.tick(node);
    }

    /// Cut or heal a link.
    pub fn set_cut(&mut self, link: usize, cut: bool) {
        if let Some(l) = self.links.get_mut(link) {
            if l.cut != cut {
                l.cut = cut;
                self.trace(|| format!("link {link} {}", if cut { "cut" } else { "healed" }));
                self.update_link(link);
            }
        }
    }

    /// The node's clock jumps forward.
    pub fn jump(&mut self, node: usize, by: Duration) {
        self.processes[node].jump_ns += by.as_nanos() as u64;
        self.trace(|| format!("node {node}'s clock jumps {by:?}"));
        self.reschedule(node);
    }

    /// The node reads slowly, or at full speed again.
    pub fn set_slow(&mut self, node: usize, slow: bool) {
        self.processes[node].slow = slow;
    }

    /// The application of `node` announces a tuple. `false` if its
    /// process is not running or the node refused it.
    pub fn announce(&mut self, node: usize, endpoint: &str, service: &str) -> bool {
        self.application(node, |core, clock| {
            core.announce(endpoint, service, clock).is_ok()
        })
    }

    /// The application of `node` removes a tuple. `false` if its process
    /// is not running or the node holds no such tuple.
    pub fn unpublish(&mut self, node: usize, endpoint: &str) -> bool {
        self.application(node, |core, clock| core.unpublish(endpoint, clock).is_ok())
    }

    /// A call of node `node`'s application, if its process runs; whether
    /// the node took it.
    fn application(
        &mut self,
        node: usize,
        call: impl FnOnce(&mut NodeCore, Instant) -> bool,
    ) -> bool {
        if !self.is_running(node) {
            return false;
        }
        let clock = self.clock(node);
        let done = self.processes[node]
            .core
            .as_mut()
            .is_some_and(|core| call(core, clock));
        self.collect(node);
        done
    }

    /// A hostile peer connects to `victim`, offers our extensions and says
    /// HELLO (as one of ours would), attacks, and leaves. Returns the
    /// endpoints whose tuples its forgeries may keep (a write of one, a
    /// heartbeat for all its owner's), in whose name, and until when they
    /// may live where their owner cannot answer (stamps are not
    /// signatures): the lease it claims.
    pub fn attack(&mut self, victim: usize, attack: Attack) -> Vec<Forgery> {
        let mut impersonated = Vec::new();
        if !self.is_running(victim) {
            return impersonated;
        }
        self.seq += 1;
        let mut id = HOSTILE.to_vec();
        id.extend_from_slice(&(self.seq as u32).to_be_bytes());
        let Some(core) = self.processes[victim].core.as_ref() else {
            return impersonated;
        };
        let clock = self.clock(victim);
        let table: Vec<(String, String, crate::tuples::Stamp)> = core
            .tuples()
            .to_vec()
            .into_iter()
            .filter_map(|(endpoint, service)| {
                let stamp = core.tuples().stamp(&endpoint)?;
                Some((endpoint.to_string(), service.to_string(), stamp))
            })
            .collect();
        // The highest version the victim takes.
        let farthest = self
            .wall_ms(victim)
            .saturating_add(crate::clock::MAX_AHEAD.as_millis() as u64);
        let stamped = |endpoint: &str, service: &str, version: u64, origin: u64, flags: u8| {
            ZgossipMsg::from(Announce {
                endpoint: endpoint.to_owned(),
                service: service.to_owned(),
                origin: Some(origin),
                revision: Some(version),
                lease: Some(FORGED_LEASE.as_millis() as u32),
                flags: Some(flags),
                ..Announce::default()
            })
        };
        let mut messages = vec![
            ZgossipMsg::from(Ping {
                extensions: Some(EXTENSIONS),
            }),
            ZgossipMsg::from(Hello),
        ];
        let pick = |pick: usize| table.get(pick % table.len().max(1));
        match attack {
            Attack::ForgeOwner { pick: p, ahead } => {
                if let Some((endpoint, _, stamp)) = pick(p) {
                    let version = stamp.version.saturating_add(ahead).min(farthest);
                    let owner = self.processes.iter().position(|p| {
                        p.core
                            .as_ref()
                            .is_some_and(|core| core.origin() == stamp.origin)
                    });
                    let owner = owner.map(|n| (n, self.processes[n].incarnation));
                    // Stale heap and propagation: a little past it.
                    let until = self.now() + FORGED_LEASE + Duration::from_secs(1);
                    // The heartbeat keeps every tuple of the owner the
                    // victim holds.
                    for (held, _, held_stamp) in &table {
                        if held_stamp.origin == stamp.origin {
                            impersonated.push(Forgery {
                                endpoint: held.clone(),
                                owner,
                                until,
                            });
                        }
                    }
                    messages.push(stamped(endpoint, "forged", version, stamp.origin, 0));
                    let clock = self
                        .wall_ms(victim)
                        .saturating_add(ahead.min(crate::clock::MAX_AHEAD.as_millis() as u64));
                    messages.push(
                        Alive {
                            node: stamp.origin,
                            clock,
                            lifetime: FORGED_LEASE.as_millis() as u32,
                        }
                        .into(),
                    );
                }
            }
            Attack::ForgeTombstone { pick: p } => {
                if let Some((endpoint, service, stamp)) = pick(p) {
                    let version = stamp.version.saturating_add(1);
                    messages.push(stamped(
                        endpoint,
                        service,
                        version,
                        stamp.origin ^ 1,
                        FLAG_REMOVED,
                    ));
                }
            }
            Attack::Pin => {
                messages.push(stamped(PINNED, "pinned", farthest, u64::MAX, 0));
            }
            Attack::JunkIhave => {
                let mut records = Vec::new();
                for i in 0..200u32 {
                    let endpoint = format!("tcp://junk-{i}:1");
                    records.push(endpoint.len() as u8);
                    records.extend_from_slice(endpoint.as_bytes());
                    records.extend_from_slice(&7u64.to_be_bytes());
                    records.extend_from_slice(&9u64.to_be_bytes());
                }
                messages.push(Ihave { tuples: records }.into());
            }
            Attack::GraftStorm => {
                let endpoints: Vec<String> = table.iter().map(|(e, _, _)| e.clone()).collect();
                for _ in 0..50 {
                    let many = endpoints.iter().cycle().take(2000).cloned().collect();
                    messages.push(Graft { endpoints: many }.into());
                }
            }
        }
        self.trace(|| format!("a hostile peer attacks node {victim}: {attack:?}"));
        if let Some(core) = self.processes[victim].core.as_mut() {
            core.on_peer_connected(&id);
            for message in messages {
                let Ok(frames) = message.encode_packet() else {
                    continue;
                };
                let mut routed: SmallVec<[&[u8]; 4]> = SmallVec::new();
                routed.push(&id);
                routed.extend(frames.frames());
                core.on_peer_frames(&routed, clock);
            }
            core.on_peer_disconnected(&id);
        }
        self.collect(victim);
        impersonated
    }

    /// Whether nothing can pass on the link.
    fn blocked(&self, l: usize) -> bool {
        let link = &self.links[l];
        link.cut || !self.is_running(link.client) || !self.is_running(link.server)
    }

    /// After anything that may block or unblock a link.
    fn update_link(&mut self, l: usize) {
        let blocked = self.blocked(l);
        let link = &mut self.links[l];
        match (blocked, link.blocked_since) {
            (true, None) => {
                link.blocked_since = Some(self.now);
                if link.connected && !self.settings.timeout.is_zero() {
                    let (epoch, at) = (
                        link.epoch,
                        self.now + self.settings.timeout.as_nanos() as u64,
                    );
                    self.push(at, Event::Heartbeat { link: l, epoch });
                }
            }
            (false, Some(_)) => {
                link.blocked_since = None;
                if link.connected && link.end_killed {
                    self.drop_connection(l, "reset: the process at one end was killed");
                } else if link.connected {
                    for dir in [Dir::ToServer, Dir::ToClient] {
                        let stalled = std::mem::take(&mut self.links[l].stalled[dir.index()]);
                        for (seq, packet) in stalled {
                            self.schedule_arrival(l, dir, seq, packet);
                        }
                    }
                } else if self.is_alive(self.links[l].client) {
                    self.try_connect(l);
                }
            }
            _ => {}
        }
    }

    /// The connection ends: what it held is lost, the server's session
    /// ends, the DEALER keeps new messages in its pipe and reconnects.
    fn drop_connection(&mut self, l: usize, why: &str) {
        let link = &mut self.links[l];
        if !link.connected {
            return;
        }
        link.connected = false;
        link.end_killed = false;
        let lost =
            link.stalled[0].len() + link.stalled[1].len() + link.in_flight[0] + link.in_flight[1];
        link.stalled = [BTreeMap::new(), BTreeMap::new()];
        link.in_flight = [0, 0];
        self.counts.lost += lost as u64;
        let (server, epoch) = (link.server, link.epoch);
        self.trace(|| format!("link {l} connection {epoch} ends ({why}): {lost} messages lost"));
        let routing_id = routing_id(l, epoch);
        let p = &mut self.processes[server];
        if p.paused {
            p.gone_while_paused.push(routing_id.to_vec());
        } else if let Some(core) = p.core.as_mut() {
            core.on_peer_disconnected(&routing_id);
            self.collect(server);
        }
        self.links[l].backoff = RECONNECT_IVL;
        if self.is_alive(self.links[l].client) {
            self.try_connect(l);
        }
    }

    /// The DEALER tries to connect after its backoff.
    fn try_connect(&mut self, l: usize) {
        let link = &mut self.links[l];
        link.reconnect_attempt += 1;
        let attempt = link.reconnect_attempt;
        // The first try goes at once; later ones after libzmq's backoff.
        let at = if link.connected_once {
            self.now + link.backoff.as_nanos() as u64
        } else {
            self.now
        };
        self.push(at, Event::Reconnect { link: l, attempt });
    }

    fn reconnect(&mut self, l: usize, attempt: u64) {
        let link = &self.links[l];
        if link.connected || link.reconnect_attempt != attempt || !self.is_alive(link.client) {
            return;
        }
        if self.blocked(l) {
            let link = &mut self.links[l];
            link.backoff = (link.backoff * 2).min(RECONNECT_MAX);
            let at = self.now + link.backoff.as_nanos() as u64;
            self.push(at, Event::Reconnect { link: l, attempt });
            return;
        }
        let link = &mut self.links[l];
        link.epoch += 1;
        link.connected = true;
        link.backoff = RECONNECT_IVL;
        link.last_arrival = [self.now, self.now];
        let again = std::mem::replace(&mut link.connected_once, true);
        let (server, epoch) = (link.server, link.epoch);
        let pipe = std::mem::take(&mut link.pipe);
        self.counts.connections += 1;
        self.trace(|| {
            format!(
                "link {l} connection {epoch} up ({} queued in the DEALER's pipe)",
                pipe.len()
            )
        });
        if let Some(core) = self.processes[server].core.as_mut() {
            core.on_peer_connected(&routing_id(l, epoch));
        }
        for packet in pipe {
            self.send(l, Dir::ToServer, packet);
        }
        if again {
            // The driver hears of it from libzmq's monitor, in its own
            // time: queued messages may be ahead of it.
            let delay = self.rng.below(2 * self.links[l].latency + 1);
            self.push(self.now + delay, Event::Reconnected { link: l, epoch });
        }
    }

    fn send(&mut self, l: usize, dir: Dir, packet: Packet) {
        self.seq += 1;
        let seq = self.seq;
        if self.blocked(l) {
            self.links[l].stalled[dir.index()].insert(seq, packet);
        } else {
            self.schedule_arrival(l, dir, seq, packet);
        }
    }

    fn schedule_arrival(&mut self, l: usize, dir: Dir, seq: u64, packet: Packet) {
        let jitter = if self.jitter {
            self.rng.below(3_000_000)
        } else {
            0
        };
        let link = &self.links[l];
        let reader = match dir {
            Dir::ToServer => link.server,
            Dir::ToClient => link.client,
        };
        let slow = self.processes[reader].slow;
        let d = dir.index();
        let mut at = (self.now + link.latency + jitter).max(link.last_arrival[d] + 1);
        if slow {
            at = at.max(link.last_arrival[d] + SLOW_READ.as_nanos() as u64);
        }
        let epoch = link.epoch;
        let link = &mut self.links[l];
        link.last_arrival[d] = at;
        link.in_flight[d] += 1;
        self.push(
            at,
            Event::Arrive {
                link: l,
                dir,
                epoch,
                seq,
                packet,
            },
        );
    }

    fn arrive(&mut self, l: usize, dir: Dir, epoch: u32, seq: u64, packet: Packet) {
        let link = &mut self.links[l];
        if !link.connected || link.epoch != epoch {
            // Counted as lost when its connection ended.
            return;
        }
        link.in_flight[dir.index()] -= 1;
        if self.blocked(l) {
            self.links[l].stalled[dir.index()].insert(seq, packet);
            return;
        }
        self.counts.delivered += 1;
        self.digest.number(self.now);
        self.digest.number(l as u64);
        for frame in packet.frames() {
            self.digest.bytes(frame);
        }
        let link = &self.links[l];
        let (node, remote) = match dir {
            Dir::ToServer => (link.server, None),
            Dir::ToClient => (link.client, Some(link.remote)),
        };
        let clock = self.clock(node);
        let trace = self.trace.is_some();
        let Some(core) = self.processes[node].core.as_mut() else {
            return;
        };
        let mut name = String::new();
        match remote {
            None => {
                let id = routing_id(l, epoch);
                let mut routed: SmallVec<[&[u8]; 4]> = SmallVec::new();
                routed.push(&id);
                routed.extend(packet.frames());
                if trace {
                    name = describe(&routed[1..]);
                }
                core.on_peer_frames(&routed, clock);
            }
            Some(remote) => {
                packet.with_frames(1, |frames| {
                    if trace {
                        name = describe(frames);
                    }
                    core.on_remote_frames(remote, frames, clock);
                });
            }
        }
        self.trace(|| {
            let (from, to) = match dir {
                Dir::ToServer => (link_end(l, "client"), "server"),
                Dir::ToClient => (link_end(l, "server"), "client"),
            };
            format!("{from} -> {to} node {node}: {name}")
        });
        self.collect(node);
    }

    /// Carry out a node's outputs.
    fn collect(&mut self, node: usize) {
        loop {
            let Some(core) = self.processes[node].core.as_mut() else {
                return;
            };
            let outputs = core.take_outputs();
            if outputs.is_empty() {
                break;
            }
            let mut refused = Vec::new();
            for output in outputs {
                match output {
                    Output::ToPeer(frames)
                        if frames.first().is_some_and(|id| id.starts_with(&HOSTILE)) =>
                    {
                        // To a hostile peer, which reads and ignores it.
                    }
                    Output::ToPeer(frames) => {
                        let target =
                            frames
                                .first()
                                .and_then(parse_routing_id)
                                .filter(|&(l, epoch)| {
                                    self.links.get(l).is_some_and(|link| {
                                        link.server == node && link.connected && link.epoch == epoch
                                    })
                                });
                        match target {
                            None => refused.push((Output::ToPeer(frames), true)),
                            Some((l, _)) if self.links[l].queued(Dir::ToClient) >= self.hwm() => {
                                refused.push((Output::ToPeer(frames), false));
                            }
                            Some((l, _)) => self.send(l, Dir::ToClient, frames),
                        }
                    }
                    Output::ToRemote { remote, frames } => {
                        let Some(&l) = self.processes[node].remotes.get(remote.index()) else {
                            continue;
                        };
                        let hwm = self.hwm();
                        let link = &mut self.links[l];
                        if link.connected {
                            if link.queued(Dir::ToServer) >= hwm {
                                refused.push((Output::ToRemote { remote, frames }, false));
                            } else {
                                self.send(l, Dir::ToServer, frames);
                            }
                        } else if link.pipe.len() >= hwm {
                            refused.push((Output::ToRemote { remote, frames }, false));
                        } else {
                            link.pipe.push_back(frames);
                        }
                    }
                    Output::Peer(_) => {}
                    Output::Deliver { endpoint, service } => {
                        self.digest.bytes(endpoint.as_bytes());
                        self.digest.bytes(service.as_bytes());
                        self.trace(|| format!("node {node} DELIVER {endpoint} {service}"));
                        self.seen.push(Seen::Deliver {
                            at: Duration::from_nanos(self.now),
                            node,
                            endpoint,
                            service,
                        });
                    }
                    Output::Remove {
                        endpoint,
                        service,
                        expired,
                        remover,
                    } => {
                        self.digest.bytes(endpoint.as_bytes());
                        self.digest.number(1);
                        self.trace(|| format!("node {node} REMOVE {endpoint} {service}"));
                        self.seen.push(Seen::Remove {
                            at: Duration::from_nanos(self.now),
                            node,
                            endpoint,
                            expired,
                            remover,
                        });
                    }
                }
            }
            if refused.is_empty() {
                break;
            }
            self.counts.refused += refused.len() as u64;
            let clock = self.clock(node);
            if let Some(core) = self.processes[node].core.as_mut() {
                core.on_refused(refused, clock);
            }
        }
        self.reschedule(node);
    }

    fn hwm(&self) -> usize {
        self.settings.limits.hwm as usize
    }

    /// Queue the node's next timer event.
    fn reschedule(&mut self, node: usize) {
        let Some(deadline) = self.processes[node]
            .core
            .as_ref()
            .and_then(NodeCore::next_deadline)
        else {
            return;
        };
        let at = self.when(node, deadline);
        let p = &mut self.processes[node];
        if p.timer_at.is_some_and(|t| t <= at && t >= self.now) {
            return;
        }
        p.timer_at = Some(at);
        let incarnation = p.incarnation;
        self.push(at, Event::Timer { node, incarnation });
    }

    fn tick(&mut self, node: usize) {
        let clock = self.clock(node);
        if let Some(core) = self.processes[node].core.as_mut() {
            core.tick(clock);
        }
        self.collect(node);
    }

    /// Run events up to `until`. Returns the index of a planned action
    /// that is due, for the caller to carry out (then call again).
    pub fn run_until(&mut self, until: Duration) -> Option<usize> {
        let until = until.as_nanos() as u64;
        while let Some(Reverse(next)) = self.queue.peek() {
            if next.at > until {
                break;
            }
            let Some(Reverse(Scheduled { at, event, .. })) = self.queue.pop() else {
                break;
            };
            self.now = self.now.max(at);
            self.counts.events += 1;
            match event {
                Event::Planned(index) => return Some(index),
                Event::Timer { node, incarnation } => {
                    let p = &mut self.processes[node];
                    if p.incarnation != incarnation || p.timer_at != Some(at) {
                        continue;
                    }
                    p.timer_at = None;
                    if p.paused {
                        // It fires when the process continues.
                        continue;
                    }
                    self.tick(node);
                }
                Event::Arrive {
                    link,
                    dir,
                    epoch,
                    seq,
                    packet,
                } => self.arrive(link, dir, epoch, seq, packet),
                Event::Heartbeat { link, epoch } => {
                    let l = &self.links[link];
                    let timeout = self.settings.timeout.as_nanos() as u64;
                    if l.connected
                        && l.epoch == epoch
                        && l.blocked_since.is_some_and(|s| self.now >= s + timeout)
                    {
                        self.drop_connection(link, "silent past server/timeout: heartbeats");
                    }
                }
                Event::Reconnect { link, attempt } => self.reconnect(link, attempt),
                Event::Reconnected { link, epoch } => {
                    let l = &self.links[link];
                    let (client, remote) = (l.client, l.remote);
                    if !l.connected || l.epoch != epoch || !self.is_running(client) {
                        continue;
                    }
                    self.trace(|| format!("node {client} hears that link {link} reconnected"));
                    let clock = self.clock(client);
                    if let Some(core) = self.processes[client].core.as_mut() {
                        core.on_remote_reconnected(remote, clock);
                    }
                    self.collect(client);
                }
            }
        }
        self.now = self.now.max(until);
        None
    }
}

fn link_end(l: usize, end: &str) -> String {
    format!("link {l} {end}")
}

/// A message in a few words, for traces.
fn describe(frames: &[&[u8]]) -> String {
    match ZgossipMsg::decode(frames) {
        Ok(ZgossipMsg::Announce(a)) => format!(
            "ANNOUNCE {} {} origin={:?} revision={:?} flags={:?}",
            a.endpoint,
            a.service,
            a.origin.map(|o| format!("{o:016x}")),
            a.revision,
            a.flags
        ),
        Ok(ZgossipMsg::Ping(p)) => format!("PING extensions={:?}", p.extensions),
        Ok(ZgossipMsg::Pong(p)) => format!("PONG extensions={:?}", p.extensions),
        Ok(ZgossipMsg::Graft(g)) => format!("GRAFT {:?}", g.endpoints),
        Ok(ZgossipMsg::Ihave(i)) => format!("IHAVE ({} bytes)", i.tuples.len()),
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("(undecodable: {e})"),
    }
}
