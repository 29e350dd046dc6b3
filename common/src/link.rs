//! The messages that cross the gateway ⇄ shard rings.
//!
//! Gateway cores and shard workers talk over single-producer single-consumer
//! rings, one per (gateway core, shard) pair in each direction (the rings
//! themselves live in `lanegate-shard::ring`). This module defines what
//! travels in them, so that the gateway and the shards agree on it without
//! depending on each other:
//!
//! - [`ToShard`]: gateway → shard. Session join and leave, an inbound game
//!   message with its lane and player, and zone control (moves).
//! - [`ToGateway`]: shard → gateway. Outbound unicast, broadcast to a zone,
//!   zone reset after a shard restart, and zone-move replies.
//! - [`ShardHealth`]: the shard's health snapshot, published off the message
//!   path (see `lanegate-shard::health`): a stalled shard cannot push to its
//!   own ring, so health does not travel in it.
//!
//! # Entry size and payloads
//!
//! Ring slots are allocated once, at start, so an entry is a fixed-size value.
//! Small payloads (up to [`INLINE_PAYLOAD_MAX`] bytes: inputs, acks, most
//! game events) are copied inline into the entry. Larger ones travel in a
//! [`PoolBuf`], a buffer taken from the producer's per-ring pool and returned
//! to it over a return ring once the consumer is done. Moving a `PoolBuf`
//! moves a pointer; nothing allocates per message in steady state. Pool
//! buffers come in two size classes ([`BufClass`]): one that holds any
//! datagram and one that holds any stream message, their sizes
//! ([`BufClasses`]) taken from the configured message limits.
//!
//! Zone hand-off state ([`ZoneHandoff`]) is boxed: moves are rare control
//! events, not the message path, and the state's size is the game's business.

use std::time::{Duration, Instant};

use crate::config::GatewayConfig;
use crate::ids::{CoreId, PlayerId, SessionId, ShardId, ZoneId};
use crate::lanes::Lane;
use crate::wire::Transport;

/// Largest payload copied inline into a ring entry, in bytes.
///
/// Chosen so that a [`ToShard::Message`] entry, its receive time
/// included, fits in two 64-byte cache lines: the common game message (an
/// input, an ack) is far smaller.
pub const INLINE_PAYLOAD_MAX: usize = 72;

/// Identifies one zone move from start to finish.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MoveId(pub u64);

/// Size class of a pooled buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BufClass {
    /// Holds any datagram payload ([`BufClasses::datagram_bytes`]).
    Datagram,
    /// Holds any stream payload ([`BufClasses::stream_bytes`]).
    Stream,
}

/// What a buffer of each [`BufClass`] holds, in payload bytes: the
/// configured message limits less the 2-byte type, so every message the
/// configuration allows fits a class. Pools are built with one value and
/// carry it; nothing outside the configuration fixes a payload size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufClasses {
    /// Capacity of a [`BufClass::Datagram`] buffer: the largest datagram
    /// payload.
    pub datagram_bytes: usize,
    /// Capacity of a [`BufClass::Stream`] buffer: the largest stream
    /// payload.
    pub stream_bytes: usize,
}

impl BufClasses {
    /// The classes for `gateway`'s message limits
    /// (`datagram_message_bytes_max` and `stream_message_bytes_max`, each
    /// less the type).
    pub fn from_config(gateway: &GatewayConfig) -> Self {
        Self {
            datagram_bytes: gateway.datagram_payload_bytes_max(),
            stream_bytes: gateway.stream_payload_bytes_max(),
        }
    }

    /// Bytes a buffer of `class` holds.
    pub const fn capacity_bytes(&self, class: BufClass) -> usize {
        match class {
            BufClass::Datagram => self.datagram_bytes,
            BufClass::Stream => self.stream_bytes,
        }
    }

