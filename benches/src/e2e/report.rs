//! What the harness writes: `e2e.json` (headline ratios, every median and
//! every run) and `e2e.md` (the same as Markdown tables).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::stats::{median, ratio};

/// The case the headline CPU and RTT ratios use.
pub const HEADLINE_CASE: &str = "150B/1000c";
/// The connection count the headline memory and handshake ratios use.
pub const HEADLINE_IDLE: usize = 1000;
/// The saturation search's case name.
pub const SATURATION_CASE: &str = "150B/100c";
/// The churn runs' case name.
pub const CHURN_CASE: &str = "200cps";

/// The headline ratios of the issue; `None` (JSON `null`) where a figure is
/// missing, e.g. the gateway did not start.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Headline {
    /// Server CPU per echoed datagram, lanegate ÷ baseline-quinn (150-byte
    /// payloads, 1000 connections).
    pub cpu_per_dgram_ratio_vs_quinn: Option<f64>,
    /// The same, lanegate ÷ baseline-udp.
    pub cpu_per_dgram_ratio_vs_udp: Option<f64>,
    /// Critical-lane RTT p99 at the fixed load, lanegate ÷ baseline-quinn.
    pub rtt_p99_ratio_vs_quinn: Option<f64>,
    /// RSS per idle connection, lanegate ÷ baseline-quinn.
    pub mem_per_conn_ratio_vs_quinn: Option<f64>,
    /// Handshakes per second on one core, lanegate ÷ baseline-quinn.
    pub handshakes_per_s_ratio_vs_quinn: Option<f64>,
    /// Server CPU per echoed datagram, lanegate on the portable backend ÷
    /// lanegate on io_uring (150-byte payloads, 1000 connections): what the
    /// `io_backend = "auto"` fallback costs where io_uring is refused.
    pub cpu_per_dgram_ratio_portable_vs_io_uring: Option<f64>,
    /// Critical-lane RTT p99 at the fixed load, the same two.
    pub rtt_p99_ratio_portable_vs_io_uring: Option<f64>,
    /// Server CPU per echoed datagram with the latency histograms on ÷
    /// off (`lanegate` ÷ `lanegate-no-histograms`, the headline case; only
    /// with `--histogram-cost`).
    pub cpu_per_dgram_ratio_histograms_on_vs_off: Option<f64>,
    /// Lanegate's critical p99 with a bulk flood ÷ without.
    pub critical_p99_flood_ratio: Option<f64>,
    /// Highest offered load echoed with under 0.1 % loss (100 connections,
    /// 150-byte datagrams), lanegate ÷ baseline-quinn. Read it with the
    /// `saturation_bots_limited` medians: when both were limited by the
    /// generator, the ratio says nothing about the servers.
    pub saturation_ratio_vs_quinn: Option<f64>,
    /// Critical RTT p99 while 200 connections a second arrive (each lives
    /// one second), lanegate ÷ baseline-quinn.
    pub churn_rtt_p99_ratio_vs_quinn: Option<f64>,
    /// The load generator fell behind or its core was saturated in some run:
    /// the figures may understate what the servers can do.
    pub bots_limited: bool,
}

/// One swarm run, as measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunRecord {
    /// What was measured (`cpu`, `idle`, `isolation`).
    pub kind: String,
    /// Server (`lanegate`, `lanegate-portable`, `baseline-quinn`,
    /// `baseline-udp`).
    pub server: String,
    /// The case, e.g. `150B/1000c`.
    pub case: String,
    /// Repeat number.
    pub round: usize,
    /// Named figures of this run.
    pub figures: BTreeMap<String, Option<f64>>,
    /// Why the run has no figures, if it has none.
    pub error: Option<String>,
}

/// Everything `e2e.json` holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct E2eReport {
    /// The headline ratios.
    pub headline: Headline,
    /// Medians over the repeats, by `figure.server.case` name.
    pub medians: BTreeMap<String, Option<f64>>,
    /// How the run was set up (mode, load, machine).
    pub setup: BTreeMap<String, String>,
    /// Every run.
    pub runs: Vec<RunRecord>,
}

