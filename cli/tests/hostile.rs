//! A node under hostile or merely unlucky peers (issue: "zgossip under
//! hostile peers and faults"): stopped processes, peers that never read,
//! servers that answer INVALID forever, a stderr nobody drains, bytes that
//! are not text, strings that try to forge output lines, absurd flags.
//!
//! Node processes are the real command line (`zgossip node`), so that
//! memory is measured on a process of its own (`/proc/PID/status`) and
//! signals stop exactly one node. Every wait is bounded and waits for an
//! event (a line, a counter), except where the scenario itself is a span
//! of time (a process stopped past the session timeout).

use zgossip_testkit as support;

use std::collections::HashMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{announce, dealer, frame, Running, WAIT};
use zgossip::msg::{Hello, Invalid, Ping, Pong, ZgossipMsg};
use zgossip::Codec;
use zproto_runtime::reactor;

const BIN: &str = env!("CARGO_BIN_EXE_zgossip");

/// A node process bound on tcp loopback, with `args` added; its endpoint.
fn node_process(args: &[&str]) -> (Running, String) {
    let mut all = vec!["node", "--bind", "tcp://127.0.0.1:*"];
    all.extend_from_slice(args);
    let process = Running::start(BIN, &all);
    let line = process.expect_line("BOUND", |l| l.starts_with("BOUND "));
    let port = line.rsplit(' ').next().expect("a port").to_owned();
    (process, format!("tcp://127.0.0.1:{port}"))
}

