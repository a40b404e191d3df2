//! Plumtree dissemination between zproto-rs nodes (docs/zgossip.md, "Plumtree"), as
//! in Leitão, Pereira and Rodrigues (2007): tuples go in full over the
//! links of a spanning tree (*eager* links) and as ids over the others
//! (*lazy* links), in batches of IHAVE.
//!
//! - **The tree** starts from the links' order: a node's first remote is
//!   eager, and its others send PRUNE after HELLO, which makes them lazy
//!   both ways.
//! - **Loops prune.** The same write (the same stamp) arriving a second
//!   time on an eager link means a loop: that link gets PRUNE. A stale
//!   version, an unstamped copy or a replay (marked, after HELLO, a
//!   synchronisation or a GRAFT) is no such duplicate and prunes nothing.
//! - **Repair grafts.** A node that hears of a tuple it lacks and does not
//!   receive it in time ([`graft_waits`]) asks the IHAVE's sender with
//!   GRAFT, which also puts that link back on the tree, eager both ways:
//!   without that, pruned links never heal and nodes end up isolated.
//!
//! All of it only on links whose PING/PONG agreed [`PLUMTREE`]: a CZMQ
//! node stops on a message id it does not know.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use zproto_runtime::engine::SessionKey;

use crate::tuples::{Stamp, Tuple, Tuples};

/// Extension bit: IHAVE, GRAFT and PRUNE.
pub const PLUMTREE: u32 = 2;

/// How often ids queued for lazy links go out as IHAVE.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// The least time after an IHAVE a node waits for the tuple on an eager
/// link before it asks the IHAVE's sender with GRAFT. It waits longer when
/// the tree is slow: four times the lag it has seen between an IHAVE and
/// the tuple itself (averaged, as TCP's retransmission timer), so that a
/// busy tree (a burst of announcements) is not taken for a broken one.
pub const GRAFT_AFTER: Duration = Duration::from_millis(1000);

/// The longest wait before a GRAFT, however slow the tree has been.
pub const GRAFT_AFTER_MAX: Duration = Duration::from_secs(30);

/// Most tuples a node waits for at once; ids beyond are not noted (a
/// later IHAVE, or the next synchronisation, brings them).
pub const MAX_MISSING: usize = 100_000;

/// Most of those that one link may have announced first: a peer that sends
/// made-up ids fills its own share, not everyone's, and its share goes
/// with it.
pub const MAX_MISSING_PER_LINK: usize = 10_000;

/// One side of a link: a session on our ROUTER, or one of our remotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Link {
    /// A peer connected to us.
    Session(SessionKey),
    /// A server we connected to, by index.
    Remote(usize),
}

/// Ids waiting to go to a lazy link as one IHAVE, packed as on the wire.
#[derive(Debug, Default)]
pub struct LazyQueue {
    records: Vec<u8>,
}

/// Bytes of an IHAVE besides its records: signature and id, version,
/// chunk length.
const IHAVE_OVERHEAD: usize = 2 + 1 + 1 + 4;

/// Bytes of a stamp in an IHAVE record: version 8, origin 8.
const STAMP_BYTES: usize = 16;

impl LazyQueue {
    /// Queue `tuple`'s id (a stamped tuple only: an unstamped one cannot
    /// be compared, and goes in full).
    pub fn push(&mut self, tuple: &Tuple) {
        let Some(stamp) = tuple.stamp else {
            return;
        };
        let endpoint = tuple.endpoint.as_bytes();
        let Ok(len) = u8::try_from(endpoint.len()) else {
            return;
        };
        self.records.push(len);
        self.records.extend_from_slice(endpoint);
        self.records.extend_from_slice(&stamp.version.to_be_bytes());
        self.records.extend_from_slice(&stamp.origin.to_be_bytes());
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records of one IHAVE of at most `max_message` bytes; the rest
    /// stays queued.
    pub fn take(&mut self, max_message: usize) -> Option<Vec<u8>> {
        if self.records.is_empty() {
            return None;
        }
        let budget = max_message.saturating_sub(IHAVE_OVERHEAD);
        let mut end = 0;
        while end < self.records.len() {
            let next = end + 1 + usize::from(self.records[end]) + STAMP_BYTES;
            if next > budget && end > 0 {
                break;
            }
            end = next;
        }
        let rest = self.records.split_off(end.min(self.records.len()));
        Some(std::mem::replace(&mut self.records, rest))
    }
}

/// The ids of an IHAVE; `None` if the records are malformed.
pub fn unpack(records: &[u8]) -> Option<Vec<(String, Stamp)>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < records.len() {
        let len = usize::from(records[at]);
        let endpoint = records.get(at + 1..at + 1 + len)?;
        let stamp = records.get(at + 1 + len..at + 1 + len + STAMP_BYTES)?;
        let version = u64::from_be_bytes(stamp[..8].try_into().ok()?);
        let origin = u64::from_be_bytes(stamp[8..].try_into().ok()?);
        out.push((
            String::from_utf8(endpoint.to_vec()).ok()?,
            Stamp { version, origin },
        ));
        at += 1 + len + STAMP_BYTES;
    }
    Some(out)
}

