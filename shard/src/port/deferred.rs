//! Level 2 of a gateway core's degradation ladder: `normal` messages wait
//! in a bounded queue of the core's own (`overload.defer_normal_slots_max`)
//! instead of going to the shards, and are shed past it. When the level
//! falls below 2 the queue is released to the shards in order, a batch per
//! turn; a message that waited longer than `overload.defer_normal_max_ms`
//! by then is dropped instead (a chat line from a minute ago is noise).
//!
//! Only a message whose payload is inline or fits a datagram-size pool
//! buffer waits here: the stream-size buffers are few, and a queue of chat
//! holding them would starve `critical` stream messages of a buffer. A
//! larger `normal` message is shed at level 2.
//!
//! While the queue is not empty, later `normal` messages queue behind it
//! even once the level has fallen, so a session's `normal` messages keep
//! their order. The queue is allocated at start and never grows.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use lanegate_common::ids::{ShardId, ZoneId};
use lanegate_common::link::ToShard;

use super::{GatewayPort, PortError, recycle};

/// Deferred entries released per turn at most: a burst of them cannot
/// crowd the rings the moment the level falls.
pub(super) const RELEASE_PER_TURN: usize = 256;

/// The deferral queue of one gateway core.
#[derive(Debug)]
pub(super) struct Deferred {
    queue: VecDeque<(ZoneId, ToShard)>,
    max: usize,
    max_age: Duration,
    /// Messages deferred, in total.
    pub(super) deferred: u64,
    /// Deferred messages dropped at release for their age.
    pub(super) expired: u64,
}

impl Deferred {
    /// Room for `max` entries; an entry older than `max_age` at release
    /// is dropped.
    pub(super) fn new(max: usize, max_age: Duration) -> Self {
        Self {
            queue: VecDeque::with_capacity(max),
            max,
            max_age,
            deferred: 0,
            expired: 0,
        }
    }

    /// Whether another entry fits.
    pub(super) fn has_room(&self) -> bool {
        self.queue.len() < self.max
    }

    /// Whether entries are waiting.
    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Entries waiting.
    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Queues `entry` for `zone`; the caller checked [`Deferred::has_room`].
    pub(super) fn push(&mut self, zone: ZoneId, entry: ToShard) {
        debug_assert!(self.has_room());
        self.queue.push_back((zone, entry));
        self.deferred += 1;
    }

    /// The next entry to release at `now`, in order, skipping (and handing
    /// to `expire`) those that waited too long. At most `budget` entries
    /// are looked at.
    pub(super) fn next(
        &mut self,
        now: Instant,
        budget: &mut usize,
        mut expire: impl FnMut(ToShard),
    ) -> Option<(ZoneId, ToShard)> {
        while *budget > 0 {
            let (zone, entry) = self.queue.pop_front()?;
            *budget -= 1;
            let fresh = match &entry {
                ToShard::Message { received_at, .. } => {
                    now.saturating_duration_since(*received_at) <= self.max_age
                }
                _ => true,
            };
            if fresh {
                return Some((zone, entry));
            }
            self.expired += 1;
            expire(entry);
        }
        None
    }
}

impl GatewayPort {
    /// [`GatewayPort::send`]'s entry, deferred or routed.
    pub(super) fn defer_or_route(
        &mut self,
        defer: bool,
        zone: ZoneId,
        shard: ShardId,
        entry: ToShard,
    ) -> Result<(), PortError> {
        if defer {
            self.deferred.push(zone, entry);
            self.drops.deferred += 1;
            return Ok(());
        }
        self.route_to(zone, shard, entry)
    }

    /// Tells the port the time of the core's turn (the core loop does as a
    /// turn starts, the engine again before each [`GatewayPort::poll`]):
    /// the port reads no clock; deferred messages' ages and each message's
    /// time to the ring are measured against it.
    pub fn set_time(&mut self, now: Instant) {
        self.now_seen = Some(now);
        self.turn = Some(now);
    }

    /// `normal` messages the core's level deferred, still waiting.
    pub fn deferred_waiting(&self) -> usize {
        self.deferred.len()
    }

    /// Releases deferred messages to their shards once the level no longer
    /// defers them: at most [`RELEASE_PER_TURN`] a call, the
    /// stale ones dropped (counted).
    pub(super) fn release_deferred(&mut self) {
        if self.shedding.defer_normal || self.deferred.is_empty() {
            return;
        }
        let mut budget = RELEASE_PER_TURN;
        loop {
            let Self {
                deferred,
                pool,
                now_seen,
                ..
            } = self;
            // Set by the send that deferred the first entry.
            let Some(now) = *now_seen else {
                break;
            };
            let Some((zone, entry)) = deferred.next(now, &mut budget, |e| recycle(pool, e)) else {
                break;
            };
            let shard = self.shard_of(zone);
            // A refusal now is counted by its reason, as any send's.
            let _ = self.route_to(zone, shard, entry);
        }
        self.drops.deferred_expired = self.deferred.expired;
    }
}

#[cfg(test)]
mod tests {
    use lanegate_common::ids::{PlayerId, SessionId};
    use lanegate_common::lanes::Lane;
    use lanegate_common::link::{Body, InlinePayload, Payload};
    use lanegate_common::wire::Transport;

    use super::*;

    fn message(n: u8, at: Instant) -> ToShard {
        ToShard::Message {
            session: SessionId(1),
            player: PlayerId(1),
            zone: ZoneId(0),
            body: Body {
                ty: 0x3000,
                lane: Lane::Normal,
                transport: Transport::Datagram,
                payload: Payload::Inline(InlinePayload::new(&[n]).unwrap()),
            },
            received_at: at,
            held_us: 0,
        }
    }

    fn first_byte(entry: &ToShard) -> u8 {
        match entry {
            ToShard::Message { body, .. } => body.payload.as_slice()[0],
            _ => panic!("a message"),
        }
    }

    #[test]
    fn entries_leave_in_order_within_the_budget_and_stale_ones_are_dropped() {
        let t0 = Instant::now();
        let mut q = Deferred::new(3, Duration::from_secs(5));
        q.push(ZoneId(0), message(1, t0));
        q.push(ZoneId(0), message(2, t0 + Duration::from_secs(4)));
        q.push(ZoneId(0), message(3, t0 + Duration::from_secs(5)));
        assert!(!q.has_room(), "bounded");
        // At 6 s the first waited too long; the budget counts it.
        let now = t0 + Duration::from_secs(6);
        let mut budget = 2;
        let mut expired = Vec::new();
        let got = q.next(now, &mut budget, |e| expired.push(first_byte(&e)));
        assert_eq!(got.map(|(_, e)| first_byte(&e)), Some(2));
        assert_eq!(expired, [1]);
        assert_eq!(budget, 0);
        assert!(q.next(now, &mut budget, |_| ()).is_none(), "budget spent");
        let mut budget = 5;
        assert_eq!(
            q.next(now, &mut budget, |_| ())
                .map(|(_, e)| first_byte(&e)),
            Some(3)
        );
        assert!(q.is_empty());
        assert_eq!((q.deferred, q.expired), (3, 1));
    }
}
