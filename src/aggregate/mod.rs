//! Turns trades into OHLCV bars, per (mint, window) series (SPEC §3).
//!
//! One [`Aggregator`] lives on one ingest core and is never shared, so nothing
//! here locks. It owns the open bar of every series and a clock; it pushes
//! every update it emits into a caller-provided buffer and never does I/O.
//!
//! The rules, in one place:
//! - A bar covers `[open_time, open_time + window)`, `open_time =
//!   floor(ts / window) * window`; the first trade sets `open`.
//! - The clock closes bars: every bar whose end is at or before it is
//!   closed, and its closing update always goes out. With
//!   [`ClockMode::Event`] (mock, replay) the clock is the latest time seen:
//!   trade timestamps and [`Aggregator::advance_clock`]; a trade of a later
//!   bar moves it past the open bars' ends, so it closes them first. With
//!   [`ClockMode::External`] (the live source, whose block times arrive a
//!   little out of order) only `advance_clock` moves it (the wall clock less
//!   the allowed lateness), and a trade of a later bar of the same series
//!   closes that series' open bar.
//! - A trade whose bar already ended by the clock, or that is older than
//!   its series' open bar, is late: counted per window and dropped, never
//!   applied to a closed bar.
//! - With an emit interval, changes of open bars are coalesced until
//!   [`Aggregator::flush_changes`]; with none, every change is emitted.
//! - `seq` grows by one per emitted update of a series. A series with no
//!   known past starts at 1 ([`SeqOrigin::One`]) or, for live sources, at
//!   its first trade's time × 2^20 ([`SeqOrigin::Time`]), above any `seq`
//!   an earlier life of the series can have reached, so consumers that drop
//!   stale updates by `seq` never drop a new one.
//! - A coin trades in one quote: a trade in another quote than the mint's
//!   first is refused and counted.
//! - A restored series ([`Aggregator::restore`]) continues its open bar; a
//!   restored closing update stays a closed bar: a trade of that bar or an
//!   earlier one is late, never a second, partial bar of the same window.
//!   Which replayed trades a restored series already holds is decided by
//!   the source, by each trade's identity (the live source's resume).
//! - A mint whose bars are all closed and that has not traded for longer
//!   than the longest window is evicted ([`Aggregator::evict_idle`]); its
//!   `seq`s are kept in a bounded list, so when it trades again its series
//!   go on where they were.
//!
//! How it keeps up with one core's worth of trades (SPEC §7: 20 M/s, about
//! 50 ns per trade for four windows):
//! - The bar of each window that holds a timestamp is computed once per
//!   distinct timestamp ([`Window::hold`]), not once per trade and window.
//! - A series keeps only what differs between its bars (the mint, its quote
//!   and the window are stored once), and a mint's series are adjacent.
//! - The latest mint is remembered, and other mints are found in a compact
//!   open-addressing index ([`MintIndex`], 8 bytes per entry).
//! - A trade updates a series without branching on whether its bar is open
//!   (which is unpredictable when many mints trade), and each updated bar is
//!   built once, by value, and written to the series and to the output.
//! - Bars are closed from a bitset of open series per window, in series
//!   order, so the clock never scans idle series.

pub mod windows;

use rustc_hash::FxHashMap;
use thiserror::Error;

use crate::codec::bar::{BAR_FORMAT, Bar};
use crate::codec::borsh::Pubkey;
use crate::codec::event::Position;
pub use crate::market::Trade;
pub use windows::Windows;

/// Trade timestamps accepted: unix seconds from 0 to 2^40 (year 36812).
/// Anything else is corrupt input, refused before bar arithmetic could
/// overflow.
pub const VALID_TIMESTAMPS_S: std::ops::Range<i64> = 0..(1 << 40);

/// Default bound on mints tracked at once by one aggregator.
pub const DEFAULT_MAX_MINTS: usize = 100_000;

/// Default bound on evicted mints whose `seq`s are kept (about 150 bytes
/// each with four windows).
pub const DEFAULT_MAX_EVICTED: usize = 1_000_000;

/// `seq` of a fresh [`SeqOrigin::Time`] series: its first trade's unix
/// seconds shifted by this many bits. 2^20 updates a second is more than
/// any series gets, so a later life always starts above an earlier one.
pub const SEQ_TIME_SHIFT: u32 = 20;

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

/// What moves the clock that closes bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockMode {
    /// Trade timestamps and [`Aggregator::advance_clock`] (mock, replay).
    Event,
    /// Only [`Aggregator::advance_clock`] (live: wall clock less lateness).
    External,
}

/// Where the `seq` of a series with no known past starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqOrigin {
    /// At 1.
    One,
    /// Above the first trade's time × 2^[`SEQ_TIME_SHIFT`].
    Time,
}

/// Settings of an [`Aggregator`].
#[derive(Debug, Clone)]
pub struct AggregatorConfig {
    /// The windows.
    pub windows: Windows,
    /// How open-bar changes go out.
    pub policy: EmitPolicy,
    /// What closes bars.
    pub clock: ClockMode,
    /// Where fresh series' `seq` starts.
    pub seq_origin: SeqOrigin,
    /// Bound on mints tracked at once.
    pub max_mints: usize,
    /// Bound on evicted mints whose `seq`s are kept; beyond it the oldest
    /// are forgotten (and start afresh, per `seq_origin`, if they return).
    pub max_evicted: usize,
}

