//! The shard runtime's limits, in one struct.
//!
//! This crate does not read configuration files: the gateway maps the
//! `[shards]` section of its config onto a [`ShardConfig`] and calls
//! [`ShardConfig::validate`], whose errors name the field at fault.

use std::time::Duration;

use lanegate_common::lanes::{Lane, LaneTable};

/// Limits and rates of the shard runtime. Every queue has a named maximum.
#[derive(Clone, Debug)]
pub struct ShardConfig {
    /// Game ticks per second. The default, 30, is a common rate for action
    /// games; inputs wait at most one tick (33 ms) for the game to see them.
    pub tick_rate_hz: u32,
    /// How long a tick may take before it counts as an overrun, in
    /// microseconds. Default: half the tick interval, leaving the other half
    /// for the worker's own draining and flushing and for jitter.
    pub tick_budget_us: u32,
    /// A tick still running after this long is reported as stalled by the
    /// watchdog, in milliseconds. Default: 500 ms, fifteen ticks at 30 Hz:
    /// far beyond any overrun a healthy game produces.
    pub stall_after_ms: u32,
    /// Slots in each ring (one ring per gateway core and shard, each way).
    /// Default 4096: at 30 Hz, 4096 entries per tick per core is more than a
    /// gateway core can classify, so a full ring means a stuck consumer.
    pub ring_slots_max: u32,
    /// How full a ring may be, in percent of `ring_slots_max`, before a push
    /// in each lane (critical, high, normal, bulk) is refused. The headroom
    /// above a lane's limit is reserved for the lanes above it, so a bulk
    /// flood fills at most half the ring and critical always has room.
    /// Control entries (join, leave, zone moves) may use the whole ring.
    pub lane_fill_max_percent: [u8; Lane::COUNT],
    /// Between ticks, a worker woken by arriving messages (its doorbell)
    /// hands them to the game and flushes what it sent, at most once per
    /// this many microseconds, so messages arriving together are handled
    /// together; 0 = only at ticks. Default 50: a reply that needs no
    /// simulation step (an echo, an ack, chat) leaves within about 50 µs
    /// instead of up to a whole tick (33 ms at 30 Hz). An idle shard sleeps
    /// from tick to tick; the tick itself is unchanged.
    pub message_pass_us: u32,
    /// Messages the shard hands to the game per lane per tick. A flood in
    /// one lane waits in its own inbox and never delays the lanes above it.
    pub lane_budget_per_tick: [u32; Lane::COUNT],
    /// Messages that may wait in the shard's inbox per lane; beyond this the
    /// shard sheds the lane's newest messages and counts them.
    pub inbox_slots_max: [u32; Lane::COUNT],
    /// Outbound messages a shard may stage in one tick.
    pub outbox_slots_max: u32,
    /// Pooled datagram-size buffers per ring, for payloads too large to go
    /// inline. Default 1024: one positions update per player per tick for a
    /// thousand players of one core.
    pub pool_small_bufs: u32,
    /// Pooled stream-size (16 KiB) buffers per ring. Default 32: large stream
    /// messages are rare (chat history, inventories).
    pub pool_large_bufs: u32,
    /// Entries a gateway core may hold per zone while the zone moves.
    /// Default 4096: a move takes a few ticks; this covers one zone of a few
    /// hundred players for that long.
    pub hold_slots_max: u32,
    /// Control entries (join, leave, zone control) a producer keeps while the
    /// ring is full, per ring, before refusing joins.
    pub control_backlog_max: u32,
    /// Ticks between two health snapshots.
    pub health_every_ticks: u32,
    /// Sliding window of tick durations for the percentiles, in ticks.
    pub tick_window_ticks: u32,
    /// CPU ids to pin shard threads to, one per shard. Empty: no pinning.
    pub cpu_ids: Vec<usize>,
    /// The lane table outbound message types are classified with; the same
    /// as the gateway's.
    pub lanes: LaneTable,
}

impl Default for ShardConfig {
    fn default() -> Self {
        Self {
            tick_rate_hz: 30,
            tick_budget_us: 16_666,
            stall_after_ms: 500,
            message_pass_us: 50,
            ring_slots_max: 4096,
            lane_fill_max_percent: [100, 90, 75, 50],
            lane_budget_per_tick: [4096, 2048, 1024, 256],
            inbox_slots_max: [8192, 8192, 4096, 1024],
            outbox_slots_max: 65536,
            pool_small_bufs: 1024,
            pool_large_bufs: 32,
            hold_slots_max: 4096,
            control_backlog_max: 1024,
            health_every_ticks: 10,
            tick_window_ticks: 256,
            cpu_ids: Vec::new(),
            lanes: LaneTable::default(),
        }
    }
}

impl ShardConfig {
    /// The tick interval.
    pub fn tick_interval(&self) -> Duration {
        Duration::from_nanos(1_000_000_000 / u64::from(self.tick_rate_hz.max(1)))
    }

    /// The tick budget.
    pub fn tick_budget(&self) -> Duration {
        Duration::from_micros(u64::from(self.tick_budget_us))
    }

    /// The interval of between-tick message passes; `None` when disabled.
    pub fn message_pass(&self) -> Option<Duration> {
        (self.message_pass_us > 0).then(|| Duration::from_micros(u64::from(self.message_pass_us)))
    }

    /// The stall limit.
    pub fn stall_after(&self) -> Duration {
        Duration::from_millis(u64::from(self.stall_after_ms))
    }

