//! `[observability]`: the metrics endpoint and the log format.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// `[observability]`: metrics and logs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObservabilityConfig {
    /// TCP address of the Prometheus metrics endpoint, or `"off"`. Default
    /// `127.0.0.1:9464` (the OpenTelemetry Prometheus port), loopback only
    /// so metrics are not public by accident.
    #[serde(with = "super::serde_forms::addr_or_off")]
    pub metrics_listen: Option<SocketAddr>,
    /// Log line format on stderr. Default `"text"`, for people; `"json"` for
    /// log shippers.
    pub log_format: LogFormat,
    /// Per-lane latency histograms inside the gateway (datagram received
    /// → on the shard ring; ring → reply handed back) and shard tick
    /// durations, with kernel receive timestamps on io_uring. Default
    /// `true`: their cost is measured in `BENCHMARKS.md`; `false` only to
    /// measure that cost.
    pub latency_histograms: bool,
}

impl Default for ObservabilityConfig {
    fn default() -> Self {
        Self {
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            log_format: LogFormat::Text,
            latency_histograms: true,
        }
    }
}

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The name used in configuration.
    pub const fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}
