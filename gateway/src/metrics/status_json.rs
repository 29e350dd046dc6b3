//! `GET /status.json`: the gateway's state as one JSON document, for the
//! status page ([`super::status_page`]) and for scripts
//! (`curl -s 127.0.0.1:9464/status.json | jq .verdict`).
//!
//! It is a view of one [`Sample`], like the text page of [`super::status`]
//! and with the same verdict ([`status::verdict`]): rates come from the
//! earlier snapshot each core's slot keeps (one to two seconds old), so
//! serving this costs the HTTP thread one sample and one allocation of the
//! document, and nothing on a core.
//!
//! # Schema
//!
//! `schema` is 1. Fields are only ever added; a field that changes meaning
//! gets a new name and `schema` goes up. Rates are per second over each
//! core's rate window and `null` until a core has one (its first second);
//! `_total` fields are counts since start; durations say their unit last
//! (`_s`, `_us`). Lanes are `critical`, `high`, `normal`, `bulk`, in that
//! order.
//!
//! - `schema`, `version`, `started_unix_s`, `now_unix_s`, `uptime_s`,
//!   `draining`, `ready` (as `/readyz`), `tick_budget_us`;
//! - `verdict`: `{ok, reasons: [string]}`, the first line of `/status`;
//! - `backends`: the distinct IO backends of the publishing cores
//!   (`io_uring`, `portable`);
//! - `totals`: `connections`, `sessions`, `players`, `udp_in_per_s`,
//!   `messages_in_per_s` (game messages handed to shards),
//!   `messages_out_per_s` (datagrams and stream messages to clients),
//!   `handshakes_per_s` (handshakes the cores pay TLS for),
//!   `retries_per_s`, `drops_per_s` (every lane's drops), and
//!   `udp_in_total`, `messages_in_total`, `messages_out_total`,
//!   `sessions_opened_total`;
//! - `cores[]`: `core`, `publishing` (false before a core's first publish
//!   or when its snapshot is older than [`super::CORE_STALE_AFTER`]),
//!   `snapshot_age_s`, `backend`, `overload_level` (0 normal to 4
//!   protect), `overload_stuck`, `overload_transitions_total`,
//!   `connections`, `sessions`, `rate_window_s`, `udp_in_per_s`,
//!   `messages_in_per_s`, `messages_out_per_s`, `handshakes_per_s`,
//!   `retries_per_s`, `sessions_opened_per_s`, `udp_in_total`,
//!   `messages_in_total`, `messages_out_total`, `sessions_opened_total`,
//!   `kernel_socket_drops_total`; a core that has not published has every
//!   field but `core`, `publishing` and `kernel_socket_drops_total` `null`;
//! - `shards[]`: `shard`, `overload_level`, `tick_us: {p50, p99, max}`
//!   (the shard's recent window), `tick_budget_us`,
//!   `tick_p99_over_budget`, `ticks_total`, `overruns_total`, `players`,
//!   `zones`, `inbox_depth: {critical, high, normal, bulk}`, `ring_depth`,
//!   `sojourn_min_us`, `stalled`, `fenced`, `stalls_total`,
//!   `restarts_total`, `heartbeat_age_s`;
//! - `lanes[]`: `lane`, `messages_in_per_s` (game messages from clients,
//!   before admission) and `messages_out_per_s` (handed to QUIC for
//!   clients), `drops_per_s` (the four
//!   below together), `admission_dropped_per_s`, `link_dropped_per_s`
//!   (lost between gateway and shards, shedding aside), `shed_per_s` (the
//!   degradation ladder, both directions), `congested_per_s` (send
//!   buffers full to the lane's share), and each as `_total`
//!   (`messages_in_total`, `messages_out_total` too);
//! - `drops[]`: every drop counter by `stage` and `reason`, with `total`
//!   and `per_s`: stage `admission` (`rate_limit`), `link` (the reasons of
//!   `lanegate_link_dropped_total`, and `shed_out`, `deferred_expired`,
//!   `fenced`), `inbound` (`before_welcome`, `malformed`, `oversize`,
//!   `control_type`, `blocked_source_port`), `outbound` (`congested`,
//!   `datagram`, `stream`), `steer` (`full`, `oversize`), `shard`
//!   (`inbound_shed`, `outbound_lost`, `stale`; `per_s` always `null`, as
//!   shards keep no earlier reading) and `kernel` (`socket`; `per_s`
//!   `null`);
//! - `kernel_socket_drops`: `{total, per_core: [n | null]}`, the kernel's
//!   receive drops of each core's socket (`null` where `/proc/net/udp` is
//!   not readable);
//! - `latency`: `{lanes: [{lane, gateway_us: {p50, p99, p999}, shard_us:
//!   {p50, p99, p999}}], shards: [{shard, tick_us: {p50, p99, max}}]}`, in
//!   µs, `null` where nothing was recorded: the gateway's time to the
//!   shard ring over each core's rate window, the shards' service time and
//!   ticks since start (`lanegate_gateway_latency_seconds` and the other
//!   histograms of `/metrics`);
//! - from the monitor (`crate::monitor`), `null` until its first sample
//!   (`alerts` is `[]` once it runs and nothing is wrong):
//!   - `learning`: `{learning: bool, progress: 0.0..1.0}`;
//!   - `alerts`: `[{series, cause, since_unix_s, value, expected, low,
//!     high, score}]`, oldest first (`cause`: `band`, `shift`, `flat`);
//!   - `forecast`: `{capacity: {connections}, warning, series: [{series,
//!     points: [{at_unix_s, value, upper}], history: [{at_unix_s,
//!     value}]}]}` (`connections` and `messages_in_per_s.<lane>`; the
//!     history, the last hour of samples, for `connections` only).