/// The node's counters (`STATS`).
fn stats(node: &mut Running) -> HashMap<String, u64> {
    node.send("STATS");
    let line = node.expect_line("STATS", |l| l.starts_with("STATS "));
    line.split_whitespace()
        .skip(1)
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// Wait (bounded) until counter `name` satisfies `ok`; returns its value.
fn wait_stat(node: &mut Running, name: &str, ok: impl Fn(u64) -> bool) -> u64 {
    let deadline = Instant::now() + WAIT * 3;
    loop {
        let value = stats(node).get(name).copied().unwrap_or(0);
        if ok(value) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{name} stayed at {value}: {:?}",
            stats(node)
        );
        // Polling the node's counters, not synchronising on time.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// CPU time a process has used (user and system), from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc");
    // Fields after the command's closing parenthesis; utime and stime are
    // the 12th and 13th of them, in clock ticks (100 a second on Linux).
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|n| n.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// `VmRSS` or `VmHWM` of a process, in bytes.
fn memory(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc");
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .expect("the field");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a number");
    kib * 1024
}

/// Give a node `count` tuples through a peer of its own (HELLO, then the
/// ANNOUNCEs), and wait until it holds them all. The peer is returned, to
/// keep its connection.
fn load(node: &mut Running, endpoint: &str, count: usize) -> zmq::Socket {
    let feeder = dealer(endpoint);
    feeder.send(frame(Hello), 0).expect("send");
    for i in 0..count {
        let service = format!("service number {i} of the load");
        feeder
            .send(
                announce(
                    &format!("tcp://10.1.{}.{}:9000", i / 250, i % 250),
                    &service,
                ),
                0,
            )
            .expect("send");
    }
    wait_stat(node, "tuples", |n| n == count as u64);
    feeder
}

const LOAD: usize = 100_000;

/// Per connection a node queues at most `limits/hwm` (1000) messages each
/// way, each at most `Limits::max_message` (1,284) bytes: 2.6 MB. Twelve
/// peers that never read may cost no more than that each, plus libzmq's
/// own buffers; before these bounds, each cost 25 MB against 100,000
/// tuples (a copy of the table and every message queued).
const BOUND_PER_PEER: u64 = 2 * 1000 * 1284;

#[test]
fn peers_that_never_read_cost_a_bounded_amount_of_memory() {
    let (mut node, endpoint) = node_process(&[]);
    let pid = node.child.id();
    let _feeder = load(&mut node, &endpoint, LOAD);
    let before = memory(pid, "VmRSS");
    // Twelve peers say HELLO and never read.
    let stalled: Vec<zmq::Socket> = (0..12)
        .map(|_| {
            let peer = dealer(&endpoint);
            peer.send(frame(Hello), 0).expect("send");
            peer
        })
        .collect();
    // Every peer's session is open (theirs and the feeder's: their
    // connections come up in any order, and a busy machine takes its time),
    // and queues fill (one peer's replay is refused many times over, so
    // the count alone says nothing of the others).
    wait_stat(&mut node, "sessions", |n| n >= 13);
    wait_stat(&mut node, "refused_sends", |n| n >= 12);
    // A stalled episode of two seconds (its length is the scenario, polled
    // every 50 ms), longer than the replays' backoff so that retries run;
    // the CPU of its second half is the steady cost of peers that never
    // read. Then the peak of the whole episode.
    let poll = |node: &mut Running, span: Duration| {
        let until = Instant::now() + span;
        while Instant::now() < until {
            assert!(stats(node)["sessions"] >= 12);
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    poll(&mut node, Duration::from_secs(1));
    let (cpu_before, since) = (cpu_time(pid), Instant::now());
    poll(&mut node, Duration::from_secs(1));
    eprintln!(
        "12 stalled peers, steady state: the node used {:?} of CPU in {:?}",
        cpu_time(pid).saturating_sub(cpu_before),
        since.elapsed()
    );
    let grown = memory(pid, "VmHWM").saturating_sub(before);
    eprintln!(
        "12 stalled peers: peak grew by {:.1} MB",
        grown as f64 / 1e6
    );
    assert!(
        grown < 12 * BOUND_PER_PEER,
        "12 stalled peers grew the node by {} MB",
        grown / 1_000_000
    );
    // The node still answers.
    let probe = dealer(&endpoint);
    probe.send(frame(Ping::default()), 0).expect("send");
    assert_eq!(probe.recv_bytes(0).expect("PONG"), frame(Pong::default()));
    drop(stalled);
}

#[test]
fn a_server_answering_invalid_forever_cannot_amplify() {
    let (mut node, endpoint) = node_process(&[]);
    let pid = node.child.id();
    let _feeder = load(&mut node, &endpoint, LOAD);
    let before = memory(pid, "VmRSS");
    // A hostile server: 50 INVALID and PONG pairs (800 bytes) as soon as
    // we say HELLO, then a pair for every PING of ours.
    let router = reactor::socket(zmq::ROUTER).expect("a socket");
    router.set_linger(0).expect("linger");
    router.set_rcvtimeo(100).expect("timeout");
    router.bind("tcp://127.0.0.1:*").expect("bind");
    let hostile = router.get_last_endpoint().unwrap().unwrap();
    node.send(&format!("CONNECT {hostile}"));
    let (mut pairs, mut announces, mut flooded) = (0, 0u64, false);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        let Ok(mut frames) = router.recv_multipart(0) else {
            continue;
        };
        let id = frames.remove(0);
        let answer = match ZgossipMsg::decode(&frames) {
            Ok(ZgossipMsg::Hello(_)) if !flooded => {
                flooded = true;
                50
            }
            Ok(ZgossipMsg::Ping(_)) => 1,
            Ok(ZgossipMsg::Announce(_)) => {
                announces += 1;
                0
            }
            _ => 0,
        };
        for _ in 0..answer {
            for reply in [frame(Invalid), frame(Pong::default())] {
                router.send_multipart([id.clone(), reply], 0).expect("send");
            }
            pairs += 1;
        }
    }
    let resyncs = stats(&mut node)["resyncs"];
    let grown = memory(pid, "VmHWM").saturating_sub(before);
    eprintln!(
        "hostile server: {pairs} pairs, {resyncs} resyncs, {announces} tuples sent, peak grew by {:.1} MB",
        grown as f64 / 1e6
    );
    // Generations at 0 s, 1 s and 3 s at most (spacing 1 s, doubling).
    assert!(pairs >= 50, "the hostile server sent {pairs} pairs");
    assert!(resyncs <= 2, "{resyncs} re-synchronisations in 4 s");
    // Each generation sends every tuple once (a refused tuple goes again,
    // but the queue refuses everything after it too, so nothing is sent
    // twice); add one stall probe per second at most.
    assert!(
        announces <= (1 + resyncs) * LOAD as u64 + 4,
        "{announces} tuples sent for {pairs} INVALIDs and {resyncs} resyncs"
    );
    assert!(
        grown < 2 * BOUND_PER_PEER + 20_000_000,
        "the hostile server grew the node by {} MB",
        grown / 1_000_000
    );
}

/// A node stopped (SIGSTOP) longer than its upstream's session timeout
/// misses nothing: the upstream's heartbeats drop the silent connection,
/// the stopped node reconnects when it resumes and synchronises again.
/// (Before: the upstream expired the session, the resumed node's PING
/// opened a fresh one that ignored every forwarded tuple, and the nodes
/// downstream missed every tuple announced meanwhile, for good.)
#[test]
fn a_stopped_node_misses_nothing_once_it_resumes() {
    let timeout = ["--set", "server/timeout=1000"];
    let (mut head, head_endpoint) = node_process(&timeout);
    let mut chain = vec![];
    let mut upstream = head_endpoint.clone();
    for _ in 0..4 {
        let mut args = timeout.to_vec();
        args.extend(["--connect", upstream.as_str()]);
        let (node, endpoint) = node_process(&args);
        chain.push(node);
        upstream = endpoint;
    }
    head.send("ANNOUNCE tcp://10.0.0.1:1 before");
    chain[3].expect("DELIVER tcp://10.0.0.1:1 before");
    // Stop the second node until the head has dropped its connection.
    let second = chain[0].child.id().to_string();
    let signal = |name: &str| {
        let status = Command::new("kill").args([name, &second]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill {name}");
    };
    signal("-STOP");
    head.send("ANNOUNCE tcp://10.0.0.1:2 during");
    wait_stat(&mut head, "peers_gone", |n| n >= 1);
    head.send("ANNOUNCE tcp://10.0.0.1:3 during too");
    signal("-CONT");
    head.send("ANNOUNCE tcp://10.0.0.1:4 after");
    for wanted in [
        "DELIVER tcp://10.0.0.1:2 during",
        "DELIVER tcp://10.0.0.1:3 during too",
        "DELIVER tcp://10.0.0.1:4 after",
    ] {
        chain[3].expect(wanted);
    }
    chain[3].send("STATUS");
    chain[3].expect("STATUS 4");
}

/// Stdin takes any bytes: a line that is not UTF-8 gets an error and the
/// reader goes on; `$TERM` stops the node, and so does the end of input.
#[test]
fn stdin_takes_any_bytes_and_its_end_stops_the_node() {
    let (mut node, _) = node_process(&[]);
    {
        use std::io::Write;
        let stdin = node.child.stdin.as_mut().expect("stdin");
        stdin.write_all(b"\xff\xfe\x00garbage\n").expect("write");
        stdin.write_all(b"STATUS\n").expect("write");
        stdin.flush().expect("flush");
    }
    node.expect("STATUS 0");
    node.send("ANNOUNCE tcp://a:1 printer");
    node.expect("DELIVER tcp://a:1 printer");
    node.send("$TERM");
    node.expect_exit();

    let (mut node, _) = node_process(&[]);
    drop(node.child.stdin.take());
    node.expect_exit();
}

/// A peer's strings cannot forge lines on our output: newlines and other
/// control characters are escaped.
#[test]
fn strings_from_peers_cannot_forge_output_lines() {
    let (mut node, endpoint) = node_process(&[]);
    let peer = dealer(&endpoint);
    peer.send(frame(Hello), 0).expect("send");
    peer.send(
        announce(
            "tcp://evil:1\nSTATUS 42",
            "printer\nDELIVER tcp://forged:1 forged\r\nSTATUS 99",
        ),
        0,
    )
    .expect("send");
    let line = node.expect_line("a DELIVER", |l| l.starts_with("DELIVER "));
    assert_eq!(
        line,
        "DELIVER tcp://evil:1\\nSTATUS\\x2042 printer\\nDELIVER tcp://forged:1 forged\\r\\nSTATUS 99"
    );
    node.send("STATUS");
    // The next STATUS line is the real one, not a forged one, and every
    // line before it is one of ours (the peer's session reported up).
    let mut line = node.next_line(WAIT);
    while line
        .as_deref()
        .is_some_and(|l| l.starts_with("PEER UP session "))
    {
        line = node.next_line(WAIT);
    }
    assert_eq!(line.as_deref(), Some("STATUS 1"));
}

/// A stderr that nobody reads does not stop the node: logs go through a
/// queue that drops lines when full, never blocking the reactor.
#[test]
fn a_stderr_nobody_reads_does_not_block_the_node() {
    let mut child = Command::new(BIN)
        .args(["-v", "node", "--bind", "tcp://127.0.0.1:*"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).expect("BOUND line");
    let port = line
        .split_whitespace()
        .nth(3)
        .expect("BOUND endpoint PORT n")
        .to_owned();
    {
        // Animate every session (VERBOSE); STATUS answers once it is on.
        use std::io::Write;
        let stdin = child.stdin.as_mut().expect("stdin");
        stdin.write_all(b"VERBOSE\nSTATUS\n").expect("write");
        stdin.flush().expect("flush");
        line.clear();
        std::io::BufRead::read_line(&mut stdout, &mut line).expect("STATUS line");
        assert_eq!(line.trim(), "STATUS 0");
    }
    let peer = dealer(&format!("tcp://127.0.0.1:{port}"));
    // Verbose: every PING logs its state, event and action (hundreds of
    // bytes); 20,000 of them are megabytes, far past a pipe's 64 KiB.
    const PINGS: usize = 20_000;
    let mut pongs = 0;
    for round in 0..PINGS / 1000 {
        for _ in 0..1000 {
            peer.send(frame(Ping::default()), 0).expect("send");
        }
        for _ in 0..1000 {
            match peer.recv_bytes(0) {
                Ok(_) => pongs += 1,
                Err(e) => panic!("no PONG after {pongs} (round {round}): {e}"),
            }
        }
    }
    assert_eq!(pongs, PINGS);
    let _ = child.kill();
    let _ = child.wait();
}

/// Flags out of range, unsendable tuples, bad ports and swarms too large
/// for memory get clear errors, not panics or silent misbehaviour.
#[test]
fn flags_and_commands_out_of_range_get_clear_errors() {
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        (out.status.code(), stderr)
    };
    for args in [
        &["node", "--for", "18446744073709551615"][..],
        &["demo", "--timeout", "18446744073709551615"],
        &["swarm", "--timeout", "18446744073709551615"],
    ] {
        let (code, stderr) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("not in 0..=") || stderr.contains("not in 1..="),
            "{stderr}"
        );
    }
    for args in [
        &["swarm", "--nodes", "2", "--tuples", "4294967295"][..],
        &["swarm", "--nodes", "1000000"],
    ] {
        let (code, stderr) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("MB available"), "{stderr}");
    }
    let long = format!("{}={}", "e".repeat(300), "s");
    let (code, stderr) = run(&["node", "--announce", &long, "--for", "1"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("endpoint of 300 bytes cannot be sent"),
        "{stderr}"
    );
    let (code, stderr) = run(&["node", "--bind", "tcp://127.0.0.1:99999", "--for", "1"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("is not a number from 0 to 65535"),
        "{stderr}"
    );
    let (code, stderr) = run(&["node", "--connect", "tcp://nohost.invalid:1", "--for", "1"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("does not resolve"), "{stderr}");
    let (code, stderr) = run(&["node", "--set", "limits/hwm=0", "--for", "1"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("limits/hwm"), "{stderr}");

    // The same for text commands: an error, and the node goes on.
    let (mut node, _) = node_process(&[]);
    node.send(&format!("ANNOUNCE {} x", "e".repeat(300)));
    node.send("SET limits/service 4");
    node.send("ANNOUNCE tcp://a:1 too-long");
    node.send("ANNOUNCE tcp://a:2 ok");
    node.expect("DELIVER tcp://a:2 ok");
    node.send("STATUS");
    node.expect("STATUS 1");
}

/// A frame larger than any valid ANNOUNCE closes its connection before
/// libzmq buffers it (`ZMQ_MAXMSGSIZE`); a service over `limits/service`
/// in a frame that fits is refused and counted. Nothing is stored, and
/// the node goes on serving.
#[test]
fn oversized_services_are_refused_without_buffering_them() {
    let (mut node, endpoint) = node_process(&[]);
    let pid = node.child.id();
    let before = memory(pid, "VmRSS");
    let huge = dealer(&endpoint);
    huge.send(frame(Hello), 0).expect("send");
    huge.send(announce("tcp://huge:1", &"x".repeat(64 << 20)), 0)
        .expect("send");
    let over = dealer(&endpoint);
    over.send(frame(Hello), 0).expect("send");
    over.send(announce("tcp://over:1", &"y".repeat(1100)), 0)
        .expect("send");
    wait_stat(&mut node, "refused_tuples", |n| n == 1);
    // The 64 MB frame's connection is closed on the frame's size alone.
    wait_stat(&mut node, "peers_gone", |n| n >= 1);
    let grown = memory(pid, "VmHWM").saturating_sub(before);
    assert!(grown < 16_000_000, "grew by {} MB", grown / 1_000_000);
    let probe = dealer(&endpoint);
    probe.send(frame(Ping::default()), 0).expect("send");
    assert_eq!(probe.recv_bytes(0).expect("PONG"), frame(Pong::default()));
    node.send("STATUS");
    node.expect("STATUS 0");
}

/// A flood of malformed frames is counted in full but logged at most ten
/// times a second, each line saying how many were left out.
#[test]
fn malformed_frames_are_logged_at_a_limited_rate() {
    let mut child = Command::new(BIN)
        .args(["node", "--bind", "tcp://127.0.0.1:*"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let stderr = child.stderr.take().expect("stderr");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::BufReader::new(stderr).read_to_string(&mut text);
        text
    });
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).expect("BOUND line");
    let port = line.split_whitespace().nth(3).expect("a port").to_owned();
    let peer = dealer(&format!("tcp://127.0.0.1:{port}"));
    for _ in 0..1000 {
        peer.send(&[0xde, 0xad][..], 0).expect("send");
    }
    {
        use std::io::Write;
        let stdin = child.stdin.as_mut().expect("stdin");
        // A PING after the garbage: once it is answered, all was read.
        peer.send(frame(Ping::default()), 0).expect("send");
        assert_eq!(peer.recv_bytes(0).expect("PONG"), frame(Pong::default()));
        writeln!(stdin, "STATS").expect("write");
        stdin.flush().expect("flush");
    }
    line.clear();
    std::io::BufRead::read_line(&mut stdout, &mut line).expect("STATS line");
    assert!(line.contains("malformed=1000"), "{line}");
    drop(child.stdin.take());
    let status = child.wait().expect("exits at the end of its input");
    assert!(status.success());
    let logged = errors.join().expect("stderr");
    let warnings = logged.matches("malformed message from a peer").count();
    assert!(
        (1..=20).contains(&warnings),
        "{warnings} warnings for 1000 frames"
    );
}

/// An application that never reads its deliveries costs a bounded queue:
/// beyond it, deliveries are dropped and counted; the tuples are kept.
#[test]
fn deliveries_nobody_reads_are_bounded() {
    let node = zgossip::Node::new("unread").expect("node");
    node.bind("tcp://127.0.0.1:*").expect("bind");
    let peer = dealer(&format!("tcp://127.0.0.1:{}", node.port().expect("port")));
    peer.send(frame(Hello), 0).expect("send");
    let count = zgossip::limits::DELIVERY_QUEUE + 10;
    for i in 0..count {
        peer.send(announce(&format!("tcp://d:{i}"), "s"), 0)
            .expect("send");
    }
    let deadline = Instant::now() + WAIT * 3;
    while node.status().expect("status") < count {
        assert!(Instant::now() < deadline, "the tuples did not all arrive");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(node.stats().expect("stats").deliveries_dropped, 10);
    assert_eq!(
        node.try_deliveries().count(),
        zgossip::limits::DELIVERY_QUEUE
    );
}
