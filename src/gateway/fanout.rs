//! Shared fan-out: the shard's one consumer feeds every subscribed session.
//! A bar's bytes are copied once out of librdkafka's buffer into a
//! refcounted `Bytes` that every send shares (its JSON form is made at most
//! once, on first use). Updates are conflated per (mint, window) to at most
//! one per push interval, always the latest state; closing bars always go
//! out, in order, before the newer open state.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use glommio::timer::sleep;
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use tungstenite::Message;
use tungstenite::protocol::frame::Utf8Bytes;

use super::config::Fanout as Mode;
use super::feed::{Feed, Phase};
use super::metrics::Metrics;
use super::server::Shard;
use crate::codec::bar::{self, ArchivedBar};
use crate::codec::json::BarJson;
use crate::codec::trade::Pubkey;

/// One bar update, encoded once, shared by every send.
#[derive(Debug)]
pub struct SharedFrame {
    /// The Kafka value bytes (binary frame).
    pub binary: Bytes,
    /// The JSON text frame, made on first use.
    json: OnceCell<Utf8Bytes>,
    /// The bar's series.
    pub series: (Pubkey, u32),
    /// Whether this is a closing update.
    pub closed: bool,
    /// The update's `seq`.
    pub seq: u64,
}

impl SharedFrame {
    /// Copies the payload of a validated bar.
    pub fn new(payload: &[u8], bar: &ArchivedBar) -> Rc<Self> {
        Rc::new(Self {
            binary: Bytes::copy_from_slice(payload),
            json: OnceCell::new(),
            series: (bar.mint, bar.window_s.to_native()),
            closed: bar.closed,
            seq: bar.seq.to_native(),
        })
    }

    /// The frame in the session's format.
    pub fn message(&self, json: bool) -> Message {
        if !json {
            return Message::Binary(self.binary.clone());
        }
        let text = self.json.get_or_init(|| match bar::access(&self.binary) {
            Ok(bar) => BarJson::line(&bar.to_bar()).into(),
            Err(_) => Utf8Bytes::default(),
        });
        Message::Text(text.clone())
    }
}

/// Updates of one series since the last push.
#[derive(Debug, Default)]
struct Pending {
    closes: Vec<Rc<SharedFrame>>,
    latest: Option<Rc<SharedFrame>>,
}

/// Who subscribed to what on this shard, and what waits for the next push.
#[derive(Debug, Default)]
pub struct Fanout {
    /// Window → sessions subscribed to every mint.
    all_mints: RefCell<HashMap<u32, Vec<u64>>>,
    /// (mint, window) → sessions subscribed to that mint only.
    one_mint: RefCell<HashMap<(Pubkey, u32), Vec<u64>>>,
    /// Series with updates since the last push, in first-update order.
    pending: RefCell<Vec<((Pubkey, u32), Pending)>>,
    /// Series → index in `pending`.
    pending_index: RefCell<HashMap<(Pubkey, u32), usize>>,
}

impl Fanout {
    /// Adds a subscription of `session`.
    pub fn subscribe(&self, session: u64, window_s: u32, mint: Option<Pubkey>) {
        let add = |list: &mut Vec<u64>| {
            if !list.contains(&session) {
                list.push(session);
            }
        };
        match mint {
            None => add(self.all_mints.borrow_mut().entry(window_s).or_default()),
            Some(mint) => add(self.one_mint.borrow_mut().entry((mint, window_s)).or_default()),
        }
    }

    /// Removes the session's subscriptions on `window_s` (all windows if
    /// `None`).
    pub fn unsubscribe(&self, session: u64, window_s: Option<u32>) {
        let keep = |w: u32| window_s.is_some_and(|x| x != w);
        for (w, list) in self.all_mints.borrow_mut().iter_mut() {
            if !keep(*w) {
                list.retain(|&s| s != session);
            }
        }
        for ((_, w), list) in self.one_mint.borrow_mut().iter_mut() {
            if !keep(*w) {
                list.retain(|&s| s != session);
            }
        }
        self.all_mints.borrow_mut().retain(|_, l| !l.is_empty());
        self.one_mint.borrow_mut().retain(|_, l| !l.is_empty());
    }

    /// The sessions that want updates of `series`.
    pub fn subscribers(&self, series: &(Pubkey, u32)) -> Vec<u64> {
        let mut out = self.all_mints.borrow().get(&series.1).cloned().unwrap_or_default();
        if let Some(list) = self.one_mint.borrow().get(series) {
            out.extend(list.iter().filter(|s| !out.contains(s)).copied().collect::<Vec<_>>());
        }
        out
    }

    /// Whether anybody subscribed to the window of `series`.
    pub fn wanted(&self, series: &(Pubkey, u32)) -> bool {
        self.all_mints.borrow().contains_key(&series.1) || self.one_mint.borrow().contains_key(series)
    }

    /// Holds an update for the next push (closing ones are all kept, in
    /// order; an open one replaces the previous open one).
    pub fn hold(&self, frame: Rc<SharedFrame>) {
        let mut index = self.pending_index.borrow_mut();
        let mut pending = self.pending.borrow_mut();
        let at = *index.entry(frame.series).or_insert_with(|| {
            pending.push((frame.series, Pending::default()));
            pending.len() - 1
        });
        let slot = &mut pending[at].1;
        if frame.closed {
            slot.closes.push(frame);
            slot.latest = None;
        } else {
            slot.latest = Some(frame);
        }
    }

    /// Takes everything held since the last push, as frames in send order.
    pub fn take_held(&self) -> Vec<Rc<SharedFrame>> {
        self.pending_index.borrow_mut().clear();
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        let mut frames = Vec::new();
        for (_, p) in pending {
            frames.extend(p.closes);
            frames.extend(p.latest);
        }
        frames
    }
}