use lanegate_common::histogram::LatencyHistogram;
use lanegate_common::lanes::Lane;
use lanegate_common::link::ShardHealth;
use lanegate_shard::port::DropReason;
use serde_json::{Map, Value, json};

use super::monitor_view::MonitorReading;
use super::{CORE_STALE_AFTER, CoreReading, CoreSnapshot, Sample, VERSION, status};

/// The schema's version: raised only when a field changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// Appends `s` as JSON to `out`.
pub fn render(s: &Sample, out: &mut String) {
    out.push_str(&document(s).to_string());
}

/// `s` as the JSON document of the module doc.
pub fn document(s: &Sample) -> Value {
    let reasons = status::verdict(s);
    let mut backends: Vec<&str> = published(s).map(|c| c.latest.backend.name()).collect();
    backends.sort_unstable();
    backends.dedup();
    json!({
        "schema": SCHEMA_VERSION,
        "version": VERSION,
        "started_unix_s": s.started_unix_s,
        "now_unix_s": s.started_unix_s + s.uptime.as_secs_f64(),
        "uptime_s": s.uptime.as_secs_f64(),
        "draining": s.draining,
        "ready": s.ready(),
        "tick_budget_us": s.tick_budget_us,
        "verdict": {"ok": reasons.is_empty(), "reasons": reasons},
        "backends": backends,
        "totals": totals(s),
        "cores": s.cores.iter().enumerate().map(|(i, c)| core(s, i, c.as_ref())).collect::<Vec<_>>(),
        "shards": s.shards.iter().map(|h| shard(s, h)).collect::<Vec<_>>(),
        "lanes": Lane::ALL.map(|lane| self::lane(s, lane)).to_vec(),
        "drops": drops(s),
        "kernel_socket_drops": {
            "total": s.socket_drops.iter().flatten().copied().reduce(|a, b| a + b),
            "per_core": s.socket_drops,
        },
        "latency": latency(s),
        "learning": s.monitor.as_ref().map(|m| json!({"learning": m.learning, "progress": m.progress})),
        "alerts": s.monitor.as_ref().map(alerts),
        "forecast": s.monitor.as_ref().map(forecast),
    })
}

