//! [`FakeNode`]: a Solana RPC node in the test process, on 127.0.0.1 and a
//! port of its own, with the controls a test drives.
//!
//! One accept thread; one thread per connection (HTTP keep-alive or one
//! WebSocket session), at most [`NodeOptions::max_connections`] at a time
//! (further connections are closed at once and counted). Everything a test
//! changes goes through [`Shared`], behind short-held locks; nothing holds a
//! lock while writing to a socket or waiting on a connection's queue.
//!
//! Modes: `Normal`; `RefuseWebSocket` (upgrades get HTTP 503, HTTP JSON-RPC
//! still works); `Stale` (every WebSocket connection, open or new, stays open
//! but the node neither reads nor writes on it, so subscriptions are never
//! answered, notifications never sent, pings never answered). A connection
//! that went stale stays so for its life, as a connection to a hung node
//! would; new connections after a return to `Normal` are served. Published
//! transactions enter the ledger in every mode, so a backfill finds them.
//! `Down` resets every connection, open or new, HTTP included, and keeps the
//! port for the return to `Normal`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::ledger::{Account, Ledger, Tx};
use super::rpc::{self, Incoming, RpcError};
use super::tls::TestPki;
use super::{http, methods};

/// How a node is started.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Port on 127.0.0.1; 0 picks a free one. (To show a client an outage
    /// and a recovery at the same URL, prefer [`Mode::Down`]: it keeps the
    /// port, which a stopped node could lose to another socket meanwhile.)
    pub port: u16,
    /// Serve TLS (https / wss) with a certificate from a CA made for the node.
    pub tls: bool,
    /// The path both endpoints share (`/`, or `/<api-key>` as providers do);
    /// other paths get 404.
    pub path: String,
    /// Open connections at most; more are closed at accept (counted in
    /// `connections_rejected`).
    pub max_connections: usize,
    /// Largest HTTP body and largest incoming WebSocket message; HTTP answers
    /// 413 above it, a WebSocket is closed.
    pub max_message_bytes: usize,
    /// Transactions the ledger keeps; past it the oldest are forgotten (a node
    /// with pruned history).
    pub ledger_capacity: usize,
    /// `getSlot` before any transaction is published.
    pub base_slot: u64,
    /// The first subscription id handed out (real nodes count up from a
    /// process-wide counter; starting far from request ids catches clients
    /// that mix the two).
    pub first_subscription_id: u64,
    /// Messages queued for one WebSocket connection. `publish` waits up to
    /// [`OUTBOX_SEND_TIMEOUT`] for room; a connection whose queue stays full
    /// is dropped as a slow consumer, as real nodes do.
    pub outbox_capacity: usize,
    /// Entries the request log keeps; past it the oldest are dropped (and
    /// counted in `requests_dropped`).
    pub request_log_capacity: usize,
}

impl Default for NodeOptions {
    fn default() -> NodeOptions {
        NodeOptions {
            port: 0,
            tls: false,
            path: "/".to_owned(),
            max_connections: 64,
            max_message_bytes: 1 << 20,
            ledger_capacity: 100_000,
            base_slot: 440_741_846,
            first_subscription_id: 10_397_413,
            outbox_capacity: 4_096,
            request_log_capacity: 100_000,
        }
    }
}

/// How long `publish` waits for room in one connection's queue.
pub const OUTBOX_SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// The node's WebSocket behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// New WebSocket upgrades get HTTP 503; open connections are left alone.
    RefuseWebSocket,
    /// Every WebSocket connection (open and new) goes silent: see the module doc.
    Stale,
    /// The node is down: open connections are reset and new ones are reset at
    /// accept (HTTP and WebSocket alike), while the port stays held so the
    /// same URL works again after a return to `Normal`.
    Down,
}

/// An HTTP failure to answer instead of a JSON-RPC response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpFailure {
    pub status: u16,
    /// `Retry-After` header, in seconds.
    pub retry_after_secs: Option<u64>,
}

/// A request rate over which HTTP requests get 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub max_requests: usize,
    pub per: Duration,
    pub retry_after_secs: Option<u64>,
}

/// Which side of the node a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Http,
    WebSocket,
}

