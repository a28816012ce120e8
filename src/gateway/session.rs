//! A WebSocket session, and the shard's consumer poller.
//!
//! Per-client mode: each subscribed session owns one rdkafka consumer (no
//! group membership, nothing committed) assigned to the partitions of its
//! windows. The poller drains every session's consumer in turn into the
//! session's outbox; when an outbox is full the poller stops reading that
//! consumer, so a slow client is paced by Kafka (which keeps the messages)
//! and nothing is dropped.
//!
//! Shared mode: sessions only register their subscriptions; the shard's feed
//! consumer ([`super::feed`]) supplies every update once and [`super::fanout`]
//! conflates and distributes it. A client whose outbox passes the byte cap
//! gets its pending updates conflated, and is closed (1013) if it stays over.
//!
//! Either way the session's writer task sends the outbox to the socket.

use std::cell::{Cell, RefCell, RefMut};
use std::collections::{HashMap, VecDeque};
use std::ops::ControlFlow;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_lite::future;
use futures_util::{SinkExt, StreamExt};
use glommio::net::TcpStream;
use glommio::timer::{sleep, timeout};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::{Offset, TopicPartitionList};
use rustc_hash::FxHashMap;
use tungstenite::Message;
use tungstenite::protocol::frame::Utf8Bytes;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};

use super::config::Fanout;
use super::fanout::SharedFrame;
use super::metrics::Metrics;
use super::outbox::{Out, Outbox};
use super::protocol::{self, Command};
use super::server::Shard;
use crate::codec::bar::{self, ArchivedBar};
use crate::codec::json::BarJson;
use crate::codec::trade::Pubkey;
use crate::kafka::Reader;
use crate::kafka::reader;
use crate::kafka::topic::partition_for;

/// Frames queued for one client; beyond it the poller stops reading the
/// client's consumer (Kafka holds the rest).
pub const OUTBOX_FRAMES: usize = 256;
/// Outbox slots kept free for command replies.
const CONTROL_RESERVE: usize = 16;
/// Bars waiting behind the outbox (history bursts); at this many the poller
/// stops reading the consumer until the client catches up.
const PENDING_HIGH: usize = 64;
/// Subscriptions one connection may hold; more are refused with an error.
pub const MAX_SUBSCRIPTIONS: usize = 8;
/// Kafka messages taken from one consumer per poller pass, so one busy
/// client cannot starve the others.
const MAX_MESSAGES_PER_PASS: usize = 64;
/// Longest poller wait after a pass that found nothing: consumers wake it
/// when a message arrives ([`Arrivals`](super::arrivals::Arrivals)); this
/// bounds the wait for what no message announces (an outbox with room again
/// for bars held back, history look-ups).
const POLL_IDLE: Duration = Duration::from_millis(5);
/// Longest wait for the closing handshake's last flush.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// A send that makes no progress for this long ends the session.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Socket read buffer of a session: commands are at most 256 bytes (larger
/// frames grow it up to --max-frame-bytes), and 50,000 idle sessions must
/// fit in a few KiB each.
const READ_BUFFER_BYTES: usize = 256;
/// How long a shared-mode client may stay over the outbound cap after its
/// updates were conflated before it is closed.
const OVER_CAP_GRACE: Duration = Duration::from_secs(5);
/// Largest amount of unsent frames tungstenite may hold.
const MAX_WRITE_BUFFER_BYTES: usize = 256 * 1024;
/// Frames queued behind each other go to the socket together, up to this
/// many bytes per write (about 16 bars). A client that keeps up gets each
/// frame at once (the writer flushes whenever the outbox is empty); a shard
/// that falls behind, with many subscribers, then spends one system call per
/// client per round instead of one per frame, so it catches up instead of
/// falling further behind. Costs at most this much memory per connection
/// that once had a burst (tungstenite keeps its buffer's capacity).
const WRITE_BATCH_BYTES: usize = 2048;

