//! Generated clients on the reactor: one [`ClientCore`] and one DEALER per
//! client, many clients on one reactor thread (never a thread per client),
//! and a blocking API handle for the application ([`ClientHandle`]), which
//! generated `Client` types wrap with typed methods.
//!
//! Memory per client is bounded: at most [`ANSWER_QUEUE`] replies and
//! [`DELIVERY_QUEUE`] delivered messages wait for the application (more are
//! dropped and counted), at most [`SEND_QUEUE`] sent messages wait for the
//! server (then `send` waits: a slow server slows its writers down rather
//! than losing their messages) with at most 1000 of the machine's own, and
//! the DEALER queues at most its high-water mark (1000 messages) each way.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::client::{Answer, ClientCore, ClientMachine, ClientSecurity, ClientStats, Transport};
use crate::codec::Codec;
use crate::reactor::{self, Outgoing, Reactor, Refused, RefusedReason, Service, Sockets};
use crate::throttle::Throttle;

/// Replies waiting for the application, per client.
pub const ANSWER_QUEUE: usize = 1024;
/// Delivered messages waiting for the application, per client.
pub const DELIVERY_QUEUE: usize = 10_000;
/// `<send>` messages on their way to the server, per client, before
/// [`ClientHandle::send`] waits.
pub const SEND_QUEUE: usize = 10_000;
/// How long [`ClientHandle::send`] waits for room.
pub const SEND_WAIT: Duration = Duration::from_secs(10);
/// Messages of the machine's own (not `<send>`) that wait for a full
/// socket at most, beyond the API's.
const MACHINE_QUEUE: usize = 1000;
/// How soon a client tries its socket again after it refused.
const RETRY: Duration = Duration::from_millis(1);

/// Why a client call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// No accepted reply came in time.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The current state does not handle the method's event.
    #[error("the client cannot do that now: event {event} is not handled in state {state}")]
    Unhandled {
        /// State name.
        state: &'static str,
        /// Event name.
        event: &'static str,
    },
    /// The method's failure reply came (a reply named FAILURE or ERROR in
    /// the model): what the machine said, with the reply's `status` and
    /// `reason` fields when it has them.
    #[error("{reply}{}", failure_detail(*.status, .reason.as_deref()))]
    Failed {
        /// The reply's name, as the model writes it.
        reply: &'static str,
        /// Its `status` field, if it has a numeric one.
        status: Option<i64>,
        /// Its `reason` field, if it has a text one.
        reason: Option<String>,
    },
    /// The machine stopped (`terminate`).
    #[error("the client's state machine has stopped")]
    Stopped,
    /// The reactor thread is gone.
    #[error("the client's reactor has stopped")]
    ReactorGone,
}

/// `: reason (status n)` for [`ClientError::Failed`].
fn failure_detail(status: Option<i64>, reason: Option<&str>) -> String {
    match (reason.filter(|r| !r.is_empty()), status) {
        (Some(reason), Some(status)) => format!(": {reason} (status {status})"),
        (Some(reason), None) => format!(": {reason}"),
        (None, Some(status)) => format!(" (status {status})"),
        (None, None) => String::new(),
    }
}

impl From<reactor::Stopped> for ClientError {
    fn from(_: reactor::Stopped) -> Self {
        ClientError::ReactorGone
    }
}

/// Stores a method's arguments.
pub type StoreArgs<C> = Box<dyn FnOnce(&mut <C as ClientMachine>::Args) + Send>;

/// A request from the API to the client.
pub enum ClientCommand<C: ClientMachine> {
    /// A method: store the arguments, run the event.
    Call(C::Event, StoreArgs<C>),
    /// A `<send>` message, straight to the server.
    Send(C::Message),
    /// Log every state, event and action.
    Verbose(bool),
    /// Counters.
    Stats(mpsc::Sender<ClientStats>),
}

/// The DEALER side of one client: connects on the reactor's sockets.
struct Dealer {
    sockets: Sockets,
}

