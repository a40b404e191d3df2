//! The `zgossip` command line: the default demo, bad arguments, and two node
//! processes discovering each other over ipc, driven by text commands.

use zgossip_testkit as support;

use std::process::Command;

use support::Running;

const BIN: &str = env!("CARGO_BIN_EXE_zgossip");

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

#[test]
fn two_node_processes_discover_each_other() {
    let path = std::env::temp_dir().join(format!("zgossip-cli-{}.ipc", std::process::id()));
    let endpoint = format!("ipc://{}", path.display());
    let mut a = Running::start(
        BIN,
        &[
            "node",
            "--bind",
            &endpoint,
            "--announce",
            "tcp://a:1=printer A",
        ],
    );
    a.expect(&format!("BOUND {endpoint} PORT 0"));
    let mut b = Running::start(
        BIN,
        &[
            "node",
            "--connect",
            &endpoint,
            "--announce",
            "tcp://b:1=scanner B",
        ],
    );
    a.expect("DELIVER tcp://b:1 scanner B");
    b.expect_all(&[
        "DELIVER tcp://a:1 printer A",
        &format!("PEER UP remote {endpoint}"),
    ]);
    // Text commands on stdin.
    b.send("ANNOUNCE tcp://b:2 fax");
    a.expect("DELIVER tcp://b:2 fax");
    a.send("STATUS");
    a.expect("STATUS 3");
    a.send("TUPLES");
    a.expect("TUPLE tcp://a:1 printer A");
    a.expect("TUPLE tcp://b:1 scanner B");
    a.expect("TUPLE tcp://b:2 fax");
    a.expect("TUPLES 3");
    a.send("PEERS");
    a.expect_line("a session, up", |l| {
        l.starts_with("PEER session ") && l.ends_with(" up")
    });
    a.expect("PEERS 1");
    a.send("PORT");
    a.expect("PORT 0");
    a.send("$TERM");
    a.expect_exit();
    b.send("$TERM");
    let _ = std::fs::remove_file(&path);
}

/// Nodes whose tcp remotes are monitored, connected to peers in other
/// processes that die, must close without wedging libzmq's I/O thread (it
/// did when a monitor's peer socket was closed before the monitored socket).
#[test]
fn monitored_remotes_of_dying_peers_close_cleanly() {
    for round in 0..6 {
        let peer = Running::start(BIN, &["node", "--bind", "tcp://127.0.0.1:*"]);
        let line = peer.expect_line("BOUND", |l| l.starts_with("BOUND "));
        let port = line.rsplit(' ').next().unwrap();
        let node = zgossip::Node::new("local").unwrap();
        node.connect(&format!("tcp://127.0.0.1:{port}")).unwrap();
        node.announce(&format!("tcp://r:{round}"), "x").unwrap();
        // The peer learns the tuple: the connection is up.
        assert_eq!(node.stats().unwrap().malformed, 0);
        drop(node);
        drop(peer);
    }
    // Every socket of this process still works.
    let a = zgossip::Node::new("a").unwrap();
    a.bind("tcp://127.0.0.1:*").unwrap();
    let b = zgossip::Node::new("b").unwrap();
    b.connect(&format!("tcp://127.0.0.1:{}", a.port().unwrap()))
        .unwrap();
    b.announce("tcp://b:1", "B").unwrap();
    let d = a
        .recv_delivery(support::WAIT)
        .expect("the delivery arrives");
    assert_eq!(
        (d.endpoint.as_str(), d.service.as_str()),
        ("tcp://b:1", "B")
    );
}

#[test]
fn swarm_on_simulated_time_counts_the_same_twice_and_sockets_refuse_it() {
    let run = |extra: &[&str]| {
        let out = Command::new(BIN)
            .args(["swarm", "--nodes", "60", "--topology", "graph", "-k", "3"])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let messages = |stdout: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with("messages:"))
            .map(str::to_owned)
    };
    let (code, first, _) = run(&["--simulated-time", "2000"]);
    assert_eq!(code, Some(0), "{first}");
    assert!(first.contains("converged"), "{first}");
    let (_, second, _) = run(&["--simulated-time", "2000"]);
    // Plumtree's timers depend on simulated time only: the same count.
    assert!(messages(&first).is_some());
    assert_eq!(messages(&first), messages(&second), "{first}\n{second}");
    let (code, _, stderr) = run(&["--simulated-time", "2000", "--transport", "inproc"]);
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("simulated time needs --transport memory"),
        "{stderr}"
    );
}

