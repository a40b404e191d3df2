//! [`Node`]: the application's handle on a zgossip node, in the manner of
//! CZMQ's zgossip actor (BIND, CONNECT, ANNOUNCE, STATUS, ... and a stream of
//! deliveries), as blocking Rust methods. The node runs as a
//! [`zproto_runtime::reactor::Service`] on a reactor thread, which may run
//! thousands of them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use flume::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zproto_runtime::reactor::{
    self, Outgoing, Refused, RefusedReason, Service, SocketError, SocketOptions, Sockets,
};

use crate::node::{AnnounceError, NodeCore, Output, Peer, RemoteId, SettingError, Settings, Stats};
use crate::tuples::Interner;

/// A reactor thread running zgossip nodes.
pub type Reactor = reactor::Reactor<GossipService>;

/// Deliveries waiting for the application, at most. An application that
/// does not read them (or a stdout nobody drains) costs no more than this;
/// further deliveries are dropped and counted (`Stats::deliveries_dropped`),
/// and the tuples stay in [`Node::tuples`].
pub const DELIVERY_QUEUE: usize = 100_000;

/// Peer events ([`Node::recv_peer_event`]) waiting for the application, at
/// most; more are dropped (a peer that flaps cannot grow the queue).
pub const PEER_EVENT_QUEUE: usize = 1024;

/// How long to wait for the reactor's answer to a command.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// A tuple newly learned by a node, or one it no longer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Endpoint (tuple key).
    pub endpoint: String,
    /// Service (tuple value): the new one, or the one removed.
    pub service: String,
    /// The tuple was removed (UNPUBLISH somewhere) or expired.
    pub removed: bool,
}

/// Why a command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// BIND failed.
    #[error("could not bind to '{endpoint}': {reason}")]
    Bind {
        /// The endpoint.
        endpoint: String,
        /// libzmq's reason.
        reason: String,
    },
    /// CONNECT failed.
    #[error("bad zgossip endpoint '{endpoint}': {reason}")]
    Connect {
        /// The endpoint.
        endpoint: String,
        /// libzmq's reason.
        reason: String,
    },
    /// SET failed.
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// ANNOUNCE was refused.
    #[error(transparent)]
    Announce(#[from] AnnounceError),
    /// The reactor thread is gone.
    #[error("the zgossip reactor has stopped")]
    Stopped,
    /// CURVE could not be set up.
    #[error("security: {0}")]
    Security(String),
}

/// CURVE for a node ([`Node::secure`]).
#[derive(Debug, Clone)]
pub struct Security {
    /// Our certificate, with its secret key.
    pub cert: crate::cert::Certificate,
    /// The public keys (Z85) of the peers allowed to connect; `None`: any
    /// peer that completes the CURVE handshake, so knows our public key
    /// (what CZMQ's draft `SET PUBLICKEY`/`SECRETKEY` give without an
    /// allow-list: encryption and our identity, no client authentication).
    pub allowed: Option<Vec<String>>,
    /// The ZAP domain (CZMQ's draft `ZAP DOMAIN`); `None`: one of our own,
    /// per node.
    pub domain: Option<String>,
}

impl From<SocketError> for Error {
    fn from(e: SocketError) -> Self {
        match e {
            SocketError::Bind { endpoint, reason } => Error::Bind { endpoint, reason },
            SocketError::Connect { endpoint, reason } => Error::Connect { endpoint, reason },
        }
    }
}

impl From<reactor::Stopped> for Error {
    fn from(_: reactor::Stopped) -> Self {
        Error::Stopped
    }
}

/// Whether a SET path is one of CZMQ's draft key settings.
fn is_key_path(path: &str) -> bool {
    path.eq_ignore_ascii_case("PUBLICKEY") || path.eq_ignore_ascii_case("SECRETKEY")
}

