//! [`Node`]: the application's handle on a zgossip node, in the manner of
//! CZMQ's zgossip actor (BIND, CONNECT, ANNOUNCE, STATUS, ... and a stream of
//! deliveries), as blocking Rust methods.

use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::Duration;

use crate::node::{Settings, Stats};
use crate::reactor::{Command, Delivery, Error, Reactor, REPLY_TIMEOUT};

/// A zgossip node running on a [`Reactor`] thread. Dropping it stops the
/// node ($TERM).
#[derive(Debug)]
pub struct Node {
    reactor: Arc<Reactor>,
    id: usize,
    deliveries: Receiver<Delivery>,
}

impl Node {
    /// A node on a reactor thread of its own, with default settings.
    pub fn new(name: &str) -> Result<Self, Error> {
        let reactor = Reactor::start().map_err(|_| Error::Stopped)?;
        Self::on(&reactor, name, Settings::default())
    }

    /// A node on a shared reactor: one thread can run thousands of nodes.
    pub fn on(reactor: &Arc<Reactor>, name: &str, settings: Settings) -> Result<Self, Error> {
        let (id, deliveries) = reactor.add_node(name, settings)?;
        Ok(Self {
            reactor: reactor.clone(),
            id,
            deliveries,
        })
    }

    fn ask<T>(&self, make: impl FnOnce(mpsc::Sender<T>) -> Command) -> Result<T, Error> {
        let (tx, rx) = mpsc::channel();
        self.reactor.command(self.id, make(tx))?;
        rx.recv_timeout(REPLY_TIMEOUT).map_err(|_| Error::Stopped)
    }

    /// `BIND endpoint`: accept peers on a ROUTER socket.
    pub fn bind(&self, endpoint: &str) -> Result<(), Error> {
        self.ask(|tx| Command::Bind(endpoint.to_owned(), tx))?
    }

    /// `PORT`: the port of the last tcp bind, 0 for other transports or no
    /// bind, -1 after a failed bind.
    pub fn port(&self) -> Result<i32, Error> {
        self.ask(Command::Port)
    }

    /// `CONNECT endpoint`: open a session with another node's server.
    pub fn connect(&self, endpoint: &str) -> Result<(), Error> {
        self.ask(|tx| Command::Connect(endpoint.to_owned(), tx))?
    }

    /// `ANNOUNCE endpoint service` (CZMQ: `PUBLISH key value`).
    pub fn announce(&self, endpoint: &str, service: &str) -> Result<(), Error> {
        self.reactor.command(
            self.id,
            Command::Announce(endpoint.to_owned(), service.to_owned()),
        )
    }

    /// `SET path value`, e.g. `server/timeout` in milliseconds.
    pub fn set(&self, path: &str, value: &str) -> Result<(), Error> {
        self.ask(|tx| Command::Set(path.to_owned(), value.to_owned(), tx))?
    }

    /// `VERBOSE`: log every state, event and action of the server sessions.
    pub fn verbose(&self) -> Result<(), Error> {
        self.reactor.command(self.id, Command::Verbose)
    }

    /// `STATUS`: how many tuples the node knows.
    pub fn status(&self) -> Result<usize, Error> {
        self.ask(Command::Status)
    }

    /// Every tuple the node knows, sorted.
    pub fn tuples(&self) -> Result<Vec<(String, String)>, Error> {
        self.ask(Command::Tuples)
    }

    /// Message counters.
    pub fn stats(&self) -> Result<Stats, Error> {
        self.ask(Command::Stats)
    }

    /// The next tuple new to this node (`DELIVER endpoint service`), waiting
    /// at most `timeout`.
    pub fn recv_delivery(&self, timeout: Duration) -> Option<Delivery> {
        self.deliveries.recv_timeout(timeout).ok()
    }

    /// Deliveries already waiting.
    pub fn try_deliveries(&self) -> impl Iterator<Item = Delivery> + '_ {
        self.deliveries.try_iter()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.reactor.command(self.id, Command::Term);
    }
}
