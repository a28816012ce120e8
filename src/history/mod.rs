//! Closed-bar history as deep as each window's retention: closing updates
//! from Kafka into an embedded store (redb) on the gateway's disk, read by
//! the gateway's `/api/klines`, `/api/v3/klines` and `hist`.
//!
//! - [`config`]: the store's settings, what the writer did, errors.
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

pub mod config;
pub mod fill;
pub mod retention;
pub mod store;
pub mod writer;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

pub use config::{HistoryConfig, HistoryError, State};
pub use retention::Retention;
pub use store::{Edge, Store, StoreError};

use crate::kafka::KafkaConfig;
use crate::metrics::sample;
use crate::runtime::Shutdown;

/// Default `--history-max-bytes`: the disk cap of the store.
pub const DEFAULT_MAX_BYTES: u64 = 16 << 30;
/// Default `--history-cache-bytes`: redb's page cache, the store's memory.
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

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
        let dropped_for_format = self.store.format_change().map_or(0, |c| c.dropped_bars);
        let rows: [(&str, &str, &str, u64); 11] = [
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
            (
                "klinecast_history_format_dropped_bars",
                "bars of another bar format the store held at open, dropped (what Kafka still has is read again)",
                "gauge",
                dropped_for_format,
            ),
            (
                "klinecast_history_other_format_records_total",
                "records on the topic of a bar format this build does not read (not in the store)",
                "counter",
                s.other_format.load(Ordering::Relaxed),
            ),
            (
                "klinecast_history_malformed_records_total",
                "records on the topic that are not bars (not in the store)",
                "counter",
                s.malformed.load(Ordering::Relaxed),
            ),
            (
                "klinecast_history_unreadable_bars_total",
                "stored values that did not read as bars (left out of answers)",
                "counter",
                self.store.unreadable(),
            ),
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
        if let Some(change) = store.format_change() {
            tracing::warn!(
                path = %store.path().display(),
                held = change.from,
                reads = crate::codec::bar::BAR_FORMAT,
                dropped_bars = change.dropped_bars,
                "history store held bars of another format: dropped, reading the topic again from as far back as \
                 the retention and Kafka allow (records of a format this build does not read are counted in \
                 klinecast_history_other_format_records_total)"
            );
        }
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
