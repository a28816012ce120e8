//! The history store's settings, what its writer did, and why it did not
//! start.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};

use thiserror::Error;

use super::retention::{self, Retention};
use super::store::StoreError;
use crate::kafka::topic::partition_for;

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
    /// Records on the topic of a bar format this build does not read.
    pub other_format: AtomicU64,
}
