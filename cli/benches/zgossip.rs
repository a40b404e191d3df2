//! Our zgossip node beside CZMQ 4.2's and raw libzmq, in one run:
//!
//! * PING/PONG round trips, sequential and pipelined (100 in flight), over
//!   inproc, ipc and tcp loopback, with a raw libzmq ROUTER that echoes every
//!   message as the ceiling;
//! * ANNOUNCE ingest: tuples per second until STATUS reports them all;
//! * fan-out: the application announces tuples to 10, 100 and 1,000
//!   connected sessions; deliveries per second;
//! * the send path's encoding, a PONG and an ANNOUNCE for a ROUTER peer:
//!   into a list of frames (three allocations, as before) and into one
//!   packet (one), messages per second;
//! * a swarm of 1,000 nodes over inproc, `zgossip swarm` beside CZMQ's
//!   actors (`testkit/c/czmq_swarm.c`): time to converge, peak memory;
//! * joining: a fresh node connects over tcp loopback to one that holds
//!   10,000, 100,000 and 1,000,000 tuples; from its connect until it
//!   holds them all: ours with batches (the default), ours one ANNOUNCE a
//!   tuple (`server/batches 0`), CZMQ's;
//! * idle renewal traffic: 100 nodes (in memory, simulated time) holding
//!   1,000, 10,000 and 100,000 tuples, owned evenly, every tuple leased
//!   (30 s), once they have settled: bytes per second.
//!
//! Each side drives its server with raw DEALER sockets the same way, in its
//! own process (inproc only works within one): Rust for ours and raw libzmq,
//! `testkit/c/czmq_bench.c` for CZMQ. Run with
//! `cargo bench --bench zgossip` (`-- --quick` for a shorter run; other
//! arguments keep only the measures whose name contains one of them, e.g.
//! `-- pipelined`; `--ours` measures only our node).

use zgossip_testkit::bench as support;

use std::process::Command;

// As the zgossip binary ships: many small allocations per message.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use support::{dealer, pingpong, recv, PING};
use zgossip::msg::{Announce, ZgossipMsg};
use zgossip::{Codec, Node};
use zgossip_cli::swarm::tuple;
use zproto_runtime::reactor;

const HELLO: [u8; 4] = [0xaa, 0xa0, 0x01, 0x01];

/// A server under test, bound; `endpoint` is where to connect.
enum Server {
    Ours(Node),
    Raw(std::thread::JoinHandle<()>, String),
}

/// A fresh endpoint per run: libzmq frees a closed socket's name later.
fn endpoint(transport: &str, who: &str) -> String {
    static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    match transport {
        "inproc" => format!("inproc://bench-{who}-{run}"),
        "ipc" => format!(
            "ipc:///tmp/zgossip-bench-{who}-{}-{run}.ipc",
            std::process::id()
        ),
        _ => "tcp://127.0.0.1:*".to_owned(),
    }
}

fn ours(transport: &str) -> (Server, String) {
    let node = Node::new("bench").expect("node");
    node.set("server/timeout", "600000").expect("set");
    let wanted = endpoint(transport, "ours");
    node.bind(&wanted).expect("bind");
    let at = if transport == "tcp" {
        format!("tcp://127.0.0.1:{}", node.port().expect("port"))
    } else {
        wanted
    };
    (Server::Ours(node), at)
}

/// Measure `f` against a fresh node of ours on inproc.
fn with_our_node(f: impl FnOnce(&Node, &str) -> u128) -> u128 {
    let node = Node::new("bench").expect("node");
    node.set("server/timeout", "600000").expect("set");
    let at = endpoint("inproc", "ours");
    node.bind(&at).expect("bind");
    f(&node, &at)
}

/// A ROUTER that echoes every message: the most a server can do.
fn raw(transport: &str) -> (Server, String) {
    let router = reactor::socket(zmq::ROUTER).expect("router");
    router.set_linger(0).expect("linger");
    router.bind(&endpoint(transport, "raw")).expect("bind");
    let at = router
        .get_last_endpoint()
        .expect("endpoint")
        .expect("utf-8");
    let thread = std::thread::spawn(move || {
        // Stops on the empty message the bench sends when done.
        while let Ok(frames) = router.recv_multipart(0) {
            if frames.len() == 2 && frames[1].is_empty() {
                break;
            }
            let _ = router.send_multipart(frames, 0);
        }
    });
    (Server::Raw(thread, at.clone()), at)
}

