//! The live source's HTTP JSON-RPC calls, on helper threads: a small
//! blocking client (ureq, TLS by the system's OpenSSL), a requests-per-second
//! cap shared by every call, and backing off when the node says 429.
//!
//! Nothing here runs on the ingest core: workers take [`Job`]s from a
//! bounded queue and send back [`Done`]s; the source decides what to ask.
//!
//! Public endpoints limit each IP (solana.com/docs/references/clusters): 100
//! requests per 10 s in all, 40 per 10 s for any one method. A backfill is
//! mostly `getTransaction`, so the default cap is 4 requests a second.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use thiserror::Error;

use super::metrics::LiveMetrics;
use crate::codec::amm::{PoolMints, decode_pool_account};
use crate::codec::borsh::Pubkey;
use crate::codec::event::{PUMP_SWAP_ADDRESS, Program};
use crate::source::record::{Fact, Lookup};
use crate::source::tx::{self, TxEvents};

/// Longest response body read (a `getTransaction` of a large transaction
/// is tens of KiB; 1,000 signatures about 250 KiB).
pub const MAX_RESPONSE_BYTES: u64 = 8 << 20;
/// Time a request may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Attempts of one call before its error is final (429s and transport
/// errors are retried with backoff; JSON-RPC errors are not).
pub const ATTEMPTS: u32 = 6;
/// First wait after a 429 without `Retry-After`, doubling to
/// [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait between attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Most keys in one `getMultipleAccounts` (the RPC's own limit).
pub const MAX_KEYS_PER_CALL: usize = 100;
/// Offset of `decimals` in an SPL Token (and Token-2022) mint account:
/// `mint_authority: COption<Pubkey>` (36 bytes), `supply: u64`.
const MINT_DECIMALS_OFFSET: usize = 36 + 8;

/// Why a call failed.
#[derive(Debug, Clone, Error)]
pub enum RpcError {
    /// The node refused with an HTTP status (after retries for 429 and 5xx).
    #[error("HTTP {status}")]
    Status {
        /// The status.
        status: u16,
    },
    /// The connection failed or timed out (after retries).
    #[error("transport: {0}")]
    Transport(String),
    /// A JSON-RPC error object.
    #[error("RPC error {code}: {message}")]
    Rpc {
        /// Its code.
        code: i64,
        /// Its message.
        message: String,
    },
    /// A response that is not the JSON-RPC shape expected.
    #[error("unexpected response: {0}")]
    BadResponse(String),
}

/// An account's owner program and data.
#[derive(Debug, Clone)]
pub struct Account {
    /// Base58 owner program.
    pub owner: String,
    /// Its data.
    pub data: Vec<u8>,
}

/// One signature of a `getSignaturesForAddress` page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigInfo {
    /// Base58 signature.
    pub signature: String,
    /// Its slot.
    pub slot: u64,
    /// Whether the transaction failed.
    pub failed: bool,
}

/// Work for a worker.
#[derive(Debug, Clone)]
pub enum Job {
    /// One page of a program's signatures, newest first.
    Signatures {
        /// Whose.
        program: Program,
        /// Stop at (exclusive) this signature.
        until: Option<String>,
        /// Start before (exclusive) this signature.
        before: Option<String>,
        /// Page size, at most 1000.
        limit: usize,
    },
    /// One transaction.
    Transaction {
        /// Base58 signature.
        signature: String,
        /// Why it is fetched (handed back with the result).
        purpose: Purpose,
    },
    /// Accounts for [`Lookup`]s.
    Lookups(Vec<Lookup>),
}

/// Why a transaction is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The `index`th transaction of the backfill `gap`.
    Backfill {
        /// Which backfill.
        gap: u64,
        /// Its place in the backfill's order.
        index: usize,
    },
    /// A notification whose log was cut: the rest of its events.
    Recover,
}

/// A job's outcome.
#[derive(Debug)]
pub enum Done {
    /// A page of signatures.
    Signatures {
        /// Whose.
        program: Program,
        /// The page, newest first, or the error.
        page: Result<Vec<SigInfo>, RpcError>,
    },
    /// A transaction (`None`: the node does not have it).
    Transaction {
        /// Base58 signature.
        signature: String,
        /// Why it was fetched.
        purpose: Purpose,
        /// The events, or the error.
        tx: Result<Option<TxEvents>, RpcError>,
    },
    /// Answers to lookups (and pools a fetched transaction showed).
    Facts(Vec<Fact>),
}

