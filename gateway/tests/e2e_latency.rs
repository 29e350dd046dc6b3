//! The latency histograms inside the gateway (issue 14 §1), end to end: a
//! real `lanegate` with bots playing the Arena mix on the echo game, its
//! `/metrics` scraped. Every echoed message is in the gateway's histogram
//! (received → shard ring) and the shards' (ring → reply handed back),
//! every tick in the tick histogram, with plausible values; with
//! `observability.latency_histograms = false` all three stay empty.

#[allow(unused_macros)]
#[macro_use]
mod e2e_support;

use std::time::Duration;

use e2e_support::metric;
use e2e_support::swarm::{block_on, play, serial, settle, start, swarm};

fn lanes(text: &str, name: &str) -> [f64; 4] {
    ["critical", "high", "normal", "bulk"]
        .map(|lane| metric(text, name, &[("lane", lane)]).unwrap_or(f64::NAN))
}

fn played(histograms: bool) -> (lanegate_bots::Report, String) {
    let extra =
        format!("[shards]\ngame = \"echo\"\n[observability]\nlatency_histograms = {histograms}\n");
    let gw = start("latency", 5000, &extra);
    let report = block_on(play(swarm(&gw, 8, Duration::from_secs(3), 1000), || {}));
    assert_eq!(report.failed, 0, "{report}");
    // The shards publish their histograms with their health, every few
    // ticks: wait for the last messages' to land.
    let sent = report.lanes.critical.sent as f64;
    settle(&gw, "the shards' last histograms", |t| {
        !histograms || lanes(t, "lanegate_shard_service_seconds_count")[0] >= 0.95 * sent
    });
    (report, gw.scrape())
}

#[test]
fn every_message_and_tick_is_timed_inside_the_gateway() {
    let _one = serial();
    let (report, text) = played(true);
    let count = lanes(&text, "lanegate_gateway_latency_seconds_count");
    let sum = lanes(&text, "lanegate_gateway_latency_seconds_sum");
    let service = lanes(&text, "lanegate_shard_service_seconds_count");
    let service_sum = lanes(&text, "lanegate_shard_service_seconds_sum");
    eprintln!(
        "gateway latency counts {count:?} sums {sum:?}; service counts {service:?} sums {service_sum:?}"
    );
    // Every critical echo request the gateway received went on the ring,
    // and was served (the game answers each one).
    let sent = report.lanes.critical.sent as f64;
    assert!(count[0] >= 0.95 * sent, "{} timed of {sent} sent", count[0]);
    assert!(service[0] >= 0.95 * sent, "{} served of {sent}", service[0]);
    assert!(count[1] > 0.0 && service[1] > 0.0, "high timed too");
    // Plausible: a debug gateway on loopback hands a message to its ring
    // within milliseconds on average, and the shard answers within a tick
    // and a half (30 Hz) or a message pass.
    let mean_ms = |s: f64, n: f64| 1e3 * s / n;
    assert!(
        mean_ms(sum[0], count[0]) < 20.0,
        "gateway mean {} ms",
        mean_ms(sum[0], count[0])
    );
    assert!(
        mean_ms(service_sum[0], service[0]) < 60.0,
        "service mean {} ms",
        mean_ms(service_sum[0], service[0])
    );
    let ticks = metric(
        &text,
        "lanegate_shard_tick_seconds_count",
        &[("shard", "0")],
    )
    .unwrap_or(0.0);
    let ticked = metric(&text, "lanegate_shard_ticks_total", &[("shard", "0")]).unwrap_or(0.0);
    assert!(
        ticks > 0.0 && ticks <= ticked,
        "{ticks} timed of {ticked} ticks"
    );
    // Cumulative buckets end at the count.
    let inf = metric(
        &text,
        "lanegate_gateway_latency_seconds_bucket",
        &[("lane", "critical"), ("le", "+Inf")],
    );
    assert_eq!(inf, Some(count[0]));
}

#[test]
fn histograms_off_record_nothing() {
    let _one = serial();
    let (report, text) = played(false);
    assert!(report.lanes.critical.received > 0, "{report}");
    assert_eq!(
        lanes(&text, "lanegate_gateway_latency_seconds_count"),
        [0.0; 4]
    );
    assert_eq!(
        lanes(&text, "lanegate_shard_service_seconds_count"),
        [0.0; 4]
    );
    assert_eq!(
        metric(
            &text,
            "lanegate_shard_tick_seconds_count",
            &[("shard", "0")]
        ),
        Some(0.0)
    );
}
