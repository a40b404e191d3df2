//! The client side of a zproto protocol, sans I/O: one generated client
//! state machine (zproto_client_c) with its timers, the arguments of the
//! API methods, and the replies and messages it passes to the API.
//!
//! [`ClientCore`] takes method calls, decoded messages and the time, and
//! leaves messages for the server, replies and deliveries in queues;
//! `client_host` (feature `reactor`) runs it over a DEALER on the reactor,
//! and tests drive it directly.
//!
//! zproto's semantics, with two deliberate differences:
//! * a message that no state names, or a frame that does not decode, is
//!   logged and dropped (or raises the model's `malformed` event), where
//!   zproto's client halts: one bad frame from a server must not kill the
//!   client;
//! * a method event that the current state does not handle (and no `*`)
//!   is answered with an error to the caller, where zproto aborts.

use std::fmt;
use std::time::{Duration, Instant};

use crate::codec::Codec;
pub use crate::credentials::{CurveClient, PlainCredentials};
use crate::engine::{Io, Outcome};

/// What the client machinery needs from a generated client machine.
/// Generated engines implement it for `Machine<A>`, with `A` the
/// application's actions.
pub trait ClientMachine: 'static {
    /// The application's state of one client: implements the actions.
    type Actions;
    /// The machine's states; `Default` is the initial state.
    type State: Copy + Default + fmt::Debug;
    /// The machine's events.
    type Event: Copy + PartialEq + fmt::Debug;
    /// The protocol's messages.
    type Message: Codec + Clone + fmt::Debug;
    /// The arguments of the API methods, one slot per name (zproto's `args`).
    type Args: Default;
    /// Replies from the machine to the API.
    type Reply: Clone + fmt::Debug;
    /// The `expired` event, if the model handles it.
    const EXPIRED: Option<Self::Event>;
    /// The `heartbeat` event, if the model handles it.
    const HEARTBEAT: Option<Self::Event>;
    /// The `malformed` event, if the model has one.
    const MALFORMED: Option<Self::Event>;
    /// The event a received message raises; `None` if no state names it.
    fn event_for(message: &Self::Message) -> Option<Self::Event>;
    /// The event's name, for logs.
    fn event_name(event: Self::Event) -> &'static str;
    /// Run the machine (the generated `execute`).
    fn execute(
        actions: &mut Self::Actions,
        state: &mut Self::State,
        event: Self::Event,
        io: &mut ClientIo<Self>,
    ) -> Outcome;
}

/// The scratchpad a client machine's actions get.
pub type ClientIo<C> = Io<
    <C as ClientMachine>::Event,
    <C as ClientMachine>::Message,
    Context<<C as ClientMachine>::Args, <C as ClientMachine>::Reply, <C as ClientMachine>::Message>,
>;

/// What the machine tells the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<R> {
    /// A `<reply>`.
    Reply(R),
    /// A method's event is not handled in the current state.
    Unhandled {
        /// State name.
        state: &'static str,
        /// Event name.
        event: &'static str,
    },
    /// The machine stopped (`terminate`): it takes no more calls.
    Stopped,
}

/// How a client's next connection authenticates to its server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ClientSecurity {
    /// No security (ZeroMQ's NULL mechanism).
    #[default]
    Null,
    /// PLAIN: a username and password, in clear text.
    Plain(PlainCredentials),
    /// CURVE: encrypted, the server authenticated by its key.
    Curve(CurveClient),
}

/// Why a client could not connect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// libzmq refused the endpoint.
    #[error("cannot connect to '{endpoint}': {reason}")]
    Endpoint {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// A client has one connection (one DEALER).
    #[error("this client is connected already")]
    Already,
}

/// What a client machine adds to the engine's scratchpad: the method
/// arguments, replies and deliveries for the API, timers, the connected
/// flag and the connection. Actions use it through [`Io`]'s client methods
/// (`io.args()`, `io.reply(..)`, `io.connect(..)`, ...).
#[derive(Debug)]
pub struct Context<A, R, M> {
    args: A,
    answers: Vec<Answer<R>>,
    deliveries: Vec<M>,
    heartbeat: Option<Duration>,
    expiry: Option<Duration>,
    timers_changed: bool,
    connected: bool,
    stopped: bool,
    security: ClientSecurity,
    /// Endpoints connected to (one at most).
    endpoints: Vec<String>,
    /// The driver's way to connect, if it has one (sans I/O: none, and a
    /// connect only records the endpoint).
    transport: Option<Box<dyn Transport>>,
}

