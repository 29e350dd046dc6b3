//! The swarm's [`Report`]: every figure as JSON (serde), a summary table as
//! `Display`, and a self-contained HTML page with per-lane latency
//! percentile plots (inline SVG, no external assets).

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::path::Path;
use std::time::Duration;

use lanegate_common::lanes::Lane;
use lanegate_common::wire::{Transport, types};
use serde::{Deserialize, Serialize};

use hdrhistogram::Histogram;

use crate::bot::{BotOutcome, LaneTally};
use crate::{BotsConfig, BotsError, DEFAULT_LANE_LIMITS, ERRORS_KEPT_MAX, Mode};

/// Points per decade of the percentile spectrum ("nines"): 0 %, 20.6 %,
/// 36.9 % ... 90 %, ... 99 %, ... up to five nines, evenly spaced on the
/// plot's log axis, so the tail is drawn as finely as the body.
const POINTS_PER_NINE: u32 = 10;

/// The percentiles every lane reports for the plot: evenly spaced in
/// nines from 0 to 99.999 %, then 100 % (the maximum).
fn percentile_spectrum() -> impl Iterator<Item = f64> {
    let steps = POINTS_PER_NINE * 5;
    (0..=steps)
        .map(|i| {
            let p = 100.0 * (1.0 - 10f64.powf(-f64::from(i) / f64::from(POINTS_PER_NINE)));
            (p * 1e6).round() / 1e6
        })
        .chain(std::iter::once(100.0))
}

/// What a swarm measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `"quic"` or `"raw-udp"`.
    pub mode: String,
    /// The server address.
    pub server: String,
    /// Bots asked for.
    pub clients: usize,
    /// Bots that connected.
    pub connected: usize,
    /// Bots that failed to connect or lost their connection.
    pub failed: usize,
    /// How long each bot played, seconds.
    pub duration_s: f64,
    /// Wall time of the whole run (ramp and reply wait included), seconds.
    pub wall_s: f64,
    /// Reply deadline after which a message counts as lost, milliseconds.
    pub reply_deadline_ms: f64,
    /// The flood, as `LANE=RATE` (messages per second per bot), if any.
    pub flood: Option<String>,
    /// The first distinct bot errors (at most 16).
    pub errors: Vec<String>,
    /// Bot errors in all.
    pub errors_total: usize,
    /// Sessions the gateway closed, by close code (`SERVER_DRAINING`...).
    #[serde(default)]
    pub closed_by_server: BTreeMap<String, u64>,
    /// Per-lane results.
    pub lanes: Lanes,
}

/// One [`LaneReport`] per lane, keyed by lane name in JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lanes {
    /// Inputs.
    pub critical: LaneReport,
    /// Position updates.
    pub high: LaneReport,
    /// Chat.
    pub normal: LaneReport,
    /// Telemetry.
    pub bulk: LaneReport,
}

/// One lane's results over the whole swarm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LaneReport {
    /// The lane.
    pub lane: Lane,
    /// The echo type sent in it.
    pub ty: u16,
    /// `"datagram"` or `"stream"`.
    pub transport: String,
    /// Configured messages per second per bot (the flood's if flooded).
    pub rate_per_s_per_bot: f64,
    /// Echo payload bytes.
    pub payload_bytes: usize,
    /// This lane was flooded.
    pub flooded: bool,
    /// The lane's limit the bots accounted against (from `Welcome`).
    pub limit_rate_per_s: u32,
    /// The lane's burst the bots accounted against (from `Welcome`).
    pub limit_burst: u32,
    /// Messages sent.
    pub sent: u64,
    /// Replies received within the deadline.
    pub received: u64,
    /// Messages without a reply within the deadline (`sent - received`).
    pub lost: u64,
    /// Of `lost`, those sent over the lane's limit (dropped by the rate
    /// limiter, presumably).
    pub lost_over_limit: u64,
    /// Messages sent over the lane's limit, answered or not.
    pub sent_over_limit: u64,
    /// Mean time sends left after their intended time, µs. The RTTs include
    /// it (they count from the intended time); a mean well above zero says
    /// the generator itself is saturated, not only the server.
    pub send_lag_mean_us: f64,
    /// Latest send after its intended time, µs.
    pub send_lag_max_us: u64,
    /// `lost` in percent of `sent`.
    pub loss_percent: f64,
    /// RTT figures, from the intended send time; `None` without replies.
    pub rtt: Option<RttSummary>,
    /// RTT at percentiles evenly spaced in nines, 0 to 99.999, then 100
    /// (empty without replies): the plot's curve.
    pub percentiles: Vec<PercentilePoint>,
}