/// The sessions of one shard.
#[derive(Default)]
pub struct Sessions {
    next_id: Cell<u64>,
    /// Looked up once per subscriber of every update (shared mode): a hash
    /// map, not an ordered one, since nothing needs them in order.
    live: RefCell<FxHashMap<u64, Rc<Session>>>,
}

impl Sessions {
    /// A session by id.
    pub fn get(&self, id: u64) -> Option<Rc<Session>> {
        self.live.borrow().get(&id).cloned()
    }
}

/// What a connection subscribed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Subscription {
    window_s: u32,
    mint: Option<Pubkey>,
}

impl Subscription {
    fn matches(&self, bar: &ArchivedBar) -> bool {
        bar.window_s.to_native() == self.window_s && self.mint.is_none_or(|m| m == bar.mint)
    }
}

/// A pending `hist-<w> n` request: closing updates before `until` are
/// collected, the last `count` are sent when the consumer reaches `until`.
struct History {
    partition: i32,
    sub: Subscription,
    count: usize,
    until: i64,
    ring: VecDeque<Message>,
}

/// The Kafka side of a session.
#[derive(Default)]
struct Feed {
    consumer: Option<Arc<Reader>>,
    subs: Vec<Subscription>,
    /// Partition → first offset not yet delivered live (messages below it
    /// are re-reads for history and are not forwarded again).
    next_live: HashMap<i32, i64>,
    history: Vec<History>,
    /// Frames waiting for outbox room, in order.
    pending: VecDeque<Message>,
}

/// One WebSocket client.
pub struct Session {
    id: u64,
    json: bool,
    outbox: Outbox,
    /// Per-client mode: the client's own Kafka feed, from its first
    /// subscription until its last is dropped. Boxed, and absent otherwise:
    /// shared-mode sessions, the many, never carry one.
    feed: RefCell<Option<Box<Feed>>>,
    /// Shared mode: this session's subscriptions, (window, mint or all).
    shared_subs: RefCell<Vec<(u32, Option<Pubkey>)>>,
    /// Shared mode: the last `seq` sent as history per series, so the live
    /// stream does not repeat it.
    history_sent: RefCell<HashMap<(Pubkey, u32), u64>>,
    /// Shared mode: since when the outbox is over the cap.
    over_cap_since: Cell<Option<Instant>>,
    /// Shared mode: queued bytes at which the outbox is conflated next.
    conflate_at: Cell<usize>,
    /// When the client was last heard from (any frame, pongs included).
    last_heard: Cell<Instant>,
    /// A ping was sent since the client was last heard from.
    pinged: Cell<bool>,
}

impl Session {
    /// The session's Kafka feed, created on first use.
    fn feed_mut(&self) -> RefMut<'_, Feed> {
        RefMut::map(self.feed.borrow_mut(), |feed| &mut **feed.get_or_insert_with(Box::default))
    }

    /// Queues a reply, a ping or a close for the client. The queue stays
    /// bounded because the read loop takes no further command while the
    /// outbox is over the cap (see [`read_loop`]).
    fn push_control(&self, shard: &Shard, message: Message) {
        let queued = self.outbox.push(Out { message, replaceable: None });
        shard.metrics.outbound_peak_bytes.fetch_max(queued as u64, Ordering::Relaxed);
    }

    /// Drops what is queued, sends a close and ends the session.
    fn force_close(&self, code: CloseCode, reason: &'static str) {
        self.outbox.abort_with(Message::Close(Some(CloseFrame { code, reason: reason.into() })));
    }

    /// Shared mode: queues an update, applying the slow-client policy.
    pub fn push_shared(&self, shard: &Shard, frame: &SharedFrame) {
        if self.outbox.is_closed() {
            return;
        }
        if let Some(&sent) = self.history_sent.borrow().get(&frame.series)
            && frame.seq <= sent
        {
            return;
        }
        let replaceable = (!frame.closed).then_some(frame.series);
        Metrics::inc(&shard.metrics.bars_sent);
        let cap = shard.config.max_outbound_bytes;
        let queued = self.outbox.push(Out { message: frame.message(self.json), replaceable });
        shard.metrics.outbound_peak_bytes.fetch_max(queued as u64, Ordering::Relaxed);
        if queued <= cap {
            self.over_cap_since.set(None);
            self.conflate_at.set(cap);
            return;
        }
        if queued < self.conflate_at.get() {
            return; // conflated recently; wait for another half cap
        }
        let dropped = self.outbox.conflate();
        shard.metrics.conflated.fetch_add(dropped as u64, Ordering::Relaxed);
        // Conflating walks the whole queue: do it again only after another
        // half cap of updates, not on every update of a stuck client.
        self.conflate_at.set(cap.max(self.outbox.bytes() + cap / 2));
        if self.outbox.bytes() <= cap {
            return;
        }
        let since = *self.over_cap_since.get().get_or_insert_with(Instant::now);
        self.over_cap_since.set(Some(since));
        if since.elapsed() >= OVER_CAP_GRACE || self.outbox.bytes() > 4 * cap {
            Metrics::inc(&shard.metrics.slow_closes);
            self.force_close(CloseCode::Again, "too slow: outbound limit exceeded");
        }
    }
}