impl<A: Default, R, M> Default for Context<A, R, M> {
    fn default() -> Self {
        Self {
            args: A::default(),
            answers: Vec::new(),
            deliveries: Vec::new(),
            heartbeat: None,
            expiry: None,
            timers_changed: false,
            connected: false,
            stopped: false,
            security: ClientSecurity::Null,
            endpoints: Vec::new(),
            transport: None,
        }
    }
}

impl fmt::Debug for dyn Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Transport")
    }
}

/// How a driver connects a client: the reactor host opens a DEALER.
pub trait Transport: Send {
    /// Connect to `endpoint` with `security`.
    fn connect(&mut self, endpoint: &str, security: &ClientSecurity) -> Result<(), String>;
    /// The driver takes its transport back as what it is.
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any>;
}

/// The client action API (zproto's `engine_*` calls and `self->args`).
impl<E: Copy + PartialEq + fmt::Debug, M, A, R> Io<E, M, Context<A, R, M>> {
    /// The arguments of the API methods called so far (each method stores
    /// its arguments by name before its event runs).
    pub fn args(&self) -> &A {
        &self.ext().args
    }

    /// Send `reply` to the API (zproto's `zsock_send (cmdpipe, ...)`): a
    /// method waiting for it returns.
    pub fn reply(&mut self, reply: R) {
        self.ext_mut().answers.push(Answer::Reply(reply));
    }

    /// Pass a protocol message to the application (`<recv>`).
    pub fn deliver(&mut self, message: M) {
        self.ext_mut().deliveries.push(message);
    }

    /// Connect the client to `endpoint` (zproto's `zsock_connect` on the
    /// client's DEALER). A client has one connection.
    pub fn connect(&mut self, endpoint: &str) -> Result<(), ConnectError> {
        let ext = self.ext_mut();
        if !ext.endpoints.is_empty() {
            return Err(ConnectError::Already);
        }
        if let Some(transport) = &mut ext.transport {
            transport
                .connect(endpoint, &ext.security)
                .map_err(|reason| ConnectError::Endpoint {
                    endpoint: endpoint.to_owned(),
                    reason,
                })?;
        }
        ext.endpoints.push(endpoint.to_owned());
        Ok(())
    }

    /// Use PLAIN security with these credentials for the connection made
    /// next (zproto's `zsock_set_plain_username/password`).
    pub fn use_plain(&mut self, username: &str, password: &str) {
        self.ext_mut().security = ClientSecurity::Plain(PlainCredentials {
            username: username.to_owned(),
            password: password.to_owned(),
        });
    }

    /// Use CURVE with these keys for the connection made next (zproto's
    /// `zsock_set_curve_serverkey` and `zcert_apply`): the server must have
    /// the secret key that goes with `keys.server_key`.
    pub fn use_curve(&mut self, keys: CurveClient) {
        self.ext_mut().security = ClientSecurity::Curve(keys);
    }

    /// Fire `heartbeat` every `interval`, whatever the traffic
    /// (`engine_set_heartbeat`); zero stops it.
    pub fn set_heartbeat(&mut self, interval: Duration) {
        let ext = self.ext_mut();
        ext.heartbeat = (!interval.is_zero()).then_some(interval);
        ext.timers_changed = true;
    }

    /// Fire `expired` after `timeout` without a message from the server,
    /// and again every `timeout` while the silence lasts
    /// (`engine_set_expiry`); zero stops it.
    pub fn set_expiry(&mut self, timeout: Duration) {
        let ext = self.ext_mut();
        ext.expiry = (!timeout.is_zero()).then_some(timeout);
        ext.timers_changed = true;
    }

    /// Set the flag the API reads with `connected()` (`engine_set_connected`).
    pub fn set_connected(&mut self, connected: bool) {
        self.ext_mut().connected = connected;
    }

    /// The connected flag.
    pub fn is_connected(&self) -> bool {
        self.ext().connected
    }

