//! Forecasts from the seasonal model: the expected value and an upper band
//! at steps over the next `forecast_horizon_s`, and the warning that the
//! band will cross a share of capacity within `forecast_warn_lead_s`.
//!
//! A forecast at time `t` is `level + offset(t)`, the same expectation the
//! detector compares samples with, from what the model knows now; the
//! upper band adds `forecast_upper_percent`'s Gaussian quantile times the
//! bucket's spread. The level is not extrapolated: it moves over a day, so
//! within an hour the profile carries the shape.

use serde::Serialize;

use super::model::SeriesModel;

/// One point of a forecast.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ForecastPoint {
    /// When, Unix seconds.
    pub at_unix_s: i64,
    /// How far ahead of the forecast's start, in s.
    pub horizon_s: u32,
    /// The expected value.
    pub expected: f64,
    /// The upper band (`forecast_upper_percent` quantile).
    pub upper: f64,
}

/// The upper band will cross the warning share of capacity.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ForecastWarning {
    /// The first forecast point at or past the threshold.
    pub point: ForecastPoint,
    /// `capacity × forecast_warn_capacity_percent / 100`.
    pub threshold: f64,
    /// The capacity it was checked against.
    pub capacity: f64,
}

impl SeriesModel {
    /// The forecast at `at_unix_s`, from what the model knows now; `None`
    /// before the first sample.
    pub fn forecast_at(&self, at_unix_s: i64, now_unix_s: i64) -> Option<ForecastPoint> {
        if self.samples() == 0 {
            return None;
        }
        let e = self.expected_at(at_unix_s);
        Some(ForecastPoint {
            at_unix_s,
            horizon_s: u32::try_from(at_unix_s.saturating_sub(now_unix_s).max(0))
                .unwrap_or(u32::MAX),
            expected: e.value,
            upper: e.value + self.p.upper_z * e.spread,
        })
    }

    /// The forecast from `now_unix_s`, every `forecast_step_s` up to
    /// `forecast_horizon_s` (first point one step ahead); empty before the
    /// first sample. Allocates nothing.
    pub fn forecast(&self, now_unix_s: i64) -> impl Iterator<Item = ForecastPoint> + '_ {
        let step = self.p.step_s;
        let n = self.p.horizon_s / step;
        (1..=n).filter_map(move |k| {
            self.forecast_at(now_unix_s.saturating_add(i64::from(k * step)), now_unix_s)
        })
    }

    /// Whether the upper band crosses `capacity × forecast_warn_capacity_percent`
    /// within `forecast_warn_lead_s` of `now_unix_s`: the first point that
    /// does. `None` while learning (an empty model forecasts nothing worth
    /// waking anyone for) or for a capacity that is not positive.
    pub fn forecast_warning(&self, now_unix_s: i64, capacity: f64) -> Option<ForecastWarning> {
        if self.is_learning() || capacity.is_nan() || capacity <= 0.0 {
            return None;
        }
        let threshold = capacity * self.p.warn_share;
        self.forecast(now_unix_s)
            .take_while(|f| f.horizon_s <= self.p.warn_lead_s)
            .find(|f| f.upper >= threshold)
            .map(|point| ForecastWarning {
                point,
                threshold,
                capacity,
            })
    }
}

#[cfg(test)]
mod tests {
    use lanegate_common::config::MonitorConfig;

    use super::*;

    /// Players online: 1000 at night, 3000 in the evening, with a little
    /// noise.
    fn players(t: i64) -> f64 {
        let h = t.rem_euclid(86_400) as f64 / 3_600.0;
        2_000.0 - 1_000.0 * ((h - 4.0) / 24.0 * std::f64::consts::TAU).cos()
            + ((t / 10 * 7_919) % 21 - 10) as f64
    }

    fn trained(cfg: &MonitorConfig, days: i64) -> (SeriesModel, i64) {
        let mut m = SeriesModel::new(cfg);
        let mut t = 0;
        while t < days * 86_400 {
            m.observe(t, players(t));
            t += 10;
        }
        (m, t)
    }

    #[test]
    fn forecasts_follow_the_daily_shape() {
        let cfg = MonitorConfig::default();
        let (m, now) = trained(&cfg, 8);
        let points: Vec<_> = m.forecast(now).collect();
        assert_eq!(points.len(), 12);
        assert_eq!(points[0].horizon_s, 300);
        assert_eq!(points[11].horizon_s, 3_600);
        for p in &points {
            let truth = players(p.at_unix_s);
            assert!(
                (p.expected - truth).abs() < 0.05 * truth,
                "{p:?} vs {truth}"
            );
            assert!(p.upper > p.expected);
        }
        // 16 h from midnight: the evening peak is ahead.
        let evening = m.forecast_at(now + 16 * 3_600, now).unwrap();
        assert!(evening.expected > 2_800.0, "{evening:?}");
    }

    #[test]
    fn warns_when_the_upper_band_nears_capacity_within_the_lead() {
        let cfg = MonitorConfig::default();
        let (m, now) = trained(&cfg, 8);
        // At midnight, about 1000 players: far below 80 % of 5000.
        assert_eq!(m.forecast_warning(now, 5_000.0), None);
        // 80 % of 1250 is 1000: crossed at once.
        let w = m.forecast_warning(now, 1_250.0).expect("warned");
        assert_eq!(w.point.horizon_s, 300);
        assert_eq!(w.threshold, 1_000.0);
        // 16 h ahead is beyond the 15 min lead: no warning for the evening.
        let evening = m.forecast_at(now + 16 * 3_600, now).unwrap();
        assert_eq!(m.forecast_warning(now, evening.expected), None);
        assert_eq!(m.forecast_warning(now, 0.0), None);
        assert_eq!(SeriesModel::new(&cfg).forecast_warning(now, 1.0), None);
        assert_eq!(SeriesModel::new(&cfg).forecast(now).count(), 0);
    }
}
