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
//!
//! How it keeps up with one core's worth of trades (SPEC §7: 20 M/s, about
//! 50 ns per trade for four windows):
//! - The bar of each window that holds a timestamp is computed once per
//!   distinct timestamp ([`Window::hold`]), not once per trade and window.
//! - A series keeps only what differs between its bars (80 bytes; the mint
//!   and window are stored once), and a mint's series are adjacent.
//! - The latest mint is remembered, and other mints are found in a compact
//!   open-addressing index ([`MintIndex`], 8 bytes per entry).
//! - A trade updates a series without branching on whether its bar is open
//!   (which is unpredictable when many mints trade), and each updated bar is
//!   built once, by value, and written to the series and to the output.
//! - Bars are closed from a bitset of open series per window, in series
//!   order, so the clock never scans idle series.

pub mod windows;

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

/// Mints per word of the open-series bitsets.
const MINTS_PER_WORD: usize = u64::BITS as usize;

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

/// What one trade adds to the bar of every window.
#[derive(Debug, Clone, Copy)]
struct Fill {
    /// SOL per whole token.
    price: f64,
    /// `sol_amount`, lamports.
    sol: u64,
    /// `token_amount`, raw units.
    tokens: u64,
    /// `sol_amount` for a buy, 0 for a sell.
    buy_sol: u64,
}

/// One (mint, window) series: its open bar, if any, without the fields all
/// bars of the series share (mint and window live in the aggregator), so a
/// series is 80 bytes instead of a 128-byte [`Bar`] plus bookkeeping.
#[derive(Debug, Clone, Copy)]
struct Series {
    /// Start of the open bar, unix seconds.
    open_time_s: i64,
    /// Price of the open bar's first trade.
    open: f64,
    /// Highest price in the open bar; `-inf` when none is open.
    high: f64,
    /// Lowest price in the open bar; `+inf` when none is open.
    low: f64,
    /// Price of the open bar's latest trade.
    close: f64,
    /// SOL traded in the open bar, lamports; 0 when none is open.
    volume_lamports: u64,
    /// Tokens traded in the open bar, raw units; 0 when none is open.
    volume_tokens: u64,
    /// SOL spent on buys in the open bar, lamports; 0 when none is open.
    buy_volume_lamports: u64,
    /// Sequence number of the last emitted update.
    seq: u64,
    /// Trades in the open bar; 0 when none is open.
    trades: u32,
    /// Whether a bar is open. Mirrored by the series' bit in
    /// [`Aggregator::open_bits`].
    is_open: bool,
    /// The open bar changed since it was last emitted (coalescing only).
    dirty: bool,
}

impl Series {
    /// A series without an open bar. Its high, low, volumes and trade count
    /// are what a trade's values fold into to give them unchanged, so
    /// [`Series::after`] treats an opening trade like any other and needs no
    /// branch on whether a bar is open (a coin toss with many mints).
    const NONE_OPEN: Self = Self {
        open_time_s: 0,
        open: 0.0,
        high: f64::NEG_INFINITY,
        low: f64::INFINITY,
        close: 0.0,
        volume_lamports: 0,
        volume_tokens: 0,
        buy_volume_lamports: 0,
        seq: 0,
        trades: 0,
        is_open: false,
        dirty: false,
    };

    /// The series after `fill`, applied to the open bar, or opening a bar at
    /// `open_time_s`.
    #[inline(always)]
    fn after(&self, open_time_s: i64, fill: &Fill) -> Self {
        let open = self.is_open;
        // Bars that ended are closed by the clock before a trade is applied,
        // so an open bar is always the trade's bar.
        debug_assert!(!open || self.open_time_s == open_time_s, "{} != {open_time_s}", self.open_time_s);
        // Prices are finite and never -0.0, so a plain comparison gives what
        // `f64::max` and `f64::min` give, without their NaN handling, and
        // `-inf` and `inf` give way to the first price.
        let price = fill.price;
        Self {
            open_time_s: if open { self.open_time_s } else { open_time_s },
            open: if open { self.open } else { price },
            high: if price > self.high { price } else { self.high },
            low: if price < self.low { price } else { self.low },
            close: price,
            volume_lamports: self.volume_lamports.saturating_add(fill.sol),
            volume_tokens: self.volume_tokens.saturating_add(fill.tokens),
            buy_volume_lamports: self.buy_volume_lamports.saturating_add(fill.buy_sol),
            trades: self.trades + 1,
            is_open: true,
            ..*self
        }
    }