impl Transport for Dealer {
    fn connect(&mut self, endpoint: &str, security: &ClientSecurity) -> Result<(), String> {
        let (plain, curve) = match security {
            ClientSecurity::Null => (None, None),
            ClientSecurity::Plain(credentials) => (Some(credentials.clone()), None),
            ClientSecurity::Curve(keys) => (None, Some(keys.clone())),
        };
        self.sockets.set_credentials(plain);
        self.sockets.set_curve_client(curve);
        self.sockets
            .connect(endpoint)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

/// One client as a reactor [`Service`].
pub struct ClientHost<C: ClientMachine> {
    core: ClientCore<C>,
    answers: SyncSender<Answer<C::Reply>>,
    deliveries: SyncSender<C::Message>,
    connected: Arc<AtomicBool>,
    warn: Throttle,
    /// Messages for the server not yet taken by the socket, in order, each
    /// with whether it came from the API (`<send>`).
    waiting: VecDeque<(C::Message, bool)>,
    /// When to try the socket again after it refused (queue full).
    retry_at: Option<Instant>,
    sends: Arc<SendQueue>,
}

impl<C: ClientMachine> ClientHost<C> {
    /// Run `f` on the core with the reactor's sockets lent to its
    /// transport (actions may connect), then pass on what it produced.
    fn with_core(
        &mut self,
        sockets: &mut Sockets,
        now: Instant,
        f: impl FnOnce(&mut ClientCore<C>),
    ) {
        let lent = std::mem::take(sockets);
        self.core.set_transport(Box::new(Dealer { sockets: lent }));
        f(&mut self.core);
        let transport = self.core.take_transport().map(|t| t.into_any());
        if let Some(Ok(dealer)) = transport.map(|t| t.downcast::<Dealer>()) {
            *sockets = dealer.sockets;
        }
        self.forward(now);
    }

    /// Replies and deliveries to the application; the connected flag.
    fn forward(&mut self, now: Instant) {
        // The flag first: a caller that has its reply sees the state the
        // reply reports.
        self.connected
            .store(self.core.is_connected(), Ordering::Release);
        let mut dropped = 0;
        for answer in self.core.drain_answers() {
            if let Err(TrySendError::Full(_)) = self.answers.try_send(answer) {
                dropped += 1;
            }
        }
        let mut full = 0;
        for message in self.core.drain_deliveries() {
            if let Err(TrySendError::Full(_)) = self.deliveries.try_send(message) {
                full += 1;
            }
        }
        self.core.stats_mut().dropped += dropped + full;
        if dropped + full > 0 {
            if let Some(suppressed) = self.warn.allow(now) {
                tracing::warn!(
                    suppressed,
                    "the application is not reading: {} replies and messages dropped",
                    dropped + full
                );
            }
        }
    }
}

impl<C> Service for ClientHost<C>
where
    C: ClientMachine,
    C::Actions: Send,
    C::State: Send,
    C::Event: Send,
    C::Message: Send,
    C::Args: Send,
    C::Reply: Send,
{
    type Command = ClientCommand<C>;

    fn command(&mut self, command: ClientCommand<C>, sockets: &mut Sockets, now: Instant) {
        match command {
            ClientCommand::Call(event, store) => {
                self.with_core(sockets, now, |core| core.call(event, store, now));
            }
            ClientCommand::Send(message) => self.waiting.push_back((message, true)),
            ClientCommand::Verbose(on) => self.core.set_animate(on),
            ClientCommand::Stats(reply) => {
                let _ = reply.send(self.core.stats());
            }
        }
    }

    fn on_remote(&mut self, _remote: usize, frames: &[&[u8]], sockets: &mut Sockets, now: Instant) {
        match C::Message::decode(frames) {
            Ok(message) => self.with_core(sockets, now, |core| core.receive(message, now)),
            Err(e) => self.with_core(sockets, now, |core| core.malformed(&e, now)),
        }
    }

    fn tick(&mut self, sockets: &mut Sockets, now: Instant) {
        self.with_core(sockets, now, |core| core.tick(now));
    }

    fn next_deadline(&self) -> Option<Instant> {
        match (self.core.next_deadline(), self.retry_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn drain_outgoing(&mut self, send: &mut dyn FnMut(Outgoing) -> Result<(), Refused>) {
        // The machine's messages queue behind what waits already, up to a
        // bound (heartbeats to a server that never reads would otherwise
        // pile up for ever); the API's are bounded by `send`.
        let machine: Vec<C::Message> = self.core.drain_outbox().collect();
        for message in machine {
            if self.waiting.len() < SEND_QUEUE + MACHINE_QUEUE {
                self.waiting.push_back((message, false));
            } else {
                self.core.stats_mut().refused += 1;
            }
        }
        let connected = !self.core.endpoints().is_empty();
        let now = Instant::now();
        let mut released = 0;
        while let Some((message, from_api)) = self.waiting.pop_front() {
            let dropped = |why: &dyn std::fmt::Display, host: &mut Self| {
                host.core.stats_mut().refused += 1;
                if let Some(suppressed) = host.warn.allow(now) {
                    tracing::warn!(suppressed, "{} dropped: {why}", message.command());
                }
            };
            if !connected {
                dropped(&"the client is not connected", self);
                released += usize::from(from_api);
                continue;
            }
            let frames = match message.encode_packet() {
                Ok(frames) => frames,
                Err(e) => {
                    dropped(&e, self);
                    released += usize::from(from_api);
                    continue;
                }
            };
            match send(Outgoing::ToRemote { remote: 0, frames }) {
                Ok(()) => {
                    self.core.stats_mut().sent += 1;
                    released += usize::from(from_api);
                }
                Err(Refused {
                    reason: RefusedReason::Full,
                    ..
                }) => {
                    // The broker's queue is full: keep this message and
                    // those after it, in order, and try again shortly.
                    self.waiting.push_front((message, from_api));
                    self.retry_at = Some(now + RETRY);
                    break;
                }
                Err(refused) => {
                    dropped(&format!("{:?}", refused.reason), self);
                    released += usize::from(from_api);
                }
            }
        }
        if self.waiting.is_empty() {
            self.retry_at = None;
        }
        if released > 0 {
            self.sends.release(released);
        }
    }
}

/// How many `<send>` messages are on their way through a client's host,
/// so that [`ClientHandle::send`] waits (as zproto's blocking send does)
/// rather than queueing without bound.
#[derive(Debug, Default)]
struct SendQueue {
    queued: Mutex<usize>,
    room: Condvar,
}

impl SendQueue {
    /// Wait (at most `timeout`) for room, then count one more message.
    fn acquire(&self, timeout: Duration) -> Result<(), ClientError> {
        let deadline = Instant::now() + timeout;
        let mut queued = self.queued.lock().map_err(|_| ClientError::ReactorGone)?;
        while *queued >= SEND_QUEUE {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout(timeout));
            }
            queued = self
                .room
                .wait_timeout(queued, left)
                .map_err(|_| ClientError::ReactorGone)?
                .0;
        }
        *queued += 1;
        Ok(())
    }

    /// `n` messages left the host (sent, or dropped for good).
    fn release(&self, n: usize) {
        if let Ok(mut queued) = self.queued.lock() {
            *queued = queued.saturating_sub(n);
            self.room.notify_all();
        }
    }
}

/// A client running on a reactor: the API side. Dropping it removes the
/// client from the reactor (zproto's `$TERM`).
pub struct ClientHandle<C: ClientMachine>
where
    ClientHost<C>: Service<Command = ClientCommand<C>>,
{
    reactor: Arc<Reactor<ClientHost<C>>>,
    id: reactor::ServiceId,
    answers: Receiver<Answer<C::Reply>>,
    deliveries: Receiver<C::Message>,
    connected: Arc<AtomicBool>,
    sends: Arc<SendQueue>,
}

impl<C: ClientMachine> ClientHandle<C>
where
    ClientHost<C>: Service<Command = ClientCommand<C>>,
{
    /// A client on a reactor thread of its own.
    pub fn start(actions: C::Actions) -> Result<Self, ClientError> {
        let reactor = Reactor::start().map_err(|_| ClientError::ReactorGone)?;
        Self::on(&reactor, actions)
    }

    /// A client on a shared reactor: one thread runs many clients.
    pub fn on(
        reactor: &Arc<Reactor<ClientHost<C>>>,
        actions: C::Actions,
    ) -> Result<Self, ClientError> {
        let (answers_tx, answers) = mpsc::sync_channel(ANSWER_QUEUE);
        let (deliveries_tx, deliveries) = mpsc::sync_channel(DELIVERY_QUEUE);
        let connected = Arc::new(AtomicBool::new(false));
        let sends = Arc::new(SendQueue::default());
        let host = ClientHost {
            core: ClientCore::new(actions),
            answers: answers_tx,
            deliveries: deliveries_tx,
            connected: connected.clone(),
            warn: Throttle::default(),
            waiting: VecDeque::new(),
            retry_at: None,
            sends: sends.clone(),
        };
        let id = reactor.add(host)?;
        Ok(Self {
            reactor: reactor.clone(),
            id,
            answers,
            deliveries,
            connected,
            sends,
        })
    }

    /// Call a method: `store` sets its arguments, then `event` runs.
    ///
    /// Replies that came before the call (to an earlier call that stopped
    /// waiting, or sent unasked) are discarded first, so that they are
    /// never taken for this call's: a difference from zproto, whose API
    /// takes the first reply of an accepted name.
    pub fn call(
        &self,
        event: C::Event,
        store: impl FnOnce(&mut C::Args) + Send + 'static,
    ) -> Result<(), ClientError> {
        while self.answers.try_recv().is_ok() {}
        self.reactor
            .command(self.id, ClientCommand::Call(event, Box::new(store)))?;
        Ok(())
    }

    /// Wait up to `timeout` for a reply that `accept` takes; others are
    /// discarded, as zproto's API does.
    pub fn wait(
        &self,
        accept: impl Fn(&C::Reply) -> bool,
        timeout: Duration,
    ) -> Result<C::Reply, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.answers.recv_timeout(left) {
                Ok(Answer::Reply(reply)) if accept(&reply) => return Ok(reply),
                Ok(Answer::Reply(_)) => {}
                Ok(Answer::Unhandled { state, event }) => {
                    return Err(ClientError::Unhandled { state, event })
                }
                Ok(Answer::Stopped) => return Err(ClientError::Stopped),
                Err(RecvTimeoutError::Timeout) => return Err(ClientError::Timeout(timeout)),
                Err(RecvTimeoutError::Disconnected) => return Err(ClientError::ReactorGone),
            }
        }
    }

