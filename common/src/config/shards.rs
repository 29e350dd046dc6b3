//! `[shards]`: the game-logic tier: cores, tick, rings, per-lane budgets and
//! queues, payload pools, health cadence.
//!
//! This section is the only source of the shard runtime's limits: the shard
//! crate builds its `ShardConfig` from a validated [`Config`](super::Config)
//! and checks nothing itself. The relations checked here are the ones the
//! runtime relies on (a tick budget fits its tick, an inbox holds a tick's
//! budget, every message the `[gateway]` limits allow fits a pool buffer, a
//! pool holds a message for every connection and stays within its memory
//! budget).

use serde::{Deserialize, Serialize};

use super::error::non_zero;
use super::{ConfigError, CoreSet, GatewayConfig, HostInfo, ZoneSet, check_cores};
use crate::lanes::Lane;

/// The highest `shards.tick_rate_hz` allowed: a 1 ms tick is already below
/// the scheduling jitter of a loaded host (and it fits `Welcome`'s `u16`).
pub const TICK_RATE_HZ_LIMIT: u32 = 1000;

const _: () = assert!(TICK_RATE_HZ_LIMIT <= u16::MAX as u32);

/// `[shards]`: the game-logic tier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShardsConfig {
    /// CPU cores that run shards, one shard per core. Default `"auto"`: the
    /// cores the gateway does not take (see
    /// [`Config::core_plan`](super::Config::core_plan)).
    pub cores: CoreSet,
    /// The zones this gateway serves: inclusive ranges and single ids,
    /// comma-separated (`"1-8,100,200-210"`). A ticket for any other zone
    /// is refused with `UNKNOWN_ZONE` (`docs/protocol.md` §4). Default
    /// `"0-1023"`: room for a demo, the bots and tests, while a stray id
    /// from a matchmaker bug is refused. At most 1048576 zones.
    pub zones: ZoneSet,
    /// Game ticks per second. Default 30: tuned for action games whose
    /// clients interpolate; 60 halves latency at twice the CPU.
    pub tick_rate_hz: u32,
    /// Time one tick of a shard may take before it counts as an overrun, in
    /// µs; at most the tick period. Default 20000: 60% of the 33333 µs
    /// period at 30 Hz, leaving the rest for draining rings and jitter.
    pub tick_budget_us: u32,
    /// Slots in each ring between a gateway core and a shard, in messages.
    /// Default 4096: a full critical-lane budget of one tick; a full ring
    /// sheds lowest lanes first.
    pub ring_slots_max: u32,
    /// `[shards.lane_fill_max_percent]`: how full a ring may be, in percent
    /// of `ring_slots_max`, before a push in each lane is refused.
    pub lane_fill_max_percent: LaneFillPercents,
    /// `[shards.lane_budget_per_tick]`: messages a shard takes from each
    /// lane per tick, so a flood in one lane cannot starve the others.
    pub lane_budget_per_tick: LaneBudgets,
    /// `[shards.inbox_slots_max]`: messages that may wait in a shard's
    /// inbox per lane, beyond what a tick takes.
    pub inbox_slots_max: InboxSlots,
    /// Outbound messages a shard may stage in one tick; more are dropped
    /// and counted per lane. Default 65536: a positions update and a few
    /// events per tick for each of 10000 players (`gateway.connections_max`).
    pub outbox_slots_max: u32,
    /// Messages a gateway core holds per zone while the zone moves to
    /// another shard; more are dropped. Default 4096: a move takes a few
    /// ticks, and this covers a zone of a few hundred players for that long.
    pub hold_slots_max: u32,
    /// Control entries (join, leave, zone moves) a gateway core keeps per
    /// shard while that ring is full; joins beyond it are refused. Default
    /// 1024: a reconnect storm of a thousand players per core waits instead
    /// of being refused.
    pub control_backlog_max: u32,
    /// Between ticks, a shard woken by arriving messages hands them to its
    /// game and sends what it replied at once, but at most one such pass
    /// per this many µs, so messages arriving close together are handled
    /// together; 0 = messages wait for the next tick. Default 50: a reply
    /// that needs no simulation step (an echo, an ack, chat) leaves within
    /// about 50 µs instead of up to a tick (33 ms at 30 Hz). An idle shard
    /// sleeps from tick to tick. Must be below the tick period.
    pub message_pass_us: u32,
    /// The game logic shards run. Default `"demo"`.
    pub game: GameKind,
    /// The watchdog reports a shard stalled (in its health, and in the log)
    /// when a tick has not finished for this long, in ms. Default 1000: 30 ticks at
    /// 30 Hz, far beyond any overrun, short enough that players notice little.
    pub stall_after_ms: u64,
    /// A shard whose tick or message pass has not finished for this long,
    /// in ms, or whose thread has not started a tick for this long after
    /// its next one was due (descheduled, stopped, dead), is failed over:
    /// fenced for good, its zones re-homed to the healthy shards with fresh
    /// game state and their players sent `ZONE_RESET` (or closed with
    /// `SHARD_UNAVAILABLE` when no shard is healthy); 0 = never (stalls are
    /// only reported). Default 3000: three times `stall_after_ms`, so a
    /// long GC-like pause or a slow tick is reported before anyone is
    /// moved, while a hung game costs its players a few seconds, not the
    /// session. Must exceed `stall_after_ms`.
    pub stall_failover_ms: u64,
    /// Ticks between two health snapshots of a shard. Default 10: three a
    /// second at 30 Hz, fresher than any scrape or status page needs, and
    /// cheap (a snapshot is a few hundred bytes copied under a lock).
    pub health_every_ticks: u32,
    /// Ticks of tick durations the health percentiles cover. Default 256:
    /// about 8.5 s at 30 Hz, enough samples for a p99 that still follows a
    /// change within seconds. At most 4096.
    pub tick_window_ticks: u32,
    /// Datagram-size buffers in each payload pool (every gateway core owns
    /// one for what it sends to shards, every shard one for what it sends
    /// to cores), for payloads over 72 bytes that fit a datagram: `"auto"`
    /// or a count. Default `"auto"`: one per `gateway.connections_max`
    /// (10000 by default), so a shard holding every player can send each a
    /// positions update per tick, and a core can forward one from each. A
    /// count may not be lower than `gateway.connections_max`; set one
    /// higher for games that send several large datagrams per player and
    /// tick.
    pub pool_datagram_bufs_max: BufCount,
    /// Stream-size buffers in each payload pool, for payloads larger than a
    /// datagram. Default 32: large stream messages are rare (chat history,
    /// inventories), and each costs `gateway.stream_message_bytes_max`.
    pub pool_stream_bufs_max: u32,
    /// Most bytes one payload pool may preallocate at start, its datagram
    /// buffers times (`gateway.datagram_message_bytes_max` - 2) plus its
    /// stream buffers times (`gateway.stream_message_bytes_max` - 2).
    /// Default 64 MiB: the defaults take 11.5 MB, which leaves room for five
    /// times the players or 1 MiB stream messages, while a 16 MiB stream
    /// limit with the default buffer count (512 MiB per pool) is refused.
    /// Every gateway core and every shard owns a pool, so the process
    /// preallocates up to (gateway cores + shards) × this.
    pub pool_bytes_max: u64,
    /// A shard whose CPU is also a gateway core's runs on that core's
    /// thread instead of a thread of its own. Default true: two threads
    /// pinned to one CPU only add a context switch to every hand-off, and
    /// replies leave in the same loop turn. The cost: a game stuck in a
    /// tick also stops that core's networking (the watchdog still reports
    /// it). Set false to keep a stuck game from freezing the core.
    pub run_on_gateway_thread: bool,
}

