//! A session's socket. The read loop decodes what the client sends (its
//! transport's [`Input`]) and hands commands to
//! [`commands`](super::commands); the write loop takes everything queued in
//! the outbox at once and sends it in one write. Both run in the session's
//! one task (no second task, no timer per session), sharing the socket
//! through a `RefCell` that is borrowed only inside a poll, never across an
//! await: the two halves are polled one after the other, never at once.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::ops::ControlFlow;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_lite::future;
use futures_lite::io::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use glommio::timer::timeout;

use super::client::{Context, Fanout, Refused, Session};
use super::commands;
use crate::gateway::metrics::Metrics;
use crate::gateway::protocol::Command;
use crate::gateway::transport::{Incoming, Input};
use crate::gateway::websocket::close;

/// Longest wait, after the last frame went out, for the client to close its
/// side: the socket is closed only then (or after this), so the kernel never
/// answers a client's unread bytes with a reset that could discard the close
/// frame before the client reads it.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Most bytes read and dropped while waiting for that.
const LINGER_BYTES: usize = 64 * 1024;
/// A send that makes no progress for this long ends the session.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes asked of the socket per read. Commands are at most 256 bytes; a
/// larger message grows the buffer up to --max-frame-bytes, and the buffer
/// shrinks back once it is empty: 50,000 idle sessions must fit in a few
/// KiB each.
const READ_CHUNK: usize = 256;
/// Most bytes one write carries: everything the outbox holds, up to this.
/// A push hands a client all its frames at once, so they go out in one
/// system call; a client that fell behind catches up in 16 KiB writes. The
/// buffer lives only for the write (one frame is sent from its own shared
/// buffer without a copy).
const WRITE_BATCH_BYTES: usize = 16 * 1024;

/// Runs the commands the session starts with (a transport's URL), then
/// both halves until one ends. If the reader ends, the writer still sends
/// what is queued (a goodbye); if the writer ends (closed, stuck, forced
/// out), the reader is simply dropped. The session leaves the shard
/// ([`leave`]) as soon as either ends.
pub(super) async fn serve<M: Fanout>(
    ctx: &Rc<Context>,
    session: &Rc<Session>,
    read_ahead: Vec<u8>,
    opening: Vec<Command>,
) {
    let stream = &session.socket;
    // Boxed: it runs once, and only for transports that open with commands.
    if !opening.is_empty() && Box::pin(open_with::<M>(ctx, session, opening)).await.is_break() {
        session.outbox.finish();
    }
    let mut reading = pin!(read_loop::<M>(ctx, session, stream, read_ahead));
    let mut writing = pin!(write_loop(&ctx.metrics, session, stream));
    let reader_ended = future::or(
        async {
            (&mut reading).await;
            true
        },
        async {
            (&mut writing).await;
            false
        },
    )
    .await;
    leave::<M>(ctx, session);
    if reader_ended {
        session.outbox.finish(); // the writer sends what is queued, then ends
        writing.await;
    }
    // Boxed: it runs once, at the end, and is larger than what an idle
    // session holds.
    Box::pin(linger(stream)).await;
}

/// Applies the commands a session opens with; a refused one ends it (its
/// error reply is the last thing sent).
async fn open_with<M: Fanout>(ctx: &Context, session: &Rc<Session>, commands: Vec<Command>) -> ControlFlow<()> {
    for command in &commands {
        Metrics::inc(&ctx.metrics.commands);
        if commands::on_command::<M>(ctx, session, command).await.is_err() {
            return ControlFlow::Break(());
        }
    }
    ControlFlow::Continue(())
}

/// Takes an ended session out of the shard: the registry and what its
/// fan-out mode holds for it. Called as soon as either half of the
/// connection ends, before the last frames are flushed.
fn leave<M: Fanout>(ctx: &Context, session: &Rc<Session>) {
    ctx.sessions.remove(session);
    M::leave(ctx, session);
}

/// Sends the outbox to the socket until it is finished and drained, the
/// socket fails, or a write makes no progress for [`SEND_TIMEOUT`]; then
/// shuts down the sending side (FIN after the last frame).
async fn write_loop(metrics: &Metrics, session: &Session, stream: &RefCell<TcpStream>) {
    while let Some(batch) = session.outbox.next_batch(WRITE_BATCH_BYTES).await {
        let Some(sent) = bounded(SEND_TIMEOUT, write_all(stream, &batch.bytes)).await else {
            // The socket took nothing for SEND_TIMEOUT: a stuck client.
            Metrics::inc(&metrics.slow_closes);
            break;
        };
        if sent.is_err() {
            break;
        }
        session.outbox.written();
        metrics.frames_sent(batch.frames, batch.payload_bytes);
        if batch.closing {
            break;
        }
    }
    session.outbox.abort();
    let _ = poll_fn(|cx| Pin::new(&mut *stream.borrow_mut()).poll_close(cx)).await;
}

