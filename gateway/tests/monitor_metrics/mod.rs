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
    // Empty: every metric the monitor of issue 14 adds is exported (the
    // latency histograms, anomalies, learning and forecasts).
];
