//! The doorbell (`lanegate_common::wake`) over the real ring on two real
//! threads. A producer pushes entries in batches and rings once per batch
//! (`RingTx::notify`); a consumer takes them and, whenever the ring is
//! empty, sleeps with the doorbell's protocol in a real `park_timeout`, as
//! shard threads do.
//!
//! Every entry must arrive, once and in order, and no sleep may last its
//! whole timeout: the producer never stops for long, so a sleep that long
//! means nobody rang, a lost wake-up. The timeout also bounds the test in
//! time: a lost wake-up fails it after [`SLEEP_MAX`] instead of hanging it.
//! Nothing here sleeps to synchronise; the threads only spin, yield and
//! park. The loom model in `common/src/wake.rs` checks the same protocol
//! over every interleaving; this test checks it on real hardware, with the
//! real ring's code and the real `park`/`unpark`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use lanegate_common::lanes::Lane;
use lanegate_common::wake::{Doorbell, ThreadWaker};
use lanegate_shard::ring::{RingEntry, ring};

/// Entries pushed.
const ENTRIES: u64 = 100_000;
/// Ring slots: small, so the producer also meets a full ring.
const SLOTS: usize = 64;
/// The consumer's sleep timeout. The producer rings within microseconds of
/// each batch; a sleep this long on a loaded 2-core machine means a lost
/// wake-up, not a slow producer.
const SLEEP_MAX: Duration = Duration::from_secs(5);
/// Every this many batches the producer waits for the ring to drain, so the
/// consumer runs out of entries and goes to sleep while the producer is
/// about to push: the race the doorbell exists for.
const DRAIN_EVERY_BATCHES: u64 = 16;

/// A numbered entry. Control lane (`None`): it may use every slot, so a
/// push is refused only by a full ring and nothing counts as lane loss.
#[derive(Debug)]
struct Seq(u64);

impl RingEntry for Seq {
    fn lane(&self) -> Option<Lane> {
        None
    }
}

/// What the consumer saw.
#[derive(Debug)]
struct Taken {
    entries: u64,
    sleeps: u64,
    longest_sleep: Duration,
}

/// Tells the producer to stop when the consumer ends for any reason,
/// including a failed assertion, so a failure never leaves the producer
/// spinning on a full ring.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn every_entry_arrives_and_no_sleep_outlasts_its_timeout() {
    let bell = Arc::new(Doorbell::new());
    let (tx, mut rx) = ring::<Seq>(SLOTS, [SLOTS; Lane::COUNT]).expect("a small ring");
    let mut tx = tx.with_bell(Arc::clone(&bell));
    let consumer_done = Arc::new(AtomicBool::new(false));

    let consumer = {
        let bell = Arc::clone(&bell);
        let done = StopOnDrop(Arc::clone(&consumer_done));
        thread::spawn(move || {
            let _done = done;
            bell.set_waker(Box::new(ThreadWaker(thread::current())));
            let mut taken = Taken {
                entries: 0,
                sleeps: 0,
                longest_sleep: Duration::ZERO,
            };
            while taken.entries < ENTRIES {
                if let Some(Seq(n)) = rx.pop() {
                    assert_eq!(n, taken.entries, "entries arrive once and in order");
                    taken.entries += 1;
                    continue;
                }
                bell.sleep_begin();
                if rx.is_empty() {
                    let start = Instant::now();
                    thread::park_timeout(SLEEP_MAX);
                    let slept = start.elapsed();
                    taken.sleeps += 1;
                    taken.longest_sleep = taken.longest_sleep.max(slept);
                    if slept >= SLEEP_MAX {
                        // A lost wake-up: stop here, the assertion below
                        // reports it.
                        bell.sleep_end();
                        break;
                    }
                }
                bell.sleep_end();
            }
            taken
        })
    };

    let producer = {
        let stop = Arc::clone(&consumer_done);
        thread::spawn(move || {
            let mut next = 0u64;
            let mut batches = 0u64;
            while next < ENTRIES && !stop.load(Ordering::Relaxed) {
                // Batches of 1 to 37 entries, varied so that rings land at
                // every point of the consumer's loop.
                let end = (next + 1 + batches % 37).min(ENTRIES);
                while next < end && !stop.load(Ordering::Relaxed) {
                    match tx.push(Seq(next)) {
                        Ok(()) => next += 1,
                        Err(_full) => {
                            // Full: ring for what is in it and let the
                            // consumer drain; the entry is pushed again.
                            tx.notify();
                            thread::yield_now();
                        }
                    }
                }
                tx.notify();
                batches += 1;
                if batches.is_multiple_of(DRAIN_EVERY_BATCHES) {
                    while !tx.is_empty() && !stop.load(Ordering::Relaxed) {
                        thread::yield_now();
                    }
                }
            }
            next
        })
    };

    let pushed = producer.join().expect("the producer does not panic");

    let taken = consumer.join().expect("the consumer's assertions hold");
    assert!(
        taken.longest_sleep < SLEEP_MAX,
        "a wake-up was lost: the consumer slept out its {SLEEP_MAX:?} timeout ({taken:?})"
    );
    assert_eq!(pushed, ENTRIES);
    assert_eq!(taken.entries, ENTRIES, "{taken:?}");
    assert!(taken.sleeps > 0, "the consumer never slept: {taken:?}");
    assert!(bell.wakes() > 0, "no sleep was ever rung awake: {taken:?}");
}
