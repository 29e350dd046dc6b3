//! `lanegate bots`: the bot swarm of `lanegate_bots` on the command line:
//! game-shaped, open-loop load with per-lane latency histograms, a summary
//! table, and optional JSON and HTML reports; with `--overload` the swarm
//! at a multiple of its lane mix, and with `--attack` one of the attacks of
//! `lanegate_bots::attack` instead of the swarm.
//!
//! Both `--overload` and `--attack` refuse a server that is not a loopback
//! address unless `--allow-remote-attack` is given: the check comes first,
//! before any socket exists, and its error names the flag.

use lanegate_bots::attack::{self, AttackConfig, AttackError};
use lanegate_bots::{self as bots, BotsConfig, Flood, Mode};
use lanegate_client::ServerVerify;
use lanegate_common::lanes::Lane;

use super::CliError;
use super::args::BotsArgs;

/// Runs the swarm `args` describe and prints (and writes) its report.
pub fn run(args: &BotsArgs) -> Result<(), CliError> {
    if args.attack.is_some() || args.overload.is_some() {
        attack::check_target(args.server, args.allow_remote_attack).map_err(remote_refused)?;
    }
    if let Some(cfg) = attack_config(args)? {
        let report = attack::run(&cfg).map_err(|source| CliError::Attack {
            server: args.server,
            source,
        })?;
        print!("{report}");
        if let Some(path) = &args.json {
            report.write_json(path).map_err(|source| CliError::Attack {
                server: args.server,
                source,
            })?;
        }
        return Ok(());
    }
    let cfg = config(args)?;
    let progress = bots::indicatif_progress(&cfg);
    let report = bots::run_blocking(cfg, args.threads.max(1), progress).map_err(|source| {
        CliError::Bots {
            server: args.server,
            source,
        }
    })?;
    print!("{report}");
    if let Some(path) = &args.json {
        report.write_json(path).map_err(CliError::Report)?;
    }
    if let Some(path) = &args.report {
        report.write_html(path).map_err(CliError::Report)?;
    }
    Ok(())
}

fn config(args: &BotsArgs) -> Result<BotsConfig, CliError> {
    let verify = match (&args.fingerprint, args.insecure, args.udp) {
        (Some(hex), _, _) => {
            ServerVerify::fingerprint_hex(hex).map_err(|e| flag_value("--fingerprint", e))?
        }
        (None, true, _) | (None, false, true) => ServerVerify::InsecureNoVerify,
        (None, false, false) => {
            return Err(CliError::Flag {
                flag: "--fingerprint".to_owned(),
                message: "--fingerprint or --insecure is required for QUIC bots".to_owned(),
            });
        }
    };
    let mut cfg = BotsConfig::new(args.server, verify);
    cfg.server_name.clone_from(&args.server_name);
    cfg.mode = if args.udp { Mode::RawUdp } else { Mode::Quic };
    cfg.clients = args.clients;
    cfg.duration = args.duration;
    cfg.connect_rate_per_s = args.connect_rate;
    for rate in &args.rates {
        let (lane, value) = lane_rate(rate).map_err(|message| CliError::Flag {
            flag: "--rate".to_owned(),
            message: format!("--rate {rate}: {message}"),
        })?;
        cfg.lanes[lane.index()].rate_per_s = value;
    }
    if let Some(flood) = &args.flood_lane {
        let parsed = flood
            .parse::<Flood>()
            .map_err(|e| flag_value(&format!("--flood-lane {flood}"), e))?;
        cfg.flood = Some(parsed);
    }
    if let Some(factor) = args.overload {
        cfg.overload(factor)
            .map_err(|e| flag_value(&format!("--overload {factor}"), e))?;
    }
    cfg.check()
        .map_err(|e| flag_value("bots configuration", e))?;
    Ok(cfg)
}

/// The attack `--attack` asks for, checked; `None` without `--attack`.
fn attack_config(args: &BotsArgs) -> Result<Option<AttackConfig>, CliError> {
    let Some(name) = &args.attack else {
        return Ok(None);
    };
    let kind = name
        .parse()
        .map_err(|e| flag_value(&format!("--attack {name}"), e))?;
    let mut cfg = AttackConfig::new(kind, args.server);
    cfg.server_name.clone_from(&args.server_name);
    cfg.duration = args.duration;
    cfg.rate_per_s = args.attack_rate;
    cfg.sources = args.sources;
    cfg.source_addrs =
        args.source_addrs
            .unwrap_or(if args.server.is_ipv4() && args.server.ip().is_loopback() {
                cfg.source_addrs
            } else {
                1
            });
    cfg.connections = args.clients;
    cfg.hold_max = args.hold_max;
    cfg.allow_remote = args.allow_remote_attack;
    cfg.check().map_err(|e| match e {
        AttackError::Config { field, .. } => flag_value(attack_flag(field), e),
        other => remote_refused(other),
    })?;
    Ok(Some(cfg))
}

