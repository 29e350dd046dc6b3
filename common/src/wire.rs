//! The wire protocol v1: message types, close codes and the codec.
//!
//! `docs/protocol.md` is the normative text; this module is its Rust
//! rendering. A message is `type: u16 BE` followed by its payload. A QUIC
//! datagram carries exactly one message; on a stream each message is preceded
//! by a QUIC varint holding the length of `type + payload`.

/// The protocol version this crate speaks, sent in `Hello`.
pub const PROTOCOL_VERSION: u16 = 1;

/// The ALPN token of protocol v1.
pub const ALPN: &[u8] = b"lanegate/1";

/// How a message travels between client and gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// One unreliable QUIC datagram (RFC 9221).
    Datagram,
    /// A length-prefixed frame on a reliable QUIC stream.
    Stream,
}

/// Well-known message types.
pub mod types {
    /// Client → gateway, first message on the control stream.
    pub const HELLO: u16 = 0x0001;
    /// Gateway → client, accepts the session.
    pub const WELCOME: u16 = 0x0002;
    /// Gateway → client, refuses the session; a connection close follows.
    pub const REJECT: u16 = 0x0003;
    /// Gateway → client: the zone's game state was reset (its shard restarted).
    pub const ZONE_RESET: u16 = 0x0004;
    /// Gateway → client: the game moved the player to another zone.
    pub const ZONE_CHANGED: u16 = 0x0005;

    /// Diagnostic echo in the `critical` lane of the default table.
    pub const ECHO_CRITICAL: u16 = 0x1fff;
    /// Diagnostic echo in the `high` lane of the default table.
    pub const ECHO_HIGH: u16 = 0x2fff;
    /// Diagnostic echo in the `normal` lane of the default table.
    pub const ECHO_NORMAL: u16 = 0x3fff;
    /// Diagnostic echo in the `bulk` lane of the default table.
    pub const ECHO_BULK: u16 = 0x4fff;
    /// The echo types in lane order (critical, high, normal, bulk).
    pub const ECHO: [u16; 4] = [ECHO_CRITICAL, ECHO_HIGH, ECHO_NORMAL, ECHO_BULK];
}

/// QUIC application error codes used in CONNECTION_CLOSE, and in `Reject`.
///
/// The numbers are part of the protocol; see `docs/protocol.md` for what a
/// client should do on each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
#[non_exhaustive]
pub enum CloseCode {
    /// Normal close by either side.
    NoError = 0x00,
    /// The peer broke the protocol (bad framing, message before `Welcome`...).
    ProtocolViolation = 0x01,
    /// `Hello` named a protocol version the gateway does not speak.
    UnsupportedVersion = 0x02,
    /// The client did not offer the QUIC datagram extension.
    DatagramsRequired = 0x03,
    /// The ticket is malformed, forged, signed by an unknown key or not yet valid.
    BadTicket = 0x04,
    /// The ticket has expired.
    TicketExpired = 0x05,
    /// No `Hello` arrived in time.
    HelloTimeout = 0x06,
    /// Rate limits were exceeded persistently.
    Abuse = 0x07,
    /// The gateway is shutting down; reconnect (elsewhere).
    ServerDraining = 0x08,
    /// The shard that owns the player's zone is unavailable.
    ShardUnavailable = 0x09,
    /// The gateway has no room for another session.
    ServerFull = 0x0a,
    /// A gateway bug; report it.
    InternalError = 0x0b,
    /// The ticket's zone is not one this gateway serves (`shards.zones`).
    UnknownZone = 0x0c,
    /// A newer session of the same player replaced this one (one session
    /// per player, `docs/protocol.md` §4).
    SessionReplaced = 0x0d,
}

impl CloseCode {
    /// Every code, in numeric order.
    pub const ALL: [CloseCode; 14] = [
        CloseCode::NoError,
        CloseCode::ProtocolViolation,
        CloseCode::UnsupportedVersion,
        CloseCode::DatagramsRequired,
        CloseCode::BadTicket,
        CloseCode::TicketExpired,
        CloseCode::HelloTimeout,
        CloseCode::Abuse,
        CloseCode::ServerDraining,
        CloseCode::ShardUnavailable,
        CloseCode::ServerFull,
        CloseCode::InternalError,
        CloseCode::UnknownZone,
        CloseCode::SessionReplaced,
    ];

