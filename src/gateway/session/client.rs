//! What a session is: one client, its subscriptions and outbox, what it
//! needs from its shard ([`Context`]), the shard's live sessions
//! ([`Sessions`]), why a command is refused ([`Refused`]) and what a
//! fan-out mode must do ([`Fanout`]).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use glommio::net::TcpStream;
use rdkafka::error::KafkaError;
use rustc_hash::FxHashMap;
use thiserror::Error;

use crate::gateway::arrivals::Arrivals;
use crate::gateway::config::GatewayConfig;
use crate::gateway::feed::Feed;
use crate::gateway::format::Format;
use crate::gateway::hub::{Hub, Subscription};
use crate::gateway::kafka_workers::{KafkaWorkers, WorkersGone};
use crate::gateway::metrics::Metrics;
use crate::gateway::outbox::{Out, Outbox};
use crate::gateway::protocol::{CommandError, Reply};
use crate::gateway::transport::Transport;
use crate::gateway::update::Series;
use crate::history::History;
use crate::kafka::Reader;
use crate::runtime::Shutdown;

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
    /// The shard's reader (history, resumes), if it started.
    pub feed: Option<Rc<Feed>>,
    /// The history store (`hist` pages).
    pub history: Option<History>,
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

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.live.borrow().is_empty()
    }

    /// Registers a new session of `transport` on `socket`.
    pub fn open(
        &self,
        ctx: &Context,
        socket: TcpStream,
        transport: &'static dyn Transport,
        format: Format,
    ) -> Rc<Session> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let session = Rc::new(Session {
            id,
            transport,
            format,
            socket: RefCell::new(socket),
            outbox: Outbox::default(),
            max_outbound_bytes: ctx.config.max_outbound_bytes,
            subs: RefCell::new(Vec::new()),
            replayed: RefCell::new(HashMap::new()),
            feed: RefCell::new(None),
            metrics: ctx.metrics.clone(),
            last_heard: Cell::new(Instant::now()),
            pinged: Cell::new(false),
        });
        self.live.borrow_mut().insert(id, session.clone());
        ctx.metrics.session_opened(transport);
        session
    }

    /// Takes an ended session out of the registry.
    pub fn remove(&self, session: &Session) {
        if self.live.borrow_mut().remove(&session.id).is_some() {
            session.metrics.session_closed(session.transport);
        }
    }
}

