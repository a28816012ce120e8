//! How a connection wants its bars: the Kafka bytes, klinecast's JSON or
//! Binance's kline events, in prices or market caps
//! (`?format=json|binance&unit=mcap` on `/ws` and `/sse`).

use crate::codec::bar::Bar;
use crate::codec::json::{BarJson, Unit};
use crate::gateway::binance;

/// How a connection wants its bars (`/ws?format=json|binance&unit=mcap`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Format {
    /// Binary, klinecast's JSON or Binance's kline events.
    pub encoding: Encoding,
    /// Prices or market caps (text forms only).
    pub unit: Unit,
}

/// The frames' encoding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Encoding {
    /// The Kafka value bytes, binary frames.
    #[default]
    Binary,
    /// klinecast's JSON (src/codec/json.rs), text frames.
    Json,
    /// Binance's `kline` event, text frames.
    Binance,
}

impl Format {
    /// The format a `/ws` request asks for with its `format` and `unit`
    /// query parameters, or why it cannot be served.
    pub fn from_query(format: Option<&str>, unit: Option<&str>) -> Result<Self, &'static str> {
        let encoding = match format {
            None | Some("binary") => Encoding::Binary,
            Some("json") => Encoding::Json,
            Some("binance") => Encoding::Binance,
            Some(_) => return Err("format must be binary, json or binance"),
        };
        let unit = match unit.map(Unit::parse) {
            None => Unit::Price,
            Some(Some(unit)) => unit,
            Some(None) => return Err("unit must be price or mcap"),
        };
        if encoding == Encoding::Binary && unit != Unit::Price {
            return Err("unit=mcap needs format=json or format=binance (binary frames are the Kafka bytes)");
        }
        Ok(Self { encoding, unit })
    }

    /// Whether frames are text.
    pub fn is_text(self) -> bool {
        self.encoding != Encoding::Binary
    }

    /// `bar` as text (`filled`: an empty window filled in).
    pub fn text(self, bar: &Bar, filled: bool) -> String {
        match self.encoding {
            Encoding::Binance => binance::kline_event(bar, self.unit),
            _ => serde_json::to_string(&BarJson::shown(bar, self.unit, filled)).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_the_query() {
        assert_eq!(Format::from_query(None, None), Ok(Format::default()));
        let f = Format::from_query(Some("binance"), Some("mcap")).unwrap();
        assert_eq!((f.encoding, f.unit), (Encoding::Binance, Unit::MarketCap));
        assert!(Format::from_query(Some("xml"), None).is_err());
        assert!(Format::from_query(Some("json"), Some("usd")).is_err());
        assert!(Format::from_query(None, Some("mcap")).is_err());
    }
}
