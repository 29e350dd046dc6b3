//! The shards' side of the degradation ladder: one ladder per shard, run
//! by a thread of its own off the datapath, so that one hot zone's shard
//! degrades alone and the others play on.
//!
//! Every `overload.sample_ms` the thread reads each shard's published
//! health (tick p99 against the tick budget; entries waiting in its rings
//! and inboxes against their limits), hands it to that shard's
//! `lanegate_control::Ladder`, and writes the level on the `LevelBoard`.
//! The shard reads its level once per tick (level 1: its `bulk` replies go
//! no further; 2: `normal` waits in its bounded inbox, a quarter of its
//! budget a tick; 3: the game is told, through `Outbox::level`, to thin
//! `high`); each gateway core reads the board once per turn and sheds the
//! `bulk` it would send a loaded shard. [`ShardLoad`] is the sans-IO part.
//!
//! Being the one control thread that samples at the ladder's pace, it also
//! reads the kernel's receive drops for the core sockets whose backend
//! cannot count them itself (portable; io_uring reads `SO_RXQ_OVFL` from
//! each receive), from `/proc/net/udp` (a file that lists every UDP socket
//! on the host: about 3 ms with 2000 of them, too slow for a datapath core
//! and, on a shared core, for every sample), once a second, onto the
//! cores' [`KernelDropBoard`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lanegate_common::config::OverloadConfig;
use lanegate_common::lanes::Lane;
use lanegate_common::link::ShardHealth;
use lanegate_control::{Ladder, Level, Signals, Transition};
use lanegate_shard::ShardConfig;

use crate::log_limit::WarnLimit;
use lanegate_shard::health::HealthSlot;
use lanegate_shard::levels::LevelBoard;
use lanegate_udp::SocketDrops;
use tracing::{info, warn};

use super::overload::KernelDropBoard;

/// What a shard's health is measured against.
#[derive(Clone, Copy, Debug)]
pub struct ShardLimits {
    /// The tick budget, µs.
    pub tick_budget_us: u32,
    /// Slots in all of a shard's inbound rings together.
    pub ring_slots: u64,
    /// Each lane's inbox limit.
    pub inbox_slots_max: [u32; Lane::COUNT],
}

impl ShardLimits {
    /// From the shard runtime's limits, for `cores` gateway cores.
    pub fn new(cfg: &ShardConfig, cores: usize) -> Self {
        Self {
            tick_budget_us: cfg.tick_budget_us,
            ring_slots: u64::from(cfg.ring_slots_max) * cores as u64,
            inbox_slots_max: cfg.inbox_slots_max,
        }
    }
}

/// One shard's load, as its ladder sees it.
#[derive(Debug)]
pub struct ShardLoad {
    ladder: Ladder,
    limits: ShardLimits,
}

impl ShardLoad {
    /// A shard at level normal from `now`.
    pub fn new(cfg: &OverloadConfig, limits: ShardLimits, now: Instant) -> Self {
        Self {
            ladder: Ladder::new(cfg, now),
            limits,
        }
    }

    /// The ladder's signals from a health snapshot: tick p99 against the
    /// budget, the fuller of the rings and the inboxes, and how long every
    /// message waited for the game (the shortest wait since the previous
    /// snapshot).
    pub fn signals(&self, h: &ShardHealth) -> Signals {
        let percent = |used: u64, of: u64| {
            u32::try_from(used.saturating_mul(100) / of.max(1)).unwrap_or(u32::MAX)
        };
        let inbox = (0..Lane::COUNT)
            .map(|l| {
                percent(
                    u64::from(h.inbox_depth[l]),
                    u64::from(self.limits.inbox_slots_max[l]),
                )
            })
            .max()
            .unwrap_or(0);
        let ring = percent(u64::from(h.ring_depth), self.limits.ring_slots);
        Signals {
            tick_percent: percent(
                u64::from(h.tick_p99_us),
                u64::from(self.limits.tick_budget_us),
            ),
            ring_fill_percent: ring.max(inbox),
            sojourn_us: u64::from(h.sojourn_min_us),
            ..Signals::default()
        }
    }

    /// One sample at `now`: returns the step it caused to the published
    /// level, if any. Protect is a gateway core's level (it refuses
    /// sessions); a shard's published level stops at thinning `high`, so
    /// the ladder's step to protect and back changes nothing here.
    pub fn sample(&mut self, now: Instant, h: &ShardHealth) -> Option<Transition> {
        let before = self.level();
        let step = self.ladder.update(now, &self.signals(h))?;
        let after = self.level();
        (after != before).then_some(Transition {
            from: before,
            to: after,
            ..step
        })
    }

    /// The level to publish: at most [`Level::ThinHigh`].
    pub fn level(&self) -> Level {
        self.ladder.level().min(Level::ThinHigh)
    }

    /// How long a level above normal has been held, once past
    /// `overload.stuck_after_ms`.
    pub fn stuck(&self, now: Instant) -> Option<Duration> {
        self.ladder.stuck(now)
    }
}