/// The WebSocket settings of every session.
pub fn websocket_config(max_frame_bytes: usize) -> WebSocketConfig {
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = READ_BUFFER_BYTES;
    config.write_buffer_size = WRITE_BATCH_BYTES;
    config.max_write_buffer_size = MAX_WRITE_BUFFER_BYTES;
    config.max_message_size = Some(max_frame_bytes);
    config.max_frame_size = Some(max_frame_bytes);
    config
}

/// Serves one upgraded connection until it closes.
///
/// This future lives as long as the connection, so it is kept small (a few
/// hundred bytes, see the `idle_session_state_stays_small` test): whatever is
/// large and rare (a command's handling, a send that has to wait for the
/// socket, the closing handshake) is boxed for as long as it runs instead
/// of being reserved in every idle session.
pub async fn run(shard: Rc<Shard>, mut sink: Outgoing, mut incoming: Incoming, json: bool) {
    let id = shard.sessions.next_id.get();
    shard.sessions.next_id.set(id + 1);
    let session = Rc::new(Session {
        id,
        json,
        outbox: Outbox::default(),
        feed: RefCell::new(None),
        shared_subs: RefCell::new(Vec::new()),
        history_sent: RefCell::new(HashMap::new()),
        over_cap_since: Cell::new(None),
        conflate_at: Cell::new(0),
        last_heard: Cell::new(Instant::now()),
        pinged: Cell::new(false),
    });
    shard.sessions.live.borrow_mut().insert(id, session.clone());
    shard.metrics.websockets.fetch_add(1, Ordering::Relaxed);
    // Reading and writing run in this one task (no second task, no timer
    // per session): whichever ends first decides. If the reader ends, the
    // writer still sends what is queued (a close frame); if the writer ends
    // (closed, stuck, forced out), the reader is simply dropped.
    let mut reading = pin!(read_loop(&shard, &session, &mut incoming));
    let mut writing = pin!(write_loop(&shard.metrics, &session, &mut sink));
    let reader_ended = future::or(
        async {
            (&mut reading).await;
            true
        },
        async {
            (&mut writing).await;
            false
        },
    )
    .await;
    shard.sessions.live.borrow_mut().remove(&id);
    shard.fanout.unsubscribe(id, None);
    release_feed(&shard, &session);
    shard.metrics.websockets.fetch_sub(1, Ordering::Relaxed);
    if reader_ended {
        session.outbox.finish(); // the writer sends what is queued, then ends
        writing.await;
    }
}

