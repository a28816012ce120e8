//! A connection's outbound queue: whole frames of its transport wait here
//! until the session's write loop takes them, all that is queued at once
//! ([`Outbox::next_batch`]), for one write. Bounded in bytes. Per-client mode keeps it
//! under its bound by not reading Kafka while it is full (the caller's
//! policy); for updates pushed to it from the hub (shared mode), the policy
//! at the bound is here, in [`Outbox::push_update`]: conflate, then close.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rustc_hash::FxHashSet;

use super::websocket::{self, opcode};
use crate::codec::trade::Pubkey;

/// One queued frame.
#[derive(Debug)]
pub struct Out {
    /// The whole frame, header and payload ([`websocket::frame`]); bar
    /// updates share theirs with every client that gets them.
    pub frame: Bytes,
    /// The (mint, window) series of a bar update that a later update of the
    /// same series may replace; `None` for replies, closes and closing bars.
    pub replaceable: Option<(Pubkey, u32)>,
    /// Not a frame but the unsent end of frames already counted as sent
    /// (a write that went out in part): sent first, as it is.
    pub rest: bool,
}

impl Out {
    /// A frame nothing replaces (a reply, a close, a closing bar).
    pub fn frame(frame: Bytes) -> Self {
        Self { frame, replaceable: None, rest: false }
    }

    /// A bar update that a later update of `series` may replace.
    pub fn update(frame: Bytes, series: (Pubkey, u32)) -> Self {
        Self { frame, replaceable: Some(series), rest: false }
    }
}

/// How long a client may stay over the outbound cap after its updates were
/// conflated before it is closed.
pub const OVER_CAP_GRACE: Duration = Duration::from_secs(5);

/// What [`Outbox::push_update`] did with an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// Bytes queued after it.
    pub queued: usize,
    /// Older updates of the same series dropped to make room.
    pub conflated: usize,
    /// The client stayed over the cap ([`OVER_CAP_GRACE`], or over four
    /// times the cap): the caller closes it.
    pub too_slow: bool,
}

/// Frames waiting for one connection.
#[derive(Debug, Default)]
pub struct Outbox {
    queue: RefCell<VecDeque<Out>>,
    /// Payload bytes queued.
    bytes: Cell<usize>,
    /// The session's write loop, waiting for a frame.
    waker: RefCell<Option<Waker>>,
    /// The session's read loop, waiting for the queue to drain.
    drain_waker: RefCell<Option<Waker>>,
    /// No more frames will be taken (the connection is going away).
    closed: Cell<bool>,
    /// The writer holds a batch it has not finished writing.
    writing: Cell<bool>,
    /// Since when the queue is over the cap ([`Outbox::push_update`]).
    over_cap_since: Cell<Option<Instant>>,
    /// Queued bytes at which the queue is conflated next.
    conflate_at: Cell<usize>,
}

impl Outbox {
    /// Queues a frame; returns the queued payload bytes after it.
    pub fn push(&self, out: Out) -> usize {
        if self.closed.get() {
            return self.bytes.get();
        }
        self.bytes.set(self.bytes.get() + out.frame.len());
        self.queue.borrow_mut().push_back(out);
        self.wake();
        self.bytes.get()
    }

    /// Queues a bar update for a client that must keep up on its own
    /// (shared mode), with the slow-client policy at `cap` bytes: over the
    /// cap, older updates of a series that a newer one supersedes are
    /// dropped (closing bars and replies stay); a client still over the cap
    /// [`OVER_CAP_GRACE`] later, or over four times it, is reported
    /// [`too_slow`](Pushed::too_slow).
    pub fn push_update(&self, out: Out, cap: usize) -> Pushed {
        let queued = self.push(out);
        let mut pushed = Pushed { queued, conflated: 0, too_slow: false };
        if queued <= cap {
            self.over_cap_since.set(None);
            self.conflate_at.set(cap);
            return pushed;
        }
        if queued < self.conflate_at.get() && queued <= 4 * cap {
            return pushed; // conflated recently; wait for another half cap
        }
        pushed.conflated = self.conflate();
        // Conflating walks the whole queue: do it again only after another
        // half cap of updates, not on every update of a stuck client.
        self.conflate_at.set(cap.max(self.bytes() + cap / 2));
        if self.bytes() <= cap {
            return pushed;
        }
        let since = *self.over_cap_since.get().get_or_insert_with(Instant::now);
        self.over_cap_since.set(Some(since));
        pushed.too_slow = since.elapsed() >= OVER_CAP_GRACE || self.bytes() > 4 * cap;
        pushed
    }

    /// Whether the caller may write to the socket itself, now, instead of
    /// queueing: nothing is queued and the writer holds no unfinished batch,
    /// so the bytes would go out in order.
    pub fn may_write_through(&self) -> bool {
        !self.closed.get() && !self.writing.get() && self.queue.borrow().is_empty()
    }