impl Server {
    fn stop(self) {
        match self {
            // Dropping the node stops it.
            Server::Ours(node) => drop(node),
            Server::Raw(thread, at) => {
                let d = dealer(&at);
                let _ = d.send(&b""[..], 0);
                let _ = thread.join();
            }
        }
    }
}

fn announce_frame(n: usize) -> Vec<u8> {
    let (endpoint, service) = tuple(n);
    let message = ZgossipMsg::from(Announce {
        endpoint,
        service,
        ttl: 0,
        ..Default::default()
    });
    message.encode().expect("encode").remove(0)
}

/// HELLO, then `count` ANNOUNCEs; nanoseconds until STATUS says `count`.
fn ingest(node: &Node, endpoint: &str, count: usize) -> u128 {
    let d = dealer(endpoint);
    d.send(&HELLO[..], 0).expect("send");
    d.send(&PING[..], 0).expect("send");
    recv(&d);
    let frames: Vec<Vec<u8>> = (0..count).map(announce_frame).collect();
    let start = Instant::now();
    for frame in frames {
        d.send(frame, 0).expect("send");
    }
    while node.status().expect("status") < count {}
    start.elapsed().as_nanos()
}

/// `sessions` peers connected; the application announces `count` tuples;
/// nanoseconds until every peer has them all.
fn fanout(node: &Node, endpoint: &str, sessions: usize, count: usize) -> u128 {
    let dealers: Vec<zmq::Socket> = (0..sessions).map(|_| dealer(endpoint)).collect();
    for d in &dealers {
        d.send(&HELLO[..], 0).expect("send");
        d.send(&PING[..], 0).expect("send");
    }
    for d in &dealers {
        recv(d);
    }
    let start = Instant::now();
    for n in 0..count {
        let (e, s) = tuple(1_000_000 + n);
        node.announce(&e, &s).expect("announce");
    }
    for d in &dealers {
        for _ in 0..count {
            recv(d);
        }
    }
    start.elapsed().as_nanos()
}

