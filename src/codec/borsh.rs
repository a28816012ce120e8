//! Reading Anchor events: an 8-byte discriminator, then Borsh fields in
//! order. Program upgrades append fields, so a record may end after any
//! field of the newest layout this code knows, and may carry bytes after the
//! last one; a record that ends inside a field is truncated.
//!
//! [`Fields`] is the cursor every event decoder walks with; it never
//! allocates and never panics, and its errors are the small [`DecodeError`]
//! every decoder returns.

use thiserror::Error;

/// A 32-byte Solana public key (a mint, a pool, a user).
pub type Pubkey = [u8; 32];

/// The first eight bytes of an Anchor event: `sha256("event:<Name>")[..8]`.
pub type Discriminator = [u8; 8];

/// Why a record is not the event its decoder reads. Small and `Copy`:
/// rejections are normal operation on a live feed, so they must not
/// allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The record ends before the last field of the oldest layout.
    #[error("record too short: {len} bytes, the oldest layout has {need}")]
    TooShort {
        /// Length of the rejected record.
        len: usize,
        /// Length of the oldest layout.
        need: usize,
    },
    /// The record ends inside a field: it is neither one of the layouts
    /// (each ends after a field) nor a known layout plus trailing bytes.
    #[error("record truncated: {len} bytes end inside field `{field}`")]
    Truncated {
        /// Length of the rejected record.
        len: usize,
        /// The field the record ends in.
        field: &'static str,
    },
    /// Another Anchor event, or not an event at all.
    #[error("unexpected discriminator {found:02x?}")]
    WrongDiscriminator {
        /// The first eight bytes of the record.
        found: Discriminator,
    },
    /// Borsh encodes `bool` as exactly 0 or 1.
    #[error("field `{field}`: bool byte {byte:#04x} (Borsh bool must be 0 or 1)")]
    BadBool {
        /// The field.
        field: &'static str,
        /// The offending byte.
        byte: u8,
    },
    /// A Borsh string that is not UTF-8.
    #[error("field `{field}`: string is not UTF-8")]
    BadString {
        /// The field.
        field: &'static str,
    },
}

/// The kinds of [`DecodeError`], for counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectKind {
    /// [`DecodeError::TooShort`] or [`DecodeError::Truncated`].
    Short,
    /// [`DecodeError::WrongDiscriminator`].
    OtherEvent,
    /// [`DecodeError::BadBool`] or [`DecodeError::BadString`].
    BadValue,
}

impl RejectKind {
    /// Every kind, in counter order.
    pub const ALL: [Self; 3] = [Self::Short, Self::OtherEvent, Self::BadValue];

    /// The label used in logs and `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Short => "short",
            Self::OtherEvent => "other_event",
            Self::BadValue => "bad_value",
        }
    }
}

impl DecodeError {
    /// The counter this rejection goes to.
    pub fn kind(&self) -> RejectKind {
        match self {
            Self::TooShort { .. } | Self::Truncated { .. } => RejectKind::Short,
            Self::WrongDiscriminator { .. } => RejectKind::OtherEvent,
            Self::BadBool { .. } | Self::BadString { .. } => RejectKind::BadValue,
        }
    }
}

/// Borsh fields of one record, read in order from just after the
/// discriminator.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    /// The whole record, discriminator included (offsets in errors and
    /// lengths are the record's).
    bytes: &'a [u8],
    /// Offset of the next field.
    at: usize,
}

impl<'a> Fields<'a> {
    /// Fields of `bytes` from `at` on.
    #[inline]
    pub fn at(bytes: &'a [u8], at: usize) -> Self {
        Self { bytes, at }
    }

    /// Whether the record ends here: a layout that stops before the next
    /// field.
    #[inline]
    pub fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    /// Offset of the next field.
    pub fn offset(&self) -> usize {
        self.at
    }

