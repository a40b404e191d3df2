//! The broker's actions: streams, mailboxes and services, shared by every
//! session of the generated `mlm_server` machine, which the runtime's
//! server host runs (`malamute [CONFIG]`, see `src/bin/malamute.rs`).
//!
//! Deliveries: a session that publishes, sends or offers puts messages on
//! the receiving sessions' queues and sends each of them an event
//! (`io.send_event`); the receiving session's machine takes the message
//! and sends it. A mailbox keeps its messages until its owner connects.
//!
//! Bounds: a mailbox holds at most [`MAILBOX_LIMIT`] messages (and, with
//! upstream's `mlm_server/mailbox/size-limit`, that many bytes of content),
//! a service queue [`SERVICE_QUEUE_LIMIT`], and all stored messages
//! together [`STORAGE_LIMIT`] bytes (`mlm_server/storage/size-limit`): more
//! are dropped with a warning, however many mailboxes a client writes to.
//! Within that, one client's share ([`CLIENT_SHARE`] bytes,
//! `mlm_server/client/size-limit`) bounds the mail and requests stored for
//! its address (as their sender) and the deliveries held for it while it
//! has no credit: a client past its share gets ERROR (its message is not
//! stored), and the others still have the rest of the storage.
//!
//! Names: a stream is known while it has readers or writers, a service
//! while it has workers or waiting requests; then it is forgotten, so
//! that [`NAME_LIMIT`] (`mlm_server/names/limit`) bounds live names, never
//! names ever seen.
//! A client that does not read has its ROUTER queue (`server/hwm`) and its
//! backlog (`server/backlog`) filled, then deliveries to it are dropped and
//! counted by the host, while every other client is served.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use zproto_runtime::engine::SessionKey;

use crate::mlm_proto::*;
use crate::mlm_server_engine::{Actions, Event, Io};

/// Messages a mailbox keeps for an owner that is not connected.
pub const MAILBOX_LIMIT: usize = 10_000;
/// Requests a service keeps until a worker takes them.
pub const SERVICE_QUEUE_LIMIT: usize = 10_000;
/// Bytes of stored messages (mailboxes and service queues together) by
/// default; `mlm_server/storage/size-limit` changes it.
pub const STORAGE_LIMIT: usize = 256 << 20;
/// Deliveries held for a client that ran out of credit; more are dropped.
pub const HELD_LIMIT: usize = 10_000;
/// Trackers remembered for confirmations on their way back; the oldest
/// are forgotten first.
pub const TRACKER_LIMIT: usize = 100_000;
/// Subscriptions (stream patterns) and service offers per client.
pub const PER_CLIENT_LIMIT: usize = 256;
/// Streams and services the broker knows at once, each, by default
/// (`mlm_server/names/limit`).
pub const NAME_LIMIT: usize = 100_000;
/// Bytes of stored mail and requests one sender address may hold, and of
/// deliveries held for one client out of credit, by default
/// (`mlm_server/client/size-limit`).
pub const CLIENT_SHARE: usize = 16 << 20;
/// What a stored message costs beyond its strings and frames.
const OVERHEAD: usize = 96;
/// Bytes of subject a reader's patterns may scan per second, by default
/// (`mlm_server/client/match-rate`): a pattern tried costs the subject's
/// length (one DFA pass), so a reader's matching is charged to it, and a
/// reader past its rate misses messages rather than taking the broker's
/// time from everyone else. A reader with one pattern and 255-byte
/// subjects gets 260,000 messages a second before anything is skipped.
pub const MATCH_RATE: u64 = 64 << 20;
/// How far a reader's matching may run ahead of its rate, in bytes of
/// subject scanned (a sixteenth of a second's worth).
const MATCH_BURST_SHARE: u64 = 16;

/// One client session.
#[derive(Debug, Default)]
pub struct Session {
    key: Option<SessionKey>,
    /// The client's mailbox address (empty: anonymous).
    address: String,
    /// The stream it writes to.
    writer: Option<String>,
    /// The service just offered, for `dispatch the service`.
    offered: Option<String>,
    /// Subscriptions and offers made ([`PER_CLIENT_LIMIT`]).
    commitments: usize,
}

/// Decline the command being handled: ERROR with `reason`, the session
/// goes on; the refusal is counted under its reason.
fn refuse(refusals: &mut Refusals, io: &mut Io, reason: &'static str) {
    count(refusals, reason);
    error(io, status(FAILED), reason);
    io.set_exception(Event::Refused);
}

/// Commands refused and messages dropped, by reason.
type Refusals = std::collections::BTreeMap<&'static str, u64>;

fn count(refusals: &mut Refusals, reason: &'static str) {
    *refusals.entry(reason).or_default() += 1;
}

