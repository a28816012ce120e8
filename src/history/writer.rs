//! The store's writer: one Kafka reader on a thread of its own that takes
//! every closing update off the topic and commits them to the store in
//! batches, with the offsets they were read up to; then drops what is past
//! each window's retention, and the oldest buckets while the store is over
//! its disk cap. A thread, not an executor task: commits wait for the disk
//! (fsync), which must never stall a shard. It starts where the store's
//! offsets say (or, for a fresh store, one retention back), so a restarted
//! gateway reads only what it missed.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};

use super::config::{HistoryConfig, HistoryError, State};
use super::store::{Batch, Bucket, Store};
use crate::codec::bar;
use crate::kafka::topic::METADATA_TIMEOUT;
use crate::kafka::{KafkaConfig, Reader, reader};
use crate::runtime::Shutdown;

/// Longest a read bar waits before it is committed.
const COMMIT_INTERVAL: Duration = Duration::from_millis(200);
/// Most bars per commit: the batch is the writer's only buffer, so this
/// bounds its memory (≈ 250 B a bar); at this many it commits at once and
/// reads on after.
const MAX_BATCH_BARS: usize = 20_000;
/// How often retention and the disk cap are applied.
const PRUNE_INTERVAL: Duration = Duration::from_secs(30);
/// Wait for the next message when there is none.
const POLL_WAIT: Duration = Duration::from_millis(50);
/// Pause after a failed commit before trying again (a full disk).
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Where each partition starts and where the store counts as caught up.
pub(super) struct Plan {
    /// Partition → (first offset to read, end offset at start).
    starts: Vec<(i32, i64, i64)>,
}

/// Blocking: the writer's consumer, assigned where the store left off.
/// Call from the unpinned main thread (librdkafka's threads inherit its
/// affinity).
pub(super) fn assign(
    config: &HistoryConfig,
    kafka: &KafkaConfig,
    store: &Store,
) -> Result<(Reader, Plan), HistoryError> {
    let consumer = kafka.create_reader(&reader::unique_group("history")).map_err(HistoryError::Kafka)?;
    let checkpoints: HashMap<i32, i64> = store.checkpoints()?.into_iter().collect();
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let since: Vec<(i32, Option<i64>)> = config
        .partition_retention_s()
        .into_iter()
        .map(|(p, retention_s)| (p, Some(now_ms - retention_s * 1000)))
        .collect();
    let spans = reader::spans(&consumer, &kafka.topic, &since).map_err(HistoryError::Kafka)?;
    let mut starts = Vec::new();
    let mut list = TopicPartitionList::new();
    for span in spans {
        // A checkpoint wins unless it is older than the retention (the
        // gateway was down for longer than that) or than what Kafka kept.
        let (low, _) =
            consumer.fetch_watermarks(&kafka.topic, span.partition, METADATA_TIMEOUT).map_err(HistoryError::Kafka)?;
        let start = match checkpoints.get(&span.partition) {
            Some(&next) => next.max(span.start).max(low).min(span.end),
            None => span.start,
        };
        list.add_partition_offset(&kafka.topic, span.partition, Offset::Offset(start)).map_err(HistoryError::Kafka)?;
        starts.push((span.partition, start, span.end));
    }
    consumer.assign(&list).map_err(HistoryError::Kafka)?;
    Ok((consumer, Plan { starts }))
}

/// Starts the writer thread.
pub(super) fn spawn(
    config: HistoryConfig,
    store: Arc<Store>,
    state: Arc<State>,
    consumer: Reader,
    plan: Plan,
    shutdown: Shutdown,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("history-writer".into()).spawn(move || {
        Writer::new(config, store, state, plan).run(&consumer, &shutdown);
        // Closing the consumer joins librdkafka's threads: here, off any executor.
        drop(consumer);
    })
}

/// The writer's state between commits.
struct Writer {
    config: HistoryConfig,
    store: Arc<Store>,
    state: Arc<State>,
    /// Partition → end offset at start, until it is reached.
    behind: HashMap<i32, i64>,
    /// What the next commit writes.
    batch: Batch,
    /// Partition → next offset to read, since the last commit.
    read_to: HashMap<i32, i64>,
    last_commit: Instant,
    last_prune: Instant,
}