    /// The series' bar as it goes out, `seq` included.
    #[inline(always)]
    fn bar(&self, mint: Pubkey, window_s: u32, closed: bool) -> Bar {
        let bar = Bar {
            mint,
            open_time_s: self.open_time_s,
            window_s,
            trades: self.trades,
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume_lamports: self.volume_lamports,
            volume_tokens: self.volume_tokens,
            buy_volume_lamports: self.buy_volume_lamports,
            seq: self.seq,
            produced_ns: 0,
            closed,
        };
        debug_assert!(bar.check().is_ok(), "bar invariant broken: {bar:?}");
        bar
    }
}

/// One window, and its bar that holds the latest trade's timestamp.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// Window length, seconds.
    len_s: i64,
    /// Start of the bar holding [`Aggregator::bucket_ts`].
    open_s: i64,
    /// End of that bar.
    end_s: i64,
    /// No open bar of this window ends before this. Kept at the end of the
    /// window's bar that holds the clock, where every bar opened by a trade
    /// ends (a trade of a bar that ended is late, and a bar that has not
    /// ended holds the clock), or earlier for restored bars. So opening a
    /// bar never has to lower it: only closing passes and restores set it.
    next_close_s: i64,
}

impl Window {
    /// Sets `open_s` and `end_s` to the bar that holds `ts`, a timestamp in
    /// [`VALID_TIMESTAMPS_S`] (so nothing here can overflow).
    fn hold(&mut self, ts: i64) {
        self.open_s = ts.div_euclid(self.len_s) * self.len_s;
        self.end_s = self.open_s + self.len_s;
    }
}

/// Builds bars for every (mint, window) series of one ingest core.
#[derive(Debug)]
pub struct Aggregator {
    /// The windows, in the order given.
    windows: Vec<Window>,
    /// Earliest `end_s` among `windows`: when the clock is before it, the
    /// trade is late for no window.
    earliest_end_s: i64,
    /// Timestamp whose bars `windows` hold, so a timestamp shared by many
    /// trades costs one division per window.
    bucket_ts: i64,
    /// Mint → slot.
    index: MintIndex,
    /// Slot → mint, in the order mints were first seen. The series of the
    /// mint in slot `i` are `series[i * windows.len()..][..windows.len()]`.
    mint_keys: Vec<Pubkey>,
    /// Slot of the latest trade's mint: consecutive trades of one mint skip
    /// the index (`usize::MAX` before the first).
    last_slot: usize,
    /// `windows.len()` series per mint, mint-major, so one trade touches
    /// adjacent memory.
    series: Vec<Series>,
    /// Which series have an open bar: word `group * windows.len() + w` holds
    /// window `w` of the mints in slots `64 * group ..`, bit `slot % 64`.
    /// Closing visits only these bits, in series order.
    open_bits: Vec<u64>,
    /// Latest time seen, unix seconds.
    clock_s: i64,
    /// Minimum of the windows' `next_close_s`, so the clock only looks at
    /// the series when some bar may be due.
    next_close_s: i64,
    /// How changes of open bars go out.
    policy: EmitPolicy,
    /// Series with unsent changes, each at most once (coalescing only).
    dirty: Vec<usize>,
    /// Bound on distinct mints.
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
        // Sets of windows are u32 masks; `windows::MAX_WINDOWS` is 16.
        debug_assert!((1..=u32::BITS as usize).contains(&windows.len()));
        // `bucket_ts` is no valid timestamp, so the first trade sets the
        // windows' bars; `next_close_s` of `i64::MIN` makes the first clock
        // move set the windows' next close.
        let window = |&len_s: &u32| Window { len_s: i64::from(len_s), open_s: 0, end_s: 0, next_close_s: i64::MIN };
        Self {
            windows: windows.seconds().iter().map(window).collect(),
            earliest_end_s: i64::MIN,
            bucket_ts: i64::MIN,
            index: MintIndex::default(),
            mint_keys: Vec::new(),
            last_slot: usize::MAX,
            series: Vec::new(),
            open_bits: Vec::new(),
            clock_s: i64::MIN,
            next_close_s: i64::MIN,
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
        self.mint_keys.len()
    }

