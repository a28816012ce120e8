//! librdkafka's own messages, in klinecast's log. During a broker outage
//! every client reports every failed connection attempt; passing them on at
//! ERROR would bury everything else. They go out at WARN, at most one per
//! [`LOG_INTERVAL`] per process, with a count of what was held back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::KafkaError;

/// Seconds between two librdkafka warnings in the log.
pub const LOG_INTERVAL_S: u64 = 10;

/// Unix second of the last warning logged.
static LAST_LOGGED_S: AtomicU64 = AtomicU64::new(0);
/// Warnings held back since then.
static SUPPRESSED: AtomicU64 = AtomicU64::new(0);

/// Context of klinecast's consumers (and the base of its producer's).
#[derive(Debug, Clone, Copy, Default)]
pub struct KafkaLog;

/// A consumer reading partitions by assignment.
pub type Reader = BaseConsumer<KafkaLog>;

impl ClientContext for KafkaLog {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_message(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        warn_limited(&format!("{error}: {reason}"));
    }
}

impl ConsumerContext for KafkaLog {}

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