/// One entry of the request log.
#[derive(Debug, Clone)]
pub struct Request {
    pub at: Instant,
    pub transport: Transport,
    /// The JSON-RPC method, or `upgrade` for a WebSocket handshake, or
    /// `<unparsable>` for bad JSON.
    pub method: String,
    /// Compact JSON of the params, cut at [`rpc::SUMMARY_CHARS`].
    pub params: String,
    /// HTTP status (101 / 503 for upgrades; 200 for WebSocket messages).
    pub status: u16,
    /// The JSON-RPC error code answered, if any.
    pub error_code: Option<i64>,
    pub connection: u64,
}

/// A subscription's filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    Mentions(String),
    All,
}

/// What a connection's queue carries.
#[derive(Debug, Clone)]
pub enum Outgoing {
    Notification(String),
    Raw(String),
}

/// One open connection.
#[derive(Debug)]
struct Conn {
    /// A handle on the socket for abrupt closes.
    tcp: TcpStream,
    /// Set once upgraded.
    websocket: bool,
    stale: Arc<AtomicBool>,
    killed: Arc<AtomicBool>,
    /// The WebSocket session's queue (bounded by `outbox_capacity`); `None`
    /// before the upgrade and once stale.
    outbox: Option<flume::Sender<Outgoing>>,
}

#[derive(Debug, Clone)]
struct Sub {
    conn: u64,
    filter: Filter,
}

#[derive(Debug, Default)]
struct Registry {
    conns: HashMap<u64, Conn>,
    subs: BTreeMap<u64, Sub>,
}

#[derive(Debug, Default)]
struct Counters {
    ws_accepted: AtomicU64,
    ws_refused: AtomicU64,
    subscriptions: AtomicU64,
    notifications: AtomicU64,
    http_requests: AtomicU64,
    slow_consumers: AtomicU64,
    rejected: AtomicU64,
    requests_dropped: AtomicU64,
    reset_while_down: AtomicU64,
}

/// State shared by the node's threads and the test.
pub struct Shared {
    pub options: NodeOptions,
    stopping: AtomicBool,
    mode: Mutex<Mode>,
    ledger: Mutex<Ledger>,
    /// Serializes publishers so every connection sees ledger order.
    publish_order: Mutex<()>,
    registry: Mutex<Registry>,
    /// Failures to answer next, one a request; bounded by what the test asks.
    http_failures: Mutex<VecDeque<HttpFailure>>,
    rate: Mutex<Option<(RateLimit, VecDeque<Instant>)>>,
    log: Mutex<VecDeque<Request>>,
    counters: Counters,
    next_conn: AtomicU64,
    next_sub: AtomicU64,
    tls: Option<native_tls::TlsAcceptor>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("options", &self.options).field("mode", &self.mode()).finish_non_exhaustive()
    }
}

/// Locks a mutex, recovering it if a panicking test thread poisoned it (the
/// data is plain state, still consistent after any single operation).
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The node. Stopped, and every connection closed, on drop.
#[derive(Debug)]
pub struct FakeNode {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
    pki: Option<TestPki>,
}

