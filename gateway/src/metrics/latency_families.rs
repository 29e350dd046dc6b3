//! The latency histograms of `/metrics`: the gateway's time to the shard
//! ring per lane (every core's merged), the shards' service time per lane
//! (every shard's merged) and each shard's tick durations.
//!
//! The cores and shards record into fixed buckets
//! (`lanegate_common::histogram`) and publish copies; here the copies are
//! merged and written as Prometheus histograms, seconds as Prometheus
//! wants them, with the buckets' `le` bounds converted from microseconds.

use std::fmt;

use lanegate_common::histogram::{LATENCY_BOUNDS_US, LatencyHistogram};
use lanegate_common::lanes::Lane;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::Sample;
use super::encode::Labels;

pub(super) fn encode_latency(enc: &mut DescriptorEncoder<'_>, s: &Sample) -> fmt::Result {
    let lanes = |per_lane: [LatencyHistogram; Lane::COUNT]| {
        Lane::ALL.map(|lane| {
            (
                vec![("lane", lane.name().to_owned())],
                per_lane[lane.index()],
            )
        })
    };
    histogram(
        enc,
        "lanegate_gateway_latency",
        "Gateway-added latency per lane: datagram received by the kernel (io_uring; \
         else read by the core) to message on the shard ring, over every core.",
        lanes(s.gateway_latency()),
    )?;
    histogram(
        enc,
        "lanegate_shard_service",
        "Shard service time per lane: message on the ring to what the game sent \
         in reply handed back to the cores (the end of its tick or message pass), \
         over every shard.",
        lanes(s.shard_service()),
    )?;
    histogram(
        enc,
        "lanegate_shard_tick",
        "Tick durations per shard.",
        s.shard_latency
            .iter()
            .enumerate()
            .map(|(i, l)| (vec![("shard", i.to_string())], l.tick)),
    )
}

fn histogram(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels, LatencyHistogram)>,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
    let mut buckets = Vec::with_capacity(LATENCY_BOUNDS_US.len() + 1);
    for (labels, h) in rows {
        buckets.clear();
        buckets.extend(
            LATENCY_BOUNDS_US
                .iter()
                .map(|&us| us as f64 / 1e6)
                .chain([f64::INFINITY])
                .zip(h.counts().iter().copied()),
        );
        m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
            h.sum_us() as f64 / 1e6,
            h.count(),
            &buckets,
            None,
        )?;
    }
    Ok(())
}
