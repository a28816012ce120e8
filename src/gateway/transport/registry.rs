//! The transports the gateway speaks, each at its own path. A new one is a
//! file beside these and one line in [`TRANSPORTS`].

use super::Transport;
use super::sse::Sse;
use super::websocket::WebSocket;

/// Every transport, in the order metrics list them.
pub static TRANSPORTS: &[&dyn Transport] = &[&WebSocket, &Sse];

/// Most transports there may be (per-transport counters are sized by it).
pub const MAX_TRANSPORTS: usize = 8;

/// The transport serving requests for `path`, if any.
pub fn for_path(path: &str) -> Option<&'static dyn Transport> {
    TRANSPORTS.iter().copied().find(|t| t.path() == path)
}

/// Where a transport sits in [`TRANSPORTS`].
pub fn index_of(transport: &dyn Transport) -> usize {
    TRANSPORTS.iter().position(|t| t.name() == transport.name()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transport_has_its_own_path_and_name() {
        assert!(TRANSPORTS.len() <= MAX_TRANSPORTS);
        for (i, t) in TRANSPORTS.iter().enumerate() {
            assert_eq!(index_of(*t), i);
            assert!(for_path(t.path()).is_some_and(|found| found.name() == t.name()));
        }
        assert!(for_path("/nope").is_none());
    }
}
