//! The thread driver: the only part of the crate that touches real time and
//! threads.
//!
//! One thread per shard, pinned to its CPU (`ShardConfig::cpu_ids`), runs
//! [`Shard::run_tick`] at the tick rate and sleeps until the next tick. One
//! more thread runs the [`Watchdog`] every quarter of `stall_after_ms`.
//!
//! A shard whose game code never returns cannot be stopped: Rust has no safe
//! way to preempt or kill a thread. The watchdog reports it (in
//! `ShardHealth::stalled` and through the callback), and
//! [`ShardThreads::stop`] leaves it behind rather than hang.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use lanegate_common::ids::ShardId;

use crate::clock::SystemClock;
use crate::config::ShardConfig;
use crate::game::Game;
use crate::health::{HealthSlot, StallEvent, Watchdog};
use crate::runtime::Shard;

/// The running shard threads and their watchdog.
#[derive(Debug)]
pub struct ShardThreads {
    stop: Arc<AtomicBool>,
    shards: Vec<(ShardId, JoinHandle<()>)>,
    watchdog: Option<JoinHandle<()>>,
    slots: Vec<Arc<HealthSlot>>,
}

/// Starts one thread per shard and the watchdog. `on_stall` runs on the
/// watchdog thread for each stall and recovery.
pub fn spawn<G: Game + 'static>(
    shards: Vec<Shard<G>>,
    cfg: &ShardConfig,
    mut on_stall: impl FnMut(StallEvent) + Send + 'static,
) -> io::Result<ShardThreads> {
    let stop = Arc::new(AtomicBool::new(false));
    let slots: Vec<Arc<HealthSlot>> = shards.iter().map(Shard::health_slot).collect();
    let interval = cfg.tick_interval();
    let pass = cfg.message_pass();
    let mut threads = ShardThreads {
        stop: stop.clone(),
        shards: Vec::new(),
        watchdog: None,
        slots: slots.clone(),
    };
    for (i, mut shard) in shards.into_iter().enumerate() {
        let id = shard.id();
        let cpu = cfg.cpu_ids.get(i).copied();
        let stop = stop.clone();
        let handle = thread::Builder::new()
            .name(format!("lanegate-shard-{id}"))
            .spawn(move || {
                if let Some(cpu) = cpu
                    && !core_affinity::set_for_current(core_affinity::CoreId { id: cpu })
                {
                    tracing::warn!(shard = %id, cpu, "could not pin shard thread");
                }
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    shard.run_tick(&SystemClock);
                    next += interval;
                    let mut now = Instant::now();
                    if now > next && now - next > interval {
                        // Far behind (a long overrun): skip the missed ticks
                        // rather than run them back to back.
                        next = now;
                    }
                    // Between ticks, hand new messages to the game every
                    // `message_pass` (if enabled). `park_timeout` may return
                    // early (spuriously, or on `stop`): wait out the rest.
                    while now < next && !stop.load(Ordering::Relaxed) {
                        let wait = pass.map_or(next - now, |p| p.min(next - now));
                        thread::park_timeout(wait);
                        now = Instant::now();
                        if pass.is_some() && now < next {
                            shard.run_messages(&SystemClock);
                            now = Instant::now();
                        }
                    }
                }
            })?;
        threads.shards.push((id, handle));
    }
    let mut dog = Watchdog::new(slots, cfg.stall_after());
    let period = (cfg.stall_after() / 4).max(Duration::from_millis(1));
    let dog_stop = stop.clone();
    threads.watchdog = Some(
        thread::Builder::new()
            .name("lanegate-shard-watchdog".into())
            .spawn(move || {
                while !dog_stop.load(Ordering::Relaxed) {
                    dog.check(Instant::now(), &mut on_stall);
                    thread::park_timeout(period);
                }
            })?,
    );
    Ok(threads)
}

impl ShardThreads {
    /// The shards' health slots, in shard order.
    pub fn health_slots(&self) -> &[Arc<HealthSlot>] {
        &self.slots
    }

    /// Stops every thread. Threads that have not finished within `grace`
    /// (stalled in game code) are left running, detached; their ids are
    /// returned.
    pub fn stop(mut self, grace: Duration) -> Vec<ShardId> {
        self.stop.store(true, Ordering::Relaxed);
        for (_, h) in &self.shards {
            h.thread().unpark();
        }
        if let Some(dog) = self.watchdog.take() {
            dog.thread().unpark();
            let _ = dog.join();
        }
        let deadline = Instant::now() + grace;
        let mut stuck = Vec::new();
        for (id, h) in self.shards.drain(..) {
            while !h.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(1));
            }
            if h.is_finished() {
                let _ = h.join();
            } else {
                stuck.push(id);
            }
        }
        stuck
    }
}