    /// The smallest class that holds `len` bytes, if any.
    pub const fn for_len(&self, len: usize) -> Option<BufClass> {
        if len <= self.datagram_bytes {
            Some(BufClass::Datagram)
        } else if len <= self.stream_bytes {
            Some(BufClass::Stream)
        } else {
            None
        }
    }

    /// Allocates an empty buffer of `class`. Pools call this at start only.
    pub fn buf(&self, class: BufClass) -> PoolBuf {
        PoolBuf::new(class, self.capacity_bytes(class))
    }
}

/// A payload buffer owned by a per-ring pool.
///
/// Its capacity is fixed at creation (the pool's
/// [`BufClasses::capacity_bytes`]) and never grows: [`PoolBuf::fill`]
/// refuses what does not fit rather than reallocating. Creating one
/// allocates; pools create them at start and recycle them afterwards.
#[derive(Debug, PartialEq, Eq)]
pub struct PoolBuf {
    bytes: Vec<u8>,
    class: BufClass,
}

impl PoolBuf {
    /// Allocates an empty buffer of `class` holding `capacity_bytes`. Pools
    /// call this (through [`BufClasses::buf`]) at start only.
    pub fn new(class: BufClass, capacity_bytes: usize) -> Self {
        Self {
            // `with_capacity` allocates exactly this much (std's `Vec`
            // guarantees), so the capacity is the class's size.
            bytes: Vec::with_capacity(capacity_bytes),
            class,
        }
    }

    /// The buffer's size class.
    pub fn class(&self) -> BufClass {
        self.class
    }

    /// Bytes the buffer holds at most.
    pub fn capacity_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    /// Replaces the contents with `payload`; refuses (and leaves the buffer
    /// empty) if it does not fit, so the buffer never reallocates.
    pub fn fill(&mut self, payload: &[u8]) -> Result<(), PayloadTooLarge> {
        self.bytes.clear();
        if payload.len() > self.bytes.capacity() {
            return Err(PayloadTooLarge { len: payload.len() });
        }
        self.bytes.extend_from_slice(payload);
        Ok(())
    }

    /// The payload bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes
    }
}

/// A payload longer than its buffer (or than any buffer) can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a {len}-byte payload is larger than the buffer that should carry it")]
pub struct PayloadTooLarge {
    /// Length of the refused payload, in bytes.
    pub len: usize,
}

/// A payload copied into the ring entry itself.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InlinePayload {
    len: u8,
    bytes: [u8; INLINE_PAYLOAD_MAX],
}

impl InlinePayload {
    /// Copies `payload` inline, if it is at most [`INLINE_PAYLOAD_MAX`] bytes.
    pub fn new(payload: &[u8]) -> Option<Self> {
        let len = u8::try_from(payload.len())
            .ok()
            .filter(|&l| usize::from(l) <= INLINE_PAYLOAD_MAX)?;
        let mut bytes = [0; INLINE_PAYLOAD_MAX];
        bytes[..payload.len()].copy_from_slice(payload);
        Some(Self { len, bytes })
    }

    /// The payload bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for InlinePayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InlinePayload({} bytes)", self.len)
    }
}

/// The bytes of a message after its type: inline, or in a pooled buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Payload {
    /// Up to [`INLINE_PAYLOAD_MAX`] bytes, inside the entry.
    Inline(InlinePayload),
    /// A buffer that must go back to the pool it came from.
    Pooled(PoolBuf),
}

impl Payload {
    /// The payload bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Payload::Inline(p) => p.as_slice(),
            Payload::Pooled(b) => b.as_slice(),
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Whether the payload has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pooled buffer, if any, so the consumer can return it.
    pub fn into_pooled(self) -> Option<PoolBuf> {
        match self {
            Payload::Inline(_) => None,
            Payload::Pooled(b) => Some(b),
        }
    }
}

