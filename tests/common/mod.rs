//! Helpers shared by the end-to-end tests: the real broker's address, fresh
//! topic names, and reading a topic back with a plain consumer.

#![allow(dead_code, missing_docs)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use klinecast::codec::bar::{self, Bar};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

/// The broker the tests use: `KLINECAST_TEST_BROKERS`, else the one
/// `scripts/kafka-up.sh` starts.
pub fn brokers() -> String {
    std::env::var("KLINECAST_TEST_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// A topic name no other test run uses.
pub fn fresh_topic(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// One message read back.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub key: String,
    pub bar: Result<Bar, String>,
}

/// Reads every message of `topic` from the beginning until each partition
/// reports its end (after at least `min` messages), or `timeout`.
pub fn read_topic(topic: &str, min: usize, timeout: Duration) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", fresh_topic("reader"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    let partitions = metadata.topics()[0].partitions().len() as i32;
    assert!(partitions > 0, "topic {topic} has no partitions");
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition_offset(topic, p, Offset::Beginning).expect("offset");
    }
    consumer.assign(&list).expect("assign");
    let mut records = Vec::new();
    let mut at_end = vec![false; partitions as usize];
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline && !(records.len() >= min && at_end.iter().all(|&e| e)) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                at_end[m.partition() as usize] = false;
                records.push(Record {
                    partition: m.partition(),
                    key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                    bar: bar::access(m.payload().unwrap_or_default()).map(|b| b.to_bar()).map_err(|e| e.to_string()),
                });
            }
            Some(Err(KafkaError::PartitionEOF(p))) => at_end[p as usize] = true,
            Some(Err(e)) => panic!("consumer error: {e}"),
            None => {}
        }
    }
    records
}
