//! One WebSocket client, and the shard's sessions as a whole.
//!
//! - this file: what a session is ([`Session`]), what it needs from its
//!   shard ([`Context`]), the shard's live sessions ([`Sessions`]) with the
//!   liveness sweep and the goodbye at shutdown.
//! - [`connection`]: the socket: reading frames, writing the outbox.
//! - [`commands`]: a command in, its effect and its reply out.
//! - [`per_client`]: per-client mode, the session's own Kafka consumer.
//! - [`resume`]: `sub-<w> <mint> since <seq>` / `from <ms>`: what a client
//!   missed, then live. [`page`]: `hist` pages of the history store.
//!
//! Shared mode: a session registers its subscriptions with the shard's
//! [`Hub`], which hands it every update due at each push
//! ([`Member::deliver`]); the slow-client policy is the outbox's
//! ([`Outbox::push_update`]). Per-client mode: the session's consumer is
//! drained into its outbox by the shard's poller, which stops reading it
//! while the outbox is full, so Kafka paces a slow client and nothing is
//! dropped. Either way the session's writer sends the outbox to the socket.

pub mod commands;
pub mod connection;
pub mod page;
pub mod per_client;
pub mod resume;

use std::cell::{Cell, RefCell, RefMut};
use std::collections::HashMap;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::io::AsyncWrite;
use glommio::net::TcpStream;
use glommio::timer::sleep;
use rustc_hash::FxHashMap;

use super::arrivals::Arrivals;
use super::config::GatewayConfig;
use super::feed::Feed;
use super::hub::{Due, Hub, Member, Subscription};
use super::kafka_workers::KafkaWorkers;
use super::metrics::Metrics;
use super::outbox::{Out, Outbox};
use super::update::{Format, Series, Update};
use super::websocket::{self, close, opcode};
use crate::runtime::Shutdown;
use per_client::ClientFeed;

/// Frames queued for one client; beyond it the poller stops reading the
/// client's consumer (Kafka holds the rest).
pub const OUTBOX_FRAMES: usize = 256;
/// Subscriptions one connection may hold; more are refused with an error.
pub const MAX_SUBSCRIPTIONS: usize = 8;

/// What a session needs from its shard; built once by the shard, shared by
/// every session on it.
pub struct Context {
    /// Validated settings.
    pub config: GatewayConfig,
    /// Process-wide counters.
    pub metrics: Arc<Metrics>,
    /// Threads for blocking Kafka work (per-client consumers).
    pub workers: KafkaWorkers,
    /// Wakes the shard's poller when a consumer has messages.
    pub arrivals: Arrivals,
    /// Partitions of the topic, for window → partition.
    pub partitions: i32,
    /// Shared mode: subscriptions and pushes.
    pub hub: Rc<Hub>,
    /// The shard's reader (history), if it started.
    pub feed: Option<Rc<Feed>>,
    /// The shard's live sessions.
    pub sessions: Sessions,
    /// Process shutdown flag.
    pub shutdown: Shutdown,
}

/// The live sessions of one shard.
#[derive(Default)]
pub struct Sessions {
    next_id: Cell<u64>,
    /// Walked by the poller (per-client mode) and the liveness sweep; looked
    /// up by id when a session ends. A hash map: nothing needs them in order.
    live: RefCell<FxHashMap<u64, Rc<Session>>>,
}

impl Sessions {
    /// Every live session, for a walk that may yield.
    pub fn all(&self) -> Vec<Rc<Session>> {
        self.live.borrow().values().cloned().collect()
    }

    fn is_empty(&self) -> bool {
        self.live.borrow().is_empty()
    }
}

/// One WebSocket client.
pub struct Session {
    id: u64,
    /// Binary bars, or which text frames (`/ws?format=json|binance`).
    format: Format,
    /// The client's socket: the connection's read and write loops use it,
    /// and a push writes to it directly when nothing is queued
    /// ([`Member::deliver`]). Borrowed only within a poll, never across an
    /// await.
    socket: RefCell<TcpStream>,
    /// Frames waiting for the socket.
    outbox: Outbox,
    /// Bytes queued at which shared-mode updates are conflated.
    max_outbound_bytes: usize,
    /// Per-client mode: the client's own Kafka feed, from its first
    /// subscription until its last is dropped. Boxed, and absent otherwise:
    /// shared-mode sessions, the many, never carry one.
    feed: RefCell<Option<Box<ClientFeed>>>,
    /// Shared mode: this session's subscriptions, as the hub has them.
    shared_subs: RefCell<Vec<Subscription>>,
    /// Shared mode: the last `seq` sent as history per series, so the live
    /// stream does not repeat it.
    history_sent: RefCell<HashMap<Series, u64>>,
    /// Counters, for what the hub's pushes do to this session.
    metrics: Arc<Metrics>,
    /// When the client was last heard from (any frame, pongs included).
    last_heard: Cell<Instant>,
    /// A ping was sent since the client was last heard from.
    pinged: Cell<bool>,
}

