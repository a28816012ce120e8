//! SPEC §7 rows 4 and 5: how many WebSocket clients the gateway serves, and
//! at what cost, in both fan-out modes.
//!
//! - per-client mode: a fresh `klinecast serve --fanout per-client` (ingest
//!   and gateway in one process; every subscribed client gets its own Kafka
//!   consumer), driven by one `klinecast-loadgen` with N clients subscribed
//!   to `sub-1s` of one mock mint at [`PER_CLIENT_RATE`] trades/s. Every
//!   update is forwarded, so loadgen's `seq` check finds any lost message.
//! - shared mode: one `klinecast ingest` and G `klinecast gateway --fanout
//!   shared --push-interval 1s` processes on one port (SO_REUSEPORT; the
//!   kernel spreads connections over them), because one process may hold at
//!   most ~19,000 sockets here (open-files hard limit 20,000), and L loadgen
//!   processes of at most [`CLIENTS_PER_LOADGEN`] clients each.
//!
//! Each point measures over a steady window: from [`SETTLE`] after the ramp
//! to [`END_MARGIN`] before the loadgens stop. Server CPU is utime + stime
//! from `/proc/<pid>/stat` (all threads, io_uring workers included); frames
//! are `klinecast_ws_frames_sent_total` from `/metrics` (shared mode: each
//! process's own, told apart by counters a scrape does not change);
//! user-space memory is `VmRSS` at the end of the window minus `VmRSS` before
//! any client connected, over the connections. Kernel socket buffers are not
//! in any RSS; `/proc/net/sockstat` gives them for context.
//!
//! Needs a broker (`KLINECAST_BENCH_BROKERS`, default 127.0.0.1:9092);
//! without `--bench` (`cargo test --all-targets`) it only checks its
//! parsers.

mod common;
mod procs;
#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use common::{human_rate, verdict};
use procs::{LoadgenPlan, ProcSample, Res};
use support::Child;

/// Mock trades per second in per-client mode (one mint): each client gets
/// about this many updates a second, plus one closing update.
const PER_CLIENT_RATE: u32 = 10;
/// Pause between points, so the previous point's processes are gone.
const PAUSE: Duration = Duration::from_secs(10);
/// Mock trades per second in shared mode (one mint).
const SHARED_RATE: u32 = 20;
/// Per-client client counts (`KLINECAST_BENCH_PER_CLIENT_POINTS`, comma
/// separated, overrides); the last runs for [`MAIN_RUN`].
const PER_CLIENT_POINTS: &str = "100,500,1000,2000";
/// Shared-mode client counts (`KLINECAST_BENCH_SHARED_POINTS` overrides);
/// the last runs for [`MAIN_RUN`] and is profiled.
const SHARED_POINTS: &str = "1000,5000,10000,20000,50000";
/// SPEC §7: per-client mode serves at least this many clients ...
const BAR_PER_CLIENT: usize = 2000;
/// ... and shared mode this many, ...
const BAR_SHARED: usize = 50_000;
/// ... with at most this much user-space memory per connection (KiB) ...
const BAR_KIB_PER_CONNECTION: f64 = 4.0;
/// ... and at least this many frames per server CPU-second.
const BAR_FRAMES_PER_CPU_S: f64 = 1e6;
/// Measured time of the SPEC points, after the ramp
/// (`KLINECAST_BENCH_FANOUT_MAIN_S` overrides).
const MAIN_RUN: Duration = Duration::from_secs(60);
/// Measured time of the other points of the scale curves
/// (`KLINECAST_BENCH_FANOUT_POINT_S` overrides).
const POINT_RUN: Duration = Duration::from_secs(20);
/// Steady window starts this long after the ramp ...
const SETTLE: Duration = Duration::from_secs(5);
/// ... and ends this long before the loadgens stop.
const END_MARGIN: Duration = Duration::from_secs(3);
/// Shared mode: clients connect at this rate (per second, all loadgens).
const SHARED_RAMP_PER_S: usize = 1500;
/// Per-client mode: clients (each a new Kafka consumer) connect at this rate.
const PER_CLIENT_RAMP_PER_S: usize = 100;
/// Shared mode: the subscription mix, one entry per client in turn
/// (one push a second per subscription; the 1 s bar also closes every
/// second, so `sub-1s` clients get about two frames a second).
const SHARED_MIX: &str = "sub-1s,sub-1m,sub-5m,sub-1h";
/// Shared mode: a diagnostic point whose clients only send `ping` (no
/// subscription), to split a session's memory from a subscription's.
const IDLE_POINT: usize = 10_000;
/// Time the servers' CPU is sampled before clients connect.
const IDLE_SAMPLE: Duration = Duration::from_secs(5);
/// Shortest ramp.
const MIN_RAMP: Duration = Duration::from_secs(3);
/// Clients per gateway process: below the 20,000 open-files limit with room
/// for SO_REUSEPORT's uneven spread and the process's own files.
const CLIENTS_PER_GATEWAY: usize = 17_000;
/// Clients per loadgen process (the same limit applies to it).
const CLIENTS_PER_LOADGEN: usize = 15_000;
/// Loopback source addresses per loadgen (127.0.0.1 ..= 127.0.0.N), so one
/// address's ephemeral ports are not the limit.
const SOURCES: u8 = 8;
/// Server ping interval (the SPEC's clients answer pings; see `--ping-interval`).
const PING_INTERVAL: &str = "30s";
/// Time CPU is profiled with `perf` after the shared SPEC point's window.
const PROFILE: Duration = Duration::from_secs(10);
/// Scrapes per sample to reach every gateway process behind one port.
const SCRAPES: usize = 40;
/// Names of the two rows in SPEC §7.
const ROW_PER_CLIENT: &str = "per-client mode";
const ROW_SHARED: &str = "shared mode";

/// Snapshot of the servers and clients at one moment.
#[derive(Debug, Clone, Default)]
struct Snapshot {
    at: Option<Instant>,
    /// Per server process.
    procs: Vec<ProcSample>,
    /// Server frames sent, summed over the processes (None if a process's
    /// metrics could not be told apart).
    frames_sent: Option<f64>,
    /// Bars sent by the servers.
    bars_sent: Option<f64>,
    /// Per server process: (open WebSockets, Kafka consumers).
    sessions: Vec<(f64, f64)>,
    /// Per loadgen: its latest progress line.
    progress: Vec<Option<procs::Progress>>,
    broker_cpu_s: Option<f64>,
    tcp_kernel_kib: u64,
    /// Sessions the servers closed for silence or abuse (no pong) and for
    /// being too slow, summed (None if not every process answered).
    protocol_closes: Option<f64>,
    slow_closes: Option<f64>,
    /// CPU seconds of the loadgen processes so far.
    loadgen_cpu_s: f64,
}

