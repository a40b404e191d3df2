//! The session table of a server: one generated state machine per client
//! (ROUTER routing id), with expiry, wakeups and broadcasts. Sans-IO: it
//! takes decoded messages and the current time, and leaves the messages to
//! send in a queue for whatever transport drives it.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use crate::codec::Codec;
use crate::engine::{EventArg, Io, Outcome, SessionKey};

/// What a server's actions hand their driver besides messages and events:
/// the `X` of their [`Io`]. `()` for a model without effects (the
/// default); a `Vec` of the application's effects for one built with
/// `zproto_codegen::Config::server_effects`, which actions add to with
/// [`Io::emit`] and the driver takes from [`Sessions::effects`] after each
/// call. The server host has no use for them, and drops them.
pub trait Effects: Default {
    /// Forget every effect.
    fn clear(&mut self);
}

impl Effects for () {
    fn clear(&mut self) {}
}

impl<T> Effects for Vec<T> {
    fn clear(&mut self) {
        Vec::clear(self);
    }
}

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
    /// What actions hand the driver besides messages and events.
    type Effects: Effects;
    /// The built-in `expired` event, if the model handles it.
    const EXPIRED: Option<Self::Event>;
    /// The `malformed` event, if the model has one: raised on a session
    /// whose peer sent a frame that does not decode (zproto's current
    /// template); without it such frames are logged and dropped.
    const MALFORMED: Option<Self::Event> = None;
    /// The event a received message raises.
    fn event_for(message: &Self::Message) -> Self::Event;
    /// A session ended: zproto's `client_terminate` hook.
    fn session_ended(actions: &mut Self::Actions, session: &mut Self::Session) {
        let _ = (actions, session);
    }
    /// A setting the host does not know itself (`SET`, `LOAD`): the
    /// application's, as zproto's config tree holds them.
    fn configure(actions: &mut Self::Actions, path: &str, value: &str) {
        let _ = (actions, path, value);
    }
    /// Run the machine (the generated `execute`).
    fn execute(
        actions: &mut Self::Actions,
        session: &mut Self::Session,
        state: &mut Self::State,
        event: Self::Event,
        io: &mut Io<Self::Event, Self::Message, Self::Effects>,
    ) -> Outcome;
}

/// One client session.
#[derive(Debug)]
struct Entry<M: StateMachine> {
    routing_id: RoutingId,
    /// False once the session ended (its slot waits for reuse).
    live: bool,
    /// Whether silence ends the session (`expired`). False for sessions
    /// whose transport reports when the peer goes away.
    expires: bool,
    state: M::State,
    session: M::Session,
    expires_at: Option<Instant>,
    wakeup: Option<(Instant, M::Event)>,
    generation: u32,
}

/// A routing id, as a ROUTER socket gives it.
pub type RoutingId = Vec<u8>;

/// Every session of one server.
///
/// Sessions live in a slab indexed by a small number, found by routing id
/// through a map; runs, broadcasts and outgoing messages refer to slots, so
/// the hot path allocates nothing per message for bookkeeping.
pub struct Sessions<M: StateMachine> {
    slots: Vec<Option<Entry<M>>>,
    free: Vec<usize>,
    index: HashMap<RoutingId, usize, foldhash::fast::RandomState>,
    timeout: Option<Duration>,
    /// Messages to send: (slot, message). Slots are not reused before
    /// [`Sessions::take_outgoing`], so the routing id is still there.
    outgoing: Vec<(usize, M::Message)>,
    /// Slots freed since the last `take_outgoing`.
    retired: Vec<usize>,
    /// Broadcasts raised by runs: (event, slot to leave out, its data).
    pending: Vec<(M::Event, Option<usize>, Option<EventArg>)>,
    /// Events runs sent to particular sessions, oldest first, with their
    /// data.
    targeted: std::collections::VecDeque<(SessionKey, M::Event, Option<EventArg>)>,
    /// Sessions each slot has held, for [`SessionKey`]s.
    generations: Vec<u32>,
    /// The scratchpad of every run, reused so that runs allocate nothing.
    io: Io<M::Event, M::Message, M::Effects>,
}

