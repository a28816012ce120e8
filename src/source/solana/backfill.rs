//! Filling a gap in the live stream: after a reconnect, or from the resume
//! point after a restart, the transactions the stream did not deliver are
//! listed with `getSignaturesForAddress` (per program, newest first, pages of
//! at most 1000, `until` the last signature seen or down to a slot) and
//! fetched with `getTransaction`, then handed out oldest first, in block
//! order, before anything the stream delivered meanwhile.
//!
//! Sans-io: a [`Gap`] turns pages and transactions into [`Job`]s and ready
//! transactions; the source runs the jobs and feeds the results back.
//!
//! Listed twice: a node lists a transaction only once it has indexed it,
//! a moment after it notified the subscriptions of its slot, so a
//! transaction confirmed just before the new subscription started can be
//! in neither the stream nor the first listing. Every gap is therefore
//! listed again once that moment has passed ([`Gap::second_listing`]): what
//! the first listing handed out is skipped, what it missed is handed out,
//! and the slots after the new stream's first one are left to the stream.
//! Not that first slot itself: a node notifies a new subscription only of
//! the transactions it runs after registering it, so the stream may deliver
//! just the end of its first slot (seen on Agave 3.1.12: the first
//! transactions of that slot were never notified).
//!
//! Bounded: at most `max` signatures per program are listed. A gap larger
//! than that keeps its newest `max` (closest to the live stream, and to the
//! open bars) and reports the rest as lost, with its slot range; so do
//! transactions the node no longer has.

use std::time::{Duration, Instant};

use super::rpc::{Job, Purpose, RpcError, SigInfo};
use crate::codec::event::Program;
use crate::source::tx::TxEvents;

/// Signatures per `getSignaturesForAddress` page (the RPC's maximum).
pub const PAGE: usize = 1000;
/// Attempts for a page or a transaction before it counts as lost.
pub const ATTEMPTS: u32 = 5;
/// Wait before asking again after an error or a `null` transaction (a
/// transaction can be listed a moment before `getTransaction` has it).
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What the gap is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the stream to be back: the listing must reach past the
    /// point where the new stream starts.
    Waiting,
    /// Listing signatures.
    Listing,
    /// Fetching and handing out transactions.
    Fetching,
    /// Everything handed out.
    Done,
}

/// One program's listing.
#[derive(Debug)]
struct Listing {
    program: Program,
    /// The last signature the stream delivered for this program.
    until: Option<String>,
    /// Signatures from this slot on (a restart's resume slot), when there
    /// is no `until`.
    min_slot: u64,
    /// Signatures so far, newest first.
    sigs: Vec<SigInfo>,
    /// A page request is out.
    asking: bool,
    /// Not before this, after an error.
    not_before: Option<Instant>,
    /// Errors so far.
    errors: u32,
    /// Listing complete.
    done: bool,
    /// More signatures than the bound: older ones are lost.
    overflow: bool,
}

/// One transaction to fetch.
#[derive(Debug)]
enum Fetch {
    /// Not asked yet, or to ask again from `not_before`.
    Todo { attempts: u32, not_before: Option<Instant> },
    /// Asked.
    Asked { attempts: u32 },
    /// Fetched.
    Ready(Box<TxEvents>),
    /// Given up on (counted).
    Lost,
    /// Handed out.
    Released,
}

/// A gap being filled.
#[derive(Debug)]
pub struct Gap {
    /// Tells results of this gap from an earlier one's.
    pub id: u64,
    /// Every trade of a slot before this one was handed out before the gap.
    pub start_slot: u64,
    /// Block time of the last trade handed out before the gap: the clock
    /// must not pass it until the gap is filled.
    pub hold_s: Option<i64>,
    phase: Phase,
    listings: Vec<Listing>,
    max: usize,
    /// Signatures to fetch, in release order.
    order: Vec<(Program, SigInfo)>,
    fetch: Vec<Fetch>,
    next_release: usize,
    in_flight: usize,
    /// Transactions given up on.
    pub lost: u64,
    /// Failed transactions listed (not fetched), by signature: the source
    /// counts each once, whether the live stream or a listing saw it first.
    pub failed: Vec<String>,
    /// Where each listing started (the last signature seen per program),
    /// for a listing of the same gap again.
    until: [Option<String>; 2],
    /// This is the second listing of a gap.
    pub second: bool,
    /// When the listing began (the stream was back).
    begun_at: Option<Instant>,
    /// Listing starts no earlier than this.
    not_before: Option<Instant>,
    /// Signatures of slots after this one are left to the stream: it
    /// delivered its first notification from this slot, whole or not
    /// (second listing).
    ceiling: Option<u64>,
}

