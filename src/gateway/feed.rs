//! The shard's own reader of the topic: one Kafka consumer per shard over
//! every partition. It keeps, per (mint, window), a bounded ring of recent
//! closing bars (for `hist-<w> n`, in both fan-out modes; `/api/klines`
//! and `hist` pages come from the history store, not from here) and the
//! mints seen (for `/api/mints`). At start it reads each
//! partition back from a bounded look-back so a fresh gateway can serve
//! history; those old messages fill the rings but are never pushed to
//! clients as live updates. Live bars go to whoever drains the feed
//! ([`Feed::drain`]); the feed does not know the hub. Every update it reads,
//! read back or live, also goes into the shard's [`Recent`] log, which
//! serves clients that resume after a reconnect.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::{Offset, TopicPartitionList};

use super::arrivals::Arrivals;
use super::kafka_workers::{KafkaWorkers, WorkersGone};
use super::metrics::Metrics;
use super::recent::Recent;
use crate::codec::bar::{self, ArchivedBar, Bar};
use crate::codec::trade::Pubkey;
use crate::kafka::topic::widest_window;
use crate::kafka::{KafkaConfig, Reader, reader};

/// Closing bars kept per (mint, window) (`hist-<w> n`); older ones are
/// dropped.
pub const HISTORY_BARS: usize = 1000;
/// (mint, window) series tracked per shard; bars of further series are not
/// kept (counted), so memory stays bounded (≈ 128 B × bars kept).
pub const MAX_SERIES: usize = 20_000;

/// One series' recent past.
#[derive(Debug, Default)]
struct Series {
    /// Closing bars, oldest first, at most [`HISTORY_BARS`].
    closed: VecDeque<Bar>,
    /// The latest update (open or closed).
    latest: Option<Bar>,
}

/// Kafka messages taken from the shard feed per [`Feed::drain`]. Small
/// enough that one pass cannot put more than a few KiB into a session's
/// outbox before its writer gets to run (the poller yields between passes),
/// so a client that keeps up is never taken for a slow one.
const FEED_MESSAGES_PER_PASS: usize = 64;

/// Why the shard feed did not start.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The worker threads are gone (shutting down).
    #[error(transparent)]
    Workers(#[from] WorkersGone),
    /// Creating, positioning or assigning the consumer failed.
    #[error("shard feed: {0}")]
    Kafka(#[from] KafkaError),
}

/// Where a message stands relative to start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Read back at start-up: history only.
    Backfill,
    /// Produced after the gateway started: also a live update.
    Live,
}

/// The shard's reader and what it remembers.
pub struct Feed {
    consumer: Arc<Reader>,
    /// Partition → first offset that is live.
    live_from: HashMap<i32, i64>,
    series: RefCell<HashMap<(Pubkey, u32), Series>>,
    /// Every recent update, for resumes.
    recent: RefCell<Recent>,
    /// Partition → the next offset this feed will read (a resuming
    /// per-client consumer starts there, right after what `recent` has).
    read_to: RefCell<HashMap<i32, i64>>,
}

impl Feed {
    /// Creates the consumer (on a worker thread) and assigns every partition
    /// from `now - lookback` (at most [`HISTORY_BARS`] windows back).
    pub async fn start(
        kafka: &KafkaConfig,
        windows: &[u32],
        partitions: i32,
        lookback: Duration,
        resume_updates: usize,
        workers: &KafkaWorkers,
        arrivals: &Arrivals,
    ) -> Result<Self, FeedError> {
        let group = reader::unique_group("feed");
        let (config, topic) = (kafka.clone(), kafka.topic.clone());
        let starts = partition_lookbacks(windows, partitions, lookback);
        // The log is complete from where the shortest read-back starts.
        let now_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let shortest_s = starts.iter().map(|&(_, s)| s).min().unwrap_or_default().max(0) as u64;
        let recent = Recent::new(resume_updates, now_ns.saturating_sub(shortest_s * 1_000_000_000));
        let arrivals = arrivals.clone();
        let assigned = workers.run(move || assign_from(&config, &group, &topic, &starts, &arrivals)).await??;
        let (consumer, live_from, starts) = assigned;
        let read_to = RefCell::new(starts);
        Ok(Self {
            recent: RefCell::new(recent),
            consumer: Arc::new(consumer),
            live_from,
            series: RefCell::new(HashMap::new()),
            read_to,
        })
    }

