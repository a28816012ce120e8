//! PumpSwap (`pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA`), the AMM that
//! pump.fun coins trade on once their bonding curve completes: its
//! `BuyEvent` / `SellEvent`, the `CreatePoolEvent`, and the `Pool` account's
//! data, which tie a pool to its base and quote mints.
//!
//! Byte layouts only (pump-fun/pump-public-docs `idl/pump_amm.json`); no
//! I/O, no allocation, no panics. As with pump.fun's events, every upgrade
//! appended fields: a record may end after any field, and may carry bytes
//! after the last field this code knows.

use super::borsh::{DecodeError, Discriminator, Fields, Pubkey, check_head};

/// `sha256("event:BuyEvent")[..8]`.
pub const BUY_EVENT_DISCRIMINATOR: Discriminator = [0x67, 0xf4, 0x52, 0x1f, 0x2c, 0xf5, 0x77, 0x77];
/// `sha256("event:SellEvent")[..8]`.
pub const SELL_EVENT_DISCRIMINATOR: Discriminator = [0x3e, 0x2f, 0x37, 0x0a, 0xa5, 0x03, 0xdc, 0x2a];
/// `sha256("event:CreatePoolEvent")[..8]`.
pub const CREATE_POOL_EVENT_DISCRIMINATOR: Discriminator = [0xb1, 0x31, 0x0c, 0xd2, 0xa0, 0x76, 0xa7, 0x74];
/// `sha256("account:Pool")[..8]`.
pub const POOL_ACCOUNT_DISCRIMINATOR: Discriminator = [0xf1, 0x9a, 0x6d, 0x04, 0x11, 0xb1, 0x6d, 0xbc];

/// The first layout of both swap events (March 2025): 14 integers and six
/// public keys.
pub const SWAP_EVENT_MIN_LEN: usize = 8 + 14 * 8 + 6 * 32;

/// One PumpSwap swap, the fields pricing needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwapEvent {
    /// The pool traded against.
    pub pool: Pubkey,
    /// The trader's wallet.
    pub user: Pubkey,
    /// Block time, unix seconds.
    pub timestamp: i64,
    /// Base tokens the pool gave out (buy) or took in (sell), raw units.
    pub base_amount: u64,
    /// Quote the trade was worth before fees: `quote_amount_in` (buy) or
    /// `quote_amount_out` (sell), quote base units.
    pub quote_amount: u64,
    /// Pool base reserves before the trade.
    pub pool_base_reserves: u64,
    /// Pool quote reserves before the trade.
    pub pool_quote_reserves: u64,
    /// Quote that entered the pool (buy: `quote_amount_in_with_lp_fee`) or
    /// left it (sell: `quote_amount_out_without_lp_fee`): the LP fee stays
    /// in the pool, protocol and creator fees do not.
    pub pool_quote_delta: u64,
    /// `true` for a `BuyEvent` (base bought with quote).
    pub is_buy: bool,
}

impl SwapEvent {
    /// Decodes a `BuyEvent` or a `SellEvent` of any layout.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let is_buy = match bytes.first_chunk::<8>() {
            Some(&BUY_EVENT_DISCRIMINATOR) => true,
            Some(&SELL_EVENT_DISCRIMINATOR) => false,
            Some(found) => return Err(DecodeError::WrongDiscriminator { found: *found }),
            None => return Err(DecodeError::TooShort { len: bytes.len(), need: SWAP_EVENT_MIN_LEN }),
        };
        let discriminator = if is_buy { BUY_EVENT_DISCRIMINATOR } else { SELL_EVENT_DISCRIMINATOR };
        check_head(bytes, &discriminator, SWAP_EVENT_MIN_LEN)?;
        // The first layout's fields are all fixed-size and the record holds
        // them all: they are read at their offsets. In order: timestamp,
        // base amount out (buy) or in (sell), max quote in or min quote out,
        // the user's base and quote reserves, the pool's base and quote
        // reserves, quote in (buy) or out (sell), LP fee basis points and
        // fee, protocol fee basis points and fee, quote into the pool with
        // the LP fee (buy) or out of it without (sell), the user's quote in
        // or out; then the pool, the user and four token accounts.
        let word = |i: usize| u64::from_le_bytes(array(bytes, 8 + 8 * i));
        let timestamp = word(0) as i64;
        let base_amount = word(1);
        let pool_base_reserves = word(5);
        let pool_quote_reserves = word(6);
        let quote_amount = word(7);
        let pool_quote_delta = word(12);
        let pool = array(bytes, SWAP_POOL_AT);
        let user = array(bytes, SWAP_POOL_AT + 32);
        if !appended_valid(bytes, is_buy) {
            check_appended(&mut Fields::at(bytes, SWAP_EVENT_MIN_LEN), is_buy)?;
        }
        Ok(Self {
            pool,
            user,
            timestamp,
            base_amount,
            quote_amount,
            pool_base_reserves,
            pool_quote_reserves,
            pool_quote_delta,
            is_buy,
        })
    }

    /// Pool reserves after the trade, `(base, quote)`, raw units.
    pub fn reserves_after(&self) -> (u64, u64) {
        if self.is_buy {
            (
                self.pool_base_reserves.saturating_sub(self.base_amount),
                self.pool_quote_reserves.saturating_add(self.pool_quote_delta),
            )
        } else {
            (
                self.pool_base_reserves.saturating_add(self.base_amount),
                self.pool_quote_reserves.saturating_sub(self.pool_quote_delta),
            )
        }
    }
}

