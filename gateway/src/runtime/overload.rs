//! A gateway core's side of the degradation ladder: it measures the core's
//! load as the loop turns, gives the ladder (`lanegate_control::Ladder`)
//! one sample every `overload.sample_ms`, and says what the level asks of
//! the core's links (`Shedding`). The policy itself is sans-IO and lives in
//! `lanegate-control`; this is the sampling.
//!
//! Per turn it costs two additions (the loop reads the clock once more at
//! the end of a turn, never per packet). Per sample it reads the rings'
//! fill and the engine's handshake count.

use std::time::{Duration, Instant};

use lanegate_common::config::OverloadConfig;
use lanegate_common::lanes::Lane;
use lanegate_control::{Ladder, Level, Signals, Transition};
use lanegate_shard::port::Shedding;

/// What one core's loop feeds the ladder, and what the ladder decided.
#[derive(Debug)]
pub struct CoreLoad {
    ladder: Ladder,
    every: Duration,
    /// Start of the current sample.
    since: Instant,
    /// Time spent working (not waiting) since `since`.
    busy: Duration,
    /// The latest turn start against its wake-up target, at most, since
    /// `since`.
    lag: Duration,
    /// The engine's handshake count at `since`.
    handshakes_at: u64,
}

/// What a level means for the links: `bulk` from level 1, `normal` from
/// level 2, `high` from level 3 (the game is told to thin it; the gateway
/// sheds what exceeds that only at protect), and new sessions refused at
/// protect. `critical` is never shed by the ladder.
pub fn shedding(level: Level) -> Shedding {
    let from = match level {
        Level::Normal => None,
        Level::ShedBulk => Some(Lane::Bulk),
        Level::DeferNormal | Level::ThinHigh => Some(Lane::Normal),
        Level::Protect => Some(Lane::Normal),
    };
    Shedding {
        from,
        refuse_sessions: level == Level::Protect,
    }
}

impl CoreLoad {
    /// A core at level normal from `now`.
    pub fn new(cfg: &OverloadConfig, now: Instant) -> Self {
        Self {
            ladder: Ladder::new(cfg, now),
            every: Duration::from_millis(cfg.sample_ms),
            since: now,
            busy: Duration::ZERO,
            lag: Duration::ZERO,
            handshakes_at: 0,
        }
    }

    /// One loop turn: it woke at `woke` (`lag` after it meant to, zero if
    /// early), and finished its work at `done`.
    pub fn turn(&mut self, woke: Instant, lag: Duration, done: Instant) {
        self.busy += done.saturating_duration_since(woke);
        self.lag = self.lag.max(lag);
    }

    /// Whether a sample is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.since) >= self.every
    }

    /// Closes the sample at `now` with the rings' fill and the engine's
    /// handshake count so far; returns the ladder's step, if it took one.
    pub fn sample(
        &mut self,
        now: Instant,
        ring_fill_percent: u32,
        handshakes: u64,
    ) -> Option<Transition> {
        let span = now
            .saturating_duration_since(self.since)
            .max(Duration::from_micros(1));
        let per_s = |n: u64| {
            let ns = u128::from(n) * 1_000_000_000 / span.as_nanos().max(1);
            u64::try_from(ns).unwrap_or(u64::MAX)
        };
        let busy_percent = self.busy.as_nanos() * 100 / span.as_nanos().max(1);
        let signals = Signals {
            busy_percent: u32::try_from(busy_percent).unwrap_or(u32::MAX),
            lag_us: u64::try_from(self.lag.as_micros()).unwrap_or(u64::MAX),
            ring_fill_percent,
            handshakes_per_s: per_s(handshakes.saturating_sub(self.handshakes_at)),
            ..Signals::default()
        };
        self.since = now;
        self.busy = Duration::ZERO;
        self.lag = Duration::ZERO;
        self.handshakes_at = handshakes;
        self.ladder.update(now, &signals)
    }

    /// The level now.
    pub fn level(&self) -> Level {
        self.ladder.level()
    }

    /// Steps taken since start.
    pub fn transitions(&self) -> u64 {
        self.ladder.transitions()
    }

    /// How long a level above normal has been held, once past
    /// `overload.stuck_after_ms`.
    pub fn stuck(&self, now: Instant) -> Option<Duration> {
        self.ladder.stuck(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_loop_climbs_and_an_idle_one_comes_back() {
        let cfg = OverloadConfig::default();
        let t0 = Instant::now();
        let mut load = CoreLoad::new(&cfg, t0);
        let mut now = t0;
        // Ten samples of a loop working 90 % of the time.
        for _ in 0..10 {
            for _ in 0..100 {
                let woke = now;
                now += Duration::from_micros(1_800);
                load.turn(woke, Duration::ZERO, now);
                now += Duration::from_micros(200);
            }
            assert!(load.due(now));
            load.sample(now, 10, 0);
        }
        assert_eq!(
            load.level(),
            Level::DeferNormal,
            "90 % is past level 2's 85 %"
        );
        assert_eq!(shedding(load.level()).from, Some(Lane::Normal));
        // Idle: back to normal within the dwell of each step.
        for _ in 0..40 {
            now += Duration::from_millis(200);
            load.sample(now, 0, 0);
        }
        assert_eq!(load.level(), Level::Normal);
        assert_eq!(shedding(load.level()), Shedding::default());
        assert_eq!(load.transitions(), 4);
    }

    #[test]
    fn a_handshake_storm_alone_protects_the_core() {
        let cfg = OverloadConfig::default();
        let t0 = Instant::now();
        let mut load = CoreLoad::new(&cfg, t0);
        let mut now = t0;
        let mut handshakes = 0;
        for _ in 0..5 {
            now += Duration::from_millis(200);
            handshakes += 1_000; // 5000 per second, 250 % of full scale
            load.sample(now, 0, handshakes);
        }
        assert_eq!(load.level(), Level::Protect);
        assert!(shedding(load.level()).refuse_sessions);
        assert!(!shedding(load.level()).sheds(Lane::Critical));
    }
}