impl Session {
    /// The session's Kafka feed, created on first use.
    fn feed_mut(&self) -> RefMut<'_, ClientFeed> {
        RefMut::map(self.feed.borrow_mut(), |feed| &mut **feed.get_or_insert_with(Box::default))
    }

    /// Queues a reply, a ping, a pong or a close for the client. The queue
    /// stays bounded because the read loop takes no further command while
    /// the outbox is over the cap (see [`connection`]).
    fn push_control(&self, frame: Bytes) {
        let queued = self.outbox.push(Out::frame(frame));
        self.metrics.outbound_peak_bytes.fetch_max(queued as u64, Ordering::Relaxed);
    }

    /// Queues a JSON reply.
    fn reply(&self, json: String) {
        self.push_control(websocket::frame(opcode::TEXT, json.as_bytes()));
    }

    /// Queues a close frame; the writer sends what is queued, then ends.
    fn close(&self, code: u16, reason: &'static str) {
        self.close_with(websocket::close_frame(code, reason));
    }

    /// Queues `frame`, a close, as the last frame.
    fn close_with(&self, frame: Bytes) {
        self.push_control(frame);
        self.outbox.finish();
    }

    /// Drops what is queued, sends a close and ends the session.
    fn force_close(&self, code: u16, reason: &'static str) {
        self.outbox.abort_with(websocket::close_frame(code, reason));
    }
}

impl Member for Session {
    /// Takes this session's share of a push. When nothing is queued for the
    /// client, the share goes to the socket at once, in one write from the
    /// push's shared buffer, without waking the session's task; what the
    /// socket does not take is queued for the writer. Otherwise (a client
    /// that is behind) each update is queued under the slow-client policy.
    fn deliver(&self, due: &Due) {
        if self.outbox.is_closed() {
            return;
        }
        let subs = self.shared_subs.borrow();
        let history = self.history_sent.borrow();
        let wanted = || due.updates_for(&subs).filter(|u| history.get(&u.series).is_none_or(|&sent| u.seq > sent));
        if !self.outbox.may_write_through() {
            for update in wanted() {
                if !self.queue_update(update) {
                    return;
                }
            }
            return;
        }
        let mut bytes = due.scratch();
        let (mut frames, mut payload) = (0, 0);
        for update in wanted() {
            let frame = update.frame(self.format);
            bytes.extend_from_slice(&frame);
            frames += 1;
            payload += websocket::payload_of(&frame).len();
        }
        if frames == 0 {
            return;
        }
        self.metrics.bars_sent.fetch_add(frames as u64, Ordering::Relaxed);
        let mut cx = TaskContext::from_waker(Waker::noop());
        match Pin::new(&mut *self.socket.borrow_mut()).poll_write(&mut cx, &bytes) {
            Poll::Ready(Ok(n)) => {
                self.metrics.frames_sent(frames, payload);
                if n < bytes.len() {
                    // The socket is full: the rest is the writer's, and
                    // what comes next is queued behind it.
                    self.outbox.push_rest(Bytes::copy_from_slice(&bytes[n..]));
                }
            }
            Poll::Ready(Err(_)) => self.outbox.abort(), // the connection is gone
            Poll::Pending => {
                // Not a byte went: the writer sends them, under the policy.
                self.metrics.bars_sent.fetch_sub(frames as u64, Ordering::Relaxed);
                drop(bytes);
                for update in wanted() {
                    if !self.queue_update(update) {
                        return;
                    }
                }
            }
        }
    }
}

impl Session {
    /// Queues one update under the slow-client policy; false if that
    /// closed the session.
    fn queue_update(&self, update: &Update) -> bool {
        let frame = update.frame(self.format);
        let out = if update.closed { Out::frame(frame) } else { Out::update(frame, update.series) };
        Metrics::inc(&self.metrics.bars_sent);
        let pushed = self.outbox.push_update(out, self.max_outbound_bytes);
        self.metrics.outbound_peak_bytes.fetch_max(pushed.queued as u64, Ordering::Relaxed);
        self.metrics.conflated.fetch_add(pushed.conflated as u64, Ordering::Relaxed);
        if pushed.too_slow {
            Metrics::inc(&self.metrics.slow_closes);
            self.force_close(close::AGAIN, "too slow: outbound limit exceeded");
            return false;
        }
        true
    }
}

