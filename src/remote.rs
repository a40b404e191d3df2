//! The remote side of a node: our session with another node's server, over a
//! DEALER socket. Sans-IO: it says what to send; the driver sends it, and
//! hands back what the socket refused.
//!
//! CZMQ's remote side loses updates (reference 6.9, 6.10): it never PINGs,
//! so the server's session expires and later ANNOUNCEs are refused; after an
//! INVALID it says HELLO but does not re-send its tuples. Ours:
//!
//! * opens each connection with a PING that offers our extensions, and says
//!   HELLO once the PONG has come: a zproto-rs server's PONG names the
//!   extensions both speak (then tuples go versioned, tombstones included),
//!   a CZMQ server's is plain (then tuples go exactly as CZMQ sends them,
//!   and no tombstones, which it would take for new tuples);
//! * PINGs every `ping_interval`, whatever else it sends, so the session
//!   never silently expires and the PONGs show the server is there (a
//!   server answers nothing else: a busy remote that PINGed only when idle
//!   would hear nothing, and take its server for silent);
//! * takes the server for silent when it has not been heard from for three
//!   intervals (at least a second), even when the silence was its own (a
//!   paused process): what it sent meanwhile may wait in a dead
//!   connection's pipe and arrive stale;
//! * (re)synchronises with a *generation*: HELLO, every tuple we know, then a
//!   PING as a marker. The PONG to that marker ends the generation. The
//!   tuples go in slices, a cursor over the table, so that a million tuples
//!   neither freeze the node nor sit in a queue all at once;
//! * answers INVALID with a new generation. INVALIDs that arrive while a
//!   generation is in flight answer messages sent before its HELLO (frames
//!   queued while disconnected, say): they are noted, and if any came, one
//!   more generation follows the marker's PONG. Each retry starts from a
//!   session the server has just reset, so it converges;
//! * starts generations no closer together than `resync`, and twice as far
//!   apart each time they follow each other closely (up to a minute): a
//!   server that answers INVALID forever gets one table per minute, not one
//!   per INVALID;
//! * starts a new generation when the connection is re-established (libzmq
//!   gives the new connection a new routing id: a fresh server session);
//! * after a stall of its own (no message sent for over a second, the
//!   session timeout of a CZMQ server), sends one tuple again as a probe: a
//!   live session ignores it as a duplicate, an expired one answers INVALID,
//!   which starts a generation;
//! * when the socket refuses a tuple (its queue is full), sends every tuple
//!   from that one on again, a little later.

use std::time::{Duration, Instant};

use crate::batch::{first_position, Batch, BATCHES};
use crate::msg::{Announce, Announces, Hello, Ping, Prune, ZgossipMsg};
use crate::plumtree::{GraftBudget, LazyQueue, PLUMTREE};
use crate::server::{announce_of, can_send, replayed, EXTENSIONS, LIVENESS, VERSIONED_TUPLES};
use crate::tuples::{Tuple, Tuples};

/// Longest spacing between generations, however often INVALID comes.
const MAX_SPACING: Duration = Duration::from_secs(60);

/// How long to wait before sending again what a full queue refused.
pub const BACKOFF: Duration = Duration::from_millis(10);

/// A remote that sent nothing for this long (at least) has stalled: its
/// server may have expired the session (CZMQ's timeout is one second).
const STALL: Duration = Duration::from_secs(1);

/// A PING offering our extensions. Every PING a remote sends is one (the
/// keepalives too) until the server turns out to be CZMQ's, so that
/// whichever PING a server answers first on a new connection (a stale
/// keepalive queued during an outage, say) tells what that server speaks:
/// ours answers with the extensions agreed, CZMQ's with a plain PONG
/// (CZMQ's codec ignores the trailing field).
fn offer() -> Ping {
    Ping {
        extensions: Some(EXTENSIONS),
    }
}

/// Where the current generation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No generation in flight.
    Synced,
    /// The connection's first PING, offering our extensions, was sent:
    /// HELLO waits for the PONG count to reach it.
    Probing(u64),
    /// The server answered the probe: HELLO is due.
    Probed,
    /// HELLO sent; tuples going out.
    Sending,
    /// Marker PING sent: the generation ends when the PONG count reaches it.
    AwaitingMarker(u64),
}

/// How a remote paces itself; from the node's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// Keepalive PING interval.
    pub ping: Duration,
    /// Least time between the starts of two generations.
    pub resync: Duration,
    /// Tuples sent per slice.
    pub slice: usize,
    /// Bytes of records in one batch (ANNOUNCES).
    pub batch: usize,
}

impl Default for Pace {
    fn default() -> Self {
        Self {
            ping: Duration::from_millis(300),
            resync: Duration::from_millis(1000),
            slice: 256,
            batch: crate::limits::Limits::default().batch_budget(),
        }
    }
}

