//! TradingView's UDF datafeed under `/udf/`, sans-io: what the Charting
//! Library's `UDFCompatibleDatafeed` asks (`config`, `symbols`, `search`,
//! `time`, `history`) and the answers it reads. A symbol is a mint
//! (base58); resolutions are the served windows in TradingView's spelling
//! (`1S` seconds, `1` minutes, `1D` days: `1S, 1, 5, 60` by default).
//!
//! `history?symbol=&resolution=&from=&to=&countback=` answers
//! `{"s":"ok","t":[..],"o":[..],"h":[..],"l":[..],"c":[..],"v":[..]}` with
//! the bars whose open time is in `[from, to)` (unix seconds), at most the
//! newest [`MAX_BARS`], or, with `countback`, the `countback` bars before
//! `to`; the bar still forming comes last, as in every history page. No bar
//! there: `{"s":"no_data","nextTime":t}`, `t` the open time of the newest
//! bar before `from` (absent when there is none), which is where the
//! library looks next. Bad parameters: `{"s":"error","errmsg":".."}`.
//! Volumes are in tokens, as Binance's base volume.

use serde_json::{Value, json};

use super::api::KlinesQuery;
use crate::codec::bar::Bar;
use crate::codec::json::{Unit, parse_mint};
use crate::codec::trade::{Pubkey, TOKEN_UNITS_PER_TOKEN};
use crate::history::fill::Row;

/// Most bars one `history` answer holds; the library asks again further
/// back for more.
pub const MAX_BARS: usize = 1000;

/// A resolution in TradingView's spelling for a window of `window_s`.
pub fn resolution_of(window_s: u32) -> String {
    match window_s {
        s if s % 86_400 == 0 => format!("{}D", s / 86_400),
        s if s % 60 == 0 => (s / 60).to_string(),
        s => format!("{s}S"),
    }
}

/// The window of a resolution, if it is one of `windows`.
pub fn window_of(resolution: &str, windows: &[u32]) -> Option<u32> {
    windows.iter().copied().find(|&w| resolution_of(w) == resolution)
}

/// `/udf/config`.
pub fn config(windows: &[u32]) -> Value {
    json!({
        "supported_resolutions": windows.iter().map(|&w| resolution_of(w)).collect::<Vec<_>>(),
        "supports_group_request": false,
        "supports_marks": false,
        "supports_timescale_marks": false,
        "supports_search": true,
        "supports_time": true,
        "exchanges": [{ "value": "", "name": "All", "desc": "" }],
        "symbols_types": [{ "name": "crypto", "value": "crypto" }],
    })
}

/// A power of ten that shows `price` with about five significant digits
/// (pump.fun prices are near 1e-8 SOL), between 10^2 and 10^16.
pub fn pricescale_for(price: f64) -> u64 {
    let digits = if price.is_finite() && price > 0.0 { (-price.log10()).ceil() as i64 + 4 } else { 8 };
    10u64.pow(digits.clamp(2, 16) as u32)
}

/// `/udf/symbols?symbol=<mint>`: `latest` is the mint's newest bar, for its
/// quote and its price's scale.
pub fn symbol_info(latest: &Bar, windows: &[u32]) -> Value {
    let name = bs58::encode(latest.mint).into_string();
    let quote = crate::codec::quote::label(&latest.quote_mint);
    let seconds: Vec<String> =
        windows.iter().filter(|&&w| w < 60).map(|&w| resolution_of(w).trim_end_matches('S').to_owned()).collect();
    json!({
        "name": name,
        "ticker": name,
        "full_name": name,
        "description": format!("{name} / {quote}"),
        "type": "crypto",
        "session": "24x7",
        "timezone": "Etc/UTC",
        "exchange": crate::codec::bar::Venue::names(latest.venues),
        "listed_exchange": crate::codec::bar::Venue::names(latest.venues),
        "currency_code": quote,
        "minmov": 1,
        "pricescale": pricescale_for(latest.close),
        "has_intraday": true,
        "has_seconds": !seconds.is_empty(),
        "seconds_multipliers": seconds,
        "has_daily": windows.iter().any(|w| w % 86_400 == 0),
        "intraday_multipliers": windows.iter().filter(|&&w| w >= 60 && w % 86_400 != 0).map(|w| (w / 60).to_string()).collect::<Vec<_>>(),
        "supported_resolutions": windows.iter().map(|&w| resolution_of(w)).collect::<Vec<_>>(),
        "volume_precision": 0,
        "data_status": "streaming",
    })
}

/// One `/udf/search` result.
pub fn search_item(bar: &Bar) -> Value {
    let name = bs58::encode(bar.mint).into_string();
    let quote = crate::codec::quote::label(&bar.quote_mint);
    json!({
        "symbol": name,
        "full_name": name,
        "description": format!("{name} / {quote}"),
        "exchange": crate::codec::bar::Venue::names(bar.venues),
        "ticker": name,
        "type": "crypto",
    })
}

/// An error answer.
pub fn error(message: &str) -> Value {
    json!({ "s": "error", "errmsg": message })
}

/// A validated `history` request: the page to read, and `from` (for
/// `nextTime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryRequest {
    /// The page of the history store.
    pub query: KlinesQuery,
    /// `from`, unix seconds.
    pub from_s: i64,
}

