//! A source from its settings: what `ingest` and `serve` run.

use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;

use super::Source;
use super::mock::{MockConfig, MockSource};
use super::replay::{ReplayConfig, ReplaySource};
use super::solana::stream::redact;
use super::solana::{Resume, SolanaConfig, SolanaSource};
use crate::metrics::RenderMetrics;

/// The source a run reads, validated.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    /// Mock trades.
    Mock(MockConfig),
    /// Replayed log lines.
    Replay(ReplayConfig),
    /// A Solana RPC node.
    Solana(Box<SolanaConfig>),
}

impl SourceConfig {
    /// Whether a restart continues the series in Kafka (a live or mock
    /// source) rather than recomputing them from its own event times (a
    /// replay).
    pub fn continues_series(&self) -> bool {
        !matches!(self, Self::Replay(_))
    }
}

/// Why a source did not open.
#[derive(Debug, Error)]
pub enum OpenError {
    /// The replay file could not be opened.
    #[error("cannot open replay file {path}: {error}")]
    Replay {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The live source's settings were refused.
    #[error("{0}")]
    Solana(String),
}

/// Opens the source `config` describes; a live source resumes from
/// `resume` (where the series in Kafka are complete up to), or from the
/// live stream without one.
pub fn open(config: SourceConfig, resume: Option<Resume>) -> Result<Source, OpenError> {
    Ok(match config {
        SourceConfig::Mock(config) => Source::Mock(Box::new(MockSource::new(config))),
        SourceConfig::Replay(config) => Source::Replay(
            ReplaySource::open(&config).map_err(|error| OpenError::Replay { path: config.path.clone(), error })?,
        ),
        SourceConfig::Solana(config) => {
            if resume.is_none() {
                tracing::info!(
                    "no resume point in Kafka: starting from the live stream (trades made while no ingest ran are \
                     not backfilled)"
                );
            }
            tracing::info!(
                rpc = %redact(&config.rpc_url),
                ws = %redact(&config.ws_url),
                commitment = config.commitment.name(),
                "live Solana source"
            );
            Source::Solana(Box::new(SolanaSource::new(*config, resume).map_err(OpenError::Solana)?))
        }
    })
}

impl Source {
    /// The source's own counters, for `/metrics` and `/healthz`, if it
    /// keeps any (the live source; the mock's schedule).
    pub fn metrics(&self) -> Option<Arc<dyn RenderMetrics>> {
        match self {
            Self::Mock(s) => s.schedule().map(|s| s as Arc<dyn RenderMetrics>),
            Self::Replay(_) => None,
            Self::Solana(s) => Some(s.metrics()),
        }
    }
}
