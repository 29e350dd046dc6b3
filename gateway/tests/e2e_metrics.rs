//! End to end, the metrics endpoint (`observability.metrics_listen`): the
//! real `lanegate` binary on both IO backends, the client SDK over
//! loopback, and plain HTTP GETs.
//!
//! - `/metrics` counts exactly what one client did: one session, every
//!   game message either forwarded to the shard or dropped by admission
//!   (the bulk lane is limited to a burst of 5), none lost to a ring.
//! - The scrape passes `promtool check metrics` (when promtool is
//!   installed).
//! - `/status` says OK and shows the core's backend.
//! - `/healthz` answers 200 while serving and 503 as soon as SIGTERM starts
//!   the drain, and the endpoint goes away with the process. A handshake
//!   that never finishes ([`HalfOpen`]) holds the drain open for about
//!   3 s, long enough to look.
//!
//! Cores publish every 100 ms, so every check polls the endpoint until the
//! expected value appears, with a deadline.

#[macro_use]
mod e2e_support;

use std::net::SocketAddr;
use std::time::Duration;

use e2e_support::{
    EXCHANGE_TIMEOUT, Gateway, HalfOpen, Launch, close_code, http_get, metric, next_matching,
    ticket,
};
use lanegate_client::{Client, ClientError, CloseCode, Event, Transport, connect};

const BULK_BURST: u64 = 5;
/// Bulk echoes sent back to back: far over the burst.
const BULK_SENT: u64 = 30;
/// Critical echoes, each awaited.
const CRITICAL_SENT: u64 = 8;
const BULK_ECHO: u16 = 0x4fff;
const CRITICAL_ECHO: u16 = 0x1fff;
const MARKER: u8 = 0xee;

fn start(backend: &str, name: &str, drain_timeout_ms: u64) -> Gateway {
    let extra = format!(
        "[lanes.limits.bulk]\nrate_per_s = 1\nburst = {BULK_BURST}\n\
         [shards]\ngame = \"echo\"\n"
    );
    let gw = Gateway::start_with_metrics(&Launch {
        backend,
        name,
        drain_timeout_ms,
        extra: &extra,
    });
    assert!(gw.metrics.is_some(), "a `metrics ADDR` line");
    gw
}

/// `promtool check metrics` on a scrape in the classic text format (what a
/// request without `Accept` gets), where promtool is installed; CI sets
/// LANEGATE_REQUIRE_TOOLS so the check cannot pass by skipping.
fn lint(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var_os("LANEGATE_REQUIRE_TOOLS").is_none(),
                "promtool is required (LANEGATE_REQUIRE_TOOLS is set): {e}"
            );
            eprintln!("skipped promtool check metrics: {e}");
            return;
        }
    };
    let mut stdin = child.stdin.take().expect("piped");
    stdin.write_all(text.as_bytes()).expect("promtool reads");
    drop(stdin);
    let out = child.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `check` (given the page at `path`) until it returns `Some`.
