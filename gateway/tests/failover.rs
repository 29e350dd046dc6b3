//! Failover from a stalled shard, end to end: an in-process gateway
//! (`Gateway::start`) with two shards on their own threads, real QUIC
//! clients over loopback, and a game that blocks forever in `on_tick` on
//! shard 0 when the test says so (on a channel the test holds).
//!
//! - The stuck shard's players get `ZONE_RESET` within the failover time
//!   plus a tick, and then hear ticks from the healthy shard;
//! - the healthy shard's players see no gap in their ticks meanwhile;
//! - a newcomer to the stuck shard's zone is placed on the healthy one;
//! - when the stuck tick is released, everything the woken shard sends is
//!   dropped by the gateway (counted in `/metrics`), none reaches a client;
//! - with a single shard there is nowhere to go: its players are closed
//!   with `SHARD_UNAVAILABLE`, a newcomer's `Hello` is refused with it, and
//!   `/readyz` turns 503.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lanegate_client::{Client, CloseCode, ConnectOptions, Event, ServerVerify, connect};
use lanegate_common::config::{Config, HostInfo};
use lanegate_common::ids::{PlayerId, ShardId, ZoneId};
use lanegate_common::ticket::{DEV_KEY_ID, KeySet, Ticket};
use lanegate_gateway::runtime::{GameStart, Gateway, Plan};
use lanegate_shard::{Game, Incoming, Msg, Outbox};

/// Sent to every player each tick: the shard (u16) and its tick (u32).
const TICK: u16 = 0x2001;
/// Sent by the stuck game once released: must never reach a client.
const LATE: u16 = 0x2002;

const TICK_MS: u64 = 33;
const FAILOVER_MS: u64 = 300;
const WAIT: Duration = Duration::from_secs(10);

/// What the test holds to stall shard 0's game.
struct Gate {
    armed: AtomicBool,
    entered: Mutex<mpsc::Sender<Instant>>,
    release: Mutex<mpsc::Receiver<()>>,
}

/// Ticks every player; shard 0 blocks in `on_tick` once the gate is armed.
struct Ticker {
    shard: ShardId,
    gate: Arc<Gate>,
}

impl Game for Ticker {
    fn on_message(&mut self, _: &mut Outbox<'_>, _: Incoming<'_>) {}

    fn on_tick(&mut self, out: &mut Outbox<'_>) {
        if self.shard == ShardId(0) && self.gate.armed.swap(false, Ordering::AcqRel) {
            let _ = self
                .gate
                .entered
                .lock()
                .expect("unpoisoned")
                .send(Instant::now());
            // Blocks until the test releases it (or drops the sender).
            let _ = self.gate.release.lock().expect("unpoisoned").recv();
            let zones: Vec<ZoneId> = out.zones().collect();
            for zone in zones {
                let _ = out.broadcast(zone, Msg::datagram(LATE, b"late"));
            }
        }
        // The shard, and the low 32 bits of its tick.
        let mut payload = [0u8; 6];
        payload[..2].copy_from_slice(&self.shard.0.to_be_bytes());
        payload[2..].copy_from_slice(&out.tick().to_be_bytes()[4..]);
        let zones: Vec<ZoneId> = out.zones().collect();
        for zone in zones {
            let _ = out.broadcast(zone, Msg::datagram(TICK, &payload));
        }
    }
}

struct Rig {
    gateway: Gateway,
    gate: Arc<Gate>,
    entered: mpsc::Receiver<Instant>,
    release: mpsc::Sender<()>,
}

fn start(shards: usize) -> Rig {
    // One CPU per shard, as validation wants; on a smaller machine a shard
    // thread that cannot be pinned runs unpinned (and says so in the log).
    let host = HostInfo { cores: 1 + shards };
    let cores: Vec<String> = (1..=shards).map(|c| c.to_string()).collect();
    let cores = cores.join(", ");
    let config = Config::from_toml_str(&format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\ncores = [0]\nio_backend = \"portable\"\n\
         drain_timeout_ms = 2000\n\
         [shards]\ncores = [{cores}]\ntick_rate_hz = {}\ntick_budget_us = 20000\n\
         stall_after_ms = 100\nstall_failover_ms = {FAILOVER_MS}\n\
         [observability]\nmetrics_listen = \"127.0.0.1:0\"\n",
        1000 / TICK_MS
    ))
    .expect("a valid config");
    config.validate(&host).expect("valid for the host");
    let plan = Plan::new(config, &host).expect("a plan");
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let gate = Arc::new(Gate {
        armed: AtomicBool::new(false),
        entered: Mutex::new(entered_tx),
        release: Mutex::new(release_rx),
    });
    let factory = {
        let gate = Arc::clone(&gate);
        move |start: GameStart| Ticker {
            shard: start.shard,
            gate: Arc::clone(&gate),
        }
    };
    let gateway = Gateway::start(&plan, factory, Arc::new(AtomicBool::new(false)))
        .expect("the gateway starts");
    Rig {
        gateway,
        gate,
        entered,
        release,
    }
}

