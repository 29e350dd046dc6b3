//! Steering micro-benches: what a packet that lands on the wrong gateway
//! core costs to hand to its owner (`lanegate_gateway::steer`), against
//! baselines in the same run.
//!
//! Per packet size (64, 300 and 1200 bytes, short header naming core 1):
//!
//! - `parse` (baseline): `steer::owner`, the DCID read every received
//!   packet pays on a multi-core gateway, steered or not;
//! - `copy` (baseline): one `copy_from_slice` of the packet into a
//!   preallocated buffer, the least any hand-off between cores costs;
//! - `steer`: the whole hand-off on one thread, core 0's side then core
//!   1's: `owner_elsewhere` + `send` (copy into a fixed-size slot of the
//!   SPSC ring) + `drain` of one packet;
//! - `steer, 32 per drain`: 32 sends then one drain of 32, as a loop turn
//!   with a batch of misdirected packets does (reported per packet);
//! - `seal` (reference): AES-128-GCM encryption plus header protection of
//!   the packet with quinn's keys (ring provider), which costs about what
//!   opening it does: a floor under what the engine spends on any 1-RTT
//!   packet before quinn-proto even parses its frames.
//!
//! The cross-core cost (cache lines moving to the other core) is not in
//! these numbers; `BENCHMARKS.md` "Rings" measures that for ring entries.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lanegate_gateway::engine::tls::{Identity, quic_server_config};
use lanegate_gateway::steer::{self, STEER_PACKET_BYTES_MAX, SteerEnds};
use quinn_proto::ConnectionId;

/// Packet sizes: a small input, a mid-size update, a full QUIC packet.
const SIZES: [usize; 3] = [64, 300, 1200];
/// Packets per drain in the batched shape.
const BATCH: usize = 32;
/// Slots per steering ring: the default `gateway.steer_slots_max`.
const SLOTS: usize = 256;

/// A short-header packet of `len` bytes whose DCID names core 1.
fn packet(len: usize) -> Vec<u8> {
    let mut p = vec![0xab; len];
    p[0] = 0x40;
    p[1] = 1;
    p
}

fn two_cores() -> (SteerEnds, SteerEnds) {
    let mut ends = steer::mesh(2, SLOTS).into_iter();
    let a = ends.next().expect("core 0");
    let b = ends.next().expect("core 1");
    (a, b)
}

fn steer_bench(c: &mut Criterion) {
    let remote: SocketAddr = "192.0.2.7:40000".parse().expect("an address");
    let server = quic_server_config(
        &Identity::self_signed().expect("a self-signed identity"),
        &lanegate_common::config::GatewayConfig::default(),
    )
    .expect("a server config");
    let keys = server
        .crypto
        .initial_keys(1, &ConnectionId::new(&[1, 2, 3, 4, 5, 6, 7, 8]))
        .expect("QUIC v1");
    let tag = keys.packet.local.tag_len();

    for size in SIZES {
        let mut g = c.benchmark_group(format!("steer {size} B"));
        g.throughput(Throughput::Elements(1));
        let pkt = packet(size);

        g.bench_function("parse (baseline)", |b| {
            b.iter(|| steer::owner(black_box(&pkt)))
        });

        let mut buf = vec![0u8; STEER_PACKET_BYTES_MAX];
        g.bench_function("copy (baseline)", |b| {
            b.iter(|| {
                let p = black_box(&pkt);
                buf[..p.len()].copy_from_slice(p);
                black_box(&buf);
            })
        });

        let (mut a, mut z) = two_cores();
        let at = Instant::now();
        g.bench_function("steer", |b| {
            b.iter(|| {
                let p = black_box(&pkt);
                let owner = a.owner_elsewhere(p).expect("core 1");
                a.send(owner, remote, None, None, at, p);
                z.drain(1, |s| {
                    black_box(s.data());
                })
            })
        });

        g.throughput(Throughput::Elements(BATCH as u64));
        g.bench_function(format!("steer, {BATCH} per drain"), |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    let p = black_box(&pkt);
                    let owner = a.owner_elsewhere(p).expect("core 1");
                    a.send(owner, remote, None, None, at, p);
                }
                z.drain(BATCH, |s| {
                    black_box(s.data());
                })
            })
        });
        assert_eq!(a.counters.full + a.counters.oversize, 0, "nothing dropped");

        g.throughput(Throughput::Elements(1));
        let header_len = 1 + 8 + 4;
        let mut sealed = pkt.clone();
        sealed.resize(size + tag, 0);
        let mut pn = 0u64;
        g.bench_function("seal (engine floor)", |b| {
            b.iter(|| {
                pn += 1;
                keys.packet.local.encrypt(pn, &mut sealed, header_len);
                keys.header.local.encrypt(1 + 8, &mut sealed);
                black_box(&sealed);
            })
        });
        g.finish();
    }
}

criterion_group!(benches, steer_bench);
criterion_main!(benches);
