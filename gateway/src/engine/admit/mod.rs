//! Admission: which client messages and which handshakes the gateway lets in
//! (`docs/protocol.md` §8; issue 4).
//!
//! # Why
//!
//! A shard spends a fixed budget per tick, and one client flooding one lane
//! must not spend it for every other client, nor for that client's own
//! critical lane. A flood of new connections must not spend the gateway's
//! handshake crypto. So admission limits messages per connection and lane,
//! and handshakes per source address, before anything reaches a ring or a
//! TLS state machine.
//!
//! This is policy that the engine consults, like s2n-quic's endpoint limits
//! hook: the engine asks, admission answers, and the engine carries out the
//! answer. Nothing here reads a clock or touches a socket. Every call takes
//! the engine's `now`, so tests drive it on a virtual clock.
//!
//! # How a message is decided
//!
//! [`GovernorAdmission`] is the engine's [`Admission`] hook. For every game
//! message the engine passes the connection's slot and the lane its lane
//! table classified the message into, and [`AdmissionTable::admit`]:
//!
//! 1. looks at the slot. A free or out-of-range slot drops the message
//!    ([`AdmitTotals::dropped_not_open`], an engine bug if ever non-zero); a
//!    connection already closed for abuse drops it
//!    ([`AdmitTotals::dropped_closing`]);
//! 2. takes one GCRA step in the bucket of that connection and lane
//!    (`[lanes.limits.<lane>]`). A conforming message is admitted;
//! 3. otherwise drops the message and counts the drop in the connection's
//!    abuse window (`[admission]`). The drop that takes the window's
//!    estimate above `abuse_drops_max` closes the connection with `ABUSE`
//!    instead.
//!
//! Input the engine drops itself ([`Offence`]: empty, control-type or
//! oversize datagrams, ended streams) counts in the same window
//! ([`AdmissionTable::offence`]), so a flood of it closes with `ABUSE` too.
//!
//! A new connection's first packet, when its address is not yet validated,
//! is decided by [`HandshakeLimiter::check`] on its source address: one
//! GCRA bucket per address (or IPv6 /64) in a fixed-size table, so spoofed
//! addresses cannot make it grow. Over the limit it gets a Retry
//! ([`HandshakeDecision::Retry`]), and a validated address (one that
//! echoed a Retry token) is never charged, so forged Initials cannot spend
//! the budget of the players behind an address.
//!
//! # Parts
//!
//! - `policy`: the [`Admission`] trait the engine consults, its
//!   [`AdmitDecision`], the connection slot it is asked about, and
//!   [`AdmitAll`] for tests and benchmarks of the unlimited path.
//! - `conn`: [`AdmissionTable`], the per connection × lane buckets and the
//!   abuse window, allocated once for `conn_slots_max` connections and
//!   indexed by the engine's connection slot. It neither allocates nor
//!   hashes per message.
//! - `handshake`: [`HandshakeLimiter`], the per source address buckets.
//! - `per_ip`: [`IpConnections`], connections open per source address
//!   (`gateway.connections_per_ip_max`).
//! - `retry`: [`RetryPolicy`], when the engine answers new connections with
//!   a QUIC Retry (under a flood of handshakes from unvalidated addresses).
//! - `ports`: [`BlockedPorts`], the reflection-prone source ports whose
//!   datagrams the engine drops before QUIC reads them.
//! - `ban`: [`BanList`], the addresses and players banned after an `ABUSE`
//!   close (`admission.abuse_ban_ms`), which the engine itself consults
//!   before the hook: on a new connection's first packet and at `Hello`.
//! - `gcra`: governor's GCRA arithmetic over `TatTable`, a preallocated array
//!   of theoretical arrival times (TATs) indexed by slot, instead of
//!   governor's hash-map state stores. The owner keeps a handle to the array
//!   so it can reset a slot and see whether one is idle.
//! - `clock`: the time governor sees. Governor reads a [`governor::clock::Clock`];
//!   ours, `SetClock`, holds a value that the limiter sets to the engine's
//!   `now` just before each check.

mod ban;
mod clock;
mod conn;
mod crypto_budget;
mod gcra;
mod handshake;
mod per_ip;
mod policy;
mod ports;
mod retry;

use std::net::SocketAddr;
use std::time::Instant;

use lanegate_common::lanes::Lane;

pub use self::crypto_budget::CryptoBudget;
pub use self::per_ip::IpConnections;
pub use self::policy::{Admission, AdmitAll, AdmitDecision, ConnSlot, HandshakeDecision, Offence};
pub use self::ports::BlockedPorts;
pub use self::retry::{RETRY_HOLD, RetryPolicy};
pub use ban::{BanCounters, BanKey, BanList};
pub use conn::{AdmissionTable, AdmitTotals, ConnCounters};
pub use handshake::{HANDSHAKE_SET_WAYS, HandshakeCounters, HandshakeLimiter};

/// The gateway's admission policy: per connection × lane GCRA with an abuse
/// window ([`AdmissionTable`]) and per source IP handshake limits
/// ([`HandshakeLimiter`]), behind the engine's [`Admission`] hook.
#[derive(Debug)]
pub struct GovernorAdmission {
    /// Message limits per connection slot.
    pub table: AdmissionTable,
    /// Handshake limits per source address.
    pub handshakes: HandshakeLimiter,
}

impl Admission for GovernorAdmission {
    fn admit_handshake(&mut self, now: Instant, remote: SocketAddr) -> bool {
        self.handshakes.check(remote.ip(), now)
    }

    /// The per-address budget is spent only by addresses not yet validated,
    /// and one over it gets a Retry, not silence: a flood of junk Initials
    /// forging an address (a carrier NAT's) cannot lock out the players
    /// behind it, who prove their address and come in one round trip later.
    fn handshake(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        validated: bool,
    ) -> HandshakeDecision {
        if validated || self.handshakes.check(remote.ip(), now) {
            HandshakeDecision::Accept
        } else {
            HandshakeDecision::Retry
        }
    }

    fn admit(&mut self, now: Instant, conn: ConnSlot, lane: Lane) -> AdmitDecision {
        self.table.admit(conn.0 as usize, lane, now)
    }

    fn offence(&mut self, now: Instant, conn: ConnSlot, _offence: Offence) -> AdmitDecision {
        self.table.offence(conn.0 as usize, now)
    }

    fn on_open(&mut self, now: Instant, conn: ConnSlot) {
        // A slot beyond the table cannot be opened; its messages then count
        // as `dropped_not_open`, which the engine's sizing rules out.
        let _ = self.table.open(conn.0 as usize, now);
    }

    fn on_close(&mut self, conn: ConnSlot) {
        let _ = self.table.close(conn.0 as usize);
    }
}

/// Why an admission limiter could not be built or a slot could not be opened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdmissionError {
    /// A limit that must be positive is zero. `field` names it as the
    /// configuration file does.
    #[error("{field} must be at least 1")]
    Zero {
        /// The configuration field (or constructor argument) at fault.
        field: &'static str,
    },
    /// The engine passed a connection slot beyond the table. This is an
    /// engine bug, never a network-caused error.
    #[error("connection slot {slot} is out of range: conn_slots_max is {conn_slots_max}")]
    SlotOutOfRange {
        /// The slot asked for.
        slot: usize,
        /// The table's size.
        conn_slots_max: usize,
    },
}
