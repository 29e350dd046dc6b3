//! `lanegate bots`: the bot swarm of `lanegate_bots` on the command line:
//! game-shaped, open-loop load with per-lane latency histograms, a summary
//! table, and optional JSON and HTML reports.

use lanegate_bots::{self as bots, BotsConfig, Flood, Mode};
use lanegate_client::ServerVerify;
use lanegate_common::lanes::Lane;

use super::CliError;
use super::args::BotsArgs;

/// Runs the swarm `args` describe and prints (and writes) its report.
pub fn run(args: &BotsArgs) -> Result<(), CliError> {
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
    cfg.check()
        .map_err(|e| flag_value("bots configuration", e))?;
    Ok(cfg)
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

    #[test]
    fn lane_rates_parse() {
        assert_eq!(lane_rate("bulk=2.5").unwrap(), (Lane::Bulk, 2.5));
        assert!(lane_rate("bulk").is_err());
        assert!(lane_rate("urgent=1").is_err());
        assert!(lane_rate("high=-1").is_err());
    }
}