    /// The numeric code on the wire.
    pub const fn code(self) -> u16 {
        self as u16
    }

    /// The code for a number, if it is one of ours.
    pub fn from_code(code: u64) -> Option<CloseCode> {
        CloseCode::ALL
            .into_iter()
            .find(|c| u64::from(c.code()) == code)
    }

    /// Upper-snake name as in `docs/protocol.md`.
    pub const fn name(self) -> &'static str {
        match self {
            CloseCode::NoError => "NO_ERROR",
            CloseCode::ProtocolViolation => "PROTOCOL_VIOLATION",
            CloseCode::UnsupportedVersion => "UNSUPPORTED_VERSION",
            CloseCode::DatagramsRequired => "DATAGRAMS_REQUIRED",
            CloseCode::BadTicket => "BAD_TICKET",
            CloseCode::TicketExpired => "TICKET_EXPIRED",
            CloseCode::HelloTimeout => "HELLO_TIMEOUT",
            CloseCode::Abuse => "ABUSE",
            CloseCode::ServerDraining => "SERVER_DRAINING",
            CloseCode::ShardUnavailable => "SHARD_UNAVAILABLE",
            CloseCode::ServerFull => "SERVER_FULL",
            CloseCode::InternalError => "INTERNAL_ERROR",
            CloseCode::UnknownZone => "UNKNOWN_ZONE",
            CloseCode::SessionReplaced => "SESSION_REPLACED",
        }
    }
}

/// Largest ticket text a `Hello` may carry, in bytes.
pub const HELLO_TICKET_BYTES_MAX: usize = 512;
/// Largest `Reject` reason, in bytes of UTF-8.
pub const REJECT_REASON_BYTES_MAX: usize = 256;
/// Number of lanes a v1 `Welcome` describes.
pub const WELCOME_LANES: usize = crate::lanes::Lane::COUNT;
/// Largest message (type + payload) any v1 endpoint may put in one datagram.
/// 1150 leaves room for QUIC's short header, the DATAGRAM frame header and
/// the AEAD tag inside the 1200-byte minimum QUIC packet.
pub const DATAGRAM_MESSAGE_BYTES_LIMIT: usize = 1150;

/// A decoded message. Borrowed from the buffer it was decoded from, so
/// decoding never allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// Client → gateway, the first message on the control stream.
    Hello(Hello<'a>),
    /// Gateway → client, the session is accepted.
    Welcome(Welcome),
    /// Gateway → client, the session is refused.
    Reject(Reject<'a>),
    /// Gateway → client, the zone's game state was reset.
    ZoneReset(ZoneReset),
    /// Gateway → client, the player is now in another zone.
    ZoneChanged(ZoneChanged),
    /// Any message in the game range (`0x0100-0xffff`): opaque to the
    /// gateway, interpreted by the game.
    Game(GameMessage<'a>),
}

/// `Hello { version, ticket }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello<'a> {
    /// The protocol version the client speaks.
    pub version: u16,
    /// The ticket, in its text form, exactly as the backend minted it.
    pub ticket: &'a [u8],
}

/// Per-lane rate limit announced in `Welcome`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LaneLimit {
    /// Sustained messages per second.
    pub rate_per_s: u32,
    /// Messages that may arrive back to back above the sustained rate.
    pub burst: u32,
}

/// The default per-lane limits of `docs/protocol.md` §8, in lane order
/// (critical, high, normal, bulk): what a gateway with no `[lanes.limits]`
/// announces, and what clients without a `Welcome` assume.
pub const DEFAULT_LANE_LIMITS: [LaneLimit; WELCOME_LANES] = [
    LaneLimit {
        rate_per_s: 240,
        burst: 60,
    },
    LaneLimit {
        rate_per_s: 120,
        burst: 60,
    },
    LaneLimit {
        rate_per_s: 20,
        burst: 20,
    },
    LaneLimit {
        rate_per_s: 10,
        burst: 20,
    },
];

