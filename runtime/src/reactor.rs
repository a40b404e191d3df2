//! The ZeroMQ driver: one thread polls the sockets of any number of
//! [`Service`]s (a ROUTER per bound service, a DEALER per remote, a monitor
//! per tcp/ipc remote) and runs them. Sans-IO services (such as a
//! [`crate::server::Sessions`] table plus application logic) say what to
//! send; the reactor sends it. Applications talk to their service through
//! [`Reactor::command`]; requests travel over a channel, and a message on an
//! inproc PULL socket wakes the poll.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use crate::client::CurveClient;
use crate::client::PlainCredentials;
use crate::endpoint::BindPlan;
use crate::packet::Packet;

/// Maps keyed by small integers (descriptors, service ids), looked up on
/// every message: a fast hash, not SipHash.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Sockets one process may open (libzmq's default is 1023 per context, too
/// few for a process hosting many nodes; the OS limit on file descriptors,
/// one per socket, still applies).
pub const MAX_SOCKETS: i32 = 65_536;

/// The process-wide libzmq context, created on first use and never
/// terminated.
struct Context(*mut std::ffi::c_void);

// SAFETY: a libzmq context is thread-safe (zmq_ctx_new(3)); this one lives
// for the whole process.
unsafe impl Send for Context {}
// SAFETY: as above.
unsafe impl Sync for Context {}

fn raw_context() -> Result<*mut std::ffi::c_void, zmq::Error> {
    static CONTEXT: OnceLock<Context> = OnceLock::new();
    let context = CONTEXT.get_or_init(|| {
        // SAFETY: plain libzmq calls; a null context is checked below.
        unsafe {
            let ctx = zmq_sys::zmq_ctx_new();
            if !ctx.is_null() {
                zmq_sys::zmq_ctx_set(ctx, zmq_sys::ZMQ_MAX_SOCKETS as i32, MAX_SOCKETS);
            }
            Context(ctx)
        }
    });
    if context.0.is_null() {
        Err(zmq::Error::ENOMEM)
    } else {
        Ok(context.0)
    }
}

/// A new socket in the process-wide context, so that `inproc://` endpoints
/// of all reactors (and of the application) reach each other.
pub fn socket(kind: zmq::SocketType) -> Result<zmq::Socket, zmq::Error> {
    let ctx = raw_context()?;
    // SAFETY: `ctx` is a live context; a null socket is checked, and a
    // non-null one is owned by the returned `zmq::Socket`, which closes it.
    unsafe {
        let raw = zmq_sys::zmq_socket(ctx, kind as i32);
        if raw.is_null() {
            Err(zmq::Error::from_raw(zmq_sys::zmq_errno()))
        } else {
            Ok(zmq::Socket::from_raw(raw))
        }
    }
}

/// A message to send, its frames in one buffer ([`Packet`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// To a peer on the service's ROUTER: routing id first.
    ToPeer(Packet),
    /// To remote number `remote` (its DEALER).
    ToRemote {
        /// Index, as [`Sockets::connect`] returned it.
        remote: usize,
        /// The frames.
        frames: Packet,
    },
}

/// Why the reactor did not send a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedReason {
    /// The connection's queue is at its high-water mark: the peer does not
    /// read fast enough (or, for a DEALER, is not connected).
    Full,
    /// No peer has that routing id any more (it disconnected).
    Unreachable,
    /// Any other failure (the socket is closing, say).
    Failed,
}

/// A message the reactor could not send, handed back to the service whole
/// (every frame is copied into libzmq's own message, so nothing is lost to
/// a failed send).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Why.
    pub reason: RefusedReason,
    /// The message.
    pub outgoing: Outgoing,
}

/// Options for the sockets a service opens ([`Sockets::set_options`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOptions {
    /// `ZMQ_SNDHWM`: messages queued per connection before sends to it
    /// are refused ([`RefusedReason::Full`]). 0 means no limit.
    pub send_hwm: i32,
    /// `ZMQ_RCVHWM`: messages queued per connection before reading from
    /// the peer pauses. 0 means no limit.
    pub receive_hwm: i32,
    /// `ZMQ_MAXMSGSIZE`: a peer that sends a larger frame is disconnected
    /// before libzmq buffers it. -1 means no limit.
    pub max_message: i64,
    /// `ZMQ_HEARTBEAT_IVL`: ZMTP heartbeats on tcp and ipc connections, so
    /// that a peer that stopped answering (killed, stopped, partitioned) is
    /// disconnected. Zero turns them off.
    pub heartbeat: std::time::Duration,
    /// `ZMQ_HEARTBEAT_TIMEOUT` and `ZMQ_HEARTBEAT_TTL`: how long a silent
    /// connection lives.
    pub heartbeat_timeout: std::time::Duration,
    /// `ZMQ_RECONNECT_IVL_MAX`: a connection that fails or is lost is tried
    /// again after 100 ms, then twice as long each time up to this (Lazy
    /// Pirate's backoff, done by libzmq). Zero: every 100 ms.
    pub reconnect_max: std::time::Duration,
}

impl Default for SocketOptions {
    /// libzmq's defaults: 1000 messages, no size limit, no heartbeats, no
    /// reconnection backoff.
    fn default() -> Self {
        Self {
            send_hwm: 1000,
            receive_hwm: 1000,
            max_message: -1,
            heartbeat: std::time::Duration::ZERO,
            heartbeat_timeout: std::time::Duration::ZERO,
            reconnect_max: std::time::Duration::ZERO,
        }
    }
}

impl SocketOptions {
    fn apply(&self, socket: &zmq::Socket) -> Result<(), zmq::Error> {
        let ms = |d: std::time::Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX);
        socket.set_sndhwm(self.send_hwm.max(0))?;
        socket.set_rcvhwm(self.receive_hwm.max(0))?;
        socket.set_maxmsgsize(self.max_message)?;
        socket.set_linger(0)?;
        if !self.reconnect_max.is_zero() {
            socket.set_reconnect_ivl_max(ms(self.reconnect_max))?;
        }
        if !self.heartbeat.is_zero() {
            socket.set_heartbeat_ivl(ms(self.heartbeat))?;
            let timeout = self.heartbeat_timeout.max(self.heartbeat);
            socket.set_heartbeat_timeout(ms(timeout))?;
            // The TTL travels in deciseconds, at most 6553.5 s.
            socket.set_heartbeat_ttl(ms(timeout).min(6_553_500))?;
        }
        Ok(())
    }
}

/// How the ROUTER authenticates peers (see [`crate::zap`]), for
/// connections accepted after it is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Security {
    /// NULL: anyone, with no ZAP request.
    #[default]
    None,
    /// NULL, but ask the ZAP handler about `domain` (a policy must exist).
    Null {
        /// ZAP domain.
        domain: String,
    },
    /// PLAIN: username and password, checked by the ZAP handler's policy
    /// for `domain`.
    Plain {
        /// ZAP domain.
        domain: String,
    },
    /// CURVE: the ROUTER is a CURVE server with this secret key; clients'
    /// public keys are checked by the ZAP handler's policy for `domain`.
    Curve {
        /// ZAP domain.
        domain: String,
        /// Our secret key, Z85 (40 characters).
        secret_key: String,
    },
}

