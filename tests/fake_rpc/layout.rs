//! Borsh layouts of the pump.fun and PumpSwap records the tests handle, as
//! pump-fun/pump-public-docs `idl/pump.json` and `idl/pump_amm.json` (commit
//! 1b822158844a) list their fields, and the offsets of those fields inside a
//! real record. No I/O.
//!
//! A record's layout is read from its bytes: every layout change so far
//! appended fields, so a record holds some prefix of the field list (walked
//! until the bytes end at a field boundary), then maybe bytes the IDL does not
//! describe. Strings and vectors make later offsets depend on the record, which
//! is why offsets are computed per record rather than kept as constants.

use thiserror::Error;

/// The type of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Pubkey,
    U64,
    I64,
    U16,
    U8,
    Bool,
    /// u32 length + UTF-8 bytes.
    Str,
    /// `Vec<Shareholder { address: Pubkey, share_bps: u16 }>`: u32 length +
    /// 34 bytes an element.
    Shareholders,
}

/// A record layout: a name, its 8-byte discriminator, its fields in order.
#[derive(Debug)]
pub struct Layout {
    pub name: &'static str,
    pub discriminator: [u8; 8],
    pub fields: &'static [(&'static str, FieldType)],
}

use FieldType::{Bool, I64, Pubkey, Shareholders, Str, U8, U16, U64};

/// pump.fun `TradeEvent`.
pub static TRADE_EVENT: Layout = Layout {
    name: "TradeEvent",
    discriminator: [0xbd, 0xdb, 0x7f, 0xd3, 0x4e, 0xe6, 0x61, 0xee],
    fields: &[
        ("mint", Pubkey),
        ("sol_amount", U64),
        ("token_amount", U64),
        ("is_buy", Bool),
        ("user", Pubkey),
        ("timestamp", I64),
        ("virtual_sol_reserves", U64),
        ("virtual_token_reserves", U64),
        ("real_sol_reserves", U64),
        ("real_token_reserves", U64),
        ("fee_recipient", Pubkey),
        ("fee_basis_points", U64),
        ("fee", U64),
        ("creator", Pubkey),
        ("creator_fee_basis_points", U64),
        ("creator_fee", U64),
        ("track_volume", Bool),
        ("total_unclaimed_tokens", U64),
        ("total_claimed_tokens", U64),
        ("current_sol_volume", U64),
        ("last_update_timestamp", I64),
        ("ix_name", Str),
        ("mayhem_mode", Bool),
        ("cashback_fee_basis_points", U64),
        ("cashback", U64),
        ("buyback_fee_basis_points", U64),
        ("buyback_fee", U64),
        ("shareholders", Shareholders),
        ("quote_mint", Pubkey),
        ("quote_amount", U64),
        ("virtual_quote_reserves", U64),
        ("real_quote_reserves", U64),
    ],
};

/// pump.fun `CreateEvent`.
pub static CREATE_EVENT: Layout = Layout {
    name: "CreateEvent",
    discriminator: [0x1b, 0x72, 0xa9, 0x4d, 0xde, 0xeb, 0x63, 0x76],
    fields: &[
        ("name", Str),
        ("symbol", Str),
        ("uri", Str),
        ("mint", Pubkey),
        ("bonding_curve", Pubkey),
        ("user", Pubkey),
        ("creator", Pubkey),
        ("timestamp", I64),
        ("virtual_token_reserves", U64),
        ("virtual_sol_reserves", U64),
        ("real_token_reserves", U64),
        ("token_total_supply", U64),
        ("token_program", Pubkey),
        ("is_mayhem_mode", Bool),
        ("is_cashback_enabled", Bool),
        ("quote_mint", Pubkey),
        ("virtual_quote_reserves", U64),
    ],
};

/// pump.fun `CompleteEvent` (the curve is full).
pub static COMPLETE_EVENT: Layout = Layout {
    name: "CompleteEvent",
    discriminator: [0x5f, 0x72, 0x61, 0x9c, 0xd4, 0x2e, 0x98, 0x08],
    fields: &[
        ("user", Pubkey),
        ("mint", Pubkey),
        ("bonding_curve", Pubkey),
        ("timestamp", I64),
        ("quote_mint", Pubkey),
    ],
};

