//! One test per rule of SPEC §3.

use super::*;
use crate::codec::bar::Venue;
use crate::codec::quote::WSOL_MINT;

const A: Pubkey = [0xaa; 32];
const B: Pubkey = [0xbb; 32];

/// A trade whose price is `price_milli / 1000` × 1e-8 SOL per token.
fn trade(mint: Pubkey, ts: i64, price_milli: u64, sol: u64, is_buy: bool) -> Trade {
    Trade {
        mint,
        quote_mint: WSOL_MINT,
        price: price(price_milli),
        quote_amount: sol,
        token_amount: sol * 3,
        timestamp: ts,
        position: Position::default(),
        quote_decimals: 9,
        venue: Venue::PumpFun,
        is_buy,
    }
}

/// The aggregator's calls, with the updates they emit turned into bars.
fn apply(a: &mut Aggregator, t: &Trade, out: &mut Vec<Bar>) -> Result<(), Rejected> {
    let mut updates = Vec::new();
    let result = a.apply(t, &mut updates);
    out.extend(a.bars(&updates));
    result
}

fn advance_clock(a: &mut Aggregator, now_s: i64, out: &mut Vec<Bar>) {
    let mut updates = Vec::new();
    a.advance_clock(now_s, &mut updates);
    out.extend(a.bars(&updates));
}

fn flush_changes(a: &mut Aggregator, out: &mut Vec<Bar>) {
    let mut updates = Vec::new();
    a.flush_changes(&mut updates);
    out.extend(a.bars(&updates));
}

fn close_all(a: &mut Aggregator, out: &mut Vec<Bar>) {
    let mut updates = Vec::new();
    a.close_all(&mut updates);
    out.extend(a.bars(&updates));
}

fn price(price_milli: u64) -> f64 {
    (price_milli * 10) as f64 / 1e9 / 1e9
}

fn agg(windows: &str) -> Aggregator {
    Aggregator::new(&windows.parse().unwrap(), EmitPolicy::EveryChange)
}

fn run(agg: &mut Aggregator, trades: &[Trade]) -> Vec<Bar> {
    let mut out = Vec::new();
    for t in trades {
        apply(agg, t, &mut out).unwrap();
    }
    out
}

fn closed(bars: &[Bar]) -> Vec<Bar> {
    bars.iter().filter(|b| b.closed).copied().collect()
}

#[test]
fn open_time_is_floor_of_timestamp_by_window() {
    let mut a = agg("1s,1m,5m,1h");
    let out = run(&mut a, &[trade(A, 1_770_648_704, 100, 1, true)]);
    let opens: Vec<i64> = out.iter().map(|b| b.open_time_s).collect();
    assert_eq!(opens, [1_770_648_704, 1_770_648_660, 1_770_648_600, 1_770_645_600]);
    assert!(out.iter().all(|b| b.check().is_ok()));
}

#[test]
fn first_trade_sets_open_never_zero() {
    let mut a = agg("1m");
    let out = run(&mut a, &[trade(A, 60, 500, 1, true), trade(A, 61, 700, 1, true), trade(A, 62, 300, 1, false)]);
    let last = out.last().copied().unwrap();
    assert_eq!((last.open, last.high, last.low, last.close), (price(500), price(700), price(300), price(300)));
    assert_eq!(last.trades, 3);
}

#[test]
fn trade_on_the_boundary_opens_the_next_bar_and_closes_the_previous() {
    let mut a = agg("1m");
    let out = run(&mut a, &[trade(A, 119, 100, 1, true), trade(A, 120, 200, 1, true)]);
    assert_eq!(out.len(), 3);
    assert_eq!((out[1].open_time_s, out[1].closed, out[1].close), (60, true, price(100)));
    assert_eq!((out[2].open_time_s, out[2].closed, out[2].open), (120, false, price(200)));
}

#[test]
fn a_gap_of_many_windows_emits_no_empty_bars() {
    let mut a = agg("1s");
    let out = run(&mut a, &[trade(A, 10, 100, 1, true), trade(A, 10_000, 200, 1, true)]);
    let opens: Vec<(i64, bool)> = out.iter().map(|b| (b.open_time_s, b.closed)).collect();
    assert_eq!(opens, [(10, false), (10, true), (10_000, false)]);
    assert_eq!(out[2].open, price(200));
}

#[test]
fn late_trades_are_counted_per_window_and_dropped() {
    let mut a = agg("1s,1m");
    let out = run(&mut a, &[trade(A, 70, 100, 5, true), trade(A, 71, 100, 5, true), trade(A, 70, 900, 7, true)]);
    // The 1 s bar of 70 closed when 71 arrived: the second trade at 70 is
    // late there, but still on time for the open 1 m bar.
    assert_eq!(a.stats().late_by_window, [1, 0]);
    let one_s: Vec<&Bar> = out.iter().filter(|b| b.window_s == 1).collect();
    assert!(one_s.iter().all(|b| b.high == price(100)), "late trade leaked into a 1s bar");
    let minute = out.iter().rfind(|b| b.window_s == 60).copied().unwrap();
    assert_eq!((minute.trades, minute.high, minute.volume_quote), (3, price(900), 17));
}

