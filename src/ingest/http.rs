//! `ingest --metrics-listen ADDR`: `/metrics` (Prometheus text) and
//! `/healthz` of an ingest process that has no gateway, on one thread of its
//! own (blocking sockets: a scrape every few seconds needs nothing more).
//!
//! Bounded: one connection at a time, a request head of at most 8 KiB read
//! within 5 s; anything else is answered 400, 404 or 405.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use super::metrics::IngestMetrics;

/// Largest request head read.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Time a client has to send its request and read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds `addr` and serves on a thread until the process ends.
pub fn serve(addr: SocketAddr, metrics: Arc<IngestMetrics>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new().name("ingest-metrics".into()).spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = answer(stream, &metrics);
        }
    })?;
    Ok(bound)
}

fn answer(mut stream: TcpStream, metrics: &IngestMetrics) -> std::io::Result<()> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 || head.len() + n > MAX_HEAD_BYTES {
            return respond(&mut stream, 400, "text/plain", "bad request\n");
        }
        head.extend_from_slice(&buf[..n]);
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    if !matches!(request.parse(&head), Ok(httparse::Status::Complete(_))) {
        return respond(&mut stream, 400, "text/plain", "bad request\n");
    }
    let path = request.path.unwrap_or_default().split('?').next().unwrap_or_default();
    match (request.method, path) {
        (Some("GET"), "/metrics") => respond(&mut stream, 200, "text/plain; version=0.0.4", &metrics.render()),
        (Some("GET"), "/healthz") => match metrics.unhealthy() {
            None => respond(&mut stream, 200, "application/json", "{\"status\":\"ok\"}\n"),
            Some(reason) => {
                let body = serde_json::json!({"status": "unavailable", "reason": reason}).to_string() + "\n";
                respond(&mut stream, 503, "application/json", &body)
            }
        },
        (Some("GET"), _) => respond(&mut stream, 404, "text/plain", "not found\n"),
        _ => respond(&mut stream, 405, "text/plain", "method not allowed\n"),
    }
}

fn respond(stream: &mut TcpStream, status: u16, content_type: &str, body: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())
}
