//! The live source's counters and health, shown by `/metrics` and
//! `/healthz` of `serve` and of `ingest --metrics-listen`. Atomics written
//! with relaxed ordering by the stream task, the source and the RPC workers;
//! the status text behind a mutex touched only on connect and disconnect.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::metrics::{RenderMetrics, labeled, sample};

/// Upper bounds (seconds) of the notification-lag histogram buckets.
pub const LAG_BUCKETS_S: [f64; 10] = [0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0];

/// RPC methods counted by name.
const METHODS: [&str; 4] = ["getSignaturesForAddress", "getTransaction", "getMultipleAccounts", "other"];

/// Every counter of the live source.
#[derive(Debug, Default)]
pub struct LiveMetrics {
    /// 1 while the WebSocket is subscribed to both programs.
    pub connected: AtomicU64,
    /// Connections lost (and retried).
    pub reconnects: AtomicU64,
    /// `logsNotification`s received.
    pub notifications: AtomicU64,
    /// Transactions skipped because they failed (`err` not null).
    pub failed_tx: AtomicU64,
    /// Transactions whose log the node cut (`Log truncated`).
    pub truncated_logs: AtomicU64,
    /// Truncated transactions whose remaining events a `getTransaction`
    /// recovered.
    pub truncated_recovered: AtomicU64,
    /// `Program data:` lines of other programs (not read).
    pub foreign_lines: AtomicU64,
    /// Events dropped as already applied (same signature and event index).
    pub duplicates: AtomicU64,
    /// Transactions fetched by backfill and handed out.
    pub backfilled: AtomicU64,
    /// Events a restart's replay dropped because Kafka already holds their
    /// trades (by signature and event index).
    pub already_in_kafka: AtomicU64,
    /// Transactions that a gap's first listing missed and its second one
    /// found (the node had not indexed them yet).
    pub found_on_second_listing: AtomicU64,
    /// Live transactions of a slot far below the resume point: the chain
    /// went backwards (a reset cluster, another network, a wrong URL).
    pub chain_regressions: AtomicU64,
    /// Gaps not filled completely (larger than the backfill bound, or
    /// transactions the node no longer had).
    pub unrecoverable_gaps: AtomicU64,
    /// Transactions known to be lost in those gaps (at least).
    pub lost_transactions: AtomicU64,
    /// Messages that were not JSON-RPC notifications or replies.
    pub malformed: AtomicU64,
    /// `Program data:` payloads (or inner-instruction data) of the two
    /// programs that were not valid base64 / base58.
    pub bad_data: AtomicU64,
    /// Notifications for subscriptions this source did not make.
    pub unknown_subscription: AtomicU64,
    /// Live transactions held while a backfill runs.
    pub buffered: AtomicU64,
    /// 1 while a gap is being filled (bars are held open meanwhile).
    pub backfilling: AtomicU64,
    /// HTTP requests made, per method ([`METHODS`] order).
    pub rpc_requests: [AtomicU64; 4],
    /// HTTP 429 answers.
    pub rpc_429: AtomicU64,
    /// Failed HTTP attempts (429 included).
    pub rpc_errors: AtomicU64,
    /// Notification lag histogram, wall clock − block time of the first
    /// event: counts per bucket of [`LAG_BUCKETS_S`], then the overflow.
    pub lag_buckets: [AtomicU64; 11],
    /// Sum of lags, milliseconds.
    pub lag_sum_ms: AtomicU64,
    /// What `/healthz` says.
    status: Mutex<Status>,
}

#[derive(Debug, Default)]
struct Status {
    /// When the connection went down, if it is down.
    down_since: Option<Instant>,
    /// The last connection error.
    last_error: String,
    /// Whether it ever connected.
    ever_connected: bool,
}

impl LiveMetrics {
    /// Counts a request of `method`.
    pub fn rpc_request(&self, method: &str) {
        let at = METHODS.iter().position(|m| *m == method).unwrap_or(METHODS.len() - 1);
        self.rpc_requests[at].fetch_add(1, Ordering::Relaxed);
    }

    /// Records one notification's lag.
    pub fn lag(&self, seconds: f64) {
        let seconds = seconds.max(0.0);
        let at = LAG_BUCKETS_S.iter().position(|&b| seconds <= b).unwrap_or(LAG_BUCKETS_S.len());
        self.lag_buckets[at].fetch_add(1, Ordering::Relaxed);
        self.lag_sum_ms.fetch_add((seconds * 1000.0) as u64, Ordering::Relaxed);
    }

    /// The WebSocket is subscribed.
    pub fn up(&self) {
        self.connected.store(1, Ordering::Relaxed);
        if let Ok(mut status) = self.status.lock() {
            status.down_since = None;
            status.ever_connected = true;
        }
    }

    /// The WebSocket is down, for `reason`.
    pub fn down(&self, reason: &str) {
        self.connected.store(0, Ordering::Relaxed);
        if let Ok(mut status) = self.status.lock() {
            status.down_since.get_or_insert_with(Instant::now);
            status.last_error = reason.chars().take(300).collect();
        }
    }

    /// `None` when healthy, else why not.
    pub fn status(&self) -> Option<String> {
        let regressed = self.chain_regressions.load(Ordering::Relaxed);
        if regressed > 0 {
            return Some(format!(
                "the node's slots went backwards: {regressed} transactions far below the resume slot of the bars \
                 in Kafka (a reset cluster, another network or a wrong --rpc-url?)"
            ));
        }
        if self.connected.load(Ordering::Relaxed) == 1 {
            return None;
        }
        let status = self.status.lock().ok()?;
        let since = status.down_since.map(|s| s.elapsed().as_secs()).unwrap_or_default();
        let what = if status.ever_connected { "disconnected" } else { "not connected yet" };
        let error = if status.last_error.is_empty() { "connecting" } else { status.last_error.as_str() };
        Some(format!("Solana RPC node {what} for {since} s ({error}); retrying with backoff"))
    }
}

