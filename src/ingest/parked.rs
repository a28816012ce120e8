//! Event records waiting for something the market does not know yet (a
//! PumpSwap pool's mints, a quote's decimals) while the live source looks it
//! up. They are applied, in arrival order, when the answer comes.
//!
//! Bounded: at most [`MAX_PARKED`] records in all and [`MAX_PARKED_PER_KEY`]
//! per key; beyond either, and for records older than [`PARK_TIMEOUT`], the
//! record is dropped and counted as unknown (pool or quote), never applied
//! with a guessed price.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::codec::borsh::Pubkey;
use crate::codec::event::{Position, Program, trade_timestamp};
use crate::source::Record;

/// Most records parked in all.
pub const MAX_PARKED: usize = 50_000;
/// Most records parked for one pool or quote mint.
pub const MAX_PARKED_PER_KEY: usize = 5_000;
/// Longest a record waits for its lookup.
pub const PARK_TIMEOUT: Duration = Duration::from_secs(60);

/// One parked record, owned.
#[derive(Debug, Clone)]
pub struct ParkedRecord {
    /// The program that emitted it.
    pub program: Option<Program>,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its position.
    pub position: Position,
}

impl ParkedRecord {
    /// The record as sources hand it out.
    pub fn record(&self) -> Record<'_> {
        Record { program: self.program, bytes: &self.bytes, position: self.position }
    }
}

/// Records by the key they wait for.
#[derive(Debug, Default)]
pub struct Parked {
    waiting: FxHashMap<Pubkey, (Instant, Vec<ParkedRecord>)>,
    total: usize,
    /// How many parked trades have each block time: the live clock waits
    /// for the earliest.
    times: BTreeMap<i64, u32>,
}

/// What [`Parked::park`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parking {
    /// Parked, and the first for its key: look it up.
    First,
    /// Parked behind others waiting for the same key.
    Queued,
    /// Not parked: a bound was reached.
    Full,
}

impl Parked {
    /// Parks `record` until `key` is known.
    pub fn park(&mut self, key: Pubkey, record: Record<'_>) -> Parking {
        if self.total >= MAX_PARKED {
            return Parking::Full;
        }
        let (first, entry) = match self.waiting.get_mut(&key) {
            Some(entry) => (false, entry),
            None => (true, self.waiting.entry(key).or_insert_with(|| (Instant::now(), Vec::new()))),
        };
        if entry.1.len() >= MAX_PARKED_PER_KEY {
            return Parking::Full;
        }
        entry.1.push(ParkedRecord { program: record.program, bytes: record.bytes.to_vec(), position: record.position });
        self.total += 1;
        if let Some(ts) = trade_timestamp(record.bytes) {
            *self.times.entry(ts).or_default() += 1;
        }
        if first { Parking::First } else { Parking::Queued }
    }

    /// The records waiting for `key`, in arrival order.
    pub fn take(&mut self, key: &Pubkey) -> Vec<ParkedRecord> {
        let records = self.waiting.remove(key).map(|(_, r)| r).unwrap_or_default();
        self.total -= records.len();
        self.forget_times(&records);
        records
    }

    /// The earliest block time of a parked trade: bars holding it must not
    /// close before it is applied.
    pub fn earliest_s(&self) -> Option<i64> {
        self.times.keys().next().copied()
    }

    fn forget_times(&mut self, records: &[ParkedRecord]) {
        for ts in records.iter().filter_map(|r| trade_timestamp(&r.bytes)) {
            if let Some(count) = self.times.get_mut(&ts) {
                *count -= 1;
                if *count == 0 {
                    self.times.remove(&ts);
                }
            }
        }
    }

    /// Drops the records of keys waited for longer than [`PARK_TIMEOUT`];
    /// returns how many records were dropped.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut expired = Vec::new();
        self.waiting.retain(|_, (since, records)| {
            let keep = now.duration_since(*since) < PARK_TIMEOUT;
            if !keep {
                expired.append(records);
            }
            keep
        });
        self.total -= expired.len();
        self.forget_times(&expired);
        expired.len()
    }

    /// Records parked now.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether nothing is parked.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(bytes: &[u8]) -> Record<'_> {
        Record { program: Some(Program::PumpSwap), bytes, position: Position::default() }
    }

    #[test]
    fn parks_in_order_per_key_and_bounds_each_key() {
        let mut parked = Parked::default();
        assert_eq!(parked.park([1; 32], record(&[1])), Parking::First);
        assert_eq!(parked.park([1; 32], record(&[2])), Parking::Queued);
        assert_eq!(parked.park([2; 32], record(&[3])), Parking::First);
        assert_eq!(parked.len(), 3);
        let got: Vec<Vec<u8>> = parked.take(&[1; 32]).into_iter().map(|r| r.bytes).collect();
        assert_eq!(got, [vec![1], vec![2]]);
        assert_eq!(parked.len(), 1);
        for _ in 1..MAX_PARKED_PER_KEY {
            parked.park([2; 32], record(&[0]));
        }
        assert_eq!(parked.park([2; 32], record(&[0])), Parking::Full);
        assert_eq!(parked.expire(Instant::now() + PARK_TIMEOUT), MAX_PARKED_PER_KEY);
        assert!(parked.is_empty());
    }

    /// Real recorded events (PumpSwap and pump.fun) from the fixtures.
    fn recorded_trades() -> Vec<(i64, Vec<u8>)> {
        use base64::Engine;
        let lines = include_str!("../../tests/fixtures/solana/program-data.txt").lines();
        let data = lines.filter_map(|l| l.strip_prefix("Program data: "));
        let events = data.filter_map(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok());
        events.filter_map(|bytes| Some((trade_timestamp(&bytes)?, bytes))).collect()
    }

    #[test]
    fn the_earliest_parked_trade_time_follows_parking_taking_and_expiry() {
        let mut trades = recorded_trades();
        trades.sort();
        trades.dedup_by_key(|(ts, _)| *ts);
        assert!(trades.len() >= 3, "fixtures hold trades of several times");
        let [(t0, a), (t1, b), (_, c)] = [&trades[0], &trades[1], &trades[2]].map(Clone::clone);
        let mut parked = Parked::default();
        assert_eq!(parked.earliest_s(), None);
        parked.park([1; 32], record(&b));
        parked.park([2; 32], record(&a));
        parked.park([2; 32], record(&c));
        parked.park([3; 32], record(&[9, 9])); // not a trade: no time
        assert_eq!(parked.earliest_s(), Some(t0));
        parked.take(&[2; 32]);
        assert_eq!(parked.earliest_s(), Some(t1));
        parked.park([4; 32], record(&c));
        assert_eq!(parked.expire(Instant::now() + PARK_TIMEOUT), 3);
        assert_eq!((parked.earliest_s(), parked.len()), (None, 0));
    }
}
