//! `shards.zones`: the zones a gateway serves, written as inclusive ranges
//! and single ids (`"0-1023"`, `"1-8,100,200-210"`).
//!
//! A ticket names its zone, and the gateway refuses a ticket for a zone
//! outside this set with `UNKNOWN_ZONE` (`docs/protocol.md` §6.4): a
//! matchmaker bug or a ticket meant for another deployment fails at once
//! with a code that says so, instead of opening an empty zone that nobody
//! else can reach. The set is its ranges, ascending and disjoint, so
//! [`ZoneSet::contains`] is a binary search and nothing is stored per zone.
//! A string that does not describe such a set never becomes a `ZoneSet`:
//! [`ZoneSet::parse`] refuses it, and the file's parser reports the error
//! at `shards.zones` with its line.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use crate::ids::ZoneId;

/// Most zone ids one set may hold. Games are handed the zones their shard
/// serves at start, so this bounds that list (a million ids is 4 MiB).
pub const ZONES_MAX: u64 = 1 << 20;

/// Most ranges (or single ids) one set may be written with: far more than
/// a hand-written file needs, and it bounds the binary search.
pub const ZONE_RANGES_MAX: usize = 1024;

/// A non-empty set of zone ids, kept as ascending, disjoint inclusive
/// ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneSet {
    ranges: Vec<(u32, u32)>,
}

/// Why a string is not a zone set. Each message says how to write it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ZoneSetError {
    /// Nothing but separators.
    #[error("is empty; list at least one zone id or range, e.g. \"0-1023\"")]
    Empty,
    /// An item that is neither `N` nor `N-M`.
    #[error(
        "`{0}` is not a zone id or a range; write ids and inclusive ranges separated by commas, e.g. \"1-8,100\""
    )]
    Syntax(String),
    /// A range whose end is below its start.
    #[error("`{0}` ends below its start; write the lower id first")]
    Reversed(String),
    /// An item that starts at or below the end of the one before it.
    #[error(
        "`{item}` does not start above `{previous}`; list ranges in ascending order without overlaps"
    )]
    Order {
        /// The item before.
        previous: String,
        /// The item out of order.
        item: String,
    },
    /// More ids than [`ZONES_MAX`].
    #[error("holds {0} zones, more than {ZONES_MAX}; serve fewer zones per gateway")]
    TooManyZones(u64),
    /// More items than [`ZONE_RANGES_MAX`].
    #[error("is written with more than {ZONE_RANGES_MAX} ranges; merge adjacent ids into ranges")]
    TooManyRanges,
}

impl ZoneSet {
    /// The zones `first..=last` (swapped if given the wrong way round).
    /// Fails only when that is more than [`ZONES_MAX`] zones.
    pub fn range(first: ZoneId, last: ZoneId) -> Result<Self, ZoneSetError> {
        let (lo, hi) = (first.0.min(last.0), first.0.max(last.0));
        let count = u64::from(hi - lo) + 1;
        if count > ZONES_MAX {
            return Err(ZoneSetError::TooManyZones(count));
        }
        Ok(Self {
            ranges: vec![(lo, hi)],
        })
    }

    /// Parses `"N"`, `"N-M"` and comma-separated lists of them; spaces
    /// around items are allowed.
    pub fn parse(text: &str) -> Result<Self, ZoneSetError> {
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        let mut count = 0u64;
        let mut previous = "";
        for item in text.split(',').map(str::trim) {
            if item.is_empty() {
                continue;
            }
            if ranges.len() == ZONE_RANGES_MAX {
                return Err(ZoneSetError::TooManyRanges);
            }
            let (lo, hi) = parse_item(item)?;
            if ranges.last().is_some_and(|&(_, end)| lo <= end) {
                return Err(ZoneSetError::Order {
                    previous: previous.to_owned(),
                    item: item.to_owned(),
                });
            }
            count += u64::from(hi - lo) + 1;
            if count > ZONES_MAX {
                return Err(ZoneSetError::TooManyZones(count));
            }
            ranges.push((lo, hi));
            previous = item;
        }
        if ranges.is_empty() {
            return Err(ZoneSetError::Empty);
        }
        Ok(Self { ranges })
    }

    /// Whether `zone` is in the set.
    pub fn contains(&self, zone: ZoneId) -> bool {
        // The first range ending at or above the zone is the only candidate.
        let i = self.ranges.partition_point(|&(_, hi)| hi < zone.0);
        self.ranges.get(i).is_some_and(|&(lo, _)| lo <= zone.0)
    }

    /// Every zone in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = ZoneId> + '_ {
        self.ranges
            .iter()
            .flat_map(|&(lo, hi)| (lo..=hi).map(ZoneId))
    }

    /// How many zones the set holds (at least 1, at most [`ZONES_MAX`]).
    pub fn len(&self) -> u64 {
        self.ranges
            .iter()
            .map(|&(lo, hi)| u64::from(hi - lo) + 1)
            .sum()
    }

    /// The zone after `zone` in id order, wrapping from the last to the
    /// first: the set as a ring (a portal to "the next zone").
    pub fn after(&self, zone: ZoneId) -> ZoneId {
        let next = zone.0.checked_add(1).map(ZoneId);
        if let Some(next) = next
            && self.contains(next)
        {
            return next;
        }
        let i = self.ranges.partition_point(|&(_, hi)| hi <= zone.0);
        let (lo, _) = self
            .ranges
            .get(i)
            .or(self.ranges.first())
            .copied()
            .unwrap_or((0, 0));
        ZoneId(lo)
    }

    /// Always false: a zone set holds at least one zone.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The ranges, ascending and disjoint, each inclusive.
    pub fn ranges(&self) -> impl Iterator<Item = (ZoneId, ZoneId)> + '_ {
        self.ranges.iter().map(|&(lo, hi)| (ZoneId(lo), ZoneId(hi)))
    }
}

