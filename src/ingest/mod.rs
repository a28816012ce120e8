//! The ingest role: source → decode → price → aggregate → Kafka, on one
//! pinned executor. This loop owns the pacing (clock ticks, emit interval,
//! producer back-pressure, shutdown); the stages it calls do no waiting of
//! their own.
//!
//! - [`checkpoint`]: the resume slot bars carry, for a restarted live source.
//! - [`parked`]: trades waiting for a pool or quote lookup.
//! - [`metrics`]: the counters `/metrics` shows; [`http`]: `--metrics-listen`.

pub mod checkpoint;
pub mod http;
pub mod metrics;
pub mod parked;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::timer::sleep;

use crate::aggregate::{
    AggregateStats, Aggregator, AggregatorConfig, ClockMode, EmitPolicy, Rejected, SeqOrigin, Update, Windows, windows,
};
use crate::codec::amm::PoolMints;
use crate::codec::bar::Bar;
use crate::codec::borsh::{Pubkey, RejectKind};
use crate::market::{Market, Skip, Unpriced};
use crate::runtime::Shutdown;
use crate::sink::{KafkaSink, SendError};
use crate::source::mock::unix_now_s;
use crate::source::{ClockKind, Fact, Filled, Lookup, MAX_BATCH, Record, Source};
use checkpoint::Checkpoint;
use metrics::{IngestMetrics, store};
use parked::{Parked, Parking};

/// How long the loop waits before retrying a send when librdkafka's queue
/// is full (the bound is librdkafka's `queue.buffering.max.messages`).
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(5);

/// Longest idle sleep, so the wall clock closes bars within this of their
/// end and shutdown is noticed promptly.
const MAX_IDLE: Duration = Duration::from_millis(100);

/// How often a progress line is logged.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// How often idle mints are evicted and stale parked trades dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// How long shutdown waits for the broker to acknowledge queued bars.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// Default bound on PumpSwap pools known at once.
pub const DEFAULT_MAX_POOLS: usize = 500_000;

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
    /// Bound on mints tracked at once.
    pub max_mints: usize,
    /// Bound on evicted mints whose `seq`s are kept.
    pub max_evicted: usize,
    /// Bound on PumpSwap pools known.
    pub max_pools: usize,
    /// Pools known from the start (a replay's pool map).
    pub pools: Vec<PoolMints>,
    /// Quote decimals known from the start, beyond the built-in table.
    pub quote_decimals: Vec<(Pubkey, u8)>,
}

impl IngestConfig {
    /// Settings for `windows` with every other value at its default.
    pub fn new(windows: Windows) -> Self {
        Self {
            windows,
            emit_interval: Duration::ZERO,
            mint_shard: None,
            max_mints: crate::aggregate::DEFAULT_MAX_MINTS,
            max_evicted: crate::aggregate::DEFAULT_MAX_EVICTED,
            max_pools: DEFAULT_MAX_POOLS,
            pools: Vec::new(),
            quote_decimals: Vec::new(),
        }
    }
}

/// Counts of one run, reported at the end and published to `/metrics`.
#[derive(Debug, Default, Clone)]
pub struct IngestReport {
    /// Records decoded as events of the two programs.
    pub decoded: u64,
    /// Records rejected by the decoders, per [`RejectKind`] (short, other
    /// event, bad value).
    pub rejected: [u64; 3],
    /// Decoded events that are not trades.
    pub not_trades: u64,
    /// Trades without a price (zero reserves).
    pub no_price: u64,
    /// Trades whose pool stayed unknown.
    pub unknown_pool: u64,
    /// Trades whose quote's decimals stayed unknown.
    pub unknown_quote: u64,
    /// Trades of mints owned by another `--mint-shard`.
    pub other_shard: u64,
    /// Bars handed to the producer.
    pub sent: u64,
    /// Bars the producer refused for good (logged).
    pub send_failed: u64,
    /// Bars still unacknowledged when the process stopped.
    pub unflushed: i32,
    /// What the aggregator counted.
    pub aggregate: AggregateStats,
    /// What the source counted.
    pub source: String,
}

