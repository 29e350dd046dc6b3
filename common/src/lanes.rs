//! Priority lanes and the table that assigns message types to them.
//!
//! A client never chooses its lane: the gateway looks the message type up in
//! the [`LaneTable`] built from configuration. The table is a flat array over
//! the whole 16-bit type space, so classification is one load, whatever the
//! number of configured ranges. The control range (`0x0000-0x00ff`) is owned
//! by the protocol itself and can never be mapped to a lane.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The four priority lanes, most important first.
///
/// The order is the drain order everywhere (shard inboxes, gateway send
/// queues) and the reverse of the shedding order under overload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Lane {
    /// Combat and inputs: never shed.
    Critical = 0,
    /// Movement and state.
    High = 1,
    /// Chat and social.
    Normal = 2,
    /// Telemetry and cosmetics: shed first.
    Bulk = 3,
}

impl Lane {
    /// Number of lanes; arrays indexed by [`Lane::index`] have this length.
    pub const COUNT: usize = 4;
    /// [`Lane::COUNT`] as the byte the wire carries.
    pub const COUNT_U8: u8 = 4;
    /// All lanes in priority (drain) order.
    pub const ALL: [Lane; Lane::COUNT] = [Lane::Critical, Lane::High, Lane::Normal, Lane::Bulk];

    /// Position in [`Lane::ALL`], for per-lane arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The lane at `index` in [`Lane::ALL`], if any.
    pub const fn from_index(index: usize) -> Option<Lane> {
        match index {
            0 => Some(Lane::Critical),
            1 => Some(Lane::High),
            2 => Some(Lane::Normal),
            3 => Some(Lane::Bulk),
            _ => None,
        }
    }

    /// Lower-case name, as used in configuration, metrics and logs.
    pub const fn name(self) -> &'static str {
        match self {
            Lane::Critical => "critical",
            Lane::High => "high",
            Lane::Normal => "normal",
            Lane::Bulk => "bulk",
        }
    }
}

impl fmt::Display for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Lane {
    type Err = LaneTableError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Lane::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| LaneTableError::UnknownLane(s.to_owned()))
    }
}

/// First type of the game range; everything below is protocol control.
pub const GAME_TYPE_FIRST: u16 = 0x0100;

/// What the gateway does with a message type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageClass {
    /// `0x0000-0x00ff`: handled by the gateway's session layer, never forwarded.
    Control,
    /// A game message, forwarded to the player's shard in this lane.
    Game(Lane),
}

/// An inclusive range of message types, written `0x1000-0x1fff` (or a single
/// type, `0x1000`) in configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeRange {
    /// First type in the range.
    pub first: u16,
    /// Last type in the range (inclusive).
    pub last: u16,
}

impl TypeRange {
    /// The inclusive range `first..=last`.
    pub const fn new(first: u16, last: u16) -> Self {
        Self { first, last }
    }

    /// Whether the two ranges share at least one type.
    pub const fn overlaps(&self, other: &TypeRange) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

impl fmt::Display for TypeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "0x{:04x}", self.first)
        } else {
            write!(f, "0x{:04x}-0x{:04x}", self.first, self.last)
        }
    }
}

impl FromStr for TypeRange {
    type Err = LaneTableError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || LaneTableError::BadRange(s.to_owned());
        let parse = |t: &str| -> Result<u16, LaneTableError> {
            let t = t.trim();
            let hex = t
                .strip_prefix("0x")
                .or_else(|| t.strip_prefix("0X"))
                .ok_or_else(bad)?;
            u16::from_str_radix(hex, 16).map_err(|_| bad())
        };
        let range = match s.split_once('-') {
            Some((a, b)) => TypeRange::new(parse(a)?, parse(b)?),
            None => {
                let t = parse(s)?;
                TypeRange::new(t, t)
            }
        };
        if range.first > range.last {
            return Err(bad());
        }
        Ok(range)
    }
}

impl Serialize for TypeRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TypeRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One row of the lane table: a type range and its lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneRule {
    /// The message types this rule covers, e.g. `"0x1000-0x1fff"`.
    pub types: TypeRange,
    /// The lane those types travel in.
    pub lane: Lane,
}

