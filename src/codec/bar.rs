//! `Bar`, one K-line update, and its wire form: the rkyv archive that is the
//! Kafka message value and the WebSocket binary frame.
//!
//! The archive format is pinned in `Cargo.toml` (little-endian, unaligned),
//! so the archived struct is the fields in declaration order with no padding:
//! [`BAR_LEN`] bytes, readable in place from any address, including the
//! unaligned payload buffers librdkafka hands out. Its first two bytes are
//! the format version ([`BAR_FORMAT`]) and stay there in every later format,
//! so a reader refuses a record of another format by name before it reads
//! anything else. `docs/wire-format.md` documents the offsets;
//! `tests/vectors/` holds bytes every decoder checks. This module never
//! touches I/O.

use rkyv::rancor::BoxedError;
use rkyv::{Archive, Deserialize, Serialize};
use thiserror::Error;

use super::borsh::Pubkey;

/// The format this code writes and reads.
pub const BAR_FORMAT: u16 = 2;

/// Length of an archived [`Bar`] in bytes.
pub const BAR_LEN: usize = 193;

/// Length of a format-1 bar (before the format field existed; its first
/// bytes are a mint).
pub const BAR_V1_LEN: usize = 121;

/// Where a bar's trades happened: bits of [`Bar::venues`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Venue {
    /// The pump.fun bonding curve.
    PumpFun = 1,
    /// A PumpSwap pool (after the coin graduated).
    PumpSwap = 2,
}

impl Venue {
    /// Every venue bit in use.
    pub const ALL_BITS: u8 = Self::PumpFun as u8 | Self::PumpSwap as u8;

    /// The venue's bit.
    #[inline]
    pub fn bit(self) -> u8 {
        self as u8
    }

    /// The names of the venues in a bit set, as JSON and the docs spell
    /// them: `pump.fun`, `pumpswap`, joined by `+`.
    pub fn names(bits: u8) -> &'static str {
        match bits & Self::ALL_BITS {
            1 => "pump.fun",
            2 => "pumpswap",
            3 => "pump.fun+pumpswap",
            _ => "none",
        }
    }
}

/// One state of the OHLCV bar of one mint in one window.
#[derive(Debug, Clone, Copy, PartialEq, Archive, Serialize, Deserialize)]
#[rkyv(derive(Debug))]
pub struct Bar {
    /// [`BAR_FORMAT`]; first in every format, so readers check it first.
    pub format: u16,
    /// The venues of the bar's trades ([`Venue`] bits).
    pub venues: u8,
    /// Decimals of the quote mint: volumes in quote base units divided by
    /// `10^quote_decimals` are whole quote units.
    pub quote_decimals: u8,
    /// The token, as its 32-byte public key.
    pub mint: Pubkey,
    /// What prices and quote volumes are in: the quote mint (SOL is the
    /// wrapped-SOL mint).
    pub quote_mint: Pubkey,
    /// Start of the bar, unix seconds, a multiple of `window_s`.
    pub open_time_s: i64,
    /// Window length in seconds (1, 60, 300, 3600, ...).
    pub window_s: u32,
    /// Trades applied to the bar so far.
    pub trades: u32,
    /// Price of the first trade, quote per whole token.
    pub open: f64,
    /// Highest trade price.
    pub high: f64,
    /// Lowest trade price.
    pub low: f64,
    /// Price of the latest trade.
    pub close: f64,
    /// Quote traded, buys and sells, quote base units (lamports for SOL).
    pub volume_quote: u64,
    /// Tokens traded, buys and sells, raw units (6 decimals).
    pub volume_tokens: u64,
    /// Quote spent on buys, quote base units.
    pub buy_volume_quote: u64,
    /// Tokens bought, raw units.
    pub buy_volume_tokens: u64,
    /// Update number within the (mint, window) series, one per update sent,
    /// so a consumer sees a gap when it misses one and can drop stale
    /// updates.
    pub seq: u64,
    /// Wall-clock time the update was produced, unix nanoseconds, so a
    /// receiver can measure end-to-end latency.
    pub produced_ns: u64,
    /// Slot of the last trade applied to the bar (0 when the source has no
    /// slots: mock, `Program data:` replay).
    pub last_slot: u64,
    /// First eight bytes of that trade's transaction signature (as a
    /// little-endian u64; 0 without one).
    pub last_signature: u64,
    /// Index of that trade's event within its transaction.
    pub last_event: u32,
    /// Where the live source resumes after a restart: every trade of an
    /// earlier slot had been applied and acknowledged by Kafka when this
    /// update was produced (0 for other sources).
    pub resume_slot: u64,
    /// `true` on the final update of the bar.
    pub closed: bool,
}

