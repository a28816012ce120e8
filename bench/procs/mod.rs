//! Processes the load benchmarks (`latency`, `fanout`) start and watch:
//! klinecast servers, `klinecast-loadgen` and Kafka's own tools.
//!
//! Bounds: every process runs under `timeout(1)` with a hard time limit, so
//! it ends by itself even if the benchmark dies; its handle stops it
//! (SIGTERM, then SIGKILL after [`STOP_GRACE`]) when dropped. Servers listen
//! on 127.0.0.1 only, on a port free at start, with a fresh topic that is
//! deleted afterwards. Nothing here needs more than one process's worth of
//! open files.

// Each benchmark includes this module and uses a different subset of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::error::Error;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use klinecast::kafka::KafkaConfig;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::util::Timeout;

/// The result type of everything here.
pub type Res<T> = Result<T, Box<dyn Error>>;

/// The `klinecast` binary cargo built for this benchmark (release profile
/// under `cargo bench`).
pub const KLINECAST: &str = env!("CARGO_BIN_EXE_klinecast");
/// The load generator built with it.
pub const LOADGEN: &str = env!("CARGO_BIN_EXE_klinecast-loadgen");
/// Broker unless `KLINECAST_BENCH_BROKERS` says otherwise.
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";
/// Time a stopped process gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(15);
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

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Res<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

/// A started process, stopped when dropped.
pub struct Spawned {
    /// Name for logs and errors.
    pub name: String,
    /// The `timeout(1)` wrapper.
    wrapper: Child,
    /// The program itself (the wrapper's child): the pid to sample.
    pub pid: u32,
    /// Its stdout and stderr.
    pub log: PathBuf,
    /// Exit status, once reaped.
    status: Option<ExitStatus>,
}

impl Spawned {
    /// Starts `program args` under `timeout` with a limit of `planned` plus
    /// slack; stdout and stderr go to `log`. `env` is added to the
    /// environment.
    pub fn start(
        name: &str,
        program: &str,
        args: &[String],
        env: &[(&str, &str)],
        planned: Duration,
        log: &Path,
    ) -> Res<Self> {
        let out = fs::File::create(log)?;
        let err = out.try_clone()?;
        let limit = (planned + LIMIT_SLACK).as_secs().to_string() + "s";
        let mut command = Command::new("timeout");
        command.args(["-k", "10s", &limit, program]).args(args).stdin(Stdio::null()).stdout(out).stderr(err);
        for (key, value) in env {
            command.env(key, value);
        }
        let wrapper = command.spawn().map_err(|e| format!("{name}: cannot start timeout(1) {program}: {e}"))?;
        let mut spawned = Self { name: name.to_owned(), pid: wrapper.id(), wrapper, log: log.to_owned(), status: None };
        spawned.pid = spawned.find_child()?;
        Ok(spawned)
    }

    /// The wrapper's child, from `/proc/<pid>/task/<pid>/children`.
    fn find_child(&mut self) -> Res<u32> {
        let wrapper = self.wrapper.id();
        let path = format!("/proc/{wrapper}/task/{wrapper}/children");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if let Ok(text) = fs::read_to_string(&path)
                && let Some(pid) = text.split_whitespace().next().and_then(|p| p.parse().ok())
            {
                return Ok(pid);
            }
            if let Some(status) = self.wrapper.try_wait()? {
                return Err(format!("{} exited at once ({status}); see {}", self.name, self.log.display()).into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(format!("{}: no child process under timeout(1)", self.name).into())
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        if self.status.is_some() {
            return false;
        }
        match self.wrapper.try_wait() {
            Ok(Some(status)) => {
                self.status = Some(status);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// Waits up to `limit` for the process to end by itself; stops it if
    /// it does not. Returns whether it ended by itself with success.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let started = Instant::now();
        while self.running() && started.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.running() {
            eprintln!("{}: still running after {limit:?}; stopping it", self.name);
            self.stop();
            return false;
        }
        self.status.is_some_and(|s| s.success())
    }

    /// SIGTERM (forwarded by `timeout`), then SIGKILL after [`STOP_GRACE`].
    pub fn stop(&mut self) {
        if !self.running() {
            return;
        }
        signal(self.wrapper.id(), "TERM");
        let started = Instant::now();
        while self.running() && started.elapsed() < STOP_GRACE {
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.running() {
            eprintln!("{}: no exit {STOP_GRACE:?} after SIGTERM; SIGKILL", self.name);
            signal(self.pid, "KILL");
            let _ = self.wrapper.kill();
            if let Ok(status) = self.wrapper.wait() {
                self.status = Some(status);
            }
        }
    }

    /// The tail of the process's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends `SIG<name>` to `pid` with kill(1) (the benchmarks link no libc
/// bindings).
fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).stderr(Stdio::null()).status();
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

/// One HTTP/1.1 GET to 127.0.0.1:`port`: (status, body).
pub fn http_get(port: u16, path: &str, limit: Duration) -> Res<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), limit)?;
    stream.set_read_timeout(Some(limit))?;
    stream.set_write_timeout(Some(limit))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some((head, body)) = split_response(&buf)
            && content_length(head).is_some_and(|len| body.len() >= len)
        {
            break;
        }
    }
    let (head, body) = split_response(&buf).ok_or("no HTTP response head")?;
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or("no HTTP status")?;
    Ok((status, body.to_owned()))
}

fn split_response(buf: &[u8]) -> Option<(&str, &str)> {
    let text = std::str::from_utf8(buf).ok()?;
    text.split_once("\r\n\r\n")
}

fn content_length(head: &str) -> Option<usize> {
    head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
    })
}

