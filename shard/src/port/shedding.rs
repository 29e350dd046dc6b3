//! What the degradation ladder asks of a core's links: which lanes to shed
//! (towards the shards and back) and whether to refuse new sessions. The
//! port applies it and counts every shed message with the other drops.

use lanegate_common::degradation::Level;
use lanegate_common::lanes::Lane;

/// The links' part of a degradation level. The default sheds nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shedding {
    /// Game messages of this lane and every lower one (`critical` is the
    /// highest, `bulk` the lowest) are shed, both ways. Never `critical`:
    /// the ladder only sheds what is not gameplay.
    pub from: Option<Lane>,
    /// New sessions are refused (`SERVER_FULL`).
    pub refuse_sessions: bool,
}

impl Shedding {
    /// What a gateway core at `level` sheds: `bulk` from level 1, `normal`
    /// too from level 2 (a core has no queue of its own to defer it in),
    /// and new sessions are refused at protect. `high` and `critical` are
    /// never shed by a core's level.
    pub fn for_core(level: Level) -> Self {
        let from = match level {
            Level::Normal => None,
            Level::ShedBulk => Some(Lane::Bulk),
            Level::DeferNormal | Level::ThinHigh | Level::Protect => Some(Lane::Normal),
        };
        Self {
            from,
            refuse_sessions: level == Level::Protect,
        }
    }

    /// What the links shed of what they send a shard at `level`: `bulk`
    /// from level 1. The shard defers `normal` itself (in its inbox) and the
    /// game thins `high`, so neither is shed on the way.
    pub fn for_shard(level: Level) -> Self {
        Self {
            from: (level >= Level::ShedBulk).then_some(Lane::Bulk),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_at_and_below_the_mark_are_shed_never_critical() {
        let none = Shedding::default();
        assert!(Lane::ALL.iter().all(|&l| !none.sheds(l)));
        let normal = Shedding {
            from: Some(Lane::Normal),
            refuse_sessions: false,
        };
        let shed: Vec<Lane> = Lane::ALL.into_iter().filter(|&l| normal.sheds(l)).collect();
        assert_eq!(shed, vec![Lane::Normal, Lane::Bulk]);
        let all = Shedding {
            from: Some(Lane::Critical),
            refuse_sessions: true,
        };
        assert!(!all.sheds(Lane::Critical));
    }
}
