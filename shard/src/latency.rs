//! A shard's latency histograms (`lanegate_shard_service_seconds` per lane,
//! `lanegate_shard_tick_seconds`): how long each message took from its
//! ring to the moment the shard handed what the game sent in reply back
//! to the cores, and how long each tick took.
//!
//! The shard records with the times its loop already reads: a message
//! handed to the game is noted with the time it went on the ring (the
//! gateway stamped it, `ToShard::ringed_at`), and once the tick or pass
//! has flushed its output, one clock read closes every message of it
//! (`ServiceClock::handed_back`). The notes live in a buffer sized at
//! start from the lane budgets, so nothing allocates per message.
//!
//! A few times a second the shard copies its histograms into its
//! [`LatencySlot`] (`try_lock`: a shard never waits for the metrics
//! thread), which the metrics endpoint reads and merges.

use std::sync::{Arc, Mutex, TryLockError};
use std::time::Instant;

use lanegate_common::histogram::LatencyHistogram;
use lanegate_common::lanes::Lane;

/// What a shard has measured since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardLatency {
    /// Per lane (lane order): ring → reply handed back to the cores.
    pub service: [LatencyHistogram; Lane::COUNT],
    /// Tick durations.
    pub tick: LatencyHistogram,
}

/// Where a shard publishes its [`ShardLatency`].
#[derive(Debug, Default)]
pub struct LatencySlot {
    latest: Mutex<ShardLatency>,
}

impl LatencySlot {
    /// A new, empty slot.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The latest copy the shard published.
    pub fn read(&self) -> ShardLatency {
        *self
            .latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores `latency` unless a reader holds the slot (the next publish
    /// brings it).
    fn publish(&self, latency: &ShardLatency) {
        match self.latest.try_lock() {
            Ok(mut guard) => *guard = *latency,
            Err(TryLockError::Poisoned(p)) => *p.into_inner() = *latency,
            Err(TryLockError::WouldBlock) => {}
        }
    }
}

/// The shard's side: notes messages as they are handed to the game and
/// closes them when their tick's output is handed back.
#[derive(Debug)]
pub(crate) struct ServiceClock {
    on: bool,
    /// Messages of the current tick or pass: lane and when it went on the
    /// ring. Capacity: the lane budgets of one pass.
    pending: Vec<(Lane, Instant)>,
    measured: ShardLatency,
    slot: Arc<LatencySlot>,
}

impl ServiceClock {
    /// A clock publishing to `slot`, noting at most `per_pass_max`
    /// messages a pass (the sum of the lane budgets; more are not noted).
    pub(crate) fn new(on: bool, per_pass_max: usize, slot: Arc<LatencySlot>) -> Self {
        Self {
            on,
            pending: Vec::with_capacity(if on { per_pass_max } else { 0 }),
            measured: ShardLatency::default(),
            slot,
        }
    }

    /// A message of `lane` that went on the ring at `ringed_at` was handed
    /// to the game.
    #[inline]
    pub(crate) fn delivered(&mut self, lane: Lane, ringed_at: Instant) {
        if self.on && self.pending.len() < self.pending.capacity() {
            self.pending.push((lane, ringed_at));
        }
    }

    /// The tick or pass flushed its output at `now`.
    pub(crate) fn handed_back(&mut self, now: Instant) {
        for (lane, at) in self.pending.drain(..) {
            self.measured.service[lane.index()].record(now.saturating_duration_since(at));
        }
    }

    /// A tick took `took`.
    pub(crate) fn tick(&mut self, took: std::time::Duration) {
        if self.on {
            self.measured.tick.record(took);
        }
    }

    /// Copies what was measured into the slot.
    pub(crate) fn publish(&self) {
        if self.on {
            self.slot.publish(&self.measured);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_message_is_closed_when_its_tick_hands_back_and_published() {
        let slot = LatencySlot::new();
        let mut clock = ServiceClock::new(true, 2, Arc::clone(&slot));
        let t0 = Instant::now();
        clock.delivered(Lane::Critical, t0);
        clock.delivered(Lane::Bulk, t0 + Duration::from_micros(100));
        // Past the capacity: not noted, nothing allocates.
        clock.delivered(Lane::Bulk, t0);
        clock.handed_back(t0 + Duration::from_micros(1_100));
        clock.tick(Duration::from_micros(900));
        assert_eq!(slot.read(), ShardLatency::default(), "not published yet");
        clock.publish();
        let read = slot.read();
        assert_eq!(read.service[Lane::Critical.index()].sum_us(), 1_100);
        assert_eq!(read.service[Lane::Bulk.index()].sum_us(), 1_000);
        assert_eq!(read.service[Lane::Bulk.index()].count(), 1);
        assert_eq!(read.tick.count(), 1);
    }

    #[test]
    fn off_records_nothing() {
        let slot = LatencySlot::new();
        let mut clock = ServiceClock::new(false, 8, Arc::clone(&slot));
        clock.delivered(Lane::High, Instant::now());
        clock.handed_back(Instant::now());
        clock.tick(Duration::from_millis(1));
        clock.publish();
        assert_eq!(slot.read(), ShardLatency::default());
    }
}
