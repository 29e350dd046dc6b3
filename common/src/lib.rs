//! `lanegate-common`: everything the gateway, the shards and the clients must
//! agree on, with no IO at all.
//!
//! Data flows through this crate in one direction per concern:
//!
//! - **Wire** ([`wire`]): bytes from a QUIC datagram or stream frame are
//!   decoded once into a typed [`wire::Message`]; everything after that point
//!   works on types, never re-checks lengths.
//! - **Lanes** ([`lanes`]): the gateway classifies each decoded message by its
//!   type through a [`lanes::LaneTable`], never by anything the client says.
//! - **Tickets** ([`ticket`]): the game's backend mints a signed ticket; the
//!   gateway verifies it against a rotating [`ticket::KeySet`] before any
//!   session state exists.
//! - **Ids** ([`ids`]): newtypes for players, zones, sessions, shards, cores.
//! - **Configuration** ([`config`]): the TOML schema with its embedded,
//!   commented default file, validated at load with errors naming the field.
//! - **Link messages** ([`link`]): the fixed-size entries that cross the lock-free
//!   rings between gateway cores and shards (join, leave, messages with their
//!   lane, unicast, broadcast, zone control), with payloads inline or in a
//!   pooled buffer so nothing allocates per message.
//!
//! The wire format is specified in `docs/protocol.md`; the tests in
//! `tests/protocol_vectors.rs` check every test vector printed there.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod degradation;
pub mod frame;
pub mod histogram;
pub mod ids;
pub mod lanes;
pub mod link;
mod sync;
pub mod ticket;
pub mod wake;
pub mod wire;