#[test]
fn a_late_trade_for_a_mint_without_open_bar_is_dropped() {
    let mut a = agg("1s");
    let out = run(&mut a, &[trade(A, 100, 100, 1, true), trade(B, 99, 100, 1, true)]);
    assert_eq!(out.len(), 1);
    assert_eq!(a.stats().late_by_window, [1]);
    assert_eq!(a.stats().trades_applied, 1);
}

#[test]
fn the_clock_closes_bars_at_their_end_not_before() {
    let mut a = agg("1s,1m");
    let mut out = run(&mut a, &[trade(A, 60, 100, 1, true)]);
    out.clear();
    advance_clock(&mut a, 60, &mut out);
    assert!(out.is_empty());
    advance_clock(&mut a, 61, &mut out);
    assert_eq!(closed(&out).iter().map(|b| b.window_s).collect::<Vec<_>>(), [1]);
    advance_clock(&mut a, 119, &mut out);
    assert_eq!(closed(&out).len(), 1);
    advance_clock(&mut a, 120, &mut out);
    assert_eq!(closed(&out).iter().map(|b| b.window_s).collect::<Vec<_>>(), [1, 60]);
    advance_clock(&mut a, 50, &mut out);
    assert_eq!(a.clock_s(), 120, "the clock never goes back");
}

#[test]
fn another_mints_later_trade_closes_bars_by_event_time() {
    let mut a = agg("1s");
    let out = run(&mut a, &[trade(A, 5, 100, 1, true), trade(B, 6, 300, 1, true)]);
    let c = closed(&out);
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].mint, c[0].open_time_s), (A, 5));
}

#[test]
fn mints_are_independent_series() {
    let mut a = agg("1m");
    let out = run(
        &mut a,
        &[trade(A, 0, 100, 1, true), trade(B, 1, 900, 2, false), trade(A, 2, 200, 4, true), trade(B, 60, 1, 1, true)],
    );
    let c = closed(&out);
    assert_eq!(c.len(), 2);
    let a_bar = c.iter().find(|b| b.mint == A).copied().unwrap();
    let b_bar = c.iter().find(|b| b.mint == B).copied().unwrap();
    assert_eq!((a_bar.open, a_bar.close, a_bar.trades, a_bar.volume_quote), (price(100), price(200), 2, 5));
    assert_eq!((b_bar.open, b_bar.trades, b_bar.buy_volume_quote), (price(900), 1, 0));
    assert_eq!(a.mint_count(), 2);
}

#[test]
fn volumes_count_both_sides_and_buys_separately() {
    let mut a = agg("1h");
    let out = run(&mut a, &[trade(A, 0, 100, 10, true), trade(A, 1, 100, 20, false), trade(A, 2, 100, 40, true)]);
    let last = out.last().copied().unwrap();
    assert_eq!((last.volume_quote, last.volume_tokens, last.buy_volume_quote), (70, 210, 50));
}

#[test]
fn seq_grows_by_one_per_update_across_bars() {
    let mut a = agg("1s");
    let out = run(&mut a, &[trade(A, 0, 1, 1, true), trade(A, 0, 2, 1, true), trade(A, 1, 3, 1, true)]);
    assert_eq!(out.iter().map(|b| b.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    let other = run(&mut a, &[trade(B, 1, 1, 1, true)]);
    assert_eq!(other[0].seq, 1, "seq is per series");
}

#[test]
fn coalescing_emits_latest_state_once_and_closes_always() {
    let windows: Windows = "1s".parse().unwrap();
    let mut a = Aggregator::new(&windows, EmitPolicy::Coalesce);
    let mut out = Vec::new();
    for p in [100, 300, 200] {
        apply(&mut a, &trade(A, 0, p, 1, true), &mut out).unwrap();
    }
    assert!(out.is_empty());
    flush_changes(&mut a, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].trades, out[0].high, out[0].close, out[0].seq), (3, price(300), price(200), 1));
    flush_changes(&mut a, &mut out);
    assert_eq!(out.len(), 1, "nothing changed, nothing emitted");
    apply(&mut a, &trade(A, 0, 50, 1, true), &mut out).unwrap();
    apply(&mut a, &trade(A, 1, 60, 1, true), &mut out).unwrap();
    assert_eq!(out.len(), 2, "the close goes out at once, superseding the pending change");
    assert_eq!((out[1].closed, out[1].low, out[1].seq), (true, price(50), 2));
    flush_changes(&mut a, &mut out);
    assert_eq!((out.len(), out[2].open_time_s, out[2].seq), (3, 1, 3));
}

#[test]
fn close_all_flushes_every_open_bar() {
    let mut a = agg("1s,1m,5m,1h");
    let mut out = run(&mut a, &[trade(A, 7, 100, 1, true), trade(B, 7, 100, 1, true)]);
    out.clear();
    close_all(&mut a, &mut out);
    assert_eq!(out.len(), 8);
    assert!(out.iter().all(|b| b.closed));
    out.clear();
    close_all(&mut a, &mut out);
    assert!(out.is_empty(), "a bar closes once");
}

