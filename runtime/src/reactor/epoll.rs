//! Waiting for descriptors: Linux's epoll, edge-triggered, as libzmq's
//! `ZMQ_FD` requires.

use super::*;

/// An epoll set over libzmq's `ZMQ_FD` descriptors.
///
/// libzmq signals such a descriptor only when its socket goes from "nothing
/// to do" to "something to do", and any call into the socket (a send, a
/// getsockopt) may consume that signal. So the loop never waits on a socket
/// it has used since a read last found it empty, until `ZMQ_EVENTS` says it
/// has no input left: such sockets are kept "hot" and read without waiting. Unlike zmq_poll, a wait costs
/// nothing per idle socket, which matters with thousands of sockets.
pub(super) struct Epoll {
    pub(super) fd: i32,
    /// Registered descriptors and the socket each stands for.
    pub(super) sources: FastMap<i32, Source>,
    pub(super) events: Vec<libc::epoll_event>,
}

impl Epoll {
    pub(super) fn new() -> Result<Self, zmq::Error> {
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
    pub(super) fn register(&mut self, fd: i32, source: Source) -> bool {
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
    pub(super) fn unregister(&mut self, fd: i32, source: Source) {
        if self.sources.get(&fd) != Some(&source) {
            return;
        }
        self.sources.remove(&fd);
        // SAFETY: removing a descriptor that may already be closed; an
        // error (EBADF, ENOENT) only means it is gone already.
        unsafe { libc::epoll_ctl(self.fd, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
    }

    /// Sources whose descriptor signalled within `timeout` ms.
    pub(super) fn wait(&mut self, timeout: i64, ready: &mut Vec<Source>) {
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
