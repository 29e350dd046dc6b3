//! A gateway core's side of the degradation ladder: it measures the core's
//! load as the loop turns, gives the ladder (`lanegate_control::Ladder`)
//! one sample every `overload.sample_ms`, and says what the level asks of
//! the core's links (`Shedding`). The policy itself is sans-IO and lives in
//! `lanegate-control`; this is the sampling.
//!
//! Per turn it costs a few additions (the loop reads the clock once more at
//! the end of a turn, never per packet). Per sample it reads the thread's
//! CPU time (its busy share: unlike wall-clock work time, it does not grow
//! when other work on the host deschedules the thread), the rings' fill,
//! the engine's handshake count and the kernel's receive drops on the
//! core's socket, which the shard load thread reads from `/proc/net/udp`
//! off the datapath and leaves on a [`KernelDropBoard`]. Lag is the mean over the sample's
//! turns, so one late wake-up does not count as overload.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lanegate_common::config::OverloadConfig;
use lanegate_control::{Ladder, Level, Signals, Transition};

/// Each core socket's kernel receive drops as last read: written by the
/// thread that reads the kernel's tables (never a datapath core), read by
/// each core once per sample.
#[derive(Debug)]
pub struct KernelDropBoard {
    /// `UNKNOWN` where the table had no figure.
    per_core: Box<[AtomicU64]>,
    /// Cores whose backend counts their drops itself (io_uring's
    /// `SO_RXQ_OVFL`): when every core does, the table is not read at all.
    own: AtomicU64,
}

const UNKNOWN: u64 = u64::MAX;

impl KernelDropBoard {
    /// A board for `cores` cores, every figure unknown.
    pub fn new(cores: usize) -> Self {
        Self {
            per_core: (0..cores).map(|_| AtomicU64::new(UNKNOWN)).collect(),
            own: AtomicU64::new(0),
        }
    }

    /// One more core's backend counts its drops itself (each core says so
    /// once, at start).
    pub fn set_own(&self) {
        self.own.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether every core counts its drops itself, so nobody needs the
    /// kernel's table.
    pub fn all_own(&self) -> bool {
        self.own.load(Ordering::Relaxed) >= self.per_core.len() as u64
    }

    /// Records what the kernel's tables said, in core order.
    pub fn set(&self, drops: &[Option<u64>]) {
        for (slot, d) in self.per_core.iter().zip(drops) {
            // A real count never reaches u64::MAX.
            slot.store(d.unwrap_or(UNKNOWN), Ordering::Relaxed);
        }
    }

    /// Core `core`'s drops so far, if known.
    pub fn get(&self, core: usize) -> Option<u64> {
        self.per_core
            .get(core)
            .map(|d| d.load(Ordering::Relaxed))
            .filter(|&d| d != UNKNOWN)
    }
}

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
    /// The socket's kernel drops at `since`, if known.
    kernel_drops_at: Option<u64>,
}

/// What a core reads at the end of a sample.
#[derive(Clone, Copy, Debug, Default)]
pub struct CoreSample {
    /// The thread's CPU time so far (`None` where the clock is missing:
    /// the wall-clock work time stands in).
    pub cpu: Option<Duration>,
    /// The fullest ring's fill.
    pub ring_fill_percent: u32,
    /// The engine's handshake count so far.
    pub handshakes: u64,
    /// The socket's receive drops so far, as the kernel counts them
    /// (`None` where the table is not readable).
    pub kernel_drops: Option<u64>,
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
            kernel_drops_at: None,
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