async fn eventually<T>(
    addr: SocketAddr,
    path: &str,
    what: &str,
    mut check: impl FnMut(u16, &str) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + EXCHANGE_TIMEOUT;
    loop {
        let got = tokio::task::block_in_place(|| http_get(addr, path));
        let last = match got {
            Ok((code, body)) => {
                if let Some(t) = check(code, &body) {
                    return t;
                }
                format!("{code}\n{body}")
            }
            Err(e) => e.to_string(),
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not seen on {path} within {EXCHANGE_TIMEOUT:?}; last answer:\n{last}"
        );
        // Polling an HTTP endpoint: the gateway publishes on its own clock.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `ty` with `tag` and waits for its echo.
async fn echo(client: &mut Client, ty: u16, tag: u8, transport: Transport) {
    client.send(ty, &[tag; 16], transport).await.expect("sent");
    wait_echo(client, ty, tag).await;
}

async fn wait_echo(client: &mut Client, ty: u16, tag: u8) {
    let deadline = tokio::time::Instant::now() + EXCHANGE_TIMEOUT;
    let got = next_matching(client, deadline, |e| match e {
        Event::Message { ty: t, payload, .. } if t == ty && payload.first() == Some(&tag) => {
            Some(())
        }
        _ => None,
    })
    .await;
    assert!(got.is_some(), "no echo of {ty:#06x}/{tag:#04x}");
}

async fn metrics_count_what_a_client_did(backend: &str) {
    let gw = start(backend, "metrics-count", 5000);
    let addr = gw.metrics.expect("metrics on");
    // Before any client: the endpoint serves and counts nothing.
    eventually(addr, "/metrics", "zero sessions", |code, t| {
        (code == 200 && metric(t, "lanegate_sessions_opened_total", &[]) == Some(0.0)).then_some(())
    })
    .await;

    let mut client = connect(gw.options(&ticket(51, 7))).await.expect("welcome");
    for i in 0..CRITICAL_SENT {
        let tag = u8::try_from(i).expect("few");
        echo(&mut client, CRITICAL_ECHO, tag, Transport::Stream).await;
    }
    for i in 0..BULK_SENT {
        let tag = u8::try_from(i).expect("few");
        client
            .send(BULK_ECHO, &[tag; 16], Transport::Datagram)
            .await
            .expect("sent");
    }
    echo(&mut client, CRITICAL_ECHO, MARKER, Transport::Stream).await;

    // Every game message the client sent was forwarded or dropped by
    // admission, nothing else: the two add up exactly.
    let sent = CRITICAL_SENT + BULK_SENT + 1;
    let text = eventually(addr, "/metrics", "all messages accounted", |_, t| {
        let forwarded = metric(t, "lanegate_messages_to_shard_total", &[])?;
        let dropped = metric(t, "lanegate_admission_dropped_total", &[])?;
        (forwarded + dropped == sent as f64).then(|| t.to_owned())
    })
    .await;
    let v = |name: &str, labels: &[(&str, &str)]| {
        metric(&text, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?} in\n{text}"))
    };
    assert_eq!(v("lanegate_sessions_opened_total", &[]), 1.0);
    assert_eq!(v("lanegate_sessions_open", &[]), 1.0);
    assert_eq!(v("lanegate_connections_open", &[]), 1.0);
    let bulk_dropped = v("lanegate_admission_dropped_total", &[("lane", "bulk")]);
    // A burst of 5 at 1/s: the rest of the 30 is dropped, give or take
    // what the rate refills while they arrive.
    assert!(
        (20.0..=(BULK_SENT - BULK_BURST) as f64).contains(&bulk_dropped),
        "{bulk_dropped} bulk drops of {BULK_SENT}"
    );
    for lane in ["critical", "high", "normal"] {
        assert_eq!(
            v("lanegate_admission_dropped_total", &[("lane", lane)]),
            0.0,
            "{lane}"
        );
    }
    assert_eq!(v("lanegate_link_dropped_total", &[]), 0.0);
    assert_eq!(v("lanegate_link_joins_refused_total", &[]), 0.0);
    assert_eq!(v("lanegate_tickets_refused_total", &[]), 0.0);
    // QUIC packs several frames into a UDP datagram: the bulk messages are
    // one QUIC DATAGRAM frame each, not one UDP datagram each.
    assert!(v("lanegate_udp_datagrams_in_total", &[]) > 0.0);
    assert_eq!(v("lanegate_quic_datagrams_in_total", &[]), BULK_SENT as f64);
    let out = v("lanegate_datagrams_out_total", &[]) + v("lanegate_stream_messages_out_total", &[]);
    assert!(out >= (CRITICAL_SENT + 1 + BULK_BURST) as f64, "{out} out");
    assert_eq!(
        v("lanegate_core_info", &[("backend", backend), ("core", "0")]),
        1.0
    );
    assert_eq!(v("lanegate_draining", &[]), 0.0);
    // The kernel's drops of the core's socket, read from /proc/net/udp:
    // a polite client loses nothing there.
    if std::path::Path::new("/proc/net/udp").exists() {
        assert_eq!(v("lanegate_udp_socket_drops_total", &[("core", "0")]), 0.0);
    }
    assert_eq!(v("lanegate_quic_packets_undecodable_total", &[]), 0.0);
    assert!(text.contains("lanegate_build_info{version=\""), "{text}");
    lint(&text);
    // Shards publish their health every few ticks (10 at 30 Hz), so the
    // first snapshots may predate the client's join.
    let text = eventually(addr, "/metrics", "shard 0 with the player", |_, t| {
        let players = metric(t, "lanegate_shard_players", &[("shard", "0")])?;
        (players == 1.0).then(|| t.to_owned())
    })
    .await;
    let v = |name: &str, labels: &[(&str, &str)]| {
        metric(&text, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?} in\n{text}"))
    };
    assert_eq!(v("lanegate_shard_stalled", &[("shard", "0")]), 0.0);
    let tick = |q: &str| {
        v(
            &format!("lanegate_shard_tick_{q}_seconds"),
            &[("shard", "0")],
        )
    };
    assert!(
        tick("p50") <= tick("p99") && tick("p99") <= tick("max"),
        "{text}"
    );
    assert!(v("lanegate_shard_tick_budget_seconds", &[("shard", "0")]) > 0.0);
    assert!(v("lanegate_shard_ticks_total", &[("shard", "0")]) > 0.0);

    let page = eventually(addr, "/status", "OK", |code, p| {
        (code == 200 && p.lines().next()?.ends_with("  OK")).then(|| p.to_owned())
    })
    .await;
    assert!(page.contains("state     serving"), "{page}");
    assert!(page.contains(backend), "{page}");

    let (code, _) = tokio::task::block_in_place(|| http_get(addr, "/nope")).expect("answers");
    assert_eq!(code, 404);
    client.close().await;
}

async fn healthz_turns_503_when_the_drain_starts(backend: &str) {
    let mut gw = start(backend, "metrics-drain", 120_000);
    let addr = gw.metrics.expect("metrics on");
    let (code, body) = tokio::task::block_in_place(|| http_get(addr, "/healthz")).expect("up");
    assert_eq!((code, body.as_str()), (200, "ok\n"));

    let mut client = connect(gw.options(&ticket(52, 7))).await.expect("welcome");
    let half_open = HalfOpen::start(&gw, &ticket(53, 7)).await;
    gw.signal("TERM");
    let e: ClientError = tokio::time::timeout(EXCHANGE_TIMEOUT, async {
        loop {
            if let Err(e) = client.recv().await {
                break e;
            }
        }
    })
    .await
    .expect("the client hears of the drain");
    assert_eq!(close_code(&e), CloseCode::ServerDraining, "{e}");

    eventually(addr, "/healthz", "503 draining", |code, body| {
        (code == 503 && body == "draining\n").then_some(())
    })
    .await;
    eventually(addr, "/metrics", "lanegate_draining 1", |_, t| {
        (metric(t, "lanegate_draining", &[]) == Some(1.0)).then_some(())
    })
    .await;
    let (_, page) = tokio::task::block_in_place(|| http_get(addr, "/status")).expect("up");
    assert!(page.contains("state     draining"), "{page}");
    assert!(
        !gw.log().contains("drained; exiting"),
        "the drain ended before the checks: the test proves nothing\n{}",
        gw.log()
    );

    // The endpoint neither keeps the process alive nor outlives it.
    let status = tokio::task::block_in_place(|| gw.wait_exit(EXCHANGE_TIMEOUT))
        .unwrap_or_else(|| panic!("still running after the drain; log:\n{}", gw.log()));
    assert_eq!(status.code(), Some(0), "{}", gw.log());
    assert!(
        tokio::task::block_in_place(|| http_get(addr, "/healthz")).is_err(),
        "the endpoint is gone with the process"
    );
    drop(half_open);
}

on_both_backends!(
    metrics_count_what_a_client_did,
    healthz_turns_503_when_the_drain_starts,
);
