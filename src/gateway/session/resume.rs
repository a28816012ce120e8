//! `sub-<w> <mint> since <seq>` and `sub-<w> [mint] from <unix ms>`: a
//! client that reconnects gets what it missed from the shard's recent log
//! ([`Recent`](crate::gateway::recent::Recent)), in order, then live, with
//! nothing missed or sent twice; what the log no longer has is named in a
//! `gap` reply before the replayed bars.
//!
//! Replies, in order: the acknowledgement (`{"type":"subscribed",..,
//! "since":n | "from":ms, "replayed":k}`), a `{"type":"gap",..}` if
//! something is missing, the `k` replayed bars, then live bars.
//!
//! Seamless because the log and the live stream meet at one point, chosen
//! with no await in between: shared mode takes the replay and joins the hub
//! in one step (later updates reach the session through the hub; those it
//! had replayed are dropped by `seq`); per-client mode starts the session's
//! consumer at the offset the shard feed reads next, right after the last
//! update in the log, and drops the replayed `seq`s again.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;

use super::commands::{self, Done, Refused};
use super::{Context, Session, per_client};
use crate::aggregate::windows::label;
use crate::codec::bar;
use crate::codec::trade::Pubkey;
use crate::gateway::config::Fanout;
use crate::gateway::feed::Feed;
use crate::gateway::hub::{Member, Subscription};
use crate::gateway::outbox::Out;
use crate::gateway::protocol::{Command, ack_json};
use crate::gateway::recent::{Gap, Replay, Since};
use crate::gateway::websocket::{self, opcode};
use crate::kafka::topic::partition_for;

/// Longest a per-client resume waits for the shard feed to reach the
/// session's own consumer (which may be ahead on a partition it reads for
/// another subscription).
const CATCH_UP_WAIT: Duration = Duration::from_secs(2);

/// Answers a [`Command::Resume`].
pub async fn apply(ctx: &Rc<Context>, session: &Rc<Session>, command: &Command) -> Result<Done, Refused> {
    let Command::Resume { window_s, mint, since } = *command else { return Ok(Done::Ack) };
    let feed = ctx.feed.clone().ok_or(Refused::Unavailable("resume needs the shard feed, which did not start"))?;
    let sub = Subscription { window_s, mint };
    match ctx.config.fanout {
        Fanout::Shared { .. } => {
            commands::room_for(session, &sub)?;
            let replay = snapshot(&feed, &sub, since);
            send(ctx, session, command, &replay);
            session.history_sent.borrow_mut().extend(replay.last.iter().copied());
            let member: Rc<dyn Member> = session.clone();
            commands::subscribe_shared(ctx, session, &member, sub)?;
        }
        Fanout::PerClient => {
            per_client::prepare(ctx, session, &sub).await?;
            let partition = partition_for(ctx.config.windows.position(window_s).unwrap_or_default(), ctx.partitions);
            let started = Instant::now();
            // The feed must have read at least as far as the session's
            // consumer, or updates between the two would be in neither.
            let at = loop {
                let next = feed.next_offset(partition).unwrap_or_default();
                match per_client::position(ctx, session, partition) {
                    Some(position) if position > next && started.elapsed() < CATCH_UP_WAIT => {
                        glommio::timer::sleep(Duration::from_millis(5)).await;
                    }
                    Some(position) if position > next => {
                        return Err(Refused::Unavailable("the shard feed is behind; resume again in a moment"));
                    }
                    _ => break next,
                }
            };
            let replay = snapshot(&feed, &sub, since);
            send(ctx, session, command, &replay);
            per_client::assign_at(ctx, session, sub, at, &replay.last)?;
        }
    }
    Ok(Done::Acknowledged)
}

fn snapshot(feed: &Feed, sub: &Subscription, since: Since) -> Replay {
    let recent = feed.recent();
    match (since, sub.mint) {
        (Since::Seq(seq), Some(mint)) => recent.since_seq((mint, sub.window_s), seq),
        (Since::TimeMs(ms), mint) => recent.since_time(sub.window_s, mint.as_ref(), ms),
        // The parser never makes this: `since` needs a mint.
        (Since::Seq(_), None) => Replay::default(),
    }
}

/// Queues the acknowledgement, the gap and the replayed bars.
fn send(ctx: &Context, session: &Session, command: &Command, replay: &Replay) {
    let mut ack: serde_json::Value = serde_json::from_str(&ack_json(command)).unwrap_or_default();
    ack["replayed"] = replay.payloads.len().into();
    session.reply(ack.to_string());
    if let (Some(gap), Command::Resume { window_s, mint, .. }) = (replay.gap, command) {
        session.reply(gap_json(*window_s, mint.as_ref(), gap));
    }
    for payload in &replay.payloads {
        let frame = match (session.format.is_text(), bar::access(payload)) {
            (true, Ok(bar)) => session.format.text_frame(&bar.to_bar(), false),
            _ => websocket::frame(opcode::BINARY, payload),
        };
        session.outbox.push(Out::frame(frame));
    }
    ctx.metrics.bars_sent.fetch_add(replay.payloads.len() as u64, Ordering::Relaxed);
}

/// `{"type":"gap","window":"1m","window_s":60,"mint":..,"from_seq":a,"to_seq":b}`
/// (`to_seq` null: unknown, the gateway knows nothing of the series since
/// it started), or with `from_time` / `to_time` (unix ms) for a resume by
/// time.
pub fn gap_json(window_s: u32, mint: Option<&Pubkey>, gap: Gap) -> String {
    let mut value = json!({
        "type": "gap",
        "window": label(window_s),
        "window_s": window_s,
        "mint": mint.map(|m| bs58::encode(m).into_string()),
    });
    match gap {
        Gap::Seq { from_seq, to_seq } => {
            value["from_seq"] = from_seq.into();
            value["to_seq"] = if to_seq == u64::MAX { serde_json::Value::Null } else { to_seq.into() };
        }
        Gap::Time { from_ms, to_ms } => {
            value["from_time"] = from_ms.into();
            value["to_time"] = to_ms.into();
        }
    }
    value.to_string()
}
