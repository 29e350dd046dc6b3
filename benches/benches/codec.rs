//! Codec micro-benches: decode and encode of a game datagram, stream
//! reassembly, lane classification and ticket verification. The bare
//! `peek_type` read is the in-run baseline the others are compared against.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lanegate_common::frame::{FrameReader, put_frame};
use lanegate_common::ids::{PlayerId, ZoneId};
use lanegate_common::lanes::LaneTable;
use lanegate_common::ticket::{DEV_KEY_ID, KeySet, Ticket};
use lanegate_common::wire::{GameMessage, Message, peek_type};

fn datagram(payload_bytes: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let payload = vec![0x5a; payload_bytes];
    Message::Game(GameMessage {
        ty: 0x1fff,
        payload: &payload,
    })
    .encode(&mut out)
    .expect("valid message");
    out
}

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    let dgram = datagram(150);
    g.throughput(Throughput::Elements(1));
    g.bench_function("peek_type (baseline)", |b| {
        b.iter(|| peek_type(black_box(&dgram)))
    });
    g.bench_function("decode 150B game datagram", |b| {
        b.iter(|| Message::decode(black_box(&dgram)))
    });
    let mut out = Vec::with_capacity(2048);
    g.bench_function("encode 150B game datagram", |b| {
        b.iter(|| {
            out.clear();
            Message::Game(GameMessage {
                ty: 0x1fff,
                payload: black_box(&dgram[2..]),
            })
            .encode(&mut out)
        })
    });
    let table = LaneTable::default();
    g.bench_function("classify", |b| b.iter(|| table.classify(black_box(0x2abc))));
    let mut stream = Vec::new();
    for _ in 0..16 {
        put_frame(&dgram, &mut stream);
    }
    let mut reader = FrameReader::new(16_384);
    g.throughput(Throughput::Elements(16));
    g.bench_function("frame_reader 16 x 152B", |b| {
        b.iter(|| {
            let mut n = 0usize;
            reader
                .feed(black_box(&stream), |m| n += m.len())
                .expect("valid frames");
            n
        })
    });
    g.finish();
}

fn tickets(c: &mut Criterion) {
    let keys = KeySet::dev();
    let now = 1_767_225_600;
    let text = keys
        .mint(&Ticket {
            key_id: DEV_KEY_ID,
            player: PlayerId(1),
            zone: ZoneId(1),
            issued_at_s: now,
            expires_at_s: now + 600,
        })
        .expect("dev key mints");
    c.bench_function("ticket verify", |b| {
        b.iter(|| keys.verify(black_box(text.as_bytes()), now, 30))
    });
}

criterion_group!(benches, codec, tickets);
criterion_main!(benches);
