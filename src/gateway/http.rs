//! HTTP/1.1 for the gateway: request heads in, complete responses out.
//!
//! This module owns parsing a request head (with `httparse`), routing it,
//! deciding which static paths are safe, and building response bytes,
//! including the WebSocket `101 Switching Protocols` reply. It must not do
//! I/O: it never reads sockets or files, never reads request bodies, and
//! never keeps state between requests. Callers feed it bytes and write out
//! what it returns.

use thiserror::Error;

/// Largest request head accepted, in bytes, request line to the blank line
/// included. Overflow policy: only the first `MAX_HEAD_BYTES` of a buffer are
/// ever scanned; a head not complete within them is refused with
/// [`HttpError::TooLarge`] (431), so a slow or hostile client cannot make us
/// buffer more.
pub const MAX_HEAD_BYTES: usize = 8192;

/// Most header fields in one request. Overflow policy: one more is refused
/// with [`HttpError::TooManyHeaders`] (431); httparse parses into a fixed
/// array of this size, so nothing grows.
pub const MAX_HEADERS: usize = 32;

/// A parsed request head. Strings are owned so the read buffer can be reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The method token as sent, e.g. `GET` (methods are case-sensitive).
    pub method: String,
    /// The percent-decoded path, without the query.
    pub path: String,
    /// The raw query, without the `?`; empty when there is none.
    pub query: String,
    /// Header fields in order, names lowercased, values trimmed.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// The first value of a header; `name` is matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).next()
    }

    /// The first value of a query parameter, decoded as a form value (`+` is
    /// a space; invalid `%` escapes are kept as they are).
    pub fn query_param(&self, key: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(k) == key).then(|| form_decode(v))
        })
    }

    /// Every query parameter, decoded as [`RequestHead::query_param`] does,
    /// in order (empty pieces between `&`s skipped).
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        (self.query.split('&').filter(|pair| !pair.is_empty()))
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (form_decode(k), form_decode(v))
            })
            .collect()
    }

    /// True for a valid RFC 6455 opening handshake: `GET`, `Connection`
    /// listing `upgrade`, `Upgrade: websocket`, `Sec-WebSocket-Version: 13`
    /// and a non-empty `Sec-WebSocket-Key`.
    pub fn is_websocket_upgrade(&self) -> bool {
        self.method == "GET"
            && self.has_token("connection", "upgrade")
            && self.has_token("upgrade", "websocket")
            && self.header("sec-websocket-version").is_some_and(|v| v == "13")
            && self.header("sec-websocket-key").is_some_and(|v| !v.is_empty())
    }

    fn headers_named<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether any header `name` holds `token` in its comma-separated list;
    /// browsers send `Connection: keep-alive, Upgrade`.
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers_named(name).flat_map(|v| v.split(',')).any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

/// Why a request head was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HttpError {
    /// Not a valid HTTP/1.0 or HTTP/1.1 request head (400).
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The head is longer than [`MAX_HEAD_BYTES`] (431).
    #[error("request head is larger than {MAX_HEAD_BYTES} bytes")]
    TooLarge,
    /// More than [`MAX_HEADERS`] header fields (431).
    #[error("more than {MAX_HEADERS} header fields")]
    TooManyHeaders,
}

impl HttpError {
    /// The status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Malformed(_) => 400,
            Self::TooLarge | Self::TooManyHeaders => 431,
        }
    }
}

/// Parses the request head at the start of `buf`.
///
/// `Ok(None)`: incomplete, read more. `Ok(Some((head, head_len)))`: bytes
/// `..head_len` were the head; anything after is the next request or a body.
pub fn parse_head(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HttpError> {
    let window = &buf[..buf.len().min(MAX_HEAD_BYTES)];
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    let head_len = match request.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if window.len() >= MAX_HEAD_BYTES => return Err(HttpError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooManyHeaders),
        Err(e) => return Err(HttpError::Malformed(e.to_string())),
    };
    // Complete implies method, path and version were all parsed.
    let (Some(method), Some(target)) = (request.method, request.path) else {
        return Err(HttpError::Malformed("incomplete request line".to_owned()));
    };
    let (path, query) = split_target(target)?;
    let headers = request
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).trim().to_owned()))
        .collect();
    Ok(Some((RequestHead { method: method.to_owned(), path, query: query.to_owned(), headers }, head_len)))
}

