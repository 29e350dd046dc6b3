//! Issue 13 §5's five attack scenarios, end to end: the real `lanegate`
//! binary on loopback, loaded by the bot swarm of `lanegate_bots` and
//! attacked by `lanegate_bots::attack` (what `lanegate bots --overload` and
//! `--attack` run), judged by what the players measured, the gateway's
//! `/metrics` and its resident memory.
//!
//! Each scenario runs twice: a short variant in CI (seconds, a few dozen
//! players, modest rates, with bounds loose enough for a debug build on a
//! shared 2-vCPU runner, each saying so), and an `#[ignore]`d long one at
//! the sizes of the issue, whose figures are in `docs/RELIABILITY.md`:
//!
//! ```sh
//! cargo test --profile bench -p lanegate-gateway --test e2e_attacks -- --ignored --test-threads 1 --nocapture
//! ```
//!
//! The scenarios run one at a time (a lock), since each measures latency
//! and goodput on a host whose CPUs the others would take. Nothing sleeps
//! where an event exists: floods start when the swarm reports every
//! player connected, the drain when it does; only `/metrics` (published
//! every 100 ms) and `/proc` are polled, with deadlines.

#[allow(unused_macros)]
#[macro_use]
mod e2e_support;

use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use e2e_support::swarm::{
    Sampler, attack_cfg, attack_on, block_on, connections_open, critical_goodput, critical_p99_ms,
    max_series, mb, play, serial, settle, start, swarm,
};
use e2e_support::{http_get, metric, rss_bytes};
use lanegate_bots::attack::{self, Attack};

/// What a player sends: the Arena mix of `BotsConfig::new` (critical 30/s,
/// high 20/s, normal 0.2/s, bulk 1/s).
const HIGH_PER_PLAYER_PER_S: u32 = 20;
const TICK_RATE_HZ: u32 = 30;

// ---------------------------------------------------------------------------
// 1. Overload at 2× capacity with the normal lane mix.

/// How big a run is.
struct Overload {
    players: u32,
    play: Duration,
    /// p99 of loaded critical against unloaded: `ratio × unloaded + slack`.
    p99_ratio: f64,
    p99_slack_ms: f64,
}

/// Capacity is set by configuration, so that "2×" means the same on any
/// host: the shard takes `high_budget` messages of `high` per tick and no
/// message passes between ticks, so it serves at most `high_budget × 30`
/// a second, which the players' 1× mix fills exactly. At 2× the `high`
/// inbox overflows (its limit is a few ticks' worth), the shard's ladder
/// climbs, the cores shed `bulk`; `critical` has the default budget and
/// must lose nothing its rate limit admits.
fn overload(o: &Overload) {
    let high_budget = o.players * HIGH_PER_PLAYER_PER_S / TICK_RATE_HZ;
    assert_eq!(
        high_budget * TICK_RATE_HZ,
        o.players * HIGH_PER_PLAYER_PER_S
    );
    let extra = format!(
        "[shards]\ngame = \"echo\"\nmessage_pass_us = 0\ntick_rate_hz = {TICK_RATE_HZ}\n\
         [shards.lane_budget_per_tick]\ncritical = 4096\nhigh = {high_budget}\nnormal = 8\nbulk = 1\n\
         [shards.inbox_slots_max]\ncritical = 8192\nhigh = {}\nnormal = 64\nbulk = 16\n\
         [overload]\nsample_ms = 100\ndwell_ms = 1000\n",
        high_budget * 8
    );
    let gw = start("overload", 5000, &extra);
    block_on(async {
        let unloaded = play(swarm(&gw, o.players as usize, o.play, 1000), || {}).await;
        let sampler = Sampler::start(&gw);
        let mut cfg = swarm(&gw, o.players as usize, o.play, 1000);
        cfg.overload(2.0).expect("2 is a valid factor");
        let loaded = play(cfg, || {}).await;
        let peaks = sampler.finish();
        let fell = settle(&gw, "every shard back to level 0", |t| {
            max_series(t, "lanegate_shard_overload_level") == 0.0
                && max_series(t, "lanegate_overload_level") == 0.0
        });
        let (c, h) = (&loaded.lanes.critical, &loaded.lanes.high);
        let (p99_unloaded, p99_loaded) = (critical_p99_ms(&unloaded), critical_p99_ms(&loaded));
        eprintln!(
            "overload 2x: {} players; critical sent {} lost {} (over limit {}), p99 {p99_unloaded:.2} ms \
             unloaded, {p99_loaded:.2} ms loaded ({:.2}x); high lost {:.1} %; peak level shard {} \
             core {}; back to 0 {:.1} s after the load",
            o.players,
            c.sent,
            c.lost,
            c.lost_over_limit,
            p99_loaded / p99_unloaded,
            h.loss_percent,
            peaks.shard_level,
            peaks.core_level,
            fell.as_secs_f64()
        );
        assert_eq!(loaded.failed, 0, "{loaded}");
        assert_eq!(
            c.lost - c.lost_over_limit,
            0,
            "critical lost within its limit:\n{loaded}"
        );
        assert!(
            c.sent > 0 && h.lost > 0,
            "2x really overloads high:\n{loaded}"
        );
        assert!(
            peaks.shard_level >= 1.0,
            "the shard's ladder rose: {peaks:?}"
        );
        assert!(
            p99_loaded <= o.p99_ratio * p99_unloaded + o.p99_slack_ms,
            "critical p99 {p99_loaded:.2} ms loaded against {p99_unloaded:.2} ms unloaded"
        );
    });
}