    /// The built-in `terminate` action of a client: the machine stops and
    /// ignores every event from now on.
    #[doc(hidden)]
    pub fn stop(&mut self) {
        self.ext_mut().stopped = true;
    }

    /// Whether `terminate` ran.
    pub fn is_stopped(&self) -> bool {
        self.ext().stopped
    }
}

/// Counters of one client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Messages received and decoded.
    pub received: u64,
    /// Messages the machine sent (queued for the socket).
    pub sent: u64,
    /// Frames that did not decode.
    pub malformed: u64,
    /// Messages no state names, dropped.
    pub unknown: u64,
    /// Replies or deliveries the application did not take in time, dropped.
    pub dropped: u64,
    /// Messages the socket refused (queue full), dropped.
    pub refused: u64,
}

/// One client state machine with its timers, sans I/O.
pub struct ClientCore<C: ClientMachine> {
    actions: C::Actions,
    state: C::State,
    io: ClientIo<C>,
    /// Next heartbeat, and its interval.
    heartbeat: Option<(Instant, Duration)>,
    /// When `expired` fires, and the timeout.
    expiry: Option<(Instant, Duration)>,
    wakeup: Option<(Instant, C::Event)>,
    outbox: Vec<C::Message>,
    stats: ClientStats,
    warn: crate::throttle::Throttle,
}

impl<C: ClientMachine> fmt::Debug for ClientCore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCore")
            .field("state", &self.state)
            .field("stopped", &self.is_stopped())
            .finish_non_exhaustive()
    }
}

impl<C: ClientMachine> ClientCore<C> {
    /// A client in its initial state, not connected, with no timers.
    pub fn new(actions: C::Actions) -> Self {
        Self {
            actions,
            state: C::State::default(),
            io: Io::default(),
            heartbeat: None,
            expiry: None,
            wakeup: None,
            outbox: Vec::new(),
            stats: ClientStats::default(),
            warn: crate::throttle::Throttle::default(),
        }
    }

    /// Give the machine a way to connect (the reactor host does).
    pub fn set_transport(&mut self, transport: Box<dyn Transport>) {
        self.io.ext_mut().transport = Some(transport);
    }

    /// Take the transport back.
    pub fn take_transport(&mut self) -> Option<Box<dyn Transport>> {
        self.io.ext_mut().transport.take()
    }

    /// Log every state, event and action at debug level (zproto's verbose).
    pub fn set_animate(&mut self, on: bool) {
        let io = std::mem::take(&mut self.io);
        self.io = io.animate(on);
    }

    /// Record the trace of every run (for tests).
    pub fn record_trace(&mut self) {
        let io = std::mem::take(&mut self.io);
        self.io = io.record_trace();
    }

    /// The trace recorded so far ([`ClientCore::record_trace`]).
    pub fn trace(&self) -> &[crate::engine::Trace] {
        self.io.trace()
    }

    /// The current state.
    pub fn state(&self) -> C::State {
        self.state
    }

    /// Whether `terminate` stopped the machine.
    pub fn is_stopped(&self) -> bool {
        self.io.ext().stopped
    }

    /// The connected flag the actions set.
    pub fn is_connected(&self) -> bool {
        self.io.ext().connected
    }

    /// Where the actions connected the client (one endpoint at most).
    pub fn endpoints(&self) -> &[String] {
        &self.io.ext().endpoints
    }

    /// The application's actions.
    pub fn actions(&self) -> &C::Actions {
        &self.actions
    }

    /// The application's actions, to change.
    pub fn actions_mut(&mut self) -> &mut C::Actions {
        &mut self.actions
    }

    /// Counters.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// Counters, to add the driver's to.
    pub fn stats_mut(&mut self) -> &mut ClientStats {
        &mut self.stats
    }

    /// An API method: store its arguments, then run its event (unless the
    /// machine stopped: the API hears so).
    pub fn call(&mut self, event: C::Event, store: impl FnOnce(&mut C::Args), now: Instant) {
        if self.is_stopped() {
            self.io.ext_mut().answers.push(Answer::Stopped);
            return;
        }
        store(&mut self.io.ext_mut().args);
        self.run(event, None, true, now);
    }

