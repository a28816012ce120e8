//! Command-line flags. Raw flags are validated here, once, into the configs
//! the rest of the code trusts; every flag also reads a `KLINECAST_...`
//! environment variable.

pub mod common;
pub mod tail;

pub use common::{KafkaArgs, parse_duration};

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::aggregate::{DEFAULT_MAX_EVICTED, DEFAULT_MAX_MINTS, Windows};
use crate::codec::amm::PoolMints;
use crate::codec::borsh::Pubkey;
use crate::codec::json::parse_mint;
use crate::gateway::{Fanout, GatewayConfig};
use crate::ingest::{DEFAULT_MAX_POOLS, IngestConfig, MintShard};
use crate::kafka::KafkaConfig;
use crate::source::solana::{Commitment, SolanaConfig, ws_url_for};
use crate::source::{MockConfig, ReplayConfig, SourceConfig};

/// klinecast: real-time K-lines (OHLCV) for pump.fun tokens, through Apache Kafka.
///
/// Without a command, runs `serve`. Every flag can also be set with an
/// environment variable, shown in brackets.
#[derive(Debug, Parser)]
#[command(name = "klinecast", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of `serve`, when no command is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The roles and tools.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant, reason = "parsed once at start-up: boxing the flags would save nothing")]
pub enum Command {
    /// Ingest and gateway in one process (the default).
    Serve(ServeArgs),
    /// Trades → bars → Kafka, nothing else.
    Ingest(IngestArgs),
    /// Kafka → WebSocket and HTTP clients, nothing else.
    Gateway(GatewayArgs),
    /// Print bars from Kafka (zero-copy reads), as a table or JSON lines.
    Tail(tail::TailArgs),
}

/// Where trades come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceKind {
    /// Simulated bonding-curve trades.
    Mock,
    /// Captured `Program data:` lines or RPC JSON messages, from a file or stdin.
    Replay,
    /// Live from a Solana RPC node (WebSocket logsSubscribe + HTTP backfill).
    Solana,
}

/// `--commitment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CommitmentArg {
    /// Voted on by a supermajority (about a second behind the chain).
    Confirmed,
    /// Rooted (about 13 s behind; never rolled back).
    Finalized,
}

