//! `GET /metrics`: a [`Sample`] in the Prometheus text format, encoded by
//! `prometheus-client`.
//!
//! The numbers already live in the cores' and shards' snapshots, so nothing
//! is registered ahead of time: a [`Collector`] walks the sample on each
//! scrape. Names follow Prometheus practice: `lanegate_` first, the unit
//! last (`prometheus-client` appends `_total` to counters and the unit
//! suffix it is given), labels `core`, `lane`, `shard`, `backend` and, for
//! counters split by cause, `reason`.
//!
//! `prometheus-client` writes OpenMetrics, which Prometheus asks for in its
//! `Accept` header. Everyone else (curl, older scrapers, `promtool check
//! metrics`) gets the classic text format 0.0.4: the same samples, with
//! counter families named by their `_total` samples and without the
//! OpenMetrics-only `# UNIT` and `# EOF` lines ([`Format`]). Only gauges
//! and counters are used, so both formats carry the same data.

use std::fmt::{self, Write};

use lanegate_common::lanes::Lane;
use lanegate_common::link::ShardHealth;
use lanegate_shard::port::DropReason;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use super::{CoreSnapshot, Sample, VERSION};

/// The exposition formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text, for clients that accept it (Prometheus).
    OpenMetrics,
    /// The Prometheus text format 0.0.4, for everyone else.
    Text,
}

impl Format {
    /// The format a request's `Accept` header asks for.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }

    /// The response's `Content-Type`.
    pub const fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// Appends `sample` to `out` in `format`.
pub fn render(sample: &Sample, format: Format, out: &mut String) -> fmt::Result {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SampleCollector(sample.clone())));
    match format {
        Format::OpenMetrics => prometheus_client::encoding::text::encode(out, &registry),
        Format::Text => {
            let mut open = String::new();
            prometheus_client::encoding::text::encode(&mut open, &registry)?;
            to_text_004(&open, out);
            Ok(())
        }
    }
}

/// Rewrites `prometheus-client`'s OpenMetrics output as text format 0.0.4.
/// A family's `# HELP` comes before its `# TYPE`, so it is held until the
/// type says whether the name needs `_total`.
fn to_text_004(open: &str, out: &mut String) {
    let mut help: Option<(&str, &str)> = None;
    for line in open.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = rest.split_once(' ').or(Some((rest, "")));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let suffix = if ty == "counter" { "_total" } else { "" };
            if let Some((_, text)) = help.take() {
                let _ = writeln!(out, "# HELP {name}{suffix} {text}");
            }
            let _ = writeln!(out, "# TYPE {name}{suffix} {ty}");
            continue;
        }
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
}

