//! The per-shard metric families of `/metrics`: ticks, queues, losses,
//! restarts, stalls, failovers and degradation levels, read from each
//! shard's published health.

use std::fmt;

use lanegate_common::lanes::Lane;
use lanegate_common::link::ShardHealth;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use super::Sample;
use super::encode::{Labels, counter, gauge};

/// A shard tick statistic: name (unit appended), help, value in µs.
type ShardTick = (&'static str, &'static str, fn(&ShardHealth) -> u32);

pub(super) fn encode_shards(enc: &mut DescriptorEncoder<'_>, s: &Sample) -> fmt::Result {
    let shard = |h: &ShardHealth| -> Labels { vec![("shard", h.shard.to_string())] };
    let per_shard = |f: fn(&ShardHealth) -> u64| s.shards.iter().map(move |h| (shard(h), f(h)));
    counter(
        enc,
        "lanegate_shard_ticks",
        "Ticks the shard completed.",
        per_shard(|h| h.ticks),
    )?;
    counter(
        enc,
        "lanegate_shard_tick_overruns",
        "Ticks that took longer than shards.tick_budget_us.",
        per_shard(|h| h.overruns),
    )?;
    counter(
        enc,
        "lanegate_shard_restarts",
        "Game instances replaced after a panic.",
        per_shard(|h| u64::from(h.restarts)),
    )?;
    counter(
        enc,
        "lanegate_shard_shed_out",
        "Outbound bulk messages the shard shed because of its degradation level.",
        per_shard(|h| h.shed_out),
    )?;
    gauge(
        enc,
        "lanegate_shard_overload_level",
        "The shard's degradation level: 0 normal, 1 shed bulk, 2 defer normal, 3 thin high.",
        None,
        per_shard(|h| u64::from(h.level)).collect(),
    )?;
    counter(
        enc,
        "lanegate_shard_stale_dropped",
        "Messages dropped because their sender had left the zone they were sent in (zone change or close).",
        per_shard(|h| h.stale_dropped),
    )?;
    counter(
        enc,
        "lanegate_shard_stalls",
        "Stalls the watchdog saw: a tick running past shards.stall_after_ms, \
         or no tick started that long after one was due.",
        per_shard(|h| u64::from(h.stalls)),
    )?;
    gauge(
        enc,
        "lanegate_shard_stalled",
        "1 while the shard is late past shards.stall_after_ms.",
        None,
        per_shard(|h| u64::from(h.stalled)).collect(),
    )?;
    counter(
        enc,
        "lanegate_shard_failovers",
        "Times the shard was failed over (stalled past shards.stall_failover_ms): \
         at most 1, as a failed-over shard is fenced for good.",
        per_shard(|h| u64::from(h.fenced)),
    )?;
    gauge(
        enc,
        "lanegate_shards_available",
        "Shards not failed over: 0 means no player can be placed (/readyz is 503).",
        None,
        vec![(Labels::new(), s.shards_available() as u64)],
    )?;
    gauge(
        enc,
        "lanegate_shard_heartbeat_age",
        "Time since the shard last started a tick or message pass.",
        Some(&Unit::Seconds),
        s.shards
            .iter()
            .map(|h| (shard(h), h.heartbeat_age_us as f64 / 1e6))
            .collect(),
    )?;
    let us = |v: u32| f64::from(v) / 1e6;
    // Three gauges, not a `quantile` label: that label belongs to summaries,
    // and these are the shard's own window statistics.
    let ticks: [ShardTick; 3] = [
        (
            "lanegate_shard_tick_p50",
            "Median tick duration over the shard's recent window.",
            |h| h.tick_p50_us,
        ),
        (
            "lanegate_shard_tick_p99",
            "99th percentile tick duration over the shard's recent window.",
            |h| h.tick_p99_us,
        ),
        (
            "lanegate_shard_tick_max",
            "Longest tick over the shard's recent window.",
            |h| h.tick_max_us,
        ),
    ];
    for (name, help, f) in ticks {
        gauge(
            enc,
            name,
            help,
            Some(&Unit::Seconds),
            s.shards.iter().map(|h| (shard(h), us(f(h)))).collect(),
        )?;
    }
    gauge(
        enc,
        "lanegate_shard_tick_budget",
        "shards.tick_budget_us: the time a tick may take.",
        Some(&Unit::Seconds),
        s.shards
            .iter()
            .map(|h| (shard(h), us(s.tick_budget_us)))
            .collect(),
    )?;
    gauge(
        enc,
        "lanegate_shard_sojourn_min",
        "Shortest time a message handed to the shard's game had waited since the gateway \
         received it, over the last health window (a standing queue; 0 below 32 messages).",
        Some(&Unit::Seconds),
        s.shards
            .iter()
            .map(|h| (shard(h), us(h.sojourn_min_us)))
            .collect(),
    )?;
    gauge(
        enc,
        "lanegate_shard_ring_depth",
        "Entries left in the shard's inbound rings after its last drain.",
        None,
        per_shard(|h| u64::from(h.ring_depth)).collect(),
    )?;
    gauge(
        enc,
        "lanegate_shard_zones",
        "Zones the shard owns.",
        None,
        per_shard(|h| u64::from(h.zones)).collect(),
    )?;
    gauge(
        enc,
        "lanegate_shard_players",
        "Players joined to the shard's zones.",
        None,
        per_shard(|h| u64::from(h.players)).collect(),
    )?;
    let per_lane = |f: fn(&ShardHealth, usize) -> u64| {
        s.shards.iter().flat_map(move |h| {
            Lane::ALL.into_iter().map(move |lane| {
                let mut labels = shard(h);
                labels.push(("lane", lane.name().to_owned()));
                (labels, f(h, lane.index()))
            })
        })
    };
    gauge(
        enc,
        "lanegate_shard_inbox_depth",
        "Messages waiting in the shard's lane inbox after its last drain.",
        None,
        per_lane(|h, l| u64::from(h.inbox_depth[l])).collect(),
    )?;
    counter(
        enc,
        "lanegate_shard_inbound_shed",
        "Inbound messages the shard shed because the lane's inbox was full.",
        per_lane(|h, l| h.inbound_shed[l]),
    )?;
    counter(
        enc,
        "lanegate_shard_outbound_lost",
        "Outbound messages lost: shard-to-gateway ring full, pool exhausted or outbox full.",
        per_lane(|h, l| h.outbound_lost[l]),
    )
}
