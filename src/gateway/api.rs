//! The history API's requests and answers, sans-io: `/api/klines`
//! (klinecast's JSON rows) and `/api/v3/klines` (Binance's array rows) take
//! the same parameters with Binance's semantics and answer errors as
//! Binance does, `{"code":..,"msg":..}` with Binance's codes, so client
//! libraries recognise them.
//!
//! - `symbol` (or `mint`): the mint, base58. `interval` (or `window`): one
//!   of the served windows.
//! - `startTime`, `endTime`: unix milliseconds, bounds on the open time.
//!   With `startTime` the page is the first `limit` bars from it; without,
//!   the last `limit` bars up to `endTime` (or now). Oldest first either
//!   way: to page back, ask again with `endTime` = first open time − 1.
//! - `limit`: 1 to 1000, default 500.
//! - `fill=prev` (extension): empty windows filled in; `unit=mcap`
//!   (extension): market caps instead of prices.

use thiserror::Error;

use super::binance;
use crate::aggregate::windows::{label, parse_window};
use crate::codec::json::{BarJson, Unit, parse_mint};
use crate::codec::trade::Pubkey;
use crate::history::Edge;
use crate::history::fill::Row;

/// Default `limit`, as Binance's.
pub const DEFAULT_LIMIT: usize = 500;
/// Largest `limit`, as Binance's. Overflow policy: refused (-1130), never
/// clamped, so a client learns the bound.
pub const MAX_LIMIT: usize = 1000;

/// Which shape a request is answered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `/api/klines`: klinecast's JSON objects.
    Native,
    /// `/api/v3/klines`: Binance's arrays.
    Binance,
}

/// A validated klines request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KlinesQuery {
    /// The series' mint.
    pub mint: Pubkey,
    /// The series' window, seconds.
    pub window_s: u32,
    /// Open times from (unix seconds, inclusive).
    pub from_s: i64,
    /// Open times to (unix seconds, inclusive).
    pub to_s: i64,
    /// Most rows.
    pub limit: usize,
    /// Which end of the range the page is taken from.
    pub edge: Edge,
    /// Fill empty windows with the previous close.
    pub fill: bool,
    /// Prices or market caps.
    pub unit: Unit,
}

/// Why a request was refused; each with Binance's code for it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApiError {
    /// A required parameter is missing or empty (-1102).
    #[error("Mandatory parameter '{0}' was not sent, was empty/null, or malformed.")]
    Missing(&'static str),
    /// A mint that is not base58 of 32 bytes (-1121).
    #[error("Invalid symbol.")]
    BadSymbol,
    /// An interval that is not served (-1120).
    #[error("Invalid interval. Served intervals: {0}.")]
    BadInterval(String),
    /// A time that is not a whole number of milliseconds (-1100).
    #[error("Illegal characters found in parameter '{0}'; legal range is '^[0-9]{{1,20}}$'.")]
    IllegalChars(&'static str),
    /// `limit` or an extension's value out of range (-1130).
    #[error("Data sent for parameter '{0}' is not valid; {1}")]
    BadValue(&'static str, &'static str),
    /// `startTime` after `endTime` (-1023).
    #[error("Start time is greater than end time.")]
    StartAfterEnd,
    /// A parameter this endpoint does not take (-1104).
    #[error("Not all sent parameters were read; read '{read}' parameter(s) but was sent '{sent}' (unknown: '{name}').")]
    Unknown {
        /// The first unknown parameter (truncated).
        name: String,
        /// Parameters taken.
        read: usize,
        /// Parameters sent.
        sent: usize,
    },
    /// The same parameter twice (-1101).
    #[error("Duplicate values for a parameter detected: '{0}'.")]
    Duplicate(String),
    /// The store is still catching up with Kafka (503, -1001).
    #[error(
        "Internal error; unable to process your request. Please try again: history is still being read from Kafka."
    )]
    NotReady,
    /// The store failed (500, -1000).
    #[error("An unknown error occurred while processing the request: {0}")]
    Internal(String),
}

impl ApiError {
    /// Binance's error code.
    pub fn code(&self) -> i32 {
        match self {
            Self::Missing(_) => -1102,
            Self::BadSymbol => -1121,
            Self::BadInterval(_) => -1120,
            Self::IllegalChars(_) => -1100,
            Self::BadValue(..) => -1130,
            Self::StartAfterEnd => -1023,
            Self::Unknown { .. } => -1104,
            Self::Duplicate(_) => -1101,
            Self::NotReady => -1001,
            Self::Internal(_) => -1000,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::NotReady => 503,
            Self::Internal(_) => 500,
            _ => 400,
        }
    }