impl FakeNode {
    /// Starts a node on 127.0.0.1:<free port>.
    pub fn start(options: NodeOptions) -> FakeNode {
        let pki = options.tls.then(TestPki::make);
        let listener = TcpListener::bind(("127.0.0.1", options.port)).expect("bind the fake RPC node on 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            ledger: Mutex::new(Ledger::new(options.ledger_capacity, options.base_slot)),
            next_sub: AtomicU64::new(options.first_subscription_id),
            options,
            stopping: AtomicBool::new(false),
            mode: Mutex::new(Mode::Normal),
            publish_order: Mutex::new(()),
            registry: Mutex::new(Registry::default()),
            http_failures: Mutex::new(VecDeque::new()),
            rate: Mutex::new(None),
            log: Mutex::new(VecDeque::new()),
            counters: Counters::default(),
            next_conn: AtomicU64::new(1),
            tls: pki.as_ref().map(TestPki::acceptor),
            threads: Mutex::new(Vec::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("fake-rpc-accept".into())
            .spawn(move || accept_loop(&accept_shared, &listener))
            .expect("spawn the accept thread");
        FakeNode { shared, addr, accept: Some(accept), pki }
    }

    /// A plain (no TLS) node with default options.
    pub fn plain() -> FakeNode {
        FakeNode::start(NodeOptions::default())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port><path>` (https with TLS).
    pub fn http_url(&self) -> String {
        let scheme = if self.shared.options.tls { "https" } else { "http" };
        format!("{scheme}://{}{}", self.addr, self.shared.options.path)
    }

    /// `ws://127.0.0.1:<port><path>` (wss with TLS): same host and path.
    pub fn ws_url(&self) -> String {
        let scheme = if self.shared.options.tls { "wss" } else { "ws" };
        format!("{scheme}://{}{}", self.addr, self.shared.options.path)
    }

    /// The CA a client must trust for a TLS node.
    pub fn ca_pem_path(&self) -> Option<std::path::PathBuf> {
        self.pki.as_ref().map(TestPki::ca_pem_path)
    }

    /// A CA that did not sign the node's certificate.
    pub fn other_ca_pem_path(&self) -> Option<std::path::PathBuf> {
        self.pki.as_ref().map(TestPki::other_ca_pem_path)
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Appends `tx` to the ledger and notifies every live subscription whose
    /// filter it matches (a transaction mentioning both programs reaches both
    /// subscriptions). Panics on a duplicate signature: a test bug.
    pub fn publish(&self, tx: Tx) {
        self.shared.publish(tx);
    }

    /// The next `listings` `getSignaturesForAddress` answers that reach
    /// `signature` leave it out, as a real node does for a transaction
    /// whose slot it has confirmed (and notified) but not yet indexed.
    pub fn hide_from_listings(&self, signature: &str, listings: u32) {
        lock(&self.shared.ledger).hide_from_listings(signature, listings);
    }

    /// Listings give each slot's transactions in the reverse of the order
    /// they were published and streamed in.
    pub fn reverse_listing_within_slots(&self, on: bool) {
        lock(&self.shared.ledger).reverse_within_slot(on);
    }

    /// Appends `tx` to the ledger without notifying anyone: a transaction
    /// the stream missed (confirmed before a subscription started, or lost
    /// by the node's notifier); only a listing finds it.
    pub fn publish_unnotified(&self, tx: Tx) {
        let _order = lock(&self.shared.publish_order);
        if let Err(err) = lock(&self.shared.ledger).insert(tx) {
            panic!("publish: {err:?}");
        }
    }

    /// Publishes several transactions in order.
    pub fn publish_all(&self, txs: impl IntoIterator<Item = Tx>) {
        for tx in txs {
            self.shared.publish(tx);
        }
    }

    /// Closes every WebSocket connection at the TCP level, with no close
    /// frame. Returns how many were closed.
    pub fn drop_connections(&self) -> usize {
        let registry = lock(&self.shared.registry);
        let mut closed = 0;
        for conn in registry.conns.values().filter(|conn| conn.websocket) {
            conn.killed.store(true, Ordering::SeqCst);
            let _ = conn.tcp.shutdown(Shutdown::Both);
            closed += 1;
        }
        closed
    }

    pub fn set_mode(&self, mode: Mode) {
        *lock(&self.shared.mode) = mode;
        match mode {
            Mode::Stale => {
                self.make_current_stale();
            }
            Mode::Down => {
                let registry = lock(&self.shared.registry);
                for conn in registry.conns.values() {
                    conn.killed.store(true, Ordering::SeqCst);
                    reset(&conn.tcp);
                }
            }
            Mode::Normal | Mode::RefuseWebSocket => {}
        }
    }

    pub fn mode(&self) -> Mode {
        *lock(&self.shared.mode)
    }

    /// Makes the open WebSocket connections stale (silent for good) and leaves
    /// the mode as it is, so a client that reconnects is served.
    pub fn make_current_stale(&self) -> usize {
        let mut registry = lock(&self.shared.registry);
        let mut count = 0;
        for conn in registry.conns.values_mut().filter(|conn| conn.websocket) {
            conn.stale.store(true, Ordering::SeqCst);
            conn.outbox = None;
            count += 1;
        }
        count
    }

    /// The next `n` HTTP requests are answered with `status` (429 gets the
    /// public endpoint's JSON-RPC body) and a `Retry-After` when given.
    pub fn fail_next_http(&self, n: usize, status: u16, retry_after_secs: Option<u64>) {
        let mut failures = lock(&self.shared.http_failures);
        failures.extend(std::iter::repeat_n(HttpFailure { status, retry_after_secs }, n));
    }

    /// HTTP requests over `limit` within its window get 429.
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        *lock(&self.shared.rate) = limit.map(|limit| (limit, VecDeque::new()));
    }

    /// Sends `text` as a text frame to every served WebSocket connection
    /// (malformed JSON, unknown methods, notifications for unknown
    /// subscriptions, huge messages). Returns how many connections got it.
    pub fn inject_raw(&self, text: &str) -> usize {
        let outboxes: Vec<(u64, flume::Sender<Outgoing>)> = {
            let registry = lock(&self.shared.registry);
            registry.conns.iter().filter_map(|(id, conn)| conn.outbox.clone().map(|outbox| (*id, outbox))).collect()
        };
        let mut sent = 0;
        for (conn, outbox) in outboxes {
            if self.shared.send(conn, &outbox, Outgoing::Raw(text.to_owned())) {
                sent += 1;
            }
        }
        sent
    }

    /// The request log, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.log).iter().cloned().collect()
    }

    /// The logged requests for `method`.
    pub fn requests_for(&self, method: &str) -> Vec<Request> {
        lock(&self.shared.log).iter().filter(|r| r.method == method).cloned().collect()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    /// WebSocket upgrades accepted (stale ones included).
    pub fn ws_connections_accepted(&self) -> u64 {
        self.shared.counters.ws_accepted.load(Ordering::SeqCst)
    }

    /// WebSocket upgrades refused with 503.
    pub fn ws_upgrades_refused(&self) -> u64 {
        self.shared.counters.ws_refused.load(Ordering::SeqCst)
    }

    /// `logsSubscribe` calls answered with a subscription id.
    pub fn subscriptions_made(&self) -> u64 {
        self.shared.counters.subscriptions.load(Ordering::SeqCst)
    }

    /// Live (not stale, not closed) subscriptions mentioning `address`.
    pub fn live_subscriptions(&self, address: &str) -> usize {
        let registry = lock(&self.shared.registry);
        registry
            .subs
            .values()
            .filter(|sub| sub.filter == Filter::Mentions(address.to_owned()))
            .filter(|sub| {
                registry
                    .conns
                    .get(&sub.conn)
                    .is_some_and(|conn| conn.outbox.is_some() && !conn.killed.load(Ordering::SeqCst))
            })
            .count()
    }

    /// Notifications written to sockets.
    pub fn notifications_sent(&self) -> u64 {
        self.shared.counters.notifications.load(Ordering::SeqCst)
    }

    /// HTTP JSON-RPC requests received (failed ones included).
    pub fn http_requests(&self) -> u64 {
        self.shared.counters.http_requests.load(Ordering::SeqCst)
    }

    /// Connections dropped because their queue stayed full.
    pub fn slow_consumer_drops(&self) -> u64 {
        self.shared.counters.slow_consumers.load(Ordering::SeqCst)
    }

    /// Connections closed at accept (over `max_connections`).
    pub fn connections_rejected(&self) -> u64 {
        self.shared.counters.rejected.load(Ordering::SeqCst)
    }

    /// Connections reset at accept while the node was `Down`.
    pub fn connections_reset_while_down(&self) -> u64 {
        self.shared.counters.reset_while_down.load(Ordering::SeqCst)
    }

    /// Request-log entries dropped (log full).
    pub fn requests_dropped(&self) -> u64 {
        self.shared.counters.requests_dropped.load(Ordering::SeqCst)
    }

    /// Open WebSocket connections (stale included).
    pub fn open_websockets(&self) -> usize {
        lock(&self.shared.registry).conns.values().filter(|conn| conn.websocket).count()
    }

    /// Waits until `n` live subscriptions mention `address`.
    pub fn wait_for_subscriptions(&self, address: &str, n: usize, timeout: Duration) -> bool {
        super::wait_until(timeout, || self.live_subscriptions(address) >= n)
    }

    /// Registers an account for `getAccountInfo` / `getMultipleAccounts`.
    pub fn set_account(&self, pubkey: &str, owner: &str, data: Vec<u8>) {
        self.set_account_full(
            pubkey,
            Account { owner: owner.to_owned(), data, lamports: 1_000_000, executable: false },
        );
    }

    pub fn set_account_full(&self, pubkey: &str, account: Account) {
        lock(&self.shared.ledger).set_account(pubkey, account);
    }

    /// The ledger's transactions, oldest first.
    pub fn transactions(&self) -> Vec<Tx> {
        lock(&self.shared.ledger).all()
    }

    /// The highest slot the node has seen.
    pub fn slot(&self) -> u64 {
        lock(&self.shared.ledger).slot()
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the accept thread, which is blocked in accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        {
            let registry = lock(&self.shared.registry);
            for conn in registry.conns.values() {
                conn.killed.store(true, Ordering::SeqCst);
                let _ = conn.tcp.shutdown(Shutdown::Both);
            }
        }
        let threads: Vec<JoinHandle<()>> = std::mem::take(&mut *lock(&self.shared.threads));
        for thread in threads {
            let _ = thread.join();
        }
    }
}

/// Ends a connection the way a crashed node's host does: with linger 0 the
/// last close sends a TCP reset; the shutdown wakes the thread serving it.
fn reset(tcp: &TcpStream) {
    let _ = socket2::SockRef::from(tcp).set_linger(Some(Duration::ZERO));
    let _ = tcp.shutdown(Shutdown::Both);
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        if shared.mode() == Mode::Down {
            shared.counters.reset_while_down.fetch_add(1, Ordering::SeqCst);
            // Closing with linger 0 sends a reset, not a FIN.
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            drop(stream);
            continue;
        }
        lock(&shared.threads).retain(|thread| !thread.is_finished());
        let Ok(handle) = stream.try_clone() else { continue };
        let id = shared.next_conn.fetch_add(1, Ordering::SeqCst);
        {
            let mut registry = lock(&shared.registry);
            if registry.conns.len() >= shared.options.max_connections {
                shared.counters.rejected.fetch_add(1, Ordering::SeqCst);
                let _ = stream.shutdown(Shutdown::Both);
                continue;
            }
            let conn = Conn {
                tcp: handle,
                websocket: false,
                stale: Arc::new(AtomicBool::new(false)),
                killed: Arc::new(AtomicBool::new(false)),
                outbox: None,
            };
            registry.conns.insert(id, conn);
        }
        let conn_shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new().name(format!("fake-rpc-conn-{id}")).spawn(move || {
            http::serve(&conn_shared, id, stream);
            conn_shared.deregister(id);
        });
        match spawned {
            Ok(thread) => lock(&shared.threads).push(thread),
            Err(_) => shared.deregister(id),
        }
    }
}

#[derive(Serialize)]
struct Notification<'a> {
    jsonrpc: &'static str,
    method: &'static str,
    params: NotificationParams<'a>,
}

#[derive(Serialize)]
struct NotificationParams<'a> {
    result: NotificationResult<'a>,
    subscription: u64,
}

