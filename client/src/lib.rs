//! `lanegate-client`: what a game client (or a bot) needs to talk to a
//! Lanegate gateway.
//!
//! Today it holds the transport-independent half: [`session::Session`], the
//! client side of protocol v1 (`docs/protocol.md`). The game hands it a
//! ticket and gets back the `Hello` frame to write on the control stream;
//! bytes read from the control stream and received datagrams come back as
//! [`session::Event`]s (welcome, rejection, zone reset, game messages); and
//! outgoing game messages are framed and checked against the limits the
//! gateway announced. Close codes surface as a typed [`session::Closed`]
//! with reconnection advice. The QUIC transport on quinn's high-level API,
//! and the bot swarm built on it, layer on top (issues 4 and 5).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod session;

pub use session::{Closed, Event, Retry, Session, SessionError, SessionInfo};