/// What the broker holds and has turned away: a snapshot for its metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerMetrics {
    /// Streams known.
    pub streams: u64,
    /// Services known.
    pub services: u64,
    /// Mailboxes holding mail.
    pub mailboxes: u64,
    /// Mail waiting in mailboxes.
    pub mail_waiting: u64,
    /// Requests waiting for a worker.
    pub requests_waiting: u64,
    /// Deliveries held for clients out of credit.
    pub deliveries_held: u64,
    /// Bytes of stored mail and requests (what the storage limit counts).
    pub bytes_held: u64,
    /// The storage limit, in bytes.
    pub storage_limit: u64,
    /// Commands refused and messages dropped, by reason.
    pub refusals: Vec<(&'static str, u64)>,
}

/// A stream: its readers, and how many sessions write to it.
#[derive(Debug, Default)]
struct Stream {
    readers: Vec<Reader>,
    writers: usize,
}

/// A reader of a stream: a session and its subject patterns.
#[derive(Debug)]
struct Reader {
    session: SessionKey,
    patterns: Vec<(String, regex::bytes::Regex)>,
    /// What its patterns may still scan.
    budget: MatchBudget,
}

/// A reader's matching budget: a token bucket in bytes of subject
/// scanned, refilled at the broker's match rate.
#[derive(Debug)]
struct MatchBudget {
    tokens: u64,
    at: Option<Instant>,
}

impl MatchBudget {
    fn new(rate: u64) -> Self {
        Self {
            tokens: rate / MATCH_BURST_SHARE,
            at: None,
        }
    }

    /// Refill for the time since the last call, at `rate` bytes a second.
    fn refill(&mut self, rate: u64, now: Instant) {
        if let Some(at) = self.at {
            let earned = now.saturating_duration_since(at).as_secs_f64() * rate as f64;
            self.tokens = self
                .tokens
                .saturating_add(earned as u64)
                .min((rate / MATCH_BURST_SHARE).max(1));
        }
        self.at = Some(now);
    }
}

/// A worker's offer.
#[derive(Debug)]
struct Offer {
    session: SessionKey,
    pattern: regex::bytes::Regex,
}

/// A delivery on its way to a session.
#[derive(Debug)]
enum Delivery {
    Stream(StreamDeliver),
    Service(ServiceDeliver),
    /// Mail stays in its mailbox until sent.
    Mail,
}

/// The credit of a client that sent CREDIT: deliveries beyond it wait.
#[derive(Debug, Default)]
struct Credit {
    left: u64,
    held: VecDeque<Delivery>,
    /// What `held` costs, against the client's share.
    held_bytes: usize,
}

impl Delivery {
    /// What holding it costs (mail stays in its mailbox, charged to its
    /// sender).
    fn cost(&self) -> usize {
        match self {
            Delivery::Stream(m) => cost(&[&m.sender, &m.address, &m.subject], &m.content),
            Delivery::Service(m) => request_cost(m),
            Delivery::Mail => 0,
        }
    }
}

#[derive(Debug, Default)]
struct Mailbox {
    /// Mail, each with the time after which it is discarded (its
    /// MAILBOX SEND's timeout), if any.
    queue: VecDeque<(MailboxDeliver, Option<Instant>)>,
    /// Content bytes queued.
    content: usize,
}

#[derive(Debug, Default)]
struct Service {
    offers: Vec<Offer>,
    /// Requests no worker has taken yet.
    queue: VecDeque<ServiceDeliver>,
}

/// The broker: everything its sessions share.
#[derive(Debug)]
pub struct Broker {
    /// Streams known (with readers or writers).
    streams: HashMap<String, Stream>,
    /// Connected owners of mailbox addresses.
    owners: HashMap<String, SessionKey>,
    /// Mail waiting for its owner (connected or not).
    mailboxes: HashMap<String, Mailbox>,
    /// Bytes of stored messages, mailboxes and service queues together.
    stored: usize,
    /// `mlm_server/storage/size-limit`.
    storage_limit: usize,
    /// `mlm_server/mailbox/size-limit`: content bytes per mailbox.
    mailbox_limit: Option<usize>,
    /// `mlm_server/client/size-limit`: one client's share.
    client_share: usize,
    /// Bytes of stored mail and requests, by sender address (anonymous
    /// senders share "").
    held_by: HashMap<String, usize>,
    /// `mlm_server/names/limit`: streams, and services, known at once.
    name_limit: usize,
    /// `mlm_server/client/match-rate`: bytes of subject one reader's
    /// patterns may scan per second.
    match_rate: u64,
    /// Per sender address: the services its waiting requests keep known,
    /// each with how many wait there (at most [`PER_CLIENT_LIMIT`]
    /// services), so that one client cannot fill the names with requests
    /// nobody will take.
    waiting_for: HashMap<String, HashMap<String, u32>>,
    services: HashMap<String, Service>,
    /// Stream and service deliveries on their way to each session, taken
    /// by the event sent with each.
    /// Service deliveries on their way to each session, taken by the event
    /// sent with each: kept here rather than carried by the event, so
    /// that those a session did not take before it ended go back to
    /// their queue (an event to a session that ended is dropped, and its
    /// data with it). Stream deliveries and confirmations travel with
    /// their event: lost with their session either way.
    service_out: HashMap<SessionKey, VecDeque<ServiceDeliver>>,
    /// Flow control of the clients that asked for it (sent CREDIT).
    credit: HashMap<SessionKey, Credit>,
    /// Tracker of a delivered message to the address of its sender, for
    /// the CONFIRM that may come back; oldest first.
    trackers: HashMap<String, (String, u64)>,
    /// Trackers by age, each with the number it was stored under (an
    /// entry whose tracker was confirmed or stored again is stale).
    tracker_order: VecDeque<(String, u64)>,
    tracker_seq: u64,
    /// Messages dropped at a limit.
    pub dropped: u64,
    /// Commands refused and messages dropped, by reason.
    refusals: Refusals,
}