impl RenderMetrics for LiveMetrics {
    fn unhealthy(&self) -> Option<String> {
        self.status()
    }

    fn render(&self, out: &mut String) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let plain: [(&str, &str, &str, &AtomicU64); 20] = [
            (
                "klinecast_solana_already_in_kafka_total",
                "Events a restart's replay dropped: their trades are in Kafka",
                "counter",
                &self.already_in_kafka,
            ),
            (
                "klinecast_solana_found_on_second_listing_total",
                "Transactions a gap's second listing found and its first missed",
                "counter",
                &self.found_on_second_listing,
            ),
            (
                "klinecast_solana_chain_regressions_total",
                "Live transactions far below the resume slot (the chain went backwards)",
                "counter",
                &self.chain_regressions,
            ),
            (
                "klinecast_solana_bad_event_data_total",
                "Event payloads that were not valid base64/base58",
                "counter",
                &self.bad_data,
            ),
            ("klinecast_solana_connected", "1 while subscribed to both programs", "gauge", &self.connected),
            (
                "klinecast_solana_reconnects_total",
                "WebSocket connections lost and retried",
                "counter",
                &self.reconnects,
            ),
            ("klinecast_solana_notifications_total", "logsNotifications received", "counter", &self.notifications),
            ("klinecast_solana_failed_tx_skipped_total", "Failed transactions skipped", "counter", &self.failed_tx),
            (
                "klinecast_solana_truncated_logs_total",
                "Transactions whose log the node cut",
                "counter",
                &self.truncated_logs,
            ),
            (
                "klinecast_solana_truncated_recovered_total",
                "Truncated transactions completed by getTransaction",
                "counter",
                &self.truncated_recovered,
            ),
            (
                "klinecast_solana_foreign_program_lines_total",
                "Program data lines of other programs",
                "counter",
                &self.foreign_lines,
            ),
            (
                "klinecast_solana_duplicates_dropped_total",
                "Events already applied, dropped",
                "counter",
                &self.duplicates,
            ),
            (
                "klinecast_solana_backfilled_transactions_total",
                "Transactions fetched by backfill",
                "counter",
                &self.backfilled,
            ),
            (
                "klinecast_solana_unrecoverable_gaps_total",
                "Gaps not completely filled",
                "counter",
                &self.unrecoverable_gaps,
            ),
            (
                "klinecast_solana_lost_transactions_total",
                "Transactions known lost in such gaps",
                "counter",
                &self.lost_transactions,
            ),
            (
                "klinecast_solana_malformed_messages_total",
                "WebSocket messages that were not notifications",
                "counter",
                &self.malformed,
            ),
            (
                "klinecast_solana_unknown_subscription_total",
                "Notifications of unknown subscriptions",
                "counter",
                &self.unknown_subscription,
            ),
            (
                "klinecast_solana_buffered_transactions",
                "Live transactions held during a backfill",
                "gauge",
                &self.buffered,
            ),
            ("klinecast_solana_backfilling", "1 while a gap is being filled", "gauge", &self.backfilling),
            ("klinecast_solana_rpc_429_total", "HTTP 429 answers (backed off)", "counter", &self.rpc_429),
        ];
        for (name, help, kind, value) in plain {
            sample(out, name, help, kind, load(value));
        }
        sample(out, "klinecast_solana_rpc_errors_total", "Failed HTTP attempts", "counter", load(&self.rpc_errors));
        labeled(
            out,
            "klinecast_solana_rpc_requests_total",
            "HTTP JSON-RPC requests, by method",
            "counter",
            "method",
            METHODS.iter().zip(&self.rpc_requests).map(|(m, c)| (*m, load(c))),
        );
        let name = "klinecast_solana_notification_lag_seconds";
        out.push_str(&format!("# HELP {name} Wall clock minus block time at notification\n# TYPE {name} histogram\n"));
        let mut cumulative = 0;
        for (bound, count) in LAG_BUCKETS_S.iter().zip(&self.lag_buckets) {
            cumulative += load(count);
            out.push_str(&format!("{name}_bucket{{le=\"{bound}\"}} {cumulative}\n"));
        }
        cumulative += load(&self.lag_buckets[LAG_BUCKETS_S.len()]);
        out.push_str(&format!("{name}_bucket{{le=\"+Inf\"}} {cumulative}\n"));
        out.push_str(&format!("{name}_sum {}\n{name}_count {cumulative}\n", load(&self.lag_sum_ms) as f64 / 1000.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_histogram_is_cumulative_prometheus_text() {
        let m = LiveMetrics::default();
        m.lag(0.2);
        m.lag(1.2);
        m.lag(1000.0);
        let mut text = String::new();
        m.render(&mut text);
        assert!(text.contains("klinecast_solana_notification_lag_seconds_bucket{le=\"0.5\"} 1\n"));
        assert!(text.contains("klinecast_solana_notification_lag_seconds_bucket{le=\"1.5\"} 2\n"));
        assert!(text.contains("klinecast_solana_notification_lag_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.lines().all(|l| l.starts_with('#') || l.split(' ').count() == 2), "{text}");
        assert!(m.status().is_some_and(|s| s.contains("not connected yet")));
        m.up();
        assert_eq!(m.status(), None);
        m.down("connection refused");
        assert!(m.status().is_some_and(|s| s.contains("connection refused")));
    }
}
