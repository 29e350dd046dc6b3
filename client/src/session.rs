//! The client side of the protocol v1 session, without IO.
//!
//! A [`Session`] turns what the gateway sends (control-stream bytes, the
//! bytes of its lane streams, datagrams, the close code) into [`Event`]s, and what the game wants to send
//! into correctly framed bytes that respect the limits the gateway announced
//! in `Welcome`. The QUIC transport that carries those bytes sits on top of
//! it; tests drive it directly.

use lanegate_common::frame::{FrameError, FrameReader, put_frame};
use lanegate_common::ids::{PlayerId, SessionId, ZoneId};
use lanegate_common::lanes::GAME_TYPE_FIRST;
use lanegate_common::wire::{
    CloseCode, DecodeError, GameMessage, Hello, LaneLimit, Message, PROTOCOL_VERSION, Transport,
    WELCOME_LANES,
};

/// Default bound on a message the client accepts on the control stream. The
/// gateway's frames are bounded by its `stream_message_bytes_max` (16384 by
/// default); this leaves room for gateways configured higher.
pub const RECV_MESSAGE_BYTES_MAX_DEFAULT: usize = 65_536;

/// Unidirectional streams the gateway opens at most: one each for the
/// reliable messages of `high`, `normal` and `bulk` (`docs/protocol.md` §3;
/// `critical` shares the control stream). A client allows the gateway this
/// many (QUIC's `max_concurrent_uni_streams`).
pub const LANE_STREAMS_MAX: usize = LANE_STREAMS_MAX_U8 as usize;
/// [`LANE_STREAMS_MAX`] for QUIC's stream-limit types.
pub const LANE_STREAMS_MAX_U8: u8 = 3;

/// What the gateway granted in `Welcome`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// The gateway's id for this session; quote it in support requests.
    pub session: SessionId,
    /// The player the ticket named.
    pub player: PlayerId,
    /// The zone the player is in.
    pub zone: ZoneId,
    /// The zone's ticks per second.
    pub tick_rate_hz: u16,
    /// Largest `type + payload` the gateway accepts in a datagram.
    pub datagram_message_bytes_max: u16,
    /// Largest `type + payload` the gateway accepts in a stream frame.
    pub stream_message_bytes_max: u32,
    /// Per-lane limits, in lane order (critical, high, normal, bulk).
    pub lane_limits: [LaneLimit; WELCOME_LANES],
}

/// Something the gateway told the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The session is established.
    Welcome(SessionInfo),
    /// The gateway refused the session; a close with `reason.code` follows.
    Rejected(Closed),
    /// The zone's game state was reset; resend what the game needs.
    ZoneReset(ZoneId),
    /// The game moved the player to another zone; [`Session::info`] now
    /// names it. Messages sent from here on go to the new zone.
    ZoneChanged {
        /// The zone the player is in now.
        zone: ZoneId,
        /// Ticks per second of the new zone's shard.
        tick_rate_hz: u16,
    },
    /// A game message.
    Message {
        /// Its type.
        ty: u16,
        /// Its payload.
        payload: Vec<u8>,
        /// How it arrived.
        transport: Transport,
    },
}

/// Why the session ended, as the gateway said it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Closed {
    /// The close code; unknown numbers map to [`CloseCode::InternalError`],
    /// as `docs/protocol.md` §7 requires.
    pub code: CloseCode,
    /// The gateway's reason text, for logs.
    pub reason: String,
}

impl Closed {
    /// The close from a raw application error code and reason.
    pub fn from_raw(code: u64, reason: &[u8]) -> Self {
        Self {
            code: CloseCode::from_code(code).unwrap_or(CloseCode::InternalError),
            reason: String::from_utf8_lossy(reason).into_owned(),
        }
    }