impl AggregatorConfig {
    /// Event clock, `seq` from 1, default bounds.
    pub fn new(windows: &Windows, policy: EmitPolicy) -> Self {
        Self {
            windows: windows.clone(),
            policy,
            clock: ClockMode::Event,
            seq_origin: SeqOrigin::One,
            max_mints: DEFAULT_MAX_MINTS,
            max_evicted: DEFAULT_MAX_EVICTED,
        }
    }
}

/// Why a trade was not applied to any window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Rejected {
    /// A price that is not a finite, non-negative number (`-0.0` included).
    #[error("trade has no usable price")]
    NoPrice,
    /// The bound on mints tracked at once (or on distinct quotes,
    /// [`MAX_QUOTES`]) was reached; new mints are refused so memory stays
    /// bounded.
    #[error("mint limit reached; trade for a new mint dropped")]
    MintLimit,
    /// A timestamp outside [`VALID_TIMESTAMPS_S`].
    #[error("trade timestamp out of range")]
    BadTimestamp,
    /// The mint trades in another quote: one series cannot mix quotes.
    #[error("trade in another quote than the mint's")]
    QuoteMismatch,
    /// A slot or event index outside [`VALID_SLOTS`] or [`VALID_EVENTS`].
    #[error("trade position out of range")]
    BadPosition,
}

/// Counters of what the aggregator did, for logs and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AggregateStats {
    /// Trades applied to at least one window.
    pub trades_applied: u64,
    /// Late trades dropped, per window (same order as [`Windows`]).
    pub late_by_window: Vec<u64>,
    /// Trades rejected because they carry no usable price.
    pub no_price: u64,
    /// Trades dropped because the mint limit was reached.
    pub mint_limit: u64,
    /// Trades refused for a timestamp outside [`VALID_TIMESTAMPS_S`].
    pub bad_timestamp: u64,
    /// Trades refused for a quote other than their mint's.
    pub quote_mismatch: u64,
    /// Trades refused for a position outside [`VALID_SLOTS`] or
    /// [`VALID_EVENTS`].
    pub bad_position: u64,
    /// Mints evicted after going idle.
    pub evicted: u64,
    /// Evicted mints that traded again and continued their series.
    pub returned: u64,
    /// Updates emitted, closing ones included.
    pub updates: u64,
    /// Closing updates emitted.
    pub closes: u64,
}

/// What one trade adds to the bar of every window.
#[derive(Debug, Clone, Copy)]
struct Fill {
    /// Quote per whole token.
    price: f64,
    /// Quote traded, base units.
    quote: u64,
    /// Tokens traded, raw units.
    tokens: u64,
    /// `quote` for a buy, 0 for a sell.
    buy_quote: u64,
    /// `tokens` for a buy, 0 for a sell.
    buy_tokens: u64,
    /// Where the trade sits.
    position: Packed,
    /// The venue's bit.
    venue: u8,
}

/// Distinct quote mints an aggregator holds: pump.fun accepts a handful, and
/// the market learns the decimals of at most
/// [`crate::market::MAX_LEARNED_QUOTES`] more. A new mint in yet another is
/// refused as over the mint limit.
pub const MAX_QUOTES: usize = 1 << u16::BITS;

/// Slots a trade's position may name: 2^40 slots are over 400 years of
/// Solana at its 400 ms slots (it was near slot 4 * 10^8 in 2026).
pub const VALID_SLOTS: std::ops::Range<u64> = 0..(1 << (u64::BITS - EVENT_BITS));

/// Event indexes within a transaction a trade's position may name: a
/// transaction holds a few hundred events at most.
pub const VALID_EVENTS: std::ops::Range<u32> = 0..(1 << EVENT_BITS);

/// Bits of a packed position's event index.
const EVENT_BITS: u32 = 24;

/// A [`Position`] in two words instead of three: the slot and the event
/// index share one (slot in the high 40 bits, event in the low 24). A series
/// carries the position of its last trade in every update, so the word
/// saved is one less to copy into each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Packed {
    /// `slot << 24 | event`.
    slot_event: u64,
    /// The transaction's signature prefix.
    signature: u64,
}

impl Packed {
    /// No position (sources without one).
    const NONE: Self = Self { slot_event: 0, signature: 0 };

    /// The position packed, or `None` when its slot or event index is out of
    /// range.
    #[inline(always)]
    fn new(position: &Position) -> Option<Self> {
        if !VALID_SLOTS.contains(&position.slot) || !VALID_EVENTS.contains(&position.event) {
            return None;
        }
        Some(Self {
            slot_event: position.slot << EVENT_BITS | u64::from(position.event),
            signature: position.signature,
        })
    }

    fn slot(&self) -> u64 {
        self.slot_event >> EVENT_BITS
    }

    fn event(&self) -> u32 {
        (self.slot_event & ((1 << EVENT_BITS) - 1)) as u32
    }
}

/// One (mint, window) series: its open bar, if any, without the fields all
/// bars of the series share (mint, quote and window live in the
/// aggregator).
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
    /// Quote traded in the open bar; 0 when none is open.
    volume_quote: u64,
    /// Tokens traded in the open bar; 0 when none is open.
    volume_tokens: u64,
    /// Quote spent on buys in the open bar; 0 when none is open.
    buy_volume_quote: u64,
    /// Tokens bought in the open bar; 0 when none is open.
    buy_volume_tokens: u64,
    /// Sequence number of the last emitted update.
    seq: u64,
    /// Position of the last trade applied to the series (kept across bars:
    /// a restart resumes from it).
    last: Packed,
    /// The open bar's trade count and venues, and the series' flags.
    tally: Tally,
}