/// Waits until `GET /healthz` answers 200 `times` times in a row (several
/// processes may share the port), within `limit`.
pub fn wait_healthy(port: u16, times: usize, limit: Duration) -> Res<()> {
    let started = Instant::now();
    let mut in_a_row = 0;
    while started.elapsed() < limit {
        match http_get(port, "/healthz", Duration::from_secs(1)) {
            Ok((200, _)) => in_a_row += 1,
            _ => {
                in_a_row = 0;
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        if in_a_row >= times {
            return Ok(());
        }
    }
    Err(format!("no healthy gateway on 127.0.0.1:{port} within {limit:?}").into())
}

/// The Prometheus text of `/metrics` as name → value.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.split_once(' ')?;
            Some((name.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// `/metrics` of the gateway on `port`.
pub fn metrics(port: u16) -> Res<BTreeMap<String, f64>> {
    metrics_within(port, Duration::from_secs(5))
}

fn metrics_within(port: u16, limit: Duration) -> Res<BTreeMap<String, f64>> {
    let (status, body) = http_get(port, "/metrics", limit)?;
    if status != 200 {
        return Err(format!("/metrics answered {status}").into());
    }
    Ok(parse_metrics(&body))
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
        let Ok(m) = metrics_within(port, Duration::from_secs(2)) else { continue };
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

/// Creates `topic` with `partitions` partitions (one per window, as
/// klinecast lays it out) before a server starts, so the server never races
/// the broker's leader election for a topic it just created.
pub fn create_topic(brokers: &str, topic: &str, partitions: i32) -> Res<()> {
    let config = KafkaConfig { brokers: brokers.to_owned(), topic: topic.to_owned(), overrides: vec![] };
    klinecast::kafka::topic::ensure_topic(&config, partitions)?;
    std::thread::sleep(Duration::from_secs(1));
    Ok(())
}

/// Deletes bench topics; failures are reported, not fatal.
pub fn delete_topics(brokers: &str, topics: &[String]) {
    if topics.is_empty() {
        return;
    }
    if let Err(error) = try_delete_topics(brokers, topics) {
        eprintln!("could not delete topics {topics:?}: {error}");
    }
}

fn try_delete_topics(brokers: &str, topics: &[String]) -> Res<()> {
    let config = KafkaConfig { brokers: brokers.to_owned(), topic: String::new(), overrides: vec![] };
    let admin: AdminClient<DefaultClientContext> = config.admin().create()?;
    let options = AdminOptions::new().operation_timeout(Some(Timeout::After(Duration::from_secs(10))));
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    for result in futures_lite::future::block_on(admin.delete_topics(&names, &options))? {
        result.map_err(|(name, code)| format!("{name}: {code}"))?;
    }
    Ok(())
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
    /// `--expected-interval` (coordinated-omission correction), if any.
    pub expected_interval: Option<Duration>,
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
        if let Some(interval) = self.expected_interval {
            args.extend(["--expected-interval".into(), format!("{}us", interval.as_micros())]);
        }
        args.extend(["--summary".into(), summary.display().to_string()]);
        args
    }

    /// Starts it; the summary lands in `<logs>/<name>.json`.
    pub fn start(&self, name: &str) -> Res<(Spawned, PathBuf)> {
        let dir = log_dir()?;
        let summary = dir.join(format!("{name}.json"));
        let _ = fs::remove_file(&summary);
        let spawned = Spawned::start(
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
    let line = "[  12s] connected 10 failed 0 closed 2 | bars 1234 (100/s) gaps 0 missing 0 invalid 0";
    let want = Progress { secs: 12.0, connected: 10, failed: 0, closed: 2, bars: 1234, gaps: 0, missing: 0 };
    if parse_progress(line) != Some(want) {
        return Err(format!("progress line misread: {:?}", parse_progress(line)).into());
    }
    let stat = "42 (klinecast gw) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
    if (cpu_s_of_stat(stat) - 3.0).abs() > 1e-9 {
        return Err("stat line misread".into());
    }
    let m = parse_metrics("# HELP x y\n# TYPE x counter\nklinecast_ws_frames_sent_total 17\n");
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
