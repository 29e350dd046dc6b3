//! Evaluating the gateway's anomaly detector and forecasts
//! (`lanegate_control::monitor`) on labelled data: reading the Numenta
//! Anomaly Benchmark's files ([`data`]) and scoring detections with its
//! standard profile ([`score`]). The binaries `anomaly-eval` and
//! `forecast-eval` drive them.

pub mod data;
pub mod score;
