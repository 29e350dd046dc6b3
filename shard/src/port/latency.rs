//! Each message's time from its receipt to its shard's ring, per lane
//! (`lanegate_gateway_latency_seconds`): the gateway's own share of a
//! player's latency. Receipt is the kernel's receive timestamp where the IO
//! backend has one (the time in the socket and the loop counts), else the
//! turn that read the datagram; the ring time is the turn that pushed it
//! ([`GatewayPort::set_time`]). A message deferred or held for a zone move
//! counts the wait.
//!
//! One histogram per lane, plain numbers owned by the core: a bucket
//! search and two additions per message, no clock read. The core copies
//! them into its metrics snapshot.
//!
//! [`GatewayPort::set_time`]: super::GatewayPort::set_time

use std::time::Instant;

use lanegate_common::histogram::LatencyHistogram;
use lanegate_common::lanes::Lane;
use lanegate_common::link::ToShard;

use super::GatewayPort;

/// Per lane, the messages' times to the ring.
#[derive(Clone, Copy, Debug)]
pub struct RingLatency {
    on: bool,
    lanes: [LatencyHistogram; Lane::COUNT],
}

impl RingLatency {
    /// Histograms that record only when `on`
    /// (`observability.latency_histograms`).
    pub fn new(on: bool) -> Self {
        Self {
            on,
            lanes: [LatencyHistogram::default(); Lane::COUNT],
        }
    }

    /// A message of `lane` received at `received_at` went on a ring in the
    /// turn at `turn`.
    #[inline]
    pub(super) fn record(
        &mut self,
        lane: Lane,
        turn: Option<Instant>,
        received_at: Option<Instant>,
    ) {
        if let (true, Some(turn), Some(at)) = (self.on, turn, received_at) {
            self.lanes[lane.index()].record(turn.saturating_duration_since(at));
        }
    }
}

/// `entry`, a message, stamped with how long the core held it before the
/// ring (`held_us`); anything else as it is.
#[inline]
pub(super) fn stamped(mut entry: ToShard, turn: Option<Instant>) -> ToShard {
    if let (
        ToShard::Message {
            received_at,
            held_us,
            ..
        },
        Some(turn),
    ) = (&mut entry, turn)
    {
        let held = turn.saturating_duration_since(*received_at).as_micros();
        *held_us = u32::try_from(held).unwrap_or(u32::MAX);
    }
    entry
}

impl GatewayPort {
    /// Per lane (in lane order), every message's time from its receipt to
    /// the ring since start: for the core's metrics snapshot.
    pub fn gateway_latency(&self) -> &[LatencyHistogram; Lane::COUNT] {
        &self.ring_latency.lanes
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn records_only_when_on_and_with_both_times() {
        let t0 = Instant::now();
        let mut on = RingLatency::new(true);
        on.record(Lane::High, Some(t0 + Duration::from_micros(300)), Some(t0));
        on.record(Lane::High, None, Some(t0));
        on.record(Lane::High, Some(t0), None);
        assert_eq!(on.lanes[Lane::High.index()].count(), 1);
        assert_eq!(on.lanes[Lane::High.index()].sum_us(), 300);
        assert_eq!(on.lanes[Lane::Critical.index()].count(), 0);
        let mut off = RingLatency::new(false);
        off.record(Lane::High, Some(t0), Some(t0));
        assert_eq!(off.lanes[Lane::High.index()].count(), 0);
    }
}
