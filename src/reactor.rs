//! The ZeroMQ driver: one thread polls the sockets of any number of nodes
//! (a ROUTER per bound node, a DEALER per remote, a monitor per tcp/ipc
//! remote) and runs their [`NodeCore`]s. Applications talk to it through
//! [`crate::Node`] handles; requests travel over a channel, and a message on
//! an inproc PULL socket wakes the poll.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::node::{NodeCore, Output, SettingError, Settings, Stats};

/// The process-wide ZeroMQ context, so that `inproc://` endpoints of all
/// reactors can reach each other.
pub fn context() -> &'static zmq::Context {
    static CONTEXT: OnceLock<zmq::Context> = OnceLock::new();
    CONTEXT.get_or_init(zmq::Context::new)
}

/// A tuple newly learned by a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Endpoint (tuple key).
    pub endpoint: String,
    /// Service (tuple value).
    pub service: String,
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
    /// The reactor thread is gone.
    #[error("the zgossip reactor has stopped")]
    Stopped,
}

/// A request to one node.
#[derive(Debug)]
pub(crate) enum Command {
    Bind(String, Sender<Result<(), Error>>),
    Connect(String, Sender<Result<(), Error>>),
    Announce(String, String),
    Set(String, String, Sender<Result<(), Error>>),
    Verbose,
    Port(Sender<i32>),
    Status(Sender<usize>),
    Tuples(Sender<Vec<(String, String)>>),
    Stats(Sender<Stats>),
    Term,
}

#[derive(Debug)]
enum Request {
    AddNode {
        name: String,
        settings: Settings,
        deliveries: Sender<Delivery>,
        reply: Sender<usize>,
    },
    Node(usize, Command),
    Shutdown,
}

/// Handle on a reactor thread; dropping the last handle (and every node on
/// it) stops the thread.
pub struct Reactor {
    requests: Sender<Request>,
    wake: Mutex<zmq::Socket>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Reactor {
    /// Start a reactor thread.
    pub fn start() -> Result<std::sync::Arc<Self>, zmq::Error> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let endpoint = format!(
            "inproc://zgossip-reactor-{}",
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let pull = context().socket(zmq::PULL)?;
        pull.bind(&endpoint)?;
        let push = context().socket(zmq::PUSH)?;
        push.set_linger(0)?;
        push.connect(&endpoint)?;
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("zgossip-reactor".into())
            .spawn(move || Loop::new(pull, rx).run())
            .map_err(|_| zmq::Error::ENOMEM)?;
        Ok(std::sync::Arc::new(Self {
            requests: tx,
            wake: Mutex::new(push),
            thread: Mutex::new(Some(thread)),
        }))
    }

    fn send(&self, request: Request) -> Result<(), Error> {
        self.requests.send(request).map_err(|_| Error::Stopped)?;
        let wake = self.wake.lock().map_err(|_| Error::Stopped)?;
        // A full pipe means a wakeup is already pending.
        match wake.send(&b""[..], zmq::DONTWAIT) {
            Ok(()) | Err(zmq::Error::EAGAIN) => Ok(()),
            Err(_) => Err(Error::Stopped),
        }
    }

    pub(crate) fn add_node(
        &self,
        name: &str,
        settings: Settings,
    ) -> Result<(usize, Receiver<Delivery>), Error> {
        let (deliveries, receiver) = mpsc::channel();
        let (reply, answer) = mpsc::channel();
        self.send(Request::AddNode {
            name: name.to_owned(),
            settings,
            deliveries,
            reply,
        })?;
        let id = answer.recv().map_err(|_| Error::Stopped)?;
        Ok((id, receiver))
    }

    pub(crate) fn command(&self, node: usize, command: Command) -> Result<(), Error> {
        self.send(Request::Node(node, command))
    }
}

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor").finish_non_exhaustive()
    }
}

impl Drop for Reactor {
    fn drop(&mut self) {
        let _ = self.send(Request::Shutdown);
        if let Some(thread) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = thread.join();
        }
    }
}

/// A node's sockets and core, on the reactor thread.
struct Hosted {
    core: NodeCore,
    router: Option<zmq::Socket>,
    port: i32,
    dealers: Vec<zmq::Socket>,
    /// Per remote: its monitor socket, for tcp and ipc endpoints.
    monitors: Vec<Option<zmq::Socket>>,
    deliveries: Sender<Delivery>,
}

/// What a poll item belongs to.
#[derive(Clone, Copy)]
enum Source {
    Wake,
    Router(usize),
    Dealer(usize, usize),
    Monitor(usize, usize),
}

/// At most this many messages are read from one socket per poll, so that a
/// busy peer cannot starve the others.
const BATCH: usize = 256;

struct Loop {
    wake: zmq::Socket,
    requests: Receiver<Request>,
    nodes: HashMap<usize, Hosted>,
    next_id: usize,
}

impl Loop {
    fn new(wake: zmq::Socket, requests: Receiver<Request>) -> Self {
        Self {
            wake,
            requests,
            nodes: HashMap::new(),
            next_id: 0,
        }
    }

