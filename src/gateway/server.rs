//! Shards and connections: each gateway shard is one pinned executor with
//! its own SO_REUSEPORT listener; it owns its connections, answers HTTP and
//! upgrades `/ws` to a WebSocket session. Nothing is shared between shards
//! but the metrics atomics and the Kafka worker threads.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use async_tungstenite::WebSocketStream;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use glommio::spawn_local;
use glommio::timer::{sleep, timeout};
use tungstenite::protocol::Role;

use super::api;
use super::arrivals::Arrivals;
use super::config::{Fanout as FanoutMode, GatewayConfig};
use super::fanout::{self, Fanout};
use super::feed::Feed;
use super::http::{self, HttpError, MAX_HEAD_BYTES, RequestHead, Route};
use super::kafka_workers::KafkaWorkers;
use super::metrics::Metrics;
use super::session::{self, Sessions};
use crate::runtime::Shutdown;

/// Bytes read per `read` call while waiting for a request head.
const HEAD_READ_CHUNK: usize = 1024;

/// Kernel send buffer of each connection. A fixed size turns off the
/// kernel's autotuning (up to megabytes per socket on loopback), so a client
/// that stops reading backs up into the outbox, where the slow-client
/// policy sees it, and 50,000 connections cannot pin gigabytes of kernel
/// memory.
const SOCKET_SEND_BUFFER_BYTES: usize = 64 * 1024;

/// How often the accept loop looks at the shutdown flag while idle.
const SHUTDOWN_CHECK: Duration = Duration::from_millis(200);

/// Everything one shard owns.
pub struct Shard {
    /// Validated settings.
    pub config: GatewayConfig,
    /// Process-wide counters.
    pub metrics: Arc<Metrics>,
    /// Threads for blocking Kafka work.
    pub workers: KafkaWorkers,
    /// Wakes the poller when one of the shard's consumers has messages.
    pub arrivals: Arrivals,
    /// Partitions of the topic, for window → partition.
    pub partitions: i32,
    /// Open connections of this shard.
    open: Cell<usize>,
    /// Open connections per client address.
    per_ip: RefCell<HashMap<IpAddr, usize>>,
    /// WebSocket sessions of this shard, for the consumer poller.
    pub sessions: Sessions,
    /// Shared mode: who subscribed to what, and updates held for the push.
    pub fanout: Fanout,
    /// The shard's own reader of the topic (history, mints, shared mode),
    /// once started.
    feed: RefCell<Option<Rc<Feed>>>,
    /// Files served under `/` and `/static/`, read once.
    files: RefCell<HashMap<String, Rc<Vec<u8>>>>,
    /// Process shutdown flag.
    pub shutdown: Shutdown,
}

/// Runs one shard until shutdown.
pub async fn run_shard(
    config: GatewayConfig,
    metrics: Arc<Metrics>,
    workers: KafkaWorkers,
    partitions: i32,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(config.listen).map_err(|e| std::io::Error::other(e.to_string()))?;
    let shard = Rc::new(Shard {
        config,
        metrics,
        workers,
        arrivals: Arrivals::default(),
        partitions,
        open: Cell::new(0),
        per_ip: RefCell::new(HashMap::new()),
        sessions: Sessions::default(),
        fanout: Fanout::default(),
        feed: RefCell::new(None),
        files: RefCell::new(HashMap::new()),
        shutdown,
    });
    let windows = shard.config.windows.seconds().to_vec();
    let feed = Feed::start(
        &shard.config.kafka,
        &windows,
        partitions,
        shard.config.history_lookback,
        &shard.workers,
        &shard.arrivals,
    );
    match feed.await {
        Ok(feed) => *shard.feed.borrow_mut() = Some(Rc::new(feed)),
        Err(error) => tracing::error!(%error, "shard feed did not start: no history, mints or shared fan-out"),
    }
    let poller = spawn_local(session::poll_consumers(shard.clone()));
    let sweeper = spawn_local(session::sweep_silent(shard.clone()));
    let pusher = match shard.config.fanout {
        FanoutMode::Shared { push_interval } if !push_interval.is_zero() => {
            Some(spawn_local(fanout::push_loop(shard.clone(), push_interval)))
        }
        _ => None,
    };
    // The accept loop runs until shutdown; it is never interrupted while an
    // accept is in flight (a cancelled io_uring accept can complete anyway
    // and leave a connection nobody serves).
    let acceptor = spawn_local(accept_loop(shard.clone(), listener));
    while !shard.shutdown.requested() {
        sleep(SHUTDOWN_CHECK).await;
    }
    // Stop accepting first (the listener closes with its task), then say
    // goodbye to every session (1001).
    drop(acceptor);
    session::close_all(&shard).await;
    drop((poller, sweeper, pusher));
    if let Some(feed) = shard.feed.borrow_mut().take() {
        let consumer = feed.consumer().clone();
        shard.workers.detach(move || drop(consumer));
    }
    Ok(())
}