/// Most links remembered per missing tuple, to ask one after another.
const MAX_ANNOUNCERS: usize = 4;

/// Most GRAFTs for one missing tuple, the announcers in turn, each wait
/// twice the one before.
const MAX_TRIES: u32 = 6;

/// A tuple heard of and not received: the newest stamp announced, the
/// links that announced it (asked in turn), and when to ask next.
#[derive(Debug)]
struct Wanted {
    stamp: Stamp,
    announcers: Vec<Link>,
    at: Instant,
    /// When the first IHAVE of it came.
    heard_at: Instant,
    /// GRAFTs sent for it.
    tries: u32,
}

/// Tuples heard of by IHAVE and not yet received.
#[derive(Debug)]
pub struct Missing {
    /// Ordered, so that GRAFTs ask in the same order in every run.
    wanted: BTreeMap<String, Wanted>,
    /// The earliest time to ask, if any.
    next: Option<Instant>,
    /// Average lag between an IHAVE and the tuple's arrival by push.
    lag: Duration,
    /// The shortest and longest wait before a GRAFT.
    least_wait: Duration,
    longest_wait: Duration,
    /// Per link, the tuples waited for that it announced first.
    per_link: HashMap<Link, usize>,
}

impl Default for Missing {
    fn default() -> Self {
        Self {
            per_link: HashMap::new(),
            wanted: BTreeMap::new(),
            next: None,
            lag: Duration::ZERO,
            least_wait: GRAFT_AFTER,
            longest_wait: GRAFT_AFTER_MAX,
        }
    }
}

/// The shortest and longest wait before a GRAFT for tuples that live
/// `lease`: [`GRAFT_AFTER`] and [`GRAFT_AFTER_MAX`], and at most a tenth
/// and a sixth of the lease, so that a tuple missed on a lazy link is
/// asked for well before the copies elsewhere expire.
pub fn graft_waits(lease: Option<Duration>) -> (Duration, Duration) {
    match lease {
        None => (GRAFT_AFTER, GRAFT_AFTER_MAX),
        Some(lease) => (GRAFT_AFTER.min(lease / 10), GRAFT_AFTER_MAX.min(lease / 6)),
    }
}

impl Missing {
    /// `link` has these tuples: note those we hold no version of as
    /// recent, to ask for at `now` + [`GRAFT_AFTER`].
    pub fn heard(&mut self, ids: Vec<(String, Stamp)>, link: Link, tuples: &Tuples, now: Instant) {
        let ask_at = now + self.wait();
        self.note(ids, link, tuples, ask_at, now);
    }

    /// `link` should have these tuples, and nothing else will bring them
    /// (they expired here, and their origin's heartbeat came by `link`):
    /// ask at once.
    pub fn ask(&mut self, ids: Vec<(String, Stamp)>, link: Link, tuples: &Tuples, now: Instant) {
        self.note(ids, link, tuples, now, now);
    }

