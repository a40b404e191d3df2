//! What generated state machines (zproto server models) run against.
//!
//! A generated `execute` function follows zproto's execution rules: it takes
//! one event, runs the matching handler's actions in the session's current
//! state, follows `next`, internal next-events and exceptions, and stops when
//! it needs outside input. Everything it wants done outside (messages to
//! send, a wakeup timer, a broadcast to other sessions) is recorded in an
//! [`Io`] and carried out by the driver afterwards: the engine itself does no
//! I/O, so the same machine runs over ZeroMQ sockets or in memory.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One line of the execution trace ("animate" in zproto).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trace {
    /// An event is handled in a state.
    Event {
        /// State name, as in the model.
        state: &'static str,
        /// Event name: upper case for protocol messages, lower for internal.
        event: &'static str,
    },
    /// An action runs (`send NAME` for a send).
    Action(String),
    /// An action raised an exception event.
    Exception(&'static str),
    /// The state after the event.
    Next(&'static str),
    /// An action that takes its message typed did not run: the scratchpad
    /// held another message, or none.
    Skipped(&'static str),
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trace::Event { state, event } => write!(f, "{state}: {event}"),
            Trace::Action(a) => write!(f, "    $ {a}"),
            Trace::Exception(e) => write!(f, "    ! {e}"),
            Trace::Next(s) => write!(f, "    > {s}"),
            Trace::Skipped(a) => write!(f, "    - {a} (not its message)"),
        }
    }
}

/// How a run of `execute` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The machine waits for the next outside event.
    Waiting,
    /// The session ended (`terminate`): the driver must forget it.
    Terminated,
    /// The state has no handler for the event and no `*`. zproto aborts the
    /// process here; drivers log it and end the session instead.
    Unhandled {
        /// State name.
        state: &'static str,
        /// Event name.
        event: &'static str,
    },
}

/// One session of a server, as actions name it to send it an event
/// ([`Io::send_event`]): stable for the session's life, never reused for
/// another session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    /// The session table's slot.
    pub slot: u32,
    /// How many sessions the slot held before, this one included.
    pub generation: u32,
}

/// What an event carries besides its name ([`Io::arg`]): any value, shared
/// by every session a broadcast reaches.
pub type EventArg = Arc<dyn Any + Send + Sync>;

/// The per-run scratchpad of a state machine, and the action API of
/// zproto's engine (`set_next_event`, `set_exception`, `set_wakeup_event`,
/// `broadcast_event`, and the shared message).
///
/// `X` is what a kind of machine adds: for servers, nothing or the effects
/// their actions hand the driver ([`Io::emit`]); for clients, the
/// [`crate::client::Context`] (arguments, replies, timers).
#[derive(Debug)]
pub struct Io<E, M, X = ()> {
    message: Option<M>,
    arg: Option<EventArg>,
    next_event: Option<E>,
    exception: Option<E>,
    outbox: Vec<M>,
    wakeup: Option<(Duration, E)>,
    broadcasts: Vec<(E, bool, Option<EventArg>)>,
    targeted: Vec<(SessionKey, E, Option<EventArg>)>,
    session: Option<SessionKey>,
    trace: Option<Vec<Trace>>,
    animate: bool,
    now: Option<Instant>,
    ext: X,
}

impl<E, M, X: Default> Default for Io<E, M, X> {
    fn default() -> Self {
        Self {
            message: None,
            arg: None,
            next_event: None,
            exception: None,
            outbox: Vec::new(),
            wakeup: None,
            broadcasts: Vec::new(),
            targeted: Vec::new(),
            session: None,
            trace: None,
            animate: false,
            now: None,
            ext: X::default(),
        }
    }
}

impl<E: Copy + PartialEq + fmt::Debug, M, X: Default> Io<E, M, X> {
    /// A scratchpad; `message` is the message being handled, if any.
    pub fn new(message: Option<M>) -> Self {
        Self {
            message,
            ..Self::default()
        }
    }
}

impl<E, M, T> Io<E, M, Vec<T>> {
    /// Hand `effect` to the driver, after the messages and events of this
    /// run: what a server's actions tell the application besides the
    /// protocol (a tuple accepted, a refusal to count). The driver takes it
    /// from `Sessions::effects` once the call that ran this action returns.
    pub fn emit(&mut self, effect: T) {
        self.ext.push(effect);
    }
}

impl<E: Copy + PartialEq + fmt::Debug, M, X> Io<E, M, X> {
    /// What this kind of machine adds to the scratchpad.
    pub fn ext(&self) -> &X {
        &self.ext
    }

    /// What this kind of machine adds to the scratchpad, to change.
    pub fn ext_mut(&mut self) -> &mut X {
        &mut self.ext
    }

    /// Make a used scratchpad ready for another run with `message`, keeping
    /// its buffers (and the trace and animate settings).
    pub fn reset(&mut self, message: Option<M>) {
        self.message = message;
        self.arg = None;
        self.next_event = None;
        self.exception = None;
        self.outbox.clear();
        self.wakeup = None;
        self.broadcasts.clear();
        self.targeted.clear();
    }