#[derive(Serialize)]
struct NotificationResult<'a> {
    context: SlotContext,
    value: LogsValue<'a>,
}

#[derive(Serialize)]
struct SlotContext {
    slot: u64,
}

#[derive(Serialize)]
struct LogsValue<'a> {
    signature: &'a str,
    err: &'a Option<Value>,
    logs: &'a [String],
}

/// The `logsNotification` of `tx` for `subscription`, in the field order of
/// the recorded notifications.
pub fn notification_text(subscription: u64, tx: &Tx) -> String {
    let message = Notification {
        jsonrpc: "2.0",
        method: "logsNotification",
        params: NotificationParams {
            result: NotificationResult {
                context: SlotContext { slot: tx.slot },
                value: LogsValue { signature: &tx.signature, err: &tx.err, logs: &tx.logs },
            },
            subscription,
        },
    };
    serde_json::to_string(&message).unwrap_or_default()
}

/// Writes one request-log entry: method, params, HTTP status, error code.
type LogFn<'a> = dyn Fn(&str, &Value, u16, Option<i64>) + 'a;

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// What a WebSocket session learns on upgrade.
#[derive(Debug)]
pub struct Session {
    pub stale: Arc<AtomicBool>,
    pub killed: Arc<AtomicBool>,
    pub outbox: flume::Receiver<Outgoing>,
}