/// What a finished listing says about the range it could not cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overflow {
    /// The program.
    pub program: Program,
    /// Oldest slot listed (the lost range ends before it).
    pub first_listed_slot: u64,
    /// The gap's start slot (the lost range starts at it).
    pub from_slot: u64,
}

impl Gap {
    /// A gap after `until` (the last signature seen per program, in
    /// [`Program::ALL`] order) or from `min_slot`, keeping at most `max`
    /// signatures per program.
    pub fn new(id: u64, start_slot: u64, hold_s: Option<i64>, until: [Option<String>; 2], max: usize) -> Self {
        let listings = Program::ALL
            .into_iter()
            .zip(until.clone())
            .map(|(program, until)| Listing {
                program,
                min_slot: if until.is_some() { 0 } else { start_slot },
                until,
                sigs: Vec::new(),
                asking: false,
                not_before: None,
                errors: 0,
                done: false,
                overflow: false,
            })
            .collect();
        Self {
            id,
            start_slot,
            hold_s,
            phase: Phase::Waiting,
            listings,
            max: max.max(1),
            order: Vec::new(),
            fetch: Vec::new(),
            next_release: 0,
            in_flight: 0,
            lost: 0,
            failed: Vec::new(),
            until,
            second: false,
            begun_at: None,
            not_before: None,
            ceiling: None,
        }
    }

    /// The same gap listed anew (same start, same signatures to list after)
    /// under a new id: after the stream was lost again while it was filled.
    pub fn again(&self, id: u64) -> Self {
        Self::new(id, self.start_slot, self.hold_s, self.until.clone(), self.max)
    }

    /// The second listing of this gap, `settle` after the first began: it
    /// hands out what the node had not indexed in time for the first.
    pub fn second_listing(&self, id: u64, settle: Duration) -> Self {
        let mut gap = self.again(id);
        gap.second = true;
        gap.not_before = Some(self.begun_at.unwrap_or_else(Instant::now) + settle);
        gap
    }

