//! The shard tier of a running gateway: the shard crate's [`ShardConfig`]
//! built from the validated configuration, and the shards running the games a
//! [`GameFactory`] makes: one pinned thread per shard, except that a shard
//! placed on the CPU of a gateway core is hosted by that core's thread when
//! `shards.run_on_gateway_thread` is on (see `lanegate_shard::worker`).

use std::sync::Arc;

use lanegate_common::config::ZoneSet;
use lanegate_common::ids::{ShardId, ZoneId};
use lanegate_shard::directory::default_shard;
use lanegate_shard::fence::FenceBoard;
use lanegate_shard::health::StallEvent;
use lanegate_shard::latency::LatencySlot;
use lanegate_shard::wiring::ShardEnds;
use lanegate_shard::worker::{self, HostedShard, ShardThreads};
use lanegate_shard::{Game, Shard, ShardConfig};
use std::time::Instant;

use tracing::{error, info, warn};

use super::Plan;
use super::RuntimeError;

/// The shard runtime's limits: every one from the validated configuration
/// (`[shards]`, and `[gateway]`'s message limits for the pool buffers),
/// pinned to the plan's shard CPUs, with its lane table.
pub fn shard_config(plan: &Plan) -> ShardConfig {
    ShardConfig::from_config(&plan.config, plan.cores.shards.clone(), plan.lanes.clone())
}

/// The running shards: their threads and watchdog, and the shards gateway
/// cores host.
pub struct ShardTier {
    /// The shard threads and the watchdog (which also watches hosted shards).
    pub threads: ShardThreads,
    /// Per gateway core (by index), the shards its thread runs.
    pub hosted: Vec<Vec<HostedShard>>,
    /// Each shard's latency histograms, in shard order.
    pub latency_slots: Vec<Arc<LatencySlot>>,
}

/// Which gateway core (by index) hosts each shard, if any: the core on the
/// shard's CPU, when `run_on_gateway_thread` is on.
pub fn hosts(plan: &Plan) -> Vec<Option<usize>> {
    plan.cores
        .shards
        .iter()
        .map(|cpu| {
            if !plan.config.shards.run_on_gateway_thread {
                return None;
            }
            plan.cores.gateway.iter().position(|g| g == cpu)
        })
        .collect()
}

/// What a game instance is made for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GameStart {
    /// The shard that runs it.
    pub shard: ShardId,
    /// How many shards the gateway runs.
    pub shard_count: u16,
    /// Every zone the gateway serves (`shards.zones`): where players can
    /// be, and where a game may move them.
    pub zones: ZoneSet,
}

impl GameStart {
    /// The start of a game for `shard` of `shard_count`, the gateway
    /// serving `zones`, as the runtime makes it (for tests of a game, and
    /// hosts that run shards themselves).
    pub fn new(shard: ShardId, shard_count: u16, zones: ZoneSet) -> Self {
        Self {
            shard,
            shard_count,
            zones,
        }
    }

    /// The zones placed on this shard at start (the directory's default
    /// placement, `zone % shard_count`).
    /// Zones move later (rebalancing, failover), and a player can be
    /// moved into any zone, so a game creates zone state on `on_join`
    /// rather than only for these.
    pub fn own_zones(&self) -> impl Iterator<Item = ZoneId> + '_ {
        self.zones
            .iter()
            .filter(move |&z| default_shard(z, self.shard_count) == self.shard)
    }
}

/// Makes the game instances shards run: once per shard at start, and again
/// for a shard whose game panicked (a fresh instance replaces it, and its
/// zones' players get `ZONE_RESET`).
///
/// Any `Fn(GameStart) -> G` closure is one: `|_start| MyGame::default()`.
/// A game with its own `[game]` table is started through
/// [`cli::run`](crate::cli::run), which reads the table first.
pub trait GameFactory: Send + Sync + 'static {
    /// The game the shards run.
    type Game: Game + 'static;
    /// A fresh instance for the shard `start` names.
    fn make(&self, start: GameStart) -> Self::Game;
}

impl<G, F> GameFactory for F
where
    G: Game + 'static,
    F: Fn(GameStart) -> G + Send + Sync + 'static,
{
    type Game = G;
    fn make(&self, start: GameStart) -> G {
        self(start)
    }
}

/// Starts the shards running games from `games` (threads, and hosted shards
/// handed back for their cores) and the watchdog, which fences on `fences`
/// a shard stalled past `shards.stall_failover_ms`.
pub fn spawn<F: GameFactory>(
    games: F,
    ends: Vec<ShardEnds>,
    cfg: &ShardConfig,
    hosts: &[Option<usize>],
    gateway_cores: usize,
    fences: Arc<FenceBoard>,
) -> Result<ShardTier, RuntimeError> {
    info!(shards = ends.len(), "starting shards");
    let placement = Placement {
        cfg,
        hosts,
        gateway_cores,
        fences,
    };
    placement.start(ends, Arc::new(games))
}

