//! The server host: any generated server model on a ROUTER, with no
//! protocol-specific glue. It is what zproto's generated server actor is:
//! a handle that takes BIND, PORT, SET, VERBOSE, LOAD and `$TERM` (drop),
//! a [`Sessions`] table run by the reactor, decoding and encoding, the
//! model's `malformed` event (or a logged drop), and sessions that live as
//! long as their peer's connection.
//!
//! ```text
//! let server = ServerHandle::<Machine<MyActions>>::start("my_server", MyActions::default())?;
//! server.bind("tcp://127.0.0.1:*")?;
//! let port = server.port()?;
//! ```
//!
//! Settings (`SET path value`, or a ZPL file with `LOAD`), zproto's names:
//!
//! | path | meaning |
//! |---|---|
//! | `server/timeout` | session expiry in ms, for models that handle `expired` (inproc peers; tcp and ipc sessions live as long as their connection) |
//! | `server/verbose`, `server/animate` | non-zero: log every state, event and action |
//! | `server/hwm` | messages queued per connection and direction (default 1000) |
//! | `server/sndhwm`, `server/rcvhwm` | the same, one direction: to the peer, from the peer |
//! | `server/backlog` | messages kept beyond that for a peer that reads slowly, sent as it catches up (default 1000); more are dropped and counted |
//! | `server/backlog-bytes` | the same backlog's limit in encoded bytes (default 16 MiB): a peer that does not read holds at most `server/hwm` messages in its connection's queue and this much behind it |
//! | `server/max-message` | largest inbound frame in bytes; larger closes the connection (default: none) |
//! | `server/heartbeat` | ZMTP heartbeat interval in ms on tcp and ipc (default: none) |
//! | `<name>/bind/endpoint` | (in a loaded file) a bind, as zproto's servers do |
//! | `<name>/security/mechanism` | `null` (default), `plain` or `curve` (an error where libzmq lacks it) |
//! | `<name>/security/domain` | the ZAP domain (default: the server's name) |
//! | `<name>/security/secret-key` | for CURVE: the server's secret certificate file (CZMQ's zcert format, as CZMQ's engine reads it) |
//! | `server/auth/plain` | the passwords file for PLAIN (zauth's format: `user=password` lines) |
//! | `server/auth/curve` | for CURVE: a directory of clients' public certificates (zauth's allow-list); without it, any CURVE client that knows the server's public key |
//!
//! Security applies to binds made after it is set, as in zproto: a `LOAD`
//! applies every setting first, then binds.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::codec::Codec;
use crate::reactor::{
    self, Outgoing, Refused, RefusedReason, Security, Service, SocketError, SocketOptions, Sockets,
};
use crate::server::{Effects, Sessions, StateMachine};
use crate::throttle::Throttle;
use crate::zpl::Zpl;

mod handle;

#[cfg(feature = "async")]
pub use handle::AsyncServerHandle;
pub use handle::ServerHandle;

/// Largest config file `LOAD` reads: a config file is hostile input too.
pub const MAX_CONFIG: u64 = 1 << 20;

/// Messages kept by default per peer whose queue is full (beyond its
/// high-water mark), sent as it reads; more are dropped. `server/backlog`
/// changes it.
pub const BACKLOG: usize = 1000;

/// Encoded bytes kept by default per peer whose queue is full (with
/// [`BACKLOG`], whichever comes first). `server/backlog-bytes` changes it.
pub const BACKLOG_BYTES: usize = 16 << 20;

/// How soon the host tries a full peer again after its backlog moved: a
/// reader that keeps up drains its queue in well under a millisecond.
const RETRY_FIRST: Duration = Duration::from_micros(100);

/// The longest wait between tries while no backlog moves: each try that
/// sends nothing doubles the wait up to this, so that a peer that never
/// reads costs a few wakeups a second, not a spinning core.
const RETRY_LONGEST: Duration = Duration::from_millis(50);

/// How long a handle waits for the reactor's answer.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the host answers a command.
pub type Reply<T> = flume::Sender<T>;

/// Why a host command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// BIND failed.
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// A setting's path or value is wrong.
    #[error("setting {path}: {reason}")]
    Setting {
        /// The path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A config file could not be read or parsed.
    #[error("{file}: {reason}")]
    Config {
        /// The file.
        file: PathBuf,
        /// What is wrong, located (`line:column: message`) where it can be.
        reason: String,
    },
    /// Security could not be set up.
    #[error(transparent)]
    Security(#[from] crate::zap::ZapError),
    /// The reactor thread is gone.
    #[error("the server's reactor has stopped")]
    Stopped,
}

/// The authentication mechanism a host asks of its clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Mechanism {
    #[default]
    Null,
    Plain,
    Curve,
}

