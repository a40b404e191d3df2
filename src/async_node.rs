//! [`AsyncNode`]: a [`Node`] for async code. Its commands are futures that
//! the reactor thread completes, so none blocks an executor thread, and
//! its deliveries and peer events are streams; no executor is chosen for
//! the application.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use crate::api::{Command, Delivery, Error, Metrics, Node, Probe, Security};
use crate::node::{Peer, Stats};

/// A zgossip node running on a reactor thread, for async code: the
/// commands of [`Node`] that wait for the node's answer are `async` here;
/// the others ([`AsyncNode::announce`], [`AsyncNode::verbose`]) never
/// wait. Dropping it stops the node.
#[derive(Debug)]
pub struct AsyncNode {
    node: Node,
}

impl From<Node> for AsyncNode {
    fn from(node: Node) -> Self {
        Self { node }
    }
}

impl AsyncNode {
    /// A node on a reactor thread of its own, with default settings. This
    /// starts a thread and waits for it briefly, but never on the network.
    pub fn new(name: &str) -> Result<Self, Error> {
        Node::new(name).map(Self::from)
    }

    async fn ask<T>(&self, make: impl FnOnce(flume::Sender<T>) -> Command) -> Result<T, Error> {
        let (tx, rx) = flume::bounded(1);
        self.node.command(make(tx))?;
        // The reactor answers every command; a closed channel means it
        // stopped.
        rx.into_recv_async().await.map_err(|_| Error::Stopped)
    }

    /// The random id this node's tuples carry ([`Node::origin`]).
    pub fn origin(&self) -> u64 {
        self.node.origin()
    }

    /// A handle that reads this node's metrics from any thread.
    pub fn probe(&self) -> Probe {
        self.node.probe()
    }

    /// Counters and gauges, for metrics.
    pub async fn metrics(&self) -> Result<Metrics, Error> {
        let mut metrics = self.ask(Command::Metrics).await?;
        metrics.reactor = self.node.reactor_rounds();
        Ok(metrics)
    }

    /// `BIND endpoint` ([`Node::bind`]).
    pub async fn bind(&self, endpoint: &str) -> Result<(), Error> {
        let endpoint = endpoint.to_owned();
        self.ask(|tx| Command::Bind(endpoint, tx)).await?
    }

    /// `PORT` ([`Node::port`]).
    pub async fn port(&self) -> Result<i32, Error> {
        self.ask(Command::Port).await
    }

    /// CURVE from the next BIND on ([`Node::secure`]).
    pub async fn secure(&self, security: Security) -> Result<(), Error> {
        self.ask(|tx| Command::Secure(Box::new(security), tx))
            .await?
    }

    /// `ZAP DOMAIN domain` ([`Node::zap_domain`]).
    pub async fn zap_domain(&self, domain: &str) -> Result<(), Error> {
        let domain = domain.to_owned();
        self.ask(|tx| Command::ZapDomain(domain, tx)).await?
    }

    /// `CONNECT endpoint` ([`Node::connect`]).
    pub async fn connect(&self, endpoint: &str) -> Result<(), Error> {
        crate::api::warn_if_unresolvable(endpoint);
        let endpoint = endpoint.to_owned();
        self.ask(|tx| Command::Connect(endpoint, tx)).await?
    }

    /// `CONNECT endpoint key` over CURVE ([`Node::connect_curve`]).
    pub async fn connect_curve(&self, endpoint: &str, server_key: &str) -> Result<(), Error> {
        crate::api::warn_if_unresolvable(endpoint);
        let (endpoint, key) = (endpoint.to_owned(), server_key.to_owned());
        self.ask(|tx| Command::ConnectCurve(endpoint, key, tx))
            .await?
    }

    /// `ANNOUNCE endpoint service` ([`Node::announce`]); never waits.
    pub fn announce(&self, endpoint: &str, service: &str) -> Result<(), Error> {
        self.node.announce(endpoint, service)
    }

    /// `UNPUBLISH endpoint` ([`Node::unpublish`]).
    pub async fn unpublish(&self, endpoint: &str) -> Result<(), Error> {
        let endpoint = endpoint.to_owned();
        self.ask(|tx| Command::Unpublish(endpoint, tx)).await?
    }

    /// `SET path value` ([`Node::set`]).
    pub async fn set(&self, path: &str, value: &str) -> Result<(), Error> {
        let (path, value) = (path.to_owned(), value.to_owned());
        let settings = self.ask(|tx| Command::Set(path, value, tx)).await??;
        self.node.remember_limits(settings.limits);
        Ok(())
    }

    /// `VERBOSE`; never waits.
    pub fn verbose(&self) -> Result<(), Error> {
        self.node.verbose()
    }

    /// `STATUS`: how many tuples the node knows.
    pub async fn status(&self) -> Result<usize, Error> {
        self.ask(Command::Status).await
    }

    /// Every tuple the node knows, sorted.
    pub async fn tuples(&self) -> Result<Vec<(String, String)>, Error> {
        self.ask(Command::Tuples).await
    }

    /// Every peer, with its state and whether it is up.
    pub async fn peers(&self) -> Result<Vec<Peer>, Error> {
        self.ask(Command::Peers).await
    }

    /// Message counters.
    pub async fn stats(&self) -> Result<Stats, Error> {
        self.ask(Command::Stats).await
    }

    /// The next delivery (`DELIVER` a new tuple, or a removal); `None`
    /// once the node stopped. Dropping the future loses nothing.
    pub async fn recv_delivery(&self) -> Option<Delivery> {
        let (deliveries, waiting) = self.node.delivery_queue();
        let delivery = deliveries.recv_async().await.ok()?;
        waiting.fetch_sub(1, Ordering::Relaxed);
        Some(delivery)
    }

    /// The deliveries, as a stream that ends when the node stops.
    pub fn deliveries(&self) -> Counted<'_, Delivery> {
        let (deliveries, waiting) = self.node.delivery_queue();
        Counted {
            stream: deliveries.stream(),
            waiting,
        }
    }

    /// The peers that go up or down, as a stream that ends when the node
    /// stops.
    pub fn peer_events(&self) -> Counted<'_, Peer> {
        let (events, waiting) = self.node.peer_event_queue();
        Counted {
            stream: events.stream(),
            waiting,
        }
    }
}

/// A node's deliveries or peer events as a
/// [`Stream`](futures_core::Stream), counting off what it yields from the
/// node's bounded queue.
pub struct Counted<'a, T> {
    stream: flume::r#async::RecvStream<'a, T>,
    waiting: &'a AtomicUsize,
}

impl<T> std::fmt::Debug for Counted<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counted")
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<T> futures_core::Stream for Counted<'_, T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let polled = Pin::new(&mut self.stream).poll_next(cx);
        if let Poll::Ready(Some(_)) = &polled {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
        polled
    }
}
