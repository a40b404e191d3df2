//! Generated clients on the reactor: one [`ClientCore`] and one DEALER per
//! client, many clients on one reactor thread (never a thread per client),
//! and a blocking API handle for the application ([`ClientHandle`]), which
//! generated `Client` types wrap with typed methods.
//!
//! Memory per client is bounded: at most [`ANSWER_QUEUE`] replies and
//! [`DELIVERY_QUEUE`] delivered messages wait for the application (more are
//! dropped and counted), and the DEALER queues at most its high-water mark
//! (1000 messages) each way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::{Answer, ClientCore, ClientMachine, ClientStats, PlainCredentials, Transport};
use crate::codec::Codec;
use crate::reactor::{self, Outgoing, Reactor, Refused, Service, Sockets};
use crate::throttle::Throttle;

/// Replies waiting for the application, per client.
pub const ANSWER_QUEUE: usize = 1024;
/// Delivered messages waiting for the application, per client.
pub const DELIVERY_QUEUE: usize = 10_000;

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
    /// The machine stopped (`terminate`).
    #[error("the client's state machine has stopped")]
    Stopped,
    /// The reactor thread is gone.
    #[error("the client's reactor has stopped")]
    ReactorGone,
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
    fn connect(
        &mut self,
        endpoint: &str,
        credentials: Option<&PlainCredentials>,
    ) -> Result<(), String> {
        self.sockets.set_credentials(credentials.cloned());
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
            ClientCommand::Send(message) => self.core.send(message),
            ClientCommand::Verbose(on) => self.core.set_animate(on),
            ClientCommand::Stats(reply) => {
                let _ = reply.send(self.core.stats());
            }
        }
    }

    fn on_peer(&mut self, _frames: &[&[u8]], _now: Instant) {}

    fn on_remote(&mut self, _remote: usize, frames: &[&[u8]], sockets: &mut Sockets, now: Instant) {
        match C::Message::decode(frames) {
            Ok(message) => self.with_core(sockets, now, |core| core.receive(message, now)),
            Err(e) => self.with_core(sockets, now, |core| core.malformed(&e, now)),
        }
    }

    fn on_remote_reconnected(&mut self, _remote: usize, _now: Instant) {}

    fn tick(&mut self, sockets: &mut Sockets, now: Instant) {
        self.with_core(sockets, now, |core| core.tick(now));
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.core.next_deadline()
    }

    fn drain_outgoing(&mut self, send: &mut dyn FnMut(Outgoing) -> Result<(), Refused>) {
        let connected = !self.core.endpoints().is_empty();
        let messages: Vec<C::Message> = self.core.drain_outbox().collect();
        let now = Instant::now();
        for message in messages {
            if !connected {
                self.core.stats_mut().refused += 1;
                if let Some(suppressed) = self.warn.allow(now) {
                    tracing::warn!(
                        suppressed,
                        "{} dropped: the client is not connected",
                        message.command()
                    );
                }
                continue;
            }
            let frames = match message.encode() {
                Ok(frames) => frames,
                Err(e) => {
                    tracing::warn!("cannot encode {}: {e}", message.command());
                    continue;
                }
            };
            match send(Outgoing::ToRemote { remote: 0, frames }) {
                Ok(()) => self.core.stats_mut().sent += 1,
                Err(refused) => {
                    self.core.stats_mut().refused += 1;
                    if let Some(suppressed) = self.warn.allow(now) {
                        tracing::warn!(
                            suppressed,
                            "{} dropped: {:?}",
                            message.command(),
                            refused.reason
                        );
                    }
                }
            }
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
        let host = ClientHost {
            core: ClientCore::new(actions),
            answers: answers_tx,
            deliveries: deliveries_tx,
            connected: connected.clone(),
            warn: Throttle::default(),
        };
        let id = reactor.add(host)?;
        Ok(Self {
            reactor: reactor.clone(),
            id,
            answers,
            deliveries,
            connected,
        })
    }

    /// Call a method: `store` sets its arguments, then `event` runs.
    pub fn call(
        &self,
        event: C::Event,
        store: impl FnOnce(&mut C::Args) + Send + 'static,
    ) -> Result<(), ClientError> {
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

    /// Send `message` to the server as it is (`<send>`).
    pub fn send(&self, message: C::Message) -> Result<(), ClientError> {
        self.reactor
            .command(self.id, ClientCommand::Send(message))?;
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
