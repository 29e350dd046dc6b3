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

#[test]
fn a_swarm_child_that_talks_nonsense_is_an_error_and_is_stopped() {
    use std::os::unix::fs::PermissionsExt;
    // A child that prints nonsense forever, deaf to SIGPIPE like a Rust
    // program: the first line is not a child line, and the child must not
    // be left running (nor waited on forever).
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let exe = dir.join("nonsense-swarm-child");
    let pid_file = dir.join("nonsense-swarm-child.pid");
    let script = format!(
        "#!/bin/sh\ntrap '' PIPE\nexec 2>/dev/null\necho $$ > {}\nwhile :; do echo nonsense; done\n",
        pid_file.display()
    );
    std::fs::write(&exe, script).expect("tmp is writable");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let server = Server::start(&udp_spec()).expect("baseline-udp starts");
    let cfg = server.bots().expect("a config");
    let err = measure(
        &server,
        &exe,
        cfg,
        Duration::from_millis(100),
        procfs::clock_ticks_per_s(),
    )
    .expect_err("nonsense from the child");
    assert!(format!("{err:#}").contains("swarm child line"), "{err:#}");
    let pid = std::fs::read_to_string(&pid_file).expect("the child wrote its pid");
    assert!(
        procfs::cpu_ticks(pid.trim()).is_none(),
        "the nonsense child {} still runs",
        pid.trim()
    );
}
