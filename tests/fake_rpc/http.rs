//! The HTTP/1.1 side of one connection: the TLS handshake when the node
//! serves TLS, request heads and bodies (keep-alive, `Content-Length` bodies,
//! `Expect: 100-continue`), JSON-RPC `POST`s, `GET /health`, and the hand-off
//! of an `Upgrade: websocket` request to [`super::ws`].
//!
//! Bounds: a head of at most [`MAX_HEAD_BYTES`] (431 beyond), a body of at
//! most `max_message_bytes` (413 beyond, then the connection is closed), an
//! idle keep-alive connection is closed after [`IDLE_TIMEOUT`].

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use super::node::{HttpAnswer, Shared};
use super::ws;

/// Largest request head.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Headers parsed at most.
const MAX_HEADERS: usize = 64;
/// An idle keep-alive connection is closed after this.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the TLS handshake and on writes.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection's byte stream, plain or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<native_tls::TlsStream<TcpStream>>),
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stream::Plain(_) => "Stream::Plain",
            Stream::Tls(_) => "Stream::Tls",
        })
    }
}

impl Stream {
    /// The TCP socket under it (for timeouts and abrupt closes).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => tls.get_ref(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.read(buf),
            Stream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.write(buf),
            Stream::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.flush(),
            Stream::Tls(tls) => tls.flush(),
        }
    }
}

/// One parsed request head.
#[derive(Debug, Clone)]
pub struct Head {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.header(name).is_some_and(|value| value.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    pub fn is_upgrade(&self) -> bool {
        self.has_token("upgrade", "websocket")
    }

    fn wants_close(&self) -> bool {
        self.has_token("connection", "close")
    }
}

/// Serves one accepted connection until it closes.
pub fn serve(shared: &Arc<Shared>, conn: u64, tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_write_timeout(Some(IO_TIMEOUT));
    let mut stream = match &shared.tls_acceptor() {
        None => Stream::Plain(tcp),
        Some(acceptor) => {
            let _ = tcp.set_read_timeout(Some(IO_TIMEOUT));
            match acceptor.accept(tcp) {
                Ok(tls) => Stream::Tls(Box::new(tls)),
                // A client that does not trust the certificate aborts here.
                Err(_) => return,
            }
        }
    };
    let _ = stream.tcp().set_read_timeout(Some(IDLE_TIMEOUT));
    let mut buffer: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let (head, used) = match read_head(&mut stream, &mut buffer) {
            Ok(Some(found)) => found,
            Ok(None) => return,
            Err(status) => {
                let _ = write_answer(&mut stream, &plain(status, reason(status)), true);
                return;
            }
        };
        buffer.drain(..used);
        let path = head.path.split('?').next().unwrap_or_default().to_owned();
        let health = path == "/health";
        if path != shared.options.path && !health {
            let _ = write_answer(&mut stream, &plain(404, "Not Found"), true);
            return;
        }
        if head.is_upgrade() {
            ws::accept(shared, conn, stream, &head, std::mem::take(&mut buffer));
            return;
        }
        let answer = match head.method.as_str() {
            "POST" => match read_body(&mut stream, &head, &mut buffer, shared.options.max_message_bytes) {
                Ok(body) => shared.answer_http(conn, &body),
                Err(status) => {
                    let _ = write_answer(&mut stream, &plain(status, reason(status)), true);
                    return;
                }
            },
            "GET" if health => plain(200, "ok"),
            _ => plain(405, "Method Not Allowed"),
        };
        if write_answer(&mut stream, &answer, head.wants_close()).is_err() || head.wants_close() {
            return;
        }
    }
}

/// Reads until a whole head is buffered. `Ok(None)`: the peer closed (or the
/// connection idled out) between requests. `Err(status)`: a bad request.
fn read_head(stream: &mut Stream, buffer: &mut Vec<u8>) -> Result<Option<(Head, usize)>, u16> {
    loop {
        if let Some(end) = find(buffer, b"\r\n\r\n") {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut request = httparse::Request::new(&mut headers);
            return match request.parse(&buffer[..end + 4]) {
                Ok(httparse::Status::Complete(used)) => {
                    let head = Head {
                        method: request.method.unwrap_or_default().to_owned(),
                        path: request.path.unwrap_or("/").to_owned(),
                        headers: request
                            .headers
                            .iter()
                            .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned()))
                            .collect(),
                    };
                    Ok(Some((head, used)))
                }
                _ => Err(400),
            };
        }
        if buffer.len() > MAX_HEAD_BYTES {
            return Err(431);
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(None),
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Ok(None),
        }
    }
}

fn read_body(stream: &mut Stream, head: &Head, buffer: &mut Vec<u8>, max: usize) -> Result<Vec<u8>, u16> {
    let Some(length) = head.header("content-length") else {
        // Chunked bodies are not served: every JSON-RPC client sends a length.
        return Err(411);
    };
    let length: usize = length.trim().parse().map_err(|_| 400u16)?;
    if length > max {
        return Err(413);
    }
    if head.header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").map_err(|_| 400u16)?;
    }
    while buffer.len() < length {
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk) {
            Ok(0) => return Err(400),
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(408),
        }
    }
    Ok(buffer.drain(..length).collect())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// A text answer.
pub fn plain(status: u16, body: &str) -> HttpAnswer {
    HttpAnswer { status, headers: vec![("Content-Type".into(), "text/plain".into())], body: body.to_owned() }
}

/// The reason phrase of the statuses this node sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Writes an answer (JSON unless it says otherwise).
pub fn write_answer(stream: &mut Stream, answer: &HttpAnswer, close: bool) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", answer.status, reason(answer.status));
    if !answer.headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in &answer.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n", answer.body.len()));
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(answer.body.as_bytes())?;
    stream.flush()
}