impl Shared {
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    pub fn mode(&self) -> Mode {
        *lock(&self.mode)
    }

    /// The TLS acceptor, when the node serves TLS.
    pub fn tls_acceptor(&self) -> Option<native_tls::TlsAcceptor> {
        self.tls.clone()
    }

    fn publish(&self, tx: Tx) {
        let _order = lock(&self.publish_order);
        if let Err(err) = lock(&self.ledger).insert(tx.clone()) {
            panic!("publish: {err:?}");
        }
        let targets: Vec<(u64, flume::Sender<Outgoing>, String)> = {
            let registry = lock(&self.registry);
            registry
                .subs
                .iter()
                .filter(|(_, sub)| match &sub.filter {
                    Filter::All => true,
                    Filter::Mentions(address) => tx.mentions(address),
                })
                .filter_map(|(id, sub)| {
                    let outbox = registry.conns.get(&sub.conn)?.outbox.clone()?;
                    Some((sub.conn, outbox, notification_text(*id, &tx)))
                })
                .collect()
        };
        for (conn, outbox, text) in targets {
            self.send(conn, &outbox, Outgoing::Notification(text));
        }
    }

    /// Queues `message` for a connection; a connection whose queue stays full
    /// for [`OUTBOX_SEND_TIMEOUT`] is dropped as a slow consumer.
    fn send(&self, conn: u64, outbox: &flume::Sender<Outgoing>, message: Outgoing) -> bool {
        match outbox.send_timeout(message, OUTBOX_SEND_TIMEOUT) {
            Ok(()) => true,
            Err(flume::SendTimeoutError::Timeout(_)) => {
                self.counters.slow_consumers.fetch_add(1, Ordering::SeqCst);
                if let Some(c) = lock(&self.registry).conns.get(&conn) {
                    c.killed.store(true, Ordering::SeqCst);
                    let _ = c.tcp.shutdown(Shutdown::Both);
                }
                false
            }
            Err(flume::SendTimeoutError::Disconnected(_)) => false,
        }
    }

