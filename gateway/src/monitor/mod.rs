//! The monitor: learns what normal looks like for this hour of this
//! weekday, raises alerts when a series strays, and forecasts the next
//! hour (issue 14 §2–4). A thread of its own, never a datapath core.
//!
//! ```text
//!  every monitor.sample_interval_ms:
//!    Sources::sample() + /proc/net/snmp ──▶ series.rs: one value per series
//!        ──▶ lanegate_control::monitor::Baselines::observe (sans-IO model)
//!        ──▶ transitions: a log line each, a webhook event each (webhook.rs)
//!        ──▶ forecasts of connections and per-lane messages, the capacity warning
//!        ──▶ MonitorSlot (metrics::monitor_view): /metrics, /status.json, the page
//!    every PERSIST_EVERY samples and at stop: baselines.rs writes the file
//! ```
//!
//! The policy (what is normal, when to alert, what comes next) is the
//! control crate's; this module only samples, calls it and says what it
//! answered. Every series and every alert is bounded by
//! `monitor.series_max`; the history the chart shows by [`HISTORY_MAX`].

mod baselines;
mod series;
mod webhook;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lanegate_common::config::{Config, MonitorConfig};
use lanegate_common::lanes::Lane;
use lanegate_control::monitor::{Baselines, Edge, Observation, Status, Transition};
use tracing::{info, warn};

use crate::log_limit::WarnLimit;
use crate::metrics::Sources;
use crate::metrics::monitor_view::{
    AlertReading, ForecastReading, MonitorReading, MonitorSlot, SeriesReading,
};

pub use self::series::{SeriesSet, UdpSnmp, Window};
pub use self::webhook::{AlertEvent, Webhook, WebhookConfig, WebhookCounters};

/// Samples of `connections` kept for the status page's chart: an hour at
/// the default 10 s interval.
pub const HISTORY_MAX: usize = 360;
/// Samples between two writes of the baselines file: five minutes at the
/// default interval, so a crash loses little of the week.
const PERSIST_EVERY: u64 = 30;
/// How often the thread looks at its stop flag while waiting.
const STOP_POLL: Duration = Duration::from_millis(100);

