//! Gateway counters and their Prometheus text form. Counters are atomics
//! written with relaxed ordering from every shard (no locks in the data
//! path); each observable event has one named method, so metric names never
//! appear as literals in hot loops.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use super::transport::Transport;
use super::transport::registry::{MAX_TRANSPORTS, TRANSPORTS, index_of};

/// Every gateway counter.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Open connections (HTTP and WebSocket).
    pub connections: AtomicI64,
    /// Open sessions per transport, in [`TRANSPORTS`] order.
    pub sessions: [AtomicI64; MAX_TRANSPORTS],
    /// Connections accepted since start.
    pub accepted: AtomicU64,
    /// Connections refused at the connection limits.
    pub refused: AtomicU64,
    /// HTTP requests answered, any status.
    pub http_requests: AtomicU64,
    /// Malformed HTTP requests (answered 400/431).
    pub http_bad: AtomicU64,
    /// WebSocket frames sent (bars, acks, errors).
    pub frames_sent: AtomicU64,
    /// Bytes of WebSocket payloads sent.
    pub bytes_sent: AtomicU64,
    /// Bars forwarded to clients.
    pub bars_sent: AtomicU64,
    /// Commands received.
    pub commands: AtomicU64,
    /// Commands refused with a JSON error.
    pub command_errors: AtomicU64,
    /// Kafka consumers alive (per-client mode: one per subscribed client).
    pub consumers: AtomicI64,
    /// Kafka errors seen by consumers.
    pub kafka_errors: AtomicU64,
    /// Kafka messages that were not valid bars (skipped).
    pub malformed_messages: AtomicU64,
    /// Sessions closed because they sent too much or answered nothing.
    pub protocol_closes: AtomicU64,
    /// Queued updates dropped because a newer one of the same series
    /// superseded them (slow clients, shared mode).
    pub conflated: AtomicU64,
    /// Sessions closed for staying over the outbound limit.
    pub slow_closes: AtomicU64,
    /// Largest outbound queue of any connection so far, bytes.
    pub outbound_peak_bytes: AtomicU64,
    /// (mint, window) series a shard's feed did not keep recent bars of
    /// (over its bound): `hist-<w> n` has nothing for them.
    pub series_refused: AtomicU64,
}

impl Metrics {
    /// A session of `transport` started.
    pub fn session_opened(&self, transport: &dyn Transport) {
        self.sessions[index_of(transport)].fetch_add(1, Ordering::Relaxed);
    }

    /// A session of `transport` ended.
    pub fn session_closed(&self, transport: &dyn Transport) {
        self.sessions[index_of(transport)].fetch_sub(1, Ordering::Relaxed);
    }

    /// `frames` WebSocket frames of `bytes` payload bytes in all went out.
    pub fn frames_sent(&self, frames: usize, bytes: usize) {
        self.frames_sent.fetch_add(frames as u64, Ordering::Relaxed);
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Renders every counter in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let gauges: [(&str, &str, &AtomicI64); 3] = [
            ("klinecast_connections", "Open connections", &self.connections),
            // The WebSocket transport is the first in the registry.
            ("klinecast_websockets", "Open WebSocket sessions", &self.sessions[0]),
            ("klinecast_kafka_consumers", "Kafka consumers alive", &self.consumers),
        ];
        let counters: [(&str, &str, &AtomicU64); 16] = [
            ("klinecast_connections_accepted_total", "Connections accepted", &self.accepted),
            ("klinecast_connections_refused_total", "Connections refused at a limit", &self.refused),
            ("klinecast_http_requests_total", "HTTP requests answered", &self.http_requests),
            ("klinecast_http_bad_requests_total", "Malformed HTTP requests", &self.http_bad),
            ("klinecast_ws_frames_sent_total", "WebSocket frames sent", &self.frames_sent),
            ("klinecast_ws_bytes_sent_total", "WebSocket payload bytes sent", &self.bytes_sent),
            ("klinecast_bars_sent_total", "Bars forwarded to clients", &self.bars_sent),
            ("klinecast_commands_total", "Commands received", &self.commands),
            ("klinecast_command_errors_total", "Commands refused", &self.command_errors),
            ("klinecast_kafka_errors_total", "Kafka consumer errors", &self.kafka_errors),
            ("klinecast_kafka_malformed_messages_total", "Kafka messages that were not bars", &self.malformed_messages),
            ("klinecast_protocol_closes_total", "Sessions closed for protocol abuse or silence", &self.protocol_closes),
            ("klinecast_conflated_updates_total", "Queued updates superseded for slow clients", &self.conflated),
            ("klinecast_slow_client_closes_total", "Sessions closed over the outbound limit", &self.slow_closes),
            ("klinecast_outbound_peak_bytes", "Largest outbound queue of one connection", &self.outbound_peak_bytes),
            (
                "klinecast_feed_series_refused_total",
                "Bar updates of series over a shard feed's bound (no recent bars kept)",
                &self.series_refused,
            ),
        ];
        let mut out = String::from(
            "# HELP klinecast_sessions Open client sessions by transport\n# TYPE klinecast_sessions gauge\n",
        );
        for (transport, value) in TRANSPORTS.iter().zip(&self.sessions) {
            let _ = writeln!(
                out,
                "klinecast_sessions{{transport=\"{}\"}} {}",
                transport.name(),
                value.load(Ordering::Relaxed)
            );
        }
        for (name, help, value) in gauges {
            let _ =
                writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}", value.load(Ordering::Relaxed));
        }
        for (name, help, value) in counters {
            let _ =
                writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", value.load(Ordering::Relaxed));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.frames_sent(1, 100);
        Metrics::inc(&m.command_errors);
        let text = m.render();
        assert!(text.contains("# TYPE klinecast_ws_frames_sent_total counter\nklinecast_ws_frames_sent_total 1\n"));
        assert!(text.contains("klinecast_ws_bytes_sent_total 100\n"));
        assert!(text.contains("klinecast_command_errors_total 1\n"));
        assert!(text.lines().all(|l| l.starts_with('#') || l.split(' ').count() == 2));
    }
}
