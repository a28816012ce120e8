//! One bar update as clients get it: a whole WebSocket frame of the Kafka
//! value bytes, framed once as they are copied out of librdkafka's buffer,
//! in a refcounted buffer every send shares; its JSON text frame made at
//! most once, on first use, and shared the same way. Sending either to a
//! client is a reference count and a copy into the client's write: the same
//! work for both, bytes apart. Who gets an update is the hub's business,
//! how it is queued the outbox's.

use std::cell::OnceCell;
use std::rc::Rc;

use bytes::Bytes;

use super::websocket::{self, opcode};

use crate::codec::bar::{self, ArchivedBar};
use crate::codec::json::BarJson;
use crate::codec::trade::Pubkey;

/// A (mint, window seconds) series.
pub type Series = (Pubkey, u32);

/// One bar update, encoded once, shared by every send.
#[derive(Debug)]
pub struct Update {
    /// The binary frame: the Kafka value bytes behind a WebSocket header.
    binary: Bytes,
    /// The JSON text frame, made on first use.
    json: OnceCell<Bytes>,
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
            json: OnceCell::new(),
            series: (bar.mint, bar.window_s.to_native()),
            closed: bar.closed,
            seq: bar.seq.to_native(),
        })
    }

    /// The frame in the session's format.
    pub fn frame(&self, json: bool) -> Bytes {
        if !json {
            return self.binary.clone();
        }
        let text = self.json.get_or_init(|| match bar::access(websocket::payload_of(&self.binary)) {
            Ok(bar) => websocket::frame(opcode::TEXT, BarJson::line(&bar.to_bar()).as_bytes()),
            Err(_) => websocket::frame(opcode::TEXT, b""),
        });
        text.clone()
    }
}

/// The frame of one bar read by a session's own consumer (per-client mode):
/// nobody else shares it, so it is made directly in the session's format.
pub fn frame_of(json: bool, payload: &[u8], bar: &ArchivedBar) -> Bytes {
    if json {
        websocket::frame(opcode::TEXT, BarJson::line(&bar.to_bar()).as_bytes())
    } else {
        websocket::frame(opcode::BINARY, payload)
    }
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
        let (a, b) = (u.frame(true), u.frame(true));
        assert_eq!(a.as_ptr(), b.as_ptr(), "one JSON frame for every client");
        assert_eq!(websocket::opcode_of(&a), opcode::TEXT);
        assert!(std::str::from_utf8(websocket::payload_of(&a)).unwrap().contains("\"seq\":1"));
        let binary = u.frame(false);
        assert_eq!(binary.as_ptr(), u.frame(false).as_ptr());
        assert_eq!(websocket::payload_of(&binary).len(), bar::BAR_LEN);
        assert!(bar::access(websocket::payload_of(&binary)).is_ok());
    }
}
