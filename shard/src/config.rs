//! The shard runtime's limits, resolved into one plain value.
//!
//! Every number here comes from the `[shards]` and `[gateway]` sections of
//! the configuration (`lanegate_common::config`), which documents each
//! default's assumption and checks every range and relation at load, with
//! errors naming the field. This crate reads no file and checks nothing
//! again: [`ShardConfig::from_config`] takes a validated [`Config`] and adds
//! what only the caller knows (the CPUs to pin, the lane table it built).
//! Tests build one the same way from `Config::default()` and override
//! fields.

use std::time::Duration;

use lanegate_common::config::{Config, ZoneSet};
use lanegate_common::lanes::{Lane, LaneTable};
use lanegate_common::link::BufClasses;

/// Limits and rates of the shard runtime; the fields are those of
/// `[shards]` (see `lanegate_common::config::ShardsConfig` for each one's
/// meaning and default), per-lane tables as arrays in lane order.
#[derive(Clone, Debug)]
pub struct ShardConfig {
    /// Game ticks per second (`shards.tick_rate_hz`).
    pub tick_rate_hz: u32,
    /// How long a tick may take before it counts as an overrun, in µs
    /// (`shards.tick_budget_us`).
    pub tick_budget_us: u32,
    /// A tick still running after this long is reported stalled by the
    /// watchdog, in ms (`shards.stall_after_ms`).
    pub stall_after_ms: u64,
    /// A shard stalled this long is failed over, in ms; 0 = never
    /// (`shards.stall_failover_ms`).
    pub stall_failover_ms: u64,
    /// Slots in each ring, one ring per gateway core and shard each way
    /// (`shards.ring_slots_max`).
    pub ring_slots_max: u32,
    /// How full a ring may be, in percent of `ring_slots_max`, before a push
    /// in each lane is refused (`shards.lane_fill_max_percent`).
    pub lane_fill_max_percent: [u8; Lane::COUNT],
    /// Between-tick message passes at most this often, in µs; 0 = only at
    /// ticks (`shards.message_pass_us`).
    pub message_pass_us: u32,
    /// Messages the shard hands to the game per lane per tick
    /// (`shards.lane_budget_per_tick`).
    pub lane_budget_per_tick: [u32; Lane::COUNT],
    /// Messages that may wait in the shard's inbox per lane
    /// (`shards.inbox_slots_max`).
    pub inbox_slots_max: [u32; Lane::COUNT],
    /// Outbound messages a shard may stage in one tick
    /// (`shards.outbox_slots_max`).
    pub outbox_slots_max: u32,
    /// Datagram-size buffers per payload pool
    /// (`shards.pool_datagram_bufs_max`, `"auto"` resolved).
    pub pool_datagram_bufs_max: u32,
    /// Stream-size buffers per payload pool (`shards.pool_stream_bufs_max`).
    pub pool_stream_bufs_max: u32,
    /// What a pool buffer of each class holds, from the `[gateway]` message
    /// limits.
    pub buf_classes: BufClasses,
    /// Entries a gateway core may hold per zone while the zone moves
    /// (`shards.hold_slots_max`).
    pub hold_slots_max: u32,
    /// Control entries a producer keeps while the ring is full, per ring,
    /// before refusing joins (`shards.control_backlog_max`).
    pub control_backlog_max: u32,
    /// `normal` messages a gateway core defers at level 2 and up
    /// (`overload.defer_normal_slots_max`).
    pub defer_normal_slots_max: u32,
    /// Longest a deferred message may wait before it is dropped instead of
    /// released, in ms (`overload.defer_normal_max_ms`).
    pub defer_normal_max_ms: u64,
    /// Ticks between two health snapshots (`shards.health_every_ticks`).
    pub health_every_ticks: u32,
    /// Sliding window of tick durations for the percentiles, in ticks
    /// (`shards.tick_window_ticks`).
    pub tick_window_ticks: u32,
    /// CPU ids to pin shard threads to, one per shard. Empty: no pinning.
    pub cpu_ids: Vec<usize>,
    /// The lane table outbound message types are classified with; the same
    /// as the gateway's.
    pub lanes: LaneTable,
    /// The zones the gateway serves (`shards.zones`): a game can move a
    /// player only into one of them.
    pub zones: ZoneSet,
    /// Record the latency histograms (`observability.latency_histograms`):
    /// the cores' time to the ring, the shards' service and tick times.
    pub latency_histograms: bool,
}

