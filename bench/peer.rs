//! SPEC §7 rows "against Centrifugo", "fan-out vs the floor" and "fan-out":
//! klinecast's shared-mode gateway next to Centrifugo (a widely used Go
//! real-time server) and next to the floor (`klinecast-floor`,
//! `bench/floor.rs`: one pre-encoded frame per update written to every
//! socket with a plain `send` loop, `writev`, one io_uring batch, or
//! io_uring with SQPOLL, and nothing else) on the same feed, the same
//! clients, the same core, in the same run, one server at a time.
//!
//! - Centrifugo is the release the SPEC names, built from the Go module
//!   proxy by `scripts/bench.sh peer` into `target/peer/` and handed over in
//!   `KLINECAST_BENCH_CENTRIFUGO`. It reads the topic with its Kafka consumer
//!   in publication-data mode: each record's value is published as is to
//!   the channels named in its `centrifugo-channels` header.
//! - The feed: bar updates of one 1 s series made by `klinecast ingest` (mock
//!   source) and read back once; each run produces them again from this
//!   process to a fresh topic at the case's rate, `produced_ns` stamped at
//!   the send, every record with the header, so both servers get the same
//!   records (Centrifugo's JSON runs get the bar's JSON line as the value,
//!   since its JSON clients get the data verbatim; klinecast makes that JSON
//!   itself from the binary bar).
//! - The clients: `klinecast-loadgen` on core 0, the same program for both
//!   servers, speaking each one's protocol (`--protocol`, `--format`);
//!   every client subscribes to the one series and must get every update.
//! - The servers run alone on core 1 (`taskset -c 1`, whole process:
//!   klinecast's Kafka threads, Centrifugo's Go runtime, which then runs
//!   with GOMAXPROCS 1).
//!
//! Each run: the server starts, its idle RSS and CPU are read, the clients
//! connect and subscribe, then the feed runs for [`FEED`] and the clients
//! get [`DRAIN`] more. Server CPU is utime + stime of its process over the
//! feed and drain; memory per connection is RSS at the end of the feed minus
//! the idle RSS, over the clients; delivery is bars received over updates
//! sent × clients; latency is `produced_ns` → client receive.
//!
//! Needs a broker (`KLINECAST_BENCH_BROKERS`); without `--bench`
//! (`cargo test --all-targets`) it only checks its parsers and config.

mod common;
mod procs;
#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use klinecast::codec::bar::{self, Bar};
use klinecast::codec::json::BarJson;
use klinecast::kafka::KafkaConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde::Serialize;
use serde_json::json;

use common::verdict;
use procs::{LoadgenPlan, ProcSample, Res};
use support::Child;

/// (clients, updates per second of the series), in the order they run.
const CASES: [(usize, u32); 4] = [(1000, 100), (1000, 10), (10_000, 2), (10_000, 10)];
/// Time the feed runs per case (`KLINECAST_BENCH_PEER_FEED_S` overrides).
const FEED: Duration = Duration::from_secs(20);
/// Time after the ramp before the feed starts (subscriptions settle).
const SETTLE: Duration = Duration::from_secs(3);
/// Time the clients get after the feed, to receive what is in flight.
const DRAIN: Duration = Duration::from_secs(4);
/// Clients connect at this rate.
const RAMP_PER_S: usize = 2000;
/// Shortest ramp.
const MIN_RAMP: Duration = Duration::from_secs(2);
/// The core of the server under test, and of the clients (with the
/// broker and the feed).
const SERVER_CORE: &str = "1";
const CLIENT_CORE: &str = "0";
/// Loopback source addresses of the clients.
const SOURCES: u8 = 8;
/// Both servers ping idle clients at this interval.
const PING_INTERVAL: &str = "30s";
/// The channel of the 1 s series on Centrifugo (`bars_<window>`, as the
/// loadgen subscribes), and the header that names it.
const CHANNEL: &str = "bars_1s";
const CHANNELS_HEADER: &str = "centrifugo-channels";
/// Updates of the series recorded from `klinecast ingest` for the feed.
const RECORD_RATE: &str = "1000";
/// Longest wait for the recording.
const RECORD_LIMIT: Duration = Duration::from_secs(60);
/// SPEC §7 bars.
const BAR_CPU_BINARY: f64 = 1.0 / 3.0;
const BAR_CPU_JSON: f64 = 1.0 / 2.0;
const BAR_MEMORY: f64 = 1.0 / 10.0;
const BAR_P99_MS: f64 = 100.0;
const BAR_FANOUT_P99_MS: f64 = 50.0;
const BAR_HOP_P99_MS: f64 = 0.5;
/// Names of the rows in SPEC §7.
const ROW_PEER: &str = "against Centrifugo";
const ROW_FANOUT: &str = "fan-out";
const ROW_FLOOR: &str = "fan-out vs the floor";
/// SPEC §7 bars against the floor: CPU per delivered frame ...
const BAR_FLOOR_CPU_BINARY: f64 = 1.15;
const BAR_FLOOR_CPU_JSON: f64 = 1.3;
/// ... and the p99 of one update to 10,000 clients.
const BAR_FLOOR_P99: f64 = 1.2;

/// The servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Server {
    Klinecast,
    Centrifugo,
    /// The floor, with how it writes (`klinecast-floor --mode`).
    Floor(FloorMode),
}

/// `klinecast-floor --mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum FloorMode {
    Send,
    Writev,
    Uring,
    Sqpoll,
}

/// Every server, in the order each case runs them.
const SERVERS: [Server; 6] = [
    Server::Klinecast,
    Server::Centrifugo,
    Server::Floor(FloorMode::Send),
    Server::Floor(FloorMode::Writev),
    Server::Floor(FloorMode::Uring),
    Server::Floor(FloorMode::Sqpoll),
];

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Klinecast => "klinecast",
            Server::Centrifugo => "centrifugo",
            Server::Floor(FloorMode::Send) => "floor-send",
            Server::Floor(FloorMode::Writev) => "floor-writev",
            Server::Floor(FloorMode::Uring) => "floor-uring",
            Server::Floor(FloorMode::Sqpoll) => "floor-sqpoll",
        }
    }

    fn is_floor(self) -> bool {
        matches!(self, Server::Floor(_))
    }
}