/// Our session with one remote server.
#[derive(Debug)]
pub struct Remote {
    endpoint: String,
    pings_sent: u64,
    pongs_received: u64,
    phase: Phase,
    invalid_during_sync: bool,
    /// Tuples from this position on are still to be sent.
    backlog: Option<usize>,
    /// No backlog slice before this time (the queue was full).
    backlog_at: Instant,
    /// A generation is wanted, to start at `next_sync_at` or later.
    sync_wanted: bool,
    next_sync_at: Instant,
    last_sync_at: Option<Instant>,
    spacing: Duration,
    /// When the next keepalive PING is due: one every `Pace::ping`,
    /// whatever else goes, since only PINGs are sure of an answer.
    next_ping: Instant,
    last_sent: Instant,
    /// Generations started.
    generations: u64,
    /// When the server last sent anything (it answers every PING).
    last_heard: Option<Instant>,
    /// Whether the node last reported the server up.
    reported_up: bool,
    /// The extensions the server's answer to our probe agreed: `None`
    /// until it came on this connection.
    agreed: Option<u32>,
    /// The server was silent at the last tick: only keepalives are due.
    quiet: bool,
    /// Plumtree: this link should be lazy (not our first remote); PRUNE
    /// follows HELLO.
    wants_lazy: bool,
    /// Plumtree: we send ids, not tuples, on this link.
    lazy: bool,
    /// Ids waiting for the next IHAVE.
    queue: LazyQueue,
    /// What the server may still be sent in answers to GRAFT.
    graft_budget: GraftBudget,
    /// Batches: tuples flooded to the server, waiting for the node's
    /// flush (once it has handled what came in together).
    flood: Batch,
}

/// What the remote's server said, as far as the remote side cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A tuple to run through acceptance.
    Tuple(Announce),
    /// Plumtree: the ids of tuples the server holds (IHAVE records).
    Ihave(Vec<u8>),
    /// Plumtree: tuples the server asks for (GRAFT).
    Graft(Vec<String>),
    /// A node's heartbeat (ALIVE).
    Alive(crate::msg::Alive),
    /// Heartbeats in one batch (ALIVES), with liveness and batches agreed.
    Alives(Vec<crate::msg::Alive>),
    /// Several tuples (ANNOUNCES), each to run through acceptance.
    Tuples(Vec<Announce>),
    /// A message we cannot take (a batch not well formed): refused.
    Refused,
    /// Nothing for the node to do.
    Nothing,
}

impl Remote {
    /// A remote for `endpoint`; `send` receives the opening of the first
    /// generation (the rest goes out from [`Remote::tick`]).
    pub fn new(
        endpoint: &str,
        tuples: &Tuples,
        pace: Pace,
        now: Instant,
        send: &mut impl FnMut(ZgossipMsg),
    ) -> Self {
        let mut remote = Self {
            endpoint: endpoint.to_owned(),
            pings_sent: 0,
            pongs_received: 0,
            phase: Phase::Synced,
            invalid_during_sync: false,
            backlog: None,
            backlog_at: now,
            sync_wanted: true,
            next_sync_at: now,
            last_sync_at: None,
            spacing: pace.resync,
            next_ping: now + pace.ping,
            last_sent: now,
            generations: 0,
            last_heard: None,
            reported_up: false,
            agreed: None,
            quiet: false,
            wants_lazy: false,
            lazy: false,
            queue: LazyQueue::default(),
            graft_budget: GraftBudget::default(),
            flood: Batch::new(),
        };
        remote.tick(tuples, pace, now, send);
        remote
    }

    /// What the server may still be sent in answers to GRAFT.
    pub fn graft_budget(&mut self) -> &mut GraftBudget {
        &mut self.graft_budget
    }

    /// The endpoint we connected to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether the server takes versioned tuples (it answered our probe
    /// with that extension); `false` until it answered.
    pub fn versioned(&self) -> bool {
        self.agreed.is_some_and(|a| a & VERSIONED_TUPLES != 0)
    }

    /// Whether the server agreed liveness per node (ALIVE) with versioned
    /// tuples.
    pub fn liveness(&self) -> bool {
        self.agreed
            .is_some_and(|a| a & LIVENESS != 0 && a & VERSIONED_TUPLES != 0)
    }

    /// Whether a heartbeat may go to the server now: liveness agreed, and
    /// after HELLO (a server answers anything else before it with INVALID).
    pub fn takes_heartbeats(&self) -> bool {
        self.liveness() && !matches!(self.phase, Phase::Probing(_) | Phase::Probed)
    }

    /// Whether our tuples must be renewed one by one for this server: it
    /// takes versioned tuples but not heartbeats.
    pub fn renews_tuples(&self) -> bool {
        self.versioned() && !self.liveness()
    }

    /// Batches: queue a flooded tuple; what must go now comes back (a
    /// full batch).
    pub fn batch_flood(&mut self, tuple: &Tuple, replay: bool, pace: Pace) -> Vec<ZgossipMsg> {
        self.flood.add(tuple, replay, pace.batch)
    }

    /// Batches: the flooded tuples waiting, as one ANNOUNCES.
    pub fn take_flood(&mut self) -> Option<ZgossipMsg> {
        self.flood.take().map(Into::into)
    }

    /// Whether the server agreed batches (ANNOUNCES), with versioned
    /// tuples.
    pub fn batches(&self) -> bool {
        self.agreed
            .is_some_and(|a| a & BATCHES != 0 && a & VERSIONED_TUPLES != 0)
    }

    /// Whether the server agreed Plumtree.
    pub fn plumtree(&self) -> bool {
        self.agreed.is_some_and(|a| a & PLUMTREE != 0)
    }