/// `Welcome { ... }`: everything a client needs to pace itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Welcome {
    /// The protocol version the gateway will speak on this session.
    pub version: u16,
    /// The gateway's id for this session (for logs and support).
    pub session: crate::ids::SessionId,
    /// The player the ticket named.
    pub player: crate::ids::PlayerId,
    /// The zone the player was placed in.
    pub zone: crate::ids::ZoneId,
    /// Game ticks per second of the zone's shard.
    pub tick_rate_hz: u16,
    /// Largest message (type + payload) the gateway accepts in a datagram.
    pub datagram_message_bytes_max: u16,
    /// Largest message (type + payload) the gateway accepts on a stream.
    pub stream_message_bytes_max: u32,
    /// Limits in lane order: critical, high, normal, bulk.
    pub lane_limits: [LaneLimit; WELCOME_LANES],
}

/// `Reject { code, reason }`, followed by a connection close with `code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reject<'a> {
    /// A [`CloseCode`] number (kept raw so unknown future codes still decode).
    pub code: u16,
    /// Human-readable reason, for logs; not for program logic.
    pub reason: &'a str,
}

/// `ZoneReset { zone }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZoneReset {
    /// The zone whose state was reset.
    pub zone: crate::ids::ZoneId,
}

/// `ZoneChanged { zone, tick_rate_hz }`: the game moved the player; from
/// now on the player's messages go to `zone`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZoneChanged {
    /// The zone the player is in now.
    pub zone: crate::ids::ZoneId,
    /// Game ticks per second of the new zone's shard.
    pub tick_rate_hz: u16,
}

/// A game message: its type and opaque payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GameMessage<'a> {
    /// The message type, `>= 0x0100`.
    pub ty: u16,
    /// The payload, opaque to the gateway.
    pub payload: &'a [u8],
}

/// Why bytes did not decode as a message. Peer bytes: count and drop, or
/// close with [`CloseCode::ProtocolViolation`]; never panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than the message's fixed fields need.
    #[error("message truncated: {needed} bytes needed, {got} present")]
    Truncated {
        /// Bytes the layout requires.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// Bytes left over after a control message's last field.
    #[error("{0} trailing bytes after a control message")]
    Trailing(usize),
    /// A type in the control range that v1 does not define.
    #[error("unknown control message type 0x{0:04x}")]
    UnknownControlType(u16),
    /// A length field above the protocol's maximum.
    #[error("{field} is {len} bytes, more than the maximum {max}")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// Its declared length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A `Reject` reason that is not UTF-8.
    #[error("reject reason is not UTF-8")]
    BadUtf8,
    /// A `Welcome` that does not describe exactly four lanes.
    #[error("welcome describes {0} lanes; v1 has 4")]
    LaneCount(u8),
}

/// Why a message could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A variable-length field is above the protocol's maximum.
    #[error("{field} is {len} bytes, more than the maximum {max}")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A game message used a type in the control range.
    #[error("type 0x{0:04x} is in the control range; game types start at 0x0100")]
    ControlType(u16),
}

/// A cursor over peer bytes that can only fail, never panic.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let out = &self.buf[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            None => Err(DecodeError::Truncated {
                needed: self.pos.saturating_add(n),
                got: self.buf.len(),
            }),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    fn finish(&self) -> Result<(), DecodeError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}

/// Reads the type of a message without decoding the rest: lets the gateway
/// classify before it decides whether the payload is worth parsing.
pub fn peek_type(buf: &[u8]) -> Result<u16, DecodeError> {
    Reader::new(buf).u16()
}

/// Reads the `version` of a `Hello` (the two bytes after its type) without
/// decoding the rest. The gateway answers a `Hello` of another version with
/// `UNSUPPORTED_VERSION` whatever follows the version, so that a later
/// version may lay out the rest of its `Hello` differently.
pub fn peek_hello_version(buf: &[u8]) -> Result<u16, DecodeError> {
    let mut r = Reader::new(buf);
    r.u16()?;
    r.u16()
}