/// One server on one case in one format.
#[derive(Debug, Clone, Serialize)]
struct Run {
    server: Server,
    format: &'static str,
    clients: usize,
    rate_per_s: u32,
    updates_sent: u64,
    feed_s: f64,
    connected: u64,
    subscribed: u64,
    closed_by_server: u64,
    bars: u64,
    delivered_pct: f64,
    seq_gaps: u64,
    server_cpu_s: f64,
    /// Its user-space part.
    server_user_cpu_s: f64,
    cpu_s_per_million_frames: Option<f64>,
    /// User-space and kernel CPU per delivered frame, µs.
    user_us_per_frame: Option<f64>,
    kernel_us_per_frame: Option<f64>,
    rss_idle_kib: u64,
    rss_end_kib: u64,
    rss_peak_kib: u64,
    kib_per_connection: f64,
    threads: u64,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
    latency_max_ms: f64,
    loadgen_cpu_s: f64,
    load_before: String,
    load_after: String,
    server_command: String,
    loadgen_command: String,
    error: Option<String>,
}

fn main() -> Res<()> {
    if !common::bench_mode() {
        procs::smoke()?;
        let config = centrifugo_config("127.0.0.1:9092", "t", 8000, "g");
        if config["consumers"][0]["kafka"]["publication_data_mode"]["channels_header"] != CHANNELS_HEADER {
            return Err("Centrifugo config misbuilt".into());
        }
        println!("peer: config ok; skipped the measurement (scripts/bench.sh peer)");
        return Ok(());
    }
    let centrifugo = std::env::var("KLINECAST_BENCH_CENTRIFUGO").unwrap_or_default();
    let version = centrifugo_version(&centrifugo);
    let brokers = procs::brokers();
    let feed_time = Duration::from_secs(procs::env_or("KLINECAST_BENCH_PEER_FEED_S", FEED.as_secs())?);
    let stamp = common::unix_now_s();
    let load_start = common::loadavg();
    let selection = Selection::from_env()?;
    let most = CASES.iter().map(|&(_, rate)| u64::from(rate) * feed_time.as_secs()).max().unwrap_or(0);
    let feed = record_feed(&brokers, most as usize, stamp)?;
    eprintln!("peer: {} bar updates recorded for the feed", feed.len());
    let mut runs = Vec::new();
    for &(clients, rate) in &CASES {
        for format in ["binary", "json"] {
            for server in SERVERS {
                if !selection.wants(server, format, (clients, rate)) {
                    continue;
                }
                let case = Case { server, format, clients, rate, feed_time, stamp };
                let run = case.run(&brokers, &centrifugo, &feed);
                report_run(&run);
                runs.push(run);
            }
        }
    }
    let load_end = common::loadavg();
    let hop = latency_hop();
    let section = section(&runs, &version, [&load_start, &load_end], &brokers, feed_time, hop);
    println!("{section}");
    let rows = rows(&runs, hop);
    let result = json!({
        "bench": "peer",
        "spec_rows": [ROW_PEER, ROW_FLOOR, ROW_FANOUT],
        "measured_at_unix_s": common::unix_now_s(),
        "centrifugo_version": version,
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "brokers": brokers,
        "feed_s": feed_time.as_secs_f64(),
        "runs": runs,
        "latency_hop_p99_ms": hop,
    });
    common::write_results("peer", &result, &section, &rows)
}

/// Which runs to make: all by default; for a look at one server, format or
/// case, `KLINECAST_BENCH_PEER_SERVERS=klinecast`,
/// `KLINECAST_BENCH_PEER_FORMATS=binary`, `KLINECAST_BENCH_PEER_CASES=10000x10`
/// (comma-separated lists). The report then says what was not run.
struct Selection {
    servers: Option<Vec<String>>,
    formats: Option<Vec<String>>,
    cases: Option<Vec<String>>,
}

impl Selection {
    fn from_env() -> Res<Self> {
        let list = |name: &str| std::env::var(name).ok().map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
        Ok(Self {
            servers: list("KLINECAST_BENCH_PEER_SERVERS"),
            formats: list("KLINECAST_BENCH_PEER_FORMATS"),
            cases: list("KLINECAST_BENCH_PEER_CASES"),
        })
    }

    fn wants(&self, server: Server, format: &str, (clients, rate): (usize, u32)) -> bool {
        let has = |list: &Option<Vec<String>>, item: &str| list.as_ref().is_none_or(|l| l.iter().any(|x| x == item));
        has(&self.servers, server.name())
            && has(&self.formats, format)
            && has(&self.cases, &format!("{clients}x{rate}"))
    }
}

/// Centrifugo's module version and Go version from the binary's build info
/// (its `version` command says v0.0.0 for a `go install` build).
fn centrifugo_version(binary: &str) -> String {
    let info = std::process::Command::new("go").args(["version", "-m", binary]).output();
    let text = info.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    let go = text.lines().next().and_then(|l| l.rsplit(' ').next()).unwrap_or("?").to_owned();
    let module = text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 3 && f[0] == "mod" && f[1] == "github.com/centrifugal/centrifugo/v6").then(|| f[2].to_owned())
    });
    match module {
        Some(v) => format!("Centrifugo {v} (github.com/centrifugal/centrifugo/v6 {v}, {go})"),
        None => "Centrifugo: not found (KLINECAST_BENCH_CENTRIFUGO; `scripts/bench.sh peer` builds it)".into(),
    }
}

// --- the feed ------------------------------------------------------------------

