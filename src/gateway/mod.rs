//! The gateway role: HTTP and WebSocket on sharded io_uring accept loops,
//! fan-out of bars from Kafka to clients.
//!
//! From the top down (a module uses only those below it):
//! - [`shard`]: one shard per core, the composition root.
//! - [`listener`]: accept, admission, HTTP vs WebSocket.
//!   [`routes`]: static files, health, metrics, `/api`.
//!   [`session`]: one client: its connection, its commands, its own Kafka
//!   consumer in per-client mode.
//! - [`hub`]: shared mode: who wants what, conflation, pushes.
//!   [`feed`]: the shard's own reader of the topic: history, mints.
//! - [`outbox`]: a connection's bounded send queue and its slow-client
//!   policy. [`update`]: one bar update, encoded once.
//!   [`http`], [`websocket`], [`protocol`]: sans-io HTTP heads, WebSocket
//!   framing and the command language, no sockets. [`api`], [`binance`]:
//!   the history API's parameters, errors and shapes, sans-io; [`pages`]:
//!   reading them from the history store off the executor.
//! - [`config`], [`metrics`], [`kafka_workers`] (threads for blocking Kafka
//!   work), [`arrivals`] (wakes the shard's poller when a consumer has
//!   messages): used throughout.

pub mod api;
pub mod arrivals;
pub mod binance;
pub mod config;
pub mod feed;
pub mod format;
pub mod http;
pub mod hub;
pub mod kafka_workers;
pub mod listener;
pub mod metrics;
pub mod outbox;
pub mod pages;
pub mod protocol;
pub mod recent;
pub mod routes;
pub mod session;
pub mod shard;
pub mod transport;
pub mod udf;
pub mod update;
pub mod websocket;

use std::sync::Arc;

use thiserror::Error;

pub use config::{Fanout, GatewayConfig};
use kafka_workers::KafkaWorkers;
use metrics::Metrics;

use crate::ingest::metrics::IngestMetrics;
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
    /// The history store could not be opened or its writer not started.
    #[error(transparent)]
    History(#[from] crate::history::HistoryError),
}

/// The running shards.
pub struct Gateway {
    shards: Vec<Executor<std::io::Result<()>>>,
    /// The history store's writer, stopped after the shards.
    history: crate::history::HistoryWriter,
    /// Counters of every shard.
    pub metrics: Arc<Metrics>,
}

impl Gateway {
    /// Checks Kafka, creates the topic if needed, opens the history store
    /// and starts one shard per core; `ingest` is the counters of an ingest
    /// running in the same process (`serve`). Call from the unpinned main
    /// thread.
    pub fn start(
        mut config: GatewayConfig,
        ingest: Option<Arc<IngestMetrics>>,
        shutdown: Shutdown,
    ) -> Result<Self, GatewayError> {
        let partitions = crate::kafka::topic::ensure_topic(&config.kafka, config.windows.len() as i32)?;
        config.history.partitions = partitions;
        let history = crate::history::HistoryWriter::start(config.history.clone(), &config.kafka, shutdown.clone())?;
        let handles = config::Handles { ingest, history: Some(history.history.clone()) };
        let workers = KafkaWorkers::start(KAFKA_WORKER_THREADS).map_err(GatewayError::Workers)?;
        let metrics = Arc::new(Metrics::default());
        let mut shards = Vec::new();
        for (i, &core) in config.cores.iter().enumerate() {
            let (config, handles, metrics, workers, shutdown) =
                (config.clone(), handles.clone(), metrics.clone(), workers.clone(), shutdown.clone());
            let name = format!("gateway-{i}");
            shards.push(runtime::spawn_pinned(&name, core, move || {
                shard::run(config, handles, metrics, workers, partitions, shutdown)
            })?);
        }
        tracing::info!(listen = %config.listen, shards = shards.len(), "gateway listening on http://{}", config.listen);
        Ok(Self { shards, history, metrics })
    }

    /// Waits for every shard to stop.
    pub fn join(self) -> anyhow::Result<()> {
        for shard in self.shards {
            shard.join()??;
        }
        self.history.join();
        Ok(())
    }
}
