//! Partitions on a real network: five `zgossip node` processes, each in a
//! network namespace of its own, joined by veth pairs to a bridge in a
//! sixth namespace (addresses 10.231.0.1-5, only inside those namespaces;
//! no uplink, no default route). A cut between two hosts is a blackhole
//! route on each side: TCP retransmits, ZMTP heartbeats notice, as with a
//! cable pulled. Everything is removed when the test ends, however it ends.
//!
//! The hosts form a ring (a chain closed by one more link). The test runs
//! two partition cycles, a long one (past `server/timeout`) with
//! conflicting writes on both sides and a removal, and a short one; then a
//! `kill -9` of a host whose tuples must expire everywhere within their
//! lease, and its restart. After every heal all live hosts must hold the
//! same tuples within 5 s, and keep them.
//!
//! Needs root and `ip` (iproute2). Without them the suite is one test whose
//! name says so; `ZGOSSIP_REQUIRE_NETNS=1` (set by `.ci/run`) makes that an
//! error.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

const HOSTS: usize = 5;
/// Settings that make the run short: the relations between timers are the
/// defaults' (lease three times the renewal, timeout well past the
/// keepalive).
const SETTINGS: [(&str, &str); 3] = [
    ("server/timeout", "2000"),
    ("tuples/lease", "6000"),
    ("remote/resync", "500"),
];
const HEAL_BOUND: Duration = Duration::from_secs(5);

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The namespaces, removed on drop.
struct Net {
    prefix: String,
}

impl Net {
    fn host(&self, i: usize) -> String {
        format!("{}h{i}", self.prefix)
    }

    fn bridge(&self) -> String {
        format!("{}br", self.prefix)
    }

    fn address(i: usize) -> String {
        format!("10.231.0.{}", i + 1)
    }

    fn create() -> Result<Net, String> {
        let net = Net {
            prefix: format!("zgp{}", std::process::id()),
        };
        let br = net.bridge();
        run(&["netns", "add", &br])?;
        run(&["-n", &br, "link", "set", "lo", "up"])?;
        run(&["-n", &br, "link", "add", "br0", "type", "bridge"])?;
        run(&["-n", &br, "link", "set", "br0", "up"])?;
        for i in 0..HOSTS {
            let host = net.host(i);
            run(&["netns", "add", &host])?;
            run(&["-n", &host, "link", "set", "lo", "up"])?;
            let (a, b) = (
                format!("{}v{i}a", net.prefix),
                format!("{}v{i}b", net.prefix),
            );
            run(&[
                "-n", &host, "link", "add", &a, "type", "veth", "peer", "name", &b, "netns", &br,
            ])?;
            run(&["-n", &br, "link", "set", &b, "master", "br0"])?;
            run(&["-n", &br, "link", "set", &b, "up"])?;
            let cidr = format!("{}/24", Net::address(i));
            run(&["-n", &host, "addr", "add", &cidr, "dev", &a])?;
            run(&["-n", &host, "link", "set", &a, "up"])?;
        }
        Ok(net)
    }

    /// Cut (or heal) the path between hosts `i` and `j`, both ways.
    fn cut(&self, i: usize, j: usize, cut: bool) {
        let verb = if cut { "add" } else { "del" };
        for (from, to) in [(i, j), (j, i)] {
            let dest = format!("{}/32", Net::address(to));
            run(&["-n", &self.host(from), "route", verb, "blackhole", &dest])
                .expect("blackhole route");
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for i in 0..HOSTS {
            let _ = run(&["netns", "del", &self.host(i)]);
        }
        let _ = run(&["netns", "del", &self.bridge()]);
    }
}

/// A `zgossip node` process in a host's namespace, driven through stdin.
struct Host {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Host {
    /// Host `i`'s node, in its namespace, bound to its address.
    fn start(net: &Net, i: usize) -> Host {
        let mut command = Command::new("ip");
        command.args([
            "netns",
            "exec",
            &net.host(i),
            env!("CARGO_BIN_EXE_zgossip"),
            "node",
        ]);
        let mut host = Host::spawn(command);
        host.say(&format!("BIND tcp://{}:5670", Net::address(i)));
        host
    }

    /// A node on loopback; its endpoint.
    fn local() -> (Host, String) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_zgossip"));
        command.arg("node");
        let mut host = Host::spawn(command);
        // Port 0, the kernel's choice. CZMQ's `*` (the first free port from
        // 49152) made the SIGSTOP chain test below fail 2 runs in 4 while
        // the namespaces test ran beside it, and never with port 0 (not
        // diagnosed: see issue 23's notes).
        host.say("BIND tcp://127.0.0.1:0");
        host.say("PORT");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = host.lines.recv_timeout(left).expect("PORT within 10 s");
            if let Some(port) = line.strip_prefix("PORT ") {
                let endpoint = format!("tcp://127.0.0.1:{port}");
                return (host, endpoint);
            }
        }
    }

