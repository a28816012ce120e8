//! klinecast: pump.fun trades in, OHLCV K-lines out, through Apache Kafka to
//! WebSocket clients.
//!
//! Where a byte goes, in order:
//! - [`source`]: where trades come from (a mock bonding curve, a replay of
//!   captured log lines or RPC messages, or live from a Solana RPC node:
//!   log subscription, gap backfill, dedupe, resume), as raw event bytes
//!   with their place on chain.
//! - [`codec`]: byte formats without I/O: pump.fun and PumpSwap events, the
//!   `Bar` archive.
//! - [`market`]: decoded events → priced trades (pools, quotes, decimals).
//! - [`aggregate`]: trades → bars per (mint, window), the rules of SPEC §3.
//! - [`kafka`]: librdkafka settings, the topic layout and the reader, shared
//!   by the sink, the gateway and `tail`.
//! - [`sink`]: bars → Kafka, the producer.
//! - [`history`]: closed bars kept on disk for the gateway's history API.
//! - [`ingest`]: the loop that drives source → aggregate → sink on its core.
//! - [`gateway`]: bars from Kafka to clients: sharded accept loops, client
//!   transports (WebSocket, Server-Sent Events), sessions in either fan-out
//!   mode (one Kafka consumer per client, or one per shard with pushes),
//!   history and resumes, the HTTP API.
//! - [`runtime`]: pinned glommio executors, shutdown.
//! - [`metrics`]: the Prometheus text writer every part's counters use.
//! - [`cli`]: flags, validated once into configs; `tail`.

pub mod aggregate;
pub mod cli;
pub mod codec;
pub mod gateway;
pub mod history;
pub mod ingest;
pub mod kafka;
pub mod market;
pub mod metrics;
pub mod runtime;
pub mod sink;
pub mod source;
