//! The pump.fun `TradeEvent`, as Solana delivers it: an 8-byte Anchor event
//! discriminator followed by Borsh fields.
//!
//! This module owns the byte layout of one event and nothing else: no I/O, no
//! allocation, no panics. Newer program versions append fields (fees, creator,
//! volume tracking, `ix_name`); only the ten original fields are decoded and the
//! rest is ignored, so every program version decodes.

use thiserror::Error;

/// Anchor discriminator of `TradeEvent`: `sha256("event:TradeEvent")[..8]`.
pub const TRADE_EVENT_DISCRIMINATOR: [u8; 8] = [0xbd, 0xdb, 0x7f, 0xd3, 0x4e, 0xe6, 0x61, 0xee];

/// Bytes up to and including `real_token_reserves`, the last field decoded.
pub const TRADE_EVENT_MIN_LEN: usize = 8 + 32 + 8 + 8 + 1 + 32 + 8 + 8 + 8 + 8 + 8;

/// Lamports per SOL.
pub const LAMPORTS_PER_SOL: f64 = 1e9;

/// Raw token units per whole token (pump.fun tokens have 6 decimals).
pub const TOKEN_UNITS_PER_TOKEN: f64 = 1e6;

/// A 32-byte Solana public key (a mint or a user).
pub type Pubkey = [u8; 32];

/// One decoded trade; the fields mean what they mean in the on-chain event.
///
/// `repr(C)`, and the fields in an order of their own, for the hot loop that
/// decodes and aggregates (SPEC §7): a `Result<TradeEvent, DecodeError>`
/// keeps its error in the first 16 bytes of the event, and the compiler then
/// copies those bytes piecewise; reading them back whole right after stalls
/// on store-to-load forwarding. So `user`, which aggregation never reads,
/// comes first, and `is_buy` (whose spare values tag the error) comes last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct TradeEvent {
    /// The trader's wallet.
    pub user: Pubkey,
    /// The token traded.
    pub mint: Pubkey,
    /// SOL paid (buy) or received (sell), in lamports.
    pub sol_amount: u64,
    /// Tokens received (buy) or paid (sell), in raw units (6 decimals).
    pub token_amount: u64,
    /// Block time, unix seconds.
    pub timestamp: i64,
    /// Bonding-curve virtual SOL reserves after the trade, lamports.
    pub virtual_sol_reserves: u64,
    /// Bonding-curve virtual token reserves after the trade, raw units.
    pub virtual_token_reserves: u64,
    /// Real SOL held by the curve after the trade, lamports.
    pub real_sol_reserves: u64,
    /// Real tokens held by the curve after the trade, raw units.
    pub real_token_reserves: u64,
    /// `true` for a buy, `false` for a sell.
    pub is_buy: bool,
}

/// Why a record is not a `TradeEvent`. Small and `Copy`: rejections are normal
/// operation on a live feed, so they must not allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The record ends before the last decoded field.
    #[error("record too short: {len} bytes, a TradeEvent needs at least {TRADE_EVENT_MIN_LEN}")]
    TooShort {
        /// Length of the rejected record.
        len: usize,
    },
    /// The record is another Anchor event (or not an event at all).
    #[error("not a TradeEvent: discriminator {found:02x?}")]
    WrongDiscriminator {
        /// The first eight bytes of the record.
        found: [u8; 8],
    },
    /// Borsh encodes `bool` as exactly 0 or 1.
    #[error("invalid is_buy byte {byte:#04x} (Borsh bool must be 0 or 1)")]
    BadBool {
        /// The offending byte.
        byte: u8,
    },
}

/// Byte offsets of the decoded fields, from the start of the record.
mod offset {
    pub const MINT: usize = 8;
    pub const SOL_AMOUNT: usize = MINT + 32;
    pub const TOKEN_AMOUNT: usize = SOL_AMOUNT + 8;
    pub const IS_BUY: usize = TOKEN_AMOUNT + 8;
    pub const USER: usize = IS_BUY + 1;
    pub const TIMESTAMP: usize = USER + 32;
    pub const VIRTUAL_SOL: usize = TIMESTAMP + 8;
    pub const VIRTUAL_TOKEN: usize = VIRTUAL_SOL + 8;
    pub const REAL_SOL: usize = VIRTUAL_TOKEN + 8;
    pub const REAL_TOKEN: usize = REAL_SOL + 8;
}

