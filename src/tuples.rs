//! The tuple table of a node: endpoint → service, latest value wins.

use std::collections::HashMap;

/// Every tuple a node knows. Nothing expires, as in CZMQ.
#[derive(Debug, Default, Clone)]
pub struct Tuples {
    map: HashMap<String, String>,
}

impl Tuples {
    /// Store a tuple unless it is already known with the same service.
    /// Returns whether it was new (a new endpoint or a new service for it);
    /// a duplicate stops the flood.
    pub fn accept(&mut self, endpoint: &str, service: &str) -> bool {
        match self.map.get_mut(endpoint) {
            Some(existing) if existing == service => false,
            Some(existing) => {
                service.clone_into(existing);
                true
            }
            None => {
                self.map.insert(endpoint.to_owned(), service.to_owned());
                true
            }
        }
    }

    /// The service at `endpoint`.
    pub fn get(&self, endpoint: &str) -> Option<&str> {
        self.map.get(endpoint).map(String::as_str)
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
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
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
        assert_eq!(t.get("tcp://a:1"), Some("s2"));
        assert_eq!(t.len(), 1);
    }
}