impl<M: StateMachine> fmt::Debug for Sessions<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("sessions", &self.index.len())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<M: StateMachine> Sessions<M> {
    /// An empty table; sessions expire after `timeout` without traffic
    /// (`None`: never), if the model handles `expired`.
    pub fn new(timeout: Option<Duration>) -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            index: HashMap::default(),
            timeout,
            outgoing: Vec::new(),
            retired: Vec::new(),
            pending: Vec::new(),
            targeted: std::collections::VecDeque::new(),
            generations: Vec::new(),
            io: Io::default(),
        }
    }

    /// Change the expiry timeout; as in zproto, it applies to sessions
    /// created from now on.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// Log every state, event and action at debug level.
    pub fn set_animate(&mut self, on: bool) {
        let io = std::mem::take(&mut self.io);
        self.io = io.animate(on);
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there is no session.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The states of live sessions (for metrics).
    pub fn states(&self) -> impl Iterator<Item = M::State> + '_ {
        self.slots
            .iter()
            .flatten()
            .filter(|e| e.live)
            .map(|e| e.state)
    }

    /// Whether `routing_id` has a live session.
    pub fn contains(&self, routing_id: &[u8]) -> bool {
        self.index
            .get(routing_id)
            .and_then(|&slot| self.slots.get(slot))
            .is_some_and(|e| e.as_ref().is_some_and(|e| e.live))
    }

    /// Live sessions: routing id and state.
    pub fn live(&self) -> impl Iterator<Item = (&RoutingId, M::State)> {
        self.slots
            .iter()
            .flatten()
            .filter(|e| e.live)
            .map(|e| (&e.routing_id, e.state))
    }

    /// Routing ids of live sessions.
    pub fn routing_ids(&self) -> impl Iterator<Item = &RoutingId> {
        self.index.keys()
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
        let slot = match self.index.get(routing_id) {
            Some(&slot) => slot,
            None => self.create(routing_id, true),
        };
        if let Some(entry) = self.slots[slot].as_mut().filter(|e| e.expires) {
            // Every message, valid for the state or not, counts as traffic.
            entry.expires_at = expires_at;
        }
        let event = M::event_for(&message);
        self.run(actions, slot, event, Some(message), None, now);
        self.settle_broadcasts(actions, now);
    }

    /// A peer connected over a transport that reports its disconnection
    /// (see [`Sessions::close`]): open its session now, in the initial
    /// state, with no expiry. Its liveness is the transport's job, so an
    /// idle but connected peer keeps its session for as long as it is
    /// connected. Does nothing if the session exists.
    pub fn open(&mut self, routing_id: &[u8]) {
        if !self.index.contains_key(routing_id) {
            self.create(routing_id, false);
        }
    }

    /// The peer's connection is gone: forget its session, without running
    /// the machine (zproto has no event for it). Returns whether there was
    /// one.
    pub fn close(&mut self, actions: &mut M::Actions, routing_id: &[u8]) -> bool {
        match self.index.get(routing_id) {
            Some(&slot) => {
                self.remove(actions, slot);
                true
            }
            None => false,
        }
    }

    fn create(&mut self, routing_id: &[u8], expires: bool) -> usize {
        let slot = self.free.pop().unwrap_or(self.slots.len());
        if slot == self.slots.len() {
            self.slots.push(None);
            self.generations.push(0);
        }
        self.generations[slot] = self.generations[slot].wrapping_add(1);
        self.slots[slot] = Some(Entry {
            routing_id: routing_id.to_vec(),
            live: true,
            expires,
            state: M::State::default(),
            session: M::Session::default(),
            expires_at: None,
            wakeup: None,
            generation: self.generations[slot],
        });
        self.index.insert(routing_id.to_vec(), slot);
        slot
    }

    /// Run `event` on one session, if it exists (zproto's `send_event`).
    pub fn send_event(
        &mut self,
        actions: &mut M::Actions,
        routing_id: &[u8],
        event: M::Event,
        now: Instant,
    ) {
        self.send_event_carrying(actions, routing_id, event, None, now);
    }

    /// [`Sessions::send_event`] with data, which the session's actions read
    /// with [`Io::arg`].
    pub fn send_event_with(
        &mut self,
        actions: &mut M::Actions,
        routing_id: &[u8],
        event: M::Event,
        arg: impl std::any::Any + Send + Sync,
        now: Instant,
    ) {
        let arg: EventArg = std::sync::Arc::new(arg);
        self.send_event_carrying(actions, routing_id, event, Some(arg), now);
    }

    fn send_event_carrying(
        &mut self,
        actions: &mut M::Actions,
        routing_id: &[u8],
        event: M::Event,
        arg: Option<EventArg>,
        now: Instant,
    ) {
        if let Some(&slot) = self.index.get(routing_id) {
            self.run(actions, slot, event, None, arg, now);
            self.settle_broadcasts(actions, now);
        }
    }

    /// Run `event` on every session (zproto's `broadcast_event`).
    pub fn broadcast(&mut self, actions: &mut M::Actions, event: M::Event, now: Instant) {
        self.pending.push((event, None, None));
        self.settle_broadcasts(actions, now);
    }

    /// Run `event` on every session but `except` (for drivers; actions use
    /// [`Io::broadcast_to_others`]).
    pub fn broadcast_except(
        &mut self,
        actions: &mut M::Actions,
        event: M::Event,
        except: Option<SessionKey>,
        now: Instant,
    ) {
        let except = except.and_then(|key| self.slot_of(key));
        self.pending.push((event, except, None));
        self.settle_broadcasts(actions, now);
    }

    /// [`Sessions::broadcast_except`] with data, which every session's
    /// actions read with [`Io::arg`] (`except: None` reaches them all).
    pub fn broadcast_with(
        &mut self,
        actions: &mut M::Actions,
        event: M::Event,
        except: Option<SessionKey>,
        arg: impl std::any::Any + Send + Sync,
        now: Instant,
    ) {
        let except = except.and_then(|key| self.slot_of(key));
        let arg: EventArg = std::sync::Arc::new(arg);
        self.pending.push((event, except, Some(arg)));
        self.settle_broadcasts(actions, now);
    }

    /// Carry out broadcasts and events sent to sessions, including those
    /// they raise.
    fn settle_broadcasts(&mut self, actions: &mut M::Actions, now: Instant) {
        loop {
            if let Some((key, event, arg)) = self.targeted.pop_front() {
                if let Some(slot) = self.slot_of(key) {
                    self.run(actions, slot, event, None, arg, now);
                }
                continue;
            }
            let Some((event, except, arg)) = self.pending.pop() else {
                break;
            };
            // Sessions created meanwhile are not part of this broadcast.
            for slot in 0..self.slots.len() {
                if Some(slot) != except && self.is_live(slot) {
                    self.run(actions, slot, event, None, arg.clone(), now);
                }
            }
        }
    }

    /// The live session `key` names, if it still exists.
    fn slot_of(&self, key: SessionKey) -> Option<usize> {
        let slot = key.slot as usize;
        self.slots
            .get(slot)
            .and_then(Option::as_ref)
            .filter(|e| e.live && e.generation == key.generation)
            .map(|_| slot)
    }

    /// Run `event` on the session `key` names, if it still exists (for
    /// drivers; actions use [`Io::send_event`]).
    pub fn send_event_to(
        &mut self,
        actions: &mut M::Actions,
        key: SessionKey,
        event: M::Event,
        now: Instant,
    ) {
        self.send_event_to_carrying(actions, key, event, None, now);
    }

    /// [`Sessions::send_event_to`] with data, which the session's actions
    /// read with [`Io::arg`].
    pub fn send_event_to_with(
        &mut self,
        actions: &mut M::Actions,
        key: SessionKey,
        event: M::Event,
        arg: impl std::any::Any + Send + Sync,
        now: Instant,
    ) {
        let arg: EventArg = std::sync::Arc::new(arg);
        self.send_event_to_carrying(actions, key, event, Some(arg), now);
    }

    fn send_event_to_carrying(
        &mut self,
        actions: &mut M::Actions,
        key: SessionKey,
        event: M::Event,
        arg: Option<EventArg>,
        now: Instant,
    ) {
        if let Some(slot) = self.slot_of(key) {
            self.run(actions, slot, event, None, arg, now);
            self.settle_broadcasts(actions, now);
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
        slot: usize,
        event: M::Event,
        message: Option<M::Message>,
        arg: Option<EventArg>,
        now: Instant,
    ) {
        let Some(entry) = self
            .slots
            .get_mut(slot)
            .and_then(Option::as_mut)
            .filter(|e| e.live)
        else {
            return;
        };
        let io = &mut self.io;
        io.reset(message);
        io.set_arg(arg);
        io.set_now(now);
        io.set_session(Some(SessionKey {
            slot: slot as u32,
            generation: entry.generation,
        }));
        // Any event cancels a pending wakeup.
        entry.wakeup = None;
        let outcome = M::execute(actions, &mut entry.session, &mut entry.state, event, io);
        if let Some((delay, event)) = io.take_wakeup() {
            entry.wakeup = Some((now + delay, event));
        }
        self.outgoing
            .extend(io.drain_outbox().map(|message| (slot, message)));
        // `pending` is taken from its end: pushed in reverse, the run's
        // broadcasts go in the order it raised them (a run that forwards
        // several tuples forwards them in order), before older ones.
        let first = self.pending.len();
        for (event, except_self, arg) in io.drain_broadcasts() {
            self.pending.push((event, except_self.then_some(slot), arg));
        }
        self.pending[first..].reverse();
        self.targeted.extend(io.drain_targeted());
        // The received message is not kept between runs.
        io.reset(None);
        match outcome {
            Outcome::Waiting => {}
            Outcome::Terminated => self.remove(actions, slot),
            Outcome::Unhandled { state, event } => {
                tracing::warn!(state, event, "unhandled event: session ended");
                self.remove(actions, slot);
            }
        }
    }

    fn remove(&mut self, actions: &mut M::Actions, slot: usize) {
        if let Some(entry) = self
            .slots
            .get_mut(slot)
            .and_then(Option::as_mut)
            .filter(|e| e.live)
        {
            M::session_ended(actions, &mut entry.session);
            self.index.remove(&entry.routing_id);
            entry.live = false;
            // The slot keeps its routing id for messages still to be sent,
            // and is reused only after they are taken.
            entry.expires_at = None;
            entry.wakeup = None;
            self.retired.push(slot);
        }
    }

    fn is_live(&self, slot: usize) -> bool {
        self.slots
            .get(slot)
            .and_then(Option::as_ref)
            .is_some_and(|e| e.live)
    }

    /// Fire due expiries and wakeups.
    pub fn tick(&mut self, actions: &mut M::Actions, now: Instant) {
        for slot in 0..self.slots.len() {
            if !self.is_live(slot) {
                continue;
            }
            let Some(entry) = self.slots[slot].as_mut() else {
                continue;
            };
            let mut due = None;
            if let Some((at, event)) = entry.wakeup {
                if at <= now {
                    entry.wakeup = None;
                    due = Some(event);
                }
            }
            if let (Some(at), Some(expired), None) = (entry.expires_at, M::EXPIRED, due) {
                if at <= now {
                    // One `expired` per ticket, as in zproto.
                    entry.expires_at = None;
                    due = Some(expired);
                }
            }
            if let Some(event) = due {
                self.run(actions, slot, event, None, None, now);
                self.settle_broadcasts(actions, now);
            }
        }
    }

    /// The earliest expiry or wakeup, for the driver's poll timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flatten()
            .flat_map(|e| e.expires_at.into_iter().chain(e.wakeup.map(|(at, _)| at)))
            .min()
    }

    /// What the actions of every run since the last call handed the
    /// driver ([`Io::emit`]), oldest first, to take (`drain(..)`) or
    /// [`Effects::clear`].
    pub fn effects(&mut self) -> &mut M::Effects {
        self.io.ext_mut()
    }

    /// Messages to send, each with its routing id, in order; `send` is
    /// called for each.
    pub fn drain_outgoing(&mut self, mut send: impl FnMut(&[u8], M::Message)) {
        // Drained in place: the queue keeps its buffer for the next message.
        for (slot, message) in self.outgoing.drain(..) {
            if let Some(entry) = self.slots[slot].as_ref() {
                send(&entry.routing_id, message);
            }
        }
        crate::buffer::trim(&mut self.outgoing);
        for slot in std::mem::take(&mut self.retired) {
            if !self.is_live(slot) {
                self.slots[slot] = None;
                self.free.push(slot);
            }
        }
    }

    /// Messages to send, each to a routing id, in order.
    pub fn take_outgoing(&mut self) -> Vec<(RoutingId, M::Message)> {
        let mut out = Vec::new();
        self.drain_outgoing(|id, m| out.push((id.to_vec(), m)));
        out
    }
}