impl TradeEvent {
    /// Decodes one event record. Trailing bytes (newer program versions) are
    /// ignored.
    // Inlined into the caller's loop (another crate, without LTO), so the
    // event is built where the caller keeps it instead of being returned
    // through memory and copied, and fields the caller never reads cost less.
    #[inline]
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let Some(record) = bytes.first_chunk::<TRADE_EVENT_MIN_LEN>() else {
            return Err(DecodeError::TooShort { len: bytes.len() });
        };
        let found: [u8; 8] = array(record, 0);
        if found != TRADE_EVENT_DISCRIMINATOR {
            return Err(DecodeError::WrongDiscriminator { found });
        }
        let is_buy = match record[offset::IS_BUY] {
            0 => false,
            1 => true,
            byte => return Err(DecodeError::BadBool { byte }),
        };
        Ok(Self {
            mint: array(record, offset::MINT),
            sol_amount: u64::from_le_bytes(array(record, offset::SOL_AMOUNT)),
            token_amount: u64::from_le_bytes(array(record, offset::TOKEN_AMOUNT)),
            is_buy,
            user: array(record, offset::USER),
            timestamp: i64::from_le_bytes(array(record, offset::TIMESTAMP)),
            virtual_sol_reserves: u64::from_le_bytes(array(record, offset::VIRTUAL_SOL)),
            virtual_token_reserves: u64::from_le_bytes(array(record, offset::VIRTUAL_TOKEN)),
            real_sol_reserves: u64::from_le_bytes(array(record, offset::REAL_SOL)),
            real_token_reserves: u64::from_le_bytes(array(record, offset::REAL_TOKEN)),
        })
    }

    /// Encodes the event as the original (129-byte) program version does.
    /// Used by the mock source and by tests.
    pub fn encode(&self) -> [u8; TRADE_EVENT_MIN_LEN] {
        let mut out = [0u8; TRADE_EVENT_MIN_LEN];
        out[..8].copy_from_slice(&TRADE_EVENT_DISCRIMINATOR);
        out[offset::MINT..offset::SOL_AMOUNT].copy_from_slice(&self.mint);
        out[offset::SOL_AMOUNT..offset::TOKEN_AMOUNT].copy_from_slice(&self.sol_amount.to_le_bytes());
        out[offset::TOKEN_AMOUNT..offset::IS_BUY].copy_from_slice(&self.token_amount.to_le_bytes());
        out[offset::IS_BUY] = u8::from(self.is_buy);
        out[offset::USER..offset::TIMESTAMP].copy_from_slice(&self.user);
        out[offset::TIMESTAMP..offset::VIRTUAL_SOL].copy_from_slice(&self.timestamp.to_le_bytes());
        let tail =
            [self.virtual_sol_reserves, self.virtual_token_reserves, self.real_sol_reserves, self.real_token_reserves];
        for (i, value) in tail.iter().enumerate() {
            let at = offset::VIRTUAL_SOL + 8 * i;
            out[at..at + 8].copy_from_slice(&value.to_le_bytes());
        }
        out
    }

    /// Price in SOL per whole token, from the virtual reserves after the trade.
    /// `None` when the token reserves are zero (no price can be quoted).
    #[inline]
    pub fn price_sol_per_token(&self) -> Option<f64> {
        if self.virtual_token_reserves == 0 {
            return None;
        }
        let sol = self.virtual_sol_reserves as f64 / LAMPORTS_PER_SOL;
        let tokens = self.virtual_token_reserves as f64 / TOKEN_UNITS_PER_TOKEN;
        Some(sol / tokens)
    }
}

/// Copies `N` bytes at `at` out of a record already checked to be long enough.
#[inline]
fn array<const N: usize>(record: &[u8; TRADE_EVENT_MIN_LEN], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&record[at..at + N]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TradeEvent {
        TradeEvent {
            mint: [7; 32],
            sol_amount: 1_500_000_000,
            token_amount: 42_000_000,
            is_buy: true,
            user: [9; 32],
            timestamp: 1_770_648_704,
            virtual_sol_reserves: 31_500_000_000,
            virtual_token_reserves: 1_021_904_761_904_762,
            real_sol_reserves: 1_500_000_000,
            real_token_reserves: 742_004_761_904_762,
        }
    }

    #[test]
    fn encode_then_decode_is_identity() {
        let event = sample();
        assert_eq!(TradeEvent::decode(&event.encode()), Ok(event));
    }

    #[test]
    fn trailing_fields_of_newer_versions_are_ignored() {
        let mut bytes = sample().encode().to_vec();
        bytes.extend_from_slice(&[0xff; 138]);
        assert_eq!(TradeEvent::decode(&bytes), Ok(sample()));
    }

    #[test]
    fn rejects_every_short_length() {
        let bytes = sample().encode();
        for len in 0..TRADE_EVENT_MIN_LEN {
            assert_eq!(TradeEvent::decode(&bytes[..len]), Err(DecodeError::TooShort { len }));
        }
    }

    #[test]
    fn rejects_other_discriminators() {
        let mut bytes = sample().encode();
        bytes[0] ^= 1;
        assert!(matches!(
            TradeEvent::decode(&bytes),
            Err(DecodeError::WrongDiscriminator { found }) if found[0] == 0xbc
        ));
    }

    #[test]
    fn rejects_bool_bytes_other_than_zero_and_one() {
        let mut bytes = sample().encode();
        for byte in 2..=u8::MAX {
            bytes[offset::IS_BUY] = byte;
            assert_eq!(TradeEvent::decode(&bytes), Err(DecodeError::BadBool { byte }));
        }
        bytes[offset::IS_BUY] = 0;
        assert_eq!(TradeEvent::decode(&bytes).map(|e| e.is_buy), Ok(false));
    }

    #[test]
    fn price_is_sol_per_whole_token() {
        let mut event = sample();
        event.virtual_sol_reserves = 30_000_000_000;
        event.virtual_token_reserves = 1_073_000_000_000_000;
        let price = event.price_sol_per_token().unwrap_or_default();
        assert!((price - 30.0 / 1_073_000_000.0).abs() < 1e-18);
        event.virtual_token_reserves = 0;
        assert_eq!(event.price_sol_per_token(), None);
    }
}
