//! A schedule: everything one simulated run does, drawn from a seed. The
//! cluster (nodes, links, settings, clocks), the application's writes, and
//! the faults, each at a time. Faults come in pairs (cut and heal, pause and
//! resume, crash and restart), and at [`Schedule::heal_at`] every fault
//! still open ends: links heal, paused nodes resume, slow readers catch up.
//! Crashed nodes that the schedule does not restart stay down (they left).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::rng::Rng;
use crate::node::Settings;

/// A kind of fault the simulator injects (docs/zgossip.md, "Correctness under
/// faults", says what each means on the real stack).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// Links cut and healed, shorter and longer than `server/timeout`.
    Partition,
    /// Processes killed (kill -9), most restarted empty later.
    Crash,
    /// Processes stopped (SIGSTOP) and continued, with stale timers.
    Pause,
    /// Clocks that drift apart and jump forward.
    Clock,
    /// Readers slower than their peers' senders: queues reach the
    /// high-water mark.
    Slow,
    /// Nodes that join late, and nodes that leave for good.
    Churn,
    /// Two applications writing one endpoint at once.
    Conflict,
    /// Latency that varies per message: messages on different connections
    /// overtake each other (never on one connection).
    Jitter,
    /// A hostile peer connects to a node: forged writes of others'
    /// endpoints (their own origin, a version ahead), forged tombstones,
    /// junk IHAVE ids, GRAFT storms.
    Hostile,
}

impl FaultKind {
    /// Every kind, in the order `--faults` lists them.
    pub const ALL: [FaultKind; 9] = [
        FaultKind::Partition,
        FaultKind::Crash,
        FaultKind::Pause,
        FaultKind::Clock,
        FaultKind::Slow,
        FaultKind::Churn,
        FaultKind::Conflict,
        FaultKind::Jitter,
        FaultKind::Hostile,
    ];

    /// Every kind but [`FaultKind::Hostile`]: the faults of an honest
    /// cluster.
    pub const HONEST: [FaultKind; 8] = [
        FaultKind::Partition,
        FaultKind::Crash,
        FaultKind::Pause,
        FaultKind::Clock,
        FaultKind::Slow,
        FaultKind::Churn,
        FaultKind::Conflict,
        FaultKind::Jitter,
    ];

    /// The kind's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Crash => "crash",
            FaultKind::Pause => "pause",
            FaultKind::Clock => "clock",
            FaultKind::Slow => "slow",
            FaultKind::Churn => "churn",
            FaultKind::Conflict => "conflict",
            FaultKind::Jitter => "jitter",
            FaultKind::Hostile => "hostile",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fault kind that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault \"{0}\" (known: partition, crash, pause, clock, slow, churn, conflict, jitter, hostile, all, none)")]
pub struct UnknownFault(pub String);

impl FromStr for FaultKind {
    type Err = UnknownFault;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name() == s.trim())
            .ok_or_else(|| UnknownFault(s.to_owned()))
    }
}

/// Parse a `--faults` list: names separated by commas, `all` or `none`.
pub fn parse_faults(list: &str) -> Result<Vec<FaultKind>, UnknownFault> {
    match list.trim() {
        "all" => Ok(FaultKind::ALL.to_vec()),
        "none" | "" => Ok(Vec::new()),
        list => {
            let mut kinds = list
                .split(',')
                .map(str::parse)
                .collect::<Result<Vec<FaultKind>, _>>()?;
            kinds.sort();
            kinds.dedup();
            Ok(kinds)
        }
    }
}

/// How the cluster's nodes connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// Each node connects to one earlier node.
    Tree,
    /// Each node connects to the one before it.
    Chain,
    /// A chain whose first node connects to its last.
    Ring,
    /// A tree with extra links: more than one path between nodes.
    Graph,
    /// Every node connects to every earlier one.
    Full,
}

impl Topology {
    const ALL: [Topology; 5] = [
        Topology::Tree,
        Topology::Chain,
        Topology::Ring,
        Topology::Graph,
        Topology::Full,
    ];

    /// Its name, for traces.
    pub fn name(self) -> &'static str {
        match self {
            Topology::Tree => "tree",
            Topology::Chain => "chain",
            Topology::Ring => "ring",
            Topology::Graph => "graph",
            Topology::Full => "full",
        }
    }
}

