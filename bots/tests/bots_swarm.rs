//! The bot swarm against the in-process stand-in gateway of the client SDK's
//! tests (`client/tests/support`), which rate-limits each lane with the
//! default limits it announces in `Welcome`.

// One stand-in for the SDK's tests and the bots'; it needs nothing but the
// SDK's public API and `lanegate_common`.
#[path = "../../client/tests/support/mod.rs"]
mod support;

use std::time::Duration;

use lanegate_bots::{BotsConfig, Flood, TicketSource, indicatif_progress, run};
use lanegate_client::ServerVerify;
use lanegate_common::lanes::Lane;
use lanegate_common::wire::Transport;
use support::EchoServer;

fn config(server: &EchoServer, clients: usize) -> BotsConfig {
    let mut cfg = BotsConfig::new(server.addr, ServerVerify::Fingerprint(server.fingerprint));
    cfg.clients = clients;
    cfg.duration = Duration::from_secs(2);
    cfg.connect_rate_per_s = 100.0;
    cfg
}

#[tokio::test]
async fn a_bulk_flood_is_lost_to_the_welcome_limit_and_counted_as_such() {
    let server = EchoServer::start();
    let mut cfg = config(&server, 3);
    cfg.flood = Some(Flood {
        lane: Lane::Bulk,
        rate_per_s: 100.0,
    });
    let progress = indicatif_progress(&cfg);
    let report = run(cfg, progress).await.expect("the swarm runs");
    assert_eq!(report.failed, 0, "{report}");
    let bulk = &report.lanes.bulk;
    // Welcome says bulk 10/s burst 20: per bot at most 20 + 10 × 2 of 200.
    assert_eq!((bulk.limit_rate_per_s, bulk.limit_burst), (10, 20));
    // The open-loop sender may fall behind its 600 on a loaded machine
    // (the whole workspace's tests at once); three quarters is a flood.
    assert!(bulk.sent >= 450, "{report}");
    assert!(bulk.received <= 3 * 42, "{report}");
    // Everything beyond the allowance is known to be over the limit.
    assert!(bulk.sent_over_limit + 3 * 42 >= bulk.sent, "{report}");
    assert!(bulk.lost_over_limit * 10 >= bulk.lost * 9, "{report}");
    assert!(
        server.rate_limited() >= bulk.lost_over_limit / 2,
        "{report}"
    );
    let critical = &report.lanes.critical;
    assert!(critical.received * 10 >= critical.sent * 9, "{report}");
    assert_eq!(critical.sent_over_limit, 0, "{report}");
}

#[tokio::test]
async fn refused_sessions_are_counted_not_fatal() {
    let server = EchoServer::start();
    let mut cfg = config(&server, 2);
    cfg.tickets = TicketSource::Fixed("not-a-ticket".into());
    let report = run(cfg, |_| {}).await.expect("the swarm still reports");
    assert_eq!((report.connected, report.failed), (0, 2), "{report}");
    assert_eq!(report.errors_total, 2);
    assert!(report.errors[0].contains("BAD_TICKET"), "{report}");
    assert!(report.lanes.all().iter().all(|l| l.sent == 0));
}

#[test]
fn run_blocking_drives_a_swarm_on_its_own_multi_thread_runtime() {
    // The stand-in needs a runtime of its own; it lives on a second one.
    let server_rt = tokio::runtime::Runtime::new().expect("a runtime");
    let server = server_rt.block_on(async { EchoServer::start() });
    let mut cfg = config(&server, 4);
    cfg.duration = Duration::from_secs(1);
    let report = lanegate_bots::run_blocking(cfg, 2, |_| {}).expect("the swarm runs");
    assert_eq!(report.connected, 4, "{report}");
    assert!(report.lanes.critical.received > 0, "{report}");
}

#[tokio::test]
async fn full_size_stream_echoes_come_back_whole_through_the_bots_endpoints() {
    // A 16 KiB echo comes back as a train of full-size packets, which the
    // stand-in's quinn sends as GSO batches: the bots' one-datagram receive
    // slots (`lanegate_bots::endpoint`) take them one packet each. (Were
    // the socket's UDP_GRO left on, loopback would deliver each batch as one
    // datagram and the slot would truncate it; QUIC recovers that by
    // retransmission, at 65 ms p50 instead of 4 ms, so the check that GRO is
    // off is the endpoint module's own test, not a timing here.)
    let server = EchoServer::start();
    let mut cfg = config(&server, 1);
    cfg.duration = Duration::from_secs(1);
    cfg.reply_deadline = Duration::from_secs(2);
    for lane in Lane::ALL {
        cfg.lanes[lane.index()].rate_per_s = 0.0;
    }
    let normal = &mut cfg.lanes[Lane::Normal.index()];
    normal.rate_per_s = 10.0;
    normal.payload_bytes = lanegate_bots::STREAM_PAYLOAD_BYTES_MAX;
    normal.transport = Transport::Stream;
    let report = run(cfg, |_| {}).await.expect("the swarm runs");
    let normal = &report.lanes.normal;
    assert_eq!(report.failed, 0, "{report}");
    assert!(normal.sent >= 8, "{report}");
    assert_eq!(normal.received, normal.sent, "{report}");
}
