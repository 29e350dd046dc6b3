//! The bot swarm (`lanegate_bots`) against the baseline servers,
//! run as the binaries they are: short, loopback-only swarms.
//!
//! Synchronisation is by the servers' `listening` line and by the swarm's
//! own end, never by sleeps.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lanegate_bots::{BotsConfig, Flood, Mode, Report, run};
use lanegate_client::ServerVerify;
use lanegate_common::lanes::Lane;
use lanegate_common::wire::Transport;

/// A baseline server process, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    fingerprint: Option<String>,
}

impl Server {
    /// Starts `exe` with `args` and reads its `listening` (and, for QUIC,
    /// `fingerprint`) lines.
    fn start(exe: &str, args: &[&str], wants_fingerprint: bool) -> Self {
        let mut child = Command::new(exe)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the baseline binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let mut addr = None;
        let mut fingerprint = None;
        while addr.is_none() || (wants_fingerprint && fingerprint.is_none()) {
            let line = lines
                .next()
                .expect("the server prints its address before anything else")
                .expect("stdout is text");
            if let Some(a) = line.strip_prefix("listening ") {
                addr = Some(a.parse().expect("a socket address"));
            } else if let Some(f) = line.strip_prefix("fingerprint ") {
                fingerprint = Some(f.to_owned());
            }
        }
        Self {
            child,
            addr: addr.expect("read above"),
            fingerprint,
        }
    }

    fn quinn(args: &[&str]) -> Self {
        Self::start(env!("CARGO_BIN_EXE_baseline-quinn"), args, true)
    }

    fn udp() -> Self {
        Self::start(env!("CARGO_BIN_EXE_baseline-udp"), &[], false)
    }

    fn config(&self, clients: usize, duration: Duration) -> BotsConfig {
        let verify = match &self.fingerprint {
            Some(f) => ServerVerify::fingerprint_hex(f).expect("the server prints valid hex"),
            None => ServerVerify::InsecureNoVerify,
        };
        let mut cfg = BotsConfig::new(self.addr, verify);
        cfg.clients = clients;
        cfg.duration = duration;
        // Chat every 0.5 s rather than 5 s, so a 2 s run has some.
        cfg.lanes[Lane::Normal.index()].rate_per_s = 2.0;
        cfg.connect_rate_per_s = 100.0;
        cfg
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks what every healthy swarm report shows, and the JSON and HTML.
fn check_every_lane_answered(report: &Report, name: &str) {
    assert_eq!(report.failed, 0, "{report}");
    assert_eq!(report.connected, report.clients, "{report}");
    for lane in report.lanes.all() {
        assert!(lane.received > 0, "{}: {report}", lane.lane);
        assert_eq!(lane.sent, lane.received + lane.lost, "{report}");
        let rtt = lane.rtt.expect("replies give RTTs");
        assert!(rtt.count > 0 && rtt.p50_us > 0 && rtt.p50_us <= rtt.max_us);
        assert!(!lane.percentiles.is_empty());
    }
    let json: serde_json::Value =
        serde_json::from_str(&report.to_json().expect("serialises")).expect("valid JSON");
    for lane in ["critical", "high", "normal", "bulk"] {
        for key in ["sent", "received", "lost", "lost_over_limit"] {
            assert!(json["lanes"][lane][key].is_u64(), "{lane}.{key}: {json}");
        }
        assert!(json["lanes"][lane]["rtt"]["p99_us"].is_u64(), "{lane}");
    }
    let path = std::env::temp_dir().join(format!("lanegate-{name}-{}.html", std::process::id()));
    report.write_html(&path).expect("writes the page");
    let html = std::fs::read_to_string(&path).expect("reads it back");
    std::fs::remove_file(&path).expect("removes it");
    assert!(
        html.contains("<svg") && html.contains("<polyline"),
        "{html}"
    );
}

#[tokio::test]
async fn a_quic_swarm_gets_replies_in_every_lane_from_baseline_quinn() {
    let server = Server::quinn(&[]);
    let cfg = server.config(20, Duration::from_secs(2));
    assert_eq!(cfg.lanes[Lane::Normal.index()].transport, Transport::Stream);
    let mut snapshots = 0;
    let report = run(cfg, |_| snapshots += 1).await.expect("the swarm runs");
    assert!(snapshots >= 2, "progress at intervals and at the end");
    assert_eq!(report.mode, "quic");
    eprintln!("{report}");
    check_every_lane_answered(&report, "quic");
    // 20 bots at 30 inputs/s for 2 s.
    assert!(report.lanes.critical.sent.abs_diff(1200) <= 20, "{report}");
}

#[tokio::test]
async fn a_raw_udp_swarm_gets_replies_in_every_lane_from_baseline_udp() {
    let server = Server::udp();
    let mut cfg = server.config(20, Duration::from_secs(2));
    cfg.mode = Mode::RawUdp;
    let report = run(cfg, |_| {}).await.expect("the swarm runs");
    assert_eq!(report.mode, "raw-udp");
    assert_eq!(report.lanes.normal.transport, "datagram");
    eprintln!("{report}");
    check_every_lane_answered(&report, "udp");
}

#[tokio::test]
async fn a_bulk_flood_loses_bulk_over_the_limit_while_critical_is_answered() {
    let server = Server::quinn(&["--limit", "bulk=10/20"]);
    let mut cfg = server.config(5, Duration::from_secs(2));
    cfg.flood = Some(Flood {
        lane: Lane::Bulk,
        rate_per_s: 200.0,
    });
    let report = run(cfg, |_| {}).await.expect("the swarm runs");
    eprintln!("{report}");
    let bulk = &report.lanes.bulk;
    assert!(bulk.flooded, "{report}");
    // Per bot: 400 sent, at most 20 + 10 × 2 admitted.
    assert!(bulk.sent >= 1900, "{report}");
    assert!(bulk.received <= 5 * 45, "{report}");
    assert!(bulk.lost >= bulk.sent / 2, "{report}");
    assert!(
        bulk.lost_over_limit * 10 >= bulk.lost * 9,
        "the loss is the limiter's: {report}"
    );
    let critical = &report.lanes.critical;
    assert!(critical.received * 10 >= critical.sent * 9, "{report}");
    assert_eq!(critical.sent_over_limit, 0, "{report}");
}

#[tokio::test]
async fn the_send_schedule_ignores_slow_replies() {
    // Every echo is held 300 ms: a closed-loop sender would slow to the
    // replies; an open-loop one keeps its rate and its RTTs show the delay.
    let server = Server::quinn(&["--delay-ms", "300"]);
    let mut cfg = server.config(5, Duration::from_secs(2));
    cfg.lanes[Lane::Normal.index()].rate_per_s = 0.0;
    let report = run(cfg, |_| {}).await.expect("the swarm runs");
    for (lane, rate) in [(Lane::Critical, 30), (Lane::High, 20), (Lane::Bulk, 1)] {
        let l = report.lanes.get(lane);
        let planned = 5 * rate * 2;
        assert!(
            l.sent.abs_diff(planned) <= 5,
            "{lane}: {} sent, {planned} planned: {report}",
            l.sent
        );
        let rtt = l.rtt.expect("replies arrive within the deadline");
        assert!(rtt.min_us >= 300_000, "{lane}: {report}");
    }
    assert_eq!(report.lanes.normal.sent, 0);
}
