//! The producer of bars. Synchronous and non-blocking: `try_send` either
//! queues a bar in librdkafka's bounded queue or says the queue is full; the
//! ingest loop decides how to wait. Delivery reports are counted on
//! librdkafka's callback, never dropped silently.
//!
//! Every record gets a sequence number, and the sink knows the longest
//! prefix of them Kafka has acknowledged ([`KafkaSink::acked`]): that is what
//! the resume point of a restarted live source is built on. Acknowledgements
//! come in order within a partition (the producer is idempotent), so one
//! counter per partition, raised by the delivery callback, and a queue of
//! sequence numbers per partition kept by the ingest thread, are enough.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use thiserror::Error;

use crate::aggregate::Windows;
use crate::codec::bar::{BAR_LEN, Bar};
use crate::kafka::topic::{self, key_for, partition_for};
use crate::kafka::{ConnectError, KafkaConfig};

/// Most delivery-report events served by one [`KafkaSink::poll`], so a
/// flood of them cannot stall the ingest loop.
const MAX_EVENTS_PER_POLL: usize = 1024;

/// Counters of the producer, shared with the metrics endpoint.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Bars handed to librdkafka.
    pub queued: AtomicU64,
    /// Bars the broker acknowledged.
    pub delivered: AtomicU64,
    /// Bars librdkafka reported as failed (after its own retries).
    pub failed: AtomicU64,
    /// Times a send found the queue full and had to wait.
    pub queue_full: AtomicU64,
    /// Per partition, the highest record sequence acknowledged (or failed
    /// for good: either way nothing more will happen to it).
    pub acked: Vec<AtomicU64>,
}

/// Why a bar was not queued.
#[derive(Debug, Error)]
pub enum SendError {
    /// librdkafka's queue is at its bound; retry after polling.
    #[error("producer queue full")]
    QueueFull,
    /// The bar's window is not in the configured list.
    #[error("bar window {0}s is not configured")]
    UnknownWindow(u32),
    /// Any other refusal (message too large, topic gone, ...).
    #[error("produce failed: {0}")]
    Kafka(KafkaError),
}

/// Counts delivery reports; runs on whichever thread polls the producer.
pub struct DeliveryCounter(Arc<SinkStats>);

impl ClientContext for DeliveryCounter {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        crate::kafka::log::log_message(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        crate::kafka::log::warn_limited(&format!("{error}: {reason}"));
    }
}

impl ProducerContext for DeliveryCounter {
    /// The record's sequence number.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: Self::DeliveryOpaque) {
        let partition = match result {
            Ok(message) => {
                self.0.delivered.fetch_add(1, Ordering::Relaxed);
                message.partition()
            }
            Err((error, message)) => {
                tracing::error!(%error, "bar not delivered");
                self.0.failed.fetch_add(1, Ordering::Relaxed);
                message.partition()
            }
        };
        if let Some(acked) = usize::try_from(partition).ok().and_then(|p| self.0.acked.get(p)) {
            acked.fetch_max(seq as u64, Ordering::Relaxed);
        }
    }
}

/// Where each window's bars go.
#[derive(Debug, Clone)]
struct Route {
    window_s: u32,
    partition: i32,
    key: String,
}

/// Produces bars to the topic, one partition per window.
pub struct KafkaSink {
    producer: BaseProducer<DeliveryCounter>,
    /// Partitions of the topic.
    partitions: i32,
    topic: String,
    routes: Vec<Route>,
    /// Encoding buffer, reused: librdkafka copies the payload.
    buf: Vec<u8>,
    stats: Arc<SinkStats>,
    /// Sequence number of the last record queued (records count from 1).
    last_seq: u64,
    /// Per partition, the sequence numbers queued and not yet known to be
    /// acknowledged, oldest first. Bounded by librdkafka's queue bound
    /// (`queue.buffering.max.messages`): a record leaves it when acknowledged.
    outstanding: Vec<VecDeque<u64>>,
}

