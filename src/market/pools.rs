//! The pool book: PumpSwap pool → the coin it trades, its quote, and the
//! coin's decimals. Bounded: beyond [`PoolBook::capacity`] new pools are not
//! kept (their trades stay unknown-pool, counted, and the live source asks
//! again), so a flood of pools cannot grow memory without bound.

use rustc_hash::FxHashMap;

use super::oriented;
use crate::codec::amm::PoolMints;
use crate::codec::borsh::Pubkey;
use crate::codec::trade::COIN_DECIMALS;

/// What klinecast needs of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    /// The coin it trades.
    pub coin: Pubkey,
    /// Its quote mint (SOL: wrapped SOL).
    pub quote: Pubkey,
    /// Whether the coin is the pool's base mint (else its quote mint).
    pub coin_is_base: bool,
    /// The coin's decimals (6 for every pump.fun coin, the default when the
    /// source of the mapping does not say).
    pub coin_decimals: u8,
}

/// Pool → [`Pool`], bounded.
#[derive(Debug)]
pub struct PoolBook {
    pools: FxHashMap<Pubkey, Pool>,
    capacity: usize,
    /// Pools not kept because the book was full.
    refused: u64,
}

impl PoolBook {
    /// A book of at most `capacity` pools.
    pub fn new(capacity: usize) -> Self {
        Self { pools: FxHashMap::default(), capacity, refused: 0 }
    }

    /// The most pools kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Pools known.
    pub fn len(&self) -> usize {
        self.pools.len()
    }

    /// Whether no pool is known.
    pub fn is_empty(&self) -> bool {
        self.pools.is_empty()
    }

    /// Pools not kept because the book was full.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// The pool, if known.
    #[inline]
    pub fn get(&self, pool: &Pubkey) -> Option<&Pool> {
        self.pools.get(pool)
    }

    /// Adds or replaces a pool; false if the book is full.
    pub fn insert(&mut self, mints: &PoolMints) -> bool {
        let (coin_is_base, quote) = oriented(mints);
        let coin = if coin_is_base { mints.base_mint } else { mints.quote_mint };
        let coin_decimals = match mints.decimals {
            Some((base, quote)) => {
                if coin_is_base {
                    base
                } else {
                    quote
                }
            }
            None => COIN_DECIMALS,
        };
        if self.pools.len() >= self.capacity && !self.pools.contains_key(&mints.pool) {
            self.refused += 1;
            return false;
        }
        self.pools.insert(mints.pool, Pool { coin, quote, coin_is_base, coin_decimals });
        true
    }
}
