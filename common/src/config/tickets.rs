//! `[tickets]`: the keys that sign session tickets, and how much clock
//! skew and lifetime a ticket may have.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::error::non_zero;
use crate::ids::KeyId;
use crate::ticket::{DEV_KEY_ID, LIFETIME_S_MAX_DEFAULT};

/// `[tickets]`: the keys that sign session tickets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TicketsConfig {
    /// Live signing keys, each `{ id = 1, secret_file = "..." }`. Several
    /// may be live during a rotation. Default empty: the built-in dev key
    /// (id 0), whose secret is public, so anyone can mint tickets; the
    /// binary warns loudly. Never run production without keys.
    pub keys: Vec<TicketKeyFile>,
    /// How far a ticket's times may disagree with this host's clock, in
    /// seconds. Default 30: NTP-synced hosts agree within milliseconds;
    /// this covers a backend whose clock drifted.
    pub clock_skew_s: u64,
    /// Longest lifetime (`expires_at - issued_at`) a ticket may claim, in
    /// seconds; longer ones are refused. Default 86400 (one day): tickets are
    /// meant to be minted per login, so a leaked one dies within a day.
    pub ttl_max_s: u64,
}

impl Default for TicketsConfig {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            clock_skew_s: 30,
            ttl_max_s: LIFETIME_S_MAX_DEFAULT,
        }
    }
}

impl TicketsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let mut ids = BTreeSet::new();
        for key in &self.keys {
            if key.id == DEV_KEY_ID {
                return Err(ConfigError::invalid(
                    "tickets.keys",
                    "key id 0 is reserved for the built-in dev key; number real keys from 1",
                ));
            }
            if !ids.insert(key.id) {
                return Err(ConfigError::invalid(
                    "tickets.keys",
                    format!(
                        "key id {} is listed twice; give each key its own id",
                        key.id
                    ),
                ));
            }
            if key.secret_file.as_os_str().is_empty() {
                return Err(ConfigError::invalid(
                    "tickets.keys",
                    format!(
                        "key id {} has an empty secret_file; name the file holding its secret",
                        key.id
                    ),
                ));
            }
        }
        non_zero("tickets.ttl_max_s", self.ttl_max_s)?;
        if self.clock_skew_s >= self.ttl_max_s {
            return Err(ConfigError::invalid(
                "tickets.clock_skew_s",
                format!(
                    "{} is not below tickets.ttl_max_s ({}), so expired tickets would stay valid for longer than any ticket lives; lower it",
                    self.clock_skew_s, self.ttl_max_s
                ),
            ));
        }
        Ok(())
    }
}

/// One ticket signing key: its id and the file holding its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketKeyFile {
    /// The key id tickets name. 0 is reserved for the dev key.
    pub id: KeyId,
    /// File holding the secret: at least 32 bytes, surrounding whitespace
    /// ignored. Keep it readable by the gateway's user only.
    pub secret_file: PathBuf,
}
