//! The end-to-end harness (`src/bin/e2e.rs`): the gateway and the two
//! baseline servers, each pinned to one core, driven in turn by the bot
//! swarm on another core, compared as ratios within one run.
//!
//! - [`procfs`]: server CPU time and resident memory from `/proc`;
//! - [`stats`]: medians and ratios over repeats, rotation of the order;
//! - [`harness`]: starting servers and running one measurement;
//! - [`child`]: the swarm of a measurement, in a child process of its own;
//! - [`report`]: `target/bench/e2e.json` and `e2e.md`;
//! - [`pipeline`]: the in-memory inbound path (classify, admit, ring push)
//!   and its bare-ring baseline, for the `pipeline` bench and
//!   `pipeline-count`.

pub mod child;
pub mod harness;
pub mod pipeline;
pub mod procfs;
pub mod report;
pub mod stats;