/// Something a reactor runs: a server (peers on a ROUTER) with remote
/// sessions (DEALERs), driven by frames, commands and time.
pub trait Service: Send + 'static {
    /// What the application asks of the service.
    type Command: Send + 'static;
    /// Carry out a command; `sockets` binds and connects.
    fn command(&mut self, command: Self::Command, sockets: &mut Sockets, now: Instant);
    /// Frames from a peer, routing id first (borrowed from the socket's
    /// buffers: nothing is copied to receive).
    fn on_peer(&mut self, frames: &[&[u8]], now: Instant);
    /// A peer's first message is about to arrive over a connection whose
    /// end the reactor will report ([`Service::on_peer_disconnected`]):
    /// tcp and ipc. Peers over inproc are never announced this way; their
    /// liveness is the service's own business (expiry).
    fn on_peer_connected(&mut self, routing_id: &[u8], now: Instant) {
        let _ = (routing_id, now);
    }
    /// The connection of a peer announced by [`Service::on_peer_connected`]
    /// is gone (closed by the peer, or by ZMTP heartbeats, or too large a
    /// frame). Its routing id will not come back.
    fn on_peer_disconnected(&mut self, routing_id: &[u8], now: Instant) {
        let _ = (routing_id, now);
    }
    /// Frames from remote number `remote`.
    /// `sockets` may bind and connect here too.
    fn on_remote(&mut self, remote: usize, frames: &[&[u8]], sockets: &mut Sockets, now: Instant);
    /// Remote `remote`'s connection was lost and is established again (tcp
    /// and ipc; libzmq reconnects by itself). The peer sees a new connection.
    fn on_remote_reconnected(&mut self, remote: usize, now: Instant);
    /// Time passed; called when [`Service::next_deadline`] is due.
    /// `sockets` may bind and connect here too.
    fn tick(&mut self, sockets: &mut Sockets, now: Instant);
    /// When `tick` next has something to do. Asked after every call into
    /// the service: a deadline changes only when the service is called.
    fn next_deadline(&self) -> Option<Instant>;
    /// Hand every message to send, in order, to `send`, which hands back
    /// those the sockets refused. Called after every call into the service
    /// and when its deadline falls due, not otherwise: a service that keeps
    /// refused messages to try again sets a deadline for it.
    fn drain_outgoing(&mut self, send: &mut dyn FnMut(Outgoing) -> Result<(), Refused>);
}

/// A socket could not be bound or connected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SocketError {
    /// Binding failed.
    #[error("could not bind to '{endpoint}': {reason}")]
    Bind {
        /// The endpoint.
        endpoint: String,
        /// libzmq's reason.
        reason: String,
    },
    /// Connecting failed.
    #[error("bad endpoint '{endpoint}': {reason}")]
    Connect {
        /// The endpoint.
        endpoint: String,
        /// libzmq's reason.
        reason: String,
    },
}

/// The sockets of one service.
#[derive(Default)]
pub struct Sockets {
    options: SocketOptions,
    security: Security,
    router: Option<zmq::Socket>,
    /// The ROUTER's monitor: disconnections of tcp and ipc peers.
    router_monitor: Option<zmq::Socket>,
    /// Peers seen on the ROUTER: routing id to the connection's descriptor
    /// (tcp, ipc), or -1 (inproc, which reports no disconnection; such an
    /// entry goes when a send to it finds the peer gone). A connection
    /// carries one routing id.
    peer_fds: FastMap<Vec<u8>, i32>,
    /// Descriptor to routing id, for tcp and ipc peers.
    fd_peers: FastMap<i32, Vec<u8>>,
    port: i32,
    dealers: Vec<zmq::Socket>,
    /// Per remote: its monitor socket, for tcp and ipc endpoints.
    monitors: Vec<Option<zmq::Socket>>,
    /// Per remote: whether its connection was lost since the last handshake.
    lost: Vec<bool>,
    /// Failed handshakes (refused or refusing peers) are logged at most
    /// ten a second.
    refusals: crate::throttle::Throttle,
    /// A socket was opened since the reactor last registered descriptors.
    changed: bool,
    /// PLAIN credentials for new DEALERs.
    credentials: Option<PlainCredentials>,
    /// CURVE keys for new DEALERs.
    curve_client: Option<CurveClient>,
    /// The ROUTER was used (sent on, bound) since a read last found it
    /// empty; see [`Sockets::look_again`].
    router_unchecked: bool,
    /// Per remote: its DEALER was sent on since a read last found it empty.
    dealers_unchecked: Vec<bool>,
    /// Some entry of `dealers_unchecked` is set.
    any_dealer_unchecked: bool,
}

impl std::fmt::Debug for Sockets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sockets")
            .field("bound", &self.router.is_some())
            .field("port", &self.port)
            .field("remotes", &self.dealers.len())
            .finish()
    }
}

impl Drop for Sockets {
    fn drop(&mut self) {
        // libzmq tears a closed socket down later, on its I/O thread, and
        // reports that to the socket's monitor with a blocking send: if the
        // monitor's peer (ours) is already closed, the I/O thread blocks for
        // good and every socket of the process stops. So stop each monitor
        // first, while its peer is open; then close the socket, then the PAIR.
        for (dealer, monitor) in self.dealers.iter_mut().zip(&self.monitors) {
            if monitor.is_some() {
                stop_monitor(dealer);
            }
        }
        self.dealers.clear();
        self.monitors.clear();
        if let (Some(router), Some(_)) = (self.router.as_mut(), &self.router_monitor) {
            stop_monitor(router);
        }
        self.router = None;
        self.router_monitor = None;
    }
}

/// `zmq_socket_monitor(3)` with a null endpoint: stop monitoring `socket`.
fn stop_monitor(socket: &mut zmq::Socket) {
    // SAFETY: `socket` is an open socket owned by the caller; a null
    // endpoint with no events is how zmq_socket_monitor(3) says to stop.
    let rc = unsafe { zmq_sys::zmq_socket_monitor(socket.as_mut_ptr(), std::ptr::null(), 0) };
    if rc != 0 {
        tracing::warn!("could not stop a socket monitor");
    }
}

/// Start monitoring `socket` for `events` on a new inproc PAIR, which is
/// returned. It listens before the caller connects or binds the socket, so
/// that no event is missed.
fn monitor(target: &zmq::Socket, events: u16) -> Result<zmq::Socket, zmq::Error> {
    static MONITORS: AtomicU64 = AtomicU64::new(0);
    let address = format!(
        "inproc://zproto-monitor-{}",
        MONITORS.fetch_add(1, Ordering::Relaxed)
    );
    target.monitor(&address, i32::from(events))?;
    let pair = socket(zmq::PAIR)?;
    pair.set_linger(0)?;
    pair.connect(&address)?;
    Ok(pair)
}

