//! Rate limits for repeated warnings: a warning that can repeat (a ladder
//! stepping up and down, a full webhook queue) says at most one line per
//! period, and the next line it says tells how many were suppressed in
//! between, so a storm costs a few lines and loses no count.
//!
//! Sans-IO: [`WarnLimit::allow`] takes the caller's `now`, which every
//! caller already has; the caller logs with the count it returns.

use std::time::{Duration, Instant};

/// One warning site's limit.
#[derive(Clone, Copy, Debug)]
pub struct WarnLimit {
    period: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl WarnLimit {
    /// At most one line per `period`.
    pub const fn new(period: Duration) -> Self {
        Self {
            period,
            last: None,
            suppressed: 0,
        }
    }

    /// Whether to log now: `Some(n)` with the lines suppressed since the
    /// last one logged (log them as a `suppressed = n` field), or `None`
    /// to stay silent (counted).
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.period => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_period_and_the_next_one_counts_the_rest() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut limit = WarnLimit::new(10 * s);
        assert_eq!(limit.allow(t0), Some(0));
        for i in 1..=5 {
            assert_eq!(limit.allow(t0 + i * s), None);
        }
        assert_eq!(limit.allow(t0 + 10 * s), Some(5));
        assert_eq!(limit.allow(t0 + 11 * s), None);
        assert_eq!(limit.allow(t0 + 30 * s), Some(1));
    }
}
