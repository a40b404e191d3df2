//! Our broker under bad input: malformed frames and unknown message ids
//! from one peer, and a reader that never reads, while others are served;
//! the broker's memory stays bounded (the stalled reader's ROUTER queue is
//! its high-water mark, 1000 messages; what does not fit is dropped).

mod support;

use std::process::Command;
use std::time::Duration;

use malamute::client::MlmClient;
use malamute::mlm_proto::*;
use support::{Broker, Kind, Scratch, WAIT};
use zproto_runtime::client_host::ClientError;
use zproto_runtime::Codec;

fn client(endpoint: &str, address: &str) -> MlmClient {
    let mut client = MlmClient::with_defaults().expect("client");
    assert_eq!(client.connect(endpoint, 5000, address, WAIT), Ok(0));
    client
}

fn dealer(endpoint: &str) -> zmq::Socket {
    let socket = zproto_runtime::reactor::socket(zmq::DEALER).expect("socket");
    socket.set_linger(0).expect("linger");
    socket
        .set_rcvtimeo(WAIT.as_millis() as i32)
        .expect("timeout");
    socket.connect(endpoint).expect("connect");
    socket
}

fn frames(message: impl Into<MlmProto>) -> Vec<Vec<u8>> {
    message.into().encode().expect("encodes")
}

/// The broker process's peak resident memory, in bytes.
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn pub_sub_works(endpoint: &str, stream: &str) {
    let mut reader = client(endpoint, "");
    assert_eq!(reader.set_consumer(stream, ".*", WAIT), Ok(0));
    let mut writer = client(endpoint, "");
    assert_eq!(writer.set_producer(stream, WAIT), Ok(0));
    writer.send_text("still", &["served"]).expect("send");
    assert!(matches!(reader.recv(WAIT), Ok(MlmProto::StreamDeliver(_))));
}

#[test]
fn malformed_frames_and_unknown_ids_leave_the_others_served() {
    let scratch = Scratch::new("hostile-frames");
    let endpoint = scratch.ipc("broker");
    let _broker = Broker::start(&Kind::Ours, &scratch, &endpoint, None);
    let hostile = dealer(&endpoint);
    for garbage in [
        &b""[..],
        b"\xaa",
        b"\xaa\xa8\x63",             // an id no message has
        b"\xaa\xa8\x01\x05MALAM",    // a CONNECTION OPEN cut short
        b"\x00\x00\x00\x00\x00\x00", // not even a signature
        b"\xaa\xa8\x07\xff",         // STREAM SEND, string longer than the frame
    ] {
        hostile.send(garbage, 0).expect("send");
    }
    // Out of turn: STREAM SEND before any CONNECTION OPEN gets an ERROR.
    hostile
        .send_multipart(
            frames(StreamSend {
                subject: "x".into(),
                content: vec![],
            }),
            0,
        )
        .expect("send");
    let answer = MlmProto::decode(&hostile.recv_multipart(0).expect("an answer")).expect("decodes");
    assert!(
        matches!(&answer, MlmProto::Error(e) if e.status_code == 500),
        "{answer:?}"
    );
    pub_sub_works(&endpoint, "after-garbage");
}