/// A lane's RTT distribution in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RttSummary {
    /// Replies measured.
    pub count: u64,
    /// Smallest.
    pub min_us: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// 99.99th percentile.
    pub p9999_us: u64,
    /// Largest.
    pub max_us: u64,
}

/// One point of a percentile curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PercentilePoint {
    /// Percentile, 0 to 100.
    pub percentile: f64,
    /// RTT at it, microseconds.
    pub rtt_us: u64,
}

impl Lanes {
    /// The report of `lane`.
    pub fn get(&self, lane: Lane) -> &LaneReport {
        match lane {
            Lane::Critical => &self.critical,
            Lane::High => &self.high,
            Lane::Normal => &self.normal,
            Lane::Bulk => &self.bulk,
        }
    }

    /// All four, in lane order.
    pub fn all(&self) -> [&LaneReport; Lane::COUNT] {
        Lane::ALL.map(|l| self.get(l))
    }
}

impl Report {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> Result<String, BotsError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Writes [`Report::to_json`] to `path`.
    pub fn write_json(&self, path: &Path) -> Result<(), BotsError> {
        std::fs::write(path, self.to_json()?)?;
        Ok(())
    }

    /// Writes [`Report::to_html`] to `path`.
    pub fn write_html(&self, path: &Path) -> Result<(), BotsError> {
        std::fs::write(path, self.to_html())?;
        Ok(())
    }

    /// A self-contained HTML page: the summary table and a percentile plot
    /// of each lane's RTT (inline SVG; no scripts, no external assets).
    pub fn to_html(&self) -> String {
        let mut html = String::new();
        let title = format!(
            "Lanegate bots: {} bots, {} mode, {}",
            self.clients, self.mode, self.server
        );
        let _ = write!(
            html,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>{t}</title><style>body{{font-family:sans-serif;margin:2em}}\
             pre{{background:#f6f6f6;padding:1em}}</style></head><body>\n<h1>{t}</h1>\n\
             <h2>Summary</h2>\n<pre>{summary}</pre>\n<h2>RTT by percentile</h2>\n\
             <p>RTT from each message's intended send time (open loop), per lane. \
             The x axis is logarithmic in 1/(1 &minus; percentile).</p>\n",
            t = escape(&title),
            summary = escape(&self.to_string()),
        );
        html.push_str(&percentile_svg(self));
        html.push_str("\n</body></html>\n");
        html
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} bots ({} connected, {} failed), {} to {}, {:.1}s each ({:.1}s wall){}",
            self.clients,
            self.connected,
            self.failed,
            self.mode,
            self.server,
            self.duration_s,
            self.wall_s,
            self.flood
                .as_ref()
                .map_or(String::new(), |f| format!(", flood {f}")),
        )?;
        writeln!(
            f,
            "{:<9} {:<8} {:>8} {:>9} {:>9} {:>8} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "lane",
            "via",
            "rate/bot",
            "sent",
            "recv",
            "lost",
            "over-lim",
            "loss",
            "p50",
            "p99",
            "p99.9",
            "p99.99",
            "max",
            "send-lag"
        )?;
        for l in self.lanes.all() {
            let ms = |v: Option<u64>| match v {
                Some(us) => format!("{:.3}ms", us as f64 / 1e3),
                None => "-".to_owned(),
            };
            let r = l.rtt.as_ref();
            writeln!(
                f,
                "{:<9} {:<8} {:>8} {:>9} {:>9} {:>8} {:>8} {:>6.2}% {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                l.lane.name(),
                l.transport,
                format!("{}", l.rate_per_s_per_bot),
                l.sent,
                l.received,
                l.lost,
                l.lost_over_limit,
                l.loss_percent,
                ms(r.map(|r| r.p50_us)),
                ms(r.map(|r| r.p99_us)),
                ms(r.map(|r| r.p999_us)),
                ms(r.map(|r| r.p9999_us)),
                ms(r.map(|r| r.max_us)),
                format!("{:.3}ms", l.send_lag_mean_us / 1e3),
            )?;
        }
        for (code, n) in &self.closed_by_server {
            writeln!(f, "{n} sessions closed by the server with {code}")?;
        }
        if self.errors_total > 0 {
            writeln!(f, "{} bot errors; first:", self.errors_total)?;
            for e in &self.errors {
                writeln!(f, "  {e}")?;
            }
        }
        Ok(())
    }
}

