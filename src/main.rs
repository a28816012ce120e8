//! The `klinecast` binary: parses flags, starts the roles, maps errors to
//! messages and exit codes (0 ok, 1 runtime error, 2 bad usage).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use klinecast::cli::{Cli, Command, GatewayArgs, IngestArgs, ServeArgs, plan_cores, tail};
use klinecast::gateway::Gateway;
use klinecast::ingest::metrics::IngestMetrics;
use klinecast::ingest::{self, IngestReport};
use klinecast::runtime::{self, Shutdown};
use klinecast::sink::{KafkaSink, restore};
use klinecast::source;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let filter = EnvFilter::try_from_env("KLINECAST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal();
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let shutdown = Shutdown::on_signals().context("installing signal handlers")?;
    match cli.command {
        None => serve(cli.serve, shutdown),
        Some(Command::Serve(args)) => serve(args, shutdown),
        Some(Command::Ingest(args)) => run_ingest(args, shutdown, Arc::new(IngestMetrics::default())).map(|_| ()),
        Some(Command::Gateway(args)) => run_gateway(args, shutdown),
        Some(Command::Tail(args)) => tail::run(&args, &shutdown),
    }
}

fn serve(args: ServeArgs, shutdown: Shutdown) -> anyhow::Result<()> {
    let available = runtime::cores(&args.ingest.cores);
    let (_, shard_cores) = plan_cores(&available, args.gateway.shards);
    let metrics = Arc::new(IngestMetrics::default());
    let config = args.gateway.config(args.ingest.kafka.config(), args.ingest.windows.clone(), shard_cores);
    runtime::raise_limits();
    let gateway = Gateway::start(config, Some(metrics.clone()), shutdown.clone())?;
    let keep_serving = args.ingest.replay_then_serve;
    let ingest = run_ingest(args.ingest, shutdown.clone(), metrics).map(|_| ());
    // Ingest ends at shutdown or at the end of a replay; after a replay the
    // gateway keeps serving only with --replay-then-serve.
    if ingest.is_err() || !keep_serving {
        shutdown.request();
    }
    let served = gateway.join();
    ingest.and(served)
}

fn run_gateway(args: GatewayArgs, shutdown: Shutdown) -> anyhow::Result<()> {
    let available = runtime::cores(&args.cores);
    let shards = args.gateway.shards.unwrap_or(available.len().saturating_sub(1).max(1));
    let cores = (0..shards).map(|i| available[(i + 1) % available.len()]).collect();
    let config = args.gateway.config(args.kafka.config(), args.windows.clone(), cores);
    runtime::raise_limits();
    Gateway::start(config, None, shutdown)?.join()
}

fn run_ingest(args: IngestArgs, shutdown: Shutdown, metrics: Arc<IngestMetrics>) -> anyhow::Result<IngestReport> {
    let source_config = args.source_config().map_err(anyhow::Error::msg)?;
    // Up first, so an operator sees /healthz while ingest starts (and why
    // it cannot, if the node is down).
    if let Some(addr) = args.metrics_listen {
        let bound = klinecast::ingest::http::serve(addr, metrics.clone())
            .with_context(|| format!("cannot listen on {addr} for --metrics-listen"))?;
        tracing::info!(%bound, "ingest metrics on /metrics and /healthz");
    }
    runtime::raise_limits();
    // Created here, on the unpinned main thread: librdkafka's threads inherit
    // the creating thread's CPU affinity and must not share the ingest core.
    let sink = KafkaSink::connect(&args.kafka.config(), &args.windows)?;
    // A live source continues its series where the previous run left them
    // (bars carry the slot the trades in Kafka are complete up to); a replay
    // recomputes everything from its own event times.
    let mut restored = match source_config.continues_series() {
        true => restore::last_states(&args.kafka.config(), &args.windows, sink.partitions())?,
        false => restore::Restored::default(),
    };
    let source = source::open(source_config, restored.resume())?;
    if let Some(counters) = source.metrics() {
        let _ = metrics.source.set(counters);
    }
    let core = runtime::cores(&args.cores)[0];
    let config = args.ingest_config().map_err(anyhow::Error::msg)?;
    tracing::info!(windows = %config.windows, core, brokers = %args.kafka.brokers, topic = %args.kafka.topic, "ingest starting");
    let stop = shutdown.clone();
    let report =
        runtime::spawn_pinned("ingest", core, move || ingest::run(config, source, sink, restored.bars, stop, metrics))?
            .join()?;
    tracing::info!(%report, "ingest finished");
    if report.unflushed > 0 {
        anyhow::bail!("{} bars were not acknowledged by Kafka before exit", report.unflushed);
    }
    Ok(report)
}