/// Sends the outbox to the socket until it is finished and drained, the
/// socket fails, or a send makes no progress for [`SEND_TIMEOUT`]. Frames
/// are buffered (up to [`WRITE_BATCH_BYTES`] per write) and flushed when
/// the outbox is empty.
async fn write_loop(metrics: &Metrics, session: &Session, sink: &mut Outgoing) {
    loop {
        // `message` is scoped to the match arm so the future does not keep a
        // slot for it next to the one inside `feed`.
        let (len, closing, send) = match session.outbox.next().await {
            None => break,
            Some(message) => {
                (message.len(), matches!(message, Message::Close(_)), bounded(SEND_TIMEOUT, sink.feed(message)))
            }
        };
        let Some(sent) = send.await else {
            // The socket took nothing for SEND_TIMEOUT: a stuck client.
            Metrics::inc(&metrics.slow_closes);
            break;
        };
        if sent.is_err() {
            break;
        }
        metrics.frame_sent(len);
        if session.outbox.is_empty() {
            let Some(flushed) = bounded(SEND_TIMEOUT, sink.flush()).await else {
                Metrics::inc(&metrics.slow_closes);
                break;
            };
            if flushed.is_err() {
                break;
            }
        }
        if closing {
            break;
        }
    }
    session.outbox.abort();
    // A last flush and TCP shutdown, bounded: the client may not read.
    // Boxed: it runs once, at the end, and is larger than everything else
    // the writer holds.
    let _ = Box::pin(timeout(CLOSE_TIMEOUT, async { Ok(sink.close(None).await) })).await;
}

/// Runs one step of sending (a frame, a flush), giving up after `limit`;
/// `None` if it timed out. Nearly every step completes when first polled
/// (the kernel has room), so the timer, and the heap memory its future
/// needs, is set up only for a step that has to wait: an idle session does
/// not carry a timer's state.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would store `step` twice (argument and local): 176 bytes instead of 96 in every session"
)]
fn bounded<F: Future + Unpin>(limit: Duration, mut step: F) -> impl Future<Output = Option<F::Output>> {
    async move {
        if let Some(done) = future::poll_once(&mut step).await {
            return Some(done);
        }
        Box::pin(timeout(limit, async move { Ok(step.await) })).await.ok()
    }
}

/// The shard's liveness sweep: pings sessions silent for a ping interval and
/// closes those silent for two. One timer per shard, not per session.
pub async fn sweep_silent(shard: Rc<Shard>) {
    let interval = shard.config.ping_interval;
    let tick = (interval / 4).clamp(Duration::from_millis(25), Duration::from_secs(1));
    while !shard.shutdown.requested() {
        sleep(tick).await;
        let sessions: Vec<Rc<Session>> = shard.sessions.live.borrow().values().cloned().collect();
        for (i, session) in sessions.iter().enumerate() {
            let silent = session.last_heard.get().elapsed();
            if silent >= interval * 2 {
                Metrics::inc(&shard.metrics.protocol_closes);
                close(session, CloseCode::Away, "no pong");
            } else if silent >= interval && !session.pinged.replace(true) {
                session.push_control(&shard, Message::Ping(Bytes::new()));
            }
            if i % 1024 == 1023 {
                glommio::yield_if_needed().await;
            }
        }
    }
}

/// The sending half of a session's WebSocket.
pub type Outgoing = async_tungstenite::WebSocketSender<TcpStream>;
/// The receiving half of a session's WebSocket.
pub type Incoming = async_tungstenite::WebSocketReceiver<TcpStream>;

async fn read_loop(shard: &Rc<Shard>, session: &Rc<Session>, incoming: &mut Incoming) {
    while !shard.shutdown.requested() && !session.outbox.is_closed() {
        // The frame is scoped to this block, so the future keeps no slot
        // for it while a command runs.
        let command = {
            let message = match incoming.next().await {
                None => return,
                Some(Err(error)) => return on_protocol_error(shard, session, &error),
                Some(Ok(message)) => message,
            };
            session.last_heard.set(Instant::now());
            session.pinged.set(false);
            match message {
                // Boxed: handling a command (Kafka look-ups in per-client
                // mode) needs far more state than waiting for the next
                // frame, and only for as long as it runs.
                Message::Text(text) => Box::pin(on_text(shard, session, text)),
                Message::Binary(_) => {
                    Metrics::inc(&shard.metrics.command_errors);
                    let error = serde_json::json!({"type": "error", "error": "commands are text frames"});
                    reply(shard, session, error.to_string());
                    continue;
                }
                Message::Close(_) => return,
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            }
        };
        if command.await.is_break() {
            return;
        }
    }
    close(session, CloseCode::Away, "server shutting down");
}

