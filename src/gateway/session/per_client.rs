//! Per-client mode: each subscribed session owns one rdkafka consumer (no
//! group membership, nothing committed) assigned to the partitions of its
//! windows. The shard's poller drains every session's consumer in turn
//! ([`drain_all`]) into the session's outbox; when an outbox is full it
//! stops reading that consumer, so a slow client is paced by Kafka (which
//! keeps the messages) and nothing is dropped.
//!
//! A subscription joins where the shard feed reads next: the history sent
//! before it came from the feed, so the consumer starts right after it.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::{Offset, TopicPartitionList};

use super::client::{ClientFeed, Context, Fanout, JoinAt, OUTBOX_FRAMES, Refused, Session};
use crate::codec::bar::{self, ArchivedBar};
use crate::gateway::hub::Subscription;
use crate::gateway::metrics::Metrics;
use crate::gateway::outbox::Out;
use crate::gateway::update;
use crate::kafka::topic::partition_for;
use crate::kafka::{Reader, reader};

/// Outbox slots kept free for command replies.
const CONTROL_RESERVE: usize = 16;
/// Bars waiting behind the outbox; at this many the poller stops reading
/// the consumer until the client catches up.
const PENDING_HIGH: usize = 64;
/// Kafka messages taken from one consumer per poller pass, so one busy
/// client cannot starve the others.
const MAX_MESSAGES_PER_PASS: usize = 64;
/// Longest a subscription waits for the shard feed to reach the session's
/// own consumer (which may be ahead on a partition it reads for another
/// subscription).
const CATCH_UP_WAIT: Duration = Duration::from_secs(2);

/// Per-client fan-out.
pub struct PerClient;

impl Fanout for PerClient {
    /// Creates the session's consumer on first use, and finds where the
    /// subscription joins: where the shard feed reads next (the feed having
    /// read at least as far as the consumer, or updates between the two
    /// would be in neither), or, for a subscription without history, not
    /// before the first offset the feed found live at start (what it
    /// reads back before that is history); the partition's end without a
    /// feed.
    async fn prepare(
        ctx: &Context,
        session: &Rc<Session>,
        sub: &Subscription,
        after_history: bool,
    ) -> Result<JoinAt, Refused> {
        let consumer = ensure_consumer(ctx, session).await?;
        let partition = partition_of(ctx, sub.window_s);
        let Some(feed) = ctx.feed.clone().filter(|feed| feed.next_offset(partition).is_some()) else {
            let topic = ctx.config.kafka.topic.clone();
            let found = ctx.workers.run(move || reader::spans(&consumer, &topic, &[(partition, None)])).await?;
            let end = found.map_err(Refused::OffsetLookup)?.pop().map_or(0, |span| span.end);
            return Ok(JoinAt::Offset(end));
        };
        let started = Instant::now();
        loop {
            let next = if after_history { feed.next_offset(partition) } else { feed.join_offset(partition) };
            let next = next.unwrap_or_default();
            match position(ctx, session, partition) {
                Some(at) if at > next && started.elapsed() < CATCH_UP_WAIT => {
                    glommio::timer::sleep(Duration::from_millis(5)).await;
                }
                Some(at) if at > next => {
                    return Err(Refused::Unavailable("the shard feed is behind; subscribe again in a moment"));
                }
                _ => return Ok(JoinAt::Offset(next)),
            }
        }
    }

    /// Starts reading the window's partition at `at`, unless the consumer
    /// reads it already (for another subscription).
    fn join(ctx: &Context, session: &Rc<Session>, sub: Subscription, at: JoinAt) -> Result<(), Refused> {
        let JoinAt::Offset(at) = at else { return Ok(()) };
        let partition = partition_of(ctx, sub.window_s);
        let mut guard = session.feed.borrow_mut();
        let feed = guard.as_deref_mut().ok_or(Refused::Unavailable("no consumer"))?;
        let Some(consumer) = feed.consumer.clone() else { return Err(Refused::Unavailable("no consumer")) };
        if let std::collections::hash_map::Entry::Vacant(entry) = feed.next_live.entry(partition) {
            let mut list = TopicPartitionList::new();
            list.add_partition_offset(&ctx.config.kafka.topic, partition, Offset::Offset(at))
                .map_err(Refused::Position)?;
            consumer.incremental_assign(&list).map_err(Refused::Position)?;
            entry.insert(at);
        }
        Ok(())
    }

    /// Stops reading the partitions no subscription needs any more, and
    /// drops the consumer with the last subscription.
    fn unsubscribe(ctx: &Context, session: &Rc<Session>, _: Option<u32>) {
        let needed: Vec<i32> = session.subs.borrow().iter().map(|s| partition_of(ctx, s.window_s)).collect();
        if needed.is_empty() {
            return release(ctx, session);
        }
        let mut guard = session.feed.borrow_mut();
        let Some(feed) = guard.as_deref_mut() else { return };
        let unused: Vec<i32> = feed.next_live.keys().copied().filter(|p| !needed.contains(p)).collect();
        if let Some(consumer) = &feed.consumer {
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
    }

    fn leave(ctx: &Context, session: &Rc<Session>) {
        release(ctx, session);
    }
}

fn partition_of(ctx: &Context, window_s: u32) -> i32 {
    partition_for(ctx.config.windows.position(window_s).unwrap_or_default(), ctx.partitions)
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
    session.feed.borrow_mut().get_or_insert_with(Box::default).consumer = Some(consumer.clone());
    Ok(consumer)
}

/// Where the session's consumer stands on `partition` (the next offset it
/// hands out), if it reads that partition.
fn position(ctx: &Context, session: &Session, partition: i32) -> Option<i64> {
    let feed = session.feed.borrow();
    let feed = feed.as_deref()?;
    let next_live = *feed.next_live.get(&partition)?;
    let consumer = feed.consumer.as_ref()?;
    let list = consumer.position().ok()?;
    let at = list.find_partition(&ctx.config.kafka.topic, partition)?.offset().to_raw();
    Some(at.filter(|&o| o >= 0).map_or(next_live, |o| o.max(next_live)))
}

/// Drops the session's Kafka side (what is pending) and its consumer, the
/// consumer on a worker thread (closing joins librdkafka's threads, which
/// must not stall the shard).
fn release(ctx: &Context, session: &Session) {
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
            Some(Err(KafkaError::PartitionEOF(_))) => {}
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

/// Whether a subscription wants this bar.
fn matches(sub: &Subscription, bar: &ArchivedBar) -> bool {
    bar.window_s.to_native() == sub.window_s && sub.mint.is_none_or(|m| m == bar.mint)
}

fn on_message(metrics: &Metrics, session: &Session, feed: &mut ClientFeed, message: &BorrowedMessage<'_>) {
    let payload = message.payload().unwrap_or_default();
    let Ok(bar) = bar::access(payload) else {
        Metrics::inc(&metrics.malformed_messages);
        return;
    };
    let (partition, offset) = (message.partition(), message.offset());
    let next_live = feed.next_live.entry(partition).or_insert(0);
    if offset < *next_live {
        return;
    }
    *next_live = offset + 1;
    if session.was_replayed(&(bar.mint, bar.window_s.to_native()), bar.seq.to_native()) {
        return;
    }
    if session.subs.borrow().iter().any(|s| matches(s, bar)) {
        Metrics::inc(&metrics.bars_sent);
        feed.pending.push_back(update::frame_of(session.transport, session.format, payload, bar));
    }
}
