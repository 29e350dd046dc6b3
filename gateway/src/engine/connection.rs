//! What one connection's QUIC events mean for its session, and how a
//! connection ends: accepting it into a slot, its streams and datagrams
//! fed to the session state machine (whose output goes through the
//! [`Router`] to the shard links), and the close accounting that sends the
//! session's `Leave`.

use std::time::Instant;

use bytes::Bytes;
use lanegate_common::ticket::TicketError;
use lanegate_common::wire::CloseCode;
use lanegate_shard::port::GatewayPort;
use quinn_proto::{ConnectionHandle, Dir, Event, ReadError, StreamEvent, StreamId};

use super::admit::{BanKey, HandshakeDecision};
use super::egress::CONTROL_PRIORITY;
use super::peer_params;
use super::router::Router;
use super::session::{Close, CloseCause, DatagramOutcome, Session, SessionCtx, StreamRef};
use super::{Admission, Engine, close_code, conn_slot, session_id};

impl<A: Admission> Engine<A> {
    pub(super) fn on_incoming(
        &mut self,
        now: Instant,
        incoming: quinn_proto::Incoming,
        buf: &mut Vec<u8>,
        links: &mut GatewayPort,
    ) {
        // A banned address gets nothing: no state, no reply (`admit/ban.rs`).
        if self
            .bans
            .check(BanKey::address(incoming.remote_address().ip()), now)
        {
            self.counters.handshakes_banned += 1;
            self.endpoint.ignore(incoming);
            return;
        }
        if self.draining || self.endpoint.open_connections() >= self.slots.len() {
            self.counters.refused += 1;
            let transmit = self.endpoint.refuse(incoming, buf);
            self.queue_response(transmit, std::mem::take(buf));
            return;
        }
        let remote = incoming.remote_address();
        // One address cannot fill the table (`admit/per_ip.rs`).
        if !self.ip_conns.has_room(remote.ip()) {
            self.counters.refused_per_ip += 1;
            let transmit = self.endpoint.refuse(incoming, buf);
            self.queue_response(transmit, std::mem::take(buf));
            return;
        }
        let validated = incoming.remote_address_validated();
        // Under a flood of unvalidated handshakes, or with the room for
        // unvalidated connections taken, prove the address first
        // (`admit/retry.rs`): a stateless Retry, no connection, no charge
        // to the address's handshake budget.
        let decision = if validated {
            self.admission.handshake(now, remote, true)
        } else if self.retry.retry(now) {
            self.counters.retry_engaged = self.retry.engaged();
            HandshakeDecision::Retry
        } else if links.shedding().refuse_sessions {
            // The degradation ladder protects this core: an address proves
            // itself before it costs any state (it is then refused with
            // SERVER_FULL at handshake completion, as every newcomer is).
            HandshakeDecision::Retry
        } else if self.unvalidated >= self.params.unvalidated_connections_max {
            self.counters.unvalidated_full += 1;
            HandshakeDecision::Retry
        } else {
            let decision = self.admission.handshake(now, remote, false);
            if decision != HandshakeDecision::Accept {
                self.counters.handshakes_ignored += 1;
            }
            decision
        };
        match decision {
            HandshakeDecision::Accept => {
                // The crypto budget (`admit/crypto_budget.rs`): over it, an
                // Initial is ignored, sending nothing and keeping nothing.
                if !self.crypto.take(now) {
                    self.counters.handshakes_over_budget = self.crypto.over();
                    self.endpoint.ignore(incoming);
                    return;
                }
                // Only a handshake the core pays TLS for is load: a flood
                // answered with Retries costs next to nothing, and counted
                // here it would take the ladder to protect and refuse real
                // newcomers (SERVER_FULL) for as long as it lasts.
                self.counters.handshakes += 1;
            }
            HandshakeDecision::Retry if !validated => {
                match self.endpoint.retry(incoming, buf) {
                    Ok(transmit) => {
                        self.counters.retries_sent += 1;
                        self.queue_response(transmit, std::mem::take(buf));
                    }
                    // Cannot happen for an unvalidated address (quinn:
                    // unvalidated implies `may_retry`); forget it if it does.
                    Err(error) => self.endpoint.ignore(error.into_incoming()),
                }
                return;
            }
            // A validated address cannot be sent another Retry.
            HandshakeDecision::Retry | HandshakeDecision::Ignore => {
                self.endpoint.ignore(incoming);
                return;
            }
        }
        match self.endpoint.accept(incoming, now, buf, None) {
            Ok((ch, conn)) => self.on_accepted(now, ch, conn, (remote.ip(), validated), links),
            Err(error) => {
                if let Some(transmit) = error.response {
                    self.queue_response(transmit, std::mem::take(buf));
                }
            }
        }
    }

