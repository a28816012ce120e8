//! The reader: a consumer that reads partitions by explicit assignment (no
//! group membership, nothing committed), and the one place that turns "from
//! this time" into offsets. The gateway's shard feed and per-client
//! consumers, `tail` and the ingest restart read-back all start here.

use std::sync::atomic::{AtomicU64, Ordering};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaResult;
use rdkafka::{Offset, TopicPartitionList};

use super::log::KafkaLog;
use super::topic::METADATA_TIMEOUT;

/// A consumer reading partitions by assignment.
pub type Reader = BaseConsumer<KafkaLog>;

/// Where reading one partition starts, and where its end was when asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The partition.
    pub partition: i32,
    /// The first offset to read: the first message at or after the asked
    /// time (never below the partition's first kept offset), or `end` when
    /// there is none or no time was asked.
    pub start: i64,
    /// The end offset (high watermark): the offset the next message gets.
    pub end: i64,
}

impl Span {
    /// Whether there is anything between `start` and `end`.
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }
}

/// Blocking (broker round trips, at most [`METADATA_TIMEOUT`] each): for
/// each `(partition, since_ms)`, the [`Span`] from the first message at or
/// after `since_ms` (unix milliseconds; `None`: from the end) to the end.
/// Call from a thread that may block, never from an executor.
pub fn spans(consumer: &Reader, topic: &str, wanted: &[(i32, Option<i64>)]) -> KafkaResult<Vec<Span>> {
    let mut out = Vec::with_capacity(wanted.len());
    let mut times = TopicPartitionList::new();
    for &(partition, since_ms) in wanted {
        let (low, end) = consumer.fetch_watermarks(topic, partition, METADATA_TIMEOUT)?;
        // `start` holds the low watermark until the time look-up below.
        out.push(Span { partition, start: low, end });
        if let Some(since_ms) = since_ms {
            times.add_partition_offset(topic, partition, Offset::Offset(since_ms))?;
        }
    }
    let found = if times.count() > 0 { Some(consumer.offsets_for_times(times, METADATA_TIMEOUT)?) } else { None };
    for (span, &(_, since_ms)) in out.iter_mut().zip(wanted) {
        let at = since_ms.and_then(|_| found.as_ref()?.find_partition(topic, span.partition)?.offset().to_raw());
        span.start = match at {
            // A negative raw offset is "none at or after that time" (End).
            Some(offset) if offset >= 0 => offset.clamp(span.start, span.end),
            _ => span.end,
        };
    }
    Ok(out)
}

/// A group id no other consumer of this process or of another uses:
/// librdkafka wants one for `assign()`, and two consumers sharing one would
/// be handed each other's partitions if they ever joined the group.
pub fn unique_group(role: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("klinecast-{role}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}
