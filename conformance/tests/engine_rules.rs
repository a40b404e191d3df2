//! Every execution rule of zproto's server engine (reference section 4.5),
//! on the small machine of `models/rules_server.xml`. Each test drives the
//! generated `execute` and checks the trace of states, events and actions.

use zproto_conformance::rules_msg::*;
use zproto_conformance::rules_server_engine::{execute, Actions, Event, State};
use zproto_runtime::engine::{Io, Outcome, Trace};

/// Records the actions it runs; some raise events.
#[derive(Default)]
struct Server {
    data_is_good: bool,
    /// `note good` asks for a `stop` wakeup after this long.
    wakeup: Option<std::time::Duration>,
    /// `check data` leaves the received DATA in the engine instead of
    /// preparing a REPLY.
    leave_message: bool,
    /// What `bad` events carried (a `String`), in the order they ran.
    carried: Vec<String>,
}

#[derive(Default)]
struct Session {
    notes: Vec<&'static str>,
}

impl Actions for Server {
    type Session = Session;

    fn note_open(&mut self, s: &mut Session, _open: &mut Open, _io: &mut Io<Event, RulesMsg>) {
        s.notes.push("note open");
    }
    fn note_own_close(
        &mut self,
        s: &mut Session,
        _close: &mut Close,
        _io: &mut Io<Event, RulesMsg>,
    ) {
        s.notes.push("note own close");
    }
    fn enter_open(&mut self, s: &mut Session, _io: &mut Io<Event, RulesMsg>) {
        s.notes.push("enter open");
    }
    fn leave_open(&mut self, s: &mut Session, _io: &mut Io<Event, RulesMsg>) {
        s.notes.push("leave open");
    }
    fn check_data(&mut self, s: &mut Session, data: &mut Data, io: &mut Io<Event, RulesMsg>) {
        s.notes.push("check data");
        let value = data.value.clone();
        // Prepare the REPLY that the following `send` sends.
        if !self.leave_message {
            io.set_message(
                Reply {
                    value: format!("re: {value}"),
                }
                .into(),
            );
        }
        if self.data_is_good {
            io.set_next_event(Event::Good);
        } else {
            io.set_exception(Event::Bad);
        }
    }
    fn note_good(&mut self, s: &mut Session, io: &mut Io<Event, RulesMsg>) {
        s.notes.push("note good");
        if let Some(delay) = self.wakeup {
            io.set_wakeup(delay, Event::Stop);
        }
    }
    fn note_bad(&mut self, s: &mut Session, io: &mut Io<Event, RulesMsg>) {
        s.notes.push("note bad");
        if let Some(text) = io.arg::<String>() {
            self.carried.push(text.clone());
        }
    }
    fn note_malformed(&mut self, s: &mut Session, _io: &mut Io<Event, RulesMsg>) {
        s.notes.push("note malformed");
    }
    fn note_after_terminate(&mut self, s: &mut Session, _io: &mut Io<Event, RulesMsg>) {
        s.notes.push("note after terminate");
    }
    fn raise_bad(&mut self, s: &mut Session, io: &mut Io<Event, RulesMsg>) {
        s.notes.push("raise bad");
        io.set_exception(Event::Bad);
    }
    fn note_root_close(
        &mut self,
        s: &mut Session,
        _close: &mut Close,
        _io: &mut Io<Event, RulesMsg>,
    ) {
        s.notes.push("note root close");
    }
}

struct Run {
    outcome: Outcome,
    trace: Vec<String>,
    sent: Vec<RulesMsg>,
}

fn run(
    server: &mut Server,
    session: &mut Session,
    state: &mut State,
    event: Event,
    message: Option<RulesMsg>,
) -> Run {
    let mut io = Io::new(message).record_trace();
    let outcome = execute(server, session, state, event, &mut io);
    Run {
        outcome,
        trace: io.trace().iter().map(Trace::to_string).collect(),
        sent: io.take_outbox(),
    }
}

/// A session opened with OPEN, its notes of that cleared.
fn open(server: &mut Server) -> (Session, State) {
    let mut session = Session::default();
    let mut state = State::default();
    let r = run(
        server,
        &mut session,
        &mut state,
        Event::Open,
        Some(Open.into()),
    );
    assert_eq!(r.outcome, Outcome::Waiting);
    session.notes.clear();
    (session, state)
}