/// pump.fun `CompletePumpAmmMigrationEvent`: ties a graduating coin to its
/// PumpSwap pool.
pub static MIGRATION_EVENT: Layout = Layout {
    name: "CompletePumpAmmMigrationEvent",
    discriminator: [0xbd, 0xe9, 0x5d, 0xb9, 0x5c, 0x94, 0xea, 0x94],
    fields: &[
        ("user", Pubkey),
        ("mint", Pubkey),
        ("mint_amount", U64),
        ("sol_amount", U64),
        ("pool_migration_fee", U64),
        ("bonding_curve", Pubkey),
        ("timestamp", I64),
        ("pool", Pubkey),
        ("quote_mint", Pubkey),
    ],
};

/// PumpSwap `BuyEvent`.
pub static BUY_EVENT: Layout = Layout {
    name: "BuyEvent",
    discriminator: [0x67, 0xf4, 0x52, 0x1f, 0x2c, 0xf5, 0x77, 0x77],
    fields: &[
        ("timestamp", I64),
        ("base_amount_out", U64),
        ("max_quote_amount_in", U64),
        ("user_base_token_reserves", U64),
        ("user_quote_token_reserves", U64),
        ("pool_base_token_reserves", U64),
        ("pool_quote_token_reserves", U64),
        ("quote_amount_in", U64),
        ("lp_fee_basis_points", U64),
        ("lp_fee", U64),
        ("protocol_fee_basis_points", U64),
        ("protocol_fee", U64),
        ("quote_amount_in_with_lp_fee", U64),
        ("user_quote_amount_in", U64),
        ("pool", Pubkey),
        ("user", Pubkey),
        ("user_base_token_account", Pubkey),
        ("user_quote_token_account", Pubkey),
        ("protocol_fee_recipient", Pubkey),
        ("protocol_fee_recipient_token_account", Pubkey),
        ("coin_creator", Pubkey),
        ("coin_creator_fee_basis_points", U64),
        ("coin_creator_fee", U64),
        ("track_volume", Bool),
        ("total_unclaimed_tokens", U64),
        ("total_claimed_tokens", U64),
        ("current_sol_volume", U64),
        ("last_update_timestamp", I64),
        ("min_base_amount_out", U64),
        ("ix_name", Str),
        ("cashback_fee_basis_points", U64),
        ("cashback", U64),
        ("buyback_fee_basis_points", U64),
        ("buyback_fee", U64),
    ],
};

/// PumpSwap `SellEvent`.
pub static SELL_EVENT: Layout = Layout {
    name: "SellEvent",
    discriminator: [0x3e, 0x2f, 0x37, 0x0a, 0xa5, 0x03, 0xdc, 0x2a],
    fields: &[
        ("timestamp", I64),
        ("base_amount_in", U64),
        ("min_quote_amount_out", U64),
        ("user_base_token_reserves", U64),
        ("user_quote_token_reserves", U64),
        ("pool_base_token_reserves", U64),
        ("pool_quote_token_reserves", U64),
        ("quote_amount_out", U64),
        ("lp_fee_basis_points", U64),
        ("lp_fee", U64),
        ("protocol_fee_basis_points", U64),
        ("protocol_fee", U64),
        ("quote_amount_out_without_lp_fee", U64),
        ("user_quote_amount_out", U64),
        ("pool", Pubkey),
        ("user", Pubkey),
        ("user_base_token_account", Pubkey),
        ("user_quote_token_account", Pubkey),
        ("protocol_fee_recipient", Pubkey),
        ("protocol_fee_recipient_token_account", Pubkey),
        ("coin_creator", Pubkey),
        ("coin_creator_fee_basis_points", U64),
        ("coin_creator_fee", U64),
        ("cashback_fee_basis_points", U64),
        ("cashback", U64),
        ("buyback_fee_basis_points", U64),
        ("buyback_fee", U64),
    ],
};

/// PumpSwap `CreatePoolEvent`.
pub static CREATE_POOL_EVENT: Layout = Layout {
    name: "CreatePoolEvent",
    discriminator: [0xb1, 0x31, 0x0c, 0xd2, 0xa0, 0x76, 0xa7, 0x74],
    fields: &[
        ("timestamp", I64),
        ("index", U16),
        ("creator", Pubkey),
        ("base_mint", Pubkey),
        ("quote_mint", Pubkey),
        ("base_mint_decimals", U8),
        ("quote_mint_decimals", U8),
        ("base_amount_in", U64),
        ("quote_amount_in", U64),
        ("pool_base_amount", U64),
        ("pool_quote_amount", U64),
        ("minimum_liquidity", U64),
        ("initial_liquidity", U64),
        ("lp_token_amount_out", U64),
        ("pool_bump", U8),
        ("pool", Pubkey),
        ("lp_mint", Pubkey),
        ("user_base_token_account", Pubkey),
        ("user_quote_token_account", Pubkey),
        ("coin_creator", Pubkey),
        ("is_mayhem_mode", Bool),
    ],
};

