//! Our generated Malamute client against each broker, the real C one
//! (Malamute 1.2) and ours, run as processes with the same config file:
//! streams with subject patterns, mailboxes (also to a client that
//! connects later), services with two workers, PLAIN accepted and refused,
//! and reconnection (with the subscriptions replayed) after the broker
//! restarts.

mod support;

use std::time::Duration;

use malamute::client::{ClientState, MlmClient};
use malamute::mlm_proto::MlmProto;
use support::{eventually, Broker, Kind, Scratch, WAIT};
use zproto_runtime::client_host::ClientError;

fn client(endpoint: &str, address: &str) -> MlmClient {
    let mut client = MlmClient::with_defaults().expect("client");
    assert_eq!(
        client.connect(endpoint, 5000, address, WAIT),
        Ok(0),
        "{address} connects"
    );
    client
}

/// The subject and text frames of a delivery.
fn text(message: &MlmProto) -> (String, String, Vec<String>) {
    let (kind, subject, content) = match message {
        MlmProto::StreamDeliver(m) => ("stream", &m.subject, &m.content),
        MlmProto::MailboxDeliver(m) => ("mailbox", &m.subject, &m.content),
        MlmProto::ServiceDeliver(m) => ("service", &m.subject, &m.content),
        other => panic!("not a delivery: {other:?}"),
    };
    let content = content
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    (kind.to_owned(), subject.clone(), content)
}

#[test]
fn streams_with_patterns() {
    for kind in Kind::all("streams_with_patterns") {
        streams_with_patterns_on(&kind);
    }
}

fn streams_with_patterns_on(kind: &Kind) {
    let scratch = Scratch::new(&format!("streams-{}", kind.name()));
    let endpoint = scratch.ipc("broker");
    let _broker = Broker::start(kind, &scratch, &endpoint, None);
    let mut writer = client(&endpoint, "writer");
    let mut reader = client(&endpoint, "reader");
    assert_eq!(reader.set_consumer("weather", "temp.*", WAIT), Ok(0));
    assert_eq!(writer.set_producer("weather", WAIT), Ok(0));
    for (subject, value) in [
        ("temp.london", "22"),
        ("rain.london", "5"),
        ("temp.paris", "25"),
    ] {
        writer.send_text(subject, &[value]).expect("send");
    }
    let got: Vec<_> = (0..2)
        .map(|_| text(&reader.recv(WAIT).expect("a delivery")))
        .collect();
    assert_eq!(
        got,
        [
            ("stream".into(), "temp.london".into(), vec!["22".into()]),
            ("stream".into(), "temp.paris".into(), vec!["25".into()]),
        ]
    );
    assert!(
        reader.recv(Duration::from_millis(200)).is_err(),
        "rain.london matches no subscription"
    );
}

#[test]
fn mailboxes_also_to_clients_that_connect_later() {
    for kind in Kind::all("mailboxes_also_to_clients_that_connect_later") {
        mailboxes_also_to_clients_that_connect_later_on(&kind);
    }
}

fn mailboxes_also_to_clients_that_connect_later_on(kind: &Kind) {
    let scratch = Scratch::new(&format!("mailboxes-{}", kind.name()));
    let endpoint = scratch.ipc("broker");
    let _broker = Broker::start(kind, &scratch, &endpoint, None);
    let alice = client(&endpoint, "alice");
    let bob = client(&endpoint, "bob");
    alice
        .sendto_text("bob", "greeting", "track-1", 0, &["hello", "bob"])
        .expect("sendto");
    let message = bob.recv(WAIT).expect("bob's mail");
    assert_eq!(
        text(&message),
        (
            "mailbox".into(),
            "greeting".into(),
            vec!["hello".into(), "bob".into()]
        )
    );
    // Sender, mailbox and tracker as the sender gave them.
    assert!(
        matches!(
            &message,
            MlmProto::MailboxDeliver(m)
                if (m.sender.as_str(), m.address.as_str(), m.tracker.as_str())
                    == ("alice", "bob", "track-1")
        ),
        "{message:?}"
    );
    // Carol has no connection yet: the broker keeps her mail.
    alice
        .sendto_text("carol", "later", "", 0, &["kept"])
        .expect("sendto");
    // Alice's next command is answered after her mail is queued.
    let mut alice = alice;
    assert_eq!(alice.set_producer("anything", WAIT), Ok(0));
    let carol = client(&endpoint, "carol");
    assert_eq!(
        text(&carol.recv(WAIT).expect("carol's mail")),
        ("mailbox".into(), "later".into(), vec!["kept".into()])
    );
}

