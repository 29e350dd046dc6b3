//! The metrics endpoint (`observability.metrics_listen`): what the gateway
//! counts, published off the packet path and served over HTTP.
//!
//! Data flow, and why it is shaped this way:
//!
//! - Each gateway core owns its counters as plain numbers (the engine's
//!   [`Counters`], its steering counters, its shard port's losses). Every
//!   [`PUBLISH_EVERY`] of loop time, judged by the `now` the loop turn
//!   already has, the core copies them into its [`CoreSlot`] with
//!   `try_lock`: a core never waits for the HTTP thread, and a publish that
//!   loses the race is simply retried next turn. Nothing allocates.
//! - Shards already publish their [`ShardHealth`] under a seqlock
//!   (`lanegate_shard::health::HealthSlot`); the HTTP thread reads those
//!   directly.
//! - One unpinned HTTP thread ([`http`]) gathers a [`Sample`] per request
//!   and renders it: the Prometheus/OpenMetrics text ([`encode`], through
//!   `prometheus-client`), the status page ([`status`]), the health check
//!   or the readiness check. All rendering is a pure function of a [`Sample`], so the unit
//!   tests drive it with made-up numbers.
//!
//! A slot also keeps an older snapshot, one to two seconds old, so the
//! status page can show rates without the HTTP thread waking on a timer.

mod core_families;
pub mod encode;
pub mod http;
mod latency_families;
mod monitor_families;
pub mod monitor_view;
mod shard_families;
pub mod status;
pub mod status_json;
pub mod status_page;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant, SystemTime};

use crate::engine::Counters;
use crate::steer::SteerCounters;
use lanegate_common::histogram::LatencyHistogram;
use lanegate_common::lanes::Lane;
use lanegate_common::link::ShardHealth;
use lanegate_shard::health::HealthSlot;
use lanegate_shard::latency::{LatencySlot, ShardLatency};
use lanegate_shard::port::LinkDrops;
use lanegate_udp::{BackendKind, SocketDrops};

/// How often a core publishes its counters: often enough that a scrape
/// every few seconds sees fresh numbers, rarely enough that the copy
/// (a few hundred bytes under an uncontended lock) never shows in a
/// profile.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// The span over which the status page computes rates: the older snapshot
/// a slot keeps is between one and two of these old.
pub const RATE_WINDOW: Duration = Duration::from_secs(1);

/// A core whose last snapshot is older than this is reported as not
/// publishing (stuck in a turn, or gone).
pub const CORE_STALE_AFTER: Duration = Duration::from_secs(2);

/// Everything one gateway core reports, copied at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoreSnapshot {
    /// When it was taken: the loop turn's `now`.
    pub at: Instant,
    /// The engine's counters.
    pub engine: Counters,
    /// Packets steered to and from other cores.
    pub steer: SteerCounters,
    /// What the core's shard links dropped, by reason and lane: the one
    /// count of losses between the core and its shards.
    pub link_drops: LinkDrops,
    /// Per lane, messages' times from receipt to the shard ring.
    pub latency: [LatencyHistogram; Lane::COUNT],
    /// Transmits the backend could not take at once.
    pub tx_blocked: u64,
    /// Receives that failed for a passing reason.
    pub recv_transient: u64,
    /// The IO backend the core runs on.
    pub backend: BackendKind,
    /// Where the core stands on the degradation ladder.
    pub overload: OverloadReading,
}

/// A core's degradation ladder, as metrics read it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OverloadReading {
    /// The level, 0 (normal) to 4 (protect).
    pub level: u8,
    /// Steps taken, up and down, since start.
    pub transitions: u64,
    /// Whether the level above normal has been held past
    /// `overload.stuck_after_ms`.
    pub stuck: bool,
}

impl CoreSnapshot {
    /// A snapshot of a core that has counted nothing yet.
    #[cfg(test)]
    pub fn empty(at: Instant, backend: BackendKind) -> Self {
        Self {
            at,
            engine: Counters::default(),
            steer: SteerCounters::default(),
            link_drops: LinkDrops::default(),
            latency: [LatencyHistogram::default(); Lane::COUNT],
            tx_blocked: 0,
            recv_transient: 0,
            backend,
            overload: OverloadReading::default(),
        }
    }

