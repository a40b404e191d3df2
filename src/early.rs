//! Writes that came early: versions a little further ahead of this node's
//! clock than [`MAX_AHEAD`] allows, held until the clock catches up.
//!
//! Clocks differ between hosts, so a write that one node takes (its clock
//! is ahead) another refuses (its clock is behind). Refusing it outright
//! would strand it where it was taken: a forged write in an owner's name,
//! as far ahead as its victim takes, would be refused by every neighbour
//! and never reach the owner, the only node that can answer it, and the
//! victim would hold it for the lease it claims. Held instead, it is taken
//! here once the clock has moved on by the skew, passed on, and answered.
//!
//! At most [`MAX_EARLY`] writes are held, each the newest for its endpoint;
//! one over [`MAX_AHEAD`] + [`GRACE`] is refused, as is one that finds the
//! list full of writes due sooner. So the list holds at most
//! `MAX_EARLY × (2 × 255 + limits/service + 100)` bytes (the endpoint is
//! kept twice): 0.4 MiB with the default 1 KiB services.
//!
//! [`MAX_AHEAD`]: crate::clock::MAX_AHEAD

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::tuples::{Offer, Stamp};

/// How much further ahead than [`crate::clock::MAX_AHEAD`] a write may be
/// and still be held: more than the clock skew between honest hosts.
pub const GRACE: Duration = Duration::from_secs(60);

/// Most writes held at once.
pub const MAX_EARLY: usize = 256;

/// A held write, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlyWrite {
    endpoint: String,
    service: String,
    stamp: Stamp,
    lease: Option<Duration>,
    removed: bool,
    contested: bool,
}

impl EarlyWrite {
    /// The write as an offer to the table, marked as a replay: it is not
    /// news pushed along the tree (Plumtree), and it answers nothing.
    pub fn offer(&self) -> Offer<'_> {
        Offer {
            endpoint: &self.endpoint,
            service: &self.service,
            stamp: Some(self.stamp),
            lease: self.lease,
            removed: self.removed,
            contested: self.contested,
            replay: true,
        }
    }
}

/// The writes held, by endpoint, with when each is due.
#[derive(Debug, Default)]
pub struct Early {
    held: BTreeMap<String, (Instant, EarlyWrite)>,
}

impl Early {
    /// Hold `offer` (versioned) until `due`; `false` if it cannot be held
    /// (see the module docs). A write older than one held for its endpoint
    /// is dropped as held.
    pub fn hold(&mut self, offer: &Offer<'_>, due: Instant, now: Instant) -> bool {
        let Some(stamp) = offer.stamp else {
            return false;
        };
        if due > now + GRACE {
            return false;
        }
        if let Some((_, held)) = self.held.get(offer.endpoint) {
            if held.stamp >= stamp {
                return true;
            }
        } else if self.held.len() >= MAX_EARLY {
            // Full: make room by dropping the latest due, if this is
            // due sooner.
            let latest = self
                .held
                .iter()
                .max_by_key(|(_, (at, _))| *at)
                .map(|(endpoint, (at, _))| (endpoint.clone(), *at));
            match latest {
                Some((endpoint, at)) if at > due => {
                    self.held.remove(&endpoint);
                }
                _ => return false,
            }
        }
        let write = EarlyWrite {
            endpoint: offer.endpoint.to_owned(),
            service: offer.service.to_owned(),
            stamp,
            lease: offer.lease,
            removed: offer.removed,
            contested: offer.contested,
        };
        self.held.insert(offer.endpoint.to_owned(), (due, write));
        true
    }

    /// The writes due at `now`, taken off the list.
    pub fn due(&mut self, now: Instant) -> Vec<EarlyWrite> {
        let due: Vec<String> = self
            .held
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(endpoint, _)| endpoint.clone())
            .collect();
        due.iter()
            .filter_map(|endpoint| self.held.remove(endpoint))
            .map(|(_, write)| write)
            .collect()
    }

    /// When the next write is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.held.values().map(|(at, _)| *at).min()
    }

    /// How many writes are held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    #[cfg(test)]
    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(endpoint: &str, version: u64) -> Offer<'_> {
        Offer {
            stamp: Some(Stamp { version, origin: 7 }),
            ..Offer::unversioned(endpoint, "s")
        }
    }

    #[test]
    fn writes_are_held_until_due_newest_per_endpoint_and_bounded() {
        let now = Instant::now();
        let mut early = Early::default();
        let soon = now + Duration::from_secs(2);
        assert!(early.hold(&offer("a", 10), soon, now));
        assert!(
            early.hold(&offer("a", 9), soon, now),
            "older: dropped as held"
        );
        assert!(early.hold(&offer("a", 11), soon, now));
        assert_eq!(early.len(), 1);
        assert!(
            !early.hold(&offer("b", 1), now + GRACE * 2, now),
            "past the grace"
        );
        assert!(early.due(now).is_empty());
        assert_eq!(early.next_due(), Some(soon));
        let due = early.due(soon);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].offer().stamp.map(|s| s.version), Some(11));
        assert!(due[0].offer().replay);
        assert!(early.is_empty());

        // Full: a write due sooner replaces the latest due; a later one
        // is refused.
        let names: Vec<String> = (0..MAX_EARLY).map(|i| format!("e{i}")).collect();
        for (i, name) in names.iter().enumerate() {
            let at = now + Duration::from_millis(100 + i as u64);
            assert!(early.hold(&offer(name, 1), at, now));
        }
        assert!(!early.hold(&offer("late", 1), now + Duration::from_secs(30), now));
        assert!(early.hold(&offer("soon", 1), now + Duration::from_millis(1), now));
        assert_eq!(early.len(), MAX_EARLY);
        assert_eq!(early.next_due(), Some(now + Duration::from_millis(1)));
    }
}
