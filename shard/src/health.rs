//! Shard health: tick statistics, the published snapshot and the watchdog.
//!
//! Health is off the message path, so it uses shared atomics:
//!
//! - Every tick and message pass the shard marks its start and end in its
//!   [`HealthSlot`] (a timestamp and an odd/even sequence number): its
//!   heartbeat. A [`Watchdog`], on another thread, reads every heartbeat
//!   and lets the sans-IO [`Supervisor`] decide: a shard late by
//!   `stall_after_ms` (a tick running that long, or, when supervising, no
//!   tick started that long after one was due) is flagged stalled, and one
//!   late by `stall_failover_ms` is fenced on the [`FenceBoard`], for the
//!   gateway cores to re-home its zones. A stalled tick cannot be preempted
//!   (Rust has no safe way to stop a thread), so detecting, reporting and
//!   fencing is all the watchdog does; see `docs/shard.md`.
//! - Every `health_every_ticks` the shard publishes a [`ShardHealth`]
//!   snapshot under a seqlock, so a reader never sees half of one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use lanegate_common::ids::ShardId;
use lanegate_common::lanes::Lane;
use lanegate_common::link::ShardHealth;

use crate::failover::{Decision, Heartbeat, StallPolicy, Supervisor};
use crate::fence::FenceBoard;

const WORDS: usize = 19;

/// Where one shard publishes its health and its liveness.
#[derive(Debug)]
pub struct HealthSlot {
    shard: ShardId,
    epoch: Instant,
    /// Seqlock over `words`: odd while a snapshot is being written.
    version: AtomicU64,
    words: [AtomicU64; WORDS],
    /// Odd while a tick runs; bumped at each tick start and end.
    tick_seq: AtomicU64,
    /// When the current (or last) tick started, in ns since `epoch`.
    tick_started_ns: AtomicU64,
    stalled: AtomicBool,
    stalls: AtomicU32,
    fenced: AtomicBool,
}

impl HealthSlot {
    /// A slot for `shard`. `epoch` is any instant no later than the first
    /// tick; timestamps are stored relative to it.
    pub fn new(shard: ShardId, epoch: Instant) -> Arc<Self> {
        Arc::new(Self {
            shard,
            epoch,
            version: AtomicU64::new(0),
            words: std::array::from_fn(|_| AtomicU64::new(0)),
            tick_seq: AtomicU64::new(0),
            tick_started_ns: AtomicU64::new(0),
            stalled: AtomicBool::new(false),
            stalls: AtomicU32::new(0),
            fenced: AtomicBool::new(false),
        })
    }

    /// The shard this slot belongs to.
    pub fn shard(&self) -> ShardId {
        self.shard
    }

    /// The latest snapshot, with the watchdog's view of stalls.
    pub fn read(&self) -> ShardHealth {
        let mut w = [0u64; WORDS];
        // A writer holds the seqlock for a few stores; a reader that keeps
        // losing the race gives up and returns the torn-free copy it last
        // had, which is at worst one snapshot old.
        let mut last_good = None;
        for _ in 0..64 {
            let v1 = self.version.load(Ordering::Acquire);
            if v1 % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            for (dst, src) in w.iter_mut().zip(&self.words) {
                *dst = src.load(Ordering::Relaxed);
            }
            fence(Ordering::Acquire);
            if self.version.load(Ordering::Relaxed) == v1 {
                last_good = Some(w);
                break;
            }
        }
        let mut h = last_good.map(decode).unwrap_or_default();
        h.shard = self.shard;
        h.stalled = self.stalled.load(Ordering::Relaxed);
        h.stalls = self.stalls.load(Ordering::Relaxed);
        h.fenced = self.fenced.load(Ordering::Relaxed);
        h
    }

    /// [`HealthSlot::read`], with the heartbeat's age at `now`.
    pub fn read_at(&self, now: Instant) -> ShardHealth {
        let mut h = self.read();
        let age = now.saturating_duration_since(self.heartbeat().started);
        h.heartbeat_age_us = u64::try_from(age.as_micros()).unwrap_or(u64::MAX);
        h
    }

    /// The shard's heartbeat: whether a tick or pass runs, and when the
    /// current or last one started.
    pub fn heartbeat(&self) -> Heartbeat {
        // The sequence number first (Acquire): the start time stored before
        // the bump that made it odd is then the current tick's.
        let seq = self.tick_seq.load(Ordering::Acquire);
        let started =
            self.epoch + Duration::from_nanos(self.tick_started_ns.load(Ordering::Relaxed));
        Heartbeat { seq, started }
    }

