//! The hand-written actions of the zgossip server model
//! (`protocol/zgossip.xml`), run by the generated engine in [`crate::engine`].

use std::time::{Duration, Instant};

use zproto_runtime::engine::Io;

use crate::engine::{Actions, Event};
use crate::limits::Limits;
use crate::msg::{Announce, ZgossipMsg};
use crate::tuples::{Accepted, Tuples};

/// A tuple: endpoint and service.
pub type Tuple = (String, String);

/// Server-wide state: the node's tuples and what the last run learned.
#[derive(Debug, Default)]
pub struct Gossip {
    /// Every tuple the node knows.
    pub tuples: Tuples,
    /// What the node accepts.
    pub limits: Limits,
    /// The tuple being forwarded to every session (`forward` event), and
    /// its position.
    pub(crate) forwarding: Option<Tuple>,
    pub(crate) forwarding_position: usize,
    /// Tuples accepted as new from sessions, with their positions, for the
    /// node to deliver to the application and pass on to its remotes.
    pub(crate) accepted: Vec<(String, String, usize)>,
    /// Tuples refused from sessions (over a limit), for the node to count.
    pub(crate) refused: Vec<Refusal>,
    /// For `behind`: the first position the session must send again, and
    /// how long to wait before it does.
    pub(crate) behind: Option<(usize, Duration)>,
}

/// Why a tuple was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The service is longer than `limits/service`.
    ServiceTooLong,
    /// The table holds `limits/tuples` already.
    TableFull,
    /// A peer that has not said HELLO tried to change a known tuple.
    BeforeHello,
}

/// Per-session state: where the replay after HELLO stands.
#[derive(Debug, Default)]
pub struct Session {
    /// Position of the next tuple to replay.
    cursor: usize,
    /// Whether a replay is under way (after HELLO, or behind); once it has
    /// finished, new tuples go by `forward` and the cursor stays where the
    /// replay ended.
    replaying: bool,
    /// Tuples sent in the current slice.
    in_slice: usize,
    /// No slice before this time (the peer's queue was full).
    resume_at: Option<Instant>,
    /// Times in a row the peer's queue was full since a replay last
    /// finished: each doubles the wait, up to [`MAX_BEHIND_WAIT`], so that
    /// a peer that never reads costs a slice a second, not a hundred.
    behind_streak: u32,
}

/// The longest wait before resending to a peer whose queue stays full.
const MAX_BEHIND_WAIT: Duration = Duration::from_secs(1);

impl Gossip {
    /// Store a tuple if it is new and within the limits. Returns its
    /// position if it was new.
    pub(crate) fn store(&mut self, endpoint: &str, service: &str) -> Result<Accepted, Refusal> {
        if service.len() > self.limits.service {
            return Err(Refusal::ServiceTooLong);
        }
        match self.tuples.accept(endpoint, service, self.limits.tuples) {
            Accepted::Full => Err(Refusal::TableFull),
            accepted => Ok(accepted),
        }
    }

    fn next_replayed(&self, session: &mut Session, io: &mut Io<Event, ZgossipMsg>) {
        if session.in_slice >= self.limits.slice.max(1) {
            session.in_slice = 0;
            io.set_next_event(Event::Pause);
            return;
        }
        match self.tuples.at(session.cursor) {
            Some((endpoint, service)) => {
                session.cursor += 1;
                session.in_slice += 1;
                io.set_message(
                    Announce {
                        endpoint: endpoint.to_string(),
                        service: service.to_string(),
                        ttl: 0,
                    }
                    .into(),
                );
                io.set_next_event(Event::Ok);
            }
            None => {
                session.behind_streak = 0;
                session.replaying = false;
                io.set_next_event(Event::Finished);
            }
        }
    }
}

impl Actions for Gossip {
    type Session = Session;

    fn get_first_tuple(&mut self, session: &mut Session, io: &mut Io<Event, ZgossipMsg>) {
        session.cursor = 0;
        session.in_slice = 0;
        session.replaying = true;
        self.next_replayed(session, io);
    }

    fn get_next_tuple(&mut self, session: &mut Session, io: &mut Io<Event, ZgossipMsg>) {
        session.resume_at = None;
        self.next_replayed(session, io);
    }

    fn wait_to_resume(&mut self, session: &mut Session, io: &mut Io<Event, ZgossipMsg>) {
        // Any event cancels a wakeup, and each event here sets it again: a
        // deadline, not a delay, so that busy traffic cannot postpone it.
        let delay = match (session.resume_at, io.now()) {
            (Some(at), Some(now)) => at.saturating_duration_since(now),
            _ => Duration::ZERO,
        };
        io.set_wakeup(delay, Event::Resume);
    }

    fn fall_behind(&mut self, session: &mut Session, io: &mut Io<Event, ZgossipMsg>) {
        if let Some((position, wait)) = self.behind.take() {
            // During a replay, from whichever comes first; after one, from
            // the first tuple missed (those before it were sent).
            session.cursor = if session.replaying {
                session.cursor.min(position)
            } else {
                position
            };
            session.replaying = true;
            session.in_slice = 0;
            let wait = wait
                .saturating_mul(1 << session.behind_streak.min(16))
                .min(MAX_BEHIND_WAIT);
            session.behind_streak = session.behind_streak.saturating_add(1);
            session.resume_at = io.now().map(|now| now + wait);
        }
    }

    fn store_tuple_if_new(&mut self, _session: &mut Session, io: &mut Io<Event, ZgossipMsg>) {
        let Some(ZgossipMsg::Announce(a)) = io.message() else {
            return;
        };
        let position = match self.store(&a.endpoint, &a.service) {
            Ok(accepted) => match accepted.position() {
                Some(position) => position,
                None => return,
            },
            Err(refusal) => {
                self.refused.push(refusal);
                return;
            }
        };
        // The received message is not needed after this action: keep its
        // strings instead of copying them.
        let Some(ZgossipMsg::Announce(a)) = io.take_message() else {
            return;
        };
        self.forwarding = Some((a.endpoint.clone(), a.service.clone()));
        self.forwarding_position = position;
        self.accepted.push((a.endpoint, a.service, position));
        // The sender has it already: no echo back to it.
        io.broadcast_to_others(Event::Forward);
    }

    fn store_tuple_if_new_endpoint(
        &mut self,
        session: &mut Session,
        io: &mut Io<Event, ZgossipMsg>,
    ) {
        let Some(ZgossipMsg::Announce(a)) = io.message() else {
            return;
        };
        if self.tuples.position(&a.endpoint).is_some() {
            if self.tuples.get(&a.endpoint).as_deref() != Some(a.service.as_str()) {
                self.refused.push(Refusal::BeforeHello);
            }
            return;
        }
        self.store_tuple_if_new(session, io);
    }

    fn get_tuple_to_forward_unless_replay_sends_it(
        &mut self,
        session: &mut Session,
        io: &mut Io<Event, ZgossipMsg>,
    ) {
        if self.forwarding_position >= session.cursor {
            io.set_exception(Event::ReplaySendsIt);
            return;
        }
        self.get_tuple_to_forward(session, io);
    }

    fn get_tuple_to_forward(&mut self, _session: &mut Session, io: &mut Io<Event, ZgossipMsg>) {
        if let Some((endpoint, service)) = &self.forwarding {
            io.set_message(
                Announce {
                    endpoint: endpoint.clone(),
                    service: service.clone(),
                    ttl: 0,
                }
                .into(),
            );
        }
    }
}
