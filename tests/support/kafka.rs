//! The tests' Kafka: which broker, fresh topic names, and topics created,
//! read back and deleted with plain clients (not klinecast's own, so a test
//! does not check klinecast with itself).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use klinecast::codec::bar::{self, Bar};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

/// The broker the tests use: `KLINECAST_TEST_BROKERS`, else the one
/// `scripts/kafka-up.sh` starts.
pub fn brokers() -> String {
    std::env::var("KLINECAST_TEST_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// A topic name no other run uses: `<prefix>-<pid>-<unix ns>` (the time is
/// what `scripts/lib/setup.sh` prunes old topics by).
pub fn fresh_topic(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn admin(brokers: &str) -> Result<AdminClient<DefaultClientContext>, KafkaError> {
    ClientConfig::new().set("bootstrap.servers", brokers).create()
}

/// Creates `topic` with `partitions` partitions (one per window, as
/// klinecast lays it out) and waits until every partition has a leader.
/// Tests and benchmarks create their topic up front so that no klinecast
/// process races the broker's partition set-up (a metadata error right
/// after creation is fatal to a process that creates the topic itself).
pub fn create_topic(brokers: &str, topic: &str, partitions: i32) -> Result<(), String> {
    let admin = admin(brokers).map_err(|e| format!("admin client: {e}"))?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = futures_lite::future::block_on(admin.create_topics([&new_topic], &options))
        .map_err(|e| format!("creating {topic}: {e}"))?;
    for result in results {
        match result {
            // The name is fresh: if it exists, a retried request of ours
            // made it (the broker took the first one and its answer was lost).
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(format!("creating {name}: {code}")),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = admin.inner().fetch_metadata(Some(topic), Duration::from_secs(5)).is_ok_and(|m| {
            m.topics().iter().any(|t| {
                t.name() == topic
                    && t.error().is_none()
                    && t.partitions().len() == partitions as usize
                    && t.partitions().iter().all(|p| p.error().is_none() && p.leader() >= 0)
            })
        });
        if ready {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("topic {topic} has no leaders after 30 s"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Deletes topics; failures are reported, not fatal.
pub fn delete_topics(brokers: &str, topics: &[String]) {
    if topics.is_empty() {
        return;
    }
    let deleted = admin(brokers).map_err(|e| e.to_string()).and_then(|admin| {
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        let results =
            futures_lite::future::block_on(admin.delete_topics(&names, &options)).map_err(|e| e.to_string())?;
        results.into_iter().try_for_each(|r| r.map(drop).map_err(|(name, code)| format!("{name}: {code}")))
    });
    if let Err(error) = deleted {
        eprintln!("could not delete topics {topics:?}: {error}");
    }
}

/// A consumer of `topic` on `brokers` assigned every partition from the
/// beginning (end-of-partition events on request), and the partition count.
pub fn reader_from_beginning(brokers: &str, topic: &str, partition_eof: bool) -> (BaseConsumer, i32) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", fresh_topic("it-reader"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", partition_eof.to_string())
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
    (consumer, partitions)
}

/// One message read back, decoded.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub key: String,
    pub bar: Result<Bar, String>,
}

/// Reads every message of `topic` on the tests' broker from the beginning
/// until each partition reports its end (after at least `min` messages),
/// or `timeout`.
pub fn read_topic(topic: &str, min: usize, timeout: Duration) -> Vec<Record> {
    let (consumer, partitions) = reader_from_beginning(&brokers(), topic, true);
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

/// One message of a topic, as stored.
#[derive(Debug, Clone)]
pub struct Msg {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub payload: Vec<u8>,
}

/// Reads every message of `topic` on `brokers`, from the beginning up to
/// the end offsets found at the start, in offset order per partition.
pub fn read_all(brokers: &str, topic: &str, timeout: Duration) -> Vec<Msg> {
    let (consumer, partitions) = reader_from_beginning(brokers, topic, false);
    let end: Vec<i64> = (0..partitions)
        .map(|p| consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).expect("watermarks").1)
        .collect();
    let mut next: Vec<i64> = vec![0; partitions as usize];
    let mut messages = Vec::with_capacity(end.iter().sum::<i64>() as usize);
    let deadline = Instant::now() + timeout;
    while next.iter().zip(&end).any(|(n, e)| n < e) {
        assert!(Instant::now() < deadline, "reading {topic} timed out at {next:?} of {end:?}");
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) if m.offset() < end[m.partition() as usize] => {
                next[m.partition() as usize] = m.offset() + 1;
                messages.push(Msg {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                    payload: m.payload().unwrap_or_default().to_vec(),
                });
            }
            Some(Ok(_)) | None => {}
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => panic!("consumer error: {e}"),
        }
    }
    messages
}

/// The end offset of one partition of `topic` on `brokers`.
pub fn end_offset(brokers: &str, topic: &str, partition: i32) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", fresh_topic("it-watermarks"))
        .create()
        .expect("consumer");
    consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)).expect("watermarks").1
}
