//! Shards' messages to clients: a unicast or broadcast body as a QUIC
//! datagram or a stream frame on its lane's stream (within the limits
//! `Welcome` announced and the lane's share of the send buffers,
//! `egress.rs`), a zone reset as a control message, a zone change as a
//! re-route of the session plus a control message, and the control
//! stream's backlog while QUIC's flow control holds it back.

use std::time::Instant;

use bytes::{BufMut, Bytes};
use lanegate_common::frame::{put_frame, varint_len};
use lanegate_common::lanes::Lane;
use lanegate_common::link::{Body, ToGateway};
use lanegate_common::wire::{Message, Transport, ZoneChanged, ZoneReset};
use lanegate_shard::port::GatewayPort;

use super::egress::{LaneRoute, StagedDatagrams};
use super::{Admission, Engine};

impl<A: Admission> Engine<A> {
    /// Reads up to `max` entries from the shards through `links` and
    /// delivers each ([`Engine::handle_from_shard`]), then re-routes the
    /// sessions the games moved to another zone: a join on the new zone's
    /// shard, after the old shard's leave and before any later message of
    /// the session. Returns how many entries were read. The core loop and
    /// the tests read the shards only through this.
    pub fn poll_shards(&mut self, now: Instant, links: &mut GatewayPort, max: usize) -> usize {
        links.set_time(now);
        let read = links.poll(max, |_, message| self.deliver(now, message));
        self.send_staged();
        for i in 0..self.zone_changes.len() {
            let (idx, session, player, zone) = self.zone_changes[i];
            // Only a session still live here is re-joined: one that closed
            // meanwhile has left (its leave went to the old shard, which
            // had already forgotten it).
            if self.slot_of(session) != Some(idx) {
                continue;
            }
            links.rejoin(session, player, zone);
            self.notify_zone_changed(idx, zone);
        }
        self.zone_changes.clear();
        self.close_replaced(now, links);
        read
    }

    /// Delivers one shard message at once, as [`Engine::poll_shards`] does
    /// for each it reads (for tests that hand the engine a message).
    pub fn handle_from_shard(&mut self, now: Instant, message: &ToGateway) {
        self.deliver(now, message);
        self.send_staged();
    }

    /// Delivers a shard's message, lent by the port's
    /// [`poll`](GatewayPort::poll) (which gives its buffer back to its pool
    /// afterwards): game messages to their session(s) on the transport the
    /// shard chose, `ZoneReset` as the control message on each of the
    /// zone's control streams. The payload is copied before this returns:
    /// into QUIC, a stream backlog, or (lower lanes' datagrams) the turn's
    /// stage, which [`Engine::send_staged`] empties.
    fn deliver(&mut self, now: Instant, message: &ToGateway) {
        let _ = now;
        match message {
            ToGateway::Unicast { session, body, .. } => match self.slot_of(*session) {
                Some(idx) => self.send_body(idx, body, body.payload.as_slice()),
                None => self.counters.unknown_session += 1,
            },
            ToGateway::Broadcast { zone, body } => {
                for idx in 0..self.slots.len() {
                    if self.zone_of(idx) == Some(*zone) {
                        self.send_body(idx, body, body.payload.as_slice());
                    }
                }
            }
            ToGateway::ZoneReset { zone } => {
                let zone = *zone;
                self.with_control_frame(Message::ZoneReset(ZoneReset { zone }), |e, frame| {
                    for idx in 0..e.slots.len() {
                        if e.zone_of(idx) == Some(zone) {
                            e.write_control(idx, frame);
                        }
                    }
                });
            }
            ToGateway::ZoneChanged {
                session,
                player,
                to,
                ..
            } => match self.slot_of(*session) {
                Some(idx) => {
                    if let Some(s) = self.slots[idx].session.as_mut() {
                        s.move_to(*to);
                    }
                    self.zone_changes.push((idx, *session, *player, *to));
                }
                None => self.counters.unknown_session += 1,
            },
            ToGateway::SessionReplaced { session, .. } => self.note_replaced(*session),
            _ => self.counters.unhandled_from_shard += 1,
        }
    }

    /// Tells the client its zone changed, on the control stream.
    fn notify_zone_changed(&mut self, idx: usize, zone: lanegate_common::ids::ZoneId) {
        let changed = ZoneChanged {
            zone,
            tick_rate_hz: self.params.welcome.tick_rate_hz,
        };
        self.with_control_frame(Message::ZoneChanged(changed), |e, frame| {
            e.write_control(idx, frame);
        });
    }

    /// Encodes and frames one of the gateway's own control messages in the
    /// engine's scratch buffers (once, however many sessions it goes to)
    /// and hands the frame to `write`. Our messages always encode (fixed
    /// layouts).
    pub(super) fn with_control_frame(
        &mut self,
        message: Message<'_>,
        write: impl FnOnce(&mut Self, &[u8]),
    ) {
        let mut encoded = std::mem::take(&mut self.scratch);
        let mut frame = std::mem::take(&mut self.scratch_frame);
        encoded.clear();
        frame.clear();
        if message.encode(&mut encoded).is_ok() {
            put_frame(&encoded, &mut frame);
            write(self, &frame);
        }
        self.scratch = encoded;
        self.scratch_frame = frame;
    }

