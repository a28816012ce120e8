//! One bar update as clients get it: a whole WebSocket frame of the Kafka
//! value bytes, framed once as they are copied out of librdkafka's buffer,
//! in a refcounted buffer every send shares; its JSON text frame made at
//! most once, on first use, and shared the same way (and so each of the
//! other text forms a connection may ask for: [`Format`]). Sending any of
//! them to a client is a reference count and a copy into the client's
//! write: the same work for all, bytes apart. Who gets an update is the
//! hub's business, how it is queued the outbox's.

use std::cell::OnceCell;
use std::rc::Rc;

use bytes::Bytes;

use super::websocket::{self, opcode};

use crate::codec::bar::{self, ArchivedBar, Bar};
use crate::codec::json::{BarJson, Unit};
use crate::codec::trade::Pubkey;
use crate::gateway::binance;

/// A (mint, window seconds) series.
pub type Series = (Pubkey, u32);

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

    /// Index of this text form among [`Update`]'s cached ones.
    fn text_slot(self) -> usize {
        usize::from(self.encoding == Encoding::Binance) * 2 + usize::from(self.unit == Unit::MarketCap)
    }

    /// A text frame of `bar` (`filled`: an empty window filled in).
    pub fn text_frame(self, bar: &Bar, filled: bool) -> Bytes {
        let text = match self.encoding {
            Encoding::Binance => binance::kline_event(bar, self.unit),
            _ => serde_json::to_string(&BarJson::shown(bar, self.unit, filled)).unwrap_or_default(),
        };
        websocket::frame(opcode::TEXT, text.as_bytes())
    }

    /// The frame of a bar held as a value (history, replays).
    pub fn frame_of_bar(self, bar: &Bar) -> Bytes {
        if self.is_text() { self.text_frame(bar, false) } else { websocket::frame(opcode::BINARY, &bar.to_bytes()) }
    }
}

/// One bar update, encoded once, shared by every send.
#[derive(Debug)]
pub struct Update {
    /// The binary frame: the Kafka value bytes behind a WebSocket header.
    binary: Bytes,
    /// The text frames (JSON and Binance's, prices and market caps), each
    /// made on first use.
    text: [OnceCell<Bytes>; 4],
    /// The bar's series.
    pub series: Series,
    /// Whether this is a closing update.
    pub closed: bool,
    /// The update's `seq`.
    pub seq: u64,
}

impl Update {
    /// Copies the payload of a validated bar.
    pub fn new(payload: &[u8], bar: &ArchivedBar) -> Rc<Self> {
        Rc::new(Self {
            binary: websocket::frame(opcode::BINARY, payload),
            text: Default::default(),
            series: (bar.mint, bar.window_s.to_native()),
            closed: bar.closed,
            seq: bar.seq.to_native(),
        })
    }

    /// The frame in the session's format.
    pub fn frame(&self, format: Format) -> Bytes {
        if !format.is_text() {
            return self.binary.clone();
        }
        let text =
            self.text[format.text_slot()].get_or_init(|| match bar::access(websocket::payload_of(&self.binary)) {
                Ok(bar) => format.text_frame(&bar.to_bar(), false),
                Err(_) => websocket::frame(opcode::TEXT, b""),
            });
        text.clone()
    }
}

/// The frame of one bar read by a session's own consumer (per-client mode):
/// nobody else shares it, so it is made directly in the session's format.
pub fn frame_of(format: Format, payload: &[u8], bar: &ArchivedBar) -> Bytes {
    if format.is_text() { format.text_frame(&bar.to_bar(), false) } else { websocket::frame(opcode::BINARY, payload) }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::codec::bar::Bar;

    /// An update of mint `[mint; 32]`, 1 s window.
    pub(crate) fn update(mint: u8, seq: u64, closed: bool) -> Rc<Update> {
        let bar = Bar { seq, closed, ..Bar::one_trade([mint; 32], 1, 60, 1.0) };
        let bytes = bar.to_bytes();
        Update::new(&bytes, bar::access(&bytes).unwrap())
    }

    #[test]
    fn both_frames_are_made_once_and_shared() {
        let u = update(1, 1, false);
        let json = Format { encoding: Encoding::Json, unit: Unit::Price };
        let (a, b) = (u.frame(json), u.frame(json));
        assert_eq!(a.as_ptr(), b.as_ptr(), "one JSON frame for every client");
        assert_eq!(websocket::opcode_of(&a), opcode::TEXT);
        assert!(std::str::from_utf8(websocket::payload_of(&a)).unwrap().contains("\"seq\":1"));
        let binance = Format { encoding: Encoding::Binance, unit: Unit::MarketCap };
        assert_eq!(u.frame(binance).as_ptr(), u.frame(binance).as_ptr());
        assert!(std::str::from_utf8(websocket::payload_of(&u.frame(binance))).unwrap().contains("\"e\":\"kline\""));
        let binary = u.frame(Format::default());
        assert_eq!(binary.as_ptr(), u.frame(Format::default()).as_ptr());
        assert_eq!(websocket::payload_of(&binary).len(), bar::BAR_LEN);
        assert!(bar::access(websocket::payload_of(&binary)).is_ok());
    }

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