/// Which timers the nodes run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timers {
    /// The defaults (10 s timeout, 30 s lease, 300 ms keepalive, 1 s
    /// resync): runs are long in simulated time.
    Real,
    /// Every timer a tenth of the default (1 s timeout, 3 s lease, 30 ms
    /// keepalive, 100 ms resync): the same relations between timers, runs
    /// ten times shorter. The test suite's choice.
    Fast,
}

impl FromStr for Timers {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "real" => Ok(Timers::Real),
            "fast" => Ok(Timers::Fast),
            other => Err(format!("unknown timers \"{other}\" (real, fast)")),
        }
    }
}

impl Timers {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Timers::Real => "real",
            Timers::Fast => "fast",
        }
    }

    /// Node settings with these timers.
    pub fn settings(self) -> Settings {
        let real = Settings::default();
        match self {
            Timers::Real => real,
            Timers::Fast => Settings {
                timeout: real.timeout / 10,
                ping_interval: real.ping_interval / 10,
                resync: real.resync / 10,
                lease: real.lease.map(|l| l / 10),
                ..real
            },
        }
    }

    /// A duration of the default timers, scaled to these.
    pub fn scale(self, d: Duration) -> Duration {
        match self {
            Timers::Real => d,
            Timers::Fast => d / 10,
        }
    }
}

/// What the simulator draws schedules from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Nodes per cluster: a fixed number, or `None` for 3 to 7 drawn per
    /// seed.
    pub nodes: Option<usize>,
    /// The faults to inject (none: a quiet network, still checked).
    pub faults: Vec<FaultKind>,
    /// Node timers.
    pub timers: Timers,
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            nodes: None,
            faults: FaultKind::ALL.to_vec(),
            timers: Timers::Fast,
        }
    }
}

/// One thing that happens at a planned time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The application of `node` announces a tuple.
    Announce {
        /// The node.
        node: usize,
        /// Endpoint.
        endpoint: String,
        /// Service.
        service: String,
    },
    /// The application of `node` removes a tuple it announced.
    Unpublish {
        /// The node.
        node: usize,
        /// Endpoint.
        endpoint: String,
    },
    /// These links stop carrying anything (both ways).
    Cut(Vec<usize>),
    /// These links carry again.
    Heal(Vec<usize>),
    /// The process is killed: its state is gone.
    Crash(usize),
    /// The process starts again, empty, and its application announces what
    /// it had announced before (as an application does at start).
    Restart(usize),
    /// The process is stopped.
    Pause(usize),
    /// The process continues.
    Resume(usize),
    /// The node's clock jumps forward.
    Jump(usize, Duration),
    /// The node reads slowly (or again at full speed).
    Slow(usize, bool),
    /// A hostile peer connects to node `victim` and attacks.
    Hostile {
        /// The node attacked.
        victim: usize,
        /// How.
        attack: Attack,
    },
}

/// What a hostile peer sends (after its HELLO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// A write of the endpoint the victim holds at this position in its
    /// table, with the owner's own origin, `ahead` milliseconds ahead (at
    /// most as far as the victim takes: [`crate::clock::MAX_AHEAD`]), and
    /// another service; and a heartbeat (ALIVE) in the owner's name as far
    /// ahead of the victim's clock, claiming the forger's lease.
    ForgeOwner {
        /// Which tuple (a position, modulo the table's size).
        pick: usize,
        /// Milliseconds ahead of what the victim holds (`u64::MAX`: as far
        /// as the victim takes).
        ahead: u64,
    },
    /// A tombstone for that tuple, from another origin, a version ahead.
    ForgeTombstone {
        /// Which tuple.
        pick: usize,
    },
    /// A claim of a new endpoint at the highest version the victim takes,
    /// and the highest origin.
    Pin,
    /// IHAVE ids of tuples that do not exist.
    JunkIhave,
    /// GRAFTs naming every endpoint, many times.
    GraftStorm,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Announce {
                node,
                endpoint,
                service,
            } => write!(f, "node {node} ANNOUNCE {endpoint} {service}"),
            Action::Unpublish { node, endpoint } => write!(f, "node {node} UNPUBLISH {endpoint}"),
            Action::Cut(links) => write!(f, "cut links {links:?}"),
            Action::Heal(links) => write!(f, "heal links {links:?}"),
            Action::Crash(n) => write!(f, "crash node {n}"),
            Action::Restart(n) => write!(f, "restart node {n}"),
            Action::Pause(n) => write!(f, "pause node {n}"),
            Action::Resume(n) => write!(f, "resume node {n}"),
            Action::Jump(n, by) => write!(f, "node {n}'s clock jumps {by:?}"),
            Action::Slow(n, on) => write!(
                f,
                "node {n} reads {}",
                if *on { "slowly" } else { "at full speed" }
            ),
            Action::Hostile { victim, attack } => {
                write!(f, "a hostile peer attacks node {victim}: {attack:?}")
            }
        }
    }
}

