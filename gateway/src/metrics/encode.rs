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
use lanegate_shard::port::DropReason;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use super::core_families::{CORE_COUNTERS, LANE_COUNTERS, REASON_COUNTERS};
use super::latency_families::encode_latency;
use super::monitor_families::encode_monitor;
use super::shard_families::encode_shards;
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

pub(super) type Labels = Vec<(&'static str, String)>;

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
        encode_shards(&mut enc, s)?;
        encode_latency(&mut enc, s)?;
        match &s.monitor {
            Some(m) => encode_monitor(&mut enc, m),
            None => Ok(()),
        }
    }
}

pub(super) fn counter(
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

pub(super) fn gauge<N: EncodeGaugeValue>(
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
    use lanegate_common::link::ShardHealth;
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
        core.latency[Lane::High.index()].record_us(40);
        core.latency[Lane::High.index()].record_us(700);
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
            shard_latency: vec![{
                let mut l = lanegate_shard::latency::ShardLatency::default();
                l.service[Lane::Critical.index()].record_us(1_500);
                l.tick.record_us(3_000);
                l.tick.record_us(30_000);
                l
            }],
            socket_drops: vec![Some(17), Some(3)],
            draining: false,
            tick_budget_us: 10_000,
            uptime: Duration::from_secs(5),
            started_unix_s: 1_700_000_000.5,
            monitor: None,
        }
    }

    #[test]
    fn latency_histograms_are_cumulative_in_seconds() {
        let t = text(&sample());
        for line in [
            "# TYPE lanegate_gateway_latency_seconds histogram",
            "# UNIT lanegate_gateway_latency_seconds seconds",
            "lanegate_gateway_latency_seconds_bucket{le=\"0.00005\",lane=\"high\"} 1",
            "lanegate_gateway_latency_seconds_bucket{le=\"0.0005\",lane=\"high\"} 1",
            "lanegate_gateway_latency_seconds_bucket{le=\"0.001\",lane=\"high\"} 2",
            "lanegate_gateway_latency_seconds_bucket{le=\"+Inf\",lane=\"high\"} 2",
            "lanegate_gateway_latency_seconds_count{lane=\"high\"} 2",
            "lanegate_gateway_latency_seconds_sum{lane=\"high\"} 0.00074",
            "lanegate_gateway_latency_seconds_count{lane=\"critical\"} 0",
            "lanegate_shard_service_seconds_bucket{le=\"0.002\",lane=\"critical\"} 1",
            "lanegate_shard_tick_seconds_bucket{le=\"0.005\",shard=\"0\"} 1",
            "lanegate_shard_tick_seconds_count{shard=\"0\"} 2",
        ] {
            assert!(t.contains(line), "missing {line:?} in\n{t}");
        }
        // The classic text format keeps them as histograms, without units.
        let mut plain = String::new();
        render(&sample(), Format::Text, &mut plain).unwrap();
        assert!(plain.contains("# TYPE lanegate_shard_tick_seconds histogram"));
        assert!(!plain.contains("# UNIT"));
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
