//! SPEC §7 row 2: bars acknowledged by the broker per second through
//! klinecast's producer, next to Kafka's own `ProducerPerformance` tool on
//! the same broker, record size, acks and record count, in the same run.
//!
//! - klinecast: `KafkaSink::connect` (creates a fresh topic, one partition
//!   per window), then `try_send` of every bar, polling every
//!   [`POLL_EVERY`] sends; on `QueueFull` poll, wait [`QUEUE_FULL_WAIT`] and
//!   retry; `flush`. Timed from the first send until every bar is
//!   acknowledged (`stats().delivered`).
//! - Kafka: `scripts/kafka-tool.sh producer-perf` with `--record-size 121`
//!   (the archived bar), acks=all, on its own fresh topic with the same
//!   partition count; once with the tool's defaults otherwise, once with
//!   klinecast's linger and idempotence, once with its batch size too. Its
//!   rate is its final summary line.
//!
//! Rounds rotate the order of the producers, so none always goes first. Needs a
//! broker (`KLINECAST_BENCH_BROKERS`, default 127.0.0.1:9092); without
//! `--bench` (`cargo test --all-targets`) it prints a note and exits.

mod common;

use std::error::Error;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use klinecast::aggregate::Windows;
use klinecast::codec::bar::{BAR_LEN, Bar};
use klinecast::kafka::KafkaConfig;
use klinecast::kafka::topic::ensure_topic;
use klinecast::sink::{KafkaSink, SendError};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::util::Timeout;
use serde::Serialize;
use serde_json::json;

use common::{Summary, human_rate, verdict};

/// Bars (and records) per run unless `KLINECAST_BENCH_BARS` says otherwise.
const DEFAULT_BARS: u64 = 2_000_000;
/// Rounds unless `KLINECAST_BENCH_ROUNDS` says otherwise.
const DEFAULT_ROUNDS: usize = 3;
/// Broker unless `KLINECAST_BENCH_BROKERS` says otherwise.
const DEFAULT_BROKERS: &str = "127.0.0.1:9092";
/// Distinct bars cycled through (their `seq` differs on every send).
const POOL: usize = 4096;
/// Sends between polls for delivery reports.
const POLL_EVERY: u64 = 256;
/// Wait after `QueueFull` before retrying: the broker needs time to catch
/// up, and spinning would take CPU from it on a small machine.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(1);
/// Longest wait for the last acknowledgements.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(300);
/// Pause before each run, so the previous run's topic deletion and log
/// flushes settle.
const SETTLE: Duration = Duration::from_secs(3);
/// SPEC §7: klinecast must reach this share of Kafka's own tool.
const BAR_SHARE: f64 = 0.90;
/// Name of this row in SPEC §7 (and in the summary of `REPORT.md`).
const SPEC_ROW: &str = "Kafka produce of bars";
/// Event time of the pool's bars.
const FIRST_TS_S: i64 = 1_770_645_600;

/// The producers measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Producer {
    Klinecast,
    /// `ProducerPerformance` with acks=all and its defaults otherwise.
    KafkaDefaults,
    /// `ProducerPerformance` with klinecast's acks, linger and idempotence.
    KafkaSameSettings,
    /// As `KafkaSameSettings`, plus librdkafka's batch size (1 MB instead
    /// of the Java client's 16 KiB): the batching klinecast gets.
    KafkaSameBatching,
}

impl Producer {
    const ALL: [Self; 4] = [Self::Klinecast, Self::KafkaDefaults, Self::KafkaSameSettings, Self::KafkaSameBatching];

    fn label(self) -> &'static str {
        match self {
            Self::Klinecast => "klinecast `KafkaSink` (librdkafka)",
            Self::KafkaDefaults => "Kafka `ProducerPerformance`, acks=all, tool defaults",
            Self::KafkaSameSettings => "Kafka `ProducerPerformance`, acks=all linger.ms=1 enable.idempotence=true",
            Self::KafkaSameBatching => {
                "Kafka `ProducerPerformance`, acks=all linger.ms=1 enable.idempotence=true batch.size=1000000"
            }
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Self::Klinecast => "klinecast",
            Self::KafkaDefaults => "kafka-defaults",
            Self::KafkaSameSettings => "kafka-same",
            Self::KafkaSameBatching => "kafka-same-batch",
        }
    }

    /// `--command-property` values for the Kafka tool.
    fn properties(self) -> &'static [&'static str] {
        match self {
            Self::Klinecast => &[],
            Self::KafkaDefaults => &["acks=all"],
            Self::KafkaSameSettings => &["acks=all", "linger.ms=1", "enable.idempotence=true"],
            Self::KafkaSameBatching => &["acks=all", "linger.ms=1", "enable.idempotence=true", "batch.size=1000000"],
        }
    }
}