/// At least `needed` updates of one 1 s series from `klinecast ingest`
/// (mock source, one mint), in `seq` order.
fn record_feed(brokers: &str, needed: usize, stamp: u64) -> Res<Vec<Bar>> {
    let topic = format!("klinecast-bench-peer-record-{stamp}");
    support::create_topic(brokers, &topic, 1)?;
    let args: Vec<String> = [
        "ingest",
        "--brokers",
        brokers,
        "--topic",
        &topic,
        "--windows",
        "1s",
        "--mock-mints",
        "1",
        "--mock-rate",
        RECORD_RATE,
        "--cores",
        CLIENT_CORE,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let log = procs::log_dir()?.join("peer-record-ingest.log");
    let mut ingest =
        procs::spawn("klinecast ingest", procs::KLINECAST, &args, &[("KLINECAST_LOG", "warn")], RECORD_LIMIT, &log)?;
    let started = Instant::now();
    // A margin over `needed`: the first updates may belong to a bar that
    // started before the read-back's first offset.
    while support::end_offset(brokers, &topic, 0) < needed as i64 + 100 {
        if !ingest.alive() || started.elapsed() > RECORD_LIMIT {
            return Err(format!("ingest did not record {needed} updates:\n{}", ingest.log_tail()).into());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    ingest.stop();
    let bars: Vec<Bar> = support::read_all(brokers, &topic, Duration::from_secs(60))
        .iter()
        .filter_map(|m| bar::access(&m.payload).ok().map(|b| b.to_bar()))
        .collect();
    support::delete_topics(brokers, std::slice::from_ref(&topic));
    if bars.len() < needed || bars.windows(2).any(|w| w[1].seq != w[0].seq + 1 || w[1].mint != w[0].mint) {
        return Err(format!("the recording is not one gap-free series of {needed} updates").into());
    }
    Ok(bars)
}

/// Produces the feed: klinecast's own producer settings, partition 0 (the
/// 1 s window's), key `key_1`, the Centrifugo channel header.
struct Feeder {
    producer: BaseProducer,
    topic: String,
}

impl Feeder {
    fn connect(brokers: &str, topic: &str) -> Res<Self> {
        let config = KafkaConfig { brokers: brokers.to_owned(), topic: topic.to_owned(), overrides: vec![] };
        Ok(Self { producer: config.producer().create()?, topic: topic.to_owned() })
    }

    /// Sends `bars` at `rate` a second, each stamped as it goes; the JSON
    /// line instead of the binary bar when `json`. Calls `every_second`
    /// once a second (for samples). Returns how many were sent.
    fn run(&self, bars: &[Bar], rate: u32, json: bool, mut every_second: impl FnMut()) -> Res<u64> {
        let period = Duration::from_secs(1) / rate.max(1);
        let started = Instant::now();
        let mut next_sample = started + Duration::from_secs(1);
        for (i, bar) in bars.iter().enumerate() {
            let due = started + period * i as u32;
            while Instant::now() < due {
                std::thread::sleep(due.saturating_duration_since(Instant::now()).min(Duration::from_millis(50)));
                if Instant::now() >= next_sample {
                    every_second();
                    next_sample += Duration::from_secs(1);
                }
            }
            let stamped = Bar { produced_ns: unix_now_ns(), ..*bar };
            let payload = if json { BarJson::line(&stamped).into_bytes() } else { stamped.to_bytes() };
            let headers = OwnedHeaders::new().insert(Header { key: CHANNELS_HEADER, value: Some(CHANNEL) });
            let record = BaseRecord::to(&self.topic).partition(0).key("key_1").payload(&payload).headers(headers);
            self.producer.send(record).map_err(|(e, _)| e)?;
            self.producer.poll(Duration::ZERO);
        }
        self.producer.flush(Duration::from_secs(10))?;
        Ok(bars.len() as u64)
    }
}

fn unix_now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

// --- one run ------------------------------------------------------------------

/// What one run measures.
struct Case {
    server: Server,
    format: &'static str,
    clients: usize,
    rate: u32,
    feed_time: Duration,
    stamp: u64,
}

impl Case {
    fn label(&self) -> String {
        format!("{}-{}-{}x{}", self.server.name(), self.format, self.clients, self.rate)
    }

    /// The client protocol the server speaks (the floor speaks klinecast's).
    fn protocol(&self) -> &'static str {
        if self.server == Server::Centrifugo { "centrifugo" } else { "klinecast" }
    }

    /// The run, or what it got to before it failed (`error` set).
    fn run(&self, brokers: &str, centrifugo: &str, feed: &[Bar]) -> Run {
        let topic = format!("klinecast-bench-peer-{}-{}", self.label(), self.stamp);
        let mut run = self.empty_run();
        if let Err(error) = support::create_topic(brokers, &topic, 1)
            .map_err(Into::into)
            .and_then(|()| self.measure(brokers, &topic, centrifugo, feed, &mut run))
        {
            eprintln!("peer: {} failed: {error}", self.label());
            run.error = Some(error.to_string());
        }
        support::delete_topics(brokers, std::slice::from_ref(&topic));
        run
    }

    fn empty_run(&self) -> Run {
        Run {
            server: self.server,
            format: self.format,
            clients: self.clients,
            rate_per_s: self.rate,
            updates_sent: 0,
            feed_s: 0.0,
            connected: 0,
            subscribed: 0,
            closed_by_server: 0,
            bars: 0,
            delivered_pct: 0.0,
            seq_gaps: 0,
            server_cpu_s: 0.0,
            server_user_cpu_s: 0.0,
            cpu_s_per_million_frames: None,
            user_us_per_frame: None,
            kernel_us_per_frame: None,
            rss_idle_kib: 0,
            rss_end_kib: 0,
            rss_peak_kib: 0,
            kib_per_connection: 0.0,
            threads: 0,
            latency_p50_ms: 0.0,
            latency_p99_ms: 0.0,
            latency_max_ms: 0.0,
            loadgen_cpu_s: 0.0,
            load_before: common::loadavg(),
            load_after: String::new(),
            server_command: String::new(),
            loadgen_command: String::new(),
            error: None,
        }
    }

    fn measure(&self, brokers: &str, topic: &str, centrifugo: &str, feed: &[Bar], run: &mut Run) -> Res<()> {
        let port = support::free_port();
        let ramp = Duration::from_secs((self.clients / RAMP_PER_S) as u64).max(MIN_RAMP);
        let planned = ramp + SETTLE + self.feed_time + DRAIN + Duration::from_secs(60);
        let (program, args, health) = self.server_command(brokers, topic, port, centrifugo)?;
        run.server_command = procs::command_line(&program, &args);
        let log = procs::log_dir()?.join(format!("peer-{}-server.log", self.label()));
        let env = [("KLINECAST_LOG", "warn")];
        let mut server = procs::spawn(self.server.name(), &program, &args, &env, planned, &log)?;
        wait_healthy(&mut server, port, health)?;
        std::thread::sleep(Duration::from_secs(2));
        let idle = ProcSample::of(server.pid).ok_or("server gone")?;
        let format_arg = if self.format == "json" { "json" } else { "binary" };
        let plan = LoadgenPlan {
            port,
            clients: self.clients,
            sources: SOURCES,
            ramp,
            duration: SETTLE + self.feed_time + DRAIN,
            subscribe: "sub-1s".into(),
            cores: CLIENT_CORE.into(),
            schedule: None,
            extra_args: vec!["--protocol".into(), self.protocol().into(), "--format".into(), format_arg.into()],
        };
        run.loadgen_command =
            procs::command_line("target/release/klinecast-loadgen", &plan.args(Path::new("<summary>")));
        let started = Instant::now();
        let (mut loadgen, summary) = plan.start(&format!("peer-{}-loadgen", self.label()))?;
        std::thread::sleep((ramp + SETTLE).saturating_sub(started.elapsed()));
        if let Some(progress) = procs::loadgen_progress(&loadgen.log)
            && progress.subscribed < self.clients as u64
        {
            eprintln!(
                "peer: {}: {} of {} subscribed when the feed starts",
                self.label(),
                progress.subscribed,
                self.clients
            );
        }
        let before = ProcSample::of(server.pid).ok_or("server gone")?;
        let loadgen_before = ProcSample::of(loadgen.pid).map_or(0.0, |s| s.cpu_s);
        let updates = &feed[..(u64::from(self.rate) * self.feed_time.as_secs()) as usize];
        let feeder = Feeder::connect(brokers, topic)?;
        let json_payload = self.server == Server::Centrifugo && self.format == "json";
        let mut peak = before.rss_kib;
        let feed_started = Instant::now();
        run.updates_sent = feeder.run(updates, self.rate, json_payload, || {
            peak = peak.max(ProcSample::of(server.pid).map_or(0, |s| s.rss_kib));
        })?;
        run.feed_s = feed_started.elapsed().as_secs_f64();
        let end = ProcSample::of(server.pid).ok_or("server gone")?;
        std::thread::sleep(DRAIN);
        let after = ProcSample::of(server.pid).ok_or("server gone")?;
        run.loadgen_cpu_s = ProcSample::of(loadgen.pid).map_or(0.0, |s| s.cpu_s) - loadgen_before;
        let clean = loadgen.wait_exit(Duration::from_secs(60));
        server.stop();
        let summary = procs::read_summary(&summary)
            .map_err(|e| format!("{e}; loadgen {}:\n{}", if clean { "ok" } else { "failed" }, loadgen.log_tail()))?;
        let total = |k: &str| procs::num(&summary, &[k]) as u64;
        run.connected = total("connected");
        run.subscribed = total("subscribed");
        run.closed_by_server = total("closed_by_server");
        run.bars = total("bars");
        run.seq_gaps = total("seq_gaps");
        run.delivered_pct = 100.0 * run.bars as f64 / (run.updates_sent as f64 * self.clients as f64).max(1.0);
        run.server_cpu_s = after.cpu_s - before.cpu_s;
        run.server_user_cpu_s = after.user_cpu_s - before.user_cpu_s;
        run.cpu_s_per_million_frames = (run.bars > 0).then(|| run.server_cpu_s / (run.bars as f64 / 1e6));
        run.user_us_per_frame = (run.bars > 0).then(|| run.server_user_cpu_s * 1e6 / run.bars as f64);
        run.kernel_us_per_frame =
            (run.bars > 0).then(|| (run.server_cpu_s - run.server_user_cpu_s) * 1e6 / run.bars as f64);
        run.rss_idle_kib = idle.rss_kib;
        run.rss_end_kib = end.rss_kib;
        run.rss_peak_kib = peak.max(end.rss_kib);
        run.kib_per_connection = (end.rss_kib as f64 - idle.rss_kib as f64) / run.connected.max(1) as f64;
        run.threads = end.threads;
        run.latency_p50_ms = procs::num(&summary, &["latency_us", "p50"]) / 1e3;
        run.latency_p99_ms = procs::num(&summary, &["latency_us", "p99"]) / 1e3;
        run.latency_max_ms = procs::num(&summary, &["latency_us", "max"]) / 1e3;
        run.load_after = common::loadavg();
        Ok(())
    }

    /// The server's command line (under `taskset`) and its health path.
    fn server_command(
        &self,
        brokers: &str,
        topic: &str,
        port: u16,
        centrifugo: &str,
    ) -> Res<(String, Vec<String>, &'static str)> {
        let mut args: Vec<String> = vec!["-c".into(), SERVER_CORE.into()];
        let health = match self.server {
            Server::Klinecast => {
                args.push(procs::KLINECAST.into());
                #[rustfmt::skip]
                args.extend([
                    "gateway", "--brokers", brokers, "--topic", topic, "--listen", &format!("127.0.0.1:{port}"),
                    "--windows", "1s", "--fanout", "shared", "--push-interval", "0", "--shards", "1",
                    "--cores", SERVER_CORE, "--max-connections", "100000", "--max-connections-per-ip", "100000",
                    "--ping-interval", PING_INTERVAL,
                ].map(String::from));
                "/healthz"
            }
            Server::Floor(_) => {
                args.push(procs::FLOOR.into());
                let mode = self.server.name().trim_start_matches("floor-");
                let format = if self.format == "json" { "json" } else { "binary" };
                #[rustfmt::skip]
                args.extend([
                    "--brokers", brokers, "--topic", topic, "--listen", &format!("127.0.0.1:{port}"),
                    "--mode", mode, "--format", format,
                ].map(String::from));
                "/healthz"
            }
            Server::Centrifugo => {
                let group = format!("klinecast-bench-peer-{}-{}", self.label(), self.stamp);
                let config = centrifugo_config(brokers, topic, port, &group);
                let path = procs::log_dir()?.join(format!("peer-{}-centrifugo.json", self.label()));
                std::fs::write(&path, serde_json::to_string_pretty(&config)?)?;
                args.extend([centrifugo.to_owned(), "--config".into(), path.display().to_string()]);
                "/health"
            }
        };
        Ok(("taskset".into(), args, health))
    }
}

/// Centrifugo's configuration for a run: HTTP on 127.0.0.1:`port`, clients
/// without tokens (the loadgen has none; klinecast asks for none either),
/// the same ping interval as klinecast's, the health endpoint, no usage
/// statistics, and the Kafka consumer in publication-data mode.
fn centrifugo_config(brokers: &str, topic: &str, port: u16, group: &str) -> serde_json::Value {
    json!({
        "http_server": {"address": "127.0.0.1", "port": port},
        "log": {"level": "warn"},
        "client": {"insecure": true, "ping_interval": PING_INTERVAL, "pong_timeout": "8s"},
        "health": {"enabled": true},
        "usage_stats": {"disabled": true},
        "consumers": [{
            "name": "bars",
            "enabled": true,
            "type": "kafka",
            "kafka": {
                "brokers": [brokers],
                "topics": [topic],
                "consumer_group": group,
                "publication_data_mode": {"enabled": true, "channels_header": CHANNELS_HEADER},
            },
        }],
    })
}

/// Waits for the server's health endpoint.
fn wait_healthy(server: &mut Child, port: u16, path: &str) -> Res<()> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok((200, _)) = support::net::get_status(port, path, Duration::from_secs(1)) {
            return Ok(());
        }
        if !server.alive() {
            return Err(format!("{} exited:\n{}", server.name, server.log_tail()).into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!("{} not healthy within 30 s:\n{}", server.name, server.log_tail()).into())
}

fn report_run(r: &Run) {
    eprintln!(
        "peer: {:<10} {:<6} {:>5} × {:>3}/s: {:.2} % of {} bars, {:.2} CPU-s/M frames, {:.2} KiB/conn, p50 {:.1} / p99 {:.1} ms, load {}{}",
        r.server.name(),
        r.format,
        r.clients,
        r.rate_per_s,
        r.delivered_pct,
        r.updates_sent * r.clients as u64,
        r.cpu_s_per_million_frames.unwrap_or(f64::NAN),
        r.kib_per_connection,
        r.latency_p50_ms,
        r.latency_p99_ms,
        r.load_after,
        r.error.as_deref().map(|e| format!(" (failed: {e})")).unwrap_or_default(),
    );
}

// --- the report ---------------------------------------------------------------

/// The gateway + WebSocket hop p99 at 10 clients (WebSocket − tap, shared
/// mode) from the latency benchmark's latest results, if any.
fn latency_hop() -> Option<f64> {
    let path: PathBuf = common::results_dir().ok()?.join("latency.json");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let case = json["cases"].as_array()?.iter().find(|c| c["name"] == "shared-10")?;
    Some(case["websocket"]["p99_ms"].as_f64()? - case["tap"]["p99_ms"].as_f64()?)
}

fn find<'a>(runs: &'a [Run], server: Server, format: &str, clients: usize, rate: u32) -> Option<&'a Run> {
    runs.iter().find(|r| r.server == server && r.format == format && r.clients == clients && r.rate_per_s == rate)
}

