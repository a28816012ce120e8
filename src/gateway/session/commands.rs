//! A command in, its effect and its reply out: every command gets an
//! acknowledgement or an error reply, and a bad command never closes the
//! connection. Parsing is [`protocol`]'s; this file checks the one limit
//! (subscriptions per connection) and hands the command to what does it:
//! [`join`] (`sub`, `hist`, resumes), [`page`] (`hist` pages), the session's
//! fan-out mode (`unsub`).
//!
//! [`protocol`]: crate::gateway::protocol

use std::rc::Rc;

use super::client::{Context, Fanout, Refused, Session};
use super::{join, page};
use crate::gateway::hub::Subscription;
use crate::gateway::metrics::Metrics;
use crate::gateway::protocol::{self, Command, Reply};

/// Parses and applies one command text, then queues its reply.
pub(crate) async fn on_text<M: Fanout>(ctx: &Context, session: &Rc<Session>, text: &str) {
    Metrics::inc(&ctx.metrics.commands);
    match protocol::parse_command(text, ctx.config.windows.seconds()) {
        Ok(command) => {
            let _ = on_command::<M>(ctx, session, &command).await;
        }
        Err(error) => refuse(ctx, session, &error.into()),
    }
}

/// Applies one parsed command and queues its replies; a refusal is replied
/// to and returned.
pub(crate) async fn on_command<M: Fanout>(ctx: &Context, session: &Rc<Session>, command: &Command) -> Result<(), ()> {
    apply::<M>(ctx, session, command).await.map_err(|refused| refuse(ctx, session, &refused))
}

/// Counts a refused command and queues its error reply.
pub fn refuse(ctx: &Context, session: &Session, refused: &Refused) {
    Metrics::inc(&ctx.metrics.command_errors);
    session.reply(&Reply::Error(&refused.to_string()));
}

async fn apply<M: Fanout>(ctx: &Context, session: &Rc<Session>, command: &Command) -> Result<(), Refused> {
    match *command {
        Command::Subscribe { window_s, mint }
        | Command::History { window_s, mint, .. }
        | Command::Resume { window_s, mint, .. } => {
            session.room_for(&Subscription { window_s, mint })?;
            join::apply::<M>(ctx, session, command).await
        }
        Command::Page { .. } => page::apply(ctx, session, command).await,
        Command::Unsubscribe { window_s } => {
            session.subs.borrow_mut().retain(|s| window_s.is_some_and(|w| w != s.window_s));
            M::unsubscribe(ctx, session, window_s);
            session.reply(&Reply::Ack(command));
            Ok(())
        }
        Command::Ping => {
            session.reply(&Reply::Ack(command));
            Ok(())
        }
    }
}