/// Why bytes are not a valid archived bar.
#[derive(Debug, Error)]
pub enum BarError {
    /// A format-1 record (klinecast before the format field).
    #[error(
        "bar format 1 ({BAR_V1_LEN} bytes, written before prices carried their quote): this reader reads format \
         {BAR_FORMAT}; read a topic written by a current klinecast"
    )]
    FormatOne,
    /// A record of a format other than [`BAR_FORMAT`].
    #[error("bar format {found}, this reader reads format {BAR_FORMAT}: upgrade the reader to read newer bars")]
    UnsupportedFormat {
        /// The format field's value.
        found: u16,
    },
    /// Every archived bar of this format is exactly [`BAR_LEN`] bytes.
    #[error("not an archived Bar: {len} bytes, expected {BAR_LEN}")]
    WrongLength {
        /// Length of the rejected payload.
        len: usize,
    },
    /// A byte pattern rkyv's validation rejects.
    #[error("not an archived Bar: {0}")]
    Malformed(BoxedError),
    /// Well-formed bytes whose values break a bar invariant.
    #[error("invalid bar: {0}")]
    Invariant(&'static str),
}

impl BarError {
    /// Whether the record is of another format (as opposed to broken).
    pub fn is_format(&self) -> bool {
        matches!(self, Self::FormatOne | Self::UnsupportedFormat { .. })
    }
}

impl Bar {
    /// A bar of one trade of `mint` at `price` SOL, volumes of 1 base unit,
    /// `seq` 1, open: a starting point for tests and benchmarks that set
    /// the fields they care about.
    pub fn one_trade(mint: Pubkey, window_s: u32, open_time_s: i64, price: f64) -> Self {
        Self {
            format: BAR_FORMAT,
            venues: Venue::PumpFun.bit(),
            quote_decimals: 9,
            mint,
            quote_mint: super::quote::WSOL_MINT,
            open_time_s,
            window_s,
            trades: 1,
            open: price,
            high: price,
            low: price,
            close: price,
            volume_quote: 1,
            volume_tokens: 1,
            buy_volume_quote: 0,
            buy_volume_tokens: 0,
            seq: 1,
            produced_ns: 0,
            last_slot: 0,
            last_signature: 0,
            last_event: 0,
            resume_slot: 0,
            closed: false,
        }
    }

    /// Writes the archived form into `out` (cleared first), reusing its
    /// allocation.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.clear();
        let taken = std::mem::take(out);
        // Serializing a pointer-free struct into a Vec cannot fail: the only
        // error source would be allocation, which aborts instead.
        *out = rkyv::api::high::to_bytes_in::<_, BoxedError>(self, taken).unwrap_or_default();
    }

    /// The archived form as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(BAR_LEN);
        self.encode_into(&mut out);
        out
    }

    /// Checks the invariants every bar satisfies where it is made and where
    /// it is consumed.
    pub fn check(&self) -> Result<(), BarError> {
        check_fields(&Checked {
            format: self.format,
            venues: self.venues,
            window_s: self.window_s,
            open_time_s: self.open_time_s,
            ohlc: [self.open, self.high, self.low, self.close],
            trades: self.trades,
        })
    }

    /// Volume in whole quote units.
    pub fn volume_quote_units(&self) -> f64 {
        self.volume_quote as f64 / super::trade::pow10(self.quote_decimals)
    }
}

/// The format of a record: the format field, or 1 for a record of format
/// 1's length (which had no field); [`u16::MAX`] for one too short to say.
pub fn format_of(bytes: &[u8]) -> u16 {
    match bytes {
        _ if bytes.len() == BAR_V1_LEN => 1,
        [a, b, ..] => u16::from_le_bytes([*a, *b]),
        _ => u16::MAX,
    }
}