impl Shard {
    /// The shard feed, if it started.
    pub fn feed(&self) -> Option<Rc<Feed>> {
        self.feed.borrow().clone()
    }
}

async fn accept_loop(shard: Rc<Shard>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                spawn_local(serve_connection(shard.clone(), stream)).detach();
            }
            Err(error) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Counts a connection against the limits for as long as it lives.
struct Admission {
    shard: Rc<Shard>,
    ip: Option<IpAddr>,
}

impl Admission {
    fn try_new(shard: &Rc<Shard>, ip: Option<IpAddr>) -> Result<Self, &'static str> {
        if shard.open.get() >= shard.config.max_connections_per_shard {
            return Err("connection limit reached");
        }
        if let Some(ip) = ip {
            let mut per_ip = shard.per_ip.borrow_mut();
            let count = per_ip.entry(ip).or_insert(0);
            if *count >= shard.config.max_connections_per_ip {
                return Err("too many connections from this address");
            }
            *count += 1;
        }
        shard.open.set(shard.open.get() + 1);
        shard.metrics.connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Self { shard: shard.clone(), ip })
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.shard.open.set(self.shard.open.get() - 1);
        self.shard.metrics.connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(ip) = self.ip {
            let mut per_ip = self.shard.per_ip.borrow_mut();
            if let Some(count) = per_ip.get_mut(&ip) {
                *count -= 1;
                if *count == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
    }
}

async fn serve_connection(shard: Rc<Shard>, mut stream: TcpStream) {
    Metrics::inc(&shard.metrics.accepted);
    // Bars are small and latency-sensitive: never wait for Nagle.
    let _ = stream.set_nodelay(true);
    set_send_buffer(&stream, SOCKET_SEND_BUFFER_BYTES);
    let ip = stream.peer_addr().ok().map(|a| a.ip());
    let admission = match Admission::try_new(&shard, ip) {
        Ok(admission) => admission,
        Err(reason) => {
            Metrics::inc(&shard.metrics.refused);
            let _ = stream.write_all(&http::error_response(503, reason)).await;
            return;
        }
    };
    let mut buf = Vec::with_capacity(HEAD_READ_CHUNK);
    let head = timeout(shard.config.handshake_timeout, async { Ok(read_head(&mut stream, &mut buf).await) }).await;
    let (head, head_len) = match head {
        Ok(Ok(Some(parsed))) => parsed,
        Ok(Ok(None)) => return, // closed before a full head
        Ok(Err(error)) => {
            Metrics::inc(&shard.metrics.http_bad);
            let _ = stream.write_all(&http::error_response(error.status(), &error.to_string())).await;
            return;
        }
        Err(_) => {
            let _ = stream.write_all(&http::error_response(408, "request head not received in time")).await;
            return;
        }
    };
    Metrics::inc(&shard.metrics.http_requests);
    let route = http::route(&head);
    if route == Route::WebSocket {
        if let Err((status, why)) = check_upgrade(&shard.config.allowed_origins, &head) {
            let _ = stream.write_all(&http::error_response(status, why)).await;
            return;
        }
        let key = head.header("sec-websocket-key").unwrap_or_default().to_owned();
        if stream.write_all(&http::websocket_accept_response(&key)).await.is_err() {
            return;
        }
        let json = head.query_param("format").is_some_and(|f| f == "json");
        // Bytes after the head (a client's first frames) go to the session;
        // the head buffer itself is freed.
        let part = buf.split_off(head_len);
        drop(buf);
        let config = session::websocket_config(shard.config.max_frame_bytes);
        let ws = WebSocketStream::from_partially_read(stream, part, Role::Server, Some(config)).await;
        let (sink, incoming) = ws.split();
        // The session runs as a task of its own: this future, sized for the
        // HTTP phase, is freed instead of living as long as the connection.
        spawn_local(async move {
            session::run(shard, sink, incoming, json).await;
            drop(admission);
        })
        .detach();
        return;
    }
    let response = answer(&shard, &route, &head).await;
    let _ = stream.write_all(&response).await;
    let _ = stream.close().await;
}

fn set_send_buffer(stream: &TcpStream, bytes: usize) {
    use std::os::fd::{AsRawFd, BorrowedFd};
    // SAFETY: the descriptor belongs to `stream`, which outlives this borrow.
    #[allow(unsafe_code)]
    let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) };
    if let Err(error) = socket2::SockRef::from(&fd).set_send_buffer_size(bytes) {
        tracing::debug!(%error, "could not set SO_SNDBUF");
    }
}