/// The port of a tcp endpoint, checked where libzmq is lax: it takes a
/// port over 65535 modulo 65536 (`:99999` binds 34463). CZMQ's `*` and `!`
/// forms ([`crate::endpoint`]) are for binds only.
fn check_tcp_port(endpoint: &str, bind: bool) -> Result<(), String> {
    let Some(address) = endpoint.strip_prefix("tcp://") else {
        return Ok(());
    };
    // A connect may name a source first: "tcp://source;host:port".
    let address = address.rsplit(';').next().unwrap_or(address);
    let Some((_, port)) = address.rsplit_once(':') else {
        return Err("no port".to_owned());
    };
    let ok = match BindPlan::of(endpoint) {
        BindPlan::Scan { .. } => bind,
        BindPlan::AsGiven(_) => port.parse::<u16>().is_ok(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("port \"{port}\" is not a number from 0 to 65535"))
    }
}

/// Bind `router` to `endpoint` as CZMQ's `zsock_bind` does
/// ([`crate::endpoint`]): `*` and `!` scan a port range.
fn bind_as_czmq(router: &zmq::Socket, endpoint: &str) -> Result<(), String> {
    let plan = BindPlan::of(endpoint);
    if let BindPlan::AsGiven(endpoint) = plan {
        return router.bind(endpoint).map_err(|e| e.to_string());
    }
    // `!`: any start will do; the hasher's keys are random per process.
    let random = std::hash::BuildHasher::hash_one(
        &std::collections::hash_map::RandomState::new(),
        std::time::Instant::now(),
    );
    let mut last_error = None;
    for candidate in plan.candidates(random) {
        match router.bind(&candidate) {
            Ok(()) => return Ok(()),
            Err(e) => last_error = Some(e),
        }
    }
    Err(match (last_error, plan) {
        (Some(e), BindPlan::Scan { first, last, .. }) => {
            format!("no port from {first} to {last} would bind (the last: {e})")
        }
        _ => "the port range is empty".to_owned(),
    })
}

/// The monitor events of a handshake that failed: a peer refused (by ZAP,
/// or for speaking another security mechanism), or refusing us.
const HANDSHAKE_FAILURES: u16 = zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL as u16
    | zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL as u16
    | zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_AUTH as u16;

/// Why a handshake failed, in words, if `event` says it did.
fn handshake_failure(event: u16, value: u32) -> Option<String> {
    let event = u32::from(event);
    if event == zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_AUTH {
        return Some(format!("authentication refused (ZAP status {value})"));
    }
    if event == zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL {
        // Typically the other side closed the connection mid-handshake:
        // a server that expects a security mechanism we do not use.
        return Some(format!(
            "handshake failed ({}; does the other side require CURVE or PLAIN?)",
            std::io::Error::from_raw_os_error(i32::try_from(value).unwrap_or(0))
        ));
    }
    if event != zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL {
        return None;
    }
    Some(match value {
        zmq_sys::ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH => {
            "security mechanism mismatch (one side uses CURVE or PLAIN, the other does not)".into()
        }
        zmq_sys::ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC
        | zmq_sys::ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE => {
            "CURVE handshake failed (a wrong server key, or a forged handshake)".into()
        }
        v if v & 0xffff_0000 == zmq_sys::ZMQ_PROTOCOL_ERROR_ZAP_UNSPECIFIED => {
            format!("the ZAP handler failed (protocol error 0x{v:x})")
        }
        v => format!("ZMTP protocol error 0x{v:x}"),
    })
}

/// Logs a failed handshake (rate-limited): who failed, and why.
fn log_refusal(
    throttle: &mut crate::throttle::Throttle,
    what: std::fmt::Arguments<'_>,
    now: Instant,
) {
    if let Some(suppressed) = throttle.allow(now) {
        if suppressed > 0 {
            tracing::warn!("{what} ({suppressed} more refusals not logged)");
        } else {
            tracing::warn!("{what}");
        }
    }
}

/// The endpoint a monitor event names (its second frame).
fn monitor_endpoint(frames: &[Vec<u8>]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(frames.get(1).map_or(&[][..], Vec::as_slice))
}

/// One monitor event: its number and value (zmq_socket_monitor(3): frame 0
/// holds the event as a native u16 and the value as a native u32).
fn monitor_event(frames: &[Vec<u8>]) -> Option<(u16, u32)> {
    let first = frames.first()?;
    let event = u16::from_ne_bytes(first.get(0..2)?.try_into().ok()?);
    let value = u32::from_ne_bytes(first.get(2..6)?.try_into().ok()?);
    Some((event, value))
}

impl Sockets {
    /// Whether a socket was opened since the last call.
    fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Options for the sockets opened from now on: the ROUTER (created by
    /// the first [`Sockets::bind`]) and each DEALER ([`Sockets::connect`]).
    pub fn set_options(&mut self, options: SocketOptions) {
        self.options = options;
    }

    /// PLAIN credentials for the DEALERs [`Sockets::connect`] opens from
    /// now on (`None`: NULL, the default).
    pub fn set_credentials(&mut self, credentials: Option<PlainCredentials>) {
        self.credentials = credentials;
    }

    /// CURVE keys for the next DEALER [`Sockets::connect`] opens (`None`:
    /// NULL or PLAIN, as [`Sockets::set_credentials`] says).
    pub fn set_curve_client(&mut self, keys: Option<CurveClient>) {
        self.curve_client = keys;
    }

    /// How the ROUTER authenticates peers, from the next [`Sockets::bind`]
    /// on (libzmq applies it to connections accepted afterwards).
    pub fn set_security(&mut self, security: Security) {
        self.security = security;
    }

    /// Accept peers on `endpoint`: a ROUTER, created on first use with the
    /// [`SocketOptions`], `ZMQ_ROUTER_MANDATORY` (so that a full or vanished
    /// peer is reported, never silently dropped) and a monitor that reports
    /// the end of tcp and ipc connections.
    pub fn bind(&mut self, endpoint: &str) -> Result<(), SocketError> {
        let fail = |e: zmq::Error| SocketError::Bind {
            endpoint: endpoint.to_owned(),
            reason: e.to_string(),
        };
        let result = (|| {
            check_tcp_port(endpoint, true).map_err(|reason| SocketError::Bind {
                endpoint: endpoint.to_owned(),
                reason,
            })?;
            if self.router.is_none() {
                let router = socket(zmq::ROUTER).map_err(fail)?;
                self.options.apply(&router).map_err(fail)?;
                router.set_router_mandatory(true).map_err(fail)?;
                self.router = Some(router);
            }
            // tcp and ipc connections end, and the monitor says when; it
            // listens before their first bind. inproc needs none (nor its
            // two sockets, which matter when a process hosts thousands).
            if self.router_monitor.is_none() && !endpoint.starts_with("inproc://") {
                if let Some(router) = &self.router {
                    let events = zmq::SocketEvent::DISCONNECTED.to_raw() | HANDSHAKE_FAILURES;
                    self.router_monitor = Some(monitor(router, events).map_err(fail)?);
                }
            }
            let Some(router) = &self.router else {
                return Ok(0);
            };
            match &self.security {
                // libzmq refuses an empty ZAP domain; NULL without one asks
                // no handler.
                Security::None => router.set_plain_server(false).map_err(fail)?,
                Security::Null { domain } => {
                    router.set_plain_server(false).map_err(fail)?;
                    router.set_zap_domain(domain).map_err(fail)?;
                }
                Security::Plain { domain } => {
                    router.set_plain_server(true).map_err(fail)?;
                    router.set_zap_domain(domain).map_err(fail)?;
                }
                Security::Curve { domain, secret_key } => {
                    router.set_curve_server(true).map_err(fail)?;
                    router
                        .set_curve_secretkey(secret_key.as_bytes())
                        .map_err(fail)?;
                    router.set_zap_domain(domain).map_err(fail)?;
                }
            }
            // zmq_bind processes the socket's pending commands.
            self.router_unchecked = true;
            bind_as_czmq(router, endpoint).map_err(|reason| SocketError::Bind {
                endpoint: endpoint.to_owned(),
                reason,
            })?;
            Ok(match router.get_last_endpoint() {
                Ok(Ok(last)) if last.starts_with("tcp://") => last
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0),
                _ => 0,
            })
        })();
        // As CZMQ's PORT: the tcp port, 0 for other transports, -1 on failure.
        self.port = *result.as_ref().unwrap_or(&-1);
        // The ROUTER or its monitor may be new.
        self.changed = true;
        result.map(|_| ())
    }

