//! One client session, whatever carries it, and the shard's sessions as a
//! whole.
//!
//! - [`client`]: what a session is ([`Session`]), what it needs from its
//!   shard ([`Context`]), the live sessions ([`Sessions`]) and what a
//!   fan-out mode must do ([`Fanout`]).
//! - [`shared`] and [`per_client`]: the two fan-out modes, one chosen when
//!   a session starts ([`run`]). Shared: the session's subscriptions are in
//!   the shard's hub, which hands it every update due at each push; the
//!   slow-client policy is the outbox's. Per-client: the session's own
//!   Kafka consumer is drained into its outbox by the shard's poller, which
//!   stops reading it while the outbox is full, so Kafka paces a slow
//!   client and nothing is dropped.
//! - [`commands`]: a command in, checked and handed on: [`join`] (`sub`,
//!   `hist`, resumes: the past from the shard feed, then live, one path for
//!   both modes), [`page`] (`hist` pages of the history store).
//! - [`connection`]: the socket: what the client sends, through its
//!   transport, and writing the outbox.
//!
//! This file starts sessions, sweeps silent ones and says goodbye at
//! shutdown.

pub mod client;
pub mod commands;
pub mod connection;
pub mod join;
pub mod page;
pub mod per_client;
pub mod shared;

use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::net::TcpStream;
use glommio::timer::sleep;

use crate::gateway::config::Fanout;
use crate::gateway::format::Format;
use crate::gateway::metrics::Metrics;
use crate::gateway::protocol::Command;
use crate::gateway::transport::Transport;
use crate::gateway::websocket::close;
use client::Context;
use per_client::PerClient;
use shared::Shared;

/// Serves one opened connection until it closes: registers the session,
/// runs its connection in the shard's fan-out mode (after the commands the
/// transport opened it with), then takes it out of the shard.
///
/// The future lives as long as the connection, so it is kept small (see the
/// `idle_session_state_stays_small` test): the session, socket included, is
/// made before the future (an async fn would keep a slot for the socket as
/// its argument besides the one in the session), and whatever is large and
/// rare is boxed for as long as it runs (see [`connection`]).
pub fn run(
    ctx: Rc<Context>,
    stream: TcpStream,
    read_ahead: Vec<u8>,
    transport: &'static dyn Transport,
    (format, opening): (Format, Vec<Command>),
) -> impl Future<Output = ()> {
    let session = ctx.sessions.open(&ctx, stream, transport, format);
    async move {
        match ctx.config.fanout {
            Fanout::Shared { .. } => connection::serve::<Shared>(&ctx, &session, read_ahead, opening).await,
            Fanout::PerClient => connection::serve::<PerClient>(&ctx, &session, read_ahead, opening).await,
        }
    }
}

/// The shard's liveness sweep: pings sessions silent for a ping interval and
/// closes those silent for two, where the transport's clients answer pings;
/// elsewhere sends the keepalive once per interval. One timer per shard,
/// not per session.
pub async fn sweep_silent(ctx: Rc<Context>) {
    let interval = ctx.config.ping_interval;
    let tick = (interval / 4).clamp(Duration::from_millis(25), Duration::from_secs(1));
    while !ctx.shutdown.requested() {
        sleep(tick).await;
        for (i, session) in ctx.sessions.all().iter().enumerate() {
            let silent = session.last_heard.get().elapsed();
            if !session.transport.answers_pings() {
                if silent >= interval {
                    session.push_control(session.transport.ping());
                    session.last_heard.set(Instant::now());
                }
            } else if silent >= interval * 2 {
                Metrics::inc(&ctx.metrics.protocol_closes);
                session.close(close::AWAY, "no pong");
            } else if silent >= interval && !session.pinged.replace(true) {
                session.push_control(session.transport.ping());
            }
            if i % 1024 == 1023 {
                glommio::yield_if_needed().await;
            }
        }
    }
}

/// Most time [`close_all`] waits for the sessions to send their goodbye.
const CLOSE_ALL_WAIT: Duration = Duration::from_secs(1);

/// Closes every session with 1001 (going away) at shutdown, and waits (at
/// most [`CLOSE_ALL_WAIT`]) for them to end.
pub async fn close_all(ctx: &Context) {
    for session in ctx.sessions.all() {
        session.close(close::AWAY, "server shutting down");
    }
    let started = Instant::now();
    while !ctx.sessions.is_empty() && started.elapsed() < CLOSE_ALL_WAIT {
        sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use client::Session;

    /// The size of the future a function returns, without calling it.
    fn future_size<A, B, C, D, E, F: Future>(_: fn(A, B, C, D, E) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// A session's future and state live as long as its connection, in
    /// every one of 50,000 idle connections: anything large must be boxed
    /// while in use. Between them they hold the socket (120 bytes) and all
    /// the connection's state, which a WebSocket library used to keep on
    /// the heap besides (the two were 2.5 KiB of a 5 KiB connection then).
    #[test]
    fn idle_session_state_stays_small() {
        let future = future_size(run);
        assert!(future <= 704, "session future grew to {future} bytes");
        let session = std::mem::size_of::<Session>();
        assert!(session <= 448, "Session grew to {session} bytes");
    }
}
