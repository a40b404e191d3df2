//! The remote side of a node: our session with another node's server, over a
//! DEALER socket. Sans-IO: it says what to send; the driver sends it.
//!
//! CZMQ's remote side loses updates (reference 6.9, 6.10): it never PINGs,
//! so the server's session expires and later ANNOUNCEs are refused; after an
//! INVALID it says HELLO but does not re-send its tuples. Ours:
//!
//! * PINGs every `ping_interval`, so the session never silently expires;
//! * (re)synchronises with a *generation*: HELLO, every tuple we know, then a
//!   PING as a marker. The PONG to that marker ends the generation;
//! * answers INVALID with a new generation. INVALIDs that arrive while a
//!   generation is in flight answer messages sent before its HELLO (frames
//!   queued while disconnected, say): they are noted, and if any came, one
//!   more generation follows the marker's PONG. Each retry starts from a
//!   session the server has just reset, so it converges;
//! * starts a new generation when the connection is re-established (libzmq
//!   gives the new connection a new routing id: a fresh server session).

use std::time::{Duration, Instant};

use crate::msg::{Announce, Hello, Ping, ZgossipMsg};
use crate::tuples::Tuples;

/// Our session with one remote server.
#[derive(Debug)]
pub struct Remote {
    endpoint: String,
    pings_sent: u64,
    pongs_received: u64,
    /// While a generation is in flight: the PONG count that ends it.
    marker: Option<u64>,
    invalid_during_sync: bool,
    next_ping: Instant,
}

/// What the remote's server said, as far as the remote side cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A tuple to run through acceptance.
    Tuple(String, String),
    /// Nothing for the node to do.
    Nothing,
}

impl Remote {
    /// A remote for `endpoint`; `send` receives the opening generation.
    pub fn new(
        endpoint: &str,
        tuples: &Tuples,
        ping_interval: Duration,
        now: Instant,
        send: &mut impl FnMut(ZgossipMsg),
    ) -> Self {
        let mut remote = Self {
            endpoint: endpoint.to_owned(),
            pings_sent: 0,
            pongs_received: 0,
            marker: None,
            invalid_during_sync: false,
            next_ping: now + ping_interval,
        };
        remote.synchronise(tuples, ping_interval, now, send);
        remote
    }

    /// The endpoint we connected to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether a generation is in flight.
    pub fn is_synchronising(&self) -> bool {
        self.marker.is_some()
    }

    /// Start a generation: HELLO, every tuple, a marker PING.
    fn synchronise(
        &mut self,
        tuples: &Tuples,
        ping_interval: Duration,
        now: Instant,
        send: &mut impl FnMut(ZgossipMsg),
    ) {
        send(Hello.into());
        for (endpoint, service) in tuples.to_vec() {
            send(
                Announce {
                    endpoint: endpoint.to_string(),
                    service: service.to_string(),
                    ttl: 0,
                }
                .into(),
            );
        }
        self.ping(ping_interval, now, send);
        self.marker = Some(self.pings_sent);
        self.invalid_during_sync = false;
    }

    fn ping(&mut self, ping_interval: Duration, now: Instant, send: &mut impl FnMut(ZgossipMsg)) {
        send(Ping.into());
        self.pings_sent += 1;
        self.next_ping = now + ping_interval;
    }

    /// Any message we send counts as traffic for the server's expiry.
    pub fn sent_traffic(&mut self, ping_interval: Duration, now: Instant) {
        self.next_ping = now + ping_interval;
    }

    /// A message from the remote's server.
    pub fn receive(
        &mut self,
        message: ZgossipMsg,
        tuples: &Tuples,
        ping_interval: Duration,
        now: Instant,
        send: &mut impl FnMut(ZgossipMsg),
    ) -> Received {
        match message {
            ZgossipMsg::Announce(a) => return Received::Tuple(a.endpoint, a.service),
            ZgossipMsg::Pong(_) => {
                self.pongs_received += 1;
                if self.marker.is_some_and(|m| self.pongs_received >= m) {
                    self.marker = None;
                    if self.invalid_during_sync {
                        self.synchronise(tuples, ping_interval, now, send);
                    }
                }
            }
            ZgossipMsg::Invalid(_) => {
                if self.marker.is_some() {
                    self.invalid_during_sync = true;
                } else {
                    tracing::debug!(endpoint = %self.endpoint, "INVALID from server: synchronising again");
                    self.synchronise(tuples, ping_interval, now, send);
                }
            }
            // A server never sends these; ignore them as CZMQ does.
            ZgossipMsg::Hello(_) | ZgossipMsg::Ping(_) => {}
        }
        Received::Nothing
    }

