//! One bar update as clients get it: the Kafka value bytes, copied once out
//! of librdkafka's buffer, and each frame a connection asks for (a
//! transport's framing of the bytes or of a text form, [`Format`]) made at
//! most once, on first use, in a refcounted buffer every send shares.
//! Sending it to a client is a reference count and a copy into the
//! client's write: the same work for all, bytes apart. Who gets an update
//! is the hub's business, how it is queued the outbox's.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;

use super::format::Format;
use super::transport::Transport;
use crate::codec::bar::{self, ArchivedBar, Bar};
use crate::codec::trade::Pubkey;

/// A (mint, window seconds) series.
pub type Series = (Pubkey, u32);

/// One bar update, encoded once per transport and format, shared by every
/// send.
#[derive(Debug)]
pub struct Update {
    /// The Kafka value bytes.
    payload: Bytes,
    /// The frames made so far, by transport name and format, each on first
    /// use (one or two per update in practice).
    frames: RefCell<Vec<(&'static str, Format, Bytes)>>,
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
            payload: Bytes::copy_from_slice(payload),
            frames: RefCell::new(Vec::new()),
            series: (bar.mint, bar.window_s.to_native()),
            closed: bar.closed,
            seq: bar.seq.to_native(),
        })
    }

    /// The frame for connections of `transport` in `format`.
    pub fn frame(&self, transport: &dyn Transport, format: Format) -> Bytes {
        let name = transport.name();
        if let Some((_, _, frame)) = self.frames.borrow().iter().find(|(t, f, _)| *t == name && *f == format) {
            return frame.clone();
        }
        let frame = match bar::access(&self.payload) {
            Ok(bar) => frame_of(transport, format, &self.payload, bar),
            // `new` takes validated bars only.
            Err(_) => transport.bar(b"", format.is_text(), self.seq),
        };
        self.frames.borrow_mut().push((name, format, frame.clone()));
        frame
    }
}

/// The frame of one bar read from Kafka (`payload` its value bytes) for a
/// connection of `transport` in `format`.
pub fn frame_of(transport: &dyn Transport, format: Format, payload: &[u8], bar: &ArchivedBar) -> Bytes {
    if format.is_text() {
        transport.bar(format.text(&bar.to_bar(), false).as_bytes(), false, bar.seq.to_native())
    } else {
        transport.bar(payload, true, bar.seq.to_native())
    }
}

/// The frame of a bar held as a value (history, replays, pages).
pub fn frame_of_bar(transport: &dyn Transport, format: Format, bar: &Bar, filled: bool) -> Bytes {
    if format.is_text() {
        transport.bar(format.text(bar, filled).as_bytes(), false, bar.seq)
    } else {
        transport.bar(&bar.to_bytes(), true, bar.seq)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::codec::bar::Bar;
    use crate::codec::json::Unit;
    use crate::gateway::format::Encoding;

    /// An update of mint `[mint; 32]`, 1 s window.
    pub(crate) fn update(mint: u8, seq: u64, closed: bool) -> Rc<Update> {
        let bar = Bar { seq, closed, ..Bar::one_trade([mint; 32], 1, 60, 1.0) };
        let bytes = bar.to_bytes();
        Update::new(&bytes, bar::access(&bytes).unwrap())
    }

    #[test]
    fn each_frame_is_made_once_and_shared() {
        use crate::gateway::transport::{sse::Sse, websocket::WebSocket};
        use crate::gateway::websocket::{self, opcode};
        let u = update(1, 1, false);
        let json = Format { encoding: Encoding::Json, unit: Unit::Price };
        let (a, b) = (u.frame(&WebSocket, json), u.frame(&WebSocket, json));
        assert_eq!(a.as_ptr(), b.as_ptr(), "one JSON frame for every client");
        assert_eq!(websocket::opcode_of(&a), opcode::TEXT);
        assert!(std::str::from_utf8(websocket::payload_of(&a)).unwrap().contains("\"seq\":1"));
        let binance = Format { encoding: Encoding::Binance, unit: Unit::MarketCap };
        assert_eq!(u.frame(&WebSocket, binance).as_ptr(), u.frame(&WebSocket, binance).as_ptr());
        let text = u.frame(&WebSocket, binance);
        assert!(std::str::from_utf8(websocket::payload_of(&text)).unwrap().contains("\"e\":\"kline\""));
        let binary = u.frame(&WebSocket, Format::default());
        assert_eq!(binary.as_ptr(), u.frame(&WebSocket, Format::default()).as_ptr());
        assert_eq!(websocket::payload_of(&binary).len(), bar::BAR_LEN);
        assert!(bar::access(websocket::payload_of(&binary)).is_ok());
        let event = u.frame(&Sse, json);
        assert_eq!(event.as_ptr(), u.frame(&Sse, json).as_ptr());
        assert!(event.starts_with(b"id: 1\ndata: {") && event.ends_with(b"}\n\n"));
    }
}
