//! Flags and parsers every subcommand shares.

use std::time::Duration;

use clap::Args;

use crate::kafka::KafkaConfig;
use crate::kafka::settings::parse_override;

/// Where Kafka is.
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KLINECAST_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Topic of the bars.
    #[arg(long, env = "KLINECAST_TOPIC", default_value = "demo")]
    pub topic: String,
    /// Extra librdkafka setting, key=value (TLS, SASL, tuning); repeat or
    /// comma-separate. Applied after klinecast's own settings.
    #[arg(long = "kafka-config", env = "KLINECAST_KAFKA_CONFIG", value_name = "KEY=VALUE",
          value_delimiter = ',', value_parser = parse_override)]
    pub kafka_config: Vec<(String, String)>,
}

impl KafkaArgs {
    /// The validated connection settings.
    pub fn config(&self) -> KafkaConfig {
        KafkaConfig { brokers: self.brokers.clone(), topic: self.topic.clone(), overrides: self.kafka_config.clone() }
    }
}

/// Parses a duration: `0`, `50ms`, `1s`, `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text.trim()).map_err(|e| format!("{e} (examples: 0, 50ms, 1s)"))
}