/// klinecast ÷ Centrifugo of `value`, where both ran.
fn ratio(
    runs: &[Run],
    format: &str,
    (clients, rate): (usize, u32),
    value: impl Fn(&Run) -> Option<f64>,
) -> Option<f64> {
    let ok = |r: &&Run| r.error.is_none();
    let k = find(runs, Server::Klinecast, format, clients, rate).filter(ok).and_then(&value)?;
    let c = find(runs, Server::Centrifugo, format, clients, rate).filter(ok).and_then(&value)?;
    (c > 0.0).then_some(k / c)
}

/// The floor run of a case and format with the least CPU per frame.
fn best_floor<'a>(runs: &'a [Run], format: &str, (clients, rate): (usize, u32)) -> Option<&'a Run> {
    runs.iter()
        .filter(|r| r.server.is_floor() && r.format == format && r.clients == clients && r.rate_per_s == rate)
        .filter(|r| r.error.is_none() && r.cpu_s_per_million_frames.is_some())
        .min_by(|a, b| {
            a.cpu_s_per_million_frames.partial_cmp(&b.cpu_s_per_million_frames).unwrap_or(std::cmp::Ordering::Equal)
        })
}

/// klinecast ÷ the best floor of `value`, where both ran.
fn over_floor(runs: &[Run], format: &str, case: (usize, u32), value: impl Fn(&Run) -> Option<f64>) -> Option<f64> {
    let k = find(runs, Server::Klinecast, format, case.0, case.1).filter(|r| r.error.is_none()).and_then(&value)?;
    let f = value(best_floor(runs, format, case)?)?;
    (f > 0.0).then_some(k / f)
}

