//! The shard tier of a running gateway: `[shards]` mapped onto the shard
//! crate's [`ShardConfig`], and one pinned thread per shard running the
//! configured game.

use lanegate_common::config::GameKind;
use lanegate_common::lanes::Lane;
use lanegate_shard::games::{Arena, Demo, Echo};
use lanegate_shard::health::StallEvent;
use lanegate_shard::link::ShardEnds;
use lanegate_shard::worker::{self, ShardThreads};
use lanegate_shard::{Game, Shard, ShardConfig};
use tracing::{info, warn};

use super::RuntimeError;
use crate::serve::Plan;

/// The shard runtime's limits from the validated configuration. Limits the
/// file does not name (inbox and outbox sizes, pools, hold queues) keep the
/// shard crate's defaults, which document their own assumptions.
pub fn shard_config(plan: &Plan) -> ShardConfig {
    let s = &plan.config.shards;
    ShardConfig {
        tick_rate_hz: s.tick_rate_hz,
        tick_budget_us: s.tick_budget_us,
        stall_after_ms: u32::try_from(s.stall_after_ms).unwrap_or(u32::MAX),
        message_pass_us: s.message_pass_us,
        ring_slots_max: s.ring_slots_max,
        lane_budget_per_tick: Lane::ALL.map(|lane| s.lane_budget_per_tick.get(lane)),
        cpu_ids: plan.cores.shards.clone(),
        lanes: plan.lanes.clone(),
        ..ShardConfig::default()
    }
}

/// Starts one thread per shard running `game`, and the watchdog.
pub fn spawn(
    game: GameKind,
    ends: Vec<ShardEnds>,
    cfg: &ShardConfig,
) -> Result<ShardThreads, RuntimeError> {
    info!(game = game.name(), shards = ends.len(), "starting shards");
    match game {
        GameKind::Demo => start(ends, cfg, Demo::default),
        GameKind::Echo => start(ends, cfg, || Echo),
        GameKind::Arena => start(ends, cfg, Arena::default),
    }
}

fn start<G: Game + 'static>(
    ends: Vec<ShardEnds>,
    cfg: &ShardConfig,
    factory: fn() -> G,
) -> Result<ShardThreads, RuntimeError> {
    let shards = ends
        .into_iter()
        .map(|e| Shard::new(e, cfg, factory))
        .collect();
    worker::spawn(shards, cfg, on_stall).map_err(|source| RuntimeError::Io {
        what: "starting shard threads",
        source,
    })
}

fn on_stall(event: StallEvent) {
    match event {
        StallEvent::Stalled { shard, running } => {
            warn!(%shard, ?running, "shard tick stalled");
        }
        StallEvent::Recovered { shard } => info!(%shard, "shard recovered"),
        #[allow(unreachable_patterns)]
        other => warn!(?other, "shard watchdog event"),
    }
}

#[cfg(test)]
mod tests {
    use lanegate_common::config::{Config, HostInfo};

    use super::*;

    #[test]
    fn shards_section_maps_onto_a_valid_shard_config() {
        let mut config = Config::default();
        config.shards.tick_rate_hz = 60;
        config.shards.tick_budget_us = 10_000;
        config.shards.ring_slots_max = 1024;
        config.shards.lane_budget_per_tick.critical = 1024;
        config.shards.lane_budget_per_tick.high = 1024;
        config.shards.lane_budget_per_tick.bulk = 7;
        let plan = Plan::new(config, &HostInfo { cores: 2 }).unwrap();
        let cfg = shard_config(&plan);
        cfg.validate().unwrap();
        assert_eq!(cfg.tick_rate_hz, 60);
        assert_eq!(cfg.tick_budget_us, 10_000);
        assert_eq!(cfg.stall_after_ms, 1000);
        assert_eq!(cfg.ring_slots_max, 1024);
        assert_eq!(cfg.lane_budget_per_tick, [1024, 1024, 512, 7]);
        assert_eq!(cfg.cpu_ids, vec![1]);
    }
}