    /// Messages lost between this core and the shards on `lane`, every
    /// reason together.
    pub fn ring_dropped(&self, lane: Lane) -> u64 {
        // What the ladder shed is reported as its level, not as a fault.
        let shed = self
            .link_drops
            .get(lanegate_shard::port::DropReason::Shed, lane);
        self.link_drops.per_lane()[lane.index()] - shed
    }
}

/// One core's published snapshots.
#[derive(Debug, Default)]
pub struct CoreSlot {
    state: Mutex<SlotState>,
}

#[derive(Clone, Copy, Debug, Default)]
struct SlotState {
    latest: Option<CoreSnapshot>,
    /// The latest as of the last [`RATE_WINDOW`] mark, and the one before.
    newer_base: Option<CoreSnapshot>,
    older_base: Option<CoreSnapshot>,
}

/// What the HTTP thread reads from a [`CoreSlot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoreReading {
    /// The latest snapshot.
    pub latest: CoreSnapshot,
    /// An earlier one, at least [`RATE_WINDOW`] older when there is one.
    pub earlier: Option<CoreSnapshot>,
}

impl CoreSlot {
    /// The latest snapshot and an earlier one for rates; `None` before the
    /// core's first publish.
    pub fn read(&self) -> Option<CoreReading> {
        let state = *lock(&self.state);
        let latest = state.latest?;
        Some(CoreReading {
            latest,
            earlier: state.older_base.or(state.newer_base),
        })
    }
}

/// A core's handle on its slot: decides when to publish.
#[derive(Debug)]
pub struct CorePublisher {
    slot: Arc<CoreSlot>,
    next: Option<Instant>,
}

impl CorePublisher {
    /// A publisher into `slot`.
    pub fn new(slot: Arc<CoreSlot>) -> Self {
        Self { slot, next: None }
    }

    /// Whether a snapshot is due at `now`. One comparison: the loop asks
    /// every turn.
    pub fn due(&self, now: Instant) -> bool {
        self.next.is_none_or(|next| now >= next)
    }

    /// Stores `snapshot` unless the HTTP thread holds the slot, in which
    /// case the next turn tries again.
    pub fn publish(&mut self, snapshot: &CoreSnapshot) {
        let mut state = match self.slot.state.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        state.latest = Some(*snapshot);
        let mark_due = state
            .newer_base
            .is_none_or(|b| snapshot.at.saturating_duration_since(b.at) >= RATE_WINDOW);
        if mark_due {
            state.older_base = state.newer_base;
            state.newer_base = Some(*snapshot);
        }
        drop(state);
        self.next = Some(snapshot.at + PUBLISH_EVERY);
    }
}

/// Where the HTTP thread reads everything it serves (and the monitor
/// thread samples).
#[derive(Clone, Debug)]
pub struct Sources {
    /// One slot per gateway core, in core order.
    pub cores: Vec<Arc<CoreSlot>>,
    /// One health slot per shard, in shard order.
    pub shards: Vec<Arc<HealthSlot>>,
    /// One latency slot per shard, in shard order.
    pub shard_latency: Vec<Arc<LatencySlot>>,
    /// The kernel's receive drops of each core's socket, read per sample
    /// from `/proc/net/udp` (in core order).
    pub socket_drops: SocketDrops,
    /// Rises on the first SIGTERM/SIGINT: the gateway drains.
    pub draining: Arc<AtomicBool>,
    /// `shards.tick_budget_us`.
    pub tick_budget_us: u32,
    /// When the process started, on both clocks.
    pub started: Instant,
    /// The wall-clock start time.
    pub started_wall: SystemTime,
    /// What the monitor published (`crate::monitor`); `None` without one.
    pub monitor: Option<Arc<monitor_view::MonitorSlot>>,
}

impl Sources {
    /// Everything, as of now.
    pub fn sample(&self) -> Sample {
        let now = Instant::now();
        Sample {
            now,
            cores: self.cores.iter().map(|c| c.read()).collect(),
            shards: self.shards.iter().map(|s| s.read_at(now)).collect(),
            shard_latency: self.shard_latency.iter().map(|s| s.read()).collect(),
            socket_drops: self.socket_drops.read(),
            draining: self.draining.load(Ordering::Relaxed),
            tick_budget_us: self.tick_budget_us,
            uptime: now.saturating_duration_since(self.started),
            started_unix_s: self
                .started_wall
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            monitor: self.monitor.as_ref().and_then(|m| m.read()),
        }
    }
}

