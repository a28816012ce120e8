//! Per-client mode: each subscribed session owns one rdkafka consumer (no
//! group membership, nothing committed) assigned to the partitions of its
//! windows, from the end (or, for `hist-<w> n`, from the offset found by
//! time). The shard's poller drains every session's consumer in turn
//! ([`drain_all`]) into the session's outbox; when an outbox is full it
//! stops reading that consumer, so a slow client is paced by Kafka (which
//! keeps the messages) and nothing is dropped.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::{Offset, TopicPartitionList};

use super::commands::Refused;
use super::{Context, MAX_SUBSCRIPTIONS, OUTBOX_FRAMES, Session};
use crate::codec::bar::{self, ArchivedBar};
use crate::gateway::hub::Subscription;
use crate::gateway::metrics::Metrics;
use crate::gateway::outbox::Out;
use crate::gateway::update;
use crate::kafka::topic::partition_for;
use crate::kafka::{Reader, Span, reader};

/// Outbox slots kept free for command replies.
const CONTROL_RESERVE: usize = 16;
/// Bars waiting behind the outbox (history bursts); at this many the poller
/// stops reading the consumer until the client catches up.
const PENDING_HIGH: usize = 64;
/// Kafka messages taken from one consumer per poller pass, so one busy
/// client cannot starve the others.
const MAX_MESSAGES_PER_PASS: usize = 64;

/// Whether a subscription wants this bar.
fn matches(sub: &Subscription, bar: &ArchivedBar) -> bool {
    bar.window_s.to_native() == sub.window_s && sub.mint.is_none_or(|m| m == bar.mint)
}

/// A pending `hist-<w> n` request: closing updates before `until` are
/// collected, the last `count` are sent when the consumer reaches `until`.
struct History {
    partition: i32,
    sub: Subscription,
    count: usize,
    until: i64,
    ring: VecDeque<Bytes>,
}

/// The Kafka side of a session.
#[derive(Default)]
pub struct ClientFeed {
    consumer: Option<Arc<Reader>>,
    subs: Vec<Subscription>,
    /// Partition → first offset not yet delivered live (messages below it
    /// are re-reads for history and are not forwarded again).
    next_live: HashMap<i32, i64>,
    history: Vec<History>,
    /// Frames waiting for outbox room, in order.
    pending: VecDeque<Bytes>,
    /// Series resumed from the shard's recent log, with the last `seq`
    /// replayed: the consumer's updates at or below it are not sent again.
    resumed: HashMap<update::Series, u64>,
}

fn partition_of(ctx: &Context, window_s: u32) -> i32 {
    partition_for(ctx.config.windows.position(window_s).unwrap_or_default(), ctx.partitions)
}

/// Adds a subscription (with the last `history` closing bars first, if
/// asked), creating the session's consumer on first use.
pub async fn subscribe(
    ctx: &Context,
    session: &Rc<Session>,
    sub: Subscription,
    history: Option<usize>,
) -> Result<(), Refused> {
    if let Some(feed) = session.feed.borrow().as_deref()
        && feed.subs.len() >= MAX_SUBSCRIPTIONS
        && !feed.subs.contains(&sub)
    {
        return Err(Refused::TooManySubscriptions);
    }
    let consumer = ensure_consumer(ctx, session).await?;
    let partition = partition_of(ctx, sub.window_s);
    let topic = ctx.config.kafka.topic.clone();
    let newly = !session.feed.borrow().as_ref().is_some_and(|feed| feed.next_live.contains_key(&partition));
    // The end offset is looked up now, not left to librdkafka's lazy
    // "latest", so every update produced after the acknowledgement arrives.
    let since_ms = history.map(|count| now_ms() - (count as i64 + 2) * i64::from(sub.window_s) * 1000);
    let lookup = if newly || since_ms.is_some() {
        let (c, t) = (consumer.clone(), topic.clone());
        let found = ctx.workers.run(move || reader::spans(&c, &t, &[(partition, since_ms)])).await?;
        found.map_err(Refused::OffsetLookup)?.pop()
    } else {
        None
    };
    let mut feed = session.feed_mut();
    let mut list = TopicPartitionList::new();
    let position = Refused::Position;
    match lookup {
        None => {}
        Some(Span { end, .. }) if history.is_none() => {
            list.add_partition_offset(&topic, partition, Offset::Offset(end)).map_err(position)?;
            consumer.incremental_assign(&list).map_err(position)?;
            feed.next_live.insert(partition, end);
        }
        Some(span) => {
            if newly {
                list.add_partition_offset(&topic, partition, Offset::Offset(span.start)).map_err(position)?;
                consumer.incremental_assign(&list).map_err(position)?;
                feed.next_live.insert(partition, span.end);
            } else {
                consumer.seek(&topic, partition, Offset::Offset(span.start), Duration::ZERO).map_err(position)?;
            }
            let count = history.unwrap_or_default();
            if !span.is_empty() {
                let ring = VecDeque::with_capacity(count);
                feed.history.push(History { partition, sub, count, until: span.end, ring });
            }
        }
    }
    feed.subs.retain(|s| *s != sub);
    feed.subs.push(sub);
    Ok(())
}

