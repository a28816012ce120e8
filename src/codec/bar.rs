//! `Bar`, one K-line update, and its wire form: the rkyv archive that is the
//! Kafka message value and the WebSocket binary frame.
//!
//! The archive format is pinned in `Cargo.toml` (little-endian, unaligned),
//! so the archived struct is the fields in declaration order with no padding:
//! [`BAR_LEN`] bytes, readable in place from any address, including the
//! unaligned payload buffers librdkafka hands out. `docs/wire-format.md`
//! documents the offsets; `tests/vectors/` holds bytes every decoder checks.
//! This module never touches I/O.

use rkyv::rancor::BoxedError;
use rkyv::{Archive, Deserialize, Serialize};
use thiserror::Error;

use super::trade::Pubkey;

/// Length of an archived [`Bar`] in bytes.
pub const BAR_LEN: usize = 121;

/// One state of the OHLCV bar of one mint in one window.
#[derive(Debug, Clone, Copy, PartialEq, Archive, Serialize, Deserialize)]
#[rkyv(derive(Debug))]
pub struct Bar {
    /// The token, as its 32-byte public key.
    pub mint: Pubkey,
    /// Start of the bar, unix seconds, a multiple of `window_s`.
    pub open_time_s: i64,
    /// Window length in seconds (1, 60, 300, 3600, ...).
    pub window_s: u32,
    /// Trades applied to the bar so far.
    pub trades: u32,
    /// Price of the first trade, SOL per whole token.
    pub open: f64,
    /// Highest trade price.
    pub high: f64,
    /// Lowest trade price.
    pub low: f64,
    /// Price of the latest trade.
    pub close: f64,
    /// SOL traded, buys and sells, lamports.
    pub volume_lamports: u64,
    /// Tokens traded, buys and sells, raw units (6 decimals).
    pub volume_tokens: u64,
    /// SOL spent on buys, lamports.
    pub buy_volume_lamports: u64,
    /// Update number within the (mint, window) series, from 1, one per
    /// update sent, so a consumer sees a gap when it misses one and can drop
    /// stale updates.
    pub seq: u64,
    /// Wall-clock time the update was produced, unix nanoseconds, so a
    /// receiver can measure end-to-end latency.
    pub produced_ns: u64,
    /// `true` on the final update of the bar.
    pub closed: bool,
}

/// Why bytes are not a valid archived bar.
#[derive(Debug, Error)]
pub enum BarError {
    /// Every archived bar is exactly [`BAR_LEN`] bytes.
    #[error("not an archived Bar: {len} bytes, expected {BAR_LEN}")]
    WrongLength {
        /// Length of the rejected payload.
        len: usize,
    },
    /// Wrong size, or a byte pattern rkyv's validation rejects.
    #[error("not an archived Bar: {0}")]
    Malformed(BoxedError),
    /// Well-formed bytes whose values break a bar invariant.
    #[error("invalid bar: {0}")]
    Invariant(&'static str),
}

impl Bar {
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
        check_fields(self.window_s, self.open_time_s, [self.open, self.high, self.low, self.close], self.trades)
    }
}

/// Reads an archived bar in place (zero-copy) after validating its bytes and
/// its invariants. Works at any alignment.
pub fn access(bytes: &[u8]) -> Result<&ArchivedBar, BarError> {
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
            mint: self.mint,
            open_time_s: self.open_time_s.to_native(),
            window_s: self.window_s.to_native(),
            trades: self.trades.to_native(),
            open: self.open.to_native(),
            high: self.high.to_native(),
            low: self.low.to_native(),
            close: self.close.to_native(),
            volume_lamports: self.volume_lamports.to_native(),
            volume_tokens: self.volume_tokens.to_native(),
            buy_volume_lamports: self.buy_volume_lamports.to_native(),
            seq: self.seq.to_native(),
            produced_ns: self.produced_ns.to_native(),
            closed: self.closed,
        }
    }

    /// [`Bar::check`] on the archived form.
    pub fn check(&self) -> Result<(), BarError> {
        check_fields(
            self.window_s.to_native(),
            self.open_time_s.to_native(),
            [self.open.to_native(), self.high.to_native(), self.low.to_native(), self.close.to_native()],
            self.trades.to_native(),
        )
    }
}

fn check_fields(window_s: u32, open_time_s: i64, ohlc: [f64; 4], trades: u32) -> Result<(), BarError> {
    let [open, high, low, close] = ohlc;
    if window_s == 0 {
        return Err(BarError::Invariant("window is zero"));
    }
    if open_time_s.rem_euclid(i64::from(window_s)) != 0 {
        return Err(BarError::Invariant("open_time is not aligned to the window"));
    }
    if trades == 0 {
        return Err(BarError::Invariant("a bar has at least one trade"));
    }
    if !ohlc.iter().all(|p| p.is_finite() && *p >= 0.0) {
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
            mint: [3; 32],
            open_time_s: 1_770_648_660,
            window_s: 60,
            trades: 12,
            open: 2.5e-8,
            high: 3.0e-8,
            low: 2.0e-8,
            close: 2.75e-8,
            volume_lamports: 9_000_000_000,
            volume_tokens: 330_000_000_000,
            buy_volume_lamports: 6_000_000_000,
            seq: 17,
            produced_ns: 1_770_648_700_123_456_789,
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
        assert_eq!(&bytes[0..32], &[3; 32]);
        assert_eq!(bytes[32..40], 1_770_648_660i64.to_le_bytes());
        assert_eq!(bytes[40..44], 60u32.to_le_bytes());
        assert_eq!(bytes[44..48], 12u32.to_le_bytes());
        assert_eq!(bytes[48..56], 2.5e-8f64.to_le_bytes());
        assert_eq!(bytes[72..80], 2.75e-8f64.to_le_bytes());
        assert_eq!(bytes[104..112], 17u64.to_le_bytes());
        assert_eq!(bytes[112..120], 1_770_648_700_123_456_789u64.to_le_bytes());
        assert_eq!(bytes[120], 1);
    }

    #[test]
    fn rejects_wrong_sizes_and_bad_bools() {
        let bytes = sample().to_bytes();
        assert!(matches!(access(&bytes[..BAR_LEN - 1]), Err(BarError::WrongLength { len: 120 })));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(access(&long), Err(BarError::WrongLength { len: 122 })));
        let mut bad_bool = bytes;
        bad_bool[120] = 2;
        let err = access(&bad_bool).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("not an archived Bar"), "{err}");
    }

    #[test]
    fn rejects_broken_invariants() {
        type Breaks = fn(&mut Bar);
        let cases: [(&str, Breaks); 5] = [
            ("aligned", |b| b.open_time_s += 1),
            ("window", |b| b.window_s = 0),
            ("low <=", |b| b.low = b.high * 2.0),
            ("finite", |b| b.close = f64::NAN),
            ("at least one trade", |b| b.trades = 0),
        ];
        for (needle, breaks) in cases {
            let mut bar = sample();
            breaks(&mut bar);
            let err = access(&bar.to_bytes()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }
}
