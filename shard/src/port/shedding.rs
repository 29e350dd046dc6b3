//! What the degradation ladder asks of a core's links: which lanes to shed
//! (towards the shards and back) and whether to refuse new sessions. The
//! port applies it and counts every shed message with the other drops.

use lanegate_common::degradation::Level;
use lanegate_common::ids::ShardId;
use lanegate_common::lanes::Lane;

use super::GatewayPort;

/// The links' part of a degradation level. The default sheds nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shedding {
    /// Game messages of this lane and every lower one (`critical` is the
    /// highest, `bulk` the lowest) are shed, both ways. Never `critical`:
    /// the ladder only sheds what is not gameplay.
    pub from: Option<Lane>,
    /// `normal` messages towards the shards wait in the core's bounded
    /// deferral queue (`port/deferred.rs`) instead of going on; shed past
    /// it.
    pub defer_normal: bool,
    /// New sessions are refused (`SERVER_FULL`).
    pub refuse_sessions: bool,
}

impl Shedding {
    /// What a gateway core at `level` sheds: `bulk` from level 1, both
    /// ways; from level 2 it also defers `normal` towards the shards in a
    /// bounded queue of its own (the replies to what it lets through still
    /// flow), and new sessions are refused at protect. `high` and
    /// `critical` are never shed by a core's level.
    pub fn for_core(level: Level) -> Self {
        Self {
            from: (level >= Level::ShedBulk).then_some(Lane::Bulk),
            defer_normal: level >= Level::DeferNormal,
            refuse_sessions: level == Level::Protect,
        }
    }

    /// What the links shed of what they send a shard at `level`: `bulk`
    /// from level 1. The shard defers `normal` itself (in its inbox) and the
    /// game thins `high`, so neither is shed on the way.
    pub fn for_shard(level: Level) -> Self {
        Self {
            from: (level >= Level::ShedBulk).then_some(Lane::Bulk),
            defer_normal: false,
            refuse_sessions: false,
        }
    }

    /// Whether a message of `lane` is shed.
    #[inline]
    pub fn sheds(&self, lane: Lane) -> bool {
        self.from
            .is_some_and(|from| lane != Lane::Critical && lane.index() >= from.index())
    }
}

impl GatewayPort {
    /// Applies the degradation ladder's current level: from now on, game
    /// messages of the lanes it sheds are dropped both ways (counted as
    /// [`DropReason::Shed`](super::DropReason::Shed) and
    /// [`LinkDrops::shed_out`](super::LinkDrops::shed_out)).
    pub fn set_shedding(&mut self, shedding: Shedding) {
        self.shedding = shedding;
    }

    /// Reads the shards' levels if any changed (one atomic load when none
    /// did): a loaded shard's `bulk` is shed here, before it costs a pool
    /// buffer and a ring slot.
    pub(super) fn refresh_levels(&mut self) {
        let epoch = self.levels.epoch();
        if epoch == self.levels_seen {
            return;
        }
        self.levels_seen = epoch;
        for (s, shedding) in self.shard_shedding.iter_mut().enumerate() {
            let shard = ShardId(u16::try_from(s).unwrap_or(u16::MAX));
            *shedding = Shedding::for_shard(self.levels.get(shard));
        }
    }

    /// What the links shed now; [`Shedding::refuse_sessions`] tells the
    /// engine to refuse new sessions.
    pub fn shedding(&self) -> Shedding {
        self.shedding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_at_and_below_the_mark_are_shed_never_critical() {
        let none = Shedding::default();
        assert!(Lane::ALL.iter().all(|&l| !none.sheds(l)));
        let normal = Shedding {
            from: Some(Lane::Normal),
            ..Shedding::default()
        };
        let shed: Vec<Lane> = Lane::ALL.into_iter().filter(|&l| normal.sheds(l)).collect();
        assert_eq!(shed, vec![Lane::Normal, Lane::Bulk]);
        let all = Shedding {
            from: Some(Lane::Critical),
            defer_normal: true,
            refuse_sessions: true,
        };
        assert!(!all.sheds(Lane::Critical));
    }

    #[test]
    fn a_core_sheds_bulk_then_defers_normal_then_refuses_sessions() {
        let at = |l| Shedding::for_core(l);
        assert_eq!(at(Level::Normal), Shedding::default());
        assert!(at(Level::ShedBulk).sheds(Lane::Bulk) && !at(Level::ShedBulk).defer_normal);
        for l in [Level::DeferNormal, Level::ThinHigh, Level::Protect] {
            assert!(at(l).defer_normal && !at(l).sheds(Lane::Normal), "{l:?}");
        }
        assert!(at(Level::Protect).refuse_sessions && !at(Level::ThinHigh).refuse_sessions);
    }
}
