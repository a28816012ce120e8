//! Bars in Binance's shapes, so Binance kline consumers read klinecast by
//! changing a URL: the REST row of `GET /api/v3/klines` and the WebSocket
//! `kline` event. Sans-io: bars in, JSON text out.
//!
//! Binance's field meanings, mapped: the symbol is the mint (base58); base
//! volume is tokens, quote volume is the bar's quote (SOL, USDC, …);
//! taker-buy volumes are the buy side. Prices and volumes are decimal
//! strings as Binance sends them; volumes are exact (integers of base
//! units, printed with their decimals), prices are the shortest decimal
//! that reads back to the same f64 (never an exponent: a pump.fun price is
//! about 0.00000003, which Binance's fixed 8 decimals would round away).

use serde_json::{Value, json};

use crate::aggregate::windows::label;
use crate::codec::bar::Bar;
use crate::codec::json::Unit;
use crate::codec::trade::TOKEN_UNITS_PER_TOKEN;

/// Decimals of a pump.fun token's raw units.
const TOKEN_DECIMALS: u8 = 6;
const _: () = assert!(TOKEN_UNITS_PER_TOKEN == 1e6);

/// `raw` base units with `decimals` decimals, exactly: `1234567, 6` →
/// `"1.234567"`.
pub fn decimal(raw: u64, decimals: u8) -> String {
    if decimals == 0 {
        return raw.to_string();
    }
    let scale = 10u128.pow(u32::from(decimals));
    let raw = u128::from(raw);
    format!("{}.{:0width$}", raw / scale, raw % scale, width = usize::from(decimals))
}

/// A price as a plain decimal string (Rust prints f64 without exponent and
/// with the fewest digits that read back the same).
pub fn price(value: f64) -> String {
    format!("{value}")
}

/// The bar's close time in Binance's sense: the last millisecond of its
/// window.
pub fn close_time_ms(bar: &Bar) -> i64 {
    (bar.open_time_s + i64::from(bar.window_s)) * 1000 - 1
}

/// One row of `/api/v3/klines`: `[open time, open, high, low, close,
/// volume, close time, quote volume, trades, taker-buy base volume,
/// taker-buy quote volume, "0"]`.
pub fn kline_row(bar: &Bar, unit: Unit) -> Value {
    json!([
        bar.open_time_s * 1000,
        price(unit.of(bar.open)),
        price(unit.of(bar.high)),
        price(unit.of(bar.low)),
        price(unit.of(bar.close)),
        decimal(bar.volume_tokens, TOKEN_DECIMALS),
        close_time_ms(bar),
        decimal(bar.volume_quote, bar.quote_decimals),
        bar.trades,
        decimal(bar.buy_volume_tokens, TOKEN_DECIMALS),
        decimal(bar.buy_volume_quote, bar.quote_decimals),
        "0"
    ])
}

/// The WebSocket `kline` event of a bar update: `E` is when the update was
/// produced (ms), `k.x` whether the bar is closed. Binance's first and last
/// trade ids (`f`, `L`) have no counterpart and are -1, as Binance sends
/// for a kline without trades.
pub fn kline_event(bar: &Bar, unit: Unit) -> String {
    let symbol = bs58::encode(bar.mint).into_string();
    json!({
        "e": "kline",
        "E": bar.produced_ns / 1_000_000,
        "s": symbol,
        "k": {
            "t": bar.open_time_s * 1000,
            "T": close_time_ms(bar),
            "s": symbol,
            "i": label(bar.window_s),
            "f": -1,
            "L": -1,
            "o": price(unit.of(bar.open)),
            "c": price(unit.of(bar.close)),
            "h": price(unit.of(bar.high)),
            "l": price(unit.of(bar.low)),
            "v": decimal(bar.volume_tokens, TOKEN_DECIMALS),
            "n": bar.trades,
            "x": bar.closed,
            "q": decimal(bar.volume_quote, bar.quote_decimals),
            "V": decimal(bar.buy_volume_tokens, TOKEN_DECIMALS),
            "Q": decimal(bar.buy_volume_quote, bar.quote_decimals),
            "B": "0"
        }
    })
    .to_string()
}

/// Parses a Binance interval (`1s`, `1m`, `5m`, `1h`, `1d`, `1w`; `M`,
/// months, has no fixed length) into seconds; case-sensitive as Binance's.
pub fn interval_s(text: &str) -> Option<u32> {
    let unit = text.chars().last()?;
    let digits = &text[..text.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 6 {
        return None;
    }
    let n: u32 = digits.parse().ok()?;
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return None,
    };
    n.checked_mul(scale).filter(|&s| s > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar() -> Bar {
        Bar {
            quote_decimals: 9,
            volume_quote: 1_500_000_000,
            volume_tokens: 53_619_898_000_000,
            buy_volume_quote: 1_000_000_001,
            buy_volume_tokens: 1,
            trades: 3,
            seq: 7,
            produced_ns: 1_700_000_060_123_456_789,
            closed: true,
            ..Bar::one_trade([1; 32], 60, 1_700_000_040, 2.796e-8)
        }
    }

    #[test]
    fn rows_have_binances_order_and_exact_strings() {
        let row = kline_row(&bar(), Unit::Price);
        assert_eq!(
            row,
            json!([
                1_700_000_040_000i64,
                "0.00000002796",
                "0.00000002796",
                "0.00000002796",
                "0.00000002796",
                "53619898.000000",
                1_700_000_099_999i64,
                "1.500000000",
                3,
                "0.000001",
                "1.000000001",
                "0"
            ])
        );
        assert_eq!(kline_row(&bar(), Unit::MarketCap)[4], "27.96");
        assert_eq!(decimal(5, 0), "5");
        assert_eq!(decimal(u64::MAX, 19), "1.8446744073709551615");
    }

    #[test]
    fn events_have_binances_keys() {
        let event: Value = serde_json::from_str(&kline_event(&bar(), Unit::Price)).unwrap();
        assert_eq!(event["e"], "kline");
        assert_eq!(event["E"], 1_700_000_060_123i64);
        let k = &event["k"];
        for key in ["t", "T", "s", "i", "f", "L", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q", "B"] {
            assert!(k.get(key).is_some(), "{key}");
        }
        assert_eq!((k["i"].as_str(), k["x"].as_bool(), k["n"].as_u64()), (Some("1m"), Some(true), Some(3)));
        assert_eq!(k["s"], event["s"]);
    }

    #[test]
    fn intervals_are_binances_spelling() {
        assert_eq!(interval_s("1s"), Some(1));
        assert_eq!(interval_s("15m"), Some(900));
        assert_eq!(interval_s("1w"), Some(604_800));
        for bad in ["1M", "1", "m", "0m", "5x", "-1m", "1.5h", "", "1H", "１m"] {
            assert_eq!(interval_s(bad), None, "{bad}");
        }
    }
}