fn alerts(m: &MonitorReading) -> Value {
    m.alerts
        .iter()
        .map(|a| {
            json!({
                "series": a.series, "cause": a.cause, "since_unix_s": a.since_unix_s,
                "value": a.value, "expected": a.expected, "low": a.low, "high": a.high,
                "score": a.score,
            })
        })
        .collect()
}

fn forecast(m: &MonitorReading) -> Value {
    json!({
        "capacity": {"connections": m.capacity_connections},
        "warning": m.forecast_warning,
        "series": m.forecasts.iter().map(|f| json!({
            "series": f.series,
            "points": f.points.iter().map(|&(at, _, value, upper)| json!({
                "at_unix_s": at, "value": value, "upper": upper,
            })).collect::<Vec<_>>(),
            "history": if f.series == "connections" {
                m.history.iter().map(|&(at, value)| json!({"at_unix_s": at, "value": value})).collect::<Vec<_>>()
            } else {
                Vec::new()
            },
        })).collect::<Vec<_>>(),
    })
}

/// Percentiles in µs, to the µs; `null` each when nothing was recorded.
fn percentiles(h: &LatencyHistogram, top: (&str, f64)) -> Value {
    let q = |q: f64| h.quantile_us(q).map(f64::round);
    json!({"p50": q(0.5), "p99": q(0.99), top.0: q(top.1)})
}

/// The latency histograms: the gateway's per lane over each core's rate
/// window (the last one to two seconds), the shards' service time per
/// lane and their ticks since start (shards keep no earlier copy).
fn latency(s: &Sample) -> Value {
    let mut window = [LatencyHistogram::default(); Lane::COUNT];
    for c in published(s) {
        let earlier = c.earlier.map(|e| e.latency).unwrap_or_default();
        for ((w, now), then) in window.iter_mut().zip(&c.latest.latency).zip(&earlier) {
            w.merge(&now.since(then));
        }
    }
    let service = s.shard_service();
    json!({
        "lanes": Lane::ALL.map(|lane| json!({
            "lane": lane.name(),
            "gateway_us": percentiles(&window[lane.index()], ("p999", 0.999)),
            "shard_us": percentiles(&service[lane.index()], ("p999", 0.999)),
        })).to_vec(),
        "shards": s.shard_latency.iter().enumerate().map(|(i, l)| json!({
            "shard": i,
            "tick_us": percentiles(&l.tick, ("max", 1.0)),
        })).collect::<Vec<_>>(),
    })
}

/// What one core counter reads.
type Count = fn(&CoreSnapshot) -> u64;

fn messages_out(c: &CoreSnapshot) -> u64 {
    c.engine.datagrams_out + c.engine.stream_messages_out
}

fn totals(s: &Sample) -> Value {
    let drops_per_s = Lane::ALL
        .iter()
        .filter_map(|&lane| sum_per_lane(s, lane, lane_drops))
        .reduce(|a, b| a + b);
    json!({
        "connections": total(s, |c| c.engine.connections_open),
        "sessions": total(s, |c| c.engine.sessions_open),
        "players": s.shards.iter().map(|h| u64::from(h.players)).sum::<u64>(),
        "udp_in_per_s": sum_per_s(s, |c| c.engine.udp_in),
        "messages_in_per_s": sum_per_s(s, |c| c.engine.messages_to_shard),
        "messages_out_per_s": sum_per_s(s, messages_out),
        "handshakes_per_s": sum_per_s(s, |c| c.engine.handshakes),
        "retries_per_s": sum_per_s(s, |c| c.engine.retries_sent),
        "drops_per_s": drops_per_s.map(round),
        "udp_in_total": total(s, |c| c.engine.udp_in),
        "messages_in_total": total(s, |c| c.engine.messages_to_shard),
        "messages_out_total": total(s, messages_out),
        "sessions_opened_total": total(s, |c| c.engine.sessions_opened),
    })
}