/// Worst klinecast ÷ floor over the cases that ran, and how many ran.
fn worst_over_floor(runs: &[Run], format: &str, value: impl Fn(&Run) -> Option<f64> + Copy) -> Worst {
    worst_of(CASES.iter().map(|&c| over_floor(runs, format, c, value)))
}

/// The worst ratio over the cases that ran, and how many of them ran.
type Worst = (Option<f64>, usize);

fn worst_of(ratios: impl Iterator<Item = Option<f64>>) -> Worst {
    let present: Vec<f64> = ratios.flatten().collect();
    (present.iter().copied().reduce(f64::max), present.len())
}

/// The verdict of a worst ratio against `bar`: a selection of cases that
/// meets it is said to be one, not called met.
fn judged((worst, ran): Worst, bar: f64) -> &'static str {
    match worst {
        Some(w) if w > bar => verdict(false),
        Some(_) if ran == CASES.len() => verdict(true),
        Some(_) => "met in the cases that ran (not all four ran)",
        None => "**not measured**",
    }
}

fn fmt_times(x: Option<f64>) -> String {
    x.map_or("–".into(), |x| format!("{x:.2}×"))
}

fn p99(r: &Run) -> Option<f64> {
    (r.latency_p99_ms > 0.0).then_some(r.latency_p99_ms)
}

