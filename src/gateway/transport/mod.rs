//! How a client connection carries a session: the seam between sessions
//! (subscriptions, history, slow-client policy, all transport-neutral) and
//! the bytes on the socket.
//!
//! A [`Transport`] opens a connection from its request head (what it asks
//! for, the answer that opens the stream), frames what the session sends
//! (bars, replies, keepalives, the last word) and decodes what the client
//! sends ([`Input`]). Every transport is listed once, in [`registry`]; the
//! listener routes a request by its path to the one that serves it, and
//! nothing else in the gateway names a transport.
//!
//! - [`websocket`]: `/ws`, RFC 6455; commands in, binary or text frames out.
//! - [`sse`]: `/sse`, Server-Sent Events; the subscription is in the URL,
//!   one JSON bar per event, resumed with `Last-Event-ID`.

pub mod registry;
pub mod sse;
pub mod websocket;

use bytes::Bytes;

use super::format::Format;
use super::http::RequestHead;
use super::protocol::Command;

/// What the settings allow a connection to ask for.
#[derive(Debug, Clone, Copy)]
pub struct Limits<'a> {
    /// Allowed `Origin` values of browser pages (empty: the request's own
    /// host only).
    pub allowed_origins: &'a [String],
    /// The configured windows, seconds.
    pub windows: &'a [u32],
}

/// A connection a transport accepted.
#[derive(Debug)]
pub struct Opening {
    /// The bars' encoding and unit.
    pub format: Format,
    /// Commands the session starts with, as if the client had sent them
    /// (a transport whose subscription is in its URL).
    pub commands: Vec<Command>,
    /// The response that opens the stream, sent before anything else.
    pub response: Vec<u8>,
}

/// Why a request for a transport's path was turned away: the HTTP status
/// and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 400, 403, 405, 426, ...
    pub status: u16,
    /// What was wrong, for the response body.
    pub message: String,
}

impl Refusal {
    /// A refusal with `status` and `message`.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
}

/// Something the client sent, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A command (text).
    Command(String),
    /// Data that cannot be a command (a binary message).
    NotACommand,
    /// A ping, with the payload its answer carries.
    Ping(Vec<u8>),
    /// An answer to the gateway's keepalive.
    Pong,
    /// The client closes, with its close code if it gave one.
    Close(Option<u16>),
}

/// The client broke the transport's rules: the session ends with this code
/// and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    /// Close code (WebSocket's numbering).
    pub code: u16,
    /// A short reason.
    pub reason: &'static str,
}

/// Decodes what one client sends, from the bytes read off its socket.
pub trait Input {
    /// Takes the next thing the client sent out of `buf`, removing the
    /// bytes it used; `Ok(None)` when more bytes are needed.
    fn next(&mut self, buf: &mut Vec<u8>) -> Result<Option<Incoming>, Violation>;
}

/// One way of carrying a session over a connection.
pub trait Transport: Sync {
    /// Short name, for metrics and logs (`websocket`, `sse`).
    fn name(&self) -> &'static str;

    /// The request path it serves.
    fn path(&self) -> &'static str;

    /// Checks a request for [`Transport::path`] and says what the
    /// connection wants, or why it cannot be served.
    fn open(&self, head: &RequestHead, limits: Limits<'_>) -> Result<Opening, Refusal>;

    /// A decoder of what one client sends, messages of at most
    /// `max_message` bytes.
    fn input(&self, max_message: usize) -> Box<dyn Input>;

    /// Whether the end of the client's byte stream without a goodbye is a
    /// protocol violation (WebSocket's closing handshake) or the normal end
    /// (a Server-Sent Events client goes away by closing).
    fn eof_is_violation(&self) -> bool;

    /// One bar: `payload` in the connection's format (the Kafka bytes when
    /// `binary`, else the text), `seq` its series' `seq`.
    fn bar(&self, payload: &[u8], binary: bool, seq: u64) -> Bytes;

    /// A reply's JSON ([`Reply`](super::protocol::Reply)).
    fn reply(&self, json: &str) -> Bytes;

    /// A keepalive for a quiet client.
    fn ping(&self) -> Bytes;

    /// Whether clients answer [`Transport::ping`]: a silent one is then
    /// gone. Otherwise the keepalive only keeps the connection open.
    fn answers_pings(&self) -> bool;

    /// The answer to a client's ping, if the transport has pings.
    fn pong(&self, payload: &[u8]) -> Option<Bytes>;

    /// The last frame before the gateway closes, if the transport says
    /// goodbye.
    fn close(&self, code: u16, reason: &str) -> Option<Bytes>;

    /// The answer to a client's goodbye (`code`, if it gave one), if the
    /// transport has a closing handshake.
    fn close_reply(&self, code: Option<u16>) -> Option<Bytes>;

    /// Payload bytes of a frame this transport made (metrics).
    fn payload_len(&self, frame: &[u8]) -> usize;
}
