//! The sans-IO engine of one gateway core.
//!
//! An [`Engine`] owns one `quinn_proto::Endpoint` and a fixed table of
//! connections. The IO layer hands it UDP datagrams
//! ([`Engine::handle_datagram`]), timer expiries ([`Engine::handle_timeouts`])
//! and shard replies ([`Engine::handle_from_shard`]), and takes from it UDP
//! datagrams to send ([`Engine::poll_transmit`]) and when to wake up
//! ([`Engine::next_timeout`]). It never reads a clock or touches a socket.
//!
//! Per connection, a [`session::Session`] runs the protocol of
//! `docs/protocol.md` §4. Game messages from established sessions pass the
//! [`Admission`] hook (a policy: the governor-based one lives in
//! `engine::admit`) and go to the [`ShardSink`] as `ToShard::Message`, after
//! the session's `ToShard::Join` and before its `ToShard::Leave`.
//!
//! ```text
//! handle_datagram ─▶ Endpoint ─▶ Connection ─▶ Session ─▶ Admission ─▶ ShardSink
//! poll_transmit   ◀─ Connection ◀── control stream / datagrams ◀── handle_from_shard
//! ```
//!
//! # Driving it (the IO layer's loop, one per core)
//!
//! 1. For each received UDP datagram: [`Engine::handle_datagram`].
//! 2. For each message from the shards' return rings:
//!    [`Engine::handle_from_shard`] (give back the returned `PoolBuf`), or
//!    [`Engine::deliver`] when the ring reader lends entries by reference
//!    and recycles their buffers itself (the shard crate's `GatewayPort`).
//! 3. When the clock passes [`Engine::next_timeout`]: [`Engine::handle_timeouts`].
//! 4. [`Engine::poll_transmit`] until `None`, sending each datagram.
//! 5. Sleep until the next packet, ring entry or [`Engine::next_timeout`].
//!
//! On shutdown: [`Engine::begin_drain`], then keep looping until
//! [`Engine::connections_open`] is 0 or `gateway.drain_timeout_ms` passes.
//!
//! Steady state allocates nothing in this module per packet: the receive and
//! datagram-send arenas are `BytesMut`s whose memory is reclaimed once quinn
//! releases it, sessions and their frame readers live in the connection
//! table and are reused with their slot. (quinn-proto allocates internally.)

pub mod admit;
pub mod cid;
pub mod hook;
pub mod session;
pub mod timers;
pub mod tls;

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use lanegate_common::config::Config;
use lanegate_common::frame::{put_frame, varint_len};
use lanegate_common::ids::{CoreId, SessionId, ZoneId};
use lanegate_common::lanes::{Lane, LaneTable};
use lanegate_common::link::{PoolBuf, ToGateway, ToShard};
use lanegate_common::ticket::{KeySet, TicketError};
use lanegate_common::wire::{CloseCode, Message, Transport, ZoneReset};
use quinn_proto::{
    ConnectionHandle, DatagramEvent, Dir, EcnCodepoint, Endpoint, EndpointConfig, Event, ReadError,
    StreamEvent, StreamId, Transmit, VarInt,
};

use self::cid::CoreCidGenerator;
use self::hook::Router;
pub use self::hook::{Admission, AdmitAll, AdmitDecision, ConnSlot, ShardFull, ShardSink};
use self::session::{
    Close, CloseCause, DatagramOutcome, Session, SessionCtx, StreamRef, WelcomeParams,
};
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

/// Why an engine could not be built. Setup only: nothing at run time
/// returns an error (peer input is counted, dropped or closed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A PEM file could not be read or parsed.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// Only one of `gateway.cert_file` and `gateway.key_file` is set.
    #[error("gateway.cert_file and gateway.key_file must be set together")]
    CertKeyPair,
    /// The self-signed certificate could not be made.
    #[error("cannot make a self-signed certificate: {0}")]
    SelfSigned(String),
    /// rustls refused the configuration (bad key, mismatched chain...).
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// A configuration value the engine cannot use.
    #[error("configuration: {0}")]
    Config(String),
    /// A core index connection ids cannot carry.
    #[error("gateway core {0} cannot be named in a connection id (at most 256 cores)")]
    CoreIndex(CoreId),
}