    /// Closes the sample at `now` with what the core read (`sample`);
    /// returns the ladder's step, if it took one.
    pub fn sample(&mut self, now: Instant, sample: CoreSample) -> Option<Transition> {
        let span = now
            .saturating_duration_since(self.since)
            .max(Duration::from_micros(1));
        let per_s = |n: u64| {
            let ns = u128::from(n) * 1_000_000_000 / span.as_nanos().max(1);
            u64::try_from(ns).unwrap_or(u64::MAX)
        };
        let worked = match (sample.cpu, self.cpu_at) {
            (Some(now_cpu), Some(then)) => now_cpu.saturating_sub(then),
            _ => self.busy,
        };
        let busy_percent = worked.as_nanos() * 100 / span.as_nanos().max(1);
        let mean_lag = self.lag / self.turns.max(1);
        // The first reading only sets the baseline: drops from before this
        // core started serving are not this sample's.
        let kernel_drops = match (sample.kernel_drops, self.kernel_drops_at) {
            (Some(now_drops), Some(then)) => now_drops.saturating_sub(then),
            _ => 0,
        };
        let signals = Signals {
            busy_percent: u32::try_from(busy_percent).unwrap_or(u32::MAX),
            lag_us: u64::try_from(mean_lag.as_micros()).unwrap_or(u64::MAX),
            ring_fill_percent: sample.ring_fill_percent,
            handshakes_per_s: per_s(sample.handshakes.saturating_sub(self.handshakes_at)),
            kernel_drops_per_s: per_s(kernel_drops),
            ..Signals::default()
        };
        self.since = now;
        self.busy = Duration::ZERO;
        self.cpu_at = sample.cpu;
        self.lag = Duration::ZERO;
        self.turns = 0;
        self.handshakes_at = sample.handshakes;
        self.kernel_drops_at = sample.kernel_drops;
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

    fn reading(cpu: Option<Duration>, ring_fill_percent: u32, handshakes: u64) -> CoreSample {
        CoreSample {
            cpu,
            ring_fill_percent,
            handshakes,
            kernel_drops: None,
        }
    }

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
            load.sample(now, reading(None, 10, 0));
        }
        assert_eq!(
            load.level(),
            Level::DeferNormal,
            "90 % is past level 2's 85 %"
        );
        let shedding = Shedding::for_core(load.level());
        assert_eq!(shedding.from, Some(Lane::Bulk));
        assert!(shedding.defer_normal);
        // Idle: back to normal within the dwell of each step.
        for _ in 0..40 {
            now += Duration::from_millis(200);
            load.sample(now, reading(None, 0, 0));
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
        load.sample(t0, reading(Some(Duration::ZERO), 0, 0));
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
            load.sample(now, reading(Some(Duration::from_millis(20)), 0, 0)),
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
            load.sample(now, reading(None, 0, handshakes));
        }
        assert_eq!(load.level(), Level::Protect);
        assert!(Shedding::for_core(load.level()).refuse_sessions);
        assert!(!Shedding::for_core(load.level()).sheds(Lane::Critical));
    }

    #[test]
    fn kernel_drops_climb_the_ladder_from_their_first_reading() {
        let cfg = OverloadConfig::default();
        let t0 = Instant::now();
        let mut load = CoreLoad::new(&cfg, t0);
        let mut now = t0;
        // Drops from before the first reading are a baseline, not load.
        let mut drops = 1_000_000;
        load.sample(
            now,
            CoreSample {
                kernel_drops: Some(drops),
                ..CoreSample::default()
            },
        );
        assert_eq!(load.level(), Level::Normal);
        // Then 2000 a second, twice full scale, for a second.
        for _ in 0..5 {
            now += Duration::from_millis(200);
            drops += 400;
            load.sample(
                now,
                CoreSample {
                    kernel_drops: Some(drops),
                    ..CoreSample::default()
                },
            );
        }
        assert!(load.level() > Level::Normal, "{:?}", load.level());
        // An unreadable table reads as no drops, never as load.
        for _ in 0..40 {
            now += Duration::from_millis(200);
            load.sample(now, CoreSample::default());
        }
        assert_eq!(load.level(), Level::Normal);
    }

    #[test]
    fn the_kernel_drop_board_keeps_unknown_apart_from_zero() {
        let board = KernelDropBoard::new(2);
        assert_eq!(board.get(0), None);
        board.set(&[Some(0), None]);
        assert_eq!((board.get(0), board.get(1)), (Some(0), None));
        board.set(&[Some(7), Some(3)]);
        assert_eq!(
            (board.get(0), board.get(1), board.get(2)),
            (Some(7), Some(3), None)
        );
    }
}
