//! The application's handles on a server host: [`ServerHandle`], whose
//! methods block their thread, and (feature `async`) [`AsyncServerHandle`],
//! whose futures the reactor thread wakes, on any executor.

use std::path::Path;
use std::sync::Arc;

use crate::reactor::{self, Reactor, Service};
use crate::server::StateMachine;

use super::{HostCommand, HostError, HostStats, Reply, ServerHost, REPLY_TIMEOUT};

/// Where a server runs; dropping it stops the server (zproto's `$TERM`).
struct Running<M: StateMachine>
where
    ServerHost<M>: Service<Command = HostCommand<M>>,
{
    reactor: Arc<Reactor<ServerHost<M>>>,
    id: reactor::ServiceId,
}

impl<M: StateMachine> Running<M>
where
    ServerHost<M>: Service<Command = HostCommand<M>>,
{
    fn start(name: &str, actions: M::Actions) -> Result<Self, HostError> {
        let reactor = Reactor::start().map_err(|_| HostError::Stopped)?;
        Self::on(&reactor, ServerHost::new(name, actions))
    }

    fn on(reactor: &Arc<Reactor<ServerHost<M>>>, host: ServerHost<M>) -> Result<Self, HostError> {
        let id = reactor.add(host)?;
        Ok(Self {
            reactor: reactor.clone(),
            id,
        })
    }

    /// Pass the command `make` builds; its answer comes on the receiver.
    fn ask<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> HostCommand<M>,
    ) -> Result<flume::Receiver<T>, HostError> {
        let (tx, rx) = flume::bounded(1);
        self.reactor.command(self.id, make(tx))?;
        Ok(rx)
    }
}

impl<M: StateMachine> Drop for Running<M>
where
    ServerHost<M>: Service<Command = HostCommand<M>>,
{
    fn drop(&mut self) {
        let _ = self.reactor.remove(self.id);
    }
}

/// Runs `f` on the actions and sends its result.
fn with_command<M: StateMachine, T: Send + 'static>(
    f: impl FnOnce(&mut M::Actions) -> T + Send + 'static,
) -> impl FnOnce(Reply<T>) -> HostCommand<M> {
    move |tx| {
        HostCommand::With(Box::new(move |actions| {
            let _ = tx.send(f(actions));
        }))
    }
}

/// A server running on a reactor thread; dropping it stops the server
/// (zproto's `$TERM`).
pub struct ServerHandle<M: StateMachine>
where
    ServerHost<M>: Service<Command = HostCommand<M>>,
{
    running: Running<M>,
}

impl<M: StateMachine> ServerHandle<M>
where
    ServerHost<M>: Service<Command = HostCommand<M>>,
{
    /// A server named `name` on a reactor thread of its own.
    pub fn start(name: &str, actions: M::Actions) -> Result<Self, HostError> {
        Running::start(name, actions).map(|running| Self { running })
    }

    /// A server on a shared reactor: one thread may run many.
    pub fn on(
        reactor: &Arc<Reactor<ServerHost<M>>>,
        host: ServerHost<M>,
    ) -> Result<Self, HostError> {
        Running::on(reactor, host).map(|running| Self { running })
    }

    fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> HostCommand<M>) -> Result<T, HostError> {
        self.running
            .ask(make)?
            .recv_timeout(REPLY_TIMEOUT)
            .map_err(|_| HostError::Stopped)
    }

    /// BIND: accept clients on `endpoint`; the port for tcp, else 0.
    pub fn bind(&self, endpoint: &str) -> Result<i32, HostError> {
        self.ask(|tx| HostCommand::Bind(endpoint.to_owned(), tx))?
    }

    /// PORT: the port of the last bind (-1 after a failed one).
    pub fn port(&self) -> Result<i32, HostError> {
        self.ask(HostCommand::Port)
    }

    /// SET `path` `value` (zproto's names; see the module's table).
    pub fn set(&self, path: &str, value: &str) -> Result<(), HostError> {
        self.ask(|tx| HostCommand::Set(path.to_owned(), value.to_owned(), tx))?
    }

    /// VERBOSE: log every state, event and action.
    pub fn verbose(&self) -> Result<(), HostError> {
        self.set("server/verbose", "1")
    }

    /// LOAD a ZPL config file: its settings, then its bind endpoints.
    pub fn load(&self, file: &Path) -> Result<(), HostError> {
        self.ask(|tx| HostCommand::Load(file.to_owned(), tx))?
    }

    /// Counters.
    pub fn stats(&self) -> Result<HostStats, HostError> {
        self.ask(HostCommand::Stats)
    }

    /// Run `f` on the server's actions, on the reactor thread, and return
    /// what it returns.
    pub fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut M::Actions) -> T + Send + 'static,
    ) -> Result<T, HostError> {
        self.ask(with_command(f))
    }

    /// The same server, for async code.
    #[cfg(feature = "async")]
    pub fn into_async(self) -> AsyncServerHandle<M> {
        AsyncServerHandle {
            running: self.running,
        }
    }
}