/// Reads until a complete request head is buffered. `Ok(None)` if the peer
/// closed first.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Option<(RequestHead, usize)>, HttpError> {
    loop {
        if let Some(parsed) = http::parse_head(buf)? {
            return Ok(Some(parsed));
        }
        if buf.len() >= MAX_HEAD_BYTES {
            return Err(HttpError::TooLarge);
        }
        // Read straight into the buffer's spare room: no chunk array lives
        // in this future (it stays allocated for the connection's lifetime).
        let filled = buf.len();
        buf.resize(filled + HEAD_READ_CHUNK, 0);
        let read = stream.read(&mut buf[filled..]).await;
        buf.truncate(filled + read.as_ref().map_or(0, |&n| n));
        match read {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
}

/// Refuses upgrades from origins that are not allowed (cross-site WebSocket
/// hijacking) and requests that are not proper upgrades.
fn check_upgrade(allowed: &[String], head: &RequestHead) -> Result<(), (u16, &'static str)> {
    if !head.is_websocket_upgrade() {
        return Err((426, "use a WebSocket client (Upgrade: websocket, version 13)"));
    }
    let Some(origin) = head.header("origin") else {
        return Ok(()); // not a browser
    };
    let ok = if allowed.is_empty() {
        let host = head.header("host").unwrap_or_default();
        origin.split_once("://").is_some_and(|(_, rest)| rest.trim_end_matches('/') == host)
    } else {
        allowed.iter().any(|a| a == "*" || a == origin)
    };
    if ok { Ok(()) } else { Err((403, "origin not allowed (see --allowed-origin)")) }
}

async fn answer(shard: &Rc<Shard>, route: &Route, head: &RequestHead) -> Vec<u8> {
    let with_body = head.method != "HEAD";
    let body =
        |status: u16, kind: &str, bytes: &[u8]| http::response(status, kind, if with_body { bytes } else { &[] }, &[]);
    match route {
        Route::Index => static_file(shard, "index.html", with_body),
        Route::Static(rel) => static_file(shard, rel, with_body),
        Route::Metrics => body(200, "text/plain; version=0.0.4", shard.metrics.render().as_bytes()),
        Route::Healthz => health(shard).await,
        Route::Mints => body(200, "application/json", api::mints_json(shard).as_bytes()),
        Route::Klines => match api::klines(shard, head) {
            Ok(json) => body(200, "application/json", json.as_bytes()),
            Err((status, message)) => http::error_response(status, &message),
        },
        Route::NotFound => http::error_response(404, "no such resource"),
        Route::MethodNotAllowed => http::error_response(405, "only GET and HEAD"),
        Route::WebSocket => http::error_response(426, "upgrade required"),
    }
}

fn static_file(shard: &Rc<Shard>, rel: &str, with_body: bool) -> Vec<u8> {
    let cached = shard.files.borrow().get(rel).cloned();
    let bytes = match cached {
        Some(bytes) => bytes,
        None => match read_static(&shard.config.static_dir, rel) {
            Some(bytes) => {
                let bytes = Rc::new(bytes);
                shard.files.borrow_mut().insert(rel.to_owned(), bytes.clone());
                bytes
            }
            None => return http::error_response(404, "no such file"),
        },
    };
    let body: &[u8] = if with_body { &bytes } else { &[] };
    http::response(200, http::content_type_for(rel), body, &[])
}

/// Largest file served from `static/`; assets are read once and cached.
const MAX_STATIC_FILE_BYTES: u64 = 8 * 1024 * 1024;

fn read_static(dir: &Path, rel: &str) -> Option<Vec<u8>> {
    let path = dir.join(rel);
    let meta = std::fs::metadata(&path).ok()?;
    if !meta.is_file() || meta.len() > MAX_STATIC_FILE_BYTES {
        return None;
    }
    std::fs::read(path).ok()
}

async fn health(shard: &Rc<Shard>) -> Vec<u8> {
    let kafka = shard.config.kafka.clone();
    let reachable = shard
        .workers
        .run(move || crate::kafka::topic::probe(&kafka).map_err(|e| e.to_string()))
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    match reachable {
        Ok(partitions) => {
            let body = format!("{{\"status\":\"ok\",\"kafka\":\"reachable\",\"partitions\":{partitions}}}");
            http::response(200, "application/json", body.as_bytes(), &[])
        }
        Err(error) => {
            let body = serde_json::json!({"status": "degraded", "kafka": "unreachable", "error": error}).to_string();
            http::response(503, "application/json", body.as_bytes(), &[])
        }
    }
}