/// PumpSwap `Pool` account data.
pub static POOL_ACCOUNT: Layout = Layout {
    name: "Pool",
    discriminator: [0xf1, 0x9a, 0x6d, 0x04, 0x11, 0xb1, 0x6d, 0xbc],
    fields: &[
        ("pool_bump", U8),
        ("index", U16),
        ("creator", Pubkey),
        ("base_mint", Pubkey),
        ("quote_mint", Pubkey),
        ("lp_mint", Pubkey),
        ("pool_base_token_account", Pubkey),
        ("pool_quote_token_account", Pubkey),
        ("lp_supply", U64),
        ("coin_creator", Pubkey),
        ("is_mayhem_mode", Bool),
        ("is_cashback_coin", Bool),
    ],
};

/// Every layout, looked up by discriminator.
pub static ALL: [&Layout; 8] = [
    &TRADE_EVENT,
    &CREATE_EVENT,
    &COMPLETE_EVENT,
    &MIGRATION_EVENT,
    &BUY_EVENT,
    &SELL_EVENT,
    &CREATE_POOL_EVENT,
    &POOL_ACCOUNT,
];

/// What can go wrong reading or rewriting a record.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum LayoutError {
    #[error("no known layout has discriminator {0}")]
    UnknownDiscriminator(String),
    #[error("record is shorter than a discriminator")]
    TooShort,
    #[error("{layout} record has no field {field} (its bytes end before it, or the layout has no such field)")]
    MissingField { layout: &'static str, field: String },
    #[error("field {field} of {layout} is {actual:?}, not {wanted:?}")]
    WrongType { layout: &'static str, field: String, actual: FieldType, wanted: FieldType },
    #[error("field {field} of {layout} is cut short by the end of the record")]
    Truncated { layout: &'static str, field: &'static str },
}

/// One field found in a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldAt {
    pub name: &'static str,
    pub ty: FieldType,
    pub offset: usize,
    pub len: usize,
}

/// The layout of a record, from its discriminator.
pub fn layout_of(bytes: &[u8]) -> Result<&'static Layout, LayoutError> {
    let disc = bytes.get(..8).ok_or(LayoutError::TooShort)?;
    ALL.iter()
        .copied()
        .find(|layout| layout.discriminator == disc)
        .ok_or_else(|| LayoutError::UnknownDiscriminator(hex(disc)))
}

impl Layout {
    /// The fields present in `bytes` with their offsets: every field that fits
    /// whole; the walk stops at the first that does not start (a shorter, older
    /// version). A field that starts but is cut short is an error.
    pub fn fields_in(&self, bytes: &[u8]) -> Result<Vec<FieldAt>, LayoutError> {
        let mut offset = 8;
        let mut found = Vec::with_capacity(self.fields.len());
        for &(name, ty) in self.fields {
            if offset >= bytes.len() {
                break;
            }
            let len =
                field_len(ty, &bytes[offset..]).ok_or(LayoutError::Truncated { layout: self.name, field: name })?;
            if offset + len > bytes.len() {
                return Err(LayoutError::Truncated { layout: self.name, field: name });
            }
            found.push(FieldAt { name, ty, offset, len });
            offset += len;
        }
        Ok(found)
    }

    /// Where `name` sits in `bytes`.
    pub fn field(&self, bytes: &[u8], name: &str) -> Result<FieldAt, LayoutError> {
        self.fields_in(bytes)?
            .into_iter()
            .find(|field| field.name == name)
            .ok_or_else(|| LayoutError::MissingField { layout: self.name, field: name.to_owned() })
    }

    /// Bytes after the last field the IDL describes.
    pub fn trailing_len(&self, bytes: &[u8]) -> Result<usize, LayoutError> {
        let end = self.fields_in(bytes)?.last().map_or(8, |field| field.offset + field.len);
        Ok(bytes.len().saturating_sub(end))
    }
}

fn field_len(ty: FieldType, rest: &[u8]) -> Option<usize> {
    Some(match ty {
        Pubkey => 32,
        U64 | I64 => 8,
        U16 => 2,
        U8 | Bool => 1,
        Str => 4 + u32_at(rest)? as usize,
        Shareholders => 4 + 34 * u32_at(rest)? as usize,
    })
}