#[test]
fn services_with_two_workers() {
    for kind in Kind::all("services_with_two_workers") {
        services_with_two_workers_on(&kind);
    }
}

fn services_with_two_workers_on(kind: &Kind) {
    let scratch = Scratch::new(&format!("services-{}", kind.name()));
    let endpoint = scratch.ipc("broker");
    let _broker = Broker::start(kind, &scratch, &endpoint, None);
    let mut workers: Vec<MlmClient> = ["w1", "w2"]
        .iter()
        .map(|name| client(&endpoint, name))
        .collect();
    for worker in &mut workers {
        assert_eq!(worker.set_worker("echo", "ping.*", WAIT), Ok(0));
    }
    let requester = client(&endpoint, "requester");
    for n in 0..4 {
        requester
            .sendfor_text("echo", &format!("ping.{n}"), "", 0, &[&n.to_string()])
            .expect("sendfor");
    }
    // Every request reaches one worker, which answers the requester's
    // mailbox.
    let mut served = 0;
    let mut answered = 0;
    assert!(eventually(|| {
        for worker in &workers {
            while let Ok(request) = worker.recv(Duration::ZERO) {
                let MlmProto::ServiceDeliver(request) = request else {
                    continue;
                };
                assert_eq!(request.sender, "requester");
                served += 1;
                worker
                    .sendto_text(&request.sender, "pong", "", 0, &["ok"])
                    .expect("answer");
            }
        }
        while requester.recv(Duration::ZERO).is_ok() {
            answered += 1;
        }
        served == 4 && answered == 4
    }));
}

#[test]
fn plain_accepted_and_refused() {
    for kind in Kind::all("plain_accepted_and_refused") {
        plain_accepted_and_refused_on(&kind);
    }
}

fn plain_accepted_and_refused_on(kind: &Kind) {
    let scratch = Scratch::new(&format!("plain-{}", kind.name()));
    let passwords = scratch.0.join("passwords.cfg");
    std::fs::write(&passwords, "alice=secret\n").expect("passwords");
    let endpoint = scratch.ipc("broker");
    let _broker = Broker::start(kind, &scratch, &endpoint, Some(&passwords));

    let mut good = MlmClient::with_defaults().expect("client");
    assert_eq!(good.set_plain_auth("alice", "secret", WAIT), Ok(0));
    assert_eq!(good.connect(&endpoint, 5000, "good", WAIT), Ok(0));

    let mut bad = MlmClient::with_defaults().expect("client");
    assert_eq!(bad.set_plain_auth("alice", "guess", WAIT), Ok(0));
    // A refused connect is an error, never a status to check.
    assert!(matches!(
        bad.connect(&endpoint, 500, "bad", WAIT),
        Err(ClientError::Failed {
            reply: "FAILURE",
            ..
        })
    ));
    assert!(!bad.connected());
}

#[test]
fn reconnect_and_replay_after_the_broker_restarts() {
    for kind in Kind::all("reconnect_and_replay_after_the_broker_restarts") {
        reconnect_and_replay_after_the_broker_restarts_on(&kind);
    }
}