fn core(s: &Sample, i: usize, reading: Option<&CoreReading>) -> Value {
    let kernel = s.socket_drops.get(i).copied().flatten();
    let Some(c) = reading else {
        return json!({
            "core": i, "publishing": false, "snapshot_age_s": null, "backend": null,
            "overload_level": null, "overload_stuck": null, "overload_transitions_total": null,
            "connections": null, "sessions": null, "rate_window_s": null,
            "udp_in_per_s": null, "messages_in_per_s": null, "messages_out_per_s": null,
            "handshakes_per_s": null, "retries_per_s": null, "sessions_opened_per_s": null,
            "udp_in_total": null, "messages_in_total": null, "messages_out_total": null,
            "sessions_opened_total": null, "kernel_socket_drops_total": kernel,
        });
    };
    let l = &c.latest;
    let age = s.now.saturating_duration_since(l.at);
    let window = c
        .earlier
        .map(|e| ms(l.at.saturating_duration_since(e.at).as_secs_f64()));
    let rate = |f: Count| per_s(c, f).map(round);
    json!({
        "core": i,
        "publishing": age <= CORE_STALE_AFTER,
        "snapshot_age_s": ms(age.as_secs_f64()),
        "backend": l.backend.name(),
        "overload_level": l.overload.level,
        "overload_stuck": l.overload.stuck,
        "overload_transitions_total": l.overload.transitions,
        "connections": l.engine.connections_open,
        "sessions": l.engine.sessions_open,
        "rate_window_s": window,
        "udp_in_per_s": rate(|c| c.engine.udp_in),
        "messages_in_per_s": rate(|c| c.engine.messages_to_shard),
        "messages_out_per_s": rate(messages_out),
        "handshakes_per_s": rate(|c| c.engine.handshakes),
        "retries_per_s": rate(|c| c.engine.retries_sent),
        "sessions_opened_per_s": rate(|c| c.engine.sessions_opened),
        "udp_in_total": l.engine.udp_in,
        "messages_in_total": l.engine.messages_to_shard,
        "messages_out_total": messages_out(l),
        "sessions_opened_total": l.engine.sessions_opened,
        "kernel_socket_drops_total": kernel,
    })
}

fn shard(s: &Sample, h: &ShardHealth) -> Value {
    let inbox: Map<String, Value> = Lane::ALL
        .iter()
        .map(|l| (l.name().to_owned(), h.inbox_depth[l.index()].into()))
        .collect();
    json!({
        "shard": h.shard.0,
        "overload_level": h.level,
        "tick_us": {"p50": h.tick_p50_us, "p99": h.tick_p99_us, "max": h.tick_max_us},
        "tick_budget_us": s.tick_budget_us,
        "tick_p99_over_budget": h.tick_p99_us > s.tick_budget_us,
        "ticks_total": h.ticks,
        "overruns_total": h.overruns,
        "players": h.players,
        "zones": h.zones,
        "inbox_depth": inbox,
        "ring_depth": h.ring_depth,
        "sojourn_min_us": h.sojourn_min_us,
        "stalled": h.stalled,
        "fenced": h.fenced,
        "stalls_total": h.stalls,
        "restarts_total": h.restarts,
        "heartbeat_age_s": h.heartbeat_age_us as f64 / 1e6,
    })
}

/// A lane's drops of one kind, read from a core's snapshot.
type LaneCount = fn(&CoreSnapshot, Lane) -> u64;

const ADMISSION: LaneCount = |c, l| c.engine.admit_dropped[l.index()];
const LINK: LaneCount = |c, l| c.ring_dropped(l);
const SHED: LaneCount =
    |c, l| c.link_drops.get(DropReason::Shed, l) + c.link_drops.shed_out[l.index()];
