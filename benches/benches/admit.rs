//! Admission micro-benches: `AdmissionTable::admit` on one connection and
//! across 1000 and 10 000 connections, and `HandshakeLimiter::check`.
//!
//! Three baselines run in the same group: a bare counter increment,
//! `LaneTable::classify` (which runs just before `admit` for every message),
//! and the `Instant` to nanoseconds conversion that `admit` does first.
//! Read the results as ratios to those baselines. Each admit bench moves
//! the virtual clock forward on every call (an `Instant + Duration` add, so
//! that work is part of the measurement) at a pace where every message is
//! admitted, except the "dropped" bench, which stays at one instant so that
//! every message after the burst is dropped.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lanegate_common::config::{AdmissionConfig, GatewayConfig, LaneLimits};
use lanegate_common::lanes::{Lane, LaneTable};
use lanegate_gateway::engine::admit::{AdmissionTable, HandshakeLimiter};

/// No abuse closes, so the "dropped" bench keeps taking the drop path.
const NO_ABUSE: AdmissionConfig = AdmissionConfig {
    abuse_window_ms: 10_000,
    abuse_drops_max: u32::MAX,
    abuse_ban_ms: 0,
    bans_max: 1,
};

fn table(conns: usize, now: Instant) -> AdmissionTable {
    let mut t = AdmissionTable::new(&LaneLimits::default(), &NO_ABUSE, conns, now)
        .expect("default limits are valid");
    for slot in 0..conns {
        t.open(slot, now).expect("slot in range");
    }
    t
}

fn admit(c: &mut Criterion) {
    let mut g = c.benchmark_group("admit");
    g.throughput(Throughput::Elements(1));

    let mut n = 0u64;
    g.bench_function("counter += 1 (baseline)", |b| {
        b.iter(|| {
            n = black_box(n).wrapping_add(1);
            n
        })
    });
    let lanes = LaneTable::default();
    g.bench_function("classify (baseline)", |b| {
        b.iter(|| lanes.classify(black_box(0x1abc)))
    });

    // What every `admit` pays to turn the engine's `Instant` into governor's
    // ns since the table's epoch.
    let epoch = Instant::now();
    let later = epoch + Duration::from_secs(3_600);
    g.bench_function("Instant to ns since epoch (baseline)", |b| {
        b.iter(|| {
            u64::try_from(black_box(later).saturating_duration_since(epoch).as_nanos())
                .unwrap_or(u64::MAX)
        })
    });

    // Critical is 240/s: one message per 5 ms on a connection is always
    // admitted.
    let per_conn = Duration::from_millis(5);
    for conns in [1usize, 1_000, 10_000] {
        let mut now = Instant::now();
        let mut t = table(conns, now);
        let step = per_conn / u32::try_from(conns).expect("small");
        let mut slot = 0;
        g.bench_function(format!("admit, {conns} conns, admitted"), |b| {
            b.iter(|| {
                now += step;
                slot += 1;
                if slot == conns {
                    slot = 0;
                }
                t.admit(black_box(slot), Lane::Critical, now)
            })
        });
        let admitted = t.totals().admitted[Lane::Critical.index()];
        let dropped = t.totals().dropped[Lane::Critical.index()];
        assert!(
            dropped * 1000 <= admitted,
            "{conns} conns: {dropped} of {admitted} dropped; the pacing is off"
        );
    }

    // As the engine calls it: one `now` per loop turn of 64 messages.
    let mut now = Instant::now();
    let mut t = table(1_000, now);
    let mut slot = 0;
    g.bench_function("admit, 1000 conns, 64 per now, admitted", |b| {
        b.iter(|| {
            slot += 1;
            if slot % 64 == 0 {
                now += per_conn * 64 / 1_000;
            }
            if slot == 1_000 {
                slot = 0;
            }
            t.admit(black_box(slot), Lane::Critical, now)
        })
    });
    assert_eq!(t.totals().dropped, [0; Lane::COUNT], "the pacing is off");

    let now = Instant::now();
    let mut t = table(1, now);
    g.bench_function("admit, 1 conn, dropped", |b| {
        b.iter(|| t.admit(black_box(0), Lane::Bulk, now))
    });

    let mut now = Instant::now();
    let mut h = HandshakeLimiter::new(&GatewayConfig::default(), 65_536, now)
        .expect("default limits are valid");
    let mut ip = 0u32;
    g.bench_function("handshake check, 1000 addresses", |b| {
        b.iter(|| {
            // 1000 addresses at 1 handshake/s each: always allowed.
            now += Duration::from_millis(1);
            ip = (ip + 1) % 1_000;
            h.check(black_box(IpAddr::V4(Ipv4Addr::from(ip))), now)
        })
    });
    g.finish();
}

criterion_group!(benches, admit);
criterion_main!(benches);
