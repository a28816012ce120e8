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

use crate::aggregate::Windows;
use crate::codec::bar::{self, Bar};
use crate::codec::trade::Pubkey;
use crate::kafka::topic::widest_window;
use crate::kafka::{ConnectError, KafkaConfig, Reader, reader};

/// Most messages read back per partition.
pub const MAX_RESTORE_MESSAGES: i64 = 1_000_000;
/// Longest the read-back may take.
pub const RESTORE_TIMEOUT: Duration = Duration::from_secs(30);

/// The latest update of every series found in the topic's recent past.
pub fn last_states(config: &KafkaConfig, windows: &Windows, partitions: i32) -> Result<Vec<Bar>, ConnectError> {
    let consumer: Reader = config.create_reader(&reader::unique_group("restore")).map_err(ConnectError::Config)?;
    let unreachable = |error: rdkafka::error::KafkaError| ConnectError::unreachable(config, error.to_string());
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let since: Vec<(i32, Option<i64>)> = (0..partitions)
        .map(|partition| {
            let widest = i64::from(widest_window(windows.seconds(), partitions, partition));
            (partition, Some(now_ms - (widest + 60) * 1000))
        })
        .collect();
    let mut start = TopicPartitionList::new();
    let mut ends: HashMap<i32, i64> = HashMap::new();
    for span in reader::spans(&consumer, &config.topic, &since).map_err(unreachable)? {
        let offset = span.start.max(span.end - MAX_RESTORE_MESSAGES);
        if offset < span.end {
            start.add_partition_offset(&config.topic, span.partition, Offset::Offset(offset)).map_err(unreachable)?;
            ends.insert(span.partition, span.end);
        }
    }
    if ends.is_empty() {
        return Ok(Vec::new());
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
