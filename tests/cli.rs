//! The `zgossip` command line: the default demo, bad arguments, and two node
//! processes discovering each other over ipc, driven by text commands.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_zgossip");
const WAIT: Duration = Duration::from_secs(10);

#[test]
fn the_default_demo_converges() {
    let out = Command::new(BIN).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("All 5 nodes know all 5 services"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("STATUS 5").count(), 5, "{stdout}");
}

#[test]
fn bad_arguments_get_clear_errors() {
    let out = Command::new(BIN)
        .args(["node", "--announce", "no-equals-sign"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected KEY=VALUE"));

    let out = Command::new(BIN)
        .args(["node", "--connect", "nonsense", "--for", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad zgossip endpoint 'nonsense'"));

    let out = Command::new(BIN)
        .args(["node", "--set", "server/timeout=soon", "--for", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a number of milliseconds"));

    let out = Command::new(BIN)
        .args(["demo", "--nodes", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A child process whose stdout lines arrive on a channel.
struct Running {
    child: Child,
    lines: Receiver<String>,
}

impl Running {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    fn send(&mut self, line: &str) {
        writeln!(self.child.stdin.as_mut().unwrap(), "{line}").unwrap();
    }

    fn expect(&self, wanted: &str) {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Ok(line) = self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                if line == wanted {
                    return;
                }
                seen.push(line);
            }
        }
        panic!("no line {wanted:?}; saw {seen:?}");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn two_node_processes_discover_each_other() {
    let path = std::env::temp_dir().join(format!("zgossip-cli-{}.ipc", std::process::id()));
    let endpoint = format!("ipc://{}", path.display());
    let mut a = Running::start(&[
        "node",
        "--bind",
        &endpoint,
        "--announce",
        "tcp://a:1=printer A",
    ]);
    a.expect(&format!("BOUND {endpoint} PORT 0"));
    let mut b = Running::start(&[
        "node",
        "--connect",
        &endpoint,
        "--announce",
        "tcp://b:1=scanner B",
    ]);
    a.expect("DELIVER tcp://b:1 scanner B");
    b.expect("DELIVER tcp://a:1 printer A");
    // Text commands on stdin.
    b.send("ANNOUNCE tcp://b:2 fax");
    a.expect("DELIVER tcp://b:2 fax");
    a.send("STATUS");
    a.expect("STATUS 3");
    a.send("PORT");
    a.expect("PORT 0");
    a.send("$TERM");
    let deadline = Instant::now() + WAIT;
    while a.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "$TERM did not stop the node");
        // Wait for the process to exit, bounded by the deadline.
        let _ = a.lines.recv_timeout(Duration::from_millis(20));
    }
    b.send("$TERM");
    let _ = std::fs::remove_file(&path);
}