/// An action at a time from the start of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// When.
    pub at: Duration,
    /// What.
    pub action: Action,
}

/// Everything one run does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The seed it was drawn from.
    pub seed: u64,
    /// What it was drawn under.
    pub plan: Plan,
    /// Number of nodes.
    pub nodes: usize,
    /// How they connect.
    pub topology: Topology,
    /// Links: (client, server): the client's remote connects to the
    /// server's ROUTER.
    pub links: Vec<(usize, usize)>,
    /// Every node's settings (origins come from the seed when the run
    /// starts each process).
    pub settings: Settings,
    /// Each node's clock drift, in parts per million.
    pub drift_ppm: Vec<i32>,
    /// Nodes that start only when a `Restart` brings them (late joiners).
    pub late: Vec<usize>,
    /// Whether latency varies per message.
    pub jitter: bool,
    /// The actions, in time order.
    pub events: Vec<Planned>,
    /// When every open fault ends.
    pub heal_at: Duration,
    /// How long the run goes on after that, for the checks at quiescence.
    pub settle: Duration,
}

/// The longest a run stays quiet after the heal: two leases, so that dead
/// owners' tuples have expired everywhere, and time to converge.
fn settle_time(timers: Timers, settings: &Settings) -> Duration {
    let lease = settings.lease.unwrap_or(Duration::from_secs(30));
    lease * 2 + timers.scale(Duration::from_secs(20))
}

