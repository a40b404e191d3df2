//! The example runs as its users would run it: to the end of its calls
//! (`--once`), and until Ctrl-C (SIGINT), which shuts it down in order
//! with exit status 0. Each run is bounded in time.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a run may take, at most.
const BOUND: Duration = Duration::from_secs(60);

/// The example running, its stdout lines arriving on a channel.
struct Run {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Run {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_async-echo"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the example starts");
        let stdout = child.stdout.take().expect("stdout");
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

    /// Lines until one starts with `prefix` (that one included).
    fn until(&self, prefix: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            match self.lines.recv_timeout(BOUND) {
                Ok(line) => {
                    let done = line.starts_with(prefix);
                    seen.push(line);
                    if done {
                        return seen;
                    }
                }
                Err(_) => panic!("no line starting {prefix:?} within {BOUND:?}; saw {seen:?}"),
            }
        }
    }

    /// The exit status, waited for at most [`BOUND`].
    fn exit_code(mut self) -> Option<i32> {
        let deadline = std::time::Instant::now() + BOUND;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the example did not exit"
            );
            // Polling a child process: there is no event to wait on.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn it_discovers_the_server_and_answers_every_call_of_every_task() {
    let run = Run::start(&["--once", "--tasks", "50", "--calls", "20"]);
    let lines = run.until("stopped:");
    assert!(
        lines[0].starts_with("discovered echo at tcp://127.0.0.1:"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("1000 calls answered in")),
        "{lines:?}"
    );
    // 1000 SAYs, the HELLO and the goodbye's... whatever the server read,
    // at least every call.
    let stopped = lines.last().expect("a last line");
    assert!(
        stopped.starts_with("stopped: 1000 calls answered, "),
        "{stopped}"
    );
    assert_eq!(run.exit_code(), Some(0));
}

#[test]
fn ctrl_c_shuts_it_down_in_order() {
    // Calls that last well past the signal.
    let run = Run::start(&["--tasks", "10", "--calls", "100000"]);
    run.until("ready:");
    let pid = i32::try_from(run.child.id()).expect("a pid");
    // SAFETY: kill(2) on our own child, which has not been waited for.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let lines = run.until("stopped:");
    assert!(
        lines.iter().any(|l| l == "Ctrl-C: shutting down"),
        "{lines:?}"
    );
    assert_eq!(run.exit_code(), Some(0), "a clean exit after Ctrl-C");
}
