//! The ZeroMQ driver: one thread polls the sockets of any number of
//! [`Service`]s (a ROUTER per bound service, a DEALER per remote, a monitor
//! per tcp/ipc remote) and runs them. Sans-IO services (such as a
//! [`crate::server::Sessions`] table plus application logic) say what to
//! send; the reactor sends it. Applications talk to their service through
//! [`Reactor::command`]; requests travel over a channel, and a message on an
//! inproc PULL socket wakes the poll.
//!
//! One concept per module: `context` (the process-wide libzmq context),
//! `service` (the [`Service`] trait and what it sends), `options` (socket
//! options and security), `sockets` (a service's ROUTER, DEALERs, binds
//! and connects), `monitor` (peers admitted and gone, refused handshakes),
//! `handle` (the application's [`Reactor`]), `event_loop` (the thread's
//! rounds), `epoll` or `zmq_poll` (waiting for descriptors) and `flush`
//! (frames in and out). The loop waits with Linux's epoll, which costs
//! nothing per idle socket; the `zmq-poll` feature (and any other system)
//! waits with `zmq_poll`, a pass over every socket per wait.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use crate::credentials::CurveClient;
use crate::credentials::PlainCredentials;
use crate::endpoint::BindPlan;
use crate::packet::Packet;

mod context;
#[cfg(all(target_os = "linux", not(feature = "zmq-poll")))]
mod epoll;
mod event_loop;
mod flush;
mod handle;
mod monitor;
mod options;
mod service;
mod sockets;
#[cfg(any(not(target_os = "linux"), feature = "zmq-poll"))]
mod zmq_poll;

/// How the loop waits for descriptors: epoll on Linux, `zmq_poll`
/// elsewhere or with the `zmq-poll` feature.
#[cfg(all(target_os = "linux", not(feature = "zmq-poll")))]
type Waiter = epoll::Epoll;
#[cfg(any(not(target_os = "linux"), feature = "zmq-poll"))]
type Waiter = zmq_poll::ZmqPoll;

pub use context::*;
use event_loop::*;
use flush::*;
pub use handle::*;
use monitor::*;
pub use options::*;
pub use service::*;
pub use sockets::*;

/// Maps keyed by small integers (descriptors, service ids), looked up on
/// every message: a fast hash, not SipHash.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

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
