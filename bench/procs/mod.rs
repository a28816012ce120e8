//! Processes the load benchmarks (`latency`, `fanout`, `peer`) start and
//! watch: klinecast servers, `klinecast-loadgen`, Kafka's own tools, and
//! what `/proc` says about them. Starting, stopping, HTTP and topics are
//! the tests' helpers (`tests/support`), shared with the benchmarks.
//!
//! Bounds: every process runs under `timeout(1)` with a hard time limit, so
//! it ends by itself even if the benchmark dies; its handle stops it
//! (SIGTERM, then SIGKILL after a grace) when dropped. Servers listen
//! on 127.0.0.1 only, on a port free at start, with a fresh topic that is
//! deleted afterwards. Nothing here needs more than one process's worth of
//! open files.

// Each benchmark includes this module and uses a different subset of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::net;
use crate::support::process::{Child, Spec};

/// The result type of everything here.
pub type Res<T> = Result<T, Box<dyn Error>>;

/// The `klinecast` binary cargo built for this benchmark (release profile
/// under `cargo bench`).
pub use crate::support::process::KLINECAST;
/// The load generator built with it.
pub const LOADGEN: &str = env!("CARGO_BIN_EXE_klinecast-loadgen");
/// The fan-out floor (`bench/floor.rs`).
#[allow(dead_code)] // used by the peer benchmark only
pub const FLOOR: &str = env!("CARGO_BIN_EXE_klinecast-floor");
/// Broker unless `KLINECAST_BENCH_BROKERS` says otherwise.
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";
/// Extra time `timeout(1)` allows beyond a process's planned run.
const LIMIT_SLACK: Duration = Duration::from_secs(120);
/// Longest time spent scraping the processes behind one port.
const SCRAPE_BUDGET: Duration = Duration::from_secs(10);
/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`).
const TICKS_PER_S: f64 = 100.0;

/// The repository root (where `scripts/` lives).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where process logs and loadgen summaries go: `target/bench-logs/`.
pub fn log_dir() -> Res<PathBuf> {
    let dir = repo_root().join("target").join("bench-logs");
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The broker to measure against.
pub fn brokers() -> String {
    std::env::var("KLINECAST_BENCH_BROKERS").unwrap_or_else(|_| DEFAULT_BROKERS.to_owned())
}

/// A numeric setting from the environment, or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Res<T> {
    match std::env::var(name) {
        Ok(text) => text.parse().map_err(|_| format!("{name}={text:?} is not a valid value").into()),
        Err(_) => Ok(default),
    }
}

/// Starts `program args` under `timeout(1)` with a limit of `planned` plus
/// slack; stdout and stderr go to `log`, `env` is added to the environment.
pub fn spawn(
    name: &str,
    program: &str,
    args: &[String],
    env: &[(&str, &str)],
    planned: Duration,
    log: &Path,
) -> Res<Child> {
    let spec = Spec {
        name,
        program,
        args: args.to_vec(),
        env: env.to_vec(),
        log: log.to_owned(),
        piped_stdin: false,
        limit: Some(planned + LIMIT_SLACK),
    };
    Ok(Child::start(spec)?)
}

/// What `/proc/<pid>` says about a process at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct ProcSample {
    /// Resident memory, KiB (`VmRSS`).
    pub rss_kib: u64,
    /// Its anonymous part (heap, stacks), KiB.
    pub rss_anon_kib: u64,
    /// Its file-backed part (the binary, libraries), KiB.
    pub rss_file_kib: u64,
    /// Threads.
    pub threads: u64,
    /// Open file descriptors.
    pub fds: u64,
    /// User + system CPU seconds so far, all threads.
    pub cpu_s: f64,
    /// The user-space part of it.
    pub user_cpu_s: f64,
}

impl ProcSample {
    /// Reads `/proc/<pid>/status`, `stat` and `fd`; `None` once the
    /// process is gone.
    pub fn of(pid: u32) -> Option<Self> {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let fds = fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
        Some(Self {
            rss_kib: field("VmRSS:"),
            rss_anon_kib: field("RssAnon:"),
            rss_file_kib: field("RssFile:"),
            threads: field("Threads:"),
            fds,
            cpu_s: cpu_s_of_stat(&stat),
            user_cpu_s: user_cpu_s_of_stat(&stat),
        })
    }

    /// Field-wise sum (for several processes of one role).
    pub fn sum(samples: &[Self]) -> Self {
        samples.iter().fold(Self::default(), |a, s| Self {
            rss_kib: a.rss_kib + s.rss_kib,
            rss_anon_kib: a.rss_anon_kib + s.rss_anon_kib,
            rss_file_kib: a.rss_file_kib + s.rss_file_kib,
            threads: a.threads + s.threads,
            fds: a.fds + s.fds,
            cpu_s: a.cpu_s + s.cpu_s,
            user_cpu_s: a.user_cpu_s + s.user_cpu_s,
        })
    }
}

/// utime + stime of a `/proc/<pid>/stat` line, in seconds.
pub fn cpu_s_of_stat(stat: &str) -> f64 {
    // Fields after the command name (which ends with the last ')'): index
    // 11 and 12 are utime and stime.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    fields.iter().skip(11).take(2).filter_map(|f| f.parse::<f64>().ok()).sum::<f64>() / TICKS_PER_S
}

/// utime of a `/proc/<pid>/stat` line, in seconds.
pub fn user_cpu_s_of_stat(stat: &str) -> f64 {
    let fields: Vec<&str> = stat.rsplit_once(')').map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    fields.get(11).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0) / TICKS_PER_S
}

/// Kernel TCP memory in use, KiB (`/proc/net/sockstat`, `TCP: ... mem N`
/// pages): socket buffers, not part of any process's RSS.
pub fn tcp_kernel_kib() -> u64 {
    let text = fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    let pages: u64 = text
        .lines()
        .find(|l| l.starts_with("TCP:"))
        .and_then(|l| l.split_whitespace().skip_while(|w| *w != "mem").nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4
}

/// `/metrics` of each of `processes` gateway processes that share `port`
/// (SO_REUSEPORT): the kernel picks a process per connection, so this
/// scrapes up to `tries` times (at most [`SCRAPE_BUDGET`] in all) and tells
/// the processes apart by counters a scrape does not change (open
/// WebSockets, commands received). `None` unless exactly `processes`
/// distinct ones answered.
pub fn metrics_per_process(port: u16, processes: usize, tries: usize) -> Option<Vec<BTreeMap<String, f64>>> {
    let mut seen: BTreeMap<(u64, u64), BTreeMap<String, f64>> = BTreeMap::new();
    let started = Instant::now();
    for _ in 0..tries {
        if seen.len() == processes || started.elapsed() > SCRAPE_BUDGET {
            break;
        }
        let Ok(m) = net::metrics(port, Duration::from_secs(2)) else { continue };
        let key = |name: &str| m.get(name).copied().unwrap_or(0.0) as u64;
        let id = (key("klinecast_websockets"), key("klinecast_commands_total"));
        seen.insert(id, m);
    }
    (seen.len() == processes).then(|| seen.into_values().collect())
}

/// Whether process `pid` holds a socket listening on 127.0.0.1:`port`.
pub fn listening(pid: u32, port: u16) -> bool {
    let table = fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let wanted = format!(":{port:04X}");
    let inodes: HashSet<String> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 9 && f[1].ends_with(&wanted) && f[3] == "0A").then(|| f[9].to_owned())
        })
        .collect();
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    fds.filter_map(|e| fs::read_link(e.ok()?.path()).ok()).any(|link| {
        let link = link.to_string_lossy();
        link.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')).is_some_and(|i| inodes.contains(i))
    })
}

/// Waits until every process in `pids` listens on `port`.
pub fn wait_listening(pids: &[u32], port: u16, limit: Duration) -> Res<()> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if pids.iter().all(|&pid| listening(pid, port)) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("not every gateway process listens on port {port} after {limit:?}").into())
}

/// A `klinecast-loadgen` run.
#[derive(Debug, Clone)]
pub struct LoadgenPlan {
    /// Gateway port on 127.0.0.1.
    pub port: u16,
    /// Clients of this process.
    pub clients: usize,
    /// Source addresses 127.0.0.1 ..= 127.0.0.N.
    pub sources: u8,
    /// Time over which clients connect.
    pub ramp: Duration,
    /// Time measured after the ramp.
    pub duration: Duration,
    /// `--subscribe` mix.
    pub subscribe: String,
    /// `--cores`.
    pub cores: String,
    /// `--schedule START_NS:RATE` (latency from each update's intended
    /// time), if any.
    pub schedule: Option<String>,
    /// Further arguments (`--protocol`, `--format`).
    pub extra_args: Vec<String>,
}

impl LoadgenPlan {
    /// Its command line (after the program), writing the summary to
    /// `summary`.
    pub fn args(&self, summary: &Path) -> Vec<String> {
        let mut args = vec![
            "--target".into(),
            format!("127.0.0.1:{}", self.port),
            "--clients".into(),
            self.clients.to_string(),
            "--sources".into(),
            self.sources.to_string(),
            "--ramp".into(),
            humantime::format_duration(self.ramp).to_string(),
            "--duration".into(),
            humantime::format_duration(self.duration).to_string(),
            "--subscribe".into(),
            self.subscribe.clone(),
            "--cores".into(),
            self.cores.clone(),
        ];
        if let Some(schedule) = &self.schedule {
            args.extend(["--schedule".into(), schedule.clone()]);
        }
        args.extend(self.extra_args.iter().cloned());
        args.extend(["--summary".into(), summary.display().to_string()]);
        args
    }

    /// Starts it; the summary lands in `<logs>/<name>.json`.
    pub fn start(&self, name: &str) -> Res<(Child, PathBuf)> {
        let dir = log_dir()?;
        let summary = dir.join(format!("{name}.json"));
        let _ = fs::remove_file(&summary);
        let spawned = spawn(
            name,
            LOADGEN,
            &self.args(&summary),
            &[],
            self.ramp + self.duration,
            &dir.join(format!("{name}.log")),
        )?;
        Ok((spawned, summary))
    }
}

/// The JSON summary a loadgen wrote.
pub fn read_summary(path: &Path) -> Res<serde_json::Value> {
    let text = fs::read_to_string(path).map_err(|e| format!("no loadgen summary {}: {e}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// One progress line of a loadgen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Seconds since the loadgen started (printed rounded to whole seconds).
    pub secs: f64,
    /// Clients connected so far.
    pub connected: u64,
    /// Subscriptions acknowledged so far (0 from a loadgen that did not
    /// print them).
    pub subscribed: u64,
    /// Clients that could not connect so far.
    pub failed: u64,
    /// Clients whose connection the server closed so far.
    pub closed: u64,
    /// Bars received so far.
    pub bars: u64,
    /// `seq` gaps and the updates missing in them so far.
    pub gaps: u64,
    pub missing: u64,
}

impl Progress {
    /// A loadgen summary made from this line, for a loadgen that wrote
    /// none (it had to be stopped): no latency numbers.
    pub fn as_summary(&self) -> serde_json::Value {
        serde_json::json!({
            "connected": self.connected, "failed": self.failed, "closed_by_server": self.closed,
            "bars": self.bars, "seq_gaps": self.gaps, "missing_updates": self.missing,
            "from_progress_line": true,
        })
    }
}

/// The latest progress line of a loadgen log.
pub fn loadgen_progress(log: &Path) -> Option<Progress> {
    let text = fs::read_to_string(log).ok()?;
    text.lines().rev().find_map(parse_progress)
}

/// `[  12s] connected 10 failed 0 closed 0 | bars 1234 (100/s) gaps ...`.
pub fn parse_progress(line: &str) -> Option<Progress> {
    let rest = line.trim_start().strip_prefix('[')?;
    let (secs, rest) = rest.split_once("s]")?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    let after = |name: &str| words.iter().position(|w| *w == name).and_then(|i| words.get(i + 1)?.parse().ok());
    Some(Progress {
        secs: secs.trim().parse().ok()?,
        connected: after("connected")?,
        subscribed: after("subscribed").unwrap_or(0),
        failed: after("failed")?,
        closed: after("closed")?,
        bars: after("bars")?,
        gaps: after("gaps")?,
        missing: after("missing")?,
    })
}

/// A field of a JSON summary as f64 (0 when absent).
pub fn num(value: &serde_json::Value, path: &[&str]) -> f64 {
    path.iter().try_fold(value, |v, k| v.get(k)).and_then(serde_json::Value::as_f64).unwrap_or(0.0)
}

/// The 1-minute load average.
pub fn load1() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// The pid of the local broker started by `scripts/kafka-up.sh` for
/// `brokers` (`.kafka/<port>/kafka.pid`), if it is there.
pub fn broker_pid(brokers: &str) -> Option<u32> {
    let port = brokers.split(',').next()?.rsplit_once(':')?.1;
    let text = fs::read_to_string(repo_root().join(".kafka").join(port).join("kafka.pid")).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

/// `cmd args...` as one shell-like line for the report.
pub fn command_line(program: &str, args: &[String]) -> String {
    let program = Path::new(program).strip_prefix(repo_root()).map_or(program.to_owned(), |p| p.display().to_string());
    std::iter::once(program).chain(args.iter().map(|a| quote(a))).collect::<Vec<_>>().join(" ")
}

fn quote(arg: &str) -> String {
    if arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:/=,".contains(c)) {
        arg.to_owned()
    } else {
        format!("'{arg}'")
    }
}

/// Checks the parsers on canned input (the smoke run of `cargo test`).
pub fn smoke() -> Res<()> {
    let line = "[  12s] connected 10 subscribed 9 failed 0 closed 2 | bars 1234 (100/s) gaps 0 missing 0 invalid 0";
    let want =
        Progress { secs: 12.0, connected: 10, subscribed: 9, failed: 0, closed: 2, bars: 1234, gaps: 0, missing: 0 };
    if parse_progress(line) != Some(want) {
        return Err(format!("progress line misread: {:?}", parse_progress(line)).into());
    }
    let stat = "42 (klinecast gw) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
    if (cpu_s_of_stat(stat) - 3.0).abs() > 1e-9 || (user_cpu_s_of_stat(stat) - 2.5).abs() > 1e-9 {
        return Err("stat line misread".into());
    }
    let m = net::parse_metrics("# HELP x y\n# TYPE x counter\nklinecast_ws_frames_sent_total 17\n");
    if m.get("klinecast_ws_frames_sent_total") != Some(&17.0) {
        return Err("metrics misread".into());
    }
    if ProcSample::of(std::process::id()).is_none_or(|s| s.threads == 0) {
        return Err("cannot read /proc/self".into());
    }
    Ok(())
}

/// Busy and total jiffies of all CPUs so far (`/proc/stat`).
fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal ...
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    let total: u64 = fields.iter().take(8).sum();
    Some((total - idle, total))
}

/// Waits until the machine's CPUs were at least 90 % idle over each of two
/// consecutive seconds (what an earlier case left running has ended), for
/// at most `limit`. Returns how long it waited and whether it got there.
pub fn wait_idle(limit: Duration) -> (Duration, bool) {
    let started = Instant::now();
    let mut quiet_seconds = 0;
    let mut last = cpu_jiffies();
    while started.elapsed() < limit {
        std::thread::sleep(Duration::from_secs(1));
        let now = cpu_jiffies();
        let idle = match (last, now) {
            (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => 1.0 - (b1 - b0) as f64 / (t1 - t0) as f64,
            _ => return (started.elapsed(), false),
        };
        last = now;
        quiet_seconds = if idle >= 0.9 { quiet_seconds + 1 } else { 0 };
        if quiet_seconds >= 2 {
            return (started.elapsed(), true);
        }
    }
    (started.elapsed(), false)
}