impl Broker {
    /// The addresses of the connected clients that have one, sorted: what
    /// the C broker's actor answers to CLIENTLIST.
    pub fn client_list(&self) -> Vec<String> {
        let mut names: Vec<String> = self.owners.keys().cloned().collect();
        names.sort_unstable();
        names
    }

    /// The streams known (read or written), sorted: what the C broker's
    /// actor answers to STREAMLIST.
    pub fn stream_list(&self) -> Vec<String> {
        let mut names: Vec<String> = self.streams.keys().cloned().collect();
        names.sort_unstable();
        names
    }

    /// What it holds and has turned away, now.
    pub fn metrics(&self) -> BrokerMetrics {
        let n = |n: usize| n as u64;
        BrokerMetrics {
            streams: n(self.streams.len()),
            services: n(self.services.len()),
            mailboxes: n(self.mailboxes.len()),
            mail_waiting: n(self.mailboxes.values().map(|m| m.queue.len()).sum()),
            requests_waiting: n(self.services.values().map(|s| s.queue.len()).sum()),
            deliveries_held: n(self.credit.values().map(|c| c.held.len()).sum()),
            bytes_held: n(self.stored),
            storage_limit: n(self.storage_limit),
            refusals: self.refusals.iter().map(|(r, c)| (*r, *c)).collect(),
        }
    }
}

/// A status code define of the model as the wire's 2-byte number.
fn status(define: u64) -> u16 {
    u16::try_from(define).unwrap_or(u16::MAX)
}

impl Default for Broker {
    fn default() -> Self {
        Self {
            streams: HashMap::new(),
            owners: HashMap::new(),
            mailboxes: HashMap::new(),
            stored: 0,
            storage_limit: STORAGE_LIMIT,
            mailbox_limit: None,
            client_share: CLIENT_SHARE,
            held_by: HashMap::new(),
            name_limit: NAME_LIMIT,
            match_rate: MATCH_RATE,
            waiting_for: HashMap::new(),
            services: HashMap::new(),
            service_out: HashMap::new(),
            credit: HashMap::new(),
            trackers: HashMap::new(),
            tracker_order: VecDeque::new(),
            tracker_seq: 0,
            dropped: 0,
            refusals: Refusals::new(),
        }
    }
}

type Content = [zproto_runtime::bytes::Bytes];

fn content_size(content: &Content) -> usize {
    content.iter().map(|frame| frame.len()).sum()
}

/// What storing a message costs: its strings, frames and bookkeeping.
fn cost(strings: &[&str], content: &Content) -> usize {
    OVERHEAD
        + strings.iter().map(|s| s.len()).sum::<usize>()
        + content_size(content)
        + content.len() * 32
}

fn mail_cost(m: &MailboxDeliver) -> usize {
    cost(&[&m.sender, &m.address, &m.subject, &m.tracker], &m.content)
}

fn request_cost(m: &ServiceDeliver) -> usize {
    cost(&[&m.sender, &m.address, &m.subject, &m.tracker], &m.content)
}

fn ok(io: &mut Io) {
    io.set_message(
        Ok {
            status_code: status(SUCCESS),
            status_reason: String::new(),
        }
        .into(),
    );
}

fn error(io: &mut Io, code: u16, reason: &str) {
    io.set_message(
        Error {
            status_code: code,
            status_reason: reason.to_owned(),
        }
        .into(),
    );
}

