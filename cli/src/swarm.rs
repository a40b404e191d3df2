//! The swarm: thousands of zgossip nodes in one process, coming and going,
//! until every live node holds every tuple.
//!
//! The nodes are the real [`zgossip::NodeCore`]s, linked by the in-memory
//! [`Mesh`]: every message is encoded to frames and decoded again, exactly as
//! over sockets, but no socket (so no file descriptor) is used. That is what
//! lets 10,000 nodes share one process: libzmq gives every socket a file
//! descriptor, each node needs at least two sockets, and a process may hold
//! at most 20,000 here.

use std::time::{Duration, Instant};

use zgossip::mesh::Mesh;
use zgossip::Settings;

/// How nodes connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// Each node connects to one random earlier node.
    Tree,
    /// Each node connects to the one before it.
    Chain,
    /// Every node connects to node 0.
    Star,
    /// Each node connects to up to `k` distinct random earlier nodes.
    Graph(usize),
}

/// How the nodes reach each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Linked in memory: no sockets, no file descriptors, any number of nodes.
    Memory,
    /// ZeroMQ `inproc://` sockets, all nodes on one reactor thread.
    Inproc,
    /// ZeroMQ over tcp loopback, all nodes on one reactor thread.
    Tcp,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct SwarmConfig {
    /// How nodes reach each other.
    pub transport: Transport,
    /// Number of nodes.
    pub nodes: usize,
    /// Number of tuples, each announced by one node.
    pub tuples: usize,
    /// How the nodes connect.
    pub topology: Topology,
    /// Share of nodes (0..1) that leave during dissemination and rejoin
    /// empty, then announce their tuples again.
    pub churn: f64,
    /// Stop after this long, converged or not.
    pub timeout: Duration,
    /// Seed of the random choices (topology, announcers, churn).
    pub seed: u64,
    /// Node settings.
    pub settings: Settings,
    /// In memory only: simulated time instead of the wall clock, each
    /// message passed taking this long and an idle mesh jumping to its next
    /// sample. What the nodes' timers do (keepalives, IHAVE batches, GRAFT
    /// waits) then depends on the messages, not on how busy the machine
    /// is, so the counts of a run are the same under any load.
    pub simulated_time: Option<Duration>,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        Self {
            transport: Transport::Memory,
            nodes: 1000,
            tuples: 1000,
            topology: Topology::Tree,
            churn: 0.0,
            timeout: Duration::from_secs(60),
            seed: 1,
            settings: Settings::default(),
            simulated_time: None,
        }
    }
}

/// The in-memory swarm's time: the wall clock, or simulated
/// ([`SwarmConfig::simulated_time`]).
struct Clock {
    per_message: Option<Duration>,
    origin: Instant,
    simulated: Duration,
}

impl Clock {
    fn new(per_message: Option<Duration>) -> Self {
        Self {
            per_message,
            origin: Instant::now(),
            simulated: Duration::ZERO,
        }
    }

    fn now(&self) -> Instant {
        match self.per_message {
            Some(_) => self.origin + self.simulated,
            None => Instant::now(),
        }
    }

    /// `moved` messages were passed.
    fn passed(&mut self, moved: u64) {
        if let Some(each) = self.per_message {
            self.simulated += each.saturating_mul(u32::try_from(moved).unwrap_or(u32::MAX));
        }
    }

    /// Nothing to do before `wake`: sleep, or jump there.
    fn wait_until(&mut self, wake: Instant) {
        match self.per_message {
            Some(_) => self.simulated = self.simulated.max(wake - self.origin),
            None => std::thread::sleep(wake.saturating_duration_since(Instant::now())),
        }
    }
}

/// One point of the convergence curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Since the start of dissemination.
    pub elapsed: Duration,
    /// Live nodes holding every tuple.
    pub complete: usize,
    /// Live nodes.
    pub live: usize,
}