/// Why a lane table was refused. Messages are phrased to follow the config
/// field name, e.g. `lanes.table: types 0x0100-0x01ff are mapped to two lanes`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LaneTableError {
    /// Two rules cover the same types.
    #[error("types {overlap} are mapped to two lanes ({a} and {b}); make the ranges disjoint")]
    Overlap {
        /// The types both rules cover.
        overlap: TypeRange,
        /// Lane of the first rule.
        a: Lane,
        /// Lane of the second rule.
        b: Lane,
    },
    /// A rule reaches into the protocol's control range.
    #[error(
        "types {0} overlap the control range 0x0000-0x00ff, which the protocol reserves; game types start at 0x0100"
    )]
    ControlRange(TypeRange),
    /// A range string did not parse.
    #[error("`{0}` is not a type range; write `0x1000-0x1fff` or `0x1000` (hex, inclusive)")]
    BadRange(String),
    /// A lane name did not parse.
    #[error("`{0}` is not a lane; use one of critical, high, normal, bulk")]
    UnknownLane(String),
}

/// Maps every message type to its [`MessageClass`] in one array lookup.
#[derive(Clone)]
pub struct LaneTable {
    /// `lanes[ty]` is the lane index for game types; control types hold
    /// [`CONTROL_SLOT`].
    lanes: Box<[u8; 1 << 16]>,
    rules: Vec<LaneRule>,
    default_lane: Lane,
}

const CONTROL_SLOT: u8 = u8::MAX;

impl LaneTable {
    /// Builds the table. Game types no rule covers travel in `default_lane`
    /// (which should be the lowest lane a client is allowed to use, so an
    /// unknown type can never buy priority).
    pub fn new(rules: &[LaneRule], default_lane: Lane) -> Result<Self, LaneTableError> {
        let control = TypeRange::new(0, GAME_TYPE_FIRST - 1);
        for (i, a) in rules.iter().enumerate() {
            if a.types.overlaps(&control) {
                return Err(LaneTableError::ControlRange(a.types));
            }
            if let Some(b) = rules[..i].iter().find(|b| b.types.overlaps(&a.types)) {
                let overlap = TypeRange::new(
                    a.types.first.max(b.types.first),
                    a.types.last.min(b.types.last),
                );
                return Err(LaneTableError::Overlap {
                    overlap,
                    a: b.lane,
                    b: a.lane,
                });
            }
        }
        let mut lanes = Box::new([default_lane as u8; 1 << 16]);
        lanes[..usize::from(GAME_TYPE_FIRST)].fill(CONTROL_SLOT);
        for rule in rules {
            lanes[usize::from(rule.types.first)..=usize::from(rule.types.last)]
                .fill(rule.lane as u8);
        }
        Ok(Self {
            lanes,
            rules: rules.to_vec(),
            default_lane,
        })
    }

    /// The default table of `docs/protocol.md`: one 4096-type block per lane.
    pub fn default_rules() -> Vec<LaneRule> {
        vec![
            LaneRule {
                types: TypeRange::new(0x1000, 0x1fff),
                lane: Lane::Critical,
            },
            LaneRule {
                types: TypeRange::new(0x2000, 0x2fff),
                lane: Lane::High,
            },
            LaneRule {
                types: TypeRange::new(0x3000, 0x3fff),
                lane: Lane::Normal,
            },
            LaneRule {
                types: TypeRange::new(0x4000, 0x4fff),
                lane: Lane::Bulk,
            },
        ]
    }

    /// The class of message type `ty`.
    #[inline]
    pub fn classify(&self, ty: u16) -> MessageClass {
        match Lane::from_index(usize::from(self.lanes[usize::from(ty)])) {
            Some(lane) => MessageClass::Game(lane),
            None => MessageClass::Control,
        }
    }

    /// The rules the table was built from.
    pub fn rules(&self) -> &[LaneRule] {
        &self.rules
    }

    /// The lane of game types no rule covers.
    pub fn default_lane(&self) -> Lane {
        self.default_lane
    }
}

impl Default for LaneTable {
    fn default() -> Self {
        Self::new(&Self::default_rules(), Lane::Bulk).expect("the default lane table is valid")
    }
}

