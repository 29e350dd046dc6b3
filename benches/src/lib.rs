//! `lanegate-benches`: Lanegate's measurements.
//!
//! Speed is checked here, never by timed tests. Each criterion bench
//! (`benches/benches/*.rs`) measures a hot-path component next to a baseline
//! in the same run, so results are read as ratios, which survive this
//! machine's noise better than absolute times:
//!
//! - `codec`: message decode/encode, stream reassembly, lane classification
//!   and ticket verification, against a bare two-byte type read;
//! - `rings`: our ring wrapper on ringbuf against rtrb and crossbeam's
//!   `ArrayQueue` for the same entry type.
//!
//! The end-to-end harness and the baseline servers (issue 5) will live here
//! too. Results and the commands that produced them are in `BENCHMARKS.md`.
#![forbid(unsafe_code)]