/// A series' small fields in one word, so a trade updates them with one
/// `or` and an add, and a copy of the series moves them in one store:
/// bits 0..32 the open bar's trade count, 32..40 its venues, 40 whether a
/// bar is open (mirrored by the series' bit in [`Aggregator::open_bits`]),
/// 41 whether the open bar changed since it was last emitted (coalescing
/// only). A bar holds fewer than 2^32 trades: all of Solana does not make
/// that many in an hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tally(u64);

impl Tally {
    /// No bar open.
    const NONE: Self = Self(0);
    const VENUES_SHIFT: u32 = 32;
    const OPEN: u64 = 1 << 40;
    const DIRTY: u64 = 1 << 41;

    /// An open bar of `trades` trades from `venues`.
    fn open(trades: u32, venues: u8) -> Self {
        Self(u64::from(trades) | u64::from(venues) << Self::VENUES_SHIFT | Self::OPEN)
    }

    /// Trades in the open bar; 0 when none is open.
    fn trades(self) -> u32 {
        self.0 as u32
    }

    /// Venues of the open bar's trades; 0 when none is open.
    fn venues(self) -> u8 {
        (self.0 >> Self::VENUES_SHIFT) as u8
    }

    fn is_open(self) -> bool {
        self.0 & Self::OPEN != 0
    }

    fn is_dirty(self) -> bool {
        self.0 & Self::DIRTY != 0
    }

    /// With one more trade, from the venue with bit `venue`, in an open bar.
    #[inline(always)]
    fn add(self, venue: u8) -> Self {
        Self((self.0 + 1) | u64::from(venue) << Self::VENUES_SHIFT | Self::OPEN)
    }

    /// Sets whether the open bar changed since it was last emitted; returns
    /// whether it had.
    fn replace_dirty(&mut self, dirty: bool) -> bool {
        let was = self.is_dirty();
        self.0 = if dirty { self.0 | Self::DIRTY } else { self.0 & !Self::DIRTY };
        was
    }
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
        volume_quote: 0,
        volume_tokens: 0,
        buy_volume_quote: 0,
        buy_volume_tokens: 0,
        seq: 0,
        last: Packed::NONE,
        tally: Tally::NONE,
    };

    /// The series after `fill`, applied to the open bar, or opening a bar at
    /// `open_time_s`.
    #[inline(always)]
    fn after(&self, open_time_s: i64, fill: &Fill) -> Self {
        let open = self.tally.is_open();
        // Bars that ended are closed before a trade is applied, so an open
        // bar is always the trade's bar.
        debug_assert!(!open || self.open_time_s == open_time_s, "{} != {open_time_s}", self.open_time_s);
        // Prices are finite and never -0.0, so a plain comparison gives what
        // `f64::max` and `f64::min` give, without their NaN handling, and
        // `-inf` and `inf` give way to the first price.
        let price = fill.price;
        Self {
            // Equal when a bar is open (asserted above).
            open_time_s,
            open: if open { self.open } else { price },
            high: if price > self.high { price } else { self.high },
            low: if price < self.low { price } else { self.low },
            close: price,
            volume_quote: self.volume_quote.saturating_add(fill.quote),
            volume_tokens: self.volume_tokens.saturating_add(fill.tokens),
            buy_volume_quote: self.buy_volume_quote.saturating_add(fill.buy_quote),
            buy_volume_tokens: self.buy_volume_tokens.saturating_add(fill.buy_tokens),
            last: fill.position,
            tally: self.tally.add(fill.venue),
            ..*self
        }
    }

    /// The update of this state of the series in `slot`, window `window`.
    #[inline(always)]
    fn update(&self, slot: usize, window: usize, closed: bool) -> Update {
        Update { state: *self, place: Update::place(slot, window, closed) }
    }
}

/// One update the aggregator emitted, compact: the series' state and where
/// it belongs. [`Aggregator::bar`] makes it the [`Bar`] that goes out. The
/// mint and quote (64 bytes) are not copied into every update: they stay in
/// the aggregator, and the update stays small enough (112 bytes) for the hot
/// loop to move it without a `memcpy` call.
#[derive(Debug, Clone, Copy)]
pub struct Update {
    /// The series' state, `seq` included.
    state: Series,
    /// Where it belongs, in one word ([`Update::place`]): the mint's slot in
    /// bits 0..32, the window's index in 32..48, bit 48 set for the bar's
    /// closing update.
    place: u64,
}

impl Update {
    const WINDOW_SHIFT: u32 = 32;
    const CLOSED: u64 = 1 << 48;

    /// The `place` of an update of window `window` of the mint in `slot`.
    #[inline(always)]
    fn place(slot: usize, window: usize, closed: bool) -> u64 {
        debug_assert!(slot < MintIndex::MAX_SLOTS && window < 1 << 16);
        slot as u64 | (window as u64) << Self::WINDOW_SHIFT | if closed { Self::CLOSED } else { 0 }
    }

    /// The mint's slot.
    fn slot(&self) -> usize {
        self.place as u32 as usize
    }

    /// The window's index.
    fn window(&self) -> usize {
        usize::from((self.place >> Self::WINDOW_SHIFT) as u16)
    }

    /// Whether this is the bar's closing update.
    pub fn closed(&self) -> bool {
        self.place & Self::CLOSED != 0
    }