    /// Publishes a snapshot. Only the shard's own thread calls this.
    pub(crate) fn publish(&self, h: &ShardHealth) {
        let w = encode(h);
        let v = self.version.load(Ordering::Relaxed);
        self.version.store(v.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        for (dst, src) in self.words.iter().zip(w) {
            dst.store(src, Ordering::Relaxed);
        }
        self.version.store(v.wrapping_add(2), Ordering::Release);
    }

    /// Marks the start of a tick at `now`.
    pub(crate) fn tick_started(&self, now: Instant) {
        let ns =
            u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
        self.tick_started_ns.store(ns, Ordering::Relaxed);
        self.tick_seq.fetch_add(1, Ordering::Release);
    }

    /// Marks the end of the tick.
    pub(crate) fn tick_ended(&self) {
        self.tick_seq.fetch_add(1, Ordering::Release);
    }
}

/// Watches shards' heartbeats from another thread: flags those that stall
/// and, when supervising, fences those stalled past the failover limit.
#[derive(Debug)]
pub struct Watchdog {
    slots: Vec<Arc<HealthSlot>>,
    supervisor: Supervisor,
    fences: Option<Arc<FenceBoard>>,
}

/// What a [`Watchdog::check`] found changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StallEvent {
    /// The shard is late past the stall limit: its current tick has run
    /// that long, or (when supervising) it started none that long after
    /// one was due.
    Stalled {
        /// Which shard.
        shard: ShardId,
        /// How late it is.
        running: Duration,
    },
    /// A shard reported stalled started or finished a tick again.
    Recovered {
        /// Which shard.
        shard: ShardId,
    },
    /// The shard was late past the failover limit and is fenced: the
    /// gateway cores re-home its zones, and it is never used again.
    FailedOver {
        /// Which shard.
        shard: ShardId,
        /// How late it was.
        stalled_for: Duration,
        /// Whether it was inside a tick (else stopped between ticks).
        in_tick: bool,
    },
    /// A fenced shard's thread moved again; what it sends is dropped.
    WokeFenced {
        /// Which shard.
        shard: ShardId,
    },
}

impl Watchdog {
    /// A watchdog over `slots`, flagging ticks longer than `stall_after`
    /// (only a running tick is timed, and nothing is fenced).
    pub fn new(slots: Vec<Arc<HealthSlot>>, stall_after: Duration) -> Self {
        let policy = StallPolicy {
            stall_after,
            failover_after: None,
            idle_grace: None,
        };
        let supervisor = Supervisor::new(slots.iter().map(|s| s.shard), policy);
        Self {
            slots,
            supervisor,
            fences: None,
        }
    }

    /// A watchdog over `slots` that decides by `policy` and fences failed
    /// over shards on `fences`.
    pub fn supervising(
        slots: Vec<Arc<HealthSlot>>,
        policy: StallPolicy,
        fences: Arc<FenceBoard>,
    ) -> Self {
        let supervisor = Supervisor::new(slots.iter().map(|s| s.shard), policy);
        Self {
            slots,
            supervisor,
            fences: Some(fences),
        }
    }

    /// Looks at every shard at `now`; calls `on_event` for each change.
    pub fn check(&mut self, now: Instant, mut on_event: impl FnMut(StallEvent)) {
        let Self {
            slots,
            supervisor,
            fences,
        } = self;
        let beats = slots.iter().map(|s| s.heartbeat());
        supervisor.check(now, beats, |decision| {
            let shard = match decision {
                Decision::Stalled { shard, .. }
                | Decision::Recovered { shard }
                | Decision::FailOver { shard, .. }
                | Decision::WokeFenced { shard } => shard,
            };
            let Some(slot) = slots.iter().find(|s| s.shard == shard) else {
                return;
            };
            match decision {
                Decision::Stalled { overdue, .. } => {
                    slot.stalled.store(true, Ordering::Relaxed);
                    slot.stalls.fetch_add(1, Ordering::Relaxed);
                    on_event(StallEvent::Stalled {
                        shard,
                        running: overdue,
                    });
                }
                Decision::Recovered { .. } => {
                    slot.stalled.store(false, Ordering::Relaxed);
                    on_event(StallEvent::Recovered { shard });
                }
                Decision::FailOver {
                    overdue, running, ..
                } => {
                    slot.fenced.store(true, Ordering::Relaxed);
                    if let Some(board) = fences {
                        board.fence(shard);
                    }
                    on_event(StallEvent::FailedOver {
                        shard,
                        stalled_for: overdue,
                        in_tick: running,
                    });
                }
                Decision::WokeFenced { .. } => {
                    slot.stalled.store(false, Ordering::Relaxed);
                    on_event(StallEvent::WokeFenced { shard });
                }
            }
        });
    }
}