const CONGESTED: LaneCount = |c, l| c.engine.out_congested[l.index()];

fn lane_drops(c: &CoreSnapshot, l: Lane) -> u64 {
    ADMISSION(c, l) + LINK(c, l) + SHED(c, l) + CONGESTED(c, l)
}

fn lane(s: &Sample, lane: Lane) -> Value {
    let rate = |f: LaneCount| sum_per_lane(s, lane, f).map(round);
    let count = |f: LaneCount| -> u64 { published(s).map(|c| f(&c.latest, lane)).sum() };
    json!({
        "lane": lane.name(),
        "messages_in_per_s": rate(|c, l| c.engine.messages_in[l.index()]),
        "messages_out_per_s": rate(|c, l| c.engine.messages_out[l.index()]),
        "messages_in_total": count(|c, l| c.engine.messages_in[l.index()]),
        "messages_out_total": count(|c, l| c.engine.messages_out[l.index()]),
        "drops_per_s": rate(lane_drops),
        "admission_dropped_per_s": rate(ADMISSION),
        "link_dropped_per_s": rate(LINK),
        "shed_per_s": rate(SHED),
        "congested_per_s": rate(CONGESTED),
        "drops_total": count(lane_drops),
        "admission_dropped_total": count(ADMISSION),
        "link_dropped_total": count(LINK),
        "shed_total": count(SHED),
        "congested_total": count(CONGESTED),
    })
}

/// The drop counters of the cores, by stage and reason.
const CORE_DROPS: &[(&str, &str, Count)] = &[
    ("admission", "rate_limit", |c| {
        c.engine.admit_dropped.iter().sum()
    }),
    ("link", "shed_out", |c| c.link_drops.shed_out.iter().sum()),
    ("link", "deferred_expired", |c| {
        c.link_drops.deferred_expired
    }),
    ("link", "fenced", |c| c.link_drops.fenced_dropped),
    ("inbound", "before_welcome", |c| {
        c.engine.datagrams_before_welcome
    }),
    ("inbound", "malformed", |c| c.engine.malformed_datagrams),
    ("inbound", "oversize", |c| c.engine.oversize_datagrams),
    ("inbound", "control_type", |c| c.engine.control_datagrams),
    ("inbound", "blocked_source_port", |c| {
        c.engine.blocked_source_port
    }),
    ("outbound", "congested", |c| {
        c.engine.out_congested.iter().sum()
    }),
    ("outbound", "datagram", |c| c.engine.datagrams_out_dropped),
    ("outbound", "stream", |c| c.engine.stream_out_dropped),
    ("steer", "full", |c| c.steer.full),
    ("steer", "oversize", |c| c.steer.oversize),
];

fn drops(s: &Sample) -> Vec<Value> {
    let row = |stage: &str, reason: &str, total: u64, per_s: Option<f64>| json!({"stage": stage, "reason": reason, "total": total, "per_s": per_s.map(round)});
    let mut rows = Vec::new();
    for reason in DropReason::ALL {
        let f =
            move |c: &CoreSnapshot| Lane::ALL.iter().map(|&l| c.link_drops.get(reason, l)).sum();
        rows.push(row("link", reason.name(), total(s, f), sum_per_s(s, f)));
    }
    for &(stage, reason, f) in CORE_DROPS {
        rows.push(row(stage, reason, total(s, f), sum_per_s(s, f)));
    }
    let shard_total = |f: fn(&ShardHealth) -> u64| s.shards.iter().map(f).sum::<u64>();
    rows.push(row(
        "shard",
        "inbound_shed",
        shard_total(|h| h.inbound_shed.iter().sum()),
        None,
    ));
    rows.push(row(
        "shard",
        "outbound_lost",
        shard_total(|h| h.outbound_lost.iter().sum()),
        None,
    ));
    rows.push(row(
        "shard",
        "stale",
        shard_total(|h| h.stale_dropped),
        None,
    ));
    let kernel = s.socket_drops.iter().flatten().sum();
    rows.push(row("kernel", "socket", kernel, None));
    rows
}