fn cpu(r: &Run) -> Option<f64> {
    r.cpu_s_per_million_frames
}

fn memory(r: &Run) -> Option<f64> {
    (r.kib_per_connection > 0.0).then_some(r.kib_per_connection)
}

/// Worst ratio over the cases that ran, and how many ran.
fn worst(runs: &[Run], format: &str, value: impl Fn(&Run) -> Option<f64> + Copy) -> Worst {
    worst_of(CASES.iter().map(|&c| ratio(runs, format, c, value)))
}

fn fmt_ratio(x: Option<f64>) -> String {
    x.map_or("–".into(), |x| format!("{x:.2}× (1/{:.1})", 1.0 / x))
}

/// klinecast at 10,000 × 10/s: every update delivered, p99 within the bar.
fn delivery(runs: &[Run]) -> Option<(&Run, bool)> {
    let r = find(runs, Server::Klinecast, "binary", 10_000, 10).filter(|r| r.error.is_none())?;
    Some((r, r.delivered_pct >= 100.0 && r.seq_gaps == 0 && r.latency_p99_ms <= BAR_P99_MS))
}

/// klinecast at 10,000 × 2/s: each update reaches the 10,000 clients of the
/// one shard on its own (500 ms apart), so its p99 is the fan-out of one
/// update.
fn fanout(runs: &[Run]) -> Option<&Run> {
    find(runs, Server::Klinecast, "binary", 10_000, 2).filter(|r| r.error.is_none())
}

fn rows(runs: &[Run], hop: Option<f64>) -> String {
    let (cpu_b, cpu_j, mem) = (worst(runs, "binary", cpu), worst(runs, "json", cpu), worst(runs, "binary", memory));
    let mem_json = worst(runs, "json", memory);
    let mem_both = (mem.0.zip(mem_json.0).map(|(a, b)| a.max(b)), mem.1.min(mem_json.1));
    let (delivery_text, delivery_ok) = match delivery(runs) {
        Some((r, ok)) => (format!("{:.2} % delivered, p99 {:.1} ms", r.delivered_pct, r.latency_p99_ms), ok),
        None => ("not measured".to_owned(), false),
    };
    let centrifugo_delivery = find(runs, Server::Centrifugo, "binary", 10_000, 10)
        .map_or("–".into(), |r| format!("{:.2} % delivered, p99 {:.1} ms", r.delivered_pct, r.latency_p99_ms));
    let mut out = format!(
        "| {ROW_PEER} | ≤ 1/3 of its server CPU per delivered frame (binary), ≤ 1/2 (JSON), ≤ 1/10 of its memory per \
         connection, 100 % delivery at 10,000 clients × 10 updates/s with p99 ≤ 100 ms | worst case over the cases that ran: CPU per frame {} binary, {} JSON; memory per connection {}; 10,000 × 10/s: {} | Centrifugo v6.9.1 in the \
         same run, same feed, clients and core; 10,000 × 10/s: {} | CPU binary {}, CPU JSON {}, memory {}, delivery {} |\n",
        fmt_ratio(cpu_b.0),
        fmt_ratio(cpu_j.0),
        fmt_ratio(mem.0),
        delivery_text,
        centrifugo_delivery,
        judged(cpu_b, BAR_CPU_BINARY),
        judged(cpu_j, BAR_CPU_JSON),
        judged(mem_both, BAR_MEMORY),
        verdict(delivery_ok),
    );
    let (floor_b, floor_j) = (worst_over_floor(runs, "binary", cpu), worst_over_floor(runs, "json", cpu));
    let floor_p99 = over_floor(runs, "binary", (10_000, 2), p99);
    out += &format!(
        "| {ROW_FLOOR} | CPU per delivered frame ≤ 1.15× the floor's (binary), ≤ 1.3× (JSON); one update to 10,000 \
         clients: p99 ≤ 1.2× the floor's | worst case over the cases that ran: {} binary, {} JSON; one update to 10,000 \
         clients: p99 {} the floor's | `klinecast-floor` in the same run (the cheapest of `send`, `writev`, io_uring, \
         SQPOLL per case) | CPU binary {}, CPU JSON {}, one update {} |\n",
        fmt_times(floor_b.0),
        fmt_times(floor_j.0),
        fmt_times(floor_p99),
        judged(floor_b, BAR_FLOOR_CPU_BINARY),
        judged(floor_j, BAR_FLOOR_CPU_JSON),
        verdict(floor_p99.is_some_and(|r| r <= BAR_FLOOR_P99)),
    );
    let fan = fanout(runs);
    let fan_ok = fan.is_some_and(|r| r.latency_p99_ms <= BAR_FANOUT_P99_MS && r.delivered_pct >= 100.0);
    let hop_ok = hop.is_some_and(|h| h <= BAR_HOP_P99_MS);
    out += &format!(
        "| {ROW_FANOUT} | one update to 10,000 clients on one shard: p99 ≤ 50 ms; gateway + WebSocket hop ≤ 0.5 ms p99 \
         | one update (2 a second) to 10,000 clients of one shard: {}; hop (10 clients, `latency` benchmark): {} | – \
         (no baseline in the SPEC) | fan-out {}, hop {} |\n",
        fan.map_or("not measured".into(), |r| format!(
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({:.2} % delivered)",
            r.latency_p50_ms, r.latency_p99_ms, r.latency_max_ms, r.delivered_pct
        )),
        hop.map_or("not measured".into(), |h| format!("p99 +{h:.2} ms")),
        verdict(fan_ok),
        verdict(hop_ok),
    );
    out
}

