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
//! Two baseline servers live here as binaries, for the end-to-end
//! comparisons of issue 5; both take the same bots (`lanegate_bots`):
//!
//! - `baseline-quinn` (`src/bin/baseline_quinn.rs`): what a competent team
//!   would write with quinn's high-level API, the same session handshake and
//!   transport settings as Lanegate, every datagram echoed straight back;
//! - `baseline-udp` (`src/bin/baseline_udp.rs`): a raw UDP reflector on
//!   batched recvmmsg/sendmmsg, the ceiling for moving packets through this
//!   kernel.
//!
//! The end-to-end harness ([`e2e`], binary `e2e`) runs the gateway and both
//! baselines pinned to one core and drives each in turn with the bots on
//! another, interleaved, medians of repeats, ratios against the baselines
//! (`target/bench/e2e.json`). The `pipeline` bench and the `pipeline-count`
//! binary (for callgrind) compare the gateway's in-memory inbound path with
//! a bare ring push. Results and the commands that produced them are in
//! `BENCHMARKS.md`.
#![forbid(unsafe_code)]

pub mod anomaly;
pub mod e2e;
