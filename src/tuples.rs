//! The tuple table of a node: endpoint → service, latest value wins.
//!
//! Tuples keep the order in which their endpoints first arrived, so that a
//! replay (to a peer that said HELLO, or to a server we connect to) is a
//! cursor, a position in that order, rather than a copy of the table: a
//! peer that asks for a million tuples costs one number until they are sent.
//! A tuple whose service changes keeps its position.
//!
//! Tuple strings are interned process-wide as numbered symbols: a swarm of
//! thousands of nodes holds one copy of each endpoint and service, and a
//! node stores two 4-byte symbols per tuple. Symbols are counted, and a
//! string nobody holds any more is freed, so a peer that keeps replacing a
//! service does not leave garbage behind.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

type FastHash = foldhash::fast::RandomState;

/// A tuple string's number in the process-wide table.
type Symbol = u32;

#[derive(Default)]
struct Symbols {
    numbers: HashMap<Arc<str>, Symbol, FastHash>,
    /// By symbol: the string and how many tuple fields hold it (0: free).
    strings: Vec<(Arc<str>, u32)>,
    free: Vec<Symbol>,
}

impl Symbols {
    fn lock() -> MutexGuard<'static, Symbols> {
        static SYMBOLS: OnceLock<Mutex<Symbols>> = OnceLock::new();
        let symbols = SYMBOLS.get_or_init(Mutex::default);
        // A panic elsewhere cannot leave the table inconsistent: use it anyway.
        symbols
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

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

    fn string(&self, symbol: Symbol) -> Arc<str> {
        self.strings
            .get(symbol as usize)
            .map(|(s, _)| s.clone())
            .unwrap_or_else(|| Arc::from(""))
    }
}

/// What [`Tuples::accept`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// A new endpoint, stored at this position.
    New(usize),
    /// A new service for a known endpoint, at this position.
    Changed(usize),
    /// Known already with the same service: the flood stops here.
    Duplicate,
    /// A new endpoint, but the table holds its limit already.
    Full,
}

impl Accepted {
    /// The position of a tuple that is new to the node.
    pub fn position(self) -> Option<usize> {
        match self {
            Accepted::New(i) | Accepted::Changed(i) => Some(i),
            Accepted::Duplicate | Accepted::Full => None,
        }
    }
}

/// Every tuple a node knows, in order of arrival. Nothing expires, as in
/// CZMQ.
///
/// Per tuple: 8 bytes of entry and a 4-byte position in a hash table found
/// by the endpoint's symbol (about 14 bytes with the tables' slack), what a
/// map from endpoint to service alone took.
#[derive(Default)]
pub struct Tuples {
    /// (endpoint, service) by position.
    entries: Vec<(Symbol, Symbol)>,
    /// Positions in `entries`, hashed by their endpoint symbol.
    positions: hashbrown::HashTable<u32>,
}

impl std::fmt::Debug for Tuples {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tuples")
            .field("len", &self.entries.len())
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
        let mut symbols = Symbols::lock();
        for &(e, s) in &self.entries {
            symbols.retain(e);
            symbols.retain(s);
        }
        Self {
            entries: self.entries.clone(),
            positions: self.positions.clone(),
        }
    }
}

impl Drop for Tuples {
    fn drop(&mut self) {
        if self.entries.is_empty() {
            return;
        }
        let mut symbols = Symbols::lock();
        for &(e, s) in &self.entries {
            symbols.release(e);
            symbols.release(s);
        }
    }
}

impl Tuples {
    fn position_of(&self, endpoint: Symbol) -> Option<usize> {
        let entries = &self.entries;
        self.positions
            .find(hash(endpoint), |&p| entries[p as usize].0 == endpoint)
            .map(|&p| p as usize)
    }

    /// Store a tuple unless it is already known with the same service, or
    /// it is a new endpoint and the table already holds `limit` tuples.
    pub fn accept(&mut self, endpoint: &str, service: &str, limit: usize) -> Accepted {
        let mut symbols = Symbols::lock();
        let endpoint_symbol = symbols.find(endpoint);
        let position = endpoint_symbol.and_then(|e| self.position_of(e));
        match position {
            Some(p) => {
                let old = self.entries[p].1;
                if symbols.find(service) == Some(old) {
                    return Accepted::Duplicate;
                }
                self.entries[p].1 = symbols.hold(service);
                symbols.release(old);
                Accepted::Changed(p)
            }
            None => {
                let p = self.entries.len();
                if p >= limit || u32::try_from(p).is_err() {
                    return Accepted::Full;
                }
                let e = symbols.hold_found(endpoint_symbol, endpoint);
                let s = symbols.hold(service);
                self.entries.push((e, s));
                let entries = &self.entries;
                self.positions
                    .insert_unique(hash(e), p as u32, |&q| hash(entries[q as usize].0));
                Accepted::New(p)
            }
        }
    }