/// One measured point of a scale curve.
#[derive(Debug, Clone, Serialize)]
struct Point {
    mode: &'static str,
    clients: usize,
    /// The loadgen's `--subscribe` mix.
    subscribe: String,
    gateways: usize,
    loadgens: usize,
    trades_per_s: u32,
    window_s: f64,
    ramp_s: f64,
    connected: u64,
    failed: u64,
    /// Connections the server closed, until the loadgens ended.
    closed_by_server: u64,
    /// ... and until the end of the steady window.
    closed_in_window: u64,
    /// Where the frame counts come from.
    frames_source: &'static str,
    seq_gaps: u64,
    missing_updates: u64,
    /// Open WebSocket sessions per server process at the end of the window.
    sessions_per_process: Vec<f64>,
    /// Kafka consumers alive (per-client mode: one per subscribed client).
    consumers: f64,
    /// Frames sent by the servers per second (`/metrics`).
    frames_per_s: Option<f64>,
    /// Bars sent by the servers per second (`/metrics`).
    bars_per_s: Option<f64>,
    /// Bars received by the clients per second (loadgen progress lines).
    client_bars_per_s: f64,
    /// Bars each client received per second.
    bars_per_client_per_s: f64,
    /// produce → receive lag from the loadgens (max over loadgens: an upper
    /// bound of the combined percentile).
    lag_p50_ms: f64,
    lag_p99_ms: f64,
    lag_max_ms: f64,
    /// Sum over server processes.
    rss_idle_kib: u64,
    rss_kib: u64,
    rss_peak_kib: u64,
    rss_anon_idle_kib: u64,
    rss_anon_kib: u64,
    rss_file_idle_kib: u64,
    rss_file_kib: u64,
    kib_per_connection: f64,
    anon_kib_per_connection: f64,
    /// Kernel TCP memory added per connection (both ends of the loopback
    /// connection; the machine's other sockets may add noise).
    kernel_tcp_kib_per_connection: f64,
    threads_idle: Vec<u64>,
    threads: Vec<u64>,
    fds: Vec<u64>,
    server_cpu_s: f64,
    /// Server CPU used, in cores.
    server_cores: f64,
    /// Server CPU used before any client connected, in cores (timers,
    /// pollers, librdkafka).
    idle_cores: f64,
    frames_per_cpu_s: Option<f64>,
    /// Frames per CPU-second above the idle use: the cost of the frames
    /// themselves.
    frames_per_cpu_s_above_idle: Option<f64>,
    cpu_s_per_million_frames: Option<f64>,
    /// Ingest's CPU over the window (shared mode: its own process).
    ingest_cpu_s: Option<f64>,
    /// The broker's CPU, in cores, if its pid is known.
    broker_cores: Option<f64>,
    /// The loadgens' CPU, in cores.
    loadgen_cores: f64,
    /// Sessions the servers closed during the window for silence (no pong)
    /// or protocol abuse, and for being too slow (`/metrics`).
    protocol_closes: Option<f64>,
    slow_closes: Option<f64>,
    load_before: String,
    load_after: String,
    server_commands: Vec<String>,
    loadgen_commands: Vec<String>,
}

/// What `perf` says the gateways spent their CPU on.
#[derive(Debug, Clone, Default, Serialize)]
struct Profile {
    seconds: f64,
    /// (share %, shared object), largest first.
    by_dso: Vec<(f64, String)>,
    /// (share %, symbol), largest first.
    by_symbol: Vec<(f64, String)>,
    error: Option<String>,
}

fn main() -> Res<()> {
    if !common::bench_mode() {
        procs::smoke()?;
        let text = "    63.10%  [kernel.kallsyms]\n     20.00%  klinecast\n";
        if parse_perf(text).first().map(|x| x.0) != Some(63.10) {
            return Err("perf report misread".into());
        }
        println!("fanout: parsers ok; skipped the measurement (`cargo bench --bench fanout` or scripts/bench.sh)");
        return Ok(());
    }
    let brokers = procs::brokers();
    let plan = Plan::from_env()?;
    let stamp = common::unix_now_s();
    let load_start = common::loadavg();
    let mut per_client = Vec::new();
    let mut failures = Vec::new();
    // Shared mode first: per-client mode's thousands of librdkafka threads
    // take a while to go after a point.
    let (shared, profile) = shared_points(&brokers, &plan, stamp, &mut failures)?;
    let floor = send_floor()?;
    eprintln!(
        "fanout: send floor {:.2} µs per write ({} writes per CPU-second)",
        floor.us_per_write,
        human_rate(floor.writes_per_cpu_s)
    );
    for (i, &clients) in plan.per_client.iter().enumerate() {
        std::thread::sleep(PAUSE);
        let run = plan.run(i, &plan.per_client);
        match per_client_point(&brokers, clients, run, stamp) {
            Ok(point) => per_client.push(point),
            Err(error) => note_failure(&mut failures, "per-client", clients, &error.to_string()),
        }
    }
    let load_end = common::loadavg();
    let section =
        section(&per_client, &shared, (&profile, &floor), &failures, [&load_start, &load_end], &brokers, &plan);
    println!("{section}");
    let rows = row_per_client(&per_client) + &row_shared(&shared);
    let json = json!({
        "bench": "fanout",
        "spec_rows": [ROW_PER_CLIENT, ROW_SHARED],
        "measured_at_unix_s": common::unix_now_s(),
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "brokers": brokers,
        "per_client": per_client,
        "shared": shared,
        "profile": profile,
        "send_floor": floor,
        "failed_points": failures,
        "bars": {
            "per_client_clients": BAR_PER_CLIENT,
            "shared_clients": BAR_SHARED,
            "kib_per_connection": BAR_KIB_PER_CONNECTION,
            "frames_per_cpu_s": BAR_FRAMES_PER_CPU_S,
        },
    });
    common::write_results("fanout", &json, &section, &rows)
}

/// The run plan: client counts per mode and run lengths.
struct Plan {
    per_client: Vec<usize>,
    shared: Vec<usize>,
    main_run: Duration,
    point_run: Duration,
    /// Run the shared-mode `ping`-only point (`KLINECAST_BENCH_IDLE_POINT=0` skips it).
    idle_point: bool,
}

impl Plan {
    fn from_env() -> Res<Self> {
        let list = |name: &str, default: &str| -> Res<Vec<usize>> {
            let text = std::env::var(name).unwrap_or_else(|_| default.to_owned());
            let points = text
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.trim().parse())
                .collect::<Result<Vec<usize>, _>>();
            points.map_err(|e| format!("{name}={text:?}: {e}").into())
        };
        let secs = |name: &str, default: Duration| -> Res<Duration> {
            Ok(Duration::from_secs(procs::env_or(name, default.as_secs())?))
        };
        Ok(Self {
            per_client: list("KLINECAST_BENCH_PER_CLIENT_POINTS", PER_CLIENT_POINTS)?,
            shared: list("KLINECAST_BENCH_SHARED_POINTS", SHARED_POINTS)?,
            main_run: secs("KLINECAST_BENCH_FANOUT_MAIN_S", MAIN_RUN)?,
            point_run: secs("KLINECAST_BENCH_FANOUT_POINT_S", POINT_RUN)?,
            idle_point: procs::env_or("KLINECAST_BENCH_IDLE_POINT", 1u8)? != 0,
        })
    }

    /// The run length of point `i` of `points`.
    fn run(&self, i: usize, points: &[usize]) -> Duration {
        if i + 1 == points.len() { self.main_run } else { self.point_run }
    }
}

