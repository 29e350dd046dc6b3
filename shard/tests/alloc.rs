//! No allocation per message in steady state, counted by
//! `allocation_counter` (a per-thread counting global allocator): gateway
//! port → rings → shard → demo game → rings → port.
//!
//! Its own test binary, since the crate replaces the binary's allocator.

mod harness;

use harness::Harness;
use lanegate_common::lanes::Lane;
use lanegate_common::wire::{Transport, types};
use lanegate_shard::games::Demo;
use lanegate_shard::games::arena::{self, Input, Telemetry};

const PLAYERS: u64 = 60;

fn traffic(h: &mut Harness<Demo>, tick: u32) -> u64 {
    let mut delivered = 0u64;
    for p in 0..PLAYERS {
        let input = Input {
            seq: tick,
            dx: 100,
            dy: -100,
        };
        let send = |h: &mut Harness<Demo>, lane, transport, ty, payload: &[u8]| {
            h.send(0, p, 0, lane, transport, ty, payload).expect("room");
        };
        send(
            h,
            Lane::Critical,
            Transport::Datagram,
            arena::INPUT,
            &input.encode(),
        );
        // Inline, pooled small and pooled large payloads.
        send(
            h,
            Lane::High,
            Transport::Datagram,
            types::ECHO_HIGH,
            &[1; 40],
        );
        send(
            h,
            Lane::Normal,
            Transport::Stream,
            types::ECHO_NORMAL,
            &[2; 600],
        );
        if p % 10 == 0 {
            send(
                h,
                Lane::Bulk,
                Transport::Stream,
                types::ECHO_BULK,
                &[3; 5000],
            );
            send(
                h,
                Lane::Normal,
                Transport::Stream,
                arena::CHAT,
                b"hello there",
            );
        }
        let t = Telemetry {
            client_time_ms: tick,
            rtt_ms: 30,
            fps: 60,
        };
        send(
            h,
            Lane::Bulk,
            Transport::Datagram,
            arena::TELEMETRY,
            &t.encode(),
        );
    }
    h.clock.advance(h.cfg.tick_interval());
    for s in &mut h.shards {
        s.run_tick(&h.clock);
    }
    for port in &mut h.ports {
        delivered += port.poll(usize::MAX, |_, entry| {
            std::hint::black_box(entry);
        }) as u64;
    }
    delivered
}

#[test]
fn the_message_path_does_not_allocate_in_steady_state() {
    let cfg = lanegate_shard::ShardConfig {
        ring_slots_max: 4096,
        pool_datagram_bufs_max: 512,
        pool_stream_bufs_max: 16,
        ..harness::small_cfg()
    };
    let mut h = Harness::new(cfg, 1, 1, |_| Demo::default());
    for p in 0..PLAYERS {
        h.join(0, p, 0);
    }
    // Warm up: inboxes, outboxes and scratch buffers reach their size.
    for tick in 0..30 {
        traffic(&mut h, tick);
    }
    // The instrument works: one allocation is one count.
    let one = allocation_counter::measure(|| {
        std::hint::black_box(vec![0u8; 16]);
    });
    assert_eq!(one.count_total, 1);
    let mut delivered = 0;
    let steady = allocation_counter::measure(|| {
        for tick in 30..60 {
            delivered += traffic(&mut h, tick);
        }
    });
    // Each tick every player gets positions and two echoes; a tenth of
    // them a large echo too, and each of their chats is one broadcast.
    assert_eq!(delivered, 30 * (PLAYERS * 3 + PLAYERS / 10 * 2));
    assert_eq!(steady.count_total, 0, "{steady:?}");
    assert_eq!(h.health(0).outbound_lost, [0; 4]);
    assert_eq!(h.ports[0].lost(), [0; 4]);
}