#[test]
fn trades_without_price_and_over_the_mint_limit_are_rejected() {
    let windows: Windows = "1s".parse().unwrap();
    let mut a = Aggregator::with_max_mints(&windows, EmitPolicy::EveryChange, 1);
    let mut out = Vec::new();
    let mut no_price = trade(A, 0, 100, 1, true);
    no_price.price = f64::NAN;
    assert_eq!(apply(&mut a, &no_price, &mut out), Err(Rejected::NoPrice));
    assert_eq!(apply(&mut a, &trade(A, 0, 1, 1, true), &mut out), Ok(()));
    assert_eq!(apply(&mut a, &trade(B, 0, 1, 1, true), &mut out), Err(Rejected::MintLimit));
    assert_eq!((a.stats().no_price, a.stats().mint_limit, a.mint_count()), (1, 1, 1));
}

#[test]
fn restore_continues_an_open_bar_without_resetting_it() {
    let mut a = agg("1m");
    let out = run(&mut a, &[trade(A, 60, 500, 1, true), trade(A, 61, 900, 1, true), trade(A, 62, 100, 1, true)]);
    let last = *out.last().unwrap();
    let mut b = agg("1m");
    assert!(b.restore(&last));
    let out = run(&mut b, &[trade(A, 63, 400, 1, true)]);
    assert_eq!(
        (out[0].open, out[0].high, out[0].low, out[0].trades, out[0].seq),
        (price(500), price(900), price(100), 4, 4)
    );
    assert!(!b.restore(&last), "an older state never replaces a newer one");
}

/// The aggregator as first written: each series an `Option<Bar>`, and every
/// clock move that closes something scans all series. Slow and plainly
/// right; the real one keeps its state differently for speed and must emit
/// exactly the same bars, in the same order, with the same counters.
struct Model {
    windows: Vec<i64>,
    mints: Vec<Pubkey>,
    /// Per series: open bar, last seq, dirty.
    series: Vec<(Option<Bar>, u64, bool)>,
    clock_s: i64,
    policy: EmitPolicy,
    dirty: Vec<usize>,
    max_mints: usize,
    stats: AggregateStats,
    /// `ClockMode::External`: trades do not move the clock.
    external_clock: bool,
}

impl Model {
    fn new(windows: &Windows, policy: EmitPolicy, max_mints: usize) -> Self {
        Self {
            windows: windows.seconds().iter().map(|&w| i64::from(w)).collect(),
            mints: Vec::new(),
            series: Vec::new(),
            clock_s: i64::MIN,
            policy,
            dirty: Vec::new(),
            max_mints,
            stats: AggregateStats { late_by_window: vec![0; windows.len()], ..Default::default() },
            external_clock: false,
        }
    }

    fn first(&mut self, mint: &Pubkey) -> Result<usize, Rejected> {
        let n = self.windows.len();
        if let Some(i) = self.mints.iter().position(|m| m == mint) {
            return Ok(i * n);
        }
        if self.mints.len() >= self.max_mints {
            self.stats.mint_limit += 1;
            return Err(Rejected::MintLimit);
        }
        self.mints.push(*mint);
        self.series.resize(self.mints.len() * n, (None, 0, false));
        Ok((self.mints.len() - 1) * n)
    }

    fn emit(&mut self, idx: usize, bar: Bar, out: &mut Vec<Bar>) {
        self.series[idx].1 += 1;
        self.stats.updates += 1;
        out.push(Bar { seq: self.series[idx].1, ..bar });
    }

    fn apply(&mut self, t: &Trade, out: &mut Vec<Bar>) -> Result<(), Rejected> {
        let price = t.price;
        if !(price.is_finite() && price.is_sign_positive()) {
            self.stats.no_price += 1;
            return Err(Rejected::NoPrice);
        }
        if !VALID_TIMESTAMPS_S.contains(&t.timestamp) {
            self.stats.bad_timestamp += 1;
            return Err(Rejected::BadTimestamp);
        }
        let first = self.first(&t.mint)?;
        if self.external_clock {
            // The live clock moves only by ticks.
        } else {
            self.advance_clock(t.timestamp, out);
        }
        let mut applied = false;
        for w in 0..self.windows.len() {
            let len = self.windows[w];
            let open_time_s = t.timestamp.div_euclid(len) * len;
            let idx = first + w;
            let open_bar = self.series[idx].0;
            if open_time_s + len <= self.clock_s || open_bar.is_some_and(|b| b.open_time_s > open_time_s) {
                self.stats.late_by_window[w] += 1;
                continue;
            }
            if let Some(bar) = open_bar.filter(|b| b.open_time_s < open_time_s) {
                self.series[idx].0 = None;
                self.series[idx].2 = false;
                self.stats.closes += 1;
                self.emit(idx, Bar { closed: true, ..bar }, out);
            }
            applied = true;
            let mut bar = self.series[idx].0.unwrap_or(Bar {
                format: BAR_FORMAT,
                venues: 0,
                quote_decimals: t.quote_decimals,
                mint: t.mint,
                quote_mint: t.quote_mint,
                open_time_s,
                window_s: len as u32,
                trades: 0,
                open: price,
                high: price,
                low: price,
                close: price,
                volume_quote: 0,
                volume_tokens: 0,
                buy_volume_quote: 0,
                buy_volume_tokens: 0,
                seq: 0,
                produced_ns: 0,
                last_slot: 0,
                last_signature: 0,
                last_event: 0,
                resume_slot: 0,
                closed: false,
            });
            bar.high = bar.high.max(price);
            bar.low = bar.low.min(price);
            bar.close = price;
            bar.trades += 1;
            bar.venues |= t.venue.bit();
            bar.volume_quote = bar.volume_quote.saturating_add(t.quote_amount);
            bar.volume_tokens = bar.volume_tokens.saturating_add(t.token_amount);
            if t.is_buy {
                bar.buy_volume_quote = bar.buy_volume_quote.saturating_add(t.quote_amount);
                bar.buy_volume_tokens = bar.buy_volume_tokens.saturating_add(t.token_amount);
            }
            bar.last_slot = t.position.slot;
            bar.last_signature = t.position.signature;
            bar.last_event = t.position.event;
            self.series[idx].0 = Some(bar);
            match self.policy {
                EmitPolicy::EveryChange => self.emit(idx, bar, out),
                EmitPolicy::Coalesce if !self.series[idx].2 => {
                    self.series[idx].2 = true;
                    self.dirty.push(idx);
                }
                EmitPolicy::Coalesce => {}
            }
        }
        if applied {
            self.stats.trades_applied += 1;
        }
        Ok(())
    }

