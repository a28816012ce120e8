//! A transaction's pump.fun and PumpSwap events, from the JSON messages
//! Solana RPC nodes send: a `logsNotification` (the live stream) or a
//! `getTransaction` result (backfill, captures), whole JSON-RPC responses or
//! just their `result`.
//!
//! Events come from two places. The log's `Program data:` lines, attributed
//! by the invoke stack ([`super::logs`]), are what a notification carries.
//! A `getTransaction` result also has the inner instructions: Anchor's
//! `emit_cpi!` makes a program invoke itself with the event tag
//! `e4 45 a5 2e 51 cb 9a 1d` and the event as instruction data, so those are
//! attributed by program id and survive a truncated log. Both list a
//! transaction's events in execution order, and the two programs emit each
//! event both ways, so an event's index among them is the same either way,
//! which is what deduplication by (signature, event index) relies on; the
//! inner instructions are used when they hold events of the two programs,
//! else the log.
//!
//! Sans-io: JSON in, events out.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use thiserror::Error;

use super::logs;
use crate::codec::amm::{PoolMints, SwapEvent};
use crate::codec::borsh::Pubkey;
use crate::codec::event::Program;

/// Anchor's tag before an event emitted as a self-invoked instruction.
pub const EVENT_CPI_TAG: [u8; 8] = [0xe4, 0x45, 0xa5, 0x2e, 0x51, 0xcb, 0x9a, 0x1d];

/// Most events taken from one transaction; the rest are counted as dropped
/// (a transaction is at most 1232 bytes of instructions, so real ones hold
/// far fewer).
pub const MAX_EVENTS_PER_TX: usize = 256;

/// The events of one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxEvents {
    /// Its slot.
    pub slot: u64,
    /// Its signature (the first of the transaction), if the message says.
    pub signature: Option<[u8; 64]>,
    /// The transaction failed (`err` not null): its events did not happen.
    pub failed: bool,
    /// The log was cut and no inner instructions made up for it: events
    /// after the cut are missing.
    pub truncated: bool,
    /// `Program data:` lines of other programs.
    pub foreign: u32,
    /// Event payloads that were not valid base64 / base58.
    pub bad_data: u32,
    /// The events, in execution order, with the program that emitted each.
    pub events: Vec<(Program, Vec<u8>)>,
    /// Token balances after the transaction (`getTransaction` only): which
    /// account owner holds how much of which mint.
    pub balances: Vec<TokenBalance>,
}

/// One entry of a `getTransaction` result's `meta.postTokenBalances`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBalance {
    /// The token account's owner.
    pub owner: Pubkey,
    /// The mint.
    pub mint: Pubkey,
    /// The balance, base units.
    pub amount: u64,
    /// The mint's decimals.
    pub decimals: u8,
}

/// Most token balances kept from one transaction.
const MAX_BALANCES: usize = 256;

/// The pools of the PumpSwap swaps in a transaction whose balances show
/// them: a pool owns two token accounts, and the base one holds exactly the
/// swap's base reserves after the trade. A `getTransaction` result thus
/// names a pool's mints and their decimals without asking the node again.
pub fn pools_in(tx: &TxEvents) -> Vec<PoolMints> {
    let mut pools: Vec<PoolMints> = Vec::new();
    for (program, bytes) in &tx.events {
        let Ok(swap) = SwapEvent::decode(bytes) else { continue };
        if *program != Program::PumpSwap || pools.iter().any(|p| p.pool == swap.pool) {
            continue;
        }
        let held: Vec<&TokenBalance> = tx.balances.iter().filter(|b| b.owner == swap.pool).collect();
        let [a, b] = held[..] else { continue };
        let (base_after, quote_after) = swap.reserves_after();
        let (base, quote) = match (a.amount == base_after, b.amount == base_after) {
            (true, false) => (a, b),
            (false, true) => (b, a),
            // Both or neither match: not enough to tell base from quote.
            _ => continue,
        };
        if quote.amount != quote_after {
            continue;
        }
        pools.push(PoolMints {
            pool: swap.pool,
            base_mint: base.mint,
            quote_mint: quote.mint,
            decimals: Some((base.decimals, quote.decimals)),
        });
    }
    pools
}

/// One parsed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The subscription a notification belongs to (none for a
    /// `getTransaction` result).
    pub subscription: Option<u64>,
    /// The transaction.
    pub tx: TxEvents,
}

/// Why a JSON message gave no transaction.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TxError {
    /// Not JSON at all.
    #[error("not JSON")]
    NotJson,
    /// JSON, but neither a `logsNotification` nor a `getTransaction` result.
    #[error("neither a logsNotification nor a getTransaction result")]
    NotATransaction,
    /// A required field is missing or of the wrong type.
    #[error("field `{0}` missing or malformed")]
    Field(&'static str),
}

/// Parses one line of JSON.
pub fn parse_line(line: &str) -> Result<Parsed, TxError> {
    let value: Value = serde_json::from_str(line).map_err(|_| TxError::NotJson)?;
    parse_value(&value)
}

