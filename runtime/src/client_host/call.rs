//! The calls of one client, one at a time ([`Call`] has the rule).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::client::{Answer, ClientMachine};

use super::ClientError;

/// Stores a method's arguments.
pub type StoreArgs<C> = Box<dyn FnOnce(&mut <C as ClientMachine>::Args) + Send>;

/// Which replies end a call: a method's `<accept>` list.
pub type Accept<R> = fn(&R) -> bool;

/// Where a call's outcome goes.
pub(super) type Outcome<R> = flume::Sender<Result<R, ClientError>>;

/// What a call waits for: the replies that end it, and where its outcome
/// goes.
type Waiter<R> = (Accept<R>, Outcome<R>);

/// Calls queued at most per client, beyond the one in flight; more fail
/// at once with [`ClientError::Busy`].
pub const CALL_QUEUE: usize = 1024;

/// One call of an API method, from its caller to the reactor thread.
///
/// zproto's replies carry no correlation id: a reply answers whatever call
/// the machine is waiting on. So a client runs its calls in order, one at
/// a time, on the reactor thread, and the rule that keeps a reply with its
/// call is this: **a call stays in flight until its accepted reply, its
/// deadline, or an error ends it, whether or not its caller still waits**.
/// A caller that gives up (an async future dropped at any await point)
/// leaves its call in flight; the reply that comes for it is discarded, and
/// the next call starts only afterwards, so it can never take that reply.
/// A call still queued when its caller gives up never runs, and one whose
/// deadline passes in the queue fails with [`ClientError::Timeout`]
/// without running.
///
/// A reply that comes after its call's deadline passed cannot be told from
/// one to the next call; calls that run the machine therefore discard the
/// replies that came before them, and only an immediate method (one that
/// waits without running the machine) takes one of those.
pub struct Call<C: ClientMachine> {
    /// The method's event and arguments; `None` for an immediate method.
    run: Option<(C::Event, StoreArgs<C>)>,
    /// The replies that end it, and where the outcome goes; `None` for a
    /// method that waits for nothing.
    wait: Option<Waiter<C::Reply>>,
    /// How long its caller waits, and until when.
    timeout: Duration,
    deadline: Instant,
}

impl<C: ClientMachine> Call<C> {
    /// A method that runs `event` and waits for nothing.
    pub(super) fn fire(event: C::Event, store: StoreArgs<C>) -> Self {
        Self {
            run: Some((event, store)),
            wait: None,
            timeout: Duration::ZERO,
            deadline: Instant::now(),
        }
    }

    /// A method that runs `event` (if any) and waits up to `timeout` for a
    /// reply `accept` takes; the outcome goes to `outcome`.
    pub(super) fn request(
        run: Option<(C::Event, StoreArgs<C>)>,
        accept: Accept<C::Reply>,
        timeout: Duration,
        outcome: Outcome<C::Reply>,
    ) -> Self {
        let now = Instant::now();
        Self {
            run,
            wait: Some((accept, outcome)),
            timeout,
            deadline: now.checked_add(timeout).unwrap_or(now + MAX_WAIT),
        }
    }

    /// Whether its caller gave up.
    fn abandoned(&self) -> bool {
        self.wait
            .as_ref()
            .is_some_and(|(_, outcome)| outcome.is_disconnected())
    }

    /// Tell the caller, if it still listens.
    fn finish(self, outcome: Result<C::Reply, ClientError>) {
        if let Some((_, sender)) = self.wait {
            let _ = sender.try_send(outcome);
        }
    }
}

/// The longest wait a deadline can express (a caller's `Duration::MAX`).
const MAX_WAIT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// What the host does next for the call queue.
pub(super) enum Step<C: ClientMachine> {
    /// Run this method's event on the machine.
    Run(C::Event, StoreArgs<C>),
    /// Nothing to run now.
    Idle,
}

/// A client's calls: the one in flight and those behind it, with the
/// replies that came while none was in flight.
pub(super) struct Calls<C: ClientMachine> {
    current: Option<Call<C>>,
    queued: VecDeque<Call<C>>,
    /// Replies no call took, oldest first, at most [`super::ANSWER_QUEUE`]:
    /// an immediate method may take one.
    unclaimed: VecDeque<C::Reply>,
}

