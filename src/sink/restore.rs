//! Where a restarted ingest picks up: the last update of each (mint, window)
//! series, read back from the topic, so open bars continue (open, high, low,
//! trade count and `seq` are not reset) instead of starting over.
//!
//! It also says which trades Kafka already holds: every update names the
//! trade that made it (slot, signature, event index), so the updates at or
//! after the resume slot list the trades a restarted live source must not
//! apply again, whatever order its replay brings them in. (Each trade makes
//! an update in every window, so with coalescing off, the default and the
//! only mode the live source accepts, none is missing.)
//!
//! Bounded: each partition is read back at most its widest window plus a
//! minute, and at most [`MAX_RESTORE_MESSAGES`] messages; a series whose last
//! update is older than that starts afresh. At most [`MAX_APPLIED`] trade
//! identities are kept. Blocking: call before the ingest executor starts,
//! from the unpinned main thread.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::aggregate::Windows;
use crate::codec::bar::{self, Bar};
use crate::codec::event::Position;
use crate::codec::trade::Pubkey;
use crate::kafka::topic::widest_window;
use crate::kafka::{ConnectError, KafkaConfig, Reader, reader};
use crate::source::solana::Resume;

/// Most messages read back per partition.
pub const MAX_RESTORE_MESSAGES: i64 = 1_000_000;
/// Longest the read-back may take.
pub const RESTORE_TIMEOUT: Duration = Duration::from_secs(30);
/// Trade identities kept at most (about 40 bytes each): hours of pump.fun
/// traffic behind the resume slot, which normally trails the stream by
/// seconds. Beyond it the oldest are dropped, with a warning: their trades,
/// if replayed, would be applied again.
pub const MAX_APPLIED: usize = 2_000_000;

/// What a restarted ingest continues from.
#[derive(Debug, Default)]
pub struct Restored {
    /// The latest update of every series found.
    pub bars: Vec<Bar>,
    /// The highest `resume_slot` of any update read: every trade of an
    /// earlier slot is in Kafka (0: no update carries one).
    pub resume_slot: u64,
    /// The trades of slots at or after `resume_slot` that Kafka holds.
    pub applied: Vec<Position>,
}

impl Restored {
    /// Where a live source resumes: the resume slot, the latest bar time
    /// restored (the clock waits there until the missed slots are in) and
    /// the trades Kafka holds from that slot on (taken out); `None` when no
    /// update carries a resume slot.
    pub fn resume(&mut self) -> Option<Resume> {
        (self.resume_slot > 0).then(|| Resume {
            slot: self.resume_slot,
            hold_s: self.bars.iter().map(|b| b.open_time_s).max().unwrap_or_default(),
            applied: std::mem::take(&mut self.applied),
        })
    }
}

/// The latest update of every series found in the topic's recent past, and
/// the trades Kafka holds from the resume slot on.
pub fn last_states(config: &KafkaConfig, windows: &Windows, partitions: i32) -> Result<Restored, ConnectError> {
    let consumer: Reader = config.create_reader(&reader::unique_group("restore")).map_err(ConnectError::Config)?;
    let unreachable = |error: rdkafka::error::KafkaError| ConnectError::unreachable(config, error.to_string());
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let since: Vec<(i32, Option<i64>)> = (0..partitions)
        .map(|partition| {
            let widest = i64::from(widest_window(windows.seconds(), partitions, partition));
            (partition, Some(now_ms - (widest + 60) * 1000))
        })
        .collect();
    let mut start = TopicPartitionList::new();
    let mut ends: HashMap<i32, i64> = HashMap::new();
    for span in reader::spans(&consumer, &config.topic, &since).map_err(unreachable)? {
        let offset = span.start.max(span.end - MAX_RESTORE_MESSAGES);
        if offset < span.end {
            start.add_partition_offset(&config.topic, span.partition, Offset::Offset(offset)).map_err(unreachable)?;
            ends.insert(span.partition, span.end);
        }
    }
    if ends.is_empty() {
        return Ok(Restored::default());
    }
    consumer.assign(&start).map_err(unreachable)?;
    Ok(read_until(&consumer, &mut ends))
}

