//! The `lanegate` command line, as a library, so that a studio's own binary
//! is the whole `lanegate` with its game behind `serve`:
//!
//! ```no_run
//! use lanegate_common::config::NoGameConfig;
//! use lanegate_shard::games::Echo;
//!
//! fn main() -> std::process::ExitCode {
//!     lanegate_gateway::cli::run(|_config: &NoGameConfig, _start| Echo)
//! }
//! ```
//!
//! [`run`] parses the command line and runs the subcommand: `serve` (the
//! default) loads and validates the configuration, reads the `[game]` table
//! into the game's own [`GameConfig`] type, resolves a [`Plan`] and serves
//! through the library's [`Gateway`] until SIGTERM/SIGINT and a drain;
//! `config check` checks the `[game]` table too. `ticket`, `probe`, `bots`,
//! `config print-default` and `doctor` are the same in every binary.
//! [`run_builtin`] is the `lanegate` binary: the built-in game
//! `shards.game` names.
//!
//! Exit codes: 0 success, 1 an IO or other runtime failure (such as an
//! unreadable file), 2 invalid configuration or key, 64 a usage error
//! (clap's own code is 2, so it is remapped to keep 2 meaning "fix the
//! config").

use std::marker::PhantomData;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Parser;
use lanegate_common::config::{GameConfig, LogFormat, NoGameConfig};
use lanegate_shard::Game;

use crate::load;
use crate::runtime::{GameStart, Gateway, Plan};

mod args;
mod bots;
mod config;
mod doctor;
mod error;
mod logs;
mod notify;
mod probe;
mod serve;
mod signals;
mod ticket;

use self::args::{Cli, Command};
pub use self::error::CliError;

/// `EX_USAGE` from sysexits.h.
const EXIT_USAGE: u8 = 64;

/// The `lanegate` command line with a studio's game behind `serve`:
/// `make` builds a game instance from the game's `[game]` table (its own
/// type `C`, parsed and validated before anything starts) for the shard
/// [`GameStart`] names. It is called once per shard at start and again
/// for a shard whose game panicked.
pub fn run<C, G, F>(make: F) -> ExitCode
where
    C: GameConfig,
    G: Game + 'static,
    F: Fn(&C, GameStart) -> G + Send + Sync + 'static,
{
    main(&Studio {
        make: Arc::new(make),
        config: PhantomData,
    })
}

/// The `lanegate` binary: the built-in game `shards.game` names behind
/// `serve`.
pub fn run_builtin() -> ExitCode {
    main(&Builtin)
}

/// How `serve` and `config check` treat the game.
trait GameSetup {
    /// Reads and checks the `[game]` table of `file` (the defaults when
    /// there is no file).
    fn check(&self, file: Option<&Path>) -> Result<(), CliError>;
    /// Starts the gateway running the game.
    fn start(
        &self,
        plan: &Plan,
        file: Option<&Path>,
        stop: Arc<AtomicBool>,
    ) -> Result<Gateway, CliError>;
}

struct Builtin;

impl GameSetup for Builtin {
    fn check(&self, file: Option<&Path>) -> Result<(), CliError> {
        load::game_config::<NoGameConfig>(file)?;
        Ok(())
    }

    fn start(
        &self,
        plan: &Plan,
        file: Option<&Path>,
        stop: Arc<AtomicBool>,
    ) -> Result<Gateway, CliError> {
        self.check(file)?;
        Ok(Gateway::start_builtin(plan, stop)?)
    }
}

struct Studio<C, F> {
    make: Arc<F>,
    config: PhantomData<fn() -> C>,
}

impl<C, G, F> GameSetup for Studio<C, F>
where
    C: GameConfig,
    G: Game + 'static,
    F: Fn(&C, GameStart) -> G + Send + Sync + 'static,
{
    fn check(&self, file: Option<&Path>) -> Result<(), CliError> {
        load::game_config::<C>(file)?;
        Ok(())
    }

    fn start(
        &self,
        plan: &Plan,
        file: Option<&Path>,
        stop: Arc<AtomicBool>,
    ) -> Result<Gateway, CliError> {
        let config = Arc::new(load::game_config::<C>(file)?);
        let make = Arc::clone(&self.make);
        Ok(Gateway::start(
            plan,
            move |start| make(&config, start),
            stop,
        )?)
    }
}

fn main(game: &dyn GameSetup) -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            // Printing help or a usage error to a closed pipe is not worth a panic.
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match dispatch(cli, game) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", report(&e));
            ExitCode::from(e.exit_code())
        }
    }
}

/// `e` and its causes, `: `-separated.
fn report(e: &CliError) -> String {
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

fn dispatch(cli: Cli, game: &dyn GameSetup) -> Result<(), CliError> {
    match cli.command.unwrap_or(Command::Serve(cli.serve)) {
        Command::Serve(args) => {
            let host = load::host_info();
            let overrides = load::Overrides {
                listen: args.listen,
                metrics_listen: args.metrics_listen.map(|m| m.0),
                log_format: args.log_format,
            };
            let file = args.config.as_deref();
            let config = load::config(file, overrides, &host)?;
            logs::init(config.observability.log_format);
            game.check(file)?;
            let plan = Plan::new(config, &host)?;
            serve::run(&plan, |stop| game.start(&plan, file, stop))
        }
        Command::Ticket(args) => {
            logs::init(LogFormat::Text);
            ticket::run(&args)
        }
        Command::Probe(args) => {
            logs::init(LogFormat::Text);
            probe::run(&args)
        }
        Command::Bots(args) => {
            logs::init(LogFormat::Text);
            bots::run(&args)
        }
        Command::Config(cmd) => {
            logs::init(LogFormat::Text);
            config::run(&cmd, |file| game.check(Some(file)))
        }
        Command::Doctor(args) => {
            logs::init(LogFormat::Text);
            let host = load::host_info();
            let config = load::config(args.config.as_deref(), load::Overrides::default(), &host)?;
            let plan = config.core_plan(&host);
            let facts = doctor::Facts::gather(&doctor::Roots::default(), true);
            let findings = doctor::evaluate(&facts, &config, &plan);
            let worst =
                doctor::print(&findings, &mut std::io::stdout().lock()).map_err(|source| {
                    CliError::Io {
                        what: "writing to stdout".to_owned(),
                        source,
                    }
                })?;
            println!("{}", doctor::summary(&findings));
            if worst == doctor::Level::Fail {
                return Err(CliError::HostUnfit);
            }
            Ok(())
        }
    }
}