/// The monitor thread.
#[derive(Debug)]
pub struct Monitor {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    /// Starts sampling `sources` as `config.monitor` says, publishing into
    /// `slot`.
    pub fn spawn(
        config: &Config,
        sources: Sources,
        slot: Arc<MonitorSlot>,
    ) -> std::io::Result<Monitor> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let mut state = State::new(config, sources, slot)?;
        let thread = std::thread::Builder::new()
            .name("lanegate-monitor".into())
            .spawn(move || state.run(&flag))?;
        Ok(Monitor {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread after its current sample; it writes the baselines
    /// file on the way out.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct State {
    cfg: MonitorConfig,
    interval: Duration,
    sources: Sources,
    slot: Arc<MonitorSlot>,
    series: SeriesSet,
    baselines: Baselines,
    webhook: Option<Webhook>,
    capacity_connections: f64,
    history: std::collections::VecDeque<(i64, f64)>,
    series_refused: u64,
    /// Raised alerts by series: why and since when (at most one per series).
    raised: HashMap<String, (&'static str, i64)>,
    warned: bool,
    samples: u64,
    /// "Queue full" at most once a minute.
    queue_full_warnings: WarnLimit,
}

impl State {
    fn new(config: &Config, sources: Sources, slot: Arc<MonitorSlot>) -> std::io::Result<Self> {
        let cfg = config.monitor.clone();
        let series = SeriesSet::new(sources.shards.len(), cfg.series_max as usize);
        let baselines = cfg
            .baselines_path
            .as_deref()
            .and_then(|path| baselines::load(path, &cfg))
            .unwrap_or_else(|| Baselines::new(&cfg));
        let webhook = match &cfg.webhook_url {
            Some(url) => Some(Webhook::start(WebhookConfig {
                url: url.clone(),
                queue_max: cfg.webhook_queue_max as usize,
                timeout: Duration::from_millis(cfg.webhook_timeout_ms),
                retries_max: cfg.webhook_retries_max,
            })?),
            None => None,
        };
        Ok(Self {
            interval: Duration::from_millis(cfg.sample_interval_ms),
            capacity_connections: f64::from(config.gateway.connections_max),
            cfg,
            sources,
            slot,
            series,
            baselines,
            webhook,
            history: std::collections::VecDeque::with_capacity(HISTORY_MAX),
            series_refused: 0,
            raised: HashMap::new(),
            warned: false,
            samples: 0,
            queue_full_warnings: WarnLimit::new(Duration::from_secs(60)),
        })
    }

    fn run(&mut self, stop: &AtomicBool) {
        // Before the first sample: learning, nothing modelled, the
        // capacity known, so every family is on /metrics from the start.
        self.slot.publish(MonitorReading {
            learning: true,
            capacity_connections: self.capacity_connections,
            ..MonitorReading::default()
        });
        let mut before = (self.sources.sample(), UdpSnmp::read());
        let mut values = Vec::with_capacity(self.series.len());
        let mut next = Instant::now() + self.interval;
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now < next {
                std::thread::sleep((next - now).min(STOP_POLL));
                continue;
            }
            next += self.interval;
            let after = (self.sources.sample(), UdpSnmp::read());
            let unix_s = unix_now_s();
            self.series.read(
                &Window {
                    before: &before.0,
                    now: &after.0,
                    snmp: (before.1, after.1),
                },
                &mut values,
            );
            let reading = self.step(unix_s, &values);
            self.slot.publish(reading);
            before = after;
            self.samples += 1;
            if self.samples.is_multiple_of(PERSIST_EVERY) {
                self.persist();
            }
        }
        self.persist();
        if let Some(hook) = self.webhook.take() {
            hook.stop();
        }
    }

    /// One sample: every series observed, transitions said, forecasts made.
    fn step(&mut self, unix_s: i64, values: &[Option<f64>]) -> MonitorReading {
        let mut reading = MonitorReading {
            capacity_connections: self.capacity_connections,
            ..MonitorReading::default()
        };
        let names: Vec<String> = self.series.names().map(str::to_owned).collect();
        let mut progress = 1.0_f64;
        for (name, value) in names.iter().zip(values) {
            let Some(value) = *value else { continue };
            let obs = match self.baselines.observe(name, unix_s, value) {
                Ok(obs) => obs,
                Err(_) => {
                    self.series_refused += 1;
                    continue;
                }
            };
            if name == "connections" {
                if self.history.len() == HISTORY_MAX {
                    self.history.pop_front();
                }
                self.history.push_back((unix_s, value));
            }
            if let Some(t) = obs.transition {
                self.announce(name, &t);
                match t.edge {
                    Edge::Raised => {
                        self.raised
                            .insert(name.clone(), (cause_name(t.cause), t.since_unix_s));
                    }
                    Edge::Cleared => {
                        self.raised.remove(name);
                    }
                }
            }
            let model = self.baselines.get(name);
            let learnt = model.map_or(0, |m| m.samples());
            progress = progress
                .min(learnt as f64 / f64::from(self.cfg.learning_samples_min.max(1)))
                .min(1.0);
            reading.series.push(series_reading(name, &obs));
            if obs.status == Status::Alerting {
                let (cause, since) = self.raised.get(name).copied().unwrap_or(("band", unix_s));
                reading.alerts.push(AlertReading {
                    series: name.clone(),
                    cause,
                    since_unix_s: since,
                    value,
                    expected: obs.expected,
                    low: obs.band.low,
                    high: obs.band.high,
                    score: obs.score,
                });
            }
        }
        reading.learning = reading.series.iter().any(|s| s.learning) || reading.series.is_empty();
        reading.progress = if reading.series.is_empty() {
            0.0
        } else {
            progress
        };
        reading.alerts.sort_by_key(|a| a.since_unix_s);
        self.forecast(unix_s, &mut reading);
        reading.history = self.history.iter().copied().collect();
        reading.series_refused = self.series_refused;
        reading.webhook = self.webhook.as_ref().map(|h| {
            let c = h.counters();
            [
                c.sent.load(Ordering::Relaxed),
                c.failed.load(Ordering::Relaxed),
                c.dropped.load(Ordering::Relaxed),
            ]
        });
        reading
    }

    fn forecast(&mut self, unix_s: i64, reading: &mut MonitorReading) {
        let forecast_series = std::iter::once("connections".to_owned())
            .chain(Lane::ALL.map(|l| format!("messages_in_per_s.{l}")));
        for name in forecast_series {
            let Some(model) = self.baselines.get(&name) else {
                continue;
            };
            let points: Vec<_> = model
                .forecast(unix_s)
                .map(|p| (p.at_unix_s, p.horizon_s, p.expected, p.upper))
                .collect();
            if !points.is_empty() {
                reading.forecasts.push(ForecastReading {
                    series: name,
                    points,
                });
            }
        }
        let warning = self
            .baselines
            .get("connections")
            .and_then(|m| m.forecast_warning(unix_s, self.capacity_connections));
        reading.forecast_warning = warning.is_some();
        match (warning, self.warned) {
            (Some(w), false) => {
                warn!(
                    upper = w.point.upper,
                    at_unix_s = w.point.at_unix_s,
                    horizon_s = w.point.horizon_s,
                    capacity = w.capacity,
                    threshold = w.threshold,
                    "forecast: connections may pass their share of capacity within the lead time"
                );
                self.send(AlertEvent {
                    kind: "forecast_warning",
                    series: "connections".to_owned(),
                    at_unix_s: unix_s as f64,
                    value: w.point.upper,
                    expected: w.point.expected,
                    low: w.threshold,
                    high: w.capacity,
                    score: 1.0,
                    message: format!(
                        "connections forecast to reach {:.0} (upper band) within {} s, past {:.0} of a capacity of {:.0}",
                        w.point.upper, w.point.horizon_s, w.threshold, w.capacity
                    ),
                });
                self.warned = true;
            }
            (None, true) => {
                info!("forecast: connections back under their share of capacity");
                self.warned = false;
            }
            _ => {}
        }
    }

    /// A log line and a webhook event for a raised or cleared alert. The
    /// model's hysteresis and suppression already bound how often a series
    /// can do this; a log line per transition is the rate limit.
    fn announce(&mut self, name: &str, t: &Transition) {
        let cause = cause_name(t.cause);
        let (kind, message) = match t.edge {
            Edge::Raised => {
                warn!(
                    series = name,
                    cause,
                    value = t.value,
                    expected = t.expected,
                    low = t.band.low,
                    high = t.band.high,
                    score = t.score,
                    "anomaly raised"
                );
                (
                    "anomaly_raised",
                    format!(
                        "{name} is {:.2}, expected {:.2} (band {:.2} to {:.2}, {cause})",
                        t.value, t.expected, t.band.low, t.band.high
                    ),
                )
            }
            Edge::Cleared => {
                info!(
                    series = name,
                    cause,
                    value = t.value,
                    lasted_s = t.at_unix_s - t.since_unix_s,
                    "anomaly cleared"
                );
                (
                    "anomaly_cleared",
                    format!(
                        "{name} back in its band at {:.2} after {} s",
                        t.value,
                        t.at_unix_s - t.since_unix_s
                    ),
                )
            }
        };
        self.send(AlertEvent {
            kind,
            series: name.to_owned(),
            at_unix_s: t.at_unix_s as f64,
            value: t.value,
            expected: t.expected,
            low: t.band.low,
            high: t.band.high,
            score: t.score,
            message,
        });
    }

    fn send(&mut self, event: AlertEvent) {
        if let Some(hook) = &self.webhook
            && !hook.send(event)
            && let Some(suppressed) = self.queue_full_warnings.allow(Instant::now())
        {
            warn!(
                suppressed,
                "webhook queue full (monitor.webhook_queue_max): an alert was dropped"
            );
        }
    }

    fn persist(&self) {
        if let Some(path) = &self.cfg.baselines_path {
            baselines::save(path, &self.baselines.encode());
        }
    }
}

fn series_reading(name: &str, obs: &Observation) -> SeriesReading {
    SeriesReading {
        name: name.to_owned(),
        score: obs.score,
        active: obs.status == Status::Alerting,
        learning: obs.status == Status::Learning,
    }
}

fn cause_name(cause: lanegate_control::monitor::Cause) -> &'static str {
    use lanegate_control::monitor::Cause;
    match cause {
        Cause::Band => "band",
        Cause::Shift => "shift",
        Cause::Flat => "flat",
    }
}

fn unix_now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A monitor over a gateway with no cores or shards yet: the glue is
    /// driven with made-up values, the models are the real ones.
    fn state(connections_max: u32) -> State {
        let mut config = Config::default();
        config.gateway.connections_max = connections_max;
        config.monitor.learning_samples_min = 10;
        let sources = Sources {
            cores: Vec::new(),
            shards: Vec::new(),
            shard_latency: Vec::new(),
            socket_drops: lanegate_udp::SocketDrops::default(),
            draining: Arc::new(AtomicBool::new(false)),
            tick_budget_us: 10_000,
            started: Instant::now(),
            started_wall: SystemTime::now(),
            monitor: None,
        };
        State::new(&config, sources, MonitorSlot::new()).expect("a monitor")
    }