/// A pattern as Malamute's clients write them (zrex, close to the
/// `regex` crate's syntax for what is used: `.`, `*`, `+`, `^`, `$`,
/// classes, `\d`, `\w`, `\s`); `None` if it does not compile.
///
/// Matched over bytes, with ASCII classes, as zrex matches (`.` is a
/// byte, `\w` and `\b` ASCII): so every pattern runs on the lazy DFA, one
/// pass over the subject. With Unicode classes, a word boundary before a
/// non-ASCII byte sends the matcher to its slow engines: 256 patterns of
/// `(?:\b.){20}` took 50-60 ms per 255-byte subject. The compiled program
/// (64 KiB) and the DFA's cache (64 KiB) are bounded per pattern, so a
/// client's [`PER_CLIENT_LIMIT`] patterns take at most 32 MiB.
fn pattern(text: &str) -> Option<regex::bytes::Regex> {
    regex::bytes::RegexBuilder::new(text)
        .unicode(false)
        .size_limit(1 << 16)
        .dfa_size_limit(1 << 16)
        .build()
        .ok()
}

impl Broker {
    /// Send `delivery` to session `to` now, or hold it while the client
    /// has no credit left (clients that never sent CREDIT have no limit).
    fn deliver(&mut self, to: SessionKey, delivery: Delivery, io: &mut Io) {
        if let Some(credit) = self.credit.get_mut(&to) {
            if credit.left == 0 {
                let bytes = delivery.cost();
                if credit.held.len() < HELD_LIMIT && credit.held_bytes + bytes <= self.client_share
                {
                    credit.held_bytes += bytes;
                    credit.held.push_back(delivery);
                } else {
                    self.dropped += 1;
                    count(&mut self.refusals, "client out of credit holds too much");
                    tracing::warn!("a client out of credit holds too much: delivery dropped");
                }
                return;
            }
            credit.left -= 1;
        }
        self.dispatch_now(to, delivery, io);
    }

    fn dispatch_now(&mut self, to: SessionKey, delivery: Delivery, io: &mut Io) {
        match delivery {
            Delivery::Stream(m) => io.send_event_with(to, Event::StreamMessage, m),
            Delivery::Service(m) => {
                self.service_out.entry(to).or_default().push_back(m);
                io.send_event(to, Event::ServiceMessage);
            }
            Delivery::Mail => io.send_event(to, Event::MailboxMessage),
        }
    }

    /// The next mail of `address`, its costs released.
    fn take_mail(&mut self, address: &str) -> Option<MailboxDeliver> {
        let mailbox = self.mailboxes.get_mut(address)?;
        let mail = mailbox.queue.pop_front().map(|(mail, _)| mail);
        if let Some(mail) = &mail {
            mailbox.content = mailbox.content.saturating_sub(content_size(&mail.content));
        }
        if mailbox.queue.is_empty() {
            self.mailboxes.remove(address);
        }
        if let Some(mail) = &mail {
            self.release(&mail.sender, mail_cost(mail));
        }
        mail
    }

    /// A request of `sender` was queued for `service`.
    fn request_queued(&mut self, sender: &str, service: &str) {
        let services = match self.waiting_for.get_mut(sender) {
            Some(services) => services,
            None => self.waiting_for.entry(sender.to_owned()).or_default(),
        };
        match services.get_mut(service) {
            Some(waiting) => *waiting += 1,
            None => {
                services.insert(service.to_owned(), 1);
            }
        }
    }

    /// A request left its service's queue.
    fn request_taken(&mut self, request: &ServiceDeliver) {
        let Some(services) = self.waiting_for.get_mut(&request.sender) else {
            return;
        };
        if let Some(waiting) = services.get_mut(&request.address) {
            *waiting -= 1;
            if *waiting == 0 {
                services.remove(&request.address);
            }
        }
        if services.is_empty() {
            self.waiting_for.remove(&request.sender);
        }
    }

    /// Whether `sender` may queue a request for `service`: it is one of
    /// the services its requests wait for already, or there is room for
    /// one more.
    fn may_wait_for(&self, sender: &str, service: &str) -> bool {
        self.waiting_for.get(sender).is_none_or(|services| {
            services.contains_key(service) || services.len() < PER_CLIENT_LIMIT
        })
    }

    /// Whether `sender`'s share has room for `bytes` more.
    fn share_has_room(&self, sender: &str, bytes: usize) -> bool {
        self.held_by.get(sender).copied().unwrap_or(0) + bytes <= self.client_share
    }

    /// Store `bytes` more for `sender`.
    fn charge(&mut self, sender: &str, bytes: usize) {
        self.stored += bytes;
        match self.held_by.get_mut(sender) {
            Some(held) => *held += bytes,
            None => {
                self.held_by.insert(sender.to_owned(), bytes);
            }
        }
    }

    /// `bytes` of `sender`'s are no longer stored.
    fn release(&mut self, sender: &str, bytes: usize) {
        self.stored = self.stored.saturating_sub(bytes);
        if let Some(held) = self.held_by.get_mut(sender) {
            *held = held.saturating_sub(bytes);
            if *held == 0 {
                self.held_by.remove(sender);
            }
        }
    }