/// Splits an origin-form target into the decoded path and the raw query.
/// Absolute-form (`http://…`) and `*` are refused: the gateway is no proxy
/// and answers no `OPTIONS *`.
fn split_target(target: &str) -> Result<(String, &str), HttpError> {
    if !target.starts_with('/') {
        return Err(HttpError::Malformed("request target must start with '/'".to_owned()));
    }
    let (raw_path, query) = target.split_once('?').unwrap_or((target, ""));
    let path = percent_decode(raw_path.as_bytes())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| HttpError::Malformed("bad percent-encoding in path".to_owned()))?;
    Ok((path, query))
}

/// Strict percent-decoding: `None` on a `%` not followed by two hex digits.
fn percent_decode(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            out.push(hex_pair(raw.get(i + 1..i + 3)?)?);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Lenient form decoding for query keys and values: `+` is a space, invalid
/// escapes stay literal, invalid UTF-8 becomes U+FFFD.
fn form_decode(raw: &str) -> String {
    let raw = raw.as_bytes();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let escaped = (raw[i] == b'%').then(|| raw.get(i + 1..i + 3).and_then(hex_pair)).flatten();
        match (raw[i], escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 3;
                continue;
            }
            (b'+', None) => out.push(b' '),
            (other, None) => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_pair(pair: &[u8]) -> Option<u8> {
    let digit = |b: u8| (b as char).to_digit(16);
    match pair {
        [hi, lo] => Some((digit(*hi)? * 16 + digit(*lo)?) as u8),
        _ => None,
    }
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/`: the chart page.
    Index,
    /// `/static/<rel>`: a file under `static/`; `rel` passed [`static_path_ok`].
    Static(String),
    /// `/api/klines`: bar history as JSON.
    Klines,
    /// `/api/v3/klines`: bar history in Binance's shape.
    BinanceKlines,
    /// `/api/v3/ping`: what Binance clients ask first.
    BinancePing,
    /// `/api/v3/time`.
    BinanceTime,
    /// `/api/mints`: known mints as JSON.
    Mints,
    /// `/udf/<what>`: TradingView's UDF datafeed (`config`, `symbols`,
    /// `search`, `time`, `history`).
    Udf(String),
    /// `/metrics`: Prometheus text.
    Metrics,
    /// `/healthz`: liveness.
    Healthz,
    /// Anything else, including unsafe static paths (404).
    NotFound,
    /// A method other than GET or HEAD (405).
    MethodNotAllowed,
}

/// Routes a request: GET and HEAD only, by exact path.
pub fn route(head: &RequestHead) -> Route {
    if head.method != "GET" && head.method != "HEAD" {
        return Route::MethodNotAllowed;
    }
    match head.path.as_str() {
        "/" => Route::Index,
        "/api/klines" => Route::Klines,
        "/api/v3/klines" => Route::BinanceKlines,
        "/api/v3/ping" => Route::BinancePing,
        "/api/v3/time" => Route::BinanceTime,
        "/api/mints" => Route::Mints,
        "/metrics" => Route::Metrics,
        "/healthz" => Route::Healthz,
        path => match (path.strip_prefix("/static/"), path.strip_prefix("/udf/")) {
            (Some(rel), _) if static_path_ok(rel) => Route::Static(rel.to_owned()),
            (_, Some(what)) if ["config", "symbols", "search", "time", "history"].contains(&what) => {
                Route::Udf(what.to_owned())
            }
            _ => Route::NotFound,
        },
    }
}

/// Whether `rel` is safe to join under `static/`: relative, only
/// `[A-Za-z0-9._/-]`, no empty segments and no segment starting with `.`
/// (which covers `.`, `..` and hidden files such as `.git`).
pub fn static_path_ok(rel: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-');
    !rel.is_empty()
        && rel.bytes().all(allowed)
        && rel.split('/').all(|segment| !segment.is_empty() && !segment.starts_with('.'))
}

/// The `Content-Type` for a file, by extension (case-insensitive).
pub fn content_type_for(path: &str) -> &'static str {
    let file = path.rsplit('/').next().unwrap_or(path);
    let ext = file.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "wasm" => "application/wasm",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// A complete response: status line, `Content-Type`, `Content-Length`,
/// `Connection: close`, `Cache-Control: no-store`,
/// `X-Content-Type-Options: nosniff`, then `extra_headers`, then `body`.
///
/// A header whose name is not a token or whose value holds a control
/// character is left out rather than written, so no caller can split the
/// response; a bad `content_type` becomes `application/octet-stream`.
pub fn response(status: u16, content_type: &str, body: &[u8], extra_headers: &[(&str, &str)]) -> Vec<u8> {
    let content_type = if header_ok("content-type", content_type) { content_type } else { "application/octet-stream" };
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(status_line(status).as_bytes());
    let fixed = [
        ("Content-Type", content_type),
        ("Content-Length", &body.len().to_string()),
        ("Connection", "close"),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
    ];
    for (name, value) in fixed.iter().chain(extra_headers).filter(|(n, v)| header_ok(n, v)) {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// A `text/plain` error: body `<status> <reason>: <message>\n`. A 405 carries
/// `Allow: GET, HEAD` and a 426 `Upgrade: websocket`, as RFC 9110 requires.
pub fn error_response(status: u16, message: &str) -> Vec<u8> {
    let body = format!("{status} {}: {message}\n", reason(status));
    let extra: &[(&str, &str)] = match status {
        405 => &[("Allow", "GET, HEAD")],
        426 => &[("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")],
        _ => &[],
    };
    response(status, "text/plain; charset=utf-8", body.as_bytes(), extra)
}

/// The reason phrase of the statuses the gateway sends; `Unknown` otherwise.
pub fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// The `101 Switching Protocols` answer to a WebSocket handshake with
/// `Sec-WebSocket-Key: key` (RFC 6455 §4.2.2). No body, no `Connection: close`.
pub fn websocket_accept_response(key: &str) -> Vec<u8> {
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    format!("{}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n", status_line(101))
        .into_bytes()
}

/// `HTTP/1.1 <status> <reason>\r\n`; a status outside 100..=599 is sent as
/// 500, since clients may reject or misread anything else.
fn status_line(status: u16) -> String {
    let status = if (100..=599).contains(&status) { status } else { 500 };
    format!("HTTP/1.1 {status} {}\r\n", reason(status))
}

/// A header name must be a token and a value may hold no control characters
/// but tab: anything else could end the header early.
fn header_ok(name: &str, value: &str) -> bool {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    !name.is_empty() && name.bytes().all(token) && value.bytes().all(|b| b == b'\t' || !b.is_ascii_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Chrome 124 WebSocket handshake, as captured on the wire.
    const CHROME_UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\n\
Host: localhost:8080\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: http://localhost:8080\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
\r\n";

    fn head_of(bytes: &[u8]) -> RequestHead {
        parse_head(bytes).unwrap().unwrap().0
    }

    fn get(target: &str) -> RequestHead {
        head_of(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
    }

    /// Splits a response into (head text, body bytes).
    fn split_response(bytes: &[u8]) -> (String, &[u8]) {
        let at = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        (String::from_utf8(bytes[..at].to_vec()).unwrap(), &bytes[at..])
    }

    fn content_length(head: &str) -> usize {
        let line = head.lines().find(|l| l.starts_with("Content-Length: ")).unwrap();
        line["Content-Length: ".len()..].parse().unwrap()
    }

    #[test]
    fn parses_a_chrome_websocket_upgrade() {
        let (head, len) = parse_head(CHROME_UPGRADE).unwrap().unwrap();
        assert_eq!(len, CHROME_UPGRADE.len());
        assert_eq!(head.method, "GET");
        assert_eq!(head.path, "/ws");
        assert_eq!(head.query, "");
        assert_eq!(head.headers.len(), 12);
        assert_eq!(head.header("ORIGIN"), Some("http://localhost:8080"));
        assert_eq!(head.header("sec-websocket-key"), Some("dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(head.headers.iter().all(|(n, _)| n.bytes().all(|b| !b.is_ascii_uppercase())));
        assert!(head.is_websocket_upgrade());
    }

    #[test]
    fn websocket_upgrade_needs_every_part() {
        let base = String::from_utf8(CHROME_UPGRADE.to_vec()).unwrap();
        let firefox = base.replace("Connection: Upgrade", "Connection: keep-alive, Upgrade");
        assert!(head_of(firefox.as_bytes()).is_websocket_upgrade());
        for (from, to) in [
            ("GET /ws", "HEAD /ws"),
            ("Connection: Upgrade", "Connection: keep-alive"),
            ("Upgrade: websocket", "Upgrade: h2c"),
            ("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
            ("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "X-Key: y"),
        ] {
            assert!(!head_of(base.replace(from, to).as_bytes()).is_websocket_upgrade(), "{to}");
        }
    }

    #[test]
    fn accept_response_follows_rfc_6455() {
        let bytes = websocket_accept_response("dGhlIHNhbXBsZSBub25jZQ==");
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(text.contains("\r\nUpgrade: websocket\r\n"));
        assert!(text.contains("\r\nConnection: Upgrade\r\n"));
        assert!(text.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn every_prefix_is_incomplete() {
        for end in 0..CHROME_UPGRADE.len() {
            assert_eq!(parse_head(&CHROME_UPGRADE[..end]), Ok(None), "prefix {end}");
        }
        assert!(parse_head(CHROME_UPGRADE).unwrap().is_some());
    }

    #[test]
    fn pipelined_bytes_stay_after_the_head() {
        let first = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut buf = first.to_vec();
        buf.extend_from_slice(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        let (head, len) = parse_head(&buf).unwrap().unwrap();
        assert_eq!(len, first.len());
        assert_eq!(route(&head), Route::Healthz);
        let (next, next_len) = parse_head(&buf[len..]).unwrap().unwrap();
        assert_eq!(route(&next), Route::Metrics);
        assert_eq!(len + next_len, buf.len());
    }

    #[test]
    fn refuses_too_large_heads() {
        let mut big = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
        big.resize(MAX_HEAD_BYTES, b'a');
        assert_eq!(parse_head(&big), Err(HttpError::TooLarge));
        assert_eq!(parse_head(&big[..MAX_HEAD_BYTES - 1]), Ok(None));
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_head(&big), Err(HttpError::TooLarge));
        assert_eq!(HttpError::TooLarge.status(), 431);

        // A head of exactly MAX_HEAD_BYTES is still accepted.
        let mut exact = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
        exact.resize(MAX_HEAD_BYTES - 4, b'a');
        exact.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_head(&exact).unwrap().map(|(_, n)| n), Some(MAX_HEAD_BYTES));
    }

    #[test]
    fn refuses_too_many_headers() {
        let mut text = "GET / HTTP/1.1\r\n".to_owned();
        for i in 0..MAX_HEADERS {
            text.push_str(&format!("X-H{i}: v\r\n"));
        }
        let ok = format!("{text}\r\n");
        assert_eq!(head_of(ok.as_bytes()).headers.len(), MAX_HEADERS);
        let over = format!("{text}X-One-More: v\r\n\r\n");
        assert_eq!(parse_head(over.as_bytes()), Err(HttpError::TooManyHeaders));
        assert_eq!(HttpError::TooManyHeaders.status(), 431);
    }

    #[test]
    fn refuses_malformed_request_lines() {
        for text in [
            &b"GET http://example.com/ HTTP/1.1\r\n\r\n"[..],
            b"OPTIONS * HTTP/1.1\r\n\r\n",
            b"GET /a%zz HTTP/1.1\r\n\r\n",
            b"GET /a% HTTP/1.1\r\n\r\n",
            b"GET /%ff%fe HTTP/1.1\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        ] {
            let result = parse_head(text);
            assert!(matches!(result, Err(HttpError::Malformed(_))), "{:?}: {result:?}", String::from_utf8_lossy(text));
            assert_eq!(result.err().map(|e| e.status()), Some(400));
        }
        assert!(parse_head(b"GET / HTTP/1.0\r\n\r\n").unwrap().is_some());
    }

    #[test]
    fn random_bytes_never_panic() {
        const PIECES: &[&[u8]] =
            &[b"GET ", b"/", b"%", b"2e", b"?", b"&", b"=", b"+", b" HTTP/1.1", b"\r\n", b": ", b"a", b"\xff", b"\0"];
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for round in 0..20_000 {
            let len = (rng.next_u64() % 600) as usize;
            let bytes: Vec<u8> = if round % 2 == 0 {
                (0..len).map(|_| rng.next_u64() as u8).collect()
            } else {
                (0..len % 40).flat_map(|_| PIECES[rng.next_u64() as usize % PIECES.len()].iter().copied()).collect()
            };
            if let Ok(Some((head, len))) = parse_head(&bytes) {
                assert!(len <= bytes.len());
                let _ = (route(&head), head.query_param("a"), head.is_websocket_upgrade());
            }
        }
    }

    #[test]
    fn static_traversal_is_not_found() {
        for target in [
            "/static/../Cargo.toml",
            "/static/%2e%2e/x",
            "/static/%2E%2E/%2e%2e/etc/passwd",
            "/static/.git/config",
            "/static/a//b",
            "/static/a\\b",
            "/static/a%5cb",
            "/static/./a.js",
            "/static/a/..",
            "/static//etc/passwd",
            "/static/",
            "/static",
            "/static/a%00.js",
            "/static/a%20b.js",
            "/static/C:/x",
        ] {
            assert_eq!(route(&get(target)), Route::NotFound, "{target}");
        }
        assert_eq!(route(&get("/static/app.js")), Route::Static("app.js".into()));
        assert_eq!(route(&get("/static/vendor/chart-4.1_min.js?v=3")), Route::Static("vendor/chart-4.1_min.js".into()));
        assert_eq!(route(&get("/static/%61pp.js")), Route::Static("app.js".into()));
        assert!(!static_path_ok(""));
        assert!(!static_path_ok("/abs"));
        assert!(!static_path_ok("é.js"));
        assert!(static_path_ok("a.b/c-d_e"));
    }

    #[test]
    fn routes_paths_and_methods() {
        for (target, want) in [
            ("/", Route::Index),
            ("/api/klines?window=5m", Route::Klines),
            ("/api/mints", Route::Mints),
            ("/metrics", Route::Metrics),
            ("/healthz", Route::Healthz),
            ("/index.html", Route::NotFound),
            ("/api/klines/", Route::NotFound),
            ("/API/mints", Route::NotFound),
        ] {
            assert_eq!(route(&get(target)), want, "{target}");
        }
        let head = |method: &str| head_of(format!("{method} /healthz HTTP/1.1\r\n\r\n").as_bytes());
        assert_eq!(route(&head("HEAD")), Route::Healthz);
        for method in ["POST", "PUT", "DELETE", "OPTIONS", "get"] {
            assert_eq!(route(&head(method)), Route::MethodNotAllowed, "{method}");
        }
    }

    #[test]
    fn reads_query_params() {
        let head = get("/api/klines?window=5m&mint=abc&limit=500");
        assert_eq!(head.path, "/api/klines");
        assert_eq!(head.query, "window=5m&mint=abc&limit=500");
        assert_eq!(head.query_param("window").as_deref(), Some("5m"));
        assert_eq!(head.query_param("mint").as_deref(), Some("abc"));
        assert_eq!(head.query_param("limit").as_deref(), Some("500"));
        assert_eq!(head.query_param("missing"), None);

        let head = get("/api/klines?q=a+b%20c&bad=%zz%4&flag&q=second&k%65y=v&utf=%C3%A9");
        assert_eq!(head.query_param("q").as_deref(), Some("a b c"));
        assert_eq!(head.query_param("bad").as_deref(), Some("%zz%4"));
        assert_eq!(head.query_param("flag").as_deref(), Some(""));
        assert_eq!(head.query_param("key").as_deref(), Some("v"));
        assert_eq!(head.query_param("utf").as_deref(), Some("é"));
        assert_eq!(get("/").query_param(""), Some(String::new()));
    }

    #[test]
    fn decodes_the_path() {
        assert_eq!(get("/a%20b/%41").path, "/a b/A");
        assert_eq!(get("/a+b").path, "/a+b");
        assert_eq!(get("/%C3%A9").path, "/é");
    }

    #[test]
    fn responses_have_correct_length_and_headers() {
        let body = b"{\"ok\":true}";
        let bytes = response(200, "application/json", body, &[("Access-Control-Allow-Origin", "*")]);
        let (head, rest) = split_response(&bytes);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
        for line in [
            "Content-Type: application/json",
            "Connection: close",
            "Cache-Control: no-store",
            "X-Content-Type-Options: nosniff",
            "Access-Control-Allow-Origin: *",
        ] {
            assert!(head.contains(&format!("\r\n{line}\r\n")), "{line}");
        }
        assert_eq!(content_length(&head), body.len());
        assert_eq!(rest, body);

        let empty = response(204, "text/plain", b"", &[]);
        let (head, rest) = split_response(&empty);
        assert_eq!((content_length(&head), rest.len()), (0, 0));
    }

    #[test]
    fn responses_cannot_be_split() {
        let bytes = response(200, "text/html\r\nX-Evil: 1", b"x", &[("X-A", "1\r\nX-Evil: 2"), ("Bad Name", "v")]);
        let (head, _) = split_response(&bytes);
        assert!(!head.contains("X-Evil"));
        assert!(!head.contains("Bad Name"));
        assert!(head.contains("\r\nContent-Type: application/octet-stream\r\n"));
        assert!(split_response(&response(7, "text/plain", b"", &[])).0.starts_with("HTTP/1.1 500 "));
    }

    #[test]
    fn error_responses_explain_themselves() {
        let bytes = error_response(404, "no such file");
        let (head, body) = split_response(&bytes);
        assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(head.contains("\r\nContent-Type: text/plain; charset=utf-8\r\n"));
        assert_eq!(body, b"404 Not Found: no such file\n");
        assert_eq!(content_length(&head), body.len());
        assert!(split_response(&error_response(405, "GET only")).0.contains("\r\nAllow: GET, HEAD\r\n"));
        assert!(split_response(&error_response(426, "ws")).0.contains("\r\nUpgrade: websocket\r\n"));
        let e = HttpError::Malformed("x".into());
        let bytes = error_response(e.status(), &e.to_string());
        let (head, body) = split_response(&bytes);
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert_eq!(body, b"400 Bad Request: malformed request: x\n");
    }

    #[test]
    fn reasons_and_content_types() {
        assert_eq!(reason(431), "Request Header Fields Too Large");
        assert_eq!(reason(503), "Service Unavailable");
        assert_eq!(reason(408), "Request Timeout");
        assert_eq!(reason(999), "Unknown");
        for (path, want) in [
            ("index.html", "text/html; charset=utf-8"),
            ("a/app.JS", "text/javascript; charset=utf-8"),
            ("m.mjs", "text/javascript; charset=utf-8"),
            ("s.css", "text/css; charset=utf-8"),
            ("d.json", "application/json"),
            ("i.png", "image/png"),
            ("i.svg", "image/svg+xml"),
            ("app.js.map", "application/json"),
            ("m.wasm", "application/wasm"),
            ("r.txt", "text/plain; charset=utf-8"),
            ("noext", "application/octet-stream"),
            ("dir.d/noext", "application/octet-stream"),
            ("x.exe", "application/octet-stream"),
        ] {
            assert_eq!(content_type_for(path), want, "{path}");
        }
    }
}