/// Reads until every partition reached its end offset (or the timeout),
/// keeping the highest-`seq` update per series and the trades named from
/// the resume slot on.
fn read_until(consumer: &Reader, ends: &mut HashMap<i32, i64>) -> Restored {
    let mut latest: HashMap<(Pubkey, u32), Bar> = HashMap::new();
    let mut applied = Applied::default();
    let deadline = Instant::now() + RESTORE_TIMEOUT;
    while !ends.is_empty() && Instant::now() < deadline {
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else { continue };
        if let Ok(archived) = bar::access(message.payload().unwrap_or_default()) {
            let bar = archived.to_bar();
            applied.add(&bar);
            let slot = latest.entry((bar.mint, bar.window_s)).or_insert(bar);
            if bar.seq > slot.seq {
                *slot = bar;
            }
        }
        if ends.get(&message.partition()).is_some_and(|&end| message.offset() + 1 >= end) {
            ends.remove(&message.partition());
        }
    }
    if !ends.is_empty() {
        tracing::warn!(partitions = ends.len(), "restore read-back timed out; some series start afresh");
    }
    let resume_slot = applied.resume_slot;
    Restored { bars: latest.into_values().collect(), resume_slot, applied: applied.finish() }
}

/// The trades named by updates, from the highest resume slot seen on.
#[derive(Debug, Default)]
struct Applied {
    resume_slot: u64,
    trades: HashSet<Position>,
    /// Identities dropped over [`MAX_APPLIED`].
    dropped: u64,
}

impl Applied {
    fn add(&mut self, bar: &Bar) {
        self.resume_slot = self.resume_slot.max(bar.resume_slot);
        if bar.last_slot == 0 || bar.last_slot < self.resume_slot {
            return;
        }
        self.trades.insert(Position { slot: bar.last_slot, signature: bar.last_signature, event: bar.last_event });
        if self.trades.len() > MAX_APPLIED {
            self.prune();
        }
    }

    /// Drops what the resume slot has passed; if still over the bound, the
    /// oldest slots' trades.
    fn prune(&mut self) {
        let resume = self.resume_slot;
        self.trades.retain(|p| p.slot >= resume);
        if self.trades.len() > MAX_APPLIED {
            let mut slots: Vec<u64> = self.trades.iter().map(|p| p.slot).collect();
            let cut = slots.len() - MAX_APPLIED / 2;
            let (_, &mut keep_from, _) = slots.select_nth_unstable(cut);
            let before = self.trades.len();
            self.trades.retain(|p| p.slot >= keep_from);
            self.dropped += (before - self.trades.len()) as u64;
        }
    }

    fn finish(mut self) -> Vec<Position> {
        self.prune();
        if self.dropped > 0 {
            tracing::warn!(
                dropped = self.dropped,
                "more trades after the resume slot than a restart tracks: those of the oldest slots may be applied twice"
            );
        }
        self.trades.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(last_slot: u64, signature: u64, resume_slot: u64) -> Bar {
        Bar { last_slot, last_signature: signature, last_event: 0, resume_slot, ..Bar::one_trade([1; 32], 1, 0, 1.0) }
    }

    #[test]
    fn the_trades_from_the_highest_resume_slot_on_are_listed() {
        let mut applied = Applied::default();
        for bar in [update(90, 1, 80), update(100, 2, 95), update(101, 3, 95), update(0, 0, 0), update(96, 4, 99)] {
            applied.add(&bar);
        }
        assert_eq!(applied.resume_slot, 99);
        let mut trades: Vec<u64> = applied.finish().iter().map(|p| p.signature).collect();
        trades.sort_unstable();
        assert_eq!(trades, [2, 3], "slot 90 and 96 are before the resume slot; slot 0 names no trade");
    }
}
