//! End to end, the rate limits (`[lanes.limits]`, `[admission]`): the real
//! `lanegate` binary on both IO backends, the client SDK over loopback.
//!
//! The bulk lane is set to `rate_per_s = 10, burst = 5`: a burst of bulk
//! echoes sent back to back gets `burst` echoes back, plus at most what the
//! rate refills while the burst is admitted (bounded from the measured
//! time); the rest are dropped. Critical echoes sent in between are all
//! answered. A client that floods far past `abuse_drops_max` is closed with
//! `ABUSE`, and a client beside it is not.

#[macro_use]
mod e2e_support;

use std::time::{Duration, Instant};

use e2e_support::{EXCHANGE_TIMEOUT, Gateway, Launch, close_code, next_matching, ticket};
use lanegate_client::{Client, CloseCode, Event, Transport, connect};

/// `[lanes.limits.bulk]`.
const BULK_RATE_PER_S: u64 = 10;
const BULK_BURST: u64 = 5;
/// `[admission] abuse_drops_max`: above the drops of the honest burst test
/// ([`BULK_SENT`] - [`BULK_BURST`]), far below the flood.
const ABUSE_DROPS_MAX: u64 = 40;
/// Bulk echoes of the burst test, sent back to back.
const BULK_SENT: u64 = 30;
/// Bulk messages of the flood: ten times the abuse threshold.
const FLOOD: u64 = 10 * ABUSE_DROPS_MAX;

const BULK_ECHO: u16 = 0x4fff;
const CRITICAL_ECHO: u16 = 0x1fff;
/// Payload tag of the critical message that ends the burst.
const MARKER: u8 = 0xee;

fn start(backend: &str, name: &str) -> Gateway {
    let extra = format!(
        "[lanes.limits.bulk]\nrate_per_s = {BULK_RATE_PER_S}\nburst = {BULK_BURST}\n\
         [admission]\nabuse_window_ms = 10000\nabuse_drops_max = {ABUSE_DROPS_MAX}\n\
         [shards]\ngame = \"echo\"\n"
    );
    Gateway::start(&Launch {
        backend,
        name,
        drain_timeout_ms: 5000,
        extra: &extra,
    })
}

/// Sends `BULK_SENT` bulk echoes back to back with a critical echo after
/// every third, then a critical marker; returns the bulk echoes that came
/// back and an upper bound on the time the gateway admitted the burst in.
async fn bulk_burst(client: &mut Client) -> (u64, Duration) {
    let started = Instant::now();
    let mut critical_sent = Vec::new();
    for i in 0..BULK_SENT {
        let i = u8::try_from(i).expect("few");
        client
            .send(BULK_ECHO, &[i; 16], Transport::Datagram)
            .await
            .expect("sent");
        if i % 3 == 2 {
            client
                .send(CRITICAL_ECHO, &[i; 16], Transport::Datagram)
                .await
                .expect("sent");
            critical_sent.push(i);
        }
    }
    client
        .send(CRITICAL_ECHO, &[MARKER; 16], Transport::Datagram)
        .await
        .expect("sent");
    // Every bulk message was admitted or dropped before the marker (one
    // connection, one core, in order), so the marker's echo bounds the
    // time the gateway took over the burst from above.
    let mut bulk_back = Vec::new();
    let mut critical_back = Vec::new();
    let deadline = tokio::time::Instant::now() + EXCHANGE_TIMEOUT;
    // Records an echo; true for the marker.
    let mut on_echo = |ty: u16, payload: Vec<u8>| {
        match (ty, payload.first().copied()) {
            (CRITICAL_ECHO, Some(MARKER)) => return true,
            (CRITICAL_ECHO, Some(i)) => critical_back.push(i),
            (BULK_ECHO, Some(i)) => bulk_back.push(i),
            _ => {}
        }
        false
    };
    let marker = next_matching(client, deadline, |e| match e {
        Event::Message { ty, payload, .. } => on_echo(ty, payload).then_some(()),
        _ => None,
    })
    .await;
    let span = started.elapsed();
    assert!(marker.is_some(), "the critical marker never came back");
    // The shard answers critical before bulk within a tick, so the last
    // bulk echoes may trail the marker by a tick: wait for stragglers a
    // few ticks (30 Hz) past the marker. Nothing signals "no more".
    let stragglers = tokio::time::Instant::now() + Duration::from_millis(300);
    let _: Option<()> = next_matching(client, stragglers, |e| {
        if let Event::Message { ty, payload, .. } = e {
            on_echo(ty, payload);
        }
        None
    })
    .await;
    critical_back.sort_unstable();
    assert_eq!(
        critical_back, critical_sent,
        "every critical echo comes back while bulk is over its limit"
    );
    let mut unique = bulk_back.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        bulk_back.len(),
        "no echo twice: {bulk_back:?}"
    );
    (bulk_back.len() as u64, span)
}