    /// Forget stream `name` if nobody reads or writes it.
    fn forget_stream_if_idle(&mut self, name: &str) {
        if self
            .streams
            .get(name)
            .is_some_and(|s| s.readers.is_empty() && s.writers == 0)
        {
            self.streams.remove(name);
        }
    }

    /// Forget service `name` if it has no workers and no waiting requests.
    fn forget_service_if_idle(&mut self, name: &str) {
        if self
            .services
            .get(name)
            .is_some_and(|s| s.offers.is_empty() && s.queue.is_empty())
        {
            self.services.remove(name);
        }
    }

    /// Discard the mail of `address` whose timeout passed, from the front
    /// (mail is queued in order of arrival, so mostly in order of
    /// deadline); a tracked one is confirmed to its sender as not
    /// delivered.
    fn expire_mail(&mut self, address: &str, now: Instant, io: &mut Io) {
        loop {
            let expired = self
                .mailboxes
                .get(address)
                .and_then(|m| m.queue.front())
                .is_some_and(|(_, deadline)| deadline.is_some_and(|at| at <= now));
            if !expired {
                return;
            }
            let Some(mail) = self.take_mail(address) else {
                return;
            };
            self.dropped += 1;
            count(&mut self.refusals, "mail expired");
            let Some((sender, _)) = self.trackers.remove(&mail.tracker) else {
                continue;
            };
            if let Some(&owner) = self.owners.get(&sender) {
                let confirm = Confirm {
                    tracker: mail.tracker,
                    status_code: status(FAILED),
                    status_reason: "timeout expired".into(),
                };
                io.send_event_with(owner, Event::ConfirmMessage, confirm);
            }
        }
    }

    /// Remember who sent a tracked message, for its confirmation.
    fn track(&mut self, tracker: &str, sender: &str) {
        if tracker.is_empty() || sender.is_empty() {
            return;
        }
        if self.tracker_order.len() >= TRACKER_LIMIT {
            if let Some((oldest, seq)) = self.tracker_order.pop_front() {
                if self.trackers.get(&oldest).is_some_and(|(_, s)| *s == seq) {
                    self.trackers.remove(&oldest);
                }
            }
        }
        self.tracker_seq += 1;
        let seq = self.tracker_seq;
        self.trackers
            .insert(tracker.to_owned(), (sender.to_owned(), seq));
        self.tracker_order.push_back((tracker.to_owned(), seq));
    }

    /// Offer queued requests of `name` to its workers, round robin.
    fn dispatch(&mut self, name: &str, io: &mut Io) {
        let Some(service) = self.services.get_mut(name) else {
            return;
        };
        let mut kept = VecDeque::new();
        let mut taken = Vec::new();
        while let Some(request) = service.queue.pop_front() {
            let taker = service
                .offers
                .iter()
                .position(|o| o.pattern.is_match(request.subject.as_bytes()));
            match taker {
                Some(i) => {
                    // Round robin: the worker goes to the back.
                    let offer = service.offers.remove(i);
                    let to = offer.session;
                    service.offers.push(offer);
                    taken.push((to, request));
                }
                None => kept.push_back(request),
            }
        }
        service.queue = kept;
        for (to, request) in taken {
            self.request_taken(&request);
            self.release(&request.sender, request_cost(&request));
            self.deliver(to, Delivery::Service(request), io);
        }
    }

    /// Forget everything of a session that ended.
    fn forget(&mut self, session: &mut Session) {
        let Some(key) = session.key.take() else {
            return;
        };
        for stream in self.streams.values_mut() {
            stream.readers.retain(|r| r.session != key);
        }
        if let Some(stream) = session.writer.take().and_then(|w| self.streams.get_mut(&w)) {
            stream.writers = stream.writers.saturating_sub(1);
        }
        self.streams
            .retain(|_, s| !s.readers.is_empty() || s.writers > 0);
        for service in self.services.values_mut() {
            service.offers.retain(|o| o.session != key);
        }
        if self.owners.get(&session.address) == Some(&key) {
            self.owners.remove(&session.address);
        }
        // Service requests not sent yet go back to their queue, for
        // another worker (stream deliveries go with the session).
        let held = self.credit.remove(&key).map(|c| c.held).unwrap_or_default();
        let held_requests = held.into_iter().filter_map(|d| match d {
            Delivery::Service(request) => Some(request),
            _ => None,
        });
        let mut requests: VecDeque<ServiceDeliver> =
            self.service_out.remove(&key).unwrap_or_default();
        requests.extend(held_requests);
        if !requests.is_empty() {
            // Back to the front of their queues, in their order.
            for request in requests.into_iter().rev() {
                self.charge(&request.sender, request_cost(&request));
                self.request_queued(&request.sender, &request.address);
                let name = request.address.clone();
                let service = self.services.entry(name).or_default();
                service.queue.push_front(request);
            }
        }
        self.services
            .retain(|_, s| !s.offers.is_empty() || !s.queue.is_empty());
    }
}

