//! The concurrency primitives of [`crate::wake`]: std's in every build, except
//! the crate's own unit tests under `--cfg loom`, where they are loom's so
//! the doorbell's model check can explore every interleaving of them.
//!
//! Only the doorbell's lock-free handshake goes through here; the re-exports
//! are the std items themselves, so a normal build pays nothing. `test` is
//! part of the condition because loom is a dev-dependency: only the unit
//! test build has it, and a `--cfg loom` build of anything else (a
//! dependent crate, this crate's integration tests) keeps std's.

#[cfg(all(loom, test))]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
#[cfg(all(loom, test))]
pub(crate) use loom::thread::Thread;
#[cfg(not(all(loom, test)))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
#[cfg(not(all(loom, test)))]
pub(crate) use std::thread::Thread;
