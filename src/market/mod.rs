//! From decoded events to priced trades: which coin a PumpSwap pool trades,
//! what a coin is quoted in and with how many decimals, and the price of
//! each trade in that quote.
//!
//! [`Market`] lives on the ingest core with the aggregator and is never
//! shared. It learns pools from `CompletePumpAmmMigrationEvent`s and
//! `CreatePoolEvent`s as they go by, from pool accounts the live source
//! fetches, and from a pool map given to a replay; it learns the decimals of
//! quotes outside [`crate::codec::quote::KNOWN_QUOTES`] the same way. When it
//! does not know something it says what ([`Unpriced`]): the caller parks the
//! trade until a lookup answers, or counts it; no price is ever guessed.
//!
//! Prices (SPEC §2.1, `docs/wire-format.md`):
//! - bonding curve: the virtual reserves after the trade, as pump.fun's own
//!   price; quote per whole token;
//! - PumpSwap: the pool's reserves after the trade (the event carries them
//!   before it, and the amounts that moved), so a graduated coin's series
//!   goes on with the same definition of price: the marginal price the next
//!   trade starts from, not the trade's average fill.

pub mod pools;

use thiserror::Error;

use crate::codec::amm::{BUY_EVENT_DISCRIMINATOR, PoolMints, SELL_EVENT_DISCRIMINATOR, SwapEvent};
use crate::codec::bar::Venue;
use crate::codec::borsh::DecodeError;
use crate::codec::borsh::Pubkey;
use crate::codec::event::{self, Event, Position, Program};
use crate::codec::quote;
use crate::codec::trade::{COIN_DECIMALS, TRADE_EVENT_DISCRIMINATOR, TradeFields, pow10};
pub use pools::{Pool, PoolBook};

/// One priced trade: what the aggregator applies. `repr(C)`, as
/// [`TradeFields`] and for the same reason: the hot loop builds it and reads
/// it back at once, so no field may sit at an odd offset.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct Trade {
    /// The coin.
    pub mint: Pubkey,
    /// The quote mint (SOL: wrapped SOL).
    pub quote_mint: Pubkey,
    /// Quote per whole token, after the trade.
    pub price: f64,
    /// Quote paid or received, quote base units.
    pub quote_amount: u64,
    /// Tokens bought or sold, raw units.
    pub token_amount: u64,
    /// Block time, unix seconds.
    pub timestamp: i64,
    /// Where the trade sits on chain.
    pub position: Position,
    /// Decimals of the quote mint.
    pub quote_decimals: u8,
    /// Where it happened.
    pub venue: Venue,
    /// `true` when the coin was bought.
    pub is_buy: bool,
}

/// Why an event gave no trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Unpriced {
    /// Not a trade (a create, a completion, a pool): nothing to apply, maybe
    /// something learned.
    #[error("not a trade")]
    NotATrade,
    /// Reserves of zero: no price can be derived.
    #[error("trade has no price (zero reserves)")]
    NoPrice,
    /// The quote mint's decimals are not known.
    #[error("quote mint's decimals unknown")]
    UnknownQuote(Pubkey),
    /// The pool's mints are not known.
    #[error("PumpSwap pool unknown")]
    UnknownPool(Pubkey),
}

/// Why a record gave no trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// It does not decode.
    Decode(DecodeError),
    /// It decodes, but is no trade that can be priced (yet).
    Unpriced(Unpriced),
}

/// What the market has learned, and the prices it derives.
#[derive(Debug)]
pub struct Market {
    /// Pool → coin, quote and decimals.
    pools: PoolBook,
    /// Decimals of quote mints outside the known table, learned from the
    /// node.
    quote_decimals: rustc_hash::FxHashMap<Pubkey, u8>,
}

/// Most learned quote decimals kept: quotes are few (pump.fun accepts a
/// handful); a flood of distinct ones is refused beyond this (counted by the
/// caller as unknown-quote).
pub const MAX_LEARNED_QUOTES: usize = 4096;

impl Market {
    /// A market that knows at most `max_pools` pools.
    pub fn new(max_pools: usize) -> Self {
        Self { pools: PoolBook::new(max_pools), quote_decimals: Default::default() }
    }

    /// The pools known.
    pub fn pools(&self) -> &PoolBook {
        &self.pools
    }