/// One game message: type, lane, transport and payload.
#[derive(Debug, PartialEq, Eq)]
pub struct Body {
    /// The message type (a game type: never in the control range).
    pub ty: u16,
    /// The lane the gateway classified it into (inbound), or that the shard's
    /// lane table gives its type (outbound).
    pub lane: Lane,
    /// How it travels between client and gateway.
    pub transport: Transport,
    /// The payload after the type.
    pub payload: Payload,
}

/// Gateway → shard.
#[derive(Debug, PartialEq, Eq)]
pub enum ToShard {
    /// A session entered a zone this shard owns. Precedes all of its messages
    /// in the same ring.
    Join {
        /// The gateway session.
        session: SessionId,
        /// The player the session authenticated as.
        player: PlayerId,
        /// The zone the player enters.
        zone: ZoneId,
    },
    /// A session left its zone (or closed). Follows all of its messages.
    Leave {
        /// The gateway session.
        session: SessionId,
        /// The player.
        player: PlayerId,
        /// The zone the player leaves.
        zone: ZoneId,
    },
    /// A game message from a player.
    Message {
        /// The gateway session it arrived on.
        session: SessionId,
        /// The sender.
        player: PlayerId,
        /// The sender's zone.
        zone: ZoneId,
        /// Type, lane, transport and payload.
        body: Body,
        /// When the gateway core received it (its loop turn's `now`): the
        /// shard measures how long messages wait in rings and inboxes
        /// against it (sojourn time, the degradation ladder's queueing
        /// signal).
        received_at: Instant,
        /// How long the core held it before it went on the ring, in µs
        /// (deferred, held for a zone move): set as it goes on, so the shard
        /// measures its service time from the ring, not from the socket.
        held_us: u32,
    },
    /// Zone control: the steps of a zone move.
    Zone(ZoneControl),
    /// A session of `player` was welcomed on the sending core. Sent to the
    /// player's home shard (`player % shards`) whatever zone it plays in,
    /// so that two sessions of one player on different cores, in zones of
    /// different shards, still meet in one place: the home shard tells the
    /// older session's core it was replaced (`docs/protocol.md` §4).
    Claim {
        /// The new session.
        session: SessionId,
        /// Its player.
        player: PlayerId,
    },
    /// The session of a [`ToShard::Claim`] closed; to the same shard.
    Release {
        /// The session.
        session: SessionId,
        /// Its player.
        player: PlayerId,
    },
}

impl ToShard {
    /// The lane of a game message; `None` for control entries, which are
    /// never shed.
    pub fn lane(&self) -> Option<Lane> {
        match self {
            ToShard::Message { body, .. } => Some(body.lane),
            _ => None,
        }
    }

    /// When the gateway received a game message; `None` for control
    /// entries.
    pub fn received_at(&self) -> Option<Instant> {
        match self {
            ToShard::Message { received_at, .. } => Some(*received_at),
            _ => None,
        }
    }

    /// When a game message went on its ring: its receipt plus the time the
    /// core held it (`held_us`, stamped as it went on).
    pub fn ringed_at(&self) -> Option<Instant> {
        match self {
            ToShard::Message {
                received_at,
                held_us,
                ..
            } => Some(*received_at + Duration::from_micros(u64::from(*held_us))),
            _ => None,
        }
    }
}

/// The shard-side steps of a zone move (see `docs/shard.md`, "Zones").
#[derive(Debug, PartialEq, Eq)]
pub enum ZoneControl {
    /// Sent by every gateway core to the zone's current owner, after the last
    /// message it routed there for the zone. When the owner has one from
    /// every core and has processed everything before them, it exports the
    /// zone.
    Drain(ZoneDrain),
    /// Sent by the coordinating core to the new owner with the exported state.
    Import(Box<ZoneHandoff>),
}

/// See [`ZoneControl::Drain`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZoneDrain {
    /// The zone being moved.
    pub zone: ZoneId,
    /// Which move this is.
    pub move_id: MoveId,
    /// The shard the zone moves to.
    pub to: ShardId,
    /// The gateway core that relays the exported state to the new owner.
    pub coordinator: CoreId,
}