    /// Values for every series: `connections` as given, the rest steady.
    fn values(s: &State, connections: f64) -> Vec<Option<f64>> {
        s.series
            .names()
            .map(|n| Some(if n == "connections" { connections } else { 5.0 }))
            .collect()
    }

    #[test]
    fn learns_then_alerts_on_a_jump_and_lists_the_alert() {
        let mut s = state(10_000);
        let t0 = 1_700_000_000;
        let mut reading = MonitorReading::default();
        for i in 0..20 {
            let v = values(&s, 100.0 + f64::from(i % 3));
            reading = s.step(t0 + i64::from(i) * 10, &v);
        }
        assert!(!reading.learning, "learnt after 10 samples");
        assert!(reading.alerts.is_empty());
        assert_eq!(reading.history.len(), 20);
        for i in 20..25 {
            let v = values(&s, 1_000.0);
            reading = s.step(t0 + i64::from(i) * 10, &v);
        }
        let alert = reading
            .alerts
            .iter()
            .find(|a| a.series == "connections")
            .expect("the jump raised an alert");
        assert!(alert.value > alert.high);
        assert!(
            reading
                .series
                .iter()
                .any(|r| r.name == "connections" && r.active)
        );
    }

    #[test]
    fn warns_when_the_forecast_nears_capacity() {
        // 100 connections against a capacity of 110: past 80 % already.
        let mut s = state(110);
        let t0 = 1_700_000_000;
        let mut warnings = 0;
        let mut last = MonitorReading::default();
        for i in 0..30 {
            let v = values(&s, 100.0 + f64::from(i % 3));
            last = s.step(t0 + i64::from(i) * 10, &v);
            warnings += usize::from(last.forecast_warning && s.warned);
        }
        assert!(last.forecast_warning);
        assert!(warnings > 0);
        assert!(
            last.forecasts
                .iter()
                .any(|f| f.series == "connections" && !f.points.is_empty())
        );
        assert_eq!(last.capacity_connections, 110.0);
        // Well under capacity: no warning.
        let mut s = state(100_000);
        for i in 0..30 {
            let v = values(&s, 100.0);
            last = s.step(t0 + i64::from(i) * 10, &v);
        }
        assert!(!last.forecast_warning);
    }
}
