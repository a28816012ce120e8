//! The gateway's settings, validated once from flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::aggregate::Windows;
use crate::history::{History, HistoryConfig};
use crate::ingest::metrics::IngestMetrics;
use crate::kafka::KafkaConfig;

/// How bars reach clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fanout {
    /// One Kafka consumer per subscribed client; every message forwarded.
    PerClient,
    /// One consumer per shard, fanned out in memory; each (mint, window)
    /// series pushed at most once per interval (zero: every update).
    Shared {
        /// Conflation interval.
        push_interval: Duration,
    },
}

/// Everything the gateway needs to run.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Address every shard listens on (SO_REUSEPORT).
    pub listen: SocketAddr,
    /// Cores of the shards, one executor each.
    pub cores: Vec<usize>,
    /// Windows clients may subscribe to, in partition order.
    pub windows: Windows,
    /// Kafka connection and topic.
    pub kafka: KafkaConfig,
    /// Fan-out mode.
    pub fanout: Fanout,
    /// Most open connections per shard; beyond it new ones get HTTP 503.
    pub max_connections_per_shard: usize,
    /// Most open connections from one IP address per shard.
    pub max_connections_per_ip: usize,
    /// Time a client has to send its request head.
    pub handshake_timeout: Duration,
    /// Largest inbound WebSocket message accepted.
    pub max_frame_bytes: usize,
    /// Allowed `Origin` values for WebSocket upgrades; empty = same host
    /// only (Origin host equals the Host header) or no Origin (programs).
    pub allowed_origins: Vec<String>,
    /// How often idle sessions are pinged; a session silent for two
    /// intervals is closed.
    pub ping_interval: Duration,
    /// Directory with `index.html` and the assets under `/static/`.
    pub static_dir: PathBuf,
    /// How far back each shard reads the topic at start to fill history.
    pub history_lookback: Duration,
    /// Outbound bytes queued per connection before updates are conflated
    /// (shared mode) and, if that does not help, the client is closed.
    pub max_outbound_bytes: usize,
    /// Where closed bars are kept and for how long.
    pub history: HistoryConfig,
    /// Updates each shard keeps for clients that resume (`since`, `from`).
    pub resume_updates: usize,
}

/// What the shards share besides their settings: handles to running parts.
#[derive(Debug, Clone, Default)]
pub struct Handles {
    /// The ingest side's counters and health, when ingest runs in the same
    /// process (`serve`): `/metrics` shows them, `/healthz` says what is
    /// wrong with it.
    pub ingest: Option<Arc<IngestMetrics>>,
    /// The opened history store, every shard reads it.
    pub history: Option<History>,
}
