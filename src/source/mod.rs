//! Where trades come from. A source hands out raw `TradeEvent` records (the
//! bytes Solana emits); decoding and aggregation happen downstream, so the
//! mock and the replay exercise the same path as real data.
//!
//! Sources never block on the network and never allocate per record.

pub mod mock;
pub mod replay;

use std::time::Duration;

pub use mock::{MockConfig, MockSource};
pub use replay::{ReplayConfig, ReplaySource};

/// Most records one call to a source's `fill` hands out, so the ingest loop
/// gets back regularly to the clock, the producer and shutdown.
pub const MAX_BATCH: usize = 4096;

/// What a source said after a `fill`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filled {
    /// Records were handed out; ask again soon.
    Records(usize),
    /// Nothing due now; ask again after this long.
    Idle(Duration),
    /// No more records will come (end of a replay).
    Finished,
}

/// Which clock closes bars for this source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockKind {
    /// The wall clock: bars close when real time passes their end.
    Wall,
    /// Event time: bars close when a later trade arrives.
    Event,
}

/// A source of raw TradeEvent records.
pub enum Source {
    /// Simulated bonding-curve trades.
    Mock(Box<MockSource>),
    /// Trades read back from `Program data:` log lines.
    Replay(ReplaySource),
}

impl Source {
    /// Hands out at most `max` records to `on_record`.
    pub fn fill(&mut self, max: usize, on_record: impl FnMut(&[u8])) -> Filled {
        match self {
            Self::Mock(s) => s.fill(max, on_record),
            Self::Replay(s) => s.fill(max, on_record),
        }
    }

    /// The clock that closes bars for this source.
    pub fn clock(&self) -> ClockKind {
        match self {
            Self::Mock(_) => ClockKind::Wall,
            Self::Replay(_) => ClockKind::Event,
        }
    }

    /// A one-line summary for the end of a run.
    pub fn summary(&self) -> String {
        match self {
            Self::Mock(s) => format!("mock: {} events generated", s.generated()),
            Self::Replay(s) => s.stats().to_string(),
        }
    }
}
