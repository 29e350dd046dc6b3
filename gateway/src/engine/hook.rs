//! The engine's two hooks: the admission policy it consults for every
//! inbound game message, and the sink it pushes shard-bound messages into.
//!
//! Mechanism apart from policy (s2n-quic's `endpoint/limits.rs`): the engine
//! classifies, routes and counts; an [`Admission`] decides whether a message
//! passes, and a [`ShardSink`] owns the rings and their buffer pools. The
//! governor-based admission lives in `engine::admit` and implements
//! [`Admission`]; the IO layer's ring set implements [`ShardSink`].

use std::net::SocketAddr;
use std::time::Instant;

use lanegate_common::lanes::Lane;
use lanegate_common::link::{Body, InlinePayload, Payload, PoolBuf, ToShard};
use lanegate_common::wire::CloseCode;

use super::Counters;
use super::session::{Established, GameIn, SessionSink};

/// A connection's index in its core's table, stable for the connection's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnSlot(pub u32);

/// What admission decides for one game message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdmitDecision {
    /// Forward it.
    Admit,
    /// Drop it silently (counted per lane).
    Drop,
    /// Close the connection with this code (e.g. `ABUSE`).
    Close(CloseCode),
}

/// The admission policy the engine consults for every inbound game message.
///
/// Mechanism apart from policy: the engine classifies and routes, the hook
/// decides. `on_open` and `on_close` bracket a session (its `Join` and
/// `Leave`), so per-session state can be reset when a slot is reused.
/// `admit_handshake` gates new QUIC connections (per source address
/// handshake limits, `gateway.handshakes_per_ip_per_s`); by default all pass.
pub trait Admission {
    /// Whether a new connection from `remote` may start its handshake.
    /// `false` drops its first packet silently (no reply to amplify).
    fn admit_handshake(&mut self, now: Instant, remote: SocketAddr) -> bool {
        let _ = (now, remote);
        true
    }
    /// Whether the message of `lane` from `conn` may pass, at `now`.
    fn admit(&mut self, now: Instant, conn: ConnSlot, lane: Lane) -> AdmitDecision;
    /// A session was established on `conn`.
    fn on_open(&mut self, now: Instant, conn: ConnSlot);
    /// The session on `conn` ended.
    fn on_close(&mut self, conn: ConnSlot);
}

/// Admits everything (tests, and benchmarks of the unlimited path).
#[derive(Clone, Copy, Debug, Default)]
pub struct AdmitAll;

impl Admission for AdmitAll {
    fn admit(&mut self, _now: Instant, _conn: ConnSlot, _lane: Lane) -> AdmitDecision {
        AdmitDecision::Admit
    }
    fn on_open(&mut self, _now: Instant, _conn: ConnSlot) {}
    fn on_close(&mut self, _conn: ConnSlot) {}
}

/// Where the engine sends messages for shards (the core's rings).
pub trait ShardSink {
    /// Queues `message` for the shard owning its zone. When that ring is
    /// full the sink drops the message, returns its pool buffer (if any) to
    /// its pool, and says [`ShardFull`]; the engine counts it per lane.
    fn push(&mut self, message: ToShard) -> Result<(), ShardFull>;
    /// A pool buffer that holds `len` bytes, for a payload too large to
    /// travel inline; `None` when the pool of that size class is empty or
    /// no class holds `len` (the message is dropped and counted).
    fn take_buf(&mut self, len: usize) -> Option<PoolBuf>;
    /// Returns a buffer from [`ShardSink::take_buf`] that was not sent.
    fn recycle(&mut self, buf: PoolBuf);
}

/// A shard ring had no room: the message was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardFull;

/// Routes a session's output: admission, then the shard sink.
pub(super) struct Router<'a, A, S> {
    pub(super) admission: &'a mut A,
    pub(super) sink: &'a mut S,
    pub(super) counters: &'a mut Counters,
    pub(super) conn: ConnSlot,
    pub(super) now: Instant,
}

impl<A: Admission, S: ShardSink> SessionSink for Router<'_, A, S> {
    fn established(&mut self, session: Established) {
        self.counters.sessions_opened += 1;
        self.counters.sessions_open += 1;
        self.admission.on_open(self.now, self.conn);
        let join = ToShard::Join {
            session: session.session,
            player: session.player,
            zone: session.zone,
        };
        if self.sink.push(join).is_err() {
            self.counters.ring_full_control += 1;
        }
    }

    fn game(&mut self, session: Established, message: GameIn<'_>) -> Result<(), CloseCode> {
        let lane = message.lane.index();
        match self.admission.admit(self.now, self.conn, message.lane) {
            AdmitDecision::Admit => {}
            AdmitDecision::Drop => {
                self.counters.admit_dropped[lane] += 1;
                return Ok(());
            }
            AdmitDecision::Close(code) => return Err(code),
        }
        let payload = match InlinePayload::new(message.payload) {
            Some(inline) => Payload::Inline(inline),
            None => {
                let Some(mut buf) = self.sink.take_buf(message.payload.len()) else {
                    self.counters.pool_empty += 1;
                    return Ok(());
                };
                if buf.fill(message.payload).is_err() {
                    self.sink.recycle(buf);
                    self.counters.pool_empty += 1;
                    return Ok(());
                }
                Payload::Pooled(buf)
            }
        };
        let to_shard = ToShard::Message {
            session: session.session,
            player: session.player,
            zone: session.zone,
            body: Body {
                ty: message.ty,
                lane: message.lane,
                transport: message.transport,
                payload,
            },
        };
        match self.sink.push(to_shard) {
            Ok(()) => self.counters.messages_to_shard += 1,
            Err(ShardFull) => self.counters.ring_full[lane] += 1,
        }
        Ok(())
    }
}