    fn note(
        &mut self,
        ids: Vec<(String, Stamp)>,
        link: Link,
        tuples: &Tuples,
        ask_at: Instant,
        now: Instant,
    ) {
        for (endpoint, stamp) in ids {
            let held = tuples.stamp(&endpoint);
            if held.is_some_and(|h| h >= stamp) {
                continue;
            }
            let room = self.wanted.len() < MAX_MISSING
                && self.per_link.get(&link).copied().unwrap_or(0) < MAX_MISSING_PER_LINK;
            match self.wanted.get_mut(&endpoint) {
                Some(entry) => {
                    entry.stamp = entry.stamp.max(stamp);
                    if entry.announcers.len() < MAX_ANNOUNCERS && !entry.announcers.contains(&link)
                    {
                        entry.announcers.push(link);
                    }
                }
                None if room => {
                    let wanted = Wanted {
                        stamp,
                        announcers: vec![link],
                        at: ask_at,
                        heard_at: now,
                        tries: 0,
                    };
                    self.wanted.insert(endpoint, wanted);
                    *self.per_link.entry(link).or_default() += 1;
                    self.next = Some(self.next.map_or(ask_at, |n| n.min(ask_at)));
                }
                None => {}
            }
        }
    }

    /// Set the shortest and longest wait before a GRAFT (see
    /// [`graft_waits`]).
    pub fn set_waits(&mut self, (least, longest): (Duration, Duration)) {
        self.least_wait = least;
        self.longest_wait = longest.max(least);
    }

    /// How long to wait for a tuple heard of now.
    pub fn wait(&self) -> Duration {
        (self.lag * 4).clamp(self.least_wait, self.longest_wait)
    }

    /// A tuple arrived: no longer missing if it is as recent as announced.
    /// The lag is sampled only from tuples that came by themselves (before
    /// any GRAFT of ours): one that answers a GRAFT measures our own wait,
    /// and would make the next wait longer, round after round.
    pub fn received(&mut self, endpoint: &str, stamp: Option<Stamp>, now: Instant) {
        if self.wanted.is_empty() {
            return;
        }
        if let (Some(entry), Some(stamp)) = (self.wanted.get(endpoint), stamp) {
            if stamp >= entry.stamp {
                if entry.tries == 0 {
                    let sample = now.saturating_duration_since(entry.heard_at);
                    self.lag = self.lag.mul_f64(0.875) + sample.mul_f64(0.125);
                }
                if let Some(entry) = self.wanted.remove(endpoint) {
                    release(&mut self.per_link, entry.announcers.first());
                }
            }
        }
    }

    /// A link went away: what it announced is asked of no one now (a
    /// later IHAVE, or a synchronisation, brings it).
    pub fn forget_link(&mut self, link: Link) {
        let per_link = &mut self.per_link;
        self.wanted.retain(|_, w| {
            let first = w.announcers.first() == Some(&link);
            w.announcers.retain(|l| *l != link);
            if first {
                // Its next announcer answers for it now.
                if let Some(&next) = w.announcers.first() {
                    *per_link.entry(next).or_default() += 1;
                }
            }
            !w.announcers.is_empty()
        });
        per_link.remove(&link);
    }

    /// What is due at `now`, by link, to ask for with GRAFT: each tuple of
    /// its first announcer; if that one does not send it either, of the
    /// next, twice as long later, and so on, up to `MAX_TRIES` GRAFTs.
    pub fn due(&mut self, tuples: &Tuples, now: Instant) -> Vec<(Link, Vec<String>)> {
        if self.next.map_or(true, |at| at > now) {
            return Vec::new();
        }
        let mut by_link: Vec<(Link, Vec<String>)> = Vec::new();
        let mut next: Option<Instant> = None;
        let wait = self.wait();
        let per_link = &mut self.per_link;
        self.wanted.retain(|endpoint, w| {
            if w.at <= now {
                let held = tuples.stamp(endpoint);
                if held.is_some_and(|h| h >= w.stamp)
                    || w.announcers.is_empty()
                    || w.tries >= MAX_TRIES
                {
                    release(per_link, w.announcers.first());
                    return false;
                }
                // The announcers in turn, again from the first: a GRAFT or
                // its answer may be lost with a connection.
                let link = w.announcers[w.tries as usize % w.announcers.len()];
                w.tries += 1;
                match by_link.iter_mut().find(|(l, _)| *l == link) {
                    Some((_, endpoints)) => endpoints.push(endpoint.clone()),
                    None => by_link.push((link, vec![endpoint.clone()])),
                }
                w.at = now + wait * (1 << w.tries.min(8));
            }
            next = Some(next.map_or(w.at, |n| n.min(w.at)));
            true
        });
        self.next = next;
        by_link
    }