/// CI: p99 within 2× + 10 ms of unloaded (a debug build on a shared runner
/// jitters by more than the 1.2× the issue asks; the long run checks that).
#[test]
fn overload_at_2x_capacity_keeps_critical_and_the_levels_fall_back() {
    let _one = serial();
    overload(&Overload {
        players: 21,
        play: Duration::from_secs(4),
        p99_ratio: 2.0,
        p99_slack_ms: 10.0,
    });
}

#[test]
#[ignore = "60 s; cargo test --profile bench -p lanegate-gateway --test e2e_attacks -- --ignored --test-threads 1"]
fn overload_at_2x_capacity_long() {
    let _one = serial();
    overload(&Overload {
        players: 60,
        play: Duration::from_secs(30),
        p99_ratio: 1.2,
        p99_slack_ms: 0.0,
    });
}

// ---------------------------------------------------------------------------
// 2. Handshake flood while playing.

struct HandshakeFlood {
    /// Appended to the gateway's `[gateway]` section.
    gateway: &'static str,
    players: usize,
    play: Duration,
    rate_per_s: u32,
    sources: usize,
    p99_ratio: f64,
    p99_slack_ms: f64,
    /// Memory during the flood may exceed the unflooded baseline by this.
    rss_growth_max_bytes: u64,
    /// Also play once while the same flood goes to a socket nobody reads
    /// (the kernel drops it at the full queue), and hold the p99 bound
    /// against that run: on a host where the attacker shares the CPUs,
    /// generating and receiving the flood costs the players' latency
    /// whatever the gateway does, and that run measures the cost.
    sink_baseline: bool,
    /// Flood the idle gateway for this long before the memory baseline is
    /// read: the first flood a process sees raises the allocator's
    /// high-water mark once (a core thread's malloc arena, about 6 MB at
    /// 12 000/s, `docs/RELIABILITY.md`), which later floods reuse; the
    /// bound after the flood is on what a flood leaves behind beyond that.
    warm_up: Duration,
}