/// Reads an archived bar in place (zero-copy) after validating its format,
/// its bytes and its invariants. Works at any alignment.
pub fn access(bytes: &[u8]) -> Result<&ArchivedBar, BarError> {
    if bytes.len() == BAR_V1_LEN {
        return Err(BarError::FormatOne);
    }
    if let Some(head) = bytes.first_chunk::<2>() {
        let found = u16::from_le_bytes(*head);
        if found != BAR_FORMAT {
            return Err(BarError::UnsupportedFormat { found });
        }
    }
    if bytes.len() != BAR_LEN {
        return Err(BarError::WrongLength { len: bytes.len() });
    }
    let bar = rkyv::access::<ArchivedBar, BoxedError>(bytes).map_err(BarError::Malformed)?;
    bar.check()?;
    Ok(bar)
}

impl ArchivedBar {
    /// The bar as a native value.
    pub fn to_bar(&self) -> Bar {
        Bar {
            format: self.format.to_native(),
            venues: self.venues,
            quote_decimals: self.quote_decimals,
            mint: self.mint,
            quote_mint: self.quote_mint,
            open_time_s: self.open_time_s.to_native(),
            window_s: self.window_s.to_native(),
            trades: self.trades.to_native(),
            open: self.open.to_native(),
            high: self.high.to_native(),
            low: self.low.to_native(),
            close: self.close.to_native(),
            volume_quote: self.volume_quote.to_native(),
            volume_tokens: self.volume_tokens.to_native(),
            buy_volume_quote: self.buy_volume_quote.to_native(),
            buy_volume_tokens: self.buy_volume_tokens.to_native(),
            seq: self.seq.to_native(),
            produced_ns: self.produced_ns.to_native(),
            last_slot: self.last_slot.to_native(),
            last_signature: self.last_signature.to_native(),
            last_event: self.last_event.to_native(),
            resume_slot: self.resume_slot.to_native(),
            closed: self.closed,
        }
    }

    /// [`Bar::check`] on the archived form.
    pub fn check(&self) -> Result<(), BarError> {
        check_fields(&Checked {
            format: self.format.to_native(),
            venues: self.venues,
            window_s: self.window_s.to_native(),
            open_time_s: self.open_time_s.to_native(),
            ohlc: [self.open.to_native(), self.high.to_native(), self.low.to_native(), self.close.to_native()],
            trades: self.trades.to_native(),
        })
    }
}

/// The fields the invariants are about.
struct Checked {
    format: u16,
    venues: u8,
    window_s: u32,
    open_time_s: i64,
    ohlc: [f64; 4],
    trades: u32,
}

