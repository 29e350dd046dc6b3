//! `[monitor]`: the gateway's learned baselines: how often each series is
//! sampled, the time-of-week profile, when a series outside its band
//! raises and clears an alert, the forecast and its capacity warning, and
//! where alerts and baselines go.
//!
//! Every value is an integer (the configuration is compared with `Eq`):
//! deviations are written in tenths (`raise_deviations_tenths = 40` is four
//! deviations), shares in percent. Counts of samples do not depend on the
//! sample interval; the model measures the interval from the timestamps it
//! is given, so the same settings serve the gateway's 10 s samples and the
//! 5 min rows of the evaluation data.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::error::non_zero;

/// Seconds in a week: the season of the time-of-week profile.
pub const WEEK_S: u32 = 604_800;

/// Seconds in a day: the season of the time-of-day profile, the fallback
/// while the weekly one is still empty.
pub const DAY_S: u32 = 86_400;

/// Narrowest time-of-week bucket, in s: at most 2016 buckets a week per
/// series, so `series_max` series stay a few MiB.
pub const SEASON_BUCKET_S_MIN: u32 = 300;

/// `[monitor]`: baselines, anomaly alerts and forecasts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// How often the sampling thread reads every series, in ms; at least
    /// 1000 (the models keep time in whole seconds). Default
    /// 10000: a fault is seen within a minute, and a week of a series is
    /// about 60 000 samples folded into a fixed profile.
    pub sample_interval_ms: u64,
    /// Width of a time-of-week bucket of the seasonal profile, in s; must
    /// divide a day (86400), and so a week. Default 3600: 168 buckets a
    /// week, 24 a day; player counts move with the hour and the weekday.
    pub season_bucket_s: u32,
    /// Samples a bucket must have seen before its own mean and spread are
    /// used (before that, the daily bucket, then the global level). Default
    /// 3.
    pub season_bucket_samples_min: u32,
    /// How many past cycles (weeks for the weekly profile, days for the
    /// daily one) a bucket's mean and spread average over. Default 4: a
    /// change of habits is learnt within a month, a holiday is forgotten.
    pub season_memory_cycles: u32,
    /// How fast the level under the profile follows the series, as the
    /// time constant of its average, in s. Default 86400: a day, slow
    /// against the daily cycle, so that the profile (not the level) holds
    /// the shape of the day and a fault of minutes or hours stands out.
    pub level_memory_s: u32,
    /// Samples before a new series may alert: until then it says it is
    /// learning. Default 288: a day at 5 min samples, 48 min at 10 s.
    pub learning_samples_min: u32,
    /// How far outside the expected value a sample is out of band, in
    /// tenths of a deviation (a robust σ). Default 40.
    pub raise_deviations_tenths: u32,
    /// Consecutive out-of-band samples that raise an alert. Default 2.
    pub raise_after_samples: u32,
    /// How close to the expected value a sample must be to count towards
    /// clearing, in tenths of a deviation; below the raise threshold, so a
    /// series at the band's edge does not flap. Default 20.
    pub clear_deviations_tenths: u32,
    /// Consecutive in-band samples that clear an alert. Default 6.
    pub clear_after_samples: u32,
    /// Samples after an alert clears during which no new one is raised.
    /// Default 60: one incident, one page (10 min at 10 s samples).
    pub suppress_after_clear_samples: u32,
    /// Slack of the CUSUM level-shift detector, in tenths of a deviation
    /// (of the band's unit) per sample: shifts smaller than this are not
    /// accumulated. Default 20.
    pub cusum_drift_tenths: u32,
    /// CUSUM sum that raises a level-shift alert, in tenths of a deviation.
    /// Default 100: a shift of three deviations is found in ten samples,
    /// one of four in five.
    pub cusum_threshold_tenths: u32,
    /// How far ahead forecasts go, in s. Default 3600.
    pub forecast_horizon_s: u32,
    /// Spacing of the forecast points, in s. Default 300: twelve points for
    /// the next hour.
    pub forecast_step_s: u32,
    /// Quantile of the forecast's upper band, in percent. Default 95.
    pub forecast_upper_percent: u32,
    /// Share of capacity the forecast's upper band may reach before the
    /// gateway warns, in percent. Default 80.
    pub forecast_warn_capacity_percent: u32,
    /// How far ahead a capacity crossing is warned of, in s; at most
    /// `forecast_horizon_s`. Default 900: time to add capacity.
    pub forecast_warn_lead_s: u32,
    /// Series the gateway tracks at most; more are not modelled (counted).
    /// Default 256: about 5 KiB each.
    pub series_max: u32,
    /// URL alerts and warnings are POSTed to as JSON (`http://` or
    /// `https://`). Default none: no webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Alerts waiting to be POSTed at most; past it a new one is dropped
    /// (counted). Default 64.
    pub webhook_queue_max: u32,
    /// Longest one POST may take, in ms. Default 2000.
    pub webhook_timeout_ms: u64,
    /// Retries of a failed POST before the alert is dropped. Default 3.
    pub webhook_retries_max: u32,
    /// File the baselines are kept in across restarts (written atomically;
    /// ignored with a warning if corrupt). Default none: in memory only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baselines_path: Option<PathBuf>,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            sample_interval_ms: 10_000,
            season_bucket_s: 3_600,
            season_bucket_samples_min: 3,
            season_memory_cycles: 4,
            level_memory_s: 86_400,
            learning_samples_min: 288,
            raise_deviations_tenths: 40,
            raise_after_samples: 2,
            clear_deviations_tenths: 20,
            clear_after_samples: 6,
            suppress_after_clear_samples: 60,
            cusum_drift_tenths: 20,
            cusum_threshold_tenths: 100,
            forecast_horizon_s: 3_600,
            forecast_step_s: 300,
            forecast_upper_percent: 95,
            forecast_warn_capacity_percent: 80,
            forecast_warn_lead_s: 900,
            series_max: 256,
            webhook_url: None,
            webhook_queue_max: 64,
            webhook_timeout_ms: 2_000,
            webhook_retries_max: 3,
            baselines_path: None,
        }
    }
}