impl<C: ClientMachine> Default for Calls<C> {
    fn default() -> Self {
        Self {
            current: None,
            queued: VecDeque::new(),
            unclaimed: VecDeque::new(),
        }
    }
}

impl<C: ClientMachine> Calls<C> {
    /// Queue `call` behind the others (or fail it, when
    /// [`CALL_QUEUE`] wait already).
    pub(super) fn push(&mut self, call: Call<C>) {
        if self.queued.len() >= CALL_QUEUE {
            call.finish(Err(ClientError::Busy(CALL_QUEUE)));
        } else {
            self.queued.push_back(call);
        }
    }

    /// An answer from the machine. Returns whether it was dropped for
    /// want of room (a reply nobody waits for, beyond the bound).
    pub(super) fn answer(&mut self, answer: Answer<C::Reply>) -> bool {
        let Some(current) = &self.current else {
            if let Answer::Reply(reply) = answer {
                if self.unclaimed.len() >= super::ANSWER_QUEUE {
                    return true;
                }
                self.unclaimed.push_back(reply);
            }
            return false;
        };
        let Some((accept, _)) = &current.wait else {
            return false;
        };
        let outcome = match answer {
            // A reply the method does not accept is discarded, as
            // zproto's API does.
            Answer::Reply(reply) if !accept(&reply) => return false,
            Answer::Reply(reply) => Ok(reply),
            Answer::Unhandled { state, event } => Err(ClientError::Unhandled { state, event }),
            Answer::Stopped => Err(ClientError::Stopped),
        };
        if let Some(call) = self.current.take() {
            call.finish(outcome);
        }
        false
    }

    /// The method that just ran waits for nothing: it is done.
    pub(super) fn ran(&mut self) {
        if self.current.as_ref().is_some_and(|c| c.wait.is_none()) {
            self.current = None;
        }
    }

    /// The next thing to do: end the call in flight if its deadline
    /// passed, then start the next one unless one is still in flight.
    /// `stopped`: the machine took its last event.
    pub(super) fn next(&mut self, now: Instant, stopped: bool) -> Step<C> {
        if let Some(current) = self.current.take() {
            if stopped && current.wait.is_some() {
                current.finish(Err(ClientError::Stopped));
            } else if current.deadline <= now && current.wait.is_some() {
                let timeout = current.timeout;
                current.finish(Err(ClientError::Timeout(timeout)));
            } else {
                self.current = Some(current);
                return Step::Idle;
            }
        }
        while let Some(mut call) = self.queued.pop_front() {
            if call.abandoned() {
                continue;
            }
            match call.run.take() {
                Some((event, store)) => {
                    // A call that runs the machine takes only replies that
                    // come after it: those before answered someone else.
                    self.unclaimed.clear();
                    self.current = Some(call);
                    return Step::Run(event, store);
                }
                None => {
                    // An immediate method: a reply that came already, if
                    // one is accepted (those before it are discarded).
                    if let Some((accept, _)) = &call.wait {
                        if let Some(at) = self.unclaimed.iter().position(accept) {
                            self.unclaimed.drain(..at);
                            if let Some(reply) = self.unclaimed.pop_front() {
                                call.finish(Ok(reply));
                            }
                            continue;
                        }
                    }
                    if stopped {
                        call.finish(Err(ClientError::Stopped));
                        continue;
                    }
                    self.current = Some(call);
                    return Step::Idle;
                }
            }
        }
        Step::Idle
    }

    /// Fail the queued calls whose deadline passed (they never run), and
    /// forget those whose caller gave up.
    pub(super) fn expire(&mut self, now: Instant) {
        let (keep, gone): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.queued)
            .into_iter()
            .partition(|call| call.deadline > now && !call.abandoned() || call.wait.is_none());
        self.queued = keep;
        for call in gone {
            let timeout = call.timeout;
            call.finish(Err(ClientError::Timeout(timeout)));
        }
    }

    /// The earliest deadline of a call that waits.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.current
            .iter()
            .chain(&self.queued)
            .filter(|c| c.wait.is_some())
            .map(|c| c.deadline)
            .min()
    }
}
