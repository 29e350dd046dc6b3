//! Where the runtime gets the time from.
//!
//! The shard core never calls `Instant::now()` itself: it asks a [`Clock`].
//! The thread driver passes a [`SystemClock`]; tests pass a [`VirtualClock`]
//! they advance by hand, so a tick that "takes" 40 ms is a tick whose game
//! code advanced the virtual clock by 40 ms, and every run is reproducible.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A source of monotonic time.
pub trait Clock {
    /// The current time.
    fn now(&self) -> Instant;
}

/// The operating system's monotonic clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to. Clones share the same time, so a
/// test can hand one to a game and keep another.
#[derive(Clone, Debug)]
pub struct VirtualClock {
    base: Instant,
    elapsed_ns: Arc<AtomicU64>,
}

impl VirtualClock {
    /// A clock standing at an arbitrary fixed origin.
    pub fn new() -> Self {
        Self {
            base: Instant::now(),
            elapsed_ns: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.elapsed_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Time since the origin.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.elapsed_ns.load(Ordering::Relaxed))
    }
}

impl Default for VirtualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Instant {
        self.base + self.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_clock_moves_only_when_told() {
        let c = VirtualClock::new();
        let shared = c.clone();
        let t0 = c.now();
        assert_eq!(c.now(), t0);
        shared.advance(Duration::from_millis(5));
        assert_eq!(c.now() - t0, Duration::from_millis(5));
    }
}