/// Writes all of `bytes`.
fn write_all<'a>(stream: &'a RefCell<TcpStream>, bytes: &'a [u8]) -> impl Future<Output = io::Result<()>> + Unpin + 'a {
    let mut written = 0;
    poll_fn(move |cx| {
        while written < bytes.len() {
            match Pin::new(&mut *stream.borrow_mut()).poll_write(cx, &bytes[written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => written += n,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    })
}

/// Runs one step of sending, giving up after `limit`; `None` if it timed
/// out. Nearly every write completes when first polled (the kernel has
/// room), so the timer, and the heap memory its future needs, is set up only
/// for a write that has to wait: an idle session does not carry a timer's
/// state.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would store `step` twice (argument and local) in every session"
)]
fn bounded<F: Future + Unpin>(limit: Duration, mut step: F) -> impl Future<Output = Option<F::Output>> {
    async move {
        if let Some(done) = future::poll_once(&mut step).await {
            return Some(done);
        }
        Box::pin(timeout(limit, async move { Ok(step.await) })).await.ok()
    }
}

/// Reads more bytes into the spare room of `buf`; `Ok(0)` at the end.
async fn read_more(stream: &RefCell<TcpStream>, buf: &mut Vec<u8>) -> io::Result<usize> {
    let filled = buf.len();
    buf.resize(filled + READ_CHUNK, 0);
    let read = poll_fn(|cx| Pin::new(&mut *stream.borrow_mut()).poll_read(cx, &mut buf[filled..])).await;
    buf.truncate(filled + *read.as_ref().unwrap_or(&0));
    read
}

async fn read_loop<M: Fanout>(ctx: &Rc<Context>, session: &Rc<Session>, stream: &RefCell<TcpStream>, mut buf: Vec<u8>) {
    let mut input: Box<dyn Input> = session.transport.input(ctx.config.max_frame_bytes);
    while !ctx.shutdown.requested() && !session.outbox.is_closed() {
        let message = match input.next(&mut buf) {
            Err(violation) => {
                Metrics::inc(&ctx.metrics.protocol_closes);
                return session.close(violation.code, violation.reason);
            }
            Ok(None) => {
                if buf.is_empty() && buf.capacity() > 4 * READ_CHUNK {
                    buf = Vec::new(); // a large message is done with
                }
                if let Ok(1..) = read_more(stream, &mut buf).await {
                    continue;
                }
                // The connection ended: without a closing handshake where
                // the transport has one, a protocol violation too (counted,
                // nothing left to send to).
                if session.transport.eof_is_violation() {
                    Metrics::inc(&ctx.metrics.protocol_closes);
                }
                return;
            }
            Ok(Some(message)) => message,
        };
        session.last_heard.set(Instant::now());
        session.pinged.set(false);
        match message {
            // Boxed: handling a command (Kafka look-ups in per-client mode)
            // needs far more state than waiting for the next frame, and only
            // for as long as it runs.
            Incoming::Command(text) => {
                if Box::pin(on_text::<M>(ctx, session, text)).await.is_break() {
                    return;
                }
            }
            Incoming::NotACommand => commands::refuse(ctx, session, &Refused::NotText),
            Incoming::Ping(payload) => {
                if let Some(pong) = session.transport.pong(&payload) {
                    session.push_control(pong);
                }
            }
            Incoming::Pong => {}
            Incoming::Close(code) => {
                // The closing handshake.
                return match session.transport.close_reply(code) {
                    Some(goodbye) => session.close_with(goodbye),
                    None => session.outbox.finish(),
                };
            }
        }
    }
    session.close(close::AWAY, "server shutting down");
}

/// Handles one command. Commands are taken only as fast as their replies
/// are read: a client that pipelines commands waits here, one that never
/// reads is closed (`Break`).
async fn on_text<M: Fanout>(ctx: &Rc<Context>, session: &Rc<Session>, text: String) -> ControlFlow<()> {
    commands::on_text::<M>(ctx, session, &text).await;
    let cap = ctx.config.max_outbound_bytes;
    if session.outbox.bytes() <= cap {
        return ControlFlow::Continue(());
    }
    let drained = timeout(SEND_TIMEOUT, async {
        session.outbox.drained_to(cap / 2).await;
        Ok(())
    });
    if drained.await.is_err() {
        Metrics::inc(&ctx.metrics.slow_closes);
        session.force_close(close::POLICY, "not reading replies");
        return ControlFlow::Break(());
    }
    ControlFlow::Continue(())
}

/// After the last frame and the FIN: reads and drops what the client still
/// sends until it closes, for at most [`CLOSE_TIMEOUT`] and
/// [`LINGER_BYTES`].
async fn linger(stream: &RefCell<TcpStream>) {
    let mut scratch = vec![0u8; 1024];
    let drain = async {
        let mut total = 0;
        while total < LINGER_BYTES {
            match poll_fn(|cx| Pin::new(&mut *stream.borrow_mut()).poll_read(cx, &mut scratch)).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
        Ok(())
    };
    let _ = timeout(CLOSE_TIMEOUT, drain).await;
}
