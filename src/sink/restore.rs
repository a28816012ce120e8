//! Where a restarted ingest picks up: the last update of each (mint, window)
//! series, read back from the topic, so open bars continue (open, high, low,
//! trade count and `seq` are not reset) instead of starting over.
//!
//! Bounded: each partition is read back at most its widest window plus a
//! minute, and at most [`MAX_RESTORE_MESSAGES`] messages; a series whose last
//! update is older than that starts afresh. Blocking: call before the ingest
//! executor starts, from the unpinned main thread.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::topic::{METADATA_TIMEOUT, widest_window};
use super::{KafkaConfig, Reader, SinkError};
use crate::aggregate::Windows;
use crate::codec::bar::{self, Bar};
use crate::codec::trade::Pubkey;

/// Most messages read back per partition.
pub const MAX_RESTORE_MESSAGES: i64 = 1_000_000;
/// Longest the read-back may take.
pub const RESTORE_TIMEOUT: Duration = Duration::from_secs(30);

/// The latest update of every series found in the topic's recent past.
pub fn last_states(config: &KafkaConfig, windows: &Windows, partitions: i32) -> Result<Vec<Bar>, SinkError> {
    let group = format!("klinecast-restore-{}", std::process::id());
    let consumer: Reader = config.create_reader(&group).map_err(SinkError::Config)?;
    let unreachable = |error: rdkafka::error::KafkaError| SinkError::unreachable(config, error.to_string());
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let mut times = TopicPartitionList::new();
    let mut ends: HashMap<i32, i64> = HashMap::new();
    for partition in 0..partitions {
        let (low, high) = consumer.fetch_watermarks(&config.topic, partition, METADATA_TIMEOUT).map_err(unreachable)?;
        if high <= low {
            continue;
        }
        let widest = i64::from(widest_window(windows.seconds(), partitions, partition));
        let since_ms = now_ms - (widest + 60) * 1000;
        times.add_partition_offset(&config.topic, partition, Offset::Offset(since_ms)).map_err(unreachable)?;
        ends.insert(partition, high);
    }
    if ends.is_empty() {
        return Ok(Vec::new());
    }
    let found = consumer.offsets_for_times(times, METADATA_TIMEOUT).map_err(unreachable)?;
    let mut start = TopicPartitionList::new();
    for element in found.elements() {
        let high = ends.get(&element.partition()).copied().unwrap_or_default();
        let floor = (high - MAX_RESTORE_MESSAGES).max(0);
        let offset = match element.offset() {
            Offset::Offset(o) => o.max(floor),
            _ => high,
        };
        if offset < high {
            start
                .add_partition_offset(&config.topic, element.partition(), Offset::Offset(offset))
                .map_err(unreachable)?;
        } else {
            ends.remove(&element.partition());
        }
    }
    consumer.assign(&start).map_err(unreachable)?;
    Ok(read_until(&consumer, &mut ends))
}

/// Reads until every partition reached its end offset (or the timeout),
/// keeping the highest-`seq` update per series.
fn read_until(consumer: &Reader, ends: &mut HashMap<i32, i64>) -> Vec<Bar> {
    let mut latest: HashMap<(Pubkey, u32), Bar> = HashMap::new();
    let deadline = Instant::now() + RESTORE_TIMEOUT;
    while !ends.is_empty() && Instant::now() < deadline {
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else { continue };
        if let Ok(archived) = bar::access(message.payload().unwrap_or_default()) {
            let bar = archived.to_bar();
            let slot = latest.entry((bar.mint, bar.window_s)).or_insert(bar);
            if bar.seq > slot.seq {
                *slot = bar;
            }
        }
        if ends.get(&message.partition()).is_some_and(|&end| message.offset() + 1 >= end) {
            ends.remove(&message.partition());
        }
    }
    if !ends.is_empty() {
        tracing::warn!(partitions = ends.len(), "restore read-back timed out; some series start afresh");
    }
    latest.into_values().collect()
}
