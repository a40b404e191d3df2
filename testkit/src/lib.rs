//! Test support for zgossip and its command, never published.
//!
//! * [`Running`]: a child process driven by lines on stdin, whose stdout
//!   lines arrive on a channel (the `zgossip` binary, or a CZMQ program);
//! * [`frame`], [`announce`] and [`dealer`]: a raw peer that speaks zgossip
//!   frames on a DEALER;
//! * [`czmq`]: the CZMQ programs this crate's build script compiles when
//!   libczmq is installed;
//! * [`mod@bench`]: the raw driver the benchmarks share.
//!
//! A raw peer announcing a tuple to a node, as the hostile-peer tests do:
//!
//! ```
//! use std::time::Duration;
//!
//! let node = zgossip::Node::new("target")?;
//! node.bind("inproc://testkit-doc")?;
//! let peer = zgossip_testkit::dealer("inproc://testkit-doc");
//! peer.send(zgossip_testkit::announce("tcp://10.0.0.1:1", "printer"), 0)?;
//! let delivery = node.recv_delivery(Duration::from_secs(5)).expect("delivered");
//! assert_eq!(delivery.service, "printer");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bench;

/// The CZMQ programs, built by this crate's build script against Debian's
/// libczmq when pkg-config finds it (`None` otherwise).
pub mod czmq {
    /// A CZMQ zgossip node driven by lines on stdin (`c/czmq_node.c`).
    pub const NODE: Option<&str> = option_env!("CZMQ_NODE_BIN");
    /// CZMQ's side of the benchmark (`c/czmq_bench.c`).
    pub const BENCH: Option<&str> = option_env!("CZMQ_BENCH_BIN");
    /// A swarm of CZMQ nodes in one process (`c/czmq_swarm.c`).
    pub const SWARM: Option<&str> = option_env!("CZMQ_SWARM_BIN");
    /// CZMQ's binding behaviour (`c/czmq_bind.c`).
    pub const BIND: Option<&str> = option_env!("CZMQ_BIND_BIN");
}

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// How long any single expectation may wait.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running program; killed when dropped.
pub struct Running {
    pub child: Child,
    lines: Receiver<String>,
    /// Its stderr lines, when asked for ([`Running::start_with_stderr`]).
    errors: Option<Receiver<String>>,
    errors_seen: Vec<String>,
}

/// Lines of `input`, on a channel.
fn line_channel(input: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(input).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

impl Running {
    /// Start `program` with `args`.
    pub fn start(program: &str, args: &[&str]) -> Self {
        Self::spawn(program, args, false)
    }

    /// Start `program` with `args`, keeping its stderr lines.
    pub fn start_with_stderr(program: &str, args: &[&str]) -> Self {
        Self::spawn(program, args, true)
    }

    fn spawn(program: &str, args: &[&str], stderr: bool) -> Self {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if stderr {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let lines = line_channel(child.stdout.take().expect("stdout"));
        let errors = child.stderr.take().map(line_channel);
        Self {
            child,
            lines,
            errors,
            errors_seen: Vec::new(),
        }
    }

    /// Wait (at most [`WAIT`]) for a stderr line satisfying `pred`.
    pub fn expect_stderr_line(&mut self, pred: impl Fn(&str) -> bool) -> String {
        let errors = self.errors.as_ref().expect("started with stderr");
        let deadline = Instant::now() + WAIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if let Ok(line) = errors.recv_timeout(left) {
                self.errors_seen.push(line.clone());
                if pred(&line) {
                    return line;
                }
            }
        }
        panic!("no such stderr line; saw {:?}", self.errors_seen);
    }

    /// Every stderr line so far (after the process ended: all of them).
    pub fn stderr_lines(&mut self) -> Vec<String> {
        if let Some(errors) = &self.errors {
            while let Ok(line) = errors.recv_timeout(Duration::from_millis(200)) {
                self.errors_seen.push(line);
            }
        }
        self.errors_seen.clone()
    }

    /// Write one line to its stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("write to child");
        stdin.flush().expect("flush to child");
    }

    /// Wait (at most [`WAIT`]) for a line satisfying `pred`; returns it.
    pub fn expect_line(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if let Ok(line) = self.lines.recv_timeout(left) {
                if pred(&line) {
                    return line;
                }
                seen.push(line);
            }
        }
        panic!("no line {what}; saw {seen:?}");
    }

    /// Wait for exactly this line.
    pub fn expect(&self, wanted: &str) {
        self.expect_line(&format!("{wanted:?}"), |l| l == wanted);
    }

    /// Wait for every one of these lines, in any order (lines from
    /// different sources of one process, such as deliveries and peer
    /// events, may come in either order).
    pub fn expect_all(&self, wanted: &[&str]) {
        let mut missing: Vec<&str> = wanted.to_vec();
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        while !missing.is_empty() {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                panic!("no lines {missing:?}; saw {seen:?}");
            };
            if let Ok(line) = self.lines.recv_timeout(left) {
                missing.retain(|w| *w != line);
                seen.push(line);
            }
        }
    }

    /// The next line within `timeout`, if any.
    pub fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Wait (at most [`WAIT`]) for the process to exit by itself.
    pub fn expect_exit(&mut self) {
        let deadline = Instant::now() + WAIT;
        while self.child.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "the process did not exit");
            // Drains output while waiting, bounded by the deadline.
            let _ = self.lines.recv_timeout(Duration::from_millis(20));
        }
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("wait").is_none()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One zgossip frame.
pub fn frame(message: impl Into<zgossip::msg::ZgossipMsg>) -> Vec<u8> {
    use zgossip::Codec;
    let mut frames = message.into().encode().expect("encodes");
    frames.remove(0)
}

/// An ANNOUNCE frame.
pub fn announce(endpoint: &str, service: &str) -> Vec<u8> {
    frame(zgossip::msg::Announce {
        endpoint: endpoint.to_owned(),
        service: service.to_owned(),
        ttl: 0,
        ..Default::default()
    })
}

/// A raw DEALER connected to `endpoint`, whose receives wait at most
/// [`WAIT`].
pub fn dealer(endpoint: &str) -> zmq::Socket {
    let dealer = zproto_runtime::reactor::socket(zmq::DEALER).expect("a socket");
    dealer.set_linger(0).expect("linger");
    dealer
        .set_rcvtimeo(WAIT.as_millis() as i32)
        .expect("timeout");
    dealer.connect(endpoint).expect("connect");
    dealer
}

/// The body of a test that stands for a suite that needs libczmq: without
/// libczmq it passes (its name says the suite did not run); with libczmq
/// installed it fails, since the build script should then have built the
/// C programs (`cfg(czmq)`).
pub fn libczmq_is_not_installed() {
    let found = std::process::Command::new("pkg-config")
        .args(["--exists", "libczmq"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        !found,
        "libczmq is installed but the CZMQ programs were not built: see the build script's output"
    );
}