/// The cores that have published, stale or not.
fn published(s: &Sample) -> impl Iterator<Item = &CoreReading> {
    s.cores.iter().flatten()
}

fn total(s: &Sample, f: impl Fn(&CoreSnapshot) -> u64) -> u64 {
    published(s).map(|c| f(&c.latest)).sum()
}

/// `f` per second between a core's earlier and latest snapshots; `None`
/// without an earlier one.
fn per_s(c: &CoreReading, f: impl Fn(&CoreSnapshot) -> u64) -> Option<f64> {
    let earlier = c.earlier.as_ref()?;
    let secs = c
        .latest
        .at
        .saturating_duration_since(earlier.at)
        .as_secs_f64();
    // Rates are for reading: f64's 53 bits are plenty for a delta.
    (secs > 0.0).then(|| f(&c.latest).saturating_sub(f(earlier)) as f64 / secs)
}

/// The sum of every core's rate of `f`; `None` when no core has one yet.
fn sum_per_s(s: &Sample, f: impl Fn(&CoreSnapshot) -> u64 + Copy) -> Option<f64> {
    published(s)
        .filter_map(|c| per_s(c, f))
        .reduce(|a, b| a + b)
        .map(round)
}

fn sum_per_lane(s: &Sample, lane: Lane, f: LaneCount) -> Option<f64> {
    published(s)
        .filter_map(|c| per_s(c, |snap| f(snap, lane)))
        .reduce(|a, b| a + b)
}

