//! `[admission]`: when a connection that keeps exceeding its lane limits is
//! closed, and how long its address and player are banned after.

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::error::non_zero;

/// `[admission]`: when a connection that keeps exceeding its limits is closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionConfig {
    /// Window over which over-limit drops are counted, in ms. Default
    /// 10000: long enough that a lag spike's catch-up burst is averaged out.
    pub abuse_window_ms: u64,
    /// A connection with more drops than this within the window is closed
    /// with ABUSE. Default 500: an honest client over its limit drops a few
    /// dozen messages after a hitch; 50 drops a second for 10 s is a flood.
    pub abuse_drops_max: u32,
    /// After a close with ABUSE, the connection's source address (an IPv6
    /// address by its /64) and its player cannot reconnect for this long,
    /// in ms; 0 turns bans off. Default 60000: the minute the protocol
    /// tells an ABUSE-closed client to back off anyway, so an honest client
    /// never meets it, and a flooder costs one handshake a minute.
    pub abuse_ban_ms: u64,
    /// Bans held per gateway core at once (addresses and players together;
    /// each ABUSE close adds two). Default 4096: 2048 abusive sessions a
    /// minute per core. When full, the ban closest to its end gives way.
    pub bans_max: u32,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            abuse_window_ms: 10_000,
            abuse_drops_max: 500,
            abuse_ban_ms: 60_000,
            bans_max: 4096,
        }
    }
}

impl AdmissionConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        non_zero("admission.abuse_window_ms", self.abuse_window_ms)?;
        non_zero("admission.abuse_drops_max", self.abuse_drops_max.into())?;
        non_zero("admission.bans_max", self.bans_max.into())
    }
}
