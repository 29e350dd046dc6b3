//! A few seconds of the end-to-end harness machinery against
//! `baseline-udp`: start it pinned, run a small swarm, sample its CPU.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lanegate_benches::e2e::harness::{Server, ServerKind, ServerSpec, measure};
use lanegate_benches::e2e::procfs;
use lanegate_common::lanes::Lane;

fn udp_spec() -> ServerSpec {
    ServerSpec {
        kind: ServerKind::Udp,
        exe: PathBuf::from(env!("CARGO_BIN_EXE_baseline-udp")),
        args: vec![],
        core: Some(0),
    }
}

#[test]
fn a_short_swarm_against_baseline_udp_gives_cpu_per_datagram() {
    let server = Server::start(&udp_spec()).expect("baseline-udp starts");
    assert!(procfs::rss_bytes(&server.pid()).is_some());
    let mut cfg = server.bots().expect("a config");
    cfg.clients = 20;
    cfg.duration = Duration::from_millis(1500);
    cfg.connect_rate_per_s = 0.0;
    cfg.reply_deadline = Duration::from_millis(300);
    for l in &mut cfg.lanes {
        l.rate_per_s = 0.0;
    }
    cfg.lanes[Lane::Critical.index()].rate_per_s = 100.0;
    // The swarm runs in a child: the e2e binary, which takes the flag.
    let out = measure(
        &server,
        Path::new(env!("CARGO_BIN_EXE_e2e")),
        cfg,
        Duration::from_millis(100),
        procfs::clock_ticks_per_s(),
    )
    .expect("the run");
    let critical = &out.report.lanes.critical;
    assert!(critical.received > 1000, "{}", out.report);
    assert_eq!(out.peak_connected, 20);
    assert!(out.all_connected_s.is_some());
    assert!(out.samples.len() >= 5, "{:?}", out.samples);
    // 2000 datagrams/s echoed: some CPU is used, and the figure is sane
    // (between 0 and 10 ms per datagram; tick granularity allows 0).
    let cpu = out.cpu_us_per_dgram.expect("a steady window");
    assert!((0.0..10_000.0).contains(&cpu), "{cpu}");
    assert!(out.bot_cpu_load.is_some());
}

#[test]
fn a_server_that_cannot_start_is_an_error_not_a_panic() {
    let mut spec = udp_spec();
    spec.exe = PathBuf::from("/nonexistent/lanegate");
    assert!(Server::start(&spec).is_err());
    let mut spec = udp_spec();
    spec.args = vec!["--no-such-flag".into()];
    let err = Server::start(&spec).expect_err("refuses the flag");
    assert!(err.to_string().contains("baseline-udp"), "{err}");
}
