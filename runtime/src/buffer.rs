//! Queues that give back what a burst made them grow.
//!
//! A service's outgoing queue grows to whatever one busy moment needed and,
//! drained in place, would keep that capacity for ever: with thousands of
//! services on one reactor (a swarm of nodes, a broker's sessions) those
//! idle high-water marks add up to tens of megabytes.

/// Capacity a drained queue keeps: enough that ordinary traffic does not
/// allocate, small enough that thousands of idle queues cost little.
pub const KEEP: usize = 32;

/// Shrink an empty `queue` back to [`KEEP`] entries if a burst grew it past.
#[inline]
pub fn trim<T>(queue: &mut Vec<T>) {
    if queue.is_empty() && queue.capacity() > KEEP {
        queue.shrink_to(KEEP);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drained_queue_gives_back_its_burst() {
        let mut queue: Vec<u64> = (0..10_000).collect();
        trim(&mut queue);
        assert_eq!(
            queue.len(),
            10_000,
            "a queue that holds messages is left alone"
        );
        queue.clear();
        trim(&mut queue);
        assert!(queue.capacity() <= KEEP, "{}", queue.capacity());
        let mut small: Vec<u64> = Vec::with_capacity(8);
        trim(&mut small);
        assert_eq!(small.capacity(), 8);
    }
}
