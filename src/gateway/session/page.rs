//! `hist-<w> <count> <mint> [start=<ms>] [end=<ms>] [fill=prev]`: one page
//! of the history store, in the connection's format, with no live
//! subscription: what a chart needs to scroll back. The page is read off
//! the executor ([`pages`]); its acknowledgement (`{"type":"page",..,
//! "bars":n}`) comes first, then its bars, oldest first.

use std::rc::Rc;
use std::sync::atomic::Ordering;

use super::commands::{Done, Refused};
use super::{Context, Session};
use crate::gateway::api::KlinesQuery;
use crate::gateway::outbox::Out;
use crate::gateway::pages;
use crate::gateway::protocol::{Command, ack_json};

/// Answers a [`Command::Page`].
pub async fn apply(ctx: &Rc<Context>, session: &Rc<Session>, command: &Command) -> Result<Done, Refused> {
    let Command::Page { window_s, count, mint, start_ms, end_ms, fill } = *command else { return Ok(Done::Ack) };
    let history = ctx.config.history_store.as_ref().ok_or(Refused::Unavailable("no history store"))?;
    if fill && !session.format.is_text() {
        return Err(Refused::Unavailable(
            "fill=prev needs /ws?format=json or format=binance: a filled window has no trades, which a binary bar cannot be",
        ));
    }
    let query = KlinesQuery::new(mint, window_s, (start_ms, end_ms), count as usize, fill, session.format.unit);
    let rows = pages::page(history, &ctx.workers, query).await?;
    let mut ack: serde_json::Value = serde_json::from_str(&ack_json(command)).unwrap_or_default();
    ack["bars"] = rows.len().into();
    session.reply(ack.to_string());
    for row in &rows {
        let frame = match session.format.is_text() {
            true => session.format.text_frame(&row.bar, row.filled),
            false => session.format.frame_of_bar(&row.bar),
        };
        session.outbox.push(Out::frame(frame));
    }
    ctx.metrics.bars_sent.fetch_add(rows.len() as u64, Ordering::Relaxed);
    Ok(Done::Acknowledged)
}
