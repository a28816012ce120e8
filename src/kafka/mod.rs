//! Apache Kafka as every part of klinecast sees it: every librdkafka setting
//! ([`settings`]), the topic layout (partition by window, key
//! `key_<seconds>`, [`topic`]), the reader and where it starts ([`reader`]),
//! and librdkafka's log ([`log`]). Shared by the producer ([`crate::sink`]),
//! the gateway and `tail`, the way one Kafka module serves both the source
//! and the sink of a pipeline. It knows nothing of what a bar means and
//! never produces one.

pub mod log;
pub mod reader;
pub mod settings;
pub mod topic;

use thiserror::Error;

pub use reader::{Reader, Span};
pub use settings::KafkaConfig;

/// Why no broker let the client in, as far as klinecast can tell; each
/// kind comes with the fix to suggest. The kind is klinecast's, stable
/// across librdkafka versions; the reason next to it is librdkafka's text
/// and may be worded differently from run to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    /// No broker answered at all (refused, unresolvable, timed out).
    NoBroker,
    /// A broker answered, but the connection's security (TLS, SASL, the
    /// security protocol) does not match its listener.
    Security,
}

impl Unreachable {
    /// Classifies librdkafka's `reason` for a failed connection.
    pub fn of(reason: &str) -> Self {
        if about_security(reason) { Self::Security } else { Self::NoBroker }
    }

    /// What the user should check.
    pub fn hint(self) -> &'static str {
        match self {
            Self::NoBroker => {
                "Start a local broker with `scripts/kafka-up.sh` (or `docker run -d -p 9092:9092 apache/kafka`), \
                 or point --brokers / KLINECAST_BROKERS at your cluster."
            }
            Self::Security => {
                "A broker answered, but the connection failed: check --kafka-config against that listener: \
                 security.protocol (default plaintext; a TLS listener drops a plaintext client during its first \
                 request, APIVERSION_QUERY), ssl.ca.location (the CA that signed the broker's certificate), \
                 sasl.mechanisms, sasl.username and sasl.password (docs/operations.md §3)."
            }
        }
    }
}

/// Why a Kafka client could not start: no broker, the topic, or the
/// configuration.
#[derive(Debug, Error)]
pub enum ConnectError {
    /// No broker answered at the configured address, or none let the client
    /// in (TLS handshake, authentication, wrong security protocol).
    #[error("Kafka is not reachable at {brokers}: {reason}\n  {}", kind.hint())]
    Unreachable {
        /// The bootstrap servers tried.
        brokers: String,
        /// Why, in librdkafka's words: the first connection error it
        /// reported if one is known (e.g. "SSL handshake failed: ...
        /// certificate verify failed"), else the failed request's error.
        reason: String,
        /// What kind of failure that is, and so what to check.
        kind: Unreachable,
    },
    /// The topic could not be created or described.
    #[error("topic {topic:?}: {reason}")]
    Topic {
        /// The topic.
        topic: String,
        /// What went wrong.
        reason: String,
    },
    /// librdkafka refused the configuration (for example a bad
    /// `--kafka-config` setting).
    #[error("Kafka client configuration rejected: {0}")]
    Config(rdkafka::error::KafkaError),
}

impl ConnectError {
    /// Kafka could not be reached at `config.brokers`, for `reason`; the hint
    /// is about TLS and SASL when the reason points there.
    pub fn unreachable(config: &KafkaConfig, reason: String) -> Self {
        Self::Unreachable { brokers: config.brokers.clone(), kind: Unreachable::of(&reason), reason }
    }
}

/// Whether librdkafka's `reason` for a failed connection is about TLS, SASL
/// or the security protocol. Reasons start with the broker's name
/// (`sasl_ssl://host:port/bootstrap: `), which is skipped: its scheme says
/// nothing about the failure.
fn about_security(reason: &str) -> bool {
    let text = match reason.split_once(": ") {
        Some((broker, rest)) if broker.contains('/') => rest,
        _ => reason,
    };
    let text = text.to_ascii_lowercase();
    let named = ["ssl", "sasl", "certificate", "authentica", "security.protocol", "apiversion_query"]
        .iter()
        .any(|w| text.contains(w));
    named || past_connect(&text)
}

/// Whether librdkafka's "(after N ms in state X)" names a state after the
/// TCP connect (TLS handshake, authentication, the first requests): then a
/// broker did answer, whatever the rest of the text says.
fn past_connect(text: &str) -> bool {
    let Some((_, after)) = text.rsplit_once("in state ") else { return false };
    let state: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    !state.is_empty() && !matches!(state.as_str(), "init" | "down" | "try_connect" | "connect")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_hints_at_tls_and_sasl_only_when_the_reason_does() {
        let config = KafkaConfig { brokers: "b:9093".into(), topic: "t".into(), overrides: Vec::new() };
        let hint = |reason: &str| match ConnectError::unreachable(&config, reason.into()) {
            ConnectError::Unreachable { kind, .. } => kind,
            _ => unreachable!(),
        };
        // Texts as librdkafka 2.x words them.
        for reason in [
            "ssl://b:9093/bootstrap: error:0A000086:SSL routines::certificate verify failed (after 5ms in state SSL_HANDSHAKE)",
            "sasl_ssl://b:9093/bootstrap: SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 316ms in state AUTH_REQ)",
            "b:9093/bootstrap: Disconnected: connection closed by peer: receive 0 after POLLIN (after 4ms in state APIVERSION_QUERY)",
            // The same TLS failure, worded differently from run to run.
            "ssl://b:9092/bootstrap: SSL handshake failed: Disconnected: connection closed by peer (after 2ms in state SSL_HANDSHAKE)",
            "ssl://b:9092/bootstrap: SSL connection closed by peer (after 3ms in state SSL_HANDSHAKE)",
            "b:9093/bootstrap: Receive failed: Connection reset by peer (after 1ms in state UP)",
        ] {
            assert_eq!(hint(reason), Unreachable::Security, "{reason}");
        }
        for reason in [
            "ssl://b:9093/bootstrap: Connect to ipv4#10.0.0.1:9093 failed: Connection refused (after 0ms in state CONNECT)",
            "sasl_ssl://b:9093/bootstrap: Failed to resolve 'b:9093': Name or service not known",
            "Meta data fetch error: OperationTimedOut (Local: Timed out)",
        ] {
            assert_eq!(hint(reason), Unreachable::NoBroker, "{reason}");
        }
    }
}
