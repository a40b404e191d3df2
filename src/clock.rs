//! Versions from the writer's clock: a hybrid logical clock in
//! milliseconds since 1970.
//!
//! A write's version is the writer's wall clock, or one above the version
//! it replaces, whichever is higher. Counting writes from 1 instead (as
//! zproto-rs nodes did before) breaks after a restart: the new process
//! numbers its writes from 1 again under a new origin, so a copy its
//! earlier process wrote (still on its way, or held by a node that was
//! paused) outranks every write of the new one, its tombstones included,
//! until the owner answers it. With the clock, a restarted process writes
//! above everything its earlier process wrote, as long as the host's
//! clock did not go back by more than the restart took.
//!
//! The clock also bounds what a peer can claim: a version more than
//! [`MAX_AHEAD`] ahead of the receiver's clock is refused. So no write can
//! pin an endpoint at a version its owner cannot answer (there is no
//! ceiling to reach: versions are 64 bits), and the owner's answer, one
//! above the highest acceptable forgery, is accepted by every node whose
//! clock is within [`MAX_AHEAD`] of the receiver's, after at most the skew
//! between them.
//!
//! The node reads the clock through [`WallClock`], which the driver gives
//! it (a simulator gives one from its simulated time): the wall time at
//! one instant, counted on from there with the monotonic clock the driver
//! passes to every call. A clock stepped during the node's life (by NTP,
//! say) does not move its versions back.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How far ahead of the receiver's clock a version may be: more than the
/// skew between honest hosts' clocks, so that their writes are taken. A
/// host whose clock is further ahead than this has its writes refused
/// (and logged) everywhere.
pub const MAX_AHEAD: Duration = Duration::from_secs(600);

/// The wall clock as a node reads it: milliseconds since 1970 at one
/// instant of the monotonic clock, and from there on by that clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClock {
    at: Instant,
    unix_ms: u64,
}

impl WallClock {
    /// The clock that reads `unix_ms` milliseconds since 1970 at `at`.
    pub fn new(at: Instant, unix_ms: u64) -> Self {
        Self { at, unix_ms }
    }

    /// The operating system's clock, now.
    pub fn system() -> Self {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self::new(Instant::now(), unix_ms)
    }

    /// Milliseconds since 1970 at `now`.
    pub fn millis(&self, now: Instant) -> u64 {
        if now >= self.at {
            self.unix_ms.saturating_add(millis(now - self.at))
        } else {
            self.unix_ms.saturating_sub(millis(self.at - now))
        }
    }

    /// The version of a write at `now` that replaces `held` (0: nothing).
    pub fn next_version(&self, held: u64, now: Instant) -> u64 {
        held.saturating_add(1).max(self.millis(now))
    }

    /// Whether a peer's `version` is further ahead of our clock than
    /// [`MAX_AHEAD`] allows.
    pub fn too_far_ahead(&self, version: u64, now: Instant) -> bool {
        version > self.millis(now).saturating_add(millis(MAX_AHEAD))
    }

    /// When our clock will be close enough to `version` to take it: now,
    /// if it is already.
    pub fn acceptable_at(&self, version: u64, now: Instant) -> Instant {
        let wait = version
            .saturating_sub(millis(MAX_AHEAD))
            .saturating_sub(self.millis(now));
        now + Duration::from_millis(wait)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_the_clock_and_stay_above_what_they_replace() {
        let start = Instant::now();
        let clock = WallClock::new(start, 1_000_000);
        let later = start + Duration::from_millis(250);
        assert_eq!(clock.millis(later), 1_000_250);
        assert_eq!(clock.next_version(0, later), 1_000_250);
        // A write above the clock (many writes in one millisecond, or a
        // peer whose clock is ahead) is followed by one above it.
        assert_eq!(clock.next_version(2_000_000, later), 2_000_001);
        // No ceiling to saturate at below u64.
        assert_eq!(clock.next_version(u64::MAX, later), u64::MAX);
    }

    #[test]
    fn a_version_is_refused_only_past_max_ahead() {
        let start = Instant::now();
        let clock = WallClock::new(start, 5_000_000);
        let ahead = u64::try_from(MAX_AHEAD.as_millis()).expect("fits");
        assert!(!clock.too_far_ahead(5_000_000 + ahead, start));
        assert!(clock.too_far_ahead(5_000_000 + ahead + 1, start));
        // A minute later the same version is fine.
        assert!(!clock.too_far_ahead(5_000_000 + ahead + 1, start + Duration::from_secs(60)));
        // And it would be taken a millisecond later.
        let at = clock.acceptable_at(5_000_000 + ahead + 1, start);
        assert_eq!(at, start + Duration::from_millis(1));
        assert!(!clock.too_far_ahead(5_000_000 + ahead + 1, at));
    }

    #[test]
    fn an_instant_before_the_reading_counts_back() {
        let start = Instant::now() + Duration::from_secs(1);
        let clock = WallClock::new(start, 10_000);
        assert_eq!(clock.millis(start - Duration::from_millis(400)), 9_600);
    }
}