    /// Learns a pool's mints (from an event, an account, or a pool map).
    /// Returns whether it is known now.
    pub fn learn_pool(&mut self, mints: &PoolMints) -> bool {
        if let Some((base, quote)) = mints.decimals {
            let (coin_is_base, quote_mint) = oriented(mints);
            self.learn_decimals(&quote_mint, if coin_is_base { quote } else { base });
        }
        self.pools.insert(mints)
    }

    /// Learns the decimals of a quote mint.
    pub fn learn_decimals(&mut self, mint: &Pubkey, decimals: u8) {
        if quote::known(mint).is_some() || self.quote_decimals.len() >= MAX_LEARNED_QUOTES {
            return;
        }
        self.quote_decimals.insert(*mint, decimals);
    }

    /// Decimals of a (normalized) quote mint, if known.
    pub fn decimals_of(&self, mint: &Pubkey) -> Option<u8> {
        quote::known(mint).map(|q| q.decimals).or_else(|| self.quote_decimals.get(mint).copied())
    }

    /// The trade a record is, or why there is none: the ingest loop's hot
    /// path. A pump.fun `TradeEvent` or a PumpSwap swap (nearly every
    /// record) is decoded straight into its trade; anything else goes
    /// through [`event::decode`] and [`Market::price`].
    #[inline(always)]
    pub fn trade_of(&mut self, program: Option<Program>, bytes: &[u8], position: Position) -> Result<Trade, Skip> {
        self.with_trade(program, bytes, position, |trade| *trade)
    }

    /// [`Market::trade_of`], handing the trade to `apply` where it is made:
    /// the hot loop's trade then never goes through a `Result` in memory
    /// that both paths write and the loop reads back.
    #[inline(always)]
    pub fn with_trade<R>(
        &mut self,
        program: Option<Program>,
        bytes: &[u8],
        position: Position,
        apply: impl FnOnce(&Trade) -> R,
    ) -> Result<R, Skip> {
        if program != Some(Program::PumpSwap) && bytes.starts_with(&TRADE_EVENT_DISCRIMINATOR) {
            if TradeFields::is_fixed_sol_layout(bytes.len()) {
                return match TradeFields::decode_leading(bytes) {
                    Ok(fields) => sol_trade(&fields, position, apply),
                    Err(error) => Err(Skip::Decode(error)),
                };
            }
            return match TradeFields::decode(bytes) {
                Ok(fields) => self.curve_trade(&fields, position, apply),
                Err(error) => Err(Skip::Decode(error)),
            };
        }
        if program != Some(Program::PumpFun)
            && let Some(head) = bytes.first_chunk::<8>()
            && (*head == BUY_EVENT_DISCRIMINATOR || *head == SELL_EVENT_DISCRIMINATOR)
        {
            // A PumpSwap swap (the other common record) is priced where it
            // is decoded too, without going through `Event`.
            return match SwapEvent::decode(bytes) {
                Ok(swap) => self.swap_trade(&swap, position, apply).map_err(Skip::Unpriced),
                Err(error) => Err(Skip::Decode(error)),
            };
        }
        self.other_trade(program, bytes, position).map(|trade| apply(&trade))
    }

    #[inline(never)]
    fn other_trade(&mut self, program: Option<Program>, bytes: &[u8], position: Position) -> Result<Trade, Skip> {
        let decoded = event::decode(program, bytes).map_err(Skip::Decode)?;
        self.price(&decoded, position).map_err(Skip::Unpriced)
    }

    /// The trade an event is, or why there is none; learns from events that
    /// teach something (migrations, new pools).
    // Always inlined, with `curve_trade`: the hot loop's second step.
    #[inline(always)]
    pub fn price(&mut self, event: &Event, position: Position) -> Result<Trade, Unpriced> {
        match event {
            Event::Trade(trade) => {
                self.curve_trade(&trade.fields(), position, |trade| *trade).map_err(|skip| match skip {
                    Skip::Unpriced(unpriced) => unpriced,
                    Skip::Decode(_) => Unpriced::NotATrade,
                })
            }
            Event::Swap(swap) => self.pool_trade(swap, position),
            Event::Migrated(m) => {
                self.learn_migration(m);
                Err(Unpriced::NotATrade)
            }
            Event::PoolCreated(mints) => {
                self.learn_pool(mints);
                Err(Unpriced::NotATrade)
            }
            Event::Created(_) | Event::Completed(_) => Err(Unpriced::NotATrade),
        }
    }