#[test]
fn a_reader_that_never_reads_costs_bounded_memory() {
    let scratch = Scratch::new("hostile-stalled");
    let endpoint = scratch.ipc("broker");
    let broker = Broker::start(&Kind::Ours, &scratch, &endpoint, None);
    let pid = broker.pid();
    // Open, subscribe to everything, and never read again (its own queue
    // is tiny, so the broker's side fills up).
    let stalled = zproto_runtime::reactor::socket(zmq::DEALER).expect("socket");
    stalled.set_linger(0).expect("linger");
    stalled.set_rcvhwm(1).expect("hwm");
    stalled.set_rcvbuf(4096).expect("buffer");
    stalled
        .set_rcvtimeo(WAIT.as_millis() as i32)
        .expect("timeout");
    stalled.connect(&endpoint).expect("connect");
    stalled
        .send_multipart(
            frames(ConnectionOpen {
                address: "stalled".into(),
            }),
            0,
        )
        .expect("open");
    stalled.recv_multipart(0).expect("OK");
    stalled
        .send_multipart(
            frames(StreamRead {
                stream: "flood".into(),
                pattern: String::new(),
            }),
            0,
        )
        .expect("read");
    stalled.recv_multipart(0).expect("OK");

    let mut reader = client(&endpoint, "reader");
    assert_eq!(reader.set_consumer("flood", ".*", WAIT), Ok(0));
    let mut writer = client(&endpoint, "writer");
    assert_eq!(writer.set_producer("flood", WAIT), Ok(0));
    let before = peak_memory(pid);
    const MESSAGES: usize = 20_000;
    let body = "x".repeat(4096);
    let mut received = 0;
    for n in 0..MESSAGES {
        writer.send_text("s", &[&body]).expect("send");
        // Read as we go: the live reader keeps up.
        if n % 100 == 99 {
            while reader.recv(Duration::ZERO).is_ok() {
                received += 1;
            }
        }
    }
    while received < MESSAGES {
        match reader.recv(WAIT) {
            Ok(_) => received += 1,
            Err(e) => panic!("the live reader got {received} of {MESSAGES}: {e}"),
        }
    }
    let grown = peak_memory(pid).saturating_sub(before);
    eprintln!(
        "{MESSAGES} messages of 4 KB ({} MB) past a stalled reader: the broker grew by {:.1} MB",
        MESSAGES * 4096 / 1_000_000,
        grown as f64 / 1e6
    );
    // The stalled reader's queue (1000 messages of 4 KB) and socket
    // buffers, not the 80 MB that went past it.
    assert!(
        grown < 30_000_000,
        "the broker grew by {} MB",
        grown / 1_000_000
    );
    pub_sub_works(&endpoint, "after-flood");
    // Still alive.
    let alive = Command::new("kill").args(["-0", &pid.to_string()]).status();
    assert!(alive.is_ok_and(|s| s.success()));
}

#[test]
fn mail_to_countless_mailboxes_is_bounded_by_the_storage_limit() {
    let scratch = Scratch::new("hostile-mailboxes");
    let endpoint = scratch.ipc("broker");
    let broker = Broker::start_configured(
        &Kind::Ours,
        &scratch,
        &endpoint,
        None,
        "",
        "    storage\n        size-limit = 8000000\n",
    );
    let pid = broker.pid();
    let mut sender = client(&endpoint, "sender");
    let before = peak_memory(pid);
    let body = "m".repeat(1000);
    const ADDRESSES: usize = 50_000;
    for n in 0..ADDRESSES {
        sender
            .sendto_text(&format!("nobody-{n}"), "s", "", 0, &[&body])
            .expect("sendto");
    }
    // A command round trip: the broker has taken every message.
    assert_eq!(sender.set_producer("x", WAIT), Ok(0));
    let grown = peak_memory(pid).saturating_sub(before);
    eprintln!(
        "{ADDRESSES} messages of 1 KB to as many absent mailboxes, storage limit 8 MB: \
         the broker grew by {:.1} MB",
        grown as f64 / 1e6
    );
    assert!(
        grown < 40_000_000,
        "the broker grew by {} MB",
        grown / 1_000_000
    );
    // What fitted is kept: the first mailbox's owner gets its mail.
    let owner = client(&endpoint, "nobody-0");
    assert!(matches!(owner.recv(WAIT), Ok(MlmProto::MailboxDeliver(_))));
    pub_sub_works(&endpoint, "after-mail");
}

#[test]
fn subscriptions_past_the_limit_are_refused_and_the_session_lives() {
    let scratch = Scratch::new("hostile-subscriptions");
    let endpoint = scratch.ipc("broker");
    let _broker = Broker::start(&Kind::Ours, &scratch, &endpoint, None);
    let mut greedy = client(&endpoint, "greedy");
    let limit = malamute::broker::PER_CLIENT_LIMIT;
    for n in 0..limit {
        assert_eq!(
            greedy.set_consumer("s", &format!("^p{n}$"), WAIT),
            Ok(0),
            "subscription {n}"
        );
    }
    assert!(matches!(
        greedy.set_consumer("s", "one-too-many", WAIT),
        Err(ClientError::Failed {
            reply: "FAILURE",
            status: Some(-1),
            ..
        })
    ));
    assert!(greedy.reason().contains("too many"), "{}", greedy.reason());
    // A bad pattern is refused the same way, and the session goes on.
    assert_eq!(greedy.remove_consumer("s", WAIT), Ok(0));
    assert!(matches!(
        greedy.set_consumer("s", "(unclosed", WAIT),
        Err(ClientError::Failed {
            reply: "FAILURE",
            status: Some(-1),
            ..
        })
    ));
    assert!(
        greedy.reason().contains("invalid pattern"),
        "{}",
        greedy.reason()
    );
    assert_eq!(
        greedy.set_consumer("s", "^p1$", WAIT),
        Ok(0),
        "room again after the cancel"
    );
    pub_sub_works(&endpoint, "after-greed");
}