/// What one engine needs, derived from [`Config`] once at start.
#[derive(Clone, Debug)]
pub struct EngineParams {
    /// This core.
    pub core: CoreId,
    /// Sessions this core holds at most (its share of `gateway.connections_max`).
    pub connections_max: usize,
    /// From handshake end to `Hello` (`gateway.hello_timeout_ms`).
    pub hello_timeout: Duration,
    /// Ticket clock-skew tolerance (`tickets.clock_skew_s`).
    pub clock_skew_s: u64,
    /// What `Welcome` announces.
    pub welcome: WelcomeParams,
    /// Type → lane.
    pub lanes: LaneTable,
    /// Ticket keys.
    pub keys: KeySet,
    /// Control-stream bytes buffered per connection beyond what QUIC takes
    /// (flow control); more outbound stream messages are dropped (counted).
    pub stream_out_bytes_max: usize,
    /// Seed for the endpoint's and the connection ids' randomness (tests);
    /// `None` seeds from the OS.
    pub seed: Option<u64>,
}

impl EngineParams {
    /// Parameters of core `core` of `cores`, from a validated `config`.
    /// `keys` are the loaded ticket keys (`KeySet::dev()` when none are set).
    pub fn from_config(
        config: &Config,
        core: CoreId,
        cores: usize,
        keys: KeySet,
    ) -> Result<Self, EngineError> {
        let gw = &config.gateway;
        let cores = cores.max(1);
        let connections_max = usize::try_from(gw.connections_max)
            .map_err(|_| EngineError::Config("gateway.connections_max is too large".to_owned()))?
            .div_ceil(cores);
        let lanes = config
            .lanes
            .lane_table()
            .map_err(|e| EngineError::Config(e.to_string()))?;
        let welcome = WelcomeParams {
            tick_rate_hz: u16::try_from(config.shards.tick_rate_hz).map_err(|_| {
                EngineError::Config("shards.tick_rate_hz does not fit Welcome (u16)".to_owned())
            })?,
            datagram_message_bytes_max: u16::try_from(gw.datagram_message_bytes_max).map_err(
                |_| EngineError::Config("gateway.datagram_message_bytes_max is too large".into()),
            )?,
            stream_message_bytes_max: u32::try_from(gw.stream_message_bytes_max).map_err(|_| {
                EngineError::Config("gateway.stream_message_bytes_max is too large".into())
            })?,
            lane_limits: Lane::ALL.map(|lane| config.lanes.limits.get(lane).into()),
        };
        Ok(Self {
            core,
            connections_max,
            hello_timeout: Duration::from_millis(gw.hello_timeout_ms),
            clock_skew_s: config.tickets.clock_skew_s,
            welcome,
            lanes,
            keys,
            stream_out_bytes_max: gw.stream_message_bytes_max.saturating_mul(4),
            seed: None,
        })
    }
}

/// What the engine has seen, since it started. Plain numbers: the metrics
/// layer reads and exports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// UDP datagrams handed to [`Engine::handle_datagram`].
    pub udp_in: u64,
    /// QUIC DATAGRAM frames received from clients.
    pub datagrams_in: u64,
    /// Datagrams dropped because their session was not established (yet).
    pub datagrams_before_welcome: u64,
    /// Datagrams too short to hold a type.
    pub malformed_datagrams: u64,
    /// Datagrams larger than `datagram_message_bytes_max`.
    pub oversize_datagrams: u64,
    /// Datagrams with a control-range type.
    pub control_datagrams: u64,
    /// Connections closed for bad framing or undecodable stream messages.
    pub malformed_streams: u64,
    /// Connections closed with `PROTOCOL_VIOLATION` (any cause).
    pub protocol_violations: u64,
    /// `Hello`s with a bad (malformed, forged, unknown-key...) ticket.
    pub tickets_bad: u64,
    /// `Hello`s with an expired ticket.
    pub tickets_expired: u64,
    /// `Hello`s with another protocol version.
    pub unsupported_versions: u64,
    /// Connections closed with `HELLO_TIMEOUT`.
    pub hello_timeouts: u64,
    /// Connections closed because the client offered no datagrams.
    pub datagrams_required: u64,
    /// Connections closed with `SERVER_FULL`.
    pub server_full: u64,
    /// Connections refused at QUIC level (draining, or no slot at all).
    pub refused: u64,
    /// New connections whose first packet admission dropped.
    pub handshakes_ignored: u64,
    /// Connections the admission hook closed.
    pub admission_closes: u64,
    /// Connections lost (peer close, idle timeout, transport error).
    pub connections_lost: u64,
    /// Connections currently in the table.
    pub connections_open: u64,
    /// Sessions established, in total.
    pub sessions_opened: u64,
    /// Sessions currently established.
    pub sessions_open: u64,
    /// Game messages forwarded to shards.
    pub messages_to_shard: u64,
    /// Game messages admission dropped, per lane.
    pub admit_dropped: [u64; Lane::COUNT],
    /// Game messages lost to a full shard ring, per lane.
    pub ring_full: [u64; Lane::COUNT],
    /// `Join`/`Leave` lost to a full shard ring.
    pub ring_full_control: u64,
    /// Game messages dropped for want of a pool buffer.
    pub pool_empty: u64,
    /// Game messages sent to clients as datagrams.
    pub datagrams_out: u64,
    /// Game and control messages written to control streams.
    pub stream_messages_out: u64,
    /// Outbound datagrams dropped (too large for the peer, or refused by QUIC).
    pub datagrams_out_dropped: u64,
    /// Outbound stream messages dropped (control stream backlog full).
    pub stream_out_dropped: u64,
    /// Shard messages for a session this core no longer has.
    pub unknown_session: u64,
    /// Shard messages this engine does not handle (zone moves).
    pub unhandled_from_shard: u64,
    /// Endpoint responses dropped because the queue was full.
    pub responses_dropped: u64,
}

