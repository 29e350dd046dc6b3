//! The engine's timer queue: when each connection next needs
//! `handle_timeout`, and which connection is due first.
//!
//! A connection's deadline moves on nearly every packet (QUIC's idle and
//! loss-detection timers re-arm), while deadlines are only *due* rarely. So
//! setting a deadline must be cheap and finding the earliest must not scan
//! the connection table: the first version kept one `Option<Instant>` per
//! slot and took the minimum over all of them every loop turn, which a
//! profile at 1000 connections (20 000 slots) put at 17 % of the core's CPU.
//!
//! Here each slot keeps its current deadline and a generation, and a binary
//! heap holds `(deadline, slot, generation)` entries. Moving a deadline
//! bumps the generation and pushes a new entry, leaving the old one in the
//! heap; an entry whose generation is not its slot's is stale and is thrown
//! away when it reaches the top, so each slot has at most one live entry. Stale
//! entries are bounded: when the heap holds more than `COMPACT_FACTOR`
//! entries per slot it is rebuilt from the slots' current deadlines, which
//! is linear and rare enough to cost O(1) per push amortised. The heap's
//! capacity is reserved at start, so it never allocates afterwards.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Heap entries allowed per slot before a rebuild drops the stale ones.
const COMPACT_FACTOR: usize = 2;

/// Deadlines of a fixed number of slots, earliest first.
#[derive(Debug)]
pub struct TimerQueue {
    /// Each slot's current deadline and generation: the truth the heap is
    /// checked against.
    current: Vec<(Option<Instant>, u32)>,
    /// `(deadline, slot, generation)`; may hold stale entries (see the
    /// module doc).
    heap: BinaryHeap<Reverse<Entry>>,
    heap_max: usize,
}

type Entry = (Instant, u32, u32);

impl TimerQueue {
    /// A queue for `slots` slots, none with a deadline.
    pub fn new(slots: usize) -> Self {
        let heap_max = slots.saturating_mul(COMPACT_FACTOR).max(16);
        Self {
            current: vec![(None, 0); slots],
            heap: BinaryHeap::with_capacity(heap_max + 1),
            heap_max,
        }
    }

    /// Sets (or with `None` clears) `slot`'s deadline.
    ///
    /// # Panics
    ///
    /// If `slot` is out of range: slots come from the engine's own table,
    /// never from a peer.
    pub fn set(&mut self, slot: usize, deadline: Option<Instant>) {
        let (current, generation) = &mut self.current[slot];
        if *current == deadline {
            return;
        }
        *current = deadline;
        *generation = generation.wrapping_add(1);
        let generation = *generation;
        if let Some(t) = deadline {
            if self.heap.len() >= self.heap_max {
                self.compact();
            }
            // Slot indices fit: the engine's table is far below 2^32 slots.
            let slot = u32::try_from(slot).unwrap_or(u32::MAX);
            self.heap.push(Reverse((t, slot, generation)));
        }
    }

    /// `slot`'s deadline.
    pub fn get(&self, slot: usize) -> Option<Instant> {
        self.current[slot].0
    }

    /// The earliest deadline of any slot.
    pub fn earliest(&mut self) -> Option<Instant> {
        self.drop_stale();
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }

    /// A slot whose deadline is at or before `now`, its deadline cleared;
    /// `None` when no slot is due. The caller sets the slot's next deadline
    /// once it has handled it.
    pub fn pop_due(&mut self, now: Instant) -> Option<usize> {
        self.drop_stale();
        let &Reverse((t, slot, _)) = self.heap.peek()?;
        if t > now {
            return None;
        }
        self.heap.pop();
        let slot = slot as usize;
        self.current[slot].0 = None;
        Some(slot)
    }

    /// Entries in the heap, stale ones included (for tests and metrics).
    pub fn heap_len(&self) -> usize {
        self.heap.len()
    }

    fn drop_stale(&mut self) {
        while let Some(&Reverse(entry)) = self.heap.peek() {
            if is_live(&self.current, entry) {
                return;
            }
            self.heap.pop();
        }
    }

    /// Drops every stale entry, in place: at most one entry per slot stays,
    /// so the heap is at most half full afterwards.
    fn compact(&mut self) {
        let current = &self.current;
        self.heap.retain(|&Reverse(entry)| is_live(current, entry));
    }
}

