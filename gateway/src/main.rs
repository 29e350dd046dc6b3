//! The `lanegate` binary: the command line in front of the gateway.
//!
//! `lanegate` (or `lanegate serve`) loads and validates the configuration,
//! resolves cores, lane table and ticket keys into a
//! [`Plan`], and hands it to [`serve::run`],
//! which prints the plan and serves through the library's
//! [`Gateway`](lanegate_gateway::runtime::Gateway) until SIGTERM/SIGINT. `lanegate ticket` mints a ticket with
//! the same key code the gateway verifies with; `lanegate probe` measures a
//! running gateway per lane; `lanegate config` prints and checks
//! configuration files; `lanegate doctor` inspects the host.
//!
//! Exit codes: 0 success, 1 an IO or other runtime failure (such as an
//! unreadable file), 2 invalid configuration or key, 64 a usage error
//! (clap's own code is 2, so it is remapped to keep 2 meaning "fix the
//! config").
//!
//! `anyhow` is used here and nowhere else: every other module returns typed
//! errors, and this file decides only how to report them.
#![forbid(unsafe_code)]

mod bots_cmd;
mod cli;
mod config_cmd;
mod doctor;
mod logs;
mod mint;
mod notify;
mod probe_cmd;
mod serve;
mod signals;

use std::process::ExitCode;

use clap::Parser;
use lanegate_common::config::LogFormat;

use crate::cli::{Cli, Command};
use lanegate_gateway::load::{self, LoadError};
use lanegate_gateway::runtime::Plan;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            // Printing help or a usage error to a closed pipe is not worth a panic.
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// `EX_USAGE` from sysexits.h.
const EXIT_USAGE: u8 = 64;

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve(cli.serve)) {
        Command::Serve(args) => {
            let host = load::host_info();
            let overrides = load::Overrides {
                listen: args.listen,
                metrics_listen: args.metrics_listen.map(|m| m.0),
            };
            let config = load::config(args.config.as_deref(), overrides, &host)?;
            logs::init(config.observability.log_format);
            let plan = Plan::new(config, &host)?;
            serve::run(&plan)
        }
        Command::Ticket(args) => {
            logs::init(LogFormat::Text);
            mint::run(&args)
        }
        Command::Probe(args) => {
            logs::init(LogFormat::Text);
            probe_cmd::run(&args)
        }
        Command::Bots(args) => {
            logs::init(LogFormat::Text);
            bots_cmd::run(&args)
        }
        Command::Config(cmd) => {
            logs::init(LogFormat::Text);
            config_cmd::run(&cmd)
        }
        Command::Doctor(args) => {
            logs::init(LogFormat::Text);
            let host = load::host_info();
            let config = load::config(args.config.as_deref(), load::Overrides::default(), &host)?;
            let plan = config.core_plan(&host);
            let facts = doctor::Facts::gather(&doctor::Roots::default(), true);
            let findings = doctor::evaluate(&facts, &config, &plan);
            let worst = doctor::print(&findings, &mut std::io::stdout().lock())?;
            println!("{}", doctor::summary(&findings));
            if worst == doctor::Level::Fail {
                anyhow::bail!("the host cannot run the gateway as configured");
            }
            Ok(())
        }
    }
}

fn exit_code(e: &anyhow::Error) -> u8 {
    e.chain()
        .find_map(|cause| cause.downcast_ref::<LoadError>())
        .map_or(1, LoadError::exit_code)
}