/// Gathers the bots' outcomes into a [`Report`].
#[derive(Debug)]
pub(crate) struct Collector {
    mode: Mode,
    server: String,
    clients: usize,
    duration: Duration,
    reply_deadline: Duration,
    flood: Option<String>,
    rates: [f64; Lane::COUNT],
    transports: [Transport; Lane::COUNT],
    payload_bytes: [usize; Lane::COUNT],
    flooded: [bool; Lane::COUNT],
    limits: Option<[lanegate_common::wire::LaneLimit; Lane::COUNT]>,
    connected: usize,
    failed: usize,
    errors: Vec<String>,
    errors_total: usize,
    closed_by_server: BTreeMap<String, u64>,
    tallies: [LaneTally; Lane::COUNT],
}

impl Collector {
    pub fn new(cfg: &BotsConfig) -> Self {
        Self {
            mode: cfg.mode,
            server: cfg.server.to_string(),
            clients: cfg.clients,
            duration: cfg.duration,
            reply_deadline: cfg.reply_deadline,
            flood: cfg
                .flood
                .map(|f| format!("{}={}", f.lane.name(), f.rate_per_s)),
            rates: Lane::ALL.map(|l| cfg.rate_per_s(l)),
            transports: Lane::ALL.map(|l| cfg.transport(l)),
            payload_bytes: Lane::ALL.map(|l| cfg.lanes[l.index()].payload_bytes),
            flooded: Lane::ALL.map(|l| cfg.flood.is_some_and(|f| f.lane == l)),
            limits: None,
            connected: 0,
            failed: 0,
            errors: Vec::new(),
            errors_total: 0,
            closed_by_server: BTreeMap::new(),
            tallies: [LaneTally::default(); Lane::COUNT],
        }
    }

    pub fn add(&mut self, outcome: BotOutcome) {
        if outcome.connected {
            self.connected += 1;
            self.limits.get_or_insert(outcome.limits);
        }
        if let Some(code) = outcome.closed_by {
            *self.closed_by_server.entry(code.to_owned()).or_default() += 1;
        }
        if let Some(e) = outcome.error {
            self.failed += 1;
            self.add_error(e);
        }
        for (total, tally) in self.tallies.iter_mut().zip(&outcome.lanes) {
            total.merge(tally);
        }
    }

    pub fn add_error(&mut self, error: String) {
        self.errors_total += 1;
        if self.errors.len() < ERRORS_KEPT_MAX && !self.errors.contains(&error) {
            self.errors.push(error);
        }
    }

    /// The report, with `histograms` holding each lane's RTTs.
    pub fn finish(self, wall: Duration, histograms: &[Histogram<u64>; Lane::COUNT]) -> Report {
        let limits = self.limits.unwrap_or(DEFAULT_LANE_LIMITS);
        let lane = |lane: Lane| {
            let i = lane.index();
            let t = &self.tallies[i];
            let h = &histograms[i];
            let rtt = (t.received > 0).then(|| RttSummary {
                count: h.len(),
                min_us: h.min(),
                mean_us: h.mean(),
                p50_us: h.value_at_quantile(0.5),
                p90_us: h.value_at_quantile(0.9),
                p99_us: h.value_at_quantile(0.99),
                p999_us: h.value_at_quantile(0.999),
                p9999_us: h.value_at_quantile(0.9999),
                max_us: h.max(),
            });
            let percentiles = if t.received > 0 {
                percentile_spectrum()
                    .map(|p| PercentilePoint {
                        percentile: p,
                        rtt_us: h.value_at_percentile(p),
                    })
                    .collect()
            } else {
                Vec::new()
            };
            LaneReport {
                lane,
                ty: types::ECHO[i],
                transport: match self.transports[i] {
                    Transport::Datagram => "datagram",
                    Transport::Stream => "stream",
                }
                .to_owned(),
                rate_per_s_per_bot: self.rates[i],
                payload_bytes: self.payload_bytes[i],
                flooded: self.flooded[i],
                limit_rate_per_s: limits[i].rate_per_s,
                limit_burst: limits[i].burst,
                sent: t.sent,
                received: t.received,
                lost: t.lost,
                lost_over_limit: t.lost_over_limit,
                sent_over_limit: t.sent_over_limit,
                send_lag_mean_us: if t.sent == 0 {
                    0.0
                } else {
                    t.send_lag_total_us as f64 / t.sent as f64
                },
                send_lag_max_us: t.send_lag_max_us,
                loss_percent: if t.sent == 0 {
                    0.0
                } else {
                    t.lost as f64 * 100.0 / t.sent as f64
                },
                rtt,
                percentiles,
            }
        };
        Report {
            mode: match self.mode {
                Mode::Quic => "quic",
                Mode::RawUdp => "raw-udp",
            }
            .to_owned(),
            server: self.server.clone(),
            clients: self.clients,
            connected: self.connected,
            failed: self.failed,
            duration_s: self.duration.as_secs_f64(),
            wall_s: wall.as_secs_f64(),
            reply_deadline_ms: self.reply_deadline.as_secs_f64() * 1e3,
            flood: self.flood.clone(),
            errors: self.errors.clone(),
            errors_total: self.errors_total,
            closed_by_server: self.closed_by_server.clone(),
            lanes: Lanes {
                critical: lane(Lane::Critical),
                high: lane(Lane::High),
                normal: lane(Lane::Normal),
                bulk: lane(Lane::Bulk),
            },
        }
    }
}