/// Players play unflooded, then again while Initials from many addresses
/// arrive at `rate_per_s` (from when every player is in until just before
/// they stop). Their critical goodput must stay at 95 % of unflooded, the
/// gateway must answer with Retry, and its memory stays bounded during the
/// flood and returns once the flood's connections are gone.
fn handshake_flood(f: &HandshakeFlood) {
    let extra = format!("{}\n[shards]\ngame = \"echo\"\n", f.gateway);
    let gw = start("handshake-flood", 5000, &extra);
    block_on(async {
        let unflooded = play(swarm(&gw, f.players, f.play, 1000), || {}).await;
        settle(&gw, "the unflooded players gone", |t| {
            connections_open(t) == 0.0
        });
        let flood_secs = f.play.as_secs_f64() - 1.0;
        let sunk = if f.sink_baseline {
            let sink = std::net::UdpSocket::bind("127.0.0.1:0").expect("a sink socket");
            let mut cfg = attack_cfg(
                Attack::HandshakeFlood,
                &gw,
                f.rate_per_s,
                flood_secs,
                f.sources,
            );
            cfg.server = sink.local_addr().expect("the sink's address");
            let (go, went) = mpsc::channel();
            let flood = attack_on(went, cfg);
            let report = play(swarm(&gw, f.players, f.play, 1000), move || {
                let _ = go.send(());
            })
            .await;
            let flood = flood.join().expect("the sunk flood");
            eprintln!(
                "handshake flood into a sink: {:.0} Initials/s; critical p99 {:.2} ms",
                flood.achieved_per_s,
                critical_p99_ms(&report)
            );
            settle(&gw, "the sunk run's players gone", |t| {
                connections_open(t) == 0.0
            });
            Some(report)
        } else {
            None
        };
        if !f.warm_up.is_zero() {
            let (go, went) = mpsc::channel();
            let warm_up = attack_on(
                went,
                attack_cfg(
                    Attack::HandshakeFlood,
                    &gw,
                    f.rate_per_s,
                    f.warm_up.as_secs_f64(),
                    f.sources,
                ),
            );
            let rss_cold = gw.rss_bytes();
            go.send(()).expect("the warm-up flood waits");
            warm_up.join().expect("the warm-up flood");
            eprintln!(
                "handshake flood: RSS {:.1} MB before a first {:?} flood, {:.1} MB after",
                mb(rss_cold),
                f.warm_up,
                mb(gw.rss_bytes())
            );
        }
        let rss_base = gw.rss_bytes();
        let (go, went) = mpsc::channel();
        let flood = attack_on(
            went,
            attack_cfg(
                Attack::HandshakeFlood,
                &gw,
                f.rate_per_s,
                flood_secs,
                f.sources,
            ),
        );
        let sampler = Sampler::start(&gw);
        let flooded = play(swarm(&gw, f.players, f.play, 1000), move || {
            let _ = go.send(());
        })
        .await;
        let flood = flood.join().expect("the flood");
        let peaks = sampler.finish();
        let text = gw.scrape();
        let retries = metric(&text, "lanegate_quic_retries_sent_total", &[]).unwrap_or(0.0);
        let freed = settle(&gw, "the flood's connections gone", |t| {
            connections_open(t) == 0.0
        });
        let rss_after = gw.rss_bytes();
        let (g0, g1) = (critical_goodput(&unflooded), critical_goodput(&flooded));
        let (p0, p1) = (critical_p99_ms(&unflooded), critical_p99_ms(&flooded));
        let p_sunk = sunk.as_ref().map(critical_p99_ms);
        if let Some(ps) = p_sunk {
            eprintln!(
                "handshake flood: critical p99 {p0:.2} ms quiet, {ps:.2} ms with the flood sunk, \
                 {p1:.2} ms with it at the gateway ({:.2}x the sunk run)",
                p1 / ps
            );
        }
        eprintln!(
            "handshake flood: {:.0} Initials/s from {} addresses for {:.1} s; {retries} Retries; \
             critical goodput {g0:.2} % unflooded, {g1:.2} % flooded ({:.1} % of unflooded); \
             p99 {p0:.2} -> {p1:.2} ms ({:.2}x); RSS {:.1} MB before, peak {:.1} MB, {:.1} MB \
             after (connections gone {:.1} s after)",
            flood.achieved_per_s,
            flood.source_addrs,
            flood.wall_s,
            100.0 * g1 / g0,
            p1 / p0,
            mb(rss_base),
            mb(peaks.rss_bytes),
            mb(rss_after),
            freed.as_secs_f64()
        );
        assert_eq!(flooded.failed, 0, "{flooded}");
        assert!(
            g1 >= 0.95 * g0,
            "critical goodput {g1:.2} % flooded, {g0:.2} % not"
        );
        assert!(retries > 0.0, "Retry engaged under the flood");
        let base = p_sunk.unwrap_or(p0);
        assert!(
            p1 <= f.p99_ratio * base + f.p99_slack_ms,
            "critical p99 {p1:.2} ms flooded against {base:.2} ms ({p0:.2} ms quiet)"
        );
        assert!(
            peaks.rss_bytes <= rss_base + f.rss_growth_max_bytes,
            "RSS peaked at {:.1} MB from {:.1} MB",
            mb(peaks.rss_bytes),
            mb(rss_base)
        );
        assert!(
            rss_after <= rss_base + rss_base / 20,
            "RSS {:.1} MB after the flood, {:.1} MB before",
            mb(rss_after),
            mb(rss_base)
        );
    });
}