    fn on_accepted(
        &mut self,
        now: Instant,
        ch: ConnectionHandle,
        conn: quinn_proto::Connection,
        (ip, validated): (std::net::IpAddr, bool),
        links: &mut GatewayPort,
    ) {
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
        slot.lanes.clear();
        slot.close_after_flush = None;
        slot.overflow = in_use >= sessions_max;
        slot.remote_ip = Some(ip);
        slot.unvalidated = !validated;
        self.ip_conns.opened(ip);
        if !validated {
            self.unvalidated += 1;
        }
        slot.stall.clear();
        slot.handshake_deadline = Some(now + self.params.handshake_timeout);
        slot.unsent = false;
        match slot.session.as_mut() {
            Some(s) => s.reset(),
            None => slot.session = Some(Session::new(stream_max, dgram_max)),
        }
        slot.conn = Some(conn);
        self.counters.connections_open += 1;
        self.process(ch.0, now, links);
    }

    /// Handles everything a connection has to say after an input.
    pub(super) fn process(&mut self, idx: usize, now: Instant, links: &mut GatewayPort) {
        let mut writable = false;
        loop {
            let Some(conn) = self.slots.get_mut(idx).and_then(|s| s.conn.as_mut()) else {
                return;
            };
            if let Some(event) = conn.poll() {
                writable |= matches!(event, Event::Stream(StreamEvent::Writable { .. }));
                self.on_event(idx, now, event, links);
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
                self.free(idx, now, links);
                return;
            }
            if !any {
                break;
            }
        }
        // Lane backlogs are handed over once per input, after the events:
        // a write QUIC refuses within a lane's share asks for another
        // `Writable`, which QUIC raises at once (the full window has room),
        // so doing it inside the loop would never end.
        if writable {
            self.flush_lanes(idx);
        }
        self.mark_dirty(idx);
    }

    fn on_event(&mut self, idx: usize, now: Instant, event: Event, links: &mut GatewayPort) {
        match event {
            Event::Connected => self.on_connected(idx, now, links),
            Event::ConnectionLost { reason } => {
                // Timed out before the handshake completed: a flood of
                // Initials, or a client that gave up; not a player's leave.
                let handshaking = self.slots[idx]
                    .session
                    .as_ref()
                    .is_some_and(|s| s.phase() == super::session::Phase::Handshake);
                if handshaking && reason == quinn_proto::ConnectionError::TimedOut {
                    self.counters.handshake_timeouts += 1;
                } else if handshaking && reason == quinn_proto::ConnectionError::LocallyClosed {
                    // `gateway.handshake_timeout_ms` closed it, and counted it.
                } else {
                    self.counters.connections_lost += 1;
                }
                let close = self.slots[idx]
                    .session
                    .as_mut()
                    .and_then(|s| s.close(CloseCode::NoError, CloseCause::ConnectionLost));
                if let Some(close) = close {
                    self.account_close(idx, now, &close, links);
                }
            }
            Event::Stream(StreamEvent::Opened { dir }) => self.accept_streams(idx, now, dir, links),
            Event::Stream(StreamEvent::Readable { id }) => self.read_stream(idx, now, id, links),
            Event::Stream(StreamEvent::Writable { .. }) => self.flush_control(idx),
            Event::Stream(StreamEvent::Stopped { id, .. }) => {
                if self.slots[idx].control == Some(id) {
                    self.session_end(idx, now, StreamRef::Control, true, links);
                }
            }
            Event::DatagramReceived => self.read_datagrams(idx, now, links),
            Event::HandshakeDataReady
            | Event::DatagramsUnblocked
            | Event::Stream(StreamEvent::Finished { .. } | StreamEvent::Available { .. }) => {}
        }
    }