    /// Plumtree: make this link lazy once it is open (the node's remotes
    /// after the first: the first ones make the tree).
    pub fn set_wants_lazy(&mut self, lazy: bool) {
        self.wants_lazy = lazy;
    }

    /// Plumtree: whether the session is open with Plumtree agreed, so
    /// that GRAFT may go (after HELLO: a server answers anything else
    /// before it with INVALID).
    pub fn can_graft(&self) -> bool {
        self.plumtree() && !matches!(self.phase, Phase::Probing(_) | Phase::Probed)
    }

    /// Plumtree: whether tuples go to this link as ids only.
    pub fn is_lazy(&self) -> bool {
        self.lazy && self.plumtree()
    }

    /// Plumtree: queue a tuple's id for the next IHAVE.
    pub fn queue_id(&mut self, tuple: &crate::tuples::Tuple) {
        self.queue.push(tuple);
    }

    /// Plumtree: the records of one IHAVE, if ids wait.
    pub fn take_ihave(&mut self, max_message: usize) -> Option<Vec<u8>> {
        self.queue.take(max_message)
    }

    /// Plumtree: whether ids wait for an IHAVE.
    pub fn has_queued_ids(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Plumtree: a tuple pushed to us again on this eager link: it is off
    /// the tree. Whether to send PRUNE (once).
    pub fn pruned(&mut self) -> bool {
        if self.plumtree() && !self.lazy {
            self.lazy = true;
            self.wants_lazy = true;
            return true;
        }
        false
    }

    /// Plumtree: a GRAFT went or came on this link: it is on the tree
    /// again, and tuples go to it in full.
    pub fn grafted(&mut self) {
        self.lazy = false;
        self.wants_lazy = false;
    }

    /// Whether a generation is in flight or waiting to start.
    pub fn is_synchronising(&self) -> bool {
        self.phase != Phase::Synced || self.sync_wanted
    }

    /// Generations started so far (the first included).
    pub fn generations(&self) -> u64 {
        self.generations
    }

    /// Whether tuples from `position` on will be sent anyway, at `now`: a
    /// tuple flooded now would go twice.
    pub fn will_send(&self, position: usize, now: Instant) -> bool {
        // Before HELLO, nothing may go (the server would answer INVALID);
        // a generation under way, or due now, sends it all, and so does
        // the first one of a connection. One wanted on an open session but
        // held back by the resync spacing does not: until it starts, new
        // tuples and renewals go as usual (held back for as long as the
        // spacing, renewals would let the tuples expire at the server).
        (self.sync_wanted && (now >= self.next_sync_at || self.agreed.is_none()))
            || matches!(self.phase, Phase::Probing(_) | Phase::Probed)
            || self.backlog.is_some_and(|b| b <= position)
    }

    /// Ask for a generation, as soon as the spacing allows.
    fn want_sync(&mut self) {
        self.sync_wanted = true;
    }

    /// Start a generation: HELLO now, every tuple from [`Remote::tick`],
    /// then a marker PING.
    fn start_generation(&mut self, pace: Pace, now: Instant, send: &mut impl FnMut(ZgossipMsg)) {
        // Generations that follow each other closely push the next further.
        self.spacing = match self.last_sync_at {
            Some(last) if now.saturating_duration_since(last) < self.spacing * 2 => {
                (self.spacing * 2).min(MAX_SPACING).max(pace.resync)
            }
            _ => pace.resync,
        };
        self.last_sync_at = Some(now);
        self.next_sync_at = now + self.spacing;
        self.sync_wanted = false;
        self.generations += 1;
        self.invalid_during_sync = false;
        if self.agreed.is_none() {
            // What the server speaks decides what the tuples carry: ask
            // first (a CZMQ server answers any PING, and ignores the offer).
            self.sent(offer().into(), pace, now, send);
            self.phase = Phase::Probing(self.pings_sent);
            return;
        }
        self.say_hello(pace, now, send);
    }

    /// A keepalive or marker PING: the offer, except to a CZMQ server, which
    /// gets exactly CZMQ's frames.
    fn ping(&self) -> Ping {
        if self.agreed == Some(0) {
            Ping::default()
        } else {
            offer()
        }
    }

    /// HELLO, then every tuple from [`Remote::tick`].
    fn say_hello(&mut self, pace: Pace, now: Instant, send: &mut impl FnMut(ZgossipMsg)) {
        self.sent(Hello.into(), pace, now, send);
        if self.plumtree() && self.wants_lazy {
            self.sent(Prune.into(), pace, now, send);
            self.lazy = true;
        }
        self.phase = Phase::Sending;
        self.backlog = Some(0);
        self.backlog_at = now;
    }

    fn sent(
        &mut self,
        message: ZgossipMsg,
        pace: Pace,
        now: Instant,
        send: &mut impl FnMut(ZgossipMsg),
    ) {
        if matches!(message, ZgossipMsg::Ping(_)) {
            self.pings_sent += 1;
            self.next_ping = now + pace.ping;
        }
        send(message);
        self.sent_traffic(now);
    }

    /// Something went to the server at `now`. It does not put off the next
    /// keepalive: a server answers PINGs only, so a remote that sent
    /// tuples faster than the PING interval, and PINGs only when it had
    /// nothing else to send, would hear nothing while busy, and take its
    /// server for silent.
    pub fn sent_traffic(&mut self, now: Instant) {
        self.last_sent = now;
    }

    /// How long the server may go unheard before it is silent: three
    /// keepalive intervals (three PINGs unanswered), and at least `STALL`.
    fn silence_window(pace: Pace) -> Duration {
        STALL.max(pace.ping * 3)
    }

    /// Whether the server is up: it answered within the silence window.
    /// Measured from what we heard, not from the PINGs we sent: after a
    /// pause of our own, whatever we send may wait in a DEALER pipe whose
    /// connection died meanwhile and arrive stale much later, so a server
    /// not heard from lately gets nothing but PINGs until it answers again,
    /// whoever's silence it was.
    pub fn is_up(&self, pace: Pace, now: Instant) -> bool {
        let window = Self::silence_window(pace);
        self.last_heard
            .is_some_and(|at| now.saturating_duration_since(at) <= window)
    }

    /// Whether the server went up or down since the last call: `Some(up)`
    /// once per change.
    pub fn presence_changed(&mut self, pace: Pace, now: Instant) -> Option<bool> {
        let up = self.is_up(pace, now);
        (up != self.reported_up).then(|| {
            self.reported_up = up;
            up
        })
    }

    /// Whether the server, heard from before, has gone silent (no answer
    /// to three keepalives): then nothing but PINGs goes to it, since
    /// whatever is sent may wait in the DEALER's pipe through an outage and
    /// arrive stale, after newer writes went by other paths (a removal,
    /// say). Once it answers, a generation sends everything.
    pub fn is_silent(&self, pace: Pace, now: Instant) -> bool {
        self.last_heard.is_some() && !self.is_up(pace, now)
    }

    /// Something was not sent (the server was silent): synchronise when it
    /// answers again.
    pub fn missed(&mut self) {
        if self.phase == Phase::Synced {
            self.sync_wanted = true;
        }
    }

    /// When the server last sent anything.
    pub fn last_heard(&self) -> Option<Instant> {
        self.last_heard
    }

    /// A message from the remote's server, received at `now`.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = Some(now);
        self.quiet = false;
    }

