//! A command in, its effect and its reply out: every command gets a JSON
//! acknowledgement or a JSON error, and a bad command never closes the
//! connection. Parsing is [`protocol`]'s; what a subscription means is the
//! hub's (shared mode) or the session's own consumer's
//! ([`per_client`](super::per_client)).

use std::rc::Rc;

use rdkafka::error::KafkaError;
use thiserror::Error;

use super::{Context, MAX_SUBSCRIPTIONS, Session, per_client};
use crate::gateway::config::Fanout;
use crate::gateway::hub::{Member, Subscription};
use crate::gateway::kafka_workers::WorkersGone;
use crate::gateway::metrics::Metrics;
use crate::gateway::outbox::Out;
use crate::gateway::protocol::{self, Command, CommandError, Reply};

/// Why a command was refused; the client gets the message as a JSON error.
#[derive(Debug, Error)]
pub enum Refused {
    /// Not a command of the protocol.
    #[error(transparent)]
    Parse(#[from] CommandError),
    /// A binary frame: commands are text.
    #[error("commands are text frames")]
    NotText,
    /// One subscription more than [`MAX_SUBSCRIPTIONS`].
    #[error("at most {MAX_SUBSCRIPTIONS} subscriptions per connection; unsub first")]
    TooManySubscriptions,
    /// The Kafka worker threads are gone (shutting down).
    #[error(transparent)]
    Workers(#[from] WorkersGone),
    /// Per-client mode: no consumer could be created.
    #[error("could not create a Kafka consumer: {0}")]
    Consumer(KafkaError),
    /// Per-client mode: the partition's offsets could not be looked up.
    #[error("Kafka offset lookup failed: {0}")]
    OffsetLookup(KafkaError),
    /// Per-client mode: the consumer refused the new position.
    #[error("Kafka consumer could not be positioned: {0}")]
    Position(KafkaError),
    /// The shard feed, or the history store, is not there.
    #[error("{0}")]
    Unavailable(&'static str),
    /// A `hist` page was refused by the history store.
    #[error("{0}")]
    Page(#[from] crate::gateway::api::ApiError),
}

/// What a command did, once it was accepted.
pub enum Done {
    /// Acknowledge it now.
    Ack,
    /// The acknowledgement is already queued (before the history it
    /// precedes).
    Acknowledged,
}

/// Parses and applies one text frame, then queues its reply.
pub async fn on_command(ctx: &Rc<Context>, session: &Rc<Session>, text: &str) {
    Metrics::inc(&ctx.metrics.commands);
    let command = match protocol::parse_command(text, ctx.config.windows.seconds()) {
        Ok(command) => command,
        Err(error) => return refuse(ctx, session, &error.into()),
    };
    match apply(ctx, session, &command).await {
        Ok(Done::Ack) => session.reply(Reply::Ack(&command).to_json()),
        Ok(Done::Acknowledged) => {}
        Err(refused) => refuse(ctx, session, &refused),
    }
}

/// Counts a refused command and queues its JSON error.
pub fn refuse(ctx: &Context, session: &Session, refused: &Refused) {
    Metrics::inc(&ctx.metrics.command_errors);
    session.reply(Reply::Error(&refused.to_string()).to_json());
}

async fn apply(ctx: &Rc<Context>, session: &Rc<Session>, command: &Command) -> Result<Done, Refused> {
    match command {
        Command::Resume { .. } => return super::resume::apply(ctx, session, command).await,
        Command::Page { .. } => return super::page::apply(ctx, session, command).await,
        _ => {}
    }
    if let Fanout::Shared { .. } = ctx.config.fanout {
        return apply_shared(ctx, session, command);
    }
    match *command {
        Command::Ping => {}
        Command::Subscribe { window_s, mint } => {
            per_client::subscribe(ctx, session, Subscription { window_s, mint }, None).await?
        }
        Command::History { window_s, count, mint } => {
            per_client::subscribe(ctx, session, Subscription { window_s, mint }, Some(count as usize)).await?
        }
        Command::Unsubscribe { window_s } => per_client::unsubscribe(ctx, session, window_s),
        Command::Resume { .. } | Command::Page { .. } => {} // answered above
    }
    Ok(Done::Ack)
}

/// Shared mode: subscriptions are entries in the shard's hub; history comes
/// from the shard feed's rings. The acknowledgement of `hist` is queued
/// before the history frames, which go out before live ones.
fn apply_shared(ctx: &Context, session: &Rc<Session>, command: &Command) -> Result<Done, Refused> {
    let member: Rc<dyn Member> = session.clone();
    match *command {
        Command::Ping => {}
        Command::Subscribe { window_s, mint } => {
            subscribe_shared(ctx, session, &member, Subscription { window_s, mint })?
        }
        Command::Unsubscribe { window_s } => {
            session.shared_subs.borrow_mut().retain(|s| window_s.is_some_and(|w| w != s.window_s));
            ctx.hub.unsubscribe(&member, window_s);
        }
        Command::History { window_s, count, mint } => {
            let sub = Subscription { window_s, mint };
            room_for(session, &sub)?;
            let bars =
                ctx.feed.as_ref().map(|f| f.recent_closes(window_s, mint.as_ref(), count as usize)).unwrap_or_default();
            session.reply(Reply::Ack(command).to_json());
            let mut sent = session.history_sent.borrow_mut();
            for bar in bars {
                sent.insert((bar.mint, bar.window_s), bar.seq);
                let frame = session.format.frame_of_bar(&bar);
                session.outbox.push(Out::frame(frame));
            }
            drop(sent);
            subscribe_shared(ctx, session, &member, sub)?;
            return Ok(Done::Acknowledged);
        }
        Command::Resume { .. } | Command::Page { .. } => {} // answered by `apply`
    }
    Ok(Done::Ack)
}

/// Refuses a new subscription beyond [`MAX_SUBSCRIPTIONS`].
pub(super) fn room_for(session: &Session, sub: &Subscription) -> Result<(), Refused> {
    let subs = session.shared_subs.borrow();
    if subs.len() >= MAX_SUBSCRIPTIONS && !subs.contains(sub) {
        return Err(Refused::TooManySubscriptions);
    }
    Ok(())
}

pub(super) fn subscribe_shared(
    ctx: &Context,
    session: &Session,
    member: &Rc<dyn Member>,
    sub: Subscription,
) -> Result<(), Refused> {
    room_for(session, &sub)?;
    let mut subs = session.shared_subs.borrow_mut();
    if !subs.contains(&sub) {
        // Exactly one more slot: most sessions hold one or two
        // subscriptions, and doubling would reserve four.
        subs.reserve_exact(1);
        subs.push(sub);
    }
    ctx.hub.subscribe(member, sub);
    Ok(())
}