/// Requests per second, shared by every worker: a token bucket, and a
/// pause the whole client takes when the node says 429.
#[derive(Debug)]
pub struct RateLimiter {
    state: Mutex<Bucket>,
    rps: f64,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
    paused_until: Option<Instant>,
}

impl RateLimiter {
    /// At most `rps` requests a second (bursts up to `max(rps, 1)`).
    pub fn new(rps: f64) -> Self {
        let rps = rps.max(0.01);
        Self { state: Mutex::new(Bucket { tokens: rps.max(1.0), refilled: Instant::now(), paused_until: None }), rps }
    }

    /// Waits until a request may go.
    pub fn acquire(&self) {
        loop {
            let wait = {
                let Ok(mut bucket) = self.state.lock() else { return };
                let now = Instant::now();
                if let Some(until) = bucket.paused_until.filter(|&u| u > now) {
                    until - now
                } else {
                    let elapsed = now.duration_since(bucket.refilled).as_secs_f64();
                    bucket.tokens = (bucket.tokens + elapsed * self.rps).min(self.rps.max(1.0));
                    bucket.refilled = now;
                    if bucket.tokens >= 1.0 {
                        bucket.tokens -= 1.0;
                        return;
                    }
                    Duration::from_secs_f64((1.0 - bucket.tokens) / self.rps)
                }
            };
            std::thread::sleep(wait);
        }
    }

    /// Stops every request for `wait` (the node said 429).
    pub fn pause(&self, wait: Duration) {
        if let Ok(mut bucket) = self.state.lock() {
            let until = Instant::now() + wait;
            bucket.paused_until = Some(bucket.paused_until.map_or(until, |u| u.max(until)));
            bucket.tokens = 0.0;
        }
    }
}

/// The JSON-RPC client.
pub struct RpcClient {
    agent: ureq::Agent,
    url: String,
    commitment: &'static str,
    limiter: Arc<RateLimiter>,
    metrics: Arc<LiveMetrics>,
}

