//! Governor's GCRA over preallocated state: the buckets of both limiters.
//!
//! Governor keeps one theoretical arrival time (TAT) per bucket in a
//! [`StateStore`]. Its own stores are hash maps that grow with their keys;
//! [`TatTable`] is a fixed array indexed by slot, allocated when the limiter
//! is built, so checking a bucket never allocates or hashes and the number
//! of buckets has a limit. The owner keeps a clone of the table (clones
//! share the array) to reset a slot or see whether one is idle.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::{Quota, RateLimiter};

use super::AdmissionError;
use super::clock::SetClock;

/// Governor's GCRA over a [`TatTable`], on the engine's time.
pub(super) type Gcra = RateLimiter<usize, TatTable, SetClock, NoOpMiddleware<Nanos>>;

/// Governor state for a fixed number of buckets, indexed by slot: each
/// bucket's TAT in ns since the epoch, with 0 meaning a fresh bucket (as in
/// governor's `InMemoryState`). Governor never stores 0, because a stored
/// TAT is always at least one emission interval past the epoch.
///
/// Clones share the array. Only the owning limiter writes to it, through
/// `&mut self` methods, so a load followed by a store is never interleaved
/// with another writer. The atomics are `Relaxed` and exist only so the owner
/// stays `Send + Sync` without `unsafe`. On x86 and ARM they compile to
/// plain loads and stores.
#[derive(Clone)]
pub(super) struct TatTable {
    tats: Arc<[AtomicU64]>,
}

impl TatTable {
    pub(super) fn new(len: usize) -> Self {
        Self {
            tats: (0..len).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Bucket `i`'s TAT, 0 if it is fresh (or beyond the table).
    pub(super) fn get(&self, i: usize) -> u64 {
        self.tats.get(i).map_or(0, |t| t.load(Ordering::Relaxed))
    }

    /// Makes bucket `i` fresh: a full burst.
    pub(super) fn reset(&self, i: usize) {
        if let Some(t) = self.tats.get(i) {
            t.store(0, Ordering::Relaxed);
        }
    }
}

impl StateStore for TatTable {
    type Key = usize;

    #[inline]
    fn measure_and_replace<T, F, E>(&self, key: &usize, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let Some(cell) = self.tats.get(*key) else {
            // Unreachable: owners index only within the table. Measure
            // as a fresh bucket and store nothing rather than panic.
            return f(None).map(|(decision, _)| decision);
        };
        let tat = cell.load(Ordering::Relaxed);
        let (decision, next) = f((tat != 0).then_some(Nanos::new(tat)))?;
        cell.store(next.as_u64(), Ordering::Relaxed);
        Ok(decision)
    }
}

/// Its length, not every TAT: a table may hold tens of thousands.
impl fmt::Debug for TatTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TatTable")
            .field("len", &self.tats.len())
            .finish()
    }
}

/// A GCRA quota: one cell every `1 s / rate_per_s`, with `burst` at once.
/// The interval is rounded down to whole ns, so the rate is at most 1 ns per
/// cell faster than asked. A zero rate or burst is an error naming its
/// field.
pub(super) fn quota(
    rate_per_s: u32,
    burst: u32,
    rate_field: &'static str,
    burst_field: &'static str,
) -> Result<Quota, AdmissionError> {
    let rate = NonZeroU32::new(rate_per_s).ok_or(AdmissionError::Zero { field: rate_field })?;
    let burst = NonZeroU32::new(burst).ok_or(AdmissionError::Zero { field: burst_field })?;
    Ok(Quota::per_second(rate).allow_burst(burst))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tat_table_clones_share_buckets_and_out_of_range_stores_nothing() {
        let tats = TatTable::new(2);
        let owner = tats.clone();
        let stored: Result<(), ()> = tats.measure_and_replace(&1, |tat| {
            assert_eq!(tat, None, "a fresh bucket");
            Ok(((), Nanos::new(7)))
        });
        assert_eq!(stored, Ok(()));
        assert_eq!(owner.get(1), 7);
        owner.reset(1);
        assert_eq!(tats.get(1), 0);
        let beyond: Result<(), ()> = tats.measure_and_replace(&2, |tat| {
            assert_eq!(tat, None);
            Ok(((), Nanos::new(7)))
        });
        assert_eq!(beyond, Ok(()));
        assert_eq!(tats.get(2), 0);
        assert!(format!("{tats:?}").len() < 40);
    }

    #[test]
    fn zero_rate_or_burst_names_its_field() {
        assert_eq!(
            quota(0, 1, "rate", "burst").unwrap_err(),
            AdmissionError::Zero { field: "rate" }
        );
        assert_eq!(
            quota(1, 0, "rate", "burst").unwrap_err(),
            AdmissionError::Zero { field: "burst" }
        );
        assert!(quota(1, 1, "rate", "burst").is_ok());
    }
}