fn u32_at(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?))
}

/// A field's value, as JSON the way `events.jsonl` writes it (pubkeys in
/// base58, integers as numbers, bools, strings, shareholders as objects).
pub fn value_json(bytes: &[u8], field: &FieldAt) -> serde_json::Value {
    let raw = &bytes[field.offset..field.offset + field.len];
    match field.ty {
        Pubkey => serde_json::Value::String(bs58::encode(raw).into_string()),
        U64 => u64::from_le_bytes(fixed(raw)).into(),
        I64 => i64::from_le_bytes(fixed(raw)).into(),
        U16 => u16::from_le_bytes([raw[0], raw[1]]).into(),
        U8 => raw[0].into(),
        Bool => serde_json::Value::Bool(raw[0] != 0),
        Str => serde_json::Value::String(String::from_utf8_lossy(&raw[4..]).into_owned()),
        Shareholders => serde_json::Value::Array(
            raw[4..]
                .chunks(34)
                .map(|item| {
                    serde_json::json!({
                        "address": bs58::encode(&item[..32]).into_string(),
                        "share_bps": u16::from_le_bytes([item[32], item[33]]),
                    })
                })
                .collect(),
        ),
    }
}

fn fixed(raw: &[u8]) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&raw[..8]);
    out
}

/// Reads a u64 field.
pub fn get_u64(layout: &Layout, bytes: &[u8], name: &str) -> Result<u64, LayoutError> {
    let field = typed(layout, bytes, name, U64)?;
    Ok(u64::from_le_bytes(fixed(&bytes[field.offset..])))
}

/// Reads an i64 field.
pub fn get_i64(layout: &Layout, bytes: &[u8], name: &str) -> Result<i64, LayoutError> {
    let field = typed(layout, bytes, name, I64)?;
    Ok(i64::from_le_bytes(fixed(&bytes[field.offset..])))
}

/// Reads a bool field.
pub fn get_bool(layout: &Layout, bytes: &[u8], name: &str) -> Result<bool, LayoutError> {
    let field = typed(layout, bytes, name, Bool)?;
    Ok(bytes[field.offset] != 0)
}

/// Reads a pubkey field.
pub fn get_pubkey(layout: &Layout, bytes: &[u8], name: &str) -> Result<[u8; 32], LayoutError> {
    let field = typed(layout, bytes, name, Pubkey)?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&bytes[field.offset..field.offset + 32]);
    Ok(key)
}

/// Reads a string field.
pub fn get_str(layout: &Layout, bytes: &[u8], name: &str) -> Result<String, LayoutError> {
    let field = typed(layout, bytes, name, Str)?;
    Ok(String::from_utf8_lossy(&bytes[field.offset + 4..field.offset + field.len]).into_owned())
}

/// Overwrites a u64 field in place; every other byte stays.
pub fn set_u64(layout: &Layout, bytes: &mut [u8], name: &str, value: u64) -> Result<(), LayoutError> {
    let field = typed(layout, bytes, name, U64)?;
    bytes[field.offset..field.offset + 8].copy_from_slice(&value.to_le_bytes());
    Ok(())
}

/// Overwrites an i64 field in place.
pub fn set_i64(layout: &Layout, bytes: &mut [u8], name: &str, value: i64) -> Result<(), LayoutError> {
    let field = typed(layout, bytes, name, I64)?;
    bytes[field.offset..field.offset + 8].copy_from_slice(&value.to_le_bytes());
    Ok(())
}

/// Overwrites a bool field in place.
pub fn set_bool(layout: &Layout, bytes: &mut [u8], name: &str, value: bool) -> Result<(), LayoutError> {
    let field = typed(layout, bytes, name, Bool)?;
    bytes[field.offset] = u8::from(value);
    Ok(())
}

/// Overwrites a pubkey field in place.
pub fn set_pubkey(layout: &Layout, bytes: &mut [u8], name: &str, value: &[u8; 32]) -> Result<(), LayoutError> {
    let field = typed(layout, bytes, name, Pubkey)?;
    bytes[field.offset..field.offset + 32].copy_from_slice(value);
    Ok(())
}

fn typed(layout: &Layout, bytes: &[u8], name: &str, wanted: FieldType) -> Result<FieldAt, LayoutError> {
    let field = layout.field(bytes, name)?;
    if field.ty != wanted {
        return Err(LayoutError::WrongType { layout: layout.name, field: name.to_owned(), actual: field.ty, wanted });
    }
    Ok(field)
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
