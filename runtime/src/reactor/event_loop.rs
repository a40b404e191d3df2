//! The reactor thread's loop: one round reads what is ready, runs what is
//! due, and flushes what the services said to send.

use super::*;

pub(super) struct Hosted<S> {
    pub(super) service: Box<S>,
    pub(super) sockets: Sockets,
    /// The descriptors registered for its sockets.
    pub(super) registered: Vec<(i32, Source)>,
    /// The earliest time it has in the loop's timer heap, if any.
    pub(super) queued: Option<Instant>,
}

impl<S> Hosted<S> {
    pub(super) fn new(service: Box<S>) -> Self {
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
pub(super) enum Source {
    Wake,
    Router(ServiceId),
    Dealer(ServiceId, usize),
    Monitor(ServiceId, usize),
    RouterMonitor(ServiceId),
}

/// At most this many messages are read from one socket per poll, so that a
/// busy peer cannot starve the others.
pub(super) const BATCH: usize = 256;

pub(super) struct Loop<S: Service> {
    pub(super) wake: zmq::Socket,
    pub(super) requests: Receiver<Request<S>>,
    pub(super) services: FastMap<ServiceId, Hosted<S>>,
    pub(super) next_id: ServiceId,
    /// Receive buffers, reused from message to message.
    pub(super) parts: Vec<zmq::Message>,
    /// Readiness of every socket, through the descriptors libzmq signals.
    pub(super) waiter: Waiter,
}

impl<S: Service> Loop<S> {
    pub(super) fn new(
        wake: zmq::Socket,
        requests: Receiver<Request<S>>,
    ) -> Result<Self, zmq::Error> {
        Ok(Self {
            wake,
            requests,
            services: FastMap::default(),
            next_id: 0,
            parts: Vec::new(),
            waiter: Waiter::new()?,
        })
    }

    pub(super) fn run(mut self, rounds: &RoundStats) {
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
            self.waiter.register(fd, Source::Wake);
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
            self.waiter.wait(timeout, &mut ready);
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
                self.waiter.unregister(fd, source);
            }
        }
        let mut added = Vec::new();
        h.registered.clear();
        for (fd, source) in wanted {
            if self.waiter.register(fd, source) {
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
                            self.waiter.unregister(fd, source);
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

/// Milliseconds to wait for `deadline` (none: a second at most, so that the
/// loop stays lively). epoll counts whole milliseconds: a deadline under
/// one away is polled for without waiting (a short retry is meant to come
/// soon), one further is waited for rounded up, so that the loop does not
/// spin through the last fraction of every millisecond it waits.
pub(super) fn wait_until(deadline: Option<Instant>) -> i64 {
    deadline.map_or(1000, |at| {
        let left = at.saturating_duration_since(Instant::now());
        if left < Duration::from_millis(1) {
            return 0;
        }
        left.as_micros().div_ceil(1000).min(1000) as i64
    })
}

/// Records a round's time when it ends, however it ends.
pub(super) struct Recorder<'a> {
    pub(super) rounds: &'a RoundStats,
    pub(super) since: Instant,
}

impl Drop for Recorder<'_> {
    fn drop(&mut self) {
        self.rounds.record(self.since.elapsed());
    }
}
