//! The zone directory: which shard owns each zone, and zone moves.
//!
//! A zone is owned by exactly one shard at a time. Zones nobody placed
//! belong to `zone % shards`; [`ZoneDirectory::place`] overrides that before
//! a zone is used, and a move changes it while it is in use.
//!
//! The directory is the authority, owned by the gateway's control plane.
//! Each gateway core routes from its own copy (in its
//! [`GatewayPort`](crate::port::GatewayPort)), updated by the control plane
//! through [`GatewayPort::begin_move`](crate::port::GatewayPort::begin_move)
//! and [`GatewayPort::finish_move`](crate::port::GatewayPort::finish_move):
//! routing reads no shared state.
//!
//! # A move, step by step
//!
//! 1. [`ZoneDirectory::begin_move`] returns a [`MovePlan`]; the control plane
//!    gives it to every core's port. Each port sends a `Drain` marker to the
//!    old owner behind everything it already routed there for the zone, and
//!    from then on holds the zone's entries (joins, leaves, messages) in
//!    order, in a bounded per-zone queue.
//! 2. The old owner, once it has a marker from every core and has handed the
//!    game everything before them, exports the zone (`Game::export_zone`)
//!    with its members and sends it to the plan's coordinator core.
//! 3. The coordinator's port forwards it to the new owner, which imports it
//!    (`Game::import_zone`) and answers `ZoneImported`.
//! 4. On `ZoneImported` the control plane calls
//!    [`ZoneDirectory::finish_move`] and every port's `finish_move`: each
//!    port routes the zone to the new owner and releases its held entries
//!    there first, in order.
//!
//! Nothing is lost (each core's entries are either before its marker, and
//! handled by the old owner, or held and handled by the new one) and nothing
//! is reordered within a player's lane (each core's entries keep their
//! order, and a player's entries all come from one core).

use std::collections::HashMap;

use lanegate_common::ids::{CoreId, ShardId, ZoneId};
use lanegate_common::link::MoveId;

/// The owner of a zone nobody placed: `zone % shards`.
pub fn default_shard(zone: ZoneId, shards: u16) -> ShardId {
    let n = u32::from(shards.max(1));
    ShardId(u16::try_from(zone.0 % n).expect("a remainder modulo a u16 fits in a u16"))
}

/// A zone move in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MovePlan {
    /// Which move.
    pub move_id: MoveId,
    /// The zone.
    pub zone: ZoneId,
    /// The current owner.
    pub from: ShardId,
    /// The new owner.
    pub to: ShardId,
    /// The gateway core that relays the zone's state from `from` to `to`.
    pub coordinator: CoreId,
}

/// Why the directory refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// The shard does not exist.
    #[error("shard {shard} does not exist (there are {shards})")]
    NoSuchShard {
        /// The shard asked for.
        shard: ShardId,
        /// How many there are.
        shards: u16,
    },
    /// The zone is already moving.
    #[error("zone {0} is already moving")]
    AlreadyMoving(ZoneId),
    /// The zone already lives on that shard.
    #[error("zone {zone} is already on shard {shard}")]
    SameShard {
        /// The zone.
        zone: ZoneId,
        /// Its shard.
        shard: ShardId,
    },
    /// No move with that id is in progress.
    #[error("no zone move {0:?} is in progress")]
    NoSuchMove(MoveId),
}

/// Zone → shard, and the moves in progress.
#[derive(Debug, Clone)]
pub struct ZoneDirectory {
    shards: u16,
    placed: HashMap<ZoneId, ShardId>,
    moving: HashMap<ZoneId, MovePlan>,
    next_move: u64,
}

impl ZoneDirectory {
    /// A directory over `shards` shards, every zone at its default shard.
    pub fn new(shards: u16) -> Self {
        Self {
            shards: shards.max(1),
            placed: HashMap::new(),
            moving: HashMap::new(),
            next_move: 1,
        }
    }

