//! Shared mode: a session's subscriptions are entries in the shard's
//! [`Hub`](crate::gateway::hub::Hub), which hands it every update due at
//! each push ([`Member::deliver`]); a client that falls behind meets the
//! outbox's slow-client policy ([`Outbox::push_update`]): its updates are
//! conflated, then it is closed.
//!
//! [`Outbox::push_update`]: crate::gateway::outbox::Outbox::push_update

use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::{Context as TaskContext, Poll, Waker};

use bytes::Bytes;
use futures_lite::io::AsyncWrite;

use super::client::{Context, Fanout, JoinAt, Refused, Session};
use crate::gateway::hub::{Due, Member, Subscription};
use crate::gateway::metrics::Metrics;
use crate::gateway::outbox::Out;
use crate::gateway::update::Update;
use crate::gateway::websocket::close;

/// Shared fan-out.
pub struct Shared;

impl Fanout for Shared {
    async fn prepare(_: &Context, _: &Rc<Session>, _: &Subscription, _: bool) -> Result<JoinAt, Refused> {
        Ok(JoinAt::Next)
    }

    /// Joins the hub: the next push is the first update after the feed's
    /// history, which was taken with no await since.
    fn join(ctx: &Context, session: &Rc<Session>, sub: Subscription, _: JoinAt) -> Result<(), Refused> {
        let member: Rc<dyn Member> = session.clone();
        ctx.hub.subscribe(&member, sub);
        Ok(())
    }

    fn unsubscribe(ctx: &Context, session: &Rc<Session>, window_s: Option<u32>) {
        let member: Rc<dyn Member> = session.clone();
        ctx.hub.unsubscribe(&member, window_s);
    }

    fn leave(ctx: &Context, session: &Rc<Session>) {
        if !session.subs.borrow().is_empty() {
            Self::unsubscribe(ctx, session, None);
        }
    }
}

impl Member for Session {
    /// Takes this session's share of a push. When nothing is queued for the
    /// client, the share goes to the socket at once, in one write from the
    /// push's shared buffer, without waking the session's task; what the
    /// socket does not take is queued for the writer. Otherwise (a client
    /// that is behind) each update is queued under the slow-client policy.
    fn deliver(&self, due: &Due) {
        if self.outbox.is_closed() {
            return;
        }
        let subs = self.subs.borrow();
        let replayed = self.replayed.borrow();
        let wanted = || due.updates_for(&subs).filter(|u| replayed.get(&u.series).is_none_or(|&sent| u.seq > sent));
        if !self.outbox.may_write_through() {
            for update in wanted() {
                if !self.queue_update(update) {
                    return;
                }
            }
            return;
        }
        let mut bytes = due.scratch();
        let (mut frames, mut payload) = (0, 0);
        for update in wanted() {
            let frame = update.frame(self.transport, self.format);
            bytes.extend_from_slice(&frame);
            frames += 1;
            payload += self.transport.payload_len(&frame);
        }
        if frames == 0 {
            return;
        }
        self.metrics.bars_sent.fetch_add(frames as u64, Ordering::Relaxed);
        let mut cx = TaskContext::from_waker(Waker::noop());
        match Pin::new(&mut *self.socket.borrow_mut()).poll_write(&mut cx, &bytes) {
            Poll::Ready(Ok(n)) => {
                self.metrics.frames_sent(frames, payload);
                if n < bytes.len() {
                    // The socket is full: the rest is the writer's, and
                    // what comes next is queued behind it.
                    self.outbox.push_rest(Bytes::copy_from_slice(&bytes[n..]));
                }
            }
            Poll::Ready(Err(_)) => self.outbox.abort(), // the connection is gone
            Poll::Pending => {
                // Not a byte went: the writer sends them, under the policy.
                self.metrics.bars_sent.fetch_sub(frames as u64, Ordering::Relaxed);
                drop(bytes);
                for update in wanted() {
                    if !self.queue_update(update) {
                        return;
                    }
                }
            }
        }
    }
}

impl Session {
    /// Queues one update under the slow-client policy; false if that
    /// closed the session.
    fn queue_update(&self, update: &Update) -> bool {
        let frame = update.frame(self.transport, self.format);
        let out = if update.closed { Out::frame(frame) } else { Out::update(frame, update.series) };
        Metrics::inc(&self.metrics.bars_sent);
        let pushed = self.outbox.push_update(out, self.max_outbound_bytes);
        self.metrics.outbound_peak_bytes.fetch_max(pushed.queued as u64, Ordering::Relaxed);
        self.metrics.conflated.fetch_add(pushed.conflated as u64, Ordering::Relaxed);
        if pushed.too_slow {
            Metrics::inc(&self.metrics.slow_closes);
            self.force_close(close::AGAIN, "too slow: outbound limit exceeded");
            return false;
        }
        true
    }
}