    /// Applies one trade: first moves the clock to its timestamp (closing
    /// bars that ended), then updates the open bar of each window.
    pub fn apply(&mut self, trade: &TradeEvent, out: &mut Vec<Bar>) -> Result<(), Rejected> {
        let Some(price) = trade.price_sol_per_token() else {
            self.stats.no_price += 1;
            return Err(Rejected::NoPrice);
        };
        if !VALID_TIMESTAMPS_S.contains(&trade.timestamp) {
            self.stats.bad_timestamp += 1;
            return Err(Rejected::BadTimestamp);
        }
        let slot = self.slot_of(&trade.mint)?;
        self.advance_clock(trade.timestamp, out);
        if trade.timestamp != self.bucket_ts {
            self.hold(trade.timestamp);
        }
        let fill = Fill {
            price,
            sol: trade.sol_amount,
            tokens: trade.token_amount,
            // Adding 0 to a saturating sum leaves it as it is.
            buy_sol: if trade.is_buy { trade.sol_amount } else { 0 },
        };
        if self.earliest_end_s > self.clock_s {
            self.apply_on_time(slot, trade.mint, &fill, out);
        } else {
            self.apply_maybe_late(slot, trade.mint, &fill, out);
        }
        Ok(())
    }

    /// Moves the clock forward to `now_s` (never back) and closes every bar
    /// whose end is at or before it.
    #[inline]
    pub fn advance_clock(&mut self, now_s: i64, out: &mut Vec<Bar>) {
        if now_s <= self.clock_s {
            return;
        }
        self.clock_s = now_s;
        if now_s >= self.next_close_s {
            let due = self.windows.iter().enumerate().filter(|(_, w)| w.next_close_s <= now_s);
            let due = due.fold(0u32, |mask, (i, _)| mask | 1 << i);
            self.close_due(due, now_s, out);
        }
    }

    /// Emits the latest state of every open bar that changed since it was
    /// last emitted (coalescing policy).
    pub fn flush_changes(&mut self, out: &mut Vec<Bar>) {
        let count = self.windows.len();
        for idx in std::mem::take(&mut self.dirty) {
            let series = &mut self.series[idx];
            if !std::mem::take(&mut series.dirty) || !series.is_open {
                continue;
            }
            series.seq += 1;
            self.stats.updates += 1;
            let window_s = self.windows[idx % count].len_s as u32;
            out.push(series.bar(self.mint_keys[idx / count], window_s, false));
        }
    }

    /// Closes every open bar (end of a replay, or shutdown).
    pub fn close_all(&mut self, out: &mut Vec<Bar>) {
        let every_window = u32::MAX >> (u32::BITS as usize - self.windows.len());
        self.close_due(every_window, i64::MAX, out);
    }