#[test]
fn the_first_state_is_initial_and_next_runs_before_actions() {
    let mut server = Server::default();
    let mut session = Session::default();
    let mut state = State::default();
    assert_eq!(state, State::Start);
    let r = run(
        &mut server,
        &mut session,
        &mut state,
        Event::Open,
        Some(Open.into()),
    );
    assert_eq!(
        r.trace,
        [
            "start: OPEN",
            "    $ note open",
            "    $ enter open",
            "    > open"
        ]
    );
    assert_eq!(state, State::Open);
    // `before` of the new state runs on entry (start has no `after`).
    assert_eq!(session.notes, ["note open", "enter open"]);
}

#[test]
fn next_event_chains_in_the_same_run_with_after_and_before() {
    let mut server = Server {
        data_is_good: true,
        ..Server::default()
    };
    let (mut session, mut state) = open(&mut server);
    let data = Data { value: "x".into() };
    let r = run(
        &mut server,
        &mut session,
        &mut state,
        Event::Data,
        Some(data.into()),
    );
    assert_eq!(
        r.trace,
        [
            "open: DATA",
            "    $ check data",
            "    $ send REPLY",
            "    > open",
            "open: good",
            "    $ note good",
            "    $ leave open",
            "    $ enter open",
            "    > open"
        ]
    );
    // `next` naming the same state still runs after and before.
    assert_eq!(
        session.notes,
        ["check data", "note good", "leave open", "enter open"]
    );
    assert_eq!(r.outcome, Outcome::Waiting);
}

#[test]
fn send_uses_the_fields_actions_stored() {
    let mut server = Server {
        data_is_good: true,
        ..Server::default()
    };
    let (mut session, mut state) = open(&mut server);
    let data = Data {
        value: "hello".into(),
    };
    let r = run(
        &mut server,
        &mut session,
        &mut state,
        Event::Data,
        Some(data.into()),
    );
    assert_eq!(
        r.sent,
        vec![RulesMsg::Reply(Reply {
            value: "re: hello".into()
        })]
    );
}

#[test]
fn an_exception_skips_the_rest_and_is_handled_in_the_current_state() {
    let mut server = Server::default();
    let (mut session, mut state) = open(&mut server);
    let r = run(
        &mut server,
        &mut session,
        &mut state,
        Event::Data,
        Some(Data::default().into()),
    );
    // As zproto logs it: the state line after the exception, then the
    // exception event in the same state.
    assert_eq!(
        r.trace,
        [
            "open: DATA",
            "    $ check data",
            "    ! bad",
            "    > open",
            "open: bad",
            "    $ note bad",
            "    > open"
        ]
    );
    // The send after the exception did not run.
    assert!(r.sent.is_empty());
    assert_eq!(session.notes, ["check data", "note bad"]);
}

#[test]
fn terminate_lets_later_actions_run_then_ends_the_session() {
    let mut server = Server::default();
    let (mut session, mut state) = open(&mut server);
    let r = run(&mut server, &mut session, &mut state, Event::Stop, None);
    assert_eq!(r.outcome, Outcome::Terminated);
    assert_eq!(
        r.trace,
        [
            "open: stop",
            "    $ terminate",
            "    $ note after terminate"
        ]
    );
}

#[test]
fn an_exception_overrides_terminate() {
    let mut server = Server::default();
    let (mut session, mut state) = open(&mut server);
    let r = run(
        &mut server,
        &mut session,
        &mut state,
        Event::FailingStop,
        None,
    );
    assert_eq!(r.outcome, Outcome::Waiting);
    assert_eq!(
        r.trace,
        [
            "open: failing_stop",
            "    $ terminate",
            "    $ raise bad",
            "    ! bad",
            "    > open",
            "open: bad",
            "    $ note bad",
            "    > open"
        ]
    );
}

#[test]
fn own_events_win_over_superstates_and_superstates_chain() {
    let mut server = Server::default();
    // `start` defines CLOSE itself.
    let mut session = Session::default();
    let mut state = State::Start;
    run(
        &mut server,
        &mut session,
        &mut state,
        Event::Close,
        Some(Close.into()),
    );
    assert_eq!(session.notes, ["note own close"]);
    // `open` inherits CLOSE from `root`, two levels up (open -> base -> root).
    let (mut session, mut state) = open(&mut server);
    let r = run(
        &mut server,
        &mut session,
        &mut state,
        Event::Close,
        Some(Close.into()),
    );
    assert_eq!(
        r.trace,
        ["open: CLOSE", "    $ note root close", "    > open"]
    );
    // ...and `expired` from root as well.
    let r = run(&mut server, &mut session, &mut state, Event::Expired, None);
    assert_eq!(r.outcome, Outcome::Terminated);
}