    fn advance_clock(&mut self, now_s: i64, out: &mut Vec<Bar>) {
        if now_s > self.clock_s {
            self.clock_s = now_s;
            self.close_where(|end_s| end_s <= now_s, out);
        }
    }

    fn close_all(&mut self, out: &mut Vec<Bar>) {
        self.close_where(|_| true, out);
    }

    fn close_where(&mut self, due: impl Fn(i64) -> bool, out: &mut Vec<Bar>) {
        for idx in 0..self.series.len() {
            let Some(bar) = self.series[idx].0 else { continue };
            if due(bar.open_time_s + i64::from(bar.window_s)) {
                self.series[idx].0 = None;
                self.series[idx].2 = false;
                self.stats.closes += 1;
                self.emit(idx, Bar { closed: true, ..bar }, out);
            }
        }
    }

    fn flush_changes(&mut self, out: &mut Vec<Bar>) {
        for idx in std::mem::take(&mut self.dirty) {
            if std::mem::take(&mut self.series[idx].2)
                && let Some(bar) = self.series[idx].0
            {
                self.emit(idx, bar, out);
            }
        }
    }

    fn restore(&mut self, bar: &Bar) -> bool {
        let Some(w) = self.windows.iter().position(|&w| w == i64::from(bar.window_s)) else {
            return false;
        };
        let Ok(first) = self.first(&bar.mint) else {
            return false;
        };
        let series = &mut self.series[first + w];
        if series.1 >= bar.seq {
            return false;
        }
        series.1 = bar.seq;
        if bar.closed || bar.open_time_s + i64::from(bar.window_s) <= self.clock_s {
            return true;
        }
        series.0 = Some(Bar { produced_ns: 0, ..*bar });
        true
    }
}

/// A small deterministic generator (SplitMix64), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Drives the real aggregator and the model with the same random steps from
/// `now`, checking after each that both emitted the same bars and counted
/// the same; returns the clock reached.
fn same_as_model(
    agg: &mut Aggregator,
    model: &mut Model,
    rng: &mut Rng,
    mints: u64,
    steps: usize,
    mut now: i64,
) -> i64 {
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for step in 0..steps {
        match rng.below(20) {
            0 => {
                now += rng.below(90) as i64;
                advance_clock(agg, now, &mut ours);
                model.advance_clock(now, &mut theirs);
            }
            1 => {
                flush_changes(agg, &mut ours);
                model.flush_changes(&mut theirs);
            }
            _ => {
                now += match rng.below(20) {
                    0..=11 => 0,
                    12..=15 => 1,
                    16..=18 => -(rng.below(6) as i64),
                    _ => rng.below(4000) as i64,
                };
                let mut mint = [0; 32];
                mint[..8].copy_from_slice(&rng.below(mints).to_le_bytes());
                let mut t = trade(mint, now, 1 + rng.below(1000), rng.below(10_000_000_000), rng.below(2) == 0);
                if rng.below(50) == 0 {
                    t.price = f64::INFINITY;
                }
                assert_eq!(apply(agg, &t, &mut ours), model.apply(&t, &mut theirs), "step {step}");
            }
        }
        assert_eq!(ours, theirs, "step {step}");
        assert_eq!((agg.stats(), agg.clock_s(), agg.mint_count()), (&model.stats, model.clock_s, model.mints.len()));
    }
    now
}