    /// Continues a series from its last known update, e.g. the last state in
    /// Kafka after a restart. Ignored when the series already has updates or
    /// when the bar has ended by the clock.
    pub fn restore(&mut self, bar: &Bar) -> bool {
        let Some(w) = self.windows.iter().position(|w| w.len_s == i64::from(bar.window_s)) else {
            return false;
        };
        let Ok(slot) = self.slot_of(&bar.mint) else {
            return false;
        };
        let series = &mut self.series[slot * self.windows.len() + w];
        if series.seq >= bar.seq {
            return false;
        }
        series.seq = bar.seq;
        let end_s = bar.open_time_s.saturating_add(i64::from(bar.window_s));
        if bar.closed || end_s <= self.clock_s {
            return true;
        }
        *series = Series {
            open_time_s: bar.open_time_s,
            open: bar.open,
            high: bar.high,
            low: bar.low,
            close: bar.close,
            volume_lamports: bar.volume_lamports,
            volume_tokens: bar.volume_tokens,
            buy_volume_lamports: bar.buy_volume_lamports,
            trades: bar.trades,
            is_open: true,
            ..*series
        };
        self.mark_restored(slot, w, end_s);
        true
    }

    /// Slot of `mint`, registering the mint if new.
    #[inline(always)]
    fn slot_of(&mut self, mint: &Pubkey) -> Result<usize, Rejected> {
        if self.mint_keys.get(self.last_slot) == Some(mint) {
            return Ok(self.last_slot);
        }
        let slot = match self.index.get(mint, &self.mint_keys) {
            Some(slot) => slot,
            None => self.register(mint)?,
        };
        self.last_slot = slot;
        Ok(slot)
    }

    /// Gives a new mint the next slot and its series.
    #[cold]
    fn register(&mut self, mint: &Pubkey) -> Result<usize, Rejected> {
        let slot = self.mint_keys.len();
        if slot >= self.max_mints || slot >= MintIndex::MAX_SLOTS {
            self.stats.mint_limit += 1;
            return Err(Rejected::MintLimit);
        }
        let count = self.windows.len();
        self.mint_keys.push(*mint);
        self.index.insert_last(&self.mint_keys);
        self.series.resize((slot + 1) * count, Series::NONE_OPEN);
        if slot.is_multiple_of(MINTS_PER_WORD) {
            self.open_bits.resize(self.open_bits.len() + count, 0);
        }
        Ok(slot)
    }

    /// Points every window at its bar that holds `ts`.
    #[cold]
    fn hold(&mut self, ts: i64) {
        self.bucket_ts = ts;
        for window in &mut self.windows {
            window.hold(ts);
        }
        self.earliest_end_s = self.windows.iter().map(|w| w.end_s).min().unwrap_or(i64::MIN);
    }

    /// Applies a trade that is late for no window to every window of the
    /// mint in `slot`: the hot path.
    #[inline]
    fn apply_on_time(&mut self, slot: usize, mint: Pubkey, fill: &Fill, out: &mut Vec<Bar>) {
        let count = self.windows.len();
        let series = &mut self.series[slot * count..][..count];
        let open_words = &mut self.open_bits[slot / MINTS_PER_WORD * count..][..count];
        let bit = 1 << (slot % MINTS_PER_WORD);
        let windows = self.windows.iter().zip(open_words);
        match self.policy {
            EmitPolicy::EveryChange => {
                // One exact-size extend: no capacity check per bar. The bar
                // is built from the new state in registers: reading it back
                // from the series right after storing it field by field
                // would stall on store-to-load forwarding.
                out.extend(series.iter_mut().zip(windows).map(|(series, (window, open_word))| {
                    let next = Series { seq: series.seq + 1, ..series.after(window.open_s, fill) };
                    *series = next;
                    mark_open(open_word, bit);
                    next.bar(mint, window.len_s as u32, false)
                }));
                self.stats.updates += count as u64;
            }
            EmitPolicy::Coalesce => {
                for (idx, (series, (window, open_word))) in series.iter_mut().zip(windows).enumerate() {
                    let next = Series { dirty: true, ..series.after(window.open_s, fill) };
                    if !series.dirty {
                        self.dirty.push(slot * count + idx);
                    }
                    *series = next;
                    mark_open(open_word, bit);
                    debug_assert!(next.bar(mint, window.len_s as u32, false).check().is_ok());
                }
            }
        }
        self.stats.trades_applied += 1;
    }