/// Handles one command. Commands are taken only as fast as their replies
/// are read: a client that pipelines commands waits here, one that never
/// reads is closed (`Break`).
async fn on_text(shard: &Rc<Shard>, session: &Rc<Session>, text: Utf8Bytes) -> ControlFlow<()> {
    on_command(shard, session, text.as_str()).await;
    let cap = shard.config.max_outbound_bytes;
    if session.outbox.bytes() <= cap {
        return ControlFlow::Continue(());
    }
    let drained = timeout(SEND_TIMEOUT, async {
        session.outbox.drained_to(cap / 2).await;
        Ok(())
    });
    if drained.await.is_err() {
        Metrics::inc(&shard.metrics.slow_closes);
        session.force_close(CloseCode::Policy, "not reading replies");
        return ControlFlow::Break(());
    }
    ControlFlow::Continue(())
}

fn on_protocol_error(shard: &Rc<Shard>, session: &Session, error: &tungstenite::Error) {
    use tungstenite::Error;
    let (code, why) = match error {
        Error::Capacity(_) => (CloseCode::Size, "message too big"),
        Error::Utf8(_) => (CloseCode::Invalid, "text frame is not UTF-8"),
        Error::Protocol(_) => (CloseCode::Protocol, "protocol error"),
        _ => return,
    };
    Metrics::inc(&shard.metrics.protocol_closes);
    close(session, code, why);
}

fn close(session: &Session, code: CloseCode, reason: &'static str) {
    session
        .outbox
        .push(Out { message: Message::Close(Some(CloseFrame { code, reason: reason.into() })), replaceable: None });
    session.outbox.finish();
}

fn reply(shard: &Rc<Shard>, session: &Session, json: String) {
    session.push_control(shard, Message::Text(json.into()));
}

async fn on_command(shard: &Rc<Shard>, session: &Rc<Session>, text: &str) {
    Metrics::inc(&shard.metrics.commands);
    let result = match protocol::parse_command(text, shard.config.windows.seconds()) {
        Ok(command) => apply(shard, session, &command).await.map(|()| protocol::ack_json(&command)),
        Err(error) => Err(error.to_string()),
    };
    match result {
        Ok(ack) => {
            reply(shard, session, ack);
        }
        Err(message) if message.is_empty() => {}
        Err(message) => {
            Metrics::inc(&shard.metrics.command_errors);
            reply(shard, session, serde_json::json!({"type": "error", "error": message}).to_string());
        }
    }
}

async fn apply(shard: &Rc<Shard>, session: &Rc<Session>, command: &Command) -> Result<(), String> {
    if let Fanout::Shared { .. } = shard.config.fanout {
        return apply_shared(shard, session, command);
    }
    match *command {
        Command::Ping => Ok(()),
        Command::Subscribe { window_s, mint } => subscribe(shard, session, Subscription { window_s, mint }, None).await,
        Command::History { window_s, count, mint } => {
            subscribe(shard, session, Subscription { window_s, mint }, Some(count as usize)).await
        }
        Command::Unsubscribe { window_s } => {
            unsubscribe(shard, session, window_s);
            Ok(())
        }
    }
}

