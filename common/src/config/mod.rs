//! Lanegate's configuration: one TOML file, every field optional.
//!
//! Text becomes a running plan in three steps, and only the first two live
//! here (this crate does no IO):
//!
//! 1. [`Config::from_toml_str`] parses the file. Every section and field has
//!    a default, so a partial file overrides only what it names and an empty
//!    one (or none at all) runs [`Config::default`], which is exactly
//!    [`DEFAULT_TOML`]. Syntax errors, wrong types and unknown fields are
//!    refused here, each naming its dotted field and line.
//! 2. [`Config::validate`] checks ranges and the relations between limits
//!    (a datagram fits a QUIC packet, a tick budget fits its tick, a payload
//!    pool holds a buffer per connection...) against the [`HostInfo`] the
//!    caller measured. Each error names the field and says how to fix it.
//! 3. The binary resolves cores with [`Config::core_plan`], builds the
//!    [`LaneTable`](crate::lanes::LaneTable) with
//!    [`LanesConfig::lane_table`], reads the ticket secrets and starts the
//!    gateway and shards. Every limit the runtime uses comes from here: the
//!    shard crate builds its runtime config from a validated `Config`.
//!
//! One file per section, each holding its struct, its defaults and its
//! validation: [`GatewayConfig`], [`TicketsConfig`], [`LanesConfig`],
//! [`AdmissionConfig`], [`ShardsConfig`], [`ObservabilityConfig`],
//! [`OverloadConfig`], [`MonitorConfig`], and
//! [`GameSection`], the game's own `[game]` table ([`GameConfig`]). Limits are
//! named with their unit last (`_max`, `_ms`, `_us`, `_bytes`, `_per_s`),
//! and each default documents the assumption behind it, once, in its field's
//! doc; `default.toml` and `docs/configuration.md` repeat the values, and
//! tests check that they agree.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

mod admission;
mod error;
mod game;
mod gateway;
mod lanes;
mod monitor;
mod observability;
mod overload;
mod serde_forms;
mod shards;
mod span;
mod tickets;
mod zones;

pub use admission::AdmissionConfig;
pub use error::ConfigError;
pub use game::{GameConfig, GameConfigError, GameSection, NoGameConfig, parse_game_config};
pub use gateway::{
    DATAGRAM_MESSAGE_BYTES_LIMIT, GatewayConfig, IoBackend, STREAM_MESSAGE_BYTES_LIMIT, StateDir,
    UNI_STREAMS_LIMIT,
};
pub use lanes::{LaneLimit, LaneLimits, LanesConfig};
pub use monitor::{DAY_S, MonitorConfig, SEASON_BUCKET_S_MIN, WEEK_S};
pub use observability::{LogFormat, ObservabilityConfig};
pub use overload::{LevelPercents, OverloadConfig, PRESSURE_PERCENT_LIMIT};
pub use shards::{
    BufCount, GameKind, InboxSlots, LaneBudgets, LaneFillPercents, ShardsConfig, TICK_RATE_HZ_LIMIT,
};
pub use tickets::{TicketKeyFile, TicketsConfig};
pub use zones::{ZONE_RANGES_MAX, ZONES_MAX, ZoneSet, ZoneSetError};

/// The complete default configuration file, with a comment on every field.
///
/// Parsing it gives [`Config::default`]; `lanegate config print-default`
/// prints it.
pub const DEFAULT_TOML: &str = include_str!("../default.toml");

/// The whole configuration, one field per `[section]` of the file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[gateway]`: the QUIC edge: sockets, cores, connection limits.
    pub gateway: GatewayConfig,
    /// `[tickets]`: the keys that sign session tickets.
    pub tickets: TicketsConfig,
    /// `[lanes]`: which message types travel in which lane, and how fast.
    pub lanes: LanesConfig,
    /// `[admission]`: when a misbehaving connection is closed.
    pub admission: AdmissionConfig,
    /// `[shards]`: the game-logic tier: cores, tick, rings, budgets, pools.
    pub shards: ShardsConfig,
    /// `[observability]`: metrics and logs.
    pub observability: ObservabilityConfig,
    /// `[overload]`: when the degradation ladder steps up and down.
    pub overload: OverloadConfig,
    /// `[monitor]`: learned baselines, anomaly alerts and forecasts.
    pub monitor: MonitorConfig,
    /// `[game]`: the game's own table, opaque here (see [`GameConfig`]).
    #[serde(skip_serializing)]
    pub game: GameSection,
}

/// What the caller measured about the host; `validate` and `core_plan`
/// need it, and this crate does no IO to find it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostInfo {
    /// Number of CPU cores available to the process (at least 1 is assumed).
    pub cores: usize,
}