    fn deregister(&self, conn: u64) {
        let mut registry = lock(&self.registry);
        registry.conns.remove(&conn);
        registry.subs.retain(|_, sub| sub.conn != conn);
    }

    /// Marks a connection as a WebSocket session and hands it its queue; born
    /// stale in `Stale` mode.
    pub fn upgraded(&self, conn: u64) -> Option<Session> {
        let stale_mode = self.mode() == Mode::Stale;
        let (sender, receiver) = flume::bounded(self.options.outbox_capacity.max(1));
        let mut registry = lock(&self.registry);
        let entry = registry.conns.get_mut(&conn)?;
        entry.websocket = true;
        if stale_mode {
            entry.stale.store(true, Ordering::SeqCst);
        } else {
            entry.outbox = Some(sender);
        }
        self.counters.ws_accepted.fetch_add(1, Ordering::SeqCst);
        Some(Session { stale: Arc::clone(&entry.stale), killed: Arc::clone(&entry.killed), outbox: receiver })
    }

    pub fn count_refused_upgrade(&self) {
        self.counters.ws_refused.fetch_add(1, Ordering::SeqCst);
    }

    pub fn count_notification_sent(&self) {
        self.counters.notifications.fetch_add(1, Ordering::SeqCst);
    }

    /// Stops routing to a connection that went stale.
    pub fn detach(&self, conn: u64) {
        if let Some(entry) = lock(&self.registry).conns.get_mut(&conn) {
            entry.outbox = None;
        }
    }

    /// A new subscription of `conn`; its id.
    pub fn subscribe(&self, conn: u64, filter: Filter) -> u64 {
        let id = self.next_sub.fetch_add(1, Ordering::SeqCst);
        lock(&self.registry).subs.insert(id, Sub { conn, filter });
        self.counters.subscriptions.fetch_add(1, Ordering::SeqCst);
        id
    }

    /// Removes `conn`'s subscription `id`; false if it has none such.
    pub fn unsubscribe(&self, conn: u64, id: u64) -> bool {
        let mut registry = lock(&self.registry);
        match registry.subs.get(&id) {
            Some(sub) if sub.conn == conn => {
                registry.subs.remove(&id);
                true
            }
            _ => false,
        }
    }

    /// Appends to the request log (oldest dropped when full).
    pub fn record(&self, request: Request) {
        let mut log = lock(&self.log);
        if log.len() >= self.options.request_log_capacity.max(1) {
            log.pop_front();
            self.counters.requests_dropped.fetch_add(1, Ordering::SeqCst);
        }
        log.push_back(request);
    }

