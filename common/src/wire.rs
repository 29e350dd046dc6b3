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
}

impl CloseCode {
    /// Every code, in numeric order.
    pub const ALL: [CloseCode; 12] = [
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
    ];

    /// The numeric code on the wire.
    pub const fn code(self) -> u16 {
        self as u16
    }

    /// The code for a number, if it is one of ours.
    pub fn from_code(code: u64) -> Option<CloseCode> {
        CloseCode::ALL.into_iter().find(|c| u64::from(c.code()) == code)
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
        }
    }
}