    /// The recent updates (resumes).
    pub fn recent(&self) -> std::cell::Ref<'_, Recent> {
        self.recent.borrow()
    }

    /// The next offset this feed reads on `partition`: everything before it
    /// that the log keeps is in [`Feed::recent`].
    pub fn next_offset(&self, partition: i32) -> Option<i64> {
        self.read_to.borrow().get(&partition).copied()
    }

    /// Where a client's own consumer joins the live stream on `partition`
    /// from now: the next offset the feed reads, or, while it still reads
    /// back at start-up, the first live one (what it reads back is history,
    /// never live).
    pub fn join_offset(&self, partition: i32) -> Option<i64> {
        let next = self.next_offset(partition)?;
        Some(self.live_from.get(&partition).map_or(next, |&live| next.max(live)))
    }

    /// The consumer, for polling by the shard (and dropping on a worker).
    pub fn consumer(&self) -> &Arc<Reader> {
        &self.consumer
    }

    /// Reads what the consumer has, at most [`FEED_MESSAGES_PER_PASS`]
    /// messages: every bar goes into the history rings; `live` gets each
    /// bar produced after start-up, with its payload. Returns how many
    /// messages were read.
    pub fn drain(&self, metrics: &Metrics, mut live: impl FnMut(&[u8], &ArchivedBar)) -> usize {
        let mut read = 0;
        while read < FEED_MESSAGES_PER_PASS {
            let message = match self.consumer.poll(Duration::ZERO) {
                None => break,
                Some(Ok(message)) => message,
                Some(Err(KafkaError::PartitionEOF(_))) => continue,
                Some(Err(error)) => {
                    Metrics::inc(&metrics.kafka_errors);
                    tracing::debug!(%error, "shard feed error");
                    break;
                }
            };
            read += 1;
            let phase = self.phase(&message);
            self.read_to.borrow_mut().insert(message.partition(), message.offset() + 1);
            let payload = message.payload().unwrap_or_default();
            let Ok(bar) = bar::access(payload) else {
                Metrics::inc(&metrics.malformed_messages);
                continue;
            };
            self.recent.borrow_mut().record(payload, bar);
            self.record(bar, metrics);
            if phase == Phase::Live {
                live(payload, bar);
            }
        }
        read
    }

    /// Whether a message is live or read back.
    fn phase(&self, message: &BorrowedMessage<'_>) -> Phase {
        let from = self.live_from.get(&message.partition()).copied().unwrap_or_default();
        if message.offset() < from { Phase::Backfill } else { Phase::Live }
    }

    /// Records a bar update (a series beyond [`MAX_SERIES`] is counted, not
    /// kept).
    fn record(&self, bar: &ArchivedBar, metrics: &Metrics) {
        let mut series = self.series.borrow_mut();
        let key = (bar.mint, bar.window_s.to_native());
        let len = series.len();
        let entry = match series.get_mut(&key) {
            Some(entry) => entry,
            None if len < MAX_SERIES => series.entry(key).or_default(),
            None => {
                Metrics::inc(&metrics.series_refused);
                return;
            }
        };
        let bar = bar.to_bar();
        if bar.closed {
            if entry.closed.back().is_some_and(|last| last.open_time_s >= bar.open_time_s) {
                return; // a re-read or duplicate: history stays in order
            }
            if entry.closed.len() == HISTORY_BARS {
                entry.closed.pop_front();
            }
            entry.closed.push_back(bar);
        }
        entry.latest = Some(bar);
    }

    /// The updates of one series past open time `after_s`, oldest first: the
    /// closing bars kept here, then the latest update if its bar is still
    /// open.
    pub fn newer_than(&self, mint: &Pubkey, window_s: u32, after_s: i64) -> Vec<Bar> {
        let series = self.series.borrow();
        let Some(series) = series.get(&(*mint, window_s)) else { return Vec::new() };
        let mut bars: Vec<Bar> =
            series.closed.iter().rev().take_while(|bar| bar.open_time_s > after_s).copied().collect();
        bars.reverse();
        let newest_s = bars.last().map_or(after_s, |bar| bar.open_time_s);
        if let Some(open) = series.latest.filter(|bar| !bar.closed && bar.open_time_s > newest_s) {
            bars.push(open);
        }
        bars
    }

    /// The last `count` closing bars of a window, of one mint or of all
    /// mints, oldest first.
    pub fn recent_closes(&self, window_s: u32, mint: Option<&Pubkey>, count: usize) -> Vec<Bar> {
        let series = self.series.borrow();
        let mut bars: Vec<Bar> = series
            .iter()
            .filter(|((m, w), _)| *w == window_s && mint.is_none_or(|x| x == m))
            .flat_map(|(_, s)| s.closed.iter().rev().take(count).copied())
            .collect();
        bars.sort_by_key(|b| (b.open_time_s, b.mint));
        bars[bars.len().saturating_sub(count)..].to_vec()
    }

    /// Each mint's latest bar (of any window; the shortest window's among
    /// equal open times), most recent first.
    pub fn mints(&self, limit: usize) -> Vec<Bar> {
        let series = self.series.borrow();
        let mut latest: HashMap<Pubkey, Bar> = HashMap::new();
        for ((mint, _), s) in series.iter() {
            if let Some(bar) = s.latest {
                let entry = latest.entry(*mint).or_insert(bar);
                if (bar.open_time_s, std::cmp::Reverse(bar.window_s))
                    > (entry.open_time_s, std::cmp::Reverse(entry.window_s))
                {
                    *entry = bar;
                }
            }
        }
        let mut list: Vec<Bar> = latest.into_values().collect();
        list.sort_by_key(|bar| std::cmp::Reverse(bar.open_time_s));
        list.truncate(limit);
        list
    }
}

