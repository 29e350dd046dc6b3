//! When to answer new connections with a QUIC Retry
//! (`gateway.retry_above_handshakes_per_s`; `docs/protocol.md` §8).
//!
//! A Retry (RFC 9000 §8.1.2) costs the gateway one small stateless packet
//! and an honest client one round trip, and proves the client's address
//! before any connection state exists: a spoofed flood then allocates
//! nothing and spends no crypto. Because it costs every client that round
//! trip, it is switched on only under load: when the handshakes from
//! unvalidated addresses that one core sees pass the threshold within one
//! second. It is switched off again only after a whole second below half
//! the threshold, and never before it has been on for [`RETRY_HOLD`], so
//! a flood at the threshold cannot make it flap.
//!
//! Sans-IO: the engine reports each unvalidated handshake with its `now`
//! and asks [`RetryPolicy::retry`]; nothing here reads a clock. Windows are
//! fixed one-second buckets: switching on happens at the handshake that
//! crosses the threshold, switching off at the first look after a quiet
//! window.

use std::time::{Duration, Instant};

/// The least time Retry stays on once switched on.
pub const RETRY_HOLD: Duration = Duration::from_secs(5);

/// Length of one counting window.
const WINDOW: Duration = Duration::from_secs(1);

/// The Retry switch of one gateway core.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Unvalidated handshakes per window that switch Retry on; 0 = always.
    above: u32,
    window_start: Instant,
    /// Unvalidated handshakes in the current window.
    count: u32,
    /// When Retry was switched on, if it is.
    on_since: Option<Instant>,
    engaged: u64,
}

impl RetryPolicy {
    /// Retry on above `above` unvalidated handshakes per second (0: Retry
    /// always; `u32::MAX`: never), starting at `now`.
    pub fn new(above: u32, now: Instant) -> Self {
        Self {
            above,
            window_start: now,
            count: 0,
            on_since: (above == 0).then_some(now),
            engaged: 0,
        }
    }

    /// A handshake from an address not yet validated arrived at `now`:
    /// whether to answer it with Retry.
    pub fn retry(&mut self, now: Instant) -> bool {
        if self.above == 0 {
            return true;
        }
        self.roll(now);
        self.count = self.count.saturating_add(1);
        if self.on_since.is_none() && self.count > self.above {
            self.on_since = Some(now);
            self.engaged += 1;
        }
        self.on_since.is_some()
    }

    /// Whether Retry is on at `now`.
    pub fn is_on(&mut self, now: Instant) -> bool {
        if self.above != 0 {
            self.roll(now);
        }
        self.on_since.is_some()
    }

    /// How many times Retry was switched on.
    pub fn engaged(&self) -> u64 {
        self.engaged
    }

    /// Closes the windows `now` is past; a quiet one may switch Retry off.
    fn roll(&mut self, now: Instant) {
        if now.saturating_duration_since(self.window_start) < WINDOW {
            return;
        }
        // A window with no handshakes at all since the last one counts as
        // quiet too, however many passed.
        let last = if now.saturating_duration_since(self.window_start) >= 2 * WINDOW {
            0
        } else {
            self.count
        };
        let passed =
            now.saturating_duration_since(self.window_start).as_nanos() / WINDOW.as_nanos();
        self.window_start += WINDOW * u32::try_from(passed).unwrap_or(u32::MAX);
        self.count = 0;
        if let Some(since) = self.on_since {
            let held = now.saturating_duration_since(since) >= RETRY_HOLD;
            if held && last < self.above / 2 {
                self.on_since = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// `per_s` handshakes a second, evenly, for `secs` seconds from `*t`;
    /// returns how many were told to retry and advances `*t`.
    fn load(p: &mut RetryPolicy, t: &mut Instant, per_s: u32, secs: u32) -> u32 {
        let mut retried = 0;
        let gap = Duration::from_secs(1) / per_s;
        for _ in 0..per_s * secs {
            if p.retry(*t) {
                retried += 1;
            }
            *t += gap;
        }
        retried
    }

    #[test]
    fn below_the_threshold_nothing_is_retried() {
        let mut t = Instant::now();
        let mut p = RetryPolicy::new(100, t);
        assert_eq!(load(&mut p, &mut t, 100, 10), 0);
        assert!(!p.is_on(t));
        assert_eq!(p.engaged(), 0);
    }

    #[test]
    fn a_flood_switches_it_on_at_once_and_it_goes_off_after_the_hold() {
        let t0 = Instant::now();
        let mut t = t0;
        let mut p = RetryPolicy::new(100, t);
        // 1000/s: the 101st handshake of the first second is retried.
        let retried = load(&mut p, &mut t, 1000, 1);
        assert_eq!(retried, 1000 - 100);
        assert!(p.is_on(t));
        // The flood goes on for 3 s, then stops.
        load(&mut p, &mut t, 1000, 3);
        assert!(p.is_on(t));
        // Quiet: still on until the hold (5 s from switching on) is over.
        t += Duration::from_millis(500);
        assert!(p.is_on(t));
        t = t0 + RETRY_HOLD + 200 * MS;
        assert!(!p.is_on(t), "off after the hold and a quiet window");
        assert_eq!(p.engaged(), 1);
    }

    #[test]
    fn a_load_between_half_and_the_threshold_keeps_it_on_without_flapping() {
        let mut t = Instant::now();
        let mut p = RetryPolicy::new(100, t);
        load(&mut p, &mut t, 200, 1);
        assert!(p.is_on(t));
        // 80/s: below the threshold, above half of it. Stays on, once.
        let retried = load(&mut p, &mut t, 80, 20);
        assert_eq!(retried, 80 * 20);
        assert_eq!(p.engaged(), 1);
        // 40/s: below half: off after the first such window, and stays off.
        let retried = load(&mut p, &mut t, 40, 20);
        assert!(retried <= 80, "{retried} retried after the load fell");
        assert!(!p.is_on(t));
        assert_eq!(p.engaged(), 1);
    }

    #[test]
    fn zero_retries_everything() {
        let mut t = Instant::now();
        let mut p = RetryPolicy::new(0, t);
        assert_eq!(load(&mut p, &mut t, 1, 3), 3);
        assert!(p.is_on(t + Duration::from_secs(100)));
    }
}