impl ShardConfig {
    /// The runtime's limits from `config`, which must have passed
    /// `Config::validate`, with the CPUs to pin shard threads to (one per
    /// shard, empty for none) and the lane table built from `[lanes]`.
    pub fn from_config(config: &Config, cpu_ids: Vec<usize>, lanes: LaneTable) -> Self {
        let s = &config.shards;
        Self {
            tick_rate_hz: s.tick_rate_hz,
            tick_budget_us: s.tick_budget_us,
            stall_after_ms: s.stall_after_ms,
            stall_failover_ms: s.stall_failover_ms,
            ring_slots_max: s.ring_slots_max,
            lane_fill_max_percent: s.lane_fill_max_percent.to_array(),
            message_pass_us: s.message_pass_us,
            lane_budget_per_tick: s.lane_budget_per_tick.to_array(),
            inbox_slots_max: s.inbox_slots_max.to_array(),
            outbox_slots_max: s.outbox_slots_max,
            pool_datagram_bufs_max: s.pool_datagram_bufs(&config.gateway),
            pool_stream_bufs_max: s.pool_stream_bufs_max,
            buf_classes: BufClasses::from_config(&config.gateway),
            hold_slots_max: s.hold_slots_max,
            control_backlog_max: s.control_backlog_max,
            defer_normal_slots_max: config.overload.defer_normal_slots_max,
            defer_normal_max_ms: config.overload.defer_normal_max_ms,
            health_every_ticks: s.health_every_ticks,
            tick_window_ticks: s.tick_window_ticks,
            cpu_ids,
            lanes,
            zones: s.zones.clone(),
            latency_histograms: config.observability.latency_histograms,
        }
    }

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
        Duration::from_millis(self.stall_after_ms)
    }

    /// How long a stall lasts before the shard is failed over; `None` when
    /// failover is off.
    pub fn stall_failover(&self) -> Option<Duration> {
        (self.stall_failover_ms > 0).then(|| Duration::from_millis(self.stall_failover_ms))
    }

    /// The per-lane ring fill limits in slots, for a ring of `ring_slots_max`.
    pub(crate) fn lane_fill_max_slots(&self) -> [usize; Lane::COUNT] {
        let slots = self.ring_slots_max as usize;
        self.lane_fill_max_percent
            .map(|p| (slots * usize::from(p) / 100).max(1))
    }

    /// `Config::default()`'s limits, no pinning, the default lane table:
    /// the base unit tests override.
    #[cfg(test)]
    pub(crate) fn test_default() -> Self {
        Self::from_config(&Config::default(), Vec::new(), LaneTable::default())
    }
}

#[cfg(test)]
mod tests {
    use lanegate_common::config::BufCount;

    use super::*;

    #[test]
    fn default_is_the_config_default() {
        let cfg = ShardConfig::test_default();
        assert_eq!(cfg.tick_interval(), Duration::from_nanos(33_333_333));
        assert_eq!(cfg.tick_budget(), Duration::from_micros(20_000));
        assert_eq!(cfg.stall_after(), Duration::from_secs(1));
        assert_eq!(cfg.lane_budget_per_tick, [4096, 2048, 512, 256]);
        assert_eq!(cfg.buf_classes.datagram_bytes, 1098);
        assert_eq!(cfg.buf_classes.stream_bytes, 16_382);
    }

    #[test]
    fn auto_datagram_buffers_follow_the_connections() {
        let mut config = Config::default();
        config.gateway.connections_max = 25_000;
        let cfg = ShardConfig::from_config(&config, Vec::new(), LaneTable::default());
        assert_eq!(cfg.pool_datagram_bufs_max, 25_000);
    }

    #[test]
    fn every_shards_field_is_carried_over() {
        let mut config = Config::default();
        let s = &mut config.shards;
        s.tick_rate_hz = 60;
        s.tick_budget_us = 10_000;
        s.stall_after_ms = 250;
        s.stall_failover_ms = 750;
        s.ring_slots_max = 1024;
        s.lane_fill_max_percent.bulk = 25;
        s.message_pass_us = 0;
        s.lane_budget_per_tick.high = 7;
        s.inbox_slots_max.normal = 9;
        s.outbox_slots_max = 11;
        s.pool_datagram_bufs_max = BufCount::Count(12_000);
        s.pool_stream_bufs_max = 13;
        s.hold_slots_max = 14;
        s.control_backlog_max = 15;
        s.health_every_ticks = 16;
        s.tick_window_ticks = 17;
        config.gateway.stream_message_bytes_max = 4096;
        let cfg = ShardConfig::from_config(&config, vec![3], LaneTable::default());
        assert_eq!(
            (cfg.tick_rate_hz, cfg.tick_budget_us, cfg.stall_after_ms),
            (60, 10_000, 250)
        );
        assert_eq!(cfg.stall_failover(), Some(Duration::from_millis(750)));
        assert_eq!(cfg.ring_slots_max, 1024);
        assert_eq!(cfg.lane_fill_max_percent, [100, 90, 75, 25]);
        assert_eq!(cfg.message_pass(), None);
        assert_eq!(cfg.lane_budget_per_tick, [4096, 7, 512, 256]);
        assert_eq!(cfg.inbox_slots_max, [8192, 8192, 9, 1024]);
        assert_eq!(cfg.outbox_slots_max, 11);
        assert_eq!(
            (cfg.pool_datagram_bufs_max, cfg.pool_stream_bufs_max),
            (12_000, 13)
        );
        assert_eq!(cfg.buf_classes.stream_bytes, 4094);
        assert_eq!((cfg.hold_slots_max, cfg.control_backlog_max), (14, 15));
        assert_eq!((cfg.health_every_ticks, cfg.tick_window_ticks), (16, 17));
        assert_eq!(cfg.cpu_ids, [3]);
    }

    #[test]
    fn lane_fill_slots() {
        let cfg = ShardConfig {
            ring_slots_max: 8,
            ..ShardConfig::test_default()
        };
        assert_eq!(cfg.lane_fill_max_slots(), [8, 7, 6, 4]);
    }
}
