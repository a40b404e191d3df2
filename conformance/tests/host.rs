//! The server host (`zproto_runtime::host`) runs a generated server model
//! over ZeroMQ with no glue: our `rules_server` model, its actions below,
//! and raw DEALERs as clients, over tcp, ipc and inproc.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zproto_conformance::rules_msg::*;
use zproto_conformance::rules_server_engine::{Actions, Event, Machine};
use zproto_runtime::engine::Io;
use zproto_runtime::host::{HostError, ServerHandle};
use zproto_runtime::{reactor, Codec};

const WAIT: Duration = Duration::from_secs(10);

/// What the server's actions saw, shared with the test.
#[derive(Default)]
struct Seen {
    malformed: usize,
    ended: usize,
    /// Settings the host passed on.
    settings: Vec<(String, String)>,
}

#[derive(Default)]
struct Server {
    seen: Arc<Mutex<Seen>>,
}

impl Actions for Server {
    type Session = ();

    fn note_open(&mut self, _: &mut (), _: &mut Open, _: &mut Io<Event, RulesMsg>) {}
    fn note_own_close(&mut self, _: &mut (), _: &mut Close, _: &mut Io<Event, RulesMsg>) {}
    fn note_root_close(&mut self, _: &mut (), _: &mut Close, _: &mut Io<Event, RulesMsg>) {}
    fn enter_open(&mut self, _: &mut (), _: &mut Io<Event, RulesMsg>) {}
    fn leave_open(&mut self, _: &mut (), _: &mut Io<Event, RulesMsg>) {}
    fn check_data(&mut self, _: &mut (), d: &mut Data, io: &mut Io<Event, RulesMsg>) {
        let value = format!("re: {}", d.value);
        io.set_message(Reply { value }.into());
        io.set_next_event(Event::Good);
    }
    fn note_good(&mut self, _: &mut (), _: &mut Io<Event, RulesMsg>) {}
    fn note_bad(&mut self, _: &mut (), _: &mut Io<Event, RulesMsg>) {}
    fn note_malformed(&mut self, _: &mut (), _: &mut Io<Event, RulesMsg>) {
        self.seen.lock().expect("seen").malformed += 1;
    }
    fn note_after_terminate(&mut self, _: &mut (), _: &mut Io<Event, RulesMsg>) {}
    fn raise_bad(&mut self, _: &mut (), _: &mut Io<Event, RulesMsg>) {}

    fn session_ended(&mut self, _: &mut ()) {
        self.seen.lock().expect("seen").ended += 1;
    }

    fn configure(&mut self, path: &str, value: &str) {
        let mut seen = self.seen.lock().expect("seen");
        seen.settings.push((path.to_owned(), value.to_owned()));
    }
}

fn frame(message: impl Into<RulesMsg>) -> Vec<u8> {
    message.into().encode().expect("encodes").remove(0)
}

fn client(endpoint: &str) -> zmq::Socket {
    let dealer = reactor::socket(zmq::DEALER).expect("a socket");
    dealer.set_linger(0).expect("linger");
    dealer
        .set_rcvtimeo(WAIT.as_millis() as i32)
        .expect("timeout");
    dealer.connect(endpoint).expect("connect");
    dealer
}

