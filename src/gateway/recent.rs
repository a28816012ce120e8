//! The shard's recent updates, every one of them (open and closing), in
//! the order its feed read them: what a client that reconnects gets again
//! (`sub-1m <mint> since <seq>`, `sub-1m from <unix ms>`), then live.
//!
//! Bounded by count ([`Recent::new`], `--resume-updates`): when full, the
//! oldest update goes (first in, first out, whatever its series), so the
//! log holds the last N updates of the shard. Per series it remembers the
//! last `seq` seen and the newest `seq` it let go, so it can tell a client
//! exactly what it no longer has (a gap) from a series that had nothing
//! new, or one whose `seq` jumped (a series with no known past starts high,
//! see docs/wire-format.md): a jump the log saw happen is not a gap.
//! No I/O; the shard's feed records into it.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use super::update::Series;
use crate::codec::bar::{ArchivedBar, BAR_LEN};
use crate::codec::trade::Pubkey;

/// Default `--resume-updates`: about 26 MB per shard (≈ 260 B an update).
pub const DEFAULT_UPDATES: usize = 100_000;
/// Series tracked; further series are not recorded (their resumes answer
/// a gap), so the index stays bounded.
pub const MAX_SERIES: usize = 50_000;
/// Most updates one resume replays. Overflow policy: the newest this many
/// are replayed and the older part is answered as a gap, so one command
/// cannot queue more than about 2 MB for a client.
pub const MAX_REPLAY: usize = 10_000;

/// One kept update.
struct Kept {
    series: Series,
    seq: u64,
    produced_ns: u64,
    payload: [u8; BAR_LEN],
}

/// What the log knows of one series.
#[derive(Default)]
struct SeriesLog {
    /// Absolute positions of its kept updates, oldest first.
    positions: VecDeque<u64>,
    /// The newest `seq` seen.
    last_seq: u64,
    /// The newest `seq` let go (evicted), if any.
    evicted_seq: Option<u64>,
}

/// Where a resume starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// Every update of one series after this `seq`.
    Seq(u64),
    /// Every update produced at or after this time (unix ms).
    TimeMs(i64),
}

/// What the log no longer has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gap {
    /// Updates `from_seq..=to_seq` of a series (`to_seq` is the one before
    /// the first replayed, or the last the log saw).
    Seq {
        /// First missing.
        from_seq: u64,
        /// Last missing.
        to_seq: u64,
    },
    /// Updates produced in `[from_ms, to_ms)` may be missing.
    Time {
        /// Start, as asked.
        from_ms: i64,
        /// Where the log's complete record starts.
        to_ms: i64,
    },
}

/// A resume's answer: the updates to send, in order, and the gap before
/// them, if any.
#[derive(Debug, Default)]
pub struct Replay {
    /// Kafka value bytes of each update.
    pub payloads: Vec<[u8; BAR_LEN]>,
    /// Per series replayed, the last `seq` sent (live updates at or below
    /// it are not sent again).
    pub last: Vec<(Series, u64)>,
    /// What could not be replayed.
    pub gap: Option<Gap>,
}

/// The log.
pub struct Recent {
    cap: usize,
    ring: VecDeque<Kept>,
    /// Absolute position of `ring[0]`.
    base: u64,
    series: FxHashMap<Series, SeriesLog>,
    /// Per window, the newest `produced_ns` let go: the log is complete for
    /// that window from there on.
    evicted_ns: FxHashMap<u32, u64>,
    /// Updates produced before this were never read (the feed's read-back
    /// starts here).
    complete_from_ns: u64,
    /// Updates of series beyond [`MAX_SERIES`], not kept.
    pub refused: u64,
}

impl Recent {
    /// A log of at most `cap` updates, complete from `complete_from_ns`.
    pub fn new(cap: usize, complete_from_ns: u64) -> Self {
        Self {
            cap: cap.max(1),
            ring: VecDeque::new(),
            base: 0,
            series: FxHashMap::default(),
            evicted_ns: FxHashMap::default(),
            complete_from_ns,
            refused: 0,
        }
    }