async fn rate_limit_drops_exactly_the_excess(backend: &str) {
    let gw = start(backend, "limits-burst");
    let mut client = connect(gw.options(&ticket(21, 7))).await.expect("welcome");
    let bulk = client.info().lane_limits[3];
    assert_eq!(
        (u64::from(bulk.rate_per_s), u64::from(bulk.burst)),
        (BULK_RATE_PER_S, BULK_BURST),
        "Welcome announces the configured bulk limit"
    );
    let (back, span) = bulk_burst(&mut client).await;
    // GCRA from a full bucket: `burst` at once, then one per 1/rate.
    let span_us = u64::try_from(span.as_micros()).expect("a short burst");
    let refill = (span_us * BULK_RATE_PER_S).div_ceil(1_000_000);
    assert!(
        (BULK_BURST..=BULK_BURST + refill).contains(&back),
        "{back} of {BULK_SENT} bulk echoes came back in {span:?}; \
         want {BULK_BURST} to {} (burst + refill){}",
        BULK_BURST + refill,
        gw.log()
    );
    // The lane refills: after one period one more gets through.
    tokio::time::sleep(Duration::from_millis(1000 / BULK_RATE_PER_S + 20)).await;
    client
        .send(BULK_ECHO, &[0x77; 16], Transport::Datagram)
        .await
        .expect("sent");
    let deadline = tokio::time::Instant::now() + EXCHANGE_TIMEOUT;
    let refilled = next_matching(&mut client, deadline, |e| match e {
        Event::Message { ty, payload, .. } if ty == BULK_ECHO && payload.first() == Some(&0x77) => {
            Some(())
        }
        _ => None,
    })
    .await;
    assert!(refilled.is_some(), "the bulk lane never refilled");
    client.close().await;
}

async fn a_flood_closes_the_abuser_with_abuse(backend: &str) {
    let gw = start(backend, "limits-abuse");
    let mut honest = connect(gw.options(&ticket(31, 7))).await.expect("welcome");
    let mut abuser = connect(gw.options(&ticket(32, 7))).await.expect("welcome");
    let mut sent = 0;
    let send_error = loop {
        if sent == FLOOD {
            break None;
        }
        match abuser
            .send(BULK_ECHO, &[0xab; 16], Transport::Datagram)
            .await
        {
            Ok(()) => sent += 1,
            Err(e) => break Some(e),
        }
    };
    let closed = match send_error {
        Some(e) => e,
        None => tokio::time::timeout(EXCHANGE_TIMEOUT, async {
            loop {
                if let Err(e) = abuser.recv().await {
                    break e;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{FLOOD} bulk messages did not close the abuser")),
    };
    assert!(
        matches!(closed, lanegate_client::ClientError::Closed(_)),
        "a typed close: {closed}"
    );
    assert_eq!(close_code(&closed), CloseCode::Abuse, "{closed}");
    assert!(
        sent > ABUSE_DROPS_MAX,
        "closed after {sent} messages, before exceeding abuse_drops_max"
    );
    // The honest client beside it is untouched and within its limits.
    let (back, _) = bulk_burst(&mut honest).await;
    assert!(
        back >= BULK_BURST,
        "{back} bulk echoes for the honest client"
    );
    honest.close().await;
}

on_both_backends!(
    rate_limit_drops_exactly_the_excess,
    a_flood_closes_the_abuser_with_abuse,
);
