//! The per-connection protocol state machine (`docs/protocol.md` §4), pure:
//! no QUIC types, no clock reads, no IO.
//!
//! ```text
//! Handshake ──start──▶ AwaitingHello{deadline} ──Hello ok──▶ Established{session, player, zone}
//!                            │                                     │
//!                            └──bad Hello / violation / timeout ──▶ Closing{code} ◀── violation, end
//! ```
//!
//! The engine feeds it control-stream bytes, bytes of client uni streams and
//! datagrams; it answers with replies to write on the control stream
//! ([`Session::take_reply`]), game messages pushed into a [`SessionSink`]
//! (after [`SessionSink::established`], so a shard always sees `Join` first),
//! and a [`Close`] when the connection must close. Every buffer is allocated
//! when the session is first created and reused when its connection slot is
//! reused.

use std::time::Instant;

use lanegate_common::frame::FrameReader;
use lanegate_common::lanes::MessageClass;
use lanegate_common::wire::{self, CloseCode, Transport};

use self::message::on_stream_message;

mod hello;
mod interface;
mod message;

pub use self::interface::{
    Close, CloseCause, DatagramOutcome, Established, GameIn, SessionCtx, SessionSink, StreamRef,
    WelcomeParams,
};

/// Client unidirectional streams a session reads at once (the transport's
/// `max_concurrent_uni_streams`).
pub const UNI_STREAMS_MAX: usize = lanegate_common::config::UNI_STREAMS_LIMIT as usize;

/// Frame readers of a session: the control stream's, then one per uni stream.
pub const FRAME_READERS: usize = 1 + UNI_STREAMS_MAX;

/// Where a session is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// QUIC is still handshaking; nothing has been read.
    Handshake,
    /// Handshake done; waiting for `Hello` until `deadline`.
    AwaitingHello {
        /// When the connection closes with `HELLO_TIMEOUT`.
        deadline: Instant,
    },
    /// `Welcome` sent; game messages flow.
    Established(Established),
    /// The connection is closing (or closed) with `code`; input is ignored.
    Closing {
        /// The application close code.
        code: CloseCode,
    },
}

/// One connection's protocol state and buffers.
#[derive(Debug)]
pub struct Session {
    phase: Phase,
    stream_message_bytes_max: usize,
    datagram_message_bytes_max: usize,
    control: FrameReader,
    uni: [UniReader; UNI_STREAMS_MAX],
    /// Framed messages to write on the control stream.
    reply: Vec<u8>,
    /// Encoding scratch for one message.
    scratch: Vec<u8>,
}

#[derive(Debug, Default)]
struct UniReader {
    stream: Option<u64>,
    /// Allocated on the first uni stream, kept for the slot's life.
    reader: Option<FrameReader>,
}

impl Session {
    /// A session in [`Phase::Handshake`]; its frame readers allocate their
    /// buffers on their first bytes, and keep them for the slot's next
    /// connections.
    pub fn new(stream_message_bytes_max: usize, datagram_message_bytes_max: usize) -> Self {
        Self {
            phase: Phase::Handshake,
            stream_message_bytes_max,
            datagram_message_bytes_max,
            control: FrameReader::new(stream_message_bytes_max),
            uni: Default::default(),
            reply: Vec::with_capacity(256),
            scratch: Vec::with_capacity(256),
        }
    }

    /// Makes a used session new again (the slot is reused), keeping buffers.
    pub fn reset(&mut self) {
        self.phase = Phase::Handshake;
        if self.control.buffered() != 0 {
            self.control = FrameReader::new(self.stream_message_bytes_max);
        }
        for uni in &mut self.uni {
            uni.stream = None;
            if uni.reader.as_ref().is_some_and(|r| r.buffered() != 0) {
                uni.reader = Some(FrameReader::new(self.stream_message_bytes_max));
            }
        }
        self.reply.clear();
    }

    /// Per frame reader (the control stream's, then each uni stream's):
    /// the frames it has completed, if it is inside a frame now. The engine
    /// times how long each stays inside one (`engine/stall.rs`).
    pub fn frames_in_progress(&self) -> [Option<u64>; FRAME_READERS] {
        let partial = |r: &FrameReader| (r.buffered() > 0).then(|| r.frames());
        let mut out = [None; FRAME_READERS];
        out[0] = partial(&self.control);
        for (o, u) in out[1..].iter_mut().zip(&self.uni) {
            *o = u.reader.as_ref().and_then(partial);
        }
        out
    }

