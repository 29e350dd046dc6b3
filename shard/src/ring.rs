//! The lane-aware SPSC ring between one gateway core and one shard.
//!
//! A thin wrapper over `ringbuf`'s `HeapRb` (a lock-free SPSC ring whose only
//! shared state is its two cache-padded indices). What it adds:
//!
//! - **Lane headroom.** A push in lane `l` is refused once the ring holds
//!   `lane_fill_max[l]` entries, so a bulk flood can fill only part of the
//!   ring and the lanes above it keep the rest. Control entries (lane `None`)
//!   may use every slot.
//! - **Loss accounting.** A refused push returns the entry at once (the
//!   producer decides: shed, back off, degrade) and counts it against its
//!   lane. Counters are plain integers owned by the producer: nothing on the
//!   message path is shared except the ring's own two indices.
//! - **A cheap fill estimate.** The producer knows how many entries it pushed
//!   and remembers how many the consumer had taken when it last looked; the
//!   difference over-estimates the fill, so the consumer's index is read only
//!   when the estimate reaches a lane's limit.

use std::sync::Arc;

use lanegate_common::lanes::Lane;
use lanegate_common::link::{ToGateway, ToShard};
use lanegate_common::wake::Doorbell;
use ringbuf::traits::{Consumer as _, Observer as _, Producer as _, Split as _};
use ringbuf::{CachingCons, CachingProd, HeapRb};

/// What a ring entry tells the ring about itself.
pub trait RingEntry {
    /// The entry's lane; `None` for control entries, which are never shed
    /// by lane headroom and never counted as lane loss.
    fn lane(&self) -> Option<Lane>;
}

impl RingEntry for ToShard {
    fn lane(&self) -> Option<Lane> {
        ToShard::lane(self)
    }
}

impl RingEntry for ToGateway {
    fn lane(&self) -> Option<Lane> {
        ToGateway::lane(self)
    }
}

/// A push the ring refused: the entry comes back to the producer.
#[derive(Debug, PartialEq, Eq)]
pub struct Full<T> {
    /// The lane whose limit was reached; `None` for a control entry, refused
    /// only when every slot is taken.
    pub lane: Option<Lane>,
    /// The refused entry.
    pub entry: T,
}

/// A ring could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    /// The ring has no slots, too many, or could not be allocated.
    #[error("cannot allocate a ring of {slots} slots: {reason}")]
    Allocate {
        /// Requested slots.
        slots: usize,
        /// What `ringbuf` said.
        reason: String,
    },
}

/// Builds a ring of `slots` entries. `lane_fill_max[l]` is the fill (in
/// entries) at which pushes in lane `l` are refused; values are clamped to
/// `1..=slots`.
pub fn ring<T: RingEntry>(
    slots: usize,
    lane_fill_max: [usize; Lane::COUNT],
) -> Result<(RingTx<T>, RingRx<T>), RingError> {
    let rb = HeapRb::<T>::try_new(slots).map_err(|e| RingError::Allocate {
        slots,
        reason: e.to_string(),
    })?;
    let (prod, cons) = rb.split();
    let tx = RingTx {
        inner: prod,
        slots,
        lane_fill_max: lane_fill_max.map(|m| m.clamp(1, slots)),
        pushed: 0,
        taken_seen: 0,
        lost: [0; Lane::COUNT],
        bell: None,
        rung_at: 0,
    };
    Ok((tx, RingRx { inner: cons }))
}

/// The producer end. Owned by exactly one thread.
pub struct RingTx<T> {
    inner: CachingProd<Arc<HeapRb<T>>>,
    slots: usize,
    lane_fill_max: [usize; Lane::COUNT],
    /// Entries ever pushed.
    pushed: u64,
    /// Entries the consumer had taken when last looked at.
    taken_seen: u64,
    lost: [u64; Lane::COUNT],
    /// The consumer's doorbell, rung by [`RingTx::notify`].
    bell: Option<Arc<Doorbell>>,
    /// `pushed` when the bell was last rung.
    rung_at: u64,
}

impl<T: RingEntry> RingTx<T> {
    /// Pushes `entry`, or hands it back if its lane's limit (or, for a
    /// control entry, the ring) is full. A refused game entry is counted in
    /// [`RingTx::lost`].
    #[inline]
    pub fn push(&mut self, entry: T) -> Result<(), Full<T>> {
        self.offer(entry).map_err(|f| self.refuse(f))
    }

    /// Pushes `entry`, or hands it back without counting a loss: for a
    /// producer that keeps the entry and retries (a held zone being
    /// released, a control backlog).
    #[inline]
    pub fn offer(&mut self, entry: T) -> Result<(), Full<T>> {
        let lane = entry.lane();
        let limit = lane.map_or(self.slots, |l| self.lane_fill_max[l.index()]);
        if self.fill_estimate() >= limit && self.refresh_fill() >= limit {
            return Err(Full { lane, entry });
        }
        match self.inner.try_push(entry) {
            Ok(()) => {
                self.pushed += 1;
                Ok(())
            }
            Err(entry) => Err(Full { lane, entry }),
        }
    }
}

impl<T> RingTx<T> {
    /// Rings `bell` from [`RingTx::notify`]: the consumer's doorbell.
    #[must_use]
    pub fn with_bell(mut self, bell: Arc<Doorbell>) -> Self {
        self.bell = Some(bell);
        self
    }

    /// Wakes the consumer if entries were pushed since the last call and it
    /// sleeps. Producers call it once per batch, not per entry.
    #[inline]
    pub fn notify(&mut self) {
        if self.pushed != self.rung_at {
            self.rung_at = self.pushed;
            if let Some(bell) = &self.bell {
                bell.ring();
            }
        }
    }