/// One gateway core's QUIC endpoint, connections and sessions.
pub struct Engine<A: Admission, S: ShardSink> {
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
    /// Receive arena: each packet is copied in and split off (quinn takes
    /// ownership); memory is reclaimed when quinn drops the packet.
    rx: BytesMut,
    /// Datagram-send arena, same scheme.
    tx: BytesMut,
    /// Arenas made at start to swap in when `tx` is still held by replies of
    /// this loop turn that quinn has not yet written out: without them, a
    /// busy turn would allocate a fresh 64 KiB arena (found by
    /// `tests/engine_alloc.rs`).
    tx_spares: [BytesMut; TX_SPARES],
    /// One encoded control message, and its frame (sent to several sessions).
    scratch: Vec<u8>,
    scratch_frame: Vec<u8>,
    draining: bool,
    /// Wall-clock at `unix_base.0`, to turn `Instant`s into Unix seconds for
    /// ticket lifetimes.
    unix_base: (Instant, u64),
    admission: A,
    sink: S,
    counters: Counters,
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
    /// Close with this code once the reply written before it is sent.
    close_after_flush: Option<CloseCode>,
    /// Accepted beyond `connections_max`: closed with `SERVER_FULL`.
    overflow: bool,
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

/// An arena whose header is already shared, so reclaiming it later does not
/// allocate either.
fn shared_arena() -> BytesMut {
    let mut arena = BytesMut::with_capacity(ARENA_BYTES + 1);
    arena.extend_from_slice(&[0]);
    drop(arena.split_to(1));
    arena
}

impl<A: Admission, S: ShardSink> Engine<A, S> {
    /// An engine for `params.core`, serving `server` (from
    /// [`tls::quic_server_config`]). `now` and `unix_now_s` are the same
    /// moment on the monotonic and wall clocks.
    pub fn new(
        params: EngineParams,
        server: Arc<quinn_proto::ServerConfig>,
        admission: A,
        sink: S,
        now: Instant,
        unix_now_s: u64,
    ) -> Result<Self, EngineError> {
        let core = params.core;
        let seed = params.seed;
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
                close_after_flush: None,
                overflow: false,
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
            rx: BytesMut::with_capacity(64 * 1024),
            tx: BytesMut::with_capacity(ARENA_BYTES),
            tx_spares: std::array::from_fn(|_| shared_arena()),
            scratch: Vec::with_capacity(64),
            scratch_frame: Vec::with_capacity(64),
            draining: false,
            unix_base: (now, unix_now_s),
            admission,
            sink,
            counters: Counters::default(),
        })
    }

    /// Handles one UDP datagram received from `remote` (on local address
    /// `local_ip`, if the IO layer knows it) with ECN marks `ecn`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local_ip: Option<IpAddr>,
        ecn: Option<EcnCodepoint>,
        data: &[u8],
    ) {
        self.counters.udp_in += 1;
        self.rx.reserve(data.len());
        self.rx.extend_from_slice(data);
        let packet = self.rx.split();
        let mut buf = self.spare_buffers.pop().unwrap_or_default();
        buf.clear();
        match self
            .endpoint
            .handle(now, remote, local_ip, ecn, packet, &mut buf)
        {
            Some(DatagramEvent::NewConnection(incoming)) => {
                self.on_incoming(now, incoming, &mut buf);
            }
            Some(DatagramEvent::ConnectionEvent(ch, event)) => {
                if let Some(conn) = self.slots.get_mut(ch.0).and_then(|s| s.conn.as_mut()) {
                    conn.handle_event(event);
                    self.process(ch.0, now);
                }
            }
            Some(DatagramEvent::Response(transmit)) => {
                self.queue_response(transmit, buf);
                return;
            }
            None => {}
        }
        buf.clear();
        self.spare_buffers.push(buf);
    }

    /// Runs every timer due at `now`: QUIC's (loss detection, idle, close)
    /// and the sessions' `Hello` deadlines.
    pub fn handle_timeouts(&mut self, now: Instant) {
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
            if let Some(session) = slot.session.as_mut()
                && let Err(close) = session.on_timeout(now)
            {
                self.finish_close(idx, now, close);
            }
            self.process(idx, now);
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
        if let Some((transmit, mut bytes)) = self.responses.pop_front() {
            buf.extend_from_slice(&bytes);
            bytes.clear();
            self.spare_buffers.push(bytes);
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

    /// Delivers a shard's message: game messages to their session(s) on the
    /// transport the shard chose, `ZoneReset` as the control message on each
    /// of the zone's control streams. Returns the message's pool buffer, if
    /// it had one, for the caller to give back to its pool.
    pub fn handle_from_shard(&mut self, now: Instant, message: ToGateway) -> Option<PoolBuf> {
        self.deliver(now, &message);
        match message {
            ToGateway::Unicast { body, .. } | ToGateway::Broadcast { body, .. } => {
                body.payload.into_pooled()
            }
            _ => None,
        }
    }

    /// As [`Engine::handle_from_shard`], by reference: for a ring reader
    /// that lends its entries and takes their buffers back itself (the
    /// shard crate's `GatewayPort::poll`). The payload is copied into QUIC
    /// (datagram) or the control stream's backlog before this returns.
    pub fn deliver(&mut self, now: Instant, message: &ToGateway) {
        let _ = now;
        match message {
            ToGateway::Unicast { session, body, .. } => match self.slot_of(*session) {
                Some(idx) => self.send_body(idx, body.ty, body.transport, body.payload.as_slice()),
                None => self.counters.unknown_session += 1,
            },
            ToGateway::Broadcast { zone, body } => {
                for idx in 0..self.slots.len() {
                    if self.zone_of(idx) == Some(*zone) {
                        self.send_body(idx, body.ty, body.transport, body.payload.as_slice());
                    }
                }
            }
            ToGateway::ZoneReset { zone } => {
                let zone = *zone;
                let mut message = std::mem::take(&mut self.scratch);
                let mut frame = std::mem::take(&mut self.scratch_frame);
                message.clear();
                frame.clear();
                if Message::ZoneReset(ZoneReset { zone })
                    .encode(&mut message)
                    .is_ok()
                {
                    put_frame(&message, &mut frame);
                    for idx in 0..self.slots.len() {
                        if self.zone_of(idx) == Some(zone) {
                            self.write_control(idx, &frame);
                        }
                    }
                }
                self.scratch = message;
                self.scratch_frame = frame;
            }
            _ => self.counters.unhandled_from_shard += 1,
        }
    }

    /// Starts shutting down: new connections are refused, and every
    /// connection is closed with `SERVER_DRAINING` (its session leaves).
    pub fn begin_drain(&mut self, now: Instant) {
        self.draining = true;
        for idx in 0..self.slots.len() {
            let slot = &mut self.slots[idx];
            let close = match (slot.conn.as_ref(), slot.session.as_mut()) {
                (Some(_), Some(s)) => s.close(CloseCode::ServerDraining, CloseCause::Engine),
                _ => None,
            };
            if let Some(close) = close {
                self.finish_close(idx, now, close);
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

    /// The shard sink (e.g. to drain a test sink).
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// The admission hook.
    pub fn admission_mut(&mut self) -> &mut A {
        &mut self.admission
    }

    /// The parameters the engine runs with.
    pub fn params(&self) -> &EngineParams {
        &self.params
    }

    fn on_incoming(&mut self, now: Instant, incoming: quinn_proto::Incoming, buf: &mut Vec<u8>) {
        if self.draining || self.endpoint.open_connections() >= self.slots.len() {
            self.counters.refused += 1;
            let transmit = self.endpoint.refuse(incoming, buf);
            self.queue_response(transmit, std::mem::take(buf));
            return;
        }
        if !self
            .admission
            .admit_handshake(now, incoming.remote_address())
        {
            self.counters.handshakes_ignored += 1;
            self.endpoint.ignore(incoming);
            return;
        }
        match self.endpoint.accept(incoming, now, buf, None) {
            Ok((ch, conn)) => self.on_accepted(now, ch, conn),
            Err(error) => {
                if let Some(transmit) = error.response {
                    self.queue_response(transmit, std::mem::take(buf));
                }
            }
        }
    }

    fn on_accepted(&mut self, now: Instant, ch: ConnectionHandle, conn: quinn_proto::Connection) {
        let sessions_max = self.params.connections_max;
        let core = self.params.core;
        let (stream_max, dgram_max) = (
            usize::try_from(self.params.welcome.stream_message_bytes_max).unwrap_or(usize::MAX),
            usize::from(self.params.welcome.datagram_message_bytes_max),
        );
        if ch.0 >= self.slots.len() {
            // quinn's table is dense and never larger than ours (checked in
            // `on_incoming`), so this cannot happen; drop it rather than panic.
            return;
        }
        // A scan per handshake (not per packet): handshakes are rare next to
        // packets and cost a signature anyway.
        let in_use = self
            .slots
            .iter()
            .filter(|s| s.conn.is_some() && !s.overflow)
            .count();
        let slot = &mut self.slots[ch.0];
        slot.generation = slot.generation.wrapping_add(1) & 0x00ff_ffff;
        slot.id = session_id(core, slot.generation, ch.0);
        slot.control = None;
        slot.pending.clear();
        slot.close_after_flush = None;
        slot.overflow = in_use >= sessions_max;
        slot.unsent = false;
        match slot.session.as_mut() {
            Some(s) => s.reset(),
            None => slot.session = Some(Session::new(stream_max, dgram_max)),
        }
        slot.conn = Some(conn);
        self.counters.connections_open += 1;
        self.process(ch.0, now);
    }

    /// Handles everything a connection has to say after an input.
    fn process(&mut self, idx: usize, now: Instant) {
        loop {
            let Some(conn) = self.slots.get_mut(idx).and_then(|s| s.conn.as_mut()) else {
                return;
            };
            if let Some(event) = conn.poll() {
                self.on_event(idx, now, event);
                continue;
            }
            let mut any = false;
            while let Some(event) = conn.poll_endpoint_events() {
                any = true;
                if let Some(back) = self.endpoint.handle_event(ConnectionHandle(idx), event) {
                    conn.handle_event(back);
                }
            }
            if conn.is_drained() {
                self.free(idx, now);
                return;
            }
            if !any {
                break;
            }
        }
        self.mark_dirty(idx);
    }

    fn on_event(&mut self, idx: usize, now: Instant, event: Event) {
        match event {
            Event::Connected => self.on_connected(idx, now),
            Event::ConnectionLost { .. } => {
                self.counters.connections_lost += 1;
                let close = self.slots[idx]
                    .session
                    .as_mut()
                    .and_then(|s| s.close(CloseCode::NoError, CloseCause::ConnectionLost));
                if let Some(close) = close {
                    self.account_close(idx, now, &close);
                }
            }
            Event::Stream(StreamEvent::Opened { dir }) => self.accept_streams(idx, now, dir),
            Event::Stream(StreamEvent::Readable { id }) => self.read_stream(idx, now, id),
            Event::Stream(StreamEvent::Writable { .. }) => self.flush_control(idx),
            Event::Stream(StreamEvent::Stopped { id, .. }) => {
                if self.slots[idx].control == Some(id) {
                    self.session_end(idx, now, StreamRef::Control, true);
                }
            }
            Event::DatagramReceived => self.read_datagrams(idx, now),
            Event::HandshakeDataReady
            | Event::DatagramsUnblocked
            | Event::Stream(StreamEvent::Finished { .. } | StreamEvent::Available { .. }) => {}
        }
    }

    fn on_connected(&mut self, idx: usize, now: Instant) {
        let deadline = now + self.params.hello_timeout;
        let draining = self.draining;
        let slot = &mut self.slots[idx];
        let (Some(conn), Some(session)) = (slot.conn.as_mut(), slot.session.as_mut()) else {
            return;
        };
        let code = if conn.datagrams().max_size().is_none() {
            self.counters.datagrams_required += 1;
            Some(CloseCode::DatagramsRequired)
        } else if slot.overflow {
            self.counters.server_full += 1;
            Some(CloseCode::ServerFull)
        } else if draining {
            Some(CloseCode::ServerDraining)
        } else {
            session.start(deadline);
            None
        };
        if let Some(close) = code.and_then(|code| session.close(code, CloseCause::Engine)) {
            self.finish_close(idx, now, close);
        }
    }

    fn accept_streams(&mut self, idx: usize, now: Instant, dir: Dir) {
        loop {
            let slot = &mut self.slots[idx];
            let Some(conn) = slot.conn.as_mut() else {
                return;
            };
            let Some(id) = conn.streams().accept(dir) else {
                return;
            };
            if dir == Dir::Bi {
                if slot.control.is_none() && id.index() == 0 {
                    slot.control = Some(id);
                } else {
                    // The transport allows one bidi stream; a second can only
                    // come after the control stream ended, which closed us.
                    let close = slot.session.as_mut().and_then(|s| {
                        s.close(CloseCode::ProtocolViolation, CloseCause::StreamNotAllowed)
                    });
                    if let Some(close) = close {
                        self.finish_close(idx, now, close);
                    }
                    return;
                }
            }
            self.read_stream(idx, now, id);
        }
    }

    fn read_stream(&mut self, idx: usize, now: Instant, id: StreamId) {
        let unix_now_s = self.unix_now_s(now);
        let Self {
            slots,
            params,
            admission,
            sink,
            counters,
            ..
        } = self;
        let slot = &mut slots[idx];
        let (Some(conn), Some(session)) = (slot.conn.as_mut(), slot.session.as_mut()) else {
            return;
        };
        let stream = if slot.control == Some(id) {
            StreamRef::Control
        } else if id.dir() == Dir::Uni {
            StreamRef::Uni(id.index())
        } else {
            return;
        };
        let ctx = SessionCtx {
            lanes: &params.lanes,
            keys: &params.keys,
            unix_now_s,
            clock_skew_s: params.clock_skew_s,
            welcome: &params.welcome,
            session: slot.id,
        };
        let mut router = Router {
            admission,
            sink,
            counters,
            conn: conn_slot(idx),
            now,
        };
        let mut result = Ok(());
        let mut ended = None;
        let mut recv = conn.recv_stream(id);
        if let Ok(mut chunks) = recv.read(true) {
            loop {
                match chunks.next(usize::MAX) {
                    Ok(Some(chunk)) => {
                        result = session.on_stream(stream, &chunk.bytes, &ctx, &mut router);
                        if result.is_err() {
                            break;
                        }
                    }
                    Ok(None) => {
                        ended = Some(false);
                        break;
                    }
                    Err(ReadError::Reset(_)) => {
                        ended = Some(true);
                        break;
                    }
                    Err(ReadError::Blocked) => break,
                }
            }
            let _ = chunks.finalize();
        }
        if result.is_ok()
            && let Some(reset) = ended
        {
            result = session.on_stream_end(stream, reset);
        }
        self.flush_reply(idx);
        if let Err(close) = result {
            self.finish_close(idx, now, close);
        }
    }

    fn session_end(&mut self, idx: usize, now: Instant, stream: StreamRef, reset: bool) {
        let result = match self.slots[idx].session.as_mut() {
            Some(s) => s.on_stream_end(stream, reset),
            None => Ok(()),
        };
        if let Err(close) = result {
            self.finish_close(idx, now, close);
        }
    }

    fn read_datagrams(&mut self, idx: usize, now: Instant) {
        let unix_now_s = self.unix_now_s(now);
        let Self {
            slots,
            params,
            admission,
            sink,
            counters,
            ..
        } = self;
        let slot = &mut slots[idx];
        let (Some(conn), Some(session)) = (slot.conn.as_mut(), slot.session.as_mut()) else {
            return;
        };
        let ctx = SessionCtx {
            lanes: &params.lanes,
            keys: &params.keys,
            unix_now_s,
            clock_skew_s: params.clock_skew_s,
            welcome: &params.welcome,
            session: slot.id,
        };
        let mut closed = None;
        while let Some(datagram) = conn.datagrams().recv() {
            let mut router = Router {
                admission: &mut *admission,
                sink: &mut *sink,
                counters: &mut *counters,
                conn: conn_slot(idx),
                now,
            };
            router.counters.datagrams_in += 1;
            match session.on_datagram(&datagram, &ctx, &mut router) {
                Ok(DatagramOutcome::Delivered) => {}
                Ok(DatagramOutcome::NotEstablished) => counters.datagrams_before_welcome += 1,
                Ok(DatagramOutcome::Malformed) => counters.malformed_datagrams += 1,
                Ok(DatagramOutcome::Oversize) => counters.oversize_datagrams += 1,
                Ok(DatagramOutcome::Control) => counters.control_datagrams += 1,
                Err(close) => {
                    closed = Some(close);
                    break;
                }
            }
        }
        if let Some(close) = closed {
            self.finish_close(idx, now, close);
        }
    }

    /// Counts a close, sends `Leave`, and closes the QUIC connection (after
    /// the pending reply, e.g. a `Reject`, has been handed to QUIC).
    fn finish_close(&mut self, idx: usize, now: Instant, close: Close) {
        self.account_close(idx, now, &close);
        let slot = &mut self.slots[idx];
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        if slot.unsent && slot.control.is_some() {
            slot.close_after_flush = Some(close.code);
        } else {
            conn.close(now, close_code(close.code), Bytes::new());
        }
        self.mark_dirty(idx);
    }

    fn account_close(&mut self, idx: usize, _now: Instant, close: &Close) {
        let c = &mut self.counters;
        if close.code == CloseCode::ProtocolViolation {
            c.protocol_violations += 1;
        }
        match &close.cause {
            CloseCause::Framing | CloseCause::Malformed => c.malformed_streams += 1,
            CloseCause::Ticket(TicketError::Expired { .. }) => c.tickets_expired += 1,
            CloseCause::Ticket(_) => c.tickets_bad += 1,
            CloseCause::Version => c.unsupported_versions += 1,
            CloseCause::HelloTimeout => c.hello_timeouts += 1,
            CloseCause::Admission => c.admission_closes += 1,
            _ => {}
        }
        if let Some(left) = close.left {
            c.sessions_open = c.sessions_open.saturating_sub(1);
            self.admission.on_close(conn_slot(idx));
            let leave = ToShard::Leave {
                session: left.session,
                player: left.player,
                zone: left.zone,
            };
            if self.sink.push(leave).is_err() {
                self.counters.ring_full_control += 1;
            }
        }
    }

    fn free(&mut self, idx: usize, now: Instant) {
        let close = self.slots[idx]
            .session
            .as_mut()
            .and_then(|s| s.close(CloseCode::NoError, CloseCause::ConnectionLost));
        if let Some(close) = close {
            self.account_close(idx, now, &close);
        }
        let slot = &mut self.slots[idx];
        slot.conn = None;
        slot.control = None;
        slot.pending.clear();
        slot.close_after_flush = None;
        self.timers.set(idx, None);
        self.counters.connections_open = self.counters.connections_open.saturating_sub(1);
    }

    /// Recomputes the cached timer of every connection touched since it was
    /// last polled (their QUIC timers may have moved).
    fn refresh_dirty_timers(&mut self) {
        for i in 0..self.dirty.len() {
            let idx = self.dirty[i];
            self.refresh_timer(idx);
        }
    }

    fn refresh_timer(&mut self, idx: usize) {
        let slot = &mut self.slots[idx];
        let deadline = match slot.conn.as_mut() {
            Some(conn) => {
                let hello = slot.session.as_ref().and_then(Session::deadline);
                [conn.poll_timeout(), hello].into_iter().flatten().min()
            }
            None => None,
        };
        self.timers.set(idx, deadline);
    }

    /// Moves the session's reply into the control stream.
    fn flush_reply(&mut self, idx: usize) {
        let slot = &mut self.slots[idx];
        if let Some(session) = slot.session.as_mut() {
            let reply = session.take_reply();
            if !reply.is_empty() {
                slot.pending.extend_from_slice(reply);
                reply.clear();
                self.counters.stream_messages_out += 1;
            }
        }
        self.flush_control(idx);
    }

    /// Hands buffered control-stream bytes to QUIC, as far as flow control lets.
    fn flush_control(&mut self, idx: usize) {
        let slot = &mut self.slots[idx];
        let (Some(conn), Some(id)) = (slot.conn.as_mut(), slot.control) else {
            return;
        };
        if slot.pending.is_empty() {
            return;
        }
        if let Ok(n) = conn.send_stream(id).write(&slot.pending) {
            slot.pending.drain(..n);
            slot.unsent |= n > 0;
        }
        self.mark_dirty(idx);
    }

    /// Appends one framed message to a session's control stream.
    fn write_control(&mut self, idx: usize, frame: &[u8]) {
        let max = self.params.stream_out_bytes_max;
        let slot = &mut self.slots[idx];
        if slot.control.is_none() || slot.pending.len() + frame.len() > max {
            self.counters.stream_out_dropped += 1;
            return;
        }
        slot.pending.extend_from_slice(frame);
        self.counters.stream_messages_out += 1;
        self.flush_control(idx);
    }

    fn send_body(&mut self, idx: usize, ty: u16, transport: Transport, payload: &[u8]) {
        let len = 2 + payload.len();
        // The limits announced in `Welcome` bound what the gateway sends too.
        let limit = match transport {
            Transport::Datagram => usize::from(self.params.welcome.datagram_message_bytes_max),
            Transport::Stream => {
                usize::try_from(self.params.welcome.stream_message_bytes_max).unwrap_or(usize::MAX)
            }
        };
        if len > limit {
            match transport {
                Transport::Datagram => self.counters.datagrams_out_dropped += 1,
                Transport::Stream => self.counters.stream_out_dropped += 1,
            }
            return;
        }
        match transport {
            Transport::Datagram => {
                let slot = &mut self.slots[idx];
                let Some(conn) = slot.conn.as_mut() else {
                    return;
                };
                if conn.datagrams().max_size().is_none_or(|max| len > max) {
                    self.counters.datagrams_out_dropped += 1;
                    return;
                }
                if self.tx.capacity() < len
                    && !self.tx.try_reclaim(len)
                    && let Some(i) = self.tx_spares.iter_mut().position(|b| b.try_reclaim(len))
                {
                    std::mem::swap(&mut self.tx, &mut self.tx_spares[i]);
                }
                self.tx.reserve(len);
                self.tx.put_u16(ty);
                self.tx.extend_from_slice(payload);
                let bytes = self.tx.split().freeze();
                match conn.datagrams().send(bytes, true) {
                    Ok(()) => self.counters.datagrams_out += 1,
                    Err(_) => self.counters.datagrams_out_dropped += 1,
                }
                self.mark_dirty(idx);
            }
            Transport::Stream => {
                let max = self.params.stream_out_bytes_max;
                let slot = &mut self.slots[idx];
                let frame_len = varint_len(len as u64) + len;
                if slot.control.is_none() || slot.pending.len() + frame_len > max {
                    self.counters.stream_out_dropped += 1;
                    return;
                }
                lanegate_common::frame::put_varint(len as u64, &mut slot.pending);
                slot.pending.extend_from_slice(&ty.to_be_bytes());
                slot.pending.extend_from_slice(payload);
                self.counters.stream_messages_out += 1;
                self.flush_control(idx);
            }
        }
    }

    fn mark_dirty(&mut self, idx: usize) {
        let slot = &mut self.slots[idx];
        if !slot.queued {
            slot.queued = true;
            self.dirty.push_back(idx);
        }
    }

    fn queue_response(&mut self, transmit: Transmit, buf: Vec<u8>) {
        if self.responses.len() < RESPONSES_MAX {
            self.responses.push_back((transmit, buf));
        } else {
            self.counters.responses_dropped += 1;
            self.spare_buffers.push(buf);
        }
    }

    /// The slot of a live, established session.
    fn slot_of(&self, session: SessionId) -> Option<usize> {
        let idx = usize::try_from(session.0 & 0x00ff_ffff).ok()?;
        let slot = self.slots.get(idx)?;
        let live = slot.conn.is_some() && slot.id == session;
        let established = slot.session.as_ref().and_then(Session::established);
        (live && established.is_some()).then_some(idx)
    }

    fn zone_of(&self, idx: usize) -> Option<ZoneId> {
        let slot = &self.slots[idx];
        slot.conn.as_ref()?;
        slot.session
            .as_ref()
            .and_then(Session::established)
            .map(|e| e.zone)
    }

    fn unix_now_s(&self, now: Instant) -> u64 {
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
    fn session_ids_round_trip_to_their_slot() {
        let id = session_id(CoreId(3), 0x12_3456, 42);
        assert_eq!(id.0 >> 48, 3);
        assert_eq!(id.0 & 0x00ff_ffff, 42);
        assert_eq!((id.0 >> 24) & 0x00ff_ffff, 0x12_3456);
    }

    #[test]
    fn params_split_connections_across_cores() {
        let config = Config::default();
        let p = EngineParams::from_config(&config, CoreId(0), 3, KeySet::dev()).unwrap();
        assert_eq!(p.connections_max, 10_000usize.div_ceil(3));
        assert_eq!(p.welcome.datagram_message_bytes_max, 1100);
        assert_eq!(p.welcome.lane_limits[0].rate_per_s, 240);
        assert_eq!(p.hello_timeout, Duration::from_secs(5));
    }
}
