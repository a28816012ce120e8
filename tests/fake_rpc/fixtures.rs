//! The real recorded RPC messages of `tests/fixtures/solana/` as things the
//! fake node can serve: notifications and transactions as [`Tx`]s (logs,
//! signatures and accounts as recorded), pool accounts as [`Account`]s.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::layout::{self, LayoutError, POOL_ACCOUNT};
use super::ledger::{Account, Tx, TxVersion};
use super::{PUMP_SWAP, fixtures_dir};

fn read_json(relative: &str) -> Value {
    let path = fixtures_dir().join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// The strings of a JSON array (a log stack, a list of keys).
fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(|item| item.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// The programs a log stack invokes, in order of first appearance: all a
/// recorded notification tells about the accounts its transaction mentions.
pub fn invoked_programs(logs: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in logs {
        let mut words = line.split(' ');
        if let (Some("Program"), Some(id), Some("invoke")) = (words.next(), words.next(), words.next())
            && !out.iter().any(|known| known == id)
        {
            out.push(id.to_owned());
        }
    }
    out
}

/// A recorded `logsNotification` (the whole JSON message) as a [`Tx`]; the
/// accounts it mentions are the programs its logs invoke.
pub fn tx_from_notification(message: &Value) -> Tx {
    let result = &message["params"]["result"];
    let value = &result["value"];
    let logs = strings(&value["logs"]);
    let mut tx = Tx::from_logs(
        value["signature"].as_str().unwrap_or_default(),
        result["context"]["slot"].as_u64().unwrap_or_default(),
        logs,
        Vec::new(),
    );
    tx.account_keys = invoked_programs(&tx.logs);
    tx.err = match &value["err"] {
        Value::Null => None,
        err => Some(err.clone()),
    };
    tx
}

/// The two recorded pump.fun buy notifications (slot 440741846), as [`Tx`]s.
pub fn real_notifications() -> Vec<Tx> {
    ["rpc/logsNotification_pump_buy_1.json", "rpc/logsNotification_pump_buy_2.json"]
        .iter()
        .map(|file| tx_from_notification(&read_json(file)))
        .collect()
}

/// A recorded `getTransaction` result as a [`Tx`] served back as recorded.
/// A result in base64 encoding is answered in json encoding: its message is
/// decoded (signatures, header, account keys) and the meta kept as it is.
pub fn tx_from_get_transaction(result: &Value) -> Tx {
    let meta = &result["meta"];
    let logs = strings(&meta["logMessages"]);
    let slot = result["slot"].as_u64().unwrap_or_default();
    let (signatures, header, mut keys, blockhash) = match &result["transaction"] {
        Value::Array(parts) => decode_wire(parts.first().and_then(Value::as_str).unwrap_or_default()),
        Value::Object(tx) => {
            let message = &tx["message"];
            let sigs = tx["signatures"]
                .as_array()
                .map(|s| s.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            let keys = message["accountKeys"]
                .as_array()
                .map(|k| {
                    k.iter().filter_map(|x| x.as_str().or_else(|| x["pubkey"].as_str()).map(str::to_owned)).collect()
                })
                .unwrap_or_default();
            let h = &message["header"];
            let header = (
                h["numRequiredSignatures"].as_u64().unwrap_or(1) as u8,
                h["numReadonlySignedAccounts"].as_u64().unwrap_or(0) as u8,
                h["numReadonlyUnsignedAccounts"].as_u64().unwrap_or(0) as u8,
            );
            (sigs, header, keys, message["recentBlockhash"].as_str().unwrap_or_default().to_owned())
        }
        _ => (Vec::new(), (1, 0, 0), Vec::new(), String::new()),
    };
    for part in ["writable", "readonly"] {
        if let Some(loaded) = meta["loadedAddresses"][part].as_array() {
            keys.extend(loaded.iter().filter_map(|k| k.as_str().map(str::to_owned)));
        }
    }
    let mut tx = Tx::from_logs(signatures.first().map(String::as_str).unwrap_or_default(), slot, logs, keys.clone());
    tx.block_time = result["blockTime"].as_i64();
    tx.err = match &meta["err"] {
        Value::Null => None,
        err => Some(err.clone()),
    };
    tx.header = header;
    tx.recent_blockhash = blockhash;
    tx.inner_instructions = meta["innerInstructions"].clone();
    tx.version = if result["version"] == 0 { TxVersion::V0 } else { TxVersion::Legacy };
    let mut recorded = result.clone();
    if result["transaction"].is_array() {
        let message = serde_json::json!({
            "header": {"numRequiredSignatures": header.0, "numReadonlySignedAccounts": header.1, "numReadonlyUnsignedAccounts": header.2},
            "accountKeys": keys,
            "recentBlockhash": tx.recent_blockhash,
            "instructions": [],
        });
        recorded["transaction"] = serde_json::json!({"signatures": signatures, "message": message});
    }
    tx.recorded = Some(recorded);
    tx
}

/// Signatures, header, static account keys and blockhash of a base64 wire
/// transaction (legacy or versioned).
fn decode_wire(text: &str) -> (Vec<String>, (u8, u8, u8), Vec<String>, String) {
    let bytes = STANDARD.decode(text).unwrap_or_default();
    let mut at = 0usize;
    let compact = |at: &mut usize| {
        let mut value = 0usize;
        for shift in [0, 7, 14] {
            let byte = bytes.get(*at).copied().unwrap_or(0);
            *at += 1;
            value |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        value
    };
    let count = compact(&mut at);
    let mut signatures = Vec::with_capacity(count);
    for _ in 0..count {
        signatures.push(bs58::encode(bytes.get(at..at + 64).unwrap_or_default()).into_string());
        at += 64;
    }
    if bytes.get(at).is_some_and(|b| b & 0x80 != 0) {
        at += 1;
    }
    let header = (
        bytes.get(at).copied().unwrap_or(1),
        bytes.get(at + 1).copied().unwrap_or(0),
        bytes.get(at + 2).copied().unwrap_or(0),
    );
    at += 3;
    let key_count = compact(&mut at);
    let mut keys = Vec::with_capacity(key_count);
    for _ in 0..key_count {
        keys.push(bs58::encode(bytes.get(at..at + 32).unwrap_or_default()).into_string());
        at += 32;
    }
    let blockhash = bs58::encode(bytes.get(at..at + 32).unwrap_or_default()).into_string();
    (signatures, header, keys, blockhash)
}

/// The recorded `getTransaction` results: three solana-streamer ones
/// (pump.fun direct and via a router, PumpSwap via a router; base64 encoding)
/// and the chainstack routed PumpSwap sell (json encoding).
pub fn real_transactions() -> Vec<Tx> {
    let mut out: Vec<Tx> = [
        "rpc/solana-streamer_pumpfun_direct_tx.json",
        "rpc/solana-streamer_pumpfun_cpi_tx.json",
        "rpc/solana-streamer_pumpswap_cpi_tx.json",
    ]
    .iter()
    .map(|file| tx_from_get_transaction(&read_json(file)))
    .collect();
    out.push(graduated_market_sell());
    out
}

/// The chainstack graduated market's PumpSwap sell (slot 453352242).
pub fn graduated_market_sell() -> Tx {
    tx_from_get_transaction(
        &read_json("extra/chainstack_pumpswap_graduated_market.json")["pumpfun"]["sell_transaction"],
    )
}

/// The accounts of the chainstack graduated market (curve, pool, global
/// config, vaults), keyed by address.
pub fn graduated_market_accounts() -> Vec<(String, Account)> {
    let market = read_json("extra/chainstack_pumpswap_graduated_market.json");
    let accounts = market["pumpfun"]["accounts"].as_object().cloned().unwrap_or_default();
    accounts
        .into_iter()
        .map(|(pubkey, account)| {
            let data = STANDARD.decode(account["data"].as_str().unwrap_or_default()).unwrap_or_default();
            (
                pubkey,
                Account {
                    owner: account["owner"].as_str().unwrap_or_default().to_owned(),
                    data,
                    lamports: 1_000_000,
                    executable: false,
                },
            )
        })
        .collect()
}

/// The recorded create_v2 + extend_account + buy_exact_sol_in transaction's
/// logs (three events in one transaction).
pub fn create_and_buy_logs() -> Tx {
    let entry = read_json("extra/logs_create_buy_exact_sol_in.json");
    let logs = strings(&entry["logs"]);
    let mut tx = Tx::from_logs(
        entry["signature"].as_str().unwrap_or_default(),
        entry["slot"].as_u64().unwrap_or_default(),
        logs,
        Vec::new(),
    );
    tx.account_keys = invoked_programs(&tx.logs);
    tx
}

/// A real PumpSwap `Pool` account.
#[derive(Debug, Clone)]
pub struct RealPool {
    /// Its address, when the recording has it.
    pub pubkey: Option<String>,
    pub data: Vec<u8>,
    pub source: String,
}

/// The recorded pool accounts of `extra/pumpswap_pools.json`.
pub fn real_pools() -> Vec<RealPool> {
    let pools = read_json("extra/pumpswap_pools.json");
    pools
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|pool| {
                    let source = &pool["source"];
                    RealPool {
                        pubkey: pool["pubkey"].as_str().map(str::to_owned),
                        data: STANDARD.decode(pool["data"].as_str().unwrap_or_default()).unwrap_or_default(),
                        source: format!(
                            "{} {} {}",
                            source["repo"].as_str().unwrap_or_default(),
                            source["path"].as_str().unwrap_or_default(),
                            source["commit"].as_str().unwrap_or_default()
                        ),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

impl RealPool {
    /// The first recorded 301-byte (current layout) pool.
    pub fn current() -> RealPool {
        real_pools().into_iter().find(|pool| pool.data.len() == 301).expect("a recorded 301-byte pool")
    }

    pub fn pubkey_field(&self, name: &str) -> Result<String, LayoutError> {
        Ok(bs58::encode(layout::get_pubkey(&POOL_ACCOUNT, &self.data, name)?).into_string())
    }

    /// A copy with base and quote mints rewritten at their real offsets (every
    /// other byte as recorded): the pool of a coin a test made up.
    pub fn with_mints(&self, base_mint: &[u8; 32], quote_mint: &[u8; 32]) -> Result<RealPool, LayoutError> {
        let mut out = self.clone();
        layout::set_pubkey(&POOL_ACCOUNT, &mut out.data, "base_mint", base_mint)?;
        layout::set_pubkey(&POOL_ACCOUNT, &mut out.data, "quote_mint", quote_mint)?;
        Ok(out)
    }

    /// The pool as an account owned by PumpSwap.
    pub fn account(&self) -> Account {
        Account { owner: PUMP_SWAP.to_owned(), data: self.data.clone(), lamports: 4_231_440, executable: false }
    }
}

/// The two `Program data:` lines the foreign program MNFSTqtC... prints in the
/// recorded notification 2, as base64 payloads.
pub fn recorded_foreign_payloads() -> Vec<String> {
    let message = read_json("rpc/logsNotification_pump_buy_2.json");
    let logs = message["params"]["result"]["value"]["logs"].as_array().cloned().unwrap_or_default();
    let mut owner: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for line in logs.iter().filter_map(Value::as_str) {
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["Program", id, "invoke", _] => owner.push((*id).to_owned()),
            ["Program", _, "success"] | ["Program", _, "failed:", ..] => {
                owner.pop();
            }
            ["Program", "data:", payload] if owner.last().map(String::as_str) == Some(super::FOREIGN_MNFST) => {
                out.push((*payload).to_owned())
            }
            _ => {}
        }
    }
    out
}
