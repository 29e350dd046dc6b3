//! Degradation levels: how much of its traffic a loaded gateway core or
//! shard sheds. The gateway's ladder (`lanegate-control`) decides them; the
//! links, the shard runtime and the game act on them (`docs/ARCHITECTURE.md`,
//! "Overload").

use std::fmt;

/// How degraded a core or shard is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Everything flows.
    #[default]
    Normal = 0,
    /// `bulk` is shed, inbound and outbound.
    ShedBulk = 1,
    /// `normal` waits in a bounded queue and is shed past it.
    DeferNormal = 2,
    /// `high` is thinned: the game lowers its update rates.
    ThinHigh = 3,
    /// New sessions are refused.
    Protect = 4,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 5] = [
        Level::Normal,
        Level::ShedBulk,
        Level::DeferNormal,
        Level::ThinHigh,
        Level::Protect,
    ];

    /// The level's number, 0 to 4.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// Its name, as logs and metrics write it.
    pub fn name(self) -> &'static str {
        match self {
            Level::Normal => "normal",
            Level::ShedBulk => "shed_bulk",
            Level::DeferNormal => "defer_normal",
            Level::ThinHigh => "thin_high",
            Level::Protect => "protect",
        }
    }

    /// One level higher (protect stays protect).
    pub fn up(self) -> Level {
        Level::ALL[(self as usize + 1).min(4)]
    }

    /// One level lower (normal stays normal).
    pub fn down(self) -> Level {
        Level::ALL[(self as usize).saturating_sub(1)]
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.number(), self.name())
    }
}

impl Level {
    /// The level numbered `n` (0 to 4; higher numbers are protect).
    pub fn from_number(n: u8) -> Level {
        Level::ALL[usize::from(n.min(4))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_step_and_number_in_order() {
        assert_eq!(Level::Normal.up(), Level::ShedBulk);
        assert_eq!(Level::Protect.up(), Level::Protect);
        assert_eq!(Level::Normal.down(), Level::Normal);
        for l in Level::ALL {
            assert_eq!(Level::from_number(l.number()), l);
        }
        assert_eq!(Level::from_number(9), Level::Protect);
        assert_eq!(Level::ThinHigh.to_string(), "3 (thin_high)");
    }
}