#[test]
fn swarm_runs_and_writes_its_curve() {
    let dir = std::env::temp_dir().join(format!("zgossip-swarm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (csv, svg) = (dir.join("curve.csv"), dir.join("curve.svg"));
    let out = Command::new(BIN)
        .args(["swarm", "--nodes", "100", "--churn", "0.1", "--csv"])
        .arg(&csv)
        .arg("--plot")
        .arg(&svg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("converged: every live node holds all 100 tuples"),
        "{stdout}"
    );
    assert!(
        stdout.contains("nodes that left and rejoined: 10"),
        "{stdout}"
    );
    // The CSV reads back, and its last row is the converged state.
    let mut reader = csv::Reader::from_path(&csv).expect("the CSV opens");
    assert_eq!(
        reader.headers().expect("headers"),
        vec!["elapsed_ms", "complete", "live", "share"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a row")).collect();
    assert!(!rows.is_empty());
    assert_eq!(&rows[rows.len() - 1][3], "1.0000");
    // The SVG is well-formed XML.
    let text = std::fs::read_to_string(&svg).unwrap();
    let mut xml = quick_xml::Reader::from_str(&text);
    let mut elements = 0;
    loop {
        match xml.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Start(_) | quick_xml::events::Event::Empty(_)) => {
                elements += 1
            }
            Ok(_) => {}
            Err(e) => panic!("the SVG is not well-formed: {e}"),
        }
    }
    assert!(text.contains("<svg") && elements > 10, "{text}");
    let _ = std::fs::remove_dir_all(&dir);

    let out = Command::new(BIN)
        .args(["swarm", "--churn", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--churn must be between 0 and 1"));
    let out = Command::new(BIN)
        .args(["swarm", "--topology", "ring"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN)
        .args([
            "swarm",
            "--nodes",
            "400",
            "--topology",
            "chain",
            "--timeout",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("NOT converged"));
}

/// `--log-format json`: every line on stderr is one JSON object, strings
/// from peers escaped inside it (a log collector reads them as they come).
#[test]
fn json_logs_are_one_object_per_line() {
    let path = std::env::temp_dir().join(format!("zgossip-json-{}.ipc", std::process::id()));
    let endpoint = format!("ipc://{}", path.display());
    let mut node =
        Running::start_with_stderr(BIN, &["--log-format", "json", "node", "--bind", &endpoint]);
    node.expect(&format!("BOUND {endpoint} PORT 0"));
    // A peer sends a frame that is no message, with a newline in it.
    let peer = zproto_runtime::reactor::socket(zmq::DEALER).expect("socket");
    peer.set_linger(0).expect("linger");
    peer.connect(&endpoint).expect("connect");
    peer.send(&b"\xaa\xa0\x02\nDELIVER forged"[..], 0)
        .expect("send");
    let line = node.expect_stderr_line(|l| l.contains("malformed"));
    let value: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    assert_eq!(value["level"], "WARN", "{line}");
    assert!(value["fields"]["message"].is_string(), "{line}");
    node.send("$TERM");
    node.expect_exit();
    for line in node.stderr_lines() {
        serde_json::from_str::<serde_json::Value>(&line)
            .unwrap_or_else(|e| panic!("a stderr line is not JSON ({e}): {line}"));
    }
    let _ = std::fs::remove_file(&path);
}

/// `zgossip resolve SERVICE --connect ENDPOINT`: the endpoints that offer
/// a service, one per line; exit 1 when none is known in time.
#[test]
fn resolve_prints_the_endpoints_of_a_service() {
    let node = zgossip::Node::new("directory").expect("node");
    node.bind("tcp://127.0.0.1:*").expect("bind");
    let at = format!("tcp://127.0.0.1:{}", node.port().expect("port"));
    node.announce("tcp://10.0.0.1:9000", "printer")
        .expect("announce");
    node.announce("tcp://10.0.0.2:9000", "scanner")
        .expect("announce");
    node.announce("tcp://10.0.0.3:9000", "printer")
        .expect("announce");

    let out = Command::new(BIN)
        .args(["resolve", "printer", "--connect", &at])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["tcp://10.0.0.1:9000", "tcp://10.0.0.3:9000"]);

    let out = Command::new(BIN)
        .args(["resolve", "plotter", "--connect", &at, "--timeout", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no endpoint offers \"plotter\""));

    let out = Command::new(BIN)
        .args(["resolve", "printer"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "--connect is required");
}

/// A port free on loopback now (the listener is closed before use).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// zmqnet's peers file: each replica binds its own port and connects to
/// the others; a bad file (here through `$PEERS_PATH`) gets a located error.
#[test]
fn replicas_of_a_peers_file_find_each_other() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("peers.json");
    let (a, b) = (free_port(), free_port());
    let file = format!(
        r#"{{"info": {{"cluster": "test"}}, "replicas": [
            {{"pid": 1, "name": "alpha", "address": "", "host": "localhost", "ipaddr": "127.0.0.1", "port": {a}}},
            {{"pid": 2, "name": "beta", "host": "localhost", "ipaddr": "127.0.0.1", "port": {b}}}]}}"#
    );
    std::fs::write(&path, file).expect("write");
    let file_arg = path.to_str().expect("utf-8");
    let mut alpha = Running::start(
        BIN,
        &[
            "node",
            "--peers",
            file_arg,
            "--name",
            "alpha",
            "--announce",
            "tcp://a:1=A",
        ],
    );
    alpha.expect(&format!("BOUND tcp://127.0.0.1:{a} PORT {a}"));
    let mut beta = Running::start(
        BIN,
        &[
            "node",
            "--peers",
            file_arg,
            "--name",
            "beta",
            "--announce",
            "tcp://b:1=B",
        ],
    );
    beta.expect(&format!("CONNECTING tcp://127.0.0.1:{a}"));
    alpha.expect("DELIVER tcp://b:1 B");
    beta.expect("DELIVER tcp://a:1 A");
    alpha.send("$TERM");
    alpha.expect_exit();
    beta.send("$TERM");
    beta.expect_exit();

    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        "{\"replicas\": [\n  {\"name\": \"alpha\", \"port\": \"x\"}]}",
    )
    .expect("write");
    let out = Command::new(BIN)
        .args(["node", "--name", "alpha", "--for", "1"])
        .env("PEERS_PATH", &bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.json, line 2 column"), "{stderr}");
}

/// `zgossip keygen PATH`: a CURVE key pair in CZMQ's certificate format,
/// the secret half readable by its owner only.
#[test]
fn keygen_writes_a_certificate_pair() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("node.cert");
    let out = Command::new(BIN)
        .args(["keygen", path.to_str().expect("utf-8")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let public = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PUBLIC "))
        .expect("the public key");
    let cert = zgossip::cert::Certificate::load(&path).expect("loads");
    assert_eq!(cert.public, public);
    assert!(cert.secret.is_some());
    let secret = dir.path().join("node.cert_secret");
    let mode = std::fs::metadata(&secret)
        .expect("secret file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "secret file mode {mode:o}");
    assert!(!std::fs::read_to_string(&path)
        .unwrap()
        .contains("secret-key"));
}

/// CURVE from the command line: `--cert` and `--allow` on the server,
/// `--connect ENDPOINT=KEY` on the client, certificates from `keygen`.
#[test]
fn nodes_gossip_over_curve_with_keygens_certificates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let allow = dir.path().join("allow");
    std::fs::create_dir(&allow).expect("allow dir");
    let keygen = |path: &std::path::Path| {
        let out = Command::new(BIN)
            .args(["keygen", path.to_str().expect("utf-8")])
            .output()
            .unwrap();
        assert!(out.status.success());
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("PUBLIC "))
            .expect("public key")
            .to_owned()
    };
    let server_public = keygen(&dir.path().join("server.cert"));
    keygen(&dir.path().join("client.cert"));
    keygen(&dir.path().join("second.cert"));
    for name in ["client.cert", "second.cert"] {
        std::fs::copy(dir.path().join(name), allow.join(name)).expect("copy");
    }
    let path = |name: &str| dir.path().join(name).to_str().expect("utf-8").to_owned();

    let mut server = Running::start(
        BIN,
        &[
            "node",
            "--cert",
            &path("server.cert_secret"),
            "--allow",
            allow.to_str().expect("utf-8"),
            "--bind",
            "tcp://127.0.0.1:*",
            "--announce",
            "tcp://s:1=S",
        ],
    );
    server.expect("CURVE 2 peers allowed");
    let bound = server.expect_line("BOUND", |l| l.starts_with("BOUND "));
    let port = bound.rsplit(' ').next().expect("port");
    let target = format!("tcp://127.0.0.1:{port}={server_public}");
    let mut client = Running::start(
        BIN,
        &[
            "node",
            "--cert",
            &path("client.cert_secret"),
            "--allow",
            allow.to_str().expect("utf-8"),
            "--connect",
            &target,
            "--announce",
            "tcp://c:1=C",
        ],
    );
    server.expect("DELIVER tcp://c:1 C");
    client.expect("DELIVER tcp://s:1 S");
    // CZMQ's draft text command: CONNECT endpoint key.
    let mut second = Running::start(
        BIN,
        &[
            "node",
            "--cert",
            &path("second.cert_secret"),
            "--allow",
            allow.to_str().expect("utf-8"),
        ],
    );
    second.send(&format!("CONNECT tcp://127.0.0.1:{port} {server_public}"));
    second.expect_line("the server's tuples", |l| l == "DELIVER tcp://s:1 S");
    second.send("$TERM");
    second.expect_exit();
    server.send("$TERM");
    server.expect_exit();
    client.send("$TERM");
    client.expect_exit();
}

/// CZMQ's draft CURVE commands on stdin: `SET PUBLICKEY`, `SET SECRETKEY`,
/// `ZAP DOMAIN`, then `CONNECT endpoint key`. Keys alone admit any CURVE
/// client (no allow-list, as CZMQ without zauth), and no NULL client.
#[test]
fn czmqs_draft_curve_commands_on_stdin() {
    let keys = |pair: zmq::CurveKeyPair| {
        (
            zmq::z85_encode(&pair.public_key).unwrap(),
            zmq::z85_encode(&pair.secret_key).unwrap(),
        )
    };
    let (server_public, server_secret) = keys(zmq::CurveKeyPair::new().unwrap());
    let (client_public, client_secret) = keys(zmq::CurveKeyPair::new().unwrap());
    let mut server = Running::start(BIN, &["node"]);
    server.send(&format!("SET PUBLICKEY {server_public}"));
    server.send(&format!("SET SECRETKEY {server_secret}"));
    server.send("ZAP DOMAIN global");
    server.send("BIND tcp://127.0.0.1:*");
    server.send("PORT");
    let port = server.expect_line("PORT", |l| l.starts_with("PORT "));
    let port = port.rsplit(' ').next().expect("port").to_owned();
    server.send("ANNOUNCE tcp://s:1 S");
    // A NULL client is refused in the handshake: it never hears of S.
    let mut plain = Running::start(BIN, &["node"]);
    plain.send(&format!("CONNECT tcp://127.0.0.1:{port}"));
    let mut client = Running::start(BIN, &["node"]);
    client.send(&format!("SET PUBLICKEY {client_public}"));
    client.send(&format!("SET SECRETKEY {client_secret}"));
    client.send(&format!("CONNECT tcp://127.0.0.1:{port} {server_public}"));
    client.send("ANNOUNCE tcp://c:1 C");
    client.expect_line("the server's tuple", |l| l == "DELIVER tcp://s:1 S");
    server.expect_line("the client's tuple", |l| l == "DELIVER tcp://c:1 C");
    plain.send("STATUS");
    plain.expect_line("STATUS", |l| l == "STATUS 0");
    // A malformed key is an error on stderr, and the node goes on.
    client.send("SET SECRETKEY short");
    client.send("STATUS");
    client.expect_line("STATUS", |l| l.starts_with("STATUS "));
    for node in [&mut server, &mut client, &mut plain] {
        node.send("$TERM");
        node.expect_exit();
    }
}