impl E2eReport {
    /// Medians per `figure.server.case` over the rounds, and the headline.
    pub fn summarise(
        runs: Vec<RunRecord>,
        setup: BTreeMap<String, String>,
        bots_limited: bool,
    ) -> Self {
        let mut groups: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
        for r in &runs {
            for (k, v) in &r.figures {
                groups
                    .entry(format!("{k}.{}.{}", r.server, r.case))
                    .or_default()
                    .push(*v);
            }
        }
        let medians: BTreeMap<String, Option<f64>> =
            groups.iter().map(|(k, v)| (k.clone(), median(v))).collect();
        let m = |figure: &str, server: &str, case: &str| {
            medians
                .get(&format!("{figure}.{server}.{case}"))
                .copied()
                .flatten()
        };
        let (lg, lp) = ("lanegate", "lanegate-portable");
        let (qn, ud) = ("baseline-quinn", "baseline-udp");
        let idle = HEADLINE_IDLE.to_string();
        let headline = Headline {
            cpu_per_dgram_ratio_vs_quinn: ratio(
                m("cpu_us_per_dgram", lg, HEADLINE_CASE),
                m("cpu_us_per_dgram", qn, HEADLINE_CASE),
            ),
            cpu_per_dgram_ratio_vs_udp: ratio(
                m("cpu_us_per_dgram", lg, HEADLINE_CASE),
                m("cpu_us_per_dgram", ud, HEADLINE_CASE),
            ),
            rtt_p99_ratio_vs_quinn: ratio(
                m("rtt_p99_us", lg, HEADLINE_CASE),
                m("rtt_p99_us", qn, HEADLINE_CASE),
            ),
            mem_per_conn_ratio_vs_quinn: ratio(
                m("rss_per_conn_bytes", lg, &idle),
                m("rss_per_conn_bytes", qn, &idle),
            ),
            handshakes_per_s_ratio_vs_quinn: ratio(
                m("handshakes_per_s", lg, &idle),
                m("handshakes_per_s", qn, &idle),
            ),
            cpu_per_dgram_ratio_portable_vs_io_uring: ratio(
                m("cpu_us_per_dgram", lp, HEADLINE_CASE),
                m("cpu_us_per_dgram", lg, HEADLINE_CASE),
            ),
            rtt_p99_ratio_portable_vs_io_uring: ratio(
                m("rtt_p99_us", lp, HEADLINE_CASE),
                m("rtt_p99_us", lg, HEADLINE_CASE),
            ),
            cpu_per_dgram_ratio_histograms_on_vs_off: ratio(
                m("cpu_us_per_dgram", lg, HEADLINE_CASE),
                m("cpu_us_per_dgram", "lanegate-no-histograms", HEADLINE_CASE),
            ),
            critical_p99_flood_ratio: ratio(
                m("rtt_p99_us", lg, "flood"),
                m("rtt_p99_us", lg, "noflood"),
            ),
            saturation_ratio_vs_quinn: ratio(
                m("saturation_msg_per_s", lg, SATURATION_CASE),
                m("saturation_msg_per_s", qn, SATURATION_CASE),
            ),
            churn_rtt_p99_ratio_vs_quinn: ratio(
                m("rtt_p99_us", lg, CHURN_CASE),
                m("rtt_p99_us", qn, CHURN_CASE),
            ),
            bots_limited,
        };
        Self {
            headline,
            medians,
            setup,
            runs,
        }
    }

    /// Pretty JSON. Missing numbers are `null`; non-finite ones too.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain data serialises")
    }

    /// The headline, setup and medians as Markdown tables.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let h = &self.headline;
        md.push_str("| headline | value |\n|---|---:|\n");
        for (name, value) in [
            (
                "cpu_per_dgram_ratio_vs_quinn",
                h.cpu_per_dgram_ratio_vs_quinn,
            ),
            ("cpu_per_dgram_ratio_vs_udp", h.cpu_per_dgram_ratio_vs_udp),
            ("rtt_p99_ratio_vs_quinn", h.rtt_p99_ratio_vs_quinn),
            ("mem_per_conn_ratio_vs_quinn", h.mem_per_conn_ratio_vs_quinn),
            (
                "handshakes_per_s_ratio_vs_quinn",
                h.handshakes_per_s_ratio_vs_quinn,
            ),
            (
                "cpu_per_dgram_ratio_portable_vs_io_uring",
                h.cpu_per_dgram_ratio_portable_vs_io_uring,
            ),
            (
                "rtt_p99_ratio_portable_vs_io_uring",
                h.rtt_p99_ratio_portable_vs_io_uring,
            ),
            (
                "cpu_per_dgram_ratio_histograms_on_vs_off",
                h.cpu_per_dgram_ratio_histograms_on_vs_off,
            ),
            ("critical_p99_flood_ratio", h.critical_p99_flood_ratio),
            ("saturation_ratio_vs_quinn", h.saturation_ratio_vs_quinn),
            (
                "churn_rtt_p99_ratio_vs_quinn",
                h.churn_rtt_p99_ratio_vs_quinn,
            ),
        ] {
            let _ = writeln!(md, "| {name} | {} |", fmt_value(value));
        }
        let _ = writeln!(md, "| bots_limited | {} |", h.bots_limited);
        md.push_str("\n| setup | |\n|---|---|\n");
        for (k, v) in &self.setup {
            let _ = writeln!(md, "| {k} | {v} |");
        }
        md.push_str("\n| median (figure.server.case) | value |\n|---|---:|\n");
        for (k, v) in &self.medians {
            let _ = writeln!(md, "| {k} | {} |", fmt_value(*v));
        }
        md
    }

    /// Writes `e2e.json` and `e2e.md` into `dir` (created if needed).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("e2e.json"), self.to_json())?;
        std::fs::write(dir.join("e2e.md"), self.to_markdown())
    }
}

/// A figure for the tables: 3 significant decimals, `—` when missing.
pub fn fmt_value(v: Option<f64>) -> String {
    match v {
        None => "—".to_owned(),
        Some(x) if x.abs() >= 100.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.3}"),
    }
}