    /// Record every state, event and action in [`Io::trace`].
    pub fn record_trace(mut self) -> Self {
        self.trace = Some(Vec::new());
        self
    }

    /// Log every state, event and action at debug level (zproto's animate).
    pub fn animate(mut self, on: bool) -> Self {
        self.animate = on;
        self
    }

    /// Set the time of the run, which actions read with [`Io::now`]
    /// (drivers call this; the session table does).
    pub fn set_now(&mut self, now: Instant) {
        self.now = Some(now);
    }

    // ---- the action API ----

    /// The time of the run, as the driver gave it (sans-IO: actions never
    /// read the clock themselves). `None` if the driver gave none.
    pub fn now(&self) -> Option<Instant> {
        self.now
    }

    /// What the event being handled carries, if it carries a `T` (an event
    /// sent with [`Io::broadcast_with`], [`Io::send_event_with`] or a
    /// session table's `*_with` calls): the event's data travels with it,
    /// not in a field of the actions set before and cleared after.
    pub fn arg<T: Any>(&self) -> Option<&T> {
        self.arg.as_deref().and_then(|arg| arg.downcast_ref::<T>())
    }

    /// Take what the event being handled carries, if it is a `T`: moved
    /// out when this session is its only holder (an event sent to it
    /// alone), cloned when a broadcast shares it.
    pub fn take_arg<T: Any + Send + Sync + Clone>(&mut self) -> Option<T> {
        let arg = self.arg.take()?;
        match arg.downcast::<T>() {
            Ok(value) => Some(Arc::try_unwrap(value).unwrap_or_else(|shared| (*shared).clone())),
            Err(other) => {
                self.arg = Some(other);
                None
            }
        }
    }

    /// Set what the coming run's event carries (drivers do).
    pub fn set_arg(&mut self, arg: Option<EventArg>) {
        self.arg = arg;
    }

    /// The shared message: the one received, or the one actions prepared.
    pub fn message(&self) -> Option<&M> {
        self.message.as_ref()
    }

    /// Take the shared message, to keep its fields without copying them.
    pub fn take_message(&mut self) -> Option<M> {
        self.message.take()
    }

    /// Give back the message lent to an action that takes it typed (for
    /// generated code): it stays the shared message, unless the action
    /// prepared another.
    pub fn restore_message(&mut self, message: M) {
        if self.message.is_none() {
            self.message = Some(message);
        }
    }

    /// An action that takes its message typed found another in the
    /// scratchpad, or none (for generated code): it does not run, and
    /// `message` stays the shared message.
    pub fn skip_action(&mut self, message: Option<M>, action: &'static str) {
        self.message = message;
        self.record(|| Trace::Skipped(action));
        tracing::debug!(action, "action not run: the message it takes is not there");
    }

    /// Replace the shared message, e.g. with fields for a following `send`.
    pub fn set_message(&mut self, message: M) {
        self.message = Some(message);
    }

    /// Queue an internal event, handled in this run after the state change.
    pub fn set_next_event(&mut self, event: E) {
        self.next_event = Some(event);
    }

    /// Skip the remaining actions and the state change, then handle `event`
    /// in the current state.
    pub fn set_exception(&mut self, event: E) {
        self.exception = Some(event);
    }

    /// Run `event` on this session after `delay`, unless another event comes
    /// first (any event cancels a pending wakeup).
    pub fn set_wakeup(&mut self, delay: Duration, event: E) {
        self.wakeup = Some((delay, event));
    }

    /// Run `event` on every session of the server once this run is over
    /// (zproto's `broadcast_event` with no exception).
    pub fn broadcast(&mut self, event: E) {
        self.broadcasts.push((event, false, None));
    }

    /// Run `event` on every other session once this run is over.
    pub fn broadcast_to_others(&mut self, event: E) {
        self.broadcasts.push((event, true, None));
    }

    /// [`Io::broadcast`] with data, which each session's actions read with
    /// [`Io::arg`].
    pub fn broadcast_with(&mut self, event: E, arg: impl Any + Send + Sync) {
        self.broadcasts.push((event, false, Some(Arc::new(arg))));
    }

    /// [`Io::broadcast_to_others`] with data, which each session's actions
    /// read with [`Io::arg`].
    pub fn broadcast_to_others_with(&mut self, event: E, arg: impl Any + Send + Sync) {
        self.broadcasts.push((event, true, Some(Arc::new(arg))));
    }

    /// The session this run is for (servers; `None` for clients), to
    /// remember and later send it events.
    pub fn session(&self) -> Option<SessionKey> {
        self.session
    }

    /// Run `event` on session `to` once this run is over (zproto's
    /// `engine_send_event`); nothing if that session has ended. Events to
    /// one session run in the order they were sent.
    pub fn send_event(&mut self, to: SessionKey, event: E) {
        self.targeted.push((to, event, None));
    }