    /// A message from the remote's server.
    pub fn receive(&mut self, message: ZgossipMsg) -> Received {
        match message {
            ZgossipMsg::Announce(a) => return Received::Tuple(a),
            ZgossipMsg::Pong(pong) => {
                self.pongs_received += 1;
                // Every PING we send offers our extensions, and our
                // servers answer every such PING with the extensions agreed
                // (a CZMQ server, with a plain PONG): any PONG on this
                // connection answers the question, even one to a stale
                // keepalive that waited in the DEALER's pipe through an
                // outage. So the first one decides.
                if let Phase::Probing(_) = self.phase {
                    self.agreed = Some(pong.extensions.unwrap_or(0) & EXTENSIONS);
                    self.phase = Phase::Probed;
                }
                if let Phase::AwaitingMarker(marker) = self.phase {
                    if self.pongs_received >= marker {
                        self.phase = Phase::Synced;
                        if self.invalid_during_sync {
                            self.want_sync();
                        }
                    }
                }
            }
            ZgossipMsg::Invalid(_) => {
                if self.phase == Phase::Synced {
                    tracing::debug!(endpoint = %crate::text::Escaped(&self.endpoint), "INVALID from server: synchronising again");
                    self.want_sync();
                } else {
                    self.invalid_during_sync = true;
                }
            }
            // A server never sends these (ours PINGs to see whether we are
            // still there): ignore them, as CZMQ does.
            ZgossipMsg::Hello(_) | ZgossipMsg::Ping(_) => {}
            ZgossipMsg::Ihave(ihave) if self.plumtree() => return Received::Ihave(ihave.tuples),
            ZgossipMsg::Graft(graft) if self.plumtree() => {
                return Received::Graft(graft.endpoints);
            }
            ZgossipMsg::Prune(_) if self.plumtree() => self.lazy = true,
            ZgossipMsg::Alive(alive) if self.liveness() => return Received::Alive(alive),
            ZgossipMsg::Alive(_) => {}
            ZgossipMsg::Alives(batch) if self.liveness() && self.batches() => {
                return match crate::batch::unpack_alives(&batch.records) {
                    Some(alives) => Received::Alives(alives),
                    None => Received::Refused,
                };
            }
            ZgossipMsg::Alives(_) => {}
            ZgossipMsg::Announces(batch) if self.batches() => {
                return match crate::batch::unpack(&batch.records) {
                    Some(announces) => Received::Tuples(announces),
                    None => Received::Refused,
                };
            }
            ZgossipMsg::Announces(_) => return Received::Refused,
            // Not agreed: a server has no business sending these.
            ZgossipMsg::Ihave(_) | ZgossipMsg::Graft(_) | ZgossipMsg::Prune(_) => {}
        }
        Received::Nothing
    }

