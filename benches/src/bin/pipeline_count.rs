//! `pipeline-count`: runs the two `pipeline` kernels for instruction counts
//! under callgrind, which are stable whatever the machine's load.
//!
//! ```sh
//! cargo build --release -p lanegate-benches --bin pipeline-count
//! valgrind --tool=callgrind --callgrind-out-file=target/bench/pipeline.cg \
//!     target/release/pipeline-count 2000
//! callgrind_annotate --inclusive=yes target/bench/pipeline.cg | grep _batch
//! ```
//!
//! Each kernel runs 2 × `BATCHES` (argument, default 2000) batches of 64;
//! per message instructions are the kernel's inclusive Ir (the
//! `Pipeline::full_batch` / `Pipeline::bare_batch` lines) ÷ the message
//! count this binary prints. Both kernels are `#[inline(never)]`, so
//! callgrind attributes every instruction of a batch to them; the table
//! set-up is outside both.

use std::hint::black_box;

use lanegate_benches::e2e::pipeline::{BATCH, Pipeline};

fn main() {
    let batches: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let mut p = Pipeline::new();
    let mut admitted = 0;
    for _ in 0..2 * batches {
        black_box(p.bare_batch());
    }
    for _ in 0..2 * batches {
        admitted += black_box(p.full_batch());
    }
    println!(
        "messages per kernel: {} ({} batches of {BATCH}); full admitted {admitted}",
        2 * batches * BATCH,
        2 * batches
    );
}
