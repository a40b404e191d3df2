//! The generated async echo client (`AsyncClient`) passes the blocking
//! client's behaviour tests (`client_server.rs`) on three executors:
//! tokio's multi-thread and current-thread runtimes, and smol. Nothing in
//! the client knows which one runs it: the reactor thread wakes its
//! futures.
//!
//! Cancellation: a call's future dropped at any await point (here by a
//! timeout around it, against a server that answers late) leaves the
//! client usable, and the late reply never reaches the next call.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::{self, Either};
use futures_util::StreamExt;
use zproto_conformance::echo::{EchoClient, EchoServer};
use zproto_conformance::echo_client_engine::AsyncClient;
use zproto_conformance::echo_msg::{EchoMsg, HelloOk, Note, Pong, Said};
use zproto_conformance::echo_server_engine::Machine;
use zproto_runtime::client_host::{ClientError, CALL_QUEUE};
use zproto_runtime::host::ServerHandle;
use zproto_runtime::{reactor, Codec};

const WAIT: Duration = Duration::from_secs(10);

type EchoHost = ServerHandle<Machine<EchoServer>>;

/// A timer future of whichever executor runs the test.
type Sleep = fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// The executors every test runs on.
fn tokio_multi(test: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("runtime")
        .block_on(test);
}

fn tokio_current(test: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
        .block_on(test);
}

fn tokio_sleep(d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(tokio::time::sleep(d))
}

fn smol_sleep(d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        ::smol::Timer::after(d).await;
    })
}

/// `f`, unless `d` passes first (then `f` is dropped where it stands).
async fn within<T>(sleep: Sleep, d: Duration, f: impl Future<Output = T>) -> Option<T> {
    match future::select(std::pin::pin!(f), sleep(d)).await {
        Either::Left((value, _)) => Some(value),
        Either::Right(((), _)) => None,
    }
}

/// Wait for `done`, at most [`WAIT`]; whether it came.
async fn eventually(sleep: Sleep, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        sleep(Duration::from_millis(10)).await;
    }
    done()
}

/// An echo server bound to `endpoint`; it and the address clients use.
fn server(endpoint: &str) -> (EchoHost, String) {
    let host = EchoHost::start("echo_server", EchoServer).expect("server");
    let port = host.bind(endpoint).expect("bind");
    match endpoint.strip_prefix("tcp://127.0.0.1:") {
        Some(_) => (host, format!("tcp://127.0.0.1:{port}")),
        None => (host, endpoint.to_owned()),
    }
}

async fn connected(address: &str) -> AsyncClient<EchoClient> {
    let client = AsyncClient::new(EchoClient::default()).expect("client");
    assert_eq!(client.connect(address, 2000, WAIT).await, Ok(0), "connect");
    assert!(client.connected());
    client
}

/// Request and reply, properties, a pushed message as a stream, and 50
/// calls at once from one `&self`, each answered with its own body.
async fn request_reply_and_push(sleep: Sleep) {
    let (_server, address) = server("tcp://127.0.0.1:*");
    let client = connected(&address).await;
    for body in ["hello", "", "a longer body with spaces"] {
        assert_eq!(client.echo(body, WAIT).await.as_deref(), Ok(body));
        assert_eq!(client.body(), body, "the property follows the reply");
    }
    let bodies: Vec<String> = (0..50).map(|i| format!("call {i}")).collect();
    let calls = bodies.iter().map(|body| client.echo(body, WAIT));
    let answers = future::join_all(calls).await;
    for (body, answer) in bodies.iter().zip(answers) {
        assert_eq!(answer.as_deref(), Ok(body.as_str()));
    }

    let note = Note {
        text: "pushed".into(),
    };
    client.note(note.clone()).await.expect("note");
    assert_eq!(client.recv().await, Ok(EchoMsg::Note(note)));
    let second = Note {
        text: "streamed".into(),
    };
    client.note(second.clone()).await.expect("note");
    let streamed = within(sleep, WAIT, client.deliveries().next()).await;
    assert_eq!(streamed, Some(Some(EchoMsg::Note(second))));

    // An immediate method waits without running the machine: a reply that
    // came after its caller stopped waiting is still there to take.
    assert!(client.echo("late", Duration::ZERO).await.is_err());
    assert!(matches!(
        client.next_echoed(WAIT).await,
        Ok(zproto_conformance::echo_client_engine::Reply::Echoed(e)) if e.body == "late"
    ));
}