/// Flags of the ingest role.
#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    /// Kafka connection.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Where trades come from.
    #[arg(long, env = "KLINECAST_SOURCE", value_enum, default_value = "mock")]
    pub source: SourceKind,
    /// Mock: number of mints traded.
    #[arg(long, env = "KLINECAST_MOCK_MINTS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub mock_mints: u32,
    /// Mock: events per second over all mints (0 = as fast as possible).
    #[arg(long, env = "KLINECAST_MOCK_RATE", default_value_t = 1000)]
    pub mock_rate: u64,
    /// Mock: random seed (mints and trades are deterministic for a seed).
    #[arg(long, env = "KLINECAST_MOCK_SEED", default_value_t = 42)]
    pub mock_seed: u64,
    /// Replay: file of `Program data: <base64>` lines or JSON lines of
    /// logsNotification messages / getTransaction results, or `-` for stdin.
    #[arg(long, env = "KLINECAST_REPLAY_FILE", value_name = "PATH")]
    pub replay_file: Option<PathBuf>,
    /// Solana: the node's HTTP JSON-RPC URL (a provider's key may be in the
    /// URL: it is never logged).
    #[arg(long, env = "KLINECAST_RPC_URL", default_value = "https://api.mainnet-beta.solana.com")]
    pub rpc_url: String,
    /// Solana: the node's WebSocket URL; default: the RPC URL with
    /// https→wss, http→ws, same host, port and path.
    #[arg(long, env = "KLINECAST_RPC_WS_URL")]
    pub rpc_ws_url: Option<String>,
    /// Solana: commitment of the subscription and the calls.
    #[arg(long, env = "KLINECAST_COMMITMENT", value_enum, default_value = "confirmed")]
    pub commitment: CommitmentArg,
    /// Solana: HTTP requests per second to the node, all methods (the
    /// public endpoint allows 40 per 10 s for one method per IP).
    #[arg(long, env = "KLINECAST_RPC_RPS", default_value_t = 4.0)]
    pub rpc_rps: f64,
    /// Solana: HTTP requests in flight at once.
    #[arg(long, env = "KLINECAST_RPC_CONCURRENCY", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub rpc_concurrency: u32,
    /// Solana: most transactions backfilled per program after a drop; a
    /// larger gap keeps its newest ones and is logged and counted as lost.
    #[arg(long, env = "KLINECAST_BACKFILL_MAX", default_value_t = 1000)]
    pub backfill_max: usize,
    /// Solana: a bar closes when the wall clock passes its end plus this
    /// (block times lag the wall clock); default 2s with confirmed, 15s
    /// with finalized.
    #[arg(long, env = "KLINECAST_CLOSE_DELAY", value_parser = parse_duration)]
    pub close_delay: Option<Duration>,
    /// Solana: interval of WebSocket pings to the node.
    #[arg(long, env = "KLINECAST_RPC_PING_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub rpc_ping_interval: Duration,
    /// Solana: a WebSocket on which nothing (no notification, no pong)
    /// arrived this long is replaced (reconnect and backfill).
    #[arg(long, env = "KLINECAST_RPC_STALE_AFTER", default_value = "30s", value_parser = parse_duration)]
    pub rpc_stale_after: Duration,
    /// Solana: PEM file of the only CA trusted for TLS to the node (a
    /// private node); default: the system's root store.
    #[arg(long, env = "KLINECAST_RPC_CA_FILE", value_name = "PATH")]
    pub rpc_ca_file: Option<PathBuf>,
    /// Serve /metrics and /healthz of the ingest side on this address
    /// (`ingest` has no gateway; off by default).
    #[arg(long, env = "KLINECAST_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Replay: after the end of the file, keep serving clients (serve only).
    #[arg(long, env = "KLINECAST_REPLAY_THEN_SERVE")]
    pub replay_then_serve: bool,
    /// Bar windows, e.g. 1s,1m,5m,15m,1h,4h,1d. Window i goes to partition i.
    #[arg(long, env = "KLINECAST_WINDOWS", default_value = "1s,1m,5m,1h")]
    pub windows: Windows,
    /// Produce each changed open bar at most once per interval (e.g. 50ms);
    /// 0 = every change. Closing updates always go out at once.
    #[arg(long, env = "KLINECAST_EMIT_INTERVAL", default_value = "0", value_parser = parse_duration)]
    pub emit_interval: Duration,
    /// Aggregate only the mints of shard i of N (several ingest processes).
    #[arg(long, env = "KLINECAST_MINT_SHARD", value_name = "I/N")]
    pub mint_shard: Option<MintShardArg>,
    /// Most mints tracked at once (idle mints are evicted); trades of
    /// further mints are dropped and counted.
    #[arg(long, env = "KLINECAST_MAX_MINTS", default_value_t = DEFAULT_MAX_MINTS)]
    pub max_mints: usize,
    /// Most evicted mints whose series numbers are kept so they continue
    /// when they trade again (about 150 bytes each).
    #[arg(long, env = "KLINECAST_MAX_EVICTED_MINTS", default_value_t = DEFAULT_MAX_EVICTED)]
    pub max_evicted_mints: usize,
    /// Most PumpSwap pools known at once.
    #[arg(long, env = "KLINECAST_MAX_POOLS", default_value_t = DEFAULT_MAX_POOLS)]
    pub max_pools: usize,
    /// PumpSwap pools → mints, for a replay without a node: JSON lines
    /// `{"pool":..,"base_mint":..,"quote_mint":..[,"base_decimals":6,"quote_decimals":9]}`.
    #[arg(long, env = "KLINECAST_POOL_MAP", value_name = "PATH")]
    pub pool_map: Option<PathBuf>,
    /// Decimals of a quote mint outside the built-in table (SOL, USDC, USDT,
    /// PUMP), MINT=DECIMALS; repeat or comma-separate.
    #[arg(long, env = "KLINECAST_QUOTE_DECIMALS", value_name = "MINT=N", value_delimiter = ',',
          value_parser = parse_quote_decimals)]
    pub quote_decimals: Vec<(Pubkey, u8)>,
    /// Cores to pin executors to, comma-separated (ingest first).
    #[arg(long, env = "KLINECAST_CORES", value_delimiter = ',')]
    pub cores: Vec<usize>,
}

