//! The sans-IO engine of one gateway core: one `quinn_proto::Endpoint`, a
//! fixed table of connections and their sessions (`docs/protocol.md` §4).
//! It never reads a clock or touches a socket: the core loop hands it
//! inputs with `now` (`handle_*`) and takes its outputs (`poll_*`), named
//! as quinn names them.
//!
//! The shard links are borrowed, not owned: every input that may send to a
//! shard takes the core's [`GatewayPort`], so a game message goes from the
//! decrypted packet into the ring's pool in one copy and is pushed once,
//! and replies are read by reference ([`Engine::poll_shards`], which lends
//! each to [`Engine::handle_from_shard`]). Tests and production use the
//! same path. Where each step of a message happens, and
//! how the core's loop drives these calls, is in `docs/ARCHITECTURE.md`
//! ("The path of a message", "The running gateway"); the files here are:
//!
//! - `params.rs`, `counters.rs`: what an engine is built from and counts;
//! - `connection.rs`: what one connection's QUIC events mean for its
//!   session, and how a connection ends;
//! - `router.rs`: a session's output, through [`Admission`] to the links;
//! - `peer_params.rs`: the client's `max_datagram_frame_size`, which the
//!   protocol requires to be at least 1200;
//! - `outbound.rs`: shards' messages to clients (datagrams, control stream);
//! - `stall.rs`: how long each stream has been inside one frame, so a
//!   frame announced and trickled closes with `ABUSE`;
//! - `stateless.rs`: stateless replies (version negotiation, reset, Retry,
//!   refusal) told apart by their header, so each kind is counted;
//! - `failover.rs`: a failed-over shard's players re-joined elsewhere with
//!   `ZONE_RESET`, or closed with `SHARD_UNAVAILABLE`;
//! - `replace.rs`: one session per player, the older closed with
//!   `SESSION_REPLACED`;
//! - `session/`, `timers.rs`, `cid.rs`, `tls.rs`, `admit/`: the session
//!   state machine, the timer heap, connection ids that name the core, the
//!   TLS identity, and admission (the [`Admission`] interface and the
//!   gateway's policy behind it).
//!
//! Steady state allocates nothing in this module per packet: the receive and
//! datagram-send arenas are `BytesMut`s whose memory is reclaimed once quinn
//! releases it, sessions and their frame readers live in the connection
//! table and are reused with their slot. (quinn-proto allocates internally.)

pub mod admit;
pub mod cid;
mod connection;
mod counters;
mod egress;
mod failover;
mod outbound;
mod params;
pub mod peer_params;
mod replace;
mod router;
mod rx_arenas;
pub mod session;
mod stall;
pub mod stateless;
pub mod timers;
pub mod tls;

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use lanegate_common::ids::{CoreId, PlayerId, SessionId, ZoneId};
use lanegate_common::wire::CloseCode;
use lanegate_shard::port::GatewayPort;
use quinn_proto::{DatagramEvent, Endpoint, EndpointConfig, StreamId, Transmit, VarInt};

pub use self::admit::{Admission, AdmitAll, AdmitDecision, ConnSlot, HandshakeDecision, Offence};
use self::admit::{BanList, BlockedPorts, CryptoBudget, IpConnections, RetryPolicy};
use self::cid::CoreCidGenerator;
pub use self::counters::Counters;
pub use self::egress::SendShares;
use self::egress::{LaneStreams, StagedDatagrams};
pub use self::params::{EngineError, EngineParams};
use self::rx_arenas::{RxArenas, shared_arena};
use self::session::{CloseCause, Session};
use self::stall::FrameStall;
use self::timers::TimerQueue;

/// Connection slots beyond `connections_max`, per core: a connection that
/// arrives when the core is full is accepted into one of these only to be
/// closed with `SERVER_FULL` (an application code needs the handshake done).
/// When these are taken too, new connections are refused at QUIC level.
pub const OVERFLOW_SLOTS: usize = 16;

/// Endpoint-level responses (version negotiation, stateless reset, refusal)
/// queued for sending; more are dropped (counted): they are best-effort.
pub const RESPONSES_MAX: usize = 64;

