//! The zgossip node, sans I/O: server sessions (the generated engine), remote
//! sessions, the tuple table and the acceptance rule. Drivers feed it frames,
//! commands and the time, and carry out its [`Output`]s; `zproto_runtime::reactor`
//! does so over ZeroMQ sockets.

use std::time::{Duration, Instant};

use zproto_runtime::server::Sessions;
use zproto_runtime::{Codec, Frame};

use crate::engine::{Event, Machine};
use crate::msg::{Announce, ZgossipMsg};
use crate::remote::{Received, Remote};
use crate::server::Gossip;
use crate::tuples::Tuples;

/// Settings of a node (`SET path value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `server/timeout`: a server session expires after this long without
    /// traffic (0: never). Default 10,000 ms. CZMQ's zgossip uses 1000 ms,
    /// which under load (thousands of nodes on one thread) lets sessions
    /// expire between keepalives, and each expiry costs a full re-sync:
    /// a margin of three keepalives is too thin.
    pub timeout: Duration,
    /// `remote/ping`: how often a remote session PINGs when otherwise quiet.
    /// Must stay well under the remote server's timeout (CZMQ: 1000 ms).
    pub ping_interval: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(10_000),
            ping_interval: Duration::from_millis(300),
        }
    }
}

/// A setting that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// No such path.
    #[error("unknown setting \"{0}\" (known: server/timeout, remote/ping)")]
    UnknownPath(String),
    /// The value is not a number of milliseconds.
    #[error("setting {path}: \"{value}\" is not a number of milliseconds")]
    BadValue {
        /// The path.
        path: String,
        /// The value given.
        value: String,
    },
}

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send frames to a peer on our ROUTER (routing id first).
    ToPeer(Vec<Frame>),
    /// Send frames to remote number `remote` (its DEALER).
    ToRemote {
        /// Index of the remote, as [`NodeCore::connect`] returned it.
        remote: usize,
        /// The frames.
        frames: Vec<Frame>,
    },
    /// A tuple new to this node, for the application.
    Deliver {
        /// Endpoint (tuple key).
        endpoint: String,
        /// Service (tuple value).
        service: String,
    },
}

/// Counters, for STATUS and for measuring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages decoded from peers and remotes.
    pub received: u64,
    /// Messages encoded to peers and remotes.
    pub sent: u64,
    /// ANNOUNCEs received for tuples already known.
    pub duplicates: u64,
    /// Frames that failed to decode, logged and dropped.
    pub malformed: u64,
}

/// One zgossip node.
#[derive(Debug)]
pub struct NodeCore {
    name: String,
    settings: Settings,
    sessions: Sessions<Machine<Gossip>>,
    gossip: Gossip,
    remotes: Vec<Remote>,
    outputs: Vec<Output>,
    stats: Stats,
}

