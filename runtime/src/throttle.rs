//! Rate-limited logging: a peer that sends a million bad frames must not
//! write a million log lines (nor block the thread that writes them).

use std::time::{Duration, Instant};

/// Allows at most `burst` events per `window`; counts the rest, so that
/// the next line that is allowed can say how many were left out.
#[derive(Debug, Clone)]
pub struct Throttle {
    burst: u32,
    window: Duration,
    window_start: Option<Instant>,
    in_window: u32,
    suppressed: u64,
}

impl Default for Throttle {
    /// Ten lines a second.
    fn default() -> Self {
        Self::new(10, Duration::from_secs(1))
    }
}

impl Throttle {
    /// At most `burst` events per `window`.
    pub fn new(burst: u32, window: Duration) -> Self {
        Self {
            burst,
            window,
            window_start: None,
            in_window: 0,
            suppressed: 0,
        }
    }

    /// An event at `now`: `Some(n)` if it may be logged, `n` being how many
    /// were suppressed since the last one logged; `None` if it is
    /// suppressed.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        let fresh = self.window_start.map_or(true, |start| {
            now.saturating_duration_since(start) >= self.window
        });
        if fresh {
            self.window_start = Some(now);
            self.in_window = 0;
        }
        if self.in_window < self.burst {
            self.in_window += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }

    /// Events suppressed and not yet reported.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_silence_then_a_count() {
        let start = Instant::now();
        let mut t = Throttle::new(3, Duration::from_secs(1));
        let allowed: Vec<Option<u64>> = (0..10).map(|_| t.allow(start)).collect();
        assert_eq!(allowed.iter().filter(|a| a.is_some()).count(), 3);
        assert_eq!(t.suppressed(), 7);
        assert_eq!(t.allow(start + Duration::from_secs(1)), Some(7));
        assert_eq!(t.suppressed(), 0);
    }
}
