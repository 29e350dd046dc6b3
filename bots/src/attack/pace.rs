//! The floods' pacer: when the next send is due, so a flood keeps its
//! asked rate without spinning a core between sends.
//!
//! Sends are due at `start + k / rate`. The sender asks [`Pacer::burst`]
//! how many are due now, sends them back to back, and, when none is due,
//! sleeps until the next one is, but never less than [`SLEEP_MIN`]: above
//! 2000 a second the sends then go in bursts every half millisecond instead
//! of the thread spinning between sends 83 µs apart (which the first
//! version did, and it cost the attacker most of a core at 12 000
//! Initials a second). A sender that falls behind (a descheduled thread)
//! catches up in bursts of at most [`BURST_MAX`], so the rate over the run
//! is the asked one and no instant is wildly over it.

use std::time::{Duration, Instant};

/// Shortest sleep between bursts: a wake-up costs a few µs, so sleeping
/// for less than this would spend more in wake-ups than it saves.
pub const SLEEP_MIN: Duration = Duration::from_micros(500);
/// Most sends in one burst.
pub const BURST_MAX: u64 = 256;

/// The schedule of one flood.
#[derive(Debug)]
pub struct Pacer {
    start: Instant,
    end: Instant,
    period: Duration,
    sent: u64,
}

impl Pacer {
    /// `rate_per_s` sends a second from `start` until `start + duration`.
    pub fn new(start: Instant, duration: Duration, rate_per_s: u32) -> Self {
        Self {
            start,
            end: start + duration,
            period: Duration::from_secs(1) / rate_per_s.max(1),
            sent: 0,
        }
    }

    /// Sends due at `now` (at most [`BURST_MAX`]), counted as sent; `None`
    /// once the run is over. Zero means: sleep for [`Pacer::sleep_for`].
    pub fn burst(&mut self, now: Instant) -> Option<u64> {
        if now >= self.end {
            return None;
        }
        let elapsed = now.saturating_duration_since(self.start);
        let due_total = u64::try_from(elapsed.as_nanos() / self.period.as_nanos().max(1))
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let due = due_total.saturating_sub(self.sent).min(BURST_MAX);
        self.sent += due;
        Some(due)
    }

    /// How long to sleep at `now`: zero when a send is due, else until the
    /// next one is, at least [`SLEEP_MIN`].
    pub fn sleep_for(&self, now: Instant) -> Duration {
        let next = self.start
            + self
                .period
                .saturating_mul(u32::try_from(self.sent).unwrap_or(u32::MAX));
        let wait = next.saturating_duration_since(now);
        if wait.is_zero() {
            Duration::ZERO
        } else {
            wait.max(SLEEP_MIN)
        }
    }

    /// Blocks the thread until the next send is due or the run is over.
    pub fn wait(&self) {
        let wait = self.sleep_for(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait.min(self.end.saturating_duration_since(Instant::now())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_at_1000_per_s_is_1000_sends_in_bursts() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, Duration::from_secs(1), 1000);
        assert_eq!(p.burst(t0), Some(1), "the first is due at once");
        assert_eq!(p.burst(t0), Some(0));
        assert_eq!(p.sleep_for(t0), Duration::from_millis(1));
        // Sends closer than the shortest sleep are batched, not spun for.
        let mut fast = Pacer::new(t0, Duration::from_secs(1), 12_000);
        assert_eq!(fast.burst(t0), Some(1));
        assert_eq!(fast.sleep_for(t0), SLEEP_MIN);
        assert_eq!(fast.burst(t0 + SLEEP_MIN), Some(6));
        // 10 ms later, ten more are due.
        assert_eq!(p.burst(t0 + Duration::from_millis(10)), Some(10));
        let mut total = 11;
        let mut at = t0 + Duration::from_millis(10);
        while let Some(n) = p.burst(at) {
            total += n;
            at += Duration::from_micros(700);
        }
        assert!((999..=1001).contains(&total), "{total}");
    }

    #[test]
    fn a_late_sender_catches_up_in_bounded_bursts() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, Duration::from_secs(10), 100_000);
        assert_eq!(p.burst(t0 + Duration::from_secs(1)), Some(BURST_MAX));
        assert_eq!(p.sleep_for(t0 + Duration::from_secs(1)), Duration::ZERO);
        assert_eq!(p.burst(t0 + Duration::from_secs(10)), None);
    }
}
