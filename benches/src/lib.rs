//! `lanegate-benches`: benchmarks.
#![forbid(unsafe_code)]
