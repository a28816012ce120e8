//! SPEC §3 the plain way, for end-to-end tests to compare the topic with:
//! group trades by (mint, window, floor(ts/w)*w), dropping a trade for a
//! window when the event clock (latest timestamp seen before it) already
//! passed the end of its bar.

use std::collections::BTreeMap;

use klinecast::codec::bar::Bar;
use klinecast::codec::trade::TradeEvent;

/// The service's default windows, in partition order.
pub const WINDOWS: [i64; 4] = [1, 60, 300, 3600];

/// A bar as the reference computes it.
#[derive(Debug, Clone, PartialEq)]
pub struct RefBar {
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume_quote: u64,
    volume_tokens: u64,
    buy_volume_quote: u64,
    buy_volume_tokens: u64,
    trades: u32,
}

impl From<&Bar> for RefBar {
    fn from(bar: &Bar) -> Self {
        Self {
            open: bar.open,
            high: bar.high,
            low: bar.low,
            close: bar.close,
            volume_quote: bar.volume_quote,
            volume_tokens: bar.volume_tokens,
            buy_volume_quote: bar.buy_volume_quote,
            buy_volume_tokens: bar.buy_volume_tokens,
            trades: bar.trades,
        }
    }
}

/// (mint, window seconds, open time).
pub type Key = ([u8; 32], u32, i64);

/// The bars of `trades` and, per window, how many trades were late for it.
pub fn reference(trades: &[TradeEvent]) -> (BTreeMap<Key, RefBar>, [u64; 4]) {
    let mut bars: BTreeMap<Key, RefBar> = BTreeMap::new();
    let mut late = [0u64; 4];
    let mut clock = i64::MIN;
    for t in trades {
        let price = (t.virtual_sol_reserves as f64 / 1e9) / (t.virtual_token_reserves as f64 / 1e6);
        for (i, w) in WINDOWS.into_iter().enumerate() {
            let start = t.timestamp.div_euclid(w) * w;
            if start + w <= clock {
                late[i] += 1;
                continue;
            }
            let bar = bars.entry((t.mint, w as u32, start)).or_insert(RefBar {
                open: price,
                high: price,
                low: price,
                close: price,
                volume_quote: 0,
                volume_tokens: 0,
                buy_volume_quote: 0,
                buy_volume_tokens: 0,
                trades: 0,
            });
            bar.high = bar.high.max(price);
            bar.low = bar.low.min(price);
            bar.close = price;
            bar.volume_quote += t.sol_amount;
            bar.volume_tokens += t.token_amount;
            bar.buy_volume_quote += if t.is_buy { t.sol_amount } else { 0 };
            bar.buy_volume_tokens += if t.is_buy { t.token_amount } else { 0 };
            bar.trades += 1;
        }
        clock = clock.max(t.timestamp);
    }
    (bars, late)
}

/// One message of the topic: partition, key, the bar, and where it was
/// read (for messages).
pub struct Update {
    pub partition: i32,
    pub key: String,
    pub bar: Bar,
    pub at: String,
}

/// The topic's updates, in offset order per partition, against `expected`:
/// partition and key by window, per series seq +1 (no gap, no duplicate),
/// exactly one closing update per reference bar, with the reference's
/// values.
pub fn check_updates(updates: &[Update], expected: &BTreeMap<Key, RefBar>) {
    let mut closing: BTreeMap<Key, &Bar> = BTreeMap::new();
    let mut last_seq: BTreeMap<([u8; 32], u32), u64> = BTreeMap::new();
    for Update { partition, key, bar, at } in updates {
        let window_index = WINDOWS.iter().position(|&w| w == i64::from(bar.window_s)).expect("a configured window");
        assert_eq!(*partition, window_index as i32, "partition by window");
        assert_eq!(*key, format!("key_{}", bar.window_s));
        let seq = last_seq.entry((bar.mint, bar.window_s)).or_insert(0);
        assert_eq!(bar.seq, *seq + 1, "seq of window {} at {at}: a gap or a duplicate", bar.window_s);
        *seq = bar.seq;
        if bar.closed {
            let previous = closing.insert((bar.mint, bar.window_s, bar.open_time_s), bar);
            assert!(previous.is_none(), "two closing updates for {:?}", (bar.window_s, bar.open_time_s));
        }
    }
    assert_eq!(closing.len(), expected.len(), "one closing update per reference bar");
    for (key, want) in expected {
        let got = closing.get(key).unwrap_or_else(|| panic!("no closing update for {key:?}"));
        assert_eq!(&RefBar::from(*got), want, "bar {key:?}");
    }
}