    /// The connection was lost and is back: the server sees a new session.
    pub fn reconnected(
        &mut self,
        tuples: &Tuples,
        ping_interval: Duration,
        now: Instant,
        send: &mut impl FnMut(ZgossipMsg),
    ) {
        tracing::debug!(endpoint = %self.endpoint, "reconnected: synchronising again");
        // PINGs queued on the old connection may be lost or answered late.
        self.pings_sent = 0;
        self.pongs_received = 0;
        self.synchronise(tuples, ping_interval, now, send);
    }

    /// Send a keepalive PING if one is due.
    pub fn tick(
        &mut self,
        ping_interval: Duration,
        now: Instant,
        send: &mut impl FnMut(ZgossipMsg),
    ) {
        if now >= self.next_ping {
            self.ping(ping_interval, now, send);
        }
    }

    /// When the next keepalive is due.
    pub fn next_deadline(&self) -> Instant {
        self.next_ping
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{Invalid, Pong};

    const PING: Duration = Duration::from_millis(300);

    fn names(sent: &[ZgossipMsg]) -> Vec<&'static str> {
        use zproto_runtime::Codec;
        sent.iter().map(|m| m.command()).collect()
    }

    fn tuples() -> Tuples {
        let mut t = Tuples::default();
        t.accept("tcp://a:1", "a");
        t
    }

    #[test]
    fn opens_with_hello_tuples_and_a_marker_ping() {
        let mut sent = Vec::new();
        let r = Remote::new("tcp://x:1", &tuples(), PING, Instant::now(), &mut |m| {
            sent.push(m)
        });
        assert_eq!(names(&sent), ["HELLO", "ANNOUNCE", "PING"]);
        assert!(r.is_synchronising());
    }

    #[test]
    fn invalid_after_sync_starts_a_new_generation() {
        let now = Instant::now();
        let t = tuples();
        let mut sent = Vec::new();
        let mut r = Remote::new("tcp://x:1", &t, PING, now, &mut |m| sent.push(m));
        r.receive(Pong.into(), &t, PING, now, &mut |m| sent.push(m));
        assert!(!r.is_synchronising());
        sent.clear();
        r.receive(Invalid.into(), &t, PING, now, &mut |m| sent.push(m));
        assert_eq!(names(&sent), ["HELLO", "ANNOUNCE", "PING"]);
    }

    #[test]
    fn invalid_during_sync_is_retried_once_the_marker_returns() {
        let now = Instant::now();
        let t = tuples();
        let mut sent = Vec::new();
        let mut r = Remote::new("tcp://x:1", &t, PING, now, &mut |m| sent.push(m));
        sent.clear();
        r.receive(Invalid.into(), &t, PING, now, &mut |m| sent.push(m));
        r.receive(Invalid.into(), &t, PING, now, &mut |m| sent.push(m));
        assert!(sent.is_empty(), "stale INVALIDs alone send nothing");
        r.receive(Pong.into(), &t, PING, now, &mut |m| sent.push(m));
        assert_eq!(names(&sent), ["HELLO", "ANNOUNCE", "PING"]);
        sent.clear();
        r.receive(Pong.into(), &t, PING, now, &mut |m| sent.push(m));
        assert!(sent.is_empty() && !r.is_synchronising());
    }

    #[test]
    fn keepalive_pings_when_quiet_and_reconnects_resync() {
        let now = Instant::now();
        let t = tuples();
        let mut sent = Vec::new();
        let mut r = Remote::new("tcp://x:1", &t, PING, now, &mut |_| {});
        r.tick(PING, now + PING / 2, &mut |m| sent.push(m));
        assert!(sent.is_empty());
        r.tick(PING, now + PING, &mut |m| sent.push(m));
        assert_eq!(names(&sent), ["PING"]);
        sent.clear();
        r.reconnected(&t, PING, now, &mut |m| sent.push(m));
        assert_eq!(names(&sent), ["HELLO", "ANNOUNCE", "PING"]);
    }
}
