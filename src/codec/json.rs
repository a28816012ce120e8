//! The JSON form of a bar, for `tail --json`, `/ws?format=json` and the HTTP
//! API. Field names follow the original service (`open`, `high`, `low`,
//! `close`, `unix_timestamp`, `time_window_seconds`), then the extra fields:
//! the quote (mint, symbol, decimals), the venue, volumes in whole quote units
//! and whole tokens; on request prices as market caps ([`Unit::MarketCap`])
//! and filled-in empty windows marked `filled`.

use serde::{Deserialize, Serialize};

use super::bar::{Bar, Venue};
use super::quote;
use super::trade::{TOKEN_UNITS_PER_TOKEN, pow10};

/// A bar as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BarJson {
    /// Open price, quote per token.
    pub open: f64,
    /// High price.
    pub high: f64,
    /// Low price.
    pub low: f64,
    /// Close (latest) price.
    pub close: f64,
    /// Bar start, unix seconds.
    pub unix_timestamp: i64,
    /// Window length, seconds.
    pub time_window_seconds: u32,
    /// The mint, base58.
    pub mint: String,
    /// The quote mint prices and volumes are in, base58 (SOL: wrapped SOL).
    pub quote: String,
    /// The quote's symbol (`SOL`, `USDC`, `PUMP`) or a shortened mint.
    pub quote_symbol: String,
    /// The quote mint's decimals.
    pub quote_decimals: u8,
    /// Where the trades happened: `pump.fun`, `pumpswap`, or both joined by `+`.
    pub venue: String,
    /// Quote traded, whole quote units.
    pub volume_quote: f64,
    /// Tokens traded (whole tokens).
    pub volume_tokens: f64,
    /// Quote spent on buys, whole quote units.
    pub buy_volume_quote: f64,
    /// Tokens bought (whole tokens).
    pub buy_volume_tokens: f64,
    /// Trades in the bar.
    pub trades: u32,
    /// Update number within the series.
    pub seq: u64,
    /// Final update of the bar.
    pub closed: bool,
    /// When the update was produced, unix nanoseconds.
    pub produced_ns: u64,
    /// The bar format it was read from.
    pub format: u16,
    /// A window without trades, filled in with the previous close
    /// (`fill=prev`); absent on real bars.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub filled: bool,
    /// `"mcap"` when open/high/low/close are market caps; absent when they
    /// are prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// Whole tokens of every pump.fun coin: 1,000,000,000, created with 6
/// decimals and a fixed supply (pump-fun/pump-public-docs
/// `docs/instructions/COIN_CREATION.md`; every recorded `CreateEvent` in
/// `tests/fixtures/solana/events.jsonl` has `token_total_supply`
/// 1,000,000,000,000,000 raw units). The mint authority is revoked at
/// creation, so the supply never changes, on the curve or after graduation.
pub const PUMP_TOTAL_SUPPLY_TOKENS: f64 = 1e9;

/// What open, high, low and close are in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Unit {
    /// Quote per whole token.
    #[default]
    Price,
    /// Market cap in the quote: price × [`PUMP_TOTAL_SUPPLY_TOKENS`].
    MarketCap,
}

impl Unit {
    /// Parses `price` or `mcap`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "price" => Some(Self::Price),
            "mcap" => Some(Self::MarketCap),
            _ => None,
        }
    }

    /// A price in this unit.
    pub fn of(self, price: f64) -> f64 {
        match self {
            Self::Price => price,
            Self::MarketCap => price * PUMP_TOTAL_SUPPLY_TOKENS,
        }
    }
}

impl From<&Bar> for BarJson {
    fn from(bar: &Bar) -> Self {
        let quote_units = pow10(bar.quote_decimals);
        Self {
            open: bar.open,
            high: bar.high,
            low: bar.low,
            close: bar.close,
            unix_timestamp: bar.open_time_s,
            time_window_seconds: bar.window_s,
            mint: bs58::encode(bar.mint).into_string(),
            quote: bs58::encode(bar.quote_mint).into_string(),
            quote_symbol: quote::label(&bar.quote_mint),
            quote_decimals: bar.quote_decimals,
            venue: Venue::names(bar.venues).to_owned(),
            volume_quote: bar.volume_quote as f64 / quote_units,
            volume_tokens: bar.volume_tokens as f64 / TOKEN_UNITS_PER_TOKEN,
            buy_volume_quote: bar.buy_volume_quote as f64 / quote_units,
            buy_volume_tokens: bar.buy_volume_tokens as f64 / TOKEN_UNITS_PER_TOKEN,
            trades: bar.trades,
            seq: bar.seq,
            closed: bar.closed,
            produced_ns: bar.produced_ns,
            format: bar.format,
            filled: false,
            unit: None,
        }
    }
}