/// OPEN, then DATA: the REPLY comes back.
fn request_reply(client: &zmq::Socket, text: &str) {
    client.send(frame(Open), 0).expect("send");
    client
        .send(frame(Data { value: text.into() }), 0)
        .expect("send");
    let reply = RulesMsg::decode(&[client.recv_bytes(0).expect("a reply")]).expect("decodes");
    assert_eq!(
        reply,
        RulesMsg::Reply(Reply {
            value: format!("re: {text}")
        })
    );
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn server() -> (ServerHandle<Machine<Server>>, Arc<Mutex<Seen>>) {
    let actions = Server::default();
    let seen = actions.seen.clone();
    let server = ServerHandle::start("rules_server", actions).expect("starts");
    (server, seen)
}

#[test]
fn request_reply_over_tcp_and_ipc_with_no_glue() {
    let (server, _) = server();
    let port = server.bind("tcp://127.0.0.1:*").expect("binds");
    assert!(port > 0);
    assert_eq!(server.port().expect("port"), port);
    request_reply(&client(&format!("tcp://127.0.0.1:{port}")), "tcp");
    let path = std::env::temp_dir().join(format!("zproto-host-{}.ipc", std::process::id()));
    let ipc = format!("ipc://{}", path.display());
    assert_eq!(server.bind(&ipc).expect("binds"), 0);
    request_reply(&client(&ipc), "ipc");
    let stats = server.stats().expect("stats");
    assert_eq!((stats.received, stats.sent), (4, 2));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_malformed_frame_raises_the_models_event_and_the_session_lives() {
    let (server, seen) = server();
    let port = server.bind("tcp://127.0.0.1:*").expect("binds");
    let peer = client(&format!("tcp://127.0.0.1:{port}"));
    peer.send(frame(Open), 0).expect("send");
    peer.send(&[0xde, 0xad, 0xbe, 0xef][..], 0).expect("send");
    peer.send(
        frame(Data {
            value: "after".into(),
        }),
        0,
    )
    .expect("send");
    let reply = RulesMsg::decode(&[peer.recv_bytes(0).expect("a reply")]).expect("decodes");
    assert_eq!(
        reply,
        RulesMsg::Reply(Reply {
            value: "re: after".into()
        })
    );
    assert_eq!(seen.lock().unwrap().malformed, 1);
    assert_eq!(server.stats().expect("stats").malformed, 1);
}

#[test]
fn sessions_end_with_their_peer_and_the_hook_runs() {
    let (server, seen) = server();
    let port = server.bind("tcp://127.0.0.1:*").expect("binds");
    let peer = client(&format!("tcp://127.0.0.1:{port}"));
    request_reply(&peer, "bye");
    assert_eq!(server.stats().expect("stats").sessions, 1);
    drop(peer);
    wait_until("the session to end", || seen.lock().unwrap().ended == 1);
    let stats = server.stats().expect("stats");
    assert_eq!((stats.sessions, stats.peers_gone), (0, 1));
}

#[test]
fn silent_inproc_sessions_expire_after_server_timeout() {
    let (server, seen) = server();
    server.set("server/timeout", "50").expect("set");
    let endpoint = format!("inproc://host-expiry-{}", std::process::id());
    server.bind(&endpoint).expect("binds");
    let peer = client(&endpoint);
    request_reply(&peer, "then silence");
    // The model's `expired` terminates the session.
    wait_until("the session to expire", || seen.lock().unwrap().ended == 1);
    assert_eq!(server.stats().expect("stats").sessions, 0);
}

#[test]
fn load_reads_zproto_config_files_and_locates_errors() {
    let dir = std::env::temp_dir().join(format!("zproto-host-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let ipc = format!("ipc://{}", dir.join("server.ipc").display());
    let good = dir.join("good.cfg");
    std::fs::write(
        &good,
        format!(
            "# as Malamute's config\nserver\n    timeout = 5000\n    verbose = 0\n\
             rules_server\n    bind\n        endpoint = {ipc}\n    limits\n        size = 42\n"
        ),
    )
    .expect("write");
    let (server, seen) = server();
    server.load(&good).expect("loads");
    request_reply(&client(&ipc), "configured");
    // The application's own settings reach its actions; the host's do not.
    server.set("rules_server/mode", "fast").expect("set");
    assert_eq!(
        seen.lock().expect("seen").settings,
        [
            ("rules_server/limits/size".to_owned(), "42".to_owned()),
            ("rules_server/mode".to_owned(), "fast".to_owned())
        ]
    );

    let bad = dir.join("bad.cfg");
    std::fs::write(&bad, "server\n   timeout = 5000\n").expect("write");
    let err = server.load(&bad).expect_err("a bad file");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: 2:4: indentation of 3 spaces is not a multiple of 4",
            bad.display()
        )
    );
    std::fs::write(&bad, "server\n    timeout = soon\n").expect("write");
    assert!(matches!(server.load(&bad), Err(HostError::Config { .. })));
    assert!(server.load(&dir.join("missing.cfg")).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_application_reaches_its_actions_through_the_handle() {
    let (server, seen) = server();
    let ended = server
        .with(|actions: &mut Server| actions.seen.lock().unwrap().ended)
        .expect("runs");
    assert_eq!(ended, 0);
    assert!(Arc::strong_count(&seen) >= 2);
}

/// A DEALER with PLAIN credentials, and a monitor that reports a refusal.
fn plain_client(endpoint: &str, user: &str, password: &str) -> (zmq::Socket, zmq::Socket) {
    static MONITORS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dealer = reactor::socket(zmq::DEALER).expect("a socket");
    dealer.set_linger(0).expect("linger");
    dealer
        .set_rcvtimeo(WAIT.as_millis() as i32)
        .expect("timeout");
    dealer.set_plain_username(Some(user)).expect("user");
    dealer.set_plain_password(Some(password)).expect("password");
    let address = format!(
        "inproc://host-plain-monitor-{}-{}",
        std::process::id(),
        MONITORS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    dealer
        .monitor(
            &address,
            zmq::SocketEvent::HANDSHAKE_FAILED_AUTH.to_raw() as i32,
        )
        .expect("monitor");
    let monitor = reactor::socket(zmq::PAIR).expect("a socket");
    monitor.set_linger(0).expect("linger");
    monitor
        .set_rcvtimeo(WAIT.as_millis() as i32)
        .expect("timeout");
    monitor.connect(&address).expect("connect");
    dealer.connect(endpoint).expect("connect");
    (dealer, monitor)
}

#[test]
fn plain_security_accepts_good_credentials_and_refuses_bad_ones() {
    let dir = std::env::temp_dir().join(format!("zproto-host-plain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let passwords = dir.join("passwords.cfg");
    std::fs::write(&passwords, "# zauth's format\nreader=secret\n").expect("write");
    let (server, _) = server();
    server
        .set("server/auth/plain", &passwords.display().to_string())
        .expect("set");
    server
        .set("rules_server/security/mechanism", "plain")
        .expect("set");
    let port = server.bind("tcp://127.0.0.1:*").expect("binds");
    let endpoint = format!("tcp://127.0.0.1:{port}");

    let (good, _) = plain_client(&endpoint, "reader", "secret");
    request_reply(&good, "authenticated");

    let (bad, monitor) = plain_client(&endpoint, "reader", "guess");
    bad.send(frame(Open), 0).expect("queued");
    let event = monitor.recv_multipart(0).expect("a refusal");
    let number = u16::from_ne_bytes([event[0][0], event[0][1]]);
    assert_eq!(number, zmq::SocketEvent::HANDSHAKE_FAILED_AUTH.to_raw());
    assert_eq!(
        server.stats().expect("stats").received,
        2,
        "only the good client's"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A DEALER that speaks CURVE to a server with `server_key`, as `keys`.
fn curve_client(endpoint: &str, server_key: &str, keys: &zmq::CurveKeyPair) -> zmq::Socket {
    let dealer = reactor::socket(zmq::DEALER).expect("a socket");
    dealer.set_linger(0).expect("linger");
    dealer
        .set_rcvtimeo(WAIT.as_millis() as i32)
        .expect("timeout");
    dealer
        .set_curve_serverkey(server_key.as_bytes())
        .expect("server key");
    dealer
        .set_curve_publickey(&keys.public_key)
        .expect("public");
    dealer
        .set_curve_secretkey(&keys.secret_key)
        .expect("secret");
    dealer.connect(endpoint).expect("connect");
    dealer
}

/// Any server the generator builds takes CURVE from its settings, as CZMQ's
/// engine does (`security/mechanism curve`, `security/secret-key`), with
/// zauth's allow-list directory (`server/auth/curve`): a listed client
/// gets answers, an unlisted one and a NULL one get nothing.
#[test]
fn curve_security_admits_only_the_allow_list() {
    use zproto_runtime::cert::Certificate;
    let dir = std::env::temp_dir().join(format!("zproto-host-curve-{}", std::process::id()));
    let allow = dir.join("allow");
    std::fs::create_dir_all(&allow).expect("dir");
    let server_cert = Certificate::generate().expect("keys");
    server_cert.save(&dir.join("server.cert")).expect("saved");
    let friend = zmq::CurveKeyPair::new().expect("keys");
    let friend_public = zmq::z85_encode(&friend.public_key).expect("z85");
    let friend_cert = Certificate {
        public: friend_public,
        secret: None,
    };
    friend_cert.save(&allow.join("friend.cert")).expect("saved");
    let (host, _) = server();
    let secret = dir.join("server.cert_secret");
    host.set("rules_server/security/mechanism", "curve")
        .expect("set");
    host.set(
        "rules_server/security/secret-key",
        &secret.display().to_string(),
    )
    .expect("set");
    host.set("server/auth/curve", &allow.display().to_string())
        .expect("set");
    let port = host.bind("tcp://127.0.0.1:*").expect("binds");
    let endpoint = format!("tcp://127.0.0.1:{port}");

    request_reply(
        &curve_client(&endpoint, &server_cert.public, &friend),
        "encrypted",
    );
    let stranger = zmq::CurveKeyPair::new().expect("keys");
    let refused = curve_client(&endpoint, &server_cert.public, &stranger);
    refused.set_rcvtimeo(300).expect("timeout");
    refused.send(frame(Open), 0).expect("queued");
    assert!(refused.recv_bytes(0).is_err(), "a stranger got an answer");
    let plain = client(&endpoint);
    plain.set_rcvtimeo(300).expect("timeout");
    plain.send(frame(Open), 0).expect("queued");
    assert!(plain.recv_bytes(0).is_err(), "a NULL client got an answer");
    assert_eq!(
        host.stats().expect("stats").received,
        2,
        "only the friend's"
    );
    // No secret certificate: the bind is refused, not opened in clear.
    let (bare, _) = server();
    bare.set("rules_server/security/mechanism", "curve")
        .expect("set");
    let err = bare.bind("tcp://127.0.0.1:*").expect_err("no key");
    assert!(err.to_string().contains("secret certificate"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn security_that_cannot_be_had_is_an_error_never_plain_text() {
    let (server, _) = server();
    let err = server
        .set("rules_server/security/mechanism", "rot13")
        .expect_err("unknown");
    assert!(
        err.to_string().contains("is not null, plain or curve"),
        "{err}"
    );
    if !zproto_runtime::zap::curve_available() {
        let err = server
            .set("rules_server/security/mechanism", "curve")
            .expect_err("no CURVE in this libzmq");
        assert!(err.to_string().contains("libsodium"), "{err}");
    }
    // PLAIN without a passwords file: the bind is refused, not opened.
    server
        .set("rules_server/security/mechanism", "plain")
        .expect("set");
    let err = server.bind("tcp://127.0.0.1:*").expect_err("no passwords");
    assert!(err.to_string().contains("passwords file"), "{err}");
    assert_eq!(server.port().expect("port"), 0);
}
