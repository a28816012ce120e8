//! WebSocket (RFC 6455) at `/ws`: the client sends commands as text
//! messages, bars go out as binary frames of the Kafka bytes or as text
//! frames (`/ws?format=json|binance&unit=mcap`), replies as text frames.
//! Framing and decoding are [`crate::gateway::websocket`]'s.

use bytes::Bytes;

use super::{Incoming, Input, Limits, Opening, Refusal, Transport, Violation};
use crate::gateway::format::Format;
use crate::gateway::http::{self, RequestHead};
use crate::gateway::websocket::{self as codec, Decoder, opcode};

/// The WebSocket transport.
#[derive(Debug)]
pub struct WebSocket;

impl Transport for WebSocket {
    fn name(&self) -> &'static str {
        "websocket"
    }

    fn path(&self) -> &'static str {
        "/ws"
    }

    fn open(&self, head: &RequestHead, limits: Limits<'_>) -> Result<Opening, Refusal> {
        if !head.is_websocket_upgrade() {
            return Err(Refusal::new(426, "use a WebSocket client (Upgrade: websocket, version 13)"));
        }
        if !origin_allowed(limits.allowed_origins, head) {
            return Err(Refusal::new(403, "origin not allowed (see --allowed-origin)"));
        }
        let format = Format::from_query(head.query_param("format").as_deref(), head.query_param("unit").as_deref())
            .map_err(|message| Refusal::new(400, message))?;
        let key = head.header("sec-websocket-key").unwrap_or_default();
        Ok(Opening { format, commands: Vec::new(), response: http::websocket_accept_response(key) })
    }

    fn input(&self, max_message: usize) -> Box<dyn Input> {
        Box::new(Messages(Decoder::new(max_message)))
    }

    fn eof_is_violation(&self) -> bool {
        true
    }

    fn bar(&self, payload: &[u8], binary: bool, _seq: u64) -> Bytes {
        codec::frame(if binary { opcode::BINARY } else { opcode::TEXT }, payload)
    }

    fn reply(&self, json: &str) -> Bytes {
        codec::frame(opcode::TEXT, json.as_bytes())
    }

    fn ping(&self) -> Bytes {
        codec::frame(opcode::PING, b"")
    }

    fn answers_pings(&self) -> bool {
        true
    }

    fn pong(&self, payload: &[u8]) -> Option<Bytes> {
        Some(codec::frame(opcode::PONG, payload))
    }

    fn close(&self, code: u16, reason: &str) -> Option<Bytes> {
        Some(codec::close_frame(code, reason))
    }

    /// Echoes the client's code.
    fn close_reply(&self, code: Option<u16>) -> Option<Bytes> {
        Some(code.map_or_else(|| codec::frame(opcode::CLOSE, b""), |c| codec::close_frame(c, "")))
    }

    fn payload_len(&self, frame: &[u8]) -> usize {
        codec::payload_of(frame).len()
    }
}

/// A client's messages, from its frames.
struct Messages(Decoder);

impl Input for Messages {
    fn next(&mut self, buf: &mut Vec<u8>) -> Result<Option<Incoming>, Violation> {
        let message = self.0.next(buf).map_err(|e| Violation { code: e.close_code(), reason: e.close_reason() })?;
        Ok(message.map(|m| match m {
            codec::Incoming::Text(text) => Incoming::Command(text),
            codec::Incoming::Binary(_) => Incoming::NotACommand,
            codec::Incoming::Ping(payload) => Incoming::Ping(payload),
            codec::Incoming::Pong => Incoming::Pong,
            codec::Incoming::Close(code) => Incoming::Close(code),
        }))
    }
}

/// Refuses upgrades from browser pages of origins that are not allowed
/// (cross-site WebSocket hijacking); clients that are not browsers send no
/// `Origin`.
fn origin_allowed(allowed: &[String], head: &RequestHead) -> bool {
    let Some(origin) = head.header("origin") else {
        return true;
    };
    if allowed.is_empty() {
        let host = head.header("host").unwrap_or_default();
        origin.split_once("://").is_some_and(|(_, rest)| rest.trim_end_matches('/') == host)
    } else {
        allowed.iter().any(|a| a == "*" || a == origin)
    }
}