impl IngestArgs {
    /// The validated ingest settings (reads `--pool-map`).
    pub fn ingest_config(&self) -> Result<IngestConfig, String> {
        let pools = match &self.pool_map {
            Some(path) => read_pool_map(path)?,
            None => Vec::new(),
        };
        Ok(IngestConfig {
            windows: self.windows.clone(),
            emit_interval: self.emit_interval,
            mint_shard: self.mint_shard.map(|m| m.0),
            max_mints: self.max_mints,
            max_evicted: self.max_evicted_mints,
            max_pools: self.max_pools,
            pools,
            quote_decimals: self.quote_decimals.clone(),
        })
    }

    /// The validated source settings.
    pub fn source_config(&self) -> Result<SourceConfig, String> {
        match (self.source, &self.replay_file) {
            (SourceKind::Mock, _) => Ok(SourceConfig::Mock(MockConfig {
                mints: self.mock_mints,
                rate_per_s: self.mock_rate,
                seed: self.mock_seed,
            })),
            (SourceKind::Replay, Some(path)) => Ok(SourceConfig::Replay(ReplayConfig { path: path.clone() })),
            (SourceKind::Replay, None) => Err("--source replay needs --replay-file PATH (or - for stdin)".into()),
            (SourceKind::Solana, _) => self.solana_config().map(|c| SourceConfig::Solana(Box::new(c))),
        }
    }

    /// The validated live-source settings.
    fn solana_config(&self) -> Result<SolanaConfig, String> {
        let ws_url = match &self.rpc_ws_url {
            Some(url) => url.clone(),
            None => ws_url_for(&self.rpc_url)?,
        };
        if !(ws_url.starts_with("ws://") || ws_url.starts_with("wss://")) {
            return Err("--rpc-ws-url: use a ws:// or wss:// URL".into());
        }
        if !(self.rpc_rps.is_finite() && self.rpc_rps > 0.0) {
            return Err(format!("--rpc-rps {}: give a positive number of requests per second", self.rpc_rps));
        }
        if !self.emit_interval.is_zero() {
            // A restart knows which trades Kafka holds from the updates each
            // trade made; coalesced updates would hide some of them.
            return Err("--emit-interval cannot be used with --source solana: a restart tells the trades already \
                        in Kafka from their updates, and coalescing would hide some (leave it at 0)"
                .into());
        }
        let commitment = match self.commitment {
            CommitmentArg::Confirmed => Commitment::Confirmed,
            CommitmentArg::Finalized => Commitment::Finalized,
        };
        let default_delay = if commitment == Commitment::Finalized { 15 } else { 2 };
        Ok(SolanaConfig {
            rpc_url: self.rpc_url.clone(),
            ws_url,
            commitment,
            rps: self.rpc_rps,
            concurrency: self.rpc_concurrency as usize,
            backfill_max: self.backfill_max.max(1),
            close_delay: self.close_delay.unwrap_or(Duration::from_secs(default_delay)),
            ping_interval: self.rpc_ping_interval.max(Duration::from_millis(100)),
            stale_after: self.rpc_stale_after.max(Duration::from_millis(500)),
            ca_file: self.rpc_ca_file.clone(),
            dedupe_window: crate::source::solana::dedupe::DEFAULT_WINDOW.max(4 * self.backfill_max),
            max_buffered: 50_000,
        })
    }
}

/// Flags of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The ingest half.
    #[command(flatten)]
    pub ingest: IngestArgs,
    /// The gateway half.
    #[command(flatten)]
    pub gateway: GatewayOptions,
}

/// Flags of the `gateway` command: Kafka and windows, then the gateway's own.
#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// Kafka connection.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Windows clients may subscribe to, in the same order as ingest's
    /// (window i is read from partition i).
    #[arg(long, env = "KLINECAST_WINDOWS", default_value = "1s,1m,5m,1h")]
    pub windows: Windows,
    /// Cores to pin gateway shards to, comma-separated.
    #[arg(long, env = "KLINECAST_CORES", value_delimiter = ',')]
    pub cores: Vec<usize>,
    /// The gateway's own flags.
    #[command(flatten)]
    pub gateway: GatewayOptions,
}

