//! Wiring: every ring and pool between `C` gateway cores and `S` shards.
//!
//! For each (core, shard) pair there is one [`ToShard`] ring and one
//! [`ToGateway`] ring. Each gateway core owns one inbound payload pool (with
//! a return ring from every shard), and each shard one outbound pool (with a
//! return ring from every core), its buffers sized by
//! [`ShardConfig::buf_classes`]. [`build`] allocates all of it at start;
//! nothing on the message path allocates afterwards.
//!
//! Every core and every shard also gets a [`Doorbell`]: the producers of
//! its inbound rings ring it ([`RingTx::notify`]) so it can sleep while
//! they are empty (see `lanegate_common::wake`). One [`FenceBoard`], shared
//! by every core and the watchdog, says which shards are failed over.

use std::sync::Arc;
use std::time::Instant;

use lanegate_common::ids::{CoreId, ShardId};
use lanegate_common::link::{ToGateway, ToShard};
use lanegate_common::wake::Doorbell;

use crate::config::ShardConfig;
use crate::fence::FenceBoard;
use crate::health::HealthSlot;
use crate::latency::LatencySlot;
use crate::levels::LevelBoard;
use crate::pool::{BufPool, BufReturn, pool};
use crate::ring::{RingError, RingRx, RingTx, ring};

/// One gateway core's ends of every ring.
#[derive(Debug)]
pub struct CoreEnds {
    /// The core.
    pub core: CoreId,
    /// The core's inbound payload pool.
    pub pool: BufPool,
    /// Per shard, in shard order.
    pub shards: Vec<CoreToShard>,
    /// Rung by the shards when they push to this core.
    pub bell: Arc<Doorbell>,
    /// Which shards are failed over (shared by every core and the watchdog).
    pub fences: Arc<FenceBoard>,
    /// Each shard's degradation level (shared by every core, every shard
    /// and the gateway's control thread).
    pub levels: Arc<LevelBoard>,
}

/// A gateway core's ends towards one shard.
#[derive(Debug)]
pub struct CoreToShard {
    /// Gateway → shard entries.
    pub tx: RingTx<ToShard>,
    /// Shard → gateway entries.
    pub rx: RingRx<ToGateway>,
    /// Gives the shard's outbound buffers back to the shard's pool.
    pub give_back: BufReturn,
}

/// One shard's ends of every ring.
#[derive(Debug)]
pub struct ShardEnds {
    /// The shard.
    pub shard: ShardId,
    /// The shard's outbound payload pool.
    pub pool: BufPool,
    /// Per gateway core, in core order.
    pub cores: Vec<ShardToCore>,
    /// Where the shard publishes its health.
    pub health: Arc<HealthSlot>,
    /// Where the shard publishes its latency histograms.
    pub latency: Arc<LatencySlot>,
    /// Rung by the gateway cores when they push to this shard.
    pub bell: Arc<Doorbell>,
    /// Each shard's degradation level; this shard reads its own.
    pub levels: Arc<LevelBoard>,
}

/// A shard's ends towards one gateway core.
#[derive(Debug)]
pub struct ShardToCore {
    /// Gateway → shard entries.
    pub rx: RingRx<ToShard>,
    /// Shard → gateway entries.
    pub tx: RingTx<ToGateway>,
    /// Gives the core's inbound buffers back to the core's pool.
    pub give_back: BufReturn,
}

/// Every ring and pool for `cores` gateway cores and `shards` shards.
#[derive(Debug)]
pub struct Links {
    /// Gateway side, one per core.
    pub cores: Vec<CoreEnds>,
    /// Shard side, one per shard.
    pub shards: Vec<ShardEnds>,
    /// Which shards are failed over: the watchdog fences, the cores read.
    pub fences: Arc<FenceBoard>,
    /// Each shard's degradation level: the gateway's control thread sets
    /// them, the cores and the shards read.
    pub levels: Arc<LevelBoard>,
}

