//! Plain TCP and HTTP against servers on 127.0.0.1.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Longest wait for one answer of [`http_get`] and [`request`].
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// Sends raw bytes to 127.0.0.1:`port` and returns what the server answers
/// until it closes, or until a response with a `Content-Length` is
/// complete, within `limit`.
pub fn request(port: u16, bytes: &[u8], limit: Duration) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), limit)?;
    stream.set_read_timeout(Some(limit))?;
    stream.set_write_timeout(Some(limit))?;
    stream.write_all(bytes)?;
    let mut out = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            // A reset after the answer (the server closed with our bytes
            // unread) ends the answer; one before it is an error.
            Err(_) if !out.is_empty() => 0,
            Err(error) => return Err(error),
        };
        if n == 0 {
            break;
        }
        out.extend_from_slice(&chunk[..n]);
        if let Some((head, body)) = split_response(&out)
            && content_length(head).is_some_and(|len| body.len() >= len)
        {
            break;
        }
    }
    Ok(out)
}

/// A raw HTTP/1.1 GET on 127.0.0.1:`port`; the whole response, or "" if
/// nothing answers.
pub fn http_get(port: u16, path: &str) -> String {
    let get = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    request(port, get.as_bytes(), ANSWER_TIMEOUT).map(|r| String::from_utf8_lossy(&r).into_owned()).unwrap_or_default()
}

/// One GET within `limit`: (status, body).
pub fn get_status(port: u16, path: &str, limit: Duration) -> Result<(u16, String), String> {
    let get = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    let response = request(port, get.as_bytes(), limit).map_err(|e| format!("GET {path}: {e}"))?;
    let (head, body) = split_response(&response).ok_or_else(|| format!("GET {path}: no HTTP response head"))?;
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or("no HTTP status")?;
    Ok((status, body.to_owned()))
}

/// The body of a raw HTTP response.
pub fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

fn split_response(buf: &[u8]) -> Option<(&str, &str)> {
    std::str::from_utf8(buf).ok()?.split_once("\r\n\r\n")
}

fn content_length(head: &str) -> Option<usize> {
    head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
    })
}

/// Prometheus text as name → value.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.split_once(' ')?;
            Some((name.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// `/metrics` on `port` as name → value, within `limit`.
pub fn metrics(port: u16, limit: Duration) -> Result<BTreeMap<String, f64>, String> {
    match get_status(port, "/metrics", limit)? {
        (200, body) => Ok(parse_metrics(&body)),
        (status, _) => Err(format!("/metrics answered {status}")),
    }
}

/// The value of a Prometheus sample from `/metrics` on `port` (NaN if absent).
pub fn metric(port: u16, name: &str) -> f64 {
    metrics(port, ANSWER_TIMEOUT).ok().and_then(|m| m.get(name).copied()).unwrap_or(f64::NAN)
}

/// Waits until `GET /healthz` on `port` answers 200 `times` times in a row
/// (several processes may share the port), within `limit`; `alive` says
/// whether the server is still worth waiting for.
pub fn wait_healthy(port: u16, times: usize, limit: Duration, mut alive: impl FnMut() -> bool) -> Result<(), String> {
    let started = Instant::now();
    let mut in_a_row = 0;
    while started.elapsed() < limit {
        match get_status(port, "/healthz", Duration::from_secs(1)) {
            Ok((200, _)) => in_a_row += 1,
            _ => {
                in_a_row = 0;
                if !alive() {
                    return Err(format!("the server on port {port} exited"));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if in_a_row >= times {
            return Ok(());
        }
    }
    Err(format!("no healthy server on 127.0.0.1:{port} within {limit:?}"))
}