    /// The update's `seq`.
    pub fn seq(&self) -> u64 {
        self.state.seq
    }
}

/// What all series of one mint share: one cache line, as every trade reads
/// and writes it (its quote mint is an index into the aggregator's few
/// distinct quotes, not a 32-byte copy per mint).
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
struct MintMeta {
    /// The mint.
    key: Pubkey,
    /// Its quote mint, in [`Aggregator::quotes`] (set by its first trade or
    /// restored bar).
    quote: u16,
    /// Latest trade timestamp, unix seconds (eviction looks at it).
    last_trade_s: i64,
    /// Windows whose restored last update was a closing one whose end the
    /// clock has not passed: a trade of that bar or an earlier one is late
    /// (the bar is in Kafka, closed); cleared by the series' next bar.
    closed_restored: u32,
    /// Windows whose series took a restored state.
    restored: u32,
    /// The quote mint's decimals.
    quote_decimals: u8,
    /// Whether the slot holds a mint (false once evicted, until reused).
    active: bool,
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
    /// ends or later (a trade of a bar that ended is late, and a bar that
    /// has not ended ends at or after the clock's bar), or earlier for
    /// restored bars. So opening a bar never has to lower it: only closing
    /// passes and restores set it.
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
    /// Longest window, seconds: a mint idle for longer may be evicted.
    longest_s: i64,
    /// Earliest `end_s` among `windows`: when the clock is before it, the
    /// trade is late for no window.
    earliest_end_s: i64,
    /// Timestamp whose bars `windows` hold, so a timestamp shared by many
    /// trades costs one division per window.
    bucket_ts: i64,
    /// Mint → slot.
    index: MintIndex,
    /// The distinct quote mints of the mints, each once, in the order
    /// first seen ([`MintMeta::quote`]): a handful (pump.fun accepts a few
    /// quotes), at most [`MAX_QUOTES`].
    quotes: Vec<Pubkey>,
    /// Quote mint → its index in `quotes`.
    quote_index: FxHashMap<Pubkey, u16>,
    /// Slot → mint and what its series share. The series of the mint in
    /// slot `i` are `series[i * windows.len()..][..windows.len()]`.
    mints: Vec<MintMeta>,
    /// Slots of evicted mints, reused before new ones.
    free: Vec<usize>,
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
    /// The time bars close by, unix seconds.
    clock_s: i64,
    /// Minimum of the windows' `next_close_s`, so the clock only looks at
    /// the series when some bar may be due.
    next_close_s: i64,
    /// Settings.
    config: AggregatorConfig,
    /// Series with unsent changes, each at most once (coalescing only).
    dirty: Vec<usize>,
    /// Evicted mints' last `seq` per window, so they continue when they
    /// trade again; bounded by `config.max_evicted`.
    evicted: FxHashMap<Pubkey, Box<[u64]>>,
    /// Eviction order of `evicted`'s keys, oldest first, to forget the
    /// oldest when full (entries of mints that returned are skipped).
    evicted_order: std::collections::VecDeque<Pubkey>,
    /// What happened so far.
    stats: AggregateStats,
}

impl Aggregator {
    /// An aggregator for `windows`, emitting per `policy`.
    pub fn new(windows: &Windows, policy: EmitPolicy) -> Self {
        Self::with_config(AggregatorConfig::new(windows, policy))
    }

    /// As [`Aggregator::new`] with an explicit bound on mints.
    pub fn with_max_mints(windows: &Windows, policy: EmitPolicy, max_mints: usize) -> Self {
        Self::with_config(AggregatorConfig { max_mints, ..AggregatorConfig::new(windows, policy) })
    }

    /// An aggregator with every setting given.
    pub fn with_config(config: AggregatorConfig) -> Self {
        let windows = &config.windows;
        // Sets of windows are u32 masks; `windows::MAX_WINDOWS` is 16.
        debug_assert!((1..=u32::BITS as usize).contains(&windows.len()));
        // `bucket_ts` is no valid timestamp, so the first trade sets the
        // windows' bars; `next_close_s` of `i64::MIN` makes the first clock
        // move set the windows' next close.
        let window = |&len_s: &u32| Window { len_s: i64::from(len_s), open_s: 0, end_s: 0, next_close_s: i64::MIN };
        Self {
            windows: windows.seconds().iter().map(window).collect(),
            longest_s: windows.seconds().iter().copied().max().map_or(0, i64::from),
            earliest_end_s: i64::MIN,
            bucket_ts: i64::MIN,
            index: MintIndex::default(),
            quotes: Vec::new(),
            quote_index: FxHashMap::default(),
            mints: Vec::new(),
            free: Vec::new(),
            last_slot: usize::MAX,
            series: Vec::new(),
            open_bits: Vec::new(),
            clock_s: i64::MIN,
            next_close_s: i64::MIN,
            dirty: Vec::new(),
            evicted: FxHashMap::default(),
            evicted_order: std::collections::VecDeque::new(),
            stats: AggregateStats { late_by_window: vec![0; windows.len()], ..Default::default() },
            config,
        }
    }

