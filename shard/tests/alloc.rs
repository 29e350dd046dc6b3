//! No allocation per message in steady state, checked with a counting
//! allocator: gateway port → rings → shard → demo game → rings → port.
//!
//! Its own test binary, with a single test, so the global allocator counts
//! only this path (and only on this thread).

mod harness;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use harness::Harness;
use lanegate_common::lanes::Lane;
use lanegate_common::wire::{Transport, types};
use lanegate_shard::games::Demo;
use lanegate_shard::games::arena::{self, Input, Telemetry};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees carry over; the only addition is a
// counter bump that neither allocates nor touches the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged (see the impl's comment).
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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
    COUNTING.with(|c| c.set(true));
    std::hint::black_box(vec![0u8; 16]);
    assert_eq!(ALLOCATIONS.swap(0, Ordering::Relaxed), 1);
    let mut delivered = 0;
    for tick in 30..60 {
        delivered += traffic(&mut h, tick);
    }
    COUNTING.with(|c| c.set(false));
    // Each tick every player gets positions and two echoes; a tenth of
    // them a large echo too, and each of their chats is one broadcast.
    assert_eq!(delivered, 30 * (PLAYERS * 3 + PLAYERS / 10 * 2));
    assert_eq!(ALLOCATIONS.load(Ordering::Relaxed), 0);
    assert_eq!(h.health(0).outbound_lost, [0; 4]);
    assert_eq!(h.ports[0].lost(), [0; 4]);
}