    fn run(mut self) {
        loop {
            let now = Instant::now();
            let timeout = self
                .nodes
                .values()
                .filter_map(|h| h.core.next_deadline())
                .min()
                .map_or(1000, |at| {
                    at.saturating_duration_since(now).as_millis().min(1000) as i64
                });
            let (ready, sources) = match self.poll(timeout) {
                Ok(ready) => ready,
                Err(e) => {
                    tracing::error!("zgossip reactor poll failed: {e}");
                    return;
                }
            };
            let now = Instant::now();
            for (i, source) in sources.iter().enumerate() {
                if !ready[i] {
                    continue;
                }
                match *source {
                    Source::Wake => {
                        while self.wake.recv_bytes(zmq::DONTWAIT).is_ok() {}
                        if !self.serve_requests(now) {
                            return;
                        }
                    }
                    Source::Router(n) => self.read_router(n, now),
                    Source::Dealer(n, r) => self.read_dealer(n, r, now),
                    Source::Monitor(n, r) => self.read_monitor(n, r, now),
                }
            }
            let ids: Vec<usize> = self.nodes.keys().copied().collect();
            for id in ids {
                if let Some(h) = self.nodes.get_mut(&id) {
                    if h.core.next_deadline().is_some_and(|at| at <= now) {
                        h.core.tick(now);
                    }
                    flush(h);
                }
            }
        }
    }

    /// Poll every socket; returns which are readable, and what each is.
    fn poll(&self, timeout: i64) -> Result<(Vec<bool>, Vec<Source>), zmq::Error> {
        let mut sources = vec![Source::Wake];
        let mut items = vec![self.wake.as_poll_item(zmq::POLLIN)];
        for (&id, h) in &self.nodes {
            if let Some(router) = &h.router {
                items.push(router.as_poll_item(zmq::POLLIN));
                sources.push(Source::Router(id));
            }
            for (r, dealer) in h.dealers.iter().enumerate() {
                items.push(dealer.as_poll_item(zmq::POLLIN));
                sources.push(Source::Dealer(id, r));
            }
            for (r, monitor) in h.monitors.iter().enumerate() {
                if let Some(monitor) = monitor {
                    items.push(monitor.as_poll_item(zmq::POLLIN));
                    sources.push(Source::Monitor(id, r));
                }
            }
        }
        match zmq::poll(&mut items, timeout) {
            Ok(_) | Err(zmq::Error::EINTR) => {}
            Err(e) => return Err(e),
        }
        Ok((
            items.iter().map(zmq::PollItem::is_readable).collect(),
            sources,
        ))
    }

    /// Returns false on shutdown.
    fn serve_requests(&mut self, now: Instant) -> bool {
        while let Ok(request) = self.requests.try_recv() {
            match request {
                Request::Shutdown => return false,
                Request::AddNode {
                    name,
                    settings,
                    deliveries,
                    reply,
                } => {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.nodes.insert(
                        id,
                        Hosted {
                            core: NodeCore::new(name, settings),
                            router: None,
                            port: 0,
                            dealers: Vec::new(),
                            monitors: Vec::new(),
                            deliveries,
                        },
                    );
                    let _ = reply.send(id);
                }
                Request::Node(id, Command::Term) => {
                    self.nodes.remove(&id);
                }
                Request::Node(id, command) => {
                    self.command(id, command, now);
                    if let Some(h) = self.nodes.get_mut(&id) {
                        flush(h);
                    }
                }
            }
        }
        true
    }

    /// Carry out a command.
    fn command(&mut self, id: usize, command: Command, now: Instant) {
        let Some(h) = self.nodes.get_mut(&id) else {
            return;
        };
        match command {
            Command::Bind(endpoint, reply) => {
                let result = bind(h, &endpoint);
                if let Err(e) = &result {
                    tracing::warn!(node = %h.core.name(), "{e}");
                    h.port = -1;
                }
                let _ = reply.send(result);
            }
            Command::Connect(endpoint, reply) => {
                let result = connect(h, &endpoint, now);
                if let Err(e) = &result {
                    tracing::warn!(node = %h.core.name(), "{e}");
                }
                let _ = reply.send(result);
            }
            Command::Announce(endpoint, service) => h.core.announce(&endpoint, &service, now),
            Command::Set(path, value, reply) => {
                let _ = reply.send(h.core.set(&path, &value).map_err(Error::from));
            }
            Command::Verbose => h.core.set_verbose(true),
            Command::Port(reply) => {
                let _ = reply.send(h.port);
            }
            Command::Status(reply) => {
                let _ = reply.send(h.core.tuples().len());
            }
            Command::Tuples(reply) => {
                let mut tuples: Vec<(String, String)> = h
                    .core
                    .tuples()
                    .iter()
                    .map(|(e, s)| (e.to_owned(), s.to_owned()))
                    .collect();
                tuples.sort();
                let _ = reply.send(tuples);
            }
            Command::Stats(reply) => {
                let _ = reply.send(h.core.stats());
            }
            Command::Term => {}
        }
    }

