//! Generated clients on the reactor: one [`ClientCore`] and one DEALER per
//! client, many clients on one reactor thread (never a thread per client),
//! and API handles for the application, which generated clients wrap with
//! typed methods: [`ClientHandle`], which blocks its thread, and (feature
//! `async`) [`AsyncClientHandle`], whose futures the reactor thread wakes,
//! on any executor.
//!
//! Calls run one at a time per client, in order; see [`Call`] for how a
//! reply stays with its call, even when its caller gives up.
//!
//! Memory per client is bounded: at most [`CALL_QUEUE`] calls wait behind
//! the one in flight, at most [`ANSWER_QUEUE`] replies no call took and
//! [`DELIVERY_QUEUE`] delivered messages wait for the application (more are
//! dropped and counted), at most [`SEND_QUEUE`] sent messages wait for the
//! server (then `send` waits: a slow server slows its writers down rather
//! than losing their messages) with at most 1000 of the machine's own, and
//! the DEALER queues at most its high-water mark (1000 messages) each way.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::{ClientCore, ClientMachine, ClientSecurity, ClientStats, Transport};
use crate::codec::Codec;
use crate::reactor::{self, Outgoing, Refused, RefusedReason, Service, Sockets};
use crate::throttle::Throttle;

#[cfg(feature = "async")]
mod async_handle;
mod call;
mod handle;

#[cfg(feature = "async")]
pub use async_handle::{AsyncClientHandle, Deliveries};
pub use call::{Accept, Call, StoreArgs, CALL_QUEUE};
use call::{Calls, Step};
pub use handle::ClientHandle;

/// Replies no call took, waiting for an immediate method, per client.
pub const ANSWER_QUEUE: usize = 1024;
/// Delivered messages waiting for the application, per client.
pub const DELIVERY_QUEUE: usize = 10_000;
/// `<send>` messages on their way to the server, per client, before
/// `send` waits.
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
    /// The client already has this many calls waiting behind the one in
    /// flight ([`CALL_QUEUE`]).
    #[error("{0} calls are already waiting on this client")]
    Busy(usize),
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

/// A request from the API to the client.
pub enum ClientCommand<C: ClientMachine> {
    /// A method: run in its turn.
    Call(Call<C>),
    /// A `<send>` message, straight to the server.
    Send(C::Message),
    /// Log every state, event and action.
    Verbose(bool),
    /// Counters.
    Stats(flume::Sender<ClientStats>),
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
    calls: Calls<C>,
    deliveries: flume::Sender<C::Message>,
    connected: Arc<AtomicBool>,
    warn: Throttle,
    /// Messages for the server not yet taken by the socket, in order, each
    /// with whether it came from the API (`<send>`).
    waiting: VecDeque<(C::Message, bool)>,
    /// When to try the socket again after it refused (queue full).
    retry_at: Option<Instant>,
    /// One token per `<send>` message on its way: the API puts one in
    /// before it sends, the host takes it out once the message left.
    sends: flume::Receiver<()>,
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

    /// Replies to their calls, deliveries to the application; the
    /// connected flag.
    fn forward(&mut self, now: Instant) {
        // The flag first: a caller that has its reply sees the state the
        // reply reports.
        self.connected
            .store(self.core.is_connected(), Ordering::Release);
        let mut dropped = 0;
        let answers: Vec<_> = self.core.drain_answers().collect();
        for answer in answers {
            dropped += u64::from(self.calls.answer(answer));
        }
        for message in self.core.drain_deliveries() {
            if let Err(flume::TrySendError::Full(_)) = self.deliveries.try_send(message) {
                dropped += 1;
            }
        }
        self.core.stats_mut().dropped += dropped;
        if dropped > 0 {
            if let Some(suppressed) = self.warn.allow(now) {
                tracing::warn!(
                    suppressed,
                    "the application is not reading: {dropped} replies and messages dropped"
                );
            }
        }
    }