#[test]
fn the_wildcard_catches_what_no_named_event_handles() {
    let mut server = Server::default();
    let mut session = Session::default();
    let mut state = State::Start;
    // DATA is not named in `start`, `base` or `root`: base's `*` handles it.
    let r = run(
        &mut server,
        &mut session,
        &mut state,
        Event::Data,
        Some(Data::default().into()),
    );
    assert_eq!(r.outcome, Outcome::Terminated);
    assert_eq!(r.sent, vec![RulesMsg::Close(Close)]);
    assert_eq!(
        r.trace,
        ["start: DATA", "    $ send CLOSE", "    $ terminate"]
    );
}

#[test]
fn a_message_no_state_names_raises_terminate() {
    assert_eq!(
        Event::from_message(&RulesMsg::Unused(Unused)),
        Event::Terminate
    );
    assert_eq!(
        Event::from_message(&RulesMsg::Data(Data::default())),
        Event::Data
    );
    assert!(Event::Data.is_external());
    assert!(!Event::Good.is_external());
    assert_eq!(Event::Data.name(), "DATA");
    assert_eq!(Event::FailingStop.name(), "failing_stop");
    // In `start` it falls into the inherited wildcard.
    let mut state = State::Start;
    let r = run(
        &mut Server::default(),
        &mut Session::default(),
        &mut state,
        Event::Terminate,
        None,
    );
    assert_eq!(r.outcome, Outcome::Terminated);
    assert_eq!(r.sent, vec![RulesMsg::Close(Close)]);
}

#[test]
fn an_unhandled_event_is_reported_not_aborted() {
    let mut server = Server::default();
    let mut session = Session::default();
    let mut state = State::Start;
    run(&mut server, &mut session, &mut state, Event::GoStrict, None);
    assert_eq!(state, State::Strict);
    let r = run(&mut server, &mut session, &mut state, Event::Data, None);
    assert_eq!(
        r.outcome,
        Outcome::Unhandled {
            state: "strict",
            event: "DATA"
        }
    );
}

#[test]
fn any_event_cancels_a_pending_wakeup() {
    let mut io: Io<Event, RulesMsg> = Io::new(None);
    io.set_wakeup(std::time::Duration::from_millis(5), Event::Good);
    let mut state = State::Strict;
    execute(
        &mut Server::default(),
        &mut Session::default(),
        &mut state,
        Event::Open,
        &mut io,
    );
    assert_eq!(io.take_wakeup(), None);
}

mod sessions {
    //! The runtime's session table driving the generated machine: one machine
    //! per routing id, expiry, wakeups, broadcasts, unhandled events.

    use std::time::{Duration, Instant};

    use super::*;
    use zproto_conformance::rules_server_engine::Machine;
    use zproto_runtime::server::Sessions;

    const TIMEOUT: Duration = Duration::from_millis(100);

    fn open_two(server: &mut Server, now: Instant) -> Sessions<Machine<Server>> {
        let mut sessions = Sessions::<Machine<Server>>::new(Some(TIMEOUT));
        sessions.handle(server, b"a", Open.into(), now);
        sessions.handle(server, b"b", Open.into(), now);
        assert_eq!(sessions.len(), 2);
        sessions
    }

    #[test]
    fn one_machine_per_routing_id_and_replies_go_to_the_sender() {
        let now = Instant::now();
        let mut server = Server {
            data_is_good: true,
            ..Server::default()
        };
        let mut sessions = open_two(&mut server, now);
        sessions.handle(&mut server, b"b", Data { value: "v".into() }.into(), now);
        let out = sessions.take_outgoing();
        assert_eq!(
            out,
            vec![(
                b"b".to_vec(),
                RulesMsg::Reply(Reply {
                    value: "re: v".into()
                })
            )]
        );
    }

    #[test]
    fn silent_sessions_expire_and_traffic_postpones_it() {
        let now = Instant::now();
        let mut server = Server::default();
        let mut sessions = open_two(&mut server, now);
        assert_eq!(sessions.next_deadline(), Some(now + TIMEOUT));
        // b speaks halfway: only a expires at the deadline.
        sessions.handle(&mut server, b"b", Close.into(), now + TIMEOUT / 2);
        sessions.tick(&mut server, now + TIMEOUT);
        assert_eq!(
            sessions.routing_ids().collect::<Vec<_>>(),
            vec![&b"b".to_vec()]
        );
        sessions.tick(&mut server, now + TIMEOUT * 2);
        assert!(sessions.is_empty());
    }