    /// The bar an update stands for. Call before the next
    /// [`Aggregator::evict_idle`] (which may give its mint's slot to another).
    #[inline]
    pub fn bar(&self, update: &Update) -> Bar {
        let s = &update.state;
        let mint = &self.mints[update.slot()];
        let bar = Bar {
            format: BAR_FORMAT,
            venues: s.tally.venues(),
            quote_decimals: mint.quote_decimals,
            mint: mint.key,
            quote_mint: self.quotes[usize::from(mint.quote)],
            open_time_s: s.open_time_s,
            window_s: self.windows[update.window()].len_s as u32,
            trades: s.tally.trades(),
            open: s.open,
            high: s.high,
            low: s.low,
            close: s.close,
            volume_quote: s.volume_quote,
            volume_tokens: s.volume_tokens,
            buy_volume_quote: s.buy_volume_quote,
            buy_volume_tokens: s.buy_volume_tokens,
            seq: s.seq,
            produced_ns: 0,
            last_slot: s.last.slot(),
            last_signature: s.last.signature,
            last_event: s.last.event(),
            resume_slot: 0,
            closed: update.closed(),
        };
        debug_assert!(bar.check().is_ok(), "bar invariant broken: {bar:?}");
        bar
    }

    /// The bars of `updates`, in order.
    pub fn bars(&self, updates: &[Update]) -> Vec<Bar> {
        updates.iter().map(|u| self.bar(u)).collect()
    }

    /// Counters so far.
    pub fn stats(&self) -> &AggregateStats {
        &self.stats
    }

    /// The clock, unix seconds (`i64::MIN` before the first trade or tick).
    pub fn clock_s(&self) -> i64 {
        self.clock_s
    }

    /// Number of mints tracked now.
    pub fn mint_count(&self) -> usize {
        self.mints.len() - self.free.len()
    }

    /// Number of evicted mints whose `seq`s are kept.
    pub fn evicted_count(&self) -> usize {
        self.evicted.len()
    }

    /// Applies one trade: with the event clock, first moves the clock to its
    /// timestamp (closing bars that ended); then updates the open bar of
    /// each window.
    // Always inlined into the caller's loop: the trade was just built there,
    // and read back through memory its pieces would stall on
    // store-to-load forwarding.
    #[inline(always)]
    pub fn apply(&mut self, trade: &Trade, out: &mut Vec<Update>) -> Result<(), Rejected> {
        // Finite and not negative in one comparison of the bits: those of
        // every negative number (-0.0 too) and of every NaN are above
        // those of infinity.
        if trade.price.to_bits() >= f64::INFINITY.to_bits() {
            self.stats.no_price += 1;
            return Err(Rejected::NoPrice);
        }
        if !VALID_TIMESTAMPS_S.contains(&trade.timestamp) {
            self.stats.bad_timestamp += 1;
            return Err(Rejected::BadTimestamp);
        }
        let Some(position) = Packed::new(&trade.position) else {
            self.stats.bad_position += 1;
            return Err(Rejected::BadPosition);
        };
        let slot = self.slot_of(trade)?;
        let meta = &mut self.mints[slot];
        if self.quotes[usize::from(meta.quote)] != trade.quote_mint {
            self.stats.quote_mismatch += 1;
            return Err(Rejected::QuoteMismatch);
        }
        meta.last_trade_s = meta.last_trade_s.max(trade.timestamp);
        let closed_restored = meta.closed_restored != 0;
        if self.config.clock == ClockMode::Event {
            self.advance_clock(trade.timestamp, out);
        }
        if trade.timestamp != self.bucket_ts {
            self.hold(trade.timestamp);
        }
        let fill = Fill {
            price: trade.price,
            quote: trade.quote_amount,
            tokens: trade.token_amount,
            // Adding 0 to a saturating sum leaves it as it is.
            buy_quote: if trade.is_buy { trade.quote_amount } else { 0 },
            buy_tokens: if trade.is_buy { trade.token_amount } else { 0 },
            position,
            venue: trade.venue.bit(),
        };
        if self.earliest_end_s > self.clock_s && !closed_restored && self.bars_are_current(slot) {
            self.apply_on_time(slot, &fill, out);
        } else {
            self.apply_each(slot, &fill, out);
        }
        Ok(())
    }

    /// Whether every open bar of the mint in `slot` is the current trade's
    /// bar of its window (always so with the event clock, which closed the
    /// others).
    #[inline(always)]
    fn bars_are_current(&self, slot: usize) -> bool {
        if self.config.clock == ClockMode::Event {
            return true;
        }
        let count = self.windows.len();
        let series = &self.series[slot * count..][..count];
        series.iter().zip(&self.windows).all(|(s, w)| !s.tally.is_open() || s.open_time_s == w.open_s)
    }

    /// Moves the clock forward to `now_s` (never back) and closes every bar
    /// whose end is at or before it.
    #[inline(always)]
    pub fn advance_clock(&mut self, now_s: i64, out: &mut Vec<Update>) {
        if now_s <= self.clock_s {
            return;
        }
        self.clock_s = now_s;
        if now_s >= self.next_close_s {
            self.close_by(now_s, out);
        }
    }

    /// Closes the bars of every window with a bar due by `now_s`.
    #[cold]
    fn close_by(&mut self, now_s: i64, out: &mut Vec<Update>) {
        let due = self.windows.iter().enumerate().filter(|(_, w)| w.next_close_s <= now_s);
        let due = due.fold(0u32, |mask, (i, _)| mask | 1 << i);
        self.close_due(due, now_s, out);
    }