/// The CZMQ side, or None without libczmq.
fn czmq(args: &[&str]) -> Option<u128> {
    let program = zgossip_testkit::czmq::BENCH?;
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        eprintln!(
            "czmq_bench {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// The best of `runs` rounds of each side, the sides taking turns within
/// a round, so that a burst of noise on the machine hits all of them alike.
fn best_of(
    runs: usize,
    mut ours: impl FnMut() -> u128,
    mut raw: Option<&mut dyn FnMut() -> u128>,
    mut czmq: impl FnMut() -> Option<u128>,
) -> (u128, Option<u128>, Option<u128>) {
    let (mut o, mut r, mut c) = (u128::MAX, None::<u128>, None::<u128>);
    for _ in 0..runs {
        o = o.min(ours());
        if let Some(raw) = raw.as_mut() {
            let ns = raw();
            r = Some(r.map_or(ns, |best| best.min(ns)));
        }
        if let Some(ns) = czmq() {
            c = Some(c.map_or(ns, |best| best.min(ns)));
        }
    }
    (o, r, c)
}

fn per_second(items: usize, ns: u128) -> f64 {
    items as f64 * 1e9 / ns as f64
}

fn fmt_rate(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2} M/s", rate / 1e6)
    } else {
        format!("{:.0} k/s", rate / 1e3)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only_ours = args.iter().any(|a| a == "--ours");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let wanted =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    let scale = if quick { 5 } else { 1 };
    let runs = if quick { 1 } else { 5 };
    let (seq, piped, window) = (20_000 / scale, 100_000 / scale, 100);
    if zgossip_testkit::czmq::BENCH.is_none() {
        println!("(libczmq-dev is not installed: the CZMQ column is empty)");
    }
    println!("zgossip benchmark: best of {runs} interleaved run(s); rates are round trips, tuples or deliveries per second\n");
    println!("| measure | ours | CZMQ 4.2 | raw libzmq | ours / CZMQ | ours / raw |");
    println!("|---|---:|---:|---:|---:|---:|");
    let row = |name: &str, items: usize, ours: u128, czmq: Option<u128>, raw: Option<u128>| {
        let o = per_second(items, ours);
        let c = czmq.map(|ns| per_second(items, ns));
        let r = raw.map(|ns| per_second(items, ns));
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            fmt_rate(o),
            c.map_or("-".into(), fmt_rate),
            r.map_or("-".into(), fmt_rate),
            c.map_or("-".into(), |c| format!("{:.2}x", o / c)),
            r.map_or("-".into(), |r| format!("{:.2}", o / r)),
        );
    };
    for transport in ["inproc", "ipc", "tcp"] {
        for (label, count, w) in [("sequential", seq, 1), ("pipelined", piped, window)] {
            let name = format!("PING/PONG {label}, {transport}");
            if !wanted(&name) {
                continue;
            }
            let mut raw_side = || {
                let (server, at) = raw(transport);
                let ns = pingpong(&at, count, w);
                server.stop();
                ns
            };
            let (ours_ns, raw_ns, czmq_ns) = best_of(
                runs,
                || {
                    let (server, at) = ours(transport);
                    let ns = pingpong(&at, count, w);
                    server.stop();
                    ns
                },
                (!only_ours).then_some(&mut raw_side as &mut dyn FnMut() -> u128),
                || {
                    if only_ours {
                        return None;
                    }
                    czmq(&["pingpong", transport, &count.to_string(), &w.to_string()])
                },
            );
            row(&name, count, ours_ns, czmq_ns, raw_ns);
        }
    }
    let tuples = 20_000 / scale;
    if wanted("ANNOUNCE ingest, inproc") {
        let (ours_ns, _, czmq_ns) = best_of(
            runs,
            || with_our_node(|node, at| ingest(node, at, tuples)),
            None,
            || {
                if only_ours {
                    return None;
                }
                czmq(&["ingest", "inproc", &tuples.to_string()])
            },
        );
        row("ANNOUNCE ingest, inproc", tuples, ours_ns, czmq_ns, None);
    }
    for (sessions, count) in [
        (10, 2000 / scale),
        (100, 200 / scale),
        (1000, 20 / scale.min(4)),
    ] {
        let name = format!("fan-out to {sessions} sessions, inproc");
        if !wanted(&name) {
            continue;
        }
        let (ours_ns, _, czmq_ns) = best_of(
            runs,
            || with_our_node(|node, at| fanout(node, at, sessions, count)),
            None,
            || {
                if only_ours {
                    return None;
                }
                czmq(&[
                    "fanout",
                    "inproc",
                    &sessions.to_string(),
                    &count.to_string(),
                ])
            },
        );
        row(&name, sessions * count, ours_ns, czmq_ns, None);
    }
    if wanted("send-path encoding") {
        send_path(runs, 1_000_000 / scale);
    }
    if wanted("swarm") {
        swarm(if quick { 1 } else { 2 }, 1000 / scale);
    }
    if wanted("join") {
        let sizes: &[usize] = if quick {
            &[10_000, 100_000]
        } else {
            &[10_000, 100_000, 1_000_000]
        };
        join(if quick { 1 } else { 3 }, sizes, only_ours);
    }
    if wanted("renewal") {
        let sizes: &[usize] = if quick {
            &[1_000, 10_000]
        } else {
            &[1_000, 10_000, 100_000]
        };
        renewal(100, sizes);
    }
}