    /// What a client should do next, per `docs/protocol.md` §7.
    pub fn advice(&self) -> Retry {
        match self.code {
            CloseCode::NoError => Retry::No,
            CloseCode::ProtocolViolation
            | CloseCode::UnsupportedVersion
            | CloseCode::DatagramsRequired => Retry::FixClient,
            // UNKNOWN_ZONE: the backend sent the player to a zone this
            // gateway does not serve; the same ticket fails the same way.
            CloseCode::BadTicket | CloseCode::TicketExpired | CloseCode::UnknownZone => {
                Retry::NewTicket
            }
            CloseCode::HelloTimeout | CloseCode::ServerDraining => Retry::Now,
            CloseCode::Abuse => Retry::AfterSeconds(60),
            CloseCode::SessionReplaced => Retry::OnlyIfAsked,
            _ => Retry::Backoff,
        }
    }
}

/// Reconnection advice for a close code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// A normal close: nothing to do.
    No,
    /// The client is broken; retrying will fail the same way.
    FixClient,
    /// Ask the backend for a fresh ticket, then reconnect.
    NewTicket,
    /// Reconnect at once (through the matchmaker, for a draining gateway).
    Now,
    /// Reconnect with exponential backoff (1 s doubling, capped at 30 s).
    Backoff,
    /// Wait at least this long before reconnecting.
    AfterSeconds(u32),
    /// `SESSION_REPLACED`: another client of the same player holds the
    /// session now (a second device, or a reconnect of this one). Do not
    /// reconnect on your own, or the two clients take the session from each
    /// other in a loop; tell the player and reconnect only if they ask.
    OnlyIfAsked,
}

/// Errors of the client session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The gateway broke the protocol; close with `PROTOCOL_VIOLATION`.
    #[error("gateway broke the protocol: {0}")]
    Protocol(String),
    /// The session was refused or closed.
    #[error("session closed: {} ({})", .0.code.name(), .0.reason)]
    Closed(Closed),
    /// Sending before `Welcome`.
    #[error("the session is not established yet")]
    NotEstablished,
    /// A message larger than the gateway accepts on that transport.
    #[error("message of {len} bytes exceeds the gateway's {max}-byte limit for {transport:?}")]
    TooLarge {
        /// `type + payload` bytes.
        len: usize,
        /// The limit from `Welcome`.
        max: usize,
        /// The transport asked for.
        transport: Transport,
    },
    /// A type in the control range, which clients may not send.
    #[error("type 0x{0:04x} is in the control range; game types start at 0x0100")]
    ControlType(u16),
}

impl From<FrameError> for SessionError {
    fn from(e: FrameError) -> Self {
        SessionError::Protocol(e.to_string())
    }
}

impl From<DecodeError> for SessionError {
    fn from(e: DecodeError) -> Self {
        SessionError::Protocol(e.to_string())
    }
}

#[derive(Debug)]
enum State {
    AwaitingWelcome,
    Established(SessionInfo),
    Closed(Closed),
}

/// One client session's protocol state.
#[derive(Debug)]
pub struct Session {
    state: State,
    control: FrameReader,
    /// The gateway's lane streams, in the order they were opened; each
    /// reader is made on its stream's first bytes.
    lanes: [Option<FrameReader>; LANE_STREAMS_MAX],
    recv_message_bytes_max: usize,
}

impl Session {
    /// Starts a session: returns it and the `Hello` frame to write as the
    /// first bytes of the control stream.
    pub fn start(ticket: &str) -> Result<(Self, Vec<u8>), SessionError> {
        Self::start_with_limit(ticket, RECV_MESSAGE_BYTES_MAX_DEFAULT)
    }