    /// The connection was lost and is back: the server sees a new session.
    pub fn reconnected(&mut self) {
        tracing::debug!(endpoint = %crate::text::Escaped(&self.endpoint), "reconnected: synchronising again");
        // PINGs queued on the old connection may be lost or answered late.
        self.pings_sent = 0;
        self.pongs_received = 0;
        self.phase = Phase::Synced;
        self.backlog = None;
        // Maybe another server now: ask again.
        self.agreed = None;
        self.lazy = false;
        // Before HELLO on the new connection, a batch would be answered
        // INVALID; the generation sends it all.
        self.flood = Batch::new();
        self.want_sync();
    }

    /// The socket refused `message` (its queue is full): send it again
    /// later, with whatever followed it.
    pub fn refused(&mut self, message: Option<&ZgossipMsg>, tuples: &Tuples, now: Instant) {
        match message {
            Some(ZgossipMsg::Announce(_) | ZgossipMsg::Announces(_)) => {
                let position = message.and_then(|m| first_position(m, tuples)).unwrap_or(0);
                self.backlog = Some(self.backlog.map_or(position, |b| b.min(position)));
                self.backlog_at = now + BACKOFF;
            }
            // The probe: start the generation again.
            Some(ZgossipMsg::Ping(_)) if matches!(self.phase, Phase::Probing(_)) => {
                self.phase = Phase::Synced;
                self.sync_wanted = true;
                self.next_sync_at = self.next_sync_at.min(now + BACKOFF);
            }
            // PINGs are counted by the PONGs that come back; one lost only
            // delays the marker to the next keepalive.
            Some(ZgossipMsg::Ping(_)) => {}
            // The generation never started (a lost HELLO), or an unknown
            // frame was lost: start again, from the HELLO.
            _ => {
                self.phase = Phase::Synced;
                self.backlog = None;
                self.sync_wanted = true;
                self.next_sync_at = self.next_sync_at.min(now + BACKOFF);
            }
        }
    }

    /// Time passed: start a wanted generation, send a slice of tuples, the
    /// marker, or a keepalive PING, whichever is due.
    pub fn tick(
        &mut self,
        tuples: &Tuples,
        pace: Pace,
        now: Instant,
        send: &mut impl FnMut(ZgossipMsg),
    ) {
        let window = Self::silence_window(pace);
        self.quiet = self.is_silent(pace, now);
        if self.quiet {
            // Nothing but keepalives until the server answers again; then
            // everything, as a generation.
            self.missed();
            if now >= self.next_ping {
                self.sent(self.ping().into(), pace, now, send);
            }
            return;
        }
        if self.phase == Phase::Synced
            && !self.sync_wanted
            && now.saturating_duration_since(self.last_sent) > window
        {
            if let Some(tuple) = tuples.first_live(now) {
                // Probe: a duplicate to a live session, INVALID from a lost one.
                let probe = replayed(announce_of(&tuple, self.versioned()));
                self.sent(probe.into(), pace, now, send);
            } else {
                self.want_sync();
            }
        }
        if self.sync_wanted && now >= self.next_sync_at {
            self.start_generation(pace, now, send);
        }
        if self.phase == Phase::Probed {
            self.say_hello(pace, now, send);
        }
        if let Some(from) = self.backlog.filter(|_| now >= self.backlog_at) {
            let mut slice = Vec::new();
            let count = pace.slice.max(1);
            tuples.slice_into(from, count, now, &mut slice);
            let versioned = self.versioned();
            let mut sendable = slice.iter().filter(|t| can_send(t, versioned)).peekable();
            if self.batches() {
                while sendable.peek().is_some() {
                    let mut batch = Batch::new();
                    while let Some(tuple) = sendable.peek() {
                        if !batch.push(tuple, true, pace.batch) {
                            break;
                        }
                        sendable.next();
                    }
                    if batch.is_empty() {
                        // Too big for a batch (none is): alone.
                        if let Some(tuple) = sendable.next() {
                            let announce = replayed(announce_of(tuple, versioned));
                            self.sent(announce.into(), pace, now, send);
                        }
                        continue;
                    }
                    let records = batch.into_records();
                    self.sent(Announces { records }.into(), pace, now, send);
                }
            }
            for tuple in sendable {
                self.sent(
                    replayed(announce_of(tuple, versioned)).into(),
                    pace,
                    now,
                    send,
                );
            }
            // Holes and tombstones left out, the cursor moves by the slice.
            self.backlog = self.backlog.map(|b| (b + count).min(tuples.slots()));
            if self.backlog.is_some_and(|b| b >= tuples.slots()) {
                self.backlog = None;
                if self.phase == Phase::Sending {
                    self.sent(self.ping().into(), pace, now, send);
                    self.phase = Phase::AwaitingMarker(self.pings_sent);
                }
            }
        }
        if now >= self.next_ping {
            self.sent(self.ping().into(), pace, now, send);
        }
    }

