//! Our broker's flow control and confirmations (upstream's broker has
//! neither: it ignores CREDIT and ends the session of a client that sends
//! CONFIRM): a client that sent CREDIT gets no more deliveries than it
//! allowed, the rest wait, in order, for more credit; a CONFIRM for a
//! tracked message reaches its sender.

mod support;

use std::time::Duration;

use malamute::client::MlmClient;
use malamute::mlm_proto::*;
use support::{Broker, Kind, Scratch, WAIT};

fn client(endpoint: &str, address: &str) -> MlmClient {
    let mut client = MlmClient::with_defaults().expect("client");
    assert_eq!(client.connect(endpoint, 5000, address, WAIT), Ok(0));
    client
}

fn subject(message: &MlmProto) -> String {
    match message {
        MlmProto::StreamDeliver(m) => m.subject.clone(),
        other => panic!("not a stream delivery: {other:?}"),
    }
}

#[test]
fn deliveries_wait_for_credit() {
    let scratch = Scratch::new("flow-credit");
    let endpoint = scratch.ipc("broker");
    let _broker = Broker::start(&Kind::Ours, &scratch, &endpoint, None);
    let mut reader = client(&endpoint, "reader");
    reader.credit(Credit { amount: 2 }).expect("credit");
    assert_eq!(reader.set_consumer("s", ".*", WAIT), Ok(0));
    let mut writer = client(&endpoint, "writer");
    assert_eq!(writer.set_producer("s", WAIT), Ok(0));
    for n in 0..5 {
        writer.send_text(&format!("m{n}"), &["x"]).expect("send");
    }
    assert_eq!(subject(&reader.recv(WAIT).expect("first")), "m0");
    assert_eq!(subject(&reader.recv(WAIT).expect("second")), "m1");
    assert!(
        reader.recv(Duration::from_millis(300)).is_err(),
        "a third delivery without credit"
    );
    reader.credit(Credit { amount: 10 }).expect("credit");
    for n in 2..5 {
        assert_eq!(subject(&reader.recv(WAIT).expect("held")), format!("m{n}"));
    }
}

#[test]
fn a_confirmation_reaches_the_sender() {
    let scratch = Scratch::new("flow-confirm");
    let endpoint = scratch.ipc("broker");
    let _broker = Broker::start(&Kind::Ours, &scratch, &endpoint, None);
    let alice = client(&endpoint, "alice");
    let bob = client(&endpoint, "bob");
    alice
        .sendto_text("bob", "parcel", "t-42", 0, &["contents"])
        .expect("sendto");
    let parcel = bob.recv(WAIT).expect("the parcel");
    assert!(matches!(&parcel, MlmProto::MailboxDeliver(m) if m.tracker == "t-42"));
    bob.confirm(Confirm {
        tracker: "t-42".into(),
        status_code: 200,
        status_reason: "received".into(),
    })
    .expect("confirm");
    let confirm = alice.recv(WAIT).expect("the confirmation");
    assert_eq!(
        confirm,
        MlmProto::Confirm(Confirm {
            tracker: "t-42".into(),
            status_code: 200,
            status_reason: "received".into(),
        })
    );
    // An unknown tracker goes nowhere, and the session lives on.
    bob.confirm(Confirm {
        tracker: "t-unknown".into(),
        status_code: 200,
        status_reason: String::new(),
    })
    .expect("confirm");
    let mut bob = bob;
    assert_eq!(bob.set_producer("still-here", WAIT), Ok(0));
}

#[test]
fn mail_past_its_timeout_is_discarded_and_its_sender_told() {
    let scratch = Scratch::new("flow-timeout");
    let endpoint = scratch.ipc("broker");
    let _broker = Broker::start(&Kind::Ours, &scratch, &endpoint, None);
    let mut alice = client(&endpoint, "alice");
    alice
        .sendto_text("late", "stale", "t-old", 50, &["too late"])
        .expect("sendto");
    alice
        .sendto_text("late", "fresh", "", 0, &["in time"])
        .expect("sendto");
    assert_eq!(alice.set_producer("x", WAIT), Ok(0));
    // The first mail's 50 ms pass before its owner connects.
    std::thread::sleep(Duration::from_millis(200));
    let late = client(&endpoint, "late");
    let got = late.recv(WAIT).expect("the fresh mail");
    assert!(
        matches!(&got, MlmProto::MailboxDeliver(m) if m.subject == "fresh"),
        "{got:?}"
    );
    assert!(
        late.recv(Duration::from_millis(200)).is_err(),
        "the stale mail came"
    );
    let confirm = alice.recv(WAIT).expect("a confirmation");
    assert!(
        matches!(&confirm, MlmProto::Confirm(c) if c.tracker == "t-old" && c.status_code == 300),
        "{confirm:?}"
    );
}