/// Nanoseconds from a fresh node's connect until it holds `count` tuples,
/// over tcp loopback, from a node of ours that holds them (`batches`:
/// `server/batches`); `None` past two minutes.
fn our_join(count: usize, batches: bool) -> Option<u128> {
    let room = (count + 10).to_string();
    let server = Node::new("server").expect("node");
    server.set("limits/tuples", &room).expect("set");
    server
        .set("server/batches", if batches { "1" } else { "0" })
        .expect("set");
    server.bind("tcp://127.0.0.1:*").expect("bind");
    let at = format!("tcp://127.0.0.1:{}", server.port().expect("port"));
    for n in 0..count {
        let endpoint = format!(
            "tcp://10.{}.{}.{}:9000",
            (n >> 16) & 255,
            (n >> 8) & 255,
            n & 255
        );
        server
            .announce(&endpoint, &format!("service-{n}"))
            .expect("announce");
    }
    while server.status().expect("status") < count {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let joiner = Node::new("joiner").expect("node");
    joiner.set("limits/tuples", &room).expect("set");
    let start = Instant::now();
    joiner.connect(&at).expect("connect");
    while joiner.status().expect("status") < count {
        if start.elapsed() > std::time::Duration::from_secs(120) {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Some(start.elapsed().as_nanos())
}

fn join(runs: usize, sizes: &[usize], only_ours: bool) {
    println!("\n| join over tcp loopback | ours, batches | ours, one ANNOUNCE a tuple | CZMQ 4.2 | batches / CZMQ |");
    println!("|---|---:|---:|---:|---:|");
    let best = |a: Option<u128>, b: Option<u128>| match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    for &count in sizes {
        let (mut batched, mut plain, mut czmq_ns) = (None, None, None);
        for _ in 0..runs {
            batched = best(batched, our_join(count, true));
            plain = best(plain, our_join(count, false));
            if !only_ours {
                let ns = czmq(&["join", "tcp", &count.to_string()]).filter(|&ns| ns > 0);
                czmq_ns = best(czmq_ns, ns);
            }
        }
        let show = |ns: Option<u128>| {
            ns.map_or("over 120 s".to_owned(), |ns| {
                format!(
                    "{:.2} s ({})",
                    ns as f64 / 1e9,
                    fmt_rate(per_second(count, ns))
                )
            })
        };
        let ratio = match (batched, czmq_ns) {
            (Some(o), Some(c)) => format!("{:.2}x", c as f64 / o as f64),
            _ => "-".to_owned(),
        };
        let czmq_cell = if only_ours || zgossip_testkit::czmq::BENCH.is_none() {
            "-".to_owned()
        } else {
            show(czmq_ns)
        };
        println!(
            "| {count} tuples | {} | {} | {czmq_cell} | {ratio} |",
            show(batched),
            show(plain)
        );
    }
}

/// Idle traffic of `nodes` nodes (each linked to the next and to the one
/// seven on, in memory, simulated time) holding `tuples` leased tuples,
/// owned evenly: bytes and messages per second once settled.
fn renewal(nodes: usize, sizes: &[usize]) {
    use std::time::Duration;
    use zgossip::mesh::Mesh;
    use zgossip::MESSAGE_TYPES;
    println!("\n| idle renewal traffic, {nodes} nodes, lease 30 s | bytes/s, all nodes | per node | ANNOUNCE/s | ALIVE/s |");
    println!("|---|---:|---:|---:|---:|");
    let kind = |name: &str| MESSAGE_TYPES.iter().position(|k| *k == name).unwrap_or(0);
    for &tuples in sizes {
        let mut now = Instant::now();
        let mut mesh = Mesh::new();
        mesh.forget_deliveries();
        let settings = zgossip::Settings {
            limits: zgossip::Limits {
                tuples: tuples + 10,
                ..zgossip::Limits::default()
            },
            ..zgossip::Settings::default()
        };
        for _ in 0..nodes {
            mesh.add(settings);
        }
        for n in 0..nodes {
            mesh.connect(n, (n + 1) % nodes, now);
            mesh.connect(n, (n + 7) % nodes, now);
        }
        for t in 0..tuples {
            let (endpoint, service) = tuple(t);
            let _ = mesh.announce(t % nodes, &endpoint, &service, now);
        }
        let step = |mesh: &mut Mesh, now: &mut Instant, ms: u64| {
            for _ in 0..ms / 100 {
                *now += Duration::from_millis(100);
                mesh.tick(*now);
            }
        };
        // Settled: every node holds every tuple, and the synchronisations
        // that followed the connections are over.
        let deadline = now + Duration::from_secs(600);
        while (0..nodes).any(|n| mesh.node(n).map_or(0, |node| node.tuples().len()) < tuples) {
            if now > deadline {
                println!("| {tuples} tuples | did not settle | | | |");
                return;
            }
            step(&mut mesh, &mut now, 1_000);
        }
        let totals = |mesh: &Mesh| {
            (0..nodes).fold((0u64, 0u64, 0u64), |(b, a, h), n| {
                let stats = mesh.node(n).map(|node| node.stats()).unwrap_or_default();
                (
                    b + stats.bytes_sent,
                    a + stats.sent_by_type[kind("ANNOUNCE")]
                        + stats.sent_by_type[kind("ANNOUNCES")],
                    h + stats.sent_by_type[kind("ALIVE")],
                )
            })
        };
        // ... and no tuple moved for ten seconds (the first
        // synchronisations send every remote's table to its server).
        loop {
            let before = totals(&mesh);
            step(&mut mesh, &mut now, 10_000);
            if totals(&mesh).1 == before.1 {
                break;
            }
            if now > deadline {
                println!("| {tuples} tuples | did not settle | | | |");
                return;
            }
        }
        let before = totals(&mesh);
        let seconds = 60;
        step(&mut mesh, &mut now, seconds * 1_000);
        let after = totals(&mesh);
        let per_s = |a: u64, b: u64| (a - b) as f64 / seconds as f64;
        let bytes = per_s(after.0, before.0);
        println!(
            "| {tuples} tuples | {:.0} | {:.0} | {:.1} | {:.1} |",
            bytes,
            bytes / nodes as f64,
            per_s(after.1, before.1),
            per_s(after.2, before.2)
        );
    }
}

/// What a swarm run printed: seconds to converge and peak memory (MB).
#[derive(Clone, Copy)]
struct SwarmRun {
    seconds: f64,
    peak_mib: f64,
}

/// `zgossip swarm --nodes N --transport inproc` (a process of its own, so
/// that its peak memory is its own) beside CZMQ's actors in the same
/// scenario (`testkit/c/czmq_swarm.c`): a random tree, one tuple a node.
fn swarm(runs: usize, nodes: usize) {
    let n = nodes.to_string();
    let ours = || -> Option<SwarmRun> {
        let out = Command::new(env!("CARGO_BIN_EXE_zgossip"))
            .args([
                "swarm",
                "--nodes",
                &n,
                "--transport",
                "inproc",
                "--timeout",
                "60",
            ])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let after = |line: &str, key: &str| -> Option<f64> {
            line.split(key)
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        };
        let ms = text.lines().find_map(|l| after(l, "tuples after "))?;
        let mib = text.lines().find_map(|l| after(l, "peak memory: "))?;
        Some(SwarmRun {
            seconds: ms / 1e3,
            peak_mib: mib,
        })
    };
    let czmq = || -> Option<SwarmRun> {
        let program = zgossip_testkit::czmq::SWARM?;
        let out = Command::new(program)
            .args([n.as_str(), "tree", "1", "1", "60"])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |key: &str| -> Option<f64> {
            text.split_whitespace()
                .find_map(|w| w.strip_prefix(key))?
                .parse()
                .ok()
        };
        if field("converged=")? != 1.0 {
            return None;
        }
        Some(SwarmRun {
            seconds: field("elapsed_ms=")? / 1e3,
            peak_mib: field("peak_kib=")? / 1024.0,
        })
    };
    let best = |a: Option<SwarmRun>, b: Option<SwarmRun>| match (a, b) {
        (Some(a), Some(b)) => Some(SwarmRun {
            seconds: a.seconds.min(b.seconds),
            peak_mib: a.peak_mib.min(b.peak_mib),
        }),
        (a, b) => a.or(b),
    };
    let (mut o, mut c) = (None, None);
    for _ in 0..runs {
        o = best(o, ours());
        c = best(c, czmq());
    }
    let show = |r: Option<SwarmRun>| {
        r.map_or("- | -".to_owned(), |r| {
            format!("{:.2} s | {:.0} MiB", r.seconds, r.peak_mib)
        })
    };
    println!("\n| swarm, {nodes} nodes, random tree, inproc | converged in | peak memory |");
    println!("|---|---:|---:|");
    println!("| ours (one reactor thread) | {} |", show(o));
    println!("| CZMQ 4.2 (an actor thread a node) | {} |", show(c));
    if let (Some(o), Some(c)) = (o, c) {
        println!(
            "| ours / CZMQ | {:.2}x faster | {:.2}x less |",
            c.seconds / o.seconds,
            c.peak_mib / o.peak_mib
        );
    }
}

/// Encoding for a ROUTER peer, the old way (a `Vec` of frames, each a
/// `Vec`) beside the packet the node sends now, dropped as the reactor
/// drops it once libzmq has copied it.
fn send_path(runs: usize, count: usize) {
    let pong = ZgossipMsg::from(zgossip::msg::Pong::default());
    let announce = ZgossipMsg::from(Announce {
        endpoint: "tcp://192.168.1.1:9000".into(),
        service: "printer".into(),
        ttl: 0,
        ..Default::default()
    });
    let routing_id = [0u8, 0x6b, 0x8b, 0x45, 0x67];
    println!("\n| send-path encoding | frame list | packet | packet / frame list |");
    println!("|---|---:|---:|---:|");
    for (name, message) in [("PONG", &pong), ("ANNOUNCE", &announce)] {
        let time = |packed: bool| {
            let start = Instant::now();
            for _ in 0..count {
                if packed {
                    std::hint::black_box(message.encode_packet_routed(&routing_id).ok());
                } else {
                    std::hint::black_box(message.encode_routed(&routing_id).ok());
                }
            }
            start.elapsed().as_nanos()
        };
        let (mut list, mut packet) = (u128::MAX, u128::MAX);
        for _ in 0..runs {
            list = list.min(time(false));
            packet = packet.min(time(true));
        }
        let (l, p) = (per_second(count, list), per_second(count, packet));
        println!(
            "| {name} for a peer | {} | {} | {:.2}x |",
            fmt_rate(l),
            fmt_rate(p),
            p / l
        );
    }
}