    /// Moves the session's reply into the control stream.
    pub(super) fn flush_reply(&mut self, idx: usize) {
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
    pub(super) fn flush_control(&mut self, idx: usize) {
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
    pub(super) fn write_control(&mut self, idx: usize, frame: &[u8]) {
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

    pub(super) fn send_body(&mut self, idx: usize, body: &Body, payload: &[u8]) {
        let (ty, transport, lane) = (body.ty, body.transport, body.lane);
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
            Transport::Datagram => self.send_datagram(idx, lane, ty, payload),
            Transport::Stream => self.send_stream_message(idx, lane, ty, payload),
        }
    }

    /// Copies a datagram into the send arena and hands it to QUIC, or (a
    /// lower lane's) to the turn's stage.
    fn send_datagram(&mut self, idx: usize, lane: Lane, ty: u16, payload: &[u8]) {
        let len = 2 + payload.len();
        let Some(conn) = self.slots[idx].conn.as_mut() else {
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
        if lane == Lane::Critical {
            self.queue_datagram(idx, lane, bytes);
        } else if let Err(bytes) = self.staged.stage(idx, lane, bytes) {
            // The stage is full this turn: in arrival order, then.
            self.queue_datagram(idx, lane, bytes);
        }
    }

    /// Hands this turn's staged datagrams to QUIC, `high` first.
    pub(super) fn send_staged(&mut self) {
        if self.staged.is_empty() {
            return;
        }
        let mut staged = std::mem::replace(&mut self.staged, StagedDatagrams::with_capacity(0));
        staged.drain(|idx, lane, bytes| self.queue_datagram(idx, lane, bytes));
        self.staged = staged;
    }

    /// Hands one datagram to QUIC within its lane's share of the send
    /// buffer (`egress.rs`).
    fn queue_datagram(&mut self, idx: usize, lane: Lane, bytes: Bytes) {
        let Some(conn) = self.slots[idx].conn.as_mut() else {
            return;
        };
        let space = conn.datagrams().send_buffer_space();
        if !self
            .params
            .send_shares
            .datagram_fits(lane, space, bytes.len())
        {
            if lane != Lane::Critical {
                self.counters.out_congested[lane.index()] += 1;
                return;
            }
            // Critical pushes out the oldest queued datagram.
            if space < bytes.len() {
                self.counters.out_congested[lane.index()] += 1;
            }
        }
        match conn.datagrams().send(bytes, true) {
            Ok(()) => {
                self.counters.datagrams_out += 1;
                self.counters.messages_out[lane.index()] += 1;
            }
            Err(_) => self.counters.datagrams_out_dropped += 1,
        }
        self.mark_dirty(idx);
    }

    /// Frames a reliable message onto its lane's stream: the control
    /// stream for `critical`, the lane's own stream for the others.
    fn send_stream_message(&mut self, idx: usize, lane: Lane, ty: u16, payload: &[u8]) {
        let len = 2 + payload.len();
        let frame = |out: &mut Vec<u8>| {
            lanegate_common::frame::put_varint(len as u64, out);
            out.extend_from_slice(&ty.to_be_bytes());
            out.extend_from_slice(payload);
        };
        let max = self.params.stream_out_bytes_max;
        let backlog_max = self.params.lane_backlog_bytes_max;
        let slot = &mut self.slots[idx];
        let (Some(conn), Some(_)) = (slot.conn.as_mut(), slot.control) else {
            self.counters.stream_out_dropped += 1;
            return;
        };
        let route = if lane == Lane::Critical {
            LaneRoute::Control
        } else {
            slot.lanes.route(conn, lane)
        };
        match route {
            LaneRoute::Control => {
                if slot.pending.len() + varint_len(len as u64) + len > max {
                    self.counters.out_congested[lane.index()] += 1;
                    return;
                }
                frame(&mut slot.pending);
                self.counters.stream_messages_out += 1;
                self.counters.messages_out[lane.index()] += 1;
                self.flush_control(idx);
            }
            LaneRoute::Stream(_) => {
                if !slot.lanes.queue(lane, backlog_max, frame) {
                    self.counters.out_congested[lane.index()] += 1;
                    return;
                }
                self.counters.stream_messages_out += 1;
                self.counters.messages_out[lane.index()] += 1;
                self.flush_lanes(idx);
            }
        }
    }

    /// Hands the lane streams' backlogs to QUIC, each within its share.
    pub(super) fn flush_lanes(&mut self, idx: usize) {
        let shares = self.params.send_shares;
        let slot = &mut self.slots[idx];
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        if slot.lanes.flush(conn, &shares) {
            slot.unsent = true;
        }
        self.mark_dirty(idx);
    }
}
