//! The tuple table of a node: endpoint → service, with each tuple's stamp
//! (origin and version), lease and whether it was removed.
//!
//! Which value wins (docs/zgossip.md, "Tuple lifecycle"): a versioned tuple (from a
//! zproto-rs node) with the higher stamp, version first and origin to break
//! ties, so that every node keeps the same value whatever order updates
//! arrive in; an unversioned one (from a CZMQ node) ranks below every
//! versioned one, and among unversioned ones the latest wins, as in CZMQ.
//! A removed tuple stays as a *tombstone* with its stamp, so that a stale
//! copy cannot bring it back, until its keep time ends.
//!
//! Tuples keep their position from when their endpoint arrived, so that a
//! replay (to a peer that said HELLO, or to a server we connect to) is a
//! cursor, a position in that order, rather than a copy of the table: a
//! peer that asks for a million tuples costs one number until they are sent.
//! A tuple whose service changes keeps its position. An entry that ends
//! (an expired tombstone) leaves a hole that the next new endpoint fills; a
//! tuple new to the node is forwarded to every peer anyway, so a replay
//! whose cursor has passed the hole loses nothing.
//!
//! Liveness is per origin (docs/zgossip.md, "Liveness"): a node's heartbeat
//! ([`Tuples::alive`]) keeps every live leased tuple it wrote alive for
//! the heartbeat's lease, so that an owner sends one small message per
//! period, not one per tuple. A tuple expires at the later of its own
//! lease and its origin's last heartbeat plus that heartbeat's lease. The
//! table keeps this for origins it holds entries of, and no other, so a
//! peer inventing origins costs nothing. A tuple that expired keeps its
//! stamp in a tombstone marked expired, and a live copy with the same
//! stamp brings it back (with the lease its sender had left): it expired
//! here only because its origin's heartbeats were late, and no copy lives
//! longer than the sender's view of them.
//!
//! Tuple strings are interned as numbered symbols ([`Interner`]): a node
//! stores two 4-byte symbols per tuple, and nodes that share an interner (a
//! swarm of thousands in one process) hold one copy of each endpoint and
//! service. The driver chooses, and owns it: a node alone has one of its
//! own; a mesh, a swarm, or the nodes an application puts on one reactor
//! share one; each world of the simulator has its own, so that runs on
//! other threads share nothing. No interner is global.
//! Symbols are counted, and a string nobody holds any more is freed, so a
//! peer that keeps replacing a service does not leave garbage behind.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::segments::Segments;

type FastHash = foldhash::fast::RandomState;

/// A tuple string's number in the process-wide table.
type Symbol = u32;

#[derive(Default)]
struct Symbols {
    numbers: HashMap<Arc<str>, Symbol, FastHash>,
    /// By symbol: the string and how many tuple fields hold it (0: free).
    strings: Vec<(Arc<str>, u32)>,
    free: Vec<Symbol>,
    /// Origins of entries, numbered as strings are (from 1; 0 stands for
    /// none, an unversioned entry), so that an entry holds 4 bytes for its
    /// origin, not 8.
    origin_numbers: HashMap<u64, OriginNumber, FastHash>,
    /// By number less one: the origin and how many entries hold it (0:
    /// free).
    origins: Vec<(u64, u32)>,
    free_origins: Vec<OriginNumber>,
}

/// An origin's number in the process-wide table (0: none).
type OriginNumber = u32;

/// The table of tuple strings that the tuple tables number their endpoints and
/// services in; cloning it shares it.
#[derive(Clone, Default)]
pub struct Interner(Arc<Mutex<Symbols>>);

impl std::fmt::Debug for Interner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interner")
            .field("strings", &(self.lock().numbers.len()))
            .finish()
    }
}

impl Interner {
    /// A new interner, shared with nobody yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Symbols> {
        // A panic elsewhere cannot leave the table inconsistent: use it anyway.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Symbols {
    fn find(&self, text: &str) -> Option<Symbol> {
        self.numbers.get(text).copied()
    }

    /// The symbol of `text`, holding one more reference to it.
    fn hold(&mut self, text: &str) -> Symbol {
        let found = self.find(text);
        self.hold_found(found, text)
    }

    /// [`Symbols::hold`], when `found` is what `find(text)` returned.
    fn hold_found(&mut self, found: Option<Symbol>, text: &str) -> Symbol {
        if let Some(symbol) = found {
            self.retain(symbol);
            return symbol;
        }
        let shared: Arc<str> = Arc::from(text);
        let symbol = match self.free.pop() {
            Some(symbol) => {
                self.strings[symbol as usize] = (shared.clone(), 1);
                symbol
            }
            None => {
                // Four billion live strings would not fit in memory first.
                let symbol = Symbol::try_from(self.strings.len()).unwrap_or(Symbol::MAX);
                self.strings.push((shared.clone(), 1));
                symbol
            }
        };
        self.numbers.insert(shared, symbol);
        symbol
    }

    fn retain(&mut self, symbol: Symbol) {
        if let Some((_, count)) = self.strings.get_mut(symbol as usize) {
            *count += 1;
        }
    }

    fn release(&mut self, symbol: Symbol) {
        let Some((text, count)) = self.strings.get_mut(symbol as usize) else {
            return;
        };
        *count = count.saturating_sub(1);
        if *count == 0 {
            let text = std::mem::replace(text, Arc::from(""));
            self.numbers.remove(&text);
            self.free.push(symbol);
        }
    }

    /// The number of `origin`, if an entry holds it.
    fn find_origin(&self, origin: u64) -> Option<OriginNumber> {
        self.origin_numbers.get(&origin).copied()
    }

    /// The number of `origin` (0 for 0), holding one more reference to it.
    fn hold_origin(&mut self, origin: u64) -> OriginNumber {
        if origin == 0 {
            return 0;
        }
        if let Some(number) = self.find_origin(origin) {
            self.retain_origin(number);
            return number;
        }
        let number = match self.free_origins.pop() {
            Some(number) => {
                self.origins[number as usize - 1] = (origin, 1);
                number
            }
            None => {
                self.origins.push((origin, 1));
                // Four billion origins would not fit in memory first.
                OriginNumber::try_from(self.origins.len()).unwrap_or(OriginNumber::MAX)
            }
        };
        self.origin_numbers.insert(origin, number);
        number
    }

    fn retain_origin(&mut self, number: OriginNumber) {
        if let Some((_, count)) = self.origins.get_mut((number as usize).wrapping_sub(1)) {
            *count += 1;
        }
    }

    fn release_origin(&mut self, number: OriginNumber) {
        let Some((origin, count)) = self.origins.get_mut((number as usize).wrapping_sub(1)) else {
            return;
        };
        *count = count.saturating_sub(1);
        if *count == 0 {
            self.origin_numbers.remove(origin);
            self.free_origins.push(number);
        }
    }

    /// The origin numbered `number` (0 for 0).
    fn origin(&self, number: OriginNumber) -> u64 {
        self.origins
            .get((number as usize).wrapping_sub(1))
            .map_or(0, |&(origin, _)| origin)
    }

    fn string(&self, symbol: Symbol) -> Arc<str> {
        self.strings
            .get(symbol as usize)
            .map(|(s, _)| s.clone())
            .unwrap_or_else(|| Arc::from(""))
    }
}

/// A versioned tuple's stamp: the node that wrote it (`origin`, never 0)
/// and when (`version`, a hybrid logical clock in milliseconds: see
/// [`crate::clock`]). The higher stamp wins: version first, origin to break
/// ties (the field order makes `Ord` so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp {
    /// When the write was made: the writer's clock in milliseconds since
    /// 1970, or one above the version it replaced, whichever is higher.
    pub version: u64,
    /// The writing node's random id.
    pub origin: u64,
}

/// A tuple as the table holds it, copied out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuple {
    /// Endpoint (the key).
    pub endpoint: Arc<str>,
    /// Service (the value); for a tombstone, the value it removed.
    pub service: Arc<str>,
    /// `None` for an unversioned tuple (from a CZMQ node).
    pub stamp: Option<Stamp>,
    /// A tombstone: the tuple was removed.
    pub removed: bool,
    /// Written by an owner that answers a competing write (see docs/zgossip.md).
    pub contested: bool,
    /// A tombstone left by expiry here: never sent, since every node
    /// expires a tuple on its own, and a live copy with its stamp brings
    /// it back (module docs).
    pub expired: bool,
    /// Time left before it expires (a tombstone: before it is forgotten);
    /// `None`: never.
    pub lease: Option<Duration>,
}