impl Schedule {
    /// The schedule of `seed` under `plan`.
    pub fn draw(seed: u64, plan: &Plan) -> Schedule {
        let mut rng = Rng::new(seed);
        let mut shape = rng.fork();
        let mut faults = rng.fork();
        let mut writes = rng.fork();
        let has = |k: FaultKind| plan.faults.contains(&k);
        let timers = plan.timers;
        let settings = timers.settings();
        // Drawn whether or not the plan fixes it, so that a replay naming
        // the count draws the same schedule.
        let drawn_nodes = shape.between(3, 7) as usize;
        let nodes = plan.nodes.unwrap_or(drawn_nodes).max(1);
        let topology = Topology::ALL[shape.index(Topology::ALL.len())];
        let links = links_of(topology, nodes, &mut shape);
        let drift_ppm = (0..nodes)
            .map(|_| {
                if has(FaultKind::Clock) {
                    shape.between(0, 2000) as i32 - 1000
                } else {
                    0
                }
            })
            .collect();
        // The active phase: writes and faults; then every fault ends.
        let active = timers.scale(Duration::from_secs(60));
        let ms = |d: Duration| d.as_millis() as u64;
        let mut events = Vec::new();
        let mut late = Vec::new();
        let at = |rng: &mut Rng, from: u64, to: u64| Duration::from_millis(rng.between(from, to));

        // Churn: some nodes join late, some leave for good.
        if has(FaultKind::Churn) && nodes > 2 {
            for node in 1..nodes {
                if faults.chance(20) {
                    late.push(node);
                    events.push(Planned {
                        at: at(&mut faults, 0, ms(active) / 2),
                        action: Action::Restart(node),
                    });
                } else if faults.chance(10) {
                    events.push(Planned {
                        at: at(&mut faults, 0, ms(active)),
                        action: Action::Crash(node),
                    });
                }
            }
        }

        // The applications' writes: each node owns a few endpoints, some
        // updated and some removed later.
        let mut counter = 0;
        for node in 0..nodes {
            for k in 0..writes.between(1, 3) {
                let endpoint = format!("tcp://10.0.{node}.{k}:5555");
                let mut t = writes.between(0, ms(active) * 3 / 4);
                counter += 1;
                events.push(Planned {
                    at: Duration::from_millis(t),
                    action: Action::Announce {
                        node,
                        endpoint: endpoint.clone(),
                        service: format!("svc-{counter}"),
                    },
                });
                if writes.chance(30) {
                    t = writes.between(t, ms(active));
                    counter += 1;
                    events.push(Planned {
                        at: Duration::from_millis(t),
                        action: Action::Announce {
                            node,
                            endpoint: endpoint.clone(),
                            service: format!("svc-{counter}"),
                        },
                    });
                }
                if writes.chance(25) {
                    events.push(Planned {
                        at: Duration::from_millis(writes.between(t, ms(active))),
                        action: Action::Unpublish { node, endpoint },
                    });
                }
            }
        }
        if has(FaultKind::Conflict) && nodes > 1 {
            for k in 0..writes.between(1, 2) {
                let endpoint = format!("tcp://shared-{k}:5555");
                let first = writes.index(nodes);
                let second = (first + 1 + writes.index(nodes - 1)) % nodes;
                let t = writes.between(0, ms(active) / 2);
                for (i, node) in [first, second].into_iter().enumerate() {
                    counter += 1;
                    events.push(Planned {
                        // At once, or nearly.
                        at: Duration::from_millis(t + writes.below(3) * i as u64),
                        action: Action::Announce {
                            node,
                            endpoint: endpoint.clone(),
                            service: format!("svc-{counter}"),
                        },
                    });
                }
            }
        }

        // Faults.
        let timeout = ms(settings.timeout);
        let window = |rng: &mut Rng| {
            // Short (under the timeout) or long (past it), within the
            // active phase.
            let length = if rng.chance(50) {
                rng.between(timeout / 10, timeout * 9 / 10)
            } else {
                rng.between(timeout * 11 / 10, timeout * 3)
            };
            let start = rng.between(0, ms(active).saturating_sub(length));
            (
                Duration::from_millis(start),
                Duration::from_millis(start + length),
            )
        };
        if has(FaultKind::Partition) && !links.is_empty() {
            for _ in 0..faults.between(1, 3) {
                let (from, to) = window(&mut faults);
                let cut: Vec<usize> = (0..links.len()).filter(|_| faults.chance(40)).collect();
                let cut = if cut.is_empty() {
                    vec![faults.index(links.len())]
                } else {
                    cut
                };
                pair(
                    &mut events,
                    (from, to),
                    Action::Cut(cut.clone()),
                    Action::Heal(cut),
                );
            }
        }
        if has(FaultKind::Crash) {
            for _ in 0..faults.between(1, 2) {
                let node = faults.index(nodes);
                let (from, to) = window(&mut faults);
                if faults.chance(80) {
                    pair(
                        &mut events,
                        (from, to),
                        Action::Crash(node),
                        Action::Restart(node),
                    );
                } else {
                    events.push(Planned {
                        at: from,
                        action: Action::Crash(node),
                    });
                }
            }
        }
        if has(FaultKind::Pause) {
            for _ in 0..faults.between(1, 2) {
                let node = faults.index(nodes);
                let (from, to) = window(&mut faults);
                pair(
                    &mut events,
                    (from, to),
                    Action::Pause(node),
                    Action::Resume(node),
                );
            }
        }
        if has(FaultKind::Clock) {
            for _ in 0..faults.between(0, 2) {
                let node = faults.index(nodes);
                let by = Duration::from_millis(faults.between(1, timeout * 2));
                events.push(Planned {
                    at: at(&mut faults, 0, ms(active)),
                    action: Action::Jump(node, by),
                });
            }
        }
        if has(FaultKind::Slow) {
            let node = faults.index(nodes);
            let (from, to) = window(&mut faults);
            pair(
                &mut events,
                (from, to),
                Action::Slow(node, true),
                Action::Slow(node, false),
            );
        }
        if has(FaultKind::Hostile) {
            for _ in 0..faults.between(1, 3) {
                let attack = match faults.below(5) {
                    0 => Attack::ForgeOwner {
                        pick: faults.index(64),
                        ahead: if faults.chance(50) { 1 } else { u64::MAX },
                    },
                    1 => Attack::ForgeTombstone {
                        pick: faults.index(64),
                    },
                    2 => Attack::Pin,
                    3 => Attack::JunkIhave,
                    _ => Attack::GraftStorm,
                };
                events.push(Planned {
                    at: at(&mut faults, ms(active) / 4, ms(active)),
                    action: Action::Hostile {
                        victim: faults.index(nodes),
                        attack,
                    },
                });
            }
        }
        // Stable: equal times keep the order they were drawn in.
        events.sort_by_key(|e| e.at);
        Schedule {
            seed,
            plan: plan.clone(),
            nodes,
            topology,
            links,
            settle: settle_time(timers, &settings),
            settings,
            drift_ppm,
            late,
            jitter: has(FaultKind::Jitter),
            events,
            heal_at: active,
        }
    }

