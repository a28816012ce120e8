//! klinecast: pump.fun trades in, OHLCV K-lines out, through Apache Kafka to
//! WebSocket clients.
//!
//! Where a byte goes, in order:
//! - [`source`]: where trades come from (a mock bonding curve, or a replay of
//!   `Program data:` log lines), as raw `TradeEvent` bytes.
//! - [`codec`]: byte formats without I/O: pump.fun and PumpSwap events, the
//!   `Bar` archive.
//! - [`market`]: decoded events → priced trades (pools, quotes, decimals).
//! - [`aggregate`]: trades → bars per (mint, window), the rules of SPEC §3.
//! - [`kafka`]: librdkafka settings, the topic layout and the reader, shared
//!   by the sink, the gateway and `tail`.
//! - [`sink`]: bars → Kafka, the producer.
//! - [`history`]: closed bars kept on disk for the gateway's history API.
//! - [`ingest`]: the loop that drives source → aggregate → sink on its core.
//! - [`runtime`]: pinned glommio executors, shutdown.
//! - [`cli`]: flags, validated once into configs; `tail`.

pub mod aggregate;
pub mod cli;
pub mod codec;
pub mod gateway;
pub mod history;
pub mod ingest;
pub mod kafka;
pub mod market;
pub mod runtime;
pub mod sink;
pub mod source;