/// A request to a node, with where to answer.
#[derive(Debug)]
pub enum Command {
    /// BIND.
    Bind(String, Sender<Result<(), Error>>),
    /// CONNECT.
    Connect(String, Sender<Result<(), Error>>),
    /// CURVE: our certificate and who may connect (see [`Node::secure`]).
    Secure(Box<Security>, Sender<Result<(), Error>>),
    /// ZAP DOMAIN (CZMQ's draft API).
    ZapDomain(String, Sender<Result<(), Error>>),
    /// CONNECT over CURVE, to a server with this public key.
    ConnectCurve(String, String, Sender<Result<(), Error>>),
    /// ANNOUNCE (checked by the handle already).
    Announce(String, String),
    /// UNPUBLISH.
    Unpublish(String, Sender<Result<(), Error>>),
    /// SET.
    Set(String, String, Sender<Result<Settings, Error>>),
    /// VERBOSE.
    Verbose,
    /// PORT.
    Port(Sender<i32>),
    /// STATUS.
    Status(Sender<usize>),
    /// Every tuple.
    Tuples(Sender<Vec<(String, String)>>),
    /// Every peer.
    Peers(Sender<Vec<Peer>>),
    /// Counters.
    Stats(Sender<Stats>),
    /// Counters and gauges for metrics.
    Metrics(Sender<Metrics>),
}

/// What a node's metrics show ([`Node::metrics`], `--metrics`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// The counters of STATS.
    pub stats: Stats,
    /// Live server sessions by state (the model's state names).
    pub sessions_by_state: Vec<(&'static str, u64)>,
    /// Remotes whose last generation is complete.
    pub remotes_synced: u64,
    /// Remotes sending a generation or waiting to.
    pub remotes_synchronising: u64,
    /// Deliveries waiting for the application.
    pub deliveries_waiting: u64,
    /// The reactor thread's rounds (shared by every node on it).
    pub reactor: zproto_runtime::reactor::Rounds,
}

/// Reads a node's metrics from any thread ([`Node::probe`]).
#[derive(Debug, Clone)]
pub struct Probe {
    reactor: Arc<Reactor>,
    id: reactor::ServiceId,
}

impl Probe {
    /// The node's counters and gauges, and its reactor's rounds.
    pub fn metrics(&self) -> Result<Metrics, Error> {
        let mut metrics = ask(&self.reactor, self.id, Command::Metrics)?;
        metrics.reactor = self.reactor.rounds();
        Ok(metrics)
    }
}

fn ask<T>(
    reactor: &Reactor,
    id: reactor::ServiceId,
    make: impl FnOnce(Sender<T>) -> Command,
) -> Result<T, Error> {
    let (tx, rx) = flume::bounded(1);
    reactor.command(id, make(tx))?;
    rx.recv_timeout(REPLY_TIMEOUT).map_err(|_| Error::Stopped)
}

/// A zgossip node as a reactor service: the [`NodeCore`], and where its
/// deliveries go.
#[derive(Debug)]
pub struct GossipService {
    core: NodeCore,
    deliveries: Sender<Delivery>,
    /// Deliveries sent and not yet received, shared with the [`Node`]: a
    /// bounded queue that allocates only what it holds (a `sync_channel`
    /// would allocate its whole capacity for every node).
    waiting: Arc<AtomicUsize>,
    deliveries_dropped: u64,
    /// Our CURVE certificate, once [`Node::secure`] set it.
    cert: Option<crate::cert::Certificate>,
    /// The security last applied, to apply again in another ZAP domain.
    security: Option<Security>,
    /// `SET PUBLICKEY` and `SET SECRETKEY`, as given so far.
    keys: (Option<String>, Option<String>),
    /// `ZAP DOMAIN`.
    zap_domain: Option<String>,
    /// Peers that went up or down, and how many wait (as deliveries).
    peer_events: Sender<Peer>,
    peer_events_waiting: Arc<AtomicUsize>,
    /// The node's remote on each of the reactor's remote sockets, by
    /// socket index, and the socket of each remote, by remote.
    remote_of_socket: Vec<Option<RemoteId>>,
    socket_of_remote: Vec<usize>,
}

impl GossipService {
    /// A remote connected on reactor socket `socket`.
    fn connected(&mut self, endpoint: &str, socket: usize, now: Instant) {
        let remote = self.core.connect(endpoint, now);
        if self.remote_of_socket.len() <= socket {
            self.remote_of_socket.resize(socket + 1, None);
        }
        self.remote_of_socket[socket] = Some(remote);
        if self.socket_of_remote.len() <= remote.index() {
            self.socket_of_remote.resize(remote.index() + 1, usize::MAX);
        }
        self.socket_of_remote[remote.index()] = socket;
    }

