//! The `lanegate` binary.
fn main() {}
