//! The gateway role: HTTP and WebSocket on sharded io_uring accept loops,
//! fan-out of bars from Kafka to clients.
//!
//! - [`http`], [`protocol`], [`websocket`]: sans-io request parsing, the
//!   command language and WebSocket framing, no sockets.
//! - [`server`]: one shard per core, its listener and connections.
//! - [`session`]: one WebSocket client and the per-client Kafka feed.
//! - [`feed`]: the shard's own reader: history rings, mints.
//! - [`fanout`]: shared mode: one update, many sessions, conflated pushes.
//! - [`outbox`]: a connection's bounded outbound queue.
//! - [`api`]: `/api/klines`, `/api/mints`.
//! - [`kafka_workers`]: threads for blocking Kafka client work.
//! - [`arrivals`]: wakes the shard's poller when a consumer has messages.
//! - [`metrics`]: counters and `/metrics`.

pub mod api;
pub mod arrivals;
pub mod config;
pub mod fanout;
pub mod feed;
pub mod http;
pub mod kafka_workers;
pub mod metrics;
pub mod outbox;
pub mod protocol;
pub mod server;
pub mod session;
pub mod websocket;

use std::sync::Arc;

use thiserror::Error;

pub use config::{Fanout, GatewayConfig};
use kafka_workers::KafkaWorkers;
use metrics::Metrics;

use crate::kafka::ConnectError;
use crate::runtime::{self, Executor, RuntimeError, Shutdown};

/// Threads for blocking Kafka work (consumer creation, offset look-ups).
/// Each job mostly waits for broker round trips, so several run at once:
/// with two, per-client mode created consumers at about 50 a second and a
/// burst of 2,000 subscriptions waited up to 40 s for theirs.
const KAFKA_WORKER_THREADS: usize = 8;

/// Why the gateway did not start.
#[derive(Debug, Error)]
pub enum GatewayError {
    /// Kafka unreachable or the topic unusable.
    #[error(transparent)]
    Kafka(#[from] ConnectError),
    /// An executor did not start.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Worker threads could not be started.
    #[error("could not start Kafka worker threads: {0}")]
    Workers(std::io::Error),
}

/// The running shards.
pub struct Gateway {
    shards: Vec<Executor<std::io::Result<()>>>,
    /// Counters of every shard.
    pub metrics: Arc<Metrics>,
}

impl Gateway {
    /// Checks Kafka, creates the topic if needed and starts one shard per
    /// core. Call from the unpinned main thread.
    pub fn start(config: GatewayConfig, shutdown: Shutdown) -> Result<Self, GatewayError> {
        let partitions = crate::kafka::topic::ensure_topic(&config.kafka, config.windows.len() as i32)?;
        let workers = KafkaWorkers::start(KAFKA_WORKER_THREADS).map_err(GatewayError::Workers)?;
        let metrics = Arc::new(Metrics::default());
        let mut shards = Vec::new();
        for (i, &core) in config.cores.iter().enumerate() {
            let (config, metrics, workers, shutdown) =
                (config.clone(), metrics.clone(), workers.clone(), shutdown.clone());
            let name = format!("gateway-{i}");
            shards.push(runtime::spawn_pinned(&name, core, move || {
                server::run_shard(config, metrics, workers, partitions, shutdown)
            })?);
        }
        tracing::info!(listen = %config.listen, shards = shards.len(), "gateway listening on http://{}", config.listen);
        Ok(Self { shards, metrics })
    }

    /// Waits for every shard to stop.
    pub fn join(self) -> anyhow::Result<()> {
        for shard in self.shards {
            shard.join()??;
        }
        Ok(())
    }
}
