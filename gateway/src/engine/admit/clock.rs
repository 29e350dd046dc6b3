//! The time governor sees: ns since the limiter's epoch, set from the
//! engine's `now`, never read from the operating system.
//!
//! Governor reads time from a [`Clock`]. [`SetClock`] reads as whatever the
//! limiter last set it to, so a GCRA step at `now` is "set, then check".
//! [`EpochTime`] turns the engine's `Instant`s into those ns, keeping the
//! last conversion because one loop turn passes the same `now` for every
//! message.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use governor::clock::Clock;
use governor::nanos::Nanos;

/// A governor [`Clock`] that reads as whatever it was last set to: ns since
/// the owner's epoch.
///
/// It reads 0 when governor captures the limiter's start, so the TATs
/// governor stores are also ns since the epoch.
#[derive(Debug, Default)]
pub(super) struct SetClock {
    /// Atomic only so the limiter stays `Send + Sync` without `unsafe`: the
    /// one writer is the limiter that owns it, just before it reads.
    now_ns: AtomicU64,
}

impl SetClock {
    pub(super) fn set(&self, now_ns: u64) {
        self.now_ns.store(now_ns, Ordering::Relaxed);
    }
}

impl Clock for SetClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::new(self.now_ns.load(Ordering::Relaxed))
    }
}

/// An `Instant` as ns since an epoch, the time governor sees.
///
/// The engine passes the same `now` for every message of one loop turn, and
/// turning an `Instant` into ns costs more than the GCRA step itself (see the
/// `admit` bench), so the last conversion is kept.
#[derive(Clone, Copy, Debug)]
pub(super) struct EpochTime {
    epoch: Instant,
    last: Instant,
    last_ns: u64,
}

impl EpochTime {
    pub(super) fn new(epoch: Instant) -> Self {
        Self {
            epoch,
            last: epoch,
            last_ns: 0,
        }
    }

    #[inline]
    pub(super) fn nanos(&mut self, now: Instant) -> u64 {
        if now != self.last {
            self.last = now;
            self.last_ns = nanos_since(self.epoch, now);
        }
        self.last_ns
    }
}

/// Nanoseconds from `epoch` to `now`: 0 if `now` is earlier, saturating
/// after about 584 years.
#[inline]
pub(super) fn nanos_since(epoch: Instant, now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn epoch_time_counts_from_the_epoch_and_treats_earlier_as_the_epoch() {
        let t0 = Instant::now() + Duration::from_secs(1);
        let mut time = EpochTime::new(t0);
        assert_eq!(time.nanos(t0), 0);
        assert_eq!(time.nanos(t0 + Duration::from_micros(3)), 3_000);
        assert_eq!(time.nanos(t0 + Duration::from_micros(3)), 3_000, "cached");
        assert_eq!(time.nanos(t0 - Duration::from_millis(1)), 0);
        assert_eq!(nanos_since(t0, t0 + Duration::from_secs(2)), 2_000_000_000);
    }

    #[test]
    fn set_clock_reads_what_it_was_last_set_to() {
        let clock = SetClock::default();
        assert_eq!(clock.now(), Nanos::new(0), "governor's start is the epoch");
        clock.set(42);
        assert_eq!(clock.now(), Nanos::new(42));
    }
}