    /// Every socket's `ZMQ_FD`, as the loop's sources.
    fn descriptors(&self, id: ServiceId, out: &mut FastMap<i32, Source>) {
        if let Some(fd) = self.router.as_ref().and_then(|s| s.get_fd().ok()) {
            out.insert(fd, Source::Router(id));
        }
        if let Some(fd) = self.router_monitor.as_ref().and_then(|s| s.get_fd().ok()) {
            out.insert(fd, Source::RouterMonitor(id));
        }
        for (r, dealer) in self.dealers.iter().enumerate() {
            if let Ok(fd) = dealer.get_fd() {
                out.insert(fd, Source::Dealer(id, r));
            }
        }
        for (r, monitor) in self.monitors.iter().enumerate() {
            if let Some(fd) = monitor.as_ref().and_then(|m| m.get_fd().ok()) {
                out.insert(fd, Source::Monitor(id, r));
            }
        }
    }

    /// Add to `hot` the sockets used since a read last found them empty and
    /// that have input waiting (`ZMQ_EVENTS`).
    ///
    /// A send or a bind makes libzmq process the socket's pending commands,
    /// which may consume the descriptor's signal of input that arrived
    /// meanwhile; a read that ends empty re-arms it. Only sockets used after
    /// their last empty read need a look (one system call each), so a
    /// request answered on the socket it came from costs none.
    fn look_again(&mut self, id: ServiceId, hot: &mut Vec<Source>) {
        let has_input = |s: &zmq::Socket| s.get_events().is_ok_and(|e| e.contains(zmq::POLLIN));
        if std::mem::take(&mut self.router_unchecked) && self.router.as_ref().is_some_and(has_input)
        {
            hot.push(Source::Router(id));
        }
        if !std::mem::take(&mut self.any_dealer_unchecked) {
            return;
        }
        for (r, unchecked) in self.dealers_unchecked.iter_mut().enumerate() {
            if std::mem::take(unchecked) && self.dealers.get(r).is_some_and(has_input) {
                hot.push(Source::Dealer(id, r));
            }
        }
    }

    /// A read found the socket of `remote` (None: the ROUTER) empty.
    fn read_empty(&mut self, remote: Option<usize>) {
        match remote {
            None => self.router_unchecked = false,
            Some(r) => {
                if let Some(unchecked) = self.dealers_unchecked.get_mut(r) {
                    *unchecked = false;
                }
            }
        }
    }

    /// The port of the last bind (see [`Sockets::bind`]).
    pub fn port(&self) -> i32 {
        self.port
    }

    /// Open a remote session: a DEALER connected to `endpoint`. Returns the
    /// remote's index.
    pub fn connect(&mut self, endpoint: &str) -> Result<usize, SocketError> {
        let fail = |e: zmq::Error| SocketError::Connect {
            endpoint: endpoint.to_owned(),
            reason: e.to_string(),
        };
        check_tcp_port(endpoint, false).map_err(|reason| SocketError::Connect {
            endpoint: endpoint.to_owned(),
            reason,
        })?;
        let dealer = socket(zmq::DEALER).map_err(fail)?;
        self.options.apply(&dealer).map_err(fail)?;
        // inproc connections do not drop and re-establish; tcp and ipc do,
        // and the monitor says when.
        let monitor = if endpoint.starts_with("inproc://") {
            None
        } else {
            let events = zmq::SocketEvent::HANDSHAKE_SUCCEEDED.to_raw()
                | zmq::SocketEvent::DISCONNECTED.to_raw()
                | HANDSHAKE_FAILURES;
            Some(monitor(&dealer, events).map_err(fail)?)
        };
        if let Some(plain) = &self.credentials {
            dealer
                .set_plain_username(Some(&plain.username))
                .map_err(fail)?;
            dealer
                .set_plain_password(Some(&plain.password))
                .map_err(fail)?;
        }
        if let Some(curve) = &self.curve_client {
            dealer
                .set_curve_serverkey(curve.server_key.as_bytes())
                .map_err(fail)?;
            dealer
                .set_curve_publickey(curve.public_key.as_bytes())
                .map_err(fail)?;
            dealer
                .set_curve_secretkey(curve.secret_key.as_bytes())
                .map_err(fail)?;
        }
        dealer.connect(endpoint).map_err(fail)?;
        self.changed = true;
        self.dealers.push(dealer);
        self.monitors.push(monitor);
        self.lost.push(false);
        self.dealers_unchecked.push(false);
        Ok(self.dealers.len() - 1)
    }