/// Parses a message already read as JSON.
pub fn parse_value(value: &Value) -> Result<Parsed, TxError> {
    if value.get("method").and_then(Value::as_str) == Some("logsNotification") {
        let params = value.get("params").ok_or(TxError::Field("params"))?;
        let subscription = params.get("subscription").and_then(Value::as_u64);
        let result = params.get("result").ok_or(TxError::Field("params.result"))?;
        return Ok(Parsed { subscription, tx: from_notification(result)? });
    }
    let result = value.get("result").filter(|r| r.is_object()).unwrap_or(value);
    if result.get("meta").is_some() && result.get("transaction").is_some() {
        return Ok(Parsed { subscription: None, tx: from_transaction(result)? });
    }
    Err(TxError::NotATransaction)
}

/// A notification's `result` (`{context: {slot}, value: {signature, err,
/// logs}}`).
pub fn from_notification(result: &Value) -> Result<TxEvents, TxError> {
    let slot = result.pointer("/context/slot").and_then(Value::as_u64).ok_or(TxError::Field("context.slot"))?;
    let value = result.get("value").ok_or(TxError::Field("value"))?;
    let logs = value.get("logs").and_then(Value::as_array).ok_or(TxError::Field("value.logs"))?;
    let mut tx = TxEvents {
        slot,
        signature: value.get("signature").and_then(Value::as_str).and_then(signature_of),
        failed: !value.get("err").is_none_or(Value::is_null),
        ..TxEvents::default()
    };
    from_log(&mut tx, logs);
    Ok(tx)
}

/// A `getTransaction` result (`{slot, blockTime, meta: {err, logMessages,
/// innerInstructions, loadedAddresses}, transaction}`), in any of the
/// `json`, `jsonParsed` and `base64` encodings.
pub fn from_transaction(result: &Value) -> Result<TxEvents, TxError> {
    let slot = result.get("slot").and_then(Value::as_u64).ok_or(TxError::Field("slot"))?;
    let meta = result.get("meta").filter(|m| m.is_object()).ok_or(TxError::Field("meta"))?;
    let transaction = result.get("transaction").ok_or(TxError::Field("transaction"))?;
    let message = TxMessage::read(transaction, meta);
    let mut tx = TxEvents {
        slot,
        signature: message.signature,
        failed: !meta.get("err").is_none_or(Value::is_null),
        ..TxEvents::default()
    };
    tx.balances = balances(meta);
    let logs = meta.get("logMessages").and_then(Value::as_array);
    let inner = inner_events(meta, &message.keys, &mut tx.bad_data);
    if !inner.is_empty() {
        // Still count what the log says about other programs.
        if let Some(logs) = logs {
            tx.foreign = logs::attribute(logs.iter().filter_map(Value::as_str)).foreign;
        }
        tx.events = inner;
    } else if let Some(logs) = logs {
        from_log(&mut tx, logs);
    }
    Ok(tx)
}

/// Fills `tx` from log lines.
fn from_log(tx: &mut TxEvents, logs: &[Value]) {
    let found = logs::attribute(logs.iter().filter_map(Value::as_str));
    tx.truncated = found.truncated;
    tx.foreign = found.foreign + found.orphan;
    for (program, data) in found.events.into_iter().take(MAX_EVENTS_PER_TX) {
        match STANDARD.decode(data) {
            Ok(bytes) => tx.events.push((program, bytes)),
            Err(_) => tx.bad_data += 1,
        }
    }
}

/// `meta.postTokenBalances`, the entries that carry an owner.
fn balances(meta: &Value) -> Vec<TokenBalance> {
    let Some(entries) = meta.get("postTokenBalances").and_then(Value::as_array) else { return Vec::new() };
    let key = |v: Option<&Value>| v.and_then(Value::as_str).and_then(|s| crate::codec::json::parse_mint(s).ok());
    entries
        .iter()
        .filter_map(|e| {
            let amount = e.pointer("/uiTokenAmount/amount").and_then(Value::as_str)?.parse().ok()?;
            let decimals = e.pointer("/uiTokenAmount/decimals").and_then(Value::as_u64)?;
            Some(TokenBalance {
                owner: key(e.get("owner"))?,
                mint: key(e.get("mint"))?,
                amount,
                decimals: u8::try_from(decimals).ok()?,
            })
        })
        .take(MAX_BALANCES)
        .collect()
}

/// Events emitted through self-invoked inner instructions of the two
/// programs, in order.
fn inner_events(meta: &Value, keys: &[String], bad_data: &mut u32) -> Vec<(Program, Vec<u8>)> {
    let mut events = Vec::new();
    let Some(groups) = meta.get("innerInstructions").and_then(Value::as_array) else { return events };
    let instructions = groups.iter().filter_map(|g| g.get("instructions").and_then(Value::as_array)).flatten();
    for ix in instructions {
        let program_id = match (ix.get("programId").and_then(Value::as_str), ix.get("programIdIndex")) {
            (Some(id), _) => Some(id),
            (None, Some(index)) => index.as_u64().and_then(|i| keys.get(i as usize)).map(String::as_str),
            _ => None,
        };
        let Some(program) = program_id.and_then(Program::from_address) else { continue };
        let Some(data) = ix.get("data").and_then(Value::as_str) else { continue };
        let Ok(bytes) = bs58::decode(data).into_vec() else {
            *bad_data += 1;
            continue;
        };
        if let Some(event) = bytes.strip_prefix(&EVENT_CPI_TAG)
            && events.len() < MAX_EVENTS_PER_TX
        {
            events.push((program, event.to_vec()));
        }
    }
    events
}

