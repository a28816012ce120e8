//! Which events were already handed out, by (signature, event index), over
//! a bounded window of recent transactions: a transaction can arrive on both
//! subscriptions (it mentions both programs), from the live stream and from
//! a backfill, and partly (a cut log) then whole (`getTransaction`).
//!
//! Bounded: the newest [`Dedupe::capacity`] signatures are remembered, the
//! oldest forgotten first. The window must be longer than any backfill, or a
//! backfilled transaction could be applied twice: it holds 100,000
//! transactions by default, minutes of pump.fun traffic, against a backfill
//! bound of a few thousand.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

/// Events per transaction tracked exactly (a transaction with more is cut
/// to this many by the parser).
pub const EVENTS_TRACKED: usize = 256;

/// Default number of signatures remembered.
pub const DEFAULT_WINDOW: usize = 100_000;

/// The window.
#[derive(Debug)]
pub struct Dedupe {
    /// Signature prefix → events seen (a bit per event index).
    seen: FxHashMap<u64, [u64; EVENTS_TRACKED / 64]>,
    /// Signatures in arrival order, oldest first.
    order: VecDeque<u64>,
    capacity: usize,
}

impl Dedupe {
    /// A window of `capacity` signatures.
    pub fn new(capacity: usize) -> Self {
        Self { seen: FxHashMap::default(), order: VecDeque::new(), capacity: capacity.max(1) }
    }

    /// Signatures remembered at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether every event of the signature up to `events` was handed out.
    pub fn has_all(&self, signature: u64, events: usize) -> bool {
        self.seen.get(&signature).is_some_and(|bits| (0..events.min(EVENTS_TRACKED)).all(|i| bit(bits, i)))
    }

    /// Whether the signature was seen at all.
    pub fn contains(&self, signature: u64) -> bool {
        self.seen.contains_key(&signature)
    }

    /// Records event `index` of `signature`; true if it is new.
    pub fn first_time(&mut self, signature: u64, index: usize) -> bool {
        if index >= EVENTS_TRACKED {
            return false;
        }
        if !self.seen.contains_key(&signature) {
            if self.order.len() >= self.capacity
                && let Some(oldest) = self.order.pop_front()
            {
                self.seen.remove(&oldest);
            }
            self.order.push_back(signature);
        }
        let bits = self.seen.entry(signature).or_insert([0; EVENTS_TRACKED / 64]);
        let new = !bit(bits, index);
        bits[index / 64] |= 1 << (index % 64);
        new
    }
}

fn bit(bits: &[u64; EVENTS_TRACKED / 64], index: usize) -> bool {
    bits[index / 64] & (1 << (index % 64)) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_once_within_the_window() {
        let mut d = Dedupe::new(2);
        assert!(d.first_time(1, 0));
        assert!(!d.first_time(1, 0));
        assert!(d.first_time(1, 1), "another event of the same transaction");
        assert!(d.has_all(1, 2) && !d.has_all(1, 3));
        assert!(d.first_time(2, 0));
        assert!(d.first_time(3, 0));
        assert!(!d.contains(1), "the oldest is forgotten beyond the window");
        assert!(d.first_time(1, 0));
        assert!(!d.first_time(9, EVENTS_TRACKED));
    }
}