/// The flag that sets an [`AttackConfig`] field.
fn attack_flag(field: &str) -> &'static str {
    match field {
        "duration" => "--duration",
        "rate_per_s" => "--attack-rate",
        "sources" => "--sources",
        "source_addrs" => "--source-addrs",
        "connections" => "--clients",
        "hold_max" => "--hold-max",
        _ => "--attack",
    }
}

fn remote_refused(e: AttackError) -> CliError {
    CliError::Flag {
        flag: "--allow-remote-attack".to_owned(),
        message: e.to_string(),
    }
}

fn flag_value(flag: &str, e: impl std::error::Error + Send + Sync + 'static) -> CliError {
    CliError::FlagValue {
        flag: flag.to_owned(),
        source: Box::new(e),
    }
}

/// `LANE=RATE`; the error says how to write it.
fn lane_rate(text: &str) -> Result<(Lane, f64), String> {
    let (lane, rate) = text
        .split_once('=')
        .ok_or("write LANE=RATE, e.g. critical=30")?;
    let lane: Lane = lane.parse().map_err(|e| format!("{e}"))?;
    let rate: f64 = rate
        .parse()
        .map_err(|_| "RATE is messages per second".to_owned())?;
    if !(rate.is_finite() && rate >= 0.0) {
        return Err("RATE must be a non-negative number".to_owned());
    }
    Ok((lane, rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    use clap::Parser;

    use crate::cli::args::{Cli, Command};

    fn bots_args(extra: &[&str]) -> BotsArgs {
        let argv = [&["lanegate", "bots"][..], extra].concat();
        match Cli::try_parse_from(argv).expect("parses").command {
            Some(Command::Bots(args)) => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn attacks_and_overload_refuse_a_remote_server_naming_the_flag() {
        for extra in [
            &["--attack", "handshake-flood"][..],
            &["--overload", "2", "--insecure"][..],
        ] {
            let args = bots_args(&[&["--server", "192.0.2.1:4433"][..], extra].concat());
            let e = run(&args).unwrap_err();
            assert!(
                matches!(&e, CliError::Flag { flag, .. } if flag == "--allow-remote-attack"),
                "{e:?}"
            );
            assert!(e.to_string().contains("--allow-remote-attack"), "{e}");
        }
        // With the flag the attack is configured (one source address off
        // loopback), and nothing is sent here.
        let args = bots_args(&[
            "--server",
            "192.0.2.1:4433",
            "--attack",
            "garbage-flood",
            "--allow-remote-attack",
        ]);
        let cfg = attack_config(&args).unwrap().expect("an attack");
        assert_eq!((cfg.source_addrs, cfg.allow_remote), (1, true));
    }

    #[test]
    fn attack_bounds_are_refused_by_flag() {
        let flag_of = |extra: &[&str]| {
            let args = bots_args(&[&["--server", "127.0.0.1:4433"][..], extra].concat());
            match attack_config(&args) {
                Err(CliError::FlagValue { flag, .. }) => flag,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            flag_of(&["--attack", "handshake-flood", "--attack-rate", "50001"]),
            "--attack-rate"
        );
        assert_eq!(
            flag_of(&["--attack", "half-open", "--clients", "20001"]),
            "--clients"
        );
        assert_eq!(
            flag_of(&["--attack", "garbage-flood", "--duration", "11m"]),
            "--duration"
        );
        assert_eq!(flag_of(&["--attack", "syn-flood"]), "--attack syn-flood");
        let args = bots_args(&[
            "--server",
            "127.0.0.1:4433",
            "--overload",
            "9",
            "--insecure",
        ]);
        assert!(
            matches!(config(&args), Err(CliError::FlagValue { flag, .. }) if flag == "--overload 9")
        );
    }

    #[test]
    fn lane_rates_parse() {
        assert_eq!(lane_rate("bulk=2.5").unwrap(), (Lane::Bulk, 2.5));
        assert!(lane_rate("bulk").is_err());
        assert!(lane_rate("urgent=1").is_err());
        assert!(lane_rate("high=-1").is_err());
    }
}