/// For each partition, the look-back in seconds: enough for
/// [`HISTORY_BARS`] bars of the largest window it carries, at most `lookback`.
fn partition_lookbacks(windows: &[u32], partitions: i32, lookback: Duration) -> Vec<(i32, i64)> {
    (0..partitions)
        .map(|p| {
            let widest = i64::from(widest_window(windows, partitions, p));
            let seconds = (widest * HISTORY_BARS as i64).min(lookback.as_secs() as i64);
            (p, seconds)
        })
        .collect()
}

/// A feed consumer, each partition's first live offset, and where each
/// partition's read-back starts.
type Assigned = (Reader, HashMap<i32, i64>, HashMap<i32, i64>);

/// Blocking: creates the consumer and assigns each partition at the first
/// offset of its look-back. Returns it with each partition's end offset.
fn assign_from(
    config: &KafkaConfig,
    group: &str,
    topic: &str,
    lookbacks: &[(i32, i64)],
    arrivals: &Arrivals,
) -> Result<Assigned, KafkaError> {
    let mut consumer: Reader = config.create_reader(group)?;
    arrivals.watch(&mut consumer);
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let since: Vec<(i32, Option<i64>)> =
        lookbacks.iter().map(|&(p, seconds)| (p, Some(now_ms - seconds * 1000))).collect();
    let spans = reader::spans(&consumer, topic, &since)?;
    let mut starts = TopicPartitionList::new();
    for span in &spans {
        starts.add_partition_offset(topic, span.partition, Offset::Offset(span.start))?;
    }
    consumer.assign(&starts)?;
    let live_from = spans.iter().map(|s| (s.partition, s.end)).collect();
    let starts = spans.iter().map(|s| (s.partition, s.start)).collect();
    Ok((consumer, live_from, starts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookback_covers_the_widest_window_of_each_partition_within_the_cap() {
        let day = Duration::from_secs(86_400);
        assert_eq!(
            partition_lookbacks(&[1, 60, 300, 3600], 4, day),
            [(0, 1000), (1, 60_000), (2, 86_400), (3, 86_400)]
        );
        assert_eq!(partition_lookbacks(&[1, 60, 300, 3600], 2, day), [(0, 86_400), (1, 86_400)]);
    }
}