    /// Records one update as the feed read it.
    pub fn record(&mut self, payload: &[u8], bar: &ArchivedBar) {
        let Ok(bytes) = <[u8; BAR_LEN]>::try_from(payload) else { return };
        let series = (bar.mint, bar.window_s.to_native());
        let seq = bar.seq.to_native();
        let len = self.series.len();
        let log = match self.series.get_mut(&series) {
            Some(log) => log,
            None if len < MAX_SERIES => self.series.entry(series).or_default(),
            None => {
                self.refused += 1;
                return;
            }
        };
        if seq <= log.last_seq {
            return; // a duplicate: the log stays in seq order per series
        }
        log.last_seq = seq;
        log.positions.push_back(self.base + self.ring.len() as u64);
        self.ring.push_back(Kept { series, seq, produced_ns: bar.produced_ns.to_native(), payload: bytes });
        if self.ring.len() > self.cap {
            self.evict();
        }
    }

    fn evict(&mut self) {
        let Some(old) = self.ring.pop_front() else { return };
        self.base += 1;
        if let Some(log) = self.series.get_mut(&old.series) {
            log.positions.pop_front();
            log.evicted_seq = Some(old.seq);
        }
        let top = self.evicted_ns.entry(old.series.1).or_default();
        *top = (*top).max(old.produced_ns);
    }

    fn kept(&self, position: u64) -> Option<&Kept> {
        self.ring.get(position.checked_sub(self.base)? as usize)
    }

    /// Every kept update of `series` after `after`, and what is missing.
    pub fn since_seq(&self, series: Series, after: u64) -> Replay {
        let mut replay = Replay::default();
        let Some(log) = self.series.get(&series) else {
            // Nothing of the series since the log began: unknown whether
            // anything came after `after`.
            replay.gap = Some(Gap::Seq { from_seq: after + 1, to_seq: u64::MAX });
            return replay;
        };
        if after >= log.last_seq {
            return replay; // nothing new
        }
        let kept: Vec<&Kept> = log.positions.iter().filter_map(|&p| self.kept(p)).filter(|k| k.seq > after).collect();
        let first = kept.first().map_or(log.last_seq + 1, |k| k.seq);
        let oldest = log.positions.front().and_then(|&p| self.kept(p)).map_or(u64::MAX, |k| k.seq);
        // The log has an unbroken record of the series from `oldest` on,
        // and from just after `evicted_seq`: if that record starts at or
        // before `after`, a step past `after + 1` is a jump it saw, not a
        // loss.
        let unbroken_from = log.evicted_seq.map_or(oldest, |e| e.saturating_add(1).min(oldest));
        if first > after + 1 && unbroken_from > after + 1 {
            replay.gap = Some(Gap::Seq { from_seq: after + 1, to_seq: first - 1 });
        }
        self.take(kept, &mut replay, false);
        replay
    }

    /// Every kept update of `window_s` (of one mint, or all) produced at or
    /// after `from_ms`, and what may be missing.
    pub fn since_time(&self, window_s: u32, mint: Option<&Pubkey>, from_ms: i64) -> Replay {
        let mut replay = Replay::default();
        let from_ns = u64::try_from(from_ms).unwrap_or(0).saturating_mul(1_000_000);
        let complete = self.evicted_ns.get(&window_s).map_or(self.complete_from_ns, |&e| e.max(self.complete_from_ns));
        if from_ns < complete {
            replay.gap = Some(Gap::Time { from_ms, to_ms: complete.div_ceil(1_000_000) as i64 });
        }
        let kept: Vec<&Kept> = match mint {
            Some(mint) => self.series.get(&(*mint, window_s)).map_or(Vec::new(), |log| {
                log.positions.iter().filter_map(|&p| self.kept(p)).filter(|k| k.produced_ns >= from_ns).collect()
            }),
            None => self.ring.iter().filter(|k| k.series.1 == window_s && k.produced_ns >= from_ns).collect(),
        };
        self.take(kept, &mut replay, true);
        replay
    }