impl From<reactor::Stopped> for HostError {
    fn from(_: reactor::Stopped) -> Self {
        HostError::Stopped
    }
}

/// Counters of a host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Live sessions.
    pub sessions: u64,
    /// Messages decoded.
    pub received: u64,
    /// Messages sent.
    pub sent: u64,
    /// Frames that did not decode.
    pub malformed: u64,
    /// Messages refused by a full queue (dropped).
    pub refused: u64,
    /// Sessions ended because the peer went away.
    pub peers_gone: u64,
}

/// A closure run on a server's actions, on the reactor thread.
pub type ActionsFn<A> = Box<dyn FnOnce(&mut A) + Send>;

/// A request to the host, with where to answer.
pub enum HostCommand<M: StateMachine> {
    /// BIND: the port (0 for non-tcp) or why not.
    Bind(String, Reply<Result<i32, HostError>>),
    /// PORT.
    Port(Reply<i32>),
    /// SET.
    Set(String, String, Reply<Result<(), HostError>>),
    /// LOAD.
    Load(PathBuf, Reply<Result<(), HostError>>),
    /// Counters.
    Stats(Reply<HostStats>),
    /// Run a closure on the server's actions (zproto's `server_method`):
    /// the application's own commands, with no glue.
    With(ActionsFn<M::Actions>),
}

/// A generated server model running on the reactor: a [`Service`] with
/// no protocol-specific code.
pub struct ServerHost<M: StateMachine> {
    name: String,
    actions: M::Actions,
    sessions: Sessions<M>,
    options: SocketOptions,
    mechanism: Mechanism,
    domain: Option<String>,
    passwords: Option<PathBuf>,
    /// CURVE: the server's secret certificate, and the allow-list directory.
    secret_key: Option<PathBuf>,
    allowed: Option<PathBuf>,
    stats: HostStats,
    warn: Throttle,
    /// Routing ids whose peer is gone, found while sending.
    gone: Vec<Vec<u8>>,
    /// Messages a full queue refused, per peer, in order (at most
    /// [`BACKLOG`] and [`BACKLOG_BYTES`] each).
    backlog: Backlog<M::Message>,
    /// When to try the backlog again.
    retry_at: Option<Instant>,
    /// The wait before the next try ([`RETRY_FIRST`] to
    /// [`RETRY_LONGEST`]).
    retry_delay: Duration,
    /// Messages kept per full peer (`server/backlog`).
    backlog_limit: usize,
    /// Encoded bytes kept per full peer (`server/backlog-bytes`).
    backlog_bytes: usize,
}

impl<M: StateMachine> ServerHost<M> {
    /// A host named `name` (its config section) around `actions`.
    pub fn new(name: &str, actions: M::Actions) -> Self {
        Self {
            name: name.to_owned(),
            actions,
            // zproto's default.
            sessions: Sessions::new(Some(Duration::from_millis(60_000))),
            options: SocketOptions::default(),
            mechanism: Mechanism::default(),
            domain: None,
            passwords: None,
            secret_key: None,
            allowed: None,
            stats: HostStats::default(),
            warn: Throttle::default(),
            gone: Vec::new(),
            backlog: Backlog::new(),
            retry_at: None,
            retry_delay: RETRY_FIRST,
            backlog_limit: BACKLOG,
            backlog_bytes: BACKLOG_BYTES,
        }
    }

    /// The server's actions.
    pub fn actions(&self) -> &M::Actions {
        &self.actions
    }