    fn send(&mut self, outgoing: Outgoing) -> Result<(), Refused> {
        let (socket, frames) = match &outgoing {
            Outgoing::ToPeer(frames) => {
                self.router_unchecked = true;
                (self.router.as_mut(), frames)
            }
            Outgoing::ToRemote { remote, frames } => {
                if let Some(unchecked) = self.dealers_unchecked.get_mut(*remote) {
                    *unchecked = true;
                    self.any_dealer_unchecked = true;
                }
                (self.dealers.get_mut(*remote), frames)
            }
        };
        let Some(socket) = socket else {
            return Err(Refused {
                reason: RefusedReason::Failed,
                outgoing,
            });
        };
        let last = frames.len().saturating_sub(1);
        for (i, frame) in frames.frames().enumerate() {
            let flags = if i < last {
                zmq::DONTWAIT | zmq::SNDMORE
            } else {
                zmq::DONTWAIT
            };
            // Every frame is copied into libzmq's own message (inline up to
            // 33 bytes): lending a frame needs a buffer of its own, which
            // libzmq must wrap, count and hand back for freeing on its I/O
            // thread, and which a packed message does not have. For large
            // frames that costs one memcpy.
            if let Err(e) = send_copy(socket, frame, flags) {
                let reason = match e {
                    zmq::Error::EAGAIN => RefusedReason::Full,
                    zmq::Error::EHOSTUNREACH => RefusedReason::Unreachable,
                    _ => RefusedReason::Failed,
                };
                return Err(Refused { reason, outgoing });
            }
        }
        Ok(())
    }

    /// The connection with descriptor `fd` ended: its routing id, if known.
    fn forget_fd(&mut self, fd: i32) -> Option<Vec<u8>> {
        let routing_id = self.fd_peers.remove(&fd)?;
        self.peer_fds.remove(&routing_id);
        Some(routing_id)
    }
}

/// The reactor thread is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the reactor has stopped")]
pub struct Stopped;

/// Identifies a service on its reactor.
pub type ServiceId = usize;

enum Request<S: Service> {
    Add(Box<S>, Sender<ServiceId>),
    Command(ServiceId, S::Command),
    Remove(ServiceId),
    Shutdown,
}

/// How busy a reactor thread is: rounds of its loop (one wake-up each)
/// and the time they took, from after the wait to the next wait.
#[derive(Debug, Default)]
pub struct RoundStats {
    rounds: AtomicU64,
    busy_nanos: AtomicU64,
    longest_nanos: AtomicU64,
}

/// A reading of [`RoundStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rounds {
    /// Rounds run.
    pub rounds: u64,
    /// Time spent in them.
    pub busy: std::time::Duration,
    /// The longest.
    pub longest: std::time::Duration,
}

impl RoundStats {
    fn record(&self, took: std::time::Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.rounds.fetch_add(1, Ordering::Relaxed);
        self.busy_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.longest_nanos.fetch_max(nanos, Ordering::Relaxed);
    }

    /// The numbers so far.
    pub fn read(&self) -> Rounds {
        Rounds {
            rounds: self.rounds.load(Ordering::Relaxed),
            busy: std::time::Duration::from_nanos(self.busy_nanos.load(Ordering::Relaxed)),
            longest: std::time::Duration::from_nanos(self.longest_nanos.load(Ordering::Relaxed)),
        }
    }
}

/// Handle on a reactor thread running services of type `S`. Dropping the
/// last handle stops the thread.
pub struct Reactor<S: Service> {
    requests: Sender<Request<S>>,
    wake: Mutex<zmq::Socket>,
    thread: Mutex<Option<JoinHandle<()>>>,
    rounds: Arc<RoundStats>,
}

impl<S: Service> std::fmt::Debug for Reactor<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor").finish_non_exhaustive()
    }
}

impl<S: Service> Reactor<S> {
    /// Start a reactor thread.
    pub fn start() -> Result<Arc<Self>, zmq::Error> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let endpoint = format!(
            "inproc://zproto-reactor-{}",
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let pull = socket(zmq::PULL)?;
        pull.bind(&endpoint)?;
        let push = socket(zmq::PUSH)?;
        push.set_linger(0)?;
        push.connect(&endpoint)?;
        let (tx, rx) = mpsc::channel();
        let rounds = Arc::new(RoundStats::default());
        let loop_rounds = rounds.clone();
        let thread = std::thread::Builder::new()
            .name("zproto-reactor".into())
            .spawn(move || match Loop::<S>::new(pull, rx) {
                Ok(event_loop) => event_loop.run(&loop_rounds),
                Err(e) => tracing::error!("reactor cannot start: {e}"),
            })
            .map_err(|_| zmq::Error::ENOMEM)?;
        Ok(Arc::new(Self {
            requests: tx,
            wake: Mutex::new(push),
            thread: Mutex::new(Some(thread)),
            rounds,
        }))
    }

    fn send(&self, request: Request<S>) -> Result<(), Stopped> {
        self.requests.send(request).map_err(|_| Stopped)?;
        let wake = self.wake.lock().map_err(|_| Stopped)?;
        // A full pipe means a wakeup is already pending.
        match wake.send(&b""[..], zmq::DONTWAIT) {
            Ok(()) | Err(zmq::Error::EAGAIN) => Ok(()),
            Err(_) => Err(Stopped),
        }
    }

    /// Run `service` on this reactor.
    pub fn add(&self, service: S) -> Result<ServiceId, Stopped> {
        let (tx, rx) = mpsc::channel();
        self.send(Request::Add(Box::new(service), tx))?;
        rx.recv().map_err(|_| Stopped)
    }

    /// Pass a command to a service.
    pub fn command(&self, id: ServiceId, command: S::Command) -> Result<(), Stopped> {
        self.send(Request::Command(id, command))
    }

    /// How busy the reactor thread has been.
    pub fn rounds(&self) -> Rounds {
        self.rounds.read()
    }

    /// Stop a service and close its sockets.
    pub fn remove(&self, id: ServiceId) -> Result<(), Stopped> {
        self.send(Request::Remove(id))
    }
}

impl<S: Service> Drop for Reactor<S> {
    fn drop(&mut self) {
        let _ = self.send(Request::Shutdown);
        if let Some(thread) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = thread.join();
        }
    }
}

struct Hosted<S> {
    service: Box<S>,
    sockets: Sockets,
    /// The descriptors registered for its sockets.
    registered: Vec<(i32, Source)>,
    /// The earliest time it has in the loop's timer heap, if any.
    queued: Option<Instant>,
}

impl<S> Hosted<S> {
    fn new(service: Box<S>) -> Self {
        Self {
            service,
            sockets: Sockets::default(),
            registered: Vec::new(),
            queued: None,
        }
    }
}

/// What a descriptor belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    Wake,
    Router(ServiceId),
    Dealer(ServiceId, usize),
    Monitor(ServiceId, usize),
    RouterMonitor(ServiceId),
}

/// At most this many messages are read from one socket per poll, so that a
/// busy peer cannot starve the others.
const BATCH: usize = 256;

struct Loop<S: Service> {
    wake: zmq::Socket,
    requests: Receiver<Request<S>>,
    services: FastMap<ServiceId, Hosted<S>>,
    next_id: ServiceId,
    /// Receive buffers, reused from message to message.
    parts: Vec<zmq::Message>,
    /// Readiness of every socket, through the descriptors libzmq signals.
    epoll: Epoll,
}