type Labels = Vec<(&'static str, String)>;

/// A per-core counter: name (without `_total`), help, value.
type CoreCounter = (&'static str, &'static str, fn(&CoreSnapshot) -> u64);

/// Counters with one series per core.
const CORE_COUNTERS: &[CoreCounter] = &[
    (
        "lanegate_udp_datagrams_in",
        "UDP datagrams received (after GRO splitting), including those steered here.",
        |s| s.engine.udp_in,
    ),
    (
        "lanegate_quic_packets_undecodable",
        "UDP datagrams the QUIC endpoint dropped without an event: unparseable, unknown \
         connection id, undecryptable or short Initial (garbage or a flood).",
        |s| s.engine.packets_undecodable,
    ),
    (
        "lanegate_uni_streams_ended",
        "Client uni streams that ended (finished or reset); each counts toward ABUSE as churn.",
        |s| s.engine.uni_streams_ended,
    ),
    (
        "lanegate_quic_datagrams_in",
        "QUIC DATAGRAM frames received from clients.",
        |s| s.engine.datagrams_in,
    ),
    (
        "lanegate_sessions_opened",
        "Sessions established (ticket accepted).",
        |s| s.engine.sessions_opened,
    ),
    (
        "lanegate_sessions_replaced",
        "Sessions closed with SESSION_REPLACED: a newer session of the same player was welcomed.",
        |s| s.engine.sessions_replaced,
    ),
    (
        "lanegate_quic_retries_sent",
        "QUIC Retry packets sent to unvalidated addresses while Retry was on.",
        |s| s.engine.retries_sent,
    ),
    (
        "lanegate_retries_unvalidated_full",
        "Retries sent because gateway.unvalidated_connections_max connections were not yet validated.",
        |s| s.engine.unvalidated_full,
    ),
    (
        "lanegate_retry_engaged",
        "Times Retry was switched on: unvalidated handshakes passed gateway.retry_above_handshakes_per_s.",
        |s| s.engine.retry_engaged,
    ),
    (
        "lanegate_blocked_source_port_dropped",
        "UDP datagrams dropped unread because their source port is in gateway.blocked_source_ports.",
        |s| s.engine.blocked_source_port,
    ),
    (
        "lanegate_bans_added",
        "Bans of an address or a player added (or extended) after an ABUSE close.",
        |s| s.engine.bans_added,
    ),
    (
        "lanegate_bans_evicted",
        "Bans forgotten before their end because admission.bans_max were held.",
        |s| s.engine.bans_evicted,
    ),
    (
        "lanegate_messages_to_shard",
        "Game messages forwarded to shards.",
        |s| s.engine.messages_to_shard,
    ),
    (
        "lanegate_datagrams_out",
        "Game messages sent to clients as QUIC datagrams.",
        |s| s.engine.datagrams_out,
    ),
    (
        "lanegate_stream_messages_out",
        "Game and control messages written to control streams.",
        |s| s.engine.stream_messages_out,
    ),
    (
        "lanegate_overload_transitions",
        "Steps of the core's degradation ladder, up and down.",
        |s| s.overload.transitions,
    ),
    (
        "lanegate_link_joins_refused",
        "Session joins the shard links refused: the shard's control backlog was full.",
        |s| s.link_drops.joins_refused,
    ),
    (
        "lanegate_link_fenced_dropped",
        "Entries a failed-over shard sent after its fence, dropped unread: a stuck game that woke up.",
        |s| s.link_drops.fenced_dropped,
    ),
    (
        "lanegate_failover_sessions_rehomed",
        "Sessions re-joined to a healthy shard after theirs was failed over, and sent ZONE_RESET.",
        |s| s.engine.sessions_rehomed,
    ),
    (
        "lanegate_shard_unavailable",
        "Sessions closed and Hellos refused with SHARD_UNAVAILABLE: no shard could take the player.",
        |s| s.engine.shard_unavailable,
    ),
    (
        "lanegate_quic_responses_dropped",
        "Stateless QUIC responses dropped because their queue was full.",
        |s| s.engine.responses_dropped,
    ),
    (
        "lanegate_steered_out",
        "Packets handed to the owning core's steering ring.",
        |s| s.steer.out,
    ),
    (
        "lanegate_steered_in",
        "Packets other cores steered to this one.",
        |s| s.steer.r#in,
    ),
    (
        "lanegate_tx_blocked",
        "Transmits the IO backend could not take at once (retried next turn).",
        |s| s.tx_blocked,
    ),
    (
        "lanegate_recv_transient_errors",
        "Receives that failed for a passing reason (signal, ICMP error).",
        |s| s.recv_transient,
    ),
];

/// A per-core counter split by `reason`.
type ReasonCounter = (
    &'static str,
    &'static str,
    &'static [(&'static str, fn(&CoreSnapshot) -> u64)],
);

