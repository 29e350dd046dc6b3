//! Errors of the client SDK.

use std::time::Duration;

use crate::session::{Closed, SessionError};

/// Why a client call failed.
///
/// A gateway's decision to end the session is always typed:
/// [`ClientError::Rejected`] during the handshake, [`ClientError::Closed`]
/// afterwards (from whichever call first notices), both carrying a
/// [`Closed`] whose [`Closed::advice`] says what to do next.
/// [`ClientError::closed`] reads either.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The gateway answered `Hello` with `Reject`.
    #[error("gateway refused the session: {} ({})", .0.code.name(), .0.reason)]
    Rejected(Closed),
    /// The gateway closed the connection with an application close code.
    #[error("gateway closed the session: {} ({})", .0.code.name(), .0.reason)]
    Closed(Closed),
    /// The network path or the QUIC/TLS handshake failed (a certificate that
    /// does not verify lands here), or this client already closed. Reconnect
    /// with backoff, reusing the ticket while it is valid.
    #[error("connection failed: {0}")]
    Connection(quinn::ConnectionError),
    /// The session state machine refused: a message too large for the
    /// gateway's limits, a control type, or a gateway breaking the protocol
    /// (after which the client has closed with `PROTOCOL_VIOLATION`).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// No `Welcome` (or `Reject`) arrived in time.
    #[error("no answer from the gateway within {0:?} ({1})")]
    Timeout(Duration, &'static str),
    /// The local socket could not be bound or rebound.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// quinn refused to start the connection (bad server name, no client
    /// configuration...).
    #[error("cannot connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// The TLS configuration could not be built.
    #[error("TLS configuration: {0}")]
    Tls(rustls::Error),
    /// A datagram could not be sent for a reason other than a lost
    /// connection (larger than the path allows right now, peer without
    /// datagram support).
    #[error("datagram not sent: {0}")]
    Datagram(quinn::SendDatagramError),
    /// The control stream failed without the connection closing (the
    /// gateway stopped or reset it).
    #[error("control stream: {0}")]
    ControlStream(String),
    /// An option in [`crate::ConnectOptions`] or a probe argument is invalid.
    #[error("invalid {field}: {reason}")]
    Config {
        /// The field or argument.
        field: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

impl ClientError {
    /// The gateway's close, whether it came as `Reject` or as a close code.
    pub fn closed(&self) -> Option<&Closed> {
        match self {
            ClientError::Rejected(c) | ClientError::Closed(c) => Some(c),
            _ => None,
        }
    }

    /// Types a lost connection: an application close becomes
    /// [`ClientError::Closed`] with the typed code.
    pub(crate) fn from_connection(e: quinn::ConnectionError) -> Self {
        match e {
            quinn::ConnectionError::ApplicationClosed(close) => ClientError::Closed(
                Closed::from_raw(close.error_code.into_inner(), &close.reason),
            ),
            other => ClientError::Connection(other),
        }
    }
}