impl BarJson {
    /// The bar as one line of JSON.
    pub fn line(bar: &Bar) -> String {
        // Serializing plain numbers, strings and bools cannot fail.
        serde_json::to_string(&Self::from(bar)).unwrap_or_default()
    }

    /// The bar in `unit`, marked filled or not.
    pub fn shown(bar: &Bar, unit: Unit, filled: bool) -> Self {
        let mut json = Self::from(bar);
        if unit == Unit::MarketCap {
            (json.open, json.high, json.low, json.close) =
                (unit.of(bar.open), unit.of(bar.high), unit.of(bar.low), unit.of(bar.close));
            json.unit = Some("mcap".to_owned());
        }
        json.filled = filled;
        json
    }

    /// [`BarJson::shown`] as one line of JSON.
    pub fn line_in(bar: &Bar, unit: Unit) -> String {
        serde_json::to_string(&Self::shown(bar, unit, false)).unwrap_or_default()
    }
}

/// Parses a base58 mint address into its 32 bytes.
pub fn parse_mint(text: &str) -> Result<[u8; 32], String> {
    let mut mint = [0u8; 32];
    match bs58::decode(text.trim()).onto(&mut mint[..]) {
        Ok(32) => Ok(mint),
        Ok(n) => Err(format!("mint {text:?} decodes to {n} bytes, expected 32")),
        Err(e) => Err(format!("mint {text:?} is not base58: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_the_original_field_names() {
        let bar = Bar {
            format: crate::codec::bar::BAR_FORMAT,
            venues: 3,
            quote_decimals: 6,
            mint: [0; 32],
            quote_mint: crate::codec::quote::PUMP_MINT,
            open_time_s: 60,
            window_s: 60,
            trades: 2,
            open: 1.0,
            high: 2.0,
            low: 0.5,
            close: 1.5,
            volume_quote: 2_500_000,
            volume_tokens: 3_000_000,
            buy_volume_quote: 1_000_000,
            buy_volume_tokens: 2_000_000,
            seq: 9,
            produced_ns: 5,
            last_slot: 0,
            last_signature: 0,
            last_event: 0,
            resume_slot: 0,
            closed: true,
        };
        let value: serde_json::Value = serde_json::from_str(&BarJson::line(&bar)).unwrap();
        for key in ["open", "high", "low", "close", "unix_timestamp", "time_window_seconds"] {
            assert!(value.get(key).is_some(), "{key}");
        }
        assert_eq!(value["volume_quote"], 2.5);
        assert_eq!(value["volume_tokens"], 3.0);
        assert_eq!(value["buy_volume_tokens"], 2.0);
        assert_eq!(value["quote_symbol"], "PUMP");
        assert_eq!(value["venue"], "pump.fun+pumpswap");
        assert_eq!(value["mint"], "11111111111111111111111111111111");
    }

    #[test]
    fn market_cap_is_price_times_a_billion_tokens_and_marked() {
        let bar = Bar { close: 2.796e-8, high: 0.25, ..Bar::one_trade([0; 32], 60, 60, 2.796e-8) };
        let value: serde_json::Value = serde_json::from_str(&BarJson::line_in(&bar, Unit::MarketCap)).unwrap();
        assert_eq!(value["close"], 2.796e-8 * 1e9);
        assert_eq!(value["high"], 250_000_000.0);
        assert_eq!(value["unit"], "mcap");
        let plain: serde_json::Value = serde_json::from_str(&BarJson::line(&bar)).unwrap();
        assert!(plain.get("unit").is_none() && plain.get("filled").is_none(), "{plain}");
        assert_eq!(Unit::parse("mcap"), Some(Unit::MarketCap));
        assert_eq!(Unit::parse("MCAP"), None);
    }

    #[test]
    fn parses_mints() {
        let mint = "FXLjNRSQXuFM8fhKLEg2QeuUxs4Eu2hhc28tZhzrpump";
        assert_eq!(parse_mint(mint).map(|m| bs58::encode(m).into_string()), Ok(mint.to_owned()));
        assert!(parse_mint("0OIl").is_err());
        assert!(parse_mint("abc").is_err());
    }
}