impl Actions for Broker {
    type Session = Session;

    fn register_new_client(
        &mut self,
        session: &mut Session,
        open: &mut ConnectionOpen,
        io: &mut Io,
    ) {
        let address = open.address.clone();
        session.key = io.session();
        session.address = address.clone();
        if let (false, Some(key)) = (address.is_empty(), session.key) {
            // A new connection with a known address takes the mailbox
            // over; the old one is expired, as upstream does.
            if let Some(old) = self.owners.insert(address, key) {
                if old != key {
                    io.send_event(old, Event::Expired);
                }
            }
        }
        ok(io);
    }

    fn check_for_mailbox_messages(&mut self, session: &mut Session, io: &mut Io) {
        let now = io.now().unwrap_or_else(Instant::now);
        self.expire_mail(&session.address, now, io);
        let waiting = self
            .mailboxes
            .get(&session.address)
            .map_or(0, |m| m.queue.len());
        if let Some(key) = session.key.filter(|_| !session.address.is_empty()) {
            for _ in 0..waiting {
                self.deliver(key, Delivery::Mail, io);
            }
        }
    }

    fn signal_command_invalid(&mut self, _session: &mut Session, io: &mut Io) {
        error(io, status(COMMAND_INVALID), "command invalid");
    }

    fn store_stream_writer(&mut self, session: &mut Session, w: &mut StreamWrite, io: &mut Io) {
        let stream = w.stream.clone();
        if session.writer.as_deref() == Some(stream.as_str()) {
            return ok(io);
        }
        if !self.streams.contains_key(&stream) && self.streams.len() >= self.name_limit {
            return refuse(&mut self.refusals, io, "too many streams");
        }
        self.streams.entry(stream.clone()).or_default().writers += 1;
        if let Some(old) = session.writer.replace(stream) {
            if let Some(s) = self.streams.get_mut(&old) {
                s.writers = s.writers.saturating_sub(1);
            }
            self.forget_stream_if_idle(&old);
        }
        ok(io);
    }

    fn store_stream_reader(&mut self, session: &mut Session, r: &mut StreamRead, io: &mut Io) {
        let Some(key) = session.key else {
            return;
        };
        let (stream, text) = (r.stream.clone(), r.pattern.clone());
        if session.commitments >= PER_CLIENT_LIMIT {
            return refuse(&mut self.refusals, io, "too many subscriptions and offers");
        }
        if !self.streams.contains_key(&stream) && self.streams.len() >= self.name_limit {
            return refuse(&mut self.refusals, io, "too many streams");
        }
        let Some(compiled) = pattern(&text) else {
            return refuse(&mut self.refusals, io, "invalid pattern");
        };
        session.commitments += 1;
        let readers = &mut self.streams.entry(stream).or_default().readers;
        match readers.iter_mut().find(|r| r.session == key) {
            Some(reader) => reader.patterns.push((text, compiled)),
            None => readers.push(Reader {
                session: key,
                patterns: vec![(text, compiled)],
                budget: MatchBudget::new(self.match_rate),
            }),
        }
        ok(io);
    }

    fn cancel_stream_reader(&mut self, session: &mut Session, c: &mut StreamCancel, io: &mut Io) {
        if let Some(key) = session.key {
            if let Some(stream) = self.streams.get_mut(&c.stream) {
                let cancelled: usize = stream
                    .readers
                    .iter()
                    .filter(|r| r.session == key)
                    .map(|r| r.patterns.len())
                    .sum();
                session.commitments = session.commitments.saturating_sub(cancelled);
                stream.readers.retain(|r| r.session != key);
            }
            let name = c.stream.clone();
            self.forget_stream_if_idle(&name);
        }
        ok(io);
    }

    fn write_message_to_stream(
        &mut self,
        session: &mut Session,
        send: &mut StreamSend,
        io: &mut Io,
    ) {
        let Some(stream) = &session.writer else {
            error(io, status(COMMAND_INVALID), "no stream to write to");
            io.set_exception(Event::Exception);
            return;
        };
        let now = io.now().unwrap_or_else(Instant::now);
        let rate = self.match_rate;
        let Some(readers) = self.streams.get_mut(stream).map(|s| &mut s.readers) else {
            return;
        };
        let subject = send.subject.as_bytes();
        // Each pattern tried costs one pass over the subject, charged to
        // its reader; a reader out of budget is skipped, not waited for.
        let pass = u64::try_from(subject.len()).unwrap_or(u64::MAX).max(1);
        let mut skipped = 0;
        let matching: Vec<SessionKey> = readers
            .iter_mut()
            .filter_map(|r| {
                r.budget.refill(rate, now);
                let mut matched = false;
                for (_, p) in &r.patterns {
                    if r.budget.tokens < pass {
                        skipped += 1;
                        break;
                    }
                    r.budget.tokens -= pass;
                    if p.is_match(subject) {
                        matched = true;
                        break;
                    }
                }
                matched.then_some(r.session)
            })
            .collect();
        if skipped > 0 {
            *self
                .refusals
                .entry("reader past its match rate")
                .or_default() += skipped;
        }
        let mut delivery = Some(StreamDeliver {
            address: stream.clone(),
            sender: session.address.clone(),
            subject: std::mem::take(&mut send.subject),
            content: std::mem::take(&mut send.content),
        });
        let last = matching.len().saturating_sub(1);
        for (i, to) in matching.into_iter().enumerate() {
            // The last reader takes the message itself, the others a copy.
            let message = if i == last {
                delivery.take()
            } else {
                delivery.clone()
            };
            if let Some(message) = message {
                self.deliver(to, Delivery::Stream(message), io);
            }
        }
    }

