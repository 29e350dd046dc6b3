//! Failover from a stalled shard, decided: which shard is stalled, when it
//! is failed over, and where its zones go. Sans-IO: [`Supervisor::check`]
//! takes `now` and one [`Heartbeat`] per shard and returns [`Decision`]s;
//! [`rehome`] is a pure function of a zone and the healthy shards. The
//! watchdog thread ([`crate::health::Watchdog`]) is the only caller that
//! reads real time; tests drive the same code on a virtual clock.
//!
//! **Every stall is seen.** A shard's heartbeat is when its current or last
//! tick (or message pass) started, and whether one is running. A running
//! tick is overdue by its running time; a shard between ticks is overdue by
//! the time since it last started one, less one tick interval (it is
//! allowed to sleep until its next tick). So a game stuck in `on_tick`, and
//! a thread stopped between ticks (descheduled, stopped by a debugger, dead
//! after a runtime panic) age the same way. Overdue past `stall_after`, the
//! shard is reported stalled; past `failover_after`, it is failed over.
//!
//! **A failed-over shard is never reused.** Rust cannot stop its thread, so
//! if it wakes it finds itself fenced (`crate::fence`): whatever it sends is
//! dropped and counted by the gateway cores. The supervisor reports that it
//! woke, once, and never reports it recovered.
//!
//! **Where zones go.** Every gateway core routes from its own port and must
//! reach the same answer for the same zone with no shared table, so the new
//! home is a deterministic choice over the healthy set: rendezvous (highest
//! random weight) hashing. When another shard fails later, only the zones
//! that shard served move; every zone already re-homed elsewhere stays put,
//! so the choice needs no memory and bounds no table.

use std::time::{Duration, Instant};

use lanegate_common::ids::{ShardId, ZoneId};

/// When a shard counts as stalled, and when it is failed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StallPolicy {
    /// Overdue this long: reported stalled (`shards.stall_after_ms`).
    pub stall_after: Duration,
    /// Overdue this long: failed over (`shards.stall_failover_ms`); `None`:
    /// never.
    pub failover_after: Option<Duration>,
    /// How long a shard may sleep between ticks (the tick interval). `None`:
    /// only a running tick or pass is timed, as the watchdog did before
    /// shards had heartbeats.
    pub idle_grace: Option<Duration>,
}

/// One shard's liveness, as its health slot last recorded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// Odd while a tick or pass runs; bumped at each start and end.
    pub seq: u64,
    /// When the current or last tick or pass started.
    pub started: Instant,
}

impl Heartbeat {
    /// Whether a tick or pass is running.
    pub fn running(&self) -> bool {
        self.seq % 2 == 1
    }

    /// How long the shard has been late at `now` under `policy`: the time a
    /// running tick has run, or the time since the last start less the
    /// sleep allowed between ticks. `None` when an idle shard is not timed.
    pub fn overdue(&self, now: Instant, policy: &StallPolicy) -> Option<Duration> {
        let age = now.saturating_duration_since(self.started);
        if self.running() {
            return Some(age);
        }
        policy.idle_grace.map(|grace| age.saturating_sub(grace))
    }
}

/// What the supervisor decided about one shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Overdue past `stall_after`: report it.
    Stalled {
        /// Which shard.
        shard: ShardId,
        /// How late it is.
        overdue: Duration,
        /// Whether it is inside a tick (else its thread stopped between).
        running: bool,
    },
    /// A shard reported stalled started or finished a tick again.
    Recovered {
        /// Which shard.
        shard: ShardId,
    },
    /// Overdue past `failover_after`: fence it and re-home its zones.
    FailOver {
        /// Which shard.
        shard: ShardId,
        /// How late it is.
        overdue: Duration,
        /// Whether it is inside a tick.
        running: bool,
    },
    /// A failed-over shard's thread moved again. It stays fenced.
    WokeFenced {
        /// Which shard.
        shard: ShardId,
    },
}

/// Watches every shard's heartbeat and decides.
#[derive(Debug, Clone)]
pub struct Supervisor {
    policy: StallPolicy,
    shards: Vec<Watch>,
}

#[derive(Debug, Clone, Copy)]
struct Watch {
    shard: ShardId,
    /// The heartbeat sequence number seen stalled.
    stalled_seq: Option<u64>,
    /// The sequence number when the shard was failed over.
    fenced_seq: Option<u64>,
    woke: bool,
}