    /// Emits the latest state of every open bar that changed since it was
    /// last emitted (coalescing policy).
    pub fn flush_changes(&mut self, out: &mut Vec<Update>) {
        let count = self.windows.len();
        for idx in std::mem::take(&mut self.dirty) {
            let series = &mut self.series[idx];
            if !series.tally.replace_dirty(false) || !series.tally.is_open() {
                continue;
            }
            series.seq += 1;
            self.stats.updates += 1;
            out.push(series.update(idx / count, idx % count, false));
        }
    }

    /// Closes every open bar (end of a replay, or shutdown).
    pub fn close_all(&mut self, out: &mut Vec<Update>) {
        let every_window = u32::MAX >> (u32::BITS as usize - self.windows.len());
        self.close_due(every_window, i64::MAX, out);
    }

    /// Continues a series from its last known update, e.g. the last state in
    /// Kafka after a restart. Ignored when the series already has updates.
    /// An open bar continues; a closed one (or one the clock has ended)
    /// stays closed, and trades of it or of earlier bars are late.
    pub fn restore(&mut self, bar: &Bar) -> bool {
        let Some(w) = self.windows.iter().position(|w| w.len_s == i64::from(bar.window_s)) else {
            return false;
        };
        let Some(last) =
            Packed::new(&Position { slot: bar.last_slot, signature: bar.last_signature, event: bar.last_event })
        else {
            return false;
        };
        let Ok(slot) = self.slot_for(&bar.mint, &bar.quote_mint, bar.quote_decimals, bar.open_time_s) else {
            return false;
        };
        let count = self.windows.len();
        let series = &mut self.series[slot * count + w];
        let meta = &mut self.mints[slot];
        // A series takes one restored state, before it trades. A fresh
        // series' `seq` is 0 with `SeqOrigin::One`, but may be above the
        // restored one with `SeqOrigin::Time`, whose floor is only a
        // fallback for series without a known past.
        let known =
            meta.restored & (1 << w) != 0 || self.config.seq_origin == SeqOrigin::One || series.tally.trades() > 0;
        if known && series.seq >= bar.seq {
            return false;
        }
        meta.restored |= 1 << w;
        series.seq = bar.seq;
        series.last = last;
        meta.last_trade_s = meta.last_trade_s.max(bar.open_time_s);
        let end_s = bar.open_time_s.saturating_add(i64::from(bar.window_s));
        if end_s <= self.clock_s {
            return true;
        }
        if bar.closed {
            // Kept as the series' last bar (not open): a replayed trade of
            // it must not open it again with part of its trades.
            series.open_time_s = bar.open_time_s;
            meta.closed_restored |= 1 << w;
            return true;
        }
        *series = Series {
            open_time_s: bar.open_time_s,
            open: bar.open,
            high: bar.high,
            low: bar.low,
            close: bar.close,
            volume_quote: bar.volume_quote,
            volume_tokens: bar.volume_tokens,
            buy_volume_quote: bar.buy_volume_quote,
            buy_volume_tokens: bar.buy_volume_tokens,
            tally: Tally::open(bar.trades, bar.venues),
            ..*series
        };
        self.mark_restored(slot, w, end_s);
        true
    }

    /// Evicts every mint whose bars are all closed and that has not traded
    /// for longer than the longest window by the clock, keeping its `seq`s.
    /// Returns how many were evicted. Cost: one look at every tracked mint,
    /// so call it every few seconds, not per trade.
    pub fn evict_idle(&mut self) -> usize {
        let count = self.windows.len();
        let Some(idle_before) = self.clock_s.checked_sub(self.longest_s) else { return 0 };
        let mut evicted = 0;
        for slot in 0..self.mints.len() {
            let meta = self.mints[slot];
            // A closed restored bar of an idle mint has ended by the clock
            // (it started before `idle_before`), so trades of it stay late.
            if !meta.active || meta.last_trade_s >= idle_before {
                continue;
            }
            let series = &self.series[slot * count..][..count];
            if series.iter().any(|s| s.tally.is_open()) {
                continue;
            }
            let seqs: Box<[u64]> = series.iter().map(|s| s.seq).collect();
            self.remember_evicted(meta.key, seqs);
            self.index.remove(slot, &meta.key, &self.mints);
            self.mints[slot].active = false;
            self.series[slot * count..][..count].fill(Series::NONE_OPEN);
            self.free.push(slot);
            if self.last_slot == slot {
                self.last_slot = usize::MAX;
            }
            evicted += 1;
        }
        self.stats.evicted += evicted as u64;
        evicted
    }

    /// Keeps an evicted mint's `seq`s, forgetting the oldest beyond the
    /// bound.
    fn remember_evicted(&mut self, mint: Pubkey, seqs: Box<[u64]>) {
        if self.config.max_evicted == 0 {
            return;
        }
        while self.evicted.len() >= self.config.max_evicted {
            let Some(oldest) = self.evicted_order.pop_front() else { break };
            self.evicted.remove(&oldest);
        }
        if self.evicted.insert(mint, seqs).is_none() {
            self.evicted_order.push_back(mint);
        }
        // Keys of mints that returned stay in the order until they reach
        // its front; bound the order so they cannot pile up.
        if self.evicted_order.len() > 2 * self.config.max_evicted.max(1) {
            self.evicted_order.retain(|k| self.evicted.contains_key(k));
        }
    }

    /// Slot of the trade's mint, registering the mint if new.
    #[inline(always)]
    fn slot_of(&mut self, trade: &Trade) -> Result<usize, Rejected> {
        if let Some(meta) = self.mints.get(self.last_slot)
            && meta.key == trade.mint
        {
            return Ok(self.last_slot);
        }
        self.slot_for(&trade.mint, &trade.quote_mint, trade.quote_decimals, trade.timestamp)
    }

