//! One gateway shard, the composition root: one pinned executor with its
//! own SO_REUSEPORT listener, its feed (the shard's reader of the topic),
//! its hub (shared mode), its sessions and its routes. It builds them, runs
//! the shard's loops (accept, poll, sweep, push) and stops them in order at
//! shutdown. Shards share the metrics atomics, the Kafka worker threads,
//! the settings (with the ingest's metrics when `serve` runs both) and the
//! history store's handle; nothing else, and nothing below this file refers
//! to it.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use glommio::net::{TcpListener, TcpStream};
use glommio::spawn_local;
use glommio::timer::sleep;

use super::arrivals::Arrivals;
use super::config::{Fanout, GatewayConfig, Handles};
use super::feed::Feed;
use super::http::{RequestHead, Route};
use super::hub::{self, Hub};
use super::kafka_workers::KafkaWorkers;
use super::listener::{self, Admission, Door, Service};
use super::metrics::Metrics;
use super::routes::Routes;
use super::session::client::{Context, Sessions};
use super::session::{self, per_client};
use super::transport::{Opening, Transport};
use crate::runtime::Shutdown;

/// How often the shard looks at the shutdown flag.
const SHUTDOWN_CHECK: Duration = Duration::from_millis(200);
/// Longest poller wait after a pass that found nothing: consumers wake it
/// when a message arrives ([`Arrivals`]); this bounds the wait for what no
/// message announces (an outbox with room again for bars held back, history
/// look-ups).
const POLL_IDLE: Duration = Duration::from_millis(5);

/// What one shard serves: its sessions' context and its routes.
struct Shard {
    sessions: Rc<Context>,
    routes: Routes,
}

impl Service for Shard {
    fn answer(&self, route: &Route, head: &RequestHead) -> impl Future<Output = Vec<u8>> {
        self.routes.answer(route, head)
    }

    fn open(
        self: &Rc<Self>,
        stream: TcpStream,
        read_ahead: Vec<u8>,
        transport: &'static dyn Transport,
        opening: Opening,
        admission: Admission,
    ) {
        let ctx = self.sessions.clone();
        // The session runs as a task of its own: the caller's future, sized
        // for the HTTP phase, is freed instead of living as long as the
        // connection.
        spawn_local(async move {
            session::run(ctx, stream, read_ahead, transport, (opening.format, opening.commands)).await;
            drop(admission);
        })
        .detach();
    }
}

/// Runs one shard until shutdown.
pub async fn run(
    config: GatewayConfig,
    handles: Handles,
    metrics: Arc<Metrics>,
    workers: KafkaWorkers,
    partitions: i32,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(config.listen).map_err(|e| std::io::Error::other(e.to_string()))?;
    let arrivals = Arrivals::default();
    let windows = config.windows.seconds().to_vec();
    let started = Feed::start(
        &config.kafka,
        &windows,
        partitions,
        config.history_lookback,
        config.resume_updates,
        &workers,
        &arrivals,
    )
    .await;
    let feed = match started {
        Ok(feed) => Some(Rc::new(feed)),
        Err(error) => {
            tracing::error!(%error, "shard feed did not start: no history, mints or shared fan-out");
            None
        }
    };
    let hub = Rc::new(Hub::default());
    let ctx = Rc::new(Context {
        config: config.clone(),
        metrics: metrics.clone(),
        workers: workers.clone(),
        arrivals,
        partitions,
        hub: hub.clone(),
        feed: feed.clone(),
        history: handles.history.clone(),
        sessions: Sessions::default(),
        shutdown: shutdown.clone(),
    });
    let routes = Routes::new(config.clone(), handles, metrics.clone(), workers.clone(), feed.clone());
    let shard = Rc::new(Shard { sessions: ctx.clone(), routes });
    let poller = spawn_local(poll(ctx.clone()));
    let sweeper = spawn_local(session::sweep_silent(ctx.clone()));
    let pusher = match config.fanout {
        Fanout::Shared { push_interval } if !push_interval.is_zero() => {
            Some(spawn_local(hub::push_loop(hub, push_interval, shutdown.clone())))
        }
        _ => None,
    };
    let acceptor = spawn_local(listener::accept_loop(listener, Door::new(&config, metrics), shard.clone()));
    while !shutdown.requested() {
        sleep(SHUTDOWN_CHECK).await;
    }
    // Stop accepting first (the listener closes with its task), then say
    // goodbye to every session (1001).
    drop(acceptor);
    session::close_all(&ctx).await;
    drop((poller, sweeper, pusher, shard, ctx));
    // Closing a consumer joins librdkafka's threads: on a worker, never here.
    if let Some(feed) = feed {
        let consumer = feed.consumer().clone();
        drop(feed);
        workers.detach(move || drop(consumer));
    }
    Ok(())
}

/// The shard's poller: drains the shard feed (into the hub, in shared mode)
/// and, in per-client mode, every session's own consumer into its outbox.
async fn poll(ctx: Rc<Context>) {
    // Shared mode: whether live updates go out at once (push interval 0).
    let shared_now = match ctx.config.fanout {
        Fanout::Shared { push_interval } => Some(push_interval.is_zero()),
        Fanout::PerClient => None,
    };
    while !ctx.shutdown.requested() {
        let mut moved = ctx.feed.as_ref().map_or(0, |feed| {
            feed.drain(&ctx.metrics, |payload, bar| {
                if let Some(now) = shared_now {
                    ctx.hub.offer(payload, bar, now);
                }
            })
        });
        match shared_now {
            Some(true) => ctx.hub.push_now().await,
            Some(false) => {}
            None => moved += per_client::drain_all(&ctx),
        }
        if moved == 0 {
            ctx.arrivals.wait(POLL_IDLE).await;
        } else {
            // Let the writers that were just woken send before the next pass.
            futures_lite::future::yield_now().await;
        }
    }
}
