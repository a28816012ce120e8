//! `sub-<w> [mint]`, `hist-<w> <count> [mint]` and the resumes
//! (`sub-<w> <mint> since <seq>`, `sub-<w> [mint] from <unix ms>`): one
//! path in both fan-out modes. What the client asked for from the past
//! comes from the shard feed's memory (nothing; the last closing bars; what
//! it missed, from the recent log), then live updates from right after it.
//!
//! Replies, in order: the acknowledgement (`subscribed`, `history`, or
//! `subscribed` with `since`/`from` and `replayed`), a `gap` reply if the
//! log no longer has part of what a resume asked for, the bars from the
//! past, then live bars.
//!
//! Seamless because the past and the live stream meet at one point, taken
//! with no await in between: the mode gets ready first
//! ([`Fanout::prepare`], which may wait), then the past is taken from the
//! feed and the subscription joins the live stream ([`Fanout::join`]) in
//! one step. Live updates of a series at or below the `seq` last sent from
//! the past are not sent again.

use std::rc::Rc;
use std::sync::atomic::Ordering;

use super::client::{Context, Fanout, Refused, Session};
use crate::codec::bar;
use crate::gateway::feed::Feed;
use crate::gateway::hub::Subscription;
use crate::gateway::protocol::{Command, Reply};
use crate::gateway::recent::{Replay, Since};
use crate::gateway::update::{self, Series};

/// What comes before the live stream.
#[derive(Debug, Clone, Copy)]
enum Past {
    /// Nothing: `sub`.
    Nothing,
    /// The last `count` closing bars: `hist`.
    Last(usize),
    /// What the client missed: a resume.
    Since(Since),
}

/// Answers a [`Command::Subscribe`], [`Command::History`] or
/// [`Command::Resume`] (others are left alone), replies included.
pub(crate) async fn apply<M: Fanout>(ctx: &Context, session: &Rc<Session>, command: &Command) -> Result<(), Refused> {
    let (window_s, mint, past) = match *command {
        Command::Subscribe { window_s, mint } => (window_s, mint, Past::Nothing),
        Command::History { window_s, count, mint } => (window_s, mint, Past::Last(count as usize)),
        Command::Resume { window_s, mint, since } => (window_s, mint, Past::Since(since)),
        _ => return Ok(()),
    };
    let sub = Subscription { window_s, mint };
    let feed = ctx.feed.as_deref();
    if let (Past::Since(_), None) = (past, feed) {
        return Err(Refused::Unavailable("resume needs the shard feed, which did not start"));
    }
    let at = M::prepare(ctx, session, &sub, !matches!(past, Past::Nothing)).await?;
    // From here to `join`, no await.
    let (frames, last, gap) = take_past(feed, session, &sub, past);
    match past {
        Past::Since(_) => session.reply(&Reply::Resumed { command, replayed: frames.len() }),
        _ => session.reply(&Reply::Ack(command)),
    }
    if let Some(gap) = gap {
        session.reply(&Reply::Gap { window_s, mint, gap });
    }
    ctx.metrics.bars_sent.fetch_add(frames.len() as u64, Ordering::Relaxed);
    for frame in frames {
        session.push_bar(frame);
    }
    session.replayed.borrow_mut().extend(last);
    session.add_subscription(sub);
    M::join(ctx, session, sub, at)
}

/// The past's frames in the session's transport and format, the last `seq`
/// of each series among them, and what a resume could not replay.
fn take_past(
    feed: Option<&Feed>,
    session: &Session,
    sub: &Subscription,
    past: Past,
) -> (Vec<bytes::Bytes>, Vec<(Series, u64)>, Option<crate::gateway::recent::Gap>) {
    let (transport, format) = (session.transport, session.format);
    match (past, feed) {
        (Past::Nothing, _) | (_, None) => (Vec::new(), Vec::new(), None),
        (Past::Last(count), Some(feed)) => {
            let bars = feed.recent_closes(sub.window_s, sub.mint.as_ref(), count);
            // Oldest first, each series' closing bars in `seq` order: the
            // replayed map, extended with them, keeps each series' last.
            let last = bars.iter().map(|bar| ((bar.mint, bar.window_s), bar.seq)).collect();
            let frames = bars.iter().map(|bar| update::frame_of_bar(transport, format, bar, false)).collect();
            (frames, last, None)
        }
        (Past::Since(since), Some(feed)) => {
            let replay = replay(feed, sub, since);
            let frames = replay
                .payloads
                .iter()
                .filter_map(|payload| {
                    let bar = bar::access(payload).ok()?;
                    Some(update::frame_of(transport, format, payload, bar))
                })
                .collect();
            (frames, replay.last, replay.gap)
        }
    }
}

/// What the shard's recent log holds of `sub` after `since`.
fn replay(feed: &Feed, sub: &Subscription, since: Since) -> Replay {
    let recent = feed.recent();
    match (since, sub.mint) {
        (Since::Seq(seq), Some(mint)) => recent.since_seq((mint, sub.window_s), seq),
        (Since::TimeMs(ms), mint) => recent.since_time(sub.window_s, mint.as_ref(), ms),
        // The parser never makes this: `since` needs a mint.
        (Since::Seq(_), None) => Replay::default(),
    }
}
