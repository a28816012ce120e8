//! The history store: how long a gateway takes to serve its history after
//! a restart, for a given history size, next to the baseline of rebuilding
//! it by reading the same closed bars back from Kafka (what a gateway
//! without a store has to do); and the disk each million bars takes.
//!
//! `cargo bench --bench history` (needs the broker of `scripts/kafka-up.sh`
//! for the baseline). Without `--bench` (as `cargo test --all-targets` runs
//! it) a smoke run of 5,000 bars and no Kafka.
//!
//! Per size: N 1 m bars over N / 1000 mints are written into a fresh store
//! in the writer's batches; the store is closed; then "start-up" is opening
//! it and answering the first `/api/klines` page (the newest 500 bars of a
//! mint), median of 5. The baseline produces the same N bars (193-byte
//! values) to a fresh one-partition topic and times a consumer reading all
//! of them from the beginning into memory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failed step ends the run

#[path = "common/mod.rs"]
mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use klinecast::codec::bar::Bar;
use klinecast::history::store::{Batch, Edge, Store};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

/// Bars per mint (1 m bars: about 17 hours each).
const BARS_PER_MINT: usize = 1000;

fn bars(n: usize) -> impl Iterator<Item = Bar> {
    (0..n).map(|i| {
        let mint = (i / BARS_PER_MINT) as u64;
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&mint.to_le_bytes());
        // Minutes from a whole minute (1,770,000,000 is one).
        let t = 1_770_000_000 + (i % BARS_PER_MINT) as i64 * 60;
        Bar { closed: true, seq: i as u64 + 1, ..Bar::one_trade(key, 60, t, 3e-8 + (i % 7) as f64 * 1e-10) }
    })
}

struct Row {
    bars: usize,
    write_s: f64,
    startup_ms: f64,
    file_bytes: u64,
    allocated_bytes: u64,
    kafka_readback_ms: Option<f64>,
}

fn measure_store(n: usize) -> Row {
    let dir = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    {
        let store = Store::open(dir.path(), "bench", 64 << 20).expect("store");
        let mut batch = Batch::default();
        for bar in bars(n) {
            batch.bars.push((bar, 86_400));
            if batch.bars.len() == 20_000 {
                store.write(&batch).expect("write");
                batch.bars.clear();
            }
        }
        batch.offsets = vec![(0, n as i64)];
        store.write(&batch).expect("write");
    }
    let write_s = started.elapsed().as_secs_f64();
    let mut runs = Vec::new();
    let mut usage = Default::default();
    for _ in 0..5 {
        let started = Instant::now();
        let store = Store::open(dir.path(), "bench", 64 << 20).expect("reopen");
        let page = store.klines(&[0; 32], 60, (i64::MIN, i64::MAX), 500, Edge::End).expect("page");
        runs.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(page.len(), 500.min(n));
        usage = store.usage().expect("usage");
    }
    Row {
        bars: n,
        write_s,
        startup_ms: common::Summary::of(&runs).median,
        file_bytes: usage.file_bytes,
        allocated_bytes: usage.allocated_bytes,
        kafka_readback_ms: None,
    }
}

/// Produces `n` bars to a fresh topic, then times reading them all back.
fn kafka_readback_ms(n: usize) -> f64 {
    let brokers = support::brokers();
    let topic = support::fresh_topic("bench-history");
    support::create_topic(&brokers, &topic, 1).expect("topic");
    let producer: ThreadedProducer<_> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    for bar in bars(n) {
        let bytes = bar.to_bytes();
        let mut record = BaseRecord::<(), [u8]>::to(&topic).payload(&bytes[..]).partition(0);
        while let Err((_, back)) = producer.send(record) {
            record = back;
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", support::fresh_topic("bench-history"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(&topic, 0, Offset::Beginning).expect("partition");
    let started = Instant::now();
    consumer.assign(&list).expect("assign");
    let mut kept: Vec<Bar> = Vec::with_capacity(n);
    while kept.len() < n {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100))
            && let Ok(bar) = klinecast::codec::bar::access(m.payload().unwrap_or_default())
        {
            kept.push(bar.to_bar());
        }
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    support::delete_topics(&brokers, &[topic]);
    ms
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bench = common::bench_mode();
    let sizes: &[usize] = if bench { &[100_000, 1_000_000, 3_000_000] } else { &[5_000] };
    let mut rows = Vec::new();
    for &n in sizes {
        let mut row = measure_store(n);
        if bench {
            row.kafka_readback_ms = Some(kafka_readback_ms(n));
        }
        eprintln!(
            "{n} bars: store start-up {:.1} ms (first page served), Kafka read-back {:?} ms, file {} B, in use {} B, written in {:.1} s",
            row.startup_ms, row.kafka_readback_ms, row.file_bytes, row.allocated_bytes, row.write_s
        );
        rows.push(row);
    }
    if !bench {
        return Ok(());
    }
    let mut md = String::from(
        "## History store: start-up and disk\n\n`cargo bench --bench history`. Start-up: open the store and answer the \
         first page (500 newest bars of a mint), median of 5, against the baseline of reading the same closed bars back \
         from Kafka (one partition, same broker, same run). Disk: the redb file and the pages in use.\n\n\
         | bars kept | start-up with the store | baseline: Kafka read-back | file | in use | per million bars (in use) | write |\n\
         | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let mut json = Vec::new();
    for r in &rows {
        let per_million = r.allocated_bytes as f64 / (r.bars as f64 / 1e6);
        md.push_str(&format!(
            "| {} | {:.1} ms | {} | {:.1} MB | {:.1} MB | {:.0} MB | {:.0} bars/s |\n",
            r.bars,
            r.startup_ms,
            r.kafka_readback_ms.map_or("–".into(), |ms| format!("{ms:.0} ms")),
            r.file_bytes as f64 / 1e6,
            r.allocated_bytes as f64 / 1e6,
            per_million / 1e6,
            r.bars as f64 / r.write_s,
        ));
        json.push(serde_json::json!({
            "bars": r.bars, "startup_ms": r.startup_ms, "kafka_readback_ms": r.kafka_readback_ms,
            "file_bytes": r.file_bytes, "allocated_bytes": r.allocated_bytes, "write_s": r.write_s,
        }));
    }
    md.push_str(&format!("\nMachine load at the end: {}.\n", common::loadavg()));
    common::write_results(
        "history",
        &serde_json::json!({ "measured_at_unix_s": common::unix_now_s(), "rows": json }),
        &md,
        "",
    )
}