impl<'a> Message<'a> {
    /// Decodes one whole message (a datagram, or one stream frame's body).
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let ty = r.u16()?;
        if ty >= crate::lanes::GAME_TYPE_FIRST {
            return Ok(Message::Game(GameMessage {
                ty,
                payload: r.rest(),
            }));
        }
        let msg = match ty {
            types::HELLO => {
                let version = r.u16()?;
                let len = usize::from(r.u16()?);
                if len > HELLO_TICKET_BYTES_MAX {
                    return Err(DecodeError::TooLong {
                        field: "hello.ticket",
                        len,
                        max: HELLO_TICKET_BYTES_MAX,
                    });
                }
                Message::Hello(Hello {
                    version,
                    ticket: r.take(len)?,
                })
            }
            types::WELCOME => {
                let version = r.u16()?;
                let session = crate::ids::SessionId(r.u64()?);
                let player = crate::ids::PlayerId(r.u64()?);
                let zone = crate::ids::ZoneId(r.u32()?);
                let tick_rate_hz = r.u16()?;
                let datagram_message_bytes_max = r.u16()?;
                let stream_message_bytes_max = r.u32()?;
                let lanes = r.u8()?;
                if usize::from(lanes) != WELCOME_LANES {
                    return Err(DecodeError::LaneCount(lanes));
                }
                let mut lane_limits = [LaneLimit::default(); WELCOME_LANES];
                for limit in &mut lane_limits {
                    limit.rate_per_s = r.u32()?;
                    limit.burst = r.u32()?;
                }
                Message::Welcome(Welcome {
                    version,
                    session,
                    player,
                    zone,
                    tick_rate_hz,
                    datagram_message_bytes_max,
                    stream_message_bytes_max,
                    lane_limits,
                })
            }
            types::REJECT => {
                let code = r.u16()?;
                let len = usize::from(r.u16()?);
                if len > REJECT_REASON_BYTES_MAX {
                    return Err(DecodeError::TooLong {
                        field: "reject.reason",
                        len,
                        max: REJECT_REASON_BYTES_MAX,
                    });
                }
                let reason = std::str::from_utf8(r.take(len)?).map_err(|_| DecodeError::BadUtf8)?;
                Message::Reject(Reject { code, reason })
            }
            types::ZONE_RESET => Message::ZoneReset(ZoneReset {
                zone: crate::ids::ZoneId(r.u32()?),
            }),
            types::ZONE_CHANGED => Message::ZoneChanged(ZoneChanged {
                zone: crate::ids::ZoneId(r.u32()?),
                tick_rate_hz: r.u16()?,
            }),
            other => return Err(DecodeError::UnknownControlType(other)),
        };
        r.finish()?;
        Ok(msg)
    }

    /// The message's type on the wire.
    pub fn ty(&self) -> u16 {
        match self {
            Message::Hello(_) => types::HELLO,
            Message::Welcome(_) => types::WELCOME,
            Message::Reject(_) => types::REJECT,
            Message::ZoneReset(_) => types::ZONE_RESET,
            Message::ZoneChanged(_) => types::ZONE_CHANGED,
            Message::Game(g) => g.ty,
        }
    }

    /// Bytes [`Message::encode`] will append.
    pub fn encoded_len(&self) -> usize {
        2 + match self {
            Message::Hello(h) => 4 + h.ticket.len(),
            Message::Welcome(_) => 2 + 8 + 8 + 4 + 2 + 2 + 4 + 1 + 8 * WELCOME_LANES,
            Message::Reject(r) => 4 + r.reason.len(),
            Message::ZoneReset(_) => 4,
            Message::ZoneChanged(_) => 4 + 2,
            Message::Game(g) => g.payload.len(),
        }
    }

    /// Appends the message (type + payload) to `out`. Allocation-free when
    /// `out` already has the capacity, as pooled buffers do.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.reserve(self.encoded_len());
        out.extend_from_slice(&self.ty().to_be_bytes());
        match self {
            Message::Hello(h) => {
                let len = checked_len("hello.ticket", h.ticket.len(), HELLO_TICKET_BYTES_MAX)?;
                out.extend_from_slice(&h.version.to_be_bytes());
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(h.ticket);
            }
            Message::Welcome(w) => {
                out.extend_from_slice(&w.version.to_be_bytes());
                out.extend_from_slice(&w.session.0.to_be_bytes());
                out.extend_from_slice(&w.player.0.to_be_bytes());
                out.extend_from_slice(&w.zone.0.to_be_bytes());
                out.extend_from_slice(&w.tick_rate_hz.to_be_bytes());
                out.extend_from_slice(&w.datagram_message_bytes_max.to_be_bytes());
                out.extend_from_slice(&w.stream_message_bytes_max.to_be_bytes());
                out.push(crate::lanes::Lane::COUNT_U8);
                for l in &w.lane_limits {
                    out.extend_from_slice(&l.rate_per_s.to_be_bytes());
                    out.extend_from_slice(&l.burst.to_be_bytes());
                }
            }
            Message::Reject(r) => {
                let len = checked_len("reject.reason", r.reason.len(), REJECT_REASON_BYTES_MAX)?;
                out.extend_from_slice(&r.code.to_be_bytes());
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(r.reason.as_bytes());
            }
            Message::ZoneReset(z) => out.extend_from_slice(&z.zone.0.to_be_bytes()),
            Message::ZoneChanged(z) => {
                out.extend_from_slice(&z.zone.0.to_be_bytes());
                out.extend_from_slice(&z.tick_rate_hz.to_be_bytes());
            }
            Message::Game(g) => {
                if g.ty < crate::lanes::GAME_TYPE_FIRST {
                    return Err(EncodeError::ControlType(g.ty));
                }
                out.extend_from_slice(g.payload);
            }
        }
        Ok(())
    }
}