    /// The handshake finished: wait for `Hello` until `deadline`.
    pub fn start(&mut self, deadline: Instant) {
        if self.phase == Phase::Handshake {
            self.phase = Phase::AwaitingHello { deadline };
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The session's ids, once established (and until it closes).
    pub fn established(&self) -> Option<Established> {
        match self.phase {
            Phase::Established(e) => Some(e),
            _ => None,
        }
    }

    /// The game moved the player to `zone`: later messages are tagged with
    /// it. Returns whether the session was established (else nothing
    /// changes).
    pub fn move_to(&mut self, zone: lanegate_common::ids::ZoneId) -> bool {
        match &mut self.phase {
            Phase::Established(e) => {
                e.zone = zone;
                true
            }
            _ => false,
        }
    }

    /// When [`Session::on_timeout`] must next be called.
    pub fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::AwaitingHello { deadline } => Some(deadline),
            _ => None,
        }
    }

    /// Bytes to write on the control stream (framed); the caller drains them.
    pub fn take_reply(&mut self) -> &mut Vec<u8> {
        &mut self.reply
    }

    /// Closes with `code` for a reason outside the protocol (drain, full,
    /// datagrams missing). `None` if it was already closing.
    pub fn close(&mut self, code: CloseCode, cause: CloseCause) -> Option<Close> {
        if matches!(self.phase, Phase::Closing { .. }) {
            return None;
        }
        let left = self.established();
        self.phase = Phase::Closing { code };
        Some(Close { code, cause, left })
    }

    /// Checks the `Hello` deadline.
    pub fn on_timeout(&mut self, now: Instant) -> Result<(), Close> {
        match self.phase {
            Phase::AwaitingHello { deadline } if now >= deadline => {
                Err(self.fail(CloseCode::HelloTimeout, CloseCause::HelloTimeout))
            }
            _ => Ok(()),
        }
    }

    /// Bytes read from a client stream.
    pub fn on_stream(
        &mut self,
        stream: StreamRef,
        data: &[u8],
        ctx: &SessionCtx<'_>,
        sink: &mut impl SessionSink,
    ) -> Result<(), Close> {
        if matches!(self.phase, Phase::Closing { .. } | Phase::Handshake) {
            return Ok(());
        }
        let mut verdict: Option<(CloseCode, CloseCause)> = None;
        let Self {
            phase,
            control,
            uni,
            reply,
            scratch,
            stream_message_bytes_max,
            ..
        } = self;
        let reader = match stream {
            StreamRef::Control => control,
            StreamRef::Uni(id) => {
                if !matches!(phase, Phase::Established(_)) {
                    return Err(
                        self.fail(CloseCode::ProtocolViolation, CloseCause::StreamNotAllowed)
                    );
                }
                match uni_reader(uni, id, *stream_message_bytes_max) {
                    Some(r) => r,
                    None => {
                        return Err(
                            self.fail(CloseCode::ProtocolViolation, CloseCause::StreamNotAllowed)
                        );
                    }
                }
            }
        };
        let fed = reader.feed(data, |message| {
            if verdict.is_none() {
                verdict = on_stream_message(phase, message, ctx, reply, scratch, sink).err();
            }
        });
        if let Err(_framing) = fed {
            verdict.get_or_insert((CloseCode::ProtocolViolation, CloseCause::Framing));
        }
        match verdict {
            Some((code, cause)) => Err(self.fail(code, cause)),
            None => Ok(()),
        }
    }

    /// A client stream finished (`reset` false) or was reset (`reset` true).
    pub fn on_stream_end(&mut self, stream: StreamRef, reset: bool) -> Result<(), Close> {
        if matches!(self.phase, Phase::Closing { .. }) {
            return Ok(());
        }
        match stream {
            // Finishing the control stream ends the session; finishing it
            // inside a frame is a framing violation (protocol §2 and §4).
            StreamRef::Control if !reset && self.control.finish().is_err() => {
                Err(self.fail(CloseCode::ProtocolViolation, CloseCause::Framing))
            }
            StreamRef::Control => {
                Err(self.fail(CloseCode::NoError, CloseCause::ControlStreamEnded))
            }
            StreamRef::Uni(id) => {
                let Some(slot) = self.uni.iter_mut().find(|u| u.stream == Some(id)) else {
                    return Ok(());
                };
                slot.stream = None;
                let unfinished = slot.reader.as_ref().is_some_and(|r| r.finish().is_err());
                if unfinished {
                    // Drop the partial frame with a fresh reader (rare: a
                    // broken or resetting client).
                    slot.reader = Some(FrameReader::new(self.stream_message_bytes_max));
                    if !reset {
                        return Err(self.fail(CloseCode::ProtocolViolation, CloseCause::Framing));
                    }
                }
                Ok(())
            }
        }
    }