impl Default for ShardsConfig {
    fn default() -> Self {
        Self {
            cores: CoreSet::Auto,
            zones: ZoneSet::default(),
            tick_rate_hz: 30,
            tick_budget_us: 20_000,
            ring_slots_max: 4096,
            lane_fill_max_percent: LaneFillPercents::default(),
            lane_budget_per_tick: LaneBudgets::default(),
            inbox_slots_max: InboxSlots::default(),
            outbox_slots_max: 65_536,
            hold_slots_max: 4096,
            control_backlog_max: 1024,
            message_pass_us: 50,
            game: GameKind::Demo,
            stall_after_ms: 1_000,
            stall_failover_ms: 3_000,
            health_every_ticks: 10,
            tick_window_ticks: 256,
            pool_datagram_bufs_max: BufCount::Auto,
            pool_stream_bufs_max: 32,
            pool_bytes_max: 64 << 20,
            run_on_gateway_thread: true,
        }
    }
}

impl ShardsConfig {
    /// The tick period in µs (rounded down), or `None` when the rate is 0.
    pub fn tick_period_us(&self) -> Option<u32> {
        1_000_000u32.checked_div(self.tick_rate_hz)
    }

    /// Datagram-size buffers per payload pool, `"auto"` resolved against
    /// `gateway.connections_max`.
    pub fn pool_datagram_bufs(&self, gateway: &GatewayConfig) -> u32 {
        match self.pool_datagram_bufs_max {
            BufCount::Auto => gateway.connections_max,
            BufCount::Count(n) => n,
        }
    }

