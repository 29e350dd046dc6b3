//! Metrics the dashboard (`deploy/grafana/lanegate.json`) and the alert
//! rules (`deploy/prometheus/alerts.yml`) already name but the gateway does
//! not export yet: the monitor of issue 14 §2-4 adds them. Shared by
//! `deploy_grafana.rs` (checked against a live scrape) and
//! `deploy_files.rs` (checked against the encoder's sources).

/// Family names as a scrape's `# TYPE` line gives them (a histogram
/// without `_bucket`, `_sum`, `_count`). Delete each entry as its metric
/// lands: `deploy_grafana` fails on an entry the gateway exports, so the
/// list cannot outlive its reason.
pub const ADDED_BY_ISSUE_14_MONITOR: &[&str] = &[
    // §2: gauges, label `series`: 1 while the series is outside its band,
    // and how far out.
    "lanegate_anomaly_active",
    "lanegate_anomaly_score",
    // §2: gauge, 1 while the model is still learning.
    "lanegate_monitor_learning",
    // §4: gauges, label `horizon` (and `lane` for messages): the forecast
    // and its upper band.
    "lanegate_forecast_connections",
    "lanegate_forecast_connections_upper",
    "lanegate_forecast_messages_per_second",
    "lanegate_forecast_messages_per_second_upper",
    // §4: gauge: the connections the forecast is judged against
    // (LanegateForecastNearCapacity fires on the upper band above 90 % of it).
    "lanegate_forecast_capacity_connections",
];