/// One run of one producer.
#[derive(Debug, Clone, Serialize)]
struct RunResult {
    producer: &'static str,
    round: usize,
    topic: String,
    records: u64,
    /// Records acknowledged per second, first send to last acknowledgement.
    records_per_s: f64,
    /// Average send-to-acknowledgement latency, where the producer reports it.
    avg_latency_ms: Option<f64>,
    /// CPU seconds of the producing process (for the Kafka tool: the whole
    /// JVM, start-up and JIT included).
    cpu_s: f64,
    /// Times klinecast's queue was full (klinecast only).
    queue_full: Option<u64>,
}

/// What the run is measuring against.
struct Setup {
    brokers: String,
    bars: u64,
    rounds: usize,
    windows: Windows,
    pool: Vec<Bar>,
    tool: PathBuf,
    stamp: u64,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T, Box<dyn Error>> {
    match std::env::var(name) {
        Ok(text) => text.parse().map_err(|_| format!("{name}={text:?} is not a valid value").into()),
        Err(_) => Ok(default),
    }
}

/// Valid bars of every window with varying prices, volumes and mints.
fn bar_pool(windows: &Windows) -> Vec<Bar> {
    (0..POOL)
        .map(|i| {
            let window_s = windows.seconds()[i % windows.len()];
            let price = 2.8e-8 * (1.0 + (i % 97) as f64 * 1e-3);
            let mut mint = [0u8; 32];
            mint[..8].copy_from_slice(&(i as u64 % 1000).to_le_bytes());
            Bar {
                trades: 1 + (i % 50) as u32,
                high: price * 1.01,
                low: price * 0.99,
                close: price * (1.0 + (i % 7) as f64 * 1e-3),
                volume_quote: 1_000_000 * (1 + i as u64),
                volume_tokens: 35_000_000_000 * (1 + i as u64 % 13),
                buy_volume_quote: 500_000 * (1 + i as u64),
                buy_volume_tokens: 17_000_000_000 * (1 + i as u64 % 13),
                seq: 0,
                closed: i % 3 == 0,
                ..Bar::one_trade(mint, window_s, FIRST_TS_S + (i as i64 / 4) * i64::from(window_s), price)
            }
        })
        .collect()
}

/// CPU seconds used so far by this process (`self`) or by its waited-for
/// children, from `/proc/self/stat` (clock ticks of 1/100 s).
fn cpu_s(children: bool) -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the command name (which ends with the last ')'):
    // index 11, 12 = utime, stime; 13, 14 = cutime, cstime.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let at = if children { 13 } else { 11 };
    let ticks: f64 = fields.iter().skip(at).take(2).filter_map(|f| f.parse::<f64>().ok()).sum();
    ticks / 100.0
}

fn config(setup: &Setup, topic: &str) -> KafkaConfig {
    KafkaConfig { brokers: setup.brokers.clone(), topic: topic.to_owned(), overrides: vec![] }
}