/// What the transaction object says about keys and signature.
struct TxMessage {
    /// Account keys in index order: the message's, then the loaded ones
    /// (writable, then read-only), as instruction indices count them.
    keys: Vec<String>,
    /// The first signature.
    signature: Option<[u8; 64]>,
}

impl TxMessage {
    fn read(transaction: &Value, meta: &Value) -> Self {
        let (mut keys, signature) = match transaction {
            // `base64` (and `base58`) encoding: ["<data>", "base64"].
            Value::Array(parts) => {
                let data = parts.first().and_then(Value::as_str).unwrap_or_default();
                let bytes = match parts.get(1).and_then(Value::as_str) {
                    Some("base58") => bs58::decode(data).into_vec().ok(),
                    _ => STANDARD.decode(data).ok(),
                };
                bytes.as_deref().map(wire_keys).unwrap_or_default()
            }
            // `json` / `jsonParsed`: keys as strings or `{pubkey}` objects.
            Value::Object(_) => {
                let keys = transaction.pointer("/message/accountKeys").and_then(Value::as_array);
                let key = |k: &Value| k.as_str().or_else(|| k.get("pubkey").and_then(Value::as_str)).map(str::to_owned);
                let keys = keys.map(|ks| ks.iter().filter_map(key).collect()).unwrap_or_default();
                let signature = transaction.pointer("/signatures/0").and_then(Value::as_str).and_then(signature_of);
                (keys, signature)
            }
            _ => (Vec::new(), None),
        };
        for list in ["writable", "readonly"] {
            if let Some(loaded) = meta.pointer(&format!("/loadedAddresses/{list}")).and_then(Value::as_array) {
                keys.extend(loaded.iter().filter_map(Value::as_str).map(str::to_owned));
            }
        }
        Self { keys, signature }
    }
}

/// Account keys and first signature of a transaction in wire format
/// (signatures, then the legacy or v0 message: header, keys, ...).
fn wire_keys(bytes: &[u8]) -> (Vec<String>, Option<[u8; 64]>) {
    let mut at = 0;
    let Some(signatures) = compact_u16(bytes, &mut at) else { return (Vec::new(), None) };
    let signature = bytes.get(at..at + 64).and_then(|s| <[u8; 64]>::try_from(s).ok()).filter(|_| signatures > 0);
    at += 64 * signatures;
    // A v0 message starts with 0x80 | version; a legacy one with the header.
    if bytes.get(at).is_some_and(|b| b & 0x80 != 0) {
        at += 1;
    }
    at += 3;
    let Some(count) = compact_u16(bytes, &mut at) else { return (Vec::new(), signature) };
    let keys = (0..count)
        .map_while(|i| bytes.get(at + 32 * i..at + 32 * (i + 1)))
        .map(|k| bs58::encode(k).into_string())
        .collect();
    (keys, signature)
}

/// Solana's compact-u16 (1 to 3 bytes, 7 bits each).
fn compact_u16(bytes: &[u8], at: &mut usize) -> Option<usize> {
    let mut value = 0usize;
    for i in 0..3 {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// A base58 signature's 64 bytes.
pub fn signature_of(text: &str) -> Option<[u8; 64]> {
    let mut out = [0u8; 64];
    match bs58::decode(text).onto(&mut out[..]) {
        Ok(64) => Some(out),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_u16_reads_one_to_three_bytes() {
        let mut at = 0;
        assert_eq!(compact_u16(&[0x05], &mut at), Some(5));
        at = 0;
        assert_eq!(compact_u16(&[0x80, 0x01], &mut at), Some(128));
        at = 0;
        assert_eq!(compact_u16(&[0xff, 0xff, 0x03], &mut at), Some(0xffff));
        at = 0;
        assert_eq!(compact_u16(&[0x80], &mut at), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert_eq!(parse_line("{"), Err(TxError::NotJson));
        assert_eq!(parse_line("{\"jsonrpc\":\"2.0\",\"result\":5,\"id\":1}"), Err(TxError::NotATransaction));
        assert_eq!(parse_line("{\"method\":\"logsNotification\"}"), Err(TxError::Field("params")));
        let no_logs = r#"{"method":"logsNotification","params":{"result":{"context":{"slot":1},"value":{}}}}"#;
        assert_eq!(parse_line(no_logs), Err(TxError::Field("value.logs")));
        assert_eq!(wire_keys(&[0xff]), (Vec::new(), None));
    }
}
