//! `probe` against the stand-in gateway's echo.

mod support;

use std::time::Duration;

use lanegate_client::{ClientError, ProbeReport, probe};
use lanegate_common::ids::ZoneId;
use support::{EchoServer, SESSION, dev_ticket};

#[tokio::test]
async fn a_default_probe_gets_every_echo_of_every_lane_back() {
    let server = EchoServer::start();
    let report: ProbeReport = probe(server.options(&dev_ticket()), 10, Duration::from_millis(5))
        .await
        .unwrap();
    assert!(report.all_lanes_answered(), "{report}");
    assert_eq!((report.session, report.zone), (SESSION, ZoneId(42)));
    for lane in &report.lanes {
        assert_eq!((lane.sent, lane.received), (10, 10), "{report}");
        assert_eq!(lane.loss_percent(), 0.0);
        let (min, p50, p99) = (
            lane.rtt_min.unwrap(),
            lane.rtt_p50.unwrap(),
            lane.rtt_p99.unwrap(),
        );
        assert!(min <= p50 && p50 <= p99, "{report}");
    }
    let table = report.to_string();
    assert!(table.contains("bulk"), "{table}");
    println!("{table}");
}

#[tokio::test]
async fn a_probe_faster_than_the_bulk_limit_paces_itself_instead_of_being_dropped() {
    // 25 rounds at once: bulk (10/s, burst 20) cannot take them all now.
    let server = EchoServer::start();
    let report = probe(server.options(&dev_ticket()), 25, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(server.rate_limited(), 0, "{report}");
    for lane in &report.lanes {
        assert_eq!((lane.sent, lane.received), (25, 25), "{report}");
    }
}

#[tokio::test]
async fn the_stand_in_does_rate_limit() {
    // The previous test means something only if the limiter bites.
    let server = EchoServer::start();
    let mut client = lanegate_client::connect(server.options(&dev_ticket()))
        .await
        .unwrap();
    for _ in 0..25 {
        client
            .send(0x4fff, b"", lanegate_client::Transport::Stream)
            .await
            .unwrap();
    }
    // The stream is ordered: once this critical echo is back, every bulk
    // message before it has been judged.
    client
        .send(0x1fff, b"", lanegate_client::Transport::Stream)
        .await
        .unwrap();
    let mut bulk = 0;
    loop {
        match client.recv().await.unwrap() {
            lanegate_client::Event::Message { ty: 0x1fff, .. } => break,
            _ => bulk += 1,
        }
    }
    // The burst, plus one per 100 ms the 25 sends took to arrive.
    assert!((20..25).contains(&bulk), "{bulk} bulk echoes came back");
    assert_eq!(server.rate_limited(), 25 - bulk);
    client.close().await;
}

#[tokio::test]
async fn a_probe_of_nothing_is_refused() {
    let server = EchoServer::start();
    let err = probe(server.options(&dev_ticket()), 0, Duration::ZERO)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Config { field: "count", .. }),
        "{err:?}"
    );
}
