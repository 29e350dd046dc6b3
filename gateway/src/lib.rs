//! `lanegate-gateway`: the edge gateway's datapath, as a library the
//! `lanegate` binary drives (and integration tests drive directly).
//!
//! Two layers, kept apart so that everything but the IO is testable on a
//! virtual clock:
//!
//! - the **engine** (sans-IO): per gateway core, one `quinn_proto::Endpoint`
//!   and its connections, the session handshake, classification, admission
//!   and routing to shards. It takes `now` and bytes and returns transmits
//!   and ring messages;
//! - the **IO layer** (the `lanegate-udp` crate): sockets, io_uring or the
//!   portable quinn-udp backend, cmsgs and core pinning. It is the only
//!   crate allowed `unsafe`.
//!
//! Between the two, [`steer`] hands packets that reach the wrong gateway
//! core (after a client's address changed) to the core that owns their
//! connection, over preallocated rings.
//!
//! `docs/ARCHITECTURE.md` shows how a packet moves through both.
#![forbid(unsafe_code)]

pub mod cli;
pub mod engine;
pub mod load;
pub mod log_limit;
pub mod metrics;
pub mod monitor;
pub mod runtime;
pub mod steer;
