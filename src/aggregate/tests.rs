//! One test per rule of SPEC §3.

use super::*;

const A: Pubkey = [0xaa; 32];
const B: Pubkey = [0xbb; 32];

/// A trade whose price is `price_milli / 1000` × 1e-8 SOL per token.
fn trade(mint: Pubkey, ts: i64, price_milli: u64, sol: u64, is_buy: bool) -> TradeEvent {
    // price = (vsol / 1e9) / (vtok / 1e6); with vtok = 1e15 raw units,
    // price = vsol * 1e-12, so vsol = price_milli * 10 gives price_milli * 1e-11.
    TradeEvent {
        mint,
        sol_amount: sol,
        token_amount: sol * 3,
        is_buy,
        user: [1; 32],
        timestamp: ts,
        virtual_sol_reserves: price_milli * 10,
        virtual_token_reserves: 1_000_000_000_000_000,
        real_sol_reserves: 0,
        real_token_reserves: 0,
    }
}

fn price(price_milli: u64) -> f64 {
    (price_milli * 10) as f64 / 1e9 / 1e9
}

fn agg(windows: &str) -> Aggregator {
    Aggregator::new(&windows.parse().unwrap(), EmitPolicy::EveryChange)
}

fn run(agg: &mut Aggregator, trades: &[TradeEvent]) -> Vec<Bar> {
    let mut out = Vec::new();
    for t in trades {
        agg.apply(t, &mut out).unwrap();
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
    assert_eq!((minute.trades, minute.high, minute.volume_lamports), (3, price(900), 17));
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
    a.advance_clock(60, &mut out);
    assert!(out.is_empty());
    a.advance_clock(61, &mut out);
    assert_eq!(closed(&out).iter().map(|b| b.window_s).collect::<Vec<_>>(), [1]);
    a.advance_clock(119, &mut out);
    assert_eq!(closed(&out).len(), 1);
    a.advance_clock(120, &mut out);
    assert_eq!(closed(&out).iter().map(|b| b.window_s).collect::<Vec<_>>(), [1, 60]);
    a.advance_clock(50, &mut out);
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
    assert_eq!((a_bar.open, a_bar.close, a_bar.trades, a_bar.volume_lamports), (price(100), price(200), 2, 5));
    assert_eq!((b_bar.open, b_bar.trades, b_bar.buy_volume_lamports), (price(900), 1, 0));
    assert_eq!(a.mint_count(), 2);
}

#[test]
fn volumes_count_both_sides_and_buys_separately() {
    let mut a = agg("1h");
    let out = run(&mut a, &[trade(A, 0, 100, 10, true), trade(A, 1, 100, 20, false), trade(A, 2, 100, 40, true)]);
    let last = out.last().copied().unwrap();
    assert_eq!((last.volume_lamports, last.volume_tokens, last.buy_volume_lamports), (70, 210, 50));
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
        a.apply(&trade(A, 0, p, 1, true), &mut out).unwrap();
    }
    assert!(out.is_empty());
    a.flush_changes(&mut out);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].trades, out[0].high, out[0].close, out[0].seq), (3, price(300), price(200), 1));
    a.flush_changes(&mut out);
    assert_eq!(out.len(), 1, "nothing changed, nothing emitted");
    a.apply(&trade(A, 0, 50, 1, true), &mut out).unwrap();
    a.apply(&trade(A, 1, 60, 1, true), &mut out).unwrap();
    assert_eq!(out.len(), 2, "the close goes out at once, superseding the pending change");
    assert_eq!((out[1].closed, out[1].low, out[1].seq), (true, price(50), 2));
    a.flush_changes(&mut out);
    assert_eq!((out.len(), out[2].open_time_s, out[2].seq), (3, 1, 3));
}

#[test]
fn close_all_flushes_every_open_bar() {
    let mut a = agg("1s,1m,5m,1h");
    let mut out = run(&mut a, &[trade(A, 7, 100, 1, true), trade(B, 7, 100, 1, true)]);
    out.clear();
    a.close_all(&mut out);
    assert_eq!(out.len(), 8);
    assert!(out.iter().all(|b| b.closed));
    out.clear();
    a.close_all(&mut out);
    assert!(out.is_empty(), "a bar closes once");
}

#[test]
fn trades_without_price_and_over_the_mint_limit_are_rejected() {
    let windows: Windows = "1s".parse().unwrap();
    let mut a = Aggregator::with_max_mints(&windows, EmitPolicy::EveryChange, 1);
    let mut out = Vec::new();
    let mut no_price = trade(A, 0, 100, 1, true);
    no_price.virtual_token_reserves = 0;
    assert_eq!(a.apply(&no_price, &mut out), Err(Rejected::NoPrice));
    assert_eq!(a.apply(&trade(A, 0, 1, 1, true), &mut out), Ok(()));
    assert_eq!(a.apply(&trade(B, 0, 1, 1, true), &mut out), Err(Rejected::MintLimit));
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
