//! Ring candidates for the gateway ⇄ shard path, with our entry type.
//!
//! The same 128-byte `ToShard::Message` entry (a 16-byte inline payload, the
//! size of an arena input) goes through each SPSC candidate, in the same run:
//!
//! - `ringbuf`: `HeapRb` split into caching producer and consumer (what
//!   `lanegate_shard::ring` wraps);
//! - `rtrb`: `RingBuffer`;
//! - `crossbeam`: `ArrayQueue` (MPMC; the baseline a general-purpose queue
//!   gives);
//! - `lanegate`: our `RingTx`/`RingRx` wrapper over `ringbuf` (lane headroom
//!   and loss counting on top), to show what the wrapper costs.
//!
//! Two shapes: `batch64` pushes 64 entries then pops them on one thread (the
//! per-operation cost with no cross-core traffic); `spsc_4096` moves 10 000
//! entries per iteration from this thread to a consumer thread through a
//! 4096-slot ring (the default `ring_slots_max`), spinning when full or
//! empty. `BENCHMARKS.md` has the figures and the command.

use std::hint::black_box;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group};
use crossbeam_queue::ArrayQueue;
use lanegate_common::ids::{PlayerId, SessionId, ZoneId};
use lanegate_common::lanes::Lane;
use lanegate_common::link::{Body, InlinePayload, Payload, ToShard};
use lanegate_common::wire::Transport;
use ringbuf::HeapRb;
use ringbuf::traits::{Consumer as _, Producer as _, Split as _};

const SLOTS: usize = 4096;
const BATCH: usize = 64;
const TRANSFER: u64 = 10_000;

fn entry(i: u64) -> ToShard {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&i.to_be_bytes());
    bytes[8..].copy_from_slice(&i.to_be_bytes());
    let payload = InlinePayload::new(&bytes).expect("16 bytes fit inline");
    ToShard::Message {
        session: SessionId(i),
        player: PlayerId(i),
        zone: ZoneId(7),
        body: Body {
            ty: 0x1000,
            lane: Lane::Critical,
            transport: Transport::Datagram,
            payload: Payload::Inline(payload),
        },
        received_at: epoch(),
        held_us: 0,
    }
}

/// One instant for every entry: the benches measure the rings, not the
/// clock.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Waits a little for the other side: spins briefly, then yields, so that a
/// producer and consumer sharing a core (a busy 2-core machine) still make
/// progress. Every candidate waits the same way.
#[inline]
fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins < 64 {
        std::hint::spin_loop();
    } else {
        thread::yield_now();
    }
}

fn seq(e: &ToShard) -> u64 {
    match e {
        ToShard::Message { player, .. } => player.0,
        _ => u64::MAX,
    }
}

struct RingbufTx(ringbuf::CachingProd<Arc<HeapRb<ToShard>>>);
struct RingbufRx(ringbuf::CachingCons<Arc<HeapRb<ToShard>>>);
struct RtrbTx(rtrb::Producer<ToShard>);
struct RtrbRx(rtrb::Consumer<ToShard>);
struct Crossbeam(Arc<ArrayQueue<ToShard>>);
struct LanegateTx(lanegate_shard::ring::RingTx<ToShard>);
struct LanegateRx(lanegate_shard::ring::RingRx<ToShard>);

/// Each candidate's producer end implements `push`, its consumer `pop`;
/// the drivers are generic over them, so no candidate pays a virtual call.
trait Tx: Send + 'static {
    // A refused entry comes back by value: that is the API under test.
    #[allow(clippy::result_large_err)]
    fn push(&mut self, e: ToShard) -> Result<(), ToShard>;
}
trait Rx: Send + 'static {
    fn pop(&mut self) -> Option<ToShard>;
}

impl Tx for RingbufTx {
    #[inline]
    fn push(&mut self, e: ToShard) -> Result<(), ToShard> {
        self.0.try_push(e)
    }
}
impl Rx for RingbufRx {
    #[inline]
    fn pop(&mut self) -> Option<ToShard> {
        self.0.try_pop()
    }
}
impl Tx for RtrbTx {
    #[inline]
    fn push(&mut self, e: ToShard) -> Result<(), ToShard> {
        self.0.push(e).map_err(|rtrb::PushError::Full(e)| e)
    }
}
impl Rx for RtrbRx {
    #[inline]
    fn pop(&mut self) -> Option<ToShard> {
        self.0.pop().ok()
    }
}
impl Tx for Crossbeam {
    #[inline]
    fn push(&mut self, e: ToShard) -> Result<(), ToShard> {
        self.0.push(e)
    }
}
impl Rx for Crossbeam {
    #[inline]
    fn pop(&mut self) -> Option<ToShard> {
        self.0.pop()
    }
}
impl Tx for LanegateTx {
    #[inline]
    fn push(&mut self, e: ToShard) -> Result<(), ToShard> {
        self.0.push(e).map_err(|f| f.entry)
    }
}
impl Rx for LanegateRx {
    #[inline]
    fn pop(&mut self) -> Option<ToShard> {
        self.0.pop()
    }
}

fn ringbuf_pair() -> (RingbufTx, RingbufRx) {
    let (tx, rx) = HeapRb::<ToShard>::new(SLOTS).split();
    (RingbufTx(tx), RingbufRx(rx))
}