async fn ensure_consumer(ctx: &Context, session: &Session) -> Result<Arc<Reader>, Refused> {
    if let Some(consumer) = session.feed.borrow().as_ref().and_then(|feed| feed.consumer.clone()) {
        return Ok(consumer);
    }
    let config = ctx.config.kafka.clone();
    let group = reader::unique_group("gw");
    let arrivals = ctx.arrivals.clone();
    let created = ctx
        .workers
        .run(move || {
            let mut consumer = config.create_reader(&group)?;
            arrivals.watch(&mut consumer);
            Ok::<_, KafkaError>(consumer)
        })
        .await?
        .map_err(Refused::Consumer)?;
    let consumer = Arc::new(created);
    ctx.metrics.consumers.fetch_add(1, Ordering::Relaxed);
    session.feed_mut().consumer = Some(consumer.clone());
    Ok(consumer)
}

/// Drops the subscriptions on `window_s` (all if `None`), the partitions no
/// subscription needs any more, and the consumer with the last one.
pub fn unsubscribe(ctx: &Context, session: &Session, window_s: Option<u32>) {
    let mut guard = session.feed.borrow_mut();
    let Some(feed) = guard.as_deref_mut() else { return };
    let keep = |w: u32| window_s.is_some_and(|x| x != w);
    feed.subs.retain(|s| keep(s.window_s));
    feed.history.retain(|h| keep(h.sub.window_s));
    let needed: Vec<i32> = feed.subs.iter().map(|s| partition_of(ctx, s.window_s)).collect();
    let unused: Vec<i32> = feed.next_live.keys().copied().filter(|p| !needed.contains(p)).collect();
    if let Some(consumer) = feed.consumer.clone() {
        let mut list = TopicPartitionList::new();
        for p in &unused {
            let _ = list.add_partition(&ctx.config.kafka.topic, *p);
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
        release(ctx, session);
    }
}

/// Drops the session's feed (what is pending, history requests) and its
/// consumer, the consumer on a worker thread (closing joins librdkafka's
/// threads, which must not stall the shard).
pub fn release(ctx: &Context, session: &Session) {
    let Some(feed) = session.feed.borrow_mut().take() else { return };
    if let Some(consumer) = feed.consumer {
        ctx.metrics.consumers.fetch_sub(1, Ordering::Relaxed);
        ctx.workers.detach(move || drop(consumer));
    }
}

/// One poller pass over every session's consumer; returns how many
/// messages were read or frames moved.
pub fn drain_all(ctx: &Context) -> usize {
    ctx.sessions.all().iter().map(|session| drain(&ctx.metrics, session)).sum()
}

fn outbox_room(session: &Session) -> bool {
    session.outbox.len() + CONTROL_RESERVE < OUTBOX_FRAMES && !session.outbox.is_closed()
}

fn drain(metrics: &Metrics, session: &Session) -> usize {
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
                on_message(metrics, session, feed, &message);
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => finish_history(feed, partition, i64::MAX),
            Some(Err(error)) => {
                Metrics::inc(&metrics.kafka_errors);
                tracing::debug!(%error, session = session.id, "consumer error");
                break;
            }
        }
        moved += flush_pending(feed, session);
    }
    moved + read
}