    fn spawn(mut command: Command) -> Host {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("zgossip node");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut host = Host {
            child,
            stdin,
            lines,
        };
        for (path, value) in SETTINGS {
            host.say(&format!("SET {path} {value}"));
        }
        host
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal}");
    }

    fn say(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("a command");
        self.stdin.flush().expect("flush");
    }

    /// The tuples the node holds (TUPLES), waiting at most two seconds.
    fn tuples(&mut self) -> BTreeMap<String, String> {
        self.say("TUPLES");
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut tuples = BTreeMap::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with("TUPLES ") => return tuples,
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("TUPLE ") {
                        if let Some((endpoint, service)) = rest.split_once(' ') {
                            tuples.insert(endpoint.to_owned(), service.to_owned());
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!("no answer to TUPLES within 2 s"),
                Err(RecvTimeoutError::Disconnected) => panic!("the node exited"),
            }
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
    }
}

fn ring_links() -> Vec<(usize, usize)> {
    let mut links: Vec<(usize, usize)> = (1..HOSTS).map(|i| (i, i - 1)).collect();
    links.push((0, HOSTS - 1));
    links
}

fn connect(hosts: &mut [Option<Host>], i: usize) {
    for (client, server) in ring_links() {
        if client == i {
            if let Some(host) = hosts[i].as_mut() {
                host.say(&format!("CONNECT tcp://{}:5670", Net::address(server)));
            }
        }
    }
}

/// Every live host's table, by host.
fn tables(hosts: &mut [Option<Host>]) -> Vec<(usize, BTreeMap<String, String>)> {
    hosts
        .iter_mut()
        .enumerate()
        .filter_map(|(i, h)| h.as_mut().map(|h| (i, h.tuples())))
        .collect()
}

/// Wait until every live host holds the same tuples and `check` accepts
/// them; then they must stay so for `stable`. Returns how long it took.
fn converge(
    hosts: &mut [Option<Host>],
    what: &str,
    limit: Duration,
    check: impl Fn(&BTreeMap<String, String>) -> bool,
) -> Duration {
    let start = Instant::now();
    let same = |t: &[(usize, BTreeMap<String, String>)]| {
        t.windows(2).all(|w| w[0].1 == w[1].1) && t.first().is_some_and(|(_, first)| check(first))
    };
    loop {
        let t = tables(hosts);
        if same(&t) {
            break;
        }
        assert!(
            start.elapsed() < limit,
            "{what}: not converged within {limit:?}: {t:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = start.elapsed();
    // And stable.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let t = tables(hosts);
        assert!(
            same(&t),
            "{what}: converged after {took:?}, then changed: {t:#?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    println!("{what}: converged {took:?} after the heal, stable for 3 s");
    took
}

fn available() -> Result<(), String> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| format!("id -u: {e}"))?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err("not root".into());
    }
    run(&["netns", "list"])
}

/// Without root or `ip netns` at build time, this is the suite's only
/// test, and its name says so (`ZGOSSIP_REQUIRE_NETNS=1` makes it fail).
#[cfg(not(netns))]
#[test]
fn network_namespace_suite_did_not_run_because_not_root_or_no_ip_netns() {
    assert!(
        std::env::var_os("ZGOSSIP_REQUIRE_NETNS").is_none(),
        "network namespaces are required here (ZGOSSIP_REQUIRE_NETNS)"
    );
}

