//! Doorbells: how the producer of a ring wakes its sleeping consumer.
//!
//! A gateway core and a shard hand each other entries over lock-free rings.
//! The consumer has nothing to do while its rings are empty, so it sleeps:
//! a shard thread parks, a gateway core waits in `io_uring_enter` or
//! `poll`. Each consumer owns a [`Doorbell`]; the producers of its rings
//! ring it after publishing entries, and it wakes at once instead of at its
//! next poll.
//!
//! The bell only costs a system call when the consumer is really asleep.
//! The consumer announces sleep ([`Doorbell::sleep_begin`]), checks its
//! rings once more, and only then sleeps; a producer publishes its entries
//! and then looks at the announcement ([`Doorbell::ring`]). Both sides put a
//! sequentially consistent fence between their store and their load (the
//! Dekker pattern), so at least one of them sees the other: either the
//! consumer finds the entries before sleeping, or the producer finds it
//! asleep and wakes it. A busy consumer is never asleep, so under load
//! ringing is one fence and one load per batch, no system call.
//!
//! How a sleeper is woken is the consumer's business ([`Wake`]): this crate
//! does no IO. Shard threads use [`ThreadWaker`] (`Thread::unpark`); the
//! gateway's IO layer writes to an eventfd its event loop waits on.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::thread::Thread;

/// Wakes one sleeping consumer. Called from producer threads.
pub trait Wake: Send + Sync {
    /// Makes the consumer's current or next sleep return.
    fn wake(&self);
}

/// Wakes a thread that sleeps in `std::thread::park` / `park_timeout`.
#[derive(Debug)]
pub struct ThreadWaker(pub Thread);

impl Wake for ThreadWaker {
    fn wake(&self) {
        self.0.unpark();
    }
}

/// One consumer's doorbell, shared with the producers of its rings.
#[derive(Default)]
pub struct Doorbell {
    sleeping: AtomicBool,
    /// Set once by the consumer when it starts; until then ringing does
    /// nothing and the consumer finds its entries when it first looks.
    waker: OnceLock<Box<dyn Wake>>,
    /// Wake-ups sent (system calls paid), for metrics.
    wakes: AtomicU64,
}

impl Doorbell {
    /// A bell with no waker yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Installs how to wake the consumer. The first call wins; later ones
    /// return `false` and change nothing.
    pub fn set_waker(&self, waker: Box<dyn Wake>) -> bool {
        self.waker.set(waker).is_ok()
    }

    /// Consumer: about to sleep. Check the rings once more after this and
    /// sleep only if they are empty; call [`Doorbell::sleep_end`] after.
    pub fn sleep_begin(&self) {
        self.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Consumer: awake again (woken, timed out, or chose not to sleep).
    pub fn sleep_end(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }

    /// Producer: entries were published; wakes the consumer if it sleeps.
    pub fn ring(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) && self.sleeping.swap(false, Ordering::AcqRel) {
            if let Some(waker) = self.waker.get() {
                waker.wake();
            }
            self.wakes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Wake-ups sent since start.
    pub fn wakes(&self) -> u64 {
        self.wakes.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for Doorbell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Doorbell")
            .field("sleeping", &self.sleeping.load(Ordering::Relaxed))
            .field("has_waker", &self.waker.get().is_some())
            .field("wakes", &self.wakes())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Arc<Counter> {
        fn wake(&self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn rings_only_a_sleeper_and_only_once_per_sleep() {
        let bell = Doorbell::new();
        let count = Arc::new(Counter::default());
        bell.ring(); // no waker, nobody asleep: nothing
        assert!(bell.set_waker(Box::new(Arc::clone(&count))));
        assert!(!bell.set_waker(Box::new(Arc::clone(&count))), "first wins");
        bell.ring();
        assert_eq!(count.0.load(Ordering::Relaxed), 0, "awake consumer");
        bell.sleep_begin();
        bell.ring();
        bell.ring();
        assert_eq!(count.0.load(Ordering::Relaxed), 1, "one wake per sleep");
        bell.sleep_end();
        bell.ring();
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        assert_eq!(bell.wakes(), 1);
    }

    /// A consumer that sleeps without a timeout on an empty queue is never
    /// left asleep with work waiting: every item is taken (a lost wake-up
    /// would hang this test, which the harness would report as a timeout).
    #[test]
    fn no_lost_wake_up_between_two_threads() {
        const ITEMS: usize = 20_000;
        let bell = Arc::new(Doorbell::new());
        let queue = Arc::new(Mutex::new(VecDeque::new()));
        let consumer = {
            let bell = Arc::clone(&bell);
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || {
                bell.set_waker(Box::new(ThreadWaker(std::thread::current())));
                let mut taken = 0;
                while taken < ITEMS {
                    if queue.lock().unwrap().pop_front().is_some() {
                        taken += 1;
                        continue;
                    }
                    bell.sleep_begin();
                    if queue.lock().unwrap().is_empty() {
                        // Long enough that a lost wake-up shows as a
                        // stall the assertion below catches.
                        std::thread::park_timeout(Duration::from_secs(5));
                    }
                    bell.sleep_end();
                }
                taken
            })
        };
        let started = std::time::Instant::now();
        for i in 0..ITEMS {
            queue.lock().unwrap().push_back(i);
            bell.ring();
            if i % 64 == 0 {
                std::thread::yield_now();
            }
        }
        assert_eq!(consumer.join().unwrap(), ITEMS);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a wake-up was lost: the consumer slept out its timeout"
        );
    }
}
