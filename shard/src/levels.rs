//! The level board: each shard's degradation level, set by the gateway's
//! control thread (which runs each shard's ladder off the datapath) and
//! read by the shard itself (once per tick) and by every gateway core's
//! links (once per turn, through an epoch, as the fence board is read).
//!
//! A level is advice to act on at the next tick or turn, not a lock: the
//! writer and the readers never wait for each other.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use lanegate_common::degradation::Level;
use lanegate_common::ids::ShardId;

/// Each shard's level, and an epoch that changes with every change.
#[derive(Debug)]
pub struct LevelBoard {
    epoch: AtomicU64,
    levels: Box<[AtomicU8]>,
}

impl LevelBoard {
    /// A board for `shards` shards, all at [`Level::Normal`].
    pub fn new(shards: u16) -> Arc<Self> {
        Arc::new(Self {
            epoch: AtomicU64::new(0),
            levels: (0..shards).map(|_| AtomicU8::new(0)).collect(),
        })
    }

    /// Sets `shard`'s level; readers see it at their next look.
    pub fn set(&self, shard: ShardId, level: Level) {
        if let Some(slot) = self.levels.get(usize::from(shard.0))
            && slot.swap(level.number(), Ordering::Relaxed) != level.number()
        {
            // Release: a reader that sees the new epoch sees the level.
            self.epoch.fetch_add(1, Ordering::Release);
        }
    }

    /// `shard`'s level (normal for a shard the board does not know).
    pub fn get(&self, shard: ShardId) -> Level {
        self.levels
            .get(usize::from(shard.0))
            .map_or(Level::Normal, |l| {
                Level::from_number(l.load(Ordering::Relaxed))
            })
    }

    /// Changes so far: a reader that saw this value has seen every level
    /// set before it.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_bumps_the_epoch_and_a_repeat_does_not() {
        let board = LevelBoard::new(2);
        assert_eq!(board.get(ShardId(1)), Level::Normal);
        board.set(ShardId(1), Level::ShedBulk);
        assert_eq!(board.epoch(), 1);
        board.set(ShardId(1), Level::ShedBulk);
        assert_eq!(board.epoch(), 1);
        assert_eq!(board.get(ShardId(1)), Level::ShedBulk);
        assert_eq!(board.get(ShardId(0)), Level::Normal);
        board.set(ShardId(9), Level::Protect);
        assert_eq!(
            board.get(ShardId(9)),
            Level::Normal,
            "unknown shards stay normal"
        );
    }
}