/// A server running on a reactor thread, for async code: the commands of
/// [`ServerHandle`], as futures that never block an executor thread.
/// Dropping it stops the server.
#[cfg(feature = "async")]
pub struct AsyncServerHandle<M: StateMachine>
where
    ServerHost<M>: Service<Command = HostCommand<M>>,
{
    running: Running<M>,
}

#[cfg(feature = "async")]
impl<M: StateMachine> AsyncServerHandle<M>
where
    ServerHost<M>: Service<Command = HostCommand<M>>,
{
    /// A server named `name` on a reactor thread of its own. This starts
    /// a thread and waits for it briefly, but never on the network.
    pub fn start(name: &str, actions: M::Actions) -> Result<Self, HostError> {
        ServerHandle::start(name, actions).map(ServerHandle::into_async)
    }

    /// A server on a shared reactor: one thread may run many.
    pub fn on(
        reactor: &Arc<Reactor<ServerHost<M>>>,
        host: ServerHost<M>,
    ) -> Result<Self, HostError> {
        ServerHandle::on(reactor, host).map(ServerHandle::into_async)
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> HostCommand<M>) -> Result<T, HostError> {
        // The reactor answers every command; a closed channel means it
        // stopped.
        self.running
            .ask(make)?
            .into_recv_async()
            .await
            .map_err(|_| HostError::Stopped)
    }

    /// BIND: accept clients on `endpoint`; the port for tcp, else 0.
    pub async fn bind(&self, endpoint: &str) -> Result<i32, HostError> {
        let endpoint = endpoint.to_owned();
        self.ask(|tx| HostCommand::Bind(endpoint, tx)).await?
    }

    /// PORT: the port of the last bind (-1 after a failed one).
    pub async fn port(&self) -> Result<i32, HostError> {
        self.ask(HostCommand::Port).await
    }

    /// SET `path` `value` (zproto's names; see the module's table).
    pub async fn set(&self, path: &str, value: &str) -> Result<(), HostError> {
        let (path, value) = (path.to_owned(), value.to_owned());
        self.ask(|tx| HostCommand::Set(path, value, tx)).await?
    }

    /// LOAD a ZPL config file: its settings, then its bind endpoints.
    pub async fn load(&self, file: &Path) -> Result<(), HostError> {
        let file = file.to_owned();
        self.ask(|tx| HostCommand::Load(file, tx)).await?
    }

    /// Counters.
    pub async fn stats(&self) -> Result<HostStats, HostError> {
        self.ask(HostCommand::Stats).await
    }

    /// Run `f` on the server's actions, on the reactor thread, and return
    /// what it returns.
    pub async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut M::Actions) -> T + Send + 'static,
    ) -> Result<T, HostError> {
        self.ask(with_command(f)).await
    }
}
