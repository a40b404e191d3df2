//! The generated async Malamute client (`AsyncMlmClient`) against each
//! broker, the C Malamute 1.2 and ours, on tokio: a stream with a subject
//! pattern read as a `Stream` of deliveries, and mailboxes, one of them
//! kept for a client that connects later. Calls and sends come from many
//! tasks at once.

mod support;

use std::sync::Arc;

use futures_util::StreamExt;
use malamute::client::AsyncMlmClient;
use malamute::mlm_proto::MlmProto;
use support::{Broker, Kind, Scratch, WAIT};

async fn client(endpoint: &str, address: &str) -> AsyncMlmClient {
    let client = AsyncMlmClient::with_defaults().expect("client");
    assert_eq!(
        client.connect(endpoint, 5000, address, WAIT).await,
        Ok(0),
        "{address} connects"
    );
    client
}

/// The kind, subject and text frames of a delivery.
fn text(message: &MlmProto) -> (&'static str, String, Vec<String>) {
    let (kind, subject, content) = match message {
        MlmProto::StreamDeliver(m) => ("stream", &m.subject, &m.content),
        MlmProto::MailboxDeliver(m) => ("mailbox", &m.subject, &m.content),
        other => panic!("not a delivery: {other:?}"),
    };
    let content = content
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    (kind, subject.clone(), content)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_read_as_a_stream_of_deliveries() {
    for kind in Kind::all("a_stream_read_as_a_stream_of_deliveries") {
        let scratch = Scratch::new(&format!("async-stream-{}", kind.name()));
        let endpoint = scratch.ipc("broker");
        let _broker = Broker::start(&kind, &scratch, &endpoint, None);
        let writer = Arc::new(client(&endpoint, "writer").await);
        let reader = client(&endpoint, "reader").await;
        assert_eq!(reader.set_consumer("weather", "temp.*", WAIT).await, Ok(0));
        assert_eq!(writer.set_producer("weather", WAIT).await, Ok(0));
        // Ten tasks publish at once; a stream keeps each writer's order,
        // and these are all one writer's.
        let tasks: Vec<_> = (0..10)
            .map(|n| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    let subject = if n % 2 == 0 { "temp.city" } else { "rain.city" };
                    writer.send_text(subject, &[&n.to_string()]).await
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task").expect("send");
        }
        let got: Vec<_> = tokio::time::timeout(
            WAIT,
            reader
                .deliveries()
                .map(|m| text(&m))
                .take(5)
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap_or_else(|_| panic!("{}: five deliveries", kind.name()));
        let mut values: Vec<String> = got
            .iter()
            .map(|(k, subject, content)| {
                assert_eq!((*k, subject.as_str()), ("stream", "temp.city"));
                content.concat()
            })
            .collect();
        values.sort();
        assert_eq!(values, ["0", "2", "4", "6", "8"], "{}", kind.name());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailboxes_also_to_a_client_that_connects_later() {
    for kind in Kind::all("mailboxes_also_to_a_client_that_connects_later") {
        let scratch = Scratch::new(&format!("async-mailbox-{}", kind.name()));
        let endpoint = scratch.ipc("broker");
        let _broker = Broker::start(&kind, &scratch, &endpoint, None);
        let (alice, bob) = tokio::join!(client(&endpoint, "alice"), client(&endpoint, "bob"));
        alice
            .sendto_text("bob", "greeting", "track-1", 0, &["hello", "bob"])
            .await
            .expect("sendto");
        let mail = tokio::time::timeout(WAIT, bob.recv())
            .await
            .expect("bob's mail in time")
            .expect("bob's mail");
        assert_eq!(
            text(&mail),
            (
                "mailbox",
                "greeting".into(),
                vec!["hello".into(), "bob".into()]
            ),
            "{}",
            kind.name()
        );
        assert!(
            matches!(&mail, MlmProto::MailboxDeliver(m) if m.sender == "alice" && m.tracker == "track-1"),
            "{mail:?}"
        );
        // Carol has no connection yet: the broker keeps her mail. Alice's
        // next command is answered after her mail is queued.
        alice
            .sendto_text("carol", "later", "", 0, &["kept"])
            .await
            .expect("sendto");
        assert_eq!(alice.set_producer("anything", WAIT).await, Ok(0));
        let carol = client(&endpoint, "carol").await;
        let kept = tokio::time::timeout(WAIT, carol.recv())
            .await
            .expect("carol's mail in time")
            .expect("carol's mail");
        assert_eq!(
            text(&kept),
            ("mailbox", "later".into(), vec!["kept".into()]),
            "{}",
            kind.name()
        );
    }
}
