//! Every field of every event klinecast reads, as the public IDLs list them
//! (pump-fun/pump-public-docs `idl/pump.json` and `idl/pump_amm.json`), and a
//! decoder that turns a record into all of them as JSON: for `klinecast
//! decode`, and for tests that hold the fast decoders to the IDL.
//!
//! The fast decoders ([`super::trade`], [`super::amm`], [`super::coin`])
//! keep only what pricing needs; this one keeps everything, so it allocates.
//! Both accept the same records: a layout ends after any field of its
//! schema, from the oldest layout's last field on, and may carry bytes the
//! IDL does not describe after the last one.

use serde_json::{Map, Value, json};

use super::amm::{BUY_EVENT_DISCRIMINATOR, CREATE_POOL_EVENT_DISCRIMINATOR, SELL_EVENT_DISCRIMINATOR};
use super::borsh::{DecodeError, Discriminator, Fields};
use super::coin::{COMPLETE_EVENT_DISCRIMINATOR, CREATE_EVENT_DISCRIMINATOR, MIGRATION_EVENT_DISCRIMINATOR};
use super::event::Program;
use super::trade::{SHAREHOLDER_LEN, TRADE_EVENT_DISCRIMINATOR};

/// A Borsh field type used by these events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// 32-byte public key, shown in base58.
    Pk,
    /// Little-endian u64.
    U64,
    /// Little-endian i64.
    I64,
    /// Little-endian u16.
    U16,
    /// u8.
    U8,
    /// Borsh bool.
    Bool,
    /// Borsh string.
    Str,
    /// `Vec<Shareholder { address: Pubkey, share_bps: u16 }>`.
    Shareholders,
}

/// One event's schema.
#[derive(Debug)]
pub struct Schema {
    /// The event's name in the IDL.
    pub name: &'static str,
    /// The program that emits it.
    pub program: Program,
    /// Its discriminator.
    pub discriminator: Discriminator,
    /// Fields in the oldest layout.
    pub oldest_fields: usize,
    /// Every field, in order.
    pub fields: &'static [(&'static str, Ty)],
}

use Ty::{Bool, I64, Pk, Shareholders, Str, U8, U16, U64};

/// The schemas, pump.fun's first.
pub const SCHEMAS: [Schema; 7] = [
    Schema {
        name: "TradeEvent",
        program: Program::PumpFun,
        discriminator: TRADE_EVENT_DISCRIMINATOR,
        oldest_fields: 8,
        fields: &[
            ("mint", Pk),
            ("sol_amount", U64),
            ("token_amount", U64),
            ("is_buy", Bool),
            ("user", Pk),
            ("timestamp", I64),
            ("virtual_sol_reserves", U64),
            ("virtual_token_reserves", U64),
            ("real_sol_reserves", U64),
            ("real_token_reserves", U64),
            ("fee_recipient", Pk),
            ("fee_basis_points", U64),
            ("fee", U64),
            ("creator", Pk),
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
            ("quote_mint", Pk),
            ("quote_amount", U64),
            ("virtual_quote_reserves", U64),
            ("real_quote_reserves", U64),
        ],
    },
    Schema {
        name: "CreateEvent",
        program: Program::PumpFun,
        discriminator: CREATE_EVENT_DISCRIMINATOR,
        oldest_fields: 6,
        fields: &[
            ("name", Str),
            ("symbol", Str),
            ("uri", Str),
            ("mint", Pk),
            ("bonding_curve", Pk),
            ("user", Pk),
            ("creator", Pk),
            ("timestamp", I64),
            ("virtual_token_reserves", U64),
            ("virtual_sol_reserves", U64),
            ("real_token_reserves", U64),
            ("token_total_supply", U64),
            ("token_program", Pk),
            ("is_mayhem_mode", Bool),
            ("is_cashback_enabled", Bool),
            ("quote_mint", Pk),
            ("virtual_quote_reserves", U64),
        ],
    },
    Schema {
        name: "CompleteEvent",
        program: Program::PumpFun,
        discriminator: COMPLETE_EVENT_DISCRIMINATOR,
        oldest_fields: 4,
        fields: &[("user", Pk), ("mint", Pk), ("bonding_curve", Pk), ("timestamp", I64), ("quote_mint", Pk)],
    },
    Schema {
        name: "CompletePumpAmmMigrationEvent",
        program: Program::PumpFun,
        discriminator: MIGRATION_EVENT_DISCRIMINATOR,
        oldest_fields: 8,
        fields: &[
            ("user", Pk),
            ("mint", Pk),
            ("mint_amount", U64),
            ("sol_amount", U64),
            ("pool_migration_fee", U64),
            ("bonding_curve", Pk),
            ("timestamp", I64),
            ("pool", Pk),
            ("quote_mint", Pk),
        ],
    },
    Schema {
        name: "BuyEvent",
        program: Program::PumpSwap,
        discriminator: BUY_EVENT_DISCRIMINATOR,
        oldest_fields: 20,
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
            ("pool", Pk),
            ("user", Pk),
            ("user_base_token_account", Pk),
            ("user_quote_token_account", Pk),
            ("protocol_fee_recipient", Pk),
            ("protocol_fee_recipient_token_account", Pk),
            ("coin_creator", Pk),
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
    },
    Schema {
        name: "SellEvent",
        program: Program::PumpSwap,
        discriminator: SELL_EVENT_DISCRIMINATOR,
        oldest_fields: 20,
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
            ("pool", Pk),
            ("user", Pk),
            ("user_base_token_account", Pk),
            ("user_quote_token_account", Pk),
            ("protocol_fee_recipient", Pk),
            ("protocol_fee_recipient_token_account", Pk),
            ("coin_creator", Pk),
            ("coin_creator_fee_basis_points", U64),
            ("coin_creator_fee", U64),
            ("cashback_fee_basis_points", U64),
            ("cashback", U64),
            ("buyback_fee_basis_points", U64),
            ("buyback_fee", U64),
        ],
    },
    Schema {
        name: "CreatePoolEvent",
        program: Program::PumpSwap,
        discriminator: CREATE_POOL_EVENT_DISCRIMINATOR,
        oldest_fields: 16,
        fields: &[
            ("timestamp", I64),
            ("index", U16),
            ("creator", Pk),
            ("base_mint", Pk),
            ("quote_mint", Pk),
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
            ("pool", Pk),
            ("lp_mint", Pk),
            ("user_base_token_account", Pk),
            ("user_quote_token_account", Pk),
            ("coin_creator", Pk),
            ("is_mayhem_mode", Bool),
        ],
    },
];