    /// Bytes one payload pool preallocates for `gateway`'s message limits.
    pub fn pool_bytes(&self, gateway: &GatewayConfig) -> u64 {
        let (datagram, stream) = self.pool_bytes_by_class(gateway);
        datagram.saturating_add(stream)
    }

    fn pool_bytes_by_class(&self, gateway: &GatewayConfig) -> (u64, u64) {
        let bytes = |bufs: u32, size: usize| u64::from(bufs).saturating_mul(size as u64);
        (
            bytes(
                self.pool_datagram_bufs(gateway),
                gateway.datagram_payload_bytes_max(),
            ),
            bytes(
                self.pool_stream_bufs_max,
                gateway.stream_payload_bytes_max(),
            ),
        )
    }

    /// Checks this section against the host, the `[gateway]` limits it
    /// depends on, and the number of payload `pools` (gateway cores plus
    /// shards).
    pub(super) fn validate(
        &self,
        gateway: &GatewayConfig,
        pools: usize,
        host: &HostInfo,
    ) -> Result<(), ConfigError> {
        check_cores("shards.cores", &self.cores, host)?;
        self.validate_tick()?;
        self.validate_lanes()?;
        non_zero("shards.outbox_slots_max", self.outbox_slots_max.into())?;
        non_zero("shards.hold_slots_max", self.hold_slots_max.into())?;
        non_zero(
            "shards.control_backlog_max",
            self.control_backlog_max.into(),
        )?;
        non_zero("shards.health_every_ticks", self.health_every_ticks.into())?;
        if !(1..=TICK_WINDOW_TICKS_LIMIT).contains(&self.tick_window_ticks) {
            return Err(ConfigError::invalid(
                "shards.tick_window_ticks",
                format!(
                    "{} is outside 1-{TICK_WINDOW_TICKS_LIMIT}; the percentiles sort the window at every snapshot",
                    self.tick_window_ticks
                ),
            ));
        }
        self.validate_pools(gateway, pools)
    }

