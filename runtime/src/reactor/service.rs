//! What a reactor runs: the [`Service`] trait, and what a service sends.

use super::*;

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

/// Something a reactor runs: a server (peers on a ROUTER), remote sessions
/// (DEALERs), or both, driven by frames, commands and time. A service has
/// the roles it implements: the peer and remote callbacks do nothing by
/// default (a server host has no remotes, a client host no peers).
pub trait Service: Send + 'static {
    /// What the application asks of the service.
    type Command: Send + 'static;
    /// Carry out a command; `sockets` binds and connects.
    fn command(&mut self, command: Self::Command, sockets: &mut Sockets, now: Instant);
    /// Frames from a peer, routing id first (borrowed from the socket's
    /// buffers: nothing is copied to receive).
    fn on_peer(&mut self, frames: &[&[u8]], now: Instant) {
        let _ = (frames, now);
    }
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
    fn on_remote(&mut self, remote: usize, frames: &[&[u8]], sockets: &mut Sockets, now: Instant) {
        let _ = (remote, frames, sockets, now);
    }
    /// Remote `remote`'s connection was lost and is established again (tcp
    /// and ipc; libzmq reconnects by itself). The peer sees a new connection.
    fn on_remote_reconnected(&mut self, remote: usize, now: Instant) {
        let _ = (remote, now);
    }
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
