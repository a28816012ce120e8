//! `hist-<w> <count> <mint> [start=<ms>] [end=<ms>] [fill=prev]`: one page
//! of the history store, in the connection's format, with no live
//! subscription: what a chart needs to scroll back. The page is read off
//! the executor ([`pages`]); its acknowledgement (`{"type":"page",..,
//! "bars":n}`) comes first, then its bars, oldest first.

use std::sync::atomic::Ordering;

use super::client::{Context, Refused, Session};
use crate::gateway::api::KlinesQuery;
use crate::gateway::pages;
use crate::gateway::protocol::{Command, Reply};
use crate::gateway::update;

/// Answers a [`Command::Page`] (others are left alone), replies included.
pub async fn apply(ctx: &Context, session: &Session, command: &Command) -> Result<(), Refused> {
    let Command::Page { window_s, count, mint, start_ms, end_ms, fill } = *command else { return Ok(()) };
    let history = ctx.history.as_ref().ok_or(Refused::Unavailable("no history store"))?;
    if fill && !session.format.is_text() {
        return Err(Refused::Unavailable(
            "fill=prev needs /ws?format=json or format=binance: a filled window has no trades, which a binary bar cannot be",
        ));
    }
    let query = KlinesQuery::new(mint, window_s, (start_ms, end_ms), count as usize, fill, session.format.unit);
    let rows = pages::page(history, &ctx.workers, query, ctx.feed.as_deref()).await?;
    session.reply(&Reply::Paged { command, bars: rows.len() });
    for row in &rows {
        session.push_bar(update::frame_of_bar(session.transport, session.format, &row.bar, row.filled));
    }
    ctx.metrics.bars_sent.fetch_add(rows.len() as u64, Ordering::Relaxed);
    Ok(())
}