/// A zone's state and membership, in transit from one shard to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneHandoff {
    /// The zone.
    pub zone: ZoneId,
    /// Which move this is.
    pub move_id: MoveId,
    /// The old owner.
    pub from: ShardId,
    /// The new owner.
    pub to: ShardId,
    /// The gateway core that relays it.
    pub coordinator: CoreId,
    /// Who is in the zone, and on which gateway core.
    pub members: Vec<ZoneMember>,
    /// The game's own bytes for the zone (`Game::export_zone`).
    pub state: Vec<u8>,
}

/// A player in a zone, as the runtime knows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZoneMember {
    /// Their session.
    pub session: SessionId,
    /// The player.
    pub player: PlayerId,
    /// The gateway core that holds the session.
    pub core: CoreId,
}

/// Shard → gateway.
#[derive(Debug, PartialEq, Eq)]
pub enum ToGateway {
    /// A message for one session.
    Unicast {
        /// The recipient's session.
        session: SessionId,
        /// The recipient.
        player: PlayerId,
        /// The message.
        body: Body,
    },
    /// A message for every session of this gateway core in `zone`.
    Broadcast {
        /// The zone.
        zone: ZoneId,
        /// The message.
        body: Body,
    },
    /// The zone's game state was lost (the shard's game panicked and was
    /// restarted). The gateway sends `ZONE_RESET` to the zone's players; they
    /// stay connected and have been re-joined to a fresh game instance.
    ZoneReset {
        /// The zone.
        zone: ZoneId,
    },
    /// The game moved a player out of `from` (the shard has already
    /// called `on_leave` and forgotten the player). The gateway core that
    /// holds the session re-routes it: a join to `to`'s shard, then
    /// `ZONE_CHANGED` to the client. Never dropped (a control entry).
    ZoneChanged {
        /// The player's session.
        session: SessionId,
        /// The player.
        player: PlayerId,
        /// The zone the player left.
        from: ZoneId,
        /// The zone the player goes to.
        to: ZoneId,
    },
    /// The shard took a `Join` for a player it already had on another
    /// session: this older session, held by the core this entry goes to,
    /// is replaced (`docs/protocol.md` §4, "One session per player"). The
    /// core closes it with `SESSION_REPLACED` if it is still open. Never
    /// dropped (a control entry).
    SessionReplaced {
        /// The older session, the one to close.
        session: SessionId,
        /// The player.
        player: PlayerId,
    },
    /// The old owner exported a moving zone; the coordinating core forwards
    /// it to the new owner as [`ZoneControl::Import`].
    ZoneExported(Box<ZoneHandoff>),
    /// The new owner imported a moving zone; the move can complete.
    ZoneImported {
        /// The zone.
        zone: ZoneId,
        /// Which move.
        move_id: MoveId,
    },
}

impl ToGateway {
    /// The lane of a game message; `None` for control entries.
    pub fn lane(&self) -> Option<Lane> {
        match self {
            ToGateway::Unicast { body, .. } | ToGateway::Broadcast { body, .. } => Some(body.lane),
            _ => None,
        }
    }
}