/// Most connection slots per core: the slot index is 24 bits of the session id.
pub const SLOTS_MAX: usize = 1 << 24;

/// One gateway core's QUIC endpoint, connections and sessions.
pub struct Engine<A: Admission> {
    endpoint: Endpoint,
    params: EngineParams,
    slots: Vec<Slot>,
    /// Per slot, the earliest of its connection's QUIC timer and its `Hello`
    /// deadline, as of the last time the slot was polled.
    timers: TimerQueue,
    /// Connections whose transmits must be polled, each at most once.
    dirty: VecDeque<usize>,
    responses: VecDeque<(Transmit, Vec<u8>)>,
    spare_buffers: Vec<Vec<u8>>,
    /// Receive arenas: each packet is copied in and split off (quinn takes
    /// ownership); memory is reclaimed when quinn drops the packet
    /// (`rx_arenas.rs`).
    rx: RxArenas,
    /// Datagram-send arena, same scheme.
    tx: BytesMut,
    /// Arenas made at start to swap in when `tx` is still held by replies of
    /// this loop turn that quinn has not yet written out: without them, a
    /// busy turn would allocate a fresh 64 KiB arena (found by
    /// `tests/engine_alloc.rs`).
    tx_spares: [BytesMut; TX_SPARES],
    /// Lower lanes' datagrams of this turn, sent after `critical`'s.
    staged: StagedDatagrams,
    /// When the datagram being handled was received
    /// ([`Engine::handle_datagram_at`]); `None` outside one.
    received_at: Option<Instant>,
    /// One encoded control message, and its frame (sent to several sessions).
    scratch: Vec<u8>,
    scratch_frame: Vec<u8>,
    /// Sessions the games moved, read during [`Engine::poll_shards`] and
    /// re-joined on their new zone's shard at its end (slot, session,
    /// player, new zone). At most one per slot per poll.
    zone_changes: Vec<(usize, SessionId, PlayerId, ZoneId)>,
    /// Sessions a shard said were replaced by a newer session of their
    /// player (`replace.rs`), read during [`Engine::poll_shards`] and closed
    /// at its end. At most one per slot per poll.
    replaced: Vec<SessionId>,
    draining: bool,
    /// Wall-clock at `unix_base.0`, to turn `Instant`s into Unix seconds for
    /// ticket lifetimes.
    unix_base: (Instant, u64),
    admission: A,
    /// Addresses and players banned after an `ABUSE` close.
    bans: BanList,
    /// Source ports whose datagrams are dropped unread.
    blocked_ports: BlockedPorts,
    /// When new connections get a Retry.
    retry: RetryPolicy,
    /// Handshakes this core may start (`admit/crypto_budget.rs`).
    crypto: CryptoBudget,
    /// Initials this core lets into QUIC (the same file).
    initials: CryptoBudget,
    /// Connections open per source address.
    ip_conns: IpConnections,
    /// Connections whose address is not validated yet (`Slot::unvalidated`).
    unvalidated: usize,
    counters: Counters,
    /// The slots a failed-over shard served (`failover.rs`): one per slot,
    /// allocated here.
    failover_scratch: Vec<usize>,
}

struct Slot {
    conn: Option<quinn_proto::Connection>,
    /// Allocated on the slot's first connection, reused after.
    session: Option<Session>,
    id: SessionId,
    generation: u32,
    control: Option<StreamId>,
    /// Control-stream bytes QUIC has not taken yet (flow control).
    pending: Vec<u8>,
    /// The `high`, `normal` and `bulk` streams and their backlogs.
    lanes: LaneStreams,
    /// Close with this code once the reply written before it is sent.
    close_after_flush: Option<CloseCode>,
    /// Accepted beyond `connections_max`: closed with `SERVER_FULL`.
    overflow: bool,
    /// The client's address, counted in `Engine::ip_conns` while the
    /// connection is in the table.
    remote_ip: Option<IpAddr>,
    /// Accepted without a validated address, until its handshake completes
    /// (counted in `Engine::unvalidated`).
    unvalidated: bool,
    /// How long each stream has been inside one frame.
    stall: FrameStall,
    /// When the QUIC handshake must have finished
    /// (`gateway.handshake_timeout_ms`), until it has.
    handshake_deadline: Option<Instant>,
    /// Stream bytes were handed to QUIC since the last drained poll: a close
    /// now waits for them to go out first.
    unsent: bool,
    queued: bool,
}