    /// Entries refused per lane since the ring was built.
    pub fn lost(&self) -> [u64; Lane::COUNT] {
        self.lost
    }

    /// Entries in the ring now (reads the consumer's index).
    pub fn len(&mut self) -> usize {
        self.refresh_fill()
    }

    /// Whether the ring is empty now.
    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// Slots in the ring.
    pub fn capacity(&self) -> usize {
        self.slots
    }

    fn fill_estimate(&self) -> usize {
        usize::try_from(self.pushed - self.taken_seen).unwrap_or(usize::MAX)
    }

    fn refresh_fill(&mut self) -> usize {
        let occupied = self.inner.occupied_len();
        self.taken_seen = self.pushed - occupied as u64;
        occupied
    }

    #[cold]
    fn refuse(&mut self, full: Full<T>) -> Full<T> {
        if let Some(l) = full.lane {
            self.lost[l.index()] += 1;
        }
        full
    }
}

/// The consumer end. Owned by exactly one thread.
pub struct RingRx<T> {
    inner: CachingCons<Arc<HeapRb<T>>>,
}

impl<T> RingRx<T> {
    /// Takes the oldest entry, if any.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        self.inner.try_pop()
    }

    /// Entries waiting now (reads the producer's index).
    pub fn len(&self) -> usize {
        self.inner.occupied_len()
    }

    /// Whether no entry is waiting now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> std::fmt::Debug for RingTx<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingTx")
            .field("slots", &self.slots)
            .field("pushed", &self.pushed)
            .field("lost", &self.lost)
            .finish()
    }
}

impl<T> std::fmt::Debug for RingRx<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingRx").field("len", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct E {
        lane: Option<Lane>,
        seq: u64,
    }

    impl RingEntry for E {
        fn lane(&self) -> Option<Lane> {
            self.lane
        }
    }

    #[derive(Debug, Clone, Copy)]
    enum Op {
        Push(Option<Lane>),
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0usize..5).prop_map(|l| Op::Push(Lane::from_index(l))),
            2 => Just(Op::Pop),
        ]
    }

    proptest! {
        /// The ring behaves as a bounded `VecDeque` with per-lane fill limits.
        #[test]
        fn matches_vecdeque_oracle(
            slots in 1usize..12,
            pct in proptest::array::uniform3(1usize..=100),
            ops in proptest::collection::vec(op(), 0..400),
        ) {
            let mut pct = [100, pct[0], pct[1], pct[2]];
            for i in 1..4 { pct[i] = pct[i].min(pct[i - 1]); }
            let fill = pct.map(|p| (slots * p / 100).max(1));
            let (mut tx, mut rx) = ring::<E>(slots, fill).unwrap();
            let mut oracle = VecDeque::new();
            let mut lost = [0u64; 4];
            for (seq, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Push(lane) => {
                        let e = E { lane, seq: seq as u64 };
                        let limit = lane.map_or(slots, |l| fill[l.index()]);
                        let got = tx.push(e);
                        if oracle.len() < limit {
                            prop_assert_eq!(got, Ok(()));
                            oracle.push_back(e);
                        } else {
                            prop_assert_eq!(got, Err(Full { lane, entry: e }));
                            if let Some(l) = lane { lost[l.index()] += 1; }
                        }
                    }
                    Op::Pop => prop_assert_eq!(rx.pop(), oracle.pop_front()),
                }
                prop_assert_eq!(tx.lost(), lost);
                prop_assert_eq!(rx.len(), oracle.len());
            }
        }
    }

    /// Two threads: every entry the producer pushed arrives once, in order,
    /// and every refused one is counted against its lane.
    #[test]
    fn two_thread_order_and_loss_accounting() {
        const N: u64 = 200_000;
        let (mut tx, mut rx) = ring::<E>(64, [64, 48, 32, 16]).unwrap();
        let producer = std::thread::spawn(move || {
            let mut accepted = [0u64; 4];
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            for seq in 0..N {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let lane = Lane::from_index(usize::try_from(x % 4).unwrap()).unwrap();
                if tx
                    .push(E {
                        lane: Some(lane),
                        seq,
                    })
                    .is_ok()
                {
                    accepted[lane.index()] += 1;
                }
                if seq % 1024 == 0 {
                    std::thread::yield_now();
                }
            }
            // The end marker is a control entry: it may use every slot, so
            // it is retried rather than lost.
            let mut end = E { lane: None, seq: N };
            while let Err(f) = tx.push(end) {
                end = f.entry;
                std::hint::spin_loop();
            }
            (accepted, tx.lost())
        });
        let mut received = [0u64; 4];
        let mut last: Option<u64> = None;
        loop {
            match rx.pop() {
                Some(E { lane: None, seq }) => {
                    assert_eq!(seq, N);
                    break;
                }
                Some(E { lane: Some(l), seq }) => {
                    assert!(
                        last.is_none_or(|p| p < seq),
                        "reordered: {last:?} then {seq}"
                    );
                    last = Some(seq);
                    received[l.index()] += 1;
                }
                None => std::hint::spin_loop(),
            }
        }
        let (accepted, lost) = producer.join().unwrap();
        assert_eq!(received, accepted);
        let total: u64 = received.iter().sum::<u64>() + lost.iter().sum::<u64>();
        assert_eq!(total, N);
        assert!(rx.pop().is_none());
    }

    #[test]
    fn zero_slots_is_an_error() {
        assert!(matches!(
            ring::<E>(0, [1; 4]),
            Err(RingError::Allocate { slots: 0, .. })
        ));
    }
}