/// Tick durations over a sliding window, and the overrun count.
#[derive(Debug)]
pub(crate) struct TickStats {
    window: Vec<u32>,
    scratch: Vec<u32>,
    next: usize,
    filled: usize,
    pub(crate) ticks: u64,
    pub(crate) overruns: u64,
    budget: Duration,
}

impl TickStats {
    pub(crate) fn new(window_ticks: usize, budget: Duration) -> Self {
        let n = window_ticks.max(1);
        Self {
            window: vec![0; n],
            scratch: Vec::with_capacity(n),
            next: 0,
            filled: 0,
            ticks: 0,
            overruns: 0,
            budget,
        }
    }

    /// Records one tick; returns whether it overran the budget.
    pub(crate) fn record(&mut self, took: Duration) -> bool {
        let us = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
        self.window[self.next] = us;
        self.next = (self.next + 1) % self.window.len();
        self.filled = (self.filled + 1).min(self.window.len());
        self.ticks += 1;
        let over = took > self.budget;
        if over {
            self.overruns += 1;
        }
        over
    }

    /// (p50, p99, max) of the window, in microseconds.
    pub(crate) fn percentiles(&mut self) -> (u32, u32, u32) {
        if self.filled == 0 {
            return (0, 0, 0);
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.window[..self.filled]);
        let n = self.scratch.len();
        let at = |s: &mut Vec<u32>, q: usize| *s.select_nth_unstable((n - 1) * q / 100).1;
        let p50 = at(&mut self.scratch, 50);
        let p99 = at(&mut self.scratch, 99);
        let max = self.scratch.iter().copied().max().unwrap_or(0);
        (p50, p99, max)
    }
}

fn lo_hi(lo: u32, hi: u32) -> u64 {
    u64::from(lo) | (u64::from(hi) << 32)
}

fn split(w: u64) -> (u32, u32) {
    // Truncation is the point: the word holds two u32 halves.
    #[allow(clippy::cast_possible_truncation)]
    ((w & 0xffff_ffff) as u32, (w >> 32) as u32)
}

fn encode(h: &ShardHealth) -> [u64; WORDS] {
    let d = h.inbox_depth;
    let [s0, s1, s2, s3] = h.inbound_shed;
    let [l0, l1, l2, l3] = h.outbound_lost;
    [
        h.ticks,
        h.overruns,
        lo_hi(h.tick_p50_us, h.tick_p99_us),
        lo_hi(h.tick_max_us, h.ring_depth),
        lo_hi(d[0], d[1]),
        lo_hi(d[2], d[3]),
        s0,
        s1,
        s2,
        s3,
        l0,
        l1,
        l2,
        l3,
        lo_hi(h.restarts, h.zones),
        lo_hi(h.players, u32::from(h.level)),
        h.stale_dropped,
        h.shed_out,
        u64::from(h.sojourn_min_us),
    ]
}

fn decode(w: [u64; WORDS]) -> ShardHealth {
    let (p50, p99) = split(w[2]);
    let (max, ring_depth) = split(w[3]);
    let (d0, d1) = split(w[4]);
    let (d2, d3) = split(w[5]);
    let (restarts, zones) = split(w[14]);
    let (players, level) = split(w[15]);
    ShardHealth {
        shard: ShardId(0),
        ticks: w[0],
        overruns: w[1],
        tick_p50_us: p50,
        tick_p99_us: p99,
        tick_max_us: max,
        inbox_depth: [d0, d1, d2, d3],
        ring_depth,
        inbound_shed: [w[6], w[7], w[8], w[9]],
        outbound_lost: [w[10], w[11], w[12], w[13]],
        restarts,
        stale_dropped: w[16],
        level: u8::try_from(level).unwrap_or(u8::MAX),
        shed_out: w[17],
        stalled: false,
        stalls: 0,
        fenced: false,
        heartbeat_age_us: 0,
        zones,
        players,
        sojourn_min_us: u32::try_from(w[18]).unwrap_or(u32::MAX),
    }
}