/// Shared mode: subscriptions are entries in the shard's fan-out index;
/// history comes from the shard feed's rings. The acknowledgement is queued
/// by the caller before the history frames, which go out before live ones.
fn apply_shared(shard: &Rc<Shard>, session: &Rc<Session>, command: &Command) -> Result<(), String> {
    let subscribe = |window_s: u32, mint: Option<Pubkey>| -> Result<(), String> {
        let mut subs = session.shared_subs.borrow_mut();
        if !subs.contains(&(window_s, mint)) {
            if subs.len() >= MAX_SUBSCRIPTIONS {
                return Err(format!("at most {MAX_SUBSCRIPTIONS} subscriptions per connection; unsub first"));
            }
            // Exactly one more slot: most sessions hold one or two
            // subscriptions, and doubling would reserve four.
            subs.reserve_exact(1);
            subs.push((window_s, mint));
        }
        shard.fanout.subscribe(session.id, window_s, mint);
        Ok(())
    };
    match *command {
        Command::Ping => {}
        Command::Subscribe { window_s, mint } => subscribe(window_s, mint)?,
        Command::Unsubscribe { window_s } => {
            session.shared_subs.borrow_mut().retain(|(w, _)| window_s.is_some_and(|x| x != *w));
            shard.fanout.unsubscribe(session.id, window_s);
        }
        Command::History { window_s, count, mint } => {
            if session.shared_subs.borrow().len() >= MAX_SUBSCRIPTIONS
                && !session.shared_subs.borrow().contains(&(window_s, mint))
            {
                return Err(format!("at most {MAX_SUBSCRIPTIONS} subscriptions per connection; unsub first"));
            }
            let bars =
                shard.feed().map(|f| f.recent_closes(window_s, mint.as_ref(), count as usize)).unwrap_or_default();
            reply(shard, session, protocol::ack_json(command));
            let mut sent = session.history_sent.borrow_mut();
            for bar in bars {
                sent.insert((bar.mint, bar.window_s), bar.seq);
                let bytes = bar.to_bytes();
                let message = match session.json {
                    true => Message::Text(BarJson::line(&bar).into()),
                    false => Message::Binary(bytes.into()),
                };
                session.outbox.push(Out { message, replaceable: None });
            }
            drop(sent);
            subscribe(window_s, mint)?;
            return Err(String::new()); // acknowledged above
        }
    }
    Ok(())
}

fn partition_of(shard: &Shard, window_s: u32) -> i32 {
    partition_for(shard.config.windows.position(window_s).unwrap_or_default(), shard.partitions)
}

async fn subscribe(
    shard: &Rc<Shard>,
    session: &Rc<Session>,
    sub: Subscription,
    history: Option<usize>,
) -> Result<(), String> {
    if let Some(feed) = session.feed.borrow().as_deref()
        && feed.subs.len() >= MAX_SUBSCRIPTIONS
        && !feed.subs.contains(&sub)
    {
        return Err(format!("at most {MAX_SUBSCRIPTIONS} subscriptions per connection; unsub first"));
    }
    let consumer = ensure_consumer(shard, session).await?;
    let partition = partition_of(shard, sub.window_s);
    let topic = shard.config.kafka.topic.clone();
    let newly = !session.feed.borrow().as_ref().is_some_and(|feed| feed.next_live.contains_key(&partition));
    // The end offset is looked up now, not left to librdkafka's lazy
    // "latest", so every update produced after the acknowledgement arrives.
    let since_ms = history.map(|count| now_ms() - (count as i64 + 2) * i64::from(sub.window_s) * 1000);
    let lookup = if newly || since_ms.is_some() {
        let (c, t) = (consumer.clone(), topic.clone());
        let found = shard.workers.run(move || start_offsets(&c, &t, partition, since_ms)).await;
        Some(found.map_err(|e| e.to_string())?.map_err(|e| format!("Kafka offset lookup failed: {e}"))?)
    } else {
        None
    };
    let mut feed = session.feed_mut();
    let mut list = TopicPartitionList::new();
    match lookup {
        None => {}
        Some((_, high)) if history.is_none() => {
            list.add_partition_offset(&topic, partition, Offset::Offset(high)).map_err(|e| e.to_string())?;
            consumer.incremental_assign(&list).map_err(|e| e.to_string())?;
            feed.next_live.insert(partition, high);
        }
        Some((start, high)) => {
            if newly {
                list.add_partition_offset(&topic, partition, Offset::Offset(start)).map_err(|e| e.to_string())?;
                consumer.incremental_assign(&list).map_err(|e| e.to_string())?;
                feed.next_live.insert(partition, high);
            } else {
                consumer.seek(&topic, partition, Offset::Offset(start), Duration::ZERO).map_err(|e| e.to_string())?;
            }
            let count = history.unwrap_or_default();
            if start < high {
                feed.history.push(History { partition, sub, count, until: high, ring: VecDeque::with_capacity(count) });
            }
        }
    }
    feed.subs.retain(|s| *s != sub);
    feed.subs.push(sub);
    Ok(())
}