    /// The newest [`MAX_REPLAY`] of `kept` into `replay`; an older rest
    /// becomes (or widens) the gap.
    fn take(&self, mut kept: Vec<&Kept>, replay: &mut Replay, by_time: bool) {
        if kept.len() > MAX_REPLAY {
            let cut = kept.len() - MAX_REPLAY;
            let (oldest, first_kept) = (kept[0], kept[cut]);
            let to_ms = first_kept.produced_ns.div_ceil(1_000_000) as i64;
            replay.gap = Some(match replay.gap {
                Some(Gap::Time { from_ms, .. }) => Gap::Time { from_ms, to_ms },
                Some(Gap::Seq { from_seq, .. }) => Gap::Seq { from_seq, to_seq: first_kept.seq - 1 },
                None if by_time => Gap::Time { from_ms: (oldest.produced_ns / 1_000_000) as i64, to_ms },
                None => Gap::Seq { from_seq: oldest.seq, to_seq: first_kept.seq - 1 },
            });
            kept.drain(..cut);
        }
        let mut last: FxHashMap<Series, u64> = FxHashMap::default();
        for k in kept {
            last.insert(k.series, k.seq);
            replay.payloads.push(k.payload);
        }
        replay.last = last.into_iter().collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::bar::{self, Bar};

    fn put(log: &mut Recent, mint: u8, seq: u64, ns: u64) {
        let bytes = Bar { seq, produced_ns: ns, ..Bar::one_trade([mint; 32], 1, 60, 1.0) }.to_bytes();
        log.record(&bytes, bar::access(&bytes).unwrap());
    }

    fn seqs(replay: &Replay) -> Vec<u64> {
        replay.payloads.iter().map(|p| bar::access(p).unwrap().seq.to_native()).collect()
    }

    #[test]
    fn replays_exactly_what_came_after_and_nothing_when_up_to_date() {
        let mut log = Recent::new(100, 0);
        for seq in 1..=10 {
            put(&mut log, 1, seq, seq * 1000);
            put(&mut log, 2, seq, seq * 1000);
        }
        let replay = log.since_seq(([1; 32], 1), 6);
        assert_eq!((seqs(&replay), replay.gap), (vec![7, 8, 9, 10], None));
        assert_eq!(replay.last, [(([1; 32], 1), 10)]);
        assert!(log.since_seq(([1; 32], 1), 10).payloads.is_empty());
        assert_eq!(log.since_seq(([1; 32], 1), 10).gap, None);
        put(&mut log, 1, 10, 11_000); // a duplicate is not kept twice
        assert_eq!(seqs(&log.since_seq(([1; 32], 1), 9)), [10]);
    }

    #[test]
    fn says_what_it_let_go_but_not_a_jump_it_saw() {
        let mut log = Recent::new(4, 0);
        for seq in 1..=6 {
            put(&mut log, 1, seq, seq);
        }
        let replay = log.since_seq(([1; 32], 1), 1);
        assert_eq!(replay.gap, Some(Gap::Seq { from_seq: 2, to_seq: 2 }));
        assert_eq!(seqs(&replay), [3, 4, 5, 6]);
        // A series that jumps from 6 to 100 (a restart without its past).
        put(&mut log, 1, 100, 7);
        assert_eq!((seqs(&log.since_seq(([1; 32], 1), 6)), log.since_seq(([1; 32], 1), 6).gap), (vec![100], None));
        // Unknown series: unknown past.
        assert!(matches!(log.since_seq(([9; 32], 1), 5).gap, Some(Gap::Seq { from_seq: 6, .. })));
    }

    #[test]
    fn by_time_over_all_mints_with_the_gap_before_what_is_complete() {
        let mut log = Recent::new(4, 2_000_000);
        for (mint, seq) in [(1, 1), (2, 1), (1, 2), (2, 2), (1, 3)] {
            put(&mut log, mint, seq, seq * 10_000_000 + u64::from(mint));
        }
        let replay = log.since_time(1, None, 15);
        assert_eq!(seqs(&replay), [2, 2, 3]);
        assert_eq!(replay.gap, None);
        let replay = log.since_time(1, None, 1);
        assert_eq!(replay.gap, Some(Gap::Time { from_ms: 1, to_ms: 11 }), "the first update was let go");
        assert_eq!(seqs(&log.since_time(1, Some(&[1; 32]), 0)), [2, 3]);
        assert!(log.since_time(60, None, 0).payloads.is_empty());
    }
}