#[test]
fn emits_exactly_what_the_plain_model_emits() {
    let window_lists = ["1s,1m,5m,1h", "1s", "7s,1m", "2s,3s,5s", "1m,5m,15m,1h,4h,1d"];
    let mut rng = Rng(7);
    for case in 0..200 {
        let windows: Windows = window_lists[case % window_lists.len()].parse().unwrap();
        let policy = if case % 2 == 0 { EmitPolicy::EveryChange } else { EmitPolicy::Coalesce };
        // 1 mint, a few, and more than one 64-mint bitset word; some runs
        // hit the mint limit.
        let mints = [1, 3, 70, 200][case / 2 % 4];
        let max_mints = if case % 7 == 0 { 50 } else { DEFAULT_MAX_MINTS };
        let mut agg = Aggregator::with_max_mints(&windows, policy, max_mints);
        let mut model = Model::new(&windows, policy, max_mints);
        let start = 1_770_645_600 + rng.below(3600) as i64;
        let now = same_as_model(&mut agg, &mut model, &mut rng, mints, 400, start);
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        close_all(&mut agg, &mut ours);
        model.close_all(&mut theirs);
        assert_eq!(ours, theirs, "case {case}: close_all");
        same_as_model(&mut agg, &mut model, &mut rng, mints, 100, now);
    }
}

#[test]
fn restored_series_continue_as_in_the_model() {
    let windows: Windows = "1s,1m,5m,1h".parse().unwrap();
    let mut rng = Rng(11);
    for case in 0..50 {
        // A first run; the last update of each open bar is what Kafka holds.
        let mut before = Aggregator::new(&windows, EmitPolicy::EveryChange);
        let mut model = Model::new(&windows, EmitPolicy::EveryChange, DEFAULT_MAX_MINTS);
        same_as_model(&mut before, &mut model, &mut rng, 70, 300, 1_770_645_600);
        let now = before.clock_s();
        let last: Vec<Bar> = model.series.iter().filter_map(|&(bar, seq, _)| bar.map(|b| Bar { seq, ..b })).collect();
        let policy = if case % 2 == 0 { EmitPolicy::EveryChange } else { EmitPolicy::Coalesce };
        let mut agg = Aggregator::new(&windows, policy);
        let mut model = Model::new(&windows, policy, DEFAULT_MAX_MINTS);
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        if case % 3 == 0 {
            // Restoring after the clock moved: bars that ended are not reopened.
            advance_clock(&mut agg, now - 30, &mut ours);
            model.advance_clock(now - 30, &mut theirs);
        }
        for bar in &last {
            assert_eq!(agg.restore(bar), model.restore(bar));
            assert!(!agg.restore(bar), "a state is restored once");
        }
        // Continue from the first run's clock, so no restored bar lies in the
        // future of a trade.
        advance_clock(&mut agg, now, &mut ours);
        model.advance_clock(now, &mut theirs);
        assert_eq!(ours, theirs, "case {case}: restored bars that ended");
        same_as_model(&mut agg, &mut model, &mut rng, 70, 300, now);
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        close_all(&mut agg, &mut ours);
        model.close_all(&mut theirs);
        assert_eq!(ours, theirs, "case {case}: close_all");
    }
}

#[test]
fn positions_outside_the_valid_ranges_are_refused_and_the_edges_kept_exactly() {
    let mut a = agg("1s,1h");
    let mut out = Vec::new();
    let at = |slot, event| Trade { position: Position { slot, signature: 7, event }, ..trade(A, 10, 100, 1, true) };
    for (slot, event) in [(VALID_SLOTS.end, 0), (u64::MAX, 0), (5, VALID_EVENTS.end), (5, u32::MAX)] {
        assert_eq!(apply(&mut a, &at(slot, event), &mut out), Err(Rejected::BadPosition), "slot {slot} event {event}");
    }
    assert!(out.is_empty());
    assert_eq!((a.stats().bad_position, a.mint_count()), (4, 0));
    let (slot, event) = (VALID_SLOTS.end - 1, VALID_EVENTS.end - 1);
    assert_eq!(apply(&mut a, &at(slot, event), &mut out), Ok(()));
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|b| (b.last_slot, b.last_signature, b.last_event) == (slot, 7, event)));
    // A bar naming a position the aggregator cannot hold is not restored.
    let mut b = agg("1s,1h");
    let far = Bar { last_slot: VALID_SLOTS.end, ..out[0] };
    assert!(!b.restore(&far));
    assert_eq!(b.mint_count(), 0);
    assert!(b.restore(&out[0]));
}

