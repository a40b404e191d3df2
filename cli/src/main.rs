//! `zgossip`: run zgossip discovery nodes.
//!
//! With no arguments it runs a small local cluster (tcp loopback) whose nodes
//! discover each other's services, and shows it happening.

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};

// Thousands of nodes allocate small strings and frames all the time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use zgossip::text::{Escaped, EscapedWord};
use zgossip::{Node, Reactor, Settings};
use zgossip_cli::command::TextCommand;

/// Longest duration a flag takes, in seconds (ten years): past it, adding
/// it to the clock would overflow.
const MAX_SECONDS: u64 = 315_360_000;

/// Log lines waiting for the writer thread; past that, lines are dropped.
const LOG_QUEUE_LINES: usize = 8_192;

#[derive(Parser)]
#[command(
    name = "zgossip",
    version,
    about = "zgossip discovery nodes, compatible with CZMQ 4.2"
)]
struct Cli {
    /// Log at debug level to stderr; for `node`, also every state, event
    /// and action of the server sessions (as the VERBOSE command does).
    #[arg(short, long, global = true)]
    verbose: bool,
    /// Log lines as text (the default) or as JSON objects, one per line,
    /// for log collectors.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a local cluster whose nodes discover each other (the default).
    Demo(DemoArgs),
    /// Run N nodes in one process until every live node holds every tuple.
    Swarm(SwarmArgs),
    /// Run one node; print deliveries as they arrive. Text commands are
    /// read from standard input, one per line (listed below).
    #[command(after_help = zgossip_cli::command::help())]
    Node(NodeArgs),
    /// Print the endpoints that offer SERVICE, as the nodes at --connect
    /// know them (the Guide's name service), one per line; exit 1 if none is
    /// known within --timeout.
    Resolve(ResolveArgs),
    /// Make a CURVE key pair and save it in CZMQ's certificate format:
    /// PATH (public key) and PATH_secret (both keys, owner-only).
    Keygen(KeygenArgs),
    /// Run seeded schedules of faults on simulated clusters and check the
    /// invariants (docs/zgossip.md, "Correctness under faults"); exit 1 on any
    /// violation, printing each failing seed, shrunk, with a replay command.
    Simulate(SimulateArgs),
}