    /// As [`Session::start`], accepting control-stream messages of up to
    /// `recv_message_bytes_max` bytes (the reader's buffer is allocated on
    /// the first bytes read).
    pub fn start_with_limit(
        ticket: &str,
        recv_message_bytes_max: usize,
    ) -> Result<(Self, Vec<u8>), SessionError> {
        let mut msg = Vec::new();
        // The gateway ignores surrounding ASCII whitespace too (protocol
        // §6.3); trimming here keeps a pasted ticket's newline off the wire.
        Message::Hello(Hello {
            version: PROTOCOL_VERSION,
            ticket: ticket.trim_ascii().as_bytes(),
        })
        .encode(&mut msg)
        .map_err(|e| SessionError::Protocol(e.to_string()))?;
        let mut frame = Vec::with_capacity(msg.len() + 2);
        put_frame(&msg, &mut frame);
        let session = Self {
            state: State::AwaitingWelcome,
            control: FrameReader::new(recv_message_bytes_max),
            lanes: [None, None, None],
            recv_message_bytes_max,
        };
        Ok((session, frame))
    }

    /// What `Welcome` granted, once established.
    pub fn info(&self) -> Option<&SessionInfo> {
        match &self.state {
            State::Established(info) => Some(info),
            _ => None,
        }
    }