#[test]
fn each_bar_names_its_mints_quote_and_distinct_quotes_are_bounded() {
    let windows: Windows = "1s".parse().unwrap();
    let mut a = Aggregator::with_max_mints(&windows, EmitPolicy::EveryChange, MAX_QUOTES + 10);
    let key = |i: usize| {
        let mut k = [0xaa; 32];
        k[..8].copy_from_slice(&(i as u64).to_le_bytes());
        k
    };
    let mut updates = Vec::new();
    for i in 0..MAX_QUOTES {
        let t = Trade {
            mint: key(i),
            quote_mint: key(i + 1),
            quote_decimals: (i % 10) as u8,
            ..trade(A, 10, 100, 1, true)
        };
        assert_eq!(a.apply(&t, &mut updates), Ok(()), "mint {i}");
    }
    let bars = a.bars(&updates);
    assert_eq!(bars.len(), MAX_QUOTES);
    for (i, bar) in bars.iter().enumerate() {
        assert_eq!((bar.mint, bar.quote_mint, bar.quote_decimals), (key(i), key(i + 1), (i % 10) as u8));
    }
    // One more quote is refused; a new mint in a quote already held is not.
    let late = Trade { mint: key(usize::MAX), quote_mint: key(usize::MAX - 1), ..trade(A, 10, 100, 1, true) };
    assert_eq!(a.apply(&late, &mut updates), Err(Rejected::MintLimit));
    let known = Trade { mint: key(usize::MAX), quote_mint: key(1), ..trade(A, 10, 100, 1, true) };
    assert_eq!(a.apply(&known, &mut updates), Ok(()));
    assert_eq!((a.stats().mint_limit, a.mint_count()), (1, MAX_QUOTES + 1));
}

#[test]
fn a_negative_zero_price_is_no_price() {
    let mut a = agg("1s");
    let mut out = Vec::new();
    let negative_zero = Trade { price: -0.0, ..trade(A, 10, 100, 1, true) };
    assert_eq!(apply(&mut a, &negative_zero, &mut out), Err(Rejected::NoPrice));
    let zero = Trade { price: 0.0, ..trade(A, 10, 100, 1, true) };
    assert_eq!(apply(&mut a, &zero, &mut out), Ok(()));
    assert_eq!((a.stats().no_price, out.len()), (1, 1));
}

#[test]
fn timestamps_outside_the_valid_range_are_refused() {
    let mut a = agg("1s,1h");
    let mut out = Vec::new();
    for ts in [-1, VALID_TIMESTAMPS_S.end, i64::MIN, i64::MAX] {
        assert_eq!(apply(&mut a, &trade(A, ts, 100, 1, true), &mut out), Err(Rejected::BadTimestamp));
    }
    assert!(out.is_empty());
    assert_eq!((a.stats().bad_timestamp, a.clock_s(), a.mint_count()), (4, i64::MIN, 0));
    let edges = [trade(A, 0, 100, 1, true), trade(A, VALID_TIMESTAMPS_S.end - 1, 100, 1, true)];
    let out = run(&mut a, &edges);
    assert!(out.iter().all(|b| b.check().is_ok()));
    assert_eq!(out.len(), 6, "two opens of two windows, and the two bars of 0 closed");
}

#[test]
fn a_restored_bar_closes_at_its_own_end() {
    // The last state in Kafka may be of a bar after the clock (another
    // process's wall clock ran ahead): it stays open until its own end.
    let mut a = agg("1m");
    let restored = Bar {
        format: BAR_FORMAT,
        venues: 1,
        quote_decimals: 9,
        mint: A,
        quote_mint: WSOL_MINT,
        open_time_s: 120,
        window_s: 60,
        trades: 2,
        open: price(5),
        high: price(5),
        low: price(5),
        close: price(5),
        volume_quote: 1,
        volume_tokens: 1,
        buy_volume_quote: 1,
        buy_volume_tokens: 1,
        seq: 7,
        produced_ns: 0,
        last_slot: 0,
        last_signature: 0,
        last_event: 0,
        resume_slot: 0,
        closed: false,
    };
    let mut out = Vec::new();
    advance_clock(&mut a, 100, &mut out);
    assert!(a.restore(&restored));
    advance_clock(&mut a, 179, &mut out);
    assert!(out.is_empty());
    advance_clock(&mut a, 180, &mut out);
    assert_eq!(out, [Bar { closed: true, seq: 8, ..restored }]);
}

fn meta(key: Pubkey) -> MintMeta {
    MintMeta { key, quote: 0, last_trade_s: 0, closed_restored: 0, restored: 0, quote_decimals: 9, active: true }
}

#[test]
fn the_mint_index_finds_every_mint_and_no_other() {
    let mut index = MintIndex::default();
    let mut mints: Vec<MintMeta> = Vec::new();
    let mut rng = Rng(3);
    let mut key = || {
        let mut k = [0; 32];
        k.chunks_exact_mut(8).for_each(|c| c.copy_from_slice(&rng.next().to_le_bytes()));
        k
    };
    for i in 0..5_000 {
        mints.push(meta(key()));
        index.insert(mints.len() - 1, &mints);
        // Also mints that differ from another in one byte.
        if i % 100 == 0 {
            let mut near = mints[mints.len() - 1].key;
            near[i % 32] ^= 1;
            mints.push(meta(near));
            index.insert(mints.len() - 1, &mints);
        }
    }
    assert!(index.entries.len() >= 4 * mints.len());
    for (slot, m) in mints.iter().enumerate() {
        assert_eq!(index.get(&m.key, &mints), Some(slot));
    }
    for _ in 0..1_000 {
        assert_eq!(index.get(&key(), &mints), None);
    }
    // Removing every other mint leaves the rest findable (backward shift
    // keeps probe runs whole), and the removed ones gone.
    for slot in (0..mints.len()).step_by(2) {
        let k = mints[slot].key;
        index.remove(slot, &k, &mints);
        mints[slot].active = false;
    }
    for (slot, m) in mints.iter().enumerate() {
        let want = if slot % 2 == 0 { None } else { Some(slot) };
        assert_eq!(index.get(&m.key, &mints).filter(|&s| mints[s].active), want, "slot {slot}");
        if slot % 2 == 0 {
            assert_eq!(index.get(&m.key, &mints), None, "slot {slot} still indexed");
        }
    }
    assert_eq!(index.len, mints.len() / 2);
}