/// How bars reach clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FanoutArg {
    /// One Kafka consumer per subscribed client; every update forwarded.
    PerClient,
    /// One consumer per shard, fan-out in memory, pushes conflated to
    /// --push-interval.
    Shared,
}

/// Flags shared by `serve` and `gateway`.
#[derive(Debug, Clone, Args)]
pub struct GatewayOptions {
    /// Address to listen on (HTTP and WebSocket on one port).
    #[arg(long, env = "KLINECAST_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Gateway shards (executors); default: every core but the ingest one, at least 1.
    #[arg(long, env = "KLINECAST_SHARDS")]
    pub shards: Option<usize>,
    /// Fan-out mode.
    #[arg(long, env = "KLINECAST_FANOUT", value_enum, default_value = "per-client")]
    pub fanout: FanoutArg,
    /// Shared mode: at most one update per (mint, window) per interval, the
    /// latest; closing updates always. 0 = every update.
    #[arg(long, env = "KLINECAST_PUSH_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub push_interval: Duration,
    /// How far back each gateway shard reads the topic at start to serve
    /// history (at most 1000 bars per series are kept).
    #[arg(long, env = "KLINECAST_HISTORY_LOOKBACK", default_value = "1h", value_parser = parse_duration)]
    pub history_lookback: Duration,
    /// Outbound bytes queued per connection before a slow client's updates
    /// are conflated and, if it stays over for 5 s, it is closed (1013).
    #[arg(long, env = "KLINECAST_MAX_OUTBOUND_BYTES", default_value_t = 64 * 1024)]
    pub max_outbound_bytes: usize,
    /// Most open connections of the process; beyond it HTTP 503.
    #[arg(long, env = "KLINECAST_MAX_CONNECTIONS", default_value_t = 60_000)]
    pub max_connections: usize,
    /// Most open connections from one IP address (per shard).
    #[arg(long, env = "KLINECAST_MAX_CONNECTIONS_PER_IP", default_value_t = 10_000)]
    pub max_connections_per_ip: usize,
    /// Time a client has to send its HTTP request head.
    #[arg(long, env = "KLINECAST_HANDSHAKE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,
    /// Largest inbound WebSocket message, bytes.
    #[arg(long, env = "KLINECAST_MAX_FRAME_BYTES", default_value_t = 4096)]
    pub max_frame_bytes: usize,
    /// Origin allowed to open WebSockets (repeat; `*` = any). Default: same
    /// host as the page, or no Origin header (non-browser clients).
    #[arg(long = "allowed-origin", env = "KLINECAST_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Interval of server pings; a client silent for two intervals is dropped.
    #[arg(long, env = "KLINECAST_PING_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub ping_interval: Duration,
    /// Directory served at / and /static/.
    #[arg(long, env = "KLINECAST_STATIC_DIR", default_value = "static")]
    pub static_dir: PathBuf,
    /// Directory of the closed-bar history store (`<topic>.redb`); one per
    /// gateway process.
    #[arg(long, env = "KLINECAST_HISTORY_DIR", default_value = "data/history")]
    pub history_dir: PathBuf,
    /// How long closed bars are kept, per window, e.g. 1s=6h,1m=30d; default
    /// 6h for windows under a minute, else 7d or 1000 bars, the longer.
    #[arg(long, env = "KLINECAST_HISTORY_RETENTION", value_name = "W=DURATION,..", default_value = "")]
    pub history_retention: crate::history::Retention,
    /// Disk cap of the history store; beyond it the oldest bars go first.
    #[arg(long, env = "KLINECAST_HISTORY_MAX_BYTES", default_value_t = crate::history::DEFAULT_MAX_BYTES)]
    pub history_max_bytes: u64,
    /// Page cache of the history store (its memory), bytes.
    #[arg(long, env = "KLINECAST_HISTORY_CACHE_BYTES", default_value_t = crate::history::DEFAULT_CACHE_BYTES)]
    pub history_cache_bytes: usize,
    /// Updates each gateway shard keeps for clients resuming after a
    /// reconnect (about 260 bytes each); older ones answer `gap`.
    #[arg(long, env = "KLINECAST_RESUME_UPDATES", default_value_t = crate::gateway::recent::DEFAULT_UPDATES)]
    pub resume_updates: usize,
}

