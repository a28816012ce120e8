//! Ingest counters and their Prometheus text form, for `/metrics` of
//! `serve` and of `ingest --metrics-listen`.
//!
//! The ingest loop counts in plain integers ([`super::IngestReport`]) and
//! publishes them here once per turn with relaxed stores: no atomic
//! operation per trade, no lock, and the readers (HTTP threads) see values
//! at most one turn old. A live source registers its own counters
//! ([`RenderMetrics`]) to be rendered after these.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::codec::borsh::RejectKind;
use crate::metrics::{RenderMetrics, labeled, sample};

/// Every ingest counter.
#[derive(Default)]
pub struct IngestMetrics {
    /// Records decoded as events of the two programs.
    pub decoded: AtomicU64,
    /// Records rejected, per [`RejectKind`].
    pub rejected: [AtomicU64; 3],
    /// Decoded events that are not trades (creates, completions, pools).
    pub not_trades: AtomicU64,
    /// Trades without a price (zero reserves).
    pub no_price: AtomicU64,
    /// Trades dropped: their pool stayed unknown.
    pub unknown_pool: AtomicU64,
    /// Trades dropped: their quote's decimals stayed unknown.
    pub unknown_quote: AtomicU64,
    /// Trades in another quote than their mint's series.
    pub quote_mismatch: AtomicU64,
    /// Trades waiting for a lookup now.
    pub parked: AtomicU64,
    /// Trades of mints owned by another `--mint-shard`.
    pub other_shard: AtomicU64,
    /// Trades dropped at the mint limit.
    pub mint_limit: AtomicU64,
    /// Trades refused for an impossible timestamp.
    pub bad_timestamp: AtomicU64,
    /// Trades refused for an impossible slot or event index.
    pub bad_position: AtomicU64,
    /// Late trades per window, labels in window order.
    pub late: OnceLock<Vec<(String, AtomicU64)>>,
    /// Trades applied.
    pub trades_applied: AtomicU64,
    /// Mints tracked now.
    pub mints: AtomicU64,
    /// Mints evicted after going idle.
    pub evicted: AtomicU64,
    /// Evicted mints that came back.
    pub returned: AtomicU64,
    /// Bar updates produced to Kafka.
    pub bars_produced: AtomicU64,
    /// Closing updates among them.
    pub closes: AtomicU64,
    /// Bars the producer refused for good.
    pub send_failed: AtomicU64,
    /// Bars queued in the producer, not yet acknowledged.
    pub producer_queue: AtomicU64,
    /// The resume slot bars carry now (live source).
    pub resume_slot: AtomicU64,
    /// The live source's own counters, if any.
    pub source: OnceLock<Arc<dyn RenderMetrics>>,
}

impl std::fmt::Debug for IngestMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestMetrics").field("decoded", &self.decoded).finish_non_exhaustive()
    }
}

/// Stores a value (relaxed: readers want a recent value, not an order).
#[inline]
pub fn store(counter: &AtomicU64, value: u64) {
    counter.store(value, Ordering::Relaxed);
}

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl IngestMetrics {
    /// `None` when the ingest side is healthy, else why not.
    pub fn unhealthy(&self) -> Option<String> {
        self.source.get().and_then(|s| s.unhealthy())
    }

    /// Renders every counter in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        sample(
            &mut out,
            "klinecast_ingest_events_decoded_total",
            "Event records decoded",
            "counter",
            load(&self.decoded),
        );
        labeled(
            &mut out,
            "klinecast_ingest_events_rejected_total",
            "Records refused by the decoders, by reason",
            "counter",
            "reason",
            RejectKind::ALL.iter().map(|k| (k.label(), load(&self.rejected[*k as usize]))),
        );
        sample(
            &mut out,
            "klinecast_ingest_not_trades_total",
            "Decoded events that are not trades",
            "counter",
            load(&self.not_trades),
        );
        labeled(
            &mut out,
            "klinecast_ingest_trades_dropped_total",
            "Trades not applied, by reason",
            "counter",
            "reason",
            [
                ("no_price", load(&self.no_price)),
                ("unknown_pool", load(&self.unknown_pool)),
                ("unknown_quote", load(&self.unknown_quote)),
                ("quote_mismatch", load(&self.quote_mismatch)),
                ("mint_limit", load(&self.mint_limit)),
                ("bad_timestamp", load(&self.bad_timestamp)),
                ("bad_position", load(&self.bad_position)),
                ("other_shard", load(&self.other_shard)),
            ],
        );
        if let Some(late) = self.late.get() {
            labeled(
                &mut out,
                "klinecast_ingest_late_trades_total",
                "Trades older than their bar, dropped, by window",
                "counter",
                "window",
                late.iter().map(|(w, v)| (w.as_str(), load(v))),
            );
        }
        let plain: [(&str, &str, &str, &AtomicU64); 10] = [
            ("klinecast_ingest_trades_parked", "Trades waiting for a pool or quote lookup", "gauge", &self.parked),
            ("klinecast_ingest_trades_applied_total", "Trades applied to bars", "counter", &self.trades_applied),
            ("klinecast_ingest_mints", "Mints tracked now", "gauge", &self.mints),
            ("klinecast_ingest_mints_evicted_total", "Idle mints evicted", "counter", &self.evicted),
            ("klinecast_ingest_mints_returned_total", "Evicted mints that traded again", "counter", &self.returned),
            ("klinecast_ingest_bars_produced_total", "Bar updates produced to Kafka", "counter", &self.bars_produced),
            ("klinecast_ingest_closing_bars_total", "Closing bar updates", "counter", &self.closes),
            ("klinecast_ingest_send_failed_total", "Bars the producer refused for good", "counter", &self.send_failed),
            (
                "klinecast_ingest_producer_queue",
                "Bars queued in the producer, unacknowledged",
                "gauge",
                &self.producer_queue,
            ),
            ("klinecast_ingest_resume_slot", "Slot a restarted live source resumes from", "gauge", &self.resume_slot),
        ];
        for (name, help, kind, value) in plain {
            sample(&mut out, name, help, kind, load(value));
        }
        if let Some(source) = self.source.get() {
            source.render(&mut out);
        }
        out
    }
}
