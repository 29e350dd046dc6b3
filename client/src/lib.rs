//! `lanegate-client`: what a game client (or a bot, or `lanegate probe`)
//! needs to talk to a Lanegate gateway.
//!
//! A game should not have to know QUIC or the framing of protocol v1
//! (`docs/protocol.md`) to play through a gateway; and every client, ours or
//! a game's, should make the same protocol decisions. So the crate is two
//! layers, as quinn itself is (`quinn-proto` under `quinn`):
//!
//! ```text
//!   game ── send(ty, payload, transport) ─▶ Client ──▶ Session::encode ──▶ quinn
//!   game ◀─────────── recv() → Event ◀──── Client ◀── Session::on_*   ◀── quinn
//! ```
//!
//! - [`session::Session`] is the sans-IO state machine of the client side:
//!   it builds `Hello`, turns control-stream bytes and datagrams into
//!   [`Event`]s (`Welcome`, `Reject`, `ZoneReset`, game messages), checks
//!   outgoing messages against the limits `Welcome` announced, and types
//!   close codes as [`Closed`] with reconnection advice. Tests drive it with
//!   bytes alone.
//! - [`Client`] is the thin IO driver on quinn's high-level API (tokio).
//!   [`connect`] opens a QUIC v1 connection with ALPN `lanegate/1`,
//!   datagrams and keep-alive on, verifies the gateway per [`ServerVerify`]
//!   (a pinned fingerprint for development gateways), opens the control
//!   stream, writes `Hello` and waits for `Welcome`. After that the client
//!   only moves bytes between the game, the session and quinn: datagrams
//!   are one message each, stream messages go on the control stream. The
//!   gateway's close code comes back as a typed [`ClientError`] from
//!   whichever call notices the connection is gone.
//! - [`probe()`] measures each lane's round-trip time and loss with the
//!   diagnostic echo; the gateway's `lanegate probe` prints its report.
//!
//! The load generator (`lanegate-bots`) is a crate of its own on top of this
//! one: a bot is a [`Client`] on an endpoint of its own, made with
//! [`connect_on`].
//!
//! The lane of a message is never the client's choice: the gateway derives
//! it from the type. The client only chooses the transport.
//!
//! ```no_run
//! use lanegate_client::{ConnectOptions, Event, ServerVerify, Transport, connect};
//!
//! # async fn run() -> Result<(), lanegate_client::ClientError> {
//! let verify = ServerVerify::fingerprint_hex(
//!     "5d:1e:...", // what the development gateway printed at start
//! )?;
//! let opts = ConnectOptions::new(
//!     "127.0.0.1:4433".parse().expect("an address"),
//!     "localhost",
//!     "AQAAAAcAAAAAB1vNFQ...", // the ticket from the game's backend
//!     verify,
//! );
//! let mut client = connect(opts).await?;
//! println!("session {:?} in zone {:?}", client.info().session, client.info().zone);
//!
//! // A critical-lane echo as a datagram; its reply comes back as one.
//! client.send(0x1fff, &1u64.to_be_bytes(), Transport::Datagram).await?;
//! match client.recv().await? {
//!     Event::Message { ty, payload, .. } => println!("{ty:#06x}: {payload:?}"),
//!     Event::ZoneReset(zone) => println!("zone {zone:?} was reset; resend state"),
//!     _ => {}
//! }
//! client.close().await;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod error;
pub mod limit;
pub mod probe;
pub mod session;
pub mod verify;

pub use client::{Client, ConnectOptions, connect, connect_on};
pub use error::ClientError;
pub use lanegate_common::wire::{CloseCode, Transport};
pub use probe::{LaneReport, ProbeReport, probe};
pub use session::{Closed, Event, LANE_STREAMS_MAX, Retry, Session, SessionError, SessionInfo};
pub use verify::{ServerVerify, fingerprint};