const REASON_COUNTERS: &[ReasonCounter] = &[
    (
        "lanegate_tickets_refused",
        "Hellos refused for their ticket, its zone, the protocol version, or a ban on their player.",
        &[
            ("bad", |s| s.engine.tickets_bad),
            ("expired", |s| s.engine.tickets_expired),
            ("version", |s| s.engine.unsupported_versions),
            ("unknown_zone", |s| s.engine.unknown_zones),
            ("banned", |s| s.engine.hellos_banned),
        ],
    ),
    (
        "lanegate_handshakes_refused",
        "New connections turned away: refused at QUIC level (draining or no slot), \
         over the per-IP handshake limit (sent a Retry), from a banned address, over the per-IP \
         connection limit (refused), or closed with SERVER_FULL.",
        &[
            ("refused", |s| s.engine.refused),
            ("rate_limited", |s| s.engine.handshakes_ignored),
            ("banned", |s| s.engine.handshakes_banned),
            ("per_ip", |s| s.engine.refused_per_ip),
            ("server_full", |s| s.engine.server_full),
        ],
    ),
    (
        "lanegate_connections_closed",
        "Connections closed by the gateway or lost, by cause.",
        &[
            ("hello_timeout", |s| s.engine.hello_timeouts),
            ("datagrams_required", |s| s.engine.datagrams_required),
            ("abuse", |s| s.engine.admission_closes),
            ("frame_stall", |s| s.engine.frame_stalls),
            ("protocol_violation", |s| s.engine.protocol_violations),
            ("malformed_stream", |s| s.engine.malformed_streams),
            ("lost", |s| s.engine.connections_lost),
            ("handshake_timeout", |s| s.engine.handshake_timeouts),
        ],
    ),
    (
        "lanegate_stateless_replies_sent",
        "Packets the QUIC endpoint sent without a connection, by kind: version negotiation, \
         stateless reset, Retry, refusal (CONNECTION_CLOSE in an Initial).",
        &[
            ("version_negotiation", |s| {
                s.engine.stateless_replies.version_negotiation
            }),
            ("reset", |s| s.engine.stateless_replies.reset),
            ("retry", |s| s.engine.stateless_replies.retry),
            ("refusal", |s| s.engine.stateless_replies.refusal),
        ],
    ),
    (
        "lanegate_datagrams_in_dropped",
        "Inbound datagrams dropped before classification, by cause.",
        &[
            ("before_welcome", |s| s.engine.datagrams_before_welcome),
            ("malformed", |s| s.engine.malformed_datagrams),
            ("oversize", |s| s.engine.oversize_datagrams),
            ("control_type", |s| s.engine.control_datagrams),
        ],
    ),
    (
        "lanegate_messages_out_dropped",
        "Outbound messages dropped (datagram too large or refused; stream backlog full).",
        &[
            ("datagram", |s| s.engine.datagrams_out_dropped),
            ("stream", |s| s.engine.stream_out_dropped),
        ],
    ),
    (
        "lanegate_shard_messages_dropped",
        "Messages from shards the core could not deliver.",
        &[
            ("unknown_session", |s| s.engine.unknown_session),
            ("unhandled", |s| s.engine.unhandled_from_shard),
        ],
    ),
    (
        "lanegate_steer_dropped",
        "Packets for another core dropped: its ring was full, or the packet too large.",
        &[
            ("full", |s| s.steer.full),
            ("oversize", |s| s.steer.oversize),
        ],
    ),
];

/// A per-core counter with one series per lane.
type LaneCounter = (&'static str, &'static str, fn(&CoreSnapshot, Lane) -> u64);

const LANE_COUNTERS: &[LaneCounter] = &[(
    "lanegate_admission_dropped",
    "Game messages over their lane's per-connection rate, dropped.",
    |s, l| s.engine.admit_dropped[l.index()],
)];

#[derive(Debug)]
struct SampleCollector(Sample);

