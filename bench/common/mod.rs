//! Helpers shared by the benchmarks in `bench/`: run mode, summary
//! statistics, and where results are written.
//!
//! Every benchmark writes three files into `bench/results/`:
//! - `<name>.json`: machine-readable numbers;
//! - `<name>.md`: its section of `REPORT.md` (tables, settings, notes);
//! - `<name>.rows.md`: its rows of the SPEC §7 summary table, each starting
//!   with `| <SPEC row name> |`, so `scripts/bench.sh` can tell which rows
//!   are covered.

// Each benchmark includes this module and uses a different subset of it.
#![allow(dead_code)]

use std::error::Error;
use std::fs;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// Whether this is a real measurement: `cargo bench` passes `--bench`;
/// `cargo test --all-targets` runs the same binary without it, and then a
/// benchmark only runs a smoke version that finishes in well under 2 s.
pub fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Median, minimum and maximum of a set of runs.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Middle run (mean of the two middle runs for an even count).
    pub median: f64,
    /// Slowest run.
    pub min: f64,
    /// Fastest run.
    pub max: f64,
}

impl Summary {
    /// Summarises `runs`; all zero when there are none.
    pub fn of(runs: &[f64]) -> Self {
        let mut sorted = runs.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        if n == 0 {
            return Self { median: 0.0, min: 0.0, max: 0.0 };
        }
        let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
        Self { median, min: sorted[0], max: sorted[n - 1] }
    }
}

/// A rate for people: `23.4 M`, `512.3 k`.
pub fn human_rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2} M", per_s / 1e6)
    } else if per_s >= 1e3 {
        format!("{:.1} k", per_s / 1e3)
    } else {
        format!("{per_s:.0}")
    }
}

/// `met` or `**not met**`, for the report.
pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**not met**" }
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` has them.
pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Wall clock, unix seconds.
pub fn unix_now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `bench/results/` in the crate, created if absent.
pub fn results_dir() -> Result<PathBuf, Box<dyn Error>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench").join("results");
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Writes the three result files of benchmark `name` (see the module doc).
pub fn write_results(
    name: &str,
    json: &serde_json::Value,
    section_md: &str,
    rows_md: &str,
) -> Result<(), Box<dyn Error>> {
    let dir = results_dir()?;
    fs::write(dir.join(format!("{name}.json")), serde_json::to_string_pretty(json)? + "\n")?;
    fs::write(dir.join(format!("{name}.md")), section_md)?;
    fs::write(dir.join(format!("{name}.rows.md")), rows_md)?;
    eprintln!("wrote bench/results/{name}.json, {name}.md, {name}.rows.md");
    Ok(())
}

/// Nanoseconds this thread has run on a CPU, from
/// `/proc/thread-self/schedstat`; `None` where the kernel does not say.
/// Rates over this time are what one core does while it runs the
/// benchmark, even when other work on a shared machine takes turns on it.
pub fn thread_cpu_ns() -> Option<u64> {
    let stat = fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}