    /// `{"code":..,"msg":..}`.
    pub fn body(&self) -> String {
        serde_json::json!({ "code": self.code(), "msg": self.to_string() }).to_string()
    }
}

/// Parameters each shape takes: (name, alias).
const NATIVE_PARAMS: [&str; 9] =
    ["mint", "symbol", "window", "interval", "startTime", "endTime", "limit", "fill", "unit"];

/// Parses a klines request's query parameters (decoded pairs, in order).
pub fn parse_klines(shape: Shape, params: &[(String, String)], windows: &[u32]) -> Result<KlinesQuery, ApiError> {
    let allowed: &[&str] = match shape {
        Shape::Native => &NATIVE_PARAMS,
        Shape::Binance => &["symbol", "interval", "startTime", "endTime", "limit", "fill", "unit"],
    };
    let mut seen: Vec<&str> = Vec::new();
    for (name, _) in params {
        let Some(&known) = allowed.iter().find(|a| **a == name) else {
            let name: String = name.chars().take(40).collect();
            return Err(ApiError::Unknown { name, read: seen.len(), sent: params.len() });
        };
        if seen.contains(&known) {
            return Err(ApiError::Duplicate(known.to_owned()));
        }
        seen.push(known);
    }
    let get = |names: &[&str]| params.iter().find(|(n, _)| names.contains(&n.as_str())).map(|(_, v)| v.as_str());
    if get(&["mint"]).is_some() && get(&["symbol"]).is_some() {
        return Err(ApiError::Duplicate("symbol".into()));
    }
    if get(&["window"]).is_some() && get(&["interval"]).is_some() {
        return Err(ApiError::Duplicate("interval".into()));
    }
    let symbol = get(&["symbol", "mint"]).filter(|s| !s.is_empty()).ok_or(ApiError::Missing("symbol"))?;
    let mint = parse_mint(symbol).map_err(|_| ApiError::BadSymbol)?;
    let interval = get(&["interval", "window"]).filter(|s| !s.is_empty()).ok_or(ApiError::Missing("interval"))?;
    let served = || windows.iter().map(|&w| label(w)).collect::<Vec<_>>().join(", ");
    let window_s = match shape {
        Shape::Binance => binance::interval_s(interval),
        // klinecast's own spelling too (300s, 1H), but never Binance's `M`
        // (months) read as minutes.
        Shape::Native if interval.ends_with('M') => None,
        Shape::Native => binance::interval_s(interval).or_else(|| parse_window(interval).ok()),
    };
    let window_s = window_s.filter(|w| windows.contains(w)).ok_or_else(|| ApiError::BadInterval(served()))?;
    let start = millis(get(&["startTime"]), "startTime")?;
    let end = millis(get(&["endTime"]), "endTime")?;
    if let (Some(start), Some(end)) = (start, end)
        && start > end
    {
        return Err(ApiError::StartAfterEnd);
    }
    let limit = match get(&["limit"]) {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) && text.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(ApiError::BadValue("limit", "a whole number from 1 to 1000")),
        },
    };
    let fill = match get(&["fill"]) {
        None | Some("none") => false,
        Some("prev") => true,
        Some(_) => return Err(ApiError::BadValue("fill", "prev or none")),
    };
    let unit = match get(&["unit"]) {
        None => Unit::Price,
        Some(text) => Unit::parse(text).ok_or(ApiError::BadValue("unit", "price or mcap"))?,
    };
    Ok(KlinesQuery::new(mint, window_s, (start, end), limit, fill, unit))
}

impl KlinesQuery {
    /// A query from Binance's parameters: `(startTime, endTime)` in ms.
    pub fn new(
        mint: Pubkey,
        window_s: u32,
        (start, end): (Option<i64>, Option<i64>),
        limit: usize,
        fill: bool,
        unit: Unit,
    ) -> Self {
        // Open times are whole seconds: the first at or after startTime,
        // the last at or before endTime.
        let from_s = start.map_or(i64::MIN, |ms| ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0));
        let to_s = end.map_or(i64::MAX, |ms| ms.div_euclid(1000));
        let edge = if start.is_some() { Edge::Start } else { Edge::End };
        Self { mint, window_s, from_s, to_s, limit, edge, fill, unit }
    }
}