    /// [`Io::send_event`] with data, which the session's actions read with
    /// [`Io::arg`].
    pub fn send_event_with(&mut self, to: SessionKey, event: E, arg: impl Any + Send + Sync) {
        self.targeted.push((to, event, Some(Arc::new(arg))));
    }

    /// Set the session of the coming run (drivers do).
    pub fn set_session(&mut self, session: Option<SessionKey>) {
        self.session = session;
    }

    // ---- used by generated code ----

    /// Start a run with `event`.
    #[doc(hidden)]
    pub fn begin(&mut self, event: E) {
        self.next_event = Some(event);
        self.wakeup = None;
    }

    /// The next event to handle, clearing any exception.
    #[doc(hidden)]
    pub fn take_next_event(&mut self) -> Option<E> {
        self.exception = None;
        self.next_event.take()
    }

    /// Whether no exception was raised (so actions may still run).
    #[doc(hidden)]
    pub fn proceed(&self) -> bool {
        self.exception.is_none()
    }

    /// The built-in `terminate` action.
    #[doc(hidden)]
    pub fn terminate(&mut self, terminate_event: E) {
        self.next_event = Some(terminate_event);
    }

    /// The built-in `send` action: queue `message` for this session.
    #[doc(hidden)]
    pub fn send(&mut self, message: M) {
        self.outbox.push(message);
    }

    /// End of one event: an exception becomes the next event (overriding
    /// `terminate`). Returns false when the session is to terminate.
    #[doc(hidden)]
    pub fn settle(&mut self, terminate_event: E, event_name: impl Fn(E) -> &'static str) -> bool {
        self.settle_exception(event_name);
        self.next_event != Some(terminate_event)
    }

    /// End of one event: an exception becomes the next event.
    #[doc(hidden)]
    pub fn settle_exception(&mut self, event_name: impl Fn(E) -> &'static str) {
        if let Some(exception) = self.exception.take() {
            self.record(|| Trace::Exception(event_name(exception)));
            self.next_event = Some(exception);
        }
    }

    /// Add a trace line (and log it when animating).
    #[doc(hidden)]
    pub fn record(&mut self, line: impl FnOnce() -> Trace) {
        if self.trace.is_none() && !self.animate {
            return;
        }
        let line = line();
        if self.animate {
            tracing::debug!("{line}");
        }
        if let Some(trace) = &mut self.trace {
            trace.push(line);
        }
    }

    // ---- read by drivers after a run ----

    /// Messages the run sent to this session, in order.
    pub fn take_outbox(&mut self) -> Vec<M> {
        std::mem::take(&mut self.outbox)
    }

    /// Messages the run sent to this session, in order, keeping the buffer.
    pub fn drain_outbox(&mut self) -> std::vec::Drain<'_, M> {
        self.outbox.drain(..)
    }

    /// Events sent to particular sessions, in order.
    pub fn drain_targeted(&mut self) -> std::vec::Drain<'_, (SessionKey, E, Option<EventArg>)> {
        self.targeted.drain(..)
    }

    /// Events to broadcast, each with whether this session is left out, and
    /// its data.
    pub fn drain_broadcasts(&mut self) -> std::vec::Drain<'_, (E, bool, Option<EventArg>)> {
        self.broadcasts.drain(..)
    }

    /// The wakeup the run asked for, if any.
    pub fn take_wakeup(&mut self) -> Option<(Duration, E)> {
        self.wakeup.take()
    }

    /// The recorded trace (empty unless [`Io::record_trace`]).
    pub fn trace(&self) -> &[Trace] {
        self.trace.as_deref().unwrap_or(&[])
    }

    /// Take the shared message back.
    pub fn into_message(self) -> Option<M> {
        self.message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Ev {
        Go,
    }

    #[test]
    fn event_data_is_read_taken_once_and_left_alone_under_another_type() {
        let mut io: Io<Ev, ()> = Io::new(None);
        io.set_arg(Some(Arc::new(String::from("payload"))));
        assert_eq!(io.arg::<u32>(), None);
        // Asking for another type leaves it.
        assert_eq!(io.take_arg::<u32>(), None);
        assert_eq!(io.arg::<String>().map(String::as_str), Some("payload"));
        // Held by this run alone: moved out, and gone.
        assert_eq!(io.take_arg::<String>().as_deref(), Some("payload"));
        assert_eq!(io.take_arg::<String>(), None);
        // Shared, as by a broadcast: cloned; the other holder keeps it.
        let shared: EventArg = Arc::new(String::from("shared"));
        io.set_arg(Some(shared.clone()));
        assert_eq!(io.take_arg::<String>().as_deref(), Some("shared"));
        assert_eq!(
            shared.downcast_ref::<String>().map(String::as_str),
            Some("shared")
        );
        // A run's data is gone at the next reset.
        io.set_arg(Some(Arc::new(7_u32)));
        io.reset(None);
        assert_eq!(io.arg::<u32>(), None);
        io.broadcast_with(Ev::Go, 1_u8);
        assert_eq!(io.drain_broadcasts().count(), 1);
    }
}