fn check_fields(bar: &Checked) -> Result<(), BarError> {
    let [open, high, low, close] = bar.ohlc;
    if bar.format != BAR_FORMAT {
        return Err(BarError::UnsupportedFormat { found: bar.format });
    }
    if bar.venues == 0 || bar.venues & !Venue::ALL_BITS != 0 {
        return Err(BarError::Invariant("venues must be pump.fun, pumpswap or both"));
    }
    if bar.window_s == 0 {
        return Err(BarError::Invariant("window is zero"));
    }
    if bar.open_time_s.rem_euclid(i64::from(bar.window_s)) != 0 {
        return Err(BarError::Invariant("open_time is not aligned to the window"));
    }
    if bar.trades == 0 {
        return Err(BarError::Invariant("a bar has at least one trade"));
    }
    if !bar.ohlc.iter().all(|p| p.is_finite() && *p >= 0.0) {
        return Err(BarError::Invariant("prices must be finite and non-negative"));
    }
    if !(low <= open && low <= close && open <= high && close <= high) {
        return Err(BarError::Invariant("low <= open, close <= high does not hold"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Bar {
        Bar {
            format: BAR_FORMAT,
            venues: Venue::PumpFun.bit(),
            quote_decimals: 9,
            mint: [3; 32],
            quote_mint: crate::codec::quote::WSOL_MINT,
            open_time_s: 1_770_648_660,
            window_s: 60,
            trades: 12,
            open: 2.5e-8,
            high: 3.0e-8,
            low: 2.0e-8,
            close: 2.75e-8,
            volume_quote: 9_000_000_000,
            volume_tokens: 330_000_000_000,
            buy_volume_quote: 6_000_000_000,
            buy_volume_tokens: 200_000_000_000,
            seq: 17,
            produced_ns: 1_770_648_700_123_456_789,
            last_slot: 440_741_846,
            last_signature: 0x0102_0304_0506_0708,
            last_event: 2,
            resume_slot: 440_741_840,
            closed: true,
        }
    }

    #[test]
    fn archive_is_fixed_size_and_round_trips() {
        let bar = sample();
        let bytes = bar.to_bytes();
        assert_eq!(bytes.len(), BAR_LEN);
        assert_eq!(access(&bytes).map(ArchivedBar::to_bar).ok(), Some(bar));
    }

    #[test]
    fn reads_in_place_at_every_alignment() {
        let bytes = sample().to_bytes();
        for shift in 0..8 {
            let mut buf = vec![0u8; shift];
            buf.extend_from_slice(&bytes);
            let bar = access(&buf[shift..]).map(ArchivedBar::to_bar);
            assert_eq!(bar.ok(), Some(sample()), "shift {shift}");
        }
    }

    #[test]
    fn layout_matches_the_documented_offsets() {
        let bytes = sample().to_bytes();
        assert_eq!(bytes[0..2], 2u16.to_le_bytes());
        assert_eq!((bytes[2], bytes[3]), (1, 9));
        assert_eq!(&bytes[4..36], &[3; 32]);
        assert_eq!(&bytes[36..68], &crate::codec::quote::WSOL_MINT);
        assert_eq!(bytes[68..76], 1_770_648_660i64.to_le_bytes());
        assert_eq!(bytes[76..80], 60u32.to_le_bytes());
        assert_eq!(bytes[80..84], 12u32.to_le_bytes());
        assert_eq!(bytes[84..92], 2.5e-8f64.to_le_bytes());
        assert_eq!(bytes[108..116], 2.75e-8f64.to_le_bytes());
        assert_eq!(bytes[116..124], 9_000_000_000u64.to_le_bytes());
        assert_eq!(bytes[140..148], 200_000_000_000u64.to_le_bytes());
        assert_eq!(bytes[148..156], 17u64.to_le_bytes());
        assert_eq!(bytes[156..164], 1_770_648_700_123_456_789u64.to_le_bytes());
        assert_eq!(bytes[164..172], 440_741_846u64.to_le_bytes());
        assert_eq!(bytes[172..180], 0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(bytes[180..184], 2u32.to_le_bytes());
        assert_eq!(bytes[184..192], 440_741_840u64.to_le_bytes());
        assert_eq!(bytes[192], 1);
    }

    #[test]
    fn other_formats_are_refused_by_name() {
        let bytes = sample().to_bytes();
        assert!(matches!(access(&bytes[..BAR_V1_LEN]), Err(BarError::FormatOne)));
        let mut newer = bytes.clone();
        newer[0] = 3;
        let error = access(&newer).err();
        assert!(matches!(error, Some(BarError::UnsupportedFormat { found: 3 })));
        assert!(error.is_some_and(|e| e.is_format() && e.to_string().contains("format 3")));
        newer.extend_from_slice(&[0; 40]);
        assert!(matches!(access(&newer), Err(BarError::UnsupportedFormat { found: 3 })), "format first, then length");
    }

    #[test]
    fn rejects_wrong_sizes_and_bad_bools() {
        let bytes = sample().to_bytes();
        assert!(matches!(access(&bytes[..BAR_LEN - 1]), Err(BarError::WrongLength { len: 192 })));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(access(&long), Err(BarError::WrongLength { len: 194 })));
        let mut bad_bool = bytes;
        bad_bool[BAR_LEN - 1] = 2;
        let err = access(&bad_bool).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("not an archived Bar"), "{err}");
    }

    #[test]
    fn rejects_broken_invariants() {
        type Breaks = fn(&mut Bar);
        let cases: [(&str, Breaks); 7] = [
            ("aligned", |b| b.open_time_s += 1),
            ("window", |b| b.window_s = 0),
            ("low <=", |b| b.low = b.high * 2.0),
            ("finite", |b| b.close = f64::NAN),
            ("at least one trade", |b| b.trades = 0),
            ("venues", |b| b.venues = 0),
            ("venues", |b| b.venues = 4),
        ];
        for (needle, breaks) in cases {
            let mut bar = sample();
            breaks(&mut bar);
            let err = access(&bar.to_bytes()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }
}