#[test]
fn partitions_restarts_and_conflicts_on_five_hosts_converge_after_every_heal() {
    if let Err(why) = available() {
        assert!(
            std::env::var_os("ZGOSSIP_REQUIRE_NETNS").is_none(),
            "network namespaces are required here (ZGOSSIP_REQUIRE_NETNS): {why}"
        );
        println!("partition_suite_skipped_without_network_namespaces: {why}");
        return;
    }
    let net = Net::create().expect("namespaces");
    let mut hosts: Vec<Option<Host>> = (0..HOSTS).map(|i| Some(Host::start(&net, i))).collect();
    for i in 0..HOSTS {
        connect(&mut hosts, i);
    }
    for (i, host) in hosts.iter_mut().enumerate() {
        if let Some(host) = host {
            host.say(&format!("ANNOUNCE tcp://svc-{i}:80 service-{i}"));
        }
    }
    converge(&mut hosts, "start", Duration::from_secs(15), |t| {
        t.len() == HOSTS
    });

    // Cycle 1, long (past server/timeout): {0, 1} | {2, 3, 4}, writes on
    // both sides, one endpoint written on both.
    net.cut(1, 2, true);
    net.cut(0, 4, true);
    std::thread::sleep(Duration::from_secs(1));
    let say = |hosts: &mut Vec<Option<Host>>, i: usize, line: &str| {
        hosts[i].as_mut().expect("live").say(line);
    };
    say(&mut hosts, 0, "ANNOUNCE tcp://shared:80 left");
    say(&mut hosts, 3, "ANNOUNCE tcp://shared:80 right");
    say(&mut hosts, 1, "ANNOUNCE tcp://new-1:80 service-new");
    say(&mut hosts, 2, "UNPUBLISH tcp://svc-2:80");
    std::thread::sleep(Duration::from_secs(4));
    net.cut(1, 2, false);
    net.cut(0, 4, false);
    converge(&mut hosts, "long partition", HEAL_BOUND, |t| {
        t.len() == HOSTS + 1
            && !t.contains_key("tcp://svc-2:80")
            && t.contains_key("tcp://new-1:80")
            && matches!(
                t.get("tcp://shared:80").map(String::as_str),
                Some("left" | "right")
            )
    });

    // Cycle 2, short (under server/timeout): {0..2} | {3, 4}.
    net.cut(2, 3, true);
    net.cut(0, 4, true);
    say(&mut hosts, 4, "ANNOUNCE tcp://new-4:80 service-new");
    std::thread::sleep(Duration::from_millis(1000));
    net.cut(2, 3, false);
    net.cut(0, 4, false);
    converge(&mut hosts, "short partition", HEAL_BOUND, |t| {
        t.len() == HOSTS + 2 && t.contains_key("tcp://new-4:80")
    });

    // kill -9 of host 3: its tuples expire everywhere within their lease
    // (6 s) and a little; then it comes back, empty, and announces again.
    // The shared endpoint ends as host 0 wrote it, the only live writer:
    // if host 3 had won it, host 0's claim wakes at its first renewal (a
    // third of the lease) after host 3's tuple expired. (Accepting it
    // absent, as this test did, took that moment for convergence, and the
    // wake-up in the next 3 s for instability.)
    hosts[3].as_mut().expect("live").kill();
    hosts[3] = None;
    let lease = Duration::from_millis(6000);
    converge(&mut hosts, "kill -9", lease + lease / 3 + HEAL_BOUND, |t| {
        !t.contains_key("tcp://svc-3:80")
            && t.get("tcp://shared:80").map(String::as_str) == Some("left")
    });
    hosts[3] = Some(Host::start(&net, 3));
    connect(&mut hosts, 3);
    say(&mut hosts, 3, "ANNOUNCE tcp://svc-3:80 service-3");
    converge(&mut hosts, "restart", HEAL_BOUND * 2, |t| {
        t.contains_key("tcp://svc-3:80") && t.contains_key("tcp://new-4:80")
    });
    drop(hosts);
    drop(net);
}

#[test]
fn a_chain_whose_middle_node_was_stopped_past_the_timeout_converges_and_keeps_flowing() {
    // Loopback, no namespaces: five processes in a chain, the middle one
    // stopped (SIGSTOP) for twice server/timeout while the first announces.
    let mut hosts = Vec::new();
    let mut endpoints: Vec<String> = Vec::new();
    for i in 0..HOSTS {
        let (mut host, endpoint) = Host::local();
        if let Some(previous) = endpoints.last() {
            host.say(&format!("CONNECT {previous}"));
        }
        host.say(&format!("ANNOUNCE tcp://svc-{i}:80 service-{i}"));
        hosts.push(Some(host));
        endpoints.push(endpoint);
    }
    converge(&mut hosts, "start", Duration::from_secs(15), |t| {
        t.len() == HOSTS
    });
    let middle = HOSTS / 2;
    hosts[middle].as_ref().expect("live").signal("-STOP");
    hosts[0]
        .as_mut()
        .expect("live")
        .say("ANNOUNCE tcp://during:80 stopped");
    std::thread::sleep(Duration::from_secs(4));
    hosts[middle].as_ref().expect("live").signal("-CONT");
    converge(&mut hosts, "after SIGCONT", HEAL_BOUND, |t| {
        t.len() == HOSTS + 1 && t.contains_key("tcp://during:80")
    });
    // And new tuples still cross, both ways.
    hosts[0]
        .as_mut()
        .expect("live")
        .say("ANNOUNCE tcp://after-0:80 new");
    hosts[HOSTS - 1]
        .as_mut()
        .expect("live")
        .say("ANNOUNCE tcp://after-4:80 new");
    converge(&mut hosts, "announced after", HEAL_BOUND, |t| {
        t.contains_key("tcp://after-0:80") && t.contains_key("tcp://after-4:80")
    });
}
