//! Closed-bar history as deep as each window's retention: closing updates
//! from Kafka into an embedded store (redb) on the gateway's disk, read by
//! the gateway's `/api/klines`, `/api/v3/klines` and `hist`.
//!
//! - [`store`]: the file: buckets of bars per window, the offsets read.
//! - [`writer`]: the thread that reads Kafka into the store, applies the
//!   retention and the disk cap.
//! - [`retention`]: how long each window is kept (`--history-retention`).
//! - [`fill`]: `fill=prev`, empty windows filled in (no I/O).
//!
//! Why an embedded store and not a compacted topic of closed bars: a
//! restarted gateway serves every kept bar at once, from disk, without
//! reading any of it back into memory (start-up time does not grow with
//! history, see `bench/history.rs`); memory is a fixed page cache
//! (`--history-cache-bytes`) whatever the depth; and nothing else has to
//! run next to Kafka. Why redb: one file, transactions that hold the bars
//! together with the offsets they were read up to (so the store is never
//! ahead of or behind what it says), readers that never wait for the
//! writer, no background threads, pure Rust.

pub mod fill;
pub mod retention;
pub mod store;
pub mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use thiserror::Error;

pub use retention::Retention;
pub use store::{Edge, Store, StoreError};

use crate::ingest::metrics::sample;
use crate::kafka::KafkaConfig;
use crate::kafka::topic::partition_for;
use crate::runtime::Shutdown;

/// Default `--history-max-bytes`: the disk cap of the store.
pub const DEFAULT_MAX_BYTES: u64 = 16 << 30;
/// Default `--history-cache-bytes`: redb's page cache, the store's memory.
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

/// Why the history store did not start.
#[derive(Debug, Error)]
pub enum HistoryError {
    /// The file could not be opened, or is in use.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The writer's Kafka reader could not be created or positioned.
    #[error("history writer: {0}")]
    Kafka(rdkafka::error::KafkaError),
    /// The writer thread did not start.
    #[error("history writer thread: {0}")]
    Thread(std::io::Error),
}

/// The store's settings, validated from flags.
#[derive(Debug, Clone)]
pub struct HistoryConfig {
    /// Directory of the store's file (`<topic>.redb`).
    pub dir: PathBuf,
    /// How long each window is kept.
    pub retention: Retention,
    /// Disk cap: pages in use beyond this drop the oldest buckets.
    pub max_bytes: u64,
    /// redb's page cache.
    pub cache_bytes: usize,
    /// The windows, in partition order.
    pub windows: Vec<u32>,
    /// Partitions of the topic.
    pub partitions: i32,
}

impl HistoryConfig {
    /// The bucket length of a window's tables.
    pub fn bucket_s(&self, window_s: u32) -> i64 {
        retention::bucket_s_for(self.retention.of(window_s))
    }

    /// Per partition, the longest retention of the windows it carries.
    pub fn partition_retention_s(&self) -> Vec<(i32, i64)> {
        (0..self.partitions.max(1))
            .map(|p| {
                let longest = (self.windows.iter().enumerate())
                    .filter(|(i, _)| partition_for(*i, self.partitions) == p)
                    .map(|(_, &w)| self.retention.of(w))
                    .max()
                    .unwrap_or(0);
                (p, longest)
            })
            .collect()
    }
}

/// What the writer did, for `/metrics` and readiness.
#[derive(Debug, Default)]
pub struct State {
    /// The writer has read every partition up to where it ended at start.
    pub ready: AtomicBool,
    /// Closed bars committed.
    pub bars_written: AtomicU64,
    /// Bars dropped with their buckets (retention and cap).
    pub bars_dropped: AtomicU64,
    /// Buckets dropped before their retention because of the disk cap.
    pub capped_buckets: AtomicU64,
    /// Commits or prunes that failed (retried).
    pub write_errors: AtomicU64,
    /// Kafka errors the writer saw.
    pub kafka_errors: AtomicU64,
    /// Messages on the topic that are not bars.
    pub malformed: AtomicU64,
}

/// The store as the gateway's shards read it; cheap to clone.
#[derive(Clone)]
pub struct History {
    /// The open store.
    pub store: Arc<Store>,
    /// The writer's progress.
    pub state: Arc<State>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History").field("path", &self.store.path()).field("ready", &self.ready()).finish()
    }
}

impl History {
    /// Whether the store has everything Kafka had when the gateway started.
    pub fn ready(&self) -> bool {
        self.state.ready.load(Ordering::Acquire)
    }

    /// `/metrics` lines of the store.
    pub fn render_metrics(&self) -> String {
        let s = &self.state;
        let usage = self.store.usage().unwrap_or_default();
        let mut out = String::new();
        let rows: [(&str, &str, &str, u64); 7] = [
            (
                "klinecast_history_bars_written_total",
                "closed bars written to the history store",
                "counter",
                s.bars_written.load(Ordering::Relaxed),
            ),
            (
                "klinecast_history_bars_dropped_total",
                "bars dropped from the store (retention and disk cap)",
                "counter",
                s.bars_dropped.load(Ordering::Relaxed),
            ),
            (
                "klinecast_history_capped_buckets_total",
                "buckets dropped early because of --history-max-bytes",
                "counter",
                s.capped_buckets.load(Ordering::Relaxed),
            ),
            (
                "klinecast_history_write_errors_total",
                "failed store commits or prunes (retried)",
                "counter",
                s.write_errors.load(Ordering::Relaxed),
            ),
            ("klinecast_history_ready", "1 once the store has caught up with Kafka", "gauge", u64::from(self.ready())),
            ("klinecast_history_allocated_bytes", "pages in use in the history store", "gauge", usage.allocated_bytes),
            ("klinecast_history_file_bytes", "size of the history store's file", "gauge", usage.file_bytes),
        ];
        for (name, help, kind, value) in rows {
            sample(&mut out, name, help, kind, value);
        }
        out
    }
}

/// The store and its running writer.
pub struct HistoryWriter {
    /// What readers use.
    pub history: History,
    thread: Option<JoinHandle<()>>,
}

impl HistoryWriter {
    /// Opens the store and starts its writer. Blocking (Kafka round trips):
    /// call from the unpinned main thread.
    pub fn start(config: HistoryConfig, kafka: &KafkaConfig, shutdown: Shutdown) -> Result<Self, HistoryError> {
        let store = Arc::new(Store::open(&config.dir, &kafka.topic, config.cache_bytes)?);
        let (consumer, plan) = writer::assign(&config, kafka, &store)?;
        let state = Arc::new(State::default());
        let thread = writer::spawn(config, store.clone(), state.clone(), consumer, plan, shutdown)
            .map_err(HistoryError::Thread)?;
        Ok(Self { history: History { store, state }, thread: Some(thread) })
    }

    /// Waits for the writer to commit what it has and stop (after the
    /// shutdown flag is set).
    pub fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