const _: () = assert!(Lane::COUNT == 4, "encode/decode assume four lanes");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trips() {
        let slot = HealthSlot::new(ShardId(3), Instant::now());
        let h = ShardHealth {
            shard: ShardId(3),
            ticks: 1 << 40,
            overruns: 7,
            tick_p50_us: 100,
            tick_p99_us: 900,
            tick_max_us: u32::MAX,
            inbox_depth: [1, 2, 3, 4],
            ring_depth: 5,
            inbound_shed: [6, 7, 8, 9],
            outbound_lost: [10, 11, 12, u64::MAX],
            restarts: 2,
            stale_dropped: 13,
            level: 3,
            shed_out: 14,
            stalled: false,
            stalls: 0,
            fenced: false,
            heartbeat_age_us: 0,
            zones: 12,
            players: 345,
            sojourn_min_us: 6_789,
        };
        slot.publish(&h);
        assert_eq!(slot.read(), h);
    }

    #[test]
    fn watchdog_flags_a_long_tick_once_and_clears_it() {
        let t0 = Instant::now();
        let slot = HealthSlot::new(ShardId(1), t0);
        let mut dog = Watchdog::new(vec![slot.clone()], Duration::from_millis(100));
        let mut events = Vec::new();
        slot.tick_started(t0);
        dog.check(t0 + Duration::from_millis(99), |e| events.push(e));
        assert!(events.is_empty());
        dog.check(t0 + Duration::from_millis(150), |e| events.push(e));
        dog.check(t0 + Duration::from_millis(300), |e| events.push(e));
        assert_eq!(
            events,
            [StallEvent::Stalled {
                shard: ShardId(1),
                running: Duration::from_millis(150)
            }]
        );
        assert!(slot.read().stalled);
        slot.tick_ended();
        dog.check(t0 + Duration::from_millis(301), |e| events.push(e));
        assert_eq!(events[1], StallEvent::Recovered { shard: ShardId(1) });
        let h = slot.read();
        assert!(!h.stalled);
        assert_eq!(h.stalls, 1);
    }

    #[test]
    fn supervising_watchdog_fences_a_shard_stopped_between_ticks() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let slots = [
            HealthSlot::new(ShardId(0), t0),
            HealthSlot::new(ShardId(1), t0),
        ];
        let board = FenceBoard::new(2, Vec::new());
        let policy = StallPolicy {
            stall_after: ms(100),
            failover_after: Some(ms(300)),
            idle_grace: Some(ms(10)),
        };
        let mut dog = Watchdog::supervising(slots.to_vec(), policy, Arc::clone(&board));
        let mut events = Vec::new();
        // Both tick once at t0; only shard 1 keeps ticking.
        for s in &slots {
            s.tick_started(t0);
            s.tick_ended();
        }
        for at in (10..=400).step_by(10) {
            slots[1].tick_started(t0 + ms(at));
            slots[1].tick_ended();
            dog.check(t0 + ms(at), |e| events.push(e));
        }
        assert_eq!(
            events,
            [
                StallEvent::Stalled {
                    shard: ShardId(0),
                    running: ms(100)
                },
                StallEvent::FailedOver {
                    shard: ShardId(0),
                    stalled_for: ms(300),
                    in_tick: false
                }
            ]
        );
        assert!(board.is_fenced(ShardId(0)) && !board.is_fenced(ShardId(1)));
        let h = slots[0].read_at(t0 + ms(400));
        assert!(h.fenced && h.stalled);
        assert_eq!(h.heartbeat_age_us, 400_000);
        assert!(!slots[1].read().fenced);
        // It wakes: reported once, still fenced.
        slots[0].tick_started(t0 + ms(401));
        dog.check(t0 + ms(402), |e| events.push(e));
        assert_eq!(events[2], StallEvent::WokeFenced { shard: ShardId(0) });
        assert!(slots[0].read().fenced);
    }

    #[test]
    fn percentiles_and_overruns() {
        let mut s = TickStats::new(100, Duration::from_micros(50));
        for us in 1..=100 {
            s.record(Duration::from_micros(us));
        }
        assert_eq!(s.percentiles(), (50, 99, 100));
        assert_eq!(s.overruns, 50);
        assert_eq!(s.ticks, 100);
    }
}
