//! A shard's door: the accept loop on its SO_REUSEPORT listener, admission
//! (connection limits per shard and per address), the request head within
//! the handshake time-out, and the fork between plain HTTP and a client
//! transport (a path one of [`registry`]'s transports serves). What an HTTP
//! request gets and what runs on an opened connection is the [`Service`]'s
//! (the shard's); this file does not know either.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use glommio::spawn_local;
use glommio::timer::{sleep, timeout};

use super::config::GatewayConfig;
use super::http::{self, HttpError, MAX_HEAD_BYTES, RequestHead, Route};
use super::metrics::Metrics;
use super::transport::registry;
use super::transport::{Limits, Opening, Transport};

/// Bytes read per `read` call while waiting for a request head.
const HEAD_READ_CHUNK: usize = 1024;

/// Kernel send buffer of each connection. A fixed size turns off the
/// kernel's autotuning (up to megabytes per socket on loopback), so a client
/// that stops reading backs up into the outbox, where the slow-client
/// policy sees it, and 50,000 connections cannot pin gigabytes of kernel
/// memory.
const SOCKET_SEND_BUFFER_BYTES: usize = 64 * 1024;

/// Pause after a failed accept (EMFILE and friends) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What runs behind the listener.
pub trait Service: 'static {
    /// The complete response to an HTTP request (not an upgrade).
    fn answer(&self, route: &Route, head: &RequestHead) -> impl Future<Output = Vec<u8>>;

    /// Takes over a connection `transport` opened (its opening response is
    /// sent): `read_ahead` are bytes the client sent after its request
    /// head. The connection counts against the limits for as long as
    /// `admission` lives. Called from the connection's HTTP-phase task,
    /// which ends right after: a session is a task of its own.
    fn open(
        self: &Rc<Self>,
        stream: TcpStream,
        read_ahead: Vec<u8>,
        transport: &'static dyn Transport,
        opening: Opening,
        admission: Admission,
    );
}

/// A shard's door: the limits it admits connections under, what is open
/// now, and how long a client has for its request head.
pub struct Door {
    /// Most open connections of this shard; beyond it HTTP 503.
    max_connections: usize,
    /// Most open connections from one address; beyond it HTTP 503.
    max_per_ip: usize,
    /// Time a client has to send its request head.
    handshake_timeout: Duration,
    /// Allowed `Origin` values of browser pages (see [`GatewayConfig`]).
    allowed_origins: Vec<String>,
    /// The configured windows, seconds.
    windows: Vec<u32>,
    /// Open connections of this shard.
    open: Cell<usize>,
    /// Open connections per client address.
    per_ip: RefCell<HashMap<IpAddr, usize>>,
    /// Process-wide counters.
    metrics: Arc<Metrics>,
}

impl Door {
    /// The limits of `config`, nothing open yet.
    pub fn new(config: &GatewayConfig, metrics: Arc<Metrics>) -> Rc<Self> {
        Rc::new(Self {
            max_connections: config.max_connections_per_shard,
            max_per_ip: config.max_connections_per_ip,
            handshake_timeout: config.handshake_timeout,
            allowed_origins: config.allowed_origins.clone(),
            windows: config.windows.seconds().to_vec(),
            open: Cell::new(0),
            per_ip: RefCell::new(HashMap::new()),
            metrics,
        })
    }
}

/// Why a connection was turned away; it gets an HTTP error with this text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The shard holds `--max-connections` / shards connections (503).
    #[error("connection limit reached")]
    Full,
    /// The address holds `--max-connections-per-ip` connections (503).
    #[error("too many connections from this address")]
    TooManyFromAddress,
}

impl Refused {
    /// The status code to answer with.
    pub fn status(self) -> u16 {
        503
    }
}

/// Counts a connection against the limits for as long as it lives.
pub struct Admission {
    of: Rc<Door>,
    ip: Option<IpAddr>,
}

impl Admission {
    fn try_new(of: &Rc<Door>, ip: Option<IpAddr>) -> Result<Self, Refused> {
        if of.open.get() >= of.max_connections {
            return Err(Refused::Full);
        }
        if let Some(ip) = ip {
            let mut per_ip = of.per_ip.borrow_mut();
            let count = per_ip.entry(ip).or_insert(0);
            if *count >= of.max_per_ip {
                return Err(Refused::TooManyFromAddress);
            }
            *count += 1;
        }
        of.open.set(of.open.get() + 1);
        of.metrics.connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Self { of: of.clone(), ip })
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.of.open.set(self.of.open.get() - 1);
        self.of.metrics.connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(ip) = self.ip {
            let mut per_ip = self.of.per_ip.borrow_mut();
            if let Some(count) = per_ip.get_mut(&ip) {
                *count -= 1;
                if *count == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
    }
}

/// Accepts connections until the task is dropped; each is served by a task
/// of its own. Never interrupted while an accept is in flight (a cancelled
/// io_uring accept can complete anyway and leave a connection nobody
/// serves): the caller drops this task only at shutdown.
pub async fn accept_loop<S: Service>(listener: TcpListener, door: Rc<Door>, service: Rc<S>) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                spawn_local(serve_connection(door.clone(), service.clone(), stream)).detach();
            }
            Err(error) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

async fn serve_connection<S: Service>(door: Rc<Door>, service: Rc<S>, mut stream: TcpStream) {
    Metrics::inc(&door.metrics.accepted);
    // Bars are small and latency-sensitive: never wait for Nagle.
    let _ = stream.set_nodelay(true);
    set_send_buffer(&stream, SOCKET_SEND_BUFFER_BYTES);
    let ip = stream.peer_addr().ok().map(|a| a.ip());
    let admission = match Admission::try_new(&door, ip) {
        Ok(admission) => admission,
        Err(refused) => {
            Metrics::inc(&door.metrics.refused);
            let _ = stream.write_all(&http::error_response(refused.status(), &refused.to_string())).await;
            return;
        }
    };
    let mut buf = Vec::with_capacity(HEAD_READ_CHUNK);
    let head = timeout(door.handshake_timeout, async { Ok(read_head(&mut stream, &mut buf).await) }).await;
    let (head, head_len) = match head {
        Ok(Ok(Some(parsed))) => parsed,
        Ok(Ok(None)) => return, // closed before a full head
        Ok(Err(error)) => {
            Metrics::inc(&door.metrics.http_bad);
            let _ = stream.write_all(&http::error_response(error.status(), &error.to_string())).await;
            return;
        }
        Err(_) => {
            let _ = stream.write_all(&http::error_response(408, "request head not received in time")).await;
            return;
        }
    };
    Metrics::inc(&door.metrics.http_requests);
    let route = http::route(&head);
    let transport = if route == Route::MethodNotAllowed { None } else { registry::for_path(&head.path) };
    if let Some(transport) = transport {
        let limits = Limits { allowed_origins: &door.allowed_origins, windows: &door.windows };
        let opening = match transport.open(&head, limits) {
            Ok(opening) => opening,
            Err(refusal) => {
                let _ = stream.write_all(&http::error_response(refusal.status, &refusal.message)).await;
                return;
            }
        };
        if stream.write_all(&opening.response).await.is_err() {
            return;
        }
        // Bytes after the head (a client's first frames) go to the session;
        // the head buffer itself is freed.
        let read_ahead = buf.split_off(head_len);
        drop(buf);
        service.open(stream, read_ahead, transport, opening, admission);
        return;
    }
    let response = service.answer(&route, &head).await;
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