/// Allocates every ring, pool and health slot. `epoch` is the origin of the
/// health slots' timestamps (any instant before the first tick).
pub fn build(
    cfg: &ShardConfig,
    cores: u16,
    shards: u16,
    epoch: Instant,
) -> Result<Links, RingError> {
    let slots = cfg.ring_slots_max as usize;
    let fill = cfg.lane_fill_max_slots();
    let classes = cfg.buf_classes;
    let datagram = cfg.pool_datagram_bufs_max as usize;
    let stream = cfg.pool_stream_bufs_max as usize;

    let mut core_pools = Vec::new();
    for _ in 0..cores {
        core_pools.push(pool(classes, datagram, stream, usize::from(shards))?);
    }
    let mut shard_pools = Vec::new();
    for _ in 0..shards {
        shard_pools.push(pool(classes, datagram, stream, usize::from(cores))?);
    }

    // [core][shard] and [shard][core] halves, filled pair by pair.
    let mut core_sides: Vec<Vec<CoreToShard>> = (0..cores).map(|_| Vec::new()).collect();
    let mut shard_sides: Vec<Vec<ShardToCore>> = (0..shards).map(|_| Vec::new()).collect();
    // Each pool's return ends, taken one per consumer in order.
    let mut core_returns: Vec<std::vec::IntoIter<BufReturn>> = Vec::new();
    let mut core_pool_list = Vec::new();
    for (p, r) in core_pools {
        core_pool_list.push(p);
        core_returns.push(r.into_iter());
    }
    let mut shard_returns: Vec<std::vec::IntoIter<BufReturn>> = Vec::new();
    let mut shard_pool_list = Vec::new();
    for (p, r) in shard_pools {
        shard_pool_list.push(p);
        shard_returns.push(r.into_iter());
    }
    let core_bells: Vec<Arc<Doorbell>> = (0..cores).map(|_| Arc::new(Doorbell::new())).collect();
    let shard_bells: Vec<Arc<Doorbell>> = (0..shards).map(|_| Arc::new(Doorbell::new())).collect();
    let fences = FenceBoard::new(shards, core_bells.clone());
    let levels = LevelBoard::new(shards);
    for c in 0..usize::from(cores) {
        for s in 0..usize::from(shards) {
            let (in_tx, in_rx) = ring::<ToShard>(slots, fill)?;
            let in_tx = in_tx.with_bell(Arc::clone(&shard_bells[s]));
            let (out_tx, out_rx) = ring::<ToGateway>(slots, fill)?;
            let out_tx = out_tx.with_bell(Arc::clone(&core_bells[c]));
            let to_core_pool = core_returns[c]
                .next()
                .expect("a core pool has one return end per shard");
            let to_shard_pool = shard_returns[s]
                .next()
                .expect("a shard pool has one return end per core");
            core_sides[c].push(CoreToShard {
                tx: in_tx,
                rx: out_rx,
                give_back: to_shard_pool,
            });
            shard_sides[s].push(ShardToCore {
                rx: in_rx,
                tx: out_tx,
                give_back: to_core_pool,
            });
        }
    }
    let cores = core_pool_list
        .into_iter()
        .zip(core_sides)
        .zip(core_bells)
        .zip(0u16..)
        .map(|(((pool, shards), bell), c)| CoreEnds {
            core: CoreId(c),
            pool,
            shards,
            bell,
            fences: Arc::clone(&fences),
            levels: Arc::clone(&levels),
        })
        .collect();
    let shards = shard_pool_list
        .into_iter()
        .zip(shard_sides)
        .zip(shard_bells)
        .zip(0u16..)
        .map(|(((pool, cores), bell), s)| ShardEnds {
            shard: ShardId(s),
            pool,
            cores,
            health: HealthSlot::new(ShardId(s), epoch),
            latency: LatencySlot::new(),
            bell,
            levels: Arc::clone(&levels),
        })
        .collect();
    Ok(Links {
        cores,
        shards,
        fences,
        levels,
    })
}

#[cfg(test)]
mod tests {
    use lanegate_common::ids::{PlayerId, SessionId, ZoneId};

    use super::*;

    #[test]
    fn every_pair_is_wired_both_ways() {
        let cfg = ShardConfig {
            ring_slots_max: 8,
            pool_datagram_bufs_max: 2,
            pool_stream_bufs_max: 1,
            ..ShardConfig::test_default()
        };
        let mut links = build(&cfg, 2, 3, Instant::now()).unwrap();
        assert_eq!(links.cores.len(), 2);
        assert_eq!(links.shards.len(), 3);
        let join = |n| ToShard::Join {
            session: SessionId(n),
            player: PlayerId(n),
            zone: ZoneId(0),
        };
        links.cores[1].shards[2].tx.push(join(12)).unwrap();
        links.cores[0].shards[2].tx.push(join(2)).unwrap();
        assert_eq!(links.shards[2].cores[1].rx.pop(), Some(join(12)));
        assert_eq!(links.shards[2].cores[0].rx.pop(), Some(join(2)));
        links.shards[1].cores[0]
            .tx
            .push(ToGateway::ZoneReset { zone: ZoneId(4) })
            .unwrap();
        assert_eq!(
            links.cores[0].shards[1].rx.pop(),
            Some(ToGateway::ZoneReset { zone: ZoneId(4) })
        );
    }
}