    fn write_message_to_mailbox(
        &mut self,
        session: &mut Session,
        send: &mut MailboxSend,
        io: &mut Io,
    ) {
        let send = std::mem::take(send);
        let now = io.now().unwrap_or_else(Instant::now);
        let deadline =
            (send.timeout > 0).then(|| now + Duration::from_millis(u64::from(send.timeout)));
        let mail = MailboxDeliver {
            sender: session.address.clone(),
            address: send.address,
            subject: send.subject,
            tracker: send.tracker,
            content: send.content,
        };
        self.expire_mail(&mail.address, now, io);
        self.track(&mail.tracker, &mail.sender);
        let (bytes, content) = (mail_cost(&mail), content_size(&mail.content));
        if !self.share_has_room(&mail.sender, bytes) {
            self.dropped += 1;
            return refuse(&mut self.refusals, io, "over the client's share of storage");
        }
        let mailbox = self.mailboxes.entry(mail.address.clone()).or_default();
        let full = mailbox.queue.len() >= MAILBOX_LIMIT
            || self.stored + bytes > self.storage_limit
            || self
                .mailbox_limit
                .is_some_and(|limit| mailbox.content + content > limit);
        if full {
            if mailbox.queue.is_empty() {
                self.mailboxes.remove(&mail.address);
            }
            self.dropped += 1;
            count(&mut self.refusals, "mailbox or storage full");
            tracing::warn!(mailbox = %mail.address, "mailbox or storage full: message dropped");
            return;
        }
        mailbox.content += content;
        let owner = self.owners.get(&mail.address).copied();
        let sender = mail.sender.clone();
        mailbox.queue.push_back((mail, deadline));
        self.charge(&sender, bytes);
        if let Some(owner) = owner {
            self.deliver(owner, Delivery::Mail, io);
        }
    }

    fn write_message_to_service(
        &mut self,
        session: &mut Session,
        send: &mut ServiceSend,
        io: &mut Io,
    ) {
        let send = std::mem::take(send);
        let name = send.address.clone();
        let request = ServiceDeliver {
            sender: session.address.clone(),
            address: send.address,
            subject: send.subject,
            tracker: send.tracker,
            content: send.content,
        };
        self.track(&request.tracker, &request.sender);
        let bytes = request_cost(&request);
        if !self.share_has_room(&request.sender, bytes) {
            self.dropped += 1;
            return refuse(&mut self.refusals, io, "over the client's share of storage");
        }
        if !self.may_wait_for(&request.sender, &name) {
            self.dropped += 1;
            return refuse(
                &mut self.refusals,
                io,
                "requests waiting for too many services",
            );
        }
        if !self.services.contains_key(&name) && self.services.len() >= self.name_limit {
            self.dropped += 1;
            count(&mut self.refusals, "too many services");
            tracing::warn!(service = %name, "too many services: request dropped");
            return;
        }
        let service = self.services.entry(name.clone()).or_default();
        if service.queue.len() >= SERVICE_QUEUE_LIMIT || self.stored + bytes > self.storage_limit {
            self.dropped += 1;
            count(&mut self.refusals, "service queue or storage full");
            tracing::warn!(service = %name, "service queue or storage full: request dropped");
            self.forget_service_if_idle(&name);
            return;
        }
        let sender = request.sender.clone();
        service.queue.push_back(request);
        self.charge(&sender, bytes);
        self.request_queued(&sender, &name);
        self.dispatch(&name, io);
    }

    fn store_service_offer(&mut self, session: &mut Session, o: &mut ServiceOffer, io: &mut Io) {
        let Some(key) = session.key else {
            return;
        };
        let name = o.address.clone();
        if session.commitments >= PER_CLIENT_LIMIT {
            return refuse(&mut self.refusals, io, "too many subscriptions and offers");
        }
        if !self.services.contains_key(&name) && self.services.len() >= self.name_limit {
            return refuse(&mut self.refusals, io, "too many services");
        }
        let Some(compiled) = pattern(&o.pattern) else {
            return refuse(&mut self.refusals, io, "invalid pattern");
        };
        session.commitments += 1;
        self.services
            .entry(name.clone())
            .or_default()
            .offers
            .push(Offer {
                session: key,
                pattern: compiled,
            });
        session.offered = Some(name);
        ok(io);
    }