impl RpcClient {
    /// A client of `url`; `ca_pem`, if given, is the only root trusted for
    /// TLS (a private node or a test); else the system's roots.
    pub fn new(
        url: &str,
        commitment: &'static str,
        ca_pem: Option<&[u8]>,
        limiter: Arc<RateLimiter>,
        metrics: Arc<LiveMetrics>,
    ) -> Result<Self, String> {
        let roots = match ca_pem {
            Some(pem) => {
                let cert = ureq::tls::Certificate::from_pem(pem).map_err(|e| format!("RPC CA file: {e}"))?;
                ureq::tls::RootCerts::new_with_certs(&[cert])
            }
            None => ureq::tls::RootCerts::PlatformVerifier,
        };
        let tls = ureq::tls::TlsConfig::builder().provider(ureq::tls::TlsProvider::NativeTls).root_certs(roots).build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .tls_config(tls)
            .user_agent(concat!("klinecast/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Self { agent, url: url.to_owned(), commitment, limiter, metrics })
    }

    /// One JSON-RPC call, retried on 429 (waiting what `Retry-After` says,
    /// else backing off) and on transport errors and 5xx.
    pub fn call(&self, method: &'static str, params: Value) -> Result<Value, RpcError> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
        let mut backoff = FIRST_BACKOFF;
        let mut last = RpcError::Transport("no attempt".into());
        for _ in 0..ATTEMPTS {
            self.limiter.acquire();
            self.metrics.rpc_request(method);
            match self.post(&body) {
                Ok(value) => return unwrap_result(value),
                Err((error, retry_after)) => {
                    self.metrics.rpc_errors.fetch_add(1, Ordering::Relaxed);
                    let throttled = matches!(error, RpcError::Status { status: 429 });
                    let retry = match &error {
                        RpcError::Status { status } => *status == 429 || *status >= 500,
                        RpcError::Transport(_) => true,
                        _ => false,
                    };
                    last = error;
                    if !retry {
                        break;
                    }
                    if throttled {
                        // Every worker holds off, not only this one.
                        self.metrics.rpc_429.fetch_add(1, Ordering::Relaxed);
                        self.limiter.pause(retry_after.unwrap_or(backoff).min(MAX_BACKOFF));
                    } else {
                        std::thread::sleep(backoff);
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        Err(last)
    }

    fn post(&self, body: &str) -> Result<Value, (RpcError, Option<Duration>)> {
        let response = self.agent.post(&self.url).header("content-type", "application/json").send(body);
        let mut response = response.map_err(|e| (RpcError::Transport(e.to_string()), None))?;
        let status = response.status().as_u16();
        if status != 200 {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err((RpcError::Status { status }, retry_after));
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_string()
            .map_err(|e| (RpcError::Transport(e.to_string()), None))?;
        serde_json::from_str(&text).map_err(|e| (RpcError::BadResponse(e.to_string()), None))
    }

    /// A page of `program`'s signatures, newest first.
    pub fn signatures(
        &self,
        program: Program,
        until: Option<&str>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SigInfo>, RpcError> {
        let mut options = json!({"limit": limit.clamp(1, 1000), "commitment": self.commitment});
        if let Some(until) = until {
            options["until"] = json!(until);
        }
        if let Some(before) = before {
            options["before"] = json!(before);
        }
        let result = self.call("getSignaturesForAddress", json!([program.address(), options]))?;
        let entries = result.as_array().ok_or_else(|| RpcError::BadResponse("signatures: not an array".into()))?;
        entries
            .iter()
            .map(|e| {
                let signature = e.get("signature").and_then(Value::as_str);
                let slot = e.get("slot").and_then(Value::as_u64);
                match (signature, slot) {
                    (Some(signature), Some(slot)) => Ok(SigInfo {
                        signature: signature.to_owned(),
                        slot,
                        failed: !e.get("err").is_none_or(Value::is_null),
                    }),
                    _ => Err(RpcError::BadResponse("signature entry without signature or slot".into())),
                }
            })
            .collect()
    }

    /// A transaction's events, or `None` if the node does not have it.
    pub fn transaction(&self, signature: &str) -> Result<Option<TxEvents>, RpcError> {
        let options = json!({"encoding": "json", "maxSupportedTransactionVersion": 0, "commitment": self.commitment});
        let result = self.call("getTransaction", json!([signature, options]))?;
        if result.is_null() {
            return Ok(None);
        }
        tx::from_transaction(&result).map(Some).map_err(|e| RpcError::BadResponse(e.to_string()))
    }

    /// Accounts' owner and data (`None` where there is no account).
    pub fn accounts(&self, keys: &[Pubkey]) -> Result<Vec<Option<Account>>, RpcError> {
        let keys: Vec<String> = keys.iter().map(|k| bs58::encode(k).into_string()).collect();
        let options = json!({"encoding": "base64", "commitment": self.commitment});
        let result = self.call("getMultipleAccounts", json!([keys, options]))?;
        let values = result.get("value").and_then(Value::as_array);
        let values = values.ok_or_else(|| RpcError::BadResponse("getMultipleAccounts: no value".into()))?;
        Ok(values
            .iter()
            .map(|v| {
                let owner = v.get("owner").and_then(Value::as_str)?.to_owned();
                let data = v.pointer("/data/0").and_then(Value::as_str)?;
                STANDARD.decode(data).ok().map(|data| Account { owner, data })
            })
            .collect())
    }

    /// Answers lookups: pools (their account, then their mints' decimals)
    /// and mints' decimals, a batch per call.
    pub fn look_up(&self, lookups: &[Lookup]) -> Vec<Fact> {
        let mut facts = Vec::new();
        let pools: Vec<Pubkey> =
            lookups.iter().filter_map(|l| if let Lookup::Pool(k) = l { Some(*k) } else { None }).collect();
        let mints: Vec<Pubkey> =
            lookups.iter().filter_map(|l| if let Lookup::Decimals(k) = l { Some(*k) } else { None }).collect();
        for chunk in pools.chunks(MAX_KEYS_PER_CALL) {
            let found = self.accounts(chunk);
            let mut mints_of: Vec<PoolMints> = Vec::new();
            for (i, pool) in chunk.iter().enumerate() {
                let account = found.as_ref().ok().and_then(|a| a.get(i).cloned().flatten());
                let mints = account
                    .filter(|a| a.owner == PUMP_SWAP_ADDRESS)
                    .and_then(|a| decode_pool_account(*pool, &a.data).ok());
                match mints {
                    Some(mints) => mints_of.push(mints),
                    None => facts.push(Fact::Missing(Lookup::Pool(*pool))),
                }
            }
            // Both mints' decimals in one more call.
            let keys: Vec<Pubkey> = mints_of.iter().flat_map(|m| [m.base_mint, m.quote_mint]).collect();
            let decimals = self.decimals(&keys);
            for (i, mut mints) in mints_of.into_iter().enumerate() {
                if let (Some(Some(base)), Some(Some(quote))) = (decimals.get(2 * i), decimals.get(2 * i + 1)) {
                    mints.decimals = Some((*base, *quote));
                }
                facts.push(Fact::Pool(mints));
            }
        }
        for (mint, decimals) in mints.iter().zip(self.decimals(&mints)) {
            facts.push(match decimals {
                Some(decimals) => Fact::Decimals { mint: *mint, decimals },
                None => Fact::Missing(Lookup::Decimals(*mint)),
            });
        }
        facts
    }

    /// Mints' decimals (`None` where the account is missing or no mint).
    fn decimals(&self, mints: &[Pubkey]) -> Vec<Option<u8>> {
        let mut out = Vec::with_capacity(mints.len());
        for chunk in mints.chunks(MAX_KEYS_PER_CALL) {
            match self.accounts(chunk) {
                Ok(accounts) => {
                    out.extend(accounts.into_iter().map(|a| a.and_then(|a| a.data.get(MINT_DECIMALS_OFFSET).copied())))
                }
                Err(_) => out.extend(std::iter::repeat_n(None, chunk.len())),
            }
        }
        out
    }

    /// Does one job.
    pub fn run(&self, job: Job) -> Done {
        match job {
            Job::Signatures { program, until, before, limit } => {
                Done::Signatures { program, page: self.signatures(program, until.as_deref(), before.as_deref(), limit) }
            }
            Job::Transaction { signature, purpose } => {
                let tx = self.transaction(&signature);
                Done::Transaction { signature, purpose, tx }
            }
            Job::Lookups(lookups) => Done::Facts(self.look_up(&lookups)),
        }
    }
}

/// The `result` of a JSON-RPC response, or its `error`.
fn unwrap_result(mut value: Value) -> Result<Value, RpcError> {
    if let Some(error) = value.get("error").filter(|e| !e.is_null()) {
        return Err(RpcError::Rpc {
            code: error.get("code").and_then(Value::as_i64).unwrap_or_default(),
            message: error.get("message").and_then(Value::as_str).unwrap_or_default().chars().take(200).collect(),
        });
    }
    value.get_mut("result").map(Value::take).ok_or_else(|| RpcError::BadResponse("no result".into()))
}

/// Starts `count` worker threads taking jobs from `jobs` and sending what
/// they did to `done`; they end when either channel closes.
pub fn spawn_workers(
    count: usize,
    client: Arc<RpcClient>,
    jobs: flume::Receiver<Job>,
    done: flume::Sender<Done>,
) -> std::io::Result<()> {
    for i in 0..count.max(1) {
        let (client, jobs, done) = (client.clone(), jobs.clone(), done.clone());
        std::thread::Builder::new().name(format!("rpc-{i}")).spawn(move || {
            while let Ok(job) = jobs.recv() {
                if done.send(client.run(job)).is_err() {
                    return;
                }
            }
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_spaces_requests_and_pauses_on_429() {
        let limiter = RateLimiter::new(50.0);
        let started = Instant::now();
        for _ in 0..60 {
            limiter.acquire();
        }
        // 50 of burst, then 10 more at 50/s: at least 0.2 s.
        assert!(started.elapsed() >= Duration::from_millis(180), "{:?}", started.elapsed());
        let paused = Instant::now();
        limiter.pause(Duration::from_millis(100));
        limiter.acquire();
        assert!(paused.elapsed() >= Duration::from_millis(100));
    }

    #[test]
    fn json_rpc_errors_are_typed() {
        let error = unwrap_result(json!({"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":1}));
        assert!(matches!(error, Err(RpcError::Rpc { code: -32601, .. })));
        assert!(matches!(unwrap_result(json!({"jsonrpc":"2.0","id":1})), Err(RpcError::BadResponse(_))));
        assert_eq!(unwrap_result(json!({"result": [1]})).ok(), Some(json!([1])));
    }
}
