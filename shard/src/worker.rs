//! The thread driver: the only part of the crate that touches real time and
//! threads.
//!
//! One thread per shard, pinned to its CPU (`ShardConfig::cpu_ids`), runs
//! [`Shard::run_tick`] at the tick rate and sleeps until the next tick. One
//! more thread runs the [`Watchdog`] every quarter of `stall_after_ms`.
//!
//! A shard can instead be *hosted* by a thread its embedder already runs
//! ([`HostedShard`]): the gateway does this for a shard placed on the same
//! CPU as one of its cores, because two threads pinned to one CPU only add
//! a context switch to every hand-off between them (measured in
//! `BENCHMARKS.md`). The host calls [`HostedShard::run`] each loop turn and
//! wakes by [`HostedShard::next_tick`]; the tick schedule ([`TickPacer`]) is
//! the same as a thread's, and the watchdog watches hosted shards too
//! ([`spawn_watching`]).
//!
//! A shard whose game code never returns cannot be stopped: Rust has no safe
//! way to preempt or kill a thread. The watchdog reports it (in
//! `ShardHealth::stalled` and through the callback); started with
//! [`spawn_supervised`], it also times shards between ticks and fences one
//! stalled past `stall_failover_ms` on the [`FenceBoard`] (see
//! [`crate::failover`]), so the gateway cores re-home its zones.
//! [`ShardThreads::stop`] leaves a stuck thread behind rather than hang.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use lanegate_common::ids::ShardId;
use lanegate_common::wake::{Doorbell, ThreadWaker};

use crate::clock::SystemClock;
use crate::config::ShardConfig;
use crate::failover::StallPolicy;
use crate::fence::FenceBoard;
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

/// When a shard's next tick is due: every `tick_interval`, skipping ticks
/// missed by more than one interval (a long overrun) rather than running
/// them back to back.
#[derive(Clone, Copy, Debug)]
pub struct TickPacer {
    next: Instant,
    interval: Duration,
}

impl TickPacer {
    /// The first tick is due at `now`.
    pub fn new(now: Instant, interval: Duration) -> Self {
        Self {
            next: now,
            interval,
        }
    }

    /// When the next tick is due.
    pub fn next(&self) -> Instant {
        self.next
    }

    /// Whether a tick is due at `now`; if so, schedules the one after it.
    pub fn take(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.next += self.interval;
        if now > self.next && now - self.next > self.interval {
            self.next = now;
        }
        true
    }
}

/// A shard run by a thread the embedder owns instead of its own (see the
/// module doc). Type-erased so the host's loop need not know the game.
pub struct HostedShard {
    shard: Box<dyn Drive>,
    pacer: TickPacer,
    /// `message_pass_us` > 0: messages are handed over between ticks.
    passes: bool,
}

/// The two calls a host makes on a shard, whatever its game.
trait Drive: Send {
    fn tick(&mut self);
    fn messages(&mut self);
    fn id(&self) -> ShardId;
    fn bell(&self) -> Arc<Doorbell>;
    fn has_input(&self) -> bool;
}

impl<G: Game> Drive for Shard<G> {
    fn tick(&mut self) {
        self.run_tick(&SystemClock);
    }
    fn messages(&mut self) {
        self.run_messages(&SystemClock);
    }
    fn id(&self) -> ShardId {
        Shard::id(self)
    }
    fn bell(&self) -> Arc<Doorbell> {
        Shard::bell(self)
    }
    fn has_input(&self) -> bool {
        Shard::has_input(self)
    }
}

impl HostedShard {
    /// Hosts `shard`; its first tick is due at `now`.
    pub fn new<G: Game + 'static>(shard: Shard<G>, cfg: &ShardConfig, now: Instant) -> Self {
        Self {
            shard: Box::new(shard),
            pacer: TickPacer::new(now, cfg.tick_interval()),
            passes: cfg.message_pass().is_some(),
        }
    }

    /// The shard's id.
    pub fn id(&self) -> ShardId {
        self.shard.id()
    }

    /// The shard's doorbell: the host installs its own waker in it, so
    /// other gateway cores pushing to this shard wake the host.
    pub fn bell(&self) -> Arc<Doorbell> {
        self.shard.bell()
    }

    /// Whether a ring from a gateway core holds entries the next
    /// [`HostedShard::run`] would hand to the game (never, between ticks,
    /// when message passes are off).
    pub fn has_input(&self) -> bool {
        self.passes && self.shard.has_input()
    }

    /// Whether arriving messages should wake the host (message passes are
    /// on); when not, the host need not install a waker in [`HostedShard::bell`].
    pub fn wakes_on_messages(&self) -> bool {
        self.passes
    }

    /// When the host must call [`HostedShard::run`] again at the latest.
    pub fn next_tick(&self) -> Instant {
        self.pacer.next()
    }

    /// Runs the tick if one is due at `now`, else a message pass (hands
    /// what the rings hold to the game and sends its replies at once) if
    /// passes are on.
    pub fn run(&mut self, now: Instant) {
        if self.pacer.take(now) {
            self.shard.tick();
        } else if self.passes && self.shard.has_input() {
            self.shard.messages();
        }
    }
}

impl std::fmt::Debug for HostedShard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostedShard")
            .field("shard", &self.id())
            .field("next_tick", &self.pacer.next())
            .finish()
    }
}