    /// The next injected failure, or a rate-limit 429.
    fn failure_now(&self, now: Instant) -> Option<HttpFailure> {
        if let Some(failure) = lock(&self.http_failures).pop_front() {
            return Some(failure);
        }
        let mut rate = lock(&self.rate);
        let (limit, seen) = rate.as_mut()?;
        while seen.front().is_some_and(|at| now.duration_since(*at) >= limit.per) {
            seen.pop_front();
        }
        if seen.len() >= limit.max_requests {
            return Some(HttpFailure { status: 429, retry_after_secs: limit.retry_after_secs });
        }
        seen.push_back(now);
        None
    }

    /// Answers one HTTP JSON-RPC request body.
    pub fn answer_http(&self, conn: u64, body: &[u8]) -> HttpAnswer {
        self.counters.http_requests.fetch_add(1, Ordering::SeqCst);
        let now = Instant::now();
        let text = String::from_utf8_lossy(body);
        let incoming = rpc::parse(&text);
        let log = |method: &str, params: &Value, status: u16, error_code: Option<i64>| {
            self.record(Request {
                at: now,
                transport: Transport::Http,
                method: method.to_owned(),
                params: rpc::params_summary(params),
                status,
                error_code,
                connection: conn,
            });
        };
        if let Some(failure) = self.failure_now(now) {
            for (method, params) in call_names(&incoming) {
                log(&method, &params, failure.status, (failure.status == 429).then_some(429));
            }
            return failure_answer(failure, first_id(&incoming));
        }
        let ok = |body: String| HttpAnswer { status: 200, headers: Vec::new(), body };
        match incoming {
            Incoming::Unparsable => {
                log("<unparsable>", &Value::Null, 200, Some(rpc::PARSE_ERROR));
                ok(rpc::error_text(&Value::Null, &RpcError::parse_error()))
            }
            Incoming::Single(call) => ok(self.answer_one(call, &log)),
            Incoming::Batch(calls) if calls.is_empty() || calls.len() > rpc::MAX_BATCH => {
                log("<batch>", &Value::Null, 200, Some(rpc::INVALID_REQUEST));
                ok(rpc::error_text(&Value::Null, &RpcError::invalid_request()))
            }
            Incoming::Batch(calls) => {
                let answers: Vec<String> = calls.into_iter().map(|call| self.answer_one(call, &log)).collect();
                ok(format!("[{}]", answers.join(",")))
            }
        }
    }

    fn answer_one(&self, call: Result<rpc::Call, (Value, RpcError)>, log: &LogFn<'_>) -> String {
        match call {
            Err((id, error)) => {
                log("<invalid>", &Value::Null, 200, Some(error.code));
                rpc::error_text(&id, &error)
            }
            Ok(call) => {
                let answer = methods::answer(&mut lock(&self.ledger), &call);
                match answer {
                    Ok(result) => {
                        log(&call.method, &call.params, 200, None);
                        rpc::result_text(&call.id, &result)
                    }
                    Err(error) => {
                        log(&call.method, &call.params, 200, Some(error.code));
                        rpc::error_text(&call.id, &error)
                    }
                }
            }
        }
    }
}

fn call_names(incoming: &Incoming) -> Vec<(String, Value)> {
    let one = |call: &Result<rpc::Call, (Value, RpcError)>| match call {
        Ok(call) => (call.method.clone(), call.params.clone()),
        Err(_) => ("<invalid>".to_owned(), Value::Null),
    };
    match incoming {
        Incoming::Unparsable => vec![("<unparsable>".to_owned(), Value::Null)],
        Incoming::Single(call) => vec![one(call)],
        Incoming::Batch(calls) => calls.iter().map(one).collect(),
    }
}

fn first_id(incoming: &Incoming) -> Value {
    match incoming {
        Incoming::Single(Ok(call)) => call.id.clone(),
        Incoming::Single(Err((id, _))) => id.clone(),
        _ => Value::Null,
    }
}

/// The answer to an injected failure: for 429, the body the public mainnet
/// endpoint sends ("Too many requests for a specific RPC call", code 429).
fn failure_answer(failure: HttpFailure, id: Value) -> HttpAnswer {
    let error = if failure.status == 429 {
        RpcError::new(429, "Too many requests for a specific RPC call")
    } else {
        RpcError::new(i64::from(failure.status), format!("HTTP {}", failure.status))
    };
    let mut headers = Vec::new();
    if let Some(seconds) = failure.retry_after_secs {
        headers.push(("Retry-After".to_owned(), seconds.to_string()));
    }
    HttpAnswer { status: failure.status, headers, body: rpc::error_text(&id, &error) }
}
