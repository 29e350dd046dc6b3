//! The degradation ladder: from a core's (or a shard's) load signals to a
//! level, one step at a time, with hysteresis, a dwell time and a loud
//! report when a level cannot be left.
//!
//! Each sample, every signal becomes a pressure in percent of its full
//! scale ([`Signals::pressures`]) and the highest one is the pressure. The
//! ladder steps up one level when the pressure reaches the next level's
//! enter threshold, and down one level when it has been below the current
//! level's exit threshold and the level has been held for `dwell_ms`.
//! Since every exit threshold is below its enter threshold, a steady load
//! at a threshold holds its level instead of flapping.

use std::fmt;
use std::time::{Duration, Instant};

use lanegate_common::config::{OverloadConfig, PRESSURE_PERCENT_LIMIT};
pub use lanegate_common::degradation::Level;

/// Which signal a pressure comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    /// Share of the sample the loop spent working rather than waiting.
    Busy,
    /// How late loop turns started against when they meant to.
    Lag,
    /// How full the fullest ring to or from the shards is.
    RingFill,
    /// Shard tick time against its budget.
    Tick,
    /// Datagrams the kernel dropped on the socket.
    KernelDrops,
    /// New handshakes.
    Handshakes,
    /// How long messages waited for the shard's game (the shortest wait).
    Sojourn,
}

impl Signal {
    /// Every signal, in [`Signals::pressures`] order.
    pub const ALL: [Signal; 7] = [
        Signal::Busy,
        Signal::Lag,
        Signal::RingFill,
        Signal::Tick,
        Signal::KernelDrops,
        Signal::Handshakes,
        Signal::Sojourn,
    ];

    /// Its name, as logs write it.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Busy => "busy",
            Signal::Lag => "lag",
            Signal::RingFill => "ring_fill",
            Signal::Tick => "tick",
            Signal::KernelDrops => "kernel_drops",
            Signal::Handshakes => "handshakes",
            Signal::Sojourn => "sojourn",
        }
    }
}

/// One sample of load, as a core or shard measured it over the last
/// `sample_ms`. Signals a sampler does not have stay 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Signals {
    /// Time the loop worked, in percent of the sample.
    pub busy_percent: u32,
    /// The latest turn's lateness, at most, in µs.
    pub lag_us: u64,
    /// The fullest ring's fill, in percent of the slots its lane may use.
    pub ring_fill_percent: u32,
    /// Tick time in percent of the tick budget (p99 over the sample).
    pub tick_percent: u32,
    /// Kernel receive drops per second.
    pub kernel_drops_per_s: u64,
    /// New handshakes per second.
    pub handshakes_per_s: u64,
    /// The shortest wait of a message for the game over the sample, in µs.
    pub sojourn_us: u64,
}

impl Signals {
    /// Each signal as a pressure in percent of its full scale (capped at
    /// [`PRESSURE_PERCENT_LIMIT`]), in [`Signal::ALL`] order.
    pub fn pressures(&self, cfg: &OverloadConfig) -> [u32; Signal::ALL.len()] {
        let scaled = |v: u64, full: u64| {
            let p = v.saturating_mul(100) / full.max(1);
            u32::try_from(p).unwrap_or(u32::MAX)
        };
        [
            self.busy_percent,
            scaled(self.lag_us, cfg.lag_full_us),
            self.ring_fill_percent,
            self.tick_percent,
            scaled(self.kernel_drops_per_s, cfg.kernel_drops_per_s_full),
            scaled(self.handshakes_per_s, cfg.handshakes_per_s_full),
            scaled(self.sojourn_us, cfg.sojourn_full_us),
        ]
        .map(|p| p.min(PRESSURE_PERCENT_LIMIT))
    }

    /// The highest pressure and the signal it comes from (the first, on a
    /// tie).
    pub fn pressure(&self, cfg: &OverloadConfig) -> (Signal, u32) {
        let p = self.pressures(cfg);
        let mut top = (Signal::ALL[0], p[0]);
        for (s, &v) in Signal::ALL.iter().zip(&p).skip(1) {
            if v > top.1 {
                top = (*s, v);
            }
        }
        top
    }
}

/// A step of the ladder, with what caused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The level before.
    pub from: Level,
    /// The level after.
    pub to: Level,
    /// The signal with the highest pressure.
    pub signal: Signal,
    /// Its pressure, in percent.
    pub pressure_percent: u32,
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "level {} -> {}: {} at {} %",
            self.from,
            self.to,
            self.signal.name(),
            self.pressure_percent
        )
    }
}

/// One core's or shard's ladder.
#[derive(Clone, Debug)]
pub struct Ladder {
    cfg: OverloadConfig,
    level: Level,
    /// When the current level was entered.
    since: Instant,
    /// Steps taken, up and down, since start.
    transitions: u64,
}

impl Ladder {
    /// A ladder at [`Level::Normal`] from `now`, with `cfg`'s thresholds
    /// (which must have passed validation).
    pub fn new(cfg: &OverloadConfig, now: Instant) -> Self {
        Self {
            cfg: cfg.clone(),
            level: Level::Normal,
            since: now,
            transitions: 0,
        }
    }

    /// The current level.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Steps taken since start.
    pub fn transitions(&self) -> u64 {
        self.transitions
    }