/// Produces `setup.bars` bars through `KafkaSink` into a fresh topic.
fn run_klinecast(setup: &Setup, topic: &str, round: usize) -> Result<RunResult, Box<dyn Error>> {
    let mut sink = KafkaSink::connect(&config(setup, topic), &setup.windows)?;
    let stats = sink.stats();
    let (cpu_before, started) = (cpu_s(false), Instant::now());
    for i in 0..setup.bars {
        let bar = Bar { seq: i / POOL as u64 + 1, ..setup.pool[i as usize % POOL] };
        loop {
            match sink.try_send(&bar, 0) {
                Ok(()) => break,
                Err(SendError::QueueFull) => {
                    sink.poll();
                    std::thread::sleep(QUEUE_FULL_WAIT);
                }
                Err(error) => return Err(error.into()),
            }
        }
        if i % POLL_EVERY == 0 {
            sink.poll();
        }
    }
    let unflushed = sink.flush(FLUSH_TIMEOUT);
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_s(false) - cpu_before;
    let delivered = stats.delivered.load(Ordering::Relaxed);
    let failed = stats.failed.load(Ordering::Relaxed);
    if unflushed != 0 || failed != 0 || delivered != setup.bars {
        return Err(format!("klinecast: {delivered} delivered, {failed} failed, {unflushed} unflushed").into());
    }
    Ok(RunResult {
        producer: Producer::Klinecast.slug(),
        round,
        topic: topic.to_owned(),
        records: delivered,
        records_per_s: delivered as f64 / secs,
        avg_latency_ms: None,
        cpu_s: cpu,
        queue_full: Some(stats.queue_full.load(Ordering::Relaxed)),
    })
}

/// Runs `ProducerPerformance` into a fresh topic laid out as klinecast's.
fn run_kafka_tool(setup: &Setup, producer: Producer, topic: &str, round: usize) -> Result<RunResult, Box<dyn Error>> {
    ensure_topic(&config(setup, topic), setup.windows.len() as i32)?;
    let cpu_before = cpu_s(true);
    let output = Command::new(&setup.tool).args(&tool_command(setup, producer, topic)[1..]).output()?;
    let cpu = cpu_s(true) - cpu_before;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("producer-perf failed ({}): {stdout}{stderr}", output.status).into());
    }
    let (records, per_s, avg_ms) = parse_summary(&stdout)?;
    if records != setup.bars {
        return Err(format!("producer-perf sent {records} records, expected {}", setup.bars).into());
    }
    Ok(RunResult {
        producer: producer.slug(),
        round,
        topic: topic.to_owned(),
        records,
        records_per_s: per_s,
        avg_latency_ms: Some(avg_ms),
        cpu_s: cpu,
        queue_full: None,
    })
}

/// Reads the tool's final line, `N records sent, X records/sec (Y MB/sec),
/// Z ms avg latency, ... 50th, ...`, as (N, X, Z).
fn parse_summary(stdout: &str) -> Result<(u64, f64, f64), Box<dyn Error>> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.contains(" records sent, ") && l.contains(" 50th"))
        .ok_or_else(|| format!("no summary line in producer-perf output: {stdout}"))?;
    let mut parts = line.split(", ").map(|p| p.split_whitespace().next().unwrap_or_default());
    let mut next = || parts.next().ok_or_else(|| format!("short summary line: {line}"));
    let records = next()?.parse()?;
    let per_s = next()?.parse()?;
    let avg_ms = next()?.parse()?;
    Ok((records, per_s, avg_ms))
}

/// Deletes a bench topic; failures are reported, not fatal.
fn delete_topic(setup: &Setup, topic: &str) {
    if let Err(error) = try_delete_topic(setup, topic) {
        eprintln!("produce: could not delete topic {topic}: {error}");
    }
}

fn try_delete_topic(setup: &Setup, topic: &str) -> Result<(), Box<dyn Error>> {
    let admin: AdminClient<DefaultClientContext> = config(setup, topic).admin().create()?;
    let options = AdminOptions::new().operation_timeout(Some(Timeout::After(Duration::from_secs(10))));
    for result in futures_lite::future::block_on(admin.delete_topics(&[topic], &options))? {
        result.map_err(|(name, code)| format!("{name}: {code}"))?;
    }
    Ok(())
}

fn run_one(setup: &Setup, producer: Producer, round: usize) -> Result<RunResult, Box<dyn Error>> {
    std::thread::sleep(SETTLE);
    let topic = format!("klinecast-bench-{}-{}-r{round}", producer.slug(), setup.stamp);
    let result = match producer {
        Producer::Klinecast => run_klinecast(setup, &topic, round),
        kafka => run_kafka_tool(setup, kafka, &topic, round),
    };
    delete_topic(setup, &topic);
    let result = result?;
    eprintln!(
        "produce: round {round} {:<15} {:>10} records/s, {:.1} CPU s",
        producer.slug(),
        human_rate(result.records_per_s),
        result.cpu_s
    );
    Ok(result)
}