fn note_failure(failures: &mut Vec<serde_json::Value>, mode: &str, clients: usize, error: &str) {
    // One failed point must not throw away the others: it is reported.
    eprintln!("fanout: {mode} point with {clients} clients failed: {error}");
    failures.push(json!({"mode": mode, "clients": clients, "error": error}));
}

fn ramp_for(clients: usize, per_s: usize) -> Duration {
    Duration::from_secs((clients / per_s) as u64).max(MIN_RAMP)
}

// --- per-client mode ---------------------------------------------------------

fn per_client_point(brokers: &str, clients: usize, run: Duration, stamp: u64) -> Res<Point> {
    let topic = format!("klinecast-bench-fanout-pc{clients}-{stamp}");
    support::create_topic(brokers, &topic, 4)?;
    let result = per_client_on(brokers, &topic, clients, run);
    support::delete_topics(brokers, std::slice::from_ref(&topic));
    result
}

fn per_client_on(brokers: &str, topic: &str, clients: usize, run: Duration) -> Res<Point> {
    let port = support::free_port();
    let args = strings(&[
        "serve",
        "--brokers",
        brokers,
        "--topic",
        topic,
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--fanout",
        "per-client",
        "--mock-mints",
        "1",
        "--mock-rate",
        &PER_CLIENT_RATE.to_string(),
        "--max-connections-per-ip",
        "1000000",
        "--ping-interval",
        PING_INTERVAL,
    ]);
    let ramp = ramp_for(clients, PER_CLIENT_RAMP_PER_S);
    let load_before = common::loadavg();
    let log = procs::log_dir()?.join(format!("fanout-pc{clients}-serve.log"));
    let planned = ramp + run + Duration::from_secs(60);
    let mut server =
        procs::spawn("klinecast serve", procs::KLINECAST, &args, &[("KLINECAST_LOG", "warn")], planned, &log)?;
    support::net::wait_healthy(port, 1, Duration::from_secs(30), || true)
        .map_err(|e| format!("{e}\n{}", server.log_tail()))?;
    std::thread::sleep(Duration::from_secs(3));
    let idle_cores = idle_cores(&[server.pid]);
    let idle = ProcSample::of(server.pid).ok_or("server gone")?;
    let plan = LoadgenPlan {
        port,
        clients,
        sources: 4,
        ramp,
        duration: run,
        subscribe: "sub-1s".into(),
        cores: "0".into(),
        schedule: None,
        extra_args: Vec::new(),
    };
    let started = Instant::now();
    let (loadgen, summary) = plan.start(&format!("fanout-pc{clients}-loadgen"))?;
    let mut loadgens = vec![(loadgen, summary)];
    let pids = [server.pid];
    let window = observe(&pids, Some(port), None, &mut loadgens, (started, ramp, run), brokers, None)?;
    let summaries = finish_loadgens(&mut loadgens, ramp + run)?;
    server.stop();
    let shape = Shape {
        mode: "per-client",
        clients,
        subscribe: "sub-1s",
        rate: PER_CLIENT_RATE,
        ramp,
        gateways: 1,
        loadgens: 1,
    };
    let mut point = build_point(&shape, &[idle], idle_cores, &window, &summaries);
    point.load_before = load_before;
    point.server_commands = vec![procs::command_line("target/release/klinecast", &args)];
    point.loadgen_commands =
        vec![procs::command_line("target/release/klinecast-loadgen", &plan.args(&summary_placeholder()))];
    report_point(&point);
    Ok(point)
}

// --- shared mode -------------------------------------------------------------

/// Runs every shared-mode point against one ingest process; profiles the
/// last (SPEC) point.
fn shared_points(
    brokers: &str,
    plan: &Plan,
    stamp: u64,
    failures: &mut Vec<serde_json::Value>,
) -> Res<(Vec<Point>, Profile)> {
    let topic = format!("klinecast-bench-fanout-shared-{stamp}");
    support::create_topic(brokers, &topic, 4)?;
    let args = strings(&[
        "ingest",
        "--brokers",
        brokers,
        "--topic",
        &topic,
        "--mock-mints",
        "1",
        "--mock-rate",
        &SHARED_RATE.to_string(),
        "--cores",
        "0",
    ]);
    let planned = Duration::from_secs(1800);
    let log = procs::log_dir()?.join("fanout-shared-ingest.log");
    let mut ingest =
        procs::spawn("klinecast ingest", procs::KLINECAST, &args, &[("KLINECAST_LOG", "warn")], planned, &log)?;
    std::thread::sleep(Duration::from_secs(3));
    let ingest_command = procs::command_line("target/release/klinecast", &args);
    let mut points = Vec::new();
    let mut profile = Profile::default();
    let mut runs: Vec<(usize, Duration, &str, bool)> = plan
        .shared
        .iter()
        .enumerate()
        .map(|(i, &clients)| (clients, plan.run(i, &plan.shared), SHARED_MIX, i + 1 == plan.shared.len()))
        .collect();
    if plan.idle_point {
        runs.push((IDLE_POINT, plan.point_run, "ping", false));
    }
    for (clients, run, subscribe, main) in runs {
        if !ingest.alive() {
            note_failure(failures, "shared", clients, &format!("ingest died:\n{}", ingest.log_tail()));
            break;
        }
        std::thread::sleep(PAUSE);
        let wants_profile = main.then_some(&mut profile);
        match shared_point(brokers, &topic, (clients, run, subscribe), ingest.pid, wants_profile) {
            Ok(mut point) => {
                point.server_commands.insert(0, ingest_command.clone());
                points.push(point);
            }
            Err(error) => note_failure(failures, "shared", clients, &error.to_string()),
        }
    }
    ingest.stop();
    support::delete_topics(brokers, std::slice::from_ref(&topic));
    Ok((points, profile))
}

fn gateway_args(brokers: &str, topic: &str, port: u16, core: usize) -> Vec<String> {
    strings(&[
        "gateway",
        "--brokers",
        brokers,
        "--topic",
        topic,
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--fanout",
        "shared",
        "--push-interval",
        "1s",
        "--shards",
        "1",
        "--cores",
        &core.to_string(),
        "--max-connections-per-ip",
        "1000000",
        "--ping-interval",
        PING_INTERVAL,
    ])
}

