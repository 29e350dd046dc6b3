//! The interface the engine consults: mechanism apart from policy
//! (s2n-quic's `endpoint/limits.rs`). The engine classifies, routes and
//! counts; an [`Admission`] decides whether a handshake may start and
//! whether a game message passes. The gateway's own policy, GCRA per
//! connection × lane and a per-source-IP handshake limit, is
//! [`GovernorAdmission`](super::GovernorAdmission).

use std::net::SocketAddr;
use std::time::Instant;

use lanegate_common::lanes::Lane;
use lanegate_common::wire::CloseCode;

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

/// What admission decides for a new connection's first packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeDecision {
    /// Accept it: the handshake starts.
    Accept,
    /// Answer with a stateless QUIC Retry (only for an address not yet
    /// validated): the client comes back with a token that proves it.
    Retry,
    /// Drop it silently: no state, no reply.
    Ignore,
}

/// Input from an established session that no well-behaved client sends,
/// and that the engine drops: each counts toward the connection's abuse
/// rule like a message over its lane's limit (`docs/protocol.md` §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offence {
    /// A datagram too short to hold a type (empty, or one byte).
    MalformedDatagram,
    /// A datagram with a control-range type.
    ControlDatagram,
    /// A datagram over `gateway.datagram_message_bytes_max`.
    OversizeDatagram,
    /// A client uni stream ended (finished or reset): streams are meant to
    /// live as long as the session, so opening and closing them is churn.
    StreamEnded,
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
    /// What to do with a new connection from `remote` whose address is
    /// `validated` (it echoed a Retry token) or not. By default a validated
    /// address is accepted and any other is asked
    /// [`Admission::admit_handshake`], `false` meaning
    /// [`HandshakeDecision::Ignore`].
    fn handshake(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        validated: bool,
    ) -> HandshakeDecision {
        if validated || self.admit_handshake(now, remote) {
            HandshakeDecision::Accept
        } else {
            HandshakeDecision::Ignore
        }
    }
    /// Whether the message of `lane` from `conn` may pass, at `now`.
    fn admit(&mut self, now: Instant, conn: ConnSlot, lane: Lane) -> AdmitDecision;
    /// `conn` sent input the engine dropped as an [`Offence`]. `Close`
    /// closes the connection; by default offences are only counted by the
    /// engine.
    fn offence(&mut self, now: Instant, conn: ConnSlot, offence: Offence) -> AdmitDecision {
        let _ = (now, conn, offence);
        AdmitDecision::Drop
    }
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