/// An update offered to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offer<'a> {
    /// Endpoint (the key).
    pub endpoint: &'a str,
    /// Service (the value).
    pub service: &'a str,
    /// `None`: unversioned.
    pub stamp: Option<Stamp>,
    /// How long it lives from now without a renewal; `None`: forever.
    pub lease: Option<Duration>,
    /// A tombstone.
    pub removed: bool,
    /// Written by an owner that answers a competing write.
    pub contested: bool,
    /// It came by a replay (a synchronisation, an answer to GRAFT), not
    /// pushed as news: kept with the entry, for Plumtree's loop detection.
    pub replay: bool,
}

impl<'a> Offer<'a> {
    /// An unversioned tuple that never expires (CZMQ's kind).
    pub fn unversioned(endpoint: &'a str, service: &'a str) -> Self {
        Self {
            endpoint,
            service,
            ..Self::default()
        }
    }
}

/// What [`Tuples::offer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// A live tuple new to the node (a new endpoint, or one that had been
    /// removed), at this position.
    New(usize),
    /// A new service for a live tuple.
    Changed(usize),
    /// The same service with a higher stamp (a renewal): passed on, not
    /// delivered again.
    Renewed(usize),
    /// A live tuple removed by a tombstone that outranks it.
    Removed(usize),
    /// A tombstone for an endpoint not live here: kept, so that a stale
    /// copy cannot come back, and passed on.
    Tombstone(usize),
    /// Known already with this stamp (or, unversioned, this service): the
    /// flood stops here.
    Duplicate,
    /// Ranks below what the node holds: dropped.
    Stale,
    /// Origin 0: refused. (A version too far ahead of the node's clock is
    /// refused before it reaches the table: [`crate::clock::MAX_AHEAD`].)
    Implausible,
    /// A new endpoint, but the table holds its limit already.
    Full,
}

impl Accepted {
    /// The position of a change to pass on to peers.
    pub fn position(self) -> Option<usize> {
        match self {
            Accepted::New(i)
            | Accepted::Changed(i)
            | Accepted::Renewed(i)
            | Accepted::Removed(i)
            | Accepted::Tombstone(i) => Some(i),
            _ => None,
        }
    }
}

/// `Entry::state` bits: a tombstone; written contested; came by a replay;
/// a tombstone left by expiry; the rest is the expiry in ticks since the
/// table's epoch (0: never).
const REMOVED: u32 = 1 << 31;
const CONTESTED: u32 = 1 << 30;
/// The value held came by a replay, not pushed (see [`Offer::replay`]).
const REPLAYED: u32 = 1 << 29;
/// A tombstone left by expiry, with the expired tuple's stamp: a live copy
/// with that stamp brings the tuple back (module docs).
const EXPIRED: u32 = 1 << 28;
const EXPIRY: u32 = EXPIRED - 1;

/// One tick of expiry time. 28 bits of them span 31 days; the epoch moves
/// forward before they run out.
const TICK: Duration = Duration::from_millis(10);

/// Stale heap entries allowed beyond twice the table's size.
const SPARE_EXPIRIES: usize = 64;

/// An endpoint symbol that marks a hole (a forgotten entry).
const HOLE: Symbol = Symbol::MAX;

/// 24 bytes per tuple (a table is mostly entries: with 8-byte origins
/// they took 32, 8 MB more for 1,000 nodes of 1,000 tuples).
#[derive(Debug, Clone, Copy)]
struct Entry {
    endpoint: Symbol,
    service: Symbol,
    state: u32,
    version: u64,
    /// The writer's number in the interner (0: unversioned).
    origin: OriginNumber,
}

impl Entry {
    fn stamp(&self, symbols: &Symbols) -> Option<Stamp> {
        (self.origin != 0).then(|| Stamp {
            version: self.version,
            origin: symbols.origin(self.origin),
        })
    }

    fn removed(&self) -> bool {
        self.state & REMOVED != 0
    }

    fn expiry(&self) -> u32 {
        self.state & EXPIRY
    }

    fn is_hole(&self) -> bool {
        self.endpoint == HOLE
    }
}

/// What the table knows of one origin's liveness: 16 bytes.
#[derive(Debug, Clone, Copy)]
struct Life {
    /// Its last heartbeat's revision (0: none heard).
    revision: u64,
    /// Its live leased tuples expire no earlier than this, in ticks (0:
    /// no heartbeat heard).
    until: u32,
    /// Leased entries (live or tombstones) it wrote: the record goes
    /// with the last of them.
    entries: u32,
}

/// The origin whose liveness an entry counts toward: its writer's, if it
/// has a lease (a tuple that lives forever needs no heartbeat); 0: none.
fn counted_origin(e: &Entry) -> OriginNumber {
    if e.expiry() == 0 {
        0
    } else {
        e.origin
    }
}

/// What [`Tuples::alive`] made of a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Newer than the origin's last one: its tuples live on; pass it on.
    Renewed,
    /// The origin's last one again (a copy by another path): dropped.
    Stale,
    /// Older than the origin's last one, which lives this much longer
    /// here: the sender is behind, and may be the only path to the origin
    /// (docs/zgossip.md, "Liveness").
    Older {
        /// The origin's last heartbeat's revision.
        revision: u64,
        /// What is left of its lifetime here.
        left: Duration,
    },
    /// The table holds nothing the origin wrote: dropped.
    Unknown,
}

/// Every tuple a node knows, tombstones included, by position.
///
/// Per tuple: a 32-byte entry and a 4-byte position in a hash table found
/// by the endpoint's symbol (about 38 bytes with the tables' slack); per
/// origin of a leased entry, 24 bytes of liveness (16 and the key) and the
/// hash table's slack.
pub struct Tuples {
    /// Where the entries' strings are.
    symbols: Interner,
    entries: Segments<Entry>,
    /// Positions in `entries`, hashed by their endpoint symbol.
    positions: hashbrown::HashTable<u32>,
    /// Holes in `entries`, for new endpoints.
    holes: Vec<u32>,
    /// Live tuples (neither holes nor tombstones).
    live: usize,
    /// Expiry ticks count from here.
    epoch: Option<Instant>,
    /// Expiries in ticks with their positions, earliest first: at least
    /// one at or before each leased entry's expiry. A write that gives an
    /// entry an expiry, or an earlier one, pushes one; a later one (a
    /// renewal) pushes nothing: the old one, when it comes up, is pushed
    /// again at the entry's current expiry. So there are about as many as
    /// leased entries (8 bytes each), and never over twice as many plus
    /// [`SPARE_EXPIRIES`]: past that, the heap is rebuilt from the table.
    expiries: BinaryHeap<Reverse<(u32, u32)>>,
    /// Liveness of the origins of entries, by origin number (the entries
    /// hold the number for as long as the record lives).
    lives: HashMap<OriginNumber, Life, FastHash>,
    /// Positions of the tuples that expired here since their origin's
    /// last heartbeat, by origin (only origins that have some): what its
    /// next heartbeat asks for costs what expired, never a scan of the
    /// table. At most twice the origin's entries (then cleaned).
    expired_since: HashMap<OriginNumber, Vec<u32>, FastHash>,
    /// How far past an entry's own expiry its origin's heartbeats are
    /// vouched for at a time, in ticks (0: without bound): no further is
    /// written into the entry by the expiry sweep, nor passed on as its
    /// lease. A heartbeat that shortens its origin's life (the owner's
    /// answer to a forged one that claimed a long life) so takes effect
    /// within this, everywhere, instead of the forged life living on in
    /// the copies made while it was believed.
    horizon: u64,
}

impl Default for Tuples {
    /// An empty table over an interner of its own.
    fn default() -> Self {
        Self::with_interner(Interner::new())
    }
}

impl Tuples {
    /// An empty table whose strings go to `symbols`.
    pub fn with_interner(symbols: Interner) -> Self {
        Self {
            symbols,
            entries: Segments::new(),
            positions: hashbrown::HashTable::new(),
            holes: Vec::new(),
            live: 0,
            epoch: None,
            expiries: BinaryHeap::new(),
            lives: HashMap::default(),
            expired_since: HashMap::default(),
            horizon: 0,
        }
    }

    /// Vouch for an origin's heartbeats at most `horizon` at a time (the
    /// node's own lease): see the field. `None`: without bound.
    pub fn set_heartbeat_horizon(&mut self, horizon: Option<Duration>) {
        self.horizon = horizon.map_or(0, |h| (h.as_millis() / TICK.as_millis()).max(1) as u64);
    }