    fn set(&mut self, path: &str, value: &str) -> Result<(), HostError> {
        let number = || {
            value.trim().parse::<u64>().map_err(|_| HostError::Setting {
                path: path.to_owned(),
                reason: format!("\"{value}\" is not a number"),
            })
        };
        match path {
            "server/timeout" => {
                let ms = number()?;
                self.sessions.set_timeout(Some(Duration::from_millis(ms)));
            }
            "server/verbose" | "server/animate" => {
                self.sessions.set_animate(value.trim() != "0");
            }
            "server/hwm" => {
                let hwm = i32::try_from(number()?).unwrap_or(i32::MAX);
                self.options.send_hwm = hwm;
                self.options.receive_hwm = hwm;
            }
            "server/sndhwm" => {
                self.options.send_hwm = i32::try_from(number()?).unwrap_or(i32::MAX);
            }
            "server/rcvhwm" => {
                self.options.receive_hwm = i32::try_from(number()?).unwrap_or(i32::MAX);
            }
            "server/backlog" => {
                self.backlog_limit = usize::try_from(number()?).unwrap_or(usize::MAX);
            }
            "server/backlog-bytes" => {
                self.backlog_bytes = usize::try_from(number()?).unwrap_or(usize::MAX);
            }
            "server/max-message" => {
                self.options.max_message = i64::try_from(number()?).unwrap_or(i64::MAX);
            }
            "server/heartbeat" => {
                let ms = Duration::from_millis(number()?);
                self.options.heartbeat = ms;
                self.options.heartbeat_timeout = ms * 4;
            }
            "server/auth/plain" => self.passwords = Some(PathBuf::from(value.trim())),
            "server/auth/curve" => self.allowed = Some(PathBuf::from(value.trim())),
            path if self.is_own(path, "security/secret-key") => {
                self.secret_key = Some(PathBuf::from(value.trim()));
            }
            path if self.is_own(path, "security/mechanism") => {
                self.mechanism = match value.trim() {
                    "null" => Mechanism::Null,
                    "plain" => Mechanism::Plain,
                    "curve" if !crate::zap::curve_available() => {
                        return Err(crate::zap::ZapError::NoCurve.into())
                    }
                    "curve" => Mechanism::Curve,
                    other => {
                        return Err(HostError::Setting {
                            path: path.to_owned(),
                            reason: format!("mechanism \"{other}\" is not null, plain or curve"),
                        })
                    }
                };
            }
            path if self.is_own(path, "security/domain") => {
                self.domain = Some(value.trim().to_owned());
            }
            // A bind section is LOAD's to carry out.
            path if path
                .strip_prefix(self.name.as_str())
                .is_some_and(|rest| rest.starts_with("/bind/")) => {}
            // Other paths belong to the application (zproto keeps them in
            // its config tree).
            _ => M::configure(&mut self.actions, path, value),
        }
        Ok(())
    }

    /// Whether `path` is `server/<tail>` or `<name>/<tail>`.
    fn is_own(&self, path: &str, tail: &str) -> bool {
        path.split_once('/')
            .is_some_and(|(head, rest)| rest == tail && (head == "server" || head == self.name))
    }

    /// Before a bind: the options and security the ROUTER gets; installs
    /// the ZAP policy for PLAIN.
    fn prepare(&mut self, sockets: &mut Sockets) -> Result<(), HostError> {
        sockets.set_options(self.options);
        let domain = self.domain.clone().unwrap_or_else(|| self.name.clone());
        let security = match self.mechanism {
            Mechanism::Null if self.domain.is_some() => {
                crate::zap::install(&domain, crate::zap::Policy::Null)?;
                Security::Null { domain }
            }
            Mechanism::Null => Security::None,
            Mechanism::Plain => {
                let Some(file) = &self.passwords else {
                    return Err(HostError::Setting {
                        path: "server/auth/plain".into(),
                        reason: "PLAIN security needs a passwords file".into(),
                    });
                };
                let users = crate::zap::load_passwords(file)?;
                crate::zap::install(&domain, crate::zap::Policy::Plain(users))?;
                Security::Plain { domain }
            }
            Mechanism::Curve => {
                let setting = |reason: String| HostError::Setting {
                    path: format!("{}/security/secret-key", self.name),
                    reason,
                };
                let Some(file) = &self.secret_key else {
                    return Err(setting(
                        "CURVE security needs the server's secret certificate".into(),
                    ));
                };
                let cert =
                    crate::cert::Certificate::load(file).map_err(|e| setting(e.to_string()))?;
                let Some(secret_key) = cert.secret else {
                    return Err(setting(format!("{} holds no secret key", file.display())));
                };
                let policy = match &self.allowed {
                    Some(dir) => crate::zap::Policy::Curve(
                        crate::cert::public_keys_in(dir).map_err(|e| HostError::Setting {
                            path: "server/auth/curve".into(),
                            reason: e.to_string(),
                        })?,
                    ),
                    None => crate::zap::Policy::CurveAny,
                };
                crate::zap::install(&domain, policy)?;
                Security::Curve { domain, secret_key }
            }
        };
        sockets.set_security(security);
        Ok(())
    }

