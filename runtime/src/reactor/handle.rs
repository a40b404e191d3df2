//! The application's side: [`Reactor`], the handle that adds services and
//! sends them commands, and its round statistics.

use super::*;

/// The reactor thread is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the reactor has stopped")]
pub struct Stopped;

/// Identifies a service on its reactor.
pub type ServiceId = usize;

pub(super) enum Request<S: Service> {
    Add(Box<S>, Sender<ServiceId>),
    Command(ServiceId, S::Command),
    Remove(ServiceId),
    Shutdown,
}

/// How busy a reactor thread is: rounds of its loop (one wake-up each)
/// and the time they took, from after the wait to the next wait.
#[derive(Debug, Default)]
pub struct RoundStats {
    pub(super) rounds: AtomicU64,
    pub(super) busy_nanos: AtomicU64,
    pub(super) longest_nanos: AtomicU64,
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
    pub(super) fn record(&self, took: std::time::Duration) {
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
    pub(super) requests: Sender<Request<S>>,
    pub(super) wake: Mutex<zmq::Socket>,
    pub(super) thread: Mutex<Option<JoinHandle<()>>>,
    pub(super) rounds: Arc<RoundStats>,
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