/// Why a command was refused; the client gets the message as a JSON error.
#[derive(Debug, Error)]
pub enum Refused {
    /// Not a command of the protocol.
    #[error(transparent)]
    Parse(#[from] CommandError),
    /// A binary message: commands are text.
    #[error("commands are text frames")]
    NotText,
    /// One subscription more than [`MAX_SUBSCRIPTIONS`].
    #[error("at most {MAX_SUBSCRIPTIONS} subscriptions per connection; unsub first")]
    TooManySubscriptions,
    /// The Kafka worker threads are gone (shutting down).
    #[error(transparent)]
    Workers(#[from] WorkersGone),
    /// Per-client mode: no consumer could be created.
    #[error("could not create a Kafka consumer: {0}")]
    Consumer(KafkaError),
    /// Per-client mode: the partition's offsets could not be looked up.
    #[error("Kafka offset lookup failed: {0}")]
    OffsetLookup(KafkaError),
    /// Per-client mode: the consumer refused the new position.
    #[error("Kafka consumer could not be positioned: {0}")]
    Position(KafkaError),
    /// The shard feed, or the history store, is not there.
    #[error("{0}")]
    Unavailable(&'static str),
    /// A `hist` page was refused by the history store.
    #[error("{0}")]
    Page(#[from] crate::gateway::api::ApiError),
}

/// Where a subscription joins the live stream: what [`Fanout::prepare`]
/// found, for [`Fanout::join`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinAt {
    /// The mode needs no position (shared: the hub's next push).
    Next,
    /// The session's consumer starts reading the window's partition here
    /// (per-client mode; ignored when it reads it already).
    Offset(i64),
}

/// What a fan-out mode does with a session's subscriptions. The mode is
/// chosen when a session starts ([`super::run`]); everything else about a
/// session (the one subscription list, the limit, history, replies,
/// transport) is the same in both.
///
/// A subscription joins the live stream in two steps, so the history sent
/// before it and the live updates after it meet with nothing between them:
/// [`Fanout::prepare`] may wait; the caller then takes the history from the
/// shard feed and calls [`Fanout::join`] with no await in between.
pub(crate) trait Fanout {
    /// Gets ready to join `sub` live; returns where it will join: right
    /// after what the shard feed has read when `after_history` (history or
    /// a replay from the feed goes first), else from now.
    async fn prepare(
        ctx: &Context,
        session: &Rc<Session>,
        sub: &Subscription,
        after_history: bool,
    ) -> Result<JoinAt, Refused>;

    /// Joins `sub` (already in the session's list) live from `at`.
    fn join(ctx: &Context, session: &Rc<Session>, sub: Subscription, at: JoinAt) -> Result<(), Refused>;

    /// Drops what the mode holds for subscriptions on `window_s` (every
    /// window if `None`), already taken off the session's list.
    fn unsubscribe(ctx: &Context, session: &Rc<Session>, window_s: Option<u32>);

    /// The session ended: drops whatever the mode holds for it.
    fn leave(ctx: &Context, session: &Rc<Session>);
}

/// One client.
pub struct Session {
    pub(super) id: u64,
    /// How the client's connection carries the session.
    pub(super) transport: &'static dyn Transport,
    /// Binary bars, or which text form.
    pub(super) format: Format,
    /// The client's socket: the connection's read and write loops use it,
    /// and a push writes to it directly when nothing is queued. Borrowed
    /// only within a poll, never across an await.
    pub(super) socket: RefCell<TcpStream>,
    /// Frames waiting for the socket.
    pub(super) outbox: Outbox,
    /// Bytes queued at which shared-mode updates are conflated.
    pub(super) max_outbound_bytes: usize,
    /// The session's subscriptions, in both modes.
    pub(super) subs: RefCell<Vec<Subscription>>,
    /// Per series sent as history or replay, the last `seq` sent: live
    /// updates at or below it are not sent again.
    pub(super) replayed: RefCell<HashMap<Series, u64>>,
    /// Per-client mode: the client's own Kafka side, from its first
    /// subscription until its last is dropped. Boxed, and absent otherwise:
    /// shared-mode sessions, the many, never carry one.
    pub(super) feed: RefCell<Option<Box<ClientFeed>>>,
    /// Counters.
    pub(super) metrics: Arc<Metrics>,
    /// When the client was last heard from (any frame, pongs included).
    pub(super) last_heard: Cell<Instant>,
    /// A ping was sent since the client was last heard from.
    pub(super) pinged: Cell<bool>,
}

/// A per-client session's Kafka side (what [`super::per_client`] reads
/// for it).
#[derive(Default)]
pub struct ClientFeed {
    /// The session's own consumer.
    pub(super) consumer: Option<Arc<Reader>>,
    /// Partition → next offset to forward; a partition is read while it is
    /// here.
    pub(super) next_live: HashMap<i32, i64>,
    /// Frames waiting for outbox room, in order.
    pub(super) pending: std::collections::VecDeque<Bytes>,
}

impl Session {
    /// Queues a reply, a ping, a pong or a close for the client. The queue
    /// stays bounded because the read loop takes no further command while
    /// the outbox is over the cap (see [`super::connection`]).
    pub(super) fn push_control(&self, frame: Bytes) {
        let queued = self.outbox.push(Out::frame(frame));
        self.metrics.outbound_peak_bytes.fetch_max(queued as u64, Ordering::Relaxed);
    }

    /// Queues a reply.
    pub(super) fn reply(&self, reply: &Reply<'_>) {
        self.push_control(self.transport.reply(&reply.to_json()));
    }

    /// Queues a bar frame that nothing replaces (history, replays).
    pub(super) fn push_bar(&self, frame: Bytes) {
        self.outbox.push(Out::frame(frame));
    }

    /// Queues the transport's goodbye; the writer sends what is queued,
    /// then ends.
    pub(super) fn close(&self, code: u16, reason: &'static str) {
        match self.transport.close(code, reason) {
            Some(frame) => self.close_with(frame),
            None => self.outbox.finish(),
        }
    }

    /// Queues `frame`, a goodbye, as the last frame.
    pub(super) fn close_with(&self, frame: Bytes) {
        self.push_control(frame);
        self.outbox.finish();
    }

    /// Drops what is queued, says goodbye and ends the session.
    pub(super) fn force_close(&self, code: u16, reason: &'static str) {
        match self.transport.close(code, reason) {
            Some(frame) => self.outbox.abort_with(frame),
            None => self.outbox.abort(),
        }
    }

    /// Refuses a new subscription beyond [`MAX_SUBSCRIPTIONS`].
    pub(super) fn room_for(&self, sub: &Subscription) -> Result<(), Refused> {
        let subs = self.subs.borrow();
        if subs.len() >= MAX_SUBSCRIPTIONS && !subs.contains(sub) {
            return Err(Refused::TooManySubscriptions);
        }
        Ok(())
    }

    /// Adds `sub` to the list (once).
    pub(super) fn add_subscription(&self, sub: Subscription) {
        let mut subs = self.subs.borrow_mut();
        if !subs.contains(&sub) {
            // Exactly one more slot: most sessions hold one or two
            // subscriptions, and doubling would reserve four.
            subs.reserve_exact(1);
            subs.push(sub);
        }
    }

    /// Whether a live update of `series` at `seq` was sent already as
    /// history or replay.
    pub(super) fn was_replayed(&self, series: &Series, seq: u64) -> bool {
        self.replayed.borrow().get(series).is_some_and(|&sent| seq <= sent)
    }
}
