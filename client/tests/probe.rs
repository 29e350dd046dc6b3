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