fn rtrb_pair() -> (RtrbTx, RtrbRx) {
    let (tx, rx) = rtrb::RingBuffer::<ToShard>::new(SLOTS);
    (RtrbTx(tx), RtrbRx(rx))
}

fn crossbeam_pair() -> (Crossbeam, Crossbeam) {
    let q = Arc::new(ArrayQueue::<ToShard>::new(SLOTS));
    (Crossbeam(q.clone()), Crossbeam(q))
}

fn lanegate_pair() -> (LanegateTx, LanegateRx) {
    let (tx, rx) = lanegate_shard::ring::ring::<ToShard>(SLOTS, [SLOTS; 4]).expect("ring");
    (LanegateTx(tx), LanegateRx(rx))
}

fn run_batch<T: Tx, R: Rx>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    (mut tx, mut rx): (T, R),
) {
    g.bench_function(name, |b| {
        b.iter(|| {
            for i in 0..BATCH as u64 {
                let _ = tx.push(black_box(entry(i)));
            }
            for _ in 0..BATCH {
                black_box(rx.pop());
            }
        });
    });
}

fn run_spsc<T: Tx, R: Rx>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, pair: (T, R)) {
    let pair = std::cell::RefCell::new(Some(pair));
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let (tx, rx) = pair.borrow_mut().take().expect("one pair at a time");
            let total = iters * TRANSFER;
            let (tx2, rx2, took) = transfer(tx, rx, total);
            *pair.borrow_mut() = Some((tx2, rx2));
            took
        });
    });
}

/// Moves `total` entries from this thread to a consumer thread; returns the
/// ends and the time from the first push to the last pop.
fn transfer<T: Tx, R: Rx>(mut tx: T, mut rx: R, total: u64) -> (T, R, Duration) {
    let consumer = thread::spawn(move || {
        let mut next = 0u64;
        let mut spins = 0;
        while next < total {
            match rx.pop() {
                Some(e) => {
                    assert_eq!(seq(&e), next % TRANSFER, "order");
                    next += 1;
                    spins = 0;
                }
                None => backoff(&mut spins),
            }
        }
        rx
    });
    let start = Instant::now();
    for i in 0..total {
        let mut e = entry(i % TRANSFER);
        let mut spins = 0;
        while let Err(back) = tx.push(e) {
            e = back;
            backoff(&mut spins);
        }
    }
    let rx = consumer.join().expect("consumer");
    (tx, rx, start.elapsed())
}

/// Interleaved A/B: rounds in which every candidate moves the same entries
/// in turn (the order rotating each round), so a noisy neighbour hits all of
/// them alike; prints the median ns per entry and the ratio to `ringbuf`.
fn interleaved() {
    const ROUNDS: usize = 15;
    const ENTRIES: u64 = 200_000;
    let names = ["ringbuf", "rtrb", "crossbeam", "lanegate"];
    let mut ns: [Vec<f64>; 4] = Default::default();
    let (mut a, mut b, mut c, mut d) = (
        Some(ringbuf_pair()),
        Some(rtrb_pair()),
        Some(crossbeam_pair()),
        Some(lanegate_pair()),
    );
    fn run<T: Tx, R: Rx>(slot: &mut Option<(T, R)>) -> f64 {
        let (tx, rx) = slot.take().expect("pair");
        let (tx, rx, took) = transfer(tx, rx, ENTRIES);
        *slot = Some((tx, rx));
        took.as_nanos() as f64 / ENTRIES as f64
    }
    for round in 0..ROUNDS {
        for k in 0..4 {
            let which = (round + k) % 4;
            let t = match which {
                0 => run(&mut a),
                1 => run(&mut b),
                2 => run(&mut c),
                _ => run(&mut d),
            };
            ns[which].push(t);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let medians: Vec<f64> = ns.iter_mut().map(median).collect();
    println!("rings/interleaved_spsc_4096: {ROUNDS} rounds x {ENTRIES} entries, median ns/entry");
    for (name, m) in names.iter().zip(&medians) {
        println!(
            "  {name:<10} {m:>7.1} ns/entry   {:>5.2}x ringbuf",
            m / medians[0]
        );
    }
}

fn batch64(c: &mut Criterion) {
    let mut g = c.benchmark_group("rings/batch64");
    g.throughput(Throughput::Elements(BATCH as u64));
    run_batch(&mut g, "ringbuf", ringbuf_pair());
    run_batch(&mut g, "rtrb", rtrb_pair());
    run_batch(&mut g, "crossbeam", crossbeam_pair());
    run_batch(&mut g, "lanegate", lanegate_pair());
    g.finish();
}

fn spsc(c: &mut Criterion) {
    let mut g = c.benchmark_group("rings/spsc_4096");
    g.throughput(Throughput::Elements(TRANSFER));
    run_spsc(&mut g, "ringbuf", ringbuf_pair());
    run_spsc(&mut g, "rtrb", rtrb_pair());
    run_spsc(&mut g, "crossbeam", crossbeam_pair());
    run_spsc(&mut g, "lanegate", lanegate_pair());
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = rings;
    config = config();
    targets = batch64, spsc
}

fn main() {
    interleaved();
    rings();
    Criterion::default().configure_from_args().final_summary();
}
