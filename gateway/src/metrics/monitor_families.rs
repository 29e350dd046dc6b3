//! The monitor's metric families of `/metrics`: the learning state,
//! anomalies per series, forecasts by horizon against capacity, and the
//! webhook's deliveries (`crate::monitor` computes them; this only writes
//! them). Absent until the monitor's first sample.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;

use super::encode::{Labels, counter, gauge};
use super::monitor_view::MonitorReading;

/// Forecast horizons published as series: the next 10, 30 and 60 minutes,
/// each the forecast point nearest to it.
pub const FORECAST_HORIZONS_S: [u32; 3] = [600, 1800, 3600];

pub(super) fn encode_monitor(enc: &mut DescriptorEncoder<'_>, m: &MonitorReading) -> fmt::Result {
    gauge(
        enc,
        "lanegate_monitor_learning",
        "1 while some series has not yet seen monitor.learning_samples_min samples: no alert from it yet.",
        None,
        vec![(Labels::new(), i64::from(m.learning))],
    )?;
    gauge(
        enc,
        "lanegate_monitor_learning_progress",
        "The least-learnt series' share of its warm-up, 0 to 1.",
        None,
        vec![(Labels::new(), m.progress)],
    )?;
    let per_series = |f: fn(&super::monitor_view::SeriesReading) -> f64| {
        m.series
            .iter()
            .map(|s| (vec![("series", s.name.clone())], f(s)))
            .collect::<Vec<_>>()
    };
    gauge(
        enc,
        "lanegate_anomaly_active",
        "1 while an alert is raised on the series: outside its learnt band for monitor.raise_after_samples, a level shift, or flat.",
        None,
        per_series(|s| f64::from(u8::from(s.active))),
    )?;
    gauge(
        enc,
        "lanegate_anomaly_score",
        "How anomalous the series' last sample was, 0 to 1 (0.5 at the alert threshold).",
        None,
        per_series(|s| s.score),
    )?;
    gauge(
        enc,
        "lanegate_monitor_series_learning",
        "1 while the series has seen fewer than monitor.learning_samples_min samples.",
        None,
        per_series(|s| f64::from(u8::from(s.learning))),
    )?;
    counter(
        enc,
        "lanegate_monitor_series_refused",
        "Samples of series past monitor.series_max, not modelled.",
        std::iter::once((Labels::new(), m.series_refused)),
    )?;
    let horizon = |h: u32| format!("{}m", h / 60);
    let points = |series: &str, upper: bool| -> Vec<(Labels, f64)> {
        let Some(f) = m.forecasts.iter().find(|f| f.series == series) else {
            return Vec::new();
        };
        FORECAST_HORIZONS_S
            .iter()
            .filter_map(|&h| {
                let p = f
                    .points
                    .iter()
                    .min_by_key(|p| p.1.abs_diff(h))
                    .filter(|p| p.1.abs_diff(h) <= h / 2)?;
                Some((vec![("horizon", horizon(h))], if upper { p.3 } else { p.2 }))
            })
            .collect()
    };
    gauge(
        enc,
        "lanegate_forecast_connections",
        "Connections forecast by the seasonal model, by horizon.",
        None,
        points("connections", false),
    )?;
    gauge(
        enc,
        "lanegate_forecast_connections_upper",
        "Upper band (monitor.forecast_upper_percent) of the connections forecast, by horizon.",
        None,
        points("connections", true),
    )?;
    let lanes = |upper: bool| -> Vec<(Labels, f64)> {
        lanegate_common::lanes::Lane::ALL
            .iter()
            .flat_map(|lane| {
                points(&format!("messages_in_per_s.{lane}"), upper)
                    .into_iter()
                    .map(move |(mut l, v)| {
                        l.insert(0, ("lane", lane.name().to_owned()));
                        (l, v)
                    })
            })
            .collect()
    };
    gauge(
        enc,
        "lanegate_forecast_messages_per_second",
        "Game messages per second from clients forecast by the seasonal model, by lane and horizon.",
        None,
        lanes(false),
    )?;
    gauge(
        enc,
        "lanegate_forecast_messages_per_second_upper",
        "Upper band of the per-lane message forecast, by lane and horizon.",
        None,
        lanes(true),
    )?;
    gauge(
        enc,
        "lanegate_forecast_capacity_connections",
        "The connections the forecast is judged against (gateway.connections_max).",
        None,
        vec![(Labels::new(), m.capacity_connections)],
    )?;
    gauge(
        enc,
        "lanegate_forecast_warning",
        "1 while the connections forecast's upper band crosses monitor.forecast_warn_capacity_percent of capacity within monitor.forecast_warn_lead_s.",
        None,
        vec![(Labels::new(), i64::from(m.forecast_warning))],
    )?;
    if let Some([sent, failed, dropped]) = m.webhook {
        counter(
            enc,
            "lanegate_webhook_events",
            "Alert events for monitor.webhook_url: delivered (2xx), failed after every retry, or dropped with the queue full.",
            [("sent", sent), ("failed", failed), ("dropped", dropped)]
                .into_iter()
                .map(|(o, n)| (vec![("outcome", o.to_owned())], n)),
        )?;
    }
    Ok(())
}