/// An epoll set over libzmq's `ZMQ_FD` descriptors.
///
/// libzmq signals such a descriptor only when its socket goes from "nothing
/// to do" to "something to do", and any call into the socket (a send, a
/// getsockopt) may consume that signal. So the loop never waits on a socket
/// it has used since a read last found it empty, until `ZMQ_EVENTS` says it
/// has no input left: such sockets are kept "hot" and read without waiting. Unlike zmq_poll, a wait costs
/// nothing per idle socket, which matters with thousands of sockets.
struct Epoll {
    fd: i32,
    /// Registered descriptors and the socket each stands for.
    sources: FastMap<i32, Source>,
    events: Vec<libc::epoll_event>,
}

impl Epoll {
    fn new() -> Result<Self, zmq::Error> {
        // SAFETY: plain system call; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(zmq::Error::EMFILE);
        }
        Ok(Self {
            fd,
            sources: FastMap::default(),
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 256],
        })
    }

    /// Register `fd` for `source`, unless it is already; returns whether
    /// it was not.
    fn register(&mut self, fd: i32, source: Source) -> bool {
        if self.sources.get(&fd) == Some(&source) {
            return false;
        }
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: fd as u64,
        };
        // SAFETY: `event` outlives the call; EEXIST (a descriptor number
        // another socket held, registered for it) is handled below.
        let rc = unsafe { libc::epoll_ctl(self.fd, libc::EPOLL_CTL_ADD, fd, &mut event) };
        if rc != 0 {
            // SAFETY: as above, replacing the stale registration.
            unsafe { libc::epoll_ctl(self.fd, libc::EPOLL_CTL_MOD, fd, &mut event) };
        }
        self.sources.insert(fd, source);
        true
    }

    /// Forget `fd`, if it still stands for `source` (a closed socket's
    /// number may have been reused by a new socket already registered).
    fn unregister(&mut self, fd: i32, source: Source) {
        if self.sources.get(&fd) != Some(&source) {
            return;
        }
        self.sources.remove(&fd);
        // SAFETY: removing a descriptor that may already be closed; an
        // error (EBADF, ENOENT) only means it is gone already.
        unsafe { libc::epoll_ctl(self.fd, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
    }

    /// Sources whose descriptor signalled within `timeout` ms.
    fn wait(&mut self, timeout: i64, ready: &mut Vec<Source>) {
        let timeout = i32::try_from(timeout).unwrap_or(i32::MAX);
        // SAFETY: the buffer holds `events.len()` entries.
        let n = unsafe {
            libc::epoll_wait(
                self.fd,
                self.events.as_mut_ptr(),
                self.events.len() as i32,
                timeout,
            )
        };
        let n = usize::try_from(n).unwrap_or(0);
        if n == 0 {
            return;
        }
        let signalled = self
            .events
            .iter()
            .take(n)
            .filter_map(|event| self.sources.get(&(event.u64 as i32)).copied());
        if ready.is_empty() {
            // epoll reports each descriptor once.
            ready.extend(signalled);
            return;
        }
        // Hot sources may be many (thousands of nodes): look them up in a set.
        let mut seen: HashSet<Source, foldhash::fast::RandomState> =
            ready.iter().copied().collect();
        for source in signalled {
            if seen.insert(source) {
                ready.push(source);
            }
        }
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: our own descriptor, closed once.
        unsafe { libc::close(self.fd) };
    }
}

impl<S: Service> Loop<S> {
    fn new(wake: zmq::Socket, requests: Receiver<Request<S>>) -> Result<Self, zmq::Error> {
        Ok(Self {
            wake,
            requests,
            services: FastMap::default(),
            next_id: 0,
            parts: Vec::new(),
            epoll: Epoll::new()?,
        })
    }

    fn run(mut self, rounds: &RoundStats) {
        // Sockets that may have input without their descriptor signalling.
        let mut hot: Vec<Source> = Vec::new();
        let mut ready: Vec<Source> = Vec::new();
        // Service deadlines, earliest first. A service has at most one
        // live entry (`Hosted::queued`); entries it moved past are stale
        // and skipped when they come up.
        let mut timers: BinaryHeap<Reverse<(Instant, ServiceId)>> = BinaryHeap::new();
        // Services called this round (read, commanded, due): only these are
        // flushed and asked their deadline, so a round costs what happened
        // in it, not the number of services.
        let mut touched: Vec<ServiceId> = Vec::new();
        if let Ok(fd) = self.wake.get_fd() {
            self.epoll.register(fd, Source::Wake);
            hot.push(Source::Wake);
        }
        loop {
            ready.clear();
            ready.append(&mut hot);
            let timeout = if ready.is_empty() {
                wait_until(timers.peek().map(|Reverse((at, _))| *at))
            } else {
                0
            };
            self.epoll.wait(timeout, &mut ready);
            let now = Instant::now();
            let _round = Recorder { rounds, since: now };
            touched.clear();
            for &source in &ready {
                match source {
                    Source::Wake => {
                        while self.wake.recv_bytes(zmq::DONTWAIT).is_ok() {}
                        match self.serve_requests(now) {
                            None => return,
                            Some(ids) => touched.extend(ids),
                        }
                    }
                    Source::Router(id) | Source::Dealer(id, _) => {
                        let remote = match source {
                            Source::Dealer(_, r) => Some(r),
                            _ => None,
                        };
                        if self.read(id, remote, now) {
                            hot.push(source);
                        }
                        touched.push(id);
                    }
                    Source::Monitor(id, r) => {
                        self.read_monitor(id, r, now);
                        touched.push(id);
                    }
                    Source::RouterMonitor(id) => {
                        if let Some(h) = self.services.get_mut(&id) {
                            read_router_monitor(h, now);
                            touched.push(id);
                        }
                    }
                }
            }
            while let Some(&Reverse((at, id))) = timers.peek() {
                if at > now {
                    break;
                }
                timers.pop();
                if let Some(h) = self.services.get_mut(&id) {
                    if h.queued == Some(at) {
                        h.queued = None;
                        touched.push(id);
                    }
                }
            }
            touched.sort_unstable();
            touched.dedup();
            for &id in &touched {
                let Some(h) = self.services.get_mut(&id) else {
                    continue;
                };
                let mut deadline = h.service.next_deadline();
                if deadline.is_some_and(|at| at <= now) {
                    h.service.tick(&mut h.sockets, now);
                    deadline = h.service.next_deadline();
                }
                flush(h);
                if let Some(at) = deadline {
                    if h.queued.map_or(true, |queued| at < queued) {
                        timers.push(Reverse((at, id)));
                        h.queued = Some(at);
                    }
                }
                // A call may have bound or connected.
                if h.sockets.take_changed() {
                    hot.extend(self.sync_service(id));
                }
            }
            // A socket used since its last empty read may have consumed
            // its own signal: look. (The wake socket is only ever read
            // until empty.)
            for &id in &touched {
                if let Some(h) = self.services.get_mut(&id) {
                    h.sockets.look_again(id, &mut hot);
                }
            }
        }
    }

    /// Register the descriptors of service `id`'s sockets, and forget
    /// those of sockets it closed; returns the newly registered.
    fn sync_service(&mut self, id: ServiceId) -> Vec<Source> {
        let Some(h) = self.services.get_mut(&id) else {
            return Vec::new();
        };
        let mut wanted = FastMap::default();
        h.sockets.descriptors(id, &mut wanted);
        for &(fd, source) in &h.registered {
            if wanted.get(&fd) != Some(&source) {
                self.epoll.unregister(fd, source);
            }
        }
        let mut added = Vec::new();
        h.registered.clear();
        for (fd, source) in wanted {
            if self.epoll.register(fd, source) {
                added.push(source);
            }
            h.registered.push((fd, source));
        }
        added
    }

    /// Carry out requests; returns the services whose sockets may have
    /// changed or been touched, or `None` on shutdown.
    fn serve_requests(&mut self, now: Instant) -> Option<Vec<ServiceId>> {
        let mut touched = Vec::new();
        while let Ok(request) = self.requests.try_recv() {
            match request {
                Request::Shutdown => return None,
                Request::Add(service, reply) => {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.services.insert(id, Hosted::new(service));
                    touched.push(id);
                    let _ = reply.send(id);
                }
                Request::Remove(id) => {
                    if let Some(h) = self.services.remove(&id) {
                        for &(fd, source) in &h.registered {
                            self.epoll.unregister(fd, source);
                        }
                    }
                }
                Request::Command(id, command) => {
                    if let Some(h) = self.services.get_mut(&id) {
                        h.service.command(command, &mut h.sockets, now);
                        flush(h);
                        touched.push(id);
                    }
                }
            }
        }
        Some(touched)
    }

    /// Handle up to [`BATCH`] messages of one socket and send what they
    /// cause. Returns whether the socket may hold more.
    fn read(&mut self, id: ServiceId, remote: Option<usize>, now: Instant) -> bool {
        let Some(h) = self.services.get_mut(&id) else {
            return false;
        };
        let parts = &mut self.parts;
        for i in 0..BATCH {
            let socket = match remote {
                None => h.sockets.router.as_ref(),
                Some(r) => h.sockets.dealers.get(r),
            };
            let Some(socket) = socket else { return false };
            match receive(socket, parts) {
                Ok(()) => {
                    if remote.is_none() {
                        admit_peer(h, parts, now);
                    }
                    with_slices(parts, |frames| match remote {
                        None => h.service.on_peer(frames, now),
                        Some(r) => h.service.on_remote(r, frames, &mut h.sockets, now),
                    });
                    // The first message is answered at once: a lone request
                    // then costs no look at the socket after its empty read.
                    // Later ones are answered together, at the end: a peer
                    // that pipelines gets its replies in one wake-up.
                    if i == 0 {
                        flush(h);
                    }
                }
                Err(zmq::Error::EAGAIN) => {
                    h.sockets.read_empty(remote);
                    flush(h);
                    return false;
                }
                Err(e) => {
                    tracing::warn!("receive failed: {e}");
                    flush(h);
                    return false;
                }
            }
        }
        flush(h);
        true
    }

    fn read_monitor(&mut self, id: ServiceId, remote: usize, now: Instant) {
        let Some(h) = self.services.get_mut(&id) else {
            return;
        };
        let Some(Some(monitor)) = h.sockets.monitors.get(remote) else {
            return;
        };
        while let Ok(frames) = monitor.recv_multipart(zmq::DONTWAIT) {
            let event = monitor_event(&frames);
            if let Some(why) = event.and_then(|(event, value)| handshake_failure(event, value)) {
                log_refusal(
                    &mut h.sockets.refusals,
                    format_args!("connection to {} refused: {why}", monitor_endpoint(&frames)),
                    now,
                );
            }
            let event = event.map(|(event, _)| event);
            let lost = &mut h.sockets.lost[remote];
            match event {
                Some(e) if e == zmq::SocketEvent::DISCONNECTED.to_raw() => *lost = true,
                Some(e) if e == zmq::SocketEvent::HANDSHAKE_SUCCEEDED.to_raw() && *lost => {
                    *lost = false;
                    h.service.on_remote_reconnected(remote, now);
                }
                _ => {}
            }
        }
    }
}

/// A message from a peer on the ROUTER: if its routing id is new, find
/// whether its connection will report its end (tcp and ipc messages carry
/// the connection's descriptor as metadata, which is what `ZMQ_SRCFD`
/// reads), and tell the service.
fn admit_peer<S: Service>(h: &mut Hosted<S>, parts: &mut [zmq::Message], now: Instant) {
    let Some((first, rest)) = parts.split_first_mut() else {
        return;
    };
    let routing_id: &[u8] = first;
    if h.sockets.peer_fds.contains_key(routing_id) {
        return;
    }
    let fd = rest
        .last_mut()
        .and_then(|m| m.gets("__fd"))
        .and_then(|fd| fd.parse::<i32>().ok())
        .unwrap_or(-1);
    if fd >= 0 && h.sockets.fd_peers.contains_key(&fd) {
        // The descriptor was closed and reused; libzmq reported the old
        // connection's end before accepting the new one: read it first.
        read_router_monitor(h, now);
        if let Some(old) = h.sockets.forget_fd(fd) {
            h.service.on_peer_disconnected(&old, now);
        }
    }
    h.sockets.peer_fds.insert(routing_id.to_vec(), fd);
    if fd >= 0 {
        h.sockets.fd_peers.insert(fd, routing_id.to_vec());
        h.service.on_peer_connected(routing_id, now);
    }
}

/// Disconnections reported by the ROUTER's monitor.
fn read_router_monitor<S: Service>(h: &mut Hosted<S>, now: Instant) {
    let disconnected = zmq::SocketEvent::DISCONNECTED.to_raw();
    loop {
        let Some(Ok(frames)) = h
            .sockets
            .router_monitor
            .as_ref()
            .map(|m| m.recv_multipart(zmq::DONTWAIT))
        else {
            return;
        };
        match monitor_event(&frames) {
            Some((event, fd)) if event == disconnected => {
                let Ok(fd) = i32::try_from(fd) else { continue };
                if let Some(routing_id) = h.sockets.forget_fd(fd) {
                    h.service.on_peer_disconnected(&routing_id, now);
                }
            }
            Some((event, value)) => {
                if let Some(why) = handshake_failure(event, value) {
                    // libzmq's monitor names our endpoint only; the ZAP
                    // handler logs the peer's address when it refuses.
                    log_refusal(
                        &mut h.sockets.refusals,
                        format_args!("a peer on {} was refused: {why}", monitor_endpoint(&frames)),
                        now,
                    );
                }
            }
            None => {}
        }
    }
}

/// `zmq_send(3)`: one frame, copied into a new libzmq message.
fn send_copy(socket: &mut zmq::Socket, frame: &[u8], flags: i32) -> Result<(), zmq::Error> {
    // SAFETY: `socket` is an open socket used only by this thread, and the
    // buffer is valid for `frame.len()` bytes for the duration of the call.
    let rc = unsafe {
        zmq_sys::zmq_send(
            socket.as_mut_ptr(),
            frame.as_ptr().cast(),
            frame.len(),
            flags,
        )
    };
    if rc < 0 {
        // SAFETY: reads this thread's libzmq error number.
        Err(zmq::Error::from_raw(unsafe { zmq_sys::zmq_errno() }))
    } else {
        Ok(())
    }
}

/// Receive one multipart message into `parts`, reusing their buffers.
fn receive(socket: &zmq::Socket, parts: &mut Vec<zmq::Message>) -> Result<(), zmq::Error> {
    let mut count = 0;
    loop {
        if parts.len() == count {
            parts.push(zmq::Message::new());
        }
        // After the first part the rest of the message is already here.
        let flags = if count == 0 { zmq::DONTWAIT } else { 0 };
        socket.recv(&mut parts[count], flags)?;
        count += 1;
        if !parts[count - 1].get_more() {
            break;
        }
    }
    parts.truncate(count);
    Ok(())
}

/// Call `f` with the bytes of `parts`, without allocating for the usual
/// few frames.
fn with_slices<R>(parts: &[zmq::Message], f: impl FnOnce(&[&[u8]]) -> R) -> R {
    const INLINE: usize = 4;
    if parts.len() <= INLINE {
        let mut slices: [&[u8]; INLINE] = [&[]; INLINE];
        for (slice, part) in slices.iter_mut().zip(parts) {
            *slice = part;
        }
        f(&slices[..parts.len()])
    } else {
        f(&parts.iter().map(|m| &m[..]).collect::<Vec<&[u8]>>())
    }
}

/// Where an outgoing message goes: a remote's DEALER or a ROUTER peer.
#[derive(Debug)]
enum Destination {
    Remote(usize),
    Peer(Vec<u8>),
}

impl Destination {
    fn of(outgoing: &Outgoing) -> Option<Self> {
        match outgoing {
            Outgoing::ToRemote { remote, .. } => Some(Self::Remote(*remote)),
            Outgoing::ToPeer(frames) => frames.first().map(|id| Self::Peer(id.to_vec())),
        }
    }

    fn is(&self, outgoing: &Outgoing) -> bool {
        match (self, outgoing) {
            (Self::Remote(a), Outgoing::ToRemote { remote, .. }) => a == remote,
            (Self::Peer(a), Outgoing::ToPeer(frames)) => frames.first() == Some(a.as_slice()),
            _ => false,
        }
    }
}

/// Milliseconds to wait for `deadline` (none: a second at most, so that the
/// loop stays lively). epoll counts whole milliseconds: a deadline under
/// one away is polled for without waiting (a short retry is meant to come
/// soon), one further is waited for rounded up, so that the loop does not
/// spin through the last fraction of every millisecond it waits.
fn wait_until(deadline: Option<Instant>) -> i64 {
    deadline.map_or(1000, |at| {
        let left = at.saturating_duration_since(Instant::now());
        if left < Duration::from_millis(1) {
            return 0;
        }
        left.as_micros().div_ceil(1000).min(1000) as i64
    })
}

/// Records a round's time when it ends, however it ends.
struct Recorder<'a> {
    rounds: &'a RoundStats,
    since: Instant,
}

