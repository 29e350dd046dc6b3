//! `lanegate config print-default` and `lanegate config check FILE`.

use std::io::Write;

use lanegate_common::config::DEFAULT_TOML;

use super::CliError;
use super::args::ConfigCommand;
use crate::load;

/// Prints the embedded defaults, or checks a file as `serve` would load
/// it, its `[game]` table with `check_game`.
pub fn run(
    cmd: &ConfigCommand,
    check_game: impl FnOnce(&std::path::Path) -> Result<(), CliError>,
) -> Result<(), CliError> {
    match cmd {
        ConfigCommand::PrintDefault => {
            std::io::stdout()
                .write_all(DEFAULT_TOML.as_bytes())
                .map_err(|source| CliError::Io {
                    what: "writing to stdout".to_owned(),
                    source,
                })?;
        }
        ConfigCommand::Check { file } => {
            let host = load::host_info();
            let config = load::config(Some(file), load::Overrides::default(), &host)?;
            load::ticket_keys(&config.tickets)?;
            check_game(file)?;
            println!("ok");
        }
    }
    Ok(())
}