    fn validate_tick(&self) -> Result<(), ConfigError> {
        let hz = self.tick_rate_hz;
        let period_us = match self.tick_period_us() {
            Some(p) if hz <= TICK_RATE_HZ_LIMIT => p,
            _ => {
                return Err(ConfigError::invalid(
                    "shards.tick_rate_hz",
                    format!("{hz} is outside 1-{TICK_RATE_HZ_LIMIT}"),
                ));
            }
        };
        non_zero("shards.tick_budget_us", self.tick_budget_us.into())?;
        if self.tick_budget_us > period_us {
            return Err(ConfigError::invalid(
                "shards.tick_budget_us",
                format!(
                    "{} exceeds the tick period of {period_us} us at {hz} Hz; lower it or lower shards.tick_rate_hz",
                    self.tick_budget_us
                ),
            ));
        }
        if self.message_pass_us >= period_us {
            return Err(ConfigError::invalid(
                "shards.message_pass_us",
                format!(
                    "{} us is not below the tick period of {period_us} us; lower it, or set 0 to hand messages to the game only at ticks",
                    self.message_pass_us
                ),
            ));
        }
        if self.stall_after_ms.saturating_mul(1000) <= u64::from(period_us) {
            return Err(ConfigError::invalid(
                "shards.stall_after_ms",
                format!(
                    "{} ms is not longer than the tick period of {period_us} us, so every tick would look stalled; raise it",
                    self.stall_after_ms
                ),
            ));
        }
        if self.stall_failover_ms != 0 && self.stall_failover_ms <= self.stall_after_ms {
            return Err(ConfigError::invalid(
                "shards.stall_failover_ms",
                format!(
                    "{} ms is not longer than shards.stall_after_ms ({} ms), so a shard would be failed over before it is reported stalled; raise it above {}, or set 0 to never fail over",
                    self.stall_failover_ms, self.stall_after_ms, self.stall_after_ms
                ),
            ));
        }
        Ok(())
    }

    fn validate_lanes(&self) -> Result<(), ConfigError> {
        non_zero("shards.ring_slots_max", self.ring_slots_max.into())?;
        if self.ring_slots_max > RING_SLOTS_LIMIT {
            return Err(ConfigError::invalid(
                "shards.ring_slots_max",
                format!(
                    "{} exceeds {RING_SLOTS_LIMIT}; every ring is allocated at start (gateway cores x shards x 2 rings), lower it",
                    self.ring_slots_max
                ),
            ));
        }
        for lane in Lane::ALL {
            let budget = self.lane_budget_per_tick.get(lane);
            let field = format!("shards.lane_budget_per_tick.{lane}");
            if budget == 0 {
                return Err(ConfigError::invalid(
                    &field,
                    format!("is 0, so {lane} messages would never be delivered; set at least 1"),
                ));
            }
            if budget > self.ring_slots_max {
                return Err(ConfigError::invalid(
                    &field,
                    format!(
                        "{budget} exceeds shards.ring_slots_max ({}); a tick cannot take more than a ring holds, lower it or raise shards.ring_slots_max",
                        self.ring_slots_max
                    ),
                ));
            }
            let inbox = self.inbox_slots_max.get(lane);
            if inbox < budget {
                return Err(ConfigError::invalid(
                    &format!("shards.inbox_slots_max.{lane}"),
                    format!(
                        "{inbox} is below shards.lane_budget_per_tick.{lane} ({budget}), so a tick could never take its budget; raise it or lower the budget"
                    ),
                ));
            }
        }
        self.lane_fill_max_percent
            .validate("shards.lane_fill_max_percent", "a ring")
    }