/// The gateway's state at one moment, as the renderers see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// When it was gathered.
    pub now: Instant,
    /// Per gateway core, in order; `None` before a core's first publish.
    pub cores: Vec<Option<CoreReading>>,
    /// Per shard, in order.
    pub shards: Vec<ShardHealth>,
    /// Per shard, in order: its latency histograms since start.
    pub shard_latency: Vec<ShardLatency>,
    /// Per gateway core, the kernel's receive drops of its socket (full
    /// receive buffer); `None` where the kernel table is not readable.
    pub socket_drops: Vec<Option<u64>>,
    /// Whether the gateway drains.
    pub draining: bool,
    /// `shards.tick_budget_us`.
    pub tick_budget_us: u32,
    /// Time since start.
    pub uptime: Duration,
    /// Process start, seconds since the Unix epoch.
    pub started_unix_s: f64,
    /// The monitor's latest reading; `None` before its first sample or
    /// without a monitor.
    pub monitor: Option<monitor_view::MonitorReading>,
}

impl Sample {
    /// Shards not failed over: those that can take players.
    pub fn shards_available(&self) -> usize {
        self.shards.iter().filter(|h| !h.fenced).count()
    }

    /// Per lane, every core's times from receipt to the shard ring.
    pub fn gateway_latency(&self) -> [LatencyHistogram; Lane::COUNT] {
        let mut out = [LatencyHistogram::default(); Lane::COUNT];
        for c in self.cores.iter().flatten() {
            for (o, h) in out.iter_mut().zip(&c.latest.latency) {
                o.merge(h);
            }
        }
        out
    }

    /// Per lane, every shard's service times.
    pub fn shard_service(&self) -> [LatencyHistogram; Lane::COUNT] {
        let mut out = [LatencyHistogram::default(); Lane::COUNT];
        for l in &self.shard_latency {
            for (o, h) in out.iter_mut().zip(&l.service) {
                o.merge(h);
            }
        }
        out
    }

    /// Whether the gateway can take players: not draining, and some shard
    /// not failed over (`/readyz`).
    pub fn ready(&self) -> bool {
        !self.draining && self.shards_available() > 0
    }
}

/// The gateway's version, for `lanegate_build_info` and the status page.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Locks `m` for the HTTP thread; a poisoned lock still holds plain
/// numbers, which are as good as before the panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(at: Instant, udp_in: u64) -> CoreSnapshot {
        let mut s = CoreSnapshot::empty(at, BackendKind::Portable);
        s.engine.udp_in = udp_in;
        s
    }

    #[test]
    fn publishes_every_period_and_keeps_a_base_for_rates() {
        let t0 = Instant::now();
        let slot = Arc::new(CoreSlot::default());
        let mut p = CorePublisher::new(Arc::clone(&slot));
        assert!(slot.read().is_none());
        assert!(p.due(t0));
        p.publish(&snap(t0, 1));
        assert!(!p.due(t0 + PUBLISH_EVERY / 2));
        assert!(p.due(t0 + PUBLISH_EVERY));
        let r = slot.read().unwrap();
        assert_eq!(r.latest.engine.udp_in, 1);
        // Publishes within the window move the latest, not the base.
        for i in 1..15u32 {
            let at = t0 + PUBLISH_EVERY * i;
            p.publish(&snap(at, u64::from(i) * 10));
        }
        let r = slot.read().unwrap();
        assert_eq!(r.latest.engine.udp_in, 140);
        let earlier = r.earlier.unwrap();
        assert_eq!(earlier.at, t0, "the first mark");
        // Past two windows the base is one to two windows old.
        for i in 15..31u32 {
            p.publish(&snap(t0 + PUBLISH_EVERY * i, u64::from(i)));
        }
        let r = slot.read().unwrap();
        let age = r.latest.at - r.earlier.unwrap().at;
        assert!(age >= RATE_WINDOW && age <= 2 * RATE_WINDOW, "{age:?}");
    }

    #[test]
    fn a_held_slot_skips_the_publish_without_blocking() {
        let t0 = Instant::now();
        let slot = Arc::new(CoreSlot::default());
        let mut p = CorePublisher::new(Arc::clone(&slot));
        let guard = slot.state.lock().unwrap();
        p.publish(&snap(t0, 5));
        drop(guard);
        assert!(slot.read().is_none());
        assert!(p.due(t0), "tried again next turn");
        p.publish(&snap(t0, 5));
        assert_eq!(slot.read().unwrap().latest.engine.udp_in, 5);
    }
}