/// CI: 400 Initials/s from 100 addresses (what a debug attacker and a
/// debug gateway sustain beside the players on two shared vCPUs) against
/// Retry thresholds scaled down with it (`retry_above_handshakes_per_s`
/// and `unvalidated_connections_max` at a 25th of the defaults, as the
/// rate is a 30th of the long run's). p99 within 10× + 100 ms: the debug
/// build's Initial handling shows 5–30× on a 5 ms base; without Retry the
/// same flood takes it past 600 ms.
#[test]
fn handshake_flood_while_playing_keeps_goodput_and_engages_retry() {
    let _one = serial();
    handshake_flood(&HandshakeFlood {
        gateway: "retry_above_handshakes_per_s = 40\nunvalidated_connections_max = 40",
        players: 10,
        play: Duration::from_secs(5),
        rate_per_s: 400,
        sources: 100,
        p99_ratio: 10.0,
        p99_slack_ms: 100.0,
        rss_growth_max_bytes: 64 << 20,
        sink_baseline: false,
        warm_up: Duration::ZERO,
    });
}

/// The issue's bounds, the p99 against the same flood sunk into a socket
/// nobody reads (on 2 shared vCPUs the attacker alone takes the players'
/// p99 from about 2.8 to 6.7 ms, `docs/RELIABILITY.md`).
#[test]
#[ignore = "130 s; cargo test --profile bench -p lanegate-gateway --test e2e_attacks -- --ignored --test-threads 1"]
fn handshake_flood_while_playing_long() {
    let _one = serial();
    handshake_flood(&HandshakeFlood {
        gateway: "",
        players: 100,
        play: Duration::from_secs(40),
        rate_per_s: 12_000,
        sources: 2000,
        p99_ratio: 1.2,
        p99_slack_ms: 0.0,
        rss_growth_max_bytes: 64 << 20,
        sink_baseline: true,
        warm_up: Duration::from_secs(5),
    });
}

// ---------------------------------------------------------------------------
// 3. Garbage flood from many source ports.

struct GarbageFlood {
    players: usize,
    play: Duration,
    rate_per_s: u32,
    sources: usize,
    /// Critical goodput players must keep, percent.
    goodput_min: f64,
}

/// Random 1–1500-byte datagrams from many ports while players play: the
/// gateway stays up, its memory grows less than 5 %, and the players do
/// not notice.
fn garbage_flood(f: &GarbageFlood) {
    let gw = start("garbage-flood", 5000, "[shards]\ngame = \"echo\"\n");
    block_on(async {
        let (go, went) = mpsc::channel();
        let pid = gw.pid();
        let rss_before = Arc::new(Mutex::new(0u64));
        let before = rss_before.clone();
        let mut cfg = attack_cfg(
            Attack::GarbageFlood,
            &gw,
            f.rate_per_s,
            f.play.as_secs_f64() - 1.0,
            f.sources,
        );
        // Ports only, as a flood from one host's NAT would be.
        cfg.source_addrs = 1;
        let flood = attack_on(went, cfg);
        let report = play(swarm(&gw, f.players, f.play, 1000), move || {
            *before.lock().unwrap_or_else(PoisonError::into_inner) = rss_bytes(pid);
            let _ = go.send(());
        })
        .await;
        let flood = flood.join().expect("the flood");
        let rss_before = *rss_before.lock().unwrap_or_else(PoisonError::into_inner);
        let rss_after = gw.rss_bytes();
        let text = gw.scrape();
        let undecodable =
            metric(&text, "lanegate_quic_packets_undecodable_total", &[]).unwrap_or(0.0);
        let healthz = http_get(gw.metrics.expect("metrics on"), "/healthz").map(|(code, _)| code);
        let goodput = critical_goodput(&report);
        eprintln!(
            "garbage flood: {} datagrams at {:.0}/s ({:.1} MB/s) from {} ports for {:.1} s; \
             {undecodable} counted undecodable; RSS {:.2} -> {:.2} MB ({:+.2} %); critical \
             goodput {goodput:.3} %, p99 {:.2} ms",
            flood.sent,
            flood.achieved_per_s,
            flood.bytes_sent as f64 / flood.wall_s / 1e6,
            flood.sources,
            flood.wall_s,
            mb(rss_before),
            mb(rss_after),
            100.0 * (rss_after as f64 / rss_before as f64 - 1.0),
            critical_p99_ms(&report)
        );
        assert_eq!(healthz.ok(), Some(200), "alive after the flood");
        assert_eq!(report.failed, 0, "every session survived:\n{report}");
        assert!(
            goodput >= f.goodput_min,
            "critical goodput {goodput:.3} %:\n{report}"
        );
        assert!(
            rss_after < rss_before + rss_before / 20,
            "RSS grew from {:.2} to {:.2} MB",
            mb(rss_before),
            mb(rss_after)
        );
        assert!(undecodable > 0.0, "the garbage was seen and counted");
    });
}

