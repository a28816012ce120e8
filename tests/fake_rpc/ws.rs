//! One WebSocket session: the upgrade (or its refusal), then a loop that reads
//! the client's requests (`logsSubscribe`, `logsUnsubscribe`), answers them,
//! and writes what the node queued for the connection (notifications,
//! injected frames).
//!
//! The session polls: the socket's read timeout is [`POLL_INTERVAL`], and
//! between reads it drains up to [`OUTBOX_BATCH`] queued messages, so one
//! thread serves both directions. A request's answer is written before any
//! notification of the subscription it creates (the queue is drained after).
//!
//! A stale session stops speaking WebSocket at all: it reads and discards raw
//! bytes until the client goes away, so nothing is ever written (no answers,
//! no notifications, no pongs).

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use super::http::{self, Head, Stream};
use super::node::{Filter, Mode, Outgoing, Request, Session, Shared, Transport};
use super::rpc::{self, Incoming, RpcError};

/// How long a read waits before the session looks at its queue.
pub const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// Queued messages written between two reads.
pub const OUTBOX_BATCH: usize = 256;

/// Completes (or refuses) an upgrade and runs the session.
pub fn accept(shared: &Arc<Shared>, conn: u64, mut stream: Stream, head: &Head, leftover: Vec<u8>) {
    let now = Instant::now();
    let record = |status: u16| {
        shared.record(Request {
            at: now,
            transport: Transport::WebSocket,
            method: "upgrade".to_owned(),
            params: head.path.clone(),
            status,
            error_code: None,
            connection: conn,
        });
    };
    let key = head.header("sec-websocket-key").map(str::trim).unwrap_or_default();
    let version_ok = head.header("sec-websocket-version").map(str::trim) == Some("13");
    if head.method != "GET" || key.is_empty() || !version_ok {
        record(400);
        let _ = http::write_answer(&mut stream, &http::plain(400, "Bad Request"), true);
        return;
    }
    if shared.mode() == Mode::RefuseWebSocket {
        shared.count_refused_upgrade();
        record(503);
        let _ = http::write_answer(&mut stream, &http::plain(503, "Service Unavailable"), true);
        return;
    }
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    if stream.write_all(response.as_bytes()).and_then(|()| stream.flush()).is_err() {
        return;
    }
    record(101);
    let Some(session) = shared.upgraded(conn) else { return };
    let _ = stream.tcp().set_read_timeout(Some(POLL_INTERVAL));
    let max = shared.options.max_message_bytes;
    let config = WebSocketConfig::default().max_message_size(Some(max)).max_frame_size(Some(max));
    let ws = WebSocket::from_partially_read(stream, leftover, Role::Server, Some(config));
    run(shared, conn, ws, session);
}

fn would_block(error: &tungstenite::Error) -> bool {
    matches!(error, tungstenite::Error::Io(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
}

fn run(shared: &Arc<Shared>, conn: u64, mut ws: WebSocket<Stream>, session: Session) {
    loop {
        if shared.stopping() || session.killed.load(Ordering::SeqCst) {
            return;
        }
        if session.stale.load(Ordering::SeqCst) {
            shared.detach(conn);
            let Session { killed, outbox, .. } = session;
            drop(outbox);
            go_silent(shared, &killed, ws.get_ref());
            return;
        }
        match ws.read() {
            Ok(Message::Text(text)) => {
                if answer(shared, conn, &mut ws, text.as_str(), &session).is_err() {
                    return;
                }
            }
            Ok(Message::Binary(bytes)) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                if answer(shared, conn, &mut ws, &text, &session).is_err() {
                    return;
                }
            }
            // Pings are answered by tungstenite on the next write or flush;
            // a close is echoed the same way.
            Ok(_) => {}
            Err(error) if would_block(&error) => {}
            Err(_) => return,
        }
        for _ in 0..OUTBOX_BATCH {
            let Ok(message) = session.outbox.try_recv() else { break };
            if session.stale.load(Ordering::SeqCst) {
                break;
            }
            let (text, notification) = match message {
                Outgoing::Notification(text) => (text, true),
                Outgoing::Raw(text) => (text, false),
            };
            if ws.send(Message::text(text)).is_err() {
                return;
            }
            if notification {
                shared.count_notification_sent();
            }
        }
        if session.stale.load(Ordering::SeqCst) {
            continue;
        }
        match ws.flush() {
            Ok(()) => {}
            Err(error) if would_block(&error) => {}
            Err(_) => return,
        }
    }
}

/// Reads and discards raw bytes until the peer closes, the node stops or the
/// connection is dropped.
fn go_silent(shared: &Shared, killed: &AtomicBool, stream: &Stream) {
    let Ok(mut tcp) = stream.tcp().try_clone() else { return };
    let mut sink = [0u8; 4096];
    while !shared.stopping() && !killed.load(Ordering::SeqCst) {
        match tcp.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return,
        }
    }
}

