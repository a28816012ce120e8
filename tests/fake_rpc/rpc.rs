//! The JSON-RPC 2.0 envelope as Solana nodes speak it: parsing requests
//! (single or batch), writing results and errors. No I/O.
//!
//! Error codes and messages are the ones agave's `rpc` / `rpc_pubsub` return
//! (jsonrpc-core's standard codes, and the node's own texts such as
//! "Invalid Request: Only 1 address supported"); clients are expected to act
//! on the `code`, and tests assert on codes, not on wording.

use serde::Serialize;
use serde_json::Value;

/// Invalid JSON was received.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON is not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters (also Solana's "Invalid limit", "Only 1
/// address supported", unsupported commitment...).
pub const INVALID_PARAMS: i64 = -32602;
/// `getTransaction` of a versioned transaction without a high enough
/// `maxSupportedTransactionVersion`.
pub const UNSUPPORTED_TRANSACTION_VERSION: i64 = -32015;

/// Largest batch this node answers; a real node's limit is provider-specific.
/// Over it: one -32600 error for the whole batch.
pub const MAX_BATCH: usize = 100;

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError { code, message: message.into() }
    }

    pub fn parse_error() -> RpcError {
        RpcError::new(PARSE_ERROR, "Parse error")
    }

    pub fn invalid_request() -> RpcError {
        RpcError::new(INVALID_REQUEST, "Invalid request")
    }

    pub fn method_not_found() -> RpcError {
        RpcError::new(METHOD_NOT_FOUND, "Method not found")
    }

    pub fn invalid_params(message: impl Into<String>) -> RpcError {
        RpcError::new(INVALID_PARAMS, message)
    }
}

/// One request: its id (echoed back), method and params.
#[derive(Debug, Clone)]
pub struct Call {
    pub id: Value,
    pub method: String,
    pub params: Value,
}

/// What a request text turned out to be.
#[derive(Debug)]
pub enum Incoming {
    /// Not JSON at all: answered with -32700 and id null.
    Unparsable,
    /// One request (or a malformed object, with the id if it had one).
    Single(Result<Call, (Value, RpcError)>),
    /// A batch; each element answered on its own. Empty or over
    /// [`MAX_BATCH`]: one -32600 for the whole.
    Batch(Vec<Result<Call, (Value, RpcError)>>),
}

/// Parses a request text.
pub fn parse(text: &str) -> Incoming {
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(_) => return Incoming::Unparsable,
    };
    match value {
        Value::Array(items) => Incoming::Batch(items.into_iter().map(call).collect()),
        other => Incoming::Single(call(other)),
    }
}

fn call(value: Value) -> Result<Call, (Value, RpcError)> {
    let Value::Object(mut object) = value else {
        return Err((Value::Null, RpcError::invalid_request()));
    };
    let id = object.remove("id").unwrap_or(Value::Null);
    let method = match object.remove("method") {
        Some(Value::String(method)) => method,
        _ => return Err((id, RpcError::invalid_request())),
    };
    let params = object.remove("params").unwrap_or(Value::Array(Vec::new()));
    if !(params.is_array() || params.is_object()) {
        return Err((id, RpcError::invalid_params("Invalid params: expected an array")));
    }
    Ok(Call { id, method, params })
}

#[derive(Serialize)]
struct Success<'a> {
    jsonrpc: &'static str,
    result: &'a Value,
    id: &'a Value,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: i64,
    message: &'a str,
}

#[derive(Serialize)]
struct Failure<'a> {
    jsonrpc: &'static str,
    error: ErrorBody<'a>,
    id: &'a Value,
}

/// `{"jsonrpc":"2.0","result":…,"id":…}`, in the field order nodes use.
pub fn result_text(id: &Value, result: &Value) -> String {
    serde_json::to_string(&Success { jsonrpc: "2.0", result, id }).unwrap_or_default()
}

/// `{"jsonrpc":"2.0","error":{"code":…,"message":…},"id":…}`.
pub fn error_text(id: &Value, error: &RpcError) -> String {
    let body = ErrorBody { code: error.code, message: &error.message };
    serde_json::to_string(&Failure { jsonrpc: "2.0", error: body, id }).unwrap_or_default()
}

/// A short, single-line summary of params for the request log: the compact
/// JSON, cut at [`SUMMARY_CHARS`] characters.
pub fn params_summary(params: &Value) -> String {
    let mut text = params.to_string();
    if text.chars().count() > SUMMARY_CHARS {
        text = text.chars().take(SUMMARY_CHARS).collect::<String>() + "…";
    }
    text
}

/// Bound of a params summary in the request log (the log is for asserting
/// methods and timing, not for keeping payloads).
pub const SUMMARY_CHARS: usize = 200;

/// Positional parameter `index` of a call (`params` must be an array).
pub fn param(params: &Value, index: usize) -> Option<&Value> {
    params.as_array().and_then(|items| items.get(index))
}

/// The config object at `index`, or an empty object when absent or null.
pub fn config(params: &Value, index: usize) -> Result<serde_json::Map<String, Value>, RpcError> {
    match param(params, index) {
        None | Some(Value::Null) => Ok(serde_json::Map::new()),
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(_) => Err(RpcError::invalid_params("Invalid params: expected a configuration object")),
    }
}

/// Rejects commitments below `confirmed` as the history methods do.
pub fn check_at_least_confirmed(config: &serde_json::Map<String, Value>) -> Result<(), RpcError> {
    match config.get("commitment").and_then(Value::as_str) {
        None | Some("confirmed") | Some("finalized") => Ok(()),
        Some("processed") => Err(RpcError::invalid_params("Method does not support commitment below `confirmed`")),
        Some(other) => Err(RpcError::invalid_params(format!("Invalid params: unknown variant `{other}`"))),
    }
}

/// Accepts any of the three commitments (the non-history methods).
pub fn check_known_commitment(config: &serde_json::Map<String, Value>) -> Result<(), RpcError> {
    match config.get("commitment").and_then(Value::as_str) {
        None | Some("processed") | Some("confirmed") | Some("finalized") => Ok(()),
        Some(other) => Err(RpcError::invalid_params(format!("Invalid params: unknown variant `{other}`"))),
    }
}

/// Parses a base58 public key (32 bytes) as the node does.
pub fn pubkey_param(value: Option<&Value>) -> Result<String, RpcError> {
    base58_param(value, 32)
}

/// Parses a base58 signature (64 bytes) as the node does.
pub fn signature_param(value: Option<&Value>) -> Result<String, RpcError> {
    base58_param(value, 64)
}

/// A base58 string of `len` bytes, with the node's error texts otherwise.
fn base58_param(value: Option<&Value>, len: usize) -> Result<String, RpcError> {
    let text =
        value.and_then(Value::as_str).ok_or_else(|| RpcError::invalid_params("Invalid params: expected a string"))?;
    match bs58::decode(text).into_vec() {
        Ok(bytes) if bytes.len() == len => Ok(text.to_owned()),
        Ok(_) => Err(RpcError::invalid_params("Invalid param: WrongSize")),
        Err(_) => Err(RpcError::invalid_params("Invalid param: Invalid")),
    }
}