#[derive(Args)]
struct SimulateArgs {
    /// Number of schedules (seeds) to run.
    #[arg(long, default_value_t = 1000)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    seed_start: u64,
    /// Run this one seed (same as --seed-start S --seeds 1).
    #[arg(long)]
    seed: Option<u64>,
    /// Nodes per cluster (default: 3 to 7, drawn per seed).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    nodes: Option<u64>,
    /// Faults to inject: a comma-separated list of partition, crash, pause,
    /// clock, slow, churn, conflict, jitter; or all, or none.
    #[arg(long, default_value = "all")]
    faults: String,
    /// Node timers: real (the defaults) or fast (each a tenth).
    #[arg(long, default_value = "fast")]
    timers: String,
    /// Keep only these events of the schedule (comma-separated indices, as
    /// a shrunk replay command gives them).
    #[arg(long)]
    keep: Option<String>,
    /// Print a readable trace of every event (for one seed).
    #[arg(long)]
    trace: bool,
    /// Break node 0 on purpose, to see the checks catch it:
    /// skip-tombstones, ignore-leases, no-renewal.
    #[arg(long)]
    mutation: Option<String>,
    /// Report failing seeds as drawn, without shrinking them.
    #[arg(long)]
    no_shrink: bool,
    /// Threads to run schedules on (default: the machine's cores).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Args)]
struct KeygenArgs {
    /// Where to write the public certificate (the secret one goes beside it).
    path: std::path::PathBuf,
    /// Replace a key pair already there (its secret key is lost).
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct ResolveArgs {
    /// The service to look up (exactly as announced).
    service: String,
    /// Endpoint of a node to ask (repeatable); ENDPOINT=PUBLICKEY (Z85)
    /// asks a CURVE node with that public key.
    #[arg(short, long, required = true)]
    connect: Vec<String>,
    /// Our CURVE certificate for CURVE nodes (a secret one, as `keygen`
    /// writes); without it, a key pair made for this query, which only
    /// nodes without an allow-list accept.
    #[arg(long)]
    cert: Option<std::path::PathBuf>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    timeout: u64,
}

#[derive(Args)]
struct DemoArgs {
    /// How many nodes.
    #[arg(short, long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(2..=500))]
    nodes: u32,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    timeout: u64,
}

#[derive(Args)]
struct SwarmArgs {
    /// Number of nodes.
    #[arg(short, long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    nodes: u32,
    /// Number of tuples, each announced by one node (default: one per node).
    #[arg(short, long)]
    tuples: Option<u32>,
    /// How nodes connect: tree (each to a random earlier node), chain, star, graph.
    #[arg(long, default_value = "tree", value_parser = ["tree", "chain", "star", "graph"])]
    topology: String,
    /// Links per node for --topology graph.
    #[arg(short = 'k', long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=64))]
    links: u32,
    /// How nodes reach each other: memory (no sockets), inproc or tcp
    /// (ZeroMQ sockets on one reactor thread; limited by file descriptors).
    #[arg(long, default_value = "memory", value_parser = ["memory", "inproc", "tcp"])]
    transport: String,
    /// Share of nodes that leave during dissemination and rejoin, 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    churn: f64,
    /// Give up after this many seconds and say what did not converge.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=MAX_SECONDS))]
    timeout: u64,
    /// Seed of the random choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Lease of the nodes' tuples in milliseconds (`tuples/lease`); 0, the
    /// default: none, as CZMQ, so that runs measure dissemination alone
    /// (every owner's renewals would flood the swarm each third of it).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=86_400_000))]
    lease: u64,
    /// In memory only: simulated time, each message passed taking this
    /// many nanoseconds (e.g. 2000) and an idle mesh jumping to its next
    /// timer, so that message counts do not depend on the machine's load;
    /// times reported are simulated. 0, the default: the wall clock.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=1_000_000_000))]
    simulated_time: u64,
    /// Write the convergence curve as CSV.
    #[arg(long)]
    csv: Option<std::path::PathBuf>,
    /// Write the convergence curve as an SVG chart.
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
}

#[derive(Args)]
struct NodeArgs {
    /// Endpoint to accept peers on (repeatable), e.g. tcp://*:5670.
    #[arg(short, long)]
    bind: Vec<String>,
    /// Endpoint of another node to connect to (repeatable);
    /// ENDPOINT=PUBLICKEY (Z85) connects over CURVE to a server with that key.
    #[arg(short, long)]
    connect: Vec<String>,
    /// Our CURVE certificate (a secret one, as `keygen` writes), for
    /// ENDPOINT=PUBLICKEY connections; a node that also binds accepts CURVE
    /// peers only, those in --allow (which it then needs).
    #[arg(long)]
    cert: Option<std::path::PathBuf>,
    /// A directory of public certificates (CZMQ's zauth allow-list): the
    /// peers that may connect to a node with --cert.
    #[arg(long, requires = "cert")]
    allow: Option<std::path::PathBuf>,
    /// A tuple to announce, ENDPOINT=SERVICE (repeatable).
    #[arg(short, long, value_parser = parse_tuple)]
    announce: Vec<(String, String)>,
    /// A setting, PATH=VALUE, e.g. server/timeout=5000 (repeatable).
    #[arg(short, long, value_parser = parse_tuple)]
    set: Vec<(String, String)>,
    /// Stop after this many seconds (default: run until $TERM, the end of
    /// standard input, or a signal).
    #[arg(long = "for", value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    run_for: Option<u64>,
    /// Do not read commands from standard input, nor stop at its end (for
    /// running as a service, whose standard input is closed).
    #[arg(long)]
    no_stdin: bool,
    /// A config file (ZPL, as CZMQ's LOAD reads): SET paths, and a zgossip
    /// section with bind, connect and announce (see docs/zgossip.cfg).
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// zmqnet's peers file (JSON: {"replicas": [{"name", "ipaddr" or
    /// "host", "port"}, ...]}): bind the port of the replica called --name
    /// and connect to the others.
    #[arg(long, env = "PEERS_PATH", requires = "name")]
    peers: Option<std::path::PathBuf>,
    /// This node's name in the --peers file.
    #[arg(long)]
    name: Option<String>,
    /// Serve metrics (OpenMetrics text, as Prometheus scrapes) at
    /// http://ADDR/metrics, e.g. 127.0.0.1:9100.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
}

fn parse_tuple(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() && !v.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, found \"{text}\"")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = if cli.verbose { "debug" } else { "warn" };
    // Logs go through a queue to a thread of their own: a stderr that
    // nobody reads blocks that thread, never the reactor. When the queue is
    // full, lines are dropped (lossy) rather than waited for. The queue is
    // allocated (and touched) whole at start: 8,192 lines take 256 KiB,
    // where the crate's default of 128,000 took 4 MiB of every process.
    let (writer, _flush_on_exit) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .finish(std::io::stderr());
    let env_filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(writer)
        // Colours for a terminal only, never in a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // JSON escapes every string, a peer's too: one event, one line.
    if cli.log_format == "json" {
        logs.json().init();
    } else {
        logs.init();
    }
    let result = match cli.command.unwrap_or(Command::Demo(DemoArgs {
        nodes: 5,
        timeout: 10,
    })) {
        Command::Demo(args) => demo(&args),
        Command::Node(args) => node(&args, cli.verbose),
        Command::Swarm(args) => swarm(&args),
        Command::Resolve(args) => resolve(&args),
        Command::Keygen(args) => keygen(&args),
        Command::Simulate(args) => match simulate(&args) {
            Ok(code) => Ok(code),
            Err(e) => {
                eprintln!("zgossip simulate: {e}");
                return ExitCode::from(2);
            }
        },
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("zgossip: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What the demo has seen so far.
struct Progress {
    /// Tuples each node has learned.
    known: Vec<usize>,
    /// Nodes that know every tuple.
    complete: usize,
    start: Instant,
}

impl Progress {
    /// Print a delivery; returns how many tuples node `i` knows now.
    fn learned(&mut self, i: usize, d: &zgossip::Delivery) -> usize {
        self.known[i] += 1;
        println!(
            "[{:>6.1} ms] node-{i:<3} learned {} = {}",
            self.start.elapsed().as_secs_f64() * 1e3,
            Escaped(&d.endpoint),
            Escaped(&d.service)
        );
        if self.known[i] == self.known.len() {
            self.complete += 1;
        }
        self.known[i]
    }
}

/// A chain of nodes on tcp loopback; each announces its own endpoint.
/// Our certificate, and the public keys of every certificate in `allow`
/// (`None`: a node that only connects, which accepts no one).
fn security(
    cert: &std::path::Path,
    allow: Option<&std::path::Path>,
) -> Result<zgossip::Security, String> {
    use zgossip::cert::Certificate;
    let path = cert;
    let cert = Certificate::load(path).map_err(|e| format!("--cert: {e}"))?;
    if cert.secret.is_none() {
        return Err(format!(
            "--cert {}: no secret key (give the _secret file keygen wrote)",
            path.display()
        ));
    }
    let allowed = match allow {
        Some(allow) => Some(
            zgossip::cert::public_keys_in(allow)
                .map_err(|e| format!("--allow: {e}"))?
                .into_iter()
                .collect(),
        ),
        None => None,
    };
    Ok(zgossip::Security {
        cert,
        allowed,
        domain: None,
    })
}

/// ENDPOINT=KEY: a CURVE server's endpoint and public key (a Z85 key is 40
/// characters, and may hold '=').
fn curve_target(target: &str) -> Option<(&str, &str)> {
    let split = target.len().checked_sub(41)?;
    if split == 0 || target.as_bytes().get(split) != Some(&b'=') {
        return None;
    }
    Some((target.get(..split)?, target.get(split + 1..)?))
}

fn keygen(args: &KeygenArgs) -> Result<ExitCode, zgossip::Error> {
    use zgossip::cert::{secret_path, Certificate};
    let secret = secret_path(&args.path);
    if !args.force {
        // symlink_metadata: a dangling link is still something we would
        // write through.
        if let Some(there) = [&args.path, &secret]
            .into_iter()
            .find(|p| p.symlink_metadata().is_ok())
        {
            eprintln!(
                "zgossip: {} exists: keygen does not overwrite a key pair (--force replaces it, and its secret key is lost)",
                there.display()
            );
            return Ok(ExitCode::from(2));
        }
    }
    let saved = Certificate::generate().and_then(|cert| cert.save(&args.path).map(|()| cert));
    match saved {
        Ok(cert) => {
            println!("PUBLIC {}", cert.public);
            println!(
                "WROTE {} {}",
                args.path.display(),
                secret_path(&args.path).display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("zgossip: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// After the first endpoint that offers the service, how long the table
/// may stay quiet before the answer is complete: the nodes replay their
/// whole table at once, so a pause means the replay is over.
const RESOLVE_QUIET: Duration = Duration::from_millis(200);

fn resolve(args: &ResolveArgs) -> Result<ExitCode, zgossip::Error> {
    let node = Node::new("resolve")?;
    let curve = args.connect.iter().any(|t| curve_target(t).is_some());
    if curve {
        let cert = match &args.cert {
            Some(path) => security(path, None),
            None => zgossip::cert::Certificate::generate()
                .map(|cert| zgossip::Security {
                    cert,
                    allowed: None,
                    domain: None,
                })
                .map_err(|e| e.to_string()),
        };
        match cert {
            Ok(security) => node.secure(security)?,
            Err(e) => {
                eprintln!("zgossip: {e}");
                return Ok(ExitCode::from(2));
            }
        }
    } else if args.cert.is_some() {
        eprintln!(
            "zgossip: --cert is for CURVE nodes: give their key as --connect ENDPOINT=PUBLICKEY"
        );
        return Ok(ExitCode::from(2));
    }
    for target in &args.connect {
        match curve_target(target) {
            Some((endpoint, key)) => node.connect_curve(endpoint, key)?,
            None => node.connect(target)?,
        }
    }
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut found: Vec<String> = Vec::new();
    let mut quiet_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let until = match quiet_until {
            Some(at) => at.min(deadline),
            None => deadline,
        };
        if now >= until {
            break;
        }
        let Some(delivery) = node.recv_delivery(until - now) else {
            continue;
        };
        if found.is_empty() && delivery.service != args.service {
            continue;
        }
        if delivery.service == args.service {
            if !found.contains(&delivery.endpoint) {
                found.push(delivery.endpoint);
            }
        } else {
            // A later value for a found endpoint may name another service.
            found.retain(|e| *e != delivery.endpoint);
        }
        quiet_until = Some(Instant::now() + RESOLVE_QUIET);
    }
    if found.is_empty() {
        eprintln!(
            "no endpoint offers \"{}\" (asked {} for {} s)",
            Escaped(&args.service),
            args.connect.join(", "),
            args.timeout
        );
        return Ok(ExitCode::FAILURE);
    }
    for endpoint in &found {
        println!("{}", Escaped(endpoint));
    }
    Ok(ExitCode::SUCCESS)
}

fn demo(args: &DemoArgs) -> Result<ExitCode, zgossip::Error> {
    let count = args.nodes as usize;
    println!("Starting {count} zgossip nodes on tcp loopback; each connects to the one before it");
    println!("and announces a service at its own endpoint. Watch the services spread:\n");
    let reactor = Reactor::start().map_err(|_| zgossip::Error::Stopped)?;
    let start = Instant::now();
    let mut nodes: Vec<(Node, String)> = Vec::with_capacity(count);
    for i in 0..count {
        let node = Node::on(&reactor, &format!("node-{i}"), Settings::default())?;
        node.bind("tcp://127.0.0.1:*")?;
        let endpoint = format!("tcp://127.0.0.1:{}", node.port()?);
        if let Some((_, previous)) = nodes.last() {
            node.connect(previous)?;
        }
        nodes.push((node, endpoint));
    }
    for (i, (node, endpoint)) in nodes.iter().enumerate() {
        node.announce(endpoint, &format!("service-{i}"))?;
    }
    let deadline = start + Duration::from_secs(args.timeout);
    let mut progress = Progress {
        known: vec![0; count],
        complete: 0,
        start,
    };
    let mut laggard = 0;
    while progress.complete < count && Instant::now() < deadline {
        let mut idle = true;
        for (i, (node, _)) in nodes.iter().enumerate() {
            for d in node.try_deliveries() {
                idle = false;
                progress.learned(i, &d);
            }
        }
        if idle {
            // Wait for the next delivery on a node still missing tuples.
            match nodes[laggard].0.recv_delivery(Duration::from_millis(50)) {
                Some(d) if progress.learned(laggard, &d) < count => {}
                _ => laggard = (laggard + 1) % count,
            }
        }
    }
    let complete = progress.complete;
    let elapsed = start.elapsed().as_secs_f64() * 1e3;
    if complete == count {
        println!("\nAll {count} nodes know all {count} services after {elapsed:.1} ms:");
        for (i, (node, endpoint)) in nodes.iter().enumerate() {
            println!("  node-{i:<3} at {endpoint}: STATUS {}", node.status()?);
        }
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "\nNot converged after {} s: {complete} of {count} nodes complete",
            args.timeout
        );
        Ok(ExitCode::FAILURE)
    }
}

/// What the flags ask that cannot be done, in the flags' words.
fn node_args_error(args: &NodeArgs) -> Option<String> {
    let curve = args.connect.iter().find(|t| curve_target(t).is_some());
    if let (Some(target), None) = (curve, &args.cert) {
        return Some(format!(
            "--connect {target} connects over CURVE and needs --cert (our certificate: `zgossip keygen PATH` makes one)"
        ));
    }
    let binds = !args.bind.is_empty() || args.peers.is_some();
    if args.cert.is_some() && args.allow.is_none() && binds {
        return Some(
            "--cert on a node that binds needs --allow DIR: the public certificates of the peers it accepts".into(),
        );
    }
    None
}

fn node(args: &NodeArgs, cli_verbose: bool) -> Result<ExitCode, zgossip::Error> {
    let node = Node::new("zgossip")?;
    // The file first; flags add to it (and settings override it).
    if let Some(path) = &args.config {
        let applied = zgossip_cli::config::NodeConfig::load(path)
            .and_then(|config| config.apply(&node, &path.display().to_string()));
        if let Err(e) = applied {
            eprintln!("zgossip: {e}");
            return Ok(ExitCode::from(2));
        }
        println!("LOADED {}", path.display());
    }
    for (path, value) in &args.set {
        node.set(path, value)?;
    }
    let _metrics = match &args.metrics {
        Some(address) => match zgossip_cli::metrics::serve(address, node.probe()) {
            Ok(server) => {
                println!("METRICS http://{}/metrics", server.address());
                Some(server)
            }
            Err(e) => {
                eprintln!("zgossip: {e}");
                return Ok(ExitCode::from(2));
            }
        },
        None => None,
    };
    if let Some(e) = node_args_error(args) {
        eprintln!("zgossip: {e}");
        return Ok(ExitCode::from(2));
    }
    if cli_verbose {
        node.verbose()?;
    }
    if let Some(cert) = &args.cert {
        match security(cert, args.allow.as_deref()) {
            Ok(security) => {
                println!(
                    "CURVE {} peers allowed",
                    security.allowed.as_ref().map_or(0, Vec::len)
                );
                node.secure(security)?;
            }
            Err(e) => {
                eprintln!("zgossip: {e}");
                return Ok(ExitCode::from(2));
            }
        }
    }
    let mut bind = args.bind.clone();
    let mut connect = args.connect.clone();
    if let (Some(path), Some(name)) = (&args.peers, &args.name) {
        match zgossip_cli::peers_file::load(path, name) {
            Ok(plan) => {
                bind.push(plan.bind);
                connect.extend(plan.connect);
            }
            Err(e) => {
                eprintln!("zgossip: {e}");
                return Ok(ExitCode::from(2));
            }
        }
    }
    for endpoint in &bind {
        node.bind(endpoint)?;
        println!("BOUND {endpoint} PORT {}", node.port()?);
    }
    for target in &connect {
        match curve_target(target) {
            Some((endpoint, key)) => {
                node.connect_curve(endpoint, key)?;
                println!("CONNECTING {endpoint} CURVE");
            }
            _ => {
                node.connect(target)?;
                println!("CONNECTING {target}");
            }
        }
    }
    for (endpoint, service) in &args.announce {
        node.announce(endpoint, service)?;
    }
    // Commands on stdin, handled on their own thread; its end (EOF) or
    // `$TERM` closes the channel.
    let (cmd_tx, cmd_rx) = std::sync::mpsc::channel::<TextCommand>();
    if !args.no_stdin {
        std::thread::spawn(move || read_commands(std::io::stdin().lock(), &cmd_tx));
    }
    let deadline = match args.run_for {
        Some(s) => Some(
            Instant::now()
                .checked_add(Duration::from_secs(s))
                .ok_or(zgossip::Error::Stopped)?,
        ),
        None => None,
    };
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(ExitCode::SUCCESS);
        }
        loop {
            match cmd_rx.try_recv() {
                Ok(command) => match command.execute(&node) {
                    Ok(Some(reply)) => println!("{reply}"),
                    Ok(None) => {}
                    Err(e) => eprintln!("zgossip: {e}"),
                },
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                // `$TERM` or the end of standard input.
                Err(std::sync::mpsc::TryRecvError::Disconnected) if !args.no_stdin => {
                    return Ok(ExitCode::SUCCESS)
                }
                Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
            }
        }
        for peer in node.try_peer_events() {
            let kind = match peer.kind {
                zgossip::PeerKind::Session => "session",
                zgossip::PeerKind::Remote => "remote",
            };
            let up = if peer.up { "UP" } else { "DOWN" };
            println!("PEER {up} {kind} {}", EscapedWord(&peer.name));
        }
        match node.recv_delivery_timeout(Duration::from_millis(50)) {
            // Strings from the network, escaped: one delivery, one line.
            Ok(d) => println!(
                "{} {} {}",
                if d.removed { "REMOVE" } else { "DELIVER" },
                EscapedWord(&d.endpoint),
                Escaped(&d.service)
            ),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Err(zgossip::Error::Stopped),
        }
    }
}

/// Read text commands until `$TERM` or the end of input. Any bytes may
/// come: a line that is not UTF-8, or not a command, gets an error on
/// stderr and the reader goes on.
fn read_commands(mut input: impl BufRead, commands: &std::sync::mpsc::Sender<TextCommand>) {
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("zgossip: cannot read standard input: {e}");
                return;
            }
        }
        number += 1;
        let Ok(text) = std::str::from_utf8(&line) else {
            eprintln!("zgossip: line {number} of standard input is not UTF-8: ignored");
            continue;
        };
        match TextCommand::parse(text) {
            Ok(Some(TextCommand::Term)) => return,
            Ok(Some(command)) => {
                if commands.send(command).is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => eprintln!("zgossip: line {number}: {e}"),
        }
    }
}

fn swarm(args: &SwarmArgs) -> Result<ExitCode, zgossip::Error> {
    use zgossip_cli::swarm::{self, SwarmConfig, Topology, Transport};
    // Thousands of nodes' small heaps in one process: transparent huge
    // pages would make each allocator region resident 2 MB at a time
    // (1,000 nodes over inproc: 127 MB of RSS with them, 116 MB without,
    // and slower, the kernel zeroing huge pages). A node alone in its
    // process keeps the system's setting.
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_THP_DISABLE takes integer arguments only
    // and changes nothing but the process's huge-page policy.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    if !(0.0..=1.0).contains(&args.churn) {
        eprintln!(
            "zgossip: --churn must be between 0 and 1, found {}",
            args.churn
        );
        return Ok(ExitCode::from(2));
    }
    let topology = match args.topology.as_str() {
        "chain" => Topology::Chain,
        "star" => Topology::Star,
        "graph" => Topology::Graph(args.links as usize),
        _ => Topology::Tree,
    };
    let transport = match args.transport.as_str() {
        "inproc" => Transport::Inproc,
        "tcp" => Transport::Tcp,
        _ => Transport::Memory,
    };
    let config = SwarmConfig {
        transport,
        nodes: args.nodes as usize,
        tuples: args.tuples.unwrap_or(args.nodes) as usize,
        topology,
        churn: args.churn,
        timeout: Duration::from_secs(args.timeout),
        seed: args.seed,
        settings: Settings {
            lease: (args.lease > 0).then(|| Duration::from_millis(args.lease)),
            ..Settings::default()
        },
        simulated_time: (args.simulated_time > 0)
            .then(|| Duration::from_nanos(args.simulated_time)),
    };
    println!(
        "swarm: {} nodes ({}), {} tuples, churn {:.0}%, over {}",
        config.nodes,
        args.topology,
        config.tuples,
        config.churn * 100.0,
        args.transport
    );
    // Hidden when stderr is not a terminal (indicatif's own check).
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(config.nodes as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "  [{bar:40}] {pos:>7}/{len} complete  {elapsed_precise}",
    ) {
        bar.set_style(style.progress_chars("#>-"));
    }
    let report = swarm::run_any(&config, |s| {
        bar.set_length(s.live as u64);
        bar.set_position(s.complete as u64);
    });
    bar.finish_and_clear();
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            eprintln!("zgossip: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let ms = report.elapsed.as_secs_f64() * 1e3;
    if report.converged {
        println!(
            "converged: every live node holds all {} tuples after {ms:.1} ms",
            config.tuples
        );
    } else {
        println!(
            "NOT converged after {ms:.1} ms: {} live nodes incomplete, e.g. (node, tuples held) {:?}",
            report.incomplete_count, report.incomplete
        );
    }
    println!(
        "  setup (nodes, links, HELLOs): {:.1} ms",
        report.setup.as_secs_f64() * 1e3
    );
    println!("  nodes that left and rejoined: {}", report.churned);
    println!(
        "  messages: {} ({:.2} per tuple per node), duplicates: {}",
        report.messages,
        report.messages_per_tuple_per_node(&config),
        report.duplicates
    );
    let by_type: Vec<String> = zgossip::MESSAGE_TYPES
        .iter()
        .zip(report.sent_by_type)
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    println!("  sent by type: {}", by_type.join(", "));
    println!(
        "  sends refused by a full queue: {}, re-synchronisations: {}",
        report.refused_sends, report.resyncs
    );
    if let Some(kib) = report.peak_rss_kib {
        println!("  peak memory: {:.1} MiB", kib as f64 / 1024.0);
    }
    if let Some(threads) = report.threads {
        println!("  threads: {threads}");
    }
    let title = format!(
        "{} nodes, {} tuples, {} topology, churn {:.0}%",
        config.nodes,
        config.tuples,
        args.topology,
        config.churn * 100.0
    );
    for (path, content) in [(&args.csv, report.csv()), (&args.plot, report.svg(&title))] {
        if let Some(path) = path {
            if let Err(e) = std::fs::write(path, content) {
                eprintln!("zgossip: cannot write {}: {e}", path.display());
                return Ok(ExitCode::FAILURE);
            }
            println!("  wrote {}", path.display());
        }
    }
    Ok(if report.converged {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn simulate(args: &SimulateArgs) -> Result<ExitCode, String> {
    use zgossip::sim;
    let plan = sim::Plan {
        nodes: args.nodes.map(|n| n as usize),
        faults: sim::parse_faults(&args.faults).map_err(|e| format!("--faults: {e}"))?,
        timers: args.timers.parse().map_err(|e| format!("--timers: {e}"))?,
    };
    let options = sim::Options {
        trace: args.trace,
        mutation: args
            .mutation
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| format!("--mutation: {e}"))?,
    };
    let (first, count) = match args.seed {
        Some(seed) => (seed, 1),
        None => (args.seed_start, args.seeds),
    };
    let keep = match &args.keep {
        None => None,
        Some(list) => Some(
            list.split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.trim().parse::<usize>())
                .collect::<Result<Vec<usize>, _>>()
                .map_err(|e| format!("--keep: expected event numbers separated by commas: {e}"))?,
        ),
    };
    if keep.is_some() && count != 1 {
        return Err("--keep names events of one schedule: give --seed too".into());
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let started = Instant::now();
    let outcomes = match &keep {
        Some(keep) => {
            let schedule = sim::Schedule::draw(first, &plan).keeping(keep);
            let mut outcome = sim::run_caught(&schedule, &options);
            outcome.kept = Some(keep.clone());
            vec![outcome]
        }
        None => sim::run_seeds(first, count, &plan, &options, threads),
    };
    let mut violations = 0;
    for outcome in &outcomes {
        if args.trace {
            for line in &outcome.trace {
                println!("{line}");
            }
            println!(
                "seed {}: {} nodes ({}), {} events, {} messages, digest {:016x}, converged {:?} after the heal",
                outcome.schedule.seed,
                outcome.schedule.nodes,
                outcome.schedule.topology.name(),
                outcome.counts.events,
                outcome.counts.delivered,
                outcome.digest,
                outcome.converged_after
            );
        }
        if outcome.violations.is_empty() {
            continue;
        }
        violations += outcome.violations.len();
        let shown = if args.no_shrink || args.trace || keep.is_some() {
            outcome.clone()
        } else {
            sim::shrink(
                outcome,
                &sim::Options {
                    trace: false,
                    ..options.clone()
                },
            )
        };
        for v in &outcome.violations {
            println!("seed {}: {v}", outcome.schedule.seed);
        }
        let events = shown
            .kept
            .as_ref()
            .map_or(shown.schedule.events.len(), Vec::len);
        println!(
            "  replay ({} nodes, {} events): {}",
            shown.schedule.nodes,
            events,
            shown.replay_command()
        );
    }
    println!(
        "simulate: {} schedules, {violations} invariant violations ({:.1} s)",
        outcomes.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(if violations > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
