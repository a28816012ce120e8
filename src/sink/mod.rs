//! Bars → Apache Kafka: the producer ([`kafka`]) and, for a restarted
//! ingest, the last state of each series read back ([`restore`]). Where a
//! bar goes (topic layout) and how the client is set up live in
//! [`crate::kafka`], shared with the gateway and `tail`; the sink never
//! decides what a bar is, only sends it.

pub mod kafka;
pub mod restore;

pub use kafka::{KafkaSink, SendError, SinkStats};