impl Writer {
    fn new(config: HistoryConfig, store: Arc<Store>, state: Arc<State>, plan: Plan) -> Self {
        let behind = plan.starts.iter().filter(|(_, start, end)| start < end).map(|&(p, _, end)| (p, end)).collect();
        let writer = Self {
            config,
            store,
            state,
            behind,
            batch: Batch::default(),
            read_to: HashMap::new(),
            last_commit: Instant::now(),
            // Prune soon after start: a store opened with a shorter retention
            // than before sheds the excess at once.
            last_prune: Instant::now() - PRUNE_INTERVAL,
        };
        writer.note_caught_up();
        writer
    }

    fn run(mut self, consumer: &Reader, shutdown: &Shutdown) {
        while !shutdown.requested() {
            match consumer.poll(POLL_WAIT) {
                None => {}
                Some(Ok(message)) => {
                    let (partition, offset) = (message.partition(), message.offset());
                    self.read_to.insert(partition, offset + 1);
                    match message.payload().map(bar::access) {
                        Some(Ok(bar)) if bar.closed => {
                            let window_s = bar.window_s.to_native();
                            let bucket_s = self.config.bucket_s(window_s);
                            self.batch.bars.push((bar.to_bar(), bucket_s));
                        }
                        Some(Ok(_)) => {}
                        Some(Err(error)) if error.is_format() => {
                            self.state.other_format.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            self.state.malformed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if let Some(&end) = self.behind.get(&partition)
                        && offset + 1 >= end
                    {
                        self.behind.remove(&partition);
                        // Caught up: commit now, so readers see it all.
                        self.commit();
                        self.note_caught_up();
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(error)) => {
                    self.state.kafka_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%error, "history writer: Kafka error");
                }
            }
            if self.batch.bars.len() >= MAX_BATCH_BARS || self.last_commit.elapsed() >= COMMIT_INTERVAL {
                self.commit();
            }
            if self.last_prune.elapsed() >= PRUNE_INTERVAL {
                self.last_prune = Instant::now();
                self.prune();
            }
        }
        self.commit();
    }

    fn note_caught_up(&self) {
        if self.behind.is_empty() && !self.state.ready.swap(true, Ordering::Release) {
            tracing::info!(store = %self.store.path().display(), "history store caught up with Kafka");
        }
    }

    /// Commits what was read; on failure (a full disk) keeps it and waits a
    /// moment, so nothing read is lost: the reader does not go on until the
    /// batch is written (the batch bound holds, Kafka keeps the rest).
    fn commit(&mut self) {
        self.last_commit = Instant::now();
        if self.read_to.is_empty() {
            return;
        }
        self.batch.offsets = self.read_to.iter().map(|(&p, &o)| (p, o)).collect();
        loop {
            match self.store.write(&self.batch) {
                Ok(()) => break,
                Err(error) => {
                    self.state.write_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, "history store: commit failed; retrying");
                    std::thread::sleep(RETRY_PAUSE);
                }
            }
        }
        self.state.bars_written.fetch_add(self.batch.bars.len() as u64, Ordering::Relaxed);
        self.batch.bars.clear();
        self.read_to.clear();
    }

    /// Drops buckets past their window's retention, then, while the store
    /// is over its disk cap, its oldest bucket (whatever the window).
    fn prune(&self) {
        let result = (|| {
            let newest: HashMap<u32, i64> = self.store.newest()?.into_iter().collect();
            let buckets = self.store.buckets()?;
            let expired: Vec<Bucket> = buckets
                .iter()
                .filter(|b| {
                    newest.get(&b.window_s).is_some_and(|&top| b.end() <= top - self.config.retention.of(b.window_s))
                })
                .copied()
                .collect();
            let mut dropped = self.store.drop_buckets(&expired)?;
            let mut left: Vec<Bucket> = buckets.into_iter().filter(|b| !expired.contains(b)).collect();
            left.sort_by_key(|b| b.end());
            let mut capped = 0;
            while self.store.usage()?.allocated_bytes > self.config.max_bytes && left.len() > 1 {
                let oldest = left.remove(0);
                dropped += self.store.drop_buckets(&[oldest])?;
                capped += 1;
            }
            if capped > 0 {
                tracing::warn!(
                    buckets = capped,
                    cap = self.config.max_bytes,
                    "history store over --history-max-bytes: dropped its oldest bars before their retention"
                );
                self.state.capped_buckets.fetch_add(capped, Ordering::Relaxed);
            }
            self.state.bars_dropped.fetch_add(dropped, Ordering::Relaxed);
            Ok::<_, super::store::StoreError>(())
        })();
        if let Err(error) = result {
            self.state.write_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%error, "history store: pruning failed");
        }
    }
}
