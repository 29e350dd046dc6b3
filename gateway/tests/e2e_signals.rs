//! End to end, the signals (`runtime/signals.rs`): the real `lanegate`
//! binary on both IO backends.
//!
//! - SIGINT alone drains like SIGTERM: clients get `SERVER_DRAINING`, the
//!   process exits 0 as soon as they are gone, well before the drain
//!   timeout.
//! - A second SIGTERM or SIGINT during the drain exits at once with
//!   status 1.
//!
//! A connected client does not keep a drain waiting: the drain closes it at
//! once, and QUIC forgets the connection after three probe timeouts (tens
//! of ms on loopback). What does is a handshake the gateway started and
//! never saw finish: closing it waits three probe timeouts of an unmeasured
//! path (about 3 s with quinn's 333 ms initial RTT). A relay forwards a
//! client's first datagram (its Initial) to the gateway and nothing else,
//! so the drain is still waiting when the second signal comes.

#[macro_use]
mod e2e_support;

use std::time::{Duration, Instant};

use e2e_support::{EXCHANGE_TIMEOUT, Gateway, HalfOpen, Launch, close_code, ticket};
use lanegate_client::{Client, ClientError, CloseCode, connect};

/// A drain far longer than any test: only the clients or a second signal
/// end it.
const DRAIN_TIMEOUT_MS: u64 = 120_000;
/// "At once": a second signal ends the process within this.
const AT_ONCE: Duration = Duration::from_secs(2);

fn start(backend: &str, name: &str) -> Gateway {
    Gateway::start(&Launch {
        backend,
        name,
        drain_timeout_ms: DRAIN_TIMEOUT_MS,
        extra: "",
    })
}

/// Waits until the gateway closes `client`; returns the close.
async fn closed(client: &mut Client) -> ClientError {
    tokio::time::timeout(EXCHANGE_TIMEOUT, async {
        loop {
            if let Err(e) = client.recv().await {
                break e;
            }
        }
    })
    .await
    .expect("the client hears of the drain")
}

async fn sigint_drains_like_sigterm(backend: &str) {
    let mut gw = start(backend, "sigint");
    let mut client = connect(gw.options(&ticket(40, 7))).await.expect("welcome");
    let started = Instant::now();
    gw.signal("INT");
    let e = closed(&mut client).await;
    assert_eq!(close_code(&e), CloseCode::ServerDraining, "{e}");
    let status = tokio::task::block_in_place(|| gw.wait_exit(EXCHANGE_TIMEOUT))
        .unwrap_or_else(|| panic!("still running after the drain; log:\n{}", gw.log()));
    let log = gw.log();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        started.elapsed() < Duration::from_millis(DRAIN_TIMEOUT_MS),
        "the drain ended when the client left, not at the timeout"
    );
    assert!(log.contains("signal received: draining"), "{log}");
    assert!(log.contains("drained; exiting"), "{log}");
}

/// SIGTERM, then `second` while the drain waits for a handshake.
async fn second_signal_exits_at_once(backend: &str, second: &str) {
    let mut gw = start(backend, &format!("second-{second}"));
    let mut client = connect(gw.options(&ticket(42, 7))).await.expect("welcome");
    let half_open = HalfOpen::start(&gw, &ticket(41, 7)).await;
    gw.signal("TERM");
    // The drain has begun once the connected client hears of it.
    let e = closed(&mut client).await;
    assert_eq!(close_code(&e), CloseCode::ServerDraining, "{e}");
    let sent = Instant::now();
    gw.signal(second);
    let status = tokio::task::block_in_place(|| gw.wait_exit(AT_ONCE)).unwrap_or_else(|| {
        panic!(
            "still running {AT_ONCE:?} after a second signal; log:\n{}",
            gw.log()
        )
    });
    let took = sent.elapsed();
    let log = gw.log();
    assert_eq!(status.code(), Some(1), "took {took:?}; log:\n{log}");
    assert!(
        !log.contains("drained; exiting"),
        "the drain ended before the second signal: the test proves nothing\n{log}"
    );
    drop(half_open);
}

async fn a_second_sigterm_exits_at_once_with_1(backend: &str) {
    second_signal_exits_at_once(backend, "TERM").await;
}

async fn a_sigint_during_the_drain_exits_at_once_with_1(backend: &str) {
    second_signal_exits_at_once(backend, "INT").await;
}

on_both_backends!(
    sigint_drains_like_sigterm,
    a_second_sigterm_exits_at_once_with_1,
    a_sigint_during_the_drain_exits_at_once_with_1,
);
