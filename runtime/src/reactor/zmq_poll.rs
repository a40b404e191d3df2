//! Waiting for descriptors with `zmq_poll(3)`: the portable fallback to
//! epoll (feature `zmq-poll`, and wherever epoll is missing). It polls
//! libzmq's `ZMQ_FD` descriptors as plain descriptors, which is how
//! `zmq_getsockopt(3)` says to use them, so the loop's "hot" sockets work
//! as with epoll. A wait costs a pass over every registered descriptor:
//! fine for a handful of services, not for thousands of nodes.

use super::*;

/// `ZMQ_POLLIN`: readable.
const ZMQ_POLLIN: std::os::raw::c_short = 1;

/// The registered descriptors, polled together.
pub(super) struct ZmqPoll {
    /// Registered descriptors and the socket each stands for.
    pub(super) sources: FastMap<i32, Source>,
    /// The poll items, rebuilt from `sources` when they change.
    items: Vec<zmq_sys::zmq_pollitem_t>,
    stale: bool,
}

impl ZmqPoll {
    pub(super) fn new() -> Result<Self, zmq::Error> {
        Ok(Self {
            sources: FastMap::default(),
            items: Vec::new(),
            stale: false,
        })
    }

    /// Register `fd` for `source`, unless it is already; returns whether
    /// it was not.
    pub(super) fn register(&mut self, fd: i32, source: Source) -> bool {
        if self.sources.get(&fd) == Some(&source) {
            return false;
        }
        self.sources.insert(fd, source);
        self.stale = true;
        true
    }

    /// Forget `fd`, if it still stands for `source`.
    pub(super) fn unregister(&mut self, fd: i32, source: Source) {
        if self.sources.get(&fd) == Some(&source) {
            self.sources.remove(&fd);
            self.stale = true;
        }
    }

    /// Sources whose descriptor is readable within `timeout` ms.
    pub(super) fn wait(&mut self, timeout: i64, ready: &mut Vec<Source>) {
        if self.stale {
            self.items = self
                .sources
                .keys()
                .map(|&fd| zmq_sys::zmq_pollitem_t {
                    socket: std::ptr::null_mut(),
                    fd,
                    events: ZMQ_POLLIN,
                    revents: 0,
                })
                .collect();
            self.stale = false;
        }
        let count = std::os::raw::c_int::try_from(self.items.len()).unwrap_or(0);
        // A hot source waits for nothing: `timeout` is 0 then.
        let timeout = std::os::raw::c_long::try_from(timeout).unwrap_or(1000);
        // SAFETY: `items` holds `count` initialised entries for the call;
        // null sockets make libzmq poll the descriptors themselves.
        let n = unsafe { zmq_sys::zmq_poll(self.items.as_mut_ptr(), count, timeout) };
        if n <= 0 {
            return;
        }
        let mut seen: HashSet<Source, foldhash::fast::RandomState> =
            ready.iter().copied().collect();
        for item in &self.items {
            if item.revents == 0 {
                continue;
            }
            if let Some(&source) = self.sources.get(&item.fd) {
                if seen.insert(source) {
                    ready.push(source);
                }
            }
        }
    }
}
