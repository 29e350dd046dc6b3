//! `lanegate bots`: the bot swarm of `lanegate_bots` on the command line:
//! game-shaped, open-loop load with per-lane latency histograms, a summary
//! table, and optional JSON and HTML reports.

use anyhow::{Context, bail};
use lanegate_bots::{self as bots, BotsConfig, Flood, Mode};
use lanegate_client::ServerVerify;
use lanegate_common::lanes::Lane;

use crate::cli::BotsArgs;

/// Runs the swarm `args` describe and prints its summary.
pub fn run(args: &BotsArgs) -> anyhow::Result<()> {
    let cfg = config(args)?;
    let progress = bots::indicatif_progress(&cfg);
    let report = bots::run_blocking(cfg, args.threads.max(1), progress)
        .with_context(|| format!("running bots against {}", args.server))?;
    print!("{report}");
    if let Some(path) = &args.json {
        report
            .write_json(path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.report {
        report
            .write_html(path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn config(args: &BotsArgs) -> anyhow::Result<BotsConfig> {
    let verify = match (&args.fingerprint, args.insecure, args.udp) {
        (Some(hex), _, _) => ServerVerify::fingerprint_hex(hex).context("--fingerprint")?,
        (None, true, _) | (None, false, true) => ServerVerify::InsecureNoVerify,
        (None, false, false) => bail!("--fingerprint or --insecure is required for QUIC bots"),
    };
    let mut cfg = BotsConfig::new(args.server, verify);
    cfg.server_name.clone_from(&args.server_name);
    cfg.mode = if args.udp { Mode::RawUdp } else { Mode::Quic };
    cfg.clients = args.clients;
    cfg.duration = args.duration;
    cfg.connect_rate_per_s = args.connect_rate;
    for rate in &args.rates {
        let (lane, value) = lane_rate(rate).with_context(|| format!("--rate {rate}"))?;
        cfg.lanes[lane.index()].rate_per_s = value;
    }
    if let Some(flood) = &args.flood_lane {
        cfg.flood = Some(
            flood
                .parse::<Flood>()
                .map_err(|e| anyhow::anyhow!("--flood-lane {flood}: {e}"))?,
        );
    }
    cfg.check().context("bots configuration")?;
    Ok(cfg)
}

fn lane_rate(text: &str) -> anyhow::Result<(Lane, f64)> {
    let (lane, rate) = text
        .split_once('=')
        .context("write LANE=RATE, e.g. critical=30")?;
    let lane: Lane = lane.parse()?;
    let rate: f64 = rate.parse().context("RATE is messages per second")?;
    if !(rate.is_finite() && rate >= 0.0) {
        bail!("RATE must be a non-negative number");
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
