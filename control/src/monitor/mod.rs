//! Learned baselines: what each series of the gateway usually is at this
//! time of the week, alerts when it strays, and forecasts of the next hour.
//!
//! Sans-IO, like [`ladder`](crate::ladder): the models take
//! `(unix_time_s, value)` and return plain values; the gateway's sampling
//! thread (not a datapath core) reads its series every
//! `sample_interval_ms`, calls them, and logs, counts, shows and POSTs what
//! they say. Using it from the gateway:
//!
//! 1. At start, [`Baselines::new`] from the validated [`MonitorConfig`], or
//!    [`Baselines::decode`] of the bytes of `baselines_path` (on an error,
//!    warn and start empty).
//! 2. Every sample, [`Baselines::observe`] per series: the
//!    [`Observation`] has the status (learning, normal, alerting) for the
//!    status page and metrics, the score for `lanegate_anomaly_score`, and
//!    a [`Transition`] when an alert was raised or cleared, with the value,
//!    the expected value, the band and the score its message needs.
//!    A series past `series_max` is refused ([`SeriesFull`]): count it.
//! 3. Now and then, [`SeriesModel::forecast`] for `lanegate_forecast_*`
//!    and [`SeriesModel::forecast_warning`] against the capacity.
//! 4. Periodically and at shutdown, write [`Baselines::encode`]'s bytes to
//!    `baselines_path` atomically.
//!
//! The model is [`model`]'s: a level under a time-of-week profile
//! ([`season`]), a band and a CUSUM; [`synth`] generates labelled game
//! traffic to test it on; [`persist`] is the file's format.

pub mod forecast;
pub mod model;
pub mod persist;
pub mod season;
pub mod synth;

use lanegate_common::config::MonitorConfig;

pub use forecast::{ForecastPoint, ForecastWarning};
pub use model::{Band, Cause, Edge, Observation, SeriesModel, Status, Transition};
pub use persist::DecodeError;

/// Every series the gateway models, by name, at most `series_max`.
#[derive(Clone, Debug)]
pub struct Baselines {
    cfg: MonitorConfig,
    series: Vec<(String, SeriesModel)>,
}

/// The series is not modelled: `series_max` series already are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("monitor.series_max ({0}) series are already modelled")]
pub struct SeriesFull(pub u32);

impl Baselines {
    /// No series yet.
    pub fn new(cfg: &MonitorConfig) -> Self {
        Self {
            cfg: cfg.clone(),
            series: Vec::new(),
        }
    }

    /// The series saved by [`encode`](Baselines::encode).
    pub fn decode(cfg: &MonitorConfig, bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(Self {
            cfg: cfg.clone(),
            series: persist::decode(cfg, bytes)?,
        })
    }

    /// Every series' learnt state, as the baselines file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        persist::encode(&self.cfg, self.iter())
    }

    /// Feeds `value` at `unix_time_s` to the series `name`, creating it if
    /// there is room.
    pub fn observe(
        &mut self,
        name: &str,
        unix_time_s: i64,
        value: f64,
    ) -> Result<Observation, SeriesFull> {
        let i = match self.series.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None if self.series.len() < self.cfg.series_max as usize => {
                self.series
                    .push((name.to_owned(), SeriesModel::new(&self.cfg)));
                self.series.len() - 1
            }
            None => return Err(SeriesFull(self.cfg.series_max)),
        };
        Ok(self.series[i].1.observe(unix_time_s, value))
    }

    /// The model of `name`, if it is modelled.
    pub fn get(&self, name: &str) -> Option<&SeriesModel> {
        self.series.iter().find(|(n, _)| n == name).map(|(_, m)| m)
    }

    /// Every series, in the order they were first seen.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SeriesModel)> {
        self.series.iter().map(|(n, m)| (n.as_str(), m))
    }

    /// How many series are modelled.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_bounded_and_survive_a_round_trip() {
        let cfg = MonitorConfig {
            series_max: 2,
            ..MonitorConfig::default()
        };
        let mut b = Baselines::new(&cfg);
        for t in 0..400 {
            b.observe("connections", t * 10, 100.0).unwrap();
            b.observe("sessions", t * 10, 50.0).unwrap();
        }
        assert_eq!(b.observe("third", 0, 1.0), Err(SeriesFull(2)));
        let back = Baselines::decode(&cfg, &b.encode()).unwrap();
        assert_eq!(back.len(), 2);
        let m = back.get("sessions").unwrap();
        assert!(!m.is_learning());
        assert_eq!(m.samples(), 400);
    }
}
