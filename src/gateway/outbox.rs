//! A connection's outbound queue: frames wait here until the writer task
//! hands them to the socket. Bounded in bytes; what happens at the bound is
//! the caller's policy (per-client mode stops reading Kafka, shared mode
//! conflates and then closes), so this type only measures and conflates.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::task::{Poll, Waker};

use rustc_hash::FxHashSet;
use tungstenite::Message;

use crate::codec::trade::Pubkey;

/// One queued frame.
#[derive(Debug)]
pub struct Out {
    /// The frame.
    pub message: Message,
    /// The (mint, window) series of a bar update that a later update of the
    /// same series may replace; `None` for replies, closes and closing bars.
    pub replaceable: Option<(Pubkey, u32)>,
}

/// Frames waiting for one connection.
#[derive(Debug, Default)]
pub struct Outbox {
    queue: RefCell<VecDeque<Out>>,
    /// Payload bytes queued.
    bytes: Cell<usize>,
    /// The writer task, waiting for a frame.
    waker: RefCell<Option<Waker>>,
    /// The reader task, waiting for the queue to drain.
    drain_waker: RefCell<Option<Waker>>,
    /// No more frames will be taken (the connection is going away).
    closed: Cell<bool>,
}

impl Outbox {
    /// Queues a frame; returns the queued payload bytes after it.
    pub fn push(&self, out: Out) -> usize {
        if self.closed.get() {
            return self.bytes.get();
        }
        self.bytes.set(self.bytes.get() + out.message.len());
        self.queue.borrow_mut().push_back(out);
        self.wake();
        self.bytes.get()
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
                self.bytes.set(self.bytes.get() - out.message.len());
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
    pub fn abort_with(&self, last: Message) {
        self.abort();
        self.bytes.set(last.len());
        self.queue.borrow_mut().push_back(Out { message: last, replaceable: None });
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

    /// The next frame, or `None` once finished and drained.
    pub async fn next(&self) -> Option<Message> {
        poll_fn(|cx| {
            let mut queue = self.queue.borrow_mut();
            if let Some(out) = queue.pop_front() {
                self.bytes.set(self.bytes.get() - out.message.len());
                if let Some(waker) = self.drain_waker.borrow_mut().take() {
                    waker.wake();
                }
                if queue.is_empty() {
                    // Sent everything: give the queue's memory back. Idle
                    // sessions are the ones there are 50,000 of, and a
                    // session between two pushes is idle; the next push
                    // allocates again (one small allocation per burst).
                    *queue = VecDeque::new();
                }
                return Poll::Ready(Some(out.message));
            }
            drop(queue);
            if self.closed.get() {
                return Poll::Ready(None);
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(mint: u8, n: u8) -> Out {
        Out { message: Message::Binary(vec![n; 10].into()), replaceable: Some(([mint; 32], 1)) }
    }

    #[test]
    fn conflation_keeps_latest_per_series_and_everything_else_in_order() {
        let outbox = Outbox::default();
        outbox.push(update(1, 1));
        outbox.push(Out { message: Message::Binary(vec![9; 10].into()), replaceable: None });
        outbox.push(update(2, 2));
        outbox.push(update(1, 3));
        outbox.push(update(2, 4));
        assert_eq!(outbox.bytes(), 50);
        assert_eq!(outbox.conflate(), 2);
        assert_eq!(outbox.bytes(), 30);
        let order: Vec<u8> = outbox.queue.borrow().iter().map(|o| o.message.clone().into_data()[0]).collect();
        assert_eq!(order, [9, 3, 4]);
    }

    #[test]
    fn finish_drains_and_abort_drops() {
        let outbox = Outbox::default();
        outbox.push(update(1, 1));
        outbox.finish();
        outbox.push(update(1, 2));
        assert_eq!(outbox.len(), 1, "a finished outbox takes nothing new");
        assert!(futures_lite::future::block_on(outbox.next()).is_some(), "but sends what it had");
        assert_eq!(futures_lite::future::block_on(outbox.next()), None);
        let aborted = Outbox::default();
        aborted.push(update(1, 1));
        aborted.abort();
        assert_eq!((aborted.len(), aborted.bytes()), (0, 0));
        assert_eq!(futures_lite::future::block_on(aborted.next()), None);
    }
}