/// The server goes: the client notices (heartbeats expire), calls fail at
/// once, and it greets the server on the same port again once it is back.
async fn expiry_and_reconnect(sleep: Sleep) {
    // Over ipc, at a path of its own: a tcp port given back when the first
    // server goes could be taken by another test's server (they run at
    // once, in one process) before the second one binds it.
    let dir = tempfile::tempdir().expect("dir");
    let endpoint = format!("ipc://{}", dir.path().join("echo").display());
    let (server1, address) = server(&endpoint);
    let client = connected(&address).await;
    assert_eq!(client.echo("before", WAIT).await.as_deref(), Ok("before"));
    drop(server1);
    assert!(
        eventually(sleep, || !client.connected()).await,
        "the client never noticed the server was gone"
    );
    assert_eq!(
        client.echo("while down", WAIT).await,
        Err(ClientError::Failed {
            reply: "FAILURE",
            status: Some(-1),
            reason: Some("not connected".into())
        })
    );
    let (_server2, _) = server(&address);
    assert!(
        eventually(sleep, || client.connected()).await,
        "the client never reconnected"
    );
    assert_eq!(client.echo("after", WAIT).await.as_deref(), Ok("after"));
}

/// PLAIN through the host's ZAP handler: alice in, a wrong password out.
async fn plain(_sleep: Sleep) {
    let dir = tempfile::tempdir().expect("dir");
    let passwords = dir.path().join("passwords");
    std::fs::write(&passwords, "alice=secret\n").expect("passwords");
    let host = EchoHost::start("echo_server", EchoServer).expect("server");
    host.set("server/auth/plain", &passwords.display().to_string())
        .expect("passwords file");
    host.set("echo_server/security/mechanism", "plain")
        .expect("plain");
    let port = host.bind("tcp://127.0.0.1:*").expect("bind");
    let address = format!("tcp://127.0.0.1:{port}");

    let good = AsyncClient::new(EchoClient::default()).expect("client");
    assert_eq!(good.set_plain_auth("alice", "secret", WAIT).await, Ok(0));
    assert_eq!(good.connect(&address, 2000, WAIT).await, Ok(0), "accepted");
    assert_eq!(
        good.echo("authenticated", WAIT).await.as_deref(),
        Ok("authenticated")
    );

    let bad = AsyncClient::new(EchoClient::default()).expect("client");
    assert_eq!(bad.set_plain_auth("alice", "wrong", WAIT).await, Ok(0));
    assert_eq!(
        bad.connect(&address, 300, WAIT).await,
        Err(ClientError::Failed {
            reply: "FAILURE",
            status: Some(-1),
            reason: Some("not connected".into())
        }),
        "refused"
    );
    assert!(!bad.connected());
    assert_eq!(host.stats().expect("stats").sessions, 1, "only alice");
}

/// A raw echo peer that answers every SAY `late`, and records the bodies
/// it was asked for, in order.
struct LateServer {
    address: String,
    asked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LateServer {
    fn start(late: Duration) -> Self {
        let router = reactor::socket(zmq::ROUTER).expect("socket");
        router.set_linger(0).expect("linger");
        router.set_rcvtimeo(20).expect("timeout");
        router.bind("tcp://127.0.0.1:*").expect("bind");
        let address = router
            .get_last_endpoint()
            .expect("endpoint")
            .expect("utf-8");
        let asked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, stopped) = (asked.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let send = |id: &[u8], message: EchoMsg| {
                let mut frames = message.encode().expect("encodes");
                frames.insert(0, id.to_vec());
                router.send_multipart(frames, 0).expect("send");
            };
            // SAIDs due, each with when it is due.
            let mut due: Vec<(Instant, Vec<u8>, String)> = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                let now = Instant::now();
                for (_, id, body) in due.iter().filter(|(at, _, _)| *at <= now) {
                    send(id, EchoMsg::Said(Said { body: body.clone() }));
                }
                due.retain(|(at, _, _)| *at > now);
                let Ok(frames) = router.recv_multipart(0) else {
                    continue;
                };
                match EchoMsg::decode(&frames[1..]) {
                    Ok(EchoMsg::Hello(_)) => send(&frames[0], EchoMsg::HelloOk(HelloOk)),
                    Ok(EchoMsg::Ping(_)) => send(&frames[0], EchoMsg::Pong(Pong)),
                    Ok(EchoMsg::Say(say)) => {
                        log.lock().expect("log").push(say.body.clone());
                        due.push((Instant::now() + late, frames[0].clone(), say.body));
                    }
                    _ => {}
                }
            }
        });
        Self {
            address,
            asked,
            stop,
            thread: Some(thread),
        }
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().expect("log").clone()
    }
}

