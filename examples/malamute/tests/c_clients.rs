//! The real C clients (upstream's `mshell`, and `tests/c/mlm_peer.c`, a
//! small program of ours on `libmlm.a`) on each broker, ours and the C
//! one, mixed with our generated client (and our `mshell`, which must do
//! as upstream's): streams, mailboxes (also kept for
//! a client that connects later), services, PLAIN accepted and refused.
//! Without the C Malamute (../shared and libczmq) one line says the suite
//! did not run; `.ci/run` requires it.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use malamute::client::MlmClient;
use malamute::mlm_proto::MlmProto;
use support::{c_malamute, eventually, Broker, Kind, Scratch, WAIT};

/// Ours and the C broker, and the directory of the C programs; `None`
/// (having said why) without the C Malamute.
fn setup(test: &str) -> Option<(Vec<Kind>, std::path::PathBuf)> {
    let c = c_malamute(test)?;
    Some((vec![Kind::Ours, Kind::C(c.clone())], c))
}

fn rust_client(endpoint: &str, address: &str) -> MlmClient {
    let mut client = MlmClient::with_defaults().expect("client");
    assert_eq!(client.connect(endpoint, 5000, address, WAIT), Ok(0));
    client
}

/// Run `mlm_peer` to the end.
fn peer(c: &Path, args: &[&str]) -> Output {
    Command::new(c.join("mlm_peer"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("mlm_peer runs")
}

/// CZMQ's log lines (`I: 26-11-23 10:00:00 ...`) go to stdout too.
fn is_log(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 4
        && matches!(b[0], b'D' | b'I' | b'N' | b'W' | b'E')
        && &b[1..3] == b": "
        && b[3].is_ascii_digit()
}

/// A program's own output lines, without CZMQ's log lines.
fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !is_log(l))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A C program running in the background, its stdout lines on a channel.
struct Background {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Background {
    fn start(program: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starts");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if is_log(&line) {
                    continue;
                }
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    fn line(&self, wait: Duration) -> Option<String> {
        self.lines.recv_timeout(wait).ok()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn body(message: &MlmProto) -> (String, String, String) {
    let (sender, subject, content) = match message {
        MlmProto::StreamDeliver(m) => (&m.sender, &m.subject, &m.content),
        MlmProto::MailboxDeliver(m) => (&m.sender, &m.subject, &m.content),
        MlmProto::ServiceDeliver(m) => (&m.sender, &m.subject, &m.content),
        other => panic!("not a delivery: {other:?}"),
    };
    let first = content
        .first()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .unwrap_or_default();
    (sender.clone(), subject.clone(), first)
}

#[test]
fn mshells_streams_with_our_client() {
    let Some((kinds, c)) = setup("mshells_streams_with_our_client") else {
        return;
    };
    let mshells = [c.join("mshell"), env!("CARGO_BIN_EXE_mshell").into()];
    for (kind, mshell) in kinds
        .iter()
        .flat_map(|k| mshells.iter().map(move |m| (k, m)))
    {
        let scratch = Scratch::new(&format!("mshell-{}", kind.name()));
        let endpoint = scratch.ipc("broker");
        let _broker = Broker::start(kind, &scratch, &endpoint, None);
        // mshell consumes; we produce until it has subscribed and prints.
        // (Line-buffered through stdbuf: mshell's printf to a pipe would
        // wait for a full buffer.)
        let consumer = Background::start(
            Path::new("stdbuf"),
            &[
                "-oL",
                &mshell.display().to_string(),
                "-n",
                "-e",
                &endpoint,
                "weather",
                "temp.*",
            ],
        );
        let mut producer = rust_client(&endpoint, "");
        assert_eq!(producer.set_producer("weather", WAIT), Ok(0));
        let mut seen = None;
        assert!(
            eventually(|| {
                producer.send_text("rain.x", &["wet"]).expect("send");
                producer.send_text("temp.x", &["21"]).expect("send");
                seen = consumer.line(Duration::from_millis(100));
                seen.is_some()
            }),
            "{}: mshell printed nothing",
            kind.name()
        );
        assert_eq!(
            seen.as_deref(),
            Some("Content=21 subject=temp.x"),
            "{}",
            kind.name()
        );
        // mshell produces; we consume.
        let mut reader = rust_client(&endpoint, "");
        assert_eq!(reader.set_consumer("weather", "temp.*", WAIT), Ok(0));
        let status = Command::new(mshell)
            .args(["-n", "-e", &endpoint, "weather", "temp.y", "42"])
            .stdout(Stdio::null())
            .status()
            .expect("mshell");
        assert!(status.success());
        let got = reader.recv(WAIT).expect("mshell's message");
        assert_eq!(
            body(&got),
            (String::new(), "temp.y".into(), "42".into()),
            "{}",
            kind.name()
        );
    }
}

#[test]
fn c_and_rust_mailboxes_both_ways() {
    let Some((kinds, c)) = setup("c_and_rust_mailboxes_both_ways") else {
        return;
    };
    for kind in &kinds {
        let scratch = Scratch::new(&format!("mail-{}", kind.name()));
        let endpoint = scratch.ipc("broker");
        let _broker = Broker::start(kind, &scratch, &endpoint, None);
        // C sends to us.
        let rust = rust_client(&endpoint, "rust");
        let sent = peer(
            &c,
            &[&endpoint, "c-sender", "sendto", "rust", "greet", "hello"],
        );
        assert!(sent.status.success(), "{}: sendto", kind.name());
        let got = rust.recv(WAIT).expect("the C client's mail");
        assert_eq!(
            body(&got),
            ("c-sender".into(), "greet".into(), "hello".into())
        );
        // We send to a C client that connects later: the mailbox keeps it.
        rust.sendto_text("c-later", "kept", "", 0, &["for later"])
            .expect("sendto");
        let mut rust = rust;
        assert_eq!(rust.set_producer("flush", WAIT), Ok(0));
        let received = peer(&c, &[&endpoint, "c-later", "recv"]);
        assert_eq!(
            stdout(&received),
            "MAILBOX DELIVER sender=rust subject=kept body=for later\n",
            "{}",
            kind.name()
        );
    }
}

#[test]
fn c_and_rust_services_both_ways() {
    let Some((kinds, c)) = setup("c_and_rust_services_both_ways") else {
        return;
    };
    for kind in &kinds {
        let scratch = Scratch::new(&format!("service-{}", kind.name()));
        let endpoint = scratch.ipc("broker");
        let _broker = Broker::start(kind, &scratch, &endpoint, None);
        // A C worker, our requester.
        let worker = Background::start(
            &c.join("mlm_peer"),
            &[&endpoint, "c-worker", "worker", "echo", "hi.*"],
        );
        assert_eq!(worker.line(WAIT).as_deref(), Some("ready"));
        let requester = rust_client(&endpoint, "rust-requester");
        requester
            .sendfor_text("echo", "hi.there", "", 0, &["ping"])
            .expect("sendfor");
        let answer = requester.recv(WAIT).expect("the C worker's answer");
        assert_eq!(
            body(&answer),
            ("c-worker".into(), "hi.there".into(), "re: ping".into()),
            "{}",
            kind.name()
        );
        // Our worker, a C requester.
        let mut rust_worker = rust_client(&endpoint, "rust-worker");
        assert_eq!(rust_worker.set_worker("upper", ".*", WAIT), Ok(0));
        let c_dir = c.clone();
        let endpoint_c = endpoint.clone();
        let request = std::thread::spawn(move || {
            peer(
                &c_dir,
                &[
                    &endpoint_c,
                    "c-requester",
                    "request",
                    "upper",
                    "shout",
                    "abc",
                ],
            )
        });
        let got = rust_worker.recv(WAIT).expect("the C request");
        let (sender, subject, text) = body(&got);
        assert_eq!(
            (sender.as_str(), subject.as_str()),
            ("c-requester", "shout")
        );
        rust_worker
            .sendto_text(&sender, &subject, "", 0, &[&text.to_uppercase()])
            .expect("answer");
        let output = request.join().expect("mlm_peer");
        assert_eq!(
            stdout(&output),
            "MAILBOX DELIVER sender=rust-worker subject=shout body=ABC\n",
            "{}",
            kind.name()
        );
    }
}

#[test]
fn c_producer_rust_consumer_and_the_reverse() {
    let Some((kinds, c)) = setup("c_producer_rust_consumer_and_the_reverse") else {
        return;
    };
    for kind in &kinds {
        let scratch = Scratch::new(&format!("mixed-{}", kind.name()));
        let endpoint = scratch.ipc("broker");
        let _broker = Broker::start(kind, &scratch, &endpoint, None);
        let mut reader = rust_client(&endpoint, "rust-reader");
        assert_eq!(reader.set_consumer("prices", "^eur", WAIT), Ok(0));
        let produced = peer(
            &c,
            &[
                &endpoint, "c-writer", "produce", "prices", "eur.usd", "1.08",
            ],
        );
        assert!(produced.status.success());
        let got = reader.recv(WAIT).expect("the C producer's message");
        assert_eq!(
            body(&got),
            ("c-writer".into(), "eur.usd".into(), "1.08".into())
        );

        let consumer = Background::start(
            &c.join("mlm_peer"),
            &[&endpoint, "c-reader", "consume", "prices", "^usd"],
        );
        assert_eq!(consumer.line(WAIT).as_deref(), Some("ready"));
        let mut writer = rust_client(&endpoint, "rust-writer");
        assert_eq!(writer.set_producer("prices", WAIT), Ok(0));
        writer.send_text("usd.jpy", &["151"]).expect("send");
        assert_eq!(
            consumer.line(WAIT).as_deref(),
            Some("STREAM DELIVER sender=rust-writer subject=usd.jpy body=151"),
            "{}",
            kind.name()
        );
    }
}

#[test]
fn mshells_plain_accepted_and_refused() {
    let Some((kinds, c)) = setup("mshells_plain_accepted_and_refused") else {
        return;
    };
    let mshells = [c.join("mshell"), env!("CARGO_BIN_EXE_mshell").into()];
    for (kind, program) in kinds
        .iter()
        .flat_map(|k| mshells.iter().map(move |m| (k, m)))
    {
        let scratch = Scratch::new(&format!("mshell-plain-{}", kind.name()));
        let passwords = scratch.0.join("passwords.cfg");
        std::fs::write(&passwords, "writer=secret\nreader=secret\n").expect("passwords");
        let endpoint = scratch.ipc("broker");
        let _broker = Broker::start(kind, &scratch, &endpoint, Some(&passwords));
        let mut reader = MlmClient::with_defaults().expect("client");
        assert_eq!(reader.set_plain_auth("reader", "secret", WAIT), Ok(0));
        assert_eq!(reader.connect(&endpoint, 5000, "", WAIT), Ok(0));
        assert_eq!(reader.set_consumer("s", ".*", WAIT), Ok(0));
        let mshell = |password: &str| {
            Command::new(program)
                .args([
                    "-e", &endpoint, "-p", "writer", password, "s", "subj", "body",
                ])
                .output()
                .expect("mshell")
        };
        let refused = mshell("wrong");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&refused.stdout),
            String::from_utf8_lossy(&refused.stderr)
        );
        assert!(
            said.contains("not reachable"),
            "{}: {} with a wrong password connected",
            kind.name(),
            program.display()
        );
        let accepted = mshell("secret");
        assert!(accepted.status.success());
        let got = reader.recv(WAIT).expect("mshell's message");
        assert_eq!(body(&got).1, "subj", "{}", kind.name());
    }
}

#[test]
fn our_mshell_answers_help_and_bad_arguments_as_upstreams() {
    let Some((_, c)) = setup("our_mshell_answers_help_and_bad_arguments_as_upstreams") else {
        return;
    };
    for args in [&["-h"][..], &["stream"][..], &["-e"][..], &[][..]] {
        let run = |program: &Path| {
            let out = Command::new(program).args(args).output().expect("mshell");
            (out.status.code(), stdout(&out))
        };
        assert_eq!(
            run(Path::new(env!("CARGO_BIN_EXE_mshell"))),
            run(&c.join("mshell")),
            "mshell {args:?}"
        );
    }
}

#[test]
fn a_c_consumer_reconnects_and_replays_after_the_broker_restarts() {
    let Some((kinds, c)) = setup("a_c_consumer_reconnects_and_replays_after_the_broker_restarts")
    else {
        return;
    };
    for kind in &kinds {
        let scratch = Scratch::new(&format!("c-restart-{}", kind.name()));
        let endpoint = scratch.ipc("broker");
        consumer_survives_a_restart(kind, &c, &scratch, &endpoint, &endpoint);
    }
}

/// Both brokers bind `tcp://127.0.0.1:*` as CZMQ's zsock_bind does: the
/// first free port from 49152 up, so that a broker restarted on the same
/// endpoint comes back on the same port and its clients find it again
/// (libzmq's own `*`, a port of the kernel's choosing, would put it
/// elsewhere each time).
#[test]
fn brokers_restarted_on_a_star_port_are_found_again_by_their_c_clients() {
    let Some((kinds, c)) =
        setup("brokers_restarted_on_a_star_port_are_found_again_by_their_c_clients")
    else {
        return;
    };
    for kind in &kinds {
        let scratch = Scratch::new(&format!("c-restart-star-{}", kind.name()));
        let port = (49_152..=65_535)
            .find(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
            .expect("a free port from 49152 up");
        let connect = format!("tcp://127.0.0.1:{port}");
        consumer_survives_a_restart(kind, &c, &scratch, "tcp://127.0.0.1:*", &connect);
    }
}

/// A C consumer subscribed through `connect` to a broker bound to `bind`
/// gets a message written after the broker was killed and started again
/// on the same `bind`.
fn consumer_survives_a_restart(
    kind: &Kind,
    c: &Path,
    scratch: &Scratch,
    bind: &str,
    connect: &str,
) {
    let broker = Broker::start(kind, scratch, bind, None);
    let consumer = Background::start(
        &c.join("mlm_peer"),
        &[connect, "c-reader", "consume", "news", ".*"],
    );
    assert_eq!(
        consumer.line(WAIT).as_deref(),
        Some("ready"),
        "{}: the C consumer did not reach the broker on {connect}",
        kind.name()
    );
    drop(broker);
    let _broker = Broker::start(kind, scratch, bind, None);
    // The C client notices (its PING meets a broker that does not know
    // it), opens again and replays its subscription; then our writer's
    // messages reach it.
    let mut writer = MlmClient::with_defaults().expect("client");
    assert_eq!(writer.connect(connect, 5000, "writer", WAIT), Ok(0));
    assert_eq!(writer.set_producer("news", WAIT), Ok(0));
    let mut line = None;
    assert!(
        eventually(|| {
            writer.send_text("after", &["restart"]).expect("send");
            line = consumer.line(Duration::from_millis(100));
            line.is_some()
        }),
        "{}: the C consumer never came back",
        kind.name()
    );
    assert_eq!(
        line.as_deref(),
        Some("STREAM DELIVER sender=writer subject=after body=restart")
    );
}
