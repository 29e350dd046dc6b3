//! What the monitor (`crate::monitor`) publishes for the metrics endpoint
//! and the status page: one [`MonitorReading`] per sample, stored in a
//! [`MonitorSlot`] the monitor thread writes and the HTTP thread reads.
//! The monitor runs off the datapath; nothing here is on a core's path.

use std::sync::{Arc, Mutex};

/// Where the monitor leaves its latest reading.
#[derive(Debug, Default)]
pub struct MonitorSlot {
    latest: Mutex<Option<MonitorReading>>,
}

impl MonitorSlot {
    /// An empty slot: the monitor has not sampled yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Replaces the reading.
    pub fn publish(&self, reading: MonitorReading) {
        *self
            .latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reading);
    }

    /// The latest reading; `None` before the first sample.
    pub fn read(&self) -> Option<MonitorReading> {
        self.latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// The monitor's view of the gateway after one sample.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MonitorReading {
    /// Some series is still learning (fewer samples than
    /// `monitor.learning_samples_min`): no alert from it yet.
    pub learning: bool,
    /// The least-learnt series' share of its warm-up, 0 to 1.
    pub progress: f64,
    /// Every modelled series, in order.
    pub series: Vec<SeriesReading>,
    /// The alerts raised now, oldest first.
    pub alerts: Vec<AlertReading>,
    /// Forecasts of the next hour.
    pub forecasts: Vec<ForecastReading>,
    /// What forecasts of `connections` are judged against
    /// (`gateway.connections_max`).
    pub capacity_connections: f64,
    /// The connections forecast's upper band crosses
    /// `monitor.forecast_warn_capacity_percent` of capacity within
    /// `monitor.forecast_warn_lead_s`.
    pub forecast_warning: bool,
    /// Recent `connections` samples (Unix seconds, value), oldest first,
    /// for the status page's chart.
    pub history: Vec<(i64, f64)>,
    /// Alerts the webhook delivered, gave up on, and dropped (full queue);
    /// `None` without `monitor.webhook_url`.
    pub webhook: Option<[u64; 3]>,
    /// Samples of a series refused because `monitor.series_max` series
    /// were modelled.
    pub series_refused: u64,
}

/// One series' state.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesReading {
    /// Its name (`lanegate_anomaly_score{series=...}`).
    pub name: String,
    /// Anomaly score of its last sample, 0 to 1.
    pub score: f64,
    /// An alert is raised on it.
    pub active: bool,
    /// Still learning.
    pub learning: bool,
}

/// One raised alert.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertReading {
    /// The series.
    pub series: String,
    /// Why: `band`, `shift` or `flat`.
    pub cause: &'static str,
    /// Raised at, Unix seconds.
    pub since_unix_s: i64,
    /// The latest value.
    pub value: f64,
    /// What was expected.
    pub expected: f64,
    /// The band's ends.
    pub low: f64,
    /// Upper end.
    pub high: f64,
    /// The latest score.
    pub score: f64,
}

/// A series' forecast.
#[derive(Clone, Debug, PartialEq)]
pub struct ForecastReading {
    /// `connections` or `messages_in_per_s.<lane>`.
    pub series: String,
    /// Points ahead: (Unix seconds, horizon in s, expected, upper band).
    pub points: Vec<(i64, u32, f64, f64)>,
}
