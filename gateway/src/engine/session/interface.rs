//! What a session is given and what it reports: the engine's context for
//! one call, the ids of an established session, classified game messages
//! and the [`SessionSink`] they go to, and how a session ends.

use std::time::Instant;

use lanegate_common::config::ZoneSet;
use lanegate_common::ids::{PlayerId, SessionId, ZoneId};
use lanegate_common::lanes::{Lane, LaneTable};
use lanegate_common::ticket::{KeySet, TicketError};
use lanegate_common::wire::{CloseCode, LaneLimit, Transport, WELCOME_LANES};

use crate::engine::admit::BanList;

/// What `Welcome` announces besides the session's own ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WelcomeParams {
    /// The zone's simulation rate.
    pub tick_rate_hz: u16,
    /// Largest message accepted in a datagram.
    pub datagram_message_bytes_max: u16,
    /// Largest message accepted in a stream frame.
    pub stream_message_bytes_max: u32,
    /// Per-lane limits, in lane order.
    pub lane_limits: [LaneLimit; WELCOME_LANES],
}

/// What a session needs from its engine for one call: borrowed, cheap.
#[derive(Clone, Copy, Debug)]
pub struct SessionCtx<'a> {
    /// Classifies message types into lanes.
    pub lanes: &'a LaneTable,
    /// Verifies tickets.
    pub keys: &'a KeySet,
    /// The zones a ticket may name (`shards.zones`).
    pub zones: &'a ZoneSet,
    /// Wall-clock now, Unix seconds (for ticket lifetimes).
    pub unix_now_s: u64,
    /// Ticket clock-skew tolerance.
    pub clock_skew_s: u64,
    /// What `Welcome` announces.
    pub welcome: &'a WelcomeParams,
    /// The id this session gets if its `Hello` verifies.
    pub session: SessionId,
    /// Whether some shard can take a player: when every shard was failed
    /// over, a verified `Hello` gets `Reject` with `SHARD_UNAVAILABLE`.
    pub shard_available: bool,
    /// Players banned after an `ABUSE` close: their `Hello` gets `Reject`
    /// with `ABUSE`.
    pub bans: &'a BanList,
    /// Now, on the engine's clock (for the bans).
    pub now: Instant,
}

/// The ids of an established session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Established {
    /// The gateway's session id.
    pub session: SessionId,
    /// The player the ticket named.
    pub player: PlayerId,
    /// The player's zone.
    pub zone: ZoneId,
}

/// A game message from the client, classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GameIn<'a> {
    /// The message type (a game type).
    pub ty: u16,
    /// Its lane, from the lane table.
    pub lane: Lane,
    /// How it arrived.
    pub transport: Transport,
    /// The payload after the type.
    pub payload: &'a [u8],
}

/// Receives what a session produces, in order.
pub trait SessionSink {
    /// The `Hello` verified and `Welcome` is in the reply buffer.
    fn established(&mut self, session: Established);
    /// A game message from an established session. `Err(code)` closes the
    /// connection (admission said so); later messages are ignored.
    fn game(&mut self, session: Established, message: GameIn<'_>) -> Result<(), CloseCode>;
}

/// Why a session closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseCause {
    /// A stream frame with a bad length, or a stream ended inside a frame.
    Framing,
    /// A stream message that does not decode.
    Malformed,
    /// Before `Welcome`: anything but one `Hello` on the control stream.
    NotHello,
    /// After `Welcome`: a control-range type on a stream.
    ControlAfterWelcome,
    /// Data on a uni stream before `Welcome`, or more uni streams than allowed.
    StreamNotAllowed,
    /// `Hello` named another protocol version.
    Version,
    /// The ticket did not verify.
    Ticket(TicketError),
    /// The ticket verified, for a zone this gateway does not serve.
    UnknownZone(ZoneId),
    /// No `Hello` before the deadline.
    HelloTimeout,
    /// The client finished or reset its control stream.
    ControlStreamEnded,
    /// The admission hook closed it.
    Admission,
    /// A stream frame stayed incomplete past `gateway.frame_stall_ms`.
    FrameStall,
    /// The engine closed it (drain, datagrams missing, server full...).
    Engine,
    /// No shard could take the player: every shard was failed over (a
    /// `Hello`, refused), or the player's shard was and none could take it
    /// over.
    ShardUnavailable,
    /// The connection was lost (peer close, idle timeout, transport error).
    ConnectionLost,
    /// A newer session of the same player was welcomed
    /// (`SESSION_REPLACED`).
    Replaced,
    /// The ticket's player is banned after an `ABUSE` close
    /// (`admission.abuse_ban_ms`).
    Banned,
}

/// The connection must close with `code`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Close {
    /// The QUIC application error code to close with.
    pub code: CloseCode,
    /// Why (for counters).
    pub cause: CloseCause,
    /// The session that ended, if it had been established (send `Leave`).
    pub left: Option<Established>,
}

/// What happened to a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatagramOutcome {
    /// Delivered to the sink as a game message.
    Delivered,
    /// Arrived before `Welcome` (or while closing): dropped.
    NotEstablished,
    /// Larger than `datagram_message_bytes_max`: dropped.
    Oversize,
    /// Too short to hold a type: dropped.
    Malformed,
    /// A control-range type: dropped.
    Control,
}

/// Which stream bytes came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamRef {
    /// The first client bidirectional stream.
    Control,
    /// A client unidirectional stream, by its QUIC stream id.
    Uni(u64),
}