    /// A coin moved to its PumpSwap pool.
    #[cold]
    fn learn_migration(&mut self, m: &crate::codec::coin::Migrated) {
        let quote_mint = quote::normalize(&m.quote_mint);
        let decimals = self.decimals_of(&quote_mint).map(|q| (COIN_DECIMALS, q));
        self.pools.insert(&PoolMints { pool: m.pool, base_mint: m.mint, quote_mint, decimals });
    }

    // The quote's mint and decimals are chosen apart, not as one tuple: a
    // ([u8; 32], u8) lands at an odd offset on the stack and reading it back
    // stalled the hot loop on store-to-load forwarding.
    //
    // The trade is made where `apply` takes it, once: returned through a
    // `Result` it was copied twice more on the way.
    #[inline(always)]
    fn curve_trade<R>(
        &self,
        event: &TradeFields,
        position: Position,
        apply: impl FnOnce(&Trade) -> R,
    ) -> Result<R, Skip> {
        // Two places make the trade, one per kind of quote: on the SOL one
        // (nearly every trade) the quote and its decimals are constants.
        if event.quoted_in_sol() {
            return sol_trade(event, position, apply);
        }
        // A copy of the quote mint is looked up, not the event's: its
        // address does not escape, so the event stays in registers.
        let quote_mint = event.quote_mint;
        let Some(quote_decimals) = self.decimals_of(&quote_mint) else {
            return Err(Skip::Unpriced(Unpriced::UnknownQuote(quote_mint)));
        };
        priced_curve_trade(event, position, quote_mint, quote_decimals, apply)
    }

    #[inline(never)]
    fn pool_trade(&self, swap: &SwapEvent, position: Position) -> Result<Trade, Unpriced> {
        self.swap_trade(swap, position, |trade| *trade)
    }

    /// The trade of a swap, handed to `apply` where it is made.
    #[inline(always)]
    fn swap_trade<R>(
        &self,
        swap: &SwapEvent,
        position: Position,
        apply: impl FnOnce(&Trade) -> R,
    ) -> Result<R, Unpriced> {
        let pool = self.pools.get(&swap.pool).ok_or(Unpriced::UnknownPool(swap.pool))?;
        let quote_decimals = self.decimals_of(&pool.quote).ok_or(Unpriced::UnknownQuote(pool.quote))?;
        let (base_after, quote_after) = swap.reserves_after();
        // Reserves in the pool's own orientation, then turned so the coin
        // is what is priced.
        let (coin_reserves, quote_reserves, coin_amount, quote_amount, is_buy) = if pool.coin_is_base {
            (base_after, quote_after, swap.base_amount, swap.quote_amount, swap.is_buy)
        } else {
            (quote_after, base_after, swap.quote_amount, swap.base_amount, !swap.is_buy)
        };
        if coin_reserves == 0 || quote_reserves == 0 {
            return Err(Unpriced::NoPrice);
        }
        let price =
            (quote_reserves as f64 / pow10(quote_decimals)) / (coin_reserves as f64 / pow10(pool.coin_decimals));
        if !price.is_finite() {
            return Err(Unpriced::NoPrice);
        }
        Ok(apply(&Trade {
            mint: pool.coin,
            quote_mint: pool.quote,
            price,
            quote_amount,
            token_amount: coin_amount,
            timestamp: swap.timestamp,
            position,
            quote_decimals,
            venue: Venue::PumpSwap,
            is_buy,
        }))
    }
}

/// The trade of a SOL-quoted curve event: the quote and its decimals are
/// constants, so this path (nearly every trade) neither looks them up nor
/// compares keys.
#[inline(always)]
fn sol_trade<R>(event: &TradeFields, position: Position, apply: impl FnOnce(&Trade) -> R) -> Result<R, Skip> {
    priced_curve_trade(event, position, quote::WSOL_MINT, quote::SOL_DECIMALS, apply)
}