fn checked_len(field: &'static str, len: usize, max: usize) -> Result<u16, EncodeError> {
    match u16::try_from(len) {
        Ok(l) if len <= max => Ok(l),
        _ => Err(EncodeError::TooLong { field, len, max }),
    }
}

/// Builds a `Reject` for `code`, truncating `reason` at a character
/// boundary so it always fits.
pub fn reject(code: CloseCode, reason: &str) -> Reject<'_> {
    let mut end = reason.len().min(REJECT_REASON_BYTES_MAX);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Reject {
        code: code.code(),
        reason: &reason[..end],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{PlayerId, SessionId, ZoneId};
    use proptest::prelude::*;

    fn round_trip(msg: Message<'_>) {
        let mut out = Vec::new();
        msg.encode(&mut out).unwrap();
        assert_eq!(out.len(), msg.encoded_len());
        assert_eq!(Message::decode(&out).unwrap(), msg);
        assert_eq!(peek_type(&out).unwrap(), msg.ty());
    }

    #[test]
    fn control_messages_round_trip() {
        round_trip(Message::Hello(Hello {
            version: 1,
            ticket: b"abc",
        }));
        round_trip(Message::Reject(reject(
            CloseCode::BadTicket,
            "bad signature",
        )));
        round_trip(Message::ZoneReset(ZoneReset { zone: ZoneId(3) }));
        round_trip(Message::ZoneChanged(ZoneChanged {
            zone: ZoneId(4),
            tick_rate_hz: 20,
        }));
        round_trip(Message::Welcome(Welcome {
            version: 1,
            session: SessionId(1),
            player: PlayerId(2),
            zone: ZoneId(3),
            tick_rate_hz: 30,
            datagram_message_bytes_max: 1100,
            stream_message_bytes_max: 16384,
            lane_limits: [LaneLimit {
                rate_per_s: 10,
                burst: 5,
            }; 4],
        }));
    }

    #[test]
    fn decode_errors_are_specific() {
        assert_eq!(
            Message::decode(&[0x00]),
            Err(DecodeError::Truncated { needed: 2, got: 1 })
        );
        assert_eq!(
            Message::decode(&[0x00, 0x7f]),
            Err(DecodeError::UnknownControlType(0x7f))
        );
        assert_eq!(
            Message::decode(&[0x00, 0x04, 0, 0, 0, 1, 9]),
            Err(DecodeError::Trailing(1))
        );
        assert_eq!(
            Message::decode(&[0x00, 0x03, 0, 4, 0, 2, 0xff, 0xfe]),
            Err(DecodeError::BadUtf8)
        );
        assert!(matches!(
            Message::decode(&[0x00, 0x01, 0, 1, 0x02, 0x01]),
            Err(DecodeError::TooLong {
                field: "hello.ticket",
                ..
            })
        ));
        // A game message may be empty beyond its type.
        assert_eq!(
            Message::decode(&[0x10, 0x00]),
            Ok(Message::Game(GameMessage {
                ty: 0x1000,
                payload: &[]
            }))
        );
    }

    #[test]
    fn encode_refuses_what_decode_would_refuse() {
        let long = vec![b'a'; HELLO_TICKET_BYTES_MAX + 1];
        let mut out = Vec::new();
        assert!(
            Message::Hello(Hello {
                version: 1,
                ticket: &long
            })
            .encode(&mut out)
            .is_err()
        );
        assert_eq!(
            Message::Game(GameMessage {
                ty: 0x0001,
                payload: &[]
            })
            .encode(&mut out),
            Err(EncodeError::ControlType(1))
        );
    }

    #[test]
    fn reject_truncates_on_a_char_boundary() {
        let reason = "é".repeat(200); // 400 bytes
        let r = reject(CloseCode::Abuse, &reason);
        assert!(r.reason.len() <= REJECT_REASON_BYTES_MAX);
        assert!(r.reason.len() >= REJECT_REASON_BYTES_MAX - 1);
    }

    #[test]
    fn close_codes_are_distinct_and_named() {
        for (i, c) in CloseCode::ALL.iter().enumerate() {
            assert_eq!(usize::from(c.code()), i);
            assert_eq!(CloseCode::from_code(u64::from(c.code())), Some(*c));
        }
        assert_eq!(CloseCode::from_code(0x1_0000), None);
    }

    #[test]
    fn hello_version_is_read_whatever_follows() {
        // A version-2 Hello whose layout v1 cannot decode.
        let v2 = [0x00, 0x01, 0x00, 0x02, 0xff];
        assert_eq!(peek_hello_version(&v2), Ok(2));
        assert!(Message::decode(&v2).is_err());
        assert!(matches!(
            peek_hello_version(&[0x00, 0x01, 0x00]),
            Err(DecodeError::Truncated { .. })
        ));
    }

    proptest! {
        #[test]
        fn game_messages_round_trip(ty in 0x0100u16.., payload in proptest::collection::vec(any::<u8>(), 0..1200)) {
            round_trip(Message::Game(GameMessage { ty, payload: &payload }));
        }

        #[test]
        fn hello_and_reject_round_trip(
            version: u16,
            ticket in proptest::collection::vec(any::<u8>(), 0..=HELLO_TICKET_BYTES_MAX),
            code: u16,
            reason in ".{0,60}",
        ) {
            round_trip(Message::Hello(Hello { version, ticket: &ticket }));
            round_trip(Message::Reject(Reject { code, reason: &reason }));
        }

        #[test]
        fn welcome_round_trips(
            version: u16, session: u64, player: u64, zone: u32, tick: u16, dmax: u16, smax: u32,
            limits in proptest::array::uniform4((any::<u32>(), any::<u32>())),
        ) {
            round_trip(Message::Welcome(Welcome {
                version,
                session: SessionId(session),
                player: PlayerId(player),
                zone: ZoneId(zone),
                tick_rate_hz: tick,
                datagram_message_bytes_max: dmax,
                stream_message_bytes_max: smax,
                lane_limits: limits.map(|(rate_per_s, burst)| LaneLimit { rate_per_s, burst }),
            }));
        }

        /// Arbitrary bytes never panic, and whatever decodes re-encodes to
        /// the same bytes (the encoding is canonical).
        #[test]
        fn decode_never_panics_and_is_canonical(data in proptest::collection::vec(any::<u8>(), 0..700)) {
            if let Ok(msg) = Message::decode(&data) {
                let mut out = Vec::new();
                msg.encode(&mut out).unwrap();
                prop_assert_eq!(out, data);
            }
        }

        /// Control-range types with fuzzed bodies: the interesting half of the space.
        #[test]
        fn control_decode_never_panics(ty in 0u16..8, body in proptest::collection::vec(any::<u8>(), 0..100)) {
            let mut data = ty.to_be_bytes().to_vec();
            data.extend_from_slice(&body);
            if let Ok(msg) = Message::decode(&data) {
                let mut out = Vec::new();
                msg.encode(&mut out).unwrap();
                prop_assert_eq!(out, data);
            }
        }
    }
}