    /// LOAD: apply a ZPL file's settings, then its `<name>/bind/endpoint`s.
    fn load(&mut self, file: &Path, sockets: &mut Sockets) -> Result<(), HostError> {
        let fail = |reason: String| HostError::Config {
            file: file.to_owned(),
            reason,
        };
        let text = crate::zpl::read_small_file(file, MAX_CONFIG).map_err(fail)?;
        let zpl = Zpl::parse(&text).map_err(|e| fail(e.to_string()))?;
        for (path, value) in zpl.values() {
            self.set(&path, &value).map_err(|e| {
                let line = zpl.node(&path).map_or(0, |n| n.line);
                fail(format!("{line}: {e}"))
            })?;
        }
        if let Some(bind) = zpl.node(&format!("{}/bind", self.name)) {
            for endpoint in bind.children.iter().filter(|c| c.name == "endpoint") {
                let Some(value) = &endpoint.value else {
                    continue;
                };
                self.prepare(sockets)
                    .map_err(|e| fail(format!("{}: {e}", endpoint.line)))?;
                sockets
                    .bind(value)
                    .map_err(|e| fail(format!("{}: {e}", endpoint.line)))?;
                bound(&self.name, value, sockets.port());
            }
        }
        Ok(())
    }
}

/// Say where a server now accepts clients (with the port a wildcard bind
/// got): an operator must not have to guess.
fn bound(name: &str, endpoint: &str, port: i32) {
    if port > 0 && endpoint.starts_with("tcp://") {
        tracing::info!("{name} bound {endpoint} (port {port})");
    } else {
        tracing::info!("{name} bound {endpoint}");
    }
}

