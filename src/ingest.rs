//! The ingest role: source → decode → aggregate → Kafka, on one pinned
//! executor. This loop owns the pacing (clock ticks, emit interval, producer
//! back-pressure, shutdown); the stages it calls do no waiting of their own.

use std::fmt;
use std::time::{Duration, Instant};

use glommio::timer::sleep;

use crate::aggregate::{Aggregator, EmitPolicy, Rejected, Windows};
use crate::codec::bar::Bar;
use crate::codec::trade::{DecodeError, Pubkey, TradeEvent};
use crate::runtime::Shutdown;
use crate::sink::{KafkaSink, SendError};
use crate::source::mock::unix_now_s;
use crate::source::{ClockKind, Filled, MAX_BATCH, Source};

/// How long the loop waits before retrying a send when librdkafka's queue
/// is full (the bound is librdkafka's `queue.buffering.max.messages`).
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(5);

/// Longest idle sleep, so the wall clock closes bars within this of their
/// end and shutdown is noticed promptly.
const MAX_IDLE: Duration = Duration::from_millis(100);

/// How often a progress line is logged.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// How long shutdown waits for the broker to acknowledge queued bars.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// Which mints this process aggregates: `--mint-shard i/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MintShard {
    /// This process's shard, `0..count`.
    pub index: u32,
    /// Number of ingest processes sharing the mints.
    pub count: u32,
}

impl MintShard {
    /// Whether this shard owns `mint`.
    pub fn owns(&self, mint: &Pubkey) -> bool {
        shard_for(mint, self.count) == self.index
    }
}

/// The shard that owns a mint: stable across processes and versions, so
/// several ingest processes split the mints without talking to each other.
pub fn shard_for(mint: &Pubkey, shards: u32) -> u32 {
    let mut head = [0u8; 8];
    head.copy_from_slice(&mint[..8]);
    (u64::from_le_bytes(head) % u64::from(shards.max(1))) as u32
}

/// Settings of the ingest loop.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Bar windows.
    pub windows: Windows,
    /// 0 = emit every change; otherwise coalesce changes of open bars.
    pub emit_interval: Duration,
    /// Only these mints, when several ingest processes split them.
    pub mint_shard: Option<MintShard>,
    /// Bound on distinct mints.
    pub max_mints: usize,
}

/// Counts of one run, reported at the end.
#[derive(Debug, Default, Clone)]
pub struct IngestReport {
    /// Records decoded as TradeEvents.
    pub decoded: u64,
    /// Records rejected by the decoder: too short, wrong discriminator, bad bool.
    pub rejected: [u64; 3],
    /// Trades of mints owned by another `--mint-shard`.
    pub other_shard: u64,
    /// Bars handed to the producer.
    pub sent: u64,
    /// Bars the producer refused for good (logged).
    pub send_failed: u64,
    /// Bars still unacknowledged when the process stopped.
    pub unflushed: i32,
    /// What the aggregator counted.
    pub aggregate: crate::aggregate::AggregateStats,
    /// What the source counted.
    pub source: String,
}

impl fmt::Display for IngestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.aggregate;
        write!(
            f,
            "{}; decoded {}, rejected {} (short {}, other event {}, bad bool {}), no price {}, bad timestamp {}, \
             mint limit {}, late {:?}, other shard {}; {} updates ({} closing), {} sent, {} failed, {} unflushed",
            self.source,
            self.decoded,
            self.rejected.iter().sum::<u64>(),
            self.rejected[0],
            self.rejected[1],
            self.rejected[2],
            a.no_price,
            a.bad_timestamp,
            a.mint_limit,
            a.late_by_window,
            self.other_shard,
            a.updates,
            a.closes,
            self.sent,
            self.send_failed,
            self.unflushed,
        )
    }
}