    /// Takes one sample: returns the step it caused, if any.
    pub fn update(&mut self, now: Instant, signals: &Signals) -> Option<Transition> {
        let (signal, pressure) = signals.pressure(&self.cfg);
        let enter = self.cfg.enter_percent.to_array();
        let exit = self.cfg.exit_percent.to_array();
        let next = self.level.up();
        let to = if next != self.level && pressure >= enter[next as usize - 1] {
            next
        } else if self.level != Level::Normal
            && pressure < exit[self.level as usize - 1]
            && now.saturating_duration_since(self.since) >= self.dwell()
        {
            self.level.down()
        } else {
            return None;
        };
        let step = Transition {
            from: self.level,
            to,
            signal,
            pressure_percent: pressure,
        };
        self.level = to;
        self.since = now;
        self.transitions += 1;
        Some(step)
    }

    /// How long the current level above normal has been held, once that is
    /// past `stuck_after_ms`: the host needs capacity or a drain. `None` at
    /// normal or before then.
    pub fn stuck(&self, now: Instant) -> Option<Duration> {
        let held = now.saturating_duration_since(self.since);
        (self.level != Level::Normal && held >= Duration::from_millis(self.cfg.stuck_after_ms))
            .then_some(held)
    }

    fn dwell(&self) -> Duration {
        Duration::from_millis(self.cfg.dwell_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy(percent: u32) -> Signals {
        Signals {
            busy_percent: percent,
            ..Signals::default()
        }
    }

    /// Samples `signals` every `sample_ms` for `d`; returns the levels seen.
    fn run(ladder: &mut Ladder, now: &mut Instant, d: Duration, signals: Signals) -> Vec<Level> {
        let step = Duration::from_millis(ladder.cfg.sample_ms);
        let end = *now + d;
        let mut seen = Vec::new();
        while *now < end {
            *now += step;
            ladder.update(*now, &signals);
            seen.push(ladder.level());
        }
        seen
    }

    #[test]
    fn levels_rise_one_step_per_sample_and_fall_after_the_dwell() {
        let cfg = OverloadConfig::default();
        let mut now = Instant::now();
        let mut l = Ladder::new(&cfg, now);
        let seen = run(&mut l, &mut now, Duration::from_secs(1), busy(120));
        assert_eq!(
            seen,
            vec![
                Level::ShedBulk,
                Level::DeferNormal,
                Level::ThinHigh,
                Level::Protect,
                Level::Protect
            ]
        );
        // Load gone: one step down per dwell, back to normal.
        let seen = run(&mut l, &mut now, Duration::from_secs(12), busy(10));
        assert_eq!(seen.last(), Some(&Level::Normal));
        let first_drop = seen.iter().position(|&v| v != Level::Protect).unwrap();
        // Protect was entered at 0.8 s: the first step down comes 2 s later,
        // at 2.8 s, the ninth sample of the quiet stretch.
        assert_eq!(first_drop, 8, "held for the 2 s dwell first");
        assert_eq!(l.transitions(), 8);
    }

    #[test]
    fn a_steady_load_at_a_threshold_does_not_oscillate() {
        let cfg = OverloadConfig::default();
        let mut now = Instant::now();
        let mut l = Ladder::new(&cfg, now);
        // Around level 2's enter threshold, with noise of ±8 %: above level
        // 2's exit (65), below level 3's enter (95).
        for i in 0..500u32 {
            now += Duration::from_millis(cfg.sample_ms);
            let p = 85 + (i * 7919 % 17) - 8;
            l.update(now, &busy(p));
        }
        assert_eq!(l.level(), Level::DeferNormal);
        assert_eq!(l.transitions(), 2, "up twice, then steady");
    }

    #[test]
    fn the_highest_pressure_decides_and_is_named() {
        let cfg = OverloadConfig::default();
        let s = Signals {
            busy_percent: 40,
            lag_us: 3_000,
            kernel_drops_per_s: 200,
            ..Signals::default()
        };
        assert_eq!(s.pressure(&cfg), (Signal::Lag, 150));
        let mut l = Ladder::new(&cfg, Instant::now());
        let t = l.update(Instant::now(), &s).unwrap();
        assert_eq!(
            (t.from, t.to, t.signal),
            (Level::Normal, Level::ShedBulk, Signal::Lag)
        );
        assert_eq!(
            t.to_string(),
            "level 0 (normal) -> 1 (shed_bulk): lag at 150 %"
        );
        let flood = Signals {
            kernel_drops_per_s: u64::MAX,
            ..Signals::default()
        };
        assert_eq!(
            flood.pressure(&cfg),
            (Signal::KernelDrops, PRESSURE_PERCENT_LIMIT)
        );
    }

    #[test]
    fn a_level_that_cannot_be_left_is_reported_stuck() {
        let cfg = OverloadConfig::default();
        let mut now = Instant::now();
        let mut l = Ladder::new(&cfg, now);
        run(&mut l, &mut now, Duration::from_millis(200), busy(75));
        assert_eq!(l.level(), Level::ShedBulk);
        run(&mut l, &mut now, Duration::from_secs(59), busy(75));
        assert_eq!(l.stuck(now), None);
        run(&mut l, &mut now, Duration::from_secs(2), busy(75));
        assert!(l.stuck(now).is_some_and(|d| d >= Duration::from_secs(60)));
        // Leaving it clears the report.
        run(&mut l, &mut now, Duration::from_secs(3), busy(0));
        assert_eq!(l.level(), Level::Normal);
        assert_eq!(l.stuck(now), None);
    }
}