    fn read_router(&mut self, id: usize, now: Instant) {
        let Some(h) = self.nodes.get_mut(&id) else {
            return;
        };
        for _ in 0..BATCH {
            let Some(router) = &h.router else { return };
            match router.recv_multipart(zmq::DONTWAIT) {
                Ok(frames) => h.core.on_peer_frames(&frames, now),
                Err(zmq::Error::EAGAIN) => break,
                Err(e) => {
                    tracing::warn!(node = %h.core.name(), "receive on ROUTER failed: {e}");
                    break;
                }
            }
        }
    }

    fn read_dealer(&mut self, id: usize, remote: usize, now: Instant) {
        let Some(h) = self.nodes.get_mut(&id) else {
            return;
        };
        for _ in 0..BATCH {
            match h.dealers[remote].recv_multipart(zmq::DONTWAIT) {
                Ok(frames) => h.core.on_remote_frames(remote, &frames, now),
                Err(zmq::Error::EAGAIN) => break,
                Err(e) => {
                    tracing::warn!(node = %h.core.name(), "receive on DEALER failed: {e}");
                    break;
                }
            }
        }
    }

    fn read_monitor(&mut self, id: usize, remote: usize, now: Instant) {
        let Some(h) = self.nodes.get_mut(&id) else {
            return;
        };
        loop {
            let Some(Some(monitor)) = h.monitors.get(remote) else {
                return;
            };
            let Ok(frames) = monitor.recv_multipart(zmq::DONTWAIT) else {
                break;
            };
            // Frame 0: event (u16, native order) and value (u32).
            let event = frames
                .first()
                .and_then(|f| f.get(0..2))
                .map(|b| u16::from_ne_bytes([b[0], b[1]]));
            if event == Some(zmq::SocketEvent::HANDSHAKE_SUCCEEDED.to_raw()) {
                h.core.on_remote_connected(remote, now);
            }
        }
    }
}

fn bind(h: &mut Hosted, endpoint: &str) -> Result<(), Error> {
    let fail = |e: zmq::Error| Error::Bind {
        endpoint: endpoint.to_owned(),
        reason: e.to_string(),
    };
    if h.router.is_none() {
        let router = context().socket(zmq::ROUTER).map_err(fail)?;
        router.set_sndhwm(0).map_err(fail)?;
        router.set_rcvhwm(0).map_err(fail)?;
        router.set_linger(0).map_err(fail)?;
        h.router = Some(router);
    }
    let Some(router) = &h.router else {
        return Ok(());
    };
    router.bind(endpoint).map_err(fail)?;
    h.port = match router.get_last_endpoint() {
        Ok(Ok(last)) if last.starts_with("tcp://") => last
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0),
        _ => 0,
    };
    Ok(())
}

fn connect(h: &mut Hosted, endpoint: &str, now: Instant) -> Result<(), Error> {
    static MONITORS: AtomicU64 = AtomicU64::new(0);
    let fail = |e: zmq::Error| Error::Connect {
        endpoint: endpoint.to_owned(),
        reason: e.to_string(),
    };
    let dealer = context().socket(zmq::DEALER).map_err(fail)?;
    dealer.set_sndhwm(0).map_err(fail)?;
    dealer.set_rcvhwm(0).map_err(fail)?;
    dealer.set_linger(0).map_err(fail)?;
    dealer.connect(endpoint).map_err(fail)?;
    // inproc connections do not drop and re-establish; tcp and ipc do, and
    // the monitor tells us when, so that we synchronise again.
    let monitor = if endpoint.starts_with("inproc://") {
        None
    } else {
        let address = format!(
            "inproc://zgossip-monitor-{}",
            MONITORS.fetch_add(1, Ordering::Relaxed)
        );
        let events = zmq::SocketEvent::HANDSHAKE_SUCCEEDED.to_raw() as i32;
        dealer.monitor(&address, events).map_err(fail)?;
        let pair = context().socket(zmq::PAIR).map_err(fail)?;
        pair.set_linger(0).map_err(fail)?;
        pair.connect(&address).map_err(fail)?;
        Some(pair)
    };
    h.core.connect(endpoint, now);
    h.dealers.push(dealer);
    h.monitors.push(monitor);
    Ok(())
}

/// Carry out a node's outputs.
fn flush(h: &mut Hosted) {
    for output in h.core.take_outputs() {
        match output {
            Output::ToPeer(frames) => {
                if let Some(router) = &h.router {
                    if let Err(e) = router.send_multipart(frames, zmq::DONTWAIT) {
                        tracing::debug!(node = %h.core.name(), "send to peer failed: {e}");
                    }
                }
            }
            Output::ToRemote { remote, frames } => {
                if let Some(dealer) = h.dealers.get(remote) {
                    if let Err(e) = dealer.send_multipart(frames, zmq::DONTWAIT) {
                        tracing::debug!(node = %h.core.name(), "send to remote failed: {e}");
                    }
                }
            }
            Output::Deliver { endpoint, service } => {
                // The application may have dropped its receiver; that is fine.
                let _ = h.deliveries.send(Delivery { endpoint, service });
            }
        }
    }
}

/// How long to wait for the reactor's answer to a command.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