impl Supervisor {
    /// A supervisor of `shards` (the order [`Supervisor::check`] takes their
    /// heartbeats in).
    pub fn new(shards: impl IntoIterator<Item = ShardId>, policy: StallPolicy) -> Self {
        Self {
            policy,
            shards: shards
                .into_iter()
                .map(|shard| Watch {
                    shard,
                    stalled_seq: None,
                    fenced_seq: None,
                    woke: false,
                })
                .collect(),
        }
    }

    /// The policy it decides by.
    pub fn policy(&self) -> &StallPolicy {
        &self.policy
    }

    /// Looks at one heartbeat per shard, in the order given to
    /// [`Supervisor::new`], at `now`; calls `decide` for each change.
    pub fn check(
        &mut self,
        now: Instant,
        beats: impl IntoIterator<Item = Heartbeat>,
        mut decide: impl FnMut(Decision),
    ) {
        for (w, beat) in self.shards.iter_mut().zip(beats) {
            let shard = w.shard;
            if let Some(fenced) = w.fenced_seq {
                if !w.woke && beat.seq != fenced {
                    w.woke = true;
                    decide(Decision::WokeFenced { shard });
                }
                continue;
            }
            if w.stalled_seq.is_some_and(|s| s != beat.seq) {
                w.stalled_seq = None;
                decide(Decision::Recovered { shard });
            }
            let Some(overdue) = beat.overdue(now, &self.policy) else {
                continue;
            };
            let running = beat.running();
            if w.stalled_seq.is_none() && overdue >= self.policy.stall_after {
                w.stalled_seq = Some(beat.seq);
                decide(Decision::Stalled {
                    shard,
                    overdue,
                    running,
                });
            }
            if self.policy.failover_after.is_some_and(|f| overdue >= f) {
                w.fenced_seq = Some(beat.seq);
                decide(Decision::FailOver {
                    shard,
                    overdue,
                    running,
                });
            }
        }
    }

    /// Whether `shard` has been failed over.
    pub fn is_failed_over(&self, shard: ShardId) -> bool {
        self.shards
            .iter()
            .any(|w| w.shard == shard && w.fenced_seq.is_some())
    }
}

/// The shard a zone goes to when its own is failed over: of the `live`
/// shards, the one with the highest weight for the zone (rendezvous
/// hashing); `None` when none is live. Every caller with the same live set
/// gets the same answer, and removing one shard from the set moves only the
/// zones it had.
pub fn rehome(zone: ZoneId, live: impl IntoIterator<Item = ShardId>) -> Option<ShardId> {
    live.into_iter()
        .max_by_key(|&shard| (weight(zone, shard), shard.0))
}