/// The median of each producer's runs.
fn medians(runs: &[RunResult], producer: Producer) -> (Summary, Summary) {
    let mine: Vec<&RunResult> = runs.iter().filter(|r| r.producer == producer.slug()).collect();
    let rate = Summary::of(&mine.iter().map(|r| r.records_per_s).collect::<Vec<_>>());
    let cpu = Summary::of(&mine.iter().map(|r| r.cpu_s).collect::<Vec<_>>());
    (rate, cpu)
}

fn section(setup: &Setup, runs: &[RunResult], load: [&str; 2]) -> String {
    let (ours, _) = medians(runs, Producer::Klinecast);
    let mut md = format!(
        "## Kafka produce of bars (`cargo bench --bench produce`)\n\n\
         {} records of {BAR_LEN} bytes per run, {} rounds (order rotated each round), broker {}, \
         fresh topic of {} partitions per run (deleted afterwards), {} between runs. \
         librdkafka {}. Load average (1/5/15 min) {} at start, {} at end.\n\n\
         | producer | records/s median | min | max | client CPU s (median) | klinecast / this |\n\
         | --- | ---: | ---: | ---: | ---: | ---: |\n",
        setup.bars,
        setup.rounds,
        setup.brokers,
        setup.windows.len(),
        humantime::format_duration(SETTLE),
        rdkafka::util::get_rdkafka_version().1,
        load[0],
        load[1],
    );
    for producer in Producer::ALL {
        let (rate, cpu) = medians(runs, producer);
        md += &format!(
            "| {} | {} | {} | {} | {:.1} | {:.0} % |\n",
            producer.label(),
            human_rate(rate.median),
            human_rate(rate.min),
            human_rate(rate.max),
            cpu.median,
            100.0 * ours.median / rate.median,
        );
    }
    md += "\n";
    for producer in KAFKA_TOOL {
        let share = ours.median / medians(runs, producer).0.median;
        md += &format!("- ≥ 90 % of {}: {:.0} % → {}\n", producer.label(), 100.0 * share, verdict(share >= BAR_SHARE));
    }
    md += &format!(
        "\nThe SPEC bar is judged against the tool's defaults (first Kafka row).\n\n{SETTINGS_NOTE}\n\
         The Kafka tool's runs, per round (each topic created first with {} partitions):\n\n```sh\n",
        setup.windows.len()
    );
    for producer in KAFKA_TOOL {
        md += &format!("{}\n", tool_command(setup, producer, "<fresh topic>").join(" "));
    }
    md + "```\n"
}

/// The runs of Kafka's own tool.
const KAFKA_TOOL: [Producer; 3] = [Producer::KafkaDefaults, Producer::KafkaSameSettings, Producer::KafkaSameBatching];

/// The `kafka-tool.sh producer-perf` command line of `producer`.
fn tool_command(setup: &Setup, producer: Producer, topic: &str) -> Vec<String> {
    let mut args: Vec<String> = ["scripts/kafka-tool.sh", "producer-perf", "--bootstrap-server", &setup.brokers]
        .into_iter()
        .map(String::from)
        .collect();
    args.extend(["--topic".into(), topic.into(), "--num-records".into(), setup.bars.to_string()]);
    args.extend(["--record-size".into(), BAR_LEN.to_string(), "--throughput".into(), "-1".into()]);
    args.push("--command-property".into());
    args.extend(producer.properties().iter().map(|p| p.to_string()));
    args
}

/// How the producers' settings differ, for the report.
const SETTINGS_NOTE: &str = "Settings that differ (same broker, record size, acks, record count, partition count):\n\
- klinecast (`src/kafka/settings.rs`): acks=all, enable.idempotence=true, linger.ms=1, batch.num.messages=10000, \
librdkafka's batch.size (1 MB), compression none, message.timeout.ms=0, a queue of 1 M messages; every bar goes to \
its window's partition with a 5–8 byte key (`key_60`), `produced_ns` is stamped and the bar rkyv-encoded per send; \
the sending thread polls every 256 sends and sleeps 1 ms when the queue is full; the timer starts after the \
connection and topic are set up.\n\
- `ProducerPerformance` (Java client 4.4): the same random 121-byte value for every record, no key, the default \
partitioner (sticky batches over the 4 partitions), batch.size=16384, linger.ms=5 (the 4.x default), idempotence \
on by default with acks=all, buffer.memory 32 MB, send() blocks when the buffer is full; it times from its first \
send to the close of the producer, and its CPU figure includes JVM start-up and JIT.\n\
- The last Kafka row gives the Java client librdkafka's batch size, which closes part of the gap (16 KiB batches \
mean many more produce requests). The rest is client CPU: the JVM tool burns several times the CPU seconds of \
klinecast's process on a 2-core machine it shares with the broker, so the ratio here is larger than it would be \
on a machine with spare cores. Rates move with the machine's load; compare rows of the same run.\n";