    /// Slot of `mint`, registering it (quoted in `quote_mint`) if new.
    #[inline]
    fn slot_for(&mut self, mint: &Pubkey, quote_mint: &Pubkey, decimals: u8, ts: i64) -> Result<usize, Rejected> {
        let slot = match self.index.get(mint, &self.mints) {
            Some(slot) => slot,
            None => self.register(mint, quote_mint, decimals, ts)?,
        };
        self.last_slot = slot;
        Ok(slot)
    }

    /// Gives a new mint a slot and its series: a freed slot if any.
    #[cold]
    fn register(&mut self, mint: &Pubkey, quote_mint: &Pubkey, decimals: u8, ts: i64) -> Result<usize, Rejected> {
        if self.mint_count() >= self.config.max_mints || self.mints.len() >= MintIndex::MAX_SLOTS {
            self.stats.mint_limit += 1;
            return Err(Rejected::MintLimit);
        }
        let quote = match self.quote_index.get(quote_mint) {
            Some(&quote) => quote,
            None if self.quotes.len() < MAX_QUOTES => {
                let quote = self.quotes.len() as u16;
                self.quotes.push(*quote_mint);
                self.quote_index.insert(*quote_mint, quote);
                quote
            }
            None => {
                self.stats.mint_limit += 1;
                return Err(Rejected::MintLimit);
            }
        };
        let count = self.windows.len();
        let meta = MintMeta {
            key: *mint,
            quote,
            last_trade_s: i64::MIN,
            closed_restored: 0,
            restored: 0,
            quote_decimals: decimals,
            active: true,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.mints[slot] = meta;
                slot
            }
            None => {
                let slot = self.mints.len();
                self.mints.push(meta);
                self.series.resize((slot + 1) * count, Series::NONE_OPEN);
                if slot.is_multiple_of(MINTS_PER_WORD) {
                    self.open_bits.resize(self.open_bits.len() + count, 0);
                }
                slot
            }
        };
        self.index.insert(slot, &self.mints);
        let series = &mut self.series[slot * count..][..count];
        if let Some(seqs) = self.evicted.remove(mint) {
            for (s, seq) in series.iter_mut().zip(seqs.iter()) {
                s.seq = *seq;
            }
            self.stats.returned += 1;
        } else if self.config.seq_origin == SeqOrigin::Time {
            let floor = (ts.max(0) as u64) << SEQ_TIME_SHIFT;
            series.iter_mut().for_each(|s| s.seq = floor);
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

    /// Applies a trade that is late for no window, whose series hold no
    /// earlier bar, to every window of the mint in `slot`: the hot path.
    #[inline]
    fn apply_on_time(&mut self, slot: usize, fill: &Fill, out: &mut Vec<Update>) {
        let count = self.windows.len();
        let series = &mut self.series[slot * count..][..count];
        let open_words = &mut self.open_bits[slot / MINTS_PER_WORD * count..][..count];
        let bit = 1 << (slot % MINTS_PER_WORD);
        let windows = self.windows.iter().zip(open_words);
        match self.config.policy {
            EmitPolicy::EveryChange => {
                // The updates are written straight into the buffer's spare
                // room, one per window: no capacity check per update, and
                // the loop stays here with the trade's values in registers
                // (a call to `extend` took them through memory). Each update
                // is made from the new state in registers: reading it back
                // from the series right after storing it field by field
                // would stall on store-to-load forwarding.
                out.reserve(count);
                let room = &mut out.spare_capacity_mut()[..count];
                let mut written = 0;
                for (update, (series, (window, open_word))) in room.iter_mut().zip(series.iter_mut().zip(windows)) {
                    let next = Series { seq: series.seq + 1, ..series.after(window.open_s, fill) };
                    *series = next;
                    mark_open(open_word, bit);
                    update.write(next.update(slot, written, false));
                    written += 1;
                }
                let len = out.len() + written;
                // SAFETY: the loop initialized the first `written` slots
                // past the length, within the capacity reserved.
                #[allow(unsafe_code)]
                unsafe {
                    out.set_len(len)
                };
                self.stats.updates += count as u64;
            }
            EmitPolicy::Coalesce => {
                for (idx, (series, (window, open_word))) in series.iter_mut().zip(windows).enumerate() {
                    *series = series.after(window.open_s, fill);
                    if !series.tally.replace_dirty(true) {
                        self.dirty.push(slot * count + idx);
                    }
                    mark_open(open_word, bit);
                    debug_assert!(series.low <= series.open && series.open <= series.high);
                }
            }
        }
        self.stats.trades_applied += 1;
    }

    /// Applies a trade window by window: where its bar ended by the clock,
    /// or is older than the series' open bar, it is late; where the series
    /// holds an earlier bar, that bar closes first; where a restored closed
    /// bar holds it (or a later one), it is late.
    #[cold]
    fn apply_each(&mut self, slot: usize, fill: &Fill, out: &mut Vec<Update>) {
        let count = self.windows.len();
        let mut applied = false;
        for w in 0..count {
            let window = self.windows[w];
            let idx = slot * count + w;
            if self.mints[slot].closed_restored & (1 << w) != 0 {
                let series = &self.series[idx];
                if !series.tally.is_open() && window.open_s <= series.open_time_s {
                    // The restored bar is closed in Kafka: this trade is of
                    // it or of an earlier bar.
                    self.stats.late_by_window[w] += 1;
                    continue;
                }
                self.mints[slot].closed_restored &= !(1 << w);
            }
            let series = self.series[idx];
            if window.end_s <= self.clock_s || (series.tally.is_open() && series.open_time_s > window.open_s) {
                // Ended by the clock (the bar is closed, or was never opened
                // and can no longer be), or older than the open bar.
                self.stats.late_by_window[w] += 1;
                continue;
            }
            let word = slot / MINTS_PER_WORD * count + w;
            let bit = 1u64 << (slot % MINTS_PER_WORD);
            if series.tally.is_open() && series.open_time_s < window.open_s {
                // A later bar of this series: the open one is complete.
                let closing = Series { seq: series.seq + 1, ..series };
                self.series[idx] = Series { seq: closing.seq, last: series.last, ..Series::NONE_OPEN };
                self.open_bits[word] &= !bit;
                out.push(closing.update(slot, w, true));
                self.stats.closes += 1;
                self.stats.updates += 1;
            }
            applied = true;
            let series = &mut self.series[idx];
            *series = series.after(window.open_s, fill);
            mark_open(&mut self.open_bits[word], bit);
            match self.config.policy {
                EmitPolicy::EveryChange => {
                    series.seq += 1;
                    self.stats.updates += 1;
                    out.push(series.update(slot, w, false));
                }
                EmitPolicy::Coalesce => {
                    if !series.tally.replace_dirty(true) {
                        self.dirty.push(idx);
                    }
                }
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
    fn close_due(&mut self, due: u32, now_s: i64, out: &mut Vec<Update>) {
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
                    debug_assert!(series.tally.is_open());
                    let end_s = series.open_time_s.saturating_add(window.len_s);
                    if end_s > now_s {
                        window.next_close_s = window.next_close_s.min(end_s);
                        continue;
                    }
                    words[w] &= !bit;
                    let closing = Series { seq: series.seq + 1, ..*series };
                    *series = Series { seq: closing.seq, last: closing.last, ..Series::NONE_OPEN };
                    out.push(closing.update(slot, w, true));
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
/// the mint itself is compared in the slot's [`MintMeta`].
///
/// Like the FxHash it replaces, the hash is not keyed: input crafted to
/// collide makes lookups slow, never wrong, and the mint limit bounds them.
#[derive(Debug, Default)]
struct MintIndex {
    /// A power of two long, at most a quarter full, so most lookups end at
    /// the first entry; `slot == EMPTY` marks a free one.
    entries: Vec<IndexEntry>,
    /// Mints in the index.
    len: usize,
}

/// One entry of [`MintIndex`].
#[derive(Debug, Clone, Copy)]
struct IndexEntry {
    /// Hash bits other than those that chose the position, to skip most
    /// mints that are not the one sought without reading them.
    tag: u32,
    /// Index into the slots, or [`MintIndex::EMPTY`].
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

    /// The slot of `mint`, if registered; `mints` is slot → mint.
    #[inline]
    fn get(&self, mint: &Pubkey, mints: &[MintMeta]) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        let (mut at, tag) = self.place(mint);
        loop {
            let entry = self.entries[at];
            if entry.slot == Self::EMPTY {
                return None;
            }
            if entry.tag == tag && mints.get(entry.slot as usize).is_some_and(|m| m.key == *mint) {
                return Some(entry.slot as usize);
            }
            at = (at + 1) & (self.entries.len() - 1);
        }
    }

    /// Adds the mint in `slot` (not in the index yet), growing the table
    /// when it would be over a quarter full.
    fn insert(&mut self, slot: usize, mints: &[MintMeta]) {
        self.len += 1;
        if self.len * 4 > self.entries.len() {
            let entries = (self.entries.len() * 2).max(Self::MIN_ENTRIES);
            self.entries = vec![IndexEntry { tag: 0, slot: Self::EMPTY }; entries];
            for (slot, meta) in mints.iter().enumerate().filter(|(_, m)| m.active) {
                self.put(slot, &meta.key);
            }
        } else if let Some(meta) = mints.get(slot) {
            self.put(slot, &meta.key);
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

    /// Removes the mint in `slot`, shifting later entries of its probe run
    /// back so every lookup still finds its mint without tombstones.
    fn remove(&mut self, slot: usize, mint: &Pubkey, mints: &[MintMeta]) {
        if self.entries.is_empty() {
            return;
        }
        let mask = self.entries.len() - 1;
        let (mut hole, _) = self.place(mint);
        loop {
            match self.entries[hole].slot {
                Self::EMPTY => return,
                s if s as usize == slot => break,
                _ => hole = (hole + 1) & mask,
            }
        }
        self.len -= 1;
        let mut next = hole;
        loop {
            next = (next + 1) & mask;
            let entry = self.entries[next];
            if entry.slot == Self::EMPTY {
                break;
            }
            let Some(meta) = mints.get(entry.slot as usize) else { break };
            let home = self.place(&meta.key).0;
            // The entry may move into the hole unless its home lies
            // cyclically in (hole, next].
            let stays = if hole <= next { hole < home && home <= next } else { hole < home || home <= next };
            if !stays {
                self.entries[hole] = entry;
                hole = next;
            }
        }
        self.entries[hole] = IndexEntry { tag: 0, slot: Self::EMPTY };
    }
}

#[cfg(test)]
mod tests;
