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
//! - [`logs`], [`tx`]: sans-io reading of Solana logs and RPC messages,
//!   shared by the replay and the live source.

pub mod logs;
pub mod mock;
pub mod replay;
pub mod solana;
pub mod tx;

use std::time::Duration;

use crate::codec::amm::PoolMints;
use crate::codec::borsh::Pubkey;
use crate::codec::event::{Position, Program};

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
    /// The wall clock less an allowed lateness, held back while the source
    /// has a gap to fill ([`Source::hold_clock_at`]); trades close only
    /// their own series' earlier bar.
    Live,
}

/// Something the market needs to price a trade, which a live source can
/// ask its node for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// A PumpSwap pool's mints (and their decimals).
    Pool(Pubkey),
    /// A quote mint's decimals.
    Decimals(Pubkey),
}

impl Lookup {
    /// The account looked up.
    pub fn key(&self) -> Pubkey {
        match self {
            Self::Pool(key) | Self::Decimals(key) => *key,
        }
    }
}

/// An answer to a [`Lookup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fact {
    /// A pool's mints.
    Pool(PoolMints),
    /// A mint's decimals.
    Decimals {
        /// The mint.
        mint: Pubkey,
        /// Its decimals.
        decimals: u8,
    },
    /// The node has no such account (or not of the kind asked): the trades
    /// waiting for it cannot be priced.
    Missing(Lookup),
}

/// One event record a source hands out.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The program that emitted it, when the source knows.
    pub program: Option<Program>,
    /// The Anchor event bytes (discriminator first).
    pub bytes: &'a [u8],
    /// Where it sits on chain (zero where the source has no slots).
    pub position: Position,
}

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
