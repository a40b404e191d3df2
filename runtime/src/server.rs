//! The session table of a server: one generated state machine per client
//! (ROUTER routing id), with expiry, wakeups and broadcasts. Sans-IO: it
//! takes decoded messages and the current time, and leaves the messages to
//! send in a queue for whatever transport drives it.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use crate::codec::Codec;
use crate::engine::{Io, Outcome};

/// What the session table needs from a generated state machine. Generated
/// engines implement it for `Machine<A>`, with `A` the application's actions.
pub trait StateMachine {
    /// Server-wide application state: implements the model's actions.
    type Actions;
    /// Per-session application state.
    type Session: Default;
    /// The machine's states; `Default` is the initial state.
    type State: Copy + Default + fmt::Debug;
    /// The machine's events.
    type Event: Copy + PartialEq + fmt::Debug;
    /// The protocol's messages.
    type Message: Codec + Clone + fmt::Debug;
    /// The built-in `expired` event, if the model handles it.
    const EXPIRED: Option<Self::Event>;
    /// The event a received message raises.
    fn event_for(message: &Self::Message) -> Self::Event;
    /// Run the machine (the generated `execute`).
    fn execute(
        actions: &mut Self::Actions,
        session: &mut Self::Session,
        state: &mut Self::State,
        event: Self::Event,
        io: &mut Io<Self::Event, Self::Message>,
    ) -> Outcome;
}

/// One client session.
#[derive(Debug)]
struct Entry<M: StateMachine> {
    state: M::State,
    session: M::Session,
    expires_at: Option<Instant>,
    wakeup: Option<(Instant, M::Event)>,
}

/// A routing id, as a ROUTER socket gives it.
pub type RoutingId = Vec<u8>;

/// Every session of one server.
pub struct Sessions<M: StateMachine> {
    table: HashMap<RoutingId, Entry<M>>,
    timeout: Option<Duration>,
    outgoing: Vec<(RoutingId, M::Message)>,
    animate: bool,
}

impl<M: StateMachine> fmt::Debug for Sessions<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("sessions", &self.table.len())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<M: StateMachine> Sessions<M> {
    /// An empty table; sessions expire after `timeout` without traffic
    /// (`None`: never), if the model handles `expired`.
    pub fn new(timeout: Option<Duration>) -> Self {
        Self {
            table: HashMap::new(),
            timeout,
            outgoing: Vec::new(),
            animate: false,
        }
    }

    /// Change the expiry timeout; as in zproto, it applies to sessions
    /// created from now on.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// Log every state, event and action at debug level.
    pub fn set_animate(&mut self, on: bool) {
        self.animate = on;
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether there is no session.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Routing ids of live sessions.
    pub fn routing_ids(&self) -> impl Iterator<Item = &RoutingId> {
        self.table.keys()
    }

    /// A message from `routing_id`: create its session if new, reset its
    /// expiry, and run the machine on the message's event.
    pub fn handle(
        &mut self,
        actions: &mut M::Actions,
        routing_id: &[u8],
        message: M::Message,
        now: Instant,
    ) {
        let expires_at = self.expiry(now);
        let entry = self
            .table
            .entry(routing_id.to_vec())
            .or_insert_with(|| Entry {
                state: M::State::default(),
                session: M::Session::default(),
                expires_at: None,
                wakeup: None,
            });
        // Every message, valid for the state or not, counts as traffic.
        entry.expires_at = expires_at;
        let event = M::event_for(&message);
        self.run(actions, routing_id, event, Some(message), now);
    }

    /// Run `event` on one session, if it exists (zproto's `send_event`).
    pub fn send_event(
        &mut self,
        actions: &mut M::Actions,
        routing_id: &[u8],
        event: M::Event,
        now: Instant,
    ) {
        if self.table.contains_key(routing_id) {
            self.run(actions, routing_id, event, None, now);
        }
    }

    /// Run `event` on every session (zproto's `broadcast_event`).
    pub fn broadcast(&mut self, actions: &mut M::Actions, event: M::Event, now: Instant) {
        self.broadcast_except(actions, event, None, now);
    }

    fn broadcast_except(
        &mut self,
        actions: &mut M::Actions,
        event: M::Event,
        except: Option<&[u8]>,
        now: Instant,
    ) {
        let keys: Vec<RoutingId> = self
            .table
            .keys()
            .filter(|k| Some(k.as_slice()) != except)
            .cloned()
            .collect();
        for key in keys {
            self.send_event(actions, &key, event, now);
        }
    }

    fn expiry(&self, now: Instant) -> Option<Instant> {
        match (M::EXPIRED, self.timeout) {
            (Some(_), Some(t)) if !t.is_zero() => Some(now + t),
            _ => None,
        }
    }

    fn run(
        &mut self,
        actions: &mut M::Actions,
        key: &[u8],
        event: M::Event,
        message: Option<M::Message>,
        now: Instant,
    ) {
        let Some(entry) = self.table.get_mut(key) else {
            return;
        };
        let mut io = Io::new(message).animate(self.animate);
        // Any event cancels a pending wakeup.
        entry.wakeup = None;
        let outcome = M::execute(
            actions,
            &mut entry.session,
            &mut entry.state,
            event,
            &mut io,
        );
        if let Some((delay, event)) = io.take_wakeup() {
            entry.wakeup = Some((now + delay, event));
        }
        for message in io.take_outbox() {
            self.outgoing.push((key.to_vec(), message));
        }
        match outcome {
            Outcome::Waiting => {}
            Outcome::Terminated => {
                self.table.remove(key);
            }
            Outcome::Unhandled { state, event } => {
                tracing::warn!(state, event, "unhandled event: session ended");
                self.table.remove(key);
            }
        }
        for (event, except_self) in io.take_broadcasts() {
            self.broadcast_except(actions, event, except_self.then_some(key), now);
        }
    }

    /// Fire due expiries and wakeups.
    pub fn tick(&mut self, actions: &mut M::Actions, now: Instant) {
        let mut due: Vec<(RoutingId, M::Event)> = Vec::new();
        for (key, entry) in &mut self.table {
            if let Some((at, event)) = entry.wakeup {
                if at <= now {
                    entry.wakeup = None;
                    due.push((key.clone(), event));
                }
            }
            if let (Some(at), Some(expired)) = (entry.expires_at, M::EXPIRED) {
                if at <= now {
                    // One `expired` per ticket, as in zproto.
                    entry.expires_at = None;
                    due.push((key.clone(), expired));
                }
            }
        }
        for (key, event) in due {
            self.send_event(actions, &key, event, now);
        }
    }

    /// The earliest expiry or wakeup, for the driver's poll timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.table
            .values()
            .flat_map(|e| e.expires_at.into_iter().chain(e.wakeup.map(|(at, _)| at)))
            .min()
    }

    /// Messages to send, each to a routing id, in order.
    pub fn take_outgoing(&mut self) -> Vec<(RoutingId, M::Message)> {
        std::mem::take(&mut self.outgoing)
    }
}