/// Size of each receive and send arena.
const ARENA_BYTES: usize = 64 * 1024;
/// Spare send arenas: sized so one loop turn's replies (at most a few
/// hundred kilobytes) never exhaust them.
const TX_SPARES: usize = 4;

impl<A: Admission> Engine<A> {
    /// An engine for `params.core`, serving `server` (from
    /// [`tls::quic_server_config`]). `now` and `unix_now_s` are the same
    /// moment on the monotonic and wall clocks.
    pub fn new(
        params: EngineParams,
        server: Arc<quinn_proto::ServerConfig>,
        admission: A,
        now: Instant,
        unix_now_s: u64,
    ) -> Result<Self, EngineError> {
        let core = params.core;
        let seed = params.seed;
        let (abuse_ban, bans_max) = (params.abuse_ban, params.bans_max);
        let blocked_ports = BlockedPorts::new(&params.blocked_source_ports);
        let retry_above = params.retry_above_handshakes_per_s;
        let (crypto_rate, crypto_burst) = params.handshakes_per_core_per_s;
        let crypto = CryptoBudget::new(crypto_rate, crypto_burst, now)
            .map_err(|e| EngineError::Config(e.to_string()))?;
        let (initial_rate, initial_burst) = params.initials_per_core_per_s;
        let initials = CryptoBudget::for_fields(
            initial_rate,
            initial_burst,
            (
                "gateway.initials_per_core_per_s",
                "gateway.initial_core_burst",
            ),
            now,
        )
        .map_err(|e| EngineError::Config(e.to_string()))?;
        let per_ip_max = params.connections_per_ip_max;
        if CoreCidGenerator::seeded(core, 0).is_none() {
            return Err(EngineError::CoreIndex(core));
        }
        let slot_count = params.connections_max.saturating_add(OVERFLOW_SLOTS);
        if slot_count > SLOTS_MAX {
            return Err(EngineError::Config(format!(
                "gateway.connections_max per core must be below {}",
                SLOTS_MAX - OVERFLOW_SLOTS
            )));
        }
        let mut endpoint_config = EndpointConfig::default();
        endpoint_config.cid_generator(move || {
            let generator = match seed {
                Some(s) => CoreCidGenerator::seeded(core, s),
                None => CoreCidGenerator::new(core),
            };
            Box::new(generator.expect("core index checked in Engine::new"))
        });
        let rng_seed = seed.map(|s| {
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(&s.to_le_bytes());
            bytes
        });
        let endpoint = Endpoint::new(Arc::new(endpoint_config), Some(server), true, rng_seed);
        let slots = (0..slot_count)
            .map(|_| Slot {
                conn: None,
                session: None,
                id: SessionId(0),
                generation: 0,
                control: None,
                pending: Vec::new(),
                lanes: LaneStreams::default(),
                close_after_flush: None,
                overflow: false,
                remote_ip: None,
                unvalidated: false,
                stall: FrameStall::default(),
                handshake_deadline: None,
                unsent: false,
                queued: false,
            })
            .collect();
        Ok(Self {
            endpoint,
            params,
            slots,
            timers: TimerQueue::new(slot_count),
            dirty: VecDeque::with_capacity(slot_count),
            responses: VecDeque::with_capacity(RESPONSES_MAX),
            spare_buffers: Vec::with_capacity(RESPONSES_MAX + 1),
            rx: RxArenas::new(),
            tx: BytesMut::with_capacity(ARENA_BYTES),
            tx_spares: std::array::from_fn(|_| shared_arena(ARENA_BYTES)),
            staged: StagedDatagrams::with_capacity(slot_count),
            received_at: None,
            scratch: Vec::with_capacity(64),
            scratch_frame: Vec::with_capacity(64),
            zone_changes: Vec::with_capacity(slot_count),
            replaced: Vec::with_capacity(slot_count),
            draining: false,
            unix_base: (now, unix_now_s),
            admission,
            bans: BanList::new(abuse_ban, bans_max),
            blocked_ports,
            retry: RetryPolicy::new(retry_above, now),
            crypto,
            initials,
            ip_conns: IpConnections::new(per_ip_max, slot_count),
            unvalidated: 0,
            counters: Counters::default(),
            failover_scratch: Vec::with_capacity(slot_count),
        })
    }