fn summary_row(runs: &[RunResult]) -> String {
    let (ours, _) = medians(runs, Producer::Klinecast);
    let rate = |p| medians(runs, p).0.median;
    let share = ours.median / rate(Producer::KafkaDefaults);
    format!(
        "| {SPEC_ROW} | ≥ 90 % of Kafka's producer-performance tool | {} bars/s = {:.0} % of the tool's defaults \
         ({:.0} % with klinecast's linger and idempotence, {:.0} % with its batch size too) | {} records/s \
         (defaults), {} (linger.ms=1, idempotence), {} (also batch.size=1000000) | {} |\n",
        human_rate(ours.median),
        100.0 * share,
        100.0 * ours.median / rate(Producer::KafkaSameSettings),
        100.0 * ours.median / rate(Producer::KafkaSameBatching),
        human_rate(rate(Producer::KafkaDefaults)),
        human_rate(rate(Producer::KafkaSameSettings)),
        human_rate(rate(Producer::KafkaSameBatching)),
        verdict(share >= BAR_SHARE),
    )
}

fn main() -> Result<(), Box<dyn Error>> {
    if !common::bench_mode() {
        println!("produce: skipped (needs a Kafka broker; `cargo bench --bench produce` or scripts/bench.sh measures)");
        return Ok(());
    }
    let windows = Windows::default();
    let setup = Setup {
        brokers: env_or("KLINECAST_BENCH_BROKERS", DEFAULT_BROKERS.to_owned())?,
        bars: env_or("KLINECAST_BENCH_BARS", DEFAULT_BARS)?,
        rounds: env_or("KLINECAST_BENCH_ROUNDS", DEFAULT_ROUNDS)?,
        pool: bar_pool(&windows),
        windows,
        tool: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts").join("kafka-tool.sh"),
        stamp: common::unix_now_s(),
    };
    let load_start = common::loadavg();
    let mut runs = Vec::new();
    for round in 0..setup.rounds {
        for k in 0..Producer::ALL.len() {
            runs.push(run_one(&setup, Producer::ALL[(round + k) % Producer::ALL.len()], round)?);
        }
    }
    let load_end = common::loadavg();
    let section = section(&setup, &runs, [&load_start, &load_end]);
    println!("{section}");
    let (ours, _) = medians(&runs, Producer::Klinecast);
    let rate = |p| medians(&runs, p).0;
    let share = |p| ours.median / medians(&runs, p).0.median;
    let json = json!({
        "bench": "produce",
        "spec_row": SPEC_ROW,
        "measured_at_unix_s": common::unix_now_s(),
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "brokers": setup.brokers,
        "records_per_run": setup.bars,
        "record_size": BAR_LEN,
        "partitions": setup.windows.len(),
        "rounds": setup.rounds,
        "librdkafka": rdkafka::util::get_rdkafka_version().1,
        "runs": runs,
        "records_per_s": {
            "klinecast": ours,
            "kafka_defaults": rate(Producer::KafkaDefaults),
            "kafka_same_settings": rate(Producer::KafkaSameSettings),
            "kafka_same_batching": rate(Producer::KafkaSameBatching),
        },
        "share_of": {
            "kafka_defaults": share(Producer::KafkaDefaults),
            "kafka_same_settings": share(Producer::KafkaSameSettings),
            "kafka_same_batching": share(Producer::KafkaSameBatching),
        },
        "bar_share": BAR_SHARE,
        "met": share(Producer::KafkaDefaults) >= BAR_SHARE,
    });
    common::write_results("produce", &json, &section, &summary_row(&runs))
}
