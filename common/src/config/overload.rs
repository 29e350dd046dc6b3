//! `[overload]`: when the degradation ladder steps up and down. Each signal
//! (loop busy time, loop lag, ring fill, shard tick time, kernel drops,
//! handshake rate, how long messages wait for a shard) becomes a pressure in percent of its own full scale;
//! the highest one decides, against an enter and an exit threshold per
//! level.

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::error::non_zero;

/// Highest pressure a threshold may name, in percent: a signal past twice
/// its full scale is as bad as it gets.
pub const PRESSURE_PERCENT_LIMIT: u32 = 200;

/// `[overload]`: the degradation ladder's thresholds and timing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OverloadConfig {
    /// How often each core and shard samples its signals and the ladder
    /// decides, in ms. Default 200: a step within a few hundred ms of a
    /// surge, without reacting to one slow turn.
    pub sample_ms: u64,
    /// Pressure, in percent, at which each level is entered. Default 70,
    /// 85, 95, 100: bulk goes while there is still headroom, new sessions
    /// are refused only at full load.
    pub enter_percent: LevelPercents,
    /// Pressure below which each level is left (after `dwell_ms`). Each
    /// below its enter threshold, so a steady load at a threshold does not
    /// flap. Default 50, 65, 80, 90.
    pub exit_percent: LevelPercents,
    /// Least time at a level before stepping down from it, in ms. Default
    /// 2000: a surge that comes back within two seconds finds the level
    /// still up.
    pub dwell_ms: u64,
    /// A level above normal held this long without a step down is reported
    /// as stuck (log, metric, status): the host needs capacity or a drain,
    /// not more waiting. Default 60000.
    pub stuck_after_ms: u64,
    /// Loop lag (how late turns start against when they meant to, the
    /// mean over a sample) that counts as 100 % pressure, in µs. Default 2000: two milliseconds of
    /// added latency on every packet is a core that cannot keep up.
    pub lag_full_us: u64,
    /// Kernel receive drops per second on a core's socket that count as
    /// 100 % pressure. Default 1000.
    pub kernel_drops_per_s_full: u64,
    /// New handshakes per second on a core that count as 100 % pressure:
    /// handshakes it accepts and pays TLS for (an Initial answered with a
    /// Retry, refused or dropped costs almost nothing and does not count).
    /// Default 2000: about what one core's TLS can do beside its traffic.
    pub handshakes_per_s_full: u64,
    /// How long every message handed to a shard's game waited since the
    /// gateway received it (the shortest wait over a sample: a standing
    /// queue, as CoDel reads one), that counts as 100 % pressure, in µs.
    /// Default 50000: a tick and a half at 30 Hz; at 70 % (35 ms) the
    /// shard sheds `bulk`.
    pub sojourn_full_us: u64,
    /// `normal` messages one gateway core holds back at level 2 and up,
    /// released in order once its level falls; past it they are shed.
    /// Default 1024: a few seconds of chat for a thousand players. 0: shed
    /// instead of deferring.
    pub defer_normal_slots_max: u32,
    /// Longest a deferred `normal` message may wait, in ms; older ones are
    /// dropped at release (counted). Default 5000: a chat line later than
    /// that reads as noise.
    pub defer_normal_max_ms: u64,
}

/// One percentage per level above normal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelPercents {
    /// Level 1: shed `bulk`.
    pub shed_bulk: u32,
    /// Level 2: defer `normal`, shed past its queue.
    pub defer_normal: u32,
    /// Level 3: thin `high`.
    pub thin_high: u32,
    /// Level 4: protect: refuse new sessions.
    pub protect: u32,
}

impl LevelPercents {
    /// In level order, 1 to 4.
    pub fn to_array(self) -> [u32; 4] {
        [
            self.shed_bulk,
            self.defer_normal,
            self.thin_high,
            self.protect,
        ]
    }
}

impl Default for OverloadConfig {
    fn default() -> Self {
        Self {
            sample_ms: 200,
            enter_percent: LevelPercents {
                shed_bulk: 70,
                defer_normal: 85,
                thin_high: 95,
                protect: 100,
            },
            exit_percent: LevelPercents {
                shed_bulk: 50,
                defer_normal: 65,
                thin_high: 80,
                protect: 90,
            },
            dwell_ms: 2_000,
            stuck_after_ms: 60_000,
            lag_full_us: 2_000,
            kernel_drops_per_s_full: 1_000,
            handshakes_per_s_full: 2_000,
            sojourn_full_us: 50_000,
            defer_normal_slots_max: 1_024,
            defer_normal_max_ms: 5_000,
        }
    }
}

const LEVEL_NAMES: [&str; 4] = ["shed_bulk", "defer_normal", "thin_high", "protect"];

impl OverloadConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        non_zero("overload.sample_ms", self.sample_ms)?;
        non_zero("overload.lag_full_us", self.lag_full_us)?;
        non_zero(
            "overload.kernel_drops_per_s_full",
            self.kernel_drops_per_s_full,
        )?;
        non_zero("overload.handshakes_per_s_full", self.handshakes_per_s_full)?;
        non_zero("overload.sojourn_full_us", self.sojourn_full_us)?;
        if self.stuck_after_ms <= self.dwell_ms {
            return Err(ConfigError::invalid(
                "overload.stuck_after_ms",
                format!(
                    "{} ms is not longer than overload.dwell_ms ({} ms): every level would be \
                     reported stuck before it may step down; raise it",
                    self.stuck_after_ms, self.dwell_ms
                ),
            ));
        }
        let enter = self.enter_percent.to_array();
        let exit = self.exit_percent.to_array();
        for i in 0..4 {
            let name = LEVEL_NAMES[i];
            if enter[i] == 0 || enter[i] > PRESSURE_PERCENT_LIMIT {
                return Err(ConfigError::invalid(
                    &format!("overload.enter_percent.{name}"),
                    format!("must be 1 to {PRESSURE_PERCENT_LIMIT}"),
                ));
            }
            if i > 0 && enter[i] <= enter[i - 1] {
                return Err(ConfigError::invalid(
                    &format!("overload.enter_percent.{name}"),
                    format!(
                        "{} is not above the level below it ({}): levels are entered in order",
                        enter[i],
                        enter[i - 1]
                    ),
                ));
            }
            if exit[i] >= enter[i] {
                return Err(ConfigError::invalid(
                    &format!("overload.exit_percent.{name}"),
                    format!(
                        "{} is not below its enter threshold ({}): the level would flap; lower it",
                        exit[i], enter[i]
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(OverloadConfig::default().validate(), Ok(()));
    }

    #[test]
    fn thresholds_that_would_flap_or_overlap_are_refused() {
        let mut c = OverloadConfig::default();
        c.exit_percent.thin_high = 95;
        let e = c.validate().unwrap_err();
        assert_eq!(e.field(), "overload.exit_percent.thin_high");
        let mut c = OverloadConfig::default();
        c.enter_percent.defer_normal = 70;
        assert_eq!(
            c.validate().unwrap_err().field(),
            "overload.enter_percent.defer_normal"
        );
        let c = OverloadConfig {
            stuck_after_ms: 1_000,
            ..OverloadConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().field(), "overload.stuck_after_ms");
    }
}
