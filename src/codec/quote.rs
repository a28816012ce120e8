//! Quote mints: what a coin's prices and volumes are counted in.
//!
//! A bar names its quote by mint. SOL is named by the wrapped-SOL mint,
//! which is how pump.fun's own interface names it (pump-fun/pump-public-docs
//! `docs/instructions/BUY.md`: "For SOL-paired coins, pass wrapped SOL"),
//! and what SOL-paired PumpSwap pools hold; pump.fun events write SOL as the
//! all-zero key (`Pubkey::default()`), which [`normalize`] maps to it.
//!
//! The decimals of the quotes known here are fixed by their mint accounts;
//! a quote not in the table has its decimals looked up once from the node by
//! the live source, or its trades are counted as unknown-quote: a price is
//! never guessed.

use super::borsh::Pubkey;

/// The wrapped-SOL mint `So11111111111111111111111111111111111111112`.
pub const WSOL_MINT: Pubkey = [
    0x06, 0x9b, 0x88, 0x57, 0xfe, 0xab, 0x81, 0x84, 0xfb, 0x68, 0x7f, 0x63, 0x46, 0x18, 0xc0, 0x35, 0xda, 0xc4, 0x39,
    0xdc, 0x1a, 0xeb, 0x3b, 0x55, 0x98, 0xa0, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x01,
];
/// Decimals of SOL (lamports per SOL: 10^9).
pub const SOL_DECIMALS: u8 = 9;

/// USDC, `EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v`.
pub const USDC_MINT: Pubkey = [
    0xc6, 0xfa, 0x7a, 0xf3, 0xbe, 0xdb, 0xad, 0x3a, 0x3d, 0x65, 0xf3, 0x6a, 0xab, 0xc9, 0x74, 0x31, 0xb1, 0xbb, 0xe4,
    0xc2, 0xd2, 0xf6, 0xe0, 0xe4, 0x7c, 0xa6, 0x02, 0x03, 0x45, 0x2f, 0x5d, 0x61,
];
/// USDT, `Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB`.
pub const USDT_MINT: Pubkey = [
    0xce, 0x01, 0x0e, 0x60, 0xaf, 0xed, 0xb2, 0x27, 0x17, 0xbd, 0x63, 0x19, 0x2f, 0x54, 0x14, 0x5a, 0x3f, 0x96, 0x5a,
    0x33, 0xbb, 0x82, 0xd2, 0xc7, 0x02, 0x9e, 0xb2, 0xce, 0x1e, 0x20, 0x82, 0x64,
];
/// $PUMP, `pumpCmXqMfrsAkQ5r49WcJnRayYRqmXz6ae8H7H9Dfn`.
pub const PUMP_MINT: Pubkey = [
    0x0c, 0x45, 0xf7, 0xdf, 0x8d, 0x9e, 0x72, 0x95, 0x62, 0x84, 0x93, 0x3f, 0x6d, 0x98, 0xb7, 0x57, 0x03, 0x2e, 0x83,
    0xdf, 0x84, 0x60, 0x4f, 0xb5, 0xe1, 0x17, 0xff, 0xf6, 0x1d, 0x5b, 0x12, 0xf9,
];

/// A quote whose decimals are known without asking a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownQuote {
    /// Its mint.
    pub mint: Pubkey,
    /// What the web page and `tail` call it.
    pub symbol: &'static str,
    /// Decimals of its mint account.
    pub decimals: u8,
}

/// The quotes pump.fun coins and their PumpSwap pools trade in, with the
/// source of each mint's decimals:
/// - SOL: 9, `spl_token::native_mint::DECIMALS` (the wrapped-SOL mint is
///   the native mint of the SPL Token program).
/// - USDC: 6, Circle's USDC on Solana (its mint account's `decimals`; the
///   pump.fun docs pair coins with this mint, `docs/instructions/BUY.md`).
/// - USDT: 6, Tether's SPL mint account's `decimals`.
/// - PUMP: 6, pump.fun's token, created by pump.fun like its coins
///   (`decimals = 6`); the recorded $PUMP-quoted TradeEvent in
///   `tests/fixtures/solana/events.jsonl` agrees: its initial virtual quote
///   reserves (virtual − real = 741,644.78 PUMP at 6 decimals) are worth what
///   the 30 SOL a SOL-paired curve starts with are.
pub const KNOWN_QUOTES: [KnownQuote; 4] = [
    KnownQuote { mint: WSOL_MINT, symbol: "SOL", decimals: SOL_DECIMALS },
    KnownQuote { mint: USDC_MINT, symbol: "USDC", decimals: 6 },
    KnownQuote { mint: USDT_MINT, symbol: "USDT", decimals: 6 },
    KnownQuote { mint: PUMP_MINT, symbol: "PUMP", decimals: 6 },
];

/// The quote mint a bar names: the all-zero key of pump.fun events is SOL,
/// named by the wrapped-SOL mint.
#[inline]
pub fn normalize(quote_mint: &Pubkey) -> Pubkey {
    if *quote_mint == [0; 32] { WSOL_MINT } else { *quote_mint }
}

/// The table entry of `mint` (already normalized), if it is a known quote.
#[inline]
pub fn known(mint: &Pubkey) -> Option<&'static KnownQuote> {
    KNOWN_QUOTES.iter().find(|q| q.mint == *mint)
}

/// A short name for a quote mint: its symbol if known, else the first and
/// last four characters of its base58.
pub fn label(mint: &Pubkey) -> String {
    match known(mint) {
        Some(q) => q.symbol.to_owned(),
        None => {
            let text = bs58::encode(mint).into_string();
            let chars: Vec<char> = text.chars().collect();
            if chars.len() <= 8 {
                return text;
            }
            let head: String = chars[..4].iter().collect();
            let tail: String = chars[chars.len() - 4..].iter().collect();
            format!("{head}…{tail}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_mints_are_the_published_addresses() {
        let b58 = |m: &Pubkey| bs58::encode(m).into_string();
        assert_eq!(b58(&WSOL_MINT), "So11111111111111111111111111111111111111112");
        assert_eq!(b58(&USDC_MINT), "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v");
        assert_eq!(b58(&USDT_MINT), "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB");
        assert_eq!(b58(&PUMP_MINT), "pumpCmXqMfrsAkQ5r49WcJnRayYRqmXz6ae8H7H9Dfn");
        assert_eq!(normalize(&[0; 32]), WSOL_MINT);
        assert_eq!(known(&normalize(&[0; 32])).map(|q| q.decimals), Some(9));
        assert_eq!(label(&PUMP_MINT), "PUMP");
        assert_eq!(label(&[1; 32]).chars().count(), 9);
    }
}
