//! The tuple table of a node: endpoint → service, latest value wins.
//!
//! Tuple strings are interned process-wide as numbered symbols: a swarm of
//! thousands of nodes holds one copy of each endpoint and service, and a
//! node stores two 4-byte symbols per tuple. Symbols are never freed, as
//! tuples never expire (zgossip's design); only a service that is replaced
//! for an endpoint leaves an unused symbol behind.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

type FastHash = foldhash::fast::RandomState;

/// A tuple string's number in the process-wide table.
type Symbol = u32;

#[derive(Default)]
struct Symbols {
    numbers: HashMap<Arc<str>, Symbol, FastHash>,
    strings: Vec<Arc<str>>,
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

    fn intern(&mut self, text: &str) -> Symbol {
        if let Some(symbol) = self.find(text) {
            return symbol;
        }
        let shared: Arc<str> = Arc::from(text);
        // Over four billion distinct strings would exhaust the numbers; the
        // last one is then reused, which keeps nodes running, wrongly named.
        let symbol = Symbol::try_from(self.strings.len()).unwrap_or(Symbol::MAX);
        self.strings.push(shared.clone());
        self.numbers.insert(shared, symbol);
        symbol
    }

    fn string(&self, symbol: Symbol) -> Arc<str> {
        self.strings
            .get(symbol as usize)
            .cloned()
            .unwrap_or_else(|| Arc::from(""))
    }
}

/// Every tuple a node knows. Nothing expires, as in CZMQ.
#[derive(Debug, Default, Clone)]
pub struct Tuples {
    map: HashMap<Symbol, Symbol, FastHash>,
}

impl Tuples {
    /// Store a tuple unless it is already known with the same service.
    /// Returns whether it was new (a new endpoint or a new service for it);
    /// a duplicate stops the flood.
    pub fn accept(&mut self, endpoint: &str, service: &str) -> bool {
        let mut symbols = Symbols::lock();
        let endpoint = symbols.intern(endpoint);
        let service = symbols.intern(service);
        drop(symbols);
        match self.map.insert(endpoint, service) {
            Some(old) => old != service,
            None => true,
        }
    }

    /// The service at `endpoint`.
    pub fn get(&self, endpoint: &str) -> Option<Arc<str>> {
        let symbols = Symbols::lock();
        let service = self.map.get(&symbols.find(endpoint)?)?;
        Some(symbols.string(*service))
    }

    /// Number of tuples.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every tuple, in no particular order.
    pub fn to_vec(&self) -> Vec<(Arc<str>, Arc<str>)> {
        let symbols = Symbols::lock();
        self.map
            .iter()
            .map(|(e, s)| (symbols.string(*e), symbols.string(*s)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_not_new_changes_are() {
        let mut t = Tuples::default();
        assert!(t.accept("tcp://a:1", "s1"));
        assert!(!t.accept("tcp://a:1", "s1"));
        assert!(t.accept("tcp://a:1", "s2"));
        assert_eq!(t.get("tcp://a:1").as_deref(), Some("s2"));
        assert_eq!(t.len(), 1);
    }
}