/// A record with every field decoded.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Its schema.
    pub schema: &'static Schema,
    /// The fields present, in order, as JSON values (public keys in base58,
    /// integers exact).
    pub fields: Map<String, Value>,
    /// Bytes after the last field of the schema (fields the IDL does not
    /// describe yet).
    pub trailing: usize,
}

/// The schema of a record emitted by `program` (`None`: either program).
pub fn schema_of(program: Option<Program>, bytes: &[u8]) -> Option<&'static Schema> {
    let head = bytes.first_chunk::<8>()?;
    SCHEMAS.iter().find(|s| s.discriminator == *head && program.is_none_or(|p| p == s.program))
}

/// Decodes every field of a record of either program.
pub fn decode_full(program: Option<Program>, bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let Some(schema) = schema_of(program, bytes) else {
        let mut found = [0u8; 8];
        let len = bytes.len().min(8);
        found[..len].copy_from_slice(&bytes[..len]);
        return Err(if bytes.len() < 8 {
            DecodeError::TooShort { len: bytes.len(), need: 8 }
        } else {
            DecodeError::WrongDiscriminator { found }
        });
    };
    let mut f = Fields::at(bytes, 8);
    let mut fields = Map::new();
    for (i, &(name, ty)) in schema.fields.iter().enumerate() {
        if f.done() {
            if i < schema.oldest_fields {
                return Err(DecodeError::TooShort { len: bytes.len(), need: oldest_len(schema) });
            }
            break;
        }
        let value = match ty {
            Pk => json!(bs58::encode(f.pubkey(name)?).into_string()),
            U64 => json!(f.u64(name)?),
            I64 => json!(f.i64(name)?),
            U16 => json!(f.u16(name)?),
            U8 => json!(f.u8(name)?),
            Bool => json!(f.bool(name)?),
            Str => json!(f.string(name)?),
            Shareholders => {
                let raw = f.vec(name, SHAREHOLDER_LEN)?;
                let holders = raw.chunks_exact(SHAREHOLDER_LEN).map(|h| {
                    let bps = u16::from_le_bytes([h[32], h[33]]);
                    json!({"address": bs58::encode(&h[..32]).into_string(), "share_bps": bps})
                });
                Value::Array(holders.collect())
            }
        };
        fields.insert(name.to_owned(), value);
    }
    let trailing = if fields.len() == schema.fields.len() { f.remaining() } else { 0 };
    Ok(Decoded { schema, fields, trailing })
}

/// Length of the oldest layout of a schema whose oldest fields have fixed
/// sizes (strings counted empty).
fn oldest_len(schema: &Schema) -> usize {
    8 + schema.fields[..schema.oldest_fields]
        .iter()
        .map(|(_, ty)| match ty {
            Pk => 32,
            U64 | I64 => 8,
            U16 => 2,
            U8 | Bool => 1,
            Str | Shareholders => 4,
        })
        .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discriminators_are_anchors_hash_of_the_event_name() {
        // Anchor: sha256("event:<Name>")[..8]. Checked against the IDL's
        // listed values, which these constants copy.
        let listed: [(&str, &str); 7] = [
            ("TradeEvent", "bddb7fd34ee661ee"),
            ("CreateEvent", "1b72a94ddeeb6376"),
            ("CompleteEvent", "5f72619cd42e9808"),
            ("CompletePumpAmmMigrationEvent", "bde95db95c94ea94"),
            ("BuyEvent", "67f4521f2cf57777"),
            ("SellEvent", "3e2f370aa503dc2a"),
            ("CreatePoolEvent", "b1310cd2a076a774"),
        ];
        for (schema, (name, hex)) in SCHEMAS.iter().zip(listed) {
            assert_eq!(schema.name, name);
            let got: String = schema.discriminator.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(got, hex, "{name}");
        }
        assert_eq!(oldest_len(&SCHEMAS[0]), 113);
        assert_eq!(oldest_len(&SCHEMAS[4]), 312);
    }
}