/// Where a swap event names its pool: after the discriminator and the 14
/// integers of the first layout.
pub const SWAP_POOL_AT: usize = 8 + 14 * 8;

/// `N` bytes at `at` of a record already checked to be long enough.
#[inline(always)]
fn array<const N: usize>(record: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&record[at..at + N]);
    out
}

/// Whether the fields appended after the first layout are those of a layout
/// that occurs (ending after the coin creator fee, after `ix_name` for buys,
/// after the cashback or the buyback fee, with anything after the last),
/// with the checks [`check_appended`] makes: a quick yes for the records
/// that occur. `false` leaves the record to [`check_appended`], which
/// accepts or refuses it field by field exactly as it always did.
#[inline]
fn appended_valid(bytes: &[u8], is_buy: bool) -> bool {
    let len = bytes.len();
    // Coin creator, its fee basis points and fee.
    let mut at = SWAP_EVENT_MIN_LEN + 32 + 8 + 8;
    if len == SWAP_EVENT_MIN_LEN || len == at {
        return true;
    }
    if is_buy {
        // `track_volume`, four volume-tracking integers and
        // `min_base_amount_out`, then `ix_name`.
        if bytes.get(at).is_none_or(|&b| b > 1) {
            return false;
        }
        at += 1 + 5 * 8;
        let Some(name_len) = bytes.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        else {
            return false;
        };
        at += 4;
        let Some(name) = at.checked_add(name_len).and_then(|end| bytes.get(at..end)) else { return false };
        if !(name.is_ascii() || std::str::from_utf8(name).is_ok()) {
            return false;
        }
        at += name_len;
        if len == at {
            return true;
        }
    }
    // Cashback fee basis points and cashback, then the buyback's two.
    len == at + 2 * 8 || len >= at + 4 * 8
}

/// Checks the fields later layouts appended (coin creator fee; for buys,
/// volume tracking and `ix_name`; cashback; buyback) as far as the record
/// goes. Bytes after the last are accepted.
fn check_appended(f: &mut Fields<'_>, is_buy: bool) -> Result<(), DecodeError> {
    macro_rules! fields {
        ($($read:ident $name:literal),* $(,)?) => {$(
            if f.done() { return Ok(()); }
            f.$read($name)?;
        )*};
    }
    fields!(pubkey "coin_creator", u64 "coin_creator_fee_basis_points", u64 "coin_creator_fee");
    if is_buy {
        fields!(
            bool "track_volume", u64 "total_unclaimed_tokens", u64 "total_claimed_tokens",
            u64 "current_sol_volume", i64 "last_update_timestamp", u64 "min_base_amount_out",
            string "ix_name",
        );
    }
    fields!(u64 "cashback_fee_basis_points", u64 "cashback", u64 "buyback_fee_basis_points", u64 "buyback_fee");
    Ok(())
}

/// A pool's mints, from a `CreatePoolEvent` or the `Pool` account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolMints {
    /// The pool.
    pub pool: Pubkey,
    /// The base mint (for pools made by pump.fun's migration: the coin).
    pub base_mint: Pubkey,
    /// The quote mint (wrapped SOL for SOL-paired coins).
    pub quote_mint: Pubkey,
    /// Decimals of both mints, when the record carries them.
    pub decimals: Option<(u8, u8)>,
}

/// The shortest `CreatePoolEvent` this code reads: up to `pool`.
pub const CREATE_POOL_EVENT_MIN_LEN: usize = 8 + 8 + 2 + 3 * 32 + 2 + 7 * 8 + 1 + 32;

/// Decodes a `CreatePoolEvent` of any layout.
pub fn decode_create_pool(bytes: &[u8]) -> Result<PoolMints, DecodeError> {
    check_head(bytes, &CREATE_POOL_EVENT_DISCRIMINATOR, CREATE_POOL_EVENT_MIN_LEN)?;
    let f = &mut Fields::at(bytes, 8);
    f.i64("timestamp")?;
    f.u16("index")?;
    f.pubkey("creator")?;
    let base_mint = f.pubkey("base_mint")?;
    let quote_mint = f.pubkey("quote_mint")?;
    let decimals = (f.u8("base_mint_decimals")?, f.u8("quote_mint_decimals")?);
    for field in [
        "base_amount_in",
        "quote_amount_in",
        "pool_base_amount",
        "pool_quote_amount",
        "minimum_liquidity",
        "initial_liquidity",
        "lp_token_amount_out",
    ] {
        f.u64(field)?;
    }
    f.u8("pool_bump")?;
    let pool = f.pubkey("pool")?;
    for field in ["lp_mint", "user_base_token_account", "user_quote_token_account", "coin_creator"] {
        if f.done() {
            break;
        }
        f.pubkey(field)?;
    }
    if !f.done() {
        f.bool("is_mayhem_mode")?;
    }
    Ok(PoolMints { pool, base_mint, quote_mint, decimals: Some(decimals) })
}

