//! What a port refuses and drops, counted once, here: the reasons, and the
//! counts per reason and lane that `/metrics` reports as
//! `lanegate_link_dropped_total`.

use lanegate_common::ids::ShardId;
use lanegate_common::lanes::Lane;

use crate::pool::PayloadError;

/// Why the port refused an entry. Every refusal is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortError {
    /// No room in the lane: the ring to the shard is full up to the lane's
    /// limit, its control backlog is not empty, or the zone is moving and
    /// its hold queue is full. The message was dropped.
    #[error("no room in the {lane} lane towards the shard; message dropped")]
    Full {
        /// The message's lane.
        lane: Lane,
    },
    /// The payload is too large, or the core's buffer pool is empty.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The control backlog towards the shard is full; the join was refused.
    #[error("shard {shard} is not keeping up; join refused")]
    Backlog {
        /// The shard.
        shard: ShardId,
    },
    /// The degradation ladder sheds the message's lane.
    #[error("the {lane} lane is shed under load; message dropped")]
    Shed {
        /// The message's lane.
        lane: Lane,
    },
    /// Every shard is failed over: no shard can take the player.
    #[error("no shard is available (shard {shard} was failed over); join refused")]
    Unavailable {
        /// The zone's shard, failed over.
        shard: ShardId,
    },
}

/// Why the port dropped a game message bound for a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The ring to the shard was full up to the lane's limit.
    RingFull,
    /// Control entries were waiting in the shard's backlog, which game
    /// messages may not overtake.
    Backlog,
    /// The zone is moving and its hold queue was full.
    HoldFull,
    /// Every pool buffer of the payload's class was in flight.
    PoolEmpty,
    /// The payload was larger than any pool buffer.
    TooLarge,
    /// Every shard is failed over; none can take the message.
    ShardLost,
    /// The degradation ladder sheds the lane.
    Shed,
}

impl DropReason {
    /// Every reason, in a fixed order (the index of [`LinkDrops`]).
    pub const ALL: [DropReason; 7] = [
        DropReason::RingFull,
        DropReason::Backlog,
        DropReason::HoldFull,
        DropReason::PoolEmpty,
        DropReason::TooLarge,
        DropReason::ShardLost,
        DropReason::Shed,
    ];

    /// Number of reasons.
    pub const COUNT: usize = Self::ALL.len();

    /// The reason's label, as metrics name it.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::RingFull => "ring_full",
            DropReason::Backlog => "backlog",
            DropReason::HoldFull => "hold_full",
            DropReason::PoolEmpty => "pool_empty",
            DropReason::TooLarge => "too_large",
            DropReason::ShardLost => "shard_lost",
            DropReason::Shed => "shed",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// What a port dropped since it was built: game messages per reason and
/// lane, and joins it refused. The one count of losses between a gateway
/// core and its shards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkDrops {
    messages: [[u64; Lane::COUNT]; DropReason::COUNT],
    /// Joins refused because the shard's control backlog was full.
    pub joins_refused: u64,
    /// Joins refused because every shard was failed over.
    pub joins_unavailable: u64,
    /// Entries a failed-over shard sent after its fence, dropped unread: a
    /// stuck game that woke up late.
    pub fenced_dropped: u64,
    /// Game messages from the shards that the degradation ladder shed
    /// before delivery, per lane.
    pub shed_out: [u64; Lane::COUNT],
    /// `normal` messages the degradation ladder deferred in the core's
    /// queue (level 2 and up), in total.
    pub deferred: u64,
    /// Deferred messages dropped at release for having waited longer than
    /// `overload.defer_normal_max_ms`.
    pub deferred_expired: u64,
}

impl LinkDrops {
    /// Game messages of `lane` dropped for `reason`.
    pub fn get(&self, reason: DropReason, lane: Lane) -> u64 {
        self.messages[reason.index()][lane.index()]
    }

    /// Game messages dropped per lane, all reasons together.
    pub fn per_lane(&self) -> [u64; Lane::COUNT] {
        let mut total = [0; Lane::COUNT];
        for row in &self.messages {
            for (t, n) in total.iter_mut().zip(row) {
                *t += n;
            }
        }
        total
    }

    /// Adds `n` drops of `lane` for `reason` (the port counts one at a
    /// time; a reader that builds snapshots, such as a test, adds more).
    pub fn add(&mut self, reason: DropReason, lane: Lane, n: u64) {
        self.messages[reason.index()][lane.index()] += n;
    }

    pub(super) fn count(&mut self, reason: DropReason, lane: Lane) {
        self.add(reason, lane, 1);
    }
}