    /// Bytes after the current field.
    pub fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.at)
    }

    /// The next `N` bytes as field `field`.
    #[inline]
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let end = self.at + N;
        let Some(chunk) = self.bytes.get(self.at..end) else {
            return Err(DecodeError::Truncated { len: self.bytes.len(), field });
        };
        let mut out = [0u8; N];
        out.copy_from_slice(chunk);
        self.at = end;
        Ok(out)
    }

    /// A public key.
    #[inline]
    pub fn pubkey(&mut self, field: &'static str) -> Result<Pubkey, DecodeError> {
        self.array(field)
    }

    /// A little-endian `u64`.
    #[inline]
    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.array(field).map(u64::from_le_bytes)
    }

    /// A little-endian `i64`.
    #[inline]
    pub fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        self.array(field).map(i64::from_le_bytes)
    }

    /// A little-endian `u16`.
    #[inline]
    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.array(field).map(u16::from_le_bytes)
    }

    /// A `u8`.
    #[inline]
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.array::<1>(field).map(|[b]| b)
    }

    /// A Borsh `bool`: 0 or 1.
    #[inline]
    pub fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            byte => Err(DecodeError::BadBool { field, byte }),
        }
    }

    /// A Borsh `string`: a `u32` length, then that many UTF-8 bytes.
    pub fn string(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let len = self.array::<4>(field).map(u32::from_le_bytes)? as usize;
        let raw = self.take(len, field)?;
        std::str::from_utf8(raw).map_err(|_| DecodeError::BadString { field })
    }

    /// A Borsh `Vec` of fixed-size elements: a `u32` count, then the
    /// elements, returned as one slice of `count * element_len` bytes.
    pub fn vec(&mut self, field: &'static str, element_len: usize) -> Result<&'a [u8], DecodeError> {
        let count = self.array::<4>(field).map(u32::from_le_bytes)? as usize;
        // A count that cannot fit in the record is truncation, checked
        // before multiplying so a hostile count cannot overflow.
        if count > self.remaining() / element_len.max(1) {
            return Err(DecodeError::Truncated { len: self.bytes.len(), field });
        }
        self.take(count * element_len, field)
    }

    /// The next `len` bytes.
    fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(len).filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(DecodeError::Truncated { len: self.bytes.len(), field });
        };
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
}

/// Checks the discriminator and the shortest layout's length.
#[inline(always)]
pub fn check_head(bytes: &[u8], discriminator: &Discriminator, min_len: usize) -> Result<(), DecodeError> {
    let Some(found) = bytes.first_chunk::<8>() else {
        return Err(DecodeError::TooShort { len: bytes.len(), need: min_len });
    };
    if found != discriminator {
        return Err(DecodeError::WrongDiscriminator { found: *found });
    }
    if bytes.len() < min_len {
        return Err(DecodeError::TooShort { len: bytes.len(), need: min_len });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_in_order_and_names_the_one_cut() {
        let mut bytes = vec![0u8; 8];
        bytes.extend_from_slice(&7u64.to_le_bytes());
        bytes.push(1);
        bytes.extend_from_slice(&3u32.to_le_bytes());
        bytes.extend_from_slice(b"buy");
        let mut f = Fields::at(&bytes, 8);
        assert_eq!(f.u64("a"), Ok(7));
        assert_eq!(f.bool("b"), Ok(true));
        assert_eq!(f.string("c"), Ok("buy"));
        assert!(f.done());
        assert_eq!(f.u64("d"), Err(DecodeError::Truncated { len: bytes.len(), field: "d" }));
    }

    #[test]
    fn hostile_lengths_are_truncation_not_panics() {
        let mut bytes = vec![0u8; 8];
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(Fields::at(&bytes, 8).string("s"), Err(DecodeError::Truncated { field: "s", .. })));
        assert!(matches!(Fields::at(&bytes, 8).vec("v", 34), Err(DecodeError::Truncated { field: "v", .. })));
        let mut bad = vec![0u8; 8];
        bad.extend_from_slice(&2u32.to_le_bytes());
        bad.extend_from_slice(&[0xff, 0xfe]);
        assert_eq!(Fields::at(&bad, 8).string("s"), Err(DecodeError::BadString { field: "s" }));
        assert_eq!(
            Fields::at(&[0, 0, 0, 0, 0, 0, 0, 0, 2], 8).bool("b"),
            Err(DecodeError::BadBool { field: "b", byte: 2 })
        );
    }
}