    /// Signatures of slots after `slot` are left to the stream (second
    /// listing: the stream delivered from `slot` on, that slot maybe only
    /// in part).
    pub fn leave_to_stream(&mut self, slot: u64) {
        if self.second {
            self.ceiling = Some(self.ceiling.map_or(slot, |c| c.min(slot)));
        }
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The stream is back: listing may start.
    pub fn begin(&mut self) {
        if self.phase == Phase::Waiting {
            self.phase = Phase::Listing;
            self.begun_at = Some(Instant::now());
        }
    }

    /// The newest signature listed for `program` (where a chained gap
    /// continues), or the one this gap started after.
    pub fn newest(&self, program: Program) -> Option<String> {
        let listing = self.listings.iter().find(|l| l.program == program)?;
        listing.sigs.first().map(|s| s.signature.clone()).or_else(|| listing.until.clone())
    }

    /// Jobs to run now: pages while listing, transactions while fetching
    /// (at most `window` in flight).
    pub fn jobs(&mut self, window: usize, now: Instant) -> Vec<Job> {
        let mut jobs = Vec::new();
        match self.phase {
            Phase::Waiting | Phase::Done => {}
            Phase::Listing if self.not_before.is_some_and(|t| t > now) => {}
            Phase::Listing => {
                for l in &mut self.listings {
                    if l.done || l.asking || l.not_before.is_some_and(|t| t > now) {
                        continue;
                    }
                    l.asking = true;
                    let before = l.sigs.last().map(|s| s.signature.clone());
                    let limit = PAGE.min(self.max + 1 - l.sigs.len().min(self.max));
                    jobs.push(Job::Signatures { program: l.program, until: l.until.clone(), before, limit });
                }
            }
            Phase::Fetching => {
                for (index, fetch) in self.fetch.iter_mut().enumerate() {
                    if self.in_flight >= window {
                        break;
                    }
                    if let Fetch::Todo { attempts, not_before } = *fetch
                        && not_before.is_none_or(|t| t <= now)
                    {
                        *fetch = Fetch::Asked { attempts: attempts + 1 };
                        self.in_flight += 1;
                        let signature = self.order[index].1.signature.clone();
                        jobs.push(Job::Transaction { signature, purpose: Purpose::Backfill { gap: self.id, index } });
                    }
                }
            }
        }
        jobs
    }

    /// A page came back. Returns the overflow of a listing that ended over
    /// its bound.
    pub fn on_page(&mut self, program: Program, page: Result<Vec<SigInfo>, RpcError>) -> Option<Overflow> {
        let max = self.max;
        let start_slot = self.start_slot;
        let l = self.listings.iter_mut().find(|l| l.program == program)?;
        l.asking = false;
        let page = match page {
            Ok(page) => page,
            Err(error) => {
                l.errors += 1;
                tracing::warn!(program = program.address(), %error, attempt = l.errors, "backfill listing failed");
                if l.errors >= ATTEMPTS {
                    // What is listed is all this gap will fill.
                    l.done = true;
                    l.overflow = true;
                } else {
                    l.not_before = Some(Instant::now() + RETRY_AFTER * l.errors);
                }
                return self.after_page();
            }
        };
        let full = page.len() >= PAGE.min(max + 1 - l.sigs.len().min(max));
        for sig in page {
            if sig.slot < l.min_slot {
                l.done = true;
                break;
            }
            if l.sigs.len() >= max {
                l.overflow = true;
                l.done = true;
                break;
            }
            l.sigs.push(sig);
        }
        if !full {
            l.done = true;
        }
        let overflow = (l.overflow && l.done).then(|| Overflow {
            program,
            first_listed_slot: l.sigs.last().map_or(start_slot, |s| s.slot),
            from_slot: start_slot,
        });
        let _ = self.after_page();
        overflow
    }

    /// When every listing is done, builds the fetch order.
    fn after_page(&mut self) -> Option<Overflow> {
        if self.phase != Phase::Listing || !self.listings.iter().all(|l| l.done) {
            return None;
        }
        let mut order: Vec<(u64, usize, usize, Program, SigInfo)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (p, l) in self.listings.iter_mut().enumerate() {
            // Newest first from the node: reversed, block order.
            for (i, sig) in std::mem::take(&mut l.sigs).into_iter().rev().enumerate() {
                if self.ceiling.is_some_and(|c| sig.slot > c) {
                    continue;
                }
                if sig.failed {
                    self.failed.push(sig.signature);
                    continue;
                }
                if seen.insert(sig.signature.clone()) {
                    order.push((sig.slot, p, i, l.program, sig));
                }
            }
        }
        // By slot; within a slot each program's own block order, pump.fun's
        // first (a mint trades on one of the two at a time).
        order.sort_by_key(|(slot, p, i, _, _)| (*slot, *p, *i));
        self.fetch = order.iter().map(|_| Fetch::Todo { attempts: 0, not_before: None }).collect();
        self.order = order.into_iter().map(|(_, _, _, program, sig)| (program, sig)).collect();
        // Keep the newest signatures for chaining.
        for l in &mut self.listings {
            if let Some((_, newest)) = self.order.iter().rev().find(|(p, _)| *p == l.program) {
                l.sigs = vec![newest.clone()];
            }
        }
        self.phase = Phase::Fetching;
        self.finish_if_released();
        None
    }

    /// Marks transactions the caller already has (all their events handed
    /// out) so they are not fetched.
    pub fn skip_known(&mut self, known: impl Fn(&SigInfo) -> bool) {
        for (fetch, (_, sig)) in self.fetch.iter_mut().zip(&self.order) {
            if matches!(fetch, Fetch::Todo { .. }) && known(sig) {
                *fetch = Fetch::Released;
            }
        }
        self.finish_if_released();
    }

    /// A transaction came back.
    pub fn on_tx(&mut self, index: usize, tx: Result<Option<TxEvents>, RpcError>) {
        let Some(fetch) = self.fetch.get_mut(index) else { return };
        let Fetch::Asked { attempts } = *fetch else { return };
        self.in_flight = self.in_flight.saturating_sub(1);
        *fetch = match tx {
            Ok(Some(tx)) => Fetch::Ready(Box::new(tx)),
            Ok(None) | Err(_) if attempts < ATTEMPTS => {
                Fetch::Todo { attempts, not_before: Some(Instant::now() + RETRY_AFTER * attempts) }
            }
            Ok(None) | Err(_) => {
                self.lost += 1;
                Fetch::Lost
            }
        };
    }

    /// Hands out the transactions ready in order (stopping at the first not
    /// yet fetched).
    pub fn release(&mut self, mut out: impl FnMut(Program, TxEvents)) {
        while let Some(fetch) = self.fetch.get_mut(self.next_release) {
            match std::mem::replace(fetch, Fetch::Released) {
                Fetch::Ready(tx) => out(self.order[self.next_release].0, *tx),
                Fetch::Lost | Fetch::Released => {}
                other => {
                    *fetch = other;
                    break;
                }
            }
            self.next_release += 1;
        }
        self.finish_if_released();
    }

    fn finish_if_released(&mut self) {
        if self.phase == Phase::Fetching
            && self.fetch.iter().skip(self.next_release).all(|f| matches!(f, Fetch::Released | Fetch::Lost))
        {
            self.next_release = self.fetch.len();
            self.phase = Phase::Done;
        }
    }

    /// Signatures listed to fetch.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is to be fetched.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(n: u64, slot: u64) -> SigInfo {
        SigInfo { signature: format!("s{n}"), slot, failed: false }
    }

