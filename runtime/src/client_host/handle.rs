//! The blocking API handle of a client.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::client::{ClientMachine, ClientStats};
use crate::reactor::{Reactor, Service};

use super::{Accept, ClientCommand, ClientError, ClientHost, Link, SEND_WAIT};

/// A client running on a reactor: the API side, for threads that may
/// block. Dropping it removes the client from the reactor (zproto's
/// `$TERM`).
pub struct ClientHandle<C: ClientMachine>
where
    ClientHost<C>: Service<Command = ClientCommand<C>>,
{
    link: Link<C>,
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
        Link::new(reactor, actions).map(|link| Self { link })
    }

    /// Call a method that waits for no reply: `store` sets its arguments,
    /// then `event` runs, in its turn. Returns once the call is queued.
    pub fn call(
        &self,
        event: C::Event,
        store: impl FnOnce(&mut C::Args) + Send + 'static,
    ) -> Result<(), ClientError> {
        self.link.fire(event, Box::new(store))
    }

    /// Call a method and wait up to `timeout` for a reply `accept` takes
    /// (others are discarded, as zproto's API does): `store` sets its
    /// arguments, then `event` runs, in its turn.
    ///
    /// Replies that came before the call ran (to an earlier call whose
    /// time was up, or sent unasked) are never taken for this one's.
    pub fn request(
        &self,
        event: C::Event,
        store: impl FnOnce(&mut C::Args) + Send + 'static,
        accept: Accept<C::Reply>,
        timeout: Duration,
    ) -> Result<C::Reply, ClientError> {
        let outcome = self
            .link
            .submit(Some((event, Box::new(store))), accept, timeout)?;
        // The host answers by the deadline; a closed channel means the
        // reactor thread went away.
        outcome.recv().map_err(|_| ClientError::ReactorGone)?
    }

    /// An immediate method: wait, in turn, up to `timeout` for a reply
    /// `accept` takes, without running the machine. A reply that came
    /// while no call was in flight counts.
    pub fn wait(
        &self,
        accept: Accept<C::Reply>,
        timeout: Duration,
    ) -> Result<C::Reply, ClientError> {
        let outcome = self.link.submit(None, accept, timeout)?;
        outcome.recv().map_err(|_| ClientError::ReactorGone)?
    }

    /// Send `message` to the server as it is (`<send>`), in order. While
    /// [`SEND_QUEUE`](super::SEND_QUEUE) messages are on their way (the
    /// server reads slower than we write), this waits for room, at most
    /// [`SEND_WAIT`]: nothing is dropped for a slow server, and nothing
    /// queues without bound.
    pub fn send(&self, message: C::Message) -> Result<(), ClientError> {
        self.link
            .sends
            .0
            .send_timeout((), SEND_WAIT)
            .map_err(|e| match e {
                flume::SendTimeoutError::Timeout(()) => ClientError::Timeout(SEND_WAIT),
                flume::SendTimeoutError::Disconnected(()) => ClientError::ReactorGone,
            })?;
        self.link.send_with_token(message)
    }

    /// The next message the actions passed to the application (`<recv>`).
    pub fn recv(&self, timeout: Duration) -> Result<C::Message, ClientError> {
        self.link
            .deliveries
            .recv_timeout(timeout)
            .map_err(|e| match e {
                flume::RecvTimeoutError::Timeout => ClientError::Timeout(timeout),
                flume::RecvTimeoutError::Disconnected => ClientError::ReactorGone,
            })
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
    pub fn stats(&self) -> Result<ClientStats, ClientError> {
        self.link
            .stats()?
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| ClientError::ReactorGone)
    }
}