/// CI: 5000 datagrams/s, goodput at least 99 % (the debug gateway is
/// slower to drain a burst).
#[test]
fn garbage_flood_leaves_the_gateway_and_its_players_alone() {
    let _one = serial();
    garbage_flood(&GarbageFlood {
        players: 10,
        play: Duration::from_secs(5),
        rate_per_s: 5000,
        sources: 200,
        goodput_min: 99.0,
    });
}

#[test]
#[ignore = "60 s; cargo test --profile bench -p lanegate-gateway --test e2e_attacks -- --ignored --test-threads 1"]
fn garbage_flood_long() {
    let _one = serial();
    garbage_flood(&GarbageFlood {
        players: 50,
        play: Duration::from_secs(61),
        rate_per_s: 100_000,
        sources: 200,
        goodput_min: 99.9,
    });
}

// ---------------------------------------------------------------------------
// 4. Half-open connections.

struct HalfOpen {
    connections: usize,
    rate_per_s: u32,
    sources: usize,
    hello_timeout_ms: u64,
}

/// Handshakes that complete and never send `Hello`: each is closed with
/// `HELLO_TIMEOUT` within the Hello timeout plus 1 s of its handshake, and
/// the gateway holds no connection afterwards.
fn half_open(h: &HalfOpen) {
    let extra = format!(
        "hello_timeout_ms = {}\nconnections_max = 20000\n[shards]\ngame = \"echo\"\n",
        h.hello_timeout_ms
    );
    let gw = start("half-open", 5000, &extra);
    let rss_before = gw.rss_bytes();
    let mut cfg = attack_cfg(
        Attack::HalfOpen,
        &gw,
        h.rate_per_s,
        attack::DURATION_MAX.as_secs_f64(),
        h.sources,
    );
    cfg.connections = h.connections;
    cfg.hold_max = Duration::from_millis(h.hello_timeout_ms) + Duration::from_secs(10);
    let report = attack::run(&cfg).expect("the attack runs");
    eprint!("{report}");
    let freed = settle(&gw, "every half-open connection freed", |t| {
        connections_open(t) == 0.0
    });
    let rss_after = gw.rss_bytes();
    let r = report.held.as_ref().expect("a held report");
    let timed_out = r.closed.get("HELLO_TIMEOUT").copied().unwrap_or(0);
    eprintln!(
        "half-open: {} connections at {:.0}/s from {} addresses; closed {:?} ({} ms Hello \
         timeout) after p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; table empty {:.1} s after the \
         last close; RSS {:.1} -> {:.1} MB",
        report.sent,
        report.achieved_per_s,
        report.source_addrs,
        r.closed,
        h.hello_timeout_ms,
        r.held_ms_p50,
        r.held_ms_p99,
        r.held_ms_max,
        freed.as_secs_f64(),
        mb(rss_before),
        mb(rss_after)
    );
    // A core at protect (its loop busy on a shared host) refuses sessions
    // with SERVER_FULL as handshakes complete: freed sooner, and fine.
    let refused = r.closed.get("SERVER_FULL").copied().unwrap_or(0);
    assert_eq!(r.established, h.connections as u64, "{report}");
    assert_eq!(timed_out + refused, h.connections as u64, "{report}");
    assert!(timed_out > 0, "{report}");
    assert!(
        r.held_ms_max <= (h.hello_timeout_ms + 1000) as f64,
        "freed within the Hello timeout + 1 s:\n{report}"
    );
}