impl NodeCore {
    /// A node; `name` prefixes its log lines.
    pub fn new(name: impl Into<String>, settings: Settings) -> Self {
        Self {
            name: name.into(),
            sessions: Sessions::new(Some(settings.timeout)),
            settings,
            gossip: Gossip::default(),
            remotes: Vec::new(),
            outputs: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every tuple the node knows.
    pub fn tuples(&self) -> &Tuples {
        &self.gossip.tuples
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Current settings.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Number of live server sessions.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Log every state, event and action of the server sessions.
    pub fn set_verbose(&mut self, on: bool) {
        self.sessions.set_animate(on);
    }

    /// `SET path value`.
    pub fn set(&mut self, path: &str, value: &str) -> Result<(), SettingError> {
        let ms = || {
            value
                .trim()
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| SettingError::BadValue {
                    path: path.to_owned(),
                    value: value.to_owned(),
                })
        };
        match path {
            "server/timeout" => {
                self.settings.timeout = ms()?;
                self.sessions.set_timeout(Some(self.settings.timeout));
            }
            "remote/ping" => {
                let interval = ms()?;
                if interval.is_zero() {
                    return Err(SettingError::BadValue {
                        path: path.to_owned(),
                        value: value.to_owned(),
                    });
                }
                self.settings.ping_interval = interval;
            }
            // Accepted for compatibility with CZMQ's engine, which has it.
            "server/verbose" => self.set_verbose(value.trim() != "0"),
            other => return Err(SettingError::UnknownPath(other.to_owned())),
        }
        Ok(())
    }

    /// Frames received on our ROUTER (routing id first).
    pub fn on_peer_frames<F: AsRef<[u8]>>(&mut self, frames: &[F], now: Instant) {
        match ZgossipMsg::decode_routed(frames) {
            Ok((routing_id, message)) => {
                self.stats.received += 1;
                if matches!(message, ZgossipMsg::Announce(_)) && self.is_duplicate(&message) {
                    self.stats.duplicates += 1;
                }
                self.sessions
                    .handle(&mut self.gossip, routing_id, message, now);
                self.after_sessions(now);
            }
            Err(e) => {
                // Logged and dropped; every other session goes on.
                self.stats.malformed += 1;
                tracing::warn!(node = %self.name, "malformed message from a peer dropped: {e}");
            }
        }
    }

    fn is_duplicate(&self, message: &ZgossipMsg) -> bool {
        match message {
            ZgossipMsg::Announce(a) => {
                self.gossip.tuples.get(&a.endpoint).as_deref() == Some(a.service.as_str())
            }
            _ => false,
        }
    }

    /// Frames received on remote number `remote`'s DEALER.
    pub fn on_remote_frames<F: AsRef<[u8]>>(&mut self, remote: usize, frames: &[F], now: Instant) {
        if remote >= self.remotes.len() {
            return;
        }
        let message = match ZgossipMsg::decode(frames) {
            Ok(message) => message,
            Err(e) => {
                self.stats.malformed += 1;
                tracing::warn!(node = %self.name, endpoint = %self.remotes[remote].endpoint(), "malformed message from a remote dropped: {e}");
                return;
            }
        };
        self.stats.received += 1;
        let mut sent = Vec::new();
        let interval = self.settings.ping_interval;
        let received =
            self.remotes[remote].receive(message, &self.gossip.tuples, interval, now, &mut |m| {
                sent.push(m)
            });
        self.send_to_remote(remote, sent);
        if let Received::Tuple(endpoint, service) = received {
            self.accept(endpoint, service, Some(remote), now);
        }
    }

    /// Remote number `remote`'s connection was lost and is back: the server
    /// sees a new session, so synchronise again.
    pub fn on_remote_reconnected(&mut self, remote: usize, now: Instant) {
        let Some(r) = self.remotes.get_mut(remote) else {
            return;
        };
        let mut sent = Vec::new();
        r.reconnected(
            &self.gossip.tuples,
            self.settings.ping_interval,
            now,
            &mut |m| sent.push(m),
        );
        self.send_to_remote(remote, sent);
    }

    /// `CONNECT endpoint`: open a remote session; returns its index. The
    /// driver connects a DEALER for it; the opening HELLO, our tuples and a
    /// PING are already in the outputs.
    pub fn connect(&mut self, endpoint: &str, now: Instant) -> usize {
        let mut sent = Vec::new();
        let remote = Remote::new(
            endpoint,
            &self.gossip.tuples,
            self.settings.ping_interval,
            now,
            &mut |m| sent.push(m),
        );
        self.remotes.push(remote);
        let index = self.remotes.len() - 1;
        self.send_to_remote(index, sent);
        index
    }

    /// The remotes, by index.
    pub fn remotes(&self) -> &[Remote] {
        &self.remotes
    }

    /// `ANNOUNCE endpoint service`: a tuple from the application.
    pub fn announce(&mut self, endpoint: &str, service: &str, now: Instant) {
        self.accept(endpoint.to_owned(), service.to_owned(), None, now);
    }

    /// The acceptance rule for tuples from the application or a remote:
    /// store if new, deliver, flood to every session and every other remote.
    fn accept(
        &mut self,
        endpoint: String,
        service: String,
        from_remote: Option<usize>,
        now: Instant,
    ) {
        if !self.gossip.tuples.accept(&endpoint, &service) {
            self.stats.duplicates += 1;
            return;
        }
        self.gossip.forwarding = Some((endpoint.clone(), service.clone()));
        self.sessions
            .broadcast(&mut self.gossip, Event::Forward, now);
        self.flush_sessions();
        self.flood(&endpoint, &service, from_remote, now);
        self.outputs.push(Output::Deliver { endpoint, service });
    }

    /// After server sessions ran: send their messages, and deliver and pass
    /// on to remotes what they accepted.
    fn after_sessions(&mut self, now: Instant) {
        self.flush_sessions();
        for (endpoint, service) in std::mem::take(&mut self.gossip.accepted) {
            self.flood(&endpoint, &service, None, now);
            self.outputs.push(Output::Deliver { endpoint, service });
        }
    }

    fn flush_sessions(&mut self) {
        let (outputs, stats, name) = (&mut self.outputs, &mut self.stats, &self.name);
        self.sessions.drain_outgoing(|routing_id, message| {
            match message.encode_routed(routing_id) {
                Ok(frames) => {
                    stats.sent += 1;
                    outputs.push(Output::ToPeer(frames));
                }
                Err(e) => tracing::warn!(node = %name, "cannot encode for a peer: {e}"),
            }
        });
    }

    /// Send a tuple to every remote but `except`: encoded once, copied.
    fn flood(&mut self, endpoint: &str, service: &str, except: Option<usize>, now: Instant) {
        if self.remotes.len() <= usize::from(except.is_some()) {
            return;
        }
        let message = ZgossipMsg::from(Announce {
            endpoint: endpoint.to_owned(),
            service: service.to_owned(),
            ttl: 0,
        });
        let frames = match message.encode() {
            Ok(frames) => frames,
            Err(e) => {
                tracing::warn!(node = %self.name, "cannot encode for a remote: {e}");
                return;
            }
        };
        for index in 0..self.remotes.len() {
            if Some(index) == except {
                continue;
            }
            self.remotes[index].sent_traffic(self.settings.ping_interval, now);
            self.stats.sent += 1;
            self.outputs.push(Output::ToRemote {
                remote: index,
                frames: frames.clone(),
            });
        }
    }

    fn send_to_remote(&mut self, remote: usize, messages: Vec<ZgossipMsg>) {
        for message in messages {
            match message.encode() {
                Ok(frames) => {
                    self.stats.sent += 1;
                    self.outputs.push(Output::ToRemote { remote, frames });
                }
                Err(e) => tracing::warn!(node = %self.name, "cannot encode for a remote: {e}"),
            }
        }
    }

    /// Fire due session expiries and wakeups, and remote keepalives.
    pub fn tick(&mut self, now: Instant) {
        self.sessions.tick(&mut self.gossip, now);
        self.after_sessions(now);
        let interval = self.settings.ping_interval;
        for index in 0..self.remotes.len() {
            let mut sent = Vec::new();
            self.remotes[index].tick(interval, now, &mut |m| sent.push(m));
            self.send_to_remote(index, sent);
        }
    }

    /// When [`NodeCore::tick`] next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let remotes = self.remotes.iter().map(Remote::next_deadline).min();
        match (self.sessions.next_deadline(), remotes) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// What the driver must do, in order.
    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    /// What the driver must do, in order, keeping the queue's buffer.
    pub fn drain_outputs(&mut self) -> std::vec::Drain<'_, Output> {
        self.outputs.drain(..)
    }
}
