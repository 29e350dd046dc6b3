//! `lanegate config print-default` and `lanegate config check FILE`.

use std::io::Write;

use lanegate_common::config::DEFAULT_TOML;

use crate::cli::ConfigCommand;
use lanegate_gateway::load;

/// Runs a `config` subcommand.
pub fn run(cmd: &ConfigCommand) -> anyhow::Result<()> {
    match cmd {
        ConfigCommand::PrintDefault => {
            std::io::stdout().write_all(DEFAULT_TOML.as_bytes())?;
        }
        ConfigCommand::Check { file } => {
            let host = load::host_info();
            let config = load::config(Some(file), load::Overrides::default(), &host)?;
            // The key files must be readable too, or `serve` would fail.
            load::ticket_keys(&config.tickets)?;
            println!("ok");
        }
    }
    Ok(())
}
