//! The hand-written actions of the zgossip server model
//! (`protocol/zgossip.xml`), run by the generated engine in [`crate::engine`].

use zproto_runtime::engine::Io;

use crate::engine::{Actions, Event};
use crate::msg::{Announce, ZgossipMsg};
use crate::tuples::Tuples;

/// A tuple: endpoint and service.
pub type Tuple = (String, String);

/// Server-wide state: the node's tuples and what the last run learned.
#[derive(Debug, Default)]
pub struct Gossip {
    /// Every tuple the node knows.
    pub tuples: Tuples,
    /// The tuple being forwarded to every session (`forward` event).
    pub(crate) forwarding: Option<Tuple>,
    /// Tuples accepted as new from sessions, for the node to deliver to the
    /// application and pass on to its remotes.
    pub(crate) accepted: Vec<Tuple>,
}

/// Per-session state: the tuples still to replay after HELLO.
#[derive(Debug, Default)]
pub struct Session {
    replay: Vec<Tuple>,
}

impl Gossip {
    fn next_replayed(session: &mut Session, io: &mut Io<Event, ZgossipMsg>) {
        match session.replay.pop() {
            Some((endpoint, service)) => {
                io.set_message(
                    Announce {
                        endpoint,
                        service,
                        ttl: 0,
                    }
                    .into(),
                );
                io.set_next_event(Event::Ok);
            }
            None => io.set_next_event(Event::Finished),
        }
    }
}

impl Actions for Gossip {
    type Session = Session;

    fn get_first_tuple(&mut self, session: &mut Session, io: &mut Io<Event, ZgossipMsg>) {
        session.replay = self
            .tuples
            .to_vec()
            .into_iter()
            .map(|(e, s)| (e.to_string(), s.to_string()))
            .collect();
        Self::next_replayed(session, io);
    }

    fn get_next_tuple(&mut self, session: &mut Session, io: &mut Io<Event, ZgossipMsg>) {
        Self::next_replayed(session, io);
    }

    fn store_tuple_if_new(&mut self, _session: &mut Session, io: &mut Io<Event, ZgossipMsg>) {
        let Some(ZgossipMsg::Announce(a)) = io.message() else {
            return;
        };
        if !self.tuples.accept(&a.endpoint, &a.service) {
            return;
        }
        // The received message is not needed after this action: keep its
        // strings instead of copying them.
        let Some(ZgossipMsg::Announce(a)) = io.take_message() else {
            return;
        };
        self.forwarding = Some((a.endpoint.clone(), a.service.clone()));
        self.accepted.push((a.endpoint, a.service));
        // The sender has it already: no echo back to it.
        io.broadcast_to_others(Event::Forward);
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