    /// The zone's owner (the old owner while it moves).
    pub fn shard_of(&self, zone: ZoneId) -> ShardId {
        self.placed
            .get(&zone)
            .copied()
            .unwrap_or_else(|| default_shard(zone, self.shards))
    }

    /// The move in progress for `zone`, if any.
    pub fn moving(&self, zone: ZoneId) -> Option<&MovePlan> {
        self.moving.get(&zone)
    }

    /// Assigns a zone that has no players yet to `shard`. (A zone in use
    /// changes owner only by a move, which carries its state.)
    pub fn place(&mut self, zone: ZoneId, shard: ShardId) -> Result<(), DirectoryError> {
        self.check_shard(shard)?;
        if self.moving.contains_key(&zone) {
            return Err(DirectoryError::AlreadyMoving(zone));
        }
        self.placed.insert(zone, shard);
        Ok(())
    }

    /// Starts moving `zone` to `to`, relayed by `coordinator`.
    pub fn begin_move(
        &mut self,
        zone: ZoneId,
        to: ShardId,
        coordinator: CoreId,
    ) -> Result<MovePlan, DirectoryError> {
        self.check_shard(to)?;
        if self.moving.contains_key(&zone) {
            return Err(DirectoryError::AlreadyMoving(zone));
        }
        let from = self.shard_of(zone);
        if from == to {
            return Err(DirectoryError::SameShard { zone, shard: to });
        }
        let plan = MovePlan {
            move_id: MoveId(self.next_move),
            zone,
            from,
            to,
            coordinator,
        };
        self.next_move += 1;
        self.moving.insert(zone, plan);
        Ok(plan)
    }

    /// Completes a move once the new owner imported the zone.
    pub fn finish_move(
        &mut self,
        zone: ZoneId,
        move_id: MoveId,
    ) -> Result<MovePlan, DirectoryError> {
        match self.moving.get(&zone) {
            Some(plan) if plan.move_id == move_id => {
                let plan = *plan;
                self.moving.remove(&zone);
                self.placed.insert(zone, plan.to);
                Ok(plan)
            }
            _ => Err(DirectoryError::NoSuchMove(move_id)),
        }
    }

    fn check_shard(&self, shard: ShardId) -> Result<(), DirectoryError> {
        if shard.0 >= self.shards {
            return Err(DirectoryError::NoSuchShard {
                shard,
                shards: self.shards,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_placement_and_overrides() {
        let mut d = ZoneDirectory::new(3);
        assert_eq!(d.shard_of(ZoneId(7)), ShardId(1));
        d.place(ZoneId(7), ShardId(2)).unwrap();
        assert_eq!(d.shard_of(ZoneId(7)), ShardId(2));
        assert_eq!(
            d.place(ZoneId(7), ShardId(3)),
            Err(DirectoryError::NoSuchShard {
                shard: ShardId(3),
                shards: 3
            })
        );
    }

    #[test]
    fn a_move_changes_the_owner_only_when_finished() {
        let mut d = ZoneDirectory::new(2);
        let plan = d.begin_move(ZoneId(4), ShardId(1), CoreId(0)).unwrap();
        assert_eq!((plan.from, plan.to), (ShardId(0), ShardId(1)));
        assert_eq!(
            d.begin_move(ZoneId(4), ShardId(1), CoreId(0)),
            Err(DirectoryError::AlreadyMoving(ZoneId(4)))
        );
        assert_eq!(d.shard_of(ZoneId(4)), ShardId(0));
        assert!(d.finish_move(ZoneId(4), MoveId(99)).is_err());
        d.finish_move(ZoneId(4), plan.move_id).unwrap();
        assert_eq!(d.shard_of(ZoneId(4)), ShardId(1));
        assert!(d.moving(ZoneId(4)).is_none());
        assert_eq!(
            d.begin_move(ZoneId(4), ShardId(1), CoreId(0)),
            Err(DirectoryError::SameShard {
                zone: ZoneId(4),
                shard: ShardId(1)
            })
        );
    }
}