impl Sample {
    /// Share of live nodes that are complete, 0..1.
    pub fn share(&self) -> f64 {
        if self.live == 0 {
            0.0
        } else {
            self.complete as f64 / self.live as f64
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct SwarmReport {
    /// Whether every live node held every tuple before the timeout.
    pub converged: bool,
    /// Time from the first announcement to convergence (or the timeout).
    pub elapsed: Duration,
    /// Time to build the swarm (nodes and links), before dissemination.
    pub setup: Duration,
    /// The convergence curve.
    pub curve: Vec<Sample>,
    /// Messages passed between nodes.
    pub messages: u64,
    /// ANNOUNCEs received for tuples already known.
    pub duplicates: u64,
    /// Messages sent, by type (`node::MESSAGE_TYPES` order).
    pub sent_by_type: [u64; zgossip::MESSAGE_KINDS],
    /// Messages a full queue refused, to be sent again (sockets only: the
    /// in-memory mesh has no queue limit).
    pub refused_sends: u64,
    /// Remotes that synchronised again (HELLO and every tuple).
    pub resyncs: u64,
    /// Nodes that left and rejoined.
    pub churned: usize,
    /// Up to ten live nodes that were not complete at the end: (node, tuples held).
    pub incomplete: Vec<(usize, usize)>,
    /// Live nodes that were not complete at the end.
    pub incomplete_count: usize,
    /// Peak resident memory of the process, in KiB (Linux).
    pub peak_rss_kib: Option<u64>,
    /// Threads of the process at the end (Linux).
    pub threads: Option<u64>,
}

/// SplitMix64: small, fast, and enough for choosing nodes reproducibly.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// `k` distinct numbers in `0..n`.
    fn sample(&mut self, n: usize, k: usize) -> Vec<usize> {
        // A partial Fisher-Yates shuffle of 0..n, with the swapped places
        // in a map rather than the whole array: a node's k links cost k,
        // not its position in the swarm (which made a swarm's plan grow
        // with the square of its nodes: 40 GB at 100,000).
        let k = k.min(n);
        let mut moved: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
        let mut out = Vec::with_capacity(k);
        for i in 0..k {
            let j = i + self.below(n - i);
            let at_j = moved.get(&j).copied().unwrap_or(j);
            let at_i = moved.get(&i).copied().unwrap_or(i);
            moved.insert(j, at_i);
            out.push(at_j);
        }
        out
    }
}

/// The tuple number `t`: a service at a distinct endpoint.
pub fn tuple(t: usize) -> (String, String) {
    (
        format!(
            "tcp://10.{}.{}.{}:9000",
            (t >> 16) & 255,
            (t >> 8) & 255,
            t & 255
        ),
        format!("service-{t}"),
    )
}

/// Frames moved between two looks at the clock and the nodes' state.
const BATCH: u64 = 2048;
/// How often the curve is sampled and timers run.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// Why a swarm cannot run as configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwarmError {
    /// inproc connections are never re-established after a peer leaves.
    #[error("churn needs --transport memory or tcp: inproc connections do not come back after a node leaves")]
    ChurnOverInproc,
    /// Sockets run on the wall clock.
    #[error("simulated time needs --transport memory: sockets run on the wall clock")]
    SimulatedOverSockets,
    /// The sockets would need more file descriptors than the process may have.
    #[error("{nodes} nodes over {transport} need about {needed} file descriptors; this process may open {limit}")]
    TooManySockets {
        /// Nodes asked for.
        nodes: usize,
        /// The transport.
        transport: &'static str,
        /// Descriptors needed, roughly.
        needed: u64,
        /// The process limit.
        limit: u64,
    },
    /// The swarm would not fit in memory.
    #[error("{nodes} nodes holding {tuples} tuples each need about {} MB; this machine has {} MB available", needed / 1_000_000, available / 1_000_000)]
    TooLarge {
        /// Nodes asked for.
        nodes: usize,
        /// Tuples asked for.
        tuples: usize,
        /// Bytes needed, estimated.
        needed: u64,
        /// Bytes available (MemAvailable).
        available: u64,
    },
    /// A node could not start, bind or connect.
    #[error("{0}")]
    Node(#[from] zgossip::Error),
}

/// Bytes a swarm needs, roughly: every node holds every tuple (two symbols
/// and a map entry, about 48 bytes with the table's slack), plus what a node
/// costs alone (its tables and queues in memory; its sockets and their
/// libzmq pipes over inproc or tcp), plus the tuple strings once.
pub fn estimated_bytes(config: &SwarmConfig) -> u64 {
    let nodes = config.nodes.max(1) as u64;
    let tuples = config.tuples as u64;
    let per_node = match config.transport {
        Transport::Memory => 8_000,
        Transport::Inproc | Transport::Tcp => 150_000,
    };
    nodes
        .saturating_mul(tuples)
        .saturating_mul(48)
        .saturating_add(nodes.saturating_mul(per_node))
        .saturating_add(tuples.saturating_mul(96))
}

/// Memory this machine can still give (MemAvailable), if known.
fn available_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Refuse, before allocating anything, a swarm that cannot fit in memory.
pub fn check_size(config: &SwarmConfig) -> Result<(), SwarmError> {
    let needed = estimated_bytes(config);
    match available_bytes() {
        Some(available) if needed > available => Err(SwarmError::TooLarge {
            nodes: config.nodes,
            tuples: config.tuples,
            needed,
            available,
        }),
        _ => Ok(()),
    }
}

/// The settings of a swarm's nodes: the configured ones, with room for
/// every tuple of the run.
fn node_settings(config: &SwarmConfig) -> Settings {
    let mut settings = config.settings;
    settings.limits.tuples = settings.limits.tuples.max(config.tuples);
    settings
}

/// Who connects to whom, who announces what, who leaves: the random choices
/// of a run, the same whatever the transport.
#[derive(Debug)]
struct Plan {
    /// Per node, the nodes it connects to.
    targets: Vec<Vec<usize>>,
    /// Tuple `t` is announced by node `announcers[t]`.
    announcers: Vec<usize>,
    /// Nodes that leave and rejoin.
    churned: Vec<usize>,
    /// Per node, whether it is in `churned`.
    is_churned: Vec<bool>,
}

impl Plan {
    fn new(config: &SwarmConfig) -> Self {
        let mut rng = Rng(config.seed);
        let n = config.nodes.max(1);
        let mut targets = vec![Vec::new(); n];
        for (i, to) in targets.iter_mut().enumerate().skip(1) {
            *to = match config.topology {
                Topology::Tree => vec![rng.below(i)],
                Topology::Chain => vec![i - 1],
                Topology::Star => vec![0],
                // The first link is a node's tree link (Plumtree): the
                // earliest of its targets, so that the tree is shallow.
                Topology::Graph(k) => {
                    let mut targets = rng.sample(i, k.max(1));
                    targets.sort_unstable();
                    targets
                }
            };
        }
        let announcers = if config.tuples <= n {
            rng.sample(n, config.tuples)
        } else {
            (0..config.tuples).map(|t| t % n).collect()
        };
        let churned = rng.sample(
            n,
            (config.churn.clamp(0.0, 1.0) * n as f64).round() as usize,
        );
        let mut is_churned = vec![false; n];
        for &node in &churned {
            is_churned[node] = true;
        }
        Self {
            targets,
            announcers,
            churned,
            is_churned,
        }
    }
}

/// Run a swarm over the configured transport; `progress` sees each sample
/// as it is taken.
pub fn run_any(
    config: &SwarmConfig,
    progress: impl FnMut(&Sample),
) -> Result<SwarmReport, SwarmError> {
    check_size(config)?;
    match config.transport {
        Transport::Memory => Ok(run(config, progress)),
        Transport::Inproc | Transport::Tcp => sockets::run(config, progress),
    }
}

/// Run a swarm in memory; `progress` sees each sample as it is taken.
pub fn run(config: &SwarmConfig, mut progress: impl FnMut(&Sample)) -> SwarmReport {
    let setup_start = Instant::now();
    let mut clock = Clock::new(config.simulated_time);
    let plan = Plan::new(config);
    let mut mesh = Mesh::new();
    mesh.forget_deliveries();
    let n = config.nodes.max(1);
    for _ in 0..n {
        mesh.add(node_settings(config));
    }
    let now = clock.now();
    for (i, targets) in plan.targets.iter().enumerate() {
        for &j in targets {
            mesh.connect(i, j, now);
        }
    }
    // Let the HELLOs settle, so that the clock measures dissemination.
    let moved = mesh.run(now);
    clock.passed(moved);
    let setup = setup_start.elapsed();

    // Tuple t is announced by node announcers[t].
    let Plan {
        announcers,
        churned,
        is_churned,
        ..
    } = plan;

    let start = clock.now();
    let wall_start = Instant::now();
    for (t, &node) in announcers.iter().enumerate() {
        let (endpoint, service) = tuple(t);
        if let Err(e) = mesh.announce(node, &endpoint, &service, start) {
            tracing::error!("node-{node}: {e}");
        }
    }
    // Churn: leave once dissemination is under way, rejoin a little later.
    let leave_after = n as u64;
    let rejoin_after = 3 * n as u64;
    let mut churn_state = if churned.is_empty() { 2 } else { 0 };
    let mut moved_since_start = 0u64;

    let mut curve = Vec::new();
    let mut next_sample = start;
    let mut converged = false;
    loop {
        let now = clock.now();
        let moved = mesh.step(BATCH, now);
        clock.passed(moved);
        moved_since_start += moved;
        let idle = moved == 0;
        if churn_state == 0 && (moved_since_start >= leave_after || idle) {
            for &node in &churned {
                mesh.stop(node);
            }
            churn_state = 1;
        } else if churn_state == 1 && (moved_since_start >= rejoin_after || idle) {
            let now = clock.now();
            for &node in &churned {
                mesh.restart(node, now);
            }
            // Rejoined nodes announce their tuples again, as an
            // application restarting would.
            for (t, &node) in announcers.iter().enumerate() {
                if is_churned[node] {
                    let (endpoint, service) = tuple(t);
                    if let Err(e) = mesh.announce(node, &endpoint, &service, now) {
                        tracing::error!("node-{node}: {e}");
                    }
                }
            }
            churn_state = 2;
        }
        if now >= next_sample || idle {
            mesh.tick_nodes(now);
            let sample = measure(&mesh, config.tuples, clock.now() - start);
            progress(&sample);
            curve.push(sample);
            next_sample = now + SAMPLE_EVERY;
            if churn_state == 2 && sample.complete == sample.live {
                converged = true;
                break;
            }
        }
        // Simulated or not, the run stops within the timeout of real time.
        if clock.now() - start >= config.timeout || wall_start.elapsed() >= config.timeout {
            break;
        }
        if idle && mesh.in_flight() == 0 {
            // Nothing to pass: wait for the next timer (keepalives, expiry)
            // or sample, whichever is first.
            clock.wait_until(next_sample.min(now + SAMPLE_EVERY));
        }
    }
    let elapsed = clock.now() - start;
    let mut incomplete = Vec::new();
    let mut incomplete_count = 0;
    let (mut duplicates, mut refused_sends, mut resyncs) = (0, 0, 0);
    let mut sent_by_type = [0; zgossip::MESSAGE_KINDS];
    for i in 0..n {
        if let Some(node) = mesh.node(i) {
            let stats = node.stats();
            duplicates += stats.duplicates;
            for (total, n) in sent_by_type.iter_mut().zip(stats.sent_by_type) {
                *total += n;
            }
            refused_sends += stats.refused_sends;
            resyncs += stats.resyncs;
            let held = node.tuples().len();
            if held != config.tuples {
                incomplete_count += 1;
                if incomplete.len() < 10 {
                    incomplete.push((i, held));
                }
            }
        }
    }
    let (peak_rss_kib, threads) = process_status();
    SwarmReport {
        converged,
        elapsed,
        setup,
        curve,
        messages: mesh.frames_moved,
        duplicates,
        sent_by_type,
        refused_sends,
        resyncs,
        churned: churned.len(),
        incomplete,
        incomplete_count,
        peak_rss_kib,
        threads,
    }
}

fn measure(mesh: &Mesh, tuples: usize, elapsed: Duration) -> Sample {
    let mut complete = 0;
    let mut live = 0;
    for i in 0..mesh.len() {
        if let Some(node) = mesh.node(i) {
            live += 1;
            if node.tuples().len() == tuples {
                complete += 1;
            }
        }
    }
    Sample {
        elapsed,
        complete,
        live,
    }
}

/// Peak resident memory (KiB) and thread count, from /proc/self/status.
pub fn process_status() -> (Option<u64>, Option<u64>) {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return (None, None);
    };
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    (field("VmHWM:"), field("Threads:"))
}

impl SwarmReport {
    /// Messages passed per tuple per node.
    pub fn messages_per_tuple_per_node(&self, config: &SwarmConfig) -> f64 {
        self.messages as f64 / (config.tuples.max(1) * config.nodes.max(1)) as f64
    }

