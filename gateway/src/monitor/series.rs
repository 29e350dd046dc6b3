//! The series the monitor learns, read off two [`Sample`]s a sampling
//! interval apart: levels as they are (connections, sessions, tick p99),
//! counters as rates over the interval, and the gateway's own latency p99
//! from the histograms' difference over it.
//!
//! The list is fixed at start from the shard count ([`SeriesSet::new`]),
//! in a fixed order, and cut at `monitor.series_max`: the detectors are
//! allocated once for it and a sample never adds one. A value the samples
//! cannot give (a core not publishing yet, nothing received in the window)
//! is `None`, and its detector skips the sample.

use lanegate_common::lanes::Lane;
use lanegate_shard::port::DropReason;

use crate::metrics::{CoreSnapshot, Sample};

/// Kernel UDP counters from `/proc/net/snmp` (the `Udp:` lines), whole
/// host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdpSnmp {
    /// `InErrors`.
    pub in_errors: u64,
    /// `RcvbufErrors`: datagrams dropped for a full socket buffer.
    pub rcvbuf_errors: u64,
}

impl UdpSnmp {
    /// Parses `/proc/net/snmp`; `None` if it has no `Udp:` pair of lines.
    pub fn parse(text: &str) -> Option<UdpSnmp> {
        let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
        let names: Vec<&str> = udp.next()?.split_whitespace().collect();
        let values: Vec<&str> = udp.next()?.split_whitespace().collect();
        let field = |name: &str| {
            let i = names.iter().position(|n| *n == name)?;
            values.get(i)?.parse().ok()
        };
        Some(UdpSnmp {
            in_errors: field("InErrors")?,
            rcvbuf_errors: field("RcvbufErrors")?,
        })
    }

    /// Reads the host's; `None` where it cannot be read.
    pub fn read() -> Option<UdpSnmp> {
        Self::parse(&std::fs::read_to_string("/proc/net/snmp").ok()?)
    }
}

/// What one sampling interval saw.
#[derive(Clone, Debug)]
pub struct Window<'a> {
    /// The sample before.
    pub before: &'a Sample,
    /// The sample now.
    pub now: &'a Sample,
    /// `/proc/net/snmp` before and now.
    pub snmp: (Option<UdpSnmp>, Option<UdpSnmp>),
}

impl Window<'_> {
    fn seconds(&self) -> f64 {
        self.now
            .now
            .saturating_duration_since(self.before.now)
            .as_secs_f64()
    }

    /// Sum over the publishing cores of `f` of their latest snapshot.
    fn cores(s: &Sample, f: impl Fn(&CoreSnapshot) -> u64) -> u64 {
        s.cores.iter().flatten().map(|c| f(&c.latest)).sum()
    }

    fn rate(&self, f: impl Fn(&CoreSnapshot) -> u64 + Copy) -> Option<f64> {
        let secs = self.seconds();
        let publishing = |s: &Sample| s.cores.iter().all(Option::is_some);
        if secs <= 0.0 || !publishing(self.before) || !publishing(self.now) {
            return None;
        }
        let (a, b) = (Self::cores(self.before, f), Self::cores(self.now, f));
        Some(b.saturating_sub(a) as f64 / secs)
    }
}

/// How one series is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Connections,
    Sessions,
    Handshakes,
    MessagesIn(Lane),
    MessagesOut(Lane),
    AdmissionDrops(Lane),
    LinkDrops(DropReason),
    GatewayP99(Lane),
    TickP99(usize),
    RingDepth(usize),
    UdpRcvbufErrors,
    UdpInErrors,
}

/// The series, in order, with their names.
#[derive(Clone, Debug)]
pub struct SeriesSet {
    series: Vec<(String, Source)>,
}

impl SeriesSet {
    /// Every series for a gateway of `shards` shards, at most `max`.
    pub fn new(shards: usize, max: usize) -> Self {
        let mut series = vec![
            ("connections".to_owned(), Source::Connections),
            ("sessions".to_owned(), Source::Sessions),
            ("handshakes_per_s".to_owned(), Source::Handshakes),
        ];
        for lane in Lane::ALL {
            series.push((
                format!("messages_in_per_s.{lane}"),
                Source::MessagesIn(lane),
            ));
            series.push((
                format!("messages_out_per_s.{lane}"),
                Source::MessagesOut(lane),
            ));
        }
        for lane in Lane::ALL {
            series.push((format!("gateway_p99_us.{lane}"), Source::GatewayP99(lane)));
        }
        for lane in Lane::ALL {
            series.push((
                format!("admission_drops_per_s.{lane}"),
                Source::AdmissionDrops(lane),
            ));
        }
        for reason in DropReason::ALL {
            series.push((
                format!("link_drops_per_s.{}", reason.name()),
                Source::LinkDrops(reason),
            ));
        }
        series.push((
            "udp_rcvbuf_errors_per_s".to_owned(),
            Source::UdpRcvbufErrors,
        ));
        series.push(("udp_in_errors_per_s".to_owned(), Source::UdpInErrors));
        for shard in 0..shards {
            series.push((format!("tick_p99_us.shard{shard}"), Source::TickP99(shard)));
            series.push((format!("ring_depth.shard{shard}"), Source::RingDepth(shard)));
        }
        series.truncate(max);
        Self { series }
    }

    /// How many series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether there are none (`monitor.series_max = 0`).
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// The names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.series.iter().map(|(n, _)| n.as_str())
    }

    /// Each series' value over `w`, in order.
    pub fn read(&self, w: &Window<'_>, out: &mut Vec<Option<f64>>) {
        out.clear();
        out.extend(self.series.iter().map(|(_, source)| value(*source, w)));
    }
}

