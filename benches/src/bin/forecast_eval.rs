//! `forecast-eval`: the error of the gateway's next-hour forecasts
//! (`SeriesModel::forecast`, configured from `MonitorConfig::default()`)
//! against a seasonal-naive baseline (the value at the same time last
//! week), on NAB's seasonal series and on the synthetic game traffic of
//! `lanegate_control::monitor::synth`. Prints a table: MAPE of the point
//! forecast, pinball loss of the upper band at `forecast_upper_percent`
//! (in percent of the series' mean), and how often the truth was at or
//! below the band (its coverage).
//!
//! `cargo run --release -p lanegate-benches --bin forecast-eval -- --data
//! /work/shared/data/nab/data`

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use lanegate_benches::anomaly::data;
use lanegate_common::config::{MonitorConfig, WEEK_S};
use lanegate_control::monitor::SeriesModel;
use lanegate_control::monitor::synth::{self, TrafficSpec};

#[derive(Parser)]
#[command(about = "Next-hour forecast error of the gateway's model against seasonal naive")]
struct Args {
    /// Directory of NAB's `<category>/<name>.csv` files.
    #[arg(long)]
    data: PathBuf,
    /// Series under `--data` to evaluate, as `<category>/<name>.csv`.
    #[arg(long, default_values_t = [
        "realKnownCause/nyc_taxi.csv".to_owned(),
        "artificialNoAnomaly/art_daily_small_noise.csv".to_owned(),
    ])]
    series: Vec<String>,
}

/// Sums of one method's errors.
#[derive(Default)]
struct Errors {
    n: usize,
    ape: f64,
    pinball: f64,
    covered: usize,
}

impl Errors {
    fn add(&mut self, q: f64, truth: f64, point: f64, upper: f64) {
        self.n += 1;
        if truth != 0.0 {
            self.ape += ((truth - point) / truth).abs();
        }
        let d = truth - upper;
        self.pinball += (q * d).max((q - 1.0) * d);
        if truth <= upper {
            self.covered += 1;
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cfg = MonitorConfig::default();
    println!(
        "{:<46} {:>7} {:>9} {:>9} {:>11} {:>11} {:>9} {:>9}",
        "series", "points", "MAPE %", "naive %", "pinball %", "naive pb %", "cover %", "naive %"
    );
    for name in &args.series {
        let path = args.data.join(name);
        let s = data::parse_csv(
            &std::fs::read_to_string(&path).with_context(|| path.display().to_string())?,
        )?;
        let rows: Vec<(i64, f64)> = s
            .times
            .iter()
            .copied()
            .zip(s.values.iter().copied())
            .collect();
        report(name, &cfg, &rows, 1);
    }
    let spec = TrafficSpec {
        clean_days: 35,
        ..TrafficSpec::default()
    };
    let trace = synth::generate(&spec);
    // Forecast from every 30th sample (every 5 min) of the 10 s trace.
    report("synth: players, 10 s, 5 weeks", &cfg, &trace.samples, 30);
    Ok(())
}

fn report(name: &str, cfg: &MonitorConfig, rows: &[(i64, f64)], every: usize) {
    let q = f64::from(cfg.forecast_upper_percent) / 100.0;
    let z = upper_z(q);
    let at: HashMap<i64, f64> = rows.iter().copied().collect();
    let week = i64::from(WEEK_S);
    let mut m = SeriesModel::new(cfg);
    let (mut ours, mut naive) = (Errors::default(), Errors::default());
    // The naive forecast's band: its point plus z times its own mean
    // absolute error so far (as σ), so both bands are built alike.
    let (mut naive_abs, mut naive_n) = (0.0, 0.0);
    let mean = rows.iter().map(|r| r.1).sum::<f64>() / rows.len().max(1) as f64;
    for (i, &(t, v)) in rows.iter().enumerate() {
        m.observe(t, v);
        // Scored once a week of history exists for the baseline and the
        // model has learnt.
        if i % every != 0 || t < rows[0].0 + week || m.is_learning() {
            continue;
        }
        for f in m.forecast(t) {
            let (Some(&truth), Some(&last_week)) =
                (at.get(&f.at_unix_s), at.get(&(f.at_unix_s - week)))
            else {
                continue;
            };
            ours.add(q, truth, f.expected, f.upper);
            let sigma = if naive_n > 0.0 {
                naive_abs / naive_n * 1.253_314
            } else {
                0.0
            };
            naive.add(q, truth, last_week, last_week + z * sigma);
            naive_abs += (truth - last_week).abs();
            naive_n += 1.0;
        }
    }
    let n = ours.n.max(1) as f64;
    println!(
        "{:<46} {:>7} {:>9.1} {:>9.1} {:>11.2} {:>11.2} {:>9.1} {:>9.1}",
        name,
        ours.n,
        100.0 * ours.ape / n,
        100.0 * naive.ape / n,
        100.0 * ours.pinball / n / mean,
        100.0 * naive.pinball / n / mean,
        100.0 * ours.covered as f64 / n,
        100.0 * naive.covered as f64 / n,
    );
}

/// The Gaussian quantile of the few levels the configuration allows,
/// close enough for a baseline's band.
fn upper_z(q: f64) -> f64 {
    // The nearest of the usual quantiles: the configuration allows 50-99.
    [
        (0.5, 0.0),
        (0.8, 0.8416),
        (0.9, 1.2816),
        (0.95, 1.6449),
        (0.975, 1.96),
        (0.99, 2.3263),
    ]
    .iter()
    .min_by(|a, b| (a.0 - q).abs().total_cmp(&(b.0 - q).abs()))
    .map_or(1.6449, |p| p.1)
}