impl Drop for Recorder<'_> {
    fn drop(&mut self) {
        self.rounds.record(self.since.elapsed());
    }
}

/// Send what the service has to send; returns how many messages.
///
/// Once a destination's queue refuses a message, every later message to it
/// in the same flush is refused too, without trying: libzmq may free room
/// in between, and a later message must never overtake one the service
/// will send again (a newer value would then be overwritten by an older).
fn flush<S: Service>(h: &mut Hosted<S>) -> usize {
    let sockets = &mut h.sockets;
    let mut sent = 0;
    let mut full: Vec<Destination> = Vec::new();
    h.service.drain_outgoing(&mut |outgoing| {
        sent += 1;
        if !full.is_empty() && full.iter().any(|to| to.is(&outgoing)) {
            return Err(Refused {
                reason: RefusedReason::Full,
                outgoing,
            });
        }
        let result = sockets.send(outgoing);
        if let Err(Refused {
            reason: RefusedReason::Full,
            outgoing,
        }) = &result
        {
            full.extend(Destination::of(outgoing));
        }
        if let Err(Refused {
            reason: RefusedReason::Unreachable,
            outgoing: Outgoing::ToPeer(frames),
        }) = &result
        {
            // Gone: an inproc peer's entry goes here (tcp and ipc peers'
            // go with their connection).
            if let Some(routing_id) = frames.first() {
                if sockets.peer_fds.get(routing_id) == Some(&-1) {
                    sockets.peer_fds.remove(routing_id);
                }
            }
        }
        result
    });
    sent
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libzmq takes tcp ports modulo 65536; every service gets them checked.
    #[test]
    fn tcp_ports_out_of_range_are_refused() {
        assert!(check_tcp_port("tcp://127.0.0.1:99999", true).is_err());
        assert!(check_tcp_port("tcp://127.0.0.1:*", false).is_err());
        assert!(check_tcp_port("tcp://127.0.0.1", false).is_err());
        assert!(check_tcp_port("tcp://127.0.0.1:*", true).is_ok());
        assert!(check_tcp_port("tcp://10.0.0.1;127.0.0.1:5670", false).is_ok());
        assert!(check_tcp_port("ipc:///tmp/x", true).is_ok());
    }

    /// libzmq's default cap is 1023 sockets per context; a process hosting
    /// many nodes needs more.
    #[test]
    fn more_sockets_than_libzmqs_default_cap() {
        let sockets: Vec<zmq::Socket> = (0..1500)
            .map(|_| socket(zmq::DEALER).expect("a socket"))
            .collect();
        assert_eq!(sockets.len(), 1500);
    }

    /// The workspace's `.cargo/config.toml` builds libzmq with eventfd, as
    /// Debian does: a socket's `ZMQ_FD` is then an eventfd, not one end of
    /// a socket pair (which costs more per wake-up).
    #[cfg(target_os = "linux")]
    #[test]
    fn libzmq_signals_through_an_eventfd() {
        let dealer = socket(zmq::DEALER).expect("a socket");
        let fd = dealer.get_fd().expect("its descriptor");
        let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).expect("a descriptor");
        assert_eq!(target.to_string_lossy(), "anon_inode:[eventfd]");
    }
}
