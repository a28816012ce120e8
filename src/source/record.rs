//! What every source hands out (event records), says after a fill, and is
//! asked by the market (lookups and their answers).

use std::time::Duration;

use crate::codec::amm::PoolMints;
use crate::codec::borsh::Pubkey;
use crate::codec::event::{Position, Program};

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
    /// has a gap to fill ([`Source::hold_clock_at`](super::Source::hold_clock_at)); trades close only
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
