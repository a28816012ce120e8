//! Where a restarted live source resumes: the `resume_slot` each bar
//! carries.
//!
//! A bar produced with `resume_slot = S` says: every trade of a slot before
//! `S` had been handed out by the source, applied, and every bar holding it
//! acknowledged by Kafka. So after a crash the largest `resume_slot` in the
//! topic is a slot from which a replay misses nothing; what the replay
//! brings twice, the restored series skip by their last trade's position
//! (`aggregate`). The position travels in the records themselves instead of
//! in Kafka transactions: transactions would hold every bar back until its
//! transaction commits (latency) and make every consumer read committed;
//! this costs 8 bytes a bar and no coordination.
//!
//! Bounded: at most [`MAX_PENDING`] batches are tracked; beyond that the
//! newest two merge (the resume point then lags a little, never leads).

use std::collections::VecDeque;

/// Most unacknowledged batches tracked.
pub const MAX_PENDING: usize = 4096;

/// Trades applied but not yet acknowledged, by batch.
#[derive(Debug)]
pub struct Checkpoint {
    /// `(last record sequence of the batch, least slot of its trades)`,
    /// oldest first.
    pending: VecDeque<(u64, u64)>,
    /// Least slot of trades applied since the last [`Checkpoint::emitted`]
    /// (`u64::MAX`: none).
    unemitted: u64,
}

impl Default for Checkpoint {
    fn default() -> Self {
        Self { pending: VecDeque::new(), unemitted: u64::MAX }
    }
}

impl Checkpoint {
    /// A trade of `slot` was applied (slot 0: the source has no slots).
    #[inline]
    pub fn applied(&mut self, slot: u64) {
        if slot != 0 && slot < self.unemitted {
            self.unemitted = slot;
        }
    }

    /// Every trade applied so far is in a record with sequence at most
    /// `last_seq` that has been handed to the producer.
    pub fn emitted(&mut self, last_seq: u64) {
        if self.unemitted == u64::MAX {
            return;
        }
        if self.pending.len() >= MAX_PENDING
            && let (Some(newest), Some(before)) = (self.pending.pop_back(), self.pending.pop_back())
        {
            self.pending.push_back((newest.0.max(before.0), newest.1.min(before.1)));
        }
        self.pending.push_back((last_seq, self.unemitted));
        self.unemitted = u64::MAX;
    }

    /// The resume slot now: records up to `acked` are acknowledged, and the
    /// source has handed out every trade of slots before `source_safe`.
    pub fn resume_slot(&mut self, acked: u64, source_safe: u64) -> u64 {
        while self.pending.front().is_some_and(|&(seq, _)| seq <= acked) {
            self.pending.pop_front();
        }
        let pending = self.pending.iter().map(|&(_, slot)| slot).min().unwrap_or(u64::MAX);
        source_safe.min(pending).min(self.unemitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resume_slot_waits_for_acknowledgements_and_the_source() {
        let mut c = Checkpoint::default();
        assert_eq!(c.resume_slot(0, 100), 100);
        c.applied(90);
        c.applied(95);
        assert_eq!(c.resume_slot(0, 100), 90, "applied, not yet produced");
        c.emitted(10);
        c.applied(97);
        c.emitted(20);
        assert_eq!(c.resume_slot(9, 100), 90);
        assert_eq!(c.resume_slot(10, 100), 97);
        assert_eq!(c.resume_slot(20, 100), 100);
        assert_eq!(c.resume_slot(20, 50), 50, "the source is behind");
        c.applied(0);
        assert_eq!(c.resume_slot(20, 100), 100, "slot 0: no position");
    }

    #[test]
    fn a_flood_of_batches_merges_instead_of_growing() {
        let mut c = Checkpoint::default();
        for i in 0..(3 * MAX_PENDING as u64) {
            c.applied(1000 + i);
            c.emitted(i + 1);
        }
        assert!(c.pending.len() <= MAX_PENDING);
        assert_eq!(c.resume_slot(0, u64::MAX), 1000);
        assert_eq!(c.resume_slot(3 * MAX_PENDING as u64, u64::MAX), u64::MAX);
    }
}