    /// The interner its strings are in.
    pub fn interner(&self) -> &Interner {
        &self.symbols
    }
}

impl std::fmt::Debug for Tuples {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tuples")
            .field("live", &self.live)
            .field("entries", &self.entries.len())
            .finish()
    }
}

/// A symbol's hash: symbols are small dense numbers, which a multiply
/// spreads over the high bits hashbrown looks at.
fn hash(symbol: Symbol) -> u64 {
    u64::from(symbol).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl Clone for Tuples {
    fn clone(&self) -> Self {
        let mut symbols = self.symbols.lock();
        for e in self.entries.iter().filter(|e| !e.is_hole()) {
            symbols.retain(e.endpoint);
            symbols.retain(e.service);
            symbols.retain_origin(e.origin);
        }
        drop(symbols);
        Self {
            symbols: self.symbols.clone(),
            entries: self.entries.clone(),
            positions: self.positions.clone(),
            holes: self.holes.clone(),
            live: self.live,
            epoch: self.epoch,
            expiries: self.expiries.clone(),
            lives: self.lives.clone(),
            expired_since: self.expired_since.clone(),
            horizon: self.horizon,
        }
    }
}

impl Drop for Tuples {
    fn drop(&mut self) {
        if self.entries.is_empty() {
            return;
        }
        let mut symbols = self.symbols.lock();
        for e in self.entries.iter().filter(|e| !e.is_hole()) {
            symbols.release(e.endpoint);
            symbols.release(e.service);
            symbols.release_origin(e.origin);
        }
    }
}

/// How `offer` ranks an update against what the table holds.
enum Rank {
    Below,
    Same,
    Above,
}

impl Tuples {
    fn position_of(&self, endpoint: Symbol) -> Option<usize> {
        let entries = &self.entries;
        self.positions
            .find(hash(endpoint), |&p| {
                entries[p as usize].endpoint == endpoint
            })
            .map(|&p| p as usize)
    }

    /// Ticks from the epoch to `at`, never 0.
    fn ticks(&self, at: Instant) -> u64 {
        let epoch = self.epoch.unwrap_or(at);
        (at.saturating_duration_since(epoch).as_millis() / TICK.as_millis()) as u64 + 1
    }

    /// The expiry of something that lives `lease` from `now`, in ticks.
    fn expiry_for(&mut self, now: Instant, lease: Option<Duration>) -> u32 {
        let Some(lease) = lease else {
            return 0;
        };
        let epoch = *self.epoch.get_or_insert(now);
        let at = now
            .checked_add(lease)
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
        if self.ticks(at) > u64::from(EXPIRY) {
            // The ticks run out: count from now on instead.
            let shift = self.ticks(now) - 1;
            for e in self.entries.iter_mut().filter(|e| e.expiry() != 0) {
                let expiry = u64::from(e.expiry()).saturating_sub(shift).max(1) as u32;
                e.state = (e.state & !EXPIRY) | expiry;
            }
            for life in self.lives.values_mut().filter(|l| l.until != 0) {
                life.until = u64::from(life.until).saturating_sub(shift).max(1) as u32;
            }
            self.epoch = Some(epoch + TICK * shift as u32);
            self.expiries = self
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| !e.is_hole() && e.expiry() != 0)
                .map(|(p, e)| Reverse((e.expiry(), p as u32)))
                .collect();
        }
        // A lease past the ticks' span ends there (over 124 days).
        self.ticks(at).min(u64::from(EXPIRY)) as u32
    }

    /// Time left on an expiry, at `now`; at least a millisecond, since 0
    /// means "never" on the wire.
    fn remaining(&self, expiry: u32, now: Instant) -> Option<Duration> {
        if expiry == 0 {
            return None;
        }
        let epoch = self.epoch.unwrap_or(now);
        let at = epoch + TICK * (expiry - 1);
        Some(
            at.saturating_duration_since(now)
                .max(Duration::from_millis(1)),
        )
    }

    /// Store an update if it outranks what the table holds (module docs),
    /// and the table has room for a new endpoint (`limit` entries,
    /// tombstones included).
    pub fn offer(&mut self, offer: &Offer<'_>, limit: usize, now: Instant) -> Accepted {
        if offer.stamp.is_some_and(|stamp| stamp.origin == 0) {
            return Accepted::Implausible;
        }
        let mut symbols = self.symbols.lock();
        let endpoint_symbol = symbols.find(offer.endpoint);
        let Some(p) = endpoint_symbol.and_then(|e| self.position_of(e)) else {
            if offer.stamp.is_none() && offer.removed {
                return Accepted::Stale;
            }
            let p = match self.holes.last() {
                Some(&hole) => hole as usize,
                None => self.entries.len(),
            };
            if self.entries.len() - self.holes.len() >= limit || u32::try_from(p).is_err() {
                return Accepted::Full;
            }
            self.holes.pop();
            let endpoint = symbols.hold_found(endpoint_symbol, offer.endpoint);
            let service = symbols.hold(offer.service);
            let origin = symbols.hold_origin(offer.stamp.map_or(0, |s| s.origin));
            drop(symbols);
            let entry = Entry {
                endpoint,
                service,
                version: 0,
                state: 0,
                origin: 0,
            };
            if p == self.entries.len() {
                self.entries.push(entry);
            } else {
                self.entries[p] = entry;
            }
            let entries = &self.entries;
            self.positions
                .insert_unique(hash(endpoint), p as u32, |&q| {
                    hash(entries[q as usize].endpoint)
                });
            self.write(p, offer, origin, now);
            if offer.removed {
                return Accepted::Tombstone(p);
            }
            self.live += 1;
            return Accepted::New(p);
        };
        let held = self.entries[p];
        let same_service = symbols.find(offer.service) == Some(held.service);
        let held_stamp = held.stamp(&symbols);
        let rank = match (offer.stamp, held_stamp) {
            // Unversioned against unversioned: CZMQ's rule, latest wins.
            (None, None) if same_service => Rank::Same,
            (None, None) => Rank::Above,
            // Unversioned ranks below every versioned tuple.
            (None, Some(_)) if same_service && !held.removed() => return Accepted::Duplicate,
            (None, Some(_)) => return Accepted::Stale,
            (Some(_), None) => Rank::Above,
            (Some(new), Some(old)) => match new.cmp(&old) {
                std::cmp::Ordering::Less => Rank::Below,
                std::cmp::Ordering::Equal => Rank::Same,
                std::cmp::Ordering::Greater => Rank::Above,
            },
        };
        // A live copy of a tuple that expired here, with its stamp: it
        // comes back (module docs). Another origin's live write, even one
        // ranked below, replaces it: the expired one's writer went silent,
        // and the other writer alone may still hold the endpoint.
        let revived = held.state & EXPIRED != 0 && offer.stamp.is_some() && !offer.removed;
        let other_writer = revived
            && offer
                .stamp
                .zip(held_stamp)
                .is_some_and(|(new, old)| new.origin != old.origin);
        match rank {
            Rank::Below if other_writer => {}
            Rank::Below => return Accepted::Stale,
            Rank::Same if revived => {}
            Rank::Same => {
                if offer.stamp.is_none() && offer.lease.is_some() {
                    // An unversioned tuple heard again lives on (neither
                    // has an origin).
                    drop(symbols);
                    self.write(p, offer, 0, now);
                } else if let (Some(lease), false, false) =
                    (offer.lease, offer.removed, held.removed())
                {
                    // A copy heard again lives at least as long as its
                    // sender has it live (it heard the origin's heartbeats
                    // later than we did, say): never longer.
                    drop(symbols);
                    self.extend(p, lease, now);
                }
                return Accepted::Duplicate;
            }
            Rank::Above => {}
        }
        if !same_service {
            let service = symbols.hold(offer.service);
            symbols.release(held.service);
            self.entries[p].service = service;
        }
        let origin = symbols.hold_origin(offer.stamp.map_or(0, |s| s.origin));
        symbols.release_origin(held.origin);
        drop(symbols);
        self.write(p, offer, origin, now);
        match (held.removed(), offer.removed) {
            (false, true) => {
                self.live -= 1;
                Accepted::Removed(p)
            }
            (true, true) => Accepted::Tombstone(p),
            (true, false) => {
                self.live += 1;
                Accepted::New(p)
            }
            (false, false) if same_service => Accepted::Renewed(p),
            (false, false) => Accepted::Changed(p),
        }
    }

    /// Set an entry's stamp, flags and expiry from an offer, whose origin
    /// is `origin` in the interner (held for the entry by the caller).
    fn write(&mut self, p: usize, offer: &Offer<'_>, origin: OriginNumber, now: Instant) {
        let expiry = self.expiry_for(now, offer.lease);
        let before = self.entries[p].expiry();
        if expiry != 0 && (before == 0 || expiry < before) {
            self.schedule(expiry, p);
        }
        let version = offer.stamp.map_or(0, |s| s.version);
        let before = counted_origin(&self.entries[p]);
        let after = if expiry == 0 { 0 } else { origin };
        if before != after {
            self.count_origin(before, false);
            self.count_origin(after, true);
        }
        let e = &mut self.entries[p];
        e.version = version;
        e.origin = origin;
        e.state = expiry
            | if offer.removed { REMOVED } else { 0 }
            | if offer.contested { CONTESTED } else { 0 }
            | if offer.replay { REPLAYED } else { 0 };
    }

    /// A live leased entry lives at least `lease` from `now`.
    fn extend(&mut self, p: usize, lease: Duration, now: Instant) {
        if self.entries[p].expiry() == 0 {
            return;
        }
        let expiry = self.expiry_for(now, Some(lease));
        let e = &mut self.entries[p];
        if expiry > e.expiry() {
            // Later: the heap entry there re-schedules it when it comes up.
            e.state = (e.state & !EXPIRY) | expiry;
        }
    }

    /// One entry more (`up`) or fewer written by `origin` (0: none).
    fn count_origin(&mut self, origin: OriginNumber, up: bool) {
        if origin == 0 {
            return;
        }
        if up {
            self.lives
                .entry(origin)
                .or_insert(Life {
                    revision: 0,
                    until: 0,
                    entries: 0,
                })
                .entries += 1;
        } else if let Some(life) = self.lives.get_mut(&origin) {
            life.entries = life.entries.saturating_sub(1);
            if life.entries == 0 {
                self.lives.remove(&origin);
                self.expired_since.remove(&origin);
            }
        }
    }

    /// A heartbeat from `origin`, of `revision` (its writer's clock): if
    /// it is newer than the last one, every live leased tuple `origin`
    /// wrote lives at least `lease` from `now`. Only for origins the table
    /// holds entries of (module docs). The ids of tuples of `origin` that
    /// expired here since its last heartbeat (it was paused, or its
    /// heartbeats were held up) go to `expired`: the origin lives, so a
    /// peer may hold them live (or removed since), and the node asks.
    pub fn alive(
        &mut self,
        origin: u64,
        revision: u64,
        lease: Duration,
        now: Instant,
        expired: &mut Vec<(String, Stamp)>,
    ) -> Liveness {
        let Some(number) = self.symbols.lock().find_origin(origin) else {
            return Liveness::Unknown;
        };
        match self.lives.get(&number) {
            None => return Liveness::Unknown,
            Some(life) if life.revision == revision => return Liveness::Stale,
            Some(life) if life.revision > revision => {
                return Liveness::Older {
                    revision: life.revision,
                    left: self.remaining(life.until, now).unwrap_or_default(),
                }
            }
            Some(_) => {}
        }
        let until = self.expiry_for(now, Some(lease));
        let Some(life) = self.lives.get_mut(&number) else {
            return Liveness::Unknown;
        };
        life.revision = revision;
        // The newest heartbeat's lifetime holds, even if shorter: an owner
        // answering a forgery that claimed a long lease ends that lease.
        life.until = until;
        if let Some(mut positions) = self.expired_since.remove(&number) {
            positions.sort_unstable();
            positions.dedup();
            let symbols = self.symbols.lock();
            for p in positions {
                let e = self.entries[p as usize];
                // Still the tombstone its expiry left (not rewritten since).
                if e.origin == number && e.state & EXPIRED != 0 && !e.is_hole() {
                    if let Some(stamp) = e.stamp(&symbols) {
                        expired.push((symbols.string(e.endpoint).to_string(), stamp));
                    }
                }
            }
        }
        Liveness::Renewed
    }

    /// Every origin's last heartbeat heard, as `(origin, revision, time
    /// left)`, for those whose liveness has not run out at `now`: what a
    /// synchronisation passes on, so that a peer that was cut off learns
    /// at once who was heard meanwhile, not a heartbeat period later.
    pub fn liveness(&self, now: Instant) -> Vec<(u64, u64, Duration)> {
        let Some(epoch) = self.epoch else {
            return Vec::new();
        };
        let symbols = self.symbols.lock();
        let mut liveness: Vec<_> = self
            .lives
            .iter()
            .filter(|(_, life)| life.revision != 0 && life.until != 0)
            .filter_map(|(&number, life)| {
                let until = epoch + TICK * (life.until - 1);
                let left = until.checked_duration_since(now).filter(|d| !d.is_zero())?;
                Some((symbols.origin(number), life.revision, left))
            })
            .filter(|&(origin, _, _)| origin != 0)
            .collect();
        // In origin order, whatever the map's: a seed replays the same run.
        liveness.sort_unstable();
        liveness
    }

    /// The revision of `origin`'s last heartbeat heard (0: none), if the
    /// table holds entries it wrote.
    pub fn heartbeat_revision(&self, origin: u64) -> Option<u64> {
        let number = self.symbols.lock().find_origin(origin)?;
        self.lives.get(&number).map(|life| life.revision)
    }

    /// Origins the table holds liveness of.
    pub fn origins(&self) -> usize {
        self.lives.len()
    }

    /// The tuple at `p`, of `origin`, expired here: its origin's next
    /// heartbeat asks for it.
    fn note_expired(&mut self, origin: OriginNumber, p: usize) {
        let Some(entries) = self.lives.get(&origin).map(|l| l.entries as usize) else {
            return;
        };
        let positions = self.expired_since.entry(origin).or_default();
        positions.push(p as u32);
        if positions.len() > 2 * entries + SPARE_EXPIRIES {
            // Written and expired again and again without a heartbeat:
            // keep what is still an expired tombstone of it, once.
            let table = &self.entries;
            positions.sort_unstable();
            positions.dedup();
            positions.retain(|&q| {
                let e = table[q as usize];
                e.origin == origin && e.state & EXPIRED != 0 && !e.is_hole()
            });
        }
    }

    /// An entry's expiry, its origin's heartbeats counted (live leased
    /// tuples only).
    fn effective_expiry(&self, e: &Entry) -> u32 {
        let expiry = e.expiry();
        if expiry == 0 || e.removed() || e.origin == 0 {
            return expiry;
        }
        self.lives
            .get(&e.origin)
            .map_or(expiry, |life| expiry.max(life.until))
    }

    /// [`Tuples::effective_expiry`], its origin's heartbeats counted no
    /// further than the horizon past tick `at` (nor its own expiry cut).
    fn vouched_expiry(&self, e: &Entry, at: u64) -> u32 {
        let effective = self.effective_expiry(e);
        if self.horizon == 0 || effective <= e.expiry() {
            return effective;
        }
        let bound = at.saturating_add(self.horizon).min(u64::from(EXPIRY)) as u32;
        effective.min(bound.max(e.expiry()))
    }

    /// Put an expiry on the heap, rebuilding it if stale ones pile up.
    fn schedule(&mut self, expiry: u32, p: usize) {
        self.expiries.push(Reverse((expiry, p as u32)));
        if self.expiries.len() > 2 * self.entries.len() + SPARE_EXPIRIES {
            self.expiries = self
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| !e.is_hole() && e.expiry() != 0)
                .map(|(p, e)| Reverse((e.expiry(), p as u32)))
                .collect();
        }
    }

    /// Expire what is due at `now`: a live versioned tuple becomes a
    /// tombstone kept for `keep` (`None`: forever) and its endpoint and
    /// service go to `removed`; an unversioned one given a lease is
    /// forgotten (also into `removed`); a tombstone whose time is over is
    /// forgotten. Costs what is due (and the stale heap entries before it),
    /// not the table.
    pub fn expire(&mut self, now: Instant, keep: Option<Duration>, removed: &mut Vec<Tuple>) {
        if self.next_expiry().map_or(true, |at| at > now) {
            return;
        }
        // First: a keep time may move the epoch, and `due` counts from it.
        let keep_until = match keep {
            Some(_) => self.expiry_for(now, keep),
            None => 0,
        };
        let due = self.ticks(now);
        let mut forget = Vec::new();
        while let Some(&Reverse((expiry, p))) = self.expiries.peek() {
            if u64::from(expiry) > due {
                break;
            }
            self.expiries.pop();
            let p = p as usize;
            let e = self.entries[p];
            // Renewed since: due later. Forgotten, or never expiring now,
            // or due earlier (then another heap entry has it): nothing.
            if !e.is_hole() && e.expiry() > expiry {
                self.expiries.push(Reverse((e.expiry(), p as u32)));
                continue;
            }
            if e.is_hole() || e.expiry() != expiry {
                continue;
            }
            // Its origin's heartbeats keep it: due when they stop, or
            // at the horizon, to look again.
            let kept = self.vouched_expiry(&e, due);
            if u64::from(kept) > due {
                self.entries[p].state = (e.state & !EXPIRY) | kept;
                self.expiries.push(Reverse((kept, p as u32)));
                continue;
            }
            if !e.removed() {
                self.live -= 1;
                removed.push(self.tuple(p, now));
            }
            if e.removed() || e.origin == 0 {
                // No expiry from now on: a duplicate heap entry skips it.
                self.entries[p].state = REMOVED;
                forget.push(p);
            } else {
                self.entries[p].state = (e.state & CONTESTED) | REMOVED | EXPIRED | keep_until;
                self.note_expired(e.origin, p);
                if keep_until == 0 {
                    // Kept forever: no longer leased.
                    self.count_origin(e.origin, false);
                }
                if keep_until != 0 {
                    self.schedule(keep_until, p);
                }
            }
        }
        let mut forgotten_origins = Vec::new();
        if !forget.is_empty() {
            let mut symbols = self.symbols.lock();
            for p in forget {
                let e = self.entries[p];
                let entries = &self.entries;
                if let Ok(found) = self.positions.find_entry(hash(e.endpoint), |&q| {
                    entries[q as usize].endpoint == e.endpoint
                }) {
                    found.remove();
                }
                symbols.release(e.endpoint);
                symbols.release(e.service);
                symbols.release_origin(e.origin);
                self.entries[p].endpoint = HOLE;
                self.entries[p].origin = 0;
                forgotten_origins.push(e.origin);
                self.holes.push(p as u32);
            }
        }
        for origin in forgotten_origins {
            self.count_origin(origin, false);
        }
    }

    /// When [`Tuples::expire`] next has something to do (perhaps only to
    /// drop stale heap entries).
    pub fn next_expiry(&self) -> Option<Instant> {
        let epoch = self.epoch?;
        let &Reverse((expiry, _)) = self.expiries.peek()?;
        Some(epoch + TICK * (expiry - 1))
    }

    fn tuple(&self, p: usize, now: Instant) -> Tuple {
        let e = self.entries[p];
        let symbols = self.symbols.lock();
        self.tuple_with(&symbols, e, now)
    }

    fn tuple_with(&self, symbols: &Symbols, e: Entry, now: Instant) -> Tuple {
        Tuple {
            endpoint: symbols.string(e.endpoint),
            service: symbols.string(e.service),
            stamp: e.stamp(symbols),
            removed: e.removed(),
            contested: e.state & CONTESTED != 0,
            expired: e.state & EXPIRED != 0,
            lease: self.remaining(self.vouched_expiry(&e, self.ticks(now)), now),
        }
    }

    /// The entry at `endpoint`, tombstone or live.
    pub fn get(&self, endpoint: &str, now: Instant) -> Option<Tuple> {
        let symbols = self.symbols.lock();
        let p = self.position_of(symbols.find(endpoint)?)?;
        Some(self.tuple_with(&symbols, self.entries[p], now))
    }

    /// The stamp of `endpoint`'s entry (tombstone or live), without
    /// copying its strings out; none for a tombstone left by expiry (its
    /// stamp is not a version held: any copy of it brings it back).
    pub fn stamp(&self, endpoint: &str) -> Option<Stamp> {
        let symbols = self.symbols.lock();
        let p = self.position_of(symbols.find(endpoint)?)?;
        let e = self.entries[p];
        if e.state & EXPIRED != 0 {
            return None;
        }
        e.stamp(&symbols)
    }

    /// Whether the value held at `endpoint` was pushed to us as news (not
    /// replayed): a second push of it means two paths (Plumtree's PRUNE).
    pub fn came_pushed(&self, endpoint: &str) -> bool {
        let symbols = self.symbols.lock();
        let Some(p) = symbols.find(endpoint).and_then(|e| self.position_of(e)) else {
            return false;
        };
        self.entries[p].state & REPLAYED == 0
    }

    /// The live service at `endpoint`.
    pub fn service(&self, endpoint: &str) -> Option<Arc<str>> {
        let symbols = self.symbols.lock();
        let p = self.position_of(symbols.find(endpoint)?)?;
        let e = self.entries[p];
        (!e.removed()).then(|| symbols.string(e.service))
    }

    /// The position of `endpoint`'s entry.
    pub fn position(&self, endpoint: &str) -> Option<usize> {
        let symbols = self.symbols.lock();
        self.position_of(symbols.find(endpoint)?)
    }

    /// The entry at `position` (`None` for a hole or past the end).
    pub fn at(&self, position: usize, now: Instant) -> Option<Tuple> {
        let e = *self.entries.get(position)?;
        if e.is_hole() {
            return None;
        }
        let symbols = self.symbols.lock();
        Some(self.tuple_with(&symbols, e, now))
    }

    /// The first live tuple.
    pub fn first_live(&self, now: Instant) -> Option<Tuple> {
        let p = self
            .entries
            .iter()
            .position(|e| !e.is_hole() && !e.removed())?;
        Some(self.tuple(p, now))
    }

    /// Entries from `position` on, up to `count` positions (holes count,
    /// so that the caller's cursor moves by `count`), into `out` (one lock
    /// for the lot).
    pub fn slice_into(&self, position: usize, count: usize, now: Instant, out: &mut Vec<Tuple>) {
        if position >= self.entries.len() {
            return;
        }
        let symbols = self.symbols.lock();
        out.extend(
            self.entries
                .iter_from(position)
                .take(count)
                .filter(|e| !e.is_hole())
                .map(|&e| self.tuple_with(&symbols, e, now)),
        );
    }

    /// Live tuples.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no tuple is live.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Positions in use or free: where a replay's cursor ends.
    pub fn slots(&self) -> usize {
        self.entries.len()
    }

    /// Tombstones held.
    pub fn tombstones(&self) -> usize {
        self.entries.len() - self.holes.len() - self.live
    }

    /// Every live tuple, in order of position.
    pub fn to_vec(&self) -> Vec<(Arc<str>, Arc<str>)> {
        let symbols = self.symbols.lock();
        self.entries
            .iter()
            .filter(|e| !e.is_hole() && !e.removed())
            .map(|e| (symbols.string(e.endpoint), symbols.string(e.service)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_LIMIT: usize = usize::MAX;

    fn v(version: u64, origin: u64) -> Option<Stamp> {
        Some(Stamp { version, origin })
    }

    fn offer<'a>(endpoint: &'a str, service: &'a str, stamp: Option<Stamp>) -> Offer<'a> {
        Offer {
            stamp,
            ..Offer::unversioned(endpoint, service)
        }
    }

    fn tombstone(endpoint: &str, stamp: Option<Stamp>) -> Offer<'_> {
        Offer {
            removed: true,
            ..offer(endpoint, "gone", stamp)
        }
    }

    #[test]
    fn tables_share_strings_only_through_an_interner_their_driver_gives_them() {
        let now = Instant::now();
        let strings = |t: &Tuples| t.interner().lock().numbers.len();
        let (mut alone, other) = (Tuples::default(), Tuples::default());
        alone.offer(&Offer::unversioned("tcp://a:1", "s"), NO_LIMIT, now);
        assert_eq!(
            (strings(&alone), strings(&other)),
            (2, 0),
            "no global table"
        );
        let shared = Interner::new();
        let mut first = Tuples::with_interner(shared.clone());
        let mut second = Tuples::with_interner(shared);
        first.offer(&Offer::unversioned("tcp://a:1", "s"), NO_LIMIT, now);
        second.offer(&Offer::unversioned("tcp://a:1", "s"), NO_LIMIT, now);
        assert_eq!(strings(&first), 2, "one copy of each string for both");
    }

    #[test]
    fn unversioned_tuples_follow_czmq_latest_wins() {
        let now = Instant::now();
        let mut t = Tuples::default();
        let u = Offer::unversioned;
        assert_eq!(
            t.offer(&u("tcp://a:1", "s1"), NO_LIMIT, now),
            Accepted::New(0)
        );
        assert_eq!(
            t.offer(&u("tcp://a:1", "s1"), NO_LIMIT, now),
            Accepted::Duplicate
        );
        assert_eq!(
            t.offer(&u("tcp://b:1", "s1"), NO_LIMIT, now),
            Accepted::New(1)
        );
        assert_eq!(
            t.offer(&u("tcp://a:1", "s2"), NO_LIMIT, now),
            Accepted::Changed(0)
        );
        assert_eq!(t.service("tcp://a:1").as_deref(), Some("s2"));
        assert_eq!(t.position("tcp://b:1"), Some(1));
        assert_eq!(t.len(), 2);
        let at: Vec<String> = t.to_vec().iter().map(|(e, _)| e.to_string()).collect();
        assert_eq!(at, ["tcp://a:1", "tcp://b:1"], "order of first arrival");
    }

    #[test]
    fn the_higher_stamp_wins_in_any_order() {
        let now = Instant::now();
        let updates = [
            offer("e", "x", v(1, 7)),
            offer("e", "y", v(2, 3)),
            offer("e", "z", v(2, 9)),
            offer("e", "w", v(1, 99)),
            Offer::unversioned("e", "czmq"),
        ];
        // Every order of arrival ends with the same value: (2, 9).
        fn permutations(n: usize) -> Vec<Vec<usize>> {
            if n == 0 {
                return vec![Vec::new()];
            }
            let mut out = Vec::new();
            for rest in permutations(n - 1) {
                for at in 0..=rest.len() {
                    let mut p = rest.clone();
                    p.insert(at, n - 1);
                    out.push(p);
                }
            }
            out
        }
        let orders = permutations(updates.len());
        assert_eq!(orders.len(), 120);
        for order in orders {
            let mut t = Tuples::default();
            for &k in &order {
                t.offer(&updates[k], NO_LIMIT, now);
            }
            let got = t.get("e", now).unwrap();
            assert_eq!(&*got.service, "z", "order {order:?}");
            assert_eq!(got.stamp, v(2, 9));
        }
        let mut t = Tuples::default();
        t.offer(&updates[2], NO_LIMIT, now);
        assert_eq!(t.offer(&updates[1], NO_LIMIT, now), Accepted::Stale);
        assert_eq!(t.offer(&updates[2], NO_LIMIT, now), Accepted::Duplicate);
        // An unversioned copy of the same value is a duplicate, another
        // value is stale.
        assert_eq!(
            t.offer(&Offer::unversioned("e", "z"), NO_LIMIT, now),
            Accepted::Duplicate
        );
        assert_eq!(t.offer(&updates[4], NO_LIMIT, now), Accepted::Stale);
        // The same value, higher stamp: a renewal.
        assert_eq!(
            t.offer(&offer("e", "z", v(3, 9)), NO_LIMIT, now),
            Accepted::Renewed(0)
        );
        // A versioned value replaces an unversioned one.
        let mut t = Tuples::default();
        t.offer(&Offer::unversioned("e", "czmq"), NO_LIMIT, now);
        assert_eq!(
            t.offer(&offer("e", "x", v(1, 1)), NO_LIMIT, now),
            Accepted::Changed(0)
        );
    }

    #[test]
    fn implausible_stamps_are_refused() {
        let now = Instant::now();
        let mut t = Tuples::default();
        assert_eq!(
            t.offer(&offer("e", "x", v(1, 0)), NO_LIMIT, now),
            Accepted::Implausible
        );
        // The table ranks any version: how far ahead of the clock one may
        // be is the node's rule (crate::clock), not the table's.
        t.offer(&offer("e", "x", v(10, 5)), NO_LIMIT, now);
        assert_eq!(
            t.offer(&offer("e", "y", v(u64::MAX, 5)), NO_LIMIT, now),
            Accepted::Changed(0)
        );
    }

    #[test]
    fn a_tombstone_keeps_stale_copies_out_until_a_newer_write() {
        let now = Instant::now();
        let mut t = Tuples::default();
        t.offer(&offer("e", "x", v(4, 1)), NO_LIMIT, now);
        assert_eq!(
            t.offer(&tombstone("e", v(5, 1)), NO_LIMIT, now),
            Accepted::Removed(0)
        );
        assert_eq!(t.len(), 0);
        assert_eq!(t.tombstones(), 1);
        assert_eq!(t.service("e"), None);
        assert!(t.to_vec().is_empty());
        // Stale replays, versioned or not, do not bring it back.
        assert_eq!(
            t.offer(&offer("e", "x", v(4, 1)), NO_LIMIT, now),
            Accepted::Stale
        );
        assert_eq!(
            t.offer(&offer("e", "x", v(4, 0xff)), NO_LIMIT, now),
            Accepted::Stale
        );
        assert_eq!(
            t.offer(&offer("e", "x", v(5, 1)), NO_LIMIT, now),
            Accepted::Duplicate
        );
        assert_eq!(
            t.offer(&Offer::unversioned("e", "x"), NO_LIMIT, now),
            Accepted::Stale
        );
        // A later write does.
        assert_eq!(
            t.offer(&offer("e", "y", v(6, 2)), NO_LIMIT, now),
            Accepted::New(0)
        );
        assert_eq!(t.len(), 1);
        // A tombstone for an endpoint never seen is kept too.
        assert_eq!(
            t.offer(&tombstone("f", v(1, 1)), NO_LIMIT, now),
            Accepted::Tombstone(1)
        );
        assert_eq!(
            t.offer(&offer("f", "x", v(1, 1)), NO_LIMIT, now),
            Accepted::Duplicate
        );
        assert_eq!(t.len(), 1);
    }

    /// A forged heartbeat that claims a long life, answered by its owner
    /// with a newer one of the usual life: the copies passed on while the
    /// forgery was believed, and what the sweep wrote meanwhile, give it
    /// no more than one horizon (the node's lease) past the answer.
    #[test]
    fn a_forged_long_life_outlives_its_answer_by_a_horizon_at_most() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        // Here, and at a peer that stores what this table passes on.
        let mut t = Tuples::default();
        t.set_heartbeat_horizon(Some(s));
        let mut peer = Tuples::default();
        peer.set_heartbeat_horizon(Some(s));
        let leased = Offer {
            lease: Some(s),
            ..offer("a", "x", v(1, 1))
        };
        t.offer(&leased, NO_LIMIT, t0);
        peer.offer(&leased, NO_LIMIT, t0);
        let mut asked = Vec::new();
        // The forgery: a minute of life for origin 1.
        let minute = 60 * s;
        assert_eq!(t.alive(1, 5, minute, t0, &mut asked), Liveness::Renewed);
        assert_eq!(peer.alive(1, 5, minute, t0, &mut asked), Liveness::Renewed);
        // The sweep looks at "a" at its own expiry, the forgery believed.
        let mut removed = Vec::new();
        t.expire(t0 + s, Some(10 * s), &mut removed);
        assert!(removed.is_empty(), "kept by the (forged) heartbeat");
        // A synchronisation passes "a" on; the peer stores it as a replay.
        let passed = t.get("a", t0 + s).unwrap();
        assert!(passed.lease.unwrap() <= s, "{:?}", passed.lease);
        peer.offer(
            &Offer {
                lease: passed.lease,
                replay: true,
                ..offer("a", "x", v(1, 1))
            },
            NO_LIMIT,
            t0 + s,
        );
        // The owner answers: a newer heartbeat, its usual second. It stops
        // there (it is cut off, or it died).
        let answered = t0 + s + s / 10;
        assert_eq!(t.alive(1, 6, s, answered, &mut asked), Liveness::Renewed);
        assert_eq!(peer.alive(1, 6, s, answered, &mut asked), Liveness::Renewed);
        // Both let "a" go within a horizon after the answer's life ends,
        // not a minute after the forgery.
        let gone = answered + 2 * s + TICK;
        t.expire(gone, Some(10 * s), &mut removed);
        peer.expire(gone, Some(10 * s), &mut removed);
        assert!(t.get("a", gone).unwrap().removed, "here");
        assert!(peer.get("a", gone).unwrap().removed, "at the peer");
    }

    #[test]
    fn an_origins_heartbeats_keep_its_tuples_and_end_with_them() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut t = Tuples::default();
        for (endpoint, origin) in [("a", 1), ("b", 1), ("c", 2)] {
            let leased = Offer {
                lease: Some(s),
                ..offer(endpoint, "x", v(1, origin))
            };
            t.offer(&leased, NO_LIMIT, t0);
        }
        let mut asked = Vec::new();
        // Nobody holds origin 3's tuples: its heartbeat costs nothing.
        assert_eq!(t.alive(3, 10, s, t0, &mut asked), Liveness::Unknown);
        assert_eq!(t.origins(), 2);
        // Origin 1 beats twice a lease; the second copy of a beat (another
        // path) and an older one are stale.
        let mut removed = Vec::new();
        for (i, at) in [s / 2, s, 3 * s / 2, 2 * s].into_iter().enumerate() {
            let revision = 10 + i as u64;
            assert_eq!(
                t.alive(1, revision, s, t0 + at, &mut asked),
                Liveness::Renewed
            );
            assert_eq!(
                t.alive(1, revision, s, t0 + at, &mut asked),
                Liveness::Stale
            );
            // An older one: the sender is behind, and is told.
            assert_eq!(
                t.alive(1, revision - 1, s, t0 + at, &mut asked),
                Liveness::Older { revision, left: s }
            );
            t.expire(t0 + at, Some(10 * s), &mut removed);
        }
        // Origin 2 never did: its tuple expired at its lease; origin 1's
        // live on, and a replay reports the lease its beats give them.
        assert_eq!(removed.len(), 1);
        assert_eq!(&*removed[0].endpoint, "c");
        let a = t.get("a", t0 + 2 * s).unwrap();
        assert!(!a.removed);
        assert!(a.lease.unwrap() > s - 2 * TICK, "{:?}", a.lease);
        // Its beats stop: its tuples go a lease after the last one.
        t.expire(t0 + 3 * s - TICK, Some(s), &mut removed);
        assert_eq!(removed.len(), 1);
        t.expire(t0 + 3 * s, Some(2 * s), &mut removed);
        assert_eq!(removed.len(), 3);
        assert!(t.get("a", t0 + 3 * s).unwrap().removed);
        assert!(asked.is_empty());
        // A beat after all (it was paused): their ids are asked for, once;
        // a copy with their stamp brings them back.
        assert_eq!(t.alive(1, 30, s, t0 + 4 * s, &mut asked), Liveness::Renewed);
        asked.sort();
        assert_eq!(
            asked,
            [
                ("a".to_owned(), v(1, 1).unwrap()),
                ("b".to_owned(), v(1, 1).unwrap())
            ]
        );
        assert_eq!(t.stamp("a"), None);
        assert_eq!(t.alive(1, 31, s, t0 + 4 * s, &mut asked), Liveness::Renewed);
        assert_eq!(asked.len(), 2);
        let copy = Offer {
            lease: Some(s),
            ..offer("a", "x", v(1, 1))
        };
        assert!(matches!(
            t.offer(&copy, NO_LIMIT, t0 + 4 * s),
            Accepted::New(_)
        ));
        t.expire(t0 + 5 * s, Some(s), &mut removed);
        assert_eq!(removed.len(), 4);
        // Their tombstones forgotten, the origins' records go with them.
        t.expire(t0 + 12 * s, Some(s), &mut removed);
        assert_eq!(t.tombstones(), 0);
        assert_eq!(t.origins(), 0);
        assert_eq!(
            t.alive(1, 100, s, t0 + 12 * s, &mut asked),
            Liveness::Unknown
        );
    }

    #[test]
    fn a_heartbeat_asks_for_what_expired_since_the_last_one_at_that_cost() {
        let t0 = Instant::now();
        let ms = Duration::from_millis(1);
        let mut t = Tuples::default();
        let mut removed = Vec::new();
        let mut asked = Vec::new();
        // Other origins' tuples: a heartbeat never looks at them.
        for i in 0..1000 {
            let endpoint = format!("tcp://other:{i}");
            let leased = Offer {
                lease: Some(Duration::from_secs(60)),
                ..offer(&endpoint, "x", v(1, 2))
            };
            t.offer(&leased, NO_LIMIT, t0);
        }
        // Origin 1 writes a tuple that expires, then beats; ten times.
        for i in 0..10u64 {
            let at = t0 + ms * (10 * i as u32);
            let endpoint = format!("tcp://e:{i}");
            let leased = Offer {
                lease: Some(ms),
                ..offer(&endpoint, "x", v(1 + i, 1))
            };
            t.offer(&leased, NO_LIMIT, at);
            t.expire(at + 2 * ms, Some(Duration::from_secs(60)), &mut removed);
            asked.clear();
            t.alive(1, 100 + i, ms, at + 3 * ms, &mut asked);
            // Exactly the one that expired since the last heartbeat.
            assert_eq!(asked, [(format!("tcp://e:{i}"), v(1 + i, 1).unwrap())]);
        }
        assert_eq!(removed.len(), 10);
        asked.clear();
        t.alive(1, 200, ms, t0 + Duration::from_secs(1), &mut asked);
        assert!(asked.is_empty());
        // A peer writing and expiring one endpoint in origin 3's name over
        // and over, never beating: what is kept for its next heartbeat
        // stays within twice its entries.
        for i in 0..1000u64 {
            let at = t0 + Duration::from_secs(2) + ms * (10 * i as u32);
            let leased = Offer {
                lease: Some(ms),
                ..offer("tcp://churn:1", "x", v(1_000 + i, 3))
            };
            t.offer(&leased, NO_LIMIT, at);
            t.expire(at + 2 * ms, Some(Duration::from_secs(60)), &mut removed);
        }
        let three = t.symbols.lock().find_origin(3);
        assert!(three.is_some());
        let held = three
            .and_then(|n| t.expired_since.get(&n))
            .map_or(0, Vec::len);
        assert!(held <= 2 + SPARE_EXPIRIES + 1, "{held}");
        asked.clear();
        t.alive(3, 1, ms, t0 + Duration::from_secs(20), &mut asked);
        assert_eq!(asked.len(), 1);
    }

    #[test]
    fn leases_expire_into_tombstones_that_are_then_forgotten() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut t = Tuples::default();
        let leased = Offer {
            lease: Some(s),
            ..offer("e", "x", v(1, 1))
        };
        t.offer(&leased, NO_LIMIT, t0);
        // A foreign (unversioned) tuple given a lease, and one without.
        let foreign = Offer {
            lease: Some(2 * s),
            ..Offer::unversioned("czmq", "y")
        };
        t.offer(&foreign, NO_LIMIT, t0);
        t.offer(&Offer::unversioned("forever", "z"), NO_LIMIT, t0);
        assert_eq!(t.next_expiry(), Some(t0 + s));
        let lease = t.get("e", t0 + s / 2).unwrap().lease.unwrap();
        assert!(lease <= s / 2 && lease >= s / 2 - TICK, "{lease:?}");
        let mut removed = Vec::new();
        t.expire(t0 + s / 2, Some(10 * s), &mut removed);
        assert!(removed.is_empty());
        t.expire(t0 + s, Some(10 * s), &mut removed);
        assert_eq!(removed.len(), 1);
        assert_eq!((&*removed[0].endpoint, &*removed[0].service), ("e", "x"));
        assert!(t.get("e", t0 + s).unwrap().removed);
        // A live copy with the same stamp brings it back for the lease it
        // carries (its sender heard its origin later than we did), and it
        // expires again with it.
        let copy = Offer {
            lease: Some(s / 2),
            ..leased
        };
        assert!(matches!(t.offer(&copy, NO_LIMIT, t0 + s), Accepted::New(_)));
        assert!(!t.get("e", t0 + s).unwrap().removed);
        t.expire(t0 + s + s / 2, Some(10 * s), &mut removed);
        assert_eq!(removed.len(), 2);
        assert!(t.get("e", t0 + s + s / 2).unwrap().removed);
        removed.clear();
        // A tombstone (a removal, not an expiry) is never undone by a
        // copy with its stamp.
        let removal = Offer {
            removed: true,
            lease: Some(s),
            ..offer("e", "x", v(2, 1))
        };
        assert_eq!(
            t.offer(&removal, NO_LIMIT, t0 + s + s / 2),
            Accepted::Tombstone(0)
        );
        let removed_copy = Offer {
            lease: Some(s),
            ..offer("e", "x", v(2, 1))
        };
        assert_eq!(
            t.offer(&removed_copy, NO_LIMIT, t0 + s + s / 2),
            Accepted::Duplicate
        );
        assert!(t.get("e", t0 + s + s / 2).unwrap().removed);
        // The foreign one heard again lives on from then.
        assert_eq!(t.offer(&foreign, NO_LIMIT, t0 + s), Accepted::Duplicate);
        removed.clear();
        t.expire(t0 + 2 * s, Some(10 * s), &mut removed);
        assert!(removed.is_empty());
        t.expire(t0 + 3 * s, Some(10 * s), &mut removed);
        assert_eq!(removed.len(), 1, "the foreign tuple, forgotten");
        assert_eq!(t.position("czmq"), None);
        // The tombstone is forgotten after its keep time; the hole is reused.
        t.expire(t0 + 12 * s, Some(10 * s), &mut removed);
        assert_eq!(t.position("e"), None);
        assert_eq!(t.len(), 1);
        assert_eq!(t.tombstones(), 0);
        assert_eq!(t.next_expiry(), None);
        let slots = t.slots();
        assert!(matches!(
            t.offer(&Offer::unversioned("new", "n"), NO_LIMIT, t0),
            Accepted::New(p) if p < slots
        ));
        assert_eq!(t.slots(), slots);
        let mut all = Vec::new();
        t.slice_into(0, slots, t0, &mut all);
        assert_eq!(all.len(), 2);
    }

    #[test]
    fn renewals_and_refreshes_keep_the_expiry_heap_bounded() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut t = Tuples::default();
        // A peer that repeats one tuple forever, leases up and down.
        for i in 0..=100_000u32 {
            let lease = if i % 2 == 0 { 10 * s } else { s };
            let offer = Offer {
                lease: Some(lease),
                ..Offer::unversioned("again", "x")
            };
            t.offer(
                &offer,
                NO_LIMIT,
                t0 + Duration::from_millis(u64::from(i / 100)),
            );
        }
        assert!(
            t.expiries.len() <= 2 + SPARE_EXPIRIES,
            "{}",
            t.expiries.len()
        );
        // Renewals of versioned tuples push nothing.
        for version in 1..1000 {
            let renewal = Offer {
                lease: Some(s),
                ..offer("e", "x", v(version, 1))
            };
            t.offer(&renewal, NO_LIMIT, t0);
        }
        assert!(
            t.expiries.len() <= 4 + SPARE_EXPIRIES,
            "{}",
            t.expiries.len()
        );
        // And the last expiry given is the one that counts.
        let mut removed = Vec::new();
        let last = t0 + Duration::from_millis(1000) + 10 * s;
        t.expire(last - s / 2, None, &mut removed);
        assert_eq!(removed.len(), 1, "e, leased 1 s");
        t.expire(last + TICK, None, &mut removed);
        assert_eq!(removed.len(), 2);
    }

    #[test]
    fn the_limit_counts_tombstones_and_refuses_new_endpoints_only() {
        let now = Instant::now();
        let mut t = Tuples::default();
        assert_eq!(
            t.offer(&Offer::unversioned("a", "s1"), 2, now),
            Accepted::New(0)
        );
        assert_eq!(
            t.offer(&tombstone("b", v(1, 1)), 2, now),
            Accepted::Tombstone(1)
        );
        assert_eq!(
            t.offer(&Offer::unversioned("c", "s1"), 2, now),
            Accepted::Full
        );
        assert_eq!(
            t.offer(&Offer::unversioned("a", "s2"), 2, now),
            Accepted::Changed(0)
        );
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn the_expiry_epoch_moves_before_its_ticks_run_out() {
        let t0 = Instant::now();
        let mut t = Tuples::default();
        let day = Duration::from_secs(86_400);
        t.offer(
            &Offer {
                lease: Some(day),
                ..offer("a", "x", v(1, 1))
            },
            NO_LIMIT,
            t0,
        );
        // 100 days on, a lease of 30 days does not fit the ticks left.
        let later = t0 + 100 * day;
        t.offer(
            &Offer {
                lease: Some(30 * day),
                ..offer("b", "x", v(1, 1))
            },
            NO_LIMIT,
            later,
        );
        let b = t.get("b", later).unwrap().lease.unwrap();
        assert!(b > 29 * day && b <= 30 * day, "{b:?}");
        let mut removed = Vec::new();
        t.expire(later, None, &mut removed);
        assert_eq!(removed.len(), 1, "a expired long ago");
        t.expire(later + 29 * day, None, &mut removed);
        assert_eq!(removed.len(), 1);
        t.expire(later + 30 * day, None, &mut removed);
        assert_eq!(removed.len(), 2);
    }

    #[test]
    fn replaced_and_dropped_strings_are_freed() {
        let now = Instant::now();
        let unique = |i: u32| format!("tuples-test-service-{i}-{}", std::process::id());
        let interner = Interner::new();
        let mut t = Tuples::with_interner(interner.clone());
        t.offer(
            &Offer::unversioned("tuples-test-endpoint", &unique(0)),
            NO_LIMIT,
            now,
        );
        let copy = t.clone();
        for i in 1..1000 {
            t.offer(
                &Offer::unversioned("tuples-test-endpoint", &unique(i)),
                NO_LIMIT,
                now,
            );
        }
        let symbols = interner.lock();
        // The clone still holds service 0; replaced services 1..998 are gone.
        assert!(symbols.find(&unique(0)).is_some());
        assert!(symbols.find(&unique(500)).is_none());
        assert!(symbols.find(&unique(999)).is_some());
        drop(symbols);
        drop(copy);
        drop(t);
        let symbols = interner.lock();
        assert!(symbols.find(&unique(0)).is_none());
        assert!(symbols.find(&unique(999)).is_none());
        assert!(symbols.find("tuples-test-endpoint").is_none());
    }

    #[test]
    fn origins_are_numbered_once_and_freed_with_their_last_entry() {
        assert_eq!(std::mem::size_of::<Entry>(), 24);
        let now = Instant::now();
        let interner = Interner::new();
        let origins = || interner.lock().origin_numbers.len();
        let mut t = Tuples::with_interner(interner.clone());
        for (endpoint, origin) in [("a", 7), ("b", 7), ("c", 8)] {
            t.offer(&offer(endpoint, "s", v(1, origin)), NO_LIMIT, now);
        }
        assert_eq!(origins(), 2);
        let copy = t.clone();
        t.offer(&offer("a", "s", v(2, 9)), NO_LIMIT, now);
        assert_eq!(origins(), 3);
        assert_eq!(t.stamp("a"), v(2, 9));
        assert_eq!(copy.stamp("a"), v(1, 7));
        assert_eq!(t.stamp("b"), v(1, 7));
        drop(copy);
        t.offer(&offer("b", "s", v(2, 9)), NO_LIMIT, now);
        // Nobody holds 7 now: its number is free, and taken by the next.
        assert_eq!(interner.lock().find_origin(7), None);
        t.offer(&offer("d", "s", v(1, 10)), NO_LIMIT, now);
        assert_eq!(t.stamp("d"), v(1, 10));
        assert_eq!(t.stamp("c"), v(1, 8));
        assert_eq!(origins(), 3);
        // A tombstone forgotten at the end of its lease lets its origin go.
        let tombstone = Offer {
            removed: true,
            lease: Some(Duration::from_secs(1)),
            ..offer("e", "s", v(1, 11))
        };
        t.offer(&tombstone, NO_LIMIT, now);
        assert_eq!(origins(), 4);
        t.expire(now + Duration::from_secs(2), None, &mut Vec::new());
        assert_eq!(t.stamp("e"), None);
        assert_eq!(origins(), 3);
        drop(t);
        assert_eq!(origins(), 0);
        assert!(interner.lock().origins.iter().all(|&(_, count)| count == 0));
    }

    #[test]
    fn tables_share_strings_only_through_a_shared_interner() {
        let now = Instant::now();
        let (mine, theirs) = (Interner::new(), Interner::new());
        let mut a = Tuples::with_interner(mine.clone());
        let mut b = Tuples::with_interner(mine.clone());
        let mut c = Tuples::with_interner(theirs.clone());
        for t in [&mut a, &mut b, &mut c] {
            t.offer(&Offer::unversioned("tcp://e:1", "s"), NO_LIMIT, now);
        }
        // One copy of each string in the shared interner, one in the other.
        assert_eq!(mine.lock().numbers.len(), 2);
        assert_eq!(theirs.lock().numbers.len(), 2);
        drop(a);
        assert_eq!(mine.lock().numbers.len(), 2, "b still holds them");
        drop(b);
        assert_eq!(mine.lock().numbers.len(), 0);
        assert_eq!(c.service("tcp://e:1").as_deref(), Some("s"));
    }
}