    fn on_connected(&mut self, idx: usize, now: Instant, links: &mut GatewayPort) {
        // The Hello deadline starts here, when the handshake is complete
        // (`docs/protocol.md` §4): the client cannot open its control
        // stream before.
        let deadline = now + self.params.hello_timeout;
        let draining = self.draining;
        self.slots[idx].handshake_deadline = None;
        // The handshake is done: the address is validated.
        if std::mem::take(&mut self.slots[idx].unvalidated) {
            self.unvalidated = self.unvalidated.saturating_sub(1);
        }
        let slot = &mut self.slots[idx];
        let (Some(conn), Some(session)) = (slot.conn.as_mut(), slot.session.as_mut()) else {
            return;
        };
        let frame_size = peer_params::max_datagram_frame_size(conn, &mut self.scratch);
        let code = if frame_size.is_none_or(|size| size < peer_params::DATAGRAM_FRAME_SIZE_MIN) {
            self.counters.datagrams_required += 1;
            Some(CloseCode::DatagramsRequired)
        } else if slot.overflow || links.shedding().refuse_sessions {
            // Over connections_max, or the ladder protects this core.
            self.counters.server_full += 1;
            Some(CloseCode::ServerFull)
        } else if draining {
            Some(CloseCode::ServerDraining)
        } else {
            session.start(deadline);
            None
        };
        if let Some(close) = code.and_then(|code| session.close(code, CloseCause::Engine)) {
            self.finish_close(idx, now, close, links);
        }
    }

