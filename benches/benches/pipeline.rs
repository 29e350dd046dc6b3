//! The headline micro-bench: per message, `classify + admit +
//! enqueue` (lane table, GCRA admission with one `now` per batch of 64, a
//! `ToShard::Message` with a 16-byte inline payload pushed onto the shard
//! ring) against a bare `ringbuf` push of the same entry, in the same run.
//! Both pop their entries at the end of each batch on the same thread.
//! Read the ratio `full ÷ bare` (goal ≤ 3). The kernels are in
//! `lanegate_benches::e2e::pipeline`, shared with `pipeline-count`, which
//! counts instructions under callgrind.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lanegate_benches::e2e::pipeline::{BATCH, Pipeline};

fn pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut p = Pipeline::new();
    g.bench_function("bare ring push+pop (baseline), 64 msgs", |b| {
        b.iter(|| black_box(p.bare_batch()))
    });
    g.bench_function("classify+admit+enqueue+pop, 64 msgs", |b| {
        b.iter(|| black_box(p.full_batch()))
    });
    g.finish();
    assert_eq!(p.full_batch(), BATCH, "every message is admitted");
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
