//! `[admission]`: when a connection that keeps exceeding its lane limits is
//! closed.

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
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            abuse_window_ms: 10_000,
            abuse_drops_max: 500,
        }
    }
}

impl AdmissionConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        non_zero("admission.abuse_window_ms", self.abuse_window_ms)?;
        non_zero("admission.abuse_drops_max", self.abuse_drops_max.into())
    }
}