    fn dispatch_the_service(&mut self, session: &mut Session, io: &mut Io) {
        if let Some(name) = session.offered.take() {
            self.dispatch(&name, io);
        }
    }

    fn have_message_confirmation(
        &mut self,
        _session: &mut Session,
        confirm: &mut Confirm,
        io: &mut Io,
    ) {
        // A client confirms a tracked delivery: pass it to the sender, if
        // it is connected (a confirmation is not stored).
        let confirm = std::mem::take(confirm);
        let Some((sender, _)) = self.trackers.remove(&confirm.tracker) else {
            return;
        };
        if let Some(&owner) = self.owners.get(&sender) {
            io.send_event_with(owner, Event::ConfirmMessage, confirm);
        }
    }

    fn credit_the_client(
        &mut self,
        session: &mut Session,
        credit: &mut crate::mlm_proto::Credit,
        io: &mut Io,
    ) {
        // From its first CREDIT on, a client gets no more deliveries than
        // it allowed; deliveries held meanwhile go out as credit comes.
        let Some(key) = session.key else {
            return;
        };
        let amount = u64::from(credit.amount);
        let account = self.credit.entry(key).or_default();
        account.left = account.left.saturating_add(amount);
        let mut release = Vec::new();
        while account.left > 0 {
            let Some(delivery) = account.held.pop_front() else {
                break;
            };
            account.left -= 1;
            account.held_bytes = account.held_bytes.saturating_sub(delivery.cost());
            release.push(delivery);
        }
        for delivery in release {
            self.dispatch_now(key, delivery, io);
        }
    }

    fn signal_success(
        &mut self,
        _session: &mut Session,
        _close: &mut ConnectionClose,
        io: &mut Io,
    ) {
        ok(io);
    }

    fn deregister_the_client(&mut self, session: &mut Session, _io: &mut Io) {
        self.forget(session);
    }

    fn get_stream_message(&mut self, _session: &mut Session, io: &mut Io) {
        match io.take_arg::<StreamDeliver>() {
            Some(message) => io.set_message(message.into()),
            None => io.set_exception(Event::NothingToDeliver),
        }
    }

    fn get_mailbox_message(&mut self, session: &mut Session, io: &mut Io) {
        let now = io.now().unwrap_or_else(Instant::now);
        self.expire_mail(&session.address, now, io);
        let next = self.take_mail(&session.address);
        match next {
            Some(mail) => io.set_message(mail.into()),
            None => io.set_exception(Event::NothingToDeliver),
        }
    }

    fn get_confirm_message(&mut self, _session: &mut Session, io: &mut Io) {
        match io.take_arg::<Confirm>() {
            Some(message) => io.set_message(message.into()),
            None => io.set_exception(Event::NothingToDeliver),
        }
    }

    fn get_service_message(&mut self, session: &mut Session, io: &mut Io) {
        let next = session
            .key
            .and_then(|key| self.service_out.get_mut(&key))
            .and_then(VecDeque::pop_front);
        match next {
            Some(message) => io.set_message(message.into()),
            None => io.set_exception(Event::NothingToDeliver),
        }
    }

    fn session_ended(&mut self, session: &mut Session) {
        self.forget(session);
    }

    fn configure(&mut self, path: &str, value: &str) {
        let bytes = || value.trim().parse::<usize>().ok();
        match path {
            "mlm_server/storage/size-limit" => match bytes() {
                Some(limit) => self.storage_limit = limit,
                None => tracing::warn!("{path}: \"{value}\" is not a number of bytes"),
            },
            // Upstream's key; absent, no limit but the storage's.
            "mlm_server/mailbox/size-limit" => match bytes() {
                Some(limit) => self.mailbox_limit = Some(limit),
                None => tracing::warn!("{path}: \"{value}\" is not a number of bytes"),
            },
            "mlm_server/client/size-limit" => match bytes() {
                Some(limit) => self.client_share = limit,
                None => tracing::warn!("{path}: \"{value}\" is not a number of bytes"),
            },
            "mlm_server/names/limit" => match bytes() {
                Some(limit) => self.name_limit = limit,
                None => tracing::warn!("{path}: \"{value}\" is not a number"),
            },
            "mlm_server/client/match-rate" => match value.trim().parse::<u64>() {
                Ok(rate) if rate > 0 => self.match_rate = rate,
                _ => tracing::warn!("{path}: \"{value}\" is not a positive number of bytes"),
            },
            _ => {}
        }
    }
}