    #[test]
    fn wakeups_fire_once_and_any_event_cancels_them() {
        let now = Instant::now();
        let delay = Duration::from_millis(10);
        let mut server = Server {
            leave_message: false,
            data_is_good: true,
            wakeup: Some(delay),
            ..Server::default()
        };
        let mut sessions = Sessions::<Machine<Server>>::new(None);
        sessions.handle(&mut server, b"a", Open.into(), now);
        sessions.handle(&mut server, b"a", Data::default().into(), now);
        assert_eq!(sessions.next_deadline(), Some(now + delay));
        // Another event cancels it.
        sessions.handle(&mut server, b"a", Close.into(), now);
        assert_eq!(sessions.next_deadline(), None);
        // Armed again, it fires `stop`, which terminates the session.
        sessions.handle(&mut server, b"a", Data::default().into(), now);
        sessions.tick(&mut server, now + delay);
        assert!(sessions.is_empty());
    }

    #[test]
    fn broadcast_reaches_every_session() {
        let now = Instant::now();
        let mut server = Server::default();
        let mut sessions = open_two(&mut server, now);
        sessions.broadcast(&mut server, Event::Stop, now);
        assert!(sessions.is_empty(), "stop terminates both");
    }

    #[test]
    fn an_event_carries_its_data_to_every_session_it_reaches() {
        let now = Instant::now();
        let mut server = Server::default();
        let mut sessions = open_two(&mut server, now);
        sessions.broadcast_with(&mut server, Event::Bad, None, "to all".to_string(), now);
        assert_eq!(server.carried, ["to all", "to all"]);
        // Data of another type reads as none; an event without data too.
        sessions.broadcast_with(&mut server, Event::Bad, None, 7_u32, now);
        sessions.broadcast(&mut server, Event::Bad, now);
        sessions.send_event_with(&mut server, b"b", Event::Bad, "to b".to_string(), now);
        assert_eq!(server.carried, ["to all", "to all", "to b"]);
        // Nothing stays for the next event: data lives for its own run.
        sessions.send_event(&mut server, b"a", Event::Bad, now);
        assert_eq!(server.carried.len(), 3);
    }

    #[test]
    fn an_unhandled_event_ends_only_that_session() {
        let now = Instant::now();
        let mut server = Server::default();
        let mut sessions = open_two(&mut server, now);
        sessions.send_event(&mut server, b"a", Event::GoStrict, now);
        sessions.handle(&mut server, b"a", Data::default().into(), now);
        assert_eq!(
            sessions.routing_ids().collect::<Vec<_>>(),
            vec![&b"b".to_vec()]
        );
    }
}

/// As in zproto, actions share one message object: `send REPLY` after a
/// DATA that no action replaced sends a REPLY with DATA's fields of the
/// same name, not an empty one.
#[test]
fn send_carries_the_fields_of_the_same_name_from_the_message_held() {
    let mut server = Server {
        data_is_good: true,
        leave_message: true,
        ..Server::default()
    };
    let (mut session, mut state) = open(&mut server);
    let data = Data {
        value: "kept".into(),
    };
    let r = run(
        &mut server,
        &mut session,
        &mut state,
        Event::Data,
        Some(data.into()),
    );
    assert_eq!(
        r.sent,
        vec![RulesMsg::Reply(Reply {
            value: "kept".into()
        })]
    );
    // Between messages with no field in common, the rest is default.
    assert_eq!(Reply::with_fields_of(&Open.into()), Reply::default());
}

#[test]
fn an_action_that_takes_its_message_typed_gets_it_and_gives_back_what_it_leaves() {
    // `check data` takes the DATA typed; left alone, it stays the shared
    // message, whose fields the following `send REPLY` copies.
    let mut server = Server {
        data_is_good: true,
        leave_message: true,
        ..Server::default()
    };
    let (mut session, mut state) = open(&mut server);
    let r = run(
        &mut server,
        &mut session,
        &mut state,
        Event::Data,
        Some(Data { value: "v".into() }.into()),
    );
    assert!(session.notes.contains(&"check data"), "{:?}", r.trace);
    assert_eq!(r.sent, vec![RulesMsg::Reply(Reply { value: "v".into() })]);
}

#[test]
fn an_action_that_takes_its_message_typed_does_not_run_without_it() {
    // A driver raising DATA with no message: `check data` cannot have its
    // DATA, so it does not run (and says so), and the handler goes on.
    let mut server = Server {
        data_is_good: true,
        ..Server::default()
    };
    let (mut session, mut state) = open(&mut server);
    let r = run(&mut server, &mut session, &mut state, Event::Data, None);
    assert_eq!(
        r.trace,
        [
            "open: DATA",
            "    $ check data",
            "    - check data (not its message)",
            "    $ send REPLY",
            "    > open",
        ]
    );
    assert!(session.notes.is_empty(), "{:?}", session.notes);
    assert_eq!(r.sent, vec![RulesMsg::Reply(Reply::default())]);
    assert_eq!(r.outcome, Outcome::Waiting);
}