/// A well-mixed 64-bit weight for (zone, shard): splitmix64's finalizer.
fn weight(zone: ZoneId, shard: ShardId) -> u64 {
    let mut x = (u64::from(zone.0) << 16 | u64::from(shard.0)).wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn policy() -> StallPolicy {
        StallPolicy {
            stall_after: MS(100),
            failover_after: Some(MS(300)),
            idle_grace: Some(MS(10)),
        }
    }

    fn run(sup: &mut Supervisor, now: Instant, beats: &[Heartbeat]) -> Vec<Decision> {
        let mut out = Vec::new();
        sup.check(now, beats.iter().copied(), |d| out.push(d));
        out
    }

    #[test]
    fn a_tick_that_never_ends_is_reported_then_failed_over_once() {
        let t0 = Instant::now();
        let mut sup = Supervisor::new([ShardId(0), ShardId(1)], policy());
        let stuck = Heartbeat {
            seq: 7,
            started: t0,
        };
        // Shard 1 ticks every 10 ms throughout.
        let healthy = |at: Instant| Heartbeat {
            seq: 8,
            started: at,
        };
        assert!(run(&mut sup, t0 + MS(99), &[stuck, healthy(t0 + MS(95))]).is_empty());
        assert_eq!(
            run(&mut sup, t0 + MS(100), &[stuck, healthy(t0 + MS(95))]),
            [Decision::Stalled {
                shard: ShardId(0),
                overdue: MS(100),
                running: true
            }]
        );
        assert!(run(&mut sup, t0 + MS(299), &[stuck, healthy(t0 + MS(295))]).is_empty());
        assert_eq!(
            run(&mut sup, t0 + MS(300), &[stuck, healthy(t0 + MS(295))]),
            [Decision::FailOver {
                shard: ShardId(0),
                overdue: MS(300),
                running: true
            }]
        );
        assert!(sup.is_failed_over(ShardId(0)));
        assert!(!sup.is_failed_over(ShardId(1)));
        assert!(run(&mut sup, t0 + MS(900), &[stuck, healthy(t0 + MS(895))]).is_empty());
        // The stuck tick ends at last: reported once, never recovered.
        let woke = Heartbeat {
            seq: 8,
            started: t0,
        };
        assert_eq!(
            run(&mut sup, t0 + MS(901), &[woke, healthy(t0 + MS(895))]),
            [Decision::WokeFenced { shard: ShardId(0) }]
        );
        assert!(run(&mut sup, t0 + MS(990), &[woke, healthy(t0 + MS(985))]).is_empty());
    }

    #[test]
    fn a_thread_stopped_between_ticks_is_seen_after_its_grace() {
        let t0 = Instant::now();
        let mut sup = Supervisor::new([ShardId(0)], policy());
        // The last tick started at t0 and ended; nothing since.
        let idle = Heartbeat {
            seq: 4,
            started: t0,
        };
        assert!(run(&mut sup, t0 + MS(109), &[idle]).is_empty(), "grace");
        assert_eq!(
            run(&mut sup, t0 + MS(110), &[idle]),
            [Decision::Stalled {
                shard: ShardId(0),
                overdue: MS(100),
                running: false
            }]
        );
        // A coarse check can see both limits passed at once.
        let mut late = Supervisor::new([ShardId(0)], policy());
        assert_eq!(run(&mut late, t0 + MS(400), &[idle]).len(), 2);
        assert!(late.is_failed_over(ShardId(0)));
    }

    #[test]
    fn a_stall_that_ends_before_failover_recovers() {
        let t0 = Instant::now();
        let mut sup = Supervisor::new([ShardId(0)], policy());
        let slow = Heartbeat {
            seq: 1,
            started: t0,
        };
        assert_eq!(run(&mut sup, t0 + MS(150), &[slow]).len(), 1);
        let next = Heartbeat {
            seq: 3,
            started: t0 + MS(200),
        };
        assert_eq!(
            run(&mut sup, t0 + MS(201), &[next]),
            [Decision::Recovered { shard: ShardId(0) }]
        );
        assert!(!sup.is_failed_over(ShardId(0)));
    }

    #[test]
    fn without_idle_grace_or_failover_only_running_ticks_are_timed() {
        let t0 = Instant::now();
        let mut sup = Supervisor::new(
            [ShardId(0)],
            StallPolicy {
                failover_after: None,
                idle_grace: None,
                ..policy()
            },
        );
        let idle = Heartbeat {
            seq: 2,
            started: t0,
        };
        assert!(run(&mut sup, t0 + MS(10_000), &[idle]).is_empty());
        let stuck = Heartbeat {
            seq: 3,
            started: t0,
        };
        assert_eq!(run(&mut sup, t0 + MS(10_000), &[stuck]).len(), 1);
        assert!(!sup.is_failed_over(ShardId(0)));
    }

    #[test]
    fn rehoming_is_deterministic_and_moves_only_the_lost_shards_zones() {
        let all: Vec<ShardId> = (0..4).map(ShardId).collect();
        assert_eq!(rehome(ZoneId(5), []), None);
        let without = |gone: &[u16]| -> Vec<ShardId> {
            all.iter()
                .copied()
                .filter(|s| !gone.contains(&s.0))
                .collect()
        };
        let mut spread = [0usize; 4];
        for z in 0..1000 {
            let zone = ZoneId(z);
            let a = rehome(zone, without(&[0])).unwrap();
            assert_ne!(a, ShardId(0));
            assert_eq!(rehome(zone, without(&[0])), Some(a), "same answer");
            spread[usize::from(a.0)] += 1;
            // Shard 3 fails next: only zones that went to 3 move.
            let b = rehome(zone, without(&[0, 3])).unwrap();
            if a != ShardId(3) {
                assert_eq!(a, b, "zone {z} stayed where it was");
            }
        }
        assert_eq!(spread[0], 0);
        for n in &spread[1..] {
            assert!((250..420).contains(n), "roughly even: {spread:?}");
        }
    }
}
