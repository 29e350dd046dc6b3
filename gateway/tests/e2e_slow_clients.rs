//! Slow clients while others play (issue 13 §5), end to end: the real
//! `lanegate` binary on loopback, players from the bot swarm, and
//! `lanegate bots --attack slow-senders | slow-readers`
//! (`lanegate_bots::attack`) beside them:
//!
//! - **Slow senders** announce a largest frame on the control stream and
//!   send it a byte a second. Each must be closed with `ABUSE` within
//!   `gateway.frame_stall_ms` (plus a trickle period and a second), and
//!   the table is empty after.
//! - **Slow readers** send echo requests in every lane and never read a
//!   byte, so everything the gateway answers them waits in its send
//!   buffers. The gateway must hold no more for them than its per-connection
//!   budget (`docs/memory.md`), count what it could not send, and keep
//!   the players' `critical` echoes flowing.
//!
//! A short variant of each runs in CI; the long ones, with figures in
//! `docs/RELIABILITY.md`:
//!
//! ```sh
//! cargo test --profile bench -p lanegate-gateway --test e2e_slow_clients -- --ignored --test-threads 1 --nocapture
//! ```

#[allow(unused_macros)]
#[macro_use]
mod e2e_support;

use std::sync::mpsc;
use std::time::Duration;

use e2e_support::metric;
use e2e_support::swarm::{
    Sampler, attack_cfg, attack_on, block_on, connections_open, critical_goodput, critical_p99_ms,
    mb, play, serial, settle, start, swarm,
};
use lanegate_bots::attack::{self, Attack, AttackReport, HeldReport};

/// What the gateway may hold for one connection at worst
/// (`docs/memory.md`, the budget `engine_memory.rs` checks).
const CONNECTION_BUDGET_BYTES: u64 = 640 * 1024;

struct Slow {
    attack: Attack,
    clients: usize,
    players: usize,
    play: Duration,
    frame_stall_ms: u64,
    /// Critical goodput players must keep, percent.
    goodput_min: f64,
}

/// Players play for `s.play`; once every one is in, `s.clients` slow
/// clients arrive at 200 a second and are held until the gateway closes
/// them or the play is nearly over.
fn slow_clients(s: &Slow) -> (AttackReport, HeldReport) {
    let extra = format!(
        "frame_stall_ms = {}\nconnections_per_ip_max = 4096\n[shards]\ngame = \"echo\"\n",
        s.frame_stall_ms
    );
    let gw = start(s.attack.name(), 5000, &extra);
    block_on(async {
        let rss_base = gw.rss_bytes();
        let (go, went) = mpsc::channel();
        let mut cfg = attack_cfg(s.attack, &gw, 200, s.play.as_secs_f64() - 1.0, 1);
        cfg.connections = s.clients;
        cfg.hold_max = s.play.saturating_sub(Duration::from_secs(2));
        let slow = attack_on(went, cfg);
        let sampler = Sampler::start(&gw);
        let players = play(swarm(&gw, s.players, s.play, 1000), move || {
            let _ = go.send(());
        })
        .await;
        let report = slow.join().expect("the slow clients");
        let peaks = sampler.finish();
        let text = gw.scrape();
        let congested: f64 = ["critical", "high", "normal", "bulk"]
            .iter()
            .filter_map(|lane| {
                metric(
                    &text,
                    "lanegate_messages_out_congested_total",
                    &[("lane", lane)],
                )
            })
            .sum();
        let freed = settle(&gw, "every connection gone", |t| connections_open(t) == 0.0);
        let held = report.held.clone().expect("a held report");
        let growth = peaks.rss_bytes.saturating_sub(rss_base);
        eprint!("{report}");
        eprintln!(
            "{}: {} slow clients beside {} players; players' critical goodput {:.2} %, p99 \
             {:.2} ms; {congested} replies the gateway could not send; RSS {:.1} MB, peak \
             {:.1} MB (+{:.0} KB per slow client); table empty {:.1} s after",
            s.attack,
            s.clients,
            s.players,
            critical_goodput(&players),
            critical_p99_ms(&players),
            mb(rss_base),
            mb(peaks.rss_bytes),
            growth as f64 / 1e3 / s.clients as f64,
            freed.as_secs_f64()
        );
        assert_eq!(players.failed, 0, "{players}");
        assert!(
            critical_goodput(&players) >= s.goodput_min,
            "players' critical goodput {:.2} %",
            critical_goodput(&players)
        );
        assert_eq!(held.sessions, s.clients as u64, "{report}");
        assert!(
            growth <= s.clients as u64 * CONNECTION_BUDGET_BYTES,
            "RSS grew {:.1} MB for {} slow clients",
            mb(growth),
            s.clients
        );
        if s.attack == Attack::SlowReaders {
            assert!(congested > 0.0, "the slow readers' replies counted");
        }
        (report, held)
    })
}

fn slow_senders(s: &Slow) {
    let (report, held) = slow_clients(s);
    let abuse = held.closed.get("ABUSE").copied().unwrap_or(0);
    assert_eq!(abuse, s.clients as u64, "{report}");
    let bound = Duration::from_millis(s.frame_stall_ms + 1000) + attack::TRICKLE_PERIOD;
    assert!(
        held.held_ms_max <= bound.as_secs_f64() * 1000.0,
        "closed within frame_stall_ms + a trickle period + 1 s:\n{report}"
    );
}

fn slow_readers(s: &Slow) {
    let (report, held) = slow_clients(s);
    // Never closed for reading slowly, nor for anything else: a player on
    // a stalled link looks the same.
    assert_eq!(held.still_open, s.clients as u64, "{report}");
    assert!(held.messages_sent > 0, "{report}");
}

/// CI: 50 slow senders against a 1 s frame stall limit.
#[test]
fn slow_senders_are_closed_with_abuse_after_the_frame_stall_limit() {
    let _one = serial();
    slow_senders(&Slow {
        attack: Attack::SlowSenders,
        clients: 50,
        players: 10,
        play: Duration::from_secs(6),
        frame_stall_ms: 1000,
        goodput_min: 95.0,
    });
}

#[test]
#[ignore = "30 s; cargo test --profile bench -p lanegate-gateway --test e2e_slow_clients -- --ignored --test-threads 1"]
fn slow_senders_long() {
    let _one = serial();
    slow_senders(&Slow {
        attack: Attack::SlowSenders,
        clients: 2000,
        players: 50,
        play: Duration::from_secs(30),
        frame_stall_ms: 5000,
        goodput_min: 99.0,
    });
}

/// CI: 50 slow readers for 6 s.
#[test]
fn slow_readers_are_bounded_and_leave_the_players_alone() {
    let _one = serial();
    slow_readers(&Slow {
        attack: Attack::SlowReaders,
        clients: 50,
        players: 10,
        play: Duration::from_secs(6),
        frame_stall_ms: 5000,
        goodput_min: 95.0,
    });
}

#[test]
#[ignore = "40 s; cargo test --profile bench -p lanegate-gateway --test e2e_slow_clients -- --ignored --test-threads 1"]
fn slow_readers_long() {
    let _one = serial();
    slow_readers(&Slow {
        attack: Attack::SlowReaders,
        clients: 1000,
        players: 50,
        play: Duration::from_secs(40),
        frame_stall_ms: 5000,
        goodput_min: 99.0,
    });
}