/// Answers one text frame.
fn answer(
    shared: &Shared,
    conn: u64,
    ws: &mut WebSocket<Stream>,
    text: &str,
    session: &Session,
) -> Result<(), tungstenite::Error> {
    let now = Instant::now();
    let log = |method: &str, params: &Value, error_code: Option<i64>| {
        shared.record(Request {
            at: now,
            transport: Transport::WebSocket,
            method: method.to_owned(),
            params: rpc::params_summary(params),
            status: 200,
            error_code,
            connection: conn,
        });
    };
    let reply = match rpc::parse(text) {
        Incoming::Unparsable => {
            log("<unparsable>", &Value::Null, Some(rpc::PARSE_ERROR));
            rpc::error_text(&Value::Null, &RpcError::parse_error())
        }
        Incoming::Single(call) => one(shared, conn, call, &log),
        Incoming::Batch(calls) if calls.is_empty() || calls.len() > rpc::MAX_BATCH => {
            log("<batch>", &Value::Null, Some(rpc::INVALID_REQUEST));
            rpc::error_text(&Value::Null, &RpcError::invalid_request())
        }
        Incoming::Batch(calls) => {
            let answers: Vec<String> = calls.into_iter().map(|call| one(shared, conn, call, &log)).collect();
            format!("[{}]", answers.join(","))
        }
    };
    if session.stale.load(Ordering::SeqCst) {
        return Ok(());
    }
    ws.send(Message::text(reply))
}

fn one(
    shared: &Shared,
    conn: u64,
    call: Result<rpc::Call, (Value, RpcError)>,
    log: &dyn Fn(&str, &Value, Option<i64>),
) -> String {
    match call {
        Err((id, error)) => {
            log("<invalid>", &Value::Null, Some(error.code));
            rpc::error_text(&id, &error)
        }
        Ok(call) => match dispatch(shared, conn, &call) {
            Ok(result) => {
                log(&call.method, &call.params, None);
                rpc::result_text(&call.id, &result)
            }
            Err(error) => {
                log(&call.method, &call.params, Some(error.code));
                rpc::error_text(&call.id, &error)
            }
        },
    }
}

fn dispatch(shared: &Shared, conn: u64, call: &rpc::Call) -> Result<Value, RpcError> {
    match call.method.as_str() {
        "logsSubscribe" => {
            let filter = logs_filter(rpc::param(&call.params, 0))?;
            rpc::check_known_commitment(&rpc::config(&call.params, 1)?)?;
            Ok(shared.subscribe(conn, filter).into())
        }
        "logsUnsubscribe" => {
            let id = rpc::param(&call.params, 0)
                .and_then(Value::as_u64)
                .ok_or_else(|| RpcError::invalid_params("Invalid params: invalid type: expected u64"))?;
            if shared.unsubscribe(conn, id) {
                Ok(true.into())
            } else {
                Err(RpcError::invalid_params("Invalid subscription id."))
            }
        }
        _ => Err(RpcError::method_not_found()),
    }
}

/// `"all"`, `"allWithVotes"` or `{"mentions": [<one address>]}`, with the
/// node's errors for anything else.
fn logs_filter(value: Option<&Value>) -> Result<Filter, RpcError> {
    match value {
        Some(Value::String(kind)) if kind == "all" || kind == "allWithVotes" => Ok(Filter::All),
        Some(Value::Object(object)) => match object.get("mentions") {
            Some(Value::Array(keys)) => {
                if keys.len() != 1 {
                    return Err(RpcError::invalid_params("Invalid Request: Only 1 address supported"));
                }
                let key = rpc::pubkey_param(keys.first())
                    .map_err(|_| RpcError::invalid_params("Invalid Request: Invalid mentions provided"))?;
                Ok(Filter::Mentions(key))
            }
            _ => Err(RpcError::invalid_params("Invalid params: expected {\"mentions\": [address]}")),
        },
        _ => Err(RpcError::invalid_params(
            "Invalid params: unknown variant, expected one of `all`, `allWithVotes`, `mentions`",
        )),
    }
}