impl fmt::Debug for LaneTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaneTable")
            .field("rules", &self.rules)
            .field("default_lane", &self.default_lane)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_table_classifies_each_block() {
        let t = LaneTable::default();
        assert_eq!(t.classify(0x0000), MessageClass::Control);
        assert_eq!(t.classify(0x00ff), MessageClass::Control);
        assert_eq!(t.classify(0x1000), MessageClass::Game(Lane::Critical));
        assert_eq!(t.classify(0x1fff), MessageClass::Game(Lane::Critical));
        assert_eq!(t.classify(0x2000), MessageClass::Game(Lane::High));
        assert_eq!(t.classify(0x3abc), MessageClass::Game(Lane::Normal));
        assert_eq!(t.classify(0x4fff), MessageClass::Game(Lane::Bulk));
        // Unmapped game types fall to the default lane, never above it.
        assert_eq!(t.classify(0x0100), MessageClass::Game(Lane::Bulk));
        assert_eq!(t.classify(0xffff), MessageClass::Game(Lane::Bulk));
    }

    #[test]
    fn overlapping_rules_are_refused_with_the_overlap() {
        let rules = [
            LaneRule {
                types: "0x0100-0x02ff".parse().unwrap(),
                lane: Lane::High,
            },
            LaneRule {
                types: "0x0100-0x01ff".parse().unwrap(),
                lane: Lane::Bulk,
            },
        ];
        let err = LaneTable::new(&rules, Lane::Bulk).unwrap_err();
        assert_eq!(
            err.to_string(),
            "types 0x0100-0x01ff are mapped to two lanes (high and bulk); make the ranges disjoint"
        );
    }

    #[test]
    fn control_range_cannot_be_mapped() {
        let rules = [LaneRule {
            types: "0x00f0-0x0100".parse().unwrap(),
            lane: Lane::Critical,
        }];
        assert!(matches!(
            LaneTable::new(&rules, Lane::Bulk),
            Err(LaneTableError::ControlRange(_))
        ));
    }

    #[test]
    fn range_parsing() {
        assert_eq!(
            "0x1000".parse::<TypeRange>().unwrap(),
            TypeRange::new(0x1000, 0x1000)
        );
        assert_eq!(
            "0X10-0x20".parse::<TypeRange>().unwrap(),
            TypeRange::new(0x10, 0x20)
        );
        for bad in ["", "1000", "0x2000-0x1000", "0x10000", "0x1-", "0xg"] {
            assert!(bad.parse::<TypeRange>().is_err(), "{bad:?} parsed");
        }
        assert_eq!(TypeRange::new(1, 1).to_string(), "0x0001");
    }

    #[test]
    fn lanes_round_trip_through_names() {
        for lane in Lane::ALL {
            assert_eq!(lane.name().parse::<Lane>().unwrap(), lane);
            assert_eq!(Lane::from_index(lane.index()), Some(lane));
        }
        assert!("urgent".parse::<Lane>().is_err());
    }

    proptest! {
        /// The flat table agrees with a naive scan of the rules.
        #[test]
        fn table_matches_rule_scan(
            starts in proptest::collection::btree_set(0x0100u16..0xff00, 1..8),
            lanes in proptest::collection::vec(0usize..4, 8),
            ty: u16,
        ) {
            // Disjoint ranges: each ends 0x40 after its start or before the next.
            let starts: Vec<u16> = starts.into_iter().collect();
            let rules: Vec<LaneRule> = starts.iter().enumerate().map(|(i, &s)| {
                let cap = starts.get(i + 1).map_or(u16::MAX, |n| n - 1);
                LaneRule {
                    types: TypeRange::new(s, s.saturating_add(0x40).min(cap)),
                    lane: Lane::from_index(lanes[i]).unwrap(),
                }
            }).collect();
            let table = LaneTable::new(&rules, Lane::Bulk).unwrap();
            let expected = if ty < GAME_TYPE_FIRST {
                MessageClass::Control
            } else {
                MessageClass::Game(
                    rules.iter()
                        .find(|r| r.types.first <= ty && ty <= r.types.last)
                        .map_or(Lane::Bulk, |r| r.lane),
                )
            };
            prop_assert_eq!(table.classify(ty), expected);
        }
    }
}