fn value(source: Source, w: &Window<'_>) -> Option<f64> {
    let level = |f: fn(&CoreSnapshot) -> u64| {
        w.now
            .cores
            .iter()
            .all(Option::is_some)
            .then(|| Window::cores(w.now, f) as f64)
    };
    match source {
        Source::Connections => level(|c| c.engine.connections_open),
        Source::Sessions => level(|c| c.engine.sessions_open),
        Source::Handshakes => w.rate(|c| c.engine.handshakes),
        Source::MessagesIn(l) => w.rate(move |c| c.engine.messages_in[l.index()]),
        Source::MessagesOut(l) => w.rate(move |c| c.engine.messages_out[l.index()]),
        Source::AdmissionDrops(l) => w.rate(move |c| c.engine.admit_dropped[l.index()]),
        Source::LinkDrops(r) => {
            w.rate(move |c| Lane::ALL.iter().map(|&l| c.link_drops.get(r, l)).sum())
        }
        Source::GatewayP99(l) => {
            let window =
                w.now.gateway_latency()[l.index()].since(&w.before.gateway_latency()[l.index()]);
            window.quantile_us(0.99)
        }
        Source::TickP99(s) => w.now.shards.get(s).map(|h| f64::from(h.tick_p99_us)),
        Source::RingDepth(s) => w.now.shards.get(s).map(|h| f64::from(h.ring_depth)),
        Source::UdpRcvbufErrors | Source::UdpInErrors => {
            let (Some(a), Some(b)) = w.snmp else {
                return None;
            };
            let secs = w.seconds();
            let pick = |u: UdpSnmp| match source {
                Source::UdpRcvbufErrors => u.rcvbuf_errors,
                _ => u.in_errors,
            };
            (secs > 0.0).then(|| pick(b).saturating_sub(pick(a)) as f64 / secs)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use lanegate_common::link::ShardHealth;
    use lanegate_udp::BackendKind;

    use super::*;
    use crate::metrics::CoreReading;

    fn sample(at: Instant, connections: u64, critical_in: u64, p99_us: u32) -> Sample {
        let mut core = CoreSnapshot::empty(at, BackendKind::IoUring);
        core.engine.connections_open = connections;
        core.engine.messages_in[Lane::Critical.index()] = critical_in;
        core.latency[Lane::Critical.index()].record_us(u64::from(p99_us));
        Sample {
            now: at,
            cores: vec![Some(CoreReading {
                latest: core,
                earlier: None,
            })],
            shards: vec![ShardHealth {
                tick_p99_us: p99_us,
                ..ShardHealth::default()
            }],
            shard_latency: Vec::new(),
            socket_drops: vec![None],
            draining: false,
            tick_budget_us: 10_000,
            uptime: Duration::from_secs(1),
            started_unix_s: 0.0,
            monitor: None,
        }
    }

    #[test]
    fn levels_rates_and_window_quantiles() {
        let t0 = Instant::now();
        let before = sample(t0, 5, 100, 40);
        let now = sample(t0 + Duration::from_secs(10), 7, 400, 700);
        let set = SeriesSet::new(1, 100);
        let names: Vec<&str> = set.names().collect();
        let at = |name: &str| names.iter().position(|n| *n == name).unwrap();
        let mut out = Vec::new();
        let snmp = (
            Some(UdpSnmp {
                in_errors: 1,
                rcvbuf_errors: 10,
            }),
            Some(UdpSnmp {
                in_errors: 1,
                rcvbuf_errors: 60,
            }),
        );
        set.read(
            &Window {
                before: &before,
                now: &now,
                snmp,
            },
            &mut out,
        );
        assert_eq!(out.len(), set.len());
        assert_eq!(out[at("connections")], Some(7.0));
        assert_eq!(out[at("messages_in_per_s.critical")], Some(30.0));
        assert_eq!(out[at("messages_in_per_s.bulk")], Some(0.0));
        assert_eq!(out[at("udp_rcvbuf_errors_per_s")], Some(5.0));
        assert_eq!(out[at("tick_p99_us.shard0")], Some(700.0));
        // Only the window's one value (700 µs, in (500, 1000]) counts.
        let p99 = out[at("gateway_p99_us.critical")].unwrap();
        assert!(p99 > 500.0 && p99 <= 1000.0, "{p99}");
        assert_eq!(out[at("gateway_p99_us.high")], None, "nothing received");
    }

    #[test]
    fn the_set_is_cut_at_its_limit_and_a_silent_core_reads_as_none() {
        assert_eq!(SeriesSet::new(4, 5).len(), 5);
        assert!(SeriesSet::new(4, 0).is_empty());
        let t0 = Instant::now();
        let mut before = sample(t0, 1, 1, 1);
        before.cores[0] = None;
        let now = sample(t0 + Duration::from_secs(10), 1, 1, 1);
        let set = SeriesSet::new(1, 100);
        let mut out = Vec::new();
        set.read(
            &Window {
                before: &before,
                now: &now,
                snmp: (None, None),
            },
            &mut out,
        );
        assert_eq!(out[2], None, "no rate without both samples");
        assert_eq!(out[0], Some(1.0), "a level needs only the latest");
    }

    #[test]
    fn snmp_parses_the_udp_lines() {
        let text = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
                    Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n\
                    Udp: 100 2 7 90 5 0\n";
        assert_eq!(
            UdpSnmp::parse(text),
            Some(UdpSnmp {
                in_errors: 7,
                rcvbuf_errors: 5
            })
        );
        assert_eq!(UdpSnmp::parse("Ip: a\nIp: 1\n"), None);
    }
}
