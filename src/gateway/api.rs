//! The JSON HTTP API: `/api/klines` (closed-bar history, Binance-like) and
//! `/api/mints`, both answered from the shard feed's memory.

use super::feed::HISTORY_BARS;
use super::http::RequestHead;
use super::server::Shard;
use crate::aggregate::windows::parse_window;
use crate::codec::json::{BarJson, parse_mint};

/// Default `limit` of `/api/klines`.
pub const DEFAULT_LIMIT: usize = 500;
/// Mints listed by `/api/mints`.
pub const MINTS_LISTED: usize = 1000;

/// `GET /api/klines?window=5m&mint=<base58>&startTime=<ms>&endTime=<ms>&limit=500`:
/// closing bars of one series, oldest first. Errors are (status, message).
pub fn klines(shard: &Shard, head: &RequestHead) -> Result<String, (u16, String)> {
    let bad = |m: String| (400, m);
    let window = head.query_param("window").ok_or_else(|| bad("window is required, e.g. window=1m".into()))?;
    let window_s = parse_window(&window).map_err(|e| bad(e.to_string()))?;
    if shard.config.windows.position(window_s).is_none() {
        return Err(bad(format!("window {window} is not served; windows: {}", shard.config.windows)));
    }
    let mint = head.query_param("mint").ok_or_else(|| bad("mint is required (base58)".into()))?;
    let mint = parse_mint(&mint).map_err(bad)?;
    let millis = |key: &str| -> Result<Option<i64>, (u16, String)> {
        head.query_param(key)
            .map(|v| v.parse::<i64>().map_err(|_| bad(format!("{key} must be unix milliseconds"))))
            .transpose()
    };
    let from_s = millis("startTime")?.map_or(i64::MIN, |ms| ms.div_euclid(1000));
    let to_s = millis("endTime")?.map_or(i64::MAX, |ms| ms.div_euclid(1000));
    let limit = match head.query_param("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=HISTORY_BARS).contains(&n) => n,
            _ => return Err(bad(format!("limit must be 1 to {HISTORY_BARS}"))),
        },
    };
    let feed = shard.feed().ok_or_else(|| (503, "history is not available: the shard feed did not start".into()))?;
    if !feed.history_ready() {
        return Err((503, "history is still being read back from Kafka; retry in a moment".into()));
    }
    let bars: Vec<BarJson> = feed.klines(&mint, window_s, from_s, to_s, limit).iter().map(BarJson::from).collect();
    serde_json::to_string(&bars).map_err(|e| (500, e.to_string()))
}

/// `GET /api/mints`: mints seen, most recently traded first.
pub fn mints_json(shard: &Shard) -> String {
    let list = shard.feed().map(|f| f.mints(MINTS_LISTED)).unwrap_or_default();
    let items: Vec<serde_json::Value> = list
        .into_iter()
        .map(|(mint, time, close)| {
            serde_json::json!({"mint": bs58::encode(mint).into_string(), "last_bar_time": time, "last_close": close})
        })
        .collect();
    serde_json::Value::Array(items).to_string()
}
