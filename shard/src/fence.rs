//! The fence board: which shards have been failed over, shared by the
//! watchdog that fences them and every gateway core that routes around them.
//!
//! A core must notice a fence within a loop turn without taking a lock or
//! scanning every shard on every turn, so the board keeps an epoch that
//! each fence bumps: a core's per-turn check is one atomic load compared
//! with the epoch it last handled ([`crate::port::GatewayPort::lost_shard`]),
//! and only a changed epoch makes it look at the per-shard flags. The
//! watchdog then rings every core's doorbell, so an idle core handles the
//! fence at once instead of at its next poll.
//!
//! A fence is forever: a failed-over shard's thread cannot be stopped, and
//! if it wakes, everything it sends is dropped (the cores check the flag
//! when they read its rings), so it is never reused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use lanegate_common::ids::ShardId;
use lanegate_common::wake::Doorbell;

/// Which shards are fenced, and an epoch that changes with every fence.
#[derive(Debug)]
pub struct FenceBoard {
    epoch: AtomicU64,
    fenced: Box<[AtomicBool]>,
    /// The gateway cores' doorbells, rung after a fence.
    cores: Vec<Arc<Doorbell>>,
}

impl FenceBoard {
    /// A board for `shards` shards, none fenced, that wakes `cores` (the
    /// gateway cores' doorbells) on a fence.
    pub fn new(shards: u16, cores: Vec<Arc<Doorbell>>) -> Arc<Self> {
        Arc::new(Self {
            epoch: AtomicU64::new(0),
            fenced: (0..shards).map(|_| AtomicBool::new(false)).collect(),
            cores,
        })
    }

    /// Fences `shard` and wakes every core; `false` if it already was (or
    /// does not exist).
    pub fn fence(&self, shard: ShardId) -> bool {
        let Some(flag) = self.fenced.get(usize::from(shard.0)) else {
            return false;
        };
        if flag.swap(true, Ordering::AcqRel) {
            return false;
        }
        // The flag is stored before the epoch moves (Release), so a core
        // that sees the new epoch (Acquire) sees the flag too.
        self.epoch.fetch_add(1, Ordering::Release);
        for bell in &self.cores {
            bell.ring();
        }
        true
    }

    /// Changes with every fence; a core compares it with the last it handled.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Whether `shard` is fenced.
    pub fn is_fenced(&self, shard: ShardId) -> bool {
        self.fenced
            .get(usize::from(shard.0))
            .is_some_and(|f| f.load(Ordering::Acquire))
    }

    /// Shards on the board.
    pub fn shards(&self) -> u16 {
        u16::try_from(self.fenced.len()).unwrap_or(u16::MAX)
    }

    /// Shards fenced so far.
    pub fn fenced_count(&self) -> usize {
        self.fenced
            .iter()
            .filter(|f| f.load(Ordering::Acquire))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_moves_the_epoch_once_and_is_forever() {
        let board = FenceBoard::new(3, Vec::new());
        assert_eq!((board.epoch(), board.fenced_count()), (0, 0));
        assert!(board.fence(ShardId(1)));
        assert!(!board.fence(ShardId(1)), "already fenced");
        assert!(!board.fence(ShardId(9)), "no such shard");
        assert_eq!(board.epoch(), 1);
        assert!(board.is_fenced(ShardId(1)));
        assert!(!board.is_fenced(ShardId(0)));
        assert_eq!(board.fenced_count(), 1);
    }

    #[test]
    fn a_fence_seen_on_another_thread_shows_its_flag() {
        let board = FenceBoard::new(2, Vec::new());
        let b = Arc::clone(&board);
        let t = std::thread::spawn(move || b.fence(ShardId(0)));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while board.epoch() == 0 {
            assert!(std::time::Instant::now() < deadline, "fence never seen");
            std::hint::spin_loop();
        }
        assert!(board.is_fenced(ShardId(0)));
        assert!(t.join().unwrap());
    }
}