impl Drop for LateServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Dropping a call's future at any await point leaves the client usable,
/// and the reply that comes late for it is discarded: every call that
/// waits gets its own body, never the cancelled one's.
async fn cancelled_calls_never_take_a_later_reply(sleep: Sleep) {
    const LATE: Duration = Duration::from_millis(60);
    let server = LateServer::start(LATE);
    let client = connected(&server.address).await;
    for round in 0..10 {
        // Given up on before the reply comes.
        let cancelled = format!("cancelled {round}");
        let given_up = within(sleep, LATE / 3, client.echo(&cancelled, WAIT)).await;
        assert_eq!(given_up, None, "the server answers late");
        // The next call waits behind the cancelled one's reply, and gets
        // its own.
        let mine = format!("mine {round}");
        assert_eq!(client.echo(&mine, WAIT).await.as_deref(), Ok(mine.as_str()));
        // Dropped right after its first poll: it may have run or not.
        let dropped_at_once = format!("dropped at once {round}");
        assert_eq!(
            within(sleep, Duration::ZERO, client.echo(&dropped_at_once, WAIT)).await,
            None
        );
    }
    // A call given up while it still waited behind another never ran.
    let first = within(sleep, Duration::from_secs(5), async {
        // A future submits its call when first polled.
        let mut in_flight = std::pin::pin!(client.echo("in flight", WAIT));
        assert!(future::poll_immediate(&mut in_flight).await.is_none());
        // Boxed, so that dropping it drops the future, not a reference.
        let mut queued = Box::pin(client.echo("queued", WAIT));
        let polled_once = future::poll_immediate(&mut queued).await;
        assert!(polled_once.is_none(), "it waits behind the first");
        drop(queued);
        in_flight.await
    })
    .await;
    assert_eq!(first.and_then(Result::ok).as_deref(), Some("in flight"));
    assert_eq!(client.echo("last", WAIT).await.as_deref(), Ok("last"));
    let asked = server.asked();
    assert!(
        !asked.iter().any(|body| body == "queued"),
        "a call cancelled in the queue was sent: {asked:?}"
    );
    assert_eq!(asked.last().map(String::as_str), Some("last"));
    // Every answer the client counted went somewhere: none is pending.
    let stats = client.stats().await.expect("stats");
    assert_eq!(stats.dropped, 0, "{stats:?}");
}

/// A call's own `wait` is kept by the reactor thread, on any executor.
async fn a_late_reply_past_the_wait_is_a_timeout(_sleep: Sleep) {
    let server = LateServer::start(Duration::from_millis(200));
    let client = connected(&server.address).await;
    let started = Instant::now();
    assert_eq!(
        client.echo("slow", Duration::from_millis(50)).await,
        Err(ClientError::Timeout(Duration::from_millis(50)))
    );
    assert!(started.elapsed() < Duration::from_millis(190));
}

/// One client holds at most [`CALL_QUEUE`] calls behind the one in
/// flight: a caller beyond that is told at once, and the memory a flood of
/// calls takes is bounded.
async fn calls_beyond_the_queue_bound_fail_at_once(_sleep: Sleep) {
    // A server that never answers a SAY in time.
    let server = LateServer::start(Duration::from_secs(60));
    let client = connected(&server.address).await;
    let wait = Duration::from_secs(2);
    let calls = (0..CALL_QUEUE + 11).map(|_| client.echo("x", wait));
    let outcomes = future::join_all(calls).await;
    let busy = outcomes
        .iter()
        .filter(|o| **o == Err(ClientError::Busy(CALL_QUEUE)))
        .count();
    let timed_out = outcomes
        .iter()
        .filter(|o| **o == Err(ClientError::Timeout(wait)))
        .count();
    assert_eq!((busy, timed_out), (10, CALL_QUEUE + 1));
}

macro_rules! on_every_executor {
    ($($test:ident),* $(,)?) => {
        mod tokio_multi_thread {
            $(
                #[test]
                fn $test() {
                    super::tokio_multi(super::$test(super::tokio_sleep));
                }
            )*
        }
        mod tokio_current_thread {
            $(
                #[test]
                fn $test() {
                    super::tokio_current(super::$test(super::tokio_sleep));
                }
            )*
        }
        mod smol {
            $(
                #[test]
                fn $test() {
                    ::smol::block_on(super::$test(super::smol_sleep));
                }
            )*
        }
    };
}

on_every_executor!(
    request_reply_and_push,
    expiry_and_reconnect,
    plain,
    cancelled_calls_never_take_a_later_reply,
    a_late_reply_past_the_wait_is_a_timeout,
    calls_beyond_the_queue_bound_fail_at_once,
);