fn ticket(player: u64, zone: u32) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    KeySet::dev()
        .mint(&Ticket {
            key_id: DEV_KEY_ID,
            player: PlayerId(player),
            zone: ZoneId(zone),
            issued_at_s: now,
            expires_at_s: now + 3600,
        })
        .expect("mintable")
}

fn options(gw: &Gateway, player: u64, zone: u32) -> ConnectOptions {
    let verify = ServerVerify::fingerprint_hex(gw.fingerprint()).expect("a pin");
    let mut opts = ConnectOptions::new(gw.local_addr(), "localhost", ticket(player, zone), verify);
    opts.handshake_timeout = WAIT;
    opts
}

/// The shard named by the next tick message, skipping other events.
async fn next_tick(client: &mut Client) -> u16 {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Event::Message { ty, payload, .. } = client.recv().await.expect("connected") {
                assert_ne!(ty, LATE, "a fenced shard's output reached a client");
                if ty == TICK {
                    break u16::from_be_bytes([payload[0], payload[1]]);
                }
            }
        }
    })
    .await
    .expect("ticks arrive")
}

fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("metrics up");
    write!(s, "GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").expect("sent");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let code = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (code, body)
}

/// The value of the series `name` (labels included, exactly) in `/metrics`.
fn metric(addr: SocketAddr, series: &str) -> Option<f64> {
    let (_, body) = http_get(addr, "/metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Polls `/metrics` until `series` satisfies `want`, for at most `WAIT`.
fn await_metric(addr: SocketAddr, series: &str, want: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = metric(addr, series).filter(|&v| want(v)) {
            return v;
        }
        assert!(Instant::now() < deadline, "{series} never as wanted");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn finish(rig: Rig) {
    let _ = rig.release.send(());
    rig.gateway.begin_drain();
    rig.gateway.join().expect("a clean drain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_shards_players_move_to_the_healthy_one_and_its_late_output_is_dropped() {
    let rig = start(2);
    let metrics = rig.gateway.metrics_addr().expect("metrics on");
    // Zone z lives on shard z % 2.
    let mut stuck = connect(options(&rig.gateway, 1, 0)).await.expect("welcome");
    let mut healthy = connect(options(&rig.gateway, 2, 1)).await.expect("welcome");
    assert_eq!(next_tick(&mut stuck).await, 0);
    assert_eq!(next_tick(&mut healthy).await, 1);

    rig.gate.armed.store(true, Ordering::Release);
    let blocked_at = tokio::task::block_in_place(|| rig.entered.recv_timeout(WAIT))
        .expect("shard 0 blocks in on_tick");

    // Meanwhile, the healthy shard's player keeps hearing every tick.
    let watch_healthy = tokio::spawn(async move {
        let mut last = Instant::now();
        let mut worst = Duration::ZERO;
        let until = Instant::now() + Duration::from_millis(FAILOVER_MS * 2);
        while Instant::now() < until {
            assert_eq!(next_tick(&mut healthy).await, 1);
            worst = worst.max(last.elapsed());
            last = Instant::now();
        }
        (healthy, worst)
    });

    let reset = tokio::time::timeout(WAIT, async {
        loop {
            match stuck.recv().await.expect("still connected") {
                Event::ZoneReset(zone) => break (zone, Instant::now()),
                Event::Message { ty, .. } => assert_ne!(ty, LATE),
                _ => {}
            }
        }
    })
    .await
    .expect("ZONE_RESET arrives");
    let rehomed_after = reset.1 - blocked_at;
    assert_eq!(reset.0, ZoneId(0));
    eprintln!(
        "re-homed {rehomed_after:?} after the tick blocked (failover {FAILOVER_MS} ms, tick {TICK_MS} ms)"
    );
    assert!(
        rehomed_after >= Duration::from_millis(FAILOVER_MS),
        "not before the failover time: {rehomed_after:?}"
    );
    // Failover time plus one tick, and scheduling slack on a shared host.
    assert!(
        rehomed_after < Duration::from_millis(FAILOVER_MS + TICK_MS + 150),
        "re-homed too late: {rehomed_after:?}"
    );
    // Its zone now ticks on the healthy shard.
    assert_eq!(next_tick(&mut stuck).await, 1);
    let (mut healthy, worst) = watch_healthy.await.expect("watched");
    eprintln!("healthy shard's worst gap between ticks: {worst:?}");
    assert!(
        worst < Duration::from_millis(FAILOVER_MS / 2),
        "the healthy shard's players saw a gap of {worst:?}"
    );

    // A newcomer to zone 0 is placed on the healthy shard at once.
    let mut newcomer = connect(options(&rig.gateway, 3, 0)).await.expect("welcome");
    assert_eq!(next_tick(&mut newcomer).await, 1);
    let (code, body) = tokio::task::block_in_place(|| http_get(metrics, "/readyz"));
    assert_eq!((code, body.as_str()), (200, "ready\n"), "one shard is left");
    assert_eq!(
        tokio::task::block_in_place(|| metric(
            metrics,
            "lanegate_shard_failovers_total{shard=\"0\"}"
        )),
        Some(1.0)
    );
    assert_eq!(
        tokio::task::block_in_place(|| metric(metrics, "lanegate_shards_available")),
        Some(1.0)
    );
    tokio::task::block_in_place(|| {
        await_metric(
            metrics,
            "lanegate_failover_sessions_rehomed_total{core=\"0\"}",
            |v| v == 1.0,
        );
        let age = await_metric(
            metrics,
            "lanegate_shard_heartbeat_age_seconds{shard=\"0\"}",
            |v| v >= FAILOVER_MS as f64 / 1000.0,
        );
        eprintln!("stuck shard's heartbeat age at the scrape: {age} s");
    });

    // Release the stuck tick: the woken shard's LATE broadcast and its
    // ticks reach the core and are dropped there, counted.
    let before = tokio::task::block_in_place(|| {
        metric(metrics, "lanegate_link_fenced_dropped_total{core=\"0\"}")
    })
    .expect("exported");
    rig.release.send(()).expect("the stuck game waits");
    let dropped = tokio::task::block_in_place(|| {
        await_metric(
            metrics,
            "lanegate_link_fenced_dropped_total{core=\"0\"}",
            |v| v >= before + 2.0,
        )
    });
    eprintln!("late entries from the fenced shard dropped: {dropped}");
    // Every client keeps hearing only the healthy shard, never LATE.
    for client in [&mut stuck, &mut healthy, &mut newcomer] {
        for _ in 0..5 {
            assert_eq!(next_tick(client).await, 1);
        }
    }
    finish(rig);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_healthy_shard_players_are_closed_and_newcomers_rejected() {
    let rig = start(1);
    let metrics = rig.gateway.metrics_addr().expect("metrics on");
    let mut player = connect(options(&rig.gateway, 1, 0)).await.expect("welcome");
    assert_eq!(next_tick(&mut player).await, 0);
    let (code, _) = tokio::task::block_in_place(|| http_get(metrics, "/readyz"));
    assert_eq!(code, 200);

    rig.gate.armed.store(true, Ordering::Release);
    let blocked_at = tokio::task::block_in_place(|| rig.entered.recv_timeout(WAIT))
        .expect("the shard blocks in on_tick");
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            if let Err(e) = player.recv().await {
                break e;
            }
        }
    })
    .await
    .expect("the player is closed");
    eprintln!("closed {:?} after the tick blocked", blocked_at.elapsed());
    assert_eq!(
        closed.closed().map(|c| c.code),
        Some(CloseCode::ShardUnavailable)
    );
    let Err(refused) = connect(options(&rig.gateway, 2, 0)).await else {
        panic!("no shard can take a newcomer, yet it was welcomed");
    };
    assert!(
        matches!(&refused, lanegate_client::ClientError::Rejected(c) if c.code == CloseCode::ShardUnavailable),
        "{refused:?}"
    );
    let (code, body) = tokio::task::block_in_place(|| http_get(metrics, "/readyz"));
    assert_eq!((code, body.as_str()), (503, "no shard available\n"));
    let (code, _) = tokio::task::block_in_place(|| http_get(metrics, "/healthz"));
    assert_eq!(code, 200, "alive, only not ready");
    tokio::task::block_in_place(|| {
        await_metric(
            metrics,
            "lanegate_shard_unavailable_total{core=\"0\"}",
            |v| v == 2.0,
        );
    });
    finish(rig);
}
