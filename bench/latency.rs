//! Benchmark placeholder: see scripts/bench.sh.

fn main() {}