    /// The curve as CSV (`elapsed_ms,complete,live,share`), written by
    /// the `csv` crate.
    pub fn csv(&self) -> String {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let mut rows = || -> Result<(), csv::Error> {
            writer.write_record(["elapsed_ms", "complete", "live", "share"])?;
            for s in &self.curve {
                writer.write_record([
                    format!("{:.3}", s.elapsed.as_secs_f64() * 1e3),
                    s.complete.to_string(),
                    s.live.to_string(),
                    format!("{:.4}", s.share()),
                ])?;
            }
            writer.flush()?;
            Ok(())
        };
        // Writing to memory cannot fail but for a bug; say so in the file.
        if let Err(e) = rows() {
            return format!("error,{e}\n");
        }
        writer
            .into_inner()
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The curve as an SVG line chart (share of live nodes holding every
    /// tuple over time), drawn by plotters.
    pub fn svg(&self, title: &str) -> String {
        let mut svg = String::new();
        if let Err(e) = self.draw(title, &mut svg) {
            tracing::warn!("cannot draw the convergence chart: {e}");
        }
        svg
    }

    fn draw(&self, title: &str, out: &mut String) -> Result<(), Box<dyn std::error::Error>> {
        use plotters::prelude::*;
        let t_max = self
            .curve
            .last()
            .map_or(1.0, |s| s.elapsed.as_secs_f64() * 1e3)
            .max(1.0);
        let root = SVGBackend::with_string(out, (640, 400)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..t_max, 0.0..100.0)?;
        chart
            .configure_mesh()
            .x_desc("time since first announcement (ms)")
            .y_desc("live nodes holding every tuple (%)")
            .draw()?;
        chart.draw_series(LineSeries::new(
            self.curve
                .iter()
                .map(|s| (s.elapsed.as_secs_f64() * 1e3, s.share() * 100.0)),
            BLUE.stroke_width(2),
        ))?;
        root.present()?;
        Ok(())
    }
}

/// The same scenario over real ZeroMQ sockets.
mod sockets {
    use std::time::{Duration, Instant};

    use super::{
        process_status, tuple, Plan, Sample, SwarmConfig, SwarmError, SwarmReport, Topology,
        Transport,
    };
    use zgossip::{Interner, Node, Reactor};

    /// The descriptor limit of this process (RLIMIT_NOFILE), from /proc.
    fn descriptor_limit() -> Option<u64> {
        let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse().ok()
    }

    pub(super) fn run(
        config: &SwarmConfig,
        mut progress: impl FnMut(&Sample),
    ) -> Result<SwarmReport, SwarmError> {
        let n = config.nodes.max(1);
        let links = match config.topology {
            Topology::Graph(k) => k.max(1),
            _ => 1,
        } as u64;
        // A ROUTER and a DEALER per link; over tcp also two monitor sockets
        // per link and for the ROUTER, and a descriptor at each end of each
        // connection.
        let (per_node, transport) = match config.transport {
            Transport::Tcp => (3 + 5 * links, "tcp"),
            _ => (1 + links, "inproc"),
        };
        let needed = per_node * n as u64 + 64;
        if let Some(limit) = descriptor_limit() {
            if needed > limit {
                return Err(SwarmError::TooManySockets {
                    nodes: n,
                    transport,
                    needed,
                    limit,
                });
            }
        }
        if config.churn > 0.0 && config.transport == Transport::Inproc {
            return Err(SwarmError::ChurnOverInproc);
        }
        if config.simulated_time.is_some() {
            return Err(SwarmError::SimulatedOverSockets);
        }
        let setup_start = Instant::now();
        let reactor = Reactor::start().map_err(|_| zgossip::Error::Stopped)?;
        // The swarm's nodes hold one copy of each tuple string.
        let interner = Interner::new();
        let plan = Plan::new(config);
        let run_id = std::process::id();
        let mut nodes: Vec<Option<Node>> = Vec::with_capacity(n);
        let mut endpoints = Vec::with_capacity(n);
        for i in 0..n {
            let settings = super::node_settings(config);
            let node =
                Node::on_sharing(&reactor, &format!("node-{i}"), settings, interner.clone())?;
            let endpoint = if config.transport == Transport::Tcp {
                // Port 0: any port, the kernel's choice. CZMQ's `*` scans
                // from 49152 for the first free port, which for thousands
                // of nodes in one process tries millions of ports.
                node.bind("tcp://127.0.0.1:0")?;
                format!("tcp://127.0.0.1:{}", node.port()?)
            } else {
                let endpoint = format!("inproc://swarm-{run_id}-{i}");
                node.bind(&endpoint)?;
                endpoint
            };
            nodes.push(Some(node));
            endpoints.push(endpoint);
        }
        for (i, targets) in plan.targets.iter().enumerate() {
            for &j in targets {
                if let Some(node) = &nodes[i] {
                    node.connect(&endpoints[j])?;
                }
            }
        }
        let setup = setup_start.elapsed();
        let Plan {
            targets,
            announcers,
            churned,
            ..
        } = plan;
        let start = Instant::now();
        for (t, &i) in announcers.iter().enumerate() {
            let (endpoint, service) = tuple(t);
            if let Some(node) = &nodes[i] {
                node.announce(&endpoint, &service)?;
            }
        }
        let mut known = vec![0usize; n];
        let mut delivered = 0usize;
        let mut churn_state = if churned.is_empty() { 2 } else { 0 };
        let mut curve = Vec::new();
        let mut converged = false;
        while start.elapsed() < config.timeout {
            for (i, node) in nodes.iter().enumerate() {
                if let Some(node) = node {
                    let got = node.try_deliveries().count();
                    known[i] += got;
                    delivered += got;
                }
            }
            if churn_state == 0 && delivered >= n {
                for &i in &churned {
                    nodes[i] = None;
                    known[i] = 0;
                }
                churn_state = 1;
            } else if churn_state == 1 {
                for &i in &churned {
                    let settings = super::node_settings(config);
                    let node = Node::on_sharing(
                        &reactor,
                        &format!("node-{i}"),
                        settings,
                        interner.clone(),
                    )?;
                    // The old listener closes asynchronously: retry, bounded.
                    let deadline = Instant::now() + Duration::from_secs(5);
                    while let Err(e) = node.bind(&endpoints[i]) {
                        if Instant::now() >= deadline {
                            return Err(e.into());
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    for &j in &targets[i] {
                        node.connect(&endpoints[j])?;
                    }
                    for (t, &a) in announcers.iter().enumerate() {
                        if a == i {
                            let (endpoint, service) = tuple(t);
                            node.announce(&endpoint, &service)?;
                        }
                    }
                    nodes[i] = Some(node);
                }
                churn_state = 2;
            }
            let live = nodes.iter().filter(|n| n.is_some()).count();
            let complete = (0..n)
                .filter(|&i| nodes[i].is_some() && known[i] >= config.tuples)
                .count();
            let sample = Sample {
                elapsed: start.elapsed(),
                complete,
                live,
            };
            progress(&sample);
            curve.push(sample);
            if churn_state == 2 && complete == live {
                converged = true;
                break;
            }
            // Deliveries arrive on channels: look again shortly.
            std::thread::sleep(Duration::from_millis(10));
        }
        let elapsed = start.elapsed();
        let mut report = SwarmReport {
            converged,
            elapsed,
            setup,
            curve,
            messages: 0,
            duplicates: 0,
            sent_by_type: [0; zgossip::MESSAGE_KINDS],
            refused_sends: 0,
            resyncs: 0,
            churned: churned.len(),
            incomplete: Vec::new(),
            incomplete_count: 0,
            peak_rss_kib: None,
            threads: None,
        };
        for (i, node) in nodes.iter().enumerate() {
            let Some(node) = node else { continue };
            let stats = node.stats()?;
            report.messages += stats.sent;
            report.duplicates += stats.duplicates;
            for (total, n) in report.sent_by_type.iter_mut().zip(stats.sent_by_type) {
                *total += n;
            }
            report.refused_sends += stats.refused_sends;
            report.resyncs += stats.resyncs;
            if known[i] < config.tuples {
                report.incomplete_count += 1;
                if report.incomplete.len() < 10 {
                    report.incomplete.push((i, known[i]));
                }
            }
        }
        (report.peak_rss_kib, report.threads) = process_status();
        Ok(report)
    }
}

#[cfg(test)]
mod chart_tests {
    use super::*;

    fn report() -> SwarmReport {
        let mut report = SwarmReport::default();
        for (ms, complete) in [(0, 0), (5, 40), (9, 100)] {
            report.curve.push(Sample {
                elapsed: Duration::from_millis(ms),
                complete,
                live: 100,
            });
        }
        report
    }

    #[test]
    fn the_csv_reads_back() {
        let text = report().csv();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader.headers().expect("headers").clone();
        assert_eq!(&headers, vec!["elapsed_ms", "complete", "live", "share"]);
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a row")).collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(&rows[1], vec!["5.000", "40", "100", "0.4000"]);
    }

    #[test]
    fn the_svg_is_an_svg_even_with_markup_in_its_title() {
        let svg = report().svg("a <title> & more");
        assert!(svg.contains("<svg"), "{svg}");
        assert!(svg.contains("&lt;title&gt; &amp; more"), "{svg}");
        assert!(svg.contains("<polyline") || svg.contains("<path"), "{svg}");
    }
}