impl KafkaSink {
    /// Connects, checks the broker answers, creates the topic if needed.
    /// Call from an unpinned thread (librdkafka threads inherit affinity).
    pub fn connect(config: &KafkaConfig, windows: &Windows) -> Result<Self, ConnectError> {
        let partitions = topic::ensure_topic(config, windows.len() as i32)?;
        let acked = (0..partitions.max(1)).map(|_| AtomicU64::new(0)).collect();
        let stats = Arc::new(SinkStats { acked, ..SinkStats::default() });
        let producer: BaseProducer<DeliveryCounter> =
            config.producer().create_with_context(DeliveryCounter(stats.clone())).map_err(ConnectError::Config)?;
        let routes = windows
            .seconds()
            .iter()
            .enumerate()
            .map(|(i, &window_s)| Route { window_s, partition: partition_for(i, partitions), key: key_for(window_s) })
            .collect();
        Ok(Self {
            producer,
            partitions,
            topic: config.topic.clone(),
            routes,
            buf: Vec::with_capacity(BAR_LEN),
            stats,
            last_seq: 0,
            outstanding: (0..partitions.max(1)).map(|_| VecDeque::new()).collect(),
        })
    }

    /// Partitions of the topic.
    pub fn partitions(&self) -> i32 {
        self.partitions
    }

    /// The producer's counters.
    pub fn stats(&self) -> Arc<SinkStats> {
        self.stats.clone()
    }

    /// Stamps `produced_ns` and `resume_slot` and queues the bar without
    /// blocking.
    pub fn try_send(&mut self, bar: &Bar, resume_slot: u64) -> Result<(), SendError> {
        let route =
            self.routes.iter().find(|r| r.window_s == bar.window_s).ok_or(SendError::UnknownWindow(bar.window_s))?;
        Bar { produced_ns: unix_now_ns(), resume_slot, ..*bar }.encode_into(&mut self.buf);
        let seq = self.last_seq + 1;
        let record = BaseRecord::with_opaque_to(&self.topic, seq as usize)
            .partition(route.partition)
            .key(&route.key)
            .payload(&self.buf);
        match self.producer.send(record) {
            Ok(()) => {
                self.last_seq = seq;
                if let Some(queue) = self.outstanding.get_mut(route.partition as usize) {
                    queue.push_back(seq);
                }
                self.stats.queued.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                self.stats.queue_full.fetch_add(1, Ordering::Relaxed);
                Err(SendError::QueueFull)
            }
            Err((error, _)) => Err(SendError::Kafka(error)),
        }
    }

    /// Serves every pending delivery report without waiting. One
    /// `poll(0)` serves a single event (one batch of reports), and batches
    /// can arrive faster than the ingest loop turns: unserved reports would
    /// pile up, each holding its messages.
    pub fn poll(&self) {
        for _ in 0..MAX_EVENTS_PER_POLL {
            let before = self.producer.in_flight_count();
            self.producer.poll(Duration::ZERO);
            if self.producer.in_flight_count() == before {
                break;
            }
        }
    }

    /// Sequence number of the last record queued.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The longest prefix of record sequence numbers Kafka has acknowledged
    /// (or failed for good).
    pub fn acked(&mut self) -> u64 {
        let mut prefix = self.last_seq;
        for (queue, acked) in self.outstanding.iter_mut().zip(&self.stats.acked) {
            let acked = acked.load(Ordering::Relaxed);
            while queue.front().is_some_and(|&seq| seq <= acked) {
                queue.pop_front();
            }
            if let Some(&first) = queue.front() {
                prefix = prefix.min(first - 1);
            }
        }
        prefix
    }

    /// Bars queued but not yet acknowledged.
    pub fn in_flight(&self) -> i32 {
        self.producer.in_flight_count()
    }

    /// Waits up to `timeout` for every queued bar to be acknowledged; returns
    /// how many were still unacknowledged.
    pub fn flush(&self, timeout: Duration) -> i32 {
        if let Err(error) = self.producer.flush(timeout) {
            tracing::error!(%error, in_flight = self.in_flight(), "producer flush incomplete");
        }
        self.in_flight()
    }
}

/// Wall clock, unix nanoseconds.
pub fn unix_now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}