impl fmt::Display for IngestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.aggregate;
        write!(
            f,
            "{}; decoded {}, rejected {} (short {}, other event {}, bad value {}), not trades {}, no price {}, \
             unknown pool {}, unknown quote {}, quote mismatch {}, bad timestamp {}, bad position {}, \
             mint limit {}, late {:?}, other shard {}, evicted {}; {} updates ({} closing), {} sent, {} failed, {} unflushed",
            self.source,
            self.decoded,
            self.rejected.iter().sum::<u64>(),
            self.rejected[0],
            self.rejected[1],
            self.rejected[2],
            self.not_trades,
            self.no_price + a.no_price,
            self.unknown_pool,
            self.unknown_quote,
            a.quote_mismatch,
            a.bad_timestamp,
            a.bad_position,
            a.mint_limit,
            a.late_by_window,
            self.other_shard,
            a.evicted,
            a.updates,
            a.closes,
            self.sent,
            self.send_failed,
            self.unflushed,
        )
    }
}

/// The state of the ingest loop between turns.
struct Ingest {
    config: IngestConfig,
    agg: Aggregator,
    market: Market,
    parked: Parked,
    /// Lookups to ask the source for, after the current fill.
    lookups: Vec<Lookup>,
    /// Whether the source can look things up (else unknowns are counted).
    can_look_up: bool,
    /// Updates to produce.
    out: Vec<Update>,
    report: IngestReport,
    checkpoint: Checkpoint,
    /// Every trade applied so far is in `out`, so the next send completes a
    /// batch for the checkpoint (every turn without an emit interval; flush
    /// turns with one).
    emitted_pending: bool,
    metrics: Arc<IngestMetrics>,
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
    metrics: Arc<IngestMetrics>,
) -> IngestReport {
    let mut ingest = Ingest::new(config, &source, metrics);
    ingest.restore(&restored);
    let clock = source.clock();
    let mut next_flush = Instant::now() + ingest.config.emit_interval;
    let mut next_report = Instant::now() + REPORT_EVERY;
    let mut next_sweep = Instant::now() + SWEEP_EVERY;
    let mut finished = false;
    while !shutdown.requested() && !finished {
        let filled = source.fill(MAX_BATCH, |record| ingest.on_record(record, true));
        source.take_facts(|fact| ingest.on_fact(fact));
        for lookup in ingest.lookups.drain(..) {
            source.look_up(lookup);
        }
        ingest.tick(clock, &source, &mut next_flush);
        let resume_slot = ingest.checkpoint.resume_slot(sink.acked(), source.safe_slot());
        send_all(&mut sink, &ingest.agg, &mut ingest.out, &mut ingest.report, resume_slot, &shutdown).await;
        ingest.after_send(&sink, resume_slot);
        sink.poll();
        if Instant::now() >= next_sweep {
            ingest.sweep();
            next_sweep = Instant::now() + SWEEP_EVERY;
        }
        if Instant::now() >= next_report {
            tracing::info!(stats = %progress(&ingest, &sink), "ingest");
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
        ingest.agg.close_all(&mut ingest.out);
    } else {
        // Shutdown of a live source: open bars stay open so a restarted
        // ingest can continue them; only what is queued is flushed.
        ingest.agg.flush_changes(&mut ingest.out);
    }
    let resume_slot = ingest.checkpoint.resume_slot(sink.acked(), source.safe_slot());
    send_all(&mut sink, &ingest.agg, &mut ingest.out, &mut ingest.report, resume_slot, &shutdown).await;
    ingest.report.unflushed = sink.flush(FLUSH_TIMEOUT);
    ingest.after_send(&sink, resume_slot);
    let mut report = ingest.report;
    report.aggregate = ingest.agg.stats().clone();
    report.source = source.summary();
    report
}

impl Ingest {
    fn new(config: IngestConfig, source: &Source, metrics: Arc<IngestMetrics>) -> Self {
        let policy = if config.emit_interval.is_zero() { EmitPolicy::EveryChange } else { EmitPolicy::Coalesce };
        let live = source.clock() == ClockKind::Live;
        let agg = Aggregator::with_config(AggregatorConfig {
            clock: if live { ClockMode::External } else { ClockMode::Event },
            seq_origin: if live { SeqOrigin::Time } else { SeqOrigin::One },
            max_mints: config.max_mints,
            max_evicted: config.max_evicted,
            ..AggregatorConfig::new(&config.windows, policy)
        });
        let mut market = Market::new(config.max_pools);
        for pool in &config.pools {
            market.learn_pool(pool);
        }
        for (mint, decimals) in &config.quote_decimals {
            market.learn_decimals(mint, *decimals);
        }
        let _ = metrics
            .late
            .set(config.windows.seconds().iter().map(|&w| (windows::label(w), Default::default())).collect());
        Self {
            out: Vec::with_capacity(MAX_BATCH * config.windows.len()),
            agg,
            market,
            parked: Parked::default(),
            lookups: Vec::new(),
            can_look_up: source.can_look_up(),
            report: IngestReport::default(),
            checkpoint: Checkpoint::default(),
            emitted_pending: false,
            metrics,
            config,
        }
    }

    fn restore(&mut self, restored: &[Bar]) {
        let shard = self.config.mint_shard;
        let owned = restored.iter().filter(|b| shard.is_none_or(|s| s.owns(&b.mint)));
        let continued = owned.filter(|bar| self.agg.restore(bar)).count();
        if continued > 0 {
            tracing::info!(series = continued, "continuing series from their last state in Kafka");
        }
    }

    /// Decodes, prices and applies one record; parks it if the market is
    /// missing something the source can look up (and `may_park`).
    #[inline]
    fn on_record(&mut self, record: Record<'_>, may_park: bool) {
        let (agg, out, report, checkpoint) = (&mut self.agg, &mut self.out, &mut self.report, &mut self.checkpoint);
        let (mint_shard, max_mints) = (self.config.mint_shard, self.config.max_mints);
        // The trade is applied where the market makes it (`with_trade`).
        let applied = self.market.with_trade(record.program, record.bytes, record.position, |trade| {
            report.decoded += 1;
            if mint_shard.is_some_and(|shard| !shard.owns(&trade.mint)) {
                report.other_shard += 1;
                return;
            }
            checkpoint.applied(trade.position.slot);
            match agg.apply(trade, out) {
                Err(Rejected::MintLimit) if agg.stats().mint_limit == 1 => {
                    tracing::warn!(max_mints, "mint limit reached: trades of new mints are dropped")
                }
                Err(Rejected::QuoteMismatch) if agg.stats().quote_mismatch == 1 => {
                    tracing::warn!(mint = %bs58::encode(trade.mint).into_string(), "trade in another quote than the mint's series: dropped and counted")
                }
                _ => {}
            }
        });
        match applied {
            Ok(()) => {}
            Err(Skip::Decode(error)) => {
                let kind = error.kind() as usize;
                if self.report.rejected[kind] == 0 {
                    tracing::warn!(%error, "rejected record (first of its kind; the rest are counted)");
                }
                self.report.rejected[kind] += 1;
            }
            Err(Skip::Unpriced(unpriced)) => {
                self.report.decoded += 1;
                self.unpriced(unpriced, record, may_park);
            }
        }
    }

    /// A decoded record that gave no trade.
    #[cold]
    fn unpriced(&mut self, unpriced: Unpriced, record: Record<'_>, may_park: bool) {
        match unpriced {
            Unpriced::NotATrade => self.report.not_trades += 1,
            Unpriced::NoPrice => self.report.no_price += 1,
            Unpriced::UnknownPool(pool) => self.unknown(Lookup::Pool(pool), record, may_park),
            Unpriced::UnknownQuote(mint) => self.unknown(Lookup::Decimals(mint), record, may_park),
        }
    }

    /// A record waits for `lookup`, or is counted as unknown.
    #[cold]
    fn unknown(&mut self, lookup: Lookup, record: Record<'_>, may_park: bool) {
        let key = lookup.key();
        let parking = if may_park && self.can_look_up { self.parked.park(key, record) } else { Parking::Full };
        match parking {
            Parking::First => self.lookups.push(lookup),
            Parking::Queued => {}
            Parking::Full => self.count_unknown(&lookup, 1),
        }
    }

    fn count_unknown(&mut self, lookup: &Lookup, records: u64) {
        match lookup {
            Lookup::Pool(_) => self.report.unknown_pool += records,
            Lookup::Decimals(_) => self.report.unknown_quote += records,
        }
    }

    /// Learns what the source found out and applies the records that waited
    /// for it.
    fn on_fact(&mut self, fact: Fact) {
        let key = match fact {
            Fact::Pool(mints) => {
                self.market.learn_pool(&mints);
                mints.pool
            }
            Fact::Decimals { mint, decimals } => {
                self.market.learn_decimals(&mint, decimals);
                mint
            }
            Fact::Missing(lookup) => {
                let records = self.parked.take(&lookup.key());
                self.count_unknown(&lookup, records.len() as u64);
                return;
            }
        };
        // Applied without parking again: what is still unknown is counted.
        for parked in self.parked.take(&key) {
            self.on_record(parked.record(), false);
        }
    }

    /// Moves the clock and flushes coalesced changes when due.
    fn tick(&mut self, clock: ClockKind, source: &Source, next_flush: &mut Instant) {
        match clock {
            ClockKind::Wall => {
                // A scheduled mock holds the clock at its next trade's second.
                let now = unix_now_s();
                let held = source.hold_clock_at().map_or(now, |t| now.min(t));
                self.agg.advance_clock(held, &mut self.out);
            }
            ClockKind::Live => {
                let now = unix_now_s() - source.close_delay_s();
                // Not past a trade the source or a lookup still holds back.
                let waiting = [source.hold_clock_at(), self.parked.earliest_s()].into_iter().flatten().min();
                let held = waiting.map_or(now, |t| now.min(t));
                self.agg.advance_clock(held, &mut self.out);
            }
            ClockKind::Event => {}
        }
        if self.config.emit_interval.is_zero() {
            self.emitted_pending = true;
        } else if Instant::now() >= *next_flush {
            self.agg.flush_changes(&mut self.out);
            *next_flush = Instant::now() + self.config.emit_interval;
            self.emitted_pending = true;
        }
    }

    /// After a send: records the batch for the resume point and publishes
    /// the counters.
    fn after_send(&mut self, sink: &KafkaSink, resume_slot: u64) {
        if std::mem::take(&mut self.emitted_pending) {
            self.checkpoint.emitted(sink.last_seq());
        }
        self.publish(sink, resume_slot);
    }

    /// Evicts idle mints and drops parked trades whose lookup never came.
    fn sweep(&mut self) {
        let evicted = self.agg.evict_idle();
        if evicted > 0 {
            tracing::debug!(evicted, mints = self.agg.mint_count(), "evicted idle mints");
        }
        let expired = self.parked.expire(Instant::now());
        if expired > 0 {
            tracing::warn!(trades = expired, "trades waited too long for a pool or quote lookup; dropped and counted");
            self.report.unknown_pool += expired as u64;
        }
    }

    fn publish(&self, sink: &KafkaSink, resume_slot: u64) {
        let (m, r, a) = (&*self.metrics, &self.report, self.agg.stats());
        store(&m.decoded, r.decoded);
        for kind in RejectKind::ALL {
            store(&m.rejected[kind as usize], r.rejected[kind as usize]);
        }
        store(&m.not_trades, r.not_trades);
        store(&m.no_price, r.no_price + a.no_price);
        store(&m.unknown_pool, r.unknown_pool);
        store(&m.unknown_quote, r.unknown_quote);
        store(&m.quote_mismatch, a.quote_mismatch);
        store(&m.parked, self.parked.len() as u64);
        store(&m.other_shard, r.other_shard);
        store(&m.mint_limit, a.mint_limit);
        store(&m.bad_timestamp, a.bad_timestamp);
        store(&m.bad_position, a.bad_position);
        if let Some(late) = m.late.get() {
            for ((_, counter), value) in late.iter().zip(&a.late_by_window) {
                store(counter, *value);
            }
        }
        store(&m.trades_applied, a.trades_applied);
        store(&m.mints, self.agg.mint_count() as u64);
        store(&m.evicted, a.evicted);
        store(&m.returned, a.returned);
        store(&m.bars_produced, r.sent);
        store(&m.closes, a.closes);
        store(&m.send_failed, r.send_failed);
        store(&m.producer_queue, sink.in_flight().max(0) as u64);
        store(&m.resume_slot, if resume_slot == u64::MAX { 0 } else { resume_slot });
    }
}

/// Hands every bar in `out` to the producer, in order, stamped with the
/// resume slot. When librdkafka's queue is full the loop waits for the
/// broker (counted); nothing is dropped unless shutdown is requested while
/// the broker stays away.
async fn send_all(
    sink: &mut KafkaSink,
    agg: &Aggregator,
    out: &mut Vec<Update>,
    report: &mut IngestReport,
    resume_slot: u64,
    shutdown: &Shutdown,
) {
    let resume_slot = if resume_slot == u64::MAX { 0 } else { resume_slot };
    let mut waiting_since: Option<Instant> = None;
    for update in out.drain(..) {
        let bar = agg.bar(&update);
        loop {
            match sink.try_send(&bar, resume_slot) {
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

fn progress(ingest: &Ingest, sink: &KafkaSink) -> String {
    let stats = sink.stats();
    let (r, a) = (&ingest.report, ingest.agg.stats());
    format!(
        "decoded={} rejected={} mints={} updates={} closes={} late={:?} parked={} delivered={} in_flight={}",
        r.decoded,
        r.rejected.iter().sum::<u64>(),
        ingest.agg.mint_count(),
        a.updates,
        a.closes,
        a.late_by_window,
        ingest.parked.len(),
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
