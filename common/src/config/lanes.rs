//! `[lanes]`: which message types travel in which lane, and each lane's
//! per-connection rate limit.

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::lanes::{Lane, LaneRule, LaneTable};

/// `[lanes]`: the lane table and per-lane rate limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LanesConfig {
    /// Lane of game types (`0x0100` and up) no rule covers. Default `bulk`,
    /// the lowest, so an unmapped type can never buy priority.
    pub default_lane: Lane,
    /// Rules mapping type ranges to lanes, `{ types = "0x1000-0x1fff",
    /// lane = "critical" }`; ranges must be disjoint and at or above
    /// `0x0100`. Default: one 4096-type block per lane, as in
    /// `docs/protocol.md`.
    pub table: Vec<LaneRule>,
    /// `[lanes.limits.<lane>]`: per-connection token buckets.
    pub limits: LaneLimits,
}

impl Default for LanesConfig {
    fn default() -> Self {
        Self {
            default_lane: Lane::Bulk,
            table: LaneTable::default_rules(),
            limits: LaneLimits::default(),
        }
    }
}

impl LanesConfig {
    /// Builds the classification table from `table` and `default_lane`.
    pub fn lane_table(&self) -> Result<LaneTable, ConfigError> {
        LaneTable::new(&self.table, self.default_lane)
            .map_err(|e| ConfigError::invalid("lanes.table", e.to_string()))
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.lane_table()?;
        for lane in Lane::ALL {
            let limit = self.limits.get(lane);
            if limit.rate_per_s == 0 {
                return Err(ConfigError::invalid(
                    &format!("lanes.limits.{lane}.rate_per_s"),
                    format!(
                        "is 0, so every {lane} message would be dropped; set at least 1, or map no types to {lane}"
                    ),
                ));
            }
            if limit.burst == 0 {
                return Err(ConfigError::invalid(
                    &format!("lanes.limits.{lane}.burst"),
                    "is 0, so the bucket can never hold a message; set at least 1",
                ));
            }
        }
        Ok(())
    }
}

/// Per-lane rate limits. A field left out of the file keeps its own lane's
/// default (not some generic one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "super::serde_forms::LaneLimitsPatch")]
pub struct LaneLimits {
    /// Default 240/s, burst 60: 60 Hz input with 4x headroom for clients
    /// that batch or catch up after a hitch.
    pub critical: LaneLimit,
    /// Default 120/s, burst 60: 60 Hz movement with 2x headroom.
    pub high: LaneLimit,
    /// Default 20/s, burst 20: chat and social are human-paced.
    pub normal: LaneLimit,
    /// Default 10/s, burst 20: telemetry and cosmetics, shed first.
    pub bulk: LaneLimit,
}

impl Default for LaneLimits {
    fn default() -> Self {
        // The protocol's announced defaults (docs/protocol.md §8).
        let d = |lane: Lane| {
            let l = crate::wire::DEFAULT_LANE_LIMITS[lane.index()];
            LaneLimit::new(l.rate_per_s, l.burst)
        };
        Self {
            critical: d(Lane::Critical),
            high: d(Lane::High),
            normal: d(Lane::Normal),
            bulk: d(Lane::Bulk),
        }
    }
}

impl LaneLimits {
    /// The limit of `lane`.
    pub fn get(&self, lane: Lane) -> LaneLimit {
        match lane {
            Lane::Critical => self.critical,
            Lane::High => self.high,
            Lane::Normal => self.normal,
            Lane::Bulk => self.bulk,
        }
    }
}

/// A token bucket on one lane of one connection. Messages over it are
/// dropped and counted toward `[admission]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneLimit {
    /// Sustained messages per second.
    pub rate_per_s: u32,
    /// Messages accepted at once above the sustained rate (bucket size).
    pub burst: u32,
}

impl LaneLimit {
    /// A bucket refilled at `rate_per_s`, holding `burst`.
    pub const fn new(rate_per_s: u32, burst: u32) -> Self {
        Self { rate_per_s, burst }
    }
}

/// The limit as `Welcome` announces it to the client.
impl From<LaneLimit> for crate::wire::LaneLimit {
    fn from(l: LaneLimit) -> Self {
        crate::wire::LaneLimit {
            rate_per_s: l.rate_per_s,
            burst: l.burst,
        }
    }
}
