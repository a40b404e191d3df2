//! A generated server and a generated client of our own echo protocol
//! (`models/echo_*.xml`, hand-written side in `src/echo.rs`) talk over tcp
//! and ipc through the runtime's hosts: request and reply, a pushed
//! message, heartbeat expiry, reconnection after the server restarts,
//! PLAIN accepted and refused, and a malformed frame dropped while the
//! session lives.

use std::time::{Duration, Instant};

use zproto_conformance::echo::{EchoClient, EchoServer};
use zproto_conformance::echo_client_engine::Client;
use zproto_conformance::echo_msg::{EchoMsg, Hello, HelloOk, Note, Said, Say};
use zproto_conformance::echo_server_engine::Machine;
use zproto_runtime::client_host::ClientError;
use zproto_runtime::host::ServerHandle;
use zproto_runtime::{reactor, Codec};

const WAIT: Duration = Duration::from_secs(10);

type EchoHost = ServerHandle<Machine<EchoServer>>;

/// Wait for `done`, at most [`WAIT`]; whether it came.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    done()
}

/// An endpoint of `transport` nobody uses, and a guard that removes an
/// ipc socket file.
struct Endpoint {
    address: String,
    file: Option<std::path::PathBuf>,
}

impl Endpoint {
    fn new(transport: &str, name: &str) -> Self {
        match transport {
            "ipc" => {
                let file =
                    std::env::temp_dir().join(format!("zproto-{name}-{}.ipc", std::process::id()));
                let _ = std::fs::remove_file(&file);
                Self {
                    address: format!("ipc://{}", file.display()),
                    file: Some(file),
                }
            }
            _ => Self {
                address: "tcp://127.0.0.1:*".into(),
                file: None,
            },
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some(file) = &self.file {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// A server bound to `endpoint`; returns it and the address clients use.
fn server(endpoint: &str) -> (EchoHost, String) {
    let host = EchoHost::start("echo_server", EchoServer).expect("server");
    let port = host.bind(endpoint).expect("bind");
    let address = if endpoint.starts_with("tcp://") {
        format!("tcp://127.0.0.1:{port}")
    } else {
        endpoint.to_owned()
    };
    (host, address)
}

fn connected_client(address: &str) -> Client<EchoClient> {
    let mut client = Client::new(EchoClient::default()).expect("client");
    assert_eq!(client.connect(address, 2000, WAIT), Ok(0), "connect");
    assert!(client.connected());
    client
}

fn request_reply_and_push(transport: &str) {
    let endpoint = Endpoint::new(transport, "echo-rr");
    let (_server, address) = server(&endpoint.address);
    let mut client = connected_client(&address);
    for body in ["hello", "", "a longer body with spaces"] {
        assert_eq!(client.echo(body, WAIT).as_deref(), Ok(body));
        assert_eq!(client.body(), body, "the property follows the reply");
    }
    // A method of the model's <custom language = "Rust"> source.
    assert_eq!(
        client.echo_all(&["one", "two"], WAIT),
        Ok(vec!["one".to_owned(), "two".to_owned()])
    );
    // <send> goes to the server as it is; the server pushes it back and
    // the client's action passes it to <recv>.
    let note = Note {
        text: "pushed".into(),
    };
    client.note(note.clone()).expect("note");
    assert_eq!(client.recv(WAIT), Ok(EchoMsg::Note(note)));
    // An immediate method waits without running the machine: a reply that
    // came after its caller stopped waiting is still there to take.
    assert!(client.echo("late", Duration::ZERO).is_err(), "no wait");
    assert!(matches!(
        client.next_echoed(WAIT),
        Ok(zproto_conformance::echo_client_engine::Reply::Echoed(e)) if e.body == "late"
    ));
}

#[test]
fn request_reply_and_push_over_tcp() {
    request_reply_and_push("tcp");
}

#[test]
fn request_reply_and_push_over_ipc() {
    request_reply_and_push("ipc");
}

/// Heartbeats stop coming back when the server goes: `expired` (which
/// repeats) marks the client disconnected; when a server is back on the
/// same endpoint, libzmq reconnects, the new server answers the client's
/// PING with ERROR (it has no session), and the client greets it again.
fn expiry_and_reconnect(transport: &str) {
    let endpoint = Endpoint::new(transport, "echo-restart");
    let (server1, address) = server(&endpoint.address);
    let mut client = connected_client(&address);
    assert_eq!(client.echo("before", WAIT).as_deref(), Ok("before"));

    drop(server1);
    // Over tcp, hold the port while the server is down: tests run at once
    // in one process, and another one's server could take a port given
    // back. A listener that never answers the greeting is no server.
    let holder = hold_port(&address);
    assert!(
        eventually(|| !client.connected()),
        "the client never noticed the server was gone"
    );
    // Meanwhile, calls fail at once rather than hang, and fail as errors:
    // never the body an earlier reply left.
    assert_eq!(
        client.echo("while down", WAIT),
        Err(ClientError::Failed {
            reply: "FAILURE",
            status: Some(-1),
            reason: Some("not connected".into())
        })
    );
    assert_eq!(client.status(), -1, "FAILURE while disconnected");

    // The same endpoint again (for tcp, the same port).
    drop(holder);
    let (_server2, _) = server(&address);
    assert!(
        eventually(|| client.connected()),
        "the client never reconnected"
    );
    assert_eq!(client.echo("after", WAIT).as_deref(), Ok("after"));
}

/// A listener on the port of a tcp `address` (none for other transports),
/// once the server that had it has let it go.
fn hold_port(address: &str) -> Option<std::net::TcpListener> {
    let port = address.strip_prefix("tcp://")?;
    let mut held = None;
    // libzmq closes a socket's descriptor on its own I/O thread, a little
    // after the handle is dropped: there is no event to wait on.
    assert!(
        eventually(|| {
            held = std::net::TcpListener::bind(port).ok();
            held.is_some()
        }),
        "the first server never let {port} go"
    );
    held
}

#[test]
fn heartbeat_expiry_and_reconnect_over_tcp() {
    expiry_and_reconnect("tcp");
}

#[test]
fn heartbeat_expiry_and_reconnect_over_ipc() {
    expiry_and_reconnect("ipc");
}

/// PLAIN through the host's ZAP handler, from a zauth passwords file.
fn plain(transport: &str) {
    let dir = std::env::temp_dir().join(format!(
        "zproto-echo-plain-{}-{transport}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let passwords = dir.join("passwords");
    std::fs::write(&passwords, "alice=secret\n").expect("passwords");
    let endpoint = Endpoint::new(transport, "echo-plain");
    let host = EchoHost::start("echo_server", EchoServer).expect("server");
    host.set("server/auth/plain", &passwords.display().to_string())
        .expect("passwords file");
    host.set("echo_server/security/mechanism", "plain")
        .expect("plain");
    let port = host.bind(&endpoint.address).expect("bind");
    let address = if transport == "tcp" {
        format!("tcp://127.0.0.1:{port}")
    } else {
        endpoint.address.clone()
    };

    let mut good = Client::new(EchoClient::default()).expect("client");
    assert_eq!(good.set_plain_auth("alice", "secret", WAIT), Ok(0));
    assert_eq!(good.connect(&address, 2000, WAIT), Ok(0), "accepted");
    assert_eq!(
        good.echo("authenticated", WAIT).as_deref(),
        Ok("authenticated")
    );

    let mut bad = Client::new(EchoClient::default()).expect("client");
    assert_eq!(bad.set_plain_auth("alice", "wrong", WAIT), Ok(0));
    // Refused: no HELLO OK ever comes, the connect timeout expires.
    assert_eq!(
        bad.connect(&address, 300, WAIT),
        Err(ClientError::Failed {
            reply: "FAILURE",
            status: Some(-1),
            reason: Some("not connected".into())
        }),
        "refused"
    );
    assert!(!bad.connected());
    assert_eq!(host.stats().expect("stats").sessions, 1, "only alice");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn plain_accepted_and_refused_over_tcp() {
    plain("tcp");
}

#[test]
fn plain_accepted_and_refused_over_ipc() {
    plain("ipc");
}

fn frame(message: impl Into<EchoMsg>) -> Vec<u8> {
    message.into().encode().expect("encodes").remove(0)
}

/// A frame that does not decode is dropped (the echo server has no
/// `malformed` event) and the session goes on.
fn malformed(transport: &str) {
    let endpoint = Endpoint::new(transport, "echo-malformed");
    let (host, address) = server(&endpoint.address);
    let peer = reactor::socket(zmq::DEALER).expect("socket");
    peer.set_linger(0).expect("linger");
    peer.set_rcvtimeo(WAIT.as_millis() as i32).expect("timeout");
    peer.connect(&address).expect("connect");
    let recv = |peer: &zmq::Socket| {
        EchoMsg::decode(&[peer.recv_bytes(0).expect("a reply")]).expect("decodes")
    };
    peer.send(frame(Hello), 0).expect("send");
    assert_eq!(recv(&peer), EchoMsg::HelloOk(HelloOk));
    peer.send(&b"\xaa\xa9\x03junk"[..], 0).expect("send junk");
    peer.send(
        frame(Say {
            body: "still here".into(),
        }),
        0,
    )
    .expect("send");
    assert_eq!(
        recv(&peer),
        EchoMsg::Said(Said {
            body: "still here".into()
        }),
        "the session lived on"
    );
    let stats = host.stats().expect("stats");
    assert_eq!((stats.malformed, stats.sessions), (1, 1));
}

#[test]
fn a_malformed_frame_is_dropped_and_the_session_lives_over_tcp() {
    malformed("tcp");
}

#[test]
fn a_malformed_frame_is_dropped_and_the_session_lives_over_ipc() {
    malformed("ipc");
}

/// The client traps of a generated API: a connect that no server answers
/// is an error (not `Ok(-1)`), and so is a method whose FAILURE reply
/// comes, never a property an earlier reply left (`expiry_and_reconnect`).
#[test]
fn a_connect_no_server_answers_is_an_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut client = Client::new(EchoClient::default()).expect("client");
    let result = client.connect(&format!("tcp://127.0.0.1:{port}"), 200, WAIT);
    assert!(
        matches!(
            result,
            Err(ClientError::Failed {
                reply: "FAILURE",
                ..
            })
        ),
        "{result:?}"
    );
    let shown = result.unwrap_err().to_string();
    assert_eq!(shown, "FAILURE: not connected (status -1)");
}