fn flush_pending(feed: &mut ClientFeed, session: &Session) -> usize {
    let mut moved = 0;
    while outbox_room(session) {
        let Some(frame) = feed.pending.pop_front() else { break };
        session.outbox.push(Out::frame(frame));
        moved += 1;
    }
    moved
}

fn on_message(metrics: &Metrics, session: &Session, feed: &mut ClientFeed, message: &BorrowedMessage<'_>) {
    let payload = message.payload().unwrap_or_default();
    let Ok(bar) = bar::access(payload) else {
        Metrics::inc(&metrics.malformed_messages);
        return;
    };
    let (partition, offset) = (message.partition(), message.offset());
    for job in feed.history.iter_mut().filter(|j| j.partition == partition && offset < j.until) {
        if bar.closed && matches(&job.sub, bar) {
            if job.ring.len() == job.count {
                job.ring.pop_front();
            }
            job.ring.push_back(update::frame_of(session.format, payload, bar));
        }
    }
    finish_history(feed, partition, offset + 1);
    let next_live = feed.next_live.entry(partition).or_insert(0);
    if offset < *next_live {
        return;
    }
    *next_live = offset + 1;
    let replayed = feed.resumed.get(&(bar.mint, bar.window_s.to_native()));
    if replayed.is_some_and(|&seq| bar.seq.to_native() <= seq) {
        return;
    }
    if feed.subs.iter().any(|s| matches(s, bar)) {
        Metrics::inc(&metrics.bars_sent);
        feed.pending.push_back(update::frame_of(session.format, payload, bar));
    }
}

/// Sends the history of requests on `partition` whose end has been reached.
fn finish_history(feed: &mut ClientFeed, partition: i32, reached: i64) {
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

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Resumes: makes sure the session has its consumer and room for `sub`.
pub async fn prepare(ctx: &Context, session: &Rc<Session>, sub: &Subscription) -> Result<(), Refused> {
    if let Some(feed) = session.feed.borrow().as_deref()
        && feed.subs.len() >= MAX_SUBSCRIPTIONS
        && !feed.subs.contains(sub)
    {
        return Err(Refused::TooManySubscriptions);
    }
    ensure_consumer(ctx, session).await.map(drop)
}

/// Resumes: where the session's consumer stands on `partition` (the next
/// offset it hands out), if it reads that partition.
pub fn position(ctx: &Context, session: &Session, partition: i32) -> Option<i64> {
    let feed = session.feed.borrow();
    let feed = feed.as_deref()?;
    feed.next_live.get(&partition)?;
    let consumer = feed.consumer.as_ref()?;
    let list = consumer.position().ok()?;
    let at = list.find_partition(&ctx.config.kafka.topic, partition)?.offset().to_raw();
    Some(at.filter(|&o| o >= 0).map_or(feed.next_live[&partition], |o| o.max(feed.next_live[&partition])))
}

/// Resumes: adds `sub` reading `partition` from offset `at` (where the
/// shard feed's recent log ends) if the consumer does not read it yet;
/// updates of `resumed` series at or below their replayed `seq` are not
/// sent again. Call right after the replay is queued, with no await
/// between.
pub fn assign_at(
    ctx: &Context,
    session: &Session,
    sub: Subscription,
    at: i64,
    resumed: &[(update::Series, u64)],
) -> Result<(), Refused> {
    let partition = partition_of(ctx, sub.window_s);
    let mut feed = session.feed_mut();
    let Some(consumer) = feed.consumer.clone() else { return Err(Refused::Unavailable("no consumer")) };
    if let std::collections::hash_map::Entry::Vacant(entry) = feed.next_live.entry(partition) {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&ctx.config.kafka.topic, partition, Offset::Offset(at)).map_err(Refused::Position)?;
        consumer.incremental_assign(&list).map_err(Refused::Position)?;
        entry.insert(at);
    }
    feed.resumed.extend(resumed.iter().copied());
    feed.subs.retain(|s| *s != sub);
    feed.subs.push(sub);
    Ok(())
}
