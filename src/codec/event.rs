//! Which event a record is: the two programs klinecast reads, and the
//! dispatch from a record's discriminator to its decoder.
//!
//! Other programs reuse the same discriminators (an Anchor discriminator is
//! a hash of the event's name, and forks keep the names), so a record is
//! only read as an event of the program that emitted it when that is known
//! (log lines attributed by the invoke stack, inner instructions by program
//! id); bare `Program data:` lines of unknown origin are read by
//! discriminator alone.

use super::amm::{self, PoolMints, SwapEvent};
use super::borsh::{DecodeError, Pubkey};
use super::coin::{self, CoinCreated, Migrated};
use super::trade::{TRADE_EVENT_DISCRIMINATOR, TradeEvent};

/// The pump.fun program `6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P`.
pub const PUMP_FUN_PROGRAM: Pubkey = [
    0x01, 0x56, 0xe0, 0xf6, 0x93, 0x66, 0x5a, 0xcf, 0x44, 0xdb, 0x15, 0x68, 0xbf, 0x17, 0x5b, 0xaa, 0x51, 0x89, 0xcb,
    0x97, 0xf5, 0xd2, 0xff, 0x3b, 0x65, 0x5d, 0x2b, 0xb6, 0xfd, 0x6d, 0x18, 0xb0,
];
/// The PumpSwap program `pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA`.
pub const PUMP_SWAP_PROGRAM: Pubkey = [
    0x0c, 0x14, 0xde, 0xfc, 0x82, 0x5e, 0xc6, 0x76, 0x94, 0x25, 0x08, 0x18, 0xbb, 0x65, 0x40, 0x65, 0xf4, 0x29, 0x8d,
    0x31, 0x56, 0xd5, 0x71, 0xb4, 0xd4, 0xf8, 0x09, 0x0c, 0x18, 0xe9, 0xa8, 0x63,
];

/// The base58 address of the pump.fun program.
pub const PUMP_FUN_ADDRESS: &str = "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P";
/// The base58 address of the PumpSwap program.
pub const PUMP_SWAP_ADDRESS: &str = "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA";

/// A program whose events klinecast reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Program {
    /// pump.fun: bonding curves.
    PumpFun,
    /// PumpSwap: the AMM graduated coins trade on.
    PumpSwap,
}

impl Program {
    /// Both programs.
    pub const ALL: [Self; 2] = [Self::PumpFun, Self::PumpSwap];

    /// The program with this base58 address.
    pub fn from_address(address: &str) -> Option<Self> {
        match address {
            PUMP_FUN_ADDRESS => Some(Self::PumpFun),
            PUMP_SWAP_ADDRESS => Some(Self::PumpSwap),
            _ => None,
        }
    }

    /// Its base58 address.
    pub fn address(self) -> &'static str {
        match self {
            Self::PumpFun => PUMP_FUN_ADDRESS,
            Self::PumpSwap => PUMP_SWAP_ADDRESS,
        }
    }

    /// Its public key.
    pub fn key(self) -> Pubkey {
        match self {
            Self::PumpFun => PUMP_FUN_PROGRAM,
            Self::PumpSwap => PUMP_SWAP_PROGRAM,
        }
    }
}

/// Where an event sits on chain, as far as its source knows: zero slot and
/// signature for sources without them (mock, `Program data:` lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Position {
    /// The slot of its transaction.
    pub slot: u64,
    /// The first eight bytes of the transaction's signature, little-endian.
    pub signature: u64,
    /// Its index among the transaction's events of the two programs, in
    /// execution order.
    pub event: u32,
}

impl Position {
    /// The signature prefix of a transaction signature's 64 bytes.
    pub fn signature_prefix(signature: &[u8; 64]) -> u64 {
        let mut head = [0u8; 8];
        head.copy_from_slice(&signature[..8]);
        u64::from_le_bytes(head)
    }
}

/// One decoded event of either program.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    /// A bonding-curve trade (pump.fun `TradeEvent`).
    Trade(TradeEvent),
    /// A PumpSwap `BuyEvent` or `SellEvent`.
    Swap(SwapEvent),
    /// pump.fun `CreateEvent`: a coin and its quote.
    Created(CoinCreated),
    /// pump.fun `CompleteEvent`: a curve completed.
    Completed(CoinCreated),
    /// pump.fun `CompletePumpAmmMigrationEvent`: the coin's pool.
    Migrated(Migrated),
    /// PumpSwap `CreatePoolEvent`: a pool's mints and their decimals.
    PoolCreated(PoolMints),
}

/// Decodes a record emitted by `program` (`None`: origin unknown, read by
/// discriminator alone). A discriminator that is none of the events above
/// (for that program) is [`DecodeError::WrongDiscriminator`].
// Always inlined: it is the first step of the hot loop (SPEC §7), and a call
// would return the event through memory, copied twice.
#[inline(always)]
pub fn decode(program: Option<Program>, bytes: &[u8]) -> Result<Event, DecodeError> {
    let Some(head) = bytes.first_chunk::<8>() else {
        return Err(DecodeError::TooShort { len: bytes.len(), need: 8 });
    };
    let pump = program != Some(Program::PumpSwap);
    let swap = program != Some(Program::PumpFun);
    match *head {
        // The hot path first: nearly every record is a trade.
        TRADE_EVENT_DISCRIMINATOR if pump => TradeEvent::decode(bytes).map(Event::Trade),
        amm::BUY_EVENT_DISCRIMINATOR | amm::SELL_EVENT_DISCRIMINATOR if swap => {
            SwapEvent::decode(bytes).map(Event::Swap)
        }
        coin::CREATE_EVENT_DISCRIMINATOR if pump => coin::decode_create(bytes).map(Event::Created),
        coin::COMPLETE_EVENT_DISCRIMINATOR if pump => coin::decode_complete(bytes).map(Event::Completed),
        coin::MIGRATION_EVENT_DISCRIMINATOR if pump => coin::decode_migration(bytes).map(Event::Migrated),
        amm::CREATE_POOL_EVENT_DISCRIMINATOR if swap => amm::decode_create_pool(bytes).map(Event::PoolCreated),
        found => Err(DecodeError::WrongDiscriminator { found }),
    }
}

/// The block time a trade record carries, read at its fixed offset without
/// decoding the rest (for lag metrics); `None` for other records.
pub fn trade_timestamp(bytes: &[u8]) -> Option<i64> {
    let at = match bytes.first_chunk::<8>()? {
        &TRADE_EVENT_DISCRIMINATOR => 8 + 32 + 8 + 8 + 1 + 32,
        &amm::BUY_EVENT_DISCRIMINATOR | &amm::SELL_EVENT_DISCRIMINATOR => 8,
        _ => return None,
    };
    bytes.get(at..at + 8).and_then(|b| b.try_into().ok()).map(i64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_keys_are_their_addresses() {
        for program in Program::ALL {
            assert_eq!(bs58::encode(program.key()).into_string(), program.address());
            assert_eq!(Program::from_address(program.address()), Some(program));
        }
    }

    #[test]
    fn a_trade_record_is_not_read_as_an_event_of_the_other_program() {
        let mut record = TRADE_EVENT_DISCRIMINATOR.to_vec();
        record.resize(129, 0);
        assert!(matches!(decode(Some(Program::PumpFun), &record), Ok(Event::Trade(_))));
        assert!(matches!(decode(None, &record), Ok(Event::Trade(_))));
        assert!(matches!(decode(Some(Program::PumpSwap), &record), Err(DecodeError::WrongDiscriminator { .. })));
    }
}