/// Starts one thread per shard and the watchdog. `on_stall` runs on the
/// watchdog thread for each stall and recovery.
pub fn spawn<G: Game + 'static>(
    shards: Vec<Shard<G>>,
    cfg: &ShardConfig,
    on_stall: impl FnMut(StallEvent) + Send + 'static,
) -> io::Result<ShardThreads> {
    spawn_watching(shards, Vec::new(), cfg, on_stall)
}

/// Like [`spawn`], and the watchdog also watches `hosted`: the health slots
/// of shards run as [`HostedShard`]s. `cfg.cpu_ids` names the CPUs of
/// `shards` (the threaded ones), in order.
pub fn spawn_watching<G: Game + 'static>(
    shards: Vec<Shard<G>>,
    hosted: Vec<Arc<HealthSlot>>,
    cfg: &ShardConfig,
    on_stall: impl FnMut(StallEvent) + Send + 'static,
) -> io::Result<ShardThreads> {
    start(shards, hosted, cfg, None, on_stall)
}

/// Like [`spawn_watching`], and the watchdog supervises: it also times a
/// shard between ticks (one that started no tick for `stall_after_ms` after
/// one was due is stalled too), and fences on `fences` a shard stalled past
/// `stall_failover_ms` (when that is not 0), for the gateway cores to
/// re-home its zones.
pub fn spawn_supervised<G: Game + 'static>(
    shards: Vec<Shard<G>>,
    hosted: Vec<Arc<HealthSlot>>,
    cfg: &ShardConfig,
    fences: Arc<FenceBoard>,
    on_stall: impl FnMut(StallEvent) + Send + 'static,
) -> io::Result<ShardThreads> {
    start(shards, hosted, cfg, Some(fences), on_stall)
}

fn start<G: Game + 'static>(
    shards: Vec<Shard<G>>,
    hosted: Vec<Arc<HealthSlot>>,
    cfg: &ShardConfig,
    fences: Option<Arc<FenceBoard>>,
    mut on_stall: impl FnMut(StallEvent) + Send + 'static,
) -> io::Result<ShardThreads> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut slots: Vec<Arc<HealthSlot>> = shards.iter().map(Shard::health_slot).collect();
    slots.extend(hosted);
    slots.sort_by_key(|s| s.shard());
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
                // Messages wake the thread only when passes between ticks
                // are on; otherwise it sleeps from tick to tick.
                let bell = shard.bell();
                if pass.is_some() {
                    bell.set_waker(Box::new(ThreadWaker(thread::current())));
                }
                let mut pacer = TickPacer::new(Instant::now(), interval);
                let mut last_pass: Option<Instant> = None;
                while !stop.load(Ordering::Relaxed) {
                    pacer.take(Instant::now());
                    shard.run_tick(&SystemClock);
                    let next = pacer.next();
                    let mut now = Instant::now();
                    while now < next && !stop.load(Ordering::Relaxed) {
                        // Sleep until the next tick or until a gateway core
                        // rings (see `lanegate_common::wake`).
                        let Some(pass) = pass else {
                            thread::park_timeout(next - now);
                            now = Instant::now();
                            continue;
                        };
                        bell.sleep_begin();
                        if !shard.has_input() {
                            thread::park_timeout(next - now);
                        }
                        bell.sleep_end();
                        now = Instant::now();
                        if now >= next || !shard.has_input() {
                            continue;
                        }
                        // At most one pass per `message_pass`, so messages
                        // arriving close together are handled together.
                        if let Some(ready) = last_pass.map(|t| t + pass)
                            && now < ready
                        {
                            thread::sleep(ready.min(next) - now);
                            now = Instant::now();
                            if now >= next {
                                continue;
                            }
                        }
                        shard.run_messages(&SystemClock);
                        last_pass = Some(now);
                        now = Instant::now();
                    }
                }
            })?;
        threads.shards.push((id, handle));
    }
    let (mut dog, period) = watchdog(slots, cfg, fences);
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

/// The watchdog and how often it looks: every quarter of the stall limit,
/// and when it fails shards over, at least every tenth of that limit, so a
/// failover comes at most a tenth late.
fn watchdog(
    slots: Vec<Arc<HealthSlot>>,
    cfg: &ShardConfig,
    fences: Option<Arc<FenceBoard>>,
) -> (Watchdog, Duration) {
    let mut period = cfg.stall_after() / 4;
    let dog = match fences {
        None => Watchdog::new(slots, cfg.stall_after()),
        Some(board) => {
            let policy = StallPolicy {
                stall_after: cfg.stall_after(),
                failover_after: cfg.stall_failover(),
                idle_grace: Some(cfg.tick_interval()),
            };
            if let Some(f) = policy.failover_after {
                period = period.min(f / 10);
            }
            Watchdog::supervising(slots, policy, board)
        }
    };
    (dog, period.max(Duration::from_millis(1)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacer_ticks_every_interval_and_skips_a_long_overrun() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut p = TickPacer::new(t0, ms(10));
        assert!(p.take(t0));
        assert_eq!(p.next(), t0 + ms(10));
        assert!(!p.take(t0 + ms(9)));
        // A little late: the schedule keeps its phase.
        assert!(p.take(t0 + ms(12)));
        assert_eq!(p.next(), t0 + ms(20));
        // More than an interval behind: restart from now, do not catch up.
        assert!(p.take(t0 + ms(55)));
        assert_eq!(p.next(), t0 + ms(55));
        assert!(p.take(t0 + ms(55)));
        assert_eq!(p.next(), t0 + ms(65));
    }
}