    /// When [`Remote::tick`] next has something to do.
    pub fn next_deadline(&self) -> Instant {
        let mut at = self.next_ping;
        if self.quiet {
            // Silent server: keepalives only, until it answers.
            return at;
        }
        if self.phase == Phase::Probed {
            // HELLO is due now.
            return self.last_sent;
        }
        if self.sync_wanted {
            at = at.min(self.next_sync_at);
        }
        if self.backlog.is_some() {
            at = at.min(self.backlog_at);
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{Invalid, Pong};

    const PACE: Pace = Pace {
        ping: Duration::from_millis(300),
        resync: Duration::from_millis(1000),
        slice: 2,
        batch: 1024,
    };

    fn names(sent: &[ZgossipMsg]) -> Vec<&'static str> {
        use zproto_runtime::Codec;
        sent.iter().map(|m| m.command()).collect()
    }

    fn tuples(n: usize) -> Tuples {
        let mut t = Tuples::default();
        for i in 0..n {
            let endpoint = format!("tcp://a:{i}");
            t.offer(
                &crate::tuples::Offer::unversioned(&endpoint, "a"),
                usize::MAX,
                Instant::now(),
            );
        }
        t
    }

    /// A zproto-rs server's answer to the probe, without batches: one
    /// ANNOUNCE per tuple.
    fn versioned_pong() -> ZgossipMsg {
        Pong {
            extensions: Some(EXTENSIONS & !BATCHES),
        }
        .into()
    }

    #[test]
    fn a_server_that_agreed_batches_gets_tuples_in_batches_of_a_message_each() {
        let now = Instant::now();
        let t = tuples(5);
        let mut sent = Vec::new();
        let mut r = Remote::new("tcp://x:1", &t, PACE, now, &mut |m| sent.push(m));
        r.receive(
            Pong {
                extensions: Some(EXTENSIONS),
            }
            .into(),
        );
        settle(&mut r, &t, now, &mut sent);
        // Slices of two tuples, each one ANNOUNCES; the fifth alone.
        assert_eq!(
            names(&sent),
            [
                "PING",
                "HELLO",
                "ANNOUNCES",
                "ANNOUNCES",
                "ANNOUNCES",
                "PING"
            ]
        );
        let mut endpoints = Vec::new();
        for message in &sent {
            if let ZgossipMsg::Announces(batch) = message {
                let announces = crate::batch::unpack(&batch.records).expect("well formed");
                assert!(batch.records.len() <= PACE.batch);
                endpoints.extend(announces.into_iter().map(|a| a.endpoint));
            }
        }
        assert_eq!(
            endpoints,
            (0..5).map(|i| format!("tcp://a:{i}")).collect::<Vec<_>>()
        );
        // Refused: sent again from its first tuple on.
        let Some(second @ ZgossipMsg::Announces(_)) = sent.get(3).cloned() else {
            panic!("{sent:?}")
        };
        sent.clear();
        r.refused(Some(&second), &t, now);
        settle(&mut r, &t, now + Duration::from_secs(1), &mut sent);
        // A keepalive, due a second later, may go between them.
        sent.retain(|m| !matches!(m, ZgossipMsg::Ping(_)));
        assert_eq!(names(&sent)[..2], ["ANNOUNCES", "ANNOUNCES"], "{sent:?}");
        let ZgossipMsg::Announces(batch) = &sent[0] else {
            panic!("{sent:?}")
        };
        let first = crate::batch::unpack(&batch.records).expect("well formed");
        assert_eq!(first[0].endpoint, "tcp://a:2");
    }

    /// A remote whose probe was answered (by a zproto-rs server) at `now`;
    /// what it sent, from the probe on.
    fn open(t: &Tuples, now: Instant, sent: &mut Vec<ZgossipMsg>) -> Remote {
        let mut r = Remote::new("tcp://x:1", t, PACE, now, &mut |m| sent.push(m));
        r.receive(versioned_pong());
        r
    }

    /// Tick until nothing more is due now.
    fn settle(r: &mut Remote, t: &Tuples, now: Instant, sent: &mut Vec<ZgossipMsg>) {
        while r.next_deadline() <= now {
            r.tick(t, PACE, now, &mut |m| sent.push(m));
        }
    }

    #[test]
    fn opens_with_a_probe_then_hello_tuples_in_slices_and_a_marker_ping() {
        let now = Instant::now();
        let t = tuples(3);
        let mut sent = Vec::new();
        let mut r = Remote::new("tcp://x:1", &t, PACE, now, &mut |m| sent.push(m));
        assert_eq!(names(&sent), ["PING"], "the probe");
        assert!(
            matches!(&sent[0], ZgossipMsg::Ping(p) if p.extensions == Some(EXTENSIONS)),
            "{sent:?}"
        );
        settle(&mut r, &t, now, &mut sent);
        assert_eq!(names(&sent), ["PING"], "nothing before the server answers");
        assert!(r.will_send(0, now), "a flood waits for the generation");
        r.receive(versioned_pong());
        assert!(r.versioned());
        r.tick(&t, PACE, now, &mut |m| sent.push(m));
        assert_eq!(
            names(&sent),
            ["PING", "HELLO", "ANNOUNCE", "ANNOUNCE"],
            "one slice"
        );
        settle(&mut r, &t, now, &mut sent);
        assert_eq!(
            names(&sent),
            ["PING", "HELLO", "ANNOUNCE", "ANNOUNCE", "ANNOUNCE", "PING"]
        );
        assert!(r.is_synchronising());
        r.receive(Pong::default().into());
        assert!(!r.is_synchronising());
    }

    #[test]
    fn a_plain_pong_means_a_czmq_server_and_plain_tuples() {
        let now = Instant::now();
        let mut t = tuples(0);
        let versioned = crate::tuples::Offer {
            stamp: Some(crate::tuples::Stamp {
                version: 1,
                origin: 7,
            }),
            ..crate::tuples::Offer::unversioned("tcp://v:1", "v")
        };
        t.offer(&versioned, usize::MAX, now);
        let gone = crate::tuples::Offer {
            removed: true,
            ..crate::tuples::Offer {
                endpoint: "tcp://gone:1",
                ..versioned
            }
        };
        t.offer(&gone, usize::MAX, now);
        let mut sent = Vec::new();
        let mut r = Remote::new("tcp://x:1", &t, PACE, now, &mut |m| sent.push(m));
        r.receive(Pong::default().into());
        assert!(!r.versioned());
        settle(&mut r, &t, now, &mut sent);
        assert_eq!(
            names(&sent),
            ["PING", "HELLO", "ANNOUNCE", "PING"],
            "no tombstone"
        );
        let ZgossipMsg::Announce(a) = &sent[2] else {
            panic!("{sent:?}")
        };
        assert_eq!(
            (a.origin, a.revision, a.lease, a.flags),
            (None, None, None, None)
        );
        // To a zproto-rs server, the same table goes versioned, tombstone too.
        let mut sent = Vec::new();
        let mut r = open(&t, now, &mut sent);
        settle(&mut r, &t, now, &mut sent);
        assert_eq!(
            names(&sent),
            ["PING", "HELLO", "ANNOUNCE", "ANNOUNCE", "PING"]
        );
        let ZgossipMsg::Announce(a) = &sent[3] else {
            panic!("{sent:?}")
        };
        // Removed (1), and sent by a replay (4): a synchronisation.
        assert_eq!((a.origin, a.revision, a.flags), (Some(7), Some(1), Some(5)));
    }

    #[test]
    fn invalid_after_sync_starts_a_new_generation_once_spacing_allows() {
        let now = Instant::now();
        let t = tuples(1);
        let mut sent = Vec::new();
        let mut r = open(&t, now, &mut sent);
        settle(&mut r, &t, now, &mut sent);
        r.receive(Pong::default().into());
        sent.clear();
        r.receive(Invalid.into());
        settle(&mut r, &t, now, &mut sent);
        assert!(sent.is_empty(), "too soon after the first generation");
        let later = now + PACE.resync;
        settle(&mut r, &t, later, &mut sent);
        assert_eq!(names(&sent), ["HELLO", "ANNOUNCE", "PING"]);
        assert_eq!(r.generations(), 2);
    }

    #[test]
    fn invalid_during_sync_is_retried_once_the_marker_returns() {
        let now = Instant::now();
        let t = tuples(1);
        let mut sent = Vec::new();
        let mut r = open(&t, now, &mut sent);
        settle(&mut r, &t, now, &mut sent);
        sent.clear();
        r.receive(Invalid.into());
        r.receive(Invalid.into());
        settle(&mut r, &t, now + PACE.resync, &mut sent);
        assert!(
            names(&sent).iter().all(|n| *n == "PING"),
            "stale INVALIDs alone start nothing"
        );
        r.receive(Pong::default().into());
        sent.clear();
        settle(&mut r, &t, now + PACE.resync, &mut sent);
        assert_eq!(names(&sent), ["HELLO", "ANNOUNCE", "PING"]);
        sent.clear();
        // PONGs to the keepalive sent meanwhile and to the new marker.
        r.receive(Pong::default().into());
        assert!(r.is_synchronising());
        r.receive(Pong::default().into());
        assert!(!r.is_synchronising());
    }

    #[test]
    fn a_server_that_answers_invalid_forever_gets_ever_fewer_generations() {
        let start = Instant::now();
        let t = tuples(1);
        let mut sent = Vec::new();
        let mut r = open(&t, start, &mut sent);
        // For ten minutes, answer every marker with PONG and INVALID.
        let mut now = start;
        while now < start + Duration::from_secs(600) {
            settle(&mut r, &t, now, &mut sent);
            if r.phase != Phase::Synced {
                r.receive(Pong::default().into());
                r.receive(Invalid.into());
            }
            now += Duration::from_millis(100);
        }
        // 1, 2, 4, ... 32 s, then one a minute: about 15, not 600.
        assert!(
            r.generations() <= 16,
            "{} generations in ten minutes",
            r.generations()
        );
        assert!(r.generations() >= 8);
    }

    #[test]
    fn keepalive_pings_when_quiet_and_reconnects_resync() {
        let now = Instant::now();
        let t = tuples(1);
        let mut sent = Vec::new();
        let mut r = open(&t, now, &mut Vec::new());
        settle(&mut r, &t, now, &mut Vec::new());
        r.receive(Pong::default().into());
        settle(&mut r, &t, now + PACE.ping / 2, &mut sent);
        assert!(sent.is_empty());
        settle(&mut r, &t, now + PACE.ping, &mut sent);
        assert_eq!(names(&sent), ["PING"]);
        sent.clear();
        r.reconnected();
        let later = now + PACE.resync * 3;
        settle(&mut r, &t, later, &mut sent);
        assert_eq!(names(&sent), ["PING"], "a new connection is probed again");
        r.receive(versioned_pong());
        settle(&mut r, &t, later, &mut sent);
        assert_eq!(names(&sent), ["PING", "HELLO", "ANNOUNCE", "PING"]);
    }

    /// A remote whose generation is done and whose server was heard at `now`.
    fn heard_from(t: &Tuples, now: Instant) -> Remote {
        let mut r = open(t, now, &mut Vec::new());
        r.heard(now);
        settle(&mut r, t, now, &mut Vec::new());
        r
    }

    /// Tick every 50 ms from `from` to `to`, as a punctual driver does.
    fn run(r: &mut Remote, t: &Tuples, from: Instant, to: Instant, sent: &mut Vec<ZgossipMsg>) {
        let mut now = from;
        while now < to {
            now += Duration::from_millis(50);
            settle(r, t, now, sent);
        }
    }

    #[test]
    fn a_server_that_stops_answering_pings_is_silent_after_the_window() {
        let now = Instant::now();
        let t = tuples(1);
        let mut r = heard_from(&t, now);
        let window = Remote::silence_window(PACE);
        let mut sent = Vec::new();
        run(&mut r, &t, now, now + window, &mut sent);
        assert!(r.is_up(PACE, now + window), "within the window");
        assert!(names(&sent).contains(&"PING"), "{:?}", names(&sent));
        // Not heard from for longer than the window, though PINGed.
        let later = now + window + PACE.ping + Duration::from_millis(50);
        run(&mut r, &t, now + window, later, &mut sent);
        assert!(r.is_silent(PACE, later));
        r.heard(later);
        assert!(r.is_up(PACE, later), "up again once it answers");
    }

    #[test]
    fn traffic_does_not_put_off_the_keepalive_that_proves_the_server_up() {
        let now = Instant::now();
        let t = tuples(1);
        let mut r = heard_from(&t, now);
        // Something goes to the server every 50 ms for five seconds; the
        // server answers every PING at once, as servers do, and nothing
        // else.
        let mut at = now;
        let mut pings = 0;
        while at < now + Duration::from_secs(5) {
            at += Duration::from_millis(50);
            r.sent_traffic(at);
            let mut sent = Vec::new();
            settle(&mut r, &t, at, &mut sent);
            for message in sent {
                if matches!(message, ZgossipMsg::Ping(_)) {
                    pings += 1;
                    r.heard(at);
                    r.receive(Pong::default().into());
                }
            }
            assert!(r.is_up(PACE, at), "silent at {:?}", at - now);
        }
        assert!(pings >= 15, "a PING every {:?}: {pings}", PACE.ping);
    }

    #[test]
    fn after_a_pause_of_our_own_only_pings_go_until_the_server_answers() {
        let now = Instant::now();
        let t = tuples(3);
        let mut r = heard_from(&t, now);
        r.receive(versioned_pong());
        run(&mut r, &t, now, now + PACE.ping, &mut Vec::new());
        // The process stops for five seconds: its connection may have died
        // meanwhile, and a DEALER keeps what it is given for the next one.
        let resumed = now + Duration::from_secs(5);
        assert!(r.is_silent(PACE, resumed));
        let mut sent = Vec::new();
        run(&mut r, &t, resumed, resumed + PACE.resync * 3, &mut sent);
        assert!(
            names(&sent).iter().all(|&n| n == "PING"),
            "{:?}",
            names(&sent)
        );
        assert!(r.will_send(0, resumed), "writes wait for the generation");
        // It answers: everything goes again, as a generation.
        let answered = resumed + PACE.resync * 3;
        r.heard(answered);
        r.receive(Pong::default().into());
        sent.clear();
        settle(&mut r, &t, answered, &mut sent);
        assert_eq!(names(&sent)[..2], ["HELLO", "ANNOUNCE"], "{sent:?}");
    }

    #[test]
    fn a_refused_tuple_is_sent_again_with_those_after_it() {
        let now = Instant::now();
        let t = tuples(4);
        let mut sent = Vec::new();
        let mut r = open(&t, now, &mut Vec::new());
        settle(&mut r, &t, now, &mut Vec::new());
        r.receive(Pong::default().into());
        let refused: ZgossipMsg = Announce {
            endpoint: "tcp://a:2".into(),
            service: "a".into(),
            ..Announce::default()
        }
        .into();
        r.refused(Some(&refused), &t, now);
        settle(&mut r, &t, now, &mut sent);
        assert!(sent.is_empty(), "not before the backoff");
        settle(&mut r, &t, now + BACKOFF, &mut sent);
        let endpoints: Vec<String> = sent
            .iter()
            .filter_map(|m| match m {
                ZgossipMsg::Announce(a) => Some(a.endpoint.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(endpoints, ["tcp://a:2", "tcp://a:3"]);
        assert!(
            !names(&sent).contains(&"HELLO"),
            "no new generation for a refused tuple"
        );
    }

    #[test]
    fn after_a_stall_one_tuple_probes_the_session() {
        let now = Instant::now();
        let t = tuples(2);
        let mut sent = Vec::new();
        let mut r = open(&t, now, &mut Vec::new());
        settle(&mut r, &t, now, &mut Vec::new());
        r.receive(Pong::default().into());
        settle(&mut r, &t, now + Duration::from_secs(5), &mut sent);
        // The probe, and the keepalive due long ago.
        assert_eq!(names(&sent), ["ANNOUNCE", "PING"]);
    }
}