/// CI: 300 connections and a 1 s Hello timeout.
#[test]
fn half_open_connections_are_freed_after_the_hello_timeout() {
    let _one = serial();
    half_open(&HalfOpen {
        connections: 300,
        rate_per_s: 300,
        sources: 100,
        hello_timeout_ms: 1000,
    });
}

#[test]
#[ignore = "20 s; cargo test --profile bench -p lanegate-gateway --test e2e_attacks -- --ignored --test-threads 1"]
fn half_open_connections_long() {
    let _one = serial();
    half_open(&HalfOpen {
        connections: 10_000,
        rate_per_s: 1000,
        sources: 1000,
        hello_timeout_ms: 5000,
    });
}

// ---------------------------------------------------------------------------
// 5. Drain under load.

/// SIGTERM while `players` play: every one is closed with
/// `SERVER_DRAINING`, and the process exits 0 within the drain timeout.
/// `connected_min` of them must have got in: 1000 bots of the full mix
/// ramping on the gateway's two vCPUs sometimes miss a handshake.
fn drain_under_load(players: usize, connected_min: usize, drain_timeout_ms: u64) {
    // Every bot comes from 127.0.0.1: room for all of them on one address.
    let extra = "connections_per_ip_max = 4096\n[shards]\ngame = \"echo\"\n";
    let mut gw = start("drain", drain_timeout_ms, extra);
    let pid = gw.pid().to_string();
    let signalled = Arc::new(Mutex::new(None::<Instant>));
    let at = signalled.clone();
    let report = block_on(play(
        swarm(&gw, players, Duration::from_secs(60), 1000),
        move || {
            let status = std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .expect("kill runs");
            assert!(status.success());
            *at.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        },
    ));
    let signalled = signalled
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .unwrap_or_else(|| panic!("the players never all tried:\n{report}"));
    let all_closed = signalled.elapsed();
    let drain = Duration::from_millis(drain_timeout_ms);
    let status = gw
        .wait_exit(drain + Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running after the drain; log:\n{}", gw.log()));
    let exited = signalled.elapsed();
    let draining = report
        .closed_by_server
        .get("SERVER_DRAINING")
        .copied()
        .unwrap_or(0);
    eprintln!(
        "drain under load: {players} players, {} in; {draining} closed with SERVER_DRAINING; every \
         player gone {:.3} s after SIGTERM, process exited {:.3} s after it (drain timeout {} ms)",
        report.connected,
        all_closed.as_secs_f64(),
        exited.as_secs_f64(),
        drain_timeout_ms
    );
    assert!(report.connected >= connected_min, "{report}");
    assert_eq!(draining, report.connected as u64, "{report}");
    assert_eq!(status.code(), Some(0), "log:\n{}", gw.log());
    assert!(exited < drain, "exited within the drain timeout");
}

#[test]
fn drain_under_load_closes_everyone_with_server_draining() {
    let _one = serial();
    drain_under_load(50, 50, 5000);
}

#[test]
#[ignore = "15 s; cargo test --profile bench -p lanegate-gateway --test e2e_attacks -- --ignored --test-threads 1"]
fn drain_under_load_long() {
    let _one = serial();
    drain_under_load(1000, 990, 10_000);
}

// ---------------------------------------------------------------------------
// The command line.

/// `lanegate bots --attack` runs an attack and reports it; the same
/// command against an address off this host is refused, naming the flag.
#[test]
fn the_bots_command_attacks_loopback_and_refuses_elsewhere() {
    let _one = serial();
    let gw = start("attack-cli", 5000, "");
    let bots = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_lanegate"))
            .arg("bots")
            .args(args)
            .output()
            .expect("lanegate bots runs")
    };
    let addr = gw.addr.to_string();
    let out = bots(&[
        "--server",
        &addr,
        "--attack",
        "garbage-flood",
        "--attack-rate",
        "500",
        "--duration",
        "300ms",
        "--sources",
        "8",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("garbage-flood against"), "{stdout}");
    let remote: SocketAddr = "192.0.2.1:4433".parse().expect("an address");
    let out = bots(&[
        "--server",
        &remote.to_string(),
        "--attack",
        "handshake-flood",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--allow-remote-attack"), "{stderr}");
}
