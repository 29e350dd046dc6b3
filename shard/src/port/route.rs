//! Where an entry goes once the port accepted it: held while its zone
//! moves, else onto its shard's ring (control entries wait in a backlog
//! when the ring is full; messages are dropped and counted instead). A
//! message going onto the ring is stamped with how long the core held it
//! and its time to the ring is recorded (`latency.rs`).

use lanegate_common::ids::{ShardId, ZoneId};
use lanegate_common::link::ToShard;

use super::latency::stamped;
use super::{DropReason, GatewayPort, PortError};
use crate::pool::BufPool;

impl GatewayPort {
    pub(super) fn route(&mut self, zone: ZoneId, entry: ToShard) -> Result<(), PortError> {
        let shard = self.shard_of(zone);
        self.route_to(zone, shard, entry)
    }

    /// [`GatewayPort::route`] to `shard`, which the caller looked up with
    /// [`GatewayPort::shard_of`]: held while the zone moves, else pushed.
    pub(super) fn route_to(
        &mut self,
        zone: ZoneId,
        shard: ShardId,
        entry: ToShard,
    ) -> Result<(), PortError> {
        if let Some(hold) = self.holds.get_mut(&zone) {
            if let Some(lane) = entry.lane() {
                if hold.messages >= self.hold_slots_max {
                    self.drops.count(DropReason::HoldFull, lane);
                    recycle(&mut self.pool, entry);
                    return Err(PortError::Full { lane });
                }
                hold.messages += 1;
            }
            hold.queue.push_back(entry);
            return Ok(());
        }
        self.push_to(shard, entry)
    }

    pub(super) fn push_to(&mut self, shard: ShardId, entry: ToShard) -> Result<(), PortError> {
        if self.is_fenced(shard) {
            // Only when no shard is live: a fenced shard is never routed to
            // otherwise. Control entries for it have no one to reach.
            let lane = entry.lane();
            recycle(&mut self.pool, entry);
            return match lane {
                Some(lane) => {
                    self.drops.count(DropReason::ShardLost, lane);
                    Err(PortError::Full { lane })
                }
                None => Ok(()),
            };
        }
        let received_at = entry.received_at();
        let link = &mut self.shards[usize::from(shard.0)];
        match entry.lane() {
            None if link.backlog.is_empty() => {
                if let Err(full) = link.ring.tx.offer(entry) {
                    link.backlog.push_back(full.entry);
                }
                Ok(())
            }
            None => {
                link.backlog.push_back(entry);
                Ok(())
            }
            Some(lane) if !link.backlog.is_empty() => {
                self.drops.count(DropReason::Backlog, lane);
                recycle(&mut self.pool, entry);
                Err(PortError::Full { lane })
            }
            Some(lane) => match link.ring.tx.offer(stamped(entry, self.turn)) {
                Ok(()) => {
                    self.ring_latency.record(lane, self.turn, received_at);
                    Ok(())
                }
                Err(full) => {
                    self.drops.count(DropReason::RingFull, lane);
                    recycle(&mut self.pool, full.entry);
                    Err(PortError::Full { lane })
                }
            },
        }
    }
}

pub(super) fn recycle(pool: &mut BufPool, entry: ToShard) {
    if let ToShard::Message { body, .. } = entry {
        pool.recycle(body.payload);
    }
}