impl GatewayOptions {
    /// The validated gateway settings for shards pinned to `cores`.
    pub fn config(&self, kafka: KafkaConfig, windows: Windows, cores: Vec<usize>) -> GatewayConfig {
        let shards = cores.len().max(1);
        let history = crate::history::HistoryConfig {
            dir: self.history_dir.clone(),
            retention: self.history_retention.clone(),
            max_bytes: self.history_max_bytes,
            cache_bytes: self.history_cache_bytes.max(1 << 20),
            windows: windows.seconds().to_vec(),
            partitions: windows.len() as i32,
        };
        GatewayConfig {
            listen: self.listen,
            cores,
            windows,
            kafka,
            fanout: match self.fanout {
                FanoutArg::PerClient => Fanout::PerClient,
                FanoutArg::Shared => Fanout::Shared { push_interval: self.push_interval },
            },
            max_connections_per_shard: self.max_connections.div_ceil(shards),
            max_connections_per_ip: self.max_connections_per_ip,
            handshake_timeout: self.handshake_timeout,
            max_frame_bytes: self.max_frame_bytes.max(16),
            allowed_origins: self.allowed_origins.clone(),
            ping_interval: self.ping_interval.max(Duration::from_millis(100)),
            static_dir: self.static_dir.clone(),
            history_lookback: self.history_lookback,
            max_outbound_bytes: self.max_outbound_bytes.max(4096),
            history,
            resume_updates: self.resume_updates.max(1),
        }
    }
}

/// Splits the available cores between ingest (the first) and gateway shards.
pub fn plan_cores(available: &[usize], shards: Option<usize>) -> (usize, Vec<usize>) {
    let ingest = available.first().copied().unwrap_or(0);
    let rest: Vec<usize> = available.iter().skip(1).copied().collect();
    let want = shards.unwrap_or(rest.len().max(1)).max(1);
    let pool = if rest.is_empty() { vec![ingest] } else { rest };
    (ingest, (0..want).map(|i| pool[i % pool.len()]).collect())
}

/// `--mint-shard i/N`, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MintShardArg(pub MintShard);

impl FromStr for MintShardArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("expected I/N with 0 <= I < N, e.g. 0/2; got {text:?}");
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = index.trim().parse().map_err(|_| bad())?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Self(MintShard { index, count }))
    }
}

/// Parses `MINT=DECIMALS`.
pub fn parse_quote_decimals(text: &str) -> Result<(Pubkey, u8), String> {
    let (mint, decimals) = text.split_once('=').ok_or_else(|| format!("expected MINT=DECIMALS, got {text:?}"))?;
    let mint = parse_mint(mint)?;
    let decimals = decimals.trim().parse::<u8>().ok().filter(|d| *d <= 19);
    decimals.map(|d| (mint, d)).ok_or_else(|| format!("decimals in {text:?} must be 0 to 19"))
}