fn section(
    runs: &[Run],
    version: &str,
    load: [&str; 2],
    brokers: &str,
    feed_time: Duration,
    hop: Option<f64>,
) -> String {
    let mut md = format!(
        "## klinecast next to Centrifugo and the floor (`cargo bench --bench peer`)\n\n\
         {version}, built by `scripts/bench.sh peer` with `go install \
         github.com/centrifugal/centrifugo/v6@v6.9.1`. Broker {brokers}. Per run: a fresh topic, the server alone on \
         core {SERVER_CORE} (`taskset -c {SERVER_CORE}`), the clients (`klinecast-loadgen`, one executor) on core \
         {CLIENT_CORE} with the broker and the feed; the clients connect ({RAMP_PER_S}/s) and subscribe to the one 1 s \
         series, then the feed sends {}s of updates at the case's rate and the clients get {}s more. Load average \
         (1/5/15 min) {} at start, {} at end.\n\n\
         | clients × updates/s | format | server | delivered | server CPU-s per M frames (user / kernel µs per frame) | \
         KiB RSS per connection | latency p50 / p99 / max ms | klinecast ÷ Centrifugo: CPU, memory | klinecast ÷ best \
         floor: CPU, p99 | load before → after |\n\
         | --- | --- | --- | ---: | ---: | ---: | --- | --- | --- | --- |\n",
        feed_time.as_secs(),
        DRAIN.as_secs(),
        load[0],
        load[1],
    );
    for &(clients, rate) in &CASES {
        for format in ["binary", "json"] {
            for server in SERVERS {
                let Some(r) = find(runs, server, format, clients, rate) else { continue };
                let (ratios, floor) = if server == Server::Klinecast {
                    (
                        format!(
                            "{}, {}",
                            fmt_ratio(ratio(runs, format, (clients, rate), cpu)),
                            fmt_ratio(ratio(runs, format, (clients, rate), memory))
                        ),
                        format!(
                            "{}, {}",
                            fmt_times(over_floor(runs, format, (clients, rate), cpu)),
                            fmt_times(over_floor(runs, format, (clients, rate), p99))
                        ),
                    )
                } else {
                    (String::new(), String::new())
                };
                let delivered = match &r.error {
                    Some(e) => format!("failed: {}", e.replace('\n', " ").chars().take(120).collect::<String>()),
                    None => format!("{} of {} ({:.2} %)", r.bars, r.updates_sent * clients as u64, r.delivered_pct),
                };
                md += &format!(
                    "| {clients} × {rate} | {format} | {} | {delivered} | {} | {:.2} | {:.1} / {:.1} / {:.1} | {ratios} | {floor} | {} → {} |\n",
                    server.name(),
                    r.cpu_s_per_million_frames.map_or("–".into(), |c| format!(
                        "{c:.2} ({:.2} / {:.2})",
                        r.user_us_per_frame.unwrap_or(0.0),
                        r.kernel_us_per_frame.unwrap_or(0.0)
                    )),
                    r.kib_per_connection,
                    r.latency_p50_ms,
                    r.latency_p99_ms,
                    r.latency_max_ms,
                    r.load_before,
                    r.load_after,
                );
            }
        }
    }
    md += &verdicts(runs, hop);
    md += NOT_EQUAL;
    md += "\nCommands of the 10,000 × 10/s binary runs (topics, ports and config files are fresh per run; the \
           Centrifugo config is written by the benchmark, `centrifugo_config` in `bench/peer.rs`):\n\n```sh\n";
    for r in runs.iter().filter(|r| r.clients == 10_000 && r.rate_per_s == 10 && r.format == "binary") {
        md += &format!("{}\n{}\n", r.server_command, r.loadgen_command);
    }
    md += "```\n\nCentrifugo's configuration (port, topic and group per run):\n\n```json\n";
    md += &serde_json::to_string_pretty(&centrifugo_config(brokers, "<topic>", 0, "<group>")).unwrap_or_default();
    md + "\n```\n"
}