    /// Handles one UDP datagram received from `remote` (on local address
    /// `local_ip`, if the IO layer knows it) with ECN marks `ecn`, in the
    /// turn at `now`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local_ip: Option<IpAddr>,
        ecn: Option<quinn_proto::EcnCodepoint>,
        data: &[u8],
        links: &mut GatewayPort,
    ) {
        self.handle_datagram_at(now, now, remote, local_ip, ecn, data, links);
    }

    /// [`Engine::handle_datagram`] of a datagram the kernel received at
    /// `received_at` (at or before `now`): the game messages it carries are
    /// timed from there to their shard's ring. QUIC itself runs on `now`,
    /// the loop's clock, which never goes back.
    #[allow(clippy::too_many_arguments)]
    pub fn handle_datagram_at(
        &mut self,
        now: Instant,
        received_at: Instant,
        remote: SocketAddr,
        local_ip: Option<IpAddr>,
        ecn: Option<quinn_proto::EcnCodepoint>,
        data: &[u8],
        links: &mut GatewayPort,
    ) {
        self.received_at = Some(received_at);
        self.handle_one(now, remote, local_ip, ecn, data, links);
        self.received_at = None;
    }

    fn handle_one(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local_ip: Option<IpAddr>,
        ecn: Option<quinn_proto::EcnCodepoint>,
        data: &[u8],
        links: &mut GatewayPort,
    ) {
        self.counters.udp_in += 1;
        // Reflection-prone source ports: dropped before QUIC can answer
        // (`admit/ports.rs`).
        if self.blocked_ports.contains(remote.port()) {
            self.counters.blocked_source_port += 1;
            return;
        }
        // A long header of type Initial (RFC 9000 §17.2.2: `11 00 ....`),
        // past the core's Initial budget: dropped on its first byte, before
        // QUIC spends header protection or a Retry on it.
        if data.first().is_some_and(|&b| b & 0xf0 == 0xc0) && !self.initials.take(now) {
            self.counters.initials_over_budget += 1;
            return;
        }
        let packet = self.rx.packet(data);
        self.counters.rx_arena_copies = self.rx.copies();
        let mut buf = self.spare_buffers.pop().unwrap_or_default();
        buf.clear();
        match self
            .endpoint
            .handle(now, remote, local_ip, ecn, packet, &mut buf)
        {
            Some(DatagramEvent::NewConnection(incoming)) => {
                self.on_incoming(now, incoming, &mut buf, links);
            }
            Some(DatagramEvent::ConnectionEvent(ch, event)) => {
                if let Some(conn) = self.slots.get_mut(ch.0).and_then(|s| s.conn.as_mut()) {
                    conn.handle_event(event);
                    self.process(ch.0, now, links);
                }
            }
            Some(DatagramEvent::Response(transmit)) => {
                self.queue_response(transmit, buf);
                return;
            }
            None => self.counters.packets_undecodable += 1,
        }
        self.recycle_buffer(buf);
    }

    /// Keeps a reply buffer for the next stateless reply. One handed on to
    /// `responses` leaves an empty `Vec` behind, which is not kept (it
    /// would pile up, one per reply under a Retry flood), and the spares
    /// never outnumber the buffers that can be in flight.
    fn recycle_buffer(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() > 0 && self.spare_buffers.len() <= RESPONSES_MAX {
            buf.clear();
            self.spare_buffers.push(buf);
        }
    }

    /// Runs every timer due at `now`: QUIC's (loss detection, idle, close)
    /// and the sessions' `Hello` deadlines.
    pub fn handle_timeouts(&mut self, now: Instant, links: &mut GatewayPort) {
        self.refresh_dirty_timers();
        // A connection whose timer is still due after handling it is seen
        // again next turn, not in a loop here: one pass per slot at most.
        for _ in 0..self.slots.len() {
            let Some(idx) = self.timers.pop_due(now) else {
                break;
            };
            let slot = &mut self.slots[idx];
            let Some(conn) = slot.conn.as_mut() else {
                continue;
            };
            if conn.poll_timeout().is_some_and(|t| t <= now) {
                conn.handle_timeout(now);
            }
            // The handshake took too long: free the slot for someone who
            // finishes theirs (a flood of Initials that never do).
            if slot.handshake_deadline.is_some_and(|t| t <= now) {
                slot.handshake_deadline = None;
                if conn.is_handshaking() {
                    self.counters.handshake_timeouts += 1;
                    conn.close(now, close_code(CloseCode::NoError), Bytes::new());
                }
            }
            if let Some(session) = slot.session.as_mut()
                && let Err(close) = session.on_timeout(now)
            {
                self.finish_close(idx, now, close, links);
            }
            // A frame trickled past `gateway.frame_stall_ms` (stall.rs).
            let slot = &mut self.slots[idx];
            if slot.stall.expired(now, self.params.frame_stall)
                && let Some(session) = slot.session.as_mut()
            {
                slot.stall.clear();
                if let Some(close) = session.close(CloseCode::Abuse, CloseCause::FrameStall) {
                    self.finish_close(idx, now, close, links);
                }
            }
            self.process(idx, now, links);
            self.refresh_timer(idx);
        }
    }

    /// The earliest moment [`Engine::handle_timeouts`] has work, if any.
    ///
    /// The top of a heap of each connection's cached earliest timer
    /// ([`timers::TimerQueue`]), refreshed for the connections touched since.
    pub fn next_timeout(&mut self) -> Option<Instant> {
        self.refresh_dirty_timers();
        self.timers.earliest()
    }

    /// The next UDP datagram to send (at most `max_datagrams` segments of
    /// `transmit.segment_size` for GSO), its bytes written to `buf` (cleared
    /// first). `None` when nothing is left to send now.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        max_datagrams: usize,
        buf: &mut Vec<u8>,
    ) -> Option<Transmit> {
        buf.clear();
        if let Some((transmit, bytes)) = self.responses.pop_front() {
            buf.extend_from_slice(&bytes);
            self.recycle_buffer(bytes);
            return Some(transmit);
        }
        while let Some(&idx) = self.dirty.front() {
            let slot = &mut self.slots[idx];
            if let Some(conn) = slot.conn.as_mut() {
                if let Some(transmit) = conn.poll_transmit(now, max_datagrams.max(1), buf) {
                    return Some(transmit);
                }
                if let Some(code) = slot.close_after_flush.take() {
                    conn.close(now, close_code(code), Bytes::new());
                    continue;
                }
            }
            slot.queued = false;
            slot.unsent = false;
            self.dirty.pop_front();
            self.refresh_timer(idx);
        }
        None
    }

    /// Starts shutting down: new connections are refused, and every
    /// connection is closed with `SERVER_DRAINING` (its session leaves).
    pub fn begin_drain(&mut self, now: Instant, links: &mut GatewayPort) {
        self.draining = true;
        for idx in 0..self.slots.len() {
            let slot = &mut self.slots[idx];
            let close = match (slot.conn.as_ref(), slot.session.as_mut()) {
                (Some(_), Some(s)) => s.close(CloseCode::ServerDraining, CloseCause::Engine),
                _ => None,
            };
            if let Some(close) = close {
                self.finish_close(idx, now, close, links);
            }
        }
    }

    /// Whether [`Engine::begin_drain`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// Connections still in the table (the IO layer may stop at zero).
    pub fn connections_open(&self) -> u64 {
        self.counters.connections_open
    }

    /// What the engine has counted.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The bans after abuse (`admit/ban.rs`).
    pub fn bans(&self) -> &BanList {
        &self.bans
    }

    /// The admission hook.
    pub fn admission_mut(&mut self) -> &mut A {
        &mut self.admission
    }

    /// The parameters the engine runs with.
    pub fn params(&self) -> &EngineParams {
        &self.params
    }

    /// Recomputes the cached timer of every connection touched since it was
    /// last polled (their QUIC timers may have moved).
    pub(super) fn refresh_dirty_timers(&mut self) {
        for i in 0..self.dirty.len() {
            let idx = self.dirty[i];
            self.refresh_timer(idx);
        }
    }

    pub(super) fn refresh_timer(&mut self, idx: usize) {
        let slot = &mut self.slots[idx];
        let deadline = match slot.conn.as_mut() {
            Some(conn) => {
                let hello = slot.session.as_ref().and_then(Session::deadline);
                let stall = slot.stall.deadline(self.params.frame_stall);
                [conn.poll_timeout(), hello, stall, slot.handshake_deadline]
                    .into_iter()
                    .flatten()
                    .min()
            }
            None => None,
        };
        self.timers.set(idx, deadline);
    }

    pub(super) fn mark_dirty(&mut self, idx: usize) {
        let slot = &mut self.slots[idx];
        if !slot.queued {
            slot.queued = true;
            self.dirty.push_back(idx);
        }
    }

    pub(super) fn queue_response(&mut self, transmit: Transmit, buf: Vec<u8>) {
        if self.responses.len() < RESPONSES_MAX {
            if let Some(kind) = stateless::StatelessReply::of(&buf[..transmit.size.min(buf.len())])
            {
                self.counters.stateless_replies.count(kind);
            }
            self.responses.push_back((transmit, buf));
        } else {
            self.counters.responses_dropped += 1;
            self.recycle_buffer(buf);
        }
    }

    /// The slot of a live, established session.
    pub(super) fn slot_of(&self, session: SessionId) -> Option<usize> {
        let idx = usize::try_from(session.0 & 0x00ff_ffff).ok()?;
        let slot = self.slots.get(idx)?;
        let live = slot.conn.is_some() && slot.id == session;
        let established = slot.session.as_ref().and_then(Session::established);
        (live && established.is_some()).then_some(idx)
    }

    pub(super) fn zone_of(&self, idx: usize) -> Option<ZoneId> {
        let slot = &self.slots[idx];
        slot.conn.as_ref()?;
        slot.session
            .as_ref()
            .and_then(Session::established)
            .map(|e| e.zone)
    }

    pub(super) fn unix_now_s(&self, now: Instant) -> u64 {
        let (base, unix) = self.unix_base;
        unix.saturating_add(now.saturating_duration_since(base).as_secs())
    }
}

/// Session ids: core (16 bits) ‖ slot generation (24 bits) ‖ slot index (24
/// bits), so a shard's reply finds its slot in one step and a stale id (slot
/// reused) is recognised.
fn session_id(core: CoreId, generation: u32, idx: usize) -> SessionId {
    SessionId(
        (u64::from(core.0) << 48)
            | (u64::from(generation & 0x00ff_ffff) << 24)
            | (idx as u64 & 0x00ff_ffff),
    )
}

fn conn_slot(idx: usize) -> ConnSlot {
    // Slot counts are bounded by `SLOTS_MAX` (2^24) in `Engine::new`.
    ConnSlot(u32::try_from(idx).unwrap_or(u32::MAX))
}

fn close_code(code: CloseCode) -> VarInt {
    VarInt::from_u32(u32::from(code.code()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn session_ids_round_trip_to_their_slot() {
        let id = session_id(CoreId(3), 0x12_3456, 42);
        assert_eq!(id.0 >> 48, 3);
        assert_eq!(id.0 & 0x00ff_ffff, 42);
        assert_eq!((id.0 >> 24) & 0x00ff_ffff, 0x12_3456);
    }
}