    fn validate_pools(&self, gateway: &GatewayConfig, pools: usize) -> Result<(), ConfigError> {
        let connections = gateway.connections_max;
        if let BufCount::Count(n) = self.pool_datagram_bufs_max
            && n < connections
        {
            return Err(ConfigError::invalid(
                "shards.pool_datagram_bufs_max",
                format!(
                    "{n} is below gateway.connections_max ({connections}), so a crowd of that many players loses datagram-size messages (one positions update each per tick) for want of a buffer; raise it to at least {connections}, set \"auto\", or lower gateway.connections_max"
                ),
            ));
        }
        non_zero(
            "shards.pool_stream_bufs_max",
            self.pool_stream_bufs_max.into(),
        )?;
        let (datagram, stream) = self.pool_bytes_by_class(gateway);
        let bytes = datagram.saturating_add(stream);
        if bytes <= self.pool_bytes_max {
            return Ok(());
        }
        let datagram_bufs = self.pool_datagram_bufs(gateway);
        let total = bytes.saturating_mul(pools as u64);
        let budget = format!(
            "each payload pool would preallocate {bytes} bytes ({datagram_bufs} datagram buffers of {} bytes and {} stream buffers of {} bytes), above shards.pool_bytes_max ({}); {pools} pools (one per gateway core and per shard) would take {total} bytes",
            gateway.datagram_payload_bytes_max(),
            self.pool_stream_bufs_max,
            gateway.stream_payload_bytes_max(),
            self.pool_bytes_max,
        );
        let (field, message) = if stream >= datagram {
            (
                "gateway.stream_message_bytes_max",
                format!(
                    "{} with shards.pool_stream_bufs_max = {}: {budget}; lower gateway.stream_message_bytes_max or shards.pool_stream_bufs_max, or raise shards.pool_bytes_max",
                    gateway.stream_message_bytes_max, self.pool_stream_bufs_max
                ),
            )
        } else if self.pool_datagram_bufs_max == BufCount::Auto {
            (
                "gateway.connections_max",
                format!(
                    "{connections} sizes the datagram buffers (shards.pool_datagram_bufs_max = \"auto\"): {budget}; raise shards.pool_bytes_max, or lower gateway.connections_max"
                ),
            )
        } else {
            (
                "shards.pool_datagram_bufs_max",
                format!(
                    "{datagram_bufs} with gateway.datagram_message_bytes_max = {}: {budget}; lower it (not below gateway.connections_max), or raise shards.pool_bytes_max",
                    gateway.datagram_message_bytes_max
                ),
            )
        };
        Err(ConfigError::invalid(field, message))
    }
}

/// A number of pool buffers: `"auto"` (sized by another limit, see the
/// field) or a count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BufCount {
    /// Sized by the limit the field names.
    #[default]
    Auto,
    /// Exactly this many.
    Count(u32),
}

/// How full a ring may be, per lane, in percent of `ring_slots_max`,
/// before a push in that lane is refused. The headroom above a lane's limit
/// is kept for the lanes above it; control entries (join, leave, zone
/// moves) may use the whole ring. Each lane at most the one above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LaneFillPercents {
    /// Default 100, and it must be: nothing is above critical.
    pub critical: u8,
    /// Default 90: a tenth of the ring stays free for critical input.
    pub high: u8,
    /// Default 75.
    pub normal: u8,
    /// Default 50: a bulk flood fills at most half the ring.
    pub bulk: u8,
}

impl Default for LaneFillPercents {
    fn default() -> Self {
        Self {
            critical: 100,
            high: 90,
            normal: 75,
            bulk: 50,
        }
    }
}

impl LaneFillPercents {
    /// Checks the table at `field` (`critical` is 100, each lane at least
    /// 1 and at most the lane above it); `what` names the buffer the
    /// errors speak of.
    pub(crate) fn validate(&self, field: &str, what: &str) -> Result<(), ConfigError> {
        if self.critical != 100 {
            return Err(ConfigError::invalid(
                &format!("{field}.critical"),
                format!(
                    "is {}; it must be 100: no lane is above critical to keep room for",
                    self.critical
                ),
            ));
        }
        let mut above = (Lane::Critical, self.critical);
        for lane in Lane::ALL.into_iter().skip(1) {
            let percent = self.get(lane);
            let name = format!("{field}.{lane}");
            if percent == 0 {
                return Err(ConfigError::invalid(
                    &name,
                    format!("is 0, so every {lane} message would be refused; set at least 1"),
                ));
            }
            if percent > above.1 {
                return Err(ConfigError::invalid(
                    &name,
                    format!(
                        "{percent} exceeds {field}.{} ({}); a lower lane may not fill more of {what} than the lane above it, lower it",
                        above.0, above.1
                    ),
                ));
            }
            above = (lane, percent);
        }
        Ok(())
    }
}

