//! Where trades come from. A source hands out raw event records (the bytes
//! Solana emits), each with the program that emitted it when known and its
//! position on chain; decoding, pricing and aggregation happen downstream,
//! so the mock and the replay exercise the same path as real data.
//!
//! Sources never block on the network on the ingest core.
//!
//! - [`mock`]: a simulated bonding curve.
//! - [`replay`]: a file or pipe of captured log lines or JSON messages.
//! - [`solana`]: live from an RPC node (WebSocket, backfill, dedupe).
//! - [`record`]: what every source hands out and is asked.
//! - [`open`]: a source from its settings.
//! - [`logs`], [`tx`]: sans-io reading of Solana logs and RPC messages,
//!   shared by the replay and the live source.

pub mod logs;
pub mod mock;
pub mod open;
pub mod record;
pub mod replay;
pub mod solana;
pub mod tx;

pub use mock::{MockConfig, MockSource};
pub use open::{OpenError, SourceConfig, open};
pub use record::{ClockKind, Fact, Filled, Lookup, MAX_BATCH, Record};
pub use replay::{ReplayConfig, ReplaySource};

/// A source of raw event records.
pub enum Source {
    /// Simulated bonding-curve trades.
    Mock(Box<MockSource>),
    /// Trades read back from captured logs and RPC messages.
    Replay(ReplaySource),
    /// Trades live from a Solana RPC node.
    Solana(Box<solana::SolanaSource>),
}

impl Source {
    /// Hands out at most `max` records to `on_record`.
    pub fn fill(&mut self, max: usize, on_record: impl FnMut(Record<'_>)) -> Filled {
        match self {
            Self::Mock(s) => s.fill(max, on_record),
            Self::Replay(s) => s.fill(max, on_record),
            Self::Solana(s) => s.fill(max, on_record),
        }
    }

    /// The clock that closes bars for this source.
    pub fn clock(&self) -> ClockKind {
        match self {
            Self::Mock(_) => ClockKind::Wall,
            Self::Replay(_) => ClockKind::Event,
            Self::Solana(_) => ClockKind::Live,
        }
    }

    /// Whether the source can answer [`Lookup`]s.
    pub fn can_look_up(&self) -> bool {
        matches!(self, Self::Solana(_))
    }

    /// Asks the source to look something up; the answer comes back through
    /// [`Source::take_facts`].
    pub fn look_up(&mut self, lookup: Lookup) {
        if let Self::Solana(s) = self {
            s.look_up(lookup);
        }
    }

    /// Hands out the answers that arrived, and what a replay learned from
    /// the messages it read.
    pub fn take_facts(&mut self, on_fact: impl FnMut(Fact)) {
        match self {
            Self::Replay(s) => s.take_facts(on_fact),
            Self::Solana(s) => s.take_facts(on_fact),
            Self::Mock(_) => {}
        }
    }

    /// Every trade of a slot before this one has been handed out
    /// (`u64::MAX` for sources without slots).
    pub fn safe_slot(&self) -> u64 {
        match self {
            Self::Solana(s) => s.safe_slot(),
            _ => u64::MAX,
        }
    }

    /// A block time the clock must not pass yet: the source has a gap to
    /// fill from there (live sources).
    pub fn hold_clock_at(&self) -> Option<i64> {
        match self {
            Self::Solana(s) => s.hold_clock_at(),
            Self::Mock(s) => s.hold_clock_at(),
            Self::Replay(_) => None,
        }
    }

    /// Seconds the live clock lags the wall clock (allowed lateness).
    pub fn close_delay_s(&self) -> i64 {
        match self {
            Self::Solana(s) => s.close_delay_s(),
            _ => 0,
        }
    }

    /// A one-line summary for the end of a run.
    pub fn summary(&self) -> String {
        match self {
            Self::Mock(s) => format!("mock: {} events generated", s.generated()),
            Self::Replay(s) => s.stats().to_string(),
            Self::Solana(s) => s.summary(),
        }
    }
}