/// Samples between two reads of the kernel's UDP table (about a second at
/// the default `overload.sample_ms`).
const KERNEL_TABLE_EVERY_SAMPLES: u64 = 5;

/// The thread that runs every shard's ladder.
#[derive(Debug)]
pub struct ShardLoadThread {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl ShardLoadThread {
    /// Starts sampling `slots` (one per shard, in shard order) into
    /// `board`, and the core sockets' kernel drops (`kernel`) onto their
    /// board.
    pub fn spawn(
        slots: Vec<Arc<HealthSlot>>,
        board: Arc<LevelBoard>,
        cfg: &OverloadConfig,
        limits: ShardLimits,
        kernel: (SocketDrops, Arc<KernelDropBoard>),
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let every = Duration::from_millis(cfg.sample_ms);
        let now = Instant::now();
        let mut loads: Vec<ShardLoad> = slots
            .iter()
            .map(|_| ShardLoad::new(cfg, limits, now))
            .collect();
        let quit = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("lanegate-shard-load".to_owned())
            .spawn(move || {
                let mut stuck_reported = vec![false; slots.len()];
                let mut step_warnings =
                    vec![WarnLimit::new(super::core_loop::STEP_LOG_PERIOD); slots.len()];
                let (socket_drops, kernel_board) = kernel;
                let mut samples = 0u64;
                while !quit.load(Ordering::Relaxed) {
                    std::thread::park_timeout(every);
                    // The table lists every UDP socket on the host and costs
                    // milliseconds with thousands: read it only for cores
                    // whose backend cannot count (portable), once a second.
                    samples += 1;
                    if !kernel_board.all_own() && samples % KERNEL_TABLE_EVERY_SAMPLES == 1 {
                        kernel_board.set(&socket_drops.read());
                    }
                    let now = Instant::now();
                    for (i, (slot, load)) in slots.iter().zip(&mut loads).enumerate() {
                        let h = slot.read();
                        if let Some(step) = load.sample(now, &h) {
                            stuck_reported[i] = false;
                            if let Some(suppressed) = step_warnings[i].allow(now) {
                                if step.to > step.from {
                                    warn!(shard = %slot.shard(), suppressed, "overload: {step}");
                                } else {
                                    info!(shard = %slot.shard(), suppressed, "overload: {step}");
                                }
                            }
                            board.set(slot.shard(), load.level());
                        }
                        if let Some(held) = load.stuck(now)
                            && !stuck_reported[i]
                        {
                            stuck_reported[i] = true;
                            warn!(
                                shard = %slot.shard(),
                                level = %load.level(),
                                held_s = held.as_secs(),
                                "overload: the shard's level cannot be left; move zones off it or add capacity"
                            );
                        }
                    }
                }
            })?;
        Ok(Self { stop, handle })
    }

    /// Stops the thread and waits for it (at most one sample period).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.thread().unpark();
        let _ = self.handle.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ShardLimits {
        ShardLimits {
            tick_budget_us: 20_000,
            ring_slots: 4096,
            inbox_slots_max: [8192, 8192, 4096, 1024],
        }
    }

    #[test]
    fn a_slow_tick_or_a_full_inbox_raises_the_shard_and_never_to_protect() {
        let cfg = OverloadConfig::default();
        let mut now = Instant::now();
        let mut load = ShardLoad::new(&cfg, limits(), now);
        let slow = ShardHealth {
            tick_p99_us: 30_000,
            ..ShardHealth::default()
        };
        assert_eq!(load.signals(&slow).tick_percent, 150);
        for _ in 0..10 {
            now += Duration::from_millis(200);
            load.sample(now, &slow);
        }
        assert_eq!(load.level(), Level::ThinHigh, "a shard stops below protect");
        let flooded = ShardHealth {
            inbox_depth: [0, 0, 0, 1000],
            ..ShardHealth::default()
        };
        assert_eq!(load.signals(&flooded).ring_fill_percent, 97);
        let calm = ShardHealth::default();
        for _ in 0..100 {
            now += Duration::from_millis(200);
            load.sample(now, &calm);
        }
        assert_eq!(load.level(), Level::Normal);
    }

    #[test]
    fn a_standing_queue_raises_the_shard_and_a_burst_that_drains_does_not() {
        let cfg = OverloadConfig::default();
        let mut now = Instant::now();
        let mut load = ShardLoad::new(&cfg, limits(), now);
        // Every message waited at least 40 ms: 80 % of full scale.
        let queued = ShardHealth {
            sojourn_min_us: 40_000,
            ..ShardHealth::default()
        };
        assert_eq!(load.signals(&queued).sojourn_us, 40_000);
        for _ in 0..5 {
            now += Duration::from_millis(200);
            load.sample(now, &queued);
        }
        assert_eq!(load.level(), Level::ShedBulk);
        // The queue drains: some messages go through at once again.
        let drained = ShardHealth {
            sojourn_min_us: 200,
            ..ShardHealth::default()
        };
        for _ in 0..20 {
            now += Duration::from_millis(200);
            load.sample(now, &drained);
        }
        assert_eq!(load.level(), Level::Normal);
    }
}