/// Reads a pool map: one JSON object a line (blank lines and `#` comments
/// skipped); the first bad line is the error, with its number.
pub fn read_pool_map(path: &std::path::Path) -> Result<Vec<PoolMints>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read pool map {}: {e}", path.display()))?;
    let mut pools = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = || format!("pool map {} line {}", path.display(), i + 1);
        let value: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("{}: {e}", at()))?;
        let key = |name: &str| {
            let text =
                value.get(name).and_then(serde_json::Value::as_str).ok_or_else(|| format!("{}: no {name:?}", at()))?;
            parse_mint(text).map_err(|e| format!("{}: {name}: {e}", at()))
        };
        let decimals = |name: &str| value.get(name).and_then(serde_json::Value::as_u64).map(|d| d.min(19) as u8);
        let decimals = match (decimals("base_decimals"), decimals("quote_decimals")) {
            (Some(base), Some(quote)) => Some((base, quote)),
            _ => None,
        };
        pools.push(PoolMints {
            pool: key("pool")?,
            base_mint: key("base_mint")?,
            quote_mint: key("quote_mint")?,
            decimals,
        });
    }
    Ok(pools)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_spec() {
        let cli = Cli::try_parse_from(["klinecast"]).unwrap();
        let ingest = &cli.serve.ingest;
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.gateway.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(cli.serve.gateway.fanout, FanoutArg::PerClient);
        assert_eq!(ingest.kafka.brokers, "127.0.0.1:9092");
        assert_eq!(ingest.kafka.topic, "demo");
        assert_eq!(ingest.windows.seconds(), &[1, 60, 300, 3600]);
        assert_eq!((ingest.mock_mints, ingest.mock_rate, ingest.emit_interval), (1, 1000, Duration::ZERO));
        assert_eq!(ingest.source, SourceKind::Mock);
    }

    #[test]
    fn cores_split_between_ingest_and_shards() {
        assert_eq!(plan_cores(&[0, 1], None), (0, vec![1]));
        assert_eq!(plan_cores(&[0], None), (0, vec![0]));
        assert_eq!(plan_cores(&[0, 1, 2, 3], None), (0, vec![1, 2, 3]));
        assert_eq!(plan_cores(&[0, 1], Some(3)), (0, vec![1, 1, 1]));
    }

    #[test]
    fn parses_ingest_flags() {
        let cli = Cli::try_parse_from([
            "klinecast",
            "ingest",
            "--source",
            "replay",
            "--replay-file",
            "-",
            "--windows",
            "1s,15m",
            "--emit-interval",
            "50ms",
            "--mint-shard",
            "1/2",
            "--kafka-config",
            "security.protocol=SSL,acks=1",
        ])
        .unwrap();
        let Some(Command::Ingest(args)) = cli.command else { panic!("not ingest") };
        assert!(
            matches!(args.source_config(), Ok(SourceConfig::Replay(ReplayConfig { path })) if path.as_os_str() == "-")
        );
        assert_eq!(args.windows.seconds(), &[1, 900]);
        assert_eq!(args.emit_interval, Duration::from_millis(50));
        assert_eq!(args.mint_shard, Some(MintShardArg(MintShard { index: 1, count: 2 })));
        assert_eq!(args.kafka.config().overrides.len(), 2);
    }

    #[test]
    fn refuses_bad_flags_with_the_reason() {
        for (flag, value, needle) in [
            ("--windows", "1x", "bad window"),
            ("--mint-shard", "2/2", "0 <= I < N"),
            ("--emit-interval", "soon", "examples"),
            ("--kafka-config", "novalue", "key=value"),
        ] {
            let err = Cli::try_parse_from(["klinecast", "ingest", flag, value]).unwrap_err().to_string();
            assert!(err.contains(needle), "{flag} {value}: {err}");
        }
        let cli = Cli::try_parse_from(["klinecast", "ingest", "--source", "replay"]).unwrap();
        let Some(Command::Ingest(args)) = cli.command else { panic!("not ingest") };
        assert!(args.source_config().unwrap_err().contains("--replay-file"));
        let cli = Cli::try_parse_from(["klinecast", "ingest", "--source", "solana", "--rpc-url", "ftp://x"]).unwrap();
        let Some(Command::Ingest(args)) = cli.command else { panic!("not ingest") };
        assert!(args.source_config().unwrap_err().contains("http:// or https://"));
    }

    #[test]
    fn the_solana_source_derives_its_websocket_and_close_delay() {
        let cli =
            Cli::try_parse_from(["klinecast", "ingest", "--source", "solana", "--rpc-url", "http://127.0.0.1:8899/k"])
                .unwrap();
        let Some(Command::Ingest(args)) = cli.command else { panic!("not ingest") };
        let Ok(SourceConfig::Solana(config)) = args.source_config() else { panic!("not solana") };
        assert_eq!(config.ws_url, "ws://127.0.0.1:8899/k");
        assert_eq!((config.close_delay, config.commitment), (Duration::from_secs(2), Commitment::Confirmed));
        let cli =
            Cli::try_parse_from(["klinecast", "ingest", "--source", "solana", "--commitment", "finalized"]).unwrap();
        let Some(Command::Ingest(args)) = cli.command else { panic!("not ingest") };
        let Ok(SourceConfig::Solana(config)) = args.source_config() else { panic!("not solana") };
        assert_eq!(
            (config.ws_url.as_str(), config.close_delay),
            ("wss://api.mainnet-beta.solana.com", Duration::from_secs(15))
        );
    }
}
