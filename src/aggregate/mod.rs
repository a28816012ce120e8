//! Turns trades into OHLCV bars, per (mint, window) series (SPEC §3).
//!
//! One [`Aggregator`] lives on one ingest core and is never shared, so nothing
//! here locks. It owns the open bar of every series and a clock; it pushes
//! every update it emits into a caller-provided buffer and never does I/O.
//!
//! The rules, in one place:
//! - A bar covers `[open_time, open_time + window)`, `open_time =
//!   floor(ts / window) * window`; the first trade sets `open`.
//! - The clock is the latest time seen: trade timestamps, plus the wall clock
//!   when the source is live ([`Aggregator::advance_clock`]). Every bar whose
//!   end is at or before the clock is closed; its closing update always goes
//!   out. A trade of a later bar of the same mint moves the clock past the
//!   open bar's end, so it closes that bar first.
//! - A trade whose bar already ended by the clock is late: counted per window
//!   and dropped, never applied to a closed bar.
//! - With an emit interval, changes of open bars are coalesced until
//!   [`Aggregator::flush_changes`]; with none, every change is emitted.
//! - `seq` grows by one per emitted update of a series.

pub mod windows;

use rustc_hash::FxHashMap;
use thiserror::Error;

use crate::codec::bar::Bar;
use crate::codec::trade::{Pubkey, TradeEvent};
pub use windows::Windows;

/// Trade timestamps accepted: unix seconds from 0 to 2^40 (year 36812).
/// Anything else is corrupt input, refused before bar arithmetic could
/// overflow.
pub const VALID_TIMESTAMPS_S: std::ops::Range<i64> = 0..(1 << 40);

/// Default bound on distinct mints tracked by one aggregator.
pub const DEFAULT_MAX_MINTS: usize = 100_000;

/// How the aggregator emits updates of open bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitPolicy {
    /// Every change of an open bar is emitted at once.
    EveryChange,
    /// Changes are coalesced; the owner calls
    /// [`Aggregator::flush_changes`] once per interval.
    Coalesce,
}

/// Why a trade was not applied to any window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Rejected {
    /// Virtual token reserves of zero: no price can be derived.
    #[error("trade has no price (virtual token reserves are zero)")]
    NoPrice,
    /// The bound on distinct mints was reached; new mints are refused so
    /// memory stays bounded.
    #[error("mint limit reached; trade for a new mint dropped")]
    MintLimit,
    /// A timestamp outside [`VALID_TIMESTAMPS_S`].
    #[error("trade timestamp out of range")]
    BadTimestamp,
}

/// Counters of what the aggregator did, for logs and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AggregateStats {
    /// Trades applied to at least one window.
    pub trades_applied: u64,
    /// Late trades dropped, per window (same order as [`Windows`]).
    pub late_by_window: Vec<u64>,
    /// Trades rejected because they carry no price.
    pub no_price: u64,
    /// Trades dropped because the mint limit was reached.
    pub mint_limit: u64,
    /// Trades refused for a timestamp outside [`VALID_TIMESTAMPS_S`].
    pub bad_timestamp: u64,
    /// Updates emitted, closing ones included.
    pub updates: u64,
    /// Closing updates emitted.
    pub closes: u64,
}

/// One (mint, window) series.
#[derive(Debug, Clone, Default)]
struct Series {
    /// The bar being built, if a trade arrived since the last one closed.
    open: Option<Bar>,
    /// Sequence number of the last emitted update.
    seq: u64,
    /// The open bar changed since it was last emitted (coalescing only).
    dirty: bool,
}

/// Builds bars for every (mint, window) series of one ingest core.
#[derive(Debug)]
pub struct Aggregator {
    /// Window lengths, in seconds.
    windows: Vec<i64>,
    /// Mint → index of its first series in `series`.
    mints: FxHashMap<Pubkey, usize>,
    /// `windows.len()` series per mint, mint-major.
    series: Vec<Series>,
    /// Latest time seen, unix seconds.
    clock_s: i64,
    /// Earliest end among open bars (`i64::MAX` when none), so the clock only
    /// scans the series when some bar is due.
    next_close_s: i64,
    /// How changes of open bars go out.
    policy: EmitPolicy,
    /// Series with unsent changes, each at most once (coalescing only).
    dirty: Vec<usize>,
    /// Bound on `mints`.
    max_mints: usize,
    /// What happened so far.
    stats: AggregateStats,
}