    /// When [`Missing::due`] next has something to do.
    pub fn next_due(&self) -> Option<Instant> {
        self.next
    }

    #[cfg(test)]
    /// Tuples waited for that `link` announced first.
    pub fn announced_by(&self, link: Link) -> usize {
        self.per_link.get(&link).copied().unwrap_or(0)
    }

    /// Tuples waited for.
    pub fn len(&self) -> usize {
        self.wanted.len()
    }

    #[cfg(test)]
    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.wanted.is_empty()
    }
}

/// One tuple fewer waited for that `first` announced first.
fn release(per_link: &mut HashMap<Link, usize>, first: Option<&Link>) {
    if let Some(count) = first.and_then(|link| per_link.get_mut(link)) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            if let Some(&link) = first {
                per_link.remove(&link);
            }
        }
    }
}

/// Most tuples one GRAFT is answered with.
pub const GRAFT_ANSWER_MAX: usize = 1024;

/// Most bytes of tuples (endpoints and services) one GRAFT is answered
/// with: a GRAFT of a few bytes per endpoint cannot make a node send
/// megabytes per message, whatever `limits/service` allows.
pub const GRAFT_ANSWER_BYTES: usize = 256 * 1024;

/// Bytes of answers to GRAFT a link earns per second, up to
/// [`GRAFT_ANSWER_BYTES`] at once.
pub const GRAFT_BYTES_PER_SECOND: usize = 1024 * 1024;

/// What one link may still be sent in answers to GRAFT: a bucket of
/// [`GRAFT_ANSWER_BYTES`], refilled at [`GRAFT_BYTES_PER_SECOND`]. GRAFTs
/// that come at once share one answer's worth, so a peer that sends a
/// storm of them (and never reads) makes the node build at most that much
/// per burst, and a megabyte a second after it; what was built waits in
/// the connection's queue within its high-water mark. An honest peer asks
/// for what it missed on its lazy links, a GRAFT a second at most, and a
/// GRAFT left unanswered is asked again (the announcers in turn).
#[derive(Debug, Clone, Copy)]
pub struct GraftBudget {
    bytes: usize,
    at: Option<Instant>,
}

impl Default for GraftBudget {
    fn default() -> Self {
        Self {
            bytes: GRAFT_ANSWER_BYTES,
            at: None,
        }
    }
}

impl GraftBudget {
    /// The answer to a GRAFT of `endpoints` at `now` ([`graft_answer`]),
    /// within what the link has earned; what it costs is spent.
    pub fn answer(
        &mut self,
        endpoints: &[String],
        tuples: &Tuples,
        now: Instant,
        can_take: impl Fn(&Tuple) -> bool,
    ) -> Vec<Tuple> {
        if let Some(at) = self.at {
            let earned =
                now.saturating_duration_since(at).as_secs_f64() * GRAFT_BYTES_PER_SECOND as f64;
            self.bytes = (self.bytes as f64 + earned).min(GRAFT_ANSWER_BYTES as f64) as usize;
        }
        self.at = Some(now);
        let answer = graft_answer(endpoints, tuples, now, self.bytes, can_take);
        let spent: usize = answer.iter().map(answer_bytes).sum();
        self.bytes = self.bytes.saturating_sub(spent);
        answer
    }
}

/// What a tuple of an answer counts: its endpoint and service.
fn answer_bytes(tuple: &Tuple) -> usize {
    tuple.endpoint.len() + tuple.service.len()
}