/// One decimal: a rate over a second or two has no more.
fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Seconds to the millisecond.
fn ms(secs: f64) -> f64 {
    (secs * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use lanegate_common::ids::ShardId;
    use lanegate_udp::BackendKind;

    use super::*;

    /// Two cores (one never published), one shard; core 0 counted 500
    /// datagrams, 300 messages to shards and 20 handshakes in the last
    /// second.
    fn sample() -> Sample {
        let now = Instant::now();
        let mut earlier = CoreSnapshot::empty(now - Duration::from_secs(1), BackendKind::IoUring);
        earlier.engine.udp_in = 1000;
        earlier.engine.messages_to_shard = 700;
        earlier.engine.admit_dropped[Lane::Bulk.index()] = 10;
        let mut latest = earlier;
        latest.at = now;
        latest.engine.udp_in = 1500;
        latest.engine.messages_to_shard = 1000;
        latest.engine.datagrams_out = 250;
        latest.engine.stream_messages_out = 50;
        latest.engine.handshakes = 20;
        latest.engine.connections_open = 12;
        latest.engine.sessions_open = 11;
        latest.engine.admit_dropped[Lane::Bulk.index()] = 14;
        latest.link_drops.add(DropReason::RingFull, Lane::Normal, 3);
        latest.link_drops.add(DropReason::Shed, Lane::Bulk, 2);
        latest.overload.level = 1;
        latest.engine.messages_in[Lane::Critical.index()] = 40;
        latest.engine.messages_out[Lane::Critical.index()] = 30;
        // Before the window: 1000 µs; in it: 100 µs.
        earlier.latency[Lane::Critical.index()].record_us(1_000);
        latest.latency[Lane::Critical.index()].record_us(1_000);
        latest.latency[Lane::Critical.index()].record_us(100);
        let mut shard_latency = lanegate_shard::latency::ShardLatency::default();
        shard_latency.service[Lane::High.index()].record_us(2_000);
        shard_latency.tick.record_us(5_000);
        Sample {
            now,
            cores: vec![
                Some(CoreReading {
                    latest,
                    earlier: Some(earlier),
                }),
                None,
            ],
            shards: vec![ShardHealth {
                shard: ShardId(0),
                tick_p50_us: 800,
                tick_p99_us: 12_000,
                tick_max_us: 15_000,
                players: 11,
                zones: 2,
                inbox_depth: [0, 1, 2, 3],
                inbound_shed: [0, 0, 0, 5],
                ..ShardHealth::default()
            }],
            shard_latency: vec![shard_latency],
            socket_drops: vec![Some(7), None],
            draining: false,
            tick_budget_us: 10_000,
            uptime: Duration::from_secs(90),
            started_unix_s: 1_700_000_000.0,
            monitor: None,
        }
    }

    fn doc() -> Value {
        let mut out = String::new();
        render(&sample(), &mut out);
        serde_json::from_str(&out).expect("valid JSON")
    }

    #[test]
    fn top_level_and_verdict_match_the_text_status() {
        let d = doc();
        assert_eq!(d["schema"], 1);
        assert_eq!(d["version"], VERSION);
        assert_eq!(d["uptime_s"], 90.0);
        assert_eq!(d["now_unix_s"], 1_700_000_090.0);
        assert_eq!(d["draining"], false);
        assert_eq!(d["ready"], true);
        assert_eq!(d["backends"], json!(["io_uring"]));
        assert_eq!(d["verdict"]["ok"], false);
        let reasons: Vec<String> = status::verdict(&sample());
        assert_eq!(d["verdict"]["reasons"], json!(reasons));
        assert!(reasons.contains(&"core 1 not publishing yet".to_owned()));
    }

    #[test]
    fn cores_carry_rates_from_the_earlier_snapshot() {
        let d = doc();
        let c = &d["cores"][0];
        assert_eq!(c["publishing"], true);
        assert_eq!(c["backend"], "io_uring");
        assert_eq!(c["overload_level"], 1);
        assert_eq!(c["connections"], 12);
        assert_eq!(c["sessions"], 11);
        assert_eq!(c["rate_window_s"], 1.0);
        assert_eq!(c["udp_in_per_s"], 500.0);
        assert_eq!(c["messages_in_per_s"], 300.0);
        assert_eq!(c["messages_out_per_s"], 300.0);
        assert_eq!(c["handshakes_per_s"], 20.0);
        assert_eq!(c["udp_in_total"], 1500);
        assert_eq!(c["kernel_socket_drops_total"], 7);
        // A core that has not published: every key, as null.
        let silent = &d["cores"][1];
        assert_eq!(silent["publishing"], false);
        assert_eq!(silent["udp_in_per_s"], Value::Null);
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(c), keys(silent));
        let t = &d["totals"];
        assert_eq!(t["connections"], 12);
        assert_eq!(t["players"], 11);
        assert_eq!(t["messages_in_per_s"], 300.0);
        // bulk: 4 over admission and 2 shed; normal: 3 lost on the ring.
        assert_eq!(t["drops_per_s"], 9.0);
    }

    #[test]
    fn shards_lanes_and_drops() {
        let d = doc();
        let s = &d["shards"][0];
        assert_eq!(s["shard"], 0);
        assert_eq!(
            s["tick_us"],
            json!({"p50": 800, "p99": 12_000, "max": 15_000})
        );
        assert_eq!(s["tick_budget_us"], 10_000);
        assert_eq!(s["tick_p99_over_budget"], true);
        assert_eq!(s["inbox_depth"]["bulk"], 3);
        let lanes: Vec<&str> = d["lanes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["lane"].as_str().unwrap())
            .collect();
        assert_eq!(lanes, ["critical", "high", "normal", "bulk"]);
        let bulk = &d["lanes"][3];
        assert_eq!(bulk["admission_dropped_per_s"], 4.0);
        assert_eq!(bulk["shed_per_s"], 2.0);
        assert_eq!(bulk["drops_per_s"], 6.0);
        assert_eq!(bulk["admission_dropped_total"], 14);
        assert_eq!(d["lanes"][2]["link_dropped_total"], 3);
        assert_eq!(bulk["messages_in_per_s"], 0.0);
        assert_eq!(d["lanes"][0]["messages_in_per_s"], 40.0);
        assert_eq!(d["lanes"][0]["messages_out_total"], 30);
        let find = |stage: &str, reason: &str| {
            d["drops"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["stage"] == stage && r["reason"] == reason)
                .unwrap_or_else(|| panic!("no {stage}/{reason}"))
                .clone()
        };
        assert_eq!(find("admission", "rate_limit")["per_s"], 4.0);
        assert_eq!(find("link", "ring_full")["total"], 3);
        assert_eq!(find("link", "shed")["per_s"], 2.0);
        assert_eq!(find("shard", "inbound_shed")["total"], 5);
        assert_eq!(find("shard", "inbound_shed")["per_s"], Value::Null);
        assert_eq!(find("kernel", "socket")["total"], 7);
        assert_eq!(
            d["kernel_socket_drops"],
            json!({"total": 7, "per_core": [7, null]})
        );
    }

    #[test]
    fn latency_is_the_gateway_window_and_the_shards_since_start() {
        let d = doc();
        let critical = &d["latency"]["lanes"][0];
        assert_eq!(critical["lane"], "critical");
        // Only the window's 100 µs sample, in (50, 100].
        let p99 = critical["gateway_us"]["p99"].as_f64().unwrap();
        assert!(p99 > 50.0 && p99 <= 100.0, "{p99}");
        assert_eq!(critical["shard_us"]["p50"], Value::Null);
        let high = &d["latency"]["lanes"][1];
        assert!(high["shard_us"]["p99"].as_f64().unwrap() > 1_000.0);
        assert_eq!(d["latency"]["shards"][0]["tick_us"]["max"], 5_000.0);
    }

    #[test]
    fn the_monitors_sections_come_from_its_reading() {
        use super::super::monitor_view::{AlertReading, ForecastReading};
        let mut s = sample();
        s.monitor = Some(MonitorReading {
            learning: false,
            progress: 1.0,
            alerts: vec![AlertReading {
                series: "connections".into(),
                cause: "band",
                since_unix_s: 1_700_000_000,
                value: 900.0,
                expected: 100.0,
                low: 50.0,
                high: 150.0,
                score: 0.99,
            }],
            forecasts: vec![ForecastReading {
                series: "connections".into(),
                points: vec![(1_700_000_600, 600, 120.0, 180.0)],
            }],
            capacity_connections: 10_000.0,
            history: vec![(1_700_000_000, 900.0)],
            ..MonitorReading::default()
        });
        let d = document(&s);
        assert_eq!(d["learning"], json!({"learning": false, "progress": 1.0}));
        assert_eq!(d["alerts"][0]["series"], "connections");
        assert_eq!(d["alerts"][0]["cause"], "band");
        assert_eq!(d["forecast"]["capacity"]["connections"], 10_000.0);
        assert_eq!(d["forecast"]["series"][0]["points"][0]["upper"], 180.0);
        assert_eq!(d["forecast"]["series"][0]["history"][0]["value"], 900.0);
    }

    #[test]
    fn the_monitors_sections_are_reserved_as_null() {
        let d = doc();
        for key in ["learning", "alerts", "forecast"] {
            assert!(d.as_object().unwrap().contains_key(key), "{key}");
            assert_eq!(d[key], Value::Null, "{key}");
        }
    }

    #[test]
    fn a_gateway_before_its_first_publish_is_still_a_document() {
        let mut s = sample();
        s.cores = vec![None];
        s.shards.clear();
        s.socket_drops = vec![None];
        let d = document(&s);
        assert_eq!(d["totals"]["udp_in_per_s"], Value::Null);
        assert_eq!(d["totals"]["connections"], 0);
        assert_eq!(d["backends"], json!([]));
        assert_eq!(d["kernel_socket_drops"]["total"], Value::Null);
    }
}