fn verdicts(runs: &[Run], hop: Option<f64>) -> String {
    let mut md = "\n### Verdicts\n\n".to_owned();
    for (format, bar) in [("binary", BAR_FLOOR_CPU_BINARY), ("json", BAR_FLOOR_CPU_JSON)] {
        let per_case: Vec<String> = CASES
            .iter()
            .map(|&c| {
                let floor = best_floor(runs, format, c).map_or("–", |r| r.server.name());
                format!("{} × {}: {} ({floor})", c.0, c.1, fmt_times(over_floor(runs, format, c, cpu)))
            })
            .collect();
        md += &format!(
            "- server CPU per delivered frame against the floor, {format} (bar ≤ {bar}×): {} → {}\n",
            per_case.join("; "),
            judged(worst_over_floor(runs, format, cpu), bar)
        );
    }
    let one = over_floor(runs, "binary", (10_000, 2), p99);
    md += &format!(
        "- one update to 10,000 clients, p99 against the floor's (bar ≤ {BAR_FLOOR_P99}×): {} → {}\n",
        fmt_times(one),
        verdict(one.is_some_and(|r| r <= BAR_FLOOR_P99))
    );
    for (format, bar) in [("binary", BAR_CPU_BINARY), ("json", BAR_CPU_JSON)] {
        let per_case: Vec<String> =
            CASES.iter().map(|&c| format!("{} × {}: {}", c.0, c.1, fmt_ratio(ratio(runs, format, c, cpu)))).collect();
        md += &format!(
            "- server CPU per delivered frame, {format} (bar ≤ 1/{:.0} of Centrifugo's): {} → {}\n",
            1.0 / bar,
            per_case.join("; "),
            judged(worst(runs, format, cpu), bar)
        );
    }
    for format in ["binary", "json"] {
        let per_case: Vec<String> = CASES
            .iter()
            .map(|&c| format!("{} × {}: {}", c.0, c.1, fmt_ratio(ratio(runs, format, c, memory))))
            .collect();
        md += &format!(
            "- memory per connection, {format} (bar ≤ 1/10): {} → {}\n",
            per_case.join("; "),
            judged(worst(runs, format, memory), BAR_MEMORY)
        );
    }
    match delivery(runs) {
        Some((r, ok)) => {
            md += &format!(
                "- 10,000 clients × 10 updates/s (bar: 100 % delivered, p99 ≤ 100 ms): klinecast {:.2} % ({} gaps), p99 \
                 {:.1} ms → {}\n",
                r.delivered_pct,
                r.seq_gaps,
                r.latency_p99_ms,
                verdict(ok)
            )
        }
        None => md += "- 10,000 clients × 10 updates/s: not measured → **not met**\n",
    }
    match fanout(runs) {
        Some(r) => {
            md += &format!(
                "- fan-out of one update to 10,000 clients on one shard (the 10,000 × 2/s binary run: each update goes \
                 out alone, 500 ms apart; latency from the producer's stamp, so Kafka's part is in it): p50 {:.1} ms, \
                 p99 {:.1} ms (bar ≤ 50 ms) → {}\n",
                r.latency_p50_ms,
                r.latency_p99_ms,
                verdict(r.latency_p99_ms <= BAR_FANOUT_P99_MS)
            )
        }
        None => md += "- fan-out of one update to 10,000 clients: not measured → **not met**\n",
    }
    md += &format!(
        "- gateway + WebSocket hop at 10 clients (from the `latency` benchmark's latest run, shared mode, WebSocket \
         p99 − tap p99): {} (bar ≤ 0.5 ms) → {}\n",
        hop.map_or("not measured".into(), |h| format!("+{h:.2} ms")),
        verdict(hop.is_some_and(|h| h <= BAR_HOP_P99_MS))
    );
    md
}

/// What is not equal between the two servers, and what was done about it.
const NOT_EQUAL: &str = "
### What is not equal, and how it was reduced

- **Same**: the Kafka records (one topic, one partition, the same bar updates at the same rate, stamped when sent),
  the clients (one program, one core), the core of the server (the whole process pinned with `taskset`, so
  klinecast's librdkafka threads and Centrifugo's Go runtime have one core each; Go then runs with GOMAXPROCS 1),
  the ping interval (30 s), no authentication, no history or recovery on either.
- **The record value in JSON runs**: Centrifugo publishes the record value as it is, so its JSON runs are fed the
  bar's JSON line (the same text klinecast's JSON clients get); klinecast reads the binary bar and makes the JSON
  itself, once per update. klinecast does that conversion and Centrifugo does not, which counts against klinecast.
- **Protocol envelope**: a Centrifugo client gets each update wrapped in a push (`{\"push\":{\"channel\":...,\"pub\":
  {\"data\":...}}}` in JSON, a few Protobuf fields in binary), a klinecast client gets the bar alone; Centrifugo may
  put several pushes in one WebSocket frame. Delivery counts bar updates, not frames, for both.
- **Kafka clients**: Centrifugo's franz-go consumer joins a consumer group; klinecast's librdkafka reader is
  assigned the partition. Both fetch with a 500 ms long-poll that the broker answers as soon as a record arrives.
- **Outbound limits**: Centrifugo's per-connection queue is 1 MiB by default, klinecast's 64 KiB
  (`--max-outbound-bytes`); neither is reached at these rates by clients that read.
- **Garbage collection**: Centrifugo's memory includes what its collector has not returned yet; RSS is read at the
  end of the feed for both.
- **Loopback**: the clients are on the same machine, so the kernel's work on their side of each write (TCP
  receive, waking the client) runs in the server's `send()`, on the server's core, and counts as the server's CPU
  (about a third of klinecast's, see the profile notes). Both servers pay it per write; a server talking to remote
  clients would not.
- **Other work on the machine**: the machine is shared; the load average before and after each run is in the
  table. Runs of the two servers alternate (klinecast, then Centrifugo, per case and format), so both see the
  same kind of load, but not the same load.
- **The floor** (`klinecast-floor`) reads the same records with one librdkafka consumer and speaks klinecast's
  handshake, command and acknowledgement, then keeps nothing per client but the socket: no outbound queue, no
  conflation, no slow-client policy, no pings, no metrics. Its JSON runs encode the bar's JSON once per update, as
  klinecast does. A send that would block is finished with blocking writes on that socket (counted in its log as
  stalls), so it delivers every frame. Its SQPOLL mode's kernel thread is one of its threads and is counted in its
  CPU. It is the cost any server pays here for the same frames, not a server users could run.
- **Clients**: the loadgen parses both protocols with its own small decoders (a few hundred ns per update); it runs
  on the core shared with the broker and the feed, so its share of that core is the same for both servers but
  grows with the frame rate, and latency at 100,000 frames/s includes its queueing.
";