fn reconnect_and_replay_after_the_broker_restarts_on(kind: &Kind) {
    let scratch = Scratch::new(&format!("restart-{}", kind.name()));
    let endpoint = scratch.ipc("broker");
    let broker = Broker::start(kind, &scratch, &endpoint, None);
    let fast = || ClientState::with_timers(Duration::from_millis(100), Duration::from_millis(500));
    let mut reader = MlmClient::new(fast()).expect("client");
    assert_eq!(reader.connect(&endpoint, 5000, "reader", WAIT), Ok(0));
    let mut writer = MlmClient::new(fast()).expect("client");
    assert_eq!(writer.connect(&endpoint, 5000, "writer", WAIT), Ok(0));
    assert_eq!(reader.set_consumer("news", ".*", WAIT), Ok(0));
    assert_eq!(writer.set_producer("news", WAIT), Ok(0));

    drop(broker);
    assert!(eventually(|| !reader.connected() && !writer.connected()));
    let _broker = Broker::start(kind, &scratch, &endpoint, None);
    assert!(
        eventually(|| reader.connected() && writer.connected()),
        "both reconnect"
    );
    // The subscription and the producer stream were replayed; a message
    // published once the replays are through arrives.
    assert!(eventually(|| {
        writer.send_text("after", &["restart"]).expect("send");
        matches!(
            reader.recv(Duration::from_millis(100)),
            Ok(MlmProto::StreamDeliver(_))
        )
    }));
}

#[test]
fn service_requests_wait_for_a_worker() {
    for kind in Kind::all("service_requests_wait_for_a_worker") {
        let scratch = Scratch::new(&format!("late-worker-{}", kind.name()));
        let endpoint = scratch.ipc("broker");
        let _broker = Broker::start(&kind, &scratch, &endpoint, None);
        let mut requester = client(&endpoint, "early");
        requester
            .sendfor_text("late", "job.1", "", 0, &["queued"])
            .expect("sendfor");
        // A command round trip: the broker has queued the request.
        assert_eq!(requester.set_producer("x", WAIT), Ok(0));
        let mut worker = client(&endpoint, "worker");
        assert_eq!(worker.set_worker("late", "job.*", WAIT), Ok(0));
        let got = worker.recv(WAIT).expect("the queued request");
        assert_eq!(
            text(&got),
            ("service".into(), "job.1".into(), vec!["queued".into()]),
            "{}",
            kind.name()
        );
    }
}

/// Our `mshell` against an endpoint where no broker listens: an error on
/// stderr and a non-zero exit (upstream's prints and exits 0).
#[test]
fn mshell_exits_non_zero_when_no_broker_answers() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mshell"))
        .args([
            "-n",
            "-e",
            &format!("tcp://127.0.0.1:{port}"),
            "weather",
            "temp.*",
            "22",
        ])
        .output()
        .expect("mshell runs");
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("server not reachable"),
        "{out:?}"
    );
}

/// Our broker logs where it bound (with the port a wildcard got), in plain
/// text when its log is not a terminal, and `mshell` reaches it there.
#[test]
fn the_broker_logs_what_it_bound_without_colours_and_mshell_reaches_it() {
    use std::io::{BufRead, BufReader};
    let scratch = Scratch::new("bound");
    let config = scratch.0.join("broker.cfg");
    std::fs::write(
        &config,
        "mlm_server\n    security\n        mechanism = null\n    bind\n        endpoint = tcp://127.0.0.1:*\n",
    )
    .expect("config");
    let mut broker = std::process::Command::new(env!("CARGO_BIN_EXE_malamute"))
        .arg(&config)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the broker starts");
    let stderr = broker.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = loop {
        let line = rx
            .recv_timeout(WAIT)
            .expect("a log line saying where it bound");
        if line.contains("bound") {
            break line;
        }
    };
    assert!(!line.contains('\u{1b}'), "colours in a log file: {line:?}");
    assert!(
        line.contains("mlm_server bound tcp://127.0.0.1:*"),
        "{line}"
    );
    let port = line
        .rsplit("(port ")
        .next()
        .and_then(|p| p.trim_end_matches(')').parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    let sent = std::process::Command::new(env!("CARGO_BIN_EXE_mshell"))
        .args([
            "-n",
            "-e",
            &format!("tcp://127.0.0.1:{port}"),
            "weather",
            "temp.x",
            "22",
        ])
        .output()
        .expect("mshell runs");
    let _ = broker.kill();
    let _ = broker.wait();
    assert!(sent.status.success(), "{sent:?}");
}