/// Which CPU cores a tier runs on: `"auto"` or a list such as `[0, 1]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CoreSet {
    /// Share the host with the other tier; see [`Config::core_plan`].
    #[default]
    Auto,
    /// These core indices (0-based, as the OS numbers them), one pinned
    /// thread each.
    List(Vec<usize>),
}

/// Which cores each tier runs on, with `"auto"` resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorePlan {
    /// One gateway thread per entry.
    pub gateway: Vec<usize>,
    /// One shard per entry.
    pub shards: Vec<usize>,
}

impl Config {
    /// Parses a configuration file. Fields the text leaves out keep their
    /// defaults. Does not [`validate`](Config::validate).
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| span::parse_error(text, &e))
    }

    /// Checks ranges, relations between limits, and that the configured
    /// cores exist on `host`. Returns the first problem found.
    pub fn validate(&self, host: &HostInfo) -> Result<(), ConfigError> {
        self.gateway.validate(host)?;
        self.tickets.validate()?;
        self.lanes.validate()?;
        self.admission.validate()?;
        self.overload.validate()?;
        self.monitor.validate()?;
        let plan = self.core_plan(host);
        let pools = plan.gateway.len() + plan.shards.len();
        self.shards.validate(&self.gateway, pools, host)
    }

    /// Resolves `gateway.cores` and `shards.cores` on `host`.
    ///
    /// Both `"auto"`: on 1 core both tiers share core 0; on 2 the gateway
    /// gets core 0 and the shards core 1; on N the gateway gets the first
    /// ⌈N/2⌉ cores (it faces the network, where floods land) and the shards
    /// the rest. One `"auto"`: it gets the cores the other list leaves free,
    /// or shares that list's cores if none are free.
    pub fn core_plan(&self, host: &HostInfo) -> CorePlan {
        let n = host.cores.max(1);
        let free = |taken: &[usize]| -> Vec<usize> {
            let rest: Vec<usize> = (0..n).filter(|c| !taken.contains(c)).collect();
            if rest.is_empty() {
                taken.to_vec()
            } else {
                rest
            }
        };
        let (gateway, shards) = match (&self.gateway.cores, &self.shards.cores) {
            (CoreSet::List(g), CoreSet::List(s)) => (g.clone(), s.clone()),
            (CoreSet::List(g), CoreSet::Auto) => (g.clone(), free(g)),
            (CoreSet::Auto, CoreSet::List(s)) => (free(s), s.clone()),
            (CoreSet::Auto, CoreSet::Auto) if n == 1 => (vec![0], vec![0]),
            (CoreSet::Auto, CoreSet::Auto) => {
                let split = n.div_ceil(2);
                ((0..split).collect(), (split..n).collect())
            }
        };
        CorePlan { gateway, shards }
    }
}

/// Refuses a core list that is empty, repeats a core, or names a core
/// `host` does not have.
fn check_cores(field: &str, set: &CoreSet, host: &HostInfo) -> Result<(), ConfigError> {
    let CoreSet::List(cores) = set else {
        return Ok(());
    };
    if cores.is_empty() {
        return Err(ConfigError::invalid(
            field,
            "is empty; list at least one core, or use \"auto\"",
        ));
    }
    let n = host.cores.max(1);
    let mut seen = BTreeSet::new();
    for &core in cores {
        if core >= n {
            let range = if n == 1 {
                "only core 0".to_owned()
            } else {
                format!("cores 0-{}", n - 1)
            };
            return Err(ConfigError::invalid(
                field,
                format!("core {core} does not exist on this host ({range})"),
            ));
        }
        if !seen.insert(core) {
            return Err(ConfigError::invalid(
                field,
                format!("core {core} is listed twice; list each core once"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_cores_split_the_host() {
        let c = Config::default();
        let plan = |n| {
            let p = c.core_plan(&HostInfo { cores: n });
            (p.gateway, p.shards)
        };
        assert_eq!(plan(0), (vec![0], vec![0]));
        assert_eq!(plan(1), (vec![0], vec![0]));
        assert_eq!(plan(2), (vec![0], vec![1]));
        assert_eq!(plan(3), (vec![0, 1], vec![2]));
        assert_eq!(plan(8), (vec![0, 1, 2, 3], vec![4, 5, 6, 7]));
    }

    #[test]
    fn one_auto_side_takes_the_free_cores() {
        let mut c = Config::default();
        c.gateway.cores = CoreSet::List(vec![1]);
        let p = c.core_plan(&HostInfo { cores: 4 });
        assert_eq!((p.gateway, p.shards), (vec![1], vec![0, 2, 3]));
        c.gateway.cores = CoreSet::List(vec![0]);
        let p = c.core_plan(&HostInfo { cores: 1 });
        assert_eq!(p.shards, vec![0], "nothing free: share the gateway's cores");
    }
}
