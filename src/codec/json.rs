//! The JSON form of a bar, for `tail --json`, `/ws?format=json` and the HTTP
//! API. Field names follow the original service (`open`, `high`, `low`,
//! `close`, `unix_timestamp`, `time_window_seconds`), then the extra fields.

use serde::{Deserialize, Serialize};

use super::bar::Bar;
use super::trade::{LAMPORTS_PER_SOL, TOKEN_UNITS_PER_TOKEN};

/// A bar as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BarJson {
    /// Open price, SOL per token.
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
    /// SOL traded.
    pub volume_sol: f64,
    /// Tokens traded (whole tokens).
    pub volume_tokens: f64,
    /// SOL spent on buys.
    pub buy_volume_sol: f64,
    /// Trades in the bar.
    pub trades: u32,
    /// Update number within the series.
    pub seq: u64,
    /// Final update of the bar.
    pub closed: bool,
    /// When the update was produced, unix nanoseconds.
    pub produced_ns: u64,
}

impl From<&Bar> for BarJson {
    fn from(bar: &Bar) -> Self {
        Self {
            open: bar.open,
            high: bar.high,
            low: bar.low,
            close: bar.close,
            unix_timestamp: bar.open_time_s,
            time_window_seconds: bar.window_s,
            mint: bs58::encode(bar.mint).into_string(),
            volume_sol: bar.volume_lamports as f64 / LAMPORTS_PER_SOL,
            volume_tokens: bar.volume_tokens as f64 / TOKEN_UNITS_PER_TOKEN,
            buy_volume_sol: bar.buy_volume_lamports as f64 / LAMPORTS_PER_SOL,
            trades: bar.trades,
            seq: bar.seq,
            closed: bar.closed,
            produced_ns: bar.produced_ns,
        }
    }
}

impl BarJson {
    /// The bar as one line of JSON.
    pub fn line(bar: &Bar) -> String {
        // Serializing plain numbers, strings and bools cannot fail.
        serde_json::to_string(&Self::from(bar)).unwrap_or_default()
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
            mint: [0; 32],
            open_time_s: 60,
            window_s: 60,
            trades: 2,
            open: 1.0,
            high: 2.0,
            low: 0.5,
            close: 1.5,
            volume_lamports: 2_500_000_000,
            volume_tokens: 3_000_000,
            buy_volume_lamports: 1_000_000_000,
            seq: 9,
            produced_ns: 5,
            closed: true,
        };
        let value: serde_json::Value = serde_json::from_str(&BarJson::line(&bar)).unwrap();
        for key in ["open", "high", "low", "close", "unix_timestamp", "time_window_seconds"] {
            assert!(value.get(key).is_some(), "{key}");
        }
        assert_eq!(value["volume_sol"], 2.5);
        assert_eq!(value["volume_tokens"], 3.0);
        assert_eq!(value["mint"], "11111111111111111111111111111111");
    }

    #[test]
    fn parses_mints() {
        let mint = "FXLjNRSQXuFM8fhKLEg2QeuUxs4Eu2hhc28tZhzrpump";
        assert_eq!(parse_mint(mint).map(|m| bs58::encode(m).into_string()), Ok(mint.to_owned()));
        assert!(parse_mint("0OIl").is_err());
        assert!(parse_mint("abc").is_err());
    }
}