    /// Send `message` to the server as it is (`<send>`), in order. While
    /// [`SEND_QUEUE`] messages are on their way (the server reads slower
    /// than we write), this waits for room, at most [`SEND_WAIT`]: nothing
    /// is dropped for a slow server, and nothing queues without bound.
    pub fn send(&self, message: C::Message) -> Result<(), ClientError> {
        self.sends.acquire(SEND_WAIT)?;
        if let Err(e) = self.reactor.command(self.id, ClientCommand::Send(message)) {
            self.sends.release(1);
            return Err(e.into());
        }
        Ok(())
    }

    /// The next message the actions passed to the application (`<recv>`).
    pub fn recv(&self, timeout: Duration) -> Result<C::Message, ClientError> {
        self.deliveries.recv_timeout(timeout).map_err(|e| match e {
            RecvTimeoutError::Timeout => ClientError::Timeout(timeout),
            RecvTimeoutError::Disconnected => ClientError::ReactorGone,
        })
    }

    /// The flag the actions set with `set_connected`.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// Log every state, event and action at debug level.
    pub fn set_verbose(&self, on: bool) -> Result<(), ClientError> {
        self.reactor.command(self.id, ClientCommand::Verbose(on))?;
        Ok(())
    }

    /// Counters.
    pub fn stats(&self) -> Result<ClientStats, ClientError> {
        let (tx, rx) = mpsc::channel();
        self.reactor.command(self.id, ClientCommand::Stats(tx))?;
        rx.recv_timeout(Duration::from_secs(10))
            .map_err(|_| ClientError::ReactorGone)
    }
}

impl<C: ClientMachine> Drop for ClientHandle<C>
where
    ClientHost<C>: Service<Command = ClientCommand<C>>,
{
    fn drop(&mut self) {
        let _ = self.reactor.remove(self.id);
    }
}
