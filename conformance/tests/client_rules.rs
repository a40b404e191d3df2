//! The client engine rules (zproto_client_c, reference §5.2), sans I/O:
//! the generated echo client (`models/echo_client.xml`) driven through
//! `zproto_runtime::client::ClientCore` with a clock of our own.

use std::time::{Duration, Instant};

use zproto_conformance::echo::EchoClient;
use zproto_conformance::echo_client_engine::{replies, Event, Machine, Reply, State};
use zproto_conformance::echo_msg::*;
use zproto_runtime::client::{Answer, ClientCore, ClientSecurity, Transport};

type Core = ClientCore<Machine<EchoClient>>;

const HEARTBEAT: Duration = Duration::from_millis(200);
const EXPIRY: Duration = Duration::from_millis(1000);

fn core() -> Core {
    let mut core = Core::new(EchoClient {
        heartbeat: HEARTBEAT,
        expiry: EXPIRY,
    });
    core.record_trace();
    core
}

fn sent(core: &mut Core) -> Vec<EchoMsg> {
    core.drain_outbox().collect()
}

fn answers(core: &mut Core) -> Vec<Answer<Reply>> {
    core.drain_answers().collect()
}

fn success() -> Answer<Reply> {
    Answer::Reply(Reply::Success(replies::Success { status: 0 }))
}

/// Connected at `t0`: the method stored its arguments, the actions
/// connected and greeted, HELLO OK moved to `connected`.
fn connected(t0: Instant) -> Core {
    let mut core = core();
    core.call(
        Event::Connect,
        |args| {
            args.endpoint = "tcp://127.0.0.1:1".into();
            args.timeout = 500;
        },
        t0,
    );
    assert_eq!(
        core.endpoints(),
        ["tcp://127.0.0.1:1"],
        "connected with the method's argument"
    );
    assert_eq!(sent(&mut core), [EchoMsg::Hello(Hello)]);
    assert_eq!(core.state(), State::Connecting);
    core.receive(HelloOk.into(), t0);
    assert_eq!(core.state(), State::Connected);
    assert!(core.is_connected(), "the connected flag");
    assert_eq!(answers(&mut core), [success()]);
    core
}

#[test]
fn a_method_stores_its_arguments_and_runs_its_event() {
    let t0 = Instant::now();
    let mut core = connected(t0);
    core.call(Event::Echo, |args| args.body = "ping?".into(), t0);
    assert_eq!(
        sent(&mut core),
        [EchoMsg::Say(Say {
            body: "ping?".into()
        })]
    );
    core.receive(
        Said {
            body: "ping?".into(),
        }
        .into(),
        t0,
    );
    assert_eq!(
        answers(&mut core),
        [Answer::Reply(Reply::Echoed(replies::Echoed {
            body: "ping?".into()
        }))]
    );
}

#[test]
fn the_connect_timeout_expires_in_connecting() {
    let t0 = Instant::now();
    let mut core = core();
    core.call(Event::Connect, |args| args.timeout = 500, t0);
    assert_eq!(core.next_deadline(), Some(t0 + Duration::from_millis(500)));
    core.tick(t0 + Duration::from_millis(499));
    assert_eq!(core.state(), State::Connecting, "not yet");
    core.tick(t0 + Duration::from_millis(500));
    assert_eq!(core.state(), State::Start);
    assert!(matches!(
        answers(&mut core)[..],
        [Answer::Reply(Reply::Failure(_))]
    ));
}

#[test]
fn expired_repeats_while_the_silence_lasts() {
    let t0 = Instant::now();
    let mut core = connected(t0);
    let expired = |core: &Core| {
        core.trace()
            .iter()
            .filter(|t| t.to_string().ends_with(": expired"))
            .count()
    };
    core.tick(t0 + EXPIRY);
    assert_eq!(core.state(), State::Disconnected);
    assert!(!core.is_connected());
    assert_eq!(expired(&core), 1);
    core.tick(t0 + EXPIRY * 2);
    assert_eq!(expired(&core), 2, "it re-arms itself");
    core.tick(t0 + EXPIRY * 3);
    assert_eq!(expired(&core), 3);
}

#[test]
fn every_message_restarts_the_expiry() {
    let t0 = Instant::now();
    let mut core = connected(t0);
    let late = t0 + EXPIRY - Duration::from_millis(1);
    core.receive(Pong.into(), late);
    core.tick(t0 + EXPIRY);
    assert_eq!(core.state(), State::Connected, "the PONG restarted it");
    core.tick(late + EXPIRY);
    assert_eq!(core.state(), State::Disconnected);
}