/// Serves one upgraded connection until it closes: registers the session,
/// runs its connection, then takes it out of the hub and the poller's walk.
///
/// The future lives as long as the connection, so it is kept small (see the
/// `idle_session_state_stays_small` test): the session, socket included, is
/// made before the future (an async fn would keep a slot for the socket as
/// its argument besides the one in the session), and whatever is large and
/// rare is boxed for as long as it runs (see [`connection`]).
pub fn run(ctx: Rc<Context>, stream: TcpStream, read_ahead: Vec<u8>, format: Format) -> impl Future<Output = ()> {
    let id = ctx.sessions.next_id.get();
    ctx.sessions.next_id.set(id + 1);
    let session = Rc::new(Session {
        id,
        format,
        socket: RefCell::new(stream),
        outbox: Outbox::default(),
        max_outbound_bytes: ctx.config.max_outbound_bytes,
        feed: RefCell::new(None),
        shared_subs: RefCell::new(Vec::new()),
        history_sent: RefCell::new(HashMap::new()),
        metrics: ctx.metrics.clone(),
        last_heard: Cell::new(Instant::now()),
        pinged: Cell::new(false),
    });
    ctx.sessions.live.borrow_mut().insert(id, session.clone());
    ctx.metrics.websockets.fetch_add(1, Ordering::Relaxed);
    async move {
        connection::serve(&ctx, &session, read_ahead).await;
        ctx.metrics.websockets.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Takes an ended session out of the shard: the registry, the hub and its
/// per-client consumer. Called by [`connection::serve`] as soon as either
/// half of the connection ends, before the last frames are flushed.
fn leave(ctx: &Context, session: &Rc<Session>) {
    ctx.sessions.live.borrow_mut().remove(&session.id);
    if !session.shared_subs.borrow().is_empty() {
        let member: Rc<dyn Member> = session.clone();
        ctx.hub.unsubscribe(&member, None);
    }
    per_client::release(ctx, session);
}

/// The shard's liveness sweep: pings sessions silent for a ping interval and
/// closes those silent for two. One timer per shard, not per session.
pub async fn sweep_silent(ctx: Rc<Context>) {
    let interval = ctx.config.ping_interval;
    let tick = (interval / 4).clamp(Duration::from_millis(25), Duration::from_secs(1));
    while !ctx.shutdown.requested() {
        sleep(tick).await;
        for (i, session) in ctx.sessions.all().iter().enumerate() {
            let silent = session.last_heard.get().elapsed();
            if silent >= interval * 2 {
                Metrics::inc(&ctx.metrics.protocol_closes);
                session.close(close::AWAY, "no pong");
            } else if silent >= interval && !session.pinged.replace(true) {
                session.push_control(websocket::frame(opcode::PING, b""));
            }
            if i % 1024 == 1023 {
                glommio::yield_if_needed().await;
            }
        }
    }
}

/// Most time [`close_all`] waits for the sessions to send their goodbye.
const CLOSE_ALL_WAIT: Duration = Duration::from_secs(1);

/// Closes every session with 1001 (going away) at shutdown, and waits (at
/// most [`CLOSE_ALL_WAIT`]) for them to end.
pub async fn close_all(ctx: &Context) {
    for session in ctx.sessions.all() {
        session.close(close::AWAY, "server shutting down");
    }
    let started = Instant::now();
    while !ctx.sessions.is_empty() && started.elapsed() < CLOSE_ALL_WAIT {
        sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future an async fn returns, without calling it.
    fn future_size<A, B, C, D, F: Future>(_: fn(A, B, C, D) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// A session's future and state live as long as its connection, in
    /// every one of 50,000 idle connections: anything large must be boxed
    /// while in use. Between them they hold the socket (120 bytes) and all
    /// the WebSocket state, which a WebSocket library used to keep on the
    /// heap besides (the two were 2.5 KiB of a 5 KiB connection then).
    #[test]
    fn idle_session_state_stays_small() {
        let future = future_size(run);
        assert!(future <= 704, "session future grew to {future} bytes");
        let session = std::mem::size_of::<Session>();
        assert!(session <= 448, "Session grew to {session} bytes");
    }
}