    /// Queues what a write-through left unsent; it goes out before anything
    /// queued after it.
    pub fn push_rest(&self, rest: Bytes) {
        self.push(Out { frame: rest, replaceable: None, rest: true });
    }

    /// The writer finished writing its batch (see [`Outbox::next_batch`]).
    pub fn written(&self) {
        self.writing.set(false);
    }

    fn wake(&self) {
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// Payload bytes queued.
    pub fn bytes(&self) -> usize {
        self.bytes.get()
    }

    /// Frames queued.
    pub fn len(&self) -> usize {
        self.queue.borrow().len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.borrow().is_empty()
    }

    /// Drops every replaceable update that a later update of the same series
    /// supersedes; replies and closing bars stay, in order. Returns how many
    /// frames were dropped.
    pub fn conflate(&self) -> usize {
        let mut queue = self.queue.borrow_mut();
        let before = queue.len();
        let mut seen: FxHashSet<(Pubkey, u32)> = FxHashSet::default();
        let mut kept: VecDeque<Out> = VecDeque::with_capacity(queue.len());
        // Walk from the newest: the first update of a series seen is the
        // latest and stays; older ones of that series go.
        while let Some(out) = queue.pop_back() {
            if let Some(series) = out.replaceable
                && !seen.insert(series)
            {
                self.bytes.set(self.bytes.get() - out.frame.len());
                continue;
            }
            kept.push_front(out);
        }
        *queue = kept;
        before - queue.len()
    }

    /// Stops taking frames; the writer sends what is queued, then ends.
    pub fn finish(&self) {
        self.closed.set(true);
        self.wake();
        if let Some(waker) = self.drain_waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// Drops what is queued, queues `last` (a close frame) and finishes.
    pub fn abort_with(&self, last: Bytes) {
        self.abort();
        self.bytes.set(last.len());
        self.queue.borrow_mut().push_back(Out::frame(last));
    }

    /// Stops taking frames and drops what is queued; the writer ends.
    pub fn abort(&self) {
        self.queue.borrow_mut().clear();
        self.bytes.set(0);
        self.finish();
    }

    /// Whether the outbox stopped taking frames.
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Waits until at most `bytes` are queued (or the outbox is closed).
    pub async fn drained_to(&self, bytes: usize) {
        poll_fn(|cx| {
            if self.bytes.get() <= bytes || self.closed.get() {
                return Poll::Ready(());
            }
            *self.drain_waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Everything queued, up to `max_bytes` (at least one frame), as one
    /// buffer for one write; `None` once finished and drained. A close
    /// frame ends a batch, and nothing after it is sent. The writer calls
    /// [`Outbox::written`] once the batch is out.
    pub async fn next_batch(&self, max_bytes: usize) -> Option<Batch> {
        poll_fn(|cx| {
            let mut queue = self.queue.borrow_mut();
            if queue.is_empty() {
                drop(queue);
                if self.closed.get() {
                    return Poll::Ready(None);
                }
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let batch = Batch::take(&mut queue, max_bytes);
            self.writing.set(true);
            self.bytes.set(self.bytes.get() - batch.bytes.len());
            if let Some(waker) = self.drain_waker.borrow_mut().take() {
                waker.wake();
            }
            if queue.is_empty() {
                // Sent everything: give the queue's memory back. Idle
                // sessions are the ones there are 50,000 of, and a session
                // between two pushes is idle; the next push allocates again
                // (one small allocation per burst).
                *queue = VecDeque::new();
            }
            Poll::Ready(Some(batch))
        })
        .await
    }
}

/// Frames taken from the outbox for one write.
#[derive(Debug)]
pub struct Batch {
    /// The frames, back to back. One frame is its own shared buffer (no
    /// copy); several are copied into one.
    pub bytes: Bytes,
    /// How many frames.
    pub frames: usize,
    /// Their payload bytes (headers not counted).
    pub payload_bytes: usize,
    /// The last frame is a close: the writer ends after it.
    pub closing: bool,
}

impl Batch {
    fn take(queue: &mut VecDeque<Out>, max_bytes: usize) -> Self {
        let mut count = 0;
        let mut len = 0;
        for out in queue.iter() {
            if count > 0 && len + out.frame.len() > max_bytes {
                break;
            }
            count += 1;
            len += out.frame.len();
            if !out.rest && websocket::opcode_of(&out.frame) == opcode::CLOSE {
                break;
            }
        }
        let mut batch = Batch { bytes: Bytes::new(), frames: 0, payload_bytes: 0, closing: false };
        let mut joined = if count > 1 { Vec::with_capacity(len) } else { Vec::new() };
        for out in queue.drain(..count) {
            if !out.rest {
                batch.frames += 1;
                batch.payload_bytes += websocket::payload_of(&out.frame).len();
                batch.closing = websocket::opcode_of(&out.frame) == opcode::CLOSE;
            }
            if count == 1 {
                batch.bytes = out.frame;
            } else {
                joined.extend_from_slice(&out.frame);
            }
        }
        if count > 1 {
            batch.bytes = joined.into();
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binary frame of 8 payload bytes `n` (10 bytes in all).
    fn frame(n: u8) -> Bytes {
        websocket::frame(opcode::BINARY, &[n; 8])
    }

    fn update(mint: u8, n: u8) -> Out {
        Out::update(frame(n), ([mint; 32], 1))
    }

    fn next_batch(outbox: &Outbox, max_bytes: usize) -> Option<Batch> {
        futures_lite::future::block_on(outbox.next_batch(max_bytes))
    }

    #[test]
    fn conflation_keeps_latest_per_series_and_everything_else_in_order() {
        let outbox = Outbox::default();
        outbox.push(update(1, 1));
        outbox.push(Out::frame(frame(9)));
        outbox.push(update(2, 2));
        outbox.push(update(1, 3));
        outbox.push(update(2, 4));
        assert_eq!(outbox.bytes(), 50);
        assert_eq!(outbox.conflate(), 2);
        assert_eq!(outbox.bytes(), 30);
        let order: Vec<u8> = outbox.queue.borrow().iter().map(|o| websocket::payload_of(&o.frame)[0]).collect();
        assert_eq!(order, [9, 3, 4]);
    }

    #[test]
    fn over_the_cap_updates_are_conflated_then_the_client_is_too_slow() {
        let outbox = Outbox::default();
        let cap = 25;
        let pushed = outbox.push_update(update(1, 1), cap);
        assert_eq!(pushed, Pushed { queued: 10, conflated: 0, too_slow: false });
        outbox.push_update(update(2, 2), cap);
        // Over the cap: the older update of series 1 goes.
        let pushed = outbox.push_update(update(1, 3), cap);
        assert_eq!((pushed.conflated, pushed.too_slow, outbox.bytes()), (1, false, 20));
        // Distinct series cannot be conflated: far over the cap, too slow.
        let too_slow = (3..20).map(|mint| outbox.push_update(update(mint, mint), cap)).find(|p| p.too_slow);
        assert!(too_slow.is_some_and(|p| p.queued > 4 * cap), "{too_slow:?}");
    }

    #[test]
    fn a_stuck_client_is_too_slow_one_frame_past_four_times_the_cap() {
        // Between two conflation passes the queue grows by half a cap; the
        // bound of four caps holds on every update all the same.
        for cap in [25, 100, 1_000, 16_384] {
            let outbox = Outbox::default();
            let too_slow = (0..u16::MAX)
                .map(|n| outbox.push_update(Out::update(frame(n as u8), ([n as u8; 32], u32::from(n))), cap))
                .find(|p| p.too_slow)
                .expect("too slow at some point");
            assert!(too_slow.queued > 4 * cap && too_slow.queued <= 4 * cap + 10, "cap {cap}: {too_slow:?}");
        }
    }

    #[test]
    fn a_batch_is_everything_queued_up_to_the_bound_and_ends_at_a_close() {
        let outbox = Outbox::default();
        for n in 1..=5 {
            outbox.push(update(n, n));
        }
        let batch = next_batch(&outbox, 35).unwrap();
        assert_eq!((batch.frames, batch.bytes.len(), batch.payload_bytes), (3, 30, 24));
        assert_eq!(batch.bytes[..10], frame(1)[..]);
        outbox.push(Out::frame(websocket::close_frame(1001, "bye")));
        outbox.push(update(9, 9));
        let batch = next_batch(&outbox, 1024).unwrap();
        assert_eq!((batch.frames, batch.closing), (3, true), "two updates and the close, not what follows");
        let single = next_batch(&outbox, 1024).unwrap();
        assert_eq!((single.frames, &single.bytes[..]), (1, &frame(9)[..]), "one frame: its own buffer");
        assert_eq!(outbox.bytes(), 0);
    }

    #[test]
    fn finish_drains_and_abort_drops() {
        let outbox = Outbox::default();
        outbox.push(update(1, 1));
        outbox.finish();
        outbox.push(update(1, 2));
        assert_eq!(outbox.len(), 1, "a finished outbox takes nothing new");
        assert!(next_batch(&outbox, 1024).is_some(), "but sends what it had");
        assert!(next_batch(&outbox, 1024).is_none());
        let aborted = Outbox::default();
        aborted.push(update(1, 1));
        aborted.abort();
        assert_eq!((aborted.len(), aborted.bytes()), (0, 0));
        assert!(next_batch(&aborted, 1024).is_none());
    }
}