/// An entry is live while its slot still has that deadline and generation.
fn is_live(current: &[(Option<Instant>, u32)], (t, slot, generation): Entry) -> bool {
    current
        .get(slot as usize)
        .is_some_and(|&(c, g)| g == generation && c == Some(t))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn earliest_first_and_moved_deadlines_replace_old_ones() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new(4);
        assert_eq!(q.earliest(), None);
        q.set(0, Some(at(t0, 30)));
        q.set(1, Some(at(t0, 10)));
        q.set(2, Some(at(t0, 20)));
        assert_eq!(q.earliest(), Some(at(t0, 10)));
        // Slot 1 moves later: its old entry must not wake anyone.
        q.set(1, Some(at(t0, 40)));
        assert_eq!(q.earliest(), Some(at(t0, 20)));
        assert_eq!(q.pop_due(at(t0, 19)), None);
        assert_eq!(q.pop_due(at(t0, 25)), Some(2));
        assert_eq!(q.get(2), None);
        assert_eq!(q.pop_due(at(t0, 25)), None);
        q.set(0, None);
        assert_eq!(q.pop_due(at(t0, 100)), Some(1));
        assert_eq!(q.pop_due(at(t0, 100)), None);
        assert_eq!(q.earliest(), None);
    }

    #[test]
    fn stale_entries_stay_bounded_without_allocating() {
        let t0 = Instant::now();
        let slots = 8;
        let mut q = TimerQueue::new(slots);
        let capacity = q.heap.capacity();
        for i in 0..100_000u64 {
            q.set((i % 8) as usize, Some(at(t0, i)));
            assert!(q.heap_len() <= q.heap_max, "heap grew to {}", q.heap_len());
        }
        // A deadline moved away and back must not leave two live entries.
        for i in 0..100_000u64 {
            q.set((i % 8) as usize, Some(at(t0, 200_000 + i % 2)));
            assert!(q.heap_len() <= q.heap_max, "heap grew to {}", q.heap_len());
        }
        assert_eq!(q.heap.capacity(), capacity, "the heap reallocated");
        assert_eq!(q.earliest(), Some(at(t0, 200_000)));
        let mut due = Vec::new();
        while let Some(s) = q.pop_due(at(t0, 300_000)) {
            due.push(s);
        }
        due.sort_unstable();
        assert_eq!(
            due,
            (0..slots).collect::<Vec<_>>(),
            "each slot due exactly once"
        );
    }

    #[derive(Clone, Debug)]
    enum Op {
        Set(usize, Option<u64>),
        Pop(u64),
        Next,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..6usize, proptest::option::of(0..50u64)).prop_map(|(s, t)| Op::Set(s, t)),
            2 => (0..60u64).prop_map(Op::Pop),
            1 => Just(Op::Next),
        ]
    }

    proptest! {
        /// The queue behaves like a plain per-slot table scanned for its
        /// minimum (the implementation it replaced).
        #[test]
        fn matches_a_scanned_table(ops in proptest::collection::vec(op(), 0..300)) {
            let t0 = Instant::now();
            let mut q = TimerQueue::new(6);
            let mut oracle: Vec<Option<Instant>> = vec![None; 6];
            for op in ops {
                match op {
                    Op::Set(s, t) => {
                        let t = t.map(|ms| at(t0, ms));
                        q.set(s, t);
                        oracle[s] = t;
                    }
                    Op::Pop(now) => {
                        let now = at(t0, now);
                        let got = q.pop_due(now);
                        let earliest = oracle.iter().flatten().min().copied();
                        match got {
                            Some(s) => {
                                // Any due slot with the earliest deadline.
                                prop_assert_eq!(oracle[s], earliest);
                                prop_assert!(earliest.is_some_and(|t| t <= now));
                                oracle[s] = None;
                            }
                            None => prop_assert!(earliest.is_none_or(|t| t > now)),
                        }
                    }
                    Op::Next => {
                        prop_assert_eq!(q.earliest(), oracle.iter().flatten().min().copied());
                    }
                }
                for (s, t) in oracle.iter().enumerate() {
                    prop_assert_eq!(q.get(s), *t);
                }
            }
        }
    }
}