struct Placement<'a> {
    cfg: &'a ShardConfig,
    hosts: &'a [Option<usize>],
    gateway_cores: usize,
    fences: Arc<FenceBoard>,
}

impl Placement<'_> {
    fn start<F: GameFactory>(
        &self,
        ends: Vec<ShardEnds>,
        games: Arc<F>,
    ) -> Result<ShardTier, RuntimeError> {
        let now = Instant::now();
        let mut hosted: Vec<Vec<HostedShard>> =
            (0..self.gateway_cores).map(|_| Vec::new()).collect();
        let mut hosted_slots = Vec::new();
        let mut threaded = Vec::new();
        // The threads' config lists only their CPUs, in order.
        let mut threaded_cfg = self.cfg.clone();
        threaded_cfg.cpu_ids.clear();
        let shard_count = u16::try_from(ends.len()).unwrap_or(u16::MAX);
        let latency_slots = ends.iter().map(|e| Arc::clone(&e.latency)).collect();
        for (i, e) in ends.into_iter().enumerate() {
            let games = Arc::clone(&games);
            let start = GameStart::new(e.shard, shard_count, self.cfg.zones.clone());
            let shard = Shard::new(e, self.cfg, move || games.make(start.clone()));
            let cpu = self.cfg.cpu_ids.get(i).copied();
            match self.hosts.get(i).copied().flatten() {
                Some(core) if core < hosted.len() => {
                    info!(
                        shard = %shard.id(),
                        gateway_core = core,
                        cpu,
                        "shard runs on the gateway core's thread (same CPU)"
                    );
                    hosted_slots.push(shard.health_slot());
                    hosted[core].push(HostedShard::new(shard, self.cfg, now));
                }
                _ => {
                    threaded.push(shard);
                    if let Some(cpu) = cpu {
                        threaded_cfg.cpu_ids.push(cpu);
                    }
                }
            }
        }
        let fences = Arc::clone(&self.fences);
        let threads =
            worker::spawn_supervised(threaded, hosted_slots, &threaded_cfg, fences, on_stall)
                .map_err(|source| RuntimeError::Io {
                    what: "starting shard threads",
                    source,
                })?;
        Ok(ShardTier {
            threads,
            hosted,
            latency_slots,
        })
    }
}

fn on_stall(event: StallEvent) {
    match event {
        StallEvent::Stalled { shard, running } => {
            warn!(%shard, late = ?running, "shard stalled");
        }
        StallEvent::Recovered { shard } => info!(%shard, "shard recovered"),
        StallEvent::FailedOver {
            shard,
            stalled_for,
            in_tick,
        } => error!(
            %shard,
            ?stalled_for,
            in_tick,
            "shard failed over: fenced for good, its zones re-homed to the healthy shards"
        ),
        StallEvent::WokeFenced { shard } => warn!(
            %shard,
            "a failed-over shard woke up; what it sends is dropped, and it is not reused"
        ),
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
        let host = HostInfo { cores: 2 };
        config.validate(&host).unwrap();
        let plan = Plan::new(config, &host).unwrap();
        let cfg = shard_config(&plan);
        assert_eq!(cfg.tick_rate_hz, 60);
        assert_eq!(cfg.tick_budget_us, 10_000);
        assert_eq!(cfg.stall_after_ms, 1000);
        assert_eq!(cfg.ring_slots_max, 1024);
        assert_eq!(cfg.lane_budget_per_tick, [1024, 1024, 512, 7]);
        assert_eq!(cfg.cpu_ids, vec![1]);
        assert_eq!(hosts(&plan), vec![None], "own CPU: own thread");
    }

    #[test]
    fn a_shard_on_a_gateway_cpu_is_hosted_by_that_core_unless_turned_off() {
        let mut config =
            Config::from_toml_str("[gateway]\ncores = [0, 1]\n[shards]\ncores = [1, 1, 0]\n")
                .unwrap();
        let host = HostInfo { cores: 2 };
        let plan = Plan::new(config.clone(), &host).unwrap();
        assert_eq!(hosts(&plan), vec![Some(1), Some(1), Some(0)]);
        config.shards.run_on_gateway_thread = false;
        let plan = Plan::new(config, &host).unwrap();
        assert_eq!(hosts(&plan), vec![None, None, None]);
    }
}