    /// The service at `endpoint`.
    pub fn get(&self, endpoint: &str) -> Option<Arc<str>> {
        let symbols = Symbols::lock();
        let p = self.position_of(symbols.find(endpoint)?)?;
        let (_, service) = self.entries.get(p)?;
        Some(symbols.string(*service))
    }

    /// The position of `endpoint`'s tuple.
    pub fn position(&self, endpoint: &str) -> Option<usize> {
        let symbol = Symbols::lock().find(endpoint)?;
        self.position_of(symbol)
    }

    /// The tuple at `position`.
    pub fn at(&self, position: usize) -> Option<(Arc<str>, Arc<str>)> {
        let (e, s) = *self.entries.get(position)?;
        let symbols = Symbols::lock();
        Some((symbols.string(e), symbols.string(s)))
    }

    /// Up to `count` tuples from `position` on, into `out` (one lock for
    /// the lot).
    pub fn slice_into(&self, position: usize, count: usize, out: &mut Vec<(Arc<str>, Arc<str>)>) {
        let Some(entries) = self.entries.get(position..) else {
            return;
        };
        let symbols = Symbols::lock();
        out.extend(
            entries
                .iter()
                .take(count)
                .map(|&(e, s)| (symbols.string(e), symbols.string(s))),
        );
    }

    /// Number of tuples.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every tuple, in order of arrival.
    pub fn to_vec(&self) -> Vec<(Arc<str>, Arc<str>)> {
        let mut out = Vec::with_capacity(self.len());
        self.slice_into(0, self.len(), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_LIMIT: usize = usize::MAX;

    #[test]
    fn duplicates_are_not_new_changes_are() {
        let mut t = Tuples::default();
        assert_eq!(t.accept("tcp://a:1", "s1", NO_LIMIT), Accepted::New(0));
        assert_eq!(t.accept("tcp://a:1", "s1", NO_LIMIT), Accepted::Duplicate);
        assert_eq!(t.accept("tcp://b:1", "s1", NO_LIMIT), Accepted::New(1));
        assert_eq!(t.accept("tcp://a:1", "s2", NO_LIMIT), Accepted::Changed(0));
        assert_eq!(t.get("tcp://a:1").as_deref(), Some("s2"));
        assert_eq!(t.position("tcp://b:1"), Some(1));
        assert_eq!(t.len(), 2);
        let at: Vec<String> = t.to_vec().iter().map(|(e, _)| e.to_string()).collect();
        assert_eq!(at, ["tcp://a:1", "tcp://b:1"], "order of first arrival");
    }

    #[test]
    fn the_limit_refuses_new_endpoints_but_not_changes() {
        let mut t = Tuples::default();
        assert_eq!(t.accept("tcp://a:1", "s1", 1), Accepted::New(0));
        assert_eq!(t.accept("tcp://b:1", "s1", 1), Accepted::Full);
        assert_eq!(t.accept("tcp://a:1", "s2", 1), Accepted::Changed(0));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn replaced_and_dropped_strings_are_freed() {
        let unique = |i: u32| format!("tuples-test-service-{i}-{}", std::process::id());
        let mut t = Tuples::default();
        t.accept("tuples-test-endpoint", &unique(0), NO_LIMIT);
        let copy = t.clone();
        for i in 1..1000 {
            t.accept("tuples-test-endpoint", &unique(i), NO_LIMIT);
        }
        let symbols = Symbols::lock();
        // The clone still holds service 0; replaced services 1..998 are gone.
        assert!(symbols.find(&unique(0)).is_some());
        assert!(symbols.find(&unique(500)).is_none());
        assert!(symbols.find(&unique(999)).is_some());
        drop(symbols);
        drop(copy);
        drop(t);
        let symbols = Symbols::lock();
        assert!(symbols.find(&unique(0)).is_none());
        assert!(symbols.find(&unique(999)).is_none());
        assert!(symbols.find("tuples-test-endpoint").is_none());
    }
}
