//! The operator's surfaces of `zgossip`: files named on the command line
//! are hostile input (devices, FIFOs, huge files), and each CLI point that
//! once surprised an operator is pinned here (help, keygen, flag errors,
//! connect-only CURVE nodes, refusals in the logs, `resolve` over CURVE,
//! ANNOUNCE's ttl, `-v`).

use zgossip_testkit as support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::Running;

const BIN: &str = env!("CARGO_BIN_EXE_zgossip");

/// Runs `zgossip args` to its end, which must come within 10 s.
fn run(args: &[&str]) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("zgossip {args:?} still ran after 10 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    (child.wait_with_output().expect("output"), start.elapsed())
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(made.success());
}

/// A certificate pair made by `keygen`; its public key.
fn keygen(path: &Path) -> String {
    let (out, _) = run(&["keygen", path.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("PUBLIC "))
        .expect("a public key")
        .to_owned()
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8")
}

/// The hostile files every file flag must refuse quickly, by name: what
/// each is, and where it is.
fn hostile_files(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    let big = dir.join("big");
    std::fs::write(&big, vec![b'#'; 17 << 20]).expect("a big file");
    let link = dir.join("zero-link");
    std::os::unix::fs::symlink("/dev/zero", &link).expect("symlink");
    vec![
        ("a FIFO nobody writes", fifo),
        ("/dev/zero", PathBuf::from("/dev/zero")),
        ("/dev/urandom", PathBuf::from("/dev/urandom")),
        ("a link to /dev/zero", link),
        ("a 17 MiB file", big),
    ]
}

/// `zgossip args FILE` is refused at once, with exit code 2 and an error
/// naming the flag's file and the reason, for every hostile file.
fn refuses_hostile_files(flag_args: impl Fn(&str) -> Vec<String>) {
    let dir = tempfile::tempdir().expect("dir");
    for (what, file) in hostile_files(dir.path()) {
        let args = flag_args(s(&file));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (out, took) = run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {args:?}: {err}");
        assert!(
            err.contains("not a regular file") || err.contains("-byte limit"),
            "{what}: {err}"
        );
        assert!(took < Duration::from_secs(3), "{what}: took {took:?}");
    }
}

#[test]
fn config_files_that_are_devices_fifos_or_huge_are_refused_at_once() {
    refuses_hostile_files(|file| {
        ["node", "--no-stdin", "--for", "1", "--config", file]
            .map(String::from)
            .to_vec()
    });
}

#[test]
fn peers_files_that_are_devices_fifos_or_huge_are_refused_at_once() {
    refuses_hostile_files(|file| {
        [
            "node",
            "--no-stdin",
            "--for",
            "1",
            "--peers",
            file,
            "--name",
            "a",
        ]
        .map(String::from)
        .to_vec()
    });
}

#[test]
fn certificates_that_are_devices_fifos_or_huge_are_refused_at_once() {
    refuses_hostile_files(|file| {
        ["node", "--no-stdin", "--for", "1", "--cert", file]
            .map(String::from)
            .to_vec()
    });
}

#[test]
fn allow_lists_holding_devices_fifos_or_huge_files_are_refused_at_once() {
    let dir = tempfile::tempdir().expect("dir");
    keygen(&dir.path().join("me.cert"));
    let me = dir.path().join("me.cert_secret");
    for (what, file) in hostile_files(dir.path()) {
        let allow = dir.path().join(format!("allow-{}", what.len()));
        std::fs::create_dir(&allow).expect("dir");
        std::os::unix::fs::symlink(&file, allow.join("peer.cert")).expect("link");
        let (out, took) = run(&[
            "node",
            "--no-stdin",
            "--for",
            "1",
            "--cert",
            s(&me),
            "--allow",
            s(&allow),
        ]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains("--allow"), "{what}: {err}");
        assert!(took < Duration::from_secs(3), "{what}: took {took:?}");
    }
    // The allow-list itself a FIFO: not a directory.
    let fifo = dir.path().join("allow-fifo");
    mkfifo(&fifo);
    let (out, took) = run(&[
        "node",
        "--no-stdin",
        "--for",
        "1",
        "--cert",
        s(&me),
        "--allow",
        s(&fifo),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(took < Duration::from_secs(3));
}

#[test]
fn node_help_lists_every_text_command() {
    let (out, _) = run(&["node", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for (syntax, _) in zgossip_cli::command::COMMANDS {
        assert!(help.contains(syntax), "{syntax} missing from\n{help}");
    }
    assert!(zgossip_cli::command::COMMANDS.len() >= 14);
}

#[test]
fn keygen_refuses_to_overwrite_a_key_pair_without_force() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("node.cert");
    let first = keygen(&path);
    let secret = std::fs::read(dir.path().join("node.cert_secret")).expect("secret");
    let (out, _) = run(&["keygen", s(&path)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(dir.path().join("node.cert_secret")).expect("secret"),
        secret,
        "the secret key must be untouched"
    );
    // The secret file alone is enough to refuse.
    std::fs::remove_file(&path).expect("rm");
    let (out, _) = run(&["keygen", s(&path)]);
    assert_eq!(out.status.code(), Some(2));
    let (out, _) = run(&["keygen", "--force", s(&path)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let second = zgossip::cert::Certificate::load(&path).expect("loads");
    assert_ne!(second.public, first);
}

#[test]
fn flag_errors_name_flags_not_the_api() {
    let key = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
    let target = format!("tcp://127.0.0.1:1={key}");
    let (out, _) = run(&["node", "--no-stdin", "--for", "1", "--connect", &target]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("needs --cert"), "{err}");
    assert!(!err.contains("Node::"), "{err}");

    let dir = tempfile::tempdir().expect("dir");
    keygen(&dir.path().join("me.cert"));
    let me = dir.path().join("me.cert_secret");
    let (out, _) = run(&[
        "node",
        "--no-stdin",
        "--for",
        "1",
        "--cert",
        s(&me),
        "--bind",
        "tcp://127.0.0.1:*",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("needs --allow"), "{err}");
    // A public certificate (no secret key) names the flag and the file.
    let public = dir.path().join("public.cert");
    std::fs::copy(dir.path().join("me.cert"), &public).expect("copy");
    let (out, _) = run(&["node", "--no-stdin", "--for", "1", "--cert", s(&public)]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--cert") && err.contains("no secret key"),
        "{err}"
    );
}

/// Two CURVE servers' worth of setup: a server with an allow-list holding
/// `allowed`, and the certificates.
struct Curve {
    dir: tempfile::TempDir,
    server_public: String,
}

impl Curve {
    fn new(allowed: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let server_public = keygen(&dir.path().join("server.cert"));
        std::fs::create_dir(dir.path().join("allow")).expect("allow");
        for name in ["client", "stranger"] {
            keygen(&dir.path().join(format!("{name}.cert")));
        }
        for name in allowed {
            std::fs::copy(
                dir.path().join(format!("{name}.cert")),
                dir.path().join("allow").join(format!("{name}.cert")),
            )
            .expect("copy");
        }
        Self { dir, server_public }
    }

    fn path(&self, name: &str) -> String {
        s(&self.dir.path().join(name)).to_owned()
    }

    /// The server node, bound on loopback, announcing S; and its target
    /// for `--connect`.
    fn server(&self) -> (Running, String) {
        let server = Running::start_with_stderr(
            BIN,
            &[
                "node",
                "--cert",
                &self.path("server.cert_secret"),
                "--allow",
                &self.path("allow"),
                "--bind",
                "tcp://127.0.0.1:*",
                "--announce",
                "tcp://s:1=S",
            ],
        );
        let bound = server.expect_line("BOUND", |l| l.starts_with("BOUND "));
        let port = bound.rsplit(' ').next().expect("port").to_owned();
        (
            server,
            format!("tcp://127.0.0.1:{port}={}", self.server_public),
        )
    }
}

#[test]
fn a_connect_only_node_needs_no_allow_list() {
    let curve = Curve::new(&["client"]);
    let (mut server, target) = curve.server();
    let mut client = Running::start(
        BIN,
        &[
            "node",
            "--cert",
            &curve.path("client.cert_secret"),
            "--connect",
            &target,
            "--announce",
            "tcp://c:1=C",
        ],
    );
    server.expect("DELIVER tcp://c:1 C");
    client.expect("DELIVER tcp://s:1 S");
    client.send("$TERM");
    client.expect_exit();
    server.send("$TERM");
    server.expect_exit();
}

#[test]
fn refused_peers_are_logged_on_both_sides_with_address_and_reason() {
    let curve = Curve::new(&["client"]);
    let (mut server, target) = curve.server();
    // A CURVE client whose key is not on the allow-list.
    let mut stranger = Running::start_with_stderr(
        BIN,
        &[
            "node",
            "--cert",
            &curve.path("stranger.cert_secret"),
            "--connect",
            &target,
        ],
    );
    let refused = server.expect_stderr_line(|l| l.contains("refused"));
    assert!(refused.contains("127.0.0.1"), "{refused}");
    assert!(refused.contains("not on the allow-list"), "{refused}");
    let told = stranger.expect_stderr_line(|l| l.contains("refused"));
    assert!(told.contains("tcp://127.0.0.1:"), "{told}");
    assert!(told.contains("authentication refused"), "{told}");
    stranger.send("$TERM");
    stranger.expect_exit();
    // A NULL client: no CURVE at all.
    let plain_target = target[..target.len() - 41].to_owned();
    let mut plain = Running::start_with_stderr(BIN, &["node", "--connect", &plain_target]);
    // Which side sees the mismatch first is a race inside libzmq: the
    // server reports the mismatch, or that the peer hung up mid-handshake.
    let mismatch = server.expect_stderr_line(|l| {
        l.contains("was refused")
            && (l.contains("mechanism mismatch") || l.contains("handshake failed"))
    });
    assert!(
        mismatch.contains("a peer on tcp://127.0.0.1:"),
        "{mismatch}"
    );
    // The client sees the mismatch too, or (when the server hung up
    // first) a handshake that failed, with a suggestion why.
    let told = plain.expect_stderr_line(|l| l.contains("refused"));
    assert!(
        told.contains("mechanism mismatch") || told.contains("handshake failed"),
        "{told}"
    );
    assert!(told.contains(&plain_target), "{told}");
    plain.send("$TERM");
    plain.expect_exit();
    server.send("$TERM");
    server.expect_exit();
}

#[test]
fn resolve_asks_a_curve_node_with_its_server_key() {
    let curve = Curve::new(&["client"]);
    let (mut server, target) = curve.server();
    let (out, _) = run(&[
        "resolve",
        "S",
        "--connect",
        &target,
        "--cert",
        &curve.path("client.cert_secret"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "tcp://s:1");
    // A key made for the query is not on the allow-list: refused, so no
    // answer.
    let (out, _) = run(&["resolve", "S", "--connect", &target, "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    server.send("$TERM");
    server.expect_exit();
}

#[test]
fn announce_with_a_ttl_is_refused_never_ignored() {
    let mut node = Running::start_with_stderr(BIN, &["node"]);
    node.send("ANNOUNCE tcp://a:1 printer 5000");
    let err = node.expect_stderr_line(|l| l.contains("ttl"));
    assert!(err.contains("tuples/lease"), "{err}");
    node.send("STATUS");
    node.expect("STATUS 0");
    node.send("ANNOUNCE tcp://a:1 printer on floor 2");
    node.send("TUPLES");
    node.expect("TUPLE tcp://a:1 printer on floor 2");
    node.send("$TERM");
    node.expect_exit();
}

#[test]
fn verbose_logs_the_sessions_states_events_and_actions() {
    let path = std::env::temp_dir().join(format!("zgossip-verbose-{}.ipc", std::process::id()));
    let endpoint = format!("ipc://{}", path.display());
    let mut server = Running::start_with_stderr(BIN, &["-v", "node", "--bind", &endpoint]);
    server.expect(&format!("BOUND {endpoint} PORT 0"));
    let mut client = Running::start(
        BIN,
        &["node", "--connect", &endpoint, "--announce", "tcp://c:1=C"],
    );
    server.expect("DELIVER tcp://c:1 C");
    let line = server.expect_stderr_line(|l| l.contains("HELLO") || l.contains("hello"));
    assert!(line.contains("DEBUG"), "{line}");
    client.send("$TERM");
    client.expect_exit();
    server.send("$TERM");
    server.expect_exit();
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_fifo_fed_without_end_is_refused_not_read() {
    let dir = tempfile::tempdir().expect("dir");
    let fifo = dir.path().join("endless");
    mkfifo(&fifo);
    // `yes` waits for a reader, then writes for ever: the node must not
    // read it (it would never reach a limit checked by `stat`).
    let mut writer = Command::new("sh")
        .arg("-c")
        .arg(format!("exec yes > '{}'", fifo.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("a writer");
    let (out, took) = run(&["node", "--no-stdin", "--for", "1", "--config", s(&fifo)]);
    let _ = writer.kill();
    let _ = writer.wait();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not a regular file (a FIFO)"), "{err}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}