    fn accept_streams(&mut self, idx: usize, now: Instant, dir: Dir, links: &mut GatewayPort) {
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
                    // Above every lane stream (`egress.rs`): control
                    // messages and `critical` go first. Just accepted, so
                    // it cannot be closed yet.
                    let _ = conn.send_stream(id).set_priority(CONTROL_PRIORITY);
                } else {
                    // The transport allows one bidi stream; a second can only
                    // come after the control stream ended, which closed us.
                    let close = slot.session.as_mut().and_then(|s| {
                        s.close(CloseCode::ProtocolViolation, CloseCause::StreamNotAllowed)
                    });
                    if let Some(close) = close {
                        self.finish_close(idx, now, close, links);
                    }
                    return;
                }
            }
            self.read_stream(idx, now, id, links);
        }
    }

    fn read_stream(&mut self, idx: usize, now: Instant, id: StreamId, links: &mut GatewayPort) {
        let unix_now_s = self.unix_now_s(now);
        let received_at = self.received_at.unwrap_or(now);
        let Self {
            slots,
            params,
            admission,
            counters,
            bans,
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
            zones: &params.zones,
            unix_now_s,
            clock_skew_s: params.clock_skew_s,
            welcome: &params.welcome,
            session: slot.id,
            shard_available: links.has_live_shard(),
            bans,
            now,
        };
        let mut router = Router {
            admission,
            links: &mut *links,
            counters,
            conn: conn_slot(idx),
            now,
            received_at,
        };
        let was_established = session.established().is_some();
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
        let welcomed = match session.established() {
            Some(est) if !was_established => Some(est.player),
            _ => None,
        };
        slot.stall.observe(now, session.frames_in_progress());
        if result.is_ok()
            && let Some(reset) = ended
        {
            result = session.on_stream_end(stream, reset);
            // Stream churn counts toward ABUSE (`docs/protocol.md` §8).
            if result.is_ok()
                && matches!(stream, StreamRef::Uni(_))
                && session.established().is_some()
                && let Some(code) = router.stream_ended()
            {
                result = session
                    .close(code, CloseCause::Admission)
                    .map_or(Ok(()), Err);
            }
        }
        self.flush_reply(idx);
        if let Some(player) = welcomed {
            self.replace_older(idx, player, now, links);
            // The player's home shard hears of it too (`replace.rs`).
            links.claim(self.slots[idx].id, player);
        }
        if let Err(close) = result {
            self.finish_close(idx, now, close, links);
        }
    }

    fn session_end(
        &mut self,
        idx: usize,
        now: Instant,
        stream: StreamRef,
        reset: bool,
        links: &mut GatewayPort,
    ) {
        let result = match self.slots[idx].session.as_mut() {
            Some(s) => s.on_stream_end(stream, reset),
            None => Ok(()),
        };
        if let Err(close) = result {
            self.finish_close(idx, now, close, links);
        }
    }

    fn read_datagrams(&mut self, idx: usize, now: Instant, links: &mut GatewayPort) {
        let unix_now_s = self.unix_now_s(now);
        let received_at = self.received_at.unwrap_or(now);
        let Self {
            slots,
            params,
            admission,
            counters,
            bans,
            ..
        } = self;
        let slot = &mut slots[idx];
        let (Some(conn), Some(session)) = (slot.conn.as_mut(), slot.session.as_mut()) else {
            return;
        };
        let ctx = SessionCtx {
            lanes: &params.lanes,
            keys: &params.keys,
            zones: &params.zones,
            unix_now_s,
            clock_skew_s: params.clock_skew_s,
            welcome: &params.welcome,
            session: slot.id,
            shard_available: links.has_live_shard(),
            bans,
            now,
        };
        let mut closed = None;
        while let Some(datagram) = conn.datagrams().recv() {
            let mut router = Router {
                admission: &mut *admission,
                links: &mut *links,
                counters: &mut *counters,
                conn: conn_slot(idx),
                now,
                received_at,
            };
            router.counters.datagrams_in += 1;
            let offence = match session.on_datagram(&datagram, &ctx, &mut router) {
                Ok(DatagramOutcome::Delivered) => None,
                Ok(DatagramOutcome::NotEstablished) => {
                    router.counters.datagrams_before_welcome += 1;
                    None
                }
                Ok(outcome) => router.datagram_offence(outcome),
                Err(close) => {
                    closed = Some(close);
                    break;
                }
            };
            // Dropped datagrams count toward ABUSE (`docs/protocol.md` §8).
            if let Some(code) = offence {
                closed = session.close(code, CloseCause::Admission);
                break;
            }
        }
        if let Some(close) = closed {
            self.finish_close(idx, now, close, links);
        }
    }

    /// Counts a close, sends `Leave`, and closes the QUIC connection (after
    /// the pending reply, e.g. a `Reject`, has been handed to QUIC).
    pub(super) fn finish_close(
        &mut self,
        idx: usize,
        now: Instant,
        close: Close,
        links: &mut GatewayPort,
    ) {
        self.account_close(idx, now, &close, links);
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

    fn account_close(&mut self, idx: usize, now: Instant, close: &Close, links: &mut GatewayPort) {
        let c = &mut self.counters;
        if close.code == CloseCode::ProtocolViolation {
            c.protocol_violations += 1;
        }
        match &close.cause {
            CloseCause::Framing | CloseCause::Malformed => c.malformed_streams += 1,
            CloseCause::Ticket(TicketError::Expired { .. }) => c.tickets_expired += 1,
            CloseCause::Ticket(_) => c.tickets_bad += 1,
            CloseCause::Version => c.unsupported_versions += 1,
            CloseCause::UnknownZone(_) => c.unknown_zones += 1,
            CloseCause::HelloTimeout => c.hello_timeouts += 1,
            CloseCause::Admission => c.admission_closes += 1,
            CloseCause::FrameStall => c.frame_stalls += 1,
            CloseCause::ShardUnavailable => c.shard_unavailable += 1,
            CloseCause::Replaced => c.sessions_replaced += 1,
            CloseCause::Banned => c.hellos_banned += 1,
            _ => {}
        }
        // An ABUSE close bans its address and player (`admit/ban.rs`); a
        // refusal of a banned player does not extend its ban.
        if close.code == CloseCode::Abuse && close.cause != CloseCause::Banned && self.bans.is_on()
        {
            if let Some(remote) = self.slots[idx].conn.as_ref().map(|c| c.remote_address()) {
                self.bans.ban(BanKey::address(remote.ip()), now);
            }
            if let Some(left) = close.left {
                self.bans.ban(BanKey::player(left.player), now);
            }
            let bans = self.bans.counters();
            c.bans_added = bans.added;
            c.bans_evicted = bans.evicted;
        }
        if let Some(left) = close.left {
            c.sessions_open = c.sessions_open.saturating_sub(1);
            self.admission.on_close(conn_slot(idx));
            // Leaves are never refused: the port queues them if need be.
            links.leave(left.session, left.player, left.zone);
            links.release(left.session, left.player);
        }
    }

    fn free(&mut self, idx: usize, now: Instant, links: &mut GatewayPort) {
        let close = self.slots[idx]
            .session
            .as_mut()
            .and_then(|s| s.close(CloseCode::NoError, CloseCause::ConnectionLost));
        if let Some(close) = close {
            self.account_close(idx, now, &close, links);
        }
        let slot = &mut self.slots[idx];
        if let Some(ip) = slot.remote_ip.take() {
            self.ip_conns.closed(ip);
        }
        if std::mem::take(&mut slot.unvalidated) {
            self.unvalidated = self.unvalidated.saturating_sub(1);
        }
        slot.conn = None;
        slot.control = None;
        slot.pending.clear();
        slot.lanes.clear();
        slot.close_after_flush = None;
        self.timers.set(idx, None);
        self.counters.connections_open = self.counters.connections_open.saturating_sub(1);
    }
}