    fn tx(slot: u64) -> TxEvents {
        TxEvents { slot, ..TxEvents::default() }
    }

    #[test]
    fn lists_pages_then_fetches_and_releases_oldest_first() {
        let mut gap = Gap::new(1, 100, Some(5), [Some("s0".into()), None], 10);
        assert!(gap.jobs(4, Instant::now()).is_empty(), "waits for the stream");
        gap.begin();
        let jobs = gap.jobs(4, Instant::now());
        assert_eq!(jobs.len(), 2);
        assert!(gap.on_page(Program::PumpFun, Ok(vec![sig(3, 103), sig(2, 102), sig(1, 101)])).is_none());
        let mut failed = sig(9, 102);
        failed.failed = true;
        gap.on_page(Program::PumpSwap, Ok(vec![sig(4, 104), failed, sig(2, 102), sig(8, 99)]));
        assert_eq!(gap.phase(), Phase::Fetching);
        assert_eq!(
            (gap.len(), gap.failed.len()),
            (4, 1),
            "a duplicate and a failed one dropped; slot 99 < 100 not listed"
        );
        let jobs = gap.jobs(2, Instant::now());
        assert_eq!(jobs.len(), 2, "window of 2");
        gap.on_tx(1, Ok(Some(tx(102))));
        let mut out = Vec::new();
        gap.release(|_, t| out.push(t.slot));
        assert!(out.is_empty(), "the oldest is not here yet");
        gap.on_tx(0, Ok(Some(tx(101))));
        gap.release(|_, t| out.push(t.slot));
        assert_eq!(out, [101, 102]);
        gap.jobs(4, Instant::now());
        gap.on_tx(2, Ok(Some(tx(103))));
        gap.on_tx(3, Ok(Some(tx(104))));
        gap.release(|_, t| out.push(t.slot));
        assert_eq!((out, gap.phase()), (vec![101, 102, 103, 104], Phase::Done));
        assert_eq!(gap.newest(Program::PumpSwap).as_deref(), Some("s4"));
    }

    #[test]
    fn the_second_listing_waits_settles_and_leaves_the_streams_slots_to_it() {
        let mut first = Gap::new(1, 100, Some(5), [Some("s0".into()), None], 10);
        first.begin();
        let settle = Duration::from_millis(200);
        let mut second = first.second_listing(2, settle);
        second.begin();
        assert!(second.jobs(4, Instant::now()).is_empty(), "not before the settle time");
        let jobs = second.jobs(4, Instant::now() + settle);
        assert_eq!(jobs.len(), 2, "both programs listed again");
        match &jobs[0] {
            Job::Signatures { until, .. } => assert_eq!(until.as_deref(), Some("s0"), "from the same point"),
            other => panic!("{other:?}"),
        }
        second.leave_to_stream(104);
        second.on_page(Program::PumpFun, Ok(vec![sig(5, 105), sig(4, 104), sig(3, 103), sig(2, 102)]));
        second.on_page(Program::PumpSwap, Ok(vec![]));
        assert_eq!(second.len(), 3, "slots after 104 are the stream's; 104 itself may have come in part");
        assert!(second.second);
    }

    #[test]
    fn a_gap_over_the_bound_keeps_the_newest_and_reports_the_rest() {
        let mut gap = Gap::new(1, 50, None, [Some("s0".into()), Some("s0".into())], 3);
        gap.begin();
        gap.jobs(4, Instant::now());
        let page: Vec<SigInfo> = (0..5).rev().map(|n| sig(n + 10, 60 + n)).collect();
        let overflow = gap.on_page(Program::PumpFun, Ok(page));
        assert_eq!(overflow, Some(Overflow { program: Program::PumpFun, first_listed_slot: 62, from_slot: 50 }));
        gap.on_page(Program::PumpSwap, Ok(vec![]));
        assert_eq!(gap.len(), 3);
        gap.jobs(4, Instant::now());
        for i in 0..3 {
            for _ in 0..ATTEMPTS {
                gap.on_tx(i, Ok(None));
                if let Some(Fetch::Todo { .. }) = gap.fetch.get(i) {
                    gap.fetch[i] = Fetch::Asked { attempts: ATTEMPTS };
                    gap.in_flight += 1;
                }
            }
        }
        gap.release(|_, _| {});
        assert_eq!((gap.lost, gap.phase()), (3, Phase::Done), "what the node never had is lost, counted");
    }
}
