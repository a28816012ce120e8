//! Every librdkafka setting klinecast uses, in one place, each with its
//! reason. User settings (`--kafka-config key=value`, for TLS, SASL and
//! tuning) are applied last and win.

use rdkafka::ClientConfig;

/// Connection settings shared by every Kafka client of the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// The topic bars go to.
    pub topic: String,
    /// Extra librdkafka settings, applied after ours.
    pub overrides: Vec<(String, String)>,
}

impl KafkaConfig {
    fn base(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        // Name the client in broker logs and metrics.
        config.set("client.id", "klinecast");
        // Fail metadata requests quickly enough for a clear start-up error.
        config.set("socket.connection.setup.timeout.ms", "5000");
        // A metadata lookup must never create a topic with the broker's
        // default layout: klinecast creates it with one partition per window.
        config.set("allow.auto.create.topics", "false");
        // After a broker outage, reconnect within a second rather than the
        // default 10 s backoff: bars should resume promptly.
        config.set("reconnect.backoff.max.ms", "1000");
        config
    }

    fn finish(&self, mut config: ClientConfig) -> ClientConfig {
        for (key, value) in &self.overrides {
            config.set(key, value);
        }
        config
    }

    /// The producer of the ingest role.
    pub fn producer(&self) -> ClientConfig {
        let mut c = self.base();
        // No duplicates on retry and per-partition order kept: a closing
        // update is written exactly once.
        c.set("enable.idempotence", "true");
        // Required by idempotence; an update counts as delivered only when
        // every in-sync replica has it.
        c.set("acks", "all");
        // 0 = never time out a queued message: during a broker outage bars
        // wait in the bounded queue below instead of being dropped.
        c.set("message.timeout.ms", "0");
        // The bound of that queue. 1 M bars (~250 MB at most) is about four
        // minutes of the default mock rate over four windows; when it is
        // full, ingest pauses (counted) rather than dropping anything.
        c.set("queue.buffering.max.messages", "1000000");
        c.set("queue.buffering.max.kbytes", "262144");
        // Send within 1 ms: bars are latency-sensitive, and at high rates
        // batches still fill up within that time.
        c.set("linger.ms", "1");
        // Bars are ~120 bytes of mostly incompressible floats.
        c.set("compression.type", "none");
        // Many small messages per request at high rates.
        c.set("batch.num.messages", "10000");
        // Delivery reports carry no payload copy; we only count them.
        c.set("delivery.report.only.error", "false");
        self.finish(c)
    }

    /// A consumer that reads partitions by assignment, without group
    /// membership (`tail`, gateway clients). `group_id` must be unique per
    /// client: librdkafka wants one for `assign()`, and nothing is committed.
    pub fn reader(&self, group_id: &str) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", group_id);
        // Never commit: position comes from explicit offsets.
        c.set("enable.auto.commit", "false");
        c.set("enable.auto.offset.store", "false");
        // Where to start when an assigned offset is out of range.
        c.set("auto.offset.reset", "latest");
        // Cap the prefetch queue: the defaults (64 MB per consumer) would
        // make thousands of consumers cost gigabytes. 1 MiB holds thousands
        // of bars, and is the only bound: the message-count bound is set
        // out of reach, since 1,000 bars (its default is 100,000) is under
        // a second of one busy partition.
        c.set("queued.max.messages.kbytes", "1024");
        c.set("queued.min.messages", "1000000");
        c.set("fetch.max.bytes", "1048576");
        c.set("max.partition.fetch.bytes", "1048576");
        // When that queue is full, fetch again 5 ms later, not after the
        // default 1 s: a reader that fell behind for a moment would
        // otherwise leave a second-long hole in the stream it then catches
        // up on, which is what the p99 of the latency benchmark showed.
        c.set("fetch.queue.backoff.ms", "5");
        // The broker answers a fetch as soon as one byte is there
        // (`fetch.min.bytes` 1), so this only bounds how long an empty
        // fetch waits, not latency: the default keeps idle consumers
        // (thousands in per-client mode) from polling the broker 100 times a
        // second each.
        c.set("fetch.wait.max.ms", "500");
        // No end-of-partition events: nothing here needs them, and
        // librdkafka would report each one as an error event.
        c.set("enable.partition.eof", "false");
        self.finish(c)
    }

    /// A [`Reader`](super::Reader) with [`reader`](Self::reader)'s settings.
    pub fn create_reader(&self, group_id: &str) -> rdkafka::error::KafkaResult<super::Reader> {
        self.reader(group_id).create_with_context(super::log::KafkaLog)
    }

    /// The admin client that creates the topic.
    pub fn admin(&self) -> ClientConfig {
        self.finish(self.base())
    }
}

/// Parses a `key=value` librdkafka setting.
pub fn parse_override(item: &str) -> Result<(String, String), String> {
    match item.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_owned(), value.trim().to_owned())),
        _ => Err(format!("expected key=value (a librdkafka setting), got {item:?}")),
    }
}