    /// Feeds bytes read from the control stream; appends what they meant.
    pub fn on_control_bytes(
        &mut self,
        data: &[u8],
        events: &mut Vec<Event>,
    ) -> Result<(), SessionError> {
        let mut failure = None;
        // Split borrows: the frame reader calls back while `state` changes.
        let Session { state, control, .. } = self;
        control.feed(data, |bytes| {
            if failure.is_some() {
                return;
            }
            match handle_control(state, bytes) {
                Ok(Some(event)) => events.push(event),
                Ok(None) => {}
                Err(e) => failure = Some(e),
            }
        })?;
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Feeds bytes read from the gateway's `stream`th lane stream (0 for
    /// the first it opened, below [`LANE_STREAMS_MAX`]); appends the game
    /// messages they complete. A lane stream carries game messages only,
    /// so a control message there is a protocol violation. Its messages
    /// may arrive before `Welcome` is read (streams are independent), and
    /// count as the session's all the same.
    pub fn on_lane_stream_bytes(
        &mut self,
        stream: usize,
        data: &[u8],
        events: &mut Vec<Event>,
    ) -> Result<(), SessionError> {
        if matches!(self.state, State::Closed(_)) {
            return Ok(());
        }
        let max = self.recv_message_bytes_max;
        let Some(reader) = self.lanes.get_mut(stream) else {
            return Err(SessionError::Protocol(format!(
                "the gateway opened more than {LANE_STREAMS_MAX} lane streams"
            )));
        };
        let reader = reader.get_or_insert_with(|| FrameReader::new(max));
        let mut failure = None;
        reader.feed(data, |bytes| {
            if failure.is_some() {
                return;
            }
            match Message::decode(bytes) {
                Ok(Message::Game(g)) => events.push(Event::Message {
                    ty: g.ty,
                    payload: g.payload.to_vec(),
                    transport: Transport::Stream,
                }),
                Ok(other) => {
                    failure = Some(SessionError::Protocol(format!(
                        "control message type 0x{:04x} on a lane stream",
                        other.ty()
                    )));
                }
                Err(e) => failure = Some(e.into()),
            }
        })?;
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Interprets one received datagram.
    pub fn on_datagram(&mut self, data: &[u8]) -> Result<Option<Event>, SessionError> {
        if !matches!(self.state, State::Established(_)) {
            return Ok(None); // may race Welcome; ignore, as the spec says
        }
        match Message::decode(data) {
            Ok(Message::Game(g)) => Ok(Some(Event::Message {
                ty: g.ty,
                payload: g.payload.to_vec(),
                transport: Transport::Datagram,
            })),
            // Unknown or control types in datagrams are ignored (§3).
            Ok(_) | Err(_) => Ok(None),
        }
    }

    /// Records the connection's close; returns the typed reason.
    pub fn on_close(&mut self, code: u64, reason: &[u8]) -> Closed {
        let closed = Closed::from_raw(code, reason);
        self.state = State::Closed(closed.clone());
        closed
    }

    /// Encodes a game message for `transport`, checking the limits from
    /// `Welcome`: a datagram's bytes, or a stream frame to append to the
    /// control stream (or a client unidirectional stream).
    pub fn encode(
        &self,
        ty: u16,
        payload: &[u8],
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> Result<(), SessionError> {
        let info = match &self.state {
            State::Established(info) => info,
            State::Closed(c) => return Err(SessionError::Closed(c.clone())),
            State::AwaitingWelcome => return Err(SessionError::NotEstablished),
        };
        if ty < GAME_TYPE_FIRST {
            return Err(SessionError::ControlType(ty));
        }
        let len = 2 + payload.len();
        let max = match transport {
            Transport::Datagram => usize::from(info.datagram_message_bytes_max),
            Transport::Stream => {
                usize::try_from(info.stream_message_bytes_max).unwrap_or(usize::MAX)
            }
        };
        if len > max {
            return Err(SessionError::TooLarge {
                len,
                max,
                transport,
            });
        }
        if transport == Transport::Stream {
            lanegate_common::frame::put_varint(len as u64, out);
        }
        Message::Game(GameMessage { ty, payload })
            .encode(out)
            .map_err(|e| SessionError::Protocol(e.to_string()))
    }
}

fn handle_control(state: &mut State, bytes: &[u8]) -> Result<Option<Event>, SessionError> {
    let msg = Message::decode(bytes)?;
    match (&*state, msg) {
        (State::AwaitingWelcome, Message::Welcome(w)) => {
            let info = SessionInfo {
                session: w.session,
                player: w.player,
                zone: w.zone,
                tick_rate_hz: w.tick_rate_hz,
                datagram_message_bytes_max: w.datagram_message_bytes_max,
                stream_message_bytes_max: w.stream_message_bytes_max,
                lane_limits: w.lane_limits,
            };
            *state = State::Established(info);
            Ok(Some(Event::Welcome(info)))
        }
        (State::AwaitingWelcome, Message::Reject(r)) => {
            let closed = Closed::from_raw(u64::from(r.code), r.reason.as_bytes());
            *state = State::Closed(closed.clone());
            Ok(Some(Event::Rejected(closed)))
        }
        (State::Established(_), Message::ZoneReset(z)) => Ok(Some(Event::ZoneReset(z.zone))),
        (State::Established(info), Message::ZoneChanged(z)) => {
            let info = SessionInfo {
                zone: z.zone,
                tick_rate_hz: z.tick_rate_hz,
                ..*info
            };
            *state = State::Established(info);
            Ok(Some(Event::ZoneChanged {
                zone: z.zone,
                tick_rate_hz: z.tick_rate_hz,
            }))
        }
        (State::Established(_), Message::Game(g)) => Ok(Some(Event::Message {
            ty: g.ty,
            payload: g.payload.to_vec(),
            transport: Transport::Stream,
        })),
        (State::Closed(_), _) => Ok(None),
        (_, other) => Err(SessionError::Protocol(format!(
            "unexpected message type 0x{:04x} on the control stream",
            other.ty()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lanegate_common::wire::{Welcome, ZoneChanged, ZoneReset, reject};

    fn welcome_bytes() -> Vec<u8> {
        let mut msg = Vec::new();
        Message::Welcome(Welcome {
            version: 1,
            session: SessionId(5),
            player: PlayerId(6),
            zone: ZoneId(7),
            tick_rate_hz: 30,
            datagram_message_bytes_max: 100,
            stream_message_bytes_max: 4096,
            lane_limits: [LaneLimit {
                rate_per_s: 10,
                burst: 10,
            }; 4],
        })
        .encode(&mut msg)
        .unwrap();
        let mut frame = Vec::new();
        put_frame(&msg, &mut frame);
        frame
    }

    #[test]
    fn hello_frame_is_the_first_control_bytes() {
        let (_, frame) = Session::start("TICKET").unwrap();
        assert_eq!(
            frame,
            [12, 0, 1, 0, 1, 0, 6, b'T', b'I', b'C', b'K', b'E', b'T']
        );
    }

    #[test]
    fn hello_carries_the_ticket_without_surrounding_whitespace() {
        let (_, pasted) = Session::start(" TICKET\r\n").unwrap();
        assert_eq!(pasted, Session::start("TICKET").unwrap().1);
    }

    #[test]
    fn welcome_establishes_and_sets_limits() {
        let (mut s, _) = Session::start("t").unwrap();
        let mut ev = Vec::new();
        let mut out = Vec::new();
        assert_eq!(
            s.encode(0x1000, &[], Transport::Datagram, &mut out),
            Err(SessionError::NotEstablished)
        );
        s.on_control_bytes(&welcome_bytes(), &mut ev).unwrap();
        assert!(matches!(
            ev[0],
            Event::Welcome(SessionInfo {
                zone: ZoneId(7),
                ..
            })
        ));
        assert_eq!(s.info().unwrap().session, SessionId(5));

        s.encode(0x1fff, &[1, 2], Transport::Datagram, &mut out)
            .unwrap();
        assert_eq!(out, [0x1f, 0xff, 1, 2]);
        out.clear();
        s.encode(0x1fff, &[1, 2], Transport::Stream, &mut out)
            .unwrap();
        assert_eq!(out, [4, 0x1f, 0xff, 1, 2]);
        assert!(matches!(
            s.encode(0x1000, &[0; 99], Transport::Datagram, &mut out),
            Err(SessionError::TooLarge { max: 100, .. })
        ));
        assert_eq!(
            s.encode(0x0004, &[], Transport::Stream, &mut out),
            Err(SessionError::ControlType(4))
        );
    }

    #[test]
    fn reject_yields_a_typed_close() {
        let (mut s, _) = Session::start("t").unwrap();
        let mut msg = Vec::new();
        Message::Reject(reject(CloseCode::TicketExpired, "expired"))
            .encode(&mut msg)
            .unwrap();
        let mut frame = Vec::new();
        put_frame(&msg, &mut frame);
        let mut ev = Vec::new();
        s.on_control_bytes(&frame, &mut ev).unwrap();
        let Event::Rejected(closed) = &ev[0] else {
            panic!("expected a rejection, got {ev:?}")
        };
        assert_eq!(closed.code, CloseCode::TicketExpired);
        assert_eq!(closed.advice(), Retry::NewTicket);
    }

    #[test]
    fn zone_changed_moves_the_session_to_the_new_zone() {
        let (mut s, _) = Session::start("t").unwrap();
        let mut ev = Vec::new();
        let mut bytes = welcome_bytes();
        let mut zc = Vec::new();
        Message::ZoneChanged(ZoneChanged {
            zone: ZoneId(8),
            tick_rate_hz: 20,
        })
        .encode(&mut zc)
        .unwrap();
        put_frame(&zc, &mut bytes);
        s.on_control_bytes(&bytes, &mut ev).unwrap();
        assert_eq!(
            ev[1],
            Event::ZoneChanged {
                zone: ZoneId(8),
                tick_rate_hz: 20
            }
        );
        let info = s.info().unwrap();
        assert_eq!((info.zone, info.tick_rate_hz), (ZoneId(8), 20));
    }

    #[test]
    fn stream_and_datagram_messages_after_welcome() {
        let (mut s, _) = Session::start("t").unwrap();
        let mut ev = Vec::new();
        // Welcome and a zone reset and a game frame in one read.
        let mut bytes = welcome_bytes();
        let mut zr = Vec::new();
        Message::ZoneReset(ZoneReset { zone: ZoneId(7) })
            .encode(&mut zr)
            .unwrap();
        put_frame(&zr, &mut bytes);
        put_frame(&[0x30, 0x00, b'h', b'i'], &mut bytes);
        s.on_control_bytes(&bytes, &mut ev).unwrap();
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[1], Event::ZoneReset(ZoneId(7)));
        assert_eq!(
            ev[2],
            Event::Message {
                ty: 0x3000,
                payload: b"hi".to_vec(),
                transport: Transport::Stream
            }
        );
        assert_eq!(
            s.on_datagram(&[0x1f, 0xff, 9]).unwrap(),
            Some(Event::Message {
                ty: 0x1fff,
                payload: vec![9],
                transport: Transport::Datagram
            })
        );
        assert_eq!(s.on_datagram(&[0x00]).unwrap(), None, "garbage ignored");
    }

    #[test]
    fn a_second_welcome_is_a_protocol_violation() {
        let (mut s, _) = Session::start("t").unwrap();
        let mut ev = Vec::new();
        s.on_control_bytes(&welcome_bytes(), &mut ev).unwrap();
        assert!(matches!(
            s.on_control_bytes(&welcome_bytes(), &mut ev),
            Err(SessionError::Protocol(_))
        ));
    }

    #[test]
    fn close_codes_map_to_advice() {
        let c = |code: CloseCode| Closed::from_raw(u64::from(code.code()), b"").advice();
        assert_eq!(c(CloseCode::ServerDraining), Retry::Now);
        assert_eq!(c(CloseCode::Abuse), Retry::AfterSeconds(60));
        assert_eq!(c(CloseCode::ShardUnavailable), Retry::Backoff);
        assert_eq!(c(CloseCode::UnknownZone), Retry::NewTicket);
        assert_eq!(c(CloseCode::SessionReplaced), Retry::OnlyIfAsked);
        assert_eq!(
            Closed::from_raw(0xdead, b"?").code,
            CloseCode::InternalError,
            "unknown codes are internal errors"
        );
    }

    #[test]
    fn lane_streams_carry_game_messages_each_framed_on_its_own() {
        let (mut s, _) = Session::start("t").unwrap();
        let mut ev = Vec::new();
        s.on_control_bytes(&welcome_bytes(), &mut ev).unwrap();
        ev.clear();
        // Two streams, each with a frame split across reads: neither
        // reader mixes up the other's bytes.
        let bulk = [0x03, 0x4f, 0xff, 7];
        let high = [0x03, 0x2f, 0xff, 8];
        s.on_lane_stream_bytes(0, &bulk[..2], &mut ev).unwrap();
        s.on_lane_stream_bytes(1, &high[..3], &mut ev).unwrap();
        assert!(ev.is_empty());
        s.on_lane_stream_bytes(1, &high[3..], &mut ev).unwrap();
        s.on_lane_stream_bytes(0, &bulk[2..], &mut ev).unwrap();
        let tys: Vec<u16> = ev
            .iter()
            .map(|e| match e {
                Event::Message { ty, transport, .. } => {
                    assert_eq!(*transport, Transport::Stream);
                    *ty
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(tys, [0x2fff, 0x4fff]);
    }

    #[test]
    fn a_control_message_or_a_fourth_lane_stream_is_a_protocol_violation() {
        let (mut s, _) = Session::start("t").unwrap();
        let mut ev = Vec::new();
        s.on_control_bytes(&welcome_bytes(), &mut ev).unwrap();
        let mut reset = Vec::new();
        Message::ZoneReset(ZoneReset { zone: ZoneId(7) })
            .encode(&mut reset)
            .unwrap();
        let mut frame = Vec::new();
        put_frame(&reset, &mut frame);
        assert!(matches!(
            s.on_lane_stream_bytes(0, &frame, &mut ev),
            Err(SessionError::Protocol(_))
        ));
        assert!(matches!(
            s.on_lane_stream_bytes(LANE_STREAMS_MAX, &[0x03, 0x4f, 0xff, 7], &mut ev),
            Err(SessionError::Protocol(_))
        ));
    }
}