    /// A message from the server: restarts the expiry, then raises the
    /// event of its name.
    pub fn receive(&mut self, message: C::Message, now: Instant) {
        self.stats.received += 1;
        if let Some((at, timeout)) = &mut self.expiry {
            *at = now + *timeout;
        }
        match C::event_for(&message) {
            Some(event) => self.run(event, Some(message), false, now),
            None => {
                self.stats.unknown += 1;
                if let Some(suppressed) = self.warn.allow(now) {
                    tracing::warn!(
                        suppressed,
                        "no state handles {}: dropped",
                        message.command()
                    );
                }
            }
        }
    }

    /// A frame from the server that did not decode.
    pub fn malformed(&mut self, error: &dyn fmt::Display, now: Instant) {
        self.stats.malformed += 1;
        match C::MALFORMED {
            Some(event) => self.run(event, None, false, now),
            None => {
                if let Some(suppressed) = self.warn.allow(now) {
                    tracing::warn!(suppressed, "malformed message dropped: {error}");
                }
            }
        }
    }

    /// Run the timers that are due: wakeup, heartbeat, expiry.
    pub fn tick(&mut self, now: Instant) {
        if let Some((at, event)) = self.wakeup {
            if at <= now {
                self.wakeup = None;
                self.run(event, None, false, now);
            }
        }
        if let (Some((at, interval)), Some(event)) = (self.heartbeat, C::HEARTBEAT) {
            if at <= now {
                // Repeats whatever the traffic.
                self.heartbeat = Some((now + interval, interval));
                self.run(event, None, false, now);
            }
        }
        if let (Some((at, timeout)), Some(event)) = (self.expiry, C::EXPIRED) {
            if at <= now {
                // Repeats until a message comes or the expiry is set to 0.
                self.expiry = Some((now + timeout, timeout));
                self.run(event, None, false, now);
            }
        }
    }

    /// When [`ClientCore::tick`] next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.is_stopped() {
            return None;
        }
        let heartbeat = self.heartbeat.filter(|_| C::HEARTBEAT.is_some());
        let expiry = self.expiry.filter(|_| C::EXPIRED.is_some());
        [
            self.wakeup.map(|(at, _)| at),
            heartbeat.map(|(at, _)| at),
            expiry.map(|(at, _)| at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Messages for the server, in order.
    pub fn drain_outbox(&mut self) -> std::vec::Drain<'_, C::Message> {
        self.outbox.drain(..)
    }

    /// Replies and other answers for the API, in order.
    pub fn drain_answers(&mut self) -> std::vec::Drain<'_, Answer<C::Reply>> {
        self.io.ext_mut().answers.drain(..)
    }

    /// Messages the actions passed to the application, in order.
    pub fn drain_deliveries(&mut self) -> std::vec::Drain<'_, C::Message> {
        self.io.ext_mut().deliveries.drain(..)
    }

    /// Queue `message` for the server as it is (`<send>`: the API's own
    /// messages do not run the machine).
    pub fn send(&mut self, message: C::Message) {
        self.outbox.push(message);
    }

    fn run(&mut self, event: C::Event, message: Option<C::Message>, from_api: bool, now: Instant) {
        if self.is_stopped() {
            return;
        }
        // The shared message: the one received, else what actions left.
        let kept = self.io.take_message();
        self.io.reset(message.or(kept));
        self.io.set_now(now);
        let outcome = C::execute(&mut self.actions, &mut self.state, event, &mut self.io);
        self.outbox.extend(self.io.drain_outbox());
        // Any event cancels a pending wakeup; a run may ask for another.
        self.wakeup = self
            .io
            .take_wakeup()
            .map(|(delay, event)| (now + delay, event));
        let ext = self.io.ext_mut();
        if std::mem::take(&mut ext.timers_changed) {
            self.heartbeat = ext.heartbeat.map(|i| (now + i, i));
            self.expiry = ext.expiry.map(|t| (now + t, t));
        }
        if let Outcome::Unhandled { state, event } = outcome {
            tracing::warn!("client: event {event} is not handled in state {state}");
            if from_api {
                self.io
                    .ext_mut()
                    .answers
                    .push(Answer::Unhandled { state, event });
            }
        }
    }
}
