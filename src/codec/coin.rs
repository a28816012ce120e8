//! pump.fun's coin life-cycle events that pricing needs besides trades:
//! `CreateEvent` (a coin and its quote mint), `CompleteEvent` (the curve is
//! done) and `CompletePumpAmmMigrationEvent` (the coin's PumpSwap pool).
//! Byte layouts only (pump-fun/pump-public-docs `idl/pump.json`).

use super::borsh::{DecodeError, Discriminator, Fields, Pubkey, check_head};

/// `sha256("event:CreateEvent")[..8]`.
pub const CREATE_EVENT_DISCRIMINATOR: Discriminator = [0x1b, 0x72, 0xa9, 0x4d, 0xde, 0xeb, 0x63, 0x76];
/// `sha256("event:CompleteEvent")[..8]`.
pub const COMPLETE_EVENT_DISCRIMINATOR: Discriminator = [0x5f, 0x72, 0x61, 0x9c, 0xd4, 0x2e, 0x98, 0x08];
/// `sha256("event:CompletePumpAmmMigrationEvent")[..8]`.
pub const MIGRATION_EVENT_DISCRIMINATOR: Discriminator = [0xbd, 0xe9, 0x5d, 0xb9, 0x5c, 0x94, 0xea, 0x94];

/// A coin was created, with the quote it trades in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoinCreated {
    /// The coin.
    pub mint: Pubkey,
    /// Its quote mint; all zero (also in layouts before quote mints) = SOL.
    pub quote_mint: Pubkey,
}

/// A coin's curve completed and its liquidity moved to a PumpSwap pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// The coin.
    pub mint: Pubkey,
    /// Its PumpSwap pool.
    pub pool: Pubkey,
    /// The pool's quote mint (all zero in layouts before quote mints = SOL).
    pub quote_mint: Pubkey,
}

/// The shortest `CreateEvent`: name, symbol, uri, mint, bonding curve, user.
const CREATE_EVENT_MIN_LEN: usize = 8 + 3 * 4 + 3 * 32;

/// Decodes a `CreateEvent` of any layout.
pub fn decode_create(bytes: &[u8]) -> Result<CoinCreated, DecodeError> {
    check_head(bytes, &CREATE_EVENT_DISCRIMINATOR, CREATE_EVENT_MIN_LEN)?;
    let f = &mut Fields::at(bytes, 8);
    for field in ["name", "symbol", "uri"] {
        f.string(field)?;
    }
    let mint = f.pubkey("mint")?;
    f.pubkey("bonding_curve")?;
    f.pubkey("user")?;
    let mut created = CoinCreated { mint, quote_mint: [0; 32] };
    macro_rules! fields {
        ($($read:ident $name:literal),* $(,)?) => {$(
            if f.done() { return Ok(created); }
            f.$read($name)?;
        )*};
    }
    fields!(
        pubkey "creator", i64 "timestamp", u64 "virtual_token_reserves", u64 "virtual_sol_reserves",
        u64 "real_token_reserves", u64 "token_total_supply", pubkey "token_program",
        bool "is_mayhem_mode", bool "is_cashback_enabled",
    );
    if !f.done() {
        created.quote_mint = f.pubkey("quote_mint")?;
    }
    fields!(u64 "virtual_quote_reserves");
    Ok(created)
}

/// The shortest `CompleteEvent`: user, mint, bonding curve, timestamp.
const COMPLETE_EVENT_MIN_LEN: usize = 8 + 3 * 32 + 8;

/// Decodes a `CompleteEvent`: the coin whose curve completed.
pub fn decode_complete(bytes: &[u8]) -> Result<CoinCreated, DecodeError> {
    check_head(bytes, &COMPLETE_EVENT_DISCRIMINATOR, COMPLETE_EVENT_MIN_LEN)?;
    let f = &mut Fields::at(bytes, 8);
    f.pubkey("user")?;
    let mint = f.pubkey("mint")?;
    f.pubkey("bonding_curve")?;
    f.i64("timestamp")?;
    let quote_mint = if f.done() { [0; 32] } else { f.pubkey("quote_mint")? };
    Ok(CoinCreated { mint, quote_mint })
}

/// The shortest `CompletePumpAmmMigrationEvent`: up to `pool`.
const MIGRATION_EVENT_MIN_LEN: usize = 8 + 32 + 32 + 3 * 8 + 32 + 8 + 32;

/// Decodes a `CompletePumpAmmMigrationEvent`.
pub fn decode_migration(bytes: &[u8]) -> Result<Migrated, DecodeError> {
    check_head(bytes, &MIGRATION_EVENT_DISCRIMINATOR, MIGRATION_EVENT_MIN_LEN)?;
    let f = &mut Fields::at(bytes, 8);
    f.pubkey("user")?;
    let mint = f.pubkey("mint")?;
    for field in ["mint_amount", "sol_amount", "pool_migration_fee"] {
        f.u64(field)?;
    }
    f.pubkey("bonding_curve")?;
    f.i64("timestamp")?;
    let pool = f.pubkey("pool")?;
    let quote_mint = if f.done() { [0; 32] } else { f.pubkey("quote_mint")? };
    Ok(Migrated { mint, pool, quote_mint })
}