/// Parses `history`'s parameters (decoded pairs).
pub fn parse_history(params: &[(String, String)], windows: &[u32]) -> Result<HistoryRequest, String> {
    let get = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let mint: Pubkey = parse_mint(get("symbol").ok_or("symbol is required")?).map_err(|_| "unknown symbol")?;
    let resolution = get("resolution").ok_or("resolution is required")?;
    let window_s = window_of(resolution, windows).ok_or_else(|| {
        let served: Vec<String> = windows.iter().map(|&w| resolution_of(w)).collect();
        format!(
            "resolution {} is not served (served: {})",
            resolution.chars().take(16).collect::<String>(),
            served.join(", ")
        )
    })?;
    let number = |name: &str| -> Result<Option<i64>, String> {
        get(name).map(|v| v.parse::<i64>().map_err(|_| format!("{name} must be an integer"))).transpose()
    };
    let to_s = number("to")?.ok_or("to is required")?;
    let from_s = number("from")?.unwrap_or(i64::MIN);
    let countback = number("countback")?;
    if countback.is_some_and(|n| n < 1) {
        return Err("countback must be positive".into());
    }
    // Open times in [from, to): the last one at or before to − 1. With
    // countback, that many bars before `to` whatever `from` says.
    let (start, limit) = match countback {
        Some(n) => (None, (n as usize).min(MAX_BARS)),
        None => (Some(from_s.saturating_mul(1000)), MAX_BARS),
    };
    let end_ms = to_s.saturating_sub(1).saturating_mul(1000);
    let mut query = KlinesQuery::new(mint, window_s, (start, Some(end_ms)), limit, false, Unit::Price);
    // The newest bars of the range, not the oldest: the library asks again
    // before the first one for more.
    query.edge = crate::history::Edge::End;
    Ok(HistoryRequest { query, from_s: if countback.is_some() { i64::MIN } else { from_s } })
}

/// `history`'s answer for `rows`, or `no_data` with the newest open time
/// before the range, `before`.
pub fn history(rows: &[Row], before: Option<i64>) -> Value {
    if rows.is_empty() {
        return match before {
            Some(t) => json!({ "s": "no_data", "nextTime": t }),
            None => json!({ "s": "no_data" }),
        };
    }
    let column = |f: fn(&Bar) -> f64| rows.iter().map(|r| f(&r.bar)).collect::<Vec<f64>>();
    json!({
        "s": "ok",
        "t": rows.iter().map(|r| r.bar.open_time_s).collect::<Vec<_>>(),
        "o": column(|b| b.open),
        "h": column(|b| b.high),
        "l": column(|b| b.low),
        "c": column(|b| b.close),
        "v": column(|b| b.volume_tokens as f64 / TOKEN_UNITS_PER_TOKEN),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOWS: &[u32] = &[1, 60, 300, 3600];

    #[test]
    fn resolutions_are_tradingviews_spelling() {
        let served: Vec<String> = WINDOWS.iter().map(|&w| resolution_of(w)).collect();
        assert_eq!(served, ["1S", "1", "5", "60"]);
        assert_eq!(resolution_of(86_400), "1D");
        assert_eq!(window_of("5", WINDOWS), Some(300));
        assert_eq!(window_of("1D", WINDOWS), None);
        assert_eq!(config(WINDOWS)["supported_resolutions"], json!(["1S", "1", "5", "60"]));
    }

    #[test]
    fn pricescale_shows_five_digits_of_tiny_prices() {
        assert_eq!(pricescale_for(3.2e-8), 1_000_000_000_000);
        assert!(3.2e-8 * pricescale_for(3.2e-8) as f64 >= 10_000.0);
        assert_eq!(pricescale_for(150.0), 100);
        assert_eq!(pricescale_for(0.0), 100_000_000);
    }

    #[test]
    fn history_requests_and_their_errors() {
        let mint = "So11111111111111111111111111111111111111112";
        let pairs =
            |list: &[(&str, &str)]| list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        let r =
            parse_history(&pairs(&[("symbol", mint), ("resolution", "1"), ("from", "600"), ("to", "1200")]), WINDOWS)
                .unwrap();
        assert_eq!((r.query.window_s, r.query.from_s, r.query.to_s, r.query.limit), (60, 600, 1199, MAX_BARS));
        let r = parse_history(
            &pairs(&[("symbol", mint), ("resolution", "1S"), ("to", "100"), ("countback", "5")]),
            WINDOWS,
        )
        .unwrap();
        assert_eq!((r.query.window_s, r.query.from_s, r.query.to_s, r.query.limit), (1, i64::MIN, 99, 5));
        for bad in [
            pairs(&[("resolution", "1"), ("to", "1")]),
            pairs(&[("symbol", "nope"), ("resolution", "1"), ("to", "1")]),
            pairs(&[("symbol", mint), ("resolution", "7"), ("to", "1")]),
            pairs(&[("symbol", mint), ("resolution", "1")]),
            pairs(&[("symbol", mint), ("resolution", "1"), ("to", "x")]),
            pairs(&[("symbol", mint), ("resolution", "1"), ("to", "9"), ("countback", "0")]),
        ] {
            assert!(parse_history(&bad, WINDOWS).is_err(), "{bad:?}");
        }
        assert_eq!(history(&[], Some(42)), json!({"s": "no_data", "nextTime": 42}));
        assert_eq!(history(&[], None), json!({"s": "no_data"}));
    }
}