impl Collector for SampleCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        let s = &self.0;
        let cores: Vec<(String, &CoreSnapshot)> = s
            .cores
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| (i.to_string(), &c.latest)))
            .collect();
        let core = |c: &str| -> Labels { vec![("core", c.to_owned())] };

        // Info-style gauges (always 1, the facts in labels): the classic
        // text format has no info type.
        gauge(
            &mut enc,
            "lanegate_build_info",
            "The running version.",
            None,
            vec![(vec![("version", VERSION.to_owned())], 1u64)],
        )?;
        gauge(
            &mut enc,
            "lanegate_process_start_time",
            "When the process started, seconds since the Unix epoch.",
            Some(&Unit::Seconds),
            vec![(Labels::new(), s.started_unix_s)],
        )?;
        gauge(
            &mut enc,
            "lanegate_draining",
            "1 once a SIGTERM/SIGINT started the drain, else 0.",
            None,
            vec![(Labels::new(), i64::from(s.draining))],
        )?;
        gauge(
            &mut enc,
            "lanegate_core_info",
            "One series per gateway core, naming its IO backend.",
            None,
            cores
                .iter()
                .map(|(c, snap)| {
                    let labels = vec![
                        ("core", c.clone()),
                        ("backend", snap.backend.name().to_owned()),
                    ];
                    (labels, 1u64)
                })
                .collect(),
        )?;
        gauge(
            &mut enc,
            "lanegate_core_snapshot_age",
            "Age of the core's last published counters; grows if the core is stuck.",
            Some(&Unit::Seconds),
            cores
                .iter()
                .map(|(c, snap)| {
                    let age = s.now.saturating_duration_since(snap.at).as_secs_f64();
                    (core(c), age)
                })
                .collect(),
        )?;
        gauge(
            &mut enc,
            "lanegate_connections_open",
            "QUIC connections in the core's table (handshaking or established).",
            None,
            cores
                .iter()
                .map(|(c, snap)| (core(c), snap.engine.connections_open))
                .collect(),
        )?;
        gauge(
            &mut enc,
            "lanegate_overload_level",
            "The core's degradation level: 0 normal, 1 shed bulk, 2 defer normal, 3 thin high, 4 protect.",
            None,
            cores
                .iter()
                .map(|(c, snap)| (core(c), u64::from(snap.overload.level)))
                .collect(),
        )?;
        gauge(
            &mut enc,
            "lanegate_overload_stuck",
            "1 while the core's level above normal has been held past overload.stuck_after_ms: scale out or drain.",
            None,
            cores
                .iter()
                .map(|(c, snap)| (core(c), u64::from(snap.overload.stuck)))
                .collect(),
        )?;
        gauge(
            &mut enc,
            "lanegate_sessions_open",
            "Sessions established and open.",
            None,
            cores
                .iter()
                .map(|(c, snap)| (core(c), snap.engine.sessions_open))
                .collect(),
        )?;
        for &(name, help, value) in CORE_COUNTERS {
            counter(
                &mut enc,
                name,
                help,
                cores.iter().map(|(c, snap)| (core(c), value(snap))),
            )?;
        }
        for &(name, help, reasons) in REASON_COUNTERS {
            counter(
                &mut enc,
                name,
                help,
                cores.iter().flat_map(|(c, snap)| {
                    reasons.iter().map(move |&(reason, value)| {
                        let labels = vec![("core", c.clone()), ("reason", reason.to_owned())];
                        (labels, value(snap))
                    })
                }),
            )?;
        }
        for &(name, help, value) in LANE_COUNTERS {
            counter(
                &mut enc,
                name,
                help,
                cores.iter().flat_map(|(c, snap)| {
                    Lane::ALL.into_iter().map(move |lane| {
                        let labels = vec![("core", c.clone()), ("lane", lane.name().to_owned())];
                        (labels, value(snap, lane))
                    })
                }),
            )?;
        }
        counter(
            &mut enc,
            "lanegate_link_dropped",
            "Game messages the links to the shards dropped, by lane and reason \
             (ring_full, backlog, hold_full, pool_empty, too_large, shard_lost, shed); each drop is counted once.",
            cores.iter().flat_map(|(c, snap)| {
                DropReason::ALL.into_iter().flat_map(move |reason| {
                    Lane::ALL.into_iter().map(move |lane| {
                        let labels = vec![
                            ("core", c.clone()),
                            ("lane", lane.name().to_owned()),
                            ("reason", reason.name().to_owned()),
                        ];
                        (labels, snap.link_drops.get(reason, lane))
                    })
                })
            }),
        )?;
        counter(
            &mut enc,
            "lanegate_link_shed_out",
            "Game messages from the shards the degradation ladder shed before delivery, by lane.",
            cores.iter().flat_map(|(c, snap)| {
                Lane::ALL.into_iter().map(move |lane| {
                    let labels = vec![("core", c.clone()), ("lane", lane.name().to_owned())];
                    (labels, snap.link_drops.shed_out[lane.index()])
                })
            }),
        )?;
        counter(
            &mut enc,
            "lanegate_udp_socket_drops",
            "Datagrams the kernel dropped for the core's socket (receive buffer full), \
             from /proc/net/udp; absent where that table is not readable.",
            s.socket_drops
                .iter()
                .enumerate()
                .filter_map(|(i, d)| d.map(|d| (core(&i.to_string()), d))),
        )?;
        encode_shards(&mut enc, s)
    }
}

/// A shard tick statistic: name (unit appended), help, value in µs.
type ShardTick = (&'static str, &'static str, fn(&ShardHealth) -> u32);

