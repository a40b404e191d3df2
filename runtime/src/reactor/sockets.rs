//! The sockets of one service: its ROUTER, its DEALERs, their monitors,
//! binds (CZMQ's syntax) and connects.

use super::*;

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
    pub(super) options: SocketOptions,
    pub(super) security: Security,
    pub(super) router: Option<zmq::Socket>,
    /// The ROUTER's monitor: disconnections of tcp and ipc peers.
    pub(super) router_monitor: Option<zmq::Socket>,
    /// Peers seen on the ROUTER: routing id to the connection's descriptor
    /// (tcp, ipc), or -1 (inproc, which reports no disconnection; such an
    /// entry goes when a send to it finds the peer gone). A connection
    /// carries one routing id.
    pub(super) peer_fds: FastMap<Vec<u8>, i32>,
    /// Descriptor to routing id, for tcp and ipc peers.
    pub(super) fd_peers: FastMap<i32, Vec<u8>>,
    pub(super) port: i32,
    pub(super) dealers: Vec<zmq::Socket>,
    /// Per remote: its monitor socket, for tcp and ipc endpoints.
    pub(super) monitors: Vec<Option<zmq::Socket>>,
    /// Per remote: whether its connection was lost since the last handshake.
    pub(super) lost: Vec<bool>,
    /// Failed handshakes (refused or refusing peers) are logged at most
    /// ten a second.
    pub(super) refusals: crate::throttle::Throttle,
    /// A socket was opened since the reactor last registered descriptors.
    pub(super) changed: bool,
    /// PLAIN credentials for new DEALERs.
    pub(super) credentials: Option<PlainCredentials>,
    /// CURVE keys for new DEALERs.
    pub(super) curve_client: Option<CurveClient>,
    /// The ROUTER was used (sent on, bound) since a read last found it
    /// empty; see [`Sockets::look_again`].
    pub(super) router_unchecked: bool,
    /// Per remote: its DEALER was sent on since a read last found it empty.
    pub(super) dealers_unchecked: Vec<bool>,
    /// Some entry of `dealers_unchecked` is set.
    pub(super) any_dealer_unchecked: bool,
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

/// The port of a tcp endpoint, checked where libzmq is lax: it takes a
/// port over 65535 modulo 65536 (`:99999` binds 34463). CZMQ's `*` and `!`
/// forms ([`crate::endpoint`]) are for binds only.
pub(super) fn check_tcp_port(endpoint: &str, bind: bool) -> Result<(), String> {
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
pub(super) fn bind_as_czmq(router: &zmq::Socket, endpoint: &str) -> Result<(), String> {
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

impl Sockets {
    /// Whether a socket was opened since the last call.
    pub(super) fn take_changed(&mut self) -> bool {
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
    pub(super) fn descriptors(&self, id: ServiceId, out: &mut FastMap<i32, Source>) {
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
    pub(super) fn look_again(&mut self, id: ServiceId, hot: &mut Vec<Source>) {
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
    pub(super) fn read_empty(&mut self, remote: Option<usize>) {
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

    pub(super) fn send(&mut self, outgoing: Outgoing) -> Result<(), Refused> {
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
    pub(super) fn forget_fd(&mut self, fd: i32) -> Option<Vec<u8>> {
        let routing_id = self.fd_peers.remove(&fd)?;
        self.peer_fds.remove(&routing_id);
        Some(routing_id)
    }
}
