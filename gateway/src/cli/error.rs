//! Why a command failed, and the exit code that says so.
//!
//! Each variant keeps its cause as a `source`, so the report (`error: ...`
//! with every cause, on stderr) names the file, flag or field and what was
//! wrong with it.

use std::io;
use std::net::SocketAddr;

use lanegate_bots::BotsError;
use lanegate_bots::attack::AttackError;
use lanegate_client::ClientError;
use lanegate_common::ticket::TicketError;

use crate::load::LoadError;
use crate::runtime::RuntimeError;

/// Why a `lanegate` command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The configuration, or a file it names, could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The gateway could not start, or failed while serving.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A command-line value is out of range or malformed.
    #[error("{message}")]
    Flag {
        /// The flag, e.g. `--ttl`.
        flag: String,
        /// What is wrong and how to fix it, naming the flag.
        message: String,
    },
    /// A flag's value was refused by the library that takes it.
    #[error("{flag}")]
    FlagValue {
        /// The flag and its value, e.g. `--rate urgent=1`.
        flag: String,
        /// Why it was refused.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Reading or writing a file or a stream failed.
    #[error("{what}")]
    Io {
        /// What was being done, e.g. `writing report.html`.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A ticket could not be minted.
    #[error("minting the ticket")]
    Ticket(#[from] TicketError),
    /// The probe could not run against the gateway.
    #[error("probing {server}")]
    Probe {
        /// The gateway probed.
        server: SocketAddr,
        /// Why the probe failed.
        #[source]
        source: ClientError,
    },
    /// The probe ran, but some lane never answered.
    #[error("not every lane answered")]
    LanesSilent,
    /// The bot swarm could not run.
    #[error("running bots against {server}")]
    Bots {
        /// The gateway under load.
        server: SocketAddr,
        /// Why the swarm failed.
        #[source]
        source: BotsError,
    },
    /// An attack (`lanegate bots --attack`) could not run, or its report
    /// could not be written.
    #[error("attacking {server}")]
    Attack {
        /// The gateway attacked.
        server: SocketAddr,
        /// Why the attack failed.
        #[source]
        source: AttackError,
    },
    /// A bots report could not be written.
    #[error("writing the bots report")]
    Report(#[source] BotsError),
    /// `lanegate doctor` found a check that fails outright.
    #[error("the host cannot run the gateway as configured")]
    HostUnfit,
    /// The system clock reads a time before 1970.
    #[error("the system clock is before 1970")]
    ClockBefore1970,
}

impl CliError {
    /// The process exit code: 2 for configuration or keys that must be
    /// fixed, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Load(e) => e.exit_code(),
            _ => 1,
        }
    }
}
