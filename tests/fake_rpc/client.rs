//! Small blocking clients for tests to talk to a [`FakeNode`] the way a real
//! client would: HTTP JSON-RPC (one connection a request) and WebSocket
//! (tungstenite), over plain TCP or TLS trusting a given CA only.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tungstenite::WebSocket;

use super::http::Stream;
use super::node::FakeNode;

/// Bound on any client read (a test waits for a node that is supposed to
/// answer; a hung node fails the test instead of hanging it).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest HTTP answer a test reads.
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// A client-side stream: the same plain-or-TLS stream the node uses.
pub type ClientStream = Stream;

/// Scheme, host:port and path of an http(s)/ws(s) URL.
fn split_url(url: &str) -> (bool, String, String) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let tls = matches!(scheme, "https" | "wss");
    let (host, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    (tls, host.to_owned(), path.to_owned())
}

/// Connects to `host` (`ip:port`), with TLS when `tls`, trusting only `ca`
/// (the system roots are left out so a test proves which CA is used).
pub fn connect(host: &str, tls: bool, ca: Option<&Path>) -> io::Result<ClientStream> {
    let tcp = TcpStream::connect(host)?;
    tcp.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    tcp.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    if !tls {
        return Ok(Stream::Plain(tcp));
    }
    let mut builder = native_tls::TlsConnector::builder();
    builder.disable_built_in_roots(true);
    if let Some(ca) = ca {
        let pem = std::fs::read(ca)?;
        let cert = native_tls::Certificate::from_pem(&pem).map_err(io::Error::other)?;
        builder.add_root_certificate(cert);
    }
    let connector = builder.build().map_err(io::Error::other)?;
    let domain = host.rsplit_once(':').map_or(host, |(name, _)| name);
    connector
        .connect(domain, tcp)
        .map(|tls| ClientStream::Tls(Box::new(tls)))
        .map_err(|e| io::Error::new(io::ErrorKind::ConnectionRefused, e.to_string()))
}

/// An HTTP answer as the client saw it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// An HTTP JSON-RPC client for one node URL.
#[derive(Debug, Clone)]
pub struct HttpClient {
    url: String,
    ca: Option<std::path::PathBuf>,
}

impl HttpClient {
    /// A client of `node` (trusting its CA when it serves TLS).
    pub fn of(node: &FakeNode) -> HttpClient {
        HttpClient { url: node.http_url(), ca: node.ca_pem_path() }
    }

    /// A client of `url` trusting only `ca`.
    pub fn new(url: &str, ca: Option<&Path>) -> HttpClient {
        HttpClient { url: url.to_owned(), ca: ca.map(Path::to_path_buf) }
    }

    /// POSTs `body` and reads the whole answer.
    pub fn post(&self, body: &str) -> io::Result<Answer> {
        let (tls, host, path) = split_url(&self.url);
        let mut stream = connect(&host, tls, self.ca.as_deref())?;
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes())?;
        stream.flush()?;
        read_answer(&mut stream)
    }

    /// Calls `method` with `params`; the whole JSON-RPC response (result or
    /// error), or `Err` when the HTTP status is not 200.
    pub fn call(&self, method: &str, params: Value) -> io::Result<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
        let answer = self.post(&body)?;
        if answer.status != 200 {
            return Err(io::Error::other(format!("HTTP {}: {}", answer.status, answer.body)));
        }
        Ok(answer.json())
    }

    /// The `result` of a call that must succeed.
    pub fn result(&self, method: &str, params: Value) -> Value {
        let response = self.call(method, params).unwrap_or_else(|e| panic!("{method}: {e}"));
        assert!(response.get("error").is_none(), "{method} answered an error: {response}");
        response["result"].clone()
    }
}

fn read_answer(stream: &mut ClientStream) -> io::Result<Answer> {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A TLS peer may close without close_notify; what was read stands.
            Err(e)
                if !raw.is_empty() && e.kind() != io::ErrorKind::WouldBlock && e.kind() != io::ErrorKind::TimedOut =>
            {
                break;
            }
            Err(e) => return Err(e),
        }
        if raw.len() > MAX_ANSWER_BYTES {
            return Err(io::Error::other("answer too large"));
        }
    }
    let end =
        raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| io::Error::other("no HTTP head in the answer"))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::other("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':').map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned())))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if let Some(length) = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(length);
    }
    Ok(Answer { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
}

/// A WebSocket client of `node` (trusting its CA for wss).
pub fn ws_connect(node: &FakeNode) -> Result<WebSocket<ClientStream>, tungstenite::Error> {
    ws_connect_url(&node.ws_url(), node.ca_pem_path().as_deref())
}

/// A WebSocket client of `url`, trusting only `ca` for wss.
pub fn ws_connect_url(url: &str, ca: Option<&Path>) -> Result<WebSocket<ClientStream>, tungstenite::Error> {
    let (tls, host, _) = split_url(url);
    let stream = connect(&host, tls, ca)?;
    match tungstenite::client::client(url, stream) {
        Ok((ws, _response)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(error)) => Err(error),
        Err(tungstenite::HandshakeError::Interrupted(_)) => {
            Err(tungstenite::Error::Io(io::Error::from(io::ErrorKind::TimedOut)))
        }
    }
}

/// Sends a `logsSubscribe` for one address and returns the subscription id
/// (reading and discarding nothing else: the answer is the first frame).
pub fn subscribe(ws: &mut WebSocket<ClientStream>, request_id: u64, address: &str) -> u64 {
    let request = json!({
        "jsonrpc": "2.0", "id": request_id, "method": "logsSubscribe",
        "params": [{"mentions": [address]}, {"commitment": "confirmed"}],
    });
    ws.send(tungstenite::Message::text(request.to_string())).expect("send logsSubscribe");
    let answer = next_json(ws);
    assert_eq!(answer["id"], json!(request_id), "answer to logsSubscribe: {answer}");
    answer["result"].as_u64().unwrap_or_else(|| panic!("logsSubscribe failed: {answer}"))
}

/// The next text frame as JSON (pings and pongs skipped).
pub fn next_json(ws: &mut WebSocket<ClientStream>) -> Value {
    loop {
        match ws.read().expect("read a frame") {
            tungstenite::Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap_or(Value::Null),
            tungstenite::Message::Binary(_)
            | tungstenite::Message::Ping(_)
            | tungstenite::Message::Pong(_)
            | tungstenite::Message::Frame(_) => {}
            tungstenite::Message::Close(frame) => panic!("closed by the node: {frame:?}"),
        }
    }
}