fn shared_point(
    brokers: &str,
    topic: &str,
    (clients, run, subscribe): (usize, Duration, &'static str),
    ingest_pid: u32,
    profile: Option<&mut Profile>,
) -> Res<Point> {
    let port = support::free_port();
    let gateways = clients.div_ceil(CLIENTS_PER_GATEWAY).max(1);
    let loadgens = clients.div_ceil(CLIENTS_PER_LOADGEN).max(1);
    let ramp = ramp_for(clients, SHARED_RAMP_PER_S);
    let extra = if profile.is_some() { PROFILE + Duration::from_secs(5) } else { Duration::ZERO };
    let load_before = common::loadavg();
    let logs = procs::log_dir()?;
    let mut servers = Vec::new();
    let mut server_commands = Vec::new();
    for g in 0..gateways {
        // Gateways alternate cores, starting with the one ingest is not on.
        let args = gateway_args(brokers, topic, port, (g + 1) % 2);
        let log = logs.join(format!("fanout-shared{clients}-gateway{g}.log"));
        let planned = ramp + run + extra + Duration::from_secs(60);
        servers.push(procs::spawn(
            "klinecast gateway",
            procs::KLINECAST,
            &args,
            &[("KLINECAST_LOG", "warn")],
            planned,
            &log,
        )?);
        server_commands.push(procs::command_line("target/release/klinecast", &args));
    }
    let pids: Vec<u32> = servers.iter().map(|s| s.pid).collect();
    procs::wait_listening(&pids, port, Duration::from_secs(30))?;
    support::net::wait_healthy(port, 10 * gateways, Duration::from_secs(30), || true)?;
    std::thread::sleep(Duration::from_secs(3));
    let idle_cores = idle_cores(&pids);
    let idle: Vec<ProcSample> = pids.iter().filter_map(|&p| ProcSample::of(p)).collect();
    if idle.len() != gateways {
        return Err("a gateway exited before clients connected".into());
    }
    let mut running = Vec::new();
    let mut loadgen_commands = Vec::new();
    let started = Instant::now();
    for l in 0..loadgens {
        let plan = LoadgenPlan {
            port,
            clients: clients / loadgens + usize::from(l < clients % loadgens),
            sources: SOURCES,
            ramp,
            duration: run + extra,
            subscribe: subscribe.into(),
            cores: (l % 2).to_string(),
            schedule: None,
            extra_args: Vec::new(),
        };
        running.push(plan.start(&format!("fanout-shared{clients}-loadgen{l}"))?);
        loadgen_commands
            .push(procs::command_line("target/release/klinecast-loadgen", &plan.args(&summary_placeholder())));
    }
    let timing = (started, ramp, run);
    let window = observe(&pids, Some(port), Some(ingest_pid), &mut running, timing, brokers, Some(gateways))?;
    if let Some(profile) = profile {
        *profile = perf_profile(&pids, PROFILE);
    }
    let summaries = finish_loadgens(&mut running, ramp + run + extra)?;
    for server in &mut servers {
        server.stop();
    }
    let shape = Shape { mode: "shared", clients, subscribe, rate: SHARED_RATE, ramp, gateways, loadgens };
    let mut point = build_point(&shape, &idle, idle_cores, &window, &summaries);
    point.load_before = load_before;
    point.server_commands = server_commands;
    point.loadgen_commands = loadgen_commands;
    report_point(&point);
    Ok(point)
}

/// Server CPU in cores over [`IDLE_SAMPLE`], before clients connect.
fn idle_cores(pids: &[u32]) -> f64 {
    let cpu = || pids.iter().filter_map(|&p| ProcSample::of(p)).map(|s| s.cpu_s).sum::<f64>();
    let before = cpu();
    std::thread::sleep(IDLE_SAMPLE);
    (cpu() - before) / IDLE_SAMPLE.as_secs_f64()
}

fn summary_placeholder() -> PathBuf {
    PathBuf::from("<summary.json>")
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

// --- observing a run ---------------------------------------------------------

/// The steady window of a run: snapshots at its start and end, and the peak
/// resident memory of each server process during it.
struct Window {
    start: Snapshot,
    end: Snapshot,
    rss_peak: Vec<u64>,
    ingest_cpu_s: Option<f64>,
    /// Kernel TCP memory when the loadgens started.
    tcp_before_kib: u64,
}

/// Waits through the ramp and the steady window of a run whose loadgens
/// started at `started`, sampling the servers every second; fails if a
/// loadgen ends early.
fn observe(
    pids: &[u32],
    port: Option<u16>,
    ingest: Option<u32>,
    loadgens: &mut [(Child, PathBuf)],
    (started, ramp, run): (Instant, Duration, Duration),
    brokers: &str,
    shared_processes: Option<usize>,
) -> Res<Window> {
    let tcp_before_kib = procs::tcp_kernel_kib();
    let t1 = ramp + SETTLE;
    let t2 = ramp + run - END_MARGIN;
    let mut rss_peak = vec![0u64; pids.len()];
    let mut start = None;
    let mut ingest_cpu = None;
    loop {
        for (l, _) in loadgens.iter_mut() {
            if !l.alive() {
                return Err(format!("{} ended early:\n{}", l.name, l.log_tail()).into());
            }
        }
        for (peak, &pid) in rss_peak.iter_mut().zip(pids) {
            let Some(sample) = ProcSample::of(pid) else { return Err(format!("server process {pid} died").into()) };
            *peak = (*peak).max(sample.rss_kib);
        }
        let elapsed = started.elapsed();
        if start.is_none() && elapsed >= t1 {
            start = Some(snapshot(pids, port, loadgens, brokers, shared_processes));
            ingest_cpu = ingest.and_then(ProcSample::of).map(|s| s.cpu_s);
        }
        if elapsed >= t2 {
            let end = snapshot(pids, port, loadgens, brokers, shared_processes);
            let ingest_cpu_s = ingest.and_then(ProcSample::of).zip(ingest_cpu).map(|(s, before)| s.cpu_s - before);
            return Ok(Window { start: start.unwrap_or_default(), end, rss_peak, ingest_cpu_s, tcp_before_kib });
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn snapshot(
    pids: &[u32],
    port: Option<u16>,
    loadgens: &[(Child, PathBuf)],
    brokers: &str,
    shared_processes: Option<usize>,
) -> Snapshot {
    let at = Instant::now();
    let procs: Vec<ProcSample> = pids.iter().filter_map(|&p| ProcSample::of(p)).collect();
    let metrics = match (port, shared_processes) {
        (Some(port), Some(n)) => procs::metrics_per_process(port, n, SCRAPES),
        (Some(port), None) => support::net::metrics(port, Duration::from_secs(5)).ok().map(|m| vec![m]),
        _ => None,
    };
    let sum = |name: &str| metrics.as_ref().map(|all| all.iter().map(|m| m.get(name).copied().unwrap_or(0.0)).sum());
    let get = |m: &std::collections::BTreeMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(0.0);
    Snapshot {
        at: Some(at),
        procs,
        frames_sent: sum("klinecast_ws_frames_sent_total"),
        bars_sent: sum("klinecast_bars_sent_total"),
        sessions: metrics
            .iter()
            .flatten()
            .map(|m| (get(m, "klinecast_websockets"), get(m, "klinecast_kafka_consumers")))
            .collect(),
        progress: loadgens.iter().map(|(l, _)| procs::loadgen_progress(&l.log)).collect(),
        broker_cpu_s: procs::broker_pid(brokers).and_then(ProcSample::of).map(|s| s.cpu_s),
        tcp_kernel_kib: procs::tcp_kernel_kib(),
        protocol_closes: sum("klinecast_protocol_closes_total"),
        slow_closes: sum("klinecast_slow_client_closes_total"),
        loadgen_cpu_s: loadgens.iter().filter_map(|(l, _)| ProcSample::of(l.pid)).map(|s| s.cpu_s).sum(),
    }
}

/// Waits for the loadgens to finish by themselves and reads their summaries.
/// A loadgen that had to be stopped (a client stuck in its handshake keeps
/// it from exiting) is counted from its last progress line instead, without
/// latency numbers.
fn finish_loadgens(loadgens: &mut [(Child, PathBuf)], planned: Duration) -> Res<Vec<serde_json::Value>> {
    let mut summaries = Vec::new();
    for (l, summary) in loadgens.iter_mut() {
        let clean = l.wait_exit(planned + Duration::from_secs(30));
        match procs::read_summary(summary) {
            Ok(s) if clean => summaries.push(s),
            _ => {
                let progress = procs::loadgen_progress(&l.log)
                    .ok_or_else(|| format!("{}: no progress:\n{}", l.name, l.log_tail()))?;
                eprintln!("fanout: {} did not finish by itself; counted from its last progress line", l.name);
                summaries.push(progress.as_summary());
            }
        }
    }
    Ok(summaries)
}

/// What a point ran.
struct Shape {
    mode: &'static str,
    clients: usize,
    subscribe: &'static str,
    rate: u32,
    ramp: Duration,
    gateways: usize,
    loadgens: usize,
}

fn build_point(
    shape: &Shape,
    idle: &[ProcSample],
    idle_cores: f64,
    w: &Window,
    summaries: &[serde_json::Value],
) -> Point {
    let secs = match (w.start.at, w.end.at) {
        (Some(a), Some(b)) => (b - a).as_secs_f64().max(1e-3),
        _ => 1e-3,
    };
    let total = |k: &str| summaries.iter().map(|s| procs::num(s, &[k]) as u64).sum::<u64>();
    let worst = |k: &str| summaries.iter().map(|s| procs::num(s, &["latency_us", k]) / 1e3).fold(0.0, f64::max);
    let connected = total("connected");
    let (i, e) = (ProcSample::sum(idle), ProcSample::sum(&w.end.procs));
    let cpu = e.cpu_s - ProcSample::sum(&w.start.procs).cpu_s;
    let frames = w.end.frames_sent.zip(w.start.frames_sent).map(|(b, a)| b - a);
    let bars = w.end.bars_sent.zip(w.start.bars_sent).map(|(b, a)| (b - a) / secs);
    let client_bars: f64 = w
        .start
        .progress
        .iter()
        .zip(&w.end.progress)
        .filter_map(|(a, b)| {
            let (a, b) = (a.as_ref()?, b.as_ref()?);
            (b.secs > a.secs).then(|| (b.bars - a.bars) as f64 / (b.secs - a.secs))
        })
        .sum();
    // Server frames from /metrics; if the processes behind the shared port
    // could not be told apart, the bars the clients received instead.
    let (frames, frames_source) = match frames {
        Some(f) => (Some(f), "server /metrics"),
        None if client_bars > 0.0 => (Some(client_bars * secs), "bars received by the clients"),
        None => (None, "none"),
    };
    let per_conn = |now: u64, before: u64| (now as f64 - before as f64) / connected.max(1) as f64;
    let above_idle = cpu - idle_cores * secs;
    Point {
        mode: shape.mode,
        clients: shape.clients,
        subscribe: shape.subscribe.to_owned(),
        gateways: shape.gateways,
        loadgens: shape.loadgens,
        trades_per_s: shape.rate,
        window_s: secs,
        ramp_s: shape.ramp.as_secs_f64(),
        connected,
        failed: total("failed"),
        closed_by_server: total("closed_by_server"),
        closed_in_window: w.end.progress.iter().flatten().map(|p| p.closed).sum(),
        frames_source,
        seq_gaps: total("seq_gaps"),
        missing_updates: total("missing_updates"),
        sessions_per_process: w.end.sessions.iter().map(|s| s.0).collect(),
        consumers: w.end.sessions.iter().map(|s| s.1).sum(),
        frames_per_s: frames.map(|f| f / secs),
        bars_per_s: bars,
        client_bars_per_s: client_bars,
        bars_per_client_per_s: client_bars / connected.max(1) as f64,
        lag_p50_ms: worst("p50"),
        lag_p99_ms: worst("p99"),
        lag_max_ms: worst("max"),
        rss_idle_kib: i.rss_kib,
        rss_kib: e.rss_kib,
        rss_peak_kib: w.rss_peak.iter().sum(),
        rss_anon_idle_kib: i.rss_anon_kib,
        rss_anon_kib: e.rss_anon_kib,
        rss_file_idle_kib: i.rss_file_kib,
        rss_file_kib: e.rss_file_kib,
        kib_per_connection: per_conn(e.rss_kib, i.rss_kib),
        anon_kib_per_connection: per_conn(e.rss_anon_kib, i.rss_anon_kib),
        kernel_tcp_kib_per_connection: per_conn(w.end.tcp_kernel_kib, w.tcp_before_kib),
        threads_idle: idle.iter().map(|s| s.threads).collect(),
        threads: w.end.procs.iter().map(|s| s.threads).collect(),
        fds: w.end.procs.iter().map(|s| s.fds).collect(),
        server_cpu_s: cpu,
        server_cores: cpu / secs,
        idle_cores,
        frames_per_cpu_s: frames.filter(|_| cpu > 0.0).map(|f| f / cpu),
        frames_per_cpu_s_above_idle: frames.filter(|_| above_idle > 0.0).map(|f| f / above_idle),
        cpu_s_per_million_frames: frames.filter(|f| *f > 0.0).map(|f| cpu / (f / 1e6)),
        ingest_cpu_s: w.ingest_cpu_s,
        broker_cores: w.end.broker_cpu_s.zip(w.start.broker_cpu_s).map(|(b, a)| (b - a) / secs),
        loadgen_cores: (w.end.loadgen_cpu_s - w.start.loadgen_cpu_s) / secs,
        protocol_closes: w.end.protocol_closes.zip(w.start.protocol_closes).map(|(b, a)| b - a),
        slow_closes: w.end.slow_closes.zip(w.start.slow_closes).map(|(b, a)| b - a),
        load_before: String::new(),
        load_after: common::loadavg(),
        server_commands: vec![],
        loadgen_commands: vec![],
    }
}

fn report_point(p: &Point) {
    eprintln!(
        "fanout: {:<10} {:>6} clients: {} connected, {} frames/s, {:.2} KiB/conn, {} frames/CPU-s, lag p99 {:.0} ms, \
         gaps {}, load {}",
        p.mode,
        p.clients,
        p.connected,
        p.frames_per_s.map_or("?".into(), human_rate),
        p.kib_per_connection,
        p.frames_per_cpu_s.map_or("?".into(), human_rate),
        p.lag_p99_ms,
        p.seq_gaps,
        p.load_after
    );
}

// --- the kernel's floor -------------------------------------------------------

/// Loopback connections the send floor writes to, round robin.
const FLOOR_SOCKETS: usize = 5000;
/// Writes per connection: the receivers never read, so this many frames
/// must fit in a receive buffer (about 50 KiB of skb memory here).
const FLOOR_ROUNDS: usize = 20;
/// A binary WebSocket frame of one bar, as a server sends it: 2 header
/// bytes and the 121-byte archive.
const FLOOR_FRAME_BYTES: usize = 123;

/// What one frame per `write()` costs the kernel on this machine.
#[derive(Debug, Clone, Serialize)]
struct SendFloor {
    sockets: usize,
    writes: usize,
    frame_bytes: usize,
    cpu_s: f64,
    us_per_write: f64,
    writes_per_cpu_s: f64,
}

/// Times `write()`s of one frame each, round robin over [`FLOOR_SOCKETS`]
/// loopback TCP connections with TCP_NODELAY (as the gateway sets), on
/// this thread's CPU clock. On loopback the receiving end's TCP work runs
/// in the sender's softirq, as it does for the gateway, so this is the
/// floor for a server that sends each frame in its own write.
fn send_floor() -> Res<SendFloor> {
    use std::io::Write as _;
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    let addr = listener.local_addr()?;
    let mut senders = Vec::with_capacity(FLOOR_SOCKETS);
    let mut receivers = Vec::with_capacity(FLOOR_SOCKETS);
    for _ in 0..FLOOR_SOCKETS {
        let sender = std::net::TcpStream::connect(addr)?;
        sender.set_nodelay(true)?;
        receivers.push(listener.accept()?.0);
        senders.push(sender);
    }
    let frame = [0x5au8; FLOOR_FRAME_BYTES];
    let before = common::thread_cpu_ns().ok_or("no /proc/thread-self/schedstat")?;
    for _ in 0..FLOOR_ROUNDS {
        for sender in &mut senders {
            sender.write_all(&frame)?;
        }
    }
    let cpu_s = (common::thread_cpu_ns().unwrap_or(before) - before) as f64 / 1e9;
    let writes = FLOOR_ROUNDS * FLOOR_SOCKETS;
    drop((senders, receivers));
    Ok(SendFloor {
        sockets: FLOOR_SOCKETS,
        writes,
        frame_bytes: FLOOR_FRAME_BYTES,
        cpu_s,
        us_per_write: cpu_s * 1e6 / writes as f64,
        writes_per_cpu_s: writes as f64 / cpu_s.max(1e-9),
    })
}

// --- profile -----------------------------------------------------------------

/// `perf record` of the gateway processes for `time` (cpu-clock sampling),
/// summarised by shared object and by symbol.
fn perf_profile(pids: &[u32], time: Duration) -> Profile {
    match try_perf(pids, time) {
        Ok(profile) => profile,
        Err(error) => Profile { error: Some(error.to_string()), ..Profile::default() },
    }
}

fn try_perf(pids: &[u32], time: Duration) -> Res<Profile> {
    let data = procs::log_dir()?.join("fanout-perf.data");
    let pid_list = pids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    let secs = time.as_secs().to_string();
    let limit = (time.as_secs() + 30).to_string();
    let status = std::process::Command::new("timeout")
        .args([&limit, "perf", "record", "-F", "499", "-o"])
        .arg(&data)
        .args(["-p", &pid_list, "--", "sleep", &secs])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    if !status.success() {
        return Err(format!("perf record failed ({status})").into());
    }
    let report = |sort: &str| -> Res<Vec<(f64, String)>> {
        let out = std::process::Command::new("timeout")
            .args(["60", "perf", "report", "--no-children", "--stdio", "--sort", sort, "-i"])
            .arg(&data)
            .stderr(std::process::Stdio::null())
            .output()?;
        Ok(parse_perf(&String::from_utf8_lossy(&out.stdout)))
    };
    let mut by_symbol = report("sym")?;
    by_symbol.truncate(15);
    Ok(Profile { seconds: time.as_secs_f64(), by_dso: report("dso")?, by_symbol, error: None })
}

/// Lines `   63.10%  name` of `perf report --stdio`.
fn parse_perf(text: &str) -> Vec<(f64, String)> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let (share, name) = l.trim().split_once("%")?;
            Some((share.trim().parse().ok()?, name.trim().to_owned()))
        })
        .filter(|(_, name)| !name.is_empty())
        .collect()
}

// --- report ------------------------------------------------------------------

fn opt(x: Option<f64>) -> String {
    x.map_or("–".into(), human_rate)
}

fn per_client_met(p: &Point) -> bool {
    p.clients >= BAR_PER_CLIENT
        && p.connected as usize >= BAR_PER_CLIENT
        && p.consumers as usize >= BAR_PER_CLIENT
        && p.failed == 0
        && p.closed_in_window == 0
        && p.seq_gaps == 0
        && p.missing_updates == 0
}

fn shared_checks(p: &Point) -> (bool, bool, bool) {
    (
        p.connected as usize >= BAR_SHARED && p.failed == 0 && p.closed_in_window == 0,
        p.kib_per_connection <= BAR_KIB_PER_CONNECTION,
        p.frames_per_cpu_s.is_some_and(|f| f >= BAR_FRAMES_PER_CPU_S),
    )
}

fn row_per_client(points: &[Point]) -> String {
    let Some(p) = points.iter().find(|p| p.clients == BAR_PER_CLIENT) else {
        return format!(
            "| {ROW_PER_CLIENT} | ≥ 2,000 concurrent clients, each its own consumer, no message lost | not measured (the run failed) | | **not met** |\n"
        );
    };
    format!(
        "| {ROW_PER_CLIENT} | ≥ 2,000 concurrent clients, each its own consumer, no message lost | {} clients connected, \
         {} Kafka consumers, {} seq gaps / {} missing updates, {} closed by the server during the window; {} frames/s delivered ({:.1} bars/s \
         per client of ≈ {} produced), lag p99 {:.0} ms; {:.0} KiB RSS and {:.1} threads per client, {:.1} CPU-s per million frames | \
         – (no baseline in the SPEC) | {} |\n",
        p.connected,
        p.consumers,
        p.seq_gaps,
        p.missing_updates,
        p.closed_in_window,
        opt(p.frames_per_s),
        p.bars_per_client_per_s,
        p.trades_per_s + 1,
        p.lag_p99_ms,
        p.kib_per_connection,
        (p.threads.iter().sum::<u64>() as f64 - p.threads_idle.iter().sum::<u64>() as f64) / p.connected.max(1) as f64,
        p.cpu_s_per_million_frames.unwrap_or(f64::NAN),
        verdict(per_client_met(p)),
    )
}

fn row_shared(points: &[Point]) -> String {
    let Some(p) = points.iter().find(|p| p.clients == BAR_SHARED) else {
        return format!(
            "| {ROW_SHARED} | ≥ 50,000 concurrent clients at 1 push/s, ≤ 4 KiB user-space memory per connection, ≥ 1 M frames per server CPU-second | not measured (the run failed) | | **not met** |\n"
        );
    };
    let (clients, memory, cpu) = shared_checks(p);
    format!(
        "| {ROW_SHARED} | ≥ 50,000 concurrent clients at 1 push/s, ≤ 4 KiB user-space memory per connection, ≥ 1 M \
         frames per server CPU-second | {} connected over {} gateway processes; {:.2} KiB RSS per connection; {} frames \
         per server CPU-second ({} frames/s on {:.3} cores); lag p99 {:.0} ms | – (no baseline in the SPEC) | clients \
         {}, memory {}, CPU {} |\n",
        p.connected,
        p.gateways,
        p.kib_per_connection,
        opt(p.frames_per_cpu_s),
        opt(p.frames_per_s),
        p.server_cores,
        p.lag_p99_ms,
        verdict(clients),
        verdict(memory),
        verdict(cpu),
    )
}

fn section(
    per_client: &[Point],
    shared: &[Point],
    (profile, floor): (&Profile, &SendFloor),
    failures: &[serde_json::Value],
    load: [&str; 2],
    brokers: &str,
    plan: &Plan,
) -> String {
    let mut md = format!(
        "## WebSocket fan-out: per-client and shared mode (`cargo bench --bench fanout`)\n\n\
         Broker {brokers}. One mock mint; per-client clients subscribe to `sub-1s`, shared-mode clients to \
         `{SHARED_MIX}` in turn; gateway `--ping-interval {PING_INTERVAL}`, per-IP limit off. Each point measures a steady window from {}s after the ramp to {}s before the loadgens \
         stop ({}s runs for the SPEC points, {}s for the others). Load average (1/5/15 min) {} at start, {} at end.\n\n",
        SETTLE.as_secs(),
        END_MARGIN.as_secs(),
        plan.main_run.as_secs(),
        plan.point_run.as_secs(),
        load[0],
        load[1],
    );
    md += &per_client_table(per_client);
    md += &shared_table(shared);
    md += &limits(per_client, shared, profile, floor);
    for f in failures {
        let error = f["error"].as_str().unwrap_or_default().replace('\n', " / ");
        let error: String = error.chars().take(400).collect();
        md += &format!("\n**Point failed** ({} mode, {} clients): {error}\n", f["mode"], f["clients"]);
    }
    md += "\n![memory per connection](fanout-memory.png) ![frames per CPU-second](fanout-cpu.png)\n\n\
           Commands of the SPEC points (ports and topics are fresh per point; each loadgen writes its own summary):\n\n```sh\n";
    for p in per_client
        .iter()
        .filter(|p| p.clients == BAR_PER_CLIENT)
        .chain(shared.iter().filter(|p| p.clients == BAR_SHARED))
    {
        for c in p.server_commands.iter().chain(&p.loadgen_commands) {
            md += &format!("{c}\n");
        }
    }
    md + "```\n"
}

fn per_client_table(points: &[Point]) -> String {
    let mut md = format!(
        "### Per-client mode ({PER_CLIENT_RATE} trades/s: each client gets every update of the 1 s series, ≈ {} a \
         second)\n\n\
         | clients | connected | consumers | frames/s sent | bars/s per client | seq gaps / missing | closed by server in window (by the end; no-pong / slow) | \
         lag p50 / p99 / max ms | RSS idle → loaded MiB | KiB per client | threads idle → loaded | server cores | CPU-s \
         per M frames | broker / loadgen cores | load after |\n\
         | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | --- | ---: | --- | ---: | ---: | ---: | --- |\n",
        PER_CLIENT_RATE + 1
    );
    for p in points {
        md += &format!(
            "| {} | {} | {:.0} | {} | {:.1} | {} / {} | {} ({}; {} / {}) | {:.0} / {:.0} / {:.0} | {:.0} → {:.0} | {:.0} | {} → {} | \
             {:.2} | {:.1} | {} / {:.2} | {} |\n",
            p.clients,
            p.connected,
            p.consumers,
            opt(p.frames_per_s),
            p.bars_per_client_per_s,
            p.seq_gaps,
            p.missing_updates,
            p.closed_in_window,
            p.closed_by_server,
            p.protocol_closes.map_or("?".into(), |c| format!("{c:.0}")),
            p.slow_closes.map_or("?".into(), |c| format!("{c:.0}")),
            p.lag_p50_ms,
            p.lag_p99_ms,
            p.lag_max_ms,
            p.rss_idle_kib as f64 / 1024.0,
            p.rss_kib as f64 / 1024.0,
            p.kib_per_connection,
            p.threads_idle.iter().sum::<u64>(),
            p.threads.iter().sum::<u64>(),
            p.server_cores,
            p.cpu_s_per_million_frames.unwrap_or(f64::NAN),
            p.broker_cores.map_or("–".into(), |c| format!("{c:.2}")),
            p.loadgen_cores,
            p.load_after,
        );
    }
    md + "\n"
}

fn shared_table(points: &[Point]) -> String {
    let mut md = format!(
        "### Shared mode (`--push-interval 1s`, {SHARED_RATE} trades/s; `klinecast ingest` plus gateway processes on one \
         port)\n\n\
         | clients | subscribe | gateways × loadgens | connected (closed in window) | sessions per gateway | frames/s sent | bars/s \
         received | RSS idle → loaded MiB (sum) | KiB per connection (anon) | kernel TCP KiB per connection | server \
         cores (idle) | frames per CPU-s (above idle) | broker / loadgen cores | threads per gateway | lag p50 / p99 ms | \
         load after |\n\
         | ---: | --- | --- | ---: | --- | ---: | ---: | --- | --- | ---: | --- | --- | --- | --- | --- | --- |\n"
    );
    for p in points {
        md += &format!(
            "| {} | `{}` | {} × {} | {} ({}) | {} | {}{} | {} | {:.1} → {:.1} | {:.2} ({:.2}) | {:.2} | {:.3} ({:.3}) | {} ({}) | \
             {} / {:.2} | {:?} | {:.0} / {:.0} | {} |\n",
            p.clients,
            p.subscribe,
            p.gateways,
            p.loadgens,
            p.connected,
            p.closed_in_window,
            p.sessions_per_process.iter().map(|s| format!("{s:.0}")).collect::<Vec<_>>().join(", "),
            opt(p.frames_per_s),
            if p.frames_source == "server /metrics" { "" } else { " (clients' count)" },
            human_rate(p.client_bars_per_s),
            p.rss_idle_kib as f64 / 1024.0,
            p.rss_kib as f64 / 1024.0,
            p.kib_per_connection,
            p.anon_kib_per_connection,
            p.kernel_tcp_kib_per_connection,
            p.server_cores,
            p.idle_cores,
            opt(p.frames_per_cpu_s),
            opt(p.frames_per_cpu_s_above_idle),
            p.broker_cores.map_or("–".into(), |c| format!("{c:.2}")),
            p.loadgen_cores,
            p.threads,
            p.lag_p50_ms,
            p.lag_p99_ms,
            p.load_after,
        );
    }
    md + "\nIn shared mode `seq` gaps are expected (open-bar updates are conflated to one per push); lag includes the \
           wait for the next push (up to 1 s). The `ping` point's clients hold a WebSocket session without any \
           subscription. Bars received per second come from the loadgens' once-a-second progress lines (±1 s). \
           \"(clients' count)\": the gateways behind the shared port did not all answer `/metrics` in time, so frames \
           are the bars the clients received.\n\n"
}

/// Cores online.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Least-squares slope of y over x.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let (mx, my) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// What limits each bar, from the measurements above.
fn limits(per_client: &[Point], shared: &[Point], profile: &Profile, floor: &SendFloor) -> String {
    let mut md = "### Verdicts and what limits them\n\n".to_owned();
    if let Some(p) = per_client.iter().find(|p| p.clients == BAR_PER_CLIENT) {
        md += &format!(
            "- per-client mode, {} clients: {} (connected {}, consumers {:.0}, gaps {}, missing {}, closed {}). \
             Clients received {:.1} of the ≈ {} updates a second the 1 s series gets ({:.0} %), lag p99 {:.0} ms: \
             {}. Each client costs its own librdkafka consumer: {:.1} threads and {:.0} KiB of RSS per client, and \
             the broker serves one fetch session per client; the serve process used {:.2} cores ({:.2} before \
             clients), the broker {} and the loadgen {:.2} of the machine's {} cores. Sessions the server closed in \
             the window: {} for silence (no pong within two ping intervals) or abuse, {} as too slow.\n",
            p.clients,
            verdict(per_client_met(p)),
            p.connected,
            p.consumers,
            p.seq_gaps,
            p.missing_updates,
            p.closed_in_window,
            p.bars_per_client_per_s,
            p.trades_per_s + 1,
            100.0 * p.bars_per_client_per_s / f64::from(p.trades_per_s + 1),
            p.lag_p99_ms,
            if p.bars_per_client_per_s >= 0.95 * f64::from(p.trades_per_s + 1) {
                "the machine keeps up"
            } else {
                "the machine does not keep up, so the clients fall behind (nothing is lost: Kafka holds the rest)"
            },
            (p.threads.iter().sum::<u64>() as f64 - p.threads_idle.iter().sum::<u64>() as f64)
                / p.connected.max(1) as f64,
            p.kib_per_connection,
            p.server_cores,
            p.idle_cores,
            p.broker_cores.map_or("–".into(), |c| format!("{c:.2}")),
            p.loadgen_cores,
            cores(),
            p.protocol_closes.map_or("?".into(), |c| format!("{c:.0}")),
            p.slow_closes.map_or("?".into(), |c| format!("{c:.0}")),
        );
    }
    let Some(p) = shared.iter().find(|p| p.clients == BAR_SHARED) else { return md };
    let (clients, memory, cpu) = shared_checks(p);
    let mix: Vec<&Point> = shared.iter().filter(|p| p.subscribe == SHARED_MIX).collect();
    let growth = |p: &&Point| (p.connected as f64, p.rss_kib as f64 - p.rss_idle_kib as f64);
    let rss_slope = slope(&mix.iter().map(growth).collect::<Vec<_>>());
    md += &format!(
        "- shared mode, {} clients: clients {} ({} connected), memory {} ({:.2} KiB per connection: RSS {:.1} → {:.1} MiB \
         over {} processes; anonymous memory {:.1} → {:.1} MiB, file-backed {:.1} → {:.1} MiB; the slope of RSS over \
         connections across the scale points is {} KiB per connection), CPU {} ({} frames per server CPU-second: {} \
         frames/s on {:.3} cores, of which {:.3} cores were used before any client connected; {} frames per CPU-second \
         above that idle use; {:.1} CPU-s per million frames).\n",
        p.clients,
        verdict(clients),
        p.connected,
        verdict(memory),
        p.kib_per_connection,
        p.rss_idle_kib as f64 / 1024.0,
        p.rss_kib as f64 / 1024.0,
        p.gateways,
        p.rss_anon_idle_kib as f64 / 1024.0,
        p.rss_anon_kib as f64 / 1024.0,
        p.rss_file_idle_kib as f64 / 1024.0,
        p.rss_file_kib as f64 / 1024.0,
        rss_slope.map_or("–".into(), |s| format!("{s:.2}")),
        verdict(cpu),
        opt(p.frames_per_cpu_s),
        opt(p.frames_per_s),
        p.server_cores,
        p.idle_cores,
        opt(p.frames_per_cpu_s_above_idle),
        p.cpu_s_per_million_frames.unwrap_or(f64::NAN),
    );
    md += &format!(
        "- the machine during that window: gateways {:.2}, loadgens {:.2}, broker {} cores of {}; clients received \
         {} bars/s, lag p50 {:.0} ms, p99 {:.0} ms{}.\n",
        p.server_cores,
        p.loadgen_cores,
        p.broker_cores.map_or("–".into(), |c| format!("{c:.2}")),
        cores(),
        human_rate(p.client_bars_per_s),
        p.lag_p50_ms,
        p.lag_p99_ms,
        if p.lag_p99_ms > 2000.0 { " (well over the 1 s push interval: the clients fall behind)" } else { "" },
    );
    let ping = shared.iter().find(|p| p.subscribe == "ping");
    let same = ping.and_then(|q| mix.iter().find(|p| p.clients == q.clients));
    if let (Some(q), Some(m)) = (ping, same) {
        md += &format!(
            "- memory split ({} clients each): a WebSocket session with no subscription costs {:.2} KiB of RSS, with \
             the subscription mix {:.2} KiB, so a subscription and the frames in flight add {:.2} KiB.\n",
            q.clients,
            q.kib_per_connection,
            m.kib_per_connection,
            m.kib_per_connection - q.kib_per_connection
        );
    }
    md += &format!(
        "- kernel memory is not in the bar but is real: {:.2} KiB of TCP buffers per connection (both loopback ends, \
         `/proc/net/sockstat`).\n",
        p.kernel_tcp_kib_per_connection
    );
    md += &format!(
        "- the kernel's floor on this machine: one {}-byte `write()` to a loopback TCP socket (TCP_NODELAY, {} \
         connections round robin, receivers not reading) costs {:.2} µs of the writing thread's CPU, i.e. at most {} \
         frames per CPU-second for any server that sends each frame in its own write. At 1 push/s a connection \
         gets one frame per push (two for `sub-1s`, whose bar also closes every second), so a write can carry at \
         most a couple of frames; the gateway reaches {:.0} % of that floor.\n",
        floor.frame_bytes,
        floor.sockets,
        floor.us_per_write,
        human_rate(floor.writes_per_cpu_s),
        100.0 * p.frames_per_cpu_s.unwrap_or(0.0) / floor.writes_per_cpu_s,
    );
    if let Some(error) = &profile.error {
        md += &format!("- CPU profile: not taken ({error}).\n");
    } else if !profile.by_dso.is_empty() {
        md += &format!(
            "- where the gateways' CPU goes (`perf record -F 499` of the {} gateway processes for {:.0} s after the \
             window, cpu-clock samples), by object: {}; top symbols: {}.\n",
            p.gateways,
            profile.seconds,
            profile.by_dso.iter().take(6).map(|(s, n)| format!("{n} {s:.1} %")).collect::<Vec<_>>().join(", "),
            profile.by_symbol.iter().take(10).map(|(s, n)| format!("`{n}` {s:.1} %")).collect::<Vec<_>>().join(", "),
        );
    }
    md
}
