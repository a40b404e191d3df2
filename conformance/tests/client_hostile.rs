//! A generated client against a hostile server: frames that do not
//! decode, messages no state names, and floods of unasked replies and
//! pushed messages nobody reads. The client counts and drops what it
//! cannot use, holds at most its bounded queues ([`ANSWER_QUEUE`] replies,
//! [`DELIVERY_QUEUE`] messages), and goes on working: a stale reply is
//! never taken for a later call's.

use std::time::{Duration, Instant};

use zproto_conformance::echo::EchoClient;
use zproto_conformance::echo_client_engine::Client;
use zproto_conformance::echo_msg::*;
use zproto_runtime::client::ClientStats;
use zproto_runtime::client_host::{ANSWER_QUEUE, DELIVERY_QUEUE};
use zproto_runtime::{reactor, Codec};

const WAIT: Duration = Duration::from_secs(10);
const SAIDS: usize = 5_000;
const NOTES: usize = 15_000;

fn send(router: &zmq::Socket, id: &[u8], message: impl Into<EchoMsg>) {
    let mut frames = message.into().encode().expect("encodes");
    frames.insert(0, id.to_vec());
    router.send_multipart(frames, 0).expect("send");
}

/// The client's counters once `done` holds, polled at most [`WAIT`].
fn stats_when(client: &Client<EchoClient>, done: impl Fn(&ClientStats) -> bool) -> ClientStats {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = client.stats().expect("stats");
        if done(&stats) || Instant::now() > deadline {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_hostile_server_cannot_break_or_bloat_the_client() {
    let router = reactor::socket(zmq::ROUTER).expect("socket");
    router.set_linger(0).expect("linger");
    // Never drop on our side: every message sent reaches the client (a
    // ROUTER at its high-water mark drops silently).
    router.set_sndhwm(0).expect("hwm");
    router.set_router_mandatory(true).expect("mandatory");
    router
        .set_rcvtimeo(WAIT.as_millis() as i32)
        .expect("timeout");
    router.bind("tcp://127.0.0.1:*").expect("bind");
    let endpoint = router
        .get_last_endpoint()
        .expect("endpoint")
        .expect("utf-8");

    // The server greets the client from a thread; the client stays here.
    let greeter = std::thread::spawn(move || {
        let hello = router.recv_multipart(0).expect("HELLO");
        let id = hello[0].clone();
        assert_eq!(EchoMsg::decode(&hello[1..]), Ok(EchoMsg::Hello(Hello)));
        send(&router, &id, HelloOk);
        (router, id)
    });
    let mut client = Client::new(EchoClient {
        heartbeat: Duration::from_secs(3600),
        expiry: Duration::from_secs(3600),
    })
    .expect("client");
    assert_eq!(client.connect(&endpoint, 5000, WAIT), Ok(0));
    let (router, id) = greeter.join().expect("greeter");

    // Frames that do not decode: empty, another protocol's signature, an
    // unknown message id, a SAY whose body runs past the frame.
    let garbage: [&[u8]; 4] = [
        b"",
        b"\x12\x34\x01",
        b"\xaa\xa9\x63",
        b"\xaa\xa9\x03\0\0\0\x09ab",
    ];
    for frame in garbage {
        router
            .send_multipart([id.clone(), frame.to_vec()], 0)
            .expect("send");
    }
    // Messages no client state names, then floods: unasked SAIDs (replies
    // nobody waits for) and NOTEs (deliveries nobody reads).
    send(&router, &id, Say { body: "?".into() });
    send(&router, &id, Hello);
    for n in 0..SAIDS {
        send(
            &router,
            &id,
            Said {
                body: format!("stale {n}"),
            },
        );
    }
    for n in 0..NOTES {
        send(
            &router,
            &id,
            Note {
                text: format!("note {n}"),
            },
        );
    }
    let all = (2 + SAIDS + NOTES) as u64;
    let stats = stats_when(&client, |s| s.received + s.malformed >= all + 1 + 4);
    assert_eq!(stats.malformed, 4, "{stats:?}");
    assert_eq!(stats.received, all + 1, "HELLO OK and the rest: {stats:?}");
    assert_eq!(
        stats.unknown, 2,
        "SAY and HELLO: no state names them; {stats:?}"
    );
    // What the bounded queues could not take was dropped, and counted.
    let kept = (ANSWER_QUEUE + DELIVERY_QUEUE) as u64;
    assert_eq!(
        stats.dropped,
        (SAIDS + NOTES) as u64 - kept,
        "replies beyond {ANSWER_QUEUE} and deliveries beyond {DELIVERY_QUEUE}: {stats:?}"
    );

    // It still works: an echo gets its own answer, not a stale one.
    let server = std::thread::spawn(move || {
        let request = router.recv_multipart(0).expect("SAY");
        let EchoMsg::Say(say) = EchoMsg::decode(&request[1..]).expect("decodes") else {
            panic!("not a SAY");
        };
        send(&router, &request[0], Said { body: say.body });
        router
    });
    assert_eq!(client.echo("still here", WAIT).as_deref(), Ok("still here"));
    drop(server.join().expect("server"));
    // The deliveries kept are the first ones, in order.
    let first = client.recv(WAIT).expect("a note");
    assert_eq!(
        first,
        EchoMsg::Note(Note {
            text: "note 0".into()
        })
    );
}