/// A time parameter: digits only (as Binance's `^[0-9]{1,20}$`), within i64.
fn millis(value: Option<&str>, name: &'static str) -> Result<Option<i64>, ApiError> {
    let Some(text) = value else { return Ok(None) };
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::IllegalChars(name));
    }
    text.parse::<i64>().map(Some).map_err(|_| ApiError::IllegalChars(name))
}

/// The JSON answer: an array of rows in `shape`.
pub fn body(shape: Shape, rows: &[Row], unit: Unit) -> String {
    let values: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| match shape {
            Shape::Binance => binance::kline_row(&row.bar, unit),
            Shape::Native => serde_json::to_value(BarJson::shown(&row.bar, unit, row.filled)).unwrap_or_default(),
        })
        .collect();
    serde_json::Value::Array(values).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOWS: &[u32] = &[1, 60, 300, 3600];
    const MINT: &str = "FXLjNRSQXuFM8fhKLEg2QeuUxs4Eu2hhc28tZhzrpump";

    fn parse(shape: Shape, query: &str) -> Result<KlinesQuery, ApiError> {
        let params: Vec<(String, String)> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect();
        parse_klines(shape, &params, WINDOWS)
    }

    #[test]
    fn binance_semantics_of_times_and_limit() {
        let q = parse(Shape::Binance, &format!("symbol={MINT}&interval=1m")).unwrap();
        assert_eq!((q.window_s, q.limit, q.edge, q.from_s, q.to_s), (60, 500, Edge::End, i64::MIN, i64::MAX));
        let q = parse(Shape::Binance, &format!("symbol={MINT}&interval=5m&startTime=1500&endTime=9999&limit=1000"))
            .unwrap();
        assert_eq!((q.from_s, q.to_s, q.limit, q.edge), (2, 9, 1000, Edge::Start));
        let q = parse(Shape::Native, &format!("mint={MINT}&window=300s&endTime=60000&fill=prev&unit=mcap")).unwrap();
        assert_eq!((q.window_s, q.to_s, q.edge, q.fill, q.unit), (300, 60, Edge::End, true, Unit::MarketCap));
    }

    #[test]
    fn bad_input_gets_binances_codes() {
        let code = |shape, query: String| parse(shape, &query).unwrap_err().code();
        let b = Shape::Binance;
        assert_eq!(code(b, "interval=1m".into()), -1102);
        assert_eq!(code(b, "symbol=&interval=1m".into()), -1102);
        assert_eq!(code(b, "symbol=BTCUSDT&interval=1m".into()), -1121);
        assert_eq!(code(b, format!("symbol={MINT}")), -1102);
        for interval in ["7m", "1M", "1x", "60", "1H"] {
            assert_eq!(code(b, format!("symbol={MINT}&interval={interval}")), -1120, "{interval}");
        }
        for bad in ["abc", "-1", "1.5", "", "1e3", "99999999999999999999"] {
            assert_eq!(code(b, format!("symbol={MINT}&interval=1m&startTime={bad}")), -1100, "{bad}");
            assert_eq!(code(b, format!("symbol={MINT}&interval=1m&endTime={bad}")), -1100, "{bad}");
        }
        assert_eq!(code(b, format!("symbol={MINT}&interval=1m&startTime=2000&endTime=1000")), -1023);
        for limit in ["0", "5000", "1001", "x", "+5", "-1"] {
            assert_eq!(code(b, format!("symbol={MINT}&interval=1m&limit={limit}")), -1130, "{limit}");
        }
        assert_eq!(code(b, format!("symbol={MINT}&interval=1m&fill=next")), -1130);
        assert_eq!(code(b, format!("symbol={MINT}&interval=1m&unit=usd")), -1130);
        assert_eq!(code(b, format!("symbol={MINT}&interval=1m&window=1m")), -1104);
        assert_eq!(code(b, format!("symbol={MINT}&interval=1m&limit=5&limit=6")), -1101);
        assert_eq!(code(Shape::Native, format!("mint={MINT}&symbol={MINT}&window=1m")), -1101);
        let error = parse(b, format!("symbol={MINT}&interval=2m").as_str()).unwrap_err();
        assert_eq!(error.status(), 400);
        let body: serde_json::Value = serde_json::from_str(&error.body()).unwrap();
        assert_eq!(body["code"], -1120);
        assert!(body["msg"].as_str().unwrap().contains("1s, 1m, 5m, 1h"));
    }
}