impl MonitorConfig {
    /// Time-of-week buckets of the weekly profile.
    pub fn week_buckets(&self) -> usize {
        (WEEK_S / self.season_bucket_s.max(1)) as usize
    }

    /// Time-of-day buckets of the daily profile.
    pub fn day_buckets(&self) -> usize {
        (DAY_S / self.season_bucket_s.max(1)) as usize
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.sample_interval_ms < 1000 {
            return Err(ConfigError::invalid(
                "monitor.sample_interval_ms",
                format!(
                    "is {}; the models keep time in whole seconds, so set at least 1000",
                    self.sample_interval_ms
                ),
            ));
        }
        let b = self.season_bucket_s;
        if b < SEASON_BUCKET_S_MIN || !DAY_S.is_multiple_of(b) {
            return Err(ConfigError::invalid(
                "monitor.season_bucket_s",
                format!(
                    "{b} s does not divide a day (86400 s) into buckets of at least \
                     {SEASON_BUCKET_S_MIN} s; use e.g. 900, 1800 or 3600"
                ),
            ));
        }
        for (field, v) in [
            (
                "monitor.season_bucket_samples_min",
                self.season_bucket_samples_min,
            ),
            ("monitor.season_memory_cycles", self.season_memory_cycles),
            ("monitor.level_memory_s", self.level_memory_s),
            ("monitor.raise_after_samples", self.raise_after_samples),
            ("monitor.clear_after_samples", self.clear_after_samples),
            (
                "monitor.clear_deviations_tenths",
                self.clear_deviations_tenths,
            ),
            (
                "monitor.cusum_threshold_tenths",
                self.cusum_threshold_tenths,
            ),
            ("monitor.forecast_step_s", self.forecast_step_s),
            ("monitor.series_max", self.series_max),
            ("monitor.webhook_queue_max", self.webhook_queue_max),
        ] {
            non_zero(field, u64::from(v))?;
        }
        non_zero("monitor.webhook_timeout_ms", self.webhook_timeout_ms)?;
        if self.clear_deviations_tenths >= self.raise_deviations_tenths {
            return Err(ConfigError::invalid(
                "monitor.clear_deviations_tenths",
                format!(
                    "{} is not below monitor.raise_deviations_tenths ({}): an alert at the \
                     band's edge would flap; lower it",
                    self.clear_deviations_tenths, self.raise_deviations_tenths
                ),
            ));
        }
        if self.forecast_horizon_s < self.forecast_step_s || self.forecast_horizon_s > WEEK_S {
            return Err(ConfigError::invalid(
                "monitor.forecast_horizon_s",
                format!(
                    "{} s must be at least monitor.forecast_step_s ({} s) and at most a week",
                    self.forecast_horizon_s, self.forecast_step_s
                ),
            ));
        }
        if !(50..=99).contains(&self.forecast_upper_percent) {
            return Err(ConfigError::invalid(
                "monitor.forecast_upper_percent",
                "must be 50 to 99 (a quantile at or above the median)",
            ));
        }
        if !(1..=100).contains(&self.forecast_warn_capacity_percent) {
            return Err(ConfigError::invalid(
                "monitor.forecast_warn_capacity_percent",
                "must be 1 to 100",
            ));
        }
        if self.forecast_warn_lead_s > self.forecast_horizon_s {
            return Err(ConfigError::invalid(
                "monitor.forecast_warn_lead_s",
                format!(
                    "{} s is beyond monitor.forecast_horizon_s ({} s): the forecast does not \
                     reach that far; lower it or raise the horizon",
                    self.forecast_warn_lead_s, self.forecast_horizon_s
                ),
            ));
        }
        if let Some(url) = &self.webhook_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::invalid(
                "monitor.webhook_url",
                format!("{url:?} is not an http:// or https:// URL"),
            ));
        }
        if self
            .baselines_path
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(ConfigError::invalid(
                "monitor.baselines_path",
                "is empty; name a file, or leave it out to keep baselines in memory",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = MonitorConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!((c.week_buckets(), c.day_buckets()), (168, 24));
    }

    #[test]
    fn bad_values_name_their_field() {
        let field = |c: MonitorConfig| c.validate().unwrap_err().field().to_owned();
        let d = MonitorConfig::default;
        for b in [0, 299, 7_000, 604_800] {
            let c = MonitorConfig {
                season_bucket_s: b,
                ..d()
            };
            assert_eq!(field(c), "monitor.season_bucket_s", "{b}");
        }
        let c = MonitorConfig {
            clear_deviations_tenths: 40,
            ..d()
        };
        assert_eq!(field(c), "monitor.clear_deviations_tenths");
        let c = MonitorConfig {
            forecast_warn_lead_s: 7_200,
            ..d()
        };
        assert_eq!(field(c), "monitor.forecast_warn_lead_s");
        let c = MonitorConfig {
            webhook_url: Some("ftp://x".into()),
            ..d()
        };
        assert_eq!(field(c), "monitor.webhook_url");
        let c = MonitorConfig {
            series_max: 0,
            ..d()
        };
        assert_eq!(field(c), "monitor.series_max");
        let c = MonitorConfig {
            forecast_upper_percent: 100,
            ..d()
        };
        assert_eq!(field(c), "monitor.forecast_upper_percent");
        let c = MonitorConfig {
            webhook_url: Some("https://hooks.example/x".into()),
            baselines_path: Some("/var/lib/lanegate/baselines.bin".into()),
            ..d()
        };
        assert_eq!(c.validate(), Ok(()));
    }
}