#[test]
fn the_heartbeat_repeats_whatever_the_traffic() {
    let t0 = Instant::now();
    let mut core = connected(t0);
    for beat in 1..=4u32 {
        // Traffic just before each beat changes nothing.
        core.receive(
            Pong.into(),
            t0 + HEARTBEAT * beat - Duration::from_millis(1),
        );
        core.tick(t0 + HEARTBEAT * beat);
        assert_eq!(sent(&mut core), [EchoMsg::Ping(Ping)], "beat {beat}");
    }
    assert_eq!(core.state(), State::Connected);
}

#[test]
fn terminate_stops_the_machine_for_good() {
    let t0 = Instant::now();
    let mut core = connected(t0);
    core.call(Event::Destructor, |_| {}, t0);
    assert_eq!(answers(&mut core), [success()]);
    assert!(core.is_stopped());
    assert_eq!(core.next_deadline(), None, "no timers any more");
    // Every event is ignored from now on; calls hear that it stopped.
    core.receive(
        Said {
            body: "late".into(),
        }
        .into(),
        t0,
    );
    core.tick(t0 + EXPIRY * 10);
    assert_eq!(answers(&mut core), []);
    core.call(Event::Echo, |_| {}, t0);
    assert_eq!(answers(&mut core), [Answer::Stopped]);
    assert_eq!(sent(&mut core), []);
}

#[test]
fn a_method_the_state_does_not_handle_is_answered_not_fatal() {
    let t0 = Instant::now();
    let mut core = core();
    // `start` has no `echo` and no `*`.
    core.call(Event::Echo, |_| {}, t0);
    assert_eq!(
        answers(&mut core),
        [Answer::Unhandled {
            state: "start",
            event: "echo"
        }]
    );
    assert_eq!(core.state(), State::Start);
}

#[test]
fn a_message_no_state_names_is_dropped_not_fatal() {
    let t0 = Instant::now();
    let mut core = connected(t0);
    // The client model names no PING (a server never sends one).
    core.receive(Ping.into(), t0);
    assert_eq!(core.stats().unknown, 1);
    assert_eq!(core.state(), State::Connected);
    core.call(Event::Echo, |args| args.body = "alive".into(), t0);
    assert_eq!(sent(&mut core).len(), 1, "the machine runs on");
}

#[test]
fn a_wildcard_takes_what_a_state_does_not_name() {
    let t0 = Instant::now();
    let mut core = connected(t0);
    // `connected` inherits `*` from `defaults`: HELLO OK out of turn in
    // `disconnected` is taken by it.
    core.tick(t0 + EXPIRY);
    assert_eq!(core.state(), State::Disconnected);
    core.receive(HelloOk.into(), t0 + EXPIRY);
    assert_eq!(core.state(), State::Disconnected);
    assert_eq!(answers(&mut core), []);
}

/// A transport that refuses every endpoint.
struct Refusing;

impl Transport for Refusing {
    fn connect(&mut self, _: &str, _: &ClientSecurity) -> Result<(), String> {
        Err("no such transport".into())
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

#[test]
fn an_exception_skips_the_rest_and_the_state_change() {
    let t0 = Instant::now();
    let mut core = core();
    core.set_transport(Box::new(Refusing));
    core.call(Event::Connect, |args| args.endpoint = "bogus".into(), t0);
    // `connect to server` raised `bad endpoint`: no HELLO, no `connecting`,
    // and `bad endpoint` ran in `start`.
    assert_eq!(sent(&mut core), []);
    assert_eq!(core.state(), State::Start);
    assert!(matches!(
        answers(&mut core)[..],
        [Answer::Reply(Reply::Failure(_))]
    ));
    let trace: Vec<String> = core.trace().iter().map(ToString::to_string).collect();
    assert!(
        trace.contains(&"    ! bad_endpoint".to_owned()),
        "{trace:#?}"
    );
}

#[test]
fn send_messages_go_out_as_they_are_without_running_the_machine() {
    let t0 = Instant::now();
    let mut core = connected(t0);
    let note = Note {
        text: "as is".into(),
    };
    core.send(note.clone().into());
    assert_eq!(sent(&mut core), [EchoMsg::Note(note)]);
    assert_eq!(core.state(), State::Connected);
}
