//! Server-Sent Events at `/sse`: what dashboards, `curl -N` and networks
//! that block WebSocket upgrades use.
//!
//! `GET /sse?window=1m&mint=<base58>` (or without `mint`: every mint of the
//! window), optionally `format=binance` and `unit=mcap` as on `/ws`. The
//! answer is `text/event-stream`: each bar one event, its JSON on one
//! `data:` line, `id:` the series' `seq`; replies (`subscribed`, `gap`,
//! `error`) are events named `reply`; a comment line keeps a quiet stream
//! open. A client that reconnects with `Last-Event-ID: <seq>` (every
//! `EventSource` does) on a one-mint stream resumes after that `seq`
//! exactly as `sub-<w> <mint> since <seq>` does: what it missed, a `gap`
//! reply for what the gateway no longer has, then live. An all-mints stream
//! has no single `seq` to resume from and starts live again. Limits,
//! slow-client policy and metrics are the sessions' own, as on `/ws`.

use bytes::{BufMut, Bytes, BytesMut};

use super::{Input, Limits, Opening, Refusal, Transport, Violation};
use crate::gateway::format::Format;
use crate::gateway::http::RequestHead;
use crate::gateway::protocol::{self, Command};

/// How long an `EventSource` waits before it reconnects, ms.
const RETRY_MS: u32 = 1000;

/// The Server-Sent Events transport.
#[derive(Debug)]
pub struct Sse;

impl Transport for Sse {
    fn name(&self) -> &'static str {
        "sse"
    }

    fn path(&self) -> &'static str {
        "/sse"
    }

    fn open(&self, head: &RequestHead, limits: Limits<'_>) -> Result<Opening, Refusal> {
        if head.method != "GET" {
            return Err(Refusal::new(405, "an event stream is a GET"));
        }
        let format = match head.query_param("format").as_deref() {
            None | Some("json") => Format::from_query(Some("json"), head.query_param("unit").as_deref()),
            Some("binance") => Format::from_query(Some("binance"), head.query_param("unit").as_deref()),
            Some(_) => Err("format must be json or binance (events are text)"),
        }
        .map_err(|message| Refusal::new(400, message))?;
        let window =
            head.query_param("window").ok_or_else(|| Refusal::new(400, "window is required, e.g. ?window=1m"))?;
        let mint = head.query_param("mint");
        let last_id = head.header("last-event-id").map(str::trim).filter(|id| !id.is_empty());
        // The command a WebSocket client would send, made from checked
        // tokens so the parser gives the same answers and errors.
        let token = |what: &str, value: &str| {
            let ok = !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric());
            if ok { Ok(()) } else { Err(Refusal::new(400, format!("{what} must be letters and digits"))) }
        };
        token("window", &window)?;
        let mut text = format!("sub-{window}");
        if let Some(mint) = &mint {
            token("mint", mint)?;
            text = format!("{text} {mint}");
            if let Some(id) = last_id {
                if !id.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Refusal::new(400, "Last-Event-ID must be a seq this stream sent"));
                }
                text = format!("{text} since {id}");
            }
        }
        let command = protocol::parse_command(&text, limits.windows).map_err(|e| Refusal::new(400, e.to_string()))?;
        debug_assert!(matches!(command, Command::Subscribe { .. } | Command::Resume { .. }));
        let mut response = String::from(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\
             Connection: close\r\nX-Accel-Buffering: no\r\nX-Content-Type-Options: nosniff\r\n",
        );
        if let Some(origin) = head.header("origin") {
            // A page of another origin reads the stream only if allowed.
            let allowed = limits.allowed_origins.iter().any(|a| a == "*" || a == origin);
            let own = origin.split_once("://").is_some_and(|(_, rest)| Some(rest) == head.header("host"));
            if !allowed && !own {
                return Err(Refusal::new(403, "origin not allowed (see --allowed-origin)"));
            }
            if allowed && origin.bytes().all(|b| b.is_ascii_graphic()) {
                response += &format!("Access-Control-Allow-Origin: {origin}\r\nVary: Origin\r\n");
            }
        }
        response += &format!("\r\nretry: {RETRY_MS}\n\n");
        Ok(Opening { format, commands: vec![command], response: response.into_bytes() })
    }

    fn input(&self, _max_message: usize) -> Box<dyn Input> {
        Box::new(Nothing)
    }

    fn eof_is_violation(&self) -> bool {
        false
    }

    fn bar(&self, payload: &[u8], _binary: bool, seq: u64) -> Bytes {
        // Text formats only (`open` refuses binary): one line of JSON.
        let id = seq.to_string();
        let mut out = BytesMut::with_capacity(payload.len() + id.len() + 12);
        out.put_slice(b"id: ");
        out.put_slice(id.as_bytes());
        out.put_slice(b"\ndata: ");
        out.put_slice(payload);
        out.put_slice(b"\n\n");
        out.freeze()
    }

    fn reply(&self, json: &str) -> Bytes {
        Bytes::from(format!("event: reply\ndata: {json}\n\n"))
    }

    fn ping(&self) -> Bytes {
        Bytes::from_static(b": keepalive\n\n")
    }

    fn answers_pings(&self) -> bool {
        false
    }

    fn pong(&self, _payload: &[u8]) -> Option<Bytes> {
        None
    }

    fn close(&self, _code: u16, _reason: &str) -> Option<Bytes> {
        None
    }

    fn close_reply(&self, _code: Option<u16>) -> Option<Bytes> {
        None
    }

    fn payload_len(&self, frame: &[u8]) -> usize {
        frame.len()
    }
}

