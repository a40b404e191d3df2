//! The async API handle of a client: the same calls as [`ClientHandle`]'s,
//! as futures the reactor thread wakes, on any executor.
//!
//! Cancellation: dropping one of these futures at any await point leaves
//! the client usable. A call already queued never runs; a call in flight
//! stays in flight until its reply or its deadline, so that its reply is
//! discarded rather than taken by the next call (see [`Call`]).
//!
//! [`ClientHandle`]: super::ClientHandle
//! [`Call`]: super::Call

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::client::{ClientMachine, ClientStats};
use crate::reactor::{Reactor, Service};

use super::{Accept, ClientCommand, ClientError, ClientHost, Link};

/// A client running on a reactor: the API side, for async code. Its
/// methods take `&self`: calls from many tasks at once run one after
/// another, in the order they reached the client. Dropping it removes the
/// client from the reactor.
pub struct AsyncClientHandle<C: ClientMachine>
where
    ClientHost<C>: Service<Command = ClientCommand<C>>,
{
    link: Link<C>,
}

impl<C: ClientMachine> AsyncClientHandle<C>
where
    ClientHost<C>: Service<Command = ClientCommand<C>>,
{
    /// A client on a reactor thread of its own. This starts a thread and
    /// waits for it briefly, but never on the network.
    pub fn start(actions: C::Actions) -> Result<Self, ClientError> {
        let reactor = Reactor::start().map_err(|_| ClientError::ReactorGone)?;
        Self::on(&reactor, actions)
    }

    /// A client on a shared reactor: one thread runs many clients.
    pub fn on(
        reactor: &Arc<Reactor<ClientHost<C>>>,
        actions: C::Actions,
    ) -> Result<Self, ClientError> {
        Link::new(reactor, actions).map(|link| Self { link })
    }

    /// Call a method that waits for no reply: `store` sets its arguments,
    /// then `event` runs, in its turn. Never waits.
    pub fn call(
        &self,
        event: C::Event,
        store: impl FnOnce(&mut C::Args) + Send + 'static,
    ) -> Result<(), ClientError> {
        self.link.fire(event, Box::new(store))
    }

    /// Call a method, and its reply: `store` sets its arguments, `event`
    /// runs in its turn, and the first reply `accept` takes within
    /// `timeout` (which the reactor thread keeps) is the outcome.
    pub async fn request(
        &self,
        event: C::Event,
        store: impl FnOnce(&mut C::Args) + Send + 'static,
        accept: Accept<C::Reply>,
        timeout: Duration,
    ) -> Result<C::Reply, ClientError> {
        let outcome = self
            .link
            .submit(Some((event, Box::new(store))), accept, timeout)?;
        outcome
            .into_recv_async()
            .await
            .map_err(|_| ClientError::ReactorGone)?
    }

    /// An immediate method: the first reply `accept` takes within
    /// `timeout`, in turn, without running the machine.
    pub async fn wait(
        &self,
        accept: Accept<C::Reply>,
        timeout: Duration,
    ) -> Result<C::Reply, ClientError> {
        let outcome = self.link.submit(None, accept, timeout)?;
        outcome
            .into_recv_async()
            .await
            .map_err(|_| ClientError::ReactorGone)?
    }

    /// Send `message` to the server as it is (`<send>`), in order. While
    /// [`SEND_QUEUE`](super::SEND_QUEUE) messages are on their way, this
    /// waits for room, with no deadline of its own: wrap it in your
    /// executor's timeout if you need one (dropping it sends nothing).
    pub async fn send(&self, message: C::Message) -> Result<(), ClientError> {
        self.link
            .sends
            .0
            .send_async(())
            .await
            .map_err(|_| ClientError::ReactorGone)?;
        self.link.send_with_token(message)
    }

    /// The next message the actions passed to the application (`<recv>`).
    /// Dropping the future loses no message.
    pub async fn recv(&self) -> Result<C::Message, ClientError> {
        self.link
            .deliveries
            .recv_async()
            .await
            .map_err(|_| ClientError::ReactorGone)
    }

    /// The messages the actions pass to the application (`<recv>`), as a
    /// stream, which ends when the client's reactor stops.
    pub fn deliveries(&self) -> Deliveries<'_, C::Message> {
        Deliveries {
            stream: self.link.deliveries.stream(),
        }
    }

    /// The flag the actions set with `set_connected`.
    pub fn connected(&self) -> bool {
        self.link.connected.load(Ordering::Acquire)
    }

    /// Log every state, event and action at debug level.
    pub fn set_verbose(&self, on: bool) -> Result<(), ClientError> {
        let link = &self.link;
        link.reactor.command(link.id, ClientCommand::Verbose(on))?;
        Ok(())
    }

    /// Counters.
    pub async fn stats(&self) -> Result<ClientStats, ClientError> {
        self.link
            .stats()?
            .into_recv_async()
            .await
            .map_err(|_| ClientError::ReactorGone)
    }
}

/// The messages a client passes to the application, as a
/// [`Stream`](futures_core::Stream).
pub struct Deliveries<'a, M> {
    stream: flume::r#async::RecvStream<'a, M>,
}

impl<M> futures_core::Stream for Deliveries<'_, M> {
    type Item = M;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<M>> {
        Pin::new(&mut self.stream).poll_next(cx)
    }
}
