//! The topic layout: one partition per window, created when absent, and the
//! pure functions that place a bar in it.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{Client, ClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;

use super::log::{Diagnosis, KafkaLog};
use super::{ConnectError, KafkaConfig};

/// How long start-up waits for the broker before giving up.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// The message key of a window: `key_1`, `key_60`, `key_300`, `key_3600`.
pub fn key_for(window_s: u32) -> String {
    format!("key_{window_s}")
}

/// The partition of the window at `index` in the window list.
pub fn partition_for(index: usize, partitions: i32) -> i32 {
    (index % partitions.max(1) as usize) as i32
}

/// The widest window whose bars go to `partition` (1 if none do).
pub fn widest_window(windows: &[u32], partitions: i32, partition: i32) -> u32 {
    let on_partition = windows.iter().enumerate().filter(|(i, _)| partition_for(*i, partitions) == partition);
    on_partition.map(|(_, &w)| w).max().unwrap_or(1)
}

/// Times a metadata request answered "partition leader being elected" is
/// asked again (100 ms apart).
const LEADER_ELECTION_ATTEMPTS: u32 = 50;

/// Whether a metadata error only means partition leaders are being elected.
fn electing(code: RDKafkaErrorCode) -> bool {
    matches!(code, RDKafkaErrorCode::NotLeaderForPartition | RDKafkaErrorCode::LeaderNotAvailable)
}

/// Number of partitions of `topic`, or `None` if it does not exist.
pub fn partition_count<C: ClientContext>(
    client: &Client<C>,
    config: &KafkaConfig,
) -> Result<Option<i32>, ConnectError> {
    // A topic another process has just created answers "not leader" for a
    // moment while the broker elects its partitions' leaders (two ingest
    // processes started together on a new topic): asked again, briefly.
    let mut attempts = 0;
    let metadata = loop {
        match client.fetch_metadata(Some(&config.topic), Timeout::After(METADATA_TIMEOUT)) {
            Err(KafkaError::MetadataFetch(code)) if electing(code) && attempts < LEADER_ELECTION_ATTEMPTS => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            other => break other.map_err(|error| ConnectError::unreachable(config, error.to_string()))?,
        }
    };
    let Some(topic) = metadata.topics().iter().find(|t| t.name() == config.topic) else {
        return Ok(None);
    };
    match topic.error() {
        None => Ok(Some(topic.partitions().len() as i32)),
        Some(code) if RDKafkaErrorCode::from(code) == RDKafkaErrorCode::UnknownTopicOrPartition => Ok(None),
        Some(code) => {
            Err(ConnectError::Topic { topic: config.topic.clone(), reason: RDKafkaErrorCode::from(code).to_string() })
        }
    }
}

/// Most queued events [`describe`] reads for the reason of a failure.
const MAX_DIAGNOSIS_EVENTS: usize = 1000;

/// [`partition_count`] asked by a short-lived client of its own: when the
/// cluster does not answer, the error names librdkafka's first connection
/// error (e.g. "SSL handshake failed: ... certificate verify failed") rather
/// than only the request's time-out. Blocking, at most [`METADATA_TIMEOUT`].
pub fn describe(config: &KafkaConfig) -> Result<Option<i32>, ConnectError> {
    // A consumer without a group id: no group traffic, and its poll serves
    // the main queue, where librdkafka puts its error reports.
    let client: BaseConsumer<Diagnosis> =
        config.admin().create_with_context(Diagnosis::default()).map_err(ConnectError::Config)?;
    let described = partition_count(client.client(), config);
    let Err(ConnectError::Unreachable { .. }) = described else { return described };
    for _ in 0..MAX_DIAGNOSIS_EVENTS {
        if client.context().first_error().is_some() {
            break;
        }
        let _ = client.poll(Duration::ZERO);
    }
    match client.context().first_error() {
        Some(reason) => Err(ConnectError::unreachable(config, reason)),
        None => described,
    }
}

/// Creates the topic with `partitions` partitions unless it exists, and
/// returns its partition count. Call from a thread that is not pinned: the
/// admin client's threads inherit the caller's CPU affinity.
pub fn ensure_topic(config: &KafkaConfig, partitions: i32) -> Result<i32, ConnectError> {
    if let Some(count) = describe(config)? {
        return Ok(count);
    }
    let admin: AdminClient<KafkaLog> = config.admin().create_with_context(KafkaLog).map_err(ConnectError::Config)?;
    // Replication -1: the cluster's default.replication.factor.
    let new_topic = NewTopic::new(&config.topic, partitions, TopicReplication::Fixed(-1));
    let options = AdminOptions::new().operation_timeout(Some(Timeout::After(METADATA_TIMEOUT)));
    let results = futures_lite::future::block_on(admin.create_topics([&new_topic], &options))
        .map_err(|e| ConnectError::Topic { topic: config.topic.clone(), reason: e.to_string() })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => {
                return Err(ConnectError::Topic { topic: config.topic.clone(), reason: code.to_string() });
            }
        }
    }
    tracing::info!(topic = %config.topic, partitions, "created topic");
    // Right after creation the broker may still be electing partition
    // leaders: metadata can miss the topic or report a leader error for a
    // moment. Those are retried; only the last answer counts.
    let mut last = Err(ConnectError::Topic { topic: config.topic.clone(), reason: "not visible in metadata".into() });
    for _ in 0..50 {
        match partition_count(admin.inner(), config) {
            Ok(Some(count)) => return Ok(count),
            Ok(None) => {}
            Err(error) => last = Err(error),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    last
}

/// Whether the broker answers: the topic's partition count (0 if absent).
/// Blocking: call from a worker thread.
pub fn probe(config: &KafkaConfig) -> Result<i32, ConnectError> {
    describe(config).map(Option::unwrap_or_default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_map_to_partitions_and_keys() {
        assert_eq!(key_for(1), "key_1");
        assert_eq!(key_for(3600), "key_3600");
        assert_eq!((0..4).map(|i| partition_for(i, 4)).collect::<Vec<_>>(), [0, 1, 2, 3]);
        assert_eq!((0..4).map(|i| partition_for(i, 3)).collect::<Vec<_>>(), [0, 1, 2, 0]);
        assert_eq!(partition_for(3, 1), 0);
        assert_eq!(widest_window(&[1, 60, 300, 3600], 2, 0), 300);
        assert_eq!(widest_window(&[1, 60, 300, 3600], 4, 3), 3600);
        assert_eq!(widest_window(&[1], 4, 2), 1);
    }
}