/// An event stream's client has nothing to say after its request: whatever
/// it sends is read and dropped, so it cannot fill a buffer.
struct Nothing;

impl Input for Nothing {
    fn next(&mut self, buf: &mut Vec<u8>) -> Result<Option<super::Incoming>, Violation> {
        buf.clear();
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::http::parse_head;

    const WINDOWS: &[u32] = &[1, 60, 300, 3600];
    const MINT: &str = "So11111111111111111111111111111111111111112";

    fn open(request: &str) -> Result<Opening, Refusal> {
        let (head, _) = parse_head(request.as_bytes()).unwrap().unwrap();
        Sse.open(&head, Limits { allowed_origins: &[], windows: WINDOWS })
    }

    #[test]
    fn a_stream_is_a_subscription_and_last_event_id_a_resume() {
        let opening = open("GET /sse?window=1m HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(opening.commands, vec![Command::Subscribe { window_s: 60, mint: None }]);
        let text = String::from_utf8(opening.response).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n") && text.contains("Content-Type: text/event-stream\r\n"));
        assert!(text.ends_with("\r\n\r\nretry: 1000\n\n"), "{text}");
        let request = format!("GET /sse?window=1s&mint={MINT} HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 42\r\n\r\n");
        let opening = open(&request).unwrap();
        assert!(matches!(opening.commands[0], Command::Resume { window_s: 1, mint: Some(_), .. }));
    }

    #[test]
    fn bad_requests_are_refused_with_400() {
        for request in [
            "GET /sse HTTP/1.1\r\n\r\n".to_owned(),
            "GET /sse?window=7m HTTP/1.1\r\n\r\n".to_owned(),
            "GET /sse?window=1s%20from%200 HTTP/1.1\r\n\r\n".to_owned(),
            "GET /sse?window=1s&mint=nope HTTP/1.1\r\n\r\n".to_owned(),
            "GET /sse?window=1s&format=binary HTTP/1.1\r\n\r\n".to_owned(),
            format!("GET /sse?window=1s&mint={MINT} HTTP/1.1\r\nLast-Event-ID: x1\r\n\r\n"),
        ] {
            assert_eq!(open(&request).map(drop).map_err(|r| r.status), Err(400), "{request}");
        }
        let head = "HEAD /sse?window=1s HTTP/1.1\r\n\r\n";
        assert_eq!(open(head).map(drop).map_err(|r| r.status), Err(405));
        let foreign = "GET /sse?window=1s HTTP/1.1\r\nHost: a\r\nOrigin: http://evil\r\n\r\n";
        assert_eq!(open(foreign).map(drop).map_err(|r| r.status), Err(403));
    }

    #[test]
    fn events_are_one_line_each() {
        let event = Sse.bar(br#"{"seq":7}"#, false, 7);
        assert_eq!(&event[..], b"id: 7\ndata: {\"seq\":7}\n\n");
        assert_eq!(&Sse.reply(r#"{"type":"gap"}"#)[..], b"event: reply\ndata: {\"type\":\"gap\"}\n\n");
    }
}
