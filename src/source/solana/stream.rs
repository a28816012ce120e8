//! The live stream: one WebSocket to the node (ws:// or wss://), a
//! `logsSubscribe` per program, notifications parsed into transactions and
//! sent to the source; a task on the ingest executor.
//!
//! A dead or stale stream is found and replaced: a socket error or close
//! ends the connection at once; otherwise the task pings every
//! `ping_interval`, and a connection on which nothing (no notification, no
//! pong) arrived for `stale_after` is dropped. Reconnects back off
//! exponentially (0.5 s doubling to 30 s, ±20 % jitter, back to 0.5 s once a
//! connection held for a minute).

use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_tungstenite::WebSocketStream;
use futures_lite::{AsyncRead, AsyncWrite, StreamExt};
use glommio::net::TcpStream;
use glommio::timer::sleep;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use tungstenite::Message;
use tungstenite::protocol::WebSocketConfig;

use super::metrics::LiveMetrics;
use crate::codec::event::Program;
use crate::source::tx::{self, TxEvents};

/// Largest WebSocket message accepted; a bigger one ends the connection
/// (counted as malformed; the gap is backfilled). Real notifications are a
/// few KiB to tens of KiB.
pub const MAX_MESSAGE_BYTES: usize = 4 << 20;
/// Time to connect, handshake and have both subscriptions confirmed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// First reconnect delay.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest reconnect delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A connection that held this long resets the backoff.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// What the stream tells the source.
#[derive(Debug)]
pub enum StreamEvent {
    /// Subscribed to both programs on a new connection.
    Connected,
    /// One notification's transaction, with the program whose
    /// subscription delivered it.
    Tx(Program, Box<TxEvents>),
    /// The connection is gone.
    Disconnected(String),
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// `ws://` or `wss://` URL.
    pub url: String,
    /// `confirmed` or `finalized`.
    pub commitment: &'static str,
    /// Interval of pings.
    pub ping_interval: Duration,
    /// A connection silent this long is dropped.
    pub stale_after: Duration,
    /// The only root trusted for wss, PEM (else the system's roots).
    pub ca_pem: Option<Vec<u8>>,
}