    /// One QUIC datagram.
    pub fn on_datagram(
        &mut self,
        data: &[u8],
        ctx: &SessionCtx<'_>,
        sink: &mut impl SessionSink,
    ) -> Result<DatagramOutcome, Close> {
        let Phase::Established(est) = self.phase else {
            return Ok(DatagramOutcome::NotEstablished);
        };
        if data.len() > self.datagram_message_bytes_max {
            return Ok(DatagramOutcome::Oversize);
        }
        let Ok(ty) = wire::peek_type(data) else {
            return Ok(DatagramOutcome::Malformed);
        };
        let MessageClass::Game(lane) = ctx.lanes.classify(ty) else {
            return Ok(DatagramOutcome::Control);
        };
        let message = GameIn {
            ty,
            lane,
            transport: Transport::Datagram,
            payload: &data[2..],
        };
        match sink.game(est, message) {
            Ok(()) => Ok(DatagramOutcome::Delivered),
            Err(code) => Err(self.fail(code, CloseCause::Admission)),
        }
    }

    fn fail(&mut self, code: CloseCode, cause: CloseCause) -> Close {
        let left = self.established();
        self.phase = Phase::Closing { code };
        Close { code, cause, left }
    }
}

/// The reader of uni stream `id`, taking a free one for a new stream.
fn uni_reader(
    uni: &mut [UniReader; UNI_STREAMS_MAX],
    id: u64,
    stream_message_bytes_max: usize,
) -> Option<&mut FrameReader> {
    let index = match uni.iter().position(|u| u.stream == Some(id)) {
        Some(i) => i,
        None => {
            let i = uni.iter().position(|u| u.stream.is_none())?;
            uni[i].stream = Some(id);
            i
        }
    };
    Some(
        uni[index]
            .reader
            .get_or_insert_with(|| FrameReader::new(stream_message_bytes_max)),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lanegate_common::config::ZoneSet;
    use lanegate_common::frame::put_frame;
    use lanegate_common::ids::{KeyId, PlayerId, SessionId, ZoneId};
    use lanegate_common::lanes::{Lane, LaneTable};
    use lanegate_common::ticket::{KeySet, Secret, Ticket, TicketError};
    use lanegate_common::wire::{Hello, LaneLimit, Message, types};

    use super::*;
    use crate::engine::admit::BanList;

    const NOW_S: u64 = 1_767_225_600;

    #[derive(Default)]
    struct Sink {
        joined: Vec<Established>,
        games: Vec<(u16, Lane, Transport, Vec<u8>)>,
        close_on_game: Option<CloseCode>,
    }

    impl SessionSink for Sink {
        fn established(&mut self, session: Established) {
            self.joined.push(session);
        }
        fn game(&mut self, _s: Established, m: GameIn<'_>) -> Result<(), CloseCode> {
            self.games
                .push((m.ty, m.lane, m.transport, m.payload.to_vec()));
            match self.close_on_game {
                Some(code) => Err(code),
                None => Ok(()),
            }
        }
    }

    struct Fixture {
        lanes: LaneTable,
        keys: KeySet,
        zones: ZoneSet,
        welcome: WelcomeParams,
        bans: BanList,
        now: Instant,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                lanes: LaneTable::new(&LaneTable::default_rules(), Lane::Bulk).unwrap(),
                keys: KeySet::dev(),
                zones: ZoneSet::default(),
                welcome: WelcomeParams {
                    tick_rate_hz: 30,
                    datagram_message_bytes_max: 1100,
                    stream_message_bytes_max: 16384,
                    lane_limits: [LaneLimit {
                        rate_per_s: 10,
                        burst: 20,
                    }; 4],
                },
                bans: BanList::new(Duration::from_secs(60), 4),
                now: Instant::now(),
            }
        }
        fn ctx(&self) -> SessionCtx<'_> {
            SessionCtx {
                lanes: &self.lanes,
                keys: &self.keys,
                zones: &self.zones,
                unix_now_s: NOW_S,
                clock_skew_s: 30,
                welcome: &self.welcome,
                session: SessionId(77),
                shard_available: true,
                bans: &self.bans,
                now: self.now,
            }
        }
        fn ticket(&self, expires_at_s: u64) -> String {
            self.keys
                .mint(&Ticket {
                    key_id: KeyId(0),
                    player: PlayerId(5),
                    zone: ZoneId(9),
                    issued_at_s: NOW_S - 3600,
                    expires_at_s,
                })
                .unwrap()
        }
    }

    fn frame(message: &Message<'_>) -> Vec<u8> {
        let mut m = Vec::new();
        message.encode(&mut m).unwrap();
        let mut out = Vec::new();
        put_frame(&m, &mut out);
        out
    }

    fn hello(version: u16, ticket: &str) -> Vec<u8> {
        frame(&Message::Hello(Hello {
            version,
            ticket: ticket.as_bytes(),
        }))
    }

    fn started() -> (Session, Instant) {
        let now = Instant::now();
        let mut s = Session::new(16384, 1100);
        assert_eq!(s.phase(), Phase::Handshake);
        s.start(now + Duration::from_secs(5));
        (s, now)
    }

    fn replies(s: &mut Session) -> Vec<u8> {
        std::mem::take(s.take_reply())
    }

    fn decode_reply(bytes: &[u8]) -> Vec<u16> {
        let mut types = Vec::new();
        let mut r = FrameReader::new(16384);
        r.feed(bytes, |m| types.push(wire::peek_type(m).unwrap()))
            .unwrap();
        types
    }

    fn established(fx: &Fixture) -> (Session, Sink) {
        let (mut s, _) = started();
        let mut sink = Sink::default();
        s.on_stream(
            StreamRef::Control,
            &hello(1, &fx.ticket(NOW_S + 60)),
            &fx.ctx(),
            &mut sink,
        )
        .unwrap();
        replies(&mut s);
        (s, sink)
    }

    #[test]
    fn good_hello_establishes_and_welcomes() {
        let fx = Fixture::new();
        let (mut s, _) = started();
        let mut sink = Sink::default();
        s.on_stream(
            StreamRef::Control,
            &hello(1, &fx.ticket(NOW_S + 60)),
            &fx.ctx(),
            &mut sink,
        )
        .unwrap();
        let est = Established {
            session: SessionId(77),
            player: PlayerId(5),
            zone: ZoneId(9),
        };
        assert_eq!(s.phase(), Phase::Established(est));
        assert_eq!(sink.joined, vec![est]);
        let reply = replies(&mut s);
        assert_eq!(decode_reply(&reply), vec![types::WELCOME]);
        // Welcome is 65 bytes: a two-byte length varint.
        let Ok(Message::Welcome(w)) = Message::decode(&reply[2..]) else {
            panic!("not a welcome");
        };
        assert_eq!(w.lane_limits, fx.welcome.lane_limits);
        assert_eq!(w.tick_rate_hz, 30);
        assert_eq!(s.deadline(), None);
    }

    #[test]
    fn hello_split_across_reads_still_establishes() {
        let fx = Fixture::new();
        let (mut s, _) = started();
        let mut sink = Sink::default();
        let bytes = hello(1, &fx.ticket(NOW_S + 60));
        for b in bytes.chunks(7) {
            s.on_stream(StreamRef::Control, b, &fx.ctx(), &mut sink)
                .unwrap();
        }
        assert!(s.established().is_some());
    }

    #[test]
    fn wrong_version_rejects_with_unsupported_version() {
        let fx = Fixture::new();
        let (mut s, _) = started();
        let err = s
            .on_stream(
                StreamRef::Control,
                &hello(2, &fx.ticket(NOW_S + 60)),
                &fx.ctx(),
                &mut Sink::default(),
            )
            .unwrap_err();
        assert_eq!(err.code, CloseCode::UnsupportedVersion);
        assert_eq!(decode_reply(&replies(&mut s)), vec![types::REJECT]);
        assert_eq!(
            s.phase(),
            Phase::Closing {
                code: CloseCode::UnsupportedVersion
            }
        );
    }

    #[test]
    fn with_no_shard_available_a_good_hello_is_rejected_and_nothing_joins() {
        let fx = Fixture::new();
        let (mut s, _) = started();
        let mut sink = Sink::default();
        let ctx = SessionCtx {
            shard_available: false,
            ..fx.ctx()
        };
        let err = s
            .on_stream(
                StreamRef::Control,
                &hello(1, &fx.ticket(NOW_S + 60)),
                &ctx,
                &mut sink,
            )
            .unwrap_err();
        assert_eq!(err.code, CloseCode::ShardUnavailable);
        assert_eq!(err.cause, CloseCause::ShardUnavailable);
        assert_eq!(err.left, None, "never established");
        assert!(sink.joined.is_empty(), "no join reached the links");
        let reply = replies(&mut s);
        let Ok(Message::Reject(r)) = Message::decode(&reply[1..]) else {
            panic!("not a reject");
        };
        assert_eq!(r.code, CloseCode::ShardUnavailable.code());
    }

    #[test]
    fn expired_ticket_rejects_with_ticket_expired() {
        let fx = Fixture::new();
        let (mut s, _) = started();
        let err = s
            .on_stream(
                StreamRef::Control,
                &hello(1, &fx.ticket(NOW_S - 100)),
                &fx.ctx(),
                &mut Sink::default(),
            )
            .unwrap_err();
        assert_eq!(err.code, CloseCode::TicketExpired);
        assert!(matches!(
            err.cause,
            CloseCause::Ticket(TicketError::Expired { .. })
        ));
        assert_eq!(err.left, None);
        let reply = replies(&mut s);
        let Ok(Message::Reject(r)) = Message::decode(&reply[1..]) else {
            panic!("not a reject");
        };
        assert_eq!(r.code, CloseCode::TicketExpired.code());
    }

    #[test]
    fn forged_and_garbage_tickets_reject_with_bad_ticket() {
        let fx = Fixture::new();
        let other = KeySet::new(vec![(KeyId(0), Secret::new(&[7u8; 32]).unwrap())]).unwrap();
        let forged = other
            .mint(&Ticket {
                key_id: KeyId(0),
                player: PlayerId(5),
                zone: ZoneId(9),
                issued_at_s: NOW_S,
                expires_at_s: NOW_S + 60,
            })
            .unwrap();
        for ticket in [forged.as_str(), "not a ticket"] {
            let (mut s, _) = started();
            let mut sink = Sink::default();
            let err = s
                .on_stream(StreamRef::Control, &hello(1, ticket), &fx.ctx(), &mut sink)
                .unwrap_err();
            assert_eq!(err.code, CloseCode::BadTicket);
            assert!(sink.joined.is_empty());
        }
    }

    #[test]
    fn anything_but_hello_first_is_a_violation() {
        let fx = Fixture::new();
        let (mut s, _) = started();
        let game = frame(&Message::Game(wire::GameMessage {
            ty: 0x1fff,
            payload: &[1],
        }));
        let err = s
            .on_stream(StreamRef::Control, &game, &fx.ctx(), &mut Sink::default())
            .unwrap_err();
        assert_eq!(err.code, CloseCode::ProtocolViolation);
        assert_eq!(err.cause, CloseCause::NotHello);
    }

    #[test]
    fn uni_stream_before_welcome_is_a_violation() {
        let fx = Fixture::new();
        let (mut s, _) = started();
        let err = s
            .on_stream(StreamRef::Uni(2), &[1, 2], &fx.ctx(), &mut Sink::default())
            .unwrap_err();
        assert_eq!(err.cause, CloseCause::StreamNotAllowed);
    }

    #[test]
    fn bad_frame_length_is_a_framing_violation() {
        let fx = Fixture::new();
        let (mut s, _) = started();
        let err = s
            .on_stream(
                StreamRef::Control,
                &[0x01, 0x00],
                &fx.ctx(),
                &mut Sink::default(),
            )
            .unwrap_err();
        assert_eq!(err.cause, CloseCause::Framing);
    }

    #[test]
    fn hello_timeout_closes_only_after_the_deadline() {
        let (mut s, now) = started();
        assert_eq!(s.deadline(), Some(now + Duration::from_secs(5)));
        s.on_timeout(now + Duration::from_secs(4)).unwrap();
        let err = s.on_timeout(now + Duration::from_secs(5)).unwrap_err();
        assert_eq!(err.code, CloseCode::HelloTimeout);
        assert_eq!(s.deadline(), None);
    }

    #[test]
    fn game_messages_come_out_typed_after_welcome() {
        let fx = Fixture::new();
        let (mut s, mut sink) = established(&fx);
        let game = frame(&Message::Game(wire::GameMessage {
            ty: 0x2001,
            payload: &[9, 9],
        }));
        s.on_stream(StreamRef::Control, &game, &fx.ctx(), &mut sink)
            .unwrap();
        s.on_stream(StreamRef::Uni(2), &game, &fx.ctx(), &mut sink)
            .unwrap();
        let out = s
            .on_datagram(&[0x1f, 0xff, 1], &fx.ctx(), &mut sink)
            .unwrap();
        assert_eq!(out, DatagramOutcome::Delivered);
        assert_eq!(
            sink.games,
            vec![
                (0x2001, Lane::High, Transport::Stream, vec![9, 9]),
                (0x2001, Lane::High, Transport::Stream, vec![9, 9]),
                (0x1fff, Lane::Critical, Transport::Datagram, vec![1]),
            ]
        );
    }

    #[test]
    fn control_types_after_welcome_close_on_streams_and_drop_in_datagrams() {
        let fx = Fixture::new();
        let (mut s, mut sink) = established(&fx);
        let out = s
            .on_datagram(&[0x00, 0x04, 0, 0, 0, 1], &fx.ctx(), &mut sink)
            .unwrap();
        assert_eq!(out, DatagramOutcome::Control);
        let again = hello(1, &fx.ticket(NOW_S + 60));
        let err = s
            .on_stream(StreamRef::Control, &again, &fx.ctx(), &mut sink)
            .unwrap_err();
        assert_eq!(err.cause, CloseCause::ControlAfterWelcome);
        assert_eq!(err.left.map(|e| e.player), Some(PlayerId(5)));
    }

    #[test]
    fn datagrams_before_welcome_and_malformed_ones_are_dropped() {
        let fx = Fixture::new();
        let (mut s, _) = started();
        let mut sink = Sink::default();
        assert_eq!(
            s.on_datagram(&[0x1f, 0xff], &fx.ctx(), &mut sink).unwrap(),
            DatagramOutcome::NotEstablished
        );
        let (mut s, mut sink) = established(&fx);
        assert_eq!(
            s.on_datagram(&[0x1f], &fx.ctx(), &mut sink).unwrap(),
            DatagramOutcome::Malformed
        );
        assert_eq!(
            s.on_datagram(&[0x1f; 1101], &fx.ctx(), &mut sink).unwrap(),
            DatagramOutcome::Oversize
        );
        assert!(sink.games.is_empty());
    }

    #[test]
    fn admission_close_ends_the_session() {
        let fx = Fixture::new();
        let (mut s, mut sink) = established(&fx);
        sink.close_on_game = Some(CloseCode::Abuse);
        let err = s
            .on_datagram(&[0x1f, 0xff], &fx.ctx(), &mut sink)
            .unwrap_err();
        assert_eq!(err.code, CloseCode::Abuse);
        assert_eq!(
            s.phase(),
            Phase::Closing {
                code: CloseCode::Abuse
            }
        );
        // Closed sessions ignore input.
        assert_eq!(
            s.on_datagram(&[0x1f, 0xff], &fx.ctx(), &mut sink).unwrap(),
            DatagramOutcome::NotEstablished
        );
    }

    #[test]
    fn control_stream_end_closes_with_no_error_and_uni_end_mid_frame_violates() {
        let fx = Fixture::new();
        let (mut s, mut sink) = established(&fx);
        s.on_stream(StreamRef::Uni(6), &[0x05, 0x10], &fx.ctx(), &mut sink)
            .unwrap();
        let err = s.on_stream_end(StreamRef::Uni(6), false).unwrap_err();
        assert_eq!(err.cause, CloseCause::Framing);

        let (mut s, _) = established(&fx);
        let err = s.on_stream_end(StreamRef::Control, false).unwrap_err();
        assert_eq!(err.code, CloseCode::NoError);
        assert!(err.left.is_some());
    }

    #[test]
    fn engine_close_reports_the_session_once_and_reset_reuses() {
        let fx = Fixture::new();
        let (mut s, _) = established(&fx);
        let close = s
            .close(CloseCode::ServerDraining, CloseCause::Engine)
            .unwrap();
        assert!(close.left.is_some());
        assert!(
            s.close(CloseCode::ServerDraining, CloseCause::Engine)
                .is_none()
        );
        s.reset();
        assert_eq!(s.phase(), Phase::Handshake);
    }
}