impl<M: StateMachine + Send + 'static> Service for ServerHost<M>
where
    M::Actions: Send + 'static,
    M::Session: Send + 'static,
    M::State: Send + 'static,
    M::Event: Send + 'static,
    M::Message: Send + 'static,
    M::Effects: Send + 'static,
{
    type Command = HostCommand<M>;

    fn command(&mut self, command: HostCommand<M>, sockets: &mut Sockets, _now: Instant) {
        // Replies go to a caller that may have given up waiting: ignore that.
        match command {
            HostCommand::Bind(endpoint, reply) => {
                let result = self.prepare(sockets).and_then(|()| {
                    sockets
                        .bind(&endpoint)
                        .map(|()| sockets.port())
                        .map_err(HostError::from)
                });
                if let Ok(port) = result {
                    bound(&self.name, &endpoint, port);
                }
                let _ = reply.send(result);
            }
            HostCommand::Port(reply) => {
                let _ = reply.send(sockets.port());
            }
            HostCommand::Set(path, value, reply) => {
                let _ = reply.send(self.set(&path, &value));
            }
            HostCommand::Load(file, reply) => {
                let _ = reply.send(self.load(&file, sockets));
            }
            HostCommand::Stats(reply) => {
                let stats = HostStats {
                    sessions: self.sessions.len() as u64,
                    ..self.stats
                };
                let _ = reply.send(stats);
            }
            HostCommand::With(f) => f(&mut self.actions),
        }
    }

    fn on_peer(&mut self, frames: &[&[u8]], now: Instant) {
        match M::Message::decode_routed(frames) {
            Ok((routing_id, message)) => {
                self.stats.received += 1;
                self.sessions
                    .handle(&mut self.actions, routing_id, message, now);
            }
            Err(e) => {
                self.stats.malformed += 1;
                match (M::MALFORMED, frames.first()) {
                    (Some(event), Some(routing_id)) => {
                        self.sessions
                            .send_event(&mut self.actions, routing_id, event, now);
                    }
                    _ => {
                        if let Some(suppressed) = self.warn.allow(now) {
                            tracing::warn!(server = %self.name, suppressed, "malformed message dropped: {e}");
                        }
                    }
                }
            }
        }
    }

    fn on_peer_connected(&mut self, routing_id: &[u8], _now: Instant) {
        self.sessions.open(routing_id);
    }

    fn on_peer_disconnected(&mut self, routing_id: &[u8], _now: Instant) {
        self.backlog.remove(routing_id);
        if self.sessions.close(&mut self.actions, routing_id) {
            self.stats.peers_gone += 1;
        }
    }

    fn tick(&mut self, _sockets: &mut Sockets, now: Instant) {
        self.sessions.tick(&mut self.actions, now);
    }

    fn next_deadline(&self) -> Option<Instant> {
        match (self.sessions.next_deadline(), self.retry_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn drain_outgoing(&mut self, send: &mut dyn FnMut(Outgoing) -> Result<(), Refused>) {
        let now = Instant::now();
        // The host has no application to hand effects to: a model built
        // with effects runs here with them dropped after every round.
        self.sessions.effects().clear();
        let mut out = Out {
            limit: self.backlog_limit,
            limit_bytes: self.backlog_bytes,
            name: &self.name,
            stats: &mut self.stats,
            gone: &mut self.gone,
            warn: &mut self.warn,
            send,
        };
        let backlog = &mut self.backlog;
        let waited = !backlog.is_empty();
        let mut moved = false;
        // First what waits already, peer by peer, in order.
        backlog.retain(|routing_id, queue| {
            while let Some((message, bytes)) = queue.messages.pop_front() {
                if let Sent::Full = out.try_send(routing_id, &message) {
                    queue.messages.push_front((message, bytes));
                    return true;
                }
                moved = true;
                queue.bytes -= bytes;
            }
            false
        });
        // Back off only on the timed tries that moved nothing (every round
        // tries too, whatever woke it).
        if moved || !waited {
            self.retry_delay = RETRY_FIRST;
        } else if self.retry_at.is_some_and(|at| now >= at) {
            self.retry_delay = (self.retry_delay * 2).min(RETRY_LONGEST);
        }
        self.sessions.drain_outgoing(|routing_id, message| {
            // Behind a backlog, a message waits its turn.
            if backlog.contains_key(routing_id) {
                out.queue_or_drop(backlog, routing_id, message, now);
            } else if let Sent::Full = out.try_send(routing_id, &message) {
                out.queue_or_drop(backlog, routing_id, message, now);
            }
        });
        self.retry_at = (!self.backlog.is_empty()).then(|| now + self.retry_delay);
        for routing_id in std::mem::take(&mut self.gone) {
            self.on_peer_disconnected(&routing_id, now);
        }
    }
}

/// What became of a message the host tried to send.
enum Sent {
    /// Sent, or dropped for good (gone peer, encoding error).
    Done,
    /// The peer's queue is full: try again later.
    Full,
}

/// The sending side of a host, borrowed for one flush.
struct Out<'a> {
    limit: usize,
    limit_bytes: usize,
    name: &'a str,
    stats: &'a mut HostStats,
    gone: &'a mut Vec<Vec<u8>>,
    warn: &'a mut Throttle,
    send: &'a mut dyn FnMut(Outgoing) -> Result<(), Refused>,
}

impl Out<'_> {
    fn try_send<C: Codec>(&mut self, routing_id: &[u8], message: &C) -> Sent {
        let frames = match message.encode_packet_routed(routing_id) {
            Ok(frames) => frames,
            Err(e) => {
                tracing::warn!(server = %self.name, "cannot encode {}: {e}", message.command());
                return Sent::Done;
            }
        };
        match (self.send)(Outgoing::ToPeer(frames)) {
            Ok(()) => {
                self.stats.sent += 1;
                Sent::Done
            }
            Err(Refused {
                reason: RefusedReason::Unreachable,
                ..
            }) => {
                self.gone.push(routing_id.to_vec());
                Sent::Done
            }
            Err(Refused {
                reason: RefusedReason::Full,
                ..
            }) => Sent::Full,
            Err(_) => {
                self.stats.refused += 1;
                Sent::Done
            }
        }
    }

    /// Keep `message` for a peer whose queue is full, up to the limits
    /// (`server/backlog`, `server/backlog-bytes`); beyond, drop it (and say
    /// so, at a limited rate).
    fn queue_or_drop<C: Codec>(
        &mut self,
        backlog: &mut Backlog<C>,
        routing_id: &[u8],
        message: C,
        now: Instant,
    ) {
        let queue = match backlog.get_mut(routing_id) {
            Some(queue) => queue,
            None => backlog.entry(routing_id.to_vec()).or_default(),
        };
        let bytes = message.encoded_len();
        if queue.messages.len() < self.limit && queue.bytes + bytes <= self.limit_bytes {
            queue.bytes += bytes;
            queue.messages.push_back((message, bytes));
            return;
        }
        self.stats.refused += 1;
        if let Some(suppressed) = self.warn.allow(now) {
            tracing::warn!(server = %self.name, suppressed, "a peer does not read: {} dropped", message.command());
        }
    }
}

/// Messages waiting for peers whose queue is full.
type Backlog<C> = std::collections::HashMap<Vec<u8>, Waiting<C>>;

/// What waits for one peer: messages, each with its encoded size, and
/// their total.
struct Waiting<C> {
    messages: std::collections::VecDeque<(C, usize)>,
    bytes: usize,
}

impl<C> Default for Waiting<C> {
    fn default() -> Self {
        Self {
            messages: std::collections::VecDeque::new(),
            bytes: 0,
        }
    }
}