/// Runs until the source goes away: connect, stream, reconnect.
pub async fn run(config: StreamConfig, events: flume::Sender<StreamEvent>, metrics: Arc<LiveMetrics>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(std::process::id().into());
    let mut backoff = FIRST_BACKOFF;
    let mut logged = 0u64;
    loop {
        if events.is_disconnected() {
            return;
        }
        let started = Instant::now();
        let reason = match connect_and_stream(&config, &events, &metrics).await {
            Ok(reason) => reason,
            Err(reason) => reason,
        };
        metrics.connected.store(0, Ordering::Relaxed);
        metrics.reconnects.fetch_add(1, Ordering::Relaxed);
        metrics.down(&reason);
        // One log line per failure for the first few, then every 10th, so a
        // node that is down for hours does not flood the log.
        logged += 1;
        if logged <= 5 || logged.is_multiple_of(10) {
            tracing::warn!(url = %redact(&config.url), %reason, failures = logged, "Solana RPC stream down; reconnecting");
        }
        if events.send_async(StreamEvent::Disconnected(reason)).await.is_err() {
            return;
        }
        if started.elapsed() >= HEALTHY_AFTER {
            backoff = FIRST_BACKOFF;
            logged = 0;
        }
        let jitter = rng.random_range(0.8..1.2);
        sleep(backoff.mul_f64(jitter)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection, until it fails; returns why it ended.
async fn connect_and_stream(
    config: &StreamConfig,
    events: &flume::Sender<StreamEvent>,
    metrics: &LiveMetrics,
) -> Result<String, String> {
    let target = Target::parse(&config.url)?;
    let addr = resolve(&target).await?;
    let connect = TcpStream::connect_timeout(addr, CONNECT_TIMEOUT);
    let stream = connect.await.map_err(|e| format!("connect to {}:{}: {e}", target.host, target.port))?;
    let _ = stream.set_nodelay(true);
    if target.tls {
        let mut connector = async_native_tls::TlsConnector::new();
        if let Some(pem) = &config.ca_pem {
            let cert = native_tls::Certificate::from_pem(pem).map_err(|e| format!("RPC CA file: {e}"))?;
            connector = connector.add_root_certificate(cert);
        }
        let tls = connector.connect(target.host.as_str(), stream).await.map_err(|e| format!("TLS: {e}"))?;
        session(config, &target, tls, events, metrics).await
    } else {
        session(config, &target, stream, events, metrics).await
    }
}

/// The WebSocket part of a connection.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    config: &StreamConfig,
    target: &Target,
    stream: S,
    events: &flume::Sender<StreamEvent>,
    metrics: &LiveMetrics,
) -> Result<String, String> {
    let mut ws_config = WebSocketConfig::default();
    ws_config.max_message_size = Some(MAX_MESSAGE_BYTES);
    ws_config.max_frame_size = Some(MAX_MESSAGE_BYTES);
    let handshake = async_tungstenite::client_async_with_config(config.url.as_str(), stream, Some(ws_config));
    let (mut ws, _) = with_timeout(CONNECT_TIMEOUT, handshake)
        .await
        .ok_or("WebSocket handshake timed out")?
        .map_err(|e| format!("WebSocket handshake with {}: {e}", target.host))?;
    let subscriptions = subscribe(&mut ws, config.commitment).await?;
    metrics.up();
    if events.send_async(StreamEvent::Connected).await.is_err() {
        return Ok("source gone".into());
    }
    let mut last_heard = Instant::now();
    let mut next_ping = Instant::now() + config.ping_interval;
    loop {
        let now = Instant::now();
        if now.duration_since(last_heard) >= config.stale_after {
            return Err(format!("stale: nothing for {} s", config.stale_after.as_secs()));
        }
        if now >= next_ping {
            ws.send(Message::Ping(Vec::new().into())).await.map_err(|e| format!("ping: {e}"))?;
            next_ping = now + config.ping_interval;
        }
        let wait = next_ping.min(last_heard + config.stale_after).saturating_duration_since(now);
        let Some(message) = with_timeout(wait.max(Duration::from_millis(1)), ws.next()).await else { continue };
        let message = match message {
            Some(Ok(message)) => message,
            Some(Err(tungstenite::Error::Capacity(e))) => {
                metrics.malformed.fetch_add(1, Ordering::Relaxed);
                return Err(format!("message over {MAX_MESSAGE_BYTES} bytes: {e}"));
            }
            Some(Err(e)) => return Err(format!("read: {e}")),
            None => return Ok("closed by the node".into()),
        };
        last_heard = Instant::now();
        match message {
            Message::Text(text) => {
                if let Some((program, tx)) = notification(&text, &subscriptions, metrics)
                    && events.send_async(StreamEvent::Tx(program, Box::new(tx))).await.is_err()
                {
                    return Ok("source gone".into());
                }
            }
            Message::Close(frame) => return Ok(format!("closed by the node: {frame:?}")),
            Message::Binary(_) => {
                metrics.malformed.fetch_add(1, Ordering::Relaxed);
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }
}

/// Sends `logsSubscribe` for both programs (one address each: all the RPC
/// accepts) and waits for both subscription ids.
async fn subscribe<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    commitment: &str,
) -> Result<[(u64, Program); 2], String> {
    for (id, program) in Program::ALL.into_iter().enumerate() {
        let request = json!({
            "jsonrpc": "2.0",
            "id": id + 1,
            "method": "logsSubscribe",
            "params": [{"mentions": [program.address()]}, {"commitment": commitment}],
        });
        ws.send(Message::Text(request.to_string().into())).await.map_err(|e| format!("subscribe: {e}"))?;
    }
    let mut ids: [Option<u64>; 2] = [None, None];
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    while ids.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = with_timeout(left, ws.next()).await.ok_or("no answer to logsSubscribe")?;
        let Some(Ok(Message::Text(text))) = message else {
            match message {
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(format!("subscribe: {e}")),
                None => return Err("closed while subscribing".into()),
            }
        };
        let Ok(reply) = serde_json::from_str::<Value>(&text) else { continue };
        let Some(id) = reply.get("id").and_then(Value::as_u64).filter(|id| (1..=2).contains(id)) else { continue };
        if let Some(error) = reply.get("error") {
            return Err(format!("logsSubscribe refused: {error}"));
        }
        let sub = reply.get("result").and_then(Value::as_u64).ok_or("logsSubscribe: no subscription id")?;
        ids[id as usize - 1] = Some(sub);
    }
    Ok([(ids[0].unwrap_or_default(), Program::PumpFun), (ids[1].unwrap_or_default(), Program::PumpSwap)])
}

/// The transaction of a notification, counting what is wrong with others.
fn notification(text: &str, subscriptions: &[(u64, Program); 2], metrics: &LiveMetrics) -> Option<(Program, TxEvents)> {
    let parsed = match tx::parse_line(text) {
        Ok(parsed) => parsed,
        Err(_) => {
            metrics.malformed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
    };
    let program = subscriptions.iter().find(|(id, _)| Some(*id) == parsed.subscription).map(|(_, p)| *p);
    let Some(program) = program else {
        metrics.unknown_subscription.fetch_add(1, Ordering::Relaxed);
        return None;
    };
    metrics.notifications.fetch_add(1, Ordering::Relaxed);
    Some((program, parsed.tx))
}

/// Waits for `future` at most `limit`.
async fn with_timeout<T>(limit: Duration, future: impl std::future::Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(future.await) }, async {
        sleep(limit).await;
        None
    })
    .await
}

/// Resolves the host on glommio's blocking pool (DNS blocks).
async fn resolve(target: &Target) -> Result<std::net::SocketAddr, String> {
    let name = format!("{}:{}", target.host, target.port);
    let lookup = name.clone();
    let resolved = glommio::executor().spawn_blocking(move || lookup.to_socket_addrs().map(|mut a| a.next())).await;
    resolved.map_err(|e| format!("resolve {name}: {e}"))?.ok_or_else(|| format!("resolve {name}: no address"))
}

/// The parts of a ws(s) URL needed to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// TLS (`wss`).
    pub tls: bool,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl Target {
    /// Parses `ws://host[:port][/path]` or `wss://...`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("wss://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("ws://") {
            (false, rest)
        } else {
            return Err(format!("{}: not a ws:// or wss:// URL", redact(url)));
        };
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let authority = authority.rsplit('@').next().unwrap_or_default();
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
                (host, port.parse().map_err(|_| format!("{}: bad port", redact(url)))?)
            }
            _ => (authority, if tls { 443 } else { 80 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{}: no host", redact(url)));
        }
        Ok(Self { tls, host: host.to_owned(), port })
    }
}

/// A URL with what may be a key left out: the path, query and any user
/// info (providers put API keys in them), for logs and errors.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "<url>".into() };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let hidden = rest.len() > authority.len() && &rest[authority.len()..] != "/";
    format!("{scheme}://{authority}{}", if hidden { "/…" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ws_urls() {
        let t = Target::parse("wss://api.mainnet-beta.solana.com").unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port), (true, "api.mainnet-beta.solana.com", 443));
        let t = Target::parse("ws://127.0.0.1:8900/some/path?api-key=x").unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port), (false, "127.0.0.1", 8900));
        let t = Target::parse("ws://[::1]:8900").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 8900));
        assert!(Target::parse("http://x").is_err());
        assert!(Target::parse("ws://x:notaport").is_err());
    }

    #[test]
    fn redacts_keys_in_urls() {
        assert_eq!(redact("https://mainnet.helius-rpc.com/?api-key=secret"), "https://mainnet.helius-rpc.com/…");
        assert_eq!(redact("wss://user:pw@host:443/key"), "wss://host:443/…");
        assert_eq!(redact("https://api.mainnet-beta.solana.com"), "https://api.mainnet-beta.solana.com");
    }
}