    /// CURVE with `security`, from the next BIND and CONNECT on.
    fn secure(&mut self, sockets: &mut Sockets, security: Security) -> Result<(), Error> {
        // One ZAP domain per node unless told: a process may host many.
        static DOMAINS: AtomicUsize = AtomicUsize::new(0);
        let domain = security
            .domain
            .clone()
            .or_else(|| self.zap_domain.clone())
            .unwrap_or_else(|| format!("zgossip-{}", DOMAINS.fetch_add(1, Ordering::Relaxed)));
        let policy = match security.allowed.clone() {
            Some(allowed) => zproto_runtime::zap::Policy::Curve(allowed.into_iter().collect()),
            None => zproto_runtime::zap::Policy::CurveAny,
        };
        zproto_runtime::zap::install(&domain, policy)
            .map_err(|e| Error::Security(e.to_string()))?;
        let secret_key = security
            .cert
            .secret
            .clone()
            .ok_or_else(|| Error::Security("the certificate has no secret key".into()))?;
        sockets.set_security(reactor::Security::Curve { domain, secret_key });
        self.cert = Some(security.cert.clone());
        self.security = Some(security);
        Ok(())
    }

    /// `SET PUBLICKEY key` / `SET SECRETKEY key` (CZMQ's draft API): once
    /// both are set, CURVE as that key pair, any client admitted (no
    /// allow-list: see [`Security::allowed`]).
    fn set_key(&mut self, sockets: &mut Sockets, path: &str, key: &str) -> Result<(), Error> {
        let key = key.trim();
        if key.len() != 40 || zmq::z85_decode(key).map_or(true, |k| k.len() != 32) {
            return Err(Error::Security(format!(
                "{path}: a CURVE key is 40 characters of Z85"
            )));
        }
        if path.eq_ignore_ascii_case("PUBLICKEY") {
            self.keys.0 = Some(key.to_owned());
        } else {
            self.keys.1 = Some(key.to_owned());
        }
        let (Some(public), Some(secret)) = self.keys.clone() else {
            return Ok(());
        };
        let cert = crate::cert::Certificate {
            public,
            secret: Some(secret),
        };
        self.secure(
            sockets,
            Security {
                cert,
                allowed: None,
                domain: None,
            },
        )
    }

    fn stats(&self) -> Stats {
        Stats {
            deliveries_dropped: self.deliveries_dropped,
            ..self.core.stats()
        }
    }
}

impl Service for GossipService {
    type Command = Command;

    fn command(&mut self, command: Command, sockets: &mut Sockets, now: Instant) {
        // Replies go to a caller that may have given up waiting: ignore that.
        match command {
            Command::Bind(endpoint, reply) => {
                sockets.set_options(socket_options(&self.core.settings()));
                let result = sockets.bind(&endpoint).map_err(Error::from);
                if let Err(e) = &result {
                    tracing::warn!(node = %self.core.name(), "{e}");
                }
                let _ = reply.send(result);
            }
            Command::Secure(security, reply) => {
                let result = self.secure(sockets, *security);
                let _ = reply.send(result);
            }
            Command::ZapDomain(domain, reply) => {
                self.zap_domain = Some(domain);
                // Already secured: from the next BIND on, in this domain.
                let result = match self.security.clone() {
                    Some(security) => self.secure(sockets, security),
                    None => Ok(()),
                };
                let _ = reply.send(result);
            }
            Command::ConnectCurve(endpoint, server_key, reply) => {
                let keys = self.cert.as_ref().and_then(|cert| {
                    Some(reactor::CurveClient {
                        server_key,
                        public_key: cert.public.clone(),
                        secret_key: cert.secret.clone()?,
                    })
                });
                let result = match keys {
                    None => Err(Error::Security(
                        "CURVE connect needs our certificate first (Node::secure)".into(),
                    )),
                    Some(keys) => {
                        sockets.set_options(socket_options(&self.core.settings()));
                        sockets.set_curve_client(Some(keys));
                        let connected = sockets.connect(&endpoint).map_err(Error::from);
                        sockets.set_curve_client(None);
                        connected.map(|socket| self.connected(&endpoint, socket, now))
                    }
                };
                let _ = reply.send(result);
            }
            Command::Connect(endpoint, reply) => {
                sockets.set_options(socket_options(&self.core.settings()));
                let result = sockets
                    .connect(&endpoint)
                    .map_err(Error::from)
                    .map(|socket| self.connected(&endpoint, socket, now));
                if let Err(e) = &result {
                    tracing::warn!(node = %self.core.name(), "{e}");
                }
                let _ = reply.send(result);
            }
            Command::Announce(endpoint, service) => {
                // What the handle could not check: the table's limit
                // (counted and logged by the node).
                let _ = self.core.announce(&endpoint, &service, now);
            }
            Command::Unpublish(endpoint, reply) => {
                let result = self.core.unpublish(&endpoint, now);
                let _ = reply.send(result.map_err(Error::from));
            }
            Command::Set(path, value, reply) if is_key_path(&path) => {
                let result = self
                    .set_key(sockets, &path, &value)
                    .map(|()| self.core.settings());
                let _ = reply.send(result);
            }
            Command::Set(path, value, reply) => {
                let result = self.core.set(&path, &value).map(|()| self.core.settings());
                let _ = reply.send(result.map_err(Error::from));
            }
            Command::Verbose => self.core.set_verbose(true),
            Command::Port(reply) => {
                let _ = reply.send(sockets.port());
            }
            Command::Status(reply) => {
                let _ = reply.send(self.core.tuples().len());
            }
            Command::Peers(reply) => {
                let _ = reply.send(self.core.peers(now));
            }
            Command::Tuples(reply) => {
                let mut tuples: Vec<(String, String)> = self
                    .core
                    .tuples()
                    .to_vec()
                    .into_iter()
                    .map(|(e, s)| (e.to_string(), s.to_string()))
                    .collect();
                tuples.sort();
                let _ = reply.send(tuples);
            }
            Command::Stats(reply) => {
                let _ = reply.send(self.stats());
            }
            Command::Metrics(reply) => {
                let (remotes_synced, remotes_synchronising) = self.core.remotes_by_state();
                let _ = reply.send(Metrics {
                    stats: self.stats(),
                    sessions_by_state: self.core.sessions_by_state(),
                    remotes_synced,
                    remotes_synchronising,
                    deliveries_waiting: self.waiting.load(Ordering::Relaxed) as u64,
                    reactor: Default::default(),
                });
            }
        }
    }

