//! `anomaly-eval`: runs the gateway's anomaly detector
//! (`lanegate_control::monitor::SeriesModel`, configured from
//! `MonitorConfig::default()`, the gateway's own defaults) over every
//! `DIR/<category>/<name>.csv` of the Numenta Anomaly Benchmark, writes
//! `OUT/<category>/<name>.csv` (`timestamp,value,anomaly_score,alarm`, alarm
//! 1 on an alert's first row), and prints the standard-profile score
//! overall and per category, the false alarms per series, and the
//! detector's cost per sample.
//!
//! `cargo run --release -p lanegate-benches --bin anomaly-eval -- --data
//! /work/shared/data/nab/data --out target/nab`

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use lanegate_benches::anomaly::data::{self, Labels};
use lanegate_benches::anomaly::score::{self, FileScore, STANDARD};
use lanegate_common::config::{Config, HostInfo, MonitorConfig};
use lanegate_control::monitor::{Edge, SeriesModel};

#[derive(Parser)]
#[command(about = "Score the gateway's anomaly detector on NAB's labelled series")]
struct Args {
    /// Directory of `<category>/<name>.csv` files.
    #[arg(long)]
    data: PathBuf,
    /// Directory the scored CSVs are written to.
    #[arg(long)]
    out: PathBuf,
    /// The labels; default `DATA/../combined_windows.json`.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// A configuration file whose `[monitor]` section replaces the
    /// defaults, for exploring; the recorded figures use none.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print only the summary, not a line per series.
    #[arg(long)]
    quiet: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let labels_path = args
        .labels
        .clone()
        .unwrap_or_else(|| args.data.join("../combined_windows.json"));
    let labels: Labels = data::parse_labels(
        &std::fs::read_to_string(&labels_path)
            .with_context(|| format!("reading {}", labels_path.display()))?,
    )?;
    let cfg = match &args.config {
        None => MonitorConfig::default(),
        Some(p) => {
            let c = Config::from_toml_str(&std::fs::read_to_string(p)?)?;
            c.validate(&HostInfo { cores: 1 })?;
            c.monitor
        }
    };
    let mut files = list(&args.data)?;
    files.sort();
    let mut by_cat: BTreeMap<String, FileScore> = BTreeMap::new();
    let mut total = FileScore::default();
    let (mut rows, mut spent) = (0usize, Duration::ZERO);
    println!(
        "{:<58} {:>6} {:>8} {:>6} {:>8}",
        "series", "rows", "windows", "found", "false"
    );
    for (cat, name) in &files {
        let key = format!("{cat}/{name}");
        let path = args.data.join(cat).join(name);
        let series = data::parse_csv(&std::fs::read_to_string(&path)?)
            .with_context(|| path.display().to_string())?;
        let windows = labels.get(&key).cloned().unwrap_or_else(|| {
            eprintln!("warning: {key} has no labels; scored as having no window");
            Vec::new()
        });
        let mut model = SeriesModel::new(&cfg);
        let mut scores = Vec::with_capacity(series.values.len());
        let mut alarms = Vec::with_capacity(series.values.len());
        let start = Instant::now();
        for (&t, &v) in series.times.iter().zip(&series.values) {
            let o = model.observe(t, v);
            scores.push(o.score);
            alarms.push(o.transition.is_some_and(|t| t.edge == Edge::Raised));
        }
        spent += start.elapsed();
        rows += series.values.len();
        write_out(&args.out, cat, name, &series, &scores, &alarms)?;
        let w = score::window_rows(&series.times, &windows);
        let s = score::score_file(&alarms, &w, &STANDARD);
        if !args.quiet {
            println!(
                "{:<58} {:>6} {:>8} {:>6} {:>8}",
                key,
                series.values.len(),
                s.windows,
                s.detected,
                s.false_alarms
            );
        }
        by_cat.entry(cat.clone()).or_default().add(&s);
        total.add(&s);
    }
    println!();
    println!(
        "{:<28} {:>10} {:>8} {:>6} {:>12} {:>8}",
        "category", "normalized", "windows", "found", "false alarms", "files"
    );
    for (cat, s) in &by_cat {
        let n = files.iter().filter(|(c, _)| c == cat).count();
        println!(
            "{:<28} {:>10} {:>8} {:>6} {:>12} {:>8}",
            cat,
            normalized(s),
            s.windows,
            s.detected,
            s.false_alarms,
            n
        );
    }
    println!(
        "{:<28} {:>10} {:>8} {:>6} {:>12} {:>8}",
        "all",
        normalized(&total),
        total.windows,
        total.detected,
        total.false_alarms,
        files.len()
    );
    println!(
        "\nfalse alarms per series: {:.2} (after probation); raw score {:.2}, null {:.2}, perfect {:.2}",
        total.false_alarms as f64 / files.len().max(1) as f64,
        total.raw,
        total.null,
        total.perfect
    );
    println!(
        "detector cost: {:.0} ns/sample ({rows} samples in {:.1} ms)",
        spent.as_nanos() as f64 / rows.max(1) as f64,
        spent.as_secs_f64() * 1e3
    );
    Ok(())
}

fn normalized(s: &FileScore) -> String {
    if s.perfect > s.null {
        format!("{:.1}", s.normalized())
    } else {
        // No window: nothing to find, only false alarms to avoid.
        "n/a".to_owned()
    }
}

/// Every `<category>/<name>.csv` under `dir`.
fn list(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for cat in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let cat = cat?;
        if !cat.file_type()?.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(cat.path())? {
            let name = f?.file_name().to_string_lossy().into_owned();
            if name.ends_with(".csv") {
                out.push((cat.file_name().to_string_lossy().into_owned(), name));
            }
        }
    }
    Ok(out)
}

fn write_out(
    out: &Path,
    cat: &str,
    name: &str,
    series: &data::Series,
    scores: &[f64],
    alarms: &[bool],
) -> anyhow::Result<()> {
    let dir = out.join(cat);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut text = String::from("timestamp,value,anomaly_score,alarm\n");
    for i in 0..series.values.len() {
        let _ = writeln!(
            text,
            "{},{},{:.6},{}",
            series.stamps[i],
            series.values[i],
            scores[i],
            u8::from(alarms[i])
        );
    }
    std::fs::write(dir.join(name), text).context("writing the scored file")?;
    Ok(())
}