fn encode_shards(enc: &mut DescriptorEncoder<'_>, s: &Sample) -> fmt::Result {
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

fn counter(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: impl Iterator<Item = (Labels, u64)>,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge<N: EncodeGaugeValue>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    rows: Vec<(Labels, N)>,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    for (labels, v) in rows {
        if labels.is_empty() {
            m.encode_gauge(&v)?;
        } else {
            ConstGauge::new(v).encode(m.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use lanegate_common::ids::ShardId;
    use lanegate_udp::BackendKind;

    use super::super::CoreReading;
    use super::*;

    fn sample() -> Sample {
        let now = Instant::now();
        let mut core = CoreSnapshot::empty(now, BackendKind::IoUring);
        core.engine.sessions_opened = 3;
        core.engine.sessions_open = 2;
        core.engine.connections_open = 2;
        core.engine.udp_in = 1234;
        core.engine.admit_dropped[Lane::Bulk.index()] = 7;
        core.engine.tickets_expired = 1;
        core.link_drops.add(DropReason::Backlog, Lane::High, 2);
        core.link_drops.add(DropReason::RingFull, Lane::High, 1);
        core.link_drops.fenced_dropped = 5;
        core.link_drops.shed_out[Lane::Bulk.index()] = 4;
        core.overload = crate::metrics::OverloadReading {
            level: 2,
            transitions: 3,
            stuck: false,
        };
        core.engine.sessions_rehomed = 6;
        core.engine.shard_unavailable = 1;
        core.engine.sessions_replaced = 4;
        core.engine.handshakes_banned = 5;
        core.engine.bans_added = 2;
        core.engine.blocked_source_port = 3;
        core.engine.retries_sent = 11;
        core.engine.packets_undecodable = 9;
        core.engine.stateless_replies.reset = 4;
        core.engine.handshake_timeouts = 8;
        Sample {
            now,
            cores: vec![
                Some(CoreReading {
                    latest: core,
                    earlier: None,
                }),
                None,
            ],
            shards: vec![ShardHealth {
                shard: ShardId(0),
                ticks: 99,
                overruns: 4,
                tick_p50_us: 1500,
                tick_p99_us: 12_000,
                tick_max_us: 20_000,
                stalled: true,
                stalls: 1,
                restarts: 2,
                fenced: true,
                heartbeat_age_us: 2_500_000,
                level: 2,
                shed_out: 7,
                ..ShardHealth::default()
            }],
            socket_drops: vec![Some(17), Some(3)],
            draining: false,
            tick_budget_us: 10_000,
            uptime: Duration::from_secs(5),
            started_unix_s: 1_700_000_000.5,
        }
    }

    fn text(s: &Sample) -> String {
        let mut out = String::new();
        render(s, Format::OpenMetrics, &mut out).unwrap();
        out
    }

    #[test]
    fn names_units_and_labels_follow_prometheus_practice() {
        let t = text(&sample());
        for line in [
            "# TYPE lanegate_sessions_opened counter",
            "lanegate_sessions_opened_total{core=\"0\"} 3",
            "lanegate_sessions_open{core=\"0\"} 2",
            "lanegate_connections_open{core=\"0\"} 2",
            "lanegate_udp_datagrams_in_total{core=\"0\"} 1234",
            "lanegate_admission_dropped_total{core=\"0\",lane=\"bulk\"} 7",
            "lanegate_admission_dropped_total{core=\"0\",lane=\"critical\"} 0",
            "lanegate_link_dropped_total{core=\"0\",lane=\"high\",reason=\"ring_full\"} 1",
            "lanegate_link_dropped_total{core=\"0\",lane=\"high\",reason=\"backlog\"} 2",
            "lanegate_link_dropped_total{core=\"0\",lane=\"critical\",reason=\"ring_full\"} 0",
            "lanegate_link_joins_refused_total{core=\"0\"} 0",
            "lanegate_overload_level{core=\"0\"} 2",
            "lanegate_overload_stuck{core=\"0\"} 0",
            "lanegate_overload_transitions_total{core=\"0\"} 3",
            "lanegate_link_shed_out_total{core=\"0\",lane=\"bulk\"} 4",
            "lanegate_tickets_refused_total{core=\"0\",reason=\"expired\"} 1",
            "lanegate_core_info{core=\"0\",backend=\"io_uring\"} 1",
            "lanegate_build_info{version=\"0.1.0\"} 1",
            "lanegate_draining 0",
            "# UNIT lanegate_process_start_time_seconds seconds",
            "lanegate_process_start_time_seconds 1700000000.5",
            "lanegate_shard_ticks_total{shard=\"0\"} 99",
            "lanegate_shard_tick_overruns_total{shard=\"0\"} 4",
            "lanegate_shard_tick_p50_seconds{shard=\"0\"} 0.0015",
            "lanegate_shard_tick_p99_seconds{shard=\"0\"} 0.012",
            "lanegate_shard_tick_max_seconds{shard=\"0\"} 0.02",
            "lanegate_shard_tick_budget_seconds{shard=\"0\"} 0.01",
            "lanegate_shard_stalled{shard=\"0\"} 1",
            "lanegate_shard_stalls_total{shard=\"0\"} 1",
            "lanegate_shard_restarts_total{shard=\"0\"} 2",
            "lanegate_shard_inbox_depth{shard=\"0\",lane=\"normal\"} 0",
            "lanegate_shard_failovers_total{shard=\"0\"} 1",
            "lanegate_shards_available 0",
            "lanegate_shard_heartbeat_age_seconds{shard=\"0\"} 2.5",
            "lanegate_link_fenced_dropped_total{core=\"0\"} 5",
            "lanegate_shard_overload_level{shard=\"0\"} 2",
            "lanegate_shard_shed_out_total{shard=\"0\"} 7",
            "lanegate_failover_sessions_rehomed_total{core=\"0\"} 6",
            "lanegate_shard_unavailable_total{core=\"0\"} 1",
            "lanegate_sessions_replaced_total{core=\"0\"} 4",
            "lanegate_handshakes_refused_total{core=\"0\",reason=\"banned\"} 5",
            "lanegate_bans_added_total{core=\"0\"} 2",
            "lanegate_blocked_source_port_dropped_total{core=\"0\"} 3",
            "lanegate_quic_retries_sent_total{core=\"0\"} 11",
            "lanegate_quic_packets_undecodable_total{core=\"0\"} 9",
            "lanegate_stateless_replies_sent_total{core=\"0\",reason=\"reset\"} 4",
            "lanegate_stateless_replies_sent_total{core=\"0\",reason=\"retry\"} 0",
            "lanegate_connections_closed_total{core=\"0\",reason=\"handshake_timeout\"} 8",
            "lanegate_connections_closed_total{core=\"0\",reason=\"lost\"} 0",
            // Kernel drops come per socket, whether or not its core published.
            "lanegate_udp_socket_drops_total{core=\"0\"} 17",
            "lanegate_udp_socket_drops_total{core=\"1\"} 3",
        ] {
            assert!(t.lines().any(|l| l == line), "missing `{line}` in\n{t}");
        }
        assert!(t.ends_with("# EOF\n"));
        // A core that has not published yet has no series, not zeros
        // (the kernel's drops of its socket aside).
        let unpublished = t
            .lines()
            .filter(|l| l.contains("core=\"1\""))
            .filter(|l| !l.starts_with("lanegate_udp_socket_drops_total"));
        assert_eq!(unpublished.count(), 0, "{t}");
    }

    #[test]
    fn every_family_has_help_and_type_and_a_lanegate_name() {
        let t = text(&sample());
        let types: Vec<&str> = t.lines().filter(|l| l.starts_with("# TYPE ")).collect();
        let helps = t.lines().filter(|l| l.starts_with("# HELP ")).count();
        assert_eq!(types.len(), helps);
        assert!(types.len() > 40, "{}", types.len());
        for ty in types {
            let name = ty.split(' ').nth(2).unwrap();
            assert!(name.starts_with("lanegate_"), "{ty}");
            assert!(!name.ends_with("_total"), "the encoder adds _total: {ty}");
        }
    }

    #[test]
    fn classic_text_names_counter_families_by_their_samples() {
        let mut t = String::new();
        render(&sample(), Format::Text, &mut t).unwrap();
        let open = text(&sample());
        for line in [
            "# HELP lanegate_sessions_opened_total Sessions established (ticket accepted).",
            "# TYPE lanegate_sessions_opened_total counter",
            "lanegate_sessions_opened_total{core=\"0\"} 3",
            "# TYPE lanegate_sessions_open gauge",
            "# TYPE lanegate_process_start_time_seconds gauge",
            "# TYPE lanegate_build_info gauge",
        ] {
            assert!(t.lines().any(|l| l == line), "missing `{line}` in\n{t}");
        }
        assert!(!t.contains("# UNIT") && !t.contains("# EOF"), "{t}");
        // The same samples, in the same order.
        let samples = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| !l.starts_with('#'))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(samples(&t), samples(&open));
        for ty in t.lines().filter(|l| l.starts_with("# TYPE ")) {
            assert!(
                !ty.ends_with(" info") && !ty.ends_with(" counter") || ty.contains("_total "),
                "{ty}"
            );
        }
    }

    #[test]
    fn accept_picks_the_format() {
        assert_eq!(Format::from_accept(None), Format::Text);
        assert_eq!(Format::from_accept(Some("*/*")), Format::Text);
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                          version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::from_accept(Some(prometheus)), Format::OpenMetrics);
    }
}