/// Plot geometry, in SVG user units.
const PLOT_W: f64 = 860.0;
const PLOT_H: f64 = 420.0;
const MARGIN_L: f64 = 70.0;
const MARGIN_R: f64 = 160.0;
const MARGIN_T: f64 = 20.0;
const MARGIN_B: f64 = 50.0;
/// The plot's x axis ends at 99.999 % (five nines).
const NINES_MAX: f64 = 5.0;
const LANE_COLORS: [&str; Lane::COUNT] = ["#d62728", "#1f77b4", "#2ca02c", "#7f7f7f"];

/// Position on the x axis of a percentile: the number of nines.
fn nines(percentile: f64) -> f64 {
    let rest = (100.0 - percentile) / 100.0;
    if rest <= 0.0 {
        return NINES_MAX;
    }
    (-rest.log10()).clamp(0.0, NINES_MAX)
}

fn percentile_svg(report: &Report) -> String {
    let inner_w = PLOT_W - MARGIN_L - MARGIN_R;
    let inner_h = PLOT_H - MARGIN_T - MARGIN_B;
    let data_max_ms = report
        .lanes
        .all()
        .iter()
        .flat_map(|l| l.percentiles.iter())
        .filter(|p| p.percentile <= 99.999)
        .map(|p| p.rtt_us as f64 / 1e3)
        .fold(0.0_f64, f64::max);
    let y_step_ms = nice_step(data_max_ms / 5.0);
    let y_steps = (data_max_ms / y_step_ms).ceil().max(1.0);
    let y_max_ms = y_steps * y_step_ms;
    let x = |p: f64| MARGIN_L + nines(p) / NINES_MAX * inner_w;
    let y = |ms: f64| MARGIN_T + inner_h - (ms / y_max_ms).min(1.0) * inner_h;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{PLOT_W}\" height=\"{PLOT_H}\" \
         viewBox=\"0 0 {PLOT_W} {PLOT_H}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect x=\"{MARGIN_L}\" y=\"{MARGIN_T}\" width=\"{inner_w}\" height=\"{inner_h}\" \
         fill=\"none\" stroke=\"#444\"/>\n"
    );
    for (n, label) in ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
        .iter()
        .enumerate()
    {
        let px = MARGIN_L + n as f64 / NINES_MAX * inner_w;
        let _ = writeln!(
            svg,
            "<line x1=\"{px:.1}\" y1=\"{MARGIN_T}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            MARGIN_T + inner_h,
            MARGIN_T + inner_h + 18.0,
        );
    }
    let mut ms = 0.0;
    while ms <= y_max_ms + y_step_ms / 2.0 {
        let py = y(ms);
        let _ = writeln!(
            svg,
            "<line x1=\"{MARGIN_L}\" y1=\"{py:.1}\" x2=\"{:.1}\" y2=\"{py:.1}\" stroke=\"#eee\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{} ms</text>",
            MARGIN_L + inner_w,
            MARGIN_L - 6.0,
            py + 4.0,
            (ms * 1e3).round() / 1e3,
        );
        ms += y_step_ms;
    }
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">percentile</text>",
        MARGIN_L + inner_w / 2.0,
        PLOT_H - 8.0
    );
    for (i, l) in report.lanes.all().iter().enumerate() {
        let color = LANE_COLORS[i];
        let points: Vec<String> = l
            .percentiles
            .iter()
            .filter(|p| p.percentile <= 99.999)
            .map(|p| format!("{:.1},{:.1}", x(p.percentile), y(p.rtt_us as f64 / 1e3)))
            .collect();
        if !points.is_empty() {
            let _ = writeln!(
                svg,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
                points.join(" ")
            );
        }
        let ly = MARGIN_T + 16.0 + 20.0 * i as f64;
        let lx = PLOT_W - MARGIN_R + 12.0;
        let _ = writeln!(
            svg,
            "<line x1=\"{lx:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{color}\" \
             stroke-width=\"3\"/><text x=\"{:.1}\" y=\"{:.1}\">{}{}</text>",
            lx + 20.0,
            lx + 26.0,
            ly + 4.0,
            l.lane.name(),
            if l.percentiles.is_empty() {
                " (none)".to_owned()
            } else {
                format!(" ({})", l.received)
            },
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A tick step of 1, 2 or 5 times a power of ten, at least `raw` (and at
/// least 1 µs).
fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(0.001);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// Escapes text for HTML element content.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use lanegate_client::ServerVerify;

    fn report() -> Report {
        let cfg = BotsConfig::new(
            "127.0.0.1:1".parse().expect("an address"),
            ServerVerify::InsecureNoVerify,
        );
        let mut collector = Collector::new(&cfg);
        let mut lanes = [LaneTally::default(); Lane::COUNT];
        let mut histograms = std::array::from_fn(|_| crate::bot::rtt_histogram());
        for (i, tally) in lanes.iter_mut().take(3).enumerate() {
            for v in 1..=1000u64 {
                histograms[i].record(v * (i as u64 + 1)).unwrap();
            }
            tally.sent = 1010;
            tally.received = 1000;
            tally.lost = 10;
        }
        collector.add(BotOutcome {
            connected: true,
            error: None,
            closed_by: None,
            limits: DEFAULT_LANE_LIMITS,
            lanes,
        });
        collector.add_error("boom".into());
        collector.finish(Duration::from_secs(2), &histograms)
    }

    #[test]
    fn json_round_trips_with_lanes_by_name() {
        let report = report();
        let json = report.to_json().unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        for lane in ["critical", "high", "normal", "bulk"] {
            assert!(value["lanes"][lane]["sent"].is_u64(), "{lane}");
        }
        assert_eq!(value["lanes"]["critical"]["rtt"]["p50_us"], 500);
        assert!(value["lanes"]["bulk"]["rtt"].is_null());
        // serde_json's default float parser may be off in the last digit,
        // so compare with the parsed JSON, which went through the same one.
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back.lanes.high.sent, report.lanes.high.sent);
        assert_eq!(serde_json::to_value(&back).unwrap(), value);
    }

    #[test]
    fn display_has_a_row_per_lane() {
        let text = report().to_string();
        assert_eq!(text.lines().count(), 2 + 4 + 2, "{text}");
        assert!(text.contains("critical"), "{text}");
        assert!(text.contains("0.99%"), "{text}");
    }

    #[test]
    fn html_is_self_contained_with_a_curve_per_measured_lane() {
        let html = report().to_html();
        assert!(html.contains("<svg"));
        assert_eq!(html.matches("<polyline").count(), 3);
        assert!(html.contains("bulk (none)"));
        assert!(!html.contains("http://") || !html.contains("src="));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn the_spectrum_is_even_in_nines() {
        let spectrum: Vec<f64> = percentile_spectrum().collect();
        assert_eq!(spectrum.len(), 52);
        assert_eq!(spectrum[0], 0.0);
        assert_eq!(spectrum[10], 90.0);
        assert_eq!(spectrum[30], 99.9);
        assert_eq!(spectrum[50], 99.999);
        assert_eq!(spectrum[51], 100.0);
    }

    #[test]
    fn ticks_are_round_numbers() {
        assert_eq!(nice_step(6.1), 10.0);
        assert_eq!(nice_step(1.3), 2.0);
        assert_eq!(nice_step(0.04), 0.05);
        assert_eq!(nice_step(0.0), 0.001);
    }

    #[test]
    fn nines_map_percentiles_to_a_log_axis() {
        assert_eq!(nines(0.0), 0.0);
        assert!((nines(99.0) - 2.0).abs() < 1e-9);
        assert_eq!(nines(100.0), NINES_MAX);
    }
}