    /// Move the calls on: end the one in flight if its time is up, and run
    /// the next ones until one waits.
    fn advance(&mut self, sockets: &mut Sockets, now: Instant) {
        while let Step::Run(event, store) = self.calls.next(now, self.core.is_stopped()) {
            self.with_core(sockets, now, |core| core.call(event, store, now));
            self.calls.ran();
        }
        self.calls.expire(now);
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
            ClientCommand::Call(call) => {
                self.calls.push(call);
                self.advance(sockets, now);
            }
            ClientCommand::Send(message) => self.waiting.push_back((message, true)),
            ClientCommand::Verbose(on) => self.core.set_animate(on),
            ClientCommand::Stats(reply) => {
                let _ = reply.try_send(self.core.stats());
            }
        }
    }

    fn on_remote(&mut self, _remote: usize, frames: &[&[u8]], sockets: &mut Sockets, now: Instant) {
        match C::Message::decode(frames) {
            Ok(message) => self.with_core(sockets, now, |core| core.receive(message, now)),
            Err(e) => self.with_core(sockets, now, |core| core.malformed(&e, now)),
        }
        self.advance(sockets, now);
    }

    fn tick(&mut self, sockets: &mut Sockets, now: Instant) {
        self.with_core(sockets, now, |core| core.tick(now));
        self.advance(sockets, now);
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.core.next_deadline(),
            self.retry_at,
            self.calls.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
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
        for _ in 0..released {
            let _ = self.sends.try_recv();
        }
    }
}

/// What a handle keeps of its client: where the client runs, and the
/// channels the host answers on. Dropping it removes the client from the
/// reactor (zproto's `$TERM`).
struct Link<C: ClientMachine>
where
    ClientHost<C>: Service<Command = ClientCommand<C>>,
{
    reactor: Arc<reactor::Reactor<ClientHost<C>>>,
    id: reactor::ServiceId,
    deliveries: flume::Receiver<C::Message>,
    connected: Arc<AtomicBool>,
    /// Tokens for `<send>` messages on their way ([`SEND_QUEUE`] at most);
    /// the receiver gives one back when the command cannot be sent.
    sends: (flume::Sender<()>, flume::Receiver<()>),
}

impl<C: ClientMachine> Link<C>
where
    ClientHost<C>: Service<Command = ClientCommand<C>>,
{
    /// Put a client with `actions` on `reactor`.
    fn new(
        reactor: &Arc<reactor::Reactor<ClientHost<C>>>,
        actions: C::Actions,
    ) -> Result<Self, ClientError> {
        let (deliveries_tx, deliveries) = flume::bounded(DELIVERY_QUEUE);
        let (sends_tx, sends_rx) = flume::bounded(SEND_QUEUE);
        let connected = Arc::new(AtomicBool::new(false));
        let host = ClientHost {
            core: ClientCore::new(actions),
            calls: Calls::default(),
            deliveries: deliveries_tx,
            connected: connected.clone(),
            warn: Throttle::default(),
            waiting: VecDeque::new(),
            retry_at: None,
            sends: sends_rx.clone(),
        };
        let id = reactor.add(host)?;
        Ok(Self {
            reactor: reactor.clone(),
            id,
            deliveries,
            connected,
            sends: (sends_tx, sends_rx),
        })
    }

    /// Pass `call` to the host; its outcome comes on the receiver.
    fn submit(
        &self,
        run: Option<(C::Event, StoreArgs<C>)>,
        accept: Accept<C::Reply>,
        timeout: Duration,
    ) -> Result<flume::Receiver<Result<C::Reply, ClientError>>, ClientError> {
        let (tx, rx) = flume::bounded(1);
        let call = Call::request(run, accept, timeout, tx);
        self.reactor.command(self.id, ClientCommand::Call(call))?;
        Ok(rx)
    }

    /// Run `event` in its turn, waiting for nothing.
    fn fire(&self, event: C::Event, store: StoreArgs<C>) -> Result<(), ClientError> {
        let call = Call::fire(event, store);
        Ok(self.reactor.command(self.id, ClientCommand::Call(call))?)
    }

    /// Send `message`, once a token for it is in.
    fn send_with_token(&self, message: C::Message) -> Result<(), ClientError> {
        if let Err(e) = self.reactor.command(self.id, ClientCommand::Send(message)) {
            let _ = self.sends.1.try_recv();
            return Err(e.into());
        }
        Ok(())
    }

    fn stats(&self) -> Result<flume::Receiver<ClientStats>, ClientError> {
        let (tx, rx) = flume::bounded(1);
        self.reactor.command(self.id, ClientCommand::Stats(tx))?;
        Ok(rx)
    }
}

impl<C: ClientMachine> Drop for Link<C>
where
    ClientHost<C>: Service<Command = ClientCommand<C>>,
{
    fn drop(&mut self) {
        let _ = self.reactor.remove(self.id);
    }
}