fn live(windows: &str, policy: EmitPolicy) -> Aggregator {
    Aggregator::with_config(AggregatorConfig {
        clock: ClockMode::External,
        ..AggregatorConfig::new(&windows.parse().unwrap(), policy)
    })
}

#[test]
fn with_the_external_clock_trades_close_only_their_own_series() {
    let mut a = live("1s", EmitPolicy::EveryChange);
    let out = run(&mut a, &[trade(A, 10, 100, 1, true), trade(B, 12, 200, 1, true), trade(A, 11, 300, 1, true)]);
    // B's later trade closed nothing of A's; A's own later trade did.
    let kinds: Vec<(Pubkey, i64, bool)> = out.iter().map(|b| (b.mint, b.open_time_s, b.closed)).collect();
    assert_eq!(kinds, [(A, 10, false), (B, 12, false), (A, 10, true), (A, 11, false)]);
    let mut out = Vec::new();
    advance_clock(&mut a, 12, &mut out);
    assert_eq!(out.iter().map(|b| (b.mint, b.closed)).collect::<Vec<_>>(), [(A, true)]);
    // A trade older than its series' open bar, or whose bar ended by the
    // clock, is late.
    let out = run(&mut a, &[trade(B, 11, 1, 1, true), trade(A, 11, 1, 1, true)]);
    assert!(out.is_empty());
    assert_eq!(a.stats().late_by_window, [2]);
}

#[test]
fn the_external_clock_emits_what_the_model_emits() {
    let window_lists = ["1s,1m,5m,1h", "1s", "2s,3s,5s"];
    let mut rng = Rng(19);
    for case in 0..120 {
        let windows: Windows = window_lists[case % window_lists.len()].parse().unwrap();
        let policy = if case % 2 == 0 { EmitPolicy::EveryChange } else { EmitPolicy::Coalesce };
        let mints = [1, 3, 70][case % 3];
        let mut agg = Aggregator::with_config(AggregatorConfig {
            clock: ClockMode::External,
            ..AggregatorConfig::new(&windows, policy)
        });
        let mut model = Model { external_clock: true, ..Model::new(&windows, policy, DEFAULT_MAX_MINTS) };
        let now = same_as_model(&mut agg, &mut model, &mut rng, mints, 400, 1_770_645_600);
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        advance_clock(&mut agg, now + 2, &mut ours);
        model.advance_clock(now + 2, &mut theirs);
        close_all(&mut agg, &mut ours);
        model.close_all(&mut theirs);
        assert_eq!(ours, theirs, "case {case}");
    }
}

#[test]
fn a_coin_trades_in_one_quote() {
    let mut a = agg("1s");
    let mut out = Vec::new();
    apply(&mut a, &trade(A, 1, 100, 1, true), &mut out).unwrap();
    let usdc = Trade { quote_mint: crate::codec::quote::USDC_MINT, quote_decimals: 6, ..trade(A, 1, 100, 1, true) };
    assert_eq!(apply(&mut a, &usdc, &mut out), Err(Rejected::QuoteMismatch));
    assert_eq!((a.stats().quote_mismatch, out.len()), (1, 1));
    let other = Trade { mint: B, ..usdc };
    apply(&mut a, &other, &mut out).unwrap();
    assert_eq!((out[1].quote_mint, out[1].quote_decimals), (crate::codec::quote::USDC_MINT, 6));
}

#[test]
fn venues_and_buy_tokens_follow_the_trades() {
    let mut a = agg("1m");
    let swap = Trade { venue: Venue::PumpSwap, ..trade(A, 2, 100, 5, true) };
    let out = run(&mut a, &[trade(A, 1, 100, 10, false), swap]);
    let last = out.last().copied().unwrap();
    assert_eq!((last.venues, last.buy_volume_tokens, last.volume_tokens), (3, 15, 45));
}

