//! The HTTP JSON-RPC methods the fake node serves, against its [`Ledger`].
//! No I/O: a [`Call`] in, a result or an [`RpcError`] out.
//!
//! Parameters are checked as an agave node checks them (limits, commitment,
//! base58 sizes, `maxSupportedTransactionVersion`), with its error codes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::ledger::{Account, Ledger, TxVersion};
use super::rpc::{self, Call, RpcError};

/// `getSignaturesForAddress`'s limit (agave's
/// MAX_GET_CONFIRMED_SIGNATURES_FOR_ADDRESS2_LIMIT).
pub const MAX_SIGNATURES_LIMIT: u64 = 1000;
/// `getMultipleAccounts`'s limit (agave's MAX_MULTIPLE_ACCOUNTS).
pub const MAX_MULTIPLE_ACCOUNTS: usize = 100;
/// What `context.apiVersion` reports.
pub const API_VERSION: &str = "2.2.16";

/// Answers one call.
pub fn answer(ledger: &mut Ledger, call: &Call) -> Result<Value, RpcError> {
    match call.method.as_str() {
        "getSignaturesForAddress" => signatures_for_address(ledger, &call.params),
        "getTransaction" => transaction(ledger, &call.params),
        "getAccountInfo" => account_info(ledger, &call.params),
        "getMultipleAccounts" => multiple_accounts(ledger, &call.params),
        "getSlot" => {
            rpc::check_known_commitment(&rpc::config(&call.params, 0)?)?;
            Ok(ledger.slot().into())
        }
        "getHealth" => Ok("ok".into()),
        "getVersion" => Ok(json!({"solana-core": API_VERSION, "feature-set": 3_294_202_862_u64})),
        _ => Err(RpcError::method_not_found()),
    }
}

fn signatures_for_address(ledger: &mut Ledger, params: &Value) -> Result<Value, RpcError> {
    let address = rpc::pubkey_param(rpc::param(params, 0))?;
    let config = rpc::config(params, 1)?;
    let limit = match config.get("limit") {
        None | Some(Value::Null) => MAX_SIGNATURES_LIMIT,
        Some(value) => {
            value.as_u64().ok_or_else(|| RpcError::invalid_params("Invalid params: invalid type: expected usize"))?
        }
    };
    if limit == 0 || limit > MAX_SIGNATURES_LIMIT {
        return Err(RpcError::invalid_params(format!("Invalid limit; max {MAX_SIGNATURES_LIMIT}")));
    }
    let before = optional_signature(&config, "before")?;
    let until = optional_signature(&config, "until")?;
    rpc::check_at_least_confirmed(&config)?;
    let found: Vec<(String, Value)> = ledger
        .signatures_for_address(&address, before.as_deref(), until.as_deref(), limit as usize)
        .into_iter()
        .map(|tx| (tx.signature.clone(), tx.signature_info_json()))
        .collect();
    let shown = found.into_iter().filter(|(signature, _)| !ledger.skip_in_listing(signature));
    Ok(Value::Array(shown.map(|(_, info)| info).collect()))
}

fn optional_signature(config: &Map<String, Value>, key: &str) -> Result<Option<String>, RpcError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        value => rpc::signature_param(value).map(Some),
    }
}

fn transaction(ledger: &Ledger, params: &Value) -> Result<Value, RpcError> {
    let signature = rpc::signature_param(rpc::param(params, 0))?;
    // The second parameter is a config object, or (older clients) the encoding.
    let config = match rpc::param(params, 1) {
        Some(Value::String(encoding)) => Map::from_iter([("encoding".to_owned(), Value::String(encoding.clone()))]),
        _ => rpc::config(params, 1)?,
    };
    match config.get("encoding").and_then(Value::as_str) {
        None | Some("json") => {}
        Some(other) => {
            return Err(RpcError::invalid_params(format!(
                "Invalid params: encoding {other} is not served by this test node"
            )));
        }
    }
    rpc::check_at_least_confirmed(&config)?;
    let Some(tx) = ledger.transaction(&signature) else { return Ok(Value::Null) };
    let max_version = match config.get("maxSupportedTransactionVersion") {
        None | Some(Value::Null) => None,
        Some(value) => {
            Some(value.as_u64().ok_or_else(|| RpcError::invalid_params("Invalid params: invalid type: expected u8"))?)
        }
    };
    if tx.version == TxVersion::V0 && max_version.is_none() {
        return Err(RpcError::new(
            rpc::UNSUPPORTED_TRANSACTION_VERSION,
            "Transaction version (0) is not supported by the requesting client. Please try the request again with the \
             following configuration parameter: \"maxSupportedTransactionVersion\": 0",
        ));
    }
    Ok(tx.get_transaction_json())
}

/// How account data is encoded in the answer.
#[derive(Debug, Clone, Copy)]
enum Encoding {
    Base64,
    Base58,
}

fn encoding(config: &Map<String, Value>) -> Result<Encoding, RpcError> {
    match config.get("encoding").and_then(Value::as_str) {
        // jsonParsed falls back to base64 for accounts no parser knows.
        Some("base64") | Some("jsonParsed") => Ok(Encoding::Base64),
        None | Some("base58") | Some("binary") => Ok(Encoding::Base58),
        Some(other) => Err(RpcError::invalid_params(format!("Invalid params: unknown variant `{other}`"))),
    }
}

fn account_json(account: &Account, encoding: Encoding) -> Value {
    let data = match encoding {
        Encoding::Base64 => json!([STANDARD.encode(&account.data), "base64"]),
        Encoding::Base58 => json!([bs58::encode(&account.data).into_string(), "base58"]),
    };
    json!({
        "data": data,
        "executable": account.executable,
        "lamports": account.lamports,
        "owner": account.owner,
        "rentEpoch": u64::MAX,
        "space": account.data.len(),
    })
}

fn context(ledger: &Ledger, value: Value) -> Value {
    json!({"context": {"apiVersion": API_VERSION, "slot": ledger.slot()}, "value": value})
}

fn account_info(ledger: &Ledger, params: &Value) -> Result<Value, RpcError> {
    let pubkey = rpc::pubkey_param(rpc::param(params, 0))?;
    let config = rpc::config(params, 1)?;
    let encoding = encoding(&config)?;
    rpc::check_known_commitment(&config)?;
    let value = ledger.account(&pubkey).map_or(Value::Null, |account| account_json(account, encoding));
    Ok(context(ledger, value))
}

fn multiple_accounts(ledger: &Ledger, params: &Value) -> Result<Value, RpcError> {
    let keys = rpc::param(params, 0)
        .and_then(Value::as_array)
        .ok_or_else(|| RpcError::invalid_params("Invalid params: expected an array of pubkeys"))?;
    if keys.len() > MAX_MULTIPLE_ACCOUNTS {
        return Err(RpcError::invalid_params(format!("Too many inputs provided; max {MAX_MULTIPLE_ACCOUNTS}")));
    }
    let config = rpc::config(params, 1)?;
    let encoding = encoding(&config)?;
    rpc::check_known_commitment(&config)?;
    let mut values = Vec::with_capacity(keys.len());
    for key in keys {
        let pubkey = rpc::pubkey_param(Some(key))?;
        values.push(ledger.account(&pubkey).map_or(Value::Null, |account| account_json(account, encoding)));
    }
    Ok(context(ledger, Value::Array(values)))
}