/// The trade of a curve event quoted in `quote_mint` with `quote_decimals`.
#[inline(always)]
fn priced_curve_trade<R>(
    event: &TradeFields,
    position: Position,
    quote_mint: Pubkey,
    quote_decimals: u8,
    apply: impl FnOnce(&Trade) -> R,
) -> Result<R, Skip> {
    let Some(price) = event.price(quote_decimals) else { return Err(Skip::Unpriced(Unpriced::NoPrice)) };
    Ok(apply(&Trade {
        mint: event.mint,
        quote_mint,
        price,
        quote_amount: event.quote_amount,
        token_amount: event.token_amount,
        timestamp: event.timestamp,
        position,
        quote_decimals,
        venue: Venue::PumpFun,
        is_buy: event.is_buy,
    }))
}

/// Whether a pool's coin is its base mint, and its (normalized) quote mint:
/// the coin is the base, unless the base is a known quote and the quote is
/// not (pools made the other way round).
pub fn oriented(mints: &PoolMints) -> (bool, Pubkey) {
    let base_is_quote = quote::known(&quote::normalize(&mints.base_mint)).is_some();
    let quote_is_quote = quote::known(&quote::normalize(&mints.quote_mint)).is_some();
    if base_is_quote && !quote_is_quote {
        (false, quote::normalize(&mints.base_mint))
    } else {
        (true, quote::normalize(&mints.quote_mint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::quote::{PUMP_MINT, WSOL_MINT};

    fn swap(pool: Pubkey, is_buy: bool) -> SwapEvent {
        SwapEvent {
            pool,
            user: [0; 32],
            timestamp: 100,
            base_amount: 1_000_000,
            quote_amount: 500,
            pool_base_reserves: 1_000_000_000_000,
            pool_quote_reserves: 40_000_000_000,
            pool_quote_delta: 510,
            is_buy,
        }
    }

    #[test]
    fn a_pool_trade_waits_for_its_pool_then_prices_after_the_trade() {
        let mut market = Market::new(16);
        let event = Event::Swap(swap([5; 32], true));
        assert_eq!(market.price(&event, Position::default()), Err(Unpriced::UnknownPool([5; 32])));
        market.learn_pool(&PoolMints { pool: [5; 32], base_mint: [7; 32], quote_mint: WSOL_MINT, decimals: None });
        let trade = market.price(&event, Position::default()).unwrap();
        let want = ((40_000_000_000u64 + 510) as f64 / 1e9) / ((1_000_000_000_000u64 - 1_000_000) as f64 / 1e6);
        assert_eq!(
            (trade.mint, trade.quote_mint, trade.venue, trade.is_buy),
            ([7; 32], WSOL_MINT, Venue::PumpSwap, true)
        );
        assert!((trade.price - want).abs() <= want * 1e-15);
    }

    #[test]
    fn a_reversed_pool_prices_its_quote_side_coin() {
        let mut market = Market::new(16);
        market.learn_pool(&PoolMints {
            pool: [5; 32],
            base_mint: WSOL_MINT,
            quote_mint: [7; 32],
            decimals: Some((9, 6)),
        });
        let trade = market.price(&Event::Swap(swap([5; 32], true)), Position::default()).unwrap();
        // The pool's "buy" takes the coin in and gives SOL out: the coin is sold.
        assert_eq!((trade.mint, trade.quote_mint, trade.is_buy), ([7; 32], WSOL_MINT, false));
        assert_eq!((trade.token_amount, trade.quote_amount, trade.quote_decimals), (500, 1_000_000, 9));
    }

    #[test]
    fn an_unknown_quote_is_never_priced_until_its_decimals_are_known() {
        let mut market = Market::new(16);
        let mut event = crate::codec::trade::TradeEvent::decode(&{
            let mut b = crate::codec::trade::TRADE_EVENT_DISCRIMINATOR.to_vec();
            b.resize(129, 0);
            b[8 + 32 + 8 + 8 + 1 + 32 + 8 + 8] = 1; // virtual token reserves non-zero
            b
        })
        .unwrap();
        event.quote_mint = [9; 32];
        let e = Event::Trade(event);
        assert_eq!(market.price(&e, Position::default()), Err(Unpriced::UnknownQuote([9; 32])));
        market.learn_decimals(&[9; 32], 6);
        assert_eq!(market.price(&e, Position::default()).map(|t| t.quote_decimals), Ok(6));
        event.quote_mint = PUMP_MINT;
        assert_eq!(market.price(&Event::Trade(event), Position::default()).map(|t| t.quote_decimals), Ok(6));
    }
}