#[test]
fn many_short_lived_mints_go_through_a_small_bound() {
    // 2,000 coins, each trading for a few seconds, through a bound of 8
    // mints tracked at once: idle mints are evicted, and none is refused.
    let windows: Windows = "1s,1m".parse().unwrap();
    let mut a = Aggregator::with_config(AggregatorConfig {
        clock: ClockMode::External,
        max_mints: 8,
        max_evicted: 100,
        ..AggregatorConfig::new(&windows, EmitPolicy::EveryChange)
    });
    let mut out = Vec::new();
    let mut peak = 0;
    let mint = |i: u64| {
        let mut m = [0u8; 32];
        m[..8].copy_from_slice(&(i + 1).to_le_bytes());
        m
    };
    for i in 0..2_000u64 {
        let t0 = 1_000 + 70 * i as i64;
        for k in 0..3 {
            apply(&mut a, &trade(mint(i), t0 + k, 100, 1, true), &mut out).unwrap();
        }
        advance_clock(&mut a, t0 + 64, &mut out);
        a.evict_idle();
        peak = peak.max(a.mint_count());
    }
    assert!(peak <= 2, "mints tracked at once: {peak}");
    assert_eq!(out.len(), 2_000 * (3 * 2 + 3 + 1), "every trade applied, every bar closed");
    assert_eq!((a.stats().mint_limit, a.stats().evicted), (0, 2_000));
    assert_eq!(a.evicted_count(), 100, "the kept seqs are bounded too");
    // The last coin evicted comes back: its series go on with seq + 1.
    let before = out.iter().rfind(|b| b.mint == mint(1_998) && b.window_s == 1).map(|b| b.seq).unwrap();
    out.clear();
    let later = a.clock_s() + 10;
    apply(&mut a, &trade(mint(1_998), later, 100, 1, true), &mut out).unwrap();
    assert_eq!(out[0].seq, before + 1);
    assert_eq!(a.stats().returned, 1);
}

#[test]
fn a_fresh_live_series_starts_above_any_earlier_life() {
    let windows: Windows = "1s".parse().unwrap();
    let mut a = Aggregator::with_config(AggregatorConfig {
        seq_origin: SeqOrigin::Time,
        ..AggregatorConfig::new(&windows, EmitPolicy::EveryChange)
    });
    let out = run(&mut a, &[trade(A, 1_770_000_000, 1, 1, true)]);
    assert_eq!(out[0].seq, (1_770_000_000u64 << SEQ_TIME_SHIFT) + 1);
    // A restored state is taken even though the floor is above it.
    let mut b = Aggregator::with_config(AggregatorConfig {
        seq_origin: SeqOrigin::Time,
        ..AggregatorConfig::new(&windows, EmitPolicy::EveryChange)
    });
    let restored = Bar { seq: 7, closed: true, ..out[0] };
    assert!(b.restore(&restored));
    assert!(!b.restore(&restored));
    let out = run(&mut b, &[trade(A, 1_770_000_005, 1, 1, true)]);
    assert_eq!(out[0].seq, 8);
}

/// A restart whose replay brings a trade of a bar Kafka already holds as
/// closed (the trade reached the source late): it is late, never a second,
/// partial closing bar of the same window; a trade of a later bar goes on
/// from the restored `seq`.
#[test]
fn a_restored_closed_bar_stays_closed_and_a_replayed_trade_of_it_is_late() {
    let mk = || live("1s,1m", EmitPolicy::EveryChange);
    let at = |ts, slot, sig| Trade {
        position: Position { slot, signature: sig, event: 0 },
        ..trade(A, ts, 100 + sig, 1 + sig, true)
    };
    let mut first = mk();
    let mut out = Vec::new();
    for (i, ts) in [1_020, 1_030, 1_085].into_iter().enumerate() {
        assert_eq!(apply(&mut first, &at(ts, 100 + i as u64, i as u64 + 1), &mut out), Ok(()));
    }
    advance_clock(&mut first, 1_200, &mut out);
    let closed_minute = out.iter().rfind(|b| b.window_s == 60 && b.open_time_s == 1_020).copied().unwrap();
    assert!(closed_minute.closed && closed_minute.trades == 2);
    // Restart with that closed bar as the series' last state, the clock
    // held before its end (the live source waits for its resume replay).
    let mut second = mk();
    assert!(second.restore(&closed_minute));
    let mut after = Vec::new();
    advance_clock(&mut second, 1_040, &mut after);
    assert_eq!(apply(&mut second, &at(1_041, 103, 9), &mut after), Ok(()));
    assert!(after.iter().all(|b| b.window_s != 60), "no update of the closed minute: {after:?}");
    assert_eq!(second.stats().late_by_window[1], 1);
    // A trade of the next minute opens it, one seq on.
    assert_eq!(apply(&mut second, &at(1_081, 104, 10), &mut after), Ok(()));
    let minute: Vec<&Bar> = after.iter().filter(|b| b.window_s == 60).collect();
    assert_eq!(minute.len(), 1);
    assert_eq!((minute[0].open_time_s, minute[0].seq, minute[0].trades), (1_080, closed_minute.seq + 1, 1));
    // And a trade of the closed minute after that is still late.
    assert_eq!(apply(&mut second, &at(1_059, 105, 11), &mut after), Ok(()));
    assert_eq!(second.stats().late_by_window[1], 2);
}

#[test]
fn the_memory_per_mint_is_what_the_docs_say() {
    // docs/solana.md "Run for weeks": 64 bytes of coin state and 104 per
    // window (plus an index entry of 8 bytes at most a quarter full).
    assert_eq!(std::mem::size_of::<MintMeta>(), 64);
    assert_eq!(std::mem::size_of::<Series>(), 104);
    assert_eq!(std::mem::size_of::<IndexEntry>(), 8);
    // An update fits in 128 bytes: the hot loop moves it without a memcpy
    // call (a 193-byte bar would need one).
    assert!(std::mem::size_of::<Update>() <= 128);
}