    /// Applies a trade to the windows where its bar has not ended, and
    /// counts it late in the others.
    #[cold]
    fn apply_maybe_late(&mut self, slot: usize, mint: Pubkey, fill: &Fill, out: &mut Vec<Bar>) {
        let count = self.windows.len();
        let mut applied = false;
        for w in 0..count {
            let window = &self.windows[w];
            if window.end_s <= self.clock_s {
                // Ended by the clock: the bar is closed (or was never opened
                // and can no longer be).
                self.stats.late_by_window[w] += 1;
                continue;
            }
            applied = true;
            let idx = slot * count + w;
            let series = &mut self.series[idx];
            *series = series.after(window.open_s, fill);
            mark_open(&mut self.open_bits[slot / MINTS_PER_WORD * count + w], 1 << (slot % MINTS_PER_WORD));
            match self.policy {
                EmitPolicy::EveryChange => {
                    series.seq += 1;
                    self.stats.updates += 1;
                    out.push(series.bar(mint, window.len_s as u32, false));
                }
                EmitPolicy::Coalesce if !std::mem::replace(&mut series.dirty, true) => self.dirty.push(idx),
                EmitPolicy::Coalesce => {}
            }
        }
        if applied {
            self.stats.trades_applied += 1;
        }
    }

    /// Records that window `w` of `slot` has an open bar ending at `end_s`.
    fn mark_restored(&mut self, slot: usize, w: usize, end_s: i64) {
        let count = self.windows.len();
        let window = &mut self.windows[w];
        self.open_bits[slot / MINTS_PER_WORD * count + w] |= 1 << (slot % MINTS_PER_WORD);
        window.next_close_s = window.next_close_s.min(end_s);
        self.next_close_s = self.next_close_s.min(end_s);
    }

    /// Closes the open bars of the windows in the mask `due` whose end is at
    /// or before `now_s`, in series order (mint by mint, windows in order),
    /// and sets those windows' next close.
    #[cold]
    fn close_due(&mut self, due: u32, now_s: i64, out: &mut Vec<Bar>) {
        let count = self.windows.len();
        for w in windows_in(due) {
            let window = &mut self.windows[w];
            // Saturating: the wall clock may be anything, and an end past
            // `i64::MAX` is never reached anyway.
            let clock_bar_s = self.clock_s.div_euclid(window.len_s).saturating_mul(window.len_s);
            window.next_close_s = clock_bar_s.saturating_add(window.len_s);
        }
        let mut closes = 0;
        for (group, words) in self.open_bits.chunks_exact_mut(count).enumerate() {
            let mut mints = windows_in(due).fold(0, |any, w| any | words[w]);
            while mints != 0 {
                let bit = mints & mints.wrapping_neg();
                mints ^= bit;
                let slot = group * MINTS_PER_WORD + bit.trailing_zeros() as usize;
                for w in windows_in(due) {
                    if words[w] & bit == 0 {
                        continue;
                    }
                    let window = &mut self.windows[w];
                    let series = &mut self.series[slot * count + w];
                    debug_assert!(series.is_open);
                    let end_s = series.open_time_s.saturating_add(window.len_s);
                    if end_s > now_s {
                        window.next_close_s = window.next_close_s.min(end_s);
                        continue;
                    }
                    words[w] &= !bit;
                    let closing = Series { seq: series.seq + 1, ..*series };
                    *series = Series { seq: closing.seq, ..Series::NONE_OPEN };
                    out.push(closing.bar(self.mint_keys[slot], window.len_s as u32, true));
                    closes += 1;
                }
            }
        }
        self.stats.closes += closes;
        self.stats.updates += closes;
        self.next_close_s = self.windows.iter().map(|w| w.next_close_s).min().unwrap_or(i64::MAX);
    }
}

/// The windows in a mask of windows, in order.
fn windows_in(mask: u32) -> impl Iterator<Item = usize> {
    let mut rest = mask;
    std::iter::from_fn(move || {
        let w = rest.trailing_zeros() as usize;
        rest &= rest.wrapping_sub(1);
        (w < u32::BITS as usize).then_some(w)
    })
}