/// Kafka messages taken from the shard feed per pass. Small enough that one
/// pass cannot put more than a few KiB into a session's outbox before its
/// writer gets to run (the poller yields between passes), so a client that
/// keeps up is never taken for a slow one.
const FEED_MESSAGES_PER_PASS: usize = 64;

/// Reads what the shard feed has: every bar updates the history rings; in
/// shared mode live bars are pushed at once (push interval 0) or held for
/// the next push. Returns how many messages were read.
pub fn drain_feed(shard: &Shard, feed: &Feed) -> usize {
    let shared = match shard.config.fanout {
        Mode::Shared { push_interval } => Some(push_interval.is_zero()),
        Mode::PerClient => None,
    };
    let mut read = 0;
    while read < FEED_MESSAGES_PER_PASS {
        let message = match feed.consumer().poll(Duration::ZERO) {
            None => break,
            Some(Ok(message)) => message,
            Some(Err(KafkaError::PartitionEOF(_))) => continue,
            Some(Err(error)) => {
                Metrics::inc(&shard.metrics.kafka_errors);
                tracing::debug!(%error, "shard feed error");
                break;
            }
        };
        read += 1;
        let phase = feed.phase(&message);
        let payload = message.payload().unwrap_or_default();
        let Ok(bar) = bar::access(payload) else {
            Metrics::inc(&shard.metrics.malformed_messages);
            continue;
        };
        feed.record(bar);
        let series = (bar.mint, bar.window_s.to_native());
        let Some(immediate) = shared else { continue };
        if phase == Phase::Backfill || !shard.fanout.wanted(&series) {
            continue;
        }
        let frame = SharedFrame::new(payload, bar);
        if immediate {
            deliver(shard, &frame);
        } else {
            shard.fanout.hold(frame);
        }
    }
    read
}

/// Sends one update to every session subscribed to its series.
pub fn deliver(shard: &Shard, frame: &SharedFrame) {
    deliver_to(shard, frame, &shard.fanout.subscribers(&frame.series));
}

/// Sends one update to the sessions `ids`.
fn deliver_to(shard: &Shard, frame: &SharedFrame, ids: &[u64]) {
    for &id in ids {
        if let Some(session) = shard.sessions.get(id) {
            session.push_shared(shard, frame);
        }
    }
}

/// Sessions handed an update before the push yields to their writers.
/// Bounds the outbox memory a push holds at once (see [`push_loop`]);
/// small enough for that, large enough that yielding costs little.
const PUSH_BATCH_SESSIONS: usize = 256;

/// Shared mode with a push interval: once per interval, sends what was held.
pub async fn push_loop(shard: Rc<Shard>, interval: Duration) {
    let mut started = Instant::now();
    while !shard.shutdown.requested() {
        // Counted from the start of the previous push, not on a fixed grid:
        // a late push never makes the next one early, so no series gets two
        // updates within one interval. Not from its end either: a push
        // includes the sending (batch by batch, below), and counting from
        // its end would stretch the period with the number of sessions.
        sleep(interval.saturating_sub(started.elapsed())).await;
        started = Instant::now();
        for frame in shard.fanout.take_held() {
            let subscribers = shard.fanout.subscribers(&frame.series);
            for batch in subscribers.chunks(PUSH_BATCH_SESSIONS) {
                deliver_to(&shard, &frame, batch);
                // Let the writers just woken send this batch before the next
                // one is queued: an outbox releases its memory once drained,
                // so a push to 50,000 sessions holds a batch's worth of
                // queues at a time, not 50,000. Accepts and reads run too.
                futures_lite::future::yield_now().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::bar::Bar;

    fn frame(mint: u8, seq: u64, closed: bool) -> Rc<SharedFrame> {
        let bar = Bar { seq, closed, ..Bar::one_trade([mint; 32], 1, 60, 1.0) };
        let bytes = bar.to_bytes();
        SharedFrame::new(&bytes, bar::access(&bytes).unwrap())
    }

    fn seqs(frames: &[Rc<SharedFrame>]) -> Vec<(u8, u64)> {
        frames.iter().map(|f| (f.series.0[0], bar::access(&f.binary).unwrap().seq.to_native())).collect()
    }

    #[test]
    fn holds_latest_open_and_every_close_in_order() {
        let fanout = Fanout::default();
        for f in [frame(1, 1, false), frame(2, 1, false), frame(1, 2, false), frame(1, 3, true), frame(1, 4, false)] {
            fanout.hold(f);
        }
        assert_eq!(seqs(&fanout.take_held()), [(1, 3), (1, 4), (2, 1)]);
        assert!(fanout.take_held().is_empty());
    }

    #[test]
    fn subscriptions_by_window_and_mint() {
        let fanout = Fanout::default();
        fanout.subscribe(1, 1, None);
        fanout.subscribe(2, 1, Some([7; 32]));
        fanout.subscribe(2, 60, None);
        assert_eq!(fanout.subscribers(&([7; 32], 1)), [1, 2]);
        assert_eq!(fanout.subscribers(&([8; 32], 1)), [1]);
        fanout.unsubscribe(2, Some(1));
        assert_eq!(fanout.subscribers(&([7; 32], 1)), [1]);
        assert_eq!(fanout.subscribers(&([7; 32], 60)), [2]);
        fanout.unsubscribe(2, None);
        assert!(!fanout.wanted(&([7; 32], 60)));
    }

    #[test]
    fn json_is_made_once_and_shared() {
        let f = frame(1, 1, false);
        let (a, b) = (f.message(true), f.message(true));
        assert_eq!(a, b);
        assert!(a.to_text().unwrap().contains("\"seq\":1"));
        assert_eq!(f.message(false).len(), bar::BAR_LEN);
    }
}