/// The tuples a GRAFT asks for that the node holds and the peer can take,
/// each once, at most [`GRAFT_ANSWER_MAX`] of them and `max_bytes` (at most
/// [`GRAFT_ANSWER_BYTES`]) in all (a peer that wants more asks again).
pub fn graft_answer(
    endpoints: &[String],
    tuples: &Tuples,
    now: Instant,
    max_bytes: usize,
    can_take: impl Fn(&Tuple) -> bool,
) -> Vec<Tuple> {
    let max_bytes = max_bytes.min(GRAFT_ANSWER_BYTES);
    let mut seen = std::collections::BTreeSet::new();
    let mut bytes = 0;
    let mut answer = Vec::new();
    for endpoint in endpoints {
        if answer.len() >= GRAFT_ANSWER_MAX {
            break;
        }
        if !seen.insert(endpoint.as_str()) {
            continue;
        }
        let Some(tuple) = tuples.get(endpoint, now).filter(|t| can_take(t)) else {
            continue;
        };
        bytes += answer_bytes(&tuple);
        if bytes > max_bytes {
            break;
        }
        answer.push(tuple);
    }
    answer
}

/// Endpoints for one GRAFT of at most `max_message` bytes and
/// [`GRAFT_ANSWER_MAX`] endpoints; the rest are left in `endpoints`.
pub fn graft_batch(endpoints: &mut Vec<String>, max_message: usize) -> Vec<String> {
    // Signature, id, version, count; then 4 + length each.
    let mut size = 2 + 1 + 1 + 4;
    let mut n = 0;
    for endpoint in endpoints.iter() {
        size += 4 + endpoint.len();
        if (size > max_message || n >= GRAFT_ANSWER_MAX) && n > 0 {
            break;
        }
        n += 1;
    }
    endpoints.drain(..n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_graft_is_answered_once_per_tuple_and_within_its_bounds() {
        use crate::tuples::Offer;
        let now = Instant::now();
        let mut table = Tuples::default();
        let big = "s".repeat(60_000);
        for i in 0..2000 {
            let endpoint = format!("tcp://e{i}");
            let service = if i < 10 { big.as_str() } else { "svc" };
            let offer = Offer {
                stamp: Some(Stamp {
                    version: 1,
                    origin: 3,
                }),
                ..Offer::unversioned(&endpoint, service)
            };
            table.offer(&offer, usize::MAX, now);
        }
        // The same endpoint 5,000 times: one answer.
        let same = vec!["tcp://e500".to_owned(); 5000];
        assert_eq!(
            graft_answer(&same, &table, now, GRAFT_ANSWER_BYTES, |_| true).len(),
            1
        );
        // 2,000 small ones: at most GRAFT_ANSWER_MAX.
        let all: Vec<String> = (10..2000).map(|i| format!("tcp://e{i}")).collect();
        assert_eq!(
            graft_answer(&all, &table, now, GRAFT_ANSWER_BYTES, |_| true).len(),
            GRAFT_ANSWER_MAX
        );
        // Ten of 60 KB: at most GRAFT_ANSWER_BYTES.
        let big: Vec<String> = (0..10).map(|i| format!("tcp://e{i}")).collect();
        let answer = graft_answer(&big, &table, now, GRAFT_ANSWER_BYTES, |_| true);
        let bytes: usize = answer.iter().map(|t| t.service.len()).sum();
        assert!(
            answer.len() < 10 && bytes <= GRAFT_ANSWER_BYTES,
            "{} tuples",
            answer.len()
        );
        // What the peer cannot take, and unknown endpoints, are left out.
        let unknown = vec!["tcp://nowhere".to_owned()];
        assert!(graft_answer(&unknown, &table, now, GRAFT_ANSWER_BYTES, |_| true).is_empty());
        assert!(graft_answer(&all, &table, now, GRAFT_ANSWER_BYTES, |_| false).is_empty());
    }

    fn tuple(endpoint: &str, version: u64) -> Tuple {
        Tuple {
            endpoint: Arc::from(endpoint),
            service: Arc::from("s"),
            stamp: Some(Stamp { version, origin: 9 }),
            removed: false,
            contested: false,
            expired: false,
            lease: None,
        }
    }

    #[test]
    fn ids_pack_in_batches_that_fit_a_message_and_unpack() {
        let mut queue = LazyQueue::default();
        for i in 0..100 {
            queue.push(&tuple(&format!("tcp://host:{i}"), i));
        }
        let mut all = Vec::new();
        while let Some(records) = queue.take(300) {
            assert!(records.len() + IHAVE_OVERHEAD <= 300);
            all.extend(unpack(&records).expect("well formed"));
        }
        assert_eq!(all.len(), 100);
        assert_eq!(all[42].0, "tcp://host:42");
        assert_eq!(
            all[42].1,
            Stamp {
                version: 42,
                origin: 9
            }
        );
        // Hostile records: cut anywhere, or not UTF-8, are refused.
        let mut queue = LazyQueue::default();
        queue.push(&tuple("tcp://x:1", 1));
        let records = queue.take(1000).unwrap();
        for cut in 1..records.len() {
            assert_eq!(unpack(&records[..cut]), None, "cut {cut}");
        }
        assert_eq!(unpack(&[1, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]), None);
        assert_eq!(unpack(&[]), Some(Vec::new()));
    }

    #[test]
    fn one_link_fills_only_its_share_of_missing_tuples_and_takes_it_along() {
        let now = Instant::now();
        let tuples = Tuples::default();
        let mut missing = Missing::default();
        let ids = |prefix: &str, n: usize| -> Vec<(String, Stamp)> {
            (0..n)
                .map(|i| {
                    let stamp = Stamp {
                        version: 1,
                        origin: 1,
                    };
                    (format!("{prefix}{i}"), stamp)
                })
                .collect()
        };
        let (junk, honest) = (Link::Remote(1), Link::Remote(2));
        missing.heard(ids("junk", 2 * MAX_MISSING_PER_LINK), junk, &tuples, now);
        assert_eq!(missing.len(), MAX_MISSING_PER_LINK);
        // Another link still gets its own share; one both announce counts
        // for the first.
        missing.heard(ids("real", 10), honest, &tuples, now);
        missing.heard(ids("junk", 5), honest, &tuples, now);
        assert_eq!(missing.announced_by(honest), 10);
        assert_eq!(missing.len(), MAX_MISSING_PER_LINK + 10);
        // The junk goes with its link; the tuples the honest link also
        // announced stay, now its own.
        missing.forget_link(junk);
        assert_eq!(missing.announced_by(junk), 0);
        assert_eq!(missing.len(), 15);
        assert_eq!(missing.announced_by(honest), 15);
        // Received or given up, the share is returned.
        missing.received(
            "real0",
            Some(Stamp {
                version: 1,
                origin: 1,
            }),
            now,
        );
        assert_eq!(missing.announced_by(honest), 14);
        missing.forget_link(honest);
        assert!(missing.is_empty());
    }

    #[test]
    fn missing_tuples_are_asked_for_once_due_unless_they_came() {
        let now = Instant::now();
        let tuples = Tuples::default();
        let mut missing = Missing::default();
        let link = Link::Remote(3);
        let ids = vec![
            (
                "a".to_string(),
                Stamp {
                    version: 1,
                    origin: 1,
                },
            ),
            (
                "b".to_string(),
                Stamp {
                    version: 1,
                    origin: 1,
                },
            ),
        ];
        missing.heard(ids, link, &tuples, now);
        assert_eq!(missing.len(), 2);
        missing.received(
            "a",
            Some(Stamp {
                version: 1,
                origin: 1,
            }),
            now,
        );
        assert!(missing.due(&tuples, now).is_empty(), "not yet");
        assert_eq!(
            missing.wait(),
            GRAFT_AFTER,
            "a tuple that came at once adds no lag"
        );
        let due = missing.due(&tuples, now + GRAFT_AFTER);
        assert_eq!(due, vec![(link, vec!["b".to_string()])]);
        // Not answered: asked again later, then given up.
        let mut at = now + GRAFT_AFTER;
        let mut asked = 1;
        while !missing.is_empty() {
            at += GRAFT_AFTER * 512;
            asked += missing.due(&tuples, at).len();
        }
        assert_eq!(asked, MAX_TRIES as usize);
        let mut endpoints: Vec<String> = (0..100).map(|i| format!("tcp://h:{i}")).collect();
        let first = graft_batch(&mut endpoints, 200);
        assert!(!first.is_empty() && first.len() < 100);
        assert_eq!(first.len() + endpoints.len(), 100);
    }
}