/// Records that a series has an open bar. Doing this for a bar that was
/// already open changes nothing, so it needs no branch.
#[inline(always)]
fn mark_open(open_word: &mut u64, bit: u64) {
    *open_word |= bit;
}

/// Mint → slot: open addressing with linear probing over 8-byte entries
/// (a hash tag and the slot), so the index of a thousand mints is 32 KiB;
/// the mint itself is compared in `mint_keys`.
///
/// Like the FxHash it replaces, the hash is not keyed: input crafted to
/// collide makes lookups slow, never wrong, and the mint limit bounds them.
#[derive(Debug, Default)]
struct MintIndex {
    /// A power of two long, at most a quarter full, so most lookups end at
    /// the first entry; `slot == EMPTY` marks a free one.
    entries: Vec<IndexEntry>,
}

/// One entry of [`MintIndex`].
#[derive(Debug, Clone, Copy)]
struct IndexEntry {
    /// Hash bits other than those that chose the position, to skip most
    /// mints that are not the one sought without reading them.
    tag: u32,
    /// Index into `mint_keys`, or [`MintIndex::EMPTY`].
    slot: u32,
}

impl MintIndex {
    /// Marks a free entry.
    const EMPTY: u32 = u32::MAX;
    /// Slots are u32; one value is [`MintIndex::EMPTY`].
    const MAX_SLOTS: usize = u32::MAX as usize;
    /// Fewest entries once the first mint arrives.
    const MIN_ENTRIES: usize = 64;

    /// Position of the first entry to probe and the tag of `mint`.
    #[inline]
    fn place(&self, mint: &Pubkey) -> (usize, u32) {
        // Mints are public keys, uniformly random: folding the four words
        // and one multiply (Fibonacci hashing) spreads them well.
        let word = |i: usize| {
            let mut bytes = [0; 8];
            bytes.copy_from_slice(&mint[8 * i..8 * i + 8]);
            u64::from_le_bytes(bytes)
        };
        let folded = word(0) ^ word(1).rotate_left(16) ^ word(2).rotate_left(32) ^ word(3).rotate_left(48);
        let hash = folded.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        // The top bits are the best mixed: they choose the position, and
        // the low 32 (unused by any table that fits in memory) are the tag.
        let position_bits = self.entries.len().trailing_zeros();
        ((hash >> (u64::BITS - position_bits)) as usize, hash as u32)
    }

    /// The slot of `mint`, if registered; `keys` is slot → mint.
    #[inline]
    fn get(&self, mint: &Pubkey, keys: &[Pubkey]) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        let (mut at, tag) = self.place(mint);
        loop {
            let entry = self.entries[at];
            if entry.slot == Self::EMPTY {
                return None;
            }
            if entry.tag == tag && keys.get(entry.slot as usize) == Some(mint) {
                return Some(entry.slot as usize);
            }
            at = (at + 1) & (self.entries.len() - 1);
        }
    }

    /// Adds the last of `keys` (slot → mint), a mint not yet in the index,
    /// growing the table when it would be over a quarter full.
    fn insert_last(&mut self, keys: &[Pubkey]) {
        if keys.len() * 4 > self.entries.len() {
            let entries = (self.entries.len() * 2).max(Self::MIN_ENTRIES);
            self.entries = vec![IndexEntry { tag: 0, slot: Self::EMPTY }; entries];
            for (slot, mint) in keys.iter().enumerate() {
                self.put(slot, mint);
            }
        } else if let Some(mint) = keys.last() {
            self.put(keys.len() - 1, mint);
        }
    }

    fn put(&mut self, slot: usize, mint: &Pubkey) {
        let (mut at, tag) = self.place(mint);
        while self.entries[at].slot != Self::EMPTY {
            at = (at + 1) & (self.entries.len() - 1);
        }
        // `register` refuses slots beyond MAX_SLOTS.
        self.entries[at] = IndexEntry { tag, slot: slot as u32 };
    }
}

#[cfg(test)]
mod tests;