/// Bytes of a `Pool` account up to `quote_mint`.
pub const POOL_ACCOUNT_MIN_LEN: usize = 8 + 1 + 2 + 3 * 32;

/// Reads a `Pool` account's data (as `getAccountInfo` returns it) for
/// `pool`.
pub fn decode_pool_account(pool: Pubkey, data: &[u8]) -> Result<PoolMints, DecodeError> {
    check_head(data, &POOL_ACCOUNT_DISCRIMINATOR, POOL_ACCOUNT_MIN_LEN)?;
    let f = &mut Fields::at(data, 8);
    f.u8("pool_bump")?;
    f.u16("index")?;
    f.pubkey("creator")?;
    let base_mint = f.pubkey("base_mint")?;
    let quote_mint = f.pubkey("quote_mint")?;
    Ok(PoolMints { pool, base_mint, quote_mint, decimals: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v1 sell: the fields in order, each a distinct value.
    fn sell_v1() -> Vec<u8> {
        let mut bytes = SELL_EVENT_DISCRIMINATOR.to_vec();
        for i in 0..14u64 {
            bytes.extend_from_slice(&(100 + i).to_le_bytes());
        }
        for i in 0..6u8 {
            bytes.extend_from_slice(&[i + 1; 32]);
        }
        bytes
    }

    #[test]
    fn the_quick_check_of_appended_fields_agrees_with_the_walk_through_every_field() {
        use crate::codec::trade::tests::{cut_and_changed, recorded};
        let (mut quick, mut all) = (0, 0);
        for (discriminator, is_buy) in [(BUY_EVENT_DISCRIMINATOR, true), (SELL_EVENT_DISCRIMINATOR, false)] {
            let records = recorded(&discriminator);
            assert!(records.len() >= 3, "several layouts recorded");
            for record in &records {
                assert!(appended_valid(record, is_buy), "{} bytes", record.len());
                for bytes in cut_and_changed(record, SWAP_EVENT_MIN_LEN, &[0, 1, 2, 0x80, 0xff]) {
                    if bytes.len() < SWAP_EVENT_MIN_LEN {
                        continue;
                    }
                    all += 1;
                    if appended_valid(&bytes, is_buy) {
                        quick += 1;
                        let walked = check_appended(&mut Fields::at(&bytes, SWAP_EVENT_MIN_LEN), is_buy);
                        assert_eq!(walked, Ok(()), "{} bytes", bytes.len());
                    }
                }
            }
        }
        assert!(quick > 0 && quick < all);
    }

    #[test]
    fn reads_the_first_layout_and_names_the_fields() {
        let event = SwapEvent::decode(&sell_v1()).unwrap();
        assert_eq!((event.timestamp, event.base_amount, event.quote_amount), (100, 101, 107));
        assert_eq!((event.pool_base_reserves, event.pool_quote_reserves, event.pool_quote_delta), (105, 106, 112));
        assert_eq!((event.pool, event.user, event.is_buy), ([1; 32], [2; 32], false));
        assert_eq!(event.reserves_after(), (105 + 101, 0), "saturating: more quote out than reserves");
    }

    #[test]
    fn refuses_short_and_cut_records() {
        let bytes = sell_v1();
        assert!(matches!(SwapEvent::decode(&bytes[..311]), Err(DecodeError::TooShort { need: 312, .. })));
        let mut cut = bytes.clone();
        cut.extend_from_slice(&[0; 10]);
        assert_eq!(SwapEvent::decode(&cut), Err(DecodeError::Truncated { len: 322, field: "coin_creator" }));
        let mut other = bytes;
        other[0] = 0;
        assert!(matches!(SwapEvent::decode(&other), Err(DecodeError::WrongDiscriminator { .. })));
    }

    #[test]
    fn reads_pool_accounts() {
        let mut data = POOL_ACCOUNT_DISCRIMINATOR.to_vec();
        data.extend_from_slice(&[255, 0, 0]);
        data.extend_from_slice(&[1; 32]);
        data.extend_from_slice(&[2; 32]);
        data.extend_from_slice(&[3; 32]);
        let mints = decode_pool_account([9; 32], &data).unwrap();
        assert_eq!((mints.base_mint, mints.quote_mint, mints.decimals), ([2; 32], [3; 32], None));
        assert!(decode_pool_account([9; 32], &data[..50]).is_err());
    }
}