/// Blocking: the first offset at or after `since_ms` (or the end offset when
/// there is no `since_ms`), and the end offset.
fn start_offsets(
    consumer: &Reader,
    topic: &str,
    partition: i32,
    since_ms: Option<i64>,
) -> Result<(i64, i64), KafkaError> {
    let span = reader::spans(consumer, topic, &[(partition, since_ms)])?.pop();
    Ok(span.map_or((0, 0), |s| (s.start, s.end)))
}

async fn ensure_consumer(shard: &Rc<Shard>, session: &Rc<Session>) -> Result<Arc<Reader>, String> {
    if let Some(consumer) = session.feed.borrow().as_ref().and_then(|feed| feed.consumer.clone()) {
        return Ok(consumer);
    }
    let config = shard.config.kafka.clone();
    let group = reader::unique_group("gw");
    let arrivals = shard.arrivals.clone();
    let created = shard
        .workers
        .run(move || {
            let mut consumer = config.create_reader(&group)?;
            arrivals.watch(&mut consumer);
            Ok::<_, rdkafka::error::KafkaError>(consumer)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("could not create a Kafka consumer: {e}"))?;
    let consumer = Arc::new(created);
    shard.metrics.consumers.fetch_add(1, Ordering::Relaxed);
    session.feed_mut().consumer = Some(consumer.clone());
    Ok(consumer)
}

fn unsubscribe(shard: &Rc<Shard>, session: &Rc<Session>, window_s: Option<u32>) {
    let mut guard = session.feed.borrow_mut();
    let Some(feed) = guard.as_deref_mut() else { return };
    let keep = |w: u32| window_s.is_some_and(|x| x != w);
    feed.subs.retain(|s| keep(s.window_s));
    feed.history.retain(|h| keep(h.sub.window_s));
    let needed: Vec<i32> = feed.subs.iter().map(|s| partition_of(shard, s.window_s)).collect();
    let unused: Vec<i32> = feed.next_live.keys().copied().filter(|p| !needed.contains(p)).collect();
    if let Some(consumer) = feed.consumer.clone() {
        let mut list = TopicPartitionList::new();
        for p in &unused {
            let _ = list.add_partition(&shard.config.kafka.topic, *p);
        }
        if list.count() > 0 {
            let _ = consumer.incremental_unassign(&list);
        }
    }
    for p in unused {
        feed.next_live.remove(&p);
    }
    if feed.subs.is_empty() {
        drop(guard);
        release_feed(shard, session);
    }
}

/// Drops the session's feed (what is pending, history requests) and its
/// consumer, the consumer on a worker thread (closing joins librdkafka's
/// threads, which must not stall the shard).
fn release_feed(shard: &Rc<Shard>, session: &Session) {
    let Some(feed) = session.feed.borrow_mut().take() else { return };
    if let Some(consumer) = feed.consumer {
        shard.metrics.consumers.fetch_sub(1, Ordering::Relaxed);
        shard.workers.detach(move || drop(consumer));
    }
}

/// The shard's poller: drains the shard feed and every session's own
/// consumer (per-client mode) into the outboxes.
pub async fn poll_consumers(shard: Rc<Shard>) {
    while !shard.shutdown.requested() {
        let mut moved = shard.feed().map_or(0, |feed| super::fanout::drain_feed(&shard, &feed));
        if shard.config.fanout == Fanout::PerClient {
            let sessions: Vec<Rc<Session>> = shard.sessions.live.borrow().values().cloned().collect();
            for session in &sessions {
                moved += drain(&shard, session);
            }
        }
        if moved == 0 {
            shard.arrivals.wait(POLL_IDLE).await;
        } else {
            // Let the writers that were just woken send before the next pass.
            futures_lite::future::yield_now().await;
        }
    }
}

fn outbox_room(session: &Session) -> bool {
    session.outbox.len() + CONTROL_RESERVE < OUTBOX_FRAMES && !session.outbox.is_closed()
}

fn drain(shard: &Shard, session: &Session) -> usize {
    let mut guard = session.feed.borrow_mut();
    let Some(feed) = guard.as_deref_mut() else { return 0 };
    let mut moved = flush_pending(feed, session);
    let Some(consumer) = feed.consumer.clone() else { return moved };
    let mut read = 0;
    while read < MAX_MESSAGES_PER_PASS && feed.pending.len() < PENDING_HIGH {
        match consumer.poll(Duration::ZERO) {
            None => break,
            Some(Ok(message)) => {
                read += 1;
                on_message(shard, session, feed, &message);
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => finish_history(feed, partition, i64::MAX),
            Some(Err(error)) => {
                Metrics::inc(&shard.metrics.kafka_errors);
                tracing::debug!(%error, session = session.id, "consumer error");
                break;
            }
        }
        moved += flush_pending(feed, session);
    }
    moved + read
}

fn flush_pending(feed: &mut Feed, session: &Session) -> usize {
    let mut moved = 0;
    while outbox_room(session) {
        let Some(message) = feed.pending.pop_front() else { break };
        session.outbox.push(Out { message, replaceable: None });
        moved += 1;
    }
    moved
}

fn on_message(shard: &Shard, session: &Session, feed: &mut Feed, message: &BorrowedMessage<'_>) {
    let payload = message.payload().unwrap_or_default();
    let Ok(bar) = bar::access(payload) else {
        Metrics::inc(&shard.metrics.malformed_messages);
        return;
    };
    let (partition, offset) = (message.partition(), message.offset());
    for job in feed.history.iter_mut().filter(|j| j.partition == partition && offset < j.until) {
        if bar.closed && job.sub.matches(bar) {
            if job.ring.len() == job.count {
                job.ring.pop_front();
            }
            job.ring.push_back(frame(session.json, payload, bar));
        }
    }
    finish_history(feed, partition, offset + 1);
    let next_live = feed.next_live.entry(partition).or_insert(0);
    if offset < *next_live {
        return;
    }
    *next_live = offset + 1;
    if feed.subs.iter().any(|s| s.matches(bar)) {
        Metrics::inc(&shard.metrics.bars_sent);
        feed.pending.push_back(frame(session.json, payload, bar));
    }
}

/// Sends the history of requests on `partition` whose end has been reached.
fn finish_history(feed: &mut Feed, partition: i32, reached: i64) {
    let mut i = 0;
    while i < feed.history.len() {
        if feed.history[i].partition == partition && reached >= feed.history[i].until {
            let job = feed.history.remove(i);
            feed.pending.extend(job.ring);
        } else {
            i += 1;
        }
    }
}

fn frame(json: bool, payload: &[u8], bar: &ArchivedBar) -> Message {
    if json {
        Message::Text(BarJson::line(&bar.to_bar()).into())
    } else {
        Message::Binary(Bytes::copy_from_slice(payload))
    }
}

/// Closes every session with 1001 (going away) at shutdown.
pub async fn close_all(shard: &Rc<Shard>) {
    let sessions: Vec<Rc<Session>> = shard.sessions.live.borrow().values().cloned().collect();
    for session in &sessions {
        close(session, CloseCode::Away, "server shutting down");
        session.outbox.finish();
    }
    for _ in 0..50 {
        if shard.sessions.live.borrow().is_empty() {
            break;
        }
        sleep(Duration::from_millis(20)).await;
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
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
    /// while in use (it was 2.5 KiB of a 5 KiB connection).
    #[test]
    fn idle_session_state_stays_small() {
        let future = future_size(run);
        assert!(future <= 512, "session future grew to {future} bytes");
        let session = std::mem::size_of::<Session>();
        assert!(session <= 320, "Session grew to {session} bytes");
    }
}