    /// The same schedule with only the events at these indices (a shrunk
    /// schedule, or one a replay command names).
    pub fn keeping(&self, keep: &[usize]) -> Schedule {
        Schedule {
            events: self
                .events
                .iter()
                .enumerate()
                .filter(|(i, _)| keep.contains(i))
                .map(|(_, e)| e.clone())
                .collect(),
            ..self.clone()
        }
    }

    /// The longest shortest path between two nodes, in links
    /// (`usize::MAX` if some node cannot reach another).
    pub fn diameter(&self) -> usize {
        let n = self.nodes;
        let mut adjacent = vec![Vec::new(); n];
        for &(a, b) in &self.links {
            adjacent[a].push(b);
            adjacent[b].push(a);
        }
        let mut longest = 0;
        for start in 0..n {
            let mut distance = vec![usize::MAX; n];
            distance[start] = 0;
            let mut queue = std::collections::VecDeque::from([start]);
            while let Some(a) = queue.pop_front() {
                for &b in &adjacent[a] {
                    if distance[b] == usize::MAX {
                        distance[b] = distance[a] + 1;
                        queue.push_back(b);
                    }
                }
            }
            longest = longest.max(distance.into_iter().max().unwrap_or(0));
        }
        longest
    }
}

/// A fault that starts at `from` and ends at `to`.
fn pair(events: &mut Vec<Planned>, (from, to): (Duration, Duration), start: Action, end: Action) {
    events.push(Planned {
        at: from,
        action: start,
    });
    events.push(Planned {
        at: to,
        action: end,
    });
}

fn links_of(topology: Topology, nodes: usize, rng: &mut Rng) -> Vec<(usize, usize)> {
    let mut links = Vec::new();
    match topology {
        Topology::Tree => {
            for node in 1..nodes {
                links.push((node, rng.index(node)));
            }
        }
        Topology::Chain => {
            for node in 1..nodes {
                links.push((node, node - 1));
            }
        }
        Topology::Ring => {
            for node in 1..nodes {
                links.push((node, node - 1));
            }
            if nodes > 2 {
                links.push((0, nodes - 1));
            }
        }
        Topology::Graph => {
            for node in 1..nodes {
                links.push((node, rng.index(node)));
            }
            for _ in 0..nodes / 2 + 1 {
                let a = rng.index(nodes);
                let b = rng.index(nodes);
                if a != b && !links.contains(&(a, b)) && !links.contains(&(b, a)) {
                    links.push((a, b));
                }
            }
        }
        Topology::Full => {
            for a in 1..nodes {
                for b in 0..a {
                    links.push((a, b));
                }
            }
        }
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_draws_one_schedule() {
        let plan = Plan::default();
        assert_eq!(Schedule::draw(42, &plan), Schedule::draw(42, &plan));
        assert_ne!(Schedule::draw(42, &plan), Schedule::draw(43, &plan));
    }

    #[test]
    fn fault_lists_parse_and_unknown_names_are_refused() {
        assert_eq!(parse_faults("all").unwrap().len(), FaultKind::ALL.len());
        assert_eq!(
            parse_faults("pause,partition,pause").unwrap(),
            vec![FaultKind::Partition, FaultKind::Pause]
        );
        assert!(parse_faults("partition,flood")
            .unwrap_err()
            .to_string()
            .contains("\"flood\""));
    }

    #[test]
    fn topologies_connect_every_node() {
        let mut rng = Rng::new(3);
        for topology in Topology::ALL {
            for nodes in 1..8 {
                let schedule = Schedule {
                    nodes,
                    links: links_of(topology, nodes, &mut rng),
                    ..Schedule::draw(1, &Plan::default())
                };
                // Connected: a finite diameter below the node count.
                assert!(schedule.diameter() < nodes.max(1), "{topology:?} {nodes}");
            }
        }
    }
}