/// Messages a shard takes from one lane per tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LaneBudgets {
    /// Default 4096: every player's input, every tick.
    pub critical: u32,
    /// Default 2048.
    pub high: u32,
    /// Default 512.
    pub normal: u32,
    /// Default 256: bulk waits when the shard is busy.
    pub bulk: u32,
}

impl Default for LaneBudgets {
    fn default() -> Self {
        Self {
            critical: 4096,
            high: 2048,
            normal: 512,
            bulk: 256,
        }
    }
}

/// Messages that may wait in a shard's inbox per lane; when a lane's inbox
/// is full the shard sheds that lane's newest messages and counts them. At
/// least the lane's budget per tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboxSlots {
    /// Default 8192: two ticks of the critical budget; older input is stale.
    pub critical: u32,
    /// Default 8192: four ticks of the high budget.
    pub high: u32,
    /// Default 4096: eight ticks of the normal budget (chat may wait).
    pub normal: u32,
    /// Default 1024: four ticks of the bulk budget.
    pub bulk: u32,
}

impl Default for InboxSlots {
    fn default() -> Self {
        Self {
            critical: 8192,
            high: 8192,
            normal: 4096,
            bulk: 1024,
        }
    }
}

/// `get(lane)` and `to_array()` for a struct with one field per lane.
macro_rules! per_lane {
    ($name:ident, $ty:ty) => {
        impl $name {
            /// The value of `lane`.
            pub fn get(&self, lane: Lane) -> $ty {
                match lane {
                    Lane::Critical => self.critical,
                    Lane::High => self.high,
                    Lane::Normal => self.normal,
                    Lane::Bulk => self.bulk,
                }
            }

            /// The values in lane order (critical first), as the runtime
            /// indexes them.
            pub fn to_array(&self) -> [$ty; Lane::COUNT] {
                Lane::ALL.map(|lane| self.get(lane))
            }
        }
    };
}

per_lane!(LaneFillPercents, u8);
per_lane!(LaneBudgets, u32);
per_lane!(InboxSlots, u32);

/// The game logic a shard runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GameKind {
    /// A small shared world for trying Lanegate out.
    #[default]
    Demo,
    /// Echoes every message back to its sender: for load tests.
    Echo,
    /// Match-based arena: one zone per match.
    Arena,
}

impl GameKind {
    /// The name used in configuration.
    pub const fn name(self) -> &'static str {
        match self {
            GameKind::Demo => "demo",
            GameKind::Echo => "echo",
            GameKind::Arena => "arena",
        }
    }
}

/// The most `shards.ring_slots_max`: 1 Mi entries of 128 bytes per ring.
const RING_SLOTS_LIMIT: u32 = 1 << 20;

/// The most `shards.tick_window_ticks`.
const TICK_WINDOW_TICKS_LIMIT: u32 = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pool_fits_its_budget_with_room_to_grow() {
        let s = ShardsConfig::default();
        let g = GatewayConfig::default();
        assert_eq!(s.pool_datagram_bufs(&g), g.connections_max);
        assert_eq!(s.pool_bytes(&g), 10_000 * 1098 + 32 * 16_382);
        assert!(s.pool_bytes(&g) * 5 < s.pool_bytes_max);
    }

    #[test]
    fn lane_tables_index_in_lane_order() {
        assert_eq!(LaneBudgets::default().to_array(), [4096, 2048, 512, 256]);
        assert_eq!(LaneFillPercents::default().to_array(), [100, 90, 75, 50]);
        assert_eq!(InboxSlots::default().get(Lane::Normal), 4096);
    }

    #[test]
    fn failover_must_come_after_the_stall_report_or_be_off() {
        let mut s = ShardsConfig::default();
        assert!(s.validate_tick().is_ok());
        s.stall_failover_ms = s.stall_after_ms;
        let err = s.validate_tick().unwrap_err().to_string();
        assert!(err.contains("shards.stall_failover_ms"), "{err}");
        assert!(err.contains("raise it above 1000"), "{err}");
        s.stall_failover_ms = 0;
        assert!(s.validate_tick().is_ok(), "0 turns failover off");
    }
}
