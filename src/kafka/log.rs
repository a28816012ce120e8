//! librdkafka's own messages, in klinecast's log. During a broker outage
//! every client reports every failed connection attempt; passing them on at
//! ERROR would bury everything else. They go out at WARN, at most one per
//! [`LOG_INTERVAL_S`] per process, with a count of what was held back.
//!
//! [`Diagnosis`] is the context of a short-lived client whose failure must
//! be explained: it keeps librdkafka's first connection error.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// Seconds between two librdkafka warnings in the log.
pub const LOG_INTERVAL_S: u64 = 10;

/// Unix second of the last warning logged.
static LAST_LOGGED_S: AtomicU64 = AtomicU64::new(0);
/// Warnings held back since then.
static SUPPRESSED: AtomicU64 = AtomicU64::new(0);

/// Context of klinecast's consumers (and the base of its producer's).
#[derive(Debug, Clone, Copy, Default)]
pub struct KafkaLog;

impl ClientContext for KafkaLog {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_message(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        warn_limited(&format!("{error}: {reason}"));
    }
}

impl ConsumerContext for KafkaLog {}

/// Context of a client that checks whether the cluster answers. librdkafka
/// reports why a connection failed (TLS handshake, authentication, a
/// plaintext client on a TLS listener) only as error events; a request that
/// then times out says just "timed out". This keeps the first such reason
/// so the failure can name it.
#[derive(Debug, Default)]
pub struct Diagnosis {
    /// librdkafka's first connection failure: an error report other than
    /// "all brokers are down", or a `FAIL` log line.
    first_error: Mutex<Option<String>>,
}

impl Diagnosis {
    /// The first connection error reported, if any.
    pub fn first_error(&self) -> Option<String> {
        self.first_error.lock().ok().and_then(|first| first.clone())
    }

    fn keep(&self, reason: &str) {
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert_with(|| reason.to_owned());
        }
    }
}

impl ClientContext for Diagnosis {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        // The failure this client exists for is returned as an error with its
        // reason; its log lines would only repeat it.
        tracing::debug!(target: "librdkafka", ?level, "{facility}: {message}");
        // Some failures come only as a log line: a plaintext client whose
        // connection a TLS listener closes is "Disconnected", logged at info.
        if facility == "FAIL" {
            // Without the "[thrd:...]: " prefix of log lines: it names the
            // thread, and error reports do not have it.
            let message = message.strip_prefix("[thrd:").and_then(|m| m.split_once("]: ")).map_or(message, |(_, m)| m);
            self.keep(message);
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", %error, "{reason}");
        // "1/1 brokers are down" follows the real reason; it is no reason itself.
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            return;
        }
        self.keep(reason);
    }
}

impl ConsumerContext for Diagnosis {}

/// Routes one librdkafka log line: problems as rate-limited warnings, the
/// rest at debug level.
pub fn log_message(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error
        | RDKafkaLogLevel::Warning => warn_limited(&format!("{facility}: {message}")),
        _ => tracing::debug!(target: "librdkafka", "{facility}: {message}"),
    }
}

/// Logs `message` at WARN unless another was logged in the last
/// [`LOG_INTERVAL_S`] seconds; counts it otherwise.
pub fn warn_limited(message: &str) {
    let now_s = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let last = LAST_LOGGED_S.load(Ordering::Relaxed);
    if now_s.saturating_sub(last) < LOG_INTERVAL_S
        || LAST_LOGGED_S.compare_exchange(last, now_s, Ordering::Relaxed, Ordering::Relaxed).is_err()
    {
        SUPPRESSED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let held_back = SUPPRESSED.swap(0, Ordering::Relaxed);
    tracing::warn!(target: "librdkafka", held_back, "{message}");
}