    /// Checks every limit and the relations between them.
    pub fn validate(&self) -> Result<(), ShardConfigError> {
        use ShardConfigError as E;
        if !(1..=1000).contains(&self.tick_rate_hz) {
            return Err(E::Range {
                field: "tick_rate_hz",
                why: "must be 1..=1000",
            });
        }
        let interval_us = 1_000_000 / self.tick_rate_hz;
        if self.tick_budget_us == 0 || self.tick_budget_us > interval_us {
            return Err(E::Relation {
                field: "tick_budget_us",
                why: format!(
                    "must be 1..={interval_us}, the tick interval at tick_rate_hz = {}",
                    self.tick_rate_hz
                ),
            });
        }
        if self.message_pass_us >= interval_us {
            return Err(E::Relation {
                field: "message_pass_us",
                why: format!(
                    "must be below the tick interval ({interval_us} us), or 0 to hand messages to the game only at ticks"
                ),
            });
        }
        if u64::from(self.stall_after_ms) * 1000 <= u64::from(interval_us) {
            return Err(E::Relation {
                field: "stall_after_ms",
                why: format!("must exceed the tick interval ({interval_us} us)"),
            });
        }
        if !(2..=1 << 20).contains(&self.ring_slots_max) {
            return Err(E::Range {
                field: "ring_slots_max",
                why: "must be 2..=1048576",
            });
        }
        if self.lane_fill_max_percent[0] != 100 {
            return Err(E::Range {
                field: "lane_fill_max_percent",
                why: "the critical lane (first) must be 100: nothing is above it",
            });
        }
        if self
            .lane_fill_max_percent
            .windows(2)
            .any(|w| w[1] > w[0] || w[1] == 0)
        {
            return Err(E::Range {
                field: "lane_fill_max_percent",
                why: "must be non-increasing from critical to bulk, and above 0",
            });
        }
        for lane in Lane::ALL {
            let i = lane.index();
            if self.lane_budget_per_tick[i] == 0 {
                return Err(E::Lane {
                    field: "lane_budget_per_tick",
                    lane,
                    why: "must be above 0, or the lane never drains".into(),
                });
            }
            if self.inbox_slots_max[i] < self.lane_budget_per_tick[i] {
                return Err(E::Lane {
                    field: "inbox_slots_max",
                    lane,
                    why: format!(
                        "must be at least lane_budget_per_tick ({})",
                        self.lane_budget_per_tick[i]
                    ),
                });
            }
        }
        if self.outbox_slots_max == 0 {
            return Err(E::Range {
                field: "outbox_slots_max",
                why: "must be above 0",
            });
        }
        if self.hold_slots_max == 0 || self.control_backlog_max == 0 {
            return Err(E::Range {
                field: "hold_slots_max",
                why: "hold_slots_max and control_backlog_max must be above 0",
            });
        }
        if self.health_every_ticks == 0 || !(1..=4096).contains(&self.tick_window_ticks) {
            return Err(E::Range {
                field: "tick_window_ticks",
                why: "must be 1..=4096, and health_every_ticks above 0",
            });
        }
        Ok(())
    }

    /// The per-lane ring fill limits in slots, for a ring of `ring_slots_max`.
    pub(crate) fn lane_fill_max_slots(&self) -> [usize; Lane::COUNT] {
        let slots = self.ring_slots_max as usize;
        self.lane_fill_max_percent
            .map(|p| (slots * usize::from(p) / 100).max(1))
    }
}

/// A [`ShardConfig`] field out of range or inconsistent with another.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShardConfigError {
    /// A field is out of its range.
    #[error("shards.{field}: {why}")]
    Range {
        /// The field.
        field: &'static str,
        /// What is wrong.
        why: &'static str,
    },
    /// A field contradicts another.
    #[error("shards.{field}: {why}")]
    Relation {
        /// The field.
        field: &'static str,
        /// What is wrong.
        why: String,
    },
    /// A per-lane field is wrong for one lane.
    #[error("shards.{field} ({lane}): {why}")]
    Lane {
        /// The field.
        field: &'static str,
        /// The lane.
        lane: Lane,
        /// What is wrong.
        why: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        ShardConfig::default().validate().unwrap();
        assert_eq!(
            ShardConfig::default().tick_interval(),
            Duration::from_nanos(33_333_333)
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cfg = ShardConfig {
            tick_budget_us: 50_000,
            ..ShardConfig::default()
        };
        assert_eq!(
            cfg.validate().unwrap_err().to_string(),
            "shards.tick_budget_us: must be 1..=33333, the tick interval at tick_rate_hz = 30"
        );
        let mut cfg = ShardConfig::default();
        cfg.inbox_slots_max[3] = 1;
        assert_eq!(
            cfg.validate().unwrap_err().to_string(),
            "shards.inbox_slots_max (bulk): must be at least lane_budget_per_tick (256)"
        );
        let cfg = ShardConfig {
            lane_fill_max_percent: [100, 50, 75, 50],
            ..ShardConfig::default()
        };
        assert!(matches!(
            cfg.validate(),
            Err(ShardConfigError::Range {
                field: "lane_fill_max_percent",
                ..
            })
        ));
    }

    #[test]
    fn lane_fill_slots() {
        let cfg = ShardConfig {
            ring_slots_max: 8,
            ..ShardConfig::default()
        };
        assert_eq!(cfg.lane_fill_max_slots(), [8, 7, 6, 4]);
    }
}
