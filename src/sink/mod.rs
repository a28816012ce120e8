//! Bars → Apache Kafka. Owns the producer, the topic layout (partition by
//! window, key `key_<seconds>`) and every librdkafka setting
//! ([`settings`]). It never decides what a bar is, only where it goes.

pub mod kafka;
pub mod log;
pub mod restore;
pub mod settings;
pub mod topic;

use thiserror::Error;

pub use kafka::{KafkaSink, SendError, SinkStats};
pub use log::Reader;
pub use settings::KafkaConfig;

/// Why the sink could not start or stop cleanly.
#[derive(Debug, Error)]
pub enum SinkError {
    /// No broker answered at the configured address.
    #[error(
        "Kafka is not reachable at {brokers} ({source}).\n  Start a local broker with `scripts/kafka-up.sh` \
         (or `docker run -d -p 9092:9092 apache/kafka`), or point --brokers / KLINECAST_BROKERS at your cluster."
    )]
    Unreachable {
        /// The bootstrap servers tried.
        brokers: String,
        /// librdkafka's error.
        source: rdkafka::error::KafkaError,
    },
    /// The topic could not be created or described.
    #[error("topic {topic:?}: {reason}")]
    Topic {
        /// The topic.
        topic: String,
        /// What went wrong.
        reason: String,
    },
    /// librdkafka refused the configuration (for example a bad
    /// `--kafka-config` setting).
    #[error("Kafka client configuration rejected: {0}")]
    Config(rdkafka::error::KafkaError),
}
