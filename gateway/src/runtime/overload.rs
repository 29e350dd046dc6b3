//! A gateway core's side of the degradation ladder: it measures the core's
//! load as the loop turns, gives the ladder (`lanegate_control::Ladder`)
//! one sample every `overload.sample_ms`, and says what the level asks of
//! the core's links (`Shedding`). The policy itself is sans-IO and lives in
//! `lanegate-control`; this is the sampling.
//!
//! Per turn it costs a few additions (the loop reads the clock once more at
//! the end of a turn, never per packet). Per sample it reads the thread's
//! CPU time (its busy share: unlike wall-clock work time, it does not grow
//! when other work on the host deschedules the thread), the rings' fill
//! and the engine's handshake count. Lag is the mean over the sample's
//! turns, so one late wake-up does not count as overload.

use std::time::{Duration, Instant};

use lanegate_common::config::OverloadConfig;
use lanegate_control::{Ladder, Level, Signals, Transition};

/// What one core's loop feeds the ladder, and what the ladder decided.
#[derive(Debug)]
pub struct CoreLoad {
    ladder: Ladder,
    every: Duration,
    /// Start of the current sample.
    since: Instant,
    /// Wall-clock time spent working (not waiting) since `since`: the busy
    /// share where the thread's CPU time is not available.
    busy: Duration,
    /// The thread's CPU time at `since`, if the clock exists.
    cpu_at: Option<Duration>,
    /// Turn starts against their wake-up targets, summed, since `since`.
    lag: Duration,
    /// Turns since `since`.
    turns: u32,
    /// The engine's handshake count at `since`.
    handshakes_at: u64,
}

impl CoreLoad {
    /// A core at level normal from `now`.
    pub fn new(cfg: &OverloadConfig, now: Instant) -> Self {
        Self {
            ladder: Ladder::new(cfg, now),
            every: Duration::from_millis(cfg.sample_ms),
            since: now,
            busy: Duration::ZERO,
            cpu_at: None,
            lag: Duration::ZERO,
            turns: 0,
            handshakes_at: 0,
        }
    }

    /// One loop turn: it woke at `woke` (`lag` after it meant to, zero if
    /// early), and finished its work at `done`.
    pub fn turn(&mut self, woke: Instant, lag: Duration, done: Instant) {
        self.busy += done.saturating_duration_since(woke);
        self.lag += lag;
        self.turns = self.turns.saturating_add(1);
    }

    /// Whether a sample is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.since) >= self.every
    }

    /// Closes the sample at `now` with the thread's CPU time (`None` where
    /// the clock is missing: the wall-clock work time stands in), the
    /// rings' fill and the engine's handshake count so far; returns the
    /// ladder's step, if it took one.
    pub fn sample(
        &mut self,
        now: Instant,
        cpu: Option<Duration>,
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
        let worked = match (cpu, self.cpu_at) {
            (Some(now_cpu), Some(then)) => now_cpu.saturating_sub(then),
            _ => self.busy,
        };
        let busy_percent = worked.as_nanos() * 100 / span.as_nanos().max(1);
        let mean_lag = self.lag / self.turns.max(1);
        let signals = Signals {
            busy_percent: u32::try_from(busy_percent).unwrap_or(u32::MAX),
            lag_us: u64::try_from(mean_lag.as_micros()).unwrap_or(u64::MAX),
            ring_fill_percent,
            handshakes_per_s: per_s(handshakes.saturating_sub(self.handshakes_at)),
            ..Signals::default()
        };
        self.since = now;
        self.busy = Duration::ZERO;
        self.cpu_at = cpu;
        self.lag = Duration::ZERO;
        self.turns = 0;
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
    use lanegate_common::lanes::Lane;
    use lanegate_shard::port::Shedding;

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
            load.sample(now, None, 10, 0);
        }
        assert_eq!(
            load.level(),
            Level::DeferNormal,
            "90 % is past level 2's 85 %"
        );
        assert_eq!(Shedding::for_core(load.level()).from, Some(Lane::Normal));
        // Idle: back to normal within the dwell of each step.
        for _ in 0..40 {
            now += Duration::from_millis(200);
            load.sample(now, None, 0, 0);
        }
        assert_eq!(load.level(), Level::Normal);
        assert_eq!(Shedding::for_core(load.level()), Shedding::default());
        assert_eq!(load.transitions(), 4);
    }

    #[test]
    fn cpu_time_decides_over_wall_clock_and_lag_is_a_mean() {
        let cfg = OverloadConfig::default();
        let t0 = Instant::now();
        let mut load = CoreLoad::new(&cfg, t0);
        load.sample(t0, Some(Duration::ZERO), 0, 0);
        // Every turn looks busy by the wall clock (the thread was
        // descheduled), but the thread used 10 % of a CPU, and one turn in
        // a hundred woke 3 ms late.
        let mut now = t0;
        for i in 0..100 {
            let woke = now;
            now += Duration::from_millis(2);
            let lag = if i == 0 {
                Duration::from_millis(3)
            } else {
                Duration::ZERO
            };
            load.turn(woke, lag, now);
        }
        assert_eq!(
            load.sample(now, Some(Duration::from_millis(20)), 0, 0),
            None
        );
        assert_eq!(load.level(), Level::Normal);
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
            load.sample(now, None, 0, handshakes);
        }
        assert_eq!(load.level(), Level::Protect);
        assert!(Shedding::for_core(load.level()).refuse_sessions);
        assert!(!Shedding::for_core(load.level()).sheds(Lane::Critical));
    }
}