/// Runs ingest until the source ends or shutdown is requested. `restored`
/// are the series' last states from Kafka (a restart): their open bars
/// continue where they were.
pub async fn run(
    config: IngestConfig,
    mut source: Source,
    mut sink: KafkaSink,
    restored: Vec<Bar>,
    shutdown: Shutdown,
) -> IngestReport {
    let policy = if config.emit_interval.is_zero() { EmitPolicy::EveryChange } else { EmitPolicy::Coalesce };
    let mut agg = Aggregator::with_max_mints(&config.windows, policy, config.max_mints);
    let owned = restored.iter().filter(|b| config.mint_shard.is_none_or(|s| s.owns(&b.mint)));
    let continued = owned.filter(|bar| agg.restore(bar)).count();
    if continued > 0 {
        tracing::info!(series = continued, "continuing series from their last state in Kafka");
    }
    let mut out: Vec<Bar> = Vec::with_capacity(MAX_BATCH * config.windows.len());
    let mut report = IngestReport::default();
    let mut next_flush = Instant::now() + config.emit_interval;
    let mut next_report = Instant::now() + REPORT_EVERY;
    let wall_clock = source.clock() == ClockKind::Wall;
    let mut finished = false;
    while !shutdown.requested() && !finished {
        let filled = source.fill(MAX_BATCH, |bytes| decode_and_apply(bytes, &config, &mut agg, &mut out, &mut report));
        if wall_clock {
            agg.advance_clock(unix_now_s(), &mut out);
        }
        if policy == EmitPolicy::Coalesce && Instant::now() >= next_flush {
            agg.flush_changes(&mut out);
            next_flush = Instant::now() + config.emit_interval;
        }
        send_all(&mut sink, &mut out, &mut report, &shutdown).await;
        sink.poll();
        if Instant::now() >= next_report {
            tracing::info!(stats = %progress(&agg, &report, &sink), "ingest");
            next_report = Instant::now() + REPORT_EVERY;
        }
        match filled {
            Filled::Records(_) => glommio::yield_if_needed().await,
            Filled::Idle(wait) => sleep(wait.min(MAX_IDLE)).await,
            Filled::Finished => finished = true,
        }
    }
    if finished {
        // End of a replay: every open bar is complete by definition.
        agg.close_all(&mut out);
    } else {
        // Shutdown of a live source: open bars stay open so a restarted
        // ingest can continue them; only what is queued is flushed.
        agg.flush_changes(&mut out);
    }
    send_all(&mut sink, &mut out, &mut report, &shutdown).await;
    report.unflushed = sink.flush(FLUSH_TIMEOUT);
    report.aggregate = agg.stats().clone();
    report.source = source.summary();
    report
}

fn decode_and_apply(
    bytes: &[u8],
    config: &IngestConfig,
    agg: &mut Aggregator,
    out: &mut Vec<Bar>,
    report: &mut IngestReport,
) {
    let trade = match TradeEvent::decode(bytes) {
        Ok(trade) => trade,
        Err(error) => {
            let kind = match error {
                DecodeError::TooShort { .. } => 0,
                DecodeError::WrongDiscriminator { .. } => 1,
                DecodeError::BadBool { .. } => 2,
            };
            if report.rejected[kind] == 0 {
                tracing::warn!(%error, "rejected record (first of its kind; the rest are counted)");
            }
            report.rejected[kind] += 1;
            return;
        }
    };
    report.decoded += 1;
    if config.mint_shard.is_some_and(|shard| !shard.owns(&trade.mint)) {
        report.other_shard += 1;
        return;
    }
    if let Err(Rejected::MintLimit) = agg.apply(&trade, out)
        && agg.stats().mint_limit == 1
    {
        tracing::warn!(max_mints = config.max_mints, "mint limit reached: trades of new mints are dropped");
    }
}

/// Hands every bar in `out` to the producer, in order. When librdkafka's
/// queue is full the loop waits for the broker (counted); nothing is dropped
/// unless shutdown is requested while the broker stays away.
async fn send_all(sink: &mut KafkaSink, out: &mut Vec<Bar>, report: &mut IngestReport, shutdown: &Shutdown) {
    let mut waiting_since: Option<Instant> = None;
    for bar in out.drain(..) {
        loop {
            match sink.try_send(&bar) {
                Ok(()) => report.sent += 1,
                Err(SendError::QueueFull) if !shutdown.requested() => {
                    if waiting_since.is_none() {
                        tracing::warn!("producer queue full: ingest pauses until the broker catches up");
                        waiting_since = Some(Instant::now());
                    }
                    sink.poll();
                    sleep(QUEUE_FULL_BACKOFF).await;
                    continue;
                }
                Err(error) => {
                    report.send_failed += 1;
                    tracing::error!(%error, window_s = bar.window_s, open_time_s = bar.open_time_s, "bar not sent");
                }
            }
            break;
        }
    }
    if let Some(since) = waiting_since {
        tracing::info!(waited_ms = since.elapsed().as_millis() as u64, "producer queue has room again");
    }
}

fn progress(agg: &Aggregator, report: &IngestReport, sink: &KafkaSink) -> String {
    let stats = sink.stats();
    let a = agg.stats();
    format!(
        "decoded={} rejected={} mints={} updates={} closes={} late={:?} delivered={} in_flight={}",
        report.decoded,
        report.rejected.iter().sum::<u64>(),
        agg.mint_count(),
        a.updates,
        a.closes,
        a.late_by_window,
        stats.delivered.load(std::sync::atomic::Ordering::Relaxed),
        sink.in_flight(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_mints_deterministically() {
        let mut owned = [0u32; 3];
        for i in 0..300u32 {
            let mut mint = [0u8; 32];
            mint[..4].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_le_bytes());
            let shard = shard_for(&mint, 3);
            owned[shard as usize] += 1;
            let owners = (0..3).filter(|&index| MintShard { index, count: 3 }.owns(&mint)).count();
            assert_eq!(owners, 1);
        }
        assert!(owned.iter().all(|&n| n > 50), "{owned:?}");
        assert_eq!(shard_for(&[9; 32], 1), 0);
    }
}