impl Default for ZoneSet {
    /// Zones 0 to 1023: room for a demo, the bots and every test, while a
    /// ticket for a stray id (a matchmaker bug, `0xffffffff`) is refused.
    fn default() -> Self {
        Self {
            ranges: vec![(0, 1023)],
        }
    }
}

/// The form [`ZoneSet::parse`] reads: single ids alone, ranges as `N-M`.
impl fmt::Display for ZoneSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(lo, hi)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for ZoneSet {
    type Err = ZoneSetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for ZoneSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ZoneSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        ZoneSet::parse(&text).map_err(de::Error::custom)
    }
}

fn parse_item(item: &str) -> Result<(u32, u32), ZoneSetError> {
    let syntax = || ZoneSetError::Syntax(item.to_owned());
    let id = |s: &str| -> Result<u32, ZoneSetError> {
        let s = s.trim();
        // `u32::from_str` takes a leading `+`; an id is digits only.
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(syntax());
        }
        s.parse().map_err(|_| syntax())
    };
    let (lo, hi) = match item.split_once('-') {
        Some((a, b)) => (id(a)?, id(b)?),
        None => {
            let n = id(item)?;
            (n, n)
        }
    };
    if hi < lo {
        return Err(ZoneSetError::Reversed(item.to_owned()));
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str) -> ZoneSet {
        ZoneSet::parse(text).unwrap()
    }

    #[test]
    fn after_walks_the_set_as_a_ring() {
        let set = ZoneSet::parse("1-3,7,10-11").unwrap();
        let walk: Vec<u32> = std::iter::successors(Some(ZoneId(1)), |&z| Some(set.after(z)))
            .take(7)
            .map(|z| z.0)
            .collect();
        assert_eq!(walk, vec![1, 2, 3, 7, 10, 11, 1]);
        // From outside the set: the next zone above, or the first.
        assert_eq!(set.after(ZoneId(5)), ZoneId(7));
        assert_eq!(set.after(ZoneId(u32::MAX)), ZoneId(1));
    }

    #[test]
    fn ranges_and_single_ids_parse_and_print_back() {
        let s = set("1-8, 100,200-210");
        assert_eq!(s.len(), 8 + 1 + 11);
        assert_eq!(s.to_string(), "1-8,100,200-210");
        assert_eq!(set(&s.to_string()), s);
        assert_eq!(set("4294967295").len(), 1);
        assert_eq!(ZoneSet::default().to_string(), "0-1023");
    }

    #[test]
    fn contains_matches_an_oracle_at_every_edge() {
        let s = set("1-8,100,200-210,4294967290-4294967295");
        let oracle = |z: u32| {
            (1..=8).contains(&z) || z == 100 || (200..=210).contains(&z) || z >= 4_294_967_290
        };
        for z in (0..300).chain(4_294_967_280..=u32::MAX) {
            assert_eq!(s.contains(ZoneId(z)), oracle(z), "zone {z}");
        }
        let listed: Vec<u32> = s.iter().map(|z| z.0).take(10).collect();
        assert_eq!(listed, [1, 2, 3, 4, 5, 6, 7, 8, 100, 200]);
        assert_eq!(s.iter().count() as u64, s.len());
    }

    #[test]
    fn malformed_sets_are_refused_with_the_fix() {
        let err = |t: &str| ZoneSet::parse(t).unwrap_err();
        assert_eq!(err(""), ZoneSetError::Empty);
        assert_eq!(err(" , "), ZoneSetError::Empty);
        assert_eq!(err("a-3"), ZoneSetError::Syntax("a-3".into()));
        assert_eq!(err("+5"), ZoneSetError::Syntax("+5".into()));
        assert_eq!(err("1-2-3"), ZoneSetError::Syntax("1-2-3".into()));
        assert_eq!(err("4294967296"), ZoneSetError::Syntax("4294967296".into()));
        assert_eq!(err("9-3"), ZoneSetError::Reversed("9-3".into()));
        assert_eq!(
            err("1-10,10"),
            ZoneSetError::Order {
                previous: "1-10".into(),
                item: "10".into()
            }
        );
        assert!(matches!(err("5,1"), ZoneSetError::Order { .. }));
        assert_eq!(err("0-1048576"), ZoneSetError::TooManyZones(ZONES_MAX + 1));
        assert!(ZoneSet::parse("0-1048575").is_ok());
        let many: Vec<String> = (0..=ZONE_RANGES_MAX).map(|i| (i * 2).to_string()).collect();
        assert_eq!(err(&many.join(",")), ZoneSetError::TooManyRanges);
        assert!(err("1-10,10").to_string().contains("ascending"));
    }

    #[test]
    fn range_constructor_bounds_its_size() {
        let s = ZoneSet::range(ZoneId(9), ZoneId(2)).unwrap();
        assert_eq!(s.to_string(), "2-9");
        assert!(ZoneSet::range(ZoneId(0), ZoneId(u32::MAX)).is_err());
    }
}