    fn on_peer(&mut self, frames: &[&[u8]], now: Instant) {
        self.core.on_peer_frames(frames, now);
    }

    fn on_peer_connected(&mut self, routing_id: &[u8], _now: Instant) {
        self.core.on_peer_connected(routing_id);
    }

    fn on_peer_disconnected(&mut self, routing_id: &[u8], _now: Instant) {
        self.core.on_peer_disconnected(routing_id);
    }

    fn on_remote(&mut self, socket: usize, frames: &[&[u8]], _sockets: &mut Sockets, now: Instant) {
        if let Some(Some(remote)) = self.remote_of_socket.get(socket) {
            self.core.on_remote_frames(*remote, frames, now);
        }
    }

    fn on_remote_reconnected(&mut self, socket: usize, now: Instant) {
        if let Some(Some(remote)) = self.remote_of_socket.get(socket) {
            self.core.on_remote_reconnected(*remote, now);
        }
    }

    fn tick(&mut self, _sockets: &mut Sockets, now: Instant) {
        self.core.tick(now);
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.core.next_deadline()
    }

    fn drain_outgoing(&mut self, send: &mut dyn FnMut(Outgoing) -> Result<(), Refused>) {
        // Refusals are rare (a full queue, a peer gone): handled after the
        // drain, which borrows the node.
        let mut refused = Vec::new();
        // Queue a delivery for the application, unless its queue is full.
        let (waiting, deliveries, dropped) = (
            &self.waiting,
            &self.deliveries,
            &mut self.deliveries_dropped,
        );
        let mut deliver = |delivery: Delivery| {
            if waiting.load(Ordering::Relaxed) >= DELIVERY_QUEUE {
                *dropped += 1;
            } else if deliveries.send(delivery).is_ok() {
                waiting.fetch_add(1, Ordering::Relaxed);
            }
            // (An error: the application dropped its receiver.)
        };
        let socket_of_remote = &self.socket_of_remote;
        for output in self.core.drain_outputs() {
            let result = match output {
                Output::ToPeer(frames) => send(Outgoing::ToPeer(frames)),
                Output::ToRemote { remote, frames } => match socket_of_remote.get(remote.index()) {
                    Some(&socket) => send(Outgoing::ToRemote {
                        remote: socket,
                        frames,
                    }),
                    None => Ok(()),
                },
                Output::Deliver { endpoint, service } => {
                    deliver(Delivery {
                        endpoint,
                        service,
                        removed: false,
                    });
                    Ok(())
                }
                Output::Remove {
                    endpoint, service, ..
                } => {
                    deliver(Delivery {
                        endpoint,
                        service,
                        removed: true,
                    });
                    Ok(())
                }
                Output::Peer(peer) => {
                    if self.peer_events_waiting.load(Ordering::Relaxed) < PEER_EVENT_QUEUE
                        && self.peer_events.send(peer).is_ok()
                    {
                        self.peer_events_waiting.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                }
            };
            if let Err(r) = result {
                refused.push(r);
            }
        }
        self.core.trim_outputs();
        if refused.is_empty() {
            return;
        }
        let remote_of_socket = &self.remote_of_socket;
        let refused = refused
            .into_iter()
            .filter_map(|Refused { reason, outgoing }| {
                let output = match outgoing {
                    Outgoing::ToPeer(frames) => Output::ToPeer(frames),
                    Outgoing::ToRemote {
                        remote: socket,
                        frames,
                    } => Output::ToRemote {
                        remote: (*remote_of_socket.get(socket)?)?,
                        frames,
                    },
                };
                Some((output, reason == RefusedReason::Unreachable))
            });
        self.core.on_refused(refused, Instant::now());
        // What the refusals caused (a session's replay set back) goes out
        // on the next round.
    }
}

pub use crate::node::RECONNECT_MAX;

/// The socket options a node's settings ask for.
pub fn socket_options(settings: &Settings) -> SocketOptions {
    let limits = settings.limits;
    SocketOptions {
        send_hwm: i32::try_from(limits.hwm).unwrap_or(i32::MAX),
        receive_hwm: i32::try_from(limits.hwm).unwrap_or(i32::MAX),
        max_message: limits.max_message(),
        // Four heartbeats per timeout: one lost or late is no reason to drop
        // a connection.
        heartbeat: settings.timeout / 4,
        heartbeat_timeout: settings.timeout,
        // A remote whose server is down retries after 0.1, 0.2, 0.4 ... s,
        // then every 5 s, rather than ten times a second for ever.
        reconnect_max: RECONNECT_MAX,
    }
}

/// Warn about a tcp endpoint whose host does not resolve now (libzmq
/// accepts it without a word and keeps retrying, which may be right: the
/// name may resolve later). Called on the caller's thread, never the
/// reactor's: a name lookup may block for seconds.
pub(crate) fn warn_if_unresolvable(endpoint: &str) {
    let Some(address) = endpoint.strip_prefix("tcp://") else {
        return;
    };
    // A connect may name a source first: "tcp://source;host:port".
    let address = address.rsplit(';').next().unwrap_or(address);
    let Some((host, port)) = address.rsplit_once(':') else {
        return;
    };
    if port.parse::<u16>().is_err() {
        return;
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let resolves = host.parse::<std::net::IpAddr>().is_ok()
        || std::net::ToSocketAddrs::to_socket_addrs(&(host, 0))
            .is_ok_and(|mut a| a.next().is_some());
    if !resolves {
        tracing::warn!(
            "host \"{}\" of '{}' does not resolve now; libzmq will keep trying",
            crate::text::Escaped(host),
            crate::text::Escaped(endpoint)
        );
    }
}

/// A zgossip node running on a reactor thread. Dropping it stops the node
/// (`$TERM`).
#[derive(Debug)]
pub struct Node {
    reactor: Arc<Reactor>,
    id: reactor::ServiceId,
    deliveries: Receiver<Delivery>,
    waiting: Arc<AtomicUsize>,
    peer_events: Receiver<Peer>,
    peer_events_waiting: Arc<AtomicUsize>,
    /// The node's limits as last set, to check ANNOUNCE without a round
    /// trip to the reactor.
    limits: std::sync::Mutex<crate::Limits>,
    /// The random id the node's tuples carry.
    origin: u64,
}

impl Node {
    /// A node on a reactor thread of its own, with default settings.
    pub fn new(name: &str) -> Result<Self, Error> {
        let reactor = Reactor::start().map_err(|_| Error::Stopped)?;
        Self::on(&reactor, name, Settings::default())
    }

    /// A node on a shared reactor: one thread can run thousands of nodes.
    /// Its tuple strings go to an interner of its own.
    pub fn on(reactor: &Arc<Reactor>, name: &str, settings: Settings) -> Result<Self, Error> {
        Self::on_sharing(reactor, name, settings, Interner::new())
    }

    /// A node on a shared reactor whose tuple strings go to `interner`:
    /// nodes that share one (a swarm in one process) hold one copy of each
    /// endpoint and service.
    pub fn on_sharing(
        reactor: &Arc<Reactor>,
        name: &str,
        settings: Settings,
        interner: Interner,
    ) -> Result<Self, Error> {
        let (tx, deliveries) = flume::unbounded();
        let waiting = Arc::new(AtomicUsize::new(0));
        let (peer_tx, peer_events) = flume::unbounded();
        let peer_events_waiting = Arc::new(AtomicUsize::new(0));
        let limits = std::sync::Mutex::new(settings.limits);
        let core = NodeCore::with_interner(name, settings, interner);
        let origin = core.origin();
        let service = GossipService {
            core,
            deliveries: tx,
            waiting: waiting.clone(),
            deliveries_dropped: 0,
            cert: None,
            security: None,
            keys: (None, None),
            zap_domain: None,
            peer_events: peer_tx,
            peer_events_waiting: peer_events_waiting.clone(),
            remote_of_socket: Vec::new(),
            socket_of_remote: Vec::new(),
        };
        let id = reactor.add(service)?;
        Ok(Self {
            reactor: reactor.clone(),
            id,
            deliveries,
            waiting,
            peer_events,
            peer_events_waiting,
            limits,
            origin,
        })
    }

    /// The random id this node's tuples carry (their origin): when two
    /// nodes keep writing one endpoint, the higher origin keeps it.
    pub fn origin(&self) -> u64 {
        self.origin
    }

    fn ask<T>(&self, make: impl FnOnce(Sender<T>) -> Command) -> Result<T, Error> {
        ask(&self.reactor, self.id, make)
    }

    /// Pass `command` to the node, waiting for nothing.
    pub(crate) fn command(&self, command: Command) -> Result<(), Error> {
        Ok(self.reactor.command(self.id, command)?)
    }

    /// The rounds of the node's reactor thread.
    #[cfg(feature = "async")]
    pub(crate) fn reactor_rounds(&self) -> zproto_runtime::reactor::Rounds {
        self.reactor.rounds()
    }

    /// Keep the limits a SET left, to check ANNOUNCE without a round trip.
    pub(crate) fn remember_limits(&self, limits: crate::Limits) {
        if let Ok(mut kept) = self.limits.lock() {
            *kept = limits;
        }
    }

    /// The deliveries, and how many wait.
    #[cfg(feature = "async")]
    pub(crate) fn delivery_queue(&self) -> (&Receiver<Delivery>, &AtomicUsize) {
        (&self.deliveries, &self.waiting)
    }

    /// The peer events, and how many wait.
    #[cfg(feature = "async")]
    pub(crate) fn peer_event_queue(&self) -> (&Receiver<Peer>, &AtomicUsize) {
        (&self.peer_events, &self.peer_events_waiting)
    }

    /// Counters and gauges, for metrics.
    pub fn metrics(&self) -> Result<Metrics, Error> {
        self.probe().metrics()
    }

    /// A handle that reads this node's metrics from any thread (an HTTP
    /// server's, say) while the node lives.
    pub fn probe(&self) -> Probe {
        Probe {
            reactor: self.reactor.clone(),
            id: self.id,
        }
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

    /// CURVE: from the next BIND on, our ROUTER is a CURVE server with
    /// `security.cert` and admits only peers whose public key is in
    /// `security.allowed` (every other is refused in the handshake, before
    /// any message); [`Node::connect_curve`] uses the same certificate as a
    /// client. CZMQ 4.2 peers speak NULL: they cannot connect to a secured
    /// node, and a node speaks NULL to them through [`Node::connect`].
    pub fn secure(&self, security: Security) -> Result<(), Error> {
        self.ask(|tx| Command::Secure(Box::new(security), tx))?
    }

    /// `ZAP DOMAIN domain` (CZMQ's draft API): the ZAP domain of our CURVE
    /// server, from the next BIND on.
    pub fn zap_domain(&self, domain: &str) -> Result<(), Error> {
        self.ask(|tx| Command::ZapDomain(domain.to_owned(), tx))?
    }

    /// `CONNECT endpoint key`: a session with another node's CURVE server,
    /// whose public key (Z85) is `server_key`, as our certificate.
    pub fn connect_curve(&self, endpoint: &str, server_key: &str) -> Result<(), Error> {
        warn_if_unresolvable(endpoint);
        self.ask(|tx| Command::ConnectCurve(endpoint.to_owned(), server_key.to_owned(), tx))?
    }

    /// `CONNECT endpoint`: open a session with another node's server.
    pub fn connect(&self, endpoint: &str) -> Result<(), Error> {
        warn_if_unresolvable(endpoint);
        self.ask(|tx| Command::Connect(endpoint.to_owned(), tx))?
    }

    /// `ANNOUNCE endpoint service` (CZMQ: `PUBLISH key value`). Refused at
    /// once if the endpoint cannot be sent (1 to 255 bytes) or the service
    /// is over `limits/service`. A new endpoint beyond `limits/tuples` is
    /// refused by the node, which logs and counts it (`refused_tuples`).
    pub fn announce(&self, endpoint: &str, service: &str) -> Result<(), Error> {
        let limits = self.limits.lock().map(|l| *l).unwrap_or_default();
        crate::node::check_tuple(endpoint, service, &limits)?;
        Ok(self.reactor.command(
            self.id,
            Command::Announce(endpoint.to_owned(), service.to_owned()),
        )?)
    }

    /// `UNPUBLISH endpoint` (CZMQ's draft name): remove a tuple from every
    /// node (docs/zgossip.md, "Tuple lifecycle"). Nodes that take versioned tuples
    /// receive a tombstone that keeps stale copies out; CZMQ peers keep
    /// their copy. An error if the node holds no live tuple there.
    pub fn unpublish(&self, endpoint: &str) -> Result<(), Error> {
        self.ask(|tx| Command::Unpublish(endpoint.to_owned(), tx))?
    }

    /// `SET path value`, e.g. `server/timeout` in milliseconds.
    pub fn set(&self, path: &str, value: &str) -> Result<(), Error> {
        let settings = self.ask(|tx| Command::Set(path.to_owned(), value.to_owned(), tx))??;
        self.remember_limits(settings.limits);
        Ok(())
    }

    /// `VERBOSE`: log every state, event and action of the server sessions.
    pub fn verbose(&self) -> Result<(), Error> {
        self.command(Command::Verbose)
    }

    /// `STATUS`: how many tuples the node knows.
    pub fn status(&self) -> Result<usize, Error> {
        self.ask(Command::Status)
    }

    /// Every tuple the node knows, sorted.
    pub fn tuples(&self) -> Result<Vec<(String, String)>, Error> {
        self.ask(Command::Tuples)
    }

    /// Every peer: sessions of peers connected to us, then our remotes,
    /// each with its state and whether it is up.
    pub fn peers(&self) -> Result<Vec<Peer>, Error> {
        self.ask(Command::Peers)
    }

    /// Message counters.
    pub fn stats(&self) -> Result<Stats, Error> {
        self.ask(Command::Stats)
    }

    /// The next tuple new to this node (`DELIVER endpoint service`), waiting
    /// at most `timeout`.
    pub fn recv_delivery(&self, timeout: Duration) -> Option<Delivery> {
        self.recv_delivery_timeout(timeout).ok()
    }

    /// The next delivery, waiting at most `timeout`; tells a timeout from a
    /// node that has stopped.
    pub fn recv_delivery_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Delivery, mpsc::RecvTimeoutError> {
        let delivery = self.deliveries.recv_timeout(timeout).map_err(|e| match e {
            flume::RecvTimeoutError::Timeout => mpsc::RecvTimeoutError::Timeout,
            flume::RecvTimeoutError::Disconnected => mpsc::RecvTimeoutError::Disconnected,
        })?;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        Ok(delivery)
    }

    /// The next peer that went up or down (presence), waiting at most
    /// `timeout`: a session that began or ended, a remote whose server
    /// answers again or has been silent for a second.
    pub fn recv_peer_event(&self, timeout: Duration) -> Option<Peer> {
        let peer = self.peer_events.recv_timeout(timeout).ok()?;
        self.peer_events_waiting.fetch_sub(1, Ordering::Relaxed);
        Some(peer)
    }

    /// Peer events already waiting.
    pub fn try_peer_events(&self) -> impl Iterator<Item = Peer> + '_ {
        self.peer_events.try_iter().inspect(|_| {
            self.peer_events_waiting.fetch_sub(1, Ordering::Relaxed);
        })
    }

    /// Deliveries already waiting.
    pub fn try_deliveries(&self) -> impl Iterator<Item = Delivery> + '_ {
        self.deliveries.try_iter().inspect(|_| {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.reactor.remove(self.id);
    }
}