impl Aggregator {
    /// An aggregator for `windows`, emitting per `policy`.
    pub fn new(windows: &Windows, policy: EmitPolicy) -> Self {
        Self::with_max_mints(windows, policy, DEFAULT_MAX_MINTS)
    }

    /// As [`Aggregator::new`] with an explicit bound on distinct mints.
    pub fn with_max_mints(windows: &Windows, policy: EmitPolicy, max_mints: usize) -> Self {
        Self {
            windows: windows.seconds().iter().map(|&w| i64::from(w)).collect(),
            mints: FxHashMap::default(),
            series: Vec::new(),
            clock_s: i64::MIN,
            next_close_s: i64::MAX,
            policy,
            dirty: Vec::new(),
            max_mints,
            stats: AggregateStats { late_by_window: vec![0; windows.len()], ..Default::default() },
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &AggregateStats {
        &self.stats
    }

    /// The clock, unix seconds (`i64::MIN` before the first trade or tick).
    pub fn clock_s(&self) -> i64 {
        self.clock_s
    }

    /// Number of distinct mints seen.
    pub fn mint_count(&self) -> usize {
        self.mints.len()
    }

    /// Applies one trade: first moves the clock to its timestamp (closing
    /// bars that ended), then updates the open bar of each window.
    pub fn apply(&mut self, trade: &TradeEvent, out: &mut Vec<Bar>) -> Result<(), Rejected> {
        let price = trade.price_sol_per_token().ok_or_else(|| {
            self.stats.no_price += 1;
            Rejected::NoPrice
        })?;
        if !VALID_TIMESTAMPS_S.contains(&trade.timestamp) {
            self.stats.bad_timestamp += 1;
            return Err(Rejected::BadTimestamp);
        }
        let first = self.series_of(&trade.mint)?;
        self.advance_clock(trade.timestamp, out);
        let mut applied = false;
        for w in 0..self.windows.len() {
            let window_s = self.windows[w];
            let open_time_s = trade.timestamp.div_euclid(window_s) * window_s;
            if open_time_s.saturating_add(window_s) <= self.clock_s {
                // Ended by the clock: the bar is closed (or was never opened
                // and can no longer be).
                self.stats.late_by_window[w] += 1;
                continue;
            }
            applied = true;
            self.update_series(first + w, open_time_s, trade, price, out);
        }
        if applied {
            self.stats.trades_applied += 1;
        }
        Ok(())
    }

    /// Moves the clock forward to `now_s` (never back) and closes every bar
    /// whose end is at or before it.
    pub fn advance_clock(&mut self, now_s: i64, out: &mut Vec<Bar>) {
        if now_s <= self.clock_s {
            return;
        }
        self.clock_s = now_s;
        if now_s >= self.next_close_s {
            self.close_where(|end_s| end_s <= now_s, out);
        }
    }

    /// Emits the latest state of every open bar that changed since it was
    /// last emitted (coalescing policy).
    pub fn flush_changes(&mut self, out: &mut Vec<Bar>) {
        for idx in std::mem::take(&mut self.dirty) {
            let series = &mut self.series[idx];
            if !std::mem::take(&mut series.dirty) {
                continue;
            }
            if let Some(bar) = series.open {
                emit(series, &mut self.stats, bar, out);
            }
        }
    }

    /// Closes every open bar (end of a replay, or shutdown).
    pub fn close_all(&mut self, out: &mut Vec<Bar>) {
        self.close_where(|_| true, out);
    }

    /// Continues a series from its last known update, e.g. the last state in
    /// Kafka after a restart. Ignored when the series already has updates or
    /// when the bar has ended by the clock.
    pub fn restore(&mut self, bar: &Bar) -> bool {
        let Some(w) = self.windows.iter().position(|&w| w == i64::from(bar.window_s)) else {
            return false;
        };
        let Ok(first) = self.series_of(&bar.mint) else {
            return false;
        };
        let series = &mut self.series[first + w];
        if series.seq >= bar.seq {
            return false;
        }
        series.seq = bar.seq;
        let end_s = bar.open_time_s.saturating_add(i64::from(bar.window_s));
        if bar.closed || end_s <= self.clock_s {
            return true;
        }
        series.open = Some(Bar { produced_ns: 0, ..*bar });
        self.next_close_s = self.next_close_s.min(end_s);
        true
    }

    /// Index of the first series of `mint`, registering the mint if new.
    fn series_of(&mut self, mint: &Pubkey) -> Result<usize, Rejected> {
        if let Some(&first) = self.mints.get(mint) {
            return Ok(first);
        }
        if self.mints.len() >= self.max_mints {
            self.stats.mint_limit += 1;
            return Err(Rejected::MintLimit);
        }
        let first = self.series.len();
        self.series.resize_with(first + self.windows.len(), Series::default);
        self.mints.insert(*mint, first);
        Ok(first)
    }

    fn update_series(&mut self, idx: usize, open_time_s: i64, trade: &TradeEvent, price: f64, out: &mut Vec<Bar>) {
        let window_s = self.windows[idx % self.windows.len()];
        let series = &mut self.series[idx];
        let bar = match &mut series.open {
            Some(bar) => {
                // Bars that ended are closed by the clock before a trade is
                // applied, so an open bar is always the trade's bar.
                debug_assert_eq!(bar.open_time_s, open_time_s);
                bar.high = bar.high.max(price);
                bar.low = bar.low.min(price);
                bar.close = price;
                bar.trades += 1;
                bar
            }
            open @ None => {
                self.next_close_s = self.next_close_s.min(open_time_s + window_s);
                open.insert(Bar {
                    mint: trade.mint,
                    open_time_s,
                    window_s: window_s as u32,
                    trades: 1,
                    open: price,
                    high: price,
                    low: price,
                    close: price,
                    volume_lamports: 0,
                    volume_tokens: 0,
                    buy_volume_lamports: 0,
                    seq: 0,
                    produced_ns: 0,
                    closed: false,
                })
            }
        };
        bar.volume_lamports = bar.volume_lamports.saturating_add(trade.sol_amount);
        bar.volume_tokens = bar.volume_tokens.saturating_add(trade.token_amount);
        if trade.is_buy {
            bar.buy_volume_lamports = bar.buy_volume_lamports.saturating_add(trade.sol_amount);
        }
        debug_assert!(bar.check().is_ok(), "bar invariant broken: {bar:?}");
        let bar = *bar;
        match self.policy {
            EmitPolicy::EveryChange => emit(series, &mut self.stats, bar, out),
            EmitPolicy::Coalesce if !series.dirty => {
                series.dirty = true;
                self.dirty.push(idx);
            }
            EmitPolicy::Coalesce => {}
        }
    }

    /// Closes the open bars whose end satisfies `due`, in series order, and
    /// recomputes the earliest end of the rest.
    fn close_where(&mut self, due: impl Fn(i64) -> bool, out: &mut Vec<Bar>) {
        let mut next_close_s = i64::MAX;
        let count = self.windows.len();
        for (idx, series) in self.series.iter_mut().enumerate() {
            let Some(bar) = series.open else { continue };
            let end_s = bar.open_time_s + self.windows[idx % count];
            if !due(end_s) {
                next_close_s = next_close_s.min(end_s);
                continue;
            }
            series.open = None;
            series.dirty = false;
            self.stats.closes += 1;
            emit(series, &mut self.stats, Bar { closed: true, ..bar }, out);
        }
        self.next_close_s = next_close_s;
    }
}

/// Stamps the next `seq` of the series on `bar` and pushes it.
fn emit(series: &mut Series, stats: &mut AggregateStats, mut bar: Bar, out: &mut Vec<Bar>) {
    series.seq += 1;
    bar.seq = series.seq;
    stats.updates += 1;
    out.push(bar);
}

#[cfg(test)]
mod tests;