/// A shard's health, as the gateway reads it.
///
/// Percentiles cover a sliding window of recent ticks; counters are totals
/// since the shard started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardHealth {
    /// Which shard.
    pub shard: ShardId,
    /// Ticks completed.
    pub ticks: u64,
    /// Ticks that took longer than the tick budget.
    pub overruns: u64,
    /// Median tick duration over the window, in microseconds.
    pub tick_p50_us: u32,
    /// 99th percentile tick duration over the window, in microseconds.
    pub tick_p99_us: u32,
    /// Longest tick in the window, in microseconds.
    pub tick_max_us: u32,
    /// Messages waiting in the shard's inbox per lane after the last drain.
    pub inbox_depth: [u32; Lane::COUNT],
    /// Entries waiting in the shard's inbound rings after the last drain.
    pub ring_depth: u32,
    /// Inbound messages the shard shed because a lane's inbox was full.
    pub inbound_shed: [u64; Lane::COUNT],
    /// Outbound messages lost per lane: ring full, pool exhausted, outbox full.
    pub outbound_lost: [u64; Lane::COUNT],
    /// Game instances replaced after a panic.
    pub restarts: u32,
    /// Messages dropped because their sender had left the zone they were
    /// sent in (a zone change, or a close) before the game got to them.
    pub stale_dropped: u64,
    /// The shard's degradation level, 0 to 4.
    pub level: u8,
    /// Outbound `bulk` messages the shard shed because of its level.
    pub shed_out: u64,
    /// Whether the watchdog sees the shard late past the stall limit: a tick
    /// running that long, or no tick started that long after one was due.
    pub stalled: bool,
    /// Stalls the watchdog has seen.
    pub stalls: u32,
    /// Whether the shard was failed over: fenced for good, its zones
    /// re-homed, anything it still sends dropped.
    pub fenced: bool,
    /// Time since the shard last started a tick or message pass, in µs, as
    /// of the reading (0 when the reader did not ask).
    pub heartbeat_age_us: u64,
    /// Zones owned.
    pub zones: u32,
    /// Players joined.
    pub players: u32,
    /// The shortest time a message handed to the game since the previous
    /// snapshot had waited since the gateway received it (rings and inbox),
    /// in µs; 0 when fewer than 32 were handed over (a slow moment, not a
    /// queue). The minimum, as CoDel reads a
    /// queue: a burst that drains is not a standing queue, a wait every
    /// message pays is.
    pub sojourn_min_us: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_fit_two_cache_lines() {
        assert!(size_of::<ToShard>() <= 128, "{}", size_of::<ToShard>());
        assert!(size_of::<ToGateway>() <= 128, "{}", size_of::<ToGateway>());
    }

    #[test]
    fn inline_payload_bounds() {
        let max = [7u8; INLINE_PAYLOAD_MAX];
        assert_eq!(InlinePayload::new(&max).unwrap().as_slice(), &max[..]);
        assert!(InlinePayload::new(&[0; INLINE_PAYLOAD_MAX + 1]).is_none());
        assert!(InlinePayload::new(&[]).unwrap().as_slice().is_empty());
    }

    #[test]
    fn pool_buf_never_grows() {
        let classes = BufClasses::from_config(&GatewayConfig::default());
        let max = classes.datagram_bytes;
        let mut b = classes.buf(BufClass::Datagram);
        let cap = b.bytes.capacity();
        b.fill(&vec![1; max]).unwrap();
        assert_eq!(b.as_slice().len(), max);
        assert_eq!(
            b.fill(&vec![1; max + 1]),
            Err(PayloadTooLarge { len: max + 1 })
        );
        assert!(b.as_slice().is_empty());
        assert_eq!(b.bytes.capacity(), cap);
    }

    #[test]
    fn buf_class_for_len() {
        let classes = BufClasses::from_config(&GatewayConfig::default());
        assert_eq!(classes.for_len(0), Some(BufClass::Datagram));
        assert_eq!(
            classes.for_len(classes.datagram_bytes + 1),
            Some(BufClass::Stream)
        );
        assert_eq!(classes.for_len(classes.stream_bytes + 1), None);
    }

    #[test]
    fn classes_are_the_message_limits_less_the_type() {
        let gateway = GatewayConfig {
            datagram_message_bytes_max: 1150,
            stream_message_bytes_max: 1 << 20,
            ..GatewayConfig::default()
        };
        let classes = BufClasses::from_config(&gateway);
        assert_eq!(classes.datagram_bytes, 1148);
        assert_eq!(classes.stream_bytes, (1 << 20) - 2);
        assert_eq!(
            classes.buf(BufClass::Stream).capacity_bytes(),
            (1 << 20) - 2
        );
    }
}
